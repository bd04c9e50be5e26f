/*
 * test_component.c - the component ABI: ops validation (ABI, name, semver,
 * required functions, topics), the test report, and plugin loading with its
 * error for each kind of bad plugin (tests/plugins), each naming the file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ms_test.h"

#define PLUGIN_DIR MS_BINARY_DIR "/tests/plugins"

static void *t_create(void)
{
    return malloc(1);
}

static void t_destroy(void *self)
{
    free(self);
}

static ms_status t_init(void *self, ms_component_ctx *ctx)
{
    (void)self;
    (void)ctx;
    return MS_OK;
}

static ms_status t_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    (void)in;
    (void)reply;
    return MS_OK;
}

static const ms_topic good_topics[] = {
    {"component.good.*", 0}, {"events.>", MS_TOPIC_FANOUT}, {NULL, 0}};

static ms_component_ops good_ops(void)
{
    ms_component_ops ops = {
        .abi_version = MS_COMPONENT_ABI,
        .metadata = {"good-one", "1.0.0", "a valid component"},
        .create = t_create,
        .destroy = t_destroy,
        .initialize = t_init,
        .topics = good_topics,
        .handle_message = t_handle,
    };
    return ops;
}

static void assert_error_has(const char *needle)
{
    if (strstr(ms_last_error(), needle) == NULL)
        fail_msg("error '%s' does not mention '%s'", ms_last_error(), needle);
}

static void validate_good(void **state)
{
    (void)state;
    ms_component_ops ops = good_ops();
    ms_assert_ok(ms_component_validate(&ops, "good.so"));
    ms_assert_ok(ms_component_validate(&ops, NULL));
    ops.topics = NULL; /* no subscriptions at all is fine */
    ms_assert_ok(ms_component_validate(&ops, NULL));
    ops.flags = MS_COMPONENT_REENTRANT;
    ms_assert_ok(ms_component_validate(&ops, NULL));
    ops.flags = MS_COMPONENT_INLINE;
    ms_assert_ok(ms_component_validate(&ops, NULL));
}

/* Inline dispatch is for serial components; unknown component flags are
 * refused. */
static void validate_flags(void **state)
{
    (void)state;
    ms_component_ops ops = good_ops();

    ops.flags = MS_COMPONENT_REENTRANT | MS_COMPONENT_INLINE;
    ms_assert_status(ms_component_validate(&ops, "t.so"), MS_ERR_SCHEMA);
    assert_error_has("t.so: flags MS_COMPONENT_REENTRANT and MS_COMPONENT_INLINE");
    ops.flags = 0x100;
    ms_assert_status(ms_component_validate(&ops, "t.so"), MS_ERR_SCHEMA);
    assert_error_has("unknown flags 0x100");
    /* the migrate flag promises the member */
    ops.flags = MS_COMPONENT_MIGRATE;
    ms_assert_status(ms_component_validate(&ops, "t.so"), MS_ERR_SCHEMA);
    assert_error_has("t.so: flag MS_COMPONENT_MIGRATE is set but migrate is NULL");
}

static void validate_null(void **state)
{
    (void)state;
    ms_assert_status(ms_component_validate(NULL, "x.so"), MS_ERR_INVALID_ARG);
    assert_error_has("x.so");
}

static void validate_abi(void **state)
{
    (void)state;
    ms_component_ops ops = good_ops();
    ops.abi_version = 7;
    ms_assert_status(ms_component_validate(&ops, "old.so"), MS_ERR_UNSUPPORTED);
    assert_error_has("old.so");
    assert_error_has("ABI 7");
    char want[32];
    snprintf(want, sizeof want, "ABI %d", MS_COMPONENT_ABI);
    assert_error_has(want);
}

static void validate_names(void **state)
{
    (void)state;
    static const char *bad[] = {"", "Upper", "under_score", "dot.ted", "-lead", "trail-",
                                "sp ace", "x*"};
    ms_component_ops ops = good_ops();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ops.metadata.name = bad[i];
        ms_assert_status(ms_component_validate(&ops, "n.so"), MS_ERR_SCHEMA);
        assert_error_has("metadata.name");
    }
    ops.metadata.name = NULL;
    ms_assert_status(ms_component_validate(&ops, "n.so"), MS_ERR_SCHEMA);
    assert_error_has("metadata.name is missing");

    char longname[MS_COMPONENT_NAME_MAX + 2];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ops.metadata.name = longname;
    ms_assert_status(ms_component_validate(&ops, "n.so"), MS_ERR_SCHEMA);
    assert_error_has("over 64");
    longname[MS_COMPONENT_NAME_MAX] = '\0'; /* exactly 64: fine */
    ms_assert_ok(ms_component_validate(&ops, "n.so"));
    ops.metadata.name = "a1-b2-0";
    ms_assert_ok(ms_component_validate(&ops, "n.so"));
}

