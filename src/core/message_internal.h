/*
 * message_internal.h - what transports need of ms_message beyond the public
 * API (internal).
 */
#ifndef MS_CORE_MESSAGE_INTERNAL_H
#define MS_CORE_MESSAGE_INTERNAL_H

#include <stdbool.h>

#include "mainstack/message.h"

/*
 * Make a message whose subject, reply and data are borrowed from `backing`
 * (a received natsMsg, say) instead of copied; release(backing) runs when the
 * last reference goes. No validation: the transport vouches for the input.
 * The message is writable until frozen, so the transport can set metadata
 * from headers. On failure release(backing) is called, so ownership of
 * backing always passes to this call. MS_ERR_NO_MEMORY.
 */
ms_status ms__message_wrap(const char *subject, const char *reply, const void *data, size_t len,
                           void *backing, void (*release)(void *), ms_message **out);

/* ms_message_create for a caller that has already validated subject (the
 * bus does, before any transport runs): skips the second validation on the
 * publish hot path. MS_ERR_NO_MEMORY. */
ms_status ms__message_create_valid(const char *subject, const void *data, size_t len,
                                   ms_message **out);

/* Make m, of which the caller holds the only reference, a fresh message of
 * subject (valid) and a copy of data, as ms__message_create_valid would,
 * reusing its block instead of allocating one. False, with m untouched,
 * when it cannot be: another reference exists, m wraps a transport's
 * object, or its block is too small. */
bool ms__message_reuse(ms_message *m, const char *subject, const void *data, size_t len);
/* True when the caller's reference to m is its only one and m owns its
 * block (so ms__message_reuse may take it, size permitting). */
bool ms__message_exclusive(const ms_message *m);

/* Mark read-only (published, delivered). Idempotent. */
void ms__message_freeze(ms_message *m);

/* True when the message carries any metadata or headers (so a transport
 * must send it with headers). */
int ms__message_has_headers(const ms_message *m);

/* Set a header received from the wire: Ms-* and traceparent keys fill the
 * metadata (names matched case-insensitively, so "Traceparent" works too;
 * a repeated one replaces the earlier value; an unknown Ms-Type becomes
 * MS_MSG_OTHER with its raw name kept), any other key is added as a
 * free-form header. Values are copied, not format-checked. MS_ERR_NO_MEMORY,
 * MS_ERR_STATE, MS_ERR_INVALID_ARG (NULL, a key or value a setter would
 * refuse, more than MS_HEADER_MAX_COUNT headers, a value over
 * MS_HEADER_VALUE_MAX bytes: the transport may drop that header). */
ms_status ms__message_set_wire_header(ms_message *m, const char *key, const char *value);

/* Visit every header as it goes on the wire (metadata first, then the free
 * form ones in order). Stops and returns the first non-MS_OK status of fn. */
typedef ms_status (*ms__header_fn)(const char *key, const char *value, void *closure);
ms_status ms__message_each_wire_header(const ms_message *m, ms__header_fn fn, void *closure);

/* --- helpers shared inside core (id.c) ------------------------------------ */

/* 64 random bits from a per-thread generator seeded by getrandom() (reseeded
 * after fork). Fast, not for secrets. */
uint64_t ms__random_u64(void);
/* True for an RFC 3339 date-time ("2026-11-25T10:43:46.123456Z", offsets allowed). */
bool ms__timestamp_valid(const char *s);
/* True for a valid version-00 W3C traceparent with non-zero ids. */
bool ms__traceparent_valid(const char *s);

#endif
