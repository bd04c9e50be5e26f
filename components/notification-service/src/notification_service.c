/*
 * notification_service.c - the notification-service component.
 *
 * Consumes events.user.> (user-service's events), renders the template of
 * the event (config, template.c) with the event payload's fields, delivers
 * the notification to a JSON-lines outbox file in its data directory
 * (outbox.c), once per event id, and emits events.notification.sent for each
 * one written. Serves component.notification-service.outbox (the last
 * notifications). Health is degraded while the outbox cannot be written;
 * each event and each health check retries, so it heals by itself.
 *
 * Threading: not reentrant; the runtime runs one call of an instance at a
 * time (health checks and config changes included), so no locks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mainstack/component.h>
#include <mainstack/message.h>

#include "notification_service_internal.h"
#include "user-service/src/interface.h" /* the events consumed: subjects, fields */

#define USER_EVENT_PREFIX "events.user."

typedef struct notification_service {
    ms_component_ctx *ctx; /* borrowed between initialize and shutdown */
    ns_config cfg;
    ns_outbox *outbox;
    size_t duplicates; /* redelivered events ignored */
    size_t skipped;    /* events without a template */
} notification_service;

static void *ns_create(void)
{
    return calloc(1, sizeof(notification_service));
}

static void ns_destroy(void *self)
{
    notification_service *n = self;

    if (n == NULL)
        return;
    ns__outbox_close(n->outbox);
    ns__config_reset(&n->cfg);
    free(n);
}

static ms_status ns_initialize(void *self, ms_component_ctx *ctx)
{
    notification_service *n = self;
    ms_status s;

    s = ns__config_parse(ms_ctx_config(ctx), &n->cfg);
    if (s != MS_OK)
        return s;
    s = ns__outbox_open(ms_ctx_data_dir(ctx), n->cfg.outbox, n->cfg.pending_max, &n->outbox);
    if (s != MS_OK)
        return s;
    n->ctx = ctx;
    ms_ctx_log(ctx, MS_LOG_INFO, "outbox %s (%zu event ids delivered before), %zu templates",
               ns__outbox_path(n->outbox), ns__outbox_delivered(n->outbox), n->cfg.count);
    return MS_OK;
}

static void ns_shutdown(void *self)
{
    notification_service *n = self;

    if (n->outbox != NULL && ns__outbox_pending(n->outbox) > 0)
        ms_ctx_log(n->ctx, MS_LOG_WARN, "%zu notifications still pending are lost (outbox %s)",
                   ns__outbox_pending(n->outbox), ns__outbox_path(n->outbox));
    ns__outbox_close(n->outbox);
    n->outbox = NULL;
    n->ctx = NULL;
}

static ms_status ns_config_change(void *self, const json_t *config)
{
    notification_service *n = self;
    ns_config cfg = {0};
    ms_status s = ns__config_parse(config, &cfg);

    if (s != MS_OK)
        return s;
    if (n->outbox != NULL) {
        s = ns__outbox_set_file(n->outbox, cfg.outbox);
        if (s != MS_OK) {
            ns__config_reset(&cfg);
            return s;
        }
        ns__outbox_set_pending_max(n->outbox, cfg.pending_max);
    }
    ns__config_reset(&n->cfg);
    n->cfg = cfg;
    if (n->ctx != NULL)
        ms_ctx_log(n->ctx, MS_LOG_INFO, "config applied: %zu templates, outbox %s", cfg.count,
                   cfg.outbox);
    return MS_OK;
}

/* Emit events.notification.sent for each record written. A failure is
 * logged: the notification itself is delivered. */
static void emit_sent(notification_service *n, const json_t *written)
{
    size_t i;
    json_t *rec;

    json_array_foreach(written, i, rec)
    {
        ms_message *ev = NULL;
        const char *cause = json_string_value(json_object_get(rec, NOTIFY_FIELD_EVENT_ID));
        ms_status s = ms_msg_event(NOTIFY_EVENT_SENT, NOTIFICATION_SERVICE_NAME, rec, &ev);

        if (s == MS_OK && cause != NULL)
            s = ms_message_set_correlation_id(ev, cause);
        if (s == MS_OK)
            s = ms_ctx_publish_msg(n->ctx, ev);
        if (s != MS_OK)
            ms_ctx_log(n->ctx, MS_LOG_WARN, "%s for event %s not published: %s", NOTIFY_EVENT_SENT,
                       cause ? cause : "?", ms_last_error());
        ms_message_unref(ev);
    }
}

