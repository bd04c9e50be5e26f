/*
 * cmd_request.c - `mstack request SUBJECT [JSON|-]`: ask and print the answer.
 *
 * One ms_bus_request_msg. The reply payload is printed (pretty JSON when
 * it is JSON); a reply carrying Nats-Service-Error is the service's error
 * (NATS Services API): it is printed on stderr with its code and the exit
 * code is 5. Timeouts and "no responders" get their own exit codes (3, 4)
 * and a hint on what to check.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_option options[] = {
    {"nats", 's', "URL", false, "NATS server (default: $NATS_URL, else " CLI_DEFAULT_NATS_URL ")"},
    {"timeout", 't', "MS", false, "how long to wait for the reply (default 5000)"},
    {"type", 0, "TYPE", false, "Ms-Type header (default: request)"},
    {"source", 0, "NAME", false, "Ms-Source header (default: mstack)"},
    {"header", 'H', "KEY=VALUE", true, "an extra header"},
    {"raw", 0, NULL, false, "send the payload as it is, without checking it is JSON"},
    {"json", 0, NULL, false, "print the reply as compact JSON on one line (errors too)"},
    {NULL, 0, NULL, false, NULL},
};

/* The service answered with an error: print it, return exit code 5. */
static int print_remote_error(const cli_args *a, const char *subject, const ms_message *reply)
{
    const char *text = ms_message_header(reply, "Nats-Service-Error");
    const char *code = ms_message_header(reply, "Nats-Service-Error-Code");
    long icode = code != NULL ? strtol(code, NULL, 10) : 0;

    cli_error("%s answered with an error%s%s: %s", subject, code != NULL ? " " : "",
              code != NULL ? code : "", text[0] != '\0' ? text : "(no detail)");
    if (cli_flag(a, "json")) {
        json_t *out = json_pack("{s:s, s:I}", "error", text, "code", (json_int_t)icode);
        json_t *body = NULL;
        if (out != NULL &&
            ms_json_parse(ms_message_data(reply), ms_message_len(reply), "reply", &body) == MS_OK) {
            json_t *st = json_is_object(body) ? json_object_get(body, "status") : NULL;
            if (json_is_string(st))
                json_object_set(out, "status", st);
        }
        json_decref(body);
        if (out != NULL)
            cli_print_json(out, false);
        json_decref(out);
    }
    return CLI_EXIT_REMOTE;
}

static int run(const cli_verb *verb, const cli_args *a)
{
    const char *subject = a->positional[0];
    const char *arg = a->npositional > 1 ? a->positional[1] : NULL;
    char *data = NULL;
    size_t len = 0;
    ms_message *m = NULL, *reply = NULL;
    ms_bus *bus = NULL;
    int timeout = 0;
    ms_status s;
    int rc;

    rc = cli_opt_int(a, "timeout", 5000, 1, 3600000, &timeout);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    rc = cli_read_payload(verb, arg, cli_flag(a, "raw"), &data, &len);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    rc = cli_build_message(a, subject, data, len, "request", &m);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    rc = cli_connect(a, &bus);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    s = ms_bus_request_msg(bus, m, timeout, &reply);
    if (s == MS_ERR_TIMEOUT) {
        cli_error("no reply on %s within %d ms: the service may be busy or stuck (check "
                  "'mstack health'), or pass a longer --timeout",
                  subject, timeout);
        rc = CLI_EXIT_TIMEOUT;
        goto cleanup;
    }
    if (s == MS_ERR_NO_RESPONDERS) {
        cli_error("no responders on %s: nothing subscribes to that subject on %s. Is the "
                  "component running ('mstack services' lists what runs and the subjects "
                  "it serves)?",
                  subject, cli_client_url(a));
        rc = CLI_EXIT_NO_RESPONDERS;
        goto cleanup;
    }
    if (s != MS_OK) {
        cli_error("request on %s failed: %s", subject, ms_last_error());
        rc = cli_exit_code(s);
        goto cleanup;
    }
    if (ms_message_header(reply, "Nats-Service-Error") != NULL) {
        rc = print_remote_error(a, subject, reply);
        goto cleanup;
    }
    cli_print_payload(ms_message_data(reply), ms_message_len(reply), cli_flag(a, "json"));
cleanup:
    if (bus != NULL)
        (void)ms_bus_drain(bus, 2000);
    ms_bus_destroy(bus);
    ms_message_unref(reply);
    ms_message_unref(m);
    free(data);
    return rc;
}

const cli_verb cli_verb_request = {
    .name = "request",
    .alias = "req",
    .usage = "SUBJECT [JSON|-] [options]",
    .summary = "send a request and print the reply",
    .description =
        "Sends a request on SUBJECT and prints the reply payload (pretty JSON when it is\n"
        "JSON). The payload is the JSON argument, or stdin when it is '-', or empty when\n"
        "omitted; it must be valid JSON unless --raw. A reply with a Nats-Service-Error\n"
        "header (the NATS Services API error convention, used by every mainstack\n"
        "component) is printed on stderr with its code, and mstack exits 5.\n",
    .options = options,
    .min_positional = 1,
    .max_positional = 2,
    .examples = "  mstack request component.user-service.create "
                "'{\"email\":\"ada@example.com\",\"name\":\"Ada\"}'\n"
                "  mstack request component.user-service.list '{\"limit\":10}' --json | jq "
                "'.users[].email'\n"
                "  mstack request '$SRV.PING.user-service' --timeout 500\n",
    .run = run,
};
