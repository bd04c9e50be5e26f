/*
 * tool_agent.c - tools over the context layer and the agent: check_context
 * (ms_check_stack), evaluate_message (ms_agent_evaluate, a dry run) and
 * resolve_escalation (ms_agent_resolve_escalation: approving resumes the
 * work, as `mstack escalations resolve --approve` does).
 *
 * resolve_escalation is a long tool. The library call runs the pipeline in
 * the calling thread, so it runs on a helper thread (mcp_thread_start) with
 * a proc runner of its own, while the tool's thread waits in slices: it
 * reads the registry for progress (the escalation resolved, the resumed
 * run's step) and, when the client cancels or the server stops, stops the
 * run's processes (ms_proc_runner_kill_all) and waits for the helper. A
 * cut-short run ends "cancelled" and the pipeline opens a new escalation
 * saying where it stopped; the resolution itself stays. Every resolution is
 * in the audit log with the client's name and whether it was cut short.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../cli.h"
#include "mcp.h"

#define FINDINGS_MAX 200
#define SLICE_MS 200

/* --- check_context ------------------------------------------------------------ */

/* The finding's file relative to the root when it is under it. */
static const char *relative(const mcp_server *srv, const char *file)
{
    size_t rl = strlen(srv->root);
    if (file != NULL && strncmp(file, srv->root, rl) == 0 && file[rl] == '/')
        return file + rl + 1;
    return file != NULL ? file : "";
}

static bool in_component(const char *rel, const char *component)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "components/%s/", component);
    return strncmp(rel, prefix, strlen(prefix)) == 0;
}

static json_t *finding_json(const mcp_server *srv, const ms_check_finding *f)
{
    char location[64] = "";
    json_t *o;

    if (f->pointer != NULL)
        snprintf(location, sizeof location, "%s", f->pointer[0] != '\0' ? "" : "(root)");
    else if (f->line > 0)
        snprintf(location, sizeof location, "%d:%d", f->line, f->column);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "level", ms_check_level_str(f->level), "file",
                  relative(srv, f->file), "code", f->code != NULL ? f->code : "", "message",
                  f->message != NULL ? f->message : "", "location",
                  f->pointer != NULL && f->pointer[0] != '\0' ? f->pointer : location);
    if (o != NULL && f->line > 0) {
        json_object_set_new(o, "line", json_integer(f->line));
        json_object_set_new(o, "column", json_integer(f->column));
    }
    if (o != NULL && f->pointer != NULL)
        json_object_set_new(o, "pointer", json_string(f->pointer));
    return o;
}

