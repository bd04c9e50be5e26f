/*
 * server.c - the `mstack mcp` main loop: stdin framing, the JSON-RPC
 * envelope, the protocol era of each request, dispatch, worker threads,
 * cancellation and shutdown.
 *
 * The main thread polls stdin and a signalfd (SIGTERM, SIGINT: both are
 * blocked in every thread, so no handler and no global flag). Input is split
 * at '\n' into messages of at most MCP_MAX_LINE bytes; a longer line is
 * skipped as it streams in and answered with -32600. Each request is checked
 * (jsonrpc "2.0", method string, id string or integer, params object), then
 * either speaks the session protocol (initialize first; 2024-11-05 ..
 * 2025-11-25) or carries its own version and client in params._meta
 * (2026-07-28). Quick methods run here; slow ones (tools, reads, prompts) on
 * a worker thread each (joined when it ends), listed in srv->inflight so that
 * notifications/cancelled can flag them. At EOF or on a signal every open
 * request is flagged (after a short grace at EOF), the workers are waited
 * for, and the process exits 0.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "mcp.h"

#define READ_CHUNK 65536
/* At the end of stdin, how long requests still running may take to answer
 * before they are cancelled (a client that closes stdin after its last
 * request may still read the answer). Signals cancel at once. */
#define EOF_GRACE_MS 3000

/* --- lazily opened services -------------------------------------------------- */

ms_bus *mcp_bus(mcp_server *srv, mcp_error *err)
{
    ms_bus *bus;
    pthread_mutex_lock(&srv->lock);
    if (srv->bus == NULL) {
        ms_bus_options o;
        ms_status s;
        ms_bus_options_init(&o);
        o.url = srv->nats_url;
        o.name = "mstack-mcp";
        o.connect_timeout_ms = 2000;
        o.max_reconnect = -1;
        s = ms_bus_connect(&o, &srv->bus);
        if (s != MS_OK) {
            srv->bus = NULL;
            mcp_fail(err, MCP_INTERNAL_ERROR,
                     "cannot connect to NATS at %s (%s: %s): start the server the components "
                     "run on, or restart mstack mcp with --nats URL",
                     srv->nats_url, ms_status_name(s), ms_last_error());
        }
    }
    bus = srv->bus;
    pthread_mutex_unlock(&srv->lock);
    return bus;
}

ms_registry *mcp_registry(mcp_server *srv, mcp_error *err)
{
    ms_registry *reg;
    pthread_mutex_lock(&srv->lock);
    if (srv->registry == NULL) {
        char *path = NULL;
        ms_status s = ms_registry_default_path(srv->root, &path);
        if (s == MS_OK)
            s = ms_registry_open(path, &srv->registry);
        if (s != MS_OK) {
            srv->registry = NULL;
            mcp_fail(err, MCP_INTERNAL_ERROR,
                     "cannot open the registry %s (%s: %s): check that the project root is "
                     "writable",
                     path != NULL ? path : srv->root, ms_status_name(s), ms_last_error());
        }
        free(path);
    }
    reg = srv->registry;
    pthread_mutex_unlock(&srv->lock);
    return reg;
}

/* --- requests ------------------------------------------------------------------ */

static void request_free(mcp_request *rq)
{
    if (rq == NULL)
        return;
    json_decref(rq->id);
    json_decref(rq->params);
    free(rq->method);
    free(rq);
}

/* Unlink rq from the in-flight list (lock held). */
static void unlink_request(mcp_server *srv, mcp_request *rq)
{
    for (mcp_request **p = &srv->inflight; *p != NULL; p = &(*p)->next) {
        if (*p == rq) {
            *p = rq->next;
            rq->next = NULL;
            return;
        }
    }
}

