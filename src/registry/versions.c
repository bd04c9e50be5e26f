/*
 * versions.c - the versions of a component (artifacts recorded by
 * ms_version_add, with their state in the deploy process) and the
 * per-component deploy lock, which makes a second deploy of the same
 * component fail with who holds it. Schema 2 (registry.c).
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "registry/registry_internal.h"

static const char *const states[] = {"candidate", "testing",  "active",
                                     "previous",  "rejected", "rolled-back"};

bool ms_registry_version_state_valid(const char *state)
{
    if (state == NULL)
        return false;
    for (size_t i = 0; i < sizeof states / sizeof states[0]; i++)
        if (strcmp(state, states[i]) == 0)
            return true;
    return false;
}

static bool blank(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* The sha256 recorded for (component, version), or "" when none. Lock held. */
static ms_status stored_sha(ms_registry *reg, const char *component, const char *version,
                            char out[80])
{
    sqlite3_stmt *q = NULL;
    const char *texts[] = {component, version};
    ms_status s;
    int rc;
    out[0] = '\0';
    s = ms__reg_prepare(reg, "SELECT sha256 FROM versions WHERE component = ?1 AND version = ?2",
                        &q);
    if (s == MS_OK)
        s = ms__reg_bind_texts(reg, q, 1, texts, 2);
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
            snprintf(out, 80, "%s", (const char *)sqlite3_column_text(q, 0));
        else if (rc != SQLITE_DONE)
            s = ms__reg_fail(reg, "reading a version");
    }
    sqlite3_finalize(q);
    return s;
}

ms_status ms_registry_version_add(ms_registry *reg, const char *component, const char *version,
                                  const char *sha256, const char *artifact_dir,
                                  const json_t *detail, bool *fresh)
{
    sqlite3_stmt *q = NULL;
    char now[40], have[80];
    ms_status s;

    if (fresh != NULL)
        *fresh = false;
    if (reg == NULL || blank(component) || blank(version) || blank(sha256) || blank(artifact_dir))
        return ms__err(MS_ERR_INVALID_ARG, "registry: version_add: component, version, sha256 "
                                           "and artifact_dir are required");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    if ((s = stored_sha(reg, component, version, have)) != MS_OK)
        goto cleanup;
    if (have[0] != '\0') {
        if (strcmp(have, sha256) != 0)
            s = ms__err(MS_ERR_STATE,
                        "%s %s is already recorded with sha256 %s; this build is %s (another "
                        "content under the same version: bump the version)",
                        component, version, have, sha256);
        else
            s = ms__reg_commit(reg);
        goto cleanup;
    }
    s = ms__reg_prepare(reg,
                        "INSERT INTO versions (component, version, sha256, artifact_dir, state,"
                        " added_time, state_time, detail_json)"
                        " VALUES (?1, ?2, ?3, ?4, 'candidate', ?5, ?5, ?6)",
                        &q);
    if (s == MS_OK) {
        const char *texts[] = {component, version, sha256, artifact_dir, now};
        s = ms__reg_bind_texts(reg, q, 1, texts, 5);
    }
    if (s == MS_OK)
        s = ms__reg_bind_json(reg, q, 6, detail);
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "recording a version");
    if (s == MS_OK)
        s = ms__reg_commit(reg);
    if (s == MS_OK && fresh != NULL)
        *fresh = true;
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

#define VERSION_COLUMNS                                                                            \
    "component, version, sha256, artifact_dir, state, added_time, state_time, detail_json"

ms_status ms_registry_versions(ms_registry *reg, const char *component, json_t **out)
{
    sqlite3_stmt *q = NULL;
    ms_status s;
    if (out != NULL)
        *out = NULL;
    if (reg == NULL || blank(component) || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: versions: reg, component and out are "
                                           "required");
    pthread_mutex_lock(&reg->lock);
    s = ms__reg_prepare(reg,
                        "SELECT " VERSION_COLUMNS " FROM versions WHERE component = ?1"
                        " ORDER BY added_time, version",
                        &q);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, component);
    if (s == MS_OK)
        s = ms__reg_rows_json(reg, q, out);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

