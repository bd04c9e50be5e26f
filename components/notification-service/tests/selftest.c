/*
 * selftest.c - the Testable suite of notification-service (its run_tests).
 *
 * Compiled into the plugin: each test drives the real template engine,
 * config parser and outbox in a fresh temporary directory (never the
 * instance's own outbox) and reports under its own name. The same behaviour
 * is tested through the runtime and the bus in test_notification_service.c.
 */
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mainstack/json.h>

#include "../src/notification_service_internal.h"

typedef struct fixture {
    char dir[256];
    char why[900];
} fixture;

#define CHECK(f, cond, ...)                                                                        \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            snprintf((f)->why, sizeof(f)->why, __VA_ARGS__);                                       \
            goto out;                                                                              \
        }                                                                                          \
    } while (0)

static json_t *record(const char *event_id, const char *text)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event_id", event_id, "event",
                     "events.user.created", "user_id", "u1", "to", "a@example.com", "text", text,
                     "time", "2026-11-25T00:00:00.000000Z");
}

/* Lines of a file (-1 when it cannot be read). */
static int count_lines(const char *path)
{
    FILE *f = fopen(path, "re");
    int n = 0, c;

    if (f == NULL)
        return -1;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static bool t_template_render(fixture *f)
{
    static const char src[] = "Hi {{ name }} <{{email}}>:{{missing}}|{{n}}|{{b}}|{{o}}|{ }}";
    ns_template *t = NULL;
    json_t *vars = json_pack("{s:s, s:s, s:i, s:b, s:{}}", "name", "Ada", "email", "ada@x.org", "n",
                             42, "b", 1, "o");
    char *out = NULL;
    bool ok = false;

    CHECK(f, vars != NULL, "json_pack");
    CHECK(f, ns__template_parse(src, strlen(src), "t", &t) == MS_OK, "parse: %s", ms_last_error());
    CHECK(f, ns__template_render(t, vars, &out) == MS_OK, "render: %s", ms_last_error());
    CHECK(f, strcmp(out, "Hi Ada <ada@x.org>:|42|true||{ }}") == 0, "rendered '%s'", out);
    ok = true;
out:
    free(out);
    ns__template_free(t);
    json_decref(vars);
    return ok;
}

static bool t_template_errors(fixture *f)
{
    static const struct {
        const char *src, *want;
    } bad[] = {
        {"Hi {{name", "unclosed '{{' at offset 3"},
        {"Hi {{name}", "unclosed '{{' at offset 3"},
        {"ok {{name}} then {{", "unclosed '{{' at offset 17"},
        {"{{}}", "empty placeholder at offset 0"},
        {"x {{first-name}}", "invalid character '-' at offset 9"},
        {"{{ a b }}", "invalid character 'b' at offset 5"},
    };
    bool ok = false;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ns_template *t = NULL;
        ms_status s = ns__template_parse(bad[i].src, strlen(bad[i].src), "templates.x", &t);
        ns__template_free(t);
        CHECK(f, s == MS_ERR_SCHEMA, "'%s' was accepted", bad[i].src);
        CHECK(f, strstr(ms_last_error(), bad[i].want) != NULL, "'%s': error '%s', want '%s'",
              bad[i].src, ms_last_error(), bad[i].want);
    }
    ok = true;
out:
    return ok;
}

static bool t_config(fixture *f)
{
    static const char *const bad[] = {
        "{\"outbox\":\"../x\"}",
        "{\"outbox\":\"\"}",
        "{\"outbox\":\"delivered.ids\"}",
        "{\"pending_max\":0}",
        "{\"templates\":{\"created\":1}}",
        "{\"templates\":{\"Created!\":\"x\"}}",
        "{\"templates\":[]}",
        "{\"template\":{}}",
        "{\"templates\":{\"created\":\"Hi {{name\"}}",
    };
    ns_config c = {0};
    json_t *j = NULL;
    bool ok = false;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ms_status s;
        CHECK(f, ms_json_parse(bad[i], strlen(bad[i]), "selftest", &j) == MS_OK, "parse: %s",
              ms_last_error());
        s = ns__config_parse(j, &c);
        json_decref(j);
        j = NULL;
        CHECK(f, s == MS_ERR_SCHEMA, "config %s was accepted", bad[i]);
    }
    CHECK(f,
          ns__config_parse(NULL, &c) == MS_OK && c.count == 3 &&
              strcmp(c.outbox, NOTIFY_DEFAULT_OUTBOX) == 0,
          "defaults: %s", ms_last_error());
    CHECK(f, ns__config_template(&c, "created") != NULL, "no default template for created");
    ok = true;
