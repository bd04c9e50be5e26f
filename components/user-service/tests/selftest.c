/*
 * selftest.c - the Testable suite of user-service (its run_tests).
 *
 * Compiled into the plugin: each test runs the real operations (users.c)
 * against a fresh SQLite database in a temporary directory, never the
 * instance's own data, and reports under its own name. The same cases also
 * run through the runtime and the bus in test_user_service.c; these catch a
 * broken build of the component itself on a host where it is deployed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include <mainstack/json.h>

#include "../src/user_service_internal.h"

typedef struct fixture {
    char dir[256];
    char path[320];
    us_store *st;
    us_config cfg;
    char why[900];
} fixture;

#define CHECK(f, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf((f)->why, sizeof(f)->why, __VA_ARGS__);                                       \
            return false;                                                                          \
        }                                                                                          \
    } while (0)

/* Run op with the request given as JSON text; res owned by the caller. */
static ms_status call(fixture *f, const char *op, const char *json, us_result *res)
{
    json_t *req = NULL;
    ms_status s = ms_json_parse(json, strlen(json), "selftest", &req);

    memset(res, 0, sizeof *res);
    if (s != MS_OK)
        return s;
    s = us__run_op(f->st, &f->cfg, op, req, res);
    json_decref(req);
    return s;
}

static long long count(fixture *f)
{
    long long n = -1;
    return us__store_count(f->st, &n) == MS_OK ? n : -1;
}

/* Create a user; its id is copied to id (37 bytes). */
static ms_status make_user(fixture *f, const char *email, const char *name, char *id)
{
    char json[512];
    us_result r;
    ms_status s;

    snprintf(json, sizeof json, "{\"email\":\"%s\",\"name\":\"%s\"}", email, name);
    s = call(f, "create", json, &r);
    if (s == MS_OK && id != NULL)
        snprintf(id, USER_ID_LEN + 1, "%s",
                 json_string_value(json_object_get(r.reply, USER_FIELD_ID)));
    us__result_reset(&r);
    return s;
}

static bool t_create_and_get(fixture *f)
{
    char id[USER_ID_LEN + 1], json[128];
    us_result r;
    ms_status s = call(f, "create", "{\"email\":\"ada@example.com\",\"name\":\"Ada\"}", &r);

    CHECK(f, s == MS_OK, "create failed: %s", ms_last_error());
    CHECK(f, r.event != NULL && strcmp(r.event_subject, USER_EVENT_CREATED) == 0,
          "create made no %s event", USER_EVENT_CREATED);
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r.reply, "id")));
    CHECK(f, us__check_id(id, strlen(id), "selftest", "id") == MS_OK, "bad id '%s'", id);
    CHECK(f, json_object_get(r.reply, "created_at") != NULL, "no created_at in the reply");
    us__result_reset(&r);
    snprintf(json, sizeof json, "{\"id\":\"%s\"}", id);
    s = call(f, "get", json, &r);
    CHECK(f, s == MS_OK, "get failed: %s", ms_last_error());
    CHECK(f, strcmp(json_string_value(json_object_get(r.reply, "email")), "ada@example.com") == 0,
          "get returned another email");
    CHECK(f, r.event == NULL, "get made an event");
    us__result_reset(&r);
    s = call(f, "get", "{\"email\":\"ADA@Example.COM\"}", &r);
    CHECK(f, s == MS_OK, "get by email (other case) failed: %s", ms_last_error());
    us__result_reset(&r);
    s = call(f, "get", "{\"id\":\"00000000-0000-7000-8000-000000000000\"}", &r);
    CHECK(f, s == MS_ERR_NOT_FOUND, "get of an unknown id gave %s", ms_status_name(s));
    return true;
}

