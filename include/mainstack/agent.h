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

#include "mainstack/context.h"
#include "mainstack/message.h"
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

#ifdef __cplusplus
}
#endif
#endif
