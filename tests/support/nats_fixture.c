/*
 * nats_fixture.c - a real nats-server for tests and benchmarks.
 *
 * Each fixture owns one nats-server child process listening on a free
 * 127.0.0.1 port, with its own mkdtemp directory holding the generated
 * config file (server_name, max_payload, authorization, JetStream store) and
 * the server's log. Readiness means: a TCP connect succeeds and the INFO line
 * carries our unique server_name (so a stranger on a reused port is never
 * mistaken for ours). The child asks the kernel to SIGKILL it when its parent
 * thread dies (PR_SET_PDEATHSIG), and an atexit hook kills what is left, so
 * no server outlives the test. Plain malloc/free on purpose: a test that
 * injects allocation failures into the library must not break its fixture.
 */
#include "nats_fixture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The library's internal error setter: failures here leave a detail in
 * ms_last_error() like every other mainstack call. */
#include "../../src/core/error.h"

#ifndef MS_NATS_SERVER_BIN
#define MS_NATS_SERVER_BIN "/usr/bin/nats-server"
#endif

#define READY_TIMEOUT_MS 5000
#define PORT_ATTEMPTS 8

struct ms_nats_server {
    pid_t pid; /* 0 when not running */
    int port;
    char url[64];
    char name[64];               /* server_name, unique per fixture */
    char dir[PATH_MAX - 64];     /* mkdtemp directory, removed by stop */
    char conf[PATH_MAX];         /* dir/nats.conf */
    char log[PATH_MAX];          /* dir/nats.log (stdout and stderr of the server) */
    struct ms_nats_server *next; /* live list for the atexit hook */
};

/* Every started fixture, so the atexit hook can kill servers a test forgot
 * (necessary global state: atexit takes no argument). */
static pthread_mutex_t live_mu = PTHREAD_MUTEX_INITIALIZER;
static struct ms_nats_server *live_list;
static pthread_once_t atexit_once = PTHREAD_ONCE_INIT;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0 && errno != ENOENT)
        fprintf(stderr, "nats fixture: cannot remove %s: %s\n", path, strerror(errno));
    return 0;
}

static void remove_tree(const char *dir)
{
    if (dir[0] != '\0')
        (void)nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* SIGKILL the child and reap it. */
static void kill_child(struct ms_nats_server *s)
{
    if (s->pid <= 0)
        return;
    (void)kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR) {
    }
    s->pid = 0;
}

static void kill_all_at_exit(void)
{
    pthread_mutex_lock(&live_mu);
    for (struct ms_nats_server *s = live_list; s != NULL; s = s->next) {
        kill_child(s);
        remove_tree(s->dir);
    }
    live_list = NULL;
    pthread_mutex_unlock(&live_mu);
}

static void register_atexit(void)
{
    if (atexit(kill_all_at_exit) != 0)
        fprintf(stderr, "nats fixture: atexit registration failed\n");
}

static void live_add(struct ms_nats_server *s)
{
    pthread_mutex_lock(&live_mu);
    s->next = live_list;
    live_list = s;
    pthread_mutex_unlock(&live_mu);
}

static void live_remove(struct ms_nats_server *s)
{
    pthread_mutex_lock(&live_mu);
    for (struct ms_nats_server **p = &live_list; *p != NULL; p = &(*p)->next) {
        if (*p == s) {
            *p = s->next;
            break;
        }
    }
    pthread_mutex_unlock(&live_mu);
}

/* A port the kernel just handed out for 127.0.0.1 (then released). Another
 * process may take it before the server binds; the caller retries then. */
static ms_status pick_port(int *out)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ms_status st = MS_OK;

    if (fd < 0)
        return ms__err(MS_ERR_IO, "nats fixture: socket: %s", strerror(errno));
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
        st = ms__err(MS_ERR_IO, "nats fixture: finding a free port on 127.0.0.1: %s",
                     strerror(errno));
    else
        *out = ntohs(a.sin_port);
    close(fd);
    return st;
}

/* Write s into f as a double-quoted config string (backslash and quote
 * escaped). */
static void put_quoted(FILE *f, const char *v)
{
    fputc('"', f);
    for (; *v != '\0'; v++) {
        if (*v == '"' || *v == '\\')
            fputc('\\', f);
        fputc(*v, f);
    }
    fputc('"', f);
}

