/*
 * resources.c - each component's files as MCP resources, and its live open
 * escalations.
 *
 *   mainstack://components/{name}/context.json       context/context.json
 *   mainstack://components/{name}/agent-config.json  context/agent-config.json
 *   mainstack://components/{name}/interface.json     interface.json
 *   mainstack://components/{name}/AGENTS.md          rendered from the context files
 *                                                    (ms_context_render_dir: the bytes
 *                                                    `mstack context render` writes)
 *   mainstack://components/{name}/escalations        open escalations (registry)
 *
 * The escalations resources can be subscribed to (resources/subscribe, or
 * subscriptions/listen in 2026-07-28): one NATS subscription on
 * mainstack.escalation.* (or .<component> under --component), made at the
 * first subscription, turns each escalation announced there into
 * notifications/resources/updated for the subscribers of that component.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

#define URI_PREFIX "mainstack://components/"
#define FILE_MAX (8u * 1024u * 1024u)

typedef struct mcp_sub {
    char uri[160];
    char component[65];
    json_t *listen_id; /* subscriptions/listen request id, or NULL (resources/subscribe) */
    struct mcp_sub *next;
} mcp_sub;

typedef struct kind {
    const char *file; /* last URI segment */
    const char *rel;  /* path under components/<name>/, NULL: generated */
    const char *mime;
    const char *title;
    const char *about;
} kind;

static const kind kinds[] = {
    {"context.json", "context/context.json", "application/json", "context",
     "purpose, design decisions, dependencies, interfaces, known issues"},
    {"agent-config.json", "context/agent-config.json", "application/json", "agent config",
     "what the maintaining agent watches, its rules, autonomy and escalation policy"},
    {"interface.json", "interface.json", "application/json", "interface",
     "subjects served, emitted and consumed, with their JSON Schemas"},
    {"AGENTS.md", NULL, "text/markdown", "AGENTS.md",
     "the context rendered as instructions for the agent that maintains the component"},
    {"escalations", NULL, "application/json", "open escalations",
     "escalations waiting for a person (live: subscribe for updates)"},
};
#define NKINDS (sizeof kinds / sizeof kinds[0])

/* Split a URI into component and kind. */
static const kind *parse_uri(const char *uri, char component[65])
{
    const char *p, *slash;
    size_t n;

    if (uri == NULL || strncmp(uri, URI_PREFIX, strlen(URI_PREFIX)) != 0)
        return NULL;
    p = uri + strlen(URI_PREFIX);
    slash = strchr(p, '/');
    if (slash == NULL || (n = (size_t)(slash - p)) == 0 || n > 64)
        return NULL;
    memcpy(component, p, n);
    component[n] = '\0';
    for (size_t i = 0; i < NKINDS; i++) {
        if (strcmp(slash + 1, kinds[i].file) == 0)
            return &kinds[i];
    }
    return NULL;
}

static int not_found(const mcp_request *rq, mcp_error *err, const char *uri, const char *why)
{
    mcp_fail(err, rq->stateless ? MCP_INVALID_PARAMS : MCP_RESOURCE_NOT_FOUND,
             "resource not found: %s (%s; resources/list names the resources there are)", uri, why);
    err->data = json_pack("{s:s}", "uri", uri);
    return err->code;
}

static bool file_exists(const mcp_server *srv, const char *component, const char *rel)
{
    char path[256], msg[256];
    char *d = NULL;
    size_t l = 0;
    int rc;
    snprintf(path, sizeof path, "components/%s/%s", component, rel);
    rc = mcp_read_file(srv, path, 0, &d, &l, msg, sizeof msg);
    free(d);
    return rc == 0 || rc == EFBIG;
}

int mcp_resources_list(mcp_request *rq, json_t **result, mcp_error *err)
{
    json_t *names = mcp_components(rq->srv), *list = json_array(), *n;
    size_t i;

    if (names == NULL || list == NULL) {
        json_decref(names);
        json_decref(list);
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    }
    json_array_foreach(names, i, n)
    {
        const char *name = json_string_value(n);
        bool has_context = file_exists(rq->srv, name, "context/context.json") &&
                           file_exists(rq->srv, name, "context/agent-config.json");
        for (size_t k = 0; k < NKINDS; k++) {
            char uri[160], title[160], desc[256];
            if (kinds[k].rel != NULL && !file_exists(rq->srv, name, kinds[k].rel))
                continue;
            if (kinds[k].rel == NULL && strcmp(kinds[k].file, "AGENTS.md") == 0 && !has_context)
                continue;
            snprintf(uri, sizeof uri, URI_PREFIX "%s/%s", name, kinds[k].file);
            snprintf(title, sizeof title, "%s %s", name, kinds[k].title);
            snprintf(desc, sizeof desc, "%s: %s", name, kinds[k].about);
            json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "uri", uri, "name",
                                                  uri + strlen(URI_PREFIX), "title", title,
                                                  "description", desc, "mimeType", kinds[k].mime));
        }
    }
    json_decref(names);
    *result = json_pack("{s:o}", "resources", list);
    mcp_decorate(rq, *result, 5000, "private");
    return 0;
}

