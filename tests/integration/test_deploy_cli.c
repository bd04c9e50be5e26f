/*
 * test_deploy_cli.c - `mstack version add`, `mstack versions` and `mstack
 * deploy` on real plugins and a real registry file: the Testable swapver
 * builds (tests/plugins/swapver.c) 1.1.0 and 1.2.0 pass their suite, 1.3.0
 * fails its echo test, 1.4.0 hangs in run_tests, 1.5.0 hangs in
 * initialize. Each case has its own project root (a temp directory with
 * components/); mstack runs as a child process (ms_proc_run), stdout and
 * stderr kept apart in files. The active version is set through the
 * registry API, as the promotion step would.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mainstack/deploy.h>

#include "ms_test.h"
#include "nats_fixture.h"

#ifndef MSTACK_BIN
#error "MSTACK_BIN must be defined (cli/CMakeLists.txt)"
#endif
#define PLUGINS MS_TEST_PLUGINS_DIR
#define CMD_TIMEOUT_MS 120000

typedef struct fx {
    char root[256];
    char *out, *err; /* of the last mstack() */
    int seq;
} fx;

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return strdup("");
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    buf[fread(buf, 1, (size_t)n, f)] = '\0';
    fclose(f);
    return buf;
}

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char p[300];

    if (f == NULL)
        return -1;
    snprintf(f->root, sizeof f->root, "/tmp/ms-deploy-cli.XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(p, sizeof p, "%s/components", f->root);
    if (mkdir(p, 0700) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[300];

    free(f->out);
    free(f->err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

/* Run `mstack ARGS` (a shell word list) in the root; returns the exit code;
 * f->out / f->err hold stdout and stderr. */
static int mstack(fx *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int mstack(fx *f, const char *fmt, ...)
{
    char args[2048], cmd[4096], o[400], e[400];
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    ms_proc_spec spec;
    ms_proc_result res;
    va_list ap;
    int code;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    f->seq++;
    snprintf(o, sizeof o, "%s/out.%d", f->root, f->seq);
    snprintf(e, sizeof e, "%s/err.%d", f->root, f->seq);
    snprintf(cmd, sizeof cmd, "exec '%s' %s >'%s' 2>'%s'", MSTACK_BIN, args, o, e);
    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.cwd = f->root;
    spec.timeout_ms = CMD_TIMEOUT_MS;
    ms_proc_result_init(&res);
    ms_assert_ok(ms_proc_run(&spec, &res));
    assert_false(res.timed_out);
    code = res.exit_code;
    ms_proc_result_reset(&res);
    free(f->out);
    free(f->err);
    f->out = slurp(o);
    f->err = slurp(e);
    return code;
}

static void has(const char *text, const char *needle)
{
    if (text == NULL || strstr(text, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", text ? text : "(null)", needle);
}

static ms_registry *open_reg(fx *f)
{
    char p[400];
    ms_registry *reg = NULL;

    snprintf(p, sizeof p, "%s/.mainstack/registry.db", f->root);
    ms_assert_ok(ms_registry_open(p, &reg));
    return reg;
}

static void add(fx *f, const char *plugin)
{
    if (mstack(f, "version add swapver %s/%s.so", PLUGINS, plugin) != 0)
        fail_msg("version add %s: %s", plugin, f->err);
    has(f->out, "recorded swapver ");
}

static void set_active(fx *f, const char *version)
{
    ms_registry *reg = open_reg(f);
    ms_assert_ok(ms_registry_version_set_state(reg, "swapver", version, "active"));
    ms_registry_close(reg);
}

static char *state_of(fx *f, const char *version)
{
    ms_registry *reg = open_reg(f);
    json_t *row = NULL;
    char *s;

    ms_assert_ok(ms_registry_version_get(reg, "swapver", version, &row));
    s = strdup(json_string_value(json_object_get(row, "state")));
    json_decref(row);
    ms_registry_close(reg);
    return s;
}

static void assert_state(fx *f, const char *version, const char *want)
{
    char *s = state_of(f, version);
    assert_string_equal(s, want);
    free(s);
}

/* The newest deployment of swapver (a new reference). */
static json_t *last_deployment(fx *f)
{
    ms_registry *reg = open_reg(f);
    json_t *list = NULL, *d;

    ms_assert_ok(ms_registry_deployments(reg, "swapver", 0, 1, &list));
    assert_int_equal(json_array_size(list), 1);
    d = json_incref(json_array_get(list, 0));
    json_decref(list);
    ms_registry_close(reg);
    return d;
}

static void assert_unlocked(fx *f)
{
    ms_registry *reg = open_reg(f);
    json_t *lock = NULL;
    ms_assert_status(ms_registry_deploy_lock_get(reg, "swapver", &lock), MS_ERR_NOT_FOUND);
    ms_registry_close(reg);
}

/* The verdict of test name in a deployment's stored comparison. */
static const char *verdict(const json_t *dep, const char *name)
{
    const json_t *table =
        json_object_get(json_object_get(json_object_get(dep, "detail"), "result"), "table");
    size_t i;
    json_t *row;

    json_array_foreach(table, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "test")), name) == 0)
            return json_string_value(json_object_get(row, "verdict"));
    }
    return NULL;
}

static void version_add_and_versions(void **state)
{
    fx *f = *state;
    char sha[65], copy[400], cmd[1000];
    json_t *rows;
    json_error_t jerr;

    add(f, "swapver_t1");
    has(f->out, "swapver 1.1.0");
    assert_int_equal(mstack(f, "version add swapver %s/swapver_t1.so", PLUGINS), 0);
    has(f->out, "already recorded with this content: nothing changed");
    assert_int_equal(mstack(f, "version add swapver %s/swapver_t2.so --json", PLUGINS), 0);
    rows = json_loads(f->out, 0, &jerr);
    assert_non_null(rows);
    assert_string_equal(json_string_value(json_object_get(rows, "version")), "1.2.0");
    assert_true(json_is_true(json_object_get(rows, "fresh")));
    json_decref(rows);

    assert_int_equal(mstack(f, "versions swapver"), 0);
    has(f->out, "VERSION");
    has(f->out, "1.1.0    candidate");
    ms_assert_ok(ms_sha256_file(PLUGINS "/swapver_t1.so", sha));
    sha[12] = '\0';
    has(f->out, sha);
    assert_int_equal(mstack(f, "versions swapver --json"), 0);
    rows = json_loads(f->out, 0, &jerr);
    assert_int_equal(json_array_size(rows), 2);
    json_decref(rows);

    /* same version, other content: both hashes named */
    snprintf(copy, sizeof copy, "%s/swapver.so", f->root);
    snprintf(cmd, sizeof cmd, "cp '%s/swapver_t1.so' '%s' && printf x >> '%s'", PLUGINS, copy,
             copy);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(mstack(f, "version add swapver %s", copy), 1);
    ms_assert_ok(ms_sha256_file(PLUGINS "/swapver_t1.so", sha));
    has(f->err, sha);
    ms_assert_ok(ms_sha256_file(copy, sha));
    has(f->err, sha);
    has(f->err, "bump the version");

    /* not a component, another ABI, unknown component, nothing recorded */
    assert_int_equal(mstack(f, "version add swapver %s/nosymbol.so", PLUGINS), 1);
    has(f->err, "nosymbol.so: not a mainstack component");
    assert_int_equal(mstack(f, "version add swapver %s/badabi.so", PLUGINS), 1);
    has(f->err, "ABI");
    assert_int_equal(mstack(f, "version add nothere %s", PLUGINS), 1);
    has(f->err, "unknown component 'nothere'");
    has(f->err, "nothere.so");
    assert_int_equal(mstack(f, "versions nothere"), 1);
    has(f->err, "no versions of 'nothere'");
    assert_int_equal(mstack(f, "versions Bad_Name"), 2);
    assert_int_equal(mstack(f, "version remove swapver"), 2);
    has(f->err, "unknown subcommand 'remove'");
}

static void deploy_without_active_needs_own_tests(void **state)
{
    fx *f = *state;
    json_t *dep;

    add(f, "swapver_t1");
    assert_int_equal(mstack(f, "deploy swapver 1.1.0 --no-promote"), 0);
    has(f->out, "no version is active");
    has(f->out, "echo_reply");
    has(f->out, "ready to promote");
    assert_state(f, "1.1.0", "testing");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "ready");
    assert_true(json_is_null(json_object_get(dep, "from_version")));
    assert_string_equal(verdict(dep, "echo_reply"), "new");
    has(json_string_value(json_object_get(json_object_get(dep, "detail"), "who")), " pid ");
    json_decref(dep);
    assert_unlocked(f);
}

static void deploy_compares_with_active(void **state)
{
    fx *f = *state;
    json_t *out, *dep;
    json_error_t jerr;

    add(f, "swapver_t1");
    add(f, "swapver_t2");
    set_active(f, "1.1.0");
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --json --no-promote"), 0);
    out = json_loads(f->out, 0, &jerr);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "outcome")), "ready");
    json_decref(out);
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "from_version")), "1.1.0");
    assert_string_equal(json_string_value(json_object_get(dep, "to_version")), "1.2.0");
    assert_string_equal(verdict(dep, "echo_reply"), "ok");
    assert_string_equal(verdict(dep, "version_format"), "ok");
    json_decref(dep);
    assert_state(f, "1.1.0", "active");
    assert_state(f, "1.2.0", "testing");
    assert_unlocked(f);
}

