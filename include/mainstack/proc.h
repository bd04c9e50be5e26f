/*
 * proc.h - running external commands (agent actions, deploy test commands).
 *
 * A command is started without a shell, from an argv array; its input (the
 * message and context, as JSON) reaches it on stdin and in environment
 * variables, never spliced into a command line. Each run has a time limit and
 * runs in its own process group, which is killed whole on timeout and when
 * the command ends (no stray background process outlives its action). Its
 * stdout and stderr (one stream, in the order written) are appended to a
 * per-run log file as they arrive and the tail is kept in memory.
 *
 * Two ways to run:
 *   - ms_proc_run: blocking, in the calling thread (one poll loop per call);
 *     safe from many threads at once.
 *   - ms_proc_runner: one thread with an epoll loop drives any number of
 *     runs at once; ms_proc_runner_start returns at once and a callback gets
 *     the result. This is the form for hundreds of concurrent actions.
 *
 * The library installs no signal handler and reaps only the children it
 * started (waitpid on their pid). A host that sets SIGCHLD to SIG_IGN, or
 * reaps with waitpid(-1, ...), takes exit statuses away from it: those runs
 * report exit_code -1 and a note in `error`. Full description: docs/proc.md.
 */
#ifndef MAINSTACK_PROC_H
#define MAINSTACK_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What to run. Every pointer is borrowed for the duration of the call that
 * takes the spec (ms_proc_run, ms_proc_runner_start copy what they keep). */
typedef struct ms_proc_spec {
    /* Program and arguments, NULL-terminated, at least argv[0]. argv[0]
     * without a '/' is looked up in PATH as execvp does (the PATH of the
     * child's environment; "/bin:/usr/bin" when it has none); with a '/' it
     * is used as is, relative to `cwd` when relative. A file without a
     * "#!" line is not handed to /bin/sh: it fails with ENOEXEC. */
    const char *const *argv;
    /* "NAME=value" entries added to, or replacing in, the inherited
     * environment; NULL-terminated, or NULL for none. */
    const char *const *env;
    /* Start from an empty environment (plus the host's PATH, if set) instead
     * of the inherited one; `env` is applied on top. */
    bool clear_env;
    /* Working directory of the child; NULL: the host's. */
    const char *cwd;
    /* Bytes written to the child's stdin, which is then closed. With
     * stdin_len 0 the child's stdin is /dev/null. Written without blocking
     * the runner: a child that never reads just never gets them. */
    const void *stdin_data;
    size_t stdin_len;
    /* Time limit of the whole run, in ms (> 0). Then SIGTERM goes to the
     * process group and, grace_ms later, SIGKILL (grace_ms 0: SIGKILL at
     * once). */
    int timeout_ms;
    int grace_ms;
    /* stdout+stderr are appended to this file (created 0600) as they arrive;
     * NULL: not kept on disk. */
    const char *log_path;
    /* At most this many bytes of output go to the log; the rest is counted
     * and discarded, and a "[mainstack: ... truncated ...]" line is appended
     * at the end of the run. */
    size_t log_max;
    /* The last capture_max bytes of output are also kept in memory for the
     * result (the tail: an error is usually at the end); 0: none. */
    size_t capture_max;
} ms_proc_spec;

/* Defaults: no argv, inherit env and cwd, no stdin, timeout 60 s, grace 2 s,
 * no log file, log_max 16 MiB, capture_max 64 KiB. */
void ms_proc_spec_init(ms_proc_spec *spec);

/* How a run ended. Owned by the caller after ms_proc_run (free with
 * ms_proc_result_reset); borrowed during a runner callback. */
typedef struct ms_proc_result {
    int exit_code;         /* 0..255 when the child exited; -1 otherwise */
    int term_signal;       /* the signal that killed it; 0 otherwise */
    bool timed_out;        /* the time limit passed and the group was signalled */
    bool killed;           /* stopped by ms_proc_runner_kill or runner destruction */
    bool spawn_failed;     /* the program never ran (see spawn_errno, error) */
    int spawn_errno;       /* errno of the failing step when spawn_failed */
    int64_t duration_ns;   /* from fork to the end of the run */
    size_t output_bytes;   /* bytes the command wrote (stdout+stderr) */
    size_t log_bytes;      /* of which written to the log file */
    bool log_truncated;    /* output_bytes > log_bytes (past log_max) */
    size_t stdin_written;  /* bytes of stdin_data the child accepted */
    bool output_truncated; /* output holds only the last capture_max bytes */
    char *output;          /* malloc'd tail of the output, NUL-terminated (the
                            * output itself may contain NULs: use output_len);
                            * "" when nothing was captured; NULL before a run */
    size_t output_len;
    char error[256]; /* why it failed to spawn, or a note; "" if none */
} ms_proc_result;

