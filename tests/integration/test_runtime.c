/*
 * test_runtime.c - the runtime hosting components, on both transports:
 * request/reply through an instance, one call at a time per instance and
 * real concurrency for reentrant ones, queue-group load balancing, fan-out
 * topics, error replies with the NATS Services headers and their stats,
 * plugin loading (each bad plugin names its file) and lookup by name,
 * config from a file (reload: good, unparseable, rejected) and from
 * mainstack.config.<component>, ms_runtime_run's signals, removing an
 * instance, and a shutdown under load where every accepted request is
 * answered. Supervision and discovery have their own programs.
 */
#include <signal.h>

#include "test_runtime_common.h"

/* --- components of this program ---------------------------------------------- */

/* "serial": detects a second call entering while one runs. */
static atomic_int serial_overlaps, serial_handled;

static ms_status serial_handle(void *self, const ms_message *in, ms_message **reply)
{
    tc_self *s = self;
    if (atomic_fetch_add(&s->inside, 1) != 0)
        atomic_fetch_add(&serial_overlaps, 1);
    ms_test_sleep_ms(1);
    atomic_fetch_sub(&s->inside, 1);
    atomic_fetch_add(&serial_handled, 1);
    return tc_reply_str(in, "ok", reply);
}

static const ms_topic serial_topics[] = {{"component.serial.op", 0}, {NULL, 0}};
static const ms_component_ops serial_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"serial", "1.0.0", "one call at a time"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = serial_topics,
    .handle_message = serial_handle,
};

/* "reent": reentrant; each call waits (bounded) to meet another one. */
static atomic_int reent_inside, reent_max;

static ms_status reent_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    int now = atomic_fetch_add(&reent_inside, 1) + 1;
    int cur = atomic_load(&reent_max);
    while (now > cur && !atomic_compare_exchange_weak(&reent_max, &cur, now)) {
    }
    int64_t deadline = ms_test_now_ms() + 1000;
    while (atomic_load(&reent_max) < 2 && ms_test_now_ms() < deadline)
        ms_test_sleep_ms(1);
    atomic_fetch_sub(&reent_inside, 1);
    return tc_reply_str(in, "ok", reply);
}

static const ms_topic reent_topics[] = {{"component.reent.op", 0}, {NULL, 0}};
static const ms_component_ops reent_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"reent", "1.0.0", "reentrant"},
    .flags = MS_COMPONENT_REENTRANT,
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = reent_topics,
    .handle_message = reent_handle,
};

/* "inl" (MS_COMPONENT_INLINE) and its twin "noinl" (no flag): .where
 * answers with the name of the thread that ran the handler, .ask makes a
 * request from the handler and returns its status, .serial detects a second
 * call entering while one runs. */
static atomic_int inl_overlaps, inl_handled;

static ms_status inl_handle(void *self, const ms_message *in, ms_message **reply)
{
    tc_self *s = self;
    const char *subj = ms_message_subject(in);
    char name[32] = "";
    ms_message *r = NULL;
    ms_status st;

    if (strstr(subj, ".where") != NULL) {
        if (pthread_getname_np(pthread_self(), name, sizeof name) != 0)
            snprintf(name, sizeof name, "?");
        return tc_reply_str(in, name, reply);
    }
    if (strstr(subj, ".ask") != NULL) {
        st = ms_ctx_request(s->ctx, "component.recho.echo", "x", 1, 2000, &r);
        ms_message_unref(r);
        if (st != MS_OK)
            return st;
        return tc_reply_str(in, "asked", reply);
    }
    if (atomic_fetch_add(&s->inside, 1) != 0)
        atomic_fetch_add(&inl_overlaps, 1);
    ms_test_sleep_ms(1);
    atomic_fetch_sub(&s->inside, 1);
    atomic_fetch_add(&inl_handled, 1);
    return tc_reply_str(in, "ok", reply);
}

static const ms_topic inl_topics[] = {
    {"component.inl.where", 0}, {"component.inl.ask", 0}, {"component.inl.serial", 0}, {NULL, 0}};
static const ms_component_ops inl_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"inl", "1.0.0", "handlers inline on the delivery thread"},
    .flags = MS_COMPONENT_INLINE,
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = inl_topics,
    .handle_message = inl_handle,
};

static const ms_topic noinl_topics[] = {
    {"component.noinl.where", 0}, {"component.noinl.ask", 0}, {NULL, 0}};
static const ms_component_ops noinl_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"noinl", "1.0.0", "the same on the workers"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = noinl_topics,
    .handle_message = inl_handle,
};

/* "conf": answers with its config; refuses a config with "reject": true. */
static ms_status conf_change(void *self, const json_t *config)
{
    tc_self *s = self;
    if (json_is_true(json_object_get(config, "reject")))
        return ms_ctx_error(s->ctx, MS_ERR_SCHEMA, "config: 'reject' is set, refusing it");
    return MS_OK;
}

static ms_status conf_handle(void *self, const ms_message *in, ms_message **reply)
{
    tc_self *s = self;
    char *text = NULL;
    size_t len = 0;
    ms_status st;
    if (ms_message_reply(in) == NULL)
        return MS_OK;
    if ((st = ms_json_dump(ms_ctx_config(s->ctx), &text, &len)) != MS_OK)
        return st;
    st = ms_message_create(ms_message_reply(in), text, len, reply);
    free(text);
    return st;
}

static const ms_topic conf_topics[] = {{"component.conf.get", 0}, {NULL, 0}};
static const ms_component_ops conf_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"conf", "1.0.0", "shows its config"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .handle_config_change = conf_change,
    .topics = conf_topics,
    .handle_message = conf_handle,
};

