/*
 * bench_common.h - what every benchmark program shares.
 *
 * Each bench/bench_*.c measures one mainstack feature beside a baseline that
 * does the same job with nothing in between (raw libnats, bare pthreads), in
 * the same process and run, alternating baseline and mainstack rounds so that
 * the noise of a shared machine hits both sides alike; medians are reported.
 * This file gives them: a monotonic clock, argument parsing (--quick,
 * --rounds=N), medians and percentiles, the one-JSON-line result format on
 * stdout (diagnostics go to stderr), a nats-server for the run, a raw libnats
 * connection with explicit options, and a completion counter that both sides
 * of a throughput benchmark use in their handlers so they do the same work.
 */
#ifndef MS_BENCH_COMMON_H
#define MS_BENCH_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "nats_fixture.h"

/* --- time ---------------------------------------------------------------- */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* --- arguments ----------------------------------------------------------- */

typedef struct bench_args {
    bool quick; /* --quick or BENCH_QUICK=1: fewer messages, one round */
    int rounds; /* --rounds=N; default 5, 1 when quick */
    /* --side=baseline|mainstack|both (default both): run one side only, for
     * profiling one side with perf or callgrind. */
    bool run_baseline;
    bool run_mainstack;
} bench_args;

/* Parse argv; prints usage and exits 2 on an unknown argument. */
void bench_args_parse(int argc, char **argv, bench_args *out);

/* An unsigned count from the environment variable `name`, or `dflt`. */
long bench_env_long(const char *name, long dflt);

/* --- diagnostics --------------------------------------------------------- */

/* One line on stderr, prefixed with the program name. */
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Log and exit(1): a benchmark that cannot run is a failed program. */
_Noreturn void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* bench_die with ms_last_error() when s != MS_OK. */
void bench_check_ms(ms_status s, const char *what);
/* bench_die with nats_GetLastError() when s != NATS_OK. */
void bench_check_nats(natsStatus s, const char *what);

/* --- statistics ---------------------------------------------------------- */

/* Sort v (n values) ascending, in place. */
void bench_sort(double *v, size_t n);
/* Median of n values (sorts v in place). NAN when n == 0 (printed as null). */
double bench_median(double *v, size_t n);
/* The p-th percentile (0..100) of n ascending values, nearest rank; NAN when n == 0. */
double bench_percentile(const double *sorted, size_t n, double p);

/* --- results ------------------------------------------------------------- */

#define BENCH_MAX_EXTRA 16

typedef struct bench_result {
    const char *name;      /* borrowed */
    const char *unit;      /* "msgs/s", "req/s", "us" */
    bool higher_is_better; /* rates: ratio = value/baseline; latencies: baseline/value */
    double value;          /* mainstack */
    double baseline;       /* the baseline, same unit */
    double target;         /* minimum ratio; 0 = informational, no pass field */
    const char *note;      /* optional "note" string; borrowed, no quotes or backslashes */
    /* optional "baseline_kind" string (what the baseline is when it is not
     * a measured raw run, e.g. "budget"); borrowed, plain ASCII */
    const char *baseline_kind;
    bool failed; /* a correctness check failed: pass is false whatever the ratio */
    size_t n_extra;
    struct {
        const char *key; /* borrowed */
        double value;
    } extra[BENCH_MAX_EXTRA];
} bench_result;

void bench_result_init(bench_result *r, const char *name, const char *unit, bool higher_is_better,
                       double target);
/* Add a numeric field (ignored past BENCH_MAX_EXTRA). */
void bench_result_add(bench_result *r, const char *key, double value);
/* Print r as one JSON line on stdout (flushed) and a readable line on
 * stderr. A value that is not finite (a side not run) prints as null.
 * Returns the ratio. */
double bench_result_emit(const bench_result *r);

/* --- nats-server --------------------------------------------------------- */

typedef struct bench_server {
    ms_nats_server *fixture; /* NULL when BENCH_NATS_URL names an outside server */
    const char *url;         /* borrowed from the fixture or the environment */
} bench_server;

/* Start a nats-server on a free loopback port (or use $BENCH_NATS_URL). */
void bench_server_start(bench_server *out);
void bench_server_stop(bench_server *srv);

/* --- raw libnats --------------------------------------------------------- */

/* A plain libnats connection to url; send_asap as natsOptions_SetSendAsap.
 * Dies on failure. */
natsConnection *bench_raw_connect(const char *url, bool send_asap);

/* BENCH_RAW_SEND_ASAP=1: a diagnostic switch that makes the raw publishers
 * of the throughput benchmarks send each message at once (as a mainstack bus
 * does) instead of buffering, to tell that cost apart from the rest. */
bool bench_raw_send_asap(void);

/* --- completion counter -------------------------------------------------- */

/*
 * Counts messages received by handlers (any thread) and wakes the waiter
 * when `target` have arrived, recording the time of the last one. Both the
 * raw and the mainstack handlers call bench_counter_hit so their handler
 * work is identical.
 */
typedef struct bench_counter {
    atomic_uint_fast64_t count;
    uint64_t target;
    _Atomic uint64_t done_ns; /* time of the target-th hit; 0 before */
    pthread_mutex_t mu;
    pthread_cond_t cond;
} bench_counter;

void bench_counter_init(bench_counter *c, uint64_t target);
void bench_counter_destroy(bench_counter *c);
/* One message received. */
void bench_counter_hit(bench_counter *c);

/* Reads a subscription's drop count (slow consumer) for the waiter. */
typedef uint64_t (*bench_dropped_fn)(void *closure);

/*
 * Wait until count + dropped() >= target, or until nothing arrived for
 * stall_ms. Returns the end time: done_ns when every message arrived, else
 * the time the wait gave up or saw the drops complete the count. dropped
 * may be NULL.
 */
uint64_t bench_counter_wait(bench_counter *c, bench_dropped_fn dropped, void *closure,
                            int stall_ms);

#endif
