/*
 * runtime.c - the runtime object: options, the bus, the worker pool, the
 * instance list, adding/loading/removing instances, graceful shutdown, and
 * ms_runtime_run's signal loop; plus small helpers the other runtime files
 * share (clocks, ids, replies, completions).
 *
 * Everything that touches a component's object runs on its mailbox
 * (lifecycle.c, dispatch.c, config.c, health.c); this file only creates
 * instances, posts their start, and tears them down in order: unsubscribe,
 * let the mailbox drain, stop, free.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/message_internal.h"
#include "mainstack/json.h"
#include "mainstack/log.h"
#include "mainstack/subject.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"
#define FLUSH_TIMEOUT_MS 5000
#define STOP_GRACE_MS 2000 /* a stop task may run this long past the deadline */

/* --- small shared helpers ---------------------------------------------------- */

int64_t ms__mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ms__mono_ms(void)
{
    return ms__mono_ns() / 1000000LL;
}

void ms__nuid(char out[MS__NUID_LEN + 1])
{
    static const char alphabet[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    uint64_t r = 0;
    for (int i = 0; i < MS__NUID_LEN; i++) {
        if (i % 10 == 0)
            r = ms__random_u64();
        out[i] = alphabet[r % 62];
        r /= 62;
    }
    out[MS__NUID_LEN] = '\0';
}

int ms__status_http_code(ms_status s)
{
    switch (s) {
    case MS_ERR_INVALID_ARG:
    case MS_ERR_PARSE:
    case MS_ERR_SCHEMA:
    case MS_ERR_INVALID_SUBJECT:
        return 400;
    case MS_ERR_AUTH:
        return 403;
    case MS_ERR_NOT_FOUND:
        return 404;
    case MS_ERR_STATE:
        return 409;
    case MS_ERR_TOO_LARGE:
        return 413;
    case MS_ERR_UNSUPPORTED:
        return 501;
    case MS_ERR_FULL:
    case MS_ERR_CLOSED:
    case MS_ERR_NO_RESPONDERS:
    case MS_ERR_CONNECTION:
        return 503;
    case MS_ERR_TIMEOUT:
        return 504;
    default:
        return 500;
    }
}

void ms__publish_json(ms_runtime *rt, const char *subject, const json_t *value)
{
    char *text = NULL;
    size_t len = 0;
    ms_status s = ms_json_dump(value, &text, &len);
    if (s == MS_OK)
        s = ms_bus_publish(rt->bus, subject, text, len);
    if (s != MS_OK)
        ms_log_kv(MS_LOG_WARN, MOD, "publish failed", "subject", subject, "status",
                  ms_status_name(s), "error", ms_last_error(), NULL);
    free(text);
}

void ms__respond_json(ms_runtime *rt, const ms_message *req, const json_t *value)
{
    char *text = NULL;
    size_t len = 0;
    ms_status s;
    if (ms_message_reply(req) == NULL)
        return;
    s = ms_json_dump(value, &text, &len);
    if (s == MS_OK)
        s = ms_bus_respond(rt->bus, req, text, len);
    if (s != MS_OK)
        ms_log_kv(MS_LOG_WARN, MOD, "reply failed", "subject", ms_message_subject(req),
                  "status", ms_status_name(s), "error", ms_last_error(), NULL);
    free(text);
}

void ms__respond_error(ms_runtime *rt, const ms_message *req, ms_status st, const char *text)
{
    char clean[1024];
    char code[16];
    json_t *body = NULL;
    char *data = NULL;
    size_t len = 0;
    ms_message *m = NULL;
    ms_status s;
    size_t i;

    if (ms_message_reply(req) == NULL)
        return;
    if (text == NULL || text[0] == '\0')
        text = ms_status_name(st);
    /* A header value is one line. */
    for (i = 0; text[i] != '\0' && i < sizeof clean - 1; i++)
        clean[i] = (text[i] == '\r' || text[i] == '\n') ? ' ' : text[i];
    clean[i] = '\0';
    snprintf(code, sizeof code, "%d", ms__status_http_code(st));
    body = json_pack("{s:s, s:i, s:s}", "error", clean, "code", ms__status_http_code(st),
                     "status", ms_status_name(st));
    s = body != NULL ? ms_json_dump(body, &data, &len)
                     : ms__err(MS_ERR_NO_MEMORY, "building an error reply");
    if (s == MS_OK)
        s = ms_message_create(ms_message_reply(req), data, len, &m);
    if (s == MS_OK)
        s = ms_message_set_header(m, "Nats-Service-Error", clean);
    if (s == MS_OK)
        s = ms_message_set_header(m, "Nats-Service-Error-Code", code);
    if (s == MS_OK)
        s = ms_bus_respond_msg(rt->bus, req, m);
    if (s != MS_OK)
        ms_log_kv(MS_LOG_WARN, MOD, "error reply failed", "subject", ms_message_subject(req),
                  "status", ms_status_name(s), "error", ms_last_error(), NULL);
    ms_message_unref(m);
    free(data);
    json_decref(body);
}

/* --- completions ----------------------------------------------------------- */

ms_status ms__completion_new(int refs, ms__completion **out)
{
    ms__completion *c = ms__calloc(1, sizeof *c);
    pthread_condattr_t a;
    if (c == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "runtime: allocating a completion");
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        ms__free(c);
        return ms__err(MS_ERR_INTERNAL, "runtime: initializing a lock");
    }
    if (pthread_condattr_init(&a) != 0 || pthread_condattr_setclock(&a, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&c->cv, &a) != 0) {
        pthread_mutex_destroy(&c->mu);
        ms__free(c);
        return ms__err(MS_ERR_INTERNAL, "runtime: initializing a condition variable");
    }
    pthread_condattr_destroy(&a);
    atomic_init(&c->refs, refs);
    *out = c;
    return MS_OK;
}

void ms__completion_finish(ms__completion *c, ms_status s, const char *detail)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->mu);
    if (!c->done) {
        c->done = true;
        c->status = s;
        snprintf(c->detail, sizeof c->detail, "%s", detail != NULL ? detail : "");
    }
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

bool ms__completion_wait(ms__completion *c, int timeout_ms)
{
    struct timespec ts;
    bool done;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (timeout_ms >= 0) {
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&c->mu);
    while (!c->done) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&c->cv, &c->mu)
                                : pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        if (rc == ETIMEDOUT)
            break;
    }
    done = c->done;
    pthread_mutex_unlock(&c->mu);
    return done;
}

