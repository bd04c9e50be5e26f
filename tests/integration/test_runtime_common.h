/*
 * test_runtime_common.h - what the runtime test programs share: a fixture
 * per transport (a real nats-server for nats_*, an inproc broker for
 * inproc_*), a temporary data directory, a client bus, runtime options with
 * short intervals, small linked-in test components, and helpers to request,
 * collect published messages and wait for states. Everything is static
 * inline so each program uses what it needs.
 */
#ifndef TEST_RUNTIME_COMMON_H
#define TEST_RUNTIME_COMMON_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ms_test.h"
#include "nats_fixture.h"

#define PLUGIN_DIR MS_BINARY_DIR "/tests/plugins"
/* Shared definitions a program may not use. */
#define TC_UNUSED __attribute__((unused))

typedef struct fixture {
    ms_nats_server *server; /* NULL for inproc */
    char url[128];
    char dir[256]; /* temp dir: data root, config files */
    ms_bus *client;
    ms_runtime *rt;
} fixture;

static inline void make_tmpdir(fixture *f)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/ms-rt-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
}

static inline int setup_nats(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    ms_assert_ok(ms_nats_server_start(NULL, &f->server));
    snprintf(f->url, sizeof f->url, "%s", ms_nats_server_url(f->server));
    make_tmpdir(f);
    ms_assert_ok(ms_bus_connect_url(f->url, &f->client));
    *state = f;
    return 0;
}

