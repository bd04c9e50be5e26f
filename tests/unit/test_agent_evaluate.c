/*
 * test_agent_evaluate.c - the agent's decision function: the whole default
 * policy table, rule order and every match field, autonomy bounding of
 * rules, irrelevant messages, malformed interface_changed and
 * dependency_update payloads, the real components' configs, determinism,
 * and the JSON forms of a decision and of the evaluator's input.
 */
#include <stdio.h>
#include <string.h>

#include "ms_test.h"

/* A context that consumes interface "up" (>=1.0.0 <2.0.0), provides "me",
 * and depends on library "lib" (>=1.2 <2) and component "svc" (^0.3). */
static const char *const context_text =
    "{\"component\": \"me\", \"version\": \"1.0.0\", \"purpose\": \"tests\","
    " \"dependencies\": ["
    "  {\"name\": \"lib\", \"kind\": \"library\", \"version\": \">=1.2 <2\", \"purpose\": \"p\"},"
    "  {\"name\": \"svc\", \"kind\": \"component\", \"version\": \"^0.3\", \"purpose\": \"p\"},"
    "  {\"name\": \"up2\", \"kind\": \"interface\", \"version\": \"^2.1\", \"purpose\": \"p\"}],"
    " \"interfaces\": {\"provides\": [{\"name\": \"me\", \"version\": \"1.0.0\"}],"
    "  \"consumes\": [{\"name\": \"up\", \"version\": \">=1.0.0 <2.0.0\"}]}}";

static ms_context *make_context(void)
{
    json_t *j = NULL;
    ms_context *ctx = NULL;
    ms_assert_ok(ms_json_parse(context_text, strlen(context_text), "ctx", &j));
    ms_assert_ok(ms_context_from_json(j, "ctx", &ctx));
    json_decref(j);
    return ctx;
}

/* A config of component "me" with the given autonomy and rules (a JSON
 * array text, or NULL for none). */
static ms_agent_config *make_config(const char *level, const char *rules)
{
    char text[4096];
    json_t *j = NULL;
    ms_agent_config *cfg = NULL;
    snprintf(text, sizeof text,
             "{\"component\": \"me\", \"autonomy\": {\"level\": \"%s\"},"
             " \"monitored_topics\": [\"mainstack.interface.changed.>\", \"events.watch.>\"],"
             " \"rules\": %s}",
             level, rules ? rules : "[]");
    ms_assert_ok(ms_json_parse(text, strlen(text), "cfg", &j));
    ms_assert_ok(ms_agent_config_from_json(j, "cfg", &cfg));
    json_decref(j);
    return cfg;
}

static ms_message *iface(const char *name, const char *from, const char *to, bool breaking)
{
    ms_message *m = NULL;
    ms_assert_ok(ms_msg_interface_changed(NULL, "test", name, from, to, breaking, "s", &m));
    return m;
}

static ms_message *dep(const char *name, const char *from, const char *to)
{
    ms_message *m = NULL;
    ms_assert_ok(ms_msg_dependency_update(NULL, "test", name, from, to, &m));
    return m;
}

static ms_message *event(const char *subject)
{
    ms_message *m = NULL;
    ms_assert_ok(ms_msg_event(subject, "test", NULL, &m));
    return m;
}

/* A message of type t on subject with the raw payload text. */
static ms_message *raw(ms_msg_type t, const char *subject, const char *payload)
{
    ms_message *m = NULL;
    ms_assert_ok(ms_message_create(subject, payload, strlen(payload), &m));
    if (t != MS_MSG_NONE)
        ms_assert_ok(ms_message_set_type(m, t));
    return m;
}

/* Evaluate msg (taken) and check verdict, rule and a piece of the reason. */
static void expect(ms_message *msg, const ms_context *ctx, const ms_agent_config *cfg,
                   ms_verdict verdict, const char *rule, const char *reason_has, int line)
{
    ms_decision d;
    ms_assert_ok(ms_agent_evaluate(msg, ctx, cfg, &d));
    if (d.verdict != verdict || strcmp(d.rule, rule) != 0 ||
        (reason_has != NULL && strstr(d.reason, reason_has) == NULL))
        fail_msg("line %d: got %s / %s / '%s'; want %s / %s / '...%s...'", line,
                 ms_verdict_str(d.verdict), d.rule, d.reason, ms_verdict_str(verdict), rule,
                 reason_has ? reason_has : "");
    ms_message_unref(msg);
}

