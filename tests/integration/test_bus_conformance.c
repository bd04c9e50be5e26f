/*
 * test_bus_conformance.c - one bus test suite, run against both transports.
 *
 * Every behaviour in bus.h is checked here twice: nats_<case> against a
 * real nats-server started for the case, inproc_<case> against an inproc
 * broker. A case takes the URL from its fixture and opens its own buses, so
 * the body of each case is shared and the two transports cannot drift apart.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_test.h"
#include "nats_fixture.h"

typedef struct fixture {
    ms_nats_server *server; /* NULL for inproc */
    char url[128];
} fixture;

static int setup_nats(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    ms_assert_ok(ms_nats_server_start(NULL, &f->server));
    snprintf(f->url, sizeof f->url, "%s", ms_nats_server_url(f->server));
    *state = f;
    return 0;
}

static int setup_inproc(void **state)
{
    static atomic_int seq;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->url, sizeof f->url, "inproc://conformance-%d", atomic_fetch_add(&seq, 1));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ms_nats_server_stop(f->server);
    free(f);
    return 0;
}

static ms_bus *open_bus(void **state)
{
    fixture *f = *state;
    ms_bus *bus = NULL;
    ms_assert_ok(ms_bus_connect_url(f->url, &bus));
    assert_non_null(bus);
    return bus;
}

/* Make sure a subscription is active on the server before publishing from
 * another connection (NATS subscriptions are asynchronous). */
static void sync_bus(ms_bus *bus)
{
    ms_assert_ok(ms_bus_flush(bus, 5000));
}

/* --- counting handler ------------------------------------------------------ */

typedef struct counter {
    atomic_int n;
    atomic_int bad;
    const char *expect; /* expected payload prefix, or NULL */
} counter;

static void count_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    counter *k = c;
    if (k->expect != NULL && (ms_message_len(m) < strlen(k->expect) ||
                              memcmp(ms_message_data(m), k->expect, strlen(k->expect)) != 0))
        atomic_fetch_add(&k->bad, 1);
    atomic_fetch_add(&k->n, 1);
}

typedef struct at_least {
    counter *c;
    int n;
} at_least;

static int reached(void *arg)
{
    at_least *a = arg;
    return atomic_load(&a->c->n) >= a->n;
}

static void wait_count(counter *c, int n)
{
    at_least a = {c, n};
    if (!ms_test_wait_until(reached, &a, 10000))
        fail_msg("waited for %d messages, got %d", n, atomic_load(&c->n));
}

/* --- pub/sub --------------------------------------------------------------- */

typedef struct ordered {
    atomic_int n;
    atomic_int out_of_order;
    int next;
} ordered;

static void ordered_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    ordered *o = c;
    char buf[32];
    size_t len = ms_message_len(m) < sizeof buf - 1 ? ms_message_len(m) : sizeof buf - 1;
    memcpy(buf, ms_message_data(m), len);
    buf[len] = '\0';
    if (atoi(buf) != o->next)
        atomic_fetch_add(&o->out_of_order, 1);
    o->next++;
    atomic_fetch_add(&o->n, 1);
}

static int ordered_done(void *arg)
{
    return atomic_load(&((ordered *)arg)->n) >= 200;
}

static void pubsub(void **state)
{
    ms_bus *pub = open_bus(state), *subbus = open_bus(state);
    ordered o = {0};
    ms_subscription *sub = NULL;

    ms_assert_ok(ms_bus_subscribe(subbus, "conf.pubsub", NULL, ordered_handler, &o, &sub));
    assert_string_equal(ms_subscription_subject(sub), "conf.pubsub");
    assert_null(ms_subscription_queue(sub));
    sync_bus(subbus);
    for (int i = 0; i < 200; i++) {
        char buf[16];
        int len = snprintf(buf, sizeof buf, "%d", i);
        ms_assert_ok(ms_bus_publish(pub, "conf.pubsub", buf, (size_t)len));
    }
    ms_assert_ok(ms_bus_publish(pub, "conf.other", "x", 1)); /* not subscribed */
    ms_assert_ok(ms_bus_flush(pub, 5000));
    assert_true(ms_test_wait_until(ordered_done, &o, 10000));
    ms_test_sleep_ms(20);
    assert_int_equal(atomic_load(&o.n), 200);
    assert_int_equal(atomic_load(&o.out_of_order), 0);
    assert_int_equal(ms_subscription_delivered(sub), 200);
    ms_bus_destroy(pub);
    ms_bus_destroy(subbus);
}

