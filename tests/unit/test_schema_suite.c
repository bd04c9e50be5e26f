/*
 * test_schema_suite.c - the official JSON-Schema-Test-Suite against
 * ms_schema, file by file.
 *
 * The suite directory comes from the environment (MS_SCHEMA_SUITE_DIR) or
 * the build (the compile definition of the same name: Debian's
 * json-schema-test-suite package, installed by scripts/bootstrap). A missing
 * directory fails every case loudly: the suite is part of the gate.
 *
 * Debian ships draft3..draft7 only (no npm package ships the draft2020-12
 * files either, see docs/schema.md), so this runs the draft7 files of every
 * keyword whose draft7 meaning is the 2020-12 one. Cases that test what
 * differs between the drafts, or what mainstack refuses on purpose, are
 * skipped by the rules below, each with its reason, and counted. Any other
 * case that fails, or whose schema does not compile, fails the test.
 * Each file prints "schema-suite: <draft>/<file>: N/M passed (K skipped: ...)".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ms_test.h"

#ifndef MS_SCHEMA_SUITE_DIR
#define MS_SCHEMA_SUITE_DIR "/usr/share/json-schema-test-suite/tests"
#endif

/* --- skip rules ------------------------------------------------------------- */

/* Cases skipped by name: each is a case of a claimed keyword that mainstack
 * handles differently on purpose. */
static const struct {
    const char *file;
    const char *group; /* the case's "description" */
    const char *reason;
} skip_list[] = {
    /* Its ref targets sit under unknown keywords at the root ("tilda~field").
     * mainstack refuses unknown keywords (a typo must not pass silently), so
     * the schema is refused at compile time. The same pointers under $defs
     * are tested in test_schema.c (refs_escaped_pointers). */
    {"ref.json", "escaped pointer ref", "ref targets under unknown keywords (refused)"},
};

static const char *reason_items_array =
    "draft7 array-form items/additionalItems (2020-12: prefixItems)";
static const char *reason_id = "$id base URI changes (local refs only)";
static const char *reason_remote = "remote or relative $ref (local refs only)";
static const char *reason_siblings = "draft7 ignores $ref siblings, 2020-12 evaluates them";

static int is_ignorable_sibling(const char *key)
{
    static const char *const ok[] = {"definitions", "$defs",   "title",   "description",
                                     "$comment",    "$schema", "default", "examples"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(key, ok[i]) == 0)
            return 1;
    return 0;
}

/* The generic rule a schema falls under, or NULL. */
static const char *skip_rule(const json_t *v)
{
    const char *key, *r;
    json_t *m;
    size_t i;

    if (json_is_array(v)) {
        json_array_foreach(v, i, m)
        {
            if ((r = skip_rule(m)) != NULL)
                return r;
        }
        return NULL;
    }
    if (!json_is_object(v))
        return NULL;
    if (json_is_array(json_object_get(v, "items")) || json_object_get(v, "additionalItems"))
        return reason_items_array;
    if (json_is_string(json_object_get(v, "$id")))
        return reason_id;
    m = json_object_get(v, "$ref");
    if (json_is_string(m)) {
        const char *ref = json_string_value(m);
        if (ref[0] != '#' || (ref[1] != '\0' && ref[1] != '/'))
            return reason_remote;
        json_object_foreach((json_t *)v, key, m)
        {
            if (strcmp(key, "$ref") != 0 && !is_ignorable_sibling(key))
                return reason_siblings;
        }
    }
    json_object_foreach((json_t *)v, key, m)
    {
        if ((r = skip_rule(m)) != NULL)
            return r;
    }
    return NULL;
}

static const char *skip_listed(const char *file, const char *group)
{
    for (size_t i = 0; i < sizeof skip_list / sizeof skip_list[0]; i++)
        if (strcmp(skip_list[i].file, file) == 0 && strcmp(skip_list[i].group, group) == 0)
            return skip_list[i].reason;
    return NULL;
}

/* --- running a file ------------------------------------------------------------- */

