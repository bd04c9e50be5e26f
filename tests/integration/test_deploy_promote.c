/*
 * test_deploy_promote.c - ms_deploy_promote / ms_deploy_rollback across
 * three ms_runtime hosts in this process, each with its own bus, on one
 * real nats-server and on inproc, hosting the swapver test plugin. While
 * requesters keep a steady stream of requests in flight (each answered on
 * the requester's own inbox, counted by request id, so a lost or a second
 * answer is seen), 1.0.0 is promoted to 2.0.0 and rolled back ten times.
 * Then the all-or-nothing cases: a host that cannot load the candidate (its
 * own artifact copy is broken), a candidate whose initialize fails
 * everywhere, a host that does not answer deploy commands: the promotion is
 * aborted on every host, each still serves 1.0.0, and the report names the
 * host and the reason. Also: the two-phase runtime API, the host's answers
 * to bad deploy requests, a prepare that expires, bad arguments; the
 * switch going host by host (on_step sees each host switched while the
 * others still serve the old version) and ms_deploy_abort of a prepare.
 */
#include <sys/stat.h>

#include "mainstack/deploy.h"
#include "test_runtime_common.h"

#define NHOSTS 3
#define MAX_IDS 2000000
#define REQ_THREADS 2
#define WINDOW 24
#define CYCLES 10
#define ART_A ".mainstack/artifacts/swapver/1.0.0/swapver.so"
#define ART_B ".mainstack/artifacts/swapver/2.0.0/swapver.so"
#define ART_FAIL ".mainstack/artifacts/swapver/3.0.0/swapver.so"

typedef struct cluster {
    fixture *f;
    ms_runtime *rt[NHOSTS];
    char root[NHOSTS][300]; /* each host's artifact root */
} cluster;

