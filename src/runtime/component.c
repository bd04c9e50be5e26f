/*
 * component.c - checking a component's ops, and the test report.
 *
 * ms_component_validate is the gate every component passes before the
 * runtime hosts it, linked in or loaded from a plugin: the ABI version
 * first (nothing else of the struct can be trusted when it differs), then
 * the metadata (name, semver 2.0.0 version, description), the required
 * functions and the topics. Each failure names the file (or the component)
 * and the field. The test report is the small growable array that a
 * Testable component's run_tests fills.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/component.h"
#include "mainstack/subject.h"

#define DESCRIPTION_MAX 1024

const char *ms_health_status_str(ms_health_status s)
{
    switch (s) {
    case MS_HEALTH_HEALTHY:
        return "healthy";
    case MS_HEALTH_DEGRADED:
        return "degraded";
    case MS_HEALTH_UNHEALTHY:
        return "unhealthy";
    }
    return "unhealthy";
}

/* --- helpers -------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* --- validation ------------------------------------------------------------ */

static ms_status check_name(const char *where, const char *name)
{
    size_t n;
    if (name == NULL || name[0] == '\0')
        return ms__err(MS_ERR_SCHEMA, "%s: metadata.name is missing", where);
    n = strlen(name);
    if (n > MS_COMPONENT_NAME_MAX)
        return ms__err(MS_ERR_SCHEMA, "%s: metadata.name '%.64s...' is %zu bytes, over %d", where,
                       name, n, MS_COMPONENT_NAME_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-'))
            return ms__err(MS_ERR_SCHEMA,
                           "%s: metadata.name '%s': character '%c' at byte %zu is not allowed "
                           "(use [a-z0-9-])",
                           where, name, c, i);
    }
    if (name[0] == '-' || name[n - 1] == '-')
        return ms__err(MS_ERR_SCHEMA, "%s: metadata.name '%s' may not begin or end with '-'", where,
                       name);
    return MS_OK;
}

static ms_status check_topics(const char *where, const ms_component_ops *ops)
{
    if (ops->topics == NULL)
        return MS_OK;
    for (size_t i = 0; ops->topics[i].subject != NULL; i++) {
        const ms_topic *t = &ops->topics[i];
        if (ms_subject_validate_pattern(t->subject) != MS_OK)
            return ms__err_wrap(MS_ERR_SCHEMA, "%s: topics[%zu]", where, i);
        if ((t->flags & ~MS_TOPIC_FANOUT) != 0)
            return ms__err(MS_ERR_SCHEMA, "%s: topics[%zu] '%s': unknown flags 0x%x", where, i,
                           t->subject, (unsigned)t->flags);
        if (i >= 1024)
            return ms__err(MS_ERR_SCHEMA,
                           "%s: more than 1024 topics (is the list terminated "
                           "by {NULL, 0}?)",
                           where);
    }
    return MS_OK;
}

