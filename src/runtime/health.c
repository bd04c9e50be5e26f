/*
 * health.c - health checks and the health subjects.
 *
 * A check is an urgent exclusive task on the instance's mailbox: it jumps
 * the queue (it asks whether the instance responds, not how long its queue
 * is) and never runs beside a handler. Its result is published on
 * mainstack.health.<component>; N unhealthy results in a row stop the
 * instance for a restart (the check task is exclusive, so it stops it in
 * place). A check that does not return in time is counted unhealthy by the
 * supervisor (supervisor.c), which only sees the bookkeeping kept here.
 * Requests: mainstack.health.<component>.get (each instance answers with its
 * status) and mainstack.health (each host answers with all its instances).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"

/* Status JSON with inst->mu held. */
static json_t *status_json_locked(ms_instance *inst)
{
    const char *status, *detail;
    char buf[MS__ERRTEXT_MAX + 32];

    switch (inst->state) {
    case MS_INSTANCE_RUNNING:
        status = ms_health_status_str(inst->health.status);
        detail = inst->health.detail;
        break;
    case MS_INSTANCE_STARTING:
        status = "degraded";
        detail = "starting";
        break;
    default:
        status = "unhealthy";
        snprintf(buf, sizeof buf, "%s%s%s", ms_instance_state_str(inst->state),
                 inst->stop_reason[0] != '\0' ? ": " : "", inst->stop_reason);
        detail = buf;
        break;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "component",
                     inst->ops->metadata.name, "instance", inst->id, "version",
                     inst->ops->metadata.version, "state", ms_instance_state_str(inst->state),
                     "status", status, "detail", detail, "time", inst->health_time, "restarts",
                     (int)inst->restarts, "host", inst->rt->host_id);
}

json_t *ms__instance_health_json(ms_instance *inst)
{
    json_t *j;
    pthread_mutex_lock(&inst->mu);
    j = status_json_locked(inst);
    pthread_mutex_unlock(&inst->mu);
    return j;
}

void ms__health_publish(ms_instance *inst)
{
    char subject[MS_COMPONENT_NAME_MAX + 32];
    json_t *j = ms__instance_health_json(inst);
    if (j == NULL)
        return;
    snprintf(subject, sizeof subject, "mainstack.health.%s", inst->ops->metadata.name);
    ms__publish_json(inst->rt, subject, j);
    json_decref(j);
}

/* --- checks ------------------------------------------------------------------ */

typedef struct check_req {
    ms_instance *inst;
    uint64_t seq;
    atomic_int refs;      /* the task's, and a waiter's when there is one */
    ms__completion *done; /* owned; NULL without a waiter */
    ms_health result;
} check_req;

static void check_req_unref(check_req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    ms__completion_unref(r->done);
    ms__free(r);
}

static void check_task(void *arg)
{
    check_req *r = arg;
    ms_instance *inst = r->inst;
    ms_runtime *rt = inst->rt;
    ms_health h = {MS_HEALTH_HEALTHY, ""};
    bool counted = false, stop = false;
    char reason[MS__ERRTEXT_MAX];

    if (!inst->initialized) {
        pthread_mutex_lock(&inst->mu);
        if (r->seq == inst->check_seq)
            inst->check_in_flight = false;
        pthread_mutex_unlock(&inst->mu);
        ms__completion_finish(r->done, MS_ERR_STATE, "the instance is not running");
        check_req_unref(r);
        return;
    }
    if (inst->ops->health_check != NULL) {
        h = inst->ops->health_check(inst->self);
        h.detail[sizeof h.detail - 1] = '\0';
        if (h.status != MS_HEALTH_HEALTHY && h.status != MS_HEALTH_DEGRADED)
            h.status = MS_HEALTH_UNHEALTHY; /* an unknown value is not healthy */
    }
    pthread_mutex_lock(&inst->mu);
    if (r->seq == inst->check_seq && !inst->check_timed_out) {
        /* The current check, on time. (A late one was already counted.) */
        inst->check_in_flight = false;
        inst->health = h;
        ms_timestamp_now(inst->health_time);
        counted = true;
        if (h.status == MS_HEALTH_UNHEALTHY) {
            inst->consecutive_unhealthy++;
            if (inst->consecutive_unhealthy >= (uint32_t)rt->opts.unhealthy_threshold &&
                !inst->removing) {
                snprintf(reason, sizeof reason, "unhealthy %u checks in a row: %.200s",
                         inst->consecutive_unhealthy, h.detail);
                stop = true;
            }
        } else {
            inst->consecutive_unhealthy = 0;
        }
    } else if (r->seq == inst->check_seq) {
        inst->check_in_flight = false;
    }
    pthread_mutex_unlock(&inst->mu);
    if (counted)
        ms__health_publish(inst);
    r->result = h;
    ms__completion_finish(r->done, MS_OK, NULL);
    if (stop)
        ms__instance_stop_now(inst, true, reason); /* exclusive: stop in place */
    else
        ms__instance_after_call(inst);
    check_req_unref(r);
}

