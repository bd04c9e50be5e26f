/*
 * users.c - the five operations of user-service on JSON, bus-free.
 *
 * Each takes the request object, checks every field (unknown fields are
 * refused, so a typo never passes silently), runs one store statement and
 * returns the reply body and, for a change, the event payload (the user) and
 * subject. Nothing is stored unless every check passed; the caller emits the
 * event only after MS_OK, that is after the commit. The Testable self-test
 * drives these functions directly against a temporary database.
 */
#include <string.h>

#include <mainstack/json.h>
#include <mainstack/message.h>

#include "user_service_internal.h"

void us__config_default(us_config *cfg)
{
    cfg->max_users = 0;
    cfg->page_size_default = USER_LIST_LIMIT_DEFAULT;
}

ms_status us__config_parse(const json_t *config, us_config *out)
{
    static const char *const allowed[] = {"max_users", "page_size_default", NULL};
    us_config c;
    long long v;
    ms_status s;

    us__config_default(&c);
    if (config == NULL) { /* no config at all: the defaults */
        *out = c;
        return MS_OK;
    }
    if (!json_is_object(config))
        return us__fail(MS_ERR_SCHEMA, "user-service config: must be a JSON object");
    s = us__check_fields(config, "user-service config", allowed);
    if (s != MS_OK)
        return s;
    v = c.max_users;
    s = ms_json_get_int(config, "max_users", "user-service config", 0, &v);
    if (s != MS_OK)
        return s;
    if (v < 0)
        return us__fail(MS_ERR_SCHEMA,
                        "user-service config: 'max_users' must be >= 0 (0: no limit), got %lld", v);
    c.max_users = v;
    v = c.page_size_default;
    s = ms_json_get_int(config, "page_size_default", "user-service config", 0, &v);
    if (s != MS_OK)
        return s;
    if (v < 1 || v > USER_LIST_LIMIT_MAX)
        return us__fail(MS_ERR_SCHEMA,
                        "user-service config: 'page_size_default' must be 1..%d, got %lld",
                        USER_LIST_LIMIT_MAX, v);
    c.page_size_default = (int)v;
    *out = c;
    return MS_OK;
}

void us__result_reset(us_result *r)
{
    json_decref(r->reply);
    json_decref(r->event);
    r->reply = NULL;
    r->event = NULL;
    r->event_subject = NULL;
}

/* A string field: present (when required) and a string; *len its length. */
static ms_status get_str(const json_t *req, const char *key, const char *where, bool required,
                         const char **out, size_t *len)
{
    json_t *v = json_object_get(req, key);

    *out = NULL;
    *len = 0;
    if (v == NULL) {
        if (required)
            return us__fail(MS_ERR_SCHEMA, "%s: field '%s' is required", where, key);
        return MS_OK;
    }
    if (!json_is_string(v))
        return us__fail(MS_ERR_SCHEMA, "%s: field '%s' must be a string", where, key);
    *out = json_string_value(v);
    *len = json_string_length(v);
    if (strlen(*out) != *len)
        return us__fail(MS_ERR_SCHEMA, "%s: field '%s' contains a NUL character", where, key);
    return MS_OK;
}

static ms_status op_create(us_store *st, const us_config *cfg, const json_t *req, us_result *out)
{
    static const char *const allowed[] = {USER_FIELD_EMAIL, USER_FIELD_NAME, NULL};
    char id[MS_ID_LEN + 1], now[MS_TIMESTAMP_LEN + 1];
    const char *email, *name;
    size_t email_len, name_len;
    json_t *user;
    ms_status s;

    if ((s = us__check_fields(req, "create", allowed)) != MS_OK ||
        (s = get_str(req, USER_FIELD_EMAIL, "create", true, &email, &email_len)) != MS_OK ||
        (s = us__check_email(email, email_len, "create")) != MS_OK ||
        (s = get_str(req, USER_FIELD_NAME, "create", true, &name, &name_len)) != MS_OK ||
        (s = us__check_name(name, name_len, "create")) != MS_OK)
        return s;
    ms_id_new(id);
    ms_timestamp_now(now);
    s = us__store_insert(st, id, email, name, now, cfg->max_users, &user);
    if (s != MS_OK)
        return s;
    out->reply = user;
    out->event = json_incref(user);
    out->event_subject = USER_EVENT_CREATED;
    return MS_OK;
}

