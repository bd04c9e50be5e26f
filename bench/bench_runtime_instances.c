/*
 * bench_runtime_instances.c - 1,000 trivial component instances on one host.
 *
 * One runtime on an in-process bus (inproc://) hosts N = 1,000 instances of
 * a trivial linked-in component (ms_runtime_add, one at a time): its state
 * is one pointer, and its one topic is a fan-out subject to which every
 * instance answers with its instance id. Measured:
 *
 *   startup: from ms_runtime_create to the moment all N instances have
 *     answered one fan-out request published on the runtime's bus to an
 *     inbox (so every instance is subscribed and its mailbox runs on the
 *     worker pool). Every answer must arrive and the N ids must be distinct,
 *     or the result fails.
 *   memory: resident set size (/proc/self/statm) after startup minus the
 *     RSS just after ms_runtime_create, divided by N, minus the component's
 *     own state (its malloc chunk). Measured once, in the first (cold) run
 *     of the process, so freed memory of earlier rounds cannot hide it. It
 *     includes everything the instances cost: the instance record, its
 *     mailbox, endpoints, config and metadata objects, the bus subscription
 *     and its slot in the subject index, and any pages first touched by the
 *     worker threads.
 *
 * Baselines ("baseline_kind" in the lines):
 *   runtime_instances_startup_ms: the 1 s budget (ratio = 1000 ms / value,
 *     target 1.0). Beside it, measured in the same run, rounds interleaved:
 *     bare_subs_ms, a bare loop on a fresh inproc bus creating N
 *     subscriptions to the fan-out subject whose handler answers with
 *     ms_bus_respond, then the same fan-out request: the floor of "N
 *     handlers on a bus" without the runtime.
 *   runtime_instances_mem: the 64 KiB budget per instance (ratio = 65536 /
 *     bytes per instance, target 1.0).
 *   runtime_instances_nats_startup_ms (not in --quick): the same startup
 *     on NATS (a nats-server of the run), informational, beside the budget.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "mainstack/bus.h"
#include "mainstack/component.h"
#include "mainstack/log.h"
#include "mainstack/message.h"
#include "mainstack/runtime.h"

#define N_INSTANCES 1000
#define MAX_ROUNDS 32
#define ID_MAX 32
#define COMPONENT "bench-trivial"
#define BUDGET_MS 1000.0
#define BUDGET_BYTES 65536.0

/* --- the trivial component ------------------------------------------------- */

typedef struct trivial_self {
    ms_component_ctx *ctx;
} trivial_self;

static void *trivial_create(void)
{
    return calloc(1, sizeof(trivial_self));
}

static void trivial_destroy(void *self)
{
    free(self);
}

static ms_status trivial_init(void *self, ms_component_ctx *ctx)
{
    ((trivial_self *)self)->ctx = ctx;
    return MS_OK;
}

/* Answer with the instance id. */
static ms_status trivial_handle(void *self, const ms_message *in, ms_message **reply)
{
    const char *id = ms_ctx_instance_id(((trivial_self *)self)->ctx);

    if (ms_message_reply(in) == NULL)
        return MS_OK;
    return ms_message_create(ms_message_reply(in), id, strlen(id), reply);
}

/* --- collecting the answers -------------------------------------------------- */

typedef struct collector {
    bench_counter counter;
    pthread_mutex_t mu;
    size_t n;
    char (*ids)[ID_MAX]; /* N_INSTANCES answers */
    size_t too_many;     /* answers past N */
} collector;

static void collector_init(collector *c)
{
    memset(c, 0, sizeof *c);
    bench_counter_init(&c->counter, N_INSTANCES);
    if (pthread_mutex_init(&c->mu, NULL) != 0)
        bench_die("pthread_mutex_init failed");
    c->ids = calloc(N_INSTANCES, sizeof *c->ids);
    if (c->ids == NULL)
        bench_die("out of memory");
}

static void collector_destroy(collector *c)
{
    free(c->ids);
    pthread_mutex_destroy(&c->mu);
    bench_counter_destroy(&c->counter);
}

