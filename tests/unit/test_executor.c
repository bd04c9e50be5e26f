/*
 * test_executor.c - the runtime's worker pool and mailboxes: FIFO order,
 * one task at a time per serial mailbox, parallelism of concurrent ones,
 * exclusive tasks running alone, the capacity bound (block, then
 * MS_ERR_FULL; control tasks pass), closed intake, discard and destroy
 * calling drop, and fairness between mailboxes.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "ms_test.h"
#include "runtime/executor.h"

/* --- helpers ----------------------------------------------------------------- */

typedef struct probe {
    atomic_int inside;     /* tasks of this mailbox running now */
    atomic_int max_inside; /* the most seen at once */
    atomic_int overlaps;   /* times a task found another inside (serial) */
    atomic_int ran;
    atomic_int dropped;
    int order[256];
    atomic_int next;
    int sleep_ms;
} probe;

typedef struct job {
    probe *p;
    int seq;
} job;

static void note_max(atomic_int *max, int v)
{
    int cur = atomic_load(max);
    while (v > cur && !atomic_compare_exchange_weak(max, &cur, v)) {
    }
}

static void job_run(void *arg)
{
    job *j = arg;
    probe *p = j->p;
    int now = atomic_fetch_add(&p->inside, 1) + 1;
    if (now > 1)
        atomic_fetch_add(&p->overlaps, 1);
    note_max(&p->max_inside, now);
    if (p->sleep_ms > 0)
        ms_test_sleep_ms(p->sleep_ms);
    int slot = atomic_fetch_add(&p->next, 1);
    if (slot < 256)
        p->order[slot] = j->seq;
    atomic_fetch_sub(&p->inside, 1);
    atomic_fetch_add(&p->ran, 1);
    free(j);
}

static void job_drop(void *arg)
{
    job *j = arg;
    atomic_fetch_add(&j->p->dropped, 1);
    free(j);
}

static ms_status post_job(ms__mailbox *mb, probe *p, int seq, unsigned flags, int timeout_ms)
{
    job *j = malloc(sizeof *j);
    assert_non_null(j);
    j->p = p;
    j->seq = seq;
    ms_status s = ms__mailbox_post(mb, job_run, job_drop, j, flags, timeout_ms);
    if (s != MS_OK)
        free(j);
    return s;
}

/* A task that blocks until released, to hold a worker. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    atomic_int entered;
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    atomic_init(&g->entered, 0);
}

static void gate_task(void *arg)
{
    gate *g = arg;
    atomic_fetch_add(&g->entered, 1);
    pthread_mutex_lock(&g->mu);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int gate_entered(void *arg)
{
    return atomic_load(&((gate *)arg)->entered) > 0;
}

static void gate_destroy(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

/* --- cases ------------------------------------------------------------------- */