static void empty_payload(void **state)
{
    ms_bus *bus = open_bus(state);
    counter c = {0};
    ms_assert_ok(ms_bus_subscribe(bus, "conf.empty", NULL, count_handler, &c, NULL));
    sync_bus(bus);
    ms_assert_ok(ms_bus_publish(bus, "conf.empty", NULL, 0));
    wait_count(&c, 1);
    ms_bus_destroy(bus);
}

static void wildcards(void **state)
{
    ms_bus *bus = open_bus(state);
    counter star = {0}, gt = {0}, lit = {0}, mid = {0}, all = {0};

    ms_assert_ok(ms_bus_subscribe(bus, "w.*", NULL, count_handler, &star, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "w.>", NULL, count_handler, &gt, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "w.a.b", NULL, count_handler, &lit, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "*.a.*", NULL, count_handler, &mid, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, ">", NULL, count_handler, &all, NULL));
    sync_bus(bus);
    const char *subjects[] = {"w", "w.a", "w.a.b", "w.x.y.z", "x.a.y", "w.a.b.c", "wa.b"};
    for (size_t i = 0; i < sizeof subjects / sizeof subjects[0]; i++)
        ms_assert_ok(ms_bus_publish(bus, subjects[i], "m", 1));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    wait_count(&all, 7);
    wait_count(&gt, 4);
    wait_count(&mid, 2);
    wait_count(&star, 1);
    wait_count(&lit, 1);
    ms_test_sleep_ms(50); /* nothing more may arrive */
    assert_int_equal(atomic_load(&all.n), 7);   /* every subject */
    assert_int_equal(atomic_load(&gt.n), 4);    /* w.a w.a.b w.x.y.z w.a.b.c */
    assert_int_equal(atomic_load(&mid.n), 2);   /* w.a.b x.a.y */
    assert_int_equal(atomic_load(&star.n), 1);  /* w.a */
    assert_int_equal(atomic_load(&lit.n), 1);   /* w.a.b */
    ms_bus_destroy(bus);
}

/* --- queue groups ---------------------------------------------------------- */

#define QG_MSGS 400
#define QG_MEMBERS 4

typedef struct qg {
    atomic_int per_member[QG_MEMBERS];
    atomic_uchar seen[QG_MSGS];
    atomic_int total;
} qg;

typedef struct qg_member {
    qg *g;
    int idx;
} qg_member;

static void qg_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    qg_member *mem = c;
    char buf[16];
    size_t len = ms_message_len(m) < sizeof buf - 1 ? ms_message_len(m) : sizeof buf - 1;
    memcpy(buf, ms_message_data(m), len);
    buf[len] = '\0';
    int i = atoi(buf);
    if (i >= 0 && i < QG_MSGS)
        atomic_fetch_add(&mem->g->seen[i], 1);
    atomic_fetch_add(&mem->g->per_member[mem->idx], 1);
    atomic_fetch_add(&mem->g->total, 1);
}

static int qg_done(void *arg)
{
    return atomic_load(&((qg *)arg)->total) >= QG_MSGS;
}

