/*
 * bench_agents.c - many agents at once: one broadcast, N agents whose action
 * takes WORK (1 s), wall time from the broadcast to the last pipeline done.
 *
 * Everything is real: a nats-server with JetStream, the control stream,
 * one durable consumer per agent, decisions and runs recorded in a SQLite
 * registry, each action a `sleep` process started from argv by the shared
 * proc runner. The baseline is the same path with one agent (the longest
 * single action, measured in the same run): ratio = single / total, so 1.0
 * means N agents cost no more than one. The sequential sum (N x single) and
 * the speed-up over it are reported beside it. Targets (issue): total <=
 * 1.10 x single at 50 agents, <= 1.25 x at 500.
 *
 * Also the rate of ms_agent_evaluate alone, beside parsing the same payload
 * (ms_message_json) as its baseline: the decision's cost over reading the
 * message.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mainstack/mainstack.h>

extern char **environ;

#include "bench_common.h"
#include "sim_component.h"

typedef struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int decided, done, target;
    uint64_t last_decided_ns, last_done_ns;
    double done_at[1024]; /* seconds after the broadcast, for the spread */
    double first_decided_s;
    uint64_t t0;
} tally;

static void on_event(const ms_agent_event *ev, void *closure)
{
    tally *t = closure;

    pthread_mutex_lock(&t->mu);
    if (ev->kind == MS_AGENT_DECIDED && ev->fresh) {
        if (t->decided == 0)
            t->first_decided_s = (double)(bench_now_ns() - t->t0) / 1e9;
        t->decided++;
        t->last_decided_ns = bench_now_ns();
    } else if (ev->kind == MS_AGENT_RUN_DONE) {
        if (strcmp(ev->run_state, "succeeded") != 0)
            bench_die("a run ended %s", ev->run_state);
        t->last_done_ns = bench_now_ns();
        if (t->done < 1024)
            t->done_at[t->done] = (double)(t->last_done_ns - t->t0) / 1e9;
        t->done++;
        if (t->done >= t->target)
            pthread_cond_broadcast(&t->cv);
    }
    pthread_mutex_unlock(&t->mu);
}

typedef struct fleet {
    ms_agent **agents;
    int n;
} fleet;

/* n agents reacting to interface `prefix`-api; started, and done with the
 * stream's history (earlier phases' broadcasts, ignored) before this
 * returns. */
static void fleet_start(fleet *f, int n, const char *root, const char *prefix, int work_ms,
                        const char *action, ms_bus *bus, ms_registry *reg, ms_proc_runner **runners,
                        int nrunners, tally *t)
{
    char name[96], iface[96], dir[4200];

    f->agents = calloc((size_t)n, sizeof *f->agents);
    f->n = 0;
    if (f->agents == NULL)
        bench_die("out of memory");
    for (int i = 0; i < n; i++) {
        ms_agent_options o;

        snprintf(name, sizeof name, "%s-%d", prefix, i);
        snprintf(iface, sizeof iface, "%s-api", prefix);
        if (sim_component_write(root, name, iface, true, work_ms, action, dir, sizeof dir) != 0)
            bench_die("writing component %s", name);
        ms_agent_options_init(&o);
        o.bus = bus;
        o.registry = reg;
        o.runner = runners[i % nrunners]; /* one runner per core spawns in parallel */
        o.component_dir = dir;
        o.root = root;
        o.on_event = on_event;
        o.closure = t;
        bench_check_ms(ms_agent_create(&o, &f->agents[i]), "ms_agent_create");
        bench_check_ms(ms_agent_start(f->agents[i]), "ms_agent_start");
        f->n++;
    }
    for (int i = 0; i < n; i++)
        bench_check_ms(ms_agent_wait_idle(f->agents[i], 60000), "catching up with history");
}

static void fleet_stop(fleet *f)
{
    /* stop all first (each returns at once), then free */
    for (int i = 0; i < f->n; i++)
        (void)ms_agent_stop(f->agents[i], 10000);
    for (int i = 0; i < f->n; i++)
        ms_agent_destroy(f->agents[i]);
    free(f->agents);
}

/* One broadcast; seconds until `expect` runs ended (and until the last
 * decision, in *decided_s). */
/* What the OS alone costs: n action processes (`sleep WORK`, or `action
 * WORK_MS`) started at once with posix_spawnp and reaped, nothing else (no
 * agent, no pipes, no logs). */
static double spawn_floor(int n, int work_ms, const char *action)
{
    char arg[32];
    char *argv[] = {(char *)(action ? action : "sleep"), arg, NULL};
    pid_t *pids = calloc((size_t)n, sizeof *pids);
    uint64_t t0;

    if (pids == NULL)
        bench_die("out of memory");
    if (action != NULL)
        snprintf(arg, sizeof arg, "%d", work_ms);
    else
        snprintf(arg, sizeof arg, "%d.%03d", work_ms / 1000, work_ms % 1000);
    t0 = bench_now_ns();
    for (int i = 0; i < n; i++)
        if (posix_spawnp(&pids[i], argv[0], NULL, NULL, argv, environ) != 0)
            bench_die("posix_spawnp %s", argv[0]);
    for (int i = 0; i < n; i++)
        while (waitpid(pids[i], NULL, 0) < 0)
            ;
    free(pids);
    return (double)(bench_now_ns() - t0) / 1e9;
}

