/*
 * test_bus_nats.c - what only the NATS transport does, against a real
 * nats-server started by the fixture: connect errors and their bounds,
 * NATS_URL, server lists, authentication, the server's max_payload, reconnect
 * after the server was killed and restarted, interoperability with plain
 * libnats clients (headers both ways, request/reply), slow consumers, and
 * unsubscribing while messages stream in. The behaviour shared with inproc is
 * covered by the transport conformance suite.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nats/nats.h>

#include "core/alloc.h"
#include "ms_test.h"
#include "nats_fixture.h"

#define WAIT_MS 5000 /* bound of every wait for something asynchronous */

/* --- helpers ---------------------------------------------------------------- */

static int server_up(void **state)
{
    ms_nats_server *srv = NULL;
    if (ms_nats_server_start(NULL, &srv) != MS_OK) {
        print_error("nats-server did not start: %s\n", ms_last_error());
        return -1;
    }
    *state = srv;
    return 0;
}

static int server_down(void **state)
{
    ms_nats_server_stop(*state);
    return 0;
}

/* A loopback port nobody listens on (bound, read, released). */
static int dead_port(void)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Messages received by a handler: a count and the last one (a reference). */
typedef struct inbox {
    pthread_mutex_t mu;
    atomic_int count;
    ms_message *last;
} inbox;

static void inbox_init(inbox *ib)
{
    pthread_mutex_init(&ib->mu, NULL);
    atomic_init(&ib->count, 0);
    ib->last = NULL;
}

static void inbox_reset(inbox *ib)
{
    ms_message_unref(ib->last);
    ib->last = NULL;
    pthread_mutex_destroy(&ib->mu);
}

static void inbox_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    inbox *ib = closure;
    (void)bus;
    (void)sub;
    pthread_mutex_lock(&ib->mu);
    ms_message_unref(ib->last);
    ib->last = ms_message_ref((ms_message *)msg);
    pthread_mutex_unlock(&ib->mu);
    atomic_fetch_add(&ib->count, 1);
}

typedef struct count_at_least {
    atomic_int *counter;
    int n;
} count_at_least;

static int reached(void *arg)
{
    count_at_least *c = arg;
    return atomic_load(c->counter) >= c->n;
}

static int wait_count(atomic_int *counter, int n)
{
    count_at_least c = {counter, n};
    return ms_test_wait_until(reached, &c, WAIT_MS);
}

/* Connection events seen by a bus. */
typedef struct events {
    atomic_int count[MS_BUS_ASYNC_ERROR + 1];
    pthread_mutex_t mu;
    char last[MS_BUS_ASYNC_ERROR + 1][512];
} events;

static void events_init(events *e)
{
    memset(e, 0, sizeof *e);
    for (int i = 0; i <= MS_BUS_ASYNC_ERROR; i++)
        atomic_init(&e->count[i], 0);
    pthread_mutex_init(&e->mu, NULL);
}

static void on_event(ms_bus *bus, ms_bus_event ev, const char *detail, void *closure)
{
    events *e = closure;
    (void)bus;
    pthread_mutex_lock(&e->mu);
    snprintf(e->last[ev], sizeof e->last[ev], "%s", detail);
    pthread_mutex_unlock(&e->mu);
    atomic_fetch_add(&e->count[ev], 1);
}

static ms_status connect_to(const char *url, ms_bus **out)
{
    ms_bus_options o;
    ms_bus_options_init(&o);
    o.url = url;
    o.connect_timeout_ms = 1000;
    return ms_bus_connect(&o, out);
}

static int bus_connected(void *arg)
{
    return ms_bus_is_connected(arg);
}

static int bus_disconnected(void *arg)
{
    return !ms_bus_is_connected(arg);
}

/* --- the fixture itself -------------------------------------------------------- */

static void fixture_restart_keeps_port_and_stop_cleans_up(void **state)
{
    ms_nats_server_opts so = {.jetstream = 1, .max_payload = 4096};
    ms_nats_server *srv = NULL;
    ms_bus *bus = NULL;
    char dir[512];
    (void)state;

    ms_assert_ok(ms_nats_server_start(&so, &srv));
    snprintf(dir, sizeof dir, "%s", ms_nats_server_dir(srv));
    assert_int_equal(access(dir, F_OK), 0);
    int port = ms_nats_server_port(srv);
    assert_true(port > 0);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    assert_int_equal(ms_bus_max_payload(bus), 4096);
    ms_bus_destroy(bus);
    bus = NULL;

    ms_assert_ok(ms_nats_server_kill(srv));
    ms_assert_status(ms_nats_server_kill(srv), MS_ERR_STATE);
    ms_assert_status(connect_to(ms_nats_server_url(srv), &bus), MS_ERR_CONNECTION);
    ms_assert_ok(ms_nats_server_restart(srv));
    assert_int_equal(ms_nats_server_port(srv), port);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_bus_destroy(bus);

    ms_nats_server_stop(srv);
    assert_int_equal(access(dir, F_OK), -1);
    ms_nats_server_stop(NULL);
}

static void fixture_rejects_bad_options(void **state)
{
    ms_nats_server_opts half = {.user = "only-user"};
    ms_nats_server_opts both = {.user = "u", .password = "p", .token = "t"};
    ms_nats_server *srv = NULL;
    (void)state;

    ms_assert_status(ms_nats_server_start(&half, &srv), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "password"));
    ms_assert_status(ms_nats_server_start(&both, &srv), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_nats_server_start(NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_nats_server_kill(NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_nats_server_restart(NULL), MS_ERR_INVALID_ARG);
    assert_null(srv);
    assert_null(ms_nats_server_url(NULL));
}

/* --- connecting ------------------------------------------------------------- */

static void connect_dead_port_fails_within_timeout(void **state)
{
    char url[64];
    ms_bus_options o;
    ms_bus *bus = NULL;
    (void)state;

    snprintf(url, sizeof url, "nats://127.0.0.1:%d", dead_port());
    ms_bus_options_init(&o);
    o.url = url;
    o.connect_timeout_ms = 1000;
    int64_t t0 = ms_test_now_ms();
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_CONNECTION);
    int64_t took = ms_test_now_ms() - t0;
    assert_null(bus);
    /* Correctness bound, not speed: the call honours its connect timeout. */
    assert_true(took < o.connect_timeout_ms + 2000);
    assert_non_null(strstr(ms_last_error(), url));
}

/* A listener that accepts TCP but never says INFO: the connect timeout is
 * what ends the attempt. */
