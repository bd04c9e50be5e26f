/*
 * unhealthy.c - a component that serves but always reports unhealthy: the
 * supervisor must restart it after N checks in a row, and give up past the
 * restart intensity.
 */
#include <stdlib.h>

#include "mainstack/component.h"

static void *unhealthy_create(void)
{
    return calloc(1, 1);
}

static void unhealthy_destroy(void *self)
{
    free(self);
}

static ms_status unhealthy_initialize(void *self, ms_component_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return MS_OK;
}

static ms_status unhealthy_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    (void)in;
    (void)reply;
    return MS_OK;
}

static ms_health unhealthy_check(void *self)
{
    ms_health h = {MS_HEALTH_UNHEALTHY, "always unhealthy (test plugin)"};
    (void)self;
    return h;
}

static const ms_component_ops unhealthy_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"unhealthy", "0.1.0", "reports unhealthy on every check"},
    .create = unhealthy_create,
    .destroy = unhealthy_destroy,
    .initialize = unhealthy_initialize,
    .handle_message = unhealthy_handle,
    .health_check = unhealthy_check,
};

MS_COMPONENT_EXPORT(unhealthy_ops)
