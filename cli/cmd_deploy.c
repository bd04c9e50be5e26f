/*
 * cmd_deploy.c - `mstack deploy COMPONENT VERSION`: test the active
 * version and the candidate side by side and compare them test by test,
 * before the promotion (the multi-host swap, which is not this file's).
 *
 *   1. Take the component's deploy lock in the registry for
 *      "<user>@<host> pid <pid>". A lock held by a process of this host
 *      that no longer exists is stale: it is released under its holder's
 *      name and taken again (a warning says so). Any other holder: refused,
 *      naming it. The lock is released on every path out.
 *   2. Begin a deployment record (active version -> VERSION); the candidate
 *      goes to state testing.
 *   3. For the active artifact (if a version is active) and the candidate,
 *      each in its own process with a fresh temporary data directory, run
 *      the Testable suite: `mstack test-host SO --data-dir DIR --report
 *      FILE` (a hidden verb: one inproc runtime, one instance,
 *      ms_instance_run_tests) under the proc runner's time limit, and the
 *      candidate's context tests.command (sh -c, cwd the project root,
 *      MAINSTACK_ARTIFACT=<the .so>) likewise. A host that hangs is killed
 *      at the limit and reported as such.
 *   4. Compare: every test the active passes the candidate must pass; a
 *      test only the candidate has must pass too. The table (test, active,
 *      candidate, verdict) is printed and stored in the deployment record.
 *      A regression rejects the candidate (state rejected) naming each
 *      failing test and what it printed; exit 1. Otherwise the outcome is
 *      "ready" (the candidate stays in testing until the promotion decides)
 *      and "ready to promote" is printed.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mainstack/deploy.h>

#include "cli.h"

#define HOST_SLACK_MS 5000         /* start-up and teardown of a test host past --timeout */
#define CAPTURE_MAX (256u * 1024u) /* output of a test host or tests.command kept */

/* ---- the hidden test host ---------------------------------------------- */

