/*
 * interface.h - the contract of user-service that other components may use:
 * its request subjects, the events it emits, the JSON field names of its
 * payloads, its limits and the errors a request can get.
 *
 * interface.json is the machine-readable form of the same contract (with the
 * JSON Schemas of every payload); the two change together, and any change
 * here that a consumer could notice bumps the component's version (a removed
 * or renamed subject or field is a major bump).
 */
#ifndef USER_SERVICE_INTERFACE_H
#define USER_SERVICE_INTERFACE_H

#define USER_SERVICE_NAME "user-service"
#define USER_SERVICE_VERSION "1.0.0"

/* Requests (JSON in, JSON out). Every request payload is a JSON object (an
 * empty payload counts as {}); a field not listed for the operation is
 * refused. */
#define USER_SUBJECT_CREATE "component.user-service.create" /* {email, name} -> user */
#define USER_SUBJECT_GET "component.user-service.get"       /* {id} | {email} -> user */
#define USER_SUBJECT_LIST "component.user-service.list"     /* {limit?, cursor?} -> page */
#define USER_SUBJECT_UPDATE "component.user-service.update" /* {id, email?, name?} -> user */
#define USER_SUBJECT_DELETE "component.user-service.delete" /* {id} -> user (as it was) */
#define USER_SUBJECT_PATTERN "component.user-service.*"

/* Events, published after the change is committed; the payload is the user
 * (for deleted: as it was), the message id (Ms-Id) is the event id. */
#define USER_EVENT_CREATED "events.user.created"
#define USER_EVENT_UPDATED "events.user.updated"
#define USER_EVENT_DELETED "events.user.deleted"
#define USER_EVENT_PATTERN "events.user.>"

/* Field names. A user is
 *   {"id": "<UUIDv7>", "email": "...", "name": "...",
 *    "created_at": "<RFC 3339 UTC>", "updated_at": "<RFC 3339 UTC>"}  */
#define USER_FIELD_ID "id"
#define USER_FIELD_EMAIL "email"
#define USER_FIELD_NAME "name"
#define USER_FIELD_CREATED_AT "created_at"
#define USER_FIELD_UPDATED_AT "updated_at"
/* list: request {"limit", "cursor"}, response {"users": [user...], "next_cursor": string|null} */
#define USER_FIELD_LIMIT "limit"
#define USER_FIELD_CURSOR "cursor"
#define USER_FIELD_USERS "users"
#define USER_FIELD_NEXT_CURSOR "next_cursor"

/* Limits. */
#define USER_ID_LEN 36          /* UUIDv7 text, lower-case hex */
#define USER_EMAIL_MAX 254      /* bytes, whole address */
#define USER_EMAIL_LOCAL_MAX 64 /* bytes before the '@' */
#define USER_NAME_MAX 200       /* bytes of UTF-8 */
#define USER_LIST_LIMIT_MAX 100
#define USER_LIST_LIMIT_DEFAULT 20 /* config page_size_default overrides it */

/* Errors. A failed request is answered with an error reply: headers
 * Nats-Service-Error (the detail, naming the field) and
 * Nats-Service-Error-Code (set by the runtime from the status below).
 *
 *   MS_ERR_PARSE      the payload is not JSON
 *   MS_ERR_SCHEMA     a field is missing, of the wrong type, out of its limits,
 *                     unknown, or the email is not well-formed
 *   MS_ERR_PARSE, MS_ERR_SCHEMA   code 400
 *   MS_ERR_STATE      code 409: the email is already used by another user
 *                     (compared case-insensitively), or config max_users
 *                     users exist (a create); the detail says which
 *   MS_ERR_NOT_FOUND  code 404: no user with that id (or email)
 *   MS_ERR_IO         code 500: the database failed (the detail has SQLite's
 *                     message); like every 5xx it counts toward a restart
 * Nothing is stored, and no event is emitted, when a request fails. */

#endif
