/*
 * echo.c - a good test component, built as a plugin: it answers requests on
 * component.echo.echo with their own payload, counts what it got on the
 * fan-out topic component.echo.ping, and reports healthy. Used by the loader
 * and runtime tests to check that a well-formed plugin loads and serves.
 */
#include <stdlib.h>
#include <string.h>

#include "mainstack/component.h"

typedef struct echo {
    ms_component_ctx *ctx;
    unsigned long pings;
} echo;

static void *echo_create(void)
{
    return calloc(1, sizeof(echo));
}

static void echo_destroy(void *self)
{
    free(self);
}

static ms_status echo_initialize(void *self, ms_component_ctx *ctx)
{
    ((echo *)self)->ctx = ctx;
    ms_ctx_log(ctx, MS_LOG_DEBUG, "echo initialized");
    return MS_OK;
}

static ms_status echo_handle(void *self, const ms_message *in, ms_message **reply)
{
    echo *e = self;
    const char *rs = ms_message_reply(in);
    if (strcmp(ms_message_subject(in), "component.echo.ping") == 0) {
        e->pings++;
        return MS_OK;
    }
    if (rs == NULL)
        return MS_OK;
    return ms_message_create(rs, ms_message_data(in), ms_message_len(in), reply);
}

static ms_health echo_health(void *self)
{
    ms_health h = {MS_HEALTH_HEALTHY, ""};
    (void)self;
    return h;
}

static const ms_topic echo_topics[] = {
    {"component.echo.echo", 0},
    {"component.echo.ping", MS_TOPIC_FANOUT},
    {NULL, 0},
};

static const ms_component_ops echo_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"echo", "1.2.3", "answers each request with its own payload"},
    .create = echo_create,
    .destroy = echo_destroy,
    .initialize = echo_initialize,
    .topics = echo_topics,
    .handle_message = echo_handle,
    .health_check = echo_health,
};

MS_COMPONENT_EXPORT(echo_ops)
