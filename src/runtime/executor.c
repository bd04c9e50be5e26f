/*
 * executor.c - the runtime's worker pool and its mailboxes (executor.h).
 *
 * Scheduling is by tokens: a token is the right of one worker to run tasks
 * of one mailbox. A mailbox asks for as many tokens as it can use (one for
 * a serial mailbox; up to the number of workers for a concurrent one, never
 * more than it has tasks; one while an exclusive task waits at the head)
 * and puts them on the pool's run queue; a worker takes a token, runs up to
 * BATCH tasks in a row while the mailbox allows it, then gives it back, so
 * one busy instance cannot starve the others. A poster may also run a task
 * itself, on its own thread, when a serial mailbox is idle
 * (ms__mailbox_try_run_inline): it takes the token a worker would have
 * taken, so every rule above holds unchanged, and saves the wake-up of a
 * worker. Locks: a mailbox's own mutex
 * for its queue and counters, the pool's mutex for the run queue; the pool
 * mutex is never held while a mailbox mutex is taken.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/log.h"
#include "runtime/executor.h"

#define BATCH 32       /* tasks a worker runs in a row before yielding */
#define INITIAL_RING 4 /* ring slots of a new mailbox; grows by doubling */

typedef struct task {
    ms__task_fn fn;
    ms__task_fn drop;
    void *arg;
    unsigned flags;
} task;

struct ms__mailbox {
    ms__executor *ex;
    pthread_mutex_t mu;
    pthread_cond_t not_full; /* posters waiting for room */
    pthread_cond_t idle;     /* waiters for "nothing queued, no token out" */
    task *ring;
    size_t ring_cap, head, len;
    size_t capacity; /* bound on queued ordinary tasks */
    size_t ordinary; /* queued ordinary (non-control) tasks */
    unsigned max_parallel;
    unsigned tokens;  /* tokens out: on the run queue or held by a worker */
    unsigned running; /* tasks running now */
    bool exclusive_running;
    bool intake_open;
    bool dead;        /* being destroyed: refuse everything */
    unsigned waiting; /* posters blocked on a full mailbox */
    /* under ex->mu */
    unsigned runq_tokens; /* tokens of this mailbox waiting on the run queue */
    bool in_runq;
    struct ms__mailbox *runq_next;
};

struct ms__executor {
    pthread_mutex_t mu;
    pthread_cond_t work;
    ms__mailbox *runq_head, *runq_tail;
    bool stopping;
    int nworkers;
    int started;
    pthread_t *threads;
};

static _Thread_local ms__mailbox *tls_current;
/* True while the thread runs a task inline (ms__mailbox_try_run_inline). */
static _Thread_local bool tls_inline;

/* --- time ------------------------------------------------------------------ */

