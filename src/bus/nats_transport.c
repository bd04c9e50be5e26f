/*
 * nats_transport.c - the NATS transport of ms_bus, over libnats 3.4.1.
 *
 * bus.c has checked every argument; this file maps the transport table of
 * transport.h onto libnats: one natsConnection per bus (global message
 * delivery pool, replies sent at once), one natsSubscription per
 * ms_subscription. Received natsMsgs are wrapped, not copied, into
 * ms_messages. Two libnats 3.4.1 hazards shape the subscription lifecycle:
 * destroying a subscription that may still receive can crash (nats.c #637),
 * and the async error callback may see a subscription that is already freed
 * (nats.c #659). So a subscription is unsubscribed, then destroyed only after
 * its completion callback ran, and the error callback only touches
 * subscriptions it finds in this connection's live list. The promise of
 * ms_subscription_unsubscribe (the handler is not running and never runs
 * again) comes from our own gate around the handler, so it also holds when a
 * handler unsubscribes another subscription served by the same pool thread,
 * where waiting for libnats' completion would never end.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "bus/nats_internal.h"
#include "bus/transport.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/message_internal.h"
#include "core/time_util.h"
#include "mainstack/log.h"

#define NATS_DEFAULT_MAX_PAYLOAD ((size_t)1024 * 1024) /* nats-server's default */

/* nats_sub.state bits. RUNNING: on_msg is between its gate entry and exit.
 * CLOSING: unsubscribe started; on_msg delivers nothing more. */
enum { SUB_RUNNING = 1u, SUB_CLOSING = 2u };

typedef struct nats_conn nats_conn;

/* The transport state of one subscription (ms_subscription.impl). Freed by
 * unsubscribe, or by on_complete when unsubscribe could not wait for it. */
typedef struct nats_sub {
    nats_conn *conn;      /* borrowed: outlives every nats_sub (see active) */
    ms_subscription *sub; /* borrowed from bus.c; valid until unsubscribe returns */
    natsSubscription *ns; /* owned; destroyed once libnats is done with it */
    atomic_uint state;    /* SUB_RUNNING | SUB_CLOSING */
    atomic_bool slow;     /* in a slow-consumer burst: refresh the drop count */
    atomic_bool ready;    /* subscribe finished setting up; see wait_ready */
    pthread_mutex_t mu;   /* guards completed, orphaned; with cv */
    pthread_cond_t cv;
    bool completed;               /* on_complete ran: libnats will not call on_msg again */
    bool orphaned;                /* unsubscribe returned without waiting: on_complete frees */
    struct nats_sub *prev, *next; /* conn->subs, under conn->mu */
} nats_sub;

/* The transport state of one bus (ms_bus.impl). */
struct nats_conn {
    ms_bus *bus; /* borrowed: the bus owns us */
    natsConnection *nc;  /* buffered: subscriptions, publishes, requests */
    natsConnection *rnc; /* SendAsap, publish only: replies (ms_bus_respond) */
    pthread_mutex_t mu; /* guards everything below except the atomics; with cv */
    pthread_cond_t cv;
    nats_sub *subs;            /* subscriptions not yet unsubscribed */
    int active;                /* nats_subs whose on_complete has not run yet */
    bool closed_cb_done;       /* the closed callback (libnats' last one for nc) ran */
    bool rclosed_cb_done;      /* the same for rnc */
    char server_url[256];      /* the server we are (or were last) connected to */
    atomic_bool closing;       /* close or drain was asked for: a disconnect is expected */
    atomic_size_t max_payload; /* the server's max_payload; 0 before the first connect */
};

/* The subscription whose handler runs on this thread (NULL on other threads):
 * lets unsubscribe recognise a call from a handler, where waiting could
 * deadlock the libnats delivery worker. */
static _Thread_local nats_sub *tls_current;
/* True while this thread runs the user's event callback (libnats' callback
 * thread): close must not wait there for a callback of that same thread. */
static _Thread_local bool tls_in_event;

/* libnats is opened once per process (necessary global state). */
static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static natsStatus lib_status = NATS_OK;

static void lib_init(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    lib_status = nats_Open(-1);
    if (lib_status != NATS_OK)
        return;
    /* Subscriptions share this pool instead of a thread each. */
    if (cpus < 2)
        cpus = 2;
    if (cpus > 64)
        cpus = 64;
    lib_status = nats_SetMessageDeliveryPoolSize((int)cpus);
}

/* --- errors -------------------------------------------------------------- */

static ms_status map_status(natsStatus ns)
{
    switch (ns) {
    case NATS_OK:
        return MS_OK;
    case NATS_TIMEOUT:
        return MS_ERR_TIMEOUT;
    case NATS_NO_RESPONDERS:
        return MS_ERR_NO_RESPONDERS;
    case NATS_NO_SERVER:
    case NATS_IO_ERROR:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_STALE_CONNECTION:
    case NATS_SECURE_CONNECTION_WANTED:
    case NATS_SECURE_CONNECTION_REQUIRED:
    case NATS_SSL_ERROR:
    case NATS_NOT_YET_CONNECTED:
    case NATS_INSUFFICIENT_BUFFER: /* the reconnect buffer is full */
    case NATS_PROTOCOL_ERROR:
        return MS_ERR_CONNECTION;
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return MS_ERR_AUTH;
    case NATS_MAX_PAYLOAD:
        return MS_ERR_TOO_LARGE;
    case NATS_CONNECTION_CLOSED:
    case NATS_DRAINING:
    case NATS_INVALID_SUBSCRIPTION:
        return MS_ERR_CLOSED;
    case NATS_NO_MEMORY:
        return MS_ERR_NO_MEMORY;
    case NATS_INVALID_SUBJECT:
    case NATS_INVALID_QUEUE_NAME:
        return MS_ERR_INVALID_SUBJECT;
    case NATS_INVALID_ARG:
    case NATS_INVALID_TIMEOUT:
    case NATS_ADDRESS_MISSING:
        return MS_ERR_INVALID_ARG;
    case NATS_ILLEGAL_STATE:
        return MS_ERR_STATE;
    case NATS_NO_SERVER_SUPPORT:
        return MS_ERR_UNSUPPORTED;
    case NATS_SYS_ERROR:
        return MS_ERR_IO;
    default:
        return MS_ERR_INTERNAL;
    }
}

/* libnats' thread-local text for ns, without its "(file.c:123): " prefix;
 * "" when libnats recorded nothing for this status. */