static bool t_duplicate_email(fixture *f)
{
    us_result r;
    ms_status s;

    CHECK(f, make_user(f, "grace@example.com", "Grace", NULL) == MS_OK, "create: %s",
          ms_last_error());
    s = call(f, "create", "{\"email\":\"Grace@EXAMPLE.com\",\"name\":\"Other\"}", &r);
    CHECK(f, s == MS_ERR_STATE, "a duplicate email (other case) gave %s", ms_status_name(s));
    CHECK(f, strstr(ms_last_error(), "'email'") != NULL, "the error does not name the field: %s",
          ms_last_error());
    CHECK(f, count(f) == 1, "%lld users stored, want 1", count(f));
    return true;
}

static bool t_invalid_email(fixture *f)
{
    static const char *const bad[] = {
        "plain",
        "a@b",
        "a@@b.com",
        "@example.com",
        "a@",
        "a b@example.com",
        "a@exa mple.com",
        "a@-x.com",
        "a@x..com",
        ".a@x.com",
        "a.@x.com",
        "a@x.com.",
        "a\\\"b@x.com",
        "\\u00e9@x.com",
        "a@x_y.com",
    };
    char json[256];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        us_result r;
        ms_status s;
        snprintf(json, sizeof json, "{\"email\":\"%s\",\"name\":\"N\"}", bad[i]);
        s = call(f, "create", json, &r);
        us__result_reset(&r);
        CHECK(f, s == MS_ERR_SCHEMA, "email %s was not refused (%s)", bad[i], ms_status_name(s));
        CHECK(f, strstr(ms_last_error(), "'email'") != NULL,
              "error for %s does not name the field: %s", bad[i], ms_last_error());
    }
    CHECK(f, count(f) == 0, "%lld users stored after invalid creates", count(f));
    CHECK(f, make_user(f, "o'brien+tag@mail.example-host.org", "O", NULL) == MS_OK,
          "a valid address was refused: %s", ms_last_error());
    return true;
}

static bool t_validation(fixture *f)
{
    static const struct {
        const char *op, *json, *field;
    } bad[] = {
        {"create", "{\"email\":\"a@x.com\"}", "'name'"},
        {"create", "{\"name\":\"A\"}", "'email'"},
        {"create", "{\"email\":\"a@x.com\",\"name\":\"A\",\"role\":\"admin\"}", "'role'"},
        {"create", "{\"email\":\"a@x.com\",\"name\":42}", "'name'"},
        {"create", "{\"email\":\"a@x.com\",\"name\":\"  \"}", "'name'"},
        {"create", "{\"email\":\"a@x.com\",\"name\":\"a\\u0001b\"}", "'name'"},
        {"get", "{}", "'id'"},
        {"get", "{\"id\":\"42\"}", "'id'"},
        {"update", "{\"id\":\"00000000-0000-7000-8000-000000000000\"}", "'email'"},
        {"list", "{\"limit\":0}", "'limit'"},
        {"list", "{\"limit\":101}", "'limit'"},
        {"list", "{\"cursor\":\"abc\"}", "'cursor'"},
        {"delete", "{\"id\":7}", "'id'"},
    };
    char name[USER_NAME_MAX + 32];
    char json[USER_NAME_MAX + 96];
    us_result r;
    ms_status s;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s = call(f, bad[i].op, bad[i].json, &r);
        us__result_reset(&r);
        CHECK(f, s == MS_ERR_SCHEMA, "%s %s gave %s", bad[i].op, bad[i].json, ms_status_name(s));
        CHECK(f, strstr(ms_last_error(), bad[i].field) != NULL, "%s %s: error does not name %s: %s",
              bad[i].op, bad[i].json, bad[i].field, ms_last_error());
    }
    memset(name, 'x', USER_NAME_MAX + 1);
    name[USER_NAME_MAX + 1] = '\0';
    snprintf(json, sizeof json, "{\"email\":\"a@x.com\",\"name\":\"%s\"}", name);
    s = call(f, "create", json, &r);
    us__result_reset(&r);
    CHECK(f, s == MS_ERR_SCHEMA, "a %d-byte name gave %s", USER_NAME_MAX + 1, ms_status_name(s));
    name[USER_NAME_MAX] = '\0';
    snprintf(json, sizeof json, "{\"email\":\"a@x.com\",\"name\":\"%s\"}", name);
    s = call(f, "create", json, &r);
    us__result_reset(&r);
    CHECK(f, s == MS_OK, "a %d-byte name was refused: %s", USER_NAME_MAX, ms_last_error());
    CHECK(f,
          !us__utf8_valid("\xC0\xAF", 2) && !us__utf8_valid("\xED\xA0\x80", 3) &&
              us__utf8_valid("\xC3\xA9t\xC3\xA9", 6),
          "the UTF-8 check is wrong");
    CHECK(f, count(f) == 1, "%lld users stored, want 1", count(f));
    return true;
}

