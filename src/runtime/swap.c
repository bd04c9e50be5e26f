/*
 * swap.c - ms_runtime_swap: replace the running version of a component by a
 * candidate inside the running host, losing no message and handling none
 * twice.
 *
 * Design: a routing indirection, not two subscriptions. Each bus
 * subscription's closure is a route (runtime_internal.h) naming the endpoint
 * its messages go to; the bus handler posts to that endpoint's mailbox while
 * holding the route's lock. The swap starts the candidate instances without
 * subscribing, then, per route, takes the lock and repoints it at the
 * candidate's endpoint; the subscription itself (with the server's queue
 * group membership, its interest and its pending messages) is handed over
 * untouched. So a message is posted either before the switch (to the old
 * mailbox, which is then drained: the old version answers it) or after (to
 * the candidate): never both, never neither, on NATS and inproc alike.
 * The other design (both versions subscribed in one queue group, the old
 * one unsubscribing) depends on the transport: a NATS UNSUB races with the
 * messages the server already sent to that subscription, which libnats
 * drops; the route needs no cooperation from the server at all.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"

static bool looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n > 3 && strcmp(s + n - 3, ".so") == 0);
}

static void report_error(ms_swap_report *r)
{
    if (r != NULL)
        snprintf(r->error, sizeof r->error, "%s", ms_last_error());
}

/* The candidate's ops: loaded from a plugin, or the caller's. */
static ms_status candidate_ops(ms_runtime *rt, const char *plugin_path, const ms_component_ops *ops,
                               const ms_component_ops **out)
{
    char *resolved = NULL;
    ms_status s;
    if (ops != NULL) {
        if ((s = ms_component_validate(ops, NULL)) != MS_OK)
            return s;
        *out = ops;
        return MS_OK;
    }
    if (!looks_like_path(plugin_path)) {
        if ((s = ms_runtime_resolve(rt, plugin_path, &resolved)) != MS_OK)
            return s;
        plugin_path = resolved;
    }
    s = ms__runtime_plugin_ops(rt, plugin_path, out);
    free(resolved);
    return s;
}

/* The instances of component now serving (not being removed), in order. */
static ms_status active_instances(ms_runtime *rt, const char *component, ms_instance ***list,
                                  size_t *count)
{
    ms_instance **l;
    size_t n = 0;
    pthread_mutex_lock(&rt->mu);
    l = ms__malloc((rt->count > 0 ? rt->count : 1) * sizeof *l);
    if (l == NULL) {
        pthread_mutex_unlock(&rt->mu);
        return ms__err(MS_ERR_NO_MEMORY, "ms_runtime_swap: allocating");
    }
    for (ms_instance *it = rt->first; it != NULL; it = it->next) {
        bool removing;
        pthread_mutex_lock(&it->mu);
        removing = it->removing;
        pthread_mutex_unlock(&it->mu);
        if (!removing && strcmp(it->ops->metadata.name, component) == 0)
            l[n++] = it;
    }
    pthread_mutex_unlock(&rt->mu);
    *list = l;
    *count = n;
    return MS_OK;
}

/* Start a candidate instance modelled on the active one (config in force,
 * restart type, metadata). *out is linked and running, or NULL with the
 * reason set. */
static ms_status start_candidate(ms_runtime *rt, const ms_component_ops *ops, ms_instance *like,
                                 ms_instance **out)
{
    ms_instance_options io;
    ms_instance *inst = NULL;
    json_t *config = NULL, *metadata = NULL;
    ms_instance_state st;
    ms_status s;

    *out = NULL;
    ms_instance_options_init(rt, &io);
    pthread_mutex_lock(&like->mu);
    config = json_deep_copy(like->config);
    metadata = json_deep_copy(like->metadata);
    pthread_mutex_unlock(&like->mu);
    if (config == NULL || metadata == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "ms_runtime_swap: copying the config");
        goto cleanup;
    }
    io.restart = like->restart;
    io.config = config;
    io.metadata = metadata;
    if ((s = ms__instance_new(rt, ops, &io, &inst)) != MS_OK)
        goto cleanup;
    inst->candidate = true;
    snprintf(inst->migrate_from, sizeof inst->migrate_from, "%s", like->ops->metadata.version);
    if ((s = ms__instance_link_and_start(rt, inst)) != MS_OK) {
        ms__instance_free(inst);
        goto cleanup;
    }
    pthread_mutex_lock(&inst->mu);
    st = inst->state;
    pthread_mutex_unlock(&inst->mu);
    if (st != MS_INSTANCE_RUNNING) {
        s = ms__err(inst->start_status != MS_OK ? inst->start_status : MS_ERR_STATE,
                    "candidate %s %s: instance %s: %s", ops->metadata.name, ops->metadata.version,
                    inst->id, inst->last_error[0] != '\0' ? inst->last_error : "did not start");
        *out = inst; /* linked: the caller removes it */
        goto cleanup;
    }
    *out = inst;
    s = MS_OK;

