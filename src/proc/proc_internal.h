/*
 * proc_internal.h - one run of an external command, as a state machine that
 * any event loop can drive (internal to src/proc).
 *
 * ms__proc_prepare validates a spec and copies everything the run needs into
 * one block (argv, the final environment, the PATH candidates for argv[0],
 * cwd, log path, stdin data), so that the child after fork only calls
 * async-signal-safe functions on memory prepared in advance.
 * ms__proc_spawn opens the pipes and the log and forks. From then on the
 * owner's loop asks for the descriptors to watch (ms__proc_pollfds, or the
 * fds[] slots for epoll), reports readiness (ms__proc_on_ready) and calls
 * ms__proc_tick for the timers, until ms__proc_done. ms_proc_run drives one
 * proc with poll(2) (proc.c); the runner drives many with epoll (runner.c).
 */
#ifndef MS_PROC_INTERNAL_H
#define MS_PROC_INTERNAL_H

#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mainstack/proc.h"

/* The descriptors a run watches. */
enum { MS__PFD_EXEC = 0, MS__PFD_OUT, MS__PFD_IN, MS__PFD_PID, MS__PFD_COUNT };

/* After the direct child exits, output is still read this long (grandchildren
 * holding the pipe); then the group is killed and the pipe closed. */
#define MS__PROC_DRAIN_MS 200
/* Exit check period when pidfd_open is unavailable (Linux < 5.3). */
#define MS__PROC_TICK_MS 10

typedef struct ms__proc ms__proc;

/* Called just before the proc closes one of its watched descriptors, so an
 * epoll owner can remove it first. */
typedef void (*ms__proc_close_hook)(void *arg, ms__proc *p, int slot, int fd);

typedef struct ms__proc_watch {
    ms__proc *p;
    int slot;
} ms__proc_watch;

struct ms__proc {
    /* prepared: all inside `block` */
    void *block;
    char **argv;
    char **envp;
    char **cand; /* execve candidates for argv[0], NULL-terminated */
    char *cwd;
    char *log_path;
    unsigned char *in_data;
    size_t in_len;
    int timeout_ms, grace_ms;
    size_t log_max, capture_max;

    /* running */
    pid_t pid;
    int fds[MS__PFD_COUNT]; /* -1 when closed */
    int log_fd;
    size_t in_off;
    bool spawned;
    bool leader_exited;
    bool leader_lost; /* reaped by someone else (SIGCHLD ignored by the host) */
    bool term_sent, kill_sent;
    bool done;
    int64_t start_ns, deadline_ns, kill_ns, drain_ns;
    /* capture ring: cap_len valid bytes starting at cap_start */
    char *cap;
    size_t cap_size, cap_len, cap_start;
    ms_proc_result res;
    ms_status status; /* MS_OK, or why it failed to spawn */

    ms__proc_close_hook close_hook;
    void *close_arg;

    /* runner bookkeeping (runner.c) */
    uint64_t id;
    ms_proc_done_fn done_fn;
    void *closure;
    atomic_bool kill_requested;
    ms__proc *next, *prev;
    ms__proc_watch watch[MS__PFD_COUNT];
};

int64_t ms__proc_now_ns(void);

/* Validate and copy `spec`. MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY. */
ms_status ms__proc_prepare(const ms_proc_spec *spec, ms__proc **out);
/* Open pipes and the log and fork. On failure the proc is done, with
 * res.spawn_failed and p->status set (exec failures in the child are
 * reported later, through the exec pipe). Returns p->status. */
ms_status ms__proc_spawn(ms__proc *p);
/* The child reported {stage, errno} on the exec pipe: record the error. */
void ms__proc_exec_failed(ms__proc *p, int stage, int err);
/* Close every descriptor and free. A proc still running is killed (SIGKILL
 * to its group) and reaped first. */
void ms__proc_free(ms__proc *p);

/* Fill up to MS__PFD_COUNT pollfds for the open descriptors; slots[i] tells
 * which slot pfd[i] is. Returns the count. */
int ms__proc_pollfds(const ms__proc *p, struct pollfd *pfd, int *slots);
/* poll/epoll events for one slot. */
short ms__proc_slot_events(int slot);
void ms__proc_on_ready(ms__proc *p, int slot, int64_t now);
void ms__proc_tick(ms__proc *p, int64_t now);
/* The next time ms__proc_tick has work; INT64_MAX for none. */
int64_t ms__proc_next_deadline(const ms__proc *p);
/* Stop the run now: SIGTERM (then SIGKILL after grace), or SIGKILL when
 * `hard`. Marks the result killed. */
void ms__proc_stop(ms__proc *p, bool hard, int64_t now);
/* Drive the proc to its end with poll(2) in the calling thread. */
void ms__proc_loop(ms__proc *p);

/* Move the result out (the capture included); the proc keeps no output. */
void ms__proc_take_result(ms__proc *p, ms_proc_result *out);

#endif
