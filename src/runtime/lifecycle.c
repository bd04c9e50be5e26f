/*
 * lifecycle.c - starting and stopping one instance, always on its mailbox.
 *
 * Start: create, initialize(ctx), subscribe the topics, open the intake.
 * Stop: close the intake, unsubscribe, shutdown, destroy; then the
 * supervisor decides (restart, stopped, failed). Both run as exclusive
 * tasks of the instance's mailbox, so they never overlap a handler, a
 * health check or a config change, even for a reentrant component. A
 * restart is a stop followed by a fresh start (a new object). Also here:
 * ms_instance_run_tests, which runs run_tests on the mailbox the same way.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"

static ms_status route_new(ms__endpoint *ep, ms__route **out)
{
    ms__route *r = ms__calloc(1, sizeof *r);
    if (r == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "runtime: allocating a route");
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        ms__free(r);
        return ms__err(MS_ERR_INTERNAL, "runtime: initializing a lock");
    }
    r->ep = ep;
    *out = r;
    return MS_OK;
}

static void route_free(ms__route *r)
{
    if (r == NULL)
        return;
    pthread_mutex_destroy(&r->mu);
    ms__free(r);
}

ms_status ms__instance_subscribe(ms_instance *inst)
{
    ms_runtime *rt = inst->rt;
    const char *name = inst->ops->metadata.name;
    ms_status s = MS_OK;
    bool removing;

    pthread_mutex_lock(&inst->sub_mu);
    pthread_mutex_lock(&inst->mu);
    removing = inst->removing;
    pthread_mutex_unlock(&inst->mu);
    /* A candidate gets the active version's subscriptions handed over; an
     * instance being removed (a swap retiring it) takes no new ones. */
    if (inst->candidate || removing) {
        pthread_mutex_unlock(&inst->sub_mu);
        return MS_OK;
    }
    for (size_t i = 0; i < inst->neps; i++) {
        ms__endpoint *ep = &inst->eps[i];
        if (ep->sub != NULL)
            continue;
        if ((s = route_new(ep, &ep->route)) != MS_OK)
            break;
        s = ms_bus_subscribe(rt->bus, ep->subject, ep->fanout ? NULL : name, ms__on_topic_msg,
                             ep->route, &ep->sub);
        if (s != MS_OK) {
            route_free(ep->route);
            ep->route = NULL;
            s = ms__err_wrap(s, "subscribing to %s", ep->subject);
            break;
        }
    }
    pthread_mutex_unlock(&inst->sub_mu);
    if (s != MS_OK) {
        char saved[512];
        snprintf(saved, sizeof saved, "%s", ms_last_error());
        ms__instance_unsubscribe(inst);
        (void)ms__err(s, "%s", saved);
    }
    return s;
}

void ms__instance_unsubscribe(ms_instance *inst)
{
    pthread_mutex_lock(&inst->sub_mu);
    for (size_t i = 0; i < inst->neps; i++) {
        ms__endpoint *ep = &inst->eps[i];
        if (ep->sub == NULL)
            continue;
        if (ms_subscription_unsubscribe(ep->sub) != MS_OK)
            ms_log_kv(MS_LOG_WARN, MOD, "unsubscribe failed", "subject", ep->subject, "error",
                      ms_last_error(), NULL);
        ep->sub = NULL;
        /* The handler no longer runs (bus.h): its closure can go. */
        route_free(ep->route);
        ep->route = NULL;
    }
    pthread_mutex_unlock(&inst->sub_mu);
}

