/*
 * bench_runtime_reqrep.c - request/reply through the runtime over NATS.
 *
 * The same raw libnats requester (natsConnection_Request, 64 B payloads)
 * talks to one of two responders on a nats-server started for the run:
 *
 *   baseline:  a raw libnats connection with natsOptions_SetSendAsap(true)
 *              whose subscription callback publishes 64 B to the reply
 *              subject (as bench_nats_reqrep.c), nothing in between;
 *   mainstack: an ms_runtime on the same server hosting one instance of a
 *              linked-in echo component (ms_runtime_add): the bus handler
 *              queues the message on the instance's mailbox, a worker runs
 *              handle_message, which returns a reply message, and the
 *              runtime sends it (correlation id set) on its reply
 *              connection. This is the whole path a component request
 *              takes: dispatch, mailbox hop to the worker pool, stats,
 *              reply.
 *
 * The echo component runs in two ways, each measured against the raw side:
 *   default:  handle_message on a worker of the runtime's pool (the hand-off
 *             from the bus delivery thread is a thread wake-up);
 *   inline:   the same component declaring MS_COMPONENT_INLINE (its handler
 *             never blocks), so an idle instance's handler runs on the
 *             delivery thread itself.
 *
 * Results (X = "" for default, "inline_" for inline):
 *   runtime_reqrep_X64b      one serial requester: req/s, target ratio 0.80,
 *                            with p50/p99/p99.9 of both sides;
 *   runtime_reqrep_Xp50      the p50 latency of the same runs (median of the
 *                            per-round p50s), target: at most 1.25x raw
 *                            (ratio = raw/mainstack >= 0.80);
 *   runtime_reqrep_Xconc_64b CONC requester threads (a connection each) at
 *                            once for a fixed time: req/s (informational).
 *
 * The three sides take turns, the order rotating from round to round, after
 * an unmeasured warm-up of each; each round makes fresh connections
 * (and a fresh runtime), on a fresh subject. Besides the ratio of the two
 * medians, each line has paired_ratio: the median over rounds of the ratio
 * of the two sides of one round, which ran back to back (less sensitive to
 * the load of a shared machine swinging between rounds).
 */
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

#define PAYLOAD 64
#define TIMEOUT_MS 5000
#define MAX_ROUNDS 32
#define CONC 4
#define COMPONENT "bench-echo"

static unsigned char payload[PAYLOAD];

typedef struct run_cfg {
    const char *url;
    const char *data_root;
    char subject[96];
    size_t max_requests; /* serial: stop after this many... */
    uint64_t max_ns;     /* ...or after this long, whichever is first */
    int threads;         /* 1: serial (latencies recorded); > 1: concurrent */
} run_cfg;

typedef struct run_out {
    double rate; /* req/s */
    size_t n;    /* requests completed */
    double p50;  /* this round's p50 (serial only) */
} run_out;

/* --- the echo component ------------------------------------------------------ */

/* The echo component has no state; create returns a small object all the
 * same (NULL would mean a failed create). */
typedef struct echo_self {
    int unused;
} echo_self;

static void *echo_create(void)
{
    return calloc(1, sizeof(echo_self));
}

static void echo_destroy(void *self)
{
    free(self);
}

static ms_status echo_init(void *self, ms_component_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return MS_OK;
}

static ms_status echo_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    if (ms_message_reply(in) == NULL)
        return MS_OK;
    return ms_message_create(ms_message_reply(in), ms_message_data(in), ms_message_len(in), reply);
}

/* --- the requesters (shared by both sides) ---------------------------------- */

/* Serial requests on one raw connection; latencies in lat_us. */
static void serial_requests(const run_cfg *cfg, double *lat_us, run_out *out)
{
    natsConnection *nc = bench_raw_connect(cfg->url, false);
    uint64_t t0, t1, start;
    double *sorted;
    size_t i;

    start = bench_now_ns();
    t1 = start;
    for (i = 0; i < cfg->max_requests && t1 - start < cfg->max_ns; i++) {
        natsMsg *reply = NULL;

        t0 = bench_now_ns();
        bench_check_nats(
            natsConnection_Request(&reply, nc, cfg->subject, payload, PAYLOAD, TIMEOUT_MS),
            "natsConnection_Request");
        t1 = bench_now_ns();
        if (natsMsg_GetDataLength(reply) != PAYLOAD)
            bench_die("request: reply of %d bytes, want %d", natsMsg_GetDataLength(reply), PAYLOAD);
        natsMsg_Destroy(reply);
        lat_us[i] = (double)(t1 - t0) / 1e3;
    }
    out->n = i;
    out->rate = t1 > start ? (double)i * 1e9 / (double)(t1 - start) : 0.0;
    sorted = malloc((i > 0 ? i : 1) * sizeof *sorted);
    if (sorted == NULL)
        bench_die("out of memory");
    memcpy(sorted, lat_us, i * sizeof *sorted);
    bench_sort(sorted, i);
    out->p50 = bench_percentile(sorted, i, 50);
    free(sorted);
    natsConnection_Destroy(nc);
}

