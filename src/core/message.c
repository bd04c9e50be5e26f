/*
 * message.c - the refcounted ms_message, its wire headers and its builders.
 *
 * Layout: ms_message_create makes ONE allocation holding the struct, the
 * subject and a copy of the payload (plus a NUL after each), which is all the
 * inproc bus needs per message. Metadata strings, the reply subject and the
 * free-form headers are separate allocations made only when set. A message
 * wrapped around a received transport object (ms__message_wrap) borrows its
 * subject, reply and data from that object and releases it when freed.
 * Writable only while its one owner holds it (refcount 1, not frozen);
 * ms_message_ref and ms__message_freeze make it read-only for good, which is
 * what makes lock-free reading from many threads safe.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/message_internal.h"
#include "mainstack/json.h"
#include "mainstack/message.h"
#include "mainstack/subject.h"

/* Metadata slots, in the order they go on the wire. */
enum { META_ID, META_SOURCE, META_TYPE, META_CORRELATION, META_TIME, META_TRACE, META_COUNT };

static const char *const meta_names[META_COUNT] = {
    [META_ID] = MS_HDR_ID,     [META_SOURCE] = MS_HDR_SOURCE,
    [META_TYPE] = MS_HDR_TYPE, [META_CORRELATION] = MS_HDR_CORRELATION_ID,
    [META_TIME] = MS_HDR_TIME, [META_TRACE] = MS_HDR_TRACEPARENT,
};

static const char *const type_names[] = {
    [MS_MSG_NONE] = "",
    [MS_MSG_CHANGE_NOTIFICATION] = "change_notification",
    [MS_MSG_INTERFACE_CHANGED] = "interface_changed",
    [MS_MSG_DEPENDENCY_UPDATE] = "dependency_update",
    [MS_MSG_REQUEST] = "request",
    [MS_MSG_RESPONSE] = "response",
    [MS_MSG_EVENT] = "event",
    [MS_MSG_CONFIG_CHANGE] = "config_change",
    [MS_MSG_HEALTH_CHECK] = "health_check",
    [MS_MSG_COMMAND] = "command",
    [MS_MSG_OTHER] = "other",
};

/* One free-form header: key and value share one allocation ("key\0value\0"),
 * owned by the message, freed through key. */
typedef struct header {
    char *key;
    const char *value;
} header;

struct ms_message {
    atomic_uint refs;
    atomic_bool frozen;
    ms_msg_type type;
    const char *subject; /* into storage[] or borrowed from backing; never NULL */
    const char *reply;   /* NULL, reply_owned, or borrowed from backing */
    const void *data;    /* into storage[], data_owned, or borrowed from backing */
    size_t len;
    char *reply_owned;      /* owned */
    void *data_owned;       /* owned, after ms_message_set_data */
    char *meta[META_COUNT]; /* owned; meta[META_TYPE] only for MS_MSG_OTHER */
    header *headers;        /* owned array of nheaders entries */
    size_t nheaders, cap_headers;
    void *backing; /* taken by ms__message_wrap */
    void (*release)(void *);
    size_t storage_cap; /* bytes of storage[]; 0 for a wrapped message */
    char storage[];     /* subject NUL payload NUL (ms_message_create) */
};

/* --- type names ----------------------------------------------------------- */

const char *ms_msg_type_str(ms_msg_type t)
{
    if ((unsigned)t > MS_MSG_OTHER)
        return "";
    return type_names[t];
}

