/*
 * runner.c - many runs at once on one thread (ms_proc_runner in proc.h).
 *
 * ms_proc_runner_start prepares (validates and copies) the spec in the
 * caller's thread and queues it; the runner thread spawns queued runs while
 * fewer than max_running are live, watches every live run's descriptors
 * (exec pipe, output, stdin, pidfd) in one level-triggered epoll set, and
 * walks the live list after each wake-up for timers and finished runs, whose
 * callbacks it calls. Descriptors are removed from epoll before they are
 * closed (a forked child elsewhere in the process may briefly hold a copy,
 * which would keep a closed descriptor's registration alive), and finished
 * runs are freed only after the whole batch of events is handled. An
 * eventfd wakes the thread for new runs, kills and destruction. Locking: `mu`
 * guards the queue, the live list's links, `active` and `stopping`; only the
 * runner thread mutates the live list and the runs on it.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "proc/proc_internal.h"

#define MAX_EVENTS 256
#define FDS_PER_RUN 5

struct ms_proc_runner {
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int epfd, evfd;
    pthread_t thread;
    bool thread_started;
    bool stopping;
    unsigned max_running;
    uint64_t next_id;
    size_t active;                     /* queued + live + in a callback */
    ms__proc *queue_head, *queue_tail; /* not spawned yet */
    ms__proc *live;                    /* spawned, doubly linked */
    unsigned nlive;
    int wake_tag; /* its address marks the eventfd in epoll */
};

void ms_proc_runner_options_init(ms_proc_runner_options *o)
{
    if (o != NULL)
        memset(o, 0, sizeof *o);
}

static unsigned default_max_running(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1024;
    if (rl.rlim_cur <= 64 + FDS_PER_RUN)
        return 1;
    rlim_t n = (rl.rlim_cur - 64) / FDS_PER_RUN;
    return n > 65536 ? 65536 : (unsigned)n;
}

static void wake(ms_proc_runner *r)
{
    uint64_t one = 1;
    ssize_t w;
    do
        w = write(r->evfd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
    /* EAGAIN: the counter is saturated, the thread is woken anyway */
}

/* --- runner thread ------------------------------------------------------- */

static void unwatch(void *arg, ms__proc *p, int slot, int fd)
{
    ms_proc_runner *r = arg;
    (void)p;
    (void)slot;
    (void)epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
}

static void deliver(ms_proc_runner *r, ms__proc *p)
{
    ms_proc_result res;
    ms__proc_take_result(p, &res);
    p->done_fn(&res, p->closure);
    ms_proc_result_reset(&res);
    ms__proc_free(p);
    pthread_mutex_lock(&r->mu);
    r->active--;
    if (r->active == 0)
        pthread_cond_broadcast(&r->idle);
    pthread_mutex_unlock(&r->mu);
}

static void deliver_unstarted(ms_proc_runner *r, ms__proc *p, const char *why)
{
    p->res.killed = true;
    snprintf(p->res.error, sizeof p->res.error, "proc '%s': %s", p->argv[0], why);
    deliver(r, p);
}

static bool watch_all(ms_proc_runner *r, ms__proc *p)
{
    for (int i = 0; i < MS__PFD_COUNT; i++) {
        if (p->fds[i] < 0)
            continue;
        p->watch[i].p = p;
        p->watch[i].slot = i;
        struct epoll_event ev = {.events = (uint32_t)(i == MS__PFD_IN ? EPOLLOUT : EPOLLIN),
                                 .data.ptr = &p->watch[i]};
        if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, p->fds[i], &ev) != 0)
            return false;
    }
    return true;
}

/* Spawn queued runs while there is room (or drop them when stopping). */
static void start_queued(ms_proc_runner *r)
{
    for (;;) {
        pthread_mutex_lock(&r->mu);
        ms__proc *p = r->queue_head;
        bool stopping = r->stopping;
        if (p == NULL || (!stopping && r->nlive >= r->max_running)) {
            pthread_mutex_unlock(&r->mu);
            return;
        }
        r->queue_head = p->next;
        if (r->queue_head == NULL)
            r->queue_tail = NULL;
        p->next = NULL;
        pthread_mutex_unlock(&r->mu);

        if (stopping) {
            deliver_unstarted(r, p, "not started: the runner was destroyed");
            continue;
        }
        if (atomic_load(&p->kill_requested)) {
            deliver_unstarted(r, p, "not started: killed while queued");
            continue;
        }
        p->close_hook = unwatch;
        p->close_arg = r;
        if (ms__proc_spawn(p) != MS_OK) {
            deliver(r, p);
            continue;
        }
        if (!watch_all(r, p)) {
            /* cannot watch it: end it here, in this thread */
            int err = errno;
            snprintf(p->res.error, sizeof p->res.error, "proc '%s': epoll_ctl: %s (killed)",
                     p->argv[0], strerror(err));
            ms__proc_stop(p, true, ms__proc_now_ns());
            ms__proc_loop(p);
            deliver(r, p);
            continue;
        }
        pthread_mutex_lock(&r->mu);
        p->prev = NULL;
        p->next = r->live;
        if (r->live)
            r->live->prev = p;
        r->live = p;
        r->nlive++;
        pthread_mutex_unlock(&r->mu);
    }
}