static void connect_silent_server_times_out(void **state)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    char url[64];
    ms_bus_options o;
    ms_bus *bus = NULL;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    (void)state;

    assert_true(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", ntohs(a.sin_port));

    ms_bus_options_init(&o);
    o.url = url;
    o.connect_timeout_ms = 300;
    int64_t t0 = ms_test_now_ms();
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_CONNECTION);
    int64_t took = ms_test_now_ms() - t0;
    close(fd);
    assert_null(bus);
    assert_true(took < o.connect_timeout_ms + 2000);
    assert_non_null(strstr(ms_last_error(), "300 ms"));
}

static void nats_url_env_used_when_url_null(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus_options o;
    ms_bus *bus = NULL;
    ms_message *reply = NULL;

    assert_int_equal(setenv("NATS_URL", ms_nats_server_url(srv), 1), 0);
    ms_bus_options_init(&o);
    o.url = NULL;
    ms_assert_ok(ms_bus_connect(&o, &bus));
    unsetenv("NATS_URL");
    assert_string_equal(ms_bus_transport(bus), "nats");
    assert_true(ms_bus_is_connected(bus));
    /* Really talking to that server: nobody answers there. */
    ms_assert_status(ms_bus_request(bus, "env.nobody", "x", 1, 2000, &reply), MS_ERR_NO_RESPONDERS);
    ms_bus_destroy(bus);
}

static void url_null_without_env_is_invalid(void **state)
{
    ms_bus_options o;
    ms_bus *bus = NULL;
    (void)state;

    unsetenv("NATS_URL");
    ms_bus_options_init(&o);
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_INVALID_ARG);
    assert_null(bus);
    assert_non_null(strstr(ms_last_error(), "NATS_URL"));
    ms_assert_status(ms_bus_connect_url(NULL, &bus), MS_ERR_INVALID_ARG);
    assert_null(bus);
}

static void url_list_with_dead_first_server_connects(void **state)
{
    ms_nats_server *srv = *state;
    char url[256];
    int dead = dead_port();

    /* libnats shuffles the list: several rounds make "dead first" certain
     * enough (each round 1/2). */
    for (int i = 0; i < 6; i++) {
        ms_bus *bus = NULL;
        snprintf(url, sizeof url, "nats://127.0.0.1:%d,%s%s", dead, i % 2 ? " " : "",
                 ms_nats_server_url(srv));
        ms_assert_ok(connect_to(url, &bus));
        assert_true(ms_bus_is_connected(bus));
        ms_assert_ok(ms_bus_flush(bus, 2000));
        ms_bus_destroy(bus);
    }
}

static void url_list_bad_entries_are_invalid(void **state)
{
    ms_bus *bus = NULL;
    (void)state;

    ms_assert_status(connect_to("nats://127.0.0.1:1,,nats://127.0.0.1:2", &bus),
                     MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "server 2"));
    ms_assert_status(connect_to("nats://127.0.0.1:1,inproc://x", &bus), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "inproc://x"));
    ms_assert_status(connect_to("nats://127.0.0.1:1,", &bus), MS_ERR_INVALID_ARG);
    assert_null(bus);
}

static void auth_user_password(void **state)
{
    ms_nats_server_opts so = {.user = "alice", .password = "s3cret"};
    ms_nats_server *srv = NULL;
    ms_bus_options o;
    ms_bus *bus = NULL;
    char url[256];
    (void)state;

    ms_assert_ok(ms_nats_server_start(&so, &srv));
    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.user = "alice";
    o.password = "s3cret";
    ms_assert_ok(ms_bus_connect(&o, &bus));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    ms_bus_destroy(bus);
    bus = NULL;

    o.password = "wrong";
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_AUTH);
    assert_null(bus);
    assert_null(strstr(ms_last_error(), "wrong"));

    o.user = o.password = NULL;
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_AUTH);

    /* Credentials in the URL work too, and never show up in errors. */
    snprintf(url, sizeof url, "nats://alice:s3cret@127.0.0.1:%d", ms_nats_server_port(srv));
    ms_assert_ok(connect_to(url, &bus));
    ms_bus_destroy(bus);
    bus = NULL;
    snprintf(url, sizeof url, "nats://alice:badpass@127.0.0.1:%d", ms_nats_server_port(srv));
    ms_assert_status(connect_to(url, &bus), MS_ERR_AUTH);
    assert_null(strstr(ms_last_error(), "badpass"));
    ms_nats_server_stop(srv);
}

static void auth_token(void **state)
{
    ms_nats_server_opts so = {.token = "t0ken"};
    ms_nats_server *srv = NULL;
    ms_bus_options o;
    ms_bus *bus = NULL;
    (void)state;

    ms_assert_ok(ms_nats_server_start(&so, &srv));
    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.token = "t0ken";
    ms_assert_ok(ms_bus_connect(&o, &bus));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    ms_bus_destroy(bus);
    bus = NULL;

    o.token = "not-it";
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_AUTH);
    assert_null(bus);
    assert_non_null(strstr(ms_last_error(), "credentials"));
    ms_nats_server_stop(srv);
}

static void unusable_files_and_secrets_are_refused(void **state)
{
    ms_bus_options o;
    ms_bus *bus = NULL;
    char url[64];
    (void)state;

    snprintf(url, sizeof url, "nats://127.0.0.1:%d", dead_port());
    ms_bus_options_init(&o);
    o.url = url;
    o.creds_file = "/nonexistent/mainstack/user.creds";
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_IO);
    assert_non_null(strstr(ms_last_error(), "/nonexistent/mainstack/user.creds"));

    ms_bus_options_init(&o);
    o.url = url;
    o.tls_ca = "/nonexistent/mainstack/ca.pem";
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_IO);
    assert_non_null(strstr(ms_last_error(), "ca.pem"));

    /* libnats would send these unescaped: refused before connecting. */
    ms_bus_options_init(&o);
    o.url = url;
    o.user = "bob";
    o.password = "pa\"ss";
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "password"));
    assert_null(strstr(ms_last_error(), "pa\"ss"));
    o.user = o.password = NULL;
    o.token = "back\\slash";
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "token"));

    ms_bus_options_init(&o);
    o.url = url;
    o.tls_cert = "/etc/hostname";
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_INVALID_ARG);
    assert_non_null(strstr(ms_last_error(), "tls_key"));
    assert_null(bus);
}

static void tls_required_against_plain_server_fails(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus_options o;
    ms_bus *bus = NULL;
    char url[96];

    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.tls_required = true;
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_CONNECTION);
    assert_non_null(strstr(ms_last_error(), "Secure Connection"));
    assert_non_null(strstr(ms_last_error(), ms_nats_server_url(srv)));

    /* The tls:// scheme asks for TLS as well. */
    snprintf(url, sizeof url, "tls://127.0.0.1:%d", ms_nats_server_port(srv));
    ms_assert_status(connect_to(url, &bus), MS_ERR_CONNECTION);
    assert_null(bus);
}