static void queue_group(void **state)
{
    ms_bus *pub = open_bus(state);
    ms_bus *members[QG_MEMBERS];
    qg_member mem[QG_MEMBERS];
    qg *g = calloc(1, sizeof *g);
    counter plain = {0};
    ms_subscription *sub = NULL;

    assert_non_null(g);
    for (int i = 0; i < QG_MEMBERS; i++) {
        members[i] = open_bus(state);
        mem[i] = (qg_member){g, i};
        ms_assert_ok(ms_bus_subscribe(members[i], "conf.qg", "workers", qg_handler, &mem[i],
                                      &sub));
        assert_string_equal(ms_subscription_queue(sub), "workers");
        sync_bus(members[i]);
    }
    /* A plain subscriber beside the group gets every message. */
    ms_assert_ok(ms_bus_subscribe(pub, "conf.qg", NULL, count_handler, &plain, NULL));
    sync_bus(pub);
    for (int i = 0; i < QG_MSGS; i++) {
        char buf[16];
        int len = snprintf(buf, sizeof buf, "%d", i);
        ms_assert_ok(ms_bus_publish(pub, "conf.qg", buf, (size_t)len));
    }
    ms_assert_ok(ms_bus_flush(pub, 5000));
    assert_true(ms_test_wait_until(qg_done, g, 10000));
    wait_count(&plain, QG_MSGS);
    ms_test_sleep_ms(50);
    assert_int_equal(atomic_load(&g->total), QG_MSGS);
    for (int i = 0; i < QG_MSGS; i++)
        assert_int_equal(atomic_load(&g->seen[i]), 1); /* exactly once */
    for (int i = 0; i < QG_MEMBERS; i++)
        assert_true(atomic_load(&g->per_member[i]) > 0); /* spread */
    assert_int_equal(atomic_load(&plain.n), QG_MSGS);
    for (int i = 0; i < QG_MEMBERS; i++)
        ms_bus_destroy(members[i]);
    ms_bus_destroy(pub);
    free(g);
}

/* --- request / reply ------------------------------------------------------- */

static void echo_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    ms_assert_ok(ms_bus_respond(bus, m, ms_message_data(m), ms_message_len(m)));
}

static void request_reply(void **state)
{
    ms_bus *server = open_bus(state), *client = open_bus(state);

    ms_assert_ok(ms_bus_subscribe(server, "svc.echo", NULL, echo_handler, NULL, NULL));
    sync_bus(server);
    for (int i = 0; i < 50; i++) {
        char buf[32];
        ms_message *reply = NULL;
        int len = snprintf(buf, sizeof buf, "ping %d", i);
        ms_assert_ok(ms_bus_request(client, "svc.echo", buf, (size_t)len, 5000, &reply));
        assert_non_null(reply);
        assert_int_equal(ms_message_len(reply), len);
        assert_memory_equal(ms_message_data(reply), buf, (size_t)len);
        ms_message_unref(reply);
    }
    ms_bus_destroy(client);
    ms_bus_destroy(server);
}

static void silent_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    atomic_fetch_add(&((counter *)c)->n, 1);
}

static void request_timeout(void **state)
{
    ms_bus *bus = open_bus(state);
    counter c = {0};
    ms_message *reply = NULL;

    ms_assert_ok(ms_bus_subscribe(bus, "svc.silent", NULL, silent_handler, &c, NULL));
    sync_bus(bus);
    int64_t t0 = ms_test_now_ms();
    ms_assert_status(ms_bus_request(bus, "svc.silent", "?", 1, 200, &reply), MS_ERR_TIMEOUT);
    int64_t took = ms_test_now_ms() - t0;
    assert_null(reply);
    assert_true(took >= 150);  /* it waited */
    assert_true(took < 3000);  /* and gave up */
    assert_int_equal(atomic_load(&c.n), 1); /* the request did arrive */
    assert_true(strlen(ms_last_error()) > 0);
    ms_bus_destroy(bus);
}

