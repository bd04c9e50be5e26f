/*
 * cmd_agent.c - `mstack agent COMPONENT...`: run the agents of components.
 *
 * One process, one bus, one registry (<root>/.mainstack/registry.db) and one
 * proc runner shared by an ms_agent per component (agent.h). Each decision
 * and each pipeline's end is printed as it happens (a line, or a JSON line
 * with --json). SIGTERM/SIGINT stop the agents: what was taken is decided,
 * running pipelines get --shutdown-timeout to finish, then exit 0.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_AGENTS 64

static const cli_option options[] = {
    {"nats", 's', "URL", false, "NATS server (default: $NATS_URL, else " CLI_DEFAULT_NATS_URL ")"},
    {"root", 'C', "DIR", false, "the project root (default: found from the current directory)"},
    {"no-durable", 0, NULL, false,
     "read control events as plain subscriptions (no JetStream: events sent while the agent is "
     "down are missed)"},
    {"evaluator", 0, "PROGRAM", false, "consult this evaluator command on each decision"},
    {"evaluator-arg", 0, "ARG", true, "an argument of the evaluator command (repeatable)"},
    {"evaluator-timeout", 0, "MS", false, "time limit of the evaluator (default 10000)"},
    {"shutdown-timeout", 0, "MS", false,
     "on SIGTERM, how long running pipelines may take before they are killed (default 30000)"},
    {"json", 0, NULL, false, "print one JSON object per event"},
    {NULL, 0, NULL, false, NULL},
};

static pthread_mutex_t print_mu = PTHREAD_MUTEX_INITIALIZER;
static bool json_out;

/* Called on agent worker and runner threads: one line per event. */
static void on_event(const ms_agent_event *ev, void *closure)
{
    (void)closure;
    pthread_mutex_lock(&print_mu);
    if (json_out) {
        json_t *j =
            ev->kind == MS_AGENT_DECIDED
                ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:b}", "event", "decision", "component",
                            ev->component, "decision", ms_verdict_str(ev->decision->verdict),
                            "rule", ev->decision->rule, "reason", ev->decision->reason,
                            "decision_id", (json_int_t)ev->decision_id, "fresh", ev->fresh)
                : json_pack("{s:s,s:s,s:I,s:s}", "event", "run", "component", ev->component,
                            "run_id", (json_int_t)ev->run_id, "state", ev->run_state);
        if (j != NULL && ev->event_subject != NULL)
            json_object_set_new(j, "subject", json_string(ev->event_subject));
        if (j != NULL)
            cli_print_json(j, false);
        json_decref(j);
    } else if (ev->kind == MS_AGENT_DECIDED && !ev->fresh) {
        printf("%s: %s was decided before (decision %lld): nothing done again\n", ev->component,
               ev->event_subject, (long long)ev->decision_id);
    } else if (ev->kind == MS_AGENT_DECIDED) {
        printf("%s: %s on %s by %s (decision %lld): %s\n", ev->component,
               ms_verdict_str(ev->decision->verdict), ev->event_subject, ev->decision->rule,
               (long long)ev->decision_id, ev->decision->reason);
    } else {
        printf("%s: run %lld %s\n", ev->component, (long long)ev->run_id, ev->run_state);
    }
    fflush(stdout);
    pthread_mutex_unlock(&print_mu);
}

