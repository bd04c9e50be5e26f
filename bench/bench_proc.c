/*
 * bench_proc.c - N one-second actions at once (the agents' broadcast case).
 *
 * mainstack side: N runs of `sleep 1` (default N = 500, BENCH_PROC_N) started
 * on one ms_proc_runner, each with stdin data, a log file and a time limit;
 * the time until the last callback. Baseline: the same N `sleep 1` started
 * with posix_spawnp and reaped with waitpid, nothing else. Both should stay
 * close to 1 s: the figure that matters is how far above 1 s each lands.
 * Reported as wall time in ms (lower is better), medians over the rounds.
 */
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"
#include "mainstack/proc.h"

extern char **environ;

static double baseline_round(int n)
{
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    if (pids == NULL)
        bench_die("out of memory");
    char *argv[] = {"sleep", "1", NULL};
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        int rc = posix_spawnp(&pids[i], "sleep", NULL, NULL, argv, environ);
        if (rc != 0)
            bench_die("posix_spawnp: %s", strerror(rc));
    }
    for (int i = 0; i < n; i++) {
        int st;
        while (waitpid(pids[i], &st, 0) < 0)
            ;
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bench_die("baseline: sleep did not exit 0");
    }
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    free(pids);
    return ms;
}

typedef struct done_count {
    bench_counter c;
    atomic_int failed;
} done_count;

static void on_done(ms_proc_result *r, void *closure)
{
    done_count *d = closure;
    if (r->exit_code != 0 || r->timed_out || r->spawn_failed)
        atomic_fetch_add(&d->failed, 1);
    bench_counter_hit(&d->c);
}

static double mainstack_round(int n, const char *logdir, int *failed)
{
    ms_proc_runner *rn = NULL;
    ms_proc_runner_options o;
    ms_proc_runner_options_init(&o);
    o.max_running = (unsigned)n;
    bench_check_ms(ms_proc_runner_create(&o, &rn), "ms_proc_runner_create");
    done_count d;
    bench_counter_init(&d.c, (uint64_t)n);
    atomic_init(&d.failed, 0);
    const char *argv[] = {"sleep", "1", NULL};
    const char *env[] = {"MAINSTACK_COMPONENT=bench", NULL};
    const char *json = "{\"subject\":\"events.bench\",\"payload\":{}}";
    char log[512];
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < n; i++) {
        ms_proc_spec s;
        ms_proc_spec_init(&s);
        s.argv = argv;
        s.env = env;
        s.stdin_data = json;
        s.stdin_len = strlen(json);
        s.timeout_ms = 30000;
        snprintf(log, sizeof log, "%s/run-%d.log", logdir, i);
        s.log_path = log;
        bench_check_ms(ms_proc_runner_start(rn, &s, on_done, &d, NULL), "ms_proc_runner_start");
    }
    bench_check_ms(ms_proc_runner_wait_idle(rn, 120000), "ms_proc_runner_wait_idle");
    double ms = (double)(bench_now_ns() - t0) / 1e6;
    ms_proc_runner_destroy(rn);
    *failed += atomic_load(&d.failed);
    bench_counter_destroy(&d.c);
    return ms;
}

int main(int argc, char **argv)
{
    bench_args a;
    bench_args_parse(argc, argv, &a);
    int n = (int)bench_env_long("BENCH_PROC_N", a.quick ? 100 : 500);
    char logdir[] = "/tmp/bench_proc_XXXXXX";
    if (mkdtemp(logdir) == NULL)
        bench_die("mkdtemp failed");
    double base[16], ms[16];
    int rounds = a.rounds > 16 ? 16 : a.rounds, failed = 0;
    for (int i = 0; i < rounds; i++) {
        base[i] = a.run_baseline ? baseline_round(n) : NAN;
        ms[i] = a.run_mainstack ? mainstack_round(n, logdir, &failed) : NAN;
    }
    for (int i = 0; i < n; i++) {
        char log[512];
        snprintf(log, sizeof log, "%s/run-%d.log", logdir, i);
        unlink(log);
    }
    rmdir(logdir);
    bench_result r;
    bench_result_init(&r, "proc_concurrent_sleep1", "ms", false, 0);
    r.value = a.run_mainstack ? bench_median(ms, (size_t)rounds) : NAN;
    r.baseline = a.run_baseline ? bench_median(base, (size_t)rounds) : NAN;
    r.failed = failed > 0;
    r.note = "N sleep-1 actions at once: wall time until the last ended";
    bench_result_add(&r, "actions", n);
    bench_result_emit(&r);
    return failed > 0 ? 1 : 0;
}
