/*
 * tool_bus.c - tools that talk to running components over NATS:
 * publish_message, request, health and services.
 *
 * request is the long one: the NATS request runs on a helper thread
 * (mcp_thread_start: counted as a worker and joined, so shutdown waits for
 * it; closing the bus at shutdown makes it return at once) while the tool's thread waits in 200 ms
 * slices, sending notifications/progress (elapsed of timeout) and returning as soon as the client
 * cancels. health and services collect fan-out answers on one inbox the same way, cancellable.
 * Replies larger than REPLY_MAX are truncated with a note.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp.h"

#define REPLY_MAX (256u * 1024u)
#define SLICE_MS 200

static void deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int monotonic_cond(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    int rc = pthread_condattr_init(&ca);
    if (rc == 0 && (rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
        rc = pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
    return rc;
}

/* Under --component, subjects stay in that component's namespace. */
static bool subject_in_scope(const mcp_server *srv, const char *subject, char *why, size_t cap)
{
    char prefix[96];
    if (srv->component == NULL)
        return true;
    snprintf(prefix, sizeof prefix, "component.%s.", srv->component);
    if (strncmp(subject, prefix, strlen(prefix)) == 0)
        return true;
    snprintf(why, cap,
             "subject %s is outside this server's scope: with --component %s only "
             "component.%s.<endpoint> subjects can be used",
             subject, srv->component, srv->component);
    return false;
}

/* A payload argument (any JSON; absent -> empty). *out malloc'd. */
static char *payload_text(const json_t *payload, size_t *len)
{
    char *t = payload != NULL ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) : calloc(1, 1);
    *len = t != NULL ? strlen(t) : 0;
    return t;
}

/* The reply payload as JSON when it is JSON, else as a string; truncated. */
static json_t *reply_value(const ms_message *m, bool *truncated)
{
    const char *data = ms_message_data(m);
    size_t len = ms_message_len(m);
    json_t *v = NULL;

    *truncated = false;
    if (len == 0)
        return json_null();
    if (len <= REPLY_MAX && ms_json_parse(data, len, "reply", &v) == MS_OK)
        return v;
    if (len > REPLY_MAX) {
        len = REPLY_MAX;
        while (len > 0 && ((unsigned char)data[len] & 0xC0) == 0x80)
            len--; /* cut on a character boundary */
        *truncated = true;
    }
    v = json_stringn_nocheck(data, len);
    if (v != NULL && json_string_value(v) != NULL) {
        /* not UTF-8: say so rather than send invalid text */
        json_t *chk = json_stringn(data, len);
        if (chk == NULL) {
            json_decref(v);
            return json_string("(binary payload, not shown)");
        }
        json_decref(chk);
    }
    return v;
}

/* --- publish_message --------------------------------------------------------- */

