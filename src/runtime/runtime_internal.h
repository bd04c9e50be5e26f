/*
 * runtime_internal.h - the runtime's shared structures (internal).
 *
 * runtime.c owns the runtime object and the instance list; lifecycle.c the
 * start/stop/restart of one instance on its mailbox; dispatch.c the path of
 * a message from the bus to handle_message and back; ctx.c the component
 * context; config.c, health.c, supervisor.c and discovery.c the framework
 * subjects. Locks, always taken in this order: rt->mu (instance list,
 * supervisor state) -> inst->mu (config, state, health, stats) -> the
 * mailbox's own lock. inst->sub_mu serializes subscribe/unsubscribe of an
 * instance and is never taken by a bus handler. A route's mu is taken by
 * its bus handler (alone) and by ms_runtime_swap (under both instances'
 * sub_mu); nothing else is taken while a swap holds it.
 */
#ifndef MS_RUNTIME_INTERNAL_H
#define MS_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "mainstack/runtime.h"
#include "runtime/executor.h"

#define MS__NUID_LEN 22
#define MS__ERRTEXT_MAX 256

/* A plugin loaded by this runtime, shared by its instances. */
typedef struct rt_plugin {
    ms_plugin *plugin;
    struct rt_plugin *next;
} rt_plugin;

struct ms__endpoint;

/* The closure of one bus subscription: which endpoint its messages go to.
 * The bus handler reads ep under mu and posts to that endpoint's mailbox
 * before unlocking; ms_runtime_swap repoints ep under mu, so every message
 * is posted to exactly one of the two versions and a subscription never
 * changes during a swap (swap.c). Owned by the endpoint holding the
 * subscription; freed after the subscription is unsubscribed. */
typedef struct ms__route {
    pthread_mutex_t mu;
    struct ms__endpoint *ep;
} ms__route;

/* One subscribed topic of an instance: a NATS Services endpoint. */
typedef struct ms__endpoint {
    ms_instance *inst;
    const char *subject; /* borrowed from ops->topics */
    char name[96];       /* endpoint name for $SRV.INFO/STATS */
    bool fanout;
    ms_subscription *sub; /* under inst->sub_mu */
    ms__route *route;     /* sub's closure, under inst->sub_mu */
    /* stats, under inst->mu */
    uint64_t num_requests;
    uint64_t num_errors;
    uint64_t processing_ns;
    char last_error[MS__ERRTEXT_MAX + 16]; /* "<code>:<text>", as micro */
} ms__endpoint;

struct ms_component_ctx {
    ms_instance *inst;
};

struct ms_instance {
    ms_runtime *rt;
    const ms_component_ops *ops; /* borrowed (from the caller or a plugin) */
    char id[MS__NUID_LEN + 1];
    char *data_dir;
    ms_restart_type restart;
    json_t *metadata; /* object of strings (owned) */
    struct ms_component_ctx ctx;
    ms__mailbox *mb;
    ms__endpoint *eps;
    size_t neps;

    /* Touched only by tasks on the mailbox (lifecycle tasks run exclusive). */
    void *self;
    bool initialized;

    pthread_mutex_t sub_mu; /* subscribe/unsubscribe of eps[].sub */

    pthread_mutex_t mu;
    json_t *config; /* in force (owned); never NULL */
    ms_instance_state state;
    ms_health health;
    char health_time[MS_TIMESTAMP_LEN + 1];
    char started[MS_TIMESTAMP_LEN + 1];
    uint32_t restarts;
    uint32_t consecutive_failures;
    uint32_t consecutive_unhealthy;
    uint64_t dropped;
    char last_error[MS__ERRTEXT_MAX];
    char stop_reason[MS__ERRTEXT_MAX];
    bool stop_pending;  /* a stop task is queued */
    bool removing;      /* ms_runtime_remove/shutdown: never restart */
    /* A swap candidate (swap.c): started without subscribing (the active
     * version's subscriptions are handed over) and, when its start fails,
     * marked failed without a restart; start_status says why. */
    bool candidate;
    ms_status start_status;
    /* A candidate's migrate argument: the version it replaces ("" none). */
    char migrate_from[64];
    atomic_bool stop_requested; /* ms_ctx_stop */
    /* health check bookkeeping */
    uint64_t check_seq;     /* seq of the last check posted */
    bool check_in_flight;
    bool check_timed_out;   /* the in-flight check was counted as timed out */
    int64_t check_started_ms;
    int64_t next_check_ms;

