/*
 * inproc_transport.c - the inproc:// transport: the buses of one process
 * meeting at a named in-memory broker (inproc_broker.c), NATS semantics.
 *
 * Publish looks the subject up under the broker's read lock, picks one member
 * per queue group (round robin) and queues the message into every matching
 * mailbox (inproc_mailbox.c) with room; full ones are waited for, up to
 * publish_timeout_ms, after the lock is dropped. Replies go through a per-bus
 * response mux, one wildcard entry on the bus's inbox prefix that hands each
 * reply to its waiting requester. Flush waits on the bus's delivery tracker.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus/inproc.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/message_internal.h"
#include "mainstack/subject.h"

#define SCHEME_LEN 9          /* "inproc://" */
#define NAME_MAX_LEN 256      /* bytes in a broker name */
#define MUX_BUCKETS 64        /* waiter hash buckets of a response mux */
#define COLLECT_LOCAL 16      /* matches held without allocating */
#define REQUEST_POLL_NS 20000 /* a requester polls for its reply this long */
#define REQUEST_POLL_MS 1     /* ... when its timeout is at least this */

/* One requester waiting for its reply; lives on the requester's stack and
 * is only touched under the mux mutex (`done` is also polled without it). */
typedef struct waiter {
    uint64_t id;
    ms_message *reply; /* taken reference, set by the replying publisher */
    atomic_bool done;
    bool sleeping; /* on cond, so the replier must signal */
    pthread_cond_t cond;
    struct waiter *next;
} waiter;

/* The response mux of one bus, an index entry on "<inbox_prefix>.R.*". */
typedef struct mux {
    ms__inproc_entry hdr; /* refs: the bus + publishers delivering to it */
    pthread_mutex_t mu;   /* guards buckets, closed */
    waiter *buckets[MUX_BUCKETS];
    bool closed;
    size_t base_len;  /* strlen of "<inbox_prefix>.R." */
    char pattern[64]; /* "<inbox_prefix>.R.*" */
} mux;

typedef struct inproc_bus {
    ms__inproc_broker *broker;   /* counted on it */
    ms__inproc_tracker *tracker; /* owner reference */
    mux *mux;                    /* owner reference */
    atomic_bool closed;
    atomic_uint_fast64_t req_seq;
    /* Guards the mailbox list and the mailboxes' zombie/visit_gen/bus_*;
     * the list holds one reference per mailbox. */
    pthread_mutex_t mu;
    ms__inproc_mailbox *mailboxes;
    size_t zombies;
    uint64_t visit_gen;
    pthread_mutex_t visit_mu; /* one walk of the mailbox list at a time */
} inproc_bus;

/* --- response mux -------------------------------------------------------- */

static void mux_unref(mux *m)
{
    if (m == NULL || atomic_fetch_sub_explicit(&m->hdr.refs, 1, memory_order_acq_rel) != 1)
        return;
    pthread_mutex_destroy(&m->mu);
    ms__free(m);
}

static ms_status mux_create(const char *inbox_prefix, mux **out)
{
    mux *m = ms__calloc(1, sizeof *m);
    int n;

    *out = NULL;
    if (m == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "inproc: allocating the response mux");
    m->hdr.kind = MS__INPROC_MUX;
    atomic_init(&m->hdr.refs, 1);
    n = snprintf(m->pattern, sizeof m->pattern, "%s.R.*", inbox_prefix);
    if (n < 0 || (size_t)n >= sizeof m->pattern) {
        ms__free(m);
        return ms__err(MS_ERR_INTERNAL, "inproc: inbox prefix '%s' is too long", inbox_prefix);
    }
    m->base_len = (size_t)n - 1;
    if (ms__inproc_mutex_init(&m->mu) != 0) {
        ms__free(m);
        return ms__err(MS_ERR_INTERNAL, "inproc: initialising the response mux");
    }
    *out = m;
    return MS_OK;
}

