/*
 * schema.c - compiling and validating JSON Schema (a draft 2020-12 subset).
 *
 * Compiling turns the schema document into a graph of nodes, one per
 * subschema, each holding its keywords already checked and converted (limits
 * as numbers, patterns as compiled regex_t, enum/const as private copies).
 * Every node lives in one array owned by the ms_schema; $ref edges are plain
 * pointers into it, resolved after the first pass against the document's
 * JSON pointers (a target that no keyword reaches is compiled on demand), so
 * recursive schemas cost nothing. A cycle of $ref/allOf/anyOf/oneOf/not that
 * never moves into the instance would loop forever and is refused.
 *
 * Validating walks the nodes and the instance together, keeping the instance
 * path as a stack of segments so a JSON pointer is built only for an error.
 * A "quiet" walk (no error sink) stops at the first failure; anyOf, oneOf and
 * not use it for their branches and report one summary error of their own.
 */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context/schema_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/json.h"
#include "mainstack/schema.h"

/* A cycle-free chain of in-place applicators ($ref, allOf ...) longer than
 * this is refused too: validation recurses once per link. */
#define MAX_INPLACE_CHAIN 1024
#define SUMMARY_MAX 480
/* Recursion limit of one validation (instance levels times in-place links). */
#define MAX_EVAL_DEPTH 2048
#define NOINLINE __attribute__((noinline))

enum {
    T_NULL = 1 << 0,
    T_BOOLEAN = 1 << 1,
    T_OBJECT = 1 << 2,
    T_ARRAY = 1 << 3,
    T_NUMBER = 1 << 4,
    T_STRING = 1 << 5,
    T_INTEGER = 1 << 6,
};

static const struct {
    const char *name;
    unsigned bit;
} type_names[] = {
    {"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT},   {"array", T_ARRAY},
    {"number", T_NUMBER}, {"string", T_STRING},   {"integer", T_INTEGER},
};

/* Ignored keywords: annotations, and the identifiers that change nothing for
 * local references ($id only at the root: see compile_object). */
static const char *const annotations[] = {
    "title",       "description",      "$comment",        "examples",  "default",
    "format",      "deprecated",       "readOnly",        "writeOnly", "$schema",
    "$vocabulary", "contentMediaType", "contentEncoding",
};

typedef struct num {
    int is_int;
    json_int_t i;
    double d;
} num;

typedef struct node node;

typedef struct prop {
    char *name;
    node *schema;
} prop;

typedef struct pprop {
    char *source;
    regex_t re;
    int re_ok;
    node *schema;
} pprop;

enum { L_MIN = 1, L_MAX = 2, L_XMIN = 4, L_XMAX = 8 };

struct node {
    char *path;        /* JSON pointer of this subschema in the document */
    const json_t *src; /* the document value (only valid while compiling) */
    int boolean;       /* 1: true schema, 0: false schema, -1: an object */
    unsigned types;    /* 0: no "type" */

    prop *props; /* sorted by name */
    size_t nprops;
    pprop *pprops;
    size_t npprops;
    node *additional;
    char **required;
    size_t nrequired;
    size_t min_props, max_props; /* SIZE_MAX: none */

    json_t *enum_values; /* private copy */
    json_t *const_value; /* private copy; has_const says it is set (it may be null) */
    int has_const;

    node **prefix;
    size_t nprefix;
    node *items;
    size_t min_items, max_items;
    int unique;

    size_t min_len, max_len;
    unsigned limits;
    num minimum, maximum, xminimum, xmaximum;
    int has_multiple;
    num multiple;

    char *pattern_src;
    regex_t pattern;
    int pattern_ok;

    node **all_of, **any_of, **one_of;
    size_t nall, nany, none;
    node *not_;

    char *ref;
    node *ref_target;

    int mark; /* cycle detection: 0 new, 1 on the stack, 2 done */
};

struct ms_schema {
    char *name;
    node **nodes;
    size_t nnodes, cap;
    node *root;
};

/* --- small helpers ----------------------------------------------------------- */

static const char *json_type_name(const json_t *v)
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
    case JSON_REAL: {
        double d = json_real_value(v);
        return isfinite(d) && floor(d) == d ? "integer" : "number";
    }
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

static int is_integer_value(const json_t *v)
{
    if (json_is_integer(v))
        return 1;
    if (json_is_real(v)) {
        double d = json_real_value(v);
        return isfinite(d) && floor(d) == d;
    }
    return 0;
}

static num to_num(const json_t *v)
{
    num n = {0, 0, 0.0};
    if (json_is_integer(v)) {
        n.is_int = 1;
        n.i = json_integer_value(v);
        n.d = (double)n.i;
    } else {
        n.d = json_real_value(v);
    }
    return n;
}

static int num_cmp(num a, num b)
{
    if (a.is_int && b.is_int)
        return a.i < b.i ? -1 : a.i > b.i;
    return a.d < b.d ? -1 : a.d > b.d;
}

static void num_format(num n, char *out, size_t cap)
{
    if (n.is_int)
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, n.i);
    else
        snprintf(out, cap, "%.17g", n.d);
}

/* Deep equality with JSON Schema's number rule (1 == 1.0). 1 equal, 0 not,
 * -1 nested deeper than the limit. */
static int values_equal(const json_t *a, const json_t *b, int depth)
{
    if (depth > MS_SCHEMA_MAX_DEPTH)
        return -1;
    if (json_is_number(a) && json_is_number(b))
        return num_cmp(to_num(a), to_num(b)) == 0 && !(isnan(json_number_value(a)));
    if (json_typeof(a) != json_typeof(b))
        return 0;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY: {
        size_t n = json_array_size(a);
        if (n != json_array_size(b))
            return 0;
        for (size_t i = 0; i < n; i++) {
            int r = values_equal(json_array_get(a, i), json_array_get(b, i), depth + 1);
            if (r != 1)
                return r;
        }
        return 1;
    }
    case JSON_OBJECT: {
        const char *key;
        json_t *va;
        if (json_object_size(a) != json_object_size(b))
            return 0;
        json_object_foreach((json_t *)a, key, va)
        {
            json_t *vb = json_object_get(b, key);
            int r;
            if (vb == NULL)
                return 0;
            r = values_equal(va, vb, depth + 1);
            if (r != 1)
                return r;
        }
        return 1;
    }
    default:
        return 1; /* true, false, null */
    }
}

/* 1 when v nests no deeper than the limit. */
static int depth_ok(const json_t *v, int depth)
{
    if (depth > MS_SCHEMA_MAX_DEPTH)
        return 0;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!depth_ok(json_array_get(v, i), depth + 1))
                return 0;
    } else if (json_is_object(v)) {
        const char *key;
        json_t *m;
        json_object_foreach((json_t *)v, key, m)
        {
            if (!depth_ok(m, depth + 1))
                return 0;
        }
    }
    return 1;
}