cleanup:
    json_decref(config);
    json_decref(metadata);
    return s;
}

static ms__endpoint *find_endpoint(ms_instance *inst, const ms__endpoint *like)
{
    for (size_t i = 0; i < inst->neps; i++)
        if (inst->eps[i].fanout == like->fanout && strcmp(inst->eps[i].subject, like->subject) == 0)
            return &inst->eps[i];
    return NULL;
}

/* Hand old's subscriptions to the matching endpoints of cand. Returns how
 * many routes moved. The old instance is marked removing first, so that no
 * restart gives it new subscriptions. */
static size_t hand_over(ms_instance *old, ms_instance *cand)
{
    size_t moved = 0;
    ms__instance_mark_removing(old);
    pthread_mutex_lock(&old->sub_mu);
    pthread_mutex_lock(&cand->sub_mu);
    for (size_t i = 0; i < cand->neps; i++) {
        ms__endpoint *to = &cand->eps[i];
        ms__endpoint *from = find_endpoint(old, to);
        if (from == NULL || from->sub == NULL || to->sub != NULL)
            continue;
        pthread_mutex_lock(&from->route->mu);
        from->route->ep = to; /* the switch: later deliveries go to cand */
        pthread_mutex_unlock(&from->route->mu);
        to->sub = from->sub;
        to->route = from->route;
        from->sub = NULL;
        from->route = NULL;
        moved++;
    }
    /* written under sub_mu and mu: read under either (discovery reads
     * it under mu: a candidate does not answer $SRV until it serves) */
    pthread_mutex_lock(&cand->mu);
    cand->candidate = false;
    pthread_mutex_unlock(&cand->mu);
    pthread_mutex_unlock(&cand->sub_mu);
    pthread_mutex_unlock(&old->sub_mu);
    return moved;
}

static size_t count_subs(ms_instance *inst)
{
    size_t n = 0;
    pthread_mutex_lock(&inst->sub_mu);
    for (size_t i = 0; i < inst->neps; i++)
        if (inst->eps[i].sub != NULL)
            n++;
    pthread_mutex_unlock(&inst->sub_mu);
    return n;
}

static bool plugin_loaded(ms_runtime *rt, const ms_component_ops *ops)
{
    bool found = false;
    pthread_mutex_lock(&rt->mu);
    for (rt_plugin *p = rt->plugins; p != NULL && !found; p = p->next)
        found = ms_plugin_ops(p->plugin) == ops;
    pthread_mutex_unlock(&rt->mu);
    return found;
}

static uint64_t handled(ms_instance *inst)
{
    ms_instance_stats st;
    if (ms_instance_get_stats(inst, &st) != MS_OK)
        return 0;
    return st.num_requests;
}

static void remove_candidates(ms_runtime *rt, ms_instance **cands, size_t n, int64_t deadline)
{
    for (size_t i = 0; i < n; i++) {
        if (cands[i] == NULL)
            continue;
        ms__instance_mark_removing(cands[i]);
        ms__instance_unsubscribe(cands[i]);
        (void)ms__instance_retire(rt, cands[i], deadline);
        cands[i] = NULL;
    }
}

/* A prepared swap: candidates started beside the active instances, not yet
 * receiving (rt->pending, under rt->mu; rt->swapping stays true until it is
 * committed or aborted). */
struct ms__swap_pending {
    char component[MS_COMPONENT_NAME_MAX + 1];
    char old_version[64];
    char new_version[64];
    const ms_component_ops *cand_ops;
    const ms_component_ops *old_ops;
    ms_instance **olds;
    ms_instance **cands;
    size_t n;
};