/* Unlink w if it is still registered (m->mu held). */
static void mux_forget(mux *m, waiter *w)
{
    waiter **pp = &m->buckets[w->id % MUX_BUCKETS];

    while (*pp != NULL && *pp != w)
        pp = &(*pp)->next;
    if (*pp == w)
        *pp = w->next;
}

/* A reply arrived on the publishing thread: hand it to its waiter, or drop
 * it when nobody waits any more (a late reply after a timeout). */
static void mux_deliver(mux *m, ms_message *msg)
{
    const char *tok = ms_message_subject(msg) + m->base_len;
    uint64_t id = 0;
    waiter *w;

    for (; *tok != '\0'; tok++) {
        if (*tok < '0' || *tok > '9' || id > (UINT64_MAX - 9) / 10)
            return; /* not one of our reply subjects */
        id = id * 10 + (uint64_t)(*tok - '0');
    }
    pthread_mutex_lock(&m->mu);
    for (w = m->buckets[id % MUX_BUCKETS]; w != NULL && w->id != id; w = w->next) {
    }
    if (w != NULL) {
        mux_forget(m, w);
        w->reply = ms_message_ref(msg);
        atomic_store_explicit(&w->done, true, memory_order_release);
        if (w->sleeping)
            pthread_cond_signal(&w->cond); /* w may vanish once we unlock */
    }
    pthread_mutex_unlock(&m->mu);
}

/* Wake every requester of a closing bus with MS_ERR_CLOSED. */
static void mux_close(mux *m)
{
    pthread_mutex_lock(&m->mu);
    m->closed = true;
    for (size_t i = 0; i < MUX_BUCKETS; i++)
        for (waiter *w = m->buckets[i]; w != NULL; w = w->next)
            pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&m->mu);
}

/* --- publishing ---------------------------------------------------------- */

/* The entries a publish matched; items points at local until it outgrows it. */
typedef struct collector {
    ms__inproc_entry **items;
    size_t n, cap;
    bool no_memory;
    bool groups; /* some match is in a queue group */
    ms__inproc_entry *local[COLLECT_LOCAL];
} collector;

/*
 * The last lookup of this thread: a publisher that sends many messages to
 * one subject (the common case) skips the subject-index walk while the
 * broker's index is unchanged. Valid only for the broker id at generation
 * gen, read and used under the broker's read lock: any subscribe or
 * unsubscribe bumps gen under the write lock before an entry can be freed,
 * so the cached entries are alive whenever gen still matches. Each thread
 * has its own, so nothing is shared.
 */
#define MATCH_CACHE_SUBJECT 128
typedef struct match_cache {
    uint64_t broker_id, gen;
    size_t n;
    bool groups;
    char subject[MATCH_CACHE_SUBJECT];
    ms__inproc_entry *items[COLLECT_LOCAL];
} match_cache;
static _Thread_local match_cache tl_match;

static ms__inproc_qgroup *group_of(const ms__inproc_entry *e)
{
    return e->kind == MS__INPROC_MAILBOX ? ((const ms__inproc_mailbox *)e)->qg : NULL;
}

static bool collect(void *value, void *closure)
{
    collector *c = closure;

    if (c->n == c->cap) {
        size_t cap = c->cap * 2;
        ms__inproc_entry **items;

        if (c->items == c->local) {
            items = ms__malloc(cap * sizeof *items);
            if (items != NULL)
                memcpy(items, c->local, c->n * sizeof *items);
        } else {
            items = ms__realloc(c->items, cap * sizeof *items);
        }
        if (items == NULL) {
            c->no_memory = true;
            return false;
        }
        c->items = items;
        c->cap = cap;
    }
    c->items[c->n++] = value;
    c->groups = c->groups || group_of(value) != NULL;
    return true;
}

/* Keep one member of each queue group among the matches (round robin) and
 * drop the others (broker lock held for reading). */
