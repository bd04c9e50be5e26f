/*
 * test_deploy_crash.c - crash safety of `mstack deploy` and `mstack
 * rollback` (tracker issue 5, item 7): a real nats-server, two hosts of
 * swapver (host-a a runtime in this process, host-b a `mstack run` child
 * that can be kill -9'd), a real registry file. For each kill point of the
 * MAINSTACK_DEPLOY_FAULT hook, mstack runs as a child that SIGKILLs itself
 * there (or SIGSTOPs, so the test can kill a host first); then the
 * registry must be consistent (at most one active version, the one that
 * was active unless the switch finished), a request must be answered,
 * `mstack deploy --resume` must finish or undo the deployment as
 * docs/deploy.md says, release the lock and leave no version in testing,
 * and `mstack history` must show it.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mainstack/deploy.h>

#include "ms_test.h"
#include "nats_fixture.h"

#ifndef MSTACK_BIN
#error "MSTACK_BIN must be defined (cli/CMakeLists.txt)"
#endif
#define PLUGINS MS_TEST_PLUGINS_DIR

typedef struct fx {
    char root[256];
    ms_nats_server *srv;
    ms_bus *client;
    ms_runtime *rt; /* host-a */
    pid_t host_b;   /* mstack run, 0 when gone */
    char *out, *err;
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

static void has(const char *text, const char *needle)
{
    if (text == NULL || strstr(text, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", text ? text : "(null)", needle);
}

/* Start `mstack ARGS` in the root with MAINSTACK_DEPLOY_FAULT=fault (NULL:
 * none); stdout and stderr to out.N / err.N. Returns its pid. */
static pid_t spawn(fx *f, const char *fault, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static pid_t spawn(fx *f, const char *fault, const char *fmt, ...)
{
    char args[2048], cmd[4096];
    va_list ap;
    pid_t pid;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    f->seq++;
    snprintf(cmd, sizeof cmd, "exec '%s' %s >'%s/out.%d' 2>'%s/err.%d'", MSTACK_BIN, args, f->root,
             f->seq, f->root, f->seq);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (chdir(f->root) != 0)
            _exit(127);
        if (fault != NULL)
            setenv("MAINSTACK_DEPLOY_FAULT", fault, 1);
        else
            unsetenv("MAINSTACK_DEPLOY_FAULT");
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void collect(fx *f)
{
    char p[400];
    free(f->out);
    free(f->err);
    snprintf(p, sizeof p, "%s/out.%d", f->root, f->seq);
    f->out = slurp(p);
    snprintf(p, sizeof p, "%s/err.%d", f->root, f->seq);
    f->err = slurp(p);
}

/* Run mstack to its end; its exit code (-signal when killed). */
static int mstack(fx *f, const char *fault, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int mstack(fx *f, const char *fault, const char *fmt, ...)
{
    char args[2048];
    va_list ap;
    int st;
    pid_t pid;

    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    pid = spawn(f, fault, "%s", args);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    collect(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -WTERMSIG(st);
}

/* Run a deploy or rollback that must die at its fault point. */
static void killed_at(fx *f, const char *point, const char *args)
{
    int code = mstack(f, point, "%s --nats %s", args, ms_nats_server_url(f->srv));
    if (code != -SIGKILL)
        fail_msg("mstack %s with the fault %s ended with %d, not killed:\n%s\n%s", args, point,
                 code, f->out, f->err);
    has(f->err, "MAINSTACK_DEPLOY_FAULT: killing myself at ");
}

/* A deploy that stops itself at point: returns its pid, stopped. */
static pid_t stopped_at(fx *f, const char *point, const char *args)
{
    int st;
    pid_t pid = spawn(f, point, "%s --nats %s", args, ms_nats_server_url(f->srv));
    assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
    if (!WIFSTOPPED(st)) {
        collect(f);
        fail_msg("mstack %s did not stop at %s: %s", args, point, f->err);
    }
    return pid;
}

static void kill9(pid_t pid)
{
    int st;
    assert_int_equal(kill(pid, SIGKILL), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
}

/* ---- the registry ----------------------------------------------------------- */

static ms_registry *open_reg(fx *f)
{
    char p[400];
    ms_registry *reg = NULL;
    snprintf(p, sizeof p, "%s/.mainstack/registry.db", f->root);
    ms_assert_ok(ms_registry_open(p, &reg));
    return reg;
}

static void assert_state(fx *f, const char *version, const char *want)
{
    ms_registry *reg = open_reg(f);
    json_t *row = NULL;
    ms_assert_ok(ms_registry_version_get(reg, "swapver", version, &row));
    if (strcmp(json_string_value(json_object_get(row, "state")), want) != 0)
        fail_msg("swapver %s is %s, want %s", version,
                 json_string_value(json_object_get(row, "state")), want);
    json_decref(row);
    ms_registry_close(reg);
}

/* Exactly one version active, and it is `active`. */
static void assert_one_active(fx *f, const char *active)
{
    ms_registry *reg = open_reg(f);
    json_t *rows = NULL, *row;
    size_t i, n = 0;
    ms_assert_ok(ms_registry_versions(reg, "swapver", &rows));
    json_array_foreach(rows, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "state")), "active") == 0) {
            n++;
            assert_string_equal(json_string_value(json_object_get(row, "version")), active);
        }
    }
    assert_int_equal(n, 1);
    json_decref(rows);
    ms_registry_close(reg);
}

static void assert_none_testing(fx *f)
{
    ms_registry *reg = open_reg(f);
    json_t *rows = NULL, *row;
    size_t i;
    ms_assert_ok(ms_registry_versions(reg, "swapver", &rows));
    json_array_foreach(rows, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "state")), "testing") == 0)
            fail_msg("swapver %s is still testing",
                     json_string_value(json_object_get(row, "version")));
    }
    json_decref(rows);
    ms_registry_close(reg);
}