typedef struct conc_thread {
    const run_cfg *cfg;
    natsConnection *nc;
    uint64_t deadline;
    size_t n;
    pthread_t tid;
} conc_thread;

static void *conc_main(void *arg)
{
    conc_thread *t = arg;

    while (bench_now_ns() < t->deadline) {
        natsMsg *reply = NULL;

        bench_check_nats(
            natsConnection_Request(&reply, t->nc, t->cfg->subject, payload, PAYLOAD, TIMEOUT_MS),
            "natsConnection_Request (concurrent)");
        if (natsMsg_GetDataLength(reply) != PAYLOAD)
            bench_die("request: reply of %d bytes", natsMsg_GetDataLength(reply));
        natsMsg_Destroy(reply);
        t->n++;
    }
    return NULL;
}

/* cfg->threads requesters, a connection each, for cfg->max_ns. */
static void concurrent_requests(const run_cfg *cfg, run_out *out)
{
    conc_thread th[CONC];
    uint64_t start, end;
    size_t total = 0;
    int n = cfg->threads > CONC ? CONC : cfg->threads;

    for (int i = 0; i < n; i++) {
        memset(&th[i], 0, sizeof th[i]);
        th[i].cfg = cfg;
        th[i].nc = bench_raw_connect(cfg->url, false);
    }
    start = bench_now_ns();
    for (int i = 0; i < n; i++) {
        th[i].deadline = start + cfg->max_ns;
        if (pthread_create(&th[i].tid, NULL, conc_main, &th[i]) != 0)
            bench_die("pthread_create failed");
    }
    for (int i = 0; i < n; i++) {
        pthread_join(th[i].tid, NULL);
        total += th[i].n;
    }
    end = bench_now_ns();
    for (int i = 0; i < n; i++)
        natsConnection_Destroy(th[i].nc);
    out->n = total;
    out->rate = (double)total * 1e9 / (double)(end - start);
    out->p50 = 0;
}

static void requests(const run_cfg *cfg, double *lat_us, run_out *out)
{
    if (cfg->threads <= 1)
        serial_requests(cfg, lat_us, out);
    else
        concurrent_requests(cfg, out);
}

/* --- baseline: raw libnats responder ---------------------------------------- */

static void raw_respond(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    const char *reply = natsMsg_GetReply(msg);

    (void)sub;
    (void)closure;
    if (reply == NULL)
        bench_die("raw responder: request without a reply subject");
    bench_check_nats(natsConnection_Publish(nc, reply, payload, PAYLOAD), "raw respond");
    natsMsg_Destroy(msg);
}

static void run_raw(const run_cfg *cfg, double *lat_us, run_out *out)
{
    natsConnection *rsp_nc = bench_raw_connect(cfg->url, true);
    natsSubscription *sub = NULL;

    bench_check_nats(natsConnection_Subscribe(&sub, rsp_nc, cfg->subject, raw_respond, NULL),
                     "raw subscribe");
    bench_check_nats(natsConnection_Flush(rsp_nc), "raw flush (responder)");
    requests(cfg, lat_us, out);
    bench_check_nats(natsSubscription_Unsubscribe(sub), "raw unsubscribe");
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(rsp_nc);
}

/* --- mainstack: the runtime --------------------------------------------------- */

static void run_ms(const run_cfg *cfg, bool inline_dispatch, double *lat_us, run_out *out)
{
    ms_topic topics[2] = {{cfg->subject, 0}, {NULL, 0}};
    ms_component_ops ops = {
        .abi_version = MS_COMPONENT_ABI,
        .metadata = {COMPONENT, "1.0.0", "echo for bench_runtime_reqrep"},
        .flags = inline_dispatch ? MS_COMPONENT_INLINE : 0,
        .create = echo_create,
        .destroy = echo_destroy,
        .initialize = echo_init,
        .topics = topics,
        .handle_message = echo_handle,
    };
    ms_runtime_options o;
    ms_runtime *rt = NULL;
    ms_instance *inst = NULL;

    ms_runtime_options_init(&o);
    o.url = cfg->url;
    o.data_root = cfg->data_root;
    o.host_name = "bench-runtime-reqrep";
    bench_check_ms(ms_runtime_create(&o, &rt), "ms_runtime_create");
    bench_check_ms(ms_runtime_add(rt, &ops, NULL, &inst), "ms_runtime_add");
    if (ms_instance_get_state(inst) != MS_INSTANCE_RUNNING)
        bench_die("echo instance is %s, not running",
                  ms_instance_state_str(ms_instance_get_state(inst)));
    requests(cfg, lat_us, out);
    bench_check_ms(ms_runtime_shutdown(rt, 5000), "ms_runtime_shutdown");
    ms_runtime_destroy(rt);
}

