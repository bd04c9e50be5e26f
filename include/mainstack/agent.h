/*
 * agent.h - the agent's decision: ignore, act or escalate on a message.
 *
 * ms_agent_evaluate is a pure function of (message, context, config): no
 * I/O, no clock, no randomness, so the same three inputs always give the
 * same decision and a recorded decision can be replayed. The policy (the
 * full table is in docs/context.md):
 *   1. an interface_changed or dependency_update whose payload is malformed
 *      is decided first: escalate when it names an interface or dependency
 *      of this component, ignore otherwise (the reason says what is wrong);
 *   2. the config's rules, in order; the first whose match fields all hold
 *      wins ("act" is bounded by the autonomy level: beyond it the decision
 *      becomes escalate and the reason says so);
 *   3. the default policy, rules named "default:<what>": breaking interface
 *      changes escalate, compatible ones act within autonomy, dependency
 *      updates act for patch/minor within autonomy and the declared range,
 *      escalate for major; other messages on a monitored topic escalate;
 *      anything not relevant to this component is ignored.
 *
 * Threading: every function here is safe from any thread on shared,
 * read-only inputs.
 */
#ifndef MAINSTACK_AGENT_H
#define MAINSTACK_AGENT_H

#include <jansson.h>

#include "mainstack/bus.h"
#include "mainstack/context.h"
#include "mainstack/message.h"
#include "mainstack/proc.h"
#include "mainstack/registry.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MS_DECISION_RULE_MAX 96
#define MS_DECISION_REASON_MAX 2048

/* A caller-owned value: no allocation, nothing to free. */
typedef struct ms_decision {
    ms_verdict verdict;
    char rule[MS_DECISION_RULE_MAX];     /* a config rule's name, or "default:<what>" */
    char reason[MS_DECISION_REASON_MAX]; /* why, with the versions, bump and autonomy */
} ms_decision;

/* Decide what the agent of ctx/cfg does about msg (all borrowed). *out is
 * always filled on MS_OK. MS_ERR_INVALID_ARG when an argument is NULL or
 * ctx and cfg name different components; MS_ERR_NO_MEMORY. */
ms_status ms_agent_evaluate(const ms_message *msg, const ms_context *ctx,
                            const ms_agent_config *cfg, ms_decision *out);

/* The JSON form of a decision, for publishing on
 * mainstack.agent.<component>.decision and for recording:
 *   {"component": ..., "decision": "act", "rule": ..., "reason": ...,
 *    "message": {"id", "subject", "type"}}   ("message" only when msg is
 * given; its members only when the message has them). component may be
 * NULL (left out). *out is a new reference. MS_ERR_INVALID_ARG,
 * MS_ERR_NO_MEMORY. */
ms_status ms_decision_to_json(const ms_decision *d, const char *component, const ms_message *msg,
                              json_t **out);
/* Read {"decision", "rule", "reason"} back (other members ignored), as an
 * evaluator command prints it. MS_ERR_SCHEMA naming the field (source
 * labels it; NULL: "decision"), MS_ERR_INVALID_ARG. A missing rule or
 * reason reads as "". */
ms_status ms_decision_from_json(const json_t *j, const char *source, ms_decision *out);

/* The evaluator's input, {"message": {...}, "context": {...}, "config":
 * {...}}: what an evaluator command gets on stdin. message holds subject,
 * reply, id, source, type, correlation_id, timestamp, traceparent (each
 * when set), headers (an object of arrays of values, when any) and payload
 * (the payload's JSON; {"text": ...} when it is UTF-8 but not JSON;
 * {"bytes": n} when neither; null when empty); context and config are the
 * loaded documents. *out is a new
 * reference. MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms_agent_input_json(const ms_message *msg, const ms_context *ctx,
                              const ms_agent_config *cfg, json_t **out);


/* --- the agent runner ------------------------------------------------------
 *
 * An ms_agent is one component's agent at work: it reads the framework's
 * control events through a durable consumer (stream.h: an agent that was
 * down catches up; two agents of one component share one consumer) and its
 * other monitored topics through queue subscriptions, decides each message
 * with ms_agent_evaluate (optionally consulting an evaluator command,
 * bounded by the policy), records the decision in the registry (one per
 * component and event id), publishes it on mainstack.agent.<component>.decision,
 * and only then acknowledges the event. An "act" runs the action pipeline
 * (change -> build -> test, the argv commands of agent-config.json, then,
 * with actions.deploy and deploy_program, the framework steps version ->
 * deploy: `mstack version add` and `mstack deploy`, which tests the
 * candidate against the active version and promotes it when
 * autonomy.may_deploy allows) on a shared ms_proc_runner: no shell, the
 * input as JSON on stdin and MAINSTACK_* variables, a time limit per step,
 * a log file per step under <root>/.mainstack/runs/<component>/.
 * "escalate", any failing step, or a tested candidate the agent may not
 * deploy by itself, opens an escalation in the registry and publishes it
 * on the escalation subject. docs/agents.md has the whole story.
 *
 * Threading: each agent has one worker thread that decides its messages in
 * order, and (with a durable consumer) one reader thread; pipelines run on
 * the proc runner's thread. Many agents share one bus, registry and runner.
 */

typedef struct ms_agent ms_agent;

typedef enum ms_agent_event_kind {
    MS_AGENT_DECIDED = 0, /* a decision was recorded (and published) */
    MS_AGENT_RUN_DONE     /* a pipeline run ended (succeeded, escalated or cancelled) */
} ms_agent_event_kind;

