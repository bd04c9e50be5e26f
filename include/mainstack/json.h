/*
 * json.h - small helpers over jansson that report errors the mainstack way:
 * "name:line:column: what is wrong" in ms_last_error().
 */
#ifndef MAINSTACK_JSON_H
#define MAINSTACK_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parse len bytes of text. name labels the input in errors ("payload",
 * a file name). *out is a new reference. Duplicate object keys are refused.
 * MS_OK, MS_ERR_INVALID_ARG, MS_ERR_PARSE. */
ms_status ms_json_parse(const char *text, size_t len, const char *name, json_t **out);
/* Read and parse a file. MS_ERR_IO (names the file and errno text),
 * MS_ERR_PARSE ("file:line:column: what"), MS_ERR_TOO_LARGE (over max_bytes;
 * 0 = 64 MiB). */
ms_status ms_json_load_file(const char *path, size_t max_bytes, json_t **out);
/* Compact serialisation, keys in insertion order. *out is malloc'd, NUL
 * terminated, freed by the caller with free(). MS_ERR_NO_MEMORY. */
ms_status ms_json_dump(const json_t *value, char **out, size_t *len);

/* Typed member access for validating input: MS_ERR_SCHEMA with
 * "<where>: field '<key>' must be a string" when the member is absent (if
 * required) or of the wrong type. Returned strings are borrowed from obj. */
ms_status ms_json_get_string(const json_t *obj, const char *key, const char *where,
                             int required, const char **out);
ms_status ms_json_get_bool(const json_t *obj, const char *key, const char *where,
                           int required, int *out);
ms_status ms_json_get_int(const json_t *obj, const char *key, const char *where,
                          int required, long long *out);

#ifdef __cplusplus
}
#endif
#endif
