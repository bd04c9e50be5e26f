/*
 * test_proc.c - the external-command runner (proc.h) against real programs
 * of the system (/bin/sh, cat, sleep, printf, env, pwd, head).
 *
 * Each case checks what the child saw or did (its output, the log file, the
 * processes left behind, the descriptors of this process), never how fast.
 * Upper bounds on durations are generous correctness checks: a run killed at
 * its time limit must not run on to the next one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "ms_test.h"

#define SEC_NS 1000000000LL

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* No child of this process left, running or zombie. */
static void assert_no_children(void)
{
    int st;
    pid_t r = waitpid(-1, &st, WNOHANG);
    if (r != -1 || errno != ECHILD)
        fail_msg("a child is left behind: waitpid(-1) = %d (%s)", (int)r, strerror(errno));
}

/* Is pid gone (or a zombie waiting for its new parent to reap it)? */
static bool process_gone(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *paren = strrchr(buf, ')');
    return paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X');
}

static ms_status run(const char *const *argv, ms_proc_result *res)
{
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.timeout_ms = 10000;
    return ms_proc_run(&s, res);
}

static void make_tmpdir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/ms_test_proc_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* --- exits, signals, argv ------------------------------------------------- */

static void test_exit_codes(void **state)
{
    ms_proc_result r;
    ms_proc_result_init(&r);
    const char *ok[] = {"/bin/sh", "-c", "exit 0", NULL};
    ms_assert_ok(run(ok, &r));
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.term_signal, 0);
    assert_false(r.timed_out);
    assert_false(r.spawn_failed);
    assert_true(r.duration_ns > 0);
    const char *three[] = {"sh", "-c", "echo out; echo err >&2; exit 3", NULL};
    ms_assert_ok(run(three, &r));
    assert_int_equal(r.exit_code, 3);
    assert_string_equal(r.output, "out\nerr\n");
    assert_int_equal(r.output_len, 8);
    assert_int_equal(r.output_bytes, 8);
    assert_false(r.output_truncated);
    ms_proc_result_reset(&r);
    assert_null(r.output);
    assert_no_children();
}

static void test_killed_by_signal(void **state)
{
    ms_proc_result r;
    ms_proc_result_init(&r);
    const char *argv[] = {"/bin/sh", "-c", "kill -USR1 $$", NULL};
    ms_assert_ok(run(argv, &r));
    assert_int_equal(r.exit_code, -1);
    assert_int_equal(r.term_signal, SIGUSR1);
    assert_false(r.timed_out);
    ms_proc_result_reset(&r);
}

static void test_argv_passed_literally(void **state)
{
    ms_proc_result r;
    ms_proc_result_init(&r);
    /* every shell metacharacter reaches printf as is: no shell in between */
    const char *argv[] = {
        "printf", "[%s]\\n", "a b", "\"q\" 'x'", "$(echo hi)", "`id`", "; rm -rf /tmp/nothing",
        "*",      "$HOME",   "",    NULL};
    ms_assert_ok(run(argv, &r));
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output, "[a b]\n[\"q\" 'x']\n[$(echo hi)]\n[`id`]\n"
                                  "[; rm -rf /tmp/nothing]\n[*]\n[$HOME]\n[]\n");
    ms_proc_result_reset(&r);
}

/* --- environment, stdin, cwd ---------------------------------------------- */

static void test_env_added_and_replaced(void **state)
{
    assert_int_equal(setenv("MS_TEST_INHERITED", "from-host", 1), 0);
    assert_int_equal(setenv("MS_TEST_REPLACED", "old", 1), 0);
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    const char *argv[] = {"env", NULL};
    const char *env[] = {"MAINSTACK_SUBJECT=events.user.created", "MS_TEST_REPLACED=first",
                         "MS_TEST_REPLACED=new $(x) value", "MAINSTACK_EMPTY=", NULL};
    s.argv = argv;
    s.env = env;
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.output, "\nMS_TEST_INHERITED=from-host\n"));
    assert_non_null(strstr(r.output, "MAINSTACK_SUBJECT=events.user.created\n"));
    assert_non_null(strstr(r.output, "MS_TEST_REPLACED=new $(x) value\n"));
    assert_non_null(strstr(r.output, "MAINSTACK_EMPTY=\n"));
    assert_null(strstr(r.output, "MS_TEST_REPLACED=old"));
    assert_null(strstr(r.output, "MS_TEST_REPLACED=first"));
    ms_proc_result_reset(&r);
    unsetenv("MS_TEST_INHERITED");
    unsetenv("MS_TEST_REPLACED");
}

