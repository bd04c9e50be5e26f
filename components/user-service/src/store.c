/*
 * store.c - the users table of user-service in SQLite.
 *
 * One database file in the component's data directory, WAL journal (readers
 * never block the writer; several instances on one host share the file, with
 * a busy timeout), synchronous=FULL (a user whose create was answered
 * survives a crash or power loss). The schema is versioned by PRAGMA
 * user_version and brought up to date at open by the migrations below, each
 * in its own transaction. Every statement is prepared once at open; each
 * change is one statement (RETURNING gives the row), so it commits on its own
 * and the caller can emit its event right after. Emails are unique compared
 * case-insensitively (ASCII, COLLATE NOCASE), enforced by a unique index, so
 * two instances racing on one email cannot both win.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "user_service_internal.h"

#define BUSY_TIMEOUT_MS 5000
#define COLUMNS "id, email, name, created_at, updated_at"

enum { ST_INSERT, ST_GET, ST_GET_EMAIL, ST_LIST, ST_UPDATE, ST_DELETE, ST_COUNT, ST_PING, ST__N };

static const char *const sql_text[ST__N] = {
    [ST_INSERT] = "INSERT INTO users (" COLUMNS ") SELECT ?1, ?2, ?3, ?4, ?4"
                  " WHERE ?5 <= 0 OR (SELECT count(*) FROM users) < ?5 RETURNING " COLUMNS,
    [ST_GET] = "SELECT " COLUMNS " FROM users WHERE id = ?1",
    [ST_GET_EMAIL] = "SELECT " COLUMNS " FROM users WHERE email = ?1 COLLATE NOCASE",
    [ST_LIST] = "SELECT " COLUMNS " FROM users WHERE id > ?1 ORDER BY id LIMIT ?2",
    [ST_UPDATE] = "UPDATE users SET email = coalesce(?2, email), name = coalesce(?3, name),"
                  " updated_at = ?4 WHERE id = ?1 RETURNING " COLUMNS,
    [ST_DELETE] = "DELETE FROM users WHERE id = ?1 RETURNING " COLUMNS,
    [ST_COUNT] = "SELECT count(*) FROM users",
    [ST_PING] = "SELECT 1 FROM users LIMIT 1",
};

/* Migration N brings the schema from user_version N-1 to N. */
static const char *const migrations[US_SCHEMA_VERSION + 1] = {
    [1] = "CREATE TABLE users ("
          " id TEXT PRIMARY KEY NOT NULL,"
          " email TEXT NOT NULL,"
          " name TEXT NOT NULL,"
          " created_at TEXT NOT NULL,"
          " updated_at TEXT NOT NULL"
          ") WITHOUT ROWID;"
          "CREATE UNIQUE INDEX users_email_nocase ON users (email COLLATE NOCASE);",
};

struct us_store {
    sqlite3 *db;
    sqlite3_stmt *st[ST__N];
    char *path;
    dev_t dev; /* identity of the file opened, to notice it being replaced */
    ino_t ino;
};

static ms_status db_fail(us_store *st, const char *what)
{
    return us__fail(MS_ERR_IO, "user-service store %s: %s: %s", st->path, what,
                    st->db ? sqlite3_errmsg(st->db) : "no connection");
}

static ms_status exec(us_store *st, const char *sql, const char *what)
{
    char *msg = NULL;
    ms_status s = MS_OK;

    if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        s = us__fail(MS_ERR_IO, "user-service store %s: %s: %s", st->path, what,
                     msg ? msg : sqlite3_errmsg(st->db));
    }
    sqlite3_free(msg);
    return s;
}

static ms_status read_int(us_store *st, const char *sql, long long *out)
{
    sqlite3_stmt *q = NULL;
    ms_status s = MS_OK;

    if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(st, sql);
    if (sqlite3_step(q) != SQLITE_ROW)
        s = db_fail(st, sql);
    else
        *out = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return s;
}

