/*
 * cmd_escalations.c - `mstack escalations [list | show ID | resolve ID
 * --approve | --reject]`: what the agents could not decide or do alone.
 *
 * Reads and resolves escalations in the registry (<root>/.mainstack/
 * registry.db). Approving one resumes its work in this process
 * (ms_agent_resolve_escalation: an escalated decision runs the pipeline, a
 * failed run resumes at the step that failed) and prints how it ended;
 * every resolution is written to the registry's audit log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_option options[] = {
    {"root", 'C', "DIR", false, "the project root (default: found from the current directory)"},
    {"component", 'c', "NAME", false, "list: only this component's"},
    {"state", 0, "STATE", false, "list: open (default), approved, rejected or all"},
    {"limit", 'n', "N", false, "list: at most N, newest first (default 50)"},
    {"approve", 0, NULL, false, "resolve: approve (the work resumes)"},
    {"reject", 0, NULL, false, "resolve: reject (nothing more is done)"},
    {"note", 0, "TEXT", false, "resolve: why"},
    {"by", 0, "NAME", false, "resolve: who (default: $USER)"},
    {"nats", 's', "URL", false,
     "resolve: NATS server for what the resumed work publishes (default: $NATS_URL; "
     "without one nothing is published)"},
    {"json", 0, NULL, false, "print JSON"},
    {NULL, 0, NULL, false, NULL},
};

static int parse_id(const cli_verb *verb, const char *arg, int64_t *out)
{
    char *end = NULL;
    long long v = strtoll(arg, &end, 10);

    if (end == arg || *end != '\0' || v <= 0)
        return cli_usage_error(verb, "'%s' is not an escalation id (a positive number)", arg);
    *out = v;
    return CLI_EXIT_OK;
}

static void print_one(const json_t *e)
{
    const json_t *detail = json_object_get(e, "detail");

    printf("escalation %lld  %s  %s\n", (long long)json_integer_value(json_object_get(e, "id")),
           json_string_value(json_object_get(e, "component")),
           json_string_value(json_object_get(e, "state")));
    printf("  opened:   %s\n", json_string_value(json_object_get(e, "time")));
    printf("  reason:   %s\n", json_string_value(json_object_get(e, "reason")));
    if (json_is_integer(json_object_get(e, "decision_id")))
        printf("  decision: %lld\n",
               (long long)json_integer_value(json_object_get(e, "decision_id")));
    if (json_is_string(json_object_get(detail, "step")))
        printf("  step:     %s (run %lld, log %s)\n",
               json_string_value(json_object_get(detail, "step")),
               (long long)json_integer_value(json_object_get(detail, "run_id")),
               json_string_value(json_object_get(detail, "log")));
    const char *subject = json_string_value(
        json_object_get(json_object_get(json_object_get(detail, "input"), "message"), "subject"));
    if (subject != NULL)
        printf("  event:    %s\n", subject);
    if (json_is_string(json_object_get(e, "resolved_by")))
        printf("  resolved: %s by %s%s%s\n", json_string_value(json_object_get(e, "resolved_time")),
               json_string_value(json_object_get(e, "resolved_by")),
               json_is_string(json_object_get(e, "note")) ? ": " : "",
               json_is_string(json_object_get(e, "note"))
                   ? json_string_value(json_object_get(e, "note"))
                   : "");
    if (json_is_string(json_object_get(detail, "output_tail")))
        printf("  output (tail):\n%s\n", json_string_value(json_object_get(detail, "output_tail")));
}

static int list(const cli_verb *verb, const cli_args *a, ms_registry *reg)
{
    const char *state = cli_opt(a, "state");
    json_t *rows = NULL;
    cli_table t;
    int limit = 50, rc;
    ms_status s;

    if ((rc = cli_opt_int(a, "limit", 50, 1, 1000, &limit)) != CLI_EXIT_OK)
        return rc;
    if (state == NULL)
        state = "open";
    if (strcmp(state, "all") == 0)
        state = NULL;
    s = ms_registry_escalations(reg, cli_opt(a, "component"), state, 0, (size_t)limit, &rows);
    if (s == MS_ERR_INVALID_ARG)
        return cli_usage_error(verb, "%s (or all)", ms_last_error());
    if (s != MS_OK) {
        cli_error("%s", ms_last_error());
        return cli_exit_code(s);
    }
    if (cli_flag(a, "json")) {
        cli_print_json(rows, true);
        json_decref(rows);
        return CLI_EXIT_OK;
    }
    static const char *const headers[] = {"ID", "COMPONENT", "STATE", "OPENED", "REASON"};
    if (cli_table_init(&t, 5, headers) != CLI_EXIT_OK) {
        json_decref(rows);
        return CLI_EXIT_FAILURE;
    }
    for (size_t i = 0; i < json_array_size(rows); i++) {
        const json_t *e = json_array_get(rows, i);
        char id[32], reason[100];
        const char *r = json_string_value(json_object_get(e, "reason"));

        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(e, "id")));
        snprintf(reason, sizeof reason, "%.96s%s", r ? r : "", r && strlen(r) > 96 ? "..." : "");
        const char *cells[] = {id, json_string_value(json_object_get(e, "component")),
                               json_string_value(json_object_get(e, "state")),
                               json_string_value(json_object_get(e, "time")), reason};
        (void)cli_table_add(&t, cells);
    }
    if (t.nrows == 0)
        printf("no %s escalations\n", state ? state : "");
    else
        cli_table_print(&t, stdout);
    cli_table_reset(&t);
    json_decref(rows);
    return CLI_EXIT_OK;
}

static int resolve(const cli_verb *verb, const cli_args *a, ms_registry *reg, const char *root,
                   int64_t id)
{
    bool approve = cli_flag(a, "approve"), reject = cli_flag(a, "reject");
    const char *by = cli_opt(a, "by"), *url;
    char actor[160], run_state[16] = "", exe[4096];
    json_t *e = NULL, *detail;
    ms_agent_options o;
    ms_bus *bus = NULL;
    ms_status s;

    if (approve == reject)
        return cli_usage_error(verb, "resolve needs exactly one of --approve and --reject");
    if (by == NULL)
        by = getenv("USER") ? getenv("USER") : "unknown";
    snprintf(actor, sizeof actor, "cli:%s", by);
    if ((s = ms_registry_escalation_get(reg, id, &e)) != MS_OK) {
        cli_error("%s", ms_last_error());
        return cli_exit_code(s);
    }
    /* The resumed work may publish (decisions, escalations): connect when a
     * server is named, but resolving does not need one. */
    url = cli_opt(a, "nats") ? cli_opt(a, "nats") : getenv("NATS_URL");
    if (approve && url != NULL && url[0] != '\0' && ms_bus_connect_url(url, &bus) != MS_OK) {
        fprintf(stderr, "mstack: warning: %s: the resumed work will not publish\n",
                ms_last_error());
        bus = NULL;
    }
    ms_agent_options_init(&o);
    o.bus = bus;
    o.registry = reg;
    o.root = root;
    o.agent_id = actor;
    cli_self_exe(exe, sizeof exe);
    o.deploy_program = exe; /* a resumed pipeline's version and deploy steps */
    o.deploy_nats_url = url != NULL && url[0] != '\0' ? url : NULL;
    if (approve)
        printf("approving escalation %lld: resuming the work...\n", (long long)id);
    fflush(stdout);
    s = ms_agent_resolve_escalation(&o, id, approve, cli_opt(a, "note"), by, run_state);
    detail = json_pack("{s:I,s:s}", "escalation_id", (json_int_t)id, "resolution",
                       approve ? "approved" : "rejected");
    if (detail != NULL && run_state[0] != '\0')
        json_object_set_new(detail, "run_state", json_string(run_state));
    (void)ms_registry_audit(reg, actor, "escalation.resolve",
                            json_string_value(json_object_get(e, "component")),
                            s == MS_OK ? "ok" : ms_last_error(), detail);
    json_decref(detail);
    if (s != MS_OK) {
        cli_error("%s", ms_last_error());
    } else if (cli_flag(a, "json")) {
        json_t *out = json_pack("{s:I,s:s,s:s}", "id", (json_int_t)id, "state",
                                approve ? "approved" : "rejected", "run_state", run_state);
        cli_print_json(out, false);
        json_decref(out);
    } else if (!approve) {
        printf("escalation %lld rejected\n", (long long)id);
    } else if (run_state[0] == '\0') {
        printf("escalation %lld approved (nothing was recorded to resume)\n", (long long)id);
    } else {
        printf("escalation %lld approved; the resumed run %s\n", (long long)id, run_state);
    }
    json_decref(e);
    if (bus != NULL)
        (void)ms_bus_drain(bus, 2000);
    ms_bus_destroy(bus);
    if (s == MS_OK && strcmp(run_state, "escalated") == 0)
        return CLI_EXIT_FAILURE; /* it failed again: a new escalation says why */
    return cli_exit_code(s);
}