/* What the on_event callback gets (borrowed for the call). */
typedef struct ms_agent_event {
    ms_agent_event_kind kind;
    const char *component;
    const ms_decision *decision; /* MS_AGENT_DECIDED */
    bool fresh;                  /* false: the event was decided before (a redelivery) */
    int64_t decision_id;
    int64_t run_id;              /* MS_AGENT_RUN_DONE; 0 otherwise */
    const char *run_state;       /* "succeeded", "escalated" (a step failed, or the tested
                                    candidate awaits approval to deploy), "cancelled" */
    const char *event_subject;   /* the message's subject */
} ms_agent_event;

typedef void (*ms_agent_event_fn)(const ms_agent_event *ev, void *closure);

typedef struct ms_agent_options {
    ms_bus *bus;             /* required; borrowed */
    ms_registry *registry;   /* required; borrowed */
    ms_proc_runner *runner;  /* borrowed; NULL: the agent creates its own */
    const char *component_dir; /* required: holds context/context.json and agent-config.json */
    const char *root;        /* the project root: cwd of the actions, home of the run logs;
                                NULL: the current directory */
    const char *agent_id;    /* recorded as who decided; NULL: agent-<component>@<host>:<pid> */
    bool durable;            /* control events through the durable stream (default true) */
    const char *const *evaluator_argv; /* an evaluator command (NULL: none) */
    int evaluator_timeout_ms;          /* default 10000 */
    size_t max_pending;      /* messages waiting to be decided at most (default 10000) */
    int consumer_ack_wait_ms;          /* the durable consumer's ack_wait (default 30000) */
    ms_agent_event_fn on_event;        /* optional, called on the worker or runner thread */
    void *closure;
    /* The program implementing `version add` and `deploy` (the mstack
     * binary): with it, a config with "actions.deploy" has the pipeline go
     * on after test with the framework steps version and deploy. NULL: no
     * framework steps, the pipeline ends after test (a configured deploy
     * section is noted in the log once). Borrowed; copied by
     * ms_agent_create. */
    const char *deploy_program;
    /* NATS_URL in the environment of the framework steps (the server the
     * hosts to promote on run on); NULL: the inherited environment's. An
     * actions.deploy.args "--nats URL" wins over it. Copied. */
    const char *deploy_nats_url;
} ms_agent_options;

void ms_agent_options_init(ms_agent_options *o);

/* Load the component's context and config, check them, and make the agent
 * (not yet reading). *out is the caller's (ms_agent_destroy). Errors name
 * the file: MS_ERR_IO, MS_ERR_PARSE, MS_ERR_SCHEMA (ms_context_load_dir),
 * MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms_agent_create(const ms_agent_options *o, ms_agent **out);

/* Start reading: ensure the control stream (NATS), open the durable
 * consumer agent-<component>, subscribe the monitored topics, start the
 * threads. MS_ERR_STATE (already started), MS_ERR_UNSUPPORTED (no
 * JetStream on the server: use durable = false), bus errors. */
ms_status ms_agent_start(ms_agent *a);

/* Stop reading, finish the messages already taken (their decisions are
 * recorded), wait up to timeout_ms for running pipelines, then kill what
 * is left (those runs end "cancelled" and are escalated). Idempotent.
 * MS_ERR_TIMEOUT when pipelines had to be killed. */
ms_status ms_agent_stop(ms_agent *a, int timeout_ms);

/* Stop (with a 5 s bound) and free. NULL-safe. */
void ms_agent_destroy(ms_agent *a);

/* Decide one message now, on the calling thread, as the worker does:
 * evaluate, record, publish, and start the pipeline or the escalation.
 * *decision_id (may be NULL) gets the recorded decision; *fresh (may be
 * NULL) is false when the message's event was decided before (nothing is
 * done again). For tests and tools; not needed with ms_agent_start. */
ms_status ms_agent_handle(ms_agent *a, const ms_message *msg, int64_t *decision_id, bool *fresh);

/* Wait until nothing is queued and no pipeline runs, up to timeout_ms.
 * MS_ERR_TIMEOUT. */
ms_status ms_agent_wait_idle(ms_agent *a, int timeout_ms);

typedef struct ms_agent_stats {
    uint64_t received, ignored, acted, escalated, redelivered;
    uint64_t runs_started, runs_succeeded, runs_escalated;
    uint64_t pending;  /* queued now */
    uint64_t errors;   /* messages that could not be decided or recorded (logged) */
} ms_agent_stats;

void ms_agent_get_stats(const ms_agent *a, ms_agent_stats *out);
const char *ms_agent_component(const ms_agent *a);

/* Resolve escalation id (registry.h) and, when approved, resume its work:
 * an escalated decision runs the whole pipeline, a failed run resumes at
 * the step that failed. An escalation of the deploy step (a candidate
 * ready to deploy, or a deploy that failed) resumes at deploy with the
 * version it names, and promotes even when autonomy.may_deploy is false:
 * the approval is the permission. Runs in the calling thread and returns
 * when the pipeline ended (*run_state, may be NULL, gets "succeeded",
 * "escalated", "cancelled" or "" when nothing was to run). o gives the bus
 * (may be NULL: nothing is published), the registry, the root, the
 * component directory (NULL: <root>/components/<component>) and
 * deploy_program / deploy_nats_url (needed to run the framework steps).
 * MS_ERR_NOT_FOUND, MS_ERR_STATE (already resolved), the pipeline's
 * errors. */
ms_status ms_agent_resolve_escalation(const ms_agent_options *o, int64_t id, bool approve,
                                      const char *note, const char *by, char run_state[16]);

#ifdef __cplusplus
}
#endif
#endif