static void copy_file(const char *from, const char *to)
{
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && cp '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* Host i gets its own copy of the artifacts under <dir>/host<i>. */
static void make_root(fixture *f, cluster *c, int i)
{
    char to[600];
    snprintf(c->root[i], sizeof c->root[i], "%s/host%d", f->dir, i);
    snprintf(to, sizeof to, "%s/%s", c->root[i], ART_A);
    copy_file(PLUGIN_DIR "/swapver_a.so", to);
    snprintf(to, sizeof to, "%s/%s", c->root[i], ART_B);
    copy_file(PLUGIN_DIR "/swapver_b.so", to);
    snprintf(to, sizeof to, "%s/%s", c->root[i], ART_FAIL);
    copy_file(PLUGIN_DIR "/swapver_initfail.so", to);
}

/* NHOSTS runtimes with one swapver 1.0.0 each; silent: host index that
 * does not answer deploy commands (-1: none). */
static void start_cluster(void **state, cluster *c, int silent)
{
    fixture *f = *state;
    memset(c, 0, sizeof *c);
    c->f = f;
    for (int i = 0; i < NHOSTS; i++) {
        ms_runtime_options o;
        char name[32], path[600];
        make_root(f, c, i);
        test_opts(f, &o);
        o.workers = 2;
        snprintf(name, sizeof name, "host%d", i);
        o.host_name = name;
        o.artifact_root = c->root[i];
        o.deploy_commands = i != silent;
        ms_assert_ok(ms_runtime_create(&o, &c->rt[i]));
        snprintf(path, sizeof path, "%s/%s", c->root[i], ART_A);
        ms_assert_ok(ms_runtime_load(c->rt[i], path, NULL, NULL));
    }
    ms_assert_ok(ms_bus_flush(f->client, 5000));
}

static void stop_cluster(cluster *c)
{
    for (int i = 0; i < NHOSTS; i++)
        ms_runtime_destroy(c->rt[i]);
}

static void assert_all_on(cluster *c, const char *version)
{
    for (int i = 0; i < NHOSTS; i++) {
        ms_instance **list = NULL;
        size_t n = 0;
        ms_assert_ok(ms_runtime_instances(c->rt[i], &list, &n));
        if (n != 1)
            fail_msg("host%d runs %zu instances, want 1", i, n);
        if (strcmp(ms_instance_ops(list[0])->metadata.version, version) != 0)
            fail_msg("host%d runs swapver %s, want %s", i,
                     ms_instance_ops(list[0])->metadata.version, version);
        free(list);
    }
}

static void fast_opts(ms_promote_options *po)
{
    ms_promote_options_init(po);
    po->discover_ms = 200;
    po->prepare_timeout_ms = 5000;
    po->switch_timeout_ms = 10000;
    po->drain_timeout_ms = 5000;
}

/* --- traffic ---------------------------------------------------------------- */

typedef struct tally {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *replies;
    int by_version[2];
    int strange;
    atomic_int next;
    atomic_bool stop;
    int outstanding[REQ_THREADS];
    ms_bus *client;
    char inbox[REQ_THREADS][64];
    ms_subscription *subs[REQ_THREADS];
    pthread_t threads[REQ_THREADS];
} tally;

typedef struct inbox_ctx {
    tally *t;
    int thread;
} inbox_ctx;

static void on_reply(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    inbox_ctx *ic = closure;
    tally *t = ic->t;
    const char *d = ms_message_data(m);
    size_t n = ms_message_len(m);
    int id;
    (void)bus;
    (void)sub;
    pthread_mutex_lock(&t->mu);
    if (n > 7 && memcmp(d, "1.0.0:r", 7) == 0 && (id = atoi(d + 7)) >= 0 && id < MAX_IDS) {
        t->replies[id]++;
        t->by_version[0]++;
    } else if (n > 7 && memcmp(d, "2.0.0:r", 7) == 0 && (id = atoi(d + 7)) >= 0 && id < MAX_IDS) {
        t->replies[id]++;
        t->by_version[1]++;
    } else {
        t->strange++;
    }
    t->outstanding[ic->thread]--;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

typedef struct req_arg {
    tally *t;
    int thread;
} req_arg;

static req_arg g_args[REQ_THREADS];
static inbox_ctx g_ctx[REQ_THREADS];

static void *requester(void *arg)
{
    req_arg *ra = arg;
    tally *t = ra->t;
    char payload[32];
    for (;;) {
        int id;
        pthread_mutex_lock(&t->mu);
        while (t->outstanding[ra->thread] >= WINDOW && !atomic_load(&t->stop))
            pthread_cond_wait(&t->cv, &t->mu);
        if (atomic_load(&t->stop)) {
            pthread_mutex_unlock(&t->mu);
            break;
        }
        t->outstanding[ra->thread]++;
        pthread_mutex_unlock(&t->mu);
        id = atomic_fetch_add(&t->next, 1);
        if (id >= MAX_IDS)
            break;
        snprintf(payload, sizeof payload, "r%d", id);
        ms_assert_ok(ms_bus_publish_reply(t->client, "component.swapver.echo", t->inbox[ra->thread],
                                          payload, strlen(payload)));
    }
    return NULL;
}

static tally *traffic_start(fixture *f)
{
    tally *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->replies = calloc(MAX_IDS, 1);
    assert_non_null(t->replies);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    t->client = f->client;
    for (int i = 0; i < REQ_THREADS; i++) {
        g_ctx[i].t = t;
        g_ctx[i].thread = i;
        snprintf(t->inbox[i], sizeof t->inbox[i], "promotetest.inbox.%d", i);
        ms_assert_ok(
            ms_bus_subscribe(f->client, t->inbox[i], NULL, on_reply, &g_ctx[i], &t->subs[i]));
    }
    ms_assert_ok(ms_bus_flush(f->client, 5000));
    for (int i = 0; i < REQ_THREADS; i++) {
        g_args[i].t = t;
        g_args[i].thread = i;
        assert_int_equal(pthread_create(&t->threads[i], NULL, requester, &g_args[i]), 0);
    }
    return t;
}

/* Stop, wait for every answer, count: lost and twice must be 0. */
static void traffic_stop_and_check(tally *t, const char *what, bool both_versions)
{
    int n, lost = 0, twice = 0;
    atomic_store(&t->stop, true);
    pthread_mutex_lock(&t->mu);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < REQ_THREADS; i++)
        pthread_join(t->threads[i], NULL);
    n = atomic_load(&t->next);
    if (n > MAX_IDS)
        n = MAX_IDS;
    for (int waited = 0; waited < 10000; waited += 10) {
        int missing = 0;
        pthread_mutex_lock(&t->mu);
        for (int i = 0; i < n; i++)
            missing += t->replies[i] == 0;
        pthread_mutex_unlock(&t->mu);
        if (missing == 0)
            break;
        ms_test_sleep_ms(10);
    }
    ms_test_sleep_ms(100); /* a second answer would arrive now */
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < n; i++) {
        lost += t->replies[i] == 0;
        twice += t->replies[i] > 1;
    }
    fprintf(stderr, "%s: %d requests (1.0.0: %d, 2.0.0: %d), lost %d, twice %d, strange %d\n", what,
            n, t->by_version[0], t->by_version[1], lost, twice, t->strange);
    assert_int_equal(lost, 0);
    assert_int_equal(twice, 0);
    assert_int_equal(t->strange, 0);
    assert_true(n > 0);
    assert_int_equal(t->by_version[0] + t->by_version[1], n);
    if (both_versions)
        assert_true(t->by_version[0] > 0 && t->by_version[1] > 0);
    else
        assert_int_equal(t->by_version[1], 0);
    pthread_mutex_unlock(&t->mu);
    for (int i = 0; i < REQ_THREADS; i++)
        ms_assert_ok(ms_subscription_unsubscribe(t->subs[i]));
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    free(t->replies);
    free(t);
}