static void invalid_creds_or_ca_file_is_io_error(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus_options o;
    ms_bus *bus = NULL;
    char path[] = "/tmp/ms-nats-test-XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a creds file\n", 17), 17);
    close(fd);
    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.creds_file = path;
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_IO);
    assert_non_null(strstr(ms_last_error(), path));

    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.tls_ca = path;
    ms_assert_status(ms_bus_connect(&o, &bus), MS_ERR_IO);
    assert_non_null(strstr(ms_last_error(), path));
    unlink(path);
    assert_null(bus);
}

/* With retry_on_failed_connect the bus is returned at once and connects
 * when the server appears; what was published meanwhile is delivered. */
static void retry_on_failed_connect_connects_later(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus_options o;
    ms_bus *bus = NULL;
    events ev;
    inbox ib;

    events_init(&ev);
    inbox_init(&ib);
    ms_assert_ok(ms_nats_server_kill(srv));
    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.retry_on_failed_connect = true;
    o.reconnect_wait_ms = 50;
    o.on_event = on_event;
    o.event_closure = &ev;
    ms_assert_ok(ms_bus_connect(&o, &bus));
    assert_false(ms_bus_is_connected(bus));
    assert_int_equal(ms_bus_max_payload(bus), 1024 * 1024);
    ms_assert_ok(ms_bus_subscribe(bus, "later.x", NULL, inbox_handler, &ib, NULL));
    ms_assert_ok(ms_bus_publish(bus, "later.x", "early", 5));

    ms_assert_ok(ms_nats_server_restart(srv));
    assert_true(ms_test_wait_until(bus_connected, bus, WAIT_MS));
    assert_true(wait_count(&ev.count[MS_BUS_RECONNECTED], 1));
    assert_true(wait_count(&ib.count, 1));
    pthread_mutex_lock(&ib.mu);
    assert_memory_equal(ms_message_data(ib.last), "early", 5);
    pthread_mutex_unlock(&ib.mu);
    ms_bus_destroy(bus);
    inbox_reset(&ib);
}

/* --- payload limit ------------------------------------------------------------ */

static void payload_over_server_max_is_too_large(void **state)
{
    ms_nats_server_opts so = {.max_payload = 1024};
    ms_nats_server *srv = NULL;
    ms_bus *bus = NULL;
    ms_message *m = NULL, *reply = NULL;
    char big[1100];
    (void)state;

    memset(big, 'x', sizeof big);
    ms_assert_ok(ms_nats_server_start(&so, &srv));
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    assert_int_equal(ms_bus_max_payload(bus), 1024);

    ms_assert_ok(ms_bus_publish(bus, "big.ok", big, 1024));
    ms_assert_status(ms_bus_publish(bus, "big.no", big, 1025), MS_ERR_TOO_LARGE);
    assert_non_null(strstr(ms_last_error(), "1024"));
    ms_assert_status(ms_bus_request(bus, "big.no", big, 1100, 500, &reply), MS_ERR_TOO_LARGE);
    assert_non_null(strstr(ms_last_error(), "1024"));

    /* Under the limit by payload, over it with the headers: the server's
     * limit is still named. */
    ms_assert_ok(ms_message_create("big.hdr", big, 1000, &m));
    ms_assert_ok(ms_message_set_header(m, "X-Pad", "0123456789012345678901234567890123456789"));
    ms_assert_ok(ms_message_set_source(m, "payload-test"));
    ms_assert_status(ms_bus_publish_msg(bus, m), MS_ERR_TOO_LARGE);
    assert_non_null(strstr(ms_last_error(), "1024"));
    ms_message_unref(m);

    ms_assert_ok(ms_bus_flush(bus, 2000));
    assert_true(ms_bus_is_connected(bus));
    ms_bus_destroy(bus);
    ms_nats_server_stop(srv);
}

/* --- reconnect -------------------------------------------------------------- */

static void server_restart_reconnects_and_resubscribes(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus_options o;
    ms_bus *bus = NULL;
    ms_subscription *sub = NULL;
    events ev;
    inbox ib;

    events_init(&ev);
    inbox_init(&ib);
    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.reconnect_wait_ms = 50;
    o.max_reconnect = -1;
    o.on_event = on_event;
    o.event_closure = &ev;
    ms_assert_ok(ms_bus_connect(&o, &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "restart.x", NULL, inbox_handler, &ib, &sub));
    ms_assert_ok(ms_bus_publish(bus, "restart.x", "before", 6));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    assert_true(wait_count(&ib.count, 1));

    ms_assert_ok(ms_nats_server_kill(srv));
    assert_true(wait_count(&ev.count[MS_BUS_DISCONNECTED], 1));
    assert_true(ms_test_wait_until(bus_disconnected, bus, WAIT_MS));
    /* Published while disconnected: kept in the reconnect buffer. */
    ms_assert_ok(ms_bus_publish(bus, "restart.x", "during", 6));

    ms_assert_ok(ms_nats_server_restart(srv));
    assert_true(ms_test_wait_until(bus_connected, bus, WAIT_MS));
    assert_true(wait_count(&ev.count[MS_BUS_RECONNECTED], 1));
    assert_true(wait_count(&ib.count, 2));

    /* The subscription was re-established by the library. */
    int64_t deadline = ms_test_now_ms() + WAIT_MS;
    while (atomic_load(&ib.count) < 3 && ms_test_now_ms() < deadline) {
        ms_assert_ok(ms_bus_publish(bus, "restart.x", "after", 5));
        ms_assert_ok(ms_bus_flush(bus, 2000));
        ms_test_sleep_ms(10);
    }
    assert_true(atomic_load(&ib.count) >= 3);
    pthread_mutex_lock(&ib.mu);
    assert_memory_equal(ms_message_data(ib.last), "after", 5);
    pthread_mutex_unlock(&ib.mu);
    pthread_mutex_lock(&ev.mu);
    assert_non_null(strstr(ev.last[MS_BUS_RECONNECTED], ms_nats_server_url(srv)));
    pthread_mutex_unlock(&ev.mu);

    ms_assert_ok(ms_subscription_unsubscribe(sub));
    ms_bus_destroy(bus);
    assert_int_equal(atomic_load(&ev.count[MS_BUS_CLOSED]), 1);
    inbox_reset(&ib);
}

