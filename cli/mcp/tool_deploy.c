/*
 * tool_deploy.c - the deployment tools: list_versions and history (read
 * the registry), deploy and rollback (change what serves).
 *
 * deploy and rollback first ask the component's agent-config
 * (ms_context_load_dir, ms_agent_config_may_deploy). When it does not allow
 * deploying, nothing is deployed: an escalation is recorded
 * (ms_registry_escalate: who asked, what, and that may_deploy is false),
 * announced on the config's escalation subject when the NATS server is
 * reachable, and the result says so (a result, not an error: the model
 * learns a person decides). Otherwise the tool runs what `mstack deploy` /
 * `mstack rollback` run (cli_deploy_run / cli_rollback_run, cmd_deploy.c and
 * cmd_promote.c) on the request's worker thread, quietly (stdout is the
 * protocol's), with the hooks: each phase that begins is a progress
 * notification (mcp_progress: only with a progressToken, only while the
 * request is open, increasing), and mcp_cancelled is polled between phases.
 * A cancel before the promotion began stops the work there (the active
 * version keeps serving, the deployment is recorded "cancelled"); once the
 * promotion (prepare and switch on every host, one library call) began it
 * runs to its end, so the hosts are never left half-switched.
 *
 * Threading: everything runs on the request's worker thread; the registry
 * connection of the deploy is its own (cli_open_registry), the server's is
 * used only for the reads, the escalation and the audit.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cli.h"
#include "mcp.h"

#define PAGE_DEFAULT 20

/* ---- list_versions ----------------------------------------------------------- */