/* --- driver ------------------------------------------------------------------ */

/* Log lines of the runtime are formatted as usual but not printed: the
 * results go to stdout and the progress to stderr. */
static void quiet_sink(ms_log_level level, const char *line, void *closure)
{
    (void)line;
    if (level >= MS_LOG_WARN)
        fprintf(stderr, "%s\n", line);
    (void)closure;
}

enum { RAW = 0, MS = 1, INL = 2, NSIDES = 3 };
static const char *const side_names[NSIDES] = {"raw", "mainstack", "inline"};

typedef struct side_stats {
    double rates[MAX_ROUNDS], p50s[MAX_ROUNDS];
    size_t nrounds;
    double *lat; /* pooled latencies (serial runs) */
    size_t nlat;
} side_stats;

static bool side_enabled(const bench_args *args, int side)
{
    return side == RAW ? args->run_baseline : args->run_mainstack;
}

/* rounds x the three sides, the order rotating each round. */
static void measure(const char *name, run_cfg *cfg, const bench_args *args, int rounds,
                    side_stats st[NSIDES])
{
    run_out out;

    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < NSIDES; k++) {
            int side = (k + round) % NSIDES;
            side_stats *ss = &st[side];
            double *lat = ss->lat != NULL ? ss->lat + ss->nlat : NULL;

            if (!side_enabled(args, side))
                continue;
            snprintf(cfg->subject, sizeof cfg->subject, "bench.rtreqrep.%s.%d.%d", side_names[side],
                     cfg->threads, round);
            if (side == RAW)
                run_raw(cfg, lat, &out);
            else
                run_ms(cfg, side == INL, lat, &out);
            ss->rates[ss->nrounds] = out.rate;
            ss->p50s[ss->nrounds] = out.p50;
            ss->nrounds++;
            if (ss->lat != NULL)
                ss->nlat += out.n;
            bench_log("%s round %d %-9s %.0f req/s (%zu requests)", name, round, side_names[side],
                      out.rate, out.n);
        }
    }
}

/* Median over rounds of num[i] / den[i] (NAN when a side did not run). */
static double paired_median(const double *num, const double *den, size_t nnum, size_t nden)
{
    double q[MAX_ROUNDS];
    size_t n = nnum < nden ? nnum : nden;

    for (size_t i = 0; i < n; i++)
        q[i] = den[i] > 0 ? num[i] / den[i] : 0.0;
    return bench_median(q, n);
}

/* The serial results of side (MS or INL) against RAW. The arrays are
 * sorted here (paired ratios first: the sides of one round ran one after
 * the other, so their ratio cancels slow swings of a shared machine's
 * load better than the ratio of the two medians). */
static void emit_serial(side_stats st[NSIDES], int side, int rounds)
{
    side_stats *raw = &st[RAW], *ms = &st[side];
    bool inl = side == INL;
    double paired_rate = paired_median(ms->rates, raw->rates, ms->nrounds, raw->nrounds);
    double paired_p50 = paired_median(raw->p50s, ms->p50s, raw->nrounds, ms->nrounds);
    double ms_p[3], raw_p[3];
    bench_result r;

    bench_sort(raw->lat, raw->nlat);
    bench_sort(ms->lat, ms->nlat);
    ms_p[0] = bench_percentile(ms->lat, ms->nlat, 50);
    ms_p[1] = bench_percentile(ms->lat, ms->nlat, 99);
    ms_p[2] = bench_percentile(ms->lat, ms->nlat, 99.9);
    raw_p[0] = bench_percentile(raw->lat, raw->nlat, 50);
    raw_p[1] = bench_percentile(raw->lat, raw->nlat, 99);
    raw_p[2] = bench_percentile(raw->lat, raw->nlat, 99.9);

    bench_result_init(&r, inl ? "runtime_reqrep_inline_64b" : "runtime_reqrep_64b", "req/s", true,
                      0.80);
    r.value = bench_median(ms->rates, ms->nrounds);
    r.baseline = bench_median(raw->rates, raw->nrounds);
    bench_result_add(&r, "p50_us", ms_p[0]);
    bench_result_add(&r, "p99_us", ms_p[1]);
    bench_result_add(&r, "p999_us", ms_p[2]);
    bench_result_add(&r, "baseline_p50_us", raw_p[0]);
    bench_result_add(&r, "baseline_p99_us", raw_p[1]);
    bench_result_add(&r, "baseline_p999_us", raw_p[2]);
    bench_result_add(&r, "paired_ratio", paired_rate);
    bench_result_add(&r, "requests", (double)ms->nlat);
    bench_result_add(&r, "baseline_requests", (double)raw->nlat);
    bench_result_add(&r, "rounds", (double)rounds);
    r.note = inl ? "MS_COMPONENT_INLINE echo; raw requester; baseline: raw SendAsap responder"
                 : "echo on the worker pool; raw requester; baseline: raw SendAsap responder";
    bench_result_emit(&r);

    bench_result_init(&r, inl ? "runtime_reqrep_inline_p50" : "runtime_reqrep_p50", "us", false,
                      0.80);
    r.value = bench_median(ms->p50s, ms->nrounds);
    r.baseline = bench_median(raw->p50s, raw->nrounds);
    bench_result_add(&r, "p99_us", ms_p[1]);
    bench_result_add(&r, "p999_us", ms_p[2]);
    bench_result_add(&r, "baseline_p99_us", raw_p[1]);
    bench_result_add(&r, "baseline_p999_us", raw_p[2]);
    bench_result_add(&r, "max_latency_factor", 1.25);
    bench_result_add(&r, "paired_ratio", paired_p50);
    bench_result_add(&r, "rounds", (double)rounds);
    r.note = "median of per-round p50s; ratio = raw/mainstack; target = p50 at most 1.25x raw";
    bench_result_emit(&r);
}