static int check_context(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    mcp_server *srv = rq->srv;
    const char *component = mcp_tool_component(rq, args);
    json_t *names = NULL, *skipped = NULL, *findings = NULL, *n;
    char schemas[PATH_MAX + 16], msg[768];
    const char **paths = NULL;
    char(*dirs)[PATH_MAX + 80] = NULL;
    ms_check_options opt = {0};
    ms_check_report *r = NULL;
    size_t i, np = 0, errors = 0, warnings = 0, total = 0;
    struct stat st;
    ms_status s;
    (void)err;

    if (component != NULL && !mcp_component_visible(srv, component))
        return mcp_tool_fail(out, "no component '%s' here: list_components names them", component);
    /* the whole stack is checked (consumed interfaces are cross-checked
     * against their providers); with a component, only its files' findings
     * are returned */
    if (mcp_context_components(srv, &names, &skipped) != 0)
        return mcp_tool_fail(out, "out of memory listing the components");
    if (json_array_size(names) == 0) {
        json_decref(names);
        json_decref(skipped);
        return mcp_tool_fail(out, "no component with a context/ directory under %s/components",
                             srv->root);
    }
    paths = calloc(json_array_size(names), sizeof *paths);
    dirs = calloc(json_array_size(names), sizeof *dirs);
    findings = json_array();
    if (paths == NULL || dirs == NULL || findings == NULL) {
        mcp_tool_fail(out, "out of memory");
        goto cleanup;
    }
    json_array_foreach(names, i, n)
    {
        snprintf(dirs[np], sizeof dirs[np], "%s/components/%s", srv->root, json_string_value(n));
        paths[np] = dirs[np];
        np++;
    }
    snprintf(schemas, sizeof schemas, "%s/schemas", srv->root);
    if (stat(schemas, &st) == 0 && S_ISDIR(st.st_mode))
        opt.schemas_dir = schemas;
    s = ms_check_stack(paths, np, &opt, &r);
    if (s != MS_OK) {
        snprintf(msg, sizeof msg, "%s", ms_last_error());
        mcp_tool_fail(out, "the check could not run: %s: %s", ms_status_name(s), msg);
        goto cleanup;
    }
    for (i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (component != NULL && !in_component(relative(srv, f->file), component))
            continue;
        total++;
        if (f->level == MS_CHECK_ERROR)
            errors++;
        else
            warnings++;
        if (json_array_size(findings) < FINDINGS_MAX)
            json_array_append_new(findings, finding_json(srv, f));
    }
    if (srv->component != NULL) { /* the others are outside the scope: not named */
        json_decref(names);
        names = json_pack("[s]", srv->component);
    }
    out->structured =
        json_pack("{s:s, s:o, s:I, s:I, s:I, s:I, s:b, s:O}", "scope",
                  component != NULL ? component : "project", "findings", findings, "count",
                  (json_int_t)json_array_size(findings), "total", (json_int_t)total, "errors",
                  (json_int_t)errors, "warnings", (json_int_t)warnings, "truncated",
                  total > FINDINGS_MAX, "components_checked", names);
    findings = NULL;
    if (out->structured == NULL) {
        mcp_tool_fail(out, "out of memory");
        goto cleanup;
    }
    if (json_array_size(skipped) > 0)
        json_object_set(out->structured, "skipped", skipped);
    if (total > FINDINGS_MAX)
        json_object_set_new(out->structured, "note",
                            json_string("only the first 200 findings are listed: fix those, "
                                        "or run mstack check for all of them"));
cleanup:
    ms_check_report_destroy(r);
    json_decref(findings);
    json_decref(names);
    json_decref(skipped);
    free(paths);
    free(dirs);
    return 0;
}

#define FINDING_SCHEMA                                                                             \
    "{\"type\":\"object\",\"required\":[\"level\",\"file\",\"location\",\"code\",\"message\"],"    \
    "\"properties\":{\"level\":{\"enum\":[\"error\",\"warning\"]},\"file\":{\"type\":"             \
    "\"string\"},\"location\":{\"type\":\"string\",\"description\":\"line:column of a syntax "     \
    "error, else the JSON pointer (\\\"(root)\\\": the document; \\\"\\\": the file as a "         \
    "whole)\"},\"line\":{\"type\":\"integer\",\"minimum\":1},\"column\":{\"type\":\"integer\","    \
    "\"minimum\":1},\"pointer\":{\"type\":\"string\"},\"code\":{\"type\":\"string\"},"             \
    "\"message\":{\"type\":\"string\"}},\"additionalProperties\":false}"

const mcp_tool mcp_tool_check_context = {
    .name = "check_context",
    .title = "Check context files",
    .description =
        "Checks the components' context/context.json, context/agent-config.json and "
        "interface.json (syntax, JSON Schemas, the loaders' rules) and the stack they form "
        "(names, versions, consumed interfaces and dependencies, agent rules), as mstack check "
        "does. With a component, only the findings in its files. Each finding has level, file, "
        "location (line:column or JSON pointer), code and message; at most 200 are listed.",
    .input_schema = "{\"type\":\"object\",\"properties\":{\"component\":{\"type\":\"string\","
                    "\"minLength\":1,\"maxLength\":64,\"description\":\"only this component's "
                    "findings (default: the whole project)\"}},\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"scope\",\"findings\",\"count\",\"total\","
        "\"errors\",\"warnings\",\"truncated\",\"components_checked\"],\"properties\":{"
        "\"scope\":{\"type\":\"string\"},\"findings\":{\"type\":\"array\",\"items\":" FINDING_SCHEMA
        "},\"count\":{\"type\":\"integer\",\"minimum\":0},\"total\":{\"type\":\"integer\","
        "\"minimum\":0},\"errors\":{\"type\":\"integer\",\"minimum\":0},\"warnings\":{\"type\":"
        "\"integer\",\"minimum\":0},\"truncated\":{\"type\":\"boolean\"},\"components_checked\":{"
        "\"type\":\"array\",\"items\":{\"type\":\"string\"}},\"skipped\":{\"type\":\"array\","
        "\"items\":{\"type\":\"object\",\"required\":[\"component\",\"reason\"],\"properties\":{"
        "\"component\":{\"type\":\"string\"},\"reason\":{\"type\":\"string\"}}}},\"note\":{"
        "\"type\":\"string\"}},\"additionalProperties\":false}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = check_context,
};

