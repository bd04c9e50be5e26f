/*
 * test_log.c - logfmt lines (captured through ms_log_set_sink), quoting and
 * escaping, truncation, levels, and the MAINSTACK_LOG variable.
 *
 * MAINSTACK_LOG is read once per process, so env_sets_level_on_first_use is
 * first in the list (CTest also runs each case in its own process) and the
 * other variants run in a child process of this same program.
 */
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ms_test.h"

extern char **environ;

typedef struct capture {
    char lines[8][8192];
    ms_log_level levels[8];
    int n;
} capture;

static capture cap;

static void sink(ms_log_level level, const char *line, void *closure)
{
    capture *c = closure;
    if (c->n < 8) {
        snprintf(c->lines[c->n], sizeof c->lines[0], "%s", line);
        c->levels[c->n] = level;
    }
    c->n++;
}

static int setup(void **state)
{
    memset(&cap, 0, sizeof cap);
    ms_log_set_sink(sink, &cap);
    ms_log_set_level(MS_LOG_TRACE);
    return 0;
}

static int teardown(void **state)
{
    ms_log_set_sink(NULL, NULL);
    ms_log_set_level(MS_LOG_WARN);
    return 0;
}

/* The part of a line after "ts=... " (the time varies). */
static const char *after_ts(const char *line)
{
    const char *sp;
    assert_memory_equal(line, "ts=", 3);
    sp = strchr(line, ' ');
    assert_non_null(sp);
    return sp + 1;
}

/* Runs in a child (see below) or first in a fresh process. */
static void env_sets_level_on_first_use(void **state)
{
    const char *expect = getenv("MS_TEST_EXPECT_LEVEL");
    ms_log_level want;

    if (expect != NULL) { /* child mode: just check and report through the exit code */
        ms_assert_ok(ms_log_level_parse(expect, &want));
        assert_int_equal(ms_log_get_level(), want);
        return;
    }
    assert_int_equal(setenv("MAINSTACK_LOG", "Error", 1), 0);
    assert_int_equal(ms_log_get_level(), MS_LOG_ERROR);
    assert_int_equal(setenv("MAINSTACK_LOG", "trace", 1), 0);
    assert_int_equal(ms_log_get_level(), MS_LOG_ERROR); /* read once */
    assert_int_equal(unsetenv("MAINSTACK_LOG"), 0);
}

