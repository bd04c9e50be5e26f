/*
 * test_context.c - the context model: the real components' context and
 * agent-config files load with their content; every kind of syntax error
 * names file:line:column and every typing error the file and the JSON
 * pointer; semver parsing, precedence (pre-releases included), bumps and
 * version ranges.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "ms_test.h"

static void assert_error_has(const char *want)
{
    if (strstr(ms_last_error(), want) == NULL)
        fail_msg("error '%s' does not contain '%s'", ms_last_error(), want);
}

/* --- the real components ----------------------------------------------------- */

static void loads_user_service(void **state)
{
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    const ms_dependency *dep;
    const ms_agent_action *act;

    ms_assert_ok(ms_context_load_dir(MS_SOURCE_DIR "/components/user-service", &ctx, &cfg));
    assert_string_equal(ms_context_component(ctx), "user-service");
    assert_string_equal(ms_context_version(ctx), "1.0.0");
    assert_int_equal(ms_context_semver(ctx)->major, 1);
    assert_true(ms_context_decision_count(ctx) >= 9);
    assert_string_equal(ms_context_decision_at(ctx, 0)->id, "UD-1");
    assert_int_equal(ms_context_decision_at(ctx, 0)->status, MS_DD_ACCEPTED);
    assert_null(ms_context_decision_at(ctx, 1000));
    dep = ms_context_find_dependency(ctx, "sqlite3");
    assert_non_null(dep);
    assert_int_equal(dep->kind, MS_DEP_LIBRARY);
    assert_string_equal(dep->version, ">=3.35.0 <4.0.0");
    assert_int_equal(ms_context_provides_count(ctx), 1);
    assert_string_equal(ms_context_provides_at(ctx, 0)->name, "user-service");
    /* Only the component ABI, which libmainstack provides. */
    assert_int_equal(ms_context_consumes_count(ctx), 1);
    assert_string_equal(ms_context_consumes_at(ctx, 0)->name, "mainstack-component");
    assert_true(ms_context_issue_count(ctx) >= 4);
    assert_true(ms_context_performance_count(ctx) >= 1);
    assert_true(ms_context_security_count(ctx) >= 1);
    assert_non_null(strstr(ms_context_tests_command(ctx), "ctest"));

    assert_string_equal(ms_agent_config_component(cfg), "user-service");
    assert_int_equal(ms_agent_config_autonomy(cfg), MS_AUTONOMY_MINOR);
    assert_false(ms_agent_config_may_deploy(cfg));
    assert_int_equal(ms_agent_config_topic_count(cfg), 2);
    assert_true(ms_agent_config_rule_count(cfg) >= 7);
    assert_string_equal(ms_agent_config_rule_at(cfg, 0)->name, "own-interface-breaking");
    assert_true(ms_agent_config_rule_at(cfg, 0)->match.has_breaking);
    assert_true(ms_agent_config_rule_at(cfg, 0)->match.breaking);
    act = ms_agent_config_action(cfg, MS_ACTION_TEST);
    assert_non_null(act);
    assert_string_equal(act->argv[0], "ctest");
    assert_null(act->argv[act->argc]);
    assert_int_equal(act->timeout_s, 600);
    assert_int_equal(act->env_count, 1);
    assert_string_equal(act->env[0].name, "MAINSTACK_LOG");
    assert_string_equal(ms_agent_config_escalation_subject(cfg),
                        "mainstack.escalation.user-service");
    assert_true(ms_agent_config_responsibility_count(cfg) >= 1);
    assert_true(ms_agent_config_constraint_count(cfg) >= 1);

    /* refcounting: an extra reference outlives nothing */
    assert_ptr_equal(ms_context_ref(ctx), ctx);
    ms_context_unref(ctx);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
}