static inline int setup_inproc(void **state)
{
    static atomic_int seq;
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    snprintf(f->url, sizeof f->url, "inproc://rt-test-%d-%d", (int)getpid(),
             atomic_fetch_add(&seq, 1));
    make_tmpdir(f);
    ms_assert_ok(ms_bus_connect_url(f->url, &f->client));
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fixture *f = *state;
    char cmd[400];
    ms_runtime_destroy(f->rt);
    ms_bus_destroy(f->client);
    ms_nats_server_stop(f->server);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Options with short intervals; health checks off unless a test wants them. */
static inline void test_opts(fixture *f, ms_runtime_options *o)
{
    ms_runtime_options_init(o);
    o->url = f->url;
    o->data_root = f->dir;
    o->workers = 4;
    o->health_interval_ms = 0;
    o->health_timeout_ms = 200;
    o->restart_delay_ms = 10;
    o->restart_window_ms = 10000;
    o->shutdown_timeout_ms = 5000;
}

static inline ms_runtime *start_rt(fixture *f, const ms_runtime_options *o)
{
    ms_assert_ok(ms_runtime_create(o, &f->rt));
    assert_non_null(f->rt);
    return f->rt;
}

/* Request with a string payload; returns the reply (caller unrefs). */
static inline ms_message *request_str(fixture *f, const char *subject, const char *payload)
{
    ms_message *reply = NULL;
    ms_assert_ok(ms_bus_request(f->client, subject, payload, payload ? strlen(payload) : 0, 3000,
                                &reply));
    assert_non_null(reply);
    return reply;
}

static inline void assert_payload(const ms_message *m, const char *want)
{
    size_t n = strlen(want);
    if (ms_message_len(m) != n || memcmp(ms_message_data(m), want, n) != 0)
        fail_msg("payload '%.*s', want '%s'", (int)ms_message_len(m),
                 (const char *)ms_message_data(m), want);
}

static inline json_t *reply_json(const ms_message *m)
{
    json_t *j = NULL;
    ms_assert_ok(ms_message_json(m, &j));
    return j;
}

static inline const char *jstr(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("member '%s' is not a string", key);
    return json_string_value(v);
}

static inline void assert_contains(const char *hay, const char *needle)
{
    if (hay == NULL || strstr(hay, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", hay ? hay : "(null)", needle);
}

/* --- collecting published messages ------------------------------------------- */

#define COLLECT_MAX 2048
typedef struct collector {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ms_message *msgs[COLLECT_MAX];
    int n;
    ms_subscription *sub;
} collector;

static inline void collect_cb(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *c)
{
    collector *k = c;
    (void)bus;
    (void)sub;
    pthread_mutex_lock(&k->mu);
    if (k->n < COLLECT_MAX)
        k->msgs[k->n++] = ms_message_ref((ms_message *)m);
    pthread_cond_broadcast(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

static inline collector *collect(fixture *f, const char *pattern)
{
    collector *k = calloc(1, sizeof *k);
    assert_non_null(k);
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    ms_assert_ok(ms_bus_subscribe(f->client, pattern, NULL, collect_cb, k, &k->sub));
    ms_assert_ok(ms_bus_flush(f->client, 5000));
    return k;
}

/* Wait until at least n messages arrived. */
static inline int collected_wait(collector *k, int n, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;
    int got;
    pthread_mutex_lock(&k->mu);
    while (k->n < n && ms_test_now_ms() < deadline) {
        pthread_mutex_unlock(&k->mu);
        ms_test_sleep_ms(2);
        pthread_mutex_lock(&k->mu);
    }
    got = k->n;
    pthread_mutex_unlock(&k->mu);
    return got;
}

/* The i-th message's payload as JSON (new reference). */
static inline json_t *collected_json(collector *k, int i)
{
    json_t *j;
    pthread_mutex_lock(&k->mu);
    assert_true(i < k->n);
    j = reply_json(k->msgs[i]);
    pthread_mutex_unlock(&k->mu);
    return j;
}

static inline void collect_free(collector *k)
{
    if (k == NULL)
        return;
    ms_assert_ok(ms_subscription_unsubscribe(k->sub));
    for (int i = 0; i < k->n; i++)
        ms_message_unref(k->msgs[i]);
    pthread_cond_destroy(&k->cv);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* --- waiting on instances --------------------------------------------------- */

static inline int wait_state(ms_instance *inst, ms_instance_state want, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;
    while (ms_instance_get_state(inst) != want) {
        if (ms_test_now_ms() >= deadline)
            return 0;
        ms_test_sleep_ms(2);
    }
    return 1;
}

static inline int wait_restarts(ms_instance *inst, uint32_t want, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;
    for (;;) {
        ms_instance_stats st;
        ms_assert_ok(ms_instance_get_stats(inst, &st));
        if (st.restarts >= want)
            return 1;
        if (ms_test_now_ms() >= deadline)
            return 0;
        ms_test_sleep_ms(2);
    }
}

static inline void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* --- test components --------------------------------------------------------- */

typedef struct tc_self {
    ms_component_ctx *ctx;
    atomic_int inside;
} tc_self;

static inline void *tc_create(void)
{
    return calloc(1, sizeof(tc_self));
}

static inline void tc_destroy(void *self)
{
    free(self);
}

static inline ms_status tc_init(void *self, ms_component_ctx *ctx)
{
    ((tc_self *)self)->ctx = ctx;
    return MS_OK;
}

static inline ms_status tc_reply_str(const ms_message *in, const char *text, ms_message **reply)
{
    if (ms_message_reply(in) == NULL)
        return MS_OK;
    return ms_message_create(ms_message_reply(in), text, strlen(text), reply);
}

/* "recho": echo, who-am-I, and a fan-out topic counted in tc_bcast. */
static TC_UNUSED atomic_int tc_bcast;

static inline ms_status recho_handle(void *self, const ms_message *in, ms_message **reply)
{
    tc_self *s = self;
    const char *subj = ms_message_subject(in);
    if (strcmp(subj, "component.recho.bcast") == 0) {
        atomic_fetch_add(&tc_bcast, 1);
        return MS_OK;
    }
    if (strcmp(subj, "component.recho.who") == 0)
        return tc_reply_str(in, ms_ctx_instance_id(s->ctx), reply);
    if (ms_message_reply(in) == NULL)
        return MS_OK;
    return ms_message_create(ms_message_reply(in), ms_message_data(in), ms_message_len(in),
                             reply);
}

static TC_UNUSED const ms_topic recho_topics[] = {
    {"component.recho.echo", 0},
    {"component.recho.who", 0},
    {"component.recho.bcast", MS_TOPIC_FANOUT},
    {NULL, 0},
};

static TC_UNUSED const ms_component_ops recho_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"recho", "2.0.1-rc.1+b7", "echo for runtime tests"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = recho_topics,
    .handle_message = recho_handle,
};

/* "flaky": fails as asked by the payload. */
static inline ms_status flaky_handle(void *self, const ms_message *in, ms_message **reply)
{
    tc_self *s = self;
    size_t n = ms_message_len(in);
    const char *p = ms_message_data(in);
    if (n == 6 && memcmp(p, "schema", 6) == 0)
        return ms_ctx_error(s->ctx, MS_ERR_SCHEMA, "field 'name' is required");
    if (n == 8 && memcmp(p, "internal", 8) == 0)
        return ms_ctx_error(s->ctx, MS_ERR_INTERNAL, "the database is on fire");
    if (n == 8 && memcmp(p, "notfound", 8) == 0)
        return ms_ctx_error(s->ctx, MS_ERR_NOT_FOUND, "user 42 not found");
    return tc_reply_str(in, "fine", reply);
}

static TC_UNUSED const ms_topic flaky_topics[] = {{"component.flaky.op", 0}, {NULL, 0}};

static TC_UNUSED const ms_component_ops flaky_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"flaky", "1.0.0", "fails on request"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = flaky_topics,
    .handle_message = flaky_handle,
};

/* "slow": takes 2 ms per request and counts what it handled. */
static TC_UNUSED atomic_int tc_slow_handled;

static inline ms_status slow_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    ms_test_sleep_ms(2);
    atomic_fetch_add(&tc_slow_handled, 1);
    return tc_reply_str(in, "done", reply);
}

static TC_UNUSED const ms_topic slow_topics[] = {{"component.slow.op", 0}, {NULL, 0}};

static TC_UNUSED const ms_component_ops slow_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"slow", "1.0.0", "slow on purpose"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = slow_topics,
    .handle_message = slow_handle,
};

#endif
