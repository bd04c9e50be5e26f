/*
 * main.c - the mstack command: picks the verb and runs it.
 *
 *   mstack [--help | --version] | help [VERB] | VERB [options] [arguments]
 *
 * The verbs live in cmd_<verb>.c, each a cli_verb (its options, help and
 * run function); this file only dispatches, prints the top-level help with
 * the exit codes and the environment, and the version.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_verb *const verbs[] = {
    &cli_verb_run,         &cli_verb_publish,  &cli_verb_request, &cli_verb_health,
    &cli_verb_services,    &cli_verb_check,    &cli_verb_context, &cli_verb_agent,
    &cli_verb_escalations, &cli_verb_mcp,      &cli_verb_version, &cli_verb_versions,
    &cli_verb_deploy,      &cli_verb_rollback, &cli_verb_history, &cli_verb_test_host,
};
#define NVERBS (sizeof verbs / sizeof verbs[0])

/* "run, publish, ..." from the table. */
static const char *verb_names(char *buf, size_t cap)
{
    size_t n = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < NVERBS && n < cap; i++)
        if (!verbs[i]->hidden)
            n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", verbs[i]->name);
    return buf;
}

static const cli_verb *find_verb(const char *name)
{
    for (size_t i = 0; i < NVERBS; i++) {
        if (strcmp(verbs[i]->name, name) == 0 ||
            (verbs[i]->alias != NULL && strcmp(verbs[i]->alias, name) == 0))
            return verbs[i];
    }
    return NULL;
}

void cli_print_exit_codes(FILE *f)
{
    fputs("Exit codes:\n"
          "  0  success\n"
          "  1  failure (a component could not be loaded, an I/O error, ...)\n"
          "  2  usage error: unknown verb or option, missing or bad argument, malformed JSON\n"
          "  3  timeout: no reply within --timeout\n"
          "  4  no responders: nothing subscribes to the subject, or nobody answered\n"
          "  5  remote error: the service answered with an error (Nats-Service-Error)\n"
          "  6  cannot connect: no NATS server at the URL, or it refused the credentials\n"
          "  7  unhealthy: mstack health found an instance unhealthy or not running\n",
          f);
}

void cli_print_main_help(FILE *f)
{
    fputs("Usage: mstack VERB [options] [arguments]\n"
          "       mstack help VERB | mstack VERB --help\n"
          "       mstack --version\n"
          "\n"
          "mstack runs mainstack components and talks to them over NATS, checks their\n"
          "context files, runs their agents and serves them to AI clients (MCP).\n"
          "\n"
          "Verbs:\n",
          f);
    for (size_t i = 0; i < NVERBS; i++) {
        char name[32];
        if (verbs[i]->hidden)
            continue;
        if (verbs[i]->alias != NULL)
            snprintf(name, sizeof name, "%s (%s)", verbs[i]->name, verbs[i]->alias);
        else
            snprintf(name, sizeof name, "%s", verbs[i]->name);
        fprintf(f, "  %-18s %s\n", name, verbs[i]->summary);
    }
    fputs("\n"
          "Every verb takes --help; those that print results take --json for machine\n"
          "output (one JSON document on stdout). Diagnostics go to stderr.\n"
          "\n"
          "Environment:\n"
          "  NATS_URL                  server URL when --nats is not given (run: without\n"
          "                            either, components run in-process, inproc://mainstack;\n"
          "                            the other verbs use " CLI_DEFAULT_NATS_URL ")\n"
          "  MAINSTACK_COMPONENT_PATH  ':'-separated directories searched first for\n"
          "                            component names (see mstack run --help)\n"
          "  MAINSTACK_DATA_DIR        root of the components' data directories (run)\n"
          "  MAINSTACK_LOG             log level: trace, debug, info, warn (default), error, off\n"
          "\n",
          f);
    cli_print_exit_codes(f);
    fputs("\nDocumentation: docs/cli.md\n", f);
}

int main(int argc, char **argv)
{
    const cli_verb *verb;
    cli_args args;
    int rc;

    if (argc < 2) {
        cli_print_main_help(stderr);
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        cli_print_main_help(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || (strcmp(argv[1], "version") == 0 && argc == 2)) {
        printf("mstack %s (libmainstack %s, component ABI %d)\n", MS_VERSION_STRING, ms_version(),
               MS_COMPONENT_ABI);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "help") == 0) {
        if (argc < 3) {
            cli_print_main_help(stdout);
            return CLI_EXIT_OK;
        }
        verb = find_verb(argv[2]);
        if (verb == NULL) {
            char names[256];
            cli_error("unknown verb '%s'. Verbs: %s (mstack --help)", argv[2],
                      verb_names(names, sizeof names));
            return CLI_EXIT_USAGE;
        }
        cli_print_verb_help(verb, stdout);
        return CLI_EXIT_OK;
    }
    if (argv[1][0] == '-') {
        cli_error("unknown option '%s' (options come after the verb). Try 'mstack --help'.",
                  argv[1]);
        return CLI_EXIT_USAGE;
    }
    verb = find_verb(argv[1]);
    if (verb == NULL) {
        char names[256];
        cli_error("unknown verb '%s'. Verbs: %s. Try 'mstack --help'.", argv[1],
                  verb_names(names, sizeof names));
        return CLI_EXIT_USAGE;
    }
    rc = cli_args_parse(verb, argc - 2, argv + 2, &args);
    if (rc == CLI_EXIT_OK)
        rc = verb->run(verb, &args);
    else if (rc < 0)
        rc = CLI_EXIT_OK; /* --help */
    cli_args_reset(&args);
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        cli_error("writing the output failed");
        rc = CLI_EXIT_FAILURE;
    }
    return rc;
}
