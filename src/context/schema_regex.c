/*
 * schema_regex.c - ECMA-262 patterns ("pattern", "patternProperties") as
 * POSIX extended regular expressions.
 *
 * JSON Schema patterns are ECMA-262; libc has POSIX ERE. This file walks an
 * ECMA pattern once and writes the ERE with the same meaning, or refuses the
 * constructs ERE has no equivalent for (lookaround, backreferences, lazy
 * quantifiers, \b, Unicode property escapes ...). Character classes are
 * rebuilt from a 128-bit set so POSIX's bracket rules (']' first, '-' last,
 * backslash literal) never change their meaning. The dialect is written down
 * in docs/schema.md; matching is by bytes (the C locale).
 */
#include <stdio.h>
#include <string.h>

#include "context/schema_internal.h"
#include "core/alloc.h"
#include "core/error.h"

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void put(buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        char *np;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        np = ms__realloc(b->p, ncap);
        if (np == NULL) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

size_t ms__utf8_decode(const unsigned char *s, size_t len, unsigned long *cp)
{
    unsigned long c;
    size_t n, i;

    if (len == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2;
        c = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3;
        c = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10FFFF ||
        (c >= 0xD800 && c <= 0xDFFF))
        return 0;
    *cp = c;
    return n;
}

static size_t utf8_encode(unsigned long cp, char out[4])
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* n hex digits at p (p[0..avail)); -1 when they are not there. */
static long hexn(const char *p, size_t avail, size_t n)
{
    long v = 0;
    if (avail < n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v * 16 + h;
    }
    return v;
}

/* An ASCII character as an ERE atom matching exactly itself. */
static void put_literal(buf *b, unsigned char c)
{
    char tmp[2] = {'\\', (char)c};
    if (strchr("^.[$()|*+?{\\", c) != NULL && c != '\0')
        put(b, tmp, 2);
    else
        put(b, tmp + 1, 1);
}

/* A code point as an ERE atom: a non-ASCII one is its UTF-8 bytes, grouped
 * so that a following quantifier applies to the whole character. */
static void put_codepoint(buf *b, unsigned long cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        put_literal(b, (unsigned char)cp);
        return;
    }
    n = utf8_encode(cp, u);
    put(b, "(", 1);
    put(b, u, n);
    put(b, ")", 1);
}

typedef struct cset {
    unsigned char in[128];
} cset;

static void cset_range(cset *c, int lo, int hi)
{
    for (int i = lo; i <= hi; i++)
        c->in[i] = 1;
}

static void cset_digit(cset *c)
{
    cset_range(c, '0', '9');
}

static void cset_word(cset *c)
{
    cset_range(c, '0', '9');
    cset_range(c, 'A', 'Z');
    cset_range(c, 'a', 'z');
    c->in['_'] = 1;
}

static void cset_space(cset *c)
{
    /* ECMA's \s also has the Unicode spaces; only the ASCII ones here. */
    c->in[' '] = c->in['\t'] = c->in['\n'] = c->in['\r'] = c->in['\f'] = c->in['\v'] = 1;
}

/* Write a POSIX bracket expression for the set. */
static void put_cset(buf *b, const cset *c, int negate)
{
    int special_close = c->in[']'], special_caret = c->in['^'], special_dash = c->in['-'];
    int others = 0;
    char ch[1];

    for (int i = 1; i < 128; i++)
        if (c->in[i] && i != ']' && i != '^' && i != '-')
            others = 1;
    if (!negate && !others && !special_close && !special_dash && special_caret) {
        put(b, "\\^", 2);
        return;
    }
    put(b, "[", 1);
    if (negate)
        put(b, "^", 1);
    if (special_close)
        put(b, "]", 1);
    else if (special_caret && !others && special_dash) {
        /* "[-^]": the dash first is literal, the caret after it too. */
        put(b, "-^]", 3);
        return;
    }
    for (int i = 1; i < 128; i++) {
        int j = i;
        if (!c->in[i] || i == ']' || i == '^' || i == '-')
            continue;
        while (j + 1 < 128 && c->in[j + 1] && j + 1 != ']' && j + 1 != '^' && j + 1 != '-')
            j++;
        ch[0] = (char)i;
        put(b, ch, 1);
        if (j - i >= 2)
            put(b, "-", 1);
        if (j > i) {
            ch[0] = (char)j;
            put(b, ch, 1);
        }
        i = j;
    }
    if (special_caret)
        put(b, "^", 1);
    if (special_dash)
        put(b, "-", 1);
    put(b, "]", 1);
}

