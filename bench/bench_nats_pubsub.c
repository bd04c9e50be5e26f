/*
 * bench_nats_pubsub.c - NATS publish -> subscribe throughput.
 *
 * One publisher connection sends N messages as fast as it can to one
 * subject; one subscriber connection's handler receives them. Rate =
 * messages received / (time of the last receive - time of the first
 * publish). The baseline is the same program written on raw libnats
 * (natsConnection_Publish -> async subscription callback); the mainstack side
 * uses ms_bus_publish -> ms_bus_subscribe handler. Both sides: same server,
 * same count, same pending limits (large enough that neither drops; drops are
 * counted and reported), same handler work (bench_counter_hit).
 *
 * Results: nats_pubsub_16b and nats_pubsub_1k (target ratio 0.90), and the
 * informational nats_pubsub_meta_16b: ms_bus_publish_msg of a message with
 * all metadata headers against raw natsConnection_PublishMsg of a natsMsg with
 * the same six headers (precomputed values: the raw side does not pay for
 * generating ids, timestamps and trace ids).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "mainstack/bus.h"
#include "mainstack/message.h"

enum mode { MODE_PLAIN, MODE_META };

typedef struct run_cfg {
    const char *url;
    const char *subject;
    size_t payload;
    uint64_t count;
    enum mode mode;
} run_cfg;

typedef struct run_out {
    double rate;       /* msgs/s */
    uint64_t received; /* messages the handler saw */
    uint64_t dropped;  /* slow-consumer drops */
} run_out;

/* Pending limits of both sides: room for the whole run, so that a lagging
 * handler queues instead of dropping. */
static int pending_msgs_for(uint64_t count)
{
    return count + 1024 > (uint64_t)INT_MAX ? INT_MAX : (int)(count + 1024);
}
#define PENDING_BYTES INT_MAX

static void fill_payload(unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (unsigned char)('a' + i % 26);
}

static void finish(const run_cfg *cfg, bench_counter *c, uint64_t t0, uint64_t t1, uint64_t dropped,
                   run_out *out)
{
    out->received = atomic_load(&c->count);
    out->dropped = dropped;
    out->rate = t1 > t0 ? (double)out->received * 1e9 / (double)(t1 - t0) : 0.0;
    if (out->received != cfg->count)
        bench_log("%s: received %llu of %llu (dropped %llu)", cfg->subject,
                  (unsigned long long)out->received, (unsigned long long)cfg->count,
                  (unsigned long long)dropped);
}

/* --- raw libnats --------------------------------------------------------- */

/* Precomputed metadata for the raw META mode: the same keys and value sizes
 * as a mainstack message built by ms_msg_event. */
static const char *const raw_meta[][2] = {
    {"Ms-Id", "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
    {"Ms-Source", "bench"},
    {"Ms-Type", "event"},
    {"Ms-Correlation-Id", "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c"},
    {"Ms-Time", "2026-11-25T10:43:46.123456Z"},
    {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
};

static void raw_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    bench_counter_hit(closure);
    natsMsg_Destroy(msg);
}

static void raw_on_meta_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    const char *id = NULL;

    /* a raw application reads at least the header it cares about */
    if (natsMsgHeader_Get(msg, "Ms-Id", &id) != NATS_OK || id == NULL)
        bench_die("raw subscriber: message without Ms-Id");
    bench_counter_hit(closure);
    natsMsg_Destroy(msg);
}

static uint64_t raw_dropped(void *closure)
{
    int64_t d = 0;

    if (natsSubscription_GetDropped(closure, &d) != NATS_OK || d < 0)
        return 0;
    return (uint64_t)d;
}

static void raw_publish_meta(natsConnection *nc, const char *subject, const void *data, size_t len)
{
    natsMsg *m = NULL;

    bench_check_nats(natsMsg_Create(&m, subject, NULL, data, (int)len), "natsMsg_Create");
    for (size_t h = 0; h < sizeof raw_meta / sizeof raw_meta[0]; h++)
        bench_check_nats(natsMsgHeader_Set(m, raw_meta[h][0], raw_meta[h][1]), "natsMsgHeader_Set");
    bench_check_nats(natsConnection_PublishMsg(nc, m), "natsConnection_PublishMsg");
    natsMsg_Destroy(m);
}