static void deploy_rejects_a_regression(void **state)
{
    fx *f = *state;
    json_t *dep;

    add(f, "swapver_t1");
    add(f, "swapver_tfail");
    set_active(f, "1.1.0");
    assert_int_equal(mstack(f, "deploy swapver 1.3.0"), 1);
    has(f->out, "TEST            ACTIVE  CANDIDATE  VERDICT");
    has(f->out, "echo_reply      pass    fail       regression");
    has(f->out, "version_format  pass    pass       ok");
    has(f->out, "rejected swapver 1.3.0: 1 failing test");
    has(f->out, "echo_reply: expected '0.0.0:ping', got '1.3.0:ping'");
    assert_state(f, "1.3.0", "rejected");
    assert_state(f, "1.1.0", "active");
    assert_int_equal(mstack(f, "versions swapver"), 0);
    has(f->out, "STATES ENTERED");
    has(f->out, "1.3.0    rejected  ");
    {
        const char *row = strstr(f->out, "1.3.0    rejected");
        assert_non_null(row);
        /* candidate at add, testing at the deploy's start, rejected at its end */
        assert_non_null(strstr(row, "candidate 20"));
        assert_non_null(strstr(row, ", testing 20"));
        assert_non_null(strstr(row, ", rejected 20"));
    }
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "rejected");
    assert_string_equal(verdict(dep, "echo_reply"), "regression");
    json_decref(dep);
    assert_unlocked(f);
    /* the audit log has it too */
    {
        ms_registry *reg = open_reg(f);
        json_t *log = NULL;
        ms_assert_ok(ms_registry_audit_log(reg, "swapver", 0, 1, &log));
        assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "outcome")),
                            "rejected");
        json_decref(log);
        ms_registry_close(reg);
    }
}

