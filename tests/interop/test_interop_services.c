/*
 * test_interop_services.c - mainstack components discovered, inspected and
 * called by the official NATS JavaScript services client.
 *
 * A real nats-server and a runtime host the built user-service plugin and
 * three instances of a linked-in component (tally), so that lookups by name
 * and id have several instances to tell apart. The test writes what the
 * client must find (names, versions, descriptions, instance ids and their
 * metadata, endpoints, request counts: all read back from the runtime's own
 * API and from user-service's interface.json) and runs services_check.mjs
 * (@nats-io/services through Node) against the server; the script's exit
 * status and report decide. A second case feeds it a wrong expectation and
 * checks that the script catches it, so a checker that passes everything
 * would fail here.
 *
 * Node and the client come from tests/interop/npm_install.sh (`npm ci` from
 * the lock file into the build tree). Where node, npm or the registry are
 * missing the cases are skipped, except with CI=true, where they fail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "component_test.h"

#define OUTPUT_MAX (256 * 1024)
#define TALLY_INSTANCES 3

/* --- tally: a linked-in component with several instances ----------------- */

typedef struct tally_state {
    ms_component_ctx *ctx;
    long count;
} tally_state;

static void *tally_create(void)
{
    return calloc(1, sizeof(tally_state));
}

static void tally_destroy(void *self)
{
    free(self);
}

static ms_status tally_init(void *self, ms_component_ctx *ctx)
{
    ((tally_state *)self)->ctx = ctx;
    return MS_OK;
}

static ms_status tally_handle(void *self, const ms_message *in, ms_message **reply)
{
    tally_state *t = self;
    const char *subject = ms_message_subject(in);
    json_t *body;
    ms_status s;

    if (strcmp(subject, "component.tally.fail") == 0)
        return ms_ctx_error(t->ctx, MS_ERR_STATE, "tally: refused on purpose by %s",
                            ms_ctx_instance_id(t->ctx));
    if (strcmp(subject, "component.tally.add") != 0 || ms_message_reply(in) == NULL)
        return MS_OK; /* events.tally.>: nothing to answer */
    t->count++;
    body = json_pack("{s:s, s:I}", "instance", ms_ctx_instance_id(t->ctx), "count",
                     (json_int_t)t->count);
    if (body == NULL)
        return ms_ctx_error(t->ctx, MS_ERR_NO_MEMORY, "tally: reply");
    s = ms_msg_response(in, "tally", body, reply);
    json_decref(body);
    return s;
}

static const ms_topic tally_topics[] = {
    {"component.tally.add", 0},
    {"component.tally.fail", 0},
    {"events.tally.>", MS_TOPIC_FANOUT},
    {NULL, 0},
};

static const ms_component_ops tally_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"tally", "0.3.0-beta.2", "counts requests, one counter per instance"},
    .create = tally_create,
    .destroy = tally_destroy,
    .initialize = tally_init,
    .topics = tally_topics,
    .handle_message = tally_handle,
};

/* --- the client's environment ------------------------------------------------ */

/* Install the client into the build tree; skip the case when it cannot be
 * had here (outside CI), fail when it must be (CI=true). */
static void require_client(void)
{
    char cmd[1024];
    int rc;

    snprintf(cmd, sizeof cmd, "sh '%s/npm_install.sh' '%s' '%s'", MS_INTEROP_SOURCE_DIR,
             MS_INTEROP_SOURCE_DIR, MS_INTEROP_BINARY_DIR);
    rc = system(cmd);
    if (rc == -1 || !WIFEXITED(rc))
        fail_msg("could not run %s", cmd);
    if (WEXITSTATUS(rc) == 77) {
        print_message("interop: node, npm or the npm registry unavailable (see above): skipped\n");
        skip();
    }
    if (WEXITSTATUS(rc) != 0)
        fail_msg("npm_install.sh failed with status %d (see above)", WEXITSTATUS(rc));
}

/* Run the script against h with expect (written to a file); its combined
 * output is returned in *out (malloc'd), the exit status is returned. */
