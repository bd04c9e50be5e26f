/*
 * test_cli_check.c - `mstack check` and `mstack context render`, driving
 * the real binary (MSTACK_BIN) the way a person or CI does: exit codes,
 * the human lines, the --json report, and render with --check.
 *
 * Bad stacks are built in a temporary directory; the good one is the real
 * tree (MS_SOURCE_DIR). Every command runs through /bin/sh with its output
 * captured.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ms_test.h"

static char tmp[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    snprintf(tmp, sizeof tmp, "/tmp/ms_cli_check_XXXXXX");
    return mkdtemp(tmp) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    return nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run a shell command line; *out gets its stdout (malloc'd). Returns the
 * exit status (-1 when it did not exit). */
static int run(const char *cmd, char **out)
{
    char line[8192];
    size_t len = 0, cap = 1;
    char *text = calloc(1, 1);
    FILE *p = popen(cmd, "r");
    int status;

    assert_non_null(p);
    assert_non_null(text);
    while (fgets(line, sizeof line, p) != NULL) {
        size_t n = strlen(line);
        if (len + n + 1 > cap) {
            cap = (len + n + 1) * 2;
            text = realloc(text, cap);
            assert_non_null(text);
        }
        memcpy(text + len, line, n + 1);
        len += n;
    }
    status = pclose(p);
    *out = text;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void put_file(const char *rel, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", tmp, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* One component "solo" in <tmp>/components, with the given files. */
static void make_component(const char *ctx, const char *cfg)
{
    char path[512];
    snprintf(path, sizeof path, "%s/components", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/components/solo", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/components/solo/context", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    put_file("components/solo/context/context.json", ctx);
    put_file("components/solo/context/agent-config.json", cfg);
}

#define CHECK_CMD(args)                                                                            \
    "cd '%s' && " MSTACK_BIN " check --schemas " MS_SOURCE_DIR "/schemas " args " 2>&1"

static void check_real_tree(void **state)
{
    char *out = NULL;
    int rc = run("cd " MS_SOURCE_DIR " && " MSTACK_BIN " check 2>&1", &out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "components/user-service"));
    assert_non_null(strstr(out, ": 0 errors,"));
    free(out);
    /* From inside a component directory, the root is found above it. */
    rc = run("cd " MS_SOURCE_DIR "/components/user-service/context && " MSTACK_BIN " check --json",
             &out);
    assert_int_equal(rc, 0);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "errors")), 0);
    assert_true(json_array_size(json_object_get(j, "components")) >= 2);
    json_decref(j);
    free(out);
}

static void check_errors_and_exit_codes(void **state)
{
    char cmd[1024];
    char *out = NULL;
    int rc;

    make_component(
        "{\n  \"component\": \"solo\",\n  \"version\": \"1.0.0\"\n  \"purpose\": \"x\"\n}\n",
        "{\"component\": \"solo\", \"autonomy\": {\"level\": \"sometimes\"}}\n");
    snprintf(cmd, sizeof cmd, CHECK_CMD("components"), tmp);
    rc = run(cmd, &out);
    assert_int_equal(rc, 1);
    /* file:line:column for the syntax error, file: /pointer for the schema one. */
    assert_non_null(strstr(out, "components/solo/context/context.json:4:"));
    assert_non_null(strstr(out, ": error: "));
    assert_non_null(
        strstr(out, "components/solo/context/agent-config.json: /autonomy/level: error: "));
    assert_non_null(strstr(out, "1 component checked (components/solo): 2 errors, 0 warnings"));
    free(out);

    snprintf(cmd, sizeof cmd, CHECK_CMD("components --json"), tmp);
    rc = run(cmd, &out);
    assert_int_equal(rc, 1);
    json_t *j = json_loads(out, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "errors")), 2);
    json_t *f0 = json_array_get(json_object_get(j, "findings"), 0);
    assert_string_equal(json_string_value(json_object_get(f0, "code")), "syntax");
    assert_int_equal(json_integer_value(json_object_get(f0, "line")), 4);
    json_t *f1 = json_array_get(json_object_get(j, "findings"), 1);
    assert_string_equal(json_string_value(json_object_get(f1, "pointer")), "/autonomy/level");
    json_decref(j);
    free(out);

    /* Usage: a path that does not exist, an unknown option. */
    snprintf(cmd, sizeof cmd, CHECK_CMD("no/such/dir"), tmp);
    assert_int_equal(run(cmd, &out), 2);
    assert_non_null(strstr(out, "no/such/dir"));
    free(out);
    snprintf(cmd, sizeof cmd, CHECK_CMD("--frobnicate"), tmp);
    assert_int_equal(run(cmd, &out), 2);
    free(out);
}

