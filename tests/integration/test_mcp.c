/*
 * test_mcp.c - `mstack mcp` over raw pipes: the real build/cli/mstack binary
 * is started with its stdin and stdout on pipes and spoken to one JSON-RPC
 * line at a time, the way an MCP client does.
 *
 * Each case builds a project root in a temporary directory (components with
 * interface.json and context files, one whose context.json is a symlink out
 * of the root), a registry with decisions and escalations where needed, and a
 * real nats-server for the cases that reach NATS. Every line the server
 * writes on stdout must be a JSON-RPC 2.0 message (read_msg checks), so
 * anything else on stdout fails the case. Hang guards (a few seconds) only
 * stop a broken server from blocking the run; nothing here measures speed.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ms_test.h"
#include "nats_fixture.h"

#define GUARD_MS 10000
#define SHA_ZERO "0000000000000000000000000000000000000000000000000000000000000000"

typedef struct fixture {
    char root[PATH_MAX];
    char outside[PATH_MAX]; /* a file outside the root */
    ms_nats_server *nats;
    pid_t host_pid; /* a `mstack run` host, 0 when none */
    pid_t pid;
    int to, from; /* the server's stdin (we write) and stdout (we read) */
    char *buf;
    size_t len, cap;
    json_t *notes; /* notifications read while waiting for responses */
} fixture;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void mkdirs(const char *root, const char *rel)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    assert_true(mkdir(path, 0755) == 0 || errno == EEXIST);
}

static void put(const fixture *fx, const char *rel, const char *text)
{
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", fx->root, rel);
    write_file(path, text);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char tmpl[] = "/tmp/ms-mcp-XXXXXX";
    char link[PATH_MAX * 2];

    assert_non_null(fx);
    assert_non_null(mkdtemp(tmpl));
    snprintf(fx->root, sizeof fx->root, "%s/project", tmpl);
    snprintf(fx->outside, sizeof fx->outside, "%s/secret.json", tmpl);
    write_file(fx->outside, "{\"secret\": \"outside the root\"}");
    assert_int_equal(mkdir(fx->root, 0755), 0);
    mkdirs(fx->root, "components");
    mkdirs(fx->root, "components/alpha");
    mkdirs(fx->root, "components/alpha/context");
    put(fx, "components/alpha/interface.json",
        "{\"name\":\"alpha\",\"version\":\"1.2.0\",\"description\":\"the alpha component\","
        "\"serves\":[{\"subject\":\"component.alpha.echo\",\"name\":\"echo\"}]}");
    put(fx, "components/alpha/context/context.json",
        "{\"component\":\"alpha\",\"version\":\"1.2.0\",\"purpose\":\"Echoes what it gets.\","
        "\"design_decisions\":[{\"id\":\"AD-1\",\"decision\":\"Answer with the request "
        "payload.\",\"rationale\":\"Simplest useful echo.\",\"date\":\"2026-01-05\","
        "\"status\":\"accepted\"}],\"known_issues\":[{\"id\":\"AK-1\",\"description\":"
        "\"none yet\",\"severity\":\"low\"}]}");
    /* the change step (step.sh in the root): waits while <root>/slow exists,
     * fails while <root>/fail exists */
    snprintf(link, sizeof link, "%s/step.sh", fx->root);
    write_file(link, "#!/bin/sh\nwhile [ -e \"$MAINSTACK_ROOT/slow\" ]; do sleep 0.05; done\n"
                     "if [ -e \"$MAINSTACK_ROOT/fail\" ]; then echo broken >&2; exit 4; fi\n"
                     "echo changed\n");
    assert_int_equal(chmod(link, 0755), 0);
    {
        char cfg[PATH_MAX * 2 + 512];
        snprintf(cfg, sizeof cfg,
                 "{\"component\":\"alpha\",\"monitored_topics\":[\"events.alpha.>\"],"
                 "\"autonomy\":{\"level\":\"minor\"},\"rules\":[{\"name\":\"tick-acts\","
                 "\"match\":{\"type\":\"event\",\"subject\":\"events.alpha.tick\"},"
                 "\"decision\":\"act\",\"reason\":\"a tick is handled by the pipeline\"}],"
                 "\"actions\":{\"change\":{\"argv\":[\"%s/step.sh\"],\"timeout_s\":60}},"
                 "\"escalation\":{\"subject\":\"mainstack.escalation.alpha\"}}",
                 fx->root);
        put(fx, "components/alpha/context/agent-config.json", cfg);
    }
    /* the JSON Schemas check_context uses */
    {
        char cmd[PATH_MAX * 3];
        snprintf(cmd, sizeof cmd, "cp -r '%s/schemas' '%s/schemas'", MS_SOURCE_DIR, fx->root);
        assert_int_equal(system(cmd), 0);
    }
    mkdirs(fx->root, "components/beta");
    mkdirs(fx->root, "components/beta/context");
    put(fx, "components/beta/interface.json",
        "{\"name\":\"beta\",\"version\":\"0.1.0\",\"description\":\"beta\"}");
    snprintf(link, sizeof link, "%s/components/beta/context/context.json", fx->root);
    assert_int_equal(symlink(fx->outside, link), 0);
    fx->notes = json_array();
    fx->pid = -1;
    fx->to = -1;
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    char top[PATH_MAX];
    int status;

    if (fx->pid > 0) {
        kill(fx->pid, SIGKILL);
        waitpid(fx->pid, &status, 0);
    }
    if (fx->host_pid > 0) {
        kill(fx->host_pid, SIGKILL);
        waitpid(fx->host_pid, &status, 0);
    }
    if (fx->to >= 0)
        close(fx->to);
    if (fx->from > 0)
        close(fx->from);
    ms_nats_server_stop(fx->nats);
    snprintf(top, sizeof top, "%s", fx->outside);
    *strrchr(top, '/') = '\0';
    nftw(top, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    json_decref(fx->notes);
    free(fx->buf);
    free(fx);
    return 0;
}

static void start_nats(fixture *fx)
{
    ms_assert_ok(ms_nats_server_start(NULL, &fx->nats));
}

/* Start `mstack mcp --root <root> [--nats URL] [extra...]` on pipes. */
static void start_args(fixture *fx, const char *extra1, const char *extra2)
{
    int in[2], out[2];
    pid_t parent = getpid();
    const char *url = fx->nats != NULL ? ms_nats_server_url(fx->nats) : "nats://127.0.0.1:1";
    char *argv[] = {"mstack",    "mcp",          "--root",       fx->root, "--nats",
                    (char *)url, (char *)extra1, (char *)extra2, NULL};

    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    fx->pid = fork();
    assert_true(fx->pid >= 0);
    if (fx->pid == 0) {
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
            _exit(126);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execv(MSTACK_BIN, argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fx->to = in[1];
    fx->from = out[0];
    signal(SIGPIPE, SIG_IGN);
}

static void start(fixture *fx)
{
    start_args(fx, NULL, NULL);
}

static void send_raw(fixture *fx, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fx->to, data, n);
        if (w < 0 && errno == EINTR)
            continue;
        assert_true(w > 0);
        data += w;
        n -= (size_t)w;
    }
}

static void send_line(fixture *fx, const char *line)
{
    send_raw(fx, line, strlen(line));
    send_raw(fx, "\n", 1);
}

/* The next line from the server as JSON (NULL at EOF or after timeout_ms).
 * Every line must be one JSON-RPC 2.0 object. */
static json_t *read_msg(fixture *fx, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;
    for (;;) {
        char *nl = fx->len > 0 ? memchr(fx->buf, '\n', fx->len) : NULL;
        if (nl != NULL) {
            size_t n = (size_t)(nl - fx->buf);
            json_error_t je;
            json_t *v = json_loadb(fx->buf, n, 0, &je);
            if (v == NULL)
                fail_msg("stdout line is not JSON (%s): %.*s", je.text, (int)(n > 300 ? 300 : n),
                         fx->buf);
            assert_true(json_is_object(v));
            assert_string_equal(json_string_value(json_object_get(v, "jsonrpc")), "2.0");
            memmove(fx->buf, nl + 1, fx->len - n - 1);
            fx->len -= n + 1;
            return v;
        }
        int64_t left = deadline - ms_test_now_ms();
        if (left <= 0)
            return NULL;
        struct pollfd pfd = {fx->from, POLLIN, 0};
        int pr = poll(&pfd, 1, (int)left);
        if (pr <= 0)
            continue;
        if (fx->cap - fx->len < 65536) {
            fx->cap = fx->cap * 2 + 65536;
            fx->buf = realloc(fx->buf, fx->cap);
            assert_non_null(fx->buf);
        }
        ssize_t r = read(fx->from, fx->buf + fx->len, fx->cap - fx->len);
        if (r <= 0)
            return NULL;
        fx->len += (size_t)r;
    }
}

/* Read until the response with this id (a JSON value text: "1", "\"a\"");
 * notifications seen meanwhile are kept in fx->notes. */
static json_t *wait_response(fixture *fx, const char *id_json)
{
    json_t *id = json_loads(id_json, JSON_DECODE_ANY, NULL);
    assert_non_null(id);
    for (;;) {
        json_t *m = read_msg(fx, GUARD_MS);
        if (m == NULL)
            fail_msg("no response with id %s", id_json);
        if (json_object_get(m, "method") != NULL && json_object_get(m, "id") == NULL) {
            json_array_append_new(fx->notes, m);
            continue;
        }
        if (json_equal(json_object_get(m, "id"), id)) {
            json_decref(id);
            return m;
        }
        json_decref(m);
    }
}

static json_t *call(fixture *fx, const char *line, const char *id_json)
{
    send_line(fx, line);
    return wait_response(fx, id_json);
}

static int error_code(const json_t *m)
{
    const json_t *e = json_object_get(m, "error");
    assert_non_null(e);
    return (int)json_integer_value(json_object_get(e, "code"));
}

static const char *error_message(const json_t *m)
{
    return json_string_value(json_object_get(json_object_get(m, "error"), "message"));
}

static const json_t *result(const json_t *m)
{
    const json_t *r = json_object_get(m, "result");
    if (r == NULL)
        fail_msg("expected a result, got error %s", error_message(m));
    return r;
}

static void initialize_as(fixture *fx, const char *version)
{
    char line[512];
    json_t *m;
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"%s\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"raw-test\",\"version\":\"1.0\"}}}",
             version);
    m = call(fx, line, "1");
    assert_string_equal(json_string_value(json_object_get(result(m), "protocolVersion")), version);
    json_decref(m);
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
}

static json_t *tool_call(fixture *fx, int id, const char *name, const char *args)
{
    char line[8192], ids[32];
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"%s\",\"arguments\":%s}}",
             id, name, args);
    snprintf(ids, sizeof ids, "%d", id);
    return call(fx, line, ids);
}

static bool is_error_result(const json_t *m)
{
    return json_is_true(json_object_get(result(m), "isError"));
}

static const char *result_text(const json_t *m)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(result(m), "content"), 0), "text"));
}

/* error.data.errors[i].pointer of a -32602 for bad arguments. */
static void assert_error_pointer(const json_t *m, size_t i, const char *pointer)
{
    const json_t *errs =
        json_object_get(json_object_get(json_object_get(m, "error"), "data"), "errors");
    const char *p = json_string_value(json_object_get(json_array_get(errs, i), "pointer"));
    if (p == NULL || strcmp(p, pointer) != 0)
        fail_msg("error pointer %zu: expected %s, got %s (%s)", i, pointer, p ? p : "none",
                 error_message(m));
}