static void test_clear_env(void **state)
{
    assert_int_equal(setenv("MS_TEST_INHERITED", "from-host", 1), 0);
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    const char *argv[] = {"env", NULL};
    const char *env[] = {"A=1", NULL};
    s.argv = argv;
    s.env = env;
    s.clear_env = true;
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    char want[4096];
    snprintf(want, sizeof want, "PATH=%s\nA=1\n", getenv("PATH"));
    assert_string_equal(r.output, want);
    ms_proc_result_reset(&r);
    unsetenv("MS_TEST_INHERITED");
}

static void test_env_path_used_for_lookup(void **state)
{
    /* PATH from the spec's env is the one argv[0] is looked up in */
    char dir[64], prog[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(prog, sizeof prog, "%s/ms-hello", dir);
    FILE *f = fopen(prog, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\necho hello from $0\n", f);
    fclose(f);
    assert_int_equal(chmod(prog, 0700), 0);
    char path[256];
    snprintf(path, sizeof path, "PATH=/nonexistent:%s:/bin:/usr/bin", dir);
    const char *env[] = {path, NULL};
    const char *argv[] = {"ms-hello", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.env = env;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    char want[256];
    snprintf(want, sizeof want, "hello from %s\n", prog);
    assert_string_equal(r.output, want);
    ms_proc_result_reset(&r);
    unlink(prog);
    rmdir(dir);
}

static void test_stdin_json_reaches_child(void **state)
{
    const char *json = "{\"subject\":\"events.user.created\",\"payload\":{\"id\":42,"
                       "\"name\":\"a \\\"quoted\\\" $(name)\"}}";
    const char *argv[] = {"/bin/cat", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.stdin_data = json;
    s.stdin_len = strlen(json);
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output, json);
    assert_int_equal(r.stdin_written, strlen(json));
    /* no stdin data: the child reads /dev/null */
    s.stdin_data = NULL;
    s.stdin_len = 0;
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output, "");
    ms_proc_result_reset(&r);
}

static void test_cwd(void **state)
{
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    const char *argv[] = {"/bin/sh", "-c", "pwd -P", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.cwd = dir;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    char real[4096], want[4200];
    assert_non_null(realpath(dir, real));
    snprintf(want, sizeof want, "%s\n", real);
    assert_string_equal(r.output, want);
    assert_int_equal(rmdir(dir), 0);
    /* a cwd that does not exist: a spawn failure naming it */
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_NOT_FOUND);
    assert_true(r.spawn_failed);
    assert_int_equal(r.spawn_errno, ENOENT);
    assert_non_null(strstr(r.error, dir));
    assert_non_null(strstr(ms_last_error(), "cwd"));
    ms_proc_result_reset(&r);
}

/* --- spawn failures ------------------------------------------------------- */

static void test_missing_command(void **state)
{
    int fds = count_fds();
    ms_proc_result r;
    ms_proc_result_init(&r);
    const char *argv[] = {"ms-no-such-command-xyz", "arg", NULL};
    ms_assert_status(run(argv, &r), MS_ERR_NOT_FOUND);
    assert_true(r.spawn_failed);
    assert_int_equal(r.spawn_errno, ENOENT);
    assert_int_equal(r.exit_code, -1); /* not "127" */
    assert_non_null(strstr(r.error, "ms-no-such-command-xyz"));
    assert_non_null(strstr(r.error, strerror(ENOENT)));
    assert_non_null(strstr(r.error, "PATH"));
    assert_string_equal(ms_last_error(), r.error);
    const char *abs[] = {"/nonexistent/dir/tool", NULL};
    ms_assert_status(run(abs, &r), MS_ERR_NOT_FOUND);
    assert_non_null(strstr(r.error, "/nonexistent/dir/tool"));
    ms_proc_result_reset(&r);
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

static void test_not_executable(void **state)
{
    char dir[64], file[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(file, sizeof file, "%s/script.sh", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("#!/bin/sh\necho should not run\n", f);
    fclose(f);
    assert_int_equal(chmod(file, 0644), 0);
    ms_proc_result r;
    ms_proc_result_init(&r);
    const char *argv[] = {file, NULL};
    /* (root too: exec needs an x bit) */
    ms_assert_status(run(argv, &r), MS_ERR_IO);
    assert_true(r.spawn_failed);
    assert_int_equal(r.spawn_errno, EACCES);
    assert_non_null(strstr(r.error, file));
    assert_non_null(strstr(r.error, strerror(EACCES)));
    /* a directory is not a program either */
    const char *dirv[] = {dir, NULL};
    ms_assert_status(run(dirv, &r), MS_ERR_IO);
    assert_int_equal(r.spawn_errno, EACCES);
    ms_proc_result_reset(&r);
    unlink(file);
    rmdir(dir);
}

static void test_invalid_spec(void **state)
{
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    ms_assert_status(ms_proc_run(NULL, &r), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "argv"));
    const char *empty[] = {"", NULL};
    s.argv = empty;
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_INVALID_ARG);
    const char *argv[] = {"true", NULL};
    s.argv = argv;
    ms_assert_status(ms_proc_run(&s, NULL), MS_ERR_INVALID_ARG);
    const char *bad_env[] = {"OK=1", "NOEQUALS", NULL};
    s.env = bad_env;
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "env[1] 'NOEQUALS'"));
    const char *bad_env2[] = {"=value", NULL};
    s.env = bad_env2;
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_INVALID_ARG);
    s.env = NULL;
    s.timeout_ms = 0;
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "timeout_ms"));
    s.timeout_ms = 1000;
    s.stdin_len = 3;
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "stdin"));
    assert_null(r.output);
}

