/*
 * tool_registry.c - tools over the registry (<root>/.mainstack/registry.db):
 * list_decisions and list_escalations (paged: limit and before_id, with
 * next_before_id when there may be more) and resolve_escalation (recorded in
 * the audit log with the client's name).
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

static int resolve_escalation(mcp_request *rq, const json_t *args, mcp_tool_out *out,
                              mcp_error *err)
{
    ms_registry *reg = mcp_registry(rq->srv, err);
    json_int_t id = json_integer_value(json_object_get(args, "id"));
    const char *decision = json_string_value(json_object_get(args, "decision"));
    const char *note = json_string_value(json_object_get(args, "note"));
    bool approve = strcmp(decision, "approve") == 0;
    json_t *esc = NULL, *detail;
    char component[80], by[160];
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
    if (rq->srv->component != NULL && strcmp(component, rq->srv->component) != 0) {
        json_decref(esc);
        return mcp_tool_fail(out,
                             "escalation %lld belongs to another component: this server "
                             "only serves %s",
                             (long long)id, rq->srv->component);
    }
    json_decref(esc);
    esc = NULL;
    snprintf(by, sizeof by, "mcp:%s", rq->client);
    s = ms_registry_escalation_resolve(reg, id, approve, note, by, &esc);
    detail = json_pack("{s:I, s:s}", "id", id, "decision", decision);
    if (detail != NULL && note != NULL)
        json_object_set_new(detail, "note", json_string(note));
    mcp_audit(rq, "escalation.resolve", component, s == MS_OK ? "ok" : ms_last_error(), detail);
    json_decref(detail);
    if (s == MS_ERR_STATE)
        return mcp_tool_fail(out, "escalation %lld is not open: %s (nothing changed)",
                             (long long)id, ms_last_error());
    if (s != MS_OK)
        return mcp_tool_fail(out, "resolving escalation %lld failed: %s", (long long)id,
                             ms_last_error());
    out->structured = json_pack("{s:o}", "escalation", esc);
    return 0;
}

const mcp_tool mcp_tool_resolve_escalation = {
    .name = "resolve_escalation",
    .title = "Resolve an escalation",
    .description = "Approves or rejects an open escalation, with an optional note; recorded "
                   "with the client's name. An escalation is resolved once: a second call "
                   "fails and changes nothing.",
    .input_schema = "{\"type\":\"object\",\"required\":[\"id\",\"decision\"],\"properties\":{"
                    "\"id\":{\"type\":\"integer\",\"minimum\":1},\"decision\":{\"type\":"
                    "\"string\",\"enum\":[\"approve\",\"reject\"]},\"note\":{\"type\":"
                    "\"string\",\"maxLength\":4000}},\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"required\":[\"escalation\"],\"properties\":{"
                     "\"escalation\":{\"type\":\"object\",\"required\":[\"id\",\"state\"],"
                     "\"properties\":{\"id\":{\"type\":\"integer\"},\"state\":{\"type\":"
                     "\"string\"}}}}}",
    .read_only = false,
    .destructive = false,
    .idempotent = false,
    .open_world = false,
    .component_arg = false,
    .run = resolve_escalation,
};