static void close_raises_closed_event(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus_options o;
    ms_bus *bus = NULL;
    events ev;

    events_init(&ev);
    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.on_event = on_event;
    o.event_closure = &ev;
    ms_assert_ok(ms_bus_connect(&o, &bus));
    ms_bus_close(bus);
    /* close returns after libnats' closed callback ran. */
    assert_int_equal(atomic_load(&ev.count[MS_BUS_CLOSED]), 1);
    assert_false(ms_bus_is_connected(bus));
    ms_assert_status(ms_bus_publish(bus, "x", "y", 1), MS_ERR_CLOSED);
    ms_bus_close(bus);
    ms_bus_destroy(bus);
    assert_int_equal(atomic_load(&ev.count[MS_BUS_CLOSED]), 1);
}

/* --- interoperability with plain libnats clients ------------------------------ */

#define TRACEPARENT "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#define MSG_ID "0190f5b2-7c3a-7d4e-8f00-123456789abc"

static void raw_publisher_to_mainstack_subscriber(void **state)
{
    ms_nats_server *srv = *state;
    natsConnection *raw = NULL;
    natsMsg *nm = NULL;
    ms_bus *bus = NULL;
    ms_subscription *sub = NULL;
    const char *k, *v;
    inbox ib;

    inbox_init(&ib);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "interop.in", NULL, inbox_handler, &ib, &sub));
    ms_assert_ok(ms_bus_flush(bus, 2000));

    assert_int_equal(natsConnection_ConnectTo(&raw, ms_nats_server_url(srv)), NATS_OK);
    assert_int_equal(natsMsg_Create(&nm, "interop.in", NULL, "{\"n\":1}", 7), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(nm, "Ms-Id", MSG_ID), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(nm, "Ms-Type", "event"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(nm, "Ms-Source", "raw-client"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(nm, "Ms-Correlation-Id", "corr-7"), NATS_OK);
    assert_int_equal(natsMsgHeader_Set(nm, "traceparent", TRACEPARENT), NATS_OK);
    assert_int_equal(natsMsgHeader_Add(nm, "X-Custom", "one"), NATS_OK);
    assert_int_equal(natsMsgHeader_Add(nm, "X-Custom", "two"), NATS_OK);
    assert_int_equal(natsConnection_PublishMsg(raw, nm), NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(raw, 2000), NATS_OK);
    natsMsg_Destroy(nm);

    assert_true(wait_count(&ib.count, 1));
    pthread_mutex_lock(&ib.mu);
    ms_message *m = ib.last;
    assert_string_equal(ms_message_subject(m), "interop.in");
    assert_int_equal(ms_message_len(m), 7);
    assert_memory_equal(ms_message_data(m), "{\"n\":1}", 7);
    assert_string_equal(ms_message_id(m), MSG_ID);
    assert_int_equal(ms_message_type(m), MS_MSG_EVENT);
    assert_string_equal(ms_message_source(m), "raw-client");
    assert_string_equal(ms_message_correlation_id(m), "corr-7");
    assert_string_equal(ms_message_traceparent(m), TRACEPARENT);
    assert_int_equal(ms_message_header_count(m), 2);
    assert_string_equal(ms_message_header(m, "X-Custom"), "one");
    ms_assert_ok(ms_message_header_at(m, 1, &k, &v));
    assert_string_equal(k, "X-Custom");
    assert_string_equal(v, "two");
    pthread_mutex_unlock(&ib.mu);

    /* A plain message (no headers at all) arrives with no metadata. */
    assert_int_equal(natsConnection_PublishString(raw, "interop.in", "plain"), NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(raw, 2000), NATS_OK);
    assert_true(wait_count(&ib.count, 2));
    pthread_mutex_lock(&ib.mu);
    assert_null(ms_message_id(ib.last));
    assert_int_equal(ms_message_type(ib.last), MS_MSG_NONE);
    assert_int_equal(ms_message_header_count(ib.last), 0);
    assert_memory_equal(ms_message_data(ib.last), "plain", 5);
    pthread_mutex_unlock(&ib.mu);

    natsConnection_Destroy(raw);
    ms_assert_ok(ms_subscription_unsubscribe(sub));
    ms_bus_destroy(bus);
    inbox_reset(&ib);
}

static void mainstack_publisher_to_raw_subscriber(void **state)
{
    ms_nats_server *srv = *state;
    natsConnection *raw = NULL;
    natsSubscription *rsub = NULL;
    natsMsg *nm = NULL;
    ms_bus *bus = NULL;
    ms_message *m = NULL;
    json_t *body = json_pack("{s:s, s:i}", "what", "happened", "n", 42);
    const char *v = NULL;
    const char **keys = NULL;
    int nkeys = 0;

    assert_non_null(body);
    assert_int_equal(natsConnection_ConnectTo(&raw, ms_nats_server_url(srv)), NATS_OK);
    assert_int_equal(natsConnection_SubscribeSync(&rsub, raw, "interop.out"), NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(raw, 2000), NATS_OK);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));

    ms_assert_ok(ms_msg_event("interop.out", "svc-a", body, &m));
    ms_assert_ok(ms_message_set_header(m, "X-Tenant", "acme"));
    ms_assert_ok(ms_bus_publish_msg(bus, m));
    ms_assert_ok(ms_bus_flush(bus, 2000));

    assert_int_equal(natsSubscription_NextMsg(&nm, rsub, 2000), NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(nm), (int)ms_message_len(m));
    assert_memory_equal(natsMsg_GetData(nm), ms_message_data(m), ms_message_len(m));
    assert_int_equal(natsMsgHeader_Get(nm, "Ms-Id", &v), NATS_OK);
    assert_string_equal(v, ms_message_id(m));
    assert_int_equal(natsMsgHeader_Get(nm, "Ms-Type", &v), NATS_OK);
    assert_string_equal(v, "event");
    assert_int_equal(natsMsgHeader_Get(nm, "Ms-Source", &v), NATS_OK);
    assert_string_equal(v, "svc-a");
    assert_int_equal(natsMsgHeader_Get(nm, "Ms-Time", &v), NATS_OK);
    assert_string_equal(v, ms_message_timestamp(m));
    assert_int_equal(natsMsgHeader_Get(nm, "traceparent", &v), NATS_OK);
    assert_string_equal(v, ms_message_traceparent(m));
    assert_int_equal(natsMsgHeader_Get(nm, "X-Tenant", &v), NATS_OK);
    assert_string_equal(v, "acme");
    natsMsg_Destroy(nm);
    nm = NULL;

    /* ms_bus_publish is a plain NATS message: no headers at all. */
    ms_assert_ok(ms_bus_publish(bus, "interop.out", "raw bytes\0!", 11));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    assert_int_equal(natsSubscription_NextMsg(&nm, rsub, 2000), NATS_OK);
    assert_int_equal(natsMsg_GetDataLength(nm), 11);
    assert_memory_equal(natsMsg_GetData(nm), "raw bytes\0!", 11);
    assert_int_equal(natsMsgHeader_Keys(nm, &keys, &nkeys), NATS_NOT_FOUND);
    natsMsg_Destroy(nm);

    json_decref(body);
    ms_message_unref(m);
    natsSubscription_Destroy(rsub);
    natsConnection_Destroy(raw);
    ms_bus_destroy(bus);
}