static void loads_notification_service(void **state)
{
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    const ms_interface_consumed *c;
    const ms_dependency *dep;
    ms_semver v;

    ms_assert_ok(ms_context_load_dir(MS_SOURCE_DIR "/components/notification-service", &ctx, &cfg));
    c = ms_context_find_consumed(ctx, "user-service");
    assert_non_null(c);
    assert_int_equal(c->subject_count, 1);
    assert_string_equal(c->subjects[0], "events.user.>");
    ms_assert_ok(ms_semver_parse("1.4.0", &v));
    assert_true(ms_range_match(c->range, &v));
    ms_assert_ok(ms_semver_parse("2.0.0", &v));
    assert_false(ms_range_match(c->range, &v));
    /* two entries named user-service: the component one is preferred */
    dep = ms_context_find_dependency(ctx, "user-service");
    assert_int_equal(dep->kind, MS_DEP_COMPONENT);
    dep = ms_context_find_dependency(ctx, "jansson");
    ms_assert_ok(ms_semver_coerce("2.14", &v));
    assert_true(ms_range_match(dep->range, &v));
    assert_null(ms_context_find_dependency(ctx, "nope"));
    assert_int_equal(ms_agent_config_rule_count(cfg), 6);
    assert_int_equal(ms_agent_config_rule_at(cfg, 2)->match.bump, MS_BUMP_MAJOR);
    assert_string_equal(ms_agent_config_rule_at(cfg, 2)->match.dependency, "user-service");
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
}

/* --- errors ------------------------------------------------------------------- */

static char tmpdir[64];

static int make_tmpdir(void **state)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ms_test_context.XXXXXX");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Load text as a context.json file; returns the status. */
static ms_status load_context_text(const char *text)
{
    char path[128];
    ms_context *ctx = (ms_context *)1;
    ms_status s;
    snprintf(path, sizeof path, "%s/context.json", tmpdir);
    write_file(path, text);
    s = ms_context_load(path, &ctx);
    if (s != MS_OK)
        assert_null(ctx);
    ms_context_unref(s == MS_OK ? ctx : NULL);
    return s;
}

static ms_status load_config_text(const char *text)
{
    char path[128];
    ms_agent_config *cfg = (ms_agent_config *)1;
    ms_status s;
    snprintf(path, sizeof path, "%s/agent-config.json", tmpdir);
    write_file(path, text);
    s = ms_agent_config_load(path, &cfg);
    if (s != MS_OK)
        assert_null(cfg);
    ms_agent_config_unref(s == MS_OK ? cfg : NULL);
    return s;
}

static void syntax_errors_have_line_and_column(void **state)
{
    char want[160];
    static const struct {
        const char *text;
        int line;
    } cases[] = {
        {"{\n  \"component\": \"a\",\n  \"version\": 1.0.0\n}", 3}, /* bad number */
        {"{\n  \"component\": \"a\",\n}", 3},                       /* trailing comma */
        {"{\"a\": 1,\n \"a\": 2}", 2},                              /* duplicate key */
        {"{\n\n  \"component\": \"a\"", 3},                         /* unterminated */
        {"{\"purpose\": \"tab\there\"}", 1},                        /* control char */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int line = 0, col = 0;
        ms_assert_status(load_context_text(cases[i].text), MS_ERR_PARSE);
        snprintf(want, sizeof want, "%s/context.json:", tmpdir);
        if (strncmp(ms_last_error(), want, strlen(want)) != 0 ||
            sscanf(ms_last_error() + strlen(want), "%d:%d:", &line, &col) != 2)
            fail_msg("case %zu: '%s' is not file:line:column", i, ms_last_error());
        assert_int_equal(line, cases[i].line);
        assert_true(col >= 1);
    }
    ms_assert_status(load_config_text("[1,"), MS_ERR_PARSE);
    assert_error_has("agent-config.json:1:");
    ms_assert_status(ms_context_load("/nonexistent/context.json", &(ms_context *){NULL}),
                     MS_ERR_IO);
    assert_error_has("/nonexistent/context.json");
}

#define MIN_CONTEXT "\"component\": \"a\", \"version\": \"1.0.0\", \"purpose\": \"p\""

