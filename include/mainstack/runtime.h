/*
 * runtime.h - the host of components: lifecycle, dispatch, config, health,
 * supervision and service discovery, over one ms_bus.
 *
 * A runtime hosts any number of component instances, linked in
 * (ms_runtime_add) or loaded from shared objects (ms_runtime_load). Each
 * instance has a mailbox on the runtime's worker pool: its handle_message,
 * health_check, handle_config_change and restarts run there, one at a time
 * (several handle_message calls at once for MS_COMPONENT_REENTRANT; the
 * lifecycle calls still run alone; an MS_COMPONENT_INLINE instance's
 * handle_message runs on the bus delivery thread when the instance is
 * idle). Topics join the queue group named after
 * the component; MS_TOPIC_FANOUT topics reach every instance.
 *
 * Subjects served by every runtime (docs/runtime.md has the payloads):
 *   mainstack.config.<component>      fan-out; {"component","config"} or a
 *                                     bare object: apply a new config
 *   mainstack.health.<component>      published: one instance's status
 *   mainstack.health.<component>.get  request: every instance answers
 *   mainstack.health                  request: every host answers for all
 *                                     its instances
 *   mainstack.escalation.<component>  published when an instance is given up
 *   $SRV.PING|INFO|STATS[.<name>[.<id>]]  the NATS Services API (ADR-32)
 *   mainstack.deploy.<component>      request: prepare/switch/abort/swap a
 *                                     version (docs/deploy.md); every host
 *                                     of the component answers
 *
 * Threading: every ms_runtime_* and ms_instance_* function is thread-safe,
 * but none may be called from a component callback (they may wait for the
 * instance's mailbox), except ms_runtime_request_stop, which may be called
 * from anywhere, a signal handler included. See docs/runtime.md.
 *
 * Ownership: the runtime owns its instances (an ms_instance * stays valid
 * until ms_runtime_remove or ms_runtime_destroy) and the plugins it loaded.
 */
#ifndef MAINSTACK_RUNTIME_H
#define MAINSTACK_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mainstack/bus.h"
#include "mainstack/component.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_runtime ms_runtime;
typedef struct ms_instance ms_instance;

/* When a stopped instance is restarted (Erlang/OTP child restart types). An
 * abnormal stop is a failed initialize, N unhealthy checks in a row or M
 * failing handlers in a row; a normal stop is ms_ctx_stop(). */
typedef enum ms_restart_type {
    MS_RESTART_PERMANENT = 0, /* always restarted */
    MS_RESTART_TRANSIENT,     /* restarted after an abnormal stop only */
    MS_RESTART_TEMPORARY      /* never restarted */
} ms_restart_type;

typedef enum ms_instance_state {
    MS_INSTANCE_STARTING = 0, /* created, initialize not yet done */
    MS_INSTANCE_RUNNING,      /* initialized and subscribed */
    MS_INSTANCE_RESTARTING,   /* stopped, a restart is scheduled */
    MS_INSTANCE_STOPPED,      /* stopped normally, not restarted */
    MS_INSTANCE_FAILED        /* given up: restart intensity exceeded, or a
                                 temporary instance that failed */
} ms_instance_state;

/* "starting", "running", "restarting", "stopped", "failed". */
const char *ms_instance_state_str(ms_instance_state s);
/* "permanent", "transient", "temporary"; and back (MS_ERR_PARSE). */
const char *ms_restart_type_str(ms_restart_type t);
ms_status ms_restart_type_parse(const char *name, ms_restart_type *out);

/* Defaults of ms_runtime_options (ms_runtime_options_init). */
#define MS_RUNTIME_DEFAULT_MAILBOX_CAPACITY 1024
#define MS_RUNTIME_DEFAULT_MAILBOX_FULL_TIMEOUT_MS 1000
#define MS_RUNTIME_DEFAULT_HEALTH_INTERVAL_MS 5000
#define MS_RUNTIME_DEFAULT_HEALTH_TIMEOUT_MS 2000
#define MS_RUNTIME_DEFAULT_UNHEALTHY_THRESHOLD 3 /* N */
#define MS_RUNTIME_DEFAULT_FAILURE_THRESHOLD 10  /* M */
#define MS_RUNTIME_DEFAULT_MAX_RESTARTS 3        /* R */
#define MS_RUNTIME_DEFAULT_RESTART_WINDOW_MS 60000 /* T */
#define MS_RUNTIME_DEFAULT_RESTART_DELAY_MS 100
#define MS_RUNTIME_DEFAULT_SHUTDOWN_TIMEOUT_MS 10000
#define MS_RUNTIME_DEFAULT_URL "inproc://mainstack"

