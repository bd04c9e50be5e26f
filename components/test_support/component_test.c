/*
 * component_test.c - hosting the real component plugins in a test: a
 * runtime on a chosen transport with a temporary data root, a client
 * connection, request helpers that check the NATS Services error headers,
 * a message sink and JSON-lines file helpers. See component_test.h.
 */
#include "component_test.h"

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nats_fixture.h"

#define REQUEST_TIMEOUT_MS 5000

/* The host of the running test, for ct_teardown (tests run one at a time). */
static ct_host *current;

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");

    if (f == NULL)
        fail_msg("cannot write %s", path);
    fputs(text, f);
    if (fclose(f) != 0)
        fail_msg("cannot write %s", path);
}

ct_host *ct_host_start(ct_transport t, const char *config)
{
    static int counter;
    ms_runtime_options o;
    ct_host *h = calloc(1, sizeof *h);
    const char *tmp = getenv("TMPDIR");

    assert_non_null(h);
    h->transport = t;
    snprintf(h->root, sizeof h->root, "%s/ms-component-test.XXXXXX",
             tmp && tmp[0] && strlen(tmp) < 200 ? tmp : "/tmp");
    if (mkdtemp(h->root) == NULL)
        fail_msg("mkdtemp %s", h->root);
    current = h; /* from here on, ct_teardown cleans up after a failure */
    snprintf(h->data_root, sizeof h->data_root, "%s/data", h->root);
    snprintf(h->config_path, sizeof h->config_path, "%s/config.json", h->root);
    write_file(h->config_path, config ? config : "{}");
    if (t == CT_NATS) {
        ms_assert_ok(ms_nats_server_start(NULL, &h->server));
        snprintf(h->url, sizeof h->url, "%s", ms_nats_server_url(h->server));
    } else {
        snprintf(h->url, sizeof h->url, "inproc://ct-%d-%d", (int)getpid(), ++counter);
    }
    ms_runtime_options_init(&o);
    o.url = h->url;
    o.host_name = "component-test";
    o.workers = 2;
    o.config_path = h->config_path;
    o.data_root = h->data_root;
    o.component_path = MS_COMPONENTS_DIR;
    o.health_interval_ms = 0; /* the tests check health when they choose */
    o.restart_delay_ms = 10;
    o.shutdown_timeout_ms = 5000;
    ms_assert_ok(ms_runtime_create(&o, &h->rt));
    ms_assert_ok(ms_bus_connect_url(h->url, &h->client));
    return h;
}

static void wait_serving(ct_host *h, ms_instance *inst)
{
    ms_instance_stats st;

    ms_assert_ok(ms_instance_get_stats(inst, &st));
    if (st.state != MS_INSTANCE_RUNNING)
        fail_msg("%s is %s, not running: %s", ms_instance_component(inst),
                 ms_instance_state_str(st.state), st.last_error);
    /* The subscriptions have reached the server once a flush returns. */
    ms_assert_ok(ms_bus_flush(ms_runtime_bus(h->rt), REQUEST_TIMEOUT_MS));
    ms_assert_ok(ms_bus_flush(h->client, REQUEST_TIMEOUT_MS));
}

ms_instance *ct_load(ct_host *h, const char *component)
{
    ms_instance *inst = NULL;

    ms_assert_ok(ms_runtime_load(h->rt, component, NULL, &inst));
    assert_non_null(inst);
    wait_serving(h, inst);
    return inst;
}