/* --- promotion and rollback under traffic ----------------------------------- */

static void check_ok_report(const ms_promote_report *r, const char *from, const char *to)
{
    if (!r->ok)
        fail_msg("promotion %s -> %s failed: %s", from, to, r->error);
    assert_string_equal(r->error, "");
    assert_string_equal(r->from_version, from);
    assert_string_equal(r->to_version, to);
    assert_int_equal(r->instances_found, NHOSTS);
    assert_int_equal(r->nhosts, NHOSTS);
    assert_false(r->rolled_back);
    assert_false(r->mixed);
    for (size_t i = 0; i < r->nhosts; i++) {
        const ms_promote_host *h = &r->hosts[i];
        assert_true(h->switched);
        assert_string_equal(h->error, "");
        assert_string_equal(h->from_version, from);
        assert_string_equal(h->active_version, to);
        assert_int_equal(h->instances, 1);
        assert_int_equal(h->report.routes_moved, 2); /* echo and event */
        assert_true(h->report.old_unloaded);
        assert_int_equal(strncmp(h->name, "host", 4), 0);
    }
}

static void promote_and_rollback_under_traffic(void **state)
{
    fixture *f = *state;
    cluster c;
    ms_promote_options po;
    tally *t;
    int64_t slowest = 0;

    start_cluster(state, &c, -1);
    fast_opts(&po);
    t = traffic_start(f);
    for (int k = 0; k < CYCLES; k++) {
        ms_promote_report r;
        ms_test_sleep_ms(20);
        ms_assert_ok(ms_deploy_promote(f->client, "swapver", "2.0.0", ART_B, &po, &r));
        check_ok_report(&r, "1.0.0", "2.0.0");
        if (r.total_ms > slowest)
            slowest = r.total_ms;
        assert_all_on(&c, "2.0.0");
        ms_test_sleep_ms(20);
        ms_assert_ok(ms_deploy_rollback(f->client, "swapver", "1.0.0", ART_A, &po, &r));
        check_ok_report(&r, "2.0.0", "1.0.0");
        assert_all_on(&c, "1.0.0");
    }
    fprintf(stderr, "slowest promotion (discovery %d ms included): %lld ms\n", po.discover_ms,
            (long long)slowest);
    traffic_stop_and_check(t, "promote/rollback x10 across 3 hosts", true);
    stop_cluster(&c);
}

/* --- all or nothing -------------------------------------------------------- */

static const ms_promote_host *find_host(const ms_promote_report *r, const char *name)
{
    for (size_t i = 0; i < r->nhosts; i++)
        if (strcmp(r->hosts[i].name, name) == 0)
            return &r->hosts[i];
    return NULL;
}