/* --- evaluate_message ------------------------------------------------------------ */

/* Headers {"Name": "v"} or {"Name": ["v1", "v2"]} onto m. */
static ms_status add_headers(ms_message *m, const json_t *headers, char *why, size_t cap)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)headers, key, v)
    {
        size_t i;
        json_t *x;
        if (json_is_string(v)) {
            if (ms_message_add_header(m, key, json_string_value(v)) != MS_OK)
                goto bad;
            continue;
        }
        json_array_foreach(v, i, x)
        {
            if (ms_message_add_header(m, key, json_string_value(x)) != MS_OK)
                goto bad;
        }
        continue;
    bad:
        snprintf(why, cap, "header '%s': %s", key, ms_last_error());
        return MS_ERR_INVALID_ARG;
    }
    return MS_OK;
}

static int evaluate_message(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    const char *component = mcp_tool_component(rq, args);
    const char *subject = json_string_value(json_object_get(args, "subject"));
    const char *type = json_string_value(json_object_get(args, "type"));
    const char *id = json_string_value(json_object_get(args, "id"));
    const json_t *payload = json_object_get(args, "payload");
    const json_t *headers = json_object_get(args, "headers");
    char dir[PATH_MAX], msg[768];
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    ms_message *m = NULL;
    ms_decision d;
    char *data = NULL;
    ms_status s;
    int rc;
    (void)err;

    if (component == NULL)
        return mcp_tool_fail(out, "give the component whose agent decides (list_components)");
    rc = mcp_component_dir(rq->srv, component, dir, sizeof dir, msg, sizeof msg);
    if (rc != 0)
        return mcp_tool_fail(out, "%s", msg);
    if (ms_subject_validate(subject) != MS_OK || strchr(subject, '*') || strchr(subject, '>'))
        return mcp_tool_fail(out, "bad subject '%s': %s (a message's subject has no wildcards)",
                             subject, ms_last_error());
    if (payload != NULL)
        data = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    s = ms_message_create(subject, data != NULL ? data : "", data != NULL ? strlen(data) : 0, &m);
    if (s == MS_OK)
        s = ms_message_set_type_name(m, type);
    if (s == MS_OK && id != NULL)
        s = ms_message_set_id(m, id);
    if (s != MS_OK) {
        mcp_tool_fail(out, "cannot build the message: %s", ms_last_error());
        goto cleanup;
    }
    if (headers != NULL && add_headers(m, headers, msg, sizeof msg) != MS_OK) {
        mcp_tool_fail(out, "cannot build the message: %s", msg);
        goto cleanup;
    }
    if (ms_context_load_dir(dir, &ctx, &cfg) != MS_OK) {
        mcp_tool_fail(out,
                      "the context of %s does not load: %s (check_context lists every problem)",
                      component, ms_last_error());
        goto cleanup;
    }
    if (ms_agent_evaluate(m, ctx, cfg, &d) != MS_OK) {
        mcp_tool_fail(out, "evaluating failed: %s", ms_last_error());
        goto cleanup;
    }
    out->structured =
        json_pack("{s:s, s:s, s:s, s:s, s:b, s:{s:s, s:s}}", "component", component, "decision",
                  ms_verdict_str(d.verdict), "rule", d.rule, "reason", d.reason, "dry_run", 1,
                  "message", "subject", subject, "type", type);
    if (out->structured != NULL && id != NULL)
        json_object_set_new(json_object_get(out->structured, "message"), "id", json_string(id));
    if (out->structured == NULL)
        mcp_tool_fail(out, "out of memory");
cleanup:
    ms_message_unref(m);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
    free(data);
    return 0;
}

