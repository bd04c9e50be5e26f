/*
 * promote.c - ms_deploy_promote: switch every host of a component to a new
 * version, all or nothing, over mainstack.deploy.<component>.
 *
 * Design: a two-phase commit with the hosts as participants and this call
 * as coordinator. (1) Discovery: $SRV.PING.<component> is answered by every
 * running instance, so the set of instance ids found is what the prepare
 * answers must cover; a host that runs the component but does not answer
 * deploy commands is therefore noticed (its instances stay uncovered)
 * instead of being silently left on the old version. (2) Prepare: one
 * request to the fan-out subject, many answers gathered on one inbox until
 * every instance is covered or the deadline passes; each host has loaded
 * the candidate and started its instances beside the active ones (not
 * receiving). Any refusal or silence: abort to all, and the active version,
 * which never stopped, keeps serving. (3) Switch: each host repoints its
 * subscriptions and drains the old version (ms_runtime_swap_commit), so
 * within a host no message is lost or handled twice; across hosts the
 * queue group keeps spreading requests over hosts, some on the old version
 * and some on the new for the few milliseconds between their switches.
 * A switch that fails after others succeeded (rare: a prepared host died)
 * is repaired by swapping the switched hosts back when the previous
 * artifact is known, else reported as mixed.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/deploy.h"
#include "mainstack/json.h"
#include "mainstack/log.h"
#include "mainstack/message.h"

#define MOD "deploy"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ms_promote_options_init(ms_promote_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->discover_ms = 300;
    o->prepare_timeout_ms = 15000;
    o->switch_timeout_ms = 30000;
    o->hold_ms = 60000;
}

ms_status ms_deploy_artifact_path(const char *root, const char *component, const char *version,
                                  char *out, size_t cap)
{
    int n;
    if (root == NULL || component == NULL || version == NULL || out == NULL || cap == 0 ||
        component[0] == '\0' || version[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_deploy_artifact_path: root, component, version and out are required");
    n = snprintf(out, cap, "%s/.mainstack/artifacts/%s/%s/%s.so", root, component, version,
                 component);
    if (n < 0 || (size_t)n >= cap)
        return ms__err(MS_ERR_TOO_LARGE,
                       "ms_deploy_artifact_path: the path of %s %s is longer "
                       "than %zu bytes",
                       component, version, cap);
    return MS_OK;
}

/* --- gathering many answers to one request ---------------------------------- */

typedef struct gather {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    json_t *answers; /* array of objects, under mu */
    size_t bad;      /* answers that were not JSON objects */
} gather;

static void on_answer(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    gather *g = closure;
    json_t *j = NULL;
    (void)bus;
    (void)sub;
    if (ms_json_parse(ms_message_data(m), ms_message_len(m), "deploy answer", &j) != MS_OK ||
        !json_is_object(j)) {
        json_decref(j);
        pthread_mutex_lock(&g->mu);
        g->bad++;
        pthread_mutex_unlock(&g->mu);
        return;
    }
    pthread_mutex_lock(&g->mu);
    if (json_array_append_new(g->answers, j) != 0)
        g->bad++;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Enough answers? (under g->mu) */
typedef bool (*enough_fn)(const json_t *answers, void *arg);

/* Publish body on subject and gather the answers until enough() says so or
 * timeout_ms passes. *out: a new array (possibly empty). */
static ms_status ask(ms_bus *bus, const char *subject, const json_t *body, int timeout_ms,
                     enough_fn enough, void *arg, json_t **out)
{
    gather g;
    ms_subscription *sub = NULL;
    char *inbox = NULL, *text = NULL;
    size_t len = 0;
    int64_t deadline = now_ms() + timeout_ms;
    ms_status s;
    pthread_condattr_t ca;

    *out = NULL;
    memset(&g, 0, sizeof g);
    g.answers = json_array();
    if (g.answers == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "deploy: allocating");
    if (pthread_mutex_init(&g.mu, NULL) != 0) {
        json_decref(g.answers);
        return ms__err(MS_ERR_INTERNAL, "deploy: initializing a lock");
    }
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&g.cv, &ca) != 0) {
        pthread_mutex_destroy(&g.mu);
        json_decref(g.answers);
        return ms__err(MS_ERR_INTERNAL, "deploy: initializing a condition variable");
    }
    pthread_condattr_destroy(&ca);

    if ((s = ms_json_dump(body, &text, &len)) != MS_OK)
        goto cleanup;
    if ((s = ms_bus_new_inbox(bus, &inbox)) != MS_OK)
        goto cleanup;
    if ((s = ms_bus_subscribe(bus, inbox, NULL, on_answer, &g, &sub)) != MS_OK)
        goto cleanup;
    if ((s = ms_bus_publish_reply(bus, subject, inbox, text, len)) != MS_OK) {
        s = ms__err_wrap(s, "deploy: publishing on %s", subject);
        goto cleanup;
    }
    (void)ms_bus_flush(bus, timeout_ms > 0 ? timeout_ms : 1);
    pthread_mutex_lock(&g.mu);
    for (;;) {
        struct timespec ts;
        int64_t left = deadline - now_ms();
        if ((enough != NULL && enough(g.answers, arg)) || left <= 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += left / 1000;
        ts.tv_nsec += (left % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&g.cv, &g.mu, &ts);
    }
    pthread_mutex_unlock(&g.mu);
    s = MS_OK;

cleanup:
    if (sub != NULL)
        (void)ms_subscription_unsubscribe(sub); /* no handler runs after it */
    if (s == MS_OK) {
        *out = g.answers;
        g.answers = NULL;
    }
    json_decref(g.answers);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    free(inbox);
    free(text);
    return s;
}