static void assert_locked(fx *f, bool want)
{
    ms_registry *reg = open_reg(f);
    json_t *lock = NULL;
    ms_assert_status(ms_registry_deploy_lock_get(reg, "swapver", &lock),
                     want ? MS_OK : MS_ERR_NOT_FOUND);
    json_decref(lock);
    ms_registry_close(reg);
}

/* The newest deployment (a new reference). */
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

static void assert_deployment_state(fx *f, const char *want)
{
    json_t *d = last_deployment(f);
    if (strcmp(json_string_value(json_object_get(d, "state")), want) != 0)
        fail_msg("the last deployment is %s, want %s",
                 json_string_value(json_object_get(d, "state")), want);
    json_decref(d);
}

/* ---- the hosts -------------------------------------------------------------- */

typedef struct pings {
    pthread_mutex_t mu;
    char versions[8][64];
    int n;
} pings;

static void on_ping(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    pings *p = closure;
    json_t *j = NULL;
    (void)bus;
    (void)sub;
    if (ms_message_json(m, &j) != MS_OK)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->n < 8)
        snprintf(p->versions[p->n++], sizeof p->versions[0], "%s",
                 json_string_value(json_object_get(j, "version")));
    pthread_mutex_unlock(&p->mu);
    json_decref(j);
}

/* How many instances of swapver serve version (by $SRV.PING); *total: all. */
static int serving(fx *f, const char *version, int *total)
{
    pings p;
    char *inbox = NULL;
    ms_subscription *sub = NULL;
    int n = 0;

    memset(&p, 0, sizeof p);
    pthread_mutex_init(&p.mu, NULL);
    ms_assert_ok(ms_bus_new_inbox(f->client, &inbox));
    ms_assert_ok(ms_bus_subscribe(f->client, inbox, NULL, on_ping, &p, &sub));
    ms_assert_ok(ms_bus_publish_reply(f->client, "$SRV.PING.swapver", inbox, "", 0));
    usleep(400 * 1000);
    ms_assert_ok(ms_subscription_unsubscribe(sub));
    for (int i = 0; i < p.n; i++)
        if (strcmp(p.versions[i], version) == 0)
            n++;
    if (total != NULL)
        *total = p.n;
    pthread_mutex_destroy(&p.mu);
    free(inbox);
    return n;
}

/* Every live host serves version (hosts: how many are alive). */
static void assert_all_serve(fx *f, const char *version, int hosts)
{
    int total = 0, n = serving(f, version, &total);
    if (n != hosts || total != hosts)
        fail_msg("%d of %d instances serve swapver %s, want %d of %d", n, total, version, hosts,
                 hosts);
}

/* A request is answered, by some version. */
static void assert_answered(fx *f)
{
    ms_message *reply = NULL;
    ms_assert_ok(ms_bus_request(f->client, "component.swapver.echo", "ping", 4, 5000, &reply));
    assert_true(ms_message_len(reply) > 5);
    assert_memory_equal((const char *)ms_message_data(reply) + ms_message_len(reply) - 5, ":ping",
                        5);
    ms_message_unref(reply);
}

