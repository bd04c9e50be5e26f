/*
 * template.c - the {{field}} templates of notification-service.
 *
 * A template is parsed once, when the config is applied, into literal and
 * field segments, so every syntax error is found then (with its byte offset)
 * and never at delivery time; rendering is a walk over the segments. The
 * language is deliberately tiny: no escapes, no conditionals, no nested
 * fields. A lone '{' or '}' and a '}}' outside a placeholder are literal text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "notification_service_internal.h"

typedef struct segment {
    bool field; /* a placeholder: text is the field name */
    char *text; /* NUL-terminated copy */
    size_t len;
} segment;

struct ns_template {
    segment *seg;
    size_t count;
};

void ns__template_free(ns_template *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++)
        free(t->seg[i].text);
    free(t->seg);
    free(t);
}

static ms_status add_segment(ns_template *t, bool field, const char *text, size_t len)
{
    segment *grown;
    char *copy;

    if (len == 0 && !field)
        return MS_OK;
    grown = realloc(t->seg, (t->count + 1) * sizeof *grown);
    if (grown == NULL)
        return ns__fail(MS_ERR_NO_MEMORY, "template: allocating");
    t->seg = grown;
    copy = strndup(text, len);
    if (copy == NULL)
        return ns__fail(MS_ERR_NO_MEMORY, "template: allocating");
    t->seg[t->count++] = (segment){.field = field, .text = copy, .len = len};
    return MS_OK;
}

static bool name_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && c >= '0' && c <= '9');
}

ms_status ns__template_parse(const char *src, size_t len, const char *where, ns_template **out)
{
    ns_template *t;
    size_t i = 0, lit = 0;
    ms_status s = MS_OK;

    if (src == NULL || out == NULL)
        return ns__fail(MS_ERR_INVALID_ARG, "template: NULL argument");
    *out = NULL;
    if (where == NULL)
        where = "template";
    if (len > NOTIFY_TEMPLATE_MAX)
        return ns__fail(MS_ERR_SCHEMA, "%s: %zu bytes long, the limit is %d", where, len,
                        NOTIFY_TEMPLATE_MAX);
    if (memchr(src, '\0', len) != NULL)
        return ns__fail(MS_ERR_SCHEMA, "%s: contains a NUL character at offset %zu", where,
                        (size_t)((const char *)memchr(src, '\0', len) - src));
    t = calloc(1, sizeof *t);
    if (t == NULL)
        return ns__fail(MS_ERR_NO_MEMORY, "template: allocating");
    while (i + 1 < len) {
        size_t open = i, name, name_end, j;
        if (src[i] != '{' || src[i + 1] != '{') {
            i++;
            continue;
        }
        j = i + 2;
        while (j < len && src[j] == ' ')
            j++;
        name = j;
        while (j < len && name_char(src[j], j == name))
            j++;
        name_end = j;
        while (j < len && src[j] == ' ')
            j++;
        if (j + 1 < len && src[j] == '}' && src[j + 1] == '}') {
            if (name_end == name) {
                s = ns__fail(MS_ERR_SCHEMA, "%s: empty placeholder at offset %zu (write {{field}})",
                             where, open);
                goto fail;
            }
            if (name_end - name > NOTIFY_FIELD_NAME_MAX) {
                s = ns__fail(MS_ERR_SCHEMA, "%s: placeholder name at offset %zu is longer than %d",
                             where, name, NOTIFY_FIELD_NAME_MAX);
                goto fail;
            }
            if ((s = add_segment(t, false, src + lit, open - lit)) != MS_OK ||
                (s = add_segment(t, true, src + name, name_end - name)) != MS_OK)
                goto fail;
            i = lit = j + 2;
            continue;
        }
        if (memmem(src + open + 2, len - open - 2, "}}", 2) == NULL) {
            s = ns__fail(MS_ERR_SCHEMA, "%s: unclosed '{{' at offset %zu", where, open);
            goto fail;
        }
        if (j < len)
            s = ns__fail(
                MS_ERR_SCHEMA,
                "%s: invalid character '%c' at offset %zu in the placeholder opened at "
                "offset %zu (field names are letters, digits and '_')",
                where, (unsigned char)src[j] >= 0x20 && (unsigned char)src[j] < 0x7F ? src[j] : '?',
                j, open);
        else
            s = ns__fail(MS_ERR_SCHEMA, "%s: unclosed '{{' at offset %zu", where, open);
        goto fail;
    }
    if ((s = add_segment(t, false, src + lit, len - lit)) != MS_OK)
        goto fail;
    *out = t;
    return MS_OK;
fail:
    ns__template_free(t);
    return s;
}

typedef struct buf {
    char *data;
    size_t len, cap;
} buf;

static bool buf_add(buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        char *grown;
        while (cap < b->len + n + 1)
            cap *= 2;
        grown = realloc(b->data, cap);
        if (grown == NULL)
            return false;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return true;
}

ms_status ns__template_render(const ns_template *t, const json_t *vars, char **out)
{
    buf b = {0};
    char num[64];

    if (t == NULL || out == NULL)
        return ns__fail(MS_ERR_INVALID_ARG, "template render: NULL argument");
    *out = NULL;
    if (!buf_add(&b, "", 0))
        goto nomem;
    for (size_t i = 0; i < t->count; i++) {
        const segment *sg = &t->seg[i];
        const json_t *v;
        const char *text = "";
        size_t n = 0;

        if (!sg->field) {
            if (!buf_add(&b, sg->text, sg->len))
                goto nomem;
            continue;
        }
        v = json_is_object(vars) ? json_object_get(vars, sg->text) : NULL;
        if (json_is_string(v)) {
            text = json_string_value(v);
            n = json_string_length(v);
        } else if (json_is_integer(v)) {
            n = (size_t)snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            text = num;
        } else if (json_is_real(v)) {
            n = (size_t)snprintf(num, sizeof num, "%.17g", json_real_value(v));
            text = num;
        } else if (json_is_boolean(v)) {
            text = json_is_true(v) ? "true" : "false";
            n = strlen(text);
        }
        if (!buf_add(&b, text, n))
            goto nomem;
    }
    *out = b.data;
    return MS_OK;
nomem:
    free(b.data);
    return ns__fail(MS_ERR_NO_MEMORY, "template render: allocating");
}
