/*
 * bus.h - the message bus: one interface, two transports chosen by URL.
 *
 *   nats://host:port[,nats://host2:port2...]  NATS through libnats; crosses
 *                                             processes and machines.
 *   inproc://name                             one process, no broker; every
 *                                             bus connected to the same name
 *                                             shares subjects.
 *
 * Both give the same semantics: subjects with wildcards, queue groups
 * (each message to exactly one member), request/reply with timeouts and
 * "no responders", headers, per-publisher ordering, flush, drain, close.
 *
 * Threading contract:
 *  - Every ms_bus_* function is thread-safe and may be called from any
 *    thread, including from inside a message handler (except ms_bus_destroy
 *    and ms_bus_drain/ms_bus_close, which must not be called from a handler).
 *  - Handlers run on the bus's delivery threads, never on the publisher's
 *    thread: libnats' global delivery pool for NATS, the inproc broker's
 *    worker pool for inproc. One subscription's handler is never run
 *    concurrently with itself and sees its messages in publish order (per
 *    publisher). Different subscriptions may run in parallel.
 *  - ms_subscription_unsubscribe returns only when the handler is no longer
 *    running and will not run again (unless called from that handler, where
 *    it returns at once and the current call is the last).
 *
 * Ownership: the bus owns its subscriptions; ms_subscription_unsubscribe
 * frees one, ms_bus_destroy frees all that are left. Handlers borrow the
 * message: ms_message_ref() it to keep it past the handler's return.
 *
 * Flow control: NATS subscriptions have pending limits (default
 * MS_BUS_DEFAULT_PENDING_MSGS / _BYTES); past them libnats drops messages
 * (a "slow consumer"), which mainstack counts (ms_subscription_dropped) and
 * logs. Inproc never drops: each subscription has a bounded queue and a
 * publisher that finds it full blocks up to publish_timeout_ms, then gets
 * MS_ERR_FULL naming the subscription; other matching subscriptions still
 * received the message.
 */
#ifndef MAINSTACK_BUS_H
#define MAINSTACK_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mainstack/message.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_bus ms_bus;
typedef struct ms_subscription ms_subscription;

#define MS_BUS_DEFAULT_PENDING_MSGS 65536
#define MS_BUS_DEFAULT_PENDING_BYTES (64 * 1024 * 1024)
#define MS_BUS_DEFAULT_INPROC_MAX_PAYLOAD (8 * 1024 * 1024)

typedef enum ms_bus_event {
    MS_BUS_DISCONNECTED,
    MS_BUS_RECONNECTED, /* subscriptions were re-established */
    MS_BUS_CLOSED,
    MS_BUS_SLOW_CONSUMER, /* a subscription dropped messages (NATS only) */
    MS_BUS_ASYNC_ERROR
} ms_bus_event;

/* Connection events, called on a libnats thread; keep it short. */
typedef void (*ms_bus_event_cb)(ms_bus *bus, ms_bus_event ev, const char *detail,
                                void *closure);

typedef struct ms_bus_options {
    /* "nats://h:p[,nats://h2:p2...]" or "inproc://name". NULL: $NATS_URL, and
     * when that is unset too, MS_ERR_INVALID_ARG. */
    const char *url;
    const char *name;       /* connection name shown by the server */
    const char *user;       /* user/password authentication */
    const char *password;
    const char *token;      /* token authentication */
    const char *creds_file; /* NATS .creds file (JWT + nkey seed) */
    const char *tls_ca;     /* PEM file of trusted CAs; enables TLS */
    const char *tls_cert;   /* client certificate (PEM) */
    const char *tls_key;    /* client key (PEM) */
    const char *tls_hostname; /* expected server name, when not the URL host */
    bool tls_required;        /* require TLS even without tls_ca */

    int connect_timeout_ms;   /* default 2000 */
    int max_reconnect;        /* attempts after a disconnect; -1 forever; default 60 */
    int reconnect_wait_ms;    /* between attempts; default 250 */
    int reconnect_buffer_bytes; /* publishes buffered while reconnecting; default 8 MiB */
    bool retry_on_failed_connect; /* keep trying in the background; default false */

    /* per-subscription limits (NATS pending limits, inproc queue capacity) */
    int pending_msgs_limit;  /* default MS_BUS_DEFAULT_PENDING_MSGS */
    int pending_bytes_limit; /* default MS_BUS_DEFAULT_PENDING_BYTES */
    /* inproc: how long a publisher waits on a full queue; default 5000 */
    int publish_timeout_ms;
    /* inproc: largest payload accepted; default MS_BUS_DEFAULT_INPROC_MAX_PAYLOAD */
    size_t inproc_max_payload;
    /* inproc: worker threads of the broker, set by the first bus that creates
     * it; 0 = number of online CPUs */
    int inproc_workers;

    ms_bus_event_cb on_event; /* optional */
    void *event_closure;
} ms_bus_options;

/* Fill opts with the defaults above (url NULL). */
void ms_bus_options_init(ms_bus_options *opts);

/*
 * Connect. opts is borrowed (strings are copied). *out is owned by the caller
 * and released with ms_bus_destroy().
 * Returns MS_OK, MS_ERR_INVALID_ARG (bad or missing URL, unknown scheme),
 * MS_ERR_CONNECTION (no server answered within connect_timeout_ms),
 * MS_ERR_AUTH, MS_ERR_IO (unreadable creds or TLS files), MS_ERR_NO_MEMORY.
 */
