/*
 * test_cli.c - the mstack command, end to end: the real built binary
 * (build/cli/mstack) against a real nats-server (nats_fixture.h) with the
 * real user-service and notification-service plugins (build/components)
 * and two test plugins (build/tests/plugins: unhealthy.so, nosymbol.so).
 *
 * Each case runs mstack as a child process (stdout and stderr to files in
 * the case's temporary directory, the environment built here: no NATS_URL
 * or MAINSTACK_COMPONENT_PATH from outside, so names resolve through the
 * binary's default search path) and checks exit codes, messages and --json
 * output. `mstack run` is waited for by polling its stdout for the
 * "serving" line; asynchronous effects (notifications, health) are polled
 * with deadlines; nothing sleeps and hopes. Children get SIGKILL when the
 * test dies (PR_SET_PDEATHSIG) and the teardown kills what is left.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ms_test.h"
#include "nats_fixture.h"

#ifndef MSTACK_BIN
#error "MSTACK_BIN must be defined (cli/CMakeLists.txt)"
#endif

#define PLUGINS MS_TEST_PLUGINS_DIR
/* Deadlines: generous, for a loaded 2-core machine (and ASan). */
#define CMD_TIMEOUT_MS 60000
#define READY_TIMEOUT_MS 60000
#define EFFECT_TIMEOUT_MS 30000
#define MAX_ARGS 48
#define REFUSED_URL "nats://127.0.0.1:1"

typedef struct fixture {
    char dir[256];          /* temp dir: outputs, data root, config files */
    ms_nats_server *server; /* NULL unless the case starts one */
    char url[128];
    bool env_nats_url;      /* children get NATS_URL=url */
    pid_t run_pid;          /* the `mstack run` child, 0 when none */
    int run_seq;            /* to name each run's output files */
    char run_out[PATH_MAX]; /* its stdout and stderr files */
    char run_err[PATH_MAX];
    char *out, *err; /* output of the last mstack() call (malloc'd) */
    int cmd_seq;
} fixture;

/* --- files and processes ---------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The whole content of a file (malloc'd, "" when missing). */
static char *read_file(const char *path)
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

static void write_file(const char *path, const char *text)
{
    char tmp[PATH_MAX];
    FILE *f;
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0); /* the reader never sees half a file */
}

/* The environment of a child: PATH, the sanitizer options, NATS_URL when
 * asked. envp points into buf. */
static void build_env(const fixture *fx, char buf[4][PATH_MAX], char *envp[5])
{
    size_t n = 0;
    const char *keep[] = {"PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = getenv(keep[i]);
        if (v != NULL) {
            snprintf(buf[n], PATH_MAX, "%s=%s", keep[i], v);
            envp[n] = buf[n];
            n++;
        }
    }
    if (fx->env_nats_url) {
        snprintf(buf[n], PATH_MAX, "NATS_URL=%s", fx->url);
        envp[n] = buf[n];
        n++;
    }
    envp[n] = NULL;
}

/* Start mstack with argv (argv[0] is ignored), stdin from stdin_path (or
 * /dev/null), stdout and stderr to the given files. Only async-signal-safe
 * calls after fork: the test process may have libnats threads. */
static pid_t spawn(const fixture *fx, char *const argv[], const char *stdin_path,
                   const char *out_path, const char *err_path)
{
    char envbuf[4][PATH_MAX];
    char *envp[5];
    pid_t parent = getpid(), pid;

    build_env(fx, envbuf, envp);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in, out, err;
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        in = open(stdin_path != NULL ? stdin_path : "/dev/null", O_RDONLY);
        out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(126);
        execve(MSTACK_BIN, argv, envp);
        _exit(127);
    }
    return pid;
}

/* Wait for pid to exit within timeout_ms; returns true and the wait status. */
static bool wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        assert_true(r == 0);
        if (ms_test_now_ms() >= deadline)
            return false;
        ms_test_sleep_ms(5);
    }
}

/* Collect a NULL-terminated list of arguments after "mstack". */
static void collect_args(char *argv[MAX_ARGS], const char *first, va_list ap)
{
    size_t n = 0;
    argv[n++] = (char *)"mstack";
    for (const char *a = first; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(n < MAX_ARGS - 1);
        argv[n++] = (char *)a;
    }
    argv[n] = NULL;
}

/* Run `mstack ARGS...` (NULL-terminated) to completion with stdin_text on
 * its stdin (NULL: /dev/null). Returns its exit code; fx->out and fx->err
 * hold what it printed. */
