/*
 * cmd_services.c - `mstack services [NAME [ID]]`: service discovery.
 *
 * The NATS Services API (ADR-32): every service instance answers
 * $SRV.PING, $SRV.INFO and $SRV.STATS (optionally .<name>[.<id>]). This
 * verb sends INFO and STATS (or only PING) with one inbox as reply subject
 * and gathers every answer within the timeout, so it lists mainstack
 * components and any other NATS micro service alike. It prints one table
 * of services (INFO joined to STATS by id) and one of their endpoints.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_option options[] = {
    {"nats", 's', "URL", false, "NATS server (default: $NATS_URL, else " CLI_DEFAULT_NATS_URL ")"},
    {"timeout", 't', "MS", false, "how long to collect answers (default 1000)"},
    {"count", 'n', "N", false, "stop after N service instances answered"},
    {"ping", 0, NULL, false, "only $SRV.PING: name, id and version of each instance"},
    {"json", 0, NULL, false,
     "print the raw answers: {\"info\":[...],\"stats\":[...]} "
     "(or {\"ping\":[...]})"},
    {NULL, 0, NULL, false, NULL},
};

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

static double num(const json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* The answers, split by their "type". Each array holds new references. */
typedef struct answers {
    json_t *ping, *info, *stats;
} answers;

static int sort_answers(ms_message **replies, size_t n, answers *out)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = NULL, *dest = NULL;
        const char *type;
        const char *err = ms_message_header(replies[i], "Nats-Service-Error");
        if (err != NULL) {
            cli_error("a service answered with an error: %s", err);
            continue;
        }
        if (ms_message_json(replies[i], &v) != MS_OK || !json_is_object(v)) {
            json_decref(v);
            continue;
        }
        type = str(v, "type");
        if (strcmp(type, "io.nats.micro.v1.ping_response") == 0)
            dest = out->ping;
        else if (strcmp(type, "io.nats.micro.v1.info_response") == 0)
            dest = out->info;
        else if (strcmp(type, "io.nats.micro.v1.stats_response") == 0)
            dest = out->stats;
        if (dest != NULL && json_array_append(dest, v) != 0) {
            json_decref(v);
            return CLI_EXIT_FAILURE;
        }
        json_decref(v);
    }
    return CLI_EXIT_OK;
}

/* The STATS answer of instance id, or NULL. Borrowed. */
static json_t *stats_of(const answers *a, const char *id)
{
    size_t i;
    json_t *st;
    json_array_foreach(a->stats, i, st)
    {
        if (strcmp(str(st, "id"), id) == 0)
            return st;
    }
    return NULL;
}

/* The STATS endpoint called name in st (may be NULL). Borrowed. */
static json_t *endpoint_stats(const json_t *st, const char *name)
{
    size_t i;
    json_t *ep;
    json_array_foreach(json_object_get(st, "endpoints"), i, ep)
    {
        if (strcmp(str(ep, "name"), name) == 0)
            return ep;
    }
    return NULL;
}