/* Append the RFC 6901 escaped form of a token to a malloc'd pointer. */
static char *pointer_append(const char *base, const char *token, size_t toklen)
{
    size_t blen = strlen(base), extra = 0, j;
    char *out;
    for (size_t i = 0; i < toklen; i++)
        if (token[i] == '~' || token[i] == '/')
            extra++;
    out = ms__malloc(blen + 1 + toklen + extra + 1);
    if (out == NULL)
        return NULL;
    memcpy(out, base, blen);
    j = blen;
    out[j++] = '/';
    for (size_t i = 0; i < toklen; i++) {
        if (token[i] == '~') {
            out[j++] = '~';
            out[j++] = '0';
        } else if (token[i] == '/') {
            out[j++] = '~';
            out[j++] = '1';
        } else {
            out[j++] = token[i];
        }
    }
    out[j] = '\0';
    return out;
}

static char *pointer_append_index(const char *base, size_t index)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%zu", index);
    return pointer_append(base, tmp, (size_t)n);
}

/* Non-negative integer keyword value (2 and 2.0 alike). */
static int get_count(const json_t *v, size_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return 0;
        *out = (uintmax_t)i > SIZE_MAX ? SIZE_MAX : (size_t)i;
        return 1;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!is_integer_value(v) || d < 0)
            return 0;
        *out = d >= 1.8e19 ? SIZE_MAX : (size_t)d;
        return 1;
    }
    return 0;
}

/* --- compiling ----------------------------------------------------------------- */

typedef struct compiler {
    ms_schema *s;
    const json_t *doc;
    const char *name;
} compiler;

static ms_status cerr(const compiler *c, ms_status st, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static ms_status cerr(const compiler *c, ms_status st, const char *path, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    size_t plen = strlen(path);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* The detail buffer is 1 KiB: shorten a very deep pointer in the middle. */
    if (plen > 240)
        return ms__err(st, "%s: %.120s...%s: %s", c->name, path, path + plen - 100, what);
    return ms__err(st, "%s: %s: %s", c->name, path[0] ? path : "/", what);
}

static ms_status oom(const compiler *c, const char *path)
{
    return cerr(c, MS_ERR_NO_MEMORY, path, "out of memory compiling the schema");
}

static void node_free(node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->nprops; i++)
        ms__free(n->props[i].name);
    ms__free(n->props);
    for (size_t i = 0; i < n->npprops; i++) {
        ms__free(n->pprops[i].source);
        if (n->pprops[i].re_ok)
            regfree(&n->pprops[i].re);
    }
    ms__free(n->pprops);
    for (size_t i = 0; i < n->nrequired; i++)
        ms__free(n->required[i]);
    ms__free(n->required);
    json_decref(n->enum_values);
    json_decref(n->const_value);
    ms__free(n->prefix);
    ms__free(n->pattern_src);
    if (n->pattern_ok)
        regfree(&n->pattern);
    ms__free(n->all_of);
    ms__free(n->any_of);
    ms__free(n->one_of);
    ms__free(n->ref);
    ms__free(n->path);
    ms__free(n);
}

static ms_status new_node(compiler *c, const json_t *src, const char *path, node **out)
{
    node *n;
    ms_schema *s = c->s;
    if (s->nnodes == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        node **nn = ms__realloc(s->nodes, ncap * sizeof *nn);
        if (nn == NULL)
            return oom(c, path);
        s->nodes = nn;
        s->cap = ncap;
    }
    n = ms__calloc(1, sizeof *n);
    if (n == NULL)
        return oom(c, path);
    n->path = ms__strdup(path);
    if (n->path == NULL) {
        ms__free(n);
        return oom(c, path);
    }
    n->src = src;
    n->boolean = -1;
    n->min_props = 0;
    n->max_props = SIZE_MAX;
    n->min_items = 0;
    n->max_items = SIZE_MAX;
    n->min_len = 0;
    n->max_len = SIZE_MAX;
    s->nodes[s->nnodes++] = n;
    *out = n;
    return MS_OK;
}

static ms_status compile_value(compiler *c, const json_t *v, const char *path, int depth,
                               node **out);

/* Compile v (at base + "/" + token) as a subschema. */
static ms_status compile_child(compiler *c, const json_t *v, const char *base, const char *token,
                               int depth, node **out)
{
    ms_status s;
    char *p = pointer_append(base, token, strlen(token));
    if (p == NULL)
        return oom(c, base);
    s = compile_value(c, v, p, depth, out);
    ms__free(p);
    return s;
}

static ms_status compile_child_index(compiler *c, const json_t *v, const char *base, size_t i,
                                     int depth, node **out)
{
    ms_status s;
    char *p = pointer_append_index(base, i);
    if (p == NULL)
        return oom(c, base);
    s = compile_value(c, v, p, depth, out);
    ms__free(p);
    return s;
}

/* A non-empty array of schemas (allOf, anyOf, oneOf, prefixItems). */
static ms_status compile_list(compiler *c, const json_t *v, const char *path, const char *kw,
                              int depth, node ***out, size_t *count)
{
    size_t n;
    ms_status s = MS_OK;
    char *kpath = NULL;

    if (!json_is_array(v) || json_array_size(v) == 0)
        return cerr(c, MS_ERR_SCHEMA, path, "'%s' must be a non-empty array of schemas", kw);
    n = json_array_size(v);
    kpath = pointer_append(path, kw, strlen(kw));
    *out = ms__calloc(n, sizeof **out);
    if (kpath == NULL || *out == NULL) {
        s = oom(c, path);
        goto cleanup;
    }
    *count = n;
    for (size_t i = 0; i < n && s == MS_OK; i++)
        s = compile_child_index(c, json_array_get(v, i), kpath, i, depth + 1, &(*out)[i]);
cleanup:
    ms__free(kpath);
    return s;
}

static int prop_cmp(const void *a, const void *b)
{
    return strcmp(((const prop *)a)->name, ((const prop *)b)->name);
}

static ms_status compile_regex(compiler *c, const char *path, const char *what, const char *src,
                               size_t len, regex_t *re, int *ok)
{
    char *ere = NULL;
    int rc;
    ms_status s = ms__schema_regex_translate(src, len, &ere);
    if (s != MS_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", ms_last_error());
        return cerr(c, s, path, "%s \"%s\": %s", what, src, detail);
    }
    rc = regcomp(re, ere, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char msg[256];
        regerror(rc, re, msg, sizeof msg);
        ms__free(ere);
        if (rc == REG_ESPACE)
            return oom(c, path);
        return cerr(c, MS_ERR_SCHEMA, path, "%s \"%s\" does not compile: %s", what, src, msg);
    }
    ms__free(ere);
    *ok = 1;
    return MS_OK;
}

