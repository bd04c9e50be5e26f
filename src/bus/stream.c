/*
 * stream.c - durable event streams: the API, its checks, and the
 * in-process fallback.
 *
 * On NATS every call goes to nats_stream.c (JetStream). In-process there is
 * no server to keep messages, so a consumer is a set of queue
 * subscriptions (the durable name is the queue group, so readers sharing it
 * share the messages) feeding a bounded ring that ms_consumer_next pops. A
 * full ring holds the delivering thread (the broker's worker) until there is
 * room or the ring is closed: a burst slows the publisher down instead of
 * losing messages, as the inproc bus itself does.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "bus/stream_internal.h"
#include "bus/transport.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/time_util.h"
#include "mainstack/log.h"
#include "mainstack/subject.h"

#define INPROC_RING_MIN 65536
#define NAME_MAX_LEN 64

const char *const ms_control_subjects[] = {
    "mainstack.interface.changed.>",
    "mainstack.dependency.updated.>",
    NULL,
};

void ms_stream_config_init(ms_stream_config *cfg)
{
    if (cfg == NULL)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->name = MS_CONTROL_STREAM;
    cfg->subjects = ms_control_subjects;
    cfg->max_age_ms = 7LL * 24 * 3600 * 1000;
    cfg->duplicate_window_ms = 2 * 60 * 1000;
}

void ms_consumer_options_init(ms_consumer_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->ack_wait_ms = 30000;
    o->max_ack_pending = 256;
    o->batch = 16;
}

ms_status ms__stream_check_name(const char *what, const char *name)
{
    size_t n;

    if (name == NULL || *name == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "%s is required", what);
    n = strlen(name);
    if (n > NAME_MAX_LEN)
        return ms__err(MS_ERR_INVALID_ARG, "%s '%s' is longer than %d bytes", what, name,
                       NAME_MAX_LEN);
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return ms__err(MS_ERR_INVALID_ARG,
                           "%s '%s': character '%c' at byte %zu (use letters, digits, _ and -)",
                           what, name, ch, i);
    }
    return MS_OK;
}

static ms_status check_config(const ms_stream_config *cfg)
{
    ms_status s;
    size_t n = 0;

    if (cfg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "stream: cfg is required");
    if ((s = ms__stream_check_name("stream name", cfg->name)) != MS_OK)
        return s;
    if (cfg->subjects == NULL || cfg->subjects[0] == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "stream %s: at least one subject is required",
                       cfg->name);
    for (; cfg->subjects[n] != NULL; n++) {
        if ((s = ms_subject_validate_pattern(cfg->subjects[n])) != MS_OK)
            return ms__err_wrap(s, "stream %s: subject %zu", cfg->name, n);
    }
    if (cfg->max_age_ms < 0 || cfg->max_msgs < 0 || cfg->duplicate_window_ms < 0)
        return ms__err(MS_ERR_INVALID_ARG, "stream %s: limits must not be negative", cfg->name);
    return MS_OK;
}

static bool on_nats(const ms_bus *bus)
{
    return bus->ops == &ms__nats_transport;
}

ms_status ms_stream_ensure(ms_bus *bus, const ms_stream_config *cfg)
{
    ms_status s;

    if (bus == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "stream: bus is required");
    if ((s = check_config(cfg)) != MS_OK)
        return s;
    if (atomic_load(&bus->closed))
        return ms__err(MS_ERR_CLOSED, "stream %s: the bus is closed", cfg->name);
    return on_nats(bus) ? ms__js_ensure(bus, cfg) : MS_OK;
}

ms_status ms_stream_publish(ms_bus *bus, ms_message *msg, int timeout_ms, bool *duplicate)
{
    if (duplicate != NULL)
        *duplicate = false;
    if (bus == NULL || msg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "stream publish: bus and msg are required");
    if (ms_message_subject(msg) == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "stream publish: the message has no subject");
    if (ms_message_id(msg) == NULL || *ms_message_id(msg) == '\0')
        return ms__err(MS_ERR_INVALID_ARG,
                       "stream publish on '%s': the message needs an id (its deduplication key): "
                       "build it with ms_message_build_* or set one",
                       ms_message_subject(msg));
    if (timeout_ms <= 0)
        return ms__err(MS_ERR_INVALID_ARG, "stream publish: timeout_ms must be positive");
    if (on_nats(bus)) {
        if (atomic_load(&bus->closed))
            return ms__err(MS_ERR_CLOSED, "stream publish on '%s': the bus is closed",
                           ms_message_subject(msg));
        return ms__js_publish(bus, msg, timeout_ms, duplicate);
    }
    return ms_bus_publish_msg(bus, msg);
}

/* --- the in-process consumer ---------------------------------------------- */