static void check_warnings_and_strict(void **state)
{
    char cmd[1024];
    char *out = NULL;

    make_component(
        "{\"component\": \"solo\", \"version\": \"1.0.0\", \"purpose\": \"x\"}\n",
        "{\"component\": \"solo\", \"autonomy\": {\"level\": \"minor\"},\n"
        " \"rules\": [{\"name\": \"all\", \"decision\": \"ignore\", \"reason\": \"x\"},\n"
        "  {\"name\": \"late\", \"match\": {\"type\": \"event\"}, \"decision\": "
        "\"escalate\", \"reason\": \"x\"}]}\n");
    snprintf(cmd, sizeof cmd, CHECK_CMD("components/solo"), tmp);
    assert_int_equal(run(cmd, &out), 0);
    assert_non_null(strstr(out, "agent-config.json: /rules/1: warning: rule 'late' never decides"));
    assert_non_null(strstr(out, "0 errors, 1 warning\n"));
    free(out);
    snprintf(cmd, sizeof cmd, CHECK_CMD("components/solo --strict --quiet"), tmp);
    assert_int_equal(run(cmd, &out), 1);
    assert_null(strstr(out, "checked"));
    free(out);
}

static void render_and_check(void **state)
{
    char cmd[1024], path[256];
    char *out = NULL, *committed = NULL;

    /* The committed AGENTS.md is what render writes (the CTest entries
     * mstack.agents_md.* check it too); rendering to a file gives the same. */
    snprintf(path, sizeof path, "%s/AGENTS.md", tmp);
    snprintf(cmd, sizeof cmd,
             "cd " MS_SOURCE_DIR " && " MSTACK_BIN " context render user-service --output %s",
             path);
    assert_int_equal(run(cmd, &out), 0);
    assert_non_null(strstr(out, "wrote"));
    free(out);
    snprintf(cmd, sizeof cmd, "cmp %s " MS_SOURCE_DIR "/components/user-service/AGENTS.md", path);
    assert_int_equal(run(cmd, &out), 0);
    free(out);
    snprintf(cmd, sizeof cmd,
             MSTACK_BIN " context render " MS_SOURCE_DIR
                        "/components/user-service --check --output %s",
             path);
    assert_int_equal(run(cmd, &out), 0);
    assert_non_null(strstr(out, "up to date"));
    free(out);

    /* Edited by hand: --check fails and says what to run. */
    put_file("AGENTS.md", "# edited\n");
    assert_int_equal(run(cmd, &out), 1);
    assert_non_null(strstr(out, "out of date"));
    free(out);
    snprintf(cmd, sizeof cmd,
             MSTACK_BIN " context render " MS_SOURCE_DIR
                        "/components/user-service --check --output %s/none.md",
             tmp);
    assert_int_equal(run(cmd, &out), 1);
    assert_non_null(strstr(out, "missing"));
    free(out);

    /* --stdout. */
    assert_int_equal(run("cd " MS_SOURCE_DIR " && " MSTACK_BIN
                         " context render notification-service --stdout",
                         &committed),
                     0);
    assert_non_null(strstr(committed, "<!-- Generated from context/context.json"));
    assert_non_null(strstr(committed, "# notification-service "));
    free(committed);

    /* Usage errors. */
    assert_int_equal(run(MSTACK_BIN " context draw user-service 2>&1", &out), 2);
    assert_non_null(strstr(out, "unknown sub-verb 'draw'"));
    free(out);
    assert_int_equal(
        run("cd " MS_SOURCE_DIR " && " MSTACK_BIN " context render no-such 2>&1", &out), 2);
    free(out);
    assert_int_equal(run(MSTACK_BIN " context render 2>&1", &out), 2);
    free(out);
    assert_int_equal(run(MSTACK_BIN " context render user-service --stdout --check 2>&1", &out), 2);
    free(out);
    /* A component whose context does not load: 1, with the reason. */
    make_component("{", "{}");
    snprintf(cmd, sizeof cmd, MSTACK_BIN " context render %s/components/solo --stdout 2>&1", tmp);
    assert_int_equal(run(cmd, &out), 1);
    assert_non_null(strstr(out, "context.json:1:"));
    free(out);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_real_tree),
        cmocka_unit_test_setup_teardown(check_errors_and_exit_codes, setup, teardown),
        cmocka_unit_test_setup_teardown(check_warnings_and_strict, setup, teardown),
        cmocka_unit_test_setup_teardown(render_and_check, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