static struct timespec deadline_after(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int init_cond(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rc = pthread_condattr_init(&a);
    if (rc != 0)
        return rc;
    rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc;
}

/* --- run queue (ex->mu held) ------------------------------------------------ */

static void runq_append(ms__executor *ex, ms__mailbox *mb)
{
    mb->runq_next = NULL;
    if (ex->runq_tail != NULL)
        ex->runq_tail->runq_next = mb;
    else
        ex->runq_head = mb;
    ex->runq_tail = mb;
    mb->in_runq = true;
}

/* Take one token off the head mailbox; a mailbox with more tokens waiting
 * goes to the tail, so tokens of different mailboxes take turns. */
static ms__mailbox *runq_take(ms__executor *ex)
{
    ms__mailbox *mb = ex->runq_head;
    ex->runq_head = mb->runq_next;
    if (ex->runq_head == NULL)
        ex->runq_tail = NULL;
    mb->in_runq = false;
    mb->runq_next = NULL;
    mb->runq_tokens--;
    if (mb->runq_tokens > 0)
        runq_append(ex, mb);
    return mb;
}

/* Called after mb->mu is released: with n == 0 the mailbox may already be
 * idle and freed by its owner (a retired instance), so it is not touched;
 * with n > 0 its tokens keep it from being idle. */
static void give_tokens(ms__mailbox *mb, unsigned n)
{
    ms__executor *ex;
    if (n == 0)
        return;
    ex = mb->ex;
    pthread_mutex_lock(&ex->mu);
    mb->runq_tokens += n;
    if (!mb->in_runq)
        runq_append(ex, mb);
    if (n == 1)
        pthread_cond_signal(&ex->work);
    else
        pthread_cond_broadcast(&ex->work);
    pthread_mutex_unlock(&ex->mu);
}

/* --- mailbox state (mb->mu held) -------------------------------------------- */

static bool head_exclusive(const ms__mailbox *mb)
{
    return (mb->ring[mb->head].flags & MS__TASK_EXCLUSIVE) != 0;
}

/* Tokens to add so that every task that could run now has a worker. */
static unsigned tokens_wanted(const ms__mailbox *mb)
{
    size_t target;
    if (mb->len == 0 || mb->exclusive_running || mb->dead)
        return 0;
    if (head_exclusive(mb)) {
        target = mb->running == 0 ? 1 : 0;
    } else {
        target = (size_t)mb->running + mb->len;
        if (target > mb->max_parallel)
            target = mb->max_parallel;
    }
    return target > mb->tokens ? (unsigned)(target - mb->tokens) : 0;
}

static bool can_run_head(const ms__mailbox *mb)
{
    if (mb->len == 0 || mb->exclusive_running || mb->dead)
        return false;
    return !head_exclusive(mb) || mb->running == 0;
}

static task pop_task(ms__mailbox *mb)
{
    task t = mb->ring[mb->head];
    mb->head = (mb->head + 1) % mb->ring_cap;
    mb->len--;
    if ((t.flags & MS__TASK_CONTROL) == 0) {
        mb->ordinary--;
        pthread_cond_signal(&mb->not_full);
    }
    return t;
}

static void release_token(ms__mailbox *mb)
{
    mb->tokens--;
    if (mb->tokens == 0 && mb->len == 0)
        pthread_cond_broadcast(&mb->idle);
}

static ms_status grow_ring(ms__mailbox *mb)
{
    size_t ncap = mb->ring_cap * 2;
    task *nr = ms__malloc(ncap * sizeof *nr);
    if (nr == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "mailbox: growing the queue to %zu tasks", ncap);
    for (size_t i = 0; i < mb->len; i++)
        nr[i] = mb->ring[(mb->head + i) % mb->ring_cap];
    ms__free(mb->ring);
    mb->ring = nr;
    mb->ring_cap = ncap;
    mb->head = 0;
    return MS_OK;
}

/* --- workers ----------------------------------------------------------------- */

/* Run tasks of mb with one token, then give the token back. */
static void run_mailbox(ms__mailbox *mb)
{
    int done = 0;
    unsigned more;

    pthread_mutex_lock(&mb->mu);
    for (;;) {
        task t;
        bool exclusive;
        if (!can_run_head(mb)) {
            release_token(mb);
            pthread_mutex_unlock(&mb->mu);
            return;
        }
        t = pop_task(mb);
        exclusive = (t.flags & MS__TASK_EXCLUSIVE) != 0;
        mb->running++;
        if (exclusive)
            mb->exclusive_running = true;
        more = tokens_wanted(mb);
        mb->tokens += more;
        pthread_mutex_unlock(&mb->mu);
        give_tokens(mb, more);

        tls_current = mb;
        t.fn(t.arg);
        tls_current = NULL;

        pthread_mutex_lock(&mb->mu);
        mb->running--;
        if (exclusive)
            mb->exclusive_running = false;
        if (++done >= BATCH) {
            /* Yield: give the token back and ask again, behind the others. */
            release_token(mb);
            more = tokens_wanted(mb);
            mb->tokens += more;
            pthread_mutex_unlock(&mb->mu);
            give_tokens(mb, more);
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    ms__executor *ex = arg;
    for (;;) {
        ms__mailbox *mb;
        pthread_mutex_lock(&ex->mu);
        while (ex->runq_head == NULL && !ex->stopping)
            pthread_cond_wait(&ex->work, &ex->mu);
        if (ex->runq_head == NULL) {
            pthread_mutex_unlock(&ex->mu);
            return NULL;
        }
        mb = runq_take(ex);
        pthread_mutex_unlock(&ex->mu);
        run_mailbox(mb);
    }
}

ms_status ms__executor_create(int workers, ms__executor **out)
{
    ms__executor *ex = NULL;
    sigset_t all, old;
    ms_status s = MS_OK;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "executor: out is NULL");
    *out = NULL;
    if (workers <= 0 || workers > 4096)
        return ms__err(MS_ERR_INVALID_ARG, "executor: workers must be 1..4096 (got %d)", workers);
    ex = ms__calloc(1, sizeof *ex);
    if (ex == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "executor: allocating");
    ex->threads = ms__calloc((size_t)workers, sizeof *ex->threads);
    if (ex->threads == NULL) {
        ms__free(ex);
        return ms__err(MS_ERR_NO_MEMORY, "executor: allocating %d threads", workers);
    }
    if (pthread_mutex_init(&ex->mu, NULL) != 0 || init_cond(&ex->work) != 0) {
        ms__free(ex->threads);
        ms__free(ex);
        return ms__err(MS_ERR_INTERNAL, "executor: initializing locks");
    }
    ex->nworkers = workers;
    /* Workers take no signals: the host thread handles them. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < workers; i++) {
        int rc = pthread_create(&ex->threads[i], NULL, worker_main, ex);
        if (rc != 0) {
            s = ms__err(MS_ERR_INTERNAL, "executor: starting worker %d of %d: %s", i + 1, workers,
                        strerror(rc));
            break;
        }
        char name[16];
        snprintf(name, sizeof name, "ms-worker-%u", (unsigned)i % 1000u);
        (void)pthread_setname_np(ex->threads[i], name);
        ex->started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (s != MS_OK) {
        (void)ms__executor_destroy(ex, -1);
        return s;
    }
    *out = ex;
    return MS_OK;
}

int ms__executor_workers(const ms__executor *ex)
{
    return ex == NULL ? 0 : ex->nworkers;
}

bool ms__executor_destroy(ms__executor *ex, int timeout_ms)
{
    bool leaked = false;
    struct timespec deadline;

    if (ex == NULL)
        return true;
    pthread_mutex_lock(&ex->mu);
    ex->stopping = true;
    pthread_cond_broadcast(&ex->work);
    pthread_mutex_unlock(&ex->mu);
    deadline = deadline_after(timeout_ms < 0 ? 0 : timeout_ms);
    for (int i = 0; i < ex->started; i++) {
        if (timeout_ms < 0) {
            pthread_join(ex->threads[i], NULL);
            continue;
        }
        /* pthread_timedjoin_np takes a CLOCK_REALTIME deadline; convert the
         * remaining monotonic time. */
        struct timespec now, rt;
        long long left_ns;
        clock_gettime(CLOCK_MONOTONIC, &now);
        left_ns = (long long)(deadline.tv_sec - now.tv_sec) * 1000000000LL +
                  (deadline.tv_nsec - now.tv_nsec);
        if (left_ns < 0)
            left_ns = 0;
        clock_gettime(CLOCK_REALTIME, &rt);
        rt.tv_sec += (time_t)(left_ns / 1000000000LL);
        rt.tv_nsec += (long)(left_ns % 1000000000LL);
        if (rt.tv_nsec >= 1000000000L) {
            rt.tv_sec++;
            rt.tv_nsec -= 1000000000L;
        }
        if (pthread_timedjoin_np(ex->threads[i], NULL, &rt) != 0) {
            (void)pthread_detach(ex->threads[i]);
            leaked = true;
        }
    }
    if (leaked) {
        ms_logf(MS_LOG_ERROR, "runtime",
                "worker pool: a worker is still inside a component call after %d ms; "
                "leaving it running (the pool's memory is leaked)",
                timeout_ms);
        return false;
    }
    pthread_cond_destroy(&ex->work);
    pthread_mutex_destroy(&ex->mu);
    ms__free(ex->threads);
    ms__free(ex);
    return true;
}

/* --- mailboxes --------------------------------------------------------------- */

ms_status ms__mailbox_create(ms__executor *ex, size_t capacity, bool concurrent, ms__mailbox **out)
{
    ms__mailbox *mb;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "mailbox: out is NULL");
    *out = NULL;
    if (ex == NULL || capacity == 0)
        return ms__err(MS_ERR_INVALID_ARG, "mailbox: an executor and a capacity > 0 are needed");
    mb = ms__calloc(1, sizeof *mb);
    if (mb == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "mailbox: allocating");
    mb->ring = ms__malloc(INITIAL_RING * sizeof *mb->ring);
    if (mb->ring == NULL) {
        ms__free(mb);
        return ms__err(MS_ERR_NO_MEMORY, "mailbox: allocating its queue");
    }
    if (pthread_mutex_init(&mb->mu, NULL) != 0)
        goto fail_mu;
    if (init_cond(&mb->not_full) != 0)
        goto fail_nf;
    if (init_cond(&mb->idle) != 0)
        goto fail_idle;
    mb->ex = ex;
    mb->ring_cap = INITIAL_RING;
    mb->capacity = capacity;
    mb->max_parallel = concurrent ? (unsigned)ex->nworkers : 1;
    mb->intake_open = true;
    *out = mb;
    return MS_OK;

fail_idle:
    pthread_cond_destroy(&mb->not_full);
fail_nf:
    pthread_mutex_destroy(&mb->mu);
fail_mu:
    ms__free(mb->ring);
    ms__free(mb);
    return ms__err(MS_ERR_INTERNAL, "mailbox: initializing locks");
}