/* Append under c->mu; false when closed. Waits while full. */
static bool ring_push_locked(ms_consumer *c, ms_message *m, uint64_t count)
{
    while (!c->closed && c->len == c->cap)
        pthread_cond_wait(&c->cv, &c->mu);
    if (c->closed)
        return false;
    c->ring[(c->head + c->len) % c->cap] = (inproc_slot){.m = m, .count = count};
    c->len++;
    pthread_cond_broadcast(&c->cv);
    return true;
}

static void on_inproc_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ms_consumer *c = closure;
    ms_message *m = ms_message_ref((ms_message *)msg);

    (void)bus;
    (void)sub;
    pthread_mutex_lock(&c->mu);
    if (!ring_push_locked(c, m, 1)) {
        pthread_mutex_unlock(&c->mu);
        ms_message_unref(m);
        return;
    }
    pthread_mutex_unlock(&c->mu);
}

static ms_status inproc_open(ms_consumer *c, const ms_stream_config *cfg)
{
    size_t n = 0;
    ms_status s = MS_OK;

    while (cfg->subjects[n] != NULL)
        n++;
    c->cap = (size_t)c->opts.max_ack_pending * 64;
    if (c->cap < INPROC_RING_MIN)
        c->cap = INPROC_RING_MIN;
    c->ring = ms__calloc(c->cap, sizeof *c->ring);
    c->subs = ms__calloc(n, sizeof *c->subs);
    if (c->ring == NULL || c->subs == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "consumer %s: allocating its buffer", c->durable);
    /* The queue group is the durable's, prefixed so that it never joins a
     * group of the caller's own subscriptions (an agent names its queue
     * group like its durable). */
    char queue[sizeof c->durable + 8];
    snprintf(queue, sizeof queue, "stream-%s", c->durable);
    for (size_t i = 0; i < n && s == MS_OK; i++) {
        s = ms_bus_subscribe(c->bus, cfg->subjects[i], queue, on_inproc_msg, c, &c->subs[i]);
        if (s == MS_OK)
            c->nsubs++;
    }
    return s;
}

static ms_status inproc_next(ms_consumer *c, int timeout_ms, ms_delivery **out)
{
    struct timespec until = ms__deadline_in(CLOCK_REALTIME, timeout_ms);
    inproc_slot slot;
    ms_delivery *d;
    int rc = 0;

    pthread_mutex_lock(&c->mu);
    while (!c->closed && c->len == 0 && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
    if (c->closed) {
        pthread_mutex_unlock(&c->mu);
        return ms__err(MS_ERR_CLOSED, "consumer %s: closed", c->durable);
    }
    if (c->len == 0) {
        pthread_mutex_unlock(&c->mu);
        return ms__err(MS_ERR_TIMEOUT, "consumer %s: no message within %d ms", c->durable,
                       timeout_ms);
    }
    slot = c->ring[c->head];
    c->head = (c->head + 1) % c->cap;
    c->len--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if ((d = ms__calloc(1, sizeof *d)) == NULL) {
        /* Put it back rather than lose it. */
        pthread_mutex_lock(&c->mu);
        if (!ring_push_locked(c, slot.m, slot.count))
            ms_message_unref(slot.m);
        pthread_mutex_unlock(&c->mu);
        return ms__err(MS_ERR_NO_MEMORY, "consumer %s: allocating a delivery", c->durable);
    }
    d->c = c;
    d->m = slot.m;
    d->count = slot.count;
    *out = d;
    return MS_OK;
}

/* --- the API -------------------------------------------------------------- */

ms_status ms_consumer_open(ms_bus *bus, const ms_stream_config *cfg, const ms_consumer_options *o,
                           ms_consumer **out)
{
    ms_consumer *c = NULL;
    ms_status s;

    if (bus == NULL || o == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "consumer: bus, options and out are required");
    *out = NULL;
    if ((s = check_config(cfg)) != MS_OK)
        return s;
    if ((s = ms__stream_check_name("consumer durable name", o->durable)) != MS_OK)
        return s;
    if (o->ack_wait_ms < 0 || o->max_deliver < 0 || o->max_ack_pending < 0)
        return ms__err(MS_ERR_INVALID_ARG, "consumer %s: limits must not be negative", o->durable);
    if ((c = ms__calloc(1, sizeof *c)) == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "consumer: allocating");
    c->bus = bus;
    c->nats = on_nats(bus);
    c->opts = *o;
    c->opts.durable = c->durable;
    snprintf(c->durable, sizeof c->durable, "%s", o->durable);
    if (c->opts.ack_wait_ms == 0)
        c->opts.ack_wait_ms = 30000;
    if (c->opts.max_ack_pending == 0)
        c->opts.max_ack_pending = 256;
    if (c->opts.batch == 0)
        c->opts.batch = 16;
    if ((size_t)c->opts.max_ack_pending < c->opts.batch)
        c->opts.batch = (size_t)c->opts.max_ack_pending;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    s = c->nats ? ms__js_open(c, cfg) : inproc_open(c, cfg);
    if (s != MS_OK) {
        ms_consumer_close(c);
        return s;
    }
    *out = c;
    return MS_OK;
}

ms_status ms_consumer_next(ms_consumer *c, int timeout_ms, ms_delivery **out)
{
    ms_status s;

    if (c == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "consumer next: c and out are required");
    *out = NULL;
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (c->nats) {
        bool closed;

        pthread_mutex_lock(&c->mu);
        closed = c->closed;
        pthread_mutex_unlock(&c->mu);
        if (closed)
            return ms__err(MS_ERR_CLOSED, "consumer %s: closed", c->durable);
    }
    s = c->nats ? ms__js_next(c, timeout_ms, out) : inproc_next(c, timeout_ms, out);
    if (s == MS_OK)
        atomic_fetch_add(&c->outstanding, 1);
    return s;
}

void ms_consumer_interrupt(ms_consumer *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    c->closed = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->nats)
        ms__js_interrupt(c);
}

