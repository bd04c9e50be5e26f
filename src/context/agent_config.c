/*
 * agent_config.c - context/agent-config.json into an immutable
 * ms_agent_config, and the loader of a whole component directory.
 *
 * Like context.c: a deep copy of the document, structs pointing into it,
 * every check of schemas/agent-config.schema.json made here with errors
 * naming the file and the JSON pointer. Rule names are unique and may not
 * take the "default:" prefix of the agent's built-in policy, so a recorded
 * decision always says which of the two made it.
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

#define TEXT_MAX 8192
#define REASON_MAX 1024
#define RULE_NAME_MAX 64
#define DEPLOY_TIMEOUT_DEFAULT_S 900

struct ms_agent_config {
    atomic_int refs;
    json_t *root;
    char *source;
    ms__arena arena;
    const char *component;
    const char *const *topics;
    size_t topic_count;
    ms_autonomy autonomy;
    bool may_deploy;
    ms_agent_rule *rules;
    size_t rule_count;
    const char *const *responsibilities;
    size_t responsibility_count;
    const char *const *constraints;
    size_t constraint_count;
    ms_agent_action actions[MS_ACTION_COMMAND_COUNT];
    bool has_action[MS_ACTION_COMMAND_COUNT];
    ms_agent_deploy deploy;
    bool has_deploy;
    const char *escalation;
    char default_escalation[MS_SUBJECT_MAX];
};

static const char *const autonomy_names[] = {"observe", "patch", "minor", "major", NULL};
static const char *const verdict_names[] = {"ignore", "act", "escalate", NULL};
static const char *const bump_names[] = {"patch", "minor", "major", NULL};
static const char *const action_names[] = {"change", "build", "test", "version", "deploy", NULL};
/* the members of "actions": the three commands and the deploy object */
static const char *const actions_keys[] = {"change", "build", "test", "deploy", NULL};
static const char *const type_names[] = {
    "change_notification", "interface_changed", "dependency_update", "request", "response", "event",
    "config_change",       "health_check",      "command",           NULL};

const char *ms_autonomy_str(ms_autonomy a)
{
    return (unsigned)a <= MS_AUTONOMY_MAJOR ? autonomy_names[a] : "observe";
}

const char *ms_verdict_str(ms_verdict v)
{
    return (unsigned)v <= MS_VERDICT_ESCALATE ? verdict_names[v] : "escalate";
}

ms_status ms_verdict_parse(const char *name, ms_verdict *out)
{
    if (name == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_verdict_parse: name or out is NULL");
    for (int i = 0; verdict_names[i] != NULL; i++) {
        if (strcmp(verdict_names[i], name) == 0) {
            *out = (ms_verdict)i;
            return MS_OK;
        }
    }
    return ms__err(MS_ERR_PARSE, "decision '%.64s' is not one of ignore, act, escalate", name);
}

const char *ms_action_kind_str(ms_action_kind k)
{
    return (unsigned)k < MS_ACTION_KIND_COUNT ? action_names[k] : "change";
}

/* A subject (pattern when wildcards are allowed) checked with subject.h,
 * whose reason (with the byte offset) is quoted. */
static ms_status check_subject(ms__ld *l, const char *value, bool pattern)
{
    ms_status s = pattern ? ms_subject_validate_pattern(value) : ms_subject_validate(value);
    char why[320];
    if (s == MS_OK)
        return MS_OK;
    snprintf(why, sizeof why, "%s", ms_last_error());
    return ms__ld_err(l, "not a valid %s: %s", pattern ? "subject pattern" : "subject", why);
}

static bool rule_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RULE_NAME_MAX)
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

static const char *const top_keys[] = {
    "$schema",          "component",   "monitored_topics", "autonomy",   "rules",
    "responsibilities", "constraints", "actions",          "escalation", NULL};
static const char *const autonomy_keys[] = {"level", "may_deploy", NULL};
static const char *const rule_keys[] = {"name", "match", "decision", "reason", NULL};
static const char *const match_keys[] = {"type", "subject",  "interface", "dependency",
                                         "bump", "breaking", NULL};
static const char *const action_keys[] = {"argv", "timeout_s", "env", NULL};
static const char *const deploy_keys[] = {"build_dir", "timeout_s", "args", NULL};
static const char *const escalation_keys[] = {"subject", NULL};