/* Close stdin and expect exit status 0 without a signal. */
static void expect_clean_exit(fixture *fx)
{
    int status = 0;
    int64_t deadline = ms_test_now_ms() + GUARD_MS;
    close(fx->to);
    fx->to = -1;
    for (;;) {
        pid_t r = waitpid(fx->pid, &status, WNOHANG);
        if (r == fx->pid)
            break;
        assert_true(ms_test_now_ms() < deadline);
        ms_test_sleep_ms(10);
    }
    fx->pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* stdout of `mstack context render <root>/components/alpha --stdout`, malloc'd. */
static char *render_alpha(const fixture *fx)
{
    char cmd[PATH_MAX * 3];
    char *text = NULL;
    size_t len = 0, cap = 0;
    FILE *p;

    snprintf(cmd, sizeof cmd, "'%s' context render '%s/components/alpha' --stdout", MSTACK_BIN,
             fx->root);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (;;) {
        if (cap - len < 4096) {
            cap = cap * 2 + 8192;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        size_t got = fread(text + len, 1, cap - len - 1, p);
        len += got;
        if (got == 0)
            break;
    }
    text[len] = '\0';
    assert_int_equal(pclose(p), 0);
    return text;
}

/* --- lifecycle and framing ------------------------------------------------------ */

static void handshake_negotiates_versions(void **state)
{
    fixture *fx = *state;
    static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
    for (size_t i = 0; i < 4; i++) {
        start(fx);
        initialize_as(fx, versions[i]);
        json_t *m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", "2");
        assert_int_equal(json_object_size(result(m)), 0);
        json_decref(m);
        expect_clean_exit(fx);
        close(fx->from);
        fx->from = 0;
        fx->len = 0;
    }
    /* a version this server does not know: it answers with its newest session
     * revision; a repeated initialize is refused */
    start(fx);
    json_t *m = call(fx,
                     "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{"
                     "\"protocolVersion\":\"2099-01-01\",\"capabilities\":{},\"clientInfo\":{"
                     "\"name\":\"x\",\"version\":\"1\"}}}",
                     "1");
    const json_t *r = result(m);
    assert_string_equal(json_string_value(json_object_get(r, "protocolVersion")), "2025-11-25");
    assert_true(json_is_object(json_object_get(json_object_get(r, "capabilities"), "tools")));
    assert_true(json_is_true(json_object_get(
        json_object_get(json_object_get(r, "capabilities"), "resources"), "subscribe")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(r, "serverInfo"), "name")), "mstack-mcp");
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"initialize\",\"params\":{"
             "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{\"name\":"
             "\"x\",\"version\":\"1\"}}}",
             "2");
    assert_int_equal(error_code(m), -32600);
    json_decref(m);
    expect_clean_exit(fx);
}

static void ids_numbers_zero_strings_any_key_order(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx, "{\"id\":0,\"method\":\"ping\",\"jsonrpc\":\"2.0\"}", "0");
    assert_true(json_is_integer(json_object_get(m, "id")));
    assert_int_equal(json_integer_value(json_object_get(m, "id")), 0);
    result(m);
    json_decref(m);
    m = call(fx, "{\"params\":{},\"method\":\"ping\",\"id\":\"req-\\u00e9\",\"jsonrpc\":\"2.0\"}",
             "\"req-\\u00e9\"");
    result(m);
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":-7,\"method\":\"ping\"}\r", "-7");
    result(m);
    json_decref(m);
    /* notifications get no answer: the next line is the ping's */
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/roots/list_changed\"}");
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
                  "\"requestId\":12345}}");
    send_line(fx, "");
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"ping\"}");
    m = read_msg(fx, GUARD_MS);
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "id")), 9);
    json_decref(m);
    expect_clean_exit(fx);
}

static void parse_error_then_serves_on(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    initialize_as(fx, "2025-11-25");
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"");
    m = read_msg(fx, GUARD_MS);
    assert_int_equal(error_code(m), -32700);
    assert_true(json_is_null(json_object_get(m, "id")));
    assert_non_null(strstr(error_message(m), "parse error"));
    json_decref(m);
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"id\":4,\"id\":5,\"method\":\"ping\"}"); /* dup key */
    m = read_msg(fx, GUARD_MS);
    assert_int_equal(error_code(m), -32700);
    json_decref(m);
    send_raw(fx, "\"\xff\xfe\"\n", 5); /* not UTF-8 */
    m = read_msg(fx, GUARD_MS);
    assert_int_equal(error_code(m), -32700);
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}", "6");
    result(m);
    json_decref(m);
    expect_clean_exit(fx);
}

static void invalid_requests_32600(void **state)
{
    fixture *fx = *state;
    static const char *const bad[] = {
        "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", /* batch */
        "42",
        "{\"id\":1,\"method\":\"ping\"}",                        /* no jsonrpc */
        "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}",    /* wrong version */
        "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}", /* null id */
        "{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}",  /* fractional id */
        "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}",   /* object id */
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}",           /* method not a string */
        "{\"jsonrpc\":\"2.0\",\"id\":1}",                        /* no method */
    };
    start(fx);
    initialize_as(fx, "2025-11-25");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        send_line(fx, bad[i]);
        json_t *m = read_msg(fx, GUARD_MS);
        assert_non_null(m);
        if (error_code(m) != -32600)
            fail_msg("%s: code %d (%s)", bad[i], error_code(m), error_message(m));
        json_decref(m);
    }
    expect_clean_exit(fx);
}

static void unknown_method_32601(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"u\",\"method\":\"tools/destroy\"}", "\"u\"");
    assert_int_equal(error_code(m), -32601);
    assert_non_null(strstr(error_message(m), "tools/destroy"));
    json_decref(m);
    expect_clean_exit(fx);
}

static void invalid_params_32602(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    initialize_as(fx, "2025-06-18");
    m = tool_call(fx, 2, "no_such_tool", "{}");
    assert_int_equal(error_code(m), -32602);
    assert_non_null(strstr(error_message(m), "no_such_tool"));
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"tools/call\",\"params\":[1]}", "3");
    assert_int_equal(error_code(m), -32602);
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":{}}", "4");
    assert_int_equal(error_code(m), -32602);
    json_decref(m);
    /* 2025-06-18: arguments that break the inputSchema are invalid params */
    m = tool_call(fx, 5, "list_decisions", "{\"limit\":\"ten\"}");
    assert_int_equal(error_code(m), -32602);
    assert_non_null(strstr(error_message(m), "/limit: expected integer, got string"));
    assert_error_pointer(m, 0, "/limit");
    json_decref(m);
    m = tool_call(fx, 6, "get_context", "{\"component\":\"alpha\",\"colour\":1}");
    assert_int_equal(error_code(m), -32602);
    assert_non_null(strstr(error_message(m), "/colour: property 'colour' is not allowed"));
    assert_error_pointer(m, 0, "/colour");
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"logging/setLevel\",\"params\":{"
             "\"level\":\"loud\"}}",
             "7");
    assert_int_equal(error_code(m), -32602);
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"resources/read\",\"params\":{}}", "8");
    assert_int_equal(error_code(m), -32602);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"prompts/get\",\"params\":{\"name\":"
             "\"nope\"}}",
             "9");
    assert_int_equal(error_code(m), -32602);
    json_decref(m);
    expect_clean_exit(fx);
}

static void requests_before_initialize_refused(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", "1");
    assert_int_equal(error_code(m), -32600);
    assert_non_null(strstr(error_message(m), "initialize"));
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", "2");
    result(m);
    json_decref(m);
    expect_clean_exit(fx);
}

static void tool_failures_are_results(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "get_context", "{\"component\":\"gamma\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "list_components"));
    json_decref(m);
    /* 2025-11-25: schema violations are tool errors the model can correct */
    m = tool_call(fx, 3, "list_escalations", "{\"state\":\"maybe\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "/state: value is not one of the allowed values"));
    json_decref(m);
    m = tool_call(fx, 4, "get_context", "{\"component\":\"alpha\",\"section\":\"nope\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "purpose"));
    json_decref(m);
    /* NATS unreachable: the tool says so and what to do */
    m = tool_call(fx, 5, "request", "{\"subject\":\"component.alpha.echo\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "--nats"));
    json_decref(m);
    expect_clean_exit(fx);
}

static void eof_exits_cleanly(void **state)
{
    fixture *fx = *state;
    start(fx);
    initialize_as(fx, "2025-11-25");
    /* a last request without newline is still answered before the exit */
    const char *last = "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}";
    send_raw(fx, last, strlen(last));
    close(fx->to);
    fx->to = -1;
    json_t *m = read_msg(fx, GUARD_MS);
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "id")), 5);
    json_decref(m);
    assert_null(read_msg(fx, GUARD_MS)); /* then EOF on stdout */
    int status;
    assert_int_equal(waitpid(fx->pid, &status, 0), fx->pid);
    fx->pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void sigterm_exits_cleanly(void **state)
{
    fixture *fx = *state;
    int status;
    start(fx);
    initialize_as(fx, "2025-11-25");
    json_t *m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\"}", "2");
    json_decref(m);
    assert_int_equal(kill(fx->pid, SIGTERM), 0);
    assert_null(read_msg(fx, GUARD_MS));
    assert_int_equal(waitpid(fx->pid, &status, 0), fx->pid);
    fx->pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void oversize_line_refused(void **state)
{
    fixture *fx = *state;
    size_t n = 5u * 1024u * 1024u;
    char *big = malloc(n + 64);
    json_t *m;

    assert_non_null(big);
    start(fx);
    initialize_as(fx, "2025-11-25");
    /* a syntactically valid request whose string argument is 5 MiB */
    int h = snprintf(big, 64, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"x\":\"");
    memset(big + h, 'a', n - (size_t)h - 2);
    memcpy(big + n - 2, "\"}", 2);
    send_raw(fx, big, n);
    send_raw(fx, "\n", 1);
    free(big);
    m = read_msg(fx, GUARD_MS);
    assert_non_null(m);
    assert_int_equal(error_code(m), -32600);
    assert_non_null(strstr(error_message(m), "4194304"));
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ping\"}", "8");
    result(m);
    json_decref(m);
    expect_clean_exit(fx);
}

/* --- features ------------------------------------------------------------------- */

static void tools_list_has_schemas_and_annotations(void **state)
{
    fixture *fx = *state;
    static const char *const expected[] = {"list_components",
                                           "get_context",
                                           "check_context",
                                           "publish_message",
                                           "request",
                                           "health",
                                           "services",
                                           "evaluate_message",
                                           "list_decisions",
                                           "list_escalations",
                                           "resolve_escalation",
                                           "list_runs",
                                           "list_versions",
                                           "history",
                                           "deploy",
                                           "rollback"};
    json_t *m, *t;
    size_t i;

    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\"}", "2");
    const json_t *tools = json_object_get(result(m), "tools");
    assert_int_equal(json_array_size(tools), sizeof expected / sizeof expected[0]);
    json_array_foreach(tools, i, t)
    {
        const json_t *ann = json_object_get(t, "annotations");
        assert_string_equal(json_string_value(json_object_get(t, "name")), expected[i]);
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(t, "inputSchema"), "type")),
            "object");
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(t, "outputSchema"), "type")),
            "object");
        assert_true(json_is_boolean(json_object_get(ann, "readOnlyHint")));
        assert_true(json_is_boolean(json_object_get(ann, "destructiveHint")));
        assert_true(json_is_boolean(json_object_get(ann, "idempotentHint")));
    }
    /* honest: the listing, checking and evaluating tools are read-only;
     * resolving is not (approving runs the agent's commands) */
    static const size_t read_only[] = {0, 1, 2, 5, 6, 7, 8, 9, 11, 12, 13};
    for (i = 0; i < sizeof read_only / sizeof read_only[0]; i++)
        assert_true(json_is_true(json_object_get(
            json_object_get(json_array_get(tools, read_only[i]), "annotations"), "readOnlyHint")));
    const json_t *res_ann = json_object_get(json_array_get(tools, 10), "annotations");
    assert_true(json_is_false(json_object_get(res_ann, "readOnlyHint")));
    assert_true(json_is_true(json_object_get(res_ann, "destructiveHint")));
    assert_true(json_is_false(json_object_get(res_ann, "idempotentHint")));
    /* deploy and rollback change what serves, on other hosts */
    for (i = 14; i <= 15; i++) {
        const json_t *dep_ann = json_object_get(json_array_get(tools, i), "annotations");
        assert_true(json_is_false(json_object_get(dep_ann, "readOnlyHint")));
        assert_true(json_is_true(json_object_get(dep_ann, "destructiveHint")));
        assert_true(json_is_false(json_object_get(dep_ann, "idempotentHint")));
        assert_true(json_is_true(json_object_get(dep_ann, "openWorldHint")));
    }
    json_decref(m);

    /* a call's structuredContent and its text are the same JSON */
    m = tool_call(fx, 3, "list_components", "{}");
    const json_t *sc = json_object_get(result(m), "structuredContent");
    json_t *parsed = json_loads(result_text(m), 0, NULL);
    assert_true(json_equal(parsed, (json_t *)sc));
    json_decref(parsed);
    assert_int_equal(json_array_size(json_object_get(sc, "components")), 2);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(sc, "components"), 0), "version")),
                        "1.2.0");
    json_decref(m);
    m = tool_call(fx, 4, "get_context", "{\"component\":\"alpha\",\"section\":\"purpose\"}");
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(result(m), "structuredContent"), "context"),
            "purpose")),
        "Echoes what it gets.");
    json_decref(m);
    expect_clean_exit(fx);
}