static const char *nats_text(natsStatus ns)
{
    natsStatus last = NATS_OK;
    const char *t = nats_GetLastError(&last);

    if (t == NULL || last != ns)
        return "";
    if (t[0] == '(') {
        const char *p = strstr(t, "): ");
        if (p != NULL)
            t = p + 3;
    }
    return t;
}

/* Record "<what>: <status text> (<libnats detail>)" and return the mapped
 * status. */
static ms_status fail(natsStatus ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ms_status fail(natsStatus ns, const char *fmt, ...)
{
    char what[512];
    const char *detail = nats_text(ns);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (detail[0] != '\0' && strcmp(detail, natsStatus_GetText(ns)) != 0)
        return ms__err(map_status(ns), "%s: %s (%s)", what, natsStatus_GetText(ns), detail);
    return ms__err(map_status(ns), "%s: %s", what, natsStatus_GetText(ns));
}

/* Copy url into out with any "user:password@" replaced by "***@", so error
 * details and logs never show a secret. */
static void redact_urls(const char *url, char *out, size_t cap)
{
    size_t o = 0;

    for (const char *p = url; *p != '\0' && o + 1 < cap;) {
        const char *scheme = strstr(p, "://");
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        const char *host = (scheme != NULL && scheme < end) ? scheme + 3 : p;
        const char *at = memchr(host, '@', (size_t)(end - host));
        if (at != NULL) {
            o += (size_t)snprintf(out + o, cap - o, "%.*s***%.*s", (int)(host - p), p,
                                  (int)(end - at), at);
        } else {
            o += (size_t)snprintf(out + o, cap - o, "%.*s", (int)(end - p), p);
        }
        if (o >= cap)
            o = cap - 1;
        if (*end == ',' && o + 1 < cap)
            out[o++] = ',';
        p = *end == ',' ? end + 1 : end;
    }
    out[o < cap ? o : cap - 1] = '\0';
}

/* --- small helpers -------------------------------------------------------- */

static void fetch_max_u64(atomic_uint_fast64_t *a, uint64_t v)
{
    uint_fast64_t cur = atomic_load_explicit(a, memory_order_relaxed);
    while (cur < v && !atomic_compare_exchange_weak(a, &cur, v)) {
    }
}

/* Absolute CLOCK_REALTIME deadline ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_in(int ms)
{
    return ms__deadline_in(CLOCK_REALTIME, ms);
}

static void emit(nats_conn *c, ms_bus_event ev, const char *detail)
{
    bool outer = tls_in_event;
    tls_in_event = true;
    ms__bus_event(c->bus, ev, detail);
    tls_in_event = outer;
}

static void refresh_server(nats_conn *c, natsConnection *nc)
{
    char url[sizeof c->server_url];
    int64_t max = natsConnection_GetMaxPayload(nc);

    if (natsConnection_GetConnectedUrl(nc, url, sizeof url) != NATS_OK)
        url[0] = '\0';
    if (max > 0)
        atomic_store(&c->max_payload, (size_t)max);
    pthread_mutex_lock(&c->mu);
    if (url[0] != '\0')
        snprintf(c->server_url, sizeof c->server_url, "%s", url);
    pthread_mutex_unlock(&c->mu);
}

static void server_url(nats_conn *c, char *out, size_t cap)
{
    pthread_mutex_lock(&c->mu);
    snprintf(out, cap, "%s", c->server_url[0] ? c->server_url : "the server");
    pthread_mutex_unlock(&c->mu);
}

/* --- received messages ---------------------------------------------------- */

static void release_natsmsg(void *backing)
{
    natsMsg_Destroy((natsMsg *)backing);
}

/* Feed every header of nm into m (metadata or free-form). keys is libnats'
 * array (borrowed). */
static ms_status copy_headers(ms_message *m, natsMsg *nm, const char **keys, int nkeys)
{
    size_t total = 0;

    for (int i = 0; i < nkeys; i++) {
        const char **values = NULL;
        int nvalues = 0;
        ms_status st = MS_OK;
        natsStatus ns = natsMsgHeader_Values(nm, keys[i], &values, &nvalues);

        if (ns != NATS_OK)
            return fail(ns, "received message on '%s': reading header '%s'", natsMsg_GetSubject(nm),
                        keys[i]);
        for (int j = 0; j < nvalues && st == MS_OK; j++) {
            const char *v = values[j] ? values[j] : "";
            if (++total > MS_HEADER_MAX_COUNT)
                st = ms__err(MS_ERR_PARSE, "received message on '%s': more than %d headers",
                             natsMsg_GetSubject(nm), MS_HEADER_MAX_COUNT);
            else if (strlen(v) > MS_HEADER_VALUE_MAX)
                st = ms__err(MS_ERR_PARSE,
                             "received message on '%s': header '%s' is longer than %d bytes",
                             natsMsg_GetSubject(nm), keys[i], MS_HEADER_VALUE_MAX);
            else
                st = ms__message_set_wire_header(m, keys[i], v);
        }
        free((void *)values); /* libnats' array, allocated with malloc */
        if (st != MS_OK)
            return st;
    }
    return MS_OK;
}

/* Wrap a received natsMsg (taken: released with the message, or now on
 * failure) into a frozen ms_message with one reference for the caller. A
 * message without headers costs no header work beyond one check. */
static ms_status wrap_msg(natsMsg *nm, ms_message **out)
{
    ms_message *m = NULL;
    const char **keys = NULL;
    int nkeys = 0;
    const char *reply = natsMsg_GetReply(nm);
    ms_status st;
    natsStatus ns;

    st = ms__message_wrap(natsMsg_GetSubject(nm), (reply && reply[0]) ? reply : NULL,
                          natsMsg_GetData(nm), (size_t)natsMsg_GetDataLength(nm), nm,
                          release_natsmsg, &m);
    if (st != MS_OK)
        return st;
    ns = natsMsgHeader_Keys(nm, &keys, &nkeys);
    if (ns == NATS_OK) {
        st = copy_headers(m, nm, keys, nkeys);
        free((void *)keys); /* libnats' array, allocated with malloc */
    } else if (ns != NATS_NOT_FOUND) {
        st = fail(ns, "received message on '%s': unreadable headers", natsMsg_GetSubject(nm));
    }
    if (st != MS_OK) {
        ms_message_unref(m);
        return st;
    }
    ms__message_freeze(m);
    *out = m;
    return MS_OK;
}

/* --- subscriptions ---------------------------------------------------------- */

static void free_sub(nats_sub *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    ms__free(s);
}

/* Leave the delivery gate; wake an unsubscribe waiting for us. */
static void gate_leave(nats_sub *s)
{
    unsigned prev = atomic_fetch_and(&s->state, ~(unsigned)SUB_RUNNING);
    if (prev & SUB_CLOSING) {
        pthread_mutex_lock(&s->mu);
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

/* libnats may deliver before natsConnection_Subscribe has even returned to
 * nats_subscribe. The handler must not run (and so cannot unsubscribe) until
 * the subscription is fully set up: wait for that, briefly. */
static void wait_ready(nats_sub *s)
{
    if (atomic_load_explicit(&s->ready, memory_order_acquire))
        return;
    pthread_mutex_lock(&s->mu);
    while (!atomic_load(&s->ready))
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

static void set_ready(nats_sub *s)
{
    pthread_mutex_lock(&s->mu);
    atomic_store(&s->ready, true);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Close the gate: on_msg delivers nothing more, and when this returns the
 * handler is not running (unless we are that handler). */
static void gate_close(nats_sub *s)
{
    atomic_fetch_or(&s->state, SUB_CLOSING);
    if (tls_current == s)
        return;
    pthread_mutex_lock(&s->mu);
    while (atomic_load(&s->state) & SUB_RUNNING)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* Bring the drop count up to date (libnats counts them per subscription).
 * The burst is over once the pending queue is empty. */
static void refresh_dropped(nats_sub *s, natsSubscription *ns)
{
    int pending = 0;
    int64_t dropped = 0;

    if (natsSubscription_GetStats(ns, &pending, NULL, NULL, NULL, NULL, &dropped) != NATS_OK)
        return;
    if (dropped > 0)
        fetch_max_u64(&s->sub->dropped, (uint64_t)dropped);
    if (pending == 0)
        atomic_store(&s->slow, false);
}

/* libnats message handler, on a delivery-pool thread. nm is ours. */
static void on_msg(natsConnection *nc, natsSubscription *ns, natsMsg *nm, void *closure)
{
    nats_sub *s = closure;
    nats_sub *outer;
    ms_message *m = NULL;
    ms_status st;
    (void)nc;

    wait_ready(s);
    /* The server's "503 no responders" answer to a publish_reply: a status,
     * not a message (inproc has no such thing; ms_bus_request reports it as
     * MS_ERR_NO_RESPONDERS). Checked only for empty payloads. */
    if (natsMsg_GetDataLength(nm) == 0 && natsMsg_IsNoResponders(nm)) {
        natsMsg_Destroy(nm);
        return;
    }
    if (atomic_fetch_or(&s->state, SUB_RUNNING) & SUB_CLOSING) {
        natsMsg_Destroy(nm);
        gate_leave(s);
        return;
    }
    st = wrap_msg(nm, &m);
    if (st != MS_OK) {
        ms_log_kv(MS_LOG_WARN, "bus", "nats: dropped a received message", "subject",
                  s->sub->subject, "status", ms_status_name(st), "error", ms_last_error(), NULL);
        gate_leave(s);
        return;
    }
    outer = tls_current;
    tls_current = s;
    ms__bus_deliver(s->sub, m);
    tls_current = outer;
    ms_message_unref(m);
    /* The handler may have unsubscribed itself: then s->sub is gone. */
    if (atomic_load(&s->slow) && !(atomic_load(&s->state) & SUB_CLOSING))
        refresh_dropped(s, ns);
    gate_leave(s);
}

/* libnats completion callback: the subscription is closed and its handler
 * returned for the last time. Runs on the subscription's delivery thread. */
static void on_complete(void *closure)
{
    nats_sub *s = closure;
    nats_conn *c = s->conn;
    bool orphan;

    pthread_mutex_lock(&s->mu);
    s->completed = true;
    orphan = s->orphaned;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    /* Not orphaned: the unsubscriber frees s as soon as it sees completed. */
    if (orphan) {
        natsSubscription_Destroy(s->ns);
        free_sub(s);
    }
    pthread_mutex_lock(&c->mu);
    c->active--;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The natsSubscription is unsubscribed (or its connection closed): destroy it
 * and free s once libnats is done with it. On a delivery thread waiting could
 * deadlock the pool worker that must run on_complete, so s is handed to
 * on_complete instead. */
static void finish_sub(nats_sub *s)
{
    pthread_mutex_lock(&s->mu);
    if (!s->completed && tls_current != NULL) {
        s->orphaned = true;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    while (!s->completed)
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    natsSubscription_Destroy(s->ns);
    free_sub(s);
}

static void link_sub(nats_conn *c, nats_sub *s)
{
    pthread_mutex_lock(&c->mu);
    s->prev = NULL;
    s->next = c->subs;
    if (c->subs != NULL)
        c->subs->prev = s;
    c->subs = s;
    pthread_mutex_unlock(&c->mu);
}

/* Remove s from the live list (no-op when it is not there). Under c->mu. */
static void unlink_sub_locked(nats_conn *c, nats_sub *s)
{
    if (s->prev != NULL)
        s->prev->next = s->next;
    else if (c->subs == s)
        c->subs = s->next;
    else
        return;
    if (s->next != NULL)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static ms_status nats_subscribe(ms_bus *bus, ms_subscription *sub)
{
    nats_conn *c = bus->impl;
    nats_sub *s;
    natsStatus ns;
    ms_status st;
    bool have_cb = false;

    s = ms__calloc(1, sizeof *s);
    if (s == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "subscribe to '%s'", sub->subject);
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        ms__free(s);
        return ms__err(MS_ERR_INTERNAL, "subscribe to '%s': pthread_mutex_init failed",
                       sub->subject);
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        ms__free(s);
        return ms__err(MS_ERR_INTERNAL, "subscribe to '%s': pthread_cond_init failed",
                       sub->subject);
    }
    s->conn = c;
    s->sub = sub;
    atomic_init(&s->state, 0u);
    atomic_init(&s->slow, false);
    atomic_init(&s->ready, false);

    /* From here on_msg may be called (and waits in wait_ready). */
    if (sub->queue != NULL)
        ns = natsConnection_QueueSubscribe(&s->ns, c->nc, sub->subject, sub->queue, on_msg, s);
    else
        ns = natsConnection_Subscribe(&s->ns, c->nc, sub->subject, on_msg, s);
    if (ns != NATS_OK) {
        st = fail(ns, "subscribe to '%s'%s%s", sub->subject, sub->queue ? " in queue " : "",
                  sub->queue ? sub->queue : "");
        free_sub(s);
        return st;
    }
    /* Count s as active before its completion callback can possibly run. */
    pthread_mutex_lock(&c->mu);
    c->active++;
    pthread_mutex_unlock(&c->mu);
    ns = natsSubscription_SetOnCompleteCB(s->ns, on_complete, s);
    have_cb = ns == NATS_OK;
    if (ns == NATS_OK)
        ns = natsSubscription_SetPendingLimits(s->ns, bus->opts.pending_msgs_limit,
                                               bus->opts.pending_bytes_limit);
    if (ns == NATS_OK) {
        sub->impl = s;
        link_sub(c, s);
        set_ready(s);
        return MS_OK;
    }

    /* Back out: nothing reaches the handler; then stop libnats. */
    st = fail(ns, "subscribe to '%s': configuring the subscription", sub->subject);
    atomic_fetch_or(&s->state, SUB_CLOSING);
    set_ready(s);
    if (!have_cb) {
        pthread_mutex_lock(&c->mu);
        c->active--;
        pthread_mutex_unlock(&c->mu);
    }
    gate_close(s);
    (void)natsSubscription_Unsubscribe(s->ns);
    if (have_cb) {
        finish_sub(s);
    } else {
        natsSubscription_Destroy(s->ns);
        free_sub(s);
    }
    return st;
}

static ms_status nats_unsubscribe(ms_bus *bus, ms_subscription *sub)
{
    nats_conn *c = bus->impl;
    nats_sub *s = sub->impl;
    natsStatus ns;
    ms_status st = MS_OK;

    if (s == NULL)
        return MS_OK;
    pthread_mutex_lock(&c->mu);
    unlink_sub_locked(c, s);
    pthread_mutex_unlock(&c->mu);

    gate_close(s);
    ns = natsSubscription_Unsubscribe(s->ns);
    /* Closed connection or subscription: there is nothing to tell the server. */
    if (ns != NATS_OK && ns != NATS_CONNECTION_CLOSED && ns != NATS_INVALID_SUBSCRIPTION &&
        ns != NATS_DRAINING)
        st = ms__err(MS_ERR_CONNECTION, "unsubscribe from '%s': the server could not be told: %s",
                     sub->subject, natsStatus_GetText(ns));
    finish_sub(s);
    sub->impl = NULL;
    return st;
}

/* --- connection callbacks (libnats' callback thread) ----------------------- */

static void on_closed(natsConnection *nc, void *closure)
{
    nats_conn *c = closure;
    char url[256], detail[320];
    (void)nc;

    server_url(c, url, sizeof url);
    snprintf(detail, sizeof detail, "connection to %s closed", url);
    ms_log_kv(MS_LOG_DEBUG, "bus", "nats: connection closed", "server", url, NULL);
    emit(c, MS_BUS_CLOSED, detail);
    /* Last touch of c by this callback: destroy may free it right after. */
    pthread_mutex_lock(&c->mu);
    c->closed_cb_done = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* The reply connection's closed callback: only marks it done. Its
 * disconnects and reconnects mirror the main connection's and are not
 * raised as events twice. */
static void on_reply_closed(natsConnection *nc, void *closure)
{
    nats_conn *c = closure;
    (void)nc;

    pthread_mutex_lock(&c->mu);
    c->rclosed_cb_done = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* retry_on_failed_connect: the reply connection came up in the background. */
static void on_reply_connected(natsConnection *nc, void *closure)
{
    (void)nc;
    (void)closure;
    ms_log_kv(MS_LOG_DEBUG, "bus", "nats: reply connection established", NULL);
}

static void on_disconnected(natsConnection *nc, void *closure)
{
    nats_conn *c = closure;
    char url[256], detail[320];
    (void)nc;

    server_url(c, url, sizeof url);
    snprintf(detail, sizeof detail, "disconnected from %s", url);
    ms_log_kv(atomic_load(&c->closing) ? MS_LOG_DEBUG : MS_LOG_WARN, "bus", "nats: disconnected",
              "server", url, NULL);
    emit(c, MS_BUS_DISCONNECTED, detail);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
    nats_conn *c = closure;
    char url[256], detail[320];

    refresh_server(c, nc);
    server_url(c, url, sizeof url);
    snprintf(detail, sizeof detail, "connected to %s; subscriptions re-established", url);
    ms_log_kv(MS_LOG_INFO, "bus", "nats: reconnected", "server", url, NULL);
    emit(c, MS_BUS_RECONNECTED, detail);
}

/* A slow-consumer report for ns: count, log once per burst, raise the event.
 * ns may already be freed (nats.c #659): it is only used when found in the
 * live list, and unsubscribe unlinks before it destroys. */
static void on_slow_consumer(nats_conn *c, natsSubscription *ns)
{
    char subject[MS_SUBJECT_MAX + 1] = "", queue[MS_SUBJECT_MAX + 1] = "";
    char detail[2 * MS_SUBJECT_MAX + 200], count[32];
    int64_t dropped = 0;
    int limit_msgs = c->bus->opts.pending_msgs_limit;
    int limit_bytes = c->bus->opts.pending_bytes_limit;
    bool found = false;

    pthread_mutex_lock(&c->mu);
    for (nats_sub *s = c->subs; s != NULL; s = s->next) {
        if (s->ns != ns)
            continue;
        found = true;
        if (natsSubscription_GetDropped(ns, &dropped) == NATS_OK && dropped > 0)
            fetch_max_u64(&s->sub->dropped, (uint64_t)dropped);
        atomic_store(&s->slow, true);
        snprintf(subject, sizeof subject, "%s", s->sub->subject);
        if (s->sub->queue != NULL)
            snprintf(queue, sizeof queue, "%s", s->sub->queue);
        break;
    }
    pthread_mutex_unlock(&c->mu);
    if (!found)
        return; /* already unsubscribed */

    snprintf(count, sizeof count, "%lld", (long long)dropped);
    snprintf(detail, sizeof detail,
             "subscription '%s'%s%s is a slow consumer: %lld messages dropped so far "
             "(pending limit %d messages / %d bytes)",
             subject, queue[0] ? " in queue " : "", queue, (long long)dropped, limit_msgs,
             limit_bytes);
    ms_log_kv(MS_LOG_WARN, "bus", "nats: slow consumer, messages dropped", "subject", subject,
              "queue", queue, "dropped", count, NULL);
    emit(c, MS_BUS_SLOW_CONSUMER, detail);
}

static void on_error(natsConnection *nc, natsSubscription *ns, natsStatus err, void *closure)
{
    nats_conn *c = closure;
    const char *text = NULL;
    char detail[512];

    if (err == NATS_SLOW_CONSUMER && ns != NULL) {
        on_slow_consumer(c, ns);
        return;
    }
    if (natsConnection_GetLastError(nc, &text) == NATS_OK || text == NULL)
        text = "";
    snprintf(detail, sizeof detail, "%s%s%s", natsStatus_GetText(err), text[0] ? ": " : "", text);
    ms_log_kv(MS_LOG_WARN, "bus", "nats: asynchronous error", "error", detail, NULL);
    emit(c, err == NATS_SLOW_CONSUMER ? MS_BUS_SLOW_CONSUMER : MS_BUS_ASYNC_ERROR, detail);
}

/* --- connect ------------------------------------------------------------- */

/* Split a comma-separated URL list into owned strings (spaces trimmed). */
static ms_status split_urls(const char *url, char ***out, int *count)
{
    char **list = NULL;
    int n = 1, i = 0;
    const char *p = url;
    ms_status st = MS_OK;

    for (const char *q = url; *q != '\0'; q++)
        if (*q == ',')
            n++;
    list = ms__calloc((size_t)n, sizeof *list);
    if (list == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "nats connect: splitting the URL list");
    for (i = 0; i < n; i++) {
        const char *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = end;
        while (e > p && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == p) {
            st = ms__err(MS_ERR_INVALID_ARG, "bus url: server %d of the list is empty", i + 1);
            break;
        }
        list[i] = ms__strndup(p, (size_t)(e - p));
        if (list[i] == NULL) {
            st = ms__err(MS_ERR_NO_MEMORY, "nats connect: splitting the URL list");
            break;
        }
        if (strncmp(list[i], "nats://", 7) != 0 && strncmp(list[i], "tls://", 6) != 0) {
            st = ms__err(MS_ERR_INVALID_ARG,
                         "bus url: server %d of the list ('%s') is not nats:// or tls://", i + 1,
                         list[i]);
            break;
        }
        p = *end == ',' ? end + 1 : end;
    }
    if (st != MS_OK) {
        for (int j = 0; j < n; j++)
            ms__free(list[j]);
        ms__free(list);
        return st;
    }
    *out = list;
    *count = n;
    return MS_OK;
}

static void free_urls(char **list, int n)
{
    if (list == NULL)
        return;
    for (int i = 0; i < n; i++)
        ms__free(list[i]);
    ms__free(list);
}

/* A file option must name a readable file: MS_ERR_IO naming it otherwise. */
static ms_status check_file(const char *what, const char *path)
{
    if (path != NULL && access(path, R_OK) != 0)
        return ms__err(MS_ERR_IO, "nats connect: %s '%s' is not readable: %s", what, path,
                       strerror(errno));
    return MS_OK;
}

static ms_status set_tls(natsOptions *o, const ms_bus_options *bo, bool tls_scheme)
{
    natsStatus ns;
    ms_status st;

    if (!(tls_scheme || bo->tls_required || bo->tls_ca || bo->tls_cert || bo->tls_key))
        return MS_OK;
    if ((bo->tls_cert == NULL) != (bo->tls_key == NULL))
        return ms__err(MS_ERR_INVALID_ARG, "nats connect: tls_cert and tls_key go together");
    if ((st = check_file("tls_ca", bo->tls_ca)) != MS_OK ||
        (st = check_file("tls_cert", bo->tls_cert)) != MS_OK ||
        (st = check_file("tls_key", bo->tls_key)) != MS_OK)
        return st;
    ns = natsOptions_SetSecure(o, true);
    if (ns == NATS_ILLEGAL_STATE)
        return ms__err(MS_ERR_UNSUPPORTED, "nats connect: this libnats was built without TLS");
    if (ns != NATS_OK)
        return fail(ns, "nats connect: enabling TLS");
    if (bo->tls_ca != NULL &&
        (ns = natsOptions_LoadCATrustedCertificates(o, bo->tls_ca)) != NATS_OK)
        return ms__err(MS_ERR_IO, "nats connect: tls_ca '%s': cannot load certificates: %s",
                       bo->tls_ca, nats_text(ns));
    if (bo->tls_cert != NULL &&
        (ns = natsOptions_LoadCertificatesChain(o, bo->tls_cert, bo->tls_key)) != NATS_OK)
        return ms__err(MS_ERR_IO, "nats connect: tls_cert '%s' / tls_key '%s': cannot load: %s",
                       bo->tls_cert, bo->tls_key, nats_text(ns));
    if (bo->tls_hostname != NULL &&
        (ns = natsOptions_SetExpectedHostname(o, bo->tls_hostname)) != NATS_OK)
        return fail(ns, "nats connect: tls_hostname '%s'", bo->tls_hostname);
    return MS_OK;
}

/* libnats 3.4.1 copies user, password and token into its CONNECT JSON
 * without escaping: a quote or backslash would break the protocol with an
 * obscure "Protocol Error". Refuse them with a clear message instead. */
static ms_status check_secret(const char *what, const char *v)
{
    if (v == NULL)
        return MS_OK;
    for (const char *p = v; *p != '\0'; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            return ms__err(MS_ERR_INVALID_ARG,
                           "nats connect: %s contains a quote, backslash or control character, "
                           "which libnats cannot send",
                           what);
    return MS_OK;
}

/* Build libnats options from bus->opts. *out is owned by the caller. */
/* Options of the main connection (replies == false) or of the reply
 * connection (replies == true: SendAsap, no subscriptions, no events). */
static ms_status build_options(nats_conn *c, char **servers, int nservers, bool replies,
                               natsOptions **out)
{
    const ms_bus_options *bo = &c->bus->opts;
    natsOptions *o = NULL;
    natsStatus ns;
    ms_status st = MS_OK;
    bool tls_scheme = false;

    for (int i = 0; i < nservers; i++)
        tls_scheme = tls_scheme || strncmp(servers[i], "tls://", 6) == 0;
    if ((st = check_file("creds_file", bo->creds_file)) != MS_OK ||
        (st = check_secret("user", bo->user)) != MS_OK ||
        (st = check_secret("password", bo->password)) != MS_OK ||
        (st = check_secret("token", bo->token)) != MS_OK)
        return st;
    if ((ns = natsOptions_Create(&o)) != NATS_OK)
        return fail(ns, "nats connect: creating options");

    ns = natsOptions_SetServers(o, (const char **)servers, nservers);
    if (ns == NATS_OK && bo->name != NULL) {
        char name[256];
        snprintf(name, sizeof name, "%s%s", bo->name, replies ? " (replies)" : "");
        ns = natsOptions_SetName(o, name);
    }
    if (ns == NATS_OK && bo->user != NULL)
        ns = natsOptions_SetUserInfo(o, bo->user, bo->password);
    if (ns == NATS_OK && bo->token != NULL)
        ns = natsOptions_SetToken(o, bo->token);
    if (ns == NATS_OK && bo->creds_file != NULL)
        ns = natsOptions_SetUserCredentialsFromFiles(o, bo->creds_file, NULL);
    if (ns == NATS_OK)
        ns = natsOptions_SetTimeout(o, bo->connect_timeout_ms);
    if (ns == NATS_OK)
        ns = natsOptions_SetMaxReconnect(o, bo->max_reconnect);
    if (ns == NATS_OK)
        ns = natsOptions_SetReconnectWait(o, bo->reconnect_wait_ms);
    if (ns == NATS_OK && bo->reconnect_buffer_bytes > 0)
        ns = natsOptions_SetReconnectBufSize(o, bo->reconnect_buffer_bytes);
    if (ns == NATS_OK && replies) {
        /* Replies must leave at once, not on libnats' 1 ms flusher tick
         * (a serial requester would be capped near 1,000 req/s). The main
         * connection stays buffered: SendAsap there makes every publish a
         * write(2) and bulk publishing several times slower. */
        ns = natsOptions_SetSendAsap(o, true);
        if (ns == NATS_OK)
            ns = natsOptions_SetRetryOnFailedConnect(
                o, bo->retry_on_failed_connect,
                bo->retry_on_failed_connect ? on_reply_connected : NULL, NULL);
        if (ns == NATS_OK)
            ns = natsOptions_SetClosedCB(o, on_reply_closed, c);
    } else if (ns == NATS_OK) {
        ns = natsOptions_SetRetryOnFailedConnect(
            o, bo->retry_on_failed_connect, bo->retry_on_failed_connect ? on_reconnected : NULL, c);
        if (ns == NATS_OK)
            ns = natsOptions_SetMaxPendingMsgs(o, bo->pending_msgs_limit);
        if (ns == NATS_OK)
            ns = natsOptions_UseGlobalMessageDelivery(o, true);
        if (ns == NATS_OK)
            ns = natsOptions_SetErrorHandler(o, on_error, c);
        if (ns == NATS_OK)
            ns = natsOptions_SetClosedCB(o, on_closed, c);
        if (ns == NATS_OK)
            ns = natsOptions_SetDisconnectedCB(o, on_disconnected, c);
        if (ns == NATS_OK)
            ns = natsOptions_SetReconnectedCB(o, on_reconnected, c);
    }
    if (ns != NATS_OK) {
        st = fail(ns, "nats connect: setting options");
        goto cleanup;
    }
    if ((st = set_tls(o, bo, tls_scheme)) != MS_OK)
        goto cleanup;
    *out = o;
    o = NULL;

cleanup:
    natsOptions_Destroy(o);
    return st;
}

static ms_status connect_error(nats_conn *c, natsStatus ns, const char *url)
{
    const ms_bus_options *bo = &c->bus->opts;
    const char *text = nats_text(ns);
    char shown[1024];

    redact_urls(url, shown, sizeof shown);
    switch (ns) {
    case NATS_NO_SERVER:
        return ms__err(MS_ERR_CONNECTION,
                       "nats connect to %s: no server available (refused or unreachable; "
                       "connect timeout %d ms)",
                       shown, bo->connect_timeout_ms);
    case NATS_TIMEOUT:
        return ms__err(MS_ERR_CONNECTION, "nats connect to %s: no answer within %d ms", shown,
                       bo->connect_timeout_ms);
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return ms__err(MS_ERR_AUTH, "nats connect to %s: the server refused the credentials%s%s",
                       shown, text[0] ? ": " : "", text);
    default:
        break;
    }
    /* libnats reads the creds file while connecting. */
    if (bo->creds_file != NULL && strstr(text, bo->creds_file) != NULL)
        return ms__err(MS_ERR_IO, "nats connect: creds_file '%s' is not usable: %s", bo->creds_file,
                       text);
    if (ns == NATS_ERR && (strcasestr(text, "authoriz") || strcasestr(text, "authentic")))
        return ms__err(MS_ERR_AUTH, "nats connect to %s: the server refused the credentials: %s",
                       shown, text);
    if (map_status(ns) == MS_ERR_INTERNAL)
        return ms__err(MS_ERR_CONNECTION, "nats connect to %s: %s%s%s", shown,
                       natsStatus_GetText(ns), text[0] ? ": " : "", text);
    return fail(ns, "nats connect to %s", shown);
}

static void free_conn(nats_conn *c)
{
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    ms__free(c);
}

static bool wait_closed_cb(nats_conn *c, const struct timespec *deadline);

static ms_status nats_connect(ms_bus *bus, const char *url)
{
    nats_conn *c = NULL;
    natsOptions *o = NULL;
    char **servers = NULL;
    int nservers = 0;
    natsStatus ns;
    ms_status st;

    (void)pthread_once(&lib_once, lib_init);
    if (lib_status != NATS_OK)
        return ms__err(MS_ERR_INTERNAL, "nats: the library failed to initialise: %s",
                       natsStatus_GetText(lib_status));
    if ((st = split_urls(url, &servers, &nservers)) != MS_OK)
        return st;
    c = ms__calloc(1, sizeof *c);
    if (c == NULL) {
        st = ms__err(MS_ERR_NO_MEMORY, "nats connect: allocating the connection state");
        goto cleanup;
    }
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        ms__free(c);
        c = NULL;
        st = ms__err(MS_ERR_INTERNAL, "nats connect: pthread_mutex_init failed");
        goto cleanup;
    }
    if (pthread_cond_init(&c->cv, NULL) != 0) {
        pthread_mutex_destroy(&c->mu);
        ms__free(c);
        c = NULL;
        st = ms__err(MS_ERR_INTERNAL, "nats connect: pthread_cond_init failed");
        goto cleanup;
    }
    c->bus = bus;
    atomic_init(&c->closing, false);
    atomic_init(&c->max_payload, 0);
    if ((st = build_options(c, servers, nservers, false, &o)) != MS_OK)
        goto cleanup;

    ns = natsConnection_Connect(&c->nc, o);
    if (ns == NATS_NOT_YET_CONNECTED) {
        /* retry_on_failed_connect: libnats keeps trying in the background. */
        ms_log_kv(MS_LOG_INFO, "bus", "nats: no server yet, connecting in the background", NULL);
    } else if (ns != NATS_OK) {
        c->nc = NULL;
        st = connect_error(c, ns, url);
        goto cleanup;
    } else {
        refresh_server(c, c->nc);
    }
    natsOptions_Destroy(o);
    o = NULL;
    if ((st = build_options(c, servers, nservers, true, &o)) != MS_OK)
        goto fail_main;
    ns = natsConnection_Connect(&c->rnc, o);
    if (ns != NATS_OK && ns != NATS_NOT_YET_CONNECTED) {
        c->rnc = NULL;
        st = ms__err_wrap(connect_error(c, ns, url), "nats: the reply connection");
        goto fail_main;
    }
    bus->impl = c;
    c = NULL;

cleanup:
    natsOptions_Destroy(o);
    free_urls(servers, nservers);
    if (c != NULL)
        free_conn(c);
    return st;

fail_main:
    /* The main connection is up but the bus will not be: close it and wait
     * for its closed callback before c goes. */
    natsConnection_Close(c->nc);
    (void)wait_closed_cb(c, NULL);
    natsConnection_Destroy(c->nc);
    goto cleanup;
}

/* --- publish / request --------------------------------------------------- */

static ms_status add_header(const char *key, const char *value, void *closure)
{
    natsStatus ns = natsMsgHeader_Add((natsMsg *)closure, key, value);
    if (ns != NATS_OK)
        return fail(ns, "publish: adding header '%s'", key);
    return MS_OK;
}

/* A natsMsg with msg's headers and the given subject/reply/data. *out owned
 * by the caller (natsMsg_Destroy). */
static ms_status make_natsmsg(const char *subject, const char *reply, const void *data, size_t len,
                              const ms_message *msg, natsMsg **out)
{
    natsMsg *nm = NULL;
    natsStatus ns = natsMsg_Create(&nm, subject, reply, data, (int)len);
    ms_status st;

    if (ns != NATS_OK)
        return fail(ns, "publish on '%s': creating the message", subject);
    st = ms__message_each_wire_header(msg, add_header, nm);
    if (st != MS_OK) {
        natsMsg_Destroy(nm);
        return st;
    }
    *out = nm;
    return MS_OK;
}

static ms_status publish_error(nats_conn *c, natsStatus ns, const char *what, const char *subject,
                               size_t len)
{
    if (ns == NATS_MAX_PAYLOAD)
        return ms__err(MS_ERR_TOO_LARGE,
                       "%s on '%s': %zu bytes of payload (plus headers) exceed the server's "
                       "max_payload of %lld bytes",
                       what, subject, len, (long long)natsConnection_GetMaxPayload(c->nc));
    if (ns == NATS_INSUFFICIENT_BUFFER)
        return ms__err(MS_ERR_CONNECTION,
                       "%s on '%s': disconnected and the reconnect buffer (%d bytes) is full", what,
                       subject, c->bus->opts.reconnect_buffer_bytes);
    return fail(ns, "%s on '%s'", what, subject);
}

/* Publish on nc: the main connection or the reply connection. */
static ms_status publish_on(nats_conn *c, natsConnection *nc, const char *subject,
                            const char *reply, const void *data, size_t len, ms_message *msg)
{
    natsStatus ns;
    ms_status st;

    if (len > INT_MAX)
        return ms__err(MS_ERR_TOO_LARGE, "publish on '%s': %zu bytes is over what NATS can carry",
                       subject, len);
    if (msg != NULL)
        ms__message_freeze(msg);
    if (msg == NULL || !ms__message_has_headers(msg)) {
        /* The fast path: no natsMsg is allocated. */
        if (reply != NULL)
            ns = natsConnection_PublishRequest(nc, subject, reply, data, (int)len);
        else
            ns = natsConnection_Publish(nc, subject, data, (int)len);
    } else {
        natsMsg *nm = NULL;
        if ((st = make_natsmsg(subject, reply, data, len, msg, &nm)) != MS_OK)
            return st;
        ns = natsConnection_PublishMsg(nc, nm);
        natsMsg_Destroy(nm);
    }
    if (ns != NATS_OK)
        return publish_error(c, ns, "publish", subject, len);
    return MS_OK;
}

static ms_status nats_publish(ms_bus *bus, const char *subject, const char *reply, const void *data,
                              size_t len, ms_message *msg)
{
    nats_conn *c = bus->impl;
    return publish_on(c, c->nc, subject, reply, data, len, msg);
}

/* Replies go out on the SendAsap connection, written before this returns. */
static ms_status nats_respond(ms_bus *bus, const char *subject, const char *reply,
                              const void *data, size_t len, ms_message *msg)
{
    nats_conn *c = bus->impl;
    return publish_on(c, c->rnc, subject, reply, data, len, msg);
}

static ms_status nats_request(ms_bus *bus, const char *subject, const void *data, size_t len,
                              ms_message *msg, int timeout_ms, ms_message **reply)
{
    nats_conn *c = bus->impl;
    natsMsg *rm = NULL;
    natsStatus ns;
    ms_status st;

    if (len > INT_MAX)
        return ms__err(MS_ERR_TOO_LARGE, "request on '%s': %zu bytes is over what NATS can carry",
                       subject, len);
    if (msg != NULL)
        ms__message_freeze(msg);
    if (msg == NULL || !ms__message_has_headers(msg)) {
        ns = natsConnection_Request(&rm, c->nc, subject, data, (int)len, timeout_ms);
    } else {
        natsMsg *nm = NULL;
        if ((st = make_natsmsg(subject, NULL, data, len, msg, &nm)) != MS_OK)
            return st;
        ns = natsConnection_RequestMsg(&rm, c->nc, nm, timeout_ms);
        natsMsg_Destroy(nm);
    }
    switch (ns) {
    case NATS_OK:
        break;
    case NATS_TIMEOUT:
        return ms__err(MS_ERR_TIMEOUT, "request on '%s': no reply within %d ms", subject,
                       timeout_ms);
    case NATS_NO_RESPONDERS:
        return ms__err(MS_ERR_NO_RESPONDERS,
                       "request on '%s': no responders (nothing is subscribed to '%s')", subject,
                       subject);
    default:
        return publish_error(c, ns, "request", subject, len);
    }
    if ((st = wrap_msg(rm, reply)) != MS_OK)
        return ms__err_wrap(st, "request on '%s': the reply", subject);
    return MS_OK;
}

/* --- flush, drain, close, destroy ------------------------------------------ */

static ms_status nats_flush(ms_bus *bus, int timeout_ms)
{
    nats_conn *c = bus->impl;
    natsStatus ns = natsConnection_FlushTimeout(c->nc, timeout_ms > 0 ? timeout_ms : 1);

    if (ns == NATS_OK)
        return MS_OK;
    if (ns == NATS_TIMEOUT)
        return ms__err(MS_ERR_TIMEOUT, "flush: the server did not answer within %d ms", timeout_ms);
    return fail(ns, "flush");
}

/* Wait for the closed callback; bounded when deadline is not NULL. */
static bool wait_closed_cb(nats_conn *c, const struct timespec *deadline)
{
    bool done;

    if (tls_in_event)
        return false; /* that callback runs on this very thread, after us */
    pthread_mutex_lock(&c->mu);
    while (!c->closed_cb_done) {
        if (deadline == NULL)
            pthread_cond_wait(&c->cv, &c->mu);
        else if (pthread_cond_timedwait(&c->cv, &c->mu, deadline) != 0)
            break;
    }
    done = c->closed_cb_done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

/* Wait until every subscription's handler returned for the last time. */
static void wait_handlers(nats_conn *c)
{
    if (tls_current != NULL) {
        /* Called from a handler against the contract: waiting would never end. */
        ms_log_kv(MS_LOG_ERROR, "bus",
                  "nats: bus closed from a message handler; "
                  "not waiting for handlers",
                  NULL);
        return;
    }
    pthread_mutex_lock(&c->mu);
    while (c->active > 0)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

/* Flush what replies are buffered (bounded by deadline when given), close
 * the reply connection and wait for its closed callback. Idempotent. */
static void close_replies(nats_conn *c, const struct timespec *deadline)
{
    if (c->rnc == NULL)
        return;
    if (deadline != NULL && natsConnection_Status(c->rnc) == NATS_CONN_STATUS_CONNECTED) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t left = ((int64_t)deadline->tv_sec - now.tv_sec) * 1000 +
                       (deadline->tv_nsec - now.tv_nsec) / 1000000;
        if (left > 0)
            (void)natsConnection_FlushTimeout(c->rnc, left);
    }
    natsConnection_Close(c->rnc);
    if (tls_in_event)
        return;
    pthread_mutex_lock(&c->mu);
    while (!c->rclosed_cb_done)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
}

static void nats_close(ms_bus *bus)
{
    nats_conn *c = bus->impl;

    if (c == NULL)
        return;
    atomic_store(&c->closing, true);
    natsConnection_Close(c->nc);
    (void)wait_closed_cb(c, NULL);
    wait_handlers(c);
    /* Handlers are done, so no reply can follow: close the reply side. */
    close_replies(c, NULL);
}

static ms_status nats_drain(ms_bus *bus, int timeout_ms)
{
    nats_conn *c = bus->impl;
    struct timespec deadline;
    natsStatus ns;
    ms_status st = MS_OK;

    atomic_store(&c->closing, true);
    deadline = deadline_in(timeout_ms > 0 ? timeout_ms : 1);
    /* Our deadline decides. libnats gets a later one of its own, so that a
     * closed callback before our deadline means the drain really finished
     * (not that libnats gave up on it at the same moment). */
    ns = natsConnection_DrainTimeout(c->nc, (int64_t)timeout_ms + 60000);
    if (ns != NATS_OK) {
        st = fail(ns, "drain");
        nats_close(bus);
        return st;
    }
    if (!wait_closed_cb(c, &deadline)) {
        st = ms__err(MS_ERR_TIMEOUT,
                     "drain: not finished within %d ms; the connection was closed anyway",
                     timeout_ms);
    } else {
        /* Drained: the replies the handlers sent leave before we close. */
        wait_handlers(c);
        close_replies(c, &deadline);
    }
    nats_close(bus);
    return st;
}

static void nats_destroy(ms_bus *bus)
{
    nats_conn *c = bus->impl;

    if (c == NULL)
        return;
    nats_close(bus);
    /* bus.c unsubscribed everything; be safe with anything left over. */
    pthread_mutex_lock(&c->mu);
    while (c->subs != NULL) {
        nats_sub *s = c->subs;
        unlink_sub_locked(c, s);
        pthread_mutex_unlock(&c->mu);
        natsSubscription_Destroy(s->ns); /* completed: its connection is closed */
        free_sub(s);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    natsConnection_Destroy(c->nc);
    natsConnection_Destroy(c->rnc);
    free_conn(c);
    bus->impl = NULL;
}

static size_t nats_max_payload(const ms_bus *bus)
{
    nats_conn *c = bus->impl;
    size_t max = atomic_load_explicit(&c->max_payload, memory_order_relaxed);
    return max > 0 ? max : NATS_DEFAULT_MAX_PAYLOAD;
}

static bool nats_is_connected(const ms_bus *bus)
{
    nats_conn *c = bus->impl;
    return natsConnection_Status(c->nc) == NATS_CONN_STATUS_CONNECTED &&
           natsConnection_Status(c->rnc) == NATS_CONN_STATUS_CONNECTED;
}

const ms__transport ms__nats_transport = {
    .scheme = "nats",
    .connect = nats_connect,
    .publish = nats_publish,
    .respond = nats_respond,
    .subscribe = nats_subscribe,
    .unsubscribe = nats_unsubscribe,
    .request = nats_request,
    .flush = nats_flush,
    .drain = nats_drain,
    .close = nats_close,
    .destroy = nats_destroy,
    .max_payload = nats_max_payload,
    .is_connected = nats_is_connected,
};

/* --- for nats_stream.c (nats_internal.h) ----------------------------------- */

natsConnection *ms__nats_connection(ms_bus *bus)
{
    if (bus == NULL || bus->ops != &ms__nats_transport || bus->impl == NULL)
        return NULL;
    return ((nats_conn *)bus->impl)->nc;
}

ms_status ms__nats_make_msg(const char *subject, const void *data, size_t len,
                            const ms_message *msg, natsMsg **out)
{
    if (len > INT_MAX)
        return ms__err(MS_ERR_TOO_LARGE, "publish on '%s': %zu bytes is over what NATS can carry",
                       subject, len);
    return make_natsmsg(subject, NULL, data, len, msg, out);
}

ms_status ms__nats_wrap_msg(natsMsg *nm, ms_message **out)
{
    return wrap_msg(nm, out);
}

ms_status ms__nats_fail(natsStatus ns, const char *what)
{
    return fail(ns, "%s", what);
}