static void echo_responder(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    char out[128];
    int n = snprintf(out, sizeof out, "echo:%.*s", (int)ms_message_len(msg),
                     (const char *)ms_message_data(msg));
    (void)sub;
    if (ms_bus_respond(bus, msg, out, (size_t)n) == MS_OK)
        atomic_fetch_add((atomic_int *)closure, 1);
}

static int answered_all(void *arg)
{
    return atomic_load((atomic_int *)arg) >= 20;
}

static void raw_requester_gets_mainstack_reply(void **state)
{
    ms_nats_server *srv = *state;
    natsConnection *raw = NULL;
    natsMsg *reply = NULL;
    ms_bus *bus = NULL;
    atomic_int answered;

    atomic_init(&answered, 0);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "svc.echo", "echoers", echo_responder, &answered, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));

    assert_int_equal(natsConnection_ConnectTo(&raw, ms_nats_server_url(srv)), NATS_OK);
    for (int i = 0; i < 20; i++) {
        char req[16], want[32];
        snprintf(req, sizeof req, "ping%d", i);
        snprintf(want, sizeof want, "echo:%s", req);
        assert_int_equal(natsConnection_RequestString(&reply, raw, "svc.echo", req, 2000), NATS_OK);
        assert_int_equal(natsMsg_GetDataLength(reply), (int)strlen(want));
        assert_memory_equal(natsMsg_GetData(reply), want, strlen(want));
        natsMsg_Destroy(reply);
        reply = NULL;
    }
    /* the handler counts after ms_bus_respond returned, which can be after
     * the requester already has the reply */
    assert_true(ms_test_wait_until(answered_all, &answered, 2000));
    assert_int_equal(atomic_load(&answered), 20);
    natsConnection_Destroy(raw);
    ms_bus_destroy(bus);
}

static void raw_responder_handler(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
                                  void *closure)
{
    natsMsg *out = NULL;
    (void)sub;
    (void)closure;
    if (natsMsg_Create(&out, natsMsg_GetReply(msg), NULL, "raw-reply", 9) == NATS_OK) {
        (void)natsMsgHeader_Set(out, "Ms-Type", "response");
        (void)natsMsgHeader_Set(out, "Ms-Correlation-Id", "from-raw");
        (void)natsConnection_PublishMsg(nc, out);
        natsMsg_Destroy(out);
    }
    natsMsg_Destroy(msg);
}

static void mainstack_requester_gets_raw_reply(void **state)
{
    ms_nats_server *srv = *state;
    natsConnection *raw = NULL;
    natsSubscription *rsub = NULL;
    ms_bus *bus = NULL;
    ms_message *reply = NULL, *req = NULL;

    assert_int_equal(natsConnection_ConnectTo(&raw, ms_nats_server_url(srv)), NATS_OK);
    assert_int_equal(natsConnection_Subscribe(&rsub, raw, "raw.svc", raw_responder_handler, NULL),
                     NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(raw, 2000), NATS_OK);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));

    ms_assert_ok(ms_bus_request(bus, "raw.svc", "q", 1, 2000, &reply));
    assert_memory_equal(ms_message_data(reply), "raw-reply", 9);
    assert_int_equal(ms_message_type(reply), MS_MSG_RESPONSE);
    assert_string_equal(ms_message_correlation_id(reply), "from-raw");
    /* A received message is read-only. */
    ms_assert_status(ms_message_set_source(reply, "x"), MS_ERR_STATE);
    ms_message_unref(reply);
    reply = NULL;

    /* With metadata the request goes as a header message. */
    ms_assert_ok(ms_msg_request("raw.svc", "asker", NULL, &req));
    ms_assert_ok(ms_bus_request_msg(bus, req, 2000, &reply));
    assert_memory_equal(ms_message_data(reply), "raw-reply", 9);
    ms_message_unref(reply);
    ms_message_unref(req);

    natsSubscription_Unsubscribe(rsub);
    natsSubscription_Destroy(rsub);
    natsConnection_Destroy(raw);
    ms_bus_destroy(bus);
}

static void sink_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    (void)bus;
    (void)sub;
    (void)msg;
    atomic_fetch_add((atomic_int *)closure, 1);
}

