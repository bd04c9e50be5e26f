/*
 * registry.h - the framework's durable state.
 *
 * The registry records what the framework decided and did, so that it can
 * be audited and resumed: every agent decision, the escalations waiting for
 * a person, the runs of an agent's action pipeline, and the state-changing
 * calls made through the framework's front ends (the audit log). Versions
 * and deployments join it with the deployment layer.
 *
 * Storage is one SQLite file (by convention `.mainstack/registry.db` in the
 * project root) in WAL mode: readers never block the writer, and several
 * processes (agents, the CLI, the MCP server) share the file, waiting up to
 * a busy timeout for one another. Every write is one transaction with
 * synchronous=FULL: what a call reported as recorded survives a crash. The
 * schema is versioned (PRAGMA user_version) and migrated at open.
 *
 * The API is narrow on purpose (rows in, JSON out) so that another backend,
 * a NATS JetStream key-value store for a stack spread over machines, can
 * serve it later without changing its callers.
 *
 * Threading: one ms_registry may be used from any number of threads (calls
 * are serialised on a mutex). Results returned as json_t are new references
 * owned by the caller (json_decref).
 *
 * Listing results are JSON arrays of objects, newest first; each object's
 * fields are documented in docs/registry.md. Times are RFC 3339 UTC strings.
 */
#ifndef MAINSTACK_REGISTRY_H
#define MAINSTACK_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_registry ms_registry;

/* The registry file a project root uses: "<root>/.mainstack/registry.db".
 * *out is malloc'd (free()). MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms_registry_default_path(const char *root, char **out);

/* Open (creating the file and its directory when missing) and migrate the
 * registry at path. *out is the caller's (ms_registry_close).
 * MS_ERR_IO (cannot create or open, not a database, locked past the busy
 * timeout: the path and SQLite's reason are named), MS_ERR_UNSUPPORTED
 * (written by a newer mainstack), MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms_registry_open(const char *path, ms_registry **out);
void ms_registry_close(ms_registry *reg); /* NULL-safe */
const char *ms_registry_path(const ms_registry *reg);

/* ---- decisions ------------------------------------------------------- */

/* One decision of an agent. Strings are borrowed for the call. */
typedef struct ms_registry_decision {
    const char *component; /* required */
    const char *decision;  /* required: "ignore", "act" or "escalate" */
    const char *rule;      /* required: the rule that produced it */
    const char *reason;    /* required */
    const char *event_id;  /* the message's id, or NULL: with it, one decision per
                              (component, event id) */
    const char *subject;   /* the message's subject, or NULL */
    const char *type;      /* the message's type name, or NULL */
    const char *agent;     /* who decided (agent instance, host), or NULL */
    const json_t *detail;  /* more JSON (the message, the evaluator's answer), or NULL */
} ms_registry_decision;

/* Record d. *id gets the row id. When d->event_id is set and a decision of
 * the same component for the same event is already recorded, nothing is
 * written, *id is that decision's and *fresh is false: a redelivered event,
 * or one read by two agents of the same component, is decided once. id and
 * fresh may be NULL. MS_ERR_INVALID_ARG (a required field missing, or an
 * unknown decision: named), MS_ERR_IO, MS_ERR_NO_MEMORY. */
ms_status ms_registry_record_decision(ms_registry *reg, const ms_registry_decision *d, int64_t *id,
                                      bool *fresh);

/* Decisions of component (NULL: all), newest first: at most limit (0: 50,
 * capped at 1000), only those with id < before_id when before_id > 0 (the
 * next page starts before the last id of this one). MS_ERR_IO, ... */
ms_status ms_registry_decisions(ms_registry *reg, const char *component, int64_t before_id,
                                size_t limit, json_t **out);

/* ---- escalations ------------------------------------------------------ */

typedef enum ms_escalation_state {
    MS_ESCALATION_OPEN = 0,
    MS_ESCALATION_APPROVED,
    MS_ESCALATION_REJECTED
} ms_escalation_state;

/* "open", "approved", "rejected"; parse is the inverse (MS_ERR_INVALID_ARG). */
const char *ms_escalation_state_str(ms_escalation_state s);
ms_status ms_escalation_state_parse(const char *name, ms_escalation_state *out);

/* Open an escalation for component: why (required) and what a person needs
 * to decide and an agent needs to resume (detail: the message, the pipeline
 * step that stopped, the candidate, ...; borrowed, copied). decision_id
 * links the decision that escalated (0: none). MS_ERR_INVALID_ARG,
 * MS_ERR_IO, MS_ERR_NO_MEMORY. */
ms_status ms_registry_escalate(ms_registry *reg, const char *component, int64_t decision_id,
                               const char *reason, const json_t *detail, int64_t *id);

