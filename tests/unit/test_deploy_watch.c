/*
 * test_deploy_watch.c - ms_watch_judge, the verdict of the watch window
 * after a promotion, on hand-built $SRV.STATS and health samples: the
 * window's delta per instance id, the previous version's rate as the
 * baseline, the threshold and the minimum of requests, health before the
 * error rate, other components ignored, a restarted instance, bad input.
 */
#include <string.h>

#include <mainstack/deploy.h>

#include "ms_test.h"

/* One stats_response of component name, instance id, with one endpoint. */
static json_t *stats(const char *name, const char *id, int requests, int errors)
{
    return json_pack("{s:s, s:s, s:s, s:[{s:s, s:i, s:i}]}", "type",
                     "io.nats.micro.v1.stats_response", "name", name, "id", id, "endpoints", "name",
                     "echo", "num_requests", requests, "num_errors", errors);
}

static json_t *health_of(const char *component, const char *instance, const char *state,
                         const char *status)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "component", component, "instance", instance,
                     "state", state, "status", status, "detail", "");
}

static void healthy_within_threshold(void **state)
{
    json_t *prev = json_pack("[o]", stats("svc", "old", 100, 2));
    json_t *start = json_pack("[o, o]", stats("svc", "a", 10, 0), stats("svc", "b", 0, 0));
    json_t *now = json_pack("[o, o]", stats("svc", "a", 60, 3), stats("svc", "b", 50, 1));
    json_t *health = json_pack("[o, o]", health_of("svc", "a", "running", "healthy"),
                               health_of("svc", "b", "running", "degraded"));
    ms_watch_verdict v;
    (void)state;

    ms_assert_ok(ms_watch_judge("svc", prev, start, now, health, NULL, &v));
    assert_false(v.degraded);
    assert_string_equal(v.check, "");
    assert_int_equal(v.previous_requests, 100);
    assert_int_equal(v.previous_errors, 2);
    assert_int_equal(v.requests, 100); /* 50 + 50 in the window */
    assert_int_equal(v.errors, 4);
    assert_true(v.value > 3.99 && v.value < 4.01);
    assert_true(v.threshold > 6.99 && v.threshold < 7.01);
    json_decref(prev);
    json_decref(start);
    json_decref(now);
    json_decref(health);
}

static void error_rate_above_threshold(void **state)
{
    json_t *prev = json_pack("[o]", stats("svc", "old", 200, 0));
    json_t *start = json_pack("[o]", stats("svc", "a", 0, 0));
    json_t *now = json_pack("[o, o]", stats("svc", "a", 30, 30), stats("other", "x", 99, 99));
    ms_watch_limits l;
    ms_watch_verdict v;
    (void)state;

    ms_watch_limits_init(&l);
    ms_assert_ok(ms_watch_judge("svc", prev, start, now, NULL, &l, &v));
    assert_true(v.degraded);
    assert_string_equal(v.check, "error_rate");
    assert_int_equal(v.requests, 30); /* "other" is not counted */
    assert_true(v.value > 99.9);
    assert_true(v.threshold > 4.99 && v.threshold < 5.01);
    assert_non_null(strstr(v.detail, "30 of 30 requests"));
    /* a higher allowance tolerates it */
    l.max_error_rate_increase = 100;
    ms_assert_ok(ms_watch_judge("svc", prev, start, now, NULL, &l, &v));
    assert_false(v.degraded);
    json_decref(prev);
    json_decref(start);
    json_decref(now);
}

static void too_few_requests_say_nothing(void **state)
{
    json_t *start = json_pack("[o]", stats("svc", "a", 5, 0));
    json_t *now = json_pack("[o]", stats("svc", "a", 15, 10));
    ms_watch_limits l;
    ms_watch_verdict v;
    (void)state;

    ms_watch_limits_init(&l);
    ms_assert_ok(ms_watch_judge("svc", NULL, start, now, NULL, &l, &v));
    assert_false(v.degraded); /* 10 errors of 10, but fewer than 20 requests */
    assert_int_equal(v.requests, 10);
    l.min_requests = 10;
    ms_assert_ok(ms_watch_judge("svc", NULL, start, now, NULL, &l, &v));
    assert_true(v.degraded);
    assert_string_equal(v.check, "error_rate");
    json_decref(start);
    json_decref(now);
}

/* An instance restarted in the window (counters below its start sample)
 * and a new instance both count in full. */
static void restarted_and_new_instances(void **state)
{
    json_t *start = json_pack("[o]", stats("svc", "a", 500, 0));
    json_t *now = json_pack("[o, o]", stats("svc", "a", 7, 1), stats("svc", "c", 3, 0));
    ms_watch_verdict v;
    (void)state;

    ms_assert_ok(ms_watch_judge("svc", NULL, start, now, NULL, NULL, &v));
    assert_int_equal(v.requests, 10);
    assert_int_equal(v.errors, 1);
    json_decref(start);
    json_decref(now);
}

static void unhealthy_instance_wins(void **state)
{
    json_t *now = json_pack("[o]", stats("svc", "a", 100, 0));
    json_t *health = json_pack("[o, o, o]", health_of("svc", "a", "running", "healthy"),
                               health_of("svc", "b", "running", "unhealthy"),
                               health_of("other", "z", "stopped", "unhealthy"));
    ms_watch_verdict v;
    (void)state;

    ms_assert_ok(ms_watch_judge("svc", NULL, NULL, now, health, NULL, &v));
    assert_true(v.degraded);
    assert_string_equal(v.check, "health");
    assert_true(v.value > 0.99 && v.value < 1.01); /* "other" is not counted */
    assert_non_null(strstr(v.detail, "b is running/unhealthy"));
    json_decref(now);
    json_decref(health);
}

static void bad_input_is_refused(void **state)
{
    json_t *obj = json_object();
    json_t *arr = json_array();
    ms_watch_verdict v;
    (void)state;

    ms_assert_status(ms_watch_judge(NULL, arr, arr, arr, NULL, NULL, &v), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_watch_judge("svc", arr, arr, arr, NULL, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_watch_judge("svc", obj, arr, arr, NULL, NULL, &v), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "must be JSON arrays"));
    ms_assert_status(ms_watch_judge("svc", arr, arr, arr, obj, NULL, &v), MS_ERR_INVALID_ARG);
    /* empty samples: nothing happened, nothing degraded */
    ms_assert_ok(ms_watch_judge("svc", arr, arr, arr, arr, NULL, &v));
    assert_false(v.degraded);
    assert_int_equal(v.requests, 0);
    json_decref(obj);
    json_decref(arr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(healthy_within_threshold),
        cmocka_unit_test(error_rate_above_threshold),
        cmocka_unit_test(too_few_requests_say_nothing),
        cmocka_unit_test(restarted_and_new_instances),
        cmocka_unit_test(unhealthy_instance_wins),
        cmocka_unit_test(bad_input_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