static void resources_templates_and_reads(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/list\"}", "2");
    const json_t *list = json_object_get(result(m), "resources");
    /* alpha: 5; beta: interface.json, escalations (its context.json escapes the
     * root, so neither it nor AGENTS.md is listed) */
    assert_int_equal(json_array_size(list), 7);
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/templates/list\"}", "3");
    assert_int_equal(json_array_size(json_object_get(result(m), "resourceTemplates")), 5);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/alpha/AGENTS.md\"}}",
             "4");
    const json_t *c = json_array_get(json_object_get(result(m), "contents"), 0);
    assert_string_equal(json_string_value(json_object_get(c, "mimeType")), "text/markdown");
    assert_non_null(strstr(json_string_value(json_object_get(c, "text")), "AD-1"));
    assert_non_null(strstr(json_string_value(json_object_get(c, "text")), "Simplest useful"));
    {
        /* the same bytes as `mstack context render` writes */
        char *rendered = render_alpha(fx);
        assert_string_equal(json_string_value(json_object_get(c, "text")), rendered);
        free(rendered);
    }
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/alpha/interface.json\"}}",
             "5");
    c = json_array_get(json_object_get(result(m), "contents"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(c, "text")), "component.alpha.echo"));
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/alpha/escalations\"}}",
             "6");
    c = json_array_get(json_object_get(result(m), "contents"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(c, "text")), "\"escalations\""));
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/zeta/context.json\"}}",
             "7");
    assert_int_equal(error_code(m), -32002);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"file:///etc/passwd\"}}",
             "8");
    assert_int_equal(error_code(m), -32002);
    json_decref(m);
    expect_clean_exit(fx);
}

static void paths_outside_root_refused(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/beta/context.json\"}}",
             "2");
    assert_int_equal(error_code(m), -32602);
    assert_non_null(strstr(error_message(m), "outside the project root"));
    json_decref(m);
    m = tool_call(fx, 3, "get_context", "{\"component\":\"beta\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "outside the project root"));
    assert_null(strstr(result_text(m), "secret\":")); /* nothing of the file */
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/../context.json\"}}",
             "4");
    assert_int_equal(error_code(m), -32002);
    json_decref(m);
    expect_clean_exit(fx);
}

static void component_scope_hides_the_rest(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start_args(fx, "--component", "alpha");
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "list_components", "{}");
    const json_t *list =
        json_object_get(json_object_get(result(m), "structuredContent"), "components");
    assert_int_equal(json_array_size(list), 1);
    json_decref(m);
    m = tool_call(fx, 3, "get_context", "{}"); /* the component is implied */
    assert_false(is_error_result(m));
    json_decref(m);
    m = tool_call(fx, 4, "get_context", "{\"component\":\"beta\"}");
    assert_true(is_error_result(m));
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"resources/list\"}", "5");
    assert_int_equal(json_array_size(json_object_get(result(m), "resources")), 5);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/beta/interface.json\"}}",
             "6");
    assert_int_equal(error_code(m), -32002);
    json_decref(m);
    m = tool_call(fx, 7, "publish_message", "{\"subject\":\"events.beta.x\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "scope"));
    json_decref(m);
    expect_clean_exit(fx);
}

static ms_registry *open_registry(const fixture *fx)
{
    char *path = NULL;
    ms_registry *reg = NULL;
    ms_assert_ok(ms_registry_default_path(fx->root, &path));
    ms_assert_ok(ms_registry_open(path, &reg));
    free(path);
    return reg;
}

static void registry_tools_and_audit(void **state)
{
    fixture *fx = *state;
    ms_registry *reg = open_registry(fx);
    ms_registry_decision d = {
        .component = "alpha", .decision = "escalate", .rule = "r1", .reason = "unsure"};
    int64_t did = 0, eid = 0;
    json_t *m, *log = NULL;
    char args[128];

    ms_assert_ok(ms_registry_record_decision(reg, &d, &did, NULL));
    ms_assert_ok(ms_registry_escalate(reg, "alpha", did, "needs a person", NULL, &eid));
    for (int i = 0; i < 4; i++) {
        d.decision = "ignore";
        ms_assert_ok(ms_registry_record_decision(reg, &d, NULL, NULL));
    }
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "list_decisions", "{\"component\":\"alpha\",\"limit\":3}");
    const json_t *sc = json_object_get(result(m), "structuredContent");
    assert_int_equal(json_array_size(json_object_get(sc, "decisions")), 3);
    json_int_t next = json_integer_value(json_object_get(sc, "next_before_id"));
    assert_true(next > 0);
    json_decref(m);
    snprintf(args, sizeof args, "{\"limit\":3,\"before_id\":%lld}", (long long)next);
    m = tool_call(fx, 3, "list_decisions", args);
    assert_int_equal(json_array_size(json_object_get(
                         json_object_get(result(m), "structuredContent"), "decisions")),
                     2);
    json_decref(m);
    m = tool_call(fx, 4, "list_escalations", "{}");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(result(m), "structuredContent"), "count")),
                     1);
    json_decref(m);
    snprintf(args, sizeof args, "{\"id\":%lld,\"decision\":\"approve\",\"note\":\"ok\"}",
             (long long)eid);
    m = tool_call(fx, 5, "resolve_escalation", args);
    assert_false(is_error_result(m));
    assert_string_equal(
        json_string_value(json_object_get(
            json_object_get(json_object_get(result(m), "structuredContent"), "escalation"),
            "state")),
        "approved");
    json_decref(m);
    m = tool_call(fx, 6, "resolve_escalation", args); /* resolved once only */
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "not open"));
    json_decref(m);
    expect_clean_exit(fx);
    /* both attempts are in the audit log, with the client's name */
    ms_assert_ok(ms_registry_audit_log(reg, "alpha", 0, 10, &log));
    if (json_array_size(log) != 2)
        fail_msg("audit log: %s", json_dumps(log, JSON_COMPACT));
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "actor")),
                        "mcp:raw-test");
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "action")),
                        "escalation.resolve");
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "outcome")),
                        "ok");
    json_decref(log);
    ms_registry_close(reg);
}

static void prompts_compose_context(void **state)
{
    fixture *fx = *state;
    ms_registry *reg = open_registry(fx);
    int64_t eid = 0;
    char line[512], ids[8];
    json_t *m;

    ms_assert_ok(ms_registry_escalate(reg, "alpha", 0, "schema change asked", NULL, &eid));
    ms_registry_close(reg);
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"prompts/list\"}", "2");
    assert_int_equal(json_array_size(json_object_get(result(m), "prompts")), 2);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"prompts/get\",\"params\":{\"name\":"
             "\"maintain_component\",\"arguments\":{\"component\":\"alpha\"}}}",
             "3");
    const char *text = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(result(m), "messages"), 0), "content"),
        "text"));
    assert_non_null(strstr(text, "Echoes what it gets."));
    assert_non_null(strstr(text, "schema change asked"));
    json_decref(m);
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"prompts/get\",\"params\":{\"name\":"
             "\"review_escalation\",\"arguments\":{\"id\":\"%lld\"}}}",
             (long long)eid);
    snprintf(ids, sizeof ids, "4");
    m = call(fx, line, ids);
    text = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(result(m), "messages"), 0), "content"),
        "text"));
    assert_non_null(strstr(text, "resolve_escalation"));
    assert_non_null(strstr(text, "schema change asked"));
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"prompts/get\",\"params\":{\"name\":"
             "\"review_escalation\",\"arguments\":{\"id\":\"x1\"}}}",
             "5");
    assert_int_equal(error_code(m), -32602);
    json_decref(m);
    expect_clean_exit(fx);
}

#define META_2026                                                                                  \
    "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","                       \
    "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"new-client\",\"version\":\"2\"},"          \
    "\"io.modelcontextprotocol/clientCapabilities\":{}}"

/* A 2026-07-28 result names the server in _meta (name and version). */
static void assert_server_info_meta(const json_t *r)
{
    const json_t *info =
        json_object_get(json_object_get(r, "_meta"), "io.modelcontextprotocol/serverInfo");
    assert_string_equal(json_string_value(json_object_get(info, "name")), "mstack-mcp");
    assert_true(json_is_string(json_object_get(info, "version")));
}

/* A -32602 for the _meta envelope: the message and error.data.envelope.key
 * name the key. */
static void assert_envelope_error(const json_t *m, const char *key)
{
    const json_t *env =
        json_object_get(json_object_get(json_object_get(m, "error"), "data"), "envelope");
    assert_int_equal(error_code(m), -32602);
    if (strstr(error_message(m), key) == NULL)
        fail_msg("error message does not name %s: %s", key, error_message(m));
    assert_string_equal(json_string_value(json_object_get(env, "key")), key);
}

/* Every bad per-request envelope of 2026-07-28, and the methods the
 * revision removed; the session revisions are untouched by them. */
static void stateless_2026_envelope_checked(void **state)
{
    static const struct {
        const char *method, *params, *key;
    } bad[] = {
        /* server/discover is a 2026-07-28 method: its params carry the envelope */
        {"server/discover", "{}", "_meta"},
        {"server/discover", "{\"_meta\":{\"io.modelcontextprotocol/clientCapabilities\":{}}}",
         "io.modelcontextprotocol/protocolVersion"},
        {"subscriptions/listen", "{\"notifications\":{}}", "_meta"},
        {"server/discover",
         "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}",
         "io.modelcontextprotocol/clientCapabilities"},
        {"tools/list",
         "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
         "\"io.modelcontextprotocol/clientCapabilities\":[]}}",
         "io.modelcontextprotocol/clientCapabilities"},
        {"tools/list",
         "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":20260728,"
         "\"io.modelcontextprotocol/clientCapabilities\":{}}}",
         "io.modelcontextprotocol/protocolVersion"},
        {"tools/list",
         "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
         "\"io.modelcontextprotocol/clientCapabilities\":{},"
         "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"no-version\"}}}",
         "io.modelcontextprotocol/clientInfo"},
        {"tools/list",
         "{\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
         "\"io.modelcontextprotocol/clientCapabilities\":{},"
         "\"io.modelcontextprotocol/logLevel\":\"loud\"}}",
         "io.modelcontextprotocol/logLevel"},
        {"tools/list", "{\"_meta\":[]}", "_meta"},
    };
    static const char *const removed[] = {"initialize", "ping", "logging/setLevel",
                                          "resources/subscribe", "resources/unsubscribe"};
    fixture *fx = *state;
    char line[1024], ids[16];
    json_t *m;
    int id = 1;

    start(fx);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++, id++) {
        snprintf(line, sizeof line,
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\",\"params\":%s}", id,
                 bad[i].method, bad[i].params);
        snprintf(ids, sizeof ids, "%d", id);
        m = call(fx, line, ids);
        assert_envelope_error(m, bad[i].key);
        json_decref(m);
    }
    /* clientInfo is optional: a request without it is served */
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"server/discover\",\"params\":{\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
             "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
             id);
    snprintf(ids, sizeof ids, "%d", id++);
    m = call(fx, line, ids);
    assert_server_info_meta(result(m));
    json_decref(m);
    /* a session revision named in _meta: -32022 naming what is supported */
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"tools/list\",\"params\":{\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"2025-11-25\","
             "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
             id);
    snprintf(ids, sizeof ids, "%d", id++);
    m = call(fx, line, ids);
    assert_int_equal(error_code(m), -32022);
    const json_t *data = json_object_get(json_object_get(m, "error"), "data");
    assert_string_equal(json_string_value(json_object_get(data, "requested")), "2025-11-25");
    assert_int_equal(json_array_size(json_object_get(data, "supported")), 1);
    assert_string_equal(json_string_value(json_array_get(json_object_get(data, "supported"), 0)),
                        "2026-07-28");
    json_decref(m);
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++, id++) {
        snprintf(line, sizeof line,
                 "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\",\"params\":{\"level\":\"info\","
                 "\"uri\":\"mainstack://components/alpha/escalations\",\"protocolVersion\":"
                 "\"2025-11-25\"," META_2026 "}}",
                 id, removed[i]);
        snprintf(ids, sizeof ids, "%d", id);
        m = call(fx, line, ids);
        assert_int_equal(error_code(m), -32601);
        assert_non_null(strstr(error_message(m), removed[i]));
        json_decref(m);
    }
    /* the session revisions still work on the same server */
    initialize_as(fx, "2025-11-25");
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}", "\"p\"");
    result(m);
    assert_null(json_object_get(result(m), "resultType"));
    json_decref(m);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"t\",\"method\":\"tools/list\"}", "\"t\"");
    assert_null(json_object_get(result(m), "_meta"));
    assert_null(json_object_get(result(m), "ttlMs"));
    json_decref(m);
    expect_clean_exit(fx);
}

