/*
 * test_user_service.c - user-service hosted by the runtime, loaded from its
 * plugin by name, driven over the bus by a separate client connection, on
 * both transports (in-process, and a real nats-server): every case runs as
 * <case>_inproc and <case>_nats.
 *
 * Covers the request/reply round trips, paging, the events, malformed and
 * schema-invalid payloads (error reply with the NATS Services error headers,
 * nothing stored, no event), duplicate emails, config changes (runtime call
 * and bus message), health (max_users, a database file removed under the
 * instance and the supervisor's restart), persistence across a restart,
 * discovery ($SRV.INFO) and the Testable suite run by the runtime.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "component_test.h"
#include "../src/interface.h"

#define US "user-service"

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL)
        fail_msg("no string '%s'", key);
    return s;
}

static size_t list_count(ct_host *h)
{
    json_t *page = ct_request_ok(h, USER_SUBJECT_LIST, "{\"limit\":100}");
    size_t n = json_array_size(json_object_get(page, USER_FIELD_USERS));
    json_decref(page);
    return n;
}

static json_t *create(ct_host *h, const char *email, const char *name)
{
    char json[512];
    snprintf(json, sizeof json, "{\"email\":\"%s\",\"name\":\"%s\"}", email, name);
    return ct_request_ok(h, USER_SUBJECT_CREATE, json);
}

static void crud(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    char json[256], detail[512], id[64];
    json_t *u, *got;

    ct_load(h, US);
    u = create(h, "ada@example.com", "Ada Lovelace");
    snprintf(id, sizeof id, "%s", str(u, USER_FIELD_ID));
    assert_int_equal(strlen(id), USER_ID_LEN);
    assert_string_equal(str(u, USER_FIELD_EMAIL), "ada@example.com");
    assert_string_equal(str(u, USER_FIELD_CREATED_AT), str(u, USER_FIELD_UPDATED_AT));

    snprintf(json, sizeof json, "{\"id\":\"%s\"}", id);
    got = ct_request_ok(h, USER_SUBJECT_GET, json);
    assert_true(json_equal(u, got));
    json_decref(got);
    got = ct_request_ok(h, USER_SUBJECT_GET, "{\"email\":\"ADA@example.com\"}");
    assert_string_equal(str(got, USER_FIELD_ID), id);
    json_decref(got);

    snprintf(json, sizeof json, "{\"id\":\"%s\",\"name\":\"Ada King\"}", id);
    got = ct_request_ok(h, USER_SUBJECT_UPDATE, json);
    assert_string_equal(str(got, USER_FIELD_NAME), "Ada King");
    assert_string_equal(str(got, USER_FIELD_EMAIL), "ada@example.com");
    assert_string_equal(str(got, USER_FIELD_CREATED_AT), str(u, USER_FIELD_CREATED_AT));
    assert_true(strcmp(str(got, USER_FIELD_UPDATED_AT), str(u, USER_FIELD_UPDATED_AT)) > 0);
    json_decref(got);
    assert_int_equal(list_count(h), 1);

    snprintf(json, sizeof json, "{\"id\":\"%s\"}", id);
    got = ct_request_ok(h, USER_SUBJECT_DELETE, json);
    assert_string_equal(str(got, USER_FIELD_NAME), "Ada King");
    json_decref(got);
    assert_int_equal(ct_request_error(h, USER_SUBJECT_GET, json, detail, sizeof detail), 404);
    assert_non_null(strstr(detail, id));
    assert_int_equal(ct_request_error(h, USER_SUBJECT_DELETE, json, detail, sizeof detail), 404);
    assert_int_equal(list_count(h), 0);
    json_decref(u);
    ct_host_stop(h);
}

static void list_paging(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    char email[64], json[128], cursor[64] = "";
    size_t seen = 0, pages = 0;

    ct_load(h, US);
    for (int i = 0; i < 7; i++) {
        snprintf(email, sizeof email, "p%d@example.com", i);
        json_decref(create(h, email, "P"));
    }
    for (;;) {
        json_t *page, *next;
        if (cursor[0])
            snprintf(json, sizeof json, "{\"limit\":3,\"cursor\":\"%s\"}", cursor);
        else
            snprintf(json, sizeof json, "{\"limit\":3}");
        page = ct_request_ok(h, USER_SUBJECT_LIST, json);
        seen += json_array_size(json_object_get(page, USER_FIELD_USERS));
        pages++;
        next = json_object_get(page, USER_FIELD_NEXT_CURSOR);
        assert_non_null(next);
        if (json_is_null(next)) {
            json_decref(page);
            break;
        }
        snprintf(cursor, sizeof cursor, "%s", json_string_value(next));
        json_decref(page);
        assert_true(pages < 10);
    }
    assert_int_equal(seen, 7);
    assert_int_equal(pages, 3);
    /* An empty payload is {}: the default page size (20) holds all seven. */
    {
        json_t *page = ct_request_ok(h, USER_SUBJECT_LIST, NULL);
        assert_int_equal(json_array_size(json_object_get(page, USER_FIELD_USERS)), 7);
        assert_true(json_is_null(json_object_get(page, USER_FIELD_NEXT_CURSOR)));
        json_decref(page);
    }
    ct_host_stop(h);
}

