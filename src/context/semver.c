/*
 * semver.c - semver 2.0.0 parsing and precedence, ranges, bumps.
 *
 * One scanner (scan_version) reads the three forms a version takes here: a
 * strict semver, a coerced one ("v2.14"), and a range operand whose missing
 * or x, X or * parts are wildcards ("1.x", "2.13"). Ranges are parsed into sets
 * of primitive comparators once, so matching is a loop of comparisons; the
 * npm rule for pre-releases is applied at match time. No allocation.
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "mainstack/semver.h"

enum scan_mode { SCAN_STRICT, SCAN_COERCE, SCAN_PARTIAL };

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_ident_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-';
}

static bool is_wild(char c)
{
    return c == 'x' || c == 'X' || c == '*';
}

/* Dot-separated identifiers of s[*i..len) into dst (up to the first byte
 * that is neither an identifier byte nor '.'). */
static ms_status scan_idents(const char *s, size_t len, size_t *i, bool prerelease, char *dst,
                             const char *what)
{
    size_t start = *i, j = *i;

    for (;;) {
        size_t n = 0;
        bool all_digits = true;
        while (j + n < len && is_ident_char(s[j + n])) {
            if (!is_digit(s[j + n]))
                all_digits = false;
            n++;
        }
        if (n == 0)
            return ms__err(MS_ERR_PARSE, "%s '%.*s': empty %s identifier at byte %zu", what,
                           (int)len, s, prerelease ? "pre-release" : "build", j);
        if (prerelease && all_digits && n > 1 && s[j] == '0')
            return ms__err(MS_ERR_PARSE,
                           "%s '%.*s': numeric pre-release identifier with a leading zero at "
                           "byte %zu",
                           what, (int)len, s, j);
        j += n;
        if (j >= len || s[j] != '.')
            break;
        j++;
    }
    if (j - start > MS_SEMVER_PART_MAX)
        return ms__err(MS_ERR_TOO_LARGE, "%s '%.*s': %s over %d bytes", what, (int)len, s,
                       prerelease ? "pre-release" : "build", MS_SEMVER_PART_MAX);
    memcpy(dst, s + start, j - start);
    dst[j - start] = '\0';
    *i = j;
    return MS_OK;
}

/*
 * Scan len bytes of s as a version. *nparts gets the number of numeric
 * parts before the first missing or wildcard one (3 for a full version).
 * Strict: exactly three numbers. Coerce: an optional 'v', 1..3 numbers.
 * Partial: 1..3 parts, numbers then wildcards; "*" alone is 0 parts.
 */
static ms_status scan_version(const char *s, size_t len, enum scan_mode mode, const char *what,
                              ms_semver *out, int *nparts)
{
    static const char *const names[] = {"major", "minor", "patch"};
    uint64_t part[3] = {0, 0, 0};
    size_t i = 0;
    int n = 0;
    bool wild = false;
    ms_status s2;

    memset(out, 0, sizeof *out);
    if (len == 0)
        return ms__err(MS_ERR_PARSE, "%s '': empty", what);
    if (mode == SCAN_COERCE && (s[0] == 'v' || s[0] == 'V'))
        i++;
    for (int k = 0; k < 3; k++) {
        if (k > 0) {
            if (i >= len || s[i] != '.') {
                if (mode == SCAN_STRICT)
                    return ms__err(MS_ERR_PARSE,
                                   "%s '%.*s': expected '.' and a %s number at byte %zu", what,
                                   (int)len, s, names[k], i);
                break;
            }
            i++;
        }
        if (mode == SCAN_PARTIAL && i < len && is_wild(s[i])) {
            wild = true;
            i++;
            continue;
        }
        if (i >= len || !is_digit(s[i]))
            return ms__err(MS_ERR_PARSE, "%s '%.*s': expected the %s number at byte %zu", what,
                           (int)len, s, names[k], i);
        if (wild)
            return ms__err(MS_ERR_PARSE, "%s '%.*s': a number after a wildcard at byte %zu", what,
                           (int)len, s, i);
        if (s[i] == '0' && i + 1 < len && is_digit(s[i + 1]))
            return ms__err(MS_ERR_PARSE, "%s '%.*s': leading zero in the %s number at byte %zu",
                           what, (int)len, s, names[k], i);
        while (i < len && is_digit(s[i])) {
            uint64_t d = (uint64_t)(s[i] - '0');
            if (part[k] > (UINT64_MAX - d) / 10)
                return ms__err(MS_ERR_TOO_LARGE, "%s '%.*s': the %s number is too large", what,
                               (int)len, s, names[k]);
            part[k] = part[k] * 10 + d;
            i++;
        }
        n++;
    }
    out->major = part[0];
    out->minor = part[1];
    out->patch = part[2];
    if (i < len && (s[i] == '-' || s[i] == '+') && n < 3)
        return ms__err(MS_ERR_PARSE, "%s '%.*s': a %s needs all three numbers (byte %zu)", what,
                       (int)len, s, s[i] == '-' ? "pre-release" : "build", i);
    if (i < len && s[i] == '-') {
        i++;
        s2 = scan_idents(s, len, &i, true, out->prerelease, what);
        if (s2 != MS_OK)
            return s2;
    }
    if (i < len && s[i] == '+') {
        i++;
        s2 = scan_idents(s, len, &i, false, out->build, what);
        if (s2 != MS_OK)
            return s2;
    }
    if (i < len)
        return ms__err(MS_ERR_PARSE, "%s '%.*s': unexpected '%c' at byte %zu", what, (int)len, s,
                       s[i], i);
    if (nparts != NULL)
        *nparts = n;
    return MS_OK;
}