#define EXPECT(msg, v, rule, has) expect((msg), ctx, cfg, (v), (rule), (has), __LINE__)
#define IGN MS_VERDICT_IGNORE
#define ACT MS_VERDICT_ACT
#define ESC MS_VERDICT_ESCALATE

static void default_interface_policy(void **state)
{
    ms_context *ctx = make_context();
    ms_agent_config *cfg = make_config("minor", NULL);

    EXPECT(iface("up", "1.0.0", "1.1.0", false), ACT, "default:compatible-interface",
           "interface up 1.0.0 -> 1.1.0 (minor bump, compatible)");
    EXPECT(iface("up", "1.0.0", "1.0.1", false), ACT, "default:compatible-interface",
           "autonomy minor");
    EXPECT(iface("up", "1.0.0", "2.0.0", true), ESC, "default:breaking-interface",
           "range >=1.0.0 <2.0.0");
    /* breaking with only a minor bump: the flag decides */
    EXPECT(iface("up", "1.2.0", "1.3.0", true), ESC, "default:breaking-interface",
           "minor bump, breaking");
    EXPECT(iface("up", "1.9.0", "2.0.0", false), ESC, "default:out-of-range",
           "2.0.0 is outside the consumed range >=1.0.0 <2.0.0");
    EXPECT(iface("up", "1.2.0", "1.1.0", false), ESC, "default:interface-downgrade", "a downgrade");
    EXPECT(iface("up", "1.2.0", "1.2.0+b2", false), IGN, "default:no-change", "same precedence");
    EXPECT(iface("me", "1.0.0", "1.1.0", false), IGN, "default:own-interface", "provides");
    EXPECT(iface("other", "1.0.0", "1.1.0", false), IGN, "default:not-relevant",
           "does not consume");
    /* an interface declared only as a dependency of kind interface counts */
    EXPECT(iface("up2", "2.1.0", "2.2.0", false), ACT, "default:compatible-interface",
           "range ^2.1");
    ms_agent_config_unref(cfg);

    cfg = make_config("patch", NULL);
    EXPECT(iface("up", "1.0.0", "1.0.1", false), ACT, "default:compatible-interface", "patch");
    EXPECT(iface("up", "1.0.0", "1.1.0", false), ESC, "default:autonomy-exceeded",
           "autonomy patch does not act on a minor change");
    ms_agent_config_unref(cfg);

    cfg = make_config("observe", NULL);
    EXPECT(iface("up", "1.0.0", "1.0.1", false), ESC, "default:autonomy-exceeded",
           "autonomy observe");
    ms_agent_config_unref(cfg);

    ms_context_unref(ctx);
}

