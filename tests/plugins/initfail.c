/*
 * initfail.c - a component whose initialize always fails (as one that
 * cannot open its database would): the runtime must restart it under the
 * restart intensity, then give up and escalate.
 */
#include <stdlib.h>

#include "mainstack/component.h"

static void *initfail_create(void)
{
    return calloc(1, 1);
}

static void initfail_destroy(void *self)
{
    free(self);
}

static ms_status initfail_initialize(void *self, ms_component_ctx *ctx)
{
    (void)self;
    ms_ctx_log(ctx, MS_LOG_DEBUG, "initfail: refusing to start");
    return MS_ERR_IO;
}

static ms_status initfail_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    (void)in;
    (void)reply;
    return MS_OK;
}

static const ms_topic initfail_topics[] = {{"component.initfail.op", 0}, {NULL, 0}};

static const ms_component_ops initfail_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"initfail", "0.1.0", "its initialize always fails"},
    .create = initfail_create,
    .destroy = initfail_destroy,
    .initialize = initfail_initialize,
    .topics = initfail_topics,
    .handle_message = initfail_handle,
};

MS_COMPONENT_EXPORT(initfail_ops)
