/*
 * inproc.h - internals shared by the inproc transport's files.
 *
 * inproc_transport.c: the transport table (publish, subscribe, request/reply,
 * flush, drain, close). inproc_broker.c: the process's named brokers, each a
 * subject index, queue groups and a worker pool. inproc_mailbox.c: the pool,
 * the per-subscription mailboxes it runs (a bounded FIFO scheduled on the
 * pool when it becomes non-empty, handled a batch at a time, so one
 * subscription never runs concurrently with itself and costs no thread), and
 * the per-bus delivery tracker that flush waits on.
 */
#ifndef MS_BUS_INPROC_H
#define MS_BUS_INPROC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "bus/transport.h"
#include "mainstack/subject.h"

/* What a value stored in the broker's subject index is: every value starts
 * with this header. */
typedef enum ms__inproc_kind {
    MS__INPROC_MAILBOX = 1, /* a user subscription, delivered on the pool */
    MS__INPROC_MUX = 2      /* a bus's response mux, delivered inline */
} ms__inproc_kind;

typedef struct ms__inproc_entry {
    ms__inproc_kind kind;
    atomic_uint refs; /* the owner's reference plus temporary ones */
} ms__inproc_entry;

/*
 * Delivery tracker of one publishing bus: counts the deliveries (message x
 * subscription) this bus queued that are not finished yet (handled or
 * discarded). Each queued slot points at it, so it outlives the bus until
 * the last of its messages is done; the bus holds one reference, a flusher
 * one while it waits, and whoever drops the last frees it.
 */
typedef struct ms__inproc_tracker {
    atomic_uint_fast64_t state; /* see inproc_mailbox.c */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    char pad[64]; /* keeps the lines below off the publishers' one above */
    /* Small finished messages handed back by the workers so that the
     * publishing side, which allocated them, reuses their blocks for its
     * next messages (ms__message_reuse) instead of a malloc here and a free
     * on a worker, which would keep two threads fighting over the
     * allocator's arena. It grows to what the bus keeps in flight (a
     * worker's batch comes back at once) and is trimmed by the publishers
     * when it holds more than they need. One reference each; ret_mu guards
     * ret and cap, nret is written under it. */
    pthread_mutex_t ret_mu;
    atomic_size_t nret;
    size_t cap;
    ms_message **ret;
} ms__inproc_tracker;

/* A queued delivery: one message reference and one tracker count. */
typedef struct ms__inproc_slot {
    ms_message *msg;
    ms__inproc_tracker *tracker;
    size_t len; /* ms_message_len(msg), so workers need not touch msg */
} ms__inproc_slot;

/* A growable array of slots. */
typedef struct ms__inproc_slots {
    ms__inproc_slot *v;
    size_t n, cap;
} ms__inproc_slots;

/* A queue group: the members of one queue name on a broker, owned by it;
 * all but rr is guarded by the broker's lock held for writing. */
typedef struct ms__inproc_qgroup {
    char *name;
    size_t members;          /* mailboxes in the index with this queue name */
    atomic_uint_fast64_t rr; /* round-robin position, bumped per message */
    struct ms__inproc_qgroup *next;
} ms__inproc_qgroup;

struct ms__inproc_pool;

