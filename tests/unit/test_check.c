/*
 * test_check.c - ms_check_stack and the AGENTS.md renderer (check.h).
 *
 * Each test builds a small stack of two components in a temporary
 * directory (alpha provides an interface and emits events.alpha.changed;
 * beta consumes it and depends on alpha), breaks one file in one way, and
 * asserts the finding: its code, level, file, and line:column or JSON
 * pointer. The pattern relations of the cross-checks and the renderer's
 * output are tested directly; allocation failures are injected across a
 * whole check.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context/check_internal.h"
#include "core/alloc.h"
#include "ms_test.h"

static char root[64];

static const char ALPHA_CTX[] =
    "{\n"
    "  \"component\": \"alpha\",\n"
    "  \"version\": \"1.2.0\",\n"
    "  \"purpose\": \"Keeps the alpha things.\",\n"
    "  \"design_decisions\": [{\"id\": \"AD-1\", \"decision\": \"Use files.\", "
    "\"rationale\": \"Simple to inspect.\", \"date\": \"2026-01-15\", \"status\": "
    "\"accepted\"}],\n"
    "  \"dependencies\": [{\"name\": \"jansson\", \"kind\": \"library\", \"version\": \">=2.13 "
    "<3.0\", \"purpose\": \"JSON | values\"}],\n"
    "  \"interfaces\": {\"provides\": [{\"name\": \"alpha\", \"version\": \"1.2.0\", "
    "\"contract\": \"interface.json\"}]},\n"
    "  \"known_issues\": [{\"id\": \"AK-1\", \"description\": \"Slow at scale.\", "
    "\"workaround\": \"Shard it.\", \"severity\": \"low\"}],\n"
    "  \"performance\": [\"One fsync per change.\"],\n"
    "  \"security\": [\"No personal data.\"],\n"
    "  \"tests\": {\"command\": \"ctest -R alpha\"}\n"
    "}\n";
static const char ALPHA_CFG[] =
    "{\"component\": \"alpha\", \"monitored_topics\": [\"mainstack.interface.changed.>\"],\n"
    " \"autonomy\": {\"level\": \"patch\"},\n"
    " \"rules\": [{\"name\": \"own\", \"match\": {\"type\": \"interface_changed\", "
    "\"interface\": \"alpha\"}, \"decision\": \"ignore\", \"reason\": \"Ours.\"}],\n"
    " \"responsibilities\": [\"Keep alpha alive.\"], \"constraints\": [\"Never drop data.\"],\n"
    " \"actions\": {\"test\": {\"argv\": [\"ctest\", \"-R\", \"it's here\"], \"timeout_s\": 60, "
    "\"env\": {\"MAINSTACK_LOG\": \"warn\"}}}}\n";
static const char ALPHA_IFACE[] =
    "{\"name\": \"alpha\", \"version\": \"1.2.0\", \"description\": \"Alpha.\",\n"
    " \"emits\": [{\"subject\": \"events.alpha.changed\", \"type\": \"event\", "
    "\"description\": \"After a change.\"}]}\n";
static const char BETA_CTX[] =
    "{\"component\": \"beta\", \"version\": \"0.3.0\", \"purpose\": \"Reacts to alpha.\",\n"
    " \"dependencies\": [{\"name\": \"alpha\", \"kind\": \"component\", \"version\": \"^1\", "
    "\"purpose\": \"the producer\"}],\n"
    " \"interfaces\": {\"consumes\": [{\"name\": \"alpha\", \"version\": \">=1.0.0 <2.0.0\", "
    "\"subjects\": [\"events.alpha.>\"]}]}}\n";
static const char BETA_CFG[] =
    "{\"component\": \"beta\", \"monitored_topics\": [\"mainstack.interface.changed.>\", "
    "\"events.alpha.*\"],\n"
    " \"autonomy\": {\"level\": \"minor\"},\n"
    " \"rules\": [{\"name\": \"alpha-breaking\", \"match\": {\"type\": \"interface_changed\", "
    "\"interface\": \"alpha\", \"breaking\": true}, \"decision\": \"escalate\", \"reason\": "
    "\"A person decides.\"}]}\n";

static void put_file(const char *rel, const char *text)
{
    char path[512];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", root, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void make_dir(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    snprintf(root, sizeof root, "/tmp/ms_check_XXXXXX");
    if (mkdtemp(root) == NULL)
        return -1;
    make_dir("components");
    make_dir("components/alpha");
    make_dir("components/alpha/context");
    make_dir("components/beta");
    make_dir("components/beta/context");
    put_file("components/alpha/context/context.json", ALPHA_CTX);
    put_file("components/alpha/context/agent-config.json", ALPHA_CFG);
    put_file("components/alpha/interface.json", ALPHA_IFACE);
    put_file("components/beta/context/context.json", BETA_CTX);
    put_file("components/beta/context/agent-config.json", BETA_CFG);
    return 0;
}

static int teardown(void **state)
{
    return nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Check the temporary stack (its components/ directory). */
