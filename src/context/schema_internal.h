/*
 * schema_internal.h - pieces of the JSON Schema validator shared between its
 * files (internal).
 */
#ifndef MS_CONTEXT_SCHEMA_INTERNAL_H
#define MS_CONTEXT_SCHEMA_INTERNAL_H

#include <stddef.h>

#include "mainstack/status.h"

/* Translate an ECMA-262 pattern (len bytes, UTF-8) into a POSIX extended
 * regular expression with the same meaning for what docs/schema.md lists as
 * supported. *out is new (ms__malloc'd, NUL terminated).
 * MS_OK; MS_ERR_UNSUPPORTED for a construct POSIX cannot express (the detail
 * names it and its byte offset); MS_ERR_SCHEMA for a pattern that is invalid
 * in ECMA-262 too ("nothing to repeat", unbalanced bracket); MS_ERR_NO_MEMORY. */
ms_status ms__schema_regex_translate(const char *ecma, size_t len, char **out);

/* Decode one UTF-8 sequence strictly (no overlongs, surrogates or values
 * past U+10FFFF) at s[0..len). Returns its length (1..4) and the code point
 * in *cp, or 0 when the bytes are not valid UTF-8. */
size_t ms__utf8_decode(const unsigned char *s, size_t len, unsigned long *cp);

#endif
