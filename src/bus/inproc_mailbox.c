/*
 * inproc_mailbox.c - the worker pool, the per-subscription mailboxes it runs
 * and the per-bus delivery trackers of the inproc transport (see inproc.h).
 *
 * A publisher appends to a mailbox under its mutex; a mailbox going from idle
 * to non-empty is put on the pool's ready list, waking a worker only if one
 * sleeps and none is on its way. A worker swaps the queue for an empty one in
 * one step and runs the handler on the batch without the lock; a busy mailbox
 * that runs dry is polled a moment before it is let go, and after its fair
 * share it is requeued behind the others.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "bus/inproc.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/message_internal.h"

#define FAIR_SHARE 512       /* messages before a busy mailbox yields its worker */
#define POLL_NS 20000        /* how long a worker polls a dry busy mailbox */
#define ACCUM_SPIN_NS 2000   /* spin for a batch to build after a small one */
#define ACCUM_SLEEP_NS 20000 /* sleep (at least) this after a large one */
#define STREAM_BATCH 16      /* a batch this large means a stream */
#define YIELD_AFTER_NS 500   /* a wait loop spins this long, then yields */
#define BATCH_TARGET 64      /* take at once when this many are queued */
#define QUEUE_MIN 16         /* first queue allocation, in slots */
#define QUEUE_KEEP 4096      /* an idle queue larger than this is released */
#define TAKE_TRIES 8         /* handed-back messages a publisher looks at per take */
#define RETURN_MAX_LEN 1024  /* larger payloads are freed by the worker */
#define RETURN_KEEP 4096     /* handed-back messages kept without trimming */
#define TRIM_STEP 4          /* extra ones a publisher frees per take above that */

/* Set on the pool's worker threads, read by ms__inproc_on_worker (flush and
 * drain must not wait for deliveries from a thread that makes them).
 * Thread-local, so no state is shared between threads. */
static _Thread_local bool tls_on_worker;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* --- time and locks ------------------------------------------------------ */

int ms__inproc_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int rc;

    if ((rc = pthread_condattr_init(&attr)) != 0)
        return rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &attr);
    pthread_condattr_destroy(&attr);
    return rc;
}

int ms__inproc_mutex_init(pthread_mutex_t *m)
{
    pthread_mutexattr_t attr;
    int rc;

    if ((rc = pthread_mutexattr_init(&attr)) != 0)
        return rc;
    /* Critical sections here are a few dozen instructions: spinning a
     * little beats sleeping in the kernel when two threads meet. */
    rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
    if (rc == 0)
        rc = pthread_mutex_init(m, &attr);
    pthread_mutexattr_destroy(&attr);
    return rc;
}

