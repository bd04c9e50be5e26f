/*
 * validate.c - the field checks of user-service, each failing with
 * MS_ERR_SCHEMA and a detail that names the operation and the field, so the
 * caller (a person, an agent) sees at once what to fix.
 *
 * The email check is deliberately practical, not RFC 5321 complete: ASCII
 * only (no SMTPUTF8 addresses), one '@', a local part of 1..64 printable
 * characters without the specials that need quoting, a domain of dot-
 * separated labels of letters, digits and inner hyphens with at least one
 * dot, 254 bytes in all. docs: ../interface.json, ../context/context.json.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "user_service_internal.h"

ms_status us__fail(ms_status s, const char *fmt, ...)
{
    char detail[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    /* The detail may quote the caller's input and travels in a header. */
    for (char *p = detail; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7F)
            *p = '?';
    }
    return ms_ctx_error(NULL, s, "%s", detail);
}

ms_status us__check_fields(const json_t *obj, const char *where, const char *const *allowed)
{
    const char *key;
    json_t *value;
    char list[256];
    size_t used = 0;

    json_object_foreach((json_t *)obj, key, value)
    {
        bool known = false;
        (void)value;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(key, allowed[i]) == 0;
        if (known)
            continue;
        list[0] = '\0';
        for (size_t i = 0; allowed[i] != NULL && used < sizeof list; i++) {
            int n = snprintf(list + used, sizeof list - used, "%s'%s'", i ? ", " : "", allowed[i]);
            if (n < 0)
                break;
            used += (size_t)n;
        }
        return us__fail(MS_ERR_SCHEMA, "%s: unknown field '%.64s' (allowed: %s)", where, key, list);
    }
    return MS_OK;
}

bool us__utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        unsigned long cp;

        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return false; /* a continuation byte, 0xC0/0xC1 or past 0xF4 */
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0u) != 0x80u)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false; /* overlong, past Unicode, or a surrogate */
        i += n + 1;
    }
    return true;
}

ms_status us__check_name(const char *name, size_t len, const char *where)
{
    bool blank = true;

    if (len == 0)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'name' must not be empty", where);
    if (len > USER_NAME_MAX)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'name' is %zu bytes long, the limit is %d", where,
                        len, USER_NAME_MAX);
    if (!us__utf8_valid(name, len))
        return us__fail(MS_ERR_SCHEMA, "%s: field 'name' is not valid UTF-8", where);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7F)
            return us__fail(MS_ERR_SCHEMA,
                            "%s: field 'name' has a control character (0x%02x) at byte %zu", where,
                            c, i);
        if (c != ' ')
            blank = false;
    }
    if (blank)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'name' must not be blank", where);
    return MS_OK;
}

/* One domain label: 1..63 of [A-Za-z0-9-], not starting or ending with '-'. */
static bool label_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    }
    return true;
}

ms_status us__check_email(const char *email, size_t len, const char *where)
{
    const char *at = NULL;
    size_t local_len, start;
    bool dot = false;

    if (len == 0)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'email' must not be empty", where);
    if (len > USER_EMAIL_MAX)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'email' is %zu bytes long, the limit is %d",
                        where, len, USER_EMAIL_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)email[i];
        if (c <= 0x20 || c >= 0x7F)
            return us__fail(MS_ERR_SCHEMA,
                            "%s: field 'email' has a space, control or non-ASCII character "
                            "at byte %zu",
                            where, i);
        if (c == '@') {
            if (at != NULL)
                return us__fail(MS_ERR_SCHEMA, "%s: field 'email' has more than one '@'", where);
            at = email + i;
        }
    }
    if (at == NULL)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'email' has no '@'", where);
    local_len = (size_t)(at - email);
    if (local_len == 0)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'email' has nothing before the '@'", where);
    if (local_len > USER_EMAIL_LOCAL_MAX)
        return us__fail(MS_ERR_SCHEMA,
                        "%s: field 'email' has %zu bytes before the '@', the limit is %d", where,
                        local_len, USER_EMAIL_LOCAL_MAX);
    for (size_t i = 0; i < local_len; i++) {
        if (strchr("()<>[]\\,;:\"", email[i]) != NULL)
            return us__fail(MS_ERR_SCHEMA,
                            "%s: field 'email' has '%c' before the '@' (only unquoted local "
                            "parts are accepted)",
                            where, email[i]);
    }
    if (email[0] == '.' || email[local_len - 1] == '.' || memmem(email, local_len, "..", 2))
        return us__fail(MS_ERR_SCHEMA,
                        "%s: field 'email' has a leading, trailing or double '.' before the '@'",
                        where);
    /* The domain: labels separated by single dots, at least two labels. */
    start = local_len + 1;
    if (start == len)
        return us__fail(MS_ERR_SCHEMA, "%s: field 'email' has no domain after the '@'", where);
    for (size_t i = start; i <= len; i++) {
        if (i < len && email[i] != '.')
            continue;
        if (!label_ok(email + start, i - start))
            return us__fail(MS_ERR_SCHEMA,
                            "%s: field 'email' has an invalid domain '%s' (labels of letters, "
                            "digits and inner '-', separated by single dots)",
                            where, at + 1);
        if (i < len)
            dot = true;
        start = i + 1;
    }
    if (!dot)
        return us__fail(MS_ERR_SCHEMA,
                        "%s: field 'email' needs a domain with a dot (like example.com), got "
                        "'%s'",
                        where, at + 1);
    return MS_OK;
}

ms_status us__check_id(const char *id, size_t len, const char *where, const char *field)
{
    if (len != USER_ID_LEN)
        goto bad;
    for (size_t i = 0; i < len; i++) {
        char c = id[i];
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            goto bad;
    }
    return MS_OK;
bad:
    return us__fail(MS_ERR_SCHEMA,
                    "%s: field '%s' must be a user id (a UUID: 36 lower-case hex digits and "
                    "dashes), got '%.64s'",
                    where, field, id);
}
