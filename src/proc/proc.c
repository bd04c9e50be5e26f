/*
 * proc.c - one run's I/O and timers, and ms_proc_run (proc_internal.h).
 *
 * A run ends in this order: the direct child exits (seen on its pidfd; its
 * status read with waitid(WNOWAIT), so the zombie keeps the process group id
 * from being reused); output is read on until EOF or for at most
 * MS__PROC_DRAIN_MS (a grandchild may hold the pipe); then SIGKILL goes to
 * the whole group, the child is reaped with waitpid on its own pid, and the
 * pipes and log are closed. The time limit sends SIGTERM (and SIGCONT, for a
 * stopped group) to the group, SIGKILL after grace_ms. stdin is written
 * without blocking in the same loop as output is read, with SIGPIPE blocked
 * around the write.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "proc/proc_internal.h"

#define READ_CHUNK 65536
#define READS_PER_WAKE 4 /* bound the time one busy run holds the loop */

static void note(ms__proc *p, const char *what)
{
    size_t n = strlen(p->res.error);
    if (n == 0)
        snprintf(p->res.error, sizeof p->res.error, "%s", what);
    else if (n + 2 < sizeof p->res.error)
        snprintf(p->res.error + n, sizeof p->res.error - n, "; %s", what);
}

static void close_slot(ms__proc *p, int slot)
{
    int fd = p->fds[slot];
    if (fd < 0)
        return;
    if (p->close_hook)
        p->close_hook(p->close_arg, p, slot, fd);
    close(fd);
    p->fds[slot] = -1;
}

static void signal_group(ms__proc *p, int sig)
{
    /* Only while the leader is unreaped: its zombie pins the group id. */
    if (p->pid > 0 && !p->leader_lost)
        (void)kill(-p->pid, sig);
}

/* --- output ----------------------------------------------------------------- */

static void write_log(ms__proc *p, const char *buf, size_t n)
{
    while (n > 0 && p->log_fd >= 0) {
        ssize_t w = write(p->log_fd, buf, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            char what[160];
            snprintf(what, sizeof what, "log write: %s (log closed)",
                     w < 0 ? strerror(errno) : "no progress");
            note(p, what);
            close(p->log_fd);
            p->log_fd = -1;
            return;
        }
        buf += w;
        n -= (size_t)w;
        p->res.log_bytes += (size_t)w;
    }
}

/* Grow the capture buffer to hold `want` bytes (<= capture_max). */
static bool cap_grow(ms__proc *p, size_t want)
{
    if (want <= p->cap_size)
        return true;
    size_t n = p->cap_size * 2;
    if (n < want)
        n = want;
    if (n > p->capture_max)
        n = p->capture_max;
    char *c = ms__realloc(p->cap, n + 1);
    if (c == NULL)
        return false;
    p->cap = c;
    p->cap_size = n;
    return true;
}

static void capture(ms__proc *p, const char *buf, size_t n)
{
    size_t max = p->capture_max;
    if (max == 0)
        return;
    if (n >= max) {
        if (!cap_grow(p, max)) {
            note(p, "capture: out of memory (output incomplete)");
            p->capture_max = 0;
            return;
        }
        memcpy(p->cap, buf + (n - max), max);
        p->cap_len = max;
        p->cap_start = 0;
        return;
    }
    if (p->cap_len < max) {
        size_t room = max - p->cap_len; /* cap_start is 0 until the ring is full */
        size_t take = n < room ? n : room;
        if (!cap_grow(p, p->cap_len + take)) {
            note(p, "capture: out of memory (output incomplete)");
            p->capture_max = 0;
            return;
        }
        memcpy(p->cap + p->cap_len, buf, take);
        p->cap_len += take;
        buf += take;
        n -= take;
    }
    while (n > 0) { /* full: overwrite the oldest */
        size_t chunk = max - p->cap_start;
        if (chunk > n)
            chunk = n;
        memcpy(p->cap + p->cap_start, buf, chunk);
        p->cap_start = (p->cap_start + chunk) % max;
        buf += chunk;
        n -= chunk;
    }
}

