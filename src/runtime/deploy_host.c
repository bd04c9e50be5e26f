/*
 * deploy_host.c - the host side of a promotion: every runtime answers deploy
 * commands for the components it hosts on mainstack.deploy.<component>
 * (docs/deploy.md has the protocol).
 *
 * Design: one fan-out subscription per host on "mainstack.deploy.*" (as
 * discovery.c does for $SRV), whose handler only copies the request into a
 * queue; one worker thread per host runs the commands in order and
 * answers. A command may load a plugin, run a candidate's initialize, or
 * wait for the old version to drain: none of that may block a bus delivery
 * thread (on inproc, the pool that delivers the very replies a drain waits
 * for). The worker also holds the prepared state: one deployment at a time
 * (a runtime holds one prepared swap), and a prepare not followed by a
 * switch or an abort within its hold time is aborted here, so that a
 * coordinator that died leaves no host stuck with a candidate.
 *
 * A host answers a prepare or swap only when it runs an instance of the
 * component (a host without it stays silent, as $SRV.PING does), and a
 * switch or abort when it hosts the component or holds that deployment.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/json.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"
#define DEFAULT_HOLD_MS 60000
#define DEPLOY_PREFIX "mainstack.deploy."

typedef struct cmd {
    ms_message *msg;
    struct cmd *next;
} cmd;

struct ms__deploy_host {
    ms_runtime *rt;
    ms_subscription *sub;
    pthread_t thread;
    bool started;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    cmd *head, *tail; /* under mu */
    bool stop;        /* under mu */

    /* worker thread only: the deployment this host prepared */
    bool prepared;
    char deployment_id[128];
    char component[MS_COMPONENT_NAME_MAX + 1];
    char from_version[64], to_version[64];
    int64_t hold_until_ms;
};

/* The request, parsed. Strings borrowed from the JSON. */
typedef struct request {
    const char *action, *component, *version, *artifact, *deployment_id;
    const char *host; /* switch, abort: only the host of this id acts and answers (NULL: all) */
    int hold_ms, drain_timeout_ms;
} request;

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int jint(const json_t *o, const char *k, int dflt)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v))
        return dflt;
    json_int_t i = json_integer_value(v);
    return i < 0 ? 0 : i > 3600000 ? 3600000 : (int)i;
}

/* The active version and instance ids of component here (not candidates,
 * not being removed). ids may be NULL. */
static size_t hosted(ms_runtime *rt, const char *component, char *version, size_t cap, json_t *ids)
{
    size_t n = 0;
    if (version != NULL && cap > 0)
        version[0] = '\0';
    pthread_mutex_lock(&rt->mu);
    for (ms_instance *it = rt->first; it != NULL; it = it->next) {
        bool skip;
        if (strcmp(it->ops->metadata.name, component) != 0)
            continue;
        pthread_mutex_lock(&it->mu);
        skip = it->removing || it->candidate;
        pthread_mutex_unlock(&it->mu);
        if (skip)
            continue;
        if (n == 0 && version != NULL)
            snprintf(version, cap, "%s", it->ops->metadata.version);
        if (ids != NULL && json_array_append_new(ids, json_string(it->id)) != 0)
            ms_log_kv(MS_LOG_WARN, MOD, "deploy: out of memory listing instances", NULL);
        n++;
    }
    pthread_mutex_unlock(&rt->mu);
    return n;
}

static json_t *report_json(const ms_swap_report *r)
{
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:s}", "component",
                     r->component, "old_version", r->old_version, "new_version", r->new_version,
                     "instances", (json_int_t)r->instances, "routes_moved",
                     (json_int_t)r->routes_moved, "topics_added", (json_int_t)r->topics_added,
                     "topics_removed", (json_int_t)r->topics_removed, "drained",
                     (json_int_t)r->drained, "switch_us", (json_int_t)r->switch_us, "drain_ms",
                     (json_int_t)r->drain_ms, "old_unloaded", r->old_unloaded, "error", r->error);
}

