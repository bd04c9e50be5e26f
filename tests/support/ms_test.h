/*
 * ms_test.h - what every mainstack test program shares.
 *
 * MS_TEST_MAIN(tests) runs a cmocka group; given one argument it runs only
 * the case of that name, which is how CTest runs each case as its own entry.
 */
#ifndef MS_TEST_H
#define MS_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mainstack/mainstack.h"

#define MS_TEST_MAIN(tests, setup, teardown)                                                    \
    int main(int argc, char **argv)                                                              \
    {                                                                                            \
        if (argc > 1)                                                                            \
            cmocka_set_test_filter(argv[1]);                                                     \
        return cmocka_run_group_tests(tests, setup, teardown);                                   \
    }

/* Assert a status, printing ms_last_error() when it differs. */
#define ms_assert_status(expr, expected)                                                         \
    do {                                                                                         \
        ms_status ms_t_s_ = (expr);                                                              \
        if (ms_t_s_ != (expected))                                                               \
            fail_msg("%s: got %s, want %s (%s)", #expr, ms_status_name(ms_t_s_),                 \
                     ms_status_name(expected), ms_last_error());                                 \
    } while (0)
#define ms_assert_ok(expr) ms_assert_status((expr), MS_OK)

/* Monotonic milliseconds, for deadlines inside tests (never for timing). */
int64_t ms_test_now_ms(void);
/* Sleep for ms milliseconds. */
void ms_test_sleep_ms(int ms);
/* Poll cond() every millisecond until true or timeout_ms passes. */
int ms_test_wait_until(int (*cond)(void *), void *arg, int timeout_ms);

#endif