const mcp_tool mcp_tool_evaluate_message = {
    .name = "evaluate_message",
    .title = "Evaluate a message (dry run)",
    .description =
        "What the component's agent would decide (ignore, act or escalate), with the rule and "
        "the reason, for a message given by subject, type (Ms-Type, e.g. interface_changed or "
        "dependency_update), payload and optional headers and id. A dry run: nothing is "
        "recorded, published or run.",
    .input_schema =
        "{\"type\":\"object\",\"required\":[\"component\",\"subject\",\"type\"],\"properties\":{"
        "\"component\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64},\"subject\":{"
        "\"type\":\"string\",\"minLength\":1,\"maxLength\":1024},\"type\":{\"type\":\"string\","
        "\"minLength\":1,\"maxLength\":128,\"description\":\"Ms-Type: interface_changed, "
        "dependency_update, change_notification, event, ...\"},\"payload\":{\"description\":"
        "\"the message's JSON payload (default: empty)\"},\"headers\":{\"type\":\"object\","
        "\"maxProperties\":64,\"additionalProperties\":{\"anyOf\":[{\"type\":\"string\"},{"
        "\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":16}]}},\"id\":{\"type\":"
        "\"string\",\"minLength\":1,\"maxLength\":128,\"description\":\"the message id (Ms-Id)\"}},"
        "\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"component\",\"decision\",\"rule\",\"reason\","
        "\"dry_run\",\"message\"],\"properties\":{\"component\":{\"type\":\"string\"},"
        "\"decision\":{\"enum\":[\"ignore\",\"act\",\"escalate\"]},\"rule\":{\"type\":\"string\"},"
        "\"reason\":{\"type\":\"string\"},\"dry_run\":{\"const\":true},\"message\":{\"type\":"
        "\"object\",\"required\":[\"subject\",\"type\"],\"properties\":{\"subject\":{\"type\":"
        "\"string\"},\"type\":{\"type\":\"string\"},\"id\":{\"type\":\"string\"}},"
        "\"additionalProperties\":false}},\"additionalProperties\":false}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = evaluate_message,
};

/* --- resolve_escalation ------------------------------------------------------------- */

typedef struct resolving {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs; /* the tool and the helper */
    bool done;
    ms_status status;
    char detail[1024];
    char run_state[16];
    /* read-only for the helper */
    ms_agent_options o;
    int64_t id;
    bool approve;
    char *note; /* NULL: none */
    char by[160];
    char exe[4096];      /* o.deploy_program: this mstack */
    char nats_url[1024]; /* o.deploy_nats_url: the server's */
} resolving;

static void resolving_unref(resolving *r)
{
    bool last;
    pthread_mutex_lock(&r->mu);
    last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (!last)
        return;
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r->note);
    free(r);
}

static void *resolve_helper(void *arg)
{
    resolving *r = arg;
    char state[16] = "";
    ms_status s = ms_agent_resolve_escalation(&r->o, r->id, r->approve, r->note, r->by, state);

    pthread_mutex_lock(&r->mu);
    r->status = s;
    snprintf(r->detail, sizeof r->detail, "%s", s == MS_OK ? "" : ms_last_error());
    snprintf(r->run_state, sizeof r->run_state, "%s", state);
    r->done = true;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    resolving_unref(r);
    return NULL;
}

static int64_t newest_id(ms_registry *reg, const char *component, bool runs)
{
    json_t *rows = NULL;
    int64_t id = 0;
    ms_status s = runs ? ms_registry_runs(reg, component, 0, 1, &rows)
                       : ms_registry_escalations(reg, component, NULL, 0, 1, &rows);
    if (s == MS_OK)
        id = json_integer_value(json_object_get(json_array_get(rows, 0), "id"));
    json_decref(rows);
    return id;
}