static void start_instance(ms_instance *inst)
{
    const ms_component_ops *ops = inst->ops;
    ms_runtime *rt = inst->rt;
    char reason[MS__ERRTEXT_MAX];
    bool removing;
    ms_status s = MS_ERR_NO_MEMORY; /* create() returning NULL */
    void *self;

    pthread_mutex_lock(&inst->mu);
    removing = inst->removing;
    pthread_mutex_unlock(&inst->mu);
    if (inst->self != NULL || removing)
        return;

    ms_clear_error();
    self = ops->create();
    if (self == NULL) {
        snprintf(reason, sizeof reason, "create failed%s%s", ms_last_error()[0] ? ": " : "",
                 ms_last_error());
        goto failed;
    }
    inst->self = self;
    ms_clear_error();
    s = ops->initialize(self, &inst->ctx);
    if (s != MS_OK) {
        snprintf(reason, sizeof reason, "initialize failed (%s)%s%s", ms_status_name(s),
                 ms_last_error()[0] ? ": " : "", ms_last_error());
        ops->destroy(self);
        inst->self = NULL;
        goto failed;
    }
    if (inst->candidate && inst->migrate_from[0] != '\0' &&
        (ops->flags & MS_COMPONENT_MIGRATE) != 0) {
        /* before the candidate takes any message: carry state over */
        ms_clear_error();
        s = ops->migrate(self, &inst->ctx, inst->migrate_from);
        if (s != MS_OK) {
            snprintf(reason, sizeof reason, "migrate from %s failed (%s)%s%s", inst->migrate_from,
                     ms_status_name(s), ms_last_error()[0] ? ": " : "", ms_last_error());
            if (ops->shutdown != NULL)
                ops->shutdown(self);
            ops->destroy(self);
            inst->self = NULL;
            goto failed;
        }
    }
    inst->initialized = true;
    s = ms__instance_subscribe(inst);
    if (s != MS_OK) {
        snprintf(reason, sizeof reason, "%s", ms_last_error());
        if (ops->shutdown != NULL)
            ops->shutdown(self);
        ops->destroy(self);
        inst->self = NULL;
        inst->initialized = false;
        goto failed;
    }
    ms__mailbox_set_intake(inst->mb, true);

    pthread_mutex_lock(&inst->mu);
    inst->state = MS_INSTANCE_RUNNING;
    inst->consecutive_failures = 0;
    inst->consecutive_unhealthy = 0;
    inst->health.status = MS_HEALTH_HEALTHY;
    inst->health.detail[0] = '\0';
    inst->check_in_flight = false;
    inst->next_check_ms = ms__mono_ms() + rt->opts.health_interval_ms;
    inst->stop_reason[0] = '\0';
    ms_timestamp_now(inst->started);
    snprintf(inst->health_time, sizeof inst->health_time, "%s", inst->started);
    pthread_mutex_unlock(&inst->mu);
    ms_log_kv(MS_LOG_INFO, MOD, "instance started", "component", ops->metadata.name, "instance",
              inst->id, "version", ops->metadata.version, NULL);
    ms__health_publish(inst);
    ms__instance_after_call(inst);
    return;

failed:
    ms_log_kv(MS_LOG_WARN, MOD, "instance failed to start", "component", ops->metadata.name,
              "instance", inst->id, "reason", reason, NULL);
    if (inst->candidate) {
        /* A swap candidate is not supervised: the swap reports the reason
         * and removes it; the active version keeps serving. */
        pthread_mutex_lock(&inst->mu);
        inst->state = MS_INSTANCE_FAILED;
        inst->start_status = s == MS_OK ? MS_ERR_NO_MEMORY : s;
        snprintf(inst->last_error, sizeof inst->last_error, "%s", reason);
        pthread_mutex_unlock(&inst->mu);
        return;
    }
    ms__supervisor_decide(inst, true, reason);
}

void ms__task_start(void *arg)
{
    ms__start_req *req = arg;
    start_instance(req->inst);
    if (req->done != NULL) {
        ms__completion_finish(req->done, MS_OK, NULL);
        ms__completion_unref(req->done);
    }
    ms__free(req);
}

void ms__task_start_drop(void *arg)
{
    ms__start_req *req = arg;
    if (req->done != NULL) {
        ms__completion_finish(req->done, MS_ERR_CLOSED, "the instance was removed");
        ms__completion_unref(req->done);
    }
    ms__free(req);
}

void ms__instance_stop_now(ms_instance *inst, bool abnormal, const char *reason)
{
    const ms_component_ops *ops = inst->ops;

    pthread_mutex_lock(&inst->mu);
    inst->stop_pending = false;
    pthread_mutex_unlock(&inst->mu);
    if (inst->self == NULL)
        return; /* already down (a restart is pending, or it failed) */

    /* Posters blocked on a full mailbox are turned away (their requests get
     * a 503) so that unsubscribing does not wait for them. */
    ms__mailbox_set_intake(inst->mb, false);
    ms__instance_unsubscribe(inst);
    if (inst->initialized && ops->shutdown != NULL)
        ops->shutdown(inst->self);
    ops->destroy(inst->self);
    inst->self = NULL;
    inst->initialized = false;
    ms_log_kv(abnormal ? MS_LOG_WARN : MS_LOG_INFO, MOD, "instance stopped", "component",
              ops->metadata.name, "instance", inst->id, "reason", reason, NULL);
    ms__supervisor_decide(inst, abnormal, reason);
}

typedef struct stop_req {
    ms_instance *inst;
    bool abnormal;
    char reason[MS__ERRTEXT_MAX];
} stop_req;

static void stop_task(void *arg)
{
    stop_req *r = arg;
    ms__instance_stop_now(r->inst, r->abnormal, r->reason);
    ms__free(r);
}

static void stop_drop(void *arg)
{
    ms__free(arg);
}

