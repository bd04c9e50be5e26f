/*
 * test_subject_index.c - the subscription trie: insert/remove/match, checked
 * against a brute-force ms_subject_matches scan over thousands of random
 * patterns and subjects, plus concurrent matching.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ms_test.h"

static bool collect(void *value, void *closure)
{
    int *seen = closure;
    seen[(int)(intptr_t)value]++;
    return true;
}

static bool count_only(void *value, void *closure)
{
    (*(size_t *)closure)++;
    return true;
}

static bool stop_at_first(void *value, void *closure)
{
    (*(size_t *)closure)++;
    return false;
}

static void *V(int i)
{
    return (void *)(intptr_t)i;
}

static void create_destroy_and_null_args(void **state)
{
    ms_subject_index *idx = NULL;

    ms_assert_status(ms_subject_index_create(NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_subject_index_create(&idx));
    assert_non_null(idx);
    assert_int_equal(ms_subject_index_count(idx), 0);
    assert_int_equal(ms_subject_index_count(NULL), 0);
    ms_assert_status(ms_subject_index_insert(NULL, "a", V(1)), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_subject_index_remove(NULL, "a", V(1)), MS_ERR_INVALID_ARG);
    assert_int_equal(ms_subject_index_match(NULL, "a", count_only, NULL), 0);
    assert_int_equal(ms_subject_index_match(idx, NULL, count_only, NULL), 0);
    ms_subject_index_destroy(idx);
    ms_subject_index_destroy(NULL);
}

static void invalid_patterns_refused(void **state)
{
    ms_subject_index *idx = NULL;
    static const char *const bad[] = {"", "a..b", ".a", "a.", "a.>.b", " a", "a\tb"};

    ms_assert_ok(ms_subject_index_create(&idx));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_assert_status(ms_subject_index_insert(idx, bad[i], V(1)), MS_ERR_INVALID_SUBJECT);
        assert_true(strlen(ms_last_error()) > 0);
    }
    ms_assert_status(ms_subject_index_insert(idx, NULL, V(1)), MS_ERR_INVALID_ARG);
    assert_int_equal(ms_subject_index_count(idx), 0);
    ms_subject_index_destroy(idx);
}

static void basic_matching(void **state)
{
    ms_subject_index *idx = NULL;
    int seen[16] = {0};

    ms_assert_ok(ms_subject_index_create(&idx));
    ms_assert_ok(ms_subject_index_insert(idx, "foo.bar", V(1)));
    ms_assert_ok(ms_subject_index_insert(idx, "foo.*", V(2)));
    ms_assert_ok(ms_subject_index_insert(idx, "foo.>", V(3)));
    ms_assert_ok(ms_subject_index_insert(idx, ">", V(4)));
    ms_assert_ok(ms_subject_index_insert(idx, "*.bar", V(5)));
    ms_assert_ok(ms_subject_index_insert(idx, "foo.*.baz", V(6)));
    ms_assert_ok(ms_subject_index_insert(idx, "foo", V(7)));
    ms_assert_ok(ms_subject_index_insert(idx, "foo*", V(8)));
    assert_int_equal(ms_subject_index_count(idx), 8);

    assert_int_equal(ms_subject_index_match(idx, "foo.bar", collect, seen), 5);
    assert_int_equal(seen[1] + seen[2] + seen[3] + seen[4] + seen[5], 5);
    memset(seen, 0, sizeof seen);
    assert_int_equal(ms_subject_index_match(idx, "foo", collect, seen), 2);
    assert_int_equal(seen[7] + seen[4], 2); /* "foo.>" does not match "foo" */
    memset(seen, 0, sizeof seen);
    assert_int_equal(ms_subject_index_match(idx, "foo.x.baz", collect, seen), 3);
    assert_int_equal(seen[3] + seen[4] + seen[6], 3);
    memset(seen, 0, sizeof seen);
    assert_int_equal(ms_subject_index_match(idx, "foo*", collect, seen), 2);
    assert_int_equal(seen[8] + seen[4], 2);
    assert_int_equal(ms_subject_index_match(idx, "zzz.y.z", NULL, NULL), 1); /* only ">" */
    ms_subject_index_destroy(idx);
}