/* "testable": a Testable component with two tests, one failing. */
static ms_status testable_run(void *self, ms_test_report *r)
{
    (void)self;
    ms_status s = ms_test_report_add(r, "adds", true, "2 + 2 = %d", 4);
    if (s == MS_OK)
        s = ms_test_report_add(r, "fails", false, "expected %d, got %d", 1, 2);
    return s;
}

static ms_status ctxinfo_handle(void *self, const ms_message *in, ms_message **reply)
{
    tc_self *s = self;
    char text[1024];
    snprintf(text, sizeof text, "%s|%s|%s", ms_ctx_component(s->ctx), ms_ctx_instance_id(s->ctx),
             ms_ctx_data_dir(s->ctx));
    return tc_reply_str(in, text, reply);
}

static const ms_topic testable_topics[] = {{"component.testable.info", 0}, {NULL, 0}};
static const ms_component_ops testable_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"testable", "1.0.0", "has tests"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = testable_topics,
    .handle_message = ctxinfo_handle,
    .run_tests = testable_run,
};

/* "gate": each call blocks until gate_open is set. */
static atomic_int gate_open, gate_entered;

static ms_status gate_handle(void *self, const ms_message *in, ms_message **reply)
{
    (void)self;
    atomic_fetch_add(&gate_entered, 1);
    while (!atomic_load(&gate_open))
        ms_test_sleep_ms(1);
    return tc_reply_str(in, "passed", reply);
}

static const ms_topic gate_topics[] = {{"component.gate.op", 0}, {NULL, 0}};
static const ms_component_ops gate_ops = {
    .abi_version = MS_COMPONENT_ABI,
    .metadata = {"gate", "1.0.0", "blocks until opened"},
    .create = tc_create,
    .destroy = tc_destroy,
    .initialize = tc_init,
    .topics = gate_topics,
    .handle_message = gate_handle,
};

/* --- helpers --------------------------------------------------------------------- */

/* Publish n requests at once with replies to inbox.<i>; replies land in the
 * returned collector. */
static collector *fire(fixture *f, const char *subject, const char *payload, int n)
{
    char *inbox = NULL;
    char pattern[160], reply[160];
    collector *k;
    ms_assert_ok(ms_bus_new_inbox(f->client, &inbox));
    snprintf(pattern, sizeof pattern, "%s.*", inbox);
    k = collect(f, pattern);
    for (int i = 0; i < n; i++) {
        snprintf(reply, sizeof reply, "%s.%d", inbox, i);
        ms_assert_ok(ms_bus_publish_reply(f->client, subject, reply, payload, strlen(payload)));
    }
    ms_assert_ok(ms_bus_flush(f->client, 5000));
    free(inbox);
    return k;
}

/* --- cases ------------------------------------------------------------------------ */

static void check_error_reply(ms_message *r, const char *text, const char *code);

static void echo_request(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, &inst));
    assert_non_null(inst);
    assert_int_equal(ms_instance_get_state(inst), MS_INSTANCE_RUNNING);
    assert_string_equal(ms_instance_component(inst), "recho");
    assert_int_equal(strlen(ms_instance_id(inst)), 22);
    assert_ptr_equal(ms_instance_ops(inst), &recho_ops);

    ms_message *r = request_str(f, "component.recho.echo", "hello runtime");
    assert_payload(r, "hello runtime");
    ms_message_unref(r);
    /* metadata travels too: a full message gets its correlation id back */
    ms_message *req = NULL, *rep = NULL;
    ms_assert_ok(ms_msg_request("component.recho.echo", "tester", NULL, &req));
    ms_assert_ok(ms_message_set_data(req, "x", 1));
    ms_assert_ok(ms_bus_request_msg(f->client, req, 3000, &rep));
    assert_string_equal(ms_message_correlation_id(rep), ms_message_id(req));
    ms_message_unref(req);
    ms_message_unref(rep);

    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.num_requests, 2);
    assert_int_equal(st.num_errors, 0);
    assert_int_equal(st.state, MS_INSTANCE_RUNNING);
    assert_true(st.started[0] != '\0');
    assert_true(ms_runtime_workers(f->rt) == 4);
    assert_string_equal(ms_bus_transport(ms_runtime_bus(f->rt)),
                        f->server != NULL ? "nats" : "inproc");
}

/* MS_COMPONENT_INLINE: an idle instance's handler runs on the delivery
 * thread, not a worker; calls still never overlap (the ones that find the
 * instance busy go to a worker); ms_ctx_request is refused with a clear
 * error; without the flag every call runs on a worker. */
static void inline_dispatch(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    int inline_runs = 0;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &inl_ops, NULL, NULL));
    ms_assert_ok(ms_runtime_add(f->rt, &noinl_ops, NULL, NULL));
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));

    /* serial requests find the instance idle (but maybe the first, right
     * after the start task) */
    for (int i = 0; i < 5; i++) {
        ms_message *r = request_str(f, "component.inl.where", "");
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)ms_message_len(r),
                 (const char *)ms_message_data(r));
        if (strncmp(name, "ms-worker", 9) != 0)
            inline_runs++;
        ms_message_unref(r);
        r = request_str(f, "component.noinl.where", "");
        snprintf(name, sizeof name, "%.*s", (int)ms_message_len(r),
                 (const char *)ms_message_data(r));
        assert_true(strncmp(name, "ms-worker", 9) == 0);
        ms_message_unref(r);
    }
    assert_true(inline_runs >= 4);

    /* a burst: some inline, the rest queued for a worker; never two at once */
    atomic_store(&inl_overlaps, 0);
    atomic_store(&inl_handled, 0);
    collector *k = fire(f, "component.inl.serial", "x", 40);
    assert_int_equal(collected_wait(k, 40, 5000), 40);
    assert_int_equal(atomic_load(&inl_handled), 40);
    assert_int_equal(atomic_load(&inl_overlaps), 0);
    collect_free(k);

    /* a request from an inline handler: refused, named, answered 409 */
    ms_message *r = request_str(f, "component.inl.ask", "");
    check_error_reply(r, "MS_COMPONENT_INLINE", "409");
    assert_contains(ms_message_header(r, "Nats-Service-Error"), "component.recho.echo");
    ms_message_unref(r);
    /* the same handler on a worker may request */
    r = request_str(f, "component.noinl.ask", "");
    assert_payload(r, "asked");
    ms_message_unref(r);
}

