/*
 * subject.h - NATS subjects: validation, wildcard matching, and an index.
 *
 * The rules are exactly those of NATS: a subject is tokens separated by '.';
 * no token is empty; no whitespace (space, tab, CR, LF) anywhere; '*' as a
 * whole token matches exactly one token; '>' as a whole (last) token matches
 * one or more tokens. '*' or '>' inside a longer token ("a*", "b>") is a
 * literal character, as in the NATS server. Publish subjects may not contain
 * wildcard tokens. Subjects are at most MS_SUBJECT_MAX bytes.
 *
 * ms_subject_index maps subscription patterns to values and finds, for a
 * published subject, every value whose pattern matches it, by walking a token
 * trie (never by scanning all patterns): per node a hash table of literal
 * children, a '*' child and a '>' value list.
 */
#ifndef MAINSTACK_SUBJECT_H
#define MAINSTACK_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A valid subject to publish to (no wildcards). MS_ERR_INVALID_SUBJECT with
 * the reason and byte offset in ms_last_error(), or MS_ERR_INVALID_ARG. */
ms_status ms_subject_validate(const char *subject);
/* A valid subscription pattern (wildcards allowed). */
ms_status ms_subject_validate_pattern(const char *pattern);
/* True when subject (no wildcards) matches pattern. Both must be valid. */
bool ms_subject_matches(const char *pattern, const char *subject);
/* True when the pattern contains a '*' or '>' token. */
bool ms_subject_has_wildcard(const char *pattern);

typedef struct ms_subject_index ms_subject_index;

/* Not thread-safe by itself: the owner locks. Matching never writes to the
 * index, so concurrent matches may share a read lock while no writer runs. */
ms_status ms_subject_index_create(ms_subject_index **out);
void ms_subject_index_destroy(ms_subject_index *idx); /* NULL-safe; values not freed */

/* Add value under pattern (the same value may be added under several
 * patterns, and a pattern may hold many values). The pattern is copied.
 * MS_ERR_INVALID_SUBJECT, MS_ERR_NO_MEMORY. */
ms_status ms_subject_index_insert(ms_subject_index *idx, const char *pattern, void *value);
/* Remove one (pattern, value) entry. MS_ERR_NOT_FOUND if absent. */
ms_status ms_subject_index_remove(ms_subject_index *idx, const char *pattern, void *value);
/* Number of (pattern, value) entries. */
size_t ms_subject_index_count(const ms_subject_index *idx);

/* Called once per matching entry; return false to stop early. */
typedef bool (*ms_subject_visit)(void *value, void *closure);
/* Visit every value whose pattern matches subject. Returns the number of
 * matches visited. Safe to call from several threads at once provided no
 * insert/remove runs concurrently. */
size_t ms_subject_index_match(ms_subject_index *idx, const char *subject,
                              ms_subject_visit visit, void *closure);

#ifdef __cplusplus
}
#endif
#endif