static void many_values_per_pattern_and_duplicates(void **state)
{
    ms_subject_index *idx = NULL;
    size_t n = 0;

    ms_assert_ok(ms_subject_index_create(&idx));
    ms_assert_ok(ms_subject_index_insert(idx, "a.b", V(1)));
    ms_assert_ok(ms_subject_index_insert(idx, "a.b", V(2)));
    ms_assert_ok(ms_subject_index_insert(idx, "a.b", V(1))); /* same entry twice */
    ms_assert_ok(ms_subject_index_insert(idx, "a.*", V(1)));
    assert_int_equal(ms_subject_index_count(idx), 4);
    assert_int_equal(ms_subject_index_match(idx, "a.b", count_only, &n), 4);
    assert_int_equal(n, 4);

    ms_assert_ok(ms_subject_index_remove(idx, "a.b", V(1)));
    assert_int_equal(ms_subject_index_match(idx, "a.b", NULL, NULL), 3);
    ms_assert_ok(ms_subject_index_remove(idx, "a.b", V(1)));
    ms_assert_status(ms_subject_index_remove(idx, "a.b", V(1)), MS_ERR_NOT_FOUND);
    assert_non_null(strstr(ms_last_error(), "a.b"));
    assert_int_equal(ms_subject_index_count(idx), 2);
    ms_subject_index_destroy(idx);
}

static void remove_unknown_and_invalid(void **state)
{
    ms_subject_index *idx = NULL;

    ms_assert_ok(ms_subject_index_create(&idx));
    ms_assert_status(ms_subject_index_remove(idx, "x.y", V(1)), MS_ERR_NOT_FOUND);
    ms_assert_ok(ms_subject_index_insert(idx, "x.y", V(1)));
    ms_assert_status(ms_subject_index_remove(idx, "x.y", V(2)), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_subject_index_remove(idx, "x", V(1)), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_subject_index_remove(idx, "x.y.z", V(1)), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_subject_index_remove(idx, "x.>", V(1)), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_subject_index_remove(idx, "x..y", V(1)), MS_ERR_INVALID_SUBJECT);
    ms_assert_ok(ms_subject_index_remove(idx, "x.y", V(1)));
    assert_int_equal(ms_subject_index_count(idx), 0);
    assert_int_equal(ms_subject_index_match(idx, "x.y", NULL, NULL), 0);
    ms_subject_index_destroy(idx);
}

static void visitor_can_stop_early(void **state)
{
    ms_subject_index *idx = NULL;
    size_t n = 0;

    ms_assert_ok(ms_subject_index_create(&idx));
    for (int i = 0; i < 10; i++)
        ms_assert_ok(ms_subject_index_insert(idx, i % 2 ? "a.*" : "a.b", V(i)));
    assert_int_equal(ms_subject_index_match(idx, "a.b", stop_at_first, &n), 1);
    assert_int_equal(n, 1);
    ms_subject_index_destroy(idx);
}

/* --- randomised comparison with ms_subject_matches ------------------------ */

#define NPAT 3000
#define NSUBJ 500

static const char *const words[] = {"a", "b", "c", "orders", "users", "x1", "é", "a*"};

static unsigned next_rand(unsigned *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return (*seed >> 16) & 0x7fff;
}

static void random_subject(char *buf, size_t cap, unsigned *seed, bool wild)
{
    int ntok = 1 + (int)(next_rand(seed) % 5);
    size_t len = 0;

    buf[0] = '\0';
    for (int t = 0; t < ntok; t++) {
        unsigned r = next_rand(seed) % 12;
        const char *w = words[next_rand(seed) % (sizeof words / sizeof words[0])];
        if (wild && r == 0)
            w = "*";
        else if (wild && r == 1 && t == ntok - 1)
            w = ">";
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", t ? "." : "", w);
    }
}

typedef struct corpus {
    char pat[NPAT][48];
    bool live[NPAT];
} corpus;

static void compare_with_brute_force(ms_subject_index *idx, const corpus *c, unsigned *seed)
{
    static int seen[NPAT];

    for (int t = 0; t < NSUBJ; t++) {
        char subj[64];
        size_t got, want = 0;

        random_subject(subj, sizeof subj, seed, false);
        memset(seen, 0, sizeof seen);
        got = ms_subject_index_match(idx, subj, collect, seen);
        for (int i = 0; i < NPAT; i++) {
            int expect = c->live[i] && ms_subject_matches(c->pat[i], subj);
            want += (size_t)expect;
            if (seen[i] != expect)
                fail_msg("subject '%s', pattern %d '%s': visited %d times, want %d", subj, i,
                         c->pat[i], seen[i], expect);
        }
        assert_int_equal(got, want);
    }
}