static int write_report(const char *path, json_t *report)
{
    if (path == NULL) {
        cli_print_json(report, false);
        return CLI_EXIT_OK;
    }
    if (json_dump_file(report, path, JSON_COMPACT) != 0) {
        cli_error("test-host: cannot write the report to %s", path);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

static int run_test_host(const cli_verb *verb, const cli_args *a)
{
    const char *so = a->positional[0];
    const char *report_path = cli_opt(a, "report");
    ms_runtime_options o;
    ms_runtime *rt = NULL;
    ms_instance_options io;
    ms_instance *inst = NULL;
    ms_instance_stats st;
    ms_test_report *rep = NULL;
    json_t *out = NULL, *tests = NULL;
    char url[64];
    int timeout = 0, rc = CLI_EXIT_FAILURE;
    ms_status s;

    if ((rc = cli_opt_int(a, "timeout", 60000, 1, 3600000, &timeout)) != CLI_EXIT_OK)
        return rc;
    if (cli_opt(a, "data-dir") == NULL)
        return cli_usage_error(verb, "--data-dir DIR is required");
    snprintf(url, sizeof url, "inproc://test-host-%ld", (long)getpid());
    ms_runtime_options_init(&o);
    o.url = url;
    o.data_root = cli_opt(a, "data-dir");
    o.workers = 2;
    o.health_interval_ms = 0;
    o.discovery = false;
    o.restart = MS_RESTART_TEMPORARY;
    out = json_pack("{s:s, s:b, s:[]}", "so", so, "testable", false, "tests");
    if (out == NULL)
        return CLI_EXIT_FAILURE;
    tests = json_object_get(out, "tests");
    if ((s = ms_runtime_create(&o, &rt)) != MS_OK) {
        json_object_set_new(out, "error",
                            json_sprintf("cannot start a runtime: %s", ms_last_error()));
        goto report;
    }
    ms_instance_options_init(rt, &io);
    io.restart = MS_RESTART_TEMPORARY;
    if ((s = ms_runtime_load(rt, so, &io, &inst)) != MS_OK) {
        json_object_set_new(out, "error", json_sprintf("cannot load %s: %s", so, ms_last_error()));
        goto report;
    }
    json_object_set_new(out, "version", json_string(ms_instance_ops(inst)->metadata.version));
    if (ms_instance_get_stats(inst, &st) != MS_OK || st.state != MS_INSTANCE_RUNNING) {
        json_object_set_new(out, "error",
                            json_sprintf("the instance is not running (%s): %s",
                                         ms_instance_state_str(st.state), st.last_error));
        goto report;
    }
    if ((s = ms_test_report_create(&rep)) != MS_OK)
        goto report;
    s = ms_instance_run_tests(inst, rep, timeout);
    if (s == MS_ERR_UNSUPPORTED) {
        /* not Testable: no suite, nothing failed */
        s = MS_OK;
    } else if (s == MS_ERR_TIMEOUT) {
        json_object_set_new(out, "timed_out", json_true());
        json_object_set_new(out, "error",
                            json_sprintf("run_tests did not return within %d ms", timeout));
        /* The suite still runs on a worker: do not wait for it. */
        rc = write_report(report_path, out);
        fflush(stdout);
        _exit(rc == CLI_EXIT_OK ? 3 : CLI_EXIT_FAILURE);
    } else {
        json_object_set_new(out, "testable", json_true());
        if (s != MS_OK)
            json_object_set_new(out, "suite_status", json_string(ms_status_name(s)));
        s = MS_OK;
    }
    for (size_t i = 0; i < ms_test_report_count(rep); i++) {
        const ms_test_result *r = ms_test_report_at(rep, i);
        json_array_append_new(tests, json_pack("{s:s, s:b, s:s}", "name", r->name, "passed",
                                               r->passed, "output", r->output));
    }
    if (ms_test_report_count(rep) > 0)
        json_object_set_new(out, "testable", json_true());
report:
    rc = write_report(report_path, out);
    if (rc == CLI_EXIT_OK && json_object_get(out, "error") != NULL)
        rc = CLI_EXIT_FAILURE;
    ms_test_report_destroy(rep);
    ms_runtime_destroy(rt);
    json_decref(out);
    return rc;
}

static const cli_option test_host_options[] = {
    {"data-dir", 'd', "DIR", false, "the data root of the instance (required)"},
    {"timeout", 't', "MS", false, "time limit of run_tests (default 60000)"},
    {"report", 0, "FILE", false, "write the JSON report there (default: stdout)"},
    {"json", 0, NULL, false, "the report is JSON (always)"},
    {NULL, 0, NULL, false, NULL},
};

const cli_verb cli_verb_test_host = {
    .name = "test-host",
    .usage = "PLUGIN.so --data-dir DIR [--timeout MS] [--report FILE]",
    .summary = "(internal) run one plugin's Testable suite in this process",
    .description =
        "Used by mstack deploy: loads PLUGIN.so into an in-process runtime, runs its\n"
        "run_tests (ms_instance_run_tests) and writes the report as JSON:\n"
        "{\"so\",\"version\",\"testable\",\"tests\":[{\"name\",\"passed\",\"output\"}],\n"
        "\"error\",\"timed_out\"}. Exit 0 when the suite ran (whatever it found),\n"
        "1 when it could not, 3 when run_tests passed --timeout.\n",
    .options = test_host_options,
    .min_positional = 1,
    .max_positional = 1,
    .examples = "  mstack test-host build/components/user-service.so --data-dir /tmp/d\n",
    .run = run_test_host,
    .hidden = true,
};

/* ---- deploy --------------------------------------------------------------- */

typedef struct side {
    const char *label; /* "active" or "candidate" */
    const char *version;
    char so[4200];
    json_t *results;    /* {"<test>": {"passed": bool, "output": "..."}} */
    json_t *order;      /* test names in the order they ran */
    char failure[1024]; /* the host or command could not run / timed out: why */
} side;

static void set_failure(side *sd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_failure(side *sd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sd->failure, sizeof sd->failure, fmt, ap);
    va_end(ap);
}

void cli_deploy_holder(char *out, size_t cap)
{
    char host[256];
    const char *user = getenv("USER");

    if (gethostname(host, sizeof host) != 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(out, cap, "%s@%s pid %ld", user != NULL && user[0] != '\0' ? user : "mstack", host,
             (long)getpid());
}

/* True when holder ("<user>@<host> pid <N>") names a process of this host
 * that no longer exists. */
static bool holder_is_dead(const char *holder)
{
    char host[256];
    const char *at = strchr(holder, '@'), *pid_s = strstr(holder, " pid ");
    char *end = NULL;
    long pid;

    if (at == NULL || pid_s == NULL || pid_s < at || gethostname(host, sizeof host) != 0)
        return false;
    host[sizeof host - 1] = '\0';
    if ((size_t)(pid_s - at - 1) != strlen(host) || strncmp(at + 1, host, strlen(host)) != 0)
        return false;
    pid = strtol(pid_s + 5, &end, 10);
    if (end == pid_s + 5 || *end != '\0' || pid <= 0)
        return false;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

int cli_deploy_lock(ms_registry *reg, const char *component, const char *holder)
{
    json_t *lock = NULL;
    const char *stale;

    if (ms_registry_deploy_lock(reg, component, holder) == MS_OK)
        return CLI_EXIT_OK;
    if (ms_registry_deploy_lock_get(reg, component, &lock) == MS_OK) {
        stale = json_string_value(json_object_get(lock, "holder"));
        if (stale != NULL && holder_is_dead(stale)) {
            fprintf(stderr,
                    "mstack: warning: the deploy lock of %s was held by %s since %s, a process "
                    "that no longer exists: releasing it\n",
                    component, stale, json_string_value(json_object_get(lock, "time")));
            if (ms_registry_deploy_unlock(reg, component, stale) == MS_OK &&
                ms_registry_deploy_lock(reg, component, holder) == MS_OK) {
                json_decref(lock);
                return CLI_EXIT_OK;
            }
        }
        json_decref(lock);
        (void)ms_registry_deploy_lock(reg, component, holder); /* for the message */
    }
    cli_error("%s (wait for it to finish, or if that process is gone on another host, remove "
              "the lock from the registry's deploy_locks table)",
              ms_last_error());
    return CLI_EXIT_FAILURE;
}

static void add_result(side *sd, const char *name, bool passed, const char *output)
{
    if (json_object_get(sd->results, name) == NULL)
        json_array_append_new(sd->order, json_string(name));
    json_object_set_new(sd->results, name,
                        json_pack("{s:b, s:s}", "passed", passed, "output", output ? output : ""));
}

/* The tail of a run's output, for a message. */
static const char *tail(const ms_proc_result *r)
{
    const char *t = r->output != NULL ? r->output : "";
    size_t n = strlen(t);
    return n > 600 ? t + n - 600 : t;
}

/* Run the Testable suite of sd->so in a test host with a fresh data dir. */
static void run_suite(side *sd, const char *tmp, int timeout_ms)
{
    char exe[PATH_MAX], data[4200], report[4200], tmo[16];
    const char *argv[10];
    ms_proc_spec spec;
    ms_proc_result res;
    json_t *rep = NULL, *t;
    json_error_t jerr;
    size_t i;

    cli_self_exe(exe, sizeof exe);
    snprintf(data, sizeof data, "%s/%s-data", tmp, sd->label);
    snprintf(report, sizeof report, "%s/%s-report.json", tmp, sd->label);
    snprintf(tmo, sizeof tmo, "%d", timeout_ms);
    if (mkdir(data, 0700) != 0) {
        set_failure(sd, "cannot create %s: %s", data, strerror(errno));
        return;
    }
    argv[0] = exe;
    argv[1] = "test-host";
    argv[2] = sd->so;
    argv[3] = "--data-dir";
    argv[4] = data;
    argv[5] = "--timeout";
    argv[6] = tmo;
    argv[7] = "--report";
    argv[8] = report;
    argv[9] = NULL;
    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.timeout_ms = timeout_ms + HOST_SLACK_MS;
    spec.grace_ms = 500;
    spec.capture_max = CAPTURE_MAX;
    ms_proc_result_init(&res);
    if (ms_proc_run(&spec, &res) != MS_OK || res.spawn_failed) {
        set_failure(sd, "the test host did not start: %s",
                    res.error[0] ? res.error : ms_last_error());
        goto cleanup;
    }
    if (res.timed_out) {
        set_failure(sd, "the test host was killed at the time limit (%d ms)%s%s", spec.timeout_ms,
                    res.output_len ? ": " : "", tail(&res));
        goto cleanup;
    }
    rep = json_load_file(report, 0, &jerr);
    if (rep == NULL) {
        set_failure(sd, "the test host ended (exit %d, signal %d) without a report%s%s",
                    res.exit_code, res.term_signal, res.output_len ? ": " : "", tail(&res));
        goto cleanup;
    }
    if (json_is_string(json_object_get(rep, "error"))) {
        set_failure(sd, "%s", json_string_value(json_object_get(rep, "error")));
        goto cleanup;
    }
    json_array_foreach(json_object_get(rep, "tests"), i, t)
    {
        add_result(sd, json_string_value(json_object_get(t, "name")),
                   json_is_true(json_object_get(t, "passed")),
                   json_string_value(json_object_get(t, "output")));
    }
cleanup:
    json_decref(rep);
    ms_proc_result_reset(&res);
}

/* Run the context's tests.command against sd->so: one test "tests.command". */
static void run_command(side *sd, const char *root, const char *command, int timeout_ms)
{
    const char *argv[] = {"/bin/sh", "-c", command, NULL};
    char env_artifact[4300];
    const char *env[] = {env_artifact, NULL};
    ms_proc_spec spec;
    ms_proc_result res;
    char out[1200];

    snprintf(env_artifact, sizeof env_artifact, "MAINSTACK_ARTIFACT=%s", sd->so);
    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.env = env;
    spec.cwd = root;
    spec.timeout_ms = timeout_ms;
    spec.grace_ms = 500;
    spec.capture_max = CAPTURE_MAX;
    ms_proc_result_init(&res);
    if (ms_proc_run(&spec, &res) != MS_OK || res.spawn_failed) {
        snprintf(out, sizeof out, "did not start: %s", res.error);
        add_result(sd, "tests.command", false, out);
    } else if (res.timed_out) {
        snprintf(out, sizeof out, "killed at the time limit (%d ms): %s", timeout_ms, tail(&res));
        add_result(sd, "tests.command", false, out);
    } else {
        snprintf(out, sizeof out, "exit %d%s%s", res.exit_code, res.output_len ? ": " : "",
                 tail(&res));
        add_result(sd, "tests.command", res.exit_code == 0, out);
    }
    ms_proc_result_reset(&res);
}

static const char *cell(const side *sd, const char *name)
{
    const json_t *r = json_object_get(sd->results, name);
    if (sd->version == NULL)
        return "-";
    if (sd->failure[0] != '\0')
        return "error";
    if (r == NULL)
        return "missing";
    return json_is_true(json_object_get(r, "passed")) ? "pass" : "fail";
}

/* The comparison rows; returns how many are regressions (the candidate
 * fails what the active passes, or fails a test of its own). */
static size_t compare(const side *act, const side *cand, json_t *rows, json_t *failures)
{
    json_t *names = json_array();
    size_t i, bad = 0;
    json_t *n;

    json_array_extend(names, act->order);
    json_array_foreach(cand->order, i, n)
    {
        if (json_object_get(act->results, json_string_value(n)) == NULL)
            json_array_append(names, n);
    }
    if (cand->failure[0] != '\0') {
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s}", "test", "(test host)",
                                              "active", act->version ? "ok" : "-", "candidate",
                                              "error", "verdict", "regression"));
        json_array_append_new(
            failures, json_pack("{s:s, s:s}", "test", "(test host)", "output", cand->failure));
        bad++;
    }
    json_array_foreach(names, i, n)
    {
        const char *name = json_string_value(n);
        const char *a = cell(act, name), *c = cell(cand, name), *verdict;
        bool a_pass = strcmp(a, "pass") == 0, c_pass = strcmp(c, "pass") == 0;
        const json_t *cr = json_object_get(cand->results, name);

        if (a_pass && c_pass)
            verdict = "ok";
        else if (a_pass)
            verdict = "regression";
        else if (c_pass)
            verdict = strcmp(a, "fail") == 0 ? "fixed" : "new";
        else if (strcmp(a, "fail") == 0)
            verdict = "still failing";
        else
            verdict = "regression"; /* a failing test of the candidate's own */
        if (strcmp(verdict, "regression") == 0) {
            bad++;
            json_array_append_new(failures,
                                  json_pack("{s:s, s:s}", "test", name, "output",
                                            cr ? json_string_value(json_object_get(cr, "output"))
                                               : "(the candidate did not run this test)"));
        }
        json_array_append_new(rows, json_pack("{s:s, s:s, s:s, s:s}", "test", name, "active", a,
                                              "candidate", c, "verdict", verdict));
    }
    json_decref(names);
    return bad;
}

void cli_deploy_print_comparison(const json_t *rows, const char *indent)
{
    static const char *const headers[] = {"TEST", "ACTIVE", "CANDIDATE", "VERDICT"};
    static const char *const keys[] = {"test", "active", "candidate", "verdict"};

    (void)cli_print_rows(stdout, rows, 4, keys, headers, indent);
}

/* The candidate's tests.command: its context snapshot, else the source's. */
static char *tests_command(const char *artifact_dir, const char *root, const char *component)
{
    char path[4300];
    ms_context *ctx = NULL;
    char *cmd = NULL;

    snprintf(path, sizeof path, "%s/context/context.json", artifact_dir);
    if (access(path, R_OK) != 0)
        snprintf(path, sizeof path, "%s/components/%s/context/context.json", root, component);
    if (access(path, R_OK) != 0 || ms_context_load(path, &ctx) != MS_OK)
        return NULL;
    if (ms_context_tests_command(ctx) != NULL && ms_context_tests_command(ctx)[0] != '\0')
        cmd = strdup(ms_context_tests_command(ctx));
    ms_context_unref(ctx);
    return cmd;
}

static void remove_tree(const char *dir)
{
    const char *argv[] = {"rm", "-rf", dir, NULL};
    ms_proc_spec spec;
    ms_proc_result res;

    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.timeout_ms = 30000;
    ms_proc_result_init(&res);
    (void)ms_proc_run(&spec, &res);
    ms_proc_result_reset(&res);
}

static void phase(const cli_deploy_hooks *h, int ph, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void phase(const cli_deploy_hooks *h, int ph, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (h == NULL || h->progress == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    h->progress(h->ud, ph, msg);
}

static bool stop_asked(const cli_deploy_hooks *h)
{
    return h != NULL && h->cancelled != NULL && h->cancelled(h->ud);
}

const char *cli_deploy_back_state(const char *before)
{
    static const char *const keep[] = {"previous", "rejected", "rolled-back"};

    for (size_t i = 0; before != NULL && i < sizeof keep / sizeof keep[0]; i++)
        if (strcmp(before, keep[i]) == 0)
            return keep[i];
    return "candidate"; /* candidate, and testing left by a crash */
}

int cli_deploy_run(const cli_deploy_request *rq, const cli_deploy_hooks *hooks, json_t **result)
{
    const char *component = rq->component, *version = rq->version, *root = rq->root;
    const bool quiet = rq->quiet, no_promote = rq->no_promote;
    const int timeout = rq->timeout_ms;
    char holder[400], tmp[4200];
    ms_registry *reg = NULL;
    json_t *cand_row = NULL, *all = NULL, *row, *rows = NULL, *failures = NULL, *detail = NULL;
    json_t *json_out = NULL, *request = NULL, *resumed = NULL;
    side act = {.label = "active"}, cand = {.label = "candidate"};
    char *command = NULL;
    bool locked = false, tmp_made = false, cancelled = false, acted = false;
    const char *cand_state = NULL;        /* the candidate's state recorded with the test step */
    const char *back_state = "candidate"; /* its state when the deployment does not go through */
    cli_deploy_request prq;
    int64_t dep_id = 0;
    int rc;
    size_t i, bad = 0;
    const char *outcome = "error";

    *result = NULL;
    if ((rc = cli_open_registry(root, &reg)) != CLI_EXIT_OK)
        return rc;
    rc = CLI_EXIT_FAILURE;
    if (ms_registry_version_get(reg, component, version, &cand_row) != MS_OK) {
        cli_error("cannot deploy %s %s: %s (record it first: mstack version add %s)", component,
                  version, ms_last_error(), component);
        goto cleanup;
    }
    /* active, and nothing of it left to finish: refused at once, before the
     * lock (an unfinished deployment of it is resumed below first) */
    if (strcmp(json_string_value(json_object_get(cand_row, "state")), "active") == 0 &&
        !cli_deploy_unfinished(reg, component, version)) {
        cli_error("%s %s is already the active version: nothing to deploy", component, version);
        goto cleanup;
    }
    phase(hooks, CLI_DEPLOY_LOCK, "taking the deploy lock of %s", component);
    cli_deploy_holder(holder, sizeof holder);
    if (cli_deploy_lock(reg, component, holder) != CLI_EXIT_OK)
        goto cleanup;
    locked = true;
    /* an interrupted deployment (its process died) is finished or undone
     * before anything else */
    if (cli_deploy_resume(reg, rq, holder, &acted, &resumed) != CLI_EXIT_OK) {
        cli_error("the unfinished deployment of %s could not be resumed: not deploying %s",
                  component, version);
        goto cleanup;
    }
    if (acted) {
        json_decref(cand_row);
        cand_row = NULL;
        if (ms_registry_version_get(reg, component, version, &cand_row) != MS_OK) {
            cli_error("%s", ms_last_error());
            goto cleanup;
        }
        if (strcmp(json_string_value(json_object_get(cand_row, "state")), "active") == 0) {
            /* the resumed deployment promoted it */
            if (!quiet)
                printf("%s %s is active now (deployment %lld was resumed): nothing more to "
                       "deploy\n",
                       component, version,
                       (long long)json_integer_value(json_object_get(resumed, "deployment")));
            *result = json_pack("{s:s, s:s, s:O}", "component", component, "outcome", "resumed",
                                "resumed", resumed);
            rc = CLI_EXIT_OK;
            goto cleanup;
        }
    }
    /* checked after the resume: a deployment of this version that died in
     * its watch window is finished above, not refused */
    if (strcmp(json_string_value(json_object_get(cand_row, "state")), "active") == 0) {
        cli_error("%s %s is already the active version: nothing to deploy", component, version);
        goto cleanup;
    }
    /* a deployment that does not go through (cancelled, untestable, not
     * promoted, undone) puts the version back where it was: a previous
     * version deployed again stays the rollback target */
    back_state = cli_deploy_back_state(json_string_value(json_object_get(cand_row, "state")));
    prq = *rq;
    prq.back_state = back_state;

    cand.version = version;
    snprintf(cand.so, sizeof cand.so, "%s/%s.so",
             json_string_value(json_object_get(cand_row, "artifact_dir")), component);
    if (ms_registry_versions(reg, component, &all) != MS_OK) {
        cli_error("%s", ms_last_error());
        goto cleanup;
    }
    json_array_foreach(all, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "state")), "active") == 0) {
            act.version = json_string_value(json_object_get(row, "version"));
            snprintf(act.so, sizeof act.so, "%s/%s.so",
                     json_string_value(json_object_get(row, "artifact_dir")), component);
        }
    }
    act.results = json_object();
    act.order = json_array();
    cand.results = json_object();
    cand.order = json_array();
    rows = json_array();
    failures = json_array();
    if (act.results == NULL || act.order == NULL || cand.results == NULL || cand.order == NULL ||
        rows == NULL || failures == NULL) {
        cli_error("out of memory");
        goto cleanup;
    }
    /* the record, with what was asked, and the candidate's state together */
    request = json_pack("{s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:s}", "verb", "deploy", "no_promote",
                        no_promote, "timeout_ms", timeout, "watch_ms", rq->watch_ms,
                        "max_error_rate_increase", rq->max_error_rate_increase, "min_requests",
                        rq->min_requests, "prepare_timeout_ms", rq->prepare_timeout_ms,
                        "back_state", back_state);
    {
        ms_version_change ch = {version, "testing"};
        if (request == NULL ||
            ms_registry_deployment_start(reg, component, act.version, version, holder, request, &ch,
                                         1, &dep_id) != MS_OK) {
            cli_error("%s", ms_last_error());
            goto cleanup;
        }
    }
    cli_deploy_fault("after-lock");
    snprintf(tmp, sizeof tmp, "%s/.mainstack/tmp", root);
    (void)mkdir(tmp, 0700);
    snprintf(tmp, sizeof tmp, "%s/.mainstack/tmp/deploy-%s-XXXXXX", root, component);
    if (mkdtemp(tmp) == NULL) {
        cli_error("cannot create a temporary directory under %s/.mainstack/tmp: %s", root,
                  strerror(errno));
        goto cleanup;
    }
    tmp_made = true;
    command = tests_command(json_string_value(json_object_get(cand_row, "artifact_dir")), root,
                            component);
    if (!quiet) {
        if (act.version != NULL)
            printf("testing %s %s (active) and %s (candidate), each in its own host\n", component,
                   act.version, version);
        else
            printf("testing %s %s (no version is active: the candidate must pass its own "
                   "tests)\n",
                   component, version);
        fflush(stdout);
    }
    if (act.version != NULL) {
        if ((cancelled = stop_asked(hooks)))
            goto cancel;
        phase(hooks, CLI_DEPLOY_TEST_ACTIVE, "testing the active version %s", act.version);
        run_suite(&act, tmp, timeout);
        if (act.failure[0] == '\0' && command != NULL)
            run_command(&act, root, command, timeout);
        cli_deploy_fault("test-active");
        if (act.failure[0] != '\0') {
            cli_error("the active version %s could not be tested, so nothing can be compared: "
                      "%s",
                      act.version, act.failure);
            cand_state = back_state;
            detail = json_pack("{s:s}", "error", act.failure);
            goto record;
        }
    }
    if ((cancelled = stop_asked(hooks)))
        goto cancel;
    phase(hooks, CLI_DEPLOY_TEST_CANDIDATE, "testing the candidate %s", version);
    run_suite(&cand, tmp, timeout);
    if (cand.failure[0] == '\0' && command != NULL)
        run_command(&cand, root, command, timeout);
    cli_deploy_fault("test-candidate");
    if ((cancelled = stop_asked(hooks)))
        goto cancel;
    phase(hooks, CLI_DEPLOY_COMPARE, "comparing %s with %s", version,
          act.version ? act.version : "(no active version)");
    bad = compare(&act, &cand, rows, failures);
    outcome = bad > 0 ? "rejected" : "ready";
    detail = json_pack("{s:s?, s:s, s:O, s:O, s:s?}", "active", act.version, "candidate", version,
                       "table", rows, "failures", failures, "tests_command", command);
    if (bad > 0)
        cand_state = "rejected";
    json_out = json_pack("{s:s, s:I, s:s, s:O}", "component", component, "deployment",
                         (json_int_t)dep_id, "outcome", outcome, "detail", detail);
    if (!quiet) {
        cli_deploy_print_comparison(rows, NULL);
        if (bad > 0) {
            json_t *f;
            printf("rejected %s %s: %zu failing test%s\n", component, version, bad,
                   bad == 1 ? "" : "s");
            json_array_foreach(failures, i, f)
            {
                printf("  %s: %s\n", json_string_value(json_object_get(f, "test")),
                       json_string_value(json_object_get(f, "output")));
            }
        } else if (no_promote) {
            printf("%s %s passed every test%s: ready to promote (deployment %lld)\n", component,
                   version, act.version ? " the active version passes" : "", (long long)dep_id);
        } else {
            printf("%s %s passed every test%s\n", component, version,
                   act.version ? " the active version passes" : "");
        }
    }
    rc = bad > 0 ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    if (rc == CLI_EXIT_OK && !no_promote)
        cancelled = stop_asked(hooks);