void ms__completion_unref(ms__completion *c)
{
    if (c == NULL || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    ms__free(c);
}

/* --- names ------------------------------------------------------------------ */

const char *ms_instance_state_str(ms_instance_state s)
{
    switch (s) {
    case MS_INSTANCE_STARTING:
        return "starting";
    case MS_INSTANCE_RUNNING:
        return "running";
    case MS_INSTANCE_RESTARTING:
        return "restarting";
    case MS_INSTANCE_STOPPED:
        return "stopped";
    case MS_INSTANCE_FAILED:
        return "failed";
    }
    return "unknown";
}

const char *ms_restart_type_str(ms_restart_type t)
{
    switch (t) {
    case MS_RESTART_PERMANENT:
        return "permanent";
    case MS_RESTART_TRANSIENT:
        return "transient";
    case MS_RESTART_TEMPORARY:
        return "temporary";
    }
    return "unknown";
}

ms_status ms_restart_type_parse(const char *name, ms_restart_type *out)
{
    static const ms_restart_type all[] = {MS_RESTART_PERMANENT, MS_RESTART_TRANSIENT,
                                          MS_RESTART_TEMPORARY};
    if (name == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_restart_type_parse: name and out are required");
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(name, ms_restart_type_str(all[i])) == 0) {
            *out = all[i];
            return MS_OK;
        }
    }
    return ms__err(MS_ERR_PARSE,
                   "restart type '%s': use permanent, transient or temporary", name);
}

/* --- options ----------------------------------------------------------------- */

void ms_runtime_options_init(ms_runtime_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->mailbox_capacity = MS_RUNTIME_DEFAULT_MAILBOX_CAPACITY;
    o->mailbox_full_timeout_ms = MS_RUNTIME_DEFAULT_MAILBOX_FULL_TIMEOUT_MS;
    o->health_interval_ms = MS_RUNTIME_DEFAULT_HEALTH_INTERVAL_MS;
    o->health_timeout_ms = MS_RUNTIME_DEFAULT_HEALTH_TIMEOUT_MS;
    o->unhealthy_threshold = MS_RUNTIME_DEFAULT_UNHEALTHY_THRESHOLD;
    o->failure_threshold = MS_RUNTIME_DEFAULT_FAILURE_THRESHOLD;
    o->max_restarts = MS_RUNTIME_DEFAULT_MAX_RESTARTS;
    o->restart_window_ms = MS_RUNTIME_DEFAULT_RESTART_WINDOW_MS;
    o->restart_delay_ms = MS_RUNTIME_DEFAULT_RESTART_DELAY_MS;
    o->restart = MS_RESTART_PERMANENT;
    o->shutdown_timeout_ms = MS_RUNTIME_DEFAULT_SHUTDOWN_TIMEOUT_MS;
    o->discovery = true;
    o->deploy_commands = true;
}

void ms_instance_options_init(const ms_runtime *rt, ms_instance_options *io)
{
    if (io == NULL)
        return;
    memset(io, 0, sizeof *io);
    io->restart = rt != NULL ? rt->opts.restart : MS_RESTART_PERMANENT;
}

static ms_status check_options(const ms_runtime_options *o)
{
#define NEED(cond, ...)                                                                          \
    do {                                                                                         \
        if (!(cond))                                                                             \
            return ms__err(MS_ERR_INVALID_ARG, __VA_ARGS__);                                      \
    } while (0)
    NEED(o->workers >= 0 && o->workers <= 4096, "runtime options: workers must be 0..4096 (got %d)",
         o->workers);
    NEED(o->mailbox_capacity > 0, "runtime options: mailbox_capacity must be > 0 (got %d)",
         o->mailbox_capacity);
    NEED(o->mailbox_full_timeout_ms >= 0,
         "runtime options: mailbox_full_timeout_ms must be >= 0 (got %d)",
         o->mailbox_full_timeout_ms);
    NEED(o->health_interval_ms >= 0, "runtime options: health_interval_ms must be >= 0 (got %d)",
         o->health_interval_ms);
    NEED(o->health_timeout_ms > 0, "runtime options: health_timeout_ms must be > 0 (got %d)",
         o->health_timeout_ms);
    NEED(o->unhealthy_threshold > 0, "runtime options: unhealthy_threshold must be > 0 (got %d)",
         o->unhealthy_threshold);
    NEED(o->failure_threshold > 0, "runtime options: failure_threshold must be > 0 (got %d)",
         o->failure_threshold);
    NEED(o->max_restarts >= 0 && o->max_restarts <= 100000,
         "runtime options: max_restarts must be 0..100000 (got %d)", o->max_restarts);
    NEED(o->restart_window_ms > 0, "runtime options: restart_window_ms must be > 0 (got %d)",
         o->restart_window_ms);
    NEED(o->restart_delay_ms >= 0, "runtime options: restart_delay_ms must be >= 0 (got %d)",
         o->restart_delay_ms);
    NEED(o->restart == MS_RESTART_PERMANENT || o->restart == MS_RESTART_TRANSIENT ||
             o->restart == MS_RESTART_TEMPORARY,
         "runtime options: restart must be a ms_restart_type (got %d)", (int)o->restart);
    NEED(o->shutdown_timeout_ms >= 0, "runtime options: shutdown_timeout_ms must be >= 0 (got %d)",
         o->shutdown_timeout_ms);
#undef NEED
    return MS_OK;
}

static ms_status copy_opt(const char *in, char **slot, const char **field)
{
    if (in == NULL) {
        *field = NULL;
        return MS_OK;
    }
    *slot = ms__strdup(in);
    if (*slot == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "runtime: copying options");
    *field = *slot;
    return MS_OK;
}

/* --- create / destroy -------------------------------------------------------- */

static ms_status add_sub(ms_runtime *rt, const char *pattern, ms_msg_handler h)
{
    ms_status s;
    if (rt->nsubs >= sizeof rt->subs / sizeof rt->subs[0])
        return ms__err(MS_ERR_INTERNAL, "runtime: too many framework subscriptions");
    s = ms_bus_subscribe(rt->bus, pattern, NULL, h, rt, &rt->subs[rt->nsubs]);
    if (s != MS_OK)
        return ms__err_wrap(s, "runtime: subscribing to %s", pattern);
    rt->nsubs++;
    return MS_OK;
}

