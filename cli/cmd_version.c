/*
 * cmd_version.c - `mstack version add COMPONENT [BUILD_DIR]` and `mstack
 * versions COMPONENT`: record a built component as a version (its .so,
 * interface.json and context snapshot copied under
 * <root>/.mainstack/artifacts/<component>/<version>/, ms_version_add) and
 * list the recorded versions with their deploy state.
 *
 * The shared object is found as <BUILD_DIR>/<name>.so (or lib<name>.so,
 * <name>/<name>.so), BUILD_DIR defaulting to the components directory of
 * the build tree this mstack belongs to (build/cli/mstack ->
 * build/components); BUILD_DIR may also be the .so itself. The component's
 * source directory, whose interface.json and context/ are copied, is
 * <root>/components/<name>. Also here: the helpers the deploy verb shares
 * (opening the registry, finding the build tree).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mainstack/deploy.h>

#include "cli.h"

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

void cli_build_components_dir(char *out, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);

    if (n <= 0) {
        snprintf(out, cap, "components");
        return;
    }
    exe[n] = '\0';
    /* <build>/cli/mstack -> <build> */
    for (int k = 0; k < 2; k++) {
        char *slash = strrchr(exe, '/');
        if (slash != NULL)
            *slash = '\0';
    }
    n = snprintf(out, cap, "%s/components", exe);
    if (n < 0 || (size_t)n >= cap)
        snprintf(out, cap, "components"); /* too long a path: the current directory's */
}

int cli_open_registry(const char *root, ms_registry **out)
{
    char *path = NULL;
    ms_status s;

    *out = NULL;
    if ((s = ms_registry_default_path(root, &path)) != MS_OK ||
        (s = ms_registry_open(path, out)) != MS_OK) {
        cli_error("%s", ms_last_error());
        free(path);
        return cli_exit_code(s);
    }
    free(path);
    return CLI_EXIT_OK;
}

/* The .so of component name under dir (a file given as such is used as
 * is). False when none exists; tried lists what was looked for. */
static bool find_so(const char *dir, const char *name, char *out, size_t cap, char *tried,
                    size_t tcap)
{
    if (is_file(dir)) {
        snprintf(out, cap, "%s", dir);
        return true;
    }
    tried[0] = '\0';
    for (int i = 0; i < 3; i++) {
        size_t used = strlen(tried);
        if (i == 0)
            snprintf(out, cap, "%s/%s.so", dir, name);
        else if (i == 1)
            snprintf(out, cap, "%s/lib%s.so", dir, name);
        else
            snprintf(out, cap, "%s/%s/%s.so", dir, name, name);
        if (is_file(out))
            return true;
        snprintf(tried + used, tcap - used, "%s%s", used ? ", " : "", out);
    }
    return false;
}

static int add(const cli_verb *verb, const cli_args *a, const char *root, const char *name)
{
    const bool json_mode = cli_flag(a, "json");
    char build[4096], so[4200], src[4200], tried[13000];
    const char *dir;
    ms_registry *reg = NULL;
    ms_version_info info;
    ms_status s;
    int rc;

    if ((rc = cli_check_name(verb, "component", name, true)) != CLI_EXIT_OK)
        return rc;
    if (a->npositional > 2) {
        dir = a->positional[2];
    } else {
        cli_build_components_dir(build, sizeof build);
        dir = build;
    }
    snprintf(src, sizeof src, "%s/components/%s", root, name);
    if (!find_so(dir, name, so, sizeof so, tried, sizeof tried)) {
        if (!is_dir(dir))
            cli_error("unknown component '%s': the build directory %s does not exist (give the "
                      "directory where %s.so is built, or the .so itself)",
                      name, dir, name);
        else
            cli_error("unknown component '%s': no shared object found (tried %s)%s", name, tried,
                      is_dir(src) ? "; build it first" : "; nor is there a component directory");
        return CLI_EXIT_FAILURE;
    }
    if ((rc = cli_open_registry(root, &reg)) != CLI_EXIT_OK)
        return rc;
    s = ms_version_add(reg, root, name, so, is_dir(src) ? src : NULL, &info);
    if (s != MS_OK) {
        switch (s) {
        case MS_ERR_NOT_FOUND:   /* not a component */
        case MS_ERR_UNSUPPORTED: /* another ABI */
        case MS_ERR_SCHEMA:      /* bad metadata */
            cli_error("%s", ms_last_error());
            break;
        default:
            cli_error("version add %s: %s", name, ms_last_error());
            break;
        }
        ms_registry_close(reg);
        return CLI_EXIT_FAILURE;
    }
    ms_registry_close(reg);
    if (json_mode) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "component",
                              info.component, "version", info.version, "sha256", info.sha256, "dir",
                              info.dir, "so", info.so_path, "fresh", info.fresh, "interface",
                              info.has_interface, "context", info.has_context);
        if (o == NULL) {
            cli_error("out of memory");
            return CLI_EXIT_FAILURE;
        }
        cli_print_json(o, true);
        json_decref(o);
    } else if (info.fresh) {
        printf("recorded %s %s (sha256 %.12s) in %s%s%s; state candidate\n", info.component,
               info.version, info.sha256, info.dir, info.has_interface ? ", interface.json" : "",
               info.has_context ? ", context" : "");
    } else {
        printf("%s %s (sha256 %.12s) is already recorded with this content: nothing changed\n",
               info.component, info.version, info.sha256);
    }
    return CLI_EXIT_OK;
}