typedef struct tr {
    const char *p;
    size_t len, i;
    buf out;
} tr;

static ms_status refuse(const tr *t, size_t at, const char *what)
{
    return ms__err(MS_ERR_UNSUPPORTED, "%s at byte %zu of the pattern", what, at);
}

static ms_status invalid(const tr *t, size_t at, const char *what)
{
    return ms__err(MS_ERR_SCHEMA, "invalid pattern: %s at byte %zu", what, at);
}

/* One class member at t->i: a single character (*single = code point, -1 for
 * a class escape already added to c). */
static ms_status class_atom(tr *t, cset *c, long *single)
{
    size_t at = t->i;
    unsigned char ch = (unsigned char)t->p[t->i];
    long v;

    *single = -1;
    if (ch >= 0x80)
        return refuse(t, at, "a non-ASCII character in a character class");
    if (ch != '\\') {
        t->i++;
        *single = ch;
        return MS_OK;
    }
    if (t->i + 1 >= t->len)
        return invalid(t, at, "'\\' at the end");
    ch = (unsigned char)t->p[t->i + 1];
    t->i += 2;
    switch (ch) {
    case 'd':
        cset_digit(c);
        return MS_OK;
    case 'w':
        cset_word(c);
        return MS_OK;
    case 's':
        cset_space(c);
        return MS_OK;
    case 'D':
    case 'W':
    case 'S':
        return refuse(t, at, "a negated class escape (\\D, \\W, \\S) inside a character class");
    case 't':
        *single = '\t';
        return MS_OK;
    case 'n':
        *single = '\n';
        return MS_OK;
    case 'r':
        *single = '\r';
        return MS_OK;
    case 'f':
        *single = '\f';
        return MS_OK;
    case 'v':
        *single = '\v';
        return MS_OK;
    case 'b':
        *single = '\b';
        return MS_OK;
    case 'x':
        v = hexn(t->p + t->i, t->len - t->i, 2);
        if (v < 0)
            return refuse(t, at, "'\\x' without two hex digits");
        t->i += 2;
        break;
    case 'u':
        v = hexn(t->p + t->i, t->len - t->i, 4);
        if (v < 0)
            return refuse(t, at, "'\\u' without four hex digits");
        t->i += 4;
        break;
    default:
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
            return refuse(t, at, "this escape inside a character class");
        if (ch >= 0x80)
            return refuse(t, at, "a non-ASCII character in a character class");
        *single = ch;
        return MS_OK;
    }
    if (v == 0 || v >= 0x80)
        return refuse(t, at, "a NUL or non-ASCII character in a character class");
    *single = v;
    return MS_OK;
}

static ms_status char_class(tr *t)
{
    cset c;
    int negate = 0, any = 0;
    size_t start = t->i;
    ms_status s;

    memset(&c, 0, sizeof c);
    t->i++; /* '[' */
    if (t->i < t->len && t->p[t->i] == '^') {
        negate = 1;
        t->i++;
    }
    if (t->i < t->len && t->p[t->i] == ']')
        return refuse(t, start, negate ? "'[^]'" : "the empty class '[]'");
    while (t->i < t->len && t->p[t->i] != ']') {
        long lo, hi;
        size_t at = t->i;
        s = class_atom(t, &c, &lo);
        if (s != MS_OK)
            return s;
        any = 1;
        if (lo >= 0 && t->i + 1 < t->len && t->p[t->i] == '-' && t->p[t->i + 1] != ']') {
            t->i++;
            s = class_atom(t, &c, &hi);
            if (s != MS_OK)
                return s;
            if (hi < 0)
                return refuse(t, at, "a range with a class escape as an end");
            if (hi < lo)
                return invalid(t, at, "range out of order in character class");
            cset_range(&c, (int)lo, (int)hi);
        } else if (lo >= 0) {
            c.in[lo] = 1;
        }
    }
    if (t->i >= t->len)
        return invalid(t, start, "unterminated character class");
    t->i++; /* ']' */
    if (!any)
        return invalid(t, start, "empty character class");
    put_cset(&t->out, &c, negate);
    return MS_OK;
}