static void default_dependency_policy(void **state)
{
    ms_context *ctx = make_context();
    ms_agent_config *cfg = make_config("patch", NULL);

    EXPECT(dep("lib", "1.2.0", "1.2.1"), ACT, "default:dependency-update",
           "dependency lib 1.2.0 -> 1.2.1 (patch bump)");
    EXPECT(dep("lib", "1.2.0", "1.3.0"), ESC, "default:autonomy-exceeded",
           "autonomy patch does not act on a minor change");
    ms_agent_config_unref(cfg);

    cfg = make_config("minor", NULL);
    EXPECT(dep("lib", "1.2.0", "1.3.0"), ACT, "default:dependency-update",
           "within the declared range >=1.2 <2");
    EXPECT(dep("lib", "1.2", "v1.3"), ACT, "default:dependency-update", "1.2 -> v1.3");
    EXPECT(dep("svc", "0.3.0", "0.4.0"), ESC, "default:out-of-range",
           "0.4.0 is outside the declared range ^0.3");
    EXPECT(dep("lib", "1.3.0", "1.2.0"), ESC, "default:dependency-downgrade",
           "library lib went back");
    EXPECT(dep("lib", "1.3.0", "1.3.0"), IGN, "default:no-change", NULL);
    EXPECT(dep("nope", "1.0.0", "1.0.1"), IGN, "default:not-relevant", "not a dependency");
    ms_agent_config_unref(cfg);

    cfg = make_config("major", NULL);
    EXPECT(dep("lib", "1.2.0", "2.0.0"), ESC, "default:major-dependency",
           "a major update of the library lib");
    ms_agent_config_unref(cfg);

    cfg = make_config("observe", NULL);
    EXPECT(dep("lib", "1.2.0", "1.2.1"), ESC, "default:autonomy-exceeded", "autonomy observe");
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void other_messages_by_topic(void **state)
{
    ms_context *ctx = make_context();
    ms_agent_config *cfg = make_config("major", NULL);

    EXPECT(event("events.watch.thing"), ESC, "default:monitored-topic",
           "event message on events.watch.thing: on the monitored topic events.watch.>");
    EXPECT(event("events.other.thing"), IGN, "default:not-relevant", "not on a monitored topic");
    EXPECT(raw(MS_MSG_NONE, "events.watch.x", "hi"), ESC, "default:monitored-topic",
           "untyped message");
    EXPECT(raw(MS_MSG_COMMAND, "x.y", "{}"), IGN, "default:not-relevant", "command message");
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void rules_first_match_wins_in_order(void **state)
{
    ms_context *ctx = make_context();
    ms_agent_config *cfg =
        make_config("minor", "[{\"name\": \"first\", \"match\": {\"type\": \"interface_changed\"},"
                             "  \"decision\": \"escalate\", \"reason\": \"first rule\"},"
                             " {\"name\": \"second\", \"match\": {\"interface\": \"up\"},"
                             "  \"decision\": \"ignore\", \"reason\": \"second rule\"}]");

    EXPECT(iface("up", "1.0.0", "1.1.0", false), ESC, "first", "first rule [interface up");
    ms_agent_config_unref(cfg);
    cfg = make_config("minor", "[{\"name\": \"second\", \"match\": {\"interface\": \"up\"},"
                               "  \"decision\": \"ignore\", \"reason\": \"second rule\"},"
                               " {\"name\": \"first\", \"match\": {\"type\": "
                               "\"interface_changed\"},"
                               "  \"decision\": \"escalate\", \"reason\": \"first rule\"}]");
    EXPECT(iface("up", "1.0.0", "1.1.0", false), IGN, "second", "second rule");
    /* the second rule only catches other interfaces */
    EXPECT(iface("zzz", "1.0.0", "1.1.0", false), ESC, "first", NULL);
    /* a catch-all rule: an empty match matches everything */
    ms_agent_config_unref(cfg);
    cfg = make_config("minor", "[{\"name\": \"all\", \"decision\": \"ignore\", \"reason\": "
                               "\"quiet\"}]");
    EXPECT(event("events.watch.a"), IGN, "all", "quiet [event message on events.watch.a]");
    EXPECT(dep("lib", "1.2.0", "2.0.0"), IGN, "all", NULL);
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void each_match_field(void **state)
{
    ms_context *ctx = make_context();
    /* each rule escalates with its own name, so the winner is visible */
    ms_agent_config *cfg = make_config(
        "minor",
        "[{\"name\": \"by-subject\", \"match\": {\"subject\": \"events.s.*\"},"
        "  \"decision\": \"escalate\", \"reason\": \"r\"},"
        " {\"name\": \"by-breaking\", \"match\": {\"breaking\": true},"
        "  \"decision\": \"escalate\", \"reason\": \"r\"},"
        " {\"name\": \"by-bump\", \"match\": {\"bump\": \"patch\"},"
        "  \"decision\": \"escalate\", \"reason\": \"r\"},"
        " {\"name\": \"by-dependency\", \"match\": {\"dependency\": \"svc\"},"
        "  \"decision\": \"escalate\", \"reason\": \"r\"},"
        " {\"name\": \"by-type\", \"match\": {\"type\": \"command\"},"
        "  \"decision\": \"escalate\", \"reason\": \"r\"},"
        " {\"name\": \"by-all\", \"match\": {\"type\": \"interface_changed\","
        "  \"subject\": \"mainstack.interface.changed.up\", \"interface\": \"up\","
        "  \"bump\": \"minor\", \"breaking\": false}, \"decision\": \"ignore\", \"reason\": "
        "\"r\"}]");

    EXPECT(event("events.s.x"), ESC, "by-subject", NULL);
    EXPECT(event("events.s.x.y"), IGN, "default:not-relevant", NULL); /* '*' is one token */
    EXPECT(iface("zzz", "1.0.0", "2.0.0", true), ESC, "by-breaking", NULL);
    EXPECT(iface("zzz", "1.0.0", "1.0.1", false), ESC, "by-bump", NULL);
    EXPECT(dep("zzz", "1.0.0", "1.0.1"), ESC, "by-bump", NULL);
    EXPECT(dep("svc", "0.3.0", "0.4.0"), ESC, "by-dependency", NULL);
    EXPECT(raw(MS_MSG_COMMAND, "x.y", "{}"), ESC, "by-type", NULL);
    /* all six fields hold */
    EXPECT(iface("up", "1.0.0", "1.1.0", false), IGN, "by-all", NULL);
    /* one field off: the defaults decide */
    EXPECT(iface("up", "1.0.0", "1.0.0", false), IGN, "default:no-change", NULL); /* bump none */
    /* subject differs: published on another subject */
    {
        ms_message *m = NULL;
        ms_assert_ok(
            ms_msg_interface_changed("other.subject", "t", "up", "1.0.0", "1.1.0", false, "s", &m));
        EXPECT(m, ACT, "default:compatible-interface", NULL);
    }
    /* breaking and bump only exist for the types that carry them */
    EXPECT(event("events.b.x"), IGN, "default:not-relevant", NULL);
    ms_agent_config_unref(cfg);

    /* interface and dependency name fields do not cross types */
    cfg = make_config("minor", "[{\"name\": \"i\", \"match\": {\"interface\": \"lib\"},"
                               " \"decision\": \"escalate\", \"reason\": \"r\"},"
                               " {\"name\": \"d\", \"match\": {\"dependency\": \"up\"},"
                               " \"decision\": \"escalate\", \"reason\": \"r\"},"
                               " {\"name\": \"b\", \"match\": {\"breaking\": false},"
                               " \"decision\": \"escalate\", \"reason\": \"r\"}]");
    EXPECT(dep("lib", "1.2.0", "1.2.1"), ACT, "default:dependency-update", NULL);
    EXPECT(iface("up", "1.0.0", "1.1.0", false), ESC, "b", NULL);
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void rules_cannot_widen_autonomy(void **state)
{
    ms_context *ctx = make_context();
    const char *act_all = "[{\"name\": \"go\", \"decision\": \"act\", \"reason\": \"just do it\"}]";
    ms_agent_config *cfg = make_config("observe", act_all);

    EXPECT(dep("lib", "1.2.0", "1.2.1"), ESC, "go",
           "The rule says act, but autonomy is observe, which never acts: escalated.");
    EXPECT(event("events.any"), ESC, "go", "autonomy is observe");
    ms_agent_config_unref(cfg);

    cfg = make_config("minor", act_all);
    EXPECT(dep("lib", "1.2.0", "1.3.0"), ACT, "go", "just do it [dependency lib 1.2.0 -> 1.3.0");
    EXPECT(dep("lib", "1.2.0", "2.0.0"), ESC, "go",
           "The rule says act, but a major change is beyond autonomy minor: escalated.");
    /* breaking counts as major whatever the bump */
    EXPECT(iface("up", "1.2.0", "1.3.0", true), ESC, "go", "a major change is beyond autonomy");
    /* a message without versions needs only a level above observe */
    EXPECT(event("events.any"), ACT, "go", "within autonomy minor");
    ms_agent_config_unref(cfg);

    cfg = make_config("patch", act_all);
    EXPECT(dep("lib", "1.2.0", "1.3.0"), ESC, "go", "a minor change is beyond autonomy patch");
    ms_agent_config_unref(cfg);

    cfg = make_config("major", act_all);
    EXPECT(iface("up", "1.0.0", "2.0.0", true), ACT, "go", NULL);
    ms_agent_config_unref(cfg);

    /* escalate and ignore rules are never changed by autonomy */
    cfg = make_config("major", "[{\"name\": \"hold\", \"decision\": \"escalate\", \"reason\": "
                               "\"ask\"}]");
    EXPECT(dep("lib", "1.2.0", "1.2.1"), ESC, "hold", "ask");
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void malformed_payloads(void **state)
{
    ms_context *ctx = make_context();
    /* a rule that would act on any interface change: malformed payloads come first */
    ms_agent_config *cfg = make_config(
        "major", "[{\"name\": \"any-iface\", \"match\": {\"type\": \"interface_changed\"},"
                 " \"decision\": \"act\", \"reason\": \"r\"}]");
    const char *ic = "mainstack.interface.changed.up";
    const char *du = "mainstack.dependency.updated.lib";

    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic, "not json"), IGN, "default:malformed-payload",
           "the payload is not JSON (payload:1:");
    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic, "[1]"), IGN, "default:malformed-payload",
           "not a JSON object");
    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic, ""), IGN, "default:malformed-payload",
           "the payload is empty");
    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic,
               "{\"old_version\": \"1.0.0\", \"new_version\": \"1.1.0\", \"breaking\": false}"),
           IGN, "default:malformed-payload",
           "payload field 'interface_name' is missing): it cannot be told which interface");
    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic,
               "{\"interface_name\": \"up\", \"old_version\": \"1.0.0\", \"new_version\": "
               "\"1.1.0\"}"),
           ESC, "default:malformed-payload",
           "is about interface up of this component, but it is malformed: payload field "
           "'breaking' is missing");
    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic,
               "{\"interface_name\": \"up\", \"old_version\": \"1.0.0\", \"new_version\": "
               "\"banana\", \"breaking\": false}"),
           ESC, "default:malformed-payload", "payload field 'new_version': version 'banana'");
    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic,
               "{\"interface_name\": \"up\", \"old_version\": \"1.0.0\", \"new_version\": "
               "\"1.1.0\", \"breaking\": \"no\"}"),
           ESC, "default:malformed-payload", "'breaking' must be true or false");
    EXPECT(raw(MS_MSG_INTERFACE_CHANGED, ic,
               "{\"interface_name\": \"zzz\", \"old_version\": 1, \"new_version\": "
               "\"1.1.0\", \"breaking\": false}"),
           IGN, "default:malformed-payload", "about interface zzz, which this component does");
    EXPECT(raw(MS_MSG_DEPENDENCY_UPDATE, du,
               "{\"name\": \"lib\", \"from_version\": \"1.2.0\", \"to_version\": 5}"),
           ESC, "default:malformed-payload",
           "about dependency lib of this component, but it is malformed: payload field "
           "'to_version' must be a non-empty string");
    EXPECT(raw(MS_MSG_DEPENDENCY_UPDATE, du, "{\"name\": \"lib\", \"to_version\": \"1.3.0\"}"), ESC,
           "default:malformed-payload", "'from_version' is missing");
    EXPECT(raw(MS_MSG_DEPENDENCY_UPDATE, du, "{\"name\": \"\"}"), IGN, "default:malformed-payload",
           "'name' must be a non-empty string");
    EXPECT(raw(MS_MSG_DEPENDENCY_UPDATE, du, "{\"name\": 7}"), IGN, "default:malformed-payload",
           "cannot be told which dependency");
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void real_components(void **state)
{
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;

    ms_assert_ok(ms_context_load_dir(MS_SOURCE_DIR "/components/notification-service", &ctx, &cfg));
    EXPECT(iface("user-service", "1.0.0", "2.0.0", true), ESC, "user-interface-breaking",
           "a person decides how the templates");
    EXPECT(iface("user-service", "1.0.0", "1.1.0", false), ACT, "user-interface-compatible",
           "within autonomy minor");
    EXPECT(dep("user-service", "1.0.0", "2.0.0"), ESC, "user-service-major", NULL);
    EXPECT(dep("user-service", "1.0.0", "1.1.0"), ACT, "user-service-compatible", NULL);
    EXPECT(dep("user-service", "1.0.0", "1.0.1"), ACT, "default:dependency-update", NULL);
    EXPECT(dep("mainstack", "0.1.0", "0.1.1"), ACT, "mainstack-patch", NULL);
    EXPECT(dep("mainstack", "0.1.0", "0.2.0"), ESC, "default:out-of-range",
           "outside the declared range >=0.1.0 <0.2.0");
    EXPECT(dep("jansson", "2.13", "2.14"), ACT, "default:dependency-update", NULL);
    EXPECT(iface("mainstack-component", "1.0.0", "2.0.0", true), ESC, "component-abi-breaking",
           NULL);
    EXPECT(dep("left-pad", "1.0.0", "1.0.1"), IGN, "default:not-relevant", NULL);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);

    ms_assert_ok(ms_context_load_dir(MS_SOURCE_DIR "/components/user-service", &ctx, &cfg));
    EXPECT(iface("user-service", "1.0.0", "1.1.0", false), IGN, "own-interface-compatible", NULL);
    EXPECT(dep("sqlite3", "3.40.1", "4.0.0"), ESC, "sqlite-major", NULL);
    EXPECT(dep("sqlite3", "3.40.1", "3.45.0"), ACT, "sqlite-compatible", NULL);
    EXPECT(dep("sqlite3", "3.40.1", "3.40.2"), ACT, "default:dependency-update", NULL);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
}