static int mstack_in(fixture *fx, const char *stdin_text, const char *first, ...)
{
    char *argv[MAX_ARGS];
    char out[PATH_MAX], err[PATH_MAX], in[PATH_MAX];
    va_list ap;
    int status = 0;
    pid_t pid;

    va_start(ap, first);
    collect_args(argv, first, ap);
    va_end(ap);
    fx->cmd_seq++;
    snprintf(out, sizeof out, "%s/cmd%d.out", fx->dir, fx->cmd_seq);
    snprintf(err, sizeof err, "%s/cmd%d.err", fx->dir, fx->cmd_seq);
    snprintf(in, sizeof in, "%s/cmd%d.in", fx->dir, fx->cmd_seq);
    if (stdin_text != NULL)
        write_file(in, stdin_text);
    pid = spawn(fx, argv, stdin_text != NULL ? in : NULL, out, err);
    if (!wait_exit(pid, CMD_TIMEOUT_MS, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fail_msg("mstack %s did not finish within %d ms", first, CMD_TIMEOUT_MS);
    }
    free(fx->out);
    free(fx->err);
    fx->out = read_file(out);
    fx->err = read_file(err);
    if (!WIFEXITED(status))
        fail_msg("mstack %s died by signal %d; stderr: %s", first, WTERMSIG(status), fx->err);
    return WEXITSTATUS(status);
}
#define mstack(fx, ...) mstack_in((fx), NULL, __VA_ARGS__, (const char *)NULL)
#define mstack_stdin(fx, text, ...) mstack_in((fx), (text), __VA_ARGS__, (const char *)NULL)

/* Assert an exit code, showing the output when it differs. */
#define assert_exit(fx, call, code)                                                                \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (code))                                                                         \
            fail_msg("%s: exit %d, want %d\nstdout: %s\nstderr: %s", #call, rc_, (code),           \
                     (fx)->out, (fx)->err);                                                        \
    } while (0)

#define assert_contains(hay, needle)                                                               \
    do {                                                                                           \
        if (strstr((hay), (needle)) == NULL)                                                       \
            fail_msg("'%s' not found in: %s", (needle), (hay));                                    \
    } while (0)

/* The last mstack() stdout as JSON (a new reference). */
static json_t *out_json(const fixture *fx)
{
    json_t *v = NULL;
    if (ms_json_parse(fx->out, strlen(fx->out), "stdout", &v) != MS_OK)
        fail_msg("stdout is not JSON: %s\n%s", ms_last_error(), fx->out);
    return v;
}

/* Start `mstack ARGS...` in the background (run, agent) and wait for its
 * ready line (a line containing `ready`). */
static void start_bg_v(fixture *fx, const char *ready, const char *first, va_list ap)
{
    char *argv[MAX_ARGS];
    int64_t deadline = ms_test_now_ms() + READY_TIMEOUT_MS;

    assert_int_equal(fx->run_pid, 0);
    collect_args(argv, first, ap);
    fx->run_seq++;
    snprintf(fx->run_out, sizeof fx->run_out, "%s/run%d.out", fx->dir, fx->run_seq);
    snprintf(fx->run_err, sizeof fx->run_err, "%s/run%d.err", fx->dir, fx->run_seq);
    fx->run_pid = spawn(fx, argv, NULL, fx->run_out, fx->run_err);
    for (;;) {
        char *text = read_file(fx->run_out);
        bool is_ready = strstr(text, ready) != NULL;
        int status;
        free(text);
        if (is_ready)
            return;
        if (waitpid(fx->run_pid, &status, WNOHANG) == fx->run_pid) {
            char *err = read_file(fx->run_err);
            fx->run_pid = 0;
            fail_msg("mstack %s exited (status %d) before '%s': %s", first, status, ready, err);
        }
        if (ms_test_now_ms() >= deadline)
            fail_msg("mstack %s did not print '%s' within %d ms", first, ready, READY_TIMEOUT_MS);
        ms_test_sleep_ms(10);
    }
}

static void start_run(fixture *fx, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    start_bg_v(fx, "serving", first, ap);
    va_end(ap);
}

static void start_agent(fixture *fx, const char *first, ...)
{
    va_list ap;
    va_start(ap, first);
    start_bg_v(fx, "watching", first, ap);
    va_end(ap);
}

/* `mstack run` on the case's server with its data root and two workers. */
#define RUN_NATS(fx, ...)                                                                          \
    start_run((fx), "run", "--nats", (fx)->url, "--data-dir", data_dir(fx), "--workers", "2",      \
              __VA_ARGS__, (const char *)NULL)

static const char *data_dir(fixture *fx)
{
    static char path[PATH_MAX]; /* one case per process */
    snprintf(path, sizeof path, "%s/data", fx->dir);
    return path;
}

/* Wait until the run's stdout contains needle. */
static void wait_run_output(fixture *fx, const char *needle)
{
    int64_t deadline = ms_test_now_ms() + EFFECT_TIMEOUT_MS;
    for (;;) {
        char *text = read_file(fx->run_out);
        bool found = strstr(text, needle) != NULL;
        if (found || ms_test_now_ms() >= deadline) {
            if (!found)
                fail_msg("'%s' not printed by mstack run within %d ms: %s", needle,
                         EFFECT_TIMEOUT_MS, text);
            free(text);
            return;
        }
        free(text);
        ms_test_sleep_ms(10);
    }
}

/* Signal the run, expect exit 0 and the process gone. */
static void stop_run(fixture *fx, int sig)
{
    int status = 0;
    pid_t pid = fx->run_pid;
    assert_true(pid > 0);
    assert_int_equal(kill(pid, sig), 0);
    if (!wait_exit(pid, CMD_TIMEOUT_MS, &status))
        fail_msg("mstack run did not exit within %d ms of signal %d", CMD_TIMEOUT_MS, sig);
    fx->run_pid = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *err = read_file(fx->run_err);
        fail_msg("mstack run ended with status %d after signal %d: %s", status, sig, err);
    }
    /* Reaped and gone: no such process any more. */
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    wait_run_output(fx, "stopped");
}

static void start_server(fixture *fx)
{
    ms_nats_server_opts o = {0};
    o.jetstream = 1;
    ms_assert_ok(ms_nats_server_start(&o, &fx->server));
    snprintf(fx->url, sizeof fx->url, "%s", ms_nats_server_url(fx->server));
}