static void run_raw(const run_cfg *cfg, run_out *out)
{
    natsConnection *sub_nc = bench_raw_connect(cfg->url, false);
    natsConnection *pub_nc = bench_raw_connect(cfg->url, bench_raw_send_asap());
    natsSubscription *sub = NULL;
    unsigned char *buf = malloc(cfg->payload);
    bench_counter c;
    uint64_t t0, t1;

    if (buf == NULL)
        bench_die("out of memory");
    fill_payload(buf, cfg->payload);
    bench_counter_init(&c, cfg->count);
    bench_check_nats(natsConnection_Subscribe(&sub, sub_nc, cfg->subject,
                                              cfg->mode == MODE_META ? raw_on_meta_msg : raw_on_msg,
                                              &c),
                     "raw subscribe");
    bench_check_nats(
        natsSubscription_SetPendingLimits(sub, pending_msgs_for(cfg->count), PENDING_BYTES),
        "raw pending limits");
    bench_check_nats(natsConnection_Flush(sub_nc), "raw flush (subscriber)");

    t0 = bench_now_ns();
    for (uint64_t i = 0; i < cfg->count; i++) {
        if (cfg->mode == MODE_META)
            raw_publish_meta(pub_nc, cfg->subject, buf, cfg->payload);
        else
            bench_check_nats(natsConnection_Publish(pub_nc, cfg->subject, buf, (int)cfg->payload),
                             "raw publish");
    }
    bench_check_nats(natsConnection_FlushTimeout(pub_nc, 30000), "raw flush (publisher)");
    t1 = bench_counter_wait(&c, raw_dropped, sub, 3000);
    finish(cfg, &c, t0, t1, raw_dropped(sub), out);

    bench_check_nats(natsSubscription_Unsubscribe(sub), "raw unsubscribe");
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(pub_nc);
    natsConnection_Destroy(sub_nc);
    bench_counter_destroy(&c);
    free(buf);
}

/* --- mainstack ----------------------------------------------------------- */

static void ms_on_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    bench_counter_hit(closure);
}

static void ms_on_meta_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    if (ms_message_id(msg) == NULL)
        bench_die("mainstack subscriber: message without an id");
    bench_counter_hit(closure);
}

static uint64_t ms_dropped(void *closure)
{
    return ms_subscription_dropped(closure);
}

static ms_bus *ms_connect(const run_cfg *cfg)
{
    ms_bus_options o;
    ms_bus *bus = NULL;

    ms_bus_options_init(&o);
    o.url = cfg->url;
    o.pending_msgs_limit = pending_msgs_for(cfg->count);
    o.pending_bytes_limit = PENDING_BYTES;
    bench_check_ms(ms_bus_connect(&o, &bus), "ms_bus_connect");
    return bus;
}

static void ms_publish_meta(ms_bus *bus, const char *subject, const void *data, size_t len,
                            const char *correlation)
{
    ms_message *m = NULL;

    /* the builder fills id, time, trace context, type and source */
    bench_check_ms(ms_msg_event(subject, "bench", NULL, &m), "ms_msg_event");
    bench_check_ms(ms_message_set_data(m, data, len), "ms_message_set_data");
    bench_check_ms(ms_message_set_correlation_id(m, correlation), "set_correlation_id");
    bench_check_ms(ms_bus_publish_msg(bus, m), "ms_bus_publish_msg");
    ms_message_unref(m);
}

static void run_ms(const run_cfg *cfg, run_out *out)
{
    ms_bus *sub_bus = ms_connect(cfg);
    ms_bus *pub_bus = ms_connect(cfg);
    ms_subscription *sub = NULL;
    unsigned char *buf = malloc(cfg->payload);
    char correlation[MS_ID_LEN + 1];
    bench_counter c;
    uint64_t t0, t1;

    if (buf == NULL)
        bench_die("out of memory");
    fill_payload(buf, cfg->payload);
    ms_id_new(correlation);
    bench_counter_init(&c, cfg->count);
    bench_check_ms(ms_bus_subscribe(sub_bus, cfg->subject, NULL,
                                    cfg->mode == MODE_META ? ms_on_meta_msg : ms_on_msg, &c, &sub),
                   "ms_bus_subscribe");
    bench_check_ms(ms_bus_flush(sub_bus, 5000), "ms_bus_flush (subscriber)");

    t0 = bench_now_ns();
    for (uint64_t i = 0; i < cfg->count; i++) {
        if (cfg->mode == MODE_META)
            ms_publish_meta(pub_bus, cfg->subject, buf, cfg->payload, correlation);
        else
            bench_check_ms(ms_bus_publish(pub_bus, cfg->subject, buf, cfg->payload),
                           "ms_bus_publish");
    }
    bench_check_ms(ms_bus_flush(pub_bus, 30000), "ms_bus_flush (publisher)");
    t1 = bench_counter_wait(&c, ms_dropped, sub, 3000);
    finish(cfg, &c, t0, t1, ms_dropped(sub), out);

    bench_check_ms(ms_subscription_unsubscribe(sub), "ms_subscription_unsubscribe");
    ms_bus_destroy(pub_bus);
    ms_bus_destroy(sub_bus);
    bench_counter_destroy(&c);
    free(buf);
}

