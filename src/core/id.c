/*
 * id.c - message identifiers, timestamps and W3C trace context.
 *
 * ms_id_new makes UUIDv7 ids (RFC 9562): a 48-bit Unix millisecond time, a
 * 12-bit counter in rand_a and 62 random bits. The (time, counter) pair is
 * one process-wide atomic, so ids are strictly increasing across threads even
 * within one millisecond or when the clock steps back. Random bits come from
 * a per-thread xoshiro256** generator seeded by getrandom() and reseeded
 * after fork(), so the hot path takes no lock and makes no system call
 * beyond clock_gettime. Builders in message.c call these once per message.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/message_internal.h"
#include "mainstack/message.h"

static const char hexdigits[] = "0123456789abcdef";

/* --- per-thread random numbers ----------------------------------------- */

/* Process-wide, necessarily global: bumped in the child after fork() so that
 * every thread's generator state inherited from the parent is discarded. */
static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static _Thread_local struct {
    uint64_t s[4];
    unsigned generation;
    bool seeded;
} rng;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&fork_generation, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
    /* Failure only means children of fork() reseed on their own terms
     * later; there is nothing better to do with the error. */
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(void)
{
    uint8_t buf[sizeof rng.s];
    size_t got = 0;

    (void)pthread_once(&atfork_once, register_atfork);
    while (got < sizeof buf) {
        ssize_t n = getrandom(buf + got, sizeof buf - got, GRND_NONBLOCK);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got == sizeof buf) {
        memcpy(rng.s, buf, sizeof rng.s);
    } else {
        /* No kernel entropy (very early boot, seccomp): mix what differs
         * between threads and runs. Ids stay unique through the counter. */
        struct timespec ts;
        uint64_t x;
        clock_gettime(CLOCK_REALTIME, &ts);
        x = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
        x ^= (uint64_t)getpid() << 32;
        x ^= (uint64_t)gettid();
        x ^= (uint64_t)(uintptr_t)&rng;
        for (size_t i = 0; i < 4; i++)
            rng.s[i] = splitmix64(&x);
    }
    if ((rng.s[0] | rng.s[1] | rng.s[2] | rng.s[3]) == 0)
        rng.s[0] = 1; /* xoshiro must not start from all zeros */
    rng.generation = atomic_load_explicit(&fork_generation, memory_order_relaxed);
    rng.seeded = true;
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t ms__random_u64(void)
{
    uint64_t *s = rng.s;
    uint64_t result, t;

    if (!rng.seeded ||
        rng.generation != atomic_load_explicit(&fork_generation, memory_order_relaxed))
        rng_seed();
    /* xoshiro256** (Blackman and Vigna) */
    result = rotl(s[1] * 5, 7) * 9;
    t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

/* Write n bytes of v (most significant first) as 2n lowercase hex digits. */
static char *put_hex(char *p, uint64_t v, int nbytes)
{
    for (int i = nbytes * 2 - 1; i >= 0; i--) {
        p[i] = hexdigits[v & 0xf];
        v >>= 4;
    }
    return p + nbytes * 2;
}

/* --- UUIDv7 --------------------------------------------------------------- */

/* (unix_ms << 12) | counter of the last id issued in this process. */
static _Atomic uint64_t last_stamp;

void ms_id_new(char out[MS_ID_LEN + 1])
{
    struct timespec ts;
    uint64_t now_ms, cur, next, hi, lo;
    char *p = out;

    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    cur = atomic_load_explicit(&last_stamp, memory_order_relaxed);
    do {
        /* A new millisecond starts the counter at 0; within the same one, or
         * when the clock went back, continue from the last id (a counter
         * overflow carries into the time field, which then runs ahead). */
        next = (now_ms & 0xffffffffffffULL) << 12;
        if (next <= cur)
            next = cur + 1;
    } while (!atomic_compare_exchange_weak_explicit(&last_stamp, &cur, next, memory_order_relaxed,
                                                    memory_order_relaxed));

    /* hi: 48-bit time | version 7 | 12-bit counter; lo: variant 10 | 62 random */
    hi = ((next >> 12) << 16) | (0x7ULL << 12) | (next & 0xfff);
    lo = (ms__random_u64() >> 2) | (0x2ULL << 62);

    p = put_hex(p, hi >> 32, 4);
    *p++ = '-';
    p = put_hex(p, (hi >> 16) & 0xffff, 2);
    *p++ = '-';
    p = put_hex(p, hi & 0xffff, 2);
    *p++ = '-';
    p = put_hex(p, lo >> 48, 2);
    *p++ = '-';
    p = put_hex(p, lo & 0xffffffffffffULL, 6);
    *p = '\0';
}

/* --- RFC 3339 timestamps -------------------------------------------------- */

/* Days since 1970-01-01 to a proleptic Gregorian date (Hinnant's method). */
static void civil_from_days(int64_t days, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static char *put_dec(char *p, uint64_t v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

void ms_timestamp_now(char out[MS_TIMESTAMP_LEN + 1])
{
    struct timespec ts;
    int64_t secs, days, rem, y;
    unsigned mo, d;
    char *p = out;

    clock_gettime(CLOCK_REALTIME, &ts);
    secs = (int64_t)ts.tv_sec;
    days = secs / 86400;
    rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    civil_from_days(days, &y, &mo, &d);
    if (y < 0)
        y = 0; /* a clock before year 0 is not worth a format of its own */

    p = put_dec(p, (uint64_t)y % 10000, 4);
    *p++ = '-';
    p = put_dec(p, mo, 2);
    *p++ = '-';
    p = put_dec(p, d, 2);
    *p++ = 'T';
    p = put_dec(p, (uint64_t)(rem / 3600), 2);
    *p++ = ':';
    p = put_dec(p, (uint64_t)(rem / 60 % 60), 2);
    *p++ = ':';
    p = put_dec(p, (uint64_t)(rem % 60), 2);
    *p++ = '.';
    p = put_dec(p, (uint64_t)ts.tv_nsec / 1000u, 6);
    *p++ = 'Z';
    *p = '\0';
}

static bool digits(const char *s, size_t n, unsigned *value)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *value = v;
    return true;
}

bool ms__timestamp_valid(const char *s)
{
    /* date-time = YYYY-MM-DD "T" hh:mm:ss [ "." 1*DIGIT ] ( "Z" / ("+"/"-") hh:mm ) */
    unsigned y, mo, d, h, mi, sec, oh, om;
    size_t i;

    if (s == NULL || strnlen(s, 20) < 20)
        return false;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
        !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == start)
            return false;
    }
    if (s[i] == 'Z' || s[i] == 'z')
        return s[i + 1] == '\0';
    if (s[i] != '+' && s[i] != '-')
        return false;
    if (strnlen(s + i + 1, 6) != 5 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
        !digits(s + i + 4, 2, &om))
        return false;
    return oh <= 23 && om <= 59;
}

/* --- W3C trace context ---------------------------------------------------- */

/* Lowercase hex of exactly n chars; *nonzero set when any digit is not '0'. */
static bool lower_hex(const char *s, size_t n, bool *nonzero)
{
    bool nz = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
        if (c != '0')
            nz = true;
    }
    *nonzero = nz;
    return true;
}