ms_status ms__mailbox_post(ms__mailbox *mb, ms__task_fn fn, ms__task_fn drop, void *arg,
                           unsigned flags, int timeout_ms)
{
    bool control = (flags & MS__TASK_CONTROL) != 0;
    bool have_deadline = false;
    struct timespec deadline;
    unsigned more;
    ms_status s;

    if (mb == NULL || fn == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "mailbox post: mailbox and function are required");
    pthread_mutex_lock(&mb->mu);
    if (!control) {
        while (mb->intake_open && !mb->dead && mb->ordinary >= mb->capacity) {
            int rc;
            if (timeout_ms == 0) {
                rc = ETIMEDOUT;
            } else {
                mb->waiting++;
                if (timeout_ms < 0) {
                    rc = pthread_cond_wait(&mb->not_full, &mb->mu);
                } else {
                    if (!have_deadline) {
                        deadline = deadline_after(timeout_ms);
                        have_deadline = true;
                    }
                    rc = pthread_cond_timedwait(&mb->not_full, &mb->mu, &deadline);
                }
                mb->waiting--;
                if (mb->dead && mb->waiting == 0)
                    pthread_cond_broadcast(&mb->idle); /* destroy waits for us */
            }
            if (rc == ETIMEDOUT && mb->ordinary >= mb->capacity && mb->intake_open && !mb->dead) {
                pthread_mutex_unlock(&mb->mu);
                return ms__err(MS_ERR_FULL,
                               "mailbox full: %zu messages queued (the capacity) "
                               "for %d ms",
                               mb->capacity, timeout_ms);
            }
        }
    }
    if (mb->dead || (!control && !mb->intake_open)) {
        pthread_mutex_unlock(&mb->mu);
        return ms__err(MS_ERR_CLOSED, "mailbox closed: the instance is stopping");
    }
    if (mb->len == mb->ring_cap && (s = grow_ring(mb)) != MS_OK) {
        pthread_mutex_unlock(&mb->mu);
        return s;
    }
    if ((flags & MS__TASK_URGENT) != 0) {
        mb->head = (mb->head + mb->ring_cap - 1) % mb->ring_cap;
        mb->ring[mb->head] = (task){fn, drop, arg, flags};
    } else {
        mb->ring[(mb->head + mb->len) % mb->ring_cap] = (task){fn, drop, arg, flags};
    }
    mb->len++;
    if (!control)
        mb->ordinary++;
    more = tokens_wanted(mb);
    mb->tokens += more;
    pthread_mutex_unlock(&mb->mu);
    give_tokens(mb, more);
    return MS_OK;
}

