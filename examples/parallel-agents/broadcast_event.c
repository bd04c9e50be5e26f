/*
 * broadcast-event - publish one control event to every agent, stored in
 * the durable stream first ($NATS_URL, default nats://127.0.0.1:4222):
 *
 *   broadcast-event interface-change NAME [--breaking] [FROM TO]
 *   broadcast-event dependency-update NAME FROM TO
 *
 * The event goes to mainstack.interface.changed.<NAME> or
 * mainstack.dependency.updated.<NAME> through ms_stream_publish, which
 * returns once JetStream stored it: an agent that is down gets it when it
 * comes back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mainstack/mainstack.h>

static int usage(void)
{
    fprintf(stderr, "usage: broadcast-event interface-change NAME [--breaking] [FROM TO]\n"
                    "       broadcast-event dependency-update NAME FROM TO\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *url = getenv("NATS_URL");
    ms_stream_config sc;
    ms_message *m = NULL;
    ms_bus *bus = NULL;
    ms_status s;
    struct timespec t;

    if (url == NULL || url[0] == '\0')
        url = "nats://127.0.0.1:4222";
    if (argc >= 3 && strcmp(argv[1], "interface-change") == 0) {
        bool breaking = argc > 3 && strcmp(argv[3], "--breaking") == 0;
        int v = breaking ? 4 : 3;
        const char *from = argc > v + 1 ? argv[v] : "1.0.0";
        const char *to = argc > v + 1 ? argv[v + 1] : (breaking ? "2.0.0" : "1.1.0");

        if (argc != v && argc != v + 2)
            return usage();
        s = ms_msg_interface_changed(NULL, "broadcast-event", argv[2], from, to, breaking,
                                     breaking ? "a breaking change" : "a compatible change", &m);
    } else if (argc == 5 && strcmp(argv[1], "dependency-update") == 0) {
        s = ms_msg_dependency_update(NULL, "broadcast-event", argv[2], argv[3], argv[4], &m);
    } else {
        return usage();
    }
    if (s != MS_OK || (s = ms_bus_connect_url(url, &bus)) != MS_OK)
        goto fail;
    ms_stream_config_init(&sc);
    if ((s = ms_stream_ensure(bus, &sc)) != MS_OK || (s = ms_stream_publish(bus, m, 5000, NULL)))
        goto fail;
    clock_gettime(CLOCK_REALTIME, &t);
    printf("broadcast %s (Ms-Id %s) at %.3f, stored in %s\n", ms_message_subject(m),
           ms_message_id(m), (double)t.tv_sec + (double)t.tv_nsec / 1e9, sc.name);
    ms_message_unref(m);
    (void)ms_bus_drain(bus, 2000);
    ms_bus_destroy(bus);
    return 0;
fail:
    fprintf(stderr, "broadcast-event: %s\n", ms_last_error());
    ms_message_unref(m);
    ms_bus_destroy(bus);
    return 1;
}