static uint64_t now_ns(void)
{
    struct timespec ts;

    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One step of a wait loop that has spun for spun_ns: a few pause
 * instructions at first, then yield the CPU, in case the thread we wait for
 * shares it (a busy machine). */
static void spin_step(uint64_t spun_ns)
{
    if (spun_ns < YIELD_AFTER_NS) {
        for (int k = 0; k < 8; k++)
            cpu_relax();
    } else {
        (void)sched_yield(); /* cannot fail on Linux */
    }
}

bool ms__inproc_poll_flag(atomic_bool *flag, uint64_t ns)
{
    uint64_t start;

    if (atomic_load_explicit(flag, memory_order_acquire) || ns == 0)
        return atomic_load_explicit(flag, memory_order_acquire);
    start = now_ns();
    for (;;) {
        uint64_t spun;

        if (atomic_load_explicit(flag, memory_order_acquire))
            return true;
        if ((spun = now_ns() - start) > ns)
            return false;
        spin_step(spun);
    }
}

void ms__inproc_deadline(struct timespec *out, int ms)
{
    (void)clock_gettime(CLOCK_MONOTONIC, out);
    if (ms < 0)
        ms = 0;
    out->tv_sec += ms / 1000;
    out->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (out->tv_nsec >= 1000000000L) {
        out->tv_sec++;
        out->tv_nsec -= 1000000000L;
    }
}

bool ms__inproc_past(const struct timespec *deadline)
{
    struct timespec now;

    (void)clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* --- delivery tracker ----------------------------------------------------
 * state = references in the low 32 bits (queued deliveries + the owner +
 * one per waiting flusher) and waiting flushers in the high 32 bits. A
 * delivery that finishes while nobody waits is one compare-and-swap; with
 * flushers present it decrements under the mutex and wakes them when no
 * delivery is left. Whoever frees takes and drops the mutex first, so a
 * thread still inside it (a waker) is never freed under.
 */
#define TRK_FLUSHER ((uint64_t)1 + ((uint64_t)1 << 32))
#define TRK_REFS(s) ((s)&0xffffffffu)
#define TRK_FLUSHERS(s) ((s) >> 32)
/* No delivery left: only the owner and the flushers hold references. */
#define TRK_QUIET(s) (TRK_REFS(s) == 1 + TRK_FLUSHERS(s))

static void tracker_free(ms__inproc_tracker *t)
{
    pthread_mutex_lock(&t->mu);
    pthread_mutex_unlock(&t->mu);
    ms__inproc_tracker_reclaim(t);
    pthread_mutex_destroy(&t->ret_mu);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->mu);
    ms__free(t);
}

ms_status ms__inproc_tracker_create(ms__inproc_tracker **out)
{
    ms__inproc_tracker *t = ms__calloc(1, sizeof *t);

    *out = NULL;
    if (t == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "inproc: allocating a delivery tracker");
    atomic_init(&t->state, 1);
    atomic_init(&t->nret, 0);
    if (ms__inproc_mutex_init(&t->mu) != 0)
        goto fail_mutex;
    if (ms__inproc_cond_init(&t->cond) != 0)
        goto fail_cond;
    if (ms__inproc_mutex_init(&t->ret_mu) != 0)
        goto fail_ret;
    *out = t;
    return MS_OK;

fail_ret:
    pthread_cond_destroy(&t->cond);
fail_cond:
    pthread_mutex_destroy(&t->mu);
fail_mutex:
    ms__free(t);
    return ms__err(MS_ERR_INTERNAL, "inproc: initialising a delivery tracker");
}

void ms__inproc_tracker_done(ms__inproc_tracker *t, long n)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_acquire);
    uint64_t left;

    while (TRK_FLUSHERS(s) == 0) {
        if (atomic_compare_exchange_weak_explicit(&t->state, &s, s - (uint64_t)n,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            if (TRK_REFS(s - (uint64_t)n) == 0)
                tracker_free(t);
            return;
        }
    }
    pthread_mutex_lock(&t->mu);
    left = atomic_fetch_sub_explicit(&t->state, (uint64_t)n, memory_order_acq_rel) - (uint64_t)n;
    if (TRK_FLUSHERS(left) > 0 && TRK_QUIET(left))
        pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    if (TRK_REFS(left) == 0)
        tracker_free(t);
}

ms_status ms__inproc_tracker_wait(ms__inproc_tracker *t, const struct timespec *deadline)
{
    uint64_t s;
    bool quiet;
    int rc = 0;

    pthread_mutex_lock(&t->mu);
    s = atomic_fetch_add_explicit(&t->state, TRK_FLUSHER, memory_order_acq_rel) + TRK_FLUSHER;
    while (!TRK_QUIET(s) && rc != ETIMEDOUT) {
        rc = pthread_cond_timedwait(&t->cond, &t->mu, deadline);
        s = atomic_load_explicit(&t->state, memory_order_acquire);
    }
    quiet = TRK_QUIET(s);
    s = atomic_fetch_sub_explicit(&t->state, TRK_FLUSHER, memory_order_acq_rel) - TRK_FLUSHER;
    pthread_mutex_unlock(&t->mu);
    if (TRK_REFS(s) == 0) /* only if the owner let go while we waited */
        tracker_free(t);
    return quiet ? MS_OK : MS_ERR_TIMEOUT;
}

void ms__inproc_tracker_reclaim(ms__inproc_tracker *t)
{
    ms_message **ret;
    size_t n;

    pthread_mutex_lock(&t->ret_mu);
    ret = t->ret;
    n = atomic_load_explicit(&t->nret, memory_order_relaxed);
    t->ret = NULL;
    t->cap = 0;
    atomic_store_explicit(&t->nret, 0, memory_order_relaxed);
    pthread_mutex_unlock(&t->ret_mu);
    for (size_t i = 0; i < n; i++)
        ms_message_unref(ret[i]);
    ms__free(ret);
}

