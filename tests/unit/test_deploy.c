/*
 * test_deploy.c - SHA-256 against the FIPS 180-4 example vectors, the
 * registry's versions and deploy locks (a real SQLite file), and
 * ms_version_add with real plugins: recorded, idempotent, the same version
 * with other content refused, a file that is not a component, an ABI
 * mismatch, another component, a missing file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "deploy/sha256.h"
#include "ms_test.h"

#define PLUGIN_DIR MS_BINARY_DIR "/tests/plugins"

static void sha256_fips_vectors(void **state)
{
    char hex[65];
    char *million;
    ms__sha256 c;
    uint8_t d[32];
    (void)state;
    ms_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ms_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ms_sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    ms_sha256_hex(million, 1000000, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    /* the same in uneven pieces (block boundaries crossed every way) */
    ms__sha256_init(&c);
    for (size_t off = 0, step = 1; off < 1000000; off += step, step = step * 7 % 131 + 1)
        ms__sha256_update(&c, million + off, off + step > 1000000 ? 1000000 - off : step);
    ms__sha256_final(&c, d);
    assert_int_equal(d[0], 0xcd);
    assert_int_equal(d[31], 0xd0);
    free(million);
}

typedef struct fx {
    char dir[256];
    char db[300];
    ms_registry *reg;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "/tmp/ms-deploy-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->db, sizeof f->db, "%s/registry.db", f->dir);
    ms_assert_ok(ms_registry_open(f->db, &f->reg));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[400];
    ms_registry_close(f->reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

static void has(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", hay, needle);
}

static void registry_versions_and_states(void **state)
{
    fx *f = *state;
    json_t *list = NULL, *row = NULL;
    bool fresh = false;
    ms_assert_ok(ms_registry_version_add(f->reg, "svc", "1.0.0", "aa", "/a/1", NULL, &fresh));
    assert_true(fresh);
    ms_assert_ok(ms_registry_version_add(f->reg, "svc", "1.0.0", "aa", "/a/1", NULL, &fresh));
    assert_false(fresh);
    ms_assert_status(ms_registry_version_add(f->reg, "svc", "1.0.0", "bb", "/a/1", NULL, &fresh),
                     MS_ERR_STATE);
    has(ms_last_error(), "sha256 aa");
    has(ms_last_error(), "bb");
    ms_assert_ok(ms_registry_version_add(f->reg, "svc", "1.1.0", "cc", "/a/2", NULL, NULL));
    ms_assert_ok(ms_registry_versions(f->reg, "svc", &list));
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "state")),
                        "candidate");
    json_decref(list);
    ms_assert_ok(ms_registry_version_set_state(f->reg, "svc", "1.1.0", "active"));
    ms_assert_ok(ms_registry_version_get(f->reg, "svc", "1.1.0", &row));
    assert_string_equal(json_string_value(json_object_get(row, "state")), "active");
    assert_string_equal(json_string_value(json_object_get(row, "sha256")), "cc");
    json_decref(row);
    ms_assert_status(ms_registry_version_set_state(f->reg, "svc", "1.1.0", "live"),
                     MS_ERR_INVALID_ARG);
    has(ms_last_error(), "rolled-back");
    ms_assert_status(ms_registry_version_set_state(f->reg, "svc", "9.9.9", "active"),
                     MS_ERR_NOT_FOUND);
    ms_assert_status(ms_registry_version_get(f->reg, "svc", "2.0.0", &row), MS_ERR_NOT_FOUND);
    has(ms_last_error(), "known: 1.0.0, 1.1.0");
    ms_assert_ok(ms_registry_versions(f->reg, "other", &list));
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void deploy_lock_names_holder(void **state)
{
    fx *f = *state;
    ms_registry *second = NULL;
    ms_assert_ok(ms_registry_deploy_lock(f->reg, "svc", "alice@h pid 1"));
    ms_assert_ok(ms_registry_deploy_lock(f->reg, "svc", "alice@h pid 1")); /* ours already */
    /* another process (another connection on the same file) */
    ms_assert_ok(ms_registry_open(f->db, &second));
    ms_assert_status(ms_registry_deploy_lock(second, "svc", "bob@h pid 2"), MS_ERR_STATE);
    has(ms_last_error(), "deploy of svc is locked by alice@h pid 1 since ");
    ms_assert_status(ms_registry_deploy_unlock(second, "svc", "bob@h pid 2"), MS_ERR_STATE);
    ms_assert_ok(ms_registry_deploy_lock(second, "other", "bob@h pid 2")); /* per component */
    ms_assert_ok(ms_registry_deploy_unlock(f->reg, "svc", "alice@h pid 1"));
    ms_assert_ok(ms_registry_deploy_lock(second, "svc", "bob@h pid 2"));
    ms_assert_ok(ms_registry_deploy_unlock(second, "svc", "bob@h pid 2"));
    ms_assert_ok(ms_registry_deploy_unlock(second, "svc", "bob@h pid 2")); /* not held: ok */
    ms_assert_status(ms_registry_deploy_lock(second, "svc", ""), MS_ERR_INVALID_ARG);
    ms_registry_close(second);
}

