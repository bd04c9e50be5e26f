/*
 * pipeline.c - one run of an agent's action pipeline: change -> build ->
 * test, each the argv command of agent-config.json.
 *
 * A run is a small state machine driven by the proc runner's callbacks: a
 * step starts, its callback records the step in the registry and starts the
 * next one, or opens an escalation when the step failed (it could not
 * start, exited non-zero, was killed, or ran out of time). Steps the config
 * does not define are skipped. Every step gets the same input on stdin (the
 * message, context, config and decision as JSON) and
 * MAINSTACK_* variables, never anything spliced into its argv; it runs in the
 * project root with its output appended to
 * <root>/.mainstack/runs/<component>/<run id>.<step>.log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "mainstack/json.h"
#include "mainstack/log.h"

#define STEP_TIMEOUT_DEFAULT_S 600
#define LOG_MAX (16u << 20)
#define TAIL_MAX 4096
#define ENV_FIXED 11

typedef struct run {
    ms__pipeline_env env; /* strings and objects borrowed from the owner */
    ms_context *ctx;      /* references held for the run */
    ms_agent_config *cfg;
    int64_t run_id, decision_id;
    json_t *input;
    char *input_text; /* input serialised: stdin of every step */
    size_t input_len;
    char *dir;
    int step; /* the ms_action_kind running or next */
    ms__pipeline_done_fn done;
    void *closure;
} run;

static void run_free(run *r)
{
    if (r == NULL)
        return;
    ms_context_unref(r->ctx);
    ms_agent_config_unref(r->cfg);
    json_decref(r->input);
    free(r->input_text);
    free(r->dir);
    ms__free(r);
}

ms_status ms__run_dir(const char *root, const char *component, char **out)
{
    size_t n = strlen(root) + strlen(component) + 64;
    char *p = malloc(n);
    ms_status s;

    if (p == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "pipeline: a path");
    snprintf(p, n, "%s/.mainstack/runs/%s", root, component);
    if ((s = ms__mkdirs(p, 0755, "run logs")) != MS_OK) {
        free(p);
        return s;
    }
    *out = p;
    return MS_OK;
}