static ms_status compile_type(compiler *c, node *n, const json_t *v, const char *path)
{
    const json_t *one;
    size_t count = json_is_array(v) ? json_array_size(v) : 1;

    if (!json_is_string(v) && !(json_is_array(v) && count > 0))
        return cerr(c, MS_ERR_SCHEMA, path,
                    "'type' must be a type name or a non-empty array of type names");
    for (size_t i = 0; i < count; i++) {
        unsigned bit = 0;
        one = json_is_array(v) ? json_array_get(v, i) : v;
        if (json_is_string(one))
            for (size_t k = 0; k < sizeof type_names / sizeof type_names[0]; k++)
                if (strcmp(json_string_value(one), type_names[k].name) == 0)
                    bit = type_names[k].bit;
        if (bit == 0)
            return cerr(c, MS_ERR_SCHEMA, path,
                        "'type': %s%s%s is not one of null, boolean, object, array, number, "
                        "string, integer",
                        json_is_string(one) ? "'" : "a ",
                        json_is_string(one) ? json_string_value(one) : json_type_name(one),
                        json_is_string(one) ? "'" : "");
        if (n->types & bit)
            return cerr(c, MS_ERR_SCHEMA, path, "'type': '%s' listed twice",
                        json_string_value(one));
        n->types |= bit;
    }
    return MS_OK;
}

static ms_status compile_properties(compiler *c, node *n, const json_t *v, const char *path,
                                    int depth)
{
    const char *key;
    json_t *sub;
    size_t i = 0;
    ms_status s = MS_OK;
    char *kpath;

    if (!json_is_object(v))
        return cerr(c, MS_ERR_SCHEMA, path, "'properties' must be an object of schemas");
    n->props = ms__calloc(json_object_size(v), sizeof *n->props);
    kpath = pointer_append(path, "properties", 10);
    if (n->props == NULL || kpath == NULL) {
        ms__free(kpath);
        return oom(c, path);
    }
    json_object_foreach((json_t *)v, key, sub)
    {
        n->props[i].name = ms__strdup(key);
        if (n->props[i].name == NULL) {
            s = oom(c, path);
            break;
        }
        n->nprops = ++i;
        s = compile_child(c, sub, kpath, key, depth + 1, &n->props[i - 1].schema);
        if (s != MS_OK)
            break;
    }
    ms__free(kpath);
    if (s == MS_OK)
        qsort(n->props, n->nprops, sizeof *n->props, prop_cmp);
    return s;
}

static ms_status compile_pattern_properties(compiler *c, node *n, const json_t *v, const char *path,
                                            int depth)
{
    const char *key;
    size_t klen;
    json_t *sub;
    ms_status s = MS_OK;
    char *kpath;

    if (!json_is_object(v))
        return cerr(c, MS_ERR_SCHEMA, path, "'patternProperties' must be an object of schemas");
    n->pprops = ms__calloc(json_object_size(v), sizeof *n->pprops);
    kpath = pointer_append(path, "patternProperties", 17);
    if (n->pprops == NULL || kpath == NULL) {
        ms__free(kpath);
        return oom(c, path);
    }
    json_object_keylen_foreach((json_t *)v, key, klen, sub)
    {
        pprop *p = &n->pprops[n->npprops++];
        char *ppath = pointer_append(kpath, key, klen);
        p->source = ms__strndup(key, klen);
        if (p->source == NULL || ppath == NULL) {
            ms__free(ppath);
            s = oom(c, path);
            break;
        }
        s = compile_regex(c, ppath, "patternProperties key", key, klen, &p->re, &p->re_ok);
        if (s == MS_OK)
            s = compile_value(c, sub, ppath, depth + 1, &p->schema);
        ms__free(ppath);
        if (s != MS_OK)
            break;
    }
    ms__free(kpath);
    return s;
}

static ms_status compile_required(compiler *c, node *n, const json_t *v, const char *path)
{
    size_t count;
    if (!json_is_array(v))
        return cerr(c, MS_ERR_SCHEMA, path, "'required' must be an array of strings");
    count = json_array_size(v);
    n->required = ms__calloc(count, sizeof *n->required);
    if (n->required == NULL)
        return oom(c, path);
    for (size_t i = 0; i < count; i++) {
        const json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return cerr(c, MS_ERR_SCHEMA, path, "'required'[%zu] is a %s, not a string", i,
                        json_type_name(e));
        n->required[i] = ms__strdup(json_string_value(e));
        if (n->required[i] == NULL)
            return oom(c, path);
        n->nrequired = i + 1;
    }
    return MS_OK;
}

static ms_status copy_value(compiler *c, const json_t *v, const char *path, const char *kw,
                            json_t **out)
{
    if (!depth_ok(v, 0))
        return cerr(c, MS_ERR_SCHEMA, path, "'%s' value nests deeper than %d levels", kw,
                    MS_SCHEMA_MAX_DEPTH);
    *out = json_deep_copy(v);
    if (*out == NULL)
        return oom(c, path);
    return MS_OK;
}

static ms_status compile_limit(compiler *c, node *n, const json_t *v, const char *path,
                               const char *kw, unsigned bit, num *dst)
{
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return cerr(c, MS_ERR_SCHEMA, path, "'%s' must be a number", kw);
    *dst = to_num(v);
    n->limits |= bit;
    return MS_OK;
}

static ms_status compile_count(compiler *c, const json_t *v, const char *path, const char *kw,
                               size_t *dst)
{
    if (!get_count(v, dst))
        return cerr(c, MS_ERR_SCHEMA, path, "'%s' must be a non-negative integer", kw);
    return MS_OK;
}

/* $defs / definitions: compile each so that refs find them, errors in them
 * are reported even when nothing refers to them. */
static ms_status compile_defs(compiler *c, const json_t *v, const char *path, const char *kw,
                              int depth)
{
    const char *key;
    json_t *sub;
    ms_status s = MS_OK;
    char *kpath;
    node *ignored;

    if (!json_is_object(v))
        return cerr(c, MS_ERR_SCHEMA, path, "'%s' must be an object of schemas", kw);
    kpath = pointer_append(path, kw, strlen(kw));
    if (kpath == NULL)
        return oom(c, path);
    json_object_foreach((json_t *)v, key, sub)
    {
        s = compile_child(c, sub, kpath, key, depth + 1, &ignored);
        if (s != MS_OK)
            break;
    }
    ms__free(kpath);
    return s;
}

static int is_annotation(const char *key)
{
    for (size_t i = 0; i < sizeof annotations / sizeof annotations[0]; i++)
        if (strcmp(key, annotations[i]) == 0)
            return 1;
    return 0;
}