static void pick_queue_members(collector *c)
{
    size_t out = 0;

    for (size_t i = 0; i < c->n; i++) {
        ms__inproc_qgroup *g = c->items[i] ? group_of(c->items[i]) : NULL;
        size_t count = 0, pick, seen = 0, keep = i;

        if (g == NULL)
            continue;
        for (size_t j = i; j < c->n; j++)
            count += c->items[j] != NULL && group_of(c->items[j]) == g;
        pick = (size_t)(atomic_fetch_add_explicit(&g->rr, 1, memory_order_relaxed) % count);
        for (size_t j = i; j < c->n; j++) {
            if (c->items[j] == NULL || group_of(c->items[j]) != g)
                continue;
            if (seen++ == pick)
                keep = j;
            else if (j != keep)
                c->items[j] = NULL;
        }
        c->items[i] = c->items[keep]; /* the chosen one goes first: done */
        if (keep != i)
            c->items[keep] = NULL;
    }
    for (size_t i = 0; i < c->n; i++)
        if (c->items[i] != NULL)
            c->items[out++] = c->items[i];
    c->n = out;
}

/*
 * Deliver the frozen message m to every subscription matching its subject;
 * takes over the caller's reference to m. Under the read lock: collect the
 * matches, keep one member per queue group, and queue m into each mailbox
 * that has room (which never blocks). Whatever must wait for room, and the
 * response muxes, get a reference each and are served after the lock is
 * dropped, so a full queue never holds up subscribe or unsubscribe. The
 * caller's reference goes to the last queue m enters (then m is not touched
 * again: it may already be handled and freed). *matched = the number of
 * receivers (after queue groups). Every receiver with room gets m even when
 * another one fails; the last failure is returned.
 */
static ms_status publish_message(ms_bus *bus, ms_message *m, size_t *matched)
{
    inproc_bus *ib = bus->impl;
    ms__inproc_broker *b = ib->broker;
    collector c = {.cap = COLLECT_LOCAL};
    size_t later = 0;
    bool given = false, stored;
    ms_status s = MS_OK, r;

    c.items = c.local;
    *matched = 0;
    pthread_rwlock_rdlock(&b->lock);
    if (tl_match.broker_id == b->id && tl_match.gen == b->gen &&
        strcmp(tl_match.subject, ms_message_subject(m)) == 0) {
        memcpy(c.local, tl_match.items, tl_match.n * sizeof *c.local);
        c.n = tl_match.n;
        c.groups = tl_match.groups;
    } else {
        size_t len = strlen(ms_message_subject(m));

        (void)ms_subject_index_match(b->index, ms_message_subject(m), collect, &c);
        if (!c.no_memory && c.n <= COLLECT_LOCAL && len < MATCH_CACHE_SUBJECT) {
            memcpy(tl_match.subject, ms_message_subject(m), len + 1);
            memcpy(tl_match.items, c.items, c.n * sizeof *c.items);
            tl_match.n = c.n;
            tl_match.groups = c.groups;
            tl_match.broker_id = b->id;
            tl_match.gen = b->gen;
        }
    }
    if (c.no_memory) {
        pthread_rwlock_unlock(&b->lock);
        s = ms__err(MS_ERR_NO_MEMORY, "publish on '%s': collecting %zu matching subscriptions",
                    ms_message_subject(m), c.n);
        goto cleanup;
    }
    if (c.groups)
        pick_queue_members(&c);
    *matched = c.n;
    for (size_t i = 0; i < c.n; i++) {
        ms__inproc_entry *e = c.items[i];
        if (e->kind == MS__INPROC_MAILBOX) {
            bool give = i == c.n - 1 && later == 0;
            r = ms__inproc_mailbox_push((ms__inproc_mailbox *)e, m, ib->tracker, MS__INPROC_TRY,
                                        give, &stored);
            given = given || (give && stored);
            if (r == MS_OK)
                continue;
            if (r != MS_ERR_FULL) {
                s = r;
                continue;
            }
        }
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
        c.items[later++] = e;
    }
    pthread_rwlock_unlock(&b->lock);

    for (size_t i = 0; i < later; i++) {
        if (c.items[i]->kind == MS__INPROC_MAILBOX) {
            ms__inproc_mailbox *mb = (ms__inproc_mailbox *)c.items[i];
            bool give = i == later - 1;
            r = ms__inproc_mailbox_push(mb, m, ib->tracker, bus->opts.publish_timeout_ms, give,
                                        &stored);
            given = given || (give && stored);
            if (r != MS_OK)
                s = r;
            ms__inproc_mailbox_unref(mb);
        } else {
            mux_deliver((mux *)c.items[i], m);
            mux_unref((mux *)c.items[i]);
        }
    }

cleanup:
    if (!given)
        ms_message_unref(m);
    if (c.items != c.local)
        ms__free(c.items);
    return s;
}