/* Poll the outbox until a notification's text contains needle. */
static void wait_notification(fixture *fx, const char *needle)
{
    int64_t deadline = ms_test_now_ms() + EFFECT_TIMEOUT_MS;
    for (;;) {
        int rc = mstack(fx, "request", "--nats", fx->url, "--json",
                        "component.notification-service.outbox", "{\"limit\":100}");
        if (rc == 0) {
            json_t *v = out_json(fx), *n;
            size_t i;
            bool found = false;
            json_array_foreach(json_object_get(v, "notifications"), i, n)
            {
                const char *text = json_string_value(json_object_get(n, "text"));
                if (text != NULL && strstr(text, needle) != NULL)
                    found = true;
            }
            json_decref(v);
            if (found)
                return;
        }
        if (ms_test_now_ms() >= deadline)
            fail_msg("no notification containing '%s' within %d ms (last exit %d): %s%s", needle,
                     EFFECT_TIMEOUT_MS, rc, fx->out, fx->err);
        ms_test_sleep_ms(20);
    }
}

/* Create a user; returns its id (malloc'd). */
static char *create_user(fixture *fx, const char *email, const char *name)
{
    char payload[256];
    json_t *v;
    char *id;
    snprintf(payload, sizeof payload, "{\"email\":\"%s\",\"name\":\"%s\"}", email, name);
    assert_exit(fx,
                mstack(fx, "request", "--nats", fx->url, "--json", "component.user-service.create",
                       payload),
                0);
    v = out_json(fx);
    assert_string_equal(json_string_value(json_object_get(v, "email")), email);
    id = strdup(json_string_value(json_object_get(v, "id")));
    json_decref(v);
    assert_non_null(id);
    return id;
}

/* --- setup ---------------------------------------------------------------- */

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/ms-cli-test-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    if (fx->run_pid > 0) {
        kill(fx->run_pid, SIGKILL);
        waitpid(fx->run_pid, NULL, 0);
    }
    ms_nats_server_stop(fx->server);
    (void)nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx->out);
    free(fx->err);
    free(fx);
    return 0;
}

/* --- cases ---------------------------------------------------------------- */

static void help_on_every_verb(void **state)
{
    fixture *fx = *state;
    static const char *const verbs[] = {"run", "publish", "request", "health", "services"};

    assert_exit(fx, mstack(fx, "--help"), 0);
    assert_contains(fx->out, "Exit codes:");
    assert_contains(fx->out, "NATS_URL");
    for (size_t i = 0; i < 5; i++) {
        char usage[64];
        snprintf(usage, sizeof usage, "Usage: mstack %s", verbs[i]);
        assert_exit(fx, mstack(fx, verbs[i], "--help"), 0);
        assert_contains(fx->out, usage);
        assert_contains(fx->out, "Options:");
        assert_exit(fx, mstack(fx, "help", verbs[i]), 0);
        assert_contains(fx->out, usage);
    }
    assert_exit(fx, mstack(fx, "--version"), 0);
    assert_contains(fx->out, "mstack " MS_VERSION_STRING);
}

static void usage_errors_exit_2(void **state)
{
    fixture *fx = *state;

    assert_exit(fx, mstack_in(fx, NULL, NULL), 2); /* no verb at all */
    assert_contains(fx->err, "Usage: mstack VERB");
    assert_exit(fx, mstack(fx, "frobnicate"), 2);
    assert_contains(fx->err, "unknown verb 'frobnicate'");
    assert_exit(fx, mstack(fx, "--frobnicate"), 2);
    assert_contains(fx->err, "unknown option '--frobnicate'");
    assert_exit(fx, mstack(fx, "request"), 2);
    assert_contains(fx->err, "missing argument");
    assert_exit(fx, mstack(fx, "request", "a.b", "--bogus"), 2);
    assert_contains(fx->err, "unknown option '--bogus'");
    assert_contains(fx->err, "mstack request --help");
    assert_exit(fx, mstack(fx, "request", "a.b", "-q"), 2);
    assert_contains(fx->err, "unknown option '-q'");
    assert_exit(fx, mstack(fx, "request", "a.b", "--timeout"), 2);
    assert_contains(fx->err, "needs a value");
    assert_exit(fx, mstack(fx, "request", "a.b", "--timeout", "soon"), 2);
    assert_contains(fx->err, "'soon' is not a whole number");
    assert_exit(fx, mstack(fx, "request", "a.b", "--timeout", "0"), 2);
    assert_contains(fx->err, "out of range");
    assert_exit(fx, mstack(fx, "health", "a", "b"), 2);
    assert_contains(fx->err, "unexpected argument 'b'");
    assert_exit(fx, mstack(fx, "publish", "a.b", "--raw=yes"), 2);
    assert_contains(fx->err, "takes no value");
    assert_exit(fx, mstack(fx, "publish", "bad subject", "{}"), 2);
    assert_contains(fx->err, "'bad subject' is not a subject");
    assert_exit(fx, mstack(fx, "publish", "a.b", "{}", "--header", "novalue"), 2);
    assert_contains(fx->err, "expected KEY=VALUE");
    assert_exit(fx, mstack(fx, "run"), 2);
    assert_contains(fx->err, "missing argument");
    assert_exit(fx, mstack(fx, "run", "--instances", "0", "user-service"), 2);
    assert_contains(fx->err, "--instances");
    assert_exit(fx, mstack(fx, "run", "--restart", "sometimes", "user-service"), 2);
    assert_contains(fx->err, "permanent, transient or temporary");
    assert_exit(fx, mstack(fx, "health", "Not_A.Name"), 2);
    assert_contains(fx->err, "a component name is [a-z0-9-]");
    assert_exit(fx, mstack(fx, "services", "user.*"), 2);
    assert_contains(fx->err, "character '.'");
}