/* A borrowed bus: the runtime uses it and leaves it open. */
static void borrowed_bus(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    test_opts(f, &o);
    o.url = NULL;
    o.bus = f->client;
    start_rt(f, &o);
    assert_ptr_equal(ms_runtime_bus(f->rt), f->client);
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));
    ms_message *r = request_str(f, "component.recho.echo", "same bus");
    assert_payload(r, "same bus");
    ms_message_unref(r);
    ms_runtime_destroy(f->rt);
    f->rt = NULL;
    assert_true(ms_bus_is_connected(f->client));
    ms_assert_ok(ms_bus_publish(f->client, "still.open", "x", 1));
}

static void serial_one_at_a_time(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    test_opts(f, &o);
    start_rt(f, &o);
    atomic_store(&serial_overlaps, 0);
    atomic_store(&serial_handled, 0);
    ms_assert_ok(ms_runtime_add(f->rt, &serial_ops, NULL, NULL));
    collector *k = fire(f, "component.serial.op", "x", 40);
    assert_int_equal(collected_wait(k, 40, 5000), 40);
    assert_int_equal(atomic_load(&serial_handled), 40);
    assert_int_equal(atomic_load(&serial_overlaps), 0);
    collect_free(k);
}

static void reentrant_runs_concurrently(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    test_opts(f, &o);
    start_rt(f, &o);
    atomic_store(&reent_inside, 0);
    atomic_store(&reent_max, 0);
    ms_assert_ok(ms_runtime_add(f->rt, &reent_ops, NULL, NULL));
    collector *k = fire(f, "component.reent.op", "x", 4);
    assert_int_equal(collected_wait(k, 4, 5000), 4);
    assert_true(atomic_load(&reent_max) >= 2);
    collect_free(k);
}

static void queue_group_balances(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *a = NULL, *b = NULL;
    int na = 0, nb = 0;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, &a));
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, &b));
    assert_string_not_equal(ms_instance_id(a), ms_instance_id(b));
    collector *k = fire(f, "component.recho.who", "", 60);
    assert_int_equal(collected_wait(k, 60, 5000), 60);
    ms_test_sleep_ms(50); /* nothing answers twice */
    assert_int_equal(k->n, 60);
    for (int i = 0; i < k->n; i++) {
        size_t len = ms_message_len(k->msgs[i]);
        const char *p = ms_message_data(k->msgs[i]);
        if (len == 22 && memcmp(p, ms_instance_id(a), 22) == 0)
            na++;
        else if (len == 22 && memcmp(p, ms_instance_id(b), 22) == 0)
            nb++;
    }
    assert_int_equal(na + nb, 60);
    assert_true(na > 0);
    assert_true(nb > 0);
    collect_free(k);
}

static int bcast_is_two(void *arg)
{
    (void)arg;
    return atomic_load(&tc_bcast) >= 2;
}

static void fanout_reaches_every_instance(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    test_opts(f, &o);
    start_rt(f, &o);
    atomic_store(&tc_bcast, 0);
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));
    ms_assert_ok(ms_bus_publish(f->client, "component.recho.bcast", "hi", 2));
    assert_true(ms_test_wait_until(bcast_is_two, NULL, 3000));
    ms_test_sleep_ms(50);
    assert_int_equal(atomic_load(&tc_bcast), 2);
}

static void check_error_reply(ms_message *r, const char *text, const char *code)
{
    assert_non_null(ms_message_header(r, "Nats-Service-Error"));
    assert_contains(ms_message_header(r, "Nats-Service-Error"), text);
    assert_string_equal(ms_message_header(r, "Nats-Service-Error-Code"), code);
    json_t *body = reply_json(r);
    assert_contains(jstr(body, "error"), text);
    assert_int_equal(json_integer_value(json_object_get(body, "code")), atoi(code));
    json_decref(body);
}

static void error_replies_and_stats(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &flaky_ops, NULL, &inst));
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));

    ms_message *r = request_str(f, "component.flaky.op", "schema");
    check_error_reply(r, "field 'name' is required", "400");
    ms_message_unref(r);
    r = request_str(f, "component.flaky.op", "internal");
    check_error_reply(r, "the database is on fire", "500");
    ms_message_unref(r);
    r = request_str(f, "component.flaky.op", "notfound");
    check_error_reply(r, "user 42 not found", "404");
    ms_message_unref(r);
    r = request_str(f, "component.flaky.op", "ok");
    assert_payload(r, "fine");
    assert_null(ms_message_header(r, "Nats-Service-Error"));
    ms_message_unref(r);

    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.num_requests, 4);
    assert_int_equal(st.num_errors, 3);
    assert_string_equal(st.last_error, "user 42 not found");
    assert_int_equal(st.consecutive_failures, 0); /* reset by the success */
    assert_int_equal(st.state, MS_INSTANCE_RUNNING);
    /* the host is still up */
    r = request_str(f, "component.recho.echo", "still here");
    assert_payload(r, "still here");
    ms_message_unref(r);
}

