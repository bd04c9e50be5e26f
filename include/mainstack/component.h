/*
 * component.h - the component ABI: the vtable a component implements.
 *
 * A component is one concern, built as a shared object exporting exactly one
 * symbol, mainstack_component(), which returns its ops (MS_COMPONENT_EXPORT
 * writes it). The runtime dlopens it, checks abi_version, validates the
 * metadata and hosts instances of it. The same ops can be linked statically
 * into a test or a host and registered with ms_runtime_add() (runtime.h).
 *
 * Lifecycle of one instance: create -> initialize(ctx) -> (messages, config
 * changes, health checks) -> shutdown -> destroy. shutdown is called only
 * after a successful initialize; destroy always follows a successful create.
 * A restart by the supervisor is shutdown + destroy + create + initialize:
 * a fresh object, as an Erlang process restarts with fresh state.
 *
 * Threading: the runtime calls one instance's handlers one at a time (a
 * mailbox per instance on a shared worker pool), so an instance needs no
 * locks, unless it sets MS_COMPONENT_REENTRANT, in which case handle_message
 * may run concurrently on several workers (lifecycle calls, config changes
 * and health checks still run alone, never beside a handler).
 */
#ifndef MAINSTACK_COMPONENT_H
#define MAINSTACK_COMPONENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mainstack/log.h"
#include "mainstack/message.h"
#include "mainstack/semver.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change of ms_component_ops or ms_component_ctx
 * functions; a plugin built for another value is refused at load. */
#define MS_COMPONENT_ABI 1

typedef struct ms_component_metadata {
    const char *name;        /* [a-z0-9-]+, also the queue group and subject token */
    const char *version;     /* semver 2.0.0: MAJOR.MINOR.PATCH[-pre][+build] */
    const char *description; /* one line */
} ms_component_metadata;

typedef enum ms_health_status {
    MS_HEALTH_HEALTHY = 0,
    MS_HEALTH_DEGRADED,  /* serving, but something needs attention */
    MS_HEALTH_UNHEALTHY  /* not serving correctly: counts toward a restart */
} ms_health_status;

typedef struct ms_health {
    ms_health_status status;
    char detail[256]; /* why, for degraded/unhealthy; "" when healthy */
} ms_health;

/* "healthy", "degraded", "unhealthy". */
const char *ms_health_status_str(ms_health_status s);

/* One test of a Testable component. */
typedef struct ms_test_result {
    char name[128];
    bool passed;
    char output[1024]; /* what it printed or why it failed (truncated) */
} ms_test_result;

/* Filled by run_tests through ms_test_report_add. Not thread-safe: one
 * writer at a time. */
typedef struct ms_test_report ms_test_report;
/* An empty report; freed with ms_test_report_destroy (NULL-safe).
 * MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms_test_report_create(ms_test_report **out);
void ms_test_report_destroy(ms_test_report *r);
/* Record one test. name (truncated to fit) is required; fmt (may be NULL)
 * formats the output. MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms_test_report_add(ms_test_report *r, const char *name, bool passed,
                             const char *fmt, ...) __attribute__((format(printf, 4, 5)));
size_t ms_test_report_count(const ms_test_report *r);
size_t ms_test_report_failed(const ms_test_report *r);
/* The i-th result (borrowed), NULL past the end. */
const ms_test_result *ms_test_report_at(const ms_test_report *r, size_t i);

/* Flags of a component. */
#define MS_COMPONENT_REENTRANT 0x1u /* handle_message may run concurrently */
/*
 * handle_message is short and never blocks: the runtime may run it on the
 * bus delivery thread that received the message, when the instance is idle,
 * instead of handing it to a worker (that hand-off is a thread wake-up: tens
 * of microseconds per message on a busy host). The one-at-a-time rule and
 * everything else stay as for any serial component; a message that finds
 * the instance busy goes to a worker as usual. The promise: no sleeping, no
 * blocking I/O, no waiting on locks held for long, and no ms_ctx_request
 * (refused with MS_ERR_STATE from an inline call: its reply could need the
 * very thread that waits). A handler that blocks all the same holds up every
 * subscription that delivery thread serves. Not combinable with
 * MS_COMPONENT_REENTRANT.
 */