ms_status ms_registry_version_get(ms_registry *reg, const char *component, const char *version,
                                  json_t **out)
{
    json_t *all = NULL;
    ms_status s;
    size_t i;
    json_t *row;
    char known[512] = "";

    if (out != NULL)
        *out = NULL;
    if (blank(version) || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: version_get: version and out are required");
    if ((s = ms_registry_versions(reg, component, &all)) != MS_OK)
        return s;
    json_array_foreach(all, i, row)
    {
        const char *v = json_string_value(json_object_get(row, "version"));
        size_t kl = strlen(known);
        if (v != NULL && strcmp(v, version) == 0) {
            *out = json_incref(row);
            json_decref(all);
            return MS_OK;
        }
        snprintf(known + kl, sizeof known - kl, "%s%s", kl > 0 ? ", " : "", v ? v : "?");
    }
    json_decref(all);
    return ms__err(MS_ERR_NOT_FOUND, "%s has no version %s recorded (%s%s)", component, version,
                   known[0] ? "known: " : "none is: use mstack version add", known);
}

/* Set one version's state, appending {state, time} to detail.history.
 * reg->lock held; inside the caller's transaction or on its own. */
ms_status ms__reg_version_set_state_locked(ms_registry *reg, const char *component,
                                           const char *version, const char *state, const char *now)
{
    sqlite3_stmt *q = NULL;
    ms_status s;

    s = ms__reg_prepare(reg,
                        "UPDATE versions SET state = ?3, state_time = ?4,"
                        /* each state entered, appended to detail.history */
                        " detail_json = json_set(CASE WHEN json_type(detail_json) = 'object'"
                        "  THEN detail_json ELSE '{}' END, '$.history',"
                        "  json_insert(coalesce(json_extract(detail_json, '$.history'), '[]'),"
                        "  '$[#]', json_object('state', ?3, 'time', ?4)))"
                        " WHERE component = ?1 AND version = ?2",
                        &q);
    if (s == MS_OK) {
        const char *texts[] = {component, version, state, now};
        s = ms__reg_bind_texts(reg, q, 1, texts, 4);
    }
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, "setting a version's state");
    if (s == MS_OK && sqlite3_changes(reg->db) == 0)
        s = ms__err(MS_ERR_NOT_FOUND, "%s has no version %s recorded", component, version);
    sqlite3_finalize(q);
    return s;
}

static ms_status state_arg_check(const char *state)
{
    if (!ms_registry_version_state_valid(state))
        return ms__err(MS_ERR_INVALID_ARG,
                       "version state '%s': use candidate, testing, active, "
                       "previous, rejected or rolled-back",
                       state ? state : "(null)");
    return MS_OK;
}

ms_status ms_registry_version_set_state(ms_registry *reg, const char *component,
                                        const char *version, const char *state)
{
    char now[40];
    ms_status s;

    if (reg == NULL || blank(component) || blank(version))
        return ms__err(MS_ERR_INVALID_ARG, "registry: version_set_state: component and version "
                                           "are required");
    if ((s = state_arg_check(state)) != MS_OK)
        return s;
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    s = ms__reg_version_set_state_locked(reg, component, version, state, now);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

/* How many versions of component are active, and the first one's name.
 * Lock held. */
static ms_status count_active(ms_registry *reg, const char *component, int64_t *n)
{
    sqlite3_stmt *q = NULL;
    ms_status s = ms__reg_prepare(
        reg, "SELECT count(*) FROM versions WHERE component = ?1 AND state = 'active'", &q);
    *n = 0;
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, component);
    if (s == MS_OK) {
        if (sqlite3_step(q) == SQLITE_ROW)
            *n = sqlite3_column_int64(q, 0);
        else
            s = ms__reg_fail(reg, "counting the active versions");
    }
    sqlite3_finalize(q);
    return s;
}

