/*
 * test_schema.c - the JSON Schema validator: every keyword, its error
 * messages and pointers, refused schemas (with where), the pattern dialect,
 * limits (deep nesting, huge arrays, invalid UTF-8), allocation failures,
 * concurrent use, and a seeded fuzz loop over random schemas and instances.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "ms_test.h"

/* --- helpers ------------------------------------------------------------------- */

static json_t *J(const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (v == NULL)
        fail_msg("bad test JSON %s: %s", text, err.text);
    return v;
}

static ms_schema *C(const char *text)
{
    json_t *doc = J(text);
    ms_schema *s = NULL;
    ms_status st = ms_schema_compile(doc, "test.json", &s);
    json_decref(doc);
    if (st != MS_OK)
        fail_msg("compiling %s: %s: %s", text, ms_status_name(st), ms_last_error());
    return s;
}

/* Compile must fail with `want`; the detail must contain `where` and `what`. */
static void refused(const char *text, ms_status want, const char *where, const char *what)
{
    json_t *doc = J(text);
    ms_schema *s = (ms_schema *)&doc; /* must be reset to NULL */
    ms_status st = ms_schema_compile(doc, "bad.json", &s);
    json_decref(doc);
    if (st != want)
        fail_msg("compiling %s: got %s (%s), want %s", text, ms_status_name(st), ms_last_error(),
                 ms_status_name(want));
    assert_null(s);
    if (strstr(ms_last_error(), where) == NULL || strstr(ms_last_error(), what) == NULL)
        fail_msg("compiling %s: detail \"%s\" lacks \"%s\" or \"%s\"", text, ms_last_error(), where,
                 what);
    assert_non_null(strstr(ms_last_error(), "bad.json: "));
}

static void valid(const ms_schema *s, const char *inst)
{
    json_t *v = J(inst);
    ms_schema_error *errs = NULL;
    size_t n = 99;
    ms_status st = ms_schema_validate(s, v, 0, &errs, &n);
    if (st != MS_OK)
        fail_msg("%s should be valid: %s", inst, ms_last_error());
    assert_null(errs);
    assert_int_equal(n, 0);
    /* The quiet form agrees. */
    ms_assert_ok(ms_schema_validate(s, v, 0, NULL, NULL));
    json_decref(v);
}

/* inst must be invalid; its first error must be at ipath/spath and its
 * message must contain msg. Returns the number of errors. */
static size_t invalid(const ms_schema *s, const char *inst, const char *ipath, const char *spath,
                      const char *msg)
{
    json_t *v = J(inst);
    ms_schema_error *errs = NULL;
    size_t n = 0;
    char last[1100];
    ms_status st = ms_schema_validate(s, v, 0, &errs, &n);
    if (st != MS_ERR_SCHEMA)
        fail_msg("%s should be invalid: got %s", inst, ms_status_name(st));
    assert_true(n >= 1);
    if (strcmp(errs[0].instance_path, ipath) != 0 || strcmp(errs[0].schema_path, spath) != 0 ||
        strstr(errs[0].message, msg) == NULL)
        fail_msg("%s: first error is {%s, %s, %s}, want {%s, %s, *%s*}", inst,
                 errs[0].instance_path, errs[0].schema_path, errs[0].message, ipath, spath, msg);
    snprintf(last, sizeof last, "%s: %s", ipath[0] ? ipath : "/", errs[0].message);
    assert_string_equal(ms_last_error(), last);
    ms_schema_errors_free(errs, n);
    /* The quiet form agrees and reports the same first error. */
    ms_assert_status(ms_schema_validate(s, v, 0, NULL, NULL), MS_ERR_SCHEMA);
    assert_string_equal(ms_last_error(), last);
    json_decref(v);
    return n;
}

/* --- keywords -------------------------------------------------------------------- */

static void type_keyword(void **state)
{
    ms_schema *s = C("{\"type\": \"string\"}");
    valid(s, "\"x\"");
    invalid(s, "1", "", "/type", "expected string, got integer");
    invalid(s, "1.5", "", "/type", "expected string, got number");
    invalid(s, "null", "", "/type", "got null");
    invalid(s, "[]", "", "/type", "got array");
    invalid(s, "{}", "", "/type", "got object");
    invalid(s, "true", "", "/type", "got boolean");
    ms_schema_destroy(s);

    s = C("{\"type\": \"integer\"}");
    valid(s, "1");
    valid(s, "1.0"); /* a number with a zero fractional part is an integer */
    valid(s, "-0.0");
    invalid(s, "1.5", "", "/type", "expected integer, got number");
    ms_schema_destroy(s);

    s = C("{\"type\": [\"null\", \"number\"]}");
    valid(s, "null");
    valid(s, "3");
    valid(s, "3.25");
    invalid(s, "\"3\"", "", "/type", "expected null or number, got string");
    ms_schema_destroy(s);
}

static void properties_required_additional(void **state)
{
    ms_schema *s = C("{\"type\": \"object\", \"required\": [\"name\", \"autonomy\"],"
                     " \"properties\": {\"name\": {\"type\": \"string\", \"minLength\": 1},"
                     "  \"autonomy\": {\"type\": \"object\", \"required\": [\"level\"],"
                     "   \"properties\": {\"level\": {\"enum\": [\"low\", \"high\"]}},"
                     "   \"additionalProperties\": false}},"
                     " \"additionalProperties\": false}");
    valid(s, "{\"name\": \"a\", \"autonomy\": {\"level\": \"low\"}}");
    invalid(s, "{\"autonomy\": {\"level\": \"low\"}}", "", "/required",
            "missing required property 'name'");
    invalid(s, "{\"name\": 5, \"autonomy\": {\"level\": \"low\"}}", "/name",
            "/properties/name/type", "expected string, got integer");
    invalid(s, "{\"name\": \"\", \"autonomy\": {\"level\": \"low\"}}", "/name",
            "/properties/name/minLength", "shorter than the minimum of 1");
    invalid(s, "{\"name\": \"a\", \"autonomy\": {}}", "/autonomy", "/properties/autonomy/required",
            "missing required property 'level'");
    invalid(s, "{\"name\": \"a\", \"autonomy\": {\"level\": \"mid\"}}", "/autonomy/level",
            "/properties/autonomy/properties/level/enum",
            "not one of the allowed values (\"low\", \"high\")");
    invalid(s, "{\"name\": \"a\", \"autonomy\": {\"level\": \"low\", \"x\": 1}}", "/autonomy",
            "/properties/autonomy/additionalProperties", "property 'x' is not allowed");
    /* Several errors are all reported. */
    assert_int_equal(invalid(s, "{\"name\": 1, \"extra\": 2}", "", "/required",
                             "missing required property 'autonomy'"),
                     3);
    ms_schema_destroy(s);

    /* additionalProperties as a schema */
    s = C("{\"properties\": {\"a\": true}, \"additionalProperties\": {\"type\": \"integer\"}}");
    valid(s, "{\"a\": \"x\", \"b\": 1}");
    invalid(s, "{\"a\": 1, \"b\": \"x\"}", "/b", "/additionalProperties/type", "expected integer");
    valid(s, "[1]"); /* object keywords ignore other types */
    ms_schema_destroy(s);

    s = C("{\"minProperties\": 1, \"maxProperties\": 2}");
    invalid(s, "{}", "", "/minProperties", "0 properties, fewer than the minimum of 1");
    invalid(s, "{\"a\":1,\"b\":2,\"c\":3}", "", "/maxProperties", "more than the maximum of 2");
    valid(s, "{\"a\": 1}");
    ms_schema_destroy(s);
}