static void drop_framework_subs(ms_runtime *rt)
{
    for (size_t i = 0; i < rt->nsubs; i++)
        (void)ms_subscription_unsubscribe(rt->subs[i]);
    rt->nsubs = 0;
}

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)(n > 4096 ? 4096 : n) : 1;
}

ms_status ms_runtime_create(const ms_runtime_options *opts, ms_runtime **out)
{
    ms_runtime *rt = NULL;
    ms_status s;
    pthread_condattr_t ca;
    char name[64];

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_create: out is NULL");
    *out = NULL;
    if (opts == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_create: opts is NULL");
    if ((s = check_options(opts)) != MS_OK)
        return s;

    rt = ms__calloc(1, sizeof *rt);
    if (rt == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_runtime_create: allocating");
    rt->wake_pipe[0] = rt->wake_pipe[1] = -1;
    rt->opts = *opts;
    if (pthread_mutex_init(&rt->mu, NULL) != 0) {
        ms__free(rt);
        return ms__err(MS_ERR_INTERNAL, "ms_runtime_create: initializing a lock");
    }
    if (pthread_condattr_init(&ca) != 0 || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&rt->sup_cv, &ca) != 0) {
        pthread_mutex_destroy(&rt->mu);
        ms__free(rt);
        return ms__err(MS_ERR_INTERNAL, "ms_runtime_create: initializing a condition variable");
    }
    pthread_condattr_destroy(&ca);
    ms__nuid(rt->host_id);

    if (opts->bus == NULL) {
        const char *url = opts->url;
        if (url == NULL || url[0] == '\0')
            url = getenv("NATS_URL");
        if (url == NULL || url[0] == '\0')
            url = MS_RUNTIME_DEFAULT_URL;
        if ((s = copy_opt(url, &rt->url, &rt->opts.url)) != MS_OK)
            goto fail;
    } else {
        rt->opts.url = NULL;
    }
    if (opts->host_name == NULL) {
        snprintf(name, sizeof name, "mstack-%ld", (long)getpid());
        s = copy_opt(name, &rt->host_name, &rt->opts.host_name);
    } else {
        s = copy_opt(opts->host_name, &rt->host_name, &rt->opts.host_name);
    }
    if (s != MS_OK)
        goto fail;
    if ((s = copy_opt(opts->config_path, &rt->config_path, &rt->opts.config_path)) != MS_OK)
        goto fail;
    {
        const char *root = opts->data_root;
        if (root == NULL || root[0] == '\0')
            root = getenv("MAINSTACK_DATA_DIR");
        if (root == NULL || root[0] == '\0')
            root = "./mainstack-data";
        if ((s = copy_opt(root, &rt->data_root, &rt->opts.data_root)) != MS_OK)
            goto fail;
    }
    if ((s = copy_opt(opts->component_path, &rt->component_path, &rt->opts.component_path)) !=
        MS_OK)
        goto fail;
    if ((s = copy_opt(opts->artifact_root, &rt->artifact_root, &rt->opts.artifact_root)) != MS_OK)
        goto fail;
    if (rt->opts.workers == 0)
        rt->opts.workers = online_cpus();

    if (pipe2(rt->wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        rt->wake_pipe[0] = rt->wake_pipe[1] = -1;
        s = ms__err(MS_ERR_IO, "ms_runtime_create: pipe: %s", strerror(errno));
        goto fail;
    }
    if (rt->config_path != NULL && (s = ms__config_load(rt->config_path, &rt->file_config)) != MS_OK)
        goto fail;
    if ((s = ms__executor_create(rt->opts.workers, &rt->ex)) != MS_OK)
        goto fail;

    if (opts->bus != NULL) {
        rt->bus = opts->bus;
    } else {
        ms_bus_options bo;
        ms_bus_options_init(&bo);
        bo.url = rt->url;
        bo.name = rt->host_name;
        if ((s = ms_bus_connect(&bo, &rt->bus)) != MS_OK)
            goto fail;
        rt->owns_bus = true;
    }

    if ((s = add_sub(rt, "mainstack.config.*", ms__on_config_msg)) != MS_OK ||
        (s = add_sub(rt, "mainstack.health", ms__on_health_msg)) != MS_OK ||
        (s = add_sub(rt, "mainstack.health.*.get", ms__on_health_msg)) != MS_OK)
        goto fail;
    if (rt->opts.discovery && (s = add_sub(rt, "$SRV.>", ms__on_srv_msg)) != MS_OK)
        goto fail;
    if (rt->opts.deploy_commands && (s = ms__deploy_host_start(rt)) != MS_OK)
        goto fail;
    if (ms_bus_flush(rt->bus, FLUSH_TIMEOUT_MS) != MS_OK)
        ms_log_kv(MS_LOG_WARN, MOD, "flush after subscribing failed", "error", ms_last_error(),
                  NULL);
    if ((s = ms__supervisor_start(rt)) != MS_OK)
        goto fail;

    ms_log_kv(MS_LOG_INFO, MOD, "runtime created", "host", rt->host_id, "transport",
              ms_bus_transport(rt->bus), NULL);
    *out = rt;
    return MS_OK;

fail:
    rt->shut_down = true; /* nothing to shut down: destroy only frees */
    ms_runtime_destroy(rt);
    return s;
}

static void free_instance(ms_instance *inst)
{
    if (inst == NULL)
        return;
    ms__mailbox_destroy(inst->mb);
    json_decref(inst->config);
    json_decref(inst->metadata);
    ms__free(inst->eps);
    ms__free(inst->data_dir);
    ms__free(inst->restart_log);
    pthread_mutex_destroy(&inst->mu);
    pthread_mutex_destroy(&inst->sub_mu);
    ms__free(inst);
}

void ms_runtime_destroy(ms_runtime *rt)
{
    if (rt == NULL)
        return;
    if (!rt->shut_down)
        (void)ms_runtime_shutdown(rt, rt->opts.shutdown_timeout_ms);
    ms__supervisor_stop(rt);
    ms__deploy_host_stop(rt);
    drop_framework_subs(rt);
    if (rt->first != NULL) {
        /* An instance is stuck inside a component call: its worker may still
         * use the bus, the pool and the plugin's code. Keep them all. */
        ms_logf(MS_LOG_ERROR, MOD, "runtime destroyed with an instance stuck in a component "
                "call; the runtime's memory, threads and plugins are left in place");
        return;
    }
    if (rt->owns_bus)
        ms_bus_destroy(rt->bus);
    if (!ms__executor_destroy(rt->ex, rt->opts.shutdown_timeout_ms))
        return; /* a worker is stuck: the plugins must stay mapped */
    while (rt->plugins != NULL) {
        rt_plugin *p = rt->plugins;
        rt->plugins = p->next;
        ms_plugin_unload(p->plugin);
        ms__free(p);
    }
    json_decref(rt->file_config);
    if (rt->wake_pipe[0] >= 0)
        close(rt->wake_pipe[0]);
    if (rt->wake_pipe[1] >= 0)
        close(rt->wake_pipe[1]);
    ms__free(rt->url);
    ms__free(rt->host_name);
    ms__free(rt->config_path);
    ms__free(rt->data_root);
    ms__free(rt->component_path);
    ms__free(rt->artifact_root);
    pthread_cond_destroy(&rt->sup_cv);
    pthread_mutex_destroy(&rt->mu);
    ms__free(rt);
}

/* --- adding instances -------------------------------------------------------- */

/* mkdir -p */
static ms_status make_dirs(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return ms__err(MS_ERR_INVALID_ARG, "data directory '%s': empty or too long", path);
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0750) != 0 && errno != EEXIST)
            return ms__err(MS_ERR_IO, "data directory %s: mkdir %s: %s", path, buf,
                           strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ms__err(MS_ERR_IO, "data directory %s: not a directory", path);
    return MS_OK;
}

static ms_status check_metadata(const json_t *md)
{
    const char *k;
    json_t *v;
    if (md == NULL)
        return MS_OK;
    if (!json_is_object(md))
        return ms__err(MS_ERR_INVALID_ARG, "instance options: metadata must be a JSON object");
    json_object_foreach((json_t *)md, k, v) {
        if (!json_is_string(v))
            return ms__err(MS_ERR_INVALID_ARG,
                           "instance options: metadata '%s' must be a string (the NATS "
                           "Services API carries string values only)",
                           k);
    }
    return MS_OK;
}

static ms_status build_endpoints(ms_instance *inst)
{
    const ms_component_ops *ops = inst->ops;
    size_t n = 0;
    if (ops->topics != NULL)
        while (ops->topics[n].subject != NULL)
            n++;
    inst->neps = n;
    if (n == 0)
        return MS_OK;
    inst->eps = ms__calloc(n, sizeof *inst->eps);
    if (inst->eps == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "runtime: allocating %zu endpoints", n);
    for (size_t i = 0; i < n; i++) {
        ms__endpoint *ep = &inst->eps[i];
        ep->inst = inst;
        ep->subject = ops->topics[i].subject;
        ep->fanout = (ops->topics[i].flags & MS_TOPIC_FANOUT) != 0;
        ms__endpoint_name(ops->metadata.name, ep->subject, ep->name, sizeof ep->name);
    }
    return MS_OK;
}

static ms_status new_instance(ms_runtime *rt, const ms_component_ops *ops,
                              const ms_instance_options *io, ms_instance **out)
{
    ms_instance *inst;
    ms_status s;
    size_t dlen;
    const char *name = ops->metadata.name;

    inst = ms__calloc(1, sizeof *inst);
    if (inst == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "runtime: allocating an instance of %s", name);
    if (pthread_mutex_init(&inst->mu, NULL) != 0) {
        ms__free(inst);
        return ms__err(MS_ERR_INTERNAL, "runtime: initializing a lock");
    }
    if (pthread_mutex_init(&inst->sub_mu, NULL) != 0) {
        pthread_mutex_destroy(&inst->mu);
        ms__free(inst);
        return ms__err(MS_ERR_INTERNAL, "runtime: initializing a lock");
    }
    inst->rt = rt;
    inst->ops = ops;
    inst->ctx.inst = inst;
    inst->restart = io->restart;
    inst->state = MS_INSTANCE_STARTING;
    atomic_init(&inst->stop_requested, false);
    ms__nuid(inst->id);
    ms_timestamp_now(inst->health_time);

    dlen = strlen(rt->data_root) + 1 + strlen(name) + 1;
    inst->data_dir = ms__malloc(dlen);
    if (inst->data_dir == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "runtime: allocating");
        goto fail;
    }
    snprintf(inst->data_dir, dlen, "%s/%s", rt->data_root, name);
    if ((s = make_dirs(inst->data_dir)) != MS_OK)
        goto fail;

    if (io->config != NULL) {
        if (!json_is_object(io->config)) {
            s = ms__err(MS_ERR_INVALID_ARG, "instance options of %s: config must be a JSON "
                        "object", name);
            goto fail;
        }
        inst->config = json_deep_copy(io->config);
    } else {
        inst->config = ms__config_for(rt, name);
    }
    if (inst->config == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "runtime: copying the config of %s", name);
        goto fail;
    }
    inst->metadata = io->metadata != NULL ? json_deep_copy(io->metadata) : json_object();
    if (inst->metadata == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "runtime: copying metadata");
        goto fail;
    }
    inst->restart_log_cap = (size_t)rt->opts.max_restarts + 1;
    inst->restart_log = ms__calloc(inst->restart_log_cap, sizeof *inst->restart_log);
    if (inst->restart_log == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "runtime: allocating");
        goto fail;
    }
    if ((s = build_endpoints(inst)) != MS_OK)
        goto fail;
    if ((s = ms__mailbox_create(rt->ex, (size_t)rt->opts.mailbox_capacity,
                                (ops->flags & MS_COMPONENT_REENTRANT) != 0, &inst->mb)) != MS_OK)
        goto fail;
    *out = inst;
    return MS_OK;