static void stateless_2026_requests(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    /* no initialize: discover, then requests that carry their own version */
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{" META_2026
             "}}",
             "1");
    const json_t *r = result(m);
    /* only the revision a client can name in _meta (the session ones are
     * reached through initialize) */
    assert_int_equal(json_array_size(json_object_get(r, "supportedVersions")), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(r, "supportedVersions"), 0)),
        "2026-07-28");
    assert_string_equal(json_string_value(json_object_get(r, "resultType")), "complete");
    assert_true(json_is_integer(json_object_get(r, "ttlMs")));
    assert_true(json_is_object(json_object_get(r, "capabilities")));
    /* the identity is in _meta (DiscoverResult has no serverInfo member) */
    assert_null(json_object_get(r, "serverInfo"));
    assert_server_info_meta(r);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{" META_2026 "}}",
             "2");
    r = result(m);
    assert_string_equal(json_string_value(json_object_get(r, "resultType")), "complete");
    assert_true(json_integer_value(json_object_get(r, "ttlMs")) > 0);
    assert_string_equal(json_string_value(json_object_get(r, "cacheScope")), "public");
    assert_server_info_meta(r);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/zeta/context.json\"," META_2026 "}}",
             "3");
    assert_int_equal(error_code(m), -32602); /* -32002 is gone in 2026-07-28 */
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/read\",\"params\":{"
             "\"uri\":\"mainstack://components/alpha/context.json\"," META_2026 "}}",
             "4");
    assert_string_equal(json_string_value(json_object_get(result(m), "cacheScope")), "private");
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"list_components\",\"arguments\":{}," META_2026 "}}",
             "5");
    assert_string_equal(json_string_value(json_object_get(result(m), "resultType")), "complete");
    assert_false(is_error_result(m));
    assert_server_info_meta(result(m));
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/list\",\"params\":{\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}}",
             "6");
    assert_envelope_error(m, "io.modelcontextprotocol/clientCapabilities");
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\",\"params\":{\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"2030-01-01\","
             "\"io.modelcontextprotocol/clientCapabilities\":{}}}}",
             "7");
    assert_int_equal(error_code(m), -32022);
    const json_t *data = json_object_get(json_object_get(m, "error"), "data");
    assert_string_equal(json_string_value(json_object_get(data, "requested")), "2030-01-01");
    assert_true(json_is_array(json_object_get(data, "supported")));
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"logging/setLevel\",\"params\":{"
             "\"level\":\"info\"," META_2026 "}}",
             "8");
    assert_int_equal(error_code(m), -32601);
    json_decref(m);
    expect_clean_exit(fx);
}

/* --- over NATS ------------------------------------------------------------------- */

static void echo(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    (void)sub;
    (void)closure;
    (void)ms_bus_respond(bus, msg, ms_message_data(msg), ms_message_len(msg));
}

static void ignore(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    (void)bus;
    (void)sub;
    (void)msg;
    (void)closure;
}

static void request_publish_over_nats(void **state)
{
    fixture *fx = *state;
    ms_bus *bus = NULL;
    json_t *m;

    start_nats(fx);
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(fx->nats), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "component.alpha.echo", NULL, echo, NULL, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "events.alpha.>", NULL, ignore, NULL, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "request",
                  "{\"subject\":\"component.alpha.echo\",\"payload\":{\"say\":\"hi\"}}");
    assert_false(is_error_result(m));
    const json_t *sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(json_object_get(sc, "reply"), "say")),
                        "hi");
    json_decref(m);
    m = tool_call(fx, 3, "request", "{\"subject\":\"component.nobody.here\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "no responders"));
    json_decref(m);
    m = tool_call(fx, 4, "publish_message",
                  "{\"subject\":\"events.alpha.tick\",\"payload\":[1,2,3]}");
    assert_true(json_is_true(
        json_object_get(json_object_get(result(m), "structuredContent"), "published")));
    json_decref(m);
    m = tool_call(fx, 5, "publish_message", "{\"subject\":\"events.*\"}");
    assert_true(is_error_result(m));
    json_decref(m);
    m = tool_call(fx, 6, "health", "{\"timeout_ms\":200}");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(result(m), "structuredContent"), "count")),
                     0);
    json_decref(m);
    m = tool_call(fx, 7, "services", "{\"timeout_ms\":200}");
    assert_false(is_error_result(m));
    json_decref(m);
    expect_clean_exit(fx);
    ms_bus_destroy(bus);
}

static void long_request_progress_ping_cancel(void **state)
{
    fixture *fx = *state;
    ms_bus *bus = NULL;
    json_t *m, *n;
    size_t i, progress = 0;
    double last = -1;

    start_nats(fx);
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(fx->nats), &bus));
    /* subscribed, never answers: the request waits for its timeout */
    ms_assert_ok(ms_bus_subscribe(bus, "component.alpha.slow", NULL, ignore, NULL, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    start(fx);
    initialize_as(fx, "2025-11-25");
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"long\",\"method\":\"tools/call\",\"params\":{"
                  "\"name\":\"request\",\"arguments\":{\"subject\":\"component.alpha.slow\","
                  "\"timeout_ms\":60000},\"_meta\":{\"progressToken\":\"tok-1\"}}}");
    /* pings are answered while it runs, and progress arrives, increasing */
    while (progress < 3) {
        m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}", "\"p\"");
        result(m);
        json_decref(m);
        json_array_foreach(fx->notes, i, n)
        {
            const json_t *p = json_object_get(n, "params");
            assert_string_equal(json_string_value(json_object_get(n, "method")),
                                "notifications/progress");
            assert_string_equal(json_string_value(json_object_get(p, "progressToken")), "tok-1");
            assert_true(json_number_value(json_object_get(p, "progress")) > last);
            last = json_number_value(json_object_get(p, "progress"));
            assert_true(json_number_value(json_object_get(p, "total")) == 60000.0);
            progress++;
        }
        json_array_clear(fx->notes);
        ms_test_sleep_ms(100);
    }
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
                  "\"requestId\":\"long\",\"reason\":\"test\"}}");
    /* A progress the server sent before it read the cancel may still be in
     * the pipe: a ping answered after the cancel was read drains it. */
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"drain\",\"method\":\"ping\"}", "\"drain\"");
    json_decref(m);
    json_array_clear(fx->notes);
    /* after the cancel: no response for "long", and the server goes on */
    ms_test_sleep_ms(500);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"after\",\"method\":\"ping\"}", "\"after\"");
    json_decref(m);
    ms_test_sleep_ms(400);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"after2\",\"method\":\"ping\"}", "\"after2\"");
    json_decref(m);
    assert_int_equal(json_array_size(fx->notes), 0); /* no progress after the cancel */
    /* a request without progressToken gets no progress */
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"quiet\",\"method\":\"tools/call\",\"params\":{"
                  "\"name\":\"request\",\"arguments\":{\"subject\":\"component.alpha.slow\","
                  "\"timeout_ms\":700}}}");
    m = wait_response(fx, "\"quiet\"");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "no reply"));
    json_decref(m);
    assert_int_equal(json_array_size(fx->notes), 0);
    /* EOF while a long request runs: the process still exits */
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"eof\",\"method\":\"tools/call\",\"params\":{"
                  "\"name\":\"request\",\"arguments\":{\"subject\":\"component.alpha.slow\","
                  "\"timeout_ms\":600000}}}");
    expect_clean_exit(fx);
    ms_bus_destroy(bus);
}

static void escalation_subscription_updates(void **state)
{
    fixture *fx = *state;
    ms_bus *bus = NULL;
    json_t *m;

    start_nats(fx);
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(fx->nats), &bus));
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/subscribe\",\"params\":{"
             "\"uri\":\"mainstack://components/alpha/context.json\"}}",
             "2");
    assert_int_equal(error_code(m), -32602); /* files do not change while served */
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"resources/subscribe\",\"params\":{"
             "\"uri\":\"mainstack://components/alpha/escalations\"}}",
             "3");
    result(m);
    json_decref(m);
    ms_assert_ok(ms_bus_publish(bus, "mainstack.escalation.beta", "{}", 2)); /* not subscribed */
    ms_assert_ok(ms_bus_publish(bus, "mainstack.escalation.alpha", "{\"id\":1}", 8));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    m = read_msg(fx, GUARD_MS);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "method")),
                        "notifications/resources/updated");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "params"), "uri")),
                        "mainstack://components/alpha/escalations");
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"resources/unsubscribe\",\"params\":{"
             "\"uri\":\"mainstack://components/alpha/escalations\"}}",
             "4");
    json_decref(m);
    ms_assert_ok(ms_bus_publish(bus, "mainstack.escalation.alpha", "{\"id\":2}", 8));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"ping\"}", "5");
    json_decref(m);
    ms_test_sleep_ms(200);
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"ping\"}", "6");
    json_decref(m);
    assert_int_equal(json_array_size(fx->notes), 0);
    expect_clean_exit(fx);
    ms_bus_destroy(bus);
}

/* The next notification with this method (others are skipped), or NULL. */
static json_t *next_note(fixture *fx, const char *method)
{
    for (;;) {
        json_t *m = read_msg(fx, GUARD_MS);
        if (m == NULL)
            return NULL;
        const char *got = json_string_value(json_object_get(m, "method"));
        if (got != NULL && strcmp(got, method) == 0)
            return m;
        json_decref(m);
    }
}

static const char *subscription_id(const json_t *m)
{
    return json_string_value(json_object_get(json_object_get(json_object_get(m, "params"), "_meta"),
                                             "io.modelcontextprotocol/subscriptionId"));
}

/* subscriptions/listen (2026-07-28): the acknowledgement names what is
 * honoured, updates carry the subscription id, cancelling ends it, and a
 * server stopping on SIGTERM closes the open ones with their result. */