static void semver_cases(void **state)
{
    (void)state;
    static const char *good[] = {"0.0.0", "1.2.3", "10.20.30", "1.0.0-alpha",
                                 "1.0.0-alpha.1", "1.0.0-0.3.7", "1.0.0-x.7.z.92",
                                 "1.0.0+20130313144700", "1.0.0-beta+exp.sha.5114f85",
                                 "1.0.0+21AF26D3----117B344092BD", "1.0.0-rc.1+build.01",
                                 "1.0.0--", "999999.0.1"};
    static const char *bad[] = {"", "1", "1.0", "1.0.0.0", "01.0.0", "1.01.0", "1.0.01",
                                "v1.0.0", "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-a..b",
                                "1.0.0-a_b", "1.0.0 ", " 1.0.0", "1.0.0+a+b", "a.b.c",
                                "1.-1.0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!ms_semver_valid(good[i]))
            fail_msg("'%s' should be valid semver", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ms_semver_valid(bad[i]))
            fail_msg("'%s' should not be valid semver", bad[i]);
    assert_false(ms_semver_valid(NULL));

    ms_component_ops ops = good_ops();
    ops.metadata.version = "1.0";
    ms_assert_status(ms_component_validate(&ops, "v.so"), MS_ERR_SCHEMA);
    assert_error_has("metadata.version '1.0'");
    ops.metadata.version = NULL;
    ms_assert_status(ms_component_validate(&ops, "v.so"), MS_ERR_SCHEMA);
    assert_error_has("metadata.version is missing");
}

static void validate_functions(void **state)
{
    (void)state;
    ms_component_ops ops;

    ops = good_ops();
    ops.create = NULL;
    ms_assert_status(ms_component_validate(&ops, "f.so"), MS_ERR_SCHEMA);
    assert_error_has("create");
    ops = good_ops();
    ops.destroy = NULL;
    ms_assert_status(ms_component_validate(&ops, "f.so"), MS_ERR_SCHEMA);
    assert_error_has("destroy");
    ops = good_ops();
    ops.initialize = NULL;
    ms_assert_status(ms_component_validate(&ops, "f.so"), MS_ERR_SCHEMA);
    assert_error_has("initialize");
    ops = good_ops();
    ops.handle_message = NULL;
    ms_assert_status(ms_component_validate(&ops, "f.so"), MS_ERR_SCHEMA);
    assert_error_has("handle_message");
    ops = good_ops();
    ops.metadata.description = NULL;
    ms_assert_status(ms_component_validate(&ops, "f.so"), MS_ERR_SCHEMA);
    assert_error_has("description");
    ops = good_ops();
    ops.flags = 0x80;
    ms_assert_status(ms_component_validate(&ops, "f.so"), MS_ERR_SCHEMA);
    assert_error_has("flags");
}

static void validate_topics(void **state)
{
    (void)state;
    static const ms_topic bad_pattern[] = {{"component..x", 0}, {NULL, 0}};
    static const ms_topic bad_flags[] = {{"a.b", 0x10}, {NULL, 0}};
    static const ms_topic bad_tail[] = {{"a.b", 0}, {"a.>.c", 0}, {NULL, 0}};
    ms_component_ops ops = good_ops();

    ops.topics = bad_pattern;
    ms_assert_status(ms_component_validate(&ops, "t.so"), MS_ERR_SCHEMA);
    assert_error_has("t.so: topics[0]");
    ops.topics = bad_flags;
    ms_assert_status(ms_component_validate(&ops, "t.so"), MS_ERR_SCHEMA);
    assert_error_has("unknown flags");
    ops.topics = bad_tail;
    ms_assert_status(ms_component_validate(&ops, "t.so"), MS_ERR_SCHEMA);
    assert_error_has("topics[1]");
}

static void health_names(void **state)
{
    (void)state;
    assert_string_equal(ms_health_status_str(MS_HEALTH_HEALTHY), "healthy");
    assert_string_equal(ms_health_status_str(MS_HEALTH_DEGRADED), "degraded");
    assert_string_equal(ms_health_status_str(MS_HEALTH_UNHEALTHY), "unhealthy");
}

static void test_report(void **state)
{
    (void)state;
    ms_test_report *r = NULL;
    ms_assert_status(ms_test_report_create(NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_test_report_create(&r));
    assert_int_equal(ms_test_report_count(r), 0);
    assert_null(ms_test_report_at(r, 0));
    for (int i = 0; i < 20; i++)
        ms_assert_ok(ms_test_report_add(r, "case", i % 3 != 0, "run %d", i));
    ms_assert_ok(ms_test_report_add(r, "quiet", true, NULL));
    assert_int_equal(ms_test_report_count(r), 21);
    assert_int_equal(ms_test_report_failed(r), 7);
    const ms_test_result *t = ms_test_report_at(r, 4);
    assert_non_null(t);
    assert_string_equal(t->name, "case");
    assert_true(t->passed);
    assert_string_equal(t->output, "run 4");
    assert_string_equal(ms_test_report_at(r, 20)->output, "");
    ms_assert_status(ms_test_report_add(r, NULL, true, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_test_report_add(r, "", true, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_test_report_add(NULL, "x", true, NULL), MS_ERR_INVALID_ARG);
    /* a long name is truncated, not refused */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    ms_assert_ok(ms_test_report_add(r, longname, false, "%s", longname));
    assert_int_equal(strlen(ms_test_report_at(r, 21)->name), sizeof t->name - 1);
    ms_test_report_destroy(r);
    ms_test_report_destroy(NULL);
    assert_int_equal(ms_test_report_count(NULL), 0);
}

/* --- plugins --------------------------------------------------------------- */

static void plugin_good(void **state)
{
    (void)state;
    ms_plugin *p = NULL;
    ms_assert_ok(ms_plugin_load(PLUGIN_DIR "/echo.so", &p));
    const ms_component_ops *ops = ms_plugin_ops(p);
    assert_non_null(ops);
    assert_string_equal(ops->metadata.name, "echo");
    assert_string_equal(ops->metadata.version, "1.2.3");
    assert_non_null(ops->health_check);
    assert_string_equal(ms_plugin_path(p), PLUGIN_DIR "/echo.so");
    /* the same file twice gives two handles to one loaded object */
    ms_plugin *q = NULL;
    ms_assert_ok(ms_plugin_load(PLUGIN_DIR "/echo.so", &q));
    assert_ptr_equal(ms_plugin_ops(q), ops);
    ms_plugin_unload(q);
    ms_plugin_unload(p);
    ms_plugin_unload(NULL);
    assert_null(ms_plugin_ops(NULL));
}

static void plugin_args(void **state)
{
    (void)state;
    ms_plugin *p = (ms_plugin *)1;
    ms_assert_status(ms_plugin_load(NULL, &p), MS_ERR_INVALID_ARG);
    assert_null(p);
    ms_assert_status(ms_plugin_load("", &p), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_plugin_load(PLUGIN_DIR "/echo.so", NULL), MS_ERR_INVALID_ARG);
}

static void plugin_missing_file(void **state)
{
    (void)state;
    ms_plugin *p = NULL;
    ms_assert_status(ms_plugin_load(PLUGIN_DIR "/no-such.so", &p), MS_ERR_IO);
    assert_null(p);
    assert_error_has("no-such.so");
    assert_error_has("No such file");
    ms_assert_status(ms_plugin_load(PLUGIN_DIR, &p), MS_ERR_IO);
    assert_error_has("not a regular file");
}

static void plugin_not_shared_object(void **state)
{
    (void)state;
    char path[] = "/tmp/ms-test-notso-XXXXXX.so";
    int fd = mkstemps(path, 3);
    assert_true(fd >= 0);
    static const char text[] = "this is a text file pretending to be a shared object, long "
                               "enough to be read as an ELF header and refused as one\n";
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    close(fd);
    ms_plugin *p = NULL;
    ms_assert_status(ms_plugin_load(path, &p), MS_ERR_IO);
    assert_error_has(path);
    assert_error_has("cannot load");
    /* dlerror's own words are kept */
    assert_error_has("invalid ELF header");
    unlink(path);
}

static void plugin_no_symbol(void **state)
{
    (void)state;
    ms_plugin *p = NULL;
    ms_assert_status(ms_plugin_load(PLUGIN_DIR "/nosymbol.so", &p), MS_ERR_NOT_FOUND);
    assert_null(p);
    assert_error_has("nosymbol.so");
    assert_error_has("not a mainstack component");
}

static void plugin_bad_abi(void **state)
{
    (void)state;
    ms_plugin *p = NULL;
    ms_assert_status(ms_plugin_load(PLUGIN_DIR "/badabi.so", &p), MS_ERR_UNSUPPORTED);
    assert_null(p);
    assert_error_has("badabi.so");
    assert_error_has("ABI 999");
}

static void plugin_bad_metadata(void **state)
{
    (void)state;
    ms_plugin *p = NULL;
    ms_assert_status(ms_plugin_load(PLUGIN_DIR "/badmeta.so", &p), MS_ERR_SCHEMA);
    assert_null(p);
    assert_error_has("badmeta.so");
    assert_error_has("metadata.version '1.0'");
}

static void plugin_others_load(void **state)
{
    (void)state;
    static const char *names[] = {"initfail", "failing", "unhealthy"};
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        ms_plugin *p = NULL;
        snprintf(path, sizeof path, "%s/%s.so", PLUGIN_DIR, names[i]);
        ms_assert_ok(ms_plugin_load(path, &p));
        assert_string_equal(ms_plugin_ops(p)->metadata.name, names[i]);
        ms_plugin_unload(p);
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(validate_good),
        cmocka_unit_test(validate_null),
        cmocka_unit_test(validate_abi),
        cmocka_unit_test(validate_names),
        cmocka_unit_test(semver_cases),
        cmocka_unit_test(validate_functions),
        cmocka_unit_test(validate_topics),
        cmocka_unit_test(validate_flags),
        cmocka_unit_test(health_names),
        cmocka_unit_test(test_report),
        cmocka_unit_test(plugin_good),
        cmocka_unit_test(plugin_args),
        cmocka_unit_test(plugin_missing_file),
        cmocka_unit_test(plugin_not_shared_object),
        cmocka_unit_test(plugin_no_symbol),
        cmocka_unit_test(plugin_bad_abi),
        cmocka_unit_test(plugin_bad_metadata),
        cmocka_unit_test(plugin_others_load),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