static void failing_plugin_answers_errors(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    o.failure_threshold = 1000; /* no restart here */
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/failing.so", NULL, &inst));
    for (int i = 0; i < 5; i++) {
        ms_message *r = request_str(f, "component.failing.op", "{}");
        assert_string_equal(ms_message_header(r, "Nats-Service-Error-Code"), "500");
        assert_contains(ms_message_header(r, "Nats-Service-Error"), "internal");
        ms_message_unref(r);
    }
    ms_instance_stats st;
    ms_assert_ok(ms_instance_get_stats(inst, &st));
    assert_int_equal(st.num_errors, 5);
    assert_int_equal(st.consecutive_failures, 5);
    assert_int_equal(st.state, MS_INSTANCE_RUNNING);
    /* a good plugin next to it serves */
    ms_assert_ok(ms_runtime_load(f->rt, PLUGIN_DIR "/echo.so", NULL, NULL));
    ms_message *r = request_str(f, "component.echo.echo", "plugin echo");
    assert_payload(r, "plugin echo");
    ms_message_unref(r);
}

static void plugin_load_errors(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = (ms_instance *)1;
    char path[] = "/tmp/ms-rt-notso-XXXXXX.so";
    test_opts(f, &o);
    start_rt(f, &o);

    ms_assert_status(ms_runtime_load(f->rt, PLUGIN_DIR "/missing.so", NULL, &inst), MS_ERR_IO);
    assert_null(inst);
    assert_contains(ms_last_error(), PLUGIN_DIR "/missing.so");
    ms_assert_status(ms_runtime_load(f->rt, PLUGIN_DIR "/nosymbol.so", NULL, &inst),
                     MS_ERR_NOT_FOUND);
    assert_contains(ms_last_error(), "nosymbol.so");
    assert_contains(ms_last_error(), "not a mainstack component");
    ms_assert_status(ms_runtime_load(f->rt, PLUGIN_DIR "/badabi.so", NULL, &inst),
                     MS_ERR_UNSUPPORTED);
    assert_contains(ms_last_error(), "badabi.so");
    assert_contains(ms_last_error(), "ABI 999");
    ms_assert_status(ms_runtime_load(f->rt, PLUGIN_DIR "/badmeta.so", NULL, &inst), MS_ERR_SCHEMA);
    assert_contains(ms_last_error(), "badmeta.so");
    assert_contains(ms_last_error(), "metadata.version");

    int fd = mkstemps(path, 3);
    assert_true(fd >= 0);
    static const char junk[] = "#!/bin/sh\necho this is not a shared object, just a script\n";
    assert_int_equal(write(fd, junk, sizeof junk - 1), (ssize_t)(sizeof junk - 1));
    close(fd);
    ms_assert_status(ms_runtime_load(f->rt, path, NULL, &inst), MS_ERR_IO);
    assert_contains(ms_last_error(), path);
    unlink(path);

    /* none of them left an instance behind */
    ms_instance **list = NULL;
    size_t n = 9;
    ms_assert_ok(ms_runtime_instances(f->rt, &list, &n));
    assert_int_equal(n, 0);
    free(list);
}

static void load_by_name(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    char *path = NULL;
    char link_dir[300], cmd[700];

    /* <dir>/<name>/<name>.so through the environment */
    snprintf(link_dir, sizeof link_dir, "%s/plugins/echo", f->dir);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/echo.so' '%s/echo.so'", link_dir,
             PLUGIN_DIR, link_dir);
    assert_int_equal(system(cmd), 0);
    snprintf(link_dir, sizeof link_dir, "/nonexistent:%s/plugins", f->dir);
    setenv("MAINSTACK_COMPONENT_PATH", link_dir, 1);
    ms_assert_ok(ms_runtime_resolve(NULL, "echo", &path));
    assert_contains(path, "/plugins/echo/echo.so");
    free(path);
    unsetenv("MAINSTACK_COMPONENT_PATH");

    test_opts(f, &o);
    o.component_path = PLUGIN_DIR;
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_resolve(f->rt, "echo", &path));
    assert_string_equal(path, PLUGIN_DIR "/echo.so");
    free(path);
    ms_assert_ok(ms_runtime_load(f->rt, "echo", NULL, &inst));
    assert_string_equal(ms_instance_component(inst), "echo");
    /* the same plugin again: a second instance of the loaded object */
    ms_instance *second = NULL;
    ms_assert_ok(ms_runtime_load(f->rt, "echo", NULL, &second));
    assert_ptr_equal(ms_instance_ops(second), ms_instance_ops(inst));
    ms_message *r = request_str(f, "component.echo.echo", "by name");
    assert_payload(r, "by name");
    ms_message_unref(r);

    ms_assert_status(ms_runtime_load(f->rt, "no-such-component", NULL, NULL), MS_ERR_NOT_FOUND);
    assert_contains(ms_last_error(), "no-such-component");
    assert_contains(ms_last_error(), PLUGIN_DIR);
    ms_assert_status(ms_runtime_resolve(f->rt, "Bad_Name", &path), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_resolve(NULL, "echo", &path), MS_ERR_NOT_FOUND);
    assert_contains(ms_last_error(), "MAINSTACK_COMPONENT_PATH");
}

static ms_message *conf_get(fixture *f)
{
    return request_str(f, "component.conf.get", "");
}

static void assert_conf_v(fixture *f, int v)
{
    ms_message *r = conf_get(f);
    json_t *j = reply_json(r);
    if (json_integer_value(json_object_get(j, "v")) != v)
        fail_msg("config v=%lld, want %d", (long long)json_integer_value(json_object_get(j, "v")),
                 v);
    json_decref(j);
    ms_message_unref(r);
}