static void one_host_cannot_load(void **state)
{
    fixture *f = *state;
    cluster c;
    ms_promote_options po;
    ms_promote_report r;
    char path[600];
    const ms_promote_host *bad;
    tally *t;

    start_cluster(state, &c, -1);
    /* host1's copy of 2.0.0 is not a shared object */
    snprintf(path, sizeof path, "%s/%s", c.root[1], ART_B);
    {
        FILE *fp = fopen(path, "w");
        assert_non_null(fp);
        fputs("not an ELF file\n", fp);
        fclose(fp);
    }
    fast_opts(&po);
    t = traffic_start(f);
    ms_test_sleep_ms(30);
    assert_int_equal(ms_deploy_promote(f->client, "swapver", "2.0.0", ART_B, &po, &r),
                     MS_ERR_STATE);
    ms_test_sleep_ms(30);
    traffic_stop_and_check(t, "failed promotion (host1 cannot load)", false);
    fprintf(stderr, "report: %s\n", r.error);
    assert_false(r.ok);
    assert_true(r.rolled_back);
    assert_false(r.mixed);
    assert_string_equal(r.failed_host, "host1");
    assert_non_null(strstr(r.error, "host1"));
    assert_non_null(strstr(r.error, "swapver.so"));
    assert_int_equal(r.nhosts, NHOSTS);
    bad = find_host(&r, "host1");
    assert_non_null(bad);
    assert_false(bad->prepared);
    assert_non_null(strstr(bad->error, path));
    for (size_t i = 0; i < r.nhosts; i++) {
        if (&r.hosts[i] == bad)
            continue;
        assert_true(r.hosts[i].aborted);
        assert_false(r.hosts[i].switched);
        assert_string_equal(r.hosts[i].active_version, "1.0.0");
        assert_string_equal(r.hosts[i].error, "");
    }
    assert_all_on(&c, "1.0.0");
    /* the cluster is not stuck: fix the artifact, promote again */
    copy_file(PLUGIN_DIR "/swapver_b.so", path);
    ms_assert_ok(ms_deploy_promote(f->client, "swapver", "2.0.0", ART_B, &po, &r));
    check_ok_report(&r, "1.0.0", "2.0.0");
    assert_all_on(&c, "2.0.0");
    stop_cluster(&c);
}

static void candidate_initialize_fails(void **state)
{
    fixture *f = *state;
    cluster c;
    ms_promote_options po;
    ms_promote_report r;

    start_cluster(state, &c, -1);
    fast_opts(&po);
    assert_int_equal(ms_deploy_promote(f->client, "swapver", "3.0.0", ART_FAIL, &po, &r),
                     MS_ERR_STATE);
    assert_true(r.rolled_back);
    assert_int_equal(r.nhosts, NHOSTS);
    assert_int_equal(strncmp(r.failed_host, "host", 4), 0);
    for (size_t i = 0; i < r.nhosts; i++) {
        assert_false(r.hosts[i].prepared);
        assert_false(r.hosts[i].switched);
        assert_non_null(strstr(r.hosts[i].error, "cannot open its store"));
        assert_non_null(strstr(r.hosts[i].error, "keeps serving"));
        assert_string_equal(r.hosts[i].active_version, "1.0.0");
    }
    assert_all_on(&c, "1.0.0");
    stop_cluster(&c);
}

static void silent_host_aborts(void **state)
{
    fixture *f = *state;
    cluster c;
    ms_promote_options po;
    ms_promote_report r;
    tally *t;

    start_cluster(state, &c, 2); /* host2 runs swapver but ignores deploys */
    fast_opts(&po);
    po.prepare_timeout_ms = 1000;
    t = traffic_start(f);
    assert_int_equal(ms_deploy_promote(f->client, "swapver", "2.0.0", ART_B, &po, &r),
                     MS_ERR_TIMEOUT);
    ms_test_sleep_ms(30);
    traffic_stop_and_check(t, "failed promotion (host2 silent)", false);
    fprintf(stderr, "report: %s\n", r.error);
    assert_true(r.rolled_back);
    assert_int_equal(r.instances_found, NHOSTS);
    assert_int_equal(r.nhosts, NHOSTS - 1);
    assert_non_null(strstr(r.error, "no host answered the prepare"));
    assert_int_equal(strncmp(r.failed_host, "instance ", 9), 0);
    for (size_t i = 0; i < r.nhosts; i++) {
        assert_true(r.hosts[i].aborted);
        assert_string_equal(r.hosts[i].active_version, "1.0.0");
    }
    assert_null(find_host(&r, "host2"));
    assert_all_on(&c, "1.0.0");
    stop_cluster(&c);
}