bool ms__mailbox_try_run_inline(ms__mailbox *mb, ms__task_fn fn, void *arg)
{
    ms__mailbox *outer_mb;
    bool outer_inline;
    unsigned more;

    if (mb == NULL || fn == NULL)
        return false;
    pthread_mutex_lock(&mb->mu);
    if (mb->max_parallel != 1 || mb->len != 0 || mb->tokens != 0 || mb->dead || !mb->intake_open) {
        pthread_mutex_unlock(&mb->mu);
        return false;
    }
    /* Take the serial mailbox's only token, as a worker does from the run
     * queue: what is posted meanwhile queues behind this task, an exclusive
     * task waits for it, and wait_idle and destroy wait for it. */
    mb->tokens = 1;
    mb->running++;
    pthread_mutex_unlock(&mb->mu);

    outer_mb = tls_current;
    outer_inline = tls_inline;
    tls_current = mb;
    tls_inline = true;
    fn(arg);
    tls_current = outer_mb;
    tls_inline = outer_inline;

    /* Give the token back; what was posted meanwhile goes to a worker. */
    pthread_mutex_lock(&mb->mu);
    mb->running--;
    release_token(mb);
    more = tokens_wanted(mb);
    mb->tokens += more;
    pthread_mutex_unlock(&mb->mu);
    give_tokens(mb, more);
    return true;
}