static ms_status load_match(ms__ld *l, const json_t *m, ms_rule_match *out)
{
    int idx = 0;
    ms_status s = ms__ld_object(l, m, match_keys);
    if (s == MS_OK)
        s = ms__ld_enum(l, m, "type", false, type_names, &idx);
    if (s == MS_OK && json_object_get(m, "type") != NULL)
        out->type = type_names[idx];
    if (s == MS_OK)
        s = ms__ld_string(l, m, "subject", false, MS_SUBJECT_MAX, &out->subject);
    if (s == MS_OK && out->subject != NULL) {
        size_t mark = ms__ld_key(l, "subject");
        s = check_subject(l, out->subject, true);
        if (s == MS_OK)
            ms__ld_pop(l, mark);
    }
    if (s == MS_OK)
        s = ms__ld_string(l, m, "interface", false, 128, &out->interface);
    if (s == MS_OK)
        s = ms__ld_string(l, m, "dependency", false, 128, &out->dependency);
    if (s == MS_OK && json_object_get(m, "bump") != NULL) {
        s = ms__ld_enum(l, m, "bump", true, bump_names, &idx);
        out->has_bump = true;
        out->bump = (ms_bump)(idx + 1); /* patch = MS_BUMP_PATCH ... */
    }
    if (s == MS_OK && json_object_get(m, "breaking") != NULL) {
        s = ms__ld_bool(l, m, "breaking", true, &out->breaking);
        out->has_breaking = true;
    }
    return s;
}

static ms_status load_rules(ms__ld *l, ms_agent_config *c)
{
    const json_t *arr;
    size_t n, mark;
    ms_status s = ms__ld_array(l, c->root, "rules", false, &arr);

    if (s != MS_OK)
        return s;
    n = arr ? json_array_size(arr) : 0;
    c->rules = ms__arena_alloc(l->arena, n, sizeof *c->rules);
    if (c->rules == NULL)
        return ms__ld_nomem(l);
    mark = ms__ld_key(l, "rules");
    for (size_t i = 0; i < n; i++) {
        const json_t *el = json_array_get(arr, i);
        const json_t *m;
        ms_agent_rule *r = &c->rules[i];
        int v = 0;
        size_t mi = ms__ld_index(l, i);

        s = ms__ld_object(l, el, rule_keys);
        if (s == MS_OK)
            s = ms__ld_string(l, el, "name", true, RULE_NAME_MAX, &r->name);
        if (s == MS_OK && !rule_name_valid(r->name))
            s = ms__ld_field_err(l, "name",
                                 "'%.64s' is not a rule name (a lower-case letter or digit, then "
                                 "[a-z0-9._-]; no ':', which marks the built-in default: rules)",
                                 r->name);
        for (size_t j = 0; s == MS_OK && j < i; j++)
            if (strcmp(c->rules[j].name, r->name) == 0) {
                size_t mk = ms__ld_key(l, "name");
                s = ms__ld_err(l, "'%s' is already the name of rule %zu", r->name, j);
                ms__ld_pop(l, mk);
            }
        m = json_object_get(el, "match");
        if (s == MS_OK && m != NULL) {
            size_t mk = ms__ld_key(l, "match");
            s = load_match(l, m, &r->match);
            if (s == MS_OK)
                ms__ld_pop(l, mk);
        }
        if (s == MS_OK)
            s = ms__ld_enum(l, el, "decision", true, verdict_names, &v);
        r->decision = (ms_verdict)v;
        if (s == MS_OK)
            s = ms__ld_string(l, el, "reason", true, REASON_MAX, &r->reason);
        if (s != MS_OK)
            return s;
        ms__ld_pop(l, mi);
    }
    ms__ld_pop(l, mark);
    c->rule_count = n;
    return MS_OK;
}

