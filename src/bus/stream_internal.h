/*
 * stream_internal.h - what stream.c (the API and the in-process fallback)
 * and nats_stream.c (JetStream) share (internal).
 */
#ifndef MS_BUS_STREAM_INTERNAL_H
#define MS_BUS_STREAM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "mainstack/stream.h"

typedef struct inproc_slot {
    ms_message *m;  /* one reference */
    uint64_t count; /* deliveries so far */
} inproc_slot;

struct ms_consumer {
    ms_bus *bus; /* borrowed */
    bool nats;
    ms_consumer_options opts;
    atomic_int outstanding; /* deliveries not yet freed */
    char durable[72];

    /* NATS: a pull subscription bound to the durable consumer, and the
     * messages of the last fetch not yet handed out. */
    void *js;  /* jsCtx * */
    void *sub; /* natsSubscription * */
    void **fetched; /* natsMsg *[] */
    size_t nfetched, next_fetched;

    /* inproc: queue subscriptions on the stream's subjects feeding a
     * bounded ring. */
    ms_subscription **subs;
    size_t nsubs;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    inproc_slot *ring;
    size_t cap, head, len;
    bool closed;
};

struct ms_delivery {
    ms_consumer *c;
    ms_message *m; /* one reference */
    void *nm;      /* NATS: the natsMsg behind m (alive as long as m) */
    uint64_t count;
    bool acked;
};

/* Limits of names (stream, durable): [A-Za-z0-9_-]{1,64}. */
ms_status ms__stream_check_name(const char *what, const char *name);

/* The NATS side (nats_stream.c). Arguments were checked by stream.c. */
ms_status ms__js_ensure(ms_bus *bus, const ms_stream_config *cfg);
ms_status ms__js_publish(ms_bus *bus, ms_message *msg, int timeout_ms, bool *duplicate);
ms_status ms__js_open(ms_consumer *c, const ms_stream_config *cfg);
ms_status ms__js_next(ms_consumer *c, int timeout_ms, ms_delivery **out);
void ms__js_close(ms_consumer *c);
/* Unsubscribe the pull subscription: a fetch waiting on it returns. */
void ms__js_interrupt(ms_consumer *c);
ms_status ms__js_ack(ms_delivery *d);
ms_status ms__js_nak(ms_delivery *d, int delay_ms);
ms_status ms__js_progress(ms_delivery *d);

#endif