static int publish(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    const char *subject = json_string_value(json_object_get(args, "subject"));
    const char *type = json_string_value(json_object_get(args, "type"));
    char why[512], id[MS_ID_LEN + 1], ts[MS_TIMESTAMP_LEN + 1], tp[MS_TRACEPARENT_LEN + 1];
    ms_message *m = NULL;
    size_t len = 0;
    char *data = NULL;
    ms_bus *bus;
    ms_status s;

    if (!subject_in_scope(rq->srv, subject, why, sizeof why))
        return mcp_tool_fail(out, "%s", why);
    if (ms_subject_validate(subject) != MS_OK || strchr(subject, '*') || strchr(subject, '>'))
        return mcp_tool_fail(out, "bad subject '%s': %s (no wildcards in a published subject)",
                             subject, ms_last_error());
    bus = mcp_bus(rq->srv, err);
    if (bus == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    data = payload_text(json_object_get(args, "payload"), &len);
    ms_id_new(id);
    ms_timestamp_now(ts);
    ms_traceparent_new(tp);
    s = data != NULL ? ms_message_create(subject, data, len, &m) : MS_ERR_NO_MEMORY;
    if (s == MS_OK && (s = ms_message_set_id(m, id)) == MS_OK &&
        (s = ms_message_set_source(m, "mstack-mcp")) == MS_OK &&
        (s = ms_message_set_timestamp(m, ts)) == MS_OK &&
        (s = ms_message_set_traceparent(m, tp)) == MS_OK)
        s = ms_message_set_type_name(m, type != NULL ? type : "event");
    if (s == MS_OK)
        s = ms_bus_publish_msg(bus, m);
    if (s == MS_OK)
        s = ms_bus_flush(bus, 2000);
    {
        json_t *detail =
            json_pack("{s:s, s:s, s:I}", "subject", subject, "id", id, "bytes", (json_int_t)len);
        mcp_audit(rq, "message.publish", NULL, s == MS_OK ? "ok" : ms_last_error(), detail);
        json_decref(detail);
    }
    if (s != MS_OK)
        mcp_tool_fail(out, "publishing on %s failed: %s: %s", subject, ms_status_name(s),
                      ms_last_error());
    else
        out->structured = json_pack("{s:s, s:s, s:I, s:b}", "subject", subject, "id", id, "bytes",
                                    (json_int_t)len, "published", 1);
    ms_message_unref(m);
    free(data);
    return 0;
}

const mcp_tool mcp_tool_publish_message = {
    .name = "publish_message",
    .title = "Publish a message",
    .description = "Publishes one message (JSON payload, with id, time, trace context and "
                   "Ms-Type headers) on a NATS subject, e.g. an event a component consumes. "
                   "Fire and forget: use request to get an answer.",
    .input_schema = "{\"type\":\"object\",\"required\":[\"subject\"],\"properties\":{"
                    "\"subject\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024},"
                    "\"payload\":{\"description\":\"any JSON value (default: empty)\"},"
                    "\"type\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":128,"
                    "\"description\":\"Ms-Type header (default event)\"}},"
                    "\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"required\":[\"subject\",\"id\",\"bytes\","
                     "\"published\"],\"properties\":{\"subject\":{\"type\":\"string\"},"
                     "\"id\":{\"type\":\"string\"},\"bytes\":{\"type\":\"integer\"},"
                     "\"published\":{\"type\":\"boolean\"}}}",
    .read_only = false,
    .destructive = false,
    .idempotent = false,
    .open_world = true,
    .component_arg = false,
    .run = publish,
};

/* --- request ----------------------------------------------------------------------- */

typedef struct pending {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* the tool and the helper */
    bool done;
    ms_status status;
    char detail[512];
    ms_bus *bus;
    ms_message *msg, *reply;
    int timeout_ms;
    mcp_server *srv;
} pending;

static void pending_unref(pending *p)
{
    bool last;
    pthread_mutex_lock(&p->mu);
    last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (!last)
        return;
    ms_message_unref(p->msg);
    ms_message_unref(p->reply);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static void *request_helper(void *arg)
{
    pending *p = arg;
    ms_message *reply = NULL;
    ms_status s = ms_bus_request_msg(p->bus, p->msg, p->timeout_ms, &reply);

    pthread_mutex_lock(&p->mu);
    p->status = s;
    p->reply = reply;
    snprintf(p->detail, sizeof p->detail, "%s", s == MS_OK ? "" : ms_last_error());
    p->done = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pending_unref(p);
    return NULL;
}

static bool start_helper(pending *p)
{
    pthread_mutex_lock(&p->mu);
    p->refs++;
    pthread_mutex_unlock(&p->mu);
    if (mcp_thread_start(p->srv, request_helper, p))
        return true;
    pthread_mutex_lock(&p->mu);
    p->refs--;
    pthread_mutex_unlock(&p->mu);
    return false;
}

static int request(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    const char *subject = json_string_value(json_object_get(args, "subject"));
    json_int_t timeout = json_integer_value(json_object_get(args, "timeout_ms"));
    char why[512], id[MS_ID_LEN + 1], tp[MS_TRACEPARENT_LEN + 1];
    pending *p = NULL;
    size_t len = 0;
    char *data = NULL;
    double start;
    ms_bus *bus;
    ms_status s;
    int rc = 0;

    if (timeout <= 0)
        timeout = 5000;
    if (!subject_in_scope(rq->srv, subject, why, sizeof why))
        return mcp_tool_fail(out, "%s", why);
    if (ms_subject_validate(subject) != MS_OK || strchr(subject, '*') || strchr(subject, '>'))
        return mcp_tool_fail(out, "bad subject '%s': %s (no wildcards in a request subject)",
                             subject, ms_last_error());
    bus = mcp_bus(rq->srv, err);
    if (bus == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    p = calloc(1, sizeof *p);
    data = payload_text(json_object_get(args, "payload"), &len);
    if (p == NULL || data == NULL || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        free(data);
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    }
    if (monotonic_cond(&p->cv) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        free(data);
        return mcp_fail(err, MCP_INTERNAL_ERROR, "cannot create a condition variable");
    }
    p->refs = 1;
    p->bus = bus;
    p->srv = rq->srv;
    p->timeout_ms = (int)timeout;
    ms_id_new(id);
    ms_traceparent_new(tp);
    s = ms_message_create(subject, data, len, &p->msg);
    if (s == MS_OK && (s = ms_message_set_id(p->msg, id)) == MS_OK &&
        (s = ms_message_set_source(p->msg, "mstack-mcp")) == MS_OK &&
        (s = ms_message_set_traceparent(p->msg, tp)) == MS_OK)
        s = ms_message_set_type(p->msg, MS_MSG_REQUEST);
    if (s != MS_OK) {
        mcp_tool_fail(out, "cannot build the request: %s", ms_last_error());
        goto cleanup;
    }
    {
        json_t *detail =
            json_pack("{s:s, s:s, s:I}", "subject", subject, "id", id, "bytes", (json_int_t)len);
        mcp_audit(rq, "message.request", NULL, "sent", detail);
        json_decref(detail);
    }
    start = now_ms();
    if (!start_helper(p)) {
        mcp_tool_fail(out, "cannot start the request (the server is stopping?)");
        goto cleanup;
    }
    pthread_mutex_lock(&p->mu);
    while (!p->done && !mcp_cancelled(rq)) {
        struct timespec dl;
        double elapsed;
        deadline_in(&dl, SLICE_MS);
        (void)pthread_cond_timedwait(&p->cv, &p->mu, &dl);
        if (p->done)
            break;
        pthread_mutex_unlock(&p->mu);
        elapsed = now_ms() - start;
        {
            char note[128];
            snprintf(note, sizeof note, "waiting for a reply on %s", subject);
            mcp_progress(rq, elapsed < (double)timeout ? elapsed : (double)timeout, (double)timeout,
                         note);
        }
        pthread_mutex_lock(&p->mu);
    }
    if (!p->done) {
        pthread_mutex_unlock(&p->mu);
        mcp_log(rq->srv, rq, MCP_LOG_INFO, "request on %s cancelled", subject);
        mcp_tool_fail(out, "cancelled");
        goto cleanup;
    }
    s = p->status;
    pthread_mutex_unlock(&p->mu);
    if (s == MS_ERR_TIMEOUT) {
        mcp_tool_fail(out,
                      "no reply on %s within %lld ms: the component may be busy or stuck "
                      "(check the health tool), or call again with a larger timeout_ms",
                      subject, (long long)timeout);
    } else if (s == MS_ERR_NO_RESPONDERS) {
        mcp_tool_fail(out,
                      "no responders on %s: nothing subscribes to it. Is the component "
                      "running? (the services tool lists what runs and what it serves)",
                      subject);
    } else if (s != MS_OK) {
        mcp_tool_fail(out, "request on %s failed: %s: %s", subject, ms_status_name(s), p->detail);
    } else if (ms_message_header(p->reply, "Nats-Service-Error") != NULL) {
        const char *code = ms_message_header(p->reply, "Nats-Service-Error-Code");
        mcp_tool_fail(out, "%s answered with error %s: %s", subject, code != NULL ? code : "?",
                      ms_message_header(p->reply, "Nats-Service-Error"));
    } else {
        bool truncated = false;
        json_t *reply = reply_value(p->reply, &truncated);
        out->structured = json_pack("{s:s, s:o, s:I, s:b, s:f}", "subject", subject, "reply",
                                    reply != NULL ? reply : json_null(), "reply_bytes",
                                    (json_int_t)ms_message_len(p->reply), "truncated", truncated,
                                    "elapsed_ms", now_ms() - start);
        if (truncated)
            json_object_set_new(out->structured, "note",
                                json_string("the reply is longer than 256 KiB: only its "
                                            "beginning is shown, as text"));
    }
cleanup:
    free(data);
    pending_unref(p);
    return rc;
}

const mcp_tool mcp_tool_request = {
    .name = "request",
    .title = "Send a request",
    .description =
        "Sends a request (JSON payload) on a subject and returns the reply, e.g. "
        "component.user-service.get with {\"id\": ...}. Errors a component answers with "
        "(Nats-Service-Error) come back as a tool error with their code. Sends progress while "
        "it waits when the call has a progressToken; cancellable. The request may change "
        "state in the component it reaches.",
    .input_schema = "{\"type\":\"object\",\"required\":[\"subject\"],\"properties\":{"
                    "\"subject\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":1024},"
                    "\"payload\":{\"description\":\"any JSON value (default: empty)\"},"
                    "\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":600000,"
                    "\"description\":\"how long to wait for the reply (default 5000)\"}},"
                    "\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"required\":[\"subject\",\"reply\",\"reply_bytes\","
                     "\"truncated\",\"elapsed_ms\"],\"properties\":{\"subject\":{\"type\":"
                     "\"string\"},\"reply\":{},\"reply_bytes\":{\"type\":\"integer\"},"
                     "\"truncated\":{\"type\":\"boolean\"},\"elapsed_ms\":{\"type\":"
                     "\"number\"},\"note\":{\"type\":\"string\"}}}",
    .read_only = false,
    .destructive = true,
    .idempotent = false,
    .open_world = true,
    .component_arg = false,
    .run = request,
};

/* --- fan-out: health and services ------------------------------------------------- */

typedef struct gather {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    json_t *answers; /* JSON payloads of the replies */
    size_t max;
} gather;

static void on_answer(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    gather *g = closure;
    json_t *v = NULL;
    (void)bus;
    (void)sub;
    if (ms_message_header(msg, "Nats-Service-Error") != NULL || ms_message_json(msg, &v) != MS_OK)
        return;
    pthread_mutex_lock(&g->mu);
    json_array_append_new(g->answers, v);
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Ask subjects with one inbox; collect JSON answers for timeout_ms, until max
 * arrived, or until cancelled. Returns the answers or NULL (out filled). */
static json_t *fan_out(mcp_request *rq, const char *const *subjects, size_t n, long timeout_ms,
                       size_t max, mcp_tool_out *out, mcp_error *err)
{
    ms_bus *bus = mcp_bus(rq->srv, err);
    ms_subscription *sub = NULL;
    char *inbox = NULL;
    json_t *answers = NULL;
    gather g;
    ms_status s;
    double end;

    if (bus == NULL) {
        mcp_tool_fail(out, "%s", err->message);
        return NULL;
    }
    memset(&g, 0, sizeof g);
    g.max = max;
    g.answers = json_array();
    if (g.answers == NULL || pthread_mutex_init(&g.mu, NULL) != 0) {
        json_decref(g.answers);
        mcp_tool_fail(out, "out of memory");
        return NULL;
    }
    if (monotonic_cond(&g.cv) != 0) {
        pthread_mutex_destroy(&g.mu);
        json_decref(g.answers);
        mcp_tool_fail(out, "cannot create a condition variable");
        return NULL;
    }
    s = ms_bus_new_inbox(bus, &inbox);
    if (s == MS_OK)
        s = ms_bus_subscribe(bus, inbox, NULL, on_answer, &g, &sub);
    for (size_t i = 0; s == MS_OK && i < n; i++)
        s = ms_bus_publish_reply(bus, subjects[i], inbox, NULL, 0);
    if (s != MS_OK) {
        mcp_tool_fail(out, "asking %s failed: %s: %s", subjects[0], ms_status_name(s),
                      ms_last_error());
        goto cleanup;
    }
    end = now_ms() + (double)timeout_ms;
    pthread_mutex_lock(&g.mu);
    while (!mcp_cancelled(rq) && (max == 0 || json_array_size(g.answers) < max)) {
        struct timespec dl;
        double left = end - now_ms();
        if (left <= 0)
            break;
        deadline_in(&dl, left < SLICE_MS ? (long)left + 1 : SLICE_MS);
        (void)pthread_cond_timedwait(&g.cv, &g.mu, &dl);
    }
    pthread_mutex_unlock(&g.mu);
cleanup:
    (void)ms_subscription_unsubscribe(sub); /* the handler is done after this */
    free(inbox);
    if (!out->failed)
        answers = json_incref(g.answers);
    json_decref(g.answers);
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    return answers;
}

static int health(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    const char *component = mcp_tool_component(rq, args);
    json_int_t timeout = json_integer_value(json_object_get(args, "timeout_ms"));
    char subject[160];
    const char *subjects[1] = {subject};
    json_t *answers, *list = json_array(), *a;
    size_t i, unhealthy = 0;

    if (timeout <= 0)
        timeout = 1000;
    if (component != NULL)
        snprintf(subject, sizeof subject, "mainstack.health.%s.get", component);
    else
        snprintf(subject, sizeof subject, "mainstack.health");
    answers = fan_out(rq, subjects, 1, (long)timeout, 0, out, err);
    if (answers == NULL) {
        json_decref(list);
        return 0;
    }
    json_array_foreach(answers, i, a)
    {
        json_t *inst = json_object_get(a, "instances");
        size_t k;
        json_t *x;
        if (json_is_array(inst)) {
            json_array_foreach(inst, k, x) if (json_is_object(x)) json_array_append(list, x);
        } else if (json_is_object(a)) {
            json_array_append(list, a);
        }
    }
    json_decref(answers);
    json_array_foreach(list, i, a)
    {
        const char *st = json_string_value(json_object_get(a, "state"));
        const char *hs = json_string_value(json_object_get(a, "status"));
        if (st == NULL || strcmp(st, "running") != 0 || hs == NULL ||
            (strcmp(hs, "healthy") != 0 && strcmp(hs, "degraded") != 0))
            unhealthy++;
    }
    out->structured =
        json_pack("{s:s, s:o, s:I, s:I}", "asked", subject, "instances", list, "count",
                  (json_int_t)json_array_size(list), "unhealthy", (json_int_t)unhealthy);
    if (json_array_size(list) == 0)
        json_object_set_new(out->structured, "note",
                            json_string("nobody answered: no mainstack host runs this (start "
                                        "one with mstack run --nats URL COMPONENT)"));
    return 0;
}

const mcp_tool mcp_tool_health = {
    .name = "health",
    .title = "Health of running instances",
    .description = "Asks every mainstack host (or every instance of one component) for its "
                   "health and returns one entry per instance: component, instance, version, "
                   "state, status, restarts, detail. Counts the unhealthy ones.",
    .input_schema = "{\"type\":\"object\",\"properties\":{\"component\":{\"type\":\"string\","
                    "\"minLength\":1,\"maxLength\":64},\"timeout_ms\":{\"type\":\"integer\","
                    "\"minimum\":1,\"maximum\":30000,\"description\":\"how long to collect "
                    "answers (default 1000)\"}},\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"required\":[\"asked\",\"instances\",\"count\","
                     "\"unhealthy\"],\"properties\":{\"asked\":{\"type\":\"string\"},"
                     "\"instances\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}},"
                     "\"count\":{\"type\":\"integer\"},\"unhealthy\":{\"type\":\"integer\"},"
                     "\"note\":{\"type\":\"string\"}}}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = true,
    .component_arg = true,
    .run = health,
};

static int services(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    const char *name = mcp_tool_component(rq, args);
    json_int_t timeout = json_integer_value(json_object_get(args, "timeout_ms"));
    char subject[160];
    const char *subjects[1] = {subject};
    json_t *answers, *list = json_array(), *a;
    size_t i;

    if (timeout <= 0)
        timeout = 1000;
    if (name != NULL)
        snprintf(subject, sizeof subject, "$SRV.INFO.%s", name);
    else
        snprintf(subject, sizeof subject, "$SRV.INFO");
    answers = fan_out(rq, subjects, 1, (long)timeout, 0, out, err);
    if (answers == NULL) {
        json_decref(list);
        return 0;
    }
    json_array_foreach(answers, i, a)
    {
        const char *type = json_string_value(json_object_get(a, "type"));
        if (type != NULL && strcmp(type, "io.nats.micro.v1.info_response") == 0)
            json_array_append(list, a);
    }
    json_decref(answers);
    out->structured = json_pack("{s:s, s:o, s:I}", "asked", subject, "services", list, "count",
                                (json_int_t)json_array_size(list));
    return 0;
}

const mcp_tool mcp_tool_services = {
    .name = "services",
    .title = "Discover services",
    .description = "NATS service discovery ($SRV.INFO): every running service instance "
                   "(mainstack components and any other NATS micro service) with its name, "
                   "id, version, description, metadata and endpoints (subjects).",
    .input_schema = "{\"type\":\"object\",\"properties\":{\"component\":{\"type\":\"string\","
                    "\"minLength\":1,\"maxLength\":64,\"description\":\"only this service "
                    "name\"},\"timeout_ms\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":"
                    "30000,\"description\":\"how long to collect answers (default 1000)\"}},"
                    "\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"required\":[\"asked\",\"services\",\"count\"],"
                     "\"properties\":{\"asked\":{\"type\":\"string\"},\"services\":{\"type\":"
                     "\"array\",\"items\":{\"type\":\"object\"}},\"count\":{\"type\":"
                     "\"integer\"}}}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = true,
    .component_arg = true,
    .run = services,
};
