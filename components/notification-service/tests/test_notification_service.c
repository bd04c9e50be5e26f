/*
 * test_notification_service.c - notification-service hosted by the runtime
 * from its plugin, with user-service beside it for the end-to-end cases, on
 * both transports (every case runs as <case>_inproc and <case>_nats).
 *
 * Covers: a user created through user-service becomes a notification in the
 * outbox file and an events.notification.sent event; a redelivered event
 * (same Ms-Id) notifies once, also after a restart; an outbox that cannot be
 * written turns health degraded and back to healthy, delivering what waited;
 * the outbox request; live template changes (runtime call and config file
 * reload) and bad templates refused with their offset; bad events counted
 * as errors; discovery ($SRV.INFO); the Testable suite.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "component_test.h"
#include "../src/interface.h"
#include "../../user-service/src/interface.h"

#define NS "notification-service"
#define US "user-service"

static const char *str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s == NULL)
        fail_msg("no string '%s'", key);
    return s;
}

static void outbox_path(ct_host *h, char *out, size_t size)
{
    ct_data_path(h, NS, NOTIFY_DEFAULT_OUTBOX, out, size);
}

/* Publish a user event the way user-service does (ms_msg_event), or with a
 * given id; returns the id used. */
static void publish_event(ct_host *h, const char *subject, const char *id, const char *payload,
                          char *id_out)
{
    ms_message *m = NULL;
    json_t *body = json_loads(payload, 0, NULL);

    ms_assert_ok(ms_msg_event(subject, "test", body, &m));
    json_decref(body);
    if (id != NULL)
        ms_assert_ok(ms_message_set_id(m, id));
    if (id_out != NULL)
        snprintf(id_out, MS_ID_LEN + 1, "%s", ms_message_id(m));
    ms_assert_ok(ms_bus_publish_msg(h->client, m));
    ms_message_unref(m);
    ms_assert_ok(ms_bus_flush(h->client, 5000));
}

/* Wait until the instance has handled n messages in all. */
static void wait_handled(ms_instance *inst, uint64_t n)
{
    int64_t deadline = ms_test_now_ms() + 5000;
    ms_instance_stats st;

    for (;;) {
        ms_assert_ok(ms_instance_get_stats(inst, &st));
        if (st.num_requests >= n)
            return;
        if (ms_test_now_ms() > deadline)
            fail_msg("%s handled %llu messages, want %llu", ms_instance_component(inst),
                     (unsigned long long)st.num_requests, (unsigned long long)n);
        ms_test_sleep_ms(2);
    }
}

static void end_to_end(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ct_sink *sent, *user_events;
    json_t *u, *line, *payload = NULL;
    ms_message *ev, *uev;
    char path[512];

    ct_load(h, NS);
    ct_load(h, US);
    sent = ct_sink_start(h, NOTIFY_EVENT_SENT);
    user_events = ct_sink_start(h, USER_EVENT_CREATED);
    u = ct_request_ok(h, USER_SUBJECT_CREATE, "{\"email\":\"ada@example.com\",\"name\":\"Ada\"}");
    outbox_path(h, path, sizeof path);
    assert_true(ct_wait_lines(path, 1, 5000));
    line = ct_file_line_json(path, 0);
    assert_non_null(line);
    assert_string_equal(str(line, NOTIFY_FIELD_EVENT), USER_EVENT_CREATED);
    assert_string_equal(str(line, NOTIFY_FIELD_USER_ID), str(u, USER_FIELD_ID));
    assert_string_equal(str(line, NOTIFY_FIELD_TO), "ada@example.com");
    assert_string_equal(str(line, NOTIFY_FIELD_TEXT),
                        "Welcome, Ada <ada@example.com>! Your account is ready.");
    assert_non_null(json_object_get(line, NOTIFY_FIELD_TIME));

    /* The notification's event_id is the user event's Ms-Id; the sent event
     * carries the notification and correlates to that id. */
    assert_true(ct_sink_wait(user_events, 1, 5000));
    assert_true(ct_sink_wait(sent, 1, 5000));
    uev = ct_sink_get(user_events, 0);
    ev = ct_sink_get(sent, 0);
    assert_string_equal(str(line, NOTIFY_FIELD_EVENT_ID), ms_message_id(uev));
    assert_string_equal(ms_message_correlation_id(ev), ms_message_id(uev));
    assert_string_equal(ms_message_source(ev), NS);
    ms_assert_ok(ms_message_json(ev, &payload));
    assert_true(json_equal(payload, line));
    json_decref(payload);
    ms_message_unref(ev);
    ms_message_unref(uev);

    /* Update and delete notify too, in order. */
    {
        char json[160];
        snprintf(json, sizeof json, "{\"id\":\"%s\",\"name\":\"Ada L.\"}", str(u, USER_FIELD_ID));
        json_decref(ct_request_ok(h, USER_SUBJECT_UPDATE, json));
        snprintf(json, sizeof json, "{\"id\":\"%s\"}", str(u, USER_FIELD_ID));
        json_decref(ct_request_ok(h, USER_SUBJECT_DELETE, json));
        assert_true(ct_wait_lines(path, 3, 5000));
        json_decref(line);
        line = ct_file_line_json(path, 2);
        assert_string_equal(str(line, NOTIFY_FIELD_EVENT), USER_EVENT_DELETED);
        assert_string_equal(str(line, NOTIFY_FIELD_TEXT),
                            "Goodbye, Ada L.: your account <ada@example.com> was deleted.");
    }
    json_decref(line);
    json_decref(u);
    ct_sink_stop(sent);
    ct_sink_stop(user_events);
    ct_host_stop(h);
}