cancel:
    if (cancelled) {
        /* stopped before the promotion: nothing was switched, the active
         * version keeps serving; the candidate is untested or unpromoted */
        outcome = "cancelled";
        rc = CLI_EXIT_FAILURE;
        cand_state = back_state;
        json_decref(detail);
        detail = json_pack("{s:s?, s:s, s:s}", "active", act.version, "candidate", version, "error",
                           "cancelled before the promotion: nothing was switched");
        json_decref(json_out);
        json_out =
            json_pack("{s:s, s:I, s:s, s:O, s:b}", "component", component, "deployment",
                      (json_int_t)dep_id, "outcome", outcome, "detail", detail, "cancelled", 1);
    }
record : {
    /* the candidate's state and the step in one transaction */
    ms_version_change ch = {version, cand_state};
    if (ms_registry_version_transition(reg, component, &ch, cand_state != NULL ? 1 : 0, dep_id,
                                       "test", outcome, detail) != MS_OK) {
        cli_error("recording the deployment: %s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
    }
}
    if (rc == CLI_EXIT_OK && bad == 0 && !no_promote && !cancelled)
        cli_deploy_fault("compare");
    (void)ms_registry_audit(reg, rq->actor ? rq->actor : holder, "deploy", component, outcome,
                            detail);
    if (json_out == NULL && detail != NULL)
        json_out = json_pack("{s:s, s:I, s:s, s:O}", "component", component, "deployment",
                             (json_int_t)dep_id, "outcome", outcome, "detail", detail);
    if (rc == CLI_EXIT_OK && bad == 0 && !no_promote && !cancelled) {
        json_t *promotion = NULL;
        phase(hooks, CLI_DEPLOY_PROMOTE, "promoting %s %s: prepare and switch on every host",
              component, version);
        rc = cli_deploy_promote_step(reg, &prq, act.version, dep_id, quiet, &promotion);
        if (promotion != NULL) {
            const char *po = json_string_value(json_object_get(promotion, "outcome"));
            (void)ms_registry_audit(reg, rq->actor ? rq->actor : holder, "promote", component, po,
                                    json_object_get(promotion, "report"));
            if (json_out != NULL) {
                json_object_set_new(json_out, "outcome", json_string(po));
                json_object_set(json_out, "promotion", promotion);
            }
            json_decref(promotion);
        }
    }
    if (json_out != NULL && resumed != NULL)
        json_object_set(json_out, "resumed", resumed);
    phase(hooks, CLI_DEPLOY_DONE, "deployment %lld: %s", (long long)dep_id,
          json_out != NULL ? json_string_value(json_object_get(json_out, "outcome")) : outcome);
    *result = json_out;
    json_out = NULL;
cleanup:
    if (rc != CLI_EXIT_OK && dep_id > 0 && strcmp(outcome, "error") == 0 && detail == NULL) {
        /* failed before anything was compared: the candidate is untested */
        ms_version_change ch = {version, back_state};
        (void)ms_registry_version_transition(reg, component, &ch, 1, dep_id, "test", "error", NULL);
    }
    if (tmp_made)
        remove_tree(tmp);
    if (locked && ms_registry_deploy_unlock(reg, component, holder) != MS_OK) {
        cli_error("releasing the deploy lock: %s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
    }
    free(command);
    json_decref(request);
    json_decref(resumed);
    json_decref(json_out);
    json_decref(detail);
    json_decref(rows);
    json_decref(failures);
    json_decref(act.results);
    json_decref(act.order);
    json_decref(cand.results);
    json_decref(cand.order);
    json_decref(all);
    json_decref(cand_row);
    ms_registry_close(reg);
    return rc;
}

/* mstack deploy --resume COMPONENT: take the lock (a dead holder's is
 * released), finish or undo the unfinished deployment, say what was done. */
static int run_resume(const cli_deploy_request *rq)
{
    char holder[400];
    ms_registry *reg = NULL;
    json_t *result = NULL;
    bool acted = false;
    int rc;

    if ((rc = cli_open_registry(rq->root, &reg)) != CLI_EXIT_OK)
        return rc;
    cli_deploy_holder(holder, sizeof holder);
    if ((rc = cli_deploy_lock(reg, rq->component, holder)) != CLI_EXIT_OK)
        goto cleanup;
    rc = cli_deploy_resume(reg, rq, holder, &acted, &result);
    if (ms_registry_deploy_unlock(reg, rq->component, holder) != MS_OK) {
        cli_error("releasing the deploy lock: %s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
    }
    if (!acted && result != NULL && !rq->quiet) {
        const json_t *id = json_object_get(result, "deployment");
        if (json_is_integer(id))
            printf("nothing to resume for %s: its last deployment (%lld) is %s\n", rq->component,
                   (long long)json_integer_value(id),
                   json_string_value(json_object_get(result, "state")));
        else
            printf("nothing to resume for %s: no deployment is recorded\n", rq->component);
    }
    if (rq->quiet && result != NULL)
        cli_print_json(result, true);
cleanup:
    json_decref(result);
    ms_registry_close(reg);
    return rc;
}

static int run_deploy(const cli_verb *verb, const cli_args *a)
{
    cli_deploy_request rq = {0};
    char root[4096];
    json_t *result = NULL;
    int rc;

    rq.component = a->positional[0];
    rq.version = a->npositional > 1 ? a->positional[1] : NULL;
    rq.quiet = cli_flag(a, "json");
    rq.no_promote = cli_flag(a, "no-promote");
    rq.nats_url = cli_client_url(a);
    if ((rc = cli_check_name(verb, "component", rq.component, true)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "timeout", 60000, 100, 3600000, &rq.timeout_ms)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "watch", 10000, 0, 3600000, &rq.watch_ms)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "max-error-rate-increase", 5, 0, 100, &rq.max_error_rate_increase)) !=
            CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "min-requests", 20, 1, 100000000, &rq.min_requests)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "prepare-timeout", 15000, 100, 600000, &rq.prepare_timeout_ms)) !=
            CLI_EXIT_OK ||
        (rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc;
    rq.root = root;
    if (cli_flag(a, "resume")) {
        if (a->npositional != 1)
            return cli_usage_error(verb, "--resume takes the component only");
        return run_resume(&rq);
    }
    if (a->npositional != 2)
        return cli_usage_error(verb, "COMPONENT and VERSION are required (or --resume COMPONENT)");
    rc = cli_deploy_run(&rq, NULL, &result);
    if (rq.quiet && result != NULL)
        cli_print_json(result, true);
    json_decref(result);
    return rc;
}

