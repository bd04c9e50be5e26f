/*
 * test_alloc_failure.c - every allocation of a call fails in turn.
 *
 * For each call: fail the 0th allocation, then the 1st, ... until the call
 * succeeds. Every failure must be a clean MS_ERR_NO_MEMORY with a detail,
 * leave no half-built result, and leak nothing (the sanitizer run's
 * LeakSanitizer checks that). jansson is pointed at the same failing
 * allocator for the group, so its allocations fail in turn too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/message_internal.h"
#include "ms_test.h"

#define MAX_STEPS 1000

typedef ms_status (*attempt_fn)(void *ctx);

static void *json_alloc(size_t n)
{
    return ms__malloc(n);
}

static void json_free(void *p)
{
    ms__free(p);
}

static int group_setup(void **state)
{
    json_set_alloc_funcs(json_alloc, json_free);
    return 0;
}

static int group_teardown(void **state)
{
    ms__alloc_fail_after(-1);
    return 0;
}

/* Run fn with 0, 1, 2, ... allocations allowed until it succeeds; returns
 * how many failed attempts were needed. Each failure must be
 * MS_ERR_NO_MEMORY, or `also` when that is not MS_OK. */
static int until_success_or(attempt_fn fn, void *ctx, const char *what, ms_status also)
{
    for (int n = 0; n < MAX_STEPS; n++) {
        ms_status s;
        ms_clear_error();
        ms__alloc_fail_after(n);
        s = fn(ctx);
        ms__alloc_fail_after(-1);
        if (s == MS_OK)
            return n;
        if (s != MS_ERR_NO_MEMORY && (also == MS_OK || s != also))
            fail_msg("%s with %d allocations allowed: got %s (%s), want no_memory", what, n,
                     ms_status_name(s), ms_last_error());
        if (ms_last_error()[0] == '\0')
            fail_msg("%s with %d allocations allowed: no error detail", what, n);
    }
    fail_msg("%s never succeeded", what);
    return -1;
}

static int until_success(attempt_fn fn, void *ctx, const char *what)
{
    return until_success_or(fn, ctx, what, MS_OK);
}

/* --- messages ------------------------------------------------------------------ */

typedef struct msg_ctx {
    ms_message *out;
    ms_message *src;
    json_t *body;
} msg_ctx;

/* Every attempt must leave out NULL on failure; on success it is freed by
 * the caller. */
static void check_and_free(msg_ctx *c, int steps, const char *what)
{
    assert_true(steps >= 0);
    assert_non_null(c->out);
    assert_non_null(ms_message_subject(c->out));
    ms_message_unref(c->out);
    c->out = NULL;
    (void)what;
}

static ms_status do_create(void *p)
{
    msg_ctx *c = p;
    ms_status s = ms_message_create("orders.created", "{\"id\":1}", 8, &c->out);
    if (s != MS_OK)
        assert_null(c->out);
    return s;
}

static void message_create(void **state)
{
    msg_ctx c = {0};
    int steps = until_success(do_create, &c, "ms_message_create");
    assert_int_equal(steps, 1); /* one allocation: struct, subject and payload together */
    check_and_free(&c, steps, "create");
}

static ms_status do_clone(void *p)
{
    msg_ctx *c = p;
    ms_status s = ms_message_clone(c->src, &c->out);
    if (s != MS_OK)
        assert_null(c->out);
    return s;
}

static void message_clone(void **state)
{
    msg_ctx c = {0};
    int steps;

    ms_assert_ok(ms_msg_request("svc.a.b", "me", NULL, &c.src));
    ms_assert_ok(ms_message_set_reply(c.src, "_INBOX.1"));
    ms_assert_ok(ms_message_set_correlation_id(c.src, "c"));
    ms_assert_ok(ms_message_set_type_name(c.src, "custom"));
    ms_assert_ok(ms_message_add_header(c.src, "A", "1"));
    ms_assert_ok(ms_message_add_header(c.src, "B", "2"));
    steps = until_success(do_clone, &c, "ms_message_clone");
    assert_true(steps >= 8);
    assert_string_equal(ms_message_header(c.out, "B"), "2");
    check_and_free(&c, steps, "clone");
    ms_message_unref(c.src);
}

static ms_status do_setters(void *p)
{
    /* A fresh message each attempt; every setter either works or leaves
     * the message as it was. */
    msg_ctx *c = p;
    ms_message *m = NULL;
    ms_status s = ms_message_create("a.b", "x", 1, &m);

    if (s != MS_OK)
        return s;
    if ((s = ms_message_set_reply(m, "_INBOX.r")) != MS_OK ||
        (s = ms_message_set_id(m, "id")) != MS_OK ||
        (s = ms_message_set_type_name(m, "other_kind")) != MS_OK ||
        (s = ms_message_add_header(m, "K", "1")) != MS_OK ||
        (s = ms_message_add_header(m, "K", "2")) != MS_OK ||
        (s = ms_message_set_header(m, "K", "3")) != MS_OK ||
        (s = ms__message_set_wire_header(m, "Ms-Source", "src")) != MS_OK ||
        (s = ms__message_set_wire_header(m, "W", "w")) != MS_OK ||
        (s = ms_message_set_data(m, "payload", 7)) != MS_OK) {
        ms_message_unref(m);
        return s;
    }
    c->out = m;
    return MS_OK;
}

