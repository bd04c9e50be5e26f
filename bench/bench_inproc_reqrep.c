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
 * reply and signals back. Two thread wake-ups per round trip, like the
 * mainstack one at best.
 *
 * Result: inproc_reqrep_p50 (microseconds; ratio = bare p50 / mainstack p50,
 * target 0.5, i.e. mainstack at most twice the bare round trip), with p99
 * of both and the mainstack request rate.
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
    pthread_join(th, NULL);
    pthread_cond_destroy(&pp.reply);
    pthread_cond_destroy(&pp.request);
    pthread_mutex_destroy(&pp.mu);
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
        bench_check_ms(ms_bus_request(bus, "bench.inproc.rr", payload, PAYLOAD, TIMEOUT_MS,
                                      &reply),
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
    double *base_lat, *ms_lat;
    double base_p50[32], ms_p50[32], base_rate[32], ms_rate[32], rate;
    size_t nbr = 0, nmr = 0;
    char url[64];
    bench_result r;
    int rounds;

    bench_args_parse(argc, argv, &args);
    rounds = args.rounds > 32 ? 32 : args.rounds;
    memset(payload, 'p', sizeof payload);
    per_round = args.quick ? 2000 : 50000;
    max_ns = (args.quick ? 300 : 1500) * 1000000ull;
    base_lat = calloc((size_t)rounds * per_round, sizeof *base_lat);
    ms_lat = calloc((size_t)rounds * per_round, sizeof *ms_lat);
    if (base_lat == NULL || ms_lat == NULL)
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
    }
    bench_sort(base_lat, nb);
    bench_sort(ms_lat, nm);
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
    bench_result_add(&r, "requests", (double)nm);
    bench_result_add(&r, "rounds", (double)rounds);
    bench_result_emit(&r);
    free(ms_lat);
    free(base_lat);
    return 0;
}
