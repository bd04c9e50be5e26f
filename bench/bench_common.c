/*
 * bench_common.c - clock, arguments, statistics, result lines, server and
 * raw-connection helpers shared by the benchmark programs (see
 * bench_common.h). Nothing here is timed except bench_counter_hit, which runs
 * in the handlers of both sides of a measurement and so costs both the same.
 */
#include "bench_common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mainstack/status.h"

/* The program name for log lines; set once by bench_args_parse before any
 * thread starts, read-only afterwards. */
static const char *prog_name = "bench";

uint64_t bench_now_ns(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- arguments ----------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr,
            "usage: %s [--quick] [--rounds=N] [--side=baseline|mainstack|both]\n"
            "  --quick   few messages, one round (also BENCH_QUICK=1)\n"
            "  --rounds  alternating baseline/mainstack rounds (default 5)\n"
            "  --side    measure one side only (for profiling)\n"
            "Prints one JSON line per result on stdout.\n",
            prog_name);
}

void bench_args_parse(int argc, char **argv, bench_args *out)
{
    const char *env = getenv("BENCH_QUICK");
    const char *slash;
    int rounds = 0;

    if (argc > 0 && argv[0] != NULL) {
        slash = strrchr(argv[0], '/');
        prog_name = slash != NULL ? slash + 1 : argv[0];
    }
    memset(out, 0, sizeof *out);
    out->quick = env != NULL && strcmp(env, "1") == 0;
    out->run_baseline = true;
    out->run_mainstack = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            out->quick = true;
        } else if (strncmp(a, "--rounds=", 9) == 0) {
            char *end = NULL;
            long v = strtol(a + 9, &end, 10);
            if (end == a + 9 || *end != '\0' || v < 1 || v > 100) {
                usage();
                exit(2);
            }
            rounds = (int)v;
        } else if (strcmp(a, "--side=baseline") == 0) {
            out->run_mainstack = false;
        } else if (strcmp(a, "--side=mainstack") == 0) {
            out->run_baseline = false;
        } else if (strcmp(a, "--side=both") == 0) {
            /* the default */
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            exit(0);
        } else {
            usage();
            exit(2);
        }
    }
    out->rounds = rounds > 0 ? rounds : (out->quick ? 1 : 5);
}

long bench_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    char *end = NULL;
    long n;

    if (v == NULL || v[0] == '\0')
        return dflt;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n <= 0) {
        bench_log("ignoring %s=%s (want a positive integer)", name, v);
        return dflt;
    }
    return n;
}

/* --- diagnostics --------------------------------------------------------- */

static void vlog(const char *fmt, va_list ap)
{
    char line[1024];
    int n = vsnprintf(line, sizeof line, fmt, ap);

    if (n < 0)
        return;
    fprintf(stderr, "[%s] %s\n", prog_name, line);
}

void bench_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
}

void bench_die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(fmt, ap);
    va_end(ap);
    fflush(stdout);
    exit(1);
}

void bench_check_ms(ms_status s, const char *what)
{
    if (s != MS_OK)
        bench_die("%s: %s: %s", what, ms_status_name(s), ms_last_error());
}

void bench_check_nats(natsStatus s, const char *what)
{
    if (s != NATS_OK)
        bench_die("%s: %s: %s", what, natsStatus_GetText(s), nats_GetLastError(NULL));
}

/* --- statistics ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

void bench_sort(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_double);
}

double bench_median(double *v, size_t n)
{
    if (n == 0)
        return NAN;
    bench_sort(v, n);
    if (n % 2 == 1)
        return v[n / 2];
    return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

double bench_percentile(const double *sorted, size_t n, double p)
{
    size_t rank;

    if (n == 0)
        return NAN;
    /* nearest rank: the smallest value with at least p% of values <= it */
    rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* --- results ------------------------------------------------------------- */

void bench_result_init(bench_result *r, const char *name, const char *unit, bool higher_is_better,
                       double target)
{
    memset(r, 0, sizeof *r);
    r->name = name;
    r->unit = unit;
    r->higher_is_better = higher_is_better;
    r->target = target;
}

void bench_result_add(bench_result *r, const char *key, double value)
{
    if (r->n_extra >= BENCH_MAX_EXTRA)
        return;
    r->extra[r->n_extra].key = key;
    r->extra[r->n_extra].value = value;
    r->n_extra++;
}

/* Append a JSON number (or null when not finite) to buf at *off. */
static void put_number(char *buf, size_t cap, size_t *off, double v)
{
    int n;

    if (*off >= cap)
        return;
    if (!isfinite(v))
        n = snprintf(buf + *off, cap - *off, "null");
    else if (fabs(v) >= 1000.0)
        n = snprintf(buf + *off, cap - *off, "%.0f", v);
    else
        n = snprintf(buf + *off, cap - *off, "%.4g", v);
    if (n > 0)
        *off += (size_t)n;
}

static void put_text(char *buf, size_t cap, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put_text(char *buf, size_t cap, size_t *off, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*off >= cap)
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf + *off, cap - *off, fmt, ap);
    va_end(ap);
    if (n > 0)
        *off += (size_t)n;
}

