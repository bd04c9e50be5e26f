/*
 * spawn.c - preparing a run and starting the child (proc_internal.h).
 *
 * Everything the child needs (argv, the final environment, the list of
 * paths to try for argv[0]) is built in the parent, in one block, then
 * handed to posix_spawn, which glibc implements with a vfork-like clone: no
 * copy of the parent's page tables and no copy-on-write storm in its
 * threads, so a big host with many threads spawns as cheaply as a small
 * one. The child becomes a process group leader, gets every signal at its
 * default and an empty mask, its pipes as 0/1/2, nothing else open, and the
 * run's cwd; an exec failure comes back from posix_spawn itself with its
 * errno, never as an exit status.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
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

/* Start argv on each candidate path in turn (execvp's rules: a candidate
 * that does not exist or may not be searched lets the next one try; EACCES
 * is kept if nothing else works). posix_spawn (glibc: clone with CLONE_VM |
 * CLONE_VFORK) instead of fork: the parent's page tables are not copied and
 * its threads take no copy-on-write faults, which is what makes hundreds of
 * spawns from a big, many-threaded host cheap. The child becomes its own
 * process group leader, gets every signal at its default and an empty mask,
 * in_fd as stdin, out_fd as stdout and stderr, nothing else open, and the
 * run's cwd. Returns 0 with *pid, or the errno of the failure. */
static int spawn_child(ms__proc *p, int in_fd, int out_fd, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t all, none;
    int err = ENOENT, rc;
    bool eacces = false;

    if ((rc = posix_spawn_file_actions_init(&fa)) != 0)
        return rc;
    if ((rc = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    sigemptyset(&none);
    if ((rc = posix_spawn_file_actions_adddup2(&fa, in_fd, 0)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 1)) != 0 ||
        (rc = posix_spawn_file_actions_adddup2(&fa, out_fd, 2)) != 0 ||
        (rc = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) != 0 ||
        (p->cwd != NULL && (rc = posix_spawn_file_actions_addchdir_np(&fa, p->cwd)) != 0) ||
        (rc = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETSIGMASK)) != 0 ||
        (rc = posix_spawnattr_setpgroup(&at, 0)) != 0 ||
        (rc = posix_spawnattr_setsigdefault(&at, &all)) != 0 ||
        (rc = posix_spawnattr_setsigmask(&at, &none)) != 0) {
        err = rc;
        goto done;
    }
    for (size_t i = 0; p->cand[i] != NULL; i++) {
        /* Look before spawning: a PATH entry without the program would cost
         * a whole clone to find out. A candidate that passes here and still
         * fails is handled like execvp handles it. */
        if (access(p->cand[i], X_OK) != 0) {
            err = errno;
            if (err == EACCES)
                eacces = true;
            if (err == EACCES || err == ENOENT || err == ENOTDIR || err == ESTALE ||
                err == ENODEV || err == ETIMEDOUT)
                continue;
            break;
        }
        rc = posix_spawn(pid, p->cand[i], &fa, &at, p->argv, p->envp);
        if (rc == 0) {
            err = 0;
            goto done;
        }
        err = rc;
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
done:
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return err;
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
    int out_p[2] = {-1, -1}, in_p[2] = {-1, -1};
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
    if (pipe2(out_p, O_CLOEXEC) != 0) {
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
    if (raise_fd(&in_child) != 0 || raise_fd(&out_p[1]) != 0) {
        st = spawn_fail(p, errno, "proc '%s': fcntl", prog);
        goto cleanup;
    }
    /* a cwd that cannot be entered: said as such (posix_spawn would only
     * give chdir's errno, indistinguishable from the program's) */
    if (p->cwd != NULL && access(p->cwd, X_OK) != 0) {
        ms__proc_exec_failed(p, STAGE_CHDIR, errno);
        p->done = true;
        st = p->status;
        goto cleanup;
    }
    pid_t pid = -1;
    p->start_ns = ms__proc_now_ns();
    int err = spawn_child(p, in_child, out_p[1], &pid);
    if (err != 0) {
        ms__proc_exec_failed(p, STAGE_EXEC, err);
        p->done = true;
        st = p->status;
        goto cleanup;
    }
    p->pid = pid;
    p->spawned = true;
    (void)setpgid(pid, pid); /* also done by the child; whichever runs first wins */
    p->fds[MS__PFD_OUT] = out_p[0];
    out_p[0] = -1;
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