int mcp_resources_templates(mcp_request *rq, json_t **result, mcp_error *err)
{
    json_t *list = json_array();
    if (list == NULL)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    for (size_t k = 0; k < NKINDS; k++) {
        char uri[160];
        snprintf(uri, sizeof uri, URI_PREFIX "{name}/%s", kinds[k].file);
        json_array_append_new(list,
                              json_pack("{s:s, s:s, s:s, s:s, s:s}", "uriTemplate", uri, "name",
                                        kinds[k].file, "title", kinds[k].title, "description",
                                        kinds[k].about, "mimeType", kinds[k].mime));
    }
    *result = json_pack("{s:o}", "resourceTemplates", list);
    mcp_decorate(rq, *result, 300000, "public");
    return 0;
}

static int read_escalations(mcp_request *rq, const char *component, char **text, mcp_error *err)
{
    ms_registry *reg = mcp_registry(rq->srv, err);
    json_t *rows = NULL, *doc;
    if (reg == NULL)
        return err->code;
    if (ms_registry_escalations(reg, component, "open", 0, 200, &rows) != MS_OK)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "reading the escalations failed: %s",
                        ms_last_error());
    doc =
        json_pack("{s:s, s:s, s:o}", "component", component, "state", "open", "escalations", rows);
    if (doc != NULL && json_array_size(rows) == 200)
        json_object_set_new(doc, "note",
                            json_string("the 200 newest; the list_escalations tool pages "
                                        "through the rest"));
    *text = doc != NULL ? json_dumps(doc, JSON_INDENT(2)) : NULL;
    json_decref(doc);
    return *text != NULL ? 0 : mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
}

static int read_agents_md(mcp_request *rq, const char *component, const char *uri, char **text,
                          mcp_error *err)
{
    char msg[768];
    int rc = mcp_agents_md(rq->srv, component, text, msg, sizeof msg);

    if (rc == ENOENT)
        return not_found(rq, err, uri, msg);
    if (rc == EACCES)
        return mcp_fail(err, MCP_INVALID_PARAMS, "%s", msg);
    if (rc != 0)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "%s (fix the file; mstack check says more)", msg);
    return 0;
}

int mcp_resources_read(mcp_request *rq, json_t **result, mcp_error *err)
{
    const char *uri = json_string_value(json_object_get(rq->params, "uri"));
    char component[65], rel[256], msg[768];
    const kind *k;
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (uri == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS, "resources/read: params.uri must be a string");
    k = parse_uri(uri, component);
    if (k == NULL)
        return not_found(rq, err, uri,
                         "expected mainstack://components/{name}/{context.json|"
                         "agent-config.json|interface.json|AGENTS.md|escalations}");
    if (!mcp_component_visible(rq->srv, component))
        return not_found(rq, err, uri,
                         rq->srv->component != NULL ? "not the component this server serves"
                                                    : "no such component in the project");
    if (k->rel != NULL) {
        snprintf(rel, sizeof rel, "components/%s/%s", component, k->rel);
        rc = mcp_read_file(rq->srv, rel, FILE_MAX, &text, &len, msg, sizeof msg);
        if (rc == ENOENT)
            return not_found(rq, err, uri, msg);
        if (rc == EACCES)
            return mcp_fail(err, MCP_INVALID_PARAMS, "%s", msg);
        if (rc != 0)
            return mcp_fail(err, MCP_INTERNAL_ERROR, "%s", msg);
        json_t *chk = json_stringn(text, len); /* NULL: not UTF-8 */
        if (chk == NULL) {
            free(text);
            return mcp_fail(err, MCP_INTERNAL_ERROR, "%s is not UTF-8 text", rel);
        }
        json_decref(chk);
    } else if (strcmp(k->file, "escalations") == 0) {
        if ((rc = read_escalations(rq, component, &text, err)) != 0)
            return rc;
    } else if ((rc = read_agents_md(rq, component, uri, &text, err)) != 0) {
        return rc;
    }
    *result = json_pack("{s:[{s:s, s:s, s:s}]}", "contents", "uri", uri, "mimeType", k->mime,
                        "text", text);
    free(text);
    if (*result == NULL)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "%s is not valid UTF-8 text", uri);
    mcp_decorate(rq, *result, 0, "private");
    return 0;
}

