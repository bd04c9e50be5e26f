/*
 * config.c - component configuration: the config file, its reload, and
 * mainstack.config.<component> messages.
 *
 * The file is one JSON object, {"<component>": {config}, ...}; every
 * instance of a component gets that member ({} when absent). A change
 * (reload, message, ms_runtime_apply_config) is handed to each instance
 * whose config differs as an exclusive task on its mailbox, which calls
 * handle_config_change and, when the component accepts, makes the new
 * config the one in force. A file that does not parse, or a config that is
 * refused, leaves the old one in force; the reason is logged (parse errors
 * with file:line:column). A batch gathers the answers of all instances
 * concerned, to reply to a request or to return to a waiting caller.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/json.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"
#define CONFIG_MAX_BYTES (16u * 1024 * 1024)

ms_status ms__config_load(const char *path, json_t **out)
{
    json_t *root = NULL;
    const char *key;
    json_t *v;
    ms_status s;

    *out = NULL;
    if ((s = ms_json_load_file(path, CONFIG_MAX_BYTES, &root)) != MS_OK)
        return s;
    if (!json_is_object(root)) {
        json_decref(root);
        return ms__err(MS_ERR_SCHEMA,
                       "%s: the config file must be a JSON object {\"<component>\": {...}}", path);
    }
    json_object_foreach(root, key, v) {
        if (!json_is_object(v)) {
            s = ms__err(MS_ERR_SCHEMA, "%s: member '%s' must be an object (the config of "
                        "component %s)", path, key, key);
            json_decref(root); /* key is borrowed from root */
            return s;
        }
    }
    *out = root;
    return MS_OK;
}

json_t *ms__config_for(ms_runtime *rt, const char *component)
{
    json_t *c = NULL;
    pthread_mutex_lock(&rt->mu);
    if (rt->file_config != NULL) {
        json_t *v = json_object_get(rt->file_config, component);
        if (v != NULL)
            c = json_deep_copy(v);
    }
    pthread_mutex_unlock(&rt->mu);
    return c != NULL ? c : json_object();
}

/* --- batches ---------------------------------------------------------------- */

typedef struct batch {
    pthread_mutex_t mu;
    int refs;
    int pending;
    int changed;
    ms_status first_error;
    char error[512];
    ms_message *request; /* to answer when done (a reference), or NULL */
    ms__completion *done; /* to wake a caller, or NULL */
    ms_runtime *rt;
    char component[MS_COMPONENT_NAME_MAX + 1];
} batch;

typedef struct change {
    batch *b;
    ms_instance *inst;
    json_t *config; /* owned */
} change;

static void batch_unref(batch *b)
{
    int left;
    pthread_mutex_lock(&b->mu);
    left = --b->refs;
    pthread_mutex_unlock(&b->mu);
    if (left > 0)
        return;
    ms_message_unref(b->request);
    ms__completion_unref(b->done);
    pthread_mutex_destroy(&b->mu);
    ms__free(b);
}

/* One instance answered. The last answer replies or wakes the caller. */
static void batch_done(batch *b, ms_status s, bool changed, const char *error)
{
    bool last;
    pthread_mutex_lock(&b->mu);
    if (changed)
        b->changed++;
    if (s != MS_OK && b->first_error == MS_OK) {
        b->first_error = s;
        snprintf(b->error, sizeof b->error, "%s", error != NULL ? error : ms_status_name(s));
    }
    last = --b->pending == 0;
    pthread_mutex_unlock(&b->mu);
    if (!last)
        return;
    if (b->request != NULL) {
        if (b->first_error != MS_OK) {
            ms__respond_error(b->rt, b->request, b->first_error, b->error);
        } else {
            json_t *ok = json_pack("{s:b, s:s, s:i}", "ok", 1, "component", b->component,
                                   "changed", b->changed);
            if (ok != NULL)
                ms__respond_json(b->rt, b->request, ok);
            json_decref(ok);
        }
    }
    if (b->done != NULL)
        ms__completion_finish(b->done, b->first_error, b->error);
}