void ms__mailbox_set_intake(ms__mailbox *mb, bool open)
{
    if (mb == NULL)
        return;
    pthread_mutex_lock(&mb->mu);
    mb->intake_open = open;
    if (!open)
        pthread_cond_broadcast(&mb->not_full);
    pthread_mutex_unlock(&mb->mu);
}

size_t ms__mailbox_length(ms__mailbox *mb)
{
    size_t n;
    if (mb == NULL)
        return 0;
    pthread_mutex_lock(&mb->mu);
    n = mb->len;
    pthread_mutex_unlock(&mb->mu);
    return n;
}

bool ms__mailbox_wait_idle(ms__mailbox *mb, int timeout_ms)
{
    struct timespec deadline;
    bool idle;

    if (mb == NULL)
        return true;
    if (timeout_ms >= 0)
        deadline = deadline_after(timeout_ms);
    pthread_mutex_lock(&mb->mu);
    while (!(mb->len == 0 && mb->tokens == 0)) {
        int rc = timeout_ms < 0 ? pthread_cond_wait(&mb->idle, &mb->mu)
                                : pthread_cond_timedwait(&mb->idle, &mb->mu, &deadline);
        if (rc == ETIMEDOUT)
            break;
    }
    idle = mb->len == 0 && mb->tokens == 0;
    pthread_mutex_unlock(&mb->mu);
    return idle;
}

/* Drop every queued task, one at a time with the lock released around each
 * drop call (a drop may publish, log or take its instance's lock). Returns
 * how many. mb->mu held on entry and on return. */
static size_t drop_queued(ms__mailbox *mb)
{
    size_t n = 0;
    while (mb->len > 0) {
        task t = pop_task(mb);
        pthread_mutex_unlock(&mb->mu);
        if (t.drop != NULL)
            t.drop(t.arg);
        n++;
        pthread_mutex_lock(&mb->mu);
    }
    return n;
}

size_t ms__mailbox_discard(ms__mailbox *mb)
{
    size_t n;
    if (mb == NULL)
        return 0;
    pthread_mutex_lock(&mb->mu);
    n = drop_queued(mb);
    if (mb->tokens == 0 && mb->len == 0)
        pthread_cond_broadcast(&mb->idle);
    pthread_mutex_unlock(&mb->mu);
    return n;
}

void ms__mailbox_destroy(ms__mailbox *mb)
{
    if (mb == NULL)
        return;
    pthread_mutex_lock(&mb->mu);
    mb->dead = true;
    mb->intake_open = false;
    pthread_cond_broadcast(&mb->not_full);
    (void)drop_queued(mb);
    while (mb->tokens > 0 || mb->waiting > 0)
        pthread_cond_wait(&mb->idle, &mb->mu);
    pthread_mutex_unlock(&mb->mu);
    pthread_cond_destroy(&mb->idle);
    pthread_cond_destroy(&mb->not_full);
    pthread_mutex_destroy(&mb->mu);
    ms__free(mb->ring);
    ms__free(mb);
}

ms__mailbox *ms__mailbox_current(void)
{
    return tls_current;
}

bool ms__mailbox_current_is_inline(void)
{
    return tls_inline;
}