/* --- subscriptions ------------------------------------------------------------------- */

static void on_escalation(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    mcp_server *srv = closure;
    const char *subject = ms_message_subject(msg);
    const char *component = strrchr(subject, '.');
    (void)bus;
    (void)sub;

    if (component == NULL || atomic_load(&srv->stopping))
        return;
    component++;
    pthread_mutex_lock(&srv->lock);
    for (mcp_sub *s = srv->subs; s != NULL; s = s->next) {
        json_t *params;
        if (strcmp(s->component, component) != 0)
            continue;
        params = json_pack("{s:s}", "uri", s->uri);
        if (params != NULL && s->listen_id != NULL)
            json_object_set_new(
                params, "_meta",
                json_pack("{s:O}", MCP_META_SUBSCRIPTION_ID, s->listen_id));
        if (params != NULL)
            mcp_send_notification(srv, "notifications/resources/updated", params);
    }
    pthread_mutex_unlock(&srv->lock);
    fprintf(stderr, "mstack mcp: escalation announced on %s\n", subject);
}

/* Check that uri can be subscribed to; fills component. */
static bool subscribable(const mcp_server *srv, const char *uri, char component[65])
{
    const kind *k = parse_uri(uri, component);
    return k != NULL && strcmp(k->file, "escalations") == 0 &&
           mcp_component_visible(srv, component);
}

/* The NATS watcher, made once. 0 or an error code. */
static int ensure_watcher(mcp_server *srv, mcp_error *err)
{
    ms_bus *bus = mcp_bus(srv, err);
    char pattern[128];
    ms_status s = MS_OK;

    if (bus == NULL)
        return err->code;
    snprintf(pattern, sizeof pattern, "mainstack.escalation.%s",
             srv->component != NULL ? srv->component : "*");
    pthread_mutex_lock(&srv->lock);
    if (srv->esc_sub == NULL)
        s = ms_bus_subscribe(bus, pattern, NULL, on_escalation, srv, &srv->esc_sub);
    pthread_mutex_unlock(&srv->lock);
    if (s != MS_OK)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "cannot watch %s: %s", pattern, ms_last_error());
    if (ms_bus_flush(bus, 2000) != MS_OK)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "cannot watch %s: NATS does not answer (%s)",
                        pattern, ms_last_error());
    return 0;
}

static int add_sub(mcp_server *srv, const char *uri, const char *component, const json_t *listen)
{
    mcp_sub *s;
    pthread_mutex_lock(&srv->lock);
    for (s = srv->subs; s != NULL; s = s->next) {
        if (strcmp(s->uri, uri) == 0 && s->listen_id == NULL && listen == NULL)
            break; /* already subscribed */
    }
    if (s == NULL && (s = calloc(1, sizeof *s)) != NULL) {
        snprintf(s->uri, sizeof s->uri, "%s", uri);
        snprintf(s->component, sizeof s->component, "%s", component);
        s->listen_id = listen != NULL ? json_incref((json_t *)listen) : NULL;
        s->next = srv->subs;
        srv->subs = s;
    }
    pthread_mutex_unlock(&srv->lock);
    return s != NULL ? 0 : -1;
}

int mcp_resources_subscribe(mcp_request *rq, json_t **result, mcp_error *err)
{
    const char *uri = json_string_value(json_object_get(rq->params, "uri"));
    char component[65];
    int rc;

    if (uri == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "resources/subscribe: params.uri must be a string");
    if (!subscribable(rq->srv, uri, component))
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "cannot subscribe to %s: only the live escalations resources "
                        "(mainstack://components/{name}/escalations) change while served",
                        uri);
    if ((rc = ensure_watcher(rq->srv, err)) != 0)
        return rc;
    if (add_sub(rq->srv, uri, component, NULL) != 0)
        return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
    *result = json_object();
    return 0;
}