/* The notification of one event: {event_id, event, user_id, to, text, time}. */
static ms_status build_record(const char *event_id, const char *subject, const json_t *payload,
                              const char *text, json_t **out)
{
    char now[MS_TIMESTAMP_LEN + 1];
    json_t *uid = json_object_get(payload, USER_FIELD_ID);
    json_t *to = json_object_get(payload, USER_FIELD_EMAIL);

    ms_timestamp_now(now);
    *out = json_pack("{s:s, s:s, s:O, s:s, s:s, s:s}", NOTIFY_FIELD_EVENT_ID, event_id,
                     NOTIFY_FIELD_EVENT, subject, NOTIFY_FIELD_USER_ID,
                     json_is_string(uid) ? uid : json_null(), NOTIFY_FIELD_TO,
                     json_is_string(to) ? json_string_value(to) : "", NOTIFY_FIELD_TEXT, text,
                     NOTIFY_FIELD_TIME, now);
    return *out ? MS_OK : ns__fail(MS_ERR_NO_MEMORY, "notification: building the record");
}

static ms_status on_user_event(notification_service *n, const ms_message *in)
{
    const char *subject = ms_message_subject(in);
    const char *id = ms_message_id(in);
    const char *event = subject + strlen(USER_EVENT_PREFIX);
    const ns_template *tmpl;
    json_t *payload = NULL, *record = NULL, *written = NULL;
    char *text = NULL;
    ms_status s;

    if (id == NULL || id[0] == '\0')
        return ns__fail(MS_ERR_SCHEMA,
                        "%s: the event has no Ms-Id header: without an id it cannot be "
                        "delivered exactly once (publish it with ms_msg_event)",
                        subject);
    if (strlen(id) > NOTIFY_EVENT_ID_MAX)
        return ns__fail(MS_ERR_SCHEMA, "%s: the event id is longer than %d bytes", subject,
                        NOTIFY_EVENT_ID_MAX);
    if (ns__outbox_seen(n->outbox, id)) {
        n->duplicates++;
        ms_ctx_log(n->ctx, MS_LOG_DEBUG, "event %s (%s) already delivered: ignored", id, subject);
        return MS_OK;
    }
    tmpl = ns__config_template(&n->cfg, event);
    if (tmpl == NULL) {
        n->skipped++;
        ms_ctx_log(n->ctx, MS_LOG_DEBUG, "no template for %s: not notified", subject);
        return MS_OK;
    }
    if (ms_message_len(in) == 0)
        return ns__fail(MS_ERR_SCHEMA, "%s: the event has no payload (a user object)", subject);
    s = ms_message_json(in, &payload);
    if (s != MS_OK)
        return ns__fail(s, "%s: %s", subject, ms_last_error());
    if (!json_is_object(payload)) {
        s = ns__fail(MS_ERR_SCHEMA, "%s: the payload must be a JSON object (a user)", subject);
        goto done;
    }
    if ((s = ns__template_render(tmpl, payload, &text)) != MS_OK ||
        (s = build_record(id, subject, payload, text, &record)) != MS_OK)
        goto done;
    written = json_array();
    if (written == NULL) {
        s = ns__fail(MS_ERR_NO_MEMORY, "notification: allocating");
        goto done;
    }
    s = ns__outbox_deliver(n->outbox, record, written);
    if (s != MS_OK)
        ms_ctx_log(n->ctx, MS_LOG_WARN, "%s", ms_last_error());
    /* Queued for retry (MS_ERR_IO) is accepted, not failed: health says
     * degraded until the outbox works again. Returning an error would count
     * toward a supervisor restart, which cannot mend a disk and would lose
     * the queue. Dropped (MS_ERR_FULL) is a failure. */
    if (s == MS_ERR_IO)
        s = MS_OK;
    /* Those written (queued ones flushed first) are announced even when this
     * one was dropped; the status's detail is kept across the publishing. */
    if (json_array_size(written) > 0) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", ms_last_error());
        emit_sent(n, written);
        if (s != MS_OK)
            s = ns__fail(s, "%s", detail);
    }
done:
    json_decref(written);
    json_decref(record);
    json_decref(payload);
    free(text);
    return s;
}