static void stateless_2026_listen(void **state)
{
    fixture *fx = *state;
    ms_bus *bus = NULL;
    json_t *m;
    int status;

    start_nats(fx);
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(fx->nats), &bus));
    start(fx);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":\"bad\",\"method\":\"subscriptions/listen\",\"params\":{"
             "\"notifications\":{\"toolsListChanged\":\"yes\"}," META_2026 "}}",
             "\"bad\"");
    assert_int_equal(error_code(m), -32602);
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":\"none\",\"method\":\"subscriptions/"
             "listen\",\"params\":{" META_2026 "}}",
             "\"none\"");
    assert_int_equal(error_code(m), -32602); /* notifications is required */
    json_decref(m);
    /* tools never change here (listChanged false): not honoured; the
     * context file is no live resource: left out too */
    send_line(fx,
              "{\"jsonrpc\":\"2.0\",\"id\":\"L1\",\"method\":\"subscriptions/listen\",\"params\":{"
              "\"notifications\":{\"toolsListChanged\":true,\"resourceSubscriptions\":["
              "\"mainstack://components/alpha/escalations\","
              "\"mainstack://components/alpha/context.json\"]}," META_2026 "}}");
    m = read_msg(fx, GUARD_MS);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "method")),
                        "notifications/subscriptions/acknowledged");
    assert_string_equal(subscription_id(m), "L1");
    const json_t *honored = json_object_get(json_object_get(m, "params"), "notifications");
    assert_int_equal(json_object_size(honored), 1);
    assert_int_equal(json_array_size(json_object_get(honored, "resourceSubscriptions")), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(honored, "resourceSubscriptions"), 0)),
        "mainstack://components/alpha/escalations");
    json_decref(m);
    /* a filter naming nothing the server sends: acknowledged empty */
    send_line(fx,
              "{\"jsonrpc\":\"2.0\",\"id\":\"L2\",\"method\":\"subscriptions/listen\",\"params\":{"
              "\"notifications\":{\"promptsListChanged\":true}," META_2026 "}}");
    m = next_note(fx, "notifications/subscriptions/acknowledged");
    assert_non_null(m);
    assert_string_equal(subscription_id(m), "L2");
    assert_int_equal(
        json_object_size(json_object_get(json_object_get(m, "params"), "notifications")), 0);
    json_decref(m);
    ms_assert_ok(ms_bus_publish(bus, "mainstack.escalation.alpha", "{\"id\":1}", 8));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    m = next_note(fx, "notifications/resources/updated");
    assert_non_null(m);
    assert_string_equal(subscription_id(m), "L1");
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "params"), "uri")),
                        "mainstack://components/alpha/escalations");
    json_decref(m);
    /* cancelled: no response, no update after */
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
                  "\"requestId\":\"L1\"}}");
    /* answered after the cancellation was handled (lines are read in order) */
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"tools/list\",\"params\":{" META_2026 "}}",
             "9");
    json_decref(m);
    ms_assert_ok(ms_bus_publish(bus, "mainstack.escalation.alpha", "{\"id\":2}", 8));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    ms_test_sleep_ms(200);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":10,\"method\":\"tools/list\",\"params\":{" META_2026 "}}",
             "10");
    json_decref(m);
    for (size_t i = 0; i < json_array_size(fx->notes); i++)
        assert_string_not_equal(
            json_string_value(json_object_get(json_array_get(fx->notes, i), "method")),
            "notifications/resources/updated");
    /* SIGTERM: L2 (still open) gets its closing result, L1 nothing */
    assert_int_equal(kill(fx->pid, SIGTERM), 0);
    m = read_msg(fx, GUARD_MS);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "id")), "L2");
    const json_t *r = result(m);
    assert_string_equal(json_string_value(json_object_get(r, "resultType")), "complete");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(r, "_meta"), "io.modelcontextprotocol/subscriptionId")),
                        "L2");
    assert_server_info_meta(r);
    json_decref(m);
    assert_null(read_msg(fx, GUARD_MS));
    assert_int_equal(waitpid(fx->pid, &status, 0), fx->pid);
    fx->pid = -1;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    ms_bus_destroy(bus);
}

/* --- validator-based argument errors ---------------------------------------------- */

typedef struct bad_args {
    const char *tool, *args, *pointer, *message;
} bad_args;

static const bad_args bad_cases[] = {
    /* a bad type */
    {"list_decisions", "{\"limit\":\"ten\"}", "/limit", "expected integer, got string"},
    {"get_context", "{\"component\":7}", "/component", "expected string, got integer"},
    /* a missing required argument: the pointer names it */
    {"resolve_escalation", "{\"decision\":\"approve\"}", "/id", "missing required property 'id'"},
    {"evaluate_message", "{\"component\":\"alpha\",\"type\":\"event\"}", "/subject",
     "missing required property 'subject'"},
    /* an unknown argument (additionalProperties: false) */
    {"list_runs", "{\"colour\":\"red\"}", "/colour", "property 'colour' is not allowed"},
    {"check_context", "{\"a/b~c\":1}", "/a~1b~0c", "property 'a/b~c' is not allowed"},
    /* a bad enum */
    {"resolve_escalation", "{\"id\":1,\"decision\":\"maybe\"}", "/decision",
     "value is not one of the allowed values (\"approve\", \"reject\")"},
    /* bounds, and a nested one */
    {"list_runs", "{\"limit\":0}", "/limit", "less than the minimum of 1"},
    {"evaluate_message",
     "{\"component\":\"alpha\",\"subject\":\"a.b\",\"type\":\"event\",\"headers\":{\"X\":5}}",
     "/headers/X", "matches none of the 2 alternatives of anyOf"},
};

static void argument_errors_name_the_pointer(void **state)
{
    fixture *fx = *state;
    json_t *m;
    char expect[512];

    /* before 2025-11-25: -32602, error.data.errors[] with the pointer */
    start(fx);
    initialize_as(fx, "2025-06-18");
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_args *b = &bad_cases[i];
        m = tool_call(fx, (int)i + 10, b->tool, b->args);
        if (json_object_get(m, "error") == NULL)
            fail_msg("%s %s: no error", b->tool, b->args);
        assert_int_equal(error_code(m), -32602);
        assert_error_pointer(m, 0, b->pointer);
        snprintf(expect, sizeof expect, "%s: ", b->pointer);
        if (strstr(error_message(m), expect) == NULL ||
            strstr(error_message(m), b->message) == NULL)
            fail_msg("%s %s: %s", b->tool, b->args, error_message(m));
        json_decref(m);
    }
    /* several errors at once: each named */
    m = tool_call(fx, 40, "list_decisions", "{\"limit\":\"x\",\"extra\":1}");
    assert_error_pointer(m, 0, "/limit");
    assert_error_pointer(m, 1, "/extra");
    json_decref(m);
    expect_clean_exit(fx);
    close(fx->from);
    fx->from = 0;
    fx->len = 0;

    /* 2025-11-25: the same as a tool error the model can correct */
    start(fx);
    initialize_as(fx, "2025-11-25");
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_args *b = &bad_cases[i];
        m = tool_call(fx, (int)i + 10, b->tool, b->args);
        assert_true(is_error_result(m));
        snprintf(expect, sizeof expect, "%s: %s", b->pointer, b->message);
        if (strstr(result_text(m), b->message) == NULL ||
            strstr(result_text(m), b->pointer) == NULL)
            fail_msg("%s %s: %s", b->tool, b->args, result_text(m));
        json_decref(m);
    }
    expect_clean_exit(fx);
}

/* --- every tool's structuredContent against its outputSchema ---------------------- */

typedef struct out_schemas {
    char name[32][64];
    ms_schema *schema[32];
    size_t n;
} out_schemas;

static void load_out_schemas(fixture *fx, out_schemas *os)
{
    json_t *m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"tl\",\"method\":\"tools/list\"}", "\"tl\"");
    const json_t *tools = json_object_get(result(m), "tools");
    size_t i;
    json_t *t;

    memset(os, 0, sizeof *os);
    json_array_foreach(tools, i, t)
    {
        assert_true(os->n < 32);
        snprintf(os->name[os->n], sizeof os->name[0], "%s",
                 json_string_value(json_object_get(t, "name")));
        ms_assert_ok(ms_schema_compile(json_object_get(t, "outputSchema"), os->name[os->n],
                                       &os->schema[os->n]));
        /* the inputSchema uses only what the validator supports, too */
        ms_schema *in = NULL;
        ms_assert_ok(ms_schema_compile(json_object_get(t, "inputSchema"), "in", &in));
        ms_schema_destroy(in);
        os->n++;
    }
    json_decref(m);
}

static void free_out_schemas(out_schemas *os)
{
    for (size_t i = 0; i < os->n; i++)
        ms_schema_destroy(os->schema[i]);
}

/* Check the result of a call of tool against its outputSchema; returns its
 * structuredContent (borrowed from m). */
static const json_t *check_output(const out_schemas *os, const char *tool, const json_t *m)
{
    const json_t *sc = json_object_get(result(m), "structuredContent");
    json_t *parsed;
    if (is_error_result(m))
        fail_msg("%s: isError: %s", tool, result_text(m));
    assert_non_null(sc);
    for (size_t i = 0; i < os->n; i++) {
        if (strcmp(os->name[i], tool) != 0)
            continue;
        if (ms_schema_validate(os->schema[i], sc, 0, NULL, NULL) != MS_OK)
            fail_msg("%s: structuredContent breaks the outputSchema: %s", tool, ms_last_error());
        parsed = json_loads(result_text(m), 0, NULL);
        assert_true(json_equal(parsed, (json_t *)sc));
        json_decref(parsed);
        return sc;
    }
    fail_msg("no tool %s in tools/list", tool);
    return NULL;
}

static void every_tool_output_matches_schema(void **state)
{
    fixture *fx = *state;
    ms_registry *reg;
    ms_bus *bus = NULL;
    ms_registry_decision d = {
        .component = "alpha", .decision = "act", .rule = "tick-acts", .reason = "tick"};
    int64_t did = 0, eid = 0, run = 0;
    out_schemas os;
    char args[256];
    json_t *m, *detail;
    size_t called = 0;

    start_nats(fx);
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(fx->nats), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "component.alpha.echo", NULL, echo, NULL, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    reg = open_registry(fx);
    ms_assert_ok(ms_registry_record_decision(reg, &d, &did, NULL));
    ms_assert_ok(ms_registry_run_begin(reg, "alpha", did, &run));
    detail = json_pack("{s:i}", "exit_code", 0);
    ms_assert_ok(ms_registry_run_update(reg, run, "change", "running", detail));
    json_decref(detail);
    ms_assert_ok(ms_registry_escalate(reg, "alpha", did, "needs a person", NULL, &eid));
    ms_assert_ok(ms_registry_version_add(reg, "alpha", "1.2.0", SHA_ZERO, fx->root, NULL, NULL));
    start(fx);
    initialize_as(fx, "2025-11-25");
    load_out_schemas(fx, &os);
    snprintf(args, sizeof args, "{\"id\":%lld,\"decision\":\"reject\",\"note\":\"n\"}",
             (long long)eid);
    const struct {
        const char *tool, *args;
    } calls[] = {
        {"list_components", "{}"},
        {"get_context", "{\"component\":\"alpha\"}"},
        {"get_context", "{\"component\":\"alpha\",\"section\":\"design_decisions\"}"},
        {"check_context", "{}"},
        {"check_context", "{\"component\":\"alpha\"}"},
        {"publish_message", "{\"subject\":\"events.alpha.tick\",\"payload\":{\"n\":1}}"},
        {"request", "{\"subject\":\"component.alpha.echo\",\"payload\":{\"x\":1}}"},
        {"health", "{\"timeout_ms\":200}"},
        {"services", "{\"timeout_ms\":200}"},
        {"evaluate_message",
         "{\"component\":\"alpha\",\"subject\":\"events.alpha.tick\",\"type\":\"event\","
         "\"payload\":{},\"id\":\"m-1\",\"headers\":{\"X-A\":\"1\",\"X-B\":[\"2\",\"3\"]}}"},
        {"list_decisions", "{}"},
        {"list_escalations", "{\"state\":\"any\"}"},
        {"list_runs", "{}"},
        {"resolve_escalation", args},
        {"list_versions", "{\"component\":\"alpha\"}"},
        {"history", "{\"component\":\"alpha\",\"limit\":5}"},
        {"deploy", "{\"component\":\"alpha\",\"version\":\"1.2.0\"}"},
        {"rollback", "{\"component\":\"alpha\"}"},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        m = tool_call(fx, 100 + (int)i, calls[i].tool, calls[i].args);
        (void)check_output(&os, calls[i].tool, m);
        json_decref(m);
    }
    snprintf(args, sizeof args, "{\"id\":%lld}", (long long)run);
    m = tool_call(fx, 200, "list_runs", args);
    const json_t *sc = check_output(&os, "list_runs", m);
    assert_int_equal(
        json_array_size(json_object_get(json_array_get(json_object_get(sc, "runs"), 0), "steps")),
        1);
    json_decref(m);
    /* every listed tool was called */
    for (size_t k = 0; k < os.n; k++) {
        bool seen = false;
        for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++)
            seen = seen || strcmp(calls[i].tool, os.name[k]) == 0;
        if (!seen)
            fail_msg("tool %s has no call here", os.name[k]);
        called++;
    }
    assert_int_equal(called, 16);
    free_out_schemas(&os);
    expect_clean_exit(fx);
    ms_registry_close(reg);
    ms_bus_destroy(bus);
}

