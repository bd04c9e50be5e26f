/*
 * tools.c - tools/list and tools/call over the tool table.
 *
 * Adding a tool is one mcp_tool (name, schemas, annotations, function) in a
 * tool_*.c file and one line in `tools` below. Every schema is compiled once
 * at start (mcp_tools_init: a schema with a keyword the validator does not
 * support stops the server there, not at the first call). tools/call finds
 * the tool, checks the arguments against its compiled inputSchema
 * (mcp_args_check) before anything runs, and
 * turns the outcome into a CallToolResult: structuredContent (matching the
 * outputSchema) and the same JSON as text, or isError with a text that says
 * what to do. With --component, a tool's "component" argument is fixed to
 * that component (its schema says so).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

static const mcp_tool *const tools[] = {
    &mcp_tool_list_components,
    &mcp_tool_get_context,
    &mcp_tool_check_context,
    &mcp_tool_publish_message,
    &mcp_tool_request,
    &mcp_tool_health,
    &mcp_tool_services,
    &mcp_tool_evaluate_message,
    &mcp_tool_list_decisions,
    &mcp_tool_list_escalations,
    &mcp_tool_resolve_escalation,
    &mcp_tool_list_runs,
    &mcp_tool_list_versions,
    &mcp_tool_history,
    &mcp_tool_deploy,
    &mcp_tool_rollback,
};
#define NTOOLS (sizeof tools / sizeof tools[0])

const mcp_tool *mcp_tool_at(size_t i)
{
    return i < NTOOLS ? tools[i] : NULL;
}

/* The tool's input schema as the client sees it (new reference). */
static json_t *input_schema(const mcp_server *srv, const mcp_tool *t)
{
    json_error_t je;
    json_t *s = json_loads(t->input_schema, 0, &je);
    json_t *prop;

    if (s == NULL) {
        fprintf(stderr, "mstack mcp: tool %s: bad inputSchema: %s\n", t->name, je.text);
        return NULL;
    }
    prop = json_object_get(json_object_get(s, "properties"), "component");
    if (t->component_arg && srv->component != NULL && json_is_object(prop)) {
        json_t *req = json_object_get(s, "required");
        size_t i;
        json_t *x;
        json_object_set_new(prop, "enum", json_pack("[s]", srv->component));
        json_object_set_new(prop, "default", json_string(srv->component));
        json_array_foreach(req, i, x)
        {
            if (json_is_string(x) && strcmp(json_string_value(x), "component") == 0) {
                json_array_remove(req, i);
                break;
            }
        }
    }
    return s;
}

int mcp_tools_init(mcp_server *srv, char *msg, size_t cap)
{
    srv->in_schemas = calloc(NTOOLS, sizeof *srv->in_schemas);
    srv->out_schemas = calloc(NTOOLS, sizeof *srv->out_schemas);
    if (srv->in_schemas == NULL || srv->out_schemas == NULL) {
        snprintf(msg, cap, "out of memory compiling the tools' schemas");
        return -1;
    }
    for (size_t i = 0; i < NTOOLS; i++) {
        const mcp_tool *t = tools[i];
        json_t *in = input_schema(srv, t);
        char *text = in != NULL ? json_dumps(in, JSON_COMPACT) : NULL;
        json_decref(in);
        if (text == NULL) {
            snprintf(msg, cap, "tool %s: the inputSchema does not load", t->name);
            return -1;
        }
        srv->in_schemas[i] = mcp_schema_compile(t->name, "inputSchema", text, msg, cap);
        free(text);
        if (srv->in_schemas[i] == NULL)
            return -1;
        srv->out_schemas[i] =
            mcp_schema_compile(t->name, "outputSchema", t->output_schema, msg, cap);
        if (srv->out_schemas[i] == NULL)
            return -1;
    }
    return 0;
}

void mcp_tools_free(mcp_server *srv)
{
    for (size_t i = 0; i < NTOOLS; i++) {
        if (srv->in_schemas != NULL)
            ms_schema_destroy(srv->in_schemas[i]);
        if (srv->out_schemas != NULL)
            ms_schema_destroy(srv->out_schemas[i]);
    }
    free(srv->in_schemas);
    free(srv->out_schemas);
    srv->in_schemas = srv->out_schemas = NULL;
}