/* Malformed JSON: an error reply with the Services headers, nothing stored,
 * no event, and the error counted in the stats. */
static void malformed_json(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ct_sink *events;
    ms_instance *inst = ct_load(h, US);
    ms_instance_stats st;
    char detail[512];
    json_t *u;

    events = ct_sink_start(h, USER_EVENT_PATTERN);
    assert_int_equal(
        ct_request_error(h, USER_SUBJECT_CREATE, "{\"email\":\"a@x.com\",", detail, sizeof detail),
        400);
    assert_non_null(strstr(detail, "payload:"));
    assert_int_equal(
        ct_request_error(h, USER_SUBJECT_CREATE, "not json at all", detail, sizeof detail), 400);
    assert_int_equal(list_count(h), 0);
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_true(st.num_errors >= 2);
    assert_int_equal(st.state, MS_INSTANCE_RUNNING);
    /* The first event seen is the good create's: the bad ones made none. */
    u = create(h, "good@example.com", "Good");
    assert_true(ct_sink_wait(events, 1, 5000));
    {
        ms_message *ev = ct_sink_get(events, 0);
        json_t *p = NULL;
        ms_assert_ok(ms_message_json(ev, &p));
        assert_string_equal(str(p, USER_FIELD_EMAIL), "good@example.com");
        json_decref(p);
        ms_message_unref(ev);
    }
    json_decref(u);
    ct_sink_stop(events);
    ct_host_stop(h);
}

static void schema_invalid(ct_transport t)
{
    static const struct {
        const char *subject, *json, *field;
    } bad[] = {
        {USER_SUBJECT_CREATE, "{\"email\":\"a@example.com\"}", "'name'"},
        {USER_SUBJECT_CREATE, "{\"name\":\"A\"}", "'email'"},
        {USER_SUBJECT_CREATE, "{\"email\":\"not-an-email\",\"name\":\"A\"}", "'email'"},
        {USER_SUBJECT_CREATE, "{\"email\":\"a@localhost\",\"name\":\"A\"}", "'email'"},
        {USER_SUBJECT_CREATE, "{\"email\":\"a@example.com\",\"name\":\"A\",\"admin\":true}",
         "'admin'"},
        {USER_SUBJECT_CREATE, "{\"email\":\"a@example.com\",\"name\":[]}", "'name'"},
        {USER_SUBJECT_CREATE, "[1,2]", "JSON object"},
        {USER_SUBJECT_GET, "{\"id\":\"1\"}", "'id'"},
        {USER_SUBJECT_LIST, "{\"limit\":1000}", "'limit'"},
        {USER_SUBJECT_UPDATE, "{\"email\":\"a@example.com\"}", "'id'"},
    };
    ct_host *h = ct_host_start(t, NULL);
    ct_sink *events;
    char detail[512], name[300];

    ct_load(h, US);
    events = ct_sink_start(h, USER_EVENT_PATTERN);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = ct_request_error(h, bad[i].subject, bad[i].json, detail, sizeof detail);
        if (code != 400 || strstr(detail, bad[i].field) == NULL)
            fail_msg("%s %s: code %d, detail '%s' (want 400 naming %s)", bad[i].subject,
                     bad[i].json, code, detail, bad[i].field);
    }
    memset(name, 'n', 201);
    name[201] = '\0';
    {
        char json[400];
        snprintf(json, sizeof json, "{\"email\":\"long@example.com\",\"name\":\"%s\"}", name);
        assert_int_equal(ct_request_error(h, USER_SUBJECT_CREATE, json, detail, sizeof detail),
                         400);
        assert_non_null(strstr(detail, "'name'"));
    }
    assert_int_equal(list_count(h), 0);
    ms_assert_ok(ms_bus_flush(h->client, 5000));
    assert_int_equal(ct_sink_count(events), 0);
    ct_sink_stop(events);
    ct_host_stop(h);
}