/* Progress from the registry: the resolution, then the resumed run's step. */
static void report(mcp_request *rq, ms_registry *reg, const resolving *r, const char *component,
                   int64_t runs_before, double *seq, bool *resolved, char last_step[32])
{
    json_t *row = NULL;
    char note[256];

    if (!*resolved && ms_registry_escalation_get(reg, r->id, &row) == MS_OK) {
        const char *st = json_string_value(json_object_get(row, "state"));
        if (st != NULL && strcmp(st, "open") != 0) {
            *resolved = true;
            snprintf(note, sizeof note, "resolved: escalation %lld %s%s", (long long)r->id, st,
                     r->approve ? "; resuming the work" : "");
            mcp_progress(rq, ++*seq, 0, note);
        }
        json_decref(row);
        row = NULL;
    }
    if (*resolved && r->approve) {
        int64_t run = newest_id(reg, component, true);
        if (run > runs_before && ms_registry_run_get(reg, run, &row) == MS_OK) {
            const char *step = json_string_value(json_object_get(row, "step"));
            char key[32];
            snprintf(key, sizeof key, "%lld:%s", (long long)run, step != NULL ? step : "");
            if (strcmp(key, last_step) != 0) {
                snprintf(last_step, 32, "%s", key);
                const char *st = json_string_value(json_object_get(row, "state"));
                if (step == NULL || step[0] == '\0')
                    snprintf(note, sizeof note, "resumed run %lld: started", (long long)run);
                else
                    snprintf(note, sizeof note, "resumed run %lld: step %s (%s)", (long long)run,
                             step, st != NULL ? st : "?");
                mcp_progress(rq, ++*seq, 0, note);
            }
            json_decref(row);
        }
    }
}

/* Approving an escalation left at the pipeline's deploy step deploys its
 * version whatever the agent-config says (the approval is the permission),
 * so over MCP - whose client may be a model - it takes the same gate as the
 * deploy tool: allowed when may_deploy is true, else refused, naming the
 * command a person runs. 1: allowed; 0: refused (out says why). */
static int approval_gate(mcp_request *rq, const char *component, const json_t *esc,
                         mcp_tool_out *out)
{
    const json_t *detail = json_object_get(esc, "detail");
    const char *step = json_string_value(json_object_get(detail, "step"));
    const char *version = json_string_value(json_object_get(detail, "version"));
    char dir[PATH_MAX], msg[768];
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    int ok = 0;

    if (step == NULL || strcmp(step, "deploy") != 0)
        return 1; /* resumed earlier steps end at deploy under may_deploy */
    if (mcp_component_dir(rq->srv, component, dir, sizeof dir, msg, sizeof msg) != 0) {
        mcp_tool_fail(out, "%s (approving it deploys: that needs the agent-config's may_deploy)",
                      msg);
        return 0;
    }
    if (ms_context_load_dir(dir, &ctx, &cfg) != MS_OK) {
        mcp_tool_fail(out, "the context of %s does not load: %s (nothing changed)", component,
                      ms_last_error());
        return 0;
    }
    ok = ms_agent_config_may_deploy(cfg);
    if (!ok)
        mcp_tool_fail(out,
                      "approving escalation %lld deploys %s %s, and its agent-config does not "
                      "allow deploying (autonomy.may_deploy is false): a person approves it with "
                      "`mstack escalations resolve %lld --approve` (nothing changed)",
                      (long long)json_integer_value(json_object_get(esc, "id")), component,
                      version ? version : "(the tested candidate)",
                      (long long)json_integer_value(json_object_get(esc, "id")));
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
    return ok;
}