size_t ms__inproc_tracker_take(ms__inproc_tracker *t, ms_message **out, size_t max)
{
    ms_message *drop[TAKE_TRIES + TRIM_STEP];
    size_t ndrop = 0, got = 0, left;

    if (atomic_load_explicit(&t->nret, memory_order_relaxed) == 0)
        return 0;
    /* A message another subscription or a handler still holds cannot be
     * reused: its reference is dropped instead (after the lock), as are a
     * few more when the stash holds more than the publishers need. */
    pthread_mutex_lock(&t->ret_mu);
    left = atomic_load_explicit(&t->nret, memory_order_relaxed);
    while (left > 0 && got < max && ndrop < TAKE_TRIES) {
        ms_message *c = t->ret[--left];
        if (ms__message_exclusive(c))
            out[got++] = c;
        else
            drop[ndrop++] = c;
    }
    for (size_t k = 0; k < TRIM_STEP && left > RETURN_KEEP; k++)
        drop[ndrop++] = t->ret[--left];
    atomic_store_explicit(&t->nret, left, memory_order_relaxed);
    pthread_mutex_unlock(&t->ret_mu);
    for (size_t i = 0; i < ndrop; i++)
        ms_message_unref(drop[i]);
    return got;
}

/* Hand n finished messages back to their publisher's tracker; large ones,
 * not worth keeping around, and any the stash has no room for (it could
 * not grow) are dropped right here. */
static void tracker_give_back(ms__inproc_tracker *t, const ms__inproc_slot *slots, size_t n)
{
    size_t i = 0, kept;

    pthread_mutex_lock(&t->ret_mu);
    kept = atomic_load_explicit(&t->nret, memory_order_relaxed);
    if (kept + n > t->cap) {
        size_t cap = t->cap == 0 ? 64 : t->cap;
        ms_message **ret;

        while (cap < kept + n)
            cap *= 2;
        if ((ret = ms__realloc(t->ret, cap * sizeof *ret)) != NULL) {
            t->ret = ret;
            t->cap = cap;
        }
    }
    for (; i < n && kept < t->cap; i++) {
        if (slots[i].len <= RETURN_MAX_LEN)
            t->ret[kept++] = slots[i].msg;
        else
            ms_message_unref(slots[i].msg);
    }
    atomic_store_explicit(&t->nret, kept, memory_order_relaxed);
    pthread_mutex_unlock(&t->ret_mu);
    for (; i < n; i++)
        ms_message_unref(slots[i].msg);
}

/* Finish n slots: give the messages back to their publishers, then count
 * them done on their trackers (runs of the same tracker at once). */
static void release_slots(const ms__inproc_slot *slots, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t j = i + 1;
        while (j < n && slots[j].tracker == slots[i].tracker)
            j++;
        tracker_give_back(slots[i].tracker, slots + i, j - i);
        ms__inproc_tracker_done(slots[i].tracker, (long)(j - i));
        i = j;
    }
}

/* --- worker pool --------------------------------------------------------- */

/* Put a scheduled mailbox (its scheduled reference travels with it) on the
 * ready list, waking a sleeping worker unless enough are on their way. */
static void pool_push(ms__inproc_pool *p, ms__inproc_mailbox *mb)
{
    size_t nready;

    pthread_mutex_lock(&p->mu);
    mb->ready_next = NULL;
    if (p->tail != NULL)
        p->tail->ready_next = mb;
    else
        p->head = mb;
    p->tail = mb;
    nready = atomic_load_explicit(&p->nready, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->nready, nready, memory_order_relaxed);
    if (p->idle > p->waking && nready > (size_t)p->waking) {
        p->waking++;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->mu);
}

/* Drop everything queued (mb->mu held). */
static void queue_discard(ms__inproc_mailbox *mb)
{
    release_slots(mb->in.v, mb->in.n);
    mb->count -= mb->in.n;
    mb->in.n = 0;
    atomic_store_explicit(&mb->avail, 0, memory_order_relaxed);
}

static void slots_free(ms__inproc_slots *q)
{
    ms__free(q->v);
    q->v = NULL;
    q->n = q->cap = 0;
}

/* The mailbox ran dry on this worker: poll it for a moment before letting it
 * go, since a stream's next message or a caller's next request is usually
 * microseconds away and picking it up here saves the publisher a trip
 * through the pool and a futex wake-up. Gives up early when the mailbox is
 * closed or other mailboxes are waiting. */
