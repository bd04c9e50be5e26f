/*
 * test_status.c - status names and the thread-local error detail.
 */
#include <pthread.h>
#include <string.h>

#include "core/error.h"
#include "ms_test.h"

static void every_status_has_a_distinct_name(void **state)
{
    for (int a = 0; a < MS_STATUS_COUNT_; a++) {
        const char *na = ms_status_name((ms_status)a);
        assert_non_null(na);
        assert_string_not_equal(na, "unknown_status");
        for (int b = a + 1; b < MS_STATUS_COUNT_; b++)
            assert_string_not_equal(na, ms_status_name((ms_status)b));
    }
    assert_string_equal(ms_status_name(MS_OK), "ok");
    assert_string_equal(ms_status_name(MS_ERR_TIMEOUT), "timeout");
    assert_string_equal(ms_status_name(MS_ERR_NO_MEMORY), "no_memory");
}

static void out_of_range_status_is_unknown(void **state)
{
    assert_string_equal(ms_status_name(MS_STATUS_COUNT_), "unknown_status");
    assert_string_equal(ms_status_name((ms_status)-1), "unknown_status");
    assert_string_equal(ms_status_name((ms_status)1000), "unknown_status");
}

static void err_records_detail_and_returns_status(void **state)
{
    ms_clear_error();
    assert_string_equal(ms_last_error(), "");
    assert_int_equal(ms__err(MS_ERR_PARSE, "file %s: line %d", "x.json", 3), MS_ERR_PARSE);
    assert_string_equal(ms_last_error(), "file x.json: line 3");
    ms_clear_error();
    assert_string_equal(ms_last_error(), "");
}

static void err_wrap_prefixes_inner_detail(void **state)
{
    ms__err(MS_ERR_INVALID_SUBJECT, "empty token at byte 2");
    assert_int_equal(ms__err_wrap(MS_ERR_INVALID_SUBJECT, "publish on '%s'", "a..b"),
                     MS_ERR_INVALID_SUBJECT);
    assert_string_equal(ms_last_error(), "publish on 'a..b': empty token at byte 2");
    ms_clear_error();
    ms__err_wrap(MS_ERR_IO, "outer only");
    assert_string_equal(ms_last_error(), "outer only");
}

static void long_detail_is_truncated_not_overflowed(void **state)
{
    char big[4000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ms__err(MS_ERR_INTERNAL, "%s", big);
    assert_true(strlen(ms_last_error()) < sizeof big - 1);
    assert_true(strlen(ms_last_error()) > 100);
}

static void *other_thread(void *arg)
{
    (void)arg;
    ms__err(MS_ERR_TIMEOUT, "from the other thread");
    return strcmp(ms_last_error(), "from the other thread") == 0 ? arg : NULL;
}

static void detail_is_per_thread(void **state)
{
    pthread_t t;
    void *res = NULL;
    int marker = 1;

    ms__err(MS_ERR_PARSE, "mine");
    assert_int_equal(pthread_create(&t, NULL, other_thread, &marker), 0);
    assert_int_equal(pthread_join(t, &res), 0);
    assert_ptr_equal(res, &marker);
    assert_string_equal(ms_last_error(), "mine");
}

static void version_matches_header(void **state)
{
    assert_string_equal(ms_version(), MS_VERSION_STRING);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(every_status_has_a_distinct_name),
    cmocka_unit_test(out_of_range_status_is_unknown),
    cmocka_unit_test(err_records_detail_and_returns_status),
    cmocka_unit_test(err_wrap_prefixes_inner_detail),
    cmocka_unit_test(long_detail_is_truncated_not_overflowed),
    cmocka_unit_test(detail_is_per_thread),
    cmocka_unit_test(version_matches_header),
};

MS_TEST_MAIN(tests, NULL, NULL)
