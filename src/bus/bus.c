/*
 * bus.c - the transport-independent half of ms_bus.
 *
 * Everything that must behave the same on every transport lives here:
 * option defaults and copies, URL scheme selection, argument, subject and
 * payload-size checks, the closed state, and the list of live subscriptions
 * (so ms_bus_destroy can release what the user did not). The transport table
 * (transport.h) does the moving of bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bus/transport.h"
#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/log.h"
#include "mainstack/subject.h"

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_MAX_RECONNECT 60
#define DEFAULT_RECONNECT_WAIT_MS 250
#define DEFAULT_RECONNECT_BUFFER (8 * 1024 * 1024)
#define DEFAULT_PUBLISH_TIMEOUT_MS 5000

void ms_bus_options_init(ms_bus_options *opts)
{
    if (opts == NULL)
        return;
    memset(opts, 0, sizeof *opts);
    opts->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    opts->max_reconnect = DEFAULT_MAX_RECONNECT;
    opts->reconnect_wait_ms = DEFAULT_RECONNECT_WAIT_MS;
    opts->reconnect_buffer_bytes = DEFAULT_RECONNECT_BUFFER;
    opts->pending_msgs_limit = MS_BUS_DEFAULT_PENDING_MSGS;
    opts->pending_bytes_limit = MS_BUS_DEFAULT_PENDING_BYTES;
    opts->publish_timeout_ms = DEFAULT_PUBLISH_TIMEOUT_MS;
    opts->inproc_max_payload = MS_BUS_DEFAULT_INPROC_MAX_PAYLOAD;
}

/* Copy one option string into the bus; *slot is rewritten to the copy. */
static ms_status own_string(ms_bus *bus, size_t i, const char **slot)
{
    if (*slot == NULL)
        return MS_OK;
    bus->strings[i] = ms__strdup(*slot);
    if (bus->strings[i] == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "bus: copying connection options");
    *slot = bus->strings[i];
    return MS_OK;
}

static ms_status check_options(const ms_bus_options *o)
{
    if (o->connect_timeout_ms <= 0)
        return ms__err(MS_ERR_INVALID_ARG, "bus options: connect_timeout_ms must be > 0 (got %d)",
                       o->connect_timeout_ms);
    if (o->max_reconnect < -1)
        return ms__err(MS_ERR_INVALID_ARG, "bus options: max_reconnect must be >= -1 (got %d)",
                       o->max_reconnect);
    if (o->reconnect_wait_ms < 0)
        return ms__err(MS_ERR_INVALID_ARG, "bus options: reconnect_wait_ms must be >= 0 (got %d)",
                       o->reconnect_wait_ms);
    if (o->pending_msgs_limit <= 0 || o->pending_bytes_limit <= 0)
        return ms__err(MS_ERR_INVALID_ARG,
                       "bus options: pending_msgs_limit and pending_bytes_limit must be > 0");
    if (o->publish_timeout_ms < 0)
        return ms__err(MS_ERR_INVALID_ARG, "bus options: publish_timeout_ms must be >= 0 (got %d)",
                       o->publish_timeout_ms);
    if (o->inproc_max_payload == 0)
        return ms__err(MS_ERR_INVALID_ARG, "bus options: inproc_max_payload must be > 0");
    if (o->inproc_workers < 0)
        return ms__err(MS_ERR_INVALID_ARG, "bus options: inproc_workers must be >= 0 (got %d)",
                       o->inproc_workers);
    if ((o->user == NULL) != (o->password == NULL))
        return ms__err(MS_ERR_INVALID_ARG, "bus options: user and password go together");
    return MS_OK;
}