static ms_check_report *check(void)
{
    char dir[256];
    const char *paths[1] = {dir};
    ms_check_options opt = {.schemas_dir = MS_SOURCE_DIR "/schemas"};
    ms_check_report *r = NULL;
    snprintf(dir, sizeof dir, "%s/components", root);
    ms_assert_ok(ms_check_stack(paths, 1, &opt, &r));
    assert_non_null(r);
    return r;
}

static size_t count_code(const ms_check_report *r, const char *code)
{
    size_t n = 0;
    for (size_t i = 0; i < ms_check_report_count(r); i++)
        n += strcmp(ms_check_report_at(r, i)->code, code) == 0;
    return n;
}

/* The one finding of that code (failing the test if there is not exactly one). */
static const ms_check_finding *only(const ms_check_report *r, const char *code)
{
    const ms_check_finding *found = NULL;
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, code) != 0)
            continue;
        if (found != NULL)
            fail_msg("two '%s' findings: '%s' and '%s'", code, found->message, f->message);
        found = f;
    }
    if (found == NULL) {
        for (size_t i = 0; i < ms_check_report_count(r); i++)
            print_message("have %s: %s\n", ms_check_report_at(r, i)->code,
                          ms_check_report_at(r, i)->message);
        fail_msg("no '%s' finding", code);
    }
    return found;
}

static void assert_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m || strcmp(s + n - m, suffix) != 0)
        fail_msg("'%s' does not end with '%s'", s, suffix);
}

static void clean_stack(void **state)
{
    ms_check_report *r = check();
    char line[256];

    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        ms_check_finding_format(ms_check_report_at(r, i), line, sizeof line);
        print_message("unexpected: %s\n", line);
    }
    assert_int_equal(ms_check_report_count(r), 0);
    assert_int_equal(ms_check_report_errors(r), 0);
    assert_int_equal(ms_check_report_warnings(r), 0);
    assert_int_equal(ms_check_report_component_count(r), 2);
    assert_ends_with(ms_check_report_component_at(r, 0), "/components/alpha");
    assert_ends_with(ms_check_report_component_at(r, 1), "/components/beta");
    assert_null(ms_check_report_component_at(r, 2));
    assert_null(ms_check_report_at(r, 0));
    ms_check_report_destroy(r);
}

static void syntax_error_has_line_and_column(void **state)
{
    /* Line 3: the ':' after "version" is missing. */
    put_file("components/alpha/context/context.json",
             "{\n  \"component\": \"alpha\",\n  \"version\" \"1.2.0\",\n  \"purpose\": \"x\"\n}\n");
    ms_check_report *r = check();
    const ms_check_finding *f = only(r, "syntax");
    char line[512];

    assert_int_equal(f->level, MS_CHECK_ERROR);
    assert_ends_with(f->file, "alpha/context/context.json");
    assert_int_equal(f->line, 3);
    assert_int_equal(f->column, 19); /* jansson points at the end of the unexpected token */
    assert_null(f->pointer);
    ms_check_finding_format(f, line, sizeof line);
    assert_non_null(strstr(line, "alpha/context/context.json:3:19: error: "));
    assert_non_null(strstr(f->message, "':' expected"));
    /* Nothing more about alpha's context, which did not load; so beta's
     * references to alpha cannot be resolved either. */
    assert_int_equal(count_code(r, "schema"), 0);
    assert_int_equal(count_code(r, "unknown-interface"), 1);
    assert_int_equal(count_code(r, "unknown-component"), 1);
    ms_check_report_destroy(r);

    /* Not JSON at all, and an empty file. */
    put_file("components/beta/context/agent-config.json", "component: beta\n");
    put_file("components/alpha/context/context.json", "");
    r = check();
    assert_int_equal(count_code(r, "syntax"), 2);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        f = ms_check_report_at(r, i);
        if (strcmp(f->code, "syntax") == 0 && strstr(f->file, "agent-config") != NULL) {
            assert_int_equal(f->line, 1);
            assert_int_equal(f->column, 9); /* jansson: the end of the invalid token */
        }
    }
    ms_check_report_destroy(r);
}

static void schema_error_has_pointer(void **state)
{
    put_file("components/beta/context/context.json",
             "{\"component\": \"beta\", \"version\": \"0.3.0\", \"purpose\": \"x\",\n"
             " \"dependencies\": [{\"name\": \"alpha\", \"kind\": \"lib\", \"version\": \"^1\", "
             "\"purpose\": \"p\"}]}\n");
    ms_check_report *r = check();
    const ms_check_finding *f = only(r, "schema");
    char line[512];

    assert_int_equal(f->level, MS_CHECK_ERROR);
    assert_string_equal(f->pointer, "/dependencies/0/kind");
    assert_int_equal(f->line, 0);
    ms_check_finding_format(f, line, sizeof line);
    assert_non_null(strstr(line, "beta/context/context.json: /dependencies/0/kind: error: "));
    assert_int_equal(ms_check_report_errors(r), 1);
    ms_check_report_destroy(r);

    /* A missing required field points at the object that lacks it; the
     * root is written (root). */
    put_file("components/beta/context/context.json",
             "{\"component\": \"beta\", \"purpose\": \"x\"}\n");
    r = check();
    f = only(r, "schema");
    assert_string_equal(f->pointer, "");
    assert_non_null(strstr(f->message, "version"));
    ms_check_finding_format(f, line, sizeof line);
    assert_non_null(strstr(line, "context.json: (root): error: "));
    ms_check_report_destroy(r);
}

