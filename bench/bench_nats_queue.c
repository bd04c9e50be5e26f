/*
 * bench_nats_queue.c - NATS queue group of 4 subscribers, 16 B messages.
 *
 * One publisher connection sends N messages to a subject; a second
 * connection holds four subscriptions in one queue group (same process, each
 * its own subscription), so the server hands each message to exactly one of
 * them. Rate = messages received by the group / (last receive - first
 * publish). Each member counts its own share, to check that every member got
 * work (the server picks members at random, so with N messages each should
 * get about N/4).
 *
 * Baseline: raw libnats natsConnection_QueueSubscribe x4 with the same
 * pending limits; mainstack: ms_bus_subscribe(..., queue, ...) x4.
 * Result: nats_queue4_16b (target ratio 0.90) with the smallest member share
 * of each side, as a fraction of the fair share N/4.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "mainstack/bus.h"

#define MEMBERS 4
#define PAYLOAD 16
#define QUEUE "workers"

typedef struct member {
    bench_counter *total;
    atomic_uint_fast64_t got;
} member;

typedef struct run_cfg {
    const char *url;
    const char *subject;
    uint64_t count;
} run_cfg;

typedef struct run_out {
    double rate;
    uint64_t received, dropped;
    double min_share; /* smallest member count / (received / MEMBERS) */
} run_out;

static unsigned char payload[PAYLOAD];

static int pending_msgs_for(uint64_t count)
{
    return count + 1024 > (uint64_t)INT_MAX ? INT_MAX : (int)(count + 1024);
}

static void finish(const run_cfg *cfg, bench_counter *c, member *m, uint64_t t0, uint64_t t1,
                   uint64_t dropped, run_out *out)
{
    uint64_t least = UINT64_MAX;

    out->received = atomic_load(&c->count);
    out->dropped = dropped;
    out->rate = t1 > t0 ? (double)out->received * 1e9 / (double)(t1 - t0) : 0.0;
    for (int i = 0; i < MEMBERS; i++) {
        uint64_t g = atomic_load(&m[i].got);
        if (g < least)
            least = g;
    }
    out->min_share = out->received > 0 ? (double)least * MEMBERS / (double)out->received : 0.0;
    if (out->received != cfg->count)
        bench_log("%s: received %llu of %llu (dropped %llu)", cfg->subject,
                  (unsigned long long)out->received, (unsigned long long)cfg->count,
                  (unsigned long long)dropped);
}

static void members_init(member *m, bench_counter *c)
{
    for (int i = 0; i < MEMBERS; i++) {
        m[i].total = c;
        atomic_init(&m[i].got, 0);
    }
}

/* --- raw libnats --------------------------------------------------------- */

static void raw_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    member *m = closure;

    atomic_fetch_add_explicit(&m->got, 1, memory_order_relaxed);
    bench_counter_hit(m->total);
    natsMsg_Destroy(msg);
}

typedef struct raw_subs {
    natsSubscription *s[MEMBERS];
} raw_subs;

static uint64_t raw_dropped(void *closure)
{
    raw_subs *rs = closure;
    uint64_t total = 0;

    for (int i = 0; i < MEMBERS; i++) {
        int64_t d = 0;
        if (natsSubscription_GetDropped(rs->s[i], &d) == NATS_OK && d > 0)
            total += (uint64_t)d;
    }
    return total;
}

static void run_raw(const run_cfg *cfg, run_out *out)
{
    natsConnection *sub_nc = bench_raw_connect(cfg->url, false);
    natsConnection *pub_nc = bench_raw_connect(cfg->url, bench_raw_send_asap());
    raw_subs rs = {{NULL}};
    member m[MEMBERS];
    bench_counter c;
    uint64_t t0, t1;

    bench_counter_init(&c, cfg->count);
    members_init(m, &c);
    for (int i = 0; i < MEMBERS; i++) {
        bench_check_nats(
            natsConnection_QueueSubscribe(&rs.s[i], sub_nc, cfg->subject, QUEUE, raw_on_msg, &m[i]),
            "raw queue subscribe");
        bench_check_nats(
            natsSubscription_SetPendingLimits(rs.s[i], pending_msgs_for(cfg->count), INT_MAX),
            "raw pending limits");
    }
    bench_check_nats(natsConnection_Flush(sub_nc), "raw flush (subscribers)");

    t0 = bench_now_ns();
    for (uint64_t i = 0; i < cfg->count; i++)
        bench_check_nats(natsConnection_Publish(pub_nc, cfg->subject, payload, PAYLOAD),
                         "raw publish");
    bench_check_nats(natsConnection_FlushTimeout(pub_nc, 30000), "raw flush (publisher)");
    t1 = bench_counter_wait(&c, raw_dropped, &rs, 3000);
    finish(cfg, &c, m, t0, t1, raw_dropped(&rs), out);

    for (int i = 0; i < MEMBERS; i++) {
        bench_check_nats(natsSubscription_Unsubscribe(rs.s[i]), "raw unsubscribe");
        natsSubscription_Destroy(rs.s[i]);
    }
    natsConnection_Destroy(pub_nc);
    natsConnection_Destroy(sub_nc);
    bench_counter_destroy(&c);
}

/* --- mainstack ----------------------------------------------------------- */

static void ms_on_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    member *m = closure;

    atomic_fetch_add_explicit(&m->got, 1, memory_order_relaxed);
    bench_counter_hit(m->total);
}

typedef struct ms_subs {
    ms_subscription *s[MEMBERS];
} ms_subs;