out:
    json_decref(j);
    ns__config_reset(&c);
    return ok;
}

static bool t_deliver_once(fixture *f)
{
    ns_outbox *ob = NULL;
    json_t *rec = record("ev-1", "hello"), *written = json_array(), *recent = NULL;
    char path[320];
    bool ok = false;

    CHECK(f, rec && written, "json");
    CHECK(f, ns__outbox_open(f->dir, "out.jsonl", 10, &ob) == MS_OK, "open: %s", ms_last_error());
    CHECK(f, !ns__outbox_seen(ob, "ev-1"), "a new id is seen");
    CHECK(f, ns__outbox_deliver(ob, rec, written) == MS_OK, "deliver: %s", ms_last_error());
    CHECK(f, json_array_size(written) == 1, "%zu written", json_array_size(written));
    CHECK(f, ns__outbox_seen(ob, "ev-1"), "a delivered id is not seen");
    snprintf(path, sizeof path, "%s/out.jsonl", f->dir);
    CHECK(f, count_lines(path) == 1, "outbox has %d lines", count_lines(path));
    /* A fresh outbox object (a restart) remembers the id. */
    ns__outbox_close(ob);
    ob = NULL;
    CHECK(f, ns__outbox_open(f->dir, "out.jsonl", 10, &ob) == MS_OK, "reopen: %s", ms_last_error());
    CHECK(f, ns__outbox_seen(ob, "ev-1"), "the id is forgotten after reopening");
    recent = ns__outbox_recent(ob, 10);
    CHECK(f, json_array_size(recent) == 1, "recent has %zu", json_array_size(recent));
    /* Rotating the outbox away keeps the ids (delivered.ids). */
    CHECK(f, unlink(path) == 0, "unlink");
    ns__outbox_close(ob);
    ob = NULL;
    CHECK(f, ns__outbox_open(f->dir, "out.jsonl", 10, &ob) == MS_OK, "reopen: %s", ms_last_error());
    CHECK(f, ns__outbox_seen(ob, "ev-1"), "the id is forgotten after rotation");
    ok = true;
out:
    ns__outbox_close(ob);
    json_decref(rec);
    json_decref(written);
    json_decref(recent);
    return ok;
}

static bool t_unwritable_recovers(fixture *f)
{
    ns_outbox *ob = NULL;
    json_t *a = record("ev-a", "a"), *b = record("ev-b", "b"), *written = json_array();
    char path[320];
    ms_status s;
    bool ok = false;

    CHECK(f, a && b && written, "json");
    snprintf(path, sizeof path, "%s/out.jsonl", f->dir);
    CHECK(f, mkdir(path, 0755) == 0, "mkdir %s", path); /* a directory where the file goes */
    CHECK(f, ns__outbox_open(f->dir, "out.jsonl", 10, &ob) == MS_OK, "open: %s", ms_last_error());
    s = ns__outbox_deliver(ob, a, written);
    CHECK(f, s == MS_ERR_IO, "deliver into a directory gave %s", ms_status_name(s));
    CHECK(f, strstr(ms_last_error(), "queued") != NULL, "error: %s", ms_last_error());
    CHECK(f, ns__outbox_pending(ob) == 1 && ns__outbox_seen(ob, "ev-a"), "not queued (%zu pending)",
          ns__outbox_pending(ob));
    CHECK(f, ns__outbox_probe(ob) == MS_ERR_IO, "probe passed on a directory");
    CHECK(f, rmdir(path) == 0, "rmdir");
    s = ns__outbox_deliver(ob, b, written);
    CHECK(f, s == MS_OK, "deliver after repair: %s", ms_last_error());
    CHECK(f, json_array_size(written) == 2 && ns__outbox_pending(ob) == 0,
          "%zu written, %zu pending", json_array_size(written), ns__outbox_pending(ob));
    CHECK(f,
          strcmp(json_string_value(json_object_get(json_array_get(written, 0), "event_id")),
                 "ev-a") == 0,
          "the queued one did not go first");
    CHECK(f, count_lines(path) == 2, "outbox has %d lines", count_lines(path));
    CHECK(f, ns__outbox_probe(ob) == MS_OK, "probe: %s", ms_last_error());
    ok = true;
out:
    ns__outbox_close(ob);
    json_decref(a);
    json_decref(b);
    json_decref(written);
    return ok;
}