static void no_responders(void **state)
{
    ms_bus *bus = open_bus(state);
    ms_message *reply = NULL;
    int64_t t0 = ms_test_now_ms();

    ms_assert_status(ms_bus_request(bus, "svc.nobody.home", "?", 1, 5000, &reply),
                     MS_ERR_NO_RESPONDERS);
    assert_null(reply);
    assert_true(ms_test_now_ms() - t0 < 4000); /* answered, not timed out */
    assert_non_null(strstr(ms_last_error(), "svc.nobody.home"));
    ms_bus_destroy(bus);
}

static void response_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    ms_message *resp = NULL;
    json_t *body = json_pack("{s:s}", "status", "ok");
    ms_assert_ok(ms_msg_response(m, "responder", body, &resp));
    ms_assert_ok(ms_message_set_header(resp, "X-Handled-By", "responder"));
    ms_assert_ok(ms_bus_respond_msg(bus, m, resp));
    ms_message_unref(resp);
    json_decref(body);
}

static void request_msg_correlates(void **state)
{
    ms_bus *server = open_bus(state), *client = open_bus(state);
    ms_message *req = NULL, *reply = NULL;
    json_t *body = json_pack("{s:i}", "n", 7);

    ms_assert_ok(ms_bus_subscribe(server, "component.svc.get", "svc", response_handler, NULL,
                                  NULL));
    sync_bus(server);
    ms_assert_ok(ms_msg_request("component.svc.get", "client", body, &req));
    ms_assert_ok(ms_bus_request_msg(client, req, 5000, &reply));
    assert_int_equal(ms_message_type(reply), MS_MSG_RESPONSE);
    assert_string_equal(ms_message_correlation_id(reply), ms_message_id(req));
    assert_string_equal(ms_message_source(reply), "responder");
    assert_string_equal(ms_message_header(reply, "X-Handled-By"), "responder");
    /* same trace, new span */
    assert_memory_equal(ms_message_traceparent(reply), ms_message_traceparent(req), 35);
    json_t *got = NULL;
    ms_assert_ok(ms_message_json(reply, &got));
    assert_string_equal(json_string_value(json_object_get(got, "status")), "ok");
    json_decref(got);
    json_decref(body);
    ms_message_unref(req);
    ms_message_unref(reply);
    ms_bus_destroy(client);
    ms_bus_destroy(server);
}

/* --- headers --------------------------------------------------------------- */

typedef struct keeper {
    atomic_int n;
    ms_message *kept;
} keeper;

static void keep_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    keeper *k = c;
    if (k->kept == NULL)
        k->kept = ms_message_ref((ms_message *)m);
    atomic_fetch_add(&k->n, 1);
}

static int kept(void *arg)
{
    return atomic_load(&((keeper *)arg)->n) >= 1;
}