static bool t_list_paging(fixture *f)
{
    char email[64], cursor[USER_ID_LEN + 1] = "", json[128], prev[USER_ID_LEN + 1] = "";
    int seen = 0, pages = 0;

    for (int i = 0; i < 5; i++) {
        snprintf(email, sizeof email, "user%d@example.com", i);
        CHECK(f, make_user(f, email, "U", NULL) == MS_OK, "create: %s", ms_last_error());
    }
    for (;;) {
        us_result r;
        json_t *users, *next;
        ms_status s;
        if (cursor[0] == '\0')
            snprintf(json, sizeof json, "{\"limit\":2}");
        else
            snprintf(json, sizeof json, "{\"limit\":2,\"cursor\":\"%s\"}", cursor);
        s = call(f, "list", json, &r);
        CHECK(f, s == MS_OK, "list: %s", ms_last_error());
        users = json_object_get(r.reply, USER_FIELD_USERS);
        next = json_object_get(r.reply, USER_FIELD_NEXT_CURSOR);
        pages++;
        for (size_t i = 0; i < json_array_size(users); i++) {
            const char *id = json_string_value(json_object_get(json_array_get(users, i), "id"));
            if (strcmp(id, prev) <= 0) {
                us__result_reset(&r);
                CHECK(f, false, "list out of order or repeated at %s", id);
            }
            snprintf(prev, sizeof prev, "%s", id);
            seen++;
        }
        if (json_is_null(next)) {
            us__result_reset(&r);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        us__result_reset(&r);
        CHECK(f, pages < 10, "paging does not end");
    }
    CHECK(f, seen == 5 && pages == 3, "saw %d users in %d pages, want 5 in 3", seen, pages);
    return true;
}

static bool t_update(fixture *f)
{
    char id[USER_ID_LEN + 1], json[160];
    us_result r;
    ms_status s;

    CHECK(f, make_user(f, "x@example.com", "X", id) == MS_OK, "create: %s", ms_last_error());
    CHECK(f, make_user(f, "y@example.com", "Y", NULL) == MS_OK, "create: %s", ms_last_error());
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"name\":\"Xavier\"}", id);
    s = call(f, "update", json, &r);
    CHECK(f, s == MS_OK, "update: %s", ms_last_error());
    CHECK(f,
          strcmp(json_string_value(json_object_get(r.reply, "name")), "Xavier") == 0 &&
              strcmp(json_string_value(json_object_get(r.reply, "email")), "x@example.com") == 0,
          "update changed the wrong fields");
    CHECK(f, r.event_subject != NULL && strcmp(r.event_subject, USER_EVENT_UPDATED) == 0,
          "no %s event", USER_EVENT_UPDATED);
    us__result_reset(&r);
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"email\":\"Y@example.com\"}", id);
    s = call(f, "update", json, &r);
    us__result_reset(&r);
    CHECK(f, s == MS_ERR_STATE, "update to a taken email gave %s", ms_status_name(s));
    return true;
}