static ms_status compile_object(compiler *c, node *n, const json_t *v, const char *path, int depth)
{
    const char *key;
    json_t *val;
    ms_status s = MS_OK;

    json_object_foreach((json_t *)v, key, val)
    {
        if (strcmp(key, "type") == 0) {
            s = compile_type(c, n, val, path);
        } else if (strcmp(key, "properties") == 0) {
            s = compile_properties(c, n, val, path, depth);
        } else if (strcmp(key, "patternProperties") == 0) {
            s = compile_pattern_properties(c, n, val, path, depth);
        } else if (strcmp(key, "additionalProperties") == 0) {
            s = compile_child(c, val, path, key, depth + 1, &n->additional);
        } else if (strcmp(key, "required") == 0) {
            s = compile_required(c, n, val, path);
        } else if (strcmp(key, "minProperties") == 0) {
            s = compile_count(c, val, path, key, &n->min_props);
        } else if (strcmp(key, "maxProperties") == 0) {
            s = compile_count(c, val, path, key, &n->max_props);
        } else if (strcmp(key, "enum") == 0) {
            if (!json_is_array(val))
                s = cerr(c, MS_ERR_SCHEMA, path, "'enum' must be an array");
            else
                s = copy_value(c, val, path, key, &n->enum_values);
        } else if (strcmp(key, "const") == 0) {
            s = copy_value(c, val, path, key, &n->const_value);
            n->has_const = s == MS_OK;
        } else if (strcmp(key, "items") == 0) {
            if (json_is_array(val))
                s = cerr(c, MS_ERR_SCHEMA, path,
                         "'items' must be one schema in draft 2020-12 (an array of schemas is "
                         "'prefixItems')");
            else
                s = compile_child(c, val, path, key, depth + 1, &n->items);
        } else if (strcmp(key, "prefixItems") == 0) {
            s = compile_list(c, val, path, key, depth, &n->prefix, &n->nprefix);
        } else if (strcmp(key, "minItems") == 0) {
            s = compile_count(c, val, path, key, &n->min_items);
        } else if (strcmp(key, "maxItems") == 0) {
            s = compile_count(c, val, path, key, &n->max_items);
        } else if (strcmp(key, "uniqueItems") == 0) {
            if (!json_is_boolean(val))
                s = cerr(c, MS_ERR_SCHEMA, path, "'uniqueItems' must be a boolean");
            n->unique = json_is_true(val);
        } else if (strcmp(key, "minLength") == 0) {
            s = compile_count(c, val, path, key, &n->min_len);
        } else if (strcmp(key, "maxLength") == 0) {
            s = compile_count(c, val, path, key, &n->max_len);
        } else if (strcmp(key, "minimum") == 0) {
            s = compile_limit(c, n, val, path, key, L_MIN, &n->minimum);
        } else if (strcmp(key, "maximum") == 0) {
            s = compile_limit(c, n, val, path, key, L_MAX, &n->maximum);
        } else if (strcmp(key, "exclusiveMinimum") == 0) {
            s = compile_limit(c, n, val, path, key, L_XMIN, &n->xminimum);
        } else if (strcmp(key, "exclusiveMaximum") == 0) {
            s = compile_limit(c, n, val, path, key, L_XMAX, &n->xmaximum);
        } else if (strcmp(key, "multipleOf") == 0) {
            if (!json_is_number(val) || !(json_number_value(val) > 0) ||
                !isfinite(json_number_value(val)))
                s = cerr(c, MS_ERR_SCHEMA, path, "'multipleOf' must be a number above 0");
            n->multiple = to_num(val);
            n->has_multiple = 1;
        } else if (strcmp(key, "pattern") == 0) {
            char *ppath = pointer_append(path, key, strlen(key));
            if (ppath == NULL)
                return oom(c, path);
            if (!json_is_string(val)) {
                s = cerr(c, MS_ERR_SCHEMA, ppath, "'pattern' must be a string");
            } else {
                n->pattern_src = ms__strdup(json_string_value(val));
                s = n->pattern_src == NULL
                        ? oom(c, path)
                        : compile_regex(c, ppath, "pattern", json_string_value(val),
                                        json_string_length(val), &n->pattern, &n->pattern_ok);
            }
            ms__free(ppath);
        } else if (strcmp(key, "allOf") == 0) {
            s = compile_list(c, val, path, key, depth, &n->all_of, &n->nall);
        } else if (strcmp(key, "anyOf") == 0) {
            s = compile_list(c, val, path, key, depth, &n->any_of, &n->nany);
        } else if (strcmp(key, "oneOf") == 0) {
            s = compile_list(c, val, path, key, depth, &n->one_of, &n->none);
        } else if (strcmp(key, "not") == 0) {
            s = compile_child(c, val, path, key, depth + 1, &n->not_);
        } else if (strcmp(key, "$ref") == 0) {
            if (!json_is_string(val))
                s = cerr(c, MS_ERR_SCHEMA, path, "'$ref' must be a string");
            else if ((n->ref = ms__strdup(json_string_value(val))) == NULL)
                s = oom(c, path);
        } else if (strcmp(key, "$defs") == 0 || strcmp(key, "definitions") == 0) {
            s = compile_defs(c, val, path, key, depth);
        } else if (strcmp(key, "$id") == 0 && depth == 0) {
            if (!json_is_string(val))
                s = cerr(c, MS_ERR_SCHEMA, path, "'$id' must be a string");
        } else if (is_annotation(key)) {
            /* ignored */
        } else {
            char *kp = pointer_append(path, key, strlen(key));
            if (kp == NULL)
                return oom(c, path);
            s = cerr(c, MS_ERR_UNSUPPORTED, kp, "keyword '%s' is not supported%s", key,
                     strcmp(key, "$id") == 0 ? " below the root" : " (see docs/schema.md)");
            ms__free(kp);
        }
        if (s != MS_OK)
            return s;
    }
    return MS_OK;
}

static ms_status compile_value(compiler *c, const json_t *v, const char *path, int depth,
                               node **out)
{
    node *n = NULL;
    ms_status s;

    if (depth > MS_SCHEMA_MAX_DEPTH)
        return cerr(c, MS_ERR_SCHEMA, path, "schema nests deeper than %d levels",
                    MS_SCHEMA_MAX_DEPTH);
    if (!json_is_object(v) && !json_is_boolean(v))
        return cerr(c, MS_ERR_SCHEMA, path, "a schema must be an object or a boolean, not %s %s",
                    json_is_array(v) || json_is_integer(v) ? "an" : "a", json_type_name(v));
    s = new_node(c, v, path, &n);
    if (s != MS_OK)
        return s;
    *out = n;
    if (json_is_boolean(v)) {
        n->boolean = json_is_true(v);
        return MS_OK;
    }
    return compile_object(c, n, v, path, depth);
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode, then RFC 6901 unescape, one token of a ref fragment into
 * out (room for len + 1 bytes). 0 on a bad escape. */
static int decode_token(const char *p, size_t len, char *out, size_t *outlen)
{
    size_t j = 0, k = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '%') {
            int hi = -1, lo = -1;
            if (i + 2 < len) {
                hi = hex_digit(p[i + 1]);
                lo = hex_digit(p[i + 2]);
            }
            if (hi < 0 || lo < 0)
                return 0;
            out[j++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            out[j++] = p[i];
        }
    }
    for (size_t i = 0; i < j; i++) {
        if (out[i] == '~') {
            if (i + 1 >= j || (out[i + 1] != '0' && out[i + 1] != '1'))
                return 0;
            out[k++] = out[i + 1] == '0' ? '~' : '/';
            i++;
        } else {
            out[k++] = out[i];
        }
    }
    out[k] = '\0';
    *outlen = k;
    return 1;
}