static void context_typing_errors_name_the_pointer(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"[]", "(root): must be an object, not an array"},
        {"{\"version\": \"1.0.0\", \"purpose\": \"p\"}", "/component: required field is missing"},
        {"{\"component\": \"A_b\", \"version\": \"1.0.0\", \"purpose\": \"p\"}",
         "/component: 'A_b' is not a component name"},
        {"{\"component\": \"a\", \"version\": \"1.0\", \"purpose\": \"p\"}",
         "/version: not semver 2.0.0"},
        {"{\"component\": \"a\", \"version\": 1, \"purpose\": \"p\"}",
         "/version: must be a string, not an integer"},
        {"{\"component\": \"a\", \"version\": \"1.0.0\", \"purpose\": \"\"}",
         "/purpose: must not be empty"},
        {"{" MIN_CONTEXT ", \"extra\": 1}", "/extra: unknown field"},
        {"{" MIN_CONTEXT ", \"design_decisions\": {}}",
         "/design_decisions: must be an array, not an object"},
        {"{" MIN_CONTEXT ", \"design_decisions\": [{\"id\": \"D1\", \"decision\": \"d\", "
         "\"rationale\": \"r\", \"date\": \"2026-02-30\", \"status\": \"accepted\"}]}",
         "/design_decisions/0/date: '2026-02-30' is not a date"},
        {"{" MIN_CONTEXT ", \"design_decisions\": [{\"id\": \"D1\", \"decision\": \"d\", "
         "\"rationale\": \"r\", \"date\": \"2026-01-30\", \"status\": \"done\"}]}",
         "/design_decisions/0/status: 'done' is not one of proposed, accepted"},
        {"{" MIN_CONTEXT ", \"design_decisions\": [{\"id\": \"D1\", \"decision\": \"d\", "
         "\"rationale\": \"r\", \"date\": \"2026-01-30\", \"status\": \"accepted\"}, {\"id\": "
         "\"D1\", \"decision\": \"d\", \"rationale\": \"r\", \"date\": \"2026-01-30\", "
         "\"status\": \"accepted\"}]}",
         "/design_decisions/1/id: 'D1' is already the id of element 0"},
        {"{" MIN_CONTEXT ", \"dependencies\": [{\"name\": \"x\", \"kind\": \"lib\", "
         "\"version\": \"*\", \"purpose\": \"p\"}]}",
         "/dependencies/0/kind: 'lib' is not one of component, interface, library, service"},
        {"{" MIN_CONTEXT ", \"dependencies\": [{\"name\": \"x\", \"kind\": \"library\", "
         "\"version\": \">=1.2 <\", \"purpose\": \"p\"}]}",
         "/dependencies/0/version: not a version range"},
        {"{" MIN_CONTEXT ", \"dependencies\": [{\"name\": \"a.b\", \"kind\": \"library\", "
         "\"version\": \"*\", \"purpose\": \"p\"}]}",
         "/dependencies/0/name: 'a.b' may not contain"},
        {"{" MIN_CONTEXT ", \"dependencies\": [{\"name\": \"x\", \"kind\": \"library\", "
         "\"version\": \"*\"}]}",
         "/dependencies/0/purpose: required field is missing"},
        {"{" MIN_CONTEXT ", \"interfaces\": {\"consumes\": [{\"name\": \"b\", \"version\": "
         "\"^1\", \"subjects\": [\"a..b\"]}]}}",
         "/interfaces/consumes/0/subjects/0: not a subject pattern"},
        {"{" MIN_CONTEXT ", \"interfaces\": {\"provides\": [{\"name\": \"b\", \"version\": "
         "\"^1\"}]}}",
         "/interfaces/provides/0/version: not semver"},
        {"{" MIN_CONTEXT ", \"interfaces\": {\"offers\": []}}", "/interfaces/offers: unknown"},
        {"{" MIN_CONTEXT ", \"known_issues\": [{\"id\": \"K\", \"description\": \"d\", "
         "\"severity\": \"urgent\"}]}",
         "/known_issues/0/severity: 'urgent' is not one of low, medium, high, critical"},
        {"{" MIN_CONTEXT ", \"known_issues\": [{\"id\": \"K\", \"description\": \"d\", "
         "\"severity\": \"low\", \"sevrity\": 1}]}",
         "/known_issues/0/sevrity: unknown field"},
        {"{" MIN_CONTEXT ", \"performance\": [\"ok\", 3]}",
         "/performance/1: must be a string, not an integer"},
        {"{" MIN_CONTEXT ", \"security\": [\"\"]}", "/security/0: must not be empty"},
        {"{" MIN_CONTEXT ", \"tests\": {}}", "/tests/command: required field is missing"},
        {"{" MIN_CONTEXT ", \"a/b~c\": 1}", "/a~1b~0c: unknown field"},
    };
    char want[512];

    ms_assert_ok(load_context_text("{" MIN_CONTEXT "}"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_status s = load_context_text(cases[i].text);
        if (s != MS_ERR_SCHEMA)
            fail_msg("case %zu: got %s (%s)", i, ms_status_name(s), ms_last_error());
        snprintf(want, sizeof want, "%s/context.json: %s", tmpdir, cases[i].want);
        if (strncmp(ms_last_error(), want, strlen(want)) != 0)
            fail_msg("case %zu: '%s' does not start with '%s'", i, ms_last_error(), want);
    }
}