static void deterministic_and_bad_arguments(void **state)
{
    ms_context *ctx = make_context();
    ms_agent_config *cfg = make_config("minor", NULL);
    ms_agent_config *other = NULL;
    ms_message *m = iface("up", "1.0.0", "1.1.0", false);
    ms_decision a, b;
    json_t *j = NULL;
    const char *text = "{\"component\": \"x\", \"autonomy\": {\"level\": \"minor\"}}";

    ms_assert_ok(ms_agent_evaluate(m, ctx, cfg, &a));
    ms_assert_ok(ms_agent_evaluate(m, ctx, cfg, &b));
    assert_int_equal(a.verdict, b.verdict);
    assert_string_equal(a.rule, b.rule);
    assert_string_equal(a.reason, b.reason);
    ms_assert_status(ms_agent_evaluate(NULL, ctx, cfg, &a), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_agent_evaluate(m, NULL, cfg, &a), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_agent_evaluate(m, ctx, NULL, &a), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_agent_evaluate(m, ctx, cfg, NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_json_parse(text, strlen(text), "t", &j));
    ms_assert_ok(ms_agent_config_from_json(j, "t", &other));
    json_decref(j);
    ms_assert_status(ms_agent_evaluate(m, ctx, other, &a), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "the context is of 'me', the config of 'x'"));
    ms_agent_config_unref(other);
    ms_message_unref(m);
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void decision_json_round_trip(void **state)
{
    ms_context *ctx = make_context();
    ms_agent_config *cfg = make_config("minor", NULL);
    ms_message *m = dep("lib", "1.2.0", "1.3.0");
    ms_decision d, back;
    json_t *j = NULL, *bad = NULL;

    ms_assert_ok(ms_agent_evaluate(m, ctx, cfg, &d));
    ms_assert_ok(ms_decision_to_json(&d, "me", m, &j));
    assert_string_equal(json_string_value(json_object_get(j, "component")), "me");
    assert_string_equal(json_string_value(json_object_get(j, "decision")), "act");
    assert_string_equal(json_string_value(json_object_get(j, "rule")), d.rule);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "message"), "subject")),
        "mainstack.dependency.updated.lib");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "message"), "id")),
                        ms_message_id(m));
    ms_assert_ok(ms_decision_from_json(j, "evaluator", &back));
    assert_int_equal(back.verdict, d.verdict);
    assert_string_equal(back.rule, d.rule);
    assert_string_equal(back.reason, d.reason);
    json_decref(j);
    /* without component and message */
    ms_assert_ok(ms_decision_to_json(&d, NULL, NULL, &j));
    assert_null(json_object_get(j, "component"));
    assert_null(json_object_get(j, "message"));
    json_decref(j);

    ms_assert_ok(ms_json_parse("{\"decision\": \"perhaps\"}", 23, "t", &bad));
    ms_assert_status(ms_decision_from_json(bad, "evaluator", &back), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "evaluator: field 'decision': 'perhaps'"));
    json_decref(bad);
    ms_assert_ok(ms_json_parse("{\"rule\": \"x\"}", 13, "t", &bad));
    ms_assert_status(ms_decision_from_json(bad, "evaluator", &back), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "'decision' is required"));
    json_decref(bad);
    ms_assert_ok(ms_json_parse("{\"decision\": \"ignore\", \"reason\": 3}", 35, "t", &bad));
    ms_assert_status(ms_decision_from_json(bad, NULL, &back), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "decision: field 'reason' must be a string"));
    json_decref(bad);
    ms_message_unref(m);
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

