/*
 * test_runtime_discovery.c - the NATS Services API on both transports:
 * $SRV.PING, $SRV.INFO and $SRV.STATS for all services, by name and by name
 * and id, each response parsed and checked field by field against what
 * nats.go's micro package sends (types io.nats.micro.v1.*_response, key
 * order, endpoints with queue groups and metadata, stats in nanoseconds,
 * "started" in RFC 3339 UTC); only running instances answer; discovery can
 * be turned off.
 */
#include "test_runtime_common.h"

static ms_status nop_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    (void)in;
    (void)reply;
    return MS_OK;
}

static const ms_topic wild_topics[] = {
    {"component.wild.*.get", 0},
    {"events.user.>", MS_TOPIC_FANOUT},
    {"component.wild", 0},
    {NULL, 0},
};
static const ms_component_ops wild_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"wild", "0.0.1", "wildcard endpoints"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = wild_topics,
    .handle_message = nop_handle,
};

/* Send a $SRV request, wait for `want` answers (0: none expected), then
 * wait_ms more so that an extra answer would be seen. */
static collector *srv(fixture *f, const char *subject, int want, int wait_ms)
{
    char *inbox = NULL;
    collector *k;
    ms_assert_ok(ms_bus_new_inbox(f->client, &inbox));
    k = collect(f, inbox);
    ms_assert_ok(ms_bus_publish_reply(f->client, subject, inbox, NULL, 0));
    ms_assert_ok(ms_bus_flush(f->client, 3000));
    (void)collected_wait(k, want, 3000);
    ms_test_sleep_ms(wait_ms); /* nothing more comes */
    free(inbox);
    return k;
}

/* The keys of obj in order, comma-joined. */
static void keys_of(const json_t *obj, char *out, size_t cap)
{
    const char *k;
    json_t *v;
    out[0] = '\0';
    json_object_foreach((json_t *)obj, k, v) {
        size_t n = strlen(out);
        snprintf(out + n, cap - n, "%s%s", n > 0 ? "," : "", k);
    }
}

static void assert_keys(const json_t *obj, const char *want)
{
    char got[512];
    keys_of(obj, got, sizeof got);
    if (strcmp(got, want) != 0)
        fail_msg("keys '%s', want '%s'", got, want);
}

static ms_instance *start_services(fixture *f, ms_instance **flaky)
{
    ms_runtime_options o;
    ms_instance_options io;
    ms_instance *a = NULL;
    json_t *md = json_pack("{s:s}", "team", "platform");
    test_opts(f, &o);
    start_rt(f, &o);
    ms_instance_options_init(f->rt, &io);
    io.metadata = md;
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, &io, &a));
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));
    ms_assert_ok(ms_runtime_add(f->rt, &flaky_ops, NULL, flaky));
    json_decref(md);
    return a;
}

static void ping(void **state)
{
    fixture *f = *state;
    ms_instance *flaky = NULL;
    ms_instance *a = start_services(f, &flaky);

    collector *k = srv(f, "$SRV.PING", 3, 50);
    assert_int_equal(k->n, 3);
    int recho = 0, fl = 0;
    for (int i = 0; i < k->n; i++) {
        json_t *j = collected_json(k, i);
        assert_keys(j, "name,id,version,metadata,type");
        assert_string_equal(jstr(j, "type"), "io.nats.micro.v1.ping_response");
        assert_true(json_is_object(json_object_get(j, "metadata")));
        if (strcmp(jstr(j, "name"), "recho") == 0) {
            recho++;
            assert_string_equal(jstr(j, "version"), "2.0.1-rc.1+b7");
        } else if (strcmp(jstr(j, "name"), "flaky") == 0) {
            fl++;
            assert_string_equal(jstr(j, "id"), ms_instance_id(flaky));
            assert_int_equal(json_object_size(json_object_get(j, "metadata")), 0);
        }
        json_decref(j);
    }
    assert_int_equal(recho, 2);
    assert_int_equal(fl, 1);
    collect_free(k);

    /* by name: both recho instances; by name and id: that one */
    k = srv(f, "$SRV.PING.recho", 2, 30);
    assert_int_equal(k->n, 2);
    collect_free(k);
    char subject[128];
    snprintf(subject, sizeof subject, "$SRV.PING.recho.%s", ms_instance_id(a));
    k = srv(f, subject, 1, 30);
    assert_int_equal(k->n, 1);
    json_t *j = collected_json(k, 0);
    assert_string_equal(jstr(j, "id"), ms_instance_id(a));
    assert_string_equal(jstr(json_object_get(j, "metadata"), "team"), "platform");
    json_decref(j);
    collect_free(k);
    /* the wrong pairs answer nothing */
    snprintf(subject, sizeof subject, "$SRV.PING.flaky.%s", ms_instance_id(a));
    k = srv(f, subject, 0, 50);
    assert_int_equal(k->n, 0);
    collect_free(k);
    k = srv(f, "$SRV.PING.nobody", 0, 50);
    assert_int_equal(k->n, 0);
    collect_free(k);
    k = srv(f, "$SRV.HELLO", 0, 50);
    assert_int_equal(k->n, 0);
    collect_free(k);
}