static int list_versions(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    ms_registry *reg = mcp_registry(rq->srv, err);
    const char *component = mcp_tool_component(rq, args);
    json_t *rows = NULL, *list, *row, *empty;
    size_t i;

    if (reg == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    if (component == NULL || !mcp_valid_name(component))
        return mcp_tool_fail(out, "give the component whose versions to list (list_components)");
    if (ms_registry_versions(reg, component, &rows) != MS_OK)
        return mcp_tool_fail(out, "reading the versions of %s failed: %s", component,
                             ms_last_error());
    list = json_array();
    empty = json_array();
    json_array_foreach(rows, i, row)
    {
        const json_t *hist = json_object_get(json_object_get(row, "detail"), "history");
        json_array_append_new(list, json_pack("{s:O, s:O, s:O, s:O*, s:O*, s:O}", "version",
                                              json_object_get(row, "version"), "state",
                                              json_object_get(row, "state"), "sha256",
                                              json_object_get(row, "sha256"), "added_time",
                                              json_object_get(row, "added_time"), "state_time",
                                              json_object_get(row, "state_time"), "history",
                                              json_is_array(hist) ? hist : empty));
    }
    json_decref(rows);
    json_decref(empty);
    out->structured = json_pack("{s:s, s:o, s:I}", "component", component, "versions", list,
                                "count", (json_int_t)json_array_size(list));
    if (out->structured == NULL)
        return mcp_tool_fail(out, "out of memory");
    return 0;
}

#define COMPONENT_PROP "\"component\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64}"

const mcp_tool mcp_tool_list_versions = {
    .name = "list_versions",
    .title = "List recorded versions",
    .description = "The versions of a component recorded in the registry (mstack version add), "
                   "oldest first: version, state (candidate, testing, active, previous, "
                   "rejected, rolled-back), sha256 of the artifact and when each state was "
                   "entered.",
    .input_schema =
        "{\"type\":\"object\",\"required\":[\"component\"],\"properties\":{" COMPONENT_PROP
        "},\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"component\",\"versions\",\"count\"],\"properties\":{"
        "\"component\":{\"type\":\"string\"},\"versions\":{\"type\":\"array\",\"items\":{\"type\":"
        "\"object\",\"required\":[\"version\",\"state\",\"sha256\",\"history\"],\"properties\":{"
        "\"version\":{\"type\":\"string\"},\"state\":{\"type\":\"string\"},\"sha256\":{\"type\":"
        "\"string\"},\"added_time\":{\"type\":\"string\"},\"state_time\":{\"type\":\"string\"},"
        "\"history\":{\"type\":\"array\",\"items\":{\"type\":\"object\"}}}}},\"count\":{\"type\":"
        "\"integer\",\"minimum\":0}},\"additionalProperties\":false}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = list_versions,
};

/* ---- history ------------------------------------------------------------------ */

static int history(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    ms_registry *reg = mcp_registry(rq->srv, err);
    const char *component = mcp_tool_component(rq, args);
    json_int_t l = json_integer_value(json_object_get(args, "limit"));
    size_t limit = l > 0 ? (size_t)l : PAGE_DEFAULT;
    json_t *rows = NULL;

    if (reg == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    if (ms_registry_deployments(reg, component,
                                json_integer_value(json_object_get(args, "before_id")), limit,
                                &rows) != MS_OK)
        return mcp_tool_fail(out, "reading the deployments failed: %s", ms_last_error());
    out->structured =
        json_pack("{s:o, s:I}", "deployments", rows, "count", (json_int_t)json_array_size(rows));
    if (out->structured != NULL && json_array_size(rows) == limit) {
        json_t *last = json_array_get(rows, limit - 1);
        json_object_set(out->structured, "next_before_id", json_object_get(last, "id"));
    }
    if (out->structured == NULL)
        return mcp_tool_fail(out, "out of memory");
    return 0;
}

const mcp_tool mcp_tool_history = {
    .name = "history",
    .title = "Deployment history",
    .description = "The deployments and rollbacks recorded in the registry, newest first, paged: "
                   "from and to version, state (the last step's outcome: ready, rejected, "
                   "promoted, no-hosts, failed, rolled-back, cancelled, error) and each step "
                   "with its detail (the test comparison, the per-host report).",
    .input_schema =
        "{\"type\":\"object\",\"properties\":{" COMPONENT_PROP
        ",\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":200,\"description\":"
        "\"rows per page (default 20)\"},\"before_id\":{\"type\":\"integer\",\"minimum\":1,"
        "\"description\":\"next page: the next_before_id of the previous one\"}},"
        "\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"deployments\",\"count\"],\"properties\":{"
        "\"deployments\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"id\","
        "\"component\",\"to_version\",\"state\"],\"properties\":{\"id\":{\"type\":\"integer\"},"
        "\"time\":{\"type\":\"string\"},\"component\":{\"type\":\"string\"},\"from_version\":{"
        "\"type\":[\"string\",\"null\"]},\"to_version\":{\"type\":\"string\"},\"kind\":{},"
        "\"state\":{\"type\":\"string\"},\"updated_time\":{},\"detail\":{}}}},\"count\":{\"type\":"
        "\"integer\",\"minimum\":0},\"next_before_id\":{\"type\":\"integer\"}},"
        "\"additionalProperties\":false}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = history,
};

/* ---- the may_deploy gate ------------------------------------------------------ */

/* 1: deploying is allowed; 0: not (out holds the escalation result); -1:
 * out holds a tool failure. */
static int gate(mcp_request *rq, const char *component, const char *action, const char *version,
                mcp_tool_out *out)
{
    char dir[PATH_MAX], msg[768], reason[512];
    const char *who = rq->client[0] ? rq->client : "unknown";
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    ms_registry *reg;
    mcp_error e = {0};
    json_t *detail = NULL;
    int64_t eid = 0;
    int rc = -1;

    if (mcp_component_dir(rq->srv, component, dir, sizeof dir, msg, sizeof msg) != 0) {
        mcp_tool_fail(out, "%s (%s needs the component's agent-config to say may_deploy)", msg,
                      action);
        return -1;
    }
    if (ms_context_load_dir(dir, &ctx, &cfg) != MS_OK) {
        mcp_tool_fail(out,
                      "the context of %s does not load: %s (check_context lists every "
                      "problem)",
                      component, ms_last_error());
        return -1;
    }
    if (ms_agent_config_may_deploy(cfg)) {
        rc = 1;
        goto cleanup;
    }
    if ((reg = mcp_registry(rq->srv, &e)) == NULL) {
        mcp_tool_fail(out, "%s", e.message);
        goto cleanup;
    }
    snprintf(reason, sizeof reason,
             "mcp:%s asked to %s %s%s%s, but its agent-config does not allow deploying "
             "(autonomy.may_deploy is false): a person decides",
             who, action, component, version ? " " : "", version ? version : "");
    detail = json_pack("{s:s, s:s, s:s?, s:s, s:b}", "action", action, "component", component,
                       "version", version, "requested_by", who, "may_deploy", 0);
    if (detail == NULL || ms_registry_escalate(reg, component, 0, reason, detail, &eid) != MS_OK) {
        mcp_tool_fail(out,
                      "%s of %s is not allowed (may_deploy is false) and recording the "
                      "escalation failed: %s",
                      action, component, ms_last_error());
        goto cleanup;
    }
    {
        const char *subject = ms_agent_config_escalation_subject(cfg);
        ms_bus *bus = mcp_bus(rq->srv, &e);
        json_t *ev = json_pack("{s:I, s:s, s:s, s:O}", "escalation_id", (json_int_t)eid,
                               "component", component, "reason", reason, "detail", detail);
        char *text = ev != NULL ? json_dumps(ev, JSON_COMPACT) : NULL;
        if (bus == NULL)
            mcp_log(rq->srv, rq, MCP_LOG_WARNING,
                    "escalation %lld recorded, not announced on %s: %s", (long long)eid, subject,
                    e.message);
        else if (text == NULL || ms_bus_publish(bus, subject, text, strlen(text)) != MS_OK)
            mcp_log(rq->srv, rq, MCP_LOG_WARNING, "escalation %lld not announced on %s: %s",
                    (long long)eid, subject, text ? ms_last_error() : "out of memory");
        free(text);
        json_decref(ev);
    }
    out->structured =
        json_pack("{s:s, s:s, s:s, s:b, s:b, s:I, s:s}", "component", component, "action", action,
                  "outcome", "escalated", "deployed", 0, "escalated", 1, "escalation_id",
                  (json_int_t)eid, "message", reason);
    if (out->structured != NULL && version != NULL)
        json_object_set_new(out->structured, "version", json_string(version));
    if (out->structured == NULL)
        mcp_tool_fail(out, "out of memory");
    mcp_audit(rq, action, component, "escalated", out->structured);
    rc = 0;
cleanup:
    json_decref(detail);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
    return rc;
}

/* ---- deploy / rollback ---------------------------------------------------------- */

static void on_phase(void *ud, int phase, const char *message)
{
    mcp_progress(ud, phase, CLI_DEPLOY_PHASES, message);
}

static bool on_cancel(void *ud)
{
    return mcp_cancelled(ud);
}

static int deploy_or_rollback(mcp_request *rq, const json_t *args, mcp_tool_out *out, bool rollback)
{
    const char *action = rollback ? "rollback" : "deploy";
    const char *component = mcp_tool_component(rq, args);
    const char *version = json_string_value(json_object_get(args, "version"));
    json_int_t tmo = json_integer_value(json_object_get(args, "timeout_ms"));
    const json_t *watch = json_object_get(args, "watch_ms");
    cli_deploy_hooks hooks = {.progress = on_phase, .cancelled = on_cancel, .ud = rq};
    cli_deploy_request dr = {0};
    ms_registry *reg;
    mcp_error e = {0};
    json_t *result = NULL, *row = NULL;
    char actor[160];
    const char *outcome;
    int g;

    if (component == NULL || !mcp_valid_name(component) ||
        !mcp_component_visible(rq->srv, component))
        return mcp_tool_fail(out, "no component '%s' in this project (list_components)",
                             component ? component : "");
    if (!rollback) {
        if ((reg = mcp_registry(rq->srv, &e)) == NULL)
            return mcp_tool_fail(out, "%s", e.message);
        if (ms_registry_version_get(reg, component, version, &row) != MS_OK)
            return mcp_tool_fail(out,
                                 "cannot deploy %s %s: %s (list_versions shows what is "
                                 "recorded; mstack version add records a build)",
                                 component, version, ms_last_error());
        if (strcmp(json_string_value(json_object_get(row, "state")), "active") == 0) {
            json_decref(row);
            return mcp_tool_fail(out, "%s %s is already the active version: nothing to deploy",
                                 component, version);
        }
        json_decref(row);
    }
    if ((g = gate(rq, component, action, version, out)) <= 0)
        return 0;
    snprintf(actor, sizeof actor, "mcp:%s", rq->client[0] ? rq->client : "unknown");
    dr.root = rq->srv->root;
    dr.component = component;
    dr.version = version;
    dr.nats_url = rq->srv->nats_url;
    dr.actor = actor;
    dr.timeout_ms = tmo > 0 ? (int)tmo : 60000;
    dr.prepare_timeout_ms = 15000;
    /* as mstack deploy: watched, then permanent or rolled back */
    dr.watch_ms = json_is_integer(watch) ? (int)json_integer_value(watch) : 10000;
    dr.max_error_rate_increase = 5;
    dr.min_requests = 20;
    dr.quiet = true;
    if (rollback)
        (void)cli_rollback_run(&dr, &hooks, &result);
    else
        (void)cli_deploy_run(&dr, &hooks, &result);
    if (result == NULL) {
        mcp_audit(rq, action, component, "error", NULL);
        return mcp_tool_fail(out, "%s of %s did not start: %s", action, component, ms_last_error());
    }
    outcome = json_string_value(json_object_get(result, "outcome"));
    json_object_set_new(result, "action", json_string(action));
    json_object_set_new(result, "escalated", json_false());
    /* promoted (no watch), permanent (watched and kept), rolled-back (a
     * rollback that went through); a promotion the watch undid is not */
    json_object_set_new(
        result, "deployed",
        json_boolean(outcome != NULL &&
                     (strcmp(outcome, "promoted") == 0 || strcmp(outcome, "permanent") == 0 ||
                      (rollback && strcmp(outcome, "rolled-back") == 0))));
    if (!rollback && json_object_get(result, "version") == NULL)
        json_object_set_new(result, "version", json_string(version));
    mcp_audit(rq, action, component, outcome != NULL ? outcome : "error", result);
    out->structured = result;
    return 0;
}

static int deploy(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    (void)err;
    return deploy_or_rollback(rq, args, out, false);
}

static int rollback(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    (void)err;
    return deploy_or_rollback(rq, args, out, true);
}

#define CHANGE_OUTPUT                                                                              \
    "{\"type\":\"object\",\"required\":[\"component\",\"action\",\"outcome\",\"deployed\","        \
    "\"escalated\"],\"properties\":{\"component\":{\"type\":\"string\"},\"action\":{\"enum\":["    \
    "\"deploy\",\"rollback\"]},\"version\":{\"type\":\"string\"},\"outcome\":{\"type\":"           \
    "\"string\"},\"deployed\":{\"type\":\"boolean\"},\"escalated\":{\"type\":\"boolean\"},"        \
    "\"escalation_id\":{\"type\":\"integer\"},\"message\":{\"type\":\"string\"},\"deployment\":{"  \
    "\"type\":\"integer\"},\"from\":{\"type\":[\"string\",\"null\"]},\"to\":{\"type\":"            \
    "\"string\"},\"cancelled\":{\"type\":\"boolean\"},\"detail\":{},\"promotion\":{},\"report\":"  \
    "{}}}"

const mcp_tool mcp_tool_deploy = {
    .name = "deploy",
    .title = "Deploy a recorded version",
    .description =
        "mstack deploy: when the component's agent-config allows deploying (may_deploy), "
        "tests the active version and the recorded candidate side by side, rejects a "
        "regression, else promotes the candidate on every host that runs the component (all or "
        "nothing). When may_deploy is false nothing is deployed: an escalation is recorded for "
        "a person and the result says so. Progress per phase with a progressToken; a cancel "
        "before the promotion stops it (the active version keeps serving), once the promotion "
        "began it completes.",
    .input_schema =
        "{\"type\":\"object\",\"required\":[\"component\",\"version\"],\"properties\":"
        "{" COMPONENT_PROP
        ",\"version\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":63},\"timeout_ms\":{"
        "\"type\":\"integer\",\"minimum\":100,\"maximum\":3600000,\"description\":\"time limit of "
        "each test suite (default 60000)\"},\"watch_ms\":{\"type\":\"integer\",\"minimum\":0,"
        "\"maximum\":3600000,\"description\":\"after the promotion, watch error rate and "
        "health this long, rolling back on degradation (default 10000; 0: no watch)\"}},"
        "\"additionalProperties\":false}",
    .output_schema = CHANGE_OUTPUT,
    .read_only = false,
    .destructive = true,
    .idempotent = false,
    .open_world = true,
    .component_arg = true,
    .run = deploy,
};

const mcp_tool mcp_tool_rollback = {
    .name = "rollback",
    .title = "Roll back to the previous version",
    .description = "mstack rollback: when the component's agent-config allows deploying "
                   "(may_deploy), switches every host back to the version in state previous (no "
                   "test run). When may_deploy is false an escalation is recorded instead and "
                   "the result says so. A cancel before the switch stops it.",
    .input_schema =
        "{\"type\":\"object\",\"required\":[\"component\"],\"properties\":{" COMPONENT_PROP
        "},\"additionalProperties\":false}",
    .output_schema = CHANGE_OUTPUT,
    .read_only = false,
    .destructive = true,
    .idempotent = false,
    .open_world = true,
    .component_arg = true,
    .run = rollback,
};
