/*
 * hello.c - a program outside the mainstack tree, built against an installed
 * mainstack (pkg-config or find_package) to prove the install is usable.
 * It sends one message through an in-process bus and checks it arrives.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <mainstack/mainstack.h>

static atomic_int got;

static void on_msg(ms_bus *bus, ms_subscription *sub, const ms_message *m, void *closure)
{
    if (ms_message_len(m) == 5 && memcmp(ms_message_data(m), "hello", 5) == 0)
        atomic_store(&got, 1);
}

int main(void)
{
    ms_bus *bus = NULL;
    if (ms_bus_connect_url("inproc://outside", &bus) != MS_OK) {
        fprintf(stderr, "connect: %s\n", ms_last_error());
        return 1;
    }
    if (ms_bus_subscribe(bus, "greetings.*", NULL, on_msg, NULL, NULL) != MS_OK ||
        ms_bus_publish(bus, "greetings.world", "hello", 5) != MS_OK ||
        ms_bus_flush(bus, 5000) != MS_OK) {
        fprintf(stderr, "bus: %s\n", ms_last_error());
        ms_bus_destroy(bus);
        return 1;
    }
    ms_bus_destroy(bus);
    if (!atomic_load(&got)) {
        fprintf(stderr, "message not delivered\n");
        return 1;
    }
    printf("mainstack %s: message delivered\n", ms_version());
    return 0;
}