static void deploy_hanging_tests_are_stopped(void **state)
{
    fx *f = *state;

    add(f, "swapver_t1");
    add(f, "swapver_thang");
    add(f, "swapver_tinithang");
    set_active(f, "1.1.0");
    /* run_tests never returns: the host reports it at --timeout and quits */
    assert_int_equal(mstack(f, "deploy swapver 1.4.0 --timeout 1000"), 1);
    has(f->out, "(test host)");
    has(f->out, "run_tests did not return within 1000 ms");
    assert_state(f, "1.4.0", "rejected");
    /* initialize never returns: the host itself is killed at the limit */
    assert_int_equal(mstack(f, "deploy swapver 1.5.0 --timeout 500"), 1);
    has(f->out, "the test host was killed at the time limit");
    assert_state(f, "1.5.0", "rejected");
    assert_unlocked(f);
}

static void deploy_bad_versions(void **state)
{
    fx *f = *state;

    add(f, "swapver_t1");
    assert_int_equal(mstack(f, "deploy swapver 9.9.9"), 1);
    has(f->err, "cannot deploy swapver 9.9.9");
    has(f->err, "1.1.0"); /* the versions that exist are named */
    assert_int_equal(mstack(f, "deploy nothere 1.0.0"), 1);
    has(f->err, "mstack version add nothere");
    set_active(f, "1.1.0");
    assert_int_equal(mstack(f, "deploy swapver 1.1.0"), 1);
    has(f->err, "already the active version");
    assert_int_equal(mstack(f, "deploy swapver"), 2);
    assert_int_equal(mstack(f, "deploy swapver 1.1.0 --timeout abc"), 2);
    assert_unlocked(f);
}

static void first_done(ms_proc_result *r, void *closure)
{
    *(int *)closure = r->exit_code;
}