/* Escalations of component (NULL: all) in state (NULL: any; else a state
 * name), newest first, paged as ms_registry_decisions. */
ms_status ms_registry_escalations(ms_registry *reg, const char *component, const char *state,
                                  int64_t before_id, size_t limit, json_t **out);

/* One escalation. MS_ERR_NOT_FOUND (no such id). */
ms_status ms_registry_escalation_get(ms_registry *reg, int64_t id, json_t **out);

/* Resolve an open escalation: approve or reject, with an optional note and
 * who resolved it (may be NULL). *out (may be NULL) gets the escalation as
 * resolved. MS_ERR_NOT_FOUND, MS_ERR_STATE (already resolved: the detail
 * says how, by whom and when; nothing changes), MS_ERR_IO. Two resolvers
 * racing: exactly one succeeds. */
ms_status ms_registry_escalation_resolve(ms_registry *reg, int64_t id, bool approve,
                                         const char *note, const char *by, json_t **out);

/* ---- pipeline runs ---------------------------------------------------- */

/* A run of an agent's action pipeline (change -> build -> test -> ...),
 * begun for a decision: state "running" at step "". MS_ERR_INVALID_ARG,
 * MS_ERR_IO. */
ms_status ms_registry_run_begin(ms_registry *reg, const char *component, int64_t decision_id,
                                int64_t *run_id);

/* Record the run's progress: the step it is at or finished ("change",
 * "build", ...), its state ("running", "succeeded", "failed", "escalated",
 * "cancelled") and detail JSON for the step (exit status, duration, log
 * file; borrowed, appended to the run's list of steps). A run that ended
 * (any state but running) cannot be updated again: MS_ERR_STATE.
 * MS_ERR_NOT_FOUND, MS_ERR_INVALID_ARG (unknown state), MS_ERR_IO. */
ms_status ms_registry_run_update(ms_registry *reg, int64_t run_id, const char *step,
                                 const char *state, const json_t *detail);

/* One run, or the runs of component (NULL: all), newest first, paged. */
ms_status ms_registry_run_get(ms_registry *reg, int64_t run_id, json_t **out);
ms_status ms_registry_runs(ms_registry *reg, const char *component, int64_t before_id, size_t limit,
                           json_t **out);

/* ---- audit log -------------------------------------------------------- */

/* Record a state-changing call: who (the client or user, required), what
 * (the action, required: "escalation.resolve", "deploy", ...), on which
 * component (NULL: none), its outcome ("ok" or the error text; required)
 * and detail (borrowed). MS_ERR_INVALID_ARG, MS_ERR_IO. */
ms_status ms_registry_audit(ms_registry *reg, const char *actor, const char *action,
                            const char *component, const char *outcome, const json_t *detail);

/* Audit entries of component (NULL: all), newest first, paged. */
ms_status ms_registry_audit_log(ms_registry *reg, const char *component, int64_t before_id,
                                size_t limit, json_t **out);

/* --- component versions and deploy locks (schema 2) --------------------------
 * A version row: {"component","version","sha256","artifact_dir","state",
 * "added_time","state_time","detail"}. States: candidate, testing, active,
 * previous, rejected, rolled-back (ms_version_state_valid). */

/* True for one of the six state names. */
bool ms_registry_version_state_valid(const char *state);

/*
 * Record version of component with the content hash sha256 and the
 * directory holding its artifacts, in state candidate. The same version
 * with the same sha256 again changes nothing (*fresh false); with another
 * sha256 it is refused: MS_ERR_STATE naming both hashes. fresh may be
 * NULL. MS_ERR_INVALID_ARG, MS_ERR_IO.
 */
ms_status ms_registry_version_add(ms_registry *reg, const char *component, const char *version,
                                  const char *sha256, const char *artifact_dir,
                                  const json_t *detail, bool *fresh);

/* One version row (*out is the caller's). MS_ERR_NOT_FOUND (naming the
 * versions that exist), MS_ERR_INVALID_ARG, MS_ERR_IO. */
ms_status ms_registry_version_get(ms_registry *reg, const char *component, const char *version,
                                  json_t **out);

/* Every version of component, oldest first, as an array. MS_ERR_INVALID_ARG,
 * MS_ERR_IO. */
ms_status ms_registry_versions(ms_registry *reg, const char *component, json_t **out);

/* Set a version's state (and state_time; {"state","time"} is appended to
 * the row's detail.history, so the time each state was entered is kept;
 * the state candidate of version_add is its added_time). MS_ERR_INVALID_ARG (unknown
 * state: the valid ones are listed), MS_ERR_NOT_FOUND, MS_ERR_IO. */
ms_status ms_registry_version_set_state(ms_registry *reg, const char *component,
                                        const char *version, const char *state);

/* One state change of a transition: version goes to state. */
typedef struct ms_version_change {
    const char *version;
    const char *state;
} ms_version_change;

