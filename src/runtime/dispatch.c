/*
 * dispatch.c - the path of a message from the bus to handle_message and of
 * its answer back.
 *
 * The bus handler (a delivery thread) only queues the message on the
 * instance's mailbox (an MS_COMPONENT_INLINE component's message it runs
 * itself when the instance is idle); a full mailbox makes it wait up to
 * mailbox_full_timeout_ms, after which the message is refused: a request
 * gets a 503 error reply, an event is counted as dropped and logged. On a
 * worker, handle_message runs; its reply goes to the request's reply
 * subject, or, when it fails, an error reply with the NATS Services headers
 * (Nats-Service-Error, Nats-Service-Error-Code). Every outcome is counted in
 * the endpoint's stats before the answer is sent, so a client that got its
 * answer sees it counted. Server-side failures in a row lead to a restart.
 */
#include <stdio.h>
#include <string.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

#define MOD "runtime"

typedef struct delivery {
    ms__endpoint *ep;
    ms_message *msg; /* a reference of our own */
} delivery;

/* An endpoint's last_error is "<code>:<description>", the form nats.go's
 * micro records (the code and text of the error reply's Nats-Service-Error-Code
 * and Nats-Service-Error headers); the instance's is the text alone. */
static void set_endpoint_error(ms__endpoint *ep, int code, const char *text)
{
    snprintf(ep->last_error, sizeof ep->last_error, "%d:%s", code, text);
}

static void count_error(ms__endpoint *ep, const ms_message *msg, int code, const char *text)
{
    ms_instance *inst = ep->inst;
    pthread_mutex_lock(&inst->mu);
    ep->num_requests++;
    ep->num_errors++;
    set_endpoint_error(ep, code, text);
    snprintf(inst->last_error, sizeof inst->last_error, "%s", text);
    if (ms_message_reply(msg) == NULL)
        inst->dropped++;
    pthread_mutex_unlock(&inst->mu);
}

/* A message the instance will not handle: answer a request with an error,
 * count it, say so in the log. Never silent. */
static void refuse(ms__endpoint *ep, const ms_message *msg, ms_status st, const char *why)
{
    ms_instance *inst = ep->inst;
    char text[MS__ERRTEXT_MAX];
    snprintf(text, sizeof text, "%s instance %s: %s", inst->ops->metadata.name, inst->id, why);
    count_error(ep, msg, ms__status_http_code(st), text);
    ms_log_kv(MS_LOG_WARN, MOD, ms_message_reply(msg) != NULL ? "request refused" : "event dropped",
              "subject", ms_message_subject(msg), "reason", text, NULL);
    ms__respond_error(inst->rt, msg, st, text);
}

static void deliver_task(void *arg)
{
    delivery *d = arg;
    ms__endpoint *ep = d->ep;
    ms_instance *inst = ep->inst;
    ms_runtime *rt = inst->rt;
    const ms_message *msg = d->msg;
    ms_message *reply = NULL;
    char text[MS__ERRTEXT_MAX];
    int64_t t0, dt;
    ms_status st, s;
    bool has_reply = ms_message_reply(msg) != NULL;

    if (!inst->initialized) {
        refuse(ep, msg, MS_ERR_CLOSED, "not running (stopped or restarting)");
        goto done;
    }
    ms_clear_error();
    t0 = ms__mono_ns();
    st = inst->ops->handle_message(inst->self, msg, &reply);
    dt = ms__mono_ns() - t0;

    if (st == MS_OK) {
        pthread_mutex_lock(&inst->mu);
        ep->num_requests++;
        ep->processing_ns += (uint64_t)dt;
        inst->consecutive_failures = 0;
        pthread_mutex_unlock(&inst->mu);
        if (has_reply) {
            /* An unanswered request gets an empty reply: nobody waits for
             * nothing. */
            s = reply != NULL ? ms_bus_respond_msg(rt->bus, msg, reply)
                              : ms_bus_respond(rt->bus, msg, NULL, 0);
            if (s != MS_OK)
                ms_log_kv(MS_LOG_WARN, MOD, "reply failed", "component", inst->ops->metadata.name,
                          "subject", ms_message_subject(msg), "error", ms_last_error(), NULL);
        }
    } else {
        int code = ms__status_http_code(st);
        bool restart = false;
        snprintf(text, sizeof text, "%s",
                 ms_last_error()[0] != '\0' ? ms_last_error() : ms_status_name(st));
        ms_message_unref(reply);
        reply = NULL;
        pthread_mutex_lock(&inst->mu);
        ep->num_requests++;
        ep->num_errors++;
        ep->processing_ns += (uint64_t)dt;
        set_endpoint_error(ep, code, text);
        snprintf(inst->last_error, sizeof inst->last_error, "%s", text);
        if (code >= 500) {
            inst->consecutive_failures++;
            if (inst->consecutive_failures >= (uint32_t)rt->opts.failure_threshold &&
                !inst->stop_pending) {
                char reason[MS__ERRTEXT_MAX];
                snprintf(reason, sizeof reason, "handler failed %u times in a row; last: %.180s",
                         inst->consecutive_failures, text);
                ms__instance_request_stop_locked(inst, true, reason);
                restart = true;
            }
        }
        pthread_mutex_unlock(&inst->mu);
        ms_log_kv(code >= 500 ? MS_LOG_WARN : MS_LOG_DEBUG, MOD, "handler failed", "component",
                  inst->ops->metadata.name, "instance", inst->id, "subject",
                  ms_message_subject(msg), "status", ms_status_name(st), "error", text,
                  restart ? "action" : NULL, "restart", NULL);
        ms__respond_error(rt, msg, st, text);
    }
    ms_message_unref(reply);
    ms__instance_after_call(inst);
done:
    ms_message_unref(d->msg);
    ms__free(d);
}

static void deliver_drop(void *arg)
{
    delivery *d = arg;
    refuse(d->ep, d->msg, MS_ERR_CLOSED, "stopped before this message was handled");
    ms_message_unref(d->msg);
    ms__free(d);
}

void ms__on_topic_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ms__route *route = closure;
    ms__endpoint *ep;
    ms_instance *inst;
    delivery *d;
    ms_status s;

    (void)bus;
    (void)sub;
    /* Held until the message is in a mailbox (or refused): a swap that
     * repoints the route waits for it, so each message reaches exactly one
     * version (swap.c). */
    pthread_mutex_lock(&route->mu);
    ep = route->ep;
    inst = ep->inst;
    d = ms__malloc(sizeof *d);
    if (d == NULL) {
        refuse(ep, msg, MS_ERR_NO_MEMORY, "out of memory queueing the message");
        goto done;
    }
    d->ep = ep;
    d->msg = ms_message_ref((ms_message *)msg);
    /* An inline component's message runs here when the instance is idle:
     * no worker wake-up (MS_COMPONENT_INLINE). */
    if ((inst->ops->flags & MS_COMPONENT_INLINE) != 0 &&
        ms__mailbox_try_run_inline(inst->mb, deliver_task, d))
        goto done;
    s = ms__mailbox_post(inst->mb, deliver_task, deliver_drop, d, 0,
                         inst->rt->opts.mailbox_full_timeout_ms);
    if (s != MS_OK) {
        char why[200];
        snprintf(why, sizeof why, "%.190s", ms_last_error());
        refuse(ep, msg, s == MS_ERR_FULL ? MS_ERR_FULL : MS_ERR_CLOSED, why);
        ms_message_unref(d->msg);
        ms__free(d);
    }
done:
    pthread_mutex_unlock(&route->mu);
}
