/*
 * tool_registry.c - tools over the registry (<root>/.mainstack/registry.db):
 * list_decisions, list_escalations and list_runs (paged: limit and
 * before_id, with next_before_id when there may be more). resolve_escalation
 * is in tool_agent.c (it resumes the agent's work).
 */
#include <stdio.h>
#include <string.h>

#include "mcp.h"

#define PAGE_DEFAULT 20
#define PAGE_MAX 200

/* The page fields of a listing result. */
static json_t *page(const char *key, json_t *rows, size_t limit)
{
    json_t *out = json_pack("{s:o, s:I}", key, rows, "count", (json_int_t)json_array_size(rows));
    if (out != NULL && json_array_size(rows) == limit && limit > 0) {
        json_t *last = json_array_get(rows, json_array_size(rows) - 1);
        json_object_set(out, "next_before_id", json_object_get(last, "id"));
    }
    return out;
}

static size_t limit_of(const json_t *args)
{
    json_int_t l = json_integer_value(json_object_get(args, "limit"));
    return l > 0 ? (size_t)l : PAGE_DEFAULT;
}

static int list_decisions(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    ms_registry *reg = mcp_registry(rq->srv, err);
    const char *component = mcp_tool_component(rq, args);
    size_t limit = limit_of(args);
    json_t *rows = NULL;

    if (reg == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    if (ms_registry_decisions(reg, component,
                              json_integer_value(json_object_get(args, "before_id")), limit,
                              &rows) != MS_OK)
        return mcp_tool_fail(out, "reading the decisions failed: %s", ms_last_error());
    out->structured = page("decisions", rows, limit);
    return 0;
}

#define PAGING_PROPS                                                                               \
    "\"limit\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":200,\"description\":"               \
    "\"rows per page (default 20)\"},\"before_id\":{\"type\":\"integer\",\"minimum\":1,"           \
    "\"description\":\"next page: the next_before_id of the previous one\"}"

#define PAGE_SCHEMA(key)                                                                           \
    "{\"type\":\"object\",\"required\":[\"" key "\",\"count\"],\"properties\":{\"" key             \
    "\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"id\"],"                 \
    "\"properties\":{\"id\":{\"type\":\"integer\"}}}},\"count\":{\"type\":\"integer\"},"           \
    "\"next_before_id\":{\"type\":\"integer\"}}}"

const mcp_tool mcp_tool_list_decisions = {
    .name = "list_decisions",
    .title = "List agent decisions",
    .description = "The decisions agents recorded (ignore, act, escalate; rule, reason, "
                   "event), newest first, paged.",
    .input_schema =
        "{\"type\":\"object\",\"properties\":{\"component\":{\"type\":\"string\","
        "\"minLength\":1,\"maxLength\":64}," PAGING_PROPS "},\"additionalProperties\":false}",
    .output_schema = PAGE_SCHEMA("decisions"),
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = list_decisions,
};

static int list_escalations(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    ms_registry *reg = mcp_registry(rq->srv, err);
    const char *component = mcp_tool_component(rq, args);
    const char *state = json_string_value(json_object_get(args, "state"));
    size_t limit = limit_of(args);
    json_t *rows = NULL;

    if (reg == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    if (state != NULL && strcmp(state, "any") == 0)
        state = NULL;
    else if (state == NULL)
        state = "open";
    if (ms_registry_escalations(reg, component, state,
                                json_integer_value(json_object_get(args, "before_id")), limit,
                                &rows) != MS_OK)
        return mcp_tool_fail(out, "reading the escalations failed: %s", ms_last_error());
    out->structured = page("escalations", rows, limit);
    return 0;
}

const mcp_tool mcp_tool_list_escalations = {
    .name = "list_escalations",
    .title = "List escalations",
    .description = "Escalations waiting for a person (state open, the default) or resolved "
                   "ones, newest first, paged; each with its reason and detail.",
    .input_schema = "{\"type\":\"object\",\"properties\":{\"component\":{\"type\":\"string\","
                    "\"minLength\":1,\"maxLength\":64},\"state\":{\"type\":\"string\","
                    "\"enum\":[\"open\",\"approved\",\"rejected\",\"any\"]}," PAGING_PROPS
                    "},\"additionalProperties\":false}",
    .output_schema = PAGE_SCHEMA("escalations"),
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = list_escalations,
};

/* A run's steps without the bulky input (the whole context and message, in
 * every failed step's detail): list_escalations and the run logs have it. */
static void slim_steps(json_t *run)
{
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(run, "steps"), i, st)
    {
        json_t *detail = json_object_get(st, "detail");
        if (json_is_object(detail) && json_object_get(detail, "input") != NULL)
            json_object_del(detail, "input");
    }
}

static int list_runs(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    ms_registry *reg = mcp_registry(rq->srv, err);
    const char *component = mcp_tool_component(rq, args);
    json_int_t id = json_integer_value(json_object_get(args, "id"));
    size_t limit = limit_of(args);
    json_t *rows = NULL, *run = NULL;
    ms_status s;

    if (reg == NULL)
        return mcp_tool_fail(out, "%s", err->message);
    if (id > 0) {
        const char *c;
        s = ms_registry_run_get(reg, id, &run);
        if (s == MS_ERR_NOT_FOUND)
            return mcp_tool_fail(out, "no run %lld: list_runs without id lists them",
                                 (long long)id);
        if (s != MS_OK)
            return mcp_tool_fail(out, "reading run %lld failed: %s", (long long)id,
                                 ms_last_error());
        c = json_string_value(json_object_get(run, "component"));
        if (component != NULL && (c == NULL || strcmp(c, component) != 0)) {
            json_decref(run);
            return mcp_tool_fail(out, "run %lld belongs to another component (%s)", (long long)id,
                                 rq->srv->component != NULL ? "outside this server's scope"
                                                            : (c != NULL ? c : "none"));
        }
        slim_steps(run);
        out->structured = json_pack("{s:[o], s:i}", "runs", run, "count", 1);
        return 0;
    }
    if (ms_registry_runs(reg, component, json_integer_value(json_object_get(args, "before_id")),
                         limit, &rows) != MS_OK)
        return mcp_tool_fail(out, "reading the runs failed: %s", ms_last_error());
    out->structured = page("runs", rows, limit);
    return 0;
}

const mcp_tool mcp_tool_list_runs = {
    .name = "list_runs",
    .title = "List pipeline runs",
    .description =
        "The agents' recent runs of their action pipeline (change, build, test, version, "
        "deploy): "
        "component, decision, the step reached and the state (running, succeeded, "
        "escalated, ...), newest first, paged. With id: that run with its steps "
        "(exit status, duration, log file).",
    .input_schema = "{\"type\":\"object\",\"properties\":{\"component\":{\"type\":\"string\","
                    "\"minLength\":1,\"maxLength\":64},\"id\":{\"type\":\"integer\",\"minimum\":"
                    "1,\"description\":\"one run, with its steps\"}," PAGING_PROPS
                    "},\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"runs\",\"count\"],\"properties\":{\"runs\":{"
        "\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":[\"id\",\"component\","
        "\"step\",\"state\"],\"properties\":{\"id\":{\"type\":\"integer\"},\"component\":{"
        "\"type\":\"string\"},\"decision_id\":{\"type\":[\"integer\",\"null\"]},\"step\":{"
        "\"type\":\"string\"},\"state\":{\"enum\":[\"running\",\"succeeded\",\"failed\","
        "\"escalated\",\"cancelled\"]},\"time\":{\"type\":\"string\"},\"updated_time\":{\"type\":"
        "\"string\"},\"steps\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"required\":["
        "\"seq\",\"step\",\"state\"],\"properties\":{\"seq\":{\"type\":\"integer\"},\"step\":{"
        "\"type\":\"string\"},\"state\":{\"type\":\"string\"},\"time\":{\"type\":\"string\"},"
        "\"detail\":{}}}}}}},\"count\":{\"type\":\"integer\",\"minimum\":0},\"next_before_id\":{"
        "\"type\":\"integer\"}},\"additionalProperties\":false}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = list_runs,
};
