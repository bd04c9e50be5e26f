/*
 * cmd_publish.c - `mstack publish SUBJECT [JSON|-]`: send one message.
 *
 * The payload (argument, stdin, or empty) is checked as JSON unless --raw,
 * the message gets a fresh Ms-Id, Ms-Time and trace context plus the
 * --type/--source/--header/--id options, and is published and flushed to
 * the server before the process exits (ms_bus_publish_msg, ms_bus_flush).
 */
#include <stdlib.h>

#include "cli.h"

static const cli_option options[] = {
    {"nats", 's', "URL", false, "NATS server (default: $NATS_URL, else " CLI_DEFAULT_NATS_URL ")"},
    {"type", 't', "TYPE", false, "Ms-Type header (event, command, config_change, ...)"},
    {"source", 0, "NAME", false, "Ms-Source header (default: mstack)"},
    {"header", 'H', "KEY=VALUE", true, "an extra header"},
    {"id", 0, "ID", false, "Ms-Id to use instead of a fresh UUIDv7 (to test idempotency)"},
    {"raw", 0, NULL, false, "send the payload as it is, without checking it is JSON"},
    {"json", 0, NULL, false, "print {\"subject\",\"id\",\"bytes\"} instead of a sentence"},
    {NULL, 0, NULL, false, NULL},
};

static int run(const cli_verb *verb, const cli_args *a)
{
    const char *subject = a->positional[0];
    const char *arg = a->npositional > 1 ? a->positional[1] : NULL;
    char *data = NULL;
    size_t len = 0;
    ms_message *m = NULL;
    ms_bus *bus = NULL;
    ms_status s;
    int rc;

    rc = cli_read_payload(verb, arg, cli_flag(a, "raw"), &data, &len);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    rc = cli_build_message(a, subject, data, len, NULL, &m);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    rc = cli_connect(a, &bus);
    if (rc != CLI_EXIT_OK)
        goto cleanup;
    s = ms_bus_publish_msg(bus, m);
    if (s == MS_OK)
        s = ms_bus_flush(bus, 5000);
    if (s != MS_OK) {
        cli_error("publish on %s failed: %s", subject, ms_last_error());
        rc = cli_exit_code(s);
        goto cleanup;
    }
    if (cli_flag(a, "json")) {
        json_t *out = json_pack("{s:s, s:s, s:I}", "subject", subject, "id", ms_message_id(m),
                                "bytes", (json_int_t)len);
        if (out != NULL)
            cli_print_json(out, false);
        json_decref(out);
    } else {
        printf("published %zu bytes on %s (Ms-Id %s)\n", len, subject, ms_message_id(m));
    }
cleanup:
    if (bus != NULL)
        (void)ms_bus_drain(bus, 2000);
    ms_bus_destroy(bus);
    ms_message_unref(m);
    free(data);
    return rc;
}

const cli_verb cli_verb_publish = {
    .name = "publish",
    .alias = "pub",
    .usage = "SUBJECT [JSON|-] [options]",
    .summary = "publish one message (JSON from the argument or stdin)",
    .description =
        "Publishes a message on SUBJECT. The payload is the JSON argument, or stdin when\n"
        "it is '-', or empty when omitted; it must be valid JSON (the error gives\n"
        "line:column) unless --raw. The message carries a fresh Ms-Id, Ms-Time and\n"
        "traceparent. publish does not wait for anyone to receive it.\n",
    .options = options,
    .min_positional = 1,
    .max_positional = 2,
    .examples =
        "  mstack publish events.user.created '{\"id\":\"u1\",\"email\":\"ada@example.com\"}'\n"
        "  echo '{\"templates\":{\"created\":\"Hi {{name}}\"}}' | \\\n"
        "      mstack publish mainstack.config.notification-service - --type config_change\n",
    .run = run,
};
