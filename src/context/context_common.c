/*
 * context_common.c - the field checker of the context loaders.
 *
 * Each helper checks one member at the checker's JSON pointer and says what
 * is wrong in the words a person fixing the file needs: the file, the
 * pointer, what was expected and, for enums, the allowed values.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "context/context_internal.h"
#include "core/alloc.h"
#include "core/error.h"

void *ms__arena_alloc(ms__arena *a, size_t count, size_t size)
{
    void *p;
    if (a->n == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 16;
        void **grown = ms__realloc(a->p, ncap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        a->p = grown;
        a->cap = ncap;
    }
    p = ms__calloc(count ? count : 1, size ? size : 1);
    if (p == NULL)
        return NULL;
    a->p[a->n++] = p;
    return p;
}

void ms__arena_free(ms__arena *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++)
        ms__free(a->p[i]);
    ms__free(a->p);
    a->p = NULL;
    a->n = a->cap = 0;
}

static void append(ms__ld *l, const char *s, size_t n)
{
    if (l->len + n >= sizeof l->ptr) {
        n = sizeof l->ptr - 1 - l->len; /* a pointer that long is truncated, not overrun */
    }
    memcpy(l->ptr + l->len, s, n);
    l->len += n;
    l->ptr[l->len] = '\0';
}

size_t ms__ld_key(ms__ld *l, const char *key)
{
    size_t mark = l->len;
    append(l, "/", 1);
    /* RFC 6901: '~' is written ~0 and '/' is written ~1. */
    for (const char *k = key; *k; k++) {
        if (*k == '~')
            append(l, "~0", 2);
        else if (*k == '/')
            append(l, "~1", 2);
        else
            append(l, k, 1);
    }
    return mark;
}

size_t ms__ld_index(ms__ld *l, size_t i)
{
    char buf[32];
    size_t mark = l->len;
    int n = snprintf(buf, sizeof buf, "/%zu", i);
    append(l, buf, n > 0 ? (size_t)n : 0);
    return mark;
}

void ms__ld_pop(ms__ld *l, size_t mark)
{
    l->len = mark;
    l->ptr[mark] = '\0';
}

ms_status ms__ld_err(ms__ld *l, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return ms__err(MS_ERR_SCHEMA, "%s: %s: %s", l->source, l->len ? l->ptr : "(root)", msg);
}

ms_status ms__ld_field_err(ms__ld *l, const char *key, const char *fmt, ...)
{
    char msg[768];
    size_t mark = ms__ld_key(l, key);
    ms_status s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s = ms__ld_err(l, "%s", msg);
    ms__ld_pop(l, mark);
    return s;
}