ms_status ms_bus_connect(const ms_bus_options *opts, ms_bus **out);
/* Connect with defaults to one URL (NULL: $NATS_URL). */
ms_status ms_bus_connect_url(const char *url, ms_bus **out);

/* The URL scheme in use: "nats" or "inproc". */
const char *ms_bus_transport(const ms_bus *bus);
/* The largest payload a publish may carry (the server's max_payload on NATS). */
size_t ms_bus_max_payload(const ms_bus *bus);
bool ms_bus_is_connected(const ms_bus *bus);

/*
 * Publish a plain message: data (len bytes, copied) on subject, with an
 * optional reply subject, and no metadata headers. The fast path.
 * Returns MS_OK, MS_ERR_INVALID_ARG, MS_ERR_INVALID_SUBJECT,
 * MS_ERR_TOO_LARGE (names the limit), MS_ERR_CLOSED, MS_ERR_FULL (inproc),
 * MS_ERR_CONNECTION.
 */
ms_status ms_bus_publish(ms_bus *bus, const char *subject, const void *data, size_t len);
ms_status ms_bus_publish_reply(ms_bus *bus, const char *subject, const char *reply,
                               const void *data, size_t len);
/* Publish a message with its metadata and headers. msg is borrowed; after the
 * call it is shared (read-only). Same statuses as ms_bus_publish. */
ms_status ms_bus_publish_msg(ms_bus *bus, ms_message *msg);

/* Reply to a received request (publishes on its reply subject).
 * MS_ERR_STATE when the request has no reply subject. */
ms_status ms_bus_respond(ms_bus *bus, const ms_message *request, const void *data,
                         size_t len);
/* Reply with a full message: its subject is replaced by the request's reply
 * subject and its correlation id set to the request's id when unset. */
ms_status ms_bus_respond_msg(ms_bus *bus, const ms_message *request, ms_message *reply);

/* The handler of a subscription. msg is borrowed. Runs on a delivery thread. */
typedef void (*ms_msg_handler)(ms_bus *bus, ms_subscription *sub, const ms_message *msg,
                               void *closure);

/*
 * Subscribe to pattern (wildcards allowed). queue: NULL, or a queue group
 * name: among subscriptions with the same subject and queue name, each
 * message goes to exactly one. *out (optional) is owned by the bus.
 * Returns MS_OK, MS_ERR_INVALID_ARG, MS_ERR_INVALID_SUBJECT (pattern or
 * queue name), MS_ERR_CLOSED, MS_ERR_NO_MEMORY, MS_ERR_CONNECTION.
 */
ms_status ms_bus_subscribe(ms_bus *bus, const char *pattern, const char *queue,
                           ms_msg_handler handler, void *closure, ms_subscription **out);

/* Stop delivery and free the subscription (see the threading contract).
 * NULL-safe. Returns MS_OK or MS_ERR_CONNECTION (the server could not be
 * told; the local subscription is freed all the same). */
ms_status ms_subscription_unsubscribe(ms_subscription *sub);
const char *ms_subscription_subject(const ms_subscription *sub);
const char *ms_subscription_queue(const ms_subscription *sub); /* NULL if none */
/* Messages delivered to the handler so far. */
uint64_t ms_subscription_delivered(const ms_subscription *sub);
/* Messages dropped by the transport (NATS slow consumer); 0 on inproc. */
uint64_t ms_subscription_dropped(const ms_subscription *sub);

/*
 * Request/reply: publish on subject with a fresh reply inbox and wait up to
 * timeout_ms for the first reply. *reply is owned by the caller (unref it).
 * Returns MS_OK, MS_ERR_TIMEOUT, MS_ERR_NO_RESPONDERS (nobody subscribed),
 * the publish statuses, MS_ERR_NO_MEMORY.
 */
ms_status ms_bus_request(ms_bus *bus, const char *subject, const void *data, size_t len,
                         int timeout_ms, ms_message **reply);
/* The same with a full message (its reply subject is replaced). */
ms_status ms_bus_request_msg(ms_bus *bus, ms_message *msg, int timeout_ms,
                             ms_message **reply);

/* A unique inbox subject for this bus: "_INBOX.<unique>". Caller frees with
 * free(). MS_ERR_NO_MEMORY. */
ms_status ms_bus_new_inbox(ms_bus *bus, char **out);

/*
 * Flush: returns when everything published before the call has been
 * processed by the server (NATS: a PING/PONG round trip) or delivered to
 * every matching handler (inproc). From inside a handler on inproc it only
 * waits for the server-side hand-off. MS_OK, MS_ERR_TIMEOUT, MS_ERR_CLOSED.
 */
ms_status ms_bus_flush(ms_bus *bus, int timeout_ms);

/*
 * Drain: stop intake on every subscription, let the handlers finish every
 * message already received, flush what was published, then close. Bounded
 * by timeout_ms: past it the bus is closed anyway and MS_ERR_TIMEOUT is
 * returned. After drain only ms_bus_destroy is useful.
 */
ms_status ms_bus_drain(ms_bus *bus, int timeout_ms);

/* Close now: pending messages not yet handed to handlers are discarded,
 * running handlers finish. Idempotent. */
void ms_bus_close(ms_bus *bus);

/* Close if needed and free the bus and its remaining subscriptions.
 * NULL-safe. Must not be called from a handler. */
void ms_bus_destroy(ms_bus *bus);

#ifdef __cplusplus
}
#endif
#endif
