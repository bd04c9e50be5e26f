/*
 * interface.h - the contract of notification-service that other components
 * may use: what it consumes, the event it emits, its request subject, the
 * fields of a notification, its config keys and limits.
 *
 * interface.json is the machine-readable form of the same contract (with the
 * JSON Schemas of every payload). The user events it consumes are
 * user-service's (user-service/src/interface.h): their payload is a user,
 * whose fields the templates name.
 */
#ifndef NOTIFICATION_SERVICE_INTERFACE_H
#define NOTIFICATION_SERVICE_INTERFACE_H

#define NOTIFICATION_SERVICE_NAME "notification-service"
#define NOTIFICATION_SERVICE_VERSION "1.0.0"

/* Consumed: user-service's USER_EVENT_PATTERN (events.user.>); the last
 * token, <event>, picks the template; the payload is a user (USER_FIELD_*).
 * The event's Ms-Id is its identity: an id already delivered is not
 * notified again. */

/* Emitted after each notification is written (and fsync'd) to the outbox:
 * payload = the notification below; Ms-Correlation-Id = the user event id. */
#define NOTIFY_EVENT_SENT "events.notification.sent"

/* Request: the last notifications delivered.
 *   {"limit": 1..100 (default 10)} ->
 *   {"notifications": [notification, ... oldest first], "pending": n,
 *    "outbox": "<file name>"} */
#define NOTIFY_SUBJECT_OUTBOX "component.notification-service.outbox"
#define NOTIFY_FIELD_LIMIT "limit"
#define NOTIFY_FIELD_NOTIFICATIONS "notifications"
#define NOTIFY_FIELD_PENDING "pending"
#define NOTIFY_FIELD_OUTBOX "outbox"
#define NOTIFY_OUTBOX_LIMIT_DEFAULT 10
#define NOTIFY_OUTBOX_LIMIT_MAX 100

/* A notification: one JSON line of the outbox file, and the sent event.
 *   {"event_id": "<Ms-Id of the user event>", "event": "events.user.created",
 *    "user_id": "<payload id, or null>", "to": "<payload email, or \"\">",
 *    "text": "<the rendered template>", "time": "<RFC 3339 UTC>"} */
#define NOTIFY_FIELD_EVENT_ID "event_id"
#define NOTIFY_FIELD_EVENT "event"
#define NOTIFY_FIELD_USER_ID "user_id"
#define NOTIFY_FIELD_TO "to"
#define NOTIFY_FIELD_TEXT "text"
#define NOTIFY_FIELD_TIME "time"

/* Config (all optional; unknown keys are refused):
 *   {"templates": {"<event>": "<template>", ...},   replaces the defaults whole;
 *                                                   an event without one is
 *                                                   not notified
 *    "outbox": "<file name in the data directory>",  default outbox.jsonl
 *    "pending_max": n}                               notifications kept for retry
 *                                                   while the outbox fails
 * A template is text with {{field}} placeholders (field: letters, digits,
 * '_'; spaces inside the braces allowed) replaced by the event payload's
 * field: a string as is, a number or boolean as JSON text, anything else or
 * a missing field as "". A '{{' without its '}}' is refused at config time
 * with its byte offset. */
#define NOTIFY_CONFIG_TEMPLATES "templates"
#define NOTIFY_CONFIG_OUTBOX "outbox"
#define NOTIFY_CONFIG_PENDING_MAX "pending_max"
#define NOTIFY_DEFAULT_OUTBOX "outbox.jsonl"
#define NOTIFY_DEFAULT_PENDING_MAX 1000
#define NOTIFY_PENDING_MAX_LIMIT 100000
#define NOTIFY_TEMPLATE_MAX 4096 /* bytes of one template */
#define NOTIFY_FIELD_NAME_MAX 64 /* bytes of a placeholder name */
#define NOTIFY_EVENT_ID_MAX 128  /* bytes of an Ms-Id accepted */

/* Errors of handle_message (the runtime's error reply / stats):
 *   MS_ERR_SCHEMA  (400) an event without Ms-Id, a payload that is not an
 *                  object, a bad outbox request
 *   MS_ERR_PARSE   (400) a payload that is not JSON
 *   MS_ERR_FULL    (503) the outbox could not be written and the retry queue
 *                  (pending_max) is full: the notification is dropped
 * An outbox that cannot be written is not an error of the event: the
 * notification is queued, retried on the next event and each health check,
 * and health is degraded (with the reason) until it is written. */

#endif