ms_status ms__ld_nomem(ms__ld *l)
{
    return ms__err(MS_ERR_NO_MEMORY, "%s: out of memory while loading", l->source);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

ms_status ms__ld_object(ms__ld *l, const json_t *v, const char *const *allowed)
{
    const char *key;
    json_t *member;

    if (!json_is_object(v))
        return ms__ld_err(l, "must be an object, not %s", type_name(v));
    json_object_foreach((json_t *)v, key, member)
    {
        bool known = false;
        (void)member;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(allowed[i], key) == 0;
        if (!known) {
            char list[384];
            size_t n = 0;
            list[0] = '\0';
            for (size_t i = 0; allowed[i] != NULL && n < sizeof list; i++) {
                int w = snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", allowed[i]);
                if (w < 0)
                    break;
                n += (size_t)w;
            }
            ms__ld_key(l, key);
            return ms__ld_err(l, "unknown field (expected one of: %s)", list);
        }
    }
    return MS_OK;
}

/* The member, or NULL; an error when required and absent. */
static ms_status get(ms__ld *l, const json_t *obj, const char *key, bool required, json_t **out)
{
    *out = json_object_get(obj, key);
    if (*out == NULL && required) {
        size_t mark = ms__ld_key(l, key);
        ms_status s = ms__ld_err(l, "required field is missing");
        ms__ld_pop(l, mark);
        return s;
    }
    return MS_OK;
}

ms_status ms__ld_string(ms__ld *l, const json_t *obj, const char *key, bool required,
                        size_t max_bytes, const char **out)
{
    json_t *v;
    ms_status s = get(l, obj, key, required, &v);
    size_t mark, n;

    *out = NULL;
    if (s != MS_OK || v == NULL)
        return s;
    mark = ms__ld_key(l, key);
    if (!json_is_string(v)) {
        s = ms__ld_err(l, "must be a string, not %s", type_name(v));
    } else if ((n = json_string_length(v)) == 0) {
        s = ms__ld_err(l, "must not be empty");
    } else if (n > max_bytes) {
        s = ms__ld_err(l, "%zu bytes, over the limit of %zu", n, max_bytes);
    } else if (strlen(json_string_value(v)) != n) {
        s = ms__ld_err(l, "contains a NUL character");
    } else {
        *out = json_string_value(v);
    }
    ms__ld_pop(l, mark);
    return s;
}

ms_status ms__ld_bool(ms__ld *l, const json_t *obj, const char *key, bool required, bool *out)
{
    json_t *v;
    ms_status s = get(l, obj, key, required, &v);
    size_t mark;

    if (s != MS_OK || v == NULL)
        return s;
    mark = ms__ld_key(l, key);
    if (!json_is_boolean(v))
        s = ms__ld_err(l, "must be a boolean (true or false), not %s", type_name(v));
    else
        *out = json_is_true(v);
    ms__ld_pop(l, mark);
    return s;
}

ms_status ms__ld_int(ms__ld *l, const json_t *obj, const char *key, bool required, long long min,
                     long long max, long long *out)
{
    json_t *v;
    ms_status s = get(l, obj, key, required, &v);
    size_t mark;

    if (s != MS_OK || v == NULL)
        return s;
    mark = ms__ld_key(l, key);
    if (!json_is_integer(v))
        s = ms__ld_err(l, "must be an integer, not %s", type_name(v));
    else if (json_integer_value(v) < min || json_integer_value(v) > max)
        s = ms__ld_err(l, "%lld is outside %lld..%lld", (long long)json_integer_value(v), min, max);
    else
        *out = (long long)json_integer_value(v);
    ms__ld_pop(l, mark);
    return s;
}

ms_status ms__ld_enum(ms__ld *l, const json_t *obj, const char *key, bool required,
                      const char *const *names, int *out)
{
    const char *text;
    ms_status s = ms__ld_string(l, obj, key, required, 64, &text);
    char list[256];
    size_t n = 0, mark;

    if (s != MS_OK || text == NULL)
        return s;
    list[0] = '\0';
    for (int i = 0; names[i] != NULL; i++) {
        int w;
        if (strcmp(names[i], text) == 0) {
            *out = i;
            return MS_OK;
        }
        if (n < sizeof list) {
            w = snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", names[i]);
            if (w > 0)
                n += (size_t)w;
        }
    }
    mark = ms__ld_key(l, key);
    s = ms__ld_err(l, "'%.64s' is not one of %s", text, list);
    ms__ld_pop(l, mark);
    return s;
}

ms_status ms__ld_array(ms__ld *l, const json_t *obj, const char *key, bool required,
                       const json_t **out)
{
    json_t *v;
    ms_status s = get(l, obj, key, required, &v);
    size_t mark;

    *out = NULL;
    if (s != MS_OK || v == NULL)
        return s;
    mark = ms__ld_key(l, key);
    if (!json_is_array(v))
        s = ms__ld_err(l, "must be an array, not %s", type_name(v));
    else
        *out = v;
    ms__ld_pop(l, mark);
    return s;
}

ms_status ms__ld_strings(ms__ld *l, const json_t *obj, const char *key, bool required,
                         size_t max_bytes, const char *const **out, size_t *count)
{
    const json_t *arr;
    const char **list;
    ms_status s = ms__ld_array(l, obj, key, required, &arr);
    size_t n, mark;

    *out = NULL;
    *count = 0;
    if (s != MS_OK)
        return s;
    n = arr ? json_array_size(arr) : 0;
    list = ms__arena_alloc(l->arena, n + 1, sizeof *list);
    if (list == NULL)
        return ms__ld_nomem(l);
    mark = ms__ld_key(l, key);
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        size_t m = ms__ld_index(l, i);
        if (!json_is_string(v))
            s = ms__ld_err(l, "must be a string, not %s", type_name(v));
        else if (json_string_length(v) == 0)
            s = ms__ld_err(l, "must not be empty");
        else if (json_string_length(v) > max_bytes)
            s = ms__ld_err(l, "%zu bytes, over the limit of %zu", json_string_length(v), max_bytes);
        else if (strlen(json_string_value(v)) != json_string_length(v))
            s = ms__ld_err(l, "contains a NUL character");
        if (s != MS_OK)
            return s;
        ms__ld_pop(l, m);
        list[i] = json_string_value(v);
    }
    ms__ld_pop(l, mark);
    *out = list;
    *count = n;
    return MS_OK;
}

bool ms__ld_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}
