/*
 * tool_project.c - tools over the project tree: list_components and
 * get_context. Both read files only (through project.c, inside the root).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

/* Context larger than this (serialised) is not returned whole. */
#define CONTEXT_MAX_BYTES (512u * 1024u)

static int list_components(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    json_t *names = mcp_components(rq->srv), *list = json_array(), *n;
    size_t i;
    (void)args;

    if (names == NULL || list == NULL) {
        json_decref(names);
        json_decref(list);
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    }
    json_array_foreach(names, i, n)
    {
        const char *name = json_string_value(n);
        char rel[160], msg[512];
        json_t *iface, *entry;
        int e1 = 0, e2 = 0;
        snprintf(rel, sizeof rel, "components/%s/interface.json", name);
        iface = mcp_read_json(rq->srv, rel, msg, sizeof msg, NULL);
        snprintf(rel, sizeof rel, "components/%s/context/context.json", name);
        char *d = NULL;
        size_t l = 0;
        e1 = mcp_read_file(rq->srv, rel, 1, &d, &l, msg, sizeof msg);
        free(d);
        snprintf(rel, sizeof rel, "components/%s/context/agent-config.json", name);
        e2 = mcp_read_file(rq->srv, rel, 1, &d, &l, msg, sizeof msg);
        free(d);
        entry = json_pack(
            "{s:s, s:s, s:s, s:I, s:b, s:b}", "name", name, "version",
            json_string_value(json_object_get(iface, "version")) != NULL
                ? json_string_value(json_object_get(iface, "version"))
                : "",
            "description",
            json_string_value(json_object_get(iface, "description")) != NULL
                ? json_string_value(json_object_get(iface, "description"))
                : "",
            "endpoints", (json_int_t)json_array_size(json_object_get(iface, "serves")),
            "has_context", e1 == 0 || e1 == EFBIG, "has_agent_config", e2 == 0 || e2 == EFBIG);
        json_decref(iface);
        if (entry != NULL)
            json_array_append_new(list, entry);
    }
    json_decref(names);
    out->structured = json_pack("{s:s, s:o}", "root", rq->srv->root, "components", list);
    return 0;
}

const mcp_tool mcp_tool_list_components = {
    .name = "list_components",
    .title = "List components",
    .description = "Lists the components of the project (components/<name>/ with an "
                   "interface.json): name, version, description, number of endpoints, and "
                   "whether context.json and agent-config.json exist.",
    .input_schema = "{\"type\":\"object\",\"properties\":{},\"additionalProperties\":false}",
    .output_schema =
        "{\"type\":\"object\",\"required\":[\"root\",\"components\"],\"properties\":{"
        "\"root\":{\"type\":\"string\"},\"components\":{\"type\":\"array\",\"items\":{"
        "\"type\":\"object\",\"required\":[\"name\",\"version\",\"description\",\"endpoints\","
        "\"has_context\",\"has_agent_config\"],\"properties\":{\"name\":{\"type\":\"string\"},"
        "\"version\":{\"type\":\"string\"},\"description\":{\"type\":\"string\"},"
        "\"endpoints\":{\"type\":\"integer\"},\"has_context\":{\"type\":\"boolean\"},"
        "\"has_agent_config\":{\"type\":\"boolean\"}}}}}}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = false,
    .run = list_components,
};

static int get_context(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err)
{
    const char *component = mcp_tool_component(rq, args);
    const char *section = json_string_value(json_object_get(args, "section"));
    char rel[160], msg[768];
    json_t *ctx, *value;
    char *text;
    int errnum = 0;
    bool truncated = false;
    (void)err;

    if (!mcp_component_visible(rq->srv, component))
        return mcp_tool_fail(out,
                             "no component '%s' in this project: list_components names the "
                             "components there are",
                             component);
    snprintf(rel, sizeof rel, "components/%s/context/context.json", component);
    ctx = mcp_read_json(rq->srv, rel, msg, sizeof msg, &errnum);
    if (ctx == NULL)
        return mcp_tool_fail(out, "%s has no readable context: %s (create %s)", component, msg,
                             rel);
    if (section != NULL) {
        value = json_object_get(ctx, section);
        if (value == NULL) {
            char keys[512] = "";
            const char *k;
            json_t *v;
            json_object_foreach(ctx, k, v)
            {
                size_t l = strlen(keys);
                snprintf(keys + l, sizeof keys - l, "%s%s", l ? ", " : "", k);
            }
            json_decref(ctx);
            return mcp_tool_fail(out, "context of %s has no section '%s' (sections: %s)", component,
                                 section, keys);
        }
        value = json_pack("{s:O}", section, value);
        json_decref(ctx);
        ctx = value;
    }
    text = json_dumps(ctx, JSON_COMPACT);
    if (text == NULL || strlen(text) > CONTEXT_MAX_BYTES) {
        json_decref(ctx);
        ctx = json_object();
        truncated = true;
    }
    free(text);
    out->structured = json_pack("{s:s, s:o, s:b}", "component", component, "context", ctx,
                                "truncated", truncated);
    if (truncated)
        json_object_set_new(out->structured, "note",
                            json_string("the context is larger than 512 KiB: ask for one "
                                        "section at a time (argument section)"));
    return 0;
}

const mcp_tool mcp_tool_get_context = {
    .name = "get_context",
    .title = "Get a component's context",
    .description = "Returns a component's context/context.json (purpose, design decisions, "
                   "dependencies, interfaces, known issues, ...), whole or one top-level "
                   "section.",
    .input_schema = "{\"type\":\"object\",\"required\":[\"component\"],\"properties\":{"
                    "\"component\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":64,"
                    "\"description\":\"component name ([a-z0-9-])\"},"
                    "\"section\":{\"type\":\"string\",\"minLength\":1,\"description\":"
                    "\"one top-level key, e.g. design_decisions\"}},"
                    "\"additionalProperties\":false}",
    .output_schema = "{\"type\":\"object\",\"required\":[\"component\",\"context\","
                     "\"truncated\"],\"properties\":{\"component\":{\"type\":\"string\"},"
                     "\"context\":{\"type\":\"object\"},\"truncated\":{\"type\":\"boolean\"},"
                     "\"note\":{\"type\":\"string\"}}}",
    .read_only = true,
    .destructive = false,
    .idempotent = true,
    .open_world = false,
    .component_arg = true,
    .run = get_context,
};