fail:
    free_instance(inst);
    return s;
}

static void link_instance(ms_runtime *rt, ms_instance *inst)
{
    inst->prev = rt->last;
    inst->next = NULL;
    if (rt->last != NULL)
        rt->last->next = inst;
    else
        rt->first = inst;
    rt->last = inst;
    inst->linked = true;
    rt->count++;
}

static void unlink_instance(ms_runtime *rt, ms_instance *inst)
{
    if (!inst->linked)
        return;
    if (inst->prev != NULL)
        inst->prev->next = inst->next;
    else
        rt->first = inst->next;
    if (inst->next != NULL)
        inst->next->prev = inst->prev;
    else
        rt->last = inst->prev;
    inst->prev = inst->next = NULL;
    inst->linked = false;
    rt->count--;
}

ms_status ms_runtime_add(ms_runtime *rt, const ms_component_ops *ops,
                         const ms_instance_options *io, ms_instance **out)
{
    ms_instance_options defaults;
    ms_instance *inst = NULL;
    ms__completion *c = NULL;
    ms__start_req *req = NULL;
    ms_status s;

    if (out != NULL)
        *out = NULL;
    if (rt == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_add: rt is NULL");
    if ((s = ms_component_validate(ops, NULL)) != MS_OK)
        return s;
    if (io == NULL) {
        ms_instance_options_init(rt, &defaults);
        io = &defaults;
    }
    if (io->restart != MS_RESTART_PERMANENT && io->restart != MS_RESTART_TRANSIENT &&
        io->restart != MS_RESTART_TEMPORARY)
        return ms__err(MS_ERR_INVALID_ARG, "instance options: restart must be a "
                       "ms_restart_type (got %d)", (int)io->restart);
    if ((s = check_metadata(io->metadata)) != MS_OK)
        return s;
    if (ms__mailbox_current() != NULL)
        return ms__err(MS_ERR_STATE, "ms_runtime_add: not callable from a component callback");

    if ((s = new_instance(rt, ops, io, &inst)) != MS_OK)
        return s;
    if ((s = ms__completion_new(2, &c)) != MS_OK)
        goto fail;
    req = ms__malloc(sizeof *req);
    if (req == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "runtime: allocating");
        goto fail;
    }
    req->inst = inst;
    req->done = c;

    pthread_mutex_lock(&rt->mu);
    if (rt->shutting_down) {
        pthread_mutex_unlock(&rt->mu);
        s = ms__err(MS_ERR_STATE, "ms_runtime_add: the runtime is shutting down");
        goto fail;
    }
    link_instance(rt, inst);
    /* Posted under rt->mu: nothing can unlink the instance before its start
     * is queued. A control post cannot block or fail but for memory. */
    s = ms__mailbox_post(inst->mb, ms__task_start, ms__task_start_drop, req,
                         MS__TASK_CONTROL | MS__TASK_EXCLUSIVE, 0);
    if (s != MS_OK) {
        unlink_instance(rt, inst);
        pthread_mutex_unlock(&rt->mu);
        goto fail;
    }
    pthread_mutex_unlock(&rt->mu);
    req = NULL;

    (void)ms__completion_wait(c, -1);
    ms__completion_unref(c);
    /* Subscriptions are live on the server once this returns. */
    if (ms_bus_flush(rt->bus, FLUSH_TIMEOUT_MS) != MS_OK)
        ms_log_kv(MS_LOG_WARN, MOD, "flush after subscribing failed", "component",
                  ops->metadata.name, "error", ms_last_error(), NULL);
    if (out != NULL)
        *out = inst;
    return MS_OK;

fail:
    ms__free(req);
    if (c != NULL) {
        ms__completion_unref(c);
        ms__completion_unref(c);
    }
    free_instance(inst);
    return s;
}