static void headers_roundtrip(void **state)
{
    ms_bus *pub = open_bus(state), *subbus = open_bus(state);
    keeper k = {0};
    ms_message *m = NULL;

    ms_assert_ok(ms_bus_subscribe(subbus, "mainstack.interface.changed.>", NULL, keep_handler, &k,
                                  NULL));
    sync_bus(subbus);
    ms_assert_ok(ms_msg_interface_changed(NULL, "user-service", "UserManagement", "1.0.0",
                                          "1.1.0", false, "adds an optional field", &m));
    ms_assert_ok(ms_message_set_correlation_id(m, "corr-42"));
    ms_assert_ok(ms_message_set_header(m, "X-Custom", "value with spaces"));
    ms_assert_ok(ms_message_add_header(m, "X-Multi", "one"));
    ms_assert_ok(ms_bus_publish_msg(pub, m));
    ms_assert_ok(ms_bus_flush(pub, 5000));
    assert_true(ms_test_wait_until(kept, &k, 10000));

    ms_message *r = k.kept;
    assert_string_equal(ms_message_subject(r), "mainstack.interface.changed.UserManagement");
    assert_string_equal(ms_message_id(r), ms_message_id(m));
    assert_string_equal(ms_message_source(r), "user-service");
    assert_int_equal(ms_message_type(r), MS_MSG_INTERFACE_CHANGED);
    assert_string_equal(ms_message_type_name(r), "interface_changed");
    assert_string_equal(ms_message_correlation_id(r), "corr-42");
    assert_string_equal(ms_message_timestamp(r), ms_message_timestamp(m));
    assert_string_equal(ms_message_traceparent(r), ms_message_traceparent(m));
    assert_string_equal(ms_message_header(r, "X-Custom"), "value with spaces");
    assert_string_equal(ms_message_header(r, "X-Multi"), "one");
    assert_int_equal(ms_message_len(r), ms_message_len(m));
    assert_memory_equal(ms_message_data(r), ms_message_data(m), ms_message_len(m));
    json_t *body = NULL;
    ms_assert_ok(ms_message_json(r, &body));
    assert_string_equal(json_string_value(json_object_get(body, "interface_name")),
                        "UserManagement");
    assert_true(json_is_false(json_object_get(body, "breaking")));
    json_decref(body);
    /* the published message is now shared: read-only */
    ms_assert_status(ms_message_set_source(m, "other"), MS_ERR_STATE);
    ms_message_unref(k.kept);
    ms_message_unref(m);
    ms_bus_destroy(pub);
    ms_bus_destroy(subbus);
}

/* --- ordering -------------------------------------------------------------- */

#define ORD_PUBLISHERS 3
#define ORD_PER 300

typedef struct ord_state {
    int next[ORD_PUBLISHERS];
    atomic_int bad;
    atomic_int n;
} ord_state;

static void multi_order_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    ord_state *o = c;
    int p = -1, seq = -1;
    char buf[32];
    size_t len = ms_message_len(m) < sizeof buf - 1 ? ms_message_len(m) : sizeof buf - 1;
    memcpy(buf, ms_message_data(m), len);
    buf[len] = '\0';
    if (sscanf(buf, "%d:%d", &p, &seq) != 2 || p < 0 || p >= ORD_PUBLISHERS ||
        seq != o->next[p])
        atomic_fetch_add(&o->bad, 1);
    else
        o->next[p]++;
    atomic_fetch_add(&o->n, 1);
}

typedef struct pub_arg {
    ms_bus *bus;
    int id;
} pub_arg;

static void *publisher_thread(void *arg)
{
    pub_arg *a = arg;
    for (int i = 0; i < ORD_PER; i++) {
        char buf[32];
        int len = snprintf(buf, sizeof buf, "%d:%d", a->id, i);
        if (ms_bus_publish(a->bus, "conf.order", buf, (size_t)len) != MS_OK)
            return (void *)1;
    }
    return NULL;
}

static int ord_done(void *arg)
{
    return atomic_load(&((ord_state *)arg)->n) >= ORD_PUBLISHERS * ORD_PER;
}

static void ordering_per_publisher(void **state)
{
    ms_bus *subbus = open_bus(state);
    ms_bus *pubs[ORD_PUBLISHERS];
    pthread_t th[ORD_PUBLISHERS];
    pub_arg args[ORD_PUBLISHERS];
    ord_state o = {0};

    ms_assert_ok(ms_bus_subscribe(subbus, "conf.order", NULL, multi_order_handler, &o, NULL));
    sync_bus(subbus);
    for (int i = 0; i < ORD_PUBLISHERS; i++) {
        pubs[i] = open_bus(state);
        args[i] = (pub_arg){pubs[i], i};
        assert_int_equal(pthread_create(&th[i], NULL, publisher_thread, &args[i]), 0);
    }
    for (int i = 0; i < ORD_PUBLISHERS; i++) {
        void *ret = NULL;
        pthread_join(th[i], &ret);
        assert_null(ret);
        ms_assert_ok(ms_bus_flush(pubs[i], 5000));
    }
    assert_true(ms_test_wait_until(ord_done, &o, 10000));
    assert_int_equal(atomic_load(&o.bad), 0);
    for (int i = 0; i < ORD_PUBLISHERS; i++) {
        assert_int_equal(o.next[i], ORD_PER);
        ms_bus_destroy(pubs[i]);
    }
    ms_bus_destroy(subbus);
}