static void config_file_reload(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    char path[400];
    snprintf(path, sizeof path, "%s/config.json", f->dir);
    write_file(path, "{\"conf\": {\"v\": 1}, \"other\": {\"x\": true}}");
    test_opts(f, &o);
    o.config_path = path;
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &conf_ops, NULL, NULL));
    assert_conf_v(f, 1);

    write_file(path, "{\"conf\": {\"v\": 2}}");
    ms_assert_ok(ms_runtime_reload_config(f->rt));
    assert_conf_v(f, 2);
    /* unchanged: nothing to do */
    ms_assert_ok(ms_runtime_reload_config(f->rt));
    assert_conf_v(f, 2);

    write_file(path, "{\"conf\": {\"v\": 3,}\n");
    ms_assert_status(ms_runtime_reload_config(f->rt), MS_ERR_PARSE);
    assert_contains(ms_last_error(), "config.json:1:");
    assert_conf_v(f, 2);

    write_file(path, "{\"conf\": [1, 2]}");
    ms_assert_status(ms_runtime_reload_config(f->rt), MS_ERR_SCHEMA);
    assert_contains(ms_last_error(), "member 'conf' must be an object");
    assert_conf_v(f, 2);

    write_file(path, "{\"conf\": {\"v\": 4, \"reject\": true}}");
    ms_assert_status(ms_runtime_reload_config(f->rt), MS_ERR_SCHEMA);
    assert_contains(ms_last_error(), "conf instance");
    assert_contains(ms_last_error(), "refusing it");
    assert_conf_v(f, 2);

    write_file(path, "{\"conf\": {\"v\": 5}}");
    ms_assert_ok(ms_runtime_reload_config(f->rt));
    assert_conf_v(f, 5);
    /* a component absent from the file goes back to {} */
    write_file(path, "{}");
    ms_assert_ok(ms_runtime_reload_config(f->rt));
    ms_message *r = conf_get(f);
    assert_payload(r, "{}");
    ms_message_unref(r);
}

static void config_file_errors_at_create(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_runtime *rt = NULL;
    char path[400];
    snprintf(path, sizeof path, "%s/bad.json", f->dir);
    write_file(path, "{\n  \"conf\": {\"v\": 1\n}");
    test_opts(f, &o);
    o.config_path = path;
    ms_assert_status(ms_runtime_create(&o, &rt), MS_ERR_PARSE);
    assert_null(rt);
    assert_contains(ms_last_error(), "bad.json:3:");
    o.config_path = "/nonexistent/config.json";
    ms_assert_status(ms_runtime_create(&o, &rt), MS_ERR_IO);
    assert_contains(ms_last_error(), "/nonexistent/config.json");
    /* no file: reload says so */
    o.config_path = NULL;
    start_rt(f, &o);
    ms_assert_status(ms_runtime_reload_config(f->rt), MS_ERR_STATE);
}

static void config_by_message(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    json_t *cfg = json_pack("{s:i}", "v", 10);
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &conf_ops, NULL, NULL));
    ms_assert_ok(ms_runtime_add(f->rt, &conf_ops, NULL, NULL));

    /* the builder's envelope, as a request: ok once both instances took it */
    ms_message *m = NULL, *r = NULL;
    ms_assert_ok(ms_msg_config_change(NULL, "tester", "conf", cfg, &m));
    assert_string_equal(ms_message_subject(m), "mainstack.config.conf");
    ms_assert_ok(ms_bus_request_msg(f->client, m, 3000, &r));
    json_t *j = reply_json(r);
    assert_true(json_is_true(json_object_get(j, "ok")));
    assert_int_equal(json_integer_value(json_object_get(j, "changed")), 2);
    json_decref(j);
    ms_message_unref(r);
    ms_message_unref(m);
    assert_conf_v(f, 10);
    assert_conf_v(f, 10); /* both instances (queue group picks either) */

    /* a bare object */
    r = request_str(f, "mainstack.config.conf", "{\"v\": 11}");
    j = reply_json(r);
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    ms_message_unref(r);
    assert_conf_v(f, 11);

    /* refused by the component: error reply, old config stays */
    r = request_str(f, "mainstack.config.conf", "{\"v\": 12, \"reject\": true}");
    check_error_reply(r, "refusing it", "400");
    ms_message_unref(r);
    assert_conf_v(f, 11);

    /* not JSON, not an object, wrong component named */
    r = request_str(f, "mainstack.config.conf", "{oops");
    check_error_reply(r, "payload:1:", "400");
    ms_message_unref(r);
    r = request_str(f, "mainstack.config.conf", "[1]");
    check_error_reply(r, "must be a JSON object", "400");
    ms_message_unref(r);
    r = request_str(f, "mainstack.config.conf", "{\"component\":\"other\",\"config\":{}}");
    check_error_reply(r, "names component 'other'", "400");
    ms_message_unref(r);
    assert_conf_v(f, 11);

    /* a plain publish (no reply) applies too */
    ms_assert_ok(ms_bus_publish(f->client, "mainstack.config.conf", "{\"v\": 13}", 9));
    int64_t deadline = ms_test_now_ms() + 3000;
    for (;;) {
        r = conf_get(f);
        j = reply_json(r);
        long long v = json_integer_value(json_object_get(j, "v"));
        json_decref(j);
        ms_message_unref(r);
        if (v == 13)
            break;
        assert_true(ms_test_now_ms() < deadline);
        ms_test_sleep_ms(5);
    }

    /* the API */
    json_t *c14 = json_pack("{s:i}", "v", 14);
    ms_assert_ok(ms_runtime_apply_config(f->rt, "conf", c14));
    assert_conf_v(f, 14);
    ms_assert_status(ms_runtime_apply_config(f->rt, "nobody", c14), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_runtime_apply_config(f->rt, "conf", NULL), MS_ERR_INVALID_ARG);
    json_t *arr = json_array();
    ms_assert_status(ms_runtime_apply_config(f->rt, "conf", arr), MS_ERR_SCHEMA);
    json_decref(arr);
    json_decref(c14);
    json_decref(cfg);
}