/* Apply kill requests to live runs; drop killed queued runs. */
static void apply_kills(ms_proc_runner *r, int64_t now)
{
    ms__proc *dropped = NULL;
    pthread_mutex_lock(&r->mu);
    bool stopping = r->stopping;
    ms__proc **pp = &r->queue_head;
    r->queue_tail = NULL;
    while (*pp != NULL) {
        ms__proc *p = *pp;
        if (stopping || atomic_load(&p->kill_requested)) {
            *pp = p->next;
            p->next = dropped;
            dropped = p;
        } else {
            r->queue_tail = p;
            pp = &p->next;
        }
    }
    pthread_mutex_unlock(&r->mu);
    for (ms__proc *p = r->live; p != NULL; p = p->next)
        if (stopping || atomic_load(&p->kill_requested))
            ms__proc_stop(p, stopping, now);
    while (dropped != NULL) {
        ms__proc *p = dropped;
        dropped = p->next;
        p->next = NULL;
        deliver_unstarted(r, p,
                          stopping ? "not started: the runner was destroyed"
                                   : "not started: killed while queued");
    }
}

static void *runner_main(void *arg)
{
    ms_proc_runner *r = arg;
    struct epoll_event evs[MAX_EVENTS];
    for (;;) {
        start_queued(r);
        pthread_mutex_lock(&r->mu);
        bool quit = r->stopping && r->live == NULL && r->queue_head == NULL;
        pthread_mutex_unlock(&r->mu);
        if (quit)
            break;

        int64_t now = ms__proc_now_ns();
        int64_t next = INT64_MAX;
        for (ms__proc *p = r->live; p != NULL; p = p->next) {
            int64_t t = ms__proc_next_deadline(p);
            if (t < next)
                next = t;
        }
        int timeout = -1;
        if (next != INT64_MAX) {
            int64_t ms = next <= now ? 0 : (next - now + 999999) / 1000000;
            timeout = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        int n = epoll_wait(r->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            /* should not happen; avoid spinning */
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            n = 0;
        }
        now = ms__proc_now_ns();
        bool woken = false;
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &r->wake_tag) {
                uint64_t v;
                while (read(r->evfd, &v, sizeof v) < 0 && errno == EINTR)
                    ;
                woken = true;
                continue;
            }
            ms__proc_watch *w = evs[i].data.ptr;
            ms__proc_on_ready(w->p, w->slot, now);
        }
        if (woken)
            apply_kills(r, now);
        now = ms__proc_now_ns();
        ms__proc *p = r->live;
        while (p != NULL) {
            ms__proc *next_p = p->next;
            ms__proc_tick(p, now);
            if (p->done) {
                pthread_mutex_lock(&r->mu);
                if (p->prev)
                    p->prev->next = p->next;
                else
                    r->live = p->next;
                if (p->next)
                    p->next->prev = p->prev;
                r->nlive--;
                pthread_mutex_unlock(&r->mu);
                p->next = p->prev = NULL;
                deliver(r, p);
            }
            p = next_p;
        }
    }
    return NULL;
}

/* --- public ---------------------------------------------------------------- */

