/*
 * prompts.c - maintain_component (the component's AGENTS.md, its open
 * escalations and its recent decisions, composed for the agent that looks
 * after it) and review_escalation (one escalation with the context needed
 * to approve or reject it).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

int mcp_prompts_list(mcp_request *rq, json_t **result, mcp_error *err)
{
    *result = json_pack(
        "{s:[{s:s, s:s, s:s, s:[{s:s, s:s, s:b}]}, {s:s, s:s, s:s, s:[{s:s, s:s, s:b}]}]}",
        "prompts", "name", "maintain_component", "title", "Maintain a component", "description",
        "Brief for the agent that maintains a component: its context, open escalations and "
        "recent decisions.",
        "arguments", "name", "component", "description", "the component's name", "required",
        rq->srv->component == NULL, "name", "review_escalation", "title", "Review an escalation",
        "description",
        "One escalation with what is needed to decide it, and how to record the decision.",
        "arguments", "name", "id", "description", "the escalation's id", "required", 1);
    if (*result == NULL)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    mcp_decorate(rq, *result, 300000, "public");
    return 0;
}

static json_t *user_message(const char *text)
{
    return json_pack("{s:s, s:{s:s, s:s}}", "role", "user", "content", "type", "text", "text",
                     text);
}

/* AGENTS.md of component, or NULL with err filled. */
static char *agents_md(mcp_request *rq, const char *component, mcp_error *err)
{
    char msg[768];
    char *md = NULL;

    if (mcp_agents_md(rq->srv, component, &md, msg, sizeof msg) != 0) {
        mcp_fail(err, MCP_INVALID_PARAMS, "component %s has no usable context: %s", component, msg);
        return NULL;
    }
    return md;
}

static char *dump_or(json_t *v, const char *none)
{
    char *t = json_array_size(v) > 0 ? json_dumps(v, JSON_INDENT(2)) : strdup(none);
    return t;
}

static int maintain(mcp_request *rq, const json_t *args, json_t **result, mcp_error *err)
{
    const char *component = json_string_value(json_object_get(args, "component"));
    ms_registry *reg;
    json_t *esc = NULL, *dec = NULL;
    char *md = NULL, *esc_t = NULL, *dec_t = NULL, *text = NULL;
    size_t len;
    int rc = 0;

    if (component == NULL)
        component = rq->srv->component;
    if (component == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "maintain_component: argument component is required");
    if (!mcp_component_visible(rq->srv, component))
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "maintain_component: no component '%s' here (list_components)", component);
    if ((md = agents_md(rq, component, err)) == NULL)
        return err->code;
    reg = mcp_registry(rq->srv, err);
    if (reg == NULL) {
        rc = err->code;
        goto cleanup;
    }
    if (ms_registry_escalations(reg, component, "open", 0, 20, &esc) != MS_OK ||
        ms_registry_decisions(reg, component, 0, 20, &dec) != MS_OK) {
        rc = mcp_fail(err, MCP_INTERNAL_ERROR, "reading the registry failed: %s", ms_last_error());
        goto cleanup;
    }
    esc_t = dump_or(esc, "(none)");
    dec_t = dump_or(dec, "(none)");
    len = strlen(md) + strlen(esc_t) + strlen(dec_t) + 1024;
    text = malloc(len);
    if (esc_t == NULL || dec_t == NULL || text == NULL) {
        rc = mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
        goto cleanup;
    }
    snprintf(text, len,
             "You maintain the mainstack component %s. Its context follows; keep to its design "
             "decisions and constraints, and escalate what they do not cover.\n\n%s\n\n"
             "## Open escalations (newest first, at most 20)\n\n%s\n\n"
             "## Recent decisions (newest first, at most 20)\n\n%s\n\n"
             "Start with the open escalations: review each (prompt review_escalation) and "
             "resolve it with the resolve_escalation tool when a person has decided. Use "
             "health and services to see what runs.",
             component, md, esc_t, dec_t);
    *result = json_pack("{s:s, s:[o]}", "description", "maintain the component", "messages",
                        user_message(text));
    if (*result == NULL)
        rc = mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
