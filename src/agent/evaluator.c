/*
 * evaluator.c - consulting an evaluator command (any program: an LLM front
 * end, a script) about a decision, within the bounds of the policy.
 *
 * The command gets {"message", "context", "config", "policy"} on stdin
 * (policy: the decision the rules made) and prints one JSON object
 * {"decision", "rule", "reason"}. Its answer can only make the agent more
 * careful, never less:
 *   policy escalate -> stays escalate (a person was going to decide);
 *   policy act      -> act, ignore or escalate as the evaluator says;
 *   policy ignore   -> ignore, or escalate when the evaluator says so; an
 *                      "act" is refused (that would widen the rules).
 * A command that fails, hangs or prints something else leaves the policy's
 * decision, with a note in its reason.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "mainstack/json.h"

#define EVAL_OUTPUT_MAX (256u << 10)

static void note(ms_decision *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(ms_decision *d, const char *fmt, ...)
{
    size_t n = strlen(d->reason);
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(d->reason + n, sizeof d->reason - n, fmt, ap);
    va_end(ap);
}

void ms__evaluator_consult(const char *const *argv, int timeout_ms, const ms_message *msg,
                           const ms_context *ctx, const ms_agent_config *cfg, ms_decision *d)
{
    json_t *input = NULL, *policy = NULL, *answer = NULL;
    char *text = NULL;
    size_t len = 0;
    ms_proc_spec spec;
    ms_proc_result res;
    ms_decision e;

    ms_proc_result_init(&res);
    if (ms_agent_input_json(msg, ctx, cfg, &input) != MS_OK ||
        ms_decision_to_json(d, NULL, NULL, &policy) != MS_OK ||
        json_object_set_new(input, "policy", policy) != 0) {
        note(d, " (evaluator not consulted: %s)", ms_last_error());
        goto cleanup;
    }
    if (ms_json_dump(input, &text, &len) != MS_OK) {
        note(d, " (evaluator not consulted: %s)", ms_last_error());
        goto cleanup;
    }
    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.stdin_data = text;
    spec.stdin_len = len;
    spec.timeout_ms = timeout_ms > 0 ? timeout_ms : 10000;
    spec.grace_ms = 500;
    spec.capture_max = EVAL_OUTPUT_MAX;
    if (ms_proc_run(&spec, &res) != MS_OK) {
        note(d, " (evaluator failed: %s)", ms_last_error());
        goto cleanup;
    }
    if (res.timed_out || res.exit_code != 0 || res.output_truncated) {
        char why[96];

        snprintf(why, sizeof why, "%s",
                 res.timed_out          ? "no answer within its time limit"
                 : res.output_truncated ? "answer too long"
                                        : "non-zero exit");
        note(d, " (evaluator ignored: %s)", why);
        goto cleanup;
    }
    if (ms_json_parse(res.output, res.output_len, "evaluator output", &answer) != MS_OK ||
        ms_decision_from_json(answer, "evaluator output", &e) != MS_OK) {
        note(d, " (evaluator ignored: %s)", ms_last_error());
        goto cleanup;
    }
    if (d->verdict == MS_VERDICT_ESCALATE && e.verdict != MS_VERDICT_ESCALATE) {
        note(d, " (the evaluator's %s was not taken: the policy escalates)",
             ms_verdict_str(e.verdict));
    } else if (d->verdict == MS_VERDICT_IGNORE && e.verdict == MS_VERDICT_ACT) {
        note(d, " (the evaluator's %s was refused: it would widen the rules)", "act");
    } else if (e.verdict != d->verdict || e.reason[0] != '\0') {
        char reason[sizeof d->reason];

        snprintf(reason, sizeof reason, "evaluator: %.1800s (policy %s by %.90s)",
                 e.reason[0] ? e.reason : "(no reason given)", ms_verdict_str(d->verdict), d->rule);
        d->verdict = e.verdict;
        snprintf(d->rule, sizeof d->rule, "evaluator:%.80s", e.rule[0] ? e.rule : "answer");
        snprintf(d->reason, sizeof d->reason, "%s", reason);
    }
cleanup:
    ms_proc_result_reset(&res);
    json_decref(answer);
    json_decref(input);
    free(text);
}
