/*
 * registry.c - opening the registry database, its schema and migrations,
 * and the statement helpers the table files share.
 *
 * One SQLite connection per ms_registry, WAL journal, synchronous=FULL,
 * foreign keys on, a busy timeout so that the agents, the CLI and the MCP
 * server of one project share the file. The schema is versioned by PRAGMA
 * user_version; migration N takes it from N-1 to N inside one write
 * transaction, and the version is read inside that transaction so two
 * processes opening a new file at once do not both run a step.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "mainstack/json.h"
#include "mainstack/message.h"
#include "registry/registry_internal.h"

#define BUSY_TIMEOUT_MS 10000
#define SCHEMA_VERSION 2

/* Migration N brings the schema from user_version N-1 to N. */
static const char *const migrations[SCHEMA_VERSION + 1] = {
    [1] = "CREATE TABLE decisions ("
          " id INTEGER PRIMARY KEY AUTOINCREMENT,"
          " time TEXT NOT NULL,"
          " component TEXT NOT NULL,"
          " decision TEXT NOT NULL CHECK (decision IN ('ignore', 'act', 'escalate')),"
          " rule TEXT NOT NULL,"
          " reason TEXT NOT NULL,"
          " event_id TEXT,"
          " subject TEXT,"
          " type TEXT,"
          " agent TEXT,"
          " detail_json TEXT);"
          "CREATE UNIQUE INDEX decisions_event ON decisions (component, event_id)"
          " WHERE event_id IS NOT NULL;"
          "CREATE INDEX decisions_component ON decisions (component, id);"
          "CREATE TABLE escalations ("
          " id INTEGER PRIMARY KEY AUTOINCREMENT,"
          " time TEXT NOT NULL,"
          " component TEXT NOT NULL,"
          " decision_id INTEGER REFERENCES decisions (id),"
          " state TEXT NOT NULL DEFAULT 'open'"
          "  CHECK (state IN ('open', 'approved', 'rejected')),"
          " reason TEXT NOT NULL,"
          " detail_json TEXT,"
          " resolved_time TEXT,"
          " resolved_by TEXT,"
          " note TEXT);"
          "CREATE INDEX escalations_component ON escalations (component, id);"
          "CREATE TABLE runs ("
          " id INTEGER PRIMARY KEY AUTOINCREMENT,"
          " time TEXT NOT NULL,"
          " component TEXT NOT NULL,"
          " decision_id INTEGER REFERENCES decisions (id),"
          " step TEXT NOT NULL DEFAULT '',"
          " state TEXT NOT NULL DEFAULT 'running',"
          " updated_time TEXT NOT NULL);"
          "CREATE INDEX runs_component ON runs (component, id);"
          "CREATE TABLE run_steps ("
          " run_id INTEGER NOT NULL REFERENCES runs (id),"
          " seq INTEGER NOT NULL,"
          " time TEXT NOT NULL,"
          " step TEXT NOT NULL,"
          " state TEXT NOT NULL,"
          " detail_json TEXT,"
          " PRIMARY KEY (run_id, seq)) WITHOUT ROWID;"
          "CREATE TABLE audit ("
          " id INTEGER PRIMARY KEY AUTOINCREMENT,"
          " time TEXT NOT NULL,"
          " actor TEXT NOT NULL,"
          " action TEXT NOT NULL,"
          " component TEXT,"
          " outcome TEXT NOT NULL,"
          " detail_json TEXT);"
          "CREATE INDEX audit_component ON audit (component, id);",
    /* 2: component versions (artifacts), deployments, per-component deploy locks */
    [2] = "CREATE TABLE versions ("
          " component TEXT NOT NULL,"
          " version TEXT NOT NULL,"
          " sha256 TEXT NOT NULL,"
          " artifact_dir TEXT NOT NULL,"
          " state TEXT NOT NULL DEFAULT 'candidate' CHECK (state IN ('candidate', 'testing',"
          "  'active', 'previous', 'rejected', 'rolled-back')),"
          " added_time TEXT NOT NULL,"
          " state_time TEXT NOT NULL,"
          " detail_json TEXT,"
          " PRIMARY KEY (component, version)) WITHOUT ROWID;"
          "CREATE TABLE deployments ("
          " id INTEGER PRIMARY KEY AUTOINCREMENT,"
          " time TEXT NOT NULL,"
          " component TEXT NOT NULL,"
          " from_version TEXT,"
          " to_version TEXT NOT NULL,"
          " kind TEXT NOT NULL DEFAULT 'deploy' CHECK (kind IN ('deploy', 'rollback')),"
          " state TEXT NOT NULL DEFAULT 'testing',"
          " updated_time TEXT NOT NULL,"
          " detail_json TEXT);"
          "CREATE INDEX deployments_component ON deployments (component, id);"
          "CREATE TABLE deploy_locks ("
          " component TEXT PRIMARY KEY,"
          " holder TEXT NOT NULL,"
          " time TEXT NOT NULL) WITHOUT ROWID;",
};