static void pattern_properties(void **state)
{
    ms_schema *s = C("{\"patternProperties\": {\"^x-\": {\"type\": \"string\"},"
                     " \"^[0-9]+$\": {\"type\": \"integer\"}},"
                     " \"properties\": {\"id\": {}}, \"additionalProperties\": false}");
    valid(s, "{\"id\": null, \"x-a\": \"s\", \"12\": 3}");
    invalid(s, "{\"x-a\": 1}", "/x-a", "/patternProperties/^x-/type", "expected string");
    invalid(s, "{\"12\": \"a\"}", "/12", "/patternProperties/^[0-9]+$/type", "expected integer");
    invalid(s, "{\"y\": 1}", "", "/additionalProperties", "property 'y' is not allowed");
    ms_schema_destroy(s);
    /* A pattern property name holding '/' and '~' is escaped in the schema path. */
    s = C("{\"patternProperties\": {\"a/b~\": false}}");
    invalid(s, "{\"xa/b~\": 1}", "/xa~1b~0", "/patternProperties/a~1b~0", "false schema");
    ms_schema_destroy(s);
}

static void enum_and_const(void **state)
{
    ms_schema *s = C("{\"enum\": [1, \"two\", {\"a\": [1, 2]}, null]}");
    valid(s, "1");
    valid(s, "1.0");
    valid(s, "{\"a\": [1.0, 2]}");
    valid(s, "null");
    invalid(s, "{\"a\": [2, 1]}", "", "/enum", "(a integer, \"two\", a object, a null)");
    invalid(s, "true", "", "/enum", "not one of the allowed values");
    ms_schema_destroy(s);

    s = C("{\"const\": {\"k\": [true, 2.0, \"s\"]}}");
    valid(s, "{\"k\": [true, 2, \"s\"]}");
    invalid(s, "{\"k\": [true, 2]}", "", "/const", "not the constant");
    invalid(s, "{\"k\": [false, 2, \"s\"]}", "", "/const", "not the constant");
    ms_schema_destroy(s);

    s = C("{\"const\": null}");
    valid(s, "null");
    invalid(s, "0", "", "/const", "not the constant");
    ms_schema_destroy(s);

    /* Strings with NUL bytes compare whole. */
    s = C("{\"const\": \"a\\u0000b\"}");
    valid(s, "\"a\\u0000b\"");
    invalid(s, "\"a\\u0000c\"", "", "/const", "not the constant");
    ms_schema_destroy(s);
}

static void items_and_prefix_items(void **state)
{
    ms_schema *s = C("{\"prefixItems\": [{\"type\": \"string\"}, {\"type\": \"integer\"}],"
                     " \"items\": false, \"minItems\": 1}");
    valid(s, "[\"a\"]");
    valid(s, "[\"a\", 2]");
    invalid(s, "[\"a\", \"b\"]", "/1", "/prefixItems/1/type", "expected integer, got string");
    invalid(s, "[\"a\", 2, 3]", "/2", "/items", "false schema");
    invalid(s, "[]", "", "/minItems", "0 items, fewer than the minimum of 1");
    ms_schema_destroy(s);

    s = C("{\"items\": {\"type\": \"array\", \"items\": {\"maximum\": 3}}, \"maxItems\": 2}");
    valid(s, "[[1, 2], []]");
    invalid(s, "[[1], [2, 4]]", "/1/1", "/items/items/maximum",
            "4 is greater than the maximum of 3");
    invalid(s, "[[], [], []]", "", "/maxItems", "3 items, more than the maximum of 2");
    ms_schema_destroy(s);

    s = C("{\"uniqueItems\": true}");
    valid(s, "[1, 2, \"1\", [1], {\"a\": 1}, {\"a\": 2}]");
    invalid(s, "[1, 2, 1.0]", "", "/uniqueItems", "items 0 and 2 are equal");
    invalid(s, "[{\"a\": [1]}, {\"a\": [1.0]}]", "", "/uniqueItems", "items 0 and 1 are equal");
    ms_schema_destroy(s);
    s = C("{\"uniqueItems\": false}");
    valid(s, "[1, 1]");
    ms_schema_destroy(s);
}

static void string_lengths_in_code_points(void **state)
{
    ms_schema *s = C("{\"minLength\": 2, \"maxLength\": 3}");
    valid(s, "\"ab\"");
    valid(s, "\"\\u00e9\\u00e9\"");               /* 4 bytes, 2 code points */
    valid(s, "\"\\ud83d\\ude00\\ud83d\\ude00\""); /* 8 bytes, 2 code points */
    invalid(s, "\"\\u00e9\"", "", "/minLength",
            "string of 1 characters, shorter than the minimum of 2");
    invalid(s, "\"abcd\"", "", "/maxLength",
            "string of 4 characters, longer than the maximum of 3");
    valid(s, "5"); /* string keywords ignore other types */
    ms_schema_destroy(s);
}

static void numbers(void **state)
{
    ms_schema *s = C("{\"minimum\": 1, \"maximum\": 10.5, \"exclusiveMinimum\": 0,"
                     " \"exclusiveMaximum\": 11}");
    valid(s, "1");
    valid(s, "10.5");
    invalid(s, "0.5", "", "/minimum", "0.5 is less than the minimum of 1");
    invalid(s, "10.75", "", "/maximum", "10.75 is greater than the maximum of 10.5");
    ms_schema_destroy(s);

    s = C("{\"exclusiveMinimum\": 0, \"exclusiveMaximum\": 5}");
    invalid(s, "0", "", "/exclusiveMinimum", "0 is not greater than 0");
    invalid(s, "5.0", "", "/exclusiveMaximum", "5 is not less than 5");
    valid(s, "4.999");
    ms_schema_destroy(s);

    /* Large integers compare exactly (not through double). */
    s = C("{\"maximum\": 9007199254740992}");
    valid(s, "9007199254740992");
    invalid(s, "9007199254740993", "", "/maximum", "9007199254740993 is greater than");
    ms_schema_destroy(s);

    s = C("{\"multipleOf\": 0.0001}");
    valid(s, "0.0075");
    invalid(s, "0.00751", "", "/multipleOf", "is not a multiple of 0.0001");
    ms_schema_destroy(s);
    s = C("{\"multipleOf\": 3}");
    valid(s, "9");
    valid(s, "-9");
    valid(s, "9.0");
    invalid(s, "10", "", "/multipleOf", "10 is not a multiple of 3");
    valid(s, "\"10\"");
    ms_schema_destroy(s);
}

