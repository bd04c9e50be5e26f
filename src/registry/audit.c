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
    if (s == MS_OK) {
        const char *texts[] = {now, actor, action, component, outcome};

        s = ms__reg_bind_texts(reg, q, 1, texts, 5);
    }
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
    const char *texts[] = {component};

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: audit_log: reg and out are required");
    return ms__reg_list(reg,
                        "SELECT id, time, actor, action, component, outcome, detail_json FROM audit"
                        " WHERE (?1 IS NULL OR component = ?1) AND (?2 <= 0 OR id < ?2)"
                        " ORDER BY id DESC LIMIT ?3",
                        texts, 1, before_id, limit, out);
}