static const cli_option deploy_options[] = {
    {"root", 'C', "DIR", false, "the project root (default: found from the current directory)"},
    {"timeout", 't', "MS", false,
     "time limit of each test suite and tests.command (default "
     "60000)"},
    {"nats", 's', "URL", false, "the NATS server the hosts run on (default $NATS_URL)"},
    {"no-promote", 0, NULL, false, "stop after the comparison (ready to promote)"},
    {"resume", 0, NULL, false,
     "finish or undo the component's deployment whose process died, then stop"},
    {"prepare-timeout", 0, "MS", false, "how long every host has to prepare (default 15000)"},
    {"watch", 0, "MS", false,
     "after the promotion, watch error rate and health this long (default 10000; 0: no watch)"},
    {"max-error-rate-increase", 0, "POINTS", false,
     "roll back when the error rate exceeds the previous version's by more (default 5)"},
    {"min-requests", 0, "N", false,
     "judge the error rate only after N requests in the window (default 20)"},
    {"json", 0, NULL, false, "print the outcome, the comparison and the promotion as JSON"},
    {NULL, 0, NULL, false, NULL},
};

const cli_verb cli_verb_deploy = {
    .name = "deploy",
    .usage = "(COMPONENT VERSION | --resume COMPONENT) [--nats URL] [--no-promote] "
             "[--prepare-timeout MS] [--timeout MS] "
             "[--watch MS] [--max-error-rate-increase POINTS] [--min-requests N] [--json]",
    .summary = "test a recorded version against the active one, then promote it",
    .description =
        "Takes the component's deploy lock, then runs the Testable suite (run_tests) and\n"
        "the context's tests.command against the active version and against VERSION,\n"
        "each in its own process with a fresh data directory, and compares them: VERSION\n"
        "must pass every test the active version passes, and its own new tests. On a\n"
        "regression VERSION is rejected (state rejected; each failing test is named with\n"
        "what it printed) and the exit code is 1. Otherwise VERSION is promoted on every\n"
        "host that runs COMPONENT (over the NATS server, all or nothing, per-host table):\n"
        "VERSION becomes active and the version it replaced previous (mstack rollback\n"
        "returns to it). When a host cannot take it, or no host runs COMPONENT, VERSION\n"
        "goes back to state candidate, the reason is printed and the exit code is 1.\n"
        "After the promotion VERSION is watched for --watch MS: its error rate\n"
        "(num_errors/num_requests of $SRV.STATS in the window) against the previous\n"
        "version's, and the health of every instance. An unhealthy instance, or a rate\n"
        "above the previous + --max-error-rate-increase points over at least\n"
        "--min-requests requests, rolls back at once (VERSION rolled-back, the failed\n"
        "check and its value recorded, exit 1); otherwise VERSION is permanent.\n"
        "--no-promote stops after the comparison (state testing). Every step is stored\n"
        "in the deployment record of the registry (mstack history). A deploy lock left\n"
        "by a process of this host that no longer exists is released with a warning.\n"
        "A deployment whose process died (kill -9, a lost machine) is finished or undone\n"
        "first, under the lock, after asking the hosts what they serve: interrupted\n"
        "before the switch it is undone (the candidate back to candidate, prepared hosts\n"
        "aborted), during the switch finished (or every host rolled back), during the\n"
        "watch watched again, during a rollback the rollback finished; --resume does\n"
        "only that (nothing to resume: exit 0).\n",
    .options = deploy_options,
    .min_positional = 1,
    .max_positional = 2,
    .examples = "  mstack version add user-service && mstack deploy user-service 1.3.0\n"
                "  mstack deploy --resume user-service\n"
                "  mstack deploy user-service 1.3.0 --timeout 20000 --json\n",
    .run = run_deploy,
};