bool ms__traceparent_valid(const char *s)
{
    /* 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags> */
    bool trace_nz, parent_nz, flags_nz;

    if (s == NULL || strnlen(s, MS_TRACEPARENT_LEN + 1) != MS_TRACEPARENT_LEN)
        return false;
    return s[0] == '0' && s[1] == '0' && s[2] == '-' && lower_hex(s + 3, 32, &trace_nz) &&
           s[35] == '-' && lower_hex(s + 36, 16, &parent_nz) && s[52] == '-' &&
           lower_hex(s + 53, 2, &flags_nz) && trace_nz && parent_nz;
}

static uint64_t nonzero_random(void)
{
    uint64_t v;
    do {
        v = ms__random_u64();
    } while (v == 0);
    return v;
}

/* Writes "<16 hex span id>-<flags>" and the NUL at p. */
static void put_span_and_flags(char *p, const char *flags)
{
    p = put_hex(p, nonzero_random(), 8);
    *p++ = '-';
    *p++ = flags[0];
    *p++ = flags[1];
    *p = '\0';
}

void ms_traceparent_new(char out[MS_TRACEPARENT_LEN + 1])
{
    char *p = out;

    memcpy(p, "00-", 3);
    p += 3;
    /* A trace id of 128 random bits is zero only if both halves are; making
     * the first half non-zero is enough. */
    p = put_hex(p, nonzero_random(), 8);
    p = put_hex(p, ms__random_u64(), 8);
    *p++ = '-';
    put_span_and_flags(p, "01");
}

ms_status ms_traceparent_child(const char *parent, char out[MS_TRACEPARENT_LEN + 1])
{
    char flags[2];

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_traceparent_child: out is NULL");
    if (!ms__traceparent_valid(parent))
        return ms__err(MS_ERR_PARSE,
                       "traceparent '%.64s' is not a valid version-00 W3C "
                       "traceparent (00-<32 hex>-<16 hex>-<2 hex>, ids not zero)",
                       parent ? parent : "(null)");
    flags[0] = parent[53];
    flags[1] = parent[54];
    memmove(out, parent, 36); /* "00-" and the trace id and '-'; parent may be out */
    put_span_and_flags(out + 36, flags);
    return MS_OK;
}