static int run_child(const char *mainstack_log, const char *expect)
{
    char exe[4096];
    char e1[64], e2[64];
    char *argv[] = {exe, "env_sets_level_on_first_use", NULL};
    char *envp[] = {e1, e2, NULL};
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    pid_t pid;
    int status = 0;

    if (n <= 0)
        return -1;
    exe[n] = '\0';
    snprintf(e1, sizeof e1, "MS_TEST_EXPECT_LEVEL=%s", expect);
    if (mainstack_log != NULL)
        snprintf(e2, sizeof e2, "MAINSTACK_LOG=%s", mainstack_log);
    else
        snprintf(e2, sizeof e2, "MS_UNUSED=1");
    if (posix_spawn(&pid, exe, NULL, NULL, argv, envp) != 0)
        return -1;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void env_default_and_invalid_is_warn(void **state)
{
    assert_int_equal(run_child(NULL, "warn"), 0);
    assert_int_equal(run_child("nonsense", "warn"), 0);
    assert_int_equal(run_child("DEBUG", "debug"), 0);
    assert_int_equal(run_child("off", "off"), 0);
    /* and the check in the child really can fail */
    assert_int_not_equal(run_child("info", "error"), 0);
}

static void level_names_and_parse(void **state)
{
    static const char *const names[] = {"trace", "debug", "info", "warn", "error", "off"};
    ms_log_level l;

    for (int i = 0; i <= MS_LOG_OFF; i++) {
        assert_string_equal(ms_log_level_name((ms_log_level)i), names[i]);
        ms_assert_ok(ms_log_level_parse(names[i], &l));
        assert_int_equal(l, i);
    }
    ms_assert_ok(ms_log_level_parse("WaRn", &l));
    assert_int_equal(l, MS_LOG_WARN);
    ms_assert_status(ms_log_level_parse("verbose", &l), MS_ERR_PARSE);
    assert_non_null(strstr(ms_last_error(), "verbose"));
    ms_assert_status(ms_log_level_parse("", &l), MS_ERR_PARSE);
    ms_assert_status(ms_log_level_parse(NULL, &l), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_log_level_parse("info", NULL), MS_ERR_INVALID_ARG);
    assert_string_equal(ms_log_level_name((ms_log_level)42), "unknown");
}

static void threshold_filters(void **state)
{
    ms_log_set_level(MS_LOG_WARN);
    assert_int_equal(ms_log_get_level(), MS_LOG_WARN);
    assert_false(ms_log_enabled(MS_LOG_INFO));
    assert_true(ms_log_enabled(MS_LOG_WARN));
    assert_true(ms_log_enabled(MS_LOG_ERROR));
    assert_false(ms_log_enabled(MS_LOG_OFF));
    ms_log_kv(MS_LOG_INFO, "t", "dropped", NULL);
    ms_logf(MS_LOG_DEBUG, "t", "dropped %d", 1);
    ms_log_kv(MS_LOG_ERROR, "t", "kept", NULL);
    assert_int_equal(cap.n, 1);
    assert_int_equal(cap.levels[0], MS_LOG_ERROR);

    ms_log_set_level(MS_LOG_OFF);
    ms_log_kv(MS_LOG_ERROR, "t", "dropped", NULL);
    assert_int_equal(cap.n, 1);
    ms_log_set_level((ms_log_level)77); /* out of range clamps to off */
    assert_int_equal(ms_log_get_level(), MS_LOG_OFF);
}

static void line_format(void **state)
{
    ms_log_kv(MS_LOG_INFO, "bus", "connected", "url", "nats://127.0.0.1:4222", "n", "3", NULL);
    assert_int_equal(cap.n, 1);
    assert_string_equal(after_ts(cap.lines[0]),
                        "level=info mod=bus msg=\"connected\" url=nats://127.0.0.1:4222 n=3");
    /* ts=YYYY-MM-DDTHH:MM:SS.mmmZ */
    assert_int_equal(strchr(cap.lines[0], ' ') - cap.lines[0], 3 + 24);
    assert_int_equal(cap.lines[0][3 + 23], 'Z');
}

static void values_quoted_and_escaped(void **state)
{
    ms_log_kv(MS_LOG_WARN, "m", "say \"hi\"\n", "space", "a b", "eq", "a=b", "quote", "a\"b", "bs",
              "a\\b", "nl", "l1\nl2", "ctl", "a\x01z", "tab", "a\tb", "empty", "", "null", NULL,
              "plain", "ünï-code/ok", NULL);
    assert_string_equal(after_ts(cap.lines[0]),
                        "level=warn mod=m msg=\"say \\\"hi\\\"\\n\" space=\"a b\" eq=\"a=b\" "
                        "quote=\"a\\\"b\" bs=a\\b nl=\"l1\\nl2\" ctl=\"a\\u0001z\" "
                        "tab=\"a\\tb\" empty=\"\" null=\"\" plain=ünï-code/ok");
}

static void keys_are_sanitised(void **state)
{
    ms_log_kv(MS_LOG_INFO, NULL, "m", "bad key", "v", "k=x", "v", NULL);
    assert_string_equal(after_ts(cap.lines[0]), "level=info msg=\"m\" bad_key=v k_x=v");
}

static void long_values_truncated(void **state)
{
    char *big = malloc(20000);
    size_t len;

    assert_non_null(big);
    memset(big, 'x', 19999);
    big[19999] = '\0';
    ms_log_kv(MS_LOG_INFO, "m", "big", "a", big, "b", big, "c", big, "d", big, "e", big, NULL);
    len = strlen(cap.lines[0]);
    assert_true(len < 4096);
    /* each value is cut with "..." and the line stays parseable */
    assert_non_null(strstr(cap.lines[0], "a=xxx"));
    assert_non_null(strstr(cap.lines[0], "x... b=x"));
    assert_memory_equal(cap.lines[0] + len - 4, "x...", 4);

    ms_logf(MS_LOG_INFO, "m", "%s", big);
    len = strlen(cap.lines[1]);
    assert_memory_equal(cap.lines[1] + len - 5, "x...\"", 5);

    /* a quoted value cut in the middle still closes its quote */
    memset(big, ' ', 19999);
    ms_log_kv(MS_LOG_INFO, "m", "big", "q", big, NULL);
    len = strlen(cap.lines[2]);
    assert_memory_equal(cap.lines[2] + len - 5, " ...\"", 5);
    free(big);
}

static void logf_formats(void **state)
{
    ms_logf(MS_LOG_ERROR, "rt", "component %s restarted %d times", "users", 3);
    assert_string_equal(after_ts(cap.lines[0]),
                        "level=error mod=rt msg=\"component users restarted 3 times\"");
}

static void stderr_when_no_sink(void **state)
{
    /* Without a sink the line goes to stderr; redirect fd 2 to a pipe. */
    int fds[2], saved;
    char buf[512];
    ssize_t n;

    ms_log_set_sink(NULL, NULL);
    assert_int_equal(pipe(fds), 0);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_int_equal(dup2(fds[1], 2), 2);
    ms_log_kv(MS_LOG_ERROR, "io", "to stderr", "k", "v", NULL);
    assert_int_equal(dup2(saved, 2), 2);
    close(saved);
    close(fds[1]);
    n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "level=error mod=io msg=\"to stderr\" k=v\n"));
    assert_int_equal(cap.n, 0);
}

