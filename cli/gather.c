/*
 * gather.c - collect every reply to a fan-out request.
 *
 * ms_bus_request returns the first reply only; $SRV.* and the health
 * subjects get one reply per instance or host. So: subscribe a fresh inbox,
 * publish the question(s) with that inbox as reply subject, and keep what
 * arrives until the timeout (or enough replies). The subscription handler
 * runs on a bus delivery thread: it refs each message into a list under a
 * mutex and signals the waiting thread. ms_subscription_unsubscribe
 * returns only once the handler can no longer run, so the list is then the
 * caller's alone.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

typedef struct gather {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ms_message **list; /* refs owned by the gather */
    size_t count, cap;
    size_t max;
    bool oom;
} gather;

/* Delivery thread: keep a reference to msg. */
static void on_reply(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    gather *g = closure;
    (void)bus;
    (void)sub;
    /* A NATS "no responders" status arrives as an empty message without a
     * Nats-Service-Error: not a reply. */
    if (ms_message_len(msg) == 0 && ms_message_header(msg, "Nats-Service-Error") == NULL)
        return;
    pthread_mutex_lock(&g->mu);
    if (g->count == g->cap) {
        size_t ncap = g->cap == 0 ? 16 : g->cap * 2;
        ms_message **nl = realloc(g->list, ncap * sizeof *nl);
        if (nl == NULL) {
            g->oom = true;
            pthread_mutex_unlock(&g->mu);
            return;
        }
        g->list = nl;
        g->cap = ncap;
    }
    g->list[g->count++] = ms_message_ref((ms_message *)msg);
    pthread_cond_signal(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

ms_status cli_gather(ms_bus *bus, const char *const *subjects, size_t nsubjects, const void *data,
                     size_t len, int timeout_ms, size_t max, ms_message ***replies, size_t *count)
{
    gather g;
    pthread_condattr_t ca;
    ms_subscription *sub = NULL;
    char *inbox = NULL;
    struct timespec deadline;
    ms_status s;

    *replies = NULL;
    *count = 0;
    memset(&g, 0, sizeof g);
    g.max = max;
    /* The deadline is on the monotonic clock: a wall-clock step must not
     * cut the collection short or stretch it. */
    if (pthread_condattr_init(&ca) != 0)
        return MS_ERR_INTERNAL;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&g.cv, &ca) != 0) {
        pthread_condattr_destroy(&ca);
        return MS_ERR_INTERNAL;
    }
    pthread_condattr_destroy(&ca);
    if (pthread_mutex_init(&g.mu, NULL) != 0) {
        pthread_cond_destroy(&g.cv);
        return MS_ERR_INTERNAL;
    }

    s = ms_bus_new_inbox(bus, &inbox);
    if (s != MS_OK)
        goto cleanup;
    s = ms_bus_subscribe(bus, inbox, NULL, on_reply, &g, &sub);
    if (s != MS_OK)
        goto cleanup;
    for (size_t i = 0; i < nsubjects; i++) {
        s = ms_bus_publish_reply(bus, subjects[i], inbox, data, len);
        if (s != MS_OK)
            goto cleanup;
    }
    (void)ms_bus_flush(bus, timeout_ms);

    deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&g.mu);
    while (max == 0 || g.count < max) {
        int rc = pthread_cond_timedwait(&g.cv, &g.mu, &deadline);
        if (rc == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock(&g.mu);

cleanup:
    /* After this the handler no longer runs: the list is ours. */
    (void)ms_subscription_unsubscribe(sub);
    free(inbox);
    if (s == MS_OK && g.oom)
        s = MS_ERR_NO_MEMORY;
    if (s == MS_OK) {
        *replies = g.list;
        *count = g.count;
    } else {
        cli_gather_free(g.list, g.count);
    }
    pthread_cond_destroy(&g.cv);
    pthread_mutex_destroy(&g.mu);
    return s;
}

void cli_gather_free(ms_message **replies, size_t count)
{
    for (size_t i = 0; i < count; i++)
        ms_message_unref(replies[i]);
    free(replies);
}