static void test_log_unwritable(void **state)
{
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    const char *argv[] = {"true", NULL};
    s.argv = argv;
    s.log_path = "/nonexistent/dir/run.log";
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_status(ms_proc_run(&s, &r), MS_ERR_NOT_FOUND);
    assert_true(r.spawn_failed);
    assert_non_null(strstr(r.error, "/nonexistent/dir/run.log"));
    ms_proc_result_reset(&r);
}

/* --- time limits and process groups --------------------------------------- */

static void test_hang_killed_at_timeout(void **state)
{
    const char *argv[] = {"sleep", "100", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.timeout_ms = 300;
    s.grace_ms = 2000;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGTERM);
    assert_int_equal(r.exit_code, -1);
    assert_true(r.duration_ns >= 300 * 1000000LL);
    assert_true(r.duration_ns < 5 * SEC_NS);
    ms_proc_result_reset(&r);
    assert_no_children();
}

static void test_term_ignored_then_killed(void **state)
{
    /* the whole group ignores SIGTERM: SIGKILL after the grace period */
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; sleep 100; echo not reached", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.timeout_ms = 200;
    s.grace_ms = 200;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_true(r.timed_out);
    assert_int_equal(r.term_signal, SIGKILL);
    assert_true(r.duration_ns >= 400 * 1000000LL);
    assert_true(r.duration_ns < 5 * SEC_NS);
    assert_null(strstr(r.output, "not reached"));
    ms_proc_result_reset(&r);
    assert_no_children();
}

