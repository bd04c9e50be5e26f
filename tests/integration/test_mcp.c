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

typedef struct fixture {
    char root[PATH_MAX];
    char outside[PATH_MAX]; /* a file outside the root */
    ms_nats_server *nats;
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
        "payload.\",\"rationale\":\"Simplest useful echo.\",\"status\":\"accepted\"}],"
        "\"known_issues\":[\"none yet\"]}");
    put(fx, "components/alpha/context/agent-config.json",
        "{\"component\":\"alpha\",\"rules\":[{\"when\":\"error\",\"then\":\"escalate\"}],"
        "\"escalation\":{\"to\":\"ops\"}}");
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
    assert_non_null(strstr(error_message(m), "arguments.limit"));
    json_decref(m);
    m = tool_call(fx, 6, "get_context", "{\"component\":\"alpha\",\"colour\":1}");
    assert_int_equal(error_code(m), -32602);
    assert_non_null(strstr(error_message(m), "arguments.colour"));
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
    assert_non_null(strstr(result_text(m), "arguments.state"));
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
    static const char *const expected[] = {
        "list_components", "get_context",    "publish_message",  "request",           "health",
        "services",        "list_decisions", "list_escalations", "resolve_escalation"};
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
    /* honest: the listing tools are read-only, resolving is not */
    assert_true(json_is_true(
        json_object_get(json_object_get(json_array_get(tools, 0), "annotations"), "readOnlyHint")));
    assert_true(json_is_false(
        json_object_get(json_object_get(json_array_get(tools, 8), "annotations"), "readOnlyHint")));
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

static void stateless_2026_requests(void **state)
{
    fixture *fx = *state;
    json_t *m;
    start(fx);
    /* no initialize: discover, then requests that carry their own version */
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"server/discover\",\"params\":{"
             "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}}",
             "1");
    const json_t *r = result(m);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(r, "supportedVersions"), 0)),
        "2026-07-28");
    assert_string_equal(json_string_value(json_object_get(r, "resultType")), "complete");
    assert_true(json_is_integer(json_object_get(r, "ttlMs")));
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{" META_2026 "}}",
             "2");
    r = result(m);
    assert_string_equal(json_string_value(json_object_get(r, "resultType")), "complete");
    assert_true(json_integer_value(json_object_get(r, "ttlMs")) > 0);
    assert_string_equal(json_string_value(json_object_get(r, "cacheScope")), "public");
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
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"tools/list\",\"params\":{\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\"}}}",
             "6");
    assert_int_equal(error_code(m), -32602); /* clientInfo missing */
    assert_non_null(strstr(error_message(m), "clientInfo"));
    json_decref(m);
    m = call(fx,
             "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\",\"params\":{\"_meta\":{"
             "\"io.modelcontextprotocol/protocolVersion\":\"2030-01-01\"}}}",
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
    /* after the cancel: no response for "long", and the server goes on */
    ms_test_sleep_ms(500);
    json_array_clear(fx->notes);
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
        cmocka_unit_test_setup_teardown(request_publish_over_nats, setup, teardown),
        cmocka_unit_test_setup_teardown(long_request_progress_ping_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(escalation_subscription_updates, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