/* --- driver -------------------------------------------------------------- */

typedef struct bench_case {
    const char *name;
    size_t payload;
    uint64_t count;
    uint64_t quick_count;
    enum mode mode;
    double target; /* 0: informational */
} bench_case;

static void run_case(const bench_args *args, const bench_server *srv, const bench_case *bc)
{
    run_cfg cfg = {.url = srv->url, .payload = bc->payload, .mode = bc->mode};
    double raw_rates[32], ms_rates[32];
    uint64_t raw_drops = 0, ms_drops = 0, raw_lost = 0, ms_lost = 0;
    size_t nr = 0, nm = 0;
    char subject[96];
    run_out out;
    bench_result r;
    int rounds = args->rounds > 32 ? 32 : args->rounds;

    cfg.count = args->quick ? bc->quick_count : bc->count;
    /* warm-up: server, sockets, allocator arenas (not counted) */
    if (!args->quick) {
        run_cfg warm = cfg;
        warm.count = cfg.count / 10;
        warm.subject = "bench.warmup";
        if (args->run_baseline)
            run_raw(&warm, &out);
        if (args->run_mainstack)
            run_ms(&warm, &out);
    }
    for (int round = 0; round < rounds; round++) {
        /* ABBA: alternate which side goes first */
        for (int k = 0; k < 2; k++) {
            bool mainstack = (k == 1) != (round % 2 == 1);
            if (mainstack && !args->run_mainstack)
                continue;
            if (!mainstack && !args->run_baseline)
                continue;
            snprintf(subject, sizeof subject, "bench.%s.%s.%d", bc->name, mainstack ? "ms" : "raw",
                     round);
            cfg.subject = subject;
            if (mainstack) {
                run_ms(&cfg, &out);
                ms_rates[nm++] = out.rate;
                ms_drops += out.dropped;
                ms_lost += cfg.count - out.received;
            } else {
                run_raw(&cfg, &out);
                raw_rates[nr++] = out.rate;
                raw_drops += out.dropped;
                raw_lost += cfg.count - out.received;
            }
            bench_log("%s round %d %-9s %.0f msgs/s (%llu msgs, %llu dropped)", bc->name, round,
                      mainstack ? "mainstack" : "raw", out.rate, (unsigned long long)out.received,
                      (unsigned long long)out.dropped);
        }
    }
    bench_result_init(&r, bc->name, "msgs/s", true, bc->target);
    r.value = bench_median(ms_rates, nm);
    r.baseline = bench_median(raw_rates, nr);
    bench_result_add(&r, "msgs", (double)cfg.count);
    bench_result_add(&r, "payload", (double)bc->payload);
    bench_result_add(&r, "rounds", (double)rounds);
    if (bench_raw_send_asap())
        bench_result_add(&r, "baseline_send_asap", 1);
    if (nm > 0) {
        bench_result_add(&r, "min", ms_rates[0]);
        bench_result_add(&r, "max", ms_rates[nm - 1]);
    }
    if (nr > 0) {
        bench_result_add(&r, "baseline_min", raw_rates[0]);
        bench_result_add(&r, "baseline_max", raw_rates[nr - 1]);
    }
    bench_result_add(&r, "dropped", (double)ms_drops);
    bench_result_add(&r, "baseline_dropped", (double)raw_drops);
    bench_result_add(&r, "lost", (double)ms_lost);
    bench_result_add(&r, "baseline_lost", (double)raw_lost);
    if (bc->mode == MODE_META)
        r.note = "ms_bus_publish_msg with 6 metadata headers (built per message) vs raw "
                 "natsMsg with the same headers precomputed";
    bench_result_emit(&r);
}

int main(int argc, char **argv)
{
    static const bench_case cases[] = {
        {"nats_pubsub_16b", 16, 1000000, 50000, MODE_PLAIN, 0.90},
        {"nats_pubsub_1k", 1024, 300000, 20000, MODE_PLAIN, 0.90},
        {"nats_pubsub_meta_16b", 16, 200000, 20000, MODE_META, 0.0},
    };
    bench_args args;
    bench_server srv;

    bench_args_parse(argc, argv, &args);
    bench_server_start(&srv);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&args, &srv, &cases[i]);
    bench_server_stop(&srv);
    return 0;
}