static void malformed_json_exit_2(void **state)
{
    fixture *fx = *state;

    /* Checked before connecting: no server needed to get the error. */
    assert_exit(fx, mstack(fx, "publish", "a.b", "{\"name\": }"), 2);
    assert_contains(fx->err, "not valid JSON");
    assert_contains(fx->err, "argument:1:");
    assert_exit(fx, mstack_stdin(fx, "[1,\n2", "request", "a.b", "-"), 2);
    assert_contains(fx->err, "stdin:");
    assert_exit(fx, mstack(fx, "request", "a.b", "not json at all"), 2);
    assert_contains(fx->err, "--raw");
    /* --raw sends anything: then the failure is the missing server (6). */
    assert_exit(fx, mstack(fx, "publish", "--nats", REFUSED_URL, "--raw", "a.b", "not json"), 6);
}

static void connection_refused_exit_6(void **state)
{
    fixture *fx = *state;

    assert_exit(fx, mstack(fx, "request", "--nats", REFUSED_URL, "a.b", "{}"), 6);
    assert_contains(fx->err, "no NATS server at " REFUSED_URL);
    assert_contains(fx->err, "nats-server");
    assert_contains(fx->err, "NATS_URL");
    assert_exit(fx, mstack(fx, "publish", "--nats", REFUSED_URL, "a.b", "{}"), 6);
    assert_exit(fx, mstack(fx, "health", "--nats", REFUSED_URL), 6);
    assert_exit(fx, mstack(fx, "services", "--nats", REFUSED_URL), 6);
    /* NATS_URL is used when --nats is absent. */
    snprintf(fx->url, sizeof fx->url, "%s", REFUSED_URL);
    fx->env_nats_url = true;
    assert_exit(fx, mstack(fx, "services"), 6);
    assert_contains(fx->err, REFUSED_URL);
    assert_exit(fx, mstack(fx, "run", "--data-dir", data_dir(fx), "user-service"), 6);
    assert_contains(fx->err, "no NATS server at " REFUSED_URL);
    /* An in-process URL is refused by the client verbs with a reason. */
    assert_exit(fx, mstack(fx, "request", "--nats", "inproc://x", "a.b"), 2);
    assert_contains(fx->err, "in-process");
}

static void run_unknown_component_exit_1(void **state)
{
    fixture *fx = *state;

    /* In-process: no server needed. */
    assert_exit(fx, mstack(fx, "run", "--data-dir", data_dir(fx), "no-such-component"), 1);
    assert_contains(fx->err, "no component called 'no-such-component'");
    assert_contains(fx->err, MS_COMPONENTS_BUILD_DIR); /* the default search path, named */
    assert_null(strstr(fx->out, "serving"));
    /* One good and one unknown: nothing serves, still exit 1. */
    assert_exit(fx, mstack(fx, "run", "--data-dir", data_dir(fx), "user-service", "nope"), 1);
    assert_null(strstr(fx->out, "serving"));
}

static void run_not_a_component_exit_1(void **state)
{
    fixture *fx = *state;
    char fake[PATH_MAX];

    assert_exit(fx, mstack(fx, "run", "--data-dir", data_dir(fx), PLUGINS "/nosymbol.so"), 1);
    assert_contains(fx->err, "not a mainstack component");
    assert_contains(fx->err, "nosymbol.so");
    snprintf(fake, sizeof fake, "%s/fake.so", fx->dir);
    write_file(fake, "this is not an ELF file\n");
    assert_exit(fx, mstack(fx, "run", "--data-dir", data_dir(fx), fake), 1);
    assert_contains(fx->err, "cannot load");
    assert_exit(fx, mstack(fx, "run", "--data-dir", data_dir(fx), "/nonexistent/x.so"), 1);
    assert_contains(fx->err, "/nonexistent/x.so");
}

static void run_request_publish(void **state)
{
    fixture *fx = *state;
    char get[128];
    char *id;
    json_t *v;

    start_server(fx);
    RUN_NATS(fx, "user-service", "notification-service");
    id = create_user(fx, "ada@example.com", "Ada");
    snprintf(get, sizeof get, "{\"id\":\"%s\"}", id);
    assert_exit(fx, mstack(fx, "request", "--nats", fx->url, "component.user-service.get", get), 0);
    assert_contains(fx->out, "\"name\": \"Ada\""); /* pretty printed without --json */
    /* The payload from stdin. */
    assert_exit(fx,
                mstack_stdin(fx, get, "request", "--nats", fx->url, "--json",
                             "component.user-service.get", "-"),
                0);
    v = out_json(fx);
    assert_string_equal(json_string_value(json_object_get(v, "id")), id);
    json_decref(v);
    wait_notification(fx, "Welcome, Ada <ada@example.com>");

    /* publish: an event the notification-service consumes, from stdin. */
    assert_exit(fx,
                mstack_stdin(fx,
                             "{\"id\":\"u-pat\",\"email\":\"pat@example.com\",\"name\":\"Pat\"}",
                             "publish", "--nats", fx->url, "--json", "events.user.created", "-"),
                0);
    v = out_json(fx);
    assert_string_equal(json_string_value(json_object_get(v, "subject")), "events.user.created");
    assert_int_equal(strlen(json_string_value(json_object_get(v, "id"))), MS_ID_LEN);
    json_decref(v);
    wait_notification(fx, "Welcome, Pat <pat@example.com>");
    assert_exit(fx, mstack(fx, "publish", "--nats", fx->url, "events.user.created", "{}"), 0);
    assert_contains(fx->out, "published 2 bytes on events.user.created");
    free(id);
    stop_run(fx, SIGTERM);
}

