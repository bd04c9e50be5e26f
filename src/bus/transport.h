/*
 * transport.h - the pluggable transport behind ms_bus (internal).
 *
 * bus.c does everything that is the same for every transport (argument and
 * subject checks, payload limits, the subscription list, closed state) and
 * then calls one of these function tables, one file per implementation:
 * nats_transport.c (libnats) and inproc_transport.c (same process). Every
 * function may assume its arguments were already checked by bus.c.
 */
#ifndef MS_BUS_TRANSPORT_H
#define MS_BUS_TRANSPORT_H

#include <pthread.h>
#include <stdatomic.h>

#include "mainstack/bus.h"

struct ms_subscription {
    ms_bus *bus;
    char *subject;
    char *queue; /* NULL when not in a queue group */
    ms_msg_handler handler;
    void *closure;
    void *impl; /* the transport's state for this subscription */
    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t dropped;
    struct ms_subscription *prev, *next; /* bus->subs, under bus->mu */
};

typedef struct ms__transport {
    const char *scheme; /* "nats", "inproc" */
    /* Connect using bus->opts (strings owned by the bus) to url (the whole
     * URL, possibly a comma-separated list); set bus->impl. */
    ms_status (*connect)(ms_bus *bus, const char *url);
    /* msg is NULL for a plain publish; otherwise subject/reply/data come from
     * msg and the metadata goes as headers. */
    ms_status (*publish)(ms_bus *bus, const char *subject, const char *reply,
                         const void *data, size_t len, ms_message *msg);
    /* Publish a reply to a request: the same as publish, but it must leave
     * at once (latency over batching). NULL: publish is used. */
    ms_status (*respond)(ms_bus *bus, const char *subject, const char *reply,
                         const void *data, size_t len, ms_message *msg);
    /* Start delivery to sub (set sub->impl). Each received message is handed
     * to ms__bus_deliver(sub, msg) on a delivery thread. */
    ms_status (*subscribe)(ms_bus *bus, ms_subscription *sub);
    /* Stop delivery and free sub->impl; when it returns the handler is not
     * running (unless the caller is that handler) and never runs again.
     * Also called after close (by ms_bus_destroy) for every subscription
     * the user left: then it only frees. */
    ms_status (*unsubscribe)(ms_bus *bus, ms_subscription *sub);
    ms_status (*request)(ms_bus *bus, const char *subject, const void *data, size_t len,
                         ms_message *msg, int timeout_ms, ms_message **reply);
    ms_status (*flush)(ms_bus *bus, int timeout_ms);
    /* Stop intake, let handlers finish what was received (they may still
     * publish: replies of accepted requests must go out), flush, close. */
    ms_status (*drain)(ms_bus *bus, int timeout_ms);
    /* Close the connection; afterwards no handler runs. Idempotent. */
    void (*close)(ms_bus *bus);
    /* Free bus->impl (after close; subscriptions were unsubscribed). */
    void (*destroy)(ms_bus *bus);
    size_t (*max_payload)(const ms_bus *bus);
    bool (*is_connected)(const ms_bus *bus);
} ms__transport;

extern const ms__transport ms__nats_transport;
extern const ms__transport ms__inproc_transport;

struct ms_bus {
    const ms__transport *ops;
    void *impl;
    ms_bus_options opts; /* string members point into owned copies below */
    char *url;
    char *strings[10];   /* owned copies of the option strings */
    pthread_mutex_t mu;  /* guards subs */
    ms_subscription *subs;
    atomic_bool closed;   /* no publish, no subscribe */
    atomic_bool draining; /* no new subscriptions; publishing still allowed */
    atomic_uint_fast64_t inbox_seq;
    char inbox_prefix[40]; /* "_INBOX.<random>" unique per bus */
};

/* Hand msg to sub's handler (counts it). Called by transports on a delivery
 * thread. msg stays owned by the caller. */
void ms__bus_deliver(ms_subscription *sub, const ms_message *msg);

/* Report a connection event to the user's callback, if any. */
void ms__bus_event(ms_bus *bus, ms_bus_event ev, const char *detail);

#endif