int mcp_resources_unsubscribe(mcp_request *rq, json_t **result, mcp_error *err)
{
    const char *uri = json_string_value(json_object_get(rq->params, "uri"));
    mcp_server *srv = rq->srv;

    if (uri == NULL)
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "resources/unsubscribe: params.uri must be a string");
    pthread_mutex_lock(&srv->lock);
    for (mcp_sub **p = &srv->subs; *p != NULL;) {
        mcp_sub *s = *p;
        if (s->listen_id == NULL && strcmp(s->uri, uri) == 0) {
            *p = s->next;
            free(s);
        } else {
            p = &s->next;
        }
    }
    pthread_mutex_unlock(&srv->lock);
    *result = json_object();
    return 0;
}

/* The SubscriptionFilter of a listen request: an object whose *ListChanged
 * members are booleans and whose resourceSubscriptions is an array of
 * strings. */
static bool valid_filter(const json_t *n)
{
    static const char *const flags[] = {"toolsListChanged", "promptsListChanged",
                                        "resourcesListChanged", NULL};
    const json_t *uris = json_object_get(n, "resourceSubscriptions");
    const json_t *u;
    size_t i;

    if (!json_is_object(n) || (uris != NULL && !json_is_array(uris)))
        return false;
    for (i = 0; flags[i] != NULL; i++) {
        const json_t *f = json_object_get(n, flags[i]);
        if (f != NULL && !json_is_boolean(f))
            return false;
    }
    json_array_foreach(uris, i, u)
    {
        if (!json_is_string(u))
            return false;
    }
    return true;
}

int mcp_subscriptions_listen(mcp_request *rq, json_t **result, mcp_error *err)
{
    const json_t *n = json_object_get(rq->params, "notifications");
    const json_t *uris = json_object_get(n, "resourceSubscriptions");
    json_t *accepted = json_array(), *honored, *ack, *u;
    size_t i;
    int rc;

    if (!valid_filter(n)) {
        json_decref(accepted);
        return mcp_fail(err, MCP_INVALID_PARAMS,
                        "subscriptions/listen: params.notifications must be an object (a "
                        "SubscriptionFilter): toolsListChanged, promptsListChanged and "
                        "resourcesListChanged booleans, resourceSubscriptions an array of URIs");
    }
    json_array_foreach(uris, i, u)
    {
        char component[65];
        if (subscribable(rq->srv, json_string_value(u), component))
            json_array_append(accepted, u);
    }
    if (json_array_size(accepted) > 0 && (rc = ensure_watcher(rq->srv, err)) != 0) {
        json_decref(accepted);
        return rc;
    }
    json_array_foreach(accepted, i, u)
    {
        char component[65];
        (void)subscribable(rq->srv, json_string_value(u), component);
        if (add_sub(rq->srv, json_string_value(u), component, rq->id) != 0) {
            json_decref(accepted);
            mcp_subs_drop_listen(rq->srv, rq->id);
            return mcp_fail(err, MCP_INTERNAL_ERROR, "out of memory");
        }
    }
    /* the acknowledgement names what the server honours of the filter: no
     * list of this server changes while it runs (capabilities: listChanged
     * false), so only the resource URIs it can watch */
    honored = json_object();
    if (json_array_size(accepted) > 0)
        json_object_set(honored, "resourceSubscriptions", accepted);
    json_decref(accepted);
    ack = json_pack("{s:o, s:{s:O}}", "notifications", honored, "_meta", MCP_META_SUBSCRIPTION_ID,
                    rq->id);
    if (ack != NULL)
        mcp_send_notification(rq->srv, "notifications/subscriptions/acknowledged", ack);
    rq->keep_open = true; /* no result: the stream stays open until cancelled */
    *result = NULL;
    return 0;
}

void mcp_subs_drop_listen_locked(mcp_server *srv, const json_t *listen_id)
{
    for (mcp_sub **p = &srv->subs; *p != NULL;) {
        mcp_sub *s = *p;
        if (s->listen_id != NULL && json_equal(s->listen_id, (json_t *)listen_id)) {
            *p = s->next;
            json_decref(s->listen_id);
            free(s);
        } else {
            p = &s->next;
        }
    }
}

void mcp_subs_drop_listen(mcp_server *srv, const json_t *listen_id)
{
    pthread_mutex_lock(&srv->lock);
    mcp_subs_drop_listen_locked(srv, listen_id);
    pthread_mutex_unlock(&srv->lock);
}

void mcp_subs_free(mcp_server *srv)
{
    mcp_sub *s = srv->subs;
    srv->subs = NULL;
    srv->esc_sub = NULL; /* freed with the bus */
    while (s != NULL) {
        mcp_sub *next = s->next;
        json_decref(s->listen_id);
        free(s);
        s = next;
    }
}