static void on_output(ms__proc *p, const char *buf, size_t n)
{
    p->res.output_bytes += n;
    if (p->log_fd >= 0) {
        size_t room = p->log_max > p->res.log_bytes ? p->log_max - p->res.log_bytes : 0;
        write_log(p, buf, n < room ? n : room);
    }
    capture(p, buf, n);
}

static void read_output(ms__proc *p)
{
    char buf[READ_CHUNK];
    for (int i = 0; i < READS_PER_WAKE && p->fds[MS__PFD_OUT] >= 0; i++) {
        ssize_t r = read(p->fds[MS__PFD_OUT], buf, sizeof buf);
        if (r > 0) {
            on_output(p, buf, (size_t)r);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && errno == EAGAIN)
            return;
        if (r < 0) {
            char what[128];
            snprintf(what, sizeof what, "output read: %s", strerror(errno));
            note(p, what);
        }
        close_slot(p, MS__PFD_OUT); /* EOF or error */
    }
}

/* --- stdin ------------------------------------------------------------------ */

/* write(2) with SIGPIPE blocked in this thread; a SIGPIPE this write raised
 * is consumed, one that was pending before is left alone. */
static ssize_t write_nosigpipe(int fd, const void *buf, size_t n)
{
    sigset_t pipe_set, old, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    sigemptyset(&pending);
    (void)sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE) == 1;
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    ssize_t w;
    do
        w = write(fd, buf, n);
    while (w < 0 && errno == EINTR);
    int err = errno;
    if (w < 0 && err == EPIPE && !was_pending) {
        struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    errno = err;
    return w;
}

static void write_input(ms__proc *p)
{
    while (p->fds[MS__PFD_IN] >= 0 && p->in_off < p->in_len) {
        size_t n = p->in_len - p->in_off;
        if (n > READ_CHUNK)
            n = READ_CHUNK;
        ssize_t w = write_nosigpipe(p->fds[MS__PFD_IN], p->in_data + p->in_off, n);
        if (w > 0) {
            p->in_off += (size_t)w;
            p->res.stdin_written = p->in_off;
            continue;
        }
        if (w < 0 && errno == EAGAIN)
            return;
        /* EPIPE: the child closed its stdin; not an error of the run */
        close_slot(p, MS__PFD_IN);
        return;
    }
    close_slot(p, MS__PFD_IN); /* all written: EOF for the child */
}

/* --- exit and the end ------------------------------------------------------- */

static void read_exec_pipe(ms__proc *p)
{
    int msg[2];
    ssize_t r;
    do
        r = read(p->fds[MS__PFD_EXEC], msg, sizeof msg);
    while (r < 0 && errno == EINTR);
    if (r < 0 && errno == EAGAIN)
        return;
    if (r == (ssize_t)sizeof msg)
        ms__proc_exec_failed(p, msg[0], msg[1]);
    close_slot(p, MS__PFD_EXEC); /* EOF: exec succeeded */
}

static void check_exit(ms__proc *p, int64_t now)
{
    if (p->leader_exited)
        return;
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    do
        rc = waitid(P_PID, (id_t)p->pid, &si, WEXITED | WNOHANG | WNOWAIT);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        /* ECHILD: someone else reaped it (the host ignores SIGCHLD) */
        p->leader_lost = true;
        note(p, "exit status lost: the child was reaped outside mainstack");
    } else if (si.si_pid == 0) {
        return; /* still running */
    } else if (si.si_code == CLD_EXITED) {
        p->res.exit_code = si.si_status;
    } else if (si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED) {
        p->res.term_signal = si.si_status;
    }
    p->leader_exited = true;
    p->drain_ns = now + (int64_t)MS__PROC_DRAIN_MS * 1000000;
    close_slot(p, MS__PFD_PID);
    close_slot(p, MS__PFD_IN);
}