static const char *json_str(const json_t *obj, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(obj, path1);

    if (path2 != NULL)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

/* The run ended: record, tell the owner, free. */
static void finish(run *r, const char *state)
{
    ms__pipeline_done_fn done = r->done;
    void *closure = r->closure;
    int64_t id = r->run_id;

    done(id, state, closure);
    run_free(r);
}

/* Open the escalation of a failed step and end the run. */
static void fail_step(run *r, const char *step, const ms_proc_result *res, const char *why,
                      const char *log_path)
{
    json_t *detail = json_pack("{s:I,s:s,s:s,s:O}", "run_id", (json_int_t)r->run_id, "step", step,
                               "log", log_path ? log_path : "", "input", r->input);
    char reason[1024];
    const char *state = "escalated";

    if (res != NULL && detail != NULL) {
        json_object_set_new(detail, "exit_code", json_integer(res->exit_code));
        json_object_set_new(detail, "term_signal", json_integer(res->term_signal));
        json_object_set_new(detail, "timed_out", json_boolean(res->timed_out));
        json_object_set_new(detail, "duration_ms",
                            json_integer((json_int_t)(res->duration_ns / 1000000)));
        if (res->output != NULL)
            json_object_set_new(detail, "output_tail", json_stringn(res->output, res->output_len));
        if (res->killed)
            state = "cancelled";
    }
    snprintf(reason, sizeof reason, "%s step %s: %s (log: %s)",
             strcmp(state, "cancelled") == 0 ? "cancelled at" : "failed at", step, why,
             log_path ? log_path : "none");
    if (ms_registry_run_update(r->env.registry, r->run_id, step, "escalated", detail) != MS_OK)
        ms_log_kv(MS_LOG_ERROR, "agent", "recording a failed step", "error", ms_last_error(), NULL);
    if (ms__escalate(&r->env, r->decision_id, reason, detail, NULL) != MS_OK)
        ms_log_kv(MS_LOG_ERROR, "agent", "opening an escalation", "error", ms_last_error(), NULL);
    json_decref(detail);
    finish(r, state);
}

static void start_from(run *r);

static void step_done(ms_proc_result *res, void *closure)
{
    run *r = closure;
    const char *step = ms_action_kind_str((ms_action_kind)r->step);
    char log_path[4200], why[300];
    json_t *detail;

    snprintf(log_path, sizeof log_path, "%s/%lld.%s.log", r->dir, (long long)r->run_id, step);
    if (res->spawn_failed || res->killed || res->timed_out || res->exit_code != 0) {
        if (res->spawn_failed)
            snprintf(why, sizeof why, "could not start: %s", res->error);
        else if (res->killed)
            snprintf(why, sizeof why, "killed (the agent stopped)");
        else if (res->timed_out)
            snprintf(why, sizeof why, "no result within its time limit (%lld ms), killed",
                     (long long)(res->duration_ns / 1000000));
        else if (res->term_signal != 0)
            snprintf(why, sizeof why, "killed by signal %d", res->term_signal);
        else
            snprintf(why, sizeof why, "exit status %d", res->exit_code);
        fail_step(r, step, res, why, log_path);
        return;
    }
    detail = json_pack("{s:i,s:I,s:s}", "exit_code", res->exit_code, "duration_ms",
                       (json_int_t)(res->duration_ns / 1000000), "log", log_path);
    if (ms_registry_run_update(r->env.registry, r->run_id, step, "running", detail) != MS_OK)
        ms_log_kv(MS_LOG_ERROR, "agent", "recording a step", "error", ms_last_error(), NULL);
    json_decref(detail);
    r->step++;
    start_from(r);
}

/* Start the first defined step at or after r->step; end the run when none
 * is left. */
static void start_from(run *r)
{
    const ms_agent_action *a = NULL;

    while (r->step < MS_ACTION_KIND_COUNT &&
           (a = ms_agent_config_action(r->cfg, (ms_action_kind)r->step)) == NULL)
        r->step++;
    if (r->step >= MS_ACTION_KIND_COUNT) {
        const char *last = "test";

        if (ms_registry_run_update(r->env.registry, r->run_id, last, "succeeded", NULL) != MS_OK)
            ms_log_kv(MS_LOG_ERROR, "agent", "recording a run's end", "error", ms_last_error(),
                      NULL);
        finish(r, "succeeded");
        return;
    }

    const char *step = ms_action_kind_str((ms_action_kind)r->step);
    const char *component = ms_context_component(r->ctx);
    char log_path[4200], run_id[32], decision_id[32];
    char env_buf[ENV_FIXED][4300];
    const char **env = NULL;
    ms_proc_spec spec;
    ms_status s;
    size_t n = 0;

    snprintf(log_path, sizeof log_path, "%s/%lld.%s.log", r->dir, (long long)r->run_id, step);
    snprintf(run_id, sizeof run_id, "%lld", (long long)r->run_id);
    snprintf(decision_id, sizeof decision_id, "%lld", (long long)r->decision_id);
    env = ms__calloc(a->env_count + ENV_FIXED + 1, sizeof *env);
    if (env == NULL) {
        fail_step(r, step, NULL, "out of memory preparing the step", NULL);
        return;
    }
    /* The config's entries first, formatted on the heap ("NAME=value");
     * the fixed MAINSTACK_* ones after them, so they win over the config. */
    for (size_t i = 0; i < a->env_count; i++) {
        size_t len = strlen(a->env[i].name) + strlen(a->env[i].value) + 2;
        char *e = malloc(len);

        if (e == NULL) {
            for (size_t j = 0; j < n; j++)
                free((void *)env[j]);
            ms__free(env);
            fail_step(r, step, NULL, "out of memory preparing the step", NULL);
            return;
        }
        snprintf(e, len, "%s=%s", a->env[i].name, a->env[i].value);
        env[n++] = e;
    }
    size_t config_env = n;
    const char *fixed[ENV_FIXED][2] = {
        {"MAINSTACK_COMPONENT", component},
        {"MAINSTACK_COMPONENT_DIR", r->env.component_dir},
        {"MAINSTACK_ROOT", r->env.root},
        {"MAINSTACK_STEP", step},
        {"MAINSTACK_RUN_ID", run_id},
        {"MAINSTACK_LOG", log_path},
        {"MAINSTACK_DECISION_ID", decision_id},
        {"MAINSTACK_EVENT_ID", json_str(r->input, "message", "id")},
        {"MAINSTACK_EVENT_SUBJECT", json_str(r->input, "message", "subject")},
        {"MAINSTACK_EVENT_TYPE", json_str(r->input, "message", "type")},
        {"MAINSTACK_RULE", json_str(r->input, "decision", "rule")},
    };
    for (size_t i = 0; i < ENV_FIXED; i++) {
        snprintf(env_buf[i], sizeof env_buf[i], "%s=%s", fixed[i][0],
                 fixed[i][1] ? fixed[i][1] : "");
        env[n++] = env_buf[i];
    }
    env[n] = NULL;
    ms_proc_spec_init(&spec);
    spec.argv = a->argv;
    spec.env = env;
    spec.cwd = r->env.root;
    spec.stdin_data = r->input_text;
    spec.stdin_len = r->input_len;
    spec.timeout_ms = (int)((a->timeout_s > 0 ? a->timeout_s : STEP_TIMEOUT_DEFAULT_S) * 1000);
    spec.log_path = log_path;
    spec.log_max = LOG_MAX;
    spec.capture_max = TAIL_MAX;
    s = ms_proc_runner_start(r->env.runner, &spec, step_done, r, NULL);
    for (size_t i = 0; i < config_env; i++)
        free((void *)env[i]);
    ms__free(env);
    if (s != MS_OK) {
        char why[300];

        snprintf(why, sizeof why, "could not be queued: %s", ms_last_error());
        fail_step(r, step, NULL, why, log_path);
    }
}

ms_status ms__pipeline_start(const ms__pipeline_env *env, int64_t decision_id, json_t *input,
                             ms_action_kind from, ms__pipeline_done_fn done, void *closure,
                             int64_t *run_id)
{
    run *r = NULL;
    ms_status s;

    if ((r = ms__calloc(1, sizeof *r)) == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "pipeline: allocating a run");
    r->env = *env;
    r->ctx = ms_context_ref((ms_context *)env->ctx);
    r->cfg = ms_agent_config_ref((ms_agent_config *)env->cfg);
    r->input = json_incref(input);
    r->decision_id = decision_id;
    r->step = (int)from;
    r->done = done;
    r->closure = closure;
    if ((s = ms_json_dump(input, &r->input_text, &r->input_len)) != MS_OK)
        goto fail;
    s = ms_registry_run_begin(env->registry, ms_context_component(env->ctx), decision_id,
                              &r->run_id);
    if (s != MS_OK)
        goto fail;
    if ((s = ms__run_dir(env->root, ms_context_component(env->ctx), &r->dir)) != MS_OK)
        goto fail_run;
    if (run_id != NULL)
        *run_id = r->run_id;
    start_from(r); /* from here on, done is called exactly once */
    return MS_OK;
fail_run:
    (void)ms_registry_run_update(env->registry, r->run_id, "", "failed", NULL);
fail:
    run_free(r);
    return s;
}