#define MIN_CONFIG "\"component\": \"a\", \"autonomy\": {\"level\": \"minor\"}"

static void config_typing_errors_name_the_pointer(void **state)
{
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"{\"component\": \"a\"}", "/autonomy: required field is missing"},
        {"{\"component\": \"a\", \"autonomy\": {\"level\": \"full\"}}",
         "/autonomy/level: 'full' is not one of observe, patch, minor, major"},
        {"{\"component\": \"a\", \"autonomy\": {\"level\": \"patch\", \"may_deploy\": 1}}",
         "/autonomy/may_deploy: must be a boolean"},
        {"{" MIN_CONFIG ", \"monitored_topics\": [\"a.>.b\"]}",
         "/monitored_topics/0: not a valid subject pattern"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"decision\": \"maybe\", \"reason\": "
         "\"x\"}]}",
         "/rules/0/decision: 'maybe' is not one of ignore, act, escalate"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"default:x\", \"decision\": \"act\", "
         "\"reason\": \"x\"}]}",
         "/rules/0/name: 'default:x' is not a rule name"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"decision\": \"act\", \"reason\": "
         "\"x\"}, {\"name\": \"r\", \"decision\": \"act\", \"reason\": \"y\"}]}",
         "/rules/1/name: 'r' is already the name of rule 0"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"match\": {\"type\": \"ping\"}, "
         "\"decision\": \"act\", \"reason\": \"x\"}]}",
         "/rules/0/match/type: 'ping' is not one of change_notification"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"match\": {\"bump\": \"huge\"}, "
         "\"decision\": \"act\", \"reason\": \"x\"}]}",
         "/rules/0/match/bump: 'huge' is not one of patch, minor, major"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"match\": {\"breaking\": \"yes\"}, "
         "\"decision\": \"act\", \"reason\": \"x\"}]}",
         "/rules/0/match/breaking: must be a boolean"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"match\": {\"subject\": \"a b\"}, "
         "\"decision\": \"act\", \"reason\": \"x\"}]}",
         "/rules/0/match/subject: not a valid subject pattern"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"match\": {\"iface\": \"x\"}, "
         "\"decision\": \"act\", \"reason\": \"x\"}]}",
         "/rules/0/match/iface: unknown field"},
        {"{" MIN_CONFIG ", \"rules\": [{\"name\": \"r\", \"decision\": \"act\"}]}",
         "/rules/0/reason: required field is missing"},
        {"{" MIN_CONFIG ", \"actions\": {\"build\": {\"argv\": [], \"timeout_s\": 5}}}",
         "/actions/build/argv: must hold at least the program"},
        {"{" MIN_CONFIG ", \"actions\": {\"test\": {\"argv\": [\"x\"], \"timeout_s\": 0}}}",
         "/actions/test/timeout_s: 0 is outside 1..86400"},
        {"{" MIN_CONFIG ", \"actions\": {\"test\": {\"argv\": [\"x\"], \"timeout_s\": 5, "
         "\"env\": {\"A-B\": \"x\"}}}}",
         "/actions/test/env/A-B: not an environment variable name"},
        {"{" MIN_CONFIG ", \"actions\": {\"test\": {\"argv\": [\"x\"], \"timeout_s\": 5, "
         "\"env\": {\"A\": 1}}}}",
         "/actions/test/env/A: must be a string"},
        /* actions.deploy: the framework steps */
        {"{" MIN_CONFIG ", \"actions\": {\"version\": {}}}", "/actions/version: unknown field"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {}}}",
         "/actions/deploy/build_dir: required field is missing"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": 3}}}",
         "/actions/deploy/build_dir: must be a string"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"\"}}}",
         "/actions/deploy/build_dir: must not be empty"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", \"timeout_s\": 0}}}",
         "/actions/deploy/timeout_s: 0 is outside 1..86400"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", \"argv\": [\"x\"]}}}",
         "/actions/deploy/argv: unknown field"},
        {"{" MIN_CONFIG
         ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", \"args\": \"--watch\"}}}",
         "/actions/deploy/args: must be an array"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", "
         "\"args\": [\"--watch\", \"0\", \"--no-promote\"]}}}",
         "/actions/deploy/args/2: '--no-promote' is not allowed: the pipeline sets --no-promote "
         "itself"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", "
         "\"args\": [\"--root=/elsewhere\"]}}}",
         "/actions/deploy/args/0: '--root=/elsewhere' is not allowed: the pipeline sets --root"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", \"args\": [\"-C\"]}}}",
         "/actions/deploy/args/0: '-C' is not allowed: the pipeline sets -C"},
        {"{" MIN_CONFIG
         ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", \"args\": [\"--json\"]}}}",
         "/actions/deploy/args/0: '--json' is not allowed"},
        {"{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"b\", \"args\": [\"-h\"]}}}",
         "/actions/deploy/args/0: '-h' is not allowed: mstack deploy would print its help"},
        {"{" MIN_CONFIG ", \"escalation\": {\"subject\": \"a.*\"}}",
         "/escalation/subject: not a valid subject"},
    };
    char want[512];
    ms_agent_config *cfg = NULL;
    json_t *j;

    ms_assert_ok(load_config_text("{" MIN_CONFIG "}"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_status s = load_config_text(cases[i].text);
        if (s != MS_ERR_SCHEMA)
            fail_msg("case %zu: got %s (%s)", i, ms_status_name(s), ms_last_error());
        snprintf(want, sizeof want, "%s/agent-config.json: %s", tmpdir, cases[i].want);
        if (strncmp(ms_last_error(), want, strlen(want)) != 0)
            fail_msg("case %zu: '%s' does not start with '%s'", i, ms_last_error(), want);
    }
    /* defaults: no escalation subject, no actions, no rules */
    ms_assert_ok(ms_json_parse("{" MIN_CONFIG "}", strlen("{" MIN_CONFIG "}"), "t", &j));
    ms_assert_ok(ms_agent_config_from_json(j, NULL, &cfg));
    json_decref(j);
    assert_string_equal(ms_agent_config_escalation_subject(cfg), "mainstack.escalation.a");
    assert_null(ms_agent_config_action(cfg, MS_ACTION_CHANGE));
    assert_null(ms_agent_config_deploy(cfg));
    assert_int_equal(ms_agent_config_rule_count(cfg), 0);
    assert_string_equal(ms_agent_config_source(cfg), "agent-config.json");
    ms_agent_config_unref(cfg);
}