static void message_setters(void **state)
{
    msg_ctx c = {0};
    int steps = until_success(do_setters, &c, "setters");

    assert_string_equal(ms_message_header(c.out, "K"), "3");
    assert_int_equal(ms_message_header_count(c.out), 2);
    assert_string_equal(ms_message_source(c.out), "src");
    check_and_free(&c, steps, "setters");
}

static ms_status do_setter_keeps_old_value(void *p)
{
    msg_ctx *c = p;
    ms_status s = ms_message_set_source(c->src, "new-source");
    if (s != MS_OK)
        assert_string_equal(ms_message_source(c->src), "old-source");
    return s;
}

static void failed_setter_changes_nothing(void **state)
{
    msg_ctx c = {0};

    ms_assert_ok(ms_message_create("a", NULL, 0, &c.src));
    ms_assert_ok(ms_message_set_source(c.src, "old-source"));
    assert_int_equal(until_success(do_setter_keeps_old_value, &c, "set_source"), 1);
    assert_string_equal(ms_message_source(c.src), "new-source");
    ms_message_unref(c.src);
}

static int released;

static void release_backing(void *b)
{
    released++;
    free(b);
}

static ms_status do_wrap(void *p)
{
    msg_ctx *c = p;
    char *b = malloc(16); /* not through ms__malloc: it must not fail here */
    assert_non_null(b);
    memcpy(b, "in.x\0data", 10);
    return ms__message_wrap(b, NULL, b + 5, 4, b, release_backing, &c->out);
}

static void message_wrap_releases_on_failure(void **state)
{
    msg_ctx c = {0};
    int steps;

    released = 0;
    steps = until_success(do_wrap, &c, "ms__message_wrap");
    assert_int_equal(released, steps); /* every failed attempt released its backing */
    check_and_free(&c, steps, "wrap");
    assert_int_equal(released, steps + 1);
}

/* --- builders -------------------------------------------------------------------- */

static ms_status do_change_notification(void *p)
{
    msg_ctx *c = p;
    return ms_msg_change_notification("events.a.changed", "src", "summary", &c->out);
}

static ms_status do_interface_changed(void *p)
{
    msg_ctx *c = p;
    return ms_msg_interface_changed(NULL, "src", "user-api", "1.0.0", "2.0.0", true, "why",
                                    &c->out);
}

static ms_status do_dependency_update(void *p)
{
    msg_ctx *c = p;
    return ms_msg_dependency_update(NULL, "src", "libfoo", NULL, "1.1", &c->out);
}

static ms_status do_request(void *p)
{
    msg_ctx *c = p;
    return ms_msg_request("svc.users.get", "src", c->body, &c->out);
}

static ms_status do_response(void *p)
{
    msg_ctx *c = p;
    return ms_msg_response(c->src, "svc", c->body, &c->out);
}

static ms_status do_event(void *p)
{
    msg_ctx *c = p;
    return ms_msg_event("events.users.created", NULL, c->body, &c->out);
}

static ms_status do_config_change(void *p)
{
    msg_ctx *c = p;
    return ms_msg_config_change(NULL, "ops", "users", c->body, &c->out);
}

static ms_status do_health_check(void *p)
{
    msg_ctx *c = p;
    return ms_msg_health_check(NULL, "rt", "users", &c->out);
}

static ms_status do_command(void *p)
{
    msg_ctx *c = p;
    return ms_msg_command("svc.users.cmd", "ops", "reindex", c->body, &c->out);
}

static void builders(void **state)
{
    static const struct {
        attempt_fn fn;
        const char *name;
        ms_msg_type type;
    } b[] = {
        {do_change_notification, "change_notification", MS_MSG_CHANGE_NOTIFICATION},
        {do_interface_changed, "interface_changed", MS_MSG_INTERFACE_CHANGED},
        {do_dependency_update, "dependency_update", MS_MSG_DEPENDENCY_UPDATE},
        {do_request, "request", MS_MSG_REQUEST},
        {do_response, "response", MS_MSG_RESPONSE},
        {do_event, "event", MS_MSG_EVENT},
        {do_config_change, "config_change", MS_MSG_CONFIG_CHANGE},
        {do_health_check, "health_check", MS_MSG_HEALTH_CHECK},
        {do_command, "command", MS_MSG_COMMAND},
    };
    msg_ctx c = {0};

    c.body = json_pack("{s:s, s:[i,i,i]}", "k", "v", "list", 1, 2, 3);
    assert_non_null(c.body);
    ms_assert_ok(ms_msg_request("svc.x", "client", NULL, &c.src));
    ms_assert_ok(ms_message_set_reply(c.src, "_INBOX.7"));
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        int steps = until_success(b[i].fn, &c, b[i].name);
        json_t *j = NULL;

        assert_true(steps >= 4); /* message, id, time, trace at least */
        assert_int_equal(ms_message_type(c.out), b[i].type);
        assert_non_null(ms_message_id(c.out));
        ms_assert_ok(ms_message_json(c.out, &j));
        json_decref(j);
        check_and_free(&c, steps, b[i].name);
    }
    assert_int_equal(c.body->refcount, 1);
    json_decref(c.body);
    ms_message_unref(c.src);
}

