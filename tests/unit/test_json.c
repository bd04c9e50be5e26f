/*
 * test_json.c - the jansson helpers: parse errors with name:line:column,
 * duplicate keys, files (missing, too large, a directory), compact dumps and
 * the typed getters' schema errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ms_test.h"

static void assert_detail_is(const char *want)
{
    assert_string_equal(ms_last_error(), want);
}

static void assert_detail_starts(const char *prefix)
{
    if (strncmp(ms_last_error(), prefix, strlen(prefix)) != 0)
        fail_msg("detail '%s' does not start with '%s'", ms_last_error(), prefix);
}

static void parse_objects_and_scalars(void **state)
{
    json_t *j = NULL;
    const char *text = "{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}";

    ms_assert_ok(ms_json_parse(text, strlen(text), "t", &j));
    assert_true(json_is_object(j));
    assert_int_equal(json_array_size(json_object_get(j, "a")), 3);
    json_decref(j);
    /* any top-level value (JSON_DECODE_ANY) */
    ms_assert_ok(ms_json_parse("42", 2, "t", &j));
    assert_int_equal(json_integer_value(j), 42);
    json_decref(j);
    ms_assert_ok(ms_json_parse("\"s\"", 3, "t", &j));
    assert_string_equal(json_string_value(j), "s");
    json_decref(j);
    /* len bounds the input: trailing bytes beyond it are not read */
    ms_assert_ok(ms_json_parse("[1]garbage", 3, "t", &j));
    json_decref(j);
}

static void parse_errors_have_line_and_column(void **state)
{
    json_t *j = (json_t *)1;
    const char *text = "{\n  \"a\": 1,\n  \"b\": tru\n}";

    ms_assert_status(ms_json_parse(text, strlen(text), "conf.json", &j), MS_ERR_PARSE);
    assert_null(j);
    assert_detail_starts("conf.json:3:");
    /* jansson points at the offending token on line 3 */
    {
        int line = 0, col = 0;
        assert_int_equal(sscanf(ms_last_error(), "conf.json:%d:%d:", &line, &col), 2);
        assert_int_equal(line, 3);
        assert_true(col >= 8 && col <= 11);
    }
    ms_assert_status(ms_json_parse("[1,]", 4, "p", &j), MS_ERR_PARSE);
    assert_detail_starts("p:1:4: ");
    ms_assert_status(ms_json_parse("", 0, "empty", &j), MS_ERR_PARSE);
    assert_detail_starts("empty");
}

static void duplicate_keys_refused(void **state)
{
    json_t *j = NULL;
    const char *text = "{\"a\": 1,\n \"a\": 2}";

    ms_assert_status(ms_json_parse(text, strlen(text), "dup", &j), MS_ERR_PARSE);
    assert_detail_starts("dup:2:");
    assert_non_null(strstr(ms_last_error(), "duplicate"));
}