/* Bring the schema to US_SCHEMA_VERSION, one step per transaction. The
 * version is read inside the write transaction, so instances opening the
 * same new file at once do not both run a step: the second one waits for
 * the lock and then finds the step done. */
static ms_status migrate(us_store *st)
{
    for (;;) {
        long long version = 0;
        char sql[64];
        ms_status s = exec(st, "BEGIN IMMEDIATE", "starting a migration");

        if (s != MS_OK)
            return s;
        s = read_int(st, "PRAGMA user_version", &version);
        if (s == MS_OK && version < 0)
            s = us__fail(MS_ERR_IO, "user-service store %s: invalid schema version %lld", st->path,
                         version);
        if (s == MS_OK && version > US_SCHEMA_VERSION)
            s = us__fail(MS_ERR_UNSUPPORTED,
                         "user-service store %s: schema version %lld is newer than this build "
                         "knows (%d): run the newer user-service or restore a backup",
                         st->path, version, US_SCHEMA_VERSION);
        if (s == MS_OK && version == US_SCHEMA_VERSION)
            return exec(st, "COMMIT", "ending the schema check");
        if (s == MS_OK)
            s = exec(st, migrations[version + 1], "migrating the schema");
        if (s == MS_OK) {
            snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", version + 1);
            s = exec(st, sql, "recording the schema version");
        }
        if (s == MS_OK)
            s = exec(st, "COMMIT", "committing a migration");
        if (s != MS_OK) {
            (void)sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return s;
        }
    }
}

ms_status us__store_open(const char *path, us_store **out)
{
    us_store *st;
    long long dummy;
    struct stat sb;
    ms_status s;
    int rc;

    if (path == NULL || out == NULL)
        return us__fail(MS_ERR_INVALID_ARG, "user-service store: path or out is NULL");
    *out = NULL;
    st = calloc(1, sizeof *st);
    if (st == NULL)
        return us__fail(MS_ERR_NO_MEMORY, "user-service store: allocating");
    st->path = strdup(path);
    if (st->path == NULL) {
        s = us__fail(MS_ERR_NO_MEMORY, "user-service store: allocating");
        goto fail;
    }
    rc = sqlite3_open_v2(path, &st->db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                             SQLITE_OPEN_EXRESCODE,
                         NULL);
    if (rc != SQLITE_OK) {
        s = db_fail(st, "opening");
        goto fail;
    }
    (void)sqlite3_extended_result_codes(st->db, 1);
    if (sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
        s = db_fail(st, "setting the busy timeout");
        goto fail;
    }
    /* journal_mode answers with the mode in force: make sure it is WAL. */
    {
        sqlite3_stmt *q = NULL;
        bool wal = false;
        if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode = WAL", -1, &q, NULL) != SQLITE_OK) {
            s = db_fail(st, "setting WAL mode");
            goto fail;
        }
        /* Switching a new file to WAL takes an exclusive lock without
         * calling the busy handler: instances opening one new file at once
         * can get SQLITE_BUSY here, so retry within the busy timeout. */
        for (int waited = 0;; waited += 10) {
            rc = sqlite3_step(q);
            if (rc != SQLITE_BUSY || waited >= BUSY_TIMEOUT_MS)
                break;
            sqlite3_reset(q);
            nanosleep(&(struct timespec){.tv_nsec = 10 * 1000000L}, NULL);
        }
        if (rc == SQLITE_ROW) {
            const unsigned char *mode = sqlite3_column_text(q, 0);
            wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
        }
        sqlite3_finalize(q);
        if (!wal) {
            s = us__fail(MS_ERR_IO, "user-service store %s: the database refused WAL mode (%s)",
                         path, sqlite3_errmsg(st->db));
            goto fail;
        }
    }
    s = exec(st, "PRAGMA synchronous = FULL", "setting synchronous");
    if (s != MS_OK)
        goto fail;
    s = migrate(st);
    if (s != MS_OK)
        goto fail;
    for (int i = 0; i < ST__N; i++) {
        if (sqlite3_prepare_v3(st->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &st->st[i],
                               NULL) != SQLITE_OK) {
            s = db_fail(st, "preparing a statement");
            goto fail;
        }
    }
    s = read_int(st, "SELECT count(*) FROM users", &dummy);
    if (s != MS_OK)
        goto fail;
    if (stat(path, &sb) != 0) {
        s = us__fail(MS_ERR_IO, "user-service store %s: the file vanished after opening", path);
        goto fail;
    }
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    *out = st;
    return MS_OK;