/* Pick the transport from the URL scheme (of the first URL in a list). */
static ms_status select_transport(const char *url, const ms__transport **out)
{
    if (strncmp(url, "nats://", 7) == 0 || strncmp(url, "tls://", 6) == 0) {
        *out = &ms__nats_transport;
        return MS_OK;
    }
    if (strncmp(url, "inproc://", 9) == 0) {
        if (url[9] == '\0')
            return ms__err(MS_ERR_INVALID_ARG, "bus url '%s': inproc:// needs a name", url);
        if (strchr(url + 9, ',') != NULL)
            return ms__err(MS_ERR_INVALID_ARG, "bus url '%s': inproc takes one name, not a list",
                           url);
        *out = &ms__inproc_transport;
        return MS_OK;
    }
    return ms__err(MS_ERR_INVALID_ARG,
                   "bus url '%s': unknown scheme (use nats://host:port or inproc://name)", url);
}

static void make_inbox_prefix(ms_bus *bus)
{
    static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char rnd[22];
    char token[sizeof rnd + 1];

    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        /* getrandom cannot fail for 22 bytes once the pool is ready; fall
         * back to time and pid so the prefix is still unique enough. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long long seed = (unsigned long long)ts.tv_nsec ^
                                  ((unsigned long long)getpid() << 32) ^
                                  (unsigned long long)(uintptr_t)bus;
        for (size_t i = 0; i < sizeof rnd; i++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            rnd[i] = (unsigned char)(seed >> 56);
        }
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        token[i] = alphabet[rnd[i] % (sizeof alphabet - 1)];
    token[sizeof rnd] = '\0';
    snprintf(bus->inbox_prefix, sizeof bus->inbox_prefix, "_INBOX.%s", token);
}

ms_status ms_bus_connect(const ms_bus_options *opts, ms_bus **out)
{
    ms_bus *bus = NULL;
    ms_status s;
    const char *url;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_bus_connect: out is NULL");
    *out = NULL;
    if (opts == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_bus_connect: opts is NULL");
    if ((s = check_options(opts)) != MS_OK)
        return s;
    url = opts->url;
    if (url == NULL || url[0] == '\0')
        url = getenv("NATS_URL");
    if (url == NULL || url[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "ms_bus_connect: no URL given and NATS_URL is not set "
                                           "(use nats://host:port or inproc://name)");

    bus = ms__calloc(1, sizeof *bus);
    if (bus == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_bus_connect: allocating the bus");
    if (pthread_mutex_init(&bus->mu, NULL) != 0) {
        ms__free(bus);
        return ms__err(MS_ERR_INTERNAL, "ms_bus_connect: pthread_mutex_init failed");
    }
    bus->opts = *opts;
    bus->opts.url = NULL;
    atomic_init(&bus->closed, false);
    atomic_init(&bus->draining, false);
    atomic_init(&bus->inbox_seq, 0);
    if ((s = select_transport(url, &bus->ops)) != MS_OK)
        goto fail;
    bus->url = ms__strdup(url);
    if (bus->url == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "ms_bus_connect: copying the URL");
        goto fail;
    }
    bus->opts.url = bus->url;
    {
        const char **slots[] = {
            &bus->opts.name,     &bus->opts.user,       &bus->opts.password,
            &bus->opts.token,    &bus->opts.creds_file, &bus->opts.tls_ca,
            &bus->opts.tls_cert, &bus->opts.tls_key,    &bus->opts.tls_hostname};
        for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
            if ((s = own_string(bus, i, slots[i])) != MS_OK)
                goto fail;
    }
    make_inbox_prefix(bus);
    if ((s = bus->ops->connect(bus, bus->url)) != MS_OK)
        goto fail;
    ms_log_kv(MS_LOG_DEBUG, "bus", "connected", "url", bus->url, "transport", bus->ops->scheme,
              NULL);
    *out = bus;
    return MS_OK;

fail:
    /* connect failed before the transport owned anything: free our part. */
    for (size_t i = 0; i < sizeof bus->strings / sizeof bus->strings[0]; i++)
        ms__free(bus->strings[i]);
    ms__free(bus->url);
    pthread_mutex_destroy(&bus->mu);
    ms__free(bus);
    return s;
}

ms_status ms_bus_connect_url(const char *url, ms_bus **out)
{
    ms_bus_options o;
    ms_bus_options_init(&o);
    o.url = url;
    return ms_bus_connect(&o, out);
}

