/*
 * failing.c - a component whose handler fails every time (MS_ERR_INTERNAL):
 * each request must get an error reply with the Nats-Service-Error headers,
 * each failure must count in the stats, and the host must stay up.
 */
#include <stdlib.h>

#include "mainstack/component.h"

static void *failing_create(void)
{
    return calloc(1, 1);
}

static void failing_destroy(void *self)
{
    free(self);
}

static ms_status failing_initialize(void *self, ms_component_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return MS_OK;
}

static ms_status failing_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    (void)in;
    (void)reply;
    return MS_ERR_INTERNAL;
}

static const ms_topic failing_topics[] = {{"component.failing.op", 0}, {NULL, 0}};

static const ms_component_ops failing_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"failing", "0.1.0", "its handler fails every time"},
    .create = failing_create,
    .destroy = failing_destroy,
    .initialize = failing_initialize,
    .topics = failing_topics,
    .handle_message = failing_handle,
};

MS_COMPONENT_EXPORT(failing_ops)
