/*
 * spawn.c - preparing a run and starting the child (proc_internal.h).
 *
 * Everything the child needs (argv, the final environment, the list of
 * paths to try for argv[0]) is built in the parent, in one block, because
 * after fork a child of a multi-threaded process may only call
 * async-signal-safe functions. The child makes itself a process group
 * leader, resets every signal disposition and its mask, moves its pipes to
 * 0/1/2, closes every other descriptor, changes directory and tries execve
 * on each candidate (execvp's rules). If all fail it writes {stage, errno} to
 * a close-on-exec pipe and _exits; EOF on that pipe means exec succeeded.
 * The parent blocks all signals around fork so no host handler runs in the
 * child before the dispositions are reset.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "core/alloc.h"
#include "core/error.h"
#include "proc/proc_internal.h"

extern char **environ;

#define DEFAULT_PATH "/bin:/usr/bin"

/* What the child reports when exec fails. */
enum { STAGE_SETUP = 1, STAGE_CHDIR = 2, STAGE_EXEC = 3 };

void ms_proc_spec_init(ms_proc_spec *spec)
{
    if (spec == NULL)
        return;
    memset(spec, 0, sizeof *spec);
    spec->timeout_ms = 60000;
    spec->grace_ms = 2000;
    spec->log_max = (size_t)16 << 20;
    spec->capture_max = (size_t)64 << 10;
}

void ms_proc_result_init(ms_proc_result *r)
{
    if (r == NULL)
        return;
    memset(r, 0, sizeof *r);
    r->exit_code = -1;
}

void ms_proc_result_reset(ms_proc_result *r)
{
    if (r == NULL)
        return;
    ms__free(r->output);
    ms_proc_result_init(r);
}

int64_t ms__proc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- preparing: two passes over one bump allocator ------------------------ */

typedef struct bump {
    char *base; /* NULL on the sizing pass */
    size_t off;
} bump;

static void *bump_take(bump *b, size_t n, size_t align)
{
    b->off = (b->off + align - 1) & ~(align - 1);
    void *p = b->base ? b->base + b->off : NULL;
    b->off += n;
    return p;
}