cleanup:
    free(text);
    free(esc_t);
    free(dec_t);
    free(md);
    json_decref(esc);
    json_decref(dec);
    return rc;
}

static int review(mcp_request *rq, const json_t *args, json_t **result, mcp_error *err)
{
    const char *ids = json_string_value(json_object_get(args, "id"));
    ms_registry *reg;
    json_t *esc = NULL;
    const char *component;
    char *end = NULL, *esc_t = NULL, *text = NULL, *md = NULL;
    long long id;
    size_t len;
    ms_status s;
    int rc = 0;

    if (ids == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS, "review_escalation: argument id is required");
    errno = 0;
    id = strtoll(ids, &end, 10);
    if (errno != 0 || end == ids || *end != '\0' || id <= 0)
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "review_escalation: id '%s' is not a positive integer", ids);
    reg = mcp_registry(rq->srv, err);
    if (reg == NULL)
        return err->code;
    s = ms_registry_escalation_get(reg, id, &esc);
    if (s != MS_OK)
        return mcp_fail(err, MCP_INVALID_PARAMS, "review_escalation: no escalation %lld (%s)", id,
                        s == MS_ERR_NOT_FOUND ? "list_escalations shows them" : ms_last_error());
    component = json_string_value(json_object_get(esc, "component"));
    if (component == NULL || !mcp_component_visible(rq->srv, component)) {
        json_decref(esc);
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "review_escalation: escalation %lld is not of a component this server "
                        "serves",
                        id);
    }
    md = agents_md(rq, component, err);
    if (md == NULL) /* no context: the escalation alone */
        md = strdup("(the component has no context)");
    esc_t = json_dumps(esc, JSON_INDENT(2));
    len = (md != NULL ? strlen(md) : 0) + (esc_t != NULL ? strlen(esc_t) : 0) + 1024;
    text = malloc(len);
    if (md == NULL || esc_t == NULL || text == NULL) {
        rc = mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
        goto cleanup;
    }
    snprintf(text, len,
             "Review escalation %lld of the mainstack component %s.\n\n## The escalation\n\n%s"
             "\n\n## The component's context\n\n%s\n\nSay what the escalation asks, what "
             "approving and rejecting would each lead to, and which the component's design "
             "decisions support. Once a person decides, record it with the resolve_escalation "
             "tool (id %lld, decision approve or reject, and a note).",
             id, component, esc_t, md, id);
    *result = json_pack("{s:s, s:[o]}", "description", "review one escalation", "messages",
                        user_message(text));
    if (*result == NULL)
        rc = mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
cleanup:
    free(text);
    free(esc_t);
    free(md);
    json_decref(esc);
    return rc;
}

int mcp_prompts_get(mcp_request *rq, json_t **result, mcp_error *err)
{
    const char *name = json_string_value(json_object_get(rq->params, "name"));
    json_t *args = json_object_get(rq->params, "arguments");
    const char *k;
    json_t *v;

    if (name == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS, "prompts/get: params.name must be a string");
    if (args != NULL && !json_is_object(args))
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "prompts/get: params.arguments must be an "
                        "object of strings");
    json_object_foreach(args, k, v)
    {
        if (!json_is_string(v))
            return mcp_fail(err, MCP_INVALID_PARAMS, "prompts/get: argument %s must be a string",
                            k);
    }
    if (strcmp(name, "maintain_component") == 0)
        return maintain(rq, args, result, err);
    if (strcmp(name, "review_escalation") == 0)
        return review(rq, args, result, err);
    return mcp_fail(err, MCP_INVALID_PARAMS,
                    "unknown prompt '%s' (prompts/list: maintain_component, review_escalation)",
                    name);
}