static void pattern_dialect(void **state)
{
    static const struct {
        const char *pattern, *match, *nomatch;
    } cases[] = {
        {"^[a-z][a-z0-9_-]*$", "user-service_2", "User"},
        {"^\\\\d{3}-\\\\d{2,}$", "123-45", "12-345"},
        {"^\\\\w+$", "a_B9", "a-b"},
        {"^\\\\s*$", " \\t\\n", " x "},
        {"^\\\\S+$", "abc", "a c"},
        {"^\\\\D$", "x", "5"},
        {"^(?:ab)+$", "abab", "aba"},
        {"^a.c$", "abc", "a\\nc"},
        {"^a\\\\.c$", "a.c", "abc"},
        {"^[\\\\]\\\\-]+$", "]-]", "a"},
        {"^[\\\\^a]$", "^", "b"},
        {"^\\\\^$", "^", "a"},
        {"^[^\\\\d]+$", "ab", "a1"},
        {"^[.]$", ".", "a"},
        {"^\\\\u0041\\\\x42$", "AB", "ab"},
        {"^\\\\u00e9+$", "\\u00e9\\u00e9", "e"},
        {"^\\u00e9{2}$", "\\u00e9\\u00e9", "\\u00e9"},
        {"a{,", "xa{,", "a"},
        {"^(cat|dog)s?$", "dogs", "cow"},
        {"[/~]", "a/b", "ab"},
        {"^\\\\$\\\\(\\\\)\\\\*\\\\+\\\\?\\\\{\\\\}\\\\|$", "$()*+?{}|", "x"},
        {"^[\\\\w.-]+@[\\\\w-]+$", "a.b-c@d", "a b@c"},
        {"", "anything", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[256], inst[128];
        ms_schema *s;
        snprintf(schema, sizeof schema, "{\"pattern\": \"%s\"}", cases[i].pattern);
        s = C(schema);
        snprintf(inst, sizeof inst, "\"%s\"", cases[i].match);
        valid(s, inst);
        if (cases[i].nomatch != NULL) {
            snprintf(inst, sizeof inst, "\"%s\"", cases[i].nomatch);
            invalid(s, inst, "", "/pattern", "does not match the pattern");
        }
        ms_schema_destroy(s);
    }
}

static void pattern_refusals(void **state)
{
    static const struct {
        const char *pattern;
        ms_status status;
        const char *what;
    } cases[] = {
        {"^(?=a)", MS_ERR_UNSUPPORTED, "lookaround"},
        {"(?!a)", MS_ERR_UNSUPPORTED, "lookaround"},
        {"(?<n>a)", MS_ERR_UNSUPPORTED, "named group"},
        {"(a)\\\\1", MS_ERR_UNSUPPORTED, "backreference"},
        {"a+?", MS_ERR_UNSUPPORTED, "lazy quantifier"},
        {"a{2,3}?", MS_ERR_UNSUPPORTED, "lazy quantifier"},
        {"\\\\bword", MS_ERR_UNSUPPORTED, "word boundary"},
        {"\\\\p{L}", MS_ERR_UNSUPPORTED, "Unicode property"},
        {"[\\u00e9]", MS_ERR_UNSUPPORTED, "non-ASCII character in a character class"},
        {"[\\\\D]", MS_ERR_UNSUPPORTED, "negated class escape"},
        {"\\\\cA", MS_ERR_UNSUPPORTED, "this escape"},
        {"[]", MS_ERR_UNSUPPORTED, "empty class"},
        {"a\\\\u{41}", MS_ERR_UNSUPPORTED, "four hex digits"},
        {"\\\\ud800", MS_ERR_UNSUPPORTED, "lone surrogate"},
        {"*a", MS_ERR_SCHEMA, "nothing to repeat"},
        {"[a", MS_ERR_SCHEMA, "unterminated character class"},
        {"[z-a]", MS_ERR_SCHEMA, "range out of order"},
        {"a)", MS_ERR_SCHEMA, "unmatched ')'"},
        {"(a", MS_ERR_SCHEMA, "unterminated group"},
        {"a{99999}", MS_ERR_SCHEMA, "does not compile"},
        {"a\\\\", MS_ERR_SCHEMA, "at the end"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char schema[256];
        snprintf(schema, sizeof schema, "{\"properties\": {\"p\": {\"pattern\": \"%s\"}}}",
                 cases[i].pattern);
        refused(schema, cases[i].status, "/properties/p/pattern", cases[i].what);
    }
    refused("{\"patternProperties\": {\"(?=x)\": true}}", MS_ERR_UNSUPPORTED,
            "/patternProperties/(?=x)", "lookaround");
}

static void combinators(void **state)
{
    ms_schema *s = C("{\"allOf\": [{\"type\": \"integer\"}, {\"minimum\": 2}]}");
    valid(s, "3");
    invalid(s, "1", "", "/allOf/1/minimum", "less than the minimum of 2");
    invalid(s, "\"a\"", "", "/allOf/0/type", "expected integer");
    ms_schema_destroy(s);

    s = C("{\"anyOf\": [{\"type\": \"string\"}, {\"type\": \"object\", \"required\": [\"a\"]}]}");
    valid(s, "\"x\"");
    valid(s, "{\"a\": 1}");
    invalid(s, "{}", "", "/anyOf",
            "matches none of the 2 alternatives of anyOf: [0] /: expected string, got object; "
            "[1] /: missing required property 'a'");
    ms_schema_destroy(s);

    s = C("{\"properties\": {\"v\": {\"oneOf\": [{\"type\": \"integer\"}, {\"minimum\": 0},"
          " {\"type\": \"string\"}]}}}");
    valid(s, "{\"v\": -1}");
    valid(s, "{\"v\": 0.5}");
    invalid(s, "{\"v\": 1}", "/v", "/properties/v/oneOf",
            "matches more than one alternative of oneOf (at least [0] and [1])");
    invalid(s, "{\"v\": -0.5}", "/v", "/properties/v/oneOf",
            "matches none of the 3 alternatives of oneOf: [0] /v: expected integer, got number; "
            "[1] /v: -0.5 is less than the minimum of 0; [2] /v: expected string");
    ms_schema_destroy(s);

    s = C("{\"not\": {\"type\": \"null\"}}");
    valid(s, "0");
    invalid(s, "null", "", "/not", "value matches the schema under 'not'");
    ms_schema_destroy(s);

    /* A long anyOf gets a bounded summary, not a flood. */
    {
        char big[8192];
        size_t len = (size_t)snprintf(big, sizeof big, "{\"anyOf\": [");
        json_t *v = J("\"s\"");
        ms_schema_error *errs;
        size_t n;
        for (int i = 0; i < 100; i++)
            len += (size_t)snprintf(big + len, sizeof big - len,
                                    "%s{\"type\": \"integer\", \"minimum\": %d}", i ? "," : "", i);
        snprintf(big + len, sizeof big - len, "]}");
        s = C(big);
        ms_assert_status(ms_schema_validate(s, v, 0, &errs, &n), MS_ERR_SCHEMA);
        assert_int_equal(n, 1);
        assert_true(strlen(errs[0].message) < 700);
        assert_non_null(strstr(errs[0].message, "none of the 100 alternatives"));
        assert_non_null(strstr(errs[0].message, " ..."));
        ms_schema_errors_free(errs, n);
        ms_schema_destroy(s);
        json_decref(v);
    }
}

static void boolean_schemas(void **state)
{
    ms_schema *s = C("true");
    valid(s, "{\"anything\": [1, null]}");
    ms_schema_destroy(s);
    s = C("false");
    invalid(s, "null", "", "", "no value is allowed here (false schema)");
    ms_schema_destroy(s);
    s = C("{\"properties\": {\"a\": false, \"b\": true}}");
    valid(s, "{\"b\": 1}");
    invalid(s, "{\"a\": 1}", "/a", "/properties/a", "false schema");
    ms_schema_destroy(s);
}

static void refs_local(void **state)
{
    /* $defs and definitions, ref beside other keywords (both apply). */
    ms_schema *s = C("{\"$defs\": {\"name\": {\"type\": \"string\", \"pattern\": \"^[a-z]+$\"}},"
                     " \"definitions\": {\"port\": {\"type\": \"integer\", \"maximum\": 65535}},"
                     " \"properties\": {\"n\": {\"$ref\": \"#/$defs/name\", \"maxLength\": 3},"
                     "  \"p\": {\"$ref\": \"#/definitions/port\"}}}");
    valid(s, "{\"n\": \"abc\", \"p\": 80}");
    invalid(s, "{\"n\": \"abcd\"}", "/n", "/properties/n/maxLength", "longer than the maximum");
    invalid(s, "{\"n\": \"AB\"}", "/n", "/$defs/name/pattern", "does not match");
    invalid(s, "{\"p\": 70000}", "/p", "/definitions/port/maximum", "greater than the maximum");
    ms_schema_destroy(s);

    /* "#": the root, recursively; a tree of any depth. */
    s = C("{\"type\": \"object\", \"properties\": {\"v\": {\"type\": \"integer\"},"
          " \"kids\": {\"type\": \"array\", \"items\": {\"$ref\": \"#\"}}},"
          " \"additionalProperties\": false}");
    valid(s, "{\"v\": 1, \"kids\": [{\"v\": 2, \"kids\": [{\"kids\": []}]}]}");
    invalid(s, "{\"kids\": [{\"kids\": [{\"v\": \"x\"}]}]}", "/kids/0/kids/0/v",
            "/properties/v/type", "expected integer");
    ms_schema_destroy(s);

    /* Mutual recursion through $defs. */
    s = C("{\"$ref\": \"#/$defs/a\", \"$defs\": {"
          " \"a\": {\"type\": \"array\", \"items\": {\"$ref\": \"#/$defs/b\"}},"
          " \"b\": {\"anyOf\": [{\"type\": \"integer\"}, {\"$ref\": \"#/$defs/a\"}]}}}");
    valid(s, "[1, [2, [3, []]]]");
    invalid(s, "[1, [\"x\"]]", "/1", "/$defs/b/anyOf",
            "[0] /1: expected integer, got array; [1] /1/0: matches none of the 2 alternatives");
    ms_schema_destroy(s);

    /* A target no keyword reached: compiled on demand. */
    s = C("{\"properties\": {\"a\": {\"items\": {\"minimum\": 5}}},"
          " \"additionalProperties\": {\"$ref\": \"#/properties/a/items\"}}");
    invalid(s, "{\"b\": 1}", "/b", "/properties/a/items/minimum", "less than the minimum of 5");
    ms_schema_destroy(s);
}

static void refs_escaped_pointers(void **state)
{
    ms_schema *s = C("{\"$defs\": {\"tilde~field\": {\"type\": \"integer\"},"
                     " \"slash/field\": {\"type\": \"string\"},"
                     " \"percent%field\": {\"type\": \"boolean\"},"
                     " \"quote\\\"field\": {\"type\": \"null\"}},"
                     " \"properties\": {"
                     "  \"t\": {\"$ref\": \"#/$defs/tilde~0field\"},"
                     "  \"s\": {\"$ref\": \"#/$defs/slash~1field\"},"
                     "  \"p\": {\"$ref\": \"#/$defs/percent%25field\"},"
                     "  \"q\": {\"$ref\": \"#/$defs/quote%22field\"}}}");
    valid(s, "{\"t\": 1, \"s\": \"x\", \"p\": true, \"q\": null}");
    invalid(s, "{\"t\": \"x\"}", "/t", "/$defs/tilde~0field/type", "expected integer");
    invalid(s, "{\"s\": 1}", "/s", "/$defs/slash~1field/type", "expected string");
    invalid(s, "{\"p\": 1}", "/p", "/$defs/percent%field/type", "expected boolean");
    invalid(s, "{\"q\": 1}", "/q", "/$defs/quote\"field/type", "expected null");
    ms_schema_destroy(s);

    /* Array indexes in a pointer. */
    s = C("{\"prefixItems\": [{\"type\": \"integer\"}, {\"$ref\": \"#/prefixItems/0\"}]}");
    invalid(s, "[1, \"x\"]", "/1", "/prefixItems/0/type", "expected integer");
    ms_schema_destroy(s);

    /* The instance path escapes too. */
    s = C("{\"additionalProperties\": {\"additionalProperties\": {\"type\": \"null\"}}}");
    invalid(s, "{\"a/b\": {\"c~d\": 1}}", "/a~1b/c~0d",
            "/additionalProperties/additionalProperties/type", "expected null");
    ms_schema_destroy(s);
}

static void refs_refused(void **state)
{
    refused("{\"$ref\": \"#/$defs/missing\", \"$defs\": {}}", MS_ERR_SCHEMA, "/",
            "no such location");
    refused("{\"properties\": {\"a\": {\"$ref\": \"other.json#/x\"}}}", MS_ERR_UNSUPPORTED,
            "/properties/a", "only local references");
    refused("{\"$ref\": \"http://example.com/s\"}", MS_ERR_UNSUPPORTED, "/", "only local");
    refused("{\"$ref\": \"#anchor\"}", MS_ERR_UNSUPPORTED, "/", "anchors");
    refused("{\"$ref\": \"#/$defs/a~2\", \"$defs\": {\"a~2\": true}}", MS_ERR_SCHEMA, "/",
            "bad escape");
    refused("{\"$ref\": \"#/prefixItems/01\", \"prefixItems\": [true, true]}", MS_ERR_SCHEMA, "/",
            "no such location");
    refused("{\"$ref\": 5}", MS_ERR_SCHEMA, "/", "'$ref' must be a string");
    /* In-place cycles would recurse forever. */
    refused("{\"$ref\": \"#\"}", MS_ERR_SCHEMA, "/", "cycle");
    refused("{\"$defs\": {\"a\": {\"$ref\": \"#/$defs/b\"}, \"b\": {\"allOf\": [{\"$ref\": "
            "\"#/$defs/a\"}]}}}",
            MS_ERR_SCHEMA, "/$defs/", "cycle");
    refused("{\"$defs\": {\"a\": {\"not\": {\"$ref\": \"#/$defs/a\"}}}}", MS_ERR_SCHEMA, "/$defs/a",
            "cycle");
}

static void bad_schemas(void **state)
{
    refused("5", MS_ERR_SCHEMA, "bad.json: /: ", "must be an object or a boolean");
    refused("{\"properties\": {\"a\": []}}", MS_ERR_SCHEMA, "/properties/a",
            "must be an object or a boolean, not an array");
    refused("{\"type\": \"str\"}", MS_ERR_SCHEMA, "/", "'str' is not one of");
    refused("{\"type\": []}", MS_ERR_SCHEMA, "/", "non-empty array");
    refused("{\"type\": [\"string\", \"string\"]}", MS_ERR_SCHEMA, "/", "listed twice");
    refused("{\"required\": [\"a\", 1]}", MS_ERR_SCHEMA, "/", "'required'[1] is a integer");
    refused("{\"minLength\": -1}", MS_ERR_SCHEMA, "/", "'minLength' must be a non-negative");
    refused("{\"maxItems\": 1.5}", MS_ERR_SCHEMA, "/", "'maxItems' must be a non-negative");
    refused("{\"minimum\": \"1\"}", MS_ERR_SCHEMA, "/", "'minimum' must be a number");
    refused("{\"multipleOf\": 0}", MS_ERR_SCHEMA, "/", "above 0");
    refused("{\"enum\": 1}", MS_ERR_SCHEMA, "/", "'enum' must be an array");
    refused("{\"uniqueItems\": 1}", MS_ERR_SCHEMA, "/", "must be a boolean");
    refused("{\"allOf\": []}", MS_ERR_SCHEMA, "/", "non-empty array of schemas");
    refused("{\"anyOf\": {}}", MS_ERR_SCHEMA, "/", "non-empty array of schemas");
    refused("{\"oneOf\": [true, 3]}", MS_ERR_SCHEMA, "/oneOf/1", "must be an object");
    refused("{\"items\": [true]}", MS_ERR_SCHEMA, "/", "'prefixItems'");
    refused("{\"pattern\": 5}", MS_ERR_SCHEMA, "/pattern", "must be a string");
    refused("{\"$defs\": {\"x\": {\"type\": 1}}}", MS_ERR_SCHEMA, "/$defs/x", "'type'");
    /* Unsupported keywords are named with their pointer. */
    refused("{\"properties\": {\"a\": {\"if\": true}}}", MS_ERR_UNSUPPORTED, "/properties/a/if",
            "keyword 'if' is not supported");
    refused("{\"contains\": true}", MS_ERR_UNSUPPORTED, "/contains", "'contains'");
    refused("{\"additionalItems\": false}", MS_ERR_UNSUPPORTED, "/additionalItems",
            "not supported");
    refused("{\"typo\": 1}", MS_ERR_UNSUPPORTED, "/typo", "keyword 'typo'");
    refused("{\"$defs\": {\"a~b/c\": {\"x\": 1}}}", MS_ERR_UNSUPPORTED, "/$defs/a~0b~1c/x",
            "keyword 'x'");
    refused("{\"properties\": {\"a\": {\"$id\": \"x\"}}}", MS_ERR_UNSUPPORTED, "/properties/a/$id",
            "below the root");

    /* Annotations are ignored. */
    {
        ms_schema *s = C("{\"$schema\": \"https://json-schema.org/draft/2020-12/schema\","
                         " \"$id\": \"https://example.com/s\", \"title\": \"t\","
                         " \"description\": \"d\", \"$comment\": \"c\", \"examples\": [1],"
                         " \"default\": 1, \"format\": \"email\", \"deprecated\": true,"
                         " \"readOnly\": false, \"writeOnly\": false, \"type\": \"integer\"}");
        valid(s, "1");
        valid(s, "7"); /* format is an annotation: no check */
        ms_schema_destroy(s);
    }
}

static void api_contract(void **state)
{
    ms_schema *s = NULL;
    json_t *v = J("{\"a\": 1, \"b\": 2, \"c\": 3}");
    ms_schema_error *errs = (ms_schema_error *)1;
    size_t n = 7;

    ms_assert_status(ms_schema_compile(NULL, "x", &s), MS_ERR_INVALID_ARG);
    assert_null(s);
    ms_assert_status(ms_schema_compile(v, "x", NULL), MS_ERR_INVALID_ARG);
    s = C("{\"additionalProperties\": false}");
    assert_string_equal(ms_schema_name(s), "test.json");
    ms_assert_status(ms_schema_validate(NULL, v, 0, &errs, &n), MS_ERR_INVALID_ARG);
    assert_null(errs);
    assert_int_equal(n, 0);
    ms_assert_status(ms_schema_validate(s, NULL, 0, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_schema_validate(s, v, 0, &errs, NULL), MS_ERR_INVALID_ARG);
    /* max_errors caps the array. */
    ms_assert_status(ms_schema_validate(s, v, 2, &errs, &n), MS_ERR_SCHEMA);
    assert_int_equal(n, 2);
    ms_schema_errors_free(errs, n);
    ms_assert_status(ms_schema_validate(s, v, 0, &errs, &n), MS_ERR_SCHEMA);
    assert_int_equal(n, 3);
    assert_string_equal(ms_last_error(), "/: property 'a' is not allowed");
    ms_schema_errors_free(errs, n);
    ms_schema_errors_free(NULL, 0);
    ms_schema_destroy(s);
    ms_schema_destroy(NULL);

    /* The document may go away after compiling: the schema copied it. */
    {
        json_t *doc = J("{\"enum\": [[1, 2]], \"const\": [1, 2], \"required\": []}");
        ms_assert_ok(ms_schema_compile(doc, NULL, &s));
        json_decref(doc);
        assert_string_equal(ms_schema_name(s), "schema");
        valid(s, "[1, 2]");
        ms_schema_destroy(s);
    }
    json_decref(v);
}

static void load_files(void **state)
{
    char dir[] = "/tmp/ms_schema_XXXXXX", path[256];
    FILE *f;
    ms_schema *s = NULL;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bad.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\n  \"type\": \"string\",\n  oops\n}\n", f);
    fclose(f);
    ms_assert_status(ms_schema_load(path, &s), MS_ERR_PARSE);
    assert_null(s);
    assert_non_null(strstr(ms_last_error(), "bad.json:3:"));

    snprintf(path, sizeof path, "%s/unsupported.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"dependentRequired\": {}}", f);
    fclose(f);
    ms_assert_status(ms_schema_load(path, &s), MS_ERR_UNSUPPORTED);
    assert_non_null(strstr(ms_last_error(), "unsupported.json: /dependentRequired: keyword"));
    unlink(path);

    snprintf(path, sizeof path, "%s/good.json", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("{\"type\": \"object\", \"required\": [\"name\"]}", f);
    fclose(f);
    ms_assert_ok(ms_schema_load(path, &s));
    assert_string_equal(ms_schema_name(s), path);
    invalid(s, "{}", "", "/required", "missing required property 'name'");
    ms_schema_destroy(s);
    unlink(path);
    snprintf(path, sizeof path, "%s/bad.json", dir);
    unlink(path);

    snprintf(path, sizeof path, "%s/missing.json", dir);
    ms_assert_status(ms_schema_load(path, &s), MS_ERR_IO);
    assert_non_null(strstr(ms_last_error(), "missing.json"));
    rmdir(dir);
}

/* --- limits and robustness --------------------------------------------------------- */

/* "[[[...1...]]]" nested `depth` deep, built without the parser's limit. */
static json_t *nested_array(int depth)
{
    json_t *v = json_integer(1);
    for (int i = 0; i < depth; i++) {
        json_t *a = json_array();
        assert_non_null(a);
        assert_int_equal(json_array_append_new(a, v), 0);
        v = a;
    }
    return v;
}

static void deep_nesting(void **state)
{
    ms_schema *s;
    json_t *doc, *inst;
    ms_schema_error *errs;
    size_t n;

    /* A schema nested past the limit is refused, naming where. */
    doc = json_true();
    for (int i = 0; i < MS_SCHEMA_MAX_DEPTH + 10; i++)
        doc = json_pack("{s:o}", "not", doc);
    assert_non_null(doc);
    ms_assert_status(ms_schema_compile(doc, "deep", &s), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "nests deeper than 256 levels"));
    assert_non_null(strstr(ms_last_error(), "deep: /not/not/not"));
    json_decref(doc);

    /* One recursive schema, an instance 100000 levels deep: invalid, no crash. */
    s = C("{\"type\": [\"array\", \"integer\"], \"items\": {\"$ref\": \"#\"}}");
    inst = nested_array(100000);
    ms_assert_status(ms_schema_validate(s, inst, 0, &errs, &n), MS_ERR_SCHEMA);
    assert_int_equal(n, 1);
    assert_non_null(strstr(errs[0].message, "nests deeper than 256 levels"));
    assert_int_equal(strlen(errs[0].instance_path), 2 * MS_SCHEMA_MAX_DEPTH);
    ms_schema_errors_free(errs, n);
    json_decref(inst);
    /* At the limit it is fine. */
    inst = nested_array(MS_SCHEMA_MAX_DEPTH);
    ms_assert_ok(ms_schema_validate(s, inst, 0, NULL, NULL));
    json_decref(inst);
    ms_schema_destroy(s);

    /* A deep instance the schema never looks into is valid. */
    s = C("{\"type\": \"array\"}");
    inst = nested_array(100000);
    ms_assert_ok(ms_schema_validate(s, inst, 0, NULL, NULL));
    ms_schema_destroy(s);
    /* enum/const/uniqueItems compare deep values with the same limit (a
     * comparison stops at the first difference, so only two deep values
     * reach it). */
    s = C("{\"enum\": [[[1]]]}");
    ms_assert_status(ms_schema_validate(s, inst, 0, NULL, NULL), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "not one of the allowed values"));
    ms_schema_destroy(s);
    {
        json_t *pair = json_pack("[OO]", inst, inst);
        s = C("{\"uniqueItems\": true}");
        ms_assert_status(ms_schema_validate(s, pair, 0, NULL, NULL), MS_ERR_SCHEMA);
        assert_non_null(strstr(ms_last_error(), "nest deeper"));
        ms_schema_destroy(s);
        json_decref(pair);
    }
    /* A deep const in a schema is refused. */
    doc = json_pack("{s:O}", "const", inst);
    ms_assert_status(ms_schema_compile(doc, "deep-const", &s), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "'const' value nests deeper"));
    json_decref(doc);
    json_decref(inst);

    /* A long, cycle-free chain of refs is refused past its limit. */
    {
        json_t *defs = json_object();
        char name[32], ref[48];
        for (int i = 0; i < 1100; i++) {
            snprintf(name, sizeof name, "d%d", i);
            snprintf(ref, sizeof ref, "#/$defs/d%d", i + 1);
            json_object_set_new(defs, name, json_pack("{ss}", "$ref", ref));
        }
        json_object_set_new(defs, "d1100", json_true());
        doc = json_pack("{s:o,s:s}", "$defs", defs, "$ref", "#/$defs/d0");
        ms_assert_status(ms_schema_compile(doc, "chain", &s), MS_ERR_SCHEMA);
        assert_non_null(strstr(ms_last_error(), "in-place applicators"));
        json_decref(doc);
    }
}

