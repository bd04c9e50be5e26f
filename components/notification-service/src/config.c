/*
 * config.c - the config of notification-service: templates per event, the
 * outbox file name, the retry queue bound. Checked whole before anything is
 * applied, so a rejected config leaves the old one in force.
 *
 * The outbox must be a plain file name: a config cannot make the service
 * write outside its own data directory.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mainstack/json.h>

#include "notification_service_internal.h"

ms_status ns__fail(ms_status s, const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    /* The detail may quote the sender's input and travels in a header. */
    for (char *p = detail; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            *p = '?';
    }
    return ms_ctx_error(NULL, s, "%s", detail);
}

static const struct {
    const char *event, *text;
} default_templates[] = {
    {"created", "Welcome, {{name}} <{{email}}>! Your account is ready."},
    {"updated", "Hi {{name}}, your account details were updated."},
    {"deleted", "Goodbye, {{name}}: your account <{{email}}> was deleted."},
};

void ns__config_reset(ns_config *cfg)
{
    for (size_t i = 0; i < cfg->count; i++) {
        free(cfg->events[i]);
        ns__template_free(cfg->tmpl[i]);
    }
    free(cfg->events);
    free(cfg->tmpl);
    free(cfg->outbox);
    memset(cfg, 0, sizeof *cfg);
}

static ms_status add_template(ns_config *c, const char *event, const char *text, size_t len)
{
    char where[128];
    ns_template *t = NULL;
    char **ev;
    ns_template **tm;
    ms_status s;

    snprintf(where, sizeof where, "notification-service config: templates.%s", event);
    s = ns__template_parse(text, len, where, &t);
    if (s != MS_OK)
        return s;
    ev = realloc(c->events, (c->count + 1) * sizeof *ev);
    if (ev == NULL)
        goto nomem;
    c->events = ev;
    tm = realloc(c->tmpl, (c->count + 1) * sizeof *tm);
    if (tm == NULL)
        goto nomem;
    c->tmpl = tm;
    c->events[c->count] = strdup(event);
    if (c->events[c->count] == NULL)
        goto nomem;
    c->tmpl[c->count++] = t;
    return MS_OK;
nomem:
    ns__template_free(t);
    return ns__fail(MS_ERR_NO_MEMORY, "notification-service config: allocating");
}

static bool event_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

static ms_status check_file_name(const char *f)
{
    size_t n = strlen(f);

    if (n == 0 || n > 255 || strcmp(f, ".") == 0 || strcmp(f, "..") == 0 || strchr(f, '/') != NULL)
        return ns__fail(MS_ERR_SCHEMA,
                        "notification-service config: 'outbox' must be a file name in the data "
                        "directory (no '/', not '.' or '..', 1..255 bytes), got '%.255s'",
                        f);
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)f[i] < 0x20 || f[i] == 0x7F)
            return ns__fail(MS_ERR_SCHEMA,
                            "notification-service config: 'outbox' has a control character");
    }
    if (strcmp(f, NS_IDS_FILE) == 0)
        return ns__fail(MS_ERR_SCHEMA,
                        "notification-service config: 'outbox' may not be '%s' (the service's "
                        "own index of delivered ids)",
                        NS_IDS_FILE);
    return MS_OK;
}

ms_status ns__config_parse(const json_t *config, ns_config *out)
{
    static const char *const known[] = {NOTIFY_CONFIG_TEMPLATES, NOTIFY_CONFIG_OUTBOX,
                                        NOTIFY_CONFIG_PENDING_MAX, NULL};
    ns_config c = {0};
    const char *key, *outbox = NOTIFY_DEFAULT_OUTBOX;
    json_t *v, *templates;
    long long pending = NOTIFY_DEFAULT_PENDING_MAX;
    ms_status s = MS_OK;

    if (config != NULL && !json_is_object(config))
        return ns__fail(MS_ERR_SCHEMA, "notification-service config: must be a JSON object");
    if (config != NULL) {
        json_object_foreach((json_t *)config, key, v)
        {
            bool ok = false;
            for (size_t i = 0; known[i] != NULL && !ok; i++)
                ok = strcmp(key, known[i]) == 0;
            if (!ok)
                return ns__fail(MS_ERR_SCHEMA,
                                "notification-service config: unknown field '%.64s' (allowed: "
                                "'templates', 'outbox', 'pending_max')",
                                key);
        }
        s = ms_json_get_string(config, NOTIFY_CONFIG_OUTBOX, "notification-service config", 0,
                               &outbox);
        if (s != MS_OK)
            return s;
        s = ms_json_get_int(config, NOTIFY_CONFIG_PENDING_MAX, "notification-service config", 0,
                            &pending);
        if (s != MS_OK)
            return s;
    }
    if ((s = check_file_name(outbox)) != MS_OK)
        return s;
    if (pending < 1 || pending > NOTIFY_PENDING_MAX_LIMIT)
        return ns__fail(MS_ERR_SCHEMA,
                        "notification-service config: 'pending_max' must be 1..%d, got %lld",
                        NOTIFY_PENDING_MAX_LIMIT, pending);
    templates = config ? json_object_get(config, NOTIFY_CONFIG_TEMPLATES) : NULL;
    if (templates != NULL && !json_is_object(templates))
        return ns__fail(MS_ERR_SCHEMA,
                        "notification-service config: 'templates' must be an object of event "
                        "name -> template text");
    if (templates != NULL) {
        json_object_foreach(templates, key, v)
        {
            if (!event_name_ok(key)) {
                s = ns__fail(MS_ERR_SCHEMA,
                             "notification-service config: templates: '%.64s' is not an event "
                             "name (lower-case letters, digits, '_' and '-'; the last token of "
                             "events.user.<event>)",
                             key);
                goto fail;
            }
            if (!json_is_string(v)) {
                s = ns__fail(MS_ERR_SCHEMA,
                             "notification-service config: templates.%s must be a string", key);
                goto fail;
            }
            s = add_template(&c, key, json_string_value(v), json_string_length(v));
            if (s != MS_OK)
                goto fail;
        }
    } else {
        for (size_t i = 0; i < sizeof default_templates / sizeof default_templates[0]; i++) {
            s = add_template(&c, default_templates[i].event, default_templates[i].text,
                             strlen(default_templates[i].text));
            if (s != MS_OK)
                goto fail;
        }
    }
    c.outbox = strdup(outbox);
    if (c.outbox == NULL) {
        s = ns__fail(MS_ERR_NO_MEMORY, "notification-service config: allocating");
        goto fail;
    }
    c.pending_max = (size_t)pending;
    ns__config_reset(out);
    *out = c;
    return MS_OK;
fail:
    ns__config_reset(&c);
    return s;
}

const ns_template *ns__config_template(const ns_config *cfg, const char *event)
{
    for (size_t i = 0; i < cfg->count; i++) {
        if (strcmp(cfg->events[i], event) == 0)
            return cfg->tmpl[i];
    }
    return NULL;
}