typedef struct count_sink {
    int lines;
    int bad;
} count_sink;

/* Called under the log's sink mutex, so plain counters are enough. */
static void counting_sink(ms_log_level level, const char *line, void *closure)
{
    count_sink *c = closure;
    size_t len = strlen(line);
    c->lines++;
    if (strncmp(line, "ts=", 3) != 0 || len < 9 || strcmp(line + len - 9, " n=worker") != 0)
        c->bad++;
}

static void *log_worker(void *arg)
{
    for (int i = 0; i < 500; i++)
        ms_log_kv(MS_LOG_INFO, "thr", "tick", "n", "worker", NULL);
    return arg;
}

static void concurrent_logging_keeps_lines_whole(void **state)
{
    count_sink c = {0, 0};
    pthread_t th[4];

    ms_log_set_sink(counting_sink, &c);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, log_worker, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    ms_log_set_sink(NULL, NULL);
    assert_int_equal(c.lines, 2000);
    assert_int_equal(c.bad, 0);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(env_sets_level_on_first_use),
    cmocka_unit_test(env_default_and_invalid_is_warn),
    cmocka_unit_test(level_names_and_parse),
    cmocka_unit_test_setup_teardown(threshold_filters, setup, teardown),
    cmocka_unit_test_setup_teardown(line_format, setup, teardown),
    cmocka_unit_test_setup_teardown(values_quoted_and_escaped, setup, teardown),
    cmocka_unit_test_setup_teardown(keys_are_sanitised, setup, teardown),
    cmocka_unit_test_setup_teardown(long_values_truncated, setup, teardown),
    cmocka_unit_test_setup_teardown(logf_formats, setup, teardown),
    cmocka_unit_test_setup_teardown(stderr_when_no_sink, setup, teardown),
    cmocka_unit_test_setup_teardown(concurrent_logging_keeps_lines_whole, setup, teardown),
};

MS_TEST_MAIN(tests, NULL, NULL)
