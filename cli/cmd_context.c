/*
 * cmd_context.c - `mstack context render COMPONENT`: write the component's
 * AGENTS.md from its context files (ms_context_render_dir).
 *
 * COMPONENT is a directory (it contains '/' or is a directory with a
 * context/ subdirectory) or a name under <root>/components. The output is
 * <component>/AGENTS.md, --output FILE or stdout; --check compares instead
 * of writing and exits 1 when the file differs, so CI keeps AGENTS.md in
 * step with the context.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const cli_option options[] = {
    {"output", 'o', "FILE", false, "write there instead of <component>/AGENTS.md"},
    {"stdout", 0, NULL, false, "print the markdown instead of writing a file"},
    {"check", 0, NULL, false, "write nothing; exit 1 when the file differs from the rendering"},
    {NULL, 0, NULL, false, NULL},
};

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The component directory of arg, malloc'd; NULL with the usage error printed. */
static char *component_dir(const cli_verb *verb, const char *arg, int *rc)
{
    char ctxdir[4096];
    char *root = NULL, *dir = NULL;
    size_t n;

    snprintf(ctxdir, sizeof ctxdir, "%s/context", arg);
    if (strchr(arg, '/') != NULL || is_dir(ctxdir)) {
        if (!is_dir(ctxdir)) {
            *rc = cli_usage_error(verb, "%s is not a component directory (no context/ in it)", arg);
            return NULL;
        }
        dir = strdup(arg);
    } else {
        *rc = cli_check_name(verb, "component", arg, true);
        if (*rc != CLI_EXIT_OK)
            return NULL;
        if (ms_check_find_root(NULL, &root) != MS_OK) {
            *rc = cli_usage_error(verb, "component '%s': %s; give its directory instead", arg,
                                  ms_last_error());
            return NULL;
        }
        n = strlen(root) + strlen(arg) + 16;
        dir = malloc(n);
        if (dir != NULL)
            snprintf(dir, n, "%s/components/%s", root, arg);
        free(root);
        if (dir != NULL && !is_dir(dir)) {
            *rc = cli_usage_error(verb, "no component '%s' (%s does not exist)", arg, dir);
            free(dir);
            return NULL;
        }
    }
    if (dir == NULL) {
        cli_error("out of memory");
        *rc = CLI_EXIT_FAILURE;
    }
    return dir;
}

/* The whole of path, malloc'd and NUL terminated; NULL when it cannot be read. */
static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t len = 0, cap = 0;

    if (f == NULL)
        return NULL;
    for (;;) {
        size_t got;
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *grown = realloc(text, ncap);
            if (grown == NULL) {
                free(text);
                fclose(f);
                return NULL;
            }
            text = grown;
            cap = ncap;
        }
        got = fread(text + len, 1, 4096, f);
        len += got;
        if (got < 4096)
            break;
    }
    if (ferror(f)) {
        free(text);
        fclose(f);
        return NULL;
    }
    fclose(f);
    text[len] = '\0';
    return text;
}

static int write_text(const char *path, const char *text)
{
    char tmp[4096];
    FILE *f;
    size_t len = strlen(text);

    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "wb");
    if (f == NULL) {
        cli_error("cannot write %s: %s", tmp, strerror(errno));
        return CLI_EXIT_FAILURE;
    }
    if (fwrite(text, 1, len, f) != len || fclose(f) != 0) {
        cli_error("writing %s failed: %s", tmp, strerror(errno));
        (void)remove(tmp);
        return CLI_EXIT_FAILURE;
    }
    if (rename(tmp, path) != 0) {
        cli_error("cannot rename %s to %s: %s", tmp, path, strerror(errno));
        (void)remove(tmp);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

static int run(const cli_verb *verb, const cli_args *a)
{
    const char *sub = a->positional[0];
    const char *out_opt = cli_opt(a, "output");
    char *dir = NULL, *md = NULL, *path = NULL, *old = NULL;
    int rc = CLI_EXIT_OK;
    ms_status s;

    if (strcmp(sub, "render") != 0)
        return cli_usage_error(verb, "unknown sub-verb '%s' (expected: render)", sub);
    if (a->npositional != 2)
        return cli_usage_error(verb, "render needs one COMPONENT (a name or a directory)");
    if (cli_flag(a, "stdout") && (out_opt != NULL || cli_flag(a, "check")))
        return cli_usage_error(verb, "--stdout goes with neither --output nor --check");
    dir = component_dir(verb, a->positional[1], &rc);
    if (dir == NULL)
        return rc;
    s = ms_context_render_dir(dir, &md);
    if (s != MS_OK) {
        cli_error("cannot render %s: %s", dir, ms_last_error());
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    if (cli_flag(a, "stdout")) {
        fputs(md, stdout);
        goto cleanup;
    }
    if (out_opt != NULL) {
        path = strdup(out_opt);
    } else {
        size_t n = strlen(dir) + sizeof "/AGENTS.md";
        path = malloc(n);
        if (path != NULL)
            snprintf(path, n, "%s/AGENTS.md", dir);
    }
    if (path == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    if (cli_flag(a, "check")) {
        old = read_text(path);
        if (old == NULL) {
            printf("%s: missing or unreadable; run: mstack context render %s\n", path,
                   a->positional[1]);
            rc = CLI_EXIT_FAILURE;
        } else if (strcmp(old, md) != 0) {
            printf("%s: out of date with the context files; run: mstack context render %s\n", path,
                   a->positional[1]);
            rc = CLI_EXIT_FAILURE;
        } else {
            printf("%s: up to date\n", path);
        }
        goto cleanup;
    }
    rc = write_text(path, md);
    if (rc == CLI_EXIT_OK)
        printf("wrote %s (%zu bytes)\n", path, strlen(md));
cleanup:
    free(old);
    free(path);
    free(md);
    free(dir);
    return rc;
}

const cli_verb cli_verb_context = {
    .name = "context",
    .alias = NULL,
    .usage = "render COMPONENT [--output FILE | --stdout] [--check]",
    .summary = "render a component's AGENTS.md from its context files",
    .description =
        "render writes <component>/AGENTS.md from context/context.json,\n"
        "context/agent-config.json and interface.json: purpose, interfaces, design\n"
        "decisions, dependencies, known issues, performance and security notes, how to\n"
        "build and test, responsibilities, constraints, autonomy and escalation. Coding\n"
        "agents read AGENTS.md, so they pick the context up. COMPONENT is a name under\n"
        "<root>/components or a component directory. --check writes nothing and exits 1\n"
        "when the file differs from what would be written (for CI).\n",
    .options = options,
    .min_positional = 1,
    .max_positional = 2,
    .examples = "  mstack context render user-service\n"
                "  mstack context render components/user-service --check\n"
                "  mstack context render notification-service --stdout | less\n",
    .run = run,
};
