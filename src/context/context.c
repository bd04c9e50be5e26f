/*
 * context.c - context/context.json into an immutable ms_context.
 *
 * The loader keeps a deep copy of the document and points into it (jansson
 * strings never move while nobody modifies the value), so loading costs one
 * copy plus a few arrays of structs from the arena. Every check of
 * schemas/context.schema.json is made here too, with errors that name the
 * file and the JSON pointer; docs/context.md describes the fields.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "context/context_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/context.h"
#include "mainstack/json.h"
#include "mainstack/message.h"
#include "mainstack/subject.h"

#define TEXT_MAX 8192 /* bytes of one free-text field */
#define NAME_MAX_BYTES 128

struct ms_context {
    atomic_int refs;
    json_t *root;
    char *source;
    ms__arena arena;
    const char *component, *version, *purpose, *tests_command;
    ms_semver semver;
    ms_design_decision *decisions;
    size_t decision_count;
    ms_dependency *deps;
    size_t dep_count;
    ms_interface_provided *provides;
    size_t provides_count;
    ms_interface_consumed *consumes;
    size_t consumes_count;
    ms_known_issue *issues;
    size_t issue_count;
    const char *const *performance;
    size_t performance_count;
    const char *const *security;
    size_t security_count;
};

static const char *const dd_status_names[] = {"proposed",   "accepted", "superseded",
                                              "deprecated", "rejected", NULL};
static const char *const dep_kind_names[] = {"component", "interface", "library", "service", NULL};
static const char *const severity_names[] = {"low", "medium", "high", "critical", NULL};

const char *ms_dd_status_str(ms_dd_status s)
{
    return (unsigned)s <= MS_DD_REJECTED ? dd_status_names[s] : "proposed";
}

const char *ms_dep_kind_str(ms_dep_kind k)
{
    return (unsigned)k <= MS_DEP_SERVICE ? dep_kind_names[k] : "component";
}

const char *ms_severity_str(ms_severity s)
{
    return (unsigned)s <= MS_SEVERITY_CRITICAL ? severity_names[s] : "low";
}

/* --- field checks ------------------------------------------------------------ */

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* YYYY-MM-DD naming a real day. */
static bool date_valid(const char *d)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, m, dd;
    if (strlen(d) != 10 || d[4] != '-' || d[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (d[i] < '0' || d[i] > '9'))
            return false;
    y = (d[0] - '0') * 1000 + (d[1] - '0') * 100 + (d[2] - '0') * 10 + (d[3] - '0');
    m = (d[5] - '0') * 10 + (d[6] - '0');
    dd = (d[8] - '0') * 10 + (d[9] - '0');
    if (m < 1 || m > 12 || dd < 1)
        return false;
    return dd <= days[m - 1] + (m == 2 && leap(y) ? 1 : 0);
}

/* A name that can be the last token of a framework subject
 * (mainstack.dependency.updated.<name>): no whitespace, '.', '*' or '>'. */
static bool token_valid(const char *s)
{
    for (; *s; s++)
        if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n' || *s == '.' || *s == '*' ||
            *s == '>')
            return false;
    return true;
}

static ms_status check_name(ms__ld *l, const json_t *obj, const char *key, const char **out)
{
    ms_status s = ms__ld_string(l, obj, key, true, 64, out);
    if (s == MS_OK && !ms__ld_name_valid(*out))
        return ms__ld_field_err(l, key,
                                "'%.64s' is not a component name ([a-z0-9-], at most 64 bytes, no "
                                "leading or trailing '-')",
                                *out);
    return s;
}

static ms_status check_semver(ms__ld *l, const json_t *obj, const char *key, const char **text,
                              ms_semver *v)
{
    ms_status s = ms__ld_string(l, obj, key, true, 256, text);
    if (s != MS_OK)
        return s;
    if (ms_semver_parse(*text, v) != MS_OK) {
        char why[256];
        snprintf(why, sizeof why, "%s", ms_last_error());
        return ms__ld_field_err(l, key, "not semver 2.0.0: %s", why);
    }
    return MS_OK;
}