ms_instance *ct_reload(ct_host *h, ms_instance *inst, const char *component)
{
    ms_assert_ok(ms_runtime_remove(h->rt, inst, 5000));
    return ct_load(h, component);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void ct_host_stop(ct_host *h)
{
    if (h == NULL)
        return;
    if (h == current)
        current = NULL;
    ms_runtime_destroy(h->rt);
    ms_bus_destroy(h->client);
    ms_nats_server_stop(h->server);
    (void)nftw(h->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(h);
}

int ct_teardown(void **state)
{
    (void)state;
    ct_host_stop(current);
    return 0;
}

void ct_data_path(const ct_host *h, const char *component, const char *file, char *out, size_t size)
{
    snprintf(out, size, "%s/%s/%s", h->data_root, component, file);
}

ms_message *ct_request(ct_host *h, const char *subject, const char *json)
{
    ms_message *reply = NULL;

    ms_assert_ok(ms_bus_request(h->client, subject, json, json ? strlen(json) : 0,
                                REQUEST_TIMEOUT_MS, &reply));
    assert_non_null(reply);
    return reply;
}

json_t *ct_request_ok(ct_host *h, const char *subject, const char *json)
{
    ms_message *reply = ct_request(h, subject, json);
    const char *err = ms_message_header(reply, "Nats-Service-Error");
    json_t *body = NULL;

    if (err != NULL) {
        char copy[512];
        snprintf(copy, sizeof copy, "%s", err);
        ms_message_unref(reply);
        fail_msg("%s %s: error reply: %s", subject, json ? json : "", copy);
    }
    ms_assert_ok(ms_message_json(reply, &body));
    ms_message_unref(reply);
    return body;
}

int ct_request_error(ct_host *h, const char *subject, const char *json, char *detail, size_t size)
{
    ms_message *reply = ct_request(h, subject, json);
    const char *err = ms_message_header(reply, "Nats-Service-Error");
    const char *code = ms_message_header(reply, "Nats-Service-Error-Code");
    int c;

    if (err == NULL || code == NULL) {
        ms_message_unref(reply);
        fail_msg("%s %s: a success reply where an error was due", subject, json ? json : "");
    }
    c = atoi(code);
    if (detail != NULL)
        snprintf(detail, size, "%s", err);
    ms_message_unref(reply);
    return c;
}

struct ct_sink {
    ms_subscription *sub;
    pthread_mutex_t mu; /* the handler runs on a delivery thread */
    ms_message **msgs;
    size_t count, cap;
};

static void sink_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ct_sink *s = closure;

    (void)bus;
    (void)sub;
    pthread_mutex_lock(&s->mu);
    if (s->count == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        ms_message **grown = realloc(s->msgs, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&s->mu);
            return;
        }
        s->msgs = grown;
        s->cap = cap;
    }
    s->msgs[s->count++] = ms_message_ref((ms_message *)msg);
    pthread_mutex_unlock(&s->mu);
}

ct_sink *ct_sink_start(ct_host *h, const char *pattern)
{
    ct_sink *s = calloc(1, sizeof *s);

    assert_non_null(s);
    pthread_mutex_init(&s->mu, NULL);
    ms_assert_ok(ms_bus_subscribe(h->client, pattern, NULL, sink_handler, s, &s->sub));
    ms_assert_ok(ms_bus_flush(h->client, REQUEST_TIMEOUT_MS));
    return s;
}

bool ct_sink_wait(ct_sink *s, size_t n, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;

    while (ct_sink_count(s) < n) {
        if (ms_test_now_ms() >= deadline)
            return false;
        ms_test_sleep_ms(2);
    }
    return true;
}

size_t ct_sink_count(ct_sink *s)
{
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->count;
    pthread_mutex_unlock(&s->mu);
    return n;
}

ms_message *ct_sink_get(ct_sink *s, size_t i)
{
    ms_message *m = NULL;

    pthread_mutex_lock(&s->mu);
    if (i < s->count)
        m = ms_message_ref(s->msgs[i]);
    pthread_mutex_unlock(&s->mu);
    return m;
}

void ct_sink_stop(ct_sink *s)
{
    if (s == NULL)
        return;
    (void)ms_subscription_unsubscribe(s->sub);
    for (size_t i = 0; i < s->count; i++)
        ms_message_unref(s->msgs[i]);
    free(s->msgs);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int ct_file_lines(const char *path)
{
    FILE *f = fopen(path, "re");
    int n = 0, c;

    if (f == NULL)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

bool ct_wait_lines(const char *path, int n, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;

    while (ct_file_lines(path) < n) {
        if (ms_test_now_ms() >= deadline)
            return false;
        ms_test_sleep_ms(2);
    }
    return true;
}

json_t *ct_file_line_json(const char *path, int i)
{
    FILE *f = fopen(path, "re");
    char *line = NULL;
    size_t cap = 0;
    json_t *j = NULL;

    if (f == NULL)
        return NULL;
    for (int k = 0; getline(&line, &cap, f) > 0; k++) {
        if (k == i) {
            j = json_loads(line, 0, NULL);
            break;
        }
    }
    free(line);
    fclose(f);
    return j;
}