/* --- check_context ------------------------------------------------------------------- */

static void check_context_findings(void **state)
{
    fixture *fx = *state;
    json_t *m, *f;
    size_t i;
    bool syntax = false;

    /* gamma: a context/ directory (so checked) with a syntax error */
    mkdirs(fx->root, "components/gamma");
    mkdirs(fx->root, "components/gamma/context");
    put(fx, "components/gamma/context/context.json", "{\"component\": \"gamma\",\n  oops}");
    put(fx, "components/gamma/context/agent-config.json",
        "{\"component\":\"gamma\",\"autonomy\":{\"level\":\"observe\"}}");
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "check_context", "{}");
    const json_t *sc = json_object_get(result(m), "structuredContent");
    assert_false(is_error_result(m));
    assert_string_equal(json_string_value(json_object_get(sc, "scope")), "project");
    /* beta's context.json leaves the root: skipped, never read */
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(sc, "skipped"), 0), "component")),
                        "beta");
    assert_int_equal(json_array_size(json_object_get(sc, "components_checked")), 2);
    assert_true(json_integer_value(json_object_get(sc, "errors")) >= 1);
    assert_int_equal(json_integer_value(json_object_get(sc, "count")),
                     json_array_size(json_object_get(sc, "findings")));
    json_array_foreach(json_object_get(sc, "findings"), i, f)
    {
        const char *file = json_string_value(json_object_get(f, "file"));
        assert_non_null(json_string_value(json_object_get(f, "level")));
        assert_non_null(json_string_value(json_object_get(f, "code")));
        assert_non_null(json_string_value(json_object_get(f, "message")));
        assert_non_null(file);
        assert_null(strstr(result_text(m), "secret")); /* nothing of the file outside */
        if (strcmp(file, "components/gamma/context/context.json") == 0 &&
            strcmp(json_string_value(json_object_get(f, "code")), "syntax") == 0) {
            syntax = true;
            assert_string_equal(json_string_value(json_object_get(f, "level")), "error");
            assert_int_equal(json_integer_value(json_object_get(f, "line")), 2);
            char loc[32];
            snprintf(loc, sizeof loc, "2:%lld",
                     (long long)json_integer_value(json_object_get(f, "column")));
            assert_string_equal(json_string_value(json_object_get(f, "location")), loc);
        }
    }
    assert_true(syntax);
    json_decref(m);
    /* one component: only the findings in its files */
    m = tool_call(fx, 3, "check_context", "{\"component\":\"alpha\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "scope")), "alpha");
    json_array_foreach(json_object_get(sc, "findings"), i, f)
    {
        const char *file = json_string_value(json_object_get(f, "file"));
        if (strncmp(file, "components/alpha/", 17) != 0)
            fail_msg("finding outside alpha: %s", file);
    }
    json_decref(m);
    m = tool_call(fx, 4, "check_context", "{\"component\":\"zeta\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "list_components"));
    json_decref(m);
    expect_clean_exit(fx);
    /* --component alpha: the scope is fixed, others are not named */
    close(fx->from);
    fx->from = 0;
    fx->len = 0;
    start_args(fx, "--component", "alpha");
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "check_context", "{}");
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "scope")), "alpha");
    assert_int_equal(json_array_size(json_object_get(sc, "components_checked")), 1);
    assert_null(strstr(result_text(m), "gamma"));
    json_decref(m);
    expect_clean_exit(fx);
}

/* --- evaluate_message ------------------------------------------------------------------ */

static void evaluate_message_is_a_dry_run(void **state)
{
    fixture *fx = *state;
    ms_registry *reg;
    json_t *m, *rows = NULL;

    start(fx);
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "evaluate_message",
                  "{\"component\":\"alpha\",\"subject\":\"events.alpha.tick\",\"type\":\"event\","
                  "\"payload\":{\"n\":1},\"id\":\"ev-1\"}");
    const json_t *sc = json_object_get(result(m), "structuredContent");
    assert_false(is_error_result(m));
    assert_string_equal(json_string_value(json_object_get(sc, "decision")), "act");
    assert_string_equal(json_string_value(json_object_get(sc, "rule")), "tick-acts");
    assert_non_null(strstr(json_string_value(json_object_get(sc, "reason")), "pipeline"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(sc, "message"), "id")),
                        "ev-1");
    json_decref(m);
    /* not on a monitored topic, no rule: ignored by the default policy */
    m = tool_call(fx, 3, "evaluate_message",
                  "{\"component\":\"alpha\",\"subject\":\"orders.created\",\"type\":\"event\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "decision")), "ignore");
    assert_int_equal(strncmp(json_string_value(json_object_get(sc, "rule")), "default:", 8), 0);
    json_decref(m);
    /* a monitored topic no rule covers: escalate */
    m = tool_call(fx, 4, "evaluate_message",
                  "{\"component\":\"alpha\",\"subject\":\"events.alpha.other\",\"type\":"
                  "\"event\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "decision")), "escalate");
    json_decref(m);
    /* bad input: a clear tool error */
    m = tool_call(fx, 5, "evaluate_message",
                  "{\"component\":\"beta\",\"subject\":\"a.b\",\"type\":\"event\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "outside the project root"));
    json_decref(m);
    m = tool_call(fx, 6, "evaluate_message",
                  "{\"component\":\"alpha\",\"subject\":\"a.*\",\"type\":\"event\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "wildcards"));
    json_decref(m);
    m = tool_call(fx, 7, "evaluate_message",
                  "{\"component\":\"gamma\",\"subject\":\"a.b\",\"type\":\"event\"}");
    assert_true(is_error_result(m));
    json_decref(m);
    expect_clean_exit(fx);
    /* nothing was recorded */
    reg = open_registry(fx);
    ms_assert_ok(ms_registry_decisions(reg, NULL, 0, 10, &rows));
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    ms_assert_ok(ms_registry_runs(reg, NULL, 0, 10, &rows));
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    ms_registry_close(reg);
}

/* --- resolve_escalation resumes the work ---------------------------------------------- */

/* An escalated decision of alpha with what the pipeline needs to resume. */
static int64_t escalate_alpha(ms_registry *reg)
{
    ms_registry_decision d = {
        .component = "alpha", .decision = "escalate", .rule = "r", .reason = "a person decides"};
    int64_t did = 0, eid = 0;
    json_t *detail = json_pack("{s:{s:{s:s, s:s}}}", "input", "message", "subject",
                               "events.alpha.tick", "type", "event");
    ms_assert_ok(ms_registry_record_decision(reg, &d, &did, NULL));
    ms_assert_ok(ms_registry_escalate(reg, "alpha", did, "a person decides", detail, &eid));
    json_decref(detail);
    return eid;
}

static void touch(const fixture *fx, const char *name, bool present)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", fx->root, name);
    if (present)
        write_file(path, "");
    else
        (void)unlink(path);
}

static bool progress_seen(const fixture *fx, const char *text)
{
    size_t i;
    json_t *n;
    json_array_foreach(fx->notes, i, n)
    {
        const char *msg =
            json_string_value(json_object_get(json_object_get(n, "params"), "message"));
        if (strcmp(json_string_value(json_object_get(n, "method")), "notifications/progress") ==
                0 &&
            msg != NULL && strstr(msg, text) != NULL)
            return true;
    }
    return false;
}

static void resolve_escalation_resumes_the_work(void **state)
{
    fixture *fx = *state;
    ms_registry *reg = open_registry(fx);
    int64_t eid = escalate_alpha(reg), eid2;
    json_t *m, *log = NULL, *rows = NULL;
    char line[512], args[256];
    double last = -1;
    size_t i;
    json_t *n;

    start(fx);
    initialize_as(fx, "2025-11-25");
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"resolve_escalation\",\"arguments\":{\"id\":%lld,\"decision\":\"approve\","
             "\"note\":\"go\"},\"_meta\":{\"progressToken\":\"rt\"}}}",
             (long long)eid);
    m = call(fx, line, "2");
    const json_t *sc = json_object_get(result(m), "structuredContent");
    assert_false(is_error_result(m));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(sc, "escalation"), "state")), "approved");
    assert_string_equal(json_string_value(json_object_get(sc, "run_state")), "succeeded");
    assert_true(json_is_true(json_object_get(sc, "resumed")));
    assert_true(json_is_false(json_object_get(sc, "cut_short")));
    json_decref(m);
    /* progress: resolved, then the run's end, increasing */
    assert_true(progress_seen(fx, "resolved"));
    assert_true(progress_seen(fx, "resumed run ended: succeeded"));
    json_array_foreach(fx->notes, i, n)
    {
        const json_t *p = json_object_get(n, "params");
        assert_string_equal(json_string_value(json_object_get(p, "progressToken")), "rt");
        assert_true(json_number_value(json_object_get(p, "progress")) > last);
        last = json_number_value(json_object_get(p, "progress"));
    }
    json_array_clear(fx->notes);
    /* the run is there, with its step */
    m = tool_call(fx, 3, "list_runs", "{\"component\":\"alpha\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_int_equal(json_integer_value(json_object_get(sc, "count")), 1);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(sc, "runs"), 0), "state")),
        "succeeded");
    json_decref(m);
    /* failing again: a new escalation says why */
    touch(fx, "fail", true);
    eid2 = escalate_alpha(reg);
    snprintf(args, sizeof args, "{\"id\":%lld,\"decision\":\"approve\"}", (long long)eid2);
    m = tool_call(fx, 4, "resolve_escalation", args);
    sc = json_object_get(result(m), "structuredContent");
    assert_false(is_error_result(m));
    assert_string_equal(json_string_value(json_object_get(sc, "run_state")), "escalated");
    assert_true(json_integer_value(json_object_get(sc, "new_escalation_id")) > eid2);
    json_decref(m);
    assert_int_equal(json_array_size(fx->notes), 0); /* no progressToken: no progress */
    /* paging over the runs */
    m = tool_call(fx, 5, "list_runs", "{\"limit\":1}");
    sc = json_object_get(result(m), "structuredContent");
    json_int_t next = json_integer_value(json_object_get(sc, "next_before_id"));
    assert_true(next > 0);
    json_decref(m);
    snprintf(args, sizeof args, "{\"limit\":1,\"before_id\":%lld}", (long long)next);
    m = tool_call(fx, 6, "list_runs", args);
    sc = json_object_get(result(m), "structuredContent");
    assert_int_equal(json_integer_value(json_object_get(sc, "count")), 1);
    assert_true(json_integer_value(
                    json_object_get(json_array_get(json_object_get(sc, "runs"), 0), "id")) < next);
    json_decref(m);
    expect_clean_exit(fx);
    /* audited with the client's name and how the run ended */
    ms_assert_ok(ms_registry_audit_log(reg, "alpha", 0, 10, &log));
    assert_int_equal(json_array_size(log), 2);
    const json_t *first = json_array_get(log, 1);
    assert_string_equal(json_string_value(json_object_get(first, "actor")), "mcp:raw-test");
    assert_string_equal(json_string_value(json_object_get(first, "outcome")), "ok");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(first, "detail"), "run_state")),
        "succeeded");
    json_decref(log);
    ms_assert_ok(ms_registry_decisions(reg, "alpha", 0, 10, &rows));
    json_decref(rows);
    ms_registry_close(reg);
}