static void start_host_b(fx *f)
{
    char art[600], data[400], out[400];
    int64_t deadline = (int64_t)time(NULL) + 20;

    snprintf(art, sizeof art, "%s/.mainstack/artifacts/swapver/1.1.0/swapver.so", f->root);
    snprintf(data, sizeof data, "%s/host-b-data", f->root);
    f->host_b = spawn(f, NULL,
                      "run '%s' --nats %s --name host-b --data-dir '%s' "
                      "--health-interval 0 --workers 2",
                      art, ms_nats_server_url(f->srv), data);
    snprintf(out, sizeof out, "%s/out.%d", f->root, f->seq);
    for (;;) {
        char *text = slurp(out);
        bool up = strstr(text, "serving") != NULL;
        free(text);
        if (up)
            break;
        if ((int64_t)time(NULL) > deadline)
            fail_msg("mstack run (host-b) did not start serving");
        usleep(50 * 1000);
    }
}

static void stop_host_b(fx *f)
{
    if (f->host_b > 0)
        kill9(f->host_b);
    f->host_b = 0;
}

static void add(fx *f, const char *plugin)
{
    if (mstack(f, NULL, "version add swapver %s/%s.so", PLUGINS, plugin) != 0)
        fail_msg("version add %s: %s", plugin, f->err);
}

/* 1.1.0 (active) and 1.2.0 recorded, both hosts serving 1.1.0. */
static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    char p[400], art[600];
    ms_runtime_options o;
    ms_registry *reg;

    if (f == NULL)
        return -1;
    *state = f;
    snprintf(f->root, sizeof f->root, "/tmp/ms-deploy-crash.XXXXXX");
    if (mkdtemp(f->root) == NULL)
        return -1;
    snprintf(p, sizeof p, "%s/components", f->root);
    if (mkdir(p, 0700) != 0)
        return -1;
    add(f, "swapver_t1");
    add(f, "swapver_t2");
    reg = open_reg(f);
    ms_assert_ok(ms_registry_version_set_state(reg, "swapver", "1.1.0", "active"));
    ms_registry_close(reg);
    ms_assert_ok(ms_nats_server_start(NULL, &f->srv));
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(f->srv), &f->client));
    snprintf(p, sizeof p, "%s/host-a-data", f->root);
    if (mkdir(p, 0700) != 0)
        return -1;
    ms_runtime_options_init(&o);
    o.url = ms_nats_server_url(f->srv);
    o.data_root = p;
    o.workers = 2;
    o.health_interval_ms = 0;
    o.host_name = "host-a";
    ms_assert_ok(ms_runtime_create(&o, &f->rt));
    ms_assert_ok(ms_deploy_artifact_path(f->root, "swapver", "1.1.0", art, sizeof art));
    ms_assert_ok(ms_runtime_load(f->rt, art, NULL, NULL));
    start_host_b(f);
    ms_assert_ok(ms_bus_flush(f->client, 5000));
    assert_all_serve(f, "1.1.0", 2);
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[300];

    stop_host_b(f);
    ms_runtime_destroy(f->rt);
    ms_bus_destroy(f->client);
    ms_nats_server_stop(f->srv);
    free(f->out);
    free(f->err);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

static int resume(fx *f)
{
    return mstack(f, NULL, "deploy --resume swapver --nats %s", ms_nats_server_url(f->srv));
}

static void history_has(fx *f, const char *needle)
{
    assert_int_equal(mstack(f, NULL, "history swapver"), 0);
    has(f->out, needle);
}