/* actions.deploy read back: build_dir, the default and a given timeout,
 * args in order (options the framework does not set are allowed); the
 * framework steps are never command actions. */
static void config_deploy_section(void **state)
{
    const char *with_args = "{" MIN_CONFIG ", \"actions\": {\"test\": {\"argv\": [\"t\"], "
                            "\"timeout_s\": 5}, \"deploy\": {\"build_dir\": \"build/components\", "
                            "\"timeout_s\": 300, \"args\": [\"--watch\", \"2000\", "
                            "\"--nats=nats://127.0.0.1:1\", \"--rootless\"]}}}";
    const char *plain = "{" MIN_CONFIG ", \"actions\": {\"deploy\": {\"build_dir\": \"/abs\"}}}";
    const ms_agent_deploy *d;
    ms_agent_config *cfg = NULL;
    json_t *j;

    (void)state;
    ms_assert_ok(ms_json_parse(with_args, strlen(with_args), "t", &j));
    ms_assert_ok(ms_agent_config_from_json(j, NULL, &cfg));
    json_decref(j);
    d = ms_agent_config_deploy(cfg);
    assert_non_null(d);
    assert_string_equal(d->build_dir, "build/components");
    assert_int_equal(d->timeout_s, 300);
    assert_int_equal(d->argc, 4);
    assert_string_equal(d->args[0], "--watch");
    assert_string_equal(d->args[1], "2000");
    assert_string_equal(d->args[3], "--rootless");
    assert_null(d->args[4]);
    assert_non_null(ms_agent_config_action(cfg, MS_ACTION_TEST));
    assert_null(ms_agent_config_action(cfg, MS_ACTION_VERSION));
    assert_null(ms_agent_config_action(cfg, MS_ACTION_DEPLOY));
    assert_string_equal(ms_action_kind_str(MS_ACTION_VERSION), "version");
    assert_string_equal(ms_action_kind_str(MS_ACTION_DEPLOY), "deploy");
    ms_agent_config_unref(cfg);

    ms_assert_ok(ms_json_parse(plain, strlen(plain), "t", &j));
    ms_assert_ok(ms_agent_config_from_json(j, NULL, &cfg));
    json_decref(j);
    d = ms_agent_config_deploy(cfg);
    assert_non_null(d);
    assert_string_equal(d->build_dir, "/abs");
    assert_int_equal(d->timeout_s, 900);
    assert_int_equal(d->argc, 0);
    ms_agent_config_unref(cfg);
}

