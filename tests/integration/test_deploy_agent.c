/*
 * test_deploy_agent.c - the agent's pipeline ending in version add ->
 * test both -> deploy, with real parts: a real ms_agent whose
 * deploy_program is the built mstack, a registry file in a temp project
 * root, a real nats-server and one runtime host in this process serving
 * the active swapver version (tests/plugins/swapver.c). The change step
 * copies a prebuilt swapver build of another version into the config's
 * build_dir (what a coding tool and a build would leave there); build and
 * test are trivial commands. Covered: may_deploy true (deployed, active,
 * served), may_deploy false (the "ready to deploy" escalation, approving
 * it deploys, through the library and through `mstack escalations
 * resolve`), a candidate failing a test the active passes (rejected, the
 * escalation names the test, the active keeps serving), version add
 * refused (same version, other content), and a deploy section without a
 * deploy program (the pipeline ends after test, as before).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mainstack/deploy.h>

#include "ms_test.h"
#include "nats_fixture.h"

#ifndef MSTACK_BIN
#error "MSTACK_BIN must be defined (cli/CMakeLists.txt)"
#endif
#define PLUGINS MS_TEST_PLUGINS_DIR
#define WAIT_MS 120000

typedef struct fx {
    char root[256];
    char comp[320]; /* <root>/components/swapver */
    ms_nats_server *srv;
    ms_bus *bus;    /* the agent's */
    ms_bus *client; /* the test's requests */
    ms_runtime *rt; /* the host serving swapver */
    ms_registry *reg;
} fx;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void has(const char *text, const char *needle)
{
    if (text == NULL || strstr(text, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", text ? text : "(null)", needle);
}

/* The component swapver: consumes user-api ^1.0 (a minor bump acts within
 * autonomy minor); change copies `candidate` (a file under the test
 * plugins, or a path) into <root>/build/swapver.so; build and test pass.
 * deploy_args: the JSON members of actions.deploy after build_dir ("" for
 * none). */
static void write_component(fx *f, bool may_deploy, const char *candidate, const char *deploy_args)
{
    char path[600], src[600], buf[8192];

    snprintf(path, sizeof path, "%s/components", f->root);
    assert_int_equal(mkdir(path, 0755) == 0 || access(path, F_OK) == 0, 1);
    (void)mkdir(f->comp, 0755);
    snprintf(path, sizeof path, "%s/context", f->comp);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/build", f->root);
    (void)mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/context/context.json", f->comp);
    write_file(path, "{\"component\": \"swapver\", \"version\": \"1.1.0\","
                     " \"purpose\": \"Echoes its version.\","
                     " \"interfaces\": {\"consumes\": [{\"name\": \"user-api\","
                     " \"version\": \"^1.0\"}]}}");
    if (candidate[0] == '/')
        snprintf(src, sizeof src, "%s", candidate);
    else
        snprintf(src, sizeof src, "%s/%s.so", PLUGINS, candidate);
    snprintf(path, sizeof path, "%s/context/agent-config.json", f->comp);
    snprintf(buf, sizeof buf,
             "{\"component\": \"swapver\","
             " \"autonomy\": {\"level\": \"minor\", \"may_deploy\": %s},"
             " \"actions\": {"
             "  \"change\": {\"argv\": [\"/bin/cp\", \"%s\", \"%s/build/swapver.so\"],"
             "   \"timeout_s\": 30},"
             "  \"build\": {\"argv\": [\"/bin/true\"], \"timeout_s\": 30},"
             "  \"test\": {\"argv\": [\"/bin/true\"], \"timeout_s\": 30},"
             "  \"deploy\": {\"build_dir\": \"build\", \"timeout_s\": 100%s}}}",
             may_deploy ? "true" : "false", src, f->root, deploy_args);
    write_file(path, buf);
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char regpath[400];

    if (f == NULL)
        return -1;
    snprintf(f->root, sizeof f->root, "/tmp/ms-deploy-agent.XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(f->comp, sizeof f->comp, "%s/components/swapver", f->root);
    if (ms_nats_server_start(NULL, &f->srv) != MS_OK ||
        ms_bus_connect_url(ms_nats_server_url(f->srv), &f->bus) != MS_OK ||
        ms_bus_connect_url(ms_nats_server_url(f->srv), &f->client) != MS_OK)
        return -1;
    snprintf(regpath, sizeof regpath, "%s/.mainstack/registry.db", f->root);
    if (ms_registry_open(regpath, &f->reg) != MS_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[300];

    ms_runtime_destroy(f->rt);
    ms_registry_close(f->reg);
    ms_bus_destroy(f->client);
    ms_bus_destroy(f->bus);
    ms_nats_server_stop(f->srv);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

/* Record swapver 1.1.0 (swapver_t1) as the active version and start a host
 * in this process serving its artifact, as a promotion would have left it. */
static void active_host(fx *f)
{
    ms_version_info info;
    ms_runtime_options o;
    char art[600], data[400];

    ms_assert_ok(
        ms_version_add(f->reg, f->root, "swapver", PLUGINS "/swapver_t1.so", f->comp, &info));
    assert_string_equal(info.version, "1.1.0");
    ms_assert_ok(ms_registry_version_set_state(f->reg, "swapver", "1.1.0", "active"));
    snprintf(data, sizeof data, "%s/host-data", f->root);
    assert_int_equal(mkdir(data, 0700), 0);
    ms_runtime_options_init(&o);
    o.url = ms_nats_server_url(f->srv);
    o.data_root = data;
    o.workers = 2;
    o.health_interval_ms = 0;
    o.host_name = "host-a";
    ms_assert_ok(ms_runtime_create(&o, &f->rt));
    ms_assert_ok(ms_deploy_artifact_path(f->root, "swapver", "1.1.0", art, sizeof art));
    ms_assert_ok(ms_runtime_load(f->rt, art, NULL, NULL));
    ms_assert_ok(ms_bus_flush(f->client, 5000));
}

/* Which version answers a request to the component. */
static void assert_serves(fx *f, const char *version)
{
    ms_message *reply = NULL;
    char want[64];

    ms_assert_ok(ms_bus_request(f->client, "component.swapver.echo", "ping", 4, 5000, &reply));
    snprintf(want, sizeof want, "%s:ping", version);
    if (ms_message_len(reply) != strlen(want) ||
        memcmp(ms_message_data(reply), want, strlen(want)) != 0)
        fail_msg("the host answered '%.*s', want '%s'", (int)ms_message_len(reply),
                 (const char *)ms_message_data(reply), want);
    ms_message_unref(reply);
}

static void assert_state(fx *f, const char *version, const char *want)
{
    json_t *row = NULL;

    ms_assert_ok(ms_registry_version_get(f->reg, "swapver", version, &row));
    assert_string_equal(json_string_value(json_object_get(row, "state")), want);
    json_decref(row);
}

static ms_agent *make_agent(fx *f, const char *program, bool nats_url)
{
    ms_agent_options o;
    ms_agent *a = NULL;

    ms_agent_options_init(&o);
    o.bus = f->bus;
    o.registry = f->reg;
    o.component_dir = f->comp;
    o.root = f->root;
    o.durable = false;
    o.deploy_program = program;
    o.deploy_nats_url = nats_url ? ms_nats_server_url(f->srv) : NULL;
    ms_assert_ok(ms_agent_create(&o, &a));
    return a;
}

/* Decide an interface change that acts, and wait for the run to end. */
static void act(fx *f, ms_agent *a)
{
    ms_message *m = NULL;
    bool fresh = false;

    (void)f;
    ms_assert_ok(ms_msg_interface_changed(NULL, "architect", "user-api", "1.2.0", "1.3.0", false,
                                          "adds an optional field", &m));
    ms_assert_ok(ms_agent_handle(a, m, NULL, &fresh));
    assert_true(fresh);
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_message_unref(m);
}

/* The newest run of swapver, with its steps (a new reference). */
static json_t *last_run(fx *f)
{
    json_t *list = NULL, *run = NULL;

    ms_assert_ok(ms_registry_runs(f->reg, "swapver", 0, 1, &list));
    assert_int_equal(json_array_size(list), 1);
    ms_assert_ok(ms_registry_run_get(
        f->reg, json_integer_value(json_object_get(json_array_get(list, 0), "id")), &run));
    json_decref(list);
    return run;
}

/* The detail of the run's step named step (its first record: the step's
 * own; a run's end is recorded as another record of its last step). */
static const json_t *step_detail(const json_t *run, const char *step)
{
    const json_t *found = NULL, *s;
    size_t i;

    json_array_foreach(json_object_get(run, "steps"), i, s)
    {
        if (found == NULL && strcmp(json_string_value(json_object_get(s, "step")), step) == 0)
            found = json_object_get(s, "detail");
    }
    if (found == NULL)
        fail_msg("the run has no step %s", step);
    return found;
}

/* The open escalations of swapver: exactly one (a new reference). */
static json_t *open_escalation(fx *f)
{
    json_t *list = NULL, *e;

    ms_assert_ok(ms_registry_escalations(f->reg, "swapver", "open", 0, 0, &list));
    if (json_array_size(list) != 1)
        fail_msg("%zu open escalations, want 1", json_array_size(list));
    e = json_incref(json_array_get(list, 0));
    json_decref(list);
    return e;
}

static void assert_no_open_escalation(fx *f)
{
    json_t *list = NULL;

    ms_assert_ok(ms_registry_escalations(f->reg, "swapver", "open", 0, 0, &list));
    if (json_array_size(list) != 0)
        fail_msg("an open escalation: %s",
                 json_string_value(json_object_get(json_array_get(list, 0), "reason")));
    json_decref(list);
}

/* 1. may_deploy true: change -> build -> test -> version -> deploy; the
 * candidate is tested against the active, promoted on the host, active. */
static void may_deploy_deploys(void **state)
{
    fx *f = *state;
    ms_agent *a;
    json_t *run;
    const json_t *d;

    active_host(f);
    assert_serves(f, "1.1.0");
    /* the NATS URL comes from deploy_nats_url (NATS_URL of the step) */
    write_component(f, true, "swapver_t2", ", \"args\": [\"--watch\", \"0\"]");
    a = make_agent(f, MSTACK_BIN, true);
    act(f, a);
    assert_no_open_escalation(f);
    run = last_run(f);
    assert_string_equal(json_string_value(json_object_get(run, "state")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(run, "step")), "deploy");
    d = step_detail(run, "version");
    assert_string_equal(json_string_value(json_object_get(d, "version")), "1.2.0");
    assert_true(json_is_true(json_object_get(d, "fresh")));
    d = step_detail(run, "deploy");
    assert_string_equal(json_string_value(json_object_get(d, "version")), "1.2.0");
    assert_string_equal(json_string_value(json_object_get(d, "outcome")), "promoted");
    assert_true(json_integer_value(json_object_get(d, "deployment")) > 0);
    json_decref(run);
    assert_state(f, "1.2.0", "active");
    assert_state(f, "1.1.0", "previous");
    assert_serves(f, "1.2.0");
    {
        ms_agent_stats st;
        ms_agent_get_stats(a, &st);
        assert_int_equal(st.runs_succeeded, 1);
        assert_int_equal(st.runs_escalated, 0);
    }
    ms_agent_destroy(a);
}

/* 2. may_deploy false: tested both, not promoted: the run escalates with
 * the candidate ready; approving the escalation deploys it. */
static void ready_candidate_awaits_approval(void **state)
{
    fx *f = *state;
    ms_agent *a;
    ms_agent_options o;
    json_t *esc, *run;
    const json_t *detail;
    char run_state[16] = "", want[200];
    int64_t eid;

    active_host(f);
    /* the NATS URL from the config's args this time */
    snprintf(want, sizeof want, ", \"args\": [\"--watch\", \"0\", \"--nats\", \"%s\"]",
             ms_nats_server_url(f->srv));
    write_component(f, false, "swapver_t2", want);
    a = make_agent(f, MSTACK_BIN, false);
    act(f, a);
    run = last_run(f);
    assert_string_equal(json_string_value(json_object_get(run, "state")), "escalated");
    assert_string_equal(json_string_value(json_object_get(run, "step")), "deploy");
    json_decref(run);
    esc = open_escalation(f);
    eid = (int64_t)json_integer_value(json_object_get(esc, "id"));
    detail = json_object_get(esc, "detail");
    has(json_string_value(json_object_get(esc, "reason")),
        "swapver 1.2.0 passed test-both (deployment ");
    has(json_string_value(json_object_get(esc, "reason")),
        "): ready to deploy; approve to deploy it");
    assert_string_equal(json_string_value(json_object_get(detail, "step")), "deploy");
    assert_string_equal(json_string_value(json_object_get(detail, "version")), "1.2.0");
    assert_true(json_integer_value(json_object_get(detail, "deployment")) > 0);
    assert_true(json_integer_value(json_object_get(detail, "run_id")) > 0);
    assert_true(json_array_size(json_object_get(detail, "table")) > 0);
    json_decref(esc);
    assert_state(f, "1.2.0", "testing");
    assert_state(f, "1.1.0", "active");
    assert_serves(f, "1.1.0");
    ms_agent_destroy(a);

    /* approved: the run resumes at deploy, promoting this time */
    ms_agent_options_init(&o);
    o.bus = f->bus;
    o.registry = f->reg;
    o.root = f->root;
    o.agent_id = "test:approver";
    o.deploy_program = MSTACK_BIN;
    ms_assert_ok(ms_agent_resolve_escalation(&o, eid, true, "looks good", "tester", run_state));
    assert_string_equal(run_state, "succeeded");
    assert_state(f, "1.2.0", "active");
    assert_state(f, "1.1.0", "previous");
    assert_serves(f, "1.2.0");
    assert_no_open_escalation(f);
    run = last_run(f);
    assert_string_equal(json_string_value(json_object_get(run, "state")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(step_detail(run, "deploy"), "outcome")),
                        "promoted");
    /* the resumed run ran deploy only (its record and the run's end) */
    assert_int_equal(json_array_size(json_object_get(run, "steps")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(run, "steps"), 1), "state")),
                        "succeeded");
    json_decref(run);
    /* resolved once */
    ms_assert_status(ms_agent_resolve_escalation(&o, eid, true, NULL, "tester", run_state),
                     MS_ERR_STATE);
}

/* 2b. The same approval from the command line: `mstack escalations
 * resolve ID --approve --nats URL` runs deploy as itself, with NATS_URL
 * from --nats (the config's args name no server). */
static void cli_approval_deploys(void **state)
{
    fx *f = *state;
    ms_agent *a;
    json_t *esc;
    char id[32], out[400];
    const char *argv[12];
    ms_proc_spec spec;
    ms_proc_result res;

    active_host(f);
    write_component(f, false, "swapver_t2", ", \"args\": [\"--watch\", \"0\"]");
    a = make_agent(f, MSTACK_BIN, true);
    act(f, a);
    ms_agent_destroy(a);
    esc = open_escalation(f);
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(esc, "id")));
    json_decref(esc);
    assert_state(f, "1.2.0", "testing");
    argv[0] = MSTACK_BIN;
    argv[1] = "escalations";
    argv[2] = "resolve";
    argv[3] = id;
    argv[4] = "--approve";
    argv[5] = "--root";
    argv[6] = f->root;
    argv[7] = "--nats";
    argv[8] = ms_nats_server_url(f->srv);
    argv[9] = "--by";
    argv[10] = "tester";
    argv[11] = NULL;
    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.timeout_ms = WAIT_MS;
    ms_proc_result_init(&res);
    ms_assert_ok(ms_proc_run(&spec, &res));
    snprintf(out, sizeof out, "%s", res.output ? res.output : "");
    if (res.exit_code != 0)
        fail_msg("mstack escalations resolve: exit %d: %s", res.exit_code, out);
    has(res.output, "approved; the resumed run succeeded");
    ms_proc_result_reset(&res);
    assert_state(f, "1.2.0", "active");
    assert_state(f, "1.1.0", "previous");
    assert_serves(f, "1.2.0");
    assert_no_open_escalation(f);
}

/* 3. A candidate failing a test the active passes: the deploy step fails,
 * the escalation names the outcome and the test, the candidate is
 * rejected and the active keeps serving. */
static void regression_is_rejected(void **state)
{
    fx *f = *state;
    ms_agent *a;
    json_t *esc, *run;
    const char *reason;

    active_host(f);
    write_component(f, true, "swapver_tfail", ", \"args\": [\"--watch\", \"0\"]");
    a = make_agent(f, MSTACK_BIN, true);
    act(f, a);
    run = last_run(f);
    assert_string_equal(json_string_value(json_object_get(run, "state")), "escalated");
    assert_string_equal(json_string_value(json_object_get(run, "step")), "deploy");
    json_decref(run);
    esc = open_escalation(f);
    reason = json_string_value(json_object_get(esc, "reason"));
    has(reason, "failed at step deploy: deploy of swapver 1.3.0: outcome rejected");
    has(reason, "failing test: echo_reply");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(esc, "detail"), "version")), "1.3.0");
    has(json_string_value(json_object_get(
            json_object_get(json_object_get(json_object_get(esc, "detail"), "deploy"), "detail"),
            "candidate")),
        "1.3.0");
    json_decref(esc);
    assert_state(f, "1.3.0", "rejected");
    assert_state(f, "1.1.0", "active");
    assert_serves(f, "1.1.0");
    ms_agent_destroy(a);
}

