/*
 * bench_inproc_reqrep.c - inproc request/reply round-trip latency.
 *
 * Mainstack: one inproc:// bus; a subscription whose handler calls
 * ms_bus_respond, and the main thread calling ms_bus_request serially, each
 * round trip timed.
 *
 * Baseline: the bare minimum of a request/reply between two threads: a
 * mutex and two condition variables; the requester bumps a sequence number
 * and signals, the responder thread wakes, copies the sequence number to the
 * reply and signals back. Two thread wake-ups per round trip.
 *
 * Informational second baseline ("spin"): the same ping-pong, but each side
 * first polls the other's sequence number for up to SPIN_NS before going to
 * sleep on the condition variable, the way the inproc workers poll a busy
 * mailbox. It shows the floor for a hand-off that avoids the futex sleep,
 * and so how much of the mainstack round trip is the framework itself.
 *
 * Result: inproc_reqrep_p50 (microseconds; ratio = bare p50 / mainstack p50,
 * target 0.5, i.e. mainstack at most twice the bare round trip), with p99
 * of both, the mainstack request rate and the spin baseline's p50/p99.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "mainstack/bus.h"
#include "mainstack/message.h"

#define PAYLOAD 64
#define TIMEOUT_MS 5000

static unsigned char payload[PAYLOAD];

/* --- baseline: mutex/condvar ping-pong ----------------------------------- */

typedef struct pingpong {
    pthread_mutex_t mu;
    pthread_cond_t request, reply;
    uint64_t req_seq, rep_seq;
    bool stop;
} pingpong;

static void *responder_main(void *arg)
{
    pingpong *pp = arg;

    pthread_mutex_lock(&pp->mu);
    for (;;) {
        while (pp->req_seq == pp->rep_seq && !pp->stop)
            pthread_cond_wait(&pp->request, &pp->mu);
        if (pp->stop)
            break;
        pp->rep_seq = pp->req_seq;
        pthread_cond_signal(&pp->reply);
    }
    pthread_mutex_unlock(&pp->mu);
    return NULL;
}

/* n round trips, latencies in microseconds into lat_us; returns the count. */
static size_t run_baseline(size_t n, uint64_t max_ns, double *lat_us, double *rate)
{
    pingpong pp;
    pthread_t th;
    uint64_t start, t0, t1;
    size_t i;

    memset(&pp, 0, sizeof pp);
    if (pthread_mutex_init(&pp.mu, NULL) != 0 || pthread_cond_init(&pp.request, NULL) != 0 ||
        pthread_cond_init(&pp.reply, NULL) != 0)
        bench_die("pingpong init failed");
    if (pthread_create(&th, NULL, responder_main, &pp) != 0)
        bench_die("pthread_create failed");

    start = bench_now_ns();
    t1 = start;
    for (i = 0; i < n && t1 - start < max_ns; i++) {
        t0 = bench_now_ns();
        pthread_mutex_lock(&pp.mu);
        pp.req_seq++;
        pthread_cond_signal(&pp.request);
        while (pp.rep_seq != pp.req_seq)
            pthread_cond_wait(&pp.reply, &pp.mu);
        pthread_mutex_unlock(&pp.mu);
        t1 = bench_now_ns();
        lat_us[i] = (double)(t1 - t0) / 1e3;
    }
    *rate = t1 > start ? (double)i * 1e9 / (double)(t1 - start) : 0.0;

    pthread_mutex_lock(&pp.mu);
    pp.stop = true;
    pthread_cond_signal(&pp.request);
    pthread_mutex_unlock(&pp.mu);
    if (pthread_join(th, NULL) != 0)
        bench_die("pthread_join failed");
    pthread_cond_destroy(&pp.reply);
    pthread_cond_destroy(&pp.request);
    pthread_mutex_destroy(&pp.mu);
    return i;
}

/* --- informational baseline: spin, then sleep --------------------------- */

#define SPIN_NS 20000 /* as long as an inproc worker polls a busy mailbox (POLL_NS) */

/* One direction of the hand-off: a sequence number, and a condition
 * variable for a waiter that gave up spinning. */
typedef struct spin_chan {
    _Atomic uint64_t seq;
    atomic_int sleepers;
    pthread_mutex_t mu;
    pthread_cond_t cond;
} spin_chan;

typedef struct spinpong {
    spin_chan req, rep;
} spinpong;