static bool t_queue_bound(fixture *f)
{
    ns_outbox *ob = NULL;
    json_t *a = record("q-a", "a"), *b = record("q-b", "b");
    char path[320];
    ms_status s;
    bool ok = false;

    CHECK(f, a && b, "json");
    snprintf(path, sizeof path, "%s/out.jsonl", f->dir);
    CHECK(f, mkdir(path, 0755) == 0, "mkdir");
    CHECK(f, ns__outbox_open(f->dir, "out.jsonl", 1, &ob) == MS_OK, "open: %s", ms_last_error());
    CHECK(f, ns__outbox_deliver(ob, a, NULL) == MS_ERR_IO, "first: %s", ms_last_error());
    s = ns__outbox_deliver(ob, b, NULL);
    CHECK(f, s == MS_ERR_FULL && ns__outbox_dropped(ob) == 1, "second gave %s, %zu dropped",
          ms_status_name(s), ns__outbox_dropped(ob));
    CHECK(f, rmdir(path) == 0, "rmdir");
    ok = true;
out:
    ns__outbox_close(ob);
    json_decref(a);
    json_decref(b);
    return ok;
}

static bool t_torn_line(fixture *f)
{
    ns_outbox *ob = NULL;
    json_t *a = record("t-a", "a");
    char path[320];
    FILE *fp;
    bool ok = false;

    CHECK(f, a != NULL, "json");
    snprintf(path, sizeof path, "%s/out.jsonl", f->dir);
    fp = fopen(path, "we");
    CHECK(f, fp != NULL, "fopen");
    fputs("{\"event_id\":\"t-0\",\"text\":\"whole\"}\n{\"event_id\":\"t-torn", fp);
    fclose(fp);
    CHECK(f, ns__outbox_open(f->dir, "out.jsonl", 10, &ob) == MS_OK, "open: %s", ms_last_error());
    CHECK(f, ns__outbox_seen(ob, "t-0"), "a whole line's id was not loaded");
    CHECK(f, ns__outbox_deliver(ob, a, NULL) == MS_OK, "deliver: %s", ms_last_error());
    ns__outbox_close(ob);
    ob = NULL;
    CHECK(f, count_lines(path) == 3, "outbox has %d lines, want 3", count_lines(path));
    CHECK(f, ns__outbox_open(f->dir, "out.jsonl", 10, &ob) == MS_OK, "reopen: %s", ms_last_error());
    CHECK(f, ns__outbox_seen(ob, "t-a"), "the line after a torn one was lost");
    ok = true;
out:
    ns__outbox_close(ob);
    json_decref(a);
    return ok;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

ms_status ns__selftest(ms_test_report *report)
{
    static const struct {
        const char *name;
        bool (*fn)(fixture *);
    } tests[] = {
        {"template_render", t_template_render},
        {"template_errors", t_template_errors},
        {"config", t_config},
        {"deliver_once", t_deliver_once},
        {"unwritable_recovers", t_unwritable_recovers},
        {"queue_bound", t_queue_bound},
        {"torn_line", t_torn_line},
    };
    const char *tmp = getenv("TMPDIR");
    ms_status s = MS_OK;
    fixture f;

    for (size_t i = 0; i < sizeof tests / sizeof tests[0] && s == MS_OK; i++) {
        bool ok;
        memset(&f, 0, sizeof f);
        snprintf(f.dir, sizeof f.dir, "%s/notification-service-selftest.XXXXXX",
                 tmp && tmp[0] && strlen(tmp) < 180 ? tmp : "/tmp");
        if (mkdtemp(f.dir) == NULL)
            return ns__fail(MS_ERR_IO, "notification-service selftest: cannot create %s", f.dir);
        ok = tests[i].fn(&f);
        (void)nftw(f.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        s = ms_test_report_add(report, tests[i].name, ok, "%s", ok ? "ok" : f.why);
    }
    return s;
}