static void expected_hosts_not_reached(void **state)
{
    fixture *f = *state;
    cluster c;
    ms_promote_options po;
    ms_promote_report r;

    start_cluster(state, &c, -1);
    fast_opts(&po);
    po.prepare_timeout_ms = 500;
    po.expected_hosts = NHOSTS + 1;
    assert_int_equal(ms_deploy_promote(f->client, "swapver", "2.0.0", ART_B, &po, &r),
                     MS_ERR_TIMEOUT);
    assert_non_null(strstr(r.error, "3 of the 4 expected hosts"));
    assert_true(r.rolled_back);
    assert_all_on(&c, "1.0.0");
    stop_cluster(&c);
}

/* --- the host's answers ------------------------------------------------------ */

static json_t *deploy_req(fixture *f, const char *body)
{
    ms_message *m = NULL;
    json_t *j;
    ms_assert_ok(
        ms_bus_request(f->client, "mainstack.deploy.swapver", body, strlen(body), 5000, &m));
    j = reply_json(m);
    ms_message_unref(m);
    return j;
}

static void assert_refused(json_t *j, const char *needle)
{
    const json_t *e = json_object_get(j, "error");
    assert_false(json_is_true(json_object_get(j, "ok")));
    assert_true(json_is_string(e));
    if (strstr(json_string_value(e), needle) == NULL)
        fail_msg("error '%s' does not say '%s'", json_string_value(e), needle);
    assert_string_equal(json_string_value(json_object_get(j, "active_version")), "1.0.0");
    json_decref(j);
}

static void host_answers_bad_requests(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    json_t *j;

    test_opts(f, &o);
    o.host_name = "solo";
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));
    assert_refused(deploy_req(f, "{not json"), "not a JSON object");
    assert_refused(deploy_req(f, "[1]"), "not a JSON object");
    assert_refused(deploy_req(f, "{\"action\":\"explode\"}"), "not 'explode'");
    assert_refused(deploy_req(f, "{}"), "not missing");
    assert_refused(deploy_req(f, "{\"action\":\"prepare\",\"deployment_id\":\"d1\"}"),
                   "\"artifact\"");
    assert_refused(deploy_req(f, "{\"action\":\"prepare\",\"component\":\"other\"}"),
                   "names component 'other'");
    assert_refused(deploy_req(f, "{\"action\":\"switch\",\"deployment_id\":\"d9\"}"),
                   "d9 of swapver is not prepared");
    assert_refused(deploy_req(f, "{\"action\":\"prepare\",\"deployment_id\":\"d2\",\"version\":"
                                 "\"9.9.9\",\"artifact\":\"" PLUGIN_DIR "/swapver_b.so\"}"),
                   "is swapver 2.0.0, not 9.9.9");
    assert_refused(deploy_req(f, "{\"action\":\"prepare\",\"deployment_id\":\"d3\",\"artifact\":"
                                 "\"" PLUGIN_DIR "/echo.so\"}"),
                   "is component 'echo'");
    assert_refused(deploy_req(f, "{\"action\":\"prepare\",\"deployment_id\":\"d4\",\"artifact\":"
                                 "\"/nonexistent/swapver.so\"}"),
                   "/nonexistent/swapver.so");

    /* prepared, a second deployment refused, then a switch */
    j = deploy_req(f, "{\"action\":\"prepare\",\"deployment_id\":\"d5\",\"version\":\"2.0.0\","
                      "\"artifact\":\"" PLUGIN_DIR "/swapver_b.so\"}");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "host")), ms_runtime_host_id(f->rt));
    assert_string_equal(json_string_value(json_object_get(j, "name")), "solo");
    assert_string_equal(json_string_value(json_object_get(j, "from_version")), "1.0.0");
    assert_string_equal(json_string_value(json_object_get(j, "to_version")), "2.0.0");
    assert_int_equal(json_array_size(json_object_get(j, "instances")), 1);
    json_decref(j);
    assert_refused(deploy_req(f, "{\"action\":\"prepare\",\"deployment_id\":\"d6\",\"artifact\":"
                                 "\"" PLUGIN_DIR "/swapver_b.so\"}"),
                   "deployment d5 of swapver is prepared");
    {
        ms_message *r = request_str(f, "component.swapver.echo", "x");
        assert_payload(r, "1.0.0:x"); /* prepared is not switched */
        ms_message_unref(r);
    }
    j = deploy_req(f, "{\"action\":\"switch\",\"deployment_id\":\"d5\"}");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "active_version")), "2.0.0");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(j, "report"), "routes_moved")), 2);
    json_decref(j);
    {
        ms_message *r = request_str(f, "component.swapver.echo", "y");
        assert_payload(r, "2.0.0:y");
        ms_message_unref(r);
    }
    /* one phase back */
    j = deploy_req(f, "{\"action\":\"swap\",\"deployment_id\":\"d7\",\"artifact\":\"" PLUGIN_DIR
                      "/swapver_a.so\"}");
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_string_equal(json_string_value(json_object_get(j, "active_version")), "1.0.0");
    json_decref(j);
    /* an abort of something never prepared here: nothing to undo */
    j = deploy_req(f, "{\"action\":\"abort\",\"deployment_id\":\"d8\"}");
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
}

