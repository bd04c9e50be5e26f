/*
 * notification_service_internal.h - what the files of notification-service
 * share.
 *
 *   notification_service.c  the vtable: lifecycle, config, events, health
 *   template.c              {{field}} templates: parse (with error offsets), render
 *   outbox.c                the outbox file (JSON lines, fsync'd), the delivered
 *                           event ids (idempotence), the retry queue, the recent ring
 *   config.c                the config: parse and check, defaults
 *   ../tests/selftest.c     the Testable suite (run_tests)
 *
 * Every name here is hidden (the plugin exports mainstack_component only).
 */
#ifndef NOTIFICATION_SERVICE_INTERNAL_H
#define NOTIFICATION_SERVICE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <mainstack/component.h>
#include <mainstack/status.h>

#include "interface.h"

/* Record the detail of a failure (ms_ctx_error: it becomes ms_last_error()
 * and the Nats-Service-Error header of an error reply) and return s. Control
 * characters in the detail are replaced, as it may quote the sender's input. */
ms_status ns__fail(ms_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- template.c ------------------------------------------------------------ */

typedef struct ns_template ns_template;

/* Parse len bytes of src. where names the template in errors, which give
 * the byte offset: "templates.created: unclosed '{{' at offset 9".
 * MS_ERR_SCHEMA, MS_ERR_NO_MEMORY. */
ms_status ns__template_parse(const char *src, size_t len, const char *where, ns_template **out);
void ns__template_free(ns_template *t); /* NULL-safe */
/* Render with the fields of vars (an object, borrowed). *out is malloc'd
 * (free()), NUL-terminated. MS_ERR_NO_MEMORY. */
ms_status ns__template_render(const ns_template *t, const json_t *vars, char **out);

/* --- config.c -------------------------------------------------------------- */

typedef struct ns_config {
    size_t count;  /* templates */
    char **events; /* event name of each template ("created") */
    ns_template **tmpl;
    char *outbox; /* file name inside the data directory */
    size_t pending_max;
} ns_config;

/* Parse and check config (NULL or {}: the defaults) into out (zeroed by the
 * caller or reset). Unknown keys are refused. MS_ERR_SCHEMA naming the key
 * (and the offset, for a template), MS_ERR_NO_MEMORY; out untouched on error. */
ms_status ns__config_parse(const json_t *config, ns_config *out);
void ns__config_reset(ns_config *cfg);
/* The template of an event name, or NULL. */
const ns_template *ns__config_template(const ns_config *cfg, const char *event);

/* --- outbox.c -------------------------------------------------------------- */

typedef struct ns_outbox ns_outbox;

#define NS_IDS_FILE "delivered.ids"
#define NS_RECENT_MAX NOTIFY_OUTBOX_LIMIT_MAX

/* Open the outbox file `file` in dir: read the delivered ids (dir/delivered.ids
 * and the event_id of every line of the outbox) and the last lines. A file
 * that cannot be read is not an error here (the next write tells);
 * MS_ERR_NO_MEMORY, MS_ERR_INVALID_ARG. */
ms_status ns__outbox_open(const char *dir, const char *file, size_t pending_max, ns_outbox **out);
void ns__outbox_close(ns_outbox *ob); /* NULL-safe; pending notifications are lost */
/* Switch to another outbox file (its ids are read too); pending ones follow. */
ms_status ns__outbox_set_file(ns_outbox *ob, const char *file);
void ns__outbox_set_pending_max(ns_outbox *ob, size_t pending_max);
const char *ns__outbox_path(const ns_outbox *ob);
const char *ns__outbox_file(const ns_outbox *ob);

/* Delivered already, or waiting in the retry queue. */
bool ns__outbox_seen(const ns_outbox *ob, const char *event_id);
/*
 * Write record (its event_id is a string; borrowed, kept by reference) as
 * one line, after the pending ones. The records written by this call (the
 * pending ones flushed, then this one) are appended to written (an array,
 * borrowed). MS_OK; MS_ERR_IO (queued for retry: the detail says why and how
 * many wait); MS_ERR_FULL (the queue is full: dropped).
 */
ms_status ns__outbox_deliver(ns_outbox *ob, json_t *record, json_t *written);
/* Write the pending ones; those written are appended to written. MS_OK when
 * nothing is left pending, MS_ERR_IO otherwise. */
ms_status ns__outbox_retry(ns_outbox *ob, json_t *written);
/* Can the outbox be opened for appending now? MS_ERR_IO with the reason. */
ms_status ns__outbox_probe(ns_outbox *ob);
size_t ns__outbox_pending(const ns_outbox *ob);
size_t ns__outbox_dropped(const ns_outbox *ob);
size_t ns__outbox_delivered(const ns_outbox *ob); /* ids known */
/* The last limit notifications written, oldest first: a new array. NULL on ENOMEM. */
json_t *ns__outbox_recent(const ns_outbox *ob, size_t limit);

/* --- tests/selftest.c ------------------------------------------------------ */

ms_status ns__selftest(ms_test_report *report);

#endif