static void on_answer(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    collector *c = closure;
    size_t len = ms_message_len(msg);

    (void)bus;
    (void)sub;
    pthread_mutex_lock(&c->mu);
    if (c->n < N_INSTANCES) {
        if (len >= ID_MAX)
            len = ID_MAX - 1;
        memcpy(c->ids[c->n], ms_message_data(msg), len);
        c->ids[c->n][len] = '\0';
        c->n++;
    } else {
        c->too_many++;
    }
    pthread_mutex_unlock(&c->mu);
    bench_counter_hit(&c->counter);
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Distinct answers among those collected. */
static size_t collector_distinct(collector *c)
{
    size_t d = 0;

    qsort(c->ids, c->n, sizeof *c->ids, cmp_id);
    for (size_t i = 0; i < c->n; i++)
        if (i == 0 || strcmp(c->ids[i], c->ids[i - 1]) != 0)
            d++;
    return d;
}

/* Publish one fan-out request on bus to an inbox and wait for N answers
 * (or a 3 s stall). Returns the distinct answers; *t_done the time the
 * last one arrived (or the wait gave up). */
static size_t fanout_ping(ms_bus *bus, const char *subject, uint64_t *t_done)
{
    collector c;
    ms_subscription *sub = NULL;
    char *inbox = NULL;
    size_t distinct;

    collector_init(&c);
    bench_check_ms(ms_bus_new_inbox(bus, &inbox), "ms_bus_new_inbox");
    bench_check_ms(ms_bus_subscribe(bus, inbox, NULL, on_answer, &c, &sub), "subscribe inbox");
    bench_check_ms(ms_bus_flush(bus, 5000), "ms_bus_flush (inbox)");
    bench_check_ms(ms_bus_publish_reply(bus, subject, inbox, "ping", 4), "publish ping");
    *t_done = bench_counter_wait(&c.counter, NULL, NULL, 3000);
    bench_check_ms(ms_subscription_unsubscribe(sub), "unsubscribe inbox");
    free(inbox);
    distinct = collector_distinct(&c);
    if (c.too_many > 0 || c.n != N_INSTANCES || distinct != N_INSTANCES)
        bench_log("fan-out on %s: %zu answers (%zu more), %zu distinct, want %d", subject, c.n,
                  c.too_many, distinct, N_INSTANCES);
    if (c.too_many > 0)
        distinct = 0;
    collector_destroy(&c);
    return distinct;
}

/* --- measurements ------------------------------------------------------------ */

/* Resident set size in bytes. */
static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;

    if (f == NULL)
        bench_die("cannot open /proc/self/statm");
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        bench_die("cannot parse /proc/self/statm");
    fclose(f);
    return (double)resident * (double)sysconf(_SC_PAGESIZE);
}

typedef struct run_out {
    double startup_ms;
    double add_ms;     /* of which adding the N instances */
    double rss_create; /* RSS just after ms_runtime_create */
    double rss_before; /* RSS before it */
    double rss_served; /* RSS after the fan-out was answered */
    size_t distinct;
} run_out;

static void run_runtime(const char *url, const char *data_root, const char *subject, run_out *out)
{
    ms_topic topics[2] = {{subject, MS_TOPIC_FANOUT}, {NULL, 0}};
    ms_component_ops ops = {
        .abi_version = MS_COMPONENT_ABI,
        .metadata = {COMPONENT, "1.0.0", "trivial component for bench_runtime_instances"},
        .create = trivial_create,
        .destroy = trivial_destroy,
        .initialize = trivial_init,
        .topics = topics,
        .handle_message = trivial_handle,
    };
    ms_runtime_options o;
    ms_runtime *rt = NULL;
    uint64_t t0, t_added, t_done;

    memset(out, 0, sizeof *out);
    ms_runtime_options_init(&o);
    o.url = url;
    o.data_root = data_root;
    o.host_name = "bench-runtime-instances";

    out->rss_before = rss_bytes();
    t0 = bench_now_ns();
    bench_check_ms(ms_runtime_create(&o, &rt), "ms_runtime_create");
    out->rss_create = rss_bytes();
    for (int i = 0; i < N_INSTANCES; i++)
        bench_check_ms(ms_runtime_add(rt, &ops, NULL, NULL), "ms_runtime_add");
    t_added = bench_now_ns();
    out->distinct = fanout_ping(ms_runtime_bus(rt), subject, &t_done);
    out->rss_served = rss_bytes();
    out->startup_ms = (double)(t_done - t0) / 1e6;
    out->add_ms = (double)(t_added - t0) / 1e6;
    bench_check_ms(ms_runtime_shutdown(rt, 10000), "ms_runtime_shutdown");
    ms_runtime_destroy(rt);
}

