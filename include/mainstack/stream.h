/*
 * stream.h - durable event streams: events that must not be missed.
 *
 * A plain subscription sees only what is published while it is connected.
 * The framework's control events (mainstack.interface.changed.>,
 * mainstack.dependency.updated.>) must reach an agent that was down when
 * they were sent, and each must be decided once. On NATS this module keeps
 * them in a JetStream stream and gives each reader a durable pull consumer:
 * the server remembers what the consumer acknowledged, so a reader that
 * comes back resumes where it stopped, and two readers bound to the same
 * durable consumer share its messages (each message goes to one of them).
 * A message not acknowledged within ack_wait is delivered again, so a
 * reader acknowledges only after it recorded what it did with the message
 * (and recognises a redelivery by the message id: see registry.h).
 *
 * In-process (inproc://) there is no server to keep anything: the stream is
 * best effort. ms_stream_publish is a plain publish, a consumer is a queue
 * subscription (group stream-<durable>) with a bounded buffer, messages
 * published while no consumer exists are not kept, and a message freed
 * without an acknowledgement is not redelivered (ms_delivery_nak requeues
 * it). Documented in docs/stream.md.
 *
 * Threading: ms_stream_* calls from any thread. One ms_consumer is read by
 * one thread at a time; deliveries may be acknowledged from any thread, and
 * must all be freed before the consumer is closed.
 */
#ifndef MAINSTACK_STREAM_H
#define MAINSTACK_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mainstack/bus.h"
#include "mainstack/message.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The stream of the framework's control events. */
#define MS_CONTROL_STREAM "MAINSTACK_CONTROL"
/* Its subjects (NULL-terminated). */
extern const char *const ms_control_subjects[];

typedef struct ms_stream_config {
    const char *name;            /* [A-Za-z0-9_-]+, at most 64 bytes */
    const char *const *subjects; /* NULL-terminated patterns; at least one */
    int64_t max_age_ms;          /* messages older than this are removed; 0: kept */
    int64_t max_msgs;            /* oldest removed past this count; 0: no limit */
    int64_t duplicate_window_ms; /* a message id seen within it is stored once; 0: 2 min */
    bool memory;                 /* memory storage instead of files */
} ms_stream_config;

/* The control stream: MS_CONTROL_STREAM on ms_control_subjects, file
 * storage, kept 7 days, duplicate window 2 minutes. */
void ms_stream_config_init(ms_stream_config *cfg);

/* Create the stream, or bring an existing one's subjects and limits to cfg.
 * Idempotent. MS_ERR_UNSUPPORTED (the server has no JetStream: the detail
 * says to start nats-server with -js), MS_ERR_INVALID_ARG (a bad name or
 * subject, named), MS_ERR_TIMEOUT, MS_ERR_CONNECTION, MS_ERR_INTERNAL (the
 * server refused the config: its reason). inproc: checks cfg only. */
ms_status ms_stream_ensure(ms_bus *bus, const ms_stream_config *cfg);

/* Publish msg (borrowed; frozen) to its subject and wait up to timeout_ms
 * for the stream to store it. The message id is the deduplication key: a
 * repeat within the duplicate window is stored once (*duplicate, may be
 * NULL, tells). MS_ERR_INVALID_ARG (no id or subject), MS_ERR_NOT_FOUND (no
 * stream takes the subject), MS_ERR_TIMEOUT, MS_ERR_UNSUPPORTED,
 * MS_ERR_TOO_LARGE, MS_ERR_CONNECTION. inproc: a plain publish. */
ms_status ms_stream_publish(ms_bus *bus, ms_message *msg, int timeout_ms, bool *duplicate);

typedef struct ms_consumer_options {
    const char *durable;  /* required: [A-Za-z0-9_-]+; readers sharing it share the messages */
    int ack_wait_ms;      /* unacknowledged for this long: delivered again (default 30000) */
    int max_deliver;      /* deliveries of one message at most; 0: no limit */
    int max_ack_pending;  /* outstanding unacknowledged messages at most (default 256) */
    size_t batch;         /* messages asked of the server at once (default 16) */
} ms_consumer_options;

void ms_consumer_options_init(ms_consumer_options *o);

typedef struct ms_consumer ms_consumer;
typedef struct ms_delivery ms_delivery;

/* Open (creating when missing) the durable consumer o->durable on stream
 * cfg (which must exist: ms_stream_ensure), receiving every subject of the
 * stream from its first message on. *out is the caller's
 * (ms_consumer_close). MS_ERR_INVALID_ARG, MS_ERR_NOT_FOUND (no such stream),
 * MS_ERR_UNSUPPORTED, MS_ERR_INTERNAL (the server refused: an existing
 * consumer of that name with another config, say), MS_ERR_TIMEOUT. */
ms_status ms_consumer_open(ms_bus *bus, const ms_stream_config *cfg,
                           const ms_consumer_options *o, ms_consumer **out);

/* The next message, waiting up to timeout_ms. *out is the caller's: ack,
 * nak or progress it, then ms_delivery_free. MS_ERR_TIMEOUT (nothing came),
 * MS_ERR_CLOSED (the consumer or bus was closed), MS_ERR_CONNECTION. */
ms_status ms_consumer_next(ms_consumer *c, int timeout_ms, ms_delivery **out);

/* Make a waiting (or any later) ms_consumer_next return MS_ERR_CLOSED at
 * once: the way to stop a reader thread before closing. Any thread;
 * NULL-safe; deliveries already handed out can still be acknowledged. */
void ms_consumer_interrupt(ms_consumer *c);

/* Close the consumer; the server keeps the durable state. NULL-safe. */
void ms_consumer_close(ms_consumer *c);

/* The message (borrowed from d). */
const ms_message *ms_delivery_message(const ms_delivery *d);
/* How many times it was delivered, this one included (1 the first time). */
uint64_t ms_delivery_count(const ms_delivery *d);
/* Done with it: never delivered again. Waits for the server to confirm.
 * MS_ERR_STATE (already acknowledged), MS_ERR_TIMEOUT, MS_ERR_CONNECTION. */
ms_status ms_delivery_ack(ms_delivery *d);
/* Not done: deliver it again after delay_ms (0: at once). */
ms_status ms_delivery_nak(ms_delivery *d, int delay_ms);
/* Still working on it: restart its ack_wait clock. */
ms_status ms_delivery_progress(ms_delivery *d);
/* Free (NULL-safe). Unacknowledged, it is delivered again after ack_wait. */
void ms_delivery_free(ms_delivery *d);

#ifdef __cplusplus
}
#endif
#endif
