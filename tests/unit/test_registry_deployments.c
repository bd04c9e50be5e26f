/*
 * test_registry_deployments.c - the deployments records of the registry on
 * a real SQLite file: begin, updates appending steps (the last outcome is
 * the state, the last detail the result), get, listing newest first with
 * paging, bad input named, and the deploy lock's holder as seen by another
 * connection; the transitions that change several versions and record a
 * step in one transaction (all or nothing, never two actives).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_test.h"

typedef struct fx {
    char dir[256];
    char db[320];
    ms_registry *reg;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/ms-regdep-test.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->db, sizeof f->db, "%s/registry.db", f->dir);
    if (ms_registry_open(f->db, &f->reg) != MS_OK)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    char cmd[300];

    ms_registry_close(f->reg);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    free(f);
    return system(cmd) == 0 ? 0 : -1;
}

static void has(const char *text, const char *needle)
{
    if (text == NULL || strstr(text, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", text ? text : "(null)", needle);
}

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static void deployment_records_steps(void **state)
{
    fx *f = *state;
    int64_t id = 0;
    json_t *d = NULL, *table = NULL, *steps;

    ms_assert_ok(ms_registry_deployment_begin(f->reg, "svc", "1.0.0", "1.1.0", "ada@h pid 7", &id));
    assert_true(id > 0);
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    assert_string_equal(str(d, "component"), "svc");
    assert_string_equal(str(d, "from_version"), "1.0.0");
    assert_string_equal(str(d, "to_version"), "1.1.0");
    assert_string_equal(str(d, "kind"), "deploy");
    assert_string_equal(str(d, "state"), "running");
    assert_string_equal(str(json_object_get(d, "detail"), "who"), "ada@h pid 7");
    assert_int_equal(json_array_size(json_object_get(json_object_get(d, "detail"), "steps")), 0);
    json_decref(d);

    table = json_pack("{s:[{s:s, s:s, s:s, s:s}]}", "tests", "test", "echo", "active", "pass",
                      "candidate", "fail", "verdict", "regression");
    assert_non_null(table);
    ms_assert_ok(ms_registry_deployment_update(f->reg, id, "test", "rejected", table));
    ms_assert_ok(ms_registry_deployment_update(f->reg, id, "unlock", "rejected", NULL));
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    assert_string_equal(str(d, "state"), "rejected");
    steps = json_object_get(json_object_get(d, "detail"), "steps");
    assert_int_equal(json_array_size(steps), 2);
    assert_string_equal(str(json_array_get(steps, 0), "step"), "test");
    assert_string_equal(str(json_array_get(steps, 0), "outcome"), "rejected");
    assert_true(json_equal(json_object_get(json_array_get(steps, 0), "detail"), table));
    assert_string_equal(str(json_array_get(steps, 1), "step"), "unlock");
    assert_string_equal(str(json_object_get(d, "detail"), "step"), "unlock");
    assert_true(json_is_null(json_object_get(json_object_get(d, "detail"), "result")));
    assert_non_null(str(d, "updated_time"));
    json_decref(d);
    json_decref(table);

    /* nothing active before: from_version is null */
    ms_assert_ok(ms_registry_deployment_begin(f->reg, "svc", NULL, "1.0.0", "ada@h pid 8", &id));
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    assert_true(json_is_null(json_object_get(d, "from_version")));
    json_decref(d);
}

static void deployments_listing_pages(void **state)
{
    fx *f = *state;
    int64_t ids[5];
    json_t *page = NULL;

    for (int i = 0; i < 5; i++) {
        char v[16];

        snprintf(v, sizeof v, "1.%d.0", i);
        ms_assert_ok(
            ms_registry_deployment_begin(f->reg, i == 2 ? "other" : "svc", NULL, v, "t", &ids[i]));
    }
    ms_assert_ok(ms_registry_deployments(f->reg, "svc", 0, 2, &page));
    assert_int_equal(json_array_size(page), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 0), "id")), ids[4]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 1), "id")), ids[3]);
    json_decref(page);
    ms_assert_ok(ms_registry_deployments(f->reg, "svc", ids[3], 2, &page));
    assert_int_equal(json_array_size(page), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 0), "id")), ids[1]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(page, 1), "id")), ids[0]);
    json_decref(page);
    ms_assert_ok(ms_registry_deployments(f->reg, NULL, 0, 0, &page));
    assert_int_equal(json_array_size(page), 5);
    json_decref(page);
}