static void pending_free(ms__swap_pending *p)
{
    if (p == NULL)
        return;
    ms__free(p->olds);
    ms__free(p->cands);
    ms__free(p);
}

static void set_swapping(ms_runtime *rt, bool on, ms__swap_pending *p)
{
    pthread_mutex_lock(&rt->mu);
    rt->swapping = on;
    rt->pending = p;
    pthread_mutex_unlock(&rt->mu);
}

ms_status ms_runtime_swap_prepare(ms_runtime *rt, const char *component, const char *plugin_path,
                                  const ms_component_ops *ops, ms_swap_report *out)
{
    ms__swap_pending *p = NULL;
    ms_status s;
    bool locked = false;

    if (out != NULL)
        memset(out, 0, sizeof *out);
    if (rt == NULL || component == NULL || component[0] == '\0' ||
        (plugin_path == NULL) == (ops == NULL) || (plugin_path != NULL && plugin_path[0] == '\0')) {
        s = ms__err(MS_ERR_INVALID_ARG, "ms_runtime_swap: rt, component and exactly one of "
                                        "plugin_path and ops are required");
        goto cleanup;
    }
    if (out != NULL)
        snprintf(out->component, sizeof out->component, "%s", component);
    if (ms__mailbox_current() != NULL) {
        s = ms__err(MS_ERR_STATE, "ms_runtime_swap: not callable from a component callback");
        goto cleanup;
    }
    pthread_mutex_lock(&rt->mu);
    if (rt->shutting_down || rt->swapping) {
        s = ms__err(MS_ERR_STATE, "ms_runtime_swap %s: %s", component,
                    rt->shutting_down ? "the runtime is shutting down"
                    : rt->pending != NULL
                        ? "a prepared swap is waiting for its commit or abort on this host"
                        : "another swap is in progress on this host");
        pthread_mutex_unlock(&rt->mu);
        goto cleanup;
    }
    rt->swapping = true;
    locked = true;
    pthread_mutex_unlock(&rt->mu);

    p = ms__calloc(1, sizeof *p);
    if (p == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "ms_runtime_swap: allocating");
        goto cleanup;
    }
    snprintf(p->component, sizeof p->component, "%s", component);

    /* 1. the candidate */
    if ((s = candidate_ops(rt, plugin_path, ops, &p->cand_ops)) != MS_OK)
        goto cleanup;
    snprintf(p->new_version, sizeof p->new_version, "%s", p->cand_ops->metadata.version);
    if (out != NULL)
        snprintf(out->new_version, sizeof out->new_version, "%s", p->new_version);
    if (strcmp(p->cand_ops->metadata.name, component) != 0) {
        s = ms__err(MS_ERR_INVALID_ARG,
                    "ms_runtime_swap: the candidate%s%s is component '%s', "
                    "not '%s'",
                    plugin_path != NULL ? " " : "", plugin_path != NULL ? plugin_path : "",
                    p->cand_ops->metadata.name, component);
        goto cleanup;
    }
    if ((s = active_instances(rt, component, &p->olds, &p->n)) != MS_OK)
        goto cleanup;
    if (p->n == 0) {
        s = ms__err(MS_ERR_NOT_FOUND, "ms_runtime_swap: no instance of %s runs on this host",
                    component);
        goto cleanup;
    }
    p->old_ops = p->olds[0]->ops;
    /* old_ops goes away with the old plugin: keep what is needed of it */
    snprintf(p->old_version, sizeof p->old_version, "%s", p->old_ops->metadata.version);
    if (out != NULL)
        snprintf(out->old_version, sizeof out->old_version, "%s", p->old_version);
    for (size_t i = 0; i < p->n; i++) {
        if (p->olds[i]->ops == p->cand_ops) {
            s = ms__err(MS_ERR_STATE, "ms_runtime_swap: %s %s is already the active version",
                        component, p->new_version);
            goto cleanup;
        }
    }

    /* 2. the candidate instances, beside the active ones */
    p->cands = ms__calloc(p->n, sizeof *p->cands);
    if (p->cands == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "ms_runtime_swap: allocating");
        goto cleanup;
    }
    for (size_t i = 0; i < p->n; i++) {
        if ((s = start_candidate(rt, p->cand_ops, p->olds[i], &p->cands[i])) != MS_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", ms_last_error());
            remove_candidates(rt, p->cands, p->n, ms__mono_ms() + rt->opts.shutdown_timeout_ms);
            (void)ms__err(s, "%s (the active version %s keeps serving)", why, p->old_version);
            goto cleanup;
        }
    }
    if (out != NULL)
        out->instances = p->n;
    ms_log_kv(MS_LOG_INFO, MOD, "swap prepared", "component", component, "from", p->old_version,
              "to", p->new_version, NULL);
    set_swapping(rt, true, p);
    return MS_OK;