static ms_status write_config(struct ms_nats_server *s, const ms_nats_server_opts *o)
{
    FILE *f = fopen(s->conf, "w");
    if (f == NULL)
        return ms__err(MS_ERR_IO, "nats fixture: cannot write %s: %s", s->conf, strerror(errno));
    fputs("server_name: ", f);
    put_quoted(f, s->name);
    fputc('\n', f);
    if (o->max_payload > 0)
        fprintf(f, "max_payload: %ld\n", o->max_payload);
    if (o->user != NULL || o->token != NULL) {
        fputs("authorization {\n", f);
        if (o->user != NULL) {
            fputs("  user: ", f);
            put_quoted(f, o->user);
            fputs("\n  password: ", f);
            put_quoted(f, o->password ? o->password : "");
            fputc('\n', f);
        } else {
            fputs("  token: ", f);
            put_quoted(f, o->token);
            fputc('\n', f);
        }
        fputs("}\n", f);
    }
    if (o->jetstream) {
        fputs("jetstream {\n  store_dir: ", f);
        char store[PATH_MAX + 8];
        snprintf(store, sizeof store, "%s/js", s->dir);
        put_quoted(f, store);
        fputs("\n}\n", f);
    }
    if (ferror(f) != 0) {
        fclose(f);
        return ms__err(MS_ERR_IO, "nats fixture: writing %s failed", s->conf);
    }
    if (fclose(f) != 0)
        return ms__err(MS_ERR_IO, "nats fixture: closing %s: %s", s->conf, strerror(errno));
    return MS_OK;
}

/* The last bytes of the server log, for error details. */
static void log_tail(const struct ms_nats_server *s, char *buf, size_t cap)
{
    buf[0] = '\0';
    int fd = open(s->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)(cap - 1) ? end - (off_t)(cap - 1) : 0;
    ssize_t n = pread(fd, buf, cap - 1, from);
    close(fd);
    if (n < 0)
        n = 0;
    buf[n] = '\0';
    for (ssize_t i = 0; i < n; i++)
        if (buf[i] == '\n')
            buf[i] = ' ';
}

static bool log_says_port_taken(const struct ms_nats_server *s)
{
    char tail[1024];
    log_tail(s, tail, sizeof tail);
    return strstr(tail, "address already in use") != NULL;
}

/* fork + exec the server on s->port. Everything the child needs is prepared
 * before fork: after fork only async-signal-safe calls are made. */
static ms_status spawn(struct ms_nats_server *s)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->port);
    char *const argv[] = {(char *)MS_NATS_SERVER_BIN,
                          (char *)"-a",
                          (char *)"127.0.0.1",
                          (char *)"-p",
                          port,
                          (char *)"-c",
                          s->conf,
                          NULL};
    pid_t parent = getpid();
    int logfd = open(s->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0)
        return ms__err(MS_ERR_IO, "nats fixture: cannot open %s: %s", s->log, strerror(errno));

    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(logfd);
        return ms__err(MS_ERR_IO, "nats fixture: fork: %s", strerror(e));
    }
    if (pid == 0) {
        /* Die with the parent, even when it crashes. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
            _exit(127);
        if (dup2(logfd, STDOUT_FILENO) < 0 || dup2(logfd, STDERR_FILENO) < 0)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            (void)dup2(devnull, STDIN_FILENO);
        /* Do not inherit the test's sockets (libnats does not mark them
         * close-on-exec): the server must not keep a client's socket open. */
        if (close_range(3, ~0U, 0) != 0)
            for (int fd = 3; fd < 4096; fd++)
                (void)close(fd);
        execv(MS_NATS_SERVER_BIN, argv);
        _exit(127);
    }
    close(logfd);
    s->pid = pid;
    return MS_OK;
}

/* Connect to the port and read the INFO line; true when it is our server. */
static bool probe(const struct ms_nats_server *s)
{
    struct sockaddr_in a;
    char buf[2048];
    size_t got = 0;
    bool ours = false;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return false;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)s->port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        goto done;
    while (got < sizeof buf - 1) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 500) <= 0)
            break;
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strchr(buf, '\n') != NULL)
            break;
    }
    buf[got] = '\0';
    if (strncmp(buf, "INFO ", 5) == 0) {
        char want[96];
        snprintf(want, sizeof want, "\"server_name\":\"%s\"", s->name);
        ours = strstr(buf, want) != NULL;
    }
done:
    close(fd);
    return ours;
}

/* 1: ready; 0: the child exited (see its log); -1: timed out. */
static int wait_ready(struct ms_nats_server *s)
{
    int64_t deadline = now_ms() + READY_TIMEOUT_MS;
    for (;;) {
        int status;
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) {
            s->pid = 0;
            return 0;
        }
        if (probe(s))
            return 1;
        if (now_ms() >= deadline)
            return -1;
        sleep_ms(10);
    }
}

/* Start the child on s->port (keep_port) or on fresh free ports, retrying
 * when another process took the port first. */