static void unknown_fields_are_errors(void **state)
{
    put_file("components/beta/context/context.json",
             "{\"component\": \"beta\", \"version\": \"0.3.0\", \"purpose\": \"x\", "
             "\"purpsoe\": \"typo\"}\n");
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\"},\n"
             " \"rules\": [{\"name\": \"r\", \"match\": {\"bumps\": \"major\"}, \"decision\": "
             "\"ignore\", \"reason\": \"x\"}]}\n");
    put_file("components/alpha/interface.json",
             "{\"name\": \"alpha\", \"version\": \"1.2.0\", \"description\": \"A.\", "
             "\"emitz\": []}\n");
    ms_check_report *r = check();
    bool ctx = false, cfg = false, iface = false;

    assert_int_equal(count_code(r, "schema"), 3);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, "schema") != 0)
            continue;
        assert_non_null(f->pointer);
        if (strstr(f->file, "beta/context/context.json") != NULL)
            ctx = strcmp(f->pointer, "/purpsoe") == 0;
        else if (strstr(f->file, "agent-config.json") != NULL)
            cfg = strcmp(f->pointer, "/rules/0/match/bumps") == 0;
        else if (strstr(f->file, "alpha/interface.json") != NULL)
            iface = strcmp(f->pointer, "/emitz") == 0;
    }
    assert_true(ctx);
    assert_true(cfg);
    assert_non_null(strstr(ms_check_report_at(r, 0)->message, "unknown field"));
    assert_true(iface);
    ms_check_report_destroy(r);
}

static void loader_checks_beyond_the_schema(void **state)
{
    /* A date that does not exist and a duplicate id pass the schema's
     * patterns; the loader refuses the first it meets. */
    put_file("components/beta/context/context.json",
             "{\"component\": \"beta\", \"version\": \"0.3.0\", \"purpose\": \"x\",\n"
             " \"design_decisions\": [{\"id\": \"B-1\", \"decision\": \"d\", \"rationale\": "
             "\"r\", \"date\": \"2026-02-30\", \"status\": \"accepted\"}]}\n");
    ms_check_report *r = check();
    const ms_check_finding *f = only(r, "invalid");
    assert_int_equal(f->level, MS_CHECK_ERROR);
    assert_string_equal(f->pointer, "/design_decisions/0/date");
    assert_null(strstr(f->message, "context.json")); /* the file is not repeated */
    ms_check_report_destroy(r);
}

static void topics_must_be_valid_subjects(void **state)
{
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\"},\n"
             " \"monitored_topics\": [\"events..user\"]}\n");
    ms_check_report *r = check();
    const ms_check_finding *f = only(r, "schema");
    assert_string_equal(f->pointer, "/monitored_topics/0");
    ms_check_report_destroy(r);

    /* '>' before the last token passes the schema's shape, not the loader. */
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\"},\n"
             " \"monitored_topics\": [\"events.alpha.*\", \"events.>.changed\"]}\n");
    r = check();
    f = only(r, "invalid");
    assert_string_equal(f->pointer, "/monitored_topics/1");
    ms_check_report_destroy(r);

    /* A topic inside another one is redundant: a warning. */
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\"},\n"
             " \"monitored_topics\": [\"events.>\", \"events.alpha.*\"]}\n");
    r = check();
    f = only(r, "topic-redundant");
    assert_int_equal(f->level, MS_CHECK_WARNING);
    assert_string_equal(f->pointer, "/monitored_topics/1");
    assert_int_equal(ms_check_report_errors(r), 0);
    ms_check_report_destroy(r);
}

static void names_must_agree(void **state)
{
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"gamma\", \"autonomy\": {\"level\": \"minor\"}}\n");
    put_file("components/alpha/interface.json",
             "{\"name\": \"alfa\", \"version\": \"1.2.0\", \"description\": \"A.\"}\n");
    ms_check_report *r = check();
    assert_int_equal(count_code(r, "name-mismatch"), 2);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, "name-mismatch") != 0)
            continue;
        assert_int_equal(f->level, MS_CHECK_ERROR);
        if (strstr(f->file, "agent-config.json") != NULL) {
            assert_string_equal(f->pointer, "/component");
            assert_non_null(strstr(f->message, "'gamma'"));
            assert_non_null(strstr(f->message, "'beta'"));
        } else {
            assert_ends_with(f->file, "alpha/interface.json");
            assert_string_equal(f->pointer, "/name");
        }
    }
    ms_check_report_destroy(r);

    /* context.json naming another component than its directory. */
    assert_int_equal(teardown(state), 0); /* a fresh stack */
    assert_int_equal(setup(state), 0);
    put_file("components/beta/context/context.json",
             "{\"component\": \"betta\", \"version\": \"0.3.0\", \"purpose\": \"x\"}\n");
    r = check();
    assert_int_equal(count_code(r, "name-mismatch"), 2); /* the directory, and agent-config */
    ms_check_report_destroy(r);
}