typedef struct ms__inproc_mailbox {
    /* Read by publishers for every message, rarely written. */
    ms__inproc_entry hdr; /* refs: subscription + scheduled + publishers */
    ms_subscription *sub; /* borrowed; not touched once closed */
    struct ms__inproc_pool *pool;
    size_t max_msgs, max_bytes;
    atomic_bool closed;    /* written under mu; read anywhere */
    ms__inproc_qgroup *qg; /* under the broker lock */
    bool in_index;         /* under the broker lock */
    bool zombie;           /* transport's, under the bus mutex: unsubscribed by
                            * its own handler, listed until that returns */
    uint64_t visit_gen;    /* transport's, under the bus mutex */
    struct ms__inproc_mailbox *bus_prev, *bus_next; /* transport's, bus mutex */

    /* The queue, on cache lines of its own (the pads keep 64 bytes between
     * the groups). Publishers append to `in`; the worker swaps it for its
     * empty `spare` in one step and delivers the batch without the lock. */
    char pad0[64];
    pthread_mutex_t mu;  /* guards everything below but avail */
    pthread_cond_t cond; /* space freed, handler returned, went idle */
    ms__inproc_slots in;
    ms__inproc_slots spare;
    /* Messages queued or taken by the worker and not yet handled (the one
     * in the handler included), and their payload bytes: what the limits
     * bound. */
    size_t count;
    size_t bytes;
    bool scheduled; /* on the ready list or being run by a worker */
    bool running;   /* a worker owns it (may be inside the handler) */
    pthread_t runner;
    atomic_int waiters;                    /* threads waiting on cond (changed under mu) */
    uint64_t last_run_ns;                  /* when a worker last let it go */
    struct ms__inproc_mailbox *ready_next; /* pool ready list, under pool mu */

    /* = in.n, for a worker polling without the lock; on its own line so
     * that polling does not keep stealing the publishers' lock line. */
    char pad1[64];
    atomic_size_t avail;
} ms__inproc_mailbox;

typedef struct ms__inproc_pool {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    ms__inproc_mailbox *head, *tail; /* ready mailboxes, FIFO */
    atomic_size_t nready;            /* written under mu; read by polling workers */
    int idle;                        /* workers blocked on cond */
    int waking;                      /* signals sent that no worker has consumed yet */
    bool stop;
    int nthreads;
    pthread_t *threads;
} ms__inproc_pool;

/* A named broker: the subject index of every subscription (and response
 * mux) of the buses connected to the name, their queue groups and the
 * worker pool that runs their handlers. */
typedef struct ms__inproc_broker {
    char *name;
    int buses;                      /* buses connected; under the registry mutex */
    struct ms__inproc_broker *next; /* the registry list; under its mutex */
    /* Guards index, qgroups and the mailboxes' in_index/qg: read for a
     * publish lookup, write for any change. */
    pthread_rwlock_t lock;
    ms_subject_index *index; /* values are ms__inproc_entry * */
    ms__inproc_qgroup *qgroups;
    ms__inproc_pool pool;
    /* id is unique among the brokers of the process; gen is bumped (lock
     * held for writing) at every change of the index or of a queue
     * group's members. Together they tell a publisher whether the matches
     * it cached for a subject still hold (inproc_transport.c). */
    uint64_t id;
    uint64_t gen;
} ms__inproc_broker;

/* --- brokers (inproc_broker.c) ------------------------------------------- */

/* The broker called name, created with `workers` threads (0: one per online
 * CPU) if no bus is connected to it yet; one more bus counted on it.
 * MS_ERR_NO_MEMORY, MS_ERR_INTERNAL. */
ms_status ms__inproc_broker_acquire(const char *name, int workers, ms__inproc_broker **out);
/* One bus fewer; the last one frees the broker (its index must be empty). */
void ms__inproc_broker_release(ms__inproc_broker *b);
/* Put mb in the index under its subscription's subject, in its queue group
 * if it has one (b->lock held for writing). MS_ERR_NO_MEMORY. */
ms_status ms__inproc_broker_attach(ms__inproc_broker *b, ms__inproc_mailbox *mb);
/* Take mb out of the index; idempotent (b->lock held for writing). */
void ms__inproc_broker_detach(ms__inproc_broker *b, ms__inproc_mailbox *mb);

/* --- time and locks ------------------------------------------------------ */

/* Init a condition variable that times out against CLOCK_MONOTONIC. */
int ms__inproc_cond_init(pthread_cond_t *c);
/* Init a mutex that spins briefly before sleeping (short critical sections). */
int ms__inproc_mutex_init(pthread_mutex_t *m);
/* *out = CLOCK_MONOTONIC now + ms. */
void ms__inproc_deadline(struct timespec *out, int ms);
/* True when CLOCK_MONOTONIC has reached *deadline. */
bool ms__inproc_past(const struct timespec *deadline);
/* Spin up to ns nanoseconds for *flag to become true; returns it. */
bool ms__inproc_poll_flag(atomic_bool *flag, uint64_t ns);

/* --- worker pool (inproc_mailbox.c) --------------------------------------------------- */