#define SPIN_STOP UINT64_MAX

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void chan_init(spin_chan *c)
{
    atomic_init(&c->seq, 0);
    atomic_init(&c->sleepers, 0);
    if (pthread_mutex_init(&c->mu, NULL) != 0 || pthread_cond_init(&c->cond, NULL) != 0)
        bench_die("spin channel init failed");
}

static void chan_destroy(spin_chan *c)
{
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
}

static void chan_post(spin_chan *c, uint64_t v)
{
    /* seq_cst store then load, against the waiter's seq_cst increment then
     * load: one of the two sees the other, so no wake-up is lost */
    atomic_store(&c->seq, v);
    if (atomic_load(&c->sleepers) > 0) {
        pthread_mutex_lock(&c->mu);
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->mu);
    }
}

/* Wait until c->seq differs from old; returns the new value. */
static uint64_t chan_wait(spin_chan *c, uint64_t old)
{
    uint64_t start = bench_now_ns(), v;

    for (unsigned i = 1;; i++) {
        v = atomic_load_explicit(&c->seq, memory_order_acquire);
        if (v != old)
            return v;
        if (i % 64 == 0 && bench_now_ns() - start > SPIN_NS)
            break;
        cpu_relax();
    }
    pthread_mutex_lock(&c->mu);
    atomic_fetch_add(&c->sleepers, 1);
    while ((v = atomic_load(&c->seq)) == old)
        pthread_cond_wait(&c->cond, &c->mu);
    atomic_fetch_sub(&c->sleepers, 1);
    pthread_mutex_unlock(&c->mu);
    return v;
}

static void *spin_responder_main(void *arg)
{
    spinpong *sp = arg;
    uint64_t seen = 0;

    for (;;) {
        seen = chan_wait(&sp->req, seen);
        if (seen == SPIN_STOP)
            break;
        chan_post(&sp->rep, seen);
    }
    return NULL;
}

static size_t run_spin(size_t n, uint64_t max_ns, double *lat_us)
{
    spinpong sp;
    pthread_t th;
    uint64_t start, t0, t1;
    size_t i;

    chan_init(&sp.req);
    chan_init(&sp.rep);
    if (pthread_create(&th, NULL, spin_responder_main, &sp) != 0)
        bench_die("pthread_create failed");
    start = bench_now_ns();
    t1 = start;
    for (i = 0; i < n && t1 - start < max_ns; i++) {
        t0 = bench_now_ns();
        chan_post(&sp.req, i + 1);
        while (chan_wait(&sp.rep, i) != i + 1) {
        }
        t1 = bench_now_ns();
        lat_us[i] = (double)(t1 - t0) / 1e3;
    }
    chan_post(&sp.req, SPIN_STOP);
    if (pthread_join(th, NULL) != 0)
        bench_die("pthread_join failed");
    chan_destroy(&sp.rep);
    chan_destroy(&sp.req);
    return i;
}

/* --- mainstack ----------------------------------------------------------- */

static void ms_respond(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    bench_check_ms(ms_bus_respond(bus, msg, payload, PAYLOAD), "ms_bus_respond (inproc)");
}

static size_t run_ms(const char *url, size_t n, uint64_t max_ns, double *lat_us, double *rate)
{
    ms_bus *bus = NULL;
    ms_subscription *sub = NULL;
    uint64_t start, t0, t1;
    size_t i;

    bench_check_ms(ms_bus_connect_url(url, &bus), "ms_bus_connect (inproc)");
    bench_check_ms(ms_bus_subscribe(bus, "bench.inproc.rr", NULL, ms_respond, NULL, &sub),
                   "ms_bus_subscribe");
    start = bench_now_ns();
    t1 = start;
    for (i = 0; i < n && t1 - start < max_ns; i++) {
        ms_message *reply = NULL;

        t0 = bench_now_ns();
        bench_check_ms(ms_bus_request(bus, "bench.inproc.rr", payload, PAYLOAD, TIMEOUT_MS, &reply),
                       "ms_bus_request (inproc)");
        t1 = bench_now_ns();
        if (ms_message_len(reply) != PAYLOAD)
            bench_die("inproc request: reply of %zu bytes", ms_message_len(reply));
        ms_message_unref(reply);
        lat_us[i] = (double)(t1 - t0) / 1e3;
    }
    *rate = t1 > start ? (double)i * 1e9 / (double)(t1 - start) : 0.0;
    bench_check_ms(ms_subscription_unsubscribe(sub), "ms_subscription_unsubscribe");
    ms_bus_destroy(bus);
    return i;
}

