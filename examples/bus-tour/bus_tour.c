/*
 * bus_tour.c - a guided tour of the mainstack bus, used by `make demo`.
 *
 *   bus-tour URL
 *
 * Runs the same walk over any transport (nats://... or inproc://...):
 * typed messages with metadata, wildcards, a queue group sharing work,
 * request/reply, and the errors a caller gets for bad input. Uses only the
 * public API, as any program built on mainstack would.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mainstack/mainstack.h>

static atomic_int events_seen;
static atomic_int worker_jobs[3];

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_event(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    printf("    [%s] got %-16s on %-45s from %s\n", (const char *)closure,
           ms_message_type_name(m) ? ms_message_type_name(m) : "(plain)", ms_message_subject(m),
           ms_message_source(m) ? ms_message_source(m) : "-");
    atomic_fetch_add(&events_seen, 1);
}

static void on_job(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    atomic_fetch_add(&worker_jobs[(int)(intptr_t)closure], 1);
}

static void on_lookup(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    json_t *req = NULL, *body = NULL;
    ms_message *resp = NULL;

    if (ms_message_json(m, &req) != MS_OK)
        return;
    body = json_pack("{s:s, s:s}", "id", json_string_value(json_object_get(req, "id")), "name",
                     "Ada Lovelace");
    if (body != NULL && ms_msg_response(m, "directory", body, &resp) == MS_OK)
        ms_bus_respond_msg(bus, m, resp);
    ms_message_unref(resp);
    json_decref(body);
    json_decref(req);
}

static int fail(const char *what)
{
    fprintf(stderr, "bus-tour: %s: %s\n", what, ms_last_error());
    return 1;
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : NULL;
    ms_bus *a = NULL, *b = NULL;
    ms_message *m = NULL, *reply = NULL;
    int rc = 1;

    if (ms_bus_connect_url(url, &a) != MS_OK || ms_bus_connect_url(url, &b) != MS_OK) {
        rc = fail("connect");
        goto cleanup;
    }
    printf("  connected two clients over %s (max payload %zu bytes)\n", ms_bus_transport(a),
           ms_bus_max_payload(a));

    printf("  1. typed messages: an agent subscribes to mainstack.interface.changed.>\n");
    if (ms_bus_subscribe(b, "mainstack.interface.changed.>", NULL, on_event, "agent", NULL) !=
            MS_OK ||
        ms_bus_subscribe(b, "events.user.*", NULL, on_event, "audit", NULL) != MS_OK ||
        ms_bus_flush(b, 2000) != MS_OK) {
        rc = fail("subscribe");
        goto cleanup;
    }
    if (ms_msg_interface_changed(NULL, "user-service", "UserManagement", "1.0.0", "1.1.0", false,
                                 "adds optional field 'nickname'", &m) != MS_OK ||
        ms_bus_publish_msg(a, m) != MS_OK) {
        rc = fail("publish interface_changed");
        goto cleanup;
    }
    printf("    published %s id=%s\n", ms_message_type_name(m), ms_message_id(m));
    ms_message_unref(m);
    m = NULL;
    json_t *user = json_pack("{s:s}", "email", "ada@example.org");
    if (ms_msg_event("events.user.created", "user-service", user, &m) != MS_OK ||
        ms_bus_publish_msg(a, m) != MS_OK) {
        json_decref(user);
        rc = fail("publish event");
        goto cleanup;
    }
    json_decref(user);
    ms_message_unref(m);
    m = NULL;
    ms_bus_flush(a, 2000);
    for (int i = 0; i < 200 && atomic_load(&events_seen) < 2; i++)
        sleep_ms(5);

    printf("  2. a queue group of 3 workers shares 300 jobs (each job to exactly one)\n");
    for (intptr_t i = 0; i < 3; i++)
        if (ms_bus_subscribe(b, "jobs.resize", "resizers", on_job, (void *)i, NULL) != MS_OK) {
            rc = fail("subscribe worker");
            goto cleanup;
        }
    ms_bus_flush(b, 2000);
    for (int i = 0; i < 300; i++)
        if (ms_bus_publish(a, "jobs.resize", "img", 3) != MS_OK) {
            rc = fail("publish job");
            goto cleanup;
        }
    ms_bus_flush(a, 2000);
    for (int i = 0; i < 400; i++) {
        int total = atomic_load(&worker_jobs[0]) + atomic_load(&worker_jobs[1]) +
                    atomic_load(&worker_jobs[2]);
        if (total >= 300)
            break;
        sleep_ms(5);
    }
    printf("    worker jobs: %d + %d + %d = %d\n", atomic_load(&worker_jobs[0]),
           atomic_load(&worker_jobs[1]), atomic_load(&worker_jobs[2]),
           atomic_load(&worker_jobs[0]) + atomic_load(&worker_jobs[1]) +
               atomic_load(&worker_jobs[2]));

    printf("  3. request/reply with correlation\n");
    if (ms_bus_subscribe(b, "component.directory.get", "directory", on_lookup, NULL, NULL) !=
            MS_OK ||
        ms_bus_flush(b, 2000) != MS_OK) {
        rc = fail("subscribe directory");
        goto cleanup;
    }
    json_t *q = json_pack("{s:s}", "id", "u-1");
    if (ms_msg_request("component.directory.get", "tour", q, &m) != MS_OK ||
        ms_bus_request_msg(a, m, 2000, &reply) != MS_OK) {
        json_decref(q);
        rc = fail("request");
        goto cleanup;
    }
    json_decref(q);
    printf("    reply %.*s (correlation id matches request: %s)\n", (int)ms_message_len(reply),
           (const char *)ms_message_data(reply),
           strcmp(ms_message_correlation_id(reply), ms_message_id(m)) == 0 ? "yes" : "NO");

    printf("  4. bad input gets a clear error, never a crash\n");
    ms_status s = ms_bus_publish(a, "bad..subject", "x", 1);
    printf("    publish 'bad..subject'    -> %s: %s\n", ms_status_name(s), ms_last_error());
    s = ms_bus_request(a, "component.nobody.get", "{}", 2, 1000, &(ms_message *){NULL});
    printf("    request to nobody          -> %s: %s\n", ms_status_name(s), ms_last_error());
    size_t big = ms_bus_max_payload(a) + 1;
    char *blob = calloc(1, big);
    if (blob != NULL) {
        s = ms_bus_publish(a, "blobs.x", blob, big);
        printf("    publish %zu bytes       -> %s: %s\n", big, ms_status_name(s), ms_last_error());
        free(blob);
    }
    if (ms_bus_drain(b, 2000) != MS_OK) {
        rc = fail("drain");
        goto cleanup;
    }
    printf("  drained and closed cleanly\n");
    rc = 0;

cleanup:
    ms_message_unref(reply);
    ms_message_unref(m);
    ms_bus_destroy(b);
    ms_bus_destroy(a);
    return rc;
}