typedef struct ms_runtime_options {
    /* The bus to use, borrowed (it must outlive the runtime). NULL: the
     * runtime connects to url and owns that bus. */
    ms_bus *bus;
    /* Used when bus is NULL: nats://... or inproc://name. NULL: $NATS_URL,
     * and when that is unset too, MS_RUNTIME_DEFAULT_URL. */
    const char *url;
    /* Connection name shown by the server; default "mstack-<pid>". */
    const char *host_name;

    int workers;          /* worker threads; 0 = number of online CPUs */
    int mailbox_capacity; /* messages queued per instance */
    /* How long the bus delivery thread waits on a full mailbox before the
     * message is refused (a request gets a 503 error reply; an event is
     * logged and counted as dropped). */
    int mailbox_full_timeout_ms;

    /* JSON file {"<component>": {config}, ...}; NULL: none (every instance
     * gets {}). Reread by ms_runtime_reload_config. */
    const char *config_path;
    /* Root of the data directories (<data_root>/<component>/, created).
     * NULL: $MAINSTACK_DATA_DIR, and when unset, "./mainstack-data". */
    const char *data_root;
    /* Directories searched by ms_runtime_load for a component name, ':'
     * separated, tried after $MAINSTACK_COMPONENT_PATH. NULL: none. */
    const char *component_path;

    int health_interval_ms;  /* between checks of one instance; 0: no checks */
    int health_timeout_ms;   /* a check not done by then counts unhealthy */
    int unhealthy_threshold; /* N: restart after N unhealthy checks in a row */
    int failure_threshold;   /* M: restart after M failing handlers in a row
                                (server errors only: 4xx-mapped statuses such
                                as MS_ERR_SCHEMA do not count) */
    int max_restarts;        /* R: more than R restarts ... */
    int restart_window_ms;   /* T: ... within T ms: the instance is failed */
    int restart_delay_ms;    /* wait before each restart */
    ms_restart_type restart; /* default restart type of instances */

    int shutdown_timeout_ms; /* used by ms_runtime_run and ms_runtime_destroy */
    bool discovery;          /* answer $SRV.* requests; default true */
    /* Answer deploy commands on mainstack.deploy.<component> for the
     * components hosted here (docs/deploy.md); default true. */
    bool deploy_commands;
    /* Where a deploy command's relative artifact path is resolved (each
     * machine has its own copy of the artifacts); NULL: the working
     * directory. */
    const char *artifact_root;
} ms_runtime_options;

/* Fill opts with the defaults above. */
void ms_runtime_options_init(ms_runtime_options *opts);

/* Per-instance settings for ms_runtime_add / ms_runtime_load. */
typedef struct ms_instance_options {
    ms_restart_type restart; /* default: the runtime's */
    /* The instance's config, borrowed (copied). NULL: the config file's
     * entry for the component, or {} */
    const json_t *config;
    /* Service metadata shown by $SRV.INFO (string values), borrowed
     * (copied); NULL: none. */
    const json_t *metadata;
} ms_instance_options;

/* Fill io with defaults, taking the restart type from rt (rt may be NULL:
 * permanent). */
void ms_instance_options_init(const ms_runtime *rt, ms_instance_options *io);

/*
 * Create a runtime: connect (or borrow) the bus, start the worker pool, the
 * supervisor and the runtime's own subscriptions, and read the config file.
 * opts is borrowed (strings copied). *out is freed with ms_runtime_destroy.
 * Returns MS_OK, MS_ERR_INVALID_ARG (a bad option, named), the
 * ms_bus_connect statuses, MS_ERR_IO / MS_ERR_PARSE / MS_ERR_SCHEMA (the
 * config file: "file:line:column: what"), MS_ERR_NO_MEMORY, MS_ERR_INTERNAL
 * (a thread could not be started).
 */
ms_status ms_runtime_create(const ms_runtime_options *opts, ms_runtime **out);