int mcp_tools_list(mcp_request *rq, json_t **result, mcp_error *err)
{
    json_t *list = json_array();
    json_error_t je;

    for (size_t i = 0; i < NTOOLS && list != NULL; i++) {
        const mcp_tool *t = tools[i];
        json_t *in = input_schema(rq->srv, t);
        json_t *outs = json_loads(t->output_schema, 0, &je);
        json_t *tool = json_pack(
            "{s:s, s:s, s:s, s:o, s:{s:s, s:b, s:b, s:b, s:b}}", "name", t->name, "title", t->title,
            "description", t->description, "inputSchema", in != NULL ? in : json_object(),
            "annotations", "title", t->title, "readOnlyHint", t->read_only, "destructiveHint",
            t->destructive, "idempotentHint", t->idempotent, "openWorldHint", t->open_world);
        if (tool == NULL) {
            json_decref(outs);
            json_decref(list);
            return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory listing tools");
        }
        if (outs != NULL)
            json_object_set_new(tool, "outputSchema", outs);
        json_array_append_new(list, tool);
    }
    *result = json_pack("{s:o}", "tools", list);
    if (*result == NULL)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory listing tools");
    mcp_decorate(rq, *result, 300000, "public");
    return 0;
}

int mcp_tool_fail(mcp_tool_out *out, const char *fmt, ...)
{
    va_list ap;
    out->failed = true;
    va_start(ap, fmt);
    vsnprintf(out->error, sizeof out->error, fmt, ap);
    va_end(ap);
    return 0;
}

const char *mcp_tool_component(const mcp_request *rq, const json_t *args)
{
    const char *c = json_string_value(json_object_get(args, "component"));
    return c != NULL ? c : rq->srv->component;
}

void mcp_audit(mcp_request *rq, const char *action, const char *component, const char *outcome,
               const json_t *detail)
{
    mcp_error err = {0};
    ms_registry *reg = mcp_registry(rq->srv, &err);
    char actor[160];

    snprintf(actor, sizeof actor, "mcp:%s", rq->client[0] ? rq->client : "unknown");
    if (reg == NULL) {
        mcp_log(rq->srv, rq, MCP_LOG_ERROR, "audit of %s not recorded: %s", action, err.message);
        return;
    }
    if (ms_registry_audit(reg, actor, action, component, outcome, detail) != MS_OK)
        mcp_log(rq->srv, rq, MCP_LOG_ERROR, "audit of %s not recorded: %s", action,
                ms_last_error());
}

static json_t *text_content(const char *text)
{
    return json_pack("[{s:s, s:s}]", "type", "text", "text", text);
}

int mcp_tools_call(mcp_request *rq, json_t **result, mcp_error *err)
{
    const char *name = json_string_value(json_object_get(rq->params, "name"));
    json_t *args = json_object_get(rq->params, "arguments");
    const mcp_tool *tool = NULL;
    json_t *errors = NULL;
    mcp_tool_out out = {0};
    char msg[768];
    char *text = NULL;
    size_t ti = 0;
    int rc = 0;

    if (name == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS, "tools/call: params.name must be a string");
    if (args != NULL && !json_is_object(args))
        return mcp_fail(err, MCP_INVALID_PARAMS, "tools/call: params.arguments must be an object");
    for (size_t i = 0; i < NTOOLS; i++) {
        if (strcmp(tools[i]->name, name) == 0) {
            tool = tools[i];
            ti = i;
        }
    }
    if (tool == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "unknown tool '%s': tools/list names the tools of this server", name);
    args = args != NULL ? json_incref(args) : json_object();
    if (!mcp_args_check(rq->srv->in_schemas[ti], args, msg, sizeof msg, &errors)) {
        /* 2025-11-25 reports bad arguments as a tool error the model can
         * correct; older revisions as invalid params (data lists them) */
        if (!rq->stateless && mcp_version_cmp(rq->version, "2025-11-25") < 0) {
            rc = mcp_fail(err, MCP_INVALID_PARAMS, "invalid arguments for %s: %s", name, msg);
            err->data = json_pack("{s:s, s:o}", "tool", name, "errors",
                                  errors != NULL ? errors : json_array());
            errors = NULL;
            goto cleanup;
        }
        mcp_tool_fail(&out, "invalid arguments for %s: %s (see its inputSchema in tools/list)",
                      name, msg);
    } else {
        rc = tool->run(rq, args, &out, err);
        if (rc != 0)
            goto cleanup;
    }
    if (out.failed) {
        *result = json_pack("{s:o, s:b}", "content", text_content(out.error), "isError", 1);
    } else {
        if (out.structured == NULL)
            out.structured = json_object();
        if (ms_schema_validate(rq->srv->out_schemas[ti], out.structured, 0, NULL, NULL) != MS_OK)
            mcp_log(rq->srv, rq, MCP_LOG_ERROR,
                    "tool %s: structuredContent breaks its outputSchema: %s (a server bug)", name,
                    ms_last_error());
        text = json_dumps(out.structured, JSON_COMPACT);
        *result = json_pack("{s:o, s:O, s:b}", "content", text_content(text != NULL ? text : ""),
                            "structuredContent", out.structured, "isError", 0);
    }
    if (*result == NULL)
        rc = mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory building the result of %s", name);
cleanup:
    free(text);
    json_decref(errors);
    json_decref(out.structured);
    json_decref(args);
    return rc;
}