static void request_remote_error_exit_5(void **state)
{
    fixture *fx = *state;
    json_t *v;

    start_server(fx);
    RUN_NATS(fx, "user-service");
    assert_exit(fx,
                mstack(fx, "request", "--nats", fx->url, "component.user-service.create",
                       "{\"email\":\"not-an-email\",\"name\":\"X\"}"),
                5);
    assert_contains(fx->err, "answered with an error 400");
    assert_contains(fx->err, "email");
    assert_exit(fx,
                mstack(fx, "request", "--nats", fx->url, "--json", "component.user-service.get",
                       "{\"id\":\"01a00000-0000-7000-8000-000000000000\"}"),
                5);
    v = out_json(fx);
    assert_int_equal(json_integer_value(json_object_get(v, "code")), 404);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "not_found");
    assert_non_null(json_string_value(json_object_get(v, "error")));
    json_decref(v);
    stop_run(fx, SIGTERM);
}

static void no_responders_exit_4(void **state)
{
    fixture *fx = *state;

    start_server(fx);
    assert_exit(fx, mstack(fx, "request", "--nats", fx->url, "nobody.listens.here", "{}"), 4);
    assert_contains(fx->err, "no responders on nobody.listens.here");
    assert_contains(fx->err, "mstack services");
    assert_exit(fx, mstack(fx, "health", "--nats", fx->url, "--timeout", "300"), 4);
    assert_contains(fx->err, "mstack run");
    assert_exit(fx, mstack(fx, "services", "--nats", fx->url, "--timeout", "300"), 4);
}

static void ignore_message(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *c)
{
    (void)bus;
    (void)sub;
    (void)msg;
    (void)c;
}

static void request_timeout_exit_3(void **state)
{
    fixture *fx = *state;
    ms_bus *bus = NULL;

    start_server(fx);
    /* A subscriber that never answers. */
    ms_assert_ok(ms_bus_connect_url(fx->url, &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "test.blackhole", NULL, ignore_message, NULL, NULL));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_exit(
        fx, mstack(fx, "request", "--nats", fx->url, "--timeout", "300", "test.blackhole", "{}"),
        3);
    assert_contains(fx->err, "no reply on test.blackhole within 300 ms");
    assert_contains(fx->err, "--timeout");
    ms_bus_destroy(bus);
}

static void health_and_services(void **state)
{
    fixture *fx = *state;
    json_t *v, *inst, *info, *ep;
    size_t i, k;
    bool saw_create = false;
    int users = 0, notif = 0;

    start_server(fx);
    RUN_NATS(fx, "--instances", "2", "--name", "cli-test-host", "user-service",
             "notification-service");
    fx->env_nats_url = true; /* the client verbs find the server through NATS_URL */

    assert_exit(fx, mstack(fx, "health", "--json", "--count", "1", "--timeout", "20000"), 0);
    v = out_json(fx);
    assert_int_equal(json_array_size(json_object_get(v, "instances")), 4);
    json_array_foreach(json_object_get(v, "instances"), i, inst)
    {
        const char *c = json_string_value(json_object_get(inst, "component"));
        assert_string_equal(json_string_value(json_object_get(inst, "state")), "running");
        assert_string_equal(json_string_value(json_object_get(inst, "host_name")), "cli-test-host");
        users += strcmp(c, "user-service") == 0;
        notif += strcmp(c, "notification-service") == 0;
    }
    assert_int_equal(users, 2);
    assert_int_equal(notif, 2);
    json_decref(v);
    /* One component: its instances answer; --count stops early. */
    assert_exit(
        fx, mstack(fx, "health", "user-service", "--json", "--count", "2", "--timeout", "20000"),
        0);
    v = out_json(fx);
    assert_int_equal(json_array_size(json_object_get(v, "instances")), 2);
    json_decref(v);
    assert_exit(fx, mstack(fx, "health", "--count", "1", "--timeout", "20000"), 0);
    assert_contains(fx->out, "COMPONENT");
    assert_contains(fx->out, "notification-service");
    assert_contains(fx->out, "healthy");
    assert_exit(fx, mstack(fx, "health", "no-such-thing", "--timeout", "300"), 4);
    assert_contains(fx->err, "no instance of no-such-thing");

    /* Discovery. */
    assert_exit(fx, mstack(fx, "services", "--json", "--count", "4", "--timeout", "20000"), 0);
    v = out_json(fx);
    assert_int_equal(json_array_size(json_object_get(v, "info")), 4);
    assert_int_equal(json_array_size(json_object_get(v, "stats")), 4);
    json_array_foreach(json_object_get(v, "info"), i, info)
    {
        json_array_foreach(json_object_get(info, "endpoints"), k, ep)
        {
            const char *subject = json_string_value(json_object_get(ep, "subject"));
            if (subject != NULL && strcmp(subject, "component.user-service.create") == 0)
                saw_create = true;
        }
    }
    assert_true(saw_create);
    json_decref(v);
    assert_exit(fx, mstack(fx, "services", "user-service", "--count", "2", "--timeout", "20000"),
                0);
    assert_contains(fx->out, "ENDPOINT");
    assert_contains(fx->out, "component.user-service.create");
    assert_null(strstr(fx->out, "notification-service"));
    assert_exit(
        fx, mstack(fx, "services", "--ping", "--json", "--count", "4", "--timeout", "20000"), 0);
    v = out_json(fx);
    assert_int_equal(json_array_size(json_object_get(v, "ping")), 4);
    json_decref(v);
    assert_exit(fx, mstack(fx, "services", "no-such-service", "--timeout", "300"), 4);
    assert_contains(fx->err, "no service answered");
    stop_run(fx, SIGTERM);
}