static void check_drop(void *arg)
{
    check_req *r = arg;
    ms__completion_finish(r->done, MS_ERR_STATE, "the instance was stopped");
    check_req_unref(r);
}

/* Post a check (inst->mu held). With waiter, *waiter gets a reference the
 * caller releases with check_req_unref. */
static ms_status post_check(ms_instance *inst, check_req **waiter)
{
    check_req *r;
    ms_status s;
    r = ms__calloc(1, sizeof *r);
    if (r == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "health check: allocating");
    r->inst = inst;
    atomic_init(&r->refs, waiter != NULL ? 2 : 1);
    if (waiter != NULL && (s = ms__completion_new(1, &r->done)) != MS_OK) {
        ms__free(r);
        return s;
    }
    r->seq = inst->check_seq + 1;
    s = ms__mailbox_post(inst->mb, check_task, check_drop, r,
                         MS__TASK_CONTROL | MS__TASK_EXCLUSIVE | MS__TASK_URGENT, 0);
    if (s != MS_OK) {
        ms__completion_unref(r->done);
        ms__free(r);
        return s;
    }
    inst->check_seq = r->seq;
    inst->check_in_flight = true;
    inst->check_timed_out = false;
    inst->check_started_ms = ms__mono_ms();
    inst->next_check_ms = inst->check_started_ms + inst->rt->opts.health_interval_ms;
    if (waiter != NULL)
        *waiter = r;
    return MS_OK;
}

ms_status ms__health_post_check(ms_instance *inst)
{
    return post_check(inst, NULL);
}

bool ms__health_timed_out(ms_instance *inst)
{
    ms_runtime *rt = inst->rt;
    inst->check_timed_out = true;
    inst->consecutive_unhealthy++;
    inst->health.status = MS_HEALTH_UNHEALTHY;
    snprintf(inst->health.detail, sizeof inst->health.detail,
             "health check did not return within %d ms", rt->opts.health_timeout_ms);
    ms_timestamp_now(inst->health_time);
    ms_log_kv(MS_LOG_WARN, MOD, "health check timed out", "component", inst->ops->metadata.name,
              "instance", inst->id, NULL);
    return inst->consecutive_unhealthy >= (uint32_t)rt->opts.unhealthy_threshold &&
           !inst->stop_pending && !inst->removing;
}

