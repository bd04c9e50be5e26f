/*
 * discovery.c - the NATS Services API (ADR-32) for every instance.
 *
 * One fan-out subscription per host on "$SRV.>" answers $SRV.<VERB>,
 * $SRV.<VERB>.<name> and $SRV.<VERB>.<name>.<id> for VERB in PING, INFO,
 * STATS, with one reply per matching running instance: the same wire
 * result as if each instance held its own nine subscriptions (what nats.go's
 * micro package does), at a fraction of the subscriptions for a host with
 * many instances. The JSON has the fields, order and types that micro sends
 * (io.nats.micro.v1.{ping,info,stats}_response): times in nanoseconds,
 * "started" in RFC 3339 UTC, endpoint metadata null when there is none.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/json.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"

typedef enum verb { VERB_PING, VERB_INFO, VERB_STATS } verb;

void ms__endpoint_name(const char *component, const char *subject, char *out, size_t cap)
{
    char prefix[MS_COMPONENT_NAME_MAX + 16];
    const char *s = subject;
    size_t n = 0;

    snprintf(prefix, sizeof prefix, "component.%s.", component);
    if (strncmp(s, prefix, strlen(prefix)) == 0 && s[strlen(prefix)] != '\0')
        s += strlen(prefix);
    /* micro's endpoint names are [A-Za-z0-9_-]+: tokens joined by '_',
     * '*' as "any", '>' as "all", anything else as '_'. */
    while (*s != '\0' && n + 4 < cap) {
        const char *tok = s;
        size_t len = strcspn(s, ".");
        if (len == 1 && tok[0] == '*') {
            memcpy(out + n, "any", 3);
            n += 3;
        } else if (len == 1 && tok[0] == '>') {
            memcpy(out + n, "all", 3);
            n += 3;
        } else {
            for (size_t i = 0; i < len && n + 1 < cap; i++) {
                char c = tok[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '-' || c == '_';
                out[n++] = ok ? c : '_';
            }
        }
        s += len;
        if (*s == '.') {
            s++;
            if (n + 1 < cap)
                out[n++] = '_';
        }
    }
    if (n == 0 && cap > 1)
        out[n++] = '_';
    out[n] = '\0';
}

/* name, id, version, metadata (the ServiceIdentity), then type. */
static json_t *identity(ms_instance *inst, const char *type)
{
    json_t *md = json_deep_copy(inst->metadata);
    return json_pack("{s:s, s:s, s:s, s:o, s:s}", "name", inst->ops->metadata.name, "id", inst->id,
                     "version", inst->ops->metadata.version, "metadata",
                     md != NULL ? md : json_object(), "type", type);
}

static json_t *endpoint_info(const ms__endpoint *ep)
{
    return json_pack("{s:s, s:s, s:s, s:o}", "name", ep->name, "subject", ep->subject,
                     "queue_group", ep->fanout ? "" : ep->inst->ops->metadata.name, "metadata",
                     ep->fanout ? json_pack("{s:s}", "fanout", "true") : json_null());
}

/* inst->mu held (the stats). */
static json_t *endpoint_stats(const ms__endpoint *ep)
{
    uint64_t avg = ep->num_requests > 0 ? ep->processing_ns / ep->num_requests : 0;
    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:s, s:I, s:I}", "name", ep->name, "subject",
                     ep->subject, "queue_group", ep->fanout ? "" : ep->inst->ops->metadata.name,
                     "num_requests", (json_int_t)ep->num_requests, "num_errors",
                     (json_int_t)ep->num_errors, "last_error", ep->last_error, "processing_time",
                     (json_int_t)ep->processing_ns, "average_processing_time", (json_int_t)avg);
}

static json_t *response(ms_instance *inst, verb v)
{
    json_t *root = NULL, *eps = NULL;
    bool ok = true;

    switch (v) {
    case VERB_PING:
        return identity(inst, "io.nats.micro.v1.ping_response");
    case VERB_INFO:
        root = identity(inst, "io.nats.micro.v1.info_response");
        eps = json_array();
        if (root == NULL || eps == NULL)
            break;
        ok = json_object_set_new(root, "description",
                                 json_string(inst->ops->metadata.description)) == 0;
        for (size_t i = 0; ok && i < inst->neps; i++)
            ok = json_array_append_new(eps, endpoint_info(&inst->eps[i])) == 0;
        if (ok && json_object_set_new(root, "endpoints", eps) == 0)
            return root;
        json_decref(root);
        json_decref(eps);
        return NULL;
    case VERB_STATS:
        root = identity(inst, "io.nats.micro.v1.stats_response");
        eps = json_array();
        if (root == NULL || eps == NULL)
            break;
        pthread_mutex_lock(&inst->mu);
        ok = json_object_set_new(root, "started", json_string(inst->started)) == 0;
        for (size_t i = 0; ok && i < inst->neps; i++)
            ok = json_array_append_new(eps, endpoint_stats(&inst->eps[i])) == 0;
        pthread_mutex_unlock(&inst->mu);
        if (ok && json_object_set_new(root, "endpoints", eps) == 0)
            return root;
        json_decref(root);
        json_decref(eps);
        return NULL;
    }
    json_decref(root);
    json_decref(eps);
    return NULL;
}

void ms__on_srv_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ms_runtime *rt = closure;
    char tok[4][128];
    int ntok = 0;
    const char *p = ms_message_subject(msg);
    verb v;
    json_t **answers = NULL;
    size_t n = 0;

    (void)bus;
    (void)sub;
    if (ms_message_reply(msg) == NULL)
        return;
    /* $SRV.<VERB>[.<name>[.<id>]] */
    while (*p != '\0') {
        size_t len = strcspn(p, ".");
        if (ntok == 4 || len >= sizeof tok[0])
            return; /* not ours */
        memcpy(tok[ntok], p, len);
        tok[ntok][len] = '\0';
        ntok++;
        p += len;
        if (*p == '.')
            p++;
    }
    if (ntok < 2)
        return;
    if (strcmp(tok[1], "PING") == 0)
        v = VERB_PING;
    else if (strcmp(tok[1], "INFO") == 0)
        v = VERB_INFO;
    else if (strcmp(tok[1], "STATS") == 0)
        v = VERB_STATS;
    else
        return;

    pthread_mutex_lock(&rt->mu);
    answers = ms__calloc(rt->count > 0 ? rt->count : 1, sizeof *answers);
    if (answers != NULL) {
        for (ms_instance *it = rt->first; it != NULL; it = it->next) {
            bool running;
            if (ntok >= 3 && strcmp(tok[2], it->ops->metadata.name) != 0)
                continue;
            if (ntok == 4 && strcmp(tok[3], it->id) != 0)
                continue;
            pthread_mutex_lock(&it->mu);
            /* a prepared swap candidate serves nothing yet: not listed */
            running = it->state == MS_INSTANCE_RUNNING && !it->candidate;
            pthread_mutex_unlock(&it->mu);
            if (running)
                answers[n++] = response(it, v);
        }
    }
    pthread_mutex_unlock(&rt->mu);
    for (size_t i = 0; i < n; i++) {
        if (answers[i] != NULL)
            ms__respond_json(rt, msg, answers[i]);
        else
            ms_log_kv(MS_LOG_WARN, MOD, "out of memory answering a $SRV request", NULL);
        json_decref(answers[i]);
    }
    ms__free(answers);
}