static const char *suite_dir(void)
{
    const char *env = getenv("MS_SCHEMA_SUITE_DIR");
    return env != NULL && env[0] != '\0' ? env : MS_SCHEMA_SUITE_DIR;
}

typedef struct reasons {
    const char *why[8];
    size_t count[8];
    size_t n;
} reasons;

static void add_reason(reasons *r, const char *why, size_t tests)
{
    for (size_t i = 0; i < r->n; i++) {
        if (strcmp(r->why[i], why) == 0) {
            r->count[i] += tests;
            return;
        }
    }
    if (r->n < 8) {
        r->why[r->n] = why;
        r->count[r->n++] = tests;
    }
}

static void run_file(const char *draft, const char *file)
{
    char path[1024];
    struct stat st;
    json_error_t jerr;
    json_t *groups;
    size_t gi, passed = 0, total = 0, skipped = 0, failed = 0;
    json_t *group;
    reasons why = {{0}, {0}, 0};
    char line[1024];
    size_t len;

    snprintf(path, sizeof path, "%s/%s", suite_dir(), draft);
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        fail_msg("JSON-Schema-Test-Suite directory %s is missing: install Debian's "
                 "json-schema-test-suite (scripts/bootstrap) or set MS_SCHEMA_SUITE_DIR",
                 path);
    snprintf(path, sizeof path, "%s/%s/%s", suite_dir(), draft, file);
    groups = json_load_file(path, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (groups == NULL)
        fail_msg("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    assert_true(json_is_array(groups));

    json_array_foreach(groups, gi, group)
    {
        const char *desc = json_string_value(json_object_get(group, "description"));
        json_t *schema = json_object_get(group, "schema");
        json_t *tests = json_object_get(group, "tests"), *t;
        const char *reason = skip_listed(file, desc);
        ms_schema *s = NULL;
        size_t ti;

        assert_non_null(desc);
        assert_non_null(schema);
        assert_true(json_is_array(tests));
        if (reason == NULL)
            reason = skip_rule(schema);
        if (reason != NULL) {
            skipped += json_array_size(tests);
            total += json_array_size(tests);
            add_reason(&why, reason, json_array_size(tests));
            continue;
        }
        if (ms_schema_compile(schema, desc, &s) != MS_OK) {
            print_error("schema-suite: %s/%s: \"%s\": schema refused: %s\n", draft, file, desc,
                        ms_last_error());
            failed += json_array_size(tests);
            total += json_array_size(tests);
            continue;
        }
        json_array_foreach(tests, ti, t)
        {
            json_t *data = json_object_get(t, "data");
            int want = json_is_true(json_object_get(t, "valid"));
            ms_schema_error *errs = NULL;
            size_t n = 0;
            ms_status st_ = ms_schema_validate(s, data, 0, &errs, &n);
            int got = st_ == MS_OK;
            total++;
            if (st_ != MS_OK && st_ != MS_ERR_SCHEMA) {
                print_error("schema-suite: %s/%s: \"%s\" / \"%s\": %s (%s)\n", draft, file, desc,
                            json_string_value(json_object_get(t, "description")),
                            ms_status_name(st_), ms_last_error());
                failed++;
            } else if (got != want) {
                print_error("schema-suite: %s/%s: \"%s\" / \"%s\": want %s, got %s%s%s\n", draft,
                            file, desc, json_string_value(json_object_get(t, "description")),
                            want ? "valid" : "invalid", got ? "valid" : "invalid", got ? "" : ": ",
                            got ? "" : ms_last_error());
                failed++;
            } else {
                /* An invalid instance must come with at least one error. */
                if (!got && n == 0) {
                    print_error("schema-suite: %s/%s: \"%s\": invalid with no error\n", draft, file,
                                desc);
                    failed++;
                } else {
                    passed++;
                }
            }
            ms_schema_errors_free(errs, n);
        }
        ms_schema_destroy(s);
    }
    json_decref(groups);

    len = (size_t)snprintf(line, sizeof line, "schema-suite: %s/%s: %zu/%zu passed", draft, file,
                           passed, total - skipped);
    if (skipped > 0) {
        len += (size_t)snprintf(line + len, sizeof line - len, " (%zu skipped:", skipped);
        for (size_t i = 0; i < why.n && len < sizeof line; i++)
            len += (size_t)snprintf(line + len, sizeof line - len, "%s %zu %s", i ? ";" : "",
                                    why.count[i], why.why[i]);
        if (len < sizeof line)
            snprintf(line + len, sizeof line - len, ")");
    }
    print_message("%s\n", line);
    if (failed > 0)
        fail_msg("%s/%s: %zu of %zu cases failed", draft, file, failed, total - skipped);
    assert_int_equal(passed + skipped, total);
}

#define SUITE_FILE(fn, file)                                                                       \
    static void fn(void **state)                                                                   \
    {                                                                                              \
        (void)state;                                                                               \
        run_file("draft7", file);                                                                  \
    }

SUITE_FILE(draft7_type, "type.json")
SUITE_FILE(draft7_properties, "properties.json")
SUITE_FILE(draft7_required, "required.json")
SUITE_FILE(draft7_additional_properties, "additionalProperties.json")
SUITE_FILE(draft7_pattern_properties, "patternProperties.json")
SUITE_FILE(draft7_min_properties, "minProperties.json")
SUITE_FILE(draft7_max_properties, "maxProperties.json")
SUITE_FILE(draft7_enum, "enum.json")
SUITE_FILE(draft7_const, "const.json")
SUITE_FILE(draft7_items, "items.json")
SUITE_FILE(draft7_min_items, "minItems.json")
SUITE_FILE(draft7_max_items, "maxItems.json")
SUITE_FILE(draft7_unique_items, "uniqueItems.json")
SUITE_FILE(draft7_min_length, "minLength.json")
SUITE_FILE(draft7_max_length, "maxLength.json")
SUITE_FILE(draft7_minimum, "minimum.json")
SUITE_FILE(draft7_maximum, "maximum.json")
SUITE_FILE(draft7_exclusive_minimum, "exclusiveMinimum.json")
SUITE_FILE(draft7_exclusive_maximum, "exclusiveMaximum.json")
SUITE_FILE(draft7_multiple_of, "multipleOf.json")
SUITE_FILE(draft7_pattern, "pattern.json")
SUITE_FILE(draft7_all_of, "allOf.json")
SUITE_FILE(draft7_any_of, "anyOf.json")
SUITE_FILE(draft7_one_of, "oneOf.json")
SUITE_FILE(draft7_not, "not.json")
SUITE_FILE(draft7_boolean_schema, "boolean_schema.json")
SUITE_FILE(draft7_ref, "ref.json")
SUITE_FILE(draft7_default, "default.json")

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(draft7_type),
        cmocka_unit_test(draft7_properties),
        cmocka_unit_test(draft7_required),
        cmocka_unit_test(draft7_additional_properties),
        cmocka_unit_test(draft7_pattern_properties),
        cmocka_unit_test(draft7_min_properties),
        cmocka_unit_test(draft7_max_properties),
        cmocka_unit_test(draft7_enum),
        cmocka_unit_test(draft7_const),
        cmocka_unit_test(draft7_items),
        cmocka_unit_test(draft7_min_items),
        cmocka_unit_test(draft7_max_items),
        cmocka_unit_test(draft7_unique_items),
        cmocka_unit_test(draft7_min_length),
        cmocka_unit_test(draft7_max_length),
        cmocka_unit_test(draft7_minimum),
        cmocka_unit_test(draft7_maximum),
        cmocka_unit_test(draft7_exclusive_minimum),
        cmocka_unit_test(draft7_exclusive_maximum),
        cmocka_unit_test(draft7_multiple_of),
        cmocka_unit_test(draft7_pattern),
        cmocka_unit_test(draft7_all_of),
        cmocka_unit_test(draft7_any_of),
        cmocka_unit_test(draft7_one_of),
        cmocka_unit_test(draft7_not),
        cmocka_unit_test(draft7_boolean_schema),
        cmocka_unit_test(draft7_ref),
        cmocka_unit_test(draft7_default),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