ms_status ms_instance_check_health(ms_instance *inst, int timeout_ms, ms_health *out)
{
    check_req *r = NULL;
    ms_status s;
    bool stop = false;

    if (inst == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_instance_check_health: inst and out are required");
    if (ms__mailbox_current() != NULL)
        return ms__err(MS_ERR_STATE, "ms_instance_check_health: not callable from a component "
                       "callback");
    if (timeout_ms <= 0)
        timeout_ms = inst->rt->opts.health_timeout_ms;
    pthread_mutex_lock(&inst->mu);
    if (inst->state != MS_INSTANCE_RUNNING) {
        ms_instance_state st = inst->state;
        pthread_mutex_unlock(&inst->mu);
        return ms__err(MS_ERR_STATE, "%s instance %s is %s, not running",
                       inst->ops->metadata.name, inst->id, ms_instance_state_str(st));
    }
    s = post_check(inst, &r);
    pthread_mutex_unlock(&inst->mu);
    if (s != MS_OK)
        return s;
    if (!ms__completion_wait(r->done, timeout_ms)) {
        pthread_mutex_lock(&inst->mu);
        if (r->seq == inst->check_seq && inst->check_in_flight && !inst->check_timed_out) {
            stop = ms__health_timed_out(inst);
            if (stop)
                ms__instance_request_stop_locked(inst, true, "health checks timed out");
        }
        pthread_mutex_unlock(&inst->mu);
        ms__health_publish(inst);
        check_req_unref(r);
        out->status = MS_HEALTH_UNHEALTHY;
        snprintf(out->detail, sizeof out->detail, "health check did not return within %d ms",
                 timeout_ms);
        return ms__err(MS_ERR_TIMEOUT, "%s instance %s: health check did not return within %d ms",
                       inst->ops->metadata.name, inst->id, timeout_ms);
    }
    s = r->done->status;
    if (s == MS_OK)
        *out = r->result;
    else
        (void)ms__err(s, "%s instance %s: %s", inst->ops->metadata.name, inst->id,
                      r->done->detail);
    check_req_unref(r);
    return s;
}

/* --- the health subjects ----------------------------------------------------- */

ms_status ms_runtime_health(ms_runtime *rt, const char *component, json_t **out)
{
    json_t *root, *list;
    char now[MS_TIMESTAMP_LEN + 1];

    if (rt == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_health: rt and out are required");
    *out = NULL;
    ms_timestamp_now(now);
    list = json_array();
    root = json_pack("{s:s, s:s, s:s}", "host", rt->host_id, "name", rt->host_name, "time", now);
    if (list == NULL || root == NULL) {
        json_decref(list);
        json_decref(root);
        return ms__err(MS_ERR_NO_MEMORY, "ms_runtime_health: allocating");
    }
    pthread_mutex_lock(&rt->mu);
    for (ms_instance *it = rt->first; it != NULL; it = it->next) {
        if (component != NULL && strcmp(component, it->ops->metadata.name) != 0)
            continue;
        if (json_array_append_new(list, ms__instance_health_json(it)) != 0) {
            pthread_mutex_unlock(&rt->mu);
            json_decref(list);
            json_decref(root);
            return ms__err(MS_ERR_NO_MEMORY, "ms_runtime_health: allocating");
        }
    }
    pthread_mutex_unlock(&rt->mu);
    if (json_object_set_new(root, "instances", list) != 0) {
        json_decref(root);
        return ms__err(MS_ERR_NO_MEMORY, "ms_runtime_health: allocating");
    }
    *out = root;
    return MS_OK;
}

/* mainstack.health (host-wide) and mainstack.health.<component>.get (one
 * answer per instance). */
void ms__on_health_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ms_runtime *rt = closure;
    const char *subject = ms_message_subject(msg);
    json_t **answers = NULL;
    size_t n = 0;

    (void)bus;
    (void)sub;
    if (ms_message_reply(msg) == NULL)
        return;
    if (strcmp(subject, "mainstack.health") == 0) {
        json_t *all = NULL;
        if (ms_runtime_health(rt, NULL, &all) == MS_OK)
            ms__respond_json(rt, msg, all);
        else
            ms__respond_error(rt, msg, MS_ERR_NO_MEMORY, ms_last_error());
        json_decref(all);
        return;
    }
    /* mainstack.health.<component>.get */
    {
        const char *name = subject + strlen("mainstack.health.");
        size_t len = strlen(name) - strlen(".get");
        pthread_mutex_lock(&rt->mu);
        answers = ms__calloc(rt->count > 0 ? rt->count : 1, sizeof *answers);
        if (answers != NULL) {
            for (ms_instance *it = rt->first; it != NULL; it = it->next) {
                const char *c = it->ops->metadata.name;
                if (strlen(c) == len && strncmp(c, name, len) == 0)
                    answers[n++] = ms__instance_health_json(it);
            }
        }
        pthread_mutex_unlock(&rt->mu);
    }
    /* Publish outside the lock: one reply per instance. */
    for (size_t i = 0; i < n; i++) {
        if (answers[i] != NULL)
            ms__respond_json(rt, msg, answers[i]);
        json_decref(answers[i]);
    }
    ms__free(answers);
}