static double cpu_seconds(void)
{
    struct rusage self, kids;

    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec +
                    kids.ru_stime.tv_sec) +
           (double)(self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec +
                    kids.ru_stime.tv_usec) /
               1e6;
}

static double broadcast(ms_bus *bus, tally *t, const char *prefix, int expect, int round,
                        double *decided_s)
{
    char to[32], iface[64];
    ms_message *m = NULL;
    uint64_t t0;
    struct timespec until;

    pthread_mutex_lock(&t->mu);
    t->decided = t->done = 0;
    t->target = expect;
    pthread_mutex_unlock(&t->mu);
    snprintf(to, sizeof to, "1.%d.0", round + 1);
    snprintf(iface, sizeof iface, "%s-api", prefix);
    bench_check_ms(ms_msg_interface_changed(NULL, "bench", iface, "1.0.0", to, false,
                                            "a compatible change", &m),
                   "building the broadcast");
    t0 = bench_now_ns();
    pthread_mutex_lock(&t->mu);
    t->t0 = t0;
    pthread_mutex_unlock(&t->mu);
    bench_check_ms(ms_stream_publish(bus, m, 10000, NULL), "ms_stream_publish");
    ms_message_unref(m);
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 120;
    pthread_mutex_lock(&t->mu);
    while (t->done < expect)
        if (pthread_cond_timedwait(&t->cv, &t->mu, &until) != 0)
            bench_die("only %d of %d runs ended within 120 s", t->done, expect);
    *decided_s = (double)(t->last_decided_ns - t0) / 1e9;
    double total = (double)(t->last_done_ns - t0) / 1e9;
    pthread_mutex_unlock(&t->mu);
    return total;
}

static void evaluate_rate(const char *root, bool quick)
{
    char dir[4200];
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    ms_message *m = NULL;
    double secs = quick ? 0.1 : 0.5, rate_eval, rate_parse;
    bench_result r;
    uint64_t n = 0, t0;

    if (sim_component_write(root, "eval-probe", "shared-api", true, 1000, NULL, dir, sizeof dir) !=
        0)
        bench_die("writing the probe component");
    bench_check_ms(ms_context_load_dir(dir, &ctx, &cfg), "loading the probe");
    bench_check_ms(ms_msg_interface_changed(NULL, "bench", "shared-api", "1.0.0", "1.1.0", false,
                                            "a compatible change", &m),
                   "building a message");
    t0 = bench_now_ns();
    while (bench_now_ns() - t0 < (uint64_t)(secs * 1e9)) {
        for (int i = 0; i < 100; i++) {
            json_t *j = NULL;

            bench_check_ms(ms_message_json(m, &j), "ms_message_json");
            json_decref(j);
        }
        n += 100;
    }
    rate_parse = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    n = 0;
    t0 = bench_now_ns();
    while (bench_now_ns() - t0 < (uint64_t)(secs * 1e9)) {
        for (int i = 0; i < 100; i++) {
            ms_decision d;

            bench_check_ms(ms_agent_evaluate(m, ctx, cfg, &d), "ms_agent_evaluate");
        }
        n += 100;
    }
    rate_eval = (double)n / ((double)(bench_now_ns() - t0) / 1e9);
    bench_result_init(&r, "agent_evaluate_rate", "decisions/s", true, 0);
    r.value = rate_eval;
    r.baseline = rate_parse;
    r.note = "baseline: parsing the same payload with ms_message_json";
    bench_result_emit(&r);
    ms_message_unref(m);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
}

