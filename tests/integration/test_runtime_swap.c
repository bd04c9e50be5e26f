/*
 * test_runtime_swap.c - ms_runtime_swap on a real nats-server and inproc: a
 * steady stream of requests (answered on the client's own inbox, so a
 * second answer would be seen) and events (acknowledged by the component
 * on swapver.seen.<version>) flows while the host swaps swapver 1.0.0 <->
 * 2.0.0 twenty times; every request id must be answered exactly once, every
 * event seen exactly once, each by one of the two versions. Also: a
 * candidate whose initialize fails, a .so that is not a component, an ABI
 * mismatch, another component, a missing file, the active version again,
 * no instance to swap.
 */
#include "test_runtime_common.h"

#define MAX_IDS 400000
#define REQ_THREADS 3
#define WINDOW 32 /* requests in flight per requester thread */
#define SWAPS 20

typedef struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *replies; /* per request id: answers received */
    uint8_t *events;  /* per event id: acknowledgements seen */
    int reply_by_version[2];
    int event_by_version[2];
    int strange; /* answers that name no known version or id */
    atomic_int next_req, next_event;
    atomic_bool stop;
    int outstanding[REQ_THREADS];
    ms_bus *client;
    char inbox[REQ_THREADS][128];
} tally;

static int version_index(const char *v, size_t n)
{
    if (n == 5 && memcmp(v, "1.0.0", 5) == 0)
        return 0;
    if (n == 5 && memcmp(v, "2.0.0", 5) == 0)
        return 1;
    return -1;
}

typedef struct inbox_ctx {
    tally *t;
    int thread;
} inbox_ctx;

