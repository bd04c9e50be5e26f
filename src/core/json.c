/*
 * json.c - jansson helpers with mainstack errors.
 *
 * Parsing refuses duplicate keys and accepts any top-level value; every
 * failure leaves "name:line:column: what" in ms_last_error() so a person (or
 * an agent) can go straight to the spot. The typed getters are what the
 * context and message validators build on: one call per field, one clear
 * message per wrong field.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/json.h"

#define DEFAULT_MAX_FILE ((size_t)64 * 1024 * 1024)
#define PARSE_FLAGS (JSON_REJECT_DUPLICATES | JSON_DECODE_ANY)

static ms_status parse_error(const char *name, const json_error_t *err)
{
    /* jansson sets no text at all when an allocation fails early on. */
    if (json_error_code(err) == json_error_out_of_memory || err->text[0] == '\0')
        return ms__err(MS_ERR_NO_MEMORY, "%s: out of memory while parsing JSON", name);
    if (err->line > 0)
        return ms__err(MS_ERR_PARSE, "%s:%d:%d: %s", name, err->line, err->column, err->text);
    return ms__err(MS_ERR_PARSE, "%s: %s", name, err->text);
}

ms_status ms_json_parse(const char *text, size_t len, const char *name, json_t **out)
{
    json_error_t err;
    json_t *v;

    if (name == NULL)
        name = "<json>";
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: out is NULL", name);
    *out = NULL;
    if (text == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: text is NULL", name);
    v = json_loadb(text, len, PARSE_FLAGS, &err);
    if (v == NULL)
        return parse_error(name, &err);
    *out = v;
    return MS_OK;
}

/* Read all of fd (at most max bytes) into a new NUL-terminated buffer. */
static ms_status read_all(int fd, const char *path, size_t max, char **buf_out, size_t *len_out)
{
    struct stat st;
    size_t cap, len = 0;
    char *buf = NULL;
    ms_status s = MS_OK;

    if (fstat(fd, &st) != 0)
        return ms__err(MS_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return ms__err(MS_ERR_IO, "%s: %s", path, strerror(EISDIR));
    if (S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max)
        return ms__err(MS_ERR_TOO_LARGE, "%s: %jd bytes, over the limit of %zu", path,
                       (intmax_t)st.st_size, max);
    /* The size is a hint only (pipes, /proc, a file that grows): read to EOF. */
    /* +2: the NUL, and one byte so that the read seeing EOF needs no growth. */
    cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size + 2 : 4096;
    buf = ms__malloc(cap);
    if (buf == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "%s: allocating %zu bytes", path, cap);
    for (;;) {
        ssize_t n;
        if (len + 1 >= cap) {
            size_t ncap = cap * 2;
            char *grown;
            if (ncap > max + 2)
                ncap = max + 2;
            if (ncap <= cap) {
                s = ms__err(MS_ERR_TOO_LARGE, "%s: over the limit of %zu bytes", path, max);
                goto cleanup;
            }
            grown = ms__realloc(buf, ncap);
            if (grown == NULL) {
                s = ms__err(MS_ERR_NO_MEMORY, "%s: allocating %zu bytes", path, ncap);
                goto cleanup;
            }
            buf = grown;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - 1 - len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            s = ms__err(MS_ERR_IO, "%s: %s", path, strerror(errno));
            goto cleanup;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > max) {
            s = ms__err(MS_ERR_TOO_LARGE, "%s: over the limit of %zu bytes", path, max);
            goto cleanup;
        }
    }
    buf[len] = '\0';
    *buf_out = buf;
    *len_out = len;
    buf = NULL;

cleanup:
    ms__free(buf);
    return s;
}

ms_status ms_json_load_file(const char *path, size_t max_bytes, json_t **out)
{
    char *text = NULL;
    size_t len = 0;
    ms_status s;
    int fd;

    if (out == NULL || path == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_json_load_file: path or out is NULL");
    *out = NULL;
    if (max_bytes == 0)
        max_bytes = DEFAULT_MAX_FILE;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ms__err(MS_ERR_IO, "%s: %s", path, strerror(errno));
    s = read_all(fd, path, max_bytes, &text, &len);
    close(fd);
    if (s != MS_OK)
        return s;
    s = ms_json_parse(text, len, path, out);
    ms__free(text);
    return s;
}

ms_status ms_json_dump(const json_t *value, char **out, size_t *len)
{
    char *text;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_json_dump: out is NULL");
    *out = NULL;
    if (value == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_json_dump: value is NULL");
    /* jansson keeps object keys in insertion order since 2.8. */
    text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "ms_json_dump: serialising");
    *out = text;
    if (len != NULL)
        *len = strlen(text);
    return MS_OK;
}

/*
 * Shared front half of the getters: *member is the value under key, or NULL
 * when absent and optional (then *out is left as the caller set it, so a
 * default can be preset). Returns MS_ERR_SCHEMA when obj is not an object
 * or a required member is absent.
 */
static ms_status member(const json_t *obj, const char *key, const char *where, int required,
                        json_t **value)
{
    *value = NULL;
    if (key == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: key is NULL", where);
    if (!json_is_object(obj))
        return ms__err(MS_ERR_SCHEMA, "%s: must be an object (looking for field '%s')", where, key);
    *value = json_object_get(obj, key);
    if (*value == NULL && required)
        return ms__err(MS_ERR_SCHEMA, "%s: field '%s' is required", where, key);
    return MS_OK;
}

ms_status ms_json_get_string(const json_t *obj, const char *key, const char *where, int required,
                             const char **out)
{
    json_t *v;
    ms_status s;

    if (where == NULL)
        where = "json";
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: out is NULL", where);
    s = member(obj, key, where, required, &v);
    if (s != MS_OK || v == NULL)
        return s;
    if (!json_is_string(v))
        return ms__err(MS_ERR_SCHEMA, "%s: field '%s' must be a string", where, key);
    *out = json_string_value(v);
    return MS_OK;
}

ms_status ms_json_get_bool(const json_t *obj, const char *key, const char *where, int required,
                           int *out)
{
    json_t *v;
    ms_status s;

    if (where == NULL)
        where = "json";
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: out is NULL", where);
    s = member(obj, key, where, required, &v);
    if (s != MS_OK || v == NULL)
        return s;
    if (!json_is_boolean(v))
        return ms__err(MS_ERR_SCHEMA, "%s: field '%s' must be a boolean", where, key);
    *out = json_is_true(v);
    return MS_OK;
}

ms_status ms_json_get_int(const json_t *obj, const char *key, const char *where, int required,
                          long long *out)
{
    json_t *v;
    ms_status s;

    if (where == NULL)
        where = "json";
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "%s: out is NULL", where);
    s = member(obj, key, where, required, &v);
    if (s != MS_OK || v == NULL)
        return s;
    if (!json_is_integer(v))
        return ms__err(MS_ERR_SCHEMA, "%s: field '%s' must be an integer", where, key);
    *out = (long long)json_integer_value(v);
    return MS_OK;
}