static void versions_must_agree(void **state)
{
    put_file("components/alpha/interface.json",
             "{\"name\": \"alpha\", \"version\": \"1.3.0\", \"description\": \"A.\"}\n");
    ms_check_report *r = check();
    /* interface.json against the context's version, and the provides entry
     * whose contract is that file. */
    assert_int_equal(count_code(r, "version-mismatch"), 2);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, "version-mismatch") != 0)
            continue;
        if (strstr(f->file, "interface.json") != NULL)
            assert_string_equal(f->pointer, "/version");
        else
            assert_string_equal(f->pointer, "/interfaces/provides/0/version");
    }
    ms_check_report_destroy(r);
}

static void referenced_files_must_exist(void **state)
{
    put_file("components/alpha/context/context.json",
             "{\"component\": \"alpha\", \"version\": \"1.2.0\", \"purpose\": \"x\",\n"
             " \"interfaces\": {\"provides\": [{\"name\": \"alpha\", \"version\": \"1.2.0\", "
             "\"contract\": \"interface.json\", \"header\": \"src/interface.h\"}]}}\n");
    ms_check_report *r = check();
    const ms_check_finding *f = only(r, "missing-file");
    assert_string_equal(f->pointer, "/interfaces/provides/0/header");
    ms_check_report_destroy(r);

    char path[256];
    snprintf(path, sizeof path, "%s/components/beta/context/agent-config.json", root);
    assert_int_equal(unlink(path), 0);
    r = check();
    f = only(r, "missing");
    assert_ends_with(f->file, "beta/context/agent-config.json");
    ms_check_report_destroy(r);
}

static void consumed_interface_must_exist(void **state)
{
    put_file("components/beta/context/context.json",
             "{\"component\": \"beta\", \"version\": \"0.3.0\", \"purpose\": \"x\",\n"
             " \"dependencies\": [{\"name\": \"delta\", \"kind\": \"interface\", \"version\": "
             "\"^1\", \"purpose\": \"p\"}],\n"
             " \"interfaces\": {\"consumes\": [{\"name\": \"alpha\", \"version\": \"^1\"}, "
             "{\"name\": \"epsilon\", \"version\": \"*\"}, {\"name\": \"mainstack-component\", "
             "\"version\": \"^1\"}]}}\n");
    ms_check_report *r = check();
    bool dep = false, consumed = false;
    assert_int_equal(count_code(r, "unknown-interface"), 2);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, "unknown-interface") != 0)
            continue;
        assert_int_equal(f->level, MS_CHECK_ERROR);
        dep = dep || strcmp(f->pointer, "/dependencies/0/name") == 0;
        consumed = consumed || strcmp(f->pointer, "/interfaces/consumes/1/name") == 0;
    }
    assert_true(dep);
    assert_true(consumed); /* alpha and the framework's component ABI resolve */
    ms_check_report_destroy(r);

    /* interface.json's consumes[] entries are checked the same way. */
    assert_int_equal(teardown(state), 0); /* a fresh stack */
    assert_int_equal(setup(state), 0);
    put_file("components/beta/interface.json",
             "{\"name\": \"beta\", \"version\": \"0.3.0\", \"description\": \"B.\",\n"
             " \"consumes\": [{\"subject\": \"events.zeta.>\", \"interface\": \"zeta\", "
             "\"description\": \"d\"}, {\"subject\": \"events.alpha.removed\", \"interface\": "
             "\"alpha\", \"version\": \"^1\", \"description\": \"d\"}]}\n");
    r = check();
    const ms_check_finding *f = only(r, "unknown-interface");
    assert_string_equal(f->pointer, "/consumes/0/interface");
    f = only(r, "subject-not-provided"); /* alpha emits events.alpha.changed only */
    assert_int_equal(f->level, MS_CHECK_WARNING);
    assert_string_equal(f->pointer, "/consumes/1/subject");
    ms_check_report_destroy(r);
}

static void component_dependency_must_exist(void **state)
{
    put_file("components/beta/context/context.json",
             "{\"component\": \"beta\", \"version\": \"0.3.0\", \"purpose\": \"x\",\n"
             " \"dependencies\": [{\"name\": \"alpha\", \"kind\": \"component\", \"version\": "
             "\"^1\", \"purpose\": \"p\"}, {\"name\": \"omega\", \"kind\": \"component\", "
             "\"version\": \"^1\", \"purpose\": \"p\"}, {\"name\": \"omega\", \"kind\": "
             "\"library\", \"version\": \"^1\", \"purpose\": \"a library is not looked up\"}]}\n");
    ms_check_report *r = check();
    const ms_check_finding *f = only(r, "unknown-component");
    assert_int_equal(f->level, MS_CHECK_ERROR);
    assert_string_equal(f->pointer, "/dependencies/1/name");
    assert_non_null(strstr(f->message, "'omega'"));
    ms_check_report_destroy(r);
}

