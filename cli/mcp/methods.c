/*
 * methods.c - the method table and the lifecycle: initialize with version
 * negotiation (2025-11-25 down to 2024-11-05), server/discover (2026-07-28),
 * ping and logging/setLevel; plus what every result of a 2026-07-28 request
 * carries (resultType, the server's identity in _meta, and the cache hints
 * ttlMs/cacheScope on list and read results).
 */
#include <stdio.h>
#include <string.h>

#include "mcp.h"

const char *const mcp_versions[] = {MCP_VERSION_STATELESS, "2025-11-25", "2025-06-18",
                                    "2025-03-26",          "2024-11-05", NULL};

#define SERVER_INSTRUCTIONS                                                                        \
    "mainstack: message-driven components on NATS. Tools list components and their context, "      \
    "talk to running components (publish_message, request, health, services) and read and "        \
    "resolve the registry's decisions and escalations. Resources: each component's "               \
    "context.json, agent-config.json, interface.json and AGENTS.md, and its live open "            \
    "escalations (subscribe for updates). Prompt maintain_component briefs the agent that "        \
    "looks after a component; review_escalation prepares a decision on one escalation."

int mcp_version_cmp(const char *a, const char *b)
{
    return strcmp(a, b); /* YYYY-MM-DD compares as text */
}

json_t *mcp_capabilities(void)
{
    return json_pack("{s:{}, s:{s:b}, s:{s:b, s:b}, s:{s:b}}", "logging", "tools", "listChanged", 0,
                     "resources", "subscribe", 1, "listChanged", 0, "prompts", "listChanged", 0);
}

json_t *mcp_server_info(void)
{
    return json_pack("{s:s, s:s, s:s}", "name", "mstack-mcp", "title", "mainstack", "version",
                     MS_VERSION_STRING);
}

void mcp_decorate(const mcp_request *rq, json_t *result, long ttl_ms, const char *scope)
{
    if (!rq->stateless || !json_is_object(result))
        return;
    json_object_set_new(result, "resultType", json_string("complete"));
    if (ttl_ms >= 0) {
        json_object_set_new(result, "ttlMs", json_integer(ttl_ms));
        json_object_set_new(result, "cacheScope", json_string(scope));
    }
}

void mcp_stamp_result(json_t *result)
{
    json_t *meta;
    if (!json_is_object(result))
        return;
    if (json_object_get(result, "resultType") == NULL)
        json_object_set_new(result, "resultType", json_string("complete"));
    meta = json_object_get(result, "_meta");
    if (meta == NULL) {
        meta = json_object();
        json_object_set_new(result, "_meta", meta);
    }
    if (json_is_object(meta) && json_object_get(meta, MCP_META_SERVER_INFO) == NULL)
        json_object_set_new(meta, MCP_META_SERVER_INFO, mcp_server_info());
}

static int m_initialize(mcp_request *rq, json_t **result, mcp_error *err)
{
    mcp_server *srv = rq->srv;
    const json_t *p = rq->params;
    const char *asked = json_string_value(json_object_get(p, "protocolVersion"));
    const json_t *info = json_object_get(p, "clientInfo");
    const char *chosen = MCP_VERSION_LATEST_SESSION;

    if (asked == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "initialize: params.protocolVersion must be a string such as \"%s\"",
                        MCP_VERSION_LATEST_SESSION);
    if (json_object_get(p, "capabilities") != NULL &&
        !json_is_object(json_object_get(p, "capabilities")))
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "initialize: params.capabilities must be an "
                        "object");
    if (info != NULL && (!json_is_object(info) || !json_is_string(json_object_get(info, "name"))))
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "initialize: params.clientInfo must be an object with a name");
    /* the client's version when it is a session revision we speak, else our
     * newest session revision (the client decides whether it can use it) */
    for (size_t i = 1; mcp_versions[i] != NULL; i++) {
        if (strcmp(asked, mcp_versions[i]) == 0)
            chosen = mcp_versions[i];
    }
    pthread_mutex_lock(&srv->lock);
    if (srv->initialize_seen) {
        pthread_mutex_unlock(&srv->lock);
        return mcp_fail(err, MCP_INVALID_REQUEST,
                        "initialize was already answered (protocol %s): one session per "
                        "process; restart the server for another",
                        srv->version);
    }
    srv->initialize_seen = true;
    snprintf(srv->version, sizeof srv->version, "%s", chosen);
    snprintf(srv->client, sizeof srv->client, "%s",
             info != NULL ? json_string_value(json_object_get(info, "name")) : "unknown");
    pthread_mutex_unlock(&srv->lock);
    fprintf(stderr, "mstack mcp: client %s asked for %s, speaking %s\n", srv->client, asked,
            chosen);
    *result = json_pack("{s:s, s:o, s:o, s:s}", "protocolVersion", chosen, "capabilities",
                        mcp_capabilities(), "serverInfo", mcp_server_info(), "instructions",
                        SERVER_INSTRUCTIONS);
    return *result != NULL ? 0 : mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
}

static int m_discover(mcp_request *rq, json_t **result, mcp_error *err)
{
    /* only the revisions a client can name in _meta: the session revisions
     * are reached through initialize, not through discovery (set_era makes
     * sure this is a 2026-07-28 request); the server's identity is in the
     * result's _meta (mcp_stamp_result), as on every 2026-07-28 result */
    *result = json_pack("{s:[s], s:o, s:s}", "supportedVersions", MCP_VERSION_STATELESS,
                        "capabilities", mcp_capabilities(), "instructions", SERVER_INSTRUCTIONS);
    if (*result == NULL)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    mcp_decorate(rq, *result, 60000, "public");
    return 0;
}

static int m_ping(mcp_request *rq, json_t **result, mcp_error *err)
{
    (void)rq;
    (void)err;
    *result = json_object();
    return 0;
}

static int m_set_level(mcp_request *rq, json_t **result, mcp_error *err)
{
    int level = mcp_log_level_parse(json_string_value(json_object_get(rq->params, "level")));
    if (level < 0)
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "logging/setLevel: params.level must be one of debug, info, notice, "
                        "warning, error, critical, alert, emergency");
    pthread_mutex_lock(&rq->srv->lock);
    rq->srv->log_level = level;
    pthread_mutex_unlock(&rq->srv->lock);
    *result = json_object();
    return 0;
}

typedef struct method {
    const char *name;
    mcp_method_fn fn;
    bool threaded;    /* may take long: a worker thread */
    bool before_init; /* allowed before initialize */
} method;

static const method methods[] = {
    {"initialize", m_initialize, false, true},
    {"ping", m_ping, false, true},
    {"server/discover", m_discover, false, true},
    {"logging/setLevel", m_set_level, false, false},
    {"tools/list", mcp_tools_list, false, false},
    {"tools/call", mcp_tools_call, true, false},
    {"resources/list", mcp_resources_list, false, false},
    {"resources/templates/list", mcp_resources_templates, false, false},
    {"resources/read", mcp_resources_read, true, false},
    {"resources/subscribe", mcp_resources_subscribe, false, false},
    {"resources/unsubscribe", mcp_resources_unsubscribe, false, false},
    {"subscriptions/listen", mcp_subscriptions_listen, false, false},
    {"prompts/list", mcp_prompts_list, false, false},
    {"prompts/get", mcp_prompts_get, true, false},
};

mcp_method_fn mcp_method_find(const char *name, bool *threaded, bool *before_init)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        if (strcmp(methods[i].name, name) == 0) {
            *threaded = methods[i].threaded;
            *before_init = methods[i].before_init;
            return methods[i].fn;
        }
    }
    return NULL;
}