static ms_status check_range(ms__ld *l, const json_t *obj, const char *key, const char **text,
                             const ms_range **range)
{
    ms_range *r;
    ms_status s = ms__ld_string(l, obj, key, true, MS_RANGE_TEXT_MAX, text);
    if (s != MS_OK)
        return s;
    r = ms__arena_alloc(l->arena, 1, sizeof *r);
    if (r == NULL)
        return ms__ld_nomem(l);
    if (ms_range_parse(*text, r) != MS_OK) {
        char why[384];
        snprintf(why, sizeof why, "%s", ms_last_error());
        return ms__ld_field_err(l, key, "not a version range: %s", why);
    }
    *range = r;
    return MS_OK;
}

/* Each element of the array under key (absent: none) must be an object
 * with keys from allowed; fn loads element i. */
typedef ms_status (*element_fn)(ms__ld *l, const json_t *el, void *arr, size_t i);

static ms_status each(ms__ld *l, const json_t *obj, const char *key, const char *const *allowed,
                      size_t el_size, element_fn fn, void **arr_out, size_t *count_out)
{
    const json_t *arr;
    void *items;
    size_t n, mark;
    ms_status s = ms__ld_array(l, obj, key, false, &arr);

    *arr_out = NULL;
    *count_out = 0;
    if (s != MS_OK)
        return s;
    n = arr ? json_array_size(arr) : 0;
    items = ms__arena_alloc(l->arena, n, el_size);
    if (items == NULL)
        return ms__ld_nomem(l);
    mark = ms__ld_key(l, key);
    for (size_t i = 0; i < n; i++) {
        const json_t *el = json_array_get(arr, i);
        size_t m = ms__ld_index(l, i);
        s = ms__ld_object(l, el, allowed);
        if (s == MS_OK)
            s = fn(l, el, items, i);
        if (s != MS_OK)
            return s;
        ms__ld_pop(l, m);
    }
    ms__ld_pop(l, mark);
    *arr_out = items;
    *count_out = n;
    return MS_OK;
}

static ms_status load_decision(ms__ld *l, const json_t *el, void *arr, size_t i)
{
    ms_design_decision *d = (ms_design_decision *)arr + i;
    int st = 0;
    ms_status s = ms__ld_string(l, el, "id", true, NAME_MAX_BYTES, &d->id);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "decision", true, TEXT_MAX, &d->decision);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "rationale", true, TEXT_MAX, &d->rationale);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "date", true, 10, &d->date);
    if (s == MS_OK && !date_valid(d->date))
        s = ms__ld_field_err(l, "date", "'%.16s' is not a date YYYY-MM-DD", d->date);
    if (s == MS_OK)
        s = ms__ld_enum(l, el, "status", true, dd_status_names, &st);
    d->status = (ms_dd_status)st;
    return s;
}

static ms_status load_dependency(ms__ld *l, const json_t *el, void *arr, size_t i)
{
    ms_dependency *d = (ms_dependency *)arr + i;
    int kind = 0;
    ms_status s = ms__ld_string(l, el, "name", true, NAME_MAX_BYTES, &d->name);
    if (s == MS_OK && !token_valid(d->name))
        s = ms__ld_field_err(l, "name", "'%.128s' may not contain whitespace, '.', '*' or '>'",
                             d->name);
    if (s == MS_OK)
        s = ms__ld_enum(l, el, "kind", true, dep_kind_names, &kind);
    d->kind = (ms_dep_kind)kind;
    if (s == MS_OK)
        s = check_range(l, el, "version", &d->version, &d->range);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "purpose", true, TEXT_MAX, &d->purpose);
    return s;
}