/*
 * Start one instance of a linked-in component: validate ops, then create,
 * initialize (with its config) and subscribe its topics, as the first task
 * of the instance's mailbox; the call waits for that task, and when it
 * returns the subscriptions are active on the server. ops is borrowed and
 * must outlive the instance; io may be NULL. *out (optional) is owned by
 * the runtime.
 * A failing initialize is the supervisor's business, not the caller's: the
 * call still returns MS_OK and the instance is restarted by its restart type
 * (ms_instance_state tells). Returns MS_OK, MS_ERR_INVALID_ARG, the
 * ms_component_validate statuses, MS_ERR_NO_MEMORY (also: create returned
 * NULL), MS_ERR_IO (the data directory), MS_ERR_STATE (shutting down), the
 * ms_bus_subscribe statuses.
 */
ms_status ms_runtime_add(ms_runtime *rt, const ms_component_ops *ops,
                         const ms_instance_options *io, ms_instance **out);

/*
 * Load a plugin and start one instance of it (as ms_runtime_add). A
 * plugin's shared object is loaded once per runtime and path and shared by
 * its instances. `component` is a path when it contains '/' or ends in
 * ".so"; otherwise a name looked up by ms_runtime_resolve. Returns the
 * ms_runtime_add statuses, the ms_plugin_load statuses (naming the file),
 * MS_ERR_NOT_FOUND (a name found nowhere: the directories tried are listed).
 */
ms_status ms_runtime_load(ms_runtime *rt, const char *component,
                          const ms_instance_options *io, ms_instance **out);

/*
 * Find the shared object of a component name: for each directory of
 * $MAINSTACK_COMPONENT_PATH then of the component_path option (each ':'
 * separated), try <dir>/<name>.so, <dir>/lib<name>.so, <dir>/<name>/<name>.so
 * and <dir>/<name>/lib<name>.so; the first that exists wins. *path is
 * malloc'd, freed by the caller with free(). rt may be NULL (environment
 * only). MS_ERR_INVALID_ARG, MS_ERR_NOT_FOUND, MS_ERR_NO_MEMORY.
 */
ms_status ms_runtime_resolve(const ms_runtime *rt, const char *name, char **path);

/*
 * Stop one instance normally: unsubscribe, finish what is in its mailbox
 * within timeout_ms, shutdown, destroy; inst is freed. Not restarted.
 * MS_OK, MS_ERR_INVALID_ARG, MS_ERR_NOT_FOUND (not an instance of rt),
 * MS_ERR_TIMEOUT (the mailbox did not empty in time: the rest was answered
 * with errors; the instance is gone all the same).
 */
ms_status ms_runtime_remove(ms_runtime *rt, ms_instance *inst, int timeout_ms);

/*
 * Reread the config file and hand each instance whose config changed the
 * new one (handle_config_change, on its mailbox), waiting for the answers.
 * A file that cannot be read or parsed changes nothing; a config an
 * instance rejects leaves its old one in force. Each reason is logged.
 * Returns MS_OK (every change applied, or nothing changed), MS_ERR_STATE
 * (no config file), the ms_json_load_file statuses (file:line:column),
 * MS_ERR_SCHEMA (not an object of objects; names the member), or the first
 * status an instance rejected a change with (the others were applied), with
 * the component named in ms_last_error().
 */
ms_status ms_runtime_reload_config(ms_runtime *rt);

/*
 * Apply config (borrowed) to every instance of `component` on this host, as
 * a mainstack.config.<component> message does. Same returns as above, and
 * MS_ERR_NOT_FOUND when no instance of that component runs here.
 */
ms_status ms_runtime_apply_config(ms_runtime *rt, const char *component, const json_t *config);

/*
 * Block until SIGTERM or SIGINT arrives or ms_runtime_request_stop is
 * called, then ms_runtime_shutdown(rt, shutdown_timeout_ms). SIGHUP calls
 * ms_runtime_reload_config. The handlers are installed for the duration of
 * the call only (one ms_runtime_run at a time per process: MS_ERR_STATE).
 * Returns MS_OK after a clean shutdown, MS_ERR_TIMEOUT when in-flight work
 * did not finish in time, MS_ERR_STATE, MS_ERR_IO.
 */
ms_status ms_runtime_run(ms_runtime *rt);

/* Ask ms_runtime_run to return (async-signal-safe, any thread). Without a
 * running ms_runtime_run the request is remembered for the next one. */
void ms_runtime_request_stop(ms_runtime *rt);

