/*
 * test_bus_inproc.c - what only the inproc transport does.
 *
 * The behaviour both transports share is test_bus_conformance.c. Here:
 * brokers shared by name and isolated between names, bounded queues and their
 * overflow policy, unsubscribing and publishing from inside a handler, late
 * replies, closing with queued messages, parallel handlers, a thousand
 * members of one queue group, flush and drain timeouts, allocation failures.
 * Each case uses its own broker name.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"
#include "ms_test.h"

/* --- helpers ------------------------------------------------------------- */

static ms_bus *open_bus(const char *url, int pending_msgs, int pending_bytes,
                        int publish_timeout_ms, int workers)
{
    ms_bus_options o;
    ms_bus *bus = NULL;

    ms_bus_options_init(&o);
    o.url = url;
    if (pending_msgs > 0)
        o.pending_msgs_limit = pending_msgs;
    if (pending_bytes > 0)
        o.pending_bytes_limit = pending_bytes;
    if (publish_timeout_ms >= 0)
        o.publish_timeout_ms = publish_timeout_ms;
    o.inproc_workers = workers;
    ms_assert_ok(ms_bus_connect(&o, &bus));
    assert_non_null(bus);
    return bus;
}

static ms_bus *open_default(const char *url)
{
    return open_bus(url, 0, 0, -1, 0);
}

/* A gate a handler can wait on until the test opens it. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool open;
} gate;

static void gate_init(gate *g)
{
    assert_int_equal(pthread_mutex_init(&g->mu, NULL), 0);
    assert_int_equal(pthread_cond_init(&g->cond, NULL), 0);
    g->open = false;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait(gate *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->mu);
}

/* Open a gate from another thread after a delay. */
typedef struct delayed_open {
    gate *g;
    int ms;
    pthread_t th;
} delayed_open;

static void *delayed_open_main(void *arg)
{
    delayed_open *d = arg;
    ms_test_sleep_ms(d->ms);
    gate_open(d->g);
    return NULL;
}

static void delayed_open_start(delayed_open *d, gate *g, int ms)
{
    d->g = g;
    d->ms = ms;
    assert_int_equal(pthread_create(&d->th, NULL, delayed_open_main, d), 0);
}

static void delayed_open_join(delayed_open *d)
{
    pthread_join(d->th, NULL);
}

typedef struct counter {
    atomic_int n;
} counter;

static void count_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    atomic_fetch_add(&((counter *)c)->n, 1);
}

typedef struct wait_arg {
    atomic_int *v;
    int want;
} wait_arg;

static int reached(void *arg)
{
    wait_arg *w = arg;
    return atomic_load(w->v) >= w->want;
}

/* Wait (bounded) until *v >= want. */
static void wait_for(atomic_int *v, int want, int timeout_ms)
{
    wait_arg w = {v, want};
    if (!ms_test_wait_until(reached, &w, timeout_ms))
        fail_msg("waited %d ms for %d, got %d", timeout_ms, want, atomic_load(v));
}

/* --- brokers by name ----------------------------------------------------- */

static void test_same_name_shares_subjects(void **state)
{
    ms_bus *a = open_default("inproc://t-share");
    ms_bus *b = open_default("inproc://t-share");
    counter on_a = {0}, on_b = {0};
    ms_message *reply = NULL;

    ms_assert_ok(ms_bus_subscribe(a, "share.a", NULL, count_handler, &on_a, NULL));
    ms_assert_ok(ms_bus_subscribe(b, "share.b", NULL, count_handler, &on_b, NULL));
    ms_assert_ok(ms_bus_publish(b, "share.a", "x", 1));
    ms_assert_ok(ms_bus_publish(a, "share.b", "y", 1));
    ms_assert_ok(ms_bus_flush(a, 5000));
    ms_assert_ok(ms_bus_flush(b, 5000));
    assert_int_equal(atomic_load(&on_a.n), 1);
    assert_int_equal(atomic_load(&on_b.n), 1);
    /* A request from one bus finds no responder on the other yet. */
    ms_assert_status(ms_bus_request(a, "share.nobody", "?", 1, 1000, &reply), MS_ERR_NO_RESPONDERS);
    assert_null(reply);
    assert_non_null(strstr(ms_last_error(), "share.nobody"));
    ms_bus_destroy(a);
    /* The broker lives on while b is connected. */
    ms_assert_ok(ms_bus_publish(b, "share.b", "z", 1));
    ms_assert_ok(ms_bus_flush(b, 5000));
    assert_int_equal(atomic_load(&on_b.n), 2);
    ms_bus_destroy(b);
}

/* A publisher repeating one subject reuses its last lookup while the
 * broker's index is unchanged: every subscribe and unsubscribe in between,
 * on this bus or another bus of the broker, and a queue group's new
 * member, must be seen by the very next publish; two brokers never share
 * a cached lookup. */
