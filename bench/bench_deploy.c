/*
 * bench_deploy.c - a promotion and a rollback across hosts under load.
 *
 * Three ms_runtime hosts (a bus each) on a nats-server of the run host the
 * swapver plugin 1.0.0. Requester threads keep a fixed window of requests
 * in flight on component.swapver.echo, each answered on the requester's
 * own inbox and counted by request id. First a steady phase (no deploy):
 * its p99 is the baseline. Then ms_deploy_promote to 2.0.0 and
 * ms_deploy_rollback to 1.0.0, 20 times each (2 with --quick): requests
 * sent while a promotion runs are the "during swaps" sample.
 *
 * Results:
 *   deploy_swap_p99    p99 latency of requests sent during promotions, beside
 *                      the steady p99 (ratio = steady / during). Fails when a
 *                      request was lost or answered twice (lost, duplicates).
 *   deploy_promote_ms  median time from the ms_deploy_promote call until every
 *                      host serves the new version (its discovery window
 *                      included, reported apart), informational.
 * Not ABBA rounds: one run of each phase; the steady phase is the baseline.
 * The program exits 1 when a request was lost or answered twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_common.h"
#include "mainstack/deploy.h"
#include "mainstack/mainstack.h"

#define NHOSTS 3
#define REQ_THREADS 2
#define WINDOW 16
#define MAX_IDS 4000000

typedef struct load {
    ms_bus *client;
    char inbox[REQ_THREADS][64];
    ms_subscription *subs[REQ_THREADS];
    pthread_t threads[REQ_THREADS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int outstanding[REQ_THREADS];
    atomic_int next;
    atomic_bool stop;
    atomic_bool swapping;
    uint64_t *sent_ns;       /* per id */
    uint8_t *in_swap;        /* per id: sent while a promotion ran */
    uint8_t *replies;        /* per id: answers */
    double *steady, *during; /* latencies, us */
    size_t nsteady, nduring;
    int strange;
} load;

typedef struct thread_arg {
    load *l;
    int i;
} thread_arg;

static thread_arg g_args[REQ_THREADS];

static void on_reply(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    thread_arg *ta = closure;
    load *l = ta->l;
    const char *d = ms_message_data(m);
    size_t n = ms_message_len(m);
    uint64_t now = bench_now_ns();
    (void)bus;
    (void)sub;
    pthread_mutex_lock(&l->mu);
    if (n > 7 && d[5] == ':' && d[6] == 'r') {
        int id = atoi(d + 7);
        if (id >= 0 && id < MAX_IDS) {
            double us = (double)(now - l->sent_ns[id]) / 1000.0;
            l->replies[id]++;
            if (l->in_swap[id])
                l->during[l->nduring++] = us;
            else
                l->steady[l->nsteady++] = us;
        } else {
            l->strange++;
        }
    } else {
        l->strange++;
    }
    l->outstanding[ta->i]--;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static void *requester(void *arg)
{
    thread_arg *ta = arg;
    load *l = ta->l;
    char payload[32];
    for (;;) {
        int id;
        pthread_mutex_lock(&l->mu);
        while (l->outstanding[ta->i] >= WINDOW && !atomic_load(&l->stop))
            pthread_cond_wait(&l->cv, &l->mu);
        if (atomic_load(&l->stop)) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        id = atomic_fetch_add(&l->next, 1);
        if (id >= MAX_IDS) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        l->outstanding[ta->i]++;
        l->sent_ns[id] = bench_now_ns();
        l->in_swap[id] = atomic_load(&l->swapping);
        pthread_mutex_unlock(&l->mu);
        snprintf(payload, sizeof payload, "r%d", id);
        bench_check_ms(ms_bus_publish_reply(l->client, "component.swapver.echo", l->inbox[ta->i],
                                            payload, strlen(payload)),
                       "publishing a request");
    }
    return NULL;
}

static void copy_plugin(const char *from, const char *to)
{
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\" && cp '%s' '%s'", to, from, to);
    if (system(cmd) != 0)
        bench_die("cannot copy %s to %s", from, to);
}

