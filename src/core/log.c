/*
 * log.c - levelled logfmt logging.
 *
 * Each event becomes one line, built in a fixed stack buffer (long values are
 * cut with "..." so a line never needs the heap) and handed to write(2) in
 * one call, so lines from several threads never interleave. The threshold
 * and the optional sink are the module's only global state, documented as
 * process-wide in log.h: the threshold is an atomic read once from
 * MAINSTACK_LOG (pthread_once); the sink is guarded by a mutex so that once
 * ms_log_set_sink returns, the old sink is never called again (which also
 * means a sink must not log itself: it would wait on that mutex).
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "mainstack/log.h"

#define LINE_MAX_BYTES 4096  /* a whole line, newline included */
#define VALUE_MAX_BYTES 1024 /* of one value, before escaping */
#define TAIL_RESERVE 8       /* room kept for '..."' and the newline */

static const char *const level_names[] = {"trace", "debug", "info", "warn", "error", "off"};

static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static atomic_int threshold = MS_LOG_WARN;

static pthread_mutex_t sink_mu = PTHREAD_MUTEX_INITIALIZER;
static atomic_bool have_sink;
static ms_log_sink sink_fn; /* under sink_mu */
static void *sink_closure;  /* under sink_mu */

static void read_env(void)
{
    const char *v = getenv("MAINSTACK_LOG");
    ms_log_level lvl;

    if (v != NULL && ms_log_level_parse(v, &lvl) == MS_OK)
        atomic_store(&threshold, (int)lvl);
}

void ms_log_set_level(ms_log_level level)
{
    (void)pthread_once(&env_once, read_env);
    if ((unsigned)level > MS_LOG_OFF)
        level = MS_LOG_OFF;
    atomic_store(&threshold, (int)level);
}

ms_log_level ms_log_get_level(void)
{
    (void)pthread_once(&env_once, read_env);
    return (ms_log_level)atomic_load_explicit(&threshold, memory_order_relaxed);
}

bool ms_log_enabled(ms_log_level level)
{
    return (unsigned)level < MS_LOG_OFF && (int)level >= (int)ms_log_get_level();
}

ms_status ms_log_level_parse(const char *name, ms_log_level *out)
{
    if (name == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_log_level_parse: name or out is NULL");
    for (size_t i = 0; i <= MS_LOG_OFF; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (ms_log_level)i;
            return MS_OK;
        }
    }
    return ms__err(MS_ERR_PARSE,
                   "log level '%.32s' is not one of trace, debug, info, warn, error, off", name);
}

const char *ms_log_level_name(ms_log_level level)
{
    if ((unsigned)level > MS_LOG_OFF)
        return "unknown";
    return level_names[level];
}

void ms_log_set_sink(ms_log_sink sink, void *closure)
{
    pthread_mutex_lock(&sink_mu);
    sink_fn = sink;
    sink_closure = closure;
    atomic_store(&have_sink, sink != NULL);
    pthread_mutex_unlock(&sink_mu);
}

/* --- line building -------------------------------------------------------- */

typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool full; /* nothing more fits; later pairs are dropped */
} line;

/* Room for n more bytes, keeping the tail reserve. */
static bool room(const line *l, size_t n)
{
    return l->len + n + TAIL_RESERVE <= sizeof l->buf;
}

static void put_raw(line *l, const char *s, size_t n)
{
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

/* Append a logfmt key: bytes that would break parsing become '_'. */
static bool put_key(line *l, const char *key)
{
    size_t n = strnlen(key, 128);

    if (!room(l, n + 3)) { /* ' ', key, '=' and at least one byte */
        l->full = true;
        return false;
    }
    if (l->len > 0)
        l->buf[l->len++] = ' ';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        l->buf[l->len++] = (c <= ' ' || c == '=' || c == '"' || c == 0x7f) ? '_' : (char)c;
    }
    if (n == 0)
        l->buf[l->len++] = '_';
    l->buf[l->len++] = '=';
    return true;
}

static bool needs_quotes(const char *v, size_t n)
{
    if (n == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '=' || c == '"' || c == 0x7f)
            return true;
    }
    return false;
}

/* Append a value, quoted and escaped when it needs it (always when force).
 * Values over VALUE_MAX_BYTES, or that do not fit the line, end in "...". */
