/*
 * agent-simulator COMPONENT AUTONOMOUS [WORK_MS] - one agent of a simulated
 * component, at work on a real NATS server ($NATS_URL, default
 * nats://127.0.0.1:4222).
 *
 * The component (written to a temporary project root: sim_component.c)
 * reacts to every interface change and dependency update; AUTONOMOUS true
 * lets its agent act (its change action is `sleep WORK_MS`, 2000 by
 * default), false makes it escalate instead. The agent is a real ms_agent:
 * a durable JetStream consumer, decisions recorded and published, the
 * action run from argv. Each step is printed with the time since the event
 * was broadcast. Ctrl-C stops it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mainstack/mainstack.h>

#include "sim_component.h"

static const char *name;
static int work_ms = 2000;

static double now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_event(const ms_agent_event *ev, void *closure)
{
    (void)closure;
    if (ev->kind == MS_AGENT_DECIDED && ev->fresh)
        printf("[%s] %.3f  %s on %s (%s): %s\n", name, now_s(),
               ms_verdict_str(ev->decision->verdict), ev->event_subject, ev->decision->rule,
               ev->decision->verdict == MS_VERDICT_ACT ? "working..." : ev->decision->reason);
    else if (ev->kind == MS_AGENT_RUN_DONE)
        printf("[%s] %.3f  done: run %lld %s after %d ms of work\n", name, now_s(),
               (long long)ev->run_id, ev->run_state, work_ms);
    fflush(stdout);
}

static int usage(void)
{
    fprintf(stderr, "usage: agent-simulator COMPONENT AUTONOMOUS(true|false) [WORK_MS]\n"
                    "       NATS_URL selects the server (default nats://127.0.0.1:4222)\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *url = getenv("NATS_URL");
    char root[] = "/tmp/agent-simulator.XXXXXX", dir[4200], regpath[4200], cmd[4300];
    bool autonomous;
    ms_bus *bus = NULL;
    ms_registry *reg = NULL;
    ms_agent *agent = NULL;
    ms_agent_options o;
    sigset_t set;
    int sig = 0, rc = 1;

    if (argc < 3 || argc > 4)
        return usage();
    name = argv[1];
    if (strcmp(argv[2], "true") != 0 && strcmp(argv[2], "false") != 0)
        return usage();
    autonomous = strcmp(argv[2], "true") == 0;
    if (argc == 4 && (work_ms = atoi(argv[3])) <= 0)
        return usage();
    if (url == NULL || url[0] == '\0')
        url = "nats://127.0.0.1:4222";
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (mkdtemp(root) == NULL ||
        sim_component_write(root, name, NULL, autonomous, work_ms, NULL, dir, sizeof dir) != 0) {
        perror("agent-simulator: writing the component");
        return 1;
    }
    snprintf(regpath, sizeof regpath, "%s/.mainstack/registry.db", root);
    if (ms_bus_connect_url(url, &bus) != MS_OK || ms_registry_open(regpath, &reg) != MS_OK)
        goto fail;
    ms_agent_options_init(&o);
    o.bus = bus;
    o.registry = reg;
    o.component_dir = dir;
    o.root = root;
    o.on_event = on_event;
    if (ms_agent_create(&o, &agent) != MS_OK || ms_agent_start(agent) != MS_OK)
        goto fail;
    printf("[%s] agent up on %s (autonomous: %s, work: %d ms); waiting for broadcasts\n", name, url,
           autonomous ? "yes" : "no", work_ms);
    fflush(stdout);
    sigwait(&set, &sig);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "agent-simulator: %s\n", ms_last_error());
done:
    ms_agent_destroy(agent);
    ms_registry_close(reg);
    ms_bus_destroy(bus);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0)
        fprintf(stderr, "agent-simulator: could not remove %s\n", root);
    return rc;
}
