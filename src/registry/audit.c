/*
 * audit.c - the log of state-changing calls made through the front ends.
 *
 * Who (the MCP client's name, the CLI user), what, on which component, the
 * outcome and the arguments: appended, never changed, listed newest first.
 */
#include "core/error.h"
#include "registry/registry_internal.h"

ms_status ms_registry_audit(ms_registry *reg, const char *actor, const char *action,
                            const char *component, const char *outcome, const json_t *detail)
{
    sqlite3_stmt *q = NULL;
    char now[40];
    ms_status s;

    if (reg == NULL || actor == NULL || *actor == '\0' || action == NULL || *action == '\0' ||
        outcome == NULL)
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: audit: actor, action and outcome are required");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = ms__reg_prepare(reg,
                        "INSERT INTO audit (time, actor, action, component, outcome, detail_json)"
                        " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        &q);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, now);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 2, actor);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 3, action);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 4, component);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 5, outcome);
    if (s == MS_OK)
        s = ms__reg_bind_json(reg, q, 6, detail);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "recording an audit entry");
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

ms_status ms_registry_audit_log(ms_registry *reg, const char *component, int64_t before_id,
                                size_t limit, json_t **out)
{
    sqlite3_stmt *q = NULL;
    ms_status s;

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: audit_log: reg and out are required");
    pthread_mutex_lock(&reg->lock);
    s = ms__reg_prepare(reg,
                        "SELECT id, time, actor, action, component, outcome, detail_json FROM audit"
                        " WHERE (?1 IS NULL OR component = ?1) AND (?2 <= 0 OR id < ?2)"
                        " ORDER BY id DESC LIMIT ?3",
                        &q);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, component);
    if (s == MS_OK && (sqlite3_bind_int64(q, 2, before_id) != SQLITE_OK ||
                       sqlite3_bind_int64(q, 3, ms__reg_page(limit)) != SQLITE_OK))
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK)
        s = ms__reg_rows_json(reg, q, out);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&reg->lock);
    return s;
}
