/*
 * executor.h - a worker pool running mailboxes (internal to the runtime).
 *
 * A mailbox is a bounded FIFO of tasks owned by one component instance. It
 * is put on the pool's run queue when it becomes non-empty; a worker takes
 * it and runs its tasks in order. A serial mailbox runs one task at a time
 * (so an instance needs no locks); a concurrent one may run several tasks
 * at once on different workers, but a task posted MS__TASK_EXCLUSIVE always
 * runs alone: it waits for the running ones to finish and holds back the
 * ones behind it (lifecycle calls, health checks, config changes).
 *
 * Capacity: at most `capacity` ordinary tasks are queued; a poster finding
 * the mailbox full waits up to its timeout, then gets MS_ERR_FULL (nothing
 * is dropped silently: the caller decides what to answer). MS__TASK_CONTROL
 * tasks ignore the capacity and a closed intake, so a restart or a health
 * check always gets in; MS__TASK_URGENT ones also jump the queue (a health
 * check asks "does the instance respond", not "is its queue short").
 *
 * Threads: every function is thread-safe. Tasks run on the pool's workers.
 * ms__mailbox_destroy and ms__mailbox_wait_idle must not be called from a
 * task of that mailbox (ms__mailbox_current tells).
 */
#ifndef MS_RUNTIME_EXECUTOR_H
#define MS_RUNTIME_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "mainstack/status.h"

typedef struct ms__executor ms__executor;
typedef struct ms__mailbox ms__mailbox;

/* A task: fn(arg) runs it; drop(arg) (may be NULL) is called instead when
 * the task will never run (its mailbox was destroyed or discarded). Exactly
 * one of the two is called for every task accepted by ms__mailbox_post. */
typedef void (*ms__task_fn)(void *arg);

#define MS__TASK_EXCLUSIVE 0x1u /* runs alone, even on a concurrent mailbox */
#define MS__TASK_CONTROL 0x2u   /* not bounded by capacity nor closed intake */
#define MS__TASK_URGENT 0x4u    /* queued at the head, ahead of everything */

/* workers > 0. *out is freed with ms__executor_destroy. MS_ERR_INVALID_ARG,
 * MS_ERR_NO_MEMORY, MS_ERR_INTERNAL (a thread could not start). */
ms_status ms__executor_create(int workers, ms__executor **out);
int ms__executor_workers(const ms__executor *ex);
/* Stop the workers once the run queue is empty and join them, waiting at
 * most timeout_ms (< 0: forever); a worker still stuck in a task after that
 * is detached and the executor leaked (logged). Every mailbox must have been
 * destroyed. NULL-safe. Returns false when something had to be leaked. */
bool ms__executor_destroy(ms__executor *ex, int timeout_ms);

/* capacity > 0. concurrent: tasks may run on several workers at once.
 * MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms__mailbox_create(ms__executor *ex, size_t capacity, bool concurrent,
                             ms__mailbox **out);

/* Queue a task. timeout_ms: how long to wait on a full mailbox (0: not at
 * all, < 0: forever). MS_ERR_FULL (still full at the deadline), MS_ERR_CLOSED
 * (intake closed, for ordinary tasks; or the mailbox is being destroyed),
 * MS_ERR_NO_MEMORY. On an error neither fn nor drop is called. */
ms_status ms__mailbox_post(ms__mailbox *mb, ms__task_fn fn, ms__task_fn drop, void *arg,
                           unsigned flags, int timeout_ms);

/*
 * Run fn(arg) at once on the calling thread, as the next task of mb, when
 * mb is serial and idle (nothing queued, nothing running, no worker about
 * to run it) and its intake is open; returns true after fn returned. Else
 * returns false at once without calling fn (post it instead). While fn
 * runs, mb counts as running: tasks posted meanwhile queue behind it (and
 * go to a worker afterwards), exclusive ones wait for it, wait_idle and
 * destroy wait for it; ms__mailbox_current() is mb and
 * ms__mailbox_current_is_inline() true. This saves the hand-off to a
 * worker (a thread wake-up) for a task that is known to be short.
 */
bool ms__mailbox_try_run_inline(ms__mailbox *mb, ms__task_fn fn, void *arg);

/* Refuse (MS_ERR_CLOSED) or accept ordinary tasks again; closing wakes
 * posters waiting on a full mailbox. Control tasks are always accepted. */
void ms__mailbox_set_intake(ms__mailbox *mb, bool open);

/* Tasks queued (not counting running ones). */
size_t ms__mailbox_length(ms__mailbox *mb);

/* Wait until nothing is queued or running, at most timeout_ms (< 0:
 * forever). True when idle. */
bool ms__mailbox_wait_idle(ms__mailbox *mb, int timeout_ms);

/* Remove every queued task that has not started, calling its drop (with no
 * lock held). Returns how many. */
size_t ms__mailbox_discard(ms__mailbox *mb);

/* Refuse everything, drop what is queued, wait for running tasks to end,
 * free. NULL-safe. */
void ms__mailbox_destroy(ms__mailbox *mb);

/* The mailbox whose task the calling thread is running, or NULL. */
ms__mailbox *ms__mailbox_current(void);
/* True while the calling thread runs a task through
 * ms__mailbox_try_run_inline (not on a worker). */
bool ms__mailbox_current_is_inline(void);

#endif