static void version_outside_range_is_a_warning(void **state)
{
    put_file("components/beta/context/context.json",
             "{\"component\": \"beta\", \"version\": \"0.3.0\", \"purpose\": \"x\",\n"
             " \"dependencies\": [{\"name\": \"alpha\", \"kind\": \"component\", \"version\": "
             "\"~1.1\", \"purpose\": \"p\"}],\n"
             " \"interfaces\": {\"consumes\": [{\"name\": \"alpha\", \"version\": \"^2\", "
             "\"subjects\": [\"events.alpha.changed\", \"events.other.>\"]}]}}\n");
    ms_check_report *r = check();
    bool iface = false, comp = false;
    assert_int_equal(ms_check_report_errors(r), 0);
    assert_int_equal(count_code(r, "version-out-of-range"), 2);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, "version-out-of-range") != 0)
            continue;
        assert_int_equal(f->level, MS_CHECK_WARNING);
        assert_non_null(strstr(f->message, "1.2.0"));
        iface = iface || strcmp(f->pointer, "/interfaces/consumes/0/version") == 0;
        comp = comp || strcmp(f->pointer, "/dependencies/0/version") == 0;
    }
    assert_true(iface);
    assert_true(comp);
    /* events.other.> overlaps nothing alpha emits. */
    assert_string_equal(only(r, "subject-not-provided")->pointer,
                        "/interfaces/consumes/0/subjects/1");
    ms_check_report_destroy(r);
}

static void rules_that_can_never_match(void **state)
{
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\"},\n"
             " \"monitored_topics\": [\"mainstack.>\"],\n"
             " \"rules\": [\n"
             "  {\"name\": \"a\", \"match\": {\"type\": \"interface_changed\", \"dependency\": "
             "\"alpha\"}, \"decision\": \"act\", \"reason\": \"x\"},\n"
             "  {\"name\": \"b\", \"match\": {\"interface\": \"alpha\", \"dependency\": "
             "\"alpha\"}, \"decision\": \"act\", \"reason\": \"x\"},\n"
             "  {\"name\": \"c\", \"match\": {\"type\": \"event\", \"bump\": \"minor\"}, "
             "\"decision\": \"act\", \"reason\": \"x\"},\n"
             "  {\"name\": \"d\", \"match\": {\"type\": \"event\", \"breaking\": true}, "
             "\"decision\": \"act\", \"reason\": \"x\"},\n"
             "  {\"name\": \"e\", \"match\": {\"subject\": \"events.alpha.*\"}, \"decision\": "
             "\"escalate\", \"reason\": \"x\"},\n"
             "  {\"name\": \"f\", \"match\": {\"type\": \"dependency_update\", \"dependency\": "
             "\"alpha\", \"bump\": \"major\", \"subject\": \"mainstack.dependency.*.alpha\"}, "
             "\"decision\": \"escalate\", \"reason\": \"this one can match\"}\n"
             " ]}\n");
    ms_check_report *r = check();
    static const char *const want[] = {"/rules/0/match", "/rules/1/match", "/rules/2/match",
                                       "/rules/3/match", "/rules/4/match"};
    size_t k = 0;

    assert_int_equal(ms_check_report_errors(r), 0);
    assert_int_equal(count_code(r, "rule-never-matches"), 5);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, "rule-never-matches") != 0)
            continue;
        assert_int_equal(f->level, MS_CHECK_WARNING);
        assert_string_equal(f->pointer, want[k]);
        if (k == 1)
            assert_non_null(strstr(f->message, "no message has both"));
        if (k == 4)
            assert_non_null(strstr(f->message, "monitored topics"));
        k++;
    }
    assert_int_equal(count_code(r, "rule-shadowed"), 0);
    ms_check_report_destroy(r);
}

static void rules_shadowed_or_undeclared(void **state)
{
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\"},\n"
             " \"rules\": [\n"
             "  {\"name\": \"alpha-any\", \"match\": {\"type\": \"interface_changed\", "
             "\"interface\": \"alpha\"}, \"decision\": \"escalate\", \"reason\": \"x\"},\n"
             "  {\"name\": \"alpha-breaking\", \"match\": {\"type\": \"interface_changed\", "
             "\"interface\": \"alpha\", \"breaking\": true}, \"decision\": \"escalate\", "
             "\"reason\": \"x\"},\n"
             "  {\"name\": \"zeta\", \"match\": {\"interface\": \"zeta\"}, \"decision\": "
             "\"ignore\", \"reason\": \"x\"},\n"
             "  {\"name\": \"dep\", \"match\": {\"dependency\": \"sqlite3\"}, \"decision\": "
             "\"ignore\", \"reason\": \"x\"},\n"
             "  {\"name\": \"all\", \"decision\": \"ignore\", \"reason\": \"catch-all\"},\n"
             "  {\"name\": \"after-all\", \"match\": {\"subject\": \"x.y\"}, \"decision\": "
             "\"act\", \"reason\": \"x\"}\n"
             " ]}\n");
    ms_check_report *r = check();
    bool first = false, catchall = false;

    assert_int_equal(ms_check_report_errors(r), 0);
    assert_int_equal(count_code(r, "rule-shadowed"), 2);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (strcmp(f->code, "rule-shadowed") != 0)
            continue;
        first = first || (strcmp(f->pointer, "/rules/1") == 0 && strstr(f->message, "alpha-any"));
        catchall = catchall || (strcmp(f->pointer, "/rules/5") == 0 && strstr(f->message, "'all'"));
    }
    assert_true(first);
    assert_true(catchall);
    assert_string_equal(only(r, "rule-unknown-interface")->pointer, "/rules/2/match/interface");
    assert_string_equal(only(r, "rule-unknown-dependency")->pointer, "/rules/3/match/dependency");
    ms_check_report_destroy(r);
}