static const char *jstr(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_string(v) ? json_string_value(v) : "";
}

static bool jbool(const json_t *o, const char *k)
{
    return json_is_true(json_object_get(o, k));
}

/* --- the phases ----------------------------------------------------------- */

/* What a prepare must cover: the instance ids found, and a host count. */
typedef struct cover {
    const json_t *ids; /* array of strings */
    size_t hosts;
} cover;

static bool covers(const json_t *answers, const char *id)
{
    size_t i, j;
    json_t *a, *v;
    json_array_foreach(answers, i, a)
    {
        json_array_foreach(json_object_get(a, "instances"), j, v)
        {
            if (json_is_string(v) && strcmp(json_string_value(v), id) == 0)
                return true;
        }
    }
    return false;
}

static bool prepared_enough(const json_t *answers, void *arg)
{
    const cover *c = arg;
    size_t i;
    json_t *v;
    if (json_array_size(answers) < c->hosts)
        return false;
    json_array_foreach(c->ids, i, v)
    {
        if (!covers(answers, json_string_value(v)))
            return false;
    }
    return true;
}

/* Every host of the report that is `want` has answered. */
typedef struct acks {
    const ms_promote_report *r;
    bool (*want)(const ms_promote_host *h);
} acks;

static bool is_prepared(const ms_promote_host *h)
{
    return h->prepared;
}

static bool answered_by(const json_t *answers, const char *host)
{
    size_t i;
    json_t *a;
    json_array_foreach(answers, i, a)
    {
        if (strcmp(jstr(a, "host"), host) == 0)
            return true;
    }
    return false;
}

static bool acked_enough(const json_t *answers, void *arg)
{
    const acks *k = arg;
    for (size_t i = 0; i < k->r->nhosts; i++)
        if (k->want(&k->r->hosts[i]) && !answered_by(answers, k->r->hosts[i].host))
            return false;
    return true;
}

static ms_promote_host *host_of(ms_promote_report *r, const char *host)
{
    for (size_t i = 0; i < r->nhosts; i++)
        if (strcmp(r->hosts[i].host, host) == 0)
            return &r->hosts[i];
    return NULL;
}

static void read_report(const json_t *a, ms_swap_report *rep)
{
    const json_t *j = json_object_get(a, "report");
    if (!json_is_object(j))
        return;
    memset(rep, 0, sizeof *rep);
    snprintf(rep->component, sizeof rep->component, "%s", jstr(j, "component"));
    snprintf(rep->old_version, sizeof rep->old_version, "%s", jstr(j, "old_version"));
    snprintf(rep->new_version, sizeof rep->new_version, "%s", jstr(j, "new_version"));
    rep->instances = (size_t)json_integer_value(json_object_get(j, "instances"));
    rep->routes_moved = (size_t)json_integer_value(json_object_get(j, "routes_moved"));
    rep->topics_added = (size_t)json_integer_value(json_object_get(j, "topics_added"));
    rep->topics_removed = (size_t)json_integer_value(json_object_get(j, "topics_removed"));
    rep->drained = (uint64_t)json_integer_value(json_object_get(j, "drained"));
    rep->switch_us = (int64_t)json_integer_value(json_object_get(j, "switch_us"));
    rep->drain_ms = (int64_t)json_integer_value(json_object_get(j, "drain_ms"));
    rep->old_unloaded = jbool(j, "old_unloaded");
    snprintf(rep->error, sizeof rep->error, "%s", jstr(j, "error"));
}