/* An escalation left at the pipeline's deploy step ("ready to deploy"):
 * approving it deploys, so over MCP it takes the may_deploy gate. alpha's
 * agent-config leaves may_deploy false: refused, naming the command a
 * person runs, the escalation still open. Rejecting is not gated. */
static void resolve_escalation_deploy_step_gated(void **state)
{
    fixture *fx = *state;
    ms_registry *reg = open_registry(fx);
    ms_registry_decision d = {
        .component = "alpha", .decision = "act", .rule = "r", .reason = "ship it"};
    int64_t did = 0, eid = 0;
    json_t *detail = json_pack("{s:I, s:s, s:s, s:{s:{s:s, s:s}}}", "run_id", (json_int_t)1, "step",
                               "deploy", "version", "1.2.0", "input", "message", "subject",
                               "events.alpha.tick", "type", "event");
    json_t *m, *esc = NULL;
    char args[128];

    ms_assert_ok(ms_registry_record_decision(reg, &d, &did, NULL));
    ms_assert_ok(ms_registry_escalate(reg, "alpha", did,
                                      "alpha 1.2.0 passed test-both: ready to "
                                      "deploy; approve to deploy it",
                                      detail, &eid));
    json_decref(detail);
    start(fx);
    initialize_as(fx, "2025-11-25");
    snprintf(args, sizeof args, "{\"id\":%lld,\"decision\":\"approve\"}", (long long)eid);
    m = tool_call(fx, 2, "resolve_escalation", args);
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "deploys alpha 1.2.0"));
    assert_non_null(strstr(result_text(m), "may_deploy is false"));
    assert_non_null(strstr(result_text(m), "mstack escalations resolve"));
    json_decref(m);
    ms_assert_ok(ms_registry_escalation_get(reg, eid, &esc));
    assert_string_equal(json_string_value(json_object_get(esc, "state")), "open");
    json_decref(esc);
    /* rejecting is not gated */
    snprintf(args, sizeof args, "{\"id\":%lld,\"decision\":\"reject\"}", (long long)eid);
    m = tool_call(fx, 3, "resolve_escalation", args);
    assert_false(is_error_result(m));
    json_decref(m);
    ms_assert_ok(ms_registry_escalation_get(reg, eid, &esc));
    assert_string_equal(json_string_value(json_object_get(esc, "state")), "rejected");
    json_decref(esc);
    expect_clean_exit(fx);
    ms_registry_close(reg);
}

static void resolve_escalation_cancelled(void **state)
{
    fixture *fx = *state;
    ms_registry *reg = open_registry(fx);
    int64_t eid = escalate_alpha(reg);
    json_t *m, *log = NULL, *esc = NULL, *rows = NULL;
    char line[512];
    int64_t deadline;

    touch(fx, "slow", true); /* the change step waits */
    start(fx);
    initialize_as(fx, "2025-11-25");
    snprintf(line, sizeof line,
             "{\"jsonrpc\":\"2.0\",\"id\":\"r\",\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"resolve_escalation\",\"arguments\":{\"id\":%lld,\"decision\":\"approve\"},"
             "\"_meta\":{\"progressToken\":7}}}",
             (long long)eid);
    send_line(fx, line);
    /* wait until the run is at work: progress says so */
    deadline = ms_test_now_ms() + GUARD_MS;
    while (!progress_seen(fx, "resumed run")) {
        assert_true(ms_test_now_ms() < deadline);
        m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}", "\"p\"");
        json_decref(m);
        ms_test_sleep_ms(50);
    }
    assert_true(progress_seen(fx, "resolved"));
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
                  "\"requestId\":\"r\",\"reason\":\"test\"}}");
    /* the run ends without the slow file being removed: it was stopped */
    deadline = ms_test_now_ms() + GUARD_MS;
    for (;;) {
        ms_assert_ok(ms_registry_runs(reg, "alpha", 0, 1, &rows));
        const char *st = json_string_value(json_object_get(json_array_get(rows, 0), "state"));
        bool ended = st != NULL && strcmp(st, "running") != 0;
        json_decref(rows);
        if (ended)
            break;
        assert_true(ms_test_now_ms() < deadline);
        ms_test_sleep_ms(50);
    }
    /* no response for the cancelled request; the server serves on */
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"after\",\"method\":\"ping\"}", "\"after\"");
    json_decref(m);
    expect_clean_exit(fx);
    /* consistent: the resolution stays, the cut-short run is escalated anew,
     * and the audit log says it was cut short */
    ms_assert_ok(ms_registry_escalation_get(reg, eid, &esc));
    assert_string_equal(json_string_value(json_object_get(esc, "state")), "approved");
    json_decref(esc);
    ms_assert_ok(ms_registry_escalations(reg, "alpha", "open", 0, 10, &rows));
    assert_int_equal(json_array_size(rows), 1);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(rows, 0), "reason")),
                           "cancelled at step change"));
    json_decref(rows);
    ms_assert_ok(ms_registry_audit_log(reg, "alpha", 0, 10, &log));
    assert_int_equal(json_array_size(log), 1);
    const json_t *detail = json_object_get(json_array_get(log, 0), "detail");
    assert_true(json_is_true(json_object_get(detail, "cut_short")));
    assert_string_equal(json_string_value(json_object_get(detail, "run_state")), "cancelled");
    json_decref(log);
    touch(fx, "slow", false);
    ms_registry_close(reg);
}

/* --- deploy and rollback ------------------------------------------------------------ */

static void count_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    (void)bus;
    (void)sub;
    (void)msg;
    atomic_fetch_add((atomic_int *)closure, 1);
}

/* alpha's agent-config leaves may_deploy at false: deploy and rollback
 * record an escalation, announce it, deploy nothing, and say so. */
static void deploy_not_allowed_escalates(void **state)
{
    fixture *fx = *state;
    ms_registry *reg;
    ms_bus *bus = NULL;
    ms_subscription *sub = NULL;
    json_t *m, *rows = NULL, *log = NULL;
    atomic_int seen = 0;
    const json_t *sc;
    int64_t deadline;

    start_nats(fx);
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(fx->nats), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "mainstack.escalation.alpha", NULL, count_msg, &seen, &sub));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    reg = open_registry(fx);
    ms_assert_ok(ms_registry_version_add(reg, "alpha", "1.2.0", SHA_ZERO, fx->root, NULL, NULL));
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "deploy", "{\"component\":\"alpha\",\"version\":\"1.2.0\"}");
    assert_false(is_error_result(m));
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "outcome")), "escalated");
    assert_true(json_is_false(json_object_get(sc, "deployed")));
    assert_true(json_is_true(json_object_get(sc, "escalated")));
    assert_non_null(
        strstr(json_string_value(json_object_get(sc, "message")), "may_deploy is false"));
    assert_non_null(strstr(result_text(m), "mcp:raw-test asked to deploy alpha 1.2.0"));
    json_int_t eid = json_integer_value(json_object_get(sc, "escalation_id"));
    assert_true(eid > 0);
    json_decref(m);
    /* the escalation is recorded with who asked, and announced */
    ms_assert_ok(ms_registry_escalations(reg, "alpha", "open", 0, 10, &rows));
    assert_int_equal(json_array_size(rows), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), eid);
    assert_non_null(strstr(json_string_value(json_object_get(json_array_get(rows, 0), "reason")),
                           "mcp:raw-test"));
    json_decref(rows);
    deadline = ms_test_now_ms() + GUARD_MS;
    while (atomic_load(&seen) == 0) {
        assert_true(ms_test_now_ms() < deadline);
        ms_test_sleep_ms(20);
    }
    /* rollback is gated the same way */
    m = tool_call(fx, 3, "rollback", "{\"component\":\"alpha\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "outcome")), "escalated");
    assert_string_equal(json_string_value(json_object_get(sc, "action")), "rollback");
    json_decref(m);
    /* nothing was deployed: the version is untouched, no deployment exists */
    m = tool_call(fx, 4, "list_versions", "{\"component\":\"alpha\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_int_equal(json_integer_value(json_object_get(sc, "count")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(sc, "versions"), 0), "state")),
                        "candidate");
    json_decref(m);
    m = tool_call(fx, 5, "history", "{\"component\":\"alpha\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_int_equal(json_integer_value(json_object_get(sc, "count")), 0);
    json_decref(m);
    /* an unrecorded version is a tool error naming what to do */
    m = tool_call(fx, 6, "deploy", "{\"component\":\"alpha\",\"version\":\"9.9.9\"}");
    assert_true(is_error_result(m));
    assert_non_null(strstr(result_text(m), "list_versions"));
    json_decref(m);
    expect_clean_exit(fx);
    /* audited with the client's name */
    ms_assert_ok(ms_registry_audit_log(reg, "alpha", 0, 10, &log));
    assert_int_equal(json_array_size(log), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "actor")),
                        "mcp:raw-test");
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "action")),
                        "deploy");
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 1), "outcome")),
                        "escalated");
    json_decref(log);
    ms_subscription_unsubscribe(sub);
    ms_bus_destroy(bus);
    ms_registry_close(reg);
}

/* A component whose agent-config allows deploying, with recorded swapver
 * builds (mstack version add). */
static void add_swapver(fixture *fx, const char *const *plugins, size_t n)
{
    char cmd[PATH_MAX * 3];

    mkdirs(fx->root, "components/swapver");
    mkdirs(fx->root, "components/swapver/context");
    put(fx, "components/swapver/interface.json",
        "{\"name\":\"swapver\",\"version\":\"1.1.0\",\"description\":\"swaps\"}");
    put(fx, "components/swapver/context/context.json",
        "{\"component\":\"swapver\",\"version\":\"1.1.0\",\"purpose\":\"Swaps versions.\"}");
    put(fx, "components/swapver/context/agent-config.json",
        "{\"component\":\"swapver\",\"monitored_topics\":[\"events.swapver.>\"],"
        "\"autonomy\":{\"level\":\"minor\",\"may_deploy\":true}}");
    for (size_t i = 0; i < n; i++) {
        snprintf(cmd, sizeof cmd, "'%s' version add swapver '%s/%s.so' --root '%s' >/dev/null",
                 MSTACK_BIN, MS_TEST_PLUGINS_DIR, plugins[i], fx->root);
        assert_int_equal(system(cmd), 0);
    }
}

/* may_deploy true: the tests run, the candidate passes, the promotion finds
 * no host running swapver (no host is started here: the multi-host switch
 * is test_deploy_cli's) and says so; progress follows the phases. */
