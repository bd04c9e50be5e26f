/*
 * badmeta.c - a component whose metadata is invalid: the version is not
 * semver ("1.0"). The loader must refuse it naming the file and the field.
 */
#include <stdlib.h>

#include "mainstack/component.h"

static void *badmeta_create(void)
{
    return calloc(1, 1);
}

static void badmeta_destroy(void *self)
{
    free(self);
}

static ms_status badmeta_initialize(void *self, ms_component_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return MS_OK;
}

static ms_status badmeta_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    (void)in;
    (void)reply;
    return MS_OK;
}

static const ms_component_ops badmeta_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"badmeta", "1.0", "version is not semver"},
    .create = badmeta_create,
    .destroy = badmeta_destroy,
    .initialize = badmeta_initialize,
    .handle_message = badmeta_handle,
};

MS_COMPONENT_EXPORT(badmeta_ops)
