/*
 * pipeline.c - one run of an agent's action pipeline: change -> build ->
 * test, each the argv command of agent-config.json, then, when the config
 * has "actions.deploy" and the agent knows the mstack program, the
 * framework steps version -> deploy.
 *
 * A run is a small state machine driven by the proc runner's callbacks: a
 * step starts, its callback records the step in the registry and starts the
 * next one, or opens an escalation when the step failed (it could not
 * start, exited non-zero, was killed, or ran out of time). Command steps the
 * config does not define are skipped. Every step gets the same input on
 * stdin (the message, context, config and decision as JSON) and MAINSTACK_*
 * variables, never anything spliced into its argv; it runs in the project
 * root with its output appended to
 * <root>/.mainstack/runs/<component>/<run id>.<step>.log.
 *
 * The framework steps' argv is built here, from the config and the run:
 *   version: <mstack> version add <component> <build_dir> --root <root> --json
 *   deploy:  <mstack> deploy <component> <version> --root <root> --json
 *            [--no-promote] [actions.deploy.args...]
 * and the JSON each prints is read back from the captured output (the
 * version recorded; the deploy's outcome, deployment and comparison).
 * --no-promote is given unless autonomy.may_deploy or a person's approval
 * allows the promotion; a candidate that passed without it ends the run in
 * an escalation that a person approves to deploy it.
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
#define FRAMEWORK_CAPTURE_MAX (1u << 20) /* a framework step's JSON is parsed from it */
#define ENV_FIXED 12                     /* the MAINSTACK_* variables and NATS_URL */
#define VERSION_MAX 64
#define FRAMEWORK_ARGV_MAX 10 /* the argv a framework step has before its args */

