/*
 * check_internal.h - what check.c and check_rules.c share (internal): the
 * report's layout, one component as the checker loaded it, and the subject
 * pattern relations the cross-checks need.
 */
#ifndef MS_CHECK_INTERNAL_H
#define MS_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "mainstack/check.h"

struct ms_check_report {
    ms_check_finding *f; /* every string malloc'd, code static */
    size_t n, cap;
    size_t errors, warnings;
    char **dirs;
    size_t ndirs;
};

typedef struct ms__check_component {
    const char *dir;  /* borrowed from the report */
    const char *real; /* its realpath, borrowed */
    char *ctx_path, *cfg_path, *iface_path;
    bool iface_present;
    ms_context *ctx;      /* NULL when context.json did not load */
    ms_agent_config *cfg; /* NULL when agent-config.json did not load */
    json_t *iface;        /* NULL when absent or invalid */
} ms__check_component;

typedef struct ms__check_stack {
    ms__check_component *c;
    size_t n;
} ms__check_stack;

/* Add a finding (message formatted, strings copied). MS_OK or MS_ERR_NO_MEMORY. */
ms_status ms__check_add(ms_check_report *r, ms_check_level level, const char *code,
                        const char *file, int line, int column, const char *pointer,
                        const char *fmt, ...) __attribute__((format(printf, 8, 9)));
/* dir + "/" + name, malloc'd; NULL when out of memory. */
char *ms__check_join(const char *dir, const char *name);

/* Some subject matches both patterns (valid patterns, or literal subjects). */
bool ms__pattern_overlap(const char *a, const char *b);
/* Every subject b matches, a matches too. */
bool ms__pattern_covers(const char *a, const char *b);

/* The agent's rules of c (c->cfg loaded): never-matching, undeclared
 * interfaces or dependencies, shadowed rules. */
ms_status ms__check_rules(ms_check_report *r, const ms__check_component *c);

#endif