static ms_status load_provided(ms__ld *l, const json_t *el, void *arr, size_t i)
{
    ms_interface_provided *p = (ms_interface_provided *)arr + i;
    ms_status s = check_name(l, el, "name", &p->name);
    if (s == MS_OK)
        s = check_semver(l, el, "version", &p->version, &p->semver);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "contract", false, 1024, &p->contract);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "header", false, 1024, &p->header);
    return s;
}

static ms_status load_consumed(ms__ld *l, const json_t *el, void *arr, size_t i)
{
    ms_interface_consumed *c = (ms_interface_consumed *)arr + i;
    ms_status s = check_name(l, el, "name", &c->name);
    if (s == MS_OK)
        s = check_range(l, el, "version", &c->version, &c->range);
    if (s == MS_OK)
        s = ms__ld_strings(l, el, "subjects", false, MS_SUBJECT_MAX, &c->subjects,
                           &c->subject_count);
    for (size_t k = 0; s == MS_OK && k < c->subject_count; k++) {
        if (ms_subject_validate_pattern(c->subjects[k]) != MS_OK) {
            char why[256];
            size_t mark = ms__ld_key(l, "subjects");
            snprintf(why, sizeof why, "%s", ms_last_error());
            ms__ld_index(l, k);
            s = ms__ld_err(l, "not a subject pattern: %s", why);
            ms__ld_pop(l, mark);
        }
    }
    return s;
}

static ms_status load_issue(ms__ld *l, const json_t *el, void *arr, size_t i)
{
    ms_known_issue *k = (ms_known_issue *)arr + i;
    int sev = 0;
    ms_status s = ms__ld_string(l, el, "id", true, NAME_MAX_BYTES, &k->id);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "description", true, TEXT_MAX, &k->description);
    if (s == MS_OK)
        s = ms__ld_string(l, el, "workaround", false, TEXT_MAX, &k->workaround);
    if (s == MS_OK)
        s = ms__ld_enum(l, el, "severity", true, severity_names, &sev);
    k->severity = (ms_severity)sev;
    return s;
}

/* ids of decisions and issues are unique within their list. */
static ms_status unique_ids(ms__ld *l, const char *key, const void *arr, size_t n, size_t size,
                            size_t id_offset)
{
    for (size_t i = 1; i < n; i++) {
        const char *a = *(const char *const *)((const char *)arr + i * size + id_offset);
        for (size_t j = 0; j < i; j++) {
            const char *b = *(const char *const *)((const char *)arr + j * size + id_offset);
            if (strcmp(a, b) == 0) {
                size_t mark = ms__ld_key(l, key);
                ms__ld_index(l, i);
                ms__ld_key(l, "id");
                ms_status s = ms__ld_err(l, "'%.128s' is already the id of element %zu", a, j);
                ms__ld_pop(l, mark);
                return s;
            }
        }
    }
    return MS_OK;
}

static const char *const top_keys[] = {
    "$schema",          "component",    "version",    "purpose",
    "design_decisions", "dependencies", "interfaces", "known_issues",
    "performance",      "security",     "tests",      NULL};
static const char *const decision_keys[] = {"id", "decision", "rationale", "date", "status", NULL};
static const char *const dep_keys[] = {"name", "kind", "version", "purpose", NULL};
static const char *const interfaces_keys[] = {"provides", "consumes", NULL};
static const char *const provided_keys[] = {"name", "version", "contract", "header", NULL};
static const char *const consumed_keys[] = {"name", "version", "subjects", NULL};
static const char *const issue_keys[] = {"id", "description", "workaround", "severity", NULL};
static const char *const tests_keys[] = {"command", NULL};

static ms_status load_interfaces(ms__ld *l, ms_context *c)
{
    const json_t *ifs = json_object_get(c->root, "interfaces");
    size_t mark;
    void *arr;
    ms_status s;

    if (ifs == NULL)
        return MS_OK;
    mark = ms__ld_key(l, "interfaces");
    s = ms__ld_object(l, ifs, interfaces_keys);
    if (s == MS_OK) {
        s = each(l, ifs, "provides", provided_keys, sizeof(ms_interface_provided), load_provided,
                 &arr, &c->provides_count);
        c->provides = arr;
    }
    if (s == MS_OK) {
        s = each(l, ifs, "consumes", consumed_keys, sizeof(ms_interface_consumed), load_consumed,
                 &arr, &c->consumes_count);
        c->consumes = arr;
    }
    if (s == MS_OK)
        ms__ld_pop(l, mark);
    return s;
}

