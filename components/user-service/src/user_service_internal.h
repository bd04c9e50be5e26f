/*
 * user_service_internal.h - what the files of user-service share.
 *
 *   user_service.c  the vtable: lifecycle, dispatch of requests, events, config
 *   users.c         the five operations: request JSON -> validated -> store ->
 *                   reply JSON (+ the event to emit); no bus, no ctx, so the
 *                   self-test drives them directly
 *   validate.c      field checks (email, name, id, unknown fields) and us__fail
 *   store.c         SQLite: schema, migrations, prepared statements
 *   ../tests/selftest.c  the Testable suite (run_tests)
 *
 * Every name here is hidden (the plugin exports mainstack_component only).
 */
#ifndef USER_SERVICE_INTERNAL_H
#define USER_SERVICE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <mainstack/component.h>
#include <mainstack/status.h>

#include "interface.h"

/* Record the detail of a failure (ms_ctx_error: it becomes ms_last_error()
 * and the Nats-Service-Error header of an error reply) and return s. Control
 * characters in the detail are replaced, as it may quote the caller's input. */
ms_status us__fail(ms_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- store.c ----------------------------------------------------------------
 * One SQLite connection (WAL) on one file; used by one thread at a time (the
 * runtime serialises an instance's calls). Users come back as JSON objects
 * {id, email, name, created_at, updated_at} (new references). */
typedef struct us_store us_store;

#define US_SCHEMA_VERSION 1 /* PRAGMA user_version this build writes and reads */

/* Open (creating when absent) the database at path and bring its schema to
 * US_SCHEMA_VERSION. MS_ERR_IO (SQLite's message and the path),
 * MS_ERR_UNSUPPORTED (a newer schema than this build knows), MS_ERR_NO_MEMORY. */
ms_status us__store_open(const char *path, us_store **out);
void us__store_close(us_store *st); /* NULL-safe */
const char *us__store_path(const us_store *st);
/* The file is still the one opened and answers a query. MS_ERR_IO. */
ms_status us__store_ping(us_store *st);
/* Insert unless max_users (> 0) users exist already. MS_ERR_STATE (email
 * taken, or max_users reached), MS_ERR_IO. */
ms_status us__store_insert(us_store *st, const char *id, const char *email, const char *name,
                           const char *now, long long max_users, json_t **user);
/* MS_ERR_NOT_FOUND, MS_ERR_IO. */
ms_status us__store_get(us_store *st, const char *id, json_t **user);
ms_status us__store_get_by_email(us_store *st, const char *email, json_t **user);
/* Up to limit users with id > after ("" for the first), by id. *users is a
 * new array. */
ms_status us__store_list(us_store *st, const char *after, int limit, json_t **users);
/* email and/or name may be NULL (kept). MS_ERR_NOT_FOUND, MS_ERR_STATE, MS_ERR_IO. */
ms_status us__store_update(us_store *st, const char *id, const char *email, const char *name,
                           const char *now, json_t **user);
/* *user is the row as it was. MS_ERR_NOT_FOUND, MS_ERR_IO. */
ms_status us__store_delete(us_store *st, const char *id, json_t **user);
ms_status us__store_count(us_store *st, long long *out);

/* --- validate.c ------------------------------------------------------------ */

/* Every key of obj is in allowed (NULL-terminated). MS_ERR_SCHEMA naming
 * the first unknown field and the allowed ones. */
ms_status us__check_fields(const json_t *obj, const char *where, const char *const *allowed);
/* The practical email check of interface.h. MS_ERR_SCHEMA naming the field. */
ms_status us__check_email(const char *email, size_t len, const char *where);
/* Non-blank, valid UTF-8 without control characters, <= USER_NAME_MAX bytes. */
ms_status us__check_name(const char *name, size_t len, const char *where);
/* 36 characters of lower-case hex and dashes in the UUID places. */
ms_status us__check_id(const char *id, size_t len, const char *where, const char *field);
/* Valid UTF-8 (no overlong forms, no surrogates, <= U+10FFFF). */
bool us__utf8_valid(const char *s, size_t len);

/* --- users.c --------------------------------------------------------------- */

typedef struct us_config {
    long long max_users;   /* 0: no limit */
    int page_size_default; /* list without "limit": 1..USER_LIST_LIMIT_MAX */
} us_config;

void us__config_default(us_config *cfg);
/* Parse and check a config object ({} gives the defaults). Unknown keys are
 * refused. MS_ERR_SCHEMA naming the key; *out untouched on error. */
ms_status us__config_parse(const json_t *config, us_config *out);

/* What an operation produced: the reply body and, for a change, the event
 * to emit once it is committed (both new references, or NULL). */
typedef struct us_result {
    json_t *reply;
    json_t *event;
    const char *event_subject; /* static string, or NULL */
} us_result;

void us__result_reset(us_result *r); /* decref both, zero */

/* Run operation op ("create", "get", "list", "update", "delete") on req (a
 * JSON object, borrowed). MS_ERR_NOT_FOUND also for an unknown op. The
 * change is committed when MS_OK returns. */
ms_status us__run_op(us_store *st, const us_config *cfg, const char *op, const json_t *req,
                     us_result *out);

/* --- tests/selftest.c ------------------------------------------------------ */

/* The Testable suite: each named test against a fresh temporary database. */
ms_status us__selftest(ms_test_report *report);

#endif