static void test_repeated_subject_sees_every_change(void **state)
{
    ms_bus *a = open_default("inproc://t-cache");
    ms_bus *b = open_default("inproc://t-cache");
    ms_bus *other = open_default("inproc://t-cache-other");
    counter one = {0}, two = {0}, q1 = {0}, q2 = {0}, far = {0};
    ms_subscription *s1 = NULL, *s2 = NULL;

    ms_assert_ok(ms_bus_publish(a, "cache.x", "0", 1)); /* no match, cached */
    ms_assert_ok(ms_bus_subscribe(a, "cache.x", NULL, count_handler, &one, &s1));
    ms_assert_ok(ms_bus_publish(a, "cache.x", "1", 1));
    ms_assert_ok(ms_bus_flush(a, 5000));
    assert_int_equal(atomic_load(&one.n), 1);
    /* another bus of the same broker subscribes: seen at once */
    ms_assert_ok(ms_bus_subscribe(b, "cache.*", NULL, count_handler, &two, &s2));
    ms_assert_ok(ms_bus_publish(a, "cache.x", "2", 1));
    ms_assert_ok(ms_bus_flush(a, 5000));
    ms_assert_ok(ms_bus_flush(b, 5000));
    assert_int_equal(atomic_load(&one.n), 2);
    assert_int_equal(atomic_load(&two.n), 1);
    /* unsubscribe: the next publish no longer reaches it */
    ms_assert_ok(ms_subscription_unsubscribe(s1));
    ms_assert_ok(ms_bus_publish(a, "cache.x", "3", 1));
    ms_assert_ok(ms_bus_flush(a, 5000)); /* a flush covers what its own bus published */
    assert_int_equal(atomic_load(&one.n), 2);
    assert_int_equal(atomic_load(&two.n), 2);
    /* a queue group that grows: both members get a share */
    ms_assert_ok(ms_bus_subscribe(a, "cache.x", "g", count_handler, &q1, NULL));
    ms_assert_ok(ms_bus_publish(a, "cache.x", "4", 1));
    ms_assert_ok(ms_bus_subscribe(b, "cache.x", "g", count_handler, &q2, NULL));
    for (int i = 0; i < 20; i++)
        ms_assert_ok(ms_bus_publish(a, "cache.x", "5", 1));
    ms_assert_ok(ms_bus_flush(a, 5000));
    ms_assert_ok(ms_bus_flush(b, 5000));
    assert_int_equal(atomic_load(&q1.n) + atomic_load(&q2.n), 21);
    assert_true(atomic_load(&q2.n) > 0);
    /* the same subject on another broker: its own lookup */
    ms_assert_ok(ms_bus_subscribe(other, "cache.x", NULL, count_handler, &far, NULL));
    ms_assert_ok(ms_bus_publish(other, "cache.x", "6", 1));
    ms_assert_ok(ms_bus_publish(a, "cache.x", "7", 1));
    ms_assert_ok(ms_bus_flush(other, 5000));
    ms_assert_ok(ms_bus_flush(a, 5000));
    ms_assert_ok(ms_bus_flush(b, 5000));
    assert_int_equal(atomic_load(&far.n), 1);
    assert_int_equal(atomic_load(&two.n), 24);
    ms_bus_destroy(other);
    ms_bus_destroy(b);
    ms_bus_destroy(a);
}

/* A publisher reuses the blocks of its finished messages: a message a
 * handler still holds, or another subscription has not handled yet, must
 * never be one of them. One subscription keeps every message; a second one
 * sees them all too; everything kept must still read as published. */
#define KEEP_N 3000
typedef struct keeper {
    atomic_int n;
    ms_message *kept[KEEP_N];
} keeper;

static void keep_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    keeper *k = closure;
    int i = atomic_fetch_add(&k->n, 1);

    if (i < KEEP_N)
        k->kept[i] = ms_message_ref((ms_message *)msg);
}

static void test_reused_blocks_spare_held_messages(void **state)
{
    ms_bus *bus = open_default("inproc://t-reuse");
    keeper *k = calloc(1, sizeof *k);
    counter other = {0};
    char buf[32];

    assert_non_null(k);
    ms_assert_ok(ms_bus_subscribe(bus, "reuse.x", NULL, keep_handler, k, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "reuse.*", NULL, count_handler, &other, NULL));
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < KEEP_N / 3; i++) {
            int len = snprintf(buf, sizeof buf, "msg-%d", round * (KEEP_N / 3) + i);
            ms_assert_ok(ms_bus_publish(bus, "reuse.x", buf, (size_t)len));
        }
        ms_assert_ok(ms_bus_flush(bus, 5000));
        /* Unheld ones come back for reuse: publish a burst of those too. */
        for (int i = 0; i < 500; i++)
            ms_assert_ok(ms_bus_publish(bus, "reuse.y", "scratch", 7));
        ms_assert_ok(ms_bus_flush(bus, 5000));
    }
    assert_int_equal(atomic_load(&k->n), KEEP_N);
    assert_int_equal(atomic_load(&other.n), KEEP_N + 1500);
    for (int i = 0; i < KEEP_N; i++) {
        int len = snprintf(buf, sizeof buf, "msg-%d", i);
        assert_string_equal(ms_message_subject(k->kept[i]), "reuse.x");
        assert_int_equal(ms_message_len(k->kept[i]), len);
        assert_memory_equal(ms_message_data(k->kept[i]), buf, (size_t)len);
        ms_message_unref(k->kept[i]);
    }
    ms_bus_destroy(bus);
    free(k);
}

