/*
 * cmd_mcp.c - `mstack mcp`: mainstack's Model Context Protocol server over
 * stdio, for AI clients. The option handling is here; the server is in
 * cli/mcp/ (mcp.h describes it).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "mcp/mcp.h"

static const cli_option options[] = {
    {"component", 'c', "NAME", false, "serve only this component's tools and resources"},
    {"nats", 's', "URL", false, "NATS server (default: $NATS_URL, else " CLI_DEFAULT_NATS_URL ")"},
    {"root", 'r', "DIR", false, "project root (default: the current directory)"},
    {NULL, 0, NULL, false, NULL},
};

static int run(const cli_verb *verb, const cli_args *a)
{
    const char *component = cli_opt(a, "component");
    const char *root = cli_opt(a, "root");
    const char *url = cli_client_url(a);
    char comp_dir[4096];
    struct stat st;
    int rc;

    if (root == NULL)
        root = ".";
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode))
        return cli_usage_error(verb, "--root %s is not a directory", root);
    if (strncmp(url, "inproc://", 9) == 0)
        return cli_usage_error(verb,
                               "%s is an in-process bus: mstack mcp needs the NATS server the "
                               "components run on (--nats nats://host:port)",
                               url);
    if (component != NULL) {
        if ((rc = cli_check_name(verb, "--component", component, true)) != CLI_EXIT_OK)
            return rc;
        snprintf(comp_dir, sizeof comp_dir, "%s/components/%s/interface.json", root, component);
        if (stat(comp_dir, &st) != 0)
            return cli_usage_error(verb, "no component %s in %s (expected %s)", component, root,
                                   comp_dir);
    }
    return mcp_server_run(root, component, url);
}

const cli_verb cli_verb_mcp = {
    .name = "mcp",
    .alias = NULL,
    .usage = "[--component NAME] [--nats URL] [--root DIR]",
    .summary = "serve the project to AI clients (Model Context Protocol over stdio)",
    .description =
        "Runs an MCP server on stdin/stdout (JSON-RPC 2.0, one message per line) for an AI\n"
        "client that starts it: tools to list components and read their context, talk to\n"
        "running components over NATS (publish_message, request, health, services) and\n"
        "read and resolve the registry's decisions and escalations; each component's\n"
        "context, agent config, interface and AGENTS.md as resources, plus its live open\n"
        "escalations; prompts maintain_component and review_escalation. Speaks protocol\n"
        "revisions 2024-11-05 to 2025-11-25 (initialize) and 2026-07-28 (per-request\n"
        "_meta, server/discover). Logs go to stderr; it exits at the end of stdin or on\n"
        "SIGTERM. With --component only that component is visible. File access stays\n"
        "inside the project root; state-changing calls are recorded in the registry's\n"
        "audit log (<root>/.mainstack/registry.db) with the client's name.\n",
    .options = options,
    .min_positional = 0,
    .max_positional = 0,
    .examples = "  mstack mcp --root ~/src/stack --nats nats://127.0.0.1:4222\n"
                "  mstack mcp --component user-service\n",
    .run = run,
};