static void parse_bad_arguments(void **state)
{
    json_t *j = NULL;

    ms_assert_status(ms_json_parse(NULL, 0, "x", &j), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_json_parse("1", 1, "x", NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_json_parse("1", 1, NULL, &j)); /* the name is optional */
    json_decref(j);
    ms_assert_status(ms_json_parse("[", 1, NULL, &j), MS_ERR_PARSE);
    assert_detail_starts("<json>:");
}

/* A temp file with content; path written to buf. */
static void temp_file(char *buf, size_t cap, const char *content)
{
    int fd;
    snprintf(buf, cap, "/tmp/ms_test_json_XXXXXX");
    fd = mkstemp(buf);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

static void load_file_ok_and_errors(void **state)
{
    char path[64], want[256];
    json_t *j = NULL;

    temp_file(path, sizeof path, "{\"name\": \"users\",\n \"port\": 8080}\n");
    ms_assert_ok(ms_json_load_file(path, 0, &j));
    assert_int_equal(json_integer_value(json_object_get(j, "port")), 8080);
    json_decref(j);

    ms_assert_status(ms_json_load_file(path, 10, &j), MS_ERR_TOO_LARGE);
    assert_null(j);
    assert_non_null(strstr(ms_last_error(), path));
    assert_non_null(strstr(ms_last_error(), "limit of 10"));
    unlink(path);

    temp_file(path, sizeof path, "{\"name\": \"users\",\n \"port\": }\n");
    ms_assert_status(ms_json_load_file(path, 0, &j), MS_ERR_PARSE);
    snprintf(want, sizeof want, "%s:2:", path);
    assert_detail_starts(want);
    unlink(path);

    ms_assert_status(ms_json_load_file("/nonexistent/dir/x.json", 0, &j), MS_ERR_IO);
    assert_detail_is("/nonexistent/dir/x.json: No such file or directory");
    ms_assert_status(ms_json_load_file("/tmp", 0, &j), MS_ERR_IO);
    assert_detail_is("/tmp: Is a directory");
    ms_assert_status(ms_json_load_file(NULL, 0, &j), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_json_load_file(path, 0, NULL), MS_ERR_INVALID_ARG);
}

static void load_file_larger_than_first_guess(void **state)
{
    /* a file bigger than one read buffer, read to the end */
    char path[64];
    size_t n = 300000;
    char *text = malloc(n + 3);
    json_t *j = NULL;

    assert_non_null(text);
    text[0] = '"';
    memset(text + 1, 'a', n);
    text[n + 1] = '"';
    text[n + 2] = '\0';
    temp_file(path, sizeof path, text);
    ms_assert_ok(ms_json_load_file(path, 0, &j));
    assert_int_equal(json_string_length(j), n);
    json_decref(j);
    unlink(path);
    free(text);
}

static void dump_is_compact_in_insertion_order(void **state)
{
    json_t *v = json_object();
    char *out = NULL;
    size_t len = 0;

    json_object_set_new(v, "z", json_integer(1));
    json_object_set_new(v, "a", json_pack("[s, b, n]", "x", 1));
    json_object_set_new(v, "m", json_real(1.5));
    ms_assert_ok(ms_json_dump(v, &out, &len));
    assert_string_equal(out, "{\"z\":1,\"a\":[\"x\",true,null],\"m\":1.5}");
    assert_int_equal(len, strlen(out));
    free(out);
    json_decref(v);

    v = json_string("scalar");
    ms_assert_ok(ms_json_dump(v, &out, NULL));
    assert_string_equal(out, "\"scalar\"");
    free(out);
    json_decref(v);

    ms_assert_status(ms_json_dump(NULL, &out, &len), MS_ERR_INVALID_ARG);
    assert_null(out);
    ms_assert_status(ms_json_dump(v, NULL, &len), MS_ERR_INVALID_ARG);
}

static void getters_typed_access(void **state)
{
    json_t *o = json_pack("{s:s, s:b, s:i, s:s, s:f}", "name", "users", "on", 1, "n", 12345,
                          "num_as_str", "7", "real", 2.5);
    const char *s = "preset";
    int b = -1;
    long long n = -1;

    ms_assert_ok(ms_json_get_string(o, "name", "context.json", 1, &s));
    assert_string_equal(s, "users");
    ms_assert_ok(ms_json_get_bool(o, "on", "context.json", 1, &b));
    assert_int_equal(b, 1);
    ms_assert_ok(ms_json_get_int(o, "n", "context.json", 1, &n));
    assert_int_equal(n, 12345);

    /* optional and absent: OK, out untouched (so a default can be preset) */
    s = "default";
    ms_assert_ok(ms_json_get_string(o, "missing", "context.json", 0, &s));
    assert_string_equal(s, "default");
    b = 7;
    ms_assert_ok(ms_json_get_bool(o, "missing", "context.json", 0, &b));
    assert_int_equal(b, 7);
    n = 9;
    ms_assert_ok(ms_json_get_int(o, "missing", "context.json", 0, &n));
    assert_int_equal(n, 9);

    /* required and absent */
    ms_assert_status(ms_json_get_string(o, "missing", "context.json", 1, &s), MS_ERR_SCHEMA);
    assert_detail_is("context.json: field 'missing' is required");
    ms_assert_status(ms_json_get_int(o, "missing", "cfg", 1, &n), MS_ERR_SCHEMA);
    assert_detail_is("cfg: field 'missing' is required");

    /* wrong types, required or not */
    ms_assert_status(ms_json_get_string(o, "n", "context.json", 0, &s), MS_ERR_SCHEMA);
    assert_detail_is("context.json: field 'n' must be a string");
    ms_assert_status(ms_json_get_bool(o, "name", "cfg", 1, &b), MS_ERR_SCHEMA);
    assert_detail_is("cfg: field 'name' must be a boolean");
    ms_assert_status(ms_json_get_int(o, "num_as_str", "cfg", 1, &n), MS_ERR_SCHEMA);
    assert_detail_is("cfg: field 'num_as_str' must be an integer");
    ms_assert_status(ms_json_get_int(o, "real", "cfg", 1, &n), MS_ERR_SCHEMA);

    /* not an object, NULL arguments */
    {
        json_t *arr = json_array();
        ms_assert_status(ms_json_get_string(arr, "x", "cfg", 1, &s), MS_ERR_SCHEMA);
        assert_non_null(strstr(ms_last_error(), "must be an object"));
        json_decref(arr);
    }
    ms_assert_status(ms_json_get_string(NULL, "x", "cfg", 0, &s), MS_ERR_SCHEMA);
    ms_assert_status(ms_json_get_string(o, NULL, "cfg", 1, &s), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_json_get_string(o, "name", "cfg", 1, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_json_get_bool(o, "on", NULL, 1, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_json_get_int(o, "n", "cfg", 1, NULL), MS_ERR_INVALID_ARG);
    json_decref(o);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(parse_objects_and_scalars),
    cmocka_unit_test(parse_errors_have_line_and_column),
    cmocka_unit_test(duplicate_keys_refused),
    cmocka_unit_test(parse_bad_arguments),
    cmocka_unit_test(load_file_ok_and_errors),
    cmocka_unit_test(load_file_larger_than_first_guess),
    cmocka_unit_test(dump_is_compact_in_insertion_order),
    cmocka_unit_test(getters_typed_access),
};

MS_TEST_MAIN(tests, NULL, NULL)