static void put_value(line *l, const char *v, bool force)
{
    static const char hex[] = "0123456789abcdef";
    size_t n, i;
    bool quoted, cut = false;

    if (v == NULL)
        v = "";
    n = strnlen(v, VALUE_MAX_BYTES + 1);
    if (n > VALUE_MAX_BYTES) {
        n = VALUE_MAX_BYTES;
        cut = true;
    }
    quoted = force || needs_quotes(v, n);
    if (quoted)
        l->buf[l->len++] = '"'; /* put_key left room */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        char esc[6];
        size_t en = 0;

        if (!quoted) {
            esc[en++] = (char)c; /* needs_quotes found nothing to escape */
        } else if (c == '"' || c == '\\') {
            esc[en++] = '\\';
            esc[en++] = (char)c;
        } else if (c == '\n') {
            esc[en++] = '\\';
            esc[en++] = 'n';
        } else if (c == '\r') {
            esc[en++] = '\\';
            esc[en++] = 'r';
        } else if (c == '\t') {
            esc[en++] = '\\';
            esc[en++] = 't';
        } else if (c < ' ' || c == 0x7f) {
            esc[en++] = '\\';
            esc[en++] = 'u';
            esc[en++] = '0';
            esc[en++] = '0';
            esc[en++] = hex[c >> 4];
            esc[en++] = hex[c & 0xf];
        } else {
            esc[en++] = (char)c;
        }
        if (!room(l, en)) {
            cut = true;
            l->full = true;
            break;
        }
        put_raw(l, esc, en);
    }
    if (cut)
        put_raw(l, "...", 3); /* the tail reserve holds it */
    if (quoted)
        l->buf[l->len++] = '"';
}

static void put_pair(line *l, const char *key, const char *value, bool force_quotes)
{
    if (l->full || !put_key(l, key))
        return;
    put_value(l, value, force_quotes);
}

static void put_time(line *l)
{
    struct timespec ts;
    struct tm tm;
    char buf[40];
    int n;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (gmtime_r(&ts.tv_sec, &tm) == NULL)
        return;
    n = snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000L);
    if (n > 0 && (size_t)n < sizeof buf)
        put_pair(l, "ts", buf, false);
}

static void emit(ms_log_level level, line *l)
{
    if (atomic_load_explicit(&have_sink, memory_order_acquire)) {
        pthread_mutex_lock(&sink_mu);
        if (sink_fn != NULL) {
            l->buf[l->len] = '\0'; /* the tail reserve holds it */
            sink_fn(level, l->buf, sink_closure);
            pthread_mutex_unlock(&sink_mu);
            return;
        }
        pthread_mutex_unlock(&sink_mu);
    }
    l->buf[l->len++] = '\n';
    {
        size_t off = 0;
        while (off < l->len) {
            ssize_t w = write(STDERR_FILENO, l->buf + off, l->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break; /* nowhere else to report it */
            off += (size_t)w;
        }
    }
}

static void start_line(line *l, ms_log_level level, const char *module)
{
    l->len = 0;
    l->full = false;
    put_time(l);
    put_pair(l, "level", ms_log_level_name(level), false);
    if (module != NULL)
        put_pair(l, "mod", module, false);
}

void ms_log_kv(ms_log_level level, const char *module, const char *msg, ...)
{
    line l;
    va_list ap;
    const char *key;

    if (!ms_log_enabled(level))
        return;
    start_line(&l, level, module);
    put_pair(&l, "msg", msg, true);
    va_start(ap, msg);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        put_pair(&l, key, value, false);
    }
    va_end(ap);
    emit(level, &l);
}

void ms_logf(ms_log_level level, const char *module, const char *fmt, ...)
{
    line l;
    char msg[VALUE_MAX_BYTES + 1];
    va_list ap;
    int n;

    if (!ms_log_enabled(level))
        return;
    if (fmt == NULL)
        fmt = "";
    va_start(ap, fmt);
    n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    start_line(&l, level, module);
    put_pair(&l, "msg", msg, true);
    if (n > (int)VALUE_MAX_BYTES && !l.full) {
        /* vsnprintf cut it: say so the way put_value would. */
        l.len--; /* drop the closing quote */
        put_raw(&l, "...\"", 4);
    }
    emit(level, &l);
}