/* The versions of component in state (a new array of names). Lock held. */
static ms_status versions_in(ms_registry *reg, const char *component, const char *state,
                             json_t **out)
{
    sqlite3_stmt *q = NULL;
    const char *texts[] = {component, state};
    ms_status s;
    int rc = SQLITE_DONE;

    *out = json_array();
    if (*out == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "registry: allocating");
    s = ms__reg_prepare(reg, "SELECT version FROM versions WHERE component = ?1 AND state = ?2",
                        &q);
    if (s == MS_OK)
        s = ms__reg_bind_texts(reg, q, 1, texts, 2);
    while (s == MS_OK && (rc = sqlite3_step(q)) == SQLITE_ROW)
        if (json_array_append_new(*out, json_string((const char *)sqlite3_column_text(q, 0))) != 0)
            s = ms__err(MS_ERR_NO_MEMORY, "registry: allocating");
    if (s == MS_OK && rc != SQLITE_DONE)
        s = ms__reg_fail(reg, "reading the versions");
    sqlite3_finalize(q);
    if (s != MS_OK) {
        json_decref(*out);
        *out = NULL;
    }
    return s;
}

/* The body of a transition: changes, then the invariant, then the step.
 * Lock held, transaction open. */
static ms_status apply_changes(ms_registry *reg, const char *component,
                               const ms_version_change *changes, size_t n, const char *now)
{
    ms_status s = MS_OK;
    int64_t active = 0;

    for (size_t i = 0; s == MS_OK && i < n; i++)
        s = ms__reg_version_set_state_locked(reg, component, changes[i].version, changes[i].state,
                                             now);
    if (s == MS_OK)
        s = count_active(reg, component, &active);
    if (s == MS_OK && active > 1)
        s = ms__err(MS_ERR_STATE,
                    "registry: the state change of %s would leave %lld versions active: "
                    "nothing changed",
                    component, (long long)active);
    return s;
}

static ms_status transition_args(ms_registry *reg, const char *component,
                                 const ms_version_change *changes, size_t n, int64_t deployment_id,
                                 const char *step, const char *outcome)
{
    ms_status s;
    if (reg == NULL || blank(component) || (n > 0 && changes == NULL))
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: version_transition: reg and component are required, and "
                       "changes when n > 0");
    for (size_t i = 0; i < n; i++) {
        if (blank(changes[i].version))
            return ms__err(MS_ERR_INVALID_ARG,
                           "registry: version_transition: change %zu names "
                           "no version",
                           i);
        if ((s = state_arg_check(changes[i].state)) != MS_OK)
            return s;
    }
    if (deployment_id > 0 && !ms__reg_token_ok(step))
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: version_transition: step '%s' must be 1 to 32 characters of "
                       "[a-z0-9-]",
                       step ? step : "(null)");
    if (deployment_id > 0 && !ms__reg_token_ok(outcome))
        return ms__err(MS_ERR_INVALID_ARG,
                       "registry: version_transition: outcome '%s' must be 1 to 32 characters "
                       "of [a-z0-9-]",
                       outcome ? outcome : "(null)");
    return MS_OK;
}

