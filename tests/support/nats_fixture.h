/*
 * nats_fixture.h - a real nats-server for tests and benchmarks.
 *
 * Starts nats-server on a free loopback port with its own temporary
 * directory, waits until it accepts connections, and kills it at the end,
 * even when the test fails or crashes (the child dies with its parent).
 * No cmocka dependency: benchmarks use it too.
 *
 * Start servers from a thread that lives as long as they should (the main
 * thread, typically): the kernel kills the child when the thread that forked
 * it exits (PR_SET_PDEATHSIG). Failures leave a detail in ms_last_error(),
 * with the tail of the server's log when the server itself failed.
 */
#ifndef MS_NATS_FIXTURE_H
#define MS_NATS_FIXTURE_H

#include "mainstack/status.h"

typedef struct ms_nats_server ms_nats_server;

typedef struct ms_nats_server_opts {
    long max_payload; /* 0: server default (1 MiB) */
    const char *user; /* with password: require user/password */
    const char *password;
    const char *token; /* require this token */
    int jetstream;     /* enable JetStream with a store in the temp dir */
} ms_nats_server_opts;

/* opts may be NULL. *out is freed with ms_nats_server_stop. */
ms_status ms_nats_server_start(const ms_nats_server_opts *opts, ms_nats_server **out);
/* "nats://127.0.0.1:<port>" (borrowed). */
const char *ms_nats_server_url(const ms_nats_server *s);
int ms_nats_server_port(const ms_nats_server *s);
/* The server's temporary directory (config nats.conf, log nats.log, the
 * JetStream store); removed by ms_nats_server_stop. Borrowed. */
const char *ms_nats_server_dir(const ms_nats_server *s);
/* Kill the server process (SIGKILL) but keep the fixture for restart. */
ms_status ms_nats_server_kill(ms_nats_server *s);
/* Start it again on the same port, with the same options. */
ms_status ms_nats_server_restart(ms_nats_server *s);
/* Kill the server, remove its temp dir, free. NULL-safe. */
void ms_nats_server_stop(ms_nats_server *s);

#endif