/* How many deploy-swapver-* test directories are left. */
static int test_dirs(fx *f)
{
    char cmd[400];
    FILE *p;
    int n = 0;
    snprintf(cmd, sizeof cmd, "ls -d '%s'/.mainstack/tmp/deploy-swapver-* 2>/dev/null | wc -l",
             f->root);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* ---- killed before the switch: undone ---------------------------------------- */

static void undone_before_switch(fx *f, const char *point, bool dirs_left)
{
    killed_at(f, point, "deploy swapver 1.2.0 --watch 0");
    /* the registry as the dead process left it: consistent */
    assert_one_active(f, "1.1.0");
    assert_locked(f, true);
    assert_answered(f);
    assert_all_serve(f, "1.1.0", 2);
    if (dirs_left)
        assert_true(test_dirs(f) > 0);

    assert_int_equal(resume(f), 0);
    has(f->out, "resuming deployment");
    has(f->out, "undone: nothing was switched (interrupted)");
    has(f->err, "no longer exists: releasing it"); /* the dead holder's lock */
    assert_one_active(f, "1.1.0");
    assert_state(f, "1.2.0", "candidate");
    assert_none_testing(f);
    assert_locked(f, false);
    assert_deployment_state(f, "interrupted");
    assert_int_equal(test_dirs(f), 0);
    assert_all_serve(f, "1.1.0", 2);
    history_has(f, "resume:interrupted");
    /* nothing left: a second resume says so */
    assert_int_equal(resume(f), 0);
    has(f->out, "nothing to resume for swapver: its last deployment");
    has(f->out, "is interrupted");
}

static void killed_after_lock(void **state)
{
    undone_before_switch(*state, "after-lock", false);
}

static void killed_testing_active(void **state)
{
    undone_before_switch(*state, "test-active", true);
}

static void killed_testing_candidate(void **state)
{
    undone_before_switch(*state, "test-candidate", true);
}

static void killed_after_compare(void **state)
{
    fx *f = *state;
    undone_before_switch(f, "compare", true);
    history_has(f, "test:ready resume:interrupted");
}

/* Every host prepared, none switched: the resume aborts them at once
 * (not at their hold time), so a new deploy is not refused. */
static void killed_after_prepare(void **state)
{
    fx *f = *state;
    json_t *d, *res;

    undone_before_switch(f, "after-prepare", true);
    d = last_deployment(f);
    res = json_object_get(json_object_get(d, "detail"), "result");
    assert_int_equal(json_integer_value(json_object_get(res, "hosts_aborted")), 2);
    json_decref(d);
    /* re-running starts afresh, and goes through */
    assert_int_equal(
        mstack(f, NULL, "deploy swapver 1.2.0 --watch 0 --nats %s", ms_nats_server_url(f->srv)), 0);
    has(f->out, "promoted swapver 1.2.0 on 2 hosts");
    assert_one_active(f, "1.2.0");
    assert_all_serve(f, "1.2.0", 2);
}

/* ---- killed during the switch: finished ------------------------------------- */

static void killed_between_switches(void **state)
{
    fx *f = *state;

    killed_at(f, "between-switches", "deploy swapver 1.2.0 --watch 0");
    /* mixed: one host switched, the other not; the record says switching */
    assert_int_equal(serving(f, "1.2.0", NULL), 1);
    assert_int_equal(serving(f, "1.1.0", NULL), 1);
    assert_one_active(f, "1.1.0");
    assert_deployment_state(f, "switching");
    assert_answered(f);

    assert_int_equal(resume(f), 0);
    has(f->out, "interrupted at promote:switching");
    has(f->out, "finished the switch on every host (promoted)");
    assert_all_serve(f, "1.2.0", 2);
    assert_one_active(f, "1.2.0");
    assert_state(f, "1.1.0", "previous");
    assert_none_testing(f);
    assert_locked(f, false);
    assert_deployment_state(f, "promoted");
    history_has(f, "promote:switching resume:promoted");
}

/* After the switch with --watch 0 the deployment is finished: nothing to
 * resume, but the dead holder's lock is released. */
static void killed_after_switch_no_watch(void **state)
{
    fx *f = *state;

    killed_at(f, "after-switch", "deploy swapver 1.2.0 --watch 0");
    assert_one_active(f, "1.2.0");
    assert_state(f, "1.1.0", "previous");
    assert_all_serve(f, "1.2.0", 2);
    assert_locked(f, true);
    assert_int_equal(resume(f), 0);
    has(f->out, "nothing to resume for swapver");
    has(f->out, "is promoted");
    assert_locked(f, false);
}

/* After the switch with a watch window, or in it: the watch runs again. */
static void watched_again(fx *f, const char *point, const char *left, bool by_deploy)
{
    killed_at(f, point, "deploy swapver 1.2.0 --watch 1500 --min-requests 1");
    assert_one_active(f, "1.2.0");
    assert_deployment_state(f, left);
    assert_answered(f);

    /* --resume, or deploying the same version again: 1.2.0 is active but
     * its deployment unfinished, so it is resumed rather than refused */
    if (by_deploy)
        assert_int_equal(
            mstack(f, NULL, "deploy swapver 1.2.0 --nats %s", ms_nats_server_url(f->srv)), 0);
    else
        assert_int_equal(resume(f), 0);
    has(f->out, "watching swapver 1.2.0 for 1500 ms");
    has(f->out, "swapver 1.2.0 is permanent");
    has(f->out, "watched again (permanent)");
    assert_one_active(f, "1.2.0");
    assert_locked(f, false);
    assert_deployment_state(f, "permanent");
    history_has(f, "resume:resumed watch:permanent");
}

static void killed_after_switch_watch(void **state)
{
    watched_again(*state, "after-switch", "promoted", false);
}

static void killed_in_watch(void **state)
{
    watched_again(*state, "watch", "watching", true);
}

/* ---- killed during a rollback: finished ------------------------------------- */

static void killed_during_rollback(void **state)
{
    fx *f = *state;

    assert_int_equal(
        mstack(f, NULL, "deploy swapver 1.2.0 --watch 0 --nats %s", ms_nats_server_url(f->srv)), 0);
    assert_all_serve(f, "1.2.0", 2);
    killed_at(f, "rollback-switch", "rollback swapver");
    assert_int_equal(serving(f, "1.1.0", NULL), 1);
    assert_int_equal(serving(f, "1.2.0", NULL), 1);
    assert_one_active(f, "1.2.0"); /* not recorded yet */
    assert_deployment_state(f, "rolling-back");
    assert_answered(f);

    assert_int_equal(resume(f), 0);
    has(f->out, "interrupted at rollback:rolling-back");
    has(f->out, "finished the rollback (rolled-back)");
    assert_all_serve(f, "1.1.0", 2);
    assert_one_active(f, "1.1.0");
    assert_state(f, "1.2.0", "rolled-back");
    assert_locked(f, false);
    history_has(f, "rollback:rolling-back resume:rolled-back");
}

/* The previous version deployed again and the deploy undone: it goes back
 * to previous, not candidate, so the rollback target is kept. */
static void undone_deploy_keeps_the_previous_version(void **state)
{
    fx *f = *state;

    assert_int_equal(
        mstack(f, NULL, "deploy swapver 1.2.0 --watch 0 --nats %s", ms_nats_server_url(f->srv)), 0);
    assert_state(f, "1.1.0", "previous");
    killed_at(f, "test-candidate", "deploy swapver 1.1.0 --watch 0");
    assert_state(f, "1.1.0", "testing");
    assert_int_equal(resume(f), 0);
    has(f->out, "undone: nothing was switched (interrupted)");
    assert_one_active(f, "1.2.0");
    assert_state(f, "1.1.0", "previous");
    assert_all_serve(f, "1.2.0", 2);
    /* and the rollback still has its target */
    assert_int_equal(mstack(f, NULL, "rollback swapver --nats %s", ms_nats_server_url(f->srv)), 0);
    assert_all_serve(f, "1.1.0", 2);
    assert_one_active(f, "1.1.0");
    assert_state(f, "1.2.0", "rolled-back");
}

/* ---- a host killed too --------------------------------------------------------- */

/* host-b dies while prepared, then the coordinator: the survivor is
 * aborted, keeps serving 1.1.0, the registry says interrupted. */
static void host_killed_during_prepare(void **state)
{
    fx *f = *state;
    pid_t pid = stopped_at(f, "after-prepare:stop", "deploy swapver 1.2.0 --watch 0");
    json_t *d;

    stop_host_b(f);
    kill9(pid);
    assert_answered(f);
    assert_int_equal(resume(f), 0);
    has(f->out, "undone: nothing was switched (interrupted)");
    assert_all_serve(f, "1.1.0", 1);
    assert_one_active(f, "1.1.0");
    assert_state(f, "1.2.0", "candidate");
    assert_locked(f, false);
    d = last_deployment(f);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(d, "detail"), "result"), "hosts_aborted")),
                     1);
    json_decref(d);
}