ms_status ms_msg_type_parse(const char *name, ms_msg_type *out)
{
    if (name == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_msg_type_parse: name or out is NULL");
    for (unsigned t = MS_MSG_CHANGE_NOTIFICATION; t < MS_MSG_OTHER; t++) {
        if (strcmp(name, type_names[t]) == 0) {
            *out = (ms_msg_type)t;
            return MS_OK;
        }
    }
    return ms__err(MS_ERR_PARSE, "unknown message type '%.64s'", name);
}

/* --- life cycle ----------------------------------------------------------- */

static void init_fields(ms_message *m)
{
    atomic_init(&m->refs, 1);
    atomic_init(&m->frozen, false);
    m->type = MS_MSG_NONE;
    m->subject = NULL;
    m->reply = NULL;
    m->data = NULL;
    m->len = 0;
    m->reply_owned = NULL;
    m->data_owned = NULL;
    for (size_t i = 0; i < META_COUNT; i++)
        m->meta[i] = NULL;
    m->headers = NULL;
    m->nheaders = 0;
    m->cap_headers = 0;
    m->backing = NULL;
    m->release = NULL;
}

/* Put subject and payload into m's own storage (which has room for them). */
static void fill_storage(ms_message *m, const char *subject, size_t slen, const void *data,
                         size_t len)
{
    memcpy(m->storage, subject, slen + 1);
    if (len > 0)
        memcpy(m->storage + slen + 1, data, len);
    m->storage[slen + 1 + len] = '\0';
    m->subject = m->storage;
    m->data = m->storage + slen + 1;
    m->len = len;
}

/* A message holding copies of subject and data in one allocation; its
 * storage is rounded up to STORAGE_ROUND so that a recycled one
 * (ms__message_reuse) fits the next message of about the same size. */
#define STORAGE_ROUND 64
static ms_status alloc_inline(const char *subject, const void *data, size_t len, const char *what,
                              ms_message **out)
{
    ms_message *m;
    size_t slen = strlen(subject), cap;

    if (len > SIZE_MAX - sizeof *m - slen - 2 - STORAGE_ROUND)
        return ms__err(MS_ERR_NO_MEMORY, "%s: payload of %zu bytes", what, len);
    cap = (slen + 1 + len + 1 + STORAGE_ROUND - 1) / STORAGE_ROUND * STORAGE_ROUND;
    m = ms__malloc(sizeof *m + cap);
    if (m == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: allocating a %zu-byte message", what, len);
    init_fields(m);
    m->storage_cap = cap;
    fill_storage(m, subject, slen, data, len);
    *out = m;
    return MS_OK;
}

/* The allocation and copy of ms_message_create, for a subject known to be
 * valid. */
static ms_status create_message(const char *subject, const void *data, size_t len, ms_message **out)
{
    return alloc_inline(subject, data, len, "ms_message_create", out);
}

ms_status ms_message_create(const char *subject, const void *data, size_t len, ms_message **out)
{
    ms_status s;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_message_create: out is NULL");
    *out = NULL;
    if (data == NULL && len > 0)
        return ms__err(MS_ERR_INVALID_ARG, "ms_message_create: data is NULL but len is %zu", len);
    s = ms_subject_validate(subject);
    if (s != MS_OK)
        return s;
    return create_message(subject, data, len, out);
}

ms_status ms__message_create_valid(const char *subject, const void *data, size_t len,
                                   ms_message **out)
{
    *out = NULL;
    return create_message(subject, data, len, out);
}

ms_status ms__message_wrap(const char *subject, const char *reply, const void *data, size_t len,
                           void *backing, void (*release)(void *), ms_message **out)
{
    ms_message *m = NULL;

    if (out == NULL || subject == NULL || (data == NULL && len > 0)) {
        if (release != NULL)
            release(backing);
        return ms__err(MS_ERR_INVALID_ARG, "ms__message_wrap: NULL out, subject or data");
    }
    *out = NULL;
    m = ms__malloc(sizeof *m);
    if (m == NULL) {
        /* Record the detail first: subject may live inside backing. */
        ms_status s =
            ms__err(MS_ERR_NO_MEMORY, "allocating a received message on '%.64s'", subject);
        if (release != NULL)
            release(backing);
        return s;
    }
    init_fields(m);
    m->storage_cap = 0;
    m->subject = subject;
    m->reply = reply;
    m->data = data != NULL ? data : "";
    m->len = len;
    m->backing = backing;
    m->release = release;
    *out = m;
    return MS_OK;
}

/* Free what m owns besides its own block. */
static void free_parts(ms_message *m)
{
    for (size_t i = 0; i < m->nheaders; i++)
        ms__free(m->headers[i].key);
    ms__free(m->headers);
    for (size_t i = 0; i < META_COUNT; i++)
        ms__free(m->meta[i]);
    ms__free(m->data_owned);
    ms__free(m->reply_owned);
    if (m->release != NULL)
        m->release(m->backing);
}

static void message_free(ms_message *m)
{
    free_parts(m);
    ms__free(m);
}

bool ms__message_exclusive(const ms_message *m)
{
    /* One reference (the caller's) means nobody else can see m any more;
     * acquire: their last reads of it happen before the caller's writes. */
    return atomic_load_explicit(&m->refs, memory_order_acquire) == 1 && m->storage_cap > 0;
}

bool ms__message_reuse(ms_message *m, const char *subject, const void *data, size_t len)
{
    size_t slen = strlen(subject);

    if (!ms__message_exclusive(m) || len > m->storage_cap || slen + 2 > m->storage_cap - len)
        return false;
    /* Back to the state create_message leaves, writing only what differs:
     * most of the block is as it was and stays untouched in the cache. */
    if (m->headers != NULL) {
        for (size_t i = 0; i < m->nheaders; i++)
            ms__free(m->headers[i].key);
        ms__free(m->headers);
        m->headers = NULL;
        m->nheaders = m->cap_headers = 0;
    }
    for (size_t i = 0; i < META_COUNT; i++) {
        if (m->meta[i] != NULL) {
            ms__free(m->meta[i]);
            m->meta[i] = NULL;
        }
    }
    if (m->data_owned != NULL) {
        ms__free(m->data_owned);
        m->data_owned = NULL;
    }
    if (m->reply != NULL) {
        ms__free(m->reply_owned);
        m->reply_owned = NULL;
        m->reply = NULL;
    }
    if (m->type != MS_MSG_NONE)
        m->type = MS_MSG_NONE;
    atomic_store_explicit(&m->frozen, false, memory_order_relaxed);
    fill_storage(m, subject, slen, data, len);
    return true;
}

ms_message *ms_message_ref(ms_message *m)
{
    if (m == NULL)
        return NULL;
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    /* Shared from now on: read-only for good, even when the count drops back. */
    atomic_store_explicit(&m->frozen, true, memory_order_relaxed);
    return m;
}

void ms_message_unref(ms_message *m)
{
    if (m == NULL)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_release) == 1) {
        atomic_thread_fence(memory_order_acquire);
        message_free(m);
    }
}

