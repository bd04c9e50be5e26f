/*
 * test_stream.c - durable event streams: on a real nats-server with
 * JetStream (stored once per message id, a reader that was away gets what
 * it missed, unacknowledged messages come back, readers sharing a durable
 * share its messages, the store survives a server restart, a server without
 * JetStream gets a clear error) and in-process (best effort: delivery,
 * sharing, nak requeues); bad input on both.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_test.h"
#include "nats_fixture.h"

#define WAIT_MS 5000

typedef struct fixture {
    ms_nats_server *srv; /* NULL in-process */
    ms_bus *bus;
    char inproc[64];
} fixture;

static int js_up(void **state)
{
    ms_nats_server_opts o = {.jetstream = 1};
    fixture *f = calloc(1, sizeof *f);

    if (f == NULL || ms_nats_server_start(&o, &f->srv) != MS_OK ||
        ms_bus_connect_url(ms_nats_server_url(f->srv), &f->bus) != MS_OK) {
        print_error("setup: %s\n", ms_last_error());
        return -1;
    }
    *state = f;
    return 0;
}

static int plain_up(void **state)
{
    fixture *f = calloc(1, sizeof *f);

    if (f == NULL || ms_nats_server_start(NULL, &f->srv) != MS_OK ||
        ms_bus_connect_url(ms_nats_server_url(f->srv), &f->bus) != MS_OK) {
        print_error("setup: %s\n", ms_last_error());
        return -1;
    }
    *state = f;
    return 0;
}

static int inproc_up(void **state)
{
    static int n;
    fixture *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    snprintf(f->inproc, sizeof f->inproc, "inproc://stream-test-%d", n++);
    if (ms_bus_connect_url(f->inproc, &f->bus) != MS_OK) {
        print_error("setup: %s\n", ms_last_error());
        return -1;
    }
    *state = f;
    return 0;
}

static int down(void **state)
{
    fixture *f = *state;

    ms_bus_destroy(f->bus);
    ms_nats_server_stop(f->srv);
    free(f);
    return 0;
}

static void assert_detail_has(const char *needle)
{
    if (strstr(ms_last_error(), needle) == NULL)
        fail_msg("detail '%s' does not contain '%s'", ms_last_error(), needle);
}

static ms_message *iface_event(int i)
{
    char name[32], to[32];
    ms_message *m = NULL;

    snprintf(name, sizeof name, "api-%d", i);
    snprintf(to, sizeof to, "1.%d.0", i + 1);
    ms_assert_ok(ms_msg_interface_changed(NULL, "test", name, "1.0.0", to, false, "a change", &m));
    return m;
}

static void publish_n(fixture *f, int from, int n)
{
    for (int i = from; i < from + n; i++) {
        ms_message *m = iface_event(i);
        bool dup = true;

        ms_assert_ok(ms_stream_publish(f->bus, m, WAIT_MS, &dup));
        assert_false(dup);
        ms_message_unref(m);
    }
}

static ms_consumer *open_consumer(fixture *f, const char *durable, int ack_wait_ms)
{
    ms_stream_config cfg;
    ms_consumer_options o;
    ms_consumer *c = NULL;

    ms_stream_config_init(&cfg);
    ms_consumer_options_init(&o);
    o.durable = durable;
    if (ack_wait_ms > 0)
        o.ack_wait_ms = ack_wait_ms;
    ms_assert_ok(ms_consumer_open(f->bus, &cfg, &o, &c));
    return c;
}

static void ensure_control(fixture *f)
{
    ms_stream_config cfg;

    ms_stream_config_init(&cfg);
    ms_assert_ok(ms_stream_ensure(f->bus, &cfg));
}

/* Read and acknowledge until n arrived; returns how many (fails on a
 * timeout before n). The subject of each, in order, goes to subjects. */
static int read_acked(ms_consumer *c, int n, char subjects[][64])
{
    int got = 0;

    while (got < n) {
        ms_delivery *d = NULL;

        ms_assert_ok(ms_consumer_next(c, WAIT_MS, &d));
        if (subjects != NULL)
            snprintf(subjects[got], 64, "%s", ms_message_subject(ms_delivery_message(d)));
        ms_assert_ok(ms_delivery_ack(d));
        ms_delivery_free(d);
        got++;
    }
    return got;
}

/* --- NATS --------------------------------------------------------------- */

