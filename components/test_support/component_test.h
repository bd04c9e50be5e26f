/*
 * component_test.h - hosting the real component plugins in a test.
 *
 * ct_host_start gives a runtime on the chosen transport (in-process, or a
 * real nats-server started for the test on a free loopback port), with its
 * own temporary data root, the built plugins on its component path, and a
 * separate client connection on the same bus, as another process would
 * have. ct_host_stop tears everything down and removes the temporary files.
 * Failures fail the current cmocka test with ms_last_error().
 */
#ifndef MS_COMPONENT_TEST_H
#define MS_COMPONENT_TEST_H

#include <stdbool.h>

#include <jansson.h>

#include "mainstack/mainstack.h"
#include "mainstack/runtime.h"
#include "ms_test.h"

typedef enum ct_transport { CT_INPROC, CT_NATS } ct_transport;

typedef struct ct_host {
    ct_transport transport;
    struct ms_nats_server *server; /* CT_NATS only */
    char url[128];
    char root[256];        /* temporary directory: data/, config.json */
    char data_root[300];   /* root/data: <data_root>/<component>/ */
    char config_path[300]; /* root/config.json */
    ms_runtime *rt;
    ms_bus *client; /* the test's own connection */
} ct_host;

/* Start a host; config (JSON text of {"<component>": {...}}, may be NULL)
 * is written to the config file the runtime reads. */
ct_host *ct_host_start(ct_transport t, const char *config);
/* Load a built component by name (as mstack run would) and wait until it
 * serves. Returns the instance (owned by the runtime). */
ms_instance *ct_load(ct_host *h, const char *component);
/* Stop the instance normally and load a fresh one (same data directory). */
ms_instance *ct_reload(ct_host *h, ms_instance *inst, const char *component);
void ct_host_stop(ct_host *h);
/* cmocka teardown: stops the host a failed test left running (a failing
 * assertion jumps past its ct_host_stop) and removes its files. */
int ct_teardown(void **state);

/* Path of a file in a component's data directory, written into out. */
void ct_data_path(const ct_host *h, const char *component, const char *file, char *out,
                  size_t size);

/* Request subject with JSON text (NULL: empty payload) from the client
 * connection; fails the test when no reply comes. The reply is the
 * caller's (unref). */
ms_message *ct_request(ct_host *h, const char *subject, const char *json);
/* A reply that must be a success: its payload parsed (new reference). */
json_t *ct_request_ok(ct_host *h, const char *subject, const char *json);
/* A reply that must be an error: the Nats-Service-Error-Code and the
 * Nats-Service-Error text (copied into detail). Returns the code. */
int ct_request_error(ct_host *h, const char *subject, const char *json, char *detail, size_t size);

/* Collects the messages of one subscription of the client connection. */
typedef struct ct_sink ct_sink;
ct_sink *ct_sink_start(ct_host *h, const char *pattern);
/* Wait until at least n messages arrived (false on timeout). */
bool ct_sink_wait(ct_sink *s, size_t n, int timeout_ms);
size_t ct_sink_count(ct_sink *s);
/* The i-th message (a new reference the caller unrefs). */
ms_message *ct_sink_get(ct_sink *s, size_t i);
void ct_sink_stop(ct_sink *s);

/* Lines of a file (-1 when it cannot be read); wait for at least n. */
int ct_file_lines(const char *path);
bool ct_wait_lines(const char *path, int n, int timeout_ms);
/* The i-th line of a JSON-lines file parsed (NULL if absent). */
json_t *ct_file_line_json(const char *path, int i);

#endif