/* Append "<sep><state> <time to the second>Z" to out (used bytes so far);
 * returns the new length, unchanged when it would not fit. */
static size_t append_state(char *out, size_t cap, size_t used, const char *sep, const char *state,
                           const char *time)
{
    int n = snprintf(out + used, cap - used, "%s%s %.19sZ", sep, state ? state : "?",
                     time ? time : "?");

    if (n < 0 || (size_t)n >= cap - used) {
        out[used] = '\0';
        return used;
    }
    return used + (size_t)n;
}

static int list(const cli_verb *verb, const cli_args *a, const char *root, const char *name)
{
    static const char *const headers[] = {"VERSION", "STATE", "SHA256", "STATES ENTERED"};
    ms_registry *reg = NULL;
    json_t *rows = NULL;
    cli_table t = {0};
    size_t i;
    json_t *row;
    int rc;

    if ((rc = cli_check_name(verb, "component", name, true)) != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_open_registry(root, &reg)) != CLI_EXIT_OK)
        return rc;
    if (ms_registry_versions(reg, name, &rows) != MS_OK) {
        cli_error("%s", ms_last_error());
        ms_registry_close(reg);
        return CLI_EXIT_FAILURE;
    }
    ms_registry_close(reg);
    if (json_array_size(rows) == 0) {
        cli_error("no versions of '%s' are recorded in %s/.mainstack/registry.db (record one "
                  "with: mstack version add %s)",
                  name, root, name);
        json_decref(rows);
        return CLI_EXIT_FAILURE;
    }
    if (cli_flag(a, "json")) {
        cli_print_json(rows, true);
        json_decref(rows);
        return CLI_EXIT_OK;
    }
    if ((rc = cli_table_init(&t, 4, headers)) != CLI_EXIT_OK)
        goto cleanup;
    json_array_foreach(rows, i, row)
    {
        char sha[16], states[2048];
        const char *cells[4];
        const json_t *history = json_object_get(json_object_get(row, "detail"), "history");
        size_t k, used;
        json_t *h;

        snprintf(sha, sizeof sha, "%.12s", json_string_value(json_object_get(row, "sha256")));
        states[0] = '\0';
        used = append_state(states, sizeof states, 0, "", "candidate",
                            json_string_value(json_object_get(row, "added_time")));
        json_array_foreach(history, k, h)
        {
            used = append_state(states, sizeof states, used, ", ",
                                json_string_value(json_object_get(h, "state")),
                                json_string_value(json_object_get(h, "time")));
        }
        cells[0] = json_string_value(json_object_get(row, "version"));
        cells[1] = json_string_value(json_object_get(row, "state"));
        cells[2] = sha;
        cells[3] = states;
        if ((rc = cli_table_add(&t, cells)) != CLI_EXIT_OK)
            goto cleanup;
    }
    cli_table_print(&t, stdout);
cleanup:
    cli_table_reset(&t);
    json_decref(rows);
    return rc;
}

static const cli_option options[] = {
    {"root", 'C', "DIR", false, "the project root (default: found from the current directory)"},
    {"json", 0, NULL, false, "print JSON"},
    {NULL, 0, NULL, false, NULL},
};

static int run_version(const cli_verb *verb, const cli_args *a)
{
    char root[4096];
    int rc;

    if (strcmp(a->positional[0], "add") != 0)
        return cli_usage_error(verb, "unknown subcommand '%s' (expected: add)", a->positional[0]);
    if (a->npositional < 2)
        return cli_usage_error(verb, "add: missing COMPONENT");
    if ((rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc;
    return add(verb, a, root, a->positional[1]);
}

static int run_versions(const cli_verb *verb, const cli_args *a)
{
    char root[4096];
    int rc;

    if ((rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc;
    return list(verb, a, root, a->positional[0]);
}

const cli_verb cli_verb_version = {
    .name = "version",
    .alias = NULL,
    .usage = "add COMPONENT [BUILD_DIR | FILE.so] [options]",
    .summary = "record a built component as a version (its artifacts)",
    .description =
        "Copies COMPONENT's shared object, its interface.json and its context/ files to\n"
        "<root>/.mainstack/artifacts/<component>/<version>/ and records the version in the\n"
        "registry in state candidate. The version is the plugin's own metadata.version;\n"
        "the content hash is the sha256 of the .so. The .so is <BUILD_DIR>/<name>.so\n"
        "(default BUILD_DIR: the components directory of this mstack's build tree) or\n"
        "the file given. The same version with the same content again changes nothing;\n"
        "with other content it is refused, naming both hashes (bump the version).\n"
        "Without a verb argument, `mstack version` prints mstack's own version.\n",
    .options = options,
    .min_positional = 1,
    .max_positional = 3,
    .examples = "  mstack version add user-service\n"
                "  mstack version add user-service build/components --json\n",
    .run = run_version,
};

const cli_verb cli_verb_versions = {
    .name = "versions",
    .alias = NULL,
    .usage = "COMPONENT [options]",
    .summary = "the recorded versions of a component and their deploy state",
    .description =
        "One row per recorded version, oldest first: the version, its state (candidate,\n"
        "testing, active, previous, rejected, rolled-back), the first 12 hex digits of\n"
        "its sha256, and each state it entered with the time (to the second, UTC).\n",
    .options = options,
    .min_positional = 1,
    .max_positional = 1,
    .examples = "  mstack versions user-service\n",
    .run = run_versions,
};
