/*
 * agent_internal.h - what the files of the agent runner share (internal).
 *
 * agent.c       the ms_agent object: intake (durable consumer, monitored
 *               topics), the worker that decides, recording, publishing
 * evaluator.c   consulting an evaluator command, bounded by the policy
 * pipeline.c    one run of the action pipeline on the proc runner
 * escalation.c  opening escalations (record + publish), resolving them
 */
#ifndef MS_AGENT_INTERNAL_H
#define MS_AGENT_INTERNAL_H

#include <stdint.h>

#include "mainstack/agent.h"

/* What a pipeline run needs; all borrowed for the run's life (the agent or
 * the resolving call outlives its runs). */
typedef struct ms__pipeline_env {
    ms_bus *bus; /* NULL: nothing is published */
    ms_registry *registry;
    ms_proc_runner *runner;
    const ms_context *ctx;
    const ms_agent_config *cfg;
    const char *root;
    const char *component_dir;
    const char *agent_id;
    const char *deploy_program;  /* NULL: no framework steps (version, deploy) */
    const char *deploy_nats_url; /* NATS_URL of the framework steps; NULL: inherited */
} ms__pipeline_env;

/* Where a run starts: the first step, and for a run resumed at the deploy
 * step the version it deploys and whether a person approved it (then
 * deploy promotes whatever autonomy.may_deploy says). */
typedef struct ms__pipeline_from {
    ms_action_kind step;
    const char *version; /* borrowed for the call (copied); NULL before the version step */
    bool approved;
} ms__pipeline_from;

/* Called once when a run ended, on the runner's thread (or the starting
 * thread when it could not start a step). state: "succeeded", "escalated"
 * or "cancelled". */
typedef void (*ms__pipeline_done_fn)(int64_t run_id, const char *state, void *closure);

/* Begin a run for decision_id at from->step (NULL: change; later steps
 * follow), with input (the evaluator-style JSON the commands get on stdin;
 * a reference is taken). MS_OK: done will be called exactly once. On
 * failure nothing was started and done is not called. */
ms_status ms__pipeline_start(const ms__pipeline_env *env, int64_t decision_id, json_t *input,
                             const ms__pipeline_from *from, ms__pipeline_done_fn done,
                             void *closure, int64_t *run_id);

/* Open an escalation (registry) and publish it on the config's escalation
 * subject (when env->bus). detail is borrowed. */
ms_status ms__escalate(const ms__pipeline_env *env, int64_t decision_id, const char *reason,
                       const json_t *detail, int64_t *id);

/* Ask the evaluator command about msg; narrow d by its answer, never widen
 * it (see evaluator.c). Failures leave d as it was, with a note in its
 * reason. */
void ms__evaluator_consult(const char *const *argv, int timeout_ms, const ms_message *msg,
                           const ms_context *ctx, const ms_agent_config *cfg, ms_decision *d);

/* "<root>/.mainstack/runs/<component>", where the step logs go
 * (<run id>.<step>.log): malloc'd, made (mkdir -p). */
ms_status ms__run_dir(const char *root, const char *component, char **out);

#endif
