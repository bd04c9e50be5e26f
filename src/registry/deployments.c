/*
 * deployments.c - the record of each deploy of a component (schema 2's
 * deployments table): who started it, from which version to which, and
 * what each step found.
 *
 * A deployment is begun in state "running" by `mstack deploy` once it
 * holds the component's deploy lock; every update names the step that
 * finished ("test", "compare", "promote", ...) and its outcome, which
 * becomes the deployment's state, and appends {step, outcome, time,
 * detail} to the record's list of steps (detail_json is
 * {"who", "step", "steps": [...]}). The last step's detail is also kept as
 * the record's "result" (for the test step, the comparison table), so a
 * reader does not need to walk the list. Updates are not closed by an
 * outcome: the promotion that follows a passed comparison writes to the
 * same record.
 */
#include <string.h>

#include "core/error.h"
#include "registry/registry_internal.h"

static bool blank(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* An outcome or step name: 1..32 of [a-z0-9-]. */
bool ms__reg_token_ok(const char *s)
{
    size_t n = s == NULL ? 0 : strlen(s);

    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

ms_status ms_registry_deployment_start(ms_registry *reg, const char *component,
                                       const char *from_version, const char *to_version,
                                       const char *who, const json_t *request,
                                       const ms_version_change *changes, size_t n, int64_t *id)
{
    sqlite3_stmt *q = NULL;
    json_t *detail = NULL;
    char now[40];
    ms_status s;

    if (reg == NULL || blank(component) || blank(to_version) || blank(who) || id == NULL ||
        (n > 0 && changes == NULL))
        return ms__err(MS_ERR_INVALID_ARG, "registry: deployment_begin: component, to_version, "
                                           "who and id are required");
    for (size_t i = 0; i < n; i++)
        if (blank(changes[i].version) || !ms_registry_version_state_valid(changes[i].state))
            return ms__err(MS_ERR_INVALID_ARG,
                           "registry: deployment_start: change %zu: a version and a valid "
                           "state are required",
                           i);
    detail =
        json_pack("{s:s, s:s, s:[], s:O?}", "who", who, "step", "", "steps", "request", request);
    if (detail == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "registry: deployment_begin");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = ms__reg_prepare(reg,
                        "INSERT INTO deployments (time, component, from_version, to_version, kind,"
                        " state, updated_time, detail_json)"
                        " VALUES (?1, ?2, ?3, ?4, 'deploy', 'running', ?1, ?5)",
                        &q);
    if (s == MS_OK) {
        const char *texts[] = {now, component, blank(from_version) ? NULL : from_version,
                               to_version};
        s = ms__reg_bind_texts(reg, q, 1, texts, 4);
    }
    if (s == MS_OK)
        s = ms__reg_bind_json(reg, q, 5, detail);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "beginning a deployment");
    if (s == MS_OK)
        *id = sqlite3_last_insert_rowid(reg->db);
    /* the versions' states change with the record, or not at all */
    for (size_t i = 0; s == MS_OK && i < n; i++)
        s = ms__reg_version_set_state_locked(reg, component, changes[i].version, changes[i].state,
                                             now);
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    json_decref(detail);
    return s;
}

ms_status ms_registry_deployment_begin(ms_registry *reg, const char *component,
                                       const char *from_version, const char *to_version,
                                       const char *who, int64_t *id)
{
    return ms_registry_deployment_start(reg, component, from_version, to_version, who, NULL, NULL,
                                        0, id);
}

/* The stored detail of deployment id (a new reference). Lock held. */
static ms_status stored_detail(ms_registry *reg, int64_t id, json_t **out)
{
    sqlite3_stmt *q = NULL;
    json_error_t jerr;
    ms_status s = ms__reg_prepare(reg, "SELECT detail_json FROM deployments WHERE id = ?1", &q);
    int rc;

    *out = NULL;
    if (s == MS_OK && sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_DONE) {
            s = ms__err(MS_ERR_NOT_FOUND, "registry: no deployment %lld", (long long)id);
        } else if (rc != SQLITE_ROW) {
            s = ms__reg_fail(reg, "reading a deployment");
        } else {
            const char *text = (const char *)sqlite3_column_text(q, 0);
            *out = text != NULL ? json_loads(text, 0, &jerr) : json_object();
            if (!json_is_object(*out)) {
                json_decref(*out);
                *out = NULL;
                s = ms__err(MS_ERR_IO,
                            "registry %s: deployment %lld: stored detail is not a "
                            "JSON object",
                            reg->path, (long long)id);
            }
        }
    }
    sqlite3_finalize(q);
    return s;
}

