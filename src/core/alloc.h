/*
 * alloc.h - the one allocation wrapper of the library (internal).
 *
 * Every allocation in src/ goes through these so that a test can make the
 * Nth allocation fail (ms__alloc_fail_after) and check that every error path
 * cleans up and reports MS_ERR_NO_MEMORY instead of crashing. Memory from
 * these is released with ms__free (which is free()).
 */
#ifndef MS_CORE_ALLOC_H
#define MS_CORE_ALLOC_H

#include <stddef.h>

void *ms__malloc(size_t n);
void *ms__calloc(size_t count, size_t n);
void *ms__realloc(void *p, size_t n);
char *ms__strdup(const char *s);   /* NULL in, NULL out */
char *ms__strndup(const char *s, size_t n);
void ms__free(void *p);

/* Test hook: after `n` more successful allocations every allocation fails
 * (n < 0 turns failure injection off). Returns how many allocations were
 * made since the hook was last set. Process-wide. */
long ms__alloc_fail_after(long n);

#endif