/*
 * Graceful shutdown: stop intake (unsubscribe every topic), finish the
 * messages already in mailboxes (each accepted request is answered), then
 * shutdown and destroy every instance, all within timeout_ms; past the
 * deadline the remaining queued requests get a 503 error reply. The
 * runtime's own subscriptions go last; an owned bus is drained and closed.
 * Idempotent. MS_OK, MS_ERR_TIMEOUT (the deadline passed), MS_ERR_INVALID_ARG.
 */
ms_status ms_runtime_shutdown(ms_runtime *rt, int timeout_ms);

/* Shutdown (shutdown_timeout_ms) if not done, unload plugins, free. NULL-safe. */
void ms_runtime_destroy(ms_runtime *rt);

/* The runtime's bus (borrowed). */
ms_bus *ms_runtime_bus(ms_runtime *rt);
/* Worker threads of the pool. */
int ms_runtime_workers(const ms_runtime *rt);

/* Snapshot of the instances, in the order added. *list is malloc'd (free()
 * it; the pointers are borrowed, valid until removed). MS_ERR_NO_MEMORY. */
ms_status ms_runtime_instances(ms_runtime *rt, ms_instance ***list, size_t *count);

/*
 * The health of this host's instances as JSON (a new reference):
 *   {"host","name","time","instances":[<status of each instance>]}
 * component NULL: all; otherwise only that component's instances. An
 * instance's status is {"component","instance","version","state","status",
 * "detail","time","restarts","host"} (docs/runtime.md). MS_ERR_INVALID_ARG,
 * MS_ERR_NO_MEMORY.
 */
ms_status ms_runtime_health(ms_runtime *rt, const char *component, json_t **out);

/* --- swapping a component's version in the running host -------------------- */

/* What ms_runtime_swap did (a value struct filled by the call, also on
 * failure: error says why). */
typedef struct ms_swap_report {
    char component[MS_COMPONENT_NAME_MAX + 1];
    char old_version[64];
    char new_version[64];
    size_t instances;      /* candidate instances started (one per active one) */
    size_t routes_moved;   /* subscriptions handed from the old version to the new */
    size_t topics_added;   /* subscriptions of topics only the new version has */
    size_t topics_removed; /* subscriptions of topics only the old version had */
    uint64_t drained;      /* messages the old instances finished after the switch */
    int64_t switch_us;     /* time the delivery switch took (all routes) */
    int64_t drain_ms;      /* time the old instances took to drain and stop */
    bool old_unloaded;     /* the old plugin was unloaded (no instance used it) */
    char error[512];       /* "" on success */
} ms_swap_report;

/*
 * Replace the running version of `component` on this host by a candidate,
 * with no message lost and none handled twice. The candidate is a plugin
 * (plugin_path: a path, or a name looked up as ms_runtime_load does) or
 * linked-in ops (ops, borrowed, must outlive its instances): exactly one of
 * the two. Steps:
 *   1. load and validate the candidate; its metadata.name must be component;
 *   2. start one candidate instance per active instance (same config, restart
 *      type and metadata), initialized but not yet receiving;
 *   3. switch: each subscription of the active instances is handed to the
 *      matching candidate endpoint (same subject and fan-out flag); every
 *      message the bus delivers after that goes to the candidate; topics only
 *      the candidate has are subscribed, topics only the old one had are
 *      unsubscribed;
 *   4. the old instances finish what their mailboxes hold (each accepted
 *      request is answered by the old version) within drain_timeout_ms
 *      (<= 0: the runtime's shutdown_timeout_ms), then shutdown and destroy;
 *      their plugin is unloaded when no instance uses it.
 * When the candidate cannot be loaded, is another component, or a candidate
 * instance fails create or initialize, nothing changes: the candidates
 * started are removed, the active instances keep serving, and the error
 * says why. out (optional) is filled in either case.
 * Returns MS_OK; MS_ERR_INVALID_ARG (arguments; the candidate is another
 * component); the ms_plugin_load / ms_runtime_resolve statuses (naming the
 * file: not a component MS_ERR_NOT_FOUND, ABI mismatch MS_ERR_UNSUPPORTED,
 * bad metadata MS_ERR_SCHEMA); the candidate's initialize status (or
 * MS_ERR_NO_MEMORY for a create that returned NULL); MS_ERR_NOT_FOUND (no
 * instance of component runs here); MS_ERR_STATE (that version is already
 * the active one, another swap is running, shutting down, or called from a
 * component callback); MS_ERR_TIMEOUT (the old instances did not drain in
 * time: the rest got 503 errors; the candidate serves all the same).
 * Thread-safe; one swap at a time per runtime.
 */