/* Send the outcome of rq (unless it was cancelled), mark it finished. */
static void finish(mcp_request *rq, int rc, json_t *result, mcp_error *err)
{
    mcp_server *srv = rq->srv;
    bool cancelled;

    pthread_mutex_lock(&srv->lock);
    atomic_store(&rq->finished, true);
    cancelled = atomic_load(&rq->cancelled);
    unlink_request(srv, rq);
    pthread_mutex_unlock(&srv->lock);
    if (cancelled) {
        /* the client cancelled it: no response (it may not know the id anymore) */
        json_decref(result);
        json_decref(err->data);
        return;
    }
    if (rc == 0) {
        if (rq->stateless)
            mcp_stamp_result(result);
        mcp_send_result(srv, rq->id, result);
    } else {
        mcp_send_error(srv, rq->id, err);
    }
}

static void run_method(mcp_request *rq, mcp_method_fn fn)
{
    json_t *result = NULL;
    mcp_error err = {0};
    int rc = fn(rq, &result, &err);

    if (rc == 0 && rq->keep_open) {
        /* subscriptions/listen: open (and cancellable) until cancelled */
        json_decref(result);
        pthread_mutex_lock(&rq->srv->lock);
        rq->next = rq->srv->inflight;
        rq->srv->inflight = rq;
        pthread_mutex_unlock(&rq->srv->lock);
        return;
    }
    finish(rq, rc, result, &err);
    request_free(rq);
}

/* --- threads ------------------------------------------------------------------ */

/* Every thread the server starts is joinable and joined: a thread that ends
 * puts its node on srv->ended, and mcp_threads_reap joins those. Joining (not
 * detaching) matters at exit: a detached thread may still be running its
 * thread-local destructors (libnats keeps a malloc'd error state per thread)
 * when main returns, which LeakSanitizer then reports as a leak. */
typedef struct mcp_thread {
    pthread_t t;
    void *(*fn)(void *);
    void *arg;
    mcp_server *srv;
    struct mcp_thread *next;
} mcp_thread;