/* An escape outside a class, at t->i ('\\'). */
static ms_status escape(tr *t)
{
    size_t at = t->i;
    unsigned char ch;
    cset c;
    long v;

    if (t->i + 1 >= t->len)
        return invalid(t, at, "'\\' at the end");
    ch = (unsigned char)t->p[t->i + 1];
    t->i += 2;
    memset(&c, 0, sizeof c);
    switch (ch) {
    case 'd':
    case 'D':
        cset_digit(&c);
        put_cset(&t->out, &c, ch == 'D');
        return MS_OK;
    case 'w':
    case 'W':
        cset_word(&c);
        put_cset(&t->out, &c, ch == 'W');
        return MS_OK;
    case 's':
    case 'S':
        cset_space(&c);
        put_cset(&t->out, &c, ch == 'S');
        return MS_OK;
    case 't':
        put_literal(&t->out, '\t');
        return MS_OK;
    case 'n':
        put_literal(&t->out, '\n');
        return MS_OK;
    case 'r':
        put_literal(&t->out, '\r');
        return MS_OK;
    case 'f':
        put_literal(&t->out, '\f');
        return MS_OK;
    case 'v':
        put_literal(&t->out, '\v');
        return MS_OK;
    case 'b':
    case 'B':
        return refuse(t, at, "the word boundary assertion '\\b'/'\\B'");
    case 'x':
        v = hexn(t->p + t->i, t->len - t->i, 2);
        if (v < 0)
            return refuse(t, at, "'\\x' without two hex digits");
        t->i += 2;
        break;
    case 'u':
        v = hexn(t->p + t->i, t->len - t->i, 4);
        if (v < 0)
            return refuse(t, at, "'\\u' without four hex digits (or '\\u{...}')");
        t->i += 4;
        if (v >= 0xD800 && v <= 0xDBFF) {
            long lo = -1;
            if (t->i + 6 <= t->len && t->p[t->i] == '\\' && t->p[t->i + 1] == 'u')
                lo = hexn(t->p + t->i + 2, t->len - t->i - 2, 4);
            if (lo < 0xDC00 || lo > 0xDFFF)
                return refuse(t, at, "a lone surrogate '\\u' escape");
            t->i += 6;
            v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        } else if (v >= 0xDC00 && v <= 0xDFFF) {
            return refuse(t, at, "a lone surrogate '\\u' escape");
        }
        break;
    default:
        if (ch >= '1' && ch <= '9')
            return refuse(t, at, "a backreference");
        if (ch == '0')
            return refuse(t, at, "the NUL escape '\\0'");
        if (ch == 'p' || ch == 'P')
            return refuse(t, at, "a Unicode property escape '\\p{...}'");
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))
            return refuse(t, at, "this escape");
        if (ch >= 0x80)
            return refuse(t, at, "'\\' before a non-ASCII character");
        put_literal(&t->out, ch);
        return MS_OK;
    }
    if (v == 0)
        return refuse(t, at, "a NUL character");
    put_codepoint(&t->out, (unsigned long)v);
    return MS_OK;
}