/* Resolve a local ref against the document; *target NULL when absent. */
static ms_status resolve_pointer(compiler *c, const node *n, const json_t **target,
                                 char **canonical)
{
    const char *ref = n->ref, *p;
    const json_t *cur = c->doc;
    char *canon = NULL, *tok = NULL;
    ms_status s = MS_OK;

    *target = NULL;
    *canonical = NULL;
    if (ref[0] != '#')
        return cerr(c, MS_ERR_UNSUPPORTED, n->path,
                    "'$ref' \"%s\": only local references (\"#\", \"#/...\") are supported", ref);
    if (ref[1] != '\0' && ref[1] != '/')
        return cerr(c, MS_ERR_UNSUPPORTED, n->path,
                    "'$ref' \"%s\": anchors ($anchor) are not supported, only JSON pointers", ref);
    canon = ms__strdup("");
    tok = ms__malloc(strlen(ref) + 1);
    if (canon == NULL || tok == NULL) {
        s = oom(c, n->path);
        goto cleanup;
    }
    p = ref + 1;
    while (*p == '/') {
        const char *end = strchr(p + 1, '/');
        size_t raw = end ? (size_t)(end - p - 1) : strlen(p + 1), toklen;
        char *grown;
        if (!decode_token(p + 1, raw, tok, &toklen)) {
            s = cerr(c, MS_ERR_SCHEMA, n->path, "'$ref' \"%s\": bad escape in the pointer", ref);
            goto cleanup;
        }
        if (json_is_object(cur)) {
            cur = json_object_getn(cur, tok, toklen);
        } else if (json_is_array(cur)) {
            char *endp;
            unsigned long idx;
            errno = 0;
            idx = strtoul(tok, &endp, 10);
            if (toklen == 0 || *endp != '\0' || errno != 0 || (tok[0] == '0' && toklen > 1) ||
                tok[0] < '0' || tok[0] > '9')
                cur = NULL;
            else
                cur = json_array_get(cur, idx);
        } else {
            cur = NULL;
        }
        if (cur == NULL) {
            s = cerr(c, MS_ERR_SCHEMA, n->path, "'$ref' \"%s\": no such location in %s", ref,
                     c->name);
            goto cleanup;
        }
        grown = pointer_append(canon, tok, toklen);
        if (grown == NULL) {
            s = oom(c, n->path);
            goto cleanup;
        }
        ms__free(canon);
        canon = grown;
        p = end ? end : p + 1 + raw;
    }
    *target = cur;
    *canonical = canon;
    canon = NULL;
cleanup:
    ms__free(canon);
    ms__free(tok);
    return s;
}

/* Depth of a schema location: its number of pointer tokens. */
static int pointer_depth(const char *p)
{
    int d = 0;
    for (; *p; p++)
        d += *p == '/';
    return d;
}

static ms_status resolve_refs(compiler *c)
{
    /* Resolving may compile new nodes (a target no keyword reached), which
     * may hold refs of their own: walk the growing array until its end. */
    for (size_t i = 0; i < c->s->nnodes; i++) {
        node *n = c->s->nodes[i], *found = NULL;
        const json_t *target;
        char *canon;
        ms_status s;
        if (n->ref == NULL)
            continue;
        s = resolve_pointer(c, n, &target, &canon);
        if (s != MS_OK)
            return s;
        for (size_t k = 0; k < c->s->nnodes && found == NULL; k++)
            if (c->s->nodes[k]->src == target)
                found = c->s->nodes[k];
        if (found == NULL)
            s = compile_value(c, target, canon, pointer_depth(canon), &found);
        ms__free(canon);
        if (s != MS_OK)
            return s;
        c->s->nodes[i]->ref_target = found;
    }
    return MS_OK;
}

/* Refuse in-place cycles: a chain of $ref/allOf/anyOf/oneOf/not that comes
 * back to a node without descending into the instance never terminates. */
static ms_status check_cycles(compiler *c, node *n, int chain)
{
    node *next[4];
    ms_status s;

    if (n->mark == 2)
        return MS_OK;
    if (n->mark == 1)
        return cerr(c, MS_ERR_SCHEMA, n->path,
                    "a $ref/allOf/anyOf/oneOf/not cycle that never descends into the instance "
                    "(it would recurse forever)");
    if (chain > MAX_INPLACE_CHAIN)
        return cerr(c, MS_ERR_SCHEMA, n->path,
                    "a chain of more than %d in-place applicators ($ref, allOf ...)",
                    MAX_INPLACE_CHAIN);
    n->mark = 1;
    next[0] = n->ref_target;
    next[1] = n->not_;
    next[2] = next[3] = NULL;
    for (int k = 0; k < 2; k++)
        if (next[k] != NULL && (s = check_cycles(c, next[k], chain + 1)) != MS_OK)
            return s;
    for (size_t i = 0; i < n->nall; i++)
        if ((s = check_cycles(c, n->all_of[i], chain + 1)) != MS_OK)
            return s;
    for (size_t i = 0; i < n->nany; i++)
        if ((s = check_cycles(c, n->any_of[i], chain + 1)) != MS_OK)
            return s;
    for (size_t i = 0; i < n->none; i++)
        if ((s = check_cycles(c, n->one_of[i], chain + 1)) != MS_OK)
            return s;
    n->mark = 2;
    return MS_OK;
}

void ms_schema_destroy(ms_schema *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nnodes; i++)
        node_free(s->nodes[i]);
    ms__free(s->nodes);
    ms__free(s->name);
    ms__free(s);
}

const char *ms_schema_name(const ms_schema *s)
{
    return s != NULL ? s->name : "";
}

