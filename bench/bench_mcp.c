/*
 * bench_mcp.c - `mstack mcp` over stdio: round trips of tools/call on a
 * read-only tool (list_components over a one-component project) beside
 * `ping` round trips to the same server process, the baseline (framing,
 * parsing and the writer with no work in between). One request in flight at
 * a time, as an agent's client does; rounds alternate ABBA and the medians
 * are reported, with the p50 round trip of each side.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench_common.h"

typedef struct proc {
    pid_t pid;
    int to, from;
    char buf[1 << 20];
    size_t len;
} proc;

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            bench_die("write to mstack mcp: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Read one line (the response: nothing else is sent unasked here). */
static void read_line(proc *p)
{
    for (;;) {
        char *nl = memchr(p->buf, '\n', p->len);
        if (nl != NULL) {
            size_t n = (size_t)(nl - p->buf) + 1;
            if (strstr(p->buf, "\"error\"") != NULL && strstr(p->buf, "\"error\"") < nl)
                bench_die("mstack mcp answered with an error: %.*s", (int)n, p->buf);
            memmove(p->buf, p->buf + n, p->len - n);
            p->len -= n;
            return;
        }
        ssize_t r = read(p->from, p->buf + p->len, sizeof p->buf - p->len);
        if (r <= 0)
            bench_die("mstack mcp closed its stdout");
        p->len += (size_t)r;
    }
}

static void start(proc *p, const char *root)
{
    int in[2], out[2];
    char *argv[] = {"mstack", "mcp", "--root", (char *)root, NULL};
    if (pipe(in) != 0 || pipe(out) != 0)
        bench_die("pipe: %s", strerror(errno));
    p->pid = fork();
    if (p->pid < 0)
        bench_die("fork: %s", strerror(errno));
    if (p->pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || devnull < 0 || dup2(devnull, 2) < 0)
            _exit(126);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execv(MSTACK_BIN, argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    p->to = in[1];
    p->from = out[0];
    p->len = 0;
    const char *init = "{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"initialize\",\"params\":{"
                       "\"protocolVersion\":\"2025-11-25\",\"capabilities\":{},\"clientInfo\":{"
                       "\"name\":\"bench\",\"version\":\"1\"}}}\n"
                       "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n";
    write_all(p->to, init, strlen(init));
    read_line(p);
}

/* n round trips of line; per-call latencies (us) appended to lat. Returns calls/s. */
static double round_trips(proc *p, const char *line, size_t n, double *lat)
{
    uint64_t t0 = bench_now_ns();
    size_t len = strlen(line);
    for (size_t i = 0; i < n; i++) {
        uint64_t s = bench_now_ns();
        write_all(p->to, line, len);
        read_line(p);
        lat[i] = (double)(bench_now_ns() - s) / 1e3;
    }
    return (double)n / ((double)(bench_now_ns() - t0) / 1e9);
}

int main(int argc, char **argv)
{
    bench_args args;
    char root[] = "/tmp/ms-bench-mcp-XXXXXX", path[PATH_MAX + 64];
    static const char *ping = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n";
    static const char *call = "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/call\",\"params\":"
                              "{\"name\":\"list_components\",\"arguments\":{}}}\n";
    proc *p = calloc(1, sizeof *p);
    size_t n;
    int rounds, status;

    bench_args_parse(argc, argv, &args);
    n = (size_t)bench_env_long("BENCH_MCP_CALLS", args.quick ? 500 : 3000);
    rounds = args.rounds;
    if (p == NULL || mkdtemp(root) == NULL)
        bench_die("setup: %s", strerror(errno));
    snprintf(path, sizeof path, "%s/components", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/components/alpha", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/components/alpha/interface.json", root);
    FILE *f = fopen(path, "w");
    if (f == NULL ||
        fputs("{\"name\":\"alpha\",\"version\":\"1.0.0\",\"description\":\"a\"}", f) < 0 ||
        fclose(f) != 0)
        bench_die("cannot write %s", path);
    start(p, root);

    double *rate_b = calloc((size_t)rounds, sizeof(double));
    double *rate_m = calloc((size_t)rounds, sizeof(double));
    double *lat_b = calloc(n * (size_t)rounds, sizeof(double));
    double *lat_m = calloc(n * (size_t)rounds, sizeof(double));
    double *warm = calloc(n, sizeof(double));
    if (rate_b == NULL || rate_m == NULL || lat_b == NULL || lat_m == NULL || warm == NULL)
        bench_die("out of memory");
    (void)round_trips(p, ping, n / 5 + 1, warm);
    (void)round_trips(p, call, n / 5 + 1, warm);
    for (int r = 0; r < rounds; r++) {
        bool baseline_first = (r % 2) == 0; /* ABBA */
        for (int side = 0; side < 2; side++) {
            bool base = (side == 0) == baseline_first;
            if (base && args.run_baseline)
                rate_b[r] = round_trips(p, ping, n, lat_b + (size_t)r * n);
            else if (!base && args.run_mainstack)
                rate_m[r] = round_trips(p, call, n, lat_m + (size_t)r * n);
        }
    }
    close(p->to);
    if (waitpid(p->pid, &status, 0) != p->pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        bench_die("mstack mcp did not exit cleanly at EOF");

    bench_result res;
    bench_result_init(&res, "mcp_tools_call_readonly", "calls/s", true, 0);
    res.value = bench_median(rate_m, (size_t)rounds);
    res.baseline = bench_median(rate_b, (size_t)rounds);
    bench_sort(lat_m, n * (size_t)rounds);
    bench_sort(lat_b, n * (size_t)rounds);
    bench_result_add(&res, "p50_us", bench_percentile(lat_m, n * (size_t)rounds, 50));
    bench_result_add(&res, "p99_us", bench_percentile(lat_m, n * (size_t)rounds, 99));
    bench_result_add(&res, "baseline_p50_us", bench_percentile(lat_b, n * (size_t)rounds, 50));
    bench_result_add(&res, "baseline_p99_us", bench_percentile(lat_b, n * (size_t)rounds, 99));
    res.note = "baseline: ping round trips to the same mstack mcp process";
    bench_result_emit(&res);

    snprintf(path, sizeof path, "rm -rf '%s'", root);
    if (system(path) != 0)
        bench_log("could not remove %s", root);
    free(rate_b);
    free(rate_m);
    free(lat_b);
    free(lat_m);
    free(warm);
    free(p);
    return 0;
}