/* Between the switches both host-b and the coordinator die: the promotion
 * is finished on the survivor, the registry says promoted with one host. */
static void host_killed_between_switches(void **state)
{
    fx *f = *state;
    pid_t pid = stopped_at(f, "between-switches:stop", "deploy swapver 1.2.0 --watch 0");
    json_t *d, *hosts;

    stop_host_b(f);
    kill9(pid);
    assert_answered(f);
    assert_int_equal(resume(f), 0);
    has(f->out, "finished the switch on every host (promoted)");
    assert_all_serve(f, "1.2.0", 1);
    assert_one_active(f, "1.2.0");
    assert_locked(f, false);
    d = last_deployment(f);
    hosts = json_object_get(
        json_object_get(json_object_get(json_object_get(d, "detail"), "result"), "report"),
        "hosts");
    assert_int_equal(json_array_size(hosts), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(hosts, 0), "name")),
                        "host-a");
    json_decref(d);
}

/* ---- the next deploy resumes by itself; the stop mode goes on ---------------- */

static void next_deploy_resumes(void **state)
{
    fx *f = *state;

    killed_at(f, "between-switches", "deploy swapver 1.2.0 --watch 0");
    assert_int_equal(
        mstack(f, NULL, "deploy swapver 1.2.0 --watch 0 --nats %s", ms_nats_server_url(f->srv)), 0);
    has(f->out, "resuming deployment");
    has(f->out, "swapver 1.2.0 is active now");
    assert_all_serve(f, "1.2.0", 2);
    assert_one_active(f, "1.2.0");
    assert_locked(f, false);
    /* and a rollback after a killed one finishes that one first */
    killed_at(f, "rollback-switch", "rollback swapver");
    assert_int_equal(mstack(f, NULL, "rollback swapver --nats %s", ms_nats_server_url(f->srv)), 1);
    has(f->out, "finished the rollback (rolled-back)");
    has(f->err, "no version in state previous"); /* 1.1.0 is active again */
    assert_all_serve(f, "1.1.0", 2);
    assert_one_active(f, "1.1.0");
}