cleanup:
    /* A candidate that never served is unloaded (release keeps a plugin
     * any instance uses). */
    if (p != NULL && p->cand_ops != NULL)
        ms__runtime_plugin_release(rt, p->cand_ops);
    report_error(out);
    pending_free(p);
    if (locked)
        set_swapping(rt, false, NULL);
    return s;
}

/* Take the prepared swap of component off rt (NULL with the reason set). */
static ms_status take_pending(ms_runtime *rt, const char *what, const char *component,
                              ms__swap_pending **out)
{
    ms_status s = MS_OK;
    *out = NULL;
    if (rt == NULL || component == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: rt and component are required", what);
    if (ms__mailbox_current() != NULL)
        return ms__err(MS_ERR_STATE, "%s: not callable from a component callback", what);
    pthread_mutex_lock(&rt->mu);
    if (rt->pending == NULL || strcmp(rt->pending->component, component) != 0) {
        s = ms__err(MS_ERR_STATE, "%s: no prepared swap of %s on this host", what, component);
    } else {
        *out = rt->pending;
        rt->pending = NULL; /* swapping stays true: ours until we finish */
    }
    pthread_mutex_unlock(&rt->mu);
    return s;
}

/* Every old instance is still linked and active (a remove or a shutdown in
 * between would have taken it). rt->mu is taken here. */
static bool olds_still_active(ms_runtime *rt, const ms__swap_pending *p)
{
    size_t found = 0;
    pthread_mutex_lock(&rt->mu);
    for (ms_instance *it = rt->first; it != NULL; it = it->next) {
        for (size_t i = 0; i < p->n; i++) {
            if (it == p->olds[i]) {
                bool removing;
                pthread_mutex_lock(&it->mu);
                removing = it->removing;
                pthread_mutex_unlock(&it->mu);
                if (!removing)
                    found++;
                break;
            }
        }
    }
    pthread_mutex_unlock(&rt->mu);
    return found == p->n;
}

static void fill_versions(const ms__swap_pending *p, ms_swap_report *out)
{
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    snprintf(out->component, sizeof out->component, "%s", p->component);
    snprintf(out->old_version, sizeof out->old_version, "%s", p->old_version);
    snprintf(out->new_version, sizeof out->new_version, "%s", p->new_version);
    out->instances = p->n;
}

ms_status ms_runtime_swap_abort(ms_runtime *rt, const char *component, ms_swap_report *out)
{
    ms__swap_pending *p;
    ms_status s = take_pending(rt, "ms_runtime_swap_abort", component, &p);
    if (p == NULL) {
        if (out != NULL) {
            memset(out, 0, sizeof *out);
            report_error(out);
        }
        return s;
    }
    fill_versions(p, out);
    remove_candidates(rt, p->cands, p->n, ms__mono_ms() + rt->opts.shutdown_timeout_ms);
    ms__runtime_plugin_release(rt, p->cand_ops);
    ms_log_kv(MS_LOG_INFO, MOD, "swap aborted", "component", component, "active", p->old_version,
              "candidate", p->new_version, NULL);
    pending_free(p);
    set_swapping(rt, false, NULL);
    return MS_OK;
}

ms_status ms_runtime_swap_commit(ms_runtime *rt, const char *component, int drain_timeout_ms,
                                 ms_swap_report *out)
{
    ms__swap_pending *p = NULL;
    uint64_t *before = NULL;
    int64_t t0, deadline;
    ms_status s, drain_status = MS_OK;
    size_t n;

    s = take_pending(rt, "ms_runtime_swap_commit", component, &p);
    if (p == NULL) {
        if (out != NULL) {
            memset(out, 0, sizeof *out);
            report_error(out);
        }
        return s;
    }
    fill_versions(p, out);
    n = p->n;
    if (!olds_still_active(rt, p)) {
        /* Removed or shutting down since the prepare: switching now could
         * hand subscriptions of an instance being torn down. */
        remove_candidates(rt, p->cands, n, ms__mono_ms() + rt->opts.shutdown_timeout_ms);
        ms__runtime_plugin_release(rt, p->cand_ops);
        s = ms__err(MS_ERR_STATE,
                    "ms_runtime_swap_commit %s: an active instance was removed since the "
                    "prepare; the candidate %s was dropped",
                    component, p->new_version);
        goto cleanup;
    }
    before = ms__calloc(n, sizeof *before);
    if (before == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "ms_runtime_swap_commit: allocating");
        /* still prepared: the caller may abort */
        set_swapping(rt, true, p);
        p = NULL;
        goto cleanup;
    }

    /* 3. the switch */
    t0 = ms__mono_ns();
    for (size_t i = 0; i < n; i++) {
        size_t moved, had;
        before[i] = handled(p->olds[i]);
        had = count_subs(p->olds[i]);
        moved = hand_over(p->olds[i], p->cands[i]);
        if ((s = ms__instance_subscribe(p->cands[i])) != MS_OK) {
            /* The candidate serves what was handed over; a new topic could
             * not be subscribed. Say so, go on: rolling back would be a
             * second switch with the same risk. */
            ms_log_kv(MS_LOG_ERROR, MOD, "swap: subscribing a new topic failed", "component",
                      component, "error", ms_last_error(), NULL);
            drain_status = s;
        }
        if (out != NULL) {
            out->routes_moved += moved;
            out->topics_added += count_subs(p->cands[i]) - moved;
            out->topics_removed += had - moved;
        }
        ms__instance_unsubscribe(p->olds[i]); /* topics the candidate does not have */
    }
    if (out != NULL)
        out->switch_us = (ms__mono_ns() - t0) / 1000;
    if (ms_bus_flush(rt->bus, 5000) != MS_OK)
        ms_log_kv(MS_LOG_WARN, MOD, "swap: flush failed", "error", ms_last_error(), NULL);

    /* 4. the old instances drain, then stop */
    t0 = ms__mono_ms();
    deadline = t0 + (drain_timeout_ms > 0 ? drain_timeout_ms : rt->opts.shutdown_timeout_ms);
    for (size_t i = 0; i < n; i++) {
        uint64_t got;
        ms_status one;
        int64_t left = deadline - ms__mono_ms();
        (void)ms__mailbox_wait_idle(p->olds[i]->mb, left > 0 ? (int)left : 0);
        got = handled(p->olds[i]) - before[i];
        one = ms__instance_retire(rt, p->olds[i], deadline);
        if (out != NULL)
            out->drained += got;
        if (one != MS_OK && drain_status == MS_OK)
            drain_status = one;
        p->olds[i] = NULL;
    }
    if (out != NULL)
        out->drain_ms = ms__mono_ms() - t0;
    {
        bool was_plugin = plugin_loaded(rt, p->old_ops);
        ms__runtime_plugin_release(rt, p->old_ops);
        if (out != NULL)
            out->old_unloaded = was_plugin && !plugin_loaded(rt, p->old_ops);
    }
    ms_log_kv(MS_LOG_INFO, MOD, "swapped", "component", component, "from", p->old_version, "to",
              p->new_version, NULL);
    s = drain_status;
    if (s != MS_OK)
        (void)ms__err(s, "ms_runtime_swap %s: %s", component, ms_last_error());

cleanup:
    if (s != MS_OK)
        report_error(out);
    ms__free(before);
    if (p != NULL) {
        pending_free(p);
        set_swapping(rt, false, NULL);
    }
    return s;
}

ms_status ms_runtime_swap(ms_runtime *rt, const char *component, const char *plugin_path,
                          const ms_component_ops *ops, int drain_timeout_ms, ms_swap_report *out)
{
    ms_status s = ms_runtime_swap_prepare(rt, component, plugin_path, ops, out);
    if (s != MS_OK)
        return s;
    return ms_runtime_swap_commit(rt, component, drain_timeout_ms, out);
}

bool ms__runtime_swap_pending(ms_runtime *rt, char *component, size_t cap)
{
    bool any;
    pthread_mutex_lock(&rt->mu);
    any = rt->pending != NULL;
    if (any && component != NULL)
        snprintf(component, cap, "%s", rt->pending->component);
    pthread_mutex_unlock(&rt->mu);
    return any;
}