static ms_status load_all(ms__ld *l, ms_context *c)
{
    const json_t *root = c->root;
    const json_t *tests;
    void *arr;
    const char *schema;
    ms_status s = ms__ld_object(l, root, top_keys);

    if (s == MS_OK)
        s = ms__ld_string(l, root, "$schema", false, 1024, &schema);
    if (s == MS_OK)
        s = check_name(l, root, "component", &c->component);
    if (s == MS_OK)
        s = check_semver(l, root, "version", &c->version, &c->semver);
    if (s == MS_OK)
        s = ms__ld_string(l, root, "purpose", true, TEXT_MAX, &c->purpose);
    if (s == MS_OK) {
        s = each(l, root, "design_decisions", decision_keys, sizeof(ms_design_decision),
                 load_decision, &arr, &c->decision_count);
        c->decisions = arr;
    }
    if (s == MS_OK)
        s = unique_ids(l, "design_decisions", c->decisions, c->decision_count,
                       sizeof(ms_design_decision), offsetof(ms_design_decision, id));
    if (s == MS_OK) {
        s = each(l, root, "dependencies", dep_keys, sizeof(ms_dependency), load_dependency, &arr,
                 &c->dep_count);
        c->deps = arr;
    }
    if (s == MS_OK)
        s = load_interfaces(l, c);
    if (s == MS_OK) {
        s = each(l, root, "known_issues", issue_keys, sizeof(ms_known_issue), load_issue, &arr,
                 &c->issue_count);
        c->issues = arr;
    }
    if (s == MS_OK)
        s = unique_ids(l, "known_issues", c->issues, c->issue_count, sizeof(ms_known_issue),
                       offsetof(ms_known_issue, id));
    if (s == MS_OK)
        s = ms__ld_strings(l, root, "performance", false, TEXT_MAX, &c->performance,
                           &c->performance_count);
    if (s == MS_OK)
        s = ms__ld_strings(l, root, "security", false, TEXT_MAX, &c->security, &c->security_count);
    tests = json_object_get(root, "tests");
    if (s == MS_OK && tests != NULL) {
        size_t mark = ms__ld_key(l, "tests");
        s = ms__ld_object(l, tests, tests_keys);
        if (s == MS_OK)
            s = ms__ld_string(l, tests, "command", true, TEXT_MAX, &c->tests_command);
        if (s == MS_OK)
            ms__ld_pop(l, mark);
    }
    return s;
}