ms_status ms__reg_fail(ms_registry *reg, const char *what)
{
    return ms__err(MS_ERR_IO, "registry %s: %s: %s", reg->path, what,
                   reg->db ? sqlite3_errmsg(reg->db) : "not open");
}

ms_status ms__reg_exec(ms_registry *reg, const char *sql, const char *what)
{
    char *msg = NULL;
    ms_status s = MS_OK;

    if (sqlite3_exec(reg->db, sql, NULL, NULL, &msg) != SQLITE_OK)
        s = ms__err(MS_ERR_IO, "registry %s: %s: %s", reg->path, what,
                    msg ? msg : sqlite3_errmsg(reg->db));
    sqlite3_free(msg);
    return s;
}

ms_status ms__reg_prepare(ms_registry *reg, const char *sql, sqlite3_stmt **out)
{
    if (sqlite3_prepare_v2(reg->db, sql, -1, out, NULL) != SQLITE_OK)
        return ms__reg_fail(reg, "preparing a statement");
    return MS_OK;
}

ms_status ms__reg_begin(ms_registry *reg)
{
    return ms__reg_exec(reg, "BEGIN IMMEDIATE", "starting a transaction");
}

ms_status ms__reg_commit(ms_registry *reg)
{
    return ms__reg_exec(reg, "COMMIT", "committing");
}

void ms__reg_rollback(ms_registry *reg)
{
    if (!sqlite3_get_autocommit(reg->db))
        (void)sqlite3_exec(reg->db, "ROLLBACK", NULL, NULL, NULL);
}