void ms_consumer_close(ms_consumer *c)
{
    if (c == NULL)
        return;
    if (atomic_load(&c->outstanding) != 0)
        ms_log_kv(MS_LOG_ERROR, "stream",
                  "consumer closed with deliveries not freed (a bug of the caller)", "durable",
                  c->durable, NULL);
    if (c->nats) {
        ms__js_close(c);
    } else {
        pthread_mutex_lock(&c->mu);
        c->closed = true;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        /* After this no handler runs: nothing pushes into the ring. */
        for (size_t i = 0; i < c->nsubs; i++)
            (void)ms_subscription_unsubscribe(c->subs[i]);
        for (size_t i = 0; i < c->len; i++)
            ms_message_unref(c->ring[(c->head + i) % c->cap].m);
    }
    ms__free(c->ring);
    ms__free(c->subs);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    ms__free(c);
}

const ms_message *ms_delivery_message(const ms_delivery *d)
{
    return d ? d->m : NULL;
}

uint64_t ms_delivery_count(const ms_delivery *d)
{
    return d ? d->count : 0;
}

ms_status ms_delivery_ack(ms_delivery *d)
{
    ms_status s = MS_OK;

    if (d == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "delivery ack: d is required");
    if (d->acked)
        return ms__err(MS_ERR_STATE, "delivery of '%s' was already acknowledged",
                       ms_message_subject(d->m));
    if (d->c->nats)
        s = ms__js_ack(d);
    if (s == MS_OK)
        d->acked = true;
    return s;
}

ms_status ms_delivery_nak(ms_delivery *d, int delay_ms)
{
    ms_consumer *c;

    if (d == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "delivery nak: d is required");
    if (d->acked)
        return ms__err(MS_ERR_STATE, "delivery of '%s' was already acknowledged",
                       ms_message_subject(d->m));
    c = d->c;
    if (c->nats) {
        ms_status s = ms__js_nak(d, delay_ms < 0 ? 0 : delay_ms);
        if (s == MS_OK)
            d->acked = true;
        return s;
    }
    /* In-process: back to the end of the queue (the delay is not kept). */
    pthread_mutex_lock(&c->mu);
    if (c->closed || c->len == c->cap) {
        pthread_mutex_unlock(&c->mu);
        return ms__err(c->closed ? MS_ERR_CLOSED : MS_ERR_FULL, "consumer %s: cannot requeue '%s'",
                       c->durable, ms_message_subject(d->m));
    }
    c->ring[(c->head + c->len) % c->cap] =
        (inproc_slot){.m = ms_message_ref(d->m), .count = d->count + 1};
    c->len++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    d->acked = true;
    return MS_OK;
}

ms_status ms_delivery_progress(ms_delivery *d)
{
    if (d == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "delivery progress: d is required");
    if (d->acked)
        return ms__err(MS_ERR_STATE, "delivery of '%s' was already acknowledged",
                       ms_message_subject(d->m));
    return d->c->nats ? ms__js_progress(d) : MS_OK;
}

void ms_delivery_free(ms_delivery *d)
{
    if (d == NULL)
        return;
    atomic_fetch_sub(&d->c->outstanding, 1);
    ms_message_unref(d->m); /* on NATS this releases the natsMsg too */
    ms__free(d);
}
