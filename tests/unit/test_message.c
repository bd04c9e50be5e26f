/*
 * test_message.c - ms_message: creation, refcounting and read-only sharing,
 * metadata and header rules, the wire-header mapping transports use, the
 * builders (payloads checked through jansson), and ids, timestamps and
 * trace context.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/message_internal.h"
#include "ms_test.h"

static void assert_detail_has(const char *needle)
{
    if (strstr(ms_last_error(), needle) == NULL)
        fail_msg("detail '%s' lacks '%s'", ms_last_error(), needle);
}

/* --- create / clone / refs --------------------------------------------------- */

static void create_copies_subject_and_payload(void **state)
{
    char subject[] = "orders.created";
    char data[] = "{\"id\":1}";
    ms_message *m = NULL;

    ms_assert_ok(ms_message_create(subject, data, strlen(data), &m));
    subject[0] = 'X';
    data[2] = 'X';
    assert_string_equal(ms_message_subject(m), "orders.created");
    assert_int_equal(ms_message_len(m), 8);
    assert_memory_equal(ms_message_data(m), "{\"id\":1}", 8);
    assert_null(ms_message_reply(m));
    assert_null(ms_message_id(m));
    assert_null(ms_message_source(m));
    assert_int_equal(ms_message_type(m), MS_MSG_NONE);
    assert_null(ms_message_type_name(m));
    assert_null(ms_message_correlation_id(m));
    assert_null(ms_message_timestamp(m));
    assert_null(ms_message_traceparent(m));
    assert_int_equal(ms_message_header_count(m), 0);
    assert_false(ms__message_has_headers(m));
    ms_message_unref(m);
}

static void create_empty_payload(void **state)
{
    ms_message *m = NULL;

    ms_assert_ok(ms_message_create("a", NULL, 0, &m));
    assert_int_equal(ms_message_len(m), 0);
    assert_non_null(ms_message_data(m));
    ms_message_unref(m);
}