static void duplicate_email(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    char detail[512];
    int code;

    ct_load(h, US);
    json_decref(create(h, "grace@example.com", "Grace"));
    code = ct_request_error(h, USER_SUBJECT_CREATE,
                            "{\"email\":\"GRACE@example.com\",\"name\":\"Impostor\"}", detail,
                            sizeof detail);
    assert_int_equal(code, 409);
    assert_non_null(strstr(detail, "'email'"));
    assert_non_null(strstr(detail, "already used"));
    assert_int_equal(list_count(h), 1);
    ct_host_stop(h);
}

static void events(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ct_sink *sink;
    json_t *u, *payload = NULL;
    ms_message *ev;
    char json[160];
    static const char *const want[] = {USER_EVENT_CREATED, USER_EVENT_UPDATED, USER_EVENT_DELETED};

    ct_load(h, US);
    sink = ct_sink_start(h, USER_EVENT_PATTERN);
    u = create(h, "ev@example.com", "Eve");
    snprintf(json, sizeof json, "{\"id\":\"%s\",\"email\":\"eve@example.com\"}",
             str(u, USER_FIELD_ID));
    json_decref(ct_request_ok(h, USER_SUBJECT_UPDATE, json));
    snprintf(json, sizeof json, "{\"id\":\"%s\"}", str(u, USER_FIELD_ID));
    json_decref(ct_request_ok(h, USER_SUBJECT_DELETE, json));
    assert_true(ct_sink_wait(sink, 3, 5000));
    for (size_t i = 0; i < 3; i++) {
        ev = ct_sink_get(sink, i);
        assert_string_equal(ms_message_subject(ev), want[i]);
        assert_int_equal(ms_message_type(ev), MS_MSG_EVENT);
        assert_string_equal(ms_message_source(ev), US);
        assert_non_null(ms_message_id(ev));
        assert_int_equal(strlen(ms_message_id(ev)), MS_ID_LEN);
        ms_assert_ok(ms_message_json(ev, &payload));
        assert_string_equal(str(payload, USER_FIELD_ID), str(u, USER_FIELD_ID));
        assert_string_equal(str(payload, USER_FIELD_EMAIL),
                            i == 0 ? "ev@example.com" : "eve@example.com");
        json_decref(payload);
        ms_message_unref(ev);
    }
    json_decref(u);
    ct_sink_stop(sink);
    ct_host_stop(h);
}

/* Config: page_size_default and max_users applied live (a config message
 * and the runtime call), a bad config refused with the old one in force;
 * health degraded at max_users, healthy again below it. */
