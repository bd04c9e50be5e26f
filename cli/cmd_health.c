/*
 * cmd_health.c - `mstack health [COMPONENT]`: the health of running instances.
 *
 * Asks the runtime's health subjects and gathers every answer within the
 * timeout: mainstack.health (each host answers with all its instances) or
 * mainstack.health.<component>.get (each instance of that component
 * answers). Prints one row per instance (docs/runtime.md has the fields);
 * exits 7 when one is unhealthy or not running, 4 when nobody answered.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_option options[] = {
    {"nats", 's', "URL", false, "NATS server (default: $NATS_URL, else " CLI_DEFAULT_NATS_URL ")"},
    {"timeout", 't', "MS", false, "how long to collect answers (default 1000)"},
    {"count", 'n', "N", false, "stop after N answers (hosts, or instances of COMPONENT)"},
    {"json", 0, NULL, false, "print {\"instances\":[...]} as JSON"},
    {NULL, 0, NULL, false, NULL},
};

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

/* Add one instance status (borrowed) to the list, with the host's name. */
static int add_instance(json_t *list, const json_t *inst, const char *host_name)
{
    json_t *copy = json_deep_copy(inst);
    if (copy == NULL || !json_is_object(copy)) {
        json_decref(copy);
        return CLI_EXIT_OK; /* not an instance: ignore */
    }
    if (host_name != NULL && host_name[0] != '\0')
        json_object_set_new(copy, "host_name", json_string(host_name));
    return json_array_append_new(list, copy) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
}

/* Turn the replies into one array of instance statuses. */
static int collect(ms_message **replies, size_t n, json_t *list)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = NULL;
        const char *err = ms_message_header(replies[i], "Nats-Service-Error");
        if (err != NULL) {
            cli_error("a host answered with an error: %s", err);
            continue;
        }
        if (ms_message_json(replies[i], &v) != MS_OK) {
            cli_error("ignoring an answer that is not JSON: %s", ms_last_error());
            continue;
        }
        if (json_is_array(json_object_get(v, "instances"))) {
            size_t k;
            json_t *inst;
            json_array_foreach(json_object_get(v, "instances"), k, inst)
            {
                if (add_instance(list, inst, str(v, "name")) != CLI_EXIT_OK) {
                    json_decref(v);
                    return CLI_EXIT_FAILURE;
                }
            }
        } else if (add_instance(list, v, NULL) != CLI_EXIT_OK) {
            json_decref(v);
            return CLI_EXIT_FAILURE;
        }
        json_decref(v);
    }
    return CLI_EXIT_OK;
}

static bool is_ok(const json_t *inst)
{
    return strcmp(str(inst, "state"), "running") == 0 &&
           (strcmp(str(inst, "status"), "healthy") == 0 ||
            strcmp(str(inst, "status"), "degraded") == 0);
}

static int print_table(const json_t *list)
{
    static const char *const headers[] = {"COMPONENT", "INSTANCE", "VERSION", "STATE",
                                          "STATUS",    "RESTARTS", "HOST",    "DETAIL"};
    cli_table t;
    size_t i;
    json_t *inst;

    if (cli_table_init(&t, 8, headers) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    json_array_foreach(list, i, inst)
    {
        char restarts[24];
        const char *host =
            str(inst, "host_name")[0] != '\0' ? str(inst, "host_name") : str(inst, "host");
        snprintf(restarts, sizeof restarts, "%lld",
                 (long long)json_integer_value(json_object_get(inst, "restarts")));
        const char *cells[] = {str(inst, "component"),
                               str(inst, "instance"),
                               str(inst, "version"),
                               str(inst, "state"),
                               str(inst, "status"),
                               restarts,
                               host,
                               str(inst, "detail")};
        if (cli_table_add(&t, cells) != CLI_EXIT_OK) {
            cli_table_reset(&t);
            return CLI_EXIT_FAILURE;
        }
    }
    cli_table_sort(&t, 0, 1);
    cli_table_print(&t, stdout);
    cli_table_reset(&t);
    return CLI_EXIT_OK;
}

static int run(const cli_verb *verb, const cli_args *a)
{
    const char *component = a->npositional > 0 ? a->positional[0] : NULL;
    char subject[MS_SUBJECT_MAX + 1];
    const char *subjects[1] = {subject};
    ms_message **replies = NULL;
    size_t n = 0, bad = 0, i;
    json_t *list = NULL, *inst;
    ms_bus *bus = NULL;
    int timeout = 0, count = 0, rc;
    ms_status s;

    if ((rc = cli_opt_int(a, "timeout", 1000, 1, 600000, &timeout)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "count", 0, 0, 1000000, &count)) != CLI_EXIT_OK)
        return rc;
    if (component != NULL) {
        if ((rc = cli_check_name(verb, "COMPONENT", component, true)) != CLI_EXIT_OK)
            return rc;
        snprintf(subject, sizeof subject, "mainstack.health.%s.get", component);
    } else {
        snprintf(subject, sizeof subject, "mainstack.health");
    }
    rc = cli_connect(a, &bus);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    s = cli_gather(bus, subjects, 1, NULL, 0, timeout, (size_t)count, &replies, &n);
    if (s != MS_OK) {
        cli_error("asking %s failed: %s", subject, ms_last_error());
        rc = cli_exit_code(s);
        goto cleanup;
    }
    list = json_array();
    if (list == NULL || collect(replies, n, list) != CLI_EXIT_OK) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    if (json_array_size(list) == 0) {
        if (component != NULL)
            cli_error("no instance of %s answered %s within %d ms on %s: is it running? "
                      "(start it with 'mstack run %s'; 'mstack services' lists what runs)",
                      component, subject, timeout, cli_client_url(a), component);
        else
            cli_error("no mainstack host answered %s within %d ms on %s: start one with "
                      "'mstack run --nats URL COMPONENT...'",
                      subject, timeout, cli_client_url(a));
        rc = CLI_EXIT_NO_RESPONDERS;
        goto cleanup;
    }
    json_array_foreach(list, i, inst)
    {
        if (!is_ok(inst))
            bad++;
    }
    if (cli_flag(a, "json")) {
        json_t *out = json_pack("{s:O}", "instances", list);
        if (out != NULL)
            cli_print_json(out, false);
        json_decref(out);
    } else if (print_table(list) != CLI_EXIT_OK) {
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    if (bad > 0) {
        cli_error("%zu of %zu instance(s) unhealthy or not running", bad, json_array_size(list));
        rc = CLI_EXIT_UNHEALTHY;
    }
cleanup:
    json_decref(list);
    cli_gather_free(replies, n);
    if (bus != NULL)
        (void)ms_bus_drain(bus, 2000);
    ms_bus_destroy(bus);
    return rc;
}

const cli_verb cli_verb_health = {
    .name = "health",
    .alias = NULL,
    .usage = "[COMPONENT] [options]",
    .summary = "show the health of every running instance (or of one component's)",
    .description =
        "Asks every mainstack host on the server for the health of its instances\n"
        "(mainstack.health, or mainstack.health.COMPONENT.get) and prints one row per\n"
        "instance: component, instance id, version, state (starting, running,\n"
        "restarting, stopped, failed), status (healthy, degraded, unhealthy), restarts,\n"
        "host and the detail the component gave. Answers are collected for --timeout\n"
        "ms (or until --count arrived). Exits 7 when an instance is unhealthy or not\n"
        "running (degraded still counts as serving), 4 when nobody answered.\n",
    .options = options,
    .min_positional = 0,
    .max_positional = 1,
    .examples = "  mstack health\n"
                "  mstack health user-service --json | jq -r '.instances[].status'\n",
    .run = run,
};