static void dir_components_must_agree(void **state)
{
    char path[160];
    ms_context *ctx = (ms_context *)1;
    ms_agent_config *cfg = (ms_agent_config *)1;

    snprintf(path, sizeof path, "%s/context", tmpdir);
    assert_int_equal(mkdir(path, 0755) == 0 || access(path, F_OK) == 0, 1);
    snprintf(path, sizeof path, "%s/context/context.json", tmpdir);
    write_file(path, "{" MIN_CONTEXT "}");
    snprintf(path, sizeof path, "%s/context/agent-config.json", tmpdir);
    write_file(path, "{\"component\": \"b\", \"autonomy\": {\"level\": \"minor\"}}");
    ms_assert_status(ms_context_load_dir(tmpdir, &ctx, &cfg), MS_ERR_SCHEMA);
    assert_null(ctx);
    assert_null(cfg);
    assert_error_has("/component: 'b' differs from 'a'");
    write_file(path, "{" MIN_CONFIG "}");
    ms_assert_ok(ms_context_load_dir(tmpdir, &ctx, &cfg));
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
    ms_assert_status(ms_context_load_dir("/nonexistent", &ctx, &cfg), MS_ERR_IO);
    ms_assert_status(ms_context_load_dir(NULL, &ctx, &cfg), MS_ERR_INVALID_ARG);
}

/* --- semver ------------------------------------------------------------------- */

static void semver_parse_and_errors(void **state)
{
    ms_semver v;
    char buf[64];

    ms_assert_ok(ms_semver_parse("1.2.3-rc.1+build.5", &v));
    assert_int_equal(v.major, 1);
    assert_int_equal(v.minor, 2);
    assert_int_equal(v.patch, 3);
    assert_string_equal(v.prerelease, "rc.1");
    assert_string_equal(v.build, "build.5");
    ms_semver_format(&v, buf, sizeof buf);
    assert_string_equal(buf, "1.2.3-rc.1+build.5");
    ms_assert_ok(ms_semver_parse("18446744073709551615.0.0", &v));
    ms_assert_status(ms_semver_parse("18446744073709551616.0.0", &v), MS_ERR_TOO_LARGE);
    ms_assert_status(ms_semver_parse("1.02.0", &v), MS_ERR_PARSE);
    assert_error_has("leading zero in the minor number at byte 2");
    ms_assert_status(ms_semver_parse("1.2", &v), MS_ERR_PARSE);
    assert_error_has("expected '.' and a patch number at byte 3");
    ms_assert_status(ms_semver_parse("1.2.3-", &v), MS_ERR_PARSE);
    assert_error_has("empty pre-release identifier");
    ms_assert_status(ms_semver_parse("1.2.3-01", &v), MS_ERR_PARSE);
    ms_assert_status(ms_semver_parse("1.2.3 ", &v), MS_ERR_PARSE);
    assert_error_has("unexpected ' ' at byte 5");
    ms_assert_status(ms_semver_parse("1.2.3-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                     "aaaaaaaaaaaaaaaaaa",
                                     &v),
                     MS_ERR_TOO_LARGE);
    ms_assert_status(ms_semver_parse(NULL, &v), MS_ERR_INVALID_ARG);
    /* coerce */
    ms_assert_ok(ms_semver_coerce("v2.14", &v));
    assert_int_equal(v.major, 2);
    assert_int_equal(v.minor, 14);
    assert_int_equal(v.patch, 0);
    ms_assert_ok(ms_semver_coerce("3", &v));
    assert_int_equal(v.major, 3);
    ms_assert_status(ms_semver_coerce("2.14-rc1", &v), MS_ERR_PARSE);
    assert_error_has("needs all three numbers");
    ms_assert_status(ms_semver_coerce("", &v), MS_ERR_PARSE);
    ms_assert_status(ms_semver_parse("v1.0.0", &v), MS_ERR_PARSE);
}

static int cmp(const char *a, const char *b)
{
    ms_semver va, vb;
    if (ms_semver_parse(a, &va) != MS_OK || ms_semver_parse(b, &vb) != MS_OK)
        fail_msg("parse %s / %s: %s", a, b, ms_last_error());
    return ms_semver_compare(&va, &vb);
}