/* "<version>:r<id>" on a requester's inbox */
static void on_reply(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    inbox_ctx *ic = closure;
    tally *t = ic->t;
    const char *d = ms_message_data(m);
    size_t n = ms_message_len(m);
    const char *colon = memchr(d, ':', n);
    (void)bus;
    (void)sub;
    pthread_mutex_lock(&t->mu);
    if (colon == NULL || colon + 2 > d + n || colon[1] != 'r') {
        t->strange++;
    } else {
        int vi = version_index(d, (size_t)(colon - d));
        int id = atoi(colon + 2);
        if (vi < 0 || id < 0 || id >= MAX_IDS) {
            t->strange++;
        } else {
            t->replies[id]++;
            t->reply_by_version[vi]++;
        }
    }
    t->outstanding[ic->thread]--;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* swapver.seen.<version> with payload "e<id>" */
static void on_seen(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    tally *t = closure;
    const char *subj = ms_message_subject(m);
    const char *v = subj + strlen("swapver.seen.");
    const char *d = ms_message_data(m);
    int vi = version_index(v, strlen(v));
    int id = ms_message_len(m) > 1 && d[0] == 'e' ? atoi(d + 1) : -1;
    (void)bus;
    (void)sub;
    pthread_mutex_lock(&t->mu);
    if (vi < 0 || id < 0 || id >= MAX_IDS) {
        t->strange++;
    } else {
        t->events[id]++;
        t->event_by_version[vi]++;
    }
    pthread_mutex_unlock(&t->mu);
}

typedef struct req_arg {
    tally *t;
    int thread;
} req_arg;

static void *requester(void *arg)
{
    req_arg *ra = arg;
    tally *t = ra->t;
    char payload[32];
    while (!atomic_load(&t->stop)) {
        int id;
        pthread_mutex_lock(&t->mu);
        while (t->outstanding[ra->thread] >= WINDOW && !atomic_load(&t->stop))
            pthread_cond_wait(&t->cv, &t->mu);
        t->outstanding[ra->thread]++;
        pthread_mutex_unlock(&t->mu);
        if (atomic_load(&t->stop)) {
            pthread_mutex_lock(&t->mu);
            t->outstanding[ra->thread]--;
            pthread_mutex_unlock(&t->mu);
            break;
        }
        id = atomic_fetch_add(&t->next_req, 1);
        if (id >= MAX_IDS)
            break;
        snprintf(payload, sizeof payload, "r%d", id);
        ms_assert_ok(ms_bus_publish_reply(t->client, "component.swapver.echo", t->inbox[ra->thread],
                                          payload, strlen(payload)));
    }
    return NULL;
}

static void *eventer(void *arg)
{
    tally *t = arg;
    char payload[32];
    while (!atomic_load(&t->stop)) {
        int id = atomic_fetch_add(&t->next_event, 1);
        if (id >= MAX_IDS)
            break;
        snprintf(payload, sizeof payload, "e%d", id);
        ms_assert_ok(
            ms_bus_publish(t->client, "component.swapver.event", payload, strlen(payload)));
        if (id % 8 == 0)
            ms_test_sleep_ms(1);
    }
    return NULL;
}

static void swap_under_traffic(void **state, int instances)
{
    fixture *f = *state;
    ms_runtime_options o;
    tally *t = calloc(1, sizeof *t);
    inbox_ctx ics[REQ_THREADS];
    req_arg ras[REQ_THREADS];
    ms_subscription *subs[REQ_THREADS + 1];
    pthread_t req_threads[REQ_THREADS], ev_thread;
    uint64_t drained = 0;
    int64_t max_switch_us = 0;
    int nreq, nev, lost = 0, twice = 0;

    assert_non_null(t);
    t->replies = calloc(MAX_IDS, 1);
    t->events = calloc(MAX_IDS, 1);
    assert_non_null(t->replies);
    assert_non_null(t->events);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->client = f->client;

    test_opts(f, &o);
    start_rt(f, &o);
    for (int i = 0; i < instances; i++)
        ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));

    for (int i = 0; i < REQ_THREADS; i++) {
        ics[i].t = t;
        ics[i].thread = i;
        snprintf(t->inbox[i], sizeof t->inbox[i], "swaptest.inbox.%d", i);
        ms_assert_ok(ms_bus_subscribe(f->client, t->inbox[i], NULL, on_reply, &ics[i], &subs[i]));
    }
    ms_assert_ok(
        ms_bus_subscribe(f->client, "swapver.seen.>", NULL, on_seen, t, &subs[REQ_THREADS]));
    ms_assert_ok(ms_bus_flush(f->client, 5000));

    for (int i = 0; i < REQ_THREADS; i++) {
        ras[i].t = t;
        ras[i].thread = i;
        assert_int_equal(pthread_create(&req_threads[i], NULL, requester, &ras[i]), 0);
    }
    assert_int_equal(pthread_create(&ev_thread, NULL, eventer, t), 0);

    for (int k = 0; k < SWAPS; k++) {
        ms_swap_report rep;
        const char *to = k % 2 == 0 ? PLUGIN_DIR "/swapver_b.so" : PLUGIN_DIR "/swapver_a.so";
        ms_test_sleep_ms(20); /* traffic on the active version between swaps */
        ms_assert_ok(ms_runtime_swap(f->rt, "swapver", to, NULL, 5000, &rep));
        assert_string_equal(rep.error, "");
        assert_string_equal(rep.old_version, k % 2 == 0 ? "1.0.0" : "2.0.0");
        assert_string_equal(rep.new_version, k % 2 == 0 ? "2.0.0" : "1.0.0");
        assert_int_equal(rep.instances, (size_t)instances);
        /* echo and event handed over; 2.0.0 adds the "new" topic, 1.0.0 drops it */
        assert_int_equal(rep.routes_moved, (size_t)(2 * instances));
        assert_int_equal(rep.topics_added, (size_t)(k % 2 == 0 ? instances : 0));
        assert_int_equal(rep.topics_removed, (size_t)(k % 2 == 0 ? 0 : instances));
        assert_true(rep.old_unloaded);
        drained += rep.drained;
        if (rep.switch_us > max_switch_us)
            max_switch_us = rep.switch_us;
    }

    atomic_store(&t->stop, true);
    pthread_mutex_lock(&t->mu);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < REQ_THREADS; i++)
        pthread_join(req_threads[i], NULL);
    pthread_join(ev_thread, NULL);
    nreq = atomic_load(&t->next_req);
    nev = atomic_load(&t->next_event);
    if (nreq > MAX_IDS)
        nreq = MAX_IDS;
    if (nev > MAX_IDS)
        nev = MAX_IDS;

    /* every answer arrives (or the test fails on what is missing) */
    for (int waited = 0; waited < 10000; waited += 10) {
        int missing = 0;
        pthread_mutex_lock(&t->mu);
        for (int i = 0; i < nreq; i++)
            missing += t->replies[i] == 0;
        for (int i = 0; i < nev; i++)
            missing += t->events[i] == 0;
        pthread_mutex_unlock(&t->mu);
        if (missing == 0)
            break;
        ms_test_sleep_ms(10);
    }
    ms_test_sleep_ms(100); /* a second answer would come now */
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < nreq; i++) {
        lost += t->replies[i] == 0;
        twice += t->replies[i] > 1;
    }
    for (int i = 0; i < nev; i++) {
        lost += t->events[i] == 0;
        twice += t->events[i] > 1;
    }
    fprintf(stderr,
            "swap x%d, %d instance(s): %d requests (1.0.0: %d, 2.0.0: %d), %d events (1.0.0: %d, "
            "2.0.0: %d), drained by the old version after a switch: %llu, slowest switch %lld "
            "us; lost %d, twice %d, strange %d\n",
            SWAPS, instances, nreq, t->reply_by_version[0], t->reply_by_version[1], nev,
            t->event_by_version[0], t->event_by_version[1], (unsigned long long)drained,
            (long long)max_switch_us, lost, twice, t->strange);
    assert_int_equal(lost, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(t->strange, 0);
    assert_true(nreq > SWAPS);
    assert_true(nev > SWAPS);
    /* both versions served */
    assert_true(t->reply_by_version[0] > 0 && t->reply_by_version[1] > 0);
    assert_true(t->event_by_version[0] > 0 && t->event_by_version[1] > 0);
    assert_int_equal(t->reply_by_version[0] + t->reply_by_version[1], nreq);
    pthread_mutex_unlock(&t->mu);

    /* after an even number of swaps 1.0.0 serves, and only it */
    ms_message *r = request_str(f, "component.swapver.echo", "after");
    assert_payload(r, "1.0.0:after");
    ms_message_unref(r);
    {
        ms_instance **list = NULL;
        size_t n = 0;
        ms_assert_ok(ms_runtime_instances(f->rt, &list, &n));
        assert_int_equal(n, (size_t)instances);
        for (size_t i = 0; i < n; i++)
            assert_string_equal(ms_instance_ops(list[i])->metadata.version, "1.0.0");
        free(list);
    }

    for (int i = 0; i <= REQ_THREADS; i++)
        ms_assert_ok(ms_subscription_unsubscribe(subs[i]));
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->replies);
    free(t->events);
    free(t);
}