static bool t_delete(fixture *f)
{
    char id[USER_ID_LEN + 1], json[96];
    us_result r;
    ms_status s;

    CHECK(f, make_user(f, "d@example.com", "D", id) == MS_OK, "create: %s", ms_last_error());
    snprintf(json, sizeof json, "{\"id\":\"%s\"}", id);
    s = call(f, "delete", json, &r);
    CHECK(f, s == MS_OK, "delete: %s", ms_last_error());
    CHECK(f, r.event_subject != NULL && strcmp(r.event_subject, USER_EVENT_DELETED) == 0,
          "no %s event", USER_EVENT_DELETED);
    us__result_reset(&r);
    s = call(f, "get", json, &r);
    us__result_reset(&r);
    CHECK(f, s == MS_ERR_NOT_FOUND, "get after delete gave %s", ms_status_name(s));
    s = call(f, "delete", json, &r);
    us__result_reset(&r);
    CHECK(f, s == MS_ERR_NOT_FOUND, "a second delete gave %s", ms_status_name(s));
    CHECK(f, make_user(f, "d@example.com", "D again", NULL) == MS_OK,
          "the email of a deleted user cannot be reused: %s", ms_last_error());
    return true;
}

static bool t_max_users(fixture *f)
{
    us_result r;
    ms_status s;

    f->cfg.max_users = 2;
    CHECK(f, make_user(f, "m1@example.com", "M", NULL) == MS_OK, "create: %s", ms_last_error());
    CHECK(f, make_user(f, "m2@example.com", "M", NULL) == MS_OK, "create: %s", ms_last_error());
    s = call(f, "create", "{\"email\":\"m3@example.com\",\"name\":\"M\"}", &r);
    us__result_reset(&r);
    CHECK(f, s == MS_ERR_STATE && strstr(ms_last_error(), "max_users") != NULL,
          "a create past max_users gave %s (%s)", ms_status_name(s), ms_last_error());
    CHECK(f, count(f) == 2, "%lld users stored, want 2", count(f));
    return true;
}

static bool t_config(fixture *f)
{
    static const char *const bad[] = {"{\"max_users\":-1}",          "{\"page_size_default\":0}",
                                      "{\"page_size_default\":500}", "{\"max_user\":3}",
                                      "{\"max_users\":\"ten\"}",     "[]"};
    us_config c;
    json_t *j;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_status s;
        CHECK(f, ms_json_parse(bad[i], strlen(bad[i]), "selftest", &j) == MS_OK, "parse: %s",
              ms_last_error());
        s = us__config_parse(j, &c);
        json_decref(j);
        CHECK(f, s == MS_ERR_SCHEMA, "config %s was accepted", bad[i]);
    }
    {
        static const char good[] = "{\"max_users\":5,\"page_size_default\":7}";
        CHECK(f, ms_json_parse(good, strlen(good), "selftest", &j) == MS_OK, "parse: %s",
              ms_last_error());
    }
    CHECK(f, us__config_parse(j, &c) == MS_OK && c.max_users == 5 && c.page_size_default == 7,
          "a good config was refused: %s", ms_last_error());
    json_decref(j);
    return true;
}

static bool t_reopen(fixture *f)
{
    char id[USER_ID_LEN + 1], json[96];
    us_result r;
    ms_status s;

    CHECK(f, make_user(f, "keep@example.com", "Keep", id) == MS_OK, "create: %s", ms_last_error());
    us__store_close(f->st);
    f->st = NULL;
    s = us__store_open(f->path, &f->st);
    CHECK(f, s == MS_OK, "reopen: %s", ms_last_error());
    snprintf(json, sizeof json, "{\"id\":\"%s\"}", id);
    s = call(f, "get", json, &r);
    us__result_reset(&r);
    CHECK(f, s == MS_OK, "the user is gone after reopening: %s", ms_last_error());
    CHECK(f, us__store_ping(f->st) == MS_OK, "ping: %s", ms_last_error());
    return true;
}

static void remove_db(const char *path);

