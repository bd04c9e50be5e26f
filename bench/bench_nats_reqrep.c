/*
 * bench_nats_reqrep.c - NATS request/reply with one serial requester, 64 B.
 *
 * A requester connection sends a request, waits for the reply, and sends the
 * next; a responder connection's handler answers each with 64 bytes. Rate =
 * requests completed / elapsed time; each round trip is timed for the
 * latency percentiles (pooled over all rounds of a side).
 *
 * Baseline: raw libnats natsConnection_Request and a callback that does
 * natsConnection_Publish to the reply subject, on a connection with
 * natsOptions_SetSendAsap(true) (without it every reply would wait for the
 * flusher and raw would be capped near 1,000 req/s: not a fair baseline).
 * Mainstack: ms_bus_request and a handler calling ms_bus_respond.
 *
 * Result: nats_reqrep_64b (req/s, target ratio 0.90) with p50/p99/p99.9 in
 * microseconds for both sides.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "mainstack/bus.h"
#include "mainstack/message.h"

#define PAYLOAD 64
#define TIMEOUT_MS 5000

typedef struct run_cfg {
    const char *url;
    const char *subject;
    size_t max_requests; /* stop after this many... */
    uint64_t max_ns;     /* ...or after this long, whichever is first */
} run_cfg;

typedef struct run_out {
    double rate; /* req/s */
    size_t n;    /* requests completed (latencies written) */
} run_out;

static unsigned char payload[PAYLOAD];

/* --- raw libnats --------------------------------------------------------- */

static void raw_respond(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    const char *reply = natsMsg_GetReply(msg);

    if (reply == NULL)
        bench_die("raw responder: request without a reply subject");
    bench_check_nats(natsConnection_Publish(nc, reply, payload, PAYLOAD), "raw respond");
    natsMsg_Destroy(msg);
}

static void run_raw(const run_cfg *cfg, double *lat_us, run_out *out)
{
    natsConnection *rsp_nc = bench_raw_connect(cfg->url, true);
    natsConnection *req_nc = bench_raw_connect(cfg->url, false);
    natsSubscription *sub = NULL;
    uint64_t t0, t1, start;
    size_t i;

    bench_check_nats(natsConnection_Subscribe(&sub, rsp_nc, cfg->subject, raw_respond, NULL),
                     "raw subscribe");
    bench_check_nats(natsConnection_Flush(rsp_nc), "raw flush (responder)");

    start = bench_now_ns();
    t1 = start;
    for (i = 0; i < cfg->max_requests && t1 - start < cfg->max_ns; i++) {
        natsMsg *reply = NULL;

        t0 = bench_now_ns();
        bench_check_nats(
            natsConnection_Request(&reply, req_nc, cfg->subject, payload, PAYLOAD, TIMEOUT_MS),
            "raw request");
        t1 = bench_now_ns();
        if (natsMsg_GetDataLength(reply) != PAYLOAD)
            bench_die("raw request: reply of %d bytes", natsMsg_GetDataLength(reply));
        natsMsg_Destroy(reply);
        lat_us[i] = (double)(t1 - t0) / 1e3;
    }
    out->n = i;
    out->rate = t1 > start ? (double)i * 1e9 / (double)(t1 - start) : 0.0;

    bench_check_nats(natsSubscription_Unsubscribe(sub), "raw unsubscribe");
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(req_nc);
    natsConnection_Destroy(rsp_nc);
}

/* --- mainstack ----------------------------------------------------------- */

static void ms_respond(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    bench_check_ms(ms_bus_respond(bus, msg, payload, PAYLOAD), "ms_bus_respond");
}