static void bad_args(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    ms_assert_status(ms__executor_create(0, &ex), MS_ERR_INVALID_ARG);
    ms_assert_status(ms__executor_create(2, NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms__executor_create(1, &ex));
    assert_int_equal(ms__executor_workers(ex), 1);
    ms_assert_status(ms__mailbox_create(ex, 0, false, &mb), MS_ERR_INVALID_ARG);
    ms_assert_status(ms__mailbox_create(NULL, 4, false, &mb), MS_ERR_INVALID_ARG);
    ms_assert_status(ms__mailbox_create(ex, 4, false, NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms__mailbox_create(ex, 4, false, &mb));
    ms_assert_status(ms__mailbox_post(mb, NULL, NULL, NULL, 0, 0), MS_ERR_INVALID_ARG);
    ms_assert_status(ms__mailbox_post(NULL, job_run, NULL, NULL, 0, 0), MS_ERR_INVALID_ARG);
    ms__mailbox_destroy(mb);
    ms__mailbox_destroy(NULL);
    assert_true(ms__executor_destroy(ex, -1));
    assert_true(ms__executor_destroy(NULL, 0));
}

static void fifo_order(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    probe p;
    memset(&p, 0, sizeof p);
    ms_assert_ok(ms__executor_create(2, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 1000, false, &mb));
    for (int i = 0; i < 200; i++)
        ms_assert_ok(post_job(mb, &p, i, 0, 0));
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_int_equal(atomic_load(&p.ran), 200);
    for (int i = 0; i < 200; i++)
        assert_int_equal(p.order[i], i);
    assert_int_equal(atomic_load(&p.overlaps), 0);
    assert_int_equal(ms__mailbox_length(mb), 0);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
}

/* Many serial mailboxes on a pool of 4: within each, never two at once;
 * across them, the pool is used. */
static void serial_never_overlaps(void **state)
{
    (void)state;
    enum { MBS = 6, PER = 40 };
    ms__executor *ex = NULL;
    ms__mailbox *mb[MBS];
    probe *p = calloc(MBS, sizeof *p);
    assert_non_null(p);
    ms_assert_ok(ms__executor_create(4, &ex));
    for (int m = 0; m < MBS; m++) {
        ms_assert_ok(ms__mailbox_create(ex, 100, false, &mb[m]));
        p[m].sleep_ms = 1;
    }
    for (int i = 0; i < PER; i++)
        for (int m = 0; m < MBS; m++)
            ms_assert_ok(post_job(mb[m], &p[m], i, 0, -1));
    for (int m = 0; m < MBS; m++) {
        assert_true(ms__mailbox_wait_idle(mb[m], 10000));
        assert_int_equal(atomic_load(&p[m].ran), PER);
        assert_int_equal(atomic_load(&p[m].overlaps), 0);
        assert_int_equal(atomic_load(&p[m].max_inside), 1);
        for (int i = 0; i < PER; i++)
            assert_int_equal(p[m].order[i], i);
        ms__mailbox_destroy(mb[m]);
    }
    assert_true(ms__executor_destroy(ex, -1));
    free(p);
}

/* Tasks that wait for each other can only finish if they run in parallel. */
typedef struct meet {
    atomic_int arrived;
    int want;
    atomic_int met;
} meet;

static void meet_task(void *arg)
{
    meet *m = arg;
    atomic_fetch_add(&m->arrived, 1);
    int64_t deadline = ms_test_now_ms() + 5000;
    while (atomic_load(&m->arrived) < m->want && ms_test_now_ms() < deadline)
        ms_test_sleep_ms(1);
    if (atomic_load(&m->arrived) >= m->want)
        atomic_fetch_add(&m->met, 1);
}

static void concurrent_runs_in_parallel(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    meet m = {.want = 3};
    ms_assert_ok(ms__executor_create(3, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 100, true, &mb));
    for (int i = 0; i < 3; i++)
        ms_assert_ok(ms__mailbox_post(mb, meet_task, NULL, &m, 0, 0));
    assert_true(ms__mailbox_wait_idle(mb, 10000));
    assert_int_equal(atomic_load(&m.met), 3);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
}

/* An exclusive task on a concurrent mailbox runs alone, after the tasks
 * before it and before the tasks after it. */
typedef struct excl_probe {
    atomic_int inside;
    atomic_int bad;
    atomic_int before_done;
    atomic_int after_started_early;
    atomic_int excl_done;
} excl_probe;

static void excl_before(void *arg)
{
    excl_probe *e = arg;
    atomic_fetch_add(&e->inside, 1);
    ms_test_sleep_ms(5);
    atomic_fetch_sub(&e->inside, 1);
    atomic_fetch_add(&e->before_done, 1);
}

static void excl_task(void *arg)
{
    excl_probe *e = arg;
    if (atomic_fetch_add(&e->inside, 1) != 0 || atomic_load(&e->before_done) != 8)
        atomic_fetch_add(&e->bad, 1);
    ms_test_sleep_ms(5);
    atomic_fetch_sub(&e->inside, 1);
    atomic_store(&e->excl_done, 1);
}

static void excl_after(void *arg)
{
    excl_probe *e = arg;
    if (!atomic_load(&e->excl_done))
        atomic_fetch_add(&e->after_started_early, 1);
}

static void exclusive_runs_alone(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    excl_probe e;
    memset(&e, 0, sizeof e);
    ms_assert_ok(ms__executor_create(4, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 100, true, &mb));
    for (int i = 0; i < 8; i++)
        ms_assert_ok(ms__mailbox_post(mb, excl_before, NULL, &e, 0, 0));
    ms_assert_ok(ms__mailbox_post(mb, excl_task, NULL, &e, MS__TASK_EXCLUSIVE, 0));
    for (int i = 0; i < 8; i++)
        ms_assert_ok(ms__mailbox_post(mb, excl_after, NULL, &e, 0, 0));
    assert_true(ms__mailbox_wait_idle(mb, 10000));
    assert_int_equal(atomic_load(&e.bad), 0);
    assert_int_equal(atomic_load(&e.after_started_early), 0);
    assert_int_equal(atomic_load(&e.excl_done), 1);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
}

static void capacity_bounds_ordinary_tasks(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    gate g;
    probe p;
    memset(&p, 0, sizeof p);
    gate_init(&g);
    ms_assert_ok(ms__executor_create(2, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 2, false, &mb));
    /* The gate task occupies the (serial) mailbox's only slot of execution. */
    ms_assert_ok(ms__mailbox_post(mb, gate_task, NULL, &g, 0, 0));
    assert_true(ms_test_wait_until(gate_entered, &g, 5000));
    ms_assert_ok(post_job(mb, &p, 1, 0, 0));
    ms_assert_ok(post_job(mb, &p, 2, 0, 0));
    /* full now: not waiting, then waiting a little */
    ms_assert_status(post_job(mb, &p, 3, 0, 0), MS_ERR_FULL);
    if (strstr(ms_last_error(), "mailbox full") == NULL)
        fail_msg("unexpected detail: %s", ms_last_error());
    int64_t t0 = ms_test_now_ms();
    ms_assert_status(post_job(mb, &p, 3, 0, 30), MS_ERR_FULL);
    assert_true(ms_test_now_ms() - t0 >= 25);
    /* control tasks are not bounded */
    ms_assert_ok(post_job(mb, &p, 4, MS__TASK_CONTROL, 0));
    assert_int_equal(ms__mailbox_length(mb), 3);
    gate_open(&g);
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_int_equal(atomic_load(&p.ran), 3);
    assert_int_equal(p.order[0], 1);
    assert_int_equal(p.order[2], 4);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
    gate_destroy(&g);
}

/* A poster blocked on a full mailbox gets in when room appears. */
typedef struct poster {
    ms__mailbox *mb;
    probe *p;
    ms_status result;
    atomic_int done;
} poster;

static void *poster_main(void *arg)
{
    poster *ps = arg;
    job *j = malloc(sizeof *j);
    j->p = ps->p;
    j->seq = 99;
    ps->result = ms__mailbox_post(ps->mb, job_run, job_drop, j, 0, 5000);
    if (ps->result != MS_OK)
        free(j);
    atomic_store(&ps->done, 1);
    return NULL;
}

static void blocked_poster_gets_in(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    gate g;
    probe p;
    pthread_t t;
    memset(&p, 0, sizeof p);
    gate_init(&g);
    ms_assert_ok(ms__executor_create(1, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 1, false, &mb));
    ms_assert_ok(ms__mailbox_post(mb, gate_task, NULL, &g, 0, 0));
    assert_true(ms_test_wait_until(gate_entered, &g, 5000));
    ms_assert_ok(post_job(mb, &p, 1, 0, 0));
    poster ps = {.mb = mb, .p = &p};
    assert_int_equal(pthread_create(&t, NULL, poster_main, &ps), 0);
    ms_test_sleep_ms(20);
    assert_int_equal(atomic_load(&ps.done), 0); /* still waiting */
    gate_open(&g);
    pthread_join(t, NULL);
    ms_assert_ok(ps.result);
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_int_equal(atomic_load(&p.ran), 2);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
    gate_destroy(&g);
}

static void urgent_jumps_queue(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    gate g;
    probe p;
    memset(&p, 0, sizeof p);
    gate_init(&g);
    ms_assert_ok(ms__executor_create(1, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 10, false, &mb));
    ms_assert_ok(ms__mailbox_post(mb, gate_task, NULL, &g, 0, 0));
    assert_true(ms_test_wait_until(gate_entered, &g, 5000));
    for (int i = 1; i <= 6; i++) /* grows the ring past its first size too */
        ms_assert_ok(post_job(mb, &p, i, 0, 0));
    ms_assert_ok(post_job(mb, &p, 100, MS__TASK_CONTROL | MS__TASK_URGENT, 0));
    ms_assert_ok(post_job(mb, &p, 7, 0, 0));
    gate_open(&g);
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_int_equal(atomic_load(&p.ran), 8);
    assert_int_equal(p.order[0], 100);
    for (int i = 1; i <= 7; i++)
        assert_int_equal(p.order[i], i);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
    gate_destroy(&g);
}

static void intake_closed(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    probe p;
    memset(&p, 0, sizeof p);
    ms_assert_ok(ms__executor_create(1, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 4, false, &mb));
    ms__mailbox_set_intake(mb, false);
    ms_assert_status(post_job(mb, &p, 1, 0, 0), MS_ERR_CLOSED);
    ms_assert_ok(post_job(mb, &p, 2, MS__TASK_CONTROL, 0));
    ms__mailbox_set_intake(mb, true);
    ms_assert_ok(post_job(mb, &p, 3, 0, 0));
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_int_equal(atomic_load(&p.ran), 2);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
}

static void discard_and_destroy_drop(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    gate g;
    probe p;
    pthread_t t;
    memset(&p, 0, sizeof p);
    gate_init(&g);
    ms_assert_ok(ms__executor_create(1, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 3, false, &mb));
    ms_assert_ok(ms__mailbox_post(mb, gate_task, NULL, &g, 0, 0));
    assert_true(ms_test_wait_until(gate_entered, &g, 5000));
    ms_assert_ok(post_job(mb, &p, 1, 0, 0));
    ms_assert_ok(post_job(mb, &p, 2, 0, 0));
    assert_int_equal(ms__mailbox_discard(mb), 2);
    assert_int_equal(atomic_load(&p.dropped), 2);
    for (int i = 0; i < 3; i++)
        ms_assert_ok(post_job(mb, &p, 10 + i, 0, 0));
    /* a poster now blocks on the full mailbox; destroy must release it */
    poster ps = {.mb = mb, .p = &p};
    assert_int_equal(pthread_create(&t, NULL, poster_main, &ps), 0);
    ms_test_sleep_ms(20);
    assert_false(ms__mailbox_wait_idle(mb, 10)); /* the gate task still runs */
    gate_open(&g);
    ms__mailbox_destroy(mb);
    pthread_join(t, NULL);
    /* Either the poster was turned away (destroy first) or got in and was
     * dropped or run: nothing is lost either way. */
    int total = atomic_load(&p.ran) + atomic_load(&p.dropped);
    if (ps.result == MS_OK)
        assert_int_equal(total, 2 + 4);
    else {
        assert_int_equal(ps.result, MS_ERR_CLOSED);
        assert_int_equal(total, 2 + 3);
    }
    assert_true(ms__executor_destroy(ex, -1));
    gate_destroy(&g);
}

/* With one worker, a mailbox with a long backlog yields to another. */
typedef struct snap {
    probe *watched;
    atomic_int seen; /* watched->ran when this task ran */
} snap;

static void snap_task(void *arg)
{
    snap *sn = arg;
    atomic_store(&sn->seen, atomic_load(&sn->watched->ran));
}

static void busy_mailbox_yields(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *a = NULL, *b = NULL;
    probe pa;
    gate g;
    memset(&pa, 0, sizeof pa);
    gate_init(&g);
    ms_assert_ok(ms__executor_create(1, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 5000, false, &a));
    ms_assert_ok(ms__mailbox_create(ex, 10, false, &b));
    /* hold the only worker while both queues fill */
    ms_assert_ok(ms__mailbox_post(a, gate_task, NULL, &g, 0, 0));
    assert_true(ms_test_wait_until(gate_entered, &g, 5000));
    for (int i = 0; i < 2000; i++)
        ms_assert_ok(post_job(a, &pa, i, 0, 0));
    snap sn = {.watched = &pa, .seen = -1};
    ms_assert_ok(ms__mailbox_post(b, snap_task, NULL, &sn, 0, 0));
    gate_open(&g);
    assert_true(ms__mailbox_wait_idle(b, 5000));
    /* b's task ran long before a's backlog was through */
    int seen = atomic_load(&sn.seen);
    if (seen < 0 || seen >= 2000)
        fail_msg("b ran after %d of a's 2000 tasks", seen);
    assert_true(ms__mailbox_wait_idle(a, 10000));
    assert_int_equal(atomic_load(&pa.ran), 2000);
    ms__mailbox_destroy(a);
    ms__mailbox_destroy(b);
    assert_true(ms__executor_destroy(ex, -1));
    gate_destroy(&g);
}

static ms__mailbox *seen_current;
static void current_task(void *arg)
{
    (void)arg;
    seen_current = ms__mailbox_current();
}

static void current_mailbox(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    ms_assert_ok(ms__executor_create(1, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 4, false, &mb));
    assert_null(ms__mailbox_current());
    ms_assert_ok(ms__mailbox_post(mb, current_task, NULL, NULL, 0, 0));
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_ptr_equal(seen_current, mb);
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
}

/* --- running a task inline ---------------------------------------------------- */

typedef struct inline_probe {
    ms__mailbox *mb;
    pthread_t thread;
    ms__mailbox *current;
    bool is_inline;
    probe *p;       /* jobs posted from inside the inline task */
    int ran_inside; /* p->ran seen just before the inline task returned */
} inline_probe;

static void inline_task(void *arg)
{
    inline_probe *ip = arg;
    ip->thread = pthread_self();
    ip->current = ms__mailbox_current();
    ip->is_inline = ms__mailbox_current_is_inline();
    if (ip->p != NULL) {
        /* posted while the inline task holds the mailbox: they wait for it */
        for (int i = 0; i < 3; i++)
            ms_assert_ok(post_job(ip->mb, ip->p, i, 0, 0));
        ms_test_sleep_ms(20); /* a free worker would have started them by now */
        ip->ran_inside = atomic_load(&ip->p->ran);
    }
}

static void inline_runs_on_caller_when_idle(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL;
    inline_probe ip;
    probe p;
    memset(&ip, 0, sizeof ip);
    memset(&p, 0, sizeof p);
    ms_assert_ok(ms__executor_create(1, &ex));
    ms_assert_ok(ms__mailbox_create(ex, 8, false, &mb));
    ip.mb = mb;
    ip.p = &p;
    assert_true(ms__mailbox_try_run_inline(mb, inline_task, &ip));
    assert_true(pthread_equal(ip.thread, pthread_self()));
    assert_ptr_equal(ip.current, mb);
    assert_true(ip.is_inline);
    assert_int_equal(ip.ran_inside, 0);
    /* back to normal on this thread; what was posted meanwhile runs next,
     * on the worker, in order */
    assert_null(ms__mailbox_current());
    assert_false(ms__mailbox_current_is_inline());
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_int_equal(atomic_load(&p.ran), 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p.order[i], i);
    assert_int_equal(atomic_load(&p.overlaps), 0);
    /* a task on a worker is not inline */
    memset(&ip, 0, sizeof ip);
    ms_assert_ok(ms__mailbox_post(mb, inline_task, NULL, &ip, 0, 0));
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    assert_ptr_equal(ip.current, mb);
    assert_false(ip.is_inline);
    assert_false(pthread_equal(ip.thread, pthread_self()));
    ms__mailbox_destroy(mb);
    assert_true(ms__executor_destroy(ex, -1));
}

static int inline_ran;
static void count_inline(void *arg)
{
    (void)arg;
    inline_ran++;
}

/* Busy, queued, concurrent or closed mailboxes refuse: fn is not called. */
static void inline_refused_unless_idle(void **state)
{
    (void)state;
    ms__executor *ex = NULL;
    ms__mailbox *mb = NULL, *cmb = NULL;
    probe p;
    gate g;
    memset(&p, 0, sizeof p);
    gate_init(&g);
    inline_ran = 0;
    ms_assert_ok(ms__executor_create(2, &ex)); /* 2: cmb is really concurrent */
    ms_assert_ok(ms__mailbox_create(ex, 8, false, &mb));
    ms_assert_ok(ms__mailbox_create(ex, 8, true, &cmb));

    assert_false(ms__mailbox_try_run_inline(NULL, count_inline, NULL));
    assert_false(ms__mailbox_try_run_inline(mb, NULL, NULL));
    /* running */
    ms_assert_ok(ms__mailbox_post(mb, gate_task, NULL, &g, 0, 0));
    assert_true(ms_test_wait_until(gate_entered, &g, 5000));
    assert_false(ms__mailbox_try_run_inline(mb, count_inline, NULL));
    /* running and queued */
    ms_assert_ok(post_job(mb, &p, 0, 0, 0));
    assert_false(ms__mailbox_try_run_inline(mb, count_inline, NULL));
    gate_open(&g);
    assert_true(ms__mailbox_wait_idle(mb, 5000));
    /* concurrent mailboxes never run inline */
    assert_false(ms__mailbox_try_run_inline(cmb, count_inline, NULL));
    /* closed intake */
    ms__mailbox_set_intake(mb, false);
    assert_false(ms__mailbox_try_run_inline(mb, count_inline, NULL));
    ms__mailbox_set_intake(mb, true);
    assert_true(ms__mailbox_try_run_inline(mb, count_inline, NULL));
    assert_int_equal(inline_ran, 1);
    assert_int_equal(atomic_load(&p.ran), 1);
    ms__mailbox_destroy(mb);
    ms__mailbox_destroy(cmb);
    assert_true(ms__executor_destroy(ex, -1));
    gate_destroy(&g);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_args),
        cmocka_unit_test(fifo_order),
        cmocka_unit_test(serial_never_overlaps),
        cmocka_unit_test(concurrent_runs_in_parallel),
        cmocka_unit_test(exclusive_runs_alone),
        cmocka_unit_test(capacity_bounds_ordinary_tasks),
        cmocka_unit_test(blocked_poster_gets_in),
        cmocka_unit_test(urgent_jumps_queue),
        cmocka_unit_test(intake_closed),
        cmocka_unit_test(discard_and_destroy_drop),
        cmocka_unit_test(busy_mailbox_yields),
        cmocka_unit_test(current_mailbox),
        cmocka_unit_test(inline_runs_on_caller_when_idle),
        cmocka_unit_test(inline_refused_unless_idle),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
