/*
 * subject.c - NATS subject validation and wildcard matching.
 *
 * These run on the publish and delivery hot paths, so each is a single pass
 * over the bytes with no allocation. The rules are those of the NATS server:
 * tokens separated by '.', none empty, no whitespace; '*' and '>' are
 * wildcards only as whole tokens, and '>' only as the last token. The trie
 * index over the same rules lives in subject_index.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "core/error.h"
#include "mainstack/message.h"
#include "mainstack/subject.h"

/* How much of a bad subject is quoted back in an error detail. */
#define QUOTE_MAX 80

/* Bytes that end a run of ordinary subject bytes: the token separator, the
 * terminator and the whitespace the NATS server refuses in a subject. A
 * table, because validation runs on every publish and a lookup per byte is
 * the cheapest scan. */
static const bool stops_scan[256] = {
    ['\0'] = true, ['.'] = true,  [' '] = true,  ['\t'] = true,
    ['\r'] = true, ['\n'] = true, ['\f'] = true,
};

/* One pass over s: checks lengths, empty tokens, whitespace and wildcard
 * placement. `what` names the input in errors ("subject", "pattern"). */
static ms_status check(const char *s, bool allow_wildcards, const char *what)
{
    size_t start = 0; /* first byte of the current token */
    size_t i = 0;

    if (s == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s is NULL", what);
    if (s[0] == '\0')
        return ms__err(MS_ERR_INVALID_SUBJECT, "%s is empty", what);

    for (;;) {
        unsigned char c;
        size_t len;

        while (!stops_scan[(unsigned char)s[i]])
            i++;
        c = (unsigned char)s[i];
        /* A subject of exactly MS_SUBJECT_MAX bytes ends at s[MAX]. */
        if (i > MS_SUBJECT_MAX || (i == MS_SUBJECT_MAX && c != '\0'))
            return ms__err(MS_ERR_INVALID_SUBJECT, "%s '%.*s...' is longer than %d bytes", what,
                           QUOTE_MAX, s, MS_SUBJECT_MAX);
        if (c != '.' && c != '\0')
            return ms__err(MS_ERR_INVALID_SUBJECT, "%s '%.*s': whitespace (0x%02x) at byte %zu",
                           what, QUOTE_MAX, s, c, i);
        len = i - start;
        if (len == 0)
            return ms__err(MS_ERR_INVALID_SUBJECT, "%s '%.*s': empty token at byte %zu", what,
                           QUOTE_MAX, s, i);
        if (len == 1 && (s[start] == '*' || s[start] == '>')) {
            if (!allow_wildcards)
                return ms__err(MS_ERR_INVALID_SUBJECT,
                               "%s '%.*s': wildcard '%c' at byte %zu (not allowed when "
                               "publishing)",
                               what, QUOTE_MAX, s, s[start], start);
            if (s[start] == '>' && c == '.')
                return ms__err(MS_ERR_INVALID_SUBJECT,
                               "%s '%.*s': wildcard '>' at byte %zu must be the last token", what,
                               QUOTE_MAX, s, start);
        }
        if (c == '\0')
            return MS_OK;
        start = ++i;
    }
}

ms_status ms_subject_validate(const char *subject)
{
    return check(subject, false, "subject");
}

ms_status ms_subject_validate_pattern(const char *pattern)
{
    return check(pattern, true, "pattern");
}

/* End of the token starting at p: the next '.' or the terminating NUL. */
static const char *token_end(const char *p)
{
    while (*p != '.' && *p != '\0')
        p++;
    return p;
}

bool ms_subject_matches(const char *pattern, const char *subject)
{
    const char *p = pattern;
    const char *s = subject;

    if (p == NULL || s == NULL || *p == '\0' || *s == '\0')
        return false;
    for (;;) {
        const char *pe = token_end(p);
        const char *se = token_end(s);
        size_t plen = (size_t)(pe - p);

        if (plen == 1 && *p == '>')
            return true; /* the subject has at least this one token left */
        if (!(plen == 1 && *p == '*')) {
            if (plen != (size_t)(se - s) || memcmp(p, s, plen) != 0)
                return false;
        }
        if (*pe == '\0' || *se == '\0')
            return *pe == '\0' && *se == '\0';
        p = pe + 1;
        s = se + 1;
    }
}

bool ms_subject_has_wildcard(const char *pattern)
{
    const char *p = pattern;

    if (p == NULL)
        return false;
    for (;;) {
        const char *e = token_end(p);
        if (e - p == 1 && (*p == '*' || *p == '>'))
            return true;
        if (*e == '\0')
            return false;
        p = e + 1;
    }
}