static void config_and_health(ct_transport t)
{
    ct_host *h = ct_host_start(t, "{\"user-service\": {\"page_size_default\": 2}}");
    ms_instance *inst = ct_load(h, US);
    ms_health hl;
    json_t *cfg, *page, *u;
    char json[96];

    json_decref(create(h, "c1@example.com", "C"));
    u = create(h, "c2@example.com", "C");
    json_decref(create(h, "c3@example.com", "C"));
    page = ct_request_ok(h, USER_SUBJECT_LIST, "{}");
    assert_int_equal(json_array_size(json_object_get(page, USER_FIELD_USERS)), 2);
    json_decref(page);
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_HEALTHY);

    cfg = json_pack("{s:i, s:i}", "max_users", 3, "page_size_default", 2);
    ms_assert_ok(ms_runtime_apply_config(h->rt, US, cfg));
    json_decref(cfg);
    {
        char detail[512];
        assert_int_equal(ct_request_error(h, USER_SUBJECT_CREATE,
                                          "{\"email\":\"c4@example.com\",\"name\":\"C\"}", detail,
                                          sizeof detail),
                         409);
        assert_non_null(strstr(detail, "max_users"));
    }
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_DEGRADED);
    assert_non_null(strstr(hl.detail, "max_users"));
    snprintf(json, sizeof json, "{\"id\":\"%s\"}", str(u, USER_FIELD_ID));
    json_decref(ct_request_ok(h, USER_SUBJECT_DELETE, json));
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_HEALTHY);

    /* Rejected: the old config (max_users 3) stays. */
    cfg = json_pack("{s:i}", "page_size_default", 0);
    ms_assert_status(ms_runtime_apply_config(h->rt, US, cfg), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "page_size_default"));
    json_decref(cfg);
    cfg = json_pack("{s:s}", "colour", "blue");
    ms_assert_status(ms_runtime_apply_config(h->rt, US, cfg), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "colour"));
    json_decref(cfg);
    json_decref(create(h, "c5@example.com", "C"));
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_DEGRADED);
    json_decref(u);
    ct_host_stop(h);
}

/* The users outlive the instance: a fresh one on the same data directory
 * finds them. */
static void persistence(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, US);
    json_t *u, *got;
    char json[96], path[512];

    u = create(h, "keep@example.com", "Keep");
    inst = ct_reload(h, inst, US);
    snprintf(json, sizeof json, "{\"id\":\"%s\"}", str(u, USER_FIELD_ID));
    got = ct_request_ok(h, USER_SUBJECT_GET, json);
    assert_true(json_equal(u, got));
    json_decref(got);
    json_decref(u);
    ct_data_path(h, US, "users.db", path, sizeof path);
    assert_int_equal(access(path, F_OK), 0);
    (void)inst;
    ct_host_stop(h);
}

/* A config message on mainstack.config.user-service (as another process
 * or an agent sends it): applied and acknowledged; a bad one refused with
 * the reason in the error reply and the old one kept. */
static void config_over_bus(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    char detail[512];
    json_t *r, *page;

    ct_load(h, US);
    json_decref(create(h, "b1@example.com", "B"));
    json_decref(create(h, "b2@example.com", "B"));
    r = ct_request_ok(h, "mainstack.config.user-service",
                      "{\"component\":\"user-service\",\"config\":{\"page_size_default\":1}}");
    assert_true(json_is_true(json_object_get(r, "ok")));
    json_decref(r);
    page = ct_request_ok(h, USER_SUBJECT_LIST, "{}");
    assert_int_equal(json_array_size(json_object_get(page, USER_FIELD_USERS)), 1);
    assert_true(json_is_string(json_object_get(page, USER_FIELD_NEXT_CURSOR)));
    json_decref(page);
    assert_int_equal(ct_request_error(h, "mainstack.config.user-service",
                                      "{\"page_size_default\":101}", detail, sizeof detail),
                     400);
    assert_non_null(strstr(detail, "page_size_default"));
    page = ct_request_ok(h, USER_SUBJECT_LIST, "{}");
    assert_int_equal(json_array_size(json_object_get(page, USER_FIELD_USERS)), 1);
    json_decref(page);
    ct_host_stop(h);
}

/* The database file removed under a running instance: health says
 * unhealthy (the file is gone), the supervisor restarts the instance after
 * the unhealthy threshold, and the fresh instance serves again. */