static void two_deploys_at_once(void **state)
{
    fx *f = *state;
    char cmd[2048], o[400];
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    ms_proc_runner *runner = NULL;
    ms_proc_spec spec;
    ms_registry *reg;
    json_t *lock = NULL;
    bool seen = false;
    int first_code = -2;
    char *first_out;

    add(f, "swapver_t1");
    add(f, "swapver_thang");
    set_active(f, "1.1.0");
    snprintf(o, sizeof o, "%s/first.out", f->root);
    snprintf(cmd, sizeof cmd, "exec '%s' deploy swapver 1.4.0 --timeout 8000 >'%s' 2>&1",
             MSTACK_BIN, o);
    ms_assert_ok(ms_proc_runner_create(NULL, &runner));
    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.cwd = f->root;
    spec.timeout_ms = CMD_TIMEOUT_MS;
    ms_assert_ok(ms_proc_runner_start(runner, &spec, first_done, &first_code, NULL));
    /* wait until the first deploy holds the lock (a state, not a time) */
    reg = open_reg(f);
    for (int i = 0; i < 6000 && !seen; i++) {
        if (ms_registry_deploy_lock_get(reg, "swapver", &lock) == MS_OK)
            seen = true;
        else
            usleep(10000);
    }
    assert_true(seen);
    assert_int_equal(mstack(f, "deploy swapver 1.1.0 --root %s", f->root), 1);
    has(f->err, "is already the active version"); /* checked before the lock */
    add(f, "swapver_t2");
    assert_int_equal(mstack(f, "deploy swapver 1.2.0"), 1);
    has(f->err, "deploy of swapver is locked by ");
    has(f->err, json_string_value(json_object_get(lock, "holder")));
    assert_state(f, "1.2.0", "candidate"); /* the refused deploy touched nothing */
    json_decref(lock);
    ms_assert_ok(ms_proc_runner_wait_idle(runner, CMD_TIMEOUT_MS));
    ms_proc_runner_destroy(runner);
    ms_registry_close(reg);
    assert_int_equal(first_code, 1); /* 1.4.0 hangs its tests: rejected */
    first_out = slurp(o);
    has(first_out, "run_tests did not return within 8000 ms");
    free(first_out);
    assert_unlocked(f);
    /* now it goes through */
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --no-promote"), 0);
}

static void stale_lock_is_released(void **state)
{
    fx *f = *state;
    char host[256], holder[400];
    ms_registry *reg;
    pid_t pid;
    int st = 0;

    add(f, "swapver_t1");
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(0);
    assert_int_equal(waitpid(pid, &st, 0), pid); /* that pid is now dead */
    assert_int_equal(gethostname(host, sizeof host), 0);
    host[sizeof host - 1] = '\0';
    snprintf(holder, sizeof holder, "ghost@%s pid %ld", host, (long)pid);
    reg = open_reg(f);
    ms_assert_ok(ms_registry_deploy_lock(reg, "swapver", holder));
    ms_registry_close(reg);
    assert_int_equal(mstack(f, "deploy swapver 1.1.0 --no-promote"), 0);
    has(f->err, "a process that no longer exists: releasing it");
    has(f->err, holder);
    assert_unlocked(f);
    /* a holder on another host is not judged from here */
    reg = open_reg(f);
    ms_assert_ok(ms_registry_deploy_lock(reg, "swapver", "ghost@elsewhere.invalid pid 1"));
    ms_registry_close(reg);
    assert_int_equal(mstack(f, "deploy swapver 1.1.0"), 1);
    has(f->err, "locked by ghost@elsewhere.invalid pid 1");
}

/* A component directory whose context names a tests.command: it runs in the
 * project root against each artifact (MAINSTACK_ARTIFACT). */
static void deploy_runs_tests_command(void **state)
{
    fx *f = *state;
    char p[600];
    json_t *ctx, *dep;
    json_error_t jerr;
    char *ran;

    ctx = json_load_file(MS_SOURCE_DIR "/components/user-service/context/context.json", 0, &jerr);
    assert_non_null(ctx);
    json_object_set_new(ctx, "component", json_string("swapver"));
    json_object_set_new(
        ctx, "tests",
        json_pack("{s:s}", "command",
                  "echo \"$MAINSTACK_ARTIFACT\" >> ran.txt; case \"$MAINSTACK_ARTIFACT\" in "
                  "*/1.2.0/*) echo 'checkout flow broke'; exit 1;; esac; echo fine"));
    snprintf(p, sizeof p, "%s/components/swapver", f->root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/components/swapver/context", f->root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/components/swapver/context/context.json", f->root);
    assert_int_equal(json_dump_file(ctx, p, JSON_INDENT(2)), 0);
    json_decref(ctx);
    add(f, "swapver_t1");
    add(f, "swapver_t2");
    has(f->out, "context");
    set_active(f, "1.1.0");
    assert_int_equal(mstack(f, "deploy swapver 1.2.0"), 1);
    has(f->out, "tests.command   pass    fail       regression");
    has(f->out, "tests.command: exit 1: checkout flow broke");
    snprintf(p, sizeof p, "%s/ran.txt", f->root);
    ran = slurp(p);
    has(ran, "/.mainstack/artifacts/swapver/1.1.0/swapver.so");
    has(ran, "/.mainstack/artifacts/swapver/1.2.0/swapver.so");
    free(ran);
    dep = last_deployment(f);
    assert_string_equal(verdict(dep, "tests.command"), "regression");
    json_decref(dep);
}