/* Send {"host","name","action","deployment_id","ok",...} */
static void answer(ms__deploy_host *d, const ms_message *msg, const request *rq, bool ok,
                   const char *from, const char *to, const char *error, const ms_swap_report *rep,
                   json_t *ids, bool noop)
{
    ms_runtime *rt = d->rt;
    char active[64];
    json_t *o;
    (void)hosted(rt, rq->component, active, sizeof active, NULL);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:s, s:b}", "host", rt->host_id,
                  "name", rt->host_name, "action", rq->action != NULL ? rq->action : "",
                  "component", rq->component, "deployment_id",
                  rq->deployment_id != NULL ? rq->deployment_id : "", "ok", ok, "from_version",
                  from != NULL ? from : "", "to_version", to != NULL ? to : "", "active_version",
                  active, "error", error != NULL ? error : "", "noop", noop);
    if (o == NULL) {
        json_decref(ids);
        ms_log_kv(MS_LOG_WARN, MOD, "deploy: out of memory answering", NULL);
        return;
    }
    if (rep != NULL && json_object_set_new(o, "report", report_json(rep)) != 0)
        ms_log_kv(MS_LOG_WARN, MOD, "deploy: out of memory answering", NULL);
    if (ids != NULL && json_object_set_new(o, "instances", ids) != 0)
        ms_log_kv(MS_LOG_WARN, MOD, "deploy: out of memory answering", NULL);
    ms__respond_json(rt, msg, o);
    json_decref(o);
}

static void clear_prepared(ms__deploy_host *d)
{
    d->prepared = false;
    d->deployment_id[0] = '\0';
    d->component[0] = '\0';
}

static void do_abort(ms__deploy_host *d, const char *why)
{
    if (!d->prepared)
        return;
    if (strcmp(d->from_version, d->to_version) != 0 &&
        ms_runtime_swap_abort(d->rt, d->component, NULL) != MS_OK)
        ms_log_kv(MS_LOG_WARN, MOD, "deploy: abort failed", "component", d->component, "error",
                  ms_last_error(), NULL);
    ms_log_kv(MS_LOG_INFO, MOD, "deploy aborted", "component", d->component, "deployment",
              d->deployment_id, "why", why, NULL);
    clear_prepared(d);
}

static bool same_deployment(const ms__deploy_host *d, const request *rq)
{
    return d->prepared && rq->deployment_id != NULL &&
           strcmp(d->deployment_id, rq->deployment_id) == 0 &&
           strcmp(d->component, rq->component) == 0;
}