static void thousands_of_patterns_match_like_brute_force(void **state)
{
    static corpus c;
    ms_subject_index *idx = NULL;
    unsigned seed = 12345;

    ms_assert_ok(ms_subject_index_create(&idx));
    for (int i = 0; i < NPAT; i++) {
        random_subject(c.pat[i], sizeof c.pat[i], &seed, true);
        c.live[i] = true;
        ms_assert_ok(ms_subject_index_insert(idx, c.pat[i], V(i)));
    }
    assert_int_equal(ms_subject_index_count(idx), NPAT);
    compare_with_brute_force(idx, &c, &seed);

    /* Remove two thirds in an interleaved order, checking as we go. */
    for (int round = 0; round < 2; round++) {
        for (int i = round; i < NPAT; i += 3) {
            ms_assert_ok(ms_subject_index_remove(idx, c.pat[i], V(i)));
            c.live[i] = false;
        }
        compare_with_brute_force(idx, &c, &seed);
    }
    assert_int_equal(ms_subject_index_count(idx), NPAT / 3);
    for (int i = 2; i < NPAT; i += 3)
        ms_assert_ok(ms_subject_index_remove(idx, c.pat[i], V(i)));
    assert_int_equal(ms_subject_index_count(idx), 0);
    assert_int_equal(ms_subject_index_match(idx, "a.b", NULL, NULL), 0);

    /* An emptied (pruned) index is fully usable again. */
    ms_assert_ok(ms_subject_index_insert(idx, "a.b", V(1)));
    assert_int_equal(ms_subject_index_match(idx, "a.b", NULL, NULL), 1);
    ms_subject_index_destroy(idx);
}

static void wide_node_with_many_literal_children(void **state)
{
    ms_subject_index *idx = NULL;
    char p[32];

    ms_assert_ok(ms_subject_index_create(&idx));
    for (int i = 0; i < 5000; i++) {
        snprintf(p, sizeof p, "svc.%d.op", i);
        ms_assert_ok(ms_subject_index_insert(idx, p, V(i)));
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(p, sizeof p, "svc.%d.op", i);
        assert_int_equal(ms_subject_index_match(idx, p, NULL, NULL), 1);
    }
    /* Remove every other one; the rest stay reachable (deletion keeps the
     * probe chains intact). */
    for (int i = 0; i < 5000; i += 2) {
        snprintf(p, sizeof p, "svc.%d.op", i);
        ms_assert_ok(ms_subject_index_remove(idx, p, V(i)));
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(p, sizeof p, "svc.%d.op", i);
        assert_int_equal(ms_subject_index_match(idx, p, NULL, NULL), (size_t)(i % 2));
    }
    assert_int_equal(ms_subject_index_count(idx), 2500);
    ms_subject_index_destroy(idx);
}

/* --- concurrent readers ------------------------------------------------------ */

typedef struct reader_arg {
    ms_subject_index *idx;
    int errors;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    char s[32];

    for (int round = 0; round < 2000; round++) {
        int i = round % 200;
        snprintf(s, sizeof s, "t.%d.x", i);
        /* "t.<i>.x", "t.*.x" and "t.>" */
        if (ms_subject_index_match(a->idx, s, NULL, NULL) != 3)
            a->errors++;
    }
    return NULL;
}

static void concurrent_matches_are_safe(void **state)
{
    ms_subject_index *idx = NULL;
    pthread_t th[4];
    reader_arg args[4];
    char p[32];

    ms_assert_ok(ms_subject_index_create(&idx));
    for (int i = 0; i < 200; i++) {
        snprintf(p, sizeof p, "t.%d.x", i);
        ms_assert_ok(ms_subject_index_insert(idx, p, V(i)));
    }
    ms_assert_ok(ms_subject_index_insert(idx, "t.*.x", V(1000)));
    ms_assert_ok(ms_subject_index_insert(idx, "t.>", V(1001)));
    for (int i = 0; i < 4; i++) {
        args[i].idx = idx;
        args[i].errors = 0;
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(args[i].errors, 0);
    }
    ms_subject_index_destroy(idx);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(create_destroy_and_null_args),
    cmocka_unit_test(invalid_patterns_refused),
    cmocka_unit_test(basic_matching),
    cmocka_unit_test(many_values_per_pattern_and_duplicates),
    cmocka_unit_test(remove_unknown_and_invalid),
    cmocka_unit_test(visitor_can_stop_early),
    cmocka_unit_test(thousands_of_patterns_match_like_brute_force),
    cmocka_unit_test(wide_node_with_many_literal_children),
    cmocka_unit_test(concurrent_matches_are_safe),
};

MS_TEST_MAIN(tests, NULL, NULL)
