/*
 * bench_inproc_pubsub.c - inproc publish -> subscribe throughput, 16 B.
 *
 * Mainstack: one inproc:// bus, one subscription; the main thread calls
 * ms_bus_publish N times and the broker's worker runs the handler. Rate =
 * N / (last receive - first publish).
 *
 * Baseline: the least a hand-off between two threads can cost with a mutex
 * and condition variables: a bounded ring of pointers (the same capacity as
 * the mainstack subscription queue), the producer signals the consumer only
 * when the consumer is asleep and the consumer signals the producer only
 * when the producer is asleep on a full ring. The consumer runs the same
 * handler work (bench_counter_hit) on each pointer. It moves pointers to a
 * preallocated payload, so it pays for no message allocation or copy: it is
 * the floor, and the target is a ratio of 0.5.
 *
 * Result: inproc_pubsub_16b (msgs/s, target ratio 0.50).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "mainstack/bus.h"

#define PAYLOAD 16
#define RING_CAP MS_BUS_DEFAULT_PENDING_MSGS

static unsigned char payload[PAYLOAD];

/* --- baseline: bounded ring, mutex + condvars ---------------------------- */

typedef struct ring {
    const void **slot;
    size_t cap;
    size_t head, tail; /* monotonically increasing; used = tail - head */
    bool consumer_waiting, producer_waiting;
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
} ring;

typedef struct consumer_arg {
    ring *q;
    bench_counter *c;
    uint64_t count;
} consumer_arg;

static void ring_init(ring *q, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->slot = calloc(cap, sizeof *q->slot);
    q->cap = cap;
    if (q->slot == NULL || pthread_mutex_init(&q->mu, NULL) != 0 ||
        pthread_cond_init(&q->not_empty, NULL) != 0 || pthread_cond_init(&q->not_full, NULL) != 0)
        bench_die("ring_init failed");
}

static void ring_destroy(ring *q)
{
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->mu);
    free(q->slot);
}

static void ring_push(ring *q, const void *p)
{
    pthread_mutex_lock(&q->mu);
    while (q->tail - q->head == q->cap) {
        q->producer_waiting = true;
        pthread_cond_wait(&q->not_full, &q->mu);
    }
    q->slot[q->tail % q->cap] = p;
    q->tail++;
    if (q->consumer_waiting) {
        q->consumer_waiting = false;
        pthread_cond_signal(&q->not_empty);
    }
    pthread_mutex_unlock(&q->mu);
}

static const void *ring_pop(ring *q)
{
    const void *p;

    pthread_mutex_lock(&q->mu);
    while (q->tail == q->head) {
        q->consumer_waiting = true;
        pthread_cond_wait(&q->not_empty, &q->mu);
    }
    p = q->slot[q->head % q->cap];
    q->head++;
    if (q->producer_waiting) {
        q->producer_waiting = false;
        pthread_cond_signal(&q->not_full);
    }
    pthread_mutex_unlock(&q->mu);
    return p;
}

static void *consumer_main(void *arg)
{
    consumer_arg *a = arg;
    volatile unsigned char sink = 0;

    for (uint64_t i = 0; i < a->count; i++) {
        const unsigned char *p = ring_pop(a->q);
        sink ^= p[0]; /* touch the payload, as a handler would */
        bench_counter_hit(a->c);
    }
    (void)sink;
    return NULL;
}

static double run_baseline(uint64_t count)
{
    ring q;
    bench_counter c;
    consumer_arg a;
    pthread_t th;
    uint64_t t0, t1;

    ring_init(&q, RING_CAP);
    bench_counter_init(&c, count);
    a.q = &q;
    a.c = &c;
    a.count = count;
    if (pthread_create(&th, NULL, consumer_main, &a) != 0)
        bench_die("pthread_create failed");
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < count; i++)
        ring_push(&q, payload);
    t1 = bench_counter_wait(&c, NULL, NULL, 5000);
    if (pthread_join(th, NULL) != 0)
        bench_die("pthread_join failed");
    bench_counter_destroy(&c);
    ring_destroy(&q);
    return t1 > t0 ? (double)count * 1e9 / (double)(t1 - t0) : 0.0;
}

/* --- mainstack ----------------------------------------------------------- */

static void ms_on_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    bench_counter_hit(closure);
}

static double run_ms(const char *url, uint64_t count, uint64_t *received)
{
    ms_bus_options o;
    ms_bus *bus = NULL;
    ms_subscription *sub = NULL;
    bench_counter c;
    uint64_t t0, t1;

    ms_bus_options_init(&o);
    o.url = url;
    o.pending_msgs_limit = RING_CAP;
    bench_check_ms(ms_bus_connect(&o, &bus), "ms_bus_connect (inproc)");
    bench_counter_init(&c, count);
    bench_check_ms(ms_bus_subscribe(bus, "bench.inproc.pubsub", NULL, ms_on_msg, &c, &sub),
                   "ms_bus_subscribe");
    t0 = bench_now_ns();
    for (uint64_t i = 0; i < count; i++)
        bench_check_ms(ms_bus_publish(bus, "bench.inproc.pubsub", payload, PAYLOAD),
                       "ms_bus_publish (inproc)");
    t1 = bench_counter_wait(&c, NULL, NULL, 5000);
    *received = atomic_load(&c.count);
    bench_check_ms(ms_subscription_unsubscribe(sub), "ms_subscription_unsubscribe");
    ms_bus_destroy(bus);
    bench_counter_destroy(&c);
    return t1 > t0 ? (double)*received * 1e9 / (double)(t1 - t0) : 0.0;
}

/* --- driver -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bench_args args;
    double base[32], ms[32];
    size_t nb = 0, nm = 0;
    uint64_t count, received = 0, lost = 0;
    char url[64];
    bench_result r;
    int rounds;

    bench_args_parse(argc, argv, &args);
    rounds = args.rounds > 32 ? 32 : args.rounds;
    memset(payload, 'i', sizeof payload);
    count = args.quick ? 100000 : 2000000;
    snprintf(url, sizeof url, "inproc://bench-pubsub-%ld", (long)getpid());
    if (!args.quick) {
        if (args.run_baseline)
            (void)run_baseline(count / 10);
        if (args.run_mainstack)
            (void)run_ms(url, count / 10, &received);
    }
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 2; k++) {
            bool mainstack = (k == 1) != (round % 2 == 1);
            double rate;
            if (mainstack ? !args.run_mainstack : !args.run_baseline)
                continue;
            if (mainstack) {
                rate = ms[nm++] = run_ms(url, count, &received);
                lost += count - received;
            } else {
                rate = base[nb++] = run_baseline(count);
            }
            bench_log("inproc_pubsub_16b round %d %-9s %.0f msgs/s", round,
                      mainstack ? "mainstack" : "bare ring", rate);
        }
    }
    bench_result_init(&r, "inproc_pubsub_16b", "msgs/s", true, 0.50);
    r.value = bench_median(ms, nm);
    r.baseline = bench_median(base, nb);
    bench_result_add(&r, "msgs", (double)count);
    bench_result_add(&r, "ring_capacity", RING_CAP);
    bench_result_add(&r, "lost", (double)lost);
    bench_result_add(&r, "rounds", (double)rounds);
    if (lost > 0) {
        r.failed = true;
        r.note = "inproc lost messages";
    }
    bench_result_emit(&r);
    return 0;
}