ms_status ms_runtime_swap(ms_runtime *rt, const char *component, const char *plugin_path,
                          const ms_component_ops *ops, int drain_timeout_ms,
                          ms_swap_report *out);

/*
 * ms_runtime_swap in two phases, for a promotion that must be all-or-nothing
 * across hosts (docs/deploy.md):
 *   ms_runtime_swap_prepare: steps 1 and 2 above (load, validate, start the
 *     candidate instances beside the active ones, not receiving). On failure
 *     nothing changed, as ms_runtime_swap. On success the swap is *prepared*:
 *     the active version keeps serving and the runtime holds the swap (no
 *     other swap starts: MS_ERR_STATE) until one of:
 *   ms_runtime_swap_commit: steps 3 and 4 (switch, drain, unload the old);
 *     the same returns as ms_runtime_swap's last steps, and MS_ERR_STATE
 *     when no swap of component is prepared, or an active instance was
 *     removed since the prepare (the candidate is then dropped).
 *   ms_runtime_swap_abort: remove the candidates, unload their plugin; the
 *     active version never stopped serving. MS_ERR_STATE when nothing of
 *     component is prepared.
 * ms_runtime_swap is prepare then commit. A shutdown aborts a prepared swap.
 * out (optional) is filled by each call. Thread-safe; not from a callback.
 */
ms_status ms_runtime_swap_prepare(ms_runtime *rt, const char *component, const char *plugin_path,
                                  const ms_component_ops *ops, ms_swap_report *out);
ms_status ms_runtime_swap_commit(ms_runtime *rt, const char *component, int drain_timeout_ms,
                                 ms_swap_report *out);
ms_status ms_runtime_swap_abort(ms_runtime *rt, const char *component, ms_swap_report *out);

/* This host's id (22 characters, unique per runtime) and name (the
 * host_name option), as deploy replies name them. Borrowed. */
const char *ms_runtime_host_id(const ms_runtime *rt);
const char *ms_runtime_host_name(const ms_runtime *rt);

/* --- one instance ---------------------------------------------------------- */

const char *ms_instance_component(const ms_instance *inst); /* borrowed */
const char *ms_instance_id(const ms_instance *inst);        /* borrowed, unique */
const ms_component_ops *ms_instance_ops(const ms_instance *inst);
ms_instance_state ms_instance_get_state(const ms_instance *inst);

typedef struct ms_instance_stats {
    ms_instance_state state;
    ms_health health;               /* last health check (healthy before any) */
    uint64_t num_requests;          /* messages handled, all topics */
    uint64_t num_errors;            /* handlers that failed or refused messages */
    uint64_t dropped;               /* events refused on a full mailbox */
    uint64_t processing_time_ns;    /* total time in handle_message */
    uint32_t restarts;              /* since the instance was added */
    uint32_t consecutive_failures;  /* handler server errors in a row */
    uint32_t consecutive_unhealthy; /* unhealthy checks in a row */
    char last_error[256];           /* "" when none */
    char started[MS_TIMESTAMP_LEN + 1]; /* RFC 3339 UTC of the last start */
} ms_instance_stats;

/* A consistent snapshot. MS_ERR_INVALID_ARG. */
ms_status ms_instance_get_stats(const ms_instance *inst, ms_instance_stats *out);

/*
 * Run the instance's health_check now, on its mailbox, and wait up to
 * timeout_ms (<= 0: the runtime's health_timeout_ms). Counts like a periodic
 * check (publishes, may lead to a restart). A component without
 * health_check is healthy while running. MS_OK, MS_ERR_TIMEOUT (counted
 * unhealthy), MS_ERR_STATE (not running), MS_ERR_INVALID_ARG.
 */
ms_status ms_instance_check_health(ms_instance *inst, int timeout_ms, ms_health *out);

/*
 * Run a Testable instance's run_tests on its mailbox into report (borrowed;
 * see ms_test_report_create), waiting up to timeout_ms. Returns run_tests'
 * status, MS_ERR_UNSUPPORTED (no run_tests), MS_ERR_STATE (not running),
 * MS_ERR_TIMEOUT (report left unchanged; the tests finish in the
 * background into a private report), MS_ERR_INVALID_ARG.
 */
ms_status ms_instance_run_tests(ms_instance *inst, ms_test_report *report, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