static void prepared_swap_expires(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    json_t *j;

    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));
    j = deploy_req(f, "{\"action\":\"prepare\",\"deployment_id\":\"e1\",\"hold_ms\":100,"
                      "\"artifact\":\"" PLUGIN_DIR "/swapver_b.so\"}");
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    /* the host aborts by itself: the candidate goes, a new swap is possible */
    for (int waited = 0; waited < 5000; waited += 20) {
        size_t n = 0;
        ms_instance **list = NULL;
        ms_assert_ok(ms_runtime_instances(f->rt, &list, &n));
        free(list);
        if (n == 1)
            break;
        ms_test_sleep_ms(20);
    }
    ms_test_sleep_ms(50);
    assert_refused(deploy_req(f, "{\"action\":\"switch\",\"deployment_id\":\"e1\"}"),
                   "e1 of swapver is not prepared");
    ms_assert_ok(ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, 5000, NULL));
}

/* --- the two-phase runtime API ------------------------------------------- */

static void two_phase_api(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_swap_report rep;
    ms_instance **list = NULL;
    size_t n = 0;

    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/swapver_a.so", NULL, NULL));
    assert_int_equal(ms_runtime_swap_commit(f->rt, "swapver", 1000, &rep), MS_ERR_STATE);
    assert_non_null(strstr(rep.error, "no prepared swap of swapver"));
    assert_int_equal(ms_runtime_swap_abort(f->rt, "swapver", &rep), MS_ERR_STATE);
    assert_int_equal(ms_runtime_swap_commit(NULL, "swapver", 1000, NULL), MS_ERR_INVALID_ARG);

    ms_assert_ok(ms_runtime_swap_prepare(f->rt, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, &rep));
    assert_string_equal(rep.old_version, "1.0.0");
    assert_string_equal(rep.new_version, "2.0.0");
    assert_int_equal(rep.instances, 1);
    ms_assert_ok(ms_runtime_instances(f->rt, &list, &n));
    free(list);
    assert_int_equal(n, 2); /* the candidate beside the active */
    {
        ms_message *r = request_str(f, "component.swapver.echo", "a");
        assert_payload(r, "1.0.0:a");
        ms_message_unref(r);
    }
    /* one prepared swap at a time */
    assert_int_equal(
        ms_runtime_swap(f->rt, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, 1000, &rep),
        MS_ERR_STATE);
    assert_non_null(strstr(rep.error, "prepared swap is waiting"));
    assert_int_equal(ms_runtime_swap_commit(f->rt, "other", 1000, &rep), MS_ERR_STATE);
    ms_assert_ok(ms_runtime_swap_abort(f->rt, "swapver", &rep));
    ms_assert_ok(ms_runtime_instances(f->rt, &list, &n));
    free(list);
    assert_int_equal(n, 1);
    {
        ms_message *r = request_str(f, "component.swapver.echo", "b");
        assert_payload(r, "1.0.0:b");
        ms_message_unref(r);
    }
    /* prepare + commit */
    ms_assert_ok(ms_runtime_swap_prepare(f->rt, "swapver", PLUGIN_DIR "/swapver_b.so", NULL, &rep));
    ms_assert_ok(ms_runtime_swap_commit(f->rt, "swapver", 5000, &rep));
    assert_int_equal(rep.routes_moved, 2);
    assert_int_equal(rep.topics_added, 1);
    {
        ms_message *r = request_str(f, "component.swapver.echo", "c");
        assert_payload(r, "2.0.0:c");
        ms_message_unref(r);
    }
    /* a prepared swap left at shutdown is aborted (no leak, no hang) */
    ms_assert_ok(ms_runtime_swap_prepare(f->rt, "swapver", PLUGIN_DIR "/swapver_a.so", NULL, &rep));
    ms_assert_ok(ms_runtime_shutdown(f->rt, 5000));
}