    /* under rt->mu: supervision */
    int64_t *restart_log; /* monotonic ms of recent restarts (ring of cap) */
    size_t restart_log_cap, restart_log_len;
    bool restart_due;
    int64_t restart_at_ms;

    /* under rt->mu: the instance list */
    struct ms_instance *prev, *next;
    bool linked;
};

struct ms_runtime {
    ms_runtime_options opts; /* strings point into owned copies below */
    char *url, *host_name, *config_path, *data_root, *component_path, *artifact_root;
    char host_id[MS__NUID_LEN + 1];
    ms_bus *bus;
    bool owns_bus;
    ms__executor *ex;

    pthread_mutex_t mu;
    ms_instance *first, *last;
    size_t count;
    rt_plugin *plugins;
    json_t *file_config; /* the config file's object (owned); NULL without a file */
    bool shutting_down;
    bool shut_down;
    ms_status shutdown_status;

    /* framework subscriptions (config, health, $SRV) */
    ms_subscription *subs[8];
    size_t nsubs;

    /* supervisor */
    pthread_t sup_thread;
    bool sup_started;
    bool sup_stop;
    pthread_cond_t sup_cv;

    /* ms_runtime_run */
    int wake_pipe[2];

    bool swapping; /* under mu: one ms_runtime_swap at a time */
    /* under mu: the prepared swap awaiting commit or abort (swap.c); while
     * set, swapping is true */
    struct ms__swap_pending *pending;

    /* deploy commands (deploy_host.c); NULL when deploy_commands is off */
    struct ms__deploy_host *deploy;
};

/* --- completions: wait for a task with a deadline, refcounted so that a
 * waiter that gave up and the task that finishes later both stay safe. --- */
typedef struct ms__completion {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs;
    bool done;
    ms_status status;
    char detail[512];
} ms__completion;

ms_status ms__completion_new(int refs, ms__completion **out);
/* Record the result (detail: ms_last_error() text or NULL) and wake. */
void ms__completion_finish(ms__completion *c, ms_status s, const char *detail);
/* Wait up to timeout_ms (< 0: forever). True when done. */
bool ms__completion_wait(ms__completion *c, int timeout_ms);
void ms__completion_unref(ms__completion *c);

/* --- helpers (runtime.c) --------------------------------------------------- */
int64_t ms__mono_ms(void);
int64_t ms__mono_ns(void);
void ms__nuid(char out[MS__NUID_LEN + 1]);
/* Status -> NATS Services error code (400, 404, 500, ...). */
int ms__status_http_code(ms_status s);
/* Publish JSON (serialised) on subject; logs failures. */
void ms__publish_json(ms_runtime *rt, const char *subject, const json_t *value);
/* Respond to a request with JSON; logs failures. */
void ms__respond_json(ms_runtime *rt, const ms_message *req, const json_t *value);
/* Respond with an error: headers Nats-Service-Error(-Code), body
 * {"error","code","status"}. Does nothing without a reply subject. */
void ms__respond_error(ms_runtime *rt, const ms_message *req, ms_status s, const char *text);

/* --- lifecycle (lifecycle.c) ------------------------------------------------- */
/* Task: create + initialize + subscribe (arg: ms__start_req). */
typedef struct ms__start_req {
    ms_instance *inst;
    ms__completion *done; /* NULL for a supervisor restart */
} ms__start_req;
void ms__task_start(void *arg);
void ms__task_start_drop(void *arg);
/* Post a stop (shutdown + destroy, then the restart decision) on the
 * instance's mailbox, once. abnormal: counts as a failure. */