static void health_unhealthy_exit_7(void **state)
{
    fixture *fx = *state;
    int64_t deadline;
    int rc;

    start_server(fx);
    RUN_NATS(fx, "--health-interval", "100", PLUGINS "/unhealthy.so");
    /* The first check makes it unhealthy (then the supervisor restarts it,
     * and gives up): poll until health reports it. */
    deadline = ms_test_now_ms() + EFFECT_TIMEOUT_MS;
    while ((rc = mstack(fx, "health", "--nats", fx->url, "--json", "--timeout", "500")) != 7) {
        if (ms_test_now_ms() >= deadline)
            fail_msg("health never exited 7 (last %d): %s %s", rc, fx->out, fx->err);
        ms_test_sleep_ms(20);
    }
    {
        json_t *v = out_json(fx), *inst = json_array_get(json_object_get(v, "instances"), 0);
        const char *st = json_string_value(json_object_get(inst, "status"));
        const char *state_name = json_string_value(json_object_get(inst, "state"));
        assert_non_null(st);
        assert_true(strcmp(st, "healthy") != 0 || strcmp(state_name, "running") != 0);
        json_decref(v);
    }
    assert_contains(fx->err, "unhealthy or not running");
    stop_run(fx, SIGTERM);
}

static void sigterm_and_sigint_exit_0(void **state)
{
    fixture *fx = *state;
    json_t *v;
    char *text, *line;

    start_server(fx);
    RUN_NATS(fx, "user-service", "notification-service");
    free(create_user(fx, "term@example.com", "Term"));
    stop_run(fx, SIGTERM);
    text = read_file(fx->run_out);
    assert_contains(text, "stopping (SIGTERM)");
    free(text);
    /* Nothing left subscribed: nobody answers any more. */
    assert_exit(fx, mstack(fx, "request", "--nats", fx->url, "component.user-service.list", "{}"),
                4);

    /* SIGINT, with --json events: every stdout line is a JSON object. */
    RUN_NATS(fx, "--json", "user-service");
    stop_run(fx, SIGINT);
    text = read_file(fx->run_out);
    line = strstr(text, "{\"event\": \"serving\"");
    if (line == NULL)
        line = strstr(text, "{\"event\":\"serving\"");
    assert_non_null(line);
    *strchr(line, '\n') = '\0';
    assert_int_equal(ms_json_parse(line, strlen(line), "serving", &v), MS_OK);
    assert_string_equal(json_string_value(json_object_get(v, "url")), fx->url);
    assert_true(json_integer_value(json_object_get(v, "pid")) > 0);
    json_decref(v);
    free(text);
    text = read_file(fx->run_out);
    assert_contains(text, "\"SIGINT\"");
    assert_contains(text, "\"stopped\"");
    free(text);
}

static void sighup_reloads_config(void **state)
{
    fixture *fx = *state;
    char config[PATH_MAX];

    start_server(fx);
    snprintf(config, sizeof config, "%s/stack.json", fx->dir);
    write_file(config,
               "{\"notification-service\": {\"templates\": {\"created\": \"First {{name}}\"}}}");
    RUN_NATS(fx, "--config", config, "user-service", "notification-service");
    free(create_user(fx, "a@example.com", "Alpha"));
    wait_notification(fx, "First Alpha");

    write_file(config,
               "{\"notification-service\": {\"templates\": {\"created\": \"Second {{name}}\"}}}");
    assert_int_equal(kill(fx->run_pid, SIGHUP), 0);
    wait_run_output(fx, "reloaded the config");
    free(create_user(fx, "b@example.com", "Beta"));
    wait_notification(fx, "Second Beta");

    /* A broken file changes nothing, and says why. */
    write_file(config, "{\"notification-service\": {\"templates\": ");
    assert_int_equal(kill(fx->run_pid, SIGHUP), 0);
    wait_run_output(fx, "config reload of");
    {
        char *text = read_file(fx->run_out);
        assert_contains(text, "the old config stays in force");
        free(text);
    }
    free(create_user(fx, "c@example.com", "Gamma"));
    wait_notification(fx, "Second Gamma");
    stop_run(fx, SIGTERM);
}

