/*
 * supervisor.c - periodic health checks, restarts, and giving up.
 *
 * One thread per runtime keeps the timers: it posts each running instance's
 * health check when due, counts a check that has not returned within
 * health_timeout_ms as unhealthy, and posts a scheduled restart when its
 * delay is over. The decision after a stop (ms__supervisor_decide, run on
 * the instance's mailbox) follows Erlang/OTP: by restart type (permanent
 * always, transient after an abnormal stop, temporary never), and with a
 * restart intensity: a restart that would make more than max_restarts
 * within restart_window_ms instead marks the instance failed and publishes
 * an escalation on mainstack.escalation.<component>.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"
#define IDLE_WAKE_MS 1000

typedef struct note {
    char *subject;
    json_t *body;
} note;

/* Health statuses to publish once rt->mu is released (publishing may block
 * on a full inproc queue; never do it under the lock). */
typedef struct notes {
    note *items;
    size_t n, cap;
} notes;

static void notes_add(notes *ns, ms_instance *inst)
{
    char subject[MS_COMPONENT_NAME_MAX + 32];
    json_t *body;
    if (ns->n == ns->cap) {
        size_t ncap = ns->cap == 0 ? 8 : ns->cap * 2;
        note *grown = ms__realloc(ns->items, ncap * sizeof *grown);
        if (grown == NULL)
            return;
        ns->items = grown;
        ns->cap = ncap;
    }
    body = ms__instance_health_json(inst);
    snprintf(subject, sizeof subject, "mainstack.health.%s", inst->ops->metadata.name);
    ns->items[ns->n].subject = ms__strdup(subject);
    ns->items[ns->n].body = body;
    if (ns->items[ns->n].subject == NULL || body == NULL) {
        ms__free(ns->items[ns->n].subject);
        json_decref(body);
        return;
    }
    ns->n++;
}

static void notes_flush(ms_runtime *rt, notes *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        ms__publish_json(rt, ns->items[i].subject, ns->items[i].body);
        ms__free(ns->items[i].subject);
        json_decref(ns->items[i].body);
    }
    ns->n = 0;
}

static void post_restart(ms_instance *inst)
{
    ms__start_req *req = ms__malloc(sizeof *req);
    if (req == NULL) {
        ms_log_kv(MS_LOG_ERROR, MOD, "out of memory: restart postponed", "component",
                  inst->ops->metadata.name, NULL);
        inst->restart_due = true;
        inst->restart_at_ms = ms__mono_ms() + IDLE_WAKE_MS;
        return;
    }
    req->inst = inst;
    req->done = NULL;
    if (ms__mailbox_post(inst->mb, ms__task_start, ms__task_start_drop, req,
                         MS__TASK_CONTROL | MS__TASK_EXCLUSIVE, 0) != MS_OK)
        ms__free(req);
}

/* One pass over the instances (rt->mu held). Returns the next wake time. */
static int64_t sweep(ms_runtime *rt, notes *ns)
{
    int64_t now = ms__mono_ms();
    int64_t next = now + IDLE_WAKE_MS;
    const ms_runtime_options *o = &rt->opts;

    for (ms_instance *it = rt->first; it != NULL; it = it->next) {
        if (it->restart_due) {
            if (now >= it->restart_at_ms) {
                it->restart_due = false;
                post_restart(it);
            } else if (it->restart_at_ms < next) {
                next = it->restart_at_ms;
            }
        }
        if (o->health_interval_ms == 0)
            continue;
        pthread_mutex_lock(&it->mu);
        if (it->state == MS_INSTANCE_RUNNING && !it->removing) {
            if (it->check_in_flight && !it->check_timed_out) {
                int64_t due = it->check_started_ms + o->health_timeout_ms;
                if (now >= due) {
                    if (ms__health_timed_out(it)) {
                        char reason[MS__ERRTEXT_MAX];
                        snprintf(reason, sizeof reason,
                                 "unhealthy %u checks in a row: health check did not return "
                                 "within %d ms",
                                 it->consecutive_unhealthy, o->health_timeout_ms);
                        ms__instance_request_stop_locked(it, true, reason);
                    }
                    pthread_mutex_unlock(&it->mu);
                    notes_add(ns, it);
                    pthread_mutex_lock(&it->mu);
                } else if (due < next) {
                    next = due;
                }
            }
            if (!it->check_in_flight) {
                if (now >= it->next_check_ms) {
                    if (ms__health_post_check(it) != MS_OK)
                        it->next_check_ms = now + o->health_interval_ms;
                } else if (it->next_check_ms < next) {
                    next = it->next_check_ms;
                }
            }
            if (it->check_in_flight && !it->check_timed_out) {
                int64_t due = it->check_started_ms + o->health_timeout_ms;
                if (due < next)
                    next = due;
            }
        }
        pthread_mutex_unlock(&it->mu);
    }
    return next;
}

static void *sup_main(void *arg)
{
    ms_runtime *rt = arg;
    notes ns = {NULL, 0, 0};

    pthread_mutex_lock(&rt->mu);
    while (!rt->sup_stop) {
        int64_t next = sweep(rt, &ns);
        if (ns.n > 0) {
            pthread_mutex_unlock(&rt->mu);
            notes_flush(rt, &ns);
            pthread_mutex_lock(&rt->mu);
            continue; /* the world may have moved while unlocked */
        }
        if (rt->sup_stop)
            break;
        int64_t wait = next - ms__mono_ms();
        if (wait > 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            (void)pthread_cond_timedwait(&rt->sup_cv, &rt->mu, &ts);
        }
    }
    pthread_mutex_unlock(&rt->mu);
    notes_flush(rt, &ns);
    ms__free(ns.items);
    return NULL;
}