/* --- bad arguments ---------------------------------------------------------- */

static void promote_bad_arguments(void **state)
{
    fixture *f = *state;
    ms_promote_report r;
    ms_promote_options po;
    char path[64];

    assert_int_equal(ms_deploy_promote(NULL, "swapver", "2.0.0", ART_B, NULL, &r),
                     MS_ERR_INVALID_ARG);
    assert_non_null(strstr(r.error, "required"));
    assert_int_equal(ms_deploy_promote(f->client, "swapver", "", ART_B, NULL, &r),
                     MS_ERR_INVALID_ARG);
    assert_int_equal(ms_deploy_promote(f->client, "swapver", "2.0.0", NULL, NULL, NULL),
                     MS_ERR_INVALID_ARG);
    assert_int_equal(ms_deploy_promote(f->client, "a.b", "2.0.0", ART_B, NULL, &r),
                     MS_ERR_INVALID_ARG);
    assert_non_null(strstr(r.error, "'a.b' is not a component name"));
    fast_opts(&po);
    po.discover_ms = 100;
    assert_int_equal(ms_deploy_promote(f->client, "nobody", "2.0.0", ART_B, &po, &r),
                     MS_ERR_NOT_FOUND);
    assert_non_null(strstr(r.error, "no instance answered $SRV.PING.nobody"));
    assert_false(r.ok);
    assert_int_equal(ms_deploy_artifact_path("/r", "swapver", "2.0.0", path, sizeof path), MS_OK);
    assert_string_equal(path, "/r/.mainstack/artifacts/swapver/2.0.0/swapver.so");
    assert_int_equal(ms_deploy_artifact_path("/r", "swapver", "2.0.0", path, 10), MS_ERR_TOO_LARGE);
    assert_int_equal(ms_deploy_artifact_path(NULL, "swapver", "2.0.0", path, sizeof path),
                     MS_ERR_INVALID_ARG);
}

/* on_step: the order of the steps, and at each "switched" how many hosts
 * already serve 2.0.0 (exactly one more each time: one host at a time). */
typedef struct steps_seen {
    cluster *c;
    int prepared, switched;
    char order[64];
    char hosts[NHOSTS][64];
} steps_seen;

static int hosts_on(cluster *c, const char *version)
{
    int n = 0;
    for (int i = 0; i < NHOSTS; i++) {
        ms_instance **list = NULL;
        size_t k = 0;
        ms_assert_ok(ms_runtime_instances(c->rt[i], &list, &k));
        if (k == 1 && strcmp(ms_instance_ops(list[0])->metadata.version, version) == 0)
            n++;
        free(list);
    }
    return n;
}

static void on_step(void *ud, const char *step, const char *host)
{
    steps_seen *ss = ud;
    size_t n = strlen(ss->order);
    snprintf(ss->order + n, sizeof ss->order - n, "%c", step[0]);
    if (strcmp(step, "prepared") == 0) {
        assert_null(host);
        assert_int_equal(hosts_on(ss->c, "2.0.0"), 0);
        ss->prepared++;
        return;
    }
    assert_string_equal(step, "switched");
    assert_non_null(host);
    assert_true(ss->switched < NHOSTS);
    snprintf(ss->hosts[ss->switched], sizeof ss->hosts[0], "%s", host);
    ss->switched++;
    assert_int_equal(hosts_on(ss->c, "2.0.0"), ss->switched);
}