static bool env_name_valid(const char *s)
{
    if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_'))
        return false;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

static ms_status load_action(ms__ld *l, const json_t *a, ms_agent_action *out)
{
    const json_t *env;
    ms_status s = ms__ld_object(l, a, action_keys);

    if (s == MS_OK)
        s = ms__ld_strings(l, a, "argv", true, TEXT_MAX, &out->argv, &out->argc);
    if (s == MS_OK && out->argc == 0) {
        size_t mark = ms__ld_key(l, "argv");
        s = ms__ld_err(l, "must hold at least the program to run");
        ms__ld_pop(l, mark);
    }
    if (s == MS_OK)
        s = ms__ld_int(l, a, "timeout_s", true, 1, 86400, &out->timeout_s);
    env = json_object_get(a, "env");
    if (s == MS_OK && env != NULL) {
        size_t mark = ms__ld_key(l, "env"), i = 0;
        ms_env_var *vars;
        const char *key;
        json_t *v;
        if (!json_is_object(env))
            return ms__ld_err(l, "must be an object of NAME: value strings");
        vars = ms__arena_alloc(l->arena, json_object_size(env), sizeof *vars);
        if (vars == NULL)
            return ms__ld_nomem(l);
        json_object_foreach((json_t *)env, key, v)
        {
            size_t mk = ms__ld_key(l, key);
            if (!env_name_valid(key))
                return ms__ld_err(l, "not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)");
            if (!json_is_string(v))
                return ms__ld_err(l, "must be a string");
            if (strlen(json_string_value(v)) != json_string_length(v))
                return ms__ld_err(l, "contains a NUL character");
            vars[i].name = key;
            vars[i].value = json_string_value(v);
            i++;
            ms__ld_pop(l, mk);
        }
        out->env = vars;
        out->env_count = i;
        ms__ld_pop(l, mark);
    }
    return s;
}

/* An argument of actions.deploy.args that the framework sets itself (or
 * one that would make `mstack deploy` do nothing): the option's name, or
 * NULL when the argument is allowed. */
static const char *reserved_deploy_arg(const char *arg)
{
    static const char *const longs[] = {"--no-promote", "--root", "--json", "--help", NULL};
    static const char *const shorts[] = {"-C", "-h", NULL};

    for (int i = 0; longs[i] != NULL; i++) {
        size_t n = strlen(longs[i]);
        if (strncmp(arg, longs[i], n) == 0 && (arg[n] == '\0' || arg[n] == '='))
            return longs[i];
    }
    for (int i = 0; shorts[i] != NULL; i++)
        if (strcmp(arg, shorts[i]) == 0)
            return shorts[i];
    return NULL;
}

static ms_status load_deploy(ms__ld *l, const json_t *d, ms_agent_deploy *out)
{
    ms_status s = ms__ld_object(l, d, deploy_keys);

    out->timeout_s = DEPLOY_TIMEOUT_DEFAULT_S;
    if (s == MS_OK)
        s = ms__ld_string(l, d, "build_dir", true, 4096, &out->build_dir);
    if (s == MS_OK)
        s = ms__ld_int(l, d, "timeout_s", false, 1, 86400, &out->timeout_s);
    if (s == MS_OK)
        s = ms__ld_strings(l, d, "args", false, TEXT_MAX, &out->args, &out->argc);
    for (size_t i = 0; s == MS_OK && i < out->argc; i++) {
        const char *opt = reserved_deploy_arg(out->args[i]);
        if (opt != NULL) {
            size_t mark = ms__ld_key(l, "args");
            ms__ld_index(l, i);
            if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0)
                s = ms__ld_err(l,
                               "'%.64s' is not allowed: mstack deploy would print its help "
                               "and deploy nothing",
                               out->args[i]);
            else
                s = ms__ld_err(l,
                               "'%.64s' is not allowed: the pipeline sets %s itself (--root and "
                               "--json always, --no-promote when autonomy.may_deploy is false)",
                               out->args[i], opt);
            ms__ld_pop(l, mark);
        }
    }
    return s;
}

static ms_status load_actions(ms__ld *l, ms_agent_config *c)
{
    const json_t *actions = json_object_get(c->root, "actions");
    size_t mark;
    ms_status s;

    if (actions == NULL)
        return MS_OK;
    mark = ms__ld_key(l, "actions");
    s = ms__ld_object(l, actions, actions_keys);
    for (int k = 0; s == MS_OK && k < MS_ACTION_COMMAND_COUNT; k++) {
        const json_t *a = json_object_get(actions, action_names[k]);
        size_t mk;
        if (a == NULL)
            continue;
        mk = ms__ld_key(l, action_names[k]);
        s = load_action(l, a, &c->actions[k]);
        c->has_action[k] = s == MS_OK;
        if (s == MS_OK)
            ms__ld_pop(l, mk);
    }
    if (s == MS_OK && json_object_get(actions, "deploy") != NULL) {
        size_t mk = ms__ld_key(l, "deploy");
        s = load_deploy(l, json_object_get(actions, "deploy"), &c->deploy);
        c->has_deploy = s == MS_OK;
        if (s == MS_OK)
            ms__ld_pop(l, mk);
    }
    if (s == MS_OK)
        ms__ld_pop(l, mark);
    return s;
}