static void huge_arrays(void **state)
{
    ms_schema *s = C("{\"type\": \"array\", \"items\": {\"type\": \"integer\", \"minimum\": 0}}");
    json_t *a = json_array();
    ms_schema_error *errs;
    size_t n;

    for (int i = 0; i < 200000; i++)
        assert_int_equal(json_array_append_new(a, json_integer(i % 2 ? i : -i)), 0);
    ms_assert_status(ms_schema_validate(s, a, 0, &errs, &n), MS_ERR_SCHEMA);
    assert_int_equal(n, MS_SCHEMA_DEFAULT_MAX_ERRORS); /* capped */
    assert_string_equal(errs[0].instance_path, "/2");
    assert_string_equal(errs[1].instance_path, "/4");
    ms_schema_errors_free(errs, n);
    ms_assert_status(ms_schema_validate(s, a, 1000000, &errs, &n), MS_ERR_SCHEMA);
    assert_int_equal(n, 99999);
    ms_schema_errors_free(errs, n);
    for (size_t i = 0; i < json_array_size(a); i++)
        json_array_set_new(a, i, json_integer((json_int_t)i));
    ms_assert_ok(ms_schema_validate(s, a, 0, &errs, &n));
    json_decref(a);
    ms_schema_destroy(s);
}

static void invalid_utf8(void **state)
{
    ms_schema *s = C("{\"properties\": {\"a\": {\"maxLength\": 10}, \"b\": {\"pattern\": \"^x\"},"
                     " \"c\": {\"type\": \"string\"}}}");
    static const char *const bad[] = {
        "\xff", "a\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *v = json_object();
        ms_schema_error *errs;
        size_t n;
        json_object_set_new(v, "a", json_stringn_nocheck(bad[i], strlen(bad[i])));
        json_object_set_new(v, "b", json_stringn_nocheck(bad[i], strlen(bad[i])));
        json_object_set_new(v, "c", json_stringn_nocheck(bad[i], strlen(bad[i])));
        ms_assert_status(ms_schema_validate(s, v, 0, &errs, &n), MS_ERR_SCHEMA);
        assert_int_equal(n, 2); /* "c" only checks the type */
        assert_string_equal(errs[0].instance_path, "/a");
        assert_string_equal(errs[0].schema_path, "/properties/a/maxLength");
        assert_non_null(strstr(errs[0].message, "not valid UTF-8 (at byte"));
        assert_string_equal(errs[1].schema_path, "/properties/b/pattern");
        ms_schema_errors_free(errs, n);
        json_decref(v);
    }
    ms_schema_destroy(s);
}

