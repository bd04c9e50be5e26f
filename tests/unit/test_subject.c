/*
 * test_subject.c - subject validation and wildcard matching against the
 * NATS rules (docs.nats.io "Subject-Based Messaging"): tokens separated by
 * '.', no empty tokens, no whitespace, '*' one token, '>' one or more and
 * last, wildcards only as whole tokens.
 */
#include <string.h>

#include "ms_test.h"

static void assert_detail_has(const char *needle)
{
    if (strstr(ms_last_error(), needle) == NULL)
        fail_msg("detail '%s' lacks '%s'", ms_last_error(), needle);
}

static void valid_subjects(void **state)
{
    static const char *const ok[] = {
        "foo",  "foo.bar", "foo.bar.baz", "FOO.Bar", "$SYS.ACCOUNT.x", "_INBOX.abc.1", "a-b_c.d~e",
        "foo*", "*foo",    "foo>",        "a>b.c",   "f*o.b>r",        "ünï.cödé",     "1.2.3",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ms_assert_ok(ms_subject_validate(ok[i]));
        ms_assert_ok(ms_subject_validate_pattern(ok[i]));
    }
}

static void invalid_subjects_name_reason_and_offset(void **state)
{
    static const struct {
        const char *s;
        const char *detail;
    } bad[] = {
        {"", "is empty"},
        {" a", "whitespace (0x20) at byte 0"},
        {"a b", "whitespace (0x20) at byte 1"},
        {"a..b", "empty token at byte 2"},
        {".a", "empty token at byte 0"},
        {"a.", "empty token at byte 2"},
        {".", "empty token at byte 0"},
        {"a\tb", "whitespace (0x09) at byte 1"},
        {"a.b\r", "whitespace (0x0d) at byte 3"},
        {"a\n", "whitespace (0x0a) at byte 1"},
        {"a.>.b", "'>' at byte 2 must be the last token"},
        {">.a", "'>' at byte 0 must be the last token"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_assert_status(ms_subject_validate_pattern(bad[i].s), MS_ERR_INVALID_SUBJECT);
        assert_detail_has(bad[i].detail);
    }
    ms_assert_status(ms_subject_validate("a.b c"), MS_ERR_INVALID_SUBJECT);
    assert_detail_has("byte 3");
}

static void wildcards_refused_when_publishing(void **state)
{
    ms_assert_status(ms_subject_validate("foo.*"), MS_ERR_INVALID_SUBJECT);
    assert_detail_has("wildcard '*' at byte 4");
    ms_assert_status(ms_subject_validate("foo.>"), MS_ERR_INVALID_SUBJECT);
    assert_detail_has("wildcard '>' at byte 4");
    ms_assert_status(ms_subject_validate("*"), MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_subject_validate(">"), MS_ERR_INVALID_SUBJECT);
    ms_assert_status(ms_subject_validate("a.*.b"), MS_ERR_INVALID_SUBJECT);
    /* ... and accepted in patterns */
    ms_assert_ok(ms_subject_validate_pattern("foo.*"));
    ms_assert_ok(ms_subject_validate_pattern("foo.>"));
    ms_assert_ok(ms_subject_validate_pattern("*"));
    ms_assert_ok(ms_subject_validate_pattern(">"));
    ms_assert_ok(ms_subject_validate_pattern("*.*.>"));
}

static void null_is_invalid_arg(void **state)
{
    ms_assert_status(ms_subject_validate(NULL), MS_ERR_INVALID_ARG);
    assert_detail_has("NULL");
    ms_assert_status(ms_subject_validate_pattern(NULL), MS_ERR_INVALID_ARG);
    assert_false(ms_subject_matches(NULL, "a"));
    assert_false(ms_subject_matches("a", NULL));
    assert_false(ms_subject_has_wildcard(NULL));
}

static void length_limit(void **state)
{
    char s[MS_SUBJECT_MAX + 2];

    memset(s, 'a', sizeof s);
    for (size_t i = 10; i < MS_SUBJECT_MAX; i += 11)
        s[i] = '.';
    s[MS_SUBJECT_MAX] = '\0';
    ms_assert_ok(ms_subject_validate(s));
    s[MS_SUBJECT_MAX] = 'a';
    s[MS_SUBJECT_MAX + 1] = '\0';
    ms_assert_status(ms_subject_validate(s), MS_ERR_INVALID_SUBJECT);
    assert_detail_has("longer than 1024 bytes");
}

static void matching_follows_nats(void **state)
{
    static const struct {
        const char *pattern;
        const char *subject;
        bool match;
    } cases[] = {
        {"foo", "foo", true},
        {"foo", "bar", false},
        {"foo", "foo.bar", false},
        {"foo.bar", "foo", false},
        {"foo.*.bar", "foo.x.bar", true},
        {"foo.*.bar", "foo.x.y.bar", false},
        {"foo.*.bar", "foo.x.baz", false},
        {"foo.*", "foo.bar", true},
        {"foo.*", "foo.bar.baz", false},
        {"foo.*", "foo", false},
        {"foo.>", "foo", false},
        {"foo.>", "foo.bar", true},
        {"foo.>", "foo.bar.baz.qux", true},
        {"foo.>", "bar.foo", false},
        {">", "a", true},
        {">", "a.b.c", true},
        {"*", "a", true},
        {"*", "a.b", false},
        {"*.*", "a.b", true},
        {"*.>", "a", false},
        {"*.>", "a.b", true},
        {"foo*", "foo*", true},
        {"foo*", "foobar", false},
        {"foo*", "foo", false},
        {"foo.b>", "foo.b>", true},
        {"foo.b>", "foo.bar", false},
        {"Foo", "foo", false},
        {"foo.bar", "foo.barx", false},
        {"foo.barx", "foo.bar", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (ms_subject_matches(cases[i].pattern, cases[i].subject) != cases[i].match)
            fail_msg("'%s' vs '%s': want %s", cases[i].pattern, cases[i].subject,
                     cases[i].match ? "match" : "no match");
    }
    assert_false(ms_subject_matches("", "a"));
    assert_false(ms_subject_matches("a", ""));
}

static void has_wildcard(void **state)
{
    assert_true(ms_subject_has_wildcard("*"));
    assert_true(ms_subject_has_wildcard(">"));
    assert_true(ms_subject_has_wildcard("a.*.b"));
    assert_true(ms_subject_has_wildcard("a.b.>"));
    assert_false(ms_subject_has_wildcard("a.b"));
    assert_false(ms_subject_has_wildcard("a*.b>"));
    assert_false(ms_subject_has_wildcard("**"));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(valid_subjects),
    cmocka_unit_test(invalid_subjects_name_reason_and_offset),
    cmocka_unit_test(wildcards_refused_when_publishing),
    cmocka_unit_test(null_is_invalid_arg),
    cmocka_unit_test(length_limit),
    cmocka_unit_test(matching_follows_nats),
    cmocka_unit_test(has_wildcard),
};

MS_TEST_MAIN(tests, NULL, NULL)