static void test_different_names_isolated(void **state)
{
    ms_bus *a = open_default("inproc://t-iso-1");
    ms_bus *b = open_default("inproc://t-iso-2");
    counter on_a = {0};
    ms_message *reply = NULL;

    ms_assert_ok(ms_bus_subscribe(a, "iso.>", NULL, count_handler, &on_a, NULL));
    ms_assert_ok(ms_bus_publish(b, "iso.x", "x", 1));
    ms_assert_ok(ms_bus_flush(b, 5000));
    ms_assert_status(ms_bus_request(b, "iso.x", "x", 1, 1000, &reply), MS_ERR_NO_RESPONDERS);
    ms_assert_ok(ms_bus_publish(a, "iso.x", "x", 1));
    ms_assert_ok(ms_bus_flush(a, 5000));
    assert_int_equal(atomic_load(&on_a.n), 1);
    ms_bus_destroy(b);
    ms_bus_destroy(a);
    /* The last bus freed the broker: a new one on the name starts empty. */
    a = open_default("inproc://t-iso-1");
    ms_assert_status(ms_bus_request(a, "iso.x", "x", 1, 1000, &reply), MS_ERR_NO_RESPONDERS);
    ms_bus_destroy(a);
}

static void test_bad_urls(void **state)
{
    ms_bus *bus = NULL;
    char url[400];

    ms_assert_status(ms_bus_connect_url("inproc://has space", &bus), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "inproc://has space"));
    ms_assert_status(ms_bus_connect_url("inproc://a/b", &bus), MS_ERR_INVALID_ARG);
    memcpy(url, "inproc://", 9);
    memset(url + 9, 'n', 300);
    url[309] = '\0';
    ms_assert_status(ms_bus_connect_url(url, &bus), MS_ERR_INVALID_ARG);
    assert_null(bus);
}

static void test_limits_and_state(void **state)
{
    ms_bus_options o;
    ms_bus *bus = NULL;
    char big[101] = {0};

    ms_bus_options_init(&o);
    o.url = "inproc://t-limits";
    o.inproc_max_payload = 100;
    ms_assert_ok(ms_bus_connect(&o, &bus));
    assert_string_equal(ms_bus_transport(bus), "inproc");
    assert_int_equal(ms_bus_max_payload(bus), 100);
    assert_true(ms_bus_is_connected(bus));
    ms_assert_ok(ms_bus_publish(bus, "limits", big, 100));
    ms_assert_status(ms_bus_publish(bus, "limits", big, 101), MS_ERR_TOO_LARGE);
    assert_non_null(strstr(ms_last_error(), "100"));
    ms_bus_close(bus);
    assert_false(ms_bus_is_connected(bus));
    ms_assert_status(ms_bus_publish(bus, "limits", "x", 1), MS_ERR_CLOSED);
    ms_assert_status(ms_bus_flush(bus, 100), MS_ERR_CLOSED);
    ms_bus_close(bus); /* idempotent */
    ms_bus_destroy(bus);
}

/* --- overflow ------------------------------------------------------------ */

typedef struct blocker {
    gate g;
    atomic_int entered;
    atomic_int n;
} blocker;

/* Blocks in the first message until the gate opens; counts all. */
static void block_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    blocker *b = c;
    if (atomic_fetch_add(&b->entered, 1) == 0)
        gate_wait(&b->g);
    atomic_fetch_add(&b->n, 1);
}

/* The limit counts the messages queued or being handled: with the handler
 * parked on the first one, CAP - 1 more fit. */