/* A small deterministic PRNG (the same cases on every run). */
static unsigned long rnd(unsigned long *st)
{
    *st = *st * 6364136223846793005UL + 1442695040888963407UL;
    return *st >> 33;
}

static json_t *random_value(unsigned long *st, int depth);

static json_t *random_schema(unsigned long *st, int depth)
{
    static const char *const kws[] = {"type",
                                      "properties",
                                      "required",
                                      "items",
                                      "minimum",
                                      "maxLength",
                                      "anyOf",
                                      "oneOf",
                                      "not",
                                      "enum",
                                      "const",
                                      "pattern",
                                      "$ref",
                                      "uniqueItems",
                                      "prefixItems",
                                      "multipleOf",
                                      "additionalProperties",
                                      "$defs"};
    static const char *const types[] = {"null",   "boolean", "object", "array",
                                        "number", "string",  "integer"};
    static const char *const pats[] = {"^a", "[0-9]+", "(?=x)", "a|b", "\\d{2}", "[", "x*"};
    static const char *const refs[] = {"#", "#/$defs/a", "#/properties/a", "#/nope", "x"};
    json_t *o;
    int n;

    if (depth > 4 || rnd(st) % 6 == 0)
        return rnd(st) % 2 ? json_true() : json_false();
    o = json_object();
    n = (int)(rnd(st) % 4);
    for (int i = 0; i < n; i++) {
        const char *kw = kws[rnd(st) % (sizeof kws / sizeof kws[0])];
        json_t *v;
        if (strcmp(kw, "type") == 0)
            v = json_string(types[rnd(st) % 7]);
        else if (strcmp(kw, "properties") == 0 || strcmp(kw, "$defs") == 0)
            v = json_pack("{s:o,s:o}", "a", random_schema(st, depth + 1), "b",
                          random_schema(st, depth + 1));
        else if (strcmp(kw, "required") == 0)
            v = json_pack("[ss]", "a", "c");
        else if (strcmp(kw, "anyOf") == 0 || strcmp(kw, "oneOf") == 0 ||
                 strcmp(kw, "prefixItems") == 0)
            v = json_pack("[oo]", random_schema(st, depth + 1), random_schema(st, depth + 1));
        else if (strcmp(kw, "items") == 0 || strcmp(kw, "not") == 0 ||
                 strcmp(kw, "additionalProperties") == 0)
            v = random_schema(st, depth + 1);
        else if (strcmp(kw, "pattern") == 0)
            v = json_string(pats[rnd(st) % 7]);
        else if (strcmp(kw, "$ref") == 0)
            v = json_string(refs[rnd(st) % 5]);
        else if (strcmp(kw, "enum") == 0)
            v = json_pack("[oo]", random_value(st, 0), random_value(st, 0));
        else if (strcmp(kw, "const") == 0)
            v = random_value(st, 0);
        else if (strcmp(kw, "uniqueItems") == 0)
            v = json_true();
        else if (strcmp(kw, "multipleOf") == 0)
            v = json_real((double)(rnd(st) % 5) / 2.0);
        else
            v = json_integer((json_int_t)(rnd(st) % 5) - 1);
        json_object_set_new(o, kw, v);
    }
    return o;
}

