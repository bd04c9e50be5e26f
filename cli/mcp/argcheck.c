/*
 * argcheck.c - tool arguments checked against the tool's inputSchema before
 * the tool runs.
 *
 * A small validator for the JSON Schema subset the tools' inputSchemas use:
 * type (one name or a list), properties, required, additionalProperties
 * (false or a schema), enum, minimum, maximum, minLength, maxLength (in
 * characters) and items. Its message names the place ("arguments.limit")
 * and what is wrong. Integration: mcp_args_check is the one entry point;
 * it is to call ms_schema_compile/ms_schema_validate (mainstack/schema.h)
 * once that validator lands, with the schemas compiled once per tool.
 */
#include <stdio.h>
#include <string.h>

#include "mcp.h"

static const char *type_of(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    default:
        return "null";
    }
}

static bool type_is(const json_t *v, const char *t)
{
    const char *have = type_of(v);
    if (strcmp(t, have) == 0)
        return true;
    return strcmp(t, "number") == 0 && strcmp(have, "integer") == 0;
}

/* UTF-8 characters in s. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++) {
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    }
    return n;
}

static bool check(const json_t *schema, const json_t *v, const char *where, char *msg, size_t cap)
{
    const json_t *t = json_object_get(schema, "type");
    const json_t *e = json_object_get(schema, "enum");
    const json_t *lim;
    char sub[256];

    if (!json_is_object(schema))
        return true;
    if (json_is_string(t) && !type_is(v, json_string_value(t))) {
        snprintf(msg, cap, "%s must be %s %s, not %s", where,
                 strchr("aeiou", json_string_value(t)[0]) ? "an" : "a", json_string_value(t),
                 type_of(v));
        return false;
    }
    if (json_is_array(t)) {
        size_t i;
        json_t *x;
        bool any = false;
        json_array_foreach(t, i, x) any = any || type_is(v, json_string_value(x));
        if (!any) {
            snprintf(msg, cap, "%s has the wrong type (%s)", where, type_of(v));
            return false;
        }
    }
    if (json_is_array(e)) {
        size_t i;
        json_t *x;
        bool any = false;
        char list[256] = "";
        json_array_foreach(e, i, x)
        {
            any = any || json_equal(x, (json_t *)v);
            if (json_is_string(x)) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof list - l, "%s\"%s\"", i ? ", " : "",
                         json_string_value(x));
            }
        }
        if (!any) {
            snprintf(msg, cap, "%s must be one of %s", where, list);
            return false;
        }
    }
    if (json_is_number(v)) {
        double d = json_number_value(v);
        if ((lim = json_object_get(schema, "minimum")) != NULL && d < json_number_value(lim)) {
            snprintf(msg, cap, "%s must be at least %g", where, json_number_value(lim));
            return false;
        }
        if ((lim = json_object_get(schema, "maximum")) != NULL && d > json_number_value(lim)) {
            snprintf(msg, cap, "%s must be at most %g", where, json_number_value(lim));
            return false;
        }
    }
    if (json_is_string(v)) {
        size_t n = utf8_chars(json_string_value(v));
        if ((lim = json_object_get(schema, "minLength")) != NULL &&
            n < (size_t)json_integer_value(lim)) {
            snprintf(msg, cap, "%s must have at least %lld character(s)", where,
                     (long long)json_integer_value(lim));
            return false;
        }
        if ((lim = json_object_get(schema, "maxLength")) != NULL &&
            n > (size_t)json_integer_value(lim)) {
            snprintf(msg, cap, "%s must have at most %lld characters", where,
                     (long long)json_integer_value(lim));
            return false;
        }
    }
    if (json_is_array(v) && json_is_object(json_object_get(schema, "items"))) {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            snprintf(sub, sizeof sub, "%s[%zu]", where, i);
            if (!check(json_object_get(schema, "items"), x, sub, msg, cap))
                return false;
        }
    }
    if (json_is_object(v)) {
        const json_t *props = json_object_get(schema, "properties");
        const json_t *req = json_object_get(schema, "required");
        const json_t *extra = json_object_get(schema, "additionalProperties");
        const char *key;
        json_t *x;
        size_t i;
        json_array_foreach(req, i, x)
        {
            if (json_object_get(v, json_string_value(x)) == NULL) {
                snprintf(msg, cap, "%s.%s is required", where, json_string_value(x));
                return false;
            }
        }
        json_object_foreach((json_t *)v, key, x)
        {
            const json_t *ps = json_object_get(props, key);
            snprintf(sub, sizeof sub, "%s.%s", where, key);
            if (ps == NULL && json_is_false(extra)) {
                snprintf(msg, cap, "%s is not an argument of this tool", sub);
                return false;
            }
            if (!check(ps != NULL ? ps : extra, x, sub, msg, cap))
                return false;
        }
    }
    return true;
}

bool mcp_args_check(const json_t *schema, const json_t *instance, char *msg, size_t cap)
{
    return check(schema, instance, "arguments", msg, cap);
}