static int resolve_escalation(mcp_request *rq, const json_t *args, mcp_tool_out *out,
                              mcp_error *err)
{
    mcp_server *srv = rq->srv;
    ms_registry *reg = mcp_registry(srv, err);
    json_int_t id = json_integer_value(json_object_get(args, "id"));
    const char *decision = json_string_value(json_object_get(args, "decision"));
    const char *note = json_string_value(json_object_get(args, "note"));
    bool approve = strcmp(decision, "approve") == 0, cut_short = false, resolved = false;
    json_t *esc = NULL, *detail = NULL;
    char component[80], last_step[32] = "";
    ms_proc_runner *runner = NULL;
    resolving *r = NULL;
    mcp_error bus_err = {0};
    int64_t runs_before = 0, esc_before = 0;
    double seq = 0;
    ms_status s;

    if (reg == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    s = ms_registry_escalation_get(reg, id, &esc);
    if (s == MS_ERR_NOT_FOUND)
        return mcp_tool_fail(out, "no escalation %lld: list_escalations shows the open ones",
                             (long long)id);
    if (s != MS_OK)
        return mcp_tool_fail(out, "reading escalation %lld failed: %s", (long long)id,
                             ms_last_error());
    snprintf(component, sizeof component, "%s",
             json_string_value(json_object_get(esc, "component")) != NULL
                 ? json_string_value(json_object_get(esc, "component"))
                 : "");
    if (srv->component != NULL && strcmp(component, srv->component) != 0) {
        json_decref(esc);
        return mcp_tool_fail(out,
                             "escalation %lld belongs to another component: this server "
                             "only serves %s",
                             (long long)id, srv->component);
    }
    if (approve && json_string_value(json_object_get(esc, "state")) != NULL &&
        strcmp(json_string_value(json_object_get(esc, "state")), "open") == 0 &&
        approval_gate(rq, component, esc, out) != 1) {
        json_decref(esc);
        return 0;
    }
    json_decref(esc);
    esc = NULL;
    r = calloc(1, sizeof *r);
    if (r == NULL || pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    }
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return mcp_fail(err, MCP_INTERNAL_ERROR, "cannot create a condition variable");
    }
    r->refs = 1;
    r->id = id;
    r->approve = approve;
    if (note != NULL && (r->note = strdup(note)) == NULL) {
        resolving_unref(r);
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    }
    snprintf(r->by, sizeof r->by, "mcp:%s", rq->client[0] ? rq->client : "unknown");
    ms_agent_options_init(&r->o);
    r->o.registry = reg;
    r->o.root = srv->root;
    r->o.agent_id = r->by;
    /* a resumed pipeline's version and deploy steps run this mstack, against
     * the server's NATS */
    cli_self_exe(r->exe, sizeof r->exe);
    r->o.deploy_program = r->exe;
    if (srv->nats_url != NULL) {
        snprintf(r->nats_url, sizeof r->nats_url, "%s", srv->nats_url);
        r->o.deploy_nats_url = r->nats_url;
    }
    if (approve) {
        /* the resumed work publishes its decisions and escalations when NATS is
         * there; resolving does not need it */
        r->o.bus = mcp_bus(srv, &bus_err);
        if (r->o.bus == NULL)
            mcp_log(srv, rq, MCP_LOG_WARNING, "the resumed work will not publish: %s",
                    bus_err.message);
        if (ms_proc_runner_create(NULL, &runner) != MS_OK) {
            mcp_tool_fail(out, "cannot start a process runner: %s (nothing changed)",
                          ms_last_error());
            goto cleanup;
        }
        r->o.runner = runner;
        runs_before = newest_id(reg, component, true);
        esc_before = newest_id(reg, component, false);
    }
    pthread_mutex_lock(&r->mu);
    r->refs++;
    pthread_mutex_unlock(&r->mu);
    if (!mcp_thread_start(srv, resolve_helper, r)) {
        pthread_mutex_lock(&r->mu);
        r->refs--;
        pthread_mutex_unlock(&r->mu);
        mcp_tool_fail(out, "cannot start resolving (the server is stopping?); nothing changed");
        goto cleanup;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_nsec += SLICE_MS * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
        (void)pthread_cond_timedwait(&r->cv, &r->mu, &dl);
        if (r->done)
            break;
        pthread_mutex_unlock(&r->mu);
        if (mcp_cancelled(rq) && runner != NULL) {
            size_t killed = 0;
            /* again each slice: a step the pipeline starts after a kill */
            (void)ms_proc_runner_kill_all(runner, &killed);
            if (killed > 0 && !cut_short)
                mcp_log(srv, rq, MCP_LOG_WARNING,
                        "resolve_escalation %lld cancelled: stopping the resumed run",
                        (long long)id);
            cut_short = cut_short || killed > 0;
        } else if (!mcp_cancelled(rq)) {
            report(rq, reg, r, component, runs_before, &seq, &resolved, last_step);
        }
        pthread_mutex_lock(&r->mu);
    }
    s = r->status;
    pthread_mutex_unlock(&r->mu);
    if (strcmp(r->run_state, "cancelled") == 0)
        cut_short = true;
    if (!mcp_cancelled(rq) && s == MS_OK) {
        char end[128];
        report(rq, reg, r, component, runs_before, &seq, &resolved, last_step);
        snprintf(end, sizeof end, "resumed run ended: %s",
                 r->run_state[0] ? r->run_state : "nothing was recorded to resume");
        mcp_progress(rq, ++seq, 0, approve ? end : "resolved: rejected");
    }
    detail = json_pack("{s:I, s:s, s:s, s:b}", "id", id, "decision", decision, "run_state",
                       r->run_state, "cut_short", cut_short);
    if (detail != NULL && note != NULL)
        json_object_set_new(detail, "note", json_string(note));
    mcp_audit(rq, "escalation.resolve", component, s == MS_OK ? "ok" : r->detail, detail);
    if (s == MS_ERR_STATE) {
        mcp_tool_fail(out, "escalation %lld is not open: %s (nothing changed)", (long long)id,
                      r->detail);
        goto cleanup;
    }
    if (ms_registry_escalation_get(reg, id, &esc) != MS_OK) {
        mcp_tool_fail(out, "resolving escalation %lld failed: %s", (long long)id,
                      s != MS_OK ? r->detail : ms_last_error());
        goto cleanup;
    }
    if (s != MS_OK) {
        const char *state = json_string_value(json_object_get(esc, "state"));
        if (state != NULL && strcmp(state, "open") != 0)
            mcp_tool_fail(out,
                          "escalation %lld is %s, but resuming its work failed: %s (fix "
                          "that; check_context and list_runs may help)",
                          (long long)id, state, r->detail);
        else
            mcp_tool_fail(out, "resolving escalation %lld failed: %s (nothing changed)",
                          (long long)id, r->detail);
        goto cleanup;
    }
    out->structured =
        json_pack("{s:O, s:s, s:b, s:b}", "escalation", esc, "run_state", r->run_state, "resumed",
                  r->run_state[0] != '\0', "cut_short", cut_short);
    if (out->structured != NULL && approve && strcmp(r->run_state, "succeeded") != 0 &&
        r->run_state[0] != '\0') {
        int64_t newer = newest_id(reg, component, false);
        if (newer > esc_before)
            json_object_set_new(out->structured, "new_escalation_id", json_integer(newer));
    }
cleanup:
    ms_proc_runner_destroy(runner);
    json_decref(esc);
    json_decref(detail);
    resolving_unref(r);
    return 0;
}

