/*
 * message.h - the refcounted mainstack message and its builders.
 *
 * A message is a subject, an optional reply subject, payload bytes (JSON by
 * convention) and metadata: id (UUIDv7, time-ordered), source component,
 * type, correlation id, RFC 3339 timestamp, W3C trace context and free-form
 * headers. On NATS the metadata travels as headers (Ms-Id, Ms-Source,
 * Ms-Type, Ms-Correlation-Id, Ms-Time, traceparent) so that any NATS client
 * can read and write mainstack messages.
 *
 * Ownership: a message is created with one reference owned by the caller.
 * ms_message_ref/ms_message_unref are thread-safe (atomic). A message may be
 * changed only while its creator holds the only reference; once it has been
 * shared (published, ref'd) it is read-only and every setter returns
 * MS_ERR_STATE. Read-only messages are safe to read from any thread.
 * Strings returned by getters are borrowed from the message.
 */
#ifndef MAINSTACK_MESSAGE_H
#define MAINSTACK_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_message ms_message;

typedef enum ms_msg_type {
    MS_MSG_NONE = 0, /* no Ms-Type: a plain NATS message */
    MS_MSG_CHANGE_NOTIFICATION,
    MS_MSG_INTERFACE_CHANGED,
    MS_MSG_DEPENDENCY_UPDATE,
    MS_MSG_REQUEST,
    MS_MSG_RESPONSE,
    MS_MSG_EVENT,
    MS_MSG_CONFIG_CHANGE,
    MS_MSG_HEALTH_CHECK,
    MS_MSG_COMMAND,
    MS_MSG_OTHER /* an Ms-Type this version does not know; see ms_message_type_name */
} ms_msg_type;

/* Header names used on the wire. */
#define MS_HDR_ID "Ms-Id"
#define MS_HDR_SOURCE "Ms-Source"
#define MS_HDR_TYPE "Ms-Type"
#define MS_HDR_CORRELATION_ID "Ms-Correlation-Id"
#define MS_HDR_TIME "Ms-Time"
#define MS_HDR_TRACEPARENT "traceparent"

/* Limits, checked by the builders and by the transports on receive. */
#define MS_SUBJECT_MAX 1024     /* bytes in a subject */
#define MS_HEADER_MAX_COUNT 128 /* headers on one message */
#define MS_HEADER_VALUE_MAX 4096

#define MS_ID_LEN 36          /* UUIDv7 text, without the NUL */
#define MS_TIMESTAMP_LEN 27   /* 2026-11-25T10:43:46.123456Z */
#define MS_TRACEPARENT_LEN 55 /* 00-<32 hex>-<16 hex>-01 */

/* "change_notification", ... ; "" for MS_MSG_NONE. */
const char *ms_msg_type_str(ms_msg_type t);
/* MS_ERR_PARSE when name is not a known type. */
ms_status ms_msg_type_parse(const char *name, ms_msg_type *out);

/*
 * Create a message on `subject` with a copy of `len` bytes of `data` (data may
 * be NULL when len is 0). The subject must be a valid publish subject (no
 * wildcards). The message gets no metadata; set what you need, or use a
 * builder below, which fills id, time and type.
 * Returns MS_OK, MS_ERR_INVALID_ARG, MS_ERR_INVALID_SUBJECT, MS_ERR_NO_MEMORY.
 */
ms_status ms_message_create(const char *subject, const void *data, size_t len,
                            ms_message **out);

/* Deep copy (a writable message with one reference). */
ms_status ms_message_clone(const ms_message *m, ms_message **out);

ms_message *ms_message_ref(ms_message *m);   /* returns m; NULL-safe */
void ms_message_unref(ms_message *m);        /* frees at zero; NULL-safe */

/* Getters. Strings are borrowed; NULL when absent (subject is never NULL). */
const char *ms_message_subject(const ms_message *m);
const char *ms_message_reply(const ms_message *m);
const void *ms_message_data(const ms_message *m);
size_t ms_message_len(const ms_message *m);
const char *ms_message_id(const ms_message *m);
const char *ms_message_source(const ms_message *m);
ms_msg_type ms_message_type(const ms_message *m);
const char *ms_message_type_name(const ms_message *m); /* raw Ms-Type, or NULL */
const char *ms_message_correlation_id(const ms_message *m);
const char *ms_message_timestamp(const ms_message *m);
const char *ms_message_traceparent(const ms_message *m);

/* Free-form headers (besides the metadata above, which is not listed here).
 * Keys are case-sensitive, as in NATS 2.2+ and libnats 3.x. */