static void semver_precedence(void **state)
{
    /* semver 2.0.0 section 11's own example chain, each below the next */
    static const char *chain[] = {"1.0.0-alpha",  "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
                                  "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1",       "1.0.0",
                                  "1.0.1",        "1.1.0",         "1.10.0",           "2.0.0-0",
                                  "2.0.0",        "10.0.0"};
    size_t n = sizeof chain / sizeof chain[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = cmp(chain[i], chain[j]);
            int want = i < j ? -1 : i > j ? 1 : 0;
            if ((c > 0) - (c < 0) != want)
                fail_msg("compare(%s, %s) = %d, want %d", chain[i], chain[j], c, want);
        }
    assert_int_equal(cmp("1.0.0+a", "1.0.0+b"), 0); /* build ignored */
    assert_true(cmp("1.0.0-2", "1.0.0-10") < 0);    /* numeric, not text */
    assert_true(cmp("1.0.0-a10", "1.0.0-a9") < 0);  /* alphanumeric is text */
    assert_true(cmp("1.0.0-9", "1.0.0-a") < 0);     /* numeric below alphanumeric */
}

static void semver_bumps(void **state)
{
    static const struct {
        const char *from, *to;
        ms_bump want;
    } cases[] = {
        {"1.0.0", "1.0.1", MS_BUMP_PATCH},      {"1.0.0", "1.1.0", MS_BUMP_MINOR},
        {"1.9.9", "2.0.0", MS_BUMP_MAJOR},      {"2.0.0", "1.0.0", MS_BUMP_MAJOR},
        {"1.0.0-rc.1", "1.0.0", MS_BUMP_PATCH}, {"1.0.0+a", "1.0.0+b", MS_BUMP_NONE},
        {"1.2.3", "1.2.3", MS_BUMP_NONE},       {"0.1.0", "0.2.0", MS_BUMP_MINOR},
    };
    ms_bump b;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_semver f, t;
        ms_assert_ok(ms_semver_parse(cases[i].from, &f));
        ms_assert_ok(ms_semver_parse(cases[i].to, &t));
        if (ms_semver_bump(&f, &t) != cases[i].want)
            fail_msg("%s -> %s: %s, want %s", cases[i].from, cases[i].to,
                     ms_bump_str(ms_semver_bump(&f, &t)), ms_bump_str(cases[i].want));
    }
    ms_assert_ok(ms_bump_parse("minor", &b));
    assert_int_equal(b, MS_BUMP_MINOR);
    ms_assert_status(ms_bump_parse("none", &b), MS_ERR_PARSE);
}