/* --- drain ----------------------------------------------------------------- */

static void slow_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    ms_test_sleep_ms(20);
    atomic_fetch_add(&((counter *)c)->n, 1);
}

static void drain_finishes_inflight(void **state)
{
    ms_bus *pub = open_bus(state), *worker = open_bus(state);
    counter c = {0};

    ms_assert_ok(ms_bus_subscribe(worker, "conf.work", NULL, slow_handler, &c, NULL));
    sync_bus(worker);
    for (int i = 0; i < 10; i++)
        ms_assert_ok(ms_bus_publish(pub, "conf.work", "job", 3));
    ms_assert_ok(ms_bus_flush(pub, 5000));
    /* Give the messages time to reach the worker's connection, not its handler. */
    ms_test_sleep_ms(30);
    ms_assert_ok(ms_bus_drain(worker, 10000));
    assert_int_equal(atomic_load(&c.n), 10); /* all finished when drain returned */
    /* after drain: no more intake */
    ms_assert_status(ms_bus_subscribe(worker, "conf.more", NULL, count_handler, &c, NULL),
                     MS_ERR_CLOSED);
    ms_assert_status(ms_bus_publish(worker, "conf.work", "x", 1), MS_ERR_CLOSED);
    ms_bus_destroy(worker);
    ms_bus_destroy(pub);
}

typedef struct drain_arg {
    ms_bus *bus;
    ms_status st;
} drain_arg;

static void delayed_echo(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    atomic_fetch_add(&((counter *)c)->n, 1);
    ms_test_sleep_ms(200);
    ms_assert_ok(ms_bus_respond(bus, m, "late but sure", 13));
}

static void *drain_thread(void *arg)
{
    drain_arg *d = arg;
    d->st = ms_bus_drain(d->bus, 10000);
    return NULL;
}

static void drain_answers_accepted_request(void **state)
{
    ms_bus *server = open_bus(state), *client = open_bus(state);
    counter c = {0};
    pthread_t th;
    drain_arg d = {server, MS_ERR_INTERNAL};

    ms_assert_ok(ms_bus_subscribe(server, "svc.slow", NULL, delayed_echo, &c, NULL));
    sync_bus(server);
    /* Start the drain once the handler has accepted the request. */
    {
        char *inbox = NULL;
        counter rc = {0};
        ms_assert_ok(ms_bus_new_inbox(client, &inbox));
        ms_assert_ok(ms_bus_subscribe(client, inbox, NULL, count_handler, &rc, NULL));
        sync_bus(client);
        ms_assert_ok(ms_bus_publish_reply(client, "svc.slow", inbox, "q", 1));
        ms_assert_ok(ms_bus_flush(client, 5000));
        wait_count(&c, 1); /* accepted */
        assert_int_equal(pthread_create(&th, NULL, drain_thread, &d), 0);
        wait_count(&rc, 1); /* answered although the server is draining */
        pthread_join(th, NULL);
        ms_assert_ok(d.st);
        free(inbox);
    }
    ms_bus_destroy(server);
    ms_bus_destroy(client);
}

/* --- unsubscribe ----------------------------------------------------------- */

static void unsubscribe_stops_delivery(void **state)
{
    ms_bus *bus = open_bus(state);
    counter c = {0};
    ms_subscription *sub = NULL;

    ms_assert_ok(ms_bus_subscribe(bus, "conf.unsub", NULL, count_handler, &c, &sub));
    sync_bus(bus);
    ms_assert_ok(ms_bus_publish(bus, "conf.unsub", "1", 1));
    wait_count(&c, 1);
    ms_assert_ok(ms_subscription_unsubscribe(sub));
    for (int i = 0; i < 20; i++)
        ms_assert_ok(ms_bus_publish(bus, "conf.unsub", "2", 1));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    ms_test_sleep_ms(50);
    assert_int_equal(atomic_load(&c.n), 1);
    ms_assert_ok(ms_subscription_unsubscribe(NULL)); /* NULL-safe */
    ms_bus_destroy(bus);
}