static void deploy_allowed_runs_the_steps(void **state)
{
    fixture *fx = *state;
    static const char *const plugins[] = {"swapver_t1"};
    ms_registry *reg;
    json_t *m, *log = NULL, *rows = NULL, *n;
    const json_t *sc;
    double last = 0;
    size_t i, nprog = 0;

    add_swapver(fx, plugins, 1);
    start_nats(fx);
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":{\"name\":"
             "\"deploy\",\"arguments\":{\"component\":\"swapver\",\"version\":\"1.1.0\","
             "\"timeout_ms\":20000},\"_meta\":{\"progressToken\":\"d\"}}}",
             "2");
    if (is_error_result(m))
        fail_msg("deploy failed: %s", result_text(m));
    sc = json_object_get(result(m), "structuredContent");
    assert_true(json_is_false(json_object_get(sc, "escalated")));
    assert_string_equal(json_string_value(json_object_get(sc, "outcome")), "no-hosts");
    assert_true(json_is_false(json_object_get(sc, "deployed")));
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(sc, "promotion"), "report"), "error")),
                        "no running host runs the component: tested but not serving");
    /* the candidate's own tests ran and passed */
    assert_true(json_array_size(json_object_get(json_object_get(sc, "detail"), "table")) > 0);
    assert_int_equal(json_array_size(json_object_get(json_object_get(sc, "detail"), "failures")),
                     0);
    json_decref(m);
    /* progress: each phase, increasing, only for this token */
    json_array_foreach(fx->notes, i, n)
    {
        const json_t *p = json_object_get(n, "params");
        if (strcmp(json_string_value(json_object_get(n, "method")), "notifications/progress") != 0)
            continue;
        assert_string_equal(json_string_value(json_object_get(p, "progressToken")), "d");
        assert_true(json_number_value(json_object_get(p, "progress")) > last);
        last = json_number_value(json_object_get(p, "progress"));
        nprog++;
    }
    assert_true(progress_seen(fx, "taking the deploy lock"));
    assert_true(progress_seen(fx, "testing the candidate 1.1.0"));
    assert_true(progress_seen(fx, "comparing"));
    assert_true(progress_seen(fx, "promoting swapver 1.1.0"));
    assert_true(progress_seen(fx, "no-hosts"));
    assert_int_equal(nprog, 5); /* no active version: no test of it */
    /* history and list_versions see it: tested, not serving, a candidate again */
    m = tool_call(fx, 3, "history", "{\"component\":\"swapver\"}");
    sc = json_object_get(result(m), "structuredContent");
    assert_int_equal(json_integer_value(json_object_get(sc, "count")), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(sc, "deployments"), 0), "state")),
                        "no-hosts");
    json_decref(m);
    m = tool_call(fx, 4, "list_versions", "{\"component\":\"swapver\"}");
    sc = json_object_get(result(m), "structuredContent");
    const json_t *v = json_array_get(json_object_get(sc, "versions"), 0);
    assert_string_equal(json_string_value(json_object_get(v, "state")), "candidate");
    assert_int_equal(strlen(json_string_value(json_object_get(v, "sha256"))), 64);
    assert_true(json_array_size(json_object_get(v, "history")) >= 2);
    json_decref(m);
    /* rollback with nothing to return to: the tool says why */
    m = tool_call(fx, 5, "rollback", "{\"component\":\"swapver\"}");
    assert_true(is_error_result(m));
    json_decref(m);
    expect_clean_exit(fx);
    reg = open_registry(fx);
    ms_assert_status(ms_registry_deploy_lock_get(reg, "swapver", &rows), MS_ERR_NOT_FOUND);
    ms_assert_ok(ms_registry_audit_log(reg, "swapver", 0, 20, &log));
    bool by_client = false;
    json_array_foreach(log, i, n)
    {
        by_client = by_client ||
                    (strcmp(json_string_value(json_object_get(n, "actor")), "mcp:raw-test") == 0 &&
                     strcmp(json_string_value(json_object_get(n, "action")), "deploy") == 0);
    }
    assert_true(by_client);
    json_decref(log);
    ms_registry_close(reg);
}

/* A `mstack run` host of swapver on the case's server, serving the artifact
 * of version; returns once it printed its serving line. */
static void start_host(fixture *fx, const char *version)
{
    char art[PATH_MAX + 64], out[PATH_MAX + 16], data[PATH_MAX + 16];
    int64_t deadline = ms_test_now_ms() + 60000;

    snprintf(art, sizeof art, "%s/.mainstack/artifacts/swapver/%s/swapver.so", fx->root, version);
    snprintf(out, sizeof out, "%s/host.out", fx->root);
    snprintf(data, sizeof data, "%s/host-data", fx->root);
    fx->host_pid = fork();
    assert_true(fx->host_pid >= 0);
    if (fx->host_pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char *argv[] = {"mstack",
                        "run",
                        "--nats",
                        (char *)ms_nats_server_url(fx->nats),
                        "--data-dir",
                        data,
                        "--health-interval",
                        "0",
                        art,
                        NULL};
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            close(fd);
        }
        execv(MSTACK_BIN, argv);
        _exit(127);
    }
    for (;;) {
        FILE *f = fopen(out, "r");
        char line[512];
        bool serving = false;
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            serving = serving || strncmp(line, "serving", 7) == 0;
        if (f != NULL)
            fclose(f);
        if (serving)
            return;
        if (ms_test_now_ms() > deadline)
            fail_msg("the mstack run host did not serve within 60 s");
        ms_test_sleep_ms(20);
    }
}

static void assert_host_serves(fixture *fx, const char *version)
{
    ms_bus *bus = NULL;
    ms_message *reply = NULL;
    char want[64];

    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(fx->nats), &bus));
    ms_assert_ok(ms_bus_request(bus, "component.swapver.echo", "ping", 4, 5000, &reply));
    snprintf(want, sizeof want, "%s:ping", version);
    if (ms_message_len(reply) != strlen(want) ||
        memcmp(ms_message_data(reply), want, strlen(want)) != 0)
        fail_msg("the host answered '%.*s', want '%s'", (int)ms_message_len(reply),
                 (const char *)ms_message_data(reply), want);
    ms_message_unref(reply);
    ms_bus_destroy(bus);
}

/* The success path over MCP with a real host: 1.1.0 made active (the host
 * already serves it), 1.2.0 tested against it, promoted on the host and
 * watched until permanent (deployed true), then rolled back to 1.1.0. */
static void deploy_promotes_on_a_host_then_rollback(void **state)
{
    fixture *fx = *state;
    static const char *const plugins[] = {"swapver_t1", "swapver_t2"};
    json_t *m;
    const json_t *sc;

    add_swapver(fx, plugins, 2);
    start_nats(fx);
    start_host(fx, "1.1.0");
    start(fx);
    initialize_as(fx, "2025-11-25");
    m = tool_call(fx, 2, "deploy",
                  "{\"component\":\"swapver\",\"version\":\"1.1.0\",\"watch_ms\":0}");
    if (is_error_result(m))
        fail_msg("deploy 1.1.0 failed: %s", result_text(m));
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "outcome")), "promoted");
    assert_true(json_is_true(json_object_get(sc, "deployed")));
    json_decref(m);
    m = tool_call(fx, 3, "deploy",
                  "{\"component\":\"swapver\",\"version\":\"1.2.0\",\"watch_ms\":300}");
    if (is_error_result(m))
        fail_msg("deploy 1.2.0 failed: %s", result_text(m));
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "outcome")), "permanent");
    assert_true(json_is_true(json_object_get(sc, "deployed")));
    /* test both ran: 1.1.0 and 1.2.0 side by side */
    assert_string_equal(json_string_value(json_object_get(json_object_get(sc, "detail"), "active")),
                        "1.1.0");
    json_decref(m);
    assert_host_serves(fx, "1.2.0");
    m = tool_call(fx, 4, "list_versions", "{\"component\":\"swapver\"}");
    assert_non_null(strstr(result_text(m), "\"active\""));
    json_decref(m);
    m = tool_call(fx, 5, "rollback", "{\"component\":\"swapver\"}");
    if (is_error_result(m))
        fail_msg("rollback failed: %s", result_text(m));
    sc = json_object_get(result(m), "structuredContent");
    assert_string_equal(json_string_value(json_object_get(sc, "outcome")), "rolled-back");
    assert_true(json_is_true(json_object_get(sc, "deployed")));
    json_decref(m);
    assert_host_serves(fx, "1.1.0");
    /* a watch_ms out of range is refused before anything runs */
    m = tool_call(fx, 6, "deploy",
                  "{\"component\":\"swapver\",\"version\":\"1.2.0\",\"watch_ms\":-1}");
    assert_true(is_error_result(m)); /* 2025-11-25: a tool error the model can correct */
    assert_non_null(strstr(result_text(m), "watch_ms"));
    json_decref(m);
    expect_clean_exit(fx);
}

/* A cancel while the candidate is tested stops before the promotion: no
 * response, the deployment is recorded cancelled, the lock is released and
 * the version is a candidate again (what was active keeps serving). */
static void deploy_cancelled_before_the_switch(void **state)
{
    fixture *fx = *state;
    static const char *const plugins[] = {"swapver_thang"};
    ms_registry *reg;
    json_t *m, *rows = NULL, *lock = NULL;
    int64_t deadline;

    add_swapver(fx, plugins, 1);
    start_nats(fx);
    start(fx);
    initialize_as(fx, "2025-11-25");
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"d\",\"method\":\"tools/call\",\"params\":{"
                  "\"name\":\"deploy\",\"arguments\":{\"component\":\"swapver\",\"version\":"
                  "\"1.4.0\",\"timeout_ms\":1500},\"_meta\":{\"progressToken\":1}}}");
    deadline = ms_test_now_ms() + GUARD_MS;
    while (!progress_seen(fx, "testing the candidate")) {
        assert_true(ms_test_now_ms() < deadline);
        m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"p\",\"method\":\"ping\"}", "\"p\"");
        json_decref(m);
        ms_test_sleep_ms(20);
    }
    send_line(fx, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{"
                  "\"requestId\":\"d\",\"reason\":\"test\"}}");
    reg = open_registry(fx);
    deadline = ms_test_now_ms() + 3 * GUARD_MS;
    for (;;) {
        const char *st;
        bool ended;
        ms_assert_ok(ms_registry_deployments(reg, "swapver", 0, 1, &rows));
        st = json_string_value(json_object_get(json_array_get(rows, 0), "state"));
        ended = st != NULL && strcmp(st, "cancelled") == 0;
        json_decref(rows);
        if (ended && ms_registry_deploy_lock_get(reg, "swapver", &lock) == MS_ERR_NOT_FOUND)
            break;
        json_decref(lock);
        lock = NULL;
        assert_true(ms_test_now_ms() < deadline);
        ms_test_sleep_ms(50);
    }
    /* no response for the cancelled call, and the server serves on */
    m = call(fx, "{\"jsonrpc\":\"2.0\",\"id\":\"after\",\"method\":\"ping\"}", "\"after\"");
    json_decref(m);
    assert_false(progress_seen(fx, "promoting"));
    ms_assert_ok(ms_registry_version_get(reg, "swapver", "1.4.0", &rows));
    assert_string_equal(json_string_value(json_object_get(rows, "state")), "candidate");
    json_decref(rows);
    expect_clean_exit(fx);
    ms_registry_close(reg);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(handshake_negotiates_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(ids_numbers_zero_strings_any_key_order, setup, teardown),
        cmocka_unit_test_setup_teardown(parse_error_then_serves_on, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_requests_32600, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_method_32601, setup, teardown),
        cmocka_unit_test_setup_teardown(invalid_params_32602, setup, teardown),
        cmocka_unit_test_setup_teardown(requests_before_initialize_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(tool_failures_are_results, setup, teardown),
        cmocka_unit_test_setup_teardown(eof_exits_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(sigterm_exits_cleanly, setup, teardown),
        cmocka_unit_test_setup_teardown(oversize_line_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(tools_list_has_schemas_and_annotations, setup, teardown),
        cmocka_unit_test_setup_teardown(resources_templates_and_reads, setup, teardown),
        cmocka_unit_test_setup_teardown(paths_outside_root_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(component_scope_hides_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(registry_tools_and_audit, setup, teardown),
        cmocka_unit_test_setup_teardown(prompts_compose_context, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_2026_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_2026_envelope_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(stateless_2026_listen, setup, teardown),
        cmocka_unit_test_setup_teardown(request_publish_over_nats, setup, teardown),
        cmocka_unit_test_setup_teardown(long_request_progress_ping_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(escalation_subscription_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(argument_errors_name_the_pointer, setup, teardown),
        cmocka_unit_test_setup_teardown(every_tool_output_matches_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(check_context_findings, setup, teardown),
        cmocka_unit_test_setup_teardown(evaluate_message_is_a_dry_run, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_escalation_resumes_the_work, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_escalation_deploy_step_gated, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_promotes_on_a_host_then_rollback, setup, teardown),
        cmocka_unit_test_setup_teardown(resolve_escalation_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_not_allowed_escalates, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_allowed_runs_the_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_cancelled_before_the_switch, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