static json_t *random_value(unsigned long *st, int depth)
{
    static const char *const strs[] = {"a", "", "12", "x\xc3\xa9", "aa"};
    switch (depth > 3 ? rnd(st) % 5 : rnd(st) % 7) {
    case 0:
        return json_null();
    case 1:
        return json_boolean(rnd(st) % 2);
    case 2:
        return json_integer((json_int_t)(rnd(st) % 7) - 3);
    case 3:
        return json_real((double)(rnd(st) % 9) / 4.0);
    case 4:
        return json_string(strs[rnd(st) % 5]);
    case 5: {
        json_t *a = json_array();
        for (unsigned long i = 0, n = rnd(st) % 4; i < n; i++)
            json_array_append_new(a, random_value(st, depth + 1));
        return a;
    }
    default: {
        static const char *const keys[] = {"a", "b", "c", "d/e"};
        json_t *o = json_object();
        for (unsigned long i = 0, n = rnd(st) % 4; i < n; i++)
            json_object_set_new(o, keys[rnd(st) % 4], random_value(st, depth + 1));
        return o;
    }
    }
}

static void fuzz_random_schemas(void **state)
{
    unsigned long st = 20260514UL;
    int compiled = 0, refusedn = 0;
    for (int i = 0; i < 3000; i++) {
        json_t *doc = random_schema(&st, 0);
        ms_schema *s = NULL;
        ms_status rc = ms_schema_compile(doc, "fuzz", &s);
        if (rc == MS_OK) {
            compiled++;
            for (int k = 0; k < 10; k++) {
                json_t *inst = random_value(&st, 0);
                ms_schema_error *errs = NULL;
                size_t n = 0;
                ms_status v = ms_schema_validate(s, inst, 0, &errs, &n);
                assert_true(v == MS_OK || v == MS_ERR_SCHEMA);
                assert_true((v == MS_OK) == (n == 0));
                for (size_t e = 0; e < n; e++) {
                    assert_true(errs[e].instance_path[0] == '\0' ||
                                errs[e].instance_path[0] == '/');
                    assert_true(errs[e].message[0] != '\0');
                }
                /* The quiet form gives the same verdict. */
                assert_int_equal(ms_schema_validate(s, inst, 0, NULL, NULL), v);
                ms_schema_errors_free(errs, n);
                json_decref(inst);
            }
            ms_schema_destroy(s);
        } else {
            refusedn++;
            assert_null(s);
            assert_true(rc == MS_ERR_SCHEMA || rc == MS_ERR_UNSUPPORTED);
            assert_true(strncmp(ms_last_error(), "fuzz: ", 6) == 0);
        }
        json_decref(doc);
    }
    print_message("schema fuzz: %d schemas compiled, %d refused\n", compiled, refusedn);
    assert_true(compiled > 100);
    assert_true(refusedn > 100);
}