/* --- for swap.c -------------------------------------------------------------- */

ms_status ms__instance_new(ms_runtime *rt, const ms_component_ops *ops,
                           const ms_instance_options *io, ms_instance **out)
{
    return new_instance(rt, ops, io, out);
}

void ms__instance_free(ms_instance *inst)
{
    free_instance(inst);
}

ms_status ms__instance_link_and_start(ms_runtime *rt, ms_instance *inst)
{
    ms__completion *c = NULL;
    ms__start_req *req = NULL;
    ms_status s;

    if ((s = ms__completion_new(2, &c)) != MS_OK)
        return s;
    req = ms__malloc(sizeof *req);
    if (req == NULL) {
        ms__completion_unref(c);
        ms__completion_unref(c);
        return ms__err(MS_ERR_NO_MEMORY, "runtime: allocating");
    }
    req->inst = inst;
    req->done = c;
    pthread_mutex_lock(&rt->mu);
    if (rt->shutting_down) {
        pthread_mutex_unlock(&rt->mu);
        ms__free(req);
        ms__completion_unref(c);
        ms__completion_unref(c);
        return ms__err(MS_ERR_STATE, "the runtime is shutting down");
    }
    link_instance(rt, inst);
    s = ms__mailbox_post(inst->mb, ms__task_start, ms__task_start_drop, req,
                         MS__TASK_CONTROL | MS__TASK_EXCLUSIVE, 0);
    if (s != MS_OK) {
        unlink_instance(rt, inst);
        pthread_mutex_unlock(&rt->mu);
        ms__free(req);
        ms__completion_unref(c);
        ms__completion_unref(c);
        return s;
    }
    pthread_mutex_unlock(&rt->mu);
    (void)ms__completion_wait(c, -1);
    ms__completion_unref(c);
    return MS_OK;
}

/* --- plugins ----------------------------------------------------------------- */

static bool valid_component_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > MS_COMPONENT_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Try the candidates of name in each directory of list (':' separated).
 * Appends the directories tried to tried (bounded). */