/* ---- promotion, rollback, history: a real nats-server and a host ---------- */

/* A nats-server (JetStream off) and, when version is given, one runtime host
 * in this process serving that version's recorded artifact. */
typedef struct host {
    ms_nats_server *srv;
    ms_bus *client;
    ms_runtime *rt;
} host;

static void host_start(fx *f, host *h, const char *version, bool deploy_commands)
{
    ms_runtime_options o;
    char art[600], data[400];

    memset(h, 0, sizeof *h);
    ms_assert_ok(ms_nats_server_start(NULL, &h->srv));
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(h->srv), &h->client));
    if (version == NULL)
        return;
    snprintf(data, sizeof data, "%s/host-data", f->root);
    assert_int_equal(mkdir(data, 0700), 0);
    ms_runtime_options_init(&o);
    o.url = ms_nats_server_url(h->srv);
    o.data_root = data;
    o.workers = 2;
    o.health_interval_ms = 0;
    o.host_name = "host-a";
    o.deploy_commands = deploy_commands;
    ms_assert_ok(ms_runtime_create(&o, &h->rt));
    ms_assert_ok(ms_deploy_artifact_path(f->root, "swapver", version, art, sizeof art));
    ms_assert_ok(ms_runtime_load(h->rt, art, NULL, NULL));
    ms_assert_ok(ms_bus_flush(h->client, 5000));
}

static void host_stop(host *h)
{
    ms_runtime_destroy(h->rt);
    ms_bus_destroy(h->client);
    ms_nats_server_stop(h->srv);
}

/* Which version answers a request to the component. */
static void assert_serves(host *h, const char *version)
{
    ms_message *reply = NULL;
    char want[64];

    ms_assert_ok(ms_bus_request(h->client, "component.swapver.echo", "ping", 4, 5000, &reply));
    snprintf(want, sizeof want, "%s:ping", version);
    if (ms_message_len(reply) != strlen(want) ||
        memcmp(ms_message_data(reply), want, strlen(want)) != 0)
        fail_msg("the host answered '%.*s', want '%s'", (int)ms_message_len(reply),
                 (const char *)ms_message_data(reply), want);
    ms_message_unref(reply);
}