double bench_result_emit(const bench_result *r)
{
    char line[2048];
    size_t off = 0;
    double ratio, load[1];
    bool pass;

    if (r->higher_is_better)
        ratio = r->baseline > 0 ? r->value / r->baseline : NAN;
    else
        ratio = r->value > 0 ? r->baseline / r->value : NAN;
    pass = !r->failed && isfinite(ratio) && ratio >= r->target;

    /* names, units and keys are literals of the benchmark programs: plain
     * ASCII without quotes, so they need no escaping */
    put_text(line, sizeof line, &off, "{\"bench\": \"%s\", \"value\": ", r->name);
    put_number(line, sizeof line, &off, r->value);
    put_text(line, sizeof line, &off, ", \"unit\": \"%s\", \"baseline\": ", r->unit);
    put_number(line, sizeof line, &off, r->baseline);
    if (r->baseline_kind != NULL)
        put_text(line, sizeof line, &off, ", \"baseline_kind\": \"%s\"", r->baseline_kind);
    put_text(line, sizeof line, &off, ", \"ratio\": ");
    put_number(line, sizeof line, &off, ratio);
    if (r->target > 0) {
        put_text(line, sizeof line, &off, ", \"target\": ");
        put_number(line, sizeof line, &off, r->target);
        put_text(line, sizeof line, &off, ", \"pass\": %s", pass ? "true" : "false");
    }
    for (size_t i = 0; i < r->n_extra; i++) {
        put_text(line, sizeof line, &off, ", \"%s\": ", r->extra[i].key);
        put_number(line, sizeof line, &off, r->extra[i].value);
    }
    /* the machine is shared: say how busy it was (1-minute load average) */
    if (getloadavg(load, 1) == 1) {
        put_text(line, sizeof line, &off, ", \"load1\": ");
        put_number(line, sizeof line, &off, load[0]);
    }
    if (r->note != NULL)
        put_text(line, sizeof line, &off, ", \"note\": \"%s\"", r->note);
    put_text(line, sizeof line, &off, "}");
    if (off >= sizeof line)
        bench_die("result line of %s too long", r->name);
    printf("%s\n", line);
    fflush(stdout);
    if (r->target > 0)
        bench_log("%-28s mainstack %.6g %s, baseline %.6g: ratio %.3f (target %.2f) %s", r->name,
                  r->value, r->unit, r->baseline, ratio, r->target,
                  pass ? "PASS" : (r->failed ? "FAIL (check failed)" : "MISS"));
    else
        bench_log("%-28s mainstack %.6g %s, baseline %.6g: ratio %.3f (informational)", r->name,
                  r->value, r->unit, r->baseline, ratio);
    return ratio;
}

/* --- nats-server --------------------------------------------------------- */

void bench_server_start(bench_server *out)
{
    const char *url = getenv("BENCH_NATS_URL");
    ms_status s;

    memset(out, 0, sizeof *out);
    if (url != NULL && url[0] != '\0') {
        out->url = url;
        bench_log("using the nats-server at %s (BENCH_NATS_URL)", url);
        return;
    }
    s = ms_nats_server_start(NULL, &out->fixture);
    bench_check_ms(s, "starting nats-server");
    out->url = ms_nats_server_url(out->fixture);
    bench_log("nats-server at %s", out->url);
}

void bench_server_stop(bench_server *srv)
{
    ms_nats_server_stop(srv->fixture);
    srv->fixture = NULL;
    srv->url = NULL;
}

/* --- raw libnats --------------------------------------------------------- */

natsConnection *bench_raw_connect(const char *url, bool send_asap)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;

    bench_check_nats(natsOptions_Create(&opts), "natsOptions_Create");
    bench_check_nats(natsOptions_SetURL(opts, url), "natsOptions_SetURL");
    bench_check_nats(natsOptions_SetSendAsap(opts, send_asap), "natsOptions_SetSendAsap");
    bench_check_nats(natsConnection_Connect(&nc, opts), "raw natsConnection_Connect");
    natsOptions_Destroy(opts);
    return nc;
}

bool bench_raw_send_asap(void)
{
    const char *v = getenv("BENCH_RAW_SEND_ASAP");

    return v != NULL && strcmp(v, "1") == 0;
}

/* --- completion counter -------------------------------------------------- */

void bench_counter_init(bench_counter *c, uint64_t target)
{
    atomic_init(&c->count, 0);
    c->target = target;
    atomic_init(&c->done_ns, 0);
    if (pthread_mutex_init(&c->mu, NULL) != 0 || pthread_cond_init(&c->cond, NULL) != 0)
        bench_die("bench_counter_init: pthread init failed");
}

void bench_counter_destroy(bench_counter *c)
{
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->mu);
}

void bench_counter_hit(bench_counter *c)
{
    uint64_t n = atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed) + 1;

    if (n != c->target)
        return;
    atomic_store(&c->done_ns, bench_now_ns());
    pthread_mutex_lock(&c->mu);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->mu);
}

uint64_t bench_counter_wait(bench_counter *c, bench_dropped_fn dropped, void *closure, int stall_ms)
{
    uint64_t last_count = atomic_load(&c->count);
    uint64_t last_progress = bench_now_ns();

    pthread_mutex_lock(&c->mu);
    for (;;) {
        uint64_t done = atomic_load(&c->done_ns);
        uint64_t now, n, d;
        struct timespec ts;

        if (done != 0)
            break;
        now = bench_now_ns();
        n = atomic_load(&c->count);
        d = dropped != NULL ? dropped(closure) : 0;
        if (n + d >= c->target) {
            pthread_mutex_unlock(&c->mu);
            return now;
        }
        if (n != last_count) {
            last_count = n;
            last_progress = now;
        } else if (now - last_progress > (uint64_t)stall_ms * 1000000u) {
            pthread_mutex_unlock(&c->mu);
            bench_log("stalled: %llu of %llu received, %llu dropped", (unsigned long long)n,
                      (unsigned long long)c->target, (unsigned long long)d);
            return now;
        }
        /* wake every 20 ms to look at drops and progress */
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 20 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&c->cond, &c->mu, &ts);
    }
    pthread_mutex_unlock(&c->mu);
    return atomic_load(&c->done_ns);
}