/*
 * Several state changes of component's versions and, when deployment_id >
 * 0, the step (step, outcome, detail as ms_registry_deployment_update) of
 * that deployment, in one transaction: all of it is on disk or none of it,
 * so a process killed at any instant never leaves two versions active or a
 * promotion recorded without its states. After the changes at most one
 * version may be active: otherwise MS_ERR_STATE and nothing changes.
 * changes (borrowed) may be NULL when n is 0 (a step alone).
 * MS_ERR_INVALID_ARG (a bad state, step or outcome), MS_ERR_NOT_FOUND (a
 * version or the deployment is not recorded: nothing changes), MS_ERR_IO.
 */
ms_status ms_registry_version_transition(ms_registry *reg, const char *component,
                                         const ms_version_change *changes, size_t n,
                                         int64_t deployment_id, const char *step,
                                         const char *outcome, const json_t *detail);

/* At most this many versions change in one promotion (older ones are left). */
#define MS_REGISTRY_PROMOTE_MAX_CHANGES 16

/*
 * The promotion's transition, in one transaction with the deployment's
 * step (deployment_id > 0): version becomes active, the version that was
 * active becomes previous, a version that was previous becomes candidate
 * (the states are read inside the transaction). Statuses as
 * ms_registry_version_transition.
 */
ms_status ms_registry_version_promote(ms_registry *reg, const char *component, const char *version,
                                      int64_t deployment_id, const char *step, const char *outcome,
                                      const json_t *detail);

/*
 * Take the deploy lock of component for holder (who: "user@host pid N").
 * Held by another: MS_ERR_STATE, "deploy of <component> is locked by
 * <holder> since <time>". The same holder again: MS_OK. MS_ERR_INVALID_ARG,
 * MS_ERR_IO.
 */
ms_status ms_registry_deploy_lock(ms_registry *reg, const char *component, const char *holder);
/* Release it (only the holder can: MS_ERR_STATE otherwise; not held:
 * MS_OK). */
ms_status ms_registry_deploy_unlock(ms_registry *reg, const char *component, const char *holder);

/* --- deployments (schema 2) ---------------------------------------------------
 * A deployment row: {"id","time","component","from_version" (null: nothing
 * was active),"to_version","kind","state","updated_time","detail"}, detail
 * being {"who","step" (the last one),"result" (the last step's detail),
 * "steps": [{"step","outcome","time","detail"}, ...]}. state is the last
 * outcome; "running" from begin until the first update. */

/* Begin a deployment of component from from_version (NULL or "": none
 * active) to to_version by who ("user@host pid N"). *id gets its id.
 * MS_ERR_INVALID_ARG, MS_ERR_IO. */
ms_status ms_registry_deployment_begin(ms_registry *reg, const char *component,
                                       const char *from_version, const char *to_version,
                                       const char *who, int64_t *id);

/* ms_registry_deployment_begin with, in the same transaction, the state
 * changes (borrowed; e.g. the candidate to testing) and request (borrowed,
 * copied; may be NULL) kept as detail.request: what was asked, so that a
 * later process can finish an interrupted deployment. Statuses as begin,
 * and MS_ERR_NOT_FOUND (a version not recorded: nothing is begun). */
ms_status ms_registry_deployment_start(ms_registry *reg, const char *component,
                                       const char *from_version, const char *to_version,
                                       const char *who, const json_t *request,
                                       const ms_version_change *changes, size_t n, int64_t *id);

/* Record that step finished with outcome (both 1..32 of [a-z0-9-]: "test"
 * "passed", "compare" "rejected", ...): the outcome becomes the state and
 * {step, outcome, time, detail} is appended (detail borrowed, copied; may
 * be NULL). MS_ERR_NOT_FOUND, MS_ERR_INVALID_ARG, MS_ERR_IO. */
ms_status ms_registry_deployment_update(ms_registry *reg, int64_t id, const char *step,
                                        const char *outcome, const json_t *detail);

/* One deployment (MS_ERR_NOT_FOUND), or those of component (NULL: all),
 * newest first, paged as ms_registry_decisions. */
ms_status ms_registry_deployment_get(ms_registry *reg, int64_t id, json_t **out);
ms_status ms_registry_deployments(ms_registry *reg, const char *component, int64_t before_id,
                                  size_t limit, json_t **out);

/* Who holds the deploy lock of component: {"component","holder","time"}.
 * MS_ERR_NOT_FOUND (not locked), MS_ERR_INVALID_ARG, MS_ERR_IO. (A caller
 * that finds the holder dead releases it with ms_registry_deploy_unlock
 * under the holder's name.) */
ms_status ms_registry_deploy_lock_get(ms_registry *reg, const char *component, json_t **out);

#ifdef __cplusplus
}
#endif
#endif