static uint64_t ms_dropped(void *closure)
{
    ms_subs *ss = closure;
    uint64_t total = 0;

    for (int i = 0; i < MEMBERS; i++)
        total += ms_subscription_dropped(ss->s[i]);
    return total;
}

static ms_bus *ms_connect(const run_cfg *cfg)
{
    ms_bus_options o;
    ms_bus *bus = NULL;

    ms_bus_options_init(&o);
    o.url = cfg->url;
    o.pending_msgs_limit = pending_msgs_for(cfg->count);
    o.pending_bytes_limit = INT_MAX;
    bench_check_ms(ms_bus_connect(&o, &bus), "ms_bus_connect");
    return bus;
}

static void run_ms(const run_cfg *cfg, run_out *out)
{
    ms_bus *sub_bus = ms_connect(cfg);
    ms_bus *pub_bus = ms_connect(cfg);
    ms_subs ss = {{NULL}};
    member m[MEMBERS];
    bench_counter c;
    uint64_t t0, t1;

    bench_counter_init(&c, cfg->count);
    members_init(m, &c);
    for (int i = 0; i < MEMBERS; i++)
        bench_check_ms(ms_bus_subscribe(sub_bus, cfg->subject, QUEUE, ms_on_msg, &m[i], &ss.s[i]),
                       "ms_bus_subscribe (queue)");
    bench_check_ms(ms_bus_flush(sub_bus, 5000), "ms_bus_flush (subscribers)");

    t0 = bench_now_ns();
    for (uint64_t i = 0; i < cfg->count; i++)
        bench_check_ms(ms_bus_publish(pub_bus, cfg->subject, payload, PAYLOAD), "ms_bus_publish");
    bench_check_ms(ms_bus_flush(pub_bus, 30000), "ms_bus_flush (publisher)");
    t1 = bench_counter_wait(&c, ms_dropped, &ss, 3000);
    finish(cfg, &c, m, t0, t1, ms_dropped(&ss), out);

    for (int i = 0; i < MEMBERS; i++)
        bench_check_ms(ms_subscription_unsubscribe(ss.s[i]), "ms_subscription_unsubscribe");
    ms_bus_destroy(pub_bus);
    ms_bus_destroy(sub_bus);
    bench_counter_destroy(&c);
}

/* --- driver -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bench_args args;
    bench_server srv;
    run_cfg cfg;
    run_out out;
    double raw_rates[32], ms_rates[32];
    double raw_share = 1.0, ms_share = 1.0;
    uint64_t raw_drops = 0, ms_drops = 0;
    size_t nr = 0, nm = 0;
    char subject[64];
    bench_result r;
    int rounds;

    bench_args_parse(argc, argv, &args);
    rounds = args.rounds > 32 ? 32 : args.rounds;
    memset(payload, 'q', sizeof payload);
    bench_server_start(&srv);
    memset(&cfg, 0, sizeof cfg);
    cfg.url = srv.url;
    cfg.count = args.quick ? 50000 : 1000000;
    if (!args.quick) {
        run_cfg warm = cfg;
        warm.subject = "bench.queue.warmup";
        warm.count = cfg.count / 10;
        if (args.run_baseline)
            run_raw(&warm, &out);
        if (args.run_mainstack)
            run_ms(&warm, &out);
    }
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 2; k++) {
            bool mainstack = (k == 1) != (round % 2 == 1);
            if (mainstack ? !args.run_mainstack : !args.run_baseline)
                continue;
            snprintf(subject, sizeof subject, "bench.queue.%s.%d", mainstack ? "ms" : "raw", round);
            cfg.subject = subject;
            if (mainstack) {
                run_ms(&cfg, &out);
                ms_rates[nm++] = out.rate;
                ms_drops += out.dropped;
                if (out.min_share < ms_share)
                    ms_share = out.min_share;
            } else {
                run_raw(&cfg, &out);
                raw_rates[nr++] = out.rate;
                raw_drops += out.dropped;
                if (out.min_share < raw_share)
                    raw_share = out.min_share;
            }
            bench_log("nats_queue4_16b round %d %-9s %.0f msgs/s (%llu msgs, %llu dropped, "
                      "smallest share %.2f of fair)",
                      round, mainstack ? "mainstack" : "raw", out.rate,
                      (unsigned long long)out.received, (unsigned long long)out.dropped,
                      out.min_share);
        }
    }
    bench_server_stop(&srv);

    bench_result_init(&r, "nats_queue4_16b", "msgs/s", true, 0.90);
    r.value = bench_median(ms_rates, nm);
    r.baseline = bench_median(raw_rates, nr);
    bench_result_add(&r, "msgs", (double)cfg.count);
    bench_result_add(&r, "members", MEMBERS);
    /* the smallest member's count over all rounds, as a fraction of N/4 */
    bench_result_add(&r, "min_share", ms_share);
    bench_result_add(&r, "baseline_min_share", raw_share);
    bench_result_add(&r, "dropped", (double)ms_drops);
    bench_result_add(&r, "baseline_dropped", (double)raw_drops);
    bench_result_add(&r, "rounds", (double)rounds);
    if (bench_raw_send_asap())
        bench_result_add(&r, "baseline_send_asap", 1);
    /* every member must have had a real share of the work */
    if (nm > 0 && ms_share < 0.5) {
        r.note = "a mainstack queue member got less than half its fair share";
        r.failed = true;
    }
    bench_result_emit(&r);
    return 0;
}
