/*
 * registry_internal.h - what the files of the registry share (internal).
 *
 * registry.c opens the database, migrates it and provides the statement
 * helpers below; decisions.c, escalations.c, runs.c and audit.c each hold
 * one table family. Every public call takes reg->lock for its whole length
 * (one SQLite connection, used by one thread at a time) and every write runs
 * in a BEGIN IMMEDIATE transaction, so it waits for other processes' writers
 * up to the busy timeout instead of failing half-way.
 */
#ifndef MS_REGISTRY_INTERNAL_H
#define MS_REGISTRY_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <sqlite3.h>

#include "mainstack/registry.h"

struct ms_registry {
    sqlite3 *db;
    char *path;
    pthread_mutex_t lock;
};

/* Default and largest page of a listing. */
#define MS_REGISTRY_PAGE_DEFAULT 50
#define MS_REGISTRY_PAGE_MAX 1000

/* MS_ERR_IO naming the file, what was being done and SQLite's message. */
ms_status ms__reg_fail(ms_registry *reg, const char *what);

/* Run sql (no results). */
ms_status ms__reg_exec(ms_registry *reg, const char *sql, const char *what);

/* Prepare sql; on failure MS_ERR_IO. */
ms_status ms__reg_prepare(ms_registry *reg, const char *sql, sqlite3_stmt **out);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK (rollback never fails: best effort). */
ms_status ms__reg_begin(ms_registry *reg);
ms_status ms__reg_commit(ms_registry *reg);
void ms__reg_rollback(ms_registry *reg);

/* Bind a text (NULL binds SQL NULL) / a JSON value serialised compactly
 * (NULL binds NULL). MS_ERR_NO_MEMORY, MS_ERR_IO. */
ms_status ms__reg_bind_text(ms_registry *reg, sqlite3_stmt *q, int i, const char *text);
ms_status ms__reg_bind_json(ms_registry *reg, sqlite3_stmt *q, int i, const json_t *v);
/* Bind texts[0..n) as parameters first, first+1, ... */
ms_status ms__reg_bind_texts(ms_registry *reg, sqlite3_stmt *q, int first, const char *const *texts,
                             int n);

/* The current row of q as a JSON object keyed by column name: integers,
 * reals and texts as such, NULL as null; a column whose name ends in
 * "_json" is parsed back into JSON and keyed without the suffix. *out is
 * the caller's. MS_ERR_NO_MEMORY, MS_ERR_IO (stored JSON that no longer
 * parses). */
ms_status ms__reg_row_json(ms_registry *reg, sqlite3_stmt *q, json_t **out);

/* Step q to the end and collect every row into a new array. */
ms_status ms__reg_rows_json(ms_registry *reg, sqlite3_stmt *q, json_t **out);

/* A paged listing: sql binds texts[0..ntexts) as ?1..?n (NULL binds NULL),
 * then before_id as ?n+1 and the page size as ?n+2; every row becomes an
 * object of the array *out. Takes reg->lock. */
ms_status ms__reg_list(ms_registry *reg, const char *sql, const char *const *texts, int ntexts,
                       int64_t before_id, size_t limit, json_t **out);

/* limit 0 -> the default page, capped at the largest. */
int64_t ms__reg_page(size_t limit);

/* The current UTC time, RFC 3339 with microseconds. */
void ms__reg_now(char out[40]);

/* A step or outcome name: 1..32 of [a-z0-9-] (deployments.c). */
bool ms__reg_token_ok(const char *s);
/* Set a version's state (versions.c) / append a step to a deployment
 * (deployments.c) at time now, reg->lock held, inside the caller's
 * transaction, so several make one. Arguments already checked. */
ms_status ms__reg_version_set_state_locked(ms_registry *reg, const char *component,
                                           const char *version, const char *state, const char *now);
ms_status ms__reg_deployment_update_locked(ms_registry *reg, int64_t id, const char *step,
                                           const char *outcome, const json_t *detail,
                                           const char *now);

#endif