static void on_prepare(ms__deploy_host *d, const ms_message *msg, const request *rq, bool swap)
{
    ms_runtime *rt = d->rt;
    ms_swap_report rep;
    char active[64], err[600], path[4096];
    const char *artifact = rq->artifact;
    json_t *ids = json_array();
    size_t n = hosted(rt, rq->component, active, sizeof active, ids);
    ms_status s;

    if (n == 0) { /* not ours: silent, as $SRV.PING */
        json_decref(ids);
        return;
    }
    if (rq->artifact == NULL || rq->artifact[0] == '\0' || rq->deployment_id == NULL ||
        rq->deployment_id[0] == '\0' || strlen(rq->deployment_id) >= sizeof d->deployment_id) {
        answer(d, msg, rq, false, active, rq->version,
               "deploy request: \"artifact\" and "
               "\"deployment_id\" (a string of at most 127 bytes) are required",
               NULL, ids, false);
        return;
    }
    if (d->prepared && !same_deployment(d, rq)) {
        snprintf(err, sizeof err,
                 "deployment %s of %s is prepared on this host: switch or abort "
                 "it first",
                 d->deployment_id, d->component);
        answer(d, msg, rq, false, active, rq->version, err, NULL, ids, false);
        return;
    }
    if (d->prepared) { /* the same prepare again: already done */
        answer(d, msg, rq, true, d->from_version, d->to_version, NULL, NULL, ids,
               strcmp(d->from_version, d->to_version) == 0);
        return;
    }
    if (rq->version != NULL && strcmp(active, rq->version) == 0) {
        /* Already there (a host added since, or a retried promotion). */
        if (!swap) {
            d->prepared = true;
            snprintf(d->deployment_id, sizeof d->deployment_id, "%s", rq->deployment_id);
            snprintf(d->component, sizeof d->component, "%s", rq->component);
            snprintf(d->from_version, sizeof d->from_version, "%s", active);
            snprintf(d->to_version, sizeof d->to_version, "%s", active);
            d->hold_until_ms = ms__mono_ms() + (rq->hold_ms > 0 ? rq->hold_ms : DEFAULT_HOLD_MS);
        }
        answer(d, msg, rq, true, active, active, NULL, NULL, ids, true);
        return;
    }
    if (rq->artifact[0] != '/' && rt->artifact_root != NULL) {
        int k = snprintf(path, sizeof path, "%s/%s", rt->artifact_root, rq->artifact);
        if (k < 0 || (size_t)k >= sizeof path) {
            answer(d, msg, rq, false, active, rq->version, "the artifact path is too long", NULL,
                   ids, false);
            return;
        }
        artifact = path;
    }
    s = ms_runtime_swap_prepare(rt, rq->component, artifact, NULL, &rep);
    if (s == MS_OK && rq->version != NULL && strcmp(rep.new_version, rq->version) != 0) {
        snprintf(err, sizeof err, "the artifact %s is %s %s, not %s", rq->artifact, rq->component,
                 rep.new_version, rq->version);
        (void)ms_runtime_swap_abort(rt, rq->component, NULL);
        answer(d, msg, rq, false, active, rep.new_version, err, NULL, ids, false);
        return;
    }
    if (s != MS_OK) {
        snprintf(err, sizeof err, "%s: %s", ms_status_name(s), rep.error);
        ms_log_kv(MS_LOG_WARN, MOD, "deploy: prepare failed", "component", rq->component, "error",
                  err, NULL);
        answer(d, msg, rq, false, active,
               rep.new_version[0] != '\0' ? rep.new_version : rq->version, err, &rep, ids, false);
        return;
    }
    if (swap) { /* one phase: commit now */
        s = ms_runtime_swap_commit(rt, rq->component, rq->drain_timeout_ms, &rep);
        if (s != MS_OK)
            snprintf(err, sizeof err, "%s: %s", ms_status_name(s), rep.error);
        answer(d, msg, rq, s == MS_OK, rep.old_version, rep.new_version, s == MS_OK ? NULL : err,
               &rep, ids, false);
        return;
    }
    d->prepared = true;
    snprintf(d->deployment_id, sizeof d->deployment_id, "%s", rq->deployment_id);
    snprintf(d->component, sizeof d->component, "%s", rq->component);
    snprintf(d->from_version, sizeof d->from_version, "%s", rep.old_version);
    snprintf(d->to_version, sizeof d->to_version, "%s", rep.new_version);
    d->hold_until_ms = ms__mono_ms() + (rq->hold_ms > 0 ? rq->hold_ms : DEFAULT_HOLD_MS);
    answer(d, msg, rq, true, rep.old_version, rep.new_version, NULL, &rep, ids, false);
}

/* A request addressed to another host (its "host" field): not ours. */
static bool for_another_host(const ms__deploy_host *d, const request *rq)
{
    return rq->host != NULL && rq->host[0] != '\0' && strcmp(rq->host, d->rt->host_id) != 0;
}

static void on_switch(ms__deploy_host *d, const ms_message *msg, const request *rq)
{
    ms_swap_report rep;
    char err[600];
    ms_status s;

    if (for_another_host(d, rq))
        return; /* the coordinator switches the hosts one at a time */
    if (!same_deployment(d, rq)) {
        if (hosted(d->rt, rq->component, NULL, 0, NULL) == 0)
            return;
        snprintf(err, sizeof err, "deployment %s of %s is not prepared on this host",
                 rq->deployment_id != NULL ? rq->deployment_id : "(none given)", rq->component);
        answer(d, msg, rq, false, NULL, NULL, err, NULL, NULL, false);
        return;
    }
    if (strcmp(d->from_version, d->to_version) == 0) {
        answer(d, msg, rq, true, d->from_version, d->to_version, NULL, NULL, NULL, true);
        clear_prepared(d);
        return;
    }
    s = ms_runtime_swap_commit(d->rt, d->component, rq->drain_timeout_ms, &rep);
    if (s != MS_OK)
        snprintf(err, sizeof err, "%s: %s", ms_status_name(s), rep.error);
    clear_prepared(d);
    answer(d, msg, rq, s == MS_OK, rep.old_version, rep.new_version, s == MS_OK ? NULL : err, &rep,
           NULL, false);
}