static void change_task(void *arg)
{
    change *c = arg;
    ms_instance *inst = c->inst;
    const char *name = inst->ops->metadata.name;
    ms_status s = MS_OK;
    bool same;
    char error[512] = "";

    pthread_mutex_lock(&inst->mu);
    same = json_equal(inst->config, c->config);
    pthread_mutex_unlock(&inst->mu);
    if (same) {
        batch_done(c->b, MS_OK, false, NULL);
        goto done;
    }
    if (inst->initialized && inst->ops->handle_config_change != NULL) {
        ms_clear_error();
        s = inst->ops->handle_config_change(inst->self, c->config);
        if (s != MS_OK) {
            snprintf(error, sizeof error, "%s instance %s rejected the config: %s", name, inst->id,
                     ms_last_error()[0] != '\0' ? ms_last_error() : ms_status_name(s));
            ms_log_kv(MS_LOG_WARN, MOD, "config rejected; the old one stays in force",
                      "component", name, "instance", inst->id, "reason", error, NULL);
        }
    }
    if (s == MS_OK) {
        /* Not running: the config applies at the next start. */
        json_t *old;
        pthread_mutex_lock(&inst->mu);
        old = inst->config;
        inst->config = c->config;
        pthread_mutex_unlock(&inst->mu);
        c->config = NULL;
        json_decref(old);
        ms_log_kv(MS_LOG_INFO, MOD, "config applied", "component", name, "instance", inst->id,
                  NULL);
    }
    batch_done(c->b, s, s == MS_OK, error);
    ms__instance_after_call(inst);
done:
    json_decref(c->config);
    batch_unref(c->b);
    ms__free(c);
}

static void change_drop(void *arg)
{
    change *c = arg;
    char error[256];
    snprintf(error, sizeof error, "%s instance %s stopped before the config could be applied",
             c->inst->ops->metadata.name, c->inst->id);
    batch_done(c->b, MS_ERR_CLOSED, false, error);
    json_decref(c->config);
    batch_unref(c->b);
    ms__free(c);
}

/* Start a batch applying config (borrowed; NULL: each instance's entry of
 * the file) to every instance of component (NULL: all). rt->mu must NOT be
 * held. request (borrowed, referenced) is answered when all are done; done
 * (one of its references is taken) is finished then. Returns the number of
 * instances concerned (0: nothing to do; a request is left unanswered, as
 * another host may run the component). */
static int apply(ms_runtime *rt, const char *component, const json_t *config,
                 const ms_message *request, ms__completion *done)
{
    batch *b = ms__calloc(1, sizeof *b);
    int n = 0;

    if (b == NULL) {
        if (request != NULL)
            ms__respond_error(rt, request, MS_ERR_NO_MEMORY, "out of memory applying a config");
        if (done != NULL) {
            ms__completion_finish(done, MS_ERR_NO_MEMORY, "out of memory applying a config");
            ms__completion_unref(done);
        }
        return -1;
    }
    pthread_mutex_init(&b->mu, NULL);
    b->rt = rt;
    b->refs = 1;
    b->pending = 1; /* ours, released below: no early reply */
    snprintf(b->component, sizeof b->component, "%s", component != NULL ? component : "*");
    b->request = request != NULL ? ms_message_ref((ms_message *)request) : NULL;
    b->done = done;

    pthread_mutex_lock(&rt->mu);
    for (ms_instance *it = rt->first; it != NULL; it = it->next) {
        const char *name = it->ops->metadata.name;
        change *c;
        if (component != NULL && strcmp(name, component) != 0)
            continue;
        n++;
        c = ms__calloc(1, sizeof *c);
        if (c != NULL) {
            c->b = b;
            c->inst = it;
            if (config != NULL) {
                c->config = json_deep_copy(config);
            } else if (rt->file_config != NULL) {
                json_t *v = json_object_get(rt->file_config, name);
                c->config = v != NULL ? json_deep_copy(v) : json_object();
            }
        }
        if (c == NULL || c->config == NULL) {
            if (c != NULL)
                ms__free(c);
            pthread_mutex_lock(&b->mu);
            b->pending++;
            pthread_mutex_unlock(&b->mu);
            batch_done(b, MS_ERR_NO_MEMORY, false, "out of memory applying a config");
            continue;
        }
        pthread_mutex_lock(&b->mu);
        b->pending++;
        b->refs++;
        pthread_mutex_unlock(&b->mu);
        if (ms__mailbox_post(it->mb, change_task, change_drop, c,
                             MS__TASK_CONTROL | MS__TASK_EXCLUSIVE, 0) != MS_OK)
            change_drop(c);
    }
    pthread_mutex_unlock(&rt->mu);

    if (n == 0) {
        /* Nobody here runs it: stay silent on a message (another host may),
         * tell a caller. */
        if (b->request != NULL) {
            ms_message_unref(b->request);
            b->request = NULL;
        }
        if (done != NULL)
            ms__completion_finish(done, MS_ERR_NOT_FOUND, "no instance of that component runs here");
        batch_unref(b);
        return 0;
    }
    batch_done(b, MS_OK, false, NULL); /* release our pending slot */
    batch_unref(b);
    return n;
}