static char *bump_str(bump *b, const char *s, size_t n)
{
    char *d = bump_take(b, n + 1, 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static size_t name_len(const char *entry)
{
    const char *eq = strchr(entry, '=');
    return eq ? (size_t)(eq - entry) : strlen(entry);
}

static bool same_name(const char *a, const char *b)
{
    size_t n = name_len(a);
    return n == name_len(b) && memcmp(a, b, n) == 0;
}

/* Is entry `e` of the inherited environment overridden by the spec? */
static bool overridden(const char *e, const char *const *env)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (same_name(e, env[i]))
            return true;
    return false;
}

/* Is env[i] replaced by a later entry of the same name? */
static bool shadowed_later(const char *const *env, size_t i)
{
    for (size_t j = i + 1; env[j] != NULL; j++)
        if (same_name(env[i], env[j]))
            return true;
    return false;
}

typedef struct layout {
    const ms_proc_spec *spec;
    size_t argc, nenv, ncand;
    const char **envsrc; /* the final environment, borrowed strings (one snapshot) */
    const char *path;    /* PATH value used for the lookup */
} layout;

static bool inherit(const ms_proc_spec *s, const char *e)
{
    if (overridden(e, s->env))
        return false;
    if (!s->clear_env)
        return true;
    return strncmp(e, "PATH=", 5) == 0;
}

static void fill(bump *b, const layout *l, ms__proc *p)
{
    const ms_proc_spec *s = l->spec;
    char **argv = bump_take(b, (l->argc + 1) * sizeof *argv, sizeof(void *));
    char **envp = bump_take(b, (l->nenv + 1) * sizeof *envp, sizeof(void *));
    char **cand = bump_take(b, (l->ncand + 1) * sizeof *cand, sizeof(void *));
    for (size_t i = 0; i < l->argc; i++) {
        char *a = bump_str(b, s->argv[i], strlen(s->argv[i]));
        if (argv)
            argv[i] = a;
    }
    size_t k = 0;
    for (size_t i = 0; i < l->nenv; i++) {
        char *e = bump_str(b, l->envsrc[i], strlen(l->envsrc[i]));
        if (envp)
            envp[k] = e;
        k++;
    }
    const char *prog = s->argv[0];
    size_t plen = strlen(prog);
    k = 0;
    if (strchr(prog, '/') != NULL) {
        char *c = bump_str(b, prog, plen);
        if (cand)
            cand[k] = c;
        k++;
    } else {
        const char *d = l->path;
        for (;;) {
            const char *colon = strchr(d, ':');
            size_t dlen = colon ? (size_t)(colon - d) : strlen(d);
            /* an empty entry is the working directory, as for execvp */
            char *c = bump_take(b, dlen + 1 + plen + 1, 1);
            if (c != NULL) {
                size_t o = 0;
                if (dlen > 0) {
                    memcpy(c, d, dlen);
                    c[dlen] = '/';
                    o = dlen + 1;
                }
                memcpy(c + o, prog, plen + 1);
            }
            if (cand)
                cand[k] = c;
            k++;
            if (colon == NULL)
                break;
            d = colon + 1;
        }
    }
    char *cwd = s->cwd ? bump_str(b, s->cwd, strlen(s->cwd)) : NULL;
    char *log = s->log_path ? bump_str(b, s->log_path, strlen(s->log_path)) : NULL;
    unsigned char *in = s->stdin_len ? bump_take(b, s->stdin_len, 1) : NULL;
    if (b->base == NULL)
        return;
    argv[l->argc] = NULL;
    envp[l->nenv] = NULL;
    cand[l->ncand] = NULL;
    if (in)
        memcpy(in, s->stdin_data, s->stdin_len);
    p->argv = argv;
    p->envp = envp;
    p->cand = cand;
    p->cwd = cwd;
    p->log_path = log;
    p->in_data = in;
    p->in_len = s->stdin_len;
}

static ms_status validate(const ms_proc_spec *s)
{
    if (s == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "proc: spec is NULL");
    if (s->argv == NULL || s->argv[0] == NULL || s->argv[0][0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "proc: argv is empty (argv[0] is the program)");
    for (size_t i = 0; s->env != NULL && s->env[i] != NULL; i++) {
        const char *eq = strchr(s->env[i], '=');
        if (eq == NULL || eq == s->env[i])
            return ms__err(MS_ERR_INVALID_ARG, "proc '%s': env[%zu] '%.64s' is not NAME=value",
                           s->argv[0], i, s->env[i]);
    }
    if (s->timeout_ms <= 0)
        return ms__err(MS_ERR_INVALID_ARG, "proc '%s': timeout_ms %d must be > 0", s->argv[0],
                       s->timeout_ms);
    if (s->grace_ms < 0)
        return ms__err(MS_ERR_INVALID_ARG, "proc '%s': grace_ms %d must be >= 0", s->argv[0],
                       s->grace_ms);
    if (s->stdin_len > 0 && s->stdin_data == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "proc '%s': stdin_len %zu with NULL stdin_data",
                       s->argv[0], s->stdin_len);
    if (s->cwd != NULL && s->cwd[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "proc '%s': cwd is empty", s->argv[0]);
    if (s->log_path != NULL && s->log_path[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "proc '%s': log_path is empty", s->argv[0]);
    return MS_OK;
}

ms_status ms__proc_prepare(const ms_proc_spec *spec, ms__proc **out)
{
    ms_status st = validate(spec);
    if (st != MS_OK)
        return st;
    layout l = {.spec = spec};
    while (spec->argv[l.argc] != NULL)
        l.argc++;
    /* One snapshot of environ serves both passes (a concurrent setenv must
     * not change the count between them). */
    size_t nhost = 0, nspec = 0;
    while (environ != NULL && environ[nhost] != NULL)
        nhost++;
    while (spec->env != NULL && spec->env[nspec] != NULL)
        nspec++;
    l.envsrc = ms__malloc((nhost + nspec + 1) * sizeof *l.envsrc);
    if (l.envsrc == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "proc '%s': out of memory", spec->argv[0]);
    for (size_t i = 0; i < nhost && environ[i] != NULL; i++)
        if (inherit(spec, environ[i]))
            l.envsrc[l.nenv++] = environ[i];
    l.path = NULL;
    for (size_t i = 0; i < nspec; i++) {
        if (shadowed_later(spec->env, i))
            continue;
        l.envsrc[l.nenv++] = spec->env[i];
        if (strncmp(spec->env[i], "PATH=", 5) == 0)
            l.path = spec->env[i] + 5;
    }
    if (l.path == NULL) {
        const char *host = getenv("PATH");
        l.path = host ? host : DEFAULT_PATH;
    }
    if (strchr(spec->argv[0], '/') != NULL) {
        l.ncand = 1;
    } else {
        l.ncand = 1;
        for (const char *c = l.path; *c; c++)
            if (*c == ':')
                l.ncand++;
    }

    ms__proc *p = ms__calloc(1, sizeof *p);
    if (p == NULL) {
        ms__free(l.envsrc);
        return ms__err(MS_ERR_NO_MEMORY, "proc '%s': out of memory", spec->argv[0]);
    }
    bump sizing = {0};
    fill(&sizing, &l, NULL);
    p->block = ms__malloc(sizing.off);
    size_t first = spec->capture_max < 4096 ? spec->capture_max : 4096;
    p->cap = ms__malloc(first + 1);
    if (p->block == NULL || p->cap == NULL) {
        ms__free(p->block);
        ms__free(p->cap);
        ms__free(p);
        ms__free(l.envsrc);
        return ms__err(MS_ERR_NO_MEMORY, "proc '%s': out of memory", spec->argv[0]);
    }
    bump real = {.base = p->block};
    fill(&real, &l, p);
    ms__free(l.envsrc);
    p->cap_size = first;
    p->timeout_ms = spec->timeout_ms;
    p->grace_ms = spec->grace_ms;
    p->log_max = spec->log_max;
    p->capture_max = spec->capture_max;
    p->pid = -1;
    p->log_fd = -1;
    for (int i = 0; i < MS__PFD_COUNT; i++)
        p->fds[i] = -1;
    atomic_init(&p->kill_requested, false);
    ms_proc_result_init(&p->res);
    *out = p;
    return MS_OK;
}

/* --- spawning -------------------------------------------------------------- */

/* Move fd to a number >= 3 (close-on-exec) so the child's dup2 onto 0..2
 * can never clobber another of its sources. */
static int raise_fd(int *fd)
{
    if (*fd >= 3)
        return 0;
    int n = fcntl(*fd, F_DUPFD_CLOEXEC, 3);
    if (n < 0)
        return -1;
    close(*fd);
    *fd = n;
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    return fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Close lo..hi (inclusive): close_range(2) (Linux 5.9), else one by one up
 * to loop_max. */
static void close_from(int lo, unsigned hi, int loop_max)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lo, hi, 0) == 0)
        return;
#endif
    int last = hi < (unsigned)loop_max ? (int)hi : loop_max;
    for (int fd = lo; fd <= last; fd++)
        close(fd);
}

typedef struct child_args {
    ms__proc *p;
    int in_fd, out_fd, exec_fd;
    int open_max;
} child_args;

static _Noreturn void child_fail(int exec_fd, int stage, int err)
{
    int msg[2] = {stage, err};
    ssize_t w;
    do
        w = write(exec_fd, msg, sizeof msg);
    while (w < 0 && errno == EINTR);
    _exit(127);
}

/* Runs in the forked child: async-signal-safe calls only. */
static _Noreturn void child_exec(const child_args *a)
{
    ms__proc *p = a->p;
    setpgid(0, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            (void)sigaction(sig, &dfl, NULL);
    if (dup2(a->in_fd, 0) < 0 || dup2(a->out_fd, 1) < 0 || dup2(a->out_fd, 2) < 0)
        child_fail(a->exec_fd, STAGE_SETUP, errno);
    if (a->exec_fd > 3)
        close_from(3, (unsigned)a->exec_fd - 1, a->open_max);
    close_from(a->exec_fd + 1, UINT_MAX, a->open_max);
    if (p->cwd != NULL && chdir(p->cwd) != 0)
        child_fail(a->exec_fd, STAGE_CHDIR, errno);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    int err = ENOENT;
    bool eacces = false;
    for (size_t i = 0; p->cand[i] != NULL; i++) {
        execve(p->cand[i], p->argv, p->envp);
        err = errno;
        if (err == EACCES) {
            eacces = true;
            continue;
        }
        if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT)
            continue;
        break;
    }
    if (eacces &&
        (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT))
        err = EACCES;
    child_fail(a->exec_fd, STAGE_EXEC, err);
}

/* Record a failure to start: "<what>: <errno text>". */
static ms_status spawn_fail(ms__proc *p, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static ms_status spawn_fail(ms__proc *p, int err, const char *fmt, ...)
{
    ms_status st = (err == ENOENT || err == ENOTDIR) ? MS_ERR_NOT_FOUND : MS_ERR_IO;
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    p->res.spawn_failed = true;
    p->res.spawn_errno = err;
    snprintf(p->res.error, sizeof p->res.error, "%s: %s", what, strerror(err));
    p->status = st;
    p->done = true;
    return st;
}

ms_status ms__proc_spawn(ms__proc *p)
{
    int out_p[2] = {-1, -1}, in_p[2] = {-1, -1}, ex_p[2] = {-1, -1};
    int in_child = -1;
    const char *prog = p->argv[0];
    ms_status st = MS_OK;

    if (p->log_path != NULL) {
        do
            p->log_fd =
                open(p->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0600);
        while (p->log_fd < 0 && errno == EINTR);
        if (p->log_fd < 0) {
            st = spawn_fail(p, errno, "log file '%s'", p->log_path);
            goto cleanup;
        }
    }
    if (pipe2(out_p, O_CLOEXEC) != 0 || pipe2(ex_p, O_CLOEXEC) != 0) {
        st = spawn_fail(p, errno, "proc '%s': pipe", prog);
        goto cleanup;
    }
    if (p->in_len > 0) {
        if (pipe2(in_p, O_CLOEXEC) != 0) {
            st = spawn_fail(p, errno, "proc '%s': pipe", prog);
            goto cleanup;
        }
        in_child = in_p[0];
        in_p[0] = -1;
    } else {
        in_child = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (in_child < 0) {
            st = spawn_fail(p, errno, "proc '%s': /dev/null", prog);
            goto cleanup;
        }
    }
    if (raise_fd(&in_child) != 0 || raise_fd(&out_p[1]) != 0 || raise_fd(&ex_p[1]) != 0) {
        st = spawn_fail(p, errno, "proc '%s': fcntl", prog);
        goto cleanup;
    }
    long open_max = sysconf(_SC_OPEN_MAX);
    child_args a = {.p = p,
                    .in_fd = in_child,
                    .out_fd = out_p[1],
                    .exec_fd = ex_p[1],
                    .open_max = (open_max > 0 && open_max < INT_MAX) ? (int)open_max : 65536};

    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    p->start_ns = ms__proc_now_ns();
    pid_t pid = fork();
    if (pid == 0)
        child_exec(&a);
    int fork_err = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (pid < 0) {
        st = spawn_fail(p, fork_err, "proc '%s': fork", prog);
        goto cleanup;
    }
    p->pid = pid;
    p->spawned = true;
    (void)setpgid(pid, pid); /* also done by the child; whichever runs first wins */
    p->fds[MS__PFD_OUT] = out_p[0];
    out_p[0] = -1;
    p->fds[MS__PFD_EXEC] = ex_p[0];
    ex_p[0] = -1;
    if (in_p[1] >= 0) {
        p->fds[MS__PFD_IN] = in_p[1];
        in_p[1] = -1;
    }
#ifdef SYS_pidfd_open
    p->fds[MS__PFD_PID] = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
    /* pidfd_open is Linux 5.3+: without it the loop checks every TICK_MS */
    for (int i = 0; i < MS__PFD_COUNT; i++)
        if (p->fds[i] >= 0 && i != MS__PFD_PID)
            (void)set_nonblock(p->fds[i]);
    p->deadline_ns = p->start_ns + (int64_t)p->timeout_ms * 1000000;

cleanup:
    if (out_p[0] >= 0)
        close(out_p[0]);
    if (out_p[1] >= 0)
        close(out_p[1]);
    if (ex_p[0] >= 0)
        close(ex_p[0]);
    if (ex_p[1] >= 0)
        close(ex_p[1]);
    if (in_p[0] >= 0)
        close(in_p[0]);
    if (in_p[1] >= 0)
        close(in_p[1]);
    if (in_child >= 0)
        close(in_child);
    if (st != MS_OK && p->log_fd >= 0) {
        close(p->log_fd);
        p->log_fd = -1;
    }
    return st;
}

void ms__proc_exec_failed(ms__proc *p, int stage, int err)
{
    ms_status st = (err == ENOENT || err == ENOTDIR) ? MS_ERR_NOT_FOUND : MS_ERR_IO;
    p->res.spawn_failed = true;
    p->res.spawn_errno = err;
    p->status = st;
    if (stage == STAGE_CHDIR)
        snprintf(p->res.error, sizeof p->res.error, "proc '%s': cwd '%s': %s", p->argv[0],
                 p->cwd ? p->cwd : "", strerror(err));
    else if (stage == STAGE_EXEC && strchr(p->argv[0], '/') == NULL && err == ENOENT)
        snprintf(p->res.error, sizeof p->res.error, "proc '%s': %s (not found in PATH)", p->argv[0],
                 strerror(err));
    else if (stage == STAGE_EXEC)
        snprintf(p->res.error, sizeof p->res.error, "proc '%s': %s", p->argv[0], strerror(err));
    else
        snprintf(p->res.error, sizeof p->res.error, "proc '%s': child setup: %s", p->argv[0],
                 strerror(err));
}