static void on_abort(ms__deploy_host *d, const ms_message *msg, const request *rq)
{
    bool had = same_deployment(d, rq);
    if (for_another_host(d, rq))
        return;
    if (!had && hosted(d->rt, rq->component, NULL, 0, NULL) == 0)
        return;
    if (had) {
        char from[64], to[64];
        snprintf(from, sizeof from, "%s", d->from_version);
        snprintf(to, sizeof to, "%s", d->to_version);
        do_abort(d, "asked");
        answer(d, msg, rq, true, from, to, NULL, NULL, NULL, false);
        return;
    }
    /* nothing prepared here for that deployment (its prepare failed, or it
     * was never asked): nothing to undo */
    answer(d, msg, rq, true, NULL, NULL, NULL, NULL, NULL, true);
}

static void run_command(ms__deploy_host *d, const ms_message *msg)
{
    const char *subject = ms_message_subject(msg);
    const char *comp = subject + strlen(DEPLOY_PREFIX);
    json_t *body = NULL;
    request rq;
    char err[600];

    memset(&rq, 0, sizeof rq);
    rq.component = comp;
    if (ms_json_parse(ms_message_data(msg), ms_message_len(msg), subject, &body) != MS_OK ||
        !json_is_object(body)) {
        if (hosted(d->rt, comp, NULL, 0, NULL) > 0) {
            snprintf(err, sizeof err, "deploy request on %s: the body is not a JSON object%s%s",
                     subject, body == NULL ? ": " : "", body == NULL ? ms_last_error() : "");
            answer(d, msg, &rq, false, NULL, NULL, err, NULL, NULL, false);
        }
        json_decref(body);
        return;
    }
    rq.action = jstr(body, "action");
    rq.version = jstr(body, "version");
    rq.artifact = jstr(body, "artifact");
    rq.deployment_id = jstr(body, "deployment_id");
    rq.host = jstr(body, "host");
    rq.hold_ms = jint(body, "hold_ms", 0);
    rq.drain_timeout_ms = jint(body, "drain_timeout_ms", 0);
    if (jstr(body, "component") != NULL && strcmp(jstr(body, "component"), comp) != 0) {
        if (hosted(d->rt, comp, NULL, 0, NULL) > 0) {
            snprintf(err, sizeof err, "deploy request on %s names component '%s'", subject,
                     jstr(body, "component"));
            answer(d, msg, &rq, false, NULL, NULL, err, NULL, NULL, false);
        }
    } else if (rq.action != NULL && strcmp(rq.action, "prepare") == 0) {
        on_prepare(d, msg, &rq, false);
    } else if (rq.action != NULL && strcmp(rq.action, "swap") == 0) {
        on_prepare(d, msg, &rq, true);
    } else if (rq.action != NULL && strcmp(rq.action, "switch") == 0) {
        on_switch(d, msg, &rq);
    } else if (rq.action != NULL && strcmp(rq.action, "abort") == 0) {
        on_abort(d, msg, &rq);
    } else if (hosted(d->rt, comp, NULL, 0, NULL) > 0) {
        snprintf(err, sizeof err,
                 "deploy request on %s: \"action\" must be prepare, switch, "
                 "abort or swap, not %s%s%s",
                 subject, rq.action != NULL ? "'" : "", rq.action != NULL ? rq.action : "missing",
                 rq.action != NULL ? "'" : "");
        answer(d, msg, &rq, false, NULL, NULL, err, NULL, NULL, false);
    }
    json_decref(body);
}