static ms_status op_get(us_store *st, const us_config *cfg, const json_t *req, us_result *out)
{
    static const char *const allowed[] = {USER_FIELD_ID, USER_FIELD_EMAIL, NULL};
    const char *id, *email;
    size_t id_len, email_len;
    ms_status s;

    (void)cfg;
    if ((s = us__check_fields(req, "get", allowed)) != MS_OK ||
        (s = get_str(req, USER_FIELD_ID, "get", false, &id, &id_len)) != MS_OK ||
        (s = get_str(req, USER_FIELD_EMAIL, "get", false, &email, &email_len)) != MS_OK)
        return s;
    if ((id == NULL) == (email == NULL))
        return us__fail(MS_ERR_SCHEMA, "get: give exactly one of the fields 'id' and 'email'");
    if (id != NULL) {
        if ((s = us__check_id(id, id_len, "get", USER_FIELD_ID)) != MS_OK)
            return s;
        return us__store_get(st, id, &out->reply);
    }
    if ((s = us__check_email(email, email_len, "get")) != MS_OK)
        return s;
    return us__store_get_by_email(st, email, &out->reply);
}

static ms_status op_list(us_store *st, const us_config *cfg, const json_t *req, us_result *out)
{
    static const char *const allowed[] = {USER_FIELD_LIMIT, USER_FIELD_CURSOR, NULL};
    long long limit = cfg->page_size_default;
    const char *cursor = "";
    json_t *users = NULL, *page = NULL, *cur;
    json_t *next = NULL;
    ms_status s;

    if ((s = us__check_fields(req, "list", allowed)) != MS_OK)
        return s;
    if (json_object_get(req, USER_FIELD_LIMIT) != NULL) {
        json_t *v = json_object_get(req, USER_FIELD_LIMIT);
        if (!json_is_integer(v))
            return us__fail(MS_ERR_SCHEMA, "list: field 'limit' must be an integer (1..%d)",
                            USER_LIST_LIMIT_MAX);
        limit = json_integer_value(v);
        if (limit < 1 || limit > USER_LIST_LIMIT_MAX)
            return us__fail(MS_ERR_SCHEMA, "list: field 'limit' must be 1..%d, got %lld",
                            USER_LIST_LIMIT_MAX, limit);
    }
    cur = json_object_get(req, USER_FIELD_CURSOR);
    if (cur != NULL && !json_is_null(cur)) {
        if (!json_is_string(cur))
            return us__fail(MS_ERR_SCHEMA,
                            "list: field 'cursor' must be a string (the next_cursor of the "
                            "previous page) or null");
        cursor = json_string_value(cur);
        s = us__check_id(cursor, json_string_length(cur), "list", USER_FIELD_CURSOR);
        if (s != MS_OK)
            return s;
    }
    /* One more than asked tells whether another page follows. */
    s = us__store_list(st, cursor, (int)limit + 1, &users);
    if (s != MS_OK)
        return s;
    if ((long long)json_array_size(users) > limit) {
        json_t *last;
        if (json_array_remove(users, (size_t)limit) != 0)
            goto nomem;
        last = json_array_get(users, (size_t)limit - 1);
        next = json_incref(json_object_get(last, USER_FIELD_ID));
    } else {
        next = json_null();
    }
    page = json_object();
    if (page == NULL)
        goto nomem;
    /* set_new takes the value's reference whether it succeeds or not. */
    if (json_object_set_new(page, USER_FIELD_USERS, users) != 0) {
        users = NULL;
        goto nomem;
    }
    users = NULL;
    if (json_object_set_new(page, USER_FIELD_NEXT_CURSOR, next) != 0) {
        next = NULL;
        goto nomem;
    }
    out->reply = page;
    return MS_OK;
nomem:
    json_decref(users);
    json_decref(next);
    json_decref(page);
    return us__fail(MS_ERR_NO_MEMORY, "list: building the page");
}

