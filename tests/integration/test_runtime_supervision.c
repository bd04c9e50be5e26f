/*
 * test_runtime_supervision.c - health and supervision: health statuses
 * published and served on request (per component, per host, by API),
 * restarts after a failed initialize, after N unhealthy checks, after a
 * check that does not return in time and after M failing handlers in a
 * row; the restart types (permanent, transient, temporary) with normal and
 * abnormal stops; and, past the restart intensity, a failed instance and an
 * escalation event on mainstack.escalation.<component>.
 */
#include "test_runtime_common.h"

/* --- components of this program ---------------------------------------------- */

/* "hc": health from globals; the check may be slowed down. */
static _Atomic ms_health_status hc_status;
static atomic_int hc_sleep_ms;

static ms_health hc_check(void *self)
{
    ms_health h = {MS_HEALTH_HEALTHY, ""};
    (void)self;
    if (atomic_load(&hc_sleep_ms) > 0)
        ms_test_sleep_ms(atomic_load(&hc_sleep_ms));
    h.status = atomic_load(&hc_status);
    if (h.status != MS_HEALTH_HEALTHY)
        snprintf(h.detail, sizeof h.detail, "outbox not writable");
    return h;
}

static ms_status hc_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    return tc_reply_str(in, "ok", reply);
}

static const ms_topic hc_topics[] = {{"component.hc.op", 0}, {NULL, 0}};
static const ms_component_ops hc_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"hc", "3.1.4", "health from a switch"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = hc_topics,
    .handle_message = hc_handle,
    .health_check = hc_check,
};

/* "flakyinit": initialize fails while flaky_fail_left > 0. */
static atomic_int flaky_fail_left, flaky_creates;

static void *flaky_create(void)
{
    atomic_fetch_add(&flaky_creates, 1);
    return tc_create();
}

static ms_status flakyinit_init(void *self, ms_component_ctx *ctx)
{
    if (atomic_fetch_sub(&flaky_fail_left, 1) > 0)
        return ms_ctx_error(ctx, MS_ERR_IO, "cannot open the database (test)");
    return tc_init(self, ctx);
}

static ms_status ok_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    return tc_reply_str(in, "ok", reply);
}

static const ms_topic flakyinit_topics[] = {{"component.flakyinit.op", 0}, {NULL, 0}};
static const ms_component_ops flakyinit_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"flakyinit", "1.0.0", "fails to start a few times"},
    .create = flaky_create,
    .destroy = tc_destroy,
    .initialize = flakyinit_init,
    .topics = flakyinit_topics,
    .handle_message = ok_handle,
};

/* "stopper": stops itself normally on request; counts creates and shutdowns. */
static atomic_int stopper_creates, stopper_shutdowns;

static void *stopper_create(void)
{
    atomic_fetch_add(&stopper_creates, 1);
    return tc_create();
}

static void stopper_shutdown(void *self)
{
    (void)self;
    atomic_fetch_add(&stopper_shutdowns, 1);
}

static ms_status stopper_handle(void *self, const ms_message *in, ms_message **reply)
{
    tc_self *s = self;
    ms_ctx_stop(s->ctx);
    return tc_reply_str(in, "bye", reply);
}

static const ms_topic stopper_topics[] = {{"component.stopper.stop", 0}, {NULL, 0}};
static const ms_component_ops stopper_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"stopper", "1.0.0", "stops itself"},
    .create = stopper_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .shutdown = stopper_shutdown,
    .topics = stopper_topics,
    .handle_message = stopper_handle,
};

/* --- cases --------------------------------------------------------------------- */