ms_status ms_schema_compile(const json_t *schema, const char *name, ms_schema **out)
{
    compiler c;
    ms_schema *s;
    ms_status st;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_schema_compile: out is NULL");
    *out = NULL;
    if (schema == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_schema_compile: schema is NULL");
    if (name == NULL)
        name = "schema";
    s = ms__calloc(1, sizeof *s);
    if (s == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: out of memory compiling the schema", name);
    s->name = ms__strdup(name);
    if (s->name == NULL) {
        ms_schema_destroy(s);
        return ms__err(MS_ERR_NO_MEMORY, "%s: out of memory compiling the schema", name);
    }
    c.s = s;
    c.doc = schema;
    c.name = name;
    st = compile_value(&c, schema, "", 0, &s->root);
    if (st == MS_OK)
        st = resolve_refs(&c);
    for (size_t i = 0; i < s->nnodes && st == MS_OK; i++)
        st = check_cycles(&c, s->nodes[i], 0);
    if (st != MS_OK) {
        ms_schema_destroy(s);
        return st;
    }
    for (size_t i = 0; i < s->nnodes; i++)
        s->nodes[i]->src = NULL; /* the document is the caller's again */
    *out = s;
    return MS_OK;
}

ms_status ms_schema_load(const char *path, ms_schema **out)
{
    json_t *doc = NULL;
    ms_status s;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_schema_load: out is NULL");
    *out = NULL;
    if (path == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_schema_load: path is NULL");
    s = ms_json_load_file(path, 0, &doc);
    if (s != MS_OK)
        return s;
    s = ms_schema_compile(doc, path, out);
    json_decref(doc);
    return s;
}

/* --- validating ---------------------------------------------------------------- */

typedef struct seg {
    const char *key; /* NULL: an array index */
    size_t klen;
    size_t index;
} seg;

typedef struct sink {
    ms_schema_error *v;
    size_t n, cap, max;
} sink;

typedef struct vctx {
    seg path[MS_SCHEMA_MAX_DEPTH + 1];
    size_t depth;
    size_t frames;   /* current recursion depth of validate() */
    sink *out;       /* NULL: quiet, stop at the first failure */
    ms_status fatal; /* MS_ERR_NO_MEMORY once an allocation failed */
} vctx;

static void errors_free(ms_schema_error *e, size_t n)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        ms__free(e[i].instance_path);
        ms__free(e[i].schema_path);
        ms__free(e[i].message);
    }
    ms__free(e);
}

void ms_schema_errors_free(ms_schema_error *errors, size_t count)
{
    errors_free(errors, count);
}

static int sink_full(const vctx *v)
{
    return v->out == NULL || v->out->n >= v->out->max || v->fatal != MS_OK;
}

static char *instance_pointer(const vctx *v)
{
    char *p = ms__strdup("");
    for (size_t i = 0; i < v->depth && p != NULL; i++) {
        char *np = v->path[i].key ? pointer_append(p, v->path[i].key, v->path[i].klen)
                                  : pointer_append_index(p, v->path[i].index);
        ms__free(p);
        p = np;
    }
    return p;
}

/* Record an error at the current instance location for keyword kw of n.
 * Always returns 0 (invalid), so a check is `return fail(...)`. */
static int fail(vctx *v, const node *n, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(vctx *v, const node *n, const char *kw, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    ms_schema_error *e;

    if (v->out == NULL || v->fatal != MS_OK || v->out->n >= v->out->max)
        return 0;
    if (v->out->n == v->out->cap) {
        size_t ncap = v->out->cap ? v->out->cap * 2 : 4;
        ms_schema_error *nv = ms__realloc(v->out->v, ncap * sizeof *nv);
        if (nv == NULL) {
            v->fatal = MS_ERR_NO_MEMORY;
            return 0;
        }
        v->out->v = nv;
        v->out->cap = ncap;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    e = &v->out->v[v->out->n];
    e->instance_path = instance_pointer(v);
    e->schema_path = kw ? pointer_append(n->path, kw, strlen(kw)) : ms__strdup(n->path);
    e->message = ms__strdup(msg);
    if (e->instance_path == NULL || e->schema_path == NULL || e->message == NULL) {
        ms__free(e->instance_path);
        ms__free(e->schema_path);
        ms__free(e->message);
        v->fatal = MS_ERR_NO_MEMORY;
        return 0;
    }
    v->out->n++;
    return 0;
}

static int validate(vctx *v, const node *n, const json_t *inst);

/* Validate a child instance (object member or array element). */
static int validate_child(vctx *v, const node *n, const json_t *child, const char *key, size_t klen,
                          size_t index)
{
    int ok;
    if (v->depth >= MS_SCHEMA_MAX_DEPTH)
        return fail(v, n, NULL, "the instance nests deeper than %d levels", MS_SCHEMA_MAX_DEPTH);
    v->path[v->depth].key = key;
    v->path[v->depth].klen = klen;
    v->path[v->depth].index = index;
    v->depth++;
    ok = validate(v, n, child);
    v->depth--;
    return ok;
}

/* Run n quietly against inst: 1 valid, 0 not. */
static int quiet(vctx *v, const node *n, const json_t *inst)
{
    sink *saved = v->out;
    int ok;
    v->out = NULL;
    ok = validate(v, n, inst);
    v->out = saved;
    return ok;
}

/* The first error n reports for inst, as "<path>: <message>", into buf. */
static NOINLINE void first_error(vctx *v, const node *n, const json_t *inst, char *buf, size_t cap)
{
    sink one = {NULL, 0, 0, 1}, *saved = v->out;
    v->out = &one;
    validate(v, n, inst);
    v->out = saved;
    if (one.n > 0)
        snprintf(buf, cap, "%s: %s", one.v[0].instance_path[0] ? one.v[0].instance_path : "/",
                 one.v[0].message);
    else
        snprintf(buf, cap, "invalid");
    errors_free(one.v, one.n);
}

static int prop_find(const node *n, const char *key)
{
    size_t lo = 0, hi = n->nprops;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(key, n->props[mid].name);
        if (r == 0)
            return 1;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

static int regex_match(const regex_t *re, const char *s, size_t len)
{
    regmatch_t m[1];
    m[0].rm_so = 0;
    m[0].rm_eo = (regoff_t)len;
    return regexec(re, s, 1, m, REG_STARTEND) == 0;
}

static int validate_object(vctx *v, const node *n, const json_t *inst)
{
    int ok = 1;
    const char *key;
    size_t klen;
    json_t *member;
    size_t size = json_object_size(inst);

    for (size_t i = 0; i < n->nrequired; i++) {
        if (json_object_get(inst, n->required[i]) == NULL) {
            ok = fail(v, n, "required", "missing required property '%s'", n->required[i]);
            if (sink_full(v))
                return 0;
        }
    }
    if (size < n->min_props) {
        ok = fail(v, n, "minProperties", "%zu properties, fewer than the minimum of %zu", size,
                  n->min_props);
        if (sink_full(v))
            return 0;
    }
    if (size > n->max_props) {
        ok = fail(v, n, "maxProperties", "%zu properties, more than the maximum of %zu", size,
                  n->max_props);
        if (sink_full(v))
            return 0;
    }
    for (size_t i = 0; i < n->nprops; i++) {
        json_t *m = json_object_get(inst, n->props[i].name);
        if (m != NULL && !validate_child(v, n->props[i].schema, m, n->props[i].name,
                                         strlen(n->props[i].name), 0)) {
            ok = 0;
            if (sink_full(v))
                return 0;
        }
    }
    if (n->npprops == 0 && n->additional == NULL)
        return ok;
    json_object_keylen_foreach((json_t *)inst, key, klen, member)
    {
        int matched = prop_find(n, key);
        for (size_t i = 0; i < n->npprops; i++) {
            if (!regex_match(&n->pprops[i].re, key, klen))
                continue;
            matched = 1;
            if (!validate_child(v, n->pprops[i].schema, member, key, klen, 0)) {
                ok = 0;
                if (sink_full(v))
                    return 0;
            }
        }
        if (!matched && n->additional != NULL) {
            int child_ok;
            if (n->additional->boolean == 0) {
                /* The usual case gets a message that names the property. */
                ok = fail(v, n, "additionalProperties", "property '%s' is not allowed", key);
                if (sink_full(v))
                    return 0;
                continue;
            }
            child_ok = validate_child(v, n->additional, member, key, klen, 0);
            if (!child_ok) {
                ok = 0;
                if (sink_full(v))
                    return 0;
            }
        }
    }
    return ok;
}

static int validate_array(vctx *v, const node *n, const json_t *inst)
{
    int ok = 1;
    size_t size = json_array_size(inst);

    if (size < n->min_items) {
        ok = fail(v, n, "minItems", "%zu items, fewer than the minimum of %zu", size, n->min_items);
        if (sink_full(v))
            return 0;
    }
    if (size > n->max_items) {
        ok = fail(v, n, "maxItems", "%zu items, more than the maximum of %zu", size, n->max_items);
        if (sink_full(v))
            return 0;
    }
    for (size_t i = 0; i < size; i++) {
        const node *sub = i < n->nprefix ? n->prefix[i] : n->items;
        if (sub == NULL)
            break;
        if (!validate_child(v, sub, json_array_get(inst, i), NULL, 0, i)) {
            ok = 0;
            if (sink_full(v))
                return 0;
        }
    }
    if (n->unique) {
        /* Pairwise: O(n^2), see docs/schema.md. */
        for (size_t i = 0; i < size; i++) {
            for (size_t j = i + 1; j < size; j++) {
                int eq = values_equal(json_array_get(inst, i), json_array_get(inst, j), 0);
                if (eq < 0)
                    return fail(v, n, "uniqueItems", "items nest deeper than %d levels",
                                MS_SCHEMA_MAX_DEPTH);
                if (eq == 1)
                    return fail(v, n, "uniqueItems", "items %zu and %zu are equal", i, j);
            }
        }
    }
    return ok;
}

/* Code points of a UTF-8 string, or SIZE_MAX (and *bad = byte offset) when
 * it is not valid UTF-8. */
static size_t utf8_length(const char *s, size_t len, size_t *bad)
{
    size_t i = 0, count = 0;
    while (i < len) {
        unsigned long cp;
        size_t n = ms__utf8_decode((const unsigned char *)s + i, len - i, &cp);
        if (n == 0) {
            *bad = i;
            return SIZE_MAX;
        }
        i += n;
        count++;
    }
    return count;
}

static NOINLINE int validate_string(vctx *v, const node *n, const json_t *inst)
{
    int ok = 1;
    const char *str = json_string_value(inst);
    size_t len = json_string_length(inst), bad = 0, cps;

    if (n->min_len == 0 && n->max_len == SIZE_MAX && !n->pattern_ok)
        return 1;
    cps = utf8_length(str, len, &bad);
    if (cps == SIZE_MAX)
        return fail(v, n,
                    n->pattern_ok ? "pattern"
                    : n->min_len  ? "minLength"
                                  : "maxLength",
                    "string is not valid UTF-8 (at byte %zu)", bad);
    if (cps < n->min_len) {
        ok = fail(v, n, "minLength", "string of %zu characters, shorter than the minimum of %zu",
                  cps, n->min_len);
        if (sink_full(v))
            return 0;
    }
    if (cps > n->max_len) {
        ok = fail(v, n, "maxLength", "string of %zu characters, longer than the maximum of %zu",
                  cps, n->max_len);
        if (sink_full(v))
            return 0;
    }
    if (n->pattern_ok && !regex_match(&n->pattern, str, len))
        ok = fail(v, n, "pattern", "string does not match the pattern \"%s\"", n->pattern_src);
    return ok;
}

static int is_multiple(const json_t *inst, num m)
{
    double q, x;
    if (json_is_integer(inst) && m.is_int)
        return m.i == 0 ? 0 : json_integer_value(inst) % m.i == 0;
    x = json_number_value(inst);
    q = x / m.d;
    if (!isfinite(q))
        return 0;
    return fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
}

static NOINLINE int validate_number(vctx *v, const node *n, const json_t *inst)
{
    int ok = 1;
    num x = to_num(inst);
    char lim[40], val[40];

    if (!n->limits && !n->has_multiple)
        return 1;
    num_format(x, val, sizeof val);
    if ((n->limits & L_MIN) && num_cmp(x, n->minimum) < 0) {
        num_format(n->minimum, lim, sizeof lim);
        ok = fail(v, n, "minimum", "%s is less than the minimum of %s", val, lim);
        if (sink_full(v))
            return 0;
    }
    if ((n->limits & L_MAX) && num_cmp(x, n->maximum) > 0) {
        num_format(n->maximum, lim, sizeof lim);
        ok = fail(v, n, "maximum", "%s is greater than the maximum of %s", val, lim);
        if (sink_full(v))
            return 0;
    }
    if ((n->limits & L_XMIN) && num_cmp(x, n->xminimum) <= 0) {
        num_format(n->xminimum, lim, sizeof lim);
        ok = fail(v, n, "exclusiveMinimum", "%s is not greater than %s", val, lim);
        if (sink_full(v))
            return 0;
    }
    if ((n->limits & L_XMAX) && num_cmp(x, n->xmaximum) >= 0) {
        num_format(n->xmaximum, lim, sizeof lim);
        ok = fail(v, n, "exclusiveMaximum", "%s is not less than %s", val, lim);
        if (sink_full(v))
            return 0;
    }
    if (n->has_multiple && !is_multiple(inst, n->multiple)) {
        num_format(n->multiple, lim, sizeof lim);
        ok = fail(v, n, "multipleOf", "%s is not a multiple of %s", val, lim);
    }
    return ok;
}

static NOINLINE void type_list(unsigned types, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < sizeof type_names / sizeof type_names[0]; k++) {
        if (!(types & type_names[k].bit))
            continue;
        len += (size_t)snprintf(buf + len, len < cap ? cap - len : 0, "%s%s", len ? " or " : "",
                                type_names[k].name);
        if (len >= cap)
            return;
    }
}

static NOINLINE int fail_type(vctx *v, const node *n, const json_t *inst)
{
    char want[128];
    type_list(n->types, want, sizeof want);
    return fail(v, n, "type", "expected %s, got %s", want, json_type_name(inst));
}

static int type_ok(unsigned types, const json_t *inst)
{
    switch (json_typeof(inst)) {
    case JSON_OBJECT:
        return types & T_OBJECT;
    case JSON_ARRAY:
        return types & T_ARRAY;
    case JSON_STRING:
        return types & T_STRING;
    case JSON_INTEGER:
    case JSON_REAL:
        return (types & T_NUMBER) || ((types & T_INTEGER) && is_integer_value(inst));
    case JSON_TRUE:
    case JSON_FALSE:
        return types & T_BOOLEAN;
    case JSON_NULL:
        return types & T_NULL;
    }
    return 0;
}

/* anyOf / oneOf when they fail: one error summing the branches up. */
static NOINLINE int fail_enum(vctx *v, const node *n, int deep)
{
    char list[256] = "";
    size_t len = 0;

    if (deep)
        return fail(v, n, "enum", "the value nests deeper than %d levels", MS_SCHEMA_MAX_DEPTH);
    for (size_t i = 0; i < json_array_size(n->enum_values) && len < 200; i++) {
        const json_t *e = json_array_get(n->enum_values, i);
        if (json_is_string(e))
            len += (size_t)snprintf(list + len, sizeof list - len, "%s\"%s\"", i ? ", " : "",
                                    json_string_value(e));
        else
            len += (size_t)snprintf(list + len, sizeof list - len, "%sa %s", i ? ", " : "",
                                    json_type_name(e));
    }
    if (len >= 200 && len < sizeof list)
        snprintf(list + len, sizeof list - len, ", ...");
    return fail(v, n, "enum", "value is not one of the allowed values (%s)", list);
}

static NOINLINE int fail_alternatives(vctx *v, const node *n, const char *kw, node *const *alts,
                                      size_t count, const json_t *inst)
{
    char summary[SUMMARY_MAX + 64], one[SUMMARY_MAX];
    size_t len = 0;

    if (v->out == NULL)
        return 0;
    summary[0] = '\0';
    for (size_t i = 0; i < count && len < SUMMARY_MAX; i++) {
        first_error(v, alts[i], inst, one, sizeof one);
        len += (size_t)snprintf(summary + len, sizeof summary - len, "%s[%zu] %s", i ? "; " : "", i,
                                one);
    }
    if (len >= SUMMARY_MAX)
        snprintf(summary + SUMMARY_MAX - 4, sizeof summary - (SUMMARY_MAX - 4), " ...");
    return fail(v, n, kw, "matches none of the %zu alternatives of %s: %s", count, kw, summary);
}

static int validate_node(vctx *v, const node *n, const json_t *inst);

static int validate(vctx *v, const node *n, const json_t *inst)
{
    int ok;
    if (v->fatal != MS_OK)
        return 0;
    if (v->frames >= MAX_EVAL_DEPTH)
        return fail(v, n, NULL, "schema evaluation nests deeper than %d levels", MAX_EVAL_DEPTH);
    v->frames++;
    ok = validate_node(v, n, inst);
    v->frames--;
    return ok;
}

static int validate_node(vctx *v, const node *n, const json_t *inst)
{
    int ok = 1;

    if (n->boolean >= 0)
        return n->boolean ? 1 : fail(v, n, NULL, "no value is allowed here (false schema)");

    if (n->types && !type_ok(n->types, inst))
        return fail_type(v, n, inst); /* the other keywords would only repeat it */
    if (n->has_const) {
        int eq = values_equal(inst, n->const_value, 0);
        if (eq < 0)
            ok = fail(v, n, "const", "the value nests deeper than %d levels", MS_SCHEMA_MAX_DEPTH);
        else if (eq == 0)
            ok = fail(v, n, "const", "value is not the constant the schema requires");
        if (!ok && sink_full(v))
            return 0;
    }
    if (n->enum_values != NULL) {
        int found = 0, deep = 0;
        for (size_t i = 0; i < json_array_size(n->enum_values) && !found; i++) {
            int eq = values_equal(inst, json_array_get(n->enum_values, i), 0);
            found = eq == 1;
            deep |= eq < 0;
        }
        if (!found) {
            ok = fail_enum(v, n, deep);
            if (sink_full(v))
                return 0;
        }
    }
    switch (json_typeof(inst)) {
    case JSON_OBJECT:
        if (!validate_object(v, n, inst))
            ok = 0;
        break;
    case JSON_ARRAY:
        if (!validate_array(v, n, inst))
            ok = 0;
        break;
    case JSON_STRING:
        if (!validate_string(v, n, inst))
            ok = 0;
        break;
    case JSON_INTEGER:
    case JSON_REAL:
        if (!validate_number(v, n, inst))
            ok = 0;
        break;
    default:
        break;
    }
    if (!ok && sink_full(v))
        return 0;

    if (n->ref_target != NULL && !validate(v, n->ref_target, inst)) {
        ok = 0;
        if (sink_full(v))
            return 0;
    }
    for (size_t i = 0; i < n->nall; i++) {
        if (!validate(v, n->all_of[i], inst)) {
            ok = 0;
            if (sink_full(v))
                return 0;
        }
    }
    if (n->nany > 0) {
        int any = 0;
        for (size_t i = 0; i < n->nany && !any && v->fatal == MS_OK; i++)
            any = quiet(v, n->any_of[i], inst);
        if (!any) {
            ok = fail_alternatives(v, n, "anyOf", n->any_of, n->nany, inst);
            if (sink_full(v))
                return 0;
        }
    }
    if (n->none > 0) {
        size_t matches = 0, first = 0, second = 0;
        for (size_t i = 0; i < n->none && matches < 2 && v->fatal == MS_OK; i++) {
            if (quiet(v, n->one_of[i], inst)) {
                if (matches == 0)
                    first = i;
                else
                    second = i;
                matches++;
            }
        }
        if (matches == 0)
            ok = fail_alternatives(v, n, "oneOf", n->one_of, n->none, inst);
        else if (matches > 1)
            ok = fail(v, n, "oneOf",
                      "matches more than one alternative of oneOf (at least [%zu] and [%zu]); "
                      "exactly one must match",
                      first, second);
        if (!ok && sink_full(v))
            return 0;
    }
    if (n->not_ != NULL && v->fatal == MS_OK && quiet(v, n->not_, inst))
        ok = fail(v, n, "not", "value matches the schema under 'not'");
    return ok && v->fatal == MS_OK;
}

ms_status ms_schema_validate(const ms_schema *s, const json_t *instance, size_t max_errors,
                             ms_schema_error **errors, size_t *count)
{
    vctx *v;
    sink out = {NULL, 0, 0, max_errors ? max_errors : MS_SCHEMA_DEFAULT_MAX_ERRORS};
    ms_status st;
    int ok;

    if (errors != NULL)
        *errors = NULL;
    if (count != NULL)
        *count = 0;
    if (s == NULL || instance == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_schema_validate: %s is NULL",
                       s == NULL ? "schema" : "instance");
    if (errors != NULL && count == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_schema_validate: errors without count");
    v = ms__calloc(1, sizeof *v);
    if (v == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: out of memory validating", s->name);
    /* Without an error array only the first error is wanted. */
    if (errors == NULL)
        out.max = 1;
    v->out = &out;
    ok = validate(v, s->root, instance);
    if (v->fatal != MS_OK) {
        st = ms__err(v->fatal, "%s: out of memory validating", s->name);
        errors_free(out.v, out.n);
        goto cleanup;
    }
    if (ok) {
        errors_free(out.v, out.n);
        st = MS_OK;
        goto cleanup;
    }
    if (out.n > 0)
        st = ms__err(MS_ERR_SCHEMA, "%s: %s",
                     out.v[0].instance_path[0] ? out.v[0].instance_path : "/", out.v[0].message);
    else
        st = ms__err(MS_ERR_SCHEMA, "/: invalid against %s", s->name);
    if (errors != NULL) {
        *errors = out.v;
        *count = out.n;
    } else {
        errors_free(out.v, out.n);
    }
cleanup:
    ms__free(v);
    return st;
}
