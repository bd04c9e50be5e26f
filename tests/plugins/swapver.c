/*
 * swapver.c - one test component ("swapver") built as several plugins that
 * differ only in version (SWAPVER_VERSION) and, for one of them, in an
 * initialize that fails (SWAPVER_INITFAIL). Used by test_runtime_swap to
 * swap versions in a running host: each reply names the version that
 * handled the request ("<version>:<payload>"), and each event on
 * component.swapver.event is acknowledged by publishing its payload on
 * swapver.seen.<version>, so the test can count every message by id and by
 * version. The "new" topic exists from version 2 on.
 *
 * With SWAPVER_TESTS the component is Testable (for `mstack deploy`'s
 * test-both-and-compare): run_tests checks its echo reply and its event
 * acknowledgement by calling its own handler. SWAPVER_FAILTEST makes the
 * echo test fail (the reply is compared against a wrong expectation, as a
 * regression would), SWAPVER_HANGTEST makes run_tests never return, and
 * SWAPVER_INITHANG makes initialize never return (a host that hangs before
 * its tests can even start). SWAPVER_FAILREQ passes its tests but answers
 * every live request with an error (a version that breaks in production:
 * for the watch window after a promotion). SWAPVER_MIGRATE gives it a
 * migrate hook that remembers the version it took over from and names it in
 * each reply ("<version>(from <previous>):<payload>"); SWAPVER_MIGRATEFAIL
 * makes that hook refuse.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mainstack/component.h"

#ifndef SWAPVER_VERSION
#define SWAPVER_VERSION "1.0.0"
#endif

typedef struct swapver {
    ms_component_ctx *ctx;
    bool in_tests; /* SWAPVER_FAILREQ: run_tests is calling the handler */
    char from[64]; /* SWAPVER_MIGRATE: the version migrate was called with */
} swapver;

static void *swapver_create(void)
{
    return calloc(1, sizeof(swapver));
}

static void swapver_destroy(void *self)
{
    free(self);
}

static ms_status swapver_initialize(void *self, ms_component_ctx *ctx)
{
    ((swapver *)self)->ctx = ctx;
#ifdef SWAPVER_INITHANG
    for (;;)
        sleep(1);
#endif
#ifdef SWAPVER_INITFAIL
    return ms_ctx_error(ctx, MS_ERR_IO, "swapver " SWAPVER_VERSION ": cannot open its store");
#else
    return MS_OK;
#endif
}

static ms_status swapver_handle(void *self, const ms_message *in, ms_message **reply)
{
    swapver *sv = self;
    char buf[512];
    int n;
    const char *subject = ms_message_subject(in);
    if (strcmp(subject, "component.swapver.event") == 0)
        return ms_ctx_publish(sv->ctx, "swapver.seen." SWAPVER_VERSION, ms_message_data(in),
                              ms_message_len(in));
    if (ms_message_reply(in) == NULL)
        return MS_OK;
#ifdef SWAPVER_FAILREQ
    if (!sv->in_tests)
        return ms_ctx_error(sv->ctx, MS_ERR_INVALID_ARG,
                            "swapver " SWAPVER_VERSION ": refuses every request");
#endif
#ifdef SWAPVER_MIGRATE
    n = snprintf(buf, sizeof buf, "%s(from %s):%.*s", SWAPVER_VERSION,
                 sv->from[0] ? sv->from : "none", (int)ms_message_len(in),
                 (const char *)ms_message_data(in));
#else
    n = snprintf(buf, sizeof buf, "%s:%.*s", SWAPVER_VERSION, (int)ms_message_len(in),
                 (const char *)ms_message_data(in));
#endif
    if (n < 0 || (size_t)n >= sizeof buf)
        return ms_ctx_error(sv->ctx, MS_ERR_TOO_LARGE, "payload too long");
    return ms_message_create(ms_message_reply(in), buf, (size_t)n, reply);
}

#ifdef SWAPVER_TESTS
static ms_status swapver_run_tests(void *self, ms_test_report *report)
{
    swapver *sv = self;
    ms_message *in = NULL, *reply = NULL;
    ms_status s;
#ifdef SWAPVER_FAILTEST
    const char *want = "0.0.0:ping";
#else
    const char *want = SWAPVER_VERSION ":ping";
#endif
#ifdef SWAPVER_HANGTEST
    for (;;)
        sleep(1);
#endif
    s = ms_message_create("component.swapver.echo", "ping", 4, &in);
    if (s == MS_OK)
        s = ms_message_set_reply(in, "_INBOX.test");
    sv->in_tests = true;
    if (s == MS_OK)
        s = swapver_handle(self, in, &reply);
    sv->in_tests = false;
    if (s != MS_OK || reply == NULL) {
        s = ms_test_report_add(report, "echo_reply", false, "handler returned %s, no reply",
                               ms_status_name(s));
    } else {
        bool ok = ms_message_len(reply) == strlen(want) &&
                  memcmp(ms_message_data(reply), want, strlen(want)) == 0;
        s = ms_test_report_add(report, "echo_reply", ok, "expected '%s', got '%.*s'", want,
                               (int)ms_message_len(reply), (const char *)ms_message_data(reply));
    }
    ms_message_unref(in);
    ms_message_unref(reply);
    if (s != MS_OK)
        return s;
    return ms_test_report_add(report, "version_format", strchr(SWAPVER_VERSION, '.') != NULL,
                              "version %s", SWAPVER_VERSION);
}
#endif

#ifdef SWAPVER_MIGRATE
static ms_status swapver_migrate(void *self, ms_component_ctx *ctx, const char *previous)
{
    swapver *sv = self;
#ifdef SWAPVER_MIGRATEFAIL
    return ms_ctx_error(ctx, MS_ERR_UNSUPPORTED,
                        "swapver " SWAPVER_VERSION ": cannot take over from %s", previous);
#endif
    (void)ctx;
    snprintf(sv->from, sizeof sv->from, "%s", previous);
    return MS_OK;
}
#endif

static const ms_topic swapver_topics[] = {
    {"component.swapver.echo", 0},
    {"component.swapver.event", 0},
#ifdef SWAPVER_NEW_TOPIC
    {"component.swapver.new", 0},
#endif
    {NULL, 0},
};

static const ms_component_ops swapver_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"swapver", SWAPVER_VERSION, "answers with its own version"},
    .create = swapver_create,
    .destroy = swapver_destroy,
    .initialize = swapver_initialize,
    .topics = swapver_topics,
    .handle_message = swapver_handle,
#ifdef SWAPVER_TESTS
    .run_tests = swapver_run_tests,
#endif
#ifdef SWAPVER_MIGRATE
    .flags = MS_COMPONENT_MIGRATE,
    .migrate = swapver_migrate,
#endif
};

MS_COMPONENT_EXPORT(swapver_ops)
