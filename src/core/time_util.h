/*
 * time_util.h - deadlines for timed waits (internal).
 */
#ifndef MS_CORE_TIME_UTIL_H
#define MS_CORE_TIME_UTIL_H

#include <time.h>

/* The absolute time ms milliseconds from now on `clock` (CLOCK_REALTIME for
 * a default pthread_cond_timedwait, CLOCK_MONOTONIC for a condition variable
 * set to it). */
static inline struct timespec ms__deadline_in(clockid_t clock, int ms)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

#endif