static int print_ping(const answers *a)
{
    static const char *const headers[] = {"NAME", "ID", "VERSION"};
    cli_table t;
    size_t i;
    json_t *p;

    if (cli_table_init(&t, 3, headers) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    json_array_foreach(a->ping, i, p)
    {
        const char *cells[] = {str(p, "name"), str(p, "id"), str(p, "version")};
        if (cli_table_add(&t, cells) != CLI_EXIT_OK)
            break;
    }
    cli_table_sort(&t, 0, 1);
    cli_table_print(&t, stdout);
    cli_table_reset(&t);
    return CLI_EXIT_OK;
}

static int print_services(const answers *a)
{
    static const char *const sh[] = {"NAME",     "ID",     "VERSION",     "ENDPOINTS",
                                     "REQUESTS", "ERRORS", "AVG LATENCY", "STARTED"};
    static const char *const eh[] = {"SERVICE",  "ID",     "ENDPOINT",    "SUBJECT",   "QUEUE",
                                     "REQUESTS", "ERRORS", "AVG LATENCY", "LAST ERROR"};
    cli_table svc, eps;
    size_t i;
    json_t *info;
    int rc = CLI_EXIT_OK;

    if (cli_table_init(&svc, 8, sh) != CLI_EXIT_OK)
        return CLI_EXIT_FAILURE;
    if (cli_table_init(&eps, 9, eh) != CLI_EXIT_OK) {
        cli_table_reset(&svc);
        return CLI_EXIT_FAILURE;
    }
    json_array_foreach(a->info, i, info)
    {
        const json_t *st = stats_of(a, str(info, "id"));
        json_t *endpoints = json_object_get(info, "endpoints");
        double reqs = 0, errs = 0, time_ns = 0;
        char nep[24], sreq[24], serr[24], slat[32];
        size_t k;
        json_t *ep;

        json_array_foreach(endpoints, k, ep)
        {
            const json_t *es = endpoint_stats(st, str(ep, "name"));
            char ereq[24] = "-", eerr[24] = "-", elat[32] = "-";
            if (es != NULL) {
                double r = num(es, "num_requests");
                reqs += r;
                errs += num(es, "num_errors");
                time_ns += num(es, "processing_time");
                snprintf(ereq, sizeof ereq, "%.0f", r);
                snprintf(eerr, sizeof eerr, "%.0f", num(es, "num_errors"));
                if (r > 0)
                    cli_format_ns(num(es, "average_processing_time"), elat, sizeof elat);
            }
            const char *queue = str(ep, "queue_group");
            const char *cells[] = {str(info, "name"),
                                   str(info, "id"),
                                   str(ep, "name"),
                                   str(ep, "subject"),
                                   queue[0] != '\0' ? queue : "(fan-out)",
                                   ereq,
                                   eerr,
                                   elat,
                                   es != NULL ? str(es, "last_error") : ""};
            if (cli_table_add(&eps, cells) != CLI_EXIT_OK) {
                rc = CLI_EXIT_FAILURE;
                goto cleanup;
            }
        }
        snprintf(nep, sizeof nep, "%zu", json_array_size(endpoints));
        snprintf(sreq, sizeof sreq, "%.0f", reqs);
        snprintf(serr, sizeof serr, "%.0f", errs);
        if (reqs > 0)
            cli_format_ns(time_ns / reqs, slat, sizeof slat);
        else
            snprintf(slat, sizeof slat, "-");
        const char *cells[] = {str(info, "name"),
                               str(info, "id"),
                               str(info, "version"),
                               nep,
                               st != NULL ? sreq : "-",
                               st != NULL ? serr : "-",
                               slat,
                               st != NULL ? str(st, "started") : ""};
        if (cli_table_add(&svc, cells) != CLI_EXIT_OK) {
            rc = CLI_EXIT_FAILURE;
            goto cleanup;
        }
    }
    cli_table_sort(&svc, 0, 1);
    cli_table_sort(&eps, 0, 1);
    cli_table_print(&svc, stdout);
    printf("\n");
    cli_table_print(&eps, stdout);
cleanup:
    cli_table_reset(&eps);
    cli_table_reset(&svc);
    return rc;
}

static int run(const cli_verb *verb, const cli_args *a)
{
    const bool ping = cli_flag(a, "ping");
    char suffix[MS_SUBJECT_MAX / 2], s1[MS_SUBJECT_MAX + 1], s2[MS_SUBJECT_MAX + 1];
    const char *subjects[2] = {s1, s2};
    answers ans = {NULL, NULL, NULL};
    ms_message **replies = NULL;
    size_t n = 0, found;
    ms_bus *bus = NULL;
    int timeout = 0, count = 0, rc;
    ms_status s;

    if ((rc = cli_opt_int(a, "timeout", 1000, 1, 600000, &timeout)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "count", 0, 0, 100000, &count)) != CLI_EXIT_OK)
        return rc;
    if (a->npositional > 0 &&
        (rc = cli_check_name(verb, "NAME", a->positional[0], false)) != CLI_EXIT_OK)
        return rc;
    if (a->npositional > 1 &&
        (rc = cli_check_name(verb, "ID", a->positional[1], false)) != CLI_EXIT_OK)
        return rc;
    suffix[0] = '\0';
    if (a->npositional > 0)
        snprintf(suffix, sizeof suffix, ".%s%s%s", a->positional[0], a->npositional > 1 ? "." : "",
                 a->npositional > 1 ? a->positional[1] : "");
    snprintf(s1, sizeof s1, "$SRV.%s%s", ping ? "PING" : "INFO", suffix);
    snprintf(s2, sizeof s2, "$SRV.STATS%s", suffix);
    if (ms_subject_validate(s1) != MS_OK)
        return cli_usage_error(verb, "'%s' is not a service name (or id)", suffix + 1);

    rc = cli_connect(a, &bus);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    /* Each instance answers every question asked: INFO and STATS, or PING. */
    s = cli_gather(bus, subjects, ping ? 1 : 2, NULL, 0, timeout, (size_t)count * (ping ? 1u : 2u),
                   &replies, &n);
    if (s != MS_OK) {
        cli_error("asking %s failed: %s", s1, ms_last_error());
        rc = cli_exit_code(s);
        goto cleanup;
    }
    ans.ping = json_array();
    ans.info = json_array();
    ans.stats = json_array();
    if (ans.ping == NULL || ans.info == NULL || ans.stats == NULL ||
        sort_answers(replies, n, &ans) != CLI_EXIT_OK) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    found = ping ? json_array_size(ans.ping) : json_array_size(ans.info);
    if (found == 0) {
        cli_error("no service answered %s within %d ms on %s: %s", s1, timeout, cli_client_url(a),
                  a->npositional > 0 ? "is that name right, and is it running? ('mstack "
                                       "services' with no name lists every service)"
                                     : "start components with 'mstack run --nats URL "
                                       "COMPONENT...'");
        rc = CLI_EXIT_NO_RESPONDERS;
        goto cleanup;
    }
    if (cli_flag(a, "json")) {
        json_t *out = ping ? json_pack("{s:O}", "ping", ans.ping)
                           : json_pack("{s:O, s:O}", "info", ans.info, "stats", ans.stats);
        if (out != NULL)
            cli_print_json(out, false);
        json_decref(out);
    } else {
        rc = ping ? print_ping(&ans) : print_services(&ans);
    }
cleanup:
    json_decref(ans.ping);
    json_decref(ans.info);
    json_decref(ans.stats);
    cli_gather_free(replies, n);
    if (bus != NULL)
        (void)ms_bus_drain(bus, 2000);
    ms_bus_destroy(bus);
    return rc;
}

const cli_verb cli_verb_services = {
    .name = "services",
    .alias = "svc",
    .usage = "[NAME [ID]] [options]",
    .summary = "discover services: $SRV.PING/INFO/STATS (NATS Services API) in tables",
    .description =
        "Sends $SRV.INFO and $SRV.STATS (or only $SRV.PING with --ping), for every\n"
        "service or only NAME (and instance ID), and collects every answer that arrives\n"
        "within --timeout (or until --count instances answered). Prints one row per service "
        "instance (name, id, version,\n"
        "endpoints, requests, errors, average latency, start time) and one row per\n"
        "endpoint (subject, queue group, requests, errors, average latency, last\n"
        "error). Any NATS micro service is listed, mainstack component or not.\n"
        "Exits 4 when nobody answered.\n",
    .options = options,
    .min_positional = 0,
    .max_positional = 2,
    .examples = "  mstack services\n"
                "  mstack services user-service\n"
                "  mstack services --ping --timeout 300\n"
                "  mstack services --json | jq '.stats[].endpoints[] | {subject, num_requests}'\n",
    .run = run,
};