static void duplicate_event(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, NS);
    const char *user = "{\"id\":\"u-1\",\"email\":\"dup@example.com\",\"name\":\"Dup\"}";
    char path[512], id[MS_ID_LEN + 1];

    outbox_path(h, path, sizeof path);
    publish_event(h, USER_EVENT_CREATED, NULL, user, id);
    publish_event(h, USER_EVENT_CREATED, id, user, NULL); /* redelivered: same Ms-Id */
    publish_event(h, USER_EVENT_CREATED, id, user, NULL);
    wait_handled(inst, 3);
    assert_int_equal(ct_file_lines(path), 1);

    /* A fresh instance remembers (the ids are rebuilt from its files). */
    inst = ct_reload(h, inst, NS);
    publish_event(h, USER_EVENT_CREATED, id, user, NULL);
    wait_handled(inst, 1);
    assert_int_equal(ct_file_lines(path), 1);
    /* A new event for the same user is a new notification. */
    publish_event(h, USER_EVENT_UPDATED, NULL, user, NULL);
    assert_true(ct_wait_lines(path, 2, 5000));
    ct_host_stop(h);
}

/* The outbox replaced by a directory: the event is queued, health turns
 * degraded (naming the file); once the directory is gone, a health check
 * delivers what waited and health is back to healthy. */
static void outbox_unwritable(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, NS);
    ct_sink *sent = ct_sink_start(h, NOTIFY_EVENT_SENT);
    const char *user = "{\"id\":\"u-2\",\"email\":\"io@example.com\",\"name\":\"Io\"}";
    char path[512];
    ms_health hl;
    ms_instance_stats st;

    outbox_path(h, path, sizeof path);
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_HEALTHY);
    (void)unlink(path);
    assert_int_equal(mkdir(path, 0755), 0);
    publish_event(h, USER_EVENT_CREATED, NULL, user, NULL);
    wait_handled(inst, 1);
    /* Queued, not failed: no error counts toward a restart. */
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.num_errors, 0);
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_DEGRADED);
    assert_non_null(strstr(hl.detail, NOTIFY_DEFAULT_OUTBOX));
    assert_non_null(strstr(hl.detail, "1 notification pending"));
    assert_int_equal(ct_sink_count(sent), 0);

    /* The outbox request reports what waits. */
    {
        json_t *r = ct_request_ok(h, NOTIFY_SUBJECT_OUTBOX, NULL);
        assert_int_equal(json_integer_value(json_object_get(r, NOTIFY_FIELD_PENDING)), 1);
        json_decref(r);
    }
    assert_int_equal(rmdir(path), 0);
    ms_assert_ok(ms_instance_check_health(inst, 0, &hl));
    assert_int_equal(hl.status, MS_HEALTH_HEALTHY);
    assert_int_equal(ct_file_lines(path), 1);
    assert_true(ct_sink_wait(sent, 1, 5000));
    ct_sink_stop(sent);
    ct_host_stop(h);
}

