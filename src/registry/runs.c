/*
 * runs.c - runs of an agent's action pipeline and their steps.
 *
 * A run is begun for a decision and moves through steps (change, build,
 * test, version, deploy); each update appends a step record (its state and
 * detail: exit status, duration, log file) and moves the run's current
 * step and state. A run that ended is closed to further updates, so a
 * resumed pipeline (an approved escalation) begins a new run rather than
 * rewriting history.
 */
#include <string.h>

#include "core/error.h"
#include "registry/registry_internal.h"

static bool known_state(const char *s)
{
    static const char *const states[] = {"running", "succeeded", "failed", "escalated",
                                         "cancelled"};

    for (size_t i = 0; s != NULL && i < sizeof states / sizeof states[0]; i++)
        if (strcmp(s, states[i]) == 0)
            return true;
    return false;
}

ms_status ms_registry_run_begin(ms_registry *reg, const char *component, int64_t decision_id,
                                int64_t *run_id)
{
    sqlite3_stmt *q = NULL;
    char now[40];
    ms_status s;

    if (reg == NULL || component == NULL || *component == '\0' || run_id == NULL)
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: run_begin: component and run_id are required");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = ms__reg_prepare(reg,
                        "INSERT INTO runs (time, component, decision_id, updated_time)"
                        " VALUES (?1, ?2, ?3, ?1)",
                        &q);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, now);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 2, component);
    if (s == MS_OK && (decision_id > 0 ? sqlite3_bind_int64(q, 3, decision_id)
                                       : sqlite3_bind_null(q, 3)) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE) {
        s = sqlite3_extended_errcode(reg->db) == SQLITE_CONSTRAINT_FOREIGNKEY
                ? ms__err(MS_ERR_NOT_FOUND, "registry: run_begin: no decision %lld",
                          (long long)decision_id)
                : ms__reg_fail(reg, "beginning a run");
    }
    if (s == MS_OK)
        *run_id = sqlite3_last_insert_rowid(reg->db);
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

/* The run's state, locked by the caller: MS_ERR_NOT_FOUND when none. */
static ms_status run_state(ms_registry *reg, int64_t run_id, char *state, size_t cap)
{
    sqlite3_stmt *q = NULL;
    ms_status s = ms__reg_prepare(reg, "SELECT state FROM runs WHERE id = ?1", &q);
    int rc;

    if (s != MS_OK)
        return s;
    if (sqlite3_bind_int64(q, 1, run_id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            snprintf(state, cap, "%s", (const char *)sqlite3_column_text(q, 0));
        else if (rc == SQLITE_DONE)
            s = ms__err(MS_ERR_NOT_FOUND, "no run %lld", (long long)run_id);
        else
            s = ms__reg_fail(reg, "reading a run");
    }
    sqlite3_finalize(q);
    return s;
}

ms_status ms_registry_run_update(ms_registry *reg, int64_t run_id, const char *step,
                                 const char *state, const json_t *detail)
{
    sqlite3_stmt *q = NULL;
    char now[40], current[32];
    ms_status s;

    if (reg == NULL || step == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: run_update: reg and step are required");
    if (!known_state(state))
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: run state '%s' is not running, succeeded, failed, escalated or "
                       "cancelled",
                       state ? state : "(null)");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    if ((s = run_state(reg, run_id, current, sizeof current)) != MS_OK)
        goto cleanup;
    if (strcmp(current, "running") != 0) {
        s = ms__err(MS_ERR_STATE, "run %lld already ended (%s): begin a new run", (long long)run_id,
                    current);
        goto cleanup;
    }
    s = ms__reg_prepare(reg,
                        "INSERT INTO run_steps (run_id, seq, time, step, state, detail_json)"
                        " SELECT ?1, coalesce(max(seq), 0) + 1, ?2, ?3, ?4, ?5 FROM run_steps"
                        " WHERE run_id = ?1",
                        &q);
    if (s == MS_OK && sqlite3_bind_int64(q, 1, run_id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        const char *texts[] = {now, step, state};

        s = ms__reg_bind_texts(reg, q, 2, texts, 3);
    }
    if (s == MS_OK)
        s = ms__reg_bind_json(reg, q, 5, detail);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "recording a step");
    sqlite3_finalize(q);
    q = NULL;
    if (s == MS_OK)
        s = ms__reg_prepare(
            reg, "UPDATE runs SET step = ?2, state = ?3, updated_time = ?4 WHERE id = ?1", &q);
    if (s == MS_OK && sqlite3_bind_int64(q, 1, run_id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 2, step);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 3, state);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 4, now);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "updating a run");
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

ms_status ms_registry_run_get(ms_registry *reg, int64_t run_id, json_t **out)
{
    sqlite3_stmt *q = NULL;
    json_t *run = NULL, *steps = NULL;
    ms_status s;
    int rc;

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: run_get: reg and out are required");
    pthread_mutex_lock(&reg->lock);
    s = ms__reg_prepare(reg,
                        "SELECT id, time, component, decision_id, step, state, updated_time"
                        " FROM runs WHERE id = ?1",
                        &q);
    if (s == MS_OK && sqlite3_bind_int64(q, 1, run_id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            s = ms__reg_row_json(reg, q, &run);
        else if (rc == SQLITE_DONE)
            s = ms__err(MS_ERR_NOT_FOUND, "no run %lld", (long long)run_id);
        else
            s = ms__reg_fail(reg, "reading a run");
    }
    sqlite3_finalize(q);
    q = NULL;
    if (s == MS_OK)
        s = ms__reg_prepare(reg,
                            "SELECT seq, time, step, state, detail_json FROM run_steps"
                            " WHERE run_id = ?1 ORDER BY seq",
                            &q);
    if (s == MS_OK && sqlite3_bind_int64(q, 1, run_id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK)
        s = ms__reg_rows_json(reg, q, &steps);
    /* set_new takes steps whether it succeeds or not */
    if (s == MS_OK && json_object_set_new(run, "steps", steps) != 0)
        s = ms__err(MS_ERR_NO_MEMORY, "registry: building a run");
    sqlite3_finalize(q);
    pthread_mutex_unlock(&reg->lock);
    if (s != MS_OK) {
        json_decref(run);
        return s;
    }
    *out = run;
    return MS_OK;
}

ms_status ms_registry_runs(ms_registry *reg, const char *component, int64_t before_id, size_t limit,
                           json_t **out)
{
    const char *texts[] = {component};

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: runs: reg and out are required");
    return ms__reg_list(reg,
                        "SELECT id, time, component, decision_id, step, state, updated_time"
                        " FROM runs WHERE (?1 IS NULL OR component = ?1) AND (?2 <= 0 OR id < ?2)"
                        " ORDER BY id DESC LIMIT ?3",
                        texts, 1, before_id, limit, out);
}