static void test_overflow_blocks_then_full(void **state)
{
    enum { CAP = 4 };
    ms_bus *bus = open_bus("inproc://t-overflow", CAP, 0, 100, 0);
    blocker b = {0};
    counter other = {0};
    int64_t t0, waited;

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(bus, "flow.x", NULL, block_handler, &b, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "flow.*", NULL, count_handler, &other, NULL));
    /* The first message parks the handler; CAP more fill its queue. */
    ms_assert_ok(ms_bus_publish(bus, "flow.x", "0", 1));
    wait_for(&b.entered, 1, 5000);
    for (int i = 1; i < CAP; i++)
        ms_assert_ok(ms_bus_publish(bus, "flow.x", "n", 1));
    t0 = ms_test_now_ms();
    ms_assert_status(ms_bus_publish(bus, "flow.x", "over", 4), MS_ERR_FULL);
    waited = ms_test_now_ms() - t0;
    assert_true(waited >= 90);
    assert_true(waited < 3000);
    /* The detail names the subscription and its limit. */
    assert_non_null(strstr(ms_last_error(), "flow.x"));
    assert_non_null(strstr(ms_last_error(), "4 messages"));
    /* Nothing already queued is lost, and the other subscription got every
     * message, the refused one included. */
    gate_open(&b.g);
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&b.n), CAP);
    assert_int_equal(atomic_load(&other.n), CAP + 1);
    /* Room again. */
    ms_assert_ok(ms_bus_publish(bus, "flow.x", "again", 5));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&b.n), CAP + 1);
    ms_bus_destroy(bus);
    gate_destroy(&b.g);
}

static void test_overflow_queue_group_names_group(void **state)
{
    ms_bus *bus = open_bus("inproc://t-overflow-q", 2, 0, 0, 0);
    blocker b = {0};

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(bus, "flowq", "grp", block_handler, &b, NULL));
    ms_assert_ok(ms_bus_publish(bus, "flowq", "0", 1));
    wait_for(&b.entered, 1, 5000);
    ms_assert_ok(ms_bus_publish(bus, "flowq", "1", 1));
    /* publish_timeout_ms = 0: no wait at all. */
    ms_assert_status(ms_bus_publish(bus, "flowq", "2", 1), MS_ERR_FULL);
    assert_non_null(strstr(ms_last_error(), "grp"));
    gate_open(&b.g);
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&b.n), 2);
    ms_bus_destroy(bus);
    gate_destroy(&b.g);
}

static void test_overflow_bytes_limit(void **state)
{
    ms_bus *bus = open_bus("inproc://t-overflow-bytes", 1000, 100, 0, 0);
    blocker b = {0};
    char data[200] = {0};

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(bus, "bytes", NULL, block_handler, &b, NULL));
    ms_assert_ok(ms_bus_publish(bus, "bytes", data, 1));
    wait_for(&b.entered, 1, 5000);
    /* The parked message counts until its handler returns: 1 + 40 + 40. */
    ms_assert_ok(ms_bus_publish(bus, "bytes", data, 40));
    ms_assert_ok(ms_bus_publish(bus, "bytes", data, 40));
    ms_assert_status(ms_bus_publish(bus, "bytes", data, 40), MS_ERR_FULL);
    assert_non_null(strstr(ms_last_error(), "100 bytes"));
    gate_open(&b.g);
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&b.n), 3);
    /* A lone message larger than the byte limit still goes through. */
    ms_assert_ok(ms_bus_publish(bus, "bytes", data, 200));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&b.n), 4);
    ms_bus_destroy(bus);
    gate_destroy(&b.g);
}

/* --- unsubscribe --------------------------------------------------------- */

typedef struct self_unsub {
    atomic_int calls;
    ms_status status;
} self_unsub;

static void unsub_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    self_unsub *u = c;
    if (atomic_fetch_add(&u->calls, 1) == 0)
        u->status = ms_subscription_unsubscribe(sub); /* returns at once */
}

static void test_unsubscribe_from_handler(void **state)
{
    ms_bus *bus = open_default("inproc://t-unsub-self");
    self_unsub u = {0};
    counter after = {0};

    u.status = MS_ERR_INTERNAL;
    ms_assert_ok(ms_bus_subscribe(bus, "self", NULL, unsub_handler, &u, NULL));
    for (int i = 0; i < 20; i++)
        ms_assert_ok(ms_bus_publish(bus, "self", "x", 1));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&u.calls), 1);
    ms_assert_ok(u.status);
    /* The subject has no subscriber left. */
    ms_message *reply = NULL;
    ms_assert_status(ms_bus_request(bus, "self", "?", 1, 500, &reply), MS_ERR_NO_RESPONDERS);
    /* The bus goes on working. */
    ms_assert_ok(ms_bus_subscribe(bus, "self", NULL, count_handler, &after, NULL));
    ms_assert_ok(ms_bus_publish(bus, "self", "x", 1));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&after.n), 1);
    ms_bus_destroy(bus);
}

typedef struct slow {
    atomic_int entered;
    atomic_int finished;
} slow;

static void slow_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    slow *s = c;
    atomic_fetch_add(&s->entered, 1);
    ms_test_sleep_ms(100);
    atomic_fetch_add(&s->finished, 1);
}

