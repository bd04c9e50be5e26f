/*
 * cmd_check.c - `mstack check [PATH...]`: check every component's context
 * files, and the stack they form (ms_check_stack, docs/context.md).
 *
 * Prints one line per finding (file:line:column for syntax, file: /pointer
 * for the rest) and a summary on stdout, or the report as JSON. Exit 0 when
 * no error was found (warnings too, unless --strict), 1 on any error, 2 on
 * a bad PATH or option.
 */
#include <stdlib.h>

#include "cli.h"

static const cli_option options[] = {
    {"schemas", 0, "DIR", false,
     "the JSON Schemas (default: <root>/schemas, else the installed share/mainstack/schemas)"},
    {"strict", 0, NULL, false, "exit 1 on warnings too"},
    {"quiet", 'q', NULL, false, "print only the findings, no summary"},
    {"json", 0, NULL, false, "print the report as JSON"},
    {NULL, 0, NULL, false, NULL},
};

static int run(const cli_verb *verb, const cli_args *a)
{
    ms_check_options opt = {.schemas_dir = cli_opt(a, "schemas")};
    ms_check_report *r = NULL;
    size_t errors, warnings, ncomp;
    ms_status s;
    int rc;

    s = ms_check_stack(a->positional, a->npositional, &opt, &r);
    if (s == MS_ERR_NOT_FOUND)
        return cli_usage_error(verb, "%s", ms_last_error());
    if (s != MS_OK) {
        cli_error("check: %s", ms_last_error());
        return CLI_EXIT_FAILURE;
    }
    errors = ms_check_report_errors(r);
    warnings = ms_check_report_warnings(r);
    ncomp = ms_check_report_component_count(r);
    if (cli_flag(a, "json")) {
        json_t *out = NULL;
        if (ms_check_report_to_json(r, &out) != MS_OK) {
            cli_error("check: %s", ms_last_error());
            ms_check_report_destroy(r);
            return CLI_EXIT_FAILURE;
        }
        cli_print_json(out, true);
        json_decref(out);
    } else {
        for (size_t i = 0; i < ms_check_report_count(r); i++) {
            char line[4096];
            ms_check_finding_format(ms_check_report_at(r, i), line, sizeof line);
            puts(line);
        }
        if (!cli_flag(a, "quiet")) {
            printf("%zu component%s checked (", ncomp, ncomp == 1 ? "" : "s");
            for (size_t i = 0; i < ncomp; i++)
                printf("%s%s", i ? ", " : "", ms_check_report_component_at(r, i));
            printf("): %zu error%s, %zu warning%s\n", errors, errors == 1 ? "" : "s", warnings,
                   warnings == 1 ? "" : "s");
        }
    }
    rc = errors > 0 || (warnings > 0 && cli_flag(a, "strict")) ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
    ms_check_report_destroy(r);
    return rc;
}

const cli_verb cli_verb_check = {
    .name = "check",
    .alias = NULL,
    .usage = "[PATH...] [options]",
    .summary = "check the components' context files and the stack they form",
    .description =
        "Checks context/context.json, context/agent-config.json and interface.json of\n"
        "every component: syntax (file:line:column), the JSON Schemas (file: /pointer),\n"
        "the loaders' own checks, then the stack as a whole: names and versions agree,\n"
        "every consumed interface and component dependency is in the stack and within\n"
        "its range, and every agent rule can match and is not shadowed. A PATH is a\n"
        "component directory, a components directory, or a project root; without one,\n"
        "the components/ of the project root above the current directory. Errors make\n"
        "the exit status 1; warnings do not, unless --strict. Finding codes are listed\n"
        "in docs/context.md.\n",
    .options = options,
    .min_positional = 0,
    .max_positional = 64,
    .examples = "  mstack check\n"
                "  mstack check components/user-service --strict\n"
                "  mstack check --json | jq '.findings[] | select(.level == \"error\")'\n",
    .run = run,
};