static void test_grandchild_holding_pipe_killed(void **state)
{
    /* sh exits at once; its background sleep keeps stdout open */
    const char *argv[] = {"/bin/sh", "-c", "sleep 100 & echo $!", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.timeout_ms = 20000;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_false(r.timed_out);
    assert_true(r.duration_ns < 10 * SEC_NS);
    pid_t grandchild = (pid_t)atoi(r.output);
    assert_true(grandchild > 0);
    /* killed by the runner; reaped by whoever adopted it */
    int64_t until = ms_test_now_ms() + 5000;
    while (!process_gone(grandchild) && ms_test_now_ms() < until)
        ms_test_sleep_ms(10);
    assert_true(process_gone(grandchild));
    /* a background process that closed its output is killed as well */
    const char *quiet[] = {"/bin/sh", "-c", "sleep 100 >/dev/null 2>&1 & echo $!", NULL};
    s.argv = quiet;
    ms_assert_ok(ms_proc_run(&s, &r));
    grandchild = (pid_t)atoi(r.output);
    assert_true(grandchild > 0);
    until = ms_test_now_ms() + 5000;
    while (!process_gone(grandchild) && ms_test_now_ms() < until)
        ms_test_sleep_ms(10);
    assert_true(process_gone(grandchild));
    ms_proc_result_reset(&r);
    assert_no_children();
}

/* --- output ---------------------------------------------------------------- */

static void test_megabytes_of_output(void **state)
{
    char dir[64], log[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(log, sizeof log, "%s/run.log", dir);
    /* 5,000,000 bytes: 'x' * 4,999,990 then "0123456789" */
    const char *argv[] = {"/bin/sh", "-c",
                          "head -c 4999990 /dev/zero | tr '\\000' x; printf 0123456789", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.log_path = log;
    s.log_max = 1 << 20;
    s.capture_max = 4096;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_int_equal(r.output_bytes, 5000000);
    assert_int_equal(r.log_bytes, 1 << 20);
    assert_true(r.log_truncated);
    /* memory: the tail only */
    assert_int_equal(r.output_len, 4096);
    assert_true(r.output_truncated);
    assert_int_equal(strlen(r.output), 4096);
    assert_string_equal(r.output + 4086, "0123456789");
    assert_int_equal(strspn(r.output, "x"), 4086);
    /* the log: the first MiB, then the truncation note */
    size_t len;
    char *content = read_file(log, &len);
    assert_true(len > (size_t)(1 << 20));
    assert_int_equal(strspn(content, "x"), 1 << 20);
    assert_non_null(strstr(content + (1 << 20), "output truncated at log_max 1048576 bytes"));
    assert_non_null(strstr(content + (1 << 20), "3951424 more bytes discarded"));
    free(content);
    struct stat st;
    assert_int_equal(stat(log, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    ms_proc_result_reset(&r);
    unlink(log);
    rmdir(dir);
}

static void test_log_appended_as_written(void **state)
{
    char dir[64], log[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(log, sizeof log, "%s/run.log", dir);
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.log_path = log;
    s.capture_max = 0;
    /* the log holds the first line while the child still runs: it checks */
    char script[512];
    snprintf(script, sizeof script,
             "echo first; sleep 0.2; grep -q '^first$' '%s' && echo seen || echo missing", log);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    s.argv = argv;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output, ""); /* capture_max 0 */
    assert_false(r.log_truncated);
    const char *again[] = {"echo", "second run", NULL};
    s.argv = again;
    ms_assert_ok(ms_proc_run(&s, &r));
    size_t len;
    char *content = read_file(log, &len);
    assert_string_equal(content, "first\nseen\nsecond run\n");
    free(content);
    ms_proc_result_reset(&r);
    unlink(log);
    rmdir(dir);
}

static void test_child_ignores_stdin(void **state)
{
    size_t n = 8u << 20;
    char *data = malloc(n);
    assert_non_null(data);
    memset(data, 'j', n);
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.stdin_data = data;
    s.stdin_len = n;
    ms_proc_result r;
    ms_proc_result_init(&r);
    /* exits without reading: the write gets EPIPE, the host does not die */
    const char *quit[] = {"/bin/sh", "-c", "echo bye", NULL};
    s.argv = quit;
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_string_equal(r.output, "bye\n");
    assert_true(r.stdin_written < n);
    /* never reads and keeps running: the runner still reaches the limit */
    const char *sleeper[] = {"sleep", "100", NULL};
    s.argv = sleeper;
    s.timeout_ms = 300;
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_true(r.timed_out);
    assert_true(r.stdin_written < n);
    ms_proc_result_reset(&r);
    free(data);
    sigset_t pending;
    sigemptyset(&pending);
    assert_int_equal(sigpending(&pending), 0);
    assert_false(sigismember(&pending, SIGPIPE));
}

static void test_child_writes_before_reading(void **state)
{
    /* 3 MB out before reading 2 MB in: both pipes full at once unless the
     * runner reads and writes in the same loop */
    size_t n = 2000000;
    char *data = malloc(n);
    assert_non_null(data);
    memset(data, 'i', n);
    const char *argv[] = {"/bin/sh", "-c", "head -c 3000000 /dev/zero; wc -c", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.stdin_data = data;
    s.stdin_len = n;
    s.capture_max = 64;
    s.timeout_ms = 20000;
    ms_proc_result r;
    ms_proc_result_init(&r);
    ms_assert_ok(ms_proc_run(&s, &r));
    assert_int_equal(r.exit_code, 0);
    assert_false(r.timed_out);
    assert_int_equal(r.stdin_written, n);
    assert_int_equal(r.output_bytes, 3000000 + strlen("2000000\n"));
    /* the tail: zeros (NULs) then wc's count */
    assert_int_equal(r.output_len, 64);
    assert_string_equal(r.output + 56, "2000000\n");
    assert_int_equal(r.output[55], '\0');
    ms_proc_result_reset(&r);
    free(data);
}

/* --- many at once ----------------------------------------------------------- */

#define THREADS 200

typedef struct thread_arg {
    int index;
    ms_status st;
    int exit_code;
    char output[64];
} thread_arg;

static void *run_thread(void *arg)
{
    thread_arg *a = arg;
    char idx[32];
    snprintf(idx, sizeof idx, "%d", a->index);
    const char *argv[] = {"/bin/sh", "-c", "read x; echo \"$x-$0\"; exit $(($0 % 7))", idx, NULL};
    char in[32];
    int n = snprintf(in, sizeof in, "in%d\n", a->index);
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.stdin_data = in;
    s.stdin_len = (size_t)n;
    s.timeout_ms = 60000;
    ms_proc_result r;
    ms_proc_result_init(&r);
    a->st = ms_proc_run(&s, &r);
    a->exit_code = r.exit_code;
    snprintf(a->output, sizeof a->output, "%s", r.output ? r.output : "(null)");
    ms_proc_result_reset(&r);
    return NULL;
}

static void test_concurrent_threads(void **state)
{
    int fds = count_fds();
    static thread_arg args[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        args[i].index = i;
        assert_int_equal(pthread_create(&th[i], NULL, run_thread, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < THREADS; i++) {
        char want[64];
        snprintf(want, sizeof want, "in%d-%d\n", i, i);
        if (args[i].st != MS_OK)
            fail_msg("run %d: %s", i, ms_status_name(args[i].st));
        assert_string_equal(args[i].output, want);
        assert_int_equal(args[i].exit_code, i % 7);
    }
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

typedef struct collect {
    pthread_mutex_t mu;
    int done, ok, killed, spawn_failed, timed_out;
    int term_signal;
    char error[256];
    int64_t max_duration_ms;
} collect;

static void on_done(ms_proc_result *r, void *closure)
{
    collect *c = closure;
    pthread_mutex_lock(&c->mu);
    c->done++;
    if (r->exit_code == 0 && strcmp(r->output, "hi\n") == 0)
        c->ok++;
    if (r->killed)
        c->killed++;
    if (r->timed_out)
        c->timed_out++;
    if (r->spawn_failed) {
        c->spawn_failed++;
        snprintf(c->error, sizeof c->error, "%s", r->error);
    }
    if (r->term_signal)
        c->term_signal = r->term_signal;
    if (r->duration_ns / 1000000 > c->max_duration_ms)
        c->max_duration_ms = r->duration_ns / 1000000;
    pthread_mutex_unlock(&c->mu);
}

static void test_runner_many(void **state)
{
    int fds = count_fds();
    ms_proc_runner *rn = NULL;
    ms_assert_ok(ms_proc_runner_create(NULL, &rn));
    collect c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    const char *argv[] = {"/bin/sh", "-c", "sleep 0.2; echo hi", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.timeout_ms = 60000;
    for (int i = 0; i < 300; i++)
        ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_assert_ok(ms_proc_runner_wait_idle(rn, 120000));
    assert_int_equal(ms_proc_runner_active(rn), 0);
    assert_int_equal(c.done, 300);
    assert_int_equal(c.ok, 300);
    ms_proc_runner_destroy(rn);
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

static void test_runner_queue_limit(void **state)
{
    ms_proc_runner_options o;
    ms_proc_runner_options_init(&o);
    o.max_running = 2;
    ms_proc_runner *rn = NULL;
    ms_assert_ok(ms_proc_runner_create(&o, &rn));
    collect c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    /* each run counts the runs alive at once in a shared directory */
    char dir[64];
    make_tmpdir(dir, sizeof dir);
    char script[512];
    snprintf(script, sizeof script,
             "d='%s'; touch \"$d/$$\"; n=$(ls \"$d\" | wc -l); sleep 0.1; rm \"$d/$$\"; "
             "[ \"$n\" -le 2 ] && echo hi",
             dir);
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    for (int i = 0; i < 8; i++)
        ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_assert_ok(ms_proc_runner_wait_idle(rn, 60000));
    assert_int_equal(c.done, 8);
    assert_int_equal(c.ok, 8);
    ms_proc_runner_destroy(rn);
    assert_int_equal(rmdir(dir), 0);
}

static void test_runner_kill_all(void **state)
{
    ms_proc_runner *rn = NULL;
    ms_proc_runner_options o;
    collect c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    const char *argv[] = {"sleep", "100", NULL};
    ms_proc_spec s;
    size_t n = 99;
    (void)state;

    /* one runs at a time: two live or queued, both stopped */
    ms_proc_runner_options_init(&o);
    o.max_running = 1;
    ms_assert_ok(ms_proc_runner_create(&o, &rn));
    ms_proc_spec_init(&s);
    s.argv = argv;
    ms_assert_ok(ms_proc_runner_kill_all(rn, &n));
    assert_int_equal(n, 0);
    ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_test_sleep_ms(50);
    ms_assert_ok(ms_proc_runner_kill_all(rn, &n));
    assert_int_equal(n, 2);
    ms_assert_ok(ms_proc_runner_wait_idle(rn, 10000));
    assert_int_equal(c.done, 2);
    assert_int_equal(c.killed, 2);
    /* still usable afterwards */
    const char *quick[] = {"true", NULL};
    s.argv = quick;
    ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_assert_ok(ms_proc_runner_wait_idle(rn, 10000));
    assert_int_equal(c.done, 3);
    assert_int_equal(c.killed, 2);
    ms_assert_status(ms_proc_runner_kill_all(NULL, NULL), MS_ERR_INVALID_ARG);
    ms_proc_runner_destroy(rn);
}

static void test_runner_kill_and_failures(void **state)
{
    ms_proc_runner *rn = NULL;
    ms_assert_ok(ms_proc_runner_create(NULL, &rn));
    collect c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    const char *argv[] = {"sleep", "100", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    uint64_t id = 0;
    ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, &id));
    assert_true(id != 0);
    ms_test_sleep_ms(50);
    ms_assert_ok(ms_proc_runner_kill(rn, id));
    ms_assert_ok(ms_proc_runner_wait_idle(rn, 10000));
    assert_int_equal(c.done, 1);
    assert_int_equal(c.killed, 1);
    assert_int_equal(c.term_signal, SIGTERM);
    ms_assert_status(ms_proc_runner_kill(rn, id), MS_ERR_NOT_FOUND);
    /* spawn failure through the callback */
    const char *missing[] = {"ms-no-such-command-xyz", NULL};
    s.argv = missing;
    ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_assert_ok(ms_proc_runner_wait_idle(rn, 10000));
    assert_int_equal(c.spawn_failed, 1);
    assert_non_null(strstr(c.error, "ms-no-such-command-xyz"));
    assert_non_null(strstr(c.error, strerror(ENOENT)));
    /* a time limit through the runner */
    const char *sleeper[] = {"sleep", "100", NULL};
    s.argv = sleeper;
    s.timeout_ms = 200;
    ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_assert_ok(ms_proc_runner_wait_idle(rn, 10000));
    assert_int_equal(c.timed_out, 1);
    /* bad arguments are refused at once */
    ms_assert_status(ms_proc_runner_start(rn, &s, NULL, &c, NULL), MS_ERR_INVALID_ARG);
    s.argv = NULL;
    ms_assert_status(ms_proc_runner_start(rn, &s, on_done, &c, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_proc_runner_wait_idle(NULL, 0), MS_ERR_INVALID_ARG);
    ms_proc_runner_destroy(rn);
    assert_no_children();
}

static void test_runner_destroy_kills(void **state)
{
    int fds = count_fds();
    ms_proc_runner_options o;
    ms_proc_runner_options_init(&o);
    o.max_running = 3;
    ms_proc_runner *rn = NULL;
    ms_assert_ok(ms_proc_runner_create(&o, &rn));
    collect c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    const char *argv[] = {"/bin/sh", "-c", "trap '' TERM; sleep 100", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    for (int i = 0; i < 5; i++) /* 3 running, 2 queued */
        ms_assert_ok(ms_proc_runner_start(rn, &s, on_done, &c, NULL));
    ms_test_sleep_ms(100);
    int64_t t0 = ms_test_now_ms();
    ms_proc_runner_destroy(rn);
    assert_true(ms_test_now_ms() - t0 < 10000);
    assert_int_equal(c.done, 5);
    assert_int_equal(c.killed, 5);
    assert_int_equal(count_fds(), fds);
    assert_no_children();
}

/* --- allocation failures ------------------------------------------------------- */

static void test_alloc_failures(void **state)
{
    const char *env[] = {"MAINSTACK_X=1", NULL};
    const char *argv[] = {"/bin/sh", "-c", "cat; echo done", NULL};
    ms_proc_spec s;
    ms_proc_spec_init(&s);
    s.argv = argv;
    s.env = env;
    s.stdin_data = "in\n";
    s.stdin_len = 3;
    int failures = 0;
    for (long n = 0; n < 50; n++) {
        ms_proc_result r;
        ms_proc_result_init(&r);
        ms__alloc_fail_after(n);
        ms_status st = ms_proc_run(&s, &r);
        ms__alloc_fail_after(-1);
        if (st == MS_OK) {
            assert_string_equal(r.output, "in\ndone\n");
            ms_proc_result_reset(&r);
            break;
        }
        failures++;
        ms_assert_status(st, MS_ERR_NO_MEMORY);
        assert_non_null(strstr(ms_last_error(), "out of memory"));
        assert_null(r.output);
    }
    assert_true(failures > 0);
    /* the runner: creation, then start */
    for (long n = 0; n < 50; n++) {
        ms_proc_runner *rn = NULL;
        ms__alloc_fail_after(n);
        ms_status st = ms_proc_runner_create(NULL, &rn);
        ms__alloc_fail_after(-1);
        if (st != MS_OK) {
            ms_assert_status(st, MS_ERR_NO_MEMORY);
            assert_null(rn);
            continue;
        }
        collect c = {.mu = PTHREAD_MUTEX_INITIALIZER};
        ms__alloc_fail_after(0);
        st = ms_proc_runner_start(rn, &s, on_done, &c, NULL);
        ms__alloc_fail_after(-1);
        ms_assert_status(st, MS_ERR_NO_MEMORY);
        ms_proc_runner_destroy(rn);
        assert_int_equal(c.done, 0);
        break;
    }
    assert_no_children();
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_killed_by_signal),
        cmocka_unit_test(test_argv_passed_literally),
        cmocka_unit_test(test_env_added_and_replaced),
        cmocka_unit_test(test_clear_env),
        cmocka_unit_test(test_env_path_used_for_lookup),
        cmocka_unit_test(test_stdin_json_reaches_child),
        cmocka_unit_test(test_cwd),
        cmocka_unit_test(test_missing_command),
        cmocka_unit_test(test_not_executable),
        cmocka_unit_test(test_invalid_spec),
        cmocka_unit_test(test_log_unwritable),
        cmocka_unit_test(test_hang_killed_at_timeout),
        cmocka_unit_test(test_term_ignored_then_killed),
        cmocka_unit_test(test_grandchild_holding_pipe_killed),
        cmocka_unit_test(test_megabytes_of_output),
        cmocka_unit_test(test_log_appended_as_written),
        cmocka_unit_test(test_child_ignores_stdin),
        cmocka_unit_test(test_child_writes_before_reading),
        cmocka_unit_test(test_concurrent_threads),
        cmocka_unit_test(test_runner_many),
        cmocka_unit_test(test_runner_queue_limit),
        cmocka_unit_test(test_runner_kill_and_failures),
        cmocka_unit_test(test_runner_kill_all),
        cmocka_unit_test(test_runner_destroy_kills),
        cmocka_unit_test(test_alloc_failures),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