static void poll_mailbox(ms__inproc_pool *p, ms__inproc_mailbox *mb)
{
    uint64_t start = now_ns();

    for (;;) {
        uint64_t spun;

        if (atomic_load_explicit(&mb->avail, memory_order_acquire) > 0 ||
            atomic_load_explicit(&mb->closed, memory_order_relaxed) ||
            atomic_load_explicit(&p->nready, memory_order_relaxed) > 0)
            return;
        if ((spun = now_ns() - start) > POLL_NS)
            return;
        spin_step(spun); /* also: look at the publishers' line less often */
    }
}

/* Messages kept arriving while the last batch was handled: let a batch
 * build up before taking it. Taken a few at a time, every message costs the
 * publisher cache misses on the queue and its lock; taken in batches, they
 * stay in its cache. After a small batch (a few callers, a stream starting)
 * the worker spins a moment; after a large one (a stream going flat out)
 * it sleeps a little, which leaves the CPU to the publishers. Either way it
 * looks at the mailbox rarely, for the same reason. */
static void let_batch_build(ms__inproc_pool *p, ms__inproc_mailbox *mb, bool stream)
{
    uint64_t start = now_ns();

    if (stream) {
        struct timespec ts = {0, ACCUM_SLEEP_NS};
        (void)nanosleep(&ts, NULL); /* EINTR: just a shorter wait */
        return;
    }
    for (;;) {
        for (int k = 0; k < 64; k++)
            cpu_relax();
        if (now_ns() - start > ACCUM_SPIN_NS ||
            atomic_load_explicit(&mb->avail, memory_order_relaxed) >= BATCH_TARGET ||
            atomic_load_explicit(&mb->closed, memory_order_relaxed) ||
            atomic_load_explicit(&p->nready, memory_order_relaxed) > 0)
            return;
    }
}

/*
 * Run a scheduled mailbox on this worker: take the whole queue, deliver it,
 * repeat until it is empty (polling a moment first if it is busy), closed,
 * or has had its share; then unschedule or requeue it.
 */