static void request_no_responders_and_timeout(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *bus = NULL;
    ms_message *reply = NULL;
    atomic_int seen;

    atomic_init(&seen, 0);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_status(ms_bus_request(bus, "nobody.listens", "?", 1, 2000, &reply),
                     MS_ERR_NO_RESPONDERS);
    assert_null(reply);
    assert_non_null(strstr(ms_last_error(), "nobody.listens"));

    /* Someone listens but never answers: a timeout, not "no responders". */
    ms_assert_ok(ms_bus_subscribe(bus, "silent.svc", NULL, sink_handler, &seen, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    ms_assert_status(ms_bus_request(bus, "silent.svc", "?", 1, 100, &reply), MS_ERR_TIMEOUT);
    assert_null(reply);
    assert_non_null(strstr(ms_last_error(), "silent.svc"));
    assert_true(wait_count(&seen, 1));
    ms_bus_destroy(bus);
}

/* publish_reply to a subject nobody serves: the server answers the reply
 * inbox with a "503 no responders" status, which is not a message. */
static void no_responders_status_is_not_delivered(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *bus = NULL;
    char *box = NULL;
    inbox ib;

    inbox_init(&ib);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_ok(ms_bus_new_inbox(bus, &box));
    ms_assert_ok(ms_bus_subscribe(bus, box, NULL, inbox_handler, &ib, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    ms_assert_ok(ms_bus_publish_reply(bus, "nobody.serves", box, "?", 1));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    ms_assert_ok(ms_bus_publish(bus, box, "", 0)); /* an empty message is delivered */
    ms_assert_ok(ms_bus_flush(bus, 2000));
    assert_true(wait_count(&ib.count, 1));
    ms_test_sleep_ms(50);
    assert_int_equal(atomic_load(&ib.count), 1);
    pthread_mutex_lock(&ib.mu);
    assert_int_equal(ms_message_len(ib.last), 0);
    assert_int_equal(ms_message_header_count(ib.last), 0);
    pthread_mutex_unlock(&ib.mu);
    ms_bus_destroy(bus);
    free(box);
    inbox_reset(&ib);
}

/* A raw client sends more headers than a mainstack message may carry: the
 * subscriber skips that message and goes on with the next. */
static void received_message_over_header_limit_is_skipped(void **state)
{
    ms_nats_server *srv = *state;
    natsConnection *raw = NULL;
    natsMsg *nm = NULL;
    ms_bus *bus = NULL;
    inbox ib;

    inbox_init(&ib);
    ms_log_set_level(MS_LOG_OFF);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "hdr.flood", NULL, inbox_handler, &ib, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    assert_int_equal(natsConnection_ConnectTo(&raw, ms_nats_server_url(srv)), NATS_OK);
    assert_int_equal(natsMsg_Create(&nm, "hdr.flood", NULL, "bad", 3), NATS_OK);
    for (int i = 0; i < MS_HEADER_MAX_COUNT + 5; i++) {
        char key[32];
        snprintf(key, sizeof key, "X-H%d", i);
        assert_int_equal(natsMsgHeader_Set(nm, key, "v"), NATS_OK);
    }
    assert_int_equal(natsConnection_PublishMsg(raw, nm), NATS_OK);
    natsMsg_Destroy(nm);
    assert_int_equal(natsConnection_PublishString(raw, "hdr.flood", "good"), NATS_OK);
    assert_int_equal(natsConnection_FlushTimeout(raw, 2000), NATS_OK);

    assert_true(wait_count(&ib.count, 1));
    ms_test_sleep_ms(50);
    assert_int_equal(atomic_load(&ib.count), 1);
    pthread_mutex_lock(&ib.mu);
    assert_memory_equal(ms_message_data(ib.last), "good", 4);
    pthread_mutex_unlock(&ib.mu);
    natsConnection_Destroy(raw);
    ms_bus_destroy(bus);
    inbox_reset(&ib);
}

/* --- flow control ------------------------------------------------------------- */

typedef struct blocker {
    atomic_int entered;
    atomic_bool release;
} blocker;

static void blocking_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg,
                             void *closure)
{
    blocker *b = closure;
    (void)bus;
    (void)sub;
    (void)msg;
    atomic_fetch_add(&b->entered, 1);
    int64_t deadline = ms_test_now_ms() + WAIT_MS;
    while (!atomic_load(&b->release) && ms_test_now_ms() < deadline)
        ms_test_sleep_ms(1);
}

typedef struct slow_wait {
    ms_subscription *sub;
    events *ev;
} slow_wait;

static int slow_reported(void *arg)
{
    slow_wait *w = arg;
    return ms_subscription_dropped(w->sub) > 0 &&
           atomic_load(&w->ev->count[MS_BUS_SLOW_CONSUMER]) > 0;
}

static void slow_consumer_drops_and_reports(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus_options o;
    ms_bus *bus = NULL, *pub = NULL;
    ms_subscription *sub = NULL;
    blocker b;
    events ev;

    atomic_init(&b.entered, 0);
    atomic_init(&b.release, false);
    events_init(&ev);
    ms_log_set_level(MS_LOG_OFF);
    ms_bus_options_init(&o);
    o.url = ms_nats_server_url(srv);
    o.pending_msgs_limit = 4;
    o.on_event = on_event;
    o.event_closure = &ev;
    ms_assert_ok(ms_bus_connect(&o, &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "slow.x", NULL, blocking_handler, &b, &sub));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &pub));

    for (int i = 0; i < 100; i++)
        ms_assert_ok(ms_bus_publish(pub, "slow.x", "m", 1));
    ms_assert_ok(ms_bus_flush(pub, 2000));
    slow_wait w = {sub, &ev};
    assert_true(ms_test_wait_until(slow_reported, &w, WAIT_MS));
    assert_true(ms_subscription_dropped(sub) <= 100);
    pthread_mutex_lock(&ev.mu);
    assert_non_null(strstr(ev.last[MS_BUS_SLOW_CONSUMER], "slow.x"));
    pthread_mutex_unlock(&ev.mu);

    atomic_store(&b.release, true);
    /* Whatever was not dropped is still delivered. */
    ms_assert_ok(ms_bus_flush(bus, 2000));
    assert_true(ms_subscription_delivered(sub) + ms_subscription_dropped(sub) <= 100);
    ms_assert_ok(ms_subscription_unsubscribe(sub));
    ms_bus_destroy(pub);
    ms_bus_destroy(bus);
}

/* --- unsubscribing while messages stream in ------------------------------------ */

typedef struct streamer {
    ms_bus *bus;
    const char *subject;
    atomic_bool stop;
    atomic_int sent;
} streamer;

static void *stream_main(void *arg)
{
    streamer *st = arg;
    /* About 16 messages a millisecond: a steady stream that a subscriber
     * under ASan on a shared machine still keeps up with. */
    while (!atomic_load(&st->stop)) {
        for (int i = 0; i < 16; i++)
            if (ms_bus_publish(st->bus, st->subject, "tick", 4) == MS_OK)
                atomic_fetch_add(&st->sent, 1);
        ms_test_sleep_ms(1);
    }
    return NULL;
}

/* Per-iteration state, freed right after unsubscribe: a handler that ran
 * after that would touch freed memory (ASan catches it). */
typedef struct round {
    atomic_int count;
    atomic_bool gone;
    atomic_int late; /* handler calls after unsubscribe returned */
} round_state;

static void round_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    round_state *r = closure;
    (void)bus;
    (void)sub;
    (void)msg;
    if (atomic_load(&r->gone))
        atomic_fetch_add(&r->late, 1);
    atomic_fetch_add(&r->count, 1);
}

static void start_stream(streamer *st, ms_bus *bus, const char *subject, pthread_t *th)
{
    st->bus = bus;
    st->subject = subject;
    atomic_init(&st->stop, false);
    atomic_init(&st->sent, 0);
    assert_int_equal(pthread_create(th, NULL, stream_main, st), 0);
}

static void stop_stream(streamer *st, pthread_t th)
{
    atomic_store(&st->stop, true);
    assert_int_equal(pthread_join(th, NULL), 0);
}