/* Run apply() and wait for every answer. */
static ms_status apply_and_wait(ms_runtime *rt, const char *component, const json_t *config)
{
    ms__completion *c = NULL;
    ms_status s;
    int wait_ms = rt->opts.shutdown_timeout_ms > 5000 ? rt->opts.shutdown_timeout_ms : 5000;

    if (ms__mailbox_current() != NULL)
        return ms__err(MS_ERR_STATE, "config changes cannot be waited for from a component "
                       "callback");
    if ((s = ms__completion_new(2, &c)) != MS_OK)
        return s;
    (void)apply(rt, component, config, NULL, c);
    if (!ms__completion_wait(c, wait_ms)) {
        ms__completion_unref(c);
        return ms__err(MS_ERR_TIMEOUT, "config change: instances did not answer within %d ms",
                       wait_ms);
    }
    s = c->status;
    if (s != MS_OK)
        (void)ms__err(s, "%s", c->detail);
    ms__completion_unref(c);
    return s;
}

ms_status ms_runtime_reload_config(ms_runtime *rt)
{
    json_t *fresh = NULL;
    json_t *old;
    ms_status s;

    if (rt == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_reload_config: rt is NULL");
    if (rt->config_path == NULL)
        return ms__err(MS_ERR_STATE, "ms_runtime_reload_config: the runtime has no config file");
    s = ms__config_load(rt->config_path, &fresh);
    if (s != MS_OK) {
        ms_log_kv(MS_LOG_WARN, MOD, "config file not reloaded; the old config stays in force",
                  "reason", ms_last_error(), NULL);
        return s;
    }
    pthread_mutex_lock(&rt->mu);
    old = rt->file_config;
    rt->file_config = fresh;
    pthread_mutex_unlock(&rt->mu);
    json_decref(old);
    ms_log_kv(MS_LOG_INFO, MOD, "config file reloaded", "path", rt->config_path, NULL);
    s = apply_and_wait(rt, NULL, NULL);
    if (s == MS_ERR_NOT_FOUND)
        s = MS_OK; /* no instance at all: nothing to change */
    return s;
}

ms_status ms_runtime_apply_config(ms_runtime *rt, const char *component, const json_t *config)
{
    if (rt == NULL || component == NULL || config == NULL)
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_runtime_apply_config: rt, component and config are required");
    if (!json_is_object(config))
        return ms__err(MS_ERR_SCHEMA, "config of %s: must be a JSON object", component);
    return apply_and_wait(rt, component, config);
}

/* mainstack.config.<component>: {"component","config"} or a bare object. */
void ms__on_config_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ms_runtime *rt = closure;
    const char *subject = ms_message_subject(msg);
    const char *component = subject + strlen("mainstack.config.");
    json_t *payload = NULL;
    const json_t *config;
    json_t *inner;
    ms_status s;

    (void)bus;
    (void)sub;
    s = ms_message_json(msg, &payload);
    if (s != MS_OK) {
        ms_log_kv(MS_LOG_WARN, MOD, "config message not applied", "subject", subject, "reason",
                  ms_last_error(), NULL);
        ms__respond_error(rt, msg, s, ms_last_error());
        return;
    }
    config = payload;
    inner = json_is_object(payload) ? json_object_get(payload, "config") : NULL;
    if (json_is_object(inner) && json_is_string(json_object_get(payload, "component"))) {
        const char *named = json_string_value(json_object_get(payload, "component"));
        if (strcmp(named, component) != 0) {
            char why[300];
            snprintf(why, sizeof why, "config message on %s names component '%.64s'", subject,
                     named);
            ms_log_kv(MS_LOG_WARN, MOD, "config message not applied", "reason", why, NULL);
            ms__respond_error(rt, msg, MS_ERR_SCHEMA, why);
            json_decref(payload);
            return;
        }
        config = inner;
    }
    if (!json_is_object(config)) {
        char why[300];
        snprintf(why, sizeof why, "config message on %s: the config must be a JSON object",
                 subject);
        ms_log_kv(MS_LOG_WARN, MOD, "config message not applied", "reason", why, NULL);
        ms__respond_error(rt, msg, MS_ERR_SCHEMA, why);
        json_decref(payload);
        return;
    }
    (void)apply(rt, component, config, msg, NULL);
    json_decref(payload);
}
