/*
 * ctx.c - ms_component_ctx: all a component may touch of the framework.
 *
 * A context belongs to one instance and lives as long as it does; every
 * function here is safe from any of the instance's calls (handlers run on
 * workers, so publish and request simply use the runtime's bus, which is
 * thread-safe). The config pointer handed out is the instance's current
 * one, replaced only by a config change, which runs on the instance's
 * mailbox and therefore never while the instance is inside another call.
 */
#include <stdarg.h>
#include <stdio.h>

#include "core/error.h"
#include "mainstack/log.h"
#include "runtime/runtime_internal.h"

const char *ms_ctx_component(const ms_component_ctx *ctx)
{
    return ctx == NULL ? NULL : ctx->inst->ops->metadata.name;
}

const char *ms_ctx_instance_id(const ms_component_ctx *ctx)
{
    return ctx == NULL ? NULL : ctx->inst->id;
}

const json_t *ms_ctx_config(const ms_component_ctx *ctx)
{
    const json_t *c;
    if (ctx == NULL)
        return NULL;
    pthread_mutex_lock(&ctx->inst->mu);
    c = ctx->inst->config;
    pthread_mutex_unlock(&ctx->inst->mu);
    return c;
}

const char *ms_ctx_data_dir(const ms_component_ctx *ctx)
{
    return ctx == NULL ? NULL : ctx->inst->data_dir;
}

ms_status ms_ctx_publish(ms_component_ctx *ctx, const char *subject, const void *data, size_t len)
{
    if (ctx == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_ctx_publish: ctx is NULL");
    return ms_bus_publish(ctx->inst->rt->bus, subject, data, len);
}

/* Set the source to this component when the message has none and is still
 * writable (a shared message is sent as it is). */
static void fill_source(ms_component_ctx *ctx, ms_message *msg)
{
    if (ms_message_source(msg) == NULL)
        (void)ms_message_set_source(msg, ctx->inst->ops->metadata.name);
}

ms_status ms_ctx_publish_msg(ms_component_ctx *ctx, ms_message *msg)
{
    if (ctx == NULL || msg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_ctx_publish_msg: ctx and msg are required");
    fill_source(ctx, msg);
    return ms_bus_publish_msg(ctx->inst->rt->bus, msg);
}

/* A request from a handler running inline on a bus delivery thread could
 * wait for a reply that thread itself has to deliver: refused. */
static ms_status refuse_inline_request(const ms_component_ctx *ctx, const char *subject)
{
    return ms__err(MS_ERR_STATE,
                   "ms_ctx_request to %s: component %s is MS_COMPONENT_INLINE, whose handlers "
                   "must not make requests (drop the flag to request from a handler)",
                   subject != NULL ? subject : "(null)", ctx->inst->ops->metadata.name);
}

ms_status ms_ctx_request(ms_component_ctx *ctx, const char *subject, const void *data, size_t len,
                         int timeout_ms, ms_message **reply)
{
    if (ctx == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_ctx_request: ctx is NULL");
    if (ms__mailbox_current_is_inline())
        return refuse_inline_request(ctx, subject);
    return ms_bus_request(ctx->inst->rt->bus, subject, data, len, timeout_ms, reply);
}

ms_status ms_ctx_request_msg(ms_component_ctx *ctx, ms_message *msg, int timeout_ms,
                             ms_message **reply)
{
    if (ctx == NULL || msg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_ctx_request_msg: ctx and msg are required");
    if (ms__mailbox_current_is_inline())
        return refuse_inline_request(ctx, ms_message_subject(msg));
    fill_source(ctx, msg);
    return ms_bus_request_msg(ctx->inst->rt->bus, msg, timeout_ms, reply);
}

void ms_ctx_stop(ms_component_ctx *ctx)
{
    if (ctx != NULL)
        atomic_store(&ctx->inst->stop_requested, true);
}

ms_status ms_ctx_error(ms_component_ctx *ctx, ms_status status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    (void)ctx;
    if (fmt == NULL)
        return ms__err(status, "%s", ms_status_name(status));
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ms__err(status, "%s", msg);
}

void ms_ctx_log(ms_component_ctx *ctx, ms_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (ctx == NULL || fmt == NULL || !ms_log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ms_log_kv(level, ctx->inst->ops->metadata.name, msg, "instance", ctx->inst->id, NULL);
}