static int run_check(ct_host *h, const json_t *expect, char **out)
{
    char path[400], cmd[1200];
    size_t n = 0;
    FILE *p;
    int rc;
    char *buf = malloc(OUTPUT_MAX);

    assert_non_null(buf);
    snprintf(path, sizeof path, "%s/expect.json", h->root);
    if (json_dump_file(expect, path, JSON_INDENT(2)) != 0)
        fail_msg("cannot write %s", path);
    snprintf(cmd, sizeof cmd, "cd '%s' && node services_check.mjs --url '%s' --expect '%s' 2>&1",
             MS_INTEROP_BINARY_DIR, h->url, path);
    p = popen(cmd, "r");
    if (p == NULL)
        fail_msg("popen %s", cmd);
    while (n + 1 < OUTPUT_MAX) {
        size_t got = fread(buf + n, 1, OUTPUT_MAX - 1 - n, p);
        if (got == 0)
            break;
        n += got;
    }
    buf[n] = '\0';
    rc = pclose(p);
    printf("---- services_check.mjs ----\n%s---- exit %d ----\n", buf,
           WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
    fflush(stdout);
    *out = buf;
    if (rc == -1 || !WIFEXITED(rc))
        fail_msg("services_check.mjs did not exit normally (%d)", rc);
    return WEXITSTATUS(rc);
}

/* --- expectations, from the runtime and the interface --------------------- */

static json_t *service_of(const ms_instance *inst)
{
    const ms_component_metadata *md = &ms_instance_ops(inst)->metadata;
    json_t *svc = json_pack("{s:s, s:s, s:s, s:[], s:[]}", "name", md->name, "version", md->version,
                            "description", md->description, "instances", "endpoints");
    assert_non_null(svc);
    return svc;
}

static void add_instance(json_t *svc, const ms_instance *inst, const json_t *metadata)
{
    ms_instance_stats st;
    json_t *i;

    ms_assert_ok(ms_instance_get_stats(inst, &st));
    i = json_pack("{s:s, s:O, s:I, s:I}", "id", ms_instance_id(inst), "metadata", metadata,
                  "num_requests", (json_int_t)st.num_requests, "num_errors",
                  (json_int_t)st.num_errors);
    assert_non_null(i);
    assert_int_equal(json_array_append_new(json_object_get(svc, "instances"), i), 0);
}

static void add_endpoint(json_t *svc, const char *name, const char *subject, const char *queue)
{
    json_t *e =
        json_pack("{s:s, s:s, s:s}", "name", name, "subject", subject, "queue_group", queue);
    assert_non_null(e);
    assert_int_equal(json_array_append_new(json_object_get(svc, "endpoints"), e), 0);
}

/* user-service's endpoints are what its interface.json serves. */
static void add_interface_endpoints(json_t *svc)
{
    json_error_t err;
    json_t *iface =
        json_load_file(MS_SOURCE_DIR "/components/user-service/interface.json", 0, &err);
    size_t i;
    json_t *e;

    if (iface == NULL)
        fail_msg("interface.json:%d:%d: %s", err.line, err.column, err.text);
    json_array_foreach(json_object_get(iface, "serves"), i, e)
    {
        add_endpoint(svc, json_string_value(json_object_get(e, "name")),
                     json_string_value(json_object_get(e, "subject")), "user-service");
    }
    assert_true(json_array_size(json_object_get(svc, "endpoints")) > 0);
    json_decref(iface);
}

typedef struct hosted {
    ct_host *h;
    ms_instance *users;
    ms_instance *tally[TALLY_INSTANCES];
    json_t *tally_md[TALLY_INSTANCES];
} hosted;

static void host_start(hosted *s)
{
    memset(s, 0, sizeof *s);
    s->h = ct_host_start(CT_NATS, NULL);
    s->users = ct_load(s->h, "user-service");
    for (int i = 0; i < TALLY_INSTANCES; i++) {
        ms_instance_options io;
        char slot[16];
        snprintf(slot, sizeof slot, "%d", i);
        s->tally_md[i] = json_pack("{s:s, s:s}", "slot", slot, "zone", i == 0 ? "a" : "b");
        assert_non_null(s->tally_md[i]);
        ms_instance_options_init(s->h->rt, &io);
        io.metadata = s->tally_md[i];
        ms_assert_ok(ms_runtime_add(s->h->rt, &tally_ops, &io, &s->tally[i]));
    }
    /* some traffic, so that STATS has numbers to show per instance */
    for (int i = 0; i < 7; i++)
        ms_message_unref(ct_request(s->h, "component.tally.add", NULL));
    ms_message_unref(ct_request(s->h, "component.tally.fail", NULL));
}

static void host_stop(hosted *s)
{
    for (int i = 0; i < TALLY_INSTANCES; i++)
        json_decref(s->tally_md[i]);
    ct_host_stop(s->h);
}

static json_t *expectations(hosted *s)
{
    json_t *users = service_of(s->users), *tally = service_of(s->tally[0]);
    json_t *empty = json_object();
    json_t *expect;

    assert_non_null(empty);
    add_instance(users, s->users, empty);
    add_interface_endpoints(users);
    for (int i = 0; i < TALLY_INSTANCES; i++)
        add_instance(tally, s->tally[i], s->tally_md[i]);
    add_endpoint(tally, "add", "component.tally.add", "tally");
    add_endpoint(tally, "fail", "component.tally.fail", "tally");
    add_endpoint(tally, "events_tally_all", "events.tally.>", "");
    expect = json_pack("{s:[o, o]}", "services", users, tally);
    assert_non_null(expect);
    json_decref(empty);
    return expect;
}

/* A line of out starting with prefix: its rest, copied into line. */
static bool find_line(const char *out, const char *prefix, char *line, size_t cap)
{
    for (const char *p = out; p != NULL && *p != '\0';) {
        const char *end = strchr(p, '\n');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        size_t plen = strlen(prefix);
        if (len >= plen && strncmp(p, prefix, plen) == 0) {
            snprintf(line, cap, "%.*s", (int)(len - plen), p + plen);
            return true;
        }
        p = end != NULL ? end + 1 : NULL;
    }
    return false;
}

/* --- the cases ------------------------------------------------------------------- */

static void client_discovers_inspects_calls(void **state)
{
    hosted s;
    json_t *expect;
    char *out = NULL, line[256];
    long reqs = -1, errs = -1;
    ms_instance_stats st;
    int rc;

    (void)state;
    require_client();
    host_start(&s);
    expect = expectations(&s);
    rc = run_check(s.h, expect, &out);
    if (strstr(out, "\nFAIL ") != NULL || strncmp(out, "FAIL ", 5) == 0)
        fail_msg("the client found mismatches (FAIL lines above)");
    assert_int_equal(rc, 0);
    assert_true(find_line(out, "interop: OK (", line, sizeof line));
    assert_non_null(strstr(out, "PASS ping tally "));
    assert_non_null(strstr(out, "PASS stats user-service: identity and endpoints as expected"));

    /* the calls the client made arrived here: the runtime counted them */
    assert_true(find_line(out, "user-service calls: ", line, sizeof line));
    assert_int_equal(sscanf(line, "%ld requests, %ld errors", &reqs, &errs), 2);
    ms_assert_ok(ms_instance_get_stats(s.users, &st));
    assert_int_equal(st.num_requests, (uint64_t)reqs);
    assert_int_equal(st.num_errors, (uint64_t)errs);
    assert_true(errs > 0);

    free(out);
    json_decref(expect);
    host_stop(&s);
}

/* A wrong version and an instance that does not exist: the script must say
 * so, naming them, and fail. */
static void client_reports_mismatches(void **state)
{
    hosted s;
    json_t *expect, *tally, *ghost;
    char *out = NULL;
    int rc;

    (void)state;
    require_client();
    host_start(&s);
    expect = expectations(&s);
    tally = json_array_get(json_object_get(expect, "services"), 1);
    assert_int_equal(json_object_set_new(tally, "version", json_string("9.9.9")), 0);
    ghost = json_pack("{s:s, s:{}}", "id", "GHOSTINSTANCE000000000", "metadata");
    assert_non_null(ghost);
    assert_int_equal(json_array_append_new(json_object_get(tally, "instances"), ghost), 0);

    rc = run_check(s.h, expect, &out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "interop: FAILED ("));
    assert_non_null(strstr(out, "missing tally/GHOSTINSTANCE000000000"));
    assert_non_null(strstr(out, "version \"0.3.0-beta.2\", want \"9.9.9\""));
    /* what is right stays right */
    assert_non_null(strstr(out, "PASS ping all: "));
    assert_non_null(strstr(out, "PASS user-service create: a success"));

    free(out);
    json_decref(expect);
    host_stop(&s);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(client_discovers_inspects_calls, ct_teardown),
        cmocka_unit_test_teardown(client_reports_mismatches, ct_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