ms_status ms__reg_bind_text(ms_registry *reg, sqlite3_stmt *q, int i, const char *text)
{
    int rc = text ? sqlite3_bind_text(q, i, text, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(q, i);

    if (rc == SQLITE_NOMEM)
        return ms__err(MS_ERR_NO_MEMORY, "registry: binding a value");
    return rc == SQLITE_OK ? MS_OK : ms__reg_fail(reg, "binding a value");
}

ms_status ms__reg_bind_json(ms_registry *reg, sqlite3_stmt *q, int i, const json_t *v)
{
    char *text = NULL;
    size_t len = 0;
    ms_status s;

    if (v == NULL)
        return ms__reg_bind_text(reg, q, i, NULL);
    if ((s = ms_json_dump(v, &text, &len)) != MS_OK)
        return s;
    s = ms__reg_bind_text(reg, q, i, text);
    free(text);
    return s;
}

ms_status ms__reg_bind_texts(ms_registry *reg, sqlite3_stmt *q, int first, const char *const *texts,
                             int n)
{
    ms_status s = MS_OK;

    for (int i = 0; i < n && s == MS_OK; i++)
        s = ms__reg_bind_text(reg, q, first + i, texts[i]);
    return s;
}

static bool ends_with_json(const char *name, size_t *stem)
{
    size_t n = strlen(name);

    if (n <= 5 || strcmp(name + n - 5, "_json") != 0)
        return false;
    *stem = n - 5;
    return true;
}

ms_status ms__reg_row_json(ms_registry *reg, sqlite3_stmt *q, json_t **out)
{
    json_t *obj = json_object();
    ms_status s = MS_OK;
    int n = sqlite3_column_count(q);

    if (obj == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "registry: building a row");
    for (int i = 0; i < n && s == MS_OK; i++) {
        const char *name = sqlite3_column_name(q, i);
        char key[64];
        size_t stem;
        json_t *v = NULL;

        if (ends_with_json(name, &stem) && stem < sizeof key) {
            memcpy(key, name, stem);
            key[stem] = '\0';
            if (sqlite3_column_type(q, i) == SQLITE_NULL) {
                v = json_null();
            } else {
                const char *text = (const char *)sqlite3_column_text(q, i);
                int len = sqlite3_column_bytes(q, i);

                s = ms_json_parse(text, (size_t)len, key, &v);
                if (s != MS_OK) {
                    s = ms__err_wrap(MS_ERR_IO, "registry %s: stored %s", reg->path, key);
                    break;
                }
            }
        } else {
            snprintf(key, sizeof key, "%s", name);
            switch (sqlite3_column_type(q, i)) {
            case SQLITE_INTEGER:
                v = json_integer(sqlite3_column_int64(q, i));
                break;
            case SQLITE_FLOAT:
                v = json_real(sqlite3_column_double(q, i));
                break;
            case SQLITE_NULL:
                v = json_null();
                break;
            default:
                v = json_stringn((const char *)sqlite3_column_text(q, i),
                                 (size_t)sqlite3_column_bytes(q, i));
                break;
            }
        }
        if (v == NULL || json_object_set_new(obj, key, v) != 0)
            s = ms__err(MS_ERR_NO_MEMORY, "registry: building a row");
    }
    if (s != MS_OK) {
        json_decref(obj);
        return s;
    }
    *out = obj;
    return MS_OK;
}

ms_status ms__reg_rows_json(ms_registry *reg, sqlite3_stmt *q, json_t **out)
{
    json_t *arr = json_array();
    ms_status s = MS_OK;
    int rc;

    if (arr == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "registry: building a list");
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *row = NULL;

        if ((s = ms__reg_row_json(reg, q, &row)) != MS_OK)
            break;
        if (json_array_append_new(arr, row) != 0) {
            s = ms__err(MS_ERR_NO_MEMORY, "registry: building a list");
            break;
        }
    }
    if (s == MS_OK && rc != SQLITE_DONE)
        s = ms__reg_fail(reg, "reading rows");
    if (s != MS_OK) {
        json_decref(arr);
        return s;
    }
    *out = arr;
    return MS_OK;
}

