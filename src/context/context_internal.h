/*
 * context_internal.h - the field checker shared by the context.json and
 * agent-config.json loaders (internal).
 *
 * A checker walks a JSON document keeping the JSON pointer of where it is,
 * so that every error reads "file: /pointer: what is wrong". Arrays the
 * loaded object needs are allocated through the checker's arena and handed
 * to the object whole, which frees them at its end.
 */
#ifndef MS_CONTEXT_INTERNAL_H
#define MS_CONTEXT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "mainstack/status.h"

#define MS__CONTEXT_MAX_FILE ((size_t)4 * 1024 * 1024)

typedef struct ms__arena {
    void **p;
    size_t n, cap;
} ms__arena;

/* calloc'd memory owned by the arena; NULL (with MS_ERR_NO_MEMORY recorded
 * by the caller) when out of memory. n may be 0 (returns a 1-byte block). */
void *ms__arena_alloc(ms__arena *a, size_t count, size_t size);
void ms__arena_free(ms__arena *a);

typedef struct ms__ld {
    const char *source;
    ms__arena *arena;
    char ptr[512];
    size_t len;
} ms__ld;

/* Extend the pointer by a key or an index; returns the mark to pop to. */
size_t ms__ld_key(ms__ld *l, const char *key);
size_t ms__ld_index(ms__ld *l, size_t i);
void ms__ld_pop(ms__ld *l, size_t mark);

/* MS_ERR_SCHEMA "source: pointer: <fmt>" (pointer "(root)" at the top). */
ms_status ms__ld_err(ms__ld *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same at the current pointer extended by key. */
ms_status ms__ld_field_err(ms__ld *l, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
ms_status ms__ld_nomem(ms__ld *l);

/* The value at the current pointer must be an object whose keys are all in
 * allowed (NULL-terminated). */
ms_status ms__ld_object(ms__ld *l, const json_t *v, const char *const *allowed);

/* Members of obj (an object already checked). Absent and not required:
 * MS_OK with *out NULL (or unchanged for enum/bool/int). */
ms_status ms__ld_string(ms__ld *l, const json_t *obj, const char *key, bool required,
                        size_t max_bytes, const char **out);
ms_status ms__ld_bool(ms__ld *l, const json_t *obj, const char *key, bool required, bool *out);
ms_status ms__ld_int(ms__ld *l, const json_t *obj, const char *key, bool required, long long min,
                     long long max, long long *out);
/* A string that must be one of names (NULL-terminated); *out its index. */
ms_status ms__ld_enum(ms__ld *l, const json_t *obj, const char *key, bool required,
                      const char *const *names, int *out);
/* An array member (absent and optional: *out NULL). */
ms_status ms__ld_array(ms__ld *l, const json_t *obj, const char *key, bool required,
                       const json_t **out);
/* An array of non-empty strings (each at most max_bytes) into an arena
 * array of borrowed pointers with a NULL after the last. Absent: 0, and an
 * empty array. */
ms_status ms__ld_strings(ms__ld *l, const json_t *obj, const char *key, bool required,
                         size_t max_bytes, const char *const **out, size_t *count);

/* [a-z0-9-]+, 1..64 bytes, no leading or trailing '-' (component.h). */
bool ms__ld_name_valid(const char *s);

#endif