void ms__instance_request_stop_locked(ms_instance *inst, bool abnormal, const char *reason)
{
    stop_req *r;
    if (inst->stop_pending || inst->removing)
        return;
    r = ms__malloc(sizeof *r);
    if (r == NULL) {
        ms_log_kv(MS_LOG_ERROR, MOD, "out of memory: cannot schedule a stop", "component",
                  inst->ops->metadata.name, "instance", inst->id, NULL);
        return;
    }
    r->inst = inst;
    r->abnormal = abnormal;
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    if (ms__mailbox_post(inst->mb, stop_task, stop_drop, r, MS__TASK_CONTROL | MS__TASK_EXCLUSIVE,
                         0) != MS_OK) {
        ms__free(r);
        return;
    }
    inst->stop_pending = true;
}

void ms__instance_request_stop(ms_instance *inst, bool abnormal, const char *reason)
{
    pthread_mutex_lock(&inst->mu);
    ms__instance_request_stop_locked(inst, abnormal, reason);
    pthread_mutex_unlock(&inst->mu);
}

void ms__instance_after_call(ms_instance *inst)
{
    if (atomic_exchange(&inst->stop_requested, false))
        ms__instance_request_stop(inst, false, "stopped by the component (ms_ctx_stop)");
}

/* --- run_tests ----------------------------------------------------------------- */

typedef struct tests_req {
    ms_instance *inst;
    ms_test_report *report; /* private; copied to the caller's on time */
    ms__completion *done;
    atomic_int refs;
} tests_req;

static void tests_req_unref(tests_req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    ms_test_report_destroy(r->report);
    ms__completion_unref(r->done);
    ms__free(r);
}

static void tests_task(void *arg)
{
    tests_req *r = arg;
    ms_instance *inst = r->inst;
    ms_status s;
    if (!inst->initialized) {
        ms__completion_finish(r->done, MS_ERR_STATE, "the instance is not running");
    } else {
        ms_clear_error();
        s = inst->ops->run_tests(inst->self, r->report);
        ms__completion_finish(r->done, s, s != MS_OK ? ms_last_error() : NULL);
        ms__instance_after_call(inst);
    }
    tests_req_unref(r);
}

static void tests_drop(void *arg)
{
    tests_req *r = arg;
    ms__completion_finish(r->done, MS_ERR_STATE, "the instance was removed");
    tests_req_unref(r);
}

ms_status ms_instance_run_tests(ms_instance *inst, ms_test_report *report, int timeout_ms)
{
    tests_req *r;
    ms_status s;

    if (inst == NULL || report == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_instance_run_tests: inst and report are required");
    if (inst->ops->run_tests == NULL)
        return ms__err(MS_ERR_UNSUPPORTED, "component %s is not Testable (no run_tests)",
                       inst->ops->metadata.name);
    if (ms__mailbox_current() != NULL)
        return ms__err(MS_ERR_STATE, "ms_instance_run_tests: not callable from a component "
                                     "callback");
    r = ms__calloc(1, sizeof *r);
    if (r == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_instance_run_tests: allocating");
    r->inst = inst;
    atomic_init(&r->refs, 2);
    if ((s = ms_test_report_create(&r->report)) != MS_OK ||
        (s = ms__completion_new(1, &r->done)) != MS_OK) {
        ms_test_report_destroy(r->report);
        ms__free(r);
        return s;
    }
    pthread_mutex_lock(&inst->mu);
    if (inst->state != MS_INSTANCE_RUNNING) {
        ms_instance_state st = inst->state;
        pthread_mutex_unlock(&inst->mu);
        atomic_store(&r->refs, 1);
        tests_req_unref(r);
        return ms__err(MS_ERR_STATE, "%s instance %s is %s, not running", inst->ops->metadata.name,
                       inst->id, ms_instance_state_str(st));
    }
    s = ms__mailbox_post(inst->mb, tests_task, tests_drop, r, MS__TASK_CONTROL | MS__TASK_EXCLUSIVE,
                         0);
    pthread_mutex_unlock(&inst->mu);
    if (s != MS_OK) {
        atomic_store(&r->refs, 1);
        tests_req_unref(r);
        return s;
    }
    if (!ms__completion_wait(r->done, timeout_ms)) {
        tests_req_unref(r);
        return ms__err(MS_ERR_TIMEOUT, "%s instance %s: run_tests did not finish within %d ms",
                       inst->ops->metadata.name, inst->id, timeout_ms);
    }
    s = r->done->status;
    if (s != MS_OK)
        (void)ms__err(s, "%s run_tests: %s", inst->ops->metadata.name, r->done->detail);
    for (size_t i = 0; i < ms_test_report_count(r->report); i++) {
        const ms_test_result *t = ms_test_report_at(r->report, i);
        ms_status a = ms_test_report_add(report, t->name, t->passed, "%s", t->output);
        if (a != MS_OK) {
            s = a;
            break;
        }
    }
    tests_req_unref(r);
    return s;
}