static void deployments_bad_input(void **state)
{
    fx *f = *state;
    int64_t id = 0;
    json_t *d = NULL;

    ms_assert_status(ms_registry_deployment_begin(f->reg, "", NULL, "1.0.0", "t", &id),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_deployment_begin(f->reg, "svc", NULL, NULL, "t", &id),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_deployment_begin(f->reg, "svc", NULL, "1.0.0", "", &id),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_deployment_update(f->reg, 999, "test", "passed", NULL),
                     MS_ERR_NOT_FOUND);
    has(ms_last_error(), "no deployment 999");
    ms_assert_ok(ms_registry_deployment_begin(f->reg, "svc", NULL, "1.0.0", "t", &id));
    ms_assert_status(ms_registry_deployment_update(f->reg, id, "Test Step", "passed", NULL),
                     MS_ERR_INVALID_ARG);
    has(ms_last_error(), "step 'Test Step'");
    ms_assert_status(ms_registry_deployment_update(f->reg, id, "test", "", NULL),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_deployment_get(f->reg, 12345, &d), MS_ERR_NOT_FOUND);
    assert_null(d);
    /* a failed update changed nothing */
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    assert_string_equal(str(d, "state"), "running");
    json_decref(d);
}

static void deploy_lock_holder_seen_by_another_connection(void **state)
{
    fx *f = *state;
    ms_registry *second = NULL;
    json_t *lock = NULL;

    ms_assert_status(ms_registry_deploy_lock_get(f->reg, "svc", &lock), MS_ERR_NOT_FOUND);
    has(ms_last_error(), "svc is not locked");
    ms_assert_ok(ms_registry_deploy_lock(f->reg, "svc", "ada@h pid 1"));
    ms_assert_ok(ms_registry_open(f->db, &second));
    ms_assert_ok(ms_registry_deploy_lock_get(second, "svc", &lock));
    assert_string_equal(str(lock, "holder"), "ada@h pid 1");
    assert_non_null(str(lock, "time"));
    json_decref(lock);
    /* the holder's name releases it (what a stale-lock breaker does) */
    ms_assert_ok(ms_registry_deploy_unlock(second, "svc", "ada@h pid 1"));
    ms_assert_status(ms_registry_deploy_lock_get(second, "svc", &lock), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_registry_deploy_lock_get(second, "", &lock), MS_ERR_INVALID_ARG);
    ms_registry_close(second);
}

static void version_states_are_kept_with_their_time(void **state)
{
    fx *f = *state;
    json_t *row = NULL, *history;

    ms_assert_ok(
        ms_registry_version_add(f->reg, "svc", "1.0.0",
                                "aa00000000000000000000000000000000000000000000000000000000"
                                "000000",
                                "/tmp/a", NULL, NULL));
    ms_assert_ok(ms_registry_version_set_state(f->reg, "svc", "1.0.0", "testing"));
    ms_assert_ok(ms_registry_version_set_state(f->reg, "svc", "1.0.0", "rejected"));
    ms_assert_ok(ms_registry_version_get(f->reg, "svc", "1.0.0", &row));
    history = json_object_get(json_object_get(row, "detail"), "history");
    assert_int_equal(json_array_size(history), 2);
    assert_string_equal(str(json_array_get(history, 0), "state"), "testing");
    assert_string_equal(str(json_array_get(history, 1), "state"), "rejected");
    assert_string_equal(str(json_array_get(history, 1), "time"), str(row, "state_time"));
    json_decref(row);
    /* a refused state adds nothing */
    ms_assert_status(ms_registry_version_set_state(f->reg, "svc", "1.0.0", "tested"),
                     MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_registry_version_get(f->reg, "svc", "1.0.0", &row));
    assert_int_equal(json_array_size(json_object_get(json_object_get(row, "detail"), "history")),
                     2);
    json_decref(row);
}

static void add_version(fx *f, const char *v)
{
    ms_assert_ok(ms_registry_version_add(
        f->reg, "svc", v, "bb00000000000000000000000000000000000000000000000000000000000000",
        "/tmp/a", NULL, NULL));
}

static const char *state_of(fx *f, const char *v, char *buf, size_t cap)
{
    json_t *row = NULL;
    ms_assert_ok(ms_registry_version_get(f->reg, "svc", v, &row));
    snprintf(buf, cap, "%s", str(row, "state"));
    json_decref(row);
    return buf;
}

static void assert_states(fx *f, const char *s1, const char *s2, const char *s3)
{
    char b[32];
    assert_string_equal(state_of(f, "1.0.0", b, sizeof b), s1);
    assert_string_equal(state_of(f, "1.1.0", b, sizeof b), s2);
    assert_string_equal(state_of(f, "1.2.0", b, sizeof b), s3);
}

