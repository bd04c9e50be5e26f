/*
 * args.c - the option parser of every mstack verb, and the verb help.
 *
 * Each verb declares a table of options (cli_option); this file matches
 * argv against it: "--name value", "--name=value", "-n value", flags,
 * repeatable options, "--" to end options, "-" as a positional (stdin),
 * and -h/--help anywhere. Anything else that starts with '-' is an
 * unknown option: a usage error that names it and points at --help.
 * The help of a verb is generated from the same table, so the two never
 * disagree.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static size_t option_count(const cli_verb *verb)
{
    size_t n = 0;
    while (verb->options != NULL && verb->options[n].name != NULL)
        n++;
    return n;
}

/* Index of the option called name (len bytes), or -1. */
static int find_long(const cli_verb *verb, const char *name, size_t len)
{
    for (size_t i = 0; verb->options != NULL && verb->options[i].name != NULL; i++) {
        if (strlen(verb->options[i].name) == len && strncmp(verb->options[i].name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

static int find_short(const cli_verb *verb, char c)
{
    for (size_t i = 0; verb->options != NULL && verb->options[i].name != NULL; i++) {
        if (verb->options[i].short_name == c)
            return (int)i;
    }
    return -1;
}

/* Record one value (or, for a flag, one occurrence) of option i. */
static int record(const cli_verb *verb, cli_args *a, int i, const char *value)
{
    const cli_option *o = &verb->options[i];
    if (!o->repeat) {
        a->count[i] = 1;
        a->values[i][0] = value;
        return CLI_EXIT_OK;
    }
    if (a->count[i] >= CLI_MAX_REPEAT)
        return cli_usage_error(verb, "--%s given more than %d times", o->name, CLI_MAX_REPEAT);
    a->values[i][a->count[i]++] = value;
    return CLI_EXIT_OK;
}

int cli_args_parse(const cli_verb *verb, int argc, char **argv, cli_args *out)
{
    bool options_done = false;

    memset(out, 0, sizeof *out);
    out->verb = verb;
    if (option_count(verb) > CLI_MAX_OPTIONS) {
        cli_error("internal: verb %s has too many options", verb->name);
        return CLI_EXIT_FAILURE;
    }
    out->positional = calloc((size_t)(argc > 0 ? argc : 1), sizeof *out->positional);
    if (out->positional == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    for (int k = 0; k < argc; k++) {
        const char *arg = argv[k];
        int i;
        const char *value = NULL;

        if (options_done || arg[0] != '-' || strcmp(arg, "-") == 0) {
            out->positional[out->npositional++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            cli_print_verb_help(verb, stdout);
            return -1;
        }
        if (arg[1] == '-') {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
            i = find_long(verb, name, len);
            if (i < 0)
                return cli_usage_error(verb, "unknown option '--%.*s'", (int)len, name);
            if (eq != NULL) {
                if (verb->options[i].arg == NULL)
                    return cli_usage_error(verb, "option --%s takes no value",
                                           verb->options[i].name);
                value = eq + 1;
            }
        } else {
            if (arg[2] != '\0' || (i = find_short(verb, arg[1])) < 0)
                return cli_usage_error(verb, "unknown option '%s'", arg);
        }
        if (verb->options[i].arg != NULL && value == NULL) {
            if (k + 1 >= argc)
                return cli_usage_error(verb, "option --%s needs a value (%s)",
                                       verb->options[i].name, verb->options[i].arg);
            value = argv[++k];
        }
        int rc = record(verb, out, i, value);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    if (out->npositional < verb->min_positional)
        return cli_usage_error(verb, "missing argument: usage: mstack %s %s", verb->name,
                               verb->usage);
    if (out->npositional > verb->max_positional)
        return cli_usage_error(verb, "unexpected argument '%s': usage: mstack %s %s",
                               out->positional[verb->max_positional], verb->name, verb->usage);
    return CLI_EXIT_OK;
}

void cli_args_reset(cli_args *a)
{
    if (a == NULL)
        return;
    free(a->positional);
    memset(a, 0, sizeof *a);
}

bool cli_has_option(const cli_verb *verb, const char *name)
{
    return find_long(verb, name, strlen(name)) >= 0;
}

static int index_of(const cli_args *a, const char *name)
{
    int i = find_long(a->verb, name, strlen(name));
    if (i < 0) {
        /* A verb asking for an option it does not declare is a bug here. */
        cli_error("internal: verb %s has no option --%s", a->verb->name, name);
        abort();
    }
    return i;
}

const char *cli_opt(const cli_args *a, const char *name)
{
    int i = index_of(a, name);
    if (a->count[i] == 0)
        return NULL;
    return a->values[i][a->verb->options[i].repeat ? a->count[i] - 1 : 0];
}

bool cli_flag(const cli_args *a, const char *name)
{
    return a->count[index_of(a, name)] > 0;
}

size_t cli_opt_all(const cli_args *a, const char *name, const char *const **values)
{
    int i = index_of(a, name);
    *values = a->values[i];
    return a->count[i];
}

int cli_opt_int(const cli_args *a, const char *name, int def, int min, int max, int *out)
{
    const char *v = cli_opt(a, name);
    char *end = NULL;
    long n;

    if (v == NULL) {
        *out = def;
        return CLI_EXIT_OK;
    }
    errno = 0;
    n = strtol(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || errno != 0)
        return cli_usage_error(a->verb, "--%s: '%s' is not a whole number", name, v);
    if (n < min || n > max)
        return cli_usage_error(a->verb, "--%s: %ld is out of range (%d..%d)", name, n, min, max);
    *out = (int)n;
    return CLI_EXIT_OK;
}

void cli_print_verb_help(const cli_verb *verb, FILE *f)
{
    size_t width = strlen("-h, --help");

    fprintf(f, "Usage: mstack %s %s\n\n%s\n", verb->name, verb->usage, verb->summary);
    if (verb->description != NULL)
        fprintf(f, "\n%s", verb->description);
    for (size_t i = 0; verb->options != NULL && verb->options[i].name != NULL; i++) {
        const cli_option *o = &verb->options[i];
        size_t w = 4 + 2 + strlen(o->name) + (o->arg != NULL ? 1 + strlen(o->arg) : 0);
        if (w > width)
            width = w;
    }
    fprintf(f, "\nOptions:\n");
    for (size_t i = 0; verb->options != NULL && verb->options[i].name != NULL; i++) {
        const cli_option *o = &verb->options[i];
        char left[128];
        if (o->short_name != 0)
            snprintf(left, sizeof left, "-%c, --%s%s%s", o->short_name, o->name,
                     o->arg != NULL ? " " : "", o->arg != NULL ? o->arg : "");
        else
            snprintf(left, sizeof left, "    --%s%s%s", o->name, o->arg != NULL ? " " : "",
                     o->arg != NULL ? o->arg : "");
        fprintf(f, "  %-*s  %s%s\n", (int)width, left, o->help, o->repeat ? " (repeatable)" : "");
    }
    fprintf(f, "  %-*s  %s\n", (int)width, "-h, --help", "show this help");
    if (verb->examples != NULL)
        fprintf(f, "\nExamples:\n%s", verb->examples);
    fprintf(f, "\n");
    cli_print_exit_codes(f);
}