/*
 * Blocks of finished messages this thread took back from a bus's tracker to
 * build its next messages in (ms__message_reuse), a batch at a time so that
 * a publish pays for the tracker's lock once per BLOCK_BATCH messages. A
 * block is plain memory: any bus's message may use it. Each thread has its
 * own; what a thread still holds is freed when it exits (blocks_key's
 * destructor), and a thread that cannot register that takes none.
 */
#define BLOCK_BATCH 32
typedef struct block_cache {
    size_t n;
    ms_message *m[BLOCK_BATCH];
} block_cache;
static _Thread_local block_cache tl_blocks;
static pthread_key_t blocks_key;
static pthread_once_t blocks_once = PTHREAD_ONCE_INIT;
static bool blocks_key_ok;

static void blocks_free(void *arg)
{
    block_cache *c = arg;

    while (c->n > 0)
        ms_message_unref(c->m[--c->n]);
}

static void blocks_init(void)
{
    blocks_key_ok = pthread_key_create(&blocks_key, blocks_free) == 0;
}

/* A reusable block for this thread's next message, or NULL. */
static ms_message *block_take(ms__inproc_tracker *t)
{
    block_cache *c = &tl_blocks;

    if (c->n == 0) {
        if (atomic_load_explicit(&t->nret, memory_order_relaxed) == 0)
            return NULL;
        (void)pthread_once(&blocks_once, blocks_init);
        if (!blocks_key_ok ||
            (pthread_getspecific(blocks_key) == NULL && pthread_setspecific(blocks_key, c) != 0))
            return NULL;
        if ((c->n = ms__inproc_tracker_take(t, c->m, BLOCK_BATCH)) == 0)
            return NULL;
    }
    return c->m[--c->n];
}

/* The message a publish sends: msg itself (frozen, one more reference) or a
 * new one made of subject/reply/data, in the block of one of the bus's
 * finished messages when one is free. *out is owned by the caller. */
static ms_status make_message(inproc_bus *ib, const char *subject, const char *reply,
                              const void *data, size_t len, ms_message *msg, ms_message **out)
{
    ms_message *m = NULL;
    ms_status s;

    if (msg != NULL) {
        ms__message_freeze(msg);
        *out = ms_message_ref(msg);
        return MS_OK;
    }
    /* bus.c validated subject and reply already. */
    m = block_take(ib->tracker);
    if (m != NULL && !ms__message_reuse(m, subject, data, len)) {
        ms_message_unref(m);
        m = NULL;
    }
    if (m == NULL && (s = ms__message_create_valid(subject, data, len, &m)) != MS_OK)
        return s;
    if (reply != NULL && (s = ms_message_set_reply(m, reply)) != MS_OK) {
        ms_message_unref(m);
        return s;
    }
    ms__message_freeze(m);
    *out = m;
    return MS_OK;
}

static ms_status closed_error(ms_bus *bus, const char *what)
{
    return ms__err(MS_ERR_CLOSED, "%s: the bus on %s is closed", what, bus->url);
}

static ms_status inproc_publish(ms_bus *bus, const char *subject, const char *reply,
                                const void *data, size_t len, ms_message *msg)
{
    inproc_bus *ib = bus->impl;
    ms_message *m = NULL;
    size_t matched;
    ms_status s;

    if (atomic_load_explicit(&ib->closed, memory_order_relaxed))
        return closed_error(bus, "publish");
    if ((s = make_message(ib, subject, reply, data, len, msg, &m)) != MS_OK)
        return ms__err_wrap(s, "publish on '%s'", subject);
    return publish_message(bus, m, &matched); /* takes m */
}