static void nats_swap_20_times_under_traffic(void **state)
{
    swap_under_traffic(state, 1);
}

static void inproc_swap_20_times_under_traffic(void **state)
{
    swap_under_traffic(state, 1);
}

static void nats_swap_two_instances_under_traffic(void **state)
{
    swap_under_traffic(state, 2);
}

static void inproc_swap_two_instances_under_traffic(void **state)
{
    swap_under_traffic(state, 2);
}

/* The active version answers, and only it runs. */
static void assert_serving(fixture *f, const char *version)
{
    char want[64];
    ms_instance **list = NULL;
    size_t n = 0;
    ms_message *r = request_str(f, "component.swapver.echo", "x");
    snprintf(want, sizeof want, "%s:x", version);
    assert_payload(r, want);
    ms_message_unref(r);
    ms_assert_ok(ms_runtime_instances(f->rt, &list, &n));
    assert_int_equal(n, 1);
    assert_string_equal(ms_instance_ops(list[0])->metadata.version, version);
    assert_int_equal(ms_instance_get_state(list[0]), MS_INSTANCE_RUNNING);
    free(list);
}

static void candidate_initialize_fails_active_keeps_serving(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_swap_report rep;
    collector *esc;
    test_opts(f, &o);
    start_rt(f, &o);
    esc = collect(f, "mainstack.escalation.>");
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));
    ms_assert_status(
        ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_initfail.so", NULL, 1000, &rep),
        MS_ERR_IO);
    assert_contains(ms_last_error(), "candidate swapver 3.0.0");
    assert_contains(ms_last_error(),
                    "initialize failed (io): swapver 3.0.0: cannot open its store");
    assert_contains(ms_last_error(), "the active version 1.0.0 keeps serving");
    assert_contains(rep.error, "cannot open its store");
    assert_string_equal(rep.old_version, "1.0.0");
    assert_string_equal(rep.new_version, "3.0.0");
    assert_serving(f, "1.0.0");
    /* the failed candidate is not supervised: no restart, no escalation */
    ms_test_sleep_ms(100);
    assert_int_equal(collected_wait(esc, 1, 10), 0);
    collect_free(esc);
    /* and a good candidate still swaps in afterwards */
    ms_assert_ok(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, 1000, &rep));
    assert_serving(f, "2.0.0");
}

/* The migrate hook: each candidate instance gets the version it replaces
 * before its first message (promotion and rollback alike); one that refuses
 * fails the swap like a failed initialize, the active version serving on. */