const char *ms_message_header(const ms_message *m, const char *key); /* first value */
size_t ms_message_header_count(const ms_message *m);
/* i-th header; MS_ERR_NOT_FOUND past the end. */
ms_status ms_message_header_at(const ms_message *m, size_t i, const char **key,
                               const char **value);

/* Setters: copy their arguments. MS_ERR_STATE once the message is shared,
 * MS_ERR_INVALID_ARG for NULL/invalid values (CR/LF in a header, a key with
 * ':' or whitespace, a metadata header name used as a free-form key). */
ms_status ms_message_set_reply(ms_message *m, const char *reply);
ms_status ms_message_set_id(ms_message *m, const char *id);
ms_status ms_message_set_source(ms_message *m, const char *source);
ms_status ms_message_set_type(ms_message *m, ms_msg_type type);
ms_status ms_message_set_type_name(ms_message *m, const char *type_name);
ms_status ms_message_set_correlation_id(ms_message *m, const char *id);
ms_status ms_message_set_timestamp(ms_message *m, const char *rfc3339);
ms_status ms_message_set_traceparent(ms_message *m, const char *traceparent);
ms_status ms_message_set_header(ms_message *m, const char *key, const char *value);
ms_status ms_message_add_header(ms_message *m, const char *key, const char *value);
/* Replace the payload with a copy of data. */
ms_status ms_message_set_data(ms_message *m, const void *data, size_t len);

/* Parse the payload as JSON. *out is a new reference the caller decrefs.
 * MS_ERR_PARSE with "payload:line:column: what" in ms_last_error(). */
ms_status ms_message_json(const ms_message *m, json_t **out);

/* --- identifiers, time, trace context ------------------------------------ */

/* A new UUIDv7 (RFC 9562), strictly increasing within the process. */
void ms_id_new(char out[MS_ID_LEN + 1]);
/* Now as RFC 3339 UTC with microseconds. */
void ms_timestamp_now(char out[MS_TIMESTAMP_LEN + 1]);
/* A fresh traceparent (new trace id and span id, sampled). */
void ms_traceparent_new(char out[MS_TRACEPARENT_LEN + 1]);
/* A child of parent: same trace id, new span id. MS_ERR_PARSE if parent is
 * not a valid version-00 traceparent. */
ms_status ms_traceparent_child(const char *parent, char out[MS_TRACEPARENT_LEN + 1]);

/* --- builders -------------------------------------------------------------
 * Each makes a writable message with one reference: a new id, the current
 * timestamp, a new trace context, the type, the source (may be NULL) and the
 * payload the type documents. Subject NULL means the framework subject of
 * that type where there is one (shown below). Strings are copied; json
 * arguments are borrowed (not stolen). docs/messages.md lists every field.
 */

/* {"change_summary"}; subject required. */
ms_status ms_msg_change_notification(const char *subject, const char *source,
                                     const char *change_summary, ms_message **out);
/* {"interface_name","old_version","new_version","breaking","summary"};
 * default subject mainstack.interface.changed.<interface_name>. */
ms_status ms_msg_interface_changed(const char *subject, const char *source,
                                   const char *interface_name, const char *old_version,
                                   const char *new_version, bool breaking,
                                   const char *summary, ms_message **out);
/* {"name","from_version","to_version"};
 * default subject mainstack.dependency.updated.<name>. */
ms_status ms_msg_dependency_update(const char *subject, const char *source,
                                   const char *name, const char *from_version,
                                   const char *to_version, ms_message **out);
/* Payload is the given JSON (NULL: empty payload). Subject required. */
ms_status ms_msg_request(const char *subject, const char *source, const json_t *body,
                         ms_message **out);
/* A response to `request`: subject = its reply subject, correlation id = its
 * id, trace context = a child of its trace. MS_ERR_STATE when the request
 * has no reply subject. */
ms_status ms_msg_response(const ms_message *request, const char *source,
                          const json_t *body, ms_message **out);
/* An event; subject required (events.<domain>.<event> by convention). */
ms_status ms_msg_event(const char *subject, const char *source, const json_t *body,
                       ms_message **out);
/* {"component","config"}; default subject mainstack.config.<component>. */
ms_status ms_msg_config_change(const char *subject, const char *source,
                               const char *component, const json_t *config,
                               ms_message **out);
/* {"component"}; default subject mainstack.health.<component>. */
ms_status ms_msg_health_check(const char *subject, const char *source,
                              const char *component, ms_message **out);
/* {"command","args"}; subject required. args may be NULL. */
ms_status ms_msg_command(const char *subject, const char *source, const char *command,
                         const json_t *args, ms_message **out);

#ifdef __cplusplus
}
#endif
#endif