ms_status ms__reg_list(ms_registry *reg, const char *sql, const char *const *texts, int ntexts,
                       int64_t before_id, size_t limit, json_t **out)
{
    sqlite3_stmt *q = NULL;
    ms_status s;

    pthread_mutex_lock(&reg->lock);
    s = ms__reg_prepare(reg, sql, &q);
    if (s == MS_OK)
        s = ms__reg_bind_texts(reg, q, 1, texts, ntexts);
    if (s == MS_OK && (sqlite3_bind_int64(q, ntexts + 1, before_id) != SQLITE_OK ||
                       sqlite3_bind_int64(q, ntexts + 2, ms__reg_page(limit)) != SQLITE_OK))
        s = ms__reg_fail(reg, "binding a value");
    if (s == MS_OK)
        s = ms__reg_rows_json(reg, q, out);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

int64_t ms__reg_page(size_t limit)
{
    if (limit == 0)
        return MS_REGISTRY_PAGE_DEFAULT;
    return limit > MS_REGISTRY_PAGE_MAX ? MS_REGISTRY_PAGE_MAX : (int64_t)limit;
}

void ms__reg_now(char out[40])
{
    char ts[MS_TIMESTAMP_LEN + 1];

    ms_timestamp_now(ts);
    snprintf(out, 40, "%s", ts);
}

static ms_status read_version(ms_registry *reg, long long *out)
{
    sqlite3_stmt *q = NULL;
    ms_status s = ms__reg_prepare(reg, "PRAGMA user_version", &q);

    if (s != MS_OK)
        return s;
    if (sqlite3_step(q) == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0);
    else
        s = ms__reg_fail(reg, "reading the schema version");
    sqlite3_finalize(q);
    return s;
}

static ms_status migrate(ms_registry *reg)
{
    for (;;) {
        long long version = 0;
        char sql[64];
        ms_status s = ms__reg_begin(reg);

        if (s != MS_OK)
            return s;
        s = read_version(reg, &version);
        if (s == MS_OK && version < 0)
            s = ms__err(MS_ERR_IO, "registry %s: invalid schema version %lld", reg->path, version);
        if (s == MS_OK && version > SCHEMA_VERSION)
            s = ms__err(MS_ERR_UNSUPPORTED,
                        "registry %s: schema version %lld was written by a newer mainstack "
                        "(this one knows %d): use the newer mstack",
                        reg->path, version, SCHEMA_VERSION);
        if (s == MS_OK && version == SCHEMA_VERSION)
            return ms__reg_commit(reg);
        if (s == MS_OK)
            s = ms__reg_exec(reg, migrations[version + 1], "migrating the schema");
        if (s == MS_OK) {
            snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", version + 1);
            s = ms__reg_exec(reg, sql, "recording the schema version");
        }
        if (s == MS_OK)
            s = ms__reg_commit(reg);
        if (s != MS_OK) {
            ms__reg_rollback(reg);
            return s;
        }
    }
}

/* journal_mode=WAL. Switching a new file to WAL takes an exclusive lock
 * without calling the busy handler, so processes opening one new file at
 * once can get SQLITE_BUSY: retry within the busy timeout. A file that is
 * not a database fails here, with SQLite's "file is not a database". */
static ms_status set_wal(ms_registry *reg)
{
    for (int waited = 0;; waited += 10) {
        int rc = sqlite3_exec(reg->db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);

        if (rc == SQLITE_OK)
            return MS_OK;
        if ((rc & 0xff) != SQLITE_BUSY || waited >= BUSY_TIMEOUT_MS)
            return ms__reg_fail(reg, "setting WAL mode");
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
    }
}

ms_status ms_registry_default_path(const char *root, char **out)
{
    size_t n;
    char *p;

    if (root == NULL || *root == '\0' || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: root and out are required");
    n = strlen(root) + sizeof "/.mainstack/registry.db";
    if ((p = malloc(n)) == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "registry: building a path");
    snprintf(p, n, "%s/.mainstack/registry.db", root);
    *out = p;
    return MS_OK;
}

ms_status ms_registry_open(const char *path, ms_registry **out)
{
    ms_registry *reg = NULL;
    ms_status s;
    int rc;

    if (path == NULL || *path == '\0' || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "registry: path and out are required");
    *out = NULL;
    if ((reg = ms__calloc(1, sizeof *reg)) == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "registry: allocating");
    if ((reg->path = ms__strdup(path)) == NULL) {
        ms__free(reg);
        return ms__err(MS_ERR_NO_MEMORY, "registry: allocating");
    }
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        ms__free(reg->path);
        ms__free(reg);
        return ms__err(MS_ERR_INTERNAL, "registry: creating a mutex");
    }
    if ((s = ms__mkdirs_parent(path, 0755, "registry")) != MS_OK)
        goto fail;
    rc = sqlite3_open_v2(path, &reg->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        s = ms__reg_fail(reg, "opening");
        goto fail;
    }
    sqlite3_extended_result_codes(reg->db, 1);
    sqlite3_busy_timeout(reg->db, BUSY_TIMEOUT_MS);
    if ((s = set_wal(reg)) != MS_OK ||
        (s = ms__reg_exec(reg, "PRAGMA synchronous = FULL", "setting synchronous")) != MS_OK ||
        (s = ms__reg_exec(reg, "PRAGMA foreign_keys = ON", "enabling foreign keys")) != MS_OK ||
        (s = migrate(reg)) != MS_OK)
        goto fail;
    *out = reg;
    return MS_OK;
fail:
    ms_registry_close(reg);
    return s;
}

void ms_registry_close(ms_registry *reg)
{
    if (reg == NULL)
        return;
    if (reg->db != NULL)
        sqlite3_close_v2(reg->db);
    pthread_mutex_destroy(&reg->lock);
    ms__free(reg->path);
    ms__free(reg);
}

const char *ms_registry_path(const ms_registry *reg)
{
    return reg ? reg->path : NULL;
}