static void test_unsubscribe_waits_for_handler(void **state)
{
    ms_bus *bus = open_default("inproc://t-unsub-wait");
    ms_subscription *sub = NULL;
    slow s = {0};

    ms_assert_ok(ms_bus_subscribe(bus, "slow", NULL, slow_handler, &s, &sub));
    for (int i = 0; i < 5; i++)
        ms_assert_ok(ms_bus_publish(bus, "slow", "x", 1));
    wait_for(&s.entered, 1, 5000);
    ms_assert_ok(ms_subscription_unsubscribe(sub));
    /* The running call finished before unsubscribe returned, and the queued
     * ones were dropped. */
    assert_int_equal(atomic_load(&s.finished), atomic_load(&s.entered));
    ms_test_sleep_ms(150);
    assert_int_equal(atomic_load(&s.entered), 1);
    ms_bus_destroy(bus);
}

/* --- request/reply ------------------------------------------------------- */

typedef struct late_responder {
    atomic_int calls, held_set;
    atomic_int failed;
    ms_message *held; /* the first request, answered late by the test */
} late_responder;

static void late_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    late_responder *r = c;
    if (atomic_fetch_add(&r->calls, 1) == 0) {
        r->held = ms_message_ref((ms_message *)m); /* answer it later */
        atomic_store(&r->held_set, 1);
        return;
    }
    if (ms_bus_respond(bus, m, "fresh", 5) != MS_OK)
        atomic_fetch_add(&r->failed, 1);
}

static void test_request_timeout_and_late_reply(void **state)
{
    ms_bus *bus = open_default("inproc://t-late");
    late_responder r = {0};
    ms_message *reply = NULL;
    int64_t t0;

    ms_assert_ok(ms_bus_subscribe(bus, "svc.late", NULL, late_handler, &r, NULL));
    t0 = ms_test_now_ms();
    ms_assert_status(ms_bus_request(bus, "svc.late", "one", 3, 100, &reply), MS_ERR_TIMEOUT);
    assert_true(ms_test_now_ms() - t0 >= 90);
    assert_null(reply);
    assert_non_null(strstr(ms_last_error(), "svc.late"));
    /* The late reply finds nobody waiting and is dropped. */
    wait_for(&r.held_set, 1, 5000);
    assert_non_null(r.held);
    ms_assert_ok(ms_bus_respond(bus, r.held, "late", 4));
    ms_message_unref(r.held);
    /* The next request gets its own reply, not the late one. */
    ms_assert_ok(ms_bus_request(bus, "svc.late", "two", 3, 5000, &reply));
    assert_int_equal(ms_message_len(reply), 5);
    assert_memory_equal(ms_message_data(reply), "fresh", 5);
    assert_int_equal(atomic_load(&r.failed), 0);
    ms_message_unref(reply);
    ms_bus_destroy(bus);
}

static void test_request_timeout_zero(void **state)
{
    ms_bus *bus = open_default("inproc://t-zero");
    blocker b = {0};
    ms_message *reply = NULL;

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(bus, "svc.zero", NULL, block_handler, &b, NULL));
    ms_assert_status(ms_bus_request(bus, "svc.zero", "x", 1, 0, &reply), MS_ERR_TIMEOUT);
    gate_open(&b.g);
    ms_bus_destroy(bus);
    gate_destroy(&b.g);
}

/* Replies from a worker to a requester that is itself a handler. */
static void echo_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    if (ms_bus_respond(bus, m, ms_message_data(m), ms_message_len(m)) != MS_OK)
        atomic_fetch_add((atomic_int *)c, 1);
}

typedef struct nested {
    atomic_int done;
    ms_status s;
    char got[16];
} nested;

static void nested_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    nested *n = c;
    ms_message *reply = NULL;
    n->s = ms_bus_request(bus, "svc.echo", "inner", 5, 5000, &reply);
    if (reply != NULL) {
        snprintf(n->got, sizeof n->got, "%.*s", (int)ms_message_len(reply),
                 (const char *)ms_message_data(reply));
        ms_message_unref(reply);
    }
    atomic_store(&n->done, 1);
}

static void test_request_from_handler(void **state)
{
    ms_bus *bus = open_bus("inproc://t-nested", 0, 0, -1, 2);
    nested n = {0};
    atomic_int echo_failed = 0;

    ms_assert_ok(ms_bus_subscribe(bus, "svc.echo", NULL, echo_handler, &echo_failed, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "outer", NULL, nested_handler, &n, NULL));
    ms_assert_ok(ms_bus_publish(bus, "outer", "go", 2));
    wait_for(&n.done, 1, 5000);
    ms_assert_ok(n.s);
    assert_string_equal(n.got, "inner");
    assert_int_equal(atomic_load(&echo_failed), 0);
    ms_bus_destroy(bus);
}

/* --- close, flush, drain ------------------------------------------------- */