static void *thread_main(void *p)
{
    mcp_thread *th = p;
    mcp_server *srv = th->srv;
    (void)th->fn(th->arg);
    pthread_mutex_lock(&srv->lock);
    th->next = srv->ended;
    srv->ended = th;
    srv->workers--;
    pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* Join the threads that ended. Not with srv->lock held. */
static void reap(mcp_server *srv)
{
    mcp_thread *th;
    pthread_mutex_lock(&srv->lock);
    th = srv->ended;
    srv->ended = NULL;
    pthread_mutex_unlock(&srv->lock);
    while (th != NULL) {
        mcp_thread *next = th->next;
        (void)pthread_join(th->t, NULL);
        free(th);
        th = next;
    }
}

/* Start fn(arg) on a thread counted in srv->workers (lock held by the
 * caller). False when it cannot be created. */
static bool spawn_locked(mcp_server *srv, void *(*fn)(void *), void *arg)
{
    mcp_thread *th = calloc(1, sizeof *th);
    if (th == NULL)
        return false;
    th->fn = fn;
    th->arg = arg;
    th->srv = srv;
    srv->workers++;
    if (pthread_create(&th->t, NULL, thread_main, th) != 0) {
        srv->workers--;
        free(th);
        return false;
    }
    return true;
}

bool mcp_thread_start(mcp_server *srv, void *(*fn)(void *), void *arg)
{
    bool ok = false;
    reap(srv);
    pthread_mutex_lock(&srv->lock);
    if (!atomic_load(&srv->stopping))
        ok = spawn_locked(srv, fn, arg);
    pthread_mutex_unlock(&srv->lock);
    return ok;
}

typedef struct worker_arg {
    mcp_request *rq;
    mcp_method_fn fn;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg a = *(worker_arg *)p;
    free(p);
    run_method(a.rq, a.fn);
    return NULL;
}

/* Start fn(rq) on a worker thread. Returns false (nothing started) when too
 * many run or the thread cannot be created. */
static bool start_worker(mcp_request *rq, mcp_method_fn fn)
{
    mcp_server *srv = rq->srv;
    worker_arg *a = malloc(sizeof *a);
    bool ok = false;

    if (a == NULL)
        return false;
    a->rq = rq;
    a->fn = fn;
    reap(srv);
    pthread_mutex_lock(&srv->lock);
    if (srv->workers < MCP_MAX_INFLIGHT) {
        rq->next = srv->inflight;
        srv->inflight = rq;
        ok = spawn_locked(srv, worker_main, a);
        if (!ok)
            unlink_request(srv, rq);
    }
    pthread_mutex_unlock(&srv->lock);
    if (!ok)
        free(a);
    return ok;
}

/* --- the envelope ---------------------------------------------------------------- */

static bool valid_id(const json_t *id)
{
    return json_is_string(id) || json_is_integer(id);
}

static void reply_error(mcp_server *srv, const json_t *id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reply_error(mcp_server *srv, const json_t *id, int code, const char *fmt, ...)
{
    mcp_error e = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    mcp_send_error(srv, id, &e);
}

/* notifications/cancelled: flag the request (a listen request ends now). */
static void cancel_request(mcp_server *srv, const json_t *params)
{
    const json_t *id = json_object_get(params, "requestId");
    mcp_request *listen = NULL;

    if (!valid_id(id))
        return;
    pthread_mutex_lock(&srv->lock);
    for (mcp_request *rq = srv->inflight; rq != NULL; rq = rq->next) {
        if (json_equal(rq->id, (json_t *)id)) {
            atomic_store(&rq->cancelled, true);
            if (rq->keep_open) {
                unlink_request(srv, rq);
                listen = rq;
            }
            break;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    if (listen != NULL) {
        mcp_subs_drop_listen(srv, listen->id);
        request_free(listen);
    }
}

static void handle_notification(mcp_server *srv, const char *method, const json_t *params)
{
    if (strcmp(method, "notifications/initialized") == 0) {
        pthread_mutex_lock(&srv->lock);
        srv->initialized = true;
        pthread_mutex_unlock(&srv->lock);
    } else if (strcmp(method, "notifications/cancelled") == 0) {
        cancel_request(srv, params);
    }
    /* other notifications (roots/list_changed, progress, ...) need nothing */
}

/* A -32602 for a bad per-request _meta envelope (2026-07-28): the message,
 * and error.data {"envelope": {"key", "problem"}} naming the key (the shape
 * the TypeScript SDK gives it; an HTTP front answers it with 400). */
static int envelope_fail(mcp_error *err, const char *key, const char *problem, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

static int envelope_fail(mcp_error *err, const char *key, const char *problem, const char *fmt,
                         ...)
{
    va_list ap;
    err->code = MCP_INVALID_PARAMS;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->data = json_pack("{s:{s:s, s:s}}", "envelope", "key", key, "problem", problem);
    return err->code;
}

/* Methods of the session revisions that 2026-07-28 removed. */
static bool removed_in_stateless(const char *method)
{
    static const char *const removed[] = {"initialize", "ping", "logging/setLevel",
                                          "resources/subscribe", "resources/unsubscribe", NULL};
    for (size_t i = 0; removed[i] != NULL; i++) {
        if (strcmp(method, removed[i]) == 0)
            return true;
    }
    return false;
}

/* A 2026-07-28 request (params._meta names the protocol version): check the
 * envelope as the revision's schema (RequestMetaObject) has it, then the
 * version. 0, or an error code with err filled. */
static int set_stateless(mcp_request *rq, const json_t *meta, mcp_error *err)
{
    const json_t *pv = json_object_get(meta, MCP_META_PROTOCOL_VERSION);
    const json_t *info = json_object_get(meta, MCP_META_CLIENT_INFO);
    const json_t *caps = json_object_get(meta, MCP_META_CLIENT_CAPABILITIES);
    const json_t *lvl = json_object_get(meta, MCP_META_LOG_LEVEL);

    if (!json_is_string(pv))
        return envelope_fail(err, MCP_META_PROTOCOL_VERSION, "expected a string",
                             "params._meta[\"%s\"] must be a string such as \"%s\"",
                             MCP_META_PROTOCOL_VERSION, MCP_VERSION_STATELESS);
    if (caps == NULL)
        return envelope_fail(err, MCP_META_CLIENT_CAPABILITIES, "missing",
                             "params._meta[\"%s\"] is missing: %s requests carry the client's "
                             "capabilities on every request ({} when it has none)",
                             MCP_META_CLIENT_CAPABILITIES, MCP_VERSION_STATELESS);
    if (!json_is_object(caps))
        return envelope_fail(err, MCP_META_CLIENT_CAPABILITIES, "expected an object",
                             "params._meta[\"%s\"] must be an object ({} when the client has "
                             "none)",
                             MCP_META_CLIENT_CAPABILITIES);
    /* clientInfo is optional (the client SHOULD send it), but when sent it
     * is an Implementation: a name and a version */
    if (info != NULL &&
        (!json_is_object(info) || !json_is_string(json_object_get(info, "name")) ||
         !json_is_string(json_object_get(info, "version"))))
        return envelope_fail(err, MCP_META_CLIENT_INFO, "expected {name, version}",
                             "params._meta[\"%s\"] must be an object with a name and a version "
                             "(or be left out)",
                             MCP_META_CLIENT_INFO);
    if (lvl != NULL && mcp_log_level_parse(json_string_value(lvl)) < 0)
        return envelope_fail(err, MCP_META_LOG_LEVEL, "expected a logging level",
                             "params._meta[\"%s\"]: expected debug, info, notice, warning, "
                             "error, critical, alert or emergency",
                             MCP_META_LOG_LEVEL);
    if (strcmp(json_string_value(pv), MCP_VERSION_STATELESS) != 0) {
        mcp_fail(err, MCP_UNSUPPORTED_PROTOCOL_VERSION,
                 "unsupported protocol version %s in params._meta: this server takes %s per "
                 "request (older revisions: send initialize without _meta)",
                 json_string_value(pv), MCP_VERSION_STATELESS);
        err->data = json_pack("{s:[s], s:O}", "supported", MCP_VERSION_STATELESS, "requested", pv);
        return err->code;
    }
    rq->stateless = true;
    snprintf(rq->version, sizeof rq->version, "%s", MCP_VERSION_STATELESS);
    snprintf(rq->client, sizeof rq->client, "%s",
             info != NULL ? json_string_value(json_object_get(info, "name")) : "unknown");
    /* no logLevel: no notifications/message for this request */
    rq->log_level = lvl != NULL ? mcp_log_level_parse(json_string_value(lvl)) : MCP_LOG_OFF;
    if (removed_in_stateless(rq->method))
        return mcp_fail(err, MCP_METHOD_NOT_FOUND,
                        "%s is not part of %s: use server/discover, the _meta logLevel and "
                        "subscriptions/listen instead",
                        rq->method, MCP_VERSION_STATELESS);
    return 0;
}

/* The era of a request: 2026-07-28 when params._meta names the protocol
 * version, else the session's. 0, or an error code with err filled. */
static int set_era(mcp_request *rq, bool before_init, mcp_error *err)
{
    mcp_server *srv = rq->srv;
    const json_t *meta = json_object_get(rq->params, "_meta");
    const json_t *tok = json_is_object(meta) ? json_object_get(meta, "progressToken") : NULL;

    if (tok != NULL && valid_id(tok))
        rq->progress_token = (json_t *)tok;
    if (meta != NULL && !json_is_object(meta))
        return envelope_fail(err, "_meta", "expected an object", "params._meta must be an object");
    if (meta != NULL && json_object_get(meta, MCP_META_PROTOCOL_VERSION) != NULL)
        return set_stateless(rq, meta, err);
    if (strcmp(rq->method, "server/discover") == 0 ||
        strcmp(rq->method, "subscriptions/listen") == 0)
        /* methods of 2026-07-28 only, whose params must carry the envelope */
        return envelope_fail(err, meta == NULL ? "_meta" : MCP_META_PROTOCOL_VERSION, "missing",
                             "%s is a %s method: params._meta must carry \"%s\" and \"%s\"",
                             rq->method, MCP_VERSION_STATELESS, MCP_META_PROTOCOL_VERSION,
                             MCP_META_CLIENT_CAPABILITIES);
    pthread_mutex_lock(&srv->lock);
    if (!srv->initialize_seen && !before_init) {
        pthread_mutex_unlock(&srv->lock);
        return mcp_fail(err, MCP_INVALID_REQUEST,
                        "%s before initialize: send initialize first (or, with %s, put "
                        "%s in params._meta)",
                        rq->method, MCP_VERSION_STATELESS, MCP_META_PROTOCOL_VERSION);
    }
    snprintf(rq->version, sizeof rq->version, "%s",
             srv->initialize_seen ? srv->version : MCP_VERSION_LATEST_SESSION);
    snprintf(rq->client, sizeof rq->client, "%s", srv->client[0] ? srv->client : "unknown");
    rq->log_level = srv->log_level;
    pthread_mutex_unlock(&srv->lock);
    return 0;
}

static void handle_request(mcp_server *srv, json_t *msg, const char *method, json_t *id,
                           json_t *params)
{
    mcp_request *rq = calloc(1, sizeof *rq);
    mcp_error err = {0};
    bool threaded = false, before_init = false;
    mcp_method_fn fn;

    if (rq == NULL || (rq->method = strdup(method)) == NULL) {
        free(rq);
        reply_error(srv, id, MCP_INTERNAL_ERROR, "out of memory");
        return;
    }
    (void)msg;
    rq->srv = srv;
    rq->id = json_incref(id);
    rq->params = params != NULL ? json_incref(params) : json_object();
    rq->last_progress = -1e300;
    fn = mcp_method_find(method, &threaded, &before_init);
    if (fn == NULL) {
        mcp_fail(&err, MCP_METHOD_NOT_FOUND,
                 "unknown method '%s' (tools/list, tools/call, resources/list, "
                 "resources/read, prompts/list, prompts/get, ping, ...)",
                 method);
        goto fail;
    }
    if (set_era(rq, before_init, &err) != 0)
        goto fail;
    if (!threaded) {
        run_method(rq, fn);
        return;
    }
    if (!start_worker(rq, fn)) {
        mcp_fail(&err, MCP_INTERNAL_ERROR,
                 "too many requests in progress (%d): wait for some to finish or cancel them",
                 MCP_MAX_INFLIGHT);
        goto fail;
    }
    return;
fail:
    mcp_send_error(srv, rq->id, &err);
    request_free(rq);
}

/* One input line (without its newline). */
static void handle_line(mcp_server *srv, const char *line, size_t len)
{
    json_t *msg = NULL, *id, *method, *params;
    ms_status s;

    while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
        len--;
    if (len == 0)
        return;
    s = ms_json_parse(line, len, "message", &msg);
    if (s != MS_OK) {
        reply_error(srv, NULL, MCP_PARSE_ERROR,
                    "parse error: %s (each line must be one JSON-RPC message in UTF-8)",
                    ms_last_error());
        return;
    }
    if (json_is_array(msg)) {
        reply_error(srv, NULL, MCP_INVALID_REQUEST,
                    "JSON-RPC batches are not supported: send one message per line");
        goto cleanup;
    }
    if (!json_is_object(msg)) {
        reply_error(srv, NULL, MCP_INVALID_REQUEST, "a JSON-RPC message must be an object");
        goto cleanup;
    }
    id = json_object_get(msg, "id");
    method = json_object_get(msg, "method");
    params = json_object_get(msg, "params");
    if (!json_is_string(json_object_get(msg, "jsonrpc")) ||
        strcmp(json_string_value(json_object_get(msg, "jsonrpc")), "2.0") != 0) {
        reply_error(srv, valid_id(id) ? id : NULL, MCP_INVALID_REQUEST,
                    "\"jsonrpc\" must be \"2.0\"");
        goto cleanup;
    }
    if (method == NULL &&
        (json_object_get(msg, "result") != NULL || json_object_get(msg, "error") != NULL)) {
        /* a response: this server sends no requests, so nothing waits for it */
        fputs("mstack mcp: ignoring a response from the client (no request was sent)\n", stderr);
        goto cleanup;
    }
    if (!json_is_string(method)) {
        reply_error(srv, valid_id(id) ? id : NULL, MCP_INVALID_REQUEST,
                    "\"method\" must be a string");
        goto cleanup;
    }
    if (id != NULL && !valid_id(id)) {
        reply_error(srv, NULL, MCP_INVALID_REQUEST,
                    "\"id\" must be a string or an integer (not null, a fraction, an array or "
                    "an object)");
        goto cleanup;
    }
    if (params != NULL && !json_is_object(params)) {
        if (id != NULL)
            reply_error(srv, id, MCP_INVALID_PARAMS, "\"params\" must be an object");
        goto cleanup;
    }
    if (id == NULL)
        handle_notification(srv, json_string_value(method), params);
    else
        handle_request(srv, msg, json_string_value(method), id, params);
cleanup:
    json_decref(msg);
}

/* --- input ------------------------------------------------------------------------ */

typedef struct reader {
    char *buf;
    size_t len;     /* bytes of the current line held */
    bool skipping;  /* inside a line longer than MCP_MAX_LINE */
    size_t skipped; /* its length so far */
} reader;

/* Feed n bytes: dispatch complete lines, keep the rest. */
static void feed(mcp_server *srv, reader *r, const char *p, size_t n)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl != NULL ? (size_t)(nl - p) : n;
        if (r->skipping) {
            r->skipped += take;
        } else if (r->len + take > MCP_MAX_LINE) {
            r->skipping = true;
            r->skipped = r->len + take;
            r->len = 0;
        } else {
            memcpy(r->buf + r->len, p, take);
            r->len += take;
        }
        if (nl == NULL)
            return;
        if (r->skipping) {
            reply_error(srv, NULL, MCP_INVALID_REQUEST,
                        "message of %zu bytes refused: a line may hold at most %u bytes",
                        r->skipped, MCP_MAX_LINE);
            r->skipping = false;
            r->skipped = 0;
        } else {
            handle_line(srv, r->buf, r->len);
        }
        r->len = 0;
        p += take + 1;
        n -= take + 1;
    }
}

/* The server ends the open subscriptions/listen requests (lock held): each
 * gets its SubscriptionsListenResult (resultType "complete", _meta with the
 * subscription id), the 2026-07-28 sign of a graceful end, and no
 * notification after it (its subscriptions are dropped under the same lock
 * the escalation watcher sends under). */
static void end_listens_locked(mcp_server *srv)
{
    for (mcp_request *rq = srv->inflight; rq != NULL; rq = rq->next) {
        json_t *res;
        if (!rq->keep_open || atomic_load(&rq->cancelled))
            continue;
        mcp_subs_drop_listen_locked(srv, rq->id);
        res = json_pack("{s:{s:O}}", "_meta", MCP_META_SUBSCRIPTION_ID, rq->id);
        if (res != NULL) {
            mcp_stamp_result(res);
            mcp_send_result(srv, rq->id, res);
        }
        atomic_store(&rq->cancelled, true);
    }
}

/* Give the running requests grace_ms to finish (their responses still go
 * out), then flag every open request and wait for the workers. end_listens:
 * the server stops of its own accord (a signal), so the open listen requests
 * get their closing result; at end of input the client has gone (a closed
 * transport carries no response). */
static void shut_down(mcp_server *srv, long grace_ms, bool end_listens)
{
    mcp_request *open;
    struct timespec dl;

    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += grace_ms / 1000;
    dl.tv_nsec += (grace_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->lock);
    while (srv->workers > 0 && grace_ms > 0) {
        if (pthread_cond_timedwait(&srv->idle, &srv->lock, &dl) == ETIMEDOUT)
            break;
    }
    atomic_store(&srv->stopping, true);
    if (end_listens)
        end_listens_locked(srv);
    for (mcp_request *rq = srv->inflight; rq != NULL; rq = rq->next)
        atomic_store(&rq->cancelled, true);
    /* closing the bus ends a NATS request a worker waits in; the bus object
     * stays valid (calls on it fail with MS_ERR_CLOSED) until destroyed below */
    if (srv->bus != NULL)
        ms_bus_close(srv->bus);
    while (srv->workers > 0)
        pthread_cond_wait(&srv->idle, &srv->lock);
    open = srv->inflight; /* what is left: listen requests */
    srv->inflight = NULL;
    pthread_mutex_unlock(&srv->lock);
    reap(srv); /* every thread has ended: join them all */
    while (open != NULL) {
        mcp_request *next = open->next;
        request_free(open);
        open = next;
    }
    ms_bus_destroy(srv->bus); /* no callback runs after this */
    srv->bus = NULL;
    mcp_subs_free(srv);
    ms_registry_close(srv->registry);
    srv->registry = NULL;
}

int mcp_server_run(const char *root, const char *component, const char *nats_url)
{
    mcp_server srv;
    reader r = {0};
    char *chunk = NULL;
    long grace_ms = 0; /* at EOF: EOF_GRACE_MS for the requests running */
    bool signalled = false;
    sigset_t sigs;
    int sfd = -1, rc = 1;

    memset(&srv, 0, sizeof srv);
    if (realpath(root, srv.root) == NULL) {
        fprintf(stderr, "mstack mcp: project root %s: %s\n", root, strerror(errno));
        return 2;
    }
    srv.component = component;
    srv.nats_url = nats_url;
    srv.out_fd = STDOUT_FILENO;
    srv.log_level = MCP_LOG_OFF;
    atomic_init(&srv.stopping, false);
    {
        char msg[1024];
        if (mcp_tools_init(&srv, msg, sizeof msg) != 0) {
            fprintf(stderr, "mstack mcp: cannot start: %s\n", msg);
            mcp_tools_free(&srv);
            return 1;
        }
    }
    pthread_mutex_init(&srv.out_lock, NULL);
    pthread_mutex_init(&srv.lock, NULL);
    pthread_cond_init(&srv.idle, NULL);

    /* blocked here, before any thread starts, so in every thread: SIGTERM and
     * SIGINT arrive on the signalfd, a closed stdout gives EPIPE */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &sigs, NULL) != 0)
        goto cleanup;
    sigdelset(&sigs, SIGPIPE);
    sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
    r.buf = malloc(MCP_MAX_LINE + 1);
    chunk = malloc(READ_CHUNK);
    if (sfd < 0 || r.buf == NULL || chunk == NULL) {
        fprintf(stderr, "mstack mcp: cannot start: %s\n", strerror(errno));
        goto cleanup;
    }
    fprintf(stderr, "mstack mcp: serving %s%s%s over stdio (NATS %s)\n", srv.root,
            component != NULL ? ", component " : "", component != NULL ? component : "", nats_url);
    for (;;) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {sfd, POLLIN, 0}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "mstack mcp: poll: %s\n", strerror(errno));
            break;
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                fprintf(stderr, "mstack mcp: signal %u: stopping\n", si.ssi_signo);
            signalled = true;
            break;
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(STDIN_FILENO, chunk, READ_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                if (n < 0)
                    fprintf(stderr, "mstack mcp: reading stdin: %s\n", strerror(errno));
                if (!r.skipping && r.len > 0)
                    handle_line(&srv, r.buf, r.len); /* a last line without newline */
                grace_ms = EOF_GRACE_MS;
                break;
            }
            feed(&srv, &r, chunk, (size_t)n);
        }
        pthread_mutex_lock(&srv.out_lock);
        bool broken = srv.out_broken;
        pthread_mutex_unlock(&srv.out_lock);
        if (broken)
            break;
    }
    rc = 0;
cleanup:
    shut_down(&srv, grace_ms, signalled);
    if (sfd >= 0)
        close(sfd);
    free(chunk);
    free(r.buf);
    pthread_cond_destroy(&srv.idle);
    pthread_mutex_destroy(&srv.lock);
    pthread_mutex_destroy(&srv.out_lock);
    mcp_tools_free(&srv);
    return rc;
}
