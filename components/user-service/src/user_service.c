/*
 * user_service.c - the user-service component: users over request/reply.
 *
 * Serves component.user-service.{create,get,list,update,delete} (JSON in,
 * JSON out; interface.h and interface.json are the contract), keeps users in
 * SQLite in its data directory (store.c) and emits events.user.{created,
 * updated,deleted} with the user as payload once a change is committed. The
 * operations themselves live in users.c, bus-free; this file is the vtable:
 * lifecycle, config, dispatch, events, health and the Testable hook.
 *
 * Threading: not reentrant; the runtime runs one call of an instance at a
 * time, so the instance's SQLite connection needs no lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mainstack/component.h>
#include <mainstack/message.h>

#include "user_service_internal.h"

#define DB_FILE "users.db"
#define SUBJECT_PREFIX "component.user-service."

typedef struct user_service {
    ms_component_ctx *ctx; /* borrowed from the runtime between initialize and shutdown */
    us_store *store;
    us_config cfg;
} user_service;

static void *us_create(void)
{
    user_service *u = calloc(1, sizeof *u);

    if (u != NULL)
        us__config_default(&u->cfg);
    return u;
}

static void us_destroy(void *self)
{
    user_service *u = self;

    if (u == NULL)
        return;
    us__store_close(u->store);
    free(u);
}

static ms_status us_initialize(void *self, ms_component_ctx *ctx)
{
    user_service *u = self;
    char path[4096];
    long long count = 0;
    us_config cfg;
    ms_status s;
    int n;

    s = us__config_parse(ms_ctx_config(ctx), &cfg);
    if (s != MS_OK)
        return s;
    n = snprintf(path, sizeof path, "%s/%s", ms_ctx_data_dir(ctx), DB_FILE);
    if (n < 0 || (size_t)n >= sizeof path)
        return us__fail(MS_ERR_INVALID_ARG, "user-service: data directory path too long");
    s = us__store_open(path, &u->store);
    if (s != MS_OK)
        return s;
    (void)us__store_count(u->store, &count);
    u->cfg = cfg;
    u->ctx = ctx;
    ms_ctx_log(ctx, MS_LOG_INFO, "store %s open (schema %d, %lld users, max_users %lld)", path,
               US_SCHEMA_VERSION, count, cfg.max_users);
    return MS_OK;
}

static void us_shutdown(void *self)
{
    user_service *u = self;

    us__store_close(u->store);
    u->store = NULL;
    u->ctx = NULL;
}

static ms_status us_config_change(void *self, const json_t *config)
{
    user_service *u = self;
    us_config cfg;
    ms_status s = us__config_parse(config, &cfg);

    if (s != MS_OK)
        return s;
    u->cfg = cfg;
    if (u->ctx != NULL)
        ms_ctx_log(u->ctx, MS_LOG_INFO, "config applied: max_users %lld, page_size_default %d",
                   cfg.max_users, cfg.page_size_default);
    return MS_OK;
}

/* Publish the event of a committed change. A failure is logged, not
 * returned: the change stands and the caller gets its reply (see
 * context.json, known issue "event-after-commit"). */
static void emit_event(user_service *u, const char *subject, const json_t *user)
{
    ms_message *ev = NULL;
    ms_status s = ms_msg_event(subject, USER_SERVICE_NAME, user, &ev);

    if (s == MS_OK)
        s = ms_ctx_publish_msg(u->ctx, ev);
    if (s != MS_OK)
        ms_ctx_log(u->ctx, MS_LOG_WARN,
                   "%s for user %s not published (the change is committed): %s", subject,
                   json_string_value(json_object_get(user, USER_FIELD_ID)), ms_last_error());
    ms_message_unref(ev);
}

static ms_status us_handle(void *self, const ms_message *in, ms_message **reply)
{
    user_service *u = self;
    const char *subject = ms_message_subject(in);
    const char *op;
    us_result res = {0};
    json_t *req = NULL;
    ms_status s;

    if (strncmp(subject, SUBJECT_PREFIX, strlen(SUBJECT_PREFIX)) != 0)
        return us__fail(MS_ERR_NOT_FOUND, "user-service: not a subject of mine: %.200s", subject);
    op = subject + strlen(SUBJECT_PREFIX);
    if (ms_message_len(in) == 0) {
        req = json_object(); /* an empty payload counts as {} */
        if (req == NULL)
            return us__fail(MS_ERR_NO_MEMORY, "%s: allocating", op);
    } else {
        s = ms_message_json(in, &req);
        if (s != MS_OK)
            return us__fail(s, "%s: %s", op, ms_last_error());
    }
    s = us__run_op(u->store, &u->cfg, op, req, &res);
    if (s != MS_OK)
        goto done;
    if (res.event != NULL)
        emit_event(u, res.event_subject, res.event);
    if (ms_message_reply(in) != NULL)
        s = ms_msg_response(in, USER_SERVICE_NAME, res.reply, reply);
done:
    us__result_reset(&res);
    json_decref(req);
    return s;
}

static ms_health us_health(void *self)
{
    user_service *u = self;
    ms_health h = {.status = MS_HEALTH_HEALTHY, .detail = ""};
    long long count;

    if (us__store_ping(u->store) != MS_OK) {
        h.status = MS_HEALTH_UNHEALTHY;
        snprintf(h.detail, sizeof h.detail, "%s", ms_last_error());
        return h;
    }
    if (u->cfg.max_users > 0 && us__store_count(u->store, &count) == MS_OK &&
        count >= u->cfg.max_users) {
        h.status = MS_HEALTH_DEGRADED;
        snprintf(h.detail, sizeof h.detail,
                 "max_users (%lld) reached: creates are refused until users are deleted or the "
                 "limit is raised",
                 u->cfg.max_users);
    }
    return h;
}

static ms_status us_run_tests(void *self, ms_test_report *report)
{
    (void)self;
    return us__selftest(report);
}

static const ms_topic topics[] = {
    {USER_SUBJECT_CREATE, 0}, {USER_SUBJECT_GET, 0},    {USER_SUBJECT_LIST, 0},
    {USER_SUBJECT_UPDATE, 0}, {USER_SUBJECT_DELETE, 0}, {NULL, 0},
};

static const ms_component_ops user_service_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {.name = USER_SERVICE_NAME,
                 .version = USER_SERVICE_VERSION,
                 .description = "Users (create, get, list, update, delete) in SQLite, with events"},
    .flags = 0,
    .create = us_create,
    .destroy = us_destroy,
    .initialize = us_initialize,
    .shutdown = us_shutdown,
    .handle_config_change = us_config_change,
    .topics = topics,
    .handle_message = us_handle,
    .health_check = us_health,
    .run_tests = us_run_tests,
};

MS_COMPONENT_EXPORT(user_service_ops)