static void test_close_with_queued_messages(void **state)
{
    ms_bus *bus = open_default("inproc://t-close-queued");
    ms_bus *other = open_default("inproc://t-close-queued");
    blocker b = {0};
    delayed_open d;

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(bus, "queued", NULL, block_handler, &b, NULL));
    ms_assert_ok(ms_bus_publish(other, "queued", "first", 5));
    wait_for(&b.entered, 1, 5000);
    for (int i = 0; i < 50; i++)
        ms_assert_ok(ms_bus_publish(other, "queued", "more", 4));
    /* close waits for the running handler (released in 50 ms) and drops the
     * 50 queued messages; LeakSanitizer checks they are freed. */
    delayed_open_start(&d, &b.g, 50);
    ms_bus_close(bus);
    assert_int_equal(atomic_load(&b.n), 1);
    delayed_open_join(&d);
    /* The other bus's flush does not wait for the discarded messages. */
    ms_assert_ok(ms_bus_flush(other, 5000));
    ms_test_sleep_ms(20);
    assert_int_equal(atomic_load(&b.entered), 1);
    ms_bus_destroy(bus);
    ms_bus_destroy(other);
    gate_destroy(&b.g);
}

static void test_destroy_publisher_with_messages_in_flight(void **state)
{
    ms_bus *pub = open_default("inproc://t-pub-gone");
    ms_bus *sub = open_default("inproc://t-pub-gone");
    blocker b = {0};

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(sub, "gone", NULL, block_handler, &b, NULL));
    for (int i = 0; i < 20; i++)
        ms_assert_ok(ms_bus_publish(pub, "gone", "payload", 7));
    wait_for(&b.entered, 1, 5000);
    /* The publisher goes away while its messages wait in sub's queue. */
    ms_bus_destroy(pub);
    gate_open(&b.g);
    ms_assert_ok(ms_bus_flush(sub, 5000));
    wait_for(&b.n, 20, 5000);
    ms_bus_destroy(sub);
    gate_destroy(&b.g);
}

static void test_flush_waits_and_times_out(void **state)
{
    ms_bus *bus = open_default("inproc://t-flush");
    ms_subscription *s1 = NULL;
    slow s = {0};
    blocker b = {0};

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(bus, "flush.slow", NULL, slow_handler, &s, &s1));
    for (int i = 0; i < 3; i++)
        ms_assert_ok(ms_bus_publish(bus, "flush.slow", "x", 1));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&s.finished), 3);
    ms_assert_ok(ms_subscription_unsubscribe(s1));

    ms_assert_ok(ms_bus_subscribe(bus, "flush.blocked", NULL, block_handler, &b, NULL));
    ms_assert_ok(ms_bus_publish(bus, "flush.blocked", "x", 1));
    ms_assert_status(ms_bus_flush(bus, 50), MS_ERR_TIMEOUT);
    assert_non_null(strstr(ms_last_error(), "50 ms"));
    gate_open(&b.g);
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&b.n), 1);
    ms_bus_destroy(bus);
    gate_destroy(&b.g);
}

static void test_drain_timeout_closes_anyway(void **state)
{
    ms_bus *bus = open_default("inproc://t-drain");
    blocker b = {0};
    delayed_open d;

    gate_init(&b.g);
    ms_assert_ok(ms_bus_subscribe(bus, "drain", NULL, block_handler, &b, NULL));
    for (int i = 0; i < 3; i++)
        ms_assert_ok(ms_bus_publish(bus, "drain", "x", 1));
    wait_for(&b.entered, 1, 5000);
    delayed_open_start(&d, &b.g, 200);
    ms_assert_status(ms_bus_drain(bus, 50), MS_ERR_TIMEOUT);
    assert_non_null(strstr(ms_last_error(), "closed anyway"));
    assert_false(ms_bus_is_connected(bus));
    /* Closing waited for the running handler; the rest were dropped. */
    assert_int_equal(atomic_load(&b.n), 1);
    delayed_open_join(&d);
    ms_bus_destroy(bus);
    gate_destroy(&b.g);
}

/* --- handlers and the worker pool ---------------------------------------- */

typedef struct rendezvous {
    atomic_int a, b, ok;
} rendezvous;

static bool wait_flag(atomic_int *f, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;
    while (!atomic_load(f)) {
        if (ms_test_now_ms() > deadline)
            return false;
        ms_test_sleep_ms(1);
    }
    return true;
}

static void meet_a(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    rendezvous *r = c;
    atomic_store(&r->a, 1);
    if (wait_flag(&r->b, 5000))
        atomic_fetch_add(&r->ok, 1);
}

static void meet_b(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    rendezvous *r = c;
    atomic_store(&r->b, 1);
    if (wait_flag(&r->a, 5000))
        atomic_fetch_add(&r->ok, 1);
}

static void test_handlers_run_in_parallel(void **state)
{
    ms_bus *bus = open_bus("inproc://t-parallel", 0, 0, -1, 2);
    rendezvous r = {0};

    ms_assert_ok(ms_bus_subscribe(bus, "meet.a", NULL, meet_a, &r, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "meet.b", NULL, meet_b, &r, NULL));
    ms_assert_ok(ms_bus_publish(bus, "meet.a", "x", 1));
    ms_assert_ok(ms_bus_publish(bus, "meet.b", "x", 1));
    ms_assert_ok(ms_bus_flush(bus, 10000));
    assert_int_equal(atomic_load(&r.ok), 2);
    ms_bus_destroy(bus);
}