/* --- concurrency and allocation failures --------------------------------------------- */

typedef struct shared {
    const ms_schema *s;
    json_t *good, *bad;
    int failures;
} shared;

static void *worker(void *arg)
{
    shared *sh = arg;
    for (int i = 0; i < 2000; i++) {
        ms_schema_error *errs;
        size_t n;
        if (ms_schema_validate(sh->s, sh->good, 0, NULL, NULL) != MS_OK)
            sh->failures++;
        if (ms_schema_validate(sh->s, sh->bad, 0, &errs, &n) != MS_ERR_SCHEMA || n != 2)
            sh->failures++;
        else
            ms_schema_errors_free(errs, n);
    }
    return NULL;
}

static void concurrent_validation(void **state)
{
    ms_schema *s = C("{\"properties\": {\"id\": {\"pattern\": \"^[a-z]+-[0-9]+$\"},"
                     " \"n\": {\"anyOf\": [{\"type\": \"integer\"}, {\"type\": \"null\"}]}},"
                     " \"required\": [\"id\"]}");
    shared sh[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        sh[i].s = s;
        sh[i].good = J("{\"id\": \"ab-12\", \"n\": 1}");
        sh[i].bad = J("{\"id\": \"AB\", \"n\": \"x\"}");
        sh[i].failures = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &sh[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(sh[i].failures, 0);
        json_decref(sh[i].good);
        json_decref(sh[i].bad);
    }
    ms_schema_destroy(s);
}

static void *json_alloc(size_t n)
{
    return ms__malloc(n);
}

static void json_free(void *p)
{
    ms__free(p);
}

static const char *const alloc_schema =
    "{\"$defs\": {\"name\": {\"type\": \"string\", \"pattern\": \"^[a-z]+$\"}},"
    " \"type\": \"object\", \"required\": [\"name\", \"tags\"],"
    " \"properties\": {\"name\": {\"$ref\": \"#/$defs/name\"},"
    "  \"tags\": {\"type\": \"array\", \"items\": {\"enum\": [\"a\", \"b\"]}, \"uniqueItems\": "
    "true},"
    "  \"mode\": {\"oneOf\": [{\"const\": \"x\"}, {\"const\": \"y\"}]}},"
    " \"patternProperties\": {\"^x-\": {\"not\": {\"type\": \"null\"}}},"
    " \"additionalProperties\": false}";

static void allocation_failures(void **state)
{
    json_t *doc = J(alloc_schema);
    json_t *bad = J("{\"name\": \"A\", \"tags\": [\"c\", \"a\", \"a\"], \"mode\": \"z\","
                    " \"x-1\": null, \"other\": 1}");
    int compile_steps = -1, validate_steps = -1;

    json_set_alloc_funcs(json_alloc, json_free);
    for (int n = 0; n < 2000; n++) {
        ms_schema *s = (ms_schema *)&doc;
        ms_status st;
        ms_clear_error();
        ms__alloc_fail_after(n);
        st = ms_schema_compile(doc, "alloc.json", &s);
        ms__alloc_fail_after(-1);
        if (st == MS_OK) {
            compile_steps = n;
            ms_schema_destroy(s);
            break;
        }
        if (st != MS_ERR_NO_MEMORY)
            fail_msg("compile with %d allocations: %s (%s)", n, ms_status_name(st),
                     ms_last_error());
        assert_null(s);
        assert_true(ms_last_error()[0] != '\0');
    }
    assert_true(compile_steps > 10);
    {
        ms_schema *s;
        ms_assert_ok(ms_schema_compile(doc, "alloc.json", &s));
        for (int n = 0; n < 2000; n++) {
            ms_schema_error *errs = (ms_schema_error *)&doc;
            size_t count = 99;
            ms_status st;
            ms__alloc_fail_after(n);
            st = ms_schema_validate(s, bad, 0, &errs, &count);
            ms__alloc_fail_after(-1);
            if (st == MS_ERR_SCHEMA) {
                validate_steps = n;
                assert_true(count >= 6);
                ms_schema_errors_free(errs, count);
                break;
            }
            if (st != MS_ERR_NO_MEMORY)
                fail_msg("validate with %d allocations: %s", n, ms_status_name(st));
            assert_null(errs);
            assert_int_equal(count, 0);
        }
        ms_schema_destroy(s);
    }
    assert_true(validate_steps > 10);
    json_set_alloc_funcs(malloc, free);
    print_message("schema alloc failures: compile walked %d failure points, validate %d\n",
                  compile_steps, validate_steps);
    json_decref(doc);
    json_decref(bad);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(type_keyword),
        cmocka_unit_test(properties_required_additional),
        cmocka_unit_test(pattern_properties),
        cmocka_unit_test(enum_and_const),
        cmocka_unit_test(items_and_prefix_items),
        cmocka_unit_test(string_lengths_in_code_points),
        cmocka_unit_test(numbers),
        cmocka_unit_test(pattern_dialect),
        cmocka_unit_test(pattern_refusals),
        cmocka_unit_test(combinators),
        cmocka_unit_test(boolean_schemas),
        cmocka_unit_test(refs_local),
        cmocka_unit_test(refs_escaped_pointers),
        cmocka_unit_test(refs_refused),
        cmocka_unit_test(bad_schemas),
        cmocka_unit_test(api_contract),
        cmocka_unit_test(load_files),
        cmocka_unit_test(deep_nesting),
        cmocka_unit_test(huge_arrays),
        cmocka_unit_test(invalid_utf8),
        cmocka_unit_test(fuzz_random_schemas),
        cmocka_unit_test(concurrent_validation),
        cmocka_unit_test(allocation_failures),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
