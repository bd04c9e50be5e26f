/*
 * escalations.c - what an agent could not decide or do alone.
 *
 * An escalation is opened with the reason and the detail a person needs
 * (and an agent needs to resume: the message, the step that stopped, the
 * candidate), and resolved once: the update only applies to a row still
 * open, so of two resolvers racing, in one process or several, exactly one
 * wins and the other learns how and by whom it was resolved.
 */
#include <string.h>

#include "core/error.h"
#include "registry/registry_internal.h"

#define ESCALATION_COLUMNS                                                                         \
    "id, time, component, decision_id, state, reason, detail_json, resolved_time, resolved_by,"    \
    " note"

static const char *const state_names[] = {
    [MS_ESCALATION_OPEN] = "open",
    [MS_ESCALATION_APPROVED] = "approved",
    [MS_ESCALATION_REJECTED] = "rejected",
};

const char *ms_escalation_state_str(ms_escalation_state s)
{
    if ((unsigned)s >= sizeof state_names / sizeof state_names[0])
        return "unknown";
    return state_names[s];
}

ms_status ms_escalation_state_parse(const char *name, ms_escalation_state *out)
{
    for (size_t i = 0; name != NULL && i < sizeof state_names / sizeof state_names[0]; i++) {
        if (strcmp(name, state_names[i]) == 0) {
            if (out != NULL)
                *out = (ms_escalation_state)i;
            return MS_OK;
        }
    }
    return ms__err(MS_ERR_INVALID_ARG, "escalation state '%s' is not open, approved or rejected",
                   name ? name : "(null)");
}

ms_status ms_registry_escalate(ms_registry *reg, const char *component, int64_t decision_id,
                               const char *reason, const json_t *detail, int64_t *id)
{
    sqlite3_stmt *q = NULL;
    char now[40];
    ms_status s;

    if (reg == NULL || component == NULL || *component == '\0' || reason == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: escalate: component and reason are required");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = ms__reg_prepare(
        reg,
        "INSERT INTO escalations (time, component, decision_id, reason, detail_json)"
        " VALUES (?1, ?2, ?3, ?4, ?5)",
        &q);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, now);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 2, component);
    if (s == MS_OK && (decision_id > 0 ? sqlite3_bind_int64(q, 3, decision_id)
                                       : sqlite3_bind_null(q, 3)) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 4, reason);
    if (s == MS_OK)
        s = ms__reg_bind_json(reg, q, 5, detail);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE) {
        s = sqlite3_extended_errcode(reg->db) == SQLITE_CONSTRAINT_FOREIGNKEY
                ? ms__err(MS_ERR_NOT_FOUND, "registry: escalate: no decision %lld",
                          (long long)decision_id)
                : ms__reg_fail(reg, "opening an escalation");
    }
    if (s == MS_OK && id != NULL)
        *id = sqlite3_last_insert_rowid(reg->db);
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

ms_status ms_registry_escalations(ms_registry *reg, const char *component, const char *state,
                                  int64_t before_id, size_t limit, json_t **out)
{
    const char *texts[] = {component, state};
    ms_status s;

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: escalations: reg and out are required");
    if (state != NULL && (s = ms_escalation_state_parse(state, NULL)) != MS_OK)
        return s;
    return ms__reg_list(reg,
                        "SELECT " ESCALATION_COLUMNS " FROM escalations"
                        " WHERE (?1 IS NULL OR component = ?1) AND (?2 IS NULL OR state = ?2)"
                        " AND (?3 <= 0 OR id < ?3) ORDER BY id DESC LIMIT ?4",
                        texts, 2, before_id, limit, out);
}

/* The escalation row id, locked by the caller. */
static ms_status get_locked(ms_registry *reg, int64_t id, json_t **out)
{
    sqlite3_stmt *q = NULL;
    ms_status s =
        ms__reg_prepare(reg, "SELECT " ESCALATION_COLUMNS " FROM escalations WHERE id = ?1", &q);
    int rc;

    if (s != MS_OK)
        return s;
    if (sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            s = ms__reg_row_json(reg, q, out);
        else if (rc == SQLITE_DONE)
            s = ms__err(MS_ERR_NOT_FOUND, "no escalation %lld (mstack escalations list shows them)",
                        (long long)id);
        else
            s = ms__reg_fail(reg, "reading an escalation");
    }
    sqlite3_finalize(q);
    return s;
}

ms_status ms_registry_escalation_get(ms_registry *reg, int64_t id, json_t **out)
{
    ms_status s;

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: escalation_get: reg and out are required");
    pthread_mutex_lock(&reg->lock);
    s = get_locked(reg, id, out);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

/* The escalation already resolved: MS_ERR_STATE saying how. */
static ms_status already_resolved(const json_t *row, int64_t id)
{
    const char *state = json_string_value(json_object_get(row, "state"));
    const char *by = json_string_value(json_object_get(row, "resolved_by"));
    const char *when = json_string_value(json_object_get(row, "resolved_time"));

    return ms__err(MS_ERR_STATE, "escalation %lld was already %s by %s at %s", (long long)id,
                   state ? state : "resolved", by ? by : "someone",
                   when ? when : "an unknown time");
}

ms_status ms_registry_escalation_resolve(ms_registry *reg, int64_t id, bool approve,
                                         const char *note, const char *by, json_t **out)
{
    sqlite3_stmt *q = NULL;
    json_t *row = NULL;
    char now[40];
    ms_status s;

    if (reg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: escalation_resolve: reg is required");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = ms__reg_prepare(reg,
                        "UPDATE escalations SET state = ?2, note = ?3, resolved_by = ?4,"
                        " resolved_time = ?5 WHERE id = ?1 AND state = 'open'",
                        &q);
    if (s == MS_OK && sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        const char *texts[] = {approve ? "approved" : "rejected", note, by, now};

        s = ms__reg_bind_texts(reg, q, 2, texts, 4);
    }
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "resolving an escalation");
    if (s == MS_OK) {
        bool changed = sqlite3_changes(reg->db) == 1;

        s = get_locked(reg, id, &row); /* MS_ERR_NOT_FOUND when there is no such id */
        if (s == MS_OK && !changed)
            s = already_resolved(row, id);
    }
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK) {
        ms__reg_rollback(reg);
        json_decref(row);
        row = NULL;
    }
    pthread_mutex_unlock(&reg->lock);
    if (out != NULL)
        *out = row;
    else
        json_decref(row);
    return s;
}