/* --- ms_runtime_run and signals --------------------------------------------------- */

typedef struct runner {
    ms_runtime *rt;
    ms_status result;
    atomic_int done;
} runner;

static void *run_main(void *arg)
{
    runner *r = arg;
    r->result = ms_runtime_run(r->rt);
    atomic_store(&r->done, 1);
    return NULL;
}

static int handler_installed(void *arg)
{
    struct sigaction cur;
    (void)arg;
    return sigaction(SIGHUP, NULL, &cur) == 0 && cur.sa_handler != SIG_DFL;
}

static int runner_done(void *arg)
{
    return atomic_load(&((runner *)arg)->done);
}

static void run_handles_signals(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    char path[400];
    pthread_t t;
    snprintf(path, sizeof path, "%s/config.json", f->dir);
    write_file(path, "{\"conf\": {\"v\": 1}}");
    test_opts(f, &o);
    o.config_path = path;
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &conf_ops, NULL, NULL));

    runner r = {.rt = f->rt};
    assert_int_equal(pthread_create(&t, NULL, run_main, &r), 0);
    assert_true(ms_test_wait_until(handler_installed, NULL, 3000));
    /* a second run at the same time is refused */
    ms_assert_status(ms_runtime_run(f->rt), MS_ERR_STATE);

    write_file(path, "{\"conf\": {\"v\": 2}}");
    assert_int_equal(kill(getpid(), SIGHUP), 0);
    int64_t deadline = ms_test_now_ms() + 3000;
    for (;;) {
        ms_message *m = conf_get(f);
        json_t *j = reply_json(m);
        long long v = json_integer_value(json_object_get(j, "v"));
        json_decref(j);
        ms_message_unref(m);
        if (v == 2)
            break;
        assert_true(ms_test_now_ms() < deadline);
        ms_test_sleep_ms(5);
    }
    assert_int_equal(kill(getpid(), SIGTERM), 0);
    assert_true(ms_test_wait_until(runner_done, &r, 10000));
    pthread_join(t, NULL);
    ms_assert_ok(r.result);
    /* the handlers are gone again, and the runtime is shut down */
    struct sigaction cur;
    assert_int_equal(sigaction(SIGTERM, NULL, &cur), 0);
    assert_true(cur.sa_handler == SIG_DFL);
    ms_assert_status(ms_runtime_run(f->rt), MS_ERR_STATE);
    ms_assert_ok(ms_runtime_shutdown(f->rt, 100)); /* idempotent */
    ms_assert_status(ms_runtime_add(f->rt, &conf_ops, NULL, NULL), MS_ERR_STATE);
}

static void request_stop_before_run(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, NULL));
    ms_runtime_request_stop(f->rt); /* remembered */
    ms_assert_ok(ms_runtime_run(f->rt));
}

/* --- shutdown and removal ---------------------------------------------------------- */

/* Requests flood two slow instances, then the runtime shuts down with the
 * given deadline. Every request that was handled got its answer; with a
 * short deadline the rest of those accepted get error replies. */
static void shutdown_with_load(fixture *f, int deadline_ms)
{
    ms_runtime_options o;
    enum { N = 400 };
    test_opts(f, &o);
    o.workers = 2;
    start_rt(f, &o);
    atomic_store(&tc_slow_handled, 0);
    ms_assert_ok(ms_runtime_add(f->rt, &slow_ops, NULL, NULL));
    ms_assert_ok(ms_runtime_add(f->rt, &slow_ops, NULL, NULL));

    char *inbox = NULL;
    char pattern[160], reply[160];
    ms_assert_ok(ms_bus_new_inbox(f->client, &inbox));
    snprintf(pattern, sizeof pattern, "%s.*", inbox);
    collector *k = collect(f, pattern);
    for (int i = 0; i < N; i++) {
        snprintf(reply, sizeof reply, "%s.%d", inbox, i);
        ms_assert_ok(ms_bus_publish_reply(f->client, "component.slow.op", reply, "x", 1));
        if (i == N / 4) {
            ms_assert_ok(ms_bus_flush(f->client, 5000));
            ms_test_sleep_ms(20); /* let some be handled */
        }
    }
    ms_assert_ok(ms_bus_flush(f->client, 5000));
    /* shut down while most requests are still queued */
    ms_status s = ms_runtime_shutdown(f->rt, deadline_ms);
    if (deadline_ms >= 5000)
        ms_assert_ok(s);
    else
        ms_assert_status(s, MS_ERR_TIMEOUT);
    int handled = atomic_load(&tc_slow_handled);
    int ok = 0, errors = 0;
    int64_t deadline = ms_test_now_ms() + 3000;
    for (;;) {
        ok = errors = 0;
        pthread_mutex_lock(&k->mu);
        for (int i = 0; i < k->n; i++) {
            if (ms_message_header(k->msgs[i], "Nats-Service-Error") != NULL)
                errors++;
            else
                ok++;
        }
        pthread_mutex_unlock(&k->mu);
        if ((ok >= handled && (f->server != NULL || ok + errors >= N)) ||
            ms_test_now_ms() >= deadline)
            break;
        ms_test_sleep_ms(5);
    }
    assert_true(handled > 0);
    /* every handled request got its answer, none twice */
    assert_int_equal(ok, handled);
    assert_true(ok + errors <= N);
    if (f->server == NULL) /* inproc: everything was accepted, so all answered */
        assert_int_equal(ok + errors, N);
    if (deadline_ms < 5000) {
        assert_true(errors > 0);
        pthread_mutex_lock(&k->mu);
        for (int i = 0; i < k->n; i++) {
            const char *e = ms_message_header(k->msgs[i], "Nats-Service-Error");
            if (e != NULL) {
                assert_contains(e, "stopped before this message was handled");
                assert_string_equal(ms_message_header(k->msgs[i], "Nats-Service-Error-Code"),
                                    "503");
                break;
            }
        }
        pthread_mutex_unlock(&k->mu);
    }
    collect_free(k);
    free(inbox);
}