ms_status ms__supervisor_start(ms_runtime *rt)
{
    sigset_t all, old;
    int rc;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&rt->sup_thread, NULL, sup_main, rt);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return ms__err(MS_ERR_INTERNAL, "runtime: starting the supervisor thread: %s",
                       strerror(rc));
    (void)pthread_setname_np(rt->sup_thread, "ms-supervisor");
    rt->sup_started = true;
    return MS_OK;
}

void ms__supervisor_stop(ms_runtime *rt)
{
    if (!rt->sup_started)
        return;
    pthread_mutex_lock(&rt->mu);
    rt->sup_stop = true;
    pthread_cond_broadcast(&rt->sup_cv);
    pthread_mutex_unlock(&rt->mu);
    pthread_join(rt->sup_thread, NULL);
    rt->sup_started = false;
}

void ms__supervisor_kick(ms_runtime *rt)
{
    pthread_cond_broadcast(&rt->sup_cv);
}

/* Restarts within the window, after dropping older ones (rt->mu held). */
static size_t restarts_in_window(ms_instance *inst, int64_t now, int64_t window)
{
    size_t keep = 0;
    for (size_t i = 0; i < inst->restart_log_len; i++)
        if (now - inst->restart_log[i] < window)
            inst->restart_log[keep++] = inst->restart_log[i];
    inst->restart_log_len = keep;
    return keep;
}

static void escalate(ms_instance *inst, const char *reason, size_t in_window)
{
    ms_runtime *rt = inst->rt;
    char subject[MS_COMPONENT_NAME_MAX + 32];
    char now[MS_TIMESTAMP_LEN + 1];
    json_t *ev;
    ms_timestamp_now(now);
    ev = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:f, s:i, s:s, s:s}", "component",
                   inst->ops->metadata.name, "instance", inst->id, "version",
                   inst->ops->metadata.version, "reason", reason, "restarts",
                   (int)inst->restarts, "restarts_in_window", (int)in_window, "max_restarts",
                   rt->opts.max_restarts, "window", rt->opts.restart_window_ms / 1000.0,
                   "window_ms", rt->opts.restart_window_ms, "restart_type",
                   ms_restart_type_str(inst->restart), "time", now);
    if (ev == NULL)
        return;
    snprintf(subject, sizeof subject, "mainstack.escalation.%s", inst->ops->metadata.name);
    ms__publish_json(rt, subject, ev);
    json_decref(ev);
}

void ms__supervisor_decide(ms_instance *inst, bool abnormal, const char *reason)
{
    ms_runtime *rt = inst->rt;
    const ms_runtime_options *o = &rt->opts;
    bool restart, do_escalate = false;
    size_t in_window = 0;
    char why[MS__ERRTEXT_MAX];
    ms_instance_state state;

    snprintf(why, sizeof why, "%s", reason);
    pthread_mutex_lock(&rt->mu);
    pthread_mutex_lock(&inst->mu);
    restart = inst->restart == MS_RESTART_PERMANENT ||
              (inst->restart == MS_RESTART_TRANSIENT && abnormal);
    if (inst->removing || rt->shutting_down) {
        inst->state = MS_INSTANCE_STOPPED;
    } else if (!restart) {
        inst->state = abnormal ? MS_INSTANCE_FAILED : MS_INSTANCE_STOPPED;
        do_escalate = abnormal;
        if (abnormal)
            snprintf(why, sizeof why, "%.200s (restart type %s: not restarted)", reason,
                     ms_restart_type_str(inst->restart));
    } else {
        int64_t now = ms__mono_ms();
        in_window = restarts_in_window(inst, now, o->restart_window_ms);
        if (in_window >= (size_t)o->max_restarts) {
            inst->state = MS_INSTANCE_FAILED;
            do_escalate = true;
            snprintf(why, sizeof why,
                     "restart intensity exceeded (%zu restarts within %d ms, at most %d); "
                     "last: %.150s",
                     in_window, o->restart_window_ms, o->max_restarts, reason);
        } else {
            inst->restart_log[inst->restart_log_len++] = now;
            inst->restarts++;
            inst->state = MS_INSTANCE_RESTARTING;
            inst->restart_due = true;
            inst->restart_at_ms = now + o->restart_delay_ms;
            ms__supervisor_kick(rt);
        }
    }
    snprintf(inst->stop_reason, sizeof inst->stop_reason, "%s", why);
    state = inst->state;
    pthread_mutex_unlock(&inst->mu);
    pthread_mutex_unlock(&rt->mu);

    ms_log_kv(state == MS_INSTANCE_FAILED ? MS_LOG_ERROR : MS_LOG_INFO, MOD,
              state == MS_INSTANCE_RESTARTING ? "instance will restart"
              : state == MS_INSTANCE_FAILED   ? "instance failed"
                                              : "instance stopped",
              "component", inst->ops->metadata.name, "instance", inst->id, "reason", why, NULL);
    ms__health_publish(inst);
    if (do_escalate)
        escalate(inst, why, in_window);
}