static void emit_conc(side_stats st[NSIDES], int side, int rounds)
{
    side_stats *raw = &st[RAW], *ms = &st[side];
    double paired_rate = paired_median(ms->rates, raw->rates, ms->nrounds, raw->nrounds);
    bench_result r;

    bench_result_init(&r,
                      side == INL ? "runtime_reqrep_inline_conc_64b" : "runtime_reqrep_conc_64b",
                      "req/s", true, 0);
    r.value = bench_median(ms->rates, ms->nrounds);
    r.baseline = bench_median(raw->rates, raw->nrounds);
    bench_result_add(&r, "requesters", CONC);
    bench_result_add(&r, "paired_ratio", paired_rate);
    bench_result_add(&r, "rounds", (double)rounds);
    r.note = "CONC raw requesters, one connection each, for a fixed time";
    bench_result_emit(&r);
}

int main(int argc, char **argv)
{
    bench_args args;
    bench_server srv;
    run_cfg cfg;
    run_out out;
    side_stats *st;
    char data_root[] = "/tmp/ms-bench-rt-XXXXXX";
    char cmd[128];
    int rounds;

    bench_args_parse(argc, argv, &args);
    rounds = args.rounds > MAX_ROUNDS ? MAX_ROUNDS : args.rounds;
    memset(payload, 'r', sizeof payload);
    ms_log_set_sink(quiet_sink, NULL);
    if (mkdtemp(data_root) == NULL)
        bench_die("mkdtemp %s failed", data_root);

    memset(&cfg, 0, sizeof cfg);
    cfg.data_root = data_root;
    cfg.max_requests = args.quick ? 2000 : 40000;
    cfg.max_ns = (args.quick ? 250 : 1000) * 1000000ull;
    cfg.threads = 1;
    st = calloc(NSIDES, sizeof *st);
    if (st == NULL)
        bench_die("out of memory");
    for (int i = 0; i < NSIDES; i++) {
        st[i].lat = calloc((size_t)rounds * cfg.max_requests, sizeof *st[i].lat);
        if (st[i].lat == NULL)
            bench_die("out of memory");
    }

    bench_server_start(&srv);
    cfg.url = srv.url;
    if (!args.quick) {
        run_cfg warm = cfg;
        snprintf(warm.subject, sizeof warm.subject, "bench.rtreqrep.warmup");
        warm.max_requests = 2000;
        if (args.run_baseline)
            run_raw(&warm, st[RAW].lat, &out);
        if (args.run_mainstack) {
            run_ms(&warm, false, st[MS].lat, &out);
            run_ms(&warm, true, st[INL].lat, &out);
        }
    }

    /* serial */
    measure("runtime_reqrep_64b", &cfg, &args, rounds, st);
    emit_serial(st, MS, rounds);
    emit_serial(st, INL, rounds);

    /* concurrent */
    for (int i = 0; i < NSIDES; i++) {
        free(st[i].lat);
        memset(&st[i], 0, sizeof st[i]);
    }
    cfg.threads = CONC;
    cfg.max_ns = (args.quick ? 150 : 1000) * 1000000ull;
    measure("runtime_reqrep_conc_64b", &cfg, &args, rounds, st);
    emit_conc(st, MS, rounds);
    emit_conc(st, INL, rounds);

    bench_server_stop(&srv);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data_root);
    if (system(cmd) != 0)
        bench_log("could not remove %s", data_root);
    free(st);
    return 0;
}