ms_status ms_registry_version_transition(ms_registry *reg, const char *component,
                                         const ms_version_change *changes, size_t n,
                                         int64_t deployment_id, const char *step,
                                         const char *outcome, const json_t *detail)
{
    char now[40];
    ms_status s;

    if ((s = transition_args(reg, component, changes, n, deployment_id, step, outcome)) != MS_OK)
        return s;
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    s = apply_changes(reg, component, changes, n, now);
    if (s == MS_OK && deployment_id > 0)
        s = ms__reg_deployment_update_locked(reg, deployment_id, step, outcome, detail, now);
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

ms_status ms_registry_version_promote(ms_registry *reg, const char *component, const char *version,
                                      int64_t deployment_id, const char *step, const char *outcome,
                                      const json_t *detail)
{
    ms_version_change ch[MS_REGISTRY_PROMOTE_MAX_CHANGES];
    json_t *prev = NULL, *act = NULL, *v;
    size_t n = 0, i;
    char now[40];
    ms_status s;

    if (blank(version))
        return ms__err(MS_ERR_INVALID_ARG, "registry: version_promote: version is required");
    if ((s = transition_args(reg, component, NULL, 0, deployment_id, step, outcome)) != MS_OK)
        return s;
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    /* read inside the transaction: what is previous and active now */
    if ((s = versions_in(reg, component, "previous", &prev)) != MS_OK ||
        (s = versions_in(reg, component, "active", &act)) != MS_OK)
        goto cleanup;
    json_array_foreach(prev, i, v)
    {
        if (strcmp(json_string_value(v), version) != 0 && n < MS_REGISTRY_PROMOTE_MAX_CHANGES - 1)
            ch[n++] = (ms_version_change){json_string_value(v), "candidate"};
    }
    json_array_foreach(act, i, v)
    {
        if (strcmp(json_string_value(v), version) != 0 && n < MS_REGISTRY_PROMOTE_MAX_CHANGES - 1)
            ch[n++] = (ms_version_change){json_string_value(v), "previous"};
    }
    ch[n++] = (ms_version_change){version, "active"};
    s = apply_changes(reg, component, ch, n, now);
    if (s == MS_OK && deployment_id > 0)
        s = ms__reg_deployment_update_locked(reg, deployment_id, step, outcome, detail, now);
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    json_decref(prev);
    json_decref(act);
    return s;
}

/* The holder and time of component's lock ("" when free). Lock held. */
static ms_status lock_row(ms_registry *reg, const char *component, char holder[256], char when[40])
{
    sqlite3_stmt *q = NULL;
    ms_status s;
    int rc;
    holder[0] = when[0] = '\0';
    s = ms__reg_prepare(reg, "SELECT holder, time FROM deploy_locks WHERE component = ?1", &q);
    if (s == MS_OK)
        s = ms__reg_bind_text(reg, q, 1, component);
    if (s == MS_OK) {
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW) {
            snprintf(holder, 256, "%s", (const char *)sqlite3_column_text(q, 0));
            snprintf(when, 40, "%s", (const char *)sqlite3_column_text(q, 1));
        } else if (rc != SQLITE_DONE) {
            s = ms__reg_fail(reg, "reading a deploy lock");
        }
    }
    sqlite3_finalize(q);
    return s;
}

static ms_status lock_change(ms_registry *reg, const char *component, const char *holder, bool take)
{
    sqlite3_stmt *q = NULL;
    char now[40], who[256], when[40];
    ms_status s;

    if (reg == NULL || blank(component) || blank(holder))
        return ms__err(MS_ERR_INVALID_ARG, "registry: deploy lock: component and holder are "
                                           "required");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
    /* BEGIN IMMEDIATE: two processes cannot both see the lock free */
    if ((s = ms__reg_begin(reg)) != MS_OK)
        goto cleanup;
    if ((s = lock_row(reg, component, who, when)) != MS_OK)
        goto cleanup;
    if (who[0] != '\0' && strcmp(who, holder) != 0) {
        s = ms__err(MS_ERR_STATE, "deploy of %s is locked by %s since %s", component, who, when);
        goto cleanup;
    }
    if (take && who[0] != '\0') {
        s = ms__reg_commit(reg); /* already ours */
        goto cleanup;
    }
    if (!take && who[0] == '\0') {
        s = ms__reg_commit(reg);
        goto cleanup;
    }
    s = ms__reg_prepare(reg,
                        take ? "INSERT INTO deploy_locks (component, holder, time)"
                               " VALUES (?1, ?2, ?3)"
                             : "DELETE FROM deploy_locks WHERE component = ?1 AND holder = ?2"
                               " AND ?3 IS NOT NULL",
                        &q);
    if (s == MS_OK) {
        const char *texts[] = {component, holder, now};
        s = ms__reg_bind_texts(reg, q, 1, texts, 3);
    }
    if (s == MS_OK && sqlite3_step(q) != SQLITE_DONE)
        s = ms__reg_fail(reg, take ? "taking a deploy lock" : "releasing a deploy lock");
    if (s == MS_OK)
        s = ms__reg_commit(reg);
cleanup:
    sqlite3_finalize(q);
    if (s != MS_OK)
        ms__reg_rollback(reg);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

ms_status ms_registry_deploy_lock(ms_registry *reg, const char *component, const char *holder)
{
    return lock_change(reg, component, holder, true);
}

ms_status ms_registry_deploy_unlock(ms_registry *reg, const char *component, const char *holder)
{
    return lock_change(reg, component, holder, false);
}