/* --- request/reply ------------------------------------------------------- */

/*
 * Register a waiter, publish with its reply subject, and wait on the
 * waiter's own condition variable: the reply's publisher (a handler on a
 * worker) hands the message over and wakes exactly this thread.
 */
static ms_status inproc_request(ms_bus *bus, const char *subject, const void *data, size_t len,
                                ms_message *msg, int timeout_ms, ms_message **reply)
{
    inproc_bus *ib = bus->impl;
    mux *m = ib->mux;
    waiter w = {.reply = NULL};
    char inbox[128];
    ms_message *out = NULL;
    struct timespec deadline;
    size_t matched = 0;
    ms_status s;
    int rc = 0;

    *reply = NULL;
    if (atomic_load_explicit(&ib->closed, memory_order_relaxed))
        return closed_error(bus, "request");
    atomic_init(&w.done, false);
    w.id = atomic_fetch_add_explicit(&ib->req_seq, 1, memory_order_relaxed) + 1;
    snprintf(inbox, sizeof inbox, "%.*s%llu", (int)m->base_len, m->pattern,
             (unsigned long long)w.id);
    /* A full message is copied so that the caller's keeps its reply subject. */
    if (msg != NULL)
        s = ms_message_clone(msg, &out);
    else
        s = ms_message_create(subject, data, len, &out);
    if (s == MS_OK)
        s = ms_message_set_reply(out, inbox);
    if (s != MS_OK) {
        ms__err_wrap(s, "request on '%s'", subject);
        goto cleanup;
    }
    ms__message_freeze(out);
    if (ms__inproc_cond_init(&w.cond) != 0) {
        s = ms__err(MS_ERR_INTERNAL, "request on '%s': initialising a condition", subject);
        goto cleanup;
    }

    pthread_mutex_lock(&m->mu);
    if (m->closed) {
        pthread_mutex_unlock(&m->mu);
        s = closed_error(bus, "request");
        goto cleanup_cond;
    }
    w.next = m->buckets[w.id % MUX_BUCKETS];
    m->buckets[w.id % MUX_BUCKETS] = &w;
    pthread_mutex_unlock(&m->mu);

    s = publish_message(bus, out, &matched);
    out = NULL; /* taken by publish_message */
    if (s == MS_OK && matched == 0)
        s = ms__err(MS_ERR_NO_RESPONDERS, "request on '%s': no subscription matches it on %s",
                    subject, bus->url);
    if (s == MS_OK) {
        ms__inproc_deadline(&deadline, timeout_ms);
        /* A reply usually follows within microseconds: watch for it a
         * moment before sleeping, which spares both sides a futex call. */
        ms__inproc_poll_flag(&w.done, timeout_ms < REQUEST_POLL_MS ? 0 : REQUEST_POLL_NS);
    }

    pthread_mutex_lock(&m->mu); /* also waits out a replier still inside */
    w.sleeping = true;
    while (s == MS_OK && !atomic_load_explicit(&w.done, memory_order_acquire) && !m->closed &&
           rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w.cond, &m->mu, &deadline);
    if (atomic_load_explicit(&w.done, memory_order_acquire)) {
        *reply = w.reply; /* a reply beats any error noticed after it was sent */
        s = MS_OK;
    } else {
        mux_forget(m, &w); /* a later reply finds nobody and is dropped */
        if (s == MS_OK && m->closed)
            s = closed_error(bus, "request");
        else if (s == MS_OK)
            s = ms__err(MS_ERR_TIMEOUT, "request on '%s': no reply within %d ms", subject,
                        timeout_ms);
    }
    pthread_mutex_unlock(&m->mu);

cleanup_cond:
    pthread_cond_destroy(&w.cond);
cleanup:
    ms_message_unref(out);
    return s;
}

/* --- subscriptions ------------------------------------------------------- */

/* Forget mailboxes whose handler unsubscribed them and has returned since
 * (ib->mu held). */