static void candidate_migrate_hook(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_swap_report rep;
    ms_message *r;

    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));
    ms_assert_ok(
        ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_migrate.so", NULL, 1000, &rep));
    r = request_str(f, "component.swapver.echo", "x");
    assert_payload(r, "2.1.0(from 1.0.0):x");
    ms_message_unref(r);
    /* refused: named with the version, the active one keeps serving */
    ms_assert_status(
        ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_migratefail.so", NULL, 1000, &rep),
        MS_ERR_UNSUPPORTED);
    assert_contains(ms_last_error(), "migrate from 2.1.0 failed (unsupported)");
    assert_contains(ms_last_error(), "cannot take over from 2.1.0");
    assert_contains(ms_last_error(), "the active version 2.1.0 keeps serving");
    r = request_str(f, "component.swapver.echo", "y");
    assert_payload(r, "2.1.0(from 1.0.0):y");
    ms_message_unref(r);
    /* a version without the hook swaps in as before (no flag: never read) */
    ms_assert_ok(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, 1000, &rep));
    assert_serving(f, "2.0.0");
    /* and back: the hook is called with the newer version */
    ms_assert_ok(
        ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_migrate.so", NULL, 1000, &rep));
    r = request_str(f, "component.swapver.echo", "z");
    assert_payload(r, "2.1.0(from 2.0.0):z");
    ms_message_unref(r);
}

static void bad_candidates_change_nothing(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_swap_report rep;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));

    /* a .so that is not a mainstack component */
    ms_assert_status(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/nosymbol.so", NULL, 1000, &rep),
                     MS_ERR_NOT_FOUND);
    assert_contains(rep.error, PLUGIN_DIR "/nosymbol.so");
    assert_contains(rep.error, "not a mainstack component");
    assert_serving(f, "1.0.0");
    /* built for another ABI */
    ms_assert_status(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/badabi.so", NULL, 1000, &rep),
                     MS_ERR_UNSUPPORTED);
    assert_contains(ms_last_error(), "badabi.so");
    assert_contains(ms_last_error(), "ABI");
    assert_serving(f, "1.0.0");
    /* a file that is not there */
    ms_assert_status(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/nothere.so", NULL, 1000, &rep),
                     MS_ERR_IO);
    assert_contains(ms_last_error(), "nothere.so");
    /* another component */
    ms_assert_status(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/echo.so", NULL, 1000, &rep),
                     MS_ERR_INVALID_ARG);
    assert_contains(ms_last_error(), "is component 'echo', not 'swapver'");
    assert_serving(f, "1.0.0");
    /* the active version again */
    ms_assert_status(
        ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_a.so", NULL, 1000, &rep),
        MS_ERR_STATE);
    assert_contains(ms_last_error(), "1.0.0 is already the active version");
    assert_serving(f, "1.0.0");
    /* nothing of that component runs here */
    ms_assert_status(ms_runtime_swap(f->rt, "echo", PLUGIN_DIR "/echo.so", NULL, 1000, &rep),
                     MS_ERR_NOT_FOUND);
    assert_contains(ms_last_error(), "no instance of echo runs on this host");
    /* arguments */
    ms_assert_status(ms_runtime_swap(f->rt, "swapver", NULL, NULL, 1000, &rep), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_swap(NULL, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, 1000, NULL),
                     MS_ERR_INVALID_ARG);
    assert_serving(f, "1.0.0");
}

/* Linked-in ops as the candidate, and a restart of the new version keeps
 * the handed-over subscriptions working (a fresh subscribe). */
static ms_status linked_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    return tc_reply_str(in, "linked:x", reply);
}

static const ms_topic linked_topics[] = {{"component.swapver.echo", 0}, {NULL, 0}};
static const ms_component_ops linked_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"swapver", "9.0.0", "linked-in swapver"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = linked_topics,
    .handle_message = linked_handle,
};

static void linked_in_candidate(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_swap_report rep;
    ms_message *r;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));
    ms_assert_ok(ms_runtime_swap(f->rt, "swapver", NULL, &linked_ops, 1000, &rep));
    assert_int_equal(rep.routes_moved, 1);
    assert_int_equal(rep.topics_removed, 1); /* the event topic */
    assert_true(rep.old_unloaded);
    r = request_str(f, "component.swapver.echo", "x");
    assert_payload(r, "linked:x");
    ms_message_unref(r);
    /* and back to a plugin */
    ms_assert_ok(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, 1000, &rep));
    assert_false(rep.old_unloaded); /* linked-in ops are never unloaded */
    assert_int_equal(rep.topics_added, 2);
    assert_serving(f, "2.0.0");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nats_swap_20_times_under_traffic, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_swap_20_times_under_traffic, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_swap_two_instances_under_traffic, setup_nats,
                                        teardown),
        cmocka_unit_test_setup_teardown(inproc_swap_two_instances_under_traffic, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(candidate_initialize_fails_active_keeps_serving, setup_nats,
                                        teardown),
        cmocka_unit_test_setup_teardown(bad_candidates_change_nothing, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(candidate_migrate_hook, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(linked_in_candidate, setup_inproc, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