ms_status ms_proc_runner_create(const ms_proc_runner_options *opts, ms_proc_runner **out)
{
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_proc_runner_create: out is NULL");
    *out = NULL;
    ms_proc_runner *r = ms__calloc(1, sizeof *r);
    if (r == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "proc runner: out of memory");
    ms_status st = MS_OK;
    bool mu_ok = false, cv_ok = false;
    r->epfd = r->evfd = -1;
    r->max_running = (opts && opts->max_running) ? opts->max_running : default_max_running();
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        st = ms__err(MS_ERR_INTERNAL, "proc runner: pthread_mutex_init failed");
        goto cleanup;
    }
    mu_ok = true;
    if (pthread_cond_init(&r->idle, NULL) != 0) {
        st = ms__err(MS_ERR_INTERNAL, "proc runner: pthread_cond_init failed");
        goto cleanup;
    }
    cv_ok = true;
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r->epfd < 0) {
        st = ms__err(MS_ERR_IO, "proc runner: epoll_create1: %s", strerror(errno));
        goto cleanup;
    }
    r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->evfd < 0) {
        st = ms__err(MS_ERR_IO, "proc runner: eventfd: %s", strerror(errno));
        goto cleanup;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &r->wake_tag};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev) != 0) {
        st = ms__err(MS_ERR_IO, "proc runner: epoll_ctl: %s", strerror(errno));
        goto cleanup;
    }
    /* The thread runs with every signal blocked: the host's handlers never
     * run on it, and a SIGPIPE from a stdin write stays harmless. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, runner_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        st = ms__err(MS_ERR_IO, "proc runner: pthread_create: %s", strerror(rc));
        goto cleanup;
    }
    r->thread_started = true;
    *out = r;
    return MS_OK;

cleanup:
    if (r->evfd >= 0)
        close(r->evfd);
    if (r->epfd >= 0)
        close(r->epfd);
    if (cv_ok)
        pthread_cond_destroy(&r->idle);
    if (mu_ok)
        pthread_mutex_destroy(&r->mu);
    ms__free(r);
    return st;
}

ms_status ms_proc_runner_start(ms_proc_runner *r, const ms_proc_spec *spec, ms_proc_done_fn done,
                               void *closure, uint64_t *id_out)
{
    if (r == NULL || done == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_proc_runner_start: %s is NULL",
                       r == NULL ? "runner" : "done callback");
    ms__proc *p = NULL;
    ms_status st = ms__proc_prepare(spec, &p);
    if (st != MS_OK)
        return st;
    p->done_fn = done;
    p->closure = closure;
    pthread_mutex_lock(&r->mu);
    if (r->stopping) {
        pthread_mutex_unlock(&r->mu);
        ms__proc_free(p);
        return ms__err(MS_ERR_CLOSED, "proc '%s': the runner is being destroyed", spec->argv[0]);
    }
    p->id = ++r->next_id;
    if (r->queue_tail)
        r->queue_tail->next = p;
    else
        r->queue_head = p;
    r->queue_tail = p;
    r->active++;
    uint64_t id = p->id;
    pthread_mutex_unlock(&r->mu);
    wake(r);
    if (id_out)
        *id_out = id;
    return MS_OK;
}

ms_status ms_proc_runner_kill(ms_proc_runner *r, uint64_t id)
{
    if (r == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_proc_runner_kill: runner is NULL");
    bool found = false;
    pthread_mutex_lock(&r->mu);
    for (ms__proc *p = r->queue_head; p != NULL && !found; p = p->next)
        if (p->id == id) {
            atomic_store(&p->kill_requested, true);
            found = true;
        }
    for (ms__proc *p = r->live; p != NULL && !found; p = p->next)
        if (p->id == id) {
            atomic_store(&p->kill_requested, true);
            found = true;
        }
    pthread_mutex_unlock(&r->mu);
    if (!found)
        return ms__err(MS_ERR_NOT_FOUND, "proc runner: no run %llu queued or running",
                       (unsigned long long)id);
    wake(r);
    return MS_OK;
}

ms_status ms_proc_runner_kill_all(ms_proc_runner *r, size_t *killed)
{
    size_t n = 0;
    if (killed != NULL)
        *killed = 0;
    if (r == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_proc_runner_kill_all: runner is NULL");
    pthread_mutex_lock(&r->mu);
    for (ms__proc *p = r->queue_head; p != NULL; p = p->next, n++)
        atomic_store(&p->kill_requested, true);
    for (ms__proc *p = r->live; p != NULL; p = p->next, n++)
        atomic_store(&p->kill_requested, true);
    pthread_mutex_unlock(&r->mu);
    if (n > 0)
        wake(r);
    if (killed != NULL)
        *killed = n;
    return MS_OK;
}

size_t ms_proc_runner_active(ms_proc_runner *r)
{
    if (r == NULL)
        return 0;
    pthread_mutex_lock(&r->mu);
    size_t n = r->active;
    pthread_mutex_unlock(&r->mu);
    return n;
}

ms_status ms_proc_runner_wait_idle(ms_proc_runner *r, int timeout_ms)
{
    if (r == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_proc_runner_wait_idle: runner is NULL");
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (dl.tv_nsec >= 1000000000L) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000L;
        }
    }
    ms_status st = MS_OK;
    pthread_mutex_lock(&r->mu);
    while (r->active > 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&r->idle, &r->mu);
        } else if (pthread_cond_timedwait(&r->idle, &r->mu, &dl) == ETIMEDOUT) {
            if (r->active > 0)
                st = ms__err(MS_ERR_TIMEOUT, "proc runner: %zu runs still active after %d ms",
                             r->active, timeout_ms);
            break;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return st;
}

void ms_proc_runner_destroy(ms_proc_runner *r)
{
    if (r == NULL)
        return;
    if (r->thread_started) {
        pthread_mutex_lock(&r->mu);
        r->stopping = true;
        pthread_mutex_unlock(&r->mu);
        wake(r);
        pthread_join(r->thread, NULL);
    }
    close(r->evfd);
    close(r->epfd);
    pthread_cond_destroy(&r->idle);
    pthread_mutex_destroy(&r->mu);
    ms__free(r);
}