/* 4. The change forgot to bump the version: the same version with other
 * content is refused by version add, and the escalation says so. */
static void version_add_refused(void **state)
{
    fx *f = *state;
    ms_version_info info;
    ms_agent *a;
    json_t *esc, *run;
    char changed[400], cmd[1200];
    const char *reason;

    ms_assert_ok(ms_version_add(f->reg, f->root, "swapver", PLUGINS "/swapver_t2.so", NULL, &info));
    snprintf(changed, sizeof changed, "%s/changed-1.2.0.so", f->root);
    snprintf(cmd, sizeof cmd, "cp '%s/swapver_t2.so' '%s' && printf x >> '%s'", PLUGINS, changed,
             changed);
    assert_int_equal(system(cmd), 0);
    write_component(f, true, changed, "");
    a = make_agent(f, MSTACK_BIN, true);
    act(f, a);
    run = last_run(f);
    assert_string_equal(json_string_value(json_object_get(run, "state")), "escalated");
    assert_string_equal(json_string_value(json_object_get(run, "step")), "version");
    json_decref(run);
    esc = open_escalation(f);
    reason = json_string_value(json_object_get(esc, "reason"));
    has(reason, "failed at step version: version add was refused (exit status 1)");
    has(reason, "already recorded with sha256");
    has(reason, "bump the version");
    assert_string_equal(json_string_value(json_object_get(json_object_get(esc, "detail"), "step")),
                        "version");
    json_decref(esc);
    assert_state(f, "1.2.0", "candidate");
    ms_agent_destroy(a);
}

/* 5. A deploy section but no deploy program: the pipeline ends after test,
 * as it did before the framework steps. */
static void no_deploy_program_ends_after_test(void **state)
{
    fx *f = *state;
    ms_agent *a;
    json_t *run, *rows = NULL;

    write_component(f, true, "swapver_t2", "");
    a = make_agent(f, NULL, false);
    act(f, a);
    run = last_run(f);
    assert_string_equal(json_string_value(json_object_get(run, "state")), "succeeded");
    assert_string_equal(json_string_value(json_object_get(run, "step")), "test");
    json_decref(run);
    assert_no_open_escalation(f);
    ms_assert_ok(ms_registry_versions(f->reg, "swapver", &rows));
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    ms_agent_destroy(a);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(may_deploy_deploys, setup, teardown),
        cmocka_unit_test_setup_teardown(ready_candidate_awaits_approval, setup, teardown),
        cmocka_unit_test_setup_teardown(cli_approval_deploys, setup, teardown),
        cmocka_unit_test_setup_teardown(regression_is_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(version_add_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(no_deploy_program_ends_after_test, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