static void run_mailbox(ms__inproc_pool *p, ms__inproc_mailbox *mb)
{
    ms_subscription *sub = mb->sub; /* read once: its line is the publishers' */
    ms__inproc_slots batch;
    size_t handled = 0, last = 0;
    bool requeue = false, hot;

    pthread_mutex_lock(&mb->mu);
    mb->running = true;
    mb->runner = pthread_self();
    /* Busy lately (a stream, a request loop): worth polling when dry. */
    hot = now_ns() - mb->last_run_ns < POLL_NS;
    for (;;) {
        size_t bytes = 0, settled = 0, delivered = 0;

        if (atomic_load_explicit(&mb->closed, memory_order_relaxed))
            break;
        if (mb->in.n == 0) {
            if (!hot && handled < 2)
                break;
            pthread_mutex_unlock(&mb->mu);
            poll_mailbox(p, mb);
            pthread_mutex_lock(&mb->mu);
            if (mb->in.n == 0 || atomic_load_explicit(&mb->closed, memory_order_relaxed))
                break; /* checked under the lock: nothing can be stranded */
        } else if (handled > 0 && mb->in.n < BATCH_TARGET &&
                   atomic_load_explicit(&mb->waiters, memory_order_relaxed) == 0 &&
                   atomic_load_explicit(&p->nready, memory_order_relaxed) == 0) {
            /* A stream, nobody blocked on it and no other mailbox waiting. */
            pthread_mutex_unlock(&mb->mu);
            let_batch_build(p, mb, last >= STREAM_BATCH);
            pthread_mutex_lock(&mb->mu);
            if (atomic_load_explicit(&mb->closed, memory_order_relaxed))
                break;
        }
        if (handled >= FAIR_SHARE) {
            requeue = true;
            break;
        }
        batch = mb->in;
        last = batch.n;
        mb->in = mb->spare;
        mb->spare = (ms__inproc_slots){0};
        atomic_store_explicit(&mb->avail, 0, memory_order_relaxed);
        pthread_mutex_unlock(&mb->mu);

        for (; delivered < batch.n; delivered++) {
            size_t i = delivered;
            /* Unsubscribed (maybe by the handler itself): the subscription
             * may be freed already, so it is not touched again. */
            if (atomic_load_explicit(&mb->closed, memory_order_acquire))
                break;
            ms__bus_deliver(sub, batch.v[i].msg);
            bytes += batch.v[i].len;
            if (atomic_load_explicit(&mb->waiters, memory_order_relaxed) > 0) {
                /* Publishers wait for room: free what is handled now
                 * rather than at the end of the batch. */
                pthread_mutex_lock(&mb->mu);
                mb->count -= i + 1 - settled;
                mb->bytes -= bytes;
                settled = i + 1;
                bytes = 0;
                pthread_cond_broadcast(&mb->cond);
                pthread_mutex_unlock(&mb->mu);
            }
        }
        for (size_t i = delivered; i < batch.n; i++)
            bytes += batch.v[i].len; /* dropped, if closed meanwhile */
        /* Room first, then the trackers: whoever a flush releases finds the
         * queue's space already given back. */
        pthread_mutex_lock(&mb->mu);
        mb->count -= batch.n - settled;
        mb->bytes -= bytes;
        if (atomic_load_explicit(&mb->waiters, memory_order_relaxed) > 0)
            pthread_cond_broadcast(&mb->cond); /* room for blocked publishers */
        pthread_mutex_unlock(&mb->mu);
        release_slots(batch.v, batch.n);
        handled += batch.n;

        pthread_mutex_lock(&mb->mu);
        batch.n = 0;
        if (mb->spare.v == NULL && batch.cap <= QUEUE_KEEP)
            mb->spare = batch; /* reused for the next swap */
        else
            slots_free(&batch);
    }
    if (atomic_load_explicit(&mb->closed, memory_order_relaxed)) {
        queue_discard(mb);
        requeue = false;
    }
    if (mb->in.n == 0 && mb->in.cap > QUEUE_KEEP)
        slots_free(&mb->in); /* a burst is over: give the memory back */
    mb->last_run_ns = now_ns();
    mb->running = false;
    if (!requeue)
        mb->scheduled = false;
    if (atomic_load_explicit(&mb->waiters, memory_order_relaxed) > 0)
        pthread_cond_broadcast(&mb->cond);
    pthread_mutex_unlock(&mb->mu);
    if (requeue)
        pool_push(p, mb);
    else
        ms__inproc_mailbox_unref(mb); /* the scheduled reference */
}

static void *worker_main(void *arg)
{
    ms__inproc_pool *p = arg;

    tls_on_worker = true;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        ms__inproc_mailbox *mb = p->head;

        if (mb != NULL) {
            p->head = mb->ready_next;
            if (p->head == NULL)
                p->tail = NULL;
            atomic_store_explicit(&p->nready,
                                  atomic_load_explicit(&p->nready, memory_order_relaxed) - 1,
                                  memory_order_relaxed);
            mb->ready_next = NULL;
            pthread_mutex_unlock(&p->mu);
            run_mailbox(p, mb);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        if (p->stop)
            break;
        p->idle++;
        pthread_cond_wait(&p->cond, &p->mu);
        p->idle--;
        if (p->waking > 0)
            p->waking--;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ms_status ms__inproc_pool_start(ms__inproc_pool *p, int nthreads)
{
    ms_status s = MS_OK;
    int started = 0;

    memset(p, 0, sizeof *p);
    atomic_init(&p->nready, 0);
    if (ms__inproc_mutex_init(&p->mu) != 0)
        return ms__err(MS_ERR_INTERNAL, "inproc: initialising the worker pool");
    if (pthread_cond_init(&p->cond, NULL) != 0) {
        s = ms__err(MS_ERR_INTERNAL, "inproc: initialising the worker pool");
        goto fail_cond;
    }
    p->threads = ms__calloc((size_t)nthreads, sizeof *p->threads);
    if (p->threads == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "inproc: allocating %d worker threads", nthreads);
        goto fail_threads;
    }
    for (; started < nthreads; started++) {
        int rc = pthread_create(&p->threads[started], NULL, worker_main, p);
        if (rc != 0) {
            s = ms__err(rc == EAGAIN ? MS_ERR_NO_MEMORY : MS_ERR_INTERNAL,
                        "inproc: starting worker thread %d of %d: %s", started + 1, nthreads,
                        strerror(rc));
            goto fail_start;
        }
    }
    p->nthreads = nthreads;
    return MS_OK;

fail_start:
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    while (started > 0)
        pthread_join(p->threads[--started], NULL);
    ms__free(p->threads);
fail_threads:
    pthread_cond_destroy(&p->cond);
fail_cond:
    pthread_mutex_destroy(&p->mu);
    return s;
}

void ms__inproc_pool_stop(ms__inproc_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    ms__free(p->threads);
    p->threads = NULL;
    p->nthreads = 0;
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->mu);
}