static ms_status launch(struct ms_nats_server *s, bool keep_port)
{
    ms_status st;
    char tail[512];

    for (int attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
        if (!keep_port && (st = pick_port(&s->port)) != MS_OK)
            return st;
        snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
        if ((st = spawn(s)) != MS_OK)
            return st;
        int r = wait_ready(s);
        if (r == 1)
            return MS_OK;
        if (r < 0) {
            kill_child(s);
            log_tail(s, tail, sizeof tail);
            return ms__err(MS_ERR_TIMEOUT,
                           "nats fixture: %s did not answer on 127.0.0.1:%d within %d ms; "
                           "log %s: %s",
                           MS_NATS_SERVER_BIN, s->port, READY_TIMEOUT_MS, s->log, tail);
        }
        /* The child exited: a port clash is retried, anything else is fatal. */
        if (keep_port || !log_says_port_taken(s))
            break;
    }
    log_tail(s, tail, sizeof tail);
    return ms__err(MS_ERR_IO, "nats fixture: %s exited on port %d; log %s: %s", MS_NATS_SERVER_BIN,
                   s->port, s->log, tail);
}

ms_status ms_nats_server_start(const ms_nats_server_opts *opts, ms_nats_server **out)
{
    static const ms_nats_server_opts defaults = {0};
    struct ms_nats_server *s = NULL;
    const char *tmp = getenv("TMPDIR");
    ms_status st;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_nats_server_start: out is NULL");
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    if ((opts->user == NULL) != (opts->password == NULL))
        return ms__err(MS_ERR_INVALID_ARG, "ms_nats_server_start: user and password go together");
    if (opts->user != NULL && opts->token != NULL)
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_nats_server_start: choose user/password or token, not both");
    if (opts->max_payload < 0)
        return ms__err(MS_ERR_INVALID_ARG, "ms_nats_server_start: max_payload %ld < 0",
                       opts->max_payload);
    if (access(MS_NATS_SERVER_BIN, X_OK) != 0)
        return ms__err(MS_ERR_NOT_FOUND, "nats fixture: %s is not executable: %s",
                       MS_NATS_SERVER_BIN, strerror(errno));
    (void)pthread_once(&atexit_once, register_atexit);

    s = calloc(1, sizeof *s);
    if (s == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "nats fixture: allocating the fixture");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    if ((size_t)snprintf(s->dir, sizeof s->dir, "%s/ms-nats-XXXXXX", tmp) >= sizeof s->dir) {
        free(s);
        return ms__err(MS_ERR_INVALID_ARG, "nats fixture: TMPDIR is too long");
    }
    if (mkdtemp(s->dir) == NULL) {
        st = ms__err(MS_ERR_IO, "nats fixture: mkdtemp %s: %s", s->dir, strerror(errno));
        free(s);
        return st;
    }
    /* The directory's random suffix makes the name unique on this machine. */
    snprintf(s->name, sizeof s->name, "ms_fixture_%ld_%s", (long)getpid(),
             strrchr(s->dir, '-') + 1);
    snprintf(s->conf, sizeof s->conf, "%s/nats.conf", s->dir);
    snprintf(s->log, sizeof s->log, "%s/nats.log", s->dir);

    live_add(s);
    if ((st = write_config(s, opts)) != MS_OK)
        goto fail;
    if ((st = launch(s, false)) != MS_OK)
        goto fail;
    *out = s;
    return MS_OK;

fail:
    live_remove(s);
    kill_child(s);
    remove_tree(s->dir);
    free(s);
    return st;
}

const char *ms_nats_server_url(const ms_nats_server *s)
{
    return s ? s->url : NULL;
}

int ms_nats_server_port(const ms_nats_server *s)
{
    return s ? s->port : 0;
}

const char *ms_nats_server_dir(const ms_nats_server *s)
{
    return s ? s->dir : NULL;
}

ms_status ms_nats_server_kill(ms_nats_server *s)
{
    if (s == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_nats_server_kill: server is NULL");
    if (s->pid <= 0)
        return ms__err(MS_ERR_STATE, "ms_nats_server_kill: server on port %d is not running",
                       s->port);
    kill_child(s);
    return MS_OK;
}

ms_status ms_nats_server_restart(ms_nats_server *s)
{
    if (s == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_nats_server_restart: server is NULL");
    kill_child(s);
    return launch(s, true);
}

void ms_nats_server_stop(ms_nats_server *s)
{
    if (s == NULL)
        return;
    live_remove(s);
    kill_child(s);
    remove_tree(s->dir);
    free(s);
}