static int run(const cli_verb *verb, const cli_args *a)
{
    const char *sub = a->npositional > 0 ? a->positional[0] : "list";
    char root[4096], *regpath = NULL;
    ms_registry *reg = NULL;
    int64_t id = 0;
    int rc;
    ms_status s;

    if (strcmp(sub, "list") == 0) {
        if (a->npositional > 1)
            return cli_usage_error(verb, "list takes no argument");
    } else if (strcmp(sub, "show") == 0 || strcmp(sub, "resolve") == 0) {
        if (a->npositional != 2)
            return cli_usage_error(verb, "%s needs an escalation ID", sub);
        if ((rc = parse_id(verb, a->positional[1], &id)) != CLI_EXIT_OK)
            return rc;
    } else {
        return cli_usage_error(verb, "unknown sub-command '%s' (list, show or resolve)", sub);
    }
    if ((rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc;
    if ((s = ms_registry_default_path(root, &regpath)) != MS_OK ||
        (s = ms_registry_open(regpath, &reg)) != MS_OK) {
        cli_error("%s", ms_last_error());
        free(regpath);
        return CLI_EXIT_FAILURE;
    }
    if (strcmp(sub, "list") == 0) {
        rc = list(verb, a, reg);
    } else if (strcmp(sub, "show") == 0) {
        json_t *e = NULL;

        s = ms_registry_escalation_get(reg, id, &e);
        if (s != MS_OK) {
            cli_error("%s", ms_last_error());
            rc = cli_exit_code(s);
        } else {
            if (cli_flag(a, "json"))
                cli_print_json(e, true);
            else
                print_one(e);
            rc = CLI_EXIT_OK;
        }
        json_decref(e);
    } else {
        rc = resolve(verb, a, reg, root, id);
    }
    ms_registry_close(reg);
    free(regpath);
    return rc;
}

const cli_verb cli_verb_escalations = {
    .name = "escalations",
    .alias = "esc",
    .usage = "[list | show ID | resolve ID --approve|--reject] [options]",
    .summary = "list, show and resolve what the agents escalated",
    .description =
        "Escalations are what an agent could not decide or do alone: a breaking change,\n"
        "a change beyond its autonomy, a failing step of its pipeline. They are kept in\n"
        "<root>/.mainstack/registry.db. resolve --approve resumes the work here and now:\n"
        "an escalated decision runs the change, build and test commands, a failed run\n"
        "resumes at the step that failed, a candidate ready to deploy (or a failed deploy)\n"
        "is deployed by mstack deploy, promoting: the approval is the permission; --reject\n"
        "closes it. An escalation is resolved once: resolving it again fails and says by\n"
        "whom it was.\n",
    .options = options,
    .min_positional = 0,
    .max_positional = 2,
    .examples = "  mstack escalations\n"
                "  mstack escalations show 3\n"
                "  mstack escalations resolve 3 --approve --note 'migration reviewed'\n",
    .run = run,
};