static void database_replaced(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, US);
    ms_instance_stats st;
    ms_health hl;
    char path[512], side[540];
    int64_t deadline;

    json_decref(create(h, "gone@example.com", "Gone"));
    ct_data_path(h, US, "users.db", path, sizeof path);
    assert_int_equal(unlink(path), 0);
    snprintf(side, sizeof side, "%s-wal", path);
    (void)unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    (void)unlink(side);
    for (int i = 0; i < MS_RUNTIME_DEFAULT_UNHEALTHY_THRESHOLD; i++) {
        ms_status s = ms_instance_check_health(inst, 0, &hl);
        if (s == MS_ERR_STATE)
            break; /* already being restarted */
        ms_assert_ok(s);
        assert_int_equal(hl.status, MS_HEALTH_UNHEALTHY);
        assert_non_null(strstr(hl.detail, "gone"));
    }
    deadline = ms_test_now_ms() + 5000;
    do {
        ms_test_sleep_ms(5);
        ms_assert_ok(ms_instance_get_stats(inst, &st));
    } while ((st.restarts < 1 || st.state != MS_INSTANCE_RUNNING) && ms_test_now_ms() < deadline);
    assert_true(st.restarts >= 1);
    assert_int_equal(st.state, MS_INSTANCE_RUNNING);
    /* It subscribed before it was running: once the runtime's connection
     * is flushed, the server knows the new subscriptions. */
    ms_assert_ok(ms_bus_flush(ms_runtime_bus(h->rt), 5000));
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_HEALTHY);
    json_decref(create(h, "gone@example.com", "Back"));
    assert_int_equal(list_count(h), 1);
    ct_host_stop(h);
}

/* A standard NATS services client sees user-service and its five endpoints. */
static void discovery(ct_transport t)
{
    static const char *const ops[] = {"create", "get", "list", "update", "delete"};
    ct_host *h = ct_host_start(t, NULL);
    json_t *info, *eps;

    ct_load(h, US);
    info = ct_request_ok(h, "$SRV.INFO.user-service", NULL);
    assert_string_equal(str(info, "name"), US);
    assert_string_equal(str(info, "version"), USER_SERVICE_VERSION);
    eps = json_object_get(info, "endpoints");
    assert_int_equal(json_array_size(eps), 5);
    for (size_t i = 0; i < 5; i++) {
        char subject[64];
        json_t *ep = json_array_get(eps, i);
        snprintf(subject, sizeof subject, "component.user-service.%s", ops[i]);
        assert_string_equal(str(ep, "name"), ops[i]);
        assert_string_equal(str(ep, "subject"), subject);
        assert_string_equal(str(ep, "queue_group"), US);
    }
    json_decref(info);
    ct_host_stop(h);
}

/* The Testable suite, run by the runtime on the instance's mailbox. */
static void selftest(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, US);
    ms_test_report *r = NULL;

    ms_assert_ok(ms_test_report_create(&r));
    ms_assert_ok(ms_instance_run_tests(inst, r, 30000));
    assert_true(ms_test_report_count(r) >= 10);
    for (size_t i = 0; i < ms_test_report_count(r); i++) {
        const ms_test_result *res = ms_test_report_at(r, i);
        if (!res->passed)
            fail_msg("selftest %s failed: %s", res->name, res->output);
    }
    assert_int_equal(ms_test_report_failed(r), 0);
    ms_test_report_destroy(r);
    ct_host_stop(h);
}

#define BOTH(fn)                                                                                   \
    static void fn##_inproc(void **state)                                                          \
    {                                                                                              \
        (void)state;                                                                               \
        fn(CT_INPROC);                                                                             \
    }                                                                                              \
    static void fn##_nats(void **state)                                                            \
    {                                                                                              \
        (void)state;                                                                               \
        fn(CT_NATS);                                                                               \
    }

BOTH(crud)
BOTH(list_paging)
BOTH(malformed_json)
BOTH(schema_invalid)
BOTH(duplicate_email)
BOTH(events)
BOTH(config_and_health)
BOTH(persistence)
BOTH(config_over_bus)
BOTH(database_replaced)
BOTH(discovery)
BOTH(selftest)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(crud_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(crud_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(list_paging_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(list_paging_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(malformed_json_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(malformed_json_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(schema_invalid_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(schema_invalid_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(duplicate_email_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(duplicate_email_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(events_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(events_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(config_and_health_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(config_and_health_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(persistence_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(persistence_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(config_over_bus_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(config_over_bus_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(database_replaced_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(database_replaced_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(discovery_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(discovery_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(selftest_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(selftest_nats, NULL, ct_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