ms_status ms__reg_deployment_update_locked(ms_registry *reg, int64_t id, const char *step,
                                           const char *outcome, const json_t *detail,
                                           const char *now)
{
    sqlite3_stmt *q = NULL;
    json_t *all = NULL, *steps, *entry = NULL;
    ms_status s;

    if ((s = stored_detail(reg, id, &all)) != MS_OK)
        goto cleanup;
    steps = json_object_get(all, "steps");
    if (!json_is_array(steps)) {
        steps = json_array();
        if (steps == NULL || json_object_set_new(all, "steps", steps) != 0) {
            s = ms__err(MS_ERR_NO_MEMORY, "registry: deployment_update");
            goto cleanup;
        }
    }
    entry = json_pack("{s:s, s:s, s:s, s:O?}", "step", step, "outcome", outcome, "time", now,
                      "detail", detail);
    if (entry == NULL || json_array_append(steps, entry) != 0 ||
        json_object_set_new(all, "step", json_string(step)) != 0 ||
        json_object_set(all, "result", detail != NULL ? (json_t *)detail : json_null()) != 0) {
        s = ms__err(MS_ERR_NO_MEMORY, "registry: deployment_update");
        goto cleanup;
    }
    s = ms__reg_prepare(
        reg, "UPDATE deployments SET state = ?2, updated_time = ?3, detail_json = ?4 WHERE id = ?1",
        &q);
    if (s == MS_OK && sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        const char *texts[] = {outcome, now};
        s = ms__reg_bind_texts(reg, q, 2, texts, 2);
    }
    if (s == MS_OK)
        s = ms__reg_bind_json(reg, q, 4, all);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "updating a deployment");
cleanup:
    sqlite3_finalize(q);
    json_decref(entry);
    json_decref(all);
    return s;
}

ms_status ms_registry_deployment_update(ms_registry *reg, int64_t id, const char *step,
                                        const char *outcome, const json_t *detail)
{
    char now[40];
    ms_status s;

    if (reg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: deployment_update: reg is required");
    if (!ms__reg_token_ok(step) || !ms__reg_token_ok(outcome))
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: deployment_update: step '%s' and outcome '%s' must be 1 to 32 "
                       "characters of [a-z0-9-]",
                       step ? step : "(null)", outcome ? outcome : "(null)");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = ms__reg_deployment_update_locked(reg, id, step, outcome, detail, now);
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

#define DEPLOYMENT_COLUMNS                                                                         \
    "id, time, component, from_version, to_version, kind, state, updated_time, detail_json"

ms_status ms_registry_deployment_get(ms_registry *reg, int64_t id, json_t **out)
{
    sqlite3_stmt *q = NULL;
    ms_status s;
    int rc;

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: deployment_get: reg and out are required");
    *out = NULL;
    pthread_mutex_lock(&reg->lock);
    s = ms__reg_prepare(reg, "SELECT " DEPLOYMENT_COLUMNS " FROM deployments WHERE id = ?1", &q);
    if (s == MS_OK && sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            s = ms__reg_row_json(reg, q, out);
        else if (rc == SQLITE_DONE)
            s = ms__err(MS_ERR_NOT_FOUND, "registry: no deployment %lld", (long long)id);
        else
            s = ms__reg_fail(reg, "reading a deployment");
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

ms_status ms_registry_deployments(ms_registry *reg, const char *component, int64_t before_id,
                                  size_t limit, json_t **out)
{
    const char *texts[] = {component};

    if (reg == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: deployments: reg and out are required");
    return ms__reg_list(reg,
                        "SELECT " DEPLOYMENT_COLUMNS " FROM deployments"
                        " WHERE (?1 IS NULL OR component = ?1) AND (?2 <= 0 OR id < ?2)"
                        " ORDER BY id DESC LIMIT ?3",
                        texts, 1, before_id, limit, out);
}

ms_status ms_registry_deploy_lock_get(ms_registry *reg, const char *component, json_t **out)
{
    sqlite3_stmt *q = NULL;
    ms_status s;
    int rc;

    if (reg == NULL || blank(component) || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: deploy_lock_get: reg, component and out "
                                           "are required");
    *out = NULL;
    pthread_mutex_lock(&reg->lock);
    s = ms__reg_prepare(reg,
                        "SELECT component, holder, time FROM deploy_locks"
                        " WHERE component = ?1",
                        &q);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, component);
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            s = ms__reg_row_json(reg, q, out);
        else if (rc == SQLITE_DONE)
            s = ms__err(MS_ERR_NOT_FOUND, "registry: the deploy of %s is not locked", component);
        else
            s = ms__reg_fail(reg, "reading a deploy lock");
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&reg->lock);
    return s;
}
