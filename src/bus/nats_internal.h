/*
 * nats_internal.h - what nats_transport.c lends to the other NATS files of
 * the bus (nats_stream.c, JetStream) (internal).
 */
#ifndef MS_BUS_NATS_INTERNAL_H
#define MS_BUS_NATS_INTERNAL_H

#include <nats/nats.h>

#include "bus/transport.h"

/* The bus's main (buffered) connection; NULL when bus is not on NATS. */
natsConnection *ms__nats_connection(ms_bus *bus);
/* A natsMsg carrying msg's metadata as headers, with subject and data.
 * *out is the caller's (natsMsg_Destroy). */
ms_status ms__nats_make_msg(const char *subject, const void *data, size_t len,
                            const ms_message *msg, natsMsg **out);
/* Wrap a received natsMsg (taken) into a frozen ms_message. */
ms_status ms__nats_wrap_msg(natsMsg *nm, ms_message **out);
/* Record "<what>: <libnats status text> (<libnats detail>)"; returns the
 * mapped status. */
ms_status ms__nats_fail(natsStatus ns, const char *what);

#endif