const char *ms_bus_transport(const ms_bus *bus)
{
    return bus ? bus->ops->scheme : NULL;
}

size_t ms_bus_max_payload(const ms_bus *bus)
{
    return bus ? bus->ops->max_payload(bus) : 0;
}

bool ms_bus_is_connected(const ms_bus *bus)
{
    return bus != NULL && !atomic_load(&bus->closed) && bus->ops->is_connected(bus);
}

/*
 * The subject this thread last published on and found valid: a thread that
 * publishes on one subject over and over (the common case) compares it
 * instead of validating it again. Subjects longer than this are validated
 * every time. Each thread has its own, so nothing is shared.
 */
#define VALID_CACHE 128
static _Thread_local char tl_valid_subject[VALID_CACHE];

static ms_status validate_subject(const char *subject)
{
    ms_status s;
    size_t len;

    if (tl_valid_subject[0] != '\0' && strcmp(subject, tl_valid_subject) == 0)
        return MS_OK;
    if ((s = ms_subject_validate(subject)) != MS_OK)
        return s;
    if ((len = strlen(subject)) < VALID_CACHE)
        memcpy(tl_valid_subject, subject, len + 1);
    return MS_OK;
}

/* Checks shared by every publish; `what` names the call in errors. */
static ms_status check_publish(ms_bus *bus, const char *subject, const char *reply,
                               const void *data, size_t len, const char *what)
{
    ms_status s;
    size_t max;

    if (bus == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: bus is NULL", what);
    if (subject == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: subject is NULL", what);
    if (data == NULL && len > 0)
        return ms__err(MS_ERR_INVALID_ARG, "%s: data is NULL but len is %zu", what, len);
    if (atomic_load_explicit(&bus->closed, memory_order_relaxed))
        return ms__err(MS_ERR_CLOSED, "%s on '%s': the bus is closed", what, subject);
    if ((s = validate_subject(subject)) != MS_OK)
        return ms__err_wrap(s, "%s", what);
    if (reply != NULL && (s = ms_subject_validate(reply)) != MS_OK)
        return ms__err_wrap(s, "%s: reply subject", what);
    max = bus->ops->max_payload(bus);
    if (len > max)
        return ms__err(MS_ERR_TOO_LARGE,
                       "%s on '%s': payload of %zu bytes is over the max_payload of %zu bytes",
                       what, subject, len, max);
    return MS_OK;
}

ms_status ms_bus_publish(ms_bus *bus, const char *subject, const void *data, size_t len)
{
    ms_status s = check_publish(bus, subject, NULL, data, len, "publish");
    if (s != MS_OK)
        return s;
    return bus->ops->publish(bus, subject, NULL, data, len, NULL);
}

ms_status ms_bus_publish_reply(ms_bus *bus, const char *subject, const char *reply,
                               const void *data, size_t len)
{
    ms_status s = check_publish(bus, subject, reply, data, len, "publish");
    if (s != MS_OK)
        return s;
    return bus->ops->publish(bus, subject, reply, data, len, NULL);
}

ms_status ms_bus_publish_msg(ms_bus *bus, ms_message *msg)
{
    ms_status s;

    if (msg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "publish: message is NULL");
    s = check_publish(bus, ms_message_subject(msg), ms_message_reply(msg), ms_message_data(msg),
                      ms_message_len(msg), "publish");
    if (s != MS_OK)
        return s;
    return bus->ops->publish(bus, ms_message_subject(msg), ms_message_reply(msg),
                             ms_message_data(msg), ms_message_len(msg), msg);
}

/* Publish a reply through the transport's urgent path when it has one. */
static ms_status send_reply(ms_bus *bus, const char *to, const void *data, size_t len,
                            ms_message *msg)
{
    ms_status s = check_publish(bus, to, NULL, data, len, "respond");
    if (s != MS_OK)
        return s;
    if (bus->ops->respond != NULL)
        return bus->ops->respond(bus, to, NULL, data, len, msg);
    return bus->ops->publish(bus, to, NULL, data, len, msg);
}

ms_status ms_bus_respond(ms_bus *bus, const ms_message *request, const void *data, size_t len)
{
    const char *reply;

    if (request == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "respond: request is NULL");
    reply = ms_message_reply(request);
    if (reply == NULL)
        return ms__err(MS_ERR_STATE, "respond: the message on '%s' has no reply subject",
                       ms_message_subject(request));
    return send_reply(bus, reply, data, len, NULL);
}

/* Copy the metadata and headers of src onto the writable message dst. */
static ms_status copy_meta(const ms_message *src, ms_message *dst)
{
    ms_status s = MS_OK;
    const char *v;

    if ((v = ms_message_id(src)) != NULL && (s = ms_message_set_id(dst, v)) != MS_OK)
        return s;
    if ((v = ms_message_source(src)) != NULL && (s = ms_message_set_source(dst, v)) != MS_OK)
        return s;
    if ((v = ms_message_type_name(src)) != NULL && (s = ms_message_set_type_name(dst, v)) != MS_OK)
        return s;
    if ((v = ms_message_correlation_id(src)) != NULL &&
        (s = ms_message_set_correlation_id(dst, v)) != MS_OK)
        return s;
    if ((v = ms_message_timestamp(src)) != NULL && (s = ms_message_set_timestamp(dst, v)) != MS_OK)
        return s;
    if ((v = ms_message_traceparent(src)) != NULL &&
        (s = ms_message_set_traceparent(dst, v)) != MS_OK)
        return s;
    for (size_t i = 0; i < ms_message_header_count(src); i++) {
        const char *k, *val;
        if ((s = ms_message_header_at(src, i, &k, &val)) != MS_OK)
            return s;
        if ((s = ms_message_add_header(dst, k, val)) != MS_OK)
            return s;
    }
    return MS_OK;
}

ms_status ms_bus_respond_msg(ms_bus *bus, const ms_message *request, ms_message *reply)
{
    const char *to;
    ms_message *out = NULL;
    ms_status s;

    if (request == NULL || reply == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "respond: %s is NULL", request ? "reply" : "request");
    to = ms_message_reply(request);
    if (to == NULL)
        return ms__err(MS_ERR_STATE, "respond: the message on '%s' has no reply subject",
                       ms_message_subject(request));
    /* The reply travels on the request's inbox: send a copy addressed there
     * so the caller's message keeps its own subject. */
    if ((s = ms_message_create(to, ms_message_data(reply), ms_message_len(reply), &out)) != MS_OK)
        goto cleanup;
    if ((s = copy_meta(reply, out)) != MS_OK)
        goto cleanup;
    if (ms_message_correlation_id(out) == NULL && ms_message_id(request) != NULL &&
        (s = ms_message_set_correlation_id(out, ms_message_id(request))) != MS_OK)
        goto cleanup;
    s = send_reply(bus, to, ms_message_data(out), ms_message_len(out), out);

cleanup:
    ms_message_unref(out);
    return s;
}

ms_status ms_bus_subscribe(ms_bus *bus, const char *pattern, const char *queue,
                           ms_msg_handler handler, void *closure, ms_subscription **out)
{
    ms_subscription *sub = NULL;
    ms_status s;

    if (out != NULL)
        *out = NULL;
    if (bus == NULL || pattern == NULL || handler == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "subscribe: %s is NULL",
                       bus == NULL       ? "bus"
                       : pattern == NULL ? "pattern"
                                         : "handler");
    if (atomic_load(&bus->closed) || atomic_load(&bus->draining))
        return ms__err(MS_ERR_CLOSED, "subscribe to '%s': the bus is %s", pattern,
                       atomic_load(&bus->closed) ? "closed" : "draining");
    if ((s = ms_subject_validate_pattern(pattern)) != MS_OK)
        return ms__err_wrap(s, "subscribe");
    /* A queue group name is one token of subject characters. */
    if (queue != NULL && (queue[0] == '\0' || strpbrk(queue, " \t\r\n.*>") != NULL))
        return ms__err(MS_ERR_INVALID_SUBJECT,
                       "subscribe to '%s': invalid queue group name '%s' (one token, no "
                       "whitespace, '.', '*' or '>')",
                       pattern, queue);

    sub = ms__calloc(1, sizeof *sub);
    if (sub == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "subscribe to '%s'", pattern);
    sub->bus = bus;
    sub->handler = handler;
    sub->closure = closure;
    atomic_init(&sub->delivered, 0);
    atomic_init(&sub->dropped, 0);
    sub->subject = ms__strdup(pattern);
    sub->queue = queue ? ms__strdup(queue) : NULL;
    if (sub->subject == NULL || (queue != NULL && sub->queue == NULL)) {
        s = ms__err(MS_ERR_NO_MEMORY, "subscribe to '%s'", pattern);
        goto fail;
    }
    /* Linked before the transport starts delivery, so destroy always finds it. */
    pthread_mutex_lock(&bus->mu);
    sub->next = bus->subs;
    if (bus->subs)
        bus->subs->prev = sub;
    bus->subs = sub;
    pthread_mutex_unlock(&bus->mu);

    if ((s = bus->ops->subscribe(bus, sub)) != MS_OK) {
        pthread_mutex_lock(&bus->mu);
        if (sub->prev)
            sub->prev->next = sub->next;
        else
            bus->subs = sub->next;
        if (sub->next)
            sub->next->prev = sub->prev;
        pthread_mutex_unlock(&bus->mu);
        goto fail;
    }
    if (out != NULL)
        *out = sub;
    return MS_OK;

fail:
    ms__free(sub->queue);
    ms__free(sub->subject);
    ms__free(sub);
    return s;
}

/* Unlink sub from its bus; false when it was not linked (already gone). */
static bool unlink_sub(ms_bus *bus, ms_subscription *sub)
{
    bool found = false;

    pthread_mutex_lock(&bus->mu);
    for (ms_subscription *it = bus->subs; it != NULL; it = it->next) {
        if (it == sub) {
            found = true;
            break;
        }
    }
    if (found) {
        if (sub->prev)
            sub->prev->next = sub->next;
        else
            bus->subs = sub->next;
        if (sub->next)
            sub->next->prev = sub->prev;
        sub->prev = sub->next = NULL;
    }
    pthread_mutex_unlock(&bus->mu);
    return found;
}

static void free_sub(ms_subscription *sub)
{
    ms__free(sub->queue);
    ms__free(sub->subject);
    ms__free(sub);
}

ms_status ms_subscription_unsubscribe(ms_subscription *sub)
{
    ms_bus *bus;
    ms_status s;

    if (sub == NULL)
        return MS_OK;
    bus = sub->bus;
    if (!unlink_sub(bus, sub))
        return ms__err(MS_ERR_STATE, "unsubscribe: subscription is not live on this bus");
    s = bus->ops->unsubscribe(bus, sub);
    free_sub(sub);
    return s;
}

const char *ms_subscription_subject(const ms_subscription *sub)
{
    return sub ? sub->subject : NULL;
}

const char *ms_subscription_queue(const ms_subscription *sub)
{
    return sub ? sub->queue : NULL;
}

uint64_t ms_subscription_delivered(const ms_subscription *sub)
{
    return sub ? atomic_load(&sub->delivered) : 0;
}

uint64_t ms_subscription_dropped(const ms_subscription *sub)
{
    return sub ? atomic_load(&sub->dropped) : 0;
}

void ms__bus_deliver(ms_subscription *sub, const ms_message *msg)
{
    atomic_fetch_add_explicit(&sub->delivered, 1, memory_order_relaxed);
    sub->handler(sub->bus, sub, msg, sub->closure);
}

void ms__bus_event(ms_bus *bus, ms_bus_event ev, const char *detail)
{
    if (bus->opts.on_event != NULL)
        bus->opts.on_event(bus, ev, detail ? detail : "", bus->opts.event_closure);
}

static ms_status check_timeout(int timeout_ms, const char *what)
{
    if (timeout_ms < 0)
        return ms__err(MS_ERR_INVALID_ARG, "%s: timeout_ms must be >= 0 (got %d)", what,
                       timeout_ms);
    return MS_OK;
}

ms_status ms_bus_request(ms_bus *bus, const char *subject, const void *data, size_t len,
                         int timeout_ms, ms_message **reply)
{
    ms_status s;

    if (reply == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "request: reply is NULL");
    *reply = NULL;
    if ((s = check_publish(bus, subject, NULL, data, len, "request")) != MS_OK)
        return s;
    if ((s = check_timeout(timeout_ms, "request")) != MS_OK)
        return s;
    return bus->ops->request(bus, subject, data, len, NULL, timeout_ms, reply);
}

ms_status ms_bus_request_msg(ms_bus *bus, ms_message *msg, int timeout_ms, ms_message **reply)
{
    ms_status s;

    if (reply == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "request: reply is NULL");
    *reply = NULL;
    if (msg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "request: message is NULL");
    s = check_publish(bus, ms_message_subject(msg), NULL, ms_message_data(msg), ms_message_len(msg),
                      "request");
    if (s != MS_OK)
        return s;
    if ((s = check_timeout(timeout_ms, "request")) != MS_OK)
        return s;
    return bus->ops->request(bus, ms_message_subject(msg), ms_message_data(msg),
                             ms_message_len(msg), msg, timeout_ms, reply);
}

ms_status ms_bus_new_inbox(ms_bus *bus, char **out)
{
    char buf[96];
    uint64_t n;

    if (bus == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "new_inbox: %s is NULL", bus ? "out" : "bus");
    n = atomic_fetch_add(&bus->inbox_seq, 1) + 1;
    snprintf(buf, sizeof buf, "%s.%llu", bus->inbox_prefix, (unsigned long long)n);
    *out = ms__strdup(buf);
    if (*out == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "new_inbox");
    return MS_OK;
}

ms_status ms_bus_flush(ms_bus *bus, int timeout_ms)
{
    ms_status s;

    if (bus == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "flush: bus is NULL");
    if ((s = check_timeout(timeout_ms, "flush")) != MS_OK)
        return s;
    if (atomic_load(&bus->closed))
        return ms__err(MS_ERR_CLOSED, "flush: the bus is closed");
    return bus->ops->flush(bus, timeout_ms);
}

ms_status ms_bus_drain(ms_bus *bus, int timeout_ms)
{
    ms_status s;

    if (bus == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "drain: bus is NULL");
    if ((s = check_timeout(timeout_ms, "drain")) != MS_OK)
        return s;
    if (atomic_load(&bus->closed) || atomic_exchange(&bus->draining, true))
        return ms__err(MS_ERR_CLOSED, "drain: the bus is already %s",
                       atomic_load(&bus->closed) ? "closed" : "draining");
    s = bus->ops->drain(bus, timeout_ms);
    atomic_store(&bus->closed, true);
    return s;
}

void ms_bus_close(ms_bus *bus)
{
    if (bus == NULL)
        return;
    atomic_store(&bus->closed, true);
    bus->ops->close(bus);
}

void ms_bus_destroy(ms_bus *bus)
{
    ms_subscription *sub;

    if (bus == NULL)
        return;
    ms_bus_close(bus);
    /* After close no handler runs: release what the user did not. */
    while ((sub = bus->subs) != NULL) {
        unlink_sub(bus, sub);
        bus->ops->unsubscribe(bus, sub);
        free_sub(sub);
    }
    bus->ops->destroy(bus);
    for (size_t i = 0; i < sizeof bus->strings / sizeof bus->strings[0]; i++)
        ms__free(bus->strings[i]);
    ms__free(bus->url);
    pthread_mutex_destroy(&bus->mu);
    ms__free(bus);
}