static void health_published_and_served(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *a = NULL, *b = NULL;
    test_opts(f, &o);
    o.health_interval_ms = 30;
    atomic_store(&hc_status, MS_HEALTH_HEALTHY);
    atomic_store(&hc_sleep_ms, 0);
    collector *pub = collect(f, "mainstack.health.hc");
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &hc_ops, NULL, &a));
    ms_assert_ok(ms_runtime_add(f->rt, &hc_ops, NULL, &b));

    /* published: at start and after each check */
    assert_true(collected_wait(pub, 4, 3000) >= 4);
    json_t *j = collected_json(pub, 0);
    assert_string_equal(jstr(j, "component"), "hc");
    assert_int_equal(strlen(jstr(j, "instance")), 22);
    assert_string_equal(jstr(j, "version"), "3.1.4");
    assert_string_equal(jstr(j, "status"), "healthy");
    assert_string_equal(jstr(j, "state"), "running");
    assert_string_equal(jstr(j, "detail"), "");
    assert_int_equal(strlen(jstr(j, "time")), MS_TIMESTAMP_LEN);
    json_decref(j);

    /* degraded shows with its detail */
    atomic_store(&hc_status, MS_HEALTH_DEGRADED);
    int seen = 0;
    int64_t deadline = ms_test_now_ms() + 3000;
    while (!seen && ms_test_now_ms() < deadline) {
        int n = collected_wait(pub, 1, 10);
        for (int i = 0; i < n && !seen; i++) {
            json_t *m = collected_json(pub, i);
            if (strcmp(jstr(m, "status"), "degraded") == 0) {
                assert_string_equal(jstr(m, "detail"), "outbox not writable");
                seen = 1;
            }
            json_decref(m);
        }
        ms_test_sleep_ms(10);
    }
    assert_true(seen);
    ms_health h;
    ms_assert_ok(ms_instance_check_health(a, 1000, &h));
    assert_int_equal(h.status, MS_HEALTH_DEGRADED);
    assert_string_equal(h.detail, "outbox not writable");
    /* degraded does not count toward a restart */
    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(a, &st));
    assert_int_equal(st.restarts, 0);
    assert_int_equal(st.consecutive_unhealthy, 0);
    assert_int_equal(st.health.status, MS_HEALTH_DEGRADED);

    /* on request, per component: every instance answers */
    char *inbox = NULL, pattern[160];
    ms_assert_ok(ms_bus_new_inbox(f->client, &inbox));
    snprintf(pattern, sizeof pattern, "%s", inbox);
    collector *ans = collect(f, pattern);
    ms_assert_ok(ms_bus_publish_reply(f->client, "mainstack.health.hc.get", inbox, NULL, 0));
    assert_int_equal(collected_wait(ans, 2, 3000), 2);
    json_t *r0 = collected_json(ans, 0), *r1 = collected_json(ans, 1);
    assert_string_equal(jstr(r0, "component"), "hc");
    assert_string_not_equal(jstr(r0, "instance"), jstr(r1, "instance"));
    json_decref(r0);
    json_decref(r1);
    collect_free(ans);
    free(inbox);

    /* per host */
    ms_message *r = request_str(f, "mainstack.health", "");
    json_t *all = reply_json(r);
    assert_int_equal(strlen(jstr(all, "host")), 22);
    assert_int_equal(json_array_size(json_object_get(all, "instances")), 2);
    json_decref(all);
    ms_message_unref(r);
    /* by API, filtered */
    ms_assert_ok(ms_runtime_health(f->rt, "hc", &all));
    assert_int_equal(json_array_size(json_object_get(all, "instances")), 2);
    json_decref(all);
    ms_assert_ok(ms_runtime_health(f->rt, "nobody", &all));
    assert_int_equal(json_array_size(json_object_get(all, "instances")), 0);
    json_decref(all);
    /* no instance of that name: nobody answers */
    ms_status s = ms_bus_request(f->client, "mainstack.health.nobody.get", NULL, 0, 200, &r);
    if (s != MS_ERR_TIMEOUT)
        fail_msg("want a timeout, got %s", ms_status_name(s));
    collect_free(pub);
}

static void restart_after_failed_initialize(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    atomic_store(&flaky_fail_left, 2);
    atomic_store(&flaky_creates, 0);
    start_rt(f, &o);
    /* the first start fails: still MS_OK, the supervisor takes over */
    ms_assert_ok(ms_runtime_add(f->rt, &flakyinit_ops, NULL, &inst));
    assert_true(wait_state(inst, MS_INSTANCE_RUNNING, 3000));
    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.restarts, 2);
    assert_int_equal(atomic_load(&flaky_creates), 3); /* a fresh object each time */
    ms_assert_ok(ms_bus_flush(ms_runtime_bus(f->rt), 3000));
    ms_message *r = request_str(f, "component.flakyinit.op", "");
    assert_payload(r, "ok");
    ms_message_unref(r);
}

static void check_escalation(json_t *ev, const char *component, const char *id,
                             const char *reason_part)
{
    assert_string_equal(jstr(ev, "component"), component);
    assert_string_equal(jstr(ev, "instance"), id);
    assert_contains(jstr(ev, "reason"), reason_part);
    assert_true(json_is_integer(json_object_get(ev, "restarts")));
    assert_true(json_is_number(json_object_get(ev, "window")));
    assert_int_equal(json_integer_value(json_object_get(ev, "window_ms")), 10000);
    assert_true(json_is_integer(json_object_get(ev, "max_restarts")));
    assert_int_equal(strlen(jstr(ev, "time")), MS_TIMESTAMP_LEN);
}