int main(int argc, char **argv)
{
    bench_args args;
    ms_nats_server_opts so = {.jetstream = 1};
    ms_nats_server *srv = NULL;
    ms_bus *bus = NULL;
    ms_registry *reg = NULL;
    ms_proc_runner *runners[8] = {NULL};
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nrunners = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
    char root[4096], regpath[4200], cmd[4300];
    tally t = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    ms_stream_config sc;
    fleet one;
    double single_rounds[5], decided;
    int work_ms, sizes[2];
    const double targets[2] = {1.0 / 1.10, 1.0 / 1.25};

    bench_args_parse(argc, argv, &args);
    /* Files (the JetStream store, the registry, components, step logs) go
     * to a tmpfs when there is one: on a shared machine's /tmp, ext4's inode
     * allocator, scanning past thousands of recently deleted inodes, costs
     * milliseconds per file created and would be measured instead of the
     * agents (bench/README.md). */
    const char *tmpdir = getenv("BENCH_TMPDIR");
    struct stat shm;
    if (tmpdir == NULL)
        tmpdir =
            stat("/dev/shm", &shm) == 0 && S_ISDIR(shm.st_mode) && access("/dev/shm", W_OK) == 0
                ? "/dev/shm"
                : "/tmp";
    setenv("TMPDIR", tmpdir, 1); /* the nats-server fixture's store */
    snprintf(root, sizeof root, "%s/bench-agents.XXXXXX", tmpdir);
    work_ms = args.quick ? 200 : 1000;
    sizes[0] = args.quick ? 5 : 50;
    sizes[1] = args.quick ? 20 : 500;
    if (mkdtemp(root) == NULL)
        bench_die("mkdtemp");
    snprintf(regpath, sizeof regpath, "%s/.mainstack/registry.db", root);
    /* BENCH_AGENTS_URL=inproc://x runs the same without a server (to tell
     * the server's share of the time from the agents') */
    const char *url = getenv("BENCH_AGENTS_URL");
    if (url == NULL || url[0] == '\0') {
        bench_check_ms(ms_nats_server_start(&so, &srv), "starting nats-server");
        url = ms_nats_server_url(srv);
    }
    bench_check_ms(ms_bus_connect_url(url, &bus), "connecting");
    bench_check_ms(ms_registry_open(regpath, &reg), "opening the registry");
    for (int i = 0; i < nrunners; i++)
        bench_check_ms(ms_proc_runner_create(NULL, &runners[i]), "creating a proc runner");
    ms_stream_config_init(&sc);
    bench_check_ms(ms_stream_ensure(bus, &sc), "ms_stream_ensure");

    /* Two actions: coreutils `sleep` (what an action usually is: a dynamically
     * linked program) and, where it is built, bench/actions/tiny_sleep, a
     * program without libc whose start costs the kernel's exec alone. On a
     * VM whose dynamic loader start is slow the first one's OS floor alone
     * can exceed the target; the second shows what the agents add. */
    const char *actions[2] = {NULL, NULL};
    int nactions = 1;
#ifdef MS_TINY_SLEEP
    actions[nactions++] = MS_TINY_SLEEP;
#endif
    for (int a = 0; a < nactions; a++) {
        const char *action = actions[a];
        const char *suffix = action ? "-minimal" : "";
        char prefix[64];

        /* the baseline: one agent, the longest single action */
        snprintf(prefix, sizeof prefix, "single%s", suffix);
        fleet_start(&one, 1, root, prefix, work_ms, action, bus, reg, runners, nrunners, &t);
        int nsingle = args.quick ? 1 : 3;
        for (int r = 0; r < nsingle; r++)
            single_rounds[r] = broadcast(bus, &t, prefix, 1, r, &decided);
        double single = bench_median(single_rounds, (size_t)nsingle);
        fleet_stop(&one);

        for (int s = 0; s < 2; s++) {
            fleet f;
            bench_result r;
            char name[64];
            uint64_t t0 = bench_now_ns();

            snprintf(prefix, sizeof prefix, "%s%s", s == 0 ? "small" : "large", suffix);
            fleet_start(&f, sizes[s], root, prefix, work_ms, action, bus, reg, runners, nrunners,
                        &t);
            double startup = (double)(bench_now_ns() - t0) / 1e9;
            double cpu0 = cpu_seconds();
            double total = broadcast(bus, &t, prefix, sizes[s], 0, &decided);
            double cpu = cpu_seconds() - cpu0; /* this process and its reaped children */

            snprintf(name, sizeof name, "agents_broadcast_%d%s", sizes[s],
                     action ? "_minimal" : "");
            bench_result_init(&r, name, "s", false, targets[s]);
            r.value = total;
            r.baseline = single;
            bench_result_add(&r, "agents", sizes[s]);
            bench_result_add(&r, "action_ms", work_ms);
            bench_result_add(&r, "sequential_s", single * sizes[s]);
            bench_result_add(&r, "speedup", single * sizes[s] / total);
            bench_result_add(&r, "last_decision_s", decided);
            bench_result_add(&r, "first_decision_s", t.first_decided_s);
            bench_sort(t.done_at, (size_t)(sizes[s] < 1024 ? sizes[s] : 1024));
            bench_result_add(&r, "first_done_s", t.done_at[0]);
            bench_result_add(
                &r, "median_done_s",
                bench_percentile(t.done_at, (size_t)(sizes[s] < 1024 ? sizes[s] : 1024), 50));
            bench_result_add(&r, "startup_s", startup);
            bench_result_add(&r, "cpu_s", cpu);
            bench_result_add(&r, "spawn_floor_s", spawn_floor(sizes[s], work_ms, action));
            r.note = action ? "action: bench/actions/tiny_sleep (no libc); baseline: one agent"
                            : "action: coreutils sleep; baseline: one agent (the longest single "
                              "action)";
            bench_result_emit(&r);
            fleet_stop(&f);
        }
    }
    evaluate_rate(root, args.quick);

    for (int i = 0; i < nrunners; i++)
        ms_proc_runner_destroy(runners[i]);
    ms_registry_close(reg);
    ms_bus_destroy(bus);
    ms_nats_server_stop(srv);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        bench_log("could not remove %s", root);
    return 0;
}