static ms_status op_update(us_store *st, const us_config *cfg, const json_t *req, us_result *out)
{
    static const char *const allowed[] = {USER_FIELD_ID, USER_FIELD_EMAIL, USER_FIELD_NAME, NULL};
    char now[MS_TIMESTAMP_LEN + 1];
    const char *id, *email, *name;
    size_t id_len, email_len, name_len;
    json_t *user;
    ms_status s;

    (void)cfg;
    if ((s = us__check_fields(req, "update", allowed)) != MS_OK ||
        (s = get_str(req, USER_FIELD_ID, "update", true, &id, &id_len)) != MS_OK ||
        (s = us__check_id(id, id_len, "update", USER_FIELD_ID)) != MS_OK ||
        (s = get_str(req, USER_FIELD_EMAIL, "update", false, &email, &email_len)) != MS_OK ||
        (s = get_str(req, USER_FIELD_NAME, "update", false, &name, &name_len)) != MS_OK)
        return s;
    if (email == NULL && name == NULL)
        return us__fail(MS_ERR_SCHEMA,
                        "update: nothing to change: give field 'email' and/or 'name'");
    if (email != NULL && (s = us__check_email(email, email_len, "update")) != MS_OK)
        return s;
    if (name != NULL && (s = us__check_name(name, name_len, "update")) != MS_OK)
        return s;
    ms_timestamp_now(now);
    s = us__store_update(st, id, email, name, now, &user);
    if (s != MS_OK)
        return s;
    out->reply = user;
    out->event = json_incref(user);
    out->event_subject = USER_EVENT_UPDATED;
    return MS_OK;
}

static ms_status op_delete(us_store *st, const us_config *cfg, const json_t *req, us_result *out)
{
    static const char *const allowed[] = {USER_FIELD_ID, NULL};
    const char *id;
    size_t id_len;
    json_t *user;
    ms_status s;

    (void)cfg;
    if ((s = us__check_fields(req, "delete", allowed)) != MS_OK ||
        (s = get_str(req, USER_FIELD_ID, "delete", true, &id, &id_len)) != MS_OK ||
        (s = us__check_id(id, id_len, "delete", USER_FIELD_ID)) != MS_OK)
        return s;
    s = us__store_delete(st, id, &user);
    if (s != MS_OK)
        return s;
    out->reply = user;
    out->event = json_incref(user);
    out->event_subject = USER_EVENT_DELETED;
    return MS_OK;
}

typedef ms_status (*op_fn)(us_store *, const us_config *, const json_t *, us_result *);

static const struct {
    const char *name;
    op_fn fn;
} ops[] = {
    {"create", op_create}, {"get", op_get},       {"list", op_list},
    {"update", op_update}, {"delete", op_delete},
};

ms_status us__run_op(us_store *st, const us_config *cfg, const char *op, const json_t *req,
                     us_result *out)
{
    if (st == NULL || cfg == NULL || op == NULL || req == NULL || out == NULL)
        return us__fail(MS_ERR_INVALID_ARG, "user-service: NULL argument");
    memset(out, 0, sizeof *out);
    if (!json_is_object(req))
        return us__fail(MS_ERR_SCHEMA, "%s: the payload must be a JSON object", op);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (strcmp(ops[i].name, op) == 0) {
            ms_status s = ops[i].fn(st, cfg, req, out);
            if (s != MS_OK)
                us__result_reset(out);
            return s;
        }
    }
    return us__fail(MS_ERR_NOT_FOUND,
                    "user-service: unknown operation '%.64s' (create, get, list, update, delete)",
                    op);
}