static void initialize_intensity_escalates(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    o.max_restarts = 2;
    collector *esc = collect(f, "mainstack.escalation.>");
    collector *health = collect(f, "mainstack.health.initfail");
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/initfail.so", NULL, &inst));
    assert_true(wait_state(inst, MS_INSTANCE_FAILED, 3000));
    assert_int_equal(collected_wait(esc, 1, 3000), 1);
    json_t *ev = collected_json(esc, 0);
    check_escalation(ev, "initfail", ms_instance_id(inst), "restart intensity exceeded");
    assert_contains(jstr(ev, "reason"), "initialize failed");
    assert_int_equal(json_integer_value(json_object_get(ev, "restarts")), 2);
    assert_int_equal(json_integer_value(json_object_get(ev, "max_restarts")), 2);
    assert_string_equal(jstr(ev, "restart_type"), "permanent");
    assert_true(json_real_value(json_object_get(ev, "window")) == 10.0);
    json_decref(ev);
    pthread_mutex_lock(&esc->mu);
    assert_string_equal(ms_message_subject(esc->msgs[0]), "mainstack.escalation.initfail");
    pthread_mutex_unlock(&esc->mu);
    /* the last published status says failed */
    int n = collected_wait(health, 3, 3000);
    assert_true(n >= 3);
    ms_test_sleep_ms(20);
    n = collected_wait(health, 3, 10);
    json_t *last = collected_json(health, n - 1);
    assert_string_equal(jstr(last, "state"), "failed");
    assert_string_equal(jstr(last, "status"), "unhealthy");
    json_decref(last);
    /* stays failed: no more restarts */
    ms_test_sleep_ms(50);
    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.restarts, 2);
    assert_int_equal(st.state, MS_INSTANCE_FAILED);
    ms_health h;
    ms_assert_status(ms_instance_check_health(inst, 100, &h), MS_ERR_STATE);
    collect_free(esc);
    collect_free(health);
}

static void restart_after_unhealthy_checks(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    o.health_interval_ms = 15;
    o.unhealthy_threshold = 2;
    o.max_restarts = 1;
    collector *esc = collect(f, "mainstack.escalation.unhealthy");
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/unhealthy.so", NULL, &inst));
    /* restarted once after 2 unhealthy checks, then given up */
    assert_true(wait_restarts(inst, 1, 3000));
    assert_true(wait_state(inst, MS_INSTANCE_FAILED, 3000));
    assert_int_equal(collected_wait(esc, 1, 3000), 1);
    json_t *ev = collected_json(esc, 0);
    check_escalation(ev, "unhealthy", ms_instance_id(inst), "unhealthy 2 checks in a row");
    assert_contains(jstr(ev, "reason"), "always unhealthy (test plugin)");
    json_decref(ev);
    collect_free(esc);
}

static void health_check_timeout_counts(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    o.health_interval_ms = 20;
    o.health_timeout_ms = 40;
    o.unhealthy_threshold = 1;
    o.max_restarts = 0;
    atomic_store(&hc_status, MS_HEALTH_HEALTHY);
    atomic_store(&hc_sleep_ms, 200);
    collector *esc = collect(f, "mainstack.escalation.hc");
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &hc_ops, NULL, &inst));
    assert_true(wait_state(inst, MS_INSTANCE_FAILED, 3000));
    assert_int_equal(collected_wait(esc, 1, 3000), 1);
    json_t *ev = collected_json(esc, 0);
    assert_contains(jstr(ev, "reason"), "did not return within 40 ms");
    json_decref(ev);
    atomic_store(&hc_sleep_ms, 0);
    collect_free(esc);
}

static void check_health_api_timeout(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    ms_health h;
    test_opts(f, &o);
    o.unhealthy_threshold = 5;
    atomic_store(&hc_status, MS_HEALTH_HEALTHY);
    atomic_store(&hc_sleep_ms, 150);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &hc_ops, NULL, &inst));
    ms_assert_status(ms_instance_check_health(inst, 30, &h), MS_ERR_TIMEOUT);
    assert_int_equal(h.status, MS_HEALTH_UNHEALTHY);
    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.consecutive_unhealthy, 1);
    atomic_store(&hc_sleep_ms, 0);
    ms_test_sleep_ms(200); /* the late check finishes */
    ms_assert_ok(ms_instance_check_health(inst, 1000, &h));
    assert_int_equal(h.status, MS_HEALTH_HEALTHY);
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.consecutive_unhealthy, 0);
    ms_assert_status(ms_instance_check_health(NULL, 10, &h), MS_ERR_INVALID_ARG);
}