fail:
    us__store_close(st);
    return s;
}

void us__store_close(us_store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < ST__N; i++)
        sqlite3_finalize(st->st[i]);
    /* close_v2 cannot fail on a busy connection: every statement is gone. */
    if (st->db != NULL)
        (void)sqlite3_close_v2(st->db);
    free(st->path);
    free(st);
}

const char *us__store_path(const us_store *st)
{
    return st ? st->path : NULL;
}

/* The current row of q as a user object (new reference), or NULL on ENOMEM. */
static json_t *row_user(sqlite3_stmt *q)
{
    static const char *const names[] = {USER_FIELD_ID, USER_FIELD_EMAIL, USER_FIELD_NAME,
                                        USER_FIELD_CREATED_AT, USER_FIELD_UPDATED_AT};
    json_t *u = json_object();

    if (u == NULL)
        return NULL;
    for (int c = 0; c < 5; c++) {
        const unsigned char *text = sqlite3_column_text(q, c);
        int len = sqlite3_column_bytes(q, c);
        if (text == NULL ||
            json_object_set_new(u, names[c], json_stringn((const char *)text, (size_t)len)) != 0) {
            json_decref(u);
            return NULL;
        }
    }
    return u;
}

static ms_status bind_text(us_store *st, sqlite3_stmt *q, int i, const char *v)
{
    int rc = v ? sqlite3_bind_text(q, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(q, i);
    return rc == SQLITE_OK ? MS_OK : db_fail(st, "binding a parameter");
}

/* Step q (bound) through its end: *user is its one row or NULL when it had
 * none. The statement is reset and its bindings cleared in all cases. */
static ms_status run_one(us_store *st, sqlite3_stmt *q, const char *what, const char *email,
                         json_t **user)
{
    ms_status s = MS_OK;
    json_t *u = NULL;
    int rc;

    *user = NULL;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (u == NULL) {
            u = row_user(q);
            if (u == NULL) {
                s = us__fail(MS_ERR_NO_MEMORY, "user-service store: building a user");
                break;
            }
        }
    }
    if (s == MS_OK && rc != SQLITE_DONE) {
        if (rc == SQLITE_CONSTRAINT_UNIQUE)
            s = us__fail(MS_ERR_STATE,
                         "%s: field 'email': '%.254s' is already used by another user "
                         "(emails are compared ignoring case)",
                         what, email ? email : "");
        else
            s = db_fail(st, what);
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (s != MS_OK) {
        json_decref(u);
        return s;
    }
    *user = u;
    return MS_OK;
}

ms_status us__store_insert(us_store *st, const char *id, const char *email, const char *name,
                           const char *now, long long max_users, json_t **user)
{
    sqlite3_stmt *q = st->st[ST_INSERT];
    ms_status s;

    if ((s = bind_text(st, q, 1, id)) != MS_OK || (s = bind_text(st, q, 2, email)) != MS_OK ||
        (s = bind_text(st, q, 3, name)) != MS_OK || (s = bind_text(st, q, 4, now)) != MS_OK)
        goto unbind;
    if (sqlite3_bind_int64(q, 5, max_users) != SQLITE_OK) {
        s = db_fail(st, "binding a parameter");
        goto unbind;
    }
    s = run_one(st, q, "create", email, user);
    if (s == MS_OK && *user == NULL)
        return us__fail(MS_ERR_STATE,
                        "create: max_users (%lld) users exist already; delete some or raise "
                        "max_users in the config",
                        max_users);
    return s;
unbind:
    sqlite3_clear_bindings(q);
    return s;
}

static ms_status by_key(us_store *st, int which, const char *key, const char *what,
                        const char *field, json_t **user)
{
    sqlite3_stmt *q = st->st[which];
    ms_status s = bind_text(st, q, 1, key);

    if (s != MS_OK) {
        sqlite3_clear_bindings(q);
        return s;
    }
    s = run_one(st, q, what, NULL, user);
    if (s == MS_OK && *user == NULL)
        return us__fail(MS_ERR_NOT_FOUND, "%s: no user with %s '%.254s'", what, field, key);
    return s;
}

ms_status us__store_get(us_store *st, const char *id, json_t **user)
{
    return by_key(st, ST_GET, id, "get", USER_FIELD_ID, user);
}

ms_status us__store_get_by_email(us_store *st, const char *email, json_t **user)
{
    return by_key(st, ST_GET_EMAIL, email, "get", USER_FIELD_EMAIL, user);
}

ms_status us__store_delete(us_store *st, const char *id, json_t **user)
{
    return by_key(st, ST_DELETE, id, "delete", USER_FIELD_ID, user);
}

ms_status us__store_update(us_store *st, const char *id, const char *email, const char *name,
                           const char *now, json_t **user)
{
    sqlite3_stmt *q = st->st[ST_UPDATE];
    ms_status s;

    if ((s = bind_text(st, q, 1, id)) != MS_OK || (s = bind_text(st, q, 2, email)) != MS_OK ||
        (s = bind_text(st, q, 3, name)) != MS_OK || (s = bind_text(st, q, 4, now)) != MS_OK) {
        sqlite3_clear_bindings(q);
        return s;
    }
    s = run_one(st, q, "update", email, user);
    if (s == MS_OK && *user == NULL)
        return us__fail(MS_ERR_NOT_FOUND, "update: no user with id '%s'", id);
    return s;
}

ms_status us__store_list(us_store *st, const char *after, int limit, json_t **users)
{
    sqlite3_stmt *q = st->st[ST_LIST];
    json_t *arr = json_array();
    ms_status s = MS_OK;
    int rc;

    *users = NULL;
    if (arr == NULL)
        return us__fail(MS_ERR_NO_MEMORY, "user-service store: building a list");
    if ((s = bind_text(st, q, 1, after)) != MS_OK)
        goto done;
    if (sqlite3_bind_int(q, 2, limit) != SQLITE_OK) {
        s = db_fail(st, "binding a parameter");
        goto done;
    }
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        json_t *u = row_user(q);
        if (u == NULL || json_array_append_new(arr, u) != 0) {
            s = us__fail(MS_ERR_NO_MEMORY, "user-service store: building a list");
            break;
        }
    }
    if (s == MS_OK && rc != SQLITE_DONE)
        s = db_fail(st, "list");
done:
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (s != MS_OK) {
        json_decref(arr);
        return s;
    }
    *users = arr;
    return MS_OK;
}

ms_status us__store_count(us_store *st, long long *out)
{
    sqlite3_stmt *q = st->st[ST_COUNT];
    ms_status s = MS_OK;

    if (sqlite3_step(q) == SQLITE_ROW)
        *out = sqlite3_column_int64(q, 0);
    else
        s = db_fail(st, "counting users");
    sqlite3_reset(q);
    return s;
}

ms_status us__store_ping(us_store *st)
{
    sqlite3_stmt *q;
    struct stat sb;
    int rc;

    if (st == NULL)
        return us__fail(MS_ERR_STATE, "user-service store: not open");
    if (stat(st->path, &sb) != 0)
        return us__fail(MS_ERR_IO, "user-service store %s: the database file is gone", st->path);
    if (sb.st_dev != st->dev || sb.st_ino != st->ino)
        return us__fail(MS_ERR_IO,
                        "user-service store %s: the database file was replaced since it was "
                        "opened (restart the component to reopen it)",
                        st->path);
    q = st->st[ST_PING];
    rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(st, "health query");
    return MS_OK;
}