static int run(const cli_verb *verb, const cli_args *a)
{
    char root[4096], dir[4600], exe[4096], *regpath = NULL;
    const char *const *eargs = NULL;
    const char *evaluator = cli_opt(a, "evaluator");
    const char **eargv = NULL;
    size_t neargs = cli_opt_all(a, "evaluator-arg", &eargs);
    ms_agent *agents[MAX_AGENTS] = {NULL};
    size_t nagents = 0;
    ms_registry *reg = NULL;
    ms_proc_runner *runner = NULL;
    ms_bus *bus = NULL;
    int etimeout = 10000, shutdown_ms = 30000, rc, sig = 0;
    sigset_t set;
    ms_status s;

    json_out = cli_flag(a, "json");
    if ((rc = cli_opt_int(a, "evaluator-timeout", 10000, 1, 3600000, &etimeout)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "shutdown-timeout", 30000, 0, 3600000, &shutdown_ms)) != CLI_EXIT_OK)
        return rc;
    if (a->npositional > MAX_AGENTS)
        return cli_usage_error(verb, "at most %d components at once", MAX_AGENTS);
    if (neargs > 0 && evaluator == NULL)
        return cli_usage_error(verb, "--evaluator-arg needs --evaluator");
    if ((rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc;
    cli_self_exe(exe, sizeof exe);
    /* Signals are taken by sigwait below: block them before any thread
     * exists, so every thread inherits the mask. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (evaluator != NULL) {
        if ((eargv = calloc(neargs + 2, sizeof *eargv)) == NULL) {
            cli_error("out of memory");
            return CLI_EXIT_FAILURE;
        }
        eargv[0] = evaluator;
        for (size_t i = 0; i < neargs; i++)
            eargv[i + 1] = eargs[i];
    }
    if ((s = ms_registry_default_path(root, &regpath)) != MS_OK ||
        (s = ms_registry_open(regpath, &reg)) != MS_OK) {
        cli_error("%s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    if ((s = ms_proc_runner_create(NULL, &runner)) != MS_OK) {
        cli_error("%s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    if ((rc = cli_connect(a, &bus)) != CLI_EXIT_OK)
        goto cleanup;
    for (size_t i = 0; i < a->npositional; i++) {
        ms_agent_options o;

        cli_component_dir(root, a->positional[i], dir, sizeof dir);
        ms_agent_options_init(&o);
        o.bus = bus;
        o.registry = reg;
        o.runner = runner;
        o.component_dir = dir;
        o.root = root;
        o.durable = !cli_flag(a, "no-durable");
        o.evaluator_argv = eargv;
        o.evaluator_timeout_ms = etimeout;
        o.on_event = on_event;
        o.deploy_program = exe; /* version add and deploy: this very program */
        o.deploy_nats_url = cli_client_url(a);
        if ((s = ms_agent_create(&o, &agents[nagents])) != MS_OK) {
            cli_error("agent for %s: %s", a->positional[i], ms_last_error());
            rc = CLI_EXIT_FAILURE;
            goto cleanup;
        }
        nagents++;
    }
    for (size_t i = 0; i < nagents; i++) {
        if ((s = ms_agent_start(agents[i])) != MS_OK) {
            cli_error("%s", ms_last_error());
            if (s == MS_ERR_UNSUPPORTED)
                fprintf(stderr, "mstack: start nats-server with -js, or pass --no-durable\n");
            rc = cli_exit_code(s);
            goto cleanup;
        }
    }
    pthread_mutex_lock(&print_mu);
    if (json_out) {
        json_t *j = json_pack("{s:s,s:s,s:s,s:[]}", "event", "watching", "nats", cli_client_url(a),
                              "registry", regpath, "components");
        for (size_t i = 0; j != NULL && i < nagents; i++)
            json_array_append_new(json_object_get(j, "components"),
                                  json_string(ms_agent_component(agents[i])));
        if (j != NULL)
            cli_print_json(j, false);
        json_decref(j);
    } else {
        printf("watching on %s, recording in %s:", cli_client_url(a), regpath);
        for (size_t i = 0; i < nagents; i++)
            printf(" %s", ms_agent_component(agents[i]));
        printf("\n");
    }
    fflush(stdout);
    pthread_mutex_unlock(&print_mu);

    while (sigwait(&set, &sig) == 0 && sig == SIGHUP)
        ; /* nothing to reload: context files are read at start */
    rc = CLI_EXIT_OK;
    for (size_t i = 0; i < nagents; i++)
        if (ms_agent_stop(agents[i], shutdown_ms) != MS_OK)
            cli_error("%s", ms_last_error());
    if (!json_out)
        printf("stopped (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
cleanup:
    for (size_t i = 0; i < nagents; i++)
        ms_agent_destroy(agents[i]);
    ms_proc_runner_destroy(runner);
    if (bus != NULL)
        (void)ms_bus_drain(bus, 2000);
    ms_bus_destroy(bus);
    ms_registry_close(reg);
    free(regpath);
    free(eargv);
    return rc;
}

const cli_verb cli_verb_agent = {
    .name = "agent",
    .alias = NULL,
    .usage = "COMPONENT... [options]",
    .summary = "run the agents of components: decide, act, escalate",
    .description =
        "Runs one agent per COMPONENT (a name under <root>/components/, or a directory\n"
        "holding context/). Each agent reads the framework's control events through a\n"
        "durable JetStream consumer (agent-<component>: what was sent while it was down\n"
        "is read when it comes back) and its other monitored topics, decides each by its\n"
        "agent-config.json rules (docs/context.md), records the decision in\n"
        "<root>/.mainstack/registry.db and publishes it on\n"
        "mainstack.agent.<component>.decision. act runs the change, build and test\n"
        "commands (no shell; the input as JSON on stdin; logs under\n"
        "<root>/.mainstack/runs/), then, when agent-config.json has actions.deploy,\n"
        "`mstack version add` and `mstack deploy` (promoting only when autonomy.may_deploy;\n"
        "otherwise the tested candidate waits for an approval); escalate, or a failing\n"
        "step, opens an escalation (mstack escalations). SIGTERM or SIGINT stops it.\n",
    .options = options,
    .min_positional = 1,
    .max_positional = MAX_AGENTS,
    .examples = "  mstack agent user-service notification-service --nats nats://127.0.0.1:4222\n"
                "  mstack agent user-service --evaluator ./ask-llm --evaluator-arg --model=small\n",
    .run = run,
};