static void handler_failures_restart(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    o.failure_threshold = 3;
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/failing.so", NULL, &inst));
    for (int i = 0; i < 3; i++) {
        ms_message *r = request_str(f, "component.failing.op", "");
        assert_string_equal(ms_message_header(r, "Nats-Service-Error-Code"), "500");
        ms_message_unref(r);
    }
    assert_true(wait_restarts(inst, 1, 3000));
    assert_true(wait_state(inst, MS_INSTANCE_RUNNING, 3000));
    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.consecutive_failures, 0);
    /* client errors (4xx) do not count toward a restart */
    ms_assert_ok(ms_runtime_add(f->rt, &flaky_ops, NULL, &inst));
    for (int i = 0; i < 5; i++) {
        ms_message *r = request_str(f, "component.flaky.op", "schema");
        ms_message_unref(r);
    }
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.restarts, 0);
    assert_int_equal(st.num_errors, 5);
}

static void restart_types(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance_options io;
    ms_instance *temp = NULL, *trans = NULL, *perm = NULL, *trans_fail = NULL;
    test_opts(f, &o);
    o.max_restarts = 1;
    collector *esc = collect(f, "mainstack.escalation.>");
    start_rt(f, &o);

    /* temporary + failed initialize: failed at once, never restarted */
    ms_instance_options_init(f->rt, &io);
    io.restart = MS_RESTART_TEMPORARY;
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/initfail.so", &io, &temp));
    assert_true(wait_state(temp, MS_INSTANCE_FAILED, 3000));
    assert_int_equal(collected_wait(esc, 1, 3000), 1);
    json_t *ev = collected_json(esc, 0);
    assert_contains(jstr(ev, "reason"), "restart type temporary");
    json_decref(ev);

    /* transient + failed initialize (abnormal): restarted, then failed */
    io.restart = MS_RESTART_TRANSIENT;
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/initfail.so", &io, &trans_fail));
    assert_true(wait_state(trans_fail, MS_INSTANCE_FAILED, 3000));
    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(trans_fail, &st));
    assert_int_equal(st.restarts, 1);

    /* transient + a normal stop: stopped, not restarted, no escalation */
    atomic_store(&stopper_creates, 0);
    atomic_store(&stopper_shutdowns, 0);
    ms_assert_ok(ms_runtime_add(f->rt, &stopper_ops, &io, &trans));
    ms_message *r = request_str(f, "component.stopper.stop", "");
    assert_payload(r, "bye");
    ms_message_unref(r);
    assert_true(wait_state(trans, MS_INSTANCE_STOPPED, 3000));
    assert_int_equal(atomic_load(&stopper_shutdowns), 1);
    assert_int_equal(atomic_load(&stopper_creates), 1);
    ms_assert_ok(ms_instance_get_stats(trans, &st));
    assert_int_equal(st.restarts, 0);

    /* permanent + a normal stop: restarted with a fresh object */
    io.restart = MS_RESTART_PERMANENT;
    ms_assert_ok(ms_runtime_add(f->rt, &stopper_ops, &io, &perm));
    ms_assert_ok(ms_runtime_remove(f->rt, trans, 1000)); /* one serving instance only */
    r = request_str(f, "component.stopper.stop", "");
    ms_message_unref(r);
    assert_true(wait_restarts(perm, 1, 3000));
    assert_true(wait_state(perm, MS_INSTANCE_RUNNING, 3000));
    assert_int_equal(atomic_load(&stopper_creates), 3);
    ms_test_sleep_ms(30);
    assert_int_equal(collected_wait(esc, 2, 10), 2); /* temporary + transient failures only */
    collect_free(esc);
}

#define BOTH(name)                                                                               \
    static void nats_##name(void **s) { name(s); }                                               \
    static void inproc_##name(void **s) { name(s); }

BOTH(health_published_and_served)
BOTH(restart_after_failed_initialize)
BOTH(initialize_intensity_escalates)
BOTH(handler_failures_restart)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nats_health_published_and_served, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_health_published_and_served, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_restart_after_failed_initialize, setup_nats,
                                        teardown),
        cmocka_unit_test_setup_teardown(inproc_restart_after_failed_initialize, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_initialize_intensity_escalates, setup_nats,
                                        teardown),
        cmocka_unit_test_setup_teardown(inproc_initialize_intensity_escalates, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_handler_failures_restart, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_handler_failures_restart, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(restart_after_unhealthy_checks, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(health_check_timeout_counts, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(check_health_api_timeout, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(restart_types, setup_inproc, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