typedef struct bare_sub {
    int index;
} bare_sub;

static void bare_answer(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    const bare_sub *b = closure;
    char id[16];
    int n = snprintf(id, sizeof id, "%d", b->index);

    (void)sub;
    bench_check_ms(ms_bus_respond(bus, msg, id, (size_t)n), "bare respond");
}

static void run_bare(const char *url, const char *subject, run_out *out)
{
    bare_sub *subs = calloc(N_INSTANCES, sizeof *subs);
    ms_bus *bus = NULL;
    uint64_t t0, t_added, t_done;

    if (subs == NULL)
        bench_die("out of memory");
    memset(out, 0, sizeof *out);
    t0 = bench_now_ns();
    bench_check_ms(ms_bus_connect_url(url, &bus), "ms_bus_connect (bare)");
    for (int i = 0; i < N_INSTANCES; i++) {
        subs[i].index = i;
        bench_check_ms(ms_bus_subscribe(bus, subject, NULL, bare_answer, &subs[i], NULL),
                       "ms_bus_subscribe (bare)");
    }
    t_added = bench_now_ns();
    out->distinct = fanout_ping(bus, subject, &t_done);
    out->startup_ms = (double)(t_done - t0) / 1e6;
    out->add_ms = (double)(t_added - t0) / 1e6;
    ms_bus_destroy(bus);
    free(subs);
}

/* --- driver ------------------------------------------------------------------ */

/* The runtime's log lines (one per instance start) are formatted as usual
 * but only warnings and errors are printed. */
static void quiet_sink(ms_log_level level, const char *line, void *closure)
{
    (void)closure;
    if (level >= MS_LOG_WARN)
        fprintf(stderr, "%s\n", line);
}

/* The malloc chunk of the component's state: what the instance costs that
 * is the component's own, not the runtime's. */
static double component_state_bytes(void)
{
    void *p = trivial_create();
    double n;

    if (p == NULL)
        bench_die("out of memory");
    n = (double)(malloc_usable_size(p) + sizeof(size_t));
    trivial_destroy(p);
    return n;
}