ms_status ms_context_from_json(const json_t *root, const char *source, ms_context **out)
{
    ms_context *c = NULL;
    ms__ld l;
    ms_status s;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_context_from_json: out is NULL");
    *out = NULL;
    if (root == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_context_from_json: root is NULL");
    if (source == NULL)
        source = "context.json";
    c = ms__calloc(1, sizeof *c);
    if (c == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: out of memory while loading", source);
    atomic_init(&c->refs, 1);
    c->source = ms__strdup(source);
    c->root = json_deep_copy(root);
    if (c->source == NULL || c->root == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "%s: out of memory while loading", source);
        goto cleanup;
    }
    memset(&l, 0, sizeof l);
    l.source = c->source;
    l.arena = &c->arena;
    s = load_all(&l, c);
    if (s != MS_OK)
        goto cleanup;
    *out = c;
    c = NULL;

cleanup:
    ms_context_unref(c);
    return s;
}

ms_status ms_context_load(const char *path, ms_context **out)
{
    json_t *root = NULL;
    ms_status s;

    if (out == NULL || path == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_context_load: path or out is NULL");
    *out = NULL;
    s = ms_json_load_file(path, MS__CONTEXT_MAX_FILE, &root);
    if (s == MS_OK)
        s = ms_context_from_json(root, path, out);
    json_decref(root);
    return s;
}

ms_context *ms_context_ref(ms_context *ctx)
{
    if (ctx != NULL)
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void ms_context_unref(ms_context *ctx)
{
    if (ctx == NULL || atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    ms__arena_free(&ctx->arena);
    json_decref(ctx->root);
    ms__free(ctx->source);
    ms__free(ctx);
}

/* --- accessors -------------------------------------------------------------- */

const char *ms_context_source(const ms_context *ctx)
{
    return ctx ? ctx->source : NULL;
}

const char *ms_context_component(const ms_context *ctx)
{
    return ctx ? ctx->component : NULL;
}

const char *ms_context_version(const ms_context *ctx)
{
    return ctx ? ctx->version : NULL;
}

const ms_semver *ms_context_semver(const ms_context *ctx)
{
    return ctx ? &ctx->semver : NULL;
}

const char *ms_context_purpose(const ms_context *ctx)
{
    return ctx ? ctx->purpose : NULL;
}

#define ACCESSORS(fn, type, field, count)                                                          \
    size_t ms_context_##fn##_count(const ms_context *ctx)                                          \
    {                                                                                              \
        return ctx ? ctx->count : 0;                                                               \
    }                                                                                              \
    type ms_context_##fn##_at(const ms_context *ctx, size_t i)                                     \
    {                                                                                              \
        return ctx && i < ctx->count ? &ctx->field[i] : NULL;                                      \
    }

ACCESSORS(decision, const ms_design_decision *, decisions, decision_count)
ACCESSORS(dependency, const ms_dependency *, deps, dep_count)
ACCESSORS(provides, const ms_interface_provided *, provides, provides_count)
ACCESSORS(consumes, const ms_interface_consumed *, consumes, consumes_count)
ACCESSORS(issue, const ms_known_issue *, issues, issue_count)

size_t ms_context_performance_count(const ms_context *ctx)
{
    return ctx ? ctx->performance_count : 0;
}

const char *ms_context_performance_at(const ms_context *ctx, size_t i)
{
    return ctx && i < ctx->performance_count ? ctx->performance[i] : NULL;
}

size_t ms_context_security_count(const ms_context *ctx)
{
    return ctx ? ctx->security_count : 0;
}

const char *ms_context_security_at(const ms_context *ctx, size_t i)
{
    return ctx && i < ctx->security_count ? ctx->security[i] : NULL;
}

const char *ms_context_tests_command(const ms_context *ctx)
{
    return ctx ? ctx->tests_command : NULL;
}

const json_t *ms_context_json(const ms_context *ctx)
{
    return ctx ? ctx->root : NULL;
}

const ms_dependency *ms_context_find_dependency(const ms_context *ctx, const char *name)
{
    const ms_dependency *iface = NULL;
    if (ctx == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < ctx->dep_count; i++) {
        if (strcmp(ctx->deps[i].name, name) != 0)
            continue;
        if (ctx->deps[i].kind != MS_DEP_INTERFACE)
            return &ctx->deps[i];
        if (iface == NULL)
            iface = &ctx->deps[i];
    }
    return iface;
}

const ms_interface_consumed *ms_context_find_consumed(const ms_context *ctx, const char *name)
{
    if (ctx == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < ctx->consumes_count; i++)
        if (strcmp(ctx->consumes[i].name, name) == 0)
            return &ctx->consumes[i];
    return NULL;
}

const ms_interface_provided *ms_context_find_provided(const ms_context *ctx, const char *name)
{
    if (ctx == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < ctx->provides_count; i++)
        if (strcmp(ctx->provides[i].name, name) == 0)
            return &ctx->provides[i];
    return NULL;
}
