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

ms_status ms_registry_version_set_state(ms_registry *reg, const char *component,
                                        const char *version, const char *state)
{
    sqlite3_stmt *q = NULL;
    char now[40];
    ms_status s;

    if (reg == NULL || blank(component) || blank(version))
        return ms__err(MS_ERR_INVALID_ARG, "registry: version_set_state: component and version "
                                           "are required");
    if (!ms_registry_version_state_valid(state))
        return ms__err(MS_ERR_INVALID_ARG,
                       "version state '%s': use candidate, testing, active, "
                       "previous, rejected or rolled-back",
                       state ? state : "(null)");
    ms__reg_now(now);
    pthread_mutex_lock(&reg->lock);
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
    pthread_mutex_unlock(&reg->lock);
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