/* One handler never runs concurrently with itself. */
typedef struct exclusive {
    atomic_int inside, overlap, n;
} exclusive;

static void exclusive_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    exclusive *x = c;
    if (atomic_fetch_add(&x->inside, 1) != 0)
        atomic_fetch_add(&x->overlap, 1);
    for (volatile int i = 0; i < 1000; i++) {
    }
    atomic_fetch_sub(&x->inside, 1);
    atomic_fetch_add(&x->n, 1);
}

typedef struct pub_thread {
    ms_bus *bus;
    int count;
    pthread_t th;
} pub_thread;

static void *pub_main(void *arg)
{
    pub_thread *p = arg;
    for (int i = 0; i < p->count; i++)
        if (ms_bus_publish(p->bus, "excl", "x", 1) != MS_OK)
            break;
    return NULL;
}

static void test_one_subscription_never_concurrent(void **state)
{
    ms_bus *bus = open_bus("inproc://t-exclusive", 0, 0, -1, 3);
    exclusive x = {0};
    pub_thread p[3];

    ms_assert_ok(ms_bus_subscribe(bus, "excl", NULL, exclusive_handler, &x, NULL));
    for (int i = 0; i < 3; i++) {
        p[i].bus = bus;
        p[i].count = 2000;
        assert_int_equal(pthread_create(&p[i].th, NULL, pub_main, &p[i]), 0);
    }
    for (int i = 0; i < 3; i++)
        pthread_join(p[i].th, NULL);
    ms_assert_ok(ms_bus_flush(bus, 10000));
    assert_int_equal(atomic_load(&x.n), 6000);
    assert_int_equal(atomic_load(&x.overlap), 0);
    ms_bus_destroy(bus);
}

enum { MEMBERS = 1000, GROUP_MSGS = 5000 };

static void test_thousand_queue_members(void **state)
{
    ms_bus *bus = open_default("inproc://t-thousand");
    ms_bus *pub = open_default("inproc://t-thousand");
    counter *m = calloc(MEMBERS, sizeof *m);
    counter all = {0};
    int total = 0, min = GROUP_MSGS, max = 0;

    assert_non_null(m);
    for (int i = 0; i < MEMBERS; i++)
        ms_assert_ok(ms_bus_subscribe(bus, "work.item", "workers", count_handler, &m[i], NULL));
    /* A plain subscription on the same subject sees every message. */
    ms_assert_ok(ms_bus_subscribe(bus, "work.*", NULL, count_handler, &all, NULL));
    for (int i = 0; i < GROUP_MSGS; i++)
        ms_assert_ok(ms_bus_publish(pub, "work.item", "job", 3));
    ms_assert_ok(ms_bus_flush(pub, 20000));
    for (int i = 0; i < MEMBERS; i++) {
        int n = atomic_load(&m[i].n);
        total += n;
        min = n < min ? n : min;
        max = n > max ? n : max;
    }
    assert_int_equal(total, GROUP_MSGS); /* each message exactly once */
    assert_int_equal(atomic_load(&all.n), GROUP_MSGS);
    /* Spread evenly: 5 each, give or take. */
    assert_true(min >= GROUP_MSGS / MEMBERS - 2);
    assert_true(max <= GROUP_MSGS / MEMBERS + 2);
    ms_bus_destroy(pub);
    ms_bus_destroy(bus);
    free(m);
}

typedef struct chain {
    atomic_int pings, pongs;
    atomic_int flush_ok, failed;
} chain;

/* Publishes to another subject and to its own, and flushes, from inside. */
static void ping_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    chain *ch = c;
    int n = atomic_fetch_add(&ch->pings, 1) + 1;
    if (ms_bus_publish(bus, "chain.pong", "pong", 4) != MS_OK)
        atomic_fetch_add(&ch->failed, 1);
    if (n < 10 && ms_bus_publish(bus, "chain.ping", "ping", 4) != MS_OK)
        atomic_fetch_add(&ch->failed, 1);
    if (ms_bus_flush(bus, 5000) == MS_OK) /* must not wait on itself */
        atomic_fetch_add(&ch->flush_ok, 1);
}

static void pong_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    atomic_fetch_add(&((chain *)c)->pongs, 1);
}

static void test_publish_from_handler(void **state)
{
    ms_bus *bus = open_bus("inproc://t-chain", 0, 0, -1, 1);
    chain ch = {0};

    ms_assert_ok(ms_bus_subscribe(bus, "chain.ping", NULL, ping_handler, &ch, NULL));
    ms_assert_ok(ms_bus_subscribe(bus, "chain.pong", NULL, pong_handler, &ch, NULL));
    ms_assert_ok(ms_bus_publish(bus, "chain.ping", "ping", 4));
    wait_for(&ch.pongs, 10, 5000);
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&ch.pings), 10);
    assert_int_equal(atomic_load(&ch.pongs), 10);
    assert_int_equal(atomic_load(&ch.flush_ok), 10);
    assert_int_equal(atomic_load(&ch.failed), 0);
    ms_bus_destroy(bus);
}