static void fail_host(ms_promote_report *r, ms_promote_host *h, const char *why)
{
    if (h != NULL && h->error[0] == '\0')
        snprintf(h->error, sizeof h->error, "%s", why);
    if (r->failed_host[0] == '\0')
        snprintf(r->failed_host, sizeof r->failed_host, "%s", h != NULL ? h->name : "");
}

/* Tell every host to abort; mark the prepared ones that acknowledged. */
static void abort_all(ms_bus *bus, const char *subject, const char *component,
                      const char *deployment_id, int timeout_ms, ms_promote_report *r)
{
    json_t *body = json_pack("{s:s, s:s, s:s}", "action", "abort", "component", component,
                             "deployment_id", deployment_id);
    json_t *answers = NULL;
    acks k = {r, is_prepared};
    size_t i;
    json_t *a;
    if (body == NULL || ask(bus, subject, body, timeout_ms, acked_enough, &k, &answers) != MS_OK) {
        ms_log_kv(MS_LOG_ERROR, MOD, "abort could not be sent", "component", component, "error",
                  ms_last_error(), NULL);
        json_decref(body);
        return;
    }
    json_array_foreach(answers, i, a)
    {
        ms_promote_host *h = host_of(r, jstr(a, "host"));
        if (h == NULL)
            continue;
        if (h->prepared && jbool(a, "ok")) {
            h->aborted = true;
            h->prepared = false;
        }
        snprintf(h->active_version, sizeof h->active_version, "%s", jstr(a, "active_version"));
    }
    for (size_t n = 0; n < r->nhosts; n++)
        if (r->hosts[n].prepared) /* no acknowledgement: it aborts by itself after hold_ms */
            fail_host(r, &r->hosts[n],
                      "did not acknowledge the abort (it aborts by itself "
                      "after its hold time)");
    json_decref(answers);
    json_decref(body);
}

static ms_status discover(ms_bus *bus, const char *component, int window_ms, json_t **ids)
{
    char subject[160];
    json_t *answers = NULL, *body = json_object();
    size_t i;
    json_t *a;
    ms_status s;
    *ids = NULL;
    if (body == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "deploy: allocating");
    snprintf(subject, sizeof subject, "$SRV.PING.%s", component);
    s = ask(bus, subject, body, window_ms, NULL, NULL, &answers);
    json_decref(body);
    if (s != MS_OK)
        return s;
    *ids = json_array();
    if (*ids == NULL) {
        json_decref(answers);
        return ms__err(MS_ERR_NO_MEMORY, "deploy: allocating");
    }
    json_array_foreach(answers, i, a)
    {
        const char *id = jstr(a, "id");
        if (id[0] != '\0' && strcmp(jstr(a, "name"), component) == 0)
            (void)json_array_append_new(*ids, json_string(id));
    }
    json_decref(answers);
    return MS_OK;
}

/* Hosts that switched go back to previous_artifact (one phase). */
static void swap_back(ms_bus *bus, const char *subject, const char *component,
                      const char *from_version, const char *previous_artifact,
                      const ms_promote_options *o, ms_promote_report *r)
{
    char id[MS_ID_LEN + 1];
    json_t *body, *answers = NULL;
    size_t i;
    json_t *a;
    ms_id_new(id);
    body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "action", "swap", "component", component,
                     "version", from_version, "artifact", previous_artifact, "deployment_id", id,
                     "drain_timeout_ms", o->drain_timeout_ms);
    if (body == NULL ||
        ask(bus, subject, body, o->switch_timeout_ms, NULL, NULL, &answers) != MS_OK) {
        json_decref(body);
        return;
    }
    json_array_foreach(answers, i, a)
    {
        ms_promote_host *h = host_of(r, jstr(a, "host"));
        if (h == NULL)
            continue;
        if (h->switched && jbool(a, "ok") && !jbool(a, "noop")) {
            h->swapped_back = true;
            h->switched = false;
        }
        snprintf(h->active_version, sizeof h->active_version, "%s", jstr(a, "active_version"));
    }
    json_decref(answers);
    json_decref(body);
}