static void js_publish_and_consume_in_order(void **state)
{
    fixture *f = *state;
    char subjects[5][64];
    ms_delivery *d = NULL;
    ms_consumer *c;

    ensure_control(f);
    ensure_control(f); /* idempotent */
    publish_n(f, 0, 5);
    c = open_consumer(f, "agent-a", 0);
    assert_int_equal(read_acked(c, 5, subjects), 5);
    for (int i = 0; i < 5; i++) {
        char want[64];

        snprintf(want, sizeof want, "mainstack.interface.changed.api-%d", i);
        assert_string_equal(subjects[i], want);
    }
    ms_assert_status(ms_consumer_next(c, 200, &d), MS_ERR_TIMEOUT);
    assert_null(d);
    ms_consumer_close(c);
}

static void js_metadata_survives(void **state)
{
    fixture *f = *state;
    ms_message *m = iface_event(7);
    ms_delivery *d = NULL;
    ms_consumer *c;
    json_t *body = NULL;

    ensure_control(f);
    ms_assert_ok(ms_stream_publish(f->bus, m, WAIT_MS, NULL));
    c = open_consumer(f, "agent-meta", 0);
    ms_assert_ok(ms_consumer_next(c, WAIT_MS, &d));
    const ms_message *got = ms_delivery_message(d);
    assert_string_equal(ms_message_id(got), ms_message_id(m));
    assert_int_equal(ms_message_type(got), MS_MSG_INTERFACE_CHANGED);
    assert_string_equal(ms_message_source(got), "test");
    assert_int_equal(ms_delivery_count(d), 1);
    ms_assert_ok(ms_message_json(got, &body));
    assert_string_equal(json_string_value(json_object_get(body, "new_version")), "1.8.0");
    json_decref(body);
    ms_assert_ok(ms_delivery_ack(d));
    ms_assert_status(ms_delivery_ack(d), MS_ERR_STATE);
    ms_delivery_free(d);
    ms_consumer_close(c);
    ms_message_unref(m);
}

static void js_duplicate_id_stored_once(void **state)
{
    fixture *f = *state;
    ms_message *m = iface_event(1);
    ms_delivery *d = NULL;
    ms_consumer *c;
    bool dup = false;

    ensure_control(f);
    ms_assert_ok(ms_stream_publish(f->bus, m, WAIT_MS, &dup));
    assert_false(dup);
    ms_assert_ok(ms_stream_publish(f->bus, m, WAIT_MS, &dup));
    assert_true(dup);
    c = open_consumer(f, "agent-dup", 0);
    assert_int_equal(read_acked(c, 1, NULL), 1);
    ms_assert_status(ms_consumer_next(c, 300, &d), MS_ERR_TIMEOUT);
    ms_consumer_close(c);
    ms_message_unref(m);
}

/* A reader that closed (an agent that went down) gets, when it comes back
 * under the same durable name, exactly what it had not acknowledged. */
static void js_reader_back_gets_what_it_missed(void **state)
{
    fixture *f = *state;
    char subjects[4][64];
    ms_delivery *d = NULL;
    ms_consumer *c;

    ensure_control(f);
    publish_n(f, 0, 3);
    c = open_consumer(f, "agent-b", 0);
    assert_int_equal(read_acked(c, 2, NULL), 2);
    ms_consumer_close(c); /* down, one unread */
    publish_n(f, 3, 3);   /* published while it is down */
    c = open_consumer(f, "agent-b", 0);
    assert_int_equal(read_acked(c, 4, subjects), 4);
    assert_string_equal(subjects[0], "mainstack.interface.changed.api-2");
    assert_string_equal(subjects[3], "mainstack.interface.changed.api-5");
    ms_assert_status(ms_consumer_next(c, 300, &d), MS_ERR_TIMEOUT);
    ms_consumer_close(c);
}

static void js_unacked_comes_back(void **state)
{
    fixture *f = *state;
    ms_delivery *d = NULL;
    ms_consumer *c;
    char first_id[64];

    ensure_control(f);
    publish_n(f, 0, 1);
    c = open_consumer(f, "agent-c", 400);
    ms_assert_ok(ms_consumer_next(c, WAIT_MS, &d));
    snprintf(first_id, sizeof first_id, "%s", ms_message_id(ms_delivery_message(d)));
    ms_delivery_free(d); /* crashed before acknowledging */
    ms_assert_ok(ms_consumer_next(c, WAIT_MS, &d));
    assert_string_equal(ms_message_id(ms_delivery_message(d)), first_id);
    assert_int_equal(ms_delivery_count(d), 2);
    /* nak: at once again */
    ms_assert_ok(ms_delivery_nak(d, 0));
    ms_delivery_free(d);
    ms_assert_ok(ms_consumer_next(c, WAIT_MS, &d));
    assert_int_equal(ms_delivery_count(d), 3);
    ms_assert_ok(ms_delivery_progress(d));
    ms_assert_ok(ms_delivery_ack(d));
    ms_delivery_free(d);
    ms_assert_status(ms_consumer_next(c, 800, &d), MS_ERR_TIMEOUT);
    ms_consumer_close(c);
}

