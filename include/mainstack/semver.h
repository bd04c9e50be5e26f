/*
 * semver.h - semantic versions (semver 2.0.0), version ranges, bumps.
 *
 * A version is MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] exactly as semver
 * 2.0.0 defines it; precedence follows its section 11 (numbers compared
 * numerically, a pre-release sorts before its release, identifiers compared
 * one by one, numeric below alphanumeric, build metadata ignored).
 *
 * A range (npm/cargo-like, written in docs/context.md) is one or more
 * comparator sets joined by "||"; a set is comparators separated by spaces,
 * all of which must hold:
 *     ">=1.2.0 <2.0.0"   "^1.2"   "~1.4.2"   "1.x"   "=1.0.0"   "*"   "^1 || ^2"
 * Operands may be partial ("2.13", "3"): missing parts act as wildcards.
 * A pre-release version matches a set only if one of its comparators names
 * a pre-release of the same MAJOR.MINOR.PATCH (npm's rule), so ">=1.0.0"
 * does not pull in 2.0.0-alpha.
 *
 * Everything here is a value type: no allocation, no global state, safe
 * from any thread.
 */
#ifndef MAINSTACK_SEMVER_H
#define MAINSTACK_SEMVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MS_SEMVER_PART_MAX 64      /* bytes of the pre-release, and of the build, without the NUL */
#define MS_RANGE_TEXT_MAX 256      /* bytes of a range string */
#define MS_RANGE_MAX_SETS 4        /* sets joined by "||" */
#define MS_RANGE_MAX_COMPARATORS 8 /* primitive comparators in one set, after expansion */

typedef struct ms_semver {
    uint64_t major, minor, patch;
    char prerelease[MS_SEMVER_PART_MAX + 1]; /* "" when none */
    char build[MS_SEMVER_PART_MAX + 1];      /* "" when none; ignored by comparisons */
} ms_semver;

/* True for a semver 2.0.0 version string (NULL: false). */
bool ms_semver_valid(const char *version);

/* Parse a strict semver 2.0.0 version. MS_ERR_PARSE says what and at which
 * byte ("version '1.02.0': leading zero at byte 2"), MS_ERR_TOO_LARGE (a
 * number over 2^64-1, a pre-release or build over MS_SEMVER_PART_MAX bytes),
 * MS_ERR_INVALID_ARG. */
ms_status ms_semver_parse(const char *text, ms_semver *out);

/* Lenient parse for versions written by other projects: an optional leading
 * 'v', and 1 to 3 numeric parts (missing ones are 0: "2.14" is 2.14.0; a
 * pre-release or build only after all three). Same errors. */
ms_status ms_semver_coerce(const char *text, ms_semver *out);

/* Precedence: <0, 0 or >0 as a is below, equal to or above b. */
int ms_semver_compare(const ms_semver *a, const ms_semver *b);

/* Text form, MAJOR.MINOR.PATCH[-pre][+build]. Truncated to fit, always NUL
 * terminated; returns the length it needed (as snprintf). */
size_t ms_semver_format(const ms_semver *v, char *buf, size_t size);

/* How far apart two versions are: the highest part that differs. */
typedef enum ms_bump {
    MS_BUMP_NONE = 0, /* same precedence (only build metadata may differ) */
    MS_BUMP_PATCH,    /* same MAJOR.MINOR; PATCH or only the pre-release differs */
    MS_BUMP_MINOR,    /* same MAJOR, MINOR differs */
    MS_BUMP_MAJOR     /* MAJOR differs */
} ms_bump;

/* The bump between from and to, whichever way it goes (compare the two to
 * tell an upgrade from a downgrade). */
ms_bump ms_semver_bump(const ms_semver *from, const ms_semver *to);
/* "none", "patch", "minor", "major". */
const char *ms_bump_str(ms_bump b);
/* "patch", "minor", "major" (not "none"). MS_ERR_PARSE otherwise. */
ms_status ms_bump_parse(const char *name, ms_bump *out);

typedef enum ms_range_op {
    MS_RANGE_GE = 0, /* >= */
    MS_RANGE_GT,     /* > */
    MS_RANGE_LE,     /* <= */
    MS_RANGE_LT,     /* < */
    MS_RANGE_EQ      /* = */
} ms_range_op;

typedef struct ms_range_comparator {
    ms_range_op op;
    ms_semver version;
} ms_range_comparator;

/* A parsed range: sets of primitive comparators (each operand expanded:
 * "^1.2" is ">=1.2.0 <2.0.0"). A set with no comparator matches every
 * release ("*"). */
typedef struct ms_range {
    size_t set_count;
    struct {
        size_t count;
        ms_range_comparator c[MS_RANGE_MAX_COMPARATORS];
    } sets[MS_RANGE_MAX_SETS];
} ms_range;

/* Parse a range. MS_ERR_PARSE names the range and what is wrong ("range
 * '>=1.2 <': operator without a version at byte 6"); MS_ERR_TOO_LARGE past
 * MS_RANGE_TEXT_MAX bytes, MS_RANGE_MAX_SETS sets or MS_RANGE_MAX_COMPARATORS
 * in a set (or a pre-release or build over MS_SEMVER_PART_MAX bytes);
 * MS_ERR_INVALID_ARG. */
ms_status ms_range_parse(const char *text, ms_range *out);
/* True when v satisfies r (see the pre-release rule above). */
bool ms_range_match(const ms_range *r, const ms_semver *v);

#ifdef __cplusplus
}
#endif
#endif