/* No server where the resume looks: past the switch nothing is changed
 * (exit 6, still resumable); before the switch the registry is undone
 * without the hosts. */
static void resume_without_server(void **state)
{
    fx *f = *state;
    json_t *d;

    killed_at(f, "between-switches", "deploy swapver 1.2.0 --watch 0");
    assert_int_equal(mstack(f, NULL, "deploy --resume swapver --nats nats://127.0.0.1:1"), 6);
    has(f->err, "cannot be resumed without the hosts (at promote:switching)");
    assert_deployment_state(f, "switching");
    assert_one_active(f, "1.1.0");
    assert_locked(f, false); /* released on the way out */
    assert_int_equal(resume(f), 0);
    assert_all_serve(f, "1.2.0", 2);
    assert_one_active(f, "1.2.0");

    killed_at(f, "compare", "deploy swapver 1.1.0 --watch 0");
    assert_int_equal(mstack(f, NULL, "deploy --resume swapver --nats nats://127.0.0.1:1 --json"),
                     0);
    has(f->out, "\"outcome\": \"interrupted\"");
    d = last_deployment(f);
    has(json_string_value(
            json_object_get(json_object_get(json_object_get(d, "detail"), "result"), "note")),
        "aborts by itself after its hold time");
    json_decref(d);
    assert_state(f, "1.1.0", "previous"); /* back where it was: still the rollback target */
    assert_one_active(f, "1.2.0");
    assert_locked(f, false);
}

static void stopped_deploy_goes_on(void **state)
{
    fx *f = *state;
    pid_t pid = stopped_at(f, "compare:stop", "deploy swapver 1.2.0 --watch 0");
    int st;

    assert_locked(f, true);
    assert_int_equal(kill(pid, SIGCONT), 0);
    assert_int_equal(waitpid(pid, &st, 0), pid);
    collect(f);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    has(f->out, "promoted swapver 1.2.0 on 2 hosts");
    assert_one_active(f, "1.2.0");
    assert_locked(f, false);
    /* nothing to resume, and --resume takes the component only */
    assert_int_equal(resume(f), 0);
    has(f->out, "nothing to resume");
    assert_int_equal(mstack(f, NULL, "deploy --resume swapver 1.2.0"), 2);
    has(f->err, "--resume takes the component only");
    assert_int_equal(mstack(f, NULL, "deploy swapver"), 2);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(killed_after_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(undone_deploy_keeps_the_previous_version, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_testing_active, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_testing_candidate, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_after_compare, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_after_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_between_switches, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_after_switch_no_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_after_switch_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_in_watch, setup, teardown),
        cmocka_unit_test_setup_teardown(killed_during_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(host_killed_during_prepare, setup, teardown),
        cmocka_unit_test_setup_teardown(host_killed_between_switches, setup, teardown),
        cmocka_unit_test_setup_teardown(next_deploy_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(resume_without_server, setup, teardown),
        cmocka_unit_test_setup_teardown(stopped_deploy_goes_on, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