/* The answer of one given host (arg: its id). */
static bool host_answered(const json_t *answers, void *arg)
{
    return answered_by(answers, arg);
}

/* Switch prepared host h; MS_OK when it serves version afterwards. */
static ms_status switch_one(ms_bus *bus, const char *subject, const char *component,
                            const char *version, const ms_promote_options *o, ms_promote_report *r,
                            ms_promote_host *h)
{
    json_t *body, *answers = NULL, *a;
    size_t i;
    bool answered = false;
    ms_status s;

    body = json_pack("{s:s, s:s, s:s, s:i, s:s}", "action", "switch", "component", component,
                     "deployment_id", r->deployment_id, "drain_timeout_ms", o->drain_timeout_ms,
                     "host", h->host);
    if (body == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_deploy_promote: allocating");
    s = ask(bus, subject, body, o->switch_timeout_ms, host_answered, h->host, &answers);
    json_decref(body);
    if (s != MS_OK) {
        fail_host(r, h, ms_last_error());
        return s;
    }
    json_array_foreach(answers, i, a)
    {
        if (strcmp(jstr(a, "host"), h->host) != 0 || answered)
            continue;
        answered = true;
        snprintf(h->active_version, sizeof h->active_version, "%s", jstr(a, "active_version"));
        if (!h->noop)
            read_report(a, &h->report);
        h->prepared = false;
        if (jbool(a, "ok") || strcmp(jstr(a, "active_version"), version) == 0)
            h->switched = true; /* a drain timeout still leaves the candidate serving */
        if (!jbool(a, "ok"))
            fail_host(r, h, jstr(a, "error"));
    }
    json_decref(answers);
    if (!answered) {
        fail_host(r, h, "did not answer the switch in time");
        return ms__err(MS_ERR_TIMEOUT, "host %s (%s) did not answer the switch within %d ms",
                       h->name, h->host, o->switch_timeout_ms);
    }
    if (!h->switched)
        return ms__err(MS_ERR_STATE, "host %s (%s) failed its switch: %s", h->name, h->host,
                       h->error);
    return MS_OK;
}

ms_status ms_deploy_promote(ms_bus *bus, const char *component, const char *version,
                            const char *artifact_path, const ms_promote_options *o,
                            ms_promote_report *out)
{
    ms_promote_options dflt;
    ms_promote_report *r = NULL;
    json_t *ids = NULL, *body = NULL, *answers = NULL;
    char subject[160];
    int64_t t0 = now_ms(), t;
    ms_status s = MS_OK;
    cover cv;
    size_t i;
    json_t *a;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (bus == NULL || component == NULL || component[0] == '\0' || version == NULL ||
        version[0] == '\0' || artifact_path == NULL || artifact_path[0] == '\0') {
        s = ms__err(MS_ERR_INVALID_ARG,
                    "ms_deploy_promote: bus, component, version and artifact_path are required");
        if (out != NULL)
            snprintf(out->error, sizeof out->error, "%s", ms_last_error());
        return s;
    }
    if (strlen(component) > MS_COMPONENT_NAME_MAX || strpbrk(component, ".*> \t") != NULL) {
        s = ms__err(MS_ERR_INVALID_ARG, "ms_deploy_promote: '%s' is not a component name",
                    component);
        if (out != NULL)
            snprintf(out->error, sizeof out->error, "%s", ms_last_error());
        return s;
    }
    if (o == NULL) {
        ms_promote_options_init(&dflt);
        o = &dflt;
    }
    r = ms__calloc(1, sizeof *r);
    if (r == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_deploy_promote: allocating the report");
    snprintf(r->component, sizeof r->component, "%s", component);
    snprintf(r->to_version, sizeof r->to_version, "%s", version);
    if (o->deployment_id != NULL && o->deployment_id[0] != '\0') {
        snprintf(r->deployment_id, sizeof r->deployment_id, "%s", o->deployment_id);
    } else {
        char id[MS_ID_LEN + 1];
        ms_id_new(id);
        snprintf(r->deployment_id, sizeof r->deployment_id, "%s", id);
    }
    snprintf(subject, sizeof subject, "mainstack.deploy.%s", component);

    /* 1. discovery */
    if ((s = discover(bus, component, o->discover_ms > 0 ? o->discover_ms : 300, &ids)) != MS_OK)
        goto cleanup;
    r->instances_found = json_array_size(ids);
    r->discover_ms = now_ms() - t0;
    if (r->instances_found == 0) {
        s = ms__err(MS_ERR_NOT_FOUND, "promote %s: no instance answered $SRV.PING.%s within %d ms",
                    component, component, o->discover_ms > 0 ? o->discover_ms : 300);
        goto cleanup;
    }

    /* 2. prepare */
    t = now_ms();
    body = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "action", "prepare", "component", component,
                     "version", version, "artifact", artifact_path, "deployment_id",
                     r->deployment_id, "hold_ms", o->hold_ms);
    if (body == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "ms_deploy_promote: allocating");
        goto cleanup;
    }
    cv.ids = ids;
    cv.hosts = o->expected_hosts;
    if ((s = ask(bus, subject, body, o->prepare_timeout_ms, prepared_enough, &cv, &answers)) !=
        MS_OK)
        goto cleanup;
    json_array_foreach(answers, i, a)
    {
        ms_promote_host *h;
        if (jstr(a, "host")[0] == '\0' || host_of(r, jstr(a, "host")) != NULL)
            continue;
        if (r->nhosts == MS_PROMOTE_MAX_HOSTS) {
            s = ms__err(MS_ERR_TOO_LARGE, "promote %s: more than %d hosts answered", component,
                        MS_PROMOTE_MAX_HOSTS);
            break;
        }
        h = &r->hosts[r->nhosts++];
        snprintf(h->host, sizeof h->host, "%s", jstr(a, "host"));
        snprintf(h->name, sizeof h->name, "%s", jstr(a, "name"));
        snprintf(h->from_version, sizeof h->from_version, "%s", jstr(a, "from_version"));
        snprintf(h->to_version, sizeof h->to_version, "%s", jstr(a, "to_version"));
        snprintf(h->active_version, sizeof h->active_version, "%s", jstr(a, "active_version"));
        h->instances = json_array_size(json_object_get(a, "instances"));
        h->noop = jbool(a, "noop");
        read_report(a, &h->report);
        if (jbool(a, "ok")) {
            h->prepared = true;
            if (r->from_version[0] == '\0' && !h->noop)
                snprintf(r->from_version, sizeof r->from_version, "%s", h->from_version);
        } else {
            char why[600];
            snprintf(why, sizeof why, "%s", jstr(a, "error"));
            fail_host(r, h, why);
            if (s == MS_OK)
                s = ms__err(MS_ERR_STATE, "promote %s to %s: host %s (%s) cannot prepare: %s",
                            component, version, h->name, h->host, why);
        }
    }
    if (r->from_version[0] == '\0' && r->nhosts > 0)
        snprintf(r->from_version, sizeof r->from_version, "%s", r->hosts[0].from_version);
    if (s == MS_OK) {
        json_array_foreach(ids, i, a)
        {
            if (!covers(answers, json_string_value(a))) {
                s = ms__err(MS_ERR_TIMEOUT,
                            "promote %s to %s: instance %s answered $SRV.PING but no host "
                            "answered the prepare for it within %d ms",
                            component, version, json_string_value(a), o->prepare_timeout_ms);
                if (r->failed_host[0] == '\0')
                    snprintf(r->failed_host, sizeof r->failed_host, "instance %s",
                             json_string_value(a));
                break;
            }
        }
    }
    if (s == MS_OK && r->nhosts < o->expected_hosts) {
        s = ms__err(MS_ERR_TIMEOUT,
                    "promote %s to %s: %zu of the %zu expected hosts answered the "
                    "prepare within %d ms",
                    component, version, r->nhosts, o->expected_hosts, o->prepare_timeout_ms);
    }
    r->prepare_ms = now_ms() - t;
    if (s != MS_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", ms_last_error());
        abort_all(bus, subject, component, r->deployment_id, o->prepare_timeout_ms, r);
        r->rolled_back = true;
        for (size_t n = 0; n < r->nhosts; n++)
            if (r->hosts[n].prepared) /* did not acknowledge the abort */
                r->rolled_back = false;
        (void)ms__err(s, "%s; aborted on every host, %s keeps serving", why,
                      r->from_version[0] != '\0' ? r->from_version : "the active version");
        goto cleanup;
    }

    /* 3. switch, one host at a time (each request names its host) */
    if (o->on_step != NULL) {
        if (out != NULL)
            memcpy(out, r, sizeof *r); /* the report so far, for the callback */
        o->on_step(o->on_step_ud, "prepared", NULL);
    }
    t = now_ms();
    {
        size_t switched = 0, failed = 0;
        for (size_t n = 0; n < r->nhosts; n++) {
            ms_promote_host *h = &r->hosts[n];
            if ((s = switch_one(bus, subject, component, version, o, r, h)) != MS_OK) {
                failed++;
                break;
            }
            switched++;
            if (o->on_step != NULL) {
                if (out != NULL)
                    memcpy(out, r, sizeof *r);
                o->on_step(o->on_step_ud, "switched", h->host);
            }
        }
        r->switch_ms = now_ms() - t;
        if (failed > 0) {
            char why[1024];
            snprintf(why, sizeof why, "%s", ms_last_error());
            /* the hosts not reached yet keep the old version: release them */
            abort_all(bus, subject, component, r->deployment_id, o->prepare_timeout_ms, r);
            if (switched > 0 && o->previous_artifact != NULL)
                swap_back(bus, subject, component, r->from_version, o->previous_artifact, o, r);
            switched = 0;
            for (size_t n = 0; n < r->nhosts; n++)
                if (r->hosts[n].switched)
                    switched++;
            r->mixed = switched > 0;
            r->rolled_back = switched == 0;
            s = ms__err(MS_ERR_STATE, "promote %s to %s: %s%s", component, version, why,
                        r->mixed ? "; the hosts are mixed (see the report)"
                                 : "; every host is back on the version it served");
            goto cleanup;
        }
    }
    r->ok = true;
    r->total_ms = now_ms() - t0;
    ms_log_kv(MS_LOG_INFO, MOD, "promoted", "component", component, "from", r->from_version, "to",
              version, "deployment", r->deployment_id, NULL);

cleanup:
    if (r->total_ms == 0)
        r->total_ms = now_ms() - t0;
    if (s != MS_OK)
        snprintf(r->error, sizeof r->error, "%s", ms_last_error());
    if (out != NULL)
        memcpy(out, r, sizeof *r);
    json_decref(ids);
    json_decref(body);
    json_decref(answers);
    ms__free(r);
    return s;
}