static void run_ms(const run_cfg *cfg, double *lat_us, run_out *out)
{
    ms_bus *rsp_bus = NULL, *req_bus = NULL;
    ms_subscription *sub = NULL;
    uint64_t t0, t1, start;
    size_t i;

    bench_check_ms(ms_bus_connect_url(cfg->url, &rsp_bus), "ms_bus_connect (responder)");
    bench_check_ms(ms_bus_connect_url(cfg->url, &req_bus), "ms_bus_connect (requester)");
    bench_check_ms(ms_bus_subscribe(rsp_bus, cfg->subject, NULL, ms_respond, NULL, &sub),
                   "ms_bus_subscribe");
    bench_check_ms(ms_bus_flush(rsp_bus, 5000), "ms_bus_flush (responder)");

    start = bench_now_ns();
    t1 = start;
    for (i = 0; i < cfg->max_requests && t1 - start < cfg->max_ns; i++) {
        ms_message *reply = NULL;

        t0 = bench_now_ns();
        bench_check_ms(ms_bus_request(req_bus, cfg->subject, payload, PAYLOAD, TIMEOUT_MS, &reply),
                       "ms_bus_request");
        t1 = bench_now_ns();
        if (ms_message_len(reply) != PAYLOAD)
            bench_die("ms_bus_request: reply of %zu bytes", ms_message_len(reply));
        ms_message_unref(reply);
        lat_us[i] = (double)(t1 - t0) / 1e3;
    }
    out->n = i;
    out->rate = t1 > start ? (double)i * 1e9 / (double)(t1 - start) : 0.0;

    bench_check_ms(ms_subscription_unsubscribe(sub), "ms_subscription_unsubscribe");
    ms_bus_destroy(req_bus);
    ms_bus_destroy(rsp_bus);
}

/* --- driver -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bench_args args;
    bench_server srv;
    run_cfg cfg;
    run_out out;
    double raw_rates[32], ms_rates[32];
    double *raw_lat, *ms_lat;
    size_t nr = 0, nm = 0, raw_n = 0, ms_n = 0;
    char subject[64];
    bench_result r;
    int rounds;

    bench_args_parse(argc, argv, &args);
    rounds = args.rounds > 32 ? 32 : args.rounds;
    memset(payload, 'r', sizeof payload);
    memset(&cfg, 0, sizeof cfg);
    cfg.max_requests = args.quick ? 2000 : 40000;
    cfg.max_ns = (args.quick ? 300 : 1000) * 1000000ull;
    raw_lat = calloc((size_t)rounds * cfg.max_requests, sizeof *raw_lat);
    ms_lat = calloc((size_t)rounds * cfg.max_requests, sizeof *ms_lat);
    if (raw_lat == NULL || ms_lat == NULL)
        bench_die("out of memory");

    bench_server_start(&srv);
    cfg.url = srv.url;
    if (!args.quick) {
        run_cfg warm = cfg;
        warm.subject = "bench.reqrep.warmup";
        warm.max_requests = 2000;
        if (args.run_baseline)
            run_raw(&warm, raw_lat, &out);
        if (args.run_mainstack)
            run_ms(&warm, ms_lat, &out);
    }
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 2; k++) {
            bool mainstack = (k == 1) != (round % 2 == 1);
            if (mainstack ? !args.run_mainstack : !args.run_baseline)
                continue;
            snprintf(subject, sizeof subject, "bench.reqrep.%s.%d", mainstack ? "ms" : "raw",
                     round);
            cfg.subject = subject;
            if (mainstack) {
                run_ms(&cfg, ms_lat + ms_n, &out);
                ms_rates[nm++] = out.rate;
                ms_n += out.n;
            } else {
                run_raw(&cfg, raw_lat + raw_n, &out);
                raw_rates[nr++] = out.rate;
                raw_n += out.n;
            }
            bench_log("nats_reqrep_64b round %d %-9s %.0f req/s (%zu requests)", round,
                      mainstack ? "mainstack" : "raw", out.rate, out.n);
        }
    }
    bench_server_stop(&srv);

    bench_sort(raw_lat, raw_n);
    bench_sort(ms_lat, ms_n);
    bench_result_init(&r, "nats_reqrep_64b", "req/s", true, 0.90);
    r.value = bench_median(ms_rates, nm);
    r.baseline = bench_median(raw_rates, nr);
    bench_result_add(&r, "p50_us", bench_percentile(ms_lat, ms_n, 50));
    bench_result_add(&r, "p99_us", bench_percentile(ms_lat, ms_n, 99));
    bench_result_add(&r, "p999_us", bench_percentile(ms_lat, ms_n, 99.9));
    bench_result_add(&r, "baseline_p50_us", bench_percentile(raw_lat, raw_n, 50));
    bench_result_add(&r, "baseline_p99_us", bench_percentile(raw_lat, raw_n, 99));
    bench_result_add(&r, "baseline_p999_us", bench_percentile(raw_lat, raw_n, 99.9));
    bench_result_add(&r, "requests", (double)ms_n);
    bench_result_add(&r, "baseline_requests", (double)raw_n);
    bench_result_add(&r, "rounds", (double)rounds);
    bench_result_emit(&r);

    free(ms_lat);
    free(raw_lat);
    return 0;
}