/* --- driver -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    bench_args args;
    size_t per_round, nb = 0, nm = 0, got;
    uint64_t max_ns;
    double *base_lat, *ms_lat, *spin_lat;
    double base_p50[32], ms_p50[32], spin_p50[32], base_rate[32], ms_rate[32], rate;
    size_t nbr = 0, nmr = 0, ns = 0, nsr = 0;
    char url[64];
    bench_result r;
    int rounds;

    bench_args_parse(argc, argv, &args);
    rounds = args.rounds > 32 ? 32 : args.rounds;
    memset(payload, 'p', sizeof payload);
    per_round = args.quick ? 2000 : 40000;
    max_ns = (args.quick ? 300 : 1000) * 1000000ull;
    base_lat = calloc((size_t)rounds * per_round, sizeof *base_lat);
    ms_lat = calloc((size_t)rounds * per_round, sizeof *ms_lat);
    spin_lat = calloc((size_t)rounds * per_round, sizeof *spin_lat);
    if (base_lat == NULL || ms_lat == NULL || spin_lat == NULL)
        bench_die("out of memory");
    snprintf(url, sizeof url, "inproc://bench-reqrep-%ld", (long)getpid());
    if (!args.quick) {
        if (args.run_baseline)
            (void)run_baseline(per_round / 10, max_ns, base_lat, &rate);
        if (args.run_mainstack)
            (void)run_ms(url, per_round / 10, max_ns, ms_lat, &rate);
    }
    for (int round = 0; round < rounds; round++) {
        for (int k = 0; k < 2; k++) {
            bool mainstack = (k == 1) != (round % 2 == 1);
            double *lat;
            if (mainstack ? !args.run_mainstack : !args.run_baseline)
                continue;
            if (mainstack) {
                lat = ms_lat + nm;
                got = run_ms(url, per_round, max_ns, lat, &rate);
                nm += got;
                ms_rate[nmr] = rate;
            } else {
                lat = base_lat + nb;
                got = run_baseline(per_round, max_ns, lat, &rate);
                nb += got;
                base_rate[nbr] = rate;
            }
            bench_sort(lat, got);
            if (mainstack)
                ms_p50[nmr++] = bench_percentile(lat, got, 50);
            else
                base_p50[nbr++] = bench_percentile(lat, got, 50);
            bench_log("inproc_reqrep round %d %-9s p50 %.2f us, p99 %.2f us, %.0f req/s", round,
                      mainstack ? "mainstack" : "bare", bench_percentile(lat, got, 50),
                      bench_percentile(lat, got, 99), rate);
        }
        if (args.run_baseline) {
            double *lat = spin_lat + ns;
            got = run_spin(per_round, max_ns, lat);
            ns += got;
            bench_sort(lat, got);
            spin_p50[nsr++] = bench_percentile(lat, got, 50);
            bench_log("inproc_reqrep round %d %-9s p50 %.2f us, p99 %.2f us", round, "spin",
                      bench_percentile(lat, got, 50), bench_percentile(lat, got, 99));
        }
    }
    bench_sort(base_lat, nb);
    bench_sort(ms_lat, nm);
    bench_sort(spin_lat, ns);
    bench_result_init(&r, "inproc_reqrep_p50", "us", false, 0.50);
    /* the median of the per-round medians: robust to one disturbed round */
    r.value = bench_median(ms_p50, nmr);
    r.baseline = bench_median(base_p50, nbr);
    bench_result_add(&r, "p99_us", bench_percentile(ms_lat, nm, 99));
    bench_result_add(&r, "baseline_p99_us", bench_percentile(base_lat, nb, 99));
    bench_result_add(&r, "p999_us", bench_percentile(ms_lat, nm, 99.9));
    bench_result_add(&r, "baseline_p999_us", bench_percentile(base_lat, nb, 99.9));
    bench_result_add(&r, "req_per_s", bench_median(ms_rate, nmr));
    bench_result_add(&r, "baseline_req_per_s", bench_median(base_rate, nbr));
    bench_result_add(&r, "spin_baseline_p50_us", bench_median(spin_p50, nsr));
    bench_result_add(&r, "spin_baseline_p99_us", bench_percentile(spin_lat, ns, 99));
    bench_result_add(&r, "requests", (double)nm);
    bench_result_add(&r, "rounds", (double)rounds);
    bench_result_emit(&r);
    free(spin_lat);
    free(ms_lat);
    free(base_lat);
    return 0;
}