static ms_status load_all(ms__ld *l, ms_agent_config *c)
{
    const json_t *root = c->root, *autonomy, *esc;
    int level = 0;
    const char *schema;
    ms_status s = ms__ld_object(l, root, top_keys);

    if (s == MS_OK)
        s = ms__ld_string(l, root, "$schema", false, 1024, &schema);
    if (s == MS_OK)
        s = ms__ld_string(l, root, "component", true, 64, &c->component);
    if (s == MS_OK && !ms__ld_name_valid(c->component))
        s = ms__ld_field_err(l, "component",
                             "'%.64s' is not a component name ([a-z0-9-], at most 64 bytes, no "
                             "leading or trailing '-')",
                             c->component);
    if (s == MS_OK)
        s = ms__ld_strings(l, root, "monitored_topics", false, MS_SUBJECT_MAX, &c->topics,
                           &c->topic_count);
    for (size_t i = 0; s == MS_OK && i < c->topic_count; i++) {
        size_t mark = ms__ld_key(l, "monitored_topics");
        ms__ld_index(l, i);
        s = check_subject(l, c->topics[i], true);
        ms__ld_pop(l, mark);
    }
    if (s == MS_OK && json_object_get(root, "autonomy") == NULL)
        s = ms__ld_field_err(l, "autonomy", "required field is missing%s", "");
    autonomy = json_object_get(root, "autonomy");
    if (s == MS_OK) {
        size_t mark = ms__ld_key(l, "autonomy");
        s = ms__ld_object(l, autonomy, autonomy_keys);
        if (s == MS_OK)
            s = ms__ld_enum(l, autonomy, "level", true, autonomy_names, &level);
        if (s == MS_OK)
            s = ms__ld_bool(l, autonomy, "may_deploy", false, &c->may_deploy);
        if (s == MS_OK)
            ms__ld_pop(l, mark);
        c->autonomy = (ms_autonomy)level;
    }
    if (s == MS_OK)
        s = load_rules(l, c);
    if (s == MS_OK)
        s = ms__ld_strings(l, root, "responsibilities", false, TEXT_MAX, &c->responsibilities,
                           &c->responsibility_count);
    if (s == MS_OK)
        s = ms__ld_strings(l, root, "constraints", false, TEXT_MAX, &c->constraints,
                           &c->constraint_count);
    if (s == MS_OK)
        s = load_actions(l, c);
    esc = json_object_get(root, "escalation");
    if (s == MS_OK && esc != NULL) {
        size_t mark = ms__ld_key(l, "escalation");
        s = ms__ld_object(l, esc, escalation_keys);
        if (s == MS_OK)
            s = ms__ld_string(l, esc, "subject", true, MS_SUBJECT_MAX - 1, &c->escalation);
        if (s == MS_OK) {
            size_t mk = ms__ld_key(l, "subject");
            s = check_subject(l, c->escalation, false);
            ms__ld_pop(l, mk);
        }
        if (s == MS_OK)
            ms__ld_pop(l, mark);
    }
    if (s == MS_OK && c->escalation == NULL) {
        snprintf(c->default_escalation, sizeof c->default_escalation, "mainstack.escalation.%s",
                 c->component);
        c->escalation = c->default_escalation;
    }
    return s;
}