static void live_config_message(void **state)
{
    fixture *fx = *state;
    json_t *v;

    start_server(fx);
    RUN_NATS(fx, "user-service", "notification-service");
    /* As a request, the config message is answered once applied. */
    assert_exit(fx,
                mstack(fx, "request", "--nats", fx->url, "--json",
                       "mainstack.config.notification-service",
                       "{\"templates\": {\"created\": \"Live {{name}}!\"}}"),
                0);
    v = out_json(fx);
    assert_true(json_is_true(json_object_get(v, "ok")));
    json_decref(v);
    free(create_user(fx, "live@example.com", "Lee"));
    wait_notification(fx, "Live Lee!");
    /* A template the component refuses: a remote error, the old one stays. */
    assert_exit(fx,
                mstack(fx, "request", "--nats", fx->url, "mainstack.config.notification-service",
                       "{\"templates\": {\"created\": \"Broken {{name\"}}"),
                5);
    free(create_user(fx, "still@example.com", "Sam"));
    wait_notification(fx, "Live Sam!");
    stop_run(fx, SIGTERM);
}

static void run_in_process(void **state)
{
    fixture *fx = *state;

    /* Neither --nats nor NATS_URL: in-process. */
    start_run(fx, "run", "--data-dir", data_dir(fx), "--workers", "2", "user-service",
              "notification-service", (const char *)NULL);
    {
        char *text = read_file(fx->run_out);
        assert_contains(text, "on inproc://mainstack");
        assert_contains(text, "started user-service 1.0.0");
        free(text);
    }
    stop_run(fx, SIGTERM);
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out;
    char buf[65536];
    size_t n;

    if (in == NULL)
        fail_msg("cannot open %s", from);
    out = fopen(to, "wb");
    if (out == NULL)
        fail_msg("cannot create %s", to);
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

/* mkdir -p */
static void make_dirs(const char *path)
{
    char p[PATH_MAX];

    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1; *s != '\0'; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            fail_msg("mkdir %s: %s", p, strerror(errno));
        *s = '/';
    }
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", p, strerror(errno));
}

/* A project whose registry names swapver 2.0.0 active (its artifact a copy
 * of swapver_b.so), and a search directory whose swapver.so is 1.0.0: a
 * host started by name serves the deployed 2.0.0, --build-version the
 * search path's 1.0.0, and a missing artifact falls back to the search path
 * with a warning. */
static void run_loads_the_active_version(void **state)
{
    fixture *fx = *state;
    char proj[512], path[PATH_MAX], search[PATH_MAX], art[PATH_MAX], so[PATH_MAX + 16];
    ms_registry *reg = NULL;
    char *text;

    snprintf(proj, sizeof proj, "%s/proj", fx->dir);
    snprintf(search, sizeof search, "%s/search", fx->dir);
    snprintf(art, sizeof art, "%s/.mainstack/artifacts/swapver/2.0.0", proj);
    assert_int_equal(mkdir(search, 0755), 0);
    make_dirs(art);
    copy_file(PLUGINS "/swapver_a.so", strcat(strcpy(path, search), "/swapver.so"));
    snprintf(so, sizeof so, "%s/swapver.so", art);
    copy_file(PLUGINS "/swapver_b.so", so);
    snprintf(path, sizeof path, "%s/.mainstack/registry.db", proj);
    ms_assert_ok(ms_registry_open(path, &reg));
    ms_assert_ok(ms_registry_version_add(
        reg, "swapver", "2.0.0", "0000000000000000000000000000000000000000000000000000000000000000",
        art, NULL, NULL));
    ms_assert_ok(ms_registry_version_set_state(reg, "swapver", "2.0.0", "active"));
    ms_registry_close(reg);

    start_run(fx, "run", "-C", proj, "-p", search, "--data-dir", data_dir(fx), "--workers", "2",
              "swapver", (const char *)NULL);
    text = read_file(fx->run_out);
    assert_contains(text, "names 2.0.0 active: loading");
    assert_contains(text, "started swapver 2.0.0");
    free(text);
    stop_run(fx, SIGTERM);

    start_run(fx, "run", "-C", proj, "-p", search, "--build-version", "--data-dir", data_dir(fx),
              "--workers", "2", "swapver", (const char *)NULL);
    text = read_file(fx->run_out);
    assert_contains(text, "started swapver 1.0.0");
    assert_null(strstr(text, "active: loading"));
    free(text);
    stop_run(fx, SIGTERM);

    assert_int_equal(unlink(so), 0);
    start_run(fx, "run", "-C", proj, "-p", search, "--data-dir", data_dir(fx), "--workers", "2",
              "swapver", (const char *)NULL);
    text = read_file(fx->run_out);
    assert_contains(text, "started swapver 1.0.0");
    free(text);
    text = read_file(fx->run_err);
    assert_contains(text, "artifact is missing");
    free(text);
    stop_run(fx, SIGTERM);

    /* a --root that is not a directory is a usage error */
    assert_exit(fx, mstack(fx, "run", "-C", "/nonexistent/proj", "swapver"), 2);
    assert_contains(fx->err, "not a directory");
}

/* --- agents and escalations --------------------------------------------- */

/* A component web-ui in <dir>/components whose change step is step.sh:
 * it fails while <dir>/fail exists. */