static void prune_zombies(inproc_bus *ib)
{
    ms__inproc_mailbox **pp = &ib->mailboxes;

    while (ib->zombies > 0 && *pp != NULL) {
        ms__inproc_mailbox *mb = *pp;
        if (mb->zombie && !ms__inproc_mailbox_running(mb)) {
            *pp = mb->bus_next;
            if (mb->bus_next != NULL)
                mb->bus_next->bus_prev = mb->bus_prev;
            ib->zombies--;
            ms__inproc_mailbox_unref(mb);
        } else {
            pp = &mb->bus_next;
        }
    }
}

static void list_unlink(inproc_bus *ib, ms__inproc_mailbox *mb)
{
    if (mb->bus_prev != NULL)
        mb->bus_prev->bus_next = mb->bus_next;
    else
        ib->mailboxes = mb->bus_next;
    if (mb->bus_next != NULL)
        mb->bus_next->bus_prev = mb->bus_prev;
    mb->bus_prev = mb->bus_next = NULL;
}

static ms_status inproc_subscribe(ms_bus *bus, ms_subscription *sub)
{
    inproc_bus *ib = bus->impl;
    ms__inproc_broker *b = ib->broker;
    ms__inproc_mailbox *mb = NULL;
    ms_status s;

    s = ms__inproc_mailbox_create(&b->pool, sub, (size_t)bus->opts.pending_msgs_limit,
                                  (size_t)bus->opts.pending_bytes_limit, &mb);
    if (s != MS_OK)
        return ms__err_wrap(s, "subscribe to '%s'", sub->subject);
    pthread_rwlock_wrlock(&b->lock);
    if (atomic_load(&ib->closed)) {
        s = closed_error(bus, "subscribe");
        goto fail;
    }
    /* Set before the first message can arrive: its handler may unsubscribe. */
    sub->impl = mb;
    if ((s = ms__inproc_broker_attach(b, mb)) != MS_OK)
        goto fail;
    pthread_mutex_lock(&ib->mu);
    prune_zombies(ib);
    mb->bus_next = ib->mailboxes;
    if (ib->mailboxes != NULL)
        ib->mailboxes->bus_prev = mb;
    ib->mailboxes = mb; /* the list takes the creation reference */
    pthread_mutex_unlock(&ib->mu);
    pthread_rwlock_unlock(&b->lock);
    return MS_OK;

fail:
    sub->impl = NULL;
    pthread_rwlock_unlock(&b->lock);
    ms__inproc_mailbox_unref(mb);
    return s;
}

static ms_status inproc_unsubscribe(ms_bus *bus, ms_subscription *sub)
{
    inproc_bus *ib = bus->impl;
    ms__inproc_mailbox *mb = sub->impl;
    bool from_handler;

    if (mb == NULL)
        return MS_OK;
    pthread_rwlock_wrlock(&ib->broker->lock);
    ms__inproc_broker_detach(ib->broker, mb);
    pthread_rwlock_unlock(&ib->broker->lock);
    from_handler = ms__inproc_mailbox_close(mb); /* waits for the handler unless in it */
    pthread_mutex_lock(&ib->mu);
    if (from_handler) {
        /* Listed until the handler returns, so close() can wait for it. */
        mb->zombie = true;
        ib->zombies++;
        mb = NULL;
    } else {
        list_unlink(ib, mb);
    }
    prune_zombies(ib);
    pthread_mutex_unlock(&ib->mu);
    sub->impl = NULL;
    ms__inproc_mailbox_unref(mb); /* the list's reference */
    return MS_OK;
}

/* Call fn on every mailbox of the bus (zombies included), without holding
 * the bus mutex during fn, which may block. */