typedef struct shared_reader {
    fixture *f;
    int got;
    char ids[400][40];
} shared_reader;

static void *shared_read(void *arg)
{
    shared_reader *r = arg;
    ms_consumer *c = open_consumer(r->f, "agent-shared", 0);

    for (;;) {
        ms_delivery *d = NULL;

        if (ms_consumer_next(c, 1500, &d) != MS_OK)
            break;
        snprintf(r->ids[r->got++], 40, "%s", ms_message_id(ms_delivery_message(d)));
        (void)ms_delivery_ack(d);
        ms_delivery_free(d);
        if (r->got == 400)
            break;
    }
    ms_consumer_close(c);
    return NULL;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Two agents of one component: one consumer, each event to one of them. */
static void js_readers_share_a_durable(void **state)
{
    enum { N = 200 };
    fixture *f = *state;
    shared_reader *r = calloc(2, sizeof *r);
    pthread_t t[2];
    char (*all)[40] = calloc(N, 40);
    int total = 0;

    assert_non_null(r);
    assert_non_null(all);
    ensure_control(f);
    /* create the durable before the readers race to */
    ms_consumer_close(open_consumer(f, "agent-shared", 0));
    publish_n(f, 0, N);
    for (int i = 0; i < 2; i++) {
        r[i].f = f;
        assert_int_equal(pthread_create(&t[i], NULL, shared_read, &r[i]), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < r[i].got; j++)
            memcpy(all[total++], r[i].ids[j], 40);
    assert_int_equal(total, N);
    qsort(all, (size_t)total, 40, cmp_ids);
    for (int i = 1; i < total; i++)
        assert_string_not_equal(all[i - 1], all[i]);
    free(all);
    free(r);
}

/* kill -9 of the server: the stored messages survive; what was not
 * acknowledged comes back (and, since JetStream writes consumer state
 * asynchronously, possibly an acknowledgement of the last moment is lost too:
 * delivery is at least once, and the registry's one-decision-per-event is
 * what makes it exactly once in effect). */
static void js_store_survives_server_restart(void **state)
{
    fixture *f = *state;
    ms_stream_config cfg;
    ms_consumer_options o;
    ms_consumer *c = NULL;
    ms_delivery *d = NULL;
    bool seen[3] = {false, false, false};
    ms_status s;
    int64_t until;

    ensure_control(f);
    publish_n(f, 0, 3);
    c = open_consumer(f, "agent-r", 1000);
    assert_int_equal(read_acked(c, 1, NULL), 1);
    ms_consumer_close(c);
    ms_assert_ok(ms_nats_server_kill(f->srv));
    ms_assert_ok(ms_nats_server_restart(f->srv));
    /* the bus reconnects by itself; JetStream then recovers its store */
    ms_stream_config_init(&cfg);
    ms_consumer_options_init(&o);
    o.durable = "agent-r";
    o.ack_wait_ms = 1000;
    until = ms_test_now_ms() + 15000;
    do {
        c = NULL;
        s = ms_consumer_open(f->bus, &cfg, &o, &c);
        if (s != MS_OK)
            ms_test_sleep_ms(100);
    } while (s != MS_OK && ms_test_now_ms() < until);
    ms_assert_ok(s);
    while (ms_consumer_next(c, 2500, &d) == MS_OK) {
        const char *subj = ms_message_subject(ms_delivery_message(d));
        int i = subj[strlen(subj) - 1] - '0';

        assert_true(i >= 0 && i < 3);
        seen[i] = true;
        ms_assert_ok(ms_delivery_ack(d));
        ms_delivery_free(d);
    }
    assert_true(seen[1]);
    assert_true(seen[2]);
    ms_consumer_close(c);
}

static void js_without_jetstream_is_unsupported(void **state)
{
    fixture *f = *state;
    ms_stream_config cfg;
    ms_consumer_options o;
    ms_consumer *c = NULL;
    ms_message *m = iface_event(0);

    ms_stream_config_init(&cfg);
    ms_assert_status(ms_stream_ensure(f->bus, &cfg), MS_ERR_UNSUPPORTED);
    assert_detail_has("-js");
    ms_assert_status(ms_stream_publish(f->bus, m, 1000, NULL), MS_ERR_NOT_FOUND);
    assert_detail_has("JetStream");
    ms_consumer_options_init(&o);
    o.durable = "x";
    ms_assert_status(ms_consumer_open(f->bus, &cfg, &o, &c), MS_ERR_UNSUPPORTED);
    assert_null(c);
    ms_message_unref(m);
}

static void js_publish_outside_the_stream(void **state)
{
    fixture *f = *state;
    ms_message *m = NULL;

    ensure_control(f);
    ms_assert_ok(ms_msg_event("events.user.created", "t", NULL, &m));
    ms_assert_status(ms_stream_publish(f->bus, m, 1000, NULL), MS_ERR_NOT_FOUND);
    assert_detail_has("events.user.created");
    ms_message_unref(m);
}

/* --- in-process ----------------------------------------------------------- */

static void inproc_delivers_and_shares(void **state)
{
    fixture *f = *state;
    ms_consumer *a, *b;
    ms_delivery *d = NULL;
    int got_a = 0, got_b = 0;

    ensure_control(f);
    a = open_consumer(f, "agent-x", 0);
    b = open_consumer(f, "agent-x", 0);
    publish_n(f, 0, 40);
    ms_assert_ok(ms_bus_flush(f->bus, WAIT_MS));
    for (;;) {
        bool any = false;

        if (ms_consumer_next(a, 100, &d) == MS_OK) {
            got_a++;
            any = true;
            ms_assert_ok(ms_delivery_ack(d));
            ms_delivery_free(d);
        }
        if (ms_consumer_next(b, 100, &d) == MS_OK) {
            got_b++;
            any = true;
            ms_assert_ok(ms_delivery_ack(d));
            ms_delivery_free(d);
        }
        if (!any)
            break;
    }
    assert_int_equal(got_a + got_b, 40);
    ms_consumer_close(a);
    ms_consumer_close(b);
}

static void inproc_nak_requeues(void **state)
{
    fixture *f = *state;
    ms_consumer *c;
    ms_delivery *d = NULL;
    char id[64];

    ensure_control(f);
    c = open_consumer(f, "agent-y", 0);
    publish_n(f, 0, 1);
    ms_assert_ok(ms_consumer_next(c, WAIT_MS, &d));
    assert_int_equal(ms_delivery_count(d), 1);
    snprintf(id, sizeof id, "%s", ms_message_id(ms_delivery_message(d)));
    ms_assert_ok(ms_delivery_nak(d, 0));
    ms_assert_status(ms_delivery_ack(d), MS_ERR_STATE);
    ms_delivery_free(d);
    ms_assert_ok(ms_consumer_next(c, WAIT_MS, &d));
    assert_string_equal(ms_message_id(ms_delivery_message(d)), id);
    assert_int_equal(ms_delivery_count(d), 2);
    ms_assert_ok(ms_delivery_progress(d));
    ms_assert_ok(ms_delivery_ack(d));
    ms_delivery_free(d);
    ms_assert_status(ms_consumer_next(c, 50, &d), MS_ERR_TIMEOUT);
    ms_consumer_close(c);
}

static void count_msg(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    (void)bus;
    (void)sub;
    (void)msg;
    atomic_fetch_add((atomic_int *)closure, 1);
}

/* A caller's own queue group named like the durable (an agent does that for
 * its monitored topics) must not take the consumer's messages. */
static void inproc_consumer_group_is_its_own(void **state)
{
    fixture *f = *state;
    atomic_int other;
    ms_consumer *c;
    int got = 0;

    atomic_init(&other, 0);
    ensure_control(f);
    c = open_consumer(f, "agent-z", 0);
    ms_assert_ok(ms_bus_subscribe(f->bus, "mainstack.interface.changed.>", "agent-z", count_msg,
                                  &other, NULL));
    publish_n(f, 0, 20);
    got = read_acked(c, 20, NULL);
    assert_int_equal(got, 20);
    /* its own group got every one too (its handler may trail a moment) */
    for (int64_t until = ms_test_now_ms() + WAIT_MS;
         atomic_load(&other) < 20 && ms_test_now_ms() < until;)
        ms_test_sleep_ms(1);
    assert_int_equal(atomic_load(&other), 20);
    ms_consumer_close(c);
}

/* --- bad input (both transports) ---------------------------------------- */

static void check_bad_input(void **state)
{
    fixture *f = *state;
    ms_stream_config cfg;
    ms_consumer_options o;
    ms_consumer *c = NULL;
    ms_delivery *d = NULL;
    ms_message *m = NULL;
    const char *bad_subjects[] = {"mainstack..x", NULL};
    const char *no_subjects[] = {NULL};

    ms_stream_config_init(&cfg);
    ms_assert_status(ms_stream_ensure(NULL, &cfg), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_stream_ensure(f->bus, NULL), MS_ERR_INVALID_ARG);
    cfg.name = "has.dot";
    ms_assert_status(ms_stream_ensure(f->bus, &cfg), MS_ERR_INVALID_ARG);
    assert_detail_has("character '.'");
    cfg.name = "";
    ms_assert_status(ms_stream_ensure(f->bus, &cfg), MS_ERR_INVALID_ARG);
    ms_stream_config_init(&cfg);
    cfg.subjects = bad_subjects;
    ms_assert_status(ms_stream_ensure(f->bus, &cfg), MS_ERR_INVALID_SUBJECT);
    assert_detail_has("subject 0");
    cfg.subjects = no_subjects;
    ms_assert_status(ms_stream_ensure(f->bus, &cfg), MS_ERR_INVALID_ARG);
    ms_stream_config_init(&cfg);
    cfg.max_age_ms = -1;
    ms_assert_status(ms_stream_ensure(f->bus, &cfg), MS_ERR_INVALID_ARG);

    /* a message without an id has no deduplication key */
    ms_assert_ok(ms_message_create("mainstack.interface.changed.x", "{}", 2, &m));
    ms_assert_status(ms_stream_publish(f->bus, m, 1000, NULL), MS_ERR_INVALID_ARG);
    assert_detail_has("needs an id");
    ms_assert_status(ms_stream_publish(f->bus, NULL, 1000, NULL), MS_ERR_INVALID_ARG);
    ms_message_unref(m);
    m = iface_event(0);
    ms_assert_status(ms_stream_publish(f->bus, m, 0, NULL), MS_ERR_INVALID_ARG);
    ms_message_unref(m);

    ms_stream_config_init(&cfg);
    ms_consumer_options_init(&o);
    ms_assert_status(ms_consumer_open(f->bus, &cfg, &o, &c), MS_ERR_INVALID_ARG);
    assert_detail_has("durable");
    o.durable = "with space";
    ms_assert_status(ms_consumer_open(f->bus, &cfg, &o, &c), MS_ERR_INVALID_ARG);
    o.durable = "ok";
    o.max_ack_pending = -3;
    ms_assert_status(ms_consumer_open(f->bus, &cfg, &o, &c), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_consumer_open(NULL, &cfg, &o, &c), MS_ERR_INVALID_ARG);
    assert_null(c);
    ms_assert_status(ms_consumer_next(NULL, 10, &d), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_delivery_ack(NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_delivery_nak(NULL, 0), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_delivery_progress(NULL), MS_ERR_INVALID_ARG);
    ms_delivery_free(NULL);
    ms_consumer_close(NULL);
    assert_null(ms_delivery_message(NULL));
    assert_int_equal(ms_delivery_count(NULL), 0);
}

static void js_bad_input(void **state)
{
    check_bad_input(state);
}

static void inproc_bad_input(void **state)
{
    check_bad_input(state);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(js_publish_and_consume_in_order, js_up, down),
        cmocka_unit_test_setup_teardown(js_metadata_survives, js_up, down),
        cmocka_unit_test_setup_teardown(js_duplicate_id_stored_once, js_up, down),
        cmocka_unit_test_setup_teardown(js_reader_back_gets_what_it_missed, js_up, down),
        cmocka_unit_test_setup_teardown(js_unacked_comes_back, js_up, down),
        cmocka_unit_test_setup_teardown(js_readers_share_a_durable, js_up, down),
        cmocka_unit_test_setup_teardown(js_store_survives_server_restart, js_up, down),
        cmocka_unit_test_setup_teardown(js_without_jetstream_is_unsupported, plain_up, down),
        cmocka_unit_test_setup_teardown(js_publish_outside_the_stream, js_up, down),
        cmocka_unit_test_setup_teardown(inproc_delivers_and_shares, inproc_up, down),
        cmocka_unit_test_setup_teardown(inproc_nak_requeues, inproc_up, down),
        cmocka_unit_test_setup_teardown(inproc_consumer_group_is_its_own, inproc_up, down),
        cmocka_unit_test_setup_teardown(js_bad_input, js_up, down),
        cmocka_unit_test_setup_teardown(inproc_bad_input, inproc_up, down),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