#define MS_COMPONENT_INLINE 0x2u
/*
 * The ops carry a migrate function (below). The flag says the member is
 * there: a plugin built before it existed has a shorter ops struct, so the
 * runtime reads migrate only when this flag is set (and the ABI stays 1).
 */
#define MS_COMPONENT_MIGRATE 0x4u

/* Flags of a topic. */
#define MS_TOPIC_FANOUT 0x1u /* every instance gets each message (no queue group) */

typedef struct ms_topic {
    const char *subject; /* a pattern; wildcards allowed */
    uint32_t flags;      /* MS_TOPIC_* */
} ms_topic;

/* All a component may touch of the framework. Borrowed by the component for
 * the life of the instance; every function is safe from any of its calls. */
typedef struct ms_component_ctx ms_component_ctx;

const char *ms_ctx_component(const ms_component_ctx *ctx); /* component name */
const char *ms_ctx_instance_id(const ms_component_ctx *ctx);
/* The instance's configuration (an object; borrowed, valid until the next
 * handle_config_change returns). Never NULL: {} when none was given. */
const json_t *ms_ctx_config(const ms_component_ctx *ctx);
/* A directory only this component uses (created); borrowed. */
const char *ms_ctx_data_dir(const ms_component_ctx *ctx);
ms_status ms_ctx_publish(ms_component_ctx *ctx, const char *subject, const void *data,
                         size_t len);
/* Publish msg, with source set to this component when unset. */
ms_status ms_ctx_publish_msg(ms_component_ctx *ctx, ms_message *msg);
/* Request/reply (ms_bus_request); *reply is the caller's to unref. Do not
 * request a subject of your own instance from its handler (it is busy: the
 * request times out). */
ms_status ms_ctx_request(ms_component_ctx *ctx, const char *subject, const void *data,
                         size_t len, int timeout_ms, ms_message **reply);
/* The same with a full message (source set when unset; msg borrowed). */
ms_status ms_ctx_request_msg(ms_component_ctx *ctx, ms_message *msg, int timeout_ms,
                             ms_message **reply);
/* Ask the runtime to stop this instance normally once the current call
 * returns (an Erlang "normal exit"): a permanent instance is restarted, a
 * transient or temporary one is not. */
void ms_ctx_stop(ms_component_ctx *ctx);
/* Record why a call failed and return status, for a handler to write
 *     return ms_ctx_error(ctx, MS_ERR_SCHEMA, "email: '%s' is not an address", e);
 * The text becomes ms_last_error() on this thread, which the runtime puts
 * in the Nats-Service-Error header of the error reply (or logs, for a
 * refused config or a failed initialize). ctx may be NULL. */