static void deploy_promotes_then_rollback_and_history(void **state)
{
    fx *f = *state;
    host h;
    json_t *dep, *steps, *list;
    json_error_t jerr;
    const char *p1, *p2;

    add(f, "swapver_t1");
    add(f, "swapver_t2");
    set_active(f, "1.1.0");
    host_start(f, &h, "1.1.0", true);
    assert_serves(&h, "1.1.0");

    /* deploy: tested, compared, promoted on the one host */
    assert_int_equal(
        mstack(f, "deploy swapver 1.2.0 --watch 0 --nats %s", ms_nats_server_url(h.srv)), 0);
    has(f->out, "passed every test");
    has(f->out, "HOST    INSTANCES  FROM   TO     SERVING  RESULT");
    has(f->out, "host-a  1          1.1.0  1.2.0  1.2.0    switched");
    has(f->out, "promoted swapver 1.2.0 on 1 host");
    has(f->out, "1.1.0 is previous");
    assert_serves(&h, "1.2.0");
    assert_state(f, "1.2.0", "active");
    assert_state(f, "1.1.0", "previous");
    assert_int_equal(mstack(f, "versions swapver"), 0);
    has(f->out, "1.2.0    active");
    has(f->out, "1.1.0    previous");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "promoted");
    steps = json_object_get(json_object_get(dep, "detail"), "steps");
    /* test, then the promotion's intents (preparing, switching) and its end */
    assert_int_equal(json_array_size(steps), 4);
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 0), "outcome")),
                        "ready");
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 1), "outcome")),
                        "preparing");
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 2), "outcome")),
                        "switching");
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 3), "step")),
                        "promote");
    assert_string_equal(
        json_string_value(json_object_get(
            json_array_get(
                json_object_get(json_object_get(json_object_get(dep, "detail"), "result"), "hosts"),
                0),
            "serving")),
        "1.2.0");
    json_decref(dep);
    assert_unlocked(f);

    /* rollback: straight back to 1.1.0, no tests */
    assert_int_equal(mstack(f, "rollback swapver --nats %s", ms_nats_server_url(h.srv)), 0);
    has(f->out, "rolling swapver back from 1.2.0 to 1.1.0 (no test run)");
    has(f->out, "host-a  1          1.2.0  1.1.0  1.1.0    switched");
    has(f->out, "rolled swapver back to 1.1.0 on 1 host");
    assert_serves(&h, "1.1.0");
    assert_state(f, "1.1.0", "active");
    assert_state(f, "1.2.0", "rolled-back");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "rolled-back");
    assert_string_equal(json_string_value(json_object_get(dep, "from_version")), "1.2.0");
    assert_string_equal(json_string_value(json_object_get(dep, "to_version")), "1.1.0");
    json_decref(dep);
    assert_unlocked(f);

    /* history: both, newest first */
    assert_int_equal(mstack(f, "history swapver"), 0);
    has(f->out, "ID  TIME");
    p1 = strstr(f->out, "rollback:rolled-back");
    p2 = strstr(f->out, "test:ready promote:promoted");
    assert_non_null(p1);
    assert_non_null(p2);
    assert_true(p1 < p2);
    assert_int_equal(mstack(f, "history swapver --json"), 0);
    list = json_loads(f->out, 0, &jerr);
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
                        "rolled-back");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "state")),
                        "promoted");
    {
        long long promoted = json_integer_value(json_object_get(json_array_get(list, 1), "id"));
        long long rolled = json_integer_value(json_object_get(json_array_get(list, 0), "id"));

        /* one deployment in full, from the stored record */
        assert_int_equal(mstack(f, "history swapver %lld", promoted), 0);
        has(f->out, "of swapver: 1.1.0 -> 1.2.0, promoted");
        has(f->out, "TEST");
        has(f->out, "CANDIDATE");
        has(f->out, "promote: promoted");
        has(f->out, "switched");
        assert_int_equal(mstack(f, "history swapver %lld", rolled), 0);
        has(f->out, "1.2.0 -> 1.1.0, rolled-back");
        has(f->out, "rollback: rolled-back");
        assert_int_equal(mstack(f, "history swapver %lld --json", promoted), 0);
        has(f->out, "\"to_version\": \"1.2.0\"");
        assert_int_equal(mstack(f, "history swapver 99999"), 1);
        assert_int_equal(mstack(f, "history swapver first"), 2);
        has(f->err, "ID must be a deployment number");
        assert_int_equal(mstack(f, "history other %lld", promoted), 1);
        has(f->err, "is of swapver, not of other");
    }
    json_decref(list);
    assert_int_equal(mstack(f, "history swapver --limit 1 --json"), 0);
    list = json_loads(f->out, 0, &jerr);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    assert_int_equal(mstack(f, "history swapver --limit 0"), 2);
    assert_int_equal(mstack(f, "history Bad_Name"), 2);

    /* no previous any more: named what exists */
    assert_int_equal(mstack(f, "rollback swapver --nats %s", ms_nats_server_url(h.srv)), 1);
    has(f->err, "swapver has no version in state previous to roll back to");
    has(f->err, "1.1.0 active");
    has(f->err, "1.2.0 rolled-back");
    assert_serves(&h, "1.1.0");
    assert_unlocked(f);
    assert_int_equal(mstack(f, "rollback nothere --nats %s", ms_nats_server_url(h.srv)), 1);
    has(f->err, "no versions of 'nothere'");
    host_stop(&h);
}