typedef struct run {
    ms__pipeline_env env; /* strings and objects borrowed from the owner */
    ms_context *ctx;      /* references held for the run */
    ms_agent_config *cfg;
    int64_t run_id, decision_id;
    json_t *input;
    char *input_text; /* input serialised: stdin of every step */
    size_t input_len;
    char *dir;
    int step;                  /* the ms_action_kind running or next */
    int first_step;            /* where the run began */
    const char *last_step;     /* the last step that ran ("test" when none did) */
    char version[VERSION_MAX]; /* the version step's, or the resumed run's; "" before */
    int64_t deployment;        /* the deploy step's deployment id; 0 before */
    bool approved;             /* a person approved: deploy promotes */
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

/* True when the framework steps can run: the config asks for them and the
 * owner named the program. */
static bool framework_on(const run *r)
{
    return r->env.deploy_program != NULL && ms_agent_config_deploy(r->cfg) != NULL;
}

/* The deploy step promotes: the config allows it, or a person approved. */
static bool may_promote(const run *r)
{
    return r->approved || ms_agent_config_may_deploy(r->cfg);
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

/* The version and deployment of the run, as members of a step's detail. */
static void add_version(const run *r, json_t *detail)
{
    if (detail == NULL)
        return;
    if (r->version[0] != '\0')
        json_object_set_new(detail, "version", json_string(r->version));
    if (r->deployment > 0)
        json_object_set_new(detail, "deployment", json_integer((json_int_t)r->deployment));
}

/* Open the escalation of a failed step and end the run. extra (borrowed,
 * may be NULL): members added to the escalation's detail. */
static void fail_step(run *r, const char *step, const ms_proc_result *res, const char *why,
                      const char *log_path, const json_t *extra)
{
    json_t *detail = json_pack("{s:I,s:s,s:s,s:O}", "run_id", (json_int_t)r->run_id, "step", step,
                               "log", log_path ? log_path : "", "input", r->input);
    char reason[3072];
    const char *state = "escalated";

    if (res != NULL && detail != NULL) {
        json_object_set_new(detail, "exit_code", json_integer(res->exit_code));
        json_object_set_new(detail, "term_signal", json_integer(res->term_signal));
        json_object_set_new(detail, "timed_out", json_boolean(res->timed_out));
        json_object_set_new(detail, "duration_ms",
                            json_integer((json_int_t)(res->duration_ns / 1000000)));
        if (res->output != NULL) {
            size_t n = res->output_len, off = n > TAIL_MAX ? n - TAIL_MAX : 0;
            json_object_set_new(detail, "output_tail", json_stringn(res->output + off, n - off));
        }
        if (res->killed)
            state = "cancelled";
    }
    add_version(r, detail);
    if (detail != NULL && extra != NULL)
        json_object_update(detail, (json_t *)extra);
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

/* The JSON object a framework step printed: the first '{' at the start of
 * a line from which an object parses (a warning on stderr may come before
 * it, in the same captured stream). A new reference, or NULL. */
static json_t *printed_object(const ms_proc_result *res)
{
    const char *p = res->output;
    size_t n = res->output_len;

    for (size_t i = 0; p != NULL && i < n; i++) {
        if (p[i] == '{' && (i == 0 || p[i - 1] == '\n')) {
            json_error_t jerr;
            json_t *j = json_loadb(p + i, n - i, JSON_DISABLE_EOF_CHECK, &jerr);

            if (json_is_object(j))
                return j;
            json_decref(j);
        }
    }
    return NULL;
}

/* The last line of a step's output that is not blank, or "". */
static void last_line(const ms_proc_result *res, char *out, size_t cap)
{
    const char *p = res->output ? res->output : "";
    size_t end = res->output ? res->output_len : 0, begin;

    out[0] = '\0';
    while (end > 0 && (p[end - 1] == '\n' || p[end - 1] == '\r' || p[end - 1] == ' '))
        end--;
    begin = end;
    while (begin > 0 && p[begin - 1] != '\n')
        begin--;
    snprintf(out, cap, "%.*s", (int)(end - begin), p + begin);
}

/* Record a step that succeeded and go on with the next. */
static void step_passed(run *r, const char *step, const ms_proc_result *res, const char *log_path,
                        const json_t *extra)
{
    json_t *detail = json_pack("{s:i,s:I,s:s}", "exit_code", res->exit_code, "duration_ms",
                               (json_int_t)(res->duration_ns / 1000000), "log", log_path);

    if (r->step >= MS_ACTION_VERSION)
        add_version(r, detail);
    if (detail != NULL && extra != NULL)
        json_object_update(detail, (json_t *)extra);
    if (ms_registry_run_update(r->env.registry, r->run_id, step, "running", detail) != MS_OK)
        ms_log_kv(MS_LOG_ERROR, "agent", "recording a step", "error", ms_last_error(), NULL);
    json_decref(detail);
    r->last_step = step;
    r->step++;
}

static void start_from(run *r);

/* version add ended with exit 0: read the version it recorded. */
static void version_done(run *r, const ms_proc_result *res, const char *log_path)
{
    json_t *out = printed_object(res), *extra = NULL;
    const char *v = json_string_value(json_object_get(out, "version"));
    char line[1024], why[1400];

    if (res->exit_code != 0) {
        /* e.g. the same version with other content: the change forgot to bump it */
        last_line(res, line, sizeof line);
        snprintf(why, sizeof why, "version add was refused (exit status %d): %s", res->exit_code,
                 line[0] ? line : "it printed nothing");
        fail_step(r, "version", res, why, log_path, NULL);
        goto cleanup;
    }
    if (v == NULL || v[0] == '\0' || strlen(v) >= sizeof r->version) {
        fail_step(r, "version", res,
                  "version add printed no version (expected the JSON of mstack version add "
                  "--json on its output)",
                  log_path, NULL);
        goto cleanup;
    }
    snprintf(r->version, sizeof r->version, "%s", v);
    extra = json_pack("{s:O?,s:O?}", "sha256", json_object_get(out, "sha256"), "fresh",
                      json_object_get(out, "fresh"));
    step_passed(r, "version", res, log_path, extra);
    start_from(r);
cleanup:
    json_decref(extra);
    json_decref(out);
}

/* The tested candidate passed but may not be deployed without a person:
 * the run ends in an escalation; approving it resumes at deploy, with the
 * promotion. */
static void await_approval(run *r, const ms_proc_result *res, const char *log_path,
                           const json_t *out)
{
    const char *component = ms_context_component(r->ctx);
    json_t *detail = json_pack("{s:I,s:s,s:s,s:s,s:I,s:b,s:O?,s:s,s:O,s:i,s:I}", "run_id",
                               (json_int_t)r->run_id, "step", "deploy", "version", r->version,
                               "outcome", "ready", "deployment", (json_int_t)r->deployment, "ready",
                               1, "table", json_object_get(json_object_get(out, "detail"), "table"),
                               "log", log_path, "input", r->input, "exit_code", res->exit_code,
                               "duration_ms", (json_int_t)(res->duration_ns / 1000000));
    char reason[512];

    snprintf(reason, sizeof reason,
             "%s %s passed test-both (deployment %lld): ready to deploy; approve to deploy it",
             component, r->version, (long long)r->deployment);
    if (ms_registry_run_update(r->env.registry, r->run_id, "deploy", "escalated", detail) != MS_OK)
        ms_log_kv(MS_LOG_ERROR, "agent", "recording a step", "error", ms_last_error(), NULL);
    if (ms__escalate(&r->env, r->decision_id, reason, detail, NULL) != MS_OK)
        ms_log_kv(MS_LOG_ERROR, "agent", "opening an escalation", "error", ms_last_error(), NULL);
    json_decref(detail);
    finish(r, "escalated");
}

/* Why a deploy that printed out (may be NULL) did not deploy, in words:
 * its outcome and, for a rejection, the failing tests. */
static void deploy_failure(const run *r, const ms_proc_result *res, const json_t *out, char *why,
                           size_t cap)
{
    const char *component = ms_context_component(r->ctx);
    const char *outcome = json_string_value(json_object_get(out, "outcome"));
    const json_t *detail = json_object_get(out, "detail");
    const json_t *promotion = json_object_get(out, "promotion");
    char line[1024];
    int n;

    if (outcome == NULL) {
        last_line(res, line, sizeof line);
        snprintf(why, cap, "deploy of %s %s failed (exit status %d): %s", component, r->version,
                 res->exit_code, line[0] ? line : "it printed nothing");
        return;
    }
    n = snprintf(why, cap, "deploy of %s %s: outcome %s (deployment %lld)", component, r->version,
                 outcome, (long long)r->deployment);
    if (n < 0 || (size_t)n >= cap)
        return;
    if (strcmp(outcome, "rejected") == 0) {
        const json_t *failures = json_object_get(detail, "failures"), *f;
        size_t i;

        n += snprintf(why + n, cap - (size_t)n,
                      ": failing test%s:", json_array_size(failures) == 1 ? "" : "s");
        json_array_foreach(failures, i, f)
        {
            if ((size_t)n >= cap)
                break;
            n += snprintf(why + n, cap - (size_t)n, "%s %s", i == 0 ? "" : ",",
                          json_str(f, "test", NULL) ? json_str(f, "test", NULL) : "?");
        }
        return;
    }
    {
        const char *err = json_str(json_object_get(promotion, "report"), "error", NULL);

        if (err == NULL || err[0] == '\0')
            err = json_str(detail, "error", NULL);
        if (err == NULL || err[0] == '\0') {
            last_line(res, line, sizeof line);
            err = line[0] != '\0' && line[0] != '}' ? line : NULL;
        }
        if (err != NULL)
            snprintf(why + n, cap - (size_t)n, ": %s", err);
    }
}

/* mstack deploy ended: deployed, ready (awaiting approval), or failed. */
static void deploy_done(run *r, const ms_proc_result *res, const char *log_path)
{
    json_t *out = printed_object(res), *extra;
    const char *outcome = json_string_value(json_object_get(out, "outcome"));
    char why[2048];

    r->deployment = (int64_t)json_integer_value(json_object_get(out, "deployment"));
    extra = json_pack("{s:O?}", "deploy", out);
    if (res->exit_code == 0 && outcome != NULL) {
        if (!may_promote(r) && strcmp(outcome, "ready") == 0) {
            await_approval(r, res, log_path, out);
            goto cleanup;
        }
        if (may_promote(r) && strcmp(outcome, "ready") != 0) {
            json_object_set_new(extra, "outcome", json_string(outcome));
            step_passed(r, "deploy", res, log_path, extra);
            start_from(r);
            goto cleanup;
        }
    }
    deploy_failure(r, res, out, why, sizeof why);
    fail_step(r, "deploy", res, why, log_path, extra);
cleanup:
    json_decref(extra);
    json_decref(out);
}

static void step_done(ms_proc_result *res, void *closure)
{
    run *r = closure;
    const char *step = ms_action_kind_str((ms_action_kind)r->step);
    char log_path[4200], why[300];

    snprintf(log_path, sizeof log_path, "%s/%lld.%s.log", r->dir, (long long)r->run_id, step);
    if (res->spawn_failed || res->killed || res->timed_out || res->term_signal != 0 ||
        (res->exit_code != 0 && r->step < MS_ACTION_VERSION)) {
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
        fail_step(r, step, res, why, log_path, NULL);
        return;
    }
    if (r->step == MS_ACTION_VERSION) {
        version_done(r, res, log_path);
        return;
    }
    if (r->step == MS_ACTION_DEPLOY) {
        deploy_done(r, res, log_path);
        return;
    }
    step_passed(r, step, res, log_path, NULL);
    start_from(r);
}

/* Start one step's process: argv, the config's env (env_count NAME=value
 * pairs, may be 0), the MAINSTACK_* variables (and NATS_URL for a
 * framework step), the run's input on stdin. */
static void launch(run *r, const char *const *argv, const ms_env_var *cfg_env, size_t env_count,
                   long long timeout_s, size_t capture_max)
{
    const char *step = ms_action_kind_str((ms_action_kind)r->step);
    const char *component = ms_context_component(r->ctx);
    char log_path[4200], run_id[32], decision_id[32];
    char env_buf[ENV_FIXED][4300];
    const char **env = NULL;
    ms_proc_spec spec;
    ms_status s;
    size_t n = 0, fixed_n = ENV_FIXED;

    snprintf(log_path, sizeof log_path, "%s/%lld.%s.log", r->dir, (long long)r->run_id, step);
    snprintf(run_id, sizeof run_id, "%lld", (long long)r->run_id);
    snprintf(decision_id, sizeof decision_id, "%lld", (long long)r->decision_id);
    env = ms__calloc(env_count + ENV_FIXED + 1, sizeof *env);
    if (env == NULL) {
        fail_step(r, step, NULL, "out of memory preparing the step", NULL, NULL);
        return;
    }
    /* The config's entries first, formatted on the heap ("NAME=value");
     * the fixed MAINSTACK_* ones after them, so they win over the config. */
    for (size_t i = 0; i < env_count; i++) {
        size_t len = strlen(cfg_env[i].name) + strlen(cfg_env[i].value) + 2;
        char *e = malloc(len);

        if (e == NULL) {
            for (size_t j = 0; j < n; j++)
                free((void *)env[j]);
            ms__free(env);
            fail_step(r, step, NULL, "out of memory preparing the step", NULL, NULL);
            return;
        }
        snprintf(e, len, "%s=%s", cfg_env[i].name, cfg_env[i].value);
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
        {"NATS_URL", r->env.deploy_nats_url},
    };
    /* NATS_URL only for a framework step, and only when the owner named one */
    if (r->step < MS_ACTION_VERSION || r->env.deploy_nats_url == NULL)
        fixed_n = ENV_FIXED - 1;
    for (size_t i = 0; i < fixed_n; i++) {
        snprintf(env_buf[i], sizeof env_buf[i], "%s=%s", fixed[i][0],
                 fixed[i][1] ? fixed[i][1] : "");
        env[n++] = env_buf[i];
    }
    env[n] = NULL;
    ms_proc_spec_init(&spec);
    spec.argv = argv;
    spec.env = env;
    spec.cwd = r->env.root;
    spec.stdin_data = r->input_text;
    spec.stdin_len = r->input_len;
    spec.timeout_ms = (int)(timeout_s * 1000);
    spec.log_path = log_path;
    spec.log_max = LOG_MAX;
    spec.capture_max = capture_max;
    s = ms_proc_runner_start(r->env.runner, &spec, step_done, r, NULL);
    for (size_t i = 0; i < config_env; i++)
        free((void *)env[i]);
    ms__free(env);
    if (s != MS_OK) {
        char why[300];

        snprintf(why, sizeof why, "could not be queued: %s", ms_last_error());
        fail_step(r, step, NULL, why, log_path, NULL);
    }
}

/* Start the framework step r->step (version or deploy): its argv from the
 * config and the run. */
static void start_framework(run *r)
{
    const ms_agent_deploy *d = ms_agent_config_deploy(r->cfg);
    const char *component = ms_context_component(r->ctx);
    const char *step = ms_action_kind_str((ms_action_kind)r->step);
    const char **argv = NULL;
    char build[4200];
    size_t n = 0;

    if (r->step == MS_ACTION_DEPLOY && r->version[0] == '\0') {
        fail_step(r, step, NULL, "no version to deploy (the run has none recorded)", NULL, NULL);
        return;
    }
    if ((argv = ms__calloc(FRAMEWORK_ARGV_MAX + d->argc + 1, sizeof *argv)) == NULL) {
        fail_step(r, step, NULL, "out of memory preparing the step", NULL, NULL);
        return;
    }
    argv[n++] = r->env.deploy_program;
    if (r->step == MS_ACTION_VERSION) {
        if (d->build_dir[0] == '/')
            snprintf(build, sizeof build, "%s", d->build_dir);
        else
            snprintf(build, sizeof build, "%s/%s", r->env.root, d->build_dir);
        argv[n++] = "version";
        argv[n++] = "add";
        argv[n++] = component;
        argv[n++] = build;
        argv[n++] = "--root";
        argv[n++] = r->env.root;
        argv[n++] = "--json";
    } else {
        argv[n++] = "deploy";
        argv[n++] = component;
        argv[n++] = r->version;
        argv[n++] = "--root";
        argv[n++] = r->env.root;
        argv[n++] = "--json";
        if (!may_promote(r))
            argv[n++] = "--no-promote";
        for (size_t i = 0; i < d->argc; i++)
            argv[n++] = d->args[i];
    }
    argv[n] = NULL;
    launch(r, argv, NULL, 0, d->timeout_s, FRAMEWORK_CAPTURE_MAX);
    ms__free(argv);
}

/* Start the first defined step at or after r->step; end the run when none
 * is left. */
static void start_from(run *r)
{
    const ms_agent_action *a = NULL;

    while (r->step < MS_ACTION_COMMAND_COUNT &&
           (a = ms_agent_config_action(r->cfg, (ms_action_kind)r->step)) == NULL)
        r->step++;
    if (r->step < MS_ACTION_COMMAND_COUNT) {
        launch(r, a->argv, a->env, a->env_count,
               a->timeout_s > 0 ? a->timeout_s : STEP_TIMEOUT_DEFAULT_S, TAIL_MAX);
        return;
    }
    if (r->step < MS_ACTION_KIND_COUNT && framework_on(r)) {
        start_framework(r);
        return;
    }
    if (r->step < MS_ACTION_KIND_COUNT && r->first_step >= MS_ACTION_VERSION) {
        /* resuming a framework step without the means to run it */
        fail_step(r, ms_action_kind_str((ms_action_kind)r->step), NULL,
                  r->env.deploy_program == NULL
                      ? "cannot run: no deploy program was given (ms_agent_options.deploy_program)"
                      : "cannot run: the config has no actions.deploy",
                  NULL, NULL);
        return;
    }
    {
        /* the end record carries the version and deployment the run made */
        json_t *end = r->version[0] != '\0' ? json_object() : NULL;

        add_version(r, end);
        if (ms_registry_run_update(r->env.registry, r->run_id, r->last_step, "succeeded", end) !=
            MS_OK)
            ms_log_kv(MS_LOG_ERROR, "agent", "recording a run's end", "error", ms_last_error(),
                      NULL);
        json_decref(end);
    }
    finish(r, "succeeded");
}

ms_status ms__pipeline_start(const ms__pipeline_env *env, int64_t decision_id, json_t *input,
                             const ms__pipeline_from *from, ms__pipeline_done_fn done,
                             void *closure, int64_t *run_id)
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
    r->step = from != NULL ? (int)from->step : (int)MS_ACTION_CHANGE;
    if (r->step < 0 || r->step >= MS_ACTION_KIND_COUNT)
        r->step = MS_ACTION_CHANGE;
    r->first_step = r->step;
    r->last_step = "test";
    if (from != NULL && from->version != NULL)
        snprintf(r->version, sizeof r->version, "%s", from->version);
    r->approved = from != NULL && from->approved;
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