static void create_bad_arguments(void **state)
{
    ms_message *m = (ms_message *)1;

    ms_assert_status(ms_message_create("a", "x", 1, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_create(NULL, "x", 1, &m), MS_ERR_INVALID_ARG);
    assert_null(m);
    ms_assert_status(ms_message_create("a", NULL, 3, &m), MS_ERR_INVALID_ARG);
    assert_detail_has("len is 3");
    ms_assert_status(ms_message_create("a..b", "x", 1, &m), MS_ERR_INVALID_SUBJECT);
    assert_detail_has("empty token at byte 2");
    ms_assert_status(ms_message_create("a.*", "x", 1, &m), MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_message_create("a.>", "x", 1, &m), MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_message_create("", "x", 1, &m), MS_ERR_INVALID_SUBJECT);
    assert_null(m);
}

static void null_message_getters_are_safe(void **state)
{
    const char *k, *v;

    assert_null(ms_message_subject(NULL));
    assert_null(ms_message_data(NULL));
    assert_int_equal(ms_message_len(NULL), 0);
    assert_null(ms_message_id(NULL));
    assert_int_equal(ms_message_type(NULL), MS_MSG_NONE);
    assert_null(ms_message_header(NULL, "a"));
    assert_int_equal(ms_message_header_count(NULL), 0);
    ms_assert_status(ms_message_header_at(NULL, 0, &k, &v), MS_ERR_INVALID_ARG);
    assert_null(ms_message_ref(NULL));
    ms_message_unref(NULL);
    ms__message_freeze(NULL);
    ms_assert_status(ms_message_set_source(NULL, "x"), MS_ERR_INVALID_ARG);
}

static void ref_makes_read_only(void **state)
{
    ms_message *m = NULL;

    ms_assert_ok(ms_message_create("a.b", "x", 1, &m));
    ms_assert_ok(ms_message_set_source(m, "one"));
    assert_ptr_equal(ms_message_ref(m), m);
    ms_assert_status(ms_message_set_source(m, "two"), MS_ERR_STATE);
    assert_detail_has("read-only");
    ms_assert_status(ms_message_set_header(m, "k", "v"), MS_ERR_STATE);
    ms_assert_status(ms_message_set_data(m, "y", 1), MS_ERR_STATE);
    ms_assert_status(ms_message_set_reply(m, "r"), MS_ERR_STATE);
    ms_assert_status(ms__message_set_wire_header(m, "Ms-Id", "x"), MS_ERR_STATE);
    ms_message_unref(m);
    /* Back to one reference, but it was shared: still read-only. */
    ms_assert_status(ms_message_set_id(m, "x"), MS_ERR_STATE);
    assert_string_equal(ms_message_source(m), "one");
    ms_message_unref(m);
}

static void freeze_makes_read_only(void **state)
{
    ms_message *m = NULL;

    ms_assert_ok(ms_message_create("a.b", NULL, 0, &m));
    ms__message_freeze(m);
    ms__message_freeze(m); /* idempotent */
    ms_assert_status(ms_message_set_type(m, MS_MSG_EVENT), MS_ERR_STATE);
    ms_assert_status(ms_message_add_header(m, "k", "v"), MS_ERR_STATE);
    ms_message_unref(m);
}

typedef struct shared_arg {
    ms_message *m;
    int ok;
} shared_arg;

static void *unref_in_thread(void *p)
{
    shared_arg *a = p;
    for (int i = 0; i < 1000; i++) {
        ms_message_ref(a->m);
        if (strcmp(ms_message_subject(a->m), "a.b") == 0)
            a->ok++;
        ms_message_unref(a->m);
    }
    ms_message_unref(a->m); /* the reference the main thread gave us */
    return NULL;
}

static void refcount_is_thread_safe(void **state)
{
    ms_message *m = NULL;
    pthread_t th[4];
    shared_arg a[4];

    ms_assert_ok(ms_message_create("a.b", "x", 1, &m));
    for (int i = 0; i < 4; i++) {
        a[i].m = ms_message_ref(m);
        a[i].ok = 0;
        assert_int_equal(pthread_create(&th[i], NULL, unref_in_thread, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(a[i].ok, 1000);
    }
    ms_message_unref(m); /* the last one frees (ASan checks) */
}

static void clone_is_deep_and_writable(void **state)
{
    ms_message *m = NULL, *c = NULL;
    const char *k, *v;

    ms_assert_ok(ms_msg_event("events.a.b", "src", NULL, &m));
    ms_assert_ok(ms_message_set_reply(m, "_INBOX.1"));
    ms_assert_ok(ms_message_set_correlation_id(m, "corr"));
    ms_assert_ok(ms_message_add_header(m, "X-A", "1"));
    ms_assert_ok(ms_message_add_header(m, "X-B", "2"));
    ms_assert_ok(ms_message_set_type_name(m, "custom_kind"));
    ms_assert_ok(ms_message_set_data(m, "hello", 5));
    ms_message_ref(m);

    ms_assert_ok(ms_message_clone(m, &c));
    ms_message_unref(m);
    assert_string_equal(ms_message_subject(c), "events.a.b");
    assert_string_equal(ms_message_reply(c), "_INBOX.1");
    assert_string_equal(ms_message_id(c), ms_message_id(m));
    assert_ptr_not_equal(ms_message_id(c), ms_message_id(m));
    assert_string_equal(ms_message_source(c), "src");
    assert_string_equal(ms_message_correlation_id(c), "corr");
    assert_string_equal(ms_message_timestamp(c), ms_message_timestamp(m));
    assert_string_equal(ms_message_traceparent(c), ms_message_traceparent(m));
    assert_int_equal(ms_message_type(c), MS_MSG_OTHER);
    assert_string_equal(ms_message_type_name(c), "custom_kind");
    assert_int_equal(ms_message_len(c), 5);
    assert_memory_equal(ms_message_data(c), "hello", 5);
    assert_int_equal(ms_message_header_count(c), 2);
    ms_assert_ok(ms_message_header_at(c, 1, &k, &v));
    assert_string_equal(k, "X-B");
    assert_string_equal(v, "2");
    ms_message_unref(m);

    ms_assert_ok(ms_message_set_source(c, "other")); /* the clone is writable */
    ms_message_unref(c);
    ms_assert_status(ms_message_clone(NULL, &c), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_clone(c, NULL), MS_ERR_INVALID_ARG);
}

/* --- setters -------------------------------------------------------------------- */

static void metadata_setters_validate(void **state)
{
    ms_message *m = NULL;
    char tp[MS_TRACEPARENT_LEN + 1];

    ms_assert_ok(ms_message_create("a", NULL, 0, &m));
    ms_assert_ok(ms_message_set_id(m, "id-1"));
    ms_assert_ok(ms_message_set_id(m, "id-2")); /* replace */
    assert_string_equal(ms_message_id(m), "id-2");
    ms_assert_status(ms_message_set_id(m, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_id(m, ""), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_source(m, "a\r\nInjected: yes"), MS_ERR_INVALID_ARG);
    assert_detail_has("CR at byte 1");
    ms_assert_status(ms_message_set_correlation_id(m, "x\ny"), MS_ERR_INVALID_ARG);

    ms_assert_ok(ms_message_set_timestamp(m, "2026-11-25T10:43:46.123456Z"));
    ms_assert_ok(ms_message_set_timestamp(m, "2026-11-25T10:43:46+02:00"));
    ms_assert_ok(ms_message_set_timestamp(m, "2026-11-25t10:43:46.1z"));
    ms_assert_status(ms_message_set_timestamp(m, "2026-13-25T10:43:46Z"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_timestamp(m, "2026-11-25 10:43:46Z"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_timestamp(m, "2026-11-25T10:43:46"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_timestamp(m, "2026-11-25T10:43:46.Z"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_timestamp(m, "yesterday"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_timestamp(m, NULL), MS_ERR_INVALID_ARG);
    assert_string_equal(ms_message_timestamp(m), "2026-11-25t10:43:46.1z");

    ms_traceparent_new(tp);
    ms_assert_ok(ms_message_set_traceparent(m, tp));
    assert_string_equal(ms_message_traceparent(m), tp);
    ms_assert_status(ms_message_set_traceparent(m, "garbage"), MS_ERR_INVALID_ARG);
    ms_assert_status(
        ms_message_set_traceparent(m, "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        MS_ERR_INVALID_ARG);

    ms_assert_ok(ms_message_set_reply(m, "_INBOX.abc"));
    assert_string_equal(ms_message_reply(m), "_INBOX.abc");
    ms_assert_status(ms_message_set_reply(m, "bad subject"), MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_message_set_reply(m, "a.*"), MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_message_set_reply(m, NULL), MS_ERR_INVALID_ARG);
    assert_string_equal(ms_message_reply(m), "_INBOX.abc");
    ms_message_unref(m);
}

static void type_setters(void **state)
{
    ms_message *m = NULL;

    ms_assert_ok(ms_message_create("a", NULL, 0, &m));
    ms_assert_ok(ms_message_set_type(m, MS_MSG_COMMAND));
    assert_int_equal(ms_message_type(m), MS_MSG_COMMAND);
    assert_string_equal(ms_message_type_name(m), "command");
    ms_assert_ok(ms_message_set_type_name(m, "health_check"));
    assert_int_equal(ms_message_type(m), MS_MSG_HEALTH_CHECK);
    ms_assert_ok(ms_message_set_type_name(m, "audit_trail"));
    assert_int_equal(ms_message_type(m), MS_MSG_OTHER);
    assert_string_equal(ms_message_type_name(m), "audit_trail");
    ms_assert_status(ms_message_set_type(m, MS_MSG_OTHER), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_type(m, (ms_msg_type)99), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_type_name(m, ""), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_type_name(m, NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_message_set_type(m, MS_MSG_NONE));
    assert_null(ms_message_type_name(m));
    assert_false(ms__message_has_headers(m));
    ms_message_unref(m);
}

static void type_names_round_trip(void **state)
{
    ms_msg_type t;

    assert_string_equal(ms_msg_type_str(MS_MSG_NONE), "");
    assert_string_equal(ms_msg_type_str(MS_MSG_INTERFACE_CHANGED), "interface_changed");
    assert_string_equal(ms_msg_type_str((ms_msg_type)99), "");
    for (int i = MS_MSG_CHANGE_NOTIFICATION; i < MS_MSG_OTHER; i++) {
        ms_assert_ok(ms_msg_type_parse(ms_msg_type_str((ms_msg_type)i), &t));
        assert_int_equal(t, i);
    }
    ms_assert_status(ms_msg_type_parse("Event", &t), MS_ERR_PARSE);
    assert_detail_has("Event");
    ms_assert_status(ms_msg_type_parse("", &t), MS_ERR_PARSE);
    ms_assert_status(ms_msg_type_parse(NULL, &t), MS_ERR_INVALID_ARG);
}

static void headers_add_set_and_list(void **state)
{
    ms_message *m = NULL;
    const char *k, *v;

    ms_assert_ok(ms_message_create("a", NULL, 0, &m));
    ms_assert_ok(ms_message_add_header(m, "X-A", "1"));
    ms_assert_ok(ms_message_add_header(m, "X-B", "2"));
    ms_assert_ok(ms_message_add_header(m, "X-A", "3"));
    ms_assert_ok(ms_message_add_header(m, "x-a", "lower")); /* keys are case-sensitive */
    ms_assert_ok(ms_message_add_header(m, "Empty", ""));
    assert_int_equal(ms_message_header_count(m), 5);
    assert_string_equal(ms_message_header(m, "X-A"), "1");
    assert_string_equal(ms_message_header(m, "x-a"), "lower");
    assert_string_equal(ms_message_header(m, "Empty"), "");
    assert_null(ms_message_header(m, "missing"));
    assert_null(ms_message_header(m, NULL));
    assert_true(ms__message_has_headers(m));

    /* set replaces every value of the key with one, at the first position */
    ms_assert_ok(ms_message_set_header(m, "X-A", "9"));
    assert_int_equal(ms_message_header_count(m), 4);
    ms_assert_ok(ms_message_header_at(m, 0, &k, &v));
    assert_string_equal(k, "X-A");
    assert_string_equal(v, "9");
    ms_assert_ok(ms_message_header_at(m, 1, &k, &v));
    assert_string_equal(k, "X-B");
    ms_assert_ok(ms_message_header_at(m, 2, &k, &v));
    assert_string_equal(k, "x-a");
    ms_assert_status(ms_message_header_at(m, 4, &k, &v), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_message_header_at(m, 0, NULL, &v), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_message_set_header(m, "New", "n")); /* set of a new key appends */
    assert_int_equal(ms_message_header_count(m), 5);
    ms_message_unref(m);
}

static void header_keys_and_values_validated(void **state)
{
    ms_message *m = NULL;
    static const char *const bad_keys[] = {"", "a b", "a:b", "a\tb", "a\r", "a\nb", "\x01"};
    char big[MS_HEADER_VALUE_MAX + 2];

    ms_assert_ok(ms_message_create("a", NULL, 0, &m));
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        ms_assert_status(ms_message_add_header(m, bad_keys[i], "v"), MS_ERR_INVALID_ARG);
        ms_assert_status(ms_message_set_header(m, bad_keys[i], "v"), MS_ERR_INVALID_ARG);
    }
    ms_assert_status(ms_message_add_header(m, NULL, "v"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_add_header(m, "k", NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_add_header(m, "k", "a\r\nb"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_add_header(m, "k", "a\nb"), MS_ERR_INVALID_ARG);
    /* metadata names are not free-form keys, whatever their case */
    ms_assert_status(ms_message_add_header(m, "Ms-Id", "v"), MS_ERR_INVALID_ARG);
    assert_detail_has("metadata");
    ms_assert_status(ms_message_add_header(m, "traceparent", "v"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_set_header(m, "MS-SOURCE", "v"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_add_header(m, "Ms-Correlation-Id", "v"), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_message_add_header(m, "Ms-Other", "v")); /* not metadata */

    memset(big, 'v', sizeof big);
    big[MS_HEADER_VALUE_MAX] = '\0';
    ms_assert_ok(ms_message_add_header(m, "Big", big));
    big[MS_HEADER_VALUE_MAX] = 'v';
    big[MS_HEADER_VALUE_MAX + 1] = '\0';
    ms_assert_status(ms_message_add_header(m, "Big2", big), MS_ERR_INVALID_ARG);
    assert_detail_has("longer than 4096");
    assert_int_equal(ms_message_header_count(m), 2);
    ms_message_unref(m);
}

static void header_count_limit(void **state)
{
    ms_message *m = NULL;
    char key[16];

    ms_assert_ok(ms_message_create("a", NULL, 0, &m));
    for (int i = 0; i < MS_HEADER_MAX_COUNT; i++) {
        snprintf(key, sizeof key, "K%d", i);
        ms_assert_ok(ms_message_add_header(m, key, "v"));
    }
    ms_assert_status(ms_message_add_header(m, "One-More", "v"), MS_ERR_INVALID_ARG);
    assert_detail_has("128 headers");
    ms_assert_status(ms__message_set_wire_header(m, "One-More", "v"), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_message_set_header(m, "K5", "replaced")); /* replacing is fine */
    assert_int_equal(ms_message_header_count(m), MS_HEADER_MAX_COUNT);
    ms_message_unref(m);
}

static void set_data_replaces_payload(void **state)
{
    ms_message *m = NULL;

    ms_assert_ok(ms_message_create("a", "first", 5, &m));
    ms_assert_ok(ms_message_set_data(m, "second!", 7));
    assert_int_equal(ms_message_len(m), 7);
    assert_memory_equal(ms_message_data(m), "second!", 7);
    /* from its own payload (the copy is made before the old one is freed) */
    ms_assert_ok(ms_message_set_data(m, (const char *)ms_message_data(m) + 1, 3));
    assert_memory_equal(ms_message_data(m), "eco", 3);
    ms_assert_ok(ms_message_set_data(m, NULL, 0));
    assert_int_equal(ms_message_len(m), 0);
    ms_assert_status(ms_message_set_data(m, NULL, 2), MS_ERR_INVALID_ARG);
    ms_message_unref(m);
}

static void message_json_parses_payload(void **state)
{
    ms_message *m = NULL;
    json_t *j = NULL;

    ms_assert_ok(ms_message_create("a", "{\"n\":5}", 7, &m));
    ms_assert_ok(ms_message_json(m, &j));
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 5);
    json_decref(j);
    ms_assert_ok(ms_message_set_data(m, "{\n\"n\": ,}", 9));
    ms_assert_status(ms_message_json(m, &j), MS_ERR_PARSE);
    assert_null(j);
    assert_detail_has("payload:2:");
    ms_assert_ok(ms_message_set_data(m, NULL, 0));
    ms_assert_status(ms_message_json(m, &j), MS_ERR_PARSE);
    assert_detail_has("payload");
    ms_assert_status(ms_message_json(NULL, &j), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_message_json(m, NULL), MS_ERR_INVALID_ARG);
    ms_message_unref(m);
}

/* --- wire headers ------------------------------------------------------------------- */

static int releases;

static void count_release(void *backing)
{
    releases++;
    free(backing);
}

typedef struct wire {
    char keys[16][64];
    char values[16][128];
    int n;
    int stop_after; /* return MS_ERR_FULL once n reaches it (0: never) */
} wire;

static ms_status record(const char *key, const char *value, void *closure)
{
    wire *w = closure;
    if (w->stop_after > 0 && w->n == w->stop_after)
        return MS_ERR_FULL;
    snprintf(w->keys[w->n], sizeof w->keys[0], "%s", key);
    snprintf(w->values[w->n], sizeof w->values[0], "%s", value);
    w->n++;
    return MS_OK;
}

/* ms__message_reuse: a finished message's block becomes a fresh message,
 * with everything the old one carried gone (ASan checks the frees), and is
 * refused whenever reuse would be unsafe or the block too small. */
static void reuse_gives_a_fresh_message(void **state)
{
    ms_message *m = NULL, *w = NULL;
    char *backing = malloc(16);
    char big[200];

    ms_assert_ok(ms_message_create("a.b", "0123456789abcdef", 16, &m));
    ms_assert_ok(ms_message_set_id(m, "id-1"));
    ms_assert_ok(ms_message_set_source(m, "billing"));
    ms_assert_ok(ms_message_set_reply(m, "_INBOX.x"));
    ms_assert_ok(ms_message_add_header(m, "X-One", "1"));
    ms_assert_ok(ms_message_set_type(m, MS_MSG_EVENT));
    ms_assert_ok(ms_message_set_data(m, "owned", 5));
    ms__message_freeze(m);

    assert_true(ms__message_exclusive(m));
    assert_true(ms__message_reuse(m, "c.d.e", "xyz", 3));
    assert_string_equal(ms_message_subject(m), "c.d.e");
    assert_int_equal(ms_message_len(m), 3);
    assert_memory_equal(ms_message_data(m), "xyz", 4); /* NUL after the payload */
    assert_null(ms_message_reply(m));
    assert_null(ms_message_id(m));
    assert_null(ms_message_source(m));
    assert_int_equal(ms_message_type(m), MS_MSG_NONE);
    assert_null(ms_message_header(m, "X-One"));
    assert_false(ms__message_has_headers(m));
    ms_assert_ok(ms_message_set_id(m, "writable again")); /* no longer frozen */

    /* Too big for the block: refused, m untouched. */
    memset(big, 'q', sizeof big);
    assert_false(ms__message_reuse(m, "c.d.e", big, sizeof big));
    assert_string_equal(ms_message_id(m), "writable again");

    /* Another reference exists: refused. */
    ms_message_ref(m);
    assert_false(ms__message_exclusive(m));
    assert_false(ms__message_reuse(m, "x", "", 0));
    ms_message_unref(m);
    ms_message_unref(m);

    /* A wrapped message owns no block of its own: refused. */
    assert_non_null(backing);
    memcpy(backing, "w.s", 4);
    releases = 0;
    ms_assert_ok(ms__message_wrap(backing, NULL, "", 0, backing, count_release, &w));
    assert_false(ms__message_exclusive(w));
    assert_false(ms__message_reuse(w, "x", "", 0));
    ms_message_unref(w);
    assert_int_equal(releases, 1);
}

static void wrap_borrows_and_releases_backing(void **state)
{
    char *backing = malloc(64);
    ms_message *m = NULL;

    assert_non_null(backing);
    memcpy(backing, "in.box\0_INBOX.9\0payload", 23);
    releases = 0;
    ms_assert_ok(
        ms__message_wrap(backing, backing + 7, backing + 16, 7, backing, count_release, &m));
    assert_ptr_equal(ms_message_subject(m), backing);
    assert_string_equal(ms_message_reply(m), "_INBOX.9");
    assert_memory_equal(ms_message_data(m), "payload", 7);
    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Id", "abc"));
    ms__message_freeze(m);
    ms_message_ref(m);
    ms_message_unref(m);
    assert_int_equal(releases, 0);
    ms_message_unref(m);
    assert_int_equal(releases, 1);

    /* ownership passes even when wrap fails */
    backing = malloc(8);
    assert_non_null(backing);
    ms_assert_status(ms__message_wrap(NULL, NULL, NULL, 0, backing, count_release, &m),
                     MS_ERR_INVALID_ARG);
    assert_int_equal(releases, 2);
}

static void wire_headers_map_onto_metadata(void **state)
{
    ms_message *m = NULL;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    ms_assert_ok(ms_message_create("a", NULL, 0, &m));
    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Id", "id-7"));
    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Source", "billing"));
    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Type", "dependency_update"));
    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Correlation-Id", "c-1"));
    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Time", "2026-11-25T10:43:46.123456Z"));
    ms_assert_ok(ms__message_set_wire_header(m, "Traceparent", tp)); /* Go-style case */
    ms_assert_ok(ms__message_set_wire_header(m, "X-Plain", "p"));
    ms_assert_ok(ms__message_set_wire_header(m, "X-Plain", "q"));

    assert_string_equal(ms_message_id(m), "id-7");
    assert_string_equal(ms_message_source(m), "billing");
    assert_int_equal(ms_message_type(m), MS_MSG_DEPENDENCY_UPDATE);
    assert_string_equal(ms_message_correlation_id(m), "c-1");
    assert_string_equal(ms_message_timestamp(m), "2026-11-25T10:43:46.123456Z");
    assert_string_equal(ms_message_traceparent(m), tp);
    assert_int_equal(ms_message_header_count(m), 2);
    assert_null(ms_message_header(m, "Ms-Id"));

    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Type", "brand_new_kind"));
    assert_int_equal(ms_message_type(m), MS_MSG_OTHER);
    assert_string_equal(ms_message_type_name(m), "brand_new_kind");
    ms_assert_ok(ms__message_set_wire_header(m, "Ms-Id", "id-8")); /* a repeat replaces */
    assert_string_equal(ms_message_id(m), "id-8");
    ms_assert_status(ms__message_set_wire_header(m, NULL, "v"), MS_ERR_INVALID_ARG);
    ms_assert_status(ms__message_set_wire_header(m, "k", NULL), MS_ERR_INVALID_ARG);
    ms_message_unref(m);
}

static void each_wire_header_metadata_first(void **state)
{
    ms_message *m = NULL;
    wire w;

    memset(&w, 0, sizeof w);
    ms_assert_ok(ms_msg_request("svc.users.get", "gateway", NULL, &m));
    ms_assert_ok(ms_message_add_header(m, "X-First", "1"));
    ms_assert_ok(ms_message_set_correlation_id(m, "corr-1"));
    ms_assert_ok(ms_message_add_header(m, "X-Second", "2"));
    ms_assert_ok(ms__message_each_wire_header(m, record, &w));
    assert_int_equal(w.n, 8);
    assert_string_equal(w.keys[0], "Ms-Id");
    assert_string_equal(w.values[0], ms_message_id(m));
    assert_string_equal(w.keys[1], "Ms-Source");
    assert_string_equal(w.values[1], "gateway");
    assert_string_equal(w.keys[2], "Ms-Type");
    assert_string_equal(w.values[2], "request");
    assert_string_equal(w.keys[3], "Ms-Correlation-Id");
    assert_string_equal(w.keys[4], "Ms-Time");
    assert_string_equal(w.keys[5], "traceparent");
    assert_string_equal(w.keys[6], "X-First");
    assert_string_equal(w.keys[7], "X-Second");

    /* round trip onto a fresh message through the wire mapping */
    {
        ms_message *r = NULL;
        ms_assert_ok(ms_message_create("svc.users.get", NULL, 0, &r));
        for (int i = 0; i < w.n; i++)
            ms_assert_ok(ms__message_set_wire_header(r, w.keys[i], w.values[i]));
        assert_string_equal(ms_message_id(r), ms_message_id(m));
        assert_int_equal(ms_message_type(r), MS_MSG_REQUEST);
        assert_string_equal(ms_message_traceparent(r), ms_message_traceparent(m));
        assert_string_equal(ms_message_header(r, "X-Second"), "2");
        ms_message_unref(r);
    }

    memset(&w, 0, sizeof w);
    w.stop_after = 2;
    ms_assert_status(ms__message_each_wire_header(m, record, &w), MS_ERR_FULL);
    assert_int_equal(w.n, 2);
    ms_assert_status(ms__message_each_wire_header(m, NULL, &w), MS_ERR_INVALID_ARG);
    ms_message_unref(m);
}

/* --- builders ------------------------------------------------------------------------ */

static json_t *payload_of(const ms_message *m)
{
    json_error_t err;
    json_t *j = json_loadb(ms_message_data(m), ms_message_len(m), 0, &err);
    if (j == NULL)
        fail_msg("payload does not parse: %s", err.text);
    return j;
}

static void assert_stamped(const ms_message *m, ms_msg_type type, const char *source)
{
    assert_non_null(ms_message_id(m));
    assert_int_equal(strlen(ms_message_id(m)), MS_ID_LEN);
    assert_non_null(ms_message_timestamp(m));
    assert_int_equal(strlen(ms_message_timestamp(m)), MS_TIMESTAMP_LEN);
    assert_true(ms__traceparent_valid(ms_message_traceparent(m)));
    assert_int_equal(ms_message_type(m), type);
    if (source != NULL)
        assert_string_equal(ms_message_source(m), source);
    else
        assert_null(ms_message_source(m));
}

static void builder_change_notification(void **state)
{
    ms_message *m = NULL;
    json_t *j;

    ms_assert_ok(ms_msg_change_notification("events.users.changed", "users", "renamed \"x\"", &m));
    assert_stamped(m, MS_MSG_CHANGE_NOTIFICATION, "users");
    assert_string_equal(ms_message_subject(m), "events.users.changed");
    j = payload_of(m);
    assert_string_equal(json_string_value(json_object_get(j, "change_summary")), "renamed \"x\"");
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);
    ms_message_unref(m);

    ms_assert_status(ms_msg_change_notification(NULL, "u", "s", &m), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_msg_change_notification("a", "u", NULL, &m), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_msg_change_notification("a.*", "u", "s", &m), MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_msg_change_notification("a", "u", "s", NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_msg_change_notification("a", "bad\nsource", "s", &m), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_msg_change_notification("a", "u", "\xff\xfe", &m), MS_ERR_INVALID_ARG);
    assert_null(m);
}

static void builder_interface_changed(void **state)
{
    ms_message *m = NULL;
    json_t *j;

    ms_assert_ok(ms_msg_interface_changed(NULL, NULL, "user-api", "1.2.0", "2.0.0", true,
                                          "dropped field", &m));
    assert_stamped(m, MS_MSG_INTERFACE_CHANGED, NULL);
    assert_string_equal(ms_message_subject(m), "mainstack.interface.changed.user-api");
    j = payload_of(m);
    assert_string_equal(json_string_value(json_object_get(j, "interface_name")), "user-api");
    assert_string_equal(json_string_value(json_object_get(j, "old_version")), "1.2.0");
    assert_string_equal(json_string_value(json_object_get(j, "new_version")), "2.0.0");
    assert_true(json_is_true(json_object_get(j, "breaking")));
    assert_string_equal(json_string_value(json_object_get(j, "summary")), "dropped field");
    json_decref(j);
    /* compact serialisation, keys in the documented order */
    assert_int_equal(strncmp(ms_message_data(m), "{\"interface_name\":\"user-api\",", 29), 0);
    ms_message_unref(m);

    /* optional fields become null; an explicit subject wins */
    ms_assert_ok(
        ms_msg_interface_changed("custom.subject", "s", "x", NULL, "1.0.0", false, NULL, &m));
    assert_string_equal(ms_message_subject(m), "custom.subject");
    j = payload_of(m);
    assert_true(json_is_null(json_object_get(j, "old_version")));
    assert_true(json_is_null(json_object_get(j, "summary")));
    assert_true(json_is_false(json_object_get(j, "breaking")));
    json_decref(j);
    ms_message_unref(m);

    ms_assert_status(ms_msg_interface_changed(NULL, NULL, "a b", NULL, "1", false, NULL, &m),
                     MS_ERR_INVALID_SUBJECT);
    assert_detail_has("a b");
    ms_assert_status(ms_msg_interface_changed(NULL, NULL, "*", NULL, "1", false, NULL, &m),
                     MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_msg_interface_changed(NULL, NULL, "", NULL, "1", false, NULL, &m),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_msg_interface_changed(NULL, NULL, NULL, NULL, "1", false, NULL, &m),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_msg_interface_changed(NULL, NULL, "x", NULL, NULL, false, NULL, &m),
                     MS_ERR_INVALID_ARG);
}

static void builder_dependency_update(void **state)
{
    ms_message *m = NULL;
    json_t *j;

    ms_assert_ok(ms_msg_dependency_update(NULL, "deployer", "libfoo", "1.0", "1.1", &m));
    assert_stamped(m, MS_MSG_DEPENDENCY_UPDATE, "deployer");
    assert_string_equal(ms_message_subject(m), "mainstack.dependency.updated.libfoo");
    j = payload_of(m);
    assert_string_equal(json_string_value(json_object_get(j, "name")), "libfoo");
    assert_string_equal(json_string_value(json_object_get(j, "from_version")), "1.0");
    assert_string_equal(json_string_value(json_object_get(j, "to_version")), "1.1");
    json_decref(j);
    ms_message_unref(m);

    ms_assert_ok(ms_msg_dependency_update(NULL, NULL, "new", NULL, "0.1", &m));
    j = payload_of(m);
    assert_true(json_is_null(json_object_get(j, "from_version")));
    json_decref(j);
    ms_message_unref(m);
    ms_assert_status(ms_msg_dependency_update(NULL, NULL, "a..b", NULL, "1", &m),
                     MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_msg_dependency_update(NULL, NULL, "x", "1", NULL, &m), MS_ERR_INVALID_ARG);
}

static void builder_request_event_command(void **state)
{
    ms_message *m = NULL;
    json_t *body = json_pack("{s:i, s:[i,i]}", "user", 42, "ids", 1, 2);
    json_t *j;

    assert_non_null(body);
    ms_assert_ok(ms_msg_request("component.users.get", "gw", body, &m));
    assert_stamped(m, MS_MSG_REQUEST, "gw");
    j = payload_of(m);
    assert_true(json_equal(j, body));
    json_decref(j);
    ms_message_unref(m);

    ms_assert_ok(ms_msg_request("component.users.ping", NULL, NULL, &m));
    assert_int_equal(ms_message_len(m), 0);
    ms_message_unref(m);
    ms_assert_status(ms_msg_request(NULL, NULL, body, &m), MS_ERR_INVALID_ARG);

    ms_assert_ok(ms_msg_event("events.users.created", "users", body, &m));
    assert_stamped(m, MS_MSG_EVENT, "users");
    j = payload_of(m);
    assert_true(json_equal(j, body));
    json_decref(j);
    ms_message_unref(m);
    ms_assert_status(ms_msg_event("events.>", NULL, body, &m), MS_ERR_INVALID_SUBJECT);

    ms_assert_ok(ms_msg_command("component.users.cmd", "ops", "reindex", body, &m));
    assert_stamped(m, MS_MSG_COMMAND, "ops");
    j = payload_of(m);
    assert_string_equal(json_string_value(json_object_get(j, "command")), "reindex");
    assert_true(json_equal(json_object_get(j, "args"), body));
    json_decref(j);
    ms_message_unref(m);
    ms_assert_ok(ms_msg_command("component.users.cmd", NULL, "stop", NULL, &m));
    j = payload_of(m);
    assert_true(json_is_null(json_object_get(j, "args")));
    json_decref(j);
    ms_message_unref(m);
    ms_assert_status(ms_msg_command("c", NULL, NULL, NULL, &m), MS_ERR_INVALID_ARG);

    /* a scalar body is fine too */
    {
        json_t *num = json_integer(7);
        ms_assert_ok(ms_msg_event("events.n", NULL, num, &m));
        assert_memory_equal(ms_message_data(m), "7", 1);
        ms_message_unref(m);
        json_decref(num);
    }
    assert_int_equal(body->refcount, 1); /* borrowed, not stolen */
    json_decref(body);
}

static void builder_config_and_health(void **state)
{
    ms_message *m = NULL;
    json_t *cfg = json_pack("{s:s, s:i}", "level", "debug", "workers", 4);
    json_t *j;

    ms_assert_ok(ms_msg_config_change(NULL, "ops", "user-service", cfg, &m));
    assert_stamped(m, MS_MSG_CONFIG_CHANGE, "ops");
    assert_string_equal(ms_message_subject(m), "mainstack.config.user-service");
    j = payload_of(m);
    assert_string_equal(json_string_value(json_object_get(j, "component")), "user-service");
    assert_true(json_equal(json_object_get(j, "config"), cfg));
    json_decref(j);
    ms_message_unref(m);
    ms_assert_status(ms_msg_config_change(NULL, "ops", "user-service", NULL, &m),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_msg_config_change(NULL, "ops", "a\tb", cfg, &m), MS_ERR_INVALID_SUBJECT);
    assert_int_equal(cfg->refcount, 1);
    json_decref(cfg);

    ms_assert_ok(ms_msg_health_check(NULL, "runtime", "user-service", &m));
    assert_stamped(m, MS_MSG_HEALTH_CHECK, "runtime");
    assert_string_equal(ms_message_subject(m), "mainstack.health.user-service");
    j = payload_of(m);
    assert_string_equal(json_string_value(json_object_get(j, "component")), "user-service");
    json_decref(j);
    ms_message_unref(m);
    ms_assert_status(ms_msg_health_check(NULL, NULL, NULL, &m), MS_ERR_INVALID_ARG);
}

static void builder_response(void **state)
{
    ms_message *req = NULL, *resp = NULL;
    json_t *body = json_pack("{s:b}", "ok", 1);

    ms_assert_ok(ms_msg_request("component.users.get", "gw", NULL, &req));
    ms_assert_status(ms_msg_response(req, "users", body, &resp), MS_ERR_STATE);
    assert_detail_has("no reply subject");
    ms_assert_ok(ms_message_set_reply(req, "_INBOX.xyz.1"));
    ms__message_freeze(req);

    ms_assert_ok(ms_msg_response(req, "users", body, &resp));
    assert_stamped(resp, MS_MSG_RESPONSE, "users");
    assert_string_equal(ms_message_subject(resp), "_INBOX.xyz.1");
    assert_string_equal(ms_message_correlation_id(resp), ms_message_id(req));
    assert_memory_equal(ms_message_traceparent(resp), ms_message_traceparent(req), 36);
    assert_string_not_equal(ms_message_traceparent(resp), ms_message_traceparent(req));
    assert_string_not_equal(ms_message_id(resp), ms_message_id(req));
    ms_message_unref(resp);
    ms_message_unref(req);

    /* a plain NATS request without metadata still gets a fresh trace */
    ms_assert_ok(ms_message_create("svc.x", NULL, 0, &req));
    ms_assert_ok(ms_message_set_reply(req, "_INBOX.2"));
    ms_assert_ok(ms_msg_response(req, NULL, NULL, &resp));
    assert_null(ms_message_correlation_id(resp));
    assert_true(ms__traceparent_valid(ms_message_traceparent(resp)));
    ms_message_unref(resp);
    ms_message_unref(req);
    ms_assert_status(ms_msg_response(NULL, NULL, NULL, &resp), MS_ERR_INVALID_ARG);
    json_decref(body);
}

/* --- ids, time, trace context -------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

#define NIDS 100000

static void uuid7_format_and_strict_order(void **state)
{
    char(*ids)[MS_ID_LEN + 1] = malloc(NIDS * sizeof *ids);
    struct timespec ts;
    unsigned long long now_ms, id_ms = 0;

    assert_non_null(ids);
    clock_gettime(CLOCK_REALTIME, &ts);
    now_ms = (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
    for (int i = 0; i < NIDS; i++)
        ms_id_new(ids[i]);
    for (int i = 0; i < NIDS; i++) {
        const char *id = ids[i];
        assert_int_equal(strlen(id), MS_ID_LEN);
        for (int k = 0; k < MS_ID_LEN; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23)
                assert_int_equal(id[k], '-');
            else if (hexval(id[k]) < 0)
                fail_msg("id %s: bad char at %d", id, k);
        }
        assert_int_equal(id[14], '7');                             /* version */
        assert_true(hexval(id[19]) >= 8 && hexval(id[19]) <= 0xb); /* variant 10xx */
        if (i > 0 && strcmp(ids[i - 1], id) >= 0)
            fail_msg("ids not increasing: %s then %s", ids[i - 1], id);
    }
    /* the first 48 bits are the Unix time in milliseconds */
    for (int k = 0; k < 13; k++) {
        if (k != 8)
            id_ms = id_ms * 16 + (unsigned long long)hexval(ids[0][k]);
    }
    assert_true(id_ms + 5000 > now_ms && id_ms < now_ms + 5000);
    free(ids);
}

#define TIDS 20000

static void *make_ids(void *p)
{
    char(*ids)[MS_ID_LEN + 1] = p;
    for (int i = 0; i < TIDS; i++)
        ms_id_new(ids[i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void uuid7_unique_across_threads(void **state)
{
    char(*ids)[MS_ID_LEN + 1] = malloc(4 * TIDS * sizeof *ids);
    pthread_t th[4];

    assert_non_null(ids);
    for (int t = 0; t < 4; t++)
        assert_int_equal(pthread_create(&th[t], NULL, make_ids, ids + t * TIDS), 0);
    for (int t = 0; t < 4; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    for (int t = 0; t < 4; t++) { /* each thread saw increasing ids */
        for (int i = 1; i < TIDS; i++)
            assert_true(strcmp(ids[t * TIDS + i - 1], ids[t * TIDS + i]) < 0);
    }
    qsort(ids, 4 * TIDS, sizeof *ids, cmp_id);
    for (int i = 1; i < 4 * TIDS; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    free(ids);
}

static void timestamp_format(void **state)
{
    char ts[MS_TIMESTAMP_LEN + 1];
    char expect[32];
    struct timespec now;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &now);
    ms_timestamp_now(ts);
    assert_int_equal(strlen(ts), MS_TIMESTAMP_LEN);
    assert_true(ms__timestamp_valid(ts));
    assert_int_equal(ts[4], '-');
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], '.');
    assert_int_equal(ts[26], 'Z');
    /* the date agrees with gmtime (unless we straddle midnight, then retry) */
    gmtime_r(&now.tv_sec, &tm);
    snprintf(expect, sizeof expect, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    if (strncmp(ts, expect, 10) != 0) {
        clock_gettime(CLOCK_REALTIME, &now);
        ms_timestamp_now(ts);
        gmtime_r(&now.tv_sec, &tm);
        snprintf(expect, sizeof expect, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
        assert_memory_equal(ts, expect, 10);
    }
}

static void traceparent_new_and_child(void **state)
{
    char a[MS_TRACEPARENT_LEN + 1], b[MS_TRACEPARENT_LEN + 1], c[MS_TRACEPARENT_LEN + 1];

    ms_traceparent_new(a);
    ms_traceparent_new(b);
    assert_int_equal(strlen(a), MS_TRACEPARENT_LEN);
    assert_true(ms__traceparent_valid(a));
    assert_memory_equal(a, "00-", 3);
    assert_string_equal(a + 52, "-01");
    assert_memory_not_equal(a + 3, b + 3, 32); /* fresh trace ids */

    ms_assert_ok(ms_traceparent_child(a, c));
    assert_true(ms__traceparent_valid(c));
    assert_memory_equal(c, a, 36);               /* same trace id */
    assert_memory_not_equal(c + 36, a + 36, 16); /* new span id */
    assert_string_equal(c + 52, "-01");

    /* flags are kept; the child may overwrite its parent in place */
    snprintf(c, sizeof c, "%s", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
    ms_assert_ok(ms_traceparent_child(c, c));
    assert_memory_equal(c, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
    assert_string_equal(c + 52, "-00");
}

static void traceparent_invalid_parents(void **state)
{
    static const char *const bad[] = {
        "",
        "garbage",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero span */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-", /* too long */
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   /* short trace */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
    };
    char out[MS_TRACEPARENT_LEN + 1];

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_assert_status(ms_traceparent_child(bad[i], out), MS_ERR_PARSE);
        assert_detail_has("traceparent");
    }
    ms_assert_status(ms_traceparent_child(NULL, out), MS_ERR_PARSE);
    ms_assert_status(ms_traceparent_child("x", NULL), MS_ERR_INVALID_ARG);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(create_copies_subject_and_payload),
    cmocka_unit_test(create_empty_payload),
    cmocka_unit_test(create_bad_arguments),
    cmocka_unit_test(null_message_getters_are_safe),
    cmocka_unit_test(ref_makes_read_only),
    cmocka_unit_test(freeze_makes_read_only),
    cmocka_unit_test(refcount_is_thread_safe),
    cmocka_unit_test(clone_is_deep_and_writable),
    cmocka_unit_test(metadata_setters_validate),
    cmocka_unit_test(type_setters),
    cmocka_unit_test(type_names_round_trip),
    cmocka_unit_test(headers_add_set_and_list),
    cmocka_unit_test(header_keys_and_values_validated),
    cmocka_unit_test(header_count_limit),
    cmocka_unit_test(set_data_replaces_payload),
    cmocka_unit_test(message_json_parses_payload),
    cmocka_unit_test(wrap_borrows_and_releases_backing),
    cmocka_unit_test(reuse_gives_a_fresh_message),
    cmocka_unit_test(wire_headers_map_onto_metadata),
    cmocka_unit_test(each_wire_header_metadata_first),
    cmocka_unit_test(builder_change_notification),
    cmocka_unit_test(builder_interface_changed),
    cmocka_unit_test(builder_dependency_update),
    cmocka_unit_test(builder_request_event_command),
    cmocka_unit_test(builder_config_and_health),
    cmocka_unit_test(builder_response),
    cmocka_unit_test(uuid7_format_and_strict_order),
    cmocka_unit_test(uuid7_unique_across_threads),
    cmocka_unit_test(timestamp_format),
    cmocka_unit_test(traceparent_new_and_child),
    cmocka_unit_test(traceparent_invalid_parents),
};

MS_TEST_MAIN(tests, NULL, NULL)