static double pctl(double *v, size_t n, double p)
{
    bench_sort(v, n);
    return bench_percentile(v, n, p);
}

int main(int argc, char **argv)
{
    bench_args args;
    bench_server srv;
    ms_runtime *rt[NHOSTS] = {0};
    char dir[] = "/tmp/ms-bench-deploy-XXXXXX";
    char art_a[512], art_b[512], cmd[600];
    load *l;
    ms_promote_options po;
    int cycles, lost = 0, twice = 0, n;
    double promote_ms[64], discover_ms[64], prepare_ms[64], switch_ms[64];
    size_t npromote = 0;
    int64_t steady_ms;

    bench_args_parse(argc, argv, &args);
    cycles = args.quick ? 2 : 20;
    steady_ms = args.quick ? 300 : 2000;
    ms_log_set_level(MS_LOG_WARN);
    if (mkdtemp(dir) == NULL)
        bench_die("mkdtemp failed");
    snprintf(art_a, sizeof art_a, "%s/.mainstack/artifacts/swapver/1.0.0/swapver.so", dir);
    snprintf(art_b, sizeof art_b, "%s/.mainstack/artifacts/swapver/2.0.0/swapver.so", dir);
    copy_plugin(BENCH_PLUGIN_DIR "/swapver_a.so", art_a);
    copy_plugin(BENCH_PLUGIN_DIR "/swapver_b.so", art_b);

    bench_server_start(&srv);
    for (int i = 0; i < NHOSTS; i++) {
        ms_runtime_options o;
        char name[32];
        ms_runtime_options_init(&o);
        snprintf(name, sizeof name, "bench-host%d", i);
        o.url = srv.url;
        o.host_name = name;
        o.data_root = dir;
        o.workers = 2;
        o.health_interval_ms = 0;
        bench_check_ms(ms_runtime_create(&o, &rt[i]), "ms_runtime_create");
        bench_check_ms(ms_runtime_load(rt[i], art_a, NULL, NULL), "loading swapver 1.0.0");
    }

    l = calloc(1, sizeof *l);
    if (l == NULL)
        bench_die("out of memory");
    l->sent_ns = calloc(MAX_IDS, sizeof *l->sent_ns);
    l->in_swap = calloc(MAX_IDS, 1);
    l->replies = calloc(MAX_IDS, 1);
    l->steady = calloc(MAX_IDS, sizeof *l->steady);
    l->during = calloc(MAX_IDS, sizeof *l->during);
    if (l->sent_ns == NULL || l->in_swap == NULL || l->replies == NULL || l->steady == NULL ||
        l->during == NULL)
        bench_die("out of memory");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    bench_check_ms(ms_bus_connect_url(srv.url, &l->client), "connecting the client");
    for (int i = 0; i < REQ_THREADS; i++) {
        g_args[i].l = l;
        g_args[i].i = i;
        snprintf(l->inbox[i], sizeof l->inbox[i], "benchdeploy.inbox.%d", i);
        bench_check_ms(
            ms_bus_subscribe(l->client, l->inbox[i], NULL, on_reply, &g_args[i], &l->subs[i]),
            "subscribing an inbox");
    }
    bench_check_ms(ms_bus_flush(l->client, 5000), "flush");
    for (int i = 0; i < REQ_THREADS; i++)
        if (pthread_create(&l->threads[i], NULL, requester, &g_args[i]) != 0)
            bench_die("pthread_create failed");

    usleep((useconds_t)steady_ms * 1000);
    ms_promote_options_init(&po);
    po.discover_ms = 100;
    for (int k = 0; k < cycles; k++) {
        ms_promote_report r;
        ms_status s;
        atomic_store(&l->swapping, true);
        s = ms_deploy_promote(l->client, "swapver", "2.0.0", art_b, &po, &r);
        atomic_store(&l->swapping, false);
        if (s != MS_OK)
            bench_die("promote %d: %s", k, r.error);
        if (npromote < sizeof promote_ms / sizeof promote_ms[0]) {
            promote_ms[npromote] = (double)r.total_ms;
            discover_ms[npromote] = (double)r.discover_ms;
            prepare_ms[npromote] = (double)r.prepare_ms;
            switch_ms[npromote] = (double)r.switch_ms;
            npromote++;
        }
        usleep(50000);
        atomic_store(&l->swapping, true);
        s = ms_deploy_rollback(l->client, "swapver", "1.0.0", art_a, &po, &r);
        atomic_store(&l->swapping, false);
        if (s != MS_OK)
            bench_die("rollback %d: %s", k, r.error);
        usleep(50000);
    }

    atomic_store(&l->stop, true);
    pthread_mutex_lock(&l->mu);
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < REQ_THREADS; i++)
        pthread_join(l->threads[i], NULL);
    n = atomic_load(&l->next);
    if (n > MAX_IDS)
        n = MAX_IDS;
    for (int waited = 0; waited < 10000; waited += 10) {
        int missing = 0;
        pthread_mutex_lock(&l->mu);
        for (int i = 0; i < n; i++)
            missing += l->replies[i] == 0;
        pthread_mutex_unlock(&l->mu);
        if (missing == 0)
            break;
        usleep(10000);
    }
    usleep(100000); /* a second answer would arrive now */
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < n; i++) {
        lost += l->replies[i] == 0;
        twice += l->replies[i] > 1;
    }
    {
        bench_result res;
        double p99_steady = pctl(l->steady, l->nsteady, 99.0);
        double p99_during = pctl(l->during, l->nduring, 99.0);
        bench_result_init(&res, "deploy_swap_p99", "us", false, 0.2);
        res.value = p99_during;
        res.baseline = p99_steady;
        res.note = "p99 of requests sent during promotions (value) vs steady state (baseline), "
                   "3 hosts over NATS";
        res.failed = lost > 0 || twice > 0 || l->strange > 0;
        bench_result_add(&res, "requests", (double)n);
        bench_result_add(&res, "during_requests", (double)l->nduring);
        bench_result_add(&res, "lost", (double)lost);
        bench_result_add(&res, "duplicates", (double)twice);
        bench_result_add(&res, "strange", (double)l->strange);
        bench_result_add(&res, "swaps", (double)(2 * cycles));
        bench_result_add(&res, "p50_us", pctl(l->during, l->nduring, 50.0));
        bench_result_add(&res, "baseline_p50_us", pctl(l->steady, l->nsteady, 50.0));
        bench_result_add(&res, "p999_us", pctl(l->during, l->nduring, 99.9));
        bench_result_add(&res, "baseline_p999_us", pctl(l->steady, l->nsteady, 99.9));
        bench_result_emit(&res);
    }
    pthread_mutex_unlock(&l->mu);
    {
        bench_result res;
        double maxv = 0;
        for (size_t i = 0; i < npromote; i++)
            if (promote_ms[i] > maxv)
                maxv = promote_ms[i];
        bench_result_init(&res, "deploy_promote_ms", "ms", false, 0);
        res.value = bench_median(promote_ms, npromote);
        res.baseline = (double)po.discover_ms;
        res.baseline_kind = "discovery window";
        res.note = "from the ms_deploy_promote call until every host serves the new version";
        bench_result_add(&res, "max", maxv);
        bench_result_add(&res, "discover_ms", bench_median(discover_ms, npromote));
        bench_result_add(&res, "prepare_ms", bench_median(prepare_ms, npromote));
        bench_result_add(&res, "switch_ms", bench_median(switch_ms, npromote));
        bench_result_add(&res, "hosts", NHOSTS);
        bench_result_emit(&res);
    }

    for (int i = 0; i < REQ_THREADS; i++)
        (void)ms_subscription_unsubscribe(l->subs[i]);
    ms_bus_destroy(l->client);
    for (int i = 0; i < NHOSTS; i++)
        ms_runtime_destroy(rt[i]);
    bench_server_stop(&srv);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        bench_log("could not remove %s", dir);
    free(l->sent_ns);
    free(l->in_swap);
    free(l->replies);
    free(l->steady);
    free(l->during);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
    if (lost > 0 || twice > 0) {
        bench_log("FAILED: %d requests lost, %d answered twice", lost, twice);
        return 1;
    }
    return 0;
}