static void info(void **state)
{
    fixture *f = *state;
    ms_instance *flaky = NULL;
    ms_instance *a = start_services(f, &flaky);
    char subject[128];
    snprintf(subject, sizeof subject, "$SRV.INFO.recho.%s", ms_instance_id(a));
    collector *k = srv(f, subject, 1, 20);
    assert_int_equal(k->n, 1);
    json_t *j = collected_json(k, 0);
    assert_keys(j, "name,id,version,metadata,type,description,endpoints");
    assert_string_equal(jstr(j, "type"), "io.nats.micro.v1.info_response");
    assert_string_equal(jstr(j, "name"), "recho");
    assert_string_equal(jstr(j, "id"), ms_instance_id(a));
    assert_string_equal(jstr(j, "description"), "echo for runtime tests");
    json_t *eps = json_object_get(j, "endpoints");
    assert_int_equal(json_array_size(eps), 3);
    json_t *e0 = json_array_get(eps, 0), *e2 = json_array_get(eps, 2);
    assert_keys(e0, "name,subject,queue_group,metadata");
    assert_string_equal(jstr(e0, "name"), "echo");
    assert_string_equal(jstr(e0, "subject"), "component.recho.echo");
    assert_string_equal(jstr(e0, "queue_group"), "recho");
    assert_true(json_is_null(json_object_get(e0, "metadata")));
    assert_string_equal(jstr(json_array_get(eps, 1), "name"), "who");
    assert_string_equal(jstr(e2, "name"), "bcast");
    assert_string_equal(jstr(e2, "queue_group"), "");
    assert_string_equal(jstr(json_object_get(e2, "metadata"), "fanout"), "true");
    json_decref(j);
    collect_free(k);

    /* all services */
    k = srv(f, "$SRV.INFO", 3, 30);
    assert_int_equal(k->n, 3);
    collect_free(k);

    /* endpoint names of wildcard and foreign subjects */
    ms_assert_ok(ms_runtime_add(f->rt, &wild_ops, NULL, NULL));
    k = srv(f, "$SRV.INFO.wild", 1, 20);
    assert_int_equal(k->n, 1);
    j = collected_json(k, 0);
    eps = json_object_get(j, "endpoints");
    assert_string_equal(jstr(json_array_get(eps, 0), "name"), "any_get");
    assert_string_equal(jstr(json_array_get(eps, 1), "name"), "events_user_all");
    assert_string_equal(jstr(json_array_get(eps, 2), "name"), "component_wild");
    json_decref(j);
    collect_free(k);
}

static void stats(void **state)
{
    fixture *f = *state;
    ms_instance *flaky = NULL;
    (void)start_services(f, &flaky);
    for (int i = 0; i < 3; i++) {
        ms_message *r = request_str(f, "component.flaky.op", i == 0 ? "internal" : "fine");
        ms_message_unref(r);
    }
    char subject[128];
    snprintf(subject, sizeof subject, "$SRV.STATS.flaky.%s", ms_instance_id(flaky));
    collector *k = srv(f, subject, 1, 20);
    assert_int_equal(k->n, 1);
    json_t *j = collected_json(k, 0);
    assert_keys(j, "name,id,version,metadata,type,started,endpoints");
    assert_string_equal(jstr(j, "type"), "io.nats.micro.v1.stats_response");
    assert_string_equal(jstr(j, "name"), "flaky");
    const char *started = jstr(j, "started");
    assert_int_equal(strlen(started), MS_TIMESTAMP_LEN);
    assert_int_equal(started[10], 'T');
    assert_int_equal(started[MS_TIMESTAMP_LEN - 1], 'Z');
    json_t *e = json_array_get(json_object_get(j, "endpoints"), 0);
    assert_keys(e, "name,subject,queue_group,num_requests,num_errors,last_error,"
                   "processing_time,average_processing_time");
    assert_string_equal(jstr(e, "name"), "op");
    assert_string_equal(jstr(e, "subject"), "component.flaky.op");
    assert_string_equal(jstr(e, "queue_group"), "flaky");
    assert_int_equal(json_integer_value(json_object_get(e, "num_requests")), 3);
    assert_int_equal(json_integer_value(json_object_get(e, "num_errors")), 1);
    /* as micro records it: "<Nats-Service-Error-Code>:<Nats-Service-Error>" */
    assert_string_equal(jstr(e, "last_error"), "500:the database is on fire");
    json_int_t total = json_integer_value(json_object_get(e, "processing_time"));
    json_int_t avg = json_integer_value(json_object_get(e, "average_processing_time"));
    assert_true(total > 0);
    assert_int_equal(avg, total / 3);
    json_decref(j);
    collect_free(k);

    /* an idle endpoint: zeros, empty last_error */
    k = srv(f, "$SRV.STATS.recho", 2, 20);
    assert_int_equal(k->n, 2);
    j = collected_json(k, 0);
    e = json_array_get(json_object_get(j, "endpoints"), 1);
    assert_int_equal(json_integer_value(json_object_get(e, "num_requests")), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "average_processing_time")), 0);
    assert_string_equal(jstr(e, "last_error"), "");
    json_decref(j);
    collect_free(k);
}

static void only_running_answer(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    o.max_restarts = 0;
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/initfail.so", NULL, &inst));
    assert_true(wait_state(inst, MS_INSTANCE_FAILED, 3000));
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));
    collector *k = srv(f, "$SRV.PING", 1, 50);
    assert_int_equal(k->n, 1);
    json_t *j = collected_json(k, 0);
    assert_string_equal(jstr(j, "name"), "recho");
    json_decref(j);
    collect_free(k);
}

static void discovery_off(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    test_opts(f, &o);
    o.discovery = false;
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));
    collector *k = srv(f, "$SRV.PING", 0, 50);
    assert_int_equal(k->n, 0);
    collect_free(k);
}

#define BOTH(name)                                                                               \
    static void nats_##name(void **s) { name(s); }                                               \
    static void inproc_##name(void **s) { name(s); }

BOTH(ping)
BOTH(info)
BOTH(stats)
BOTH(only_running_answer)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nats_ping, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_ping, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_info, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_info, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_stats, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_stats, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_only_running_answer, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_only_running_answer, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(discovery_off, setup_inproc, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