static void promote_and_transition_are_one_transaction(void **state)
{
    fx *f = *state;
    ms_version_change ch[2];
    json_t *d = NULL, *req, *steps;
    int64_t id = 0;

    add_version(f, "1.0.0");
    add_version(f, "1.1.0");
    add_version(f, "1.2.0");
    /* start: the record with its request and the candidate's state together */
    req = json_pack("{s:s, s:i}", "verb", "deploy", "watch_ms", 0);
    ch[0] = (ms_version_change){"1.0.0", "testing"};
    ms_assert_ok(ms_registry_deployment_start(f->reg, "svc", NULL, "1.0.0", "t", req, ch, 1, &id));
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    assert_string_equal(str(d, "state"), "running");
    assert_string_equal(str(json_object_get(json_object_get(d, "detail"), "request"), "verb"),
                        "deploy");
    json_decref(d);
    assert_states(f, "testing", "candidate", "candidate");

    /* first promotion: nothing was active */
    ms_assert_ok(
        ms_registry_version_promote(f->reg, "svc", "1.0.0", id, "promote", "promoted", NULL));
    assert_states(f, "active", "candidate", "candidate");
    ms_assert_ok(ms_registry_version_promote(f->reg, "svc", "1.1.0", 0, NULL, NULL, NULL));
    assert_states(f, "previous", "active", "candidate");
    ms_assert_ok(
        ms_registry_version_promote(f->reg, "svc", "1.2.0", id, "promote", "promoted", NULL));
    assert_states(f, "candidate", "previous", "active");
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    steps = json_object_get(json_object_get(d, "detail"), "steps");
    assert_int_equal(json_array_size(steps), 2);
    json_decref(d);

    /* rollback as a transition with its step */
    ch[0] = (ms_version_change){"1.2.0", "rolled-back"};
    ch[1] = (ms_version_change){"1.1.0", "active"};
    ms_assert_ok(
        ms_registry_version_transition(f->reg, "svc", ch, 2, id, "rollback", "rolled-back", req));
    assert_states(f, "candidate", "active", "rolled-back");
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    assert_string_equal(str(d, "state"), "rolled-back");
    json_decref(d);

    /* two actives: refused, nothing changed (neither the states nor the step) */
    ch[0] = (ms_version_change){"1.0.0", "active"};
    ms_assert_status(ms_registry_version_transition(f->reg, "svc", ch, 1, id, "x", "broken", NULL),
                     MS_ERR_STATE);
    has(ms_last_error(), "would leave 2 versions active");
    assert_states(f, "candidate", "active", "rolled-back");
    /* an unknown version half-way: the first change is undone */
    ch[0] = (ms_version_change){"1.0.0", "previous"};
    ch[1] = (ms_version_change){"9.9.9", "active"};
    ms_assert_status(ms_registry_version_transition(f->reg, "svc", ch, 2, id, "x", "broken", NULL),
                     MS_ERR_NOT_FOUND);
    assert_states(f, "candidate", "active", "rolled-back");
    /* an unknown deployment: the states are not changed either */
    ch[0] = (ms_version_change){"1.0.0", "previous"};
    ms_assert_status(ms_registry_version_transition(f->reg, "svc", ch, 1, 4242, "x", "y", NULL),
                     MS_ERR_NOT_FOUND);
    assert_states(f, "candidate", "active", "rolled-back");
    ms_assert_ok(ms_registry_deployment_get(f->reg, id, &d));
    assert_string_equal(str(d, "state"), "rolled-back");
    json_decref(d);
    /* bad input named */
    ch[0] = (ms_version_change){"1.0.0", "tested"};
    ms_assert_status(ms_registry_version_transition(f->reg, "svc", ch, 1, 0, NULL, NULL, NULL),
                     MS_ERR_INVALID_ARG);
    has(ms_last_error(), "version state 'tested'");
    ch[0] = (ms_version_change){"1.0.0", "previous"};
    ms_assert_status(
        ms_registry_version_transition(f->reg, "svc", ch, 1, id, "Bad Step", "y", NULL),
        MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_version_transition(f->reg, "svc", NULL, 1, 0, NULL, NULL, NULL),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_version_promote(f->reg, "svc", "", 0, NULL, NULL, NULL),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_version_promote(f->reg, "svc", "7.7.7", 0, NULL, NULL, NULL),
                     MS_ERR_NOT_FOUND);
    assert_states(f, "candidate", "active", "rolled-back");
    /* start with an unknown version: no record is begun */
    ch[0] = (ms_version_change){"8.8.8", "testing"};
    ms_assert_status(
        ms_registry_deployment_start(f->reg, "svc", NULL, "8.8.8", "t", NULL, ch, 1, &id),
        MS_ERR_NOT_FOUND);
    ms_assert_ok(ms_registry_deployments(f->reg, "svc", 0, 0, &d));
    assert_int_equal(json_array_size(d), 1);
    json_decref(d);
    json_decref(req);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(deployment_records_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(deployments_listing_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(deployments_bad_input, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_lock_holder_seen_by_another_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(version_states_are_kept_with_their_time, setup, teardown),
        cmocka_unit_test_setup_teardown(promote_and_transition_are_one_transaction, setup,
                                        teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