typedef struct opener {
    const char *path;
    ms_status status;
    char error[256];
} opener;

static void *open_close(void *arg)
{
    opener *o = arg;
    us_store *st = NULL;

    o->status = us__store_open(o->path, &st);
    if (o->status != MS_OK)
        snprintf(o->error, sizeof o->error, "%s", ms_last_error());
    us__store_close(st);
    return NULL;
}

/* Instances starting together on a new file: both open it, one migrates. */
static bool t_concurrent_open(fixture *f)
{
    char path[340];
    opener o[4];
    pthread_t th[4];
    size_t started = 0;

    snprintf(path, sizeof path, "%s.shared.db", f->path);
    for (size_t i = 0; i < 4; i++) {
        o[i] = (opener){.path = path, .status = MS_ERR_INTERNAL};
        if (pthread_create(&th[i], NULL, open_close, &o[i]) == 0)
            started++;
        else
            break;
    }
    for (size_t i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    remove_db(path);
    CHECK(f, started == 4, "could not start the threads");
    for (size_t i = 0; i < 4; i++)
        CHECK(f, o[i].status == MS_OK, "opener %zu: %s", i, o[i].error);
    return true;
}

/* A database written by a newer build is refused, not misread. */
static bool t_newer_schema(fixture *f)
{
    char path[340];
    sqlite3 *db = NULL;
    us_store *st = NULL;
    ms_status s;
    int rc;

    snprintf(path, sizeof path, "%s.newer.db", f->path);
    rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL);
    sqlite3_close(db);
    CHECK(f, rc == SQLITE_OK, "preparing the newer database failed");
    s = us__store_open(path, &st);
    us__store_close(st);
    remove_db(path);
    CHECK(f, s == MS_ERR_UNSUPPORTED, "a schema version 99 database gave %s", ms_status_name(s));
    CHECK(f, strstr(ms_last_error(), "newer") != NULL, "error: %s", ms_last_error());
    return true;
}

static void remove_db(const char *path)
{
    char p[400];

    (void)unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    (void)unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    (void)unlink(p);
}

ms_status us__selftest(ms_test_report *report)
{
    static const struct {
        const char *name;
        bool (*fn)(fixture *);
    } tests[] = {
        {"create_and_get", t_create_and_get},
        {"duplicate_email", t_duplicate_email},
        {"invalid_email", t_invalid_email},
        {"validation", t_validation},
        {"list_paging", t_list_paging},
        {"update", t_update},
        {"delete", t_delete},
        {"max_users", t_max_users},
        {"config", t_config},
        {"reopen", t_reopen},
        {"concurrent_open", t_concurrent_open},
        {"newer_schema", t_newer_schema},
    };
    const char *tmp = getenv("TMPDIR");
    fixture f;
    ms_status s = MS_OK;

    memset(&f, 0, sizeof f);
    snprintf(f.dir, sizeof f.dir, "%s/user-service-selftest.XXXXXX",
             tmp && tmp[0] && strlen(tmp) < 200 ? tmp : "/tmp");
    if (mkdtemp(f.dir) == NULL)
        return us__fail(MS_ERR_IO, "user-service selftest: cannot create %s", f.dir);
    for (size_t i = 0; i < sizeof tests / sizeof tests[0] && s == MS_OK; i++) {
        bool ok = false;
        snprintf(f.path, sizeof f.path, "%s/t%zu.db", f.dir, i);
        us__config_default(&f.cfg);
        f.why[0] = '\0';
        if (us__store_open(f.path, &f.st) != MS_OK)
            snprintf(f.why, sizeof f.why, "opening %s: %s", f.path, ms_last_error());
        else
            ok = tests[i].fn(&f);
        us__store_close(f.st);
        f.st = NULL;
        remove_db(f.path);
        s = ms_test_report_add(report, tests[i].name, ok, "%s", ok ? "ok" : f.why);
    }
    (void)rmdir(f.dir);
    return s;
}