bool ms__inproc_on_worker(void)
{
    return tls_on_worker;
}

/* --- mailboxes ----------------------------------------------------------- */

ms_status ms__inproc_mailbox_create(ms__inproc_pool *pool, ms_subscription *sub, size_t max_msgs,
                                    size_t max_bytes, ms__inproc_mailbox **out)
{
    ms__inproc_mailbox *mb = ms__calloc(1, sizeof *mb);

    *out = NULL;
    if (mb == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "inproc: allocating the queue of '%s'", sub->subject);
    mb->hdr.kind = MS__INPROC_MAILBOX;
    atomic_init(&mb->hdr.refs, 1);
    atomic_init(&mb->closed, false);
    atomic_init(&mb->avail, 0);
    atomic_init(&mb->waiters, 0);
    mb->sub = sub;
    mb->pool = pool;
    mb->max_msgs = max_msgs;
    mb->max_bytes = max_bytes;
    if (ms__inproc_mutex_init(&mb->mu) != 0)
        goto fail_mutex;
    if (ms__inproc_cond_init(&mb->cond) != 0)
        goto fail_cond;
    *out = mb;
    return MS_OK;

fail_cond:
    pthread_mutex_destroy(&mb->mu);
fail_mutex:
    ms__free(mb);
    return ms__err(MS_ERR_INTERNAL, "inproc: initialising the queue of '%s'", sub->subject);
}

void ms__inproc_mailbox_ref(ms__inproc_mailbox *mb)
{
    atomic_fetch_add_explicit(&mb->hdr.refs, 1, memory_order_relaxed);
}

