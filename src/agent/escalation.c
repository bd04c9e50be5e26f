/*
 * escalation.c - escalations: opening them (recorded, then published on the
 * component's escalation subject) and resolving them (approve resumes the
 * work: an escalated decision runs the whole pipeline, a failed run resumes
 * at the step that failed, with the input it had; an escalation of the
 * deploy step - a candidate ready to deploy, or a deploy that failed -
 * resumes at deploy with the version its detail names, and the approval is
 * the permission to promote).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/json.h"
#include "mainstack/log.h"

ms_status ms__escalate(const ms__pipeline_env *env, int64_t decision_id, const char *reason,
                       const json_t *detail, int64_t *id)
{
    const char *component = ms_context_component(env->ctx);
    int64_t eid = 0;
    ms_status s = ms_registry_escalate(env->registry, component, decision_id, reason, detail, &eid);
    json_t *event;
    char *text = NULL;
    size_t len = 0;

    if (s != MS_OK)
        return s;
    if (id != NULL)
        *id = eid;
    if (env->bus == NULL)
        return MS_OK;
    event = json_pack("{s:I,s:s,s:s,s:s}", "escalation_id", (json_int_t)eid, "component", component,
                      "reason", reason, "agent", env->agent_id ? env->agent_id : "");
    if (event != NULL && decision_id > 0)
        json_object_set_new(event, "decision_id", json_integer(decision_id));
    if (event != NULL && detail != NULL) {
        json_t *run = json_object_get(detail, "run_id"), *step = json_object_get(detail, "step");

        if (run != NULL)
            json_object_set(event, "run_id", run);
        if (step != NULL)
            json_object_set(event, "step", step);
    }
    /* Recorded is what counts; a publish that fails is logged. */
    if (event == NULL || ms_json_dump(event, &text, &len) != MS_OK ||
        ms_bus_publish(env->bus, ms_agent_config_escalation_subject(env->cfg), text, len) != MS_OK)
        ms_log_kv(MS_LOG_WARN, "agent", "escalation recorded but not published", "component",
                  component, "error", ms_last_error(), NULL);
    free(text);
    json_decref(event);
    return MS_OK;
}

/* --- resolving ------------------------------------------------------------ */

typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;
    char state[16];
} waiter;

static void on_resumed(int64_t run_id, const char *state, void *closure)
{
    waiter *w = closure;

    (void)run_id;
    pthread_mutex_lock(&w->mu);
    snprintf(w->state, sizeof w->state, "%s", state);
    w->done = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* Where an approved escalation resumes: the failed step of a run, else the
 * start of the pipeline. */
static ms_action_kind resume_step(const json_t *detail)
{
    const char *step = json_string_value(json_object_get(detail, "step"));

    for (int k = 0; step != NULL && k < MS_ACTION_KIND_COUNT; k++)
        if (strcmp(step, ms_action_kind_str((ms_action_kind)k)) == 0)
            return (ms_action_kind)k;
    return MS_ACTION_CHANGE;
}

static ms_status resume(const ms_agent_options *o, const json_t *esc, char run_state[16])
{
    const char *component = json_string_value(json_object_get(esc, "component"));
    const json_t *detail = json_object_get(esc, "detail");
    json_t *input = json_object_get(detail, "input");
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    ms_proc_runner *runner = o->runner;
    char *dir = NULL, cwd[4096];
    const char *root = o->root;
    ms__pipeline_env env;
    ms__pipeline_from from = {.step = resume_step(detail)};
    waiter w = {.done = false};
    json_int_t decision_id = json_integer_value(json_object_get(esc, "decision_id"));
    ms_status s;

    if (!json_is_object(input))
        return MS_OK; /* nothing recorded to resume with: approving only resolves */
    if (root == NULL)
        root = getcwd(cwd, sizeof cwd) ? cwd : ".";
    if (o->component_dir == NULL) {
        size_t n = strlen(root) + strlen(component) + 16;

        if ((dir = malloc(n)) == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "resolve: a path");
        snprintf(dir, n, "%s/components/%s", root, component);
    }
    if ((s = ms_context_load_dir(o->component_dir ? o->component_dir : dir, &ctx, &cfg)) != MS_OK)
        goto cleanup;
    if (runner == NULL && (s = ms_proc_runner_create(NULL, &runner)) != MS_OK)
        goto cleanup;
    env = (ms__pipeline_env){
        .bus = o->bus,
        .registry = o->registry,
        .runner = runner,
        .ctx = ctx,
        .cfg = cfg,
        .root = root,
        .component_dir = o->component_dir ? o->component_dir : dir,
        .agent_id = o->agent_id,
        .deploy_program = o->deploy_program,
        .deploy_nats_url = o->deploy_nats_url,
    };
    if (from.step >= MS_ACTION_VERSION) {
        /* a framework step resumes with the version the run had; at deploy
         * the person's approval is the permission to promote */
        from.version = json_string_value(json_object_get(detail, "version"));
        from.approved = from.step == MS_ACTION_DEPLOY;
    } else if (ms_agent_config_deploy(cfg) != NULL && o->deploy_program == NULL) {
        ms_log_kv(MS_LOG_INFO, "agent",
                  "actions.deploy is configured but no deploy program was given: the resumed "
                  "pipeline ends after test",
                  "component", component, NULL);
    }
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    s = ms__pipeline_start(&env, decision_id, input, &from, on_resumed, &w, NULL);
    if (s == MS_OK) {
        pthread_mutex_lock(&w.mu);
        while (!w.done)
            pthread_cond_wait(&w.cv, &w.mu);
        pthread_mutex_unlock(&w.mu);
        if (run_state != NULL)
            snprintf(run_state, 16, "%s", w.state);
    }
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
cleanup:
    if (runner != o->runner)
        ms_proc_runner_destroy(runner);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
    free(dir);
    return s;
}

ms_status ms_agent_resolve_escalation(const ms_agent_options *o, int64_t id, bool approve,
                                      const char *note, const char *by, char run_state[16])
{
    json_t *esc = NULL;
    ms_status s;

    if (run_state != NULL)
        run_state[0] = '\0';
    if (o == NULL || o->registry == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "resolve escalation: options with a registry needed");
    s = ms_registry_escalation_resolve(o->registry, id, approve, note, by, &esc);
    if (s != MS_OK)
        return s;
    if (approve)
        s = resume(o, esc, run_state);
    json_decref(esc);
    return s;
}