bool ms_semver_valid(const char *version)
{
    ms_semver v;
    if (version == NULL)
        return false;
    return scan_version(version, strlen(version), SCAN_STRICT, "version", &v, NULL) == MS_OK;
}

ms_status ms_semver_parse(const char *text, ms_semver *out)
{
    if (text == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_semver_parse: text or out is NULL");
    return scan_version(text, strlen(text), SCAN_STRICT, "version", out, NULL);
}

ms_status ms_semver_coerce(const char *text, ms_semver *out)
{
    if (text == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_semver_coerce: text or out is NULL");
    return scan_version(text, strlen(text), SCAN_COERCE, "version", out, NULL);
}

static int cmp_u64(uint64_t a, uint64_t b)
{
    return a < b ? -1 : a > b ? 1 : 0;
}

/* One pre-release identifier [a, a+na) against [b, b+nb): semver 11.4. */
static int cmp_ident(const char *a, size_t na, const char *b, size_t nb)
{
    bool da = true, db = true;
    int c;
    for (size_t i = 0; i < na; i++)
        da = da && is_digit(a[i]);
    for (size_t i = 0; i < nb; i++)
        db = db && is_digit(b[i]);
    if (da && db) {
        /* No leading zeros: the longer number is the larger. */
        if (na != nb)
            return na < nb ? -1 : 1;
        c = memcmp(a, b, na);
        return c < 0 ? -1 : c > 0;
    }
    if (da != db)
        return da ? -1 : 1; /* numeric below alphanumeric */
    c = memcmp(a, b, na < nb ? na : nb);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return na == nb ? 0 : na < nb ? -1 : 1;
}

static int cmp_prerelease(const char *a, const char *b)
{
    if (a[0] == '\0' || b[0] == '\0')
        return a[0] == b[0] ? 0 : a[0] == '\0' ? 1 : -1; /* a release is above its pre-releases */
    for (;;) {
        size_t na = strcspn(a, "."), nb = strcspn(b, ".");
        int c = cmp_ident(a, na, b, nb);
        if (c != 0)
            return c;
        a += na;
        b += nb;
        if (*a == '\0' || *b == '\0')
            return *a == *b ? 0 : *a == '\0' ? -1 : 1; /* fewer identifiers: lower */
        a++;
        b++;
    }
}

int ms_semver_compare(const ms_semver *a, const ms_semver *b)
{
    int c = cmp_u64(a->major, b->major);
    if (c == 0)
        c = cmp_u64(a->minor, b->minor);
    if (c == 0)
        c = cmp_u64(a->patch, b->patch);
    if (c == 0)
        c = cmp_prerelease(a->prerelease, b->prerelease);
    return c;
}

size_t ms_semver_format(const ms_semver *v, char *buf, size_t size)
{
    int n = snprintf(buf, size, "%llu.%llu.%llu%s%s%s%s", (unsigned long long)v->major,
                     (unsigned long long)v->minor, (unsigned long long)v->patch,
                     v->prerelease[0] ? "-" : "", v->prerelease, v->build[0] ? "+" : "", v->build);
    return n < 0 ? 0 : (size_t)n;
}

ms_bump ms_semver_bump(const ms_semver *from, const ms_semver *to)
{
    if (from->major != to->major)
        return MS_BUMP_MAJOR;
    if (from->minor != to->minor)
        return MS_BUMP_MINOR;
    if (from->patch != to->patch || strcmp(from->prerelease, to->prerelease) != 0)
        return MS_BUMP_PATCH;
    return MS_BUMP_NONE;
}

const char *ms_bump_str(ms_bump b)
{
    switch (b) {
    case MS_BUMP_NONE:
        return "none";
    case MS_BUMP_PATCH:
        return "patch";
    case MS_BUMP_MINOR:
        return "minor";
    case MS_BUMP_MAJOR:
        return "major";
    }
    return "none";
}

ms_status ms_bump_parse(const char *name, ms_bump *out)
{
    if (name == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_bump_parse: name or out is NULL");
    if (strcmp(name, "patch") == 0)
        *out = MS_BUMP_PATCH;
    else if (strcmp(name, "minor") == 0)
        *out = MS_BUMP_MINOR;
    else if (strcmp(name, "major") == 0)
        *out = MS_BUMP_MAJOR;
    else
        return ms__err(MS_ERR_PARSE, "bump '%.64s' is not one of patch, minor, major", name);
    return MS_OK;
}

/* --- ranges ---------------------------------------------------------------- */

typedef struct range_parser {
    const char *text;
    ms_range *r;
} range_parser;

static ms_status add_cmp(range_parser *p, size_t set, ms_range_op op, const ms_semver *v)
{
    size_t *count = &p->r->sets[set].count;
    if (*count >= MS_RANGE_MAX_COMPARATORS)
        return ms__err(MS_ERR_TOO_LARGE, "range '%s': over %d comparators in one set", p->text,
                       MS_RANGE_MAX_COMPARATORS);
    p->r->sets[set].c[*count].op = op;
    p->r->sets[set].c[*count].version = *v;
    (*count)++;
    return MS_OK;
}

/* The exclusive upper bound of v's first `part` parts (1 major, 2 minor,
 * 3 patch): that part incremented, those after it zero ("1.2" -> 1.3.0). */
static ms_status next_at(range_parser *p, const ms_semver *v, int part, ms_semver *out)
{
    uint64_t *f;
    memset(out, 0, sizeof *out);
    out->major = v->major;
    out->minor = part >= 2 ? v->minor : 0;
    out->patch = part >= 3 ? v->patch : 0;
    f = part == 1 ? &out->major : part == 2 ? &out->minor : &out->patch;
    if (*f == UINT64_MAX)
        return ms__err(MS_ERR_TOO_LARGE, "range '%s': a version number is too large", p->text);
    (*f)++;
    return MS_OK;
}

/* Expand one comparator (operator text op of length nop, operand v with n
 * numeric parts) into primitive comparators of set `set`. */
static ms_status expand(range_parser *p, size_t set, const char *op, size_t nop, const ms_semver *v,
                        int n, size_t at)
{
    ms_semver hi;
    ms_status s;

#define OPIS(lit) (nop == sizeof(lit) - 1 && memcmp(op, lit, nop) == 0)
    if (n == 0) {
        if (nop == 0 || OPIS("=") || OPIS(">=") || OPIS("<=") || OPIS("^") || OPIS("~"))
            return MS_OK; /* any release */
        return ms__err(MS_ERR_PARSE,
                       "range '%s': '%.*s' before a wildcard matches nothing (byte %zu)", p->text,
                       (int)nop, op, at);
    }
    if (nop == 0 || OPIS("=")) {
        if (n == 3)
            return add_cmp(p, set, MS_RANGE_EQ, v);
        s = add_cmp(p, set, MS_RANGE_GE, v);
        if (s == MS_OK)
            s = next_at(p, v, n, &hi);
        return s == MS_OK ? add_cmp(p, set, MS_RANGE_LT, &hi) : s;
    }
    if (OPIS(">="))
        return add_cmp(p, set, MS_RANGE_GE, v);
    if (OPIS("<"))
        return add_cmp(p, set, MS_RANGE_LT, v);
    if (OPIS(">")) {
        if (n == 3)
            return add_cmp(p, set, MS_RANGE_GT, v);
        s = next_at(p, v, n, &hi);
        return s == MS_OK ? add_cmp(p, set, MS_RANGE_GE, &hi) : s;
    }
    if (OPIS("<=")) {
        if (n == 3)
            return add_cmp(p, set, MS_RANGE_LE, v);
        s = next_at(p, v, n, &hi);
        return s == MS_OK ? add_cmp(p, set, MS_RANGE_LT, &hi) : s;
    }
    if (OPIS("~")) {
        s = add_cmp(p, set, MS_RANGE_GE, v);
        if (s == MS_OK)
            s = next_at(p, v, n >= 2 ? 2 : 1, &hi);
        return s == MS_OK ? add_cmp(p, set, MS_RANGE_LT, &hi) : s;
    }
    if (OPIS("^")) {
        /* The leftmost non-zero part among those given is kept. */
        int keep = 1;
        if (v->major == 0 && n >= 2)
            keep = (v->minor == 0 && n == 3) ? 3 : 2;
        s = add_cmp(p, set, MS_RANGE_GE, v);
        if (s == MS_OK)
            s = next_at(p, v, keep, &hi);
        return s == MS_OK ? add_cmp(p, set, MS_RANGE_LT, &hi) : s;
    }
#undef OPIS
    return ms__err(MS_ERR_PARSE, "range '%s': unknown operator '%.*s' at byte %zu", p->text,
                   (int)nop, op, at);
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

static bool is_op_char(char c)
{
    return c == '<' || c == '>' || c == '=' || c == '^' || c == '~';
}

ms_status ms_range_parse(const char *text, ms_range *out)
{
    range_parser p;
    size_t len, i = 0, set = 0;
    bool set_has_term = false;
    ms_status s;

    if (text == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_range_parse: text or out is NULL");
    memset(out, 0, sizeof *out);
    len = strlen(text);
    if (len > MS_RANGE_TEXT_MAX)
        return ms__err(MS_ERR_TOO_LARGE, "range '%.32s...': over %d bytes", text,
                       MS_RANGE_TEXT_MAX);
    p.text = text;
    p.r = out;
    out->set_count = 1;
    for (;;) {
        size_t op_at, nop, v_at, nv;
        ms_semver v;
        int n;

        while (i < len && is_space(text[i]))
            i++;
        if (i >= len)
            break;
        if (text[i] == '|') {
            if (i + 1 >= len || text[i + 1] != '|')
                return ms__err(MS_ERR_PARSE, "range '%s': a single '|' at byte %zu (use '||')",
                               text, i);
            if (!set_has_term)
                return ms__err(MS_ERR_PARSE, "range '%s': empty set before '||' at byte %zu", text,
                               i);
            if (out->set_count >= MS_RANGE_MAX_SETS)
                return ms__err(MS_ERR_TOO_LARGE, "range '%s': over %d sets", text,
                               MS_RANGE_MAX_SETS);
            set = out->set_count++;
            set_has_term = false;
            i += 2;
            continue;
        }
        op_at = i;
        while (i < len && is_op_char(text[i]))
            i++;
        nop = i - op_at;
        while (nop > 0 && i < len && is_space(text[i]))
            i++; /* ">= 1.2" */
        v_at = i;
        while (i < len && !is_space(text[i]) && text[i] != '|' && !is_op_char(text[i]))
            i++;
        nv = i - v_at;
        if (nv == 0)
            return ms__err(MS_ERR_PARSE, "range '%s': %s at byte %zu", text,
                           nop > 0 ? "operator without a version" : "unexpected character",
                           nop > 0 ? op_at : i);
        if (i < len && is_op_char(text[i]))
            return ms__err(MS_ERR_PARSE, "range '%s': '%c' inside a version at byte %zu", text,
                           text[i], i);
        s = scan_version(text + v_at, nv, SCAN_PARTIAL, "range operand", &v, &n);
        if (s != MS_OK)
            return ms__err_wrap(s, "range '%s' at byte %zu", text, v_at);
        s = expand(&p, set, text + op_at, nop, &v, n, op_at);
        if (s != MS_OK)
            return s;
        set_has_term = true;
    }
    if (!set_has_term)
        return ms__err(MS_ERR_PARSE, "range '%s': %s", text,
                       out->set_count > 1 ? "empty set after '||'" : "empty");
    return MS_OK;
}

static bool cmp_holds(const ms_range_comparator *c, const ms_semver *v)
{
    int d = ms_semver_compare(v, &c->version);
    switch (c->op) {
    case MS_RANGE_GE:
        return d >= 0;
    case MS_RANGE_GT:
        return d > 0;
    case MS_RANGE_LE:
        return d <= 0;
    case MS_RANGE_LT:
        return d < 0;
    case MS_RANGE_EQ:
        return d == 0;
    }
    return false;
}

bool ms_range_match(const ms_range *r, const ms_semver *v)
{
    if (r == NULL || v == NULL)
        return false;
    for (size_t i = 0; i < r->set_count; i++) {
        bool ok = true, pre_allowed = v->prerelease[0] == '\0';
        for (size_t k = 0; k < r->sets[i].count && ok; k++) {
            const ms_semver *cv = &r->sets[i].c[k].version;
            ok = cmp_holds(&r->sets[i].c[k], v);
            if (cv->prerelease[0] != '\0' && cv->major == v->major && cv->minor == v->minor &&
                cv->patch == v->patch)
                pre_allowed = true;
        }
        if (ok && pre_allowed)
            return true;
    }
    return false;
}