ms_status ms_ctx_error(ms_component_ctx *ctx, ms_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Log with mod=<component> and instance=<id>. */
void ms_ctx_log(ms_component_ctx *ctx, ms_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

typedef struct ms_component_ops {
    uint32_t abi_version; /* MS_COMPONENT_ABI */
    ms_component_metadata metadata;
    uint32_t flags; /* MS_COMPONENT_* */

    /* Required: create, destroy, initialize, handle_message. */
    void *(*create)(void);          /* NULL on failure */
    void (*destroy)(void *self);
    /* ctx is borrowed until destroy; its config is ms_ctx_config(ctx). A
     * non-MS_OK status (detail in ms_last_error()) is a failed start: the
     * supervisor restarts the instance by its restart type. */
    ms_status (*initialize)(void *self, ms_component_ctx *ctx);
    void (*shutdown)(void *self); /* optional */
    /* Optional. A new config (borrowed; it is ms_ctx_config(ctx) from the
     * moment this returns MS_OK). A non-MS_OK status rejects it and the old
     * one stays in force (the runtime logs the reason from ms_last_error()).
     * When NULL every new config is accepted and only seen via ms_ctx_config. */
    ms_status (*handle_config_change)(void *self, const json_t *config);

    /* Subscriptions, terminated by {NULL, 0}; NULL: none. Each joins the
     * queue group named after the component unless MS_TOPIC_FANOUT. */
    const ms_topic *topics;
    /* in is borrowed. Set *reply (a new message you own until return: the
     * runtime sends it on in's reply subject, filling the correlation id,
     * and unrefs it) to answer a request; leave it NULL otherwise (a request
     * left unanswered gets an empty reply, so no requester waits for
     * nothing). A non-MS_OK status answers the request with an error
     * instead (headers Nats-Service-Error: the ms_last_error() text, see
     * ms_ctx_error; Nats-Service-Error-Code: 400 for MS_ERR_INVALID_ARG /
     * _PARSE / _SCHEMA / _INVALID_SUBJECT, 403 _AUTH, 404 _NOT_FOUND, 409
     * _STATE, 413 _TOO_LARGE, 501 _UNSUPPORTED, 503 _FULL / _CLOSED /
     * _NO_RESPONDERS / _CONNECTION, 504 _TIMEOUT, 500 otherwise; any *reply
     * is discarded) and counts as an error in the stats. 5xx failures in a
     * row count toward a restart; 4xx ones (bad input) do not. */
    ms_status (*handle_message)(void *self, const ms_message *in, ms_message **reply);

    /* Optional capabilities; NULL when absent. */
    ms_health (*health_check)(void *self);                       /* HealthCheckable */
    ms_status (*run_tests)(void *self, ms_test_report *report);  /* Testable */

    /* Optional, read only with MS_COMPONENT_MIGRATE in flags. When a
     * version swap (ms_runtime_swap, a deployment's promotion or rollback)
     * starts this version beside the one serving, each candidate instance
     * gets migrate after its initialize and before any message, with the
     * version it replaces (previous_version: "1.0.0"; for a rollback the
     * newer one) and the same ctx (its data directory is the one the
     * previous version used): the place to carry state over, convert a
     * file, or refuse a previous version it cannot take over from. A
     * non-MS_OK status fails the swap on this host like a failed
     * initialize: the candidate is removed and the previous version keeps
     * serving. Runs alone, like initialize. */
    ms_status (*migrate)(void *self, ms_component_ctx *ctx, const char *previous_version);
} ms_component_ops;

typedef const ms_component_ops *(*ms_component_entry)(void);

#define MS_COMPONENT_ENTRY_SYMBOL "mainstack_component"

/* Export ops as this shared object's component. */
#define MS_COMPONENT_EXPORT(ops)                                                                   \
    __attribute__((visibility("default"))) const ms_component_ops *mainstack_component(void);   \
    const ms_component_ops *mainstack_component(void)                                           \
    {                                                                                            \
        return &(ops);                                                                           \
    }

/* Check ops: abi version, name ([a-z0-9-]+, at most MS_COMPONENT_NAME_MAX
 * bytes, no leading/trailing '-'), version (semver 2.0.0), description
 * (present), the required functions, and each topic (a valid pattern, no
 * unknown flag). `where` names the file in errors (NULL: the component).
 * MS_ERR_UNSUPPORTED (ABI: both numbers named), MS_ERR_SCHEMA (metadata,
 * topic or a missing function, named), MS_ERR_INVALID_ARG (ops NULL). */
#define MS_COMPONENT_NAME_MAX 64
ms_status ms_component_validate(const ms_component_ops *ops, const char *where);

/* dlopen path (RTLD_NOW | RTLD_LOCAL) and fetch its ops, validated. The
 * handle stays open until ms_plugin_unload. *out is the caller's. Errors
 * name the file: MS_ERR_IO (no such file, unreadable, or not a loadable
 * shared object: the dlerror text), MS_ERR_NOT_FOUND (no
 * mainstack_component symbol: "not a mainstack component"),
 * MS_ERR_UNSUPPORTED (ABI mismatch: both numbers), MS_ERR_SCHEMA (invalid
 * metadata, or the entry returned NULL), MS_ERR_INVALID_ARG,
 * MS_ERR_NO_MEMORY. */
typedef struct ms_plugin ms_plugin;
ms_status ms_plugin_load(const char *path, ms_plugin **out);
const ms_component_ops *ms_plugin_ops(const ms_plugin *p);
const char *ms_plugin_path(const ms_plugin *p);
void ms_plugin_unload(ms_plugin *p); /* NULL-safe; no instance may remain */

#ifdef __cplusplus
}
#endif
#endif