void ms__instance_request_stop(ms_instance *inst, bool abnormal, const char *reason);
/* The same with inst->mu already held. */
void ms__instance_request_stop_locked(ms_instance *inst, bool abnormal, const char *reason);
/* After a component call: honour ms_ctx_stop. */
void ms__instance_after_call(ms_instance *inst);
/* Stop now: must run on the instance's mailbox in an exclusive task. */
void ms__instance_stop_now(ms_instance *inst, bool abnormal, const char *reason);
/* Unsubscribe every topic of inst (sub_mu). */
void ms__instance_unsubscribe(ms_instance *inst);
/* Subscribe the topics of inst that have no subscription yet (sub_mu);
 * skipped for a candidate. On failure every topic is unsubscribed. */
ms_status ms__instance_subscribe(ms_instance *inst);
/* Status JSON of one instance (new reference). inst->mu must NOT be held. */
json_t *ms__instance_health_json(ms_instance *inst);

/* --- instances and plugins (runtime.c), for swap.c ---------------------------- */
/* A new unlinked instance of ops (io filled in by the caller). */
ms_status ms__instance_new(ms_runtime *rt, const ms_component_ops *ops,
                           const ms_instance_options *io, ms_instance **out);
void ms__instance_free(ms_instance *inst);
/* Link inst and post its start (rt->mu taken here); wait for the start task.
 * MS_ERR_STATE when shutting down (inst is then not linked). */
ms_status ms__instance_link_and_start(ms_runtime *rt, ms_instance *inst);
/* Mark removing (no restart from now on). */
void ms__instance_mark_removing(ms_instance *inst);
/* Drain inst's mailbox by deadline (monotonic ms), stop it, unlink and free
 * it (unless stuck in a component call: then it is left in place). */
ms_status ms__instance_retire(ms_runtime *rt, ms_instance *inst, int64_t deadline);
/* The ops of the plugin at path, loading it unless this runtime has it. */
ms_status ms__runtime_plugin_ops(ms_runtime *rt, const char *path, const ms_component_ops **ops);
/* Unload the plugin whose ops these are when no instance uses them any more.
 * Does nothing for linked-in ops. */
void ms__runtime_plugin_release(ms_runtime *rt, const ms_component_ops *ops);

/* --- swaps (swap.c) and deploy commands (deploy_host.c) ----------------------- */
typedef struct ms__swap_pending ms__swap_pending;
typedef struct ms__deploy_host ms__deploy_host;
/* True when a prepared swap waits; its component copied into component. */
bool ms__runtime_swap_pending(ms_runtime *rt, char *component, size_t cap);
/* Start the deploy command worker and subscribe mainstack.deploy.* */
ms_status ms__deploy_host_start(ms_runtime *rt);
/* Unsubscribe, stop the worker, abort a swap it prepared. NULL-safe on rt->deploy. */
void ms__deploy_host_stop(ms_runtime *rt);

/* --- dispatch (dispatch.c) --------------------------------------------------- */
void ms__on_topic_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure);

/* --- health and supervision (health.c, supervisor.c) ------------------------- */
ms_status ms__supervisor_start(ms_runtime *rt);
void ms__supervisor_stop(ms_runtime *rt);
/* Wake the supervisor (rt->mu held). */
void ms__supervisor_kick(ms_runtime *rt);
/* Post a periodic health check of inst (inst->mu held). */
ms_status ms__health_post_check(ms_instance *inst);
/* The supervisor found the in-flight check late (rt->mu, inst->mu held):
 * count it unhealthy. Returns true when a stop must be requested. */
bool ms__health_timed_out(ms_instance *inst);
/* Publish inst's status on mainstack.health.<component>. No lock held. */
void ms__health_publish(ms_instance *inst);
/* Decide after a stop: restart (scheduled), stopped, or failed (escalated).
 * No lock held. */
void ms__supervisor_decide(ms_instance *inst, bool abnormal, const char *reason);
void ms__on_health_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure);

/* --- config (config.c) ------------------------------------------------------- */
/* Load and check the config file: an object whose members are objects. */
ms_status ms__config_load(const char *path, json_t **out);
/* The config an instance of component starts with (new reference). */
json_t *ms__config_for(ms_runtime *rt, const char *component);
void ms__on_config_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure);

/* --- discovery (discovery.c) ------------------------------------------------- */
void ms__on_srv_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure);
/* Endpoint name for a topic subject of component. */
void ms__endpoint_name(const char *component, const char *subject, char *out, size_t cap);

#endif