static void switch_host_by_host_and_abort(void **state)
{
    fixture *f = *state;
    cluster c;
    ms_promote_options po;
    ms_promote_report r;
    steps_seen ss;
    size_t aborted = 9, answered = 9;
    char id[80];

    memset(&ss, 0, sizeof ss);
    start_cluster(state, &c, -1);
    ss.c = &c;
    fast_opts(&po);
    po.on_step = on_step;
    po.on_step_ud = &ss;
    ms_assert_ok(ms_deploy_promote(f->client, "swapver", "2.0.0", ART_B, &po, &r));
    check_ok_report(&r, "1.0.0", "2.0.0");
    assert_string_equal(ss.order, "pss"
                                  "s");
    for (size_t i = 0; i < r.nhosts; i++)
        assert_string_equal(ss.hosts[i], r.hosts[i].host);

    /* a prepare whose coordinator is gone: ms_deploy_abort removes it now */
    snprintf(id, sizeof id, "orphan-%ld", (long)getpid());
    {
        char body[512];
        ms_message *m = NULL;
        json_t *j;
        snprintf(body, sizeof body,
                 "{\"action\":\"prepare\",\"deployment_id\":\"%s\",\"version\":\"1.0.0\","
                 "\"artifact\":\"%s\"}",
                 id, ART_A);
        /* one host's answer is enough to know the prepare went out */
        ms_assert_ok(
            ms_bus_request(f->client, "mainstack.deploy.swapver", body, strlen(body), 5000, &m));
        j = reply_json(m);
        assert_true(json_is_true(json_object_get(j, "ok")));
        json_decref(j);
        ms_message_unref(m);
    }
    ms_assert_ok(ms_deploy_abort(f->client, "swapver", id, 1500, &aborted, &answered));
    assert_int_equal(answered, NHOSTS);
    assert_int_equal(aborted, NHOSTS);
    assert_all_on(&c, "2.0.0");
    /* aborted again: nothing left to abort */
    ms_assert_ok(ms_deploy_abort(f->client, "swapver", id, 800, &aborted, &answered));
    assert_int_equal(aborted, 0);
    assert_int_equal(answered, NHOSTS);
    /* a new promotion is not refused by a leftover prepare */
    fast_opts(&po);
    ms_assert_ok(ms_deploy_rollback(f->client, "swapver", "1.0.0", ART_A, &po, &r));
    assert_all_on(&c, "1.0.0");
    ms_assert_status(ms_deploy_abort(f->client, "swapver", "", 100, NULL, NULL),
                     MS_ERR_INVALID_ARG);
    ms_assert_status(ms_deploy_abort(f->client, "a.b", id, 100, NULL, NULL), MS_ERR_INVALID_ARG);
    stop_cluster(&c);
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

BOTH(promote_and_rollback_under_traffic)
BOTH(one_host_cannot_load)
BOTH(candidate_initialize_fails)
BOTH(silent_host_aborts)
BOTH(expected_hosts_not_reached)
BOTH(host_answers_bad_requests)
BOTH(prepared_swap_expires)
BOTH(two_phase_api)
BOTH(promote_bad_arguments)
BOTH(switch_host_by_host_and_abort)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nats_promote_and_rollback_under_traffic, setup_nats,
                                        teardown),
        cmocka_unit_test_setup_teardown(inproc_promote_and_rollback_under_traffic, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_one_host_cannot_load, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_one_host_cannot_load, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_candidate_initialize_fails, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_candidate_initialize_fails, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_silent_host_aborts, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_silent_host_aborts, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_expected_hosts_not_reached, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_expected_hosts_not_reached, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_host_answers_bad_requests, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_host_answers_bad_requests, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_prepared_swap_expires, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_prepared_swap_expires, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_two_phase_api, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_two_phase_api, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_promote_bad_arguments, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_promote_bad_arguments, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_switch_host_by_host_and_abort, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_switch_host_by_host_and_abort, setup_inproc,
                                        teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