static void pattern_relations(void **state)
{
    static const struct {
        const char *a, *b;
        bool overlap, a_covers_b;
    } cases[] = {
        {"a.b", "a.b", true, true},      {"a.*", "a.b", true, true},
        {"a.b", "a.*", true, false},     {"a.>", "a.b.c", true, true},
        {"a.>", "a", false, false},      {">", "x", true, true},
        {"a.*", "a.b.c", false, false},  {"a.*.c", "a.b.>", true, false},
        {"a.b.>", "a.*.c", true, false}, {"a.b", "a.c", false, false},
        {"*.b", "a.*", true, false},     {"a.>", "a.>", true, true},
        {"a.*", "a.>", true, false},     {"events.user.>", "events.user.created", true, true},
        {"ab.c", "a.c", false, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (ms__pattern_overlap(cases[i].a, cases[i].b) != cases[i].overlap ||
            ms__pattern_overlap(cases[i].b, cases[i].a) != cases[i].overlap)
            fail_msg("overlap(%s, %s) should be %d", cases[i].a, cases[i].b, cases[i].overlap);
        if (ms__pattern_covers(cases[i].a, cases[i].b) != cases[i].a_covers_b)
            fail_msg("covers(%s, %s) should be %d", cases[i].a, cases[i].b, cases[i].a_covers_b);
    }
}

static void paths_and_discovery(void **state)
{
    ms_check_options opt = {.schemas_dir = MS_SOURCE_DIR "/schemas"};
    ms_check_report *r = NULL;
    char a[256], b[256], proj[256], empty[256];

    /* A component directory twice, and the components directory: each once. */
    snprintf(a, sizeof a, "%s/components/alpha", root);
    snprintf(b, sizeof b, "%s/components/alpha/", root);
    snprintf(proj, sizeof proj, "%s/components", root);
    const char *three[3] = {a, b, proj};
    ms_assert_ok(ms_check_stack(three, 3, &opt, &r));
    assert_int_equal(ms_check_report_component_count(r), 2);
    ms_check_report_destroy(r);

    /* Alone, alpha is clean; beta alone misses its producer. */
    const char *one[1] = {a};
    ms_assert_ok(ms_check_stack(one, 1, &opt, &r));
    assert_int_equal(ms_check_report_errors(r), 0);
    ms_check_report_destroy(r);

    /* A project root (schemas/ found there when not given). */
    make_dir("schemas");
    const char *schemas[] = {"context.schema.json", "agent-config.schema.json",
                             "interface.schema.json"};
    for (size_t i = 0; i < 3; i++) {
        char src[512], rel[128];
        snprintf(src, sizeof src, MS_SOURCE_DIR "/schemas/%s", schemas[i]);
        json_t *doc = json_load_file(src, 0, NULL);
        char *text = json_dumps(doc, 0);
        snprintf(rel, sizeof rel, "schemas/%s", schemas[i]);
        put_file(rel, text);
        free(text);
        json_decref(doc);
    }
    const char *rootp[1] = {root};
    ms_assert_ok(ms_check_stack(rootp, 1, NULL, &r));
    assert_int_equal(ms_check_report_component_count(r), 2);
    assert_int_equal(ms_check_report_count(r), 0);
    ms_check_report_destroy(r);
    char *found = NULL;
    ms_assert_ok(ms_check_find_root(a, &found));
    assert_non_null(strstr(found, "ms_check_"));
    free(found);

    /* Wrong paths. */
    snprintf(empty, sizeof empty, "%s/components/alpha/context", root);
    const char *bad[1] = {"/nonexistent/mainstack-components"};
    assert_int_equal(ms_check_stack(bad, 1, &opt, &r), MS_ERR_NOT_FOUND);
    assert_null(r);
    assert_non_null(strstr(ms_last_error(), "/nonexistent/mainstack-components"));
    bad[0] = empty; /* a directory without components */
    assert_int_equal(ms_check_stack(bad, 1, &opt, &r), MS_ERR_NOT_FOUND);
    assert_non_null(strstr(ms_last_error(), "no component"));
    ms_check_options nos = {.schemas_dir = "/nonexistent/schemas"};
    assert_int_equal(ms_check_stack(one, 1, &nos, &r), MS_ERR_NOT_FOUND);
    assert_non_null(strstr(ms_last_error(), "/nonexistent/schemas"));
    assert_int_equal(ms_check_stack(NULL, 1, &opt, &r), MS_ERR_INVALID_ARG);
    assert_int_equal(ms_check_stack(one, 1, &opt, NULL), MS_ERR_INVALID_ARG);
    assert_int_equal(ms_check_find_root("/", &found), MS_ERR_NOT_FOUND);
    ms_check_report_destroy(NULL);
}

static void json_report(void **state)
{
    put_file("components/beta/context/agent-config.json", "{\"component\": \"beta\",,}");
    ms_check_report *r = check();
    json_t *j = NULL, *f;
    ms_assert_ok(ms_check_report_to_json(r, &j));
    assert_int_equal(json_array_size(json_object_get(j, "components")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "errors")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "warnings")), 0);
    f = json_array_get(json_object_get(j, "findings"), 0);
    assert_string_equal(json_string_value(json_object_get(f, "level")), "error");
    assert_string_equal(json_string_value(json_object_get(f, "code")), "syntax");
    assert_int_equal(json_integer_value(json_object_get(f, "line")), 1);
    assert_true(json_integer_value(json_object_get(f, "column")) > 0);
    assert_null(json_object_get(f, "pointer"));
    assert_non_null(json_string_value(json_object_get(f, "message")));
    json_decref(j);
    assert_int_equal(ms_check_report_to_json(NULL, &j), MS_ERR_INVALID_ARG);
    ms_check_report_destroy(r);
}