static ms_status on_outbox_request(notification_service *n, const ms_message *in,
                                   ms_message **reply)
{
    long long limit = NOTIFY_OUTBOX_LIMIT_DEFAULT;
    json_t *req = NULL, *body = NULL, *list;
    const char *key;
    json_t *v;
    ms_status s = MS_OK;

    if (ms_message_len(in) > 0) {
        s = ms_message_json(in, &req);
        if (s != MS_OK)
            return ns__fail(s, "outbox: %s", ms_last_error());
        if (!json_is_object(req)) {
            s = ns__fail(MS_ERR_SCHEMA, "outbox: the payload must be a JSON object");
            goto done;
        }
        json_object_foreach(req, key, v)
        {
            if (strcmp(key, NOTIFY_FIELD_LIMIT) != 0) {
                s = ns__fail(MS_ERR_SCHEMA, "outbox: unknown field '%.64s' (allowed: 'limit')",
                             key);
                goto done;
            }
            if (!json_is_integer(v) || json_integer_value(v) < 1 ||
                json_integer_value(v) > NOTIFY_OUTBOX_LIMIT_MAX) {
                s = ns__fail(MS_ERR_SCHEMA, "outbox: field 'limit' must be an integer 1..%d",
                             NOTIFY_OUTBOX_LIMIT_MAX);
                goto done;
            }
            limit = json_integer_value(v);
        }
    }
    list = ns__outbox_recent(n->outbox, (size_t)limit);
    body = json_pack("{s:o?, s:I, s:s}", NOTIFY_FIELD_NOTIFICATIONS, list, NOTIFY_FIELD_PENDING,
                     (json_int_t)ns__outbox_pending(n->outbox), NOTIFY_FIELD_OUTBOX,
                     ns__outbox_file(n->outbox));
    if (list == NULL || body == NULL) {
        s = ns__fail(MS_ERR_NO_MEMORY, "outbox: building the reply");
        goto done;
    }
    if (ms_message_reply(in) != NULL)
        s = ms_msg_response(in, NOTIFICATION_SERVICE_NAME, body, reply);
done:
    json_decref(body);
    json_decref(req);
    return s;
}

static ms_status ns_handle(void *self, const ms_message *in, ms_message **reply)
{
    notification_service *n = self;
    const char *subject = ms_message_subject(in);

    if (strcmp(subject, NOTIFY_SUBJECT_OUTBOX) == 0)
        return on_outbox_request(n, in, reply);
    if (strncmp(subject, USER_EVENT_PREFIX, strlen(USER_EVENT_PREFIX)) == 0)
        return on_user_event(n, in);
    return ns__fail(MS_ERR_NOT_FOUND, "notification-service: not a subject of mine: %.200s",
                    subject);
}

static ms_health ns_health(void *self)
{
    notification_service *n = self;
    ms_health h = {.status = MS_HEALTH_HEALTHY, .detail = ""};
    json_t *written = json_array();
    ms_status s;

    if (n->outbox == NULL) {
        h.status = MS_HEALTH_UNHEALTHY;
        snprintf(h.detail, sizeof h.detail, "not initialized");
        json_decref(written);
        return h;
    }
    /* Retry what waits; then make sure the outbox can still be opened. */
    s = ns__outbox_retry(n->outbox, written);
    if (written != NULL && json_array_size(written) > 0) {
        char detail[sizeof h.detail];
        snprintf(detail, sizeof detail, "%s", ms_last_error());
        ms_ctx_log(n->ctx, MS_LOG_INFO, "%zu pending notifications delivered",
                   json_array_size(written));
        emit_sent(n, written);
        if (s != MS_OK)
            (void)ns__fail(s, "%s", detail);
    }
    if (s == MS_OK)
        s = ns__outbox_probe(n->outbox);
    if (s != MS_OK) {
        h.status = MS_HEALTH_DEGRADED;
        snprintf(h.detail, sizeof h.detail, "%s", ms_last_error());
    } else if (ns__outbox_dropped(n->outbox) > 0) {
        /* Writable again, but some were lost: say so until restarted. */
        h.status = MS_HEALTH_DEGRADED;
        snprintf(h.detail, sizeof h.detail,
                 "outbox writable, but %zu notifications were dropped while it was not "
                 "(retry queue full)",
                 ns__outbox_dropped(n->outbox));
    }
    json_decref(written);
    return h;
}

static ms_status ns_run_tests(void *self, ms_test_report *report)
{
    (void)self;
    return ns__selftest(report);
}

static const ms_topic topics[] = {
    {USER_EVENT_PATTERN, 0},
    {NOTIFY_SUBJECT_OUTBOX, 0},
    {NULL, 0},
};

static const ms_component_ops notification_service_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {.name = NOTIFICATION_SERVICE_NAME,
                 .version = NOTIFICATION_SERVICE_VERSION,
                 .description = "Notifies users of their account events through a file outbox"},
    .flags = 0,
    .create = ns_create,
    .destroy = ns_destroy,
    .initialize = ns_initialize,
    .shutdown = ns_shutdown,
    .handle_config_change = ns_config_change,
    .topics = topics,
    .handle_message = ns_handle,
    .health_check = ns_health,
    .run_tests = ns_run_tests,
};

MS_COMPONENT_EXPORT(notification_service_ops)