/* --- many subscriptions ---------------------------------------------------- */

#define MANY 1000

static void many_subscriptions(void **state)
{
    ms_bus *bus = open_bus(state), *pub = open_bus(state);
    counter *c = calloc(MANY, sizeof *c);
    counter wild = {0};

    assert_non_null(c);
    for (int i = 0; i < MANY; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "many.%d", i);
        ms_assert_ok(ms_bus_subscribe(bus, subj, NULL, count_handler, &c[i], NULL));
    }
    ms_assert_ok(ms_bus_subscribe(bus, "many.*", NULL, count_handler, &wild, NULL));
    sync_bus(bus);
    for (int i = 0; i < MANY; i++) {
        char subj[32];
        snprintf(subj, sizeof subj, "many.%d", i);
        ms_assert_ok(ms_bus_publish(pub, subj, "x", 1));
    }
    ms_assert_ok(ms_bus_flush(pub, 5000));
    wait_count(&wild, MANY);
    for (int i = 0; i < MANY; i++)
        wait_count(&c[i], 1);
    ms_test_sleep_ms(20);
    for (int i = 0; i < MANY; i++)
        assert_int_equal(atomic_load(&c[i].n), 1);
    ms_bus_destroy(pub);
    ms_bus_destroy(bus); /* frees the 1,001 subscriptions left */
    free(c);
}

/* --- bad input ------------------------------------------------------------- */