static void unsubscribe_while_streaming(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *pub = NULL, *bus = NULL;
    streamer st;
    pthread_t th;

    ms_assert_ok(connect_to(ms_nats_server_url(srv), &pub));
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    start_stream(&st, pub, "stream.x", &th);
    for (int i = 0; i < 40; i++) {
        ms_subscription *sub = NULL;
        round_state *r = calloc(1, sizeof *r);
        assert_non_null(r);
        atomic_init(&r->count, 0);
        atomic_init(&r->gone, false);
        atomic_init(&r->late, 0);
        ms_assert_ok(ms_bus_subscribe(bus, "stream.x", i % 2 ? "q" : NULL, round_handler, r, &sub));
        assert_true(wait_count(&r->count, 1 + i % 5));
        ms_assert_ok(ms_subscription_unsubscribe(sub));
        atomic_store(&r->gone, true);
        ms_test_sleep_ms(i % 3);
        assert_int_equal(atomic_load(&r->late), 0);
        free(r);
    }
    stop_stream(&st, th);
    ms_bus_destroy(bus);
    ms_bus_destroy(pub);
}

typedef struct self_unsub {
    atomic_int count;
    atomic_bool done;
} self_unsub;

static void self_unsubscribing_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg,
                                       void *closure)
{
    self_unsub *s = closure;
    (void)bus;
    (void)msg;
    if (atomic_fetch_add(&s->count, 1) + 1 == 3) {
        /* Returns at once; this call is the last. */
        ms_status st = ms_subscription_unsubscribe(sub);
        if (st == MS_OK)
            atomic_store(&s->done, true);
    }
}

static int flag_set(void *arg)
{
    return atomic_load((atomic_bool *)arg);
}

static void unsubscribe_from_own_handler_while_streaming(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *pub = NULL, *bus = NULL;
    streamer st;
    pthread_t th;

    ms_assert_ok(connect_to(ms_nats_server_url(srv), &pub));
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    start_stream(&st, pub, "stream.self", &th);
    for (int i = 0; i < 20; i++) {
        self_unsub *s = calloc(1, sizeof *s);
        assert_non_null(s);
        atomic_init(&s->count, 0);
        atomic_init(&s->done, false);
        ms_assert_ok(
            ms_bus_subscribe(bus, "stream.self", NULL, self_unsubscribing_handler, s, NULL));
        assert_true(ms_test_wait_until(flag_set, &s->done, WAIT_MS));
        ms_test_sleep_ms(5);
        assert_int_equal(atomic_load(&s->count), 3);
        free(s);
    }
    stop_stream(&st, th);
    ms_bus_destroy(bus);
    ms_bus_destroy(pub);
}

/* One handler unsubscribes the other subscriptions of its bus: with the
 * shared delivery pool some of them run on the same worker thread, where
 * waiting for them would never end. */
typedef struct killer {
    ms_subscription *victims[3];
    atomic_bool done;
    atomic_int count;
} killer;

static void killer_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    killer *k = closure;
    (void)bus;
    (void)sub;
    (void)msg;
    if (atomic_fetch_add(&k->count, 1) == 0) {
        for (int i = 0; i < 3; i++)
            (void)ms_subscription_unsubscribe(k->victims[i]);
        atomic_store(&k->done, true);
    }
}

static void unsubscribe_others_from_handler(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *pub = NULL, *bus = NULL;
    atomic_int victim_count;
    killer k;
    streamer st;
    pthread_t th;

    atomic_init(&victim_count, 0);
    atomic_init(&k.done, false);
    atomic_init(&k.count, 0);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &pub));
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    for (int i = 0; i < 3; i++)
        ms_assert_ok(
            ms_bus_subscribe(bus, "stream.kill", NULL, sink_handler, &victim_count, &k.victims[i]));
    ms_assert_ok(ms_bus_subscribe(bus, "stream.kill", NULL, killer_handler, &k, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    start_stream(&st, pub, "stream.kill", &th);
    assert_true(ms_test_wait_until(flag_set, &k.done, WAIT_MS));
    int after = atomic_load(&victim_count);
    ms_test_sleep_ms(20);
    assert_int_equal(atomic_load(&victim_count), after);
    stop_stream(&st, th);
    ms_bus_destroy(bus);
    ms_bus_destroy(pub);
}

/* Destroying a bus whose subscriptions are busy: destroy returns once no
 * handler runs, and none runs afterwards (the state is freed right away). */
static void destroy_while_streaming(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *pub = NULL;
    streamer st;
    pthread_t th;

    ms_assert_ok(connect_to(ms_nats_server_url(srv), &pub));
    start_stream(&st, pub, "stream.destroy", &th);
    for (int i = 0; i < 10; i++) {
        ms_bus *bus = NULL;
        round_state *r = calloc(1, sizeof *r);
        assert_non_null(r);
        atomic_init(&r->count, 0);
        atomic_init(&r->gone, false);
        atomic_init(&r->late, 0);
        ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
        for (int j = 0; j < 3; j++)
            ms_assert_ok(ms_bus_subscribe(bus, "stream.destroy", j == 2 ? "q" : NULL, round_handler,
                                          r, NULL));
        assert_true(wait_count(&r->count, 3));
        ms_bus_destroy(bus);
        atomic_store(&r->gone, true);
        assert_int_equal(atomic_load(&r->late), 0);
        free(r);
    }
    stop_stream(&st, th);
    ms_bus_destroy(pub);
}

/* Every allocation of connect, subscribe, publish and request made to fail in
 * turn: each call reports MS_ERR_NO_MEMORY (or succeeds) and nothing leaks
 * or crashes (run it under ASan). */
static void allocation_failures_are_reported_cleanly(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *responder = NULL;
    ms_message *m = NULL;
    atomic_int answered;
    bool connected = false;

    atomic_init(&answered, 0);
    ms_log_set_level(MS_LOG_OFF);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &responder));
    ms_assert_ok(ms_bus_subscribe(responder, "oom.echo", NULL, echo_responder, &answered, NULL));
    ms_assert_ok(ms_bus_flush(responder, 2000));

    for (long n = 0; n < 64 && !connected; n++) {
        ms_bus *bus = NULL;
        ms__alloc_fail_after(n);
        ms_status st = connect_to(ms_nats_server_url(srv), &bus);
        ms__alloc_fail_after(-1);
        if (st == MS_OK)
            connected = true;
        else
            assert_int_equal(st, MS_ERR_NO_MEMORY);
        ms_bus_destroy(bus);
    }
    assert_true(connected);

    ms_bus *bus = NULL;
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_ok(ms_msg_event("oom.event", "oom-test", NULL, &m));
    ms_assert_ok(ms_message_set_header(m, "X-K", "v"));
    for (long n = 0; n < 8; n++) {
        ms_subscription *sub = NULL;
        ms_message *reply = NULL;
        ms_status st;

        ms__alloc_fail_after(n);
        st = ms_bus_subscribe(bus, "oom.sub", NULL, sink_handler, &answered, &sub);
        ms__alloc_fail_after(-1);
        assert_true(st == MS_OK || st == MS_ERR_NO_MEMORY);
        if (st == MS_OK)
            ms_assert_ok(ms_subscription_unsubscribe(sub));

        ms__alloc_fail_after(n);
        st = ms_bus_publish_msg(bus, m);
        ms__alloc_fail_after(-1);
        assert_true(st == MS_OK || st == MS_ERR_NO_MEMORY);

        /* The reply may also be lost to a failed allocation on receipt. */
        ms__alloc_fail_after(n);
        st = ms_bus_request(bus, "oom.echo", "x", 1, 200, &reply);
        ms__alloc_fail_after(-1);
        assert_true(st == MS_OK || st == MS_ERR_NO_MEMORY || st == MS_ERR_TIMEOUT);
        if (st == MS_OK)
            assert_memory_equal(ms_message_data(reply), "echo:x", 6);
        ms_message_unref(reply);
    }
    /* Healthy again afterwards. */
    ms_message *reply = NULL;
    ms_assert_ok(ms_bus_request(bus, "oom.echo", "y", 1, 2000, &reply));
    ms_message_unref(reply);
    ms_message_unref(m);
    ms_bus_destroy(bus);
    ms_bus_destroy(responder);
}