static void each_mailbox(inproc_bus *ib, void (*fn)(ms__inproc_mailbox *, void *), void *arg)
{
    uint64_t gen;

    pthread_mutex_lock(&ib->visit_mu);
    pthread_mutex_lock(&ib->mu);
    gen = ++ib->visit_gen;
    pthread_mutex_unlock(&ib->mu);
    for (;;) {
        ms__inproc_mailbox *mb;

        pthread_mutex_lock(&ib->mu);
        for (mb = ib->mailboxes; mb != NULL && mb->visit_gen == gen; mb = mb->bus_next) {
        }
        if (mb != NULL) {
            mb->visit_gen = gen;
            ms__inproc_mailbox_ref(mb);
        }
        pthread_mutex_unlock(&ib->mu);
        if (mb == NULL)
            break;
        fn(mb, arg);
        ms__inproc_mailbox_unref(mb);
    }
    pthread_mutex_unlock(&ib->visit_mu);
}

/* Stop intake: take every subscription of the bus out of the index. */
static void detach_all(inproc_bus *ib)
{
    pthread_rwlock_wrlock(&ib->broker->lock);
    pthread_mutex_lock(&ib->mu);
    for (ms__inproc_mailbox *mb = ib->mailboxes; mb != NULL; mb = mb->bus_next)
        ms__inproc_broker_detach(ib->broker, mb);
    pthread_mutex_unlock(&ib->mu);
    pthread_rwlock_unlock(&ib->broker->lock);
}

static void close_one(ms__inproc_mailbox *mb, void *arg)
{
    (void)arg;
    ms__inproc_mailbox_close(mb); /* zombies: already closed, waits for the handler */
}

static void drain_one(ms__inproc_mailbox *mb, void *arg)
{
    const struct timespec *deadline = arg;
    (void)ms__inproc_mailbox_wait_idle(mb, deadline); /* drain checks the clock */
}

/* --- flush, drain, close ------------------------------------------------- */

static ms_status inproc_flush(ms_bus *bus, int timeout_ms)
{
    inproc_bus *ib = bus->impl;
    struct timespec deadline;

    if (atomic_load(&ib->closed))
        return closed_error(bus, "flush");
    /* A handler cannot wait for deliveries: its own may be among them. */
    if (ms__inproc_on_worker())
        return MS_OK;
    ms__inproc_deadline(&deadline, timeout_ms);
    if (ms__inproc_tracker_wait(ib->tracker, &deadline) == MS_OK) {
        ms__inproc_tracker_reclaim(ib->tracker); /* free what was handed back */
        return MS_OK;
    }
    return ms__err(MS_ERR_TIMEOUT,
                   "flush on %s: messages published before it were not all handled "
                   "within %d ms",
                   bus->url, timeout_ms);
}

static void inproc_close(ms_bus *bus)
{
    inproc_bus *ib = bus->impl;
    char detail[320];

    if (ib == NULL || atomic_exchange(&ib->closed, true))
        return;
    detach_all(ib);
    pthread_rwlock_wrlock(&ib->broker->lock);
    (void)ms_subject_index_remove(ib->broker->index, ib->mux->pattern, ib->mux);
    ib->broker->gen++;
    pthread_rwlock_unlock(&ib->broker->lock);
    mux_close(ib->mux);
    each_mailbox(ib, close_one, NULL);
    snprintf(detail, sizeof detail, "connection to %s closed", bus->url);
    ms__bus_event(bus, MS_BUS_CLOSED, detail);
}

static ms_status inproc_drain(ms_bus *bus, int timeout_ms)
{
    inproc_bus *ib = bus->impl;
    struct timespec deadline;
    bool late;

    if (atomic_load(&ib->closed))
        return closed_error(bus, "drain");
    ms__inproc_deadline(&deadline, timeout_ms);
    detach_all(ib);
    each_mailbox(ib, drain_one, &deadline);
    if (!ms__inproc_on_worker())
        (void)ms__inproc_tracker_wait(ib->tracker, &deadline);
    late = ms__inproc_past(&deadline);
    inproc_close(bus);
    if (late)
        return ms__err(MS_ERR_TIMEOUT,
                       "drain of %s: messages were still being handled after %d ms; closed "
                       "anyway",
                       bus->url, timeout_ms);
    return MS_OK;
}

/* --- connection ---------------------------------------------------------- */