ms_status ms_deploy_rollback(ms_bus *bus, const char *component, const char *previous_version,
                             const char *previous_artifact, const ms_promote_options *o,
                             ms_promote_report *out)
{
    return ms_deploy_promote(bus, component, previous_version, previous_artifact, o, out);
}

/* --- abort of a promotion left prepared ------------------------------------ */

ms_status ms_deploy_abort(ms_bus *bus, const char *component, const char *deployment_id,
                          int timeout_ms, size_t *aborted, size_t *answered)
{
    char subject[160];
    json_t *body, *answers = NULL, *a;
    size_t i, na = 0, nb = 0;
    ms_status s;

    if (aborted != NULL)
        *aborted = 0;
    if (answered != NULL)
        *answered = 0;
    if (bus == NULL || component == NULL || component[0] == '\0' || deployment_id == NULL ||
        deployment_id[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_deploy_abort: bus, component and deployment_id are required");
    if (strlen(component) > MS_COMPONENT_NAME_MAX || strpbrk(component, ".*> \t") != NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_deploy_abort: '%s' is not a component name",
                       component);
    snprintf(subject, sizeof subject, "mainstack.deploy.%s", component);
    body = json_pack("{s:s, s:s, s:s}", "action", "abort", "component", component, "deployment_id",
                     deployment_id);
    if (body == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_deploy_abort: allocating");
    /* hosts are not known here: every answer within the window counts */
    s = ask(bus, subject, body, timeout_ms > 0 ? timeout_ms : 1000, NULL, NULL, &answers);
    json_decref(body);
    if (s != MS_OK)
        return s;
    json_array_foreach(answers, i, a)
    {
        na++;
        if (jbool(a, "ok") && !jbool(a, "noop"))
            nb++;
    }
    json_decref(answers);
    if (aborted != NULL)
        *aborted = nb;
    if (answered != NULL)
        *answered = na;
    ms_log_kv(MS_LOG_INFO, MOD, "abort sent", "component", component, "deployment", deployment_id,
              NULL);
    return MS_OK;
}