static void deploy_with_no_host_is_not_promoted(void **state)
{
    fx *f = *state;
    host h;
    json_t *dep, *out, *list;
    json_error_t jerr;

    add(f, "swapver_t1");
    add(f, "swapver_t2");
    set_active(f, "1.1.0");
    host_start(f, &h, NULL, true); /* a server, nobody runs swapver */
    assert_int_equal(mstack(f, "history swapver"), 0);
    has(f->out, "no deployments of swapver yet");
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --nats %s", ms_nats_server_url(h.srv)), 1);
    has(f->out, "passed every test");
    has(f->err, "no running host runs swapver: 1.2.0 was not promoted, nothing serves it");
    assert_state(f, "1.2.0", "candidate");
    assert_state(f, "1.1.0", "active");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "no-hosts");
    json_decref(dep);
    assert_int_equal(mstack(f, "history swapver"), 0);
    has(f->out, "test:ready promote:no-hosts");
    has(f->out, "no running host runs the component: tested but not serving");
    /* the JSON says the same */
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --json --nats %s", ms_nats_server_url(h.srv)),
                     1);
    out = json_loads(f->out, 0, &jerr);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "outcome")), "no-hosts");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(out, "promotion"), "report"), "error")),
                        "no running host runs the component: tested but not serving");
    json_decref(out);
    assert_unlocked(f);
    host_stop(&h);

    /* no server at all: the connection error, recorded, still a candidate */
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --nats nats://127.0.0.1:1"), 6);
    has(f->err, "no NATS server at nats://127.0.0.1:1");
    assert_state(f, "1.2.0", "candidate");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "error");
    json_decref(dep);
    assert_int_equal(mstack(f, "history swapver --json"), 0);
    list = json_loads(f->out, 0, &jerr);
    assert_int_equal(json_array_size(list), 3);
    json_decref(list);
    assert_unlocked(f);
}

/* A host that runs swapver but takes no deploy commands (an older build):
 * the promotion is aborted, the host still serves the active version, the
 * reason names the instance nobody prepared. */
static void deploy_fails_when_a_host_cannot_prepare(void **state)
{
    fx *f = *state;
    host h;
    json_t *dep;

    add(f, "swapver_t1");
    add(f, "swapver_t2");
    set_active(f, "1.1.0");
    host_start(f, &h, "1.1.0", false);
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --prepare-timeout 1000 --nats %s",
                            ms_nats_server_url(h.srv)),
                     1);
    has(f->out, "passed every test");
    has(f->err, "the promotion of swapver to 1.2.0 failed");
    has(f->err, "no host answered the prepare");
    has(f->err, "aborted on every host");
    assert_serves(&h, "1.1.0");
    assert_state(f, "1.2.0", "candidate");
    assert_state(f, "1.1.0", "active");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "failed");
    json_decref(dep);
    assert_int_equal(mstack(f, "history swapver"), 0);
    has(f->out, "test:ready promote:failed");
    has(f->out, "no host answered the prepare");
    assert_unlocked(f);
    /* nothing was promoted, so there is nothing to roll back to */
    assert_int_equal(mstack(f, "rollback swapver --nats %s", ms_nats_server_url(h.srv)), 1);
    has(f->err, "no version in state previous");
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --prepare-timeout x"), 2);
    host_stop(&h);
}

/* ---- the watch window: light request traffic while mstack deploy watches -- */

typedef struct traffic {
    const char *url;
    atomic_bool stop;
    atomic_int sent;
    pthread_t thread;
} traffic;

/* Its own connection: one echo request every 20 ms until told to stop
 * (answers and errors alike: the runtime counts them). */
static void *traffic_main(void *arg)
{
    traffic *t = arg;
    ms_bus *bus = NULL;

    if (ms_bus_connect_url(t->url, &bus) != MS_OK)
        return NULL;
    while (!atomic_load(&t->stop)) {
        ms_message *reply = NULL;
        (void)ms_bus_request(bus, "component.swapver.echo", "ping", 4, 500, &reply);
        ms_message_unref(reply);
        atomic_fetch_add(&t->sent, 1);
        usleep(20 * 1000);
    }
    ms_bus_destroy(bus);
    return NULL;
}

static void traffic_start(traffic *t, const char *url)
{
    t->url = url;
    atomic_init(&t->stop, false);
    atomic_init(&t->sent, 0);
    assert_int_equal(pthread_create(&t->thread, NULL, traffic_main, t), 0);
}

static void traffic_stop(traffic *t)
{
    atomic_store(&t->stop, true);
    assert_int_equal(pthread_join(t->thread, NULL), 0);
    assert_true(atomic_load(&t->sent) > 0);
}

/* The watch step of the newest deployment: its outcome, detail in *detail
 * (borrowed from dep). */
static const char *watch_step_of(const json_t *dep, const json_t **detail)
{
    const json_t *steps = json_object_get(json_object_get(dep, "detail"), "steps");
    const json_t *last = json_array_get(steps, json_array_size(steps) - 1);

    /* test ready, promote preparing/switching/promoted, watch watching
     * (rolling-back), then the verdict */
    assert_true(json_array_size(steps) >= 6);
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 4), "outcome")),
                        "watching");
    assert_string_equal(json_string_value(json_object_get(last, "step")), "watch");
    *detail = json_object_get(json_object_get(dep, "detail"), "result");
    return json_string_value(json_object_get(last, "outcome"));
}