static void outbox_request(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, NS);
    char json[160], detail[512];
    json_t *r, *list;

    for (int i = 0; i < 5; i++) {
        snprintf(json, sizeof json,
                 "{\"id\":\"u%d\",\"email\":\"u%d@example.com\",\"name\":\"U%d\"}", i, i, i);
        publish_event(h, USER_EVENT_CREATED, NULL, json, NULL);
    }
    wait_handled(inst, 5);
    r = ct_request_ok(h, NOTIFY_SUBJECT_OUTBOX, "{\"limit\":3}");
    list = json_object_get(r, NOTIFY_FIELD_NOTIFICATIONS);
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(str(json_array_get(list, 2), NOTIFY_FIELD_TO), "u4@example.com");
    assert_string_equal(str(json_array_get(list, 0), NOTIFY_FIELD_TO), "u2@example.com");
    assert_string_equal(str(r, NOTIFY_FIELD_OUTBOX), NOTIFY_DEFAULT_OUTBOX);
    json_decref(r);
    assert_int_equal(
        ct_request_error(h, NOTIFY_SUBJECT_OUTBOX, "{\"limit\":0}", detail, sizeof detail), 400);
    assert_non_null(strstr(detail, "'limit'"));
    assert_int_equal(
        ct_request_error(h, NOTIFY_SUBJECT_OUTBOX, "{\"since\":1}", detail, sizeof detail), 400);
    assert_non_null(strstr(detail, "'since'"));
    ct_host_stop(h);
}

/* A template from the config file, then changed live; a bad one is refused
 * with its offset and the old one stays. */
static void templates(ct_transport t)
{
    ct_host *h = ct_host_start(
        t, "{\"notification-service\": {\"templates\": {\"created\": \"Hello {{name}}!\"}}}");
    ms_instance *inst = ct_load(h, NS);
    char path[512];
    json_t *cfg, *line;

    outbox_path(h, path, sizeof path);
    publish_event(h, USER_EVENT_CREATED, NULL,
                  "{\"id\":\"a\",\"email\":\"a@x.org\",\"name\":\"A\"}", NULL);
    /* No template for updated in this config: not notified. */
    publish_event(h, USER_EVENT_UPDATED, NULL,
                  "{\"id\":\"a\",\"email\":\"a@x.org\",\"name\":\"A\"}", NULL);
    wait_handled(inst, 2);
    assert_int_equal(ct_file_lines(path), 1);
    line = ct_file_line_json(path, 0);
    assert_string_equal(str(line, NOTIFY_FIELD_TEXT), "Hello A!");
    json_decref(line);

    cfg = json_pack("{s:{s:s}}", "templates", "created", "Hi {{name}} {{missing}}({{ email }})");
    ms_assert_ok(ms_runtime_apply_config(h->rt, NS, cfg));
    json_decref(cfg);
    cfg = json_pack("{s:{s:s}}", "templates", "created", "Broken {{name");
    ms_assert_status(ms_runtime_apply_config(h->rt, NS, cfg), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "unclosed '{{' at offset 7"));
    json_decref(cfg);
    publish_event(h, USER_EVENT_CREATED, NULL,
                  "{\"id\":\"b\",\"email\":\"b@x.org\",\"name\":\"B\"}", NULL);
    assert_true(ct_wait_lines(path, 2, 5000));
    line = ct_file_line_json(path, 1);
    assert_string_equal(str(line, NOTIFY_FIELD_TEXT), "Hi B (b@x.org)");
    json_decref(line);
    ct_host_stop(h);
}

/* The config file reloaded (what SIGHUP does): a new template applies; a
 * file that does not parse, or a template that does not, changes nothing. */