/* Start nthreads (>= 1) workers. MS_ERR_NO_MEMORY, MS_ERR_INTERNAL. */
ms_status ms__inproc_pool_start(ms__inproc_pool *p, int nthreads);
/* Stop and join the workers. Every mailbox must be closed by then. */
void ms__inproc_pool_stop(ms__inproc_pool *p);
/* True on a worker thread of any inproc pool. */
bool ms__inproc_on_worker(void);

/* --- delivery tracker ---------------------------------------------------- */

/* A tracker with one reference, the caller's. MS_ERR_NO_MEMORY, MS_ERR_INTERNAL. */
ms_status ms__inproc_tracker_create(ms__inproc_tracker **out);
/* n deliveries finished, or (n = 1) the owner drops its reference; frees
 * the tracker with the last reference. */
void ms__inproc_tracker_done(ms__inproc_tracker *t, long n);
/* Drop every message workers handed back to t (see the struct) and the
 * memory that held them. */
void ms__inproc_tracker_reclaim(ms__inproc_tracker *t);
/* Up to max messages handed back to t that nobody else holds, for the
 * publisher to reuse (their references pass to the caller); shared ones it
 * meets on the way are dropped. Returns how many went into out. */
size_t ms__inproc_tracker_take(ms__inproc_tracker *t, ms_message **out, size_t max);
/* Wait until no delivery counted on t is left, at most until deadline; the
 * caller owns t's owner reference. MS_OK or MS_ERR_TIMEOUT (no detail set). */
ms_status ms__inproc_tracker_wait(ms__inproc_tracker *t, const struct timespec *deadline);

/* --- mailboxes ----------------------------------------------------------- */

/* A mailbox for sub holding at most max_msgs messages and max_bytes payload
 * bytes (a lone message larger than max_bytes is still accepted), with one
 * reference owned by the caller. MS_ERR_NO_MEMORY, MS_ERR_INTERNAL. */
ms_status ms__inproc_mailbox_create(ms__inproc_pool *pool, ms_subscription *sub, size_t max_msgs,
                                    size_t max_bytes, ms__inproc_mailbox **out);
void ms__inproc_mailbox_ref(ms__inproc_mailbox *mb);
void ms__inproc_mailbox_unref(ms__inproc_mailbox *mb); /* NULL-safe */

/*
 * Queue msg (frozen) counted on tracker; *stored says whether it went in.
 * give: the queue takes over the caller's reference instead of taking one
 * (only when *stored; the caller must not touch msg afterwards, since the
 * message may be handled and freed at once). A full mailbox blocks the
 * caller up to timeout_ms, then MS_ERR_FULL naming the subscription; with
 * MS__INPROC_TRY it returns MS_ERR_FULL at once with no detail. A closed
 * mailbox takes nothing and returns MS_OK (the subscription went away while
 * the message was in flight). From the mailbox's own handler a full queue
 * fails at once (it cannot drain itself). MS_ERR_FULL, MS_ERR_NO_MEMORY.
 */
#define MS__INPROC_TRY (-1)
ms_status ms__inproc_mailbox_push(ms__inproc_mailbox *mb, ms_message *msg,
                                  ms__inproc_tracker *tracker, int timeout_ms, bool give,
                                  bool *stored);

/* Refuse further messages, discard the queued ones and wait until the
 * handler is not running (unless called from it). Idempotent. Returns true
 * when called from the mailbox's own handler (which is still running). */
bool ms__inproc_mailbox_close(ms__inproc_mailbox *mb);

/* True while a worker runs the mailbox (its handler may be executing). */
bool ms__inproc_mailbox_running(ms__inproc_mailbox *mb);

/* Wait until the handler is not running (unless called from it). */
void ms__inproc_mailbox_wait_stopped(ms__inproc_mailbox *mb);

/* Wait until the queue is empty and no handler runs, at most until deadline
 * (returns at once when called from this mailbox's handler). MS_OK or
 * MS_ERR_TIMEOUT (no detail set). */
ms_status ms__inproc_mailbox_wait_idle(ms__inproc_mailbox *mb, const struct timespec *deadline);

#endif