/* Zero the result (output NULL). */
void ms_proc_result_init(ms_proc_result *r);
/* Free the capture and zero the result again. NULL is accepted. */
void ms_proc_result_reset(ms_proc_result *r);

/* Run one command to its end, in the calling thread. `out` is filled (after
 * ms_proc_result_reset of what it held) on every return but
 * MS_ERR_INVALID_ARG and MS_ERR_NO_MEMORY.
 * Returns MS_OK when the command ran, whatever its exit (see out);
 * MS_ERR_NOT_FOUND when argv[0] was not found (ENOENT, ENOTDIR) or the cwd
 * does not exist; MS_ERR_IO when it could not be started otherwise (EACCES,
 * ENOEXEC, fork, pipes, the log file), with out->spawn_failed set and the
 * detail, naming argv[0] (or the file) and the errno text, in out->error and
 * ms_last_error(); MS_ERR_INVALID_ARG for a bad spec (no argv, an env entry
 * without '=', timeout_ms <= 0); MS_ERR_NO_MEMORY.
 * Thread-safe: any number of threads may run commands at once. SIGPIPE is
 * blocked in the calling thread while writing stdin (a pending SIGPIPE
 * raised by that write is consumed), so a child that closes its stdin never
 * kills the host. */
ms_status ms_proc_run(const ms_proc_spec *spec, ms_proc_result *out);

/* --- many runs at once --------------------------------------------------- */

typedef struct ms_proc_runner ms_proc_runner;

/* Called once per started run, on the runner's thread, when the run has
 * ended and all its processes are gone. `result` is borrowed for the call;
 * the callback may take result->output (set it to NULL; free() it later).
 * It must not block for long (it delays every other run's I/O); it may call
 * ms_proc_runner_start and ms_proc_runner_kill, not ..._destroy or
 * ..._wait_idle. */
typedef void (*ms_proc_done_fn)(ms_proc_result *result, void *closure);

typedef struct ms_proc_runner_options {
    /* Runs allowed at once; more wait in FIFO order. 0: derived from the
     * soft RLIMIT_NOFILE (a run holds up to 5 descriptors). */
    unsigned max_running;
} ms_proc_runner_options;

void ms_proc_runner_options_init(ms_proc_runner_options *o);

/* Create a runner and its thread. opts may be NULL (defaults).
 * Returns MS_ERR_INVALID_ARG, MS_ERR_NO_MEMORY, MS_ERR_IO (epoll, eventfd,
 * thread). */
ms_status ms_proc_runner_create(const ms_proc_runner_options *opts, ms_proc_runner **out);

/* Queue one run; the spec is copied (stdin data included). `done` is then
 * called exactly once, also when the spawn fails (result->spawn_failed).
 * `id_out` (may be NULL) receives an id for ms_proc_runner_kill (never 0).
 * Returns MS_ERR_INVALID_ARG (bad spec, NULL done), MS_ERR_NO_MEMORY,
 * MS_ERR_CLOSED (the runner is being destroyed). Any thread. */
ms_status ms_proc_runner_start(ms_proc_runner *r, const ms_proc_spec *spec, ms_proc_done_fn done,
                               void *closure, uint64_t *id_out);

/* Stop a run now: SIGTERM to its group, SIGKILL after its grace_ms (a queued
 * run is not started). Its callback still comes, with result->killed.
 * Returns MS_ERR_NOT_FOUND when no such run is queued or running. Any
 * thread. */
ms_status ms_proc_runner_kill(ms_proc_runner *r, uint64_t id);

/* Stop every run queued or running now, as ms_proc_runner_kill does for
 * one (a run started after this call is not affected). *killed (may be
 * NULL) gets how many were asked to stop. The runner stays usable.
 * MS_ERR_INVALID_ARG (NULL runner). Any thread. */
ms_status ms_proc_runner_kill_all(ms_proc_runner *r, size_t *killed);

/* Runs queued or running now. Any thread. */
size_t ms_proc_runner_active(ms_proc_runner *r);

/* Wait until no run is queued or running (every callback has returned).
 * Returns MS_ERR_TIMEOUT after timeout_ms (< 0: no limit). Not from a
 * callback. */
ms_status ms_proc_runner_wait_idle(ms_proc_runner *r, int timeout_ms);

/* Kill every run (SIGKILL to each group), deliver their callbacks (killed),
 * stop the thread, free everything. NULL is accepted. Not from a callback. */
void ms_proc_runner_destroy(ms_proc_runner *r);

#ifdef __cplusplus
}
#endif
#endif