static void write_agent_component(fixture *fx)
{
    char path[PATH_MAX + 64], text[2048];

    snprintf(path, sizeof path, "%s/components", fx->dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/components/web-ui", fx->dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/components/web-ui/context", fx->dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/components/web-ui/context/context.json", fx->dir);
    write_file(path,
               "{\"component\": \"web-ui\", \"version\": \"1.0.0\", \"purpose\": \"a UI\","
               " \"interfaces\": {\"consumes\": [{\"name\": \"user-api\", \"version\": \"^1\"}]}}");
    snprintf(path, sizeof path, "%s/components/web-ui/context/agent-config.json", fx->dir);
    snprintf(text, sizeof text,
             "{\"component\": \"web-ui\", \"autonomy\": {\"level\": \"minor\"},"
             " \"actions\": {\"change\": {\"argv\": [\"%s/step.sh\"], \"timeout_s\": 30}}}",
             fx->dir);
    write_file(path, text);
    snprintf(path, sizeof path, "%s/step.sh", fx->dir);
    write_file(
        path, "#!/bin/sh\necho changing\nif [ -e \"$MAINSTACK_ROOT/fail\" ]; then echo broken >&2; "
              "exit 4; fi\n");
    chmod(path, 0755);
    snprintf(path, sizeof path, "%s/fail", fx->dir);
    write_file(path, "");
}

static void agent_and_escalations(void **state)
{
    fixture *fx = *state;
    char path[PATH_MAX + 16];
    json_t *list;

    start_server(fx);
    write_agent_component(fx);
    /* a component that does not exist: the error names the file */
    assert_exit(fx, mstack(fx, "agent", "--nats", fx->url, "--root", fx->dir, "nope"), 1);
    assert_contains(fx->err, "components/nope");
    start_agent(fx, "agent", "--nats", fx->url, "--root", fx->dir, "web-ui", (const char *)NULL);
    assert_exit(fx,
                mstack(fx, "publish", "--nats", fx->url, "--type", "interface_changed",
                       "mainstack.interface.changed.user-api",
                       "{\"interface_name\":\"user-api\",\"old_version\":\"1.0.0\","
                       "\"new_version\":\"1.1.0\",\"breaking\":false,\"summary\":\"x\"}"),
                0);
    wait_run_output(fx, "web-ui: act on mainstack.interface.changed.user-api");
    wait_run_output(fx, "run 1 escalated");

    assert_exit(fx, mstack(fx, "escalations", "--root", fx->dir, "--json"), 0);
    list = out_json(fx);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
                        "open");
    json_decref(list);
    assert_exit(fx, mstack(fx, "escalations", "show", "1", "--root", fx->dir), 0);
    assert_contains(fx->out, "failed at step change: exit status 4");
    assert_contains(fx->out, "broken");

    /* fixed: approving resumes the change step, which passes now */
    snprintf(path, sizeof path, "%s/fail", fx->dir);
    unlink(path);
    assert_exit(fx,
                mstack(fx, "escalations", "resolve", "1", "--approve", "--note", "fixed", "--by",
                       "ada", "--root", fx->dir, "--nats", fx->url),
                0);
    assert_contains(fx->out, "resumed run succeeded");
    assert_exit(fx, mstack(fx, "escalations", "resolve", "1", "--reject", "--root", fx->dir), 1);
    assert_contains(fx->err, "already approved by ada");
    assert_exit(fx, mstack(fx, "escalations", "--state", "approved", "--root", fx->dir), 0);
    assert_contains(fx->out, "web-ui");
    /* bad input */
    assert_exit(fx, mstack(fx, "escalations", "show", "x", "--root", fx->dir), 2);
    assert_exit(fx, mstack(fx, "escalations", "show", "99", "--root", fx->dir), 1);
    assert_contains(fx->err, "no escalation 99");
    assert_exit(fx, mstack(fx, "escalations", "resolve", "1", "--root", fx->dir), 2);
    assert_exit(fx, mstack(fx, "escalations", "frobnicate", "--root", fx->dir), 2);
    assert_exit(fx, mstack(fx, "escalations", "--state", "pending", "--root", fx->dir), 2);
    stop_run(fx, SIGTERM);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(help_on_every_verb, setup, teardown),
        cmocka_unit_test_setup_teardown(usage_errors_exit_2, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_json_exit_2, setup, teardown),
        cmocka_unit_test_setup_teardown(connection_refused_exit_6, setup, teardown),
        cmocka_unit_test_setup_teardown(run_unknown_component_exit_1, setup, teardown),
        cmocka_unit_test_setup_teardown(run_not_a_component_exit_1, setup, teardown),
        cmocka_unit_test_setup_teardown(run_request_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(request_remote_error_exit_5, setup, teardown),
        cmocka_unit_test_setup_teardown(no_responders_exit_4, setup, teardown),
        cmocka_unit_test_setup_teardown(request_timeout_exit_3, setup, teardown),
        cmocka_unit_test_setup_teardown(health_and_services, setup, teardown),
        cmocka_unit_test_setup_teardown(health_unhealthy_exit_7, setup, teardown),
        cmocka_unit_test_setup_teardown(sigterm_and_sigint_exit_0, setup, teardown),
        cmocka_unit_test_setup_teardown(sighup_reloads_config, setup, teardown),
        cmocka_unit_test_setup_teardown(live_config_message, setup, teardown),
        cmocka_unit_test_setup_teardown(run_in_process, setup, teardown),
        cmocka_unit_test_setup_teardown(run_loads_the_active_version, setup, teardown),
        cmocka_unit_test_setup_teardown(agent_and_escalations, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