static void bad_input(void **state)
{
    ms_bus *bus = open_bus(state);
    ms_message *reply = NULL;
    counter c = {0};

    const char *bad_pub[] = {"", "a..b", ".a", "a.", "a.*", "a.>", "a b", "a\tb", ">"};
    for (size_t i = 0; i < sizeof bad_pub / sizeof bad_pub[0]; i++) {
        ms_assert_status(ms_bus_publish(bus, bad_pub[i], "x", 1), MS_ERR_INVALID_SUBJECT);
        assert_true(strlen(ms_last_error()) > 0);
        ms_assert_status(ms_bus_request(bus, bad_pub[i], "x", 1, 100, &reply),
                         MS_ERR_INVALID_SUBJECT);
    }
    const char *bad_sub[] = {"", "a..b", "a.>.b", "a b", ".", "a.\n"};
    for (size_t i = 0; i < sizeof bad_sub / sizeof bad_sub[0]; i++)
        ms_assert_status(ms_bus_subscribe(bus, bad_sub[i], NULL, count_handler, &c, NULL),
                         MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_bus_subscribe(bus, "ok.subject", "bad queue", count_handler, &c, NULL),
                     MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_bus_subscribe(bus, "ok.subject", "", count_handler, &c, NULL),
                     MS_ERR_INVALID_SUBJECT);

    /* NULL arguments */
    ms_assert_status(ms_bus_publish(NULL, "a", "x", 1), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_publish(bus, NULL, "x", 1), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_publish(bus, "a", NULL, 5), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_publish_msg(bus, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_subscribe(bus, "a", NULL, NULL, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_subscribe(NULL, "a", NULL, count_handler, NULL, NULL),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_request(bus, "a", "x", 1, 100, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_request(bus, "a", "x", 1, -1, &reply), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_flush(NULL, 100), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_respond(bus, NULL, "x", 1), MS_ERR_INVALID_ARG);
    ms_bus *nb = NULL;
    ms_assert_status(ms_bus_connect(NULL, &nb), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_bus_connect_url("tcp://127.0.0.1:1", &nb), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "unknown scheme"));
    ms_assert_status(ms_bus_connect_url("inproc://", &nb), MS_ERR_INVALID_ARG);
    assert_null(nb);

    /* a message without a reply subject cannot be answered */
    ms_message *m = NULL;
    ms_assert_ok(ms_message_create("a.b", "x", 1, &m));
    ms_assert_status(ms_bus_respond(bus, m, "y", 1), MS_ERR_STATE);
    ms_message_unref(m);

    /* oversize payload: over the transport's limit, which is named */
    size_t max = ms_bus_max_payload(bus);
    assert_true(max > 0);
    char *big = calloc(1, max + 1);
    assert_non_null(big);
    ms_assert_status(ms_bus_publish(bus, "a.b", big, max + 1), MS_ERR_TOO_LARGE);
    char limit[32];
    snprintf(limit, sizeof limit, "%zu", max);
    assert_non_null(strstr(ms_last_error(), limit));
    ms_assert_status(ms_bus_request(bus, "a.b", big, max + 1, 100, &reply), MS_ERR_TOO_LARGE);
    free(big);

    /* closed bus */
    ms_bus_close(bus);
    ms_bus_close(bus); /* idempotent */
    assert_false(ms_bus_is_connected(bus));
    ms_assert_status(ms_bus_publish(bus, "a.b", "x", 1), MS_ERR_CLOSED);
    ms_assert_status(ms_bus_subscribe(bus, "a.b", NULL, count_handler, &c, NULL), MS_ERR_CLOSED);
    ms_bus_destroy(bus);
    ms_bus_destroy(NULL);
}

static void transport_name(void **state)
{
    fixture *f = *state;
    ms_bus *bus = open_bus(state);
    assert_string_equal(ms_bus_transport(bus), f->server ? "nats" : "inproc");
    assert_true(ms_bus_is_connected(bus));
    char *a = NULL, *b = NULL;
    ms_assert_ok(ms_bus_new_inbox(bus, &a));
    ms_assert_ok(ms_bus_new_inbox(bus, &b));
    assert_string_not_equal(a, b);
    ms_assert_ok(ms_subject_validate(a));
    free(a);
    free(b);
    ms_bus_destroy(bus);
}

#define BOTH(name)                                                                                 \
    static void nats_##name(void **state)                                                          \
    {                                                                                              \
        name(state);                                                                               \
    }                                                                                              \
    static void inproc_##name(void **state)                                                        \
    {                                                                                              \
        name(state);                                                                               \
    }

BOTH(pubsub)
BOTH(empty_payload)
BOTH(wildcards)
BOTH(queue_group)
BOTH(request_reply)
BOTH(request_timeout)
BOTH(no_responders)
BOTH(request_msg_correlates)
BOTH(headers_roundtrip)
BOTH(ordering_per_publisher)
BOTH(drain_finishes_inflight)
BOTH(drain_answers_accepted_request)
BOTH(unsubscribe_stops_delivery)
BOTH(many_subscriptions)
BOTH(bad_input)
BOTH(transport_name)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nats_pubsub, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_pubsub, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_empty_payload, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_empty_payload, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_wildcards, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_wildcards, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_queue_group, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_queue_group, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_request_reply, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_request_reply, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_request_timeout, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_request_timeout, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_no_responders, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_no_responders, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_request_msg_correlates, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_request_msg_correlates, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_headers_roundtrip, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_headers_roundtrip, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_ordering_per_publisher, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_ordering_per_publisher, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_drain_finishes_inflight, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_drain_finishes_inflight, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_drain_answers_accepted_request, setup_nats,
                                        teardown),
        cmocka_unit_test_setup_teardown(inproc_drain_answers_accepted_request, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_unsubscribe_stops_delivery, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_unsubscribe_stops_delivery, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_many_subscriptions, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_many_subscriptions, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_bad_input, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_bad_input, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_transport_name, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_transport_name, setup_inproc, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