const mcp_tool mcp_tool_resolve_escalation = {
    .name = "resolve_escalation",
    .title = "Resolve an escalation",
    .description =
        "Approves or rejects an open escalation, with an optional note; recorded with the "
        "client's name. Approving resumes the work as mstack escalations resolve --approve "
        "does: an escalated decision runs the agent's change, build and test commands, a failed "
        "run resumes at the step that failed, a candidate ready to deploy (or a failed deploy) is "
        "deployed with its promotion (the approval is the permission); the call returns when that "
        "run ended (progress "
        "with a progressToken; cancelling stops the run, the resolution stays). An escalation "
        "is resolved once: a second call fails and changes nothing.",
    .input_schema = "{\"type\":\"object\",\"required\":[\"id\",\"decision\"],\"properties\":{"
                    "\"id\":{\"type\":\"integer\",\"minimum\":1},\"decision\":{\"type\":"
                    "\"string\",\"enum\":[\"approve\",\"reject\"]},\"note\":{\"type\":"
                    "\"string\",\"maxLength\":4000}},\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"escalation\",\"run_state\",\"resumed\","
        "\"cut_short\"],\"properties\":{\"escalation\":{\"type\":\"object\",\"required\":[\"id\","
        "\"state\"],\"properties\":{\"id\":{\"type\":\"integer\"},\"state\":{\"enum\":["
        "\"approved\",\"rejected\"]}}},\"run_state\":{\"enum\":[\"\",\"succeeded\",\"escalated\","
        "\"cancelled\"],\"description\":\"how the resumed run ended; empty: nothing ran\"},"
        "\"resumed\":{\"type\":\"boolean\"},\"cut_short\":{\"type\":\"boolean\"},"
        "\"new_escalation_id\":{\"type\":\"integer\",\"description\":\"the escalation the "
        "resumed run opened when it failed again\"}},\"additionalProperties\":false}",
    .read_only = false,
    .destructive = true,
    .idempotent = false,
    .open_world = true,
    .component_arg = false,
    .run = resolve_escalation,
};