void ms__message_freeze(ms_message *m)
{
    if (m != NULL)
        atomic_store_explicit(&m->frozen, true, memory_order_relaxed);
}

static ms_status check_writable(const ms_message *m, const char *what)
{
    if (m == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: message is NULL", what);
    if (atomic_load_explicit(&m->frozen, memory_order_relaxed) ||
        atomic_load_explicit(&m->refs, memory_order_relaxed) != 1)
        return ms__err(MS_ERR_STATE, "%s: message on '%.64s' is shared or sent, so read-only", what,
                       m->subject);
    return MS_OK;
}

/* --- getters -------------------------------------------------------------- */

const char *ms_message_subject(const ms_message *m)
{
    return m ? m->subject : NULL;
}

const char *ms_message_reply(const ms_message *m)
{
    return m ? m->reply : NULL;
}

const void *ms_message_data(const ms_message *m)
{
    return m ? m->data : NULL;
}

size_t ms_message_len(const ms_message *m)
{
    return m ? m->len : 0;
}

const char *ms_message_id(const ms_message *m)
{
    return m ? m->meta[META_ID] : NULL;
}

const char *ms_message_source(const ms_message *m)
{
    return m ? m->meta[META_SOURCE] : NULL;
}

ms_msg_type ms_message_type(const ms_message *m)
{
    return m ? m->type : MS_MSG_NONE;
}

const char *ms_message_type_name(const ms_message *m)
{
    if (m == NULL || m->type == MS_MSG_NONE)
        return NULL;
    if (m->type == MS_MSG_OTHER)
        return m->meta[META_TYPE];
    return type_names[m->type];
}

const char *ms_message_correlation_id(const ms_message *m)
{
    return m ? m->meta[META_CORRELATION] : NULL;
}

const char *ms_message_timestamp(const ms_message *m)
{
    return m ? m->meta[META_TIME] : NULL;
}

const char *ms_message_traceparent(const ms_message *m)
{
    return m ? m->meta[META_TRACE] : NULL;
}

const char *ms_message_header(const ms_message *m, const char *key)
{
    if (m == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < m->nheaders; i++) {
        if (strcmp(m->headers[i].key, key) == 0)
            return m->headers[i].value;
    }
    return NULL;
}

size_t ms_message_header_count(const ms_message *m)
{
    return m ? m->nheaders : 0;
}

ms_status ms_message_header_at(const ms_message *m, size_t i, const char **key, const char **value)
{
    if (m == NULL || key == NULL || value == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_message_header_at: NULL argument");
    if (i >= m->nheaders)
        return ms__err(MS_ERR_NOT_FOUND, "header %zu: the message has %zu headers", i, m->nheaders);
    *key = m->headers[i].key;
    *value = m->headers[i].value;
    return MS_OK;
}

/* --- validation ----------------------------------------------------------- */

/* The metadata slot named key (case-insensitive), or -1. */
static int meta_slot(const char *key)
{
    if ((key[0] == 'M' || key[0] == 'm') || (key[0] == 't' || key[0] == 'T')) {
        for (int i = 0; i < META_COUNT; i++) {
            if (strcasecmp(key, meta_names[i]) == 0)
                return i;
        }
    }
    return -1;
}

static ms_status check_value(const char *value, const char *what)
{
    size_t n;

    if (value == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: value is NULL", what);
    n = strnlen(value, MS_HEADER_VALUE_MAX + 1);
    if (n > MS_HEADER_VALUE_MAX)
        return ms__err(MS_ERR_INVALID_ARG, "%s: value is longer than %d bytes", what,
                       MS_HEADER_VALUE_MAX);
    for (size_t i = 0; i < n; i++) {
        if (value[i] == '\r' || value[i] == '\n')
            return ms__err(MS_ERR_INVALID_ARG, "%s: value has a %s at byte %zu", what,
                           value[i] == '\r' ? "CR" : "LF", i);
    }
    return MS_OK;
}

static ms_status check_key(const char *key, const char *what)
{
    size_t n;

    if (key == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: key is NULL", what);
    if (key[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "%s: key is empty", what);
    n = strnlen(key, MS_HEADER_VALUE_MAX + 1);
    if (n > MS_HEADER_VALUE_MAX)
        return ms__err(MS_ERR_INVALID_ARG, "%s: key is longer than %d bytes", what,
                       MS_HEADER_VALUE_MAX);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= ' ' || c == 0x7f || c == ':')
            return ms__err(MS_ERR_INVALID_ARG, "%s: key '%.64s' has %s (0x%02x) at byte %zu", what,
                           key, c == ':' ? "a ':'" : "whitespace or a control character", c, i);
    }
    return MS_OK;
}

/* A non-empty metadata value. */
static ms_status check_meta_value(const char *value, const char *what)
{
    ms_status s = check_value(value, what);
    if (s == MS_OK && value[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "%s: value is empty", what);
    return s;
}

/* --- setters -------------------------------------------------------------- */

/* Replace metadata slot i with a copy of value (NULL clears it). */
static ms_status meta_set(ms_message *m, int i, const char *value, const char *what)
{
    char *copy = NULL;

    if (value != NULL) {
        copy = ms__strdup(value);
        if (copy == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "%s: copying the value", what);
    }
    ms__free(m->meta[i]);
    m->meta[i] = copy;
    return MS_OK;
}

static ms_status set_checked_meta(ms_message *m, int slot, const char *value, const char *what)
{
    ms_status s = check_writable(m, what);
    if (s != MS_OK)
        return s;
    s = check_meta_value(value, what);
    if (s != MS_OK)
        return s;
    return meta_set(m, slot, value, what);
}

ms_status ms_message_set_reply(ms_message *m, const char *reply)
{
    ms_status s = check_writable(m, "ms_message_set_reply");
    char *copy;

    if (s != MS_OK)
        return s;
    s = ms_subject_validate(reply);
    if (s != MS_OK)
        return ms__err_wrap(s, "ms_message_set_reply");
    copy = ms__strdup(reply);
    if (copy == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_message_set_reply: copying the subject");
    ms__free(m->reply_owned);
    m->reply_owned = copy;
    m->reply = copy;
    return MS_OK;
}

ms_status ms_message_set_id(ms_message *m, const char *id)
{
    return set_checked_meta(m, META_ID, id, "ms_message_set_id");
}

ms_status ms_message_set_source(ms_message *m, const char *source)
{
    return set_checked_meta(m, META_SOURCE, source, "ms_message_set_source");
}

ms_status ms_message_set_correlation_id(ms_message *m, const char *id)
{
    return set_checked_meta(m, META_CORRELATION, id, "ms_message_set_correlation_id");
}

ms_status ms_message_set_timestamp(ms_message *m, const char *rfc3339)
{
    ms_status s = check_writable(m, "ms_message_set_timestamp");
    if (s != MS_OK)
        return s;
    if (!ms__timestamp_valid(rfc3339))
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_message_set_timestamp: '%.64s' is not an RFC 3339 "
                       "date-time",
                       rfc3339 ? rfc3339 : "(null)");
    return meta_set(m, META_TIME, rfc3339, "ms_message_set_timestamp");
}

ms_status ms_message_set_traceparent(ms_message *m, const char *traceparent)
{
    ms_status s = check_writable(m, "ms_message_set_traceparent");
    if (s != MS_OK)
        return s;
    if (!ms__traceparent_valid(traceparent))
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_message_set_traceparent: '%.64s' is not a valid "
                       "version-00 traceparent",
                       traceparent ? traceparent : "(null)");
    return meta_set(m, META_TRACE, traceparent, "ms_message_set_traceparent");
}

ms_status ms_message_set_type(ms_message *m, ms_msg_type type)
{
    ms_status s = check_writable(m, "ms_message_set_type");
    if (s != MS_OK)
        return s;
    if ((unsigned)type >= MS_MSG_OTHER)
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_message_set_type: type %d is not a known type "
                       "(use ms_message_set_type_name for others)",
                       (int)type);
    ms__free(m->meta[META_TYPE]);
    m->meta[META_TYPE] = NULL;
    m->type = type;
    return MS_OK;
}

/* Set the type from its wire name; unknown names become MS_MSG_OTHER. */
static ms_status type_from_name(ms_message *m, const char *name, const char *what)
{
    ms_msg_type t = MS_MSG_NONE;

    if (name[0] != '\0') {
        for (unsigned i = MS_MSG_CHANGE_NOTIFICATION; i < MS_MSG_OTHER; i++) {
            if (strcmp(name, type_names[i]) == 0) {
                t = (ms_msg_type)i;
                break;
            }
        }
        if (t == MS_MSG_NONE) {
            ms_status s = meta_set(m, META_TYPE, name, what);
            if (s != MS_OK)
                return s;
            m->type = MS_MSG_OTHER;
            return MS_OK;
        }
    }
    ms__free(m->meta[META_TYPE]);
    m->meta[META_TYPE] = NULL;
    m->type = t;
    return MS_OK;
}

ms_status ms_message_set_type_name(ms_message *m, const char *type_name)
{
    ms_status s = check_writable(m, "ms_message_set_type_name");
    if (s != MS_OK)
        return s;
    s = check_meta_value(type_name, "ms_message_set_type_name");
    if (s != MS_OK)
        return s;
    return type_from_name(m, type_name, "ms_message_set_type_name");
}

/* A new "key\0value\0" block for a header entry. */
static char *make_pair(const char *key, const char *value, const char **value_out)
{
    size_t klen = strlen(key);
    size_t vlen = strlen(value);
    char *p = ms__malloc(klen + 1 + vlen + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, key, klen + 1);
    memcpy(p + klen + 1, value, vlen + 1);
    *value_out = p + klen + 1;
    return p;
}

/* Append a checked header (copied). */
static ms_status append_header(ms_message *m, const char *key, const char *value, const char *what)
{
    header h;

    if (m->nheaders >= MS_HEADER_MAX_COUNT)
        return ms__err(MS_ERR_INVALID_ARG, "%s: the message already has %d headers", what,
                       MS_HEADER_MAX_COUNT);
    if (m->nheaders == m->cap_headers) {
        size_t cap = m->cap_headers ? m->cap_headers * 2 : 4;
        header *grown = ms__realloc(m->headers, cap * sizeof *grown);
        if (grown == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "%s: growing the header list", what);
        m->headers = grown;
        m->cap_headers = cap;
    }
    h.key = make_pair(key, value, &h.value);
    if (h.key == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: copying header '%.64s'", what, key);
    m->headers[m->nheaders++] = h;
    return MS_OK;
}

static ms_status check_free_form(const char *key, const char *value, const char *what)
{
    ms_status s = check_key(key, what);
    if (s != MS_OK)
        return s;
    if (meta_slot(key) >= 0)
        return ms__err(MS_ERR_INVALID_ARG, "%s: '%s' is message metadata; use its own setter", what,
                       key);
    return check_value(value, what);
}

ms_status ms_message_add_header(ms_message *m, const char *key, const char *value)
{
    ms_status s = check_writable(m, "ms_message_add_header");
    if (s != MS_OK)
        return s;
    s = check_free_form(key, value, "ms_message_add_header");
    if (s != MS_OK)
        return s;
    return append_header(m, key, value, "ms_message_add_header");
}

ms_status ms_message_set_header(ms_message *m, const char *key, const char *value)
{
    const char *what = "ms_message_set_header";
    ms_status s = check_writable(m, what);
    size_t first = SIZE_MAX, kept = 0;

    if (s != MS_OK)
        return s;
    s = check_free_form(key, value, what);
    if (s != MS_OK)
        return s;
    for (size_t i = 0; i < m->nheaders; i++) {
        if (strcmp(m->headers[i].key, key) == 0) {
            first = i;
            break;
        }
    }
    if (first == SIZE_MAX)
        return append_header(m, key, value, what);

    /* Replace the first value in place, drop any later ones. */
    {
        header h;
        h.key = make_pair(key, value, &h.value);
        if (h.key == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "%s: copying header '%.64s'", what, key);
        ms__free(m->headers[first].key);
        m->headers[first] = h;
    }
    kept = first + 1;
    for (size_t i = first + 1; i < m->nheaders; i++) {
        if (strcmp(m->headers[i].key, key) == 0)
            ms__free(m->headers[i].key);
        else
            m->headers[kept++] = m->headers[i];
    }
    m->nheaders = kept;
    return MS_OK;
}

ms_status ms_message_set_data(ms_message *m, const void *data, size_t len)
{
    ms_status s = check_writable(m, "ms_message_set_data");
    char *copy;

    if (s != MS_OK)
        return s;
    if (data == NULL && len > 0)
        return ms__err(MS_ERR_INVALID_ARG, "ms_message_set_data: data is NULL but len is %zu", len);
    if (len == SIZE_MAX)
        return ms__err(MS_ERR_NO_MEMORY, "ms_message_set_data: payload of %zu bytes", len);
    copy = ms__malloc(len + 1);
    if (copy == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_message_set_data: allocating %zu bytes", len);
    if (len > 0)
        memcpy(copy, data, len);
    copy[len] = '\0';
    ms__free(m->data_owned); /* after the copy: data may point into it */
    m->data_owned = copy;
    m->data = copy;
    m->len = len;
    return MS_OK;
}

ms_status ms_message_json(const ms_message *m, json_t **out)
{
    if (m == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_message_json: message or out is NULL");
    return ms_json_parse(m->len > 0 ? m->data : "", m->len, "payload", out);
}

/* --- clone ---------------------------------------------------------------- */

ms_status ms_message_clone(const ms_message *m, ms_message **out)
{
    ms_message *c = NULL;
    ms_status s;

    if (m == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_message_clone: message or out is NULL");
    *out = NULL;
    /* A wrapped message's subject was never validated; copy it as is. */
    if ((s = alloc_inline(m->subject, m->data, m->len, "ms_message_clone", &c)) != MS_OK)
        return s;
    if (m->reply != NULL) {
        c->reply_owned = ms__strdup(m->reply);
        if (c->reply_owned == NULL) {
            s = ms__err(MS_ERR_NO_MEMORY, "ms_message_clone: copying the reply subject");
            goto fail;
        }
        c->reply = c->reply_owned;
    }
    for (int i = 0; i < META_COUNT; i++) {
        if (m->meta[i] == NULL)
            continue;
        c->meta[i] = ms__strdup(m->meta[i]);
        if (c->meta[i] == NULL) {
            s = ms__err(MS_ERR_NO_MEMORY, "ms_message_clone: copying %s", meta_names[i]);
            goto fail;
        }
    }
    c->type = m->type;
    if (m->nheaders > 0) {
        c->headers = ms__malloc(m->nheaders * sizeof *c->headers);
        if (c->headers == NULL) {
            s = ms__err(MS_ERR_NO_MEMORY, "ms_message_clone: copying the header list");
            goto fail;
        }
        c->cap_headers = m->nheaders;
        for (size_t i = 0; i < m->nheaders; i++) {
            header h;
            h.key = make_pair(m->headers[i].key, m->headers[i].value, &h.value);
            if (h.key == NULL) {
                s = ms__err(MS_ERR_NO_MEMORY, "ms_message_clone: copying a header");
                goto fail;
            }
            c->headers[c->nheaders++] = h;
        }
    }
    *out = c;
    return MS_OK;

fail:
    message_free(c);
    return s;
}

/* --- wire headers --------------------------------------------------------- */

int ms__message_has_headers(const ms_message *m)
{
    if (m == NULL)
        return 0;
    if (m->type != MS_MSG_NONE || m->nheaders > 0)
        return 1;
    for (int i = 0; i < META_COUNT; i++) {
        if (m->meta[i] != NULL)
            return 1;
    }
    return 0;
}

ms_status ms__message_set_wire_header(ms_message *m, const char *key, const char *value)
{
    const char *what = "received header";
    ms_status s = check_writable(m, what);
    int slot;

    if (s != MS_OK)
        return s;
    s = check_key(key, what);
    if (s != MS_OK)
        return s;
    s = check_value(value, what);
    if (s != MS_OK)
        return s;
    slot = meta_slot(key);
    if (slot < 0)
        return append_header(m, key, value, what);
    if (slot == META_TYPE)
        return type_from_name(m, value, what);
    /* An empty metadata value means "absent". */
    return meta_set(m, slot, value[0] != '\0' ? value : NULL, what);
}

ms_status ms__message_each_wire_header(const ms_message *m, ms__header_fn fn, void *closure)
{
    ms_status s;

    if (m == NULL || fn == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms__message_each_wire_header: NULL argument");
    for (int i = 0; i < META_COUNT; i++) {
        const char *v = i == META_TYPE ? ms_message_type_name(m) : m->meta[i];
        if (v == NULL)
            continue;
        s = fn(meta_names[i], v, closure);
        if (s != MS_OK)
            return s;
    }
    for (size_t i = 0; i < m->nheaders; i++) {
        s = fn(m->headers[i].key, m->headers[i].value, closure);
        if (s != MS_OK)
            return s;
    }
    return MS_OK;
}

/* --- builders ------------------------------------------------------------- */

static ms_status require(const char *value, const char *what, const char *field)
{
    if (value == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: %s is NULL", what, field);
    if (value[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "%s: %s is empty", what, field);
    return MS_OK;
}

/* prefix.<name> into buf (MS_SUBJECT_MAX + 1 bytes), checked as a subject. */
static ms_status default_subject(char *buf, const char *prefix, const char *name, const char *what)
{
    int n = snprintf(buf, MS_SUBJECT_MAX + 1, "%s.%s", prefix, name);

    if (n < 0 || n > MS_SUBJECT_MAX)
        return ms__err(MS_ERR_INVALID_SUBJECT,
                       "%s: subject '%s.<name>' would be longer than %d "
                       "bytes",
                       what, prefix, MS_SUBJECT_MAX);
    {
        ms_status s = ms_subject_validate(buf);
        if (s != MS_OK)
            return ms__err_wrap(s, "%s: name '%.64s' does not make a valid subject", what, name);
    }
    return MS_OK;
}

/*
 * Make the message of a builder: serialise payload (borrowed; NULL: empty
 * payload), then stamp id, time, trace context, type and source. On success
 * *out is a new writable message owned by the caller.
 */
static ms_status build(const char *subject, const char *source, ms_msg_type type,
                       const json_t *payload, const char *what, ms_message **out)
{
    char *text = NULL;
    size_t len = 0;
    ms_message *m = NULL;
    ms_status s;
    char id[MS_ID_LEN + 1];
    char ts[MS_TIMESTAMP_LEN + 1];
    char tp[MS_TRACEPARENT_LEN + 1];
    json_free_t jfree = NULL;

    if (source != NULL) {
        s = check_meta_value(source, what);
        if (s != MS_OK)
            return s;
    }
    if (payload != NULL) {
        text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text == NULL) {
            s = ms__err(MS_ERR_NO_MEMORY, "%s: serialising the payload", what);
            goto cleanup;
        }
        len = strlen(text);
    }
    s = ms_message_create(subject, text, len, &m);
    if (s != MS_OK) {
        if (s != MS_ERR_NO_MEMORY)
            s = ms__err_wrap(s, "%s", what);
        goto cleanup;
    }
    ms_id_new(id);
    ms_timestamp_now(ts);
    ms_traceparent_new(tp);
    if ((s = meta_set(m, META_ID, id, what)) != MS_OK ||
        (s = meta_set(m, META_TIME, ts, what)) != MS_OK ||
        (s = meta_set(m, META_TRACE, tp, what)) != MS_OK ||
        (source != NULL && (s = meta_set(m, META_SOURCE, source, what)) != MS_OK))
        goto cleanup;
    m->type = type;
    *out = m;
    m = NULL;

cleanup:
    ms_message_unref(m);
    if (text != NULL) {
        json_get_alloc_funcs(NULL, &jfree);
        (jfree != NULL ? jfree : free)(text);
    }
    return s;
}

/* True when s is well-formed UTF-8 (no overlong forms, no surrogates, at
 * most U+10FFFF): what a JSON string may hold. */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p != 0) {
        unsigned char c = *p;
        size_t extra;
        unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */

        if (c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            if (c == 0xe0)
                lo = 0xa0;
            else if (c == 0xed)
                hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            if (c == 0xf0)
                lo = 0x90;
            else if (c == 0xf4)
                hi = 0x8f;
        } else {
            return false;
        }
        if (p[1] < lo || p[1] > hi)
            return false;
        for (size_t i = 2; i <= extra; i++) {
            if (p[i] < 0x80 || p[i] > 0xbf)
                return false;
        }
        p += extra + 1;
    }
    return true;
}

/* Check the (optional) string arguments of a builder payload, so that a
 * json_pack failure afterwards can only mean memory. */
static ms_status check_text(const char *value, const char *what, const char *field)
{
    if (value != NULL && !utf8_valid(value))
        return ms__err(MS_ERR_INVALID_ARG, "%s: %s is not valid UTF-8", what, field);
    return MS_OK;
}

/* The result of json_pack_ex over arguments already checked: NULL can only
 * mean an allocation failed (jansson does not always say so in err). */
static ms_status packed(json_t *obj, const json_error_t *err, const char *what, json_t **out)
{
    (void)err;
    if (obj == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: building the payload", what);
    *out = obj;
    return MS_OK;
}

static ms_status check_out(ms_message **out, const char *what)
{
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: out is NULL", what);
    *out = NULL;
    return MS_OK;
}

ms_status ms_msg_change_notification(const char *subject, const char *source,
                                     const char *change_summary, ms_message **out)
{
    const char *what = "ms_msg_change_notification";
    json_error_t err;
    json_t *body = NULL;
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK || (s = require(subject, what, "subject")) != MS_OK ||
        (s = require(change_summary, what, "change_summary")) != MS_OK ||
        (s = check_text(change_summary, what, "change_summary")) != MS_OK)
        return s;
    s = packed(json_pack_ex(&err, 0, "{s:s}", "change_summary", change_summary), &err, what, &body);
    if (s != MS_OK)
        return s;
    s = build(subject, source, MS_MSG_CHANGE_NOTIFICATION, body, what, out);
    json_decref(body);
    return s;
}

ms_status ms_msg_interface_changed(const char *subject, const char *source,
                                   const char *interface_name, const char *old_version,
                                   const char *new_version, bool breaking, const char *summary,
                                   ms_message **out)
{
    const char *what = "ms_msg_interface_changed";
    char buf[MS_SUBJECT_MAX + 1];
    json_error_t err;
    json_t *body = NULL;
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK ||
        (s = require(interface_name, what, "interface_name")) != MS_OK ||
        (s = require(new_version, what, "new_version")) != MS_OK ||
        (s = check_text(interface_name, what, "interface_name")) != MS_OK ||
        (s = check_text(old_version, what, "old_version")) != MS_OK ||
        (s = check_text(new_version, what, "new_version")) != MS_OK ||
        (s = check_text(summary, what, "summary")) != MS_OK)
        return s;
    if (subject == NULL) {
        s = default_subject(buf, "mainstack.interface.changed", interface_name, what);
        if (s != MS_OK)
            return s;
        subject = buf;
    }
    s = packed(json_pack_ex(&err, 0, "{s:s, s:s?, s:s, s:b, s:s?}", "interface_name",
                            interface_name, "old_version", old_version, "new_version", new_version,
                            "breaking", (int)breaking, "summary", summary),
               &err, what, &body);
    if (s != MS_OK)
        return s;
    s = build(subject, source, MS_MSG_INTERFACE_CHANGED, body, what, out);
    json_decref(body);
    return s;
}

ms_status ms_msg_dependency_update(const char *subject, const char *source, const char *name,
                                   const char *from_version, const char *to_version,
                                   ms_message **out)
{
    const char *what = "ms_msg_dependency_update";
    char buf[MS_SUBJECT_MAX + 1];
    json_error_t err;
    json_t *body = NULL;
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK || (s = require(name, what, "name")) != MS_OK ||
        (s = require(to_version, what, "to_version")) != MS_OK ||
        (s = check_text(name, what, "name")) != MS_OK ||
        (s = check_text(from_version, what, "from_version")) != MS_OK ||
        (s = check_text(to_version, what, "to_version")) != MS_OK)
        return s;
    if (subject == NULL) {
        s = default_subject(buf, "mainstack.dependency.updated", name, what);
        if (s != MS_OK)
            return s;
        subject = buf;
    }
    s = packed(json_pack_ex(&err, 0, "{s:s, s:s?, s:s}", "name", name, "from_version", from_version,
                            "to_version", to_version),
               &err, what, &body);
    if (s != MS_OK)
        return s;
    s = build(subject, source, MS_MSG_DEPENDENCY_UPDATE, body, what, out);
    json_decref(body);
    return s;
}

ms_status ms_msg_request(const char *subject, const char *source, const json_t *body,
                         ms_message **out)
{
    const char *what = "ms_msg_request";
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK || (s = require(subject, what, "subject")) != MS_OK)
        return s;
    return build(subject, source, MS_MSG_REQUEST, body, what, out);
}

ms_status ms_msg_response(const ms_message *request, const char *source, const json_t *body,
                          ms_message **out)
{
    const char *what = "ms_msg_response";
    char tp[MS_TRACEPARENT_LEN + 1];
    const char *parent;
    ms_message *m = NULL;
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK)
        return s;
    if (request == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: request is NULL", what);
    if (request->reply == NULL)
        return ms__err(MS_ERR_STATE, "%s: the request on '%.64s' has no reply subject", what,
                       request->subject);
    s = build(request->reply, source, MS_MSG_RESPONSE, body, what, &m);
    if (s != MS_OK)
        return s;
    parent = request->meta[META_TRACE];
    if (parent != NULL && ms_traceparent_child(parent, tp) == MS_OK) {
        s = meta_set(m, META_TRACE, tp, what);
        if (s != MS_OK)
            goto cleanup;
    } /* else: no usable parent, so the new trace build() made stays */
    if (request->meta[META_ID] != NULL) {
        s = meta_set(m, META_CORRELATION, request->meta[META_ID], what);
        if (s != MS_OK)
            goto cleanup;
    }
    *out = m;
    m = NULL;

cleanup:
    ms_message_unref(m);
    return s;
}

ms_status ms_msg_event(const char *subject, const char *source, const json_t *body,
                       ms_message **out)
{
    const char *what = "ms_msg_event";
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK || (s = require(subject, what, "subject")) != MS_OK)
        return s;
    return build(subject, source, MS_MSG_EVENT, body, what, out);
}

ms_status ms_msg_config_change(const char *subject, const char *source, const char *component,
                               const json_t *config, ms_message **out)
{
    const char *what = "ms_msg_config_change";
    char buf[MS_SUBJECT_MAX + 1];
    json_error_t err;
    json_t *body = NULL;
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK ||
        (s = require(component, what, "component")) != MS_OK ||
        (s = check_text(component, what, "component")) != MS_OK)
        return s;
    if (config == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: config is NULL", what);
    if (subject == NULL) {
        s = default_subject(buf, "mainstack.config", component, what);
        if (s != MS_OK)
            return s;
        subject = buf;
    }
    /* "O" takes a new reference; jansson's API is not const-correct. */
    s = packed(
        json_pack_ex(&err, 0, "{s:s, s:O}", "component", component, "config", (json_t *)config),
        &err, what, &body);
    if (s != MS_OK)
        return s;
    s = build(subject, source, MS_MSG_CONFIG_CHANGE, body, what, out);
    json_decref(body);
    return s;
}

ms_status ms_msg_health_check(const char *subject, const char *source, const char *component,
                              ms_message **out)
{
    const char *what = "ms_msg_health_check";
    char buf[MS_SUBJECT_MAX + 1];
    json_error_t err;
    json_t *body = NULL;
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK ||
        (s = require(component, what, "component")) != MS_OK ||
        (s = check_text(component, what, "component")) != MS_OK)
        return s;
    if (subject == NULL) {
        s = default_subject(buf, "mainstack.health", component, what);
        if (s != MS_OK)
            return s;
        subject = buf;
    }
    s = packed(json_pack_ex(&err, 0, "{s:s}", "component", component), &err, what, &body);
    if (s != MS_OK)
        return s;
    s = build(subject, source, MS_MSG_HEALTH_CHECK, body, what, out);
    json_decref(body);
    return s;
}

ms_status ms_msg_command(const char *subject, const char *source, const char *command,
                         const json_t *args, ms_message **out)
{
    const char *what = "ms_msg_command";
    json_error_t err;
    json_t *body = NULL;
    ms_status s;

    if ((s = check_out(out, what)) != MS_OK || (s = require(subject, what, "subject")) != MS_OK ||
        (s = require(command, what, "command")) != MS_OK ||
        (s = check_text(command, what, "command")) != MS_OK)
        return s;
    s = packed(json_pack_ex(&err, 0, "{s:s, s:O?}", "command", command, "args", (json_t *)args),
               &err, what, &body);
    if (s != MS_OK)
        return s;
    s = build(subject, source, MS_MSG_COMMAND, body, what, out);
    json_decref(body);
    return s;
}