static void evaluator_input_json(void **state)
{
    ms_context *ctx = make_context();
    ms_agent_config *cfg = make_config("minor", NULL);
    ms_message *m = iface("up", "1.0.0", "1.1.0", false);
    json_t *j = NULL, *msg, *payload;

    ms_assert_ok(ms_message_set_header(m, "X-Why", "test"));
    ms_assert_ok(ms_agent_input_json(m, ctx, cfg, &j));
    msg = json_object_get(j, "message");
    assert_string_equal(json_string_value(json_object_get(msg, "subject")),
                        "mainstack.interface.changed.up");
    assert_string_equal(json_string_value(json_object_get(msg, "type")), "interface_changed");
    assert_string_equal(json_string_value(json_object_get(msg, "source")), "test");
    assert_string_equal(json_string_value(json_object_get(msg, "id")), ms_message_id(m));
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(msg, "headers"), "X-Why"), 0)),
                        "test");
    payload = json_object_get(msg, "payload");
    assert_string_equal(json_string_value(json_object_get(payload, "new_version")), "1.1.0");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "context"), "component")), "me");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "config"), "component")), "me");
    json_decref(j);
    ms_message_unref(m);

    /* a payload that is not JSON travels as text; an empty one as null */
    m = raw(MS_MSG_EVENT, "events.a", "plain words");
    ms_assert_ok(ms_agent_input_json(m, ctx, cfg, &j));
    payload = json_object_get(json_object_get(j, "message"), "payload");
    assert_string_equal(json_string_value(json_object_get(payload, "text")), "plain words");
    json_decref(j);
    ms_message_unref(m);
    m = raw(MS_MSG_EVENT, "events.a", "");
    ms_assert_ok(ms_agent_input_json(m, ctx, cfg, &j));
    assert_true(json_is_null(json_object_get(json_object_get(j, "message"), "payload")));
    json_decref(j);
    ms_assert_status(ms_agent_input_json(m, NULL, cfg, &j), MS_ERR_INVALID_ARG);
    ms_message_unref(m);
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(default_interface_policy),
        cmocka_unit_test(default_dependency_policy),
        cmocka_unit_test(other_messages_by_topic),
        cmocka_unit_test(rules_first_match_wins_in_order),
        cmocka_unit_test(each_match_field),
        cmocka_unit_test(rules_cannot_widen_autonomy),
        cmocka_unit_test(malformed_payloads),
        cmocka_unit_test(real_components),
        cmocka_unit_test(deterministic_and_bad_arguments),
        cmocka_unit_test(decision_json_round_trip),
        cmocka_unit_test(evaluator_input_json),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