static void *worker_main(void *arg)
{
    ms__deploy_host *d = arg;
    for (;;) {
        cmd *c = NULL;
        bool expired = false;
        pthread_mutex_lock(&d->mu);
        while (!d->stop && d->head == NULL) {
            if (d->prepared) {
                int64_t left = d->hold_until_ms - ms__mono_ms();
                struct timespec ts;
                if (left <= 0) {
                    expired = true;
                    break;
                }
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += left / 1000;
                ts.tv_nsec += (left % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                (void)pthread_cond_timedwait(&d->cv, &d->mu, &ts);
            } else {
                pthread_cond_wait(&d->cv, &d->mu);
            }
        }
        if (d->stop) {
            pthread_mutex_unlock(&d->mu);
            break;
        }
        if (!expired) {
            c = d->head;
            d->head = c->next;
            if (d->head == NULL)
                d->tail = NULL;
        }
        pthread_mutex_unlock(&d->mu);
        if (expired) {
            do_abort(d, "no switch or abort within the hold time");
            continue;
        }
        run_command(d, c->msg);
        ms_message_unref(c->msg);
        ms__free(c);
    }
    do_abort(d, "the host is shutting down");
    return NULL;
}

static void on_deploy_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ms__deploy_host *d = closure;
    cmd *c;
    (void)bus;
    (void)sub;
    if (ms_message_reply(msg) == NULL)
        return; /* a command needs an answer to be of any use */
    c = ms__calloc(1, sizeof *c);
    if (c == NULL || ms_message_clone(msg, &c->msg) != MS_OK) {
        ms__free(c);
        ms_log_kv(MS_LOG_WARN, MOD, "deploy: out of memory queueing a command", NULL);
        return;
    }
    pthread_mutex_lock(&d->mu);
    if (d->stop) {
        pthread_mutex_unlock(&d->mu);
        ms_message_unref(c->msg);
        ms__free(c);
        return;
    }
    if (d->tail != NULL)
        d->tail->next = c;
    else
        d->head = c;
    d->tail = c;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void deploy_free(ms__deploy_host *d)
{
    while (d->head != NULL) {
        cmd *c = d->head;
        d->head = c->next;
        ms_message_unref(c->msg);
        ms__free(c);
    }
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    ms__free(d);
}

ms_status ms__deploy_host_start(ms_runtime *rt)
{
    ms__deploy_host *d = ms__calloc(1, sizeof *d);
    pthread_condattr_t ca;
    ms_status s;

    if (d == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "runtime: allocating the deploy worker");
    d->rt = rt;
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        ms__free(d);
        return ms__err(MS_ERR_INTERNAL, "runtime: initializing a lock");
    }
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&d->cv, &ca) != 0) {
        pthread_mutex_destroy(&d->mu);
        ms__free(d);
        return ms__err(MS_ERR_INTERNAL, "runtime: initializing a condition variable");
    }
    pthread_condattr_destroy(&ca);
    if (pthread_create(&d->thread, NULL, worker_main, d) != 0) {
        deploy_free(d);
        return ms__err(MS_ERR_INTERNAL, "runtime: starting the deploy worker");
    }
    d->started = true;
    rt->deploy = d;
    s = ms_bus_subscribe(rt->bus, DEPLOY_PREFIX "*", NULL, on_deploy_msg, d, &d->sub);
    if (s != MS_OK) {
        ms_status w = ms__err_wrap(s, "runtime: subscribing to " DEPLOY_PREFIX "*");
        ms__deploy_host_stop(rt);
        return w;
    }
    return MS_OK;
}

void ms__deploy_host_stop(ms_runtime *rt)
{
    ms__deploy_host *d = rt->deploy;
    if (d == NULL)
        return;
    rt->deploy = NULL;
    if (d->sub != NULL)
        (void)ms_subscription_unsubscribe(d->sub); /* no handler runs after it returns */
    pthread_mutex_lock(&d->mu);
    d->stop = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    if (d->started)
        (void)pthread_join(d->thread, NULL);
    deploy_free(d);
}
