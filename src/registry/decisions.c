/*
 * decisions.c - the agents' decisions.
 *
 * A decision is recorded once per (component, event id): the unique index
 * on that pair makes a second insert for a redelivered event, or for the
 * same event seen by two agents of one component, a no-op that returns the
 * first decision. An agent acknowledges an event only after this call, so
 * a crash between deciding and recording means the event is decided again,
 * and a crash after recording means its redelivery is recognised here.
 */
#include <string.h>

#include "core/error.h"
#include "registry/registry_internal.h"

static bool known_decision(const char *d)
{
    return strcmp(d, "ignore") == 0 || strcmp(d, "act") == 0 || strcmp(d, "escalate") == 0;
}

static ms_status check(const ms_registry_decision *d)
{
    if (d->component == NULL || *d->component == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "registry: decision: component is required");
    if (d->decision == NULL || !known_decision(d->decision))
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: decision: '%s' is not ignore, act or escalate",
                       d->decision ? d->decision : "(null)");
    if (d->rule == NULL || *d->rule == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "registry: decision: rule is required");
    if (d->reason == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: decision: reason is required");
    return MS_OK;
}

static ms_status find_existing(ms_registry *reg, const ms_registry_decision *d, int64_t *id)
{
    sqlite3_stmt *q = NULL;
    ms_status s =
        ms__reg_prepare(reg, "SELECT id FROM decisions WHERE component = ?1 AND event_id = ?2", &q);

    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, d->component);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 2, d->event_id);
    if (s == MS_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            *id = sqlite3_column_int64(q, 0);
        else
            s = ms__reg_fail(reg, "finding the earlier decision");
    }
    sqlite3_finalize(q);
    return s;
}

ms_status ms_registry_record_decision(ms_registry *reg, const ms_registry_decision *d, int64_t *id,
                                      bool *fresh)
{
    sqlite3_stmt *q = NULL;
    char now[40];
    int64_t row = 0;
    bool inserted = false;
    ms_status s;

    if (reg == NULL || d == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: record_decision: reg and d are required");
    if ((s = check(d)) != MS_OK)
        return s;
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = ms__reg_prepare(reg,
                        "INSERT OR IGNORE INTO decisions (time, component, decision, rule, reason,"
                        " event_id, subject, type, agent, detail_json)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                        &q);
    if (s == MS_OK) {
        const char *texts[] = {now,         d->component, d->decision, d->rule, d->reason,
                               d->event_id, d->subject,   d->type,     d->agent};

        s = ms__reg_bind_texts(reg, q, 1, texts, 9);
    }
    if (s == MS_OK)
        s = ms__reg_bind_json(reg, q, 10, d->detail);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "recording a decision");
    if (s == MS_OK) {
        inserted = sqlite3_changes(reg->db) == 1;
        if (inserted)
            row = sqlite3_last_insert_rowid(reg->db);
        else if (d->event_id != NULL)
            s = find_existing(reg, d, &row);
        else
            s = ms__reg_fail(reg, "recording a decision (nothing inserted)");
    }
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    if (s == MS_OK) {
        if (id != NULL)
            *id = row;
        if (fresh != NULL)
            *fresh = inserted;
    }
    return s;
}

ms_status ms_registry_decisions(ms_registry *reg, const char *component, int64_t before_id,
                                size_t limit, json_t **out)
{
    const char *texts[] = {component};

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: decisions: reg and out are required");
    return ms__reg_list(reg,
                        "SELECT id, time, component, decision, rule, reason, event_id, subject,"
                        " type, agent, detail_json FROM decisions"
                        " WHERE (?1 IS NULL OR component = ?1) AND (?2 <= 0 OR id < ?2)"
                        " ORDER BY id DESC LIMIT ?3",
                        texts, 1, before_id, limit, out);
}
