/*
 * alloc.c - the allocation wrapper, with failure injection for tests.
 *
 * The injection counter is one relaxed atomic load on the fast path when it
 * is off, so production code pays next to nothing for it.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

static atomic_long fail_after = -1; /* < 0: never fail */
static atomic_long made;

static int should_fail(void)
{
    long left = atomic_load_explicit(&fail_after, memory_order_relaxed);
    if (left < 0)
        return 0;
    atomic_fetch_add_explicit(&made, 1, memory_order_relaxed);
    for (;;) {
        if (left <= 0)
            return 1;
        if (atomic_compare_exchange_weak(&fail_after, &left, left - 1))
            return 0;
        if (left < 0)
            return 0;
    }
}

long ms__alloc_fail_after(long n)
{
    long before = atomic_exchange(&made, 0);
    atomic_store(&fail_after, n);
    return before;
}

void *ms__malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *ms__calloc(size_t count, size_t n)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, n ? n : 1);
}

void *ms__realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

char *ms__strdup(const char *s)
{
    if (s == NULL)
        return NULL;
    return ms__strndup(s, strlen(s));
}

char *ms__strndup(const char *s, size_t n)
{
    if (s == NULL)
        return NULL;
    size_t len = strnlen(s, n);
    char *d = ms__malloc(len + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void ms__free(void *p)
{
    free(p);
}