static bool search_dirs(const char *list, const char *name, char *found, size_t cap,
                        char *tried, size_t tried_cap)
{
    /* <dir>/<name>.so, <dir>/lib<name>.so, <dir>/<name>/<name>.so,
     * <dir>/<name>/lib<name>.so */
    const char *p = list;
    while (p != NULL && *p != '\0') {
        const char *end = strchr(p, ':');
        int dlen = end != NULL ? (int)(end - p) : (int)strlen(p);
        if (dlen > 0) {
            size_t tl = strlen(tried);
            snprintf(tried + tl, tried_cap - tl, "%s%.*s", tl > 0 ? ", " : "", dlen, p);
            for (int i = 0; i < 4; i++) {
                int n;
                if (i < 2)
                    n = snprintf(found, cap, i == 0 ? "%.*s/%s.so" : "%.*s/lib%s.so", dlen, p,
                                 name);
                else
                    n = snprintf(found, cap, i == 2 ? "%.*s/%s/%s.so" : "%.*s/%s/lib%s.so", dlen,
                                 p, name, name);
                if (n > 0 && (size_t)n < cap && is_file(found))
                    return true;
            }
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

ms_status ms_runtime_resolve(const ms_runtime *rt, const char *name, char **path)
{
    char found[4096];
    char tried[2048] = "";
    const char *env = getenv("MAINSTACK_COMPONENT_PATH");

    if (path == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_resolve: path is NULL");
    *path = NULL;
    if (name == NULL || !valid_component_name(name))
        return ms__err(MS_ERR_INVALID_ARG,
                       "component name '%s' is not valid ([a-z0-9-], at most %d bytes); "
                       "give a path to load a file",
                       name != NULL ? name : "(null)", MS_COMPONENT_NAME_MAX);
    if (search_dirs(env, name, found, sizeof found, tried, sizeof tried) ||
        (rt != NULL &&
         search_dirs(rt->component_path, name, found, sizeof found, tried, sizeof tried))) {
        *path = ms__strdup(found);
        if (*path == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "ms_runtime_resolve: allocating");
        return MS_OK;
    }
    if (tried[0] == '\0')
        return ms__err(MS_ERR_NOT_FOUND,
                       "component '%s' not found: no search path (set MAINSTACK_COMPONENT_PATH "
                       "or give the path of its .so)",
                       name);
    return ms__err(MS_ERR_NOT_FOUND,
                   "component '%s' not found in %s (looked for %s.so, lib%s.so, %s/%s.so, "
                   "%s/lib%s.so; set MAINSTACK_COMPONENT_PATH or give the path of its .so)",
                   name, tried, name, name, name, name, name, name);
}

ms_status ms__runtime_plugin_ops(ms_runtime *rt, const char *path, const ms_component_ops **out)
{
    const ms_component_ops *ops = NULL;
    ms_plugin *pl = NULL;
    rt_plugin *p;
    ms_status s;

    pthread_mutex_lock(&rt->mu);
    for (p = rt->plugins; p != NULL; p = p->next)
        if (strcmp(ms_plugin_path(p->plugin), path) == 0)
            break;
    if (p != NULL)
        ops = ms_plugin_ops(p->plugin);
    pthread_mutex_unlock(&rt->mu);
    if (ops != NULL) {
        *out = ops;
        return MS_OK;
    }
    if ((s = ms_plugin_load(path, &pl)) != MS_OK)
        return s;
    p = ms__calloc(1, sizeof *p);
    if (p == NULL) {
        ms_plugin_unload(pl);
        return ms__err(MS_ERR_NO_MEMORY, "runtime: allocating");
    }
    p->plugin = pl;
    ops = ms_plugin_ops(pl);
    pthread_mutex_lock(&rt->mu);
    p->next = rt->plugins;
    rt->plugins = p;
    pthread_mutex_unlock(&rt->mu);
    ms_log_kv(MS_LOG_INFO, MOD, "plugin loaded", "path", path, "component", ops->metadata.name,
              "version", ops->metadata.version, NULL);
    *out = ops;
    return MS_OK;
}

void ms__runtime_plugin_release(ms_runtime *rt, const ms_component_ops *ops)
{
    rt_plugin **pp, *found = NULL;
    pthread_mutex_lock(&rt->mu);
    for (ms_instance *it = rt->first; it != NULL; it = it->next)
        if (it->ops == ops) {
            pthread_mutex_unlock(&rt->mu);
            return; /* still in use */
        }
    for (pp = &rt->plugins; *pp != NULL; pp = &(*pp)->next)
        if (ms_plugin_ops((*pp)->plugin) == ops) {
            found = *pp;
            *pp = found->next;
            break;
        }
    pthread_mutex_unlock(&rt->mu);
    if (found == NULL)
        return; /* linked-in ops */
    ms_log_kv(MS_LOG_INFO, MOD, "plugin unloaded", "path", ms_plugin_path(found->plugin), NULL);
    ms_plugin_unload(found->plugin);
    ms__free(found);
}

static bool looks_like_path(const char *s)
{
    size_t n = strlen(s);
    return strchr(s, '/') != NULL || (n > 3 && strcmp(s + n - 3, ".so") == 0);
}

ms_status ms_runtime_load(ms_runtime *rt, const char *component, const ms_instance_options *io,
                          ms_instance **out)
{
    char *resolved = NULL;
    const char *path;
    const ms_component_ops *ops = NULL;
    ms_status s;

    if (out != NULL)
        *out = NULL;
    if (rt == NULL || component == NULL || component[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_load: rt and component are required");
    if (looks_like_path(component)) {
        path = component;
    } else {
        if ((s = ms_runtime_resolve(rt, component, &resolved)) != MS_OK)
            return s;
        path = resolved;
    }

    if ((s = ms__runtime_plugin_ops(rt, path, &ops)) != MS_OK)
        goto done;
    s = ms_runtime_add(rt, ops, io, out);
    if (s != MS_OK)
        s = ms__err_wrap(s, "plugin %s", path);

done:
    free(resolved);
    return s;
}

/* --- removing and shutting down ---------------------------------------------- */

static void final_stop_task(void *arg)
{
    ms_instance *inst = arg;
    ms__instance_stop_now(inst, false, "stopped by the host");
}

static int remaining_ms(int64_t deadline)
{
    int64_t left = deadline - ms__mono_ms();
    return left > 0 ? (int)(left > 0x7fffffff ? 0x7fffffff : left) : 0;
}

/* Phase 2 of taking an instance down (it is unsubscribed and marked
 * removing): drain its mailbox by the deadline, then stop it. Returns
 * MS_ERR_TIMEOUT when the drain did not finish (the rest got errors); sets
 * *stuck when even the stop did not run (the instance must be leaked). */
static ms_status drain_and_stop(ms_instance *inst, int64_t deadline, bool *stuck)
{
    ms_status s = MS_OK;
    *stuck = false;
    if (!ms__mailbox_wait_idle(inst->mb, remaining_ms(deadline))) {
        size_t n = ms__mailbox_discard(inst->mb);
        s = ms__err(MS_ERR_TIMEOUT, "%s instance %s: %zu queued messages were not handled "
                    "before the deadline (answered with errors)",
                    inst->ops->metadata.name, inst->id, n);
        ms_log_kv(MS_LOG_WARN, MOD, "drain deadline passed", "component",
                  inst->ops->metadata.name, "instance", inst->id, NULL);
    }
    if (ms__mailbox_post(inst->mb, final_stop_task, NULL, inst,
                         MS__TASK_CONTROL | MS__TASK_EXCLUSIVE, 0) != MS_OK ||
        !ms__mailbox_wait_idle(inst->mb, remaining_ms(deadline) + STOP_GRACE_MS)) {
        *stuck = true;
        ms_log_kv(MS_LOG_ERROR, MOD, "instance stuck in a component call; leaking it",
                  "component", inst->ops->metadata.name, "instance", inst->id, NULL);
        return ms__err(MS_ERR_TIMEOUT, "%s instance %s: still inside a component call past the "
                       "deadline", inst->ops->metadata.name, inst->id);
    }
    return s;
}

static void mark_removing(ms_instance *inst)
{
    pthread_mutex_lock(&inst->mu);
    inst->removing = true;
    pthread_mutex_unlock(&inst->mu);
}

void ms__instance_mark_removing(ms_instance *inst)
{
    mark_removing(inst);
}

ms_status ms__instance_retire(ms_runtime *rt, ms_instance *inst, int64_t deadline)
{
    bool stuck;
    ms_status s = drain_and_stop(inst, deadline, &stuck);
    if (stuck)
        return s;
    pthread_mutex_lock(&rt->mu);
    unlink_instance(rt, inst);
    pthread_mutex_unlock(&rt->mu);
    free_instance(inst);
    return s;
}

ms_status ms_runtime_remove(ms_runtime *rt, ms_instance *inst, int timeout_ms)
{
    ms_instance *it;
    ms_status s;
    bool stuck;
    int64_t deadline;

    if (rt == NULL || inst == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_remove: rt and inst are required");
    if (ms__mailbox_current() != NULL)
        return ms__err(MS_ERR_STATE, "ms_runtime_remove: not callable from a component callback");
    deadline = ms__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&rt->mu);
    for (it = rt->first; it != NULL && it != inst; it = it->next) {
    }
    if (it == NULL) {
        pthread_mutex_unlock(&rt->mu);
        return ms__err(MS_ERR_NOT_FOUND, "ms_runtime_remove: not an instance of this runtime");
    }
    pthread_mutex_unlock(&rt->mu);
    mark_removing(inst);
    ms__instance_unsubscribe(inst);
    s = drain_and_stop(inst, deadline, &stuck);
    pthread_mutex_lock(&rt->mu);
    if (!stuck)
        unlink_instance(rt, inst);
    pthread_mutex_unlock(&rt->mu);
    if (!stuck)
        free_instance(inst);
    return s;
}

ms_status ms_runtime_shutdown(ms_runtime *rt, int timeout_ms)
{
    ms_instance **list = NULL;
    size_t n = 0;
    ms_status s = MS_OK;
    int64_t deadline;

    if (rt == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_shutdown: rt is NULL");
    if (ms__mailbox_current() != NULL)
        return ms__err(MS_ERR_STATE,
                       "ms_runtime_shutdown: not callable from a component callback");
    deadline = ms__mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&rt->mu);
    if (rt->shut_down || rt->shutting_down) {
        s = rt->shut_down ? rt->shutdown_status
                          : ms__err(MS_ERR_STATE, "ms_runtime_shutdown: already in progress");
        pthread_mutex_unlock(&rt->mu);
        return s;
    }
    rt->shutting_down = true;
    pthread_mutex_unlock(&rt->mu);
    ms_log_kv(MS_LOG_INFO, MOD, "shutting down", "host", rt->host_id, NULL);
    /* Deploy commands first: the worker finishes the command it runs (a
     * prepare now fails: shutting down) and aborts what it prepared. Then
     * a swap prepared directly through the API. */
    ms__deploy_host_stop(rt);
    {
        char comp[MS_COMPONENT_NAME_MAX + 1];
        if (ms__runtime_swap_pending(rt, comp, sizeof comp))
            (void)ms_runtime_swap_abort(rt, comp, NULL);
    }

    /* No restart, no health check from now on. */
    ms__supervisor_stop(rt);

    pthread_mutex_lock(&rt->mu);
    if (rt->count > 0) {
        list = ms__malloc(rt->count * sizeof *list);
        if (list != NULL)
            for (ms_instance *it = rt->first; it != NULL; it = it->next)
                list[n++] = it;
    }
    pthread_mutex_unlock(&rt->mu);
    if (list == NULL) {
        /* No memory for a list (or nothing to list): one at a time. */
        ms_instance *inst, *prev = NULL;
        for (;;) {
            pthread_mutex_lock(&rt->mu);
            inst = rt->first;
            pthread_mutex_unlock(&rt->mu);
            if (inst == NULL || inst == prev) /* done, or stuck and leaked */
                break;
            if (ms_runtime_remove(rt, inst, remaining_ms(deadline)) != MS_OK && s == MS_OK)
                s = MS_ERR_TIMEOUT;
            prev = inst;
        }
    }

    /* 1. intake: unsubscribe every topic (the server routes new requests to
     *    other members of the queue groups); what was received is queued. */
    for (size_t i = 0; i < n; i++) {
        mark_removing(list[i]);
        ms__instance_unsubscribe(list[i]);
    }
    /* 2. drain each mailbox, then stop (shutdown, destroy) each instance. */
    for (size_t i = 0; i < n; i++) {
        bool stuck;
        ms_status one = drain_and_stop(list[i], deadline, &stuck);
        if (one != MS_OK && s == MS_OK)
            s = one;
        if (!stuck) {
            pthread_mutex_lock(&rt->mu);
            unlink_instance(rt, list[i]);
            pthread_mutex_unlock(&rt->mu);
            free_instance(list[i]);
        }
    }
    ms__free(list);

    /* 3. the framework's own subjects, then the replies still in flight. */
    drop_framework_subs(rt);
    if (rt->owns_bus) {
        int left = remaining_ms(deadline);
        if (ms_bus_drain(rt->bus, left > 500 ? left : 500) != MS_OK && s == MS_OK)
            s = ms__err(MS_ERR_TIMEOUT, "runtime shutdown: draining the bus timed out");
    } else if (ms_bus_flush(rt->bus, 1000) != MS_OK) {
        ms_log_kv(MS_LOG_WARN, MOD, "final flush failed", "error", ms_last_error(), NULL);
    }

    pthread_mutex_lock(&rt->mu);
    rt->shut_down = true;
    rt->shutdown_status = s;
    pthread_mutex_unlock(&rt->mu);
    ms_log_kv(MS_LOG_INFO, MOD, "shut down", "host", rt->host_id, "status", ms_status_name(s),
              NULL);
    return s;
}

/* --- ms_runtime_run ----------------------------------------------------------- */

/* The signal handler needs the pipe without an argument: the one piece of
 * process-wide state of the runtime, set only while ms_runtime_run runs. */
static volatile sig_atomic_t g_signal_fd = -1;
static atomic_bool g_run_active;

static void on_signal(int sig)
{
    int saved = errno;
    char b = sig == SIGHUP ? 'H' : 'T';
    int fd = g_signal_fd;
    if (fd >= 0)
        (void)!write(fd, &b, 1);
    errno = saved;
}

void ms_runtime_request_stop(ms_runtime *rt)
{
    char b = 'S';
    int saved = errno;
    if (rt != NULL && rt->wake_pipe[1] >= 0)
        (void)!write(rt->wake_pipe[1], &b, 1);
    errno = saved;
}

ms_status ms_runtime_run(ms_runtime *rt)
{
    static const int sigs[] = {SIGHUP, SIGTERM, SIGINT};
    struct sigaction sa, old[3];
    bool stop = false;
    ms_status s = MS_OK;

    if (rt == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_run: rt is NULL");
    pthread_mutex_lock(&rt->mu);
    stop = rt->shut_down || rt->shutting_down;
    pthread_mutex_unlock(&rt->mu);
    if (stop)
        return ms__err(MS_ERR_STATE, "ms_runtime_run: the runtime is shut down");
    if (atomic_exchange(&g_run_active, true))
        return ms__err(MS_ERR_STATE, "ms_runtime_run: another ms_runtime_run is running");

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    g_signal_fd = rt->wake_pipe[1];
    for (int i = 0; i < 3; i++)
        (void)sigaction(sigs[i], &sa, &old[i]);
    ms_log_kv(MS_LOG_INFO, MOD, "running", "host", rt->host_id, NULL);

    while (!stop) {
        struct pollfd pfd = {.fd = rt->wake_pipe[0], .events = POLLIN};
        char buf[64];
        ssize_t got;
        int rc = poll(&pfd, 1, -1);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            s = ms__err(MS_ERR_IO, "ms_runtime_run: poll: %s", strerror(errno));
            break;
        }
        got = read(rt->wake_pipe[0], buf, sizeof buf);
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] == 'H') {
                ms_status r;
                ms_log_kv(MS_LOG_INFO, MOD, "SIGHUP: reloading the config", NULL);
                r = ms_runtime_reload_config(rt);
                if (r != MS_OK)
                    ms_log_kv(MS_LOG_WARN, MOD, "config reload incomplete", "status",
                              ms_status_name(r), "error", ms_last_error(), NULL);
            } else {
                stop = true;
            }
        }
    }

    for (int i = 0; i < 3; i++)
        (void)sigaction(sigs[i], &old[i], NULL);
    g_signal_fd = -1;
    atomic_store(&g_run_active, false);
    if (s != MS_OK)
        return s;
    return ms_runtime_shutdown(rt, rt->opts.shutdown_timeout_ms);
}

/* --- queries ------------------------------------------------------------------ */

const char *ms_runtime_host_id(const ms_runtime *rt)
{
    return rt != NULL ? rt->host_id : NULL;
}

const char *ms_runtime_host_name(const ms_runtime *rt)
{
    return rt != NULL ? rt->host_name : NULL;
}

ms_bus *ms_runtime_bus(ms_runtime *rt)
{
    return rt == NULL ? NULL : rt->bus;
}

int ms_runtime_workers(const ms_runtime *rt)
{
    return rt == NULL ? 0 : rt->opts.workers;
}

ms_status ms_runtime_instances(ms_runtime *rt, ms_instance ***list, size_t *count)
{
    ms_instance **l = NULL;
    size_t n = 0;
    if (rt == NULL || list == NULL || count == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_runtime_instances: rt, list and count are required");
    *list = NULL;
    *count = 0;
    pthread_mutex_lock(&rt->mu);
    /* ms__malloc memory is released with free() (alloc.h) */
    l = ms__malloc((rt->count > 0 ? rt->count : 1) * sizeof *l);
    if (l == NULL) {
        pthread_mutex_unlock(&rt->mu);
        return ms__err(MS_ERR_NO_MEMORY, "ms_runtime_instances: allocating");
    }
    for (ms_instance *it = rt->first; it != NULL; it = it->next)
        l[n++] = it;
    pthread_mutex_unlock(&rt->mu);
    *list = l;
    *count = n;
    return MS_OK;
}

const char *ms_instance_component(const ms_instance *inst)
{
    return inst == NULL ? NULL : inst->ops->metadata.name;
}

const char *ms_instance_id(const ms_instance *inst)
{
    return inst == NULL ? NULL : inst->id;
}

const ms_component_ops *ms_instance_ops(const ms_instance *inst)
{
    return inst == NULL ? NULL : inst->ops;
}

ms_instance_state ms_instance_get_state(const ms_instance *inst)
{
    ms_instance_state st;
    if (inst == NULL)
        return MS_INSTANCE_FAILED;
    pthread_mutex_lock((pthread_mutex_t *)&inst->mu);
    st = inst->state;
    pthread_mutex_unlock((pthread_mutex_t *)&inst->mu);
    return st;
}

ms_status ms_instance_get_stats(const ms_instance *cinst, ms_instance_stats *out)
{
    ms_instance *inst = (ms_instance *)cinst;
    if (inst == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_instance_get_stats: inst and out are required");
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&inst->mu);
    out->state = inst->state;
    out->health = inst->health;
    out->dropped = inst->dropped;
    out->restarts = inst->restarts;
    out->consecutive_failures = inst->consecutive_failures;
    out->consecutive_unhealthy = inst->consecutive_unhealthy;
    for (size_t i = 0; i < inst->neps; i++) {
        ms__endpoint *ep = &inst->eps[i];
        out->num_requests += ep->num_requests;
        out->num_errors += ep->num_errors;
        out->processing_time_ns += ep->processing_ns;
    }
    snprintf(out->last_error, sizeof out->last_error, "%s", inst->last_error);
    snprintf(out->started, sizeof out->started, "%s", inst->started);
    pthread_mutex_unlock(&inst->mu);
    return MS_OK;
}