/* --- subject index ------------------------------------------------------------------ */

typedef struct idx_ctx {
    ms_subject_index *idx;
    const char *pattern;
    void *value;
} idx_ctx;

static ms_status do_index_create(void *p)
{
    idx_ctx *c = p;
    return ms_subject_index_create(&c->idx);
}

static ms_status do_index_insert(void *p)
{
    idx_ctx *c = p;
    size_t before = ms_subject_index_count(c->idx);
    ms_status s = ms_subject_index_insert(c->idx, c->pattern, c->value);
    if (s != MS_OK)
        assert_int_equal(ms_subject_index_count(c->idx), before);
    return s;
}

static void subject_index_insert(void **state)
{
    static const char *const patterns[] = {
        "a.b.c",   "a.b.c", "a.*.c", "a.>", ">",   "a.b.c.d.e.f", "x.y", "a.b", "*",
        "a.b.*.>", "q.1",   "q.2",   "q.3", "q.4", "q.5",         "q.6", "q.7", "q.8",
    };
    idx_ctx c = {0};

    assert_int_equal(until_success(do_index_create, &c, "ms_subject_index_create"), 2);
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        c.pattern = patterns[i];
        c.value = (void *)(intptr_t)(i + 1);
        until_success(do_index_insert, &c, patterns[i]);
        assert_int_equal(ms_subject_index_count(c.idx), i + 1);
    }
    /* failed inserts left no stray entries: matching sees exactly what was added */
    assert_int_equal(ms_subject_index_match(c.idx, "a.b.c", NULL, NULL), 5);
    assert_int_equal(ms_subject_index_match(c.idx, "q.5", NULL, NULL), 2);
    assert_int_equal(ms_subject_index_match(c.idx, "a.b.c.d.e.f", NULL, NULL), 4);
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++)
        ms_assert_ok(ms_subject_index_remove(c.idx, patterns[i], (void *)(intptr_t)(i + 1)));
    assert_int_equal(ms_subject_index_count(c.idx), 0);
    ms_subject_index_destroy(c.idx);
}

/* --- json ------------------------------------------------------------------------------ */

typedef struct json_ctx {
    const char *text;
    const char *path;
    json_t *out;
    char *dumped;
} json_ctx;

static ms_status do_json_parse(void *p)
{
    json_ctx *c = p;
    ms_status s = ms_json_parse(c->text, strlen(c->text), "payload", &c->out);
    if (s != MS_OK)
        assert_null(c->out);
    return s;
}

static ms_status do_json_load(void *p)
{
    json_ctx *c = p;
    return ms_json_load_file(c->path, 0, &c->out);
}

static ms_status do_json_dump(void *p)
{
    json_ctx *c = p;
    size_t len;
    return ms_json_dump(c->out, &c->dumped, &len);
}

static void json_parse_load_dump(void **state)
{
    json_ctx c = {0};
    char path[64];
    int fd;
    int steps;

    c.text = "{\"name\":\"users\",\"tags\":[\"a\",\"b\"],\"nested\":{\"x\":1.5,\"y\":null}}";
    /* jansson's lexer reports some failed allocations as a syntax error (it
     * cannot tell them apart), so MS_ERR_PARSE is a clean failure here. */
    steps = until_success_or(do_json_parse, &c, "ms_json_parse", MS_ERR_PARSE);
    assert_true(steps > 0); /* jansson's allocations were exercised */
    assert_string_equal(json_string_value(json_object_get(c.out, "name")), "users");

    steps = until_success(do_json_dump, &c, "ms_json_dump");
    assert_string_equal(c.dumped, c.text);
    json_free(c.dumped);
    json_decref(c.out);
    c.out = NULL;

    snprintf(path, sizeof path, "/tmp/ms_alloc_json_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, c.text, strlen(c.text)), (ssize_t)strlen(c.text));
    close(fd);
    c.path = path;
    steps = until_success_or(do_json_load, &c, "ms_json_load_file", MS_ERR_PARSE);
    assert_true(steps > 1);
    assert_non_null(json_object_get(c.out, "tags"));
    json_decref(c.out);
    unlink(path);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(message_create),
    cmocka_unit_test(message_clone),
    cmocka_unit_test(message_setters),
    cmocka_unit_test(failed_setter_changes_nothing),
    cmocka_unit_test(message_wrap_releases_on_failure),
    cmocka_unit_test(builders),
    cmocka_unit_test(subject_index_insert),
    cmocka_unit_test(json_parse_load_dump),
};

MS_TEST_MAIN(tests, group_setup, group_teardown)