static void bus_free(inproc_bus *ib)
{
    pthread_mutex_destroy(&ib->visit_mu);
    pthread_mutex_destroy(&ib->mu);
    ms__free(ib);
}

static ms_status inproc_connect(ms_bus *bus, const char *url)
{
    const char *name = url + SCHEME_LEN;
    size_t name_len = strlen(name);
    inproc_bus *ib;
    ms_status s;

    if (strncmp(url, "inproc://", SCHEME_LEN) != 0 || name_len == 0 || name_len > NAME_MAX_LEN ||
        strpbrk(name, " \t\r\n,/") != NULL)
        return ms__err(MS_ERR_INVALID_ARG,
                       "bus url '%s': want inproc://<name>, a name of 1 to %d characters "
                       "without whitespace, ',' or '/'",
                       url, NAME_MAX_LEN);
    ib = ms__calloc(1, sizeof *ib);
    if (ib == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "connect to %s: allocating the bus", url);
    atomic_init(&ib->closed, false);
    atomic_init(&ib->req_seq, 0);
    if (pthread_mutex_init(&ib->mu, NULL) != 0) {
        ms__free(ib);
        return ms__err(MS_ERR_INTERNAL, "connect to %s: initialising a mutex", url);
    }
    if (pthread_mutex_init(&ib->visit_mu, NULL) != 0) {
        pthread_mutex_destroy(&ib->mu);
        ms__free(ib);
        return ms__err(MS_ERR_INTERNAL, "connect to %s: initialising a mutex", url);
    }
    if ((s = ms__inproc_tracker_create(&ib->tracker)) != MS_OK)
        goto fail_tracker;
    if ((s = mux_create(bus->inbox_prefix, &ib->mux)) != MS_OK)
        goto fail_mux;
    if ((s = ms__inproc_broker_acquire(name, bus->opts.inproc_workers, &ib->broker)) != MS_OK)
        goto fail_broker;
    pthread_rwlock_wrlock(&ib->broker->lock);
    s = ms_subject_index_insert(ib->broker->index, ib->mux->pattern, ib->mux);
    ib->broker->gen++;
    pthread_rwlock_unlock(&ib->broker->lock);
    if (s != MS_OK)
        goto fail_insert;
    bus->impl = ib;
    return MS_OK;

fail_insert:
    ms__inproc_broker_release(ib->broker);
fail_broker:
    mux_unref(ib->mux);
fail_mux:
    ms__inproc_tracker_done(ib->tracker, 1);
fail_tracker:
    bus_free(ib);
    return ms__err_wrap(s, "connect to %s", url);
}

static void inproc_destroy(ms_bus *bus)
{
    inproc_bus *ib = bus->impl;
    ms__inproc_mailbox *mb;

    if (ib == NULL)
        return;
    inproc_close(bus);
    /* Left are zombies (and any subscription bus.c did not release). */
    while ((mb = ib->mailboxes) != NULL) {
        ms__inproc_mailbox_wait_stopped(mb);
        list_unlink(ib, mb);
        ms__inproc_mailbox_unref(mb);
    }
    mux_unref(ib->mux);
    ms__inproc_tracker_done(ib->tracker, 1); /* freed by the last delivery */
    ms__inproc_broker_release(ib->broker);
    bus_free(ib);
    bus->impl = NULL;
}

static size_t inproc_max_payload(const ms_bus *bus)
{
    return bus->opts.inproc_max_payload;
}

static bool inproc_is_connected(const ms_bus *bus)
{
    const inproc_bus *ib = bus->impl;
    return ib != NULL && !atomic_load(&ib->closed);
}

const ms__transport ms__inproc_transport = {
    .scheme = "inproc",
    .connect = inproc_connect,
    .publish = inproc_publish,
    .subscribe = inproc_subscribe,
    .unsubscribe = inproc_unsubscribe,
    .request = inproc_request,
    .flush = inproc_flush,
    .drain = inproc_drain,
    .close = inproc_close,
    .destroy = inproc_destroy,
    .max_payload = inproc_max_payload,
    .is_connected = inproc_is_connected,
};