static void render_agents_md(void **state)
{
    char dir[256];
    char *md = NULL, *again = NULL;
    snprintf(dir, sizeof dir, "%s/components/alpha", root);
    ms_assert_ok(ms_context_render_dir(dir, &md));
    ms_assert_ok(ms_context_render_dir(dir, &again));
    assert_string_equal(md, again); /* deterministic */
    static const char *const want[] = {
        "<!-- Generated from context/context.json",
        "mstack context render alpha",
        "Do not edit by hand",
        "# alpha 1.2.0\n\nKeeps the alpha things.\n",
        "## Interfaces",
        "- **alpha** 1.2.0, contract `interface.json`",
        "- `events.alpha.changed` (event): After a change.",
        "Nothing: this component consumes no other interface.",
        "## Design decisions\n\n- **AD-1** (accepted, 2026-01-15): Use files.\n  Why: Simple to "
        "inspect.",
        "| jansson | library | `>=2.13 <3.0` | JSON \\| values |",
        "- **AK-1** (low): Slow at scale.\n  Workaround: Shard it.",
        "## Performance\n\n- One fsync per change.",
        "## Security\n\n- No personal data.",
        "```sh\nctest -R alpha\n```",
        "- test (timeout 60s; environment MAINSTACK_LOG=warn)",
        "ctest -R 'it'\\''s here'",
        "## Responsibilities\n\n- Keep alpha alive.",
        "## Constraints (never do these)\n\n- Never drop data.",
        "Autonomy: **patch**, the agent acts on its own on patch-level changes only",
        "Deploys without a person: no.",
        "Escalations go to `mainstack.escalation.alpha`",
        "Monitored topics: `mainstack.interface.changed.>`.",
        "1. **own**: type `interface_changed`, interface `alpha` → ignore. Ours.",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (strstr(md, want[i]) == NULL)
            fail_msg("AGENTS.md lacks \"%s\":\n%s", want[i], md);
    }
    assert_int_equal(md[strlen(md) - 1], '\n');
    assert_int_not_equal(md[strlen(md) - 2], '\n');
    free(md);
    free(again);

    /* beta: no interface.json; consumption with subjects, a component dependency. */
    snprintf(dir, sizeof dir, "%s/components/beta", root);
    ms_assert_ok(ms_context_render_dir(dir, &md));
    assert_non_null(
        strstr(md, "- **alpha**, versions `>=1.0.0 <2.0.0`, subjects `events.alpha.>`"));
    assert_non_null(strstr(md, "Nothing: this component provides no interface."));
    assert_non_null(strstr(md, "No test command is recorded"));
    assert_non_null(strstr(md, "type `interface_changed`, interface `alpha`, breaking → escalate"));
    free(md);

    /* Bad input. */
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    ms_assert_ok(ms_context_load_dir(dir, &ctx, &cfg));
    assert_int_equal(ms_context_render_agents_md(NULL, cfg, NULL, &md), MS_ERR_INVALID_ARG);
    assert_int_equal(ms_context_render_agents_md(ctx, NULL, NULL, &md), MS_ERR_INVALID_ARG);
    assert_int_equal(ms_context_render_agents_md(ctx, cfg, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_context_unref(ctx);
    ms_agent_config_unref(cfg);
    put_file("components/beta/context/context.json", "{");
    assert_int_equal(ms_context_render_dir(dir, &md), MS_ERR_PARSE);
    assert_null(md);
    assert_int_equal(ms_context_render_dir("/nonexistent/c", &md), MS_ERR_IO);
}

/* actions.deploy: a valid section is clean and rendered; an argument the
 * pipeline sets itself is an error at its pointer. */
static void deploy_section_checked(void **state)
{
    static const char ok[] =
        "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\", \"may_deploy\": false},\n"
        " \"actions\": {\"deploy\": {\"build_dir\": \"build/components\", \"timeout_s\": 120, "
        "\"args\": [\"--watch\", \"2000\"]}}}\n";
    static const char bad[] =
        "{\"component\": \"beta\", \"autonomy\": {\"level\": \"minor\"},\n"
        " \"actions\": {\"deploy\": {\"build_dir\": \"b\", \"args\": [\"--json\"]}}}\n";
    char dir[256], *md = NULL;
    ms_check_report *r;
    bool at_pointer = false;

    (void)state;
    put_file("components/beta/context/agent-config.json", ok);
    r = check();
    assert_int_equal(ms_check_report_count(r), 0);
    ms_check_report_destroy(r);
    snprintf(dir, sizeof dir, "%s/components/beta", root);
    ms_assert_ok(ms_context_render_dir(dir, &md));
    if (strstr(md, "`mstack version add beta build/components` records the build, and `mstack "
                   "deploy beta VERSION --watch 2000` tests it against the active version; it "
                   "is promoted only when a person approves") == NULL ||
        strstr(md, "timeout 120s each") == NULL)
        fail_msg("AGENTS.md lacks the deploy steps:\n%s", md);
    free(md);

    put_file("components/beta/context/agent-config.json", bad);
    r = check();
    assert_true(ms_check_report_errors(r) >= 1);
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        const ms_check_finding *f = ms_check_report_at(r, i);
        if (f->pointer != NULL && strcmp(f->pointer, "/actions/deploy/args/0") == 0)
            at_pointer = true;
    }
    assert_true(at_pointer);
    ms_check_report_destroy(r);
}

static void real_stack_is_clean(void **state)
{
    const char *paths[1] = {MS_SOURCE_DIR};
    ms_check_report *r = NULL;
    char line[2048];
    ms_assert_ok(ms_check_stack(paths, 1, NULL, &r));
    for (size_t i = 0; i < ms_check_report_count(r); i++) {
        ms_check_finding_format(ms_check_report_at(r, i), line, sizeof line);
        print_message("%s\n", line);
    }
    assert_true(ms_check_report_component_count(r) >= 2);
    assert_int_equal(ms_check_report_errors(r), 0);
    assert_int_equal(ms_check_report_warnings(r), 0);
    ms_check_report_destroy(r);
}

static void allocation_failures(void **state)
{
    /* A stack with findings of most kinds, so the error paths run too. */
    put_file("components/beta/context/agent-config.json",
             "{\"component\": \"gamma\", \"autonomy\": {\"level\": \"minor\"},\n"
             " \"rules\": [{\"name\": \"all\", \"decision\": \"ignore\", \"reason\": \"x\"},\n"
             "  {\"name\": \"b\", \"match\": {\"type\": \"event\", \"bump\": \"minor\"}, "
             "\"decision\": \"act\", \"reason\": \"x\"}]}\n");
    put_file("components/alpha/interface.json", "{\"name\": 3}");
    char dir[256];
    const char *paths[1] = {dir};
    ms_check_options opt = {.schemas_dir = MS_SOURCE_DIR "/schemas"};
    ms_check_report *r = NULL;
    long total;
    size_t findings;

    snprintf(dir, sizeof dir, "%s/components", root);
    ms__alloc_fail_after(1L << 40); /* counts, never fails */
    ms_assert_ok(ms_check_stack(paths, 1, &opt, &r));
    findings = ms_check_report_count(r);
    ms_check_report_destroy(r);
    total = ms__alloc_fail_after(-1);
    assert_true(total > 10);
    /* Every allocation up to 300 fails in turn, then a sample of the rest. */
    for (long n = 0; n < total; n += n < 300 ? 1 : total / 150 + 1) {
        ms_status s;
        r = NULL;
        ms__alloc_fail_after(n);
        s = ms_check_stack(paths, 1, &opt, &r);
        ms__alloc_fail_after(-1);
        if (s == MS_OK) {
            assert_int_equal(ms_check_report_count(r), findings);
            ms_check_report_destroy(r);
        } else {
            assert_null(r);
            if (s != MS_ERR_NO_MEMORY)
                fail_msg("failing allocation %ld: %s (%s)", n, ms_status_name(s), ms_last_error());
        }
    }
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(clean_stack, setup, teardown),
        cmocka_unit_test_setup_teardown(syntax_error_has_line_and_column, setup, teardown),
        cmocka_unit_test_setup_teardown(schema_error_has_pointer, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_fields_are_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(loader_checks_beyond_the_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(topics_must_be_valid_subjects, setup, teardown),
        cmocka_unit_test_setup_teardown(names_must_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(versions_must_agree, setup, teardown),
        cmocka_unit_test_setup_teardown(referenced_files_must_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(consumed_interface_must_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(component_dependency_must_exist, setup, teardown),
        cmocka_unit_test_setup_teardown(version_outside_range_is_a_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(rules_that_can_never_match, setup, teardown),
        cmocka_unit_test_setup_teardown(rules_shadowed_or_undeclared, setup, teardown),
        cmocka_unit_test(pattern_relations),
        cmocka_unit_test_setup_teardown(paths_and_discovery, setup, teardown),
        cmocka_unit_test_setup_teardown(json_report, setup, teardown),
        cmocka_unit_test_setup_teardown(render_agents_md, setup, teardown),
        cmocka_unit_test_setup_teardown(deploy_section_checked, setup, teardown),
        cmocka_unit_test(real_stack_is_clean),
        cmocka_unit_test_setup_teardown(allocation_failures, setup, teardown),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