static void file_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void version_add_records_artifacts(void **state)
{
    fx *f = *state;
    ms_version_info v;
    char src[400], p[700], sha[65];
    json_t *row = NULL;
    struct stat st;

    snprintf(src, sizeof src, "%s/src", f->dir);
    assert_int_equal(mkdir(src, 0755), 0);
    snprintf(p, sizeof p, "%s/interface.json", src);
    file_text(p, "{\"component\": \"swapver\"}\n");
    snprintf(p, sizeof p, "%s/context", src);
    assert_int_equal(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/context/context.json", src);
    file_text(p, "{\"purpose\": \"test\"}\n");

    ms_assert_ok(ms_version_add(f->reg, f->dir, "swapver", PLUGIN_DIR "/swapver_a.so", src, &v));
    assert_true(v.fresh);
    assert_string_equal(v.version, "1.0.0");
    assert_true(v.has_interface);
    assert_true(v.has_context);
    ms_assert_ok(ms_sha256_file(PLUGIN_DIR "/swapver_a.so", sha));
    assert_string_equal(v.sha256, sha);
    snprintf(p, sizeof p, "%s/.mainstack/artifacts/swapver/1.0.0/swapver.so", f->dir);
    assert_string_equal(v.so_path, p);
    assert_int_equal(stat(p, &st), 0);
    ms_assert_ok(ms_sha256_file(p, sha)); /* the copy is the same bytes */
    assert_string_equal(v.sha256, sha);
    snprintf(p, sizeof p, "%s/.mainstack/artifacts/swapver/1.0.0/interface.json", f->dir);
    assert_int_equal(stat(p, &st), 0);
    snprintf(p, sizeof p, "%s/.mainstack/artifacts/swapver/1.0.0/context/context.json", f->dir);
    assert_int_equal(stat(p, &st), 0);
    ms_assert_ok(ms_registry_version_get(f->reg, "swapver", "1.0.0", &row));
    assert_string_equal(json_string_value(json_object_get(row, "sha256")), v.sha256);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "candidate");
    json_decref(row);

    /* the same build again: a no-op */
    ms_assert_ok(ms_version_add(f->reg, f->dir, "swapver", PLUGIN_DIR "/swapver_a.so", src, &v));
    assert_false(v.fresh);
    /* another version of the component */
    ms_assert_ok(ms_version_add(f->reg, f->dir, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, &v));
    assert_string_equal(v.version, "2.0.0");
    assert_false(v.has_interface);
    /* another content under a recorded version (swapver_initfail says 3.0.0;
     * record 3.0.0 first with a fake hash so the real build differs) */
    ms_assert_ok(ms_registry_version_add(f->reg, "swapver", "3.0.0", "00ff", "/x", NULL, NULL));
    ms_assert_status(
        ms_version_add(f->reg, f->dir, "swapver", PLUGIN_DIR "/swapver_initfail.so", NULL, &v),
        MS_ERR_STATE);
    has(ms_last_error(), "swapver 3.0.0 is already recorded with sha256 00ff");
    has(ms_last_error(), "bump the version");
    snprintf(p, sizeof p, "%s/.mainstack/artifacts/swapver/3.0.0", f->dir);
    assert_int_not_equal(stat(p, &st), 0); /* nothing copied */
}

static void version_add_refuses_bad_input(void **state)
{
    fx *f = *state;
    ms_version_info v;
    json_t *list = NULL;
    ms_assert_status(
        ms_version_add(f->reg, f->dir, "nosymbol", PLUGIN_DIR "/nosymbol.so", NULL, &v),
        MS_ERR_NOT_FOUND);
    has(ms_last_error(), "not a mainstack component");
    ms_assert_status(ms_version_add(f->reg, f->dir, "badabi", PLUGIN_DIR "/badabi.so", NULL, &v),
                     MS_ERR_UNSUPPORTED);
    has(ms_last_error(), "ABI");
    ms_assert_status(ms_version_add(f->reg, f->dir, "swapver", PLUGIN_DIR "/echo.so", NULL, &v),
                     MS_ERR_INVALID_ARG);
    has(ms_last_error(), "is component 'echo', not 'swapver'");
    ms_assert_status(ms_version_add(f->reg, f->dir, "swapver", PLUGIN_DIR "/none.so", NULL, &v),
                     MS_ERR_IO);
    has(ms_last_error(), "none.so");
    ms_assert_status(ms_version_add(NULL, f->dir, "swapver", PLUGIN_DIR "/swapver_a.so", NULL, &v),
                     MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_registry_versions(f->reg, "swapver", &list));
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_fips_vectors),
        cmocka_unit_test_setup_teardown(registry_versions_and_states, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_lock_names_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(version_add_records_artifacts, setup, teardown),
        cmocka_unit_test_setup_teardown(version_add_refuses_bad_input, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