static void shutdown_under_load(void **state)
{
    shutdown_with_load(*state, 10000);
}

static void shutdown_deadline_under_load(void **state)
{
    shutdown_with_load(*state, 30);
}

static int gate_has_entered(void *arg)
{
    (void)arg;
    return atomic_load(&gate_entered) > 0;
}

/* A full mailbox: the delivery thread waits (bounded), then a request gets
 * a 503 error reply and an event is counted as dropped; nothing silent. */
static void mailbox_full_refuses(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL;
    test_opts(f, &o);
    o.mailbox_capacity = 1;
    o.mailbox_full_timeout_ms = 20;
    start_rt(f, &o);
    atomic_store(&gate_open, 0);
    atomic_store(&gate_entered, 0);
    ms_assert_ok(ms_runtime_add(f->rt, &gate_ops, NULL, &inst));

    collector *first = fire(f, "component.gate.op", "1", 1);
    assert_true(ms_test_wait_until(gate_has_entered, NULL, 3000)); /* running: mailbox empty */
    collector *k = fire(f, "component.gate.op", "x", 4);          /* 1 queued, 3 refused */
    assert_int_equal(collected_wait(k, 3, 3000), 3);
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(ms_message_header(k->msgs[i], "Nats-Service-Error-Code"), "503");
        assert_contains(ms_message_header(k->msgs[i], "Nats-Service-Error"), "mailbox full");
    }
    pthread_mutex_unlock(&k->mu);
    /* events on a full mailbox are counted as dropped */
    ms_assert_ok(ms_bus_publish(f->client, "component.gate.op", "e", 1));
    ms_assert_ok(ms_bus_flush(f->client, 3000));
    int64_t deadline = ms_test_now_ms() + 3000;
    ms_instance_stats st;
    do {
        ms_test_sleep_ms(5);
        ms_assert_ok(ms_instance_get_stats(inst, &st));
    } while (st.dropped < 1 && ms_test_now_ms() < deadline);
    assert_int_equal(st.dropped, 1);
    assert_int_equal(st.num_errors, 4);

    atomic_store(&gate_open, 1);
    assert_int_equal(collected_wait(first, 1, 3000), 1);
    assert_int_equal(collected_wait(k, 4, 3000), 4);
    pthread_mutex_lock(&k->mu);
    assert_null(ms_message_header(k->msgs[3], "Nats-Service-Error"));
    assert_payload(k->msgs[3], "passed");
    pthread_mutex_unlock(&k->mu);
    collect_free(first);
    collect_free(k);
}

static void remove_instance(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *a = NULL, *b = NULL;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, &a));
    ms_assert_ok(ms_runtime_add(f->rt, &flaky_ops, NULL, &b));
    ms_assert_ok(ms_runtime_remove(f->rt, a, 2000));
    ms_assert_status(ms_runtime_remove(f->rt, a, 2000), MS_ERR_NOT_FOUND);
    ms_message *r = NULL;
    ms_status s = ms_bus_request(f->client, "component.recho.echo", "x", 1, 300, &r);
    if (s != MS_ERR_NO_RESPONDERS && s != MS_ERR_TIMEOUT)
        fail_msg("request after remove: %s", ms_status_name(s));
    ms_instance **list = NULL;
    size_t n = 0;
    ms_assert_ok(ms_runtime_instances(f->rt, &list, &n));
    assert_int_equal(n, 1);
    assert_ptr_equal(list[0], b);
    free(list);
}

static void testable_and_ctx(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_instance *inst = NULL, *other = NULL;
    ms_test_report *rep = NULL;
    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_ok(ms_runtime_add(f->rt, &testable_ops, NULL, &inst));
    ms_assert_ok(ms_runtime_add(f->rt, &recho_ops, NULL, &other));
    ms_assert_ok(ms_test_report_create(&rep));
    ms_assert_ok(ms_instance_run_tests(inst, rep, 3000));
    assert_int_equal(ms_test_report_count(rep), 2);
    assert_int_equal(ms_test_report_failed(rep), 1);
    assert_string_equal(ms_test_report_at(rep, 0)->output, "2 + 2 = 4");
    assert_string_equal(ms_test_report_at(rep, 1)->name, "fails");
    ms_assert_status(ms_instance_run_tests(other, rep, 3000), MS_ERR_UNSUPPORTED);
    ms_assert_status(ms_instance_run_tests(NULL, rep, 3000), MS_ERR_INVALID_ARG);
    ms_test_report_destroy(rep);

    /* the context: name, id, data directory created under the data root */
    ms_message *r = request_str(f, "component.testable.info", "");
    char want[600];
    snprintf(want, sizeof want, "testable|%s|%s/testable", ms_instance_id(inst), f->dir);
    assert_payload(r, want);
    ms_message_unref(r);
    char dir[400];
    snprintf(dir, sizeof dir, "%s/testable", f->dir);
    assert_int_equal(access(dir, W_OK), 0);
}

