/*
 * argcheck.c - tool arguments checked against the tool's inputSchema before
 * the tool runs, with mainstack's JSON Schema validator (mainstack/schema.h,
 * docs/schema.md).
 *
 * Each tool's schemas are compiled once, when the server starts
 * (mcp_tools_init in tools.c, before any thread), and a compiled ms_schema
 * is immutable, so worker threads validate against it concurrently without a
 * lock. A failed check is turned into errors that name the argument by its
 * JSON pointer: for "missing required property" and "property ... is not
 * allowed" the validator reports the object that holds the member, so the
 * pointer is extended by the member's name ("/subject", not "").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcp.h"

/* At most this many errors are reported for one call. */
#define ARG_ERRORS_MAX 8

ms_schema *mcp_schema_compile(const char *tool, const char *what, const char *text, char *msg,
                              size_t cap)
{
    json_error_t je;
    json_t *doc = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    ms_schema *s = NULL;
    char name[160];

    if (doc == NULL) {
        snprintf(msg, cap, "tool %s: %s is not JSON: %s (column %d)", tool, what, je.text,
                 je.column);
        return NULL;
    }
    snprintf(name, sizeof name, "%s %s", tool, what);
    if (ms_schema_compile(doc, name, &s) != MS_OK) {
        snprintf(msg, cap, "%s", ms_last_error());
        s = NULL;
    }
    json_decref(doc);
    return s;
}

/* Append the RFC 6901 escaped form of name (n bytes) to ptr. */
static void append_token(char *ptr, size_t cap, const char *name, size_t n)
{
    size_t l = strlen(ptr);
    if (l + 1 < cap)
        ptr[l++] = '/';
    for (size_t i = 0; i < n && l + 2 < cap; i++) {
        if (name[i] == '~' || name[i] == '/') {
            ptr[l++] = '~';
            ptr[l++] = name[i] == '~' ? '0' : '1';
        } else {
            ptr[l++] = name[i];
        }
    }
    ptr[l < cap ? l : cap - 1] = '\0';
}

/* The member a message is about: the text between prefix and suffix. */
static bool member_of(const char *message, const char *prefix, const char *suffix,
                      const char **name, size_t *n)
{
    size_t lp = strlen(prefix), ls = strlen(suffix), lm = strlen(message);
    if (lm < lp + ls || strncmp(message, prefix, lp) != 0 || strcmp(message + lm - ls, suffix) != 0)
        return false;
    *name = message + lp;
    *n = lm - lp - ls;
    return true;
}

/* The pointer of the argument an error is about. */
static void argument_pointer(const ms_schema_error *e, char *ptr, size_t cap)
{
    const char *name;
    size_t n;
    snprintf(ptr, cap, "%s", e->instance_path);
    if (member_of(e->message, "missing required property '", "'", &name, &n) ||
        member_of(e->message, "property '", "' is not allowed", &name, &n))
        append_token(ptr, cap, name, n);
}

bool mcp_args_check(const ms_schema *schema, const json_t *instance, char *msg, size_t cap,
                    json_t **errors)
{
    ms_schema_error *errs = NULL;
    size_t n = 0, used = 0;
    ms_status s;

    *errors = NULL;
    msg[0] = '\0';
    s = ms_schema_validate(schema, instance, ARG_ERRORS_MAX, &errs, &n);
    if (s == MS_OK)
        return true;
    if (s != MS_ERR_SCHEMA) {
        snprintf(msg, cap, "the arguments could not be checked: %s", ms_last_error());
        return false;
    }
    *errors = json_array();
    for (size_t i = 0; i < n; i++) {
        char ptr[512];
        int w;
        argument_pointer(&errs[i], ptr, sizeof ptr);
        if (*errors != NULL)
            json_array_append_new(*errors,
                                  json_pack("{s:s, s:s, s:s}", "pointer", ptr, "message",
                                            errs[i].message, "schemaPath", errs[i].schema_path));
        if (used < cap) {
            w = snprintf(msg + used, cap - used, "%s%s: %s", i > 0 ? "; " : "",
                         ptr[0] != '\0' ? ptr : "(the arguments object)", errs[i].message);
            used += w > 0 ? (size_t)w : 0;
        }
    }
    ms_schema_errors_free(errs, n);
    return false;
}