int main(int argc, char **argv)
{
    bench_args args;
    bench_result r;
    run_out cold, out;
    double ms_ms[MAX_ROUNDS], bare_ms[MAX_ROUNDS], ms_add[MAX_ROUNDS];
    size_t nm = 0, nb = 0;
    bool failed;
    char data_root[] = "/tmp/ms-bench-inst-XXXXXX";
    char url[96], subject[96], cmd[128];
    double state, per_inst;
    int rounds;

    bench_args_parse(argc, argv, &args);
    rounds = args.rounds > MAX_ROUNDS ? MAX_ROUNDS : args.rounds;
    ms_log_set_sink(quiet_sink, NULL);
    if (mkdtemp(data_root) == NULL)
        bench_die("mkdtemp %s failed", data_root);
    state = component_state_bytes();

    /* Cold run: memory (and the first startup, reported apart). */
    snprintf(url, sizeof url, "inproc://bench-instances-%d-cold", (int)getpid());
    run_runtime(url, data_root, "bench.instances.cold.ping", &cold);
    failed = cold.distinct != N_INSTANCES;
    bench_log("cold run: startup %.1f ms (adds %.1f ms), RSS +%.0f KiB for the runtime, "
              "+%.0f KiB for %d instances",
              cold.startup_ms, cold.add_ms, (cold.rss_create - cold.rss_before) / 1024.0,
              (cold.rss_served - cold.rss_create) / 1024.0, N_INSTANCES);
    if (!args.quick) {
        /* warm-up of the bare loop too */
        snprintf(url, sizeof url, "inproc://bench-instances-%d-warm", (int)getpid());
        run_bare(url, "bench.instances.warm.ping", &out);
    }

    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 2; k++) {
            bool mainstack = (k == 1) != (round % 2 == 1);
            if (mainstack ? !args.run_mainstack : !args.run_baseline)
                continue;
            snprintf(url, sizeof url, "inproc://bench-instances-%d-%s-%d", (int)getpid(),
                     mainstack ? "ms" : "bare", round);
            snprintf(subject, sizeof subject, "bench.instances.%s.%d.ping",
                     mainstack ? "ms" : "bare", round);
            if (mainstack) {
                run_runtime(url, data_root, subject, &out);
                ms_ms[nm] = out.startup_ms;
                ms_add[nm] = out.add_ms;
                nm++;
            } else {
                run_bare(url, subject, &out);
                bare_ms[nb++] = out.startup_ms;
            }
            if (out.distinct != N_INSTANCES)
                failed = true;
            bench_log("runtime_instances round %d %-9s startup %.1f ms (subscribing %.1f ms), "
                      "%zu of %d answered",
                      round, mainstack ? "mainstack" : "bare", out.startup_ms, out.add_ms,
                      out.distinct, N_INSTANCES);
        }
    }

    bench_result_init(&r, "runtime_instances_startup_ms", "ms", false, 1.0);
    r.baseline_kind = "budget";
    r.value = bench_median(ms_ms, nm);
    r.baseline = BUDGET_MS;
    r.failed = failed;
    bench_result_add(&r, "instances", N_INSTANCES);
    bench_result_add(&r, "add_ms", bench_median(ms_add, nm));
    bench_result_add(&r, "cold_startup_ms", cold.startup_ms);
    bench_result_add(&r, "bare_subs_ms", bench_median(bare_ms, nb));
    bench_result_add(&r, "bare_ratio", bench_median(bare_ms, nb) / bench_median(ms_ms, nm));
    bench_result_add(&r, "rounds", (double)rounds);
    r.note = "inproc; create runtime + add N + all N answer a fan-out; baseline = 1 s budget; "
             "bare_subs_ms = N bare inproc subscriptions answering the same fan-out";
    bench_result_emit(&r);

    per_inst = (cold.rss_served - cold.rss_create) / N_INSTANCES - state;
    bench_result_init(&r, "runtime_instances_mem", "bytes/instance", false, 1.0);
    r.baseline_kind = "budget";
    r.value = per_inst;
    r.baseline = BUDGET_BYTES;
    r.failed = cold.distinct != N_INSTANCES;
    bench_result_add(&r, "instances", N_INSTANCES);
    bench_result_add(&r, "component_state_bytes", state);
    bench_result_add(&r, "rss_runtime_kib", (cold.rss_create - cold.rss_before) / 1024.0);
    bench_result_add(&r, "rss_instances_kib", (cold.rss_served - cold.rss_create) / 1024.0);
    bench_result_add(&r, "rss_total_kib", cold.rss_served / 1024.0);
    r.note = "inproc; (RSS after startup - RSS after ms_runtime_create) / N - component state, "
             "cold run; baseline = 64 KiB budget";
    bench_result_emit(&r);

    if (!args.quick && args.run_mainstack) {
        bench_server srv;
        double nats_ms[MAX_ROUNDS];
        int nrounds = rounds > 3 ? 3 : rounds;
        bool nats_failed = false;

        bench_server_start(&srv);
        for (int round = 0; round < nrounds; round++) {
            snprintf(subject, sizeof subject, "bench.instances.nats.%d.ping", round);
            run_runtime(srv.url, data_root, subject, &out);
            nats_ms[round] = out.startup_ms;
            if (out.distinct != N_INSTANCES)
                nats_failed = true;
            bench_log("runtime_instances_nats round %d startup %.1f ms (adds %.1f ms), %zu of "
                      "%d answered, RSS +%.0f KiB",
                      round, out.startup_ms, out.add_ms, out.distinct, N_INSTANCES,
                      (out.rss_served - out.rss_create) / 1024.0);
        }
        bench_server_stop(&srv);
        bench_result_init(&r, "runtime_instances_nats_startup_ms", "ms", false, 0);
        r.baseline_kind = "budget";
        r.value = bench_median(nats_ms, (size_t)nrounds);
        r.baseline = BUDGET_MS;
        r.failed = nats_failed;
        bench_result_add(&r, "instances", N_INSTANCES);
        bench_result_add(&r, "answered", nats_failed ? 0 : N_INSTANCES);
        bench_result_add(&r, "rounds", (double)nrounds);
        r.note = "NATS; create runtime + add N + all N answer a fan-out; informational";
        bench_result_emit(&r);
    }

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_root);
    if (system(cmd) != 0)
        bench_log("could not remove %s", data_root);
    return 0;
}