void ms__inproc_mailbox_unref(ms__inproc_mailbox *mb)
{
    if (mb == NULL || atomic_fetch_sub_explicit(&mb->hdr.refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: nobody is queued on, running or waiting on it. */
    queue_discard(mb);
    slots_free(&mb->in);
    slots_free(&mb->spare);
    pthread_cond_destroy(&mb->cond);
    pthread_mutex_destroy(&mb->mu);
    ms__free(mb);
}

static bool is_runner(const ms__inproc_mailbox *mb)
{
    return mb->running && pthread_equal(mb->runner, pthread_self());
}

static bool queue_full(const ms__inproc_mailbox *mb, size_t len)
{
    return mb->count >= mb->max_msgs || (mb->count > 0 && mb->bytes + len > mb->max_bytes);
}

/* Make room for one more slot in `in` (mb->mu held). */
static ms_status queue_grow(ms__inproc_mailbox *mb)
{
    size_t cap = mb->in.cap == 0 ? QUEUE_MIN : mb->in.cap * 2;
    ms__inproc_slot *v = ms__realloc(mb->in.v, cap * sizeof *v);

    if (v == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "inproc: growing the queue of '%s' to %zu messages",
                       mb->sub->subject, cap);
    mb->in.v = v;
    mb->in.cap = cap;
    return MS_OK;
}

static ms_status full_error(const ms__inproc_mailbox *mb, int waited_ms)
{
    const ms_subscription *sub = mb->sub;

    return ms__err(MS_ERR_FULL,
                   "inproc: the queue of subscription '%s'%s%s%s is full (%zu messages, %zu "
                   "bytes pending; limits %zu messages, %zu bytes) after waiting %d ms",
                   sub->subject, sub->queue ? " (queue group '" : "", sub->queue ? sub->queue : "",
                   sub->queue ? "')" : "", mb->count, mb->bytes, mb->max_msgs, mb->max_bytes,
                   waited_ms);
}

ms_status ms__inproc_mailbox_push(ms__inproc_mailbox *mb, ms_message *msg,
                                  ms__inproc_tracker *tracker, int timeout_ms, bool give,
                                  bool *stored)
{
    size_t len = ms_message_len(msg);
    struct timespec deadline;
    bool timing = false, schedule = false;
    ms_status s = MS_OK;

    *stored = false;
    pthread_mutex_lock(&mb->mu);
    for (;;) {
        int rc;

        if (atomic_load_explicit(&mb->closed, memory_order_relaxed))
            goto unlock; /* unsubscribed meanwhile: nobody to deliver to */
        if (!queue_full(mb, len))
            break;
        if (timeout_ms == MS__INPROC_TRY) {
            s = MS_ERR_FULL;
            goto unlock;
        }
        /* Its own handler cannot make room by waiting. */
        if (timeout_ms <= 0 || is_runner(mb)) {
            s = full_error(mb, 0);
            goto unlock;
        }
        if (!timing) {
            ms__inproc_deadline(&deadline, timeout_ms);
            timing = true;
        }
        atomic_fetch_add_explicit(&mb->waiters, 1, memory_order_relaxed);
        rc = pthread_cond_timedwait(&mb->cond, &mb->mu, &deadline);
        atomic_fetch_sub_explicit(&mb->waiters, 1, memory_order_relaxed);
        if (rc == ETIMEDOUT && queue_full(mb, len) &&
            !atomic_load_explicit(&mb->closed, memory_order_relaxed)) {
            s = full_error(mb, timeout_ms);
            goto unlock;
        }
    }
    if (mb->in.n == mb->in.cap && (s = queue_grow(mb)) != MS_OK)
        goto unlock;
    mb->in.v[mb->in.n++] = (ms__inproc_slot){give ? msg : ms_message_ref(msg), tracker, len};
    *stored = true;
    atomic_fetch_add_explicit(&tracker->state, 1, memory_order_relaxed);
    atomic_store_explicit(&mb->avail, mb->in.n, memory_order_release);
    mb->count++;
    mb->bytes += len;
    if (!mb->scheduled) {
        mb->scheduled = true;
        ms__inproc_mailbox_ref(mb); /* the scheduled reference */
        schedule = true;
    }

unlock:
    pthread_mutex_unlock(&mb->mu);
    if (schedule)
        pool_push(mb->pool, mb);
    return s;
}

/* Wait until no worker runs mb, unless this thread is that worker (mb->mu
 * held). */
static void wait_stopped_locked(ms__inproc_mailbox *mb)
{
    while (mb->running && !is_runner(mb)) {
        atomic_fetch_add_explicit(&mb->waiters, 1, memory_order_relaxed);
        pthread_cond_wait(&mb->cond, &mb->mu);
        atomic_fetch_sub_explicit(&mb->waiters, 1, memory_order_relaxed);
    }
}

bool ms__inproc_mailbox_close(ms__inproc_mailbox *mb)
{
    bool self;

    pthread_mutex_lock(&mb->mu);
    atomic_store_explicit(&mb->closed, true, memory_order_release);
    queue_discard(mb);
    if (atomic_load_explicit(&mb->waiters, memory_order_relaxed) > 0)
        pthread_cond_broadcast(&mb->cond); /* blocked publishers give up */
    wait_stopped_locked(mb);
    self = is_runner(mb);
    pthread_mutex_unlock(&mb->mu);
    return self;
}

bool ms__inproc_mailbox_running(ms__inproc_mailbox *mb)
{
    bool running;

    pthread_mutex_lock(&mb->mu);
    running = mb->running;
    pthread_mutex_unlock(&mb->mu);
    return running;
}

void ms__inproc_mailbox_wait_stopped(ms__inproc_mailbox *mb)
{
    pthread_mutex_lock(&mb->mu);
    wait_stopped_locked(mb);
    pthread_mutex_unlock(&mb->mu);
}

ms_status ms__inproc_mailbox_wait_idle(ms__inproc_mailbox *mb, const struct timespec *deadline)
{
    ms_status s = MS_OK;
    int rc = 0;

    pthread_mutex_lock(&mb->mu);
    while ((mb->count > 0 || mb->scheduled) && !is_runner(mb) &&
           !atomic_load_explicit(&mb->closed, memory_order_relaxed)) {
        if (rc == ETIMEDOUT) {
            s = MS_ERR_TIMEOUT;
            break;
        }
        atomic_fetch_add_explicit(&mb->waiters, 1, memory_order_relaxed);
        rc = pthread_cond_timedwait(&mb->cond, &mb->mu, deadline);
        atomic_fetch_sub_explicit(&mb->waiters, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&mb->mu);
    return s;
}
