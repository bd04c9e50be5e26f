/*
 * badabi.c - a component built for another ABI version (999): the loader
 * must refuse it naming both versions, before reading anything else.
 */
#include <stddef.h>

#include "mainstack/component.h"

static const ms_component_ops badabi_ops = {
    .abi_version = 999,
    .metadata = {"badabi", "1.0.0", "claims an ABI from the future"},
};

MS_COMPONENT_EXPORT(badabi_ops)