/* --- drain ---------------------------------------------------------------------- */

static void drain_delivers_pending_messages(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *bus = NULL, *pub = NULL;
    blocker b;

    atomic_init(&b.entered, 0);
    atomic_init(&b.release, true);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &pub));
    ms_assert_ok(ms_bus_subscribe(bus, "drain.x", NULL, blocking_handler, &b, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    for (int i = 0; i < 50; i++)
        ms_assert_ok(ms_bus_publish(pub, "drain.x", "d", 1));
    ms_assert_ok(ms_bus_flush(pub, 2000));
    ms_assert_ok(ms_bus_drain(bus, 3000));
    assert_int_equal(atomic_load(&b.entered), 50);
    ms_assert_status(ms_bus_publish(bus, "drain.x", "late", 4), MS_ERR_CLOSED);
    ms_bus_destroy(pub);
    ms_bus_destroy(bus);
}

typedef struct napper {
    atomic_int count;
} napper;

static void napping_handler(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    (void)bus;
    (void)sub;
    (void)msg;
    atomic_fetch_add(&((napper *)closure)->count, 1);
    ms_test_sleep_ms(300);
}

static void drain_past_timeout_closes_anyway(void **state)
{
    ms_nats_server *srv = *state;
    ms_bus *bus = NULL;
    napper n;

    atomic_init(&n.count, 0);
    ms_assert_ok(connect_to(ms_nats_server_url(srv), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "nap.x", NULL, napping_handler, &n, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    for (int i = 0; i < 10; i++)
        ms_assert_ok(ms_bus_publish(bus, "nap.x", "z", 1));
    ms_assert_ok(ms_bus_flush(bus, 2000));
    assert_true(wait_count(&n.count, 1));
    int64_t t0 = ms_test_now_ms();
    ms_assert_status(ms_bus_drain(bus, 200), MS_ERR_TIMEOUT);
    /* Bounded: the 10 x 300 ms of pending work were not waited for. */
    assert_true(ms_test_now_ms() - t0 < 2500);
    assert_true(atomic_load(&n.count) < 10);
    assert_false(ms_bus_is_connected(bus));
    ms_bus_destroy(bus);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(fixture_restart_keeps_port_and_stop_cleans_up),
    cmocka_unit_test(fixture_rejects_bad_options),
    cmocka_unit_test(connect_dead_port_fails_within_timeout),
    cmocka_unit_test(connect_silent_server_times_out),
    cmocka_unit_test_setup_teardown(nats_url_env_used_when_url_null, server_up, server_down),
    cmocka_unit_test(url_null_without_env_is_invalid),
    cmocka_unit_test_setup_teardown(url_list_with_dead_first_server_connects, server_up,
                                    server_down),
    cmocka_unit_test(url_list_bad_entries_are_invalid),
    cmocka_unit_test(auth_user_password),
    cmocka_unit_test(auth_token),
    cmocka_unit_test(unusable_files_and_secrets_are_refused),
    cmocka_unit_test_setup_teardown(tls_required_against_plain_server_fails, server_up,
                                    server_down),
    cmocka_unit_test_setup_teardown(invalid_creds_or_ca_file_is_io_error, server_up, server_down),
    cmocka_unit_test_setup_teardown(retry_on_failed_connect_connects_later, server_up, server_down),
    cmocka_unit_test(payload_over_server_max_is_too_large),
    cmocka_unit_test_setup_teardown(server_restart_reconnects_and_resubscribes, server_up,
                                    server_down),
    cmocka_unit_test_setup_teardown(close_raises_closed_event, server_up, server_down),
    cmocka_unit_test_setup_teardown(raw_publisher_to_mainstack_subscriber, server_up, server_down),
    cmocka_unit_test_setup_teardown(mainstack_publisher_to_raw_subscriber, server_up, server_down),
    cmocka_unit_test_setup_teardown(raw_requester_gets_mainstack_reply, server_up, server_down),
    cmocka_unit_test_setup_teardown(mainstack_requester_gets_raw_reply, server_up, server_down),
    cmocka_unit_test_setup_teardown(request_no_responders_and_timeout, server_up, server_down),
    cmocka_unit_test_setup_teardown(no_responders_status_is_not_delivered, server_up, server_down),
    cmocka_unit_test_setup_teardown(received_message_over_header_limit_is_skipped, server_up,
                                    server_down),
    cmocka_unit_test_setup_teardown(slow_consumer_drops_and_reports, server_up, server_down),
    cmocka_unit_test_setup_teardown(unsubscribe_while_streaming, server_up, server_down),
    cmocka_unit_test_setup_teardown(unsubscribe_from_own_handler_while_streaming, server_up,
                                    server_down),
    cmocka_unit_test_setup_teardown(unsubscribe_others_from_handler, server_up, server_down),
    cmocka_unit_test_setup_teardown(destroy_while_streaming, server_up, server_down),
    cmocka_unit_test_setup_teardown(allocation_failures_are_reported_cleanly, server_up,
                                    server_down),
    cmocka_unit_test_setup_teardown(drain_delivers_pending_messages, server_up, server_down),
    cmocka_unit_test_setup_teardown(drain_past_timeout_closes_anyway, server_up, server_down),
};

MS_TEST_MAIN(tests, NULL, NULL)