ms_status ms_component_validate(const ms_component_ops *ops, const char *where)
{
    char label[160];
    const ms_component_metadata *md;
    const char *missing = NULL;

    if (ops == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: component ops are NULL",
                       where != NULL ? where : "component");
    if (ops->abi_version != MS_COMPONENT_ABI)
        return ms__err(MS_ERR_UNSUPPORTED,
                       "%s: built for component ABI %u, this runtime supports ABI %u "
                       "(rebuild the component against this mainstack)",
                       where != NULL ? where : "component", (unsigned)ops->abi_version,
                       (unsigned)MS_COMPONENT_ABI);
    md = &ops->metadata;
    if (where == NULL) {
        snprintf(label, sizeof label, "component '%.64s'",
                 md->name != NULL ? md->name : "(unnamed)");
        where = label;
    }
    if (check_name(where, md->name) != MS_OK)
        return MS_ERR_SCHEMA;
    if (md->version == NULL || md->version[0] == '\0')
        return ms__err(MS_ERR_SCHEMA, "%s: metadata.version is missing", where);
    if (!ms_semver_valid(md->version))
        return ms__err(MS_ERR_SCHEMA,
                       "%s: metadata.version '%.64s' is not semver 2.0.0 "
                       "(MAJOR.MINOR.PATCH[-pre][+build], no leading zeros)",
                       where, md->version);
    if (md->description == NULL)
        return ms__err(MS_ERR_SCHEMA, "%s: metadata.description is missing", where);
    if (strlen(md->description) > DESCRIPTION_MAX)
        return ms__err(MS_ERR_SCHEMA, "%s: metadata.description is over %d bytes", where,
                       DESCRIPTION_MAX);
    if ((ops->flags & ~(MS_COMPONENT_REENTRANT | MS_COMPONENT_INLINE | MS_COMPONENT_MIGRATE)) != 0)
        return ms__err(MS_ERR_SCHEMA, "%s: unknown flags 0x%x", where, (unsigned)ops->flags);
    if ((ops->flags & MS_COMPONENT_REENTRANT) != 0 && (ops->flags & MS_COMPONENT_INLINE) != 0)
        return ms__err(MS_ERR_SCHEMA,
                       "%s: flags MS_COMPONENT_REENTRANT and MS_COMPONENT_INLINE cannot be "
                       "combined (inline dispatch is for serial components)",
                       where);
    if (ops->create == NULL)
        missing = "create";
    else if (ops->destroy == NULL)
        missing = "destroy";
    else if (ops->initialize == NULL)
        missing = "initialize";
    else if (ops->handle_message == NULL)
        missing = "handle_message";
    if (missing != NULL)
        return ms__err(MS_ERR_SCHEMA, "%s: required function %s is NULL", where, missing);
    if ((ops->flags & MS_COMPONENT_MIGRATE) != 0 && ops->migrate == NULL)
        return ms__err(MS_ERR_SCHEMA, "%s: flag MS_COMPONENT_MIGRATE is set but migrate is NULL",
                       where);
    return check_topics(where, ops);
}

/* --- test report ----------------------------------------------------------- */

struct ms_test_report {
    ms_test_result *items;
    size_t count, cap;
};

ms_status ms_test_report_create(ms_test_report **out)
{
    ms_test_report *r;
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_test_report_create: out is NULL");
    r = ms__calloc(1, sizeof *r);
    if (r == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_test_report_create: allocating the report");
    *out = r;
    return MS_OK;
}

void ms_test_report_destroy(ms_test_report *r)
{
    if (r == NULL)
        return;
    ms__free(r->items);
    ms__free(r);
}

ms_status ms_test_report_add(ms_test_report *r, const char *name, bool passed, const char *fmt, ...)
{
    ms_test_result *t;
    if (r == NULL || name == NULL || name[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "ms_test_report_add: report and name are required");
    if (r->count == r->cap) {
        size_t ncap = r->cap == 0 ? 8 : r->cap * 2;
        ms_test_result *grown = ms__realloc(r->items, ncap * sizeof *grown);
        if (grown == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "ms_test_report_add: growing to %zu results", ncap);
        r->items = grown;
        r->cap = ncap;
    }
    t = &r->items[r->count];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->passed = passed;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(t->output, sizeof t->output, fmt, ap);
        va_end(ap);
    }
    r->count++;
    return MS_OK;
}

size_t ms_test_report_count(const ms_test_report *r)
{
    return r == NULL ? 0 : r->count;
}

size_t ms_test_report_failed(const ms_test_report *r)
{
    size_t n = 0;
    if (r == NULL)
        return 0;
    for (size_t i = 0; i < r->count; i++)
        if (!r->items[i].passed)
            n++;
    return n;
}

const ms_test_result *ms_test_report_at(const ms_test_report *r, size_t i)
{
    if (r == NULL || i >= r->count)
        return NULL;
    return &r->items[i];
}