/* "{n}", "{n,}", "{n,m}" at t->i: 1 and the length when it is one. */
static int brace_quantifier(const tr *t, size_t *qlen)
{
    size_t j = t->i + 1, digits = 0;
    while (j < t->len && t->p[j] >= '0' && t->p[j] <= '9') {
        j++;
        digits++;
    }
    if (digits == 0)
        return 0;
    if (j < t->len && t->p[j] == ',') {
        j++;
        while (j < t->len && t->p[j] >= '0' && t->p[j] <= '9')
            j++;
    }
    if (j >= t->len || t->p[j] != '}')
        return 0;
    *qlen = j + 1 - t->i;
    return 1;
}

ms_status ms__schema_regex_translate(const char *ecma, size_t len, char **out)
{
    tr t = {.p = ecma, .len = len, .i = 0, .out = {0}};
    int have_atom = 0;
    size_t open = 0, first_open = 0;
    ms_status s = MS_OK;

    *out = NULL;
    if (memchr(ecma, '\0', len) != NULL)
        return refuse(&t, (size_t)((const char *)memchr(ecma, '\0', len) - ecma),
                      "a NUL character");
    puts_(&t.out, "");
    while (t.i < t.len && s == MS_OK) {
        unsigned char ch = (unsigned char)t.p[t.i];
        size_t at = t.i, qlen;
        switch (ch) {
        case '\\':
            s = escape(&t);
            have_atom = 1;
            break;
        case '[':
            s = char_class(&t);
            have_atom = 1;
            break;
        case '(':
            if (t.i + 1 < t.len && t.p[t.i + 1] == '?') {
                if (t.i + 2 < t.len && t.p[t.i + 2] == ':') {
                    t.i += 3;
                } else {
                    s = refuse(&t, at, "a lookaround or named group '(?'");
                    break;
                }
            } else {
                t.i++;
            }
            if (open++ == 0)
                first_open = at;
            put(&t.out, "(", 1);
            have_atom = 0;
            break;
        case ')':
            if (open == 0) {
                s = invalid(&t, at, "unmatched ')'");
                break;
            }
            open--;
            t.i++;
            put(&t.out, ")", 1);
            have_atom = 1;
            break;
        case '|':
            t.i++;
            put(&t.out, "|", 1);
            have_atom = 0;
            break;
        case '^':
        case '$':
            t.i++;
            put(&t.out, (const char *)&t.p[at], 1);
            have_atom = 0;
            break;
        case '.':
            t.i++;
            puts_(&t.out, "[^\n\r]");
            have_atom = 1;
            break;
        case '*':
        case '+':
        case '?':
        case '{':
            qlen = 1;
            if (ch == '{' && !brace_quantifier(&t, &qlen)) {
                /* ECMA (Annex B) reads a '{' that starts no quantifier literally. */
                t.i++;
                put_literal(&t.out, '{');
                have_atom = 1;
                break;
            }
            if (!have_atom) {
                s = invalid(&t, at, "nothing to repeat");
                break;
            }
            if (at + qlen < t.len && t.p[at + qlen] == '?') {
                s = refuse(&t, at, "a lazy quantifier");
                break;
            }
            put(&t.out, t.p + at, qlen);
            t.i += qlen;
            have_atom = 0;
            break;
        default:
            if (ch < 0x80) {
                t.i++;
                put_literal(&t.out, ch);
            } else {
                unsigned long cp;
                size_t n = ms__utf8_decode((const unsigned char *)t.p + t.i, t.len - t.i, &cp);
                if (n == 0) {
                    s = invalid(&t, at, "invalid UTF-8");
                    break;
                }
                t.i += n;
                put_codepoint(&t.out, cp);
            }
            have_atom = 1;
            break;
        }
    }
    if (s == MS_OK && open > 0)
        s = invalid(&t, first_open, "unterminated group");
    if (s == MS_OK && t.out.oom)
        s = ms__err(MS_ERR_NO_MEMORY, "translating a pattern of %zu bytes", len);
    if (s != MS_OK) {
        ms__free(t.out.p);
        return s;
    }
    *out = t.out.p;
    return MS_OK;
}