static void ranges_match(void **state)
{
    static const struct {
        const char *range, *version;
        bool want;
    } cases[] = {
        {">=1.2.0 <2.0.0", "1.2.0", true},
        {">=1.2.0 <2.0.0", "1.9.99", true},
        {">=1.2.0 <2.0.0", "2.0.0", false},
        {">=1.2.0 <2.0.0", "1.1.9", false},
        {">=1.2.0 <2.0.0", "2.0.0-alpha", false},
        {">=1.2.0 <2.0.0", "1.5.0-beta", false}, /* pre-release of another triple */
        {">=1.2.0-beta <2.0.0", "1.2.0-rc.1", true},
        {">=1.2.0-beta <2.0.0", "1.2.0-alpha", false},
        {"^1.2", "1.2.0", true},
        {"^1.2", "1.99.0", true},
        {"^1.2", "2.0.0", false},
        {"^1.2", "1.1.0", false},
        {"^0.2.3", "0.2.9", true},
        {"^0.2.3", "0.3.0", false},
        {"^0.0.3", "0.0.3", true},
        {"^0.0.3", "0.0.4", false},
        {"^0", "0.9.0", true},
        {"^0", "1.0.0", false},
        {"~1.4.2", "1.4.9", true},
        {"~1.4.2", "1.5.0", false},
        {"~1.4.2", "1.4.1", false},
        {"~1", "1.9.0", true},
        {"*", "7.0.0", true},
        {"*", "7.0.0-rc.1", false},
        {"1.x", "1.3.0", true},
        {"1.x", "2.0.0", false},
        {"1.2.x", "1.2.7", true},
        {"=1.0.0", "1.0.0+b", true},
        {"1.0.0", "1.0.1", false},
        {">1.2", "1.2.9", false},
        {">1.2", "1.3.0", true},
        {"<=1.2", "1.2.9", true},
        {"<=1.2", "1.3.0", false},
        {"<1.2", "1.1.9", true},
        {"<1.2", "1.2.0", false},
        {">= 2.13 < 3.0", "2.14.0", true},
        {"^1 || ^3", "3.1.0", true},
        {"^1 || ^3", "2.1.0", false},
        {">=2.13 <3.0", "3.0.0", false},
        {"2", "2.5.0", true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_range r;
        ms_semver v;
        ms_assert_ok(ms_range_parse(cases[i].range, &r));
        ms_assert_ok(ms_semver_parse(cases[i].version, &v));
        if (ms_range_match(&r, &v) != cases[i].want)
            fail_msg("'%s' matches %s: got %d", cases[i].range, cases[i].version, !cases[i].want);
    }
}

static void range_errors(void **state)
{
    static const struct {
        const char *text;
        ms_status status;
        const char *want;
    } cases[] = {
        {"", MS_ERR_PARSE, "empty"},
        {">=1.2 <", MS_ERR_PARSE, "operator without a version at byte 6"},
        {"1.2 | 2", MS_ERR_PARSE, "a single '|'"},
        {"|| 1", MS_ERR_PARSE, "empty set before '||'"},
        {"1 ||", MS_ERR_PARSE, "empty set after '||'"},
        {"=>1.0", MS_ERR_PARSE, "unknown operator '=>'"},
        {">*", MS_ERR_PARSE, "matches nothing"},
        {"1.x.3", MS_ERR_PARSE, "a number after a wildcard"},
        {"1.2.x-rc", MS_ERR_PARSE, "needs all three numbers"},
        {"1.2.3>4", MS_ERR_PARSE, "'>' inside a version"},
        {"01.2", MS_ERR_PARSE, "leading zero"},
        {"1 || 2 || 3 || 4 || 5", MS_ERR_TOO_LARGE, "over 4 sets"},
        {"^1 ^1 ^1 ^1 ^1", MS_ERR_TOO_LARGE, "over 8 comparators"},
        {"^18446744073709551615", MS_ERR_TOO_LARGE, "too large"},
    };
    ms_range r;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ms_status s = ms_range_parse(cases[i].text, &r);
        if (s != cases[i].status)
            fail_msg("'%s': got %s (%s)", cases[i].text, ms_status_name(s), ms_last_error());
        assert_error_has(cases[i].want);
    }
    ms_assert_status(ms_range_parse(NULL, &r), MS_ERR_INVALID_ARG);
}

/* Every allocation of the loaders fails in turn: each time a clean
 * MS_ERR_NO_MEMORY (LeakSanitizer checks that nothing leaks), then success. */
static void allocation_failures(void **state)
{
    const char *dir = MS_SOURCE_DIR "/components/notification-service";
    long n;

    for (n = 0; n < 100000; n++) {
        ms_context *ctx = (ms_context *)1;
        ms_agent_config *cfg = (ms_agent_config *)1;
        ms_status s;
        ms__alloc_fail_after(n);
        s = ms_context_load_dir(dir, &ctx, &cfg);
        ms__alloc_fail_after(-1);
        if (s == MS_OK) {
            ms_context_unref(ctx);
            ms_agent_config_unref(cfg);
            break;
        }
        if (s != MS_ERR_NO_MEMORY)
            fail_msg("after %ld allocations: %s (%s)", n, ms_status_name(s), ms_last_error());
        assert_null(ctx);
        assert_null(cfg);
    }
    assert_true(n > 10); /* the loaders do allocate, and every point was walked */
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_user_service),
        cmocka_unit_test(loads_notification_service),
        cmocka_unit_test(syntax_errors_have_line_and_column),
        cmocka_unit_test(context_typing_errors_name_the_pointer),
        cmocka_unit_test(config_typing_errors_name_the_pointer),
        cmocka_unit_test(config_deploy_section),
        cmocka_unit_test(dir_components_must_agree),
        cmocka_unit_test(semver_parse_and_errors),
        cmocka_unit_test(semver_precedence),
        cmocka_unit_test(semver_bumps),
        cmocka_unit_test(ranges_match),
        cmocka_unit_test(range_errors),
        cmocka_unit_test(allocation_failures),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
