/* ms_test.c - small helpers shared by the test programs. */
#include "ms_test.h"

#include <time.h>

int64_t ms_test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ms_test_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

int ms_test_wait_until(int (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = ms_test_now_ms() + timeout_ms;
    while (!cond(arg)) {
        if (ms_test_now_ms() >= deadline)
            return 0;
        ms_test_sleep_ms(1);
    }
    return 1;
}
