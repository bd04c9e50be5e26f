/*
 * schema.h - mainstack's JSON Schema validator (a subset of draft 2020-12).
 *
 * Compile a schema once, validate many instances against it:
 *
 *     ms_schema *s;
 *     if (ms_schema_load("schemas/context.schema.json", &s) != MS_OK) ...
 *     ms_schema_error *errs; size_t n;
 *     if (ms_schema_validate(s, doc, 0, &errs, &n) == MS_ERR_SCHEMA) {
 *         for (size_t i = 0; i < n; i++)
 *             printf("%s: %s\n", errs[i].instance_path, errs[i].message);
 *         ms_schema_errors_free(errs, n);
 *     }
 *
 * What is supported (keywords, the regular expression dialect, limits, the
 * error format) is written down in docs/schema.md. In short: the validation
 * keywords of 2020-12 that matter for configuration files, local $ref only,
 * every keyword the validator does not know is refused at compile time
 * (except annotations), so a schema never silently means less than it says.
 *
 * Threading: a compiled ms_schema is immutable; any number of threads may
 * validate against it at once. Compiling is a plain function of its input.
 */
#ifndef MAINSTACK_SCHEMA_H
#define MAINSTACK_SCHEMA_H

#include <stddef.h>

#include <jansson.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Nesting limit of schemas (at compile time) and of instances (at validation
 * time): past it the schema is refused, or the instance is invalid, with an
 * error naming the location. Keeps the recursion far from the stack's end. */
#define MS_SCHEMA_MAX_DEPTH 256
/* Default cap on the errors one validation reports (max_errors == 0). */
#define MS_SCHEMA_DEFAULT_MAX_ERRORS 64

typedef struct ms_schema ms_schema; /* compiled, immutable, thread-safe to use */

/* Compile a schema document. `schema` is borrowed: the compiled form copies
 * what it needs, so the document may be changed or freed afterwards. `name`
 * (copied; NULL = "schema") labels errors, e.g. the file name.
 * Statuses: MS_OK; MS_ERR_INVALID_ARG (NULL schema or out);
 * MS_ERR_UNSUPPORTED (a keyword or feature the validator does not implement:
 * the detail names the keyword and its JSON pointer; annotations such as
 * title, description, $comment, examples, default and format are ignored);
 * MS_ERR_SCHEMA (an invalid schema: the detail says what and where, as
 * "<name>: <pointer>: <what>"); MS_ERR_NO_MEMORY. */
ms_status ms_schema_compile(const json_t *schema, const char *name, ms_schema **out);

/* Read, parse and compile a schema file. Parse errors are MS_ERR_PARSE with
 * "file:line:column: what"; a missing file is MS_ERR_IO; otherwise as
 * ms_schema_compile, with the file name as `name`. */
ms_status ms_schema_load(const char *path, ms_schema **out);

/* Free a compiled schema. NULL-safe. */
void ms_schema_destroy(ms_schema *s);

/* The name the schema was compiled with (borrowed from s). */
const char *ms_schema_name(const ms_schema *s);

typedef struct ms_schema_error {
    char *instance_path; /* JSON pointer into the instance ("" = root), RFC 6901 escaped */
    char *schema_path;   /* JSON pointer into the schema, e.g. "/properties/autonomy/required" */
    char *message;       /* what is wrong: "expected string, got integer" */
} ms_schema_error;

/* Validate `instance` (borrowed) against `s`.
 * MS_OK when valid. MS_ERR_SCHEMA when not: if errors != NULL, *errors gets
 * a malloc'd array of *count errors (at most max_errors; 0 =
 * MS_SCHEMA_DEFAULT_MAX_ERRORS), freed with ms_schema_errors_free;
 * ms_last_error() holds the first as "<instance_path>: <message>" (the root
 * is written "/"). With errors == NULL the validation stops at the first
 * error. `count` may be NULL when errors is NULL.
 * Other statuses: MS_ERR_INVALID_ARG (NULL s or instance, or errors without
 * count), MS_ERR_NO_MEMORY (nothing is returned in *errors).
 * The schema path of an error is the location of the failing keyword in the
 * schema document itself: through a $ref it is the referenced location. */
ms_status ms_schema_validate(const ms_schema *s, const json_t *instance, size_t max_errors,
                             ms_schema_error **errors, size_t *count);

/* Free an error array from ms_schema_validate. NULL-safe. */
void ms_schema_errors_free(ms_schema_error *errors, size_t count);

#ifdef __cplusplus
}
#endif
#endif