ms_status ms_agent_config_from_json(const json_t *root, const char *source, ms_agent_config **out)
{
    ms_agent_config *c = NULL;
    ms__ld l;
    ms_status s;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_agent_config_from_json: out is NULL");
    *out = NULL;
    if (root == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_agent_config_from_json: root is NULL");
    if (source == NULL)
        source = "agent-config.json";
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
    ms_agent_config_unref(c);
    return s;
}

ms_status ms_agent_config_load(const char *path, ms_agent_config **out)
{
    json_t *root = NULL;
    ms_status s;

    if (out == NULL || path == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_agent_config_load: path or out is NULL");
    *out = NULL;
    s = ms_json_load_file(path, MS__CONTEXT_MAX_FILE, &root);
    if (s == MS_OK)
        s = ms_agent_config_from_json(root, path, out);
    json_decref(root);
    return s;
}

ms_agent_config *ms_agent_config_ref(ms_agent_config *cfg)
{
    if (cfg != NULL)
        atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void ms_agent_config_unref(ms_agent_config *cfg)
{
    if (cfg == NULL || atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    ms__arena_free(&cfg->arena);
    json_decref(cfg->root);
    ms__free(cfg->source);
    ms__free(cfg);
}

const char *ms_agent_config_source(const ms_agent_config *cfg)
{
    return cfg ? cfg->source : NULL;
}

const char *ms_agent_config_component(const ms_agent_config *cfg)
{
    return cfg ? cfg->component : NULL;
}

size_t ms_agent_config_topic_count(const ms_agent_config *cfg)
{
    return cfg ? cfg->topic_count : 0;
}

const char *ms_agent_config_topic_at(const ms_agent_config *cfg, size_t i)
{
    return cfg && i < cfg->topic_count ? cfg->topics[i] : NULL;
}

ms_autonomy ms_agent_config_autonomy(const ms_agent_config *cfg)
{
    return cfg ? cfg->autonomy : MS_AUTONOMY_OBSERVE;
}

bool ms_agent_config_may_deploy(const ms_agent_config *cfg)
{
    return cfg ? cfg->may_deploy : false;
}

size_t ms_agent_config_rule_count(const ms_agent_config *cfg)
{
    return cfg ? cfg->rule_count : 0;
}

const ms_agent_rule *ms_agent_config_rule_at(const ms_agent_config *cfg, size_t i)
{
    return cfg && i < cfg->rule_count ? &cfg->rules[i] : NULL;
}

size_t ms_agent_config_responsibility_count(const ms_agent_config *cfg)
{
    return cfg ? cfg->responsibility_count : 0;
}

const char *ms_agent_config_responsibility_at(const ms_agent_config *cfg, size_t i)
{
    return cfg && i < cfg->responsibility_count ? cfg->responsibilities[i] : NULL;
}

size_t ms_agent_config_constraint_count(const ms_agent_config *cfg)
{
    return cfg ? cfg->constraint_count : 0;
}

const char *ms_agent_config_constraint_at(const ms_agent_config *cfg, size_t i)
{
    return cfg && i < cfg->constraint_count ? cfg->constraints[i] : NULL;
}

const ms_agent_action *ms_agent_config_action(const ms_agent_config *cfg, ms_action_kind kind)
{
    if (cfg == NULL || (unsigned)kind >= MS_ACTION_COMMAND_COUNT || !cfg->has_action[kind])
        return NULL;
    return &cfg->actions[kind];
}

const ms_agent_deploy *ms_agent_config_deploy(const ms_agent_config *cfg)
{
    return cfg != NULL && cfg->has_deploy ? &cfg->deploy : NULL;
}

const char *ms_agent_config_escalation_subject(const ms_agent_config *cfg)
{
    return cfg ? cfg->escalation : NULL;
}

const json_t *ms_agent_config_json(const ms_agent_config *cfg)
{
    return cfg ? cfg->root : NULL;
}

/* --- a component directory ----------------------------------------------------- */

ms_status ms_context_load_dir(const char *dir, ms_context **ctx, ms_agent_config **cfg)
{
    char path[4096];
    ms_context *c = NULL;
    ms_agent_config *a = NULL;
    ms_status s;
    int n;

    if (ctx == NULL || cfg == NULL || dir == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_context_load_dir: dir, ctx or cfg is NULL");
    *ctx = NULL;
    *cfg = NULL;
    n = snprintf(path, sizeof path, "%s/context/context.json", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return ms__err(MS_ERR_INVALID_ARG, "%.64s...: directory name too long", dir);
    s = ms_context_load(path, &c);
    if (s != MS_OK)
        goto cleanup;
    n = snprintf(path, sizeof path, "%s/context/agent-config.json", dir);
    if (n < 0 || (size_t)n >= sizeof path) {
        s = ms__err(MS_ERR_INVALID_ARG, "%.64s...: directory name too long", dir);
        goto cleanup;
    }
    s = ms_agent_config_load(path, &a);
    if (s != MS_OK)
        goto cleanup;
    if (strcmp(ms_context_component(c), a->component) != 0) {
        s = ms__err(MS_ERR_SCHEMA, "%s: /component: '%s' differs from '%s' in %s", a->source,
                    a->component, ms_context_component(c), ms_context_source(c));
        goto cleanup;
    }
    *ctx = c;
    *cfg = a;
    c = NULL;
    a = NULL;

cleanup:
    ms_context_unref(c);
    ms_agent_config_unref(a);
    return s;
}
