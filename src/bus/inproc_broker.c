/*
 * inproc_broker.c - the named brokers of the inproc transport (see inproc.h).
 *
 * "inproc://name" reaches the broker called name: created by the first bus
 * that connects to the name, shared by every bus connected to it, freed by
 * the last one to go. A broker is the subject index of its buses'
 * subscriptions and response muxes, the queue groups among them and the
 * worker pool that runs their handlers; the index changes here, under the
 * broker's write lock.
 */
#include <string.h>
#include <unistd.h>

#include "bus/inproc.h"
#include "core/alloc.h"
#include "core/error.h"

#define MAX_WORKERS 256

/*
 * The one piece of process-wide mutable state of the transport: the table of
 * named brokers. "inproc://name" must reach the same broker from every bus of
 * the process, and those buses share no object to hang it on, so the table
 * has to be global. It is guarded by its mutex and each entry is refcounted
 * by the buses connected to it; the last bus to go frees the broker.
 */
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static ms__inproc_broker *registry;

static int worker_count(int wanted)
{
    long n = wanted > 0 ? wanted : sysconf(_SC_NPROCESSORS_ONLN);

    if (n < 1)
        n = 1;
    return n > MAX_WORKERS ? MAX_WORKERS : (int)n;
}

/* A new broker with its index, lock and workers (registry_mu held). */
static ms_status broker_create(const char *name, int workers, ms__inproc_broker **out)
{
    static atomic_uint_fast64_t next_id;
    pthread_rwlockattr_t attr;
    ms__inproc_broker *b = ms__calloc(1, sizeof *b);
    ms_status s;

    *out = NULL;
    if (b == NULL || (b->name = ms__strdup(name)) == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "inproc://%s: allocating the broker", name);
        goto fail_alloc;
    }
    if (pthread_rwlockattr_init(&attr) != 0) {
        s = ms__err(MS_ERR_INTERNAL, "inproc://%s: initialising the broker lock", name);
        goto fail_alloc;
    }
    /* Writers first, so that a steady stream of publishes cannot starve
     * subscribe and unsubscribe. Only fails for an unknown kind, and the
     * default kind would still be correct. */
    (void)pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&b->lock, &attr) != 0) {
        pthread_rwlockattr_destroy(&attr);
        s = ms__err(MS_ERR_INTERNAL, "inproc://%s: initialising the broker lock", name);
        goto fail_alloc;
    }
    pthread_rwlockattr_destroy(&attr);
    if ((s = ms_subject_index_create(&b->index)) != MS_OK) {
        ms__err_wrap(s, "inproc://%s: creating the subject index", name);
        goto fail_index;
    }
    if ((s = ms__inproc_pool_start(&b->pool, worker_count(workers))) != MS_OK) {
        ms__err_wrap(s, "inproc://%s", name);
        goto fail_pool;
    }
    b->id = (uint64_t)atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed) + 1;
    *out = b;
    return MS_OK;

fail_pool:
    ms_subject_index_destroy(b->index);
fail_index:
    pthread_rwlock_destroy(&b->lock);
fail_alloc:
    if (b != NULL)
        ms__free(b->name);
    ms__free(b);
    return s;
}

ms_status ms__inproc_broker_acquire(const char *name, int workers, ms__inproc_broker **out)
{
    ms__inproc_broker *b;
    ms_status s = MS_OK;

    pthread_mutex_lock(&registry_mu);
    for (b = registry; b != NULL; b = b->next)
        if (strcmp(b->name, name) == 0)
            break;
    if (b != NULL) {
        b->buses++;
    } else if ((s = broker_create(name, workers, &b)) == MS_OK) {
        b->buses = 1;
        b->next = registry;
        registry = b;
    }
    pthread_mutex_unlock(&registry_mu);
    *out = b;
    return s;
}

void ms__inproc_broker_release(ms__inproc_broker *b)
{
    ms__inproc_broker **pp = &registry;
    bool last;

    pthread_mutex_lock(&registry_mu);
    last = --b->buses == 0;
    if (last) {
        while (*pp != b)
            pp = &(*pp)->next;
        *pp = b->next;
    }
    pthread_mutex_unlock(&registry_mu);
    if (!last)
        return;
    /* Every bus closed its mailboxes and muxes: the index is empty and the
     * workers have nothing left but to stop. */
    ms__inproc_pool_stop(&b->pool);
    ms_subject_index_destroy(b->index);
    pthread_rwlock_destroy(&b->lock);
    ms__free(b->name);
    ms__free(b);
}

/* One more member of queue group `name` (b->lock held for writing). */
static ms_status qgroup_join(ms__inproc_broker *b, const char *name, ms__inproc_qgroup **out)
{
    ms__inproc_qgroup *g;

    for (g = b->qgroups; g != NULL; g = g->next)
        if (strcmp(g->name, name) == 0)
            break;
    if (g == NULL) {
        g = ms__calloc(1, sizeof *g);
        if (g == NULL || (g->name = ms__strdup(name)) == NULL) {
            ms__free(g);
            return ms__err(MS_ERR_NO_MEMORY, "inproc: allocating queue group '%s'", name);
        }
        atomic_init(&g->rr, 0);
        g->next = b->qgroups;
        b->qgroups = g;
    }
    g->members++;
    *out = g;
    return MS_OK;
}

static void qgroup_leave(ms__inproc_broker *b, ms__inproc_qgroup *g)
{
    ms__inproc_qgroup **pp = &b->qgroups;

    if (--g->members > 0)
        return;
    while (*pp != g)
        pp = &(*pp)->next;
    *pp = g->next;
    ms__free(g->name);
    ms__free(g);
}

ms_status ms__inproc_broker_attach(ms__inproc_broker *b, ms__inproc_mailbox *mb)
{
    const ms_subscription *sub = mb->sub;
    ms__inproc_qgroup *g = NULL;
    ms_status s;

    if (sub->queue != NULL && (s = qgroup_join(b, sub->queue, &g)) != MS_OK)
        return s;
    if ((s = ms_subject_index_insert(b->index, sub->subject, mb)) != MS_OK) {
        if (g != NULL)
            qgroup_leave(b, g);
        return ms__err_wrap(s, "subscribe to '%s'", sub->subject);
    }
    mb->qg = g;
    mb->in_index = true;
    b->gen++;
    return MS_OK;
}

void ms__inproc_broker_detach(ms__inproc_broker *b, ms__inproc_mailbox *mb)
{
    if (!mb->in_index)
        return;
    /* Cannot fail: in_index says the entry is there. */
    (void)ms_subject_index_remove(b->index, mb->sub->subject, mb);
    if (mb->qg != NULL)
        qgroup_leave(b, mb->qg);
    mb->qg = NULL;
    mb->in_index = false;
    b->gen++;
}
