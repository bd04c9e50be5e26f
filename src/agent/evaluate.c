/*
 * evaluate.c - the agent's decision function and its JSON forms.
 *
 * ms_agent_evaluate first reads the facts of the message (type, subject,
 * and for interface_changed / dependency_update the names, versions, bump
 * and breaking flag of its payload), then applies the policy of agent.h:
 * malformed typed payloads, the config's rules in order (act bounded by the
 * autonomy level), then the built-in "default:" policy. It reads only its
 * arguments: no I/O, no clock, so it is deterministic and safe to replay.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "mainstack/agent.h"
#include "mainstack/json.h"
#include "mainstack/subject.h"

typedef struct facts {
    ms_msg_type type;
    const char *type_name; /* NULL: no Ms-Type */
    const char *subject;
    bool typed;       /* interface_changed or dependency_update */
    const char *name; /* interface_name / name; NULL when unreadable */
    const char *from_text, *to_text;
    bool breaking, has_breaking;
    bool has_versions; /* both parsed */
    ms_semver from, to;
    ms_bump bump;
    int direction;       /* ms_semver_compare(to, from) */
    char malformed[512]; /* "" when the payload is well-formed */
    json_t *payload;     /* owns the strings above; released by evaluate */
} facts;

static void set_decision(ms_decision *d, ms_verdict v, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void set_decision(ms_decision *d, ms_verdict v, const char *rule, const char *fmt, ...)
{
    va_list ap;
    d->verdict = v;
    snprintf(d->rule, sizeof d->rule, "%s", rule);
    va_start(ap, fmt);
    vsnprintf(d->reason, sizeof d->reason, fmt, ap);
    va_end(ap);
}

static void malformed(facts *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void malformed(facts *f, const char *fmt, ...)
{
    va_list ap;
    if (f->malformed[0] != '\0')
        return; /* the first problem is the one reported */
    va_start(ap, fmt);
    vsnprintf(f->malformed, sizeof f->malformed, fmt, ap);
    va_end(ap);
}

/* A string member of the payload, or NULL (recording why). */
static const char *payload_string(facts *f, const json_t *p, const char *key)
{
    const json_t *v = json_object_get(p, key);
    if (v == NULL) {
        malformed(f, "payload field '%s' is missing", key);
        return NULL;
    }
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        malformed(f, "payload field '%s' must be a non-empty string", key);
        return NULL;
    }
    return json_string_value(v);
}

static void parse_versions(facts *f, const char *from_key, const char *to_key)
{
    if (f->from_text == NULL || f->to_text == NULL)
        return;
    if (ms_semver_coerce(f->from_text, &f->from) != MS_OK) {
        malformed(f, "payload field '%s': %s", from_key, ms_last_error());
        return;
    }
    if (ms_semver_coerce(f->to_text, &f->to) != MS_OK) {
        malformed(f, "payload field '%s': %s", to_key, ms_last_error());
        return;
    }
    f->has_versions = true;
    f->bump = ms_semver_bump(&f->from, &f->to);
    f->direction = ms_semver_compare(&f->to, &f->from);
}

/* The payload facts; returns MS_ERR_NO_MEMORY only (a malformed payload is
 * a fact, not an error). */
static ms_status read_facts(const ms_message *msg, facts *f)
{
    json_t *p = NULL;
    ms_status s;

    memset(f, 0, sizeof *f);
    f->type = ms_message_type(msg);
    f->type_name = ms_message_type_name(msg);
    f->subject = ms_message_subject(msg);
    if (f->type != MS_MSG_INTERFACE_CHANGED && f->type != MS_MSG_DEPENDENCY_UPDATE)
        return MS_OK;
    f->typed = true;
    if (ms_message_len(msg) == 0) {
        malformed(f, "the payload is empty");
        return MS_OK;
    }
    s = ms_message_json(msg, &p);
    if (s == MS_ERR_NO_MEMORY)
        return s;
    if (s != MS_OK) {
        malformed(f, "the payload is not JSON (%s)", ms_last_error());
        return MS_OK;
    }
    if (!json_is_object(p)) {
        malformed(f, "the payload is not a JSON object");
        goto done;
    }
    if (f->type == MS_MSG_INTERFACE_CHANGED) {
        const json_t *b;
        f->name = payload_string(f, p, "interface_name");
        f->from_text = payload_string(f, p, "old_version");
        f->to_text = payload_string(f, p, "new_version");
        b = json_object_get(p, "breaking");
        if (b == NULL)
            malformed(f, "payload field 'breaking' is missing");
        else if (!json_is_boolean(b))
            malformed(f, "payload field 'breaking' must be true or false");
        else {
            f->has_breaking = true;
            f->breaking = json_is_true(b);
        }
        parse_versions(f, "old_version", "new_version");
    } else {
        f->name = payload_string(f, p, "name");
        f->from_text = payload_string(f, p, "from_version");
        f->to_text = payload_string(f, p, "to_version");
        parse_versions(f, "from_version", "to_version");
    }
done:
    f->payload = p; /* the strings above are borrowed from it */
    return MS_OK;
}

/* --- policy ----------------------------------------------------------------- */

/* What a change needs of the autonomy level: its bump, or major when it is
 * declared breaking. */
static ms_bump change_level(const facts *f)
{
    if (f->has_breaking && f->breaking)
        return MS_BUMP_MAJOR;
    return f->has_versions ? f->bump : MS_BUMP_NONE;
}

static bool autonomy_allows(ms_autonomy a, ms_bump level)
{
    return a != MS_AUTONOMY_OBSERVE && (int)level <= (int)a;
}

/* "interface_changed of interface user-service 1.0.0 -> 1.1.0 (minor bump,
 * compatible) on <subject>" and the like, for reasons. */
static void describe(const facts *f, char *buf, size_t n)
{
    const char *type = f->type_name ? f->type_name : "untyped";
    if (f->typed && f->has_versions) {
        snprintf(buf, n, "%s %s %s -> %s (%s bump%s%s)",
                 f->type == MS_MSG_INTERFACE_CHANGED ? "interface" : "dependency", f->name,
                 f->from_text, f->to_text, ms_bump_str(f->bump),
                 f->direction < 0 ? ", a downgrade" : "",
                 !f->has_breaking ? ""
                 : f->breaking    ? ", breaking"
                                  : ", compatible");
    } else {
        snprintf(buf, n, "%s message on %s", type, f->subject);
    }
}

static bool rule_matches(const ms_rule_match *m, const facts *f)
{
    if (m->type != NULL && (f->type_name == NULL || strcmp(m->type, f->type_name) != 0))
        return false;
    if (m->subject != NULL && !ms_subject_matches(m->subject, f->subject))
        return false;
    if (m->interface != NULL && (f->type != MS_MSG_INTERFACE_CHANGED || f->name == NULL ||
                                 strcmp(m->interface, f->name) != 0))
        return false;
    if (m->dependency != NULL && (f->type != MS_MSG_DEPENDENCY_UPDATE || f->name == NULL ||
                                  strcmp(m->dependency, f->name) != 0))
        return false;
    if (m->has_bump && (!f->has_versions || f->bump != m->bump))
        return false;
    if (m->has_breaking &&
        (f->type != MS_MSG_INTERFACE_CHANGED || !f->has_breaking || f->breaking != m->breaking))
        return false;
    return true;
}

static void apply_rule(ms_decision *d, const ms_agent_rule *r, const facts *f, ms_autonomy a)
{
    char what[512];
    ms_bump level = change_level(f);

    describe(f, what, sizeof what);
    if (r->decision != MS_VERDICT_ACT) {
        set_decision(d, r->decision, r->name, "%s [%s]", r->reason, what);
    } else if (a == MS_AUTONOMY_OBSERVE) {
        set_decision(d, MS_VERDICT_ESCALATE, r->name,
                     "%s [%s] The rule says act, but autonomy is observe, which never acts: "
                     "escalated.",
                     r->reason, what);
    } else if (!autonomy_allows(a, level)) {
        set_decision(d, MS_VERDICT_ESCALATE, r->name,
                     "%s [%s] The rule says act, but a %s change is beyond autonomy %s: "
                     "escalated.",
                     r->reason, what, ms_bump_str(level), ms_autonomy_str(a));
    } else {
        set_decision(d, MS_VERDICT_ACT, r->name, "%s [%s; within autonomy %s]", r->reason, what,
                     ms_autonomy_str(a));
    }
}

/* An interface dependency (kind interface) named name, or NULL. */
static const ms_dependency *interface_dep(const ms_context *ctx, const char *name)
{
    for (size_t i = 0; i < ms_context_dependency_count(ctx); i++) {
        const ms_dependency *d = ms_context_dependency_at(ctx, i);
        if (d->kind == MS_DEP_INTERFACE && strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

static void decide_malformed(ms_decision *d, const facts *f, const ms_context *ctx)
{
    const char *type = f->type_name;
    const char *what = f->type == MS_MSG_INTERFACE_CHANGED ? "interface" : "dependency";
    bool relevant = false;

    if (f->name != NULL)
        relevant = f->type == MS_MSG_INTERFACE_CHANGED
                       ? ms_context_find_consumed(ctx, f->name) != NULL ||
                             interface_dep(ctx, f->name) != NULL
                       : ms_context_find_dependency(ctx, f->name) != NULL;
    if (relevant)
        set_decision(d, MS_VERDICT_ESCALATE, "default:malformed-payload",
                     "%s on %s is about %s %s of this component, but it is malformed: %s; a "
                     "person checks the announcement.",
                     type, f->subject, what, f->name, f->malformed);
    else if (f->name != NULL)
        set_decision(d, MS_VERDICT_IGNORE, "default:malformed-payload",
                     "%s on %s is malformed (%s) and about %s %s, which this component does "
                     "not use.",
                     type, f->subject, f->malformed, what, f->name);
    else
        set_decision(d, MS_VERDICT_IGNORE, "default:malformed-payload",
                     "%s on %s is malformed (%s): it cannot be told which %s it is about.", type,
                     f->subject, f->malformed, what);
}

static void decide_interface(ms_decision *d, const facts *f, const ms_context *ctx, ms_autonomy a)
{
    const ms_interface_consumed *c = ms_context_find_consumed(ctx, f->name);
    const ms_dependency *dep = c ? NULL : interface_dep(ctx, f->name);
    const ms_interface_provided *own;
    const char *range_text = c ? c->version : dep ? dep->version : NULL;
    const ms_range *range = c ? c->range : dep ? dep->range : NULL;
    char what[512];

    describe(f, what, sizeof what);
    if (range == NULL) {
        own = ms_context_find_provided(ctx, f->name);
        if (own != NULL)
            set_decision(d, MS_VERDICT_IGNORE, "default:own-interface",
                         "%s: this component provides that interface (at %s); its own change "
                         "is nothing to react to.",
                         what, own->version);
        else
            set_decision(d, MS_VERDICT_IGNORE, "default:not-relevant",
                         "%s: this component does not consume that interface.", what);
        return;
    }
    if (f->breaking)
        set_decision(d, MS_VERDICT_ESCALATE, "default:breaking-interface",
                     "%s: a breaking change of an interface this component consumes (range "
                     "%s); a person decides how to follow.",
                     what, range_text);
    else if (f->direction < 0)
        set_decision(d, MS_VERDICT_ESCALATE, "default:interface-downgrade",
                     "%s: the interface went back to an older version (consumed range %s).", what,
                     range_text);
    else if (f->bump == MS_BUMP_NONE)
        set_decision(d, MS_VERDICT_IGNORE, "default:no-change",
                     "%s: both versions have the same precedence; nothing changed.", what);
    else if (!ms_range_match(range, &f->to))
        set_decision(d, MS_VERDICT_ESCALATE, "default:out-of-range",
                     "%s: %s is outside the consumed range %s.", what, f->to_text, range_text);
    else if (autonomy_allows(a, f->bump))
        set_decision(d, MS_VERDICT_ACT, "default:compatible-interface",
                     "%s: a compatible change within the consumed range %s and autonomy %s; "
                     "rebuild and test against it.",
                     what, range_text, ms_autonomy_str(a));
    else
        set_decision(d, MS_VERDICT_ESCALATE, "default:autonomy-exceeded",
                     "%s: a compatible change, but autonomy %s does not act on a %s change.", what,
                     ms_autonomy_str(a), ms_bump_str(f->bump));
}

static void decide_dependency(ms_decision *d, const facts *f, const ms_context *ctx, ms_autonomy a)
{
    const ms_dependency *dep = ms_context_find_dependency(ctx, f->name);
    char what[512];

    describe(f, what, sizeof what);
    if (dep == NULL)
        set_decision(d, MS_VERDICT_IGNORE, "default:not-relevant",
                     "%s: not a dependency of this component.", what);
    else if (f->direction < 0)
        set_decision(d, MS_VERDICT_ESCALATE, "default:dependency-downgrade",
                     "%s: the %s %s went back to an older version (declared range %s).", what,
                     ms_dep_kind_str(dep->kind), dep->name, dep->version);
    else if (f->bump == MS_BUMP_NONE)
        set_decision(d, MS_VERDICT_IGNORE, "default:no-change",
                     "%s: both versions have the same precedence; nothing changed.", what);
    else if (f->bump == MS_BUMP_MAJOR)
        set_decision(d, MS_VERDICT_ESCALATE, "default:major-dependency",
                     "%s: a major update of the %s %s (declared range %s) may break this "
                     "component; a person decides.",
                     what, ms_dep_kind_str(dep->kind), dep->name, dep->version);
    else if (!ms_range_match(dep->range, &f->to))
        set_decision(d, MS_VERDICT_ESCALATE, "default:out-of-range",
                     "%s: %s is outside the declared range %s.", what, f->to_text, dep->version);
    else if (autonomy_allows(a, f->bump))
        set_decision(d, MS_VERDICT_ACT, "default:dependency-update",
                     "%s: within the declared range %s and autonomy %s; rebuild and test "
                     "with it.",
                     what, dep->version, ms_autonomy_str(a));
    else
        set_decision(d, MS_VERDICT_ESCALATE, "default:autonomy-exceeded",
                     "%s: within the declared range %s, but autonomy %s does not act on a %s "
                     "change.",
                     what, dep->version, ms_autonomy_str(a), ms_bump_str(f->bump));
}

static void decide_other(ms_decision *d, const facts *f, const ms_agent_config *cfg)
{
    char what[512];

    describe(f, what, sizeof what);
    for (size_t i = 0; i < ms_agent_config_topic_count(cfg); i++) {
        const char *topic = ms_agent_config_topic_at(cfg, i);
        if (ms_subject_matches(topic, f->subject)) {
            set_decision(d, MS_VERDICT_ESCALATE, "default:monitored-topic",
                         "%s: on the monitored topic %s, and no rule says what to do with it; "
                         "a person decides.",
                         what, topic);
            return;
        }
    }
    set_decision(d, MS_VERDICT_IGNORE, "default:not-relevant",
                 "%s: not on a monitored topic, and no rule matches it.", what);
}

ms_status ms_agent_evaluate(const ms_message *msg, const ms_context *ctx,
                            const ms_agent_config *cfg, ms_decision *out)
{
    ms_autonomy a;
    facts f;
    ms_status s;

    if (msg == NULL || ctx == NULL || cfg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_agent_evaluate: an argument is NULL");
    memset(out, 0, sizeof *out);
    if (strcmp(ms_context_component(ctx), ms_agent_config_component(cfg)) != 0)
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_agent_evaluate: the context is of '%s', the config of '%s'",
                       ms_context_component(ctx), ms_agent_config_component(cfg));
    s = read_facts(msg, &f);
    if (s != MS_OK)
        return ms__err(s, "ms_agent_evaluate: out of memory reading the payload");
    a = ms_agent_config_autonomy(cfg);
    if (f.typed && f.malformed[0] != '\0') {
        decide_malformed(out, &f, ctx);
        goto done;
    }
    for (size_t i = 0; i < ms_agent_config_rule_count(cfg); i++) {
        const ms_agent_rule *r = ms_agent_config_rule_at(cfg, i);
        if (rule_matches(&r->match, &f)) {
            apply_rule(out, r, &f, a);
            goto done;
        }
    }
    if (f.type == MS_MSG_INTERFACE_CHANGED)
        decide_interface(out, &f, ctx, a);
    else if (f.type == MS_MSG_DEPENDENCY_UPDATE)
        decide_dependency(out, &f, ctx, a);
    else
        decide_other(out, &f, cfg);

done:
    json_decref(f.payload);
    return MS_OK;
}

/* --- JSON forms ------------------------------------------------------------- */

/* obj[key] = value (stolen); false when out of memory. */
static bool put(json_t *obj, const char *key, json_t *value)
{
    return value != NULL && json_object_set_new(obj, key, value) == 0;
}

static bool put_str(json_t *obj, const char *key, const char *value)
{
    return value == NULL || put(obj, key, json_string(value));
}

ms_status ms_decision_to_json(const ms_decision *d, const char *component, const ms_message *msg,
                              json_t **out)
{
    json_t *j = NULL, *m = NULL;
    ms_status s = MS_ERR_NO_MEMORY;

    if (out == NULL || d == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_decision_to_json: d or out is NULL");
    *out = NULL;
    j = json_object();
    if (j == NULL || !put_str(j, "component", component) ||
        !put_str(j, "decision", ms_verdict_str(d->verdict)) || !put_str(j, "rule", d->rule) ||
        !put_str(j, "reason", d->reason))
        goto cleanup;
    if (msg != NULL) {
        m = json_object();
        if (m == NULL || !put_str(m, "id", ms_message_id(msg)) ||
            !put_str(m, "subject", ms_message_subject(msg)) ||
            !put_str(m, "type", ms_message_type_name(msg)))
            goto cleanup;
        if (json_object_set_new(j, "message", m) != 0) {
            m = NULL;
            goto cleanup;
        }
        m = NULL;
    }
    *out = j;
    j = NULL;
    s = MS_OK;

cleanup:
    json_decref(m);
    json_decref(j);
    return s == MS_OK ? s : ms__err(s, "ms_decision_to_json: out of memory");
}

ms_status ms_decision_from_json(const json_t *j, const char *source, ms_decision *out)
{
    const char *verdict = NULL, *rule = "", *reason = "";
    ms_status s;

    if (j == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_decision_from_json: j or out is NULL");
    if (source == NULL)
        source = "decision";
    memset(out, 0, sizeof *out);
    s = ms_json_get_string(j, "decision", source, 1, &verdict);
    if (s == MS_OK)
        s = ms_json_get_string(j, "rule", source, 0, &rule);
    if (s == MS_OK)
        s = ms_json_get_string(j, "reason", source, 0, &reason);
    if (s != MS_OK)
        return s;
    if (ms_verdict_parse(verdict, &out->verdict) != MS_OK)
        return ms__err(MS_ERR_SCHEMA,
                       "%s: field 'decision': '%.64s' is not one of ignore, act, "
                       "escalate",
                       source, verdict);
    snprintf(out->rule, sizeof out->rule, "%s", rule);
    snprintf(out->reason, sizeof out->reason, "%s", reason);
    return MS_OK;
}

static json_t *message_json(const ms_message *msg)
{
    json_t *m = json_object(), *hdrs = NULL, *payload = NULL;
    size_t n = ms_message_header_count(msg);
    const void *data = ms_message_data(msg);
    size_t len = ms_message_len(msg);

    if (m == NULL)
        return NULL;
    if (!put_str(m, "subject", ms_message_subject(msg)) ||
        !put_str(m, "reply", ms_message_reply(msg)) || !put_str(m, "id", ms_message_id(msg)) ||
        !put_str(m, "source", ms_message_source(msg)) ||
        !put_str(m, "type", ms_message_type_name(msg)) ||
        !put_str(m, "correlation_id", ms_message_correlation_id(msg)) ||
        !put_str(m, "timestamp", ms_message_timestamp(msg)) ||
        !put_str(m, "traceparent", ms_message_traceparent(msg)))
        goto fail;
    if (n > 0) {
        hdrs = json_object();
        if (hdrs == NULL)
            goto fail;
        for (size_t i = 0; i < n; i++) {
            const char *k, *v;
            json_t *list, *value;
            if (ms_message_header_at(msg, i, &k, &v) != MS_OK)
                continue;
            value = json_string(v);
            if (value == NULL)
                continue; /* not UTF-8: left out rather than mangled */
            list = json_object_get(hdrs, k);
            if (list == NULL) {
                list = json_array();
                if (list == NULL || json_object_set_new(hdrs, k, list) != 0)
                    goto fail;
            }
            if (json_array_append_new(list, value) != 0)
                goto fail;
        }
        if (json_object_set_new(m, "headers", hdrs) != 0) {
            hdrs = NULL;
            goto fail;
        }
        hdrs = NULL;
    }
    if (len == 0) {
        payload = json_null();
    } else {
        payload = json_loadb(data, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (payload == NULL) {
            json_t *text = json_stringn(data, len); /* NULL when not UTF-8 */
            payload = json_object();
            if (payload == NULL)
                goto fail;
            if (text != NULL ? json_object_set_new(payload, "text", text) != 0
                             : !put(payload, "bytes", json_integer((json_int_t)len)))
                goto fail;
        }
    }
    if (payload == NULL || json_object_set_new(m, "payload", payload) != 0) {
        payload = NULL;
        goto fail;
    }
    return m;

fail:
    json_decref(payload);
    json_decref(hdrs);
    json_decref(m);
    return NULL;
}

ms_status ms_agent_input_json(const ms_message *msg, const ms_context *ctx,
                              const ms_agent_config *cfg, json_t **out)
{
    json_t *j;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_agent_input_json: out is NULL");
    *out = NULL;
    if (msg == NULL || ctx == NULL || cfg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_agent_input_json: an argument is NULL");
    j = json_object();
    if (j == NULL || !put(j, "message", message_json(msg)) ||
        !put(j, "context", json_deep_copy(ms_context_json(ctx))) ||
        !put(j, "config", json_deep_copy(ms_agent_config_json(cfg)))) {
        json_decref(j);
        return ms__err(MS_ERR_NO_MEMORY, "ms_agent_input_json: out of memory");
    }
    *out = j;
    return MS_OK;
}