static void config_file_reload(ct_transport t)
{
    ct_host *h = ct_host_start(t, "{\"notification-service\": {}}");
    ms_instance *inst = ct_load(h, NS);
    const char *user = "{\"id\":\"r\",\"email\":\"r@x.org\",\"name\":\"R\"}";
    char path[512];
    json_t *line;
    FILE *f;

    outbox_path(h, path, sizeof path);
    f = fopen(h->config_path, "we");
    assert_non_null(f);
    fputs("{\"notification-service\": {\"templates\": {\"created\": \"New: {{email}}\"}}}", f);
    assert_int_equal(fclose(f), 0);
    ms_assert_ok(ms_runtime_reload_config(h->rt));
    f = fopen(h->config_path, "we");
    assert_non_null(f);
    fputs("{\"notification-service\": {\"templates\": {", f); /* does not parse */
    assert_int_equal(fclose(f), 0);
    ms_assert_status(ms_runtime_reload_config(h->rt), MS_ERR_PARSE);
    f = fopen(h->config_path, "we");
    assert_non_null(f);
    fputs("{\"notification-service\": {\"templates\": {\"created\": \"{{}}\"}}}", f);
    assert_int_equal(fclose(f), 0);
    ms_assert_status(ms_runtime_reload_config(h->rt), MS_ERR_SCHEMA);
    assert_non_null(strstr(ms_last_error(), "empty placeholder at offset 0"));
    publish_event(h, USER_EVENT_CREATED, NULL, user, NULL);
    wait_handled(inst, 1);
    assert_true(ct_wait_lines(path, 1, 5000));
    line = ct_file_line_json(path, 0);
    assert_string_equal(str(line, NOTIFY_FIELD_TEXT), "New: r@x.org");
    json_decref(line);
    ct_host_stop(h);
}

/* A standard NATS services client sees notification-service's endpoints. */
static void discovery(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    json_t *info, *eps;

    ct_load(h, NS);
    info = ct_request_ok(h, "$SRV.INFO.notification-service", NULL);
    assert_string_equal(str(info, "version"), NOTIFICATION_SERVICE_VERSION);
    eps = json_object_get(info, "endpoints");
    assert_int_equal(json_array_size(eps), 2);
    assert_string_equal(str(json_array_get(eps, 0), "subject"), USER_EVENT_PATTERN);
    assert_string_equal(str(json_array_get(eps, 1), "subject"), NOTIFY_SUBJECT_OUTBOX);
    assert_string_equal(str(json_array_get(eps, 1), "name"), "outbox");
    json_decref(info);
    ct_host_stop(h);
}

/* Events that cannot be notified are errors (counted), never a crash and
 * never a line in the outbox. */
static void bad_events(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, NS);
    ms_instance_stats st;
    char path[512];

    outbox_path(h, path, sizeof path);
    /* Not JSON, not an object, and a plain message without Ms-Id. */
    {
        ms_message *m = NULL;
        ms_assert_ok(ms_msg_event(USER_EVENT_CREATED, "test", NULL, &m));
        ms_assert_ok(ms_message_set_data(m, "{oops", 5));
        ms_assert_ok(ms_bus_publish_msg(h->client, m));
        ms_message_unref(m);
    }
    publish_event(h, USER_EVENT_CREATED, NULL, "[1,2,3]", NULL);
    ms_assert_ok(ms_bus_publish(h->client, USER_EVENT_CREATED, "{\"name\":\"x\"}", 12));
    ms_assert_ok(ms_bus_flush(h->client, 5000));
    wait_handled(inst, 3);
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.num_errors, 3);
    assert_int_equal(st.state, MS_INSTANCE_RUNNING);
    assert_true(ct_file_lines(path) <= 0);
    ct_host_stop(h);
}

static void selftest(ct_transport t)
{
    ct_host *h = ct_host_start(t, NULL);
    ms_instance *inst = ct_load(h, NS);
    ms_test_report *r = NULL;

    ms_assert_ok(ms_test_report_create(&r));
    ms_assert_ok(ms_instance_run_tests(inst, r, 30000));
    assert_true(ms_test_report_count(r) >= 7);
    for (size_t i = 0; i < ms_test_report_count(r); i++) {
        const ms_test_result *res = ms_test_report_at(r, i);
        if (!res->passed)
            fail_msg("selftest %s failed: %s", res->name, res->output);
    }
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

BOTH(end_to_end)
BOTH(duplicate_event)
BOTH(outbox_unwritable)
BOTH(outbox_request)
BOTH(templates)
BOTH(bad_events)
BOTH(config_file_reload)
BOTH(discovery)
BOTH(selftest)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(end_to_end_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(end_to_end_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(duplicate_event_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(duplicate_event_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(outbox_unwritable_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(outbox_unwritable_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(outbox_request_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(outbox_request_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(templates_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(templates_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(bad_events_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(bad_events_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(config_file_reload_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(config_file_reload_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(discovery_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(discovery_nats, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(selftest_inproc, NULL, ct_teardown),
        cmocka_unit_test_setup_teardown(selftest_nats, NULL, ct_teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