static void deploy_watch_rolls_back_a_failing_version(void **state)
{
    fx *f = *state;
    host h;
    traffic t;
    json_t *dep;
    const json_t *d;

    add(f, "swapver_t1");
    add(f, "swapver_treqfail");
    set_active(f, "1.1.0");
    host_start(f, &h, "1.1.0", true);
    traffic_start(&t, ms_nats_server_url(h.srv));
    /* 1.6.0 passes its tests, then fails every live request */
    assert_int_equal(mstack(f, "deploy swapver 1.6.0 --watch 20000 --min-requests 5 --nats %s",
                            ms_nats_server_url(h.srv)),
                     1);
    traffic_stop(&t);
    has(f->out, "passed every test");
    has(f->out, "promoted swapver 1.6.0 on 1 host");
    has(f->out, "watching swapver 1.6.0 for 20000 ms");
    has(f->out, "watch check error_rate failed");
    has(f->out, "rolled swapver back to 1.1.0 on 1 host: check error_rate failed");
    has(f->err, "swapver 1.6.0 was rolled back to 1.1.0: check error_rate failed");
    assert_serves(&h, "1.1.0");
    assert_state(f, "1.6.0", "rolled-back");
    assert_state(f, "1.1.0", "active");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "rolled-back");
    assert_string_equal(watch_step_of(dep, &d), "rolled-back");
    assert_string_equal(json_string_value(json_object_get(d, "check")), "error_rate");
    assert_true(json_real_value(json_object_get(d, "value")) >
                json_real_value(json_object_get(d, "threshold")));
    assert_true(json_integer_value(json_object_get(d, "requests")) >= 5);
    assert_int_equal(json_integer_value(json_object_get(d, "errors")),
                     json_integer_value(json_object_get(d, "requests")));
    /* it stopped at the first degraded sample, well inside the window */
    assert_true(json_integer_value(json_object_get(d, "watched_ms")) < 20000);
    json_decref(dep);
    assert_int_equal(mstack(f, "history swapver"), 0);
    has(f->out, "test:ready promote:promoted watch:rolled-back");
    assert_unlocked(f);
    host_stop(&h);
}

static void deploy_watch_makes_a_healthy_version_permanent(void **state)
{
    fx *f = *state;
    host h;
    traffic t;
    json_t *dep, *out;
    const json_t *d;
    json_error_t jerr;

    add(f, "swapver_t1");
    add(f, "swapver_t2");
    set_active(f, "1.1.0");
    host_start(f, &h, "1.1.0", true);
    traffic_start(&t, ms_nats_server_url(h.srv));
    assert_int_equal(mstack(f,
                            "deploy swapver 1.2.0 --watch 1500 --min-requests 1 --json --nats %s",
                            ms_nats_server_url(h.srv)),
                     0);
    traffic_stop(&t);
    out = json_loads(f->out, 0, &jerr);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "outcome")), "permanent");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(out, "promotion"), "watch"), "outcome")),
        "permanent");
    json_decref(out);
    assert_serves(&h, "1.2.0");
    assert_state(f, "1.2.0", "active");
    assert_state(f, "1.1.0", "previous");
    dep = last_deployment(f);
    assert_string_equal(json_string_value(json_object_get(dep, "state")), "permanent");
    assert_string_equal(watch_step_of(dep, &d), "permanent");
    assert_string_equal(json_string_value(json_object_get(d, "check")), "none");
    assert_true(json_integer_value(json_object_get(d, "requests")) > 0);
    assert_int_equal(json_integer_value(json_object_get(d, "errors")), 0);
    assert_true(json_integer_value(json_object_get(d, "watched_ms")) >= 1500);
    json_decref(dep);
    assert_unlocked(f);
    /* bad watch options are refused before anything runs */
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --watch -1"), 2);
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --max-error-rate-increase 101"), 2);
    assert_int_equal(mstack(f, "deploy swapver 1.2.0 --min-requests 0"), 2);
    host_stop(&h);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(version_add_and_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_without_active_needs_own_tests, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_compares_with_active, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_rejects_a_regression, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_hanging_tests_are_stopped, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_bad_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(two_deploys_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_lock_is_released, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_runs_tests_command, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_promotes_then_rollback_and_history, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_with_no_host_is_not_promoted, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_fails_when_a_host_cannot_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_watch_rolls_back_a_failing_version, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_watch_makes_a_healthy_version_permanent, setup,
                                        teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