static void finish(ms__proc *p, int64_t now)
{
    if (p->fds[MS__PFD_EXEC] >= 0) {
        /* the child is gone: the pipe gives its report or EOF at once */
        read_exec_pipe(p);
        close_slot(p, MS__PFD_EXEC);
    }
    if (p->fds[MS__PFD_OUT] >= 0) {
        read_output(p);
        if (p->fds[MS__PFD_OUT] >= 0)
            note(p, "output pipe still open after the child exited (closed)");
    }
    signal_group(p, SIGKILL); /* whatever of the group is left */
    if (!p->leader_lost) {
        int st;
        while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    p->pid = -1;
    for (int i = 0; i < MS__PFD_COUNT; i++)
        close_slot(p, i);
    if (p->log_fd >= 0) {
        if (p->res.output_bytes > p->res.log_bytes && p->res.log_bytes >= p->log_max) {
            char line[160];
            int n = snprintf(line, sizeof line,
                             "\n[mainstack: output truncated at log_max %zu bytes; %zu more "
                             "bytes discarded]\n",
                             p->log_max, p->res.output_bytes - p->res.log_bytes);
            size_t saved = p->res.log_bytes;
            write_log(p, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
            p->res.log_bytes = saved;
        }
        if (p->log_fd >= 0)
            close(p->log_fd);
        p->log_fd = -1;
    }
    p->res.log_truncated = p->res.output_bytes > p->res.log_bytes;
    if (p->res.spawn_failed) {
        p->res.exit_code = -1;
        p->res.term_signal = 0;
    }
    p->res.duration_ns = now - p->start_ns;
    p->done = true;
}

void ms__proc_stop(ms__proc *p, bool hard, int64_t now)
{
    if (p->done)
        return;
    p->res.killed = true;
    if (p->leader_exited)
        return;
    if (hard || p->grace_ms == 0) {
        signal_group(p, SIGKILL);
        p->term_sent = p->kill_sent = true;
        return;
    }
    if (!p->term_sent) {
        signal_group(p, SIGTERM);
        signal_group(p, SIGCONT);
        p->term_sent = true;
        p->kill_ns = now + (int64_t)p->grace_ms * 1000000;
    }
}

/* --- driving ---------------------------------------------------------------- */

short ms__proc_slot_events(int slot)
{
    return slot == MS__PFD_IN ? POLLOUT : POLLIN;
}

int ms__proc_pollfds(const ms__proc *p, struct pollfd *pfd, int *slots)
{
    int n = 0;
    for (int i = 0; i < MS__PFD_COUNT; i++) {
        if (p->fds[i] < 0)
            continue;
        pfd[n].fd = p->fds[i];
        pfd[n].events = ms__proc_slot_events(i);
        pfd[n].revents = 0;
        slots[n] = i;
        n++;
    }
    return n;
}

void ms__proc_on_ready(ms__proc *p, int slot, int64_t now)
{
    if (p->done || p->fds[slot] < 0)
        return;
    switch (slot) {
    case MS__PFD_EXEC:
        read_exec_pipe(p);
        break;
    case MS__PFD_OUT:
        read_output(p);
        break;
    case MS__PFD_IN:
        write_input(p);
        break;
    case MS__PFD_PID:
        check_exit(p, now);
        break;
    default:
        break;
    }
    if (p->leader_exited && p->fds[MS__PFD_OUT] < 0)
        finish(p, now);
}

void ms__proc_tick(ms__proc *p, int64_t now)
{
    if (p->done)
        return;
    if (p->fds[MS__PFD_PID] < 0 && !p->leader_exited)
        check_exit(p, now); /* no pidfd: periodic check */
    if (!p->leader_exited) {
        if (!p->term_sent && now >= p->deadline_ns) {
            p->res.timed_out = true;
            if (p->grace_ms == 0) {
                signal_group(p, SIGKILL);
                p->term_sent = p->kill_sent = true;
            } else {
                signal_group(p, SIGTERM);
                signal_group(p, SIGCONT);
                p->term_sent = true;
                p->kill_ns = now + (int64_t)p->grace_ms * 1000000;
            }
        } else if (p->term_sent && !p->kill_sent && now >= p->kill_ns) {
            signal_group(p, SIGKILL);
            p->kill_sent = true;
        }
        return;
    }
    if (p->fds[MS__PFD_OUT] < 0 || now >= p->drain_ns)
        finish(p, now);
}

int64_t ms__proc_next_deadline(const ms__proc *p)
{
    if (p->done)
        return INT64_MAX;
    if (p->leader_exited)
        return p->drain_ns;
    int64_t t = INT64_MAX;
    if (!p->term_sent)
        t = p->deadline_ns;
    else if (!p->kill_sent)
        t = p->kill_ns;
    if (p->fds[MS__PFD_PID] < 0) {
        int64_t tick = ms__proc_now_ns() + (int64_t)MS__PROC_TICK_MS * 1000000;
        if (tick < t)
            t = tick;
    }
    return t;
}

static int poll_timeout_ms(int64_t deadline, int64_t now)
{
    if (deadline == INT64_MAX)
        return -1;
    if (deadline <= now)
        return 0;
    int64_t ms = (deadline - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

void ms__proc_loop(ms__proc *p)
{
    while (!p->done) {
        struct pollfd pfd[MS__PFD_COUNT];
        int slots[MS__PFD_COUNT];
        int n = ms__proc_pollfds(p, pfd, slots);
        int64_t now = ms__proc_now_ns();
        int rc = poll(pfd, (nfds_t)n, poll_timeout_ms(ms__proc_next_deadline(p), now));
        if (rc < 0 && errno != EINTR) {
            char what[128];
            snprintf(what, sizeof what, "poll: %s (run stopped)", strerror(errno));
            note(p, what);
            ms__proc_stop(p, true, now);
            ms__proc_tick(p, ms__proc_now_ns());
            continue;
        }
        now = ms__proc_now_ns();
        for (int i = 0; rc > 0 && i < n; i++)
            if (pfd[i].revents != 0)
                ms__proc_on_ready(p, slots[i], now);
        ms__proc_tick(p, ms__proc_now_ns());
    }
}

void ms__proc_take_result(ms__proc *p, ms_proc_result *out)
{
    /* the ring, oldest first, then a NUL; rotate in place */
    if (p->cap_start != 0) {
        size_t len = p->cap_len, k = p->cap_start;
        /* three reversals: [k..len) then [0..k) */
        for (size_t a = 0, b = len - 1; a < b; a++, b--) {
            char t = p->cap[a];
            p->cap[a] = p->cap[b];
            p->cap[b] = t;
        }
        size_t m = len - k;
        for (size_t a = 0, b = m - 1; m > 0 && a < b; a++, b--) {
            char t = p->cap[a];
            p->cap[a] = p->cap[b];
            p->cap[b] = t;
        }
        for (size_t a = m, b = len - 1; a < b; a++, b--) {
            char t = p->cap[a];
            p->cap[a] = p->cap[b];
            p->cap[b] = t;
        }
        p->cap_start = 0;
    }
    *out = p->res;
    out->output = p->cap;
    out->output_len = p->cap_len;
    out->output[p->cap_len] = '\0';
    out->output_truncated = p->res.output_bytes > p->cap_len;
    p->cap = NULL;
    p->cap_len = p->cap_size = 0;
    ms_proc_result_init(&p->res);
}

void ms__proc_free(ms__proc *p)
{
    if (p == NULL)
        return;
    if (p->spawned && !p->done) {
        ms__proc_stop(p, true, ms__proc_now_ns());
        ms__proc_loop(p);
    }
    for (int i = 0; i < MS__PFD_COUNT; i++)
        close_slot(p, i);
    if (p->log_fd >= 0)
        close(p->log_fd);
    ms__free(p->cap);
    ms__free(p->block);
    ms__free(p);
}

ms_status ms_proc_run(const ms_proc_spec *spec, ms_proc_result *out)
{
    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_proc_run: out is NULL");
    ms__proc *p = NULL;
    ms_status st = ms__proc_prepare(spec, &p);
    if (st != MS_OK)
        return st;
    ms_proc_result_reset(out);
    if (ms__proc_spawn(p) == MS_OK)
        ms__proc_loop(p);
    st = p->status;
    if (st != MS_OK)
        ms__err(st, "%s", p->res.error);
    ms__proc_take_result(p, out);
    ms__proc_free(p);
    return st;
}