/* A handler publishing into its own full queue fails at once. */
typedef struct self_full {
    atomic_int calls;
    ms_status first, second;
} self_full;

static void self_full_handler(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    self_full *f = c;
    if (atomic_fetch_add(&f->calls, 1) == 0) {
        f->first = ms_bus_publish(bus, "selfq", "a", 1);
        f->second = ms_bus_publish(bus, "selfq", "b", 1);
    }
}

static void test_handler_own_queue_full(void **state)
{
    ms_bus *bus = open_bus("inproc://t-selffull", 2, 0, 5000, 0);
    self_full f = {0};
    int64_t t0 = ms_test_now_ms();

    ms_assert_ok(ms_bus_subscribe(bus, "selfq", NULL, self_full_handler, &f, NULL));
    ms_assert_ok(ms_bus_publish(bus, "selfq", "x", 1));
    ms_assert_ok(ms_bus_flush(bus, 5000));
    ms_assert_ok(f.first);
    ms_assert_status(f.second, MS_ERR_FULL);
    assert_true(ms_test_now_ms() - t0 < 4000); /* did not wait publish_timeout_ms */
    assert_int_equal(atomic_load(&f.calls), 2);
    ms_bus_destroy(bus);
}

/* --- allocation failures ------------------------------------------------- */

static void test_alloc_failures(void **state)
{
    ms_bus *bus = open_default("inproc://t-alloc");
    counter c = {0};
    ms_status s;
    int n;

    /* subscribe: fail each allocation in turn until it succeeds. */
    for (n = 0; n < 100; n++) {
        ms__alloc_fail_after(n);
        s = ms_bus_subscribe(bus, "alloc.x", NULL, count_handler, &c, NULL);
        ms__alloc_fail_after(-1);
        if (s == MS_OK)
            break;
        ms_assert_status(s, MS_ERR_NO_MEMORY);
        assert_true(ms_last_error()[0] != '\0');
    }
    assert_true(n < 100);
    /* publish: the same; a failed publish delivers nothing. */
    for (n = 0; n < 100; n++) {
        ms__alloc_fail_after(n);
        s = ms_bus_publish(bus, "alloc.x", "x", 1);
        ms__alloc_fail_after(-1);
        if (s == MS_OK)
            break;
        ms_assert_status(s, MS_ERR_NO_MEMORY);
    }
    assert_true(n < 100);
    ms_assert_ok(ms_bus_flush(bus, 5000));
    assert_int_equal(atomic_load(&c.n), 1);
    ms_bus_destroy(bus);

    /* connect: the same. */
    for (n = 0; n < 100; n++) {
        ms__alloc_fail_after(n);
        s = ms_bus_connect_url("inproc://t-alloc-connect", &bus);
        ms__alloc_fail_after(-1);
        if (s == MS_OK)
            break;
        ms_assert_status(s, MS_ERR_NO_MEMORY);
        assert_null(bus);
    }
    assert_true(n < 100);
    ms_bus_destroy(bus);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_same_name_shares_subjects),
    cmocka_unit_test(test_repeated_subject_sees_every_change),
    cmocka_unit_test(test_reused_blocks_spare_held_messages),
    cmocka_unit_test(test_different_names_isolated),
    cmocka_unit_test(test_bad_urls),
    cmocka_unit_test(test_limits_and_state),
    cmocka_unit_test(test_overflow_blocks_then_full),
    cmocka_unit_test(test_overflow_queue_group_names_group),
    cmocka_unit_test(test_overflow_bytes_limit),
    cmocka_unit_test(test_unsubscribe_from_handler),
    cmocka_unit_test(test_unsubscribe_waits_for_handler),
    cmocka_unit_test(test_request_timeout_and_late_reply),
    cmocka_unit_test(test_request_timeout_zero),
    cmocka_unit_test(test_request_from_handler),
    cmocka_unit_test(test_close_with_queued_messages),
    cmocka_unit_test(test_destroy_publisher_with_messages_in_flight),
    cmocka_unit_test(test_flush_waits_and_times_out),
    cmocka_unit_test(test_drain_timeout_closes_anyway),
    cmocka_unit_test(test_handlers_run_in_parallel),
    cmocka_unit_test(test_one_subscription_never_concurrent),
    cmocka_unit_test(test_thousand_queue_members),
    cmocka_unit_test(test_publish_from_handler),
    cmocka_unit_test(test_handler_own_queue_full),
    cmocka_unit_test(test_alloc_failures),
};

MS_TEST_MAIN(tests, NULL, NULL)