static void bad_arguments(void **state)
{
    fixture *f = *state;
    ms_runtime_options o;
    ms_runtime *rt = NULL;
    ms_instance_options io;

    ms_assert_status(ms_runtime_create(NULL, &rt), MS_ERR_INVALID_ARG);
    test_opts(f, &o);
    ms_assert_status(ms_runtime_create(&o, NULL), MS_ERR_INVALID_ARG);
    o.mailbox_capacity = 0;
    ms_assert_status(ms_runtime_create(&o, &rt), MS_ERR_INVALID_ARG);
    assert_contains(ms_last_error(), "mailbox_capacity");
    test_opts(f, &o);
    o.health_timeout_ms = 0;
    ms_assert_status(ms_runtime_create(&o, &rt), MS_ERR_INVALID_ARG);
    assert_contains(ms_last_error(), "health_timeout_ms");
    test_opts(f, &o);
    o.restart = (ms_restart_type)7;
    ms_assert_status(ms_runtime_create(&o, &rt), MS_ERR_INVALID_ARG);
    test_opts(f, &o);
    o.url = "ftp://nowhere";
    ms_assert_status(ms_runtime_create(&o, &rt), MS_ERR_INVALID_ARG);
    assert_null(rt);

    test_opts(f, &o);
    start_rt(f, &o);
    ms_assert_status(ms_runtime_add(NULL, &recho_ops, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_add(f->rt, NULL, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_component_ops bad = recho_ops;
    bad.metadata.name = "Bad Name";
    ms_assert_status(ms_runtime_add(f->rt, &bad, NULL, NULL), MS_ERR_SCHEMA);
    bad = recho_ops;
    bad.abi_version = 2;
    ms_assert_status(ms_runtime_add(f->rt, &bad, NULL, NULL), MS_ERR_UNSUPPORTED);
    ms_instance_options_init(f->rt, &io);
    json_t *cfg = json_array();
    io.config = cfg;
    ms_assert_status(ms_runtime_add(f->rt, &recho_ops, &io, NULL), MS_ERR_INVALID_ARG);
    assert_contains(ms_last_error(), "config must be a JSON object");
    json_decref(cfg);
    ms_instance_options_init(f->rt, &io);
    json_t *md = json_pack("{s:i}", "n", 1);
    io.metadata = md;
    ms_assert_status(ms_runtime_add(f->rt, &recho_ops, &io, NULL), MS_ERR_INVALID_ARG);
    assert_contains(ms_last_error(), "metadata 'n' must be a string");
    json_decref(md);
    ms_assert_status(ms_runtime_load(f->rt, NULL, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_remove(f->rt, NULL, 0), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_reload_config(NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_shutdown(NULL, 0), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_run(NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_runtime_instances(f->rt, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_instance_get_stats(NULL, NULL), MS_ERR_INVALID_ARG);
    ms_runtime_request_stop(NULL);
    ms_runtime_destroy(NULL);
    assert_null(ms_runtime_bus(NULL));

    ms_restart_type t;
    ms_assert_ok(ms_restart_type_parse("Transient", &t));
    assert_int_equal(t, MS_RESTART_TRANSIENT);
    ms_assert_status(ms_restart_type_parse("sometimes", &t), MS_ERR_PARSE);
    assert_string_equal(ms_restart_type_str(MS_RESTART_TEMPORARY), "temporary");
    assert_string_equal(ms_instance_state_str(MS_INSTANCE_FAILED), "failed");
}

/* --- both transports ----------------------------------------------------------------- */

#define BOTH(name)                                                                               \
    static void nats_##name(void **s) { name(s); }                                               \
    static void inproc_##name(void **s) { name(s); }

BOTH(echo_request)
BOTH(borrowed_bus)
BOTH(serial_one_at_a_time)
BOTH(reentrant_runs_concurrently)
BOTH(queue_group_balances)
BOTH(fanout_reaches_every_instance)
BOTH(error_replies_and_stats)
BOTH(failing_plugin_answers_errors)
BOTH(config_by_message)
BOTH(shutdown_under_load)
BOTH(shutdown_deadline_under_load)
BOTH(remove_instance)
BOTH(mailbox_full_refuses)
BOTH(inline_dispatch)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(nats_echo_request, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_echo_request, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_borrowed_bus, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_borrowed_bus, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_serial_one_at_a_time, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_serial_one_at_a_time, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_reentrant_runs_concurrently, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_reentrant_runs_concurrently, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_queue_group_balances, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_queue_group_balances, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_fanout_reaches_every_instance, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_fanout_reaches_every_instance, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_error_replies_and_stats, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_error_replies_and_stats, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_failing_plugin_answers_errors, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_failing_plugin_answers_errors, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_config_by_message, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_config_by_message, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_shutdown_under_load, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_shutdown_under_load, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_shutdown_deadline_under_load, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_shutdown_deadline_under_load, setup_inproc,
                                        teardown),
        cmocka_unit_test_setup_teardown(nats_remove_instance, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_remove_instance, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_mailbox_full_refuses, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_mailbox_full_refuses, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(nats_inline_dispatch, setup_nats, teardown),
        cmocka_unit_test_setup_teardown(inproc_inline_dispatch, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(plugin_load_errors, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(load_by_name, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(config_file_reload, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(config_file_errors_at_create, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(run_handles_signals, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(request_stop_before_run, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(testable_and_ctx, setup_inproc, teardown),
        cmocka_unit_test_setup_teardown(bad_arguments, setup_inproc, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
