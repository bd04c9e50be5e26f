/*
 * test_registry.c - the registry on a real SQLite file: opening (new file,
 * directories made, WAL, a file that is not a database, a newer schema),
 * decisions (one per event, paging), escalations (resolve once, races in
 * threads and in processes), pipeline runs and the audit log.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "ms_test.h"

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/ms-registry-test.XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void assert_detail_has(const char *needle)
{
    if (strstr(ms_last_error(), needle) == NULL)
        fail_msg("detail '%s' does not contain '%s'", ms_last_error(), needle);
}

static ms_registry *open_fresh(const char *name)
{
    char p[400];
    ms_registry *reg = NULL;

    path_of(p, sizeof p, name);
    ms_assert_ok(ms_registry_open(p, &reg));
    return reg;
}

static ms_registry_decision decision(const char *component, const char *event_id)
{
    ms_registry_decision d = {
        .component = component,
        .decision = "act",
        .rule = "default:compatible-interface",
        .reason = "user-api 1.2.0 -> 1.3.0 is a minor bump and autonomy is minor",
        .event_id = event_id,
        .subject = "mainstack.interface.changed.user-api",
        .type = "interface_changed",
        .agent = "test",
    };
    return d;
}

static void open_creates_directories_and_uses_wal(void **state)
{
    char p[400], wal_check[64] = "";
    ms_registry *reg = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *q = NULL;
    char *def = NULL;

    path_of(p, sizeof p, "a/b/.mainstack/registry.db");
    ms_assert_ok(ms_registry_open(p, &reg));
    assert_string_equal(ms_registry_path(reg), p);
    ms_registry_close(reg);
    /* reopening migrates nothing and keeps working */
    ms_assert_ok(ms_registry_open(p, &reg));
    ms_registry_close(reg);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    snprintf(wal_check, sizeof wal_check, "%s", (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    sqlite3_close(db);
    assert_string_equal(wal_check, "wal");

    ms_assert_ok(ms_registry_default_path("/srv/proj", &def));
    assert_string_equal(def, "/srv/proj/.mainstack/registry.db");
    free(def);
    ms_registry_close(NULL);
}

static void open_bad_files(void **state)
{
    char p[400];
    ms_registry *reg = NULL;
    FILE *f;
    sqlite3 *db = NULL;

    ms_assert_status(ms_registry_open(NULL, &reg), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_open("", &reg), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_default_path(NULL, NULL), MS_ERR_INVALID_ARG);

    /* a text file where the database should be */
    path_of(p, sizeof p, "not-a-db");
    f = fopen(p, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not a database, just text\n", f);
    fclose(f);
    ms_assert_status(ms_registry_open(p, &reg), MS_ERR_IO);
    assert_null(reg);
    assert_detail_has(p);
    assert_detail_has("not a database");

    /* a directory where the database should be */
    path_of(p, sizeof p, "a-dir");
    assert_int_equal(mkdir(p, 0755), 0);
    ms_assert_status(ms_registry_open(p, &reg), MS_ERR_IO);
    assert_detail_has(p);

    /* a parent that is a file */
    path_of(p, sizeof p, "not-a-db/registry.db");
    ms_assert_status(ms_registry_open(p, &reg), MS_ERR_IO);
    assert_detail_has("not-a-db");

    /* written by a newer mainstack */
    path_of(p, sizeof p, "newer.db");
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    ms_assert_status(ms_registry_open(p, &reg), MS_ERR_UNSUPPORTED);
    assert_detail_has("newer mainstack");
}

static void decisions_once_per_event(void **state)
{
    ms_registry *reg = open_fresh("decisions.db");
    ms_registry_decision d = decision("user-service", "0192f1e0-aaaa-7000-8000-000000000001");
    json_t *detail = json_pack("{s:s}", "summary", "adds a field");
    json_t *list = NULL;
    int64_t id1 = 0, id2 = 0;
    bool fresh = false;

    d.detail = detail;
    ms_assert_ok(ms_registry_record_decision(reg, &d, &id1, &fresh));
    assert_true(fresh);
    assert_true(id1 > 0);
    /* the same event again: nothing new, the first decision's id */
    d.decision = "ignore";
    ms_assert_ok(ms_registry_record_decision(reg, &d, &id2, &fresh));
    assert_false(fresh);
    assert_int_equal(id1, id2);
    /* another component may decide the same event */
    d.component = "notification-service";
    ms_assert_ok(ms_registry_record_decision(reg, &d, &id2, &fresh));
    assert_true(fresh);
    assert_true(id2 > id1);
    /* without an event id every record is new */
    d.event_id = NULL;
    ms_assert_ok(ms_registry_record_decision(reg, &d, NULL, &fresh));
    assert_true(fresh);
    ms_assert_ok(ms_registry_record_decision(reg, &d, NULL, NULL));

    ms_assert_ok(ms_registry_decisions(reg, "user-service", 0, 0, &list));
    assert_int_equal(json_array_size(list), 1);
    json_t *row = json_array_get(list, 0);
    assert_string_equal(json_string_value(json_object_get(row, "decision")), "act");
    assert_string_equal(json_string_value(json_object_get(row, "rule")),
                        "default:compatible-interface");
    assert_string_equal(json_string_value(json_object_get(row, "type")), "interface_changed");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(row, "detail"), "summary")),
        "adds a field");
    assert_non_null(json_string_value(json_object_get(row, "time")));
    json_decref(list);
    ms_assert_ok(ms_registry_decisions(reg, NULL, 0, 0, &list));
    assert_int_equal(json_array_size(list), 4);
    /* newest first */
    assert_true(json_integer_value(json_object_get(json_array_get(list, 0), "id")) >
                json_integer_value(json_object_get(json_array_get(list, 3), "id")));
    json_decref(list);
    json_decref(detail);
    ms_registry_close(reg);
}

static void decisions_bad_input(void **state)
{
    ms_registry *reg = open_fresh("decisions-bad.db");
    ms_registry_decision d = decision("user-service", NULL);
    json_t *list = NULL;

    ms_assert_status(ms_registry_record_decision(NULL, &d, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_record_decision(reg, NULL, NULL, NULL), MS_ERR_INVALID_ARG);
    d.decision = "maybe";
    ms_assert_status(ms_registry_record_decision(reg, &d, NULL, NULL), MS_ERR_INVALID_ARG);
    assert_detail_has("'maybe' is not ignore, act or escalate");
    d = decision("", NULL);
    ms_assert_status(ms_registry_record_decision(reg, &d, NULL, NULL), MS_ERR_INVALID_ARG);
    assert_detail_has("component");
    d = decision("x", NULL);
    d.rule = NULL;
    ms_assert_status(ms_registry_record_decision(reg, &d, NULL, NULL), MS_ERR_INVALID_ARG);
    assert_detail_has("rule");
    d = decision("x", NULL);
    d.reason = NULL;
    ms_assert_status(ms_registry_record_decision(reg, &d, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_decisions(reg, NULL, 0, 0, NULL), MS_ERR_INVALID_ARG);
    ms_assert_ok(ms_registry_decisions(reg, NULL, 0, 0, &list));
    assert_int_equal(json_array_size(list), 0); /* nothing was written */
    json_decref(list);
    ms_registry_close(reg);
}

static void decisions_paging(void **state)
{
    ms_registry *reg = open_fresh("paging.db");
    ms_registry_decision d = decision("c", NULL);
    json_t *page = NULL;
    int64_t before = 0, seen = 0, last = 0;

    for (int i = 0; i < 120; i++)
        ms_assert_ok(ms_registry_record_decision(reg, &d, NULL, NULL));
    ms_assert_ok(ms_registry_decisions(reg, "c", 0, 0, &page));
    assert_int_equal(json_array_size(page), 50); /* the default page */
    json_decref(page);
    for (;;) {
        size_t n;

        ms_assert_ok(ms_registry_decisions(reg, "c", before, 32, &page));
        n = json_array_size(page);
        if (n == 0) {
            json_decref(page);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            int64_t id = json_integer_value(json_object_get(json_array_get(page, i), "id"));

            if (last != 0)
                assert_true(id < last);
            last = id;
        }
        seen += (int64_t)n;
        before = last;
        json_decref(page);
    }
    assert_int_equal(seen, 120);
    /* an absurd page is capped */
    ms_assert_ok(ms_registry_decisions(reg, "c", 0, 1000000, &page));
    assert_int_equal(json_array_size(page), 120);
    json_decref(page);
    ms_registry_close(reg);
}

static void escalations_lifecycle(void **state)
{
    ms_registry *reg = open_fresh("escalations.db");
    ms_registry_decision d = decision("user-service", "ev-1");
    json_t *detail = json_pack("{s:s,s:s}", "step", "test", "candidate", "1.1.0");
    json_t *list = NULL, *row = NULL;
    int64_t did = 0, eid = 0, eid2 = 0;

    ms_assert_ok(ms_registry_record_decision(reg, &d, &did, NULL));
    ms_assert_ok(ms_registry_escalate(reg, "user-service", did, "tests failed", detail, &eid));
    ms_assert_ok(ms_registry_escalate(reg, "notification-service", 0, "breaking change", NULL,
                                      &eid2));
    ms_assert_ok(ms_registry_escalations(reg, NULL, "open", 0, 0, &list));
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    ms_assert_ok(ms_registry_escalations(reg, "user-service", NULL, 0, 0, &list));
    assert_int_equal(json_array_size(list), 1);
    row = json_array_get(list, 0);
    assert_int_equal(json_integer_value(json_object_get(row, "decision_id")), did);
    assert_string_equal(json_string_value(json_object_get(row, "state")), "open");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(row, "detail"), "candidate")), "1.1.0");
    json_decref(list);

    ms_assert_ok(ms_registry_escalation_resolve(reg, eid, true, "looks right", "ada", &row));
    assert_string_equal(json_string_value(json_object_get(row, "state")), "approved");
    assert_string_equal(json_string_value(json_object_get(row, "resolved_by")), "ada");
    assert_string_equal(json_string_value(json_object_get(row, "note")), "looks right");
    json_decref(row);
    /* resolving again is refused and says how it was resolved */
    ms_assert_status(ms_registry_escalation_resolve(reg, eid, false, NULL, "bob", &row),
                     MS_ERR_STATE);
    assert_null(row);
    assert_detail_has("already approved by ada");
    ms_assert_ok(ms_registry_escalation_get(reg, eid, &row));
    assert_string_equal(json_string_value(json_object_get(row, "state")), "approved");
    json_decref(row);
    ms_assert_ok(ms_registry_escalation_resolve(reg, eid2, false, NULL, NULL, NULL));
    ms_assert_ok(ms_registry_escalations(reg, NULL, "open", 0, 0, &list));
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    ms_assert_ok(ms_registry_escalations(reg, NULL, "rejected", 0, 0, &list));
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);

    /* bad input */
    ms_assert_status(ms_registry_escalation_get(reg, 999, &row), MS_ERR_NOT_FOUND);
    assert_detail_has("no escalation 999");
    ms_assert_status(ms_registry_escalation_resolve(reg, 999, true, NULL, NULL, NULL),
                     MS_ERR_NOT_FOUND);
    ms_assert_status(ms_registry_escalations(reg, NULL, "pending", 0, 0, &list),
                     MS_ERR_INVALID_ARG);
    assert_detail_has("'pending'");
    ms_assert_status(ms_registry_escalate(reg, "c", 12345, "why", NULL, NULL), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_registry_escalate(reg, NULL, 0, "why", NULL, NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_escalate(reg, "c", 0, NULL, NULL, NULL), MS_ERR_INVALID_ARG);

    ms_escalation_state st;
    ms_assert_ok(ms_escalation_state_parse("approved", &st));
    assert_int_equal(st, MS_ESCALATION_APPROVED);
    assert_string_equal(ms_escalation_state_str(MS_ESCALATION_REJECTED), "rejected");
    assert_string_equal(ms_escalation_state_str((ms_escalation_state)42), "unknown");
    json_decref(detail);
    ms_registry_close(reg);
}

struct race {
    ms_registry *reg;
    int64_t id;
    int wins;
    pthread_mutex_t lock;
};

static void *resolver(void *arg)
{
    struct race *r = arg;

    if (ms_registry_escalation_resolve(r->reg, r->id, true, NULL, "thread", NULL) == MS_OK) {
        pthread_mutex_lock(&r->lock);
        r->wins++;
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

static void escalation_resolved_once_across_threads(void **state)
{
    struct race r = {.reg = open_fresh("race.db")};
    pthread_t t[8];

    pthread_mutex_init(&r.lock, NULL);
    ms_assert_ok(ms_registry_escalate(r.reg, "c", 0, "why", NULL, &r.id));
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_create(&t[i], NULL, resolver, &r), 0);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r.wins, 1);
    pthread_mutex_destroy(&r.lock);
    ms_registry_close(r.reg);
}

/* Processes sharing one file: N children record the same events and race to
 * resolve the same escalation; the file ends with one decision per event
 * and exactly one resolver won. */
static void processes_share_the_file(void **state)
{
    enum { CHILDREN = 4, EVENTS = 60 };
    char p[400];
    ms_registry *reg = NULL;
    int64_t eid = 0;
    pid_t pids[CHILDREN];
    int wins = 0;
    json_t *list = NULL;

    path_of(p, sizeof p, "shared.db");
    ms_assert_ok(ms_registry_open(p, &reg));
    ms_assert_ok(ms_registry_escalate(reg, "c", 0, "why", NULL, &eid));
    ms_registry_close(reg);
    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        assert_true(pids[c] >= 0);
        if (pids[c] == 0) {
            ms_registry *mine = NULL;
            int code = 0;

            if (ms_registry_open(p, &mine) != MS_OK)
                _exit(10);
            for (int i = 0; i < EVENTS; i++) {
                char ev[32];
                ms_registry_decision d = decision("user-service", ev);

                snprintf(ev, sizeof ev, "event-%d", i);
                if (ms_registry_record_decision(mine, &d, NULL, NULL) != MS_OK)
                    _exit(11);
            }
            if (ms_registry_escalation_resolve(mine, eid, true, NULL, "child", NULL) == MS_OK)
                code = 1;
            ms_registry_close(mine);
            _exit(code);
        }
    }
    for (int c = 0; c < CHILDREN; c++) {
        int st = 0;

        assert_int_equal(waitpid(pids[c], &st, 0), pids[c]);
        assert_true(WIFEXITED(st));
        assert_true(WEXITSTATUS(st) <= 1);
        wins += WEXITSTATUS(st);
    }
    assert_int_equal(wins, 1);
    ms_assert_ok(ms_registry_open(p, &reg));
    ms_assert_ok(ms_registry_decisions(reg, "user-service", 0, 1000, &list));
    assert_int_equal(json_array_size(list), EVENTS);
    json_decref(list);
    ms_registry_close(reg);
}

static void runs_record_steps(void **state)
{
    ms_registry *reg = open_fresh("runs.db");
    json_t *detail = json_pack("{s:i,s:s}", "exit_code", 0, "log", "/tmp/run-1/change.log");
    json_t *run = NULL, *list = NULL;
    int64_t rid = 0, rid2 = 0;

    ms_assert_ok(ms_registry_run_begin(reg, "user-service", 0, &rid));
    ms_assert_ok(ms_registry_run_update(reg, rid, "change", "running", NULL));
    ms_assert_ok(ms_registry_run_update(reg, rid, "change", "running", detail));
    ms_assert_ok(ms_registry_run_update(reg, rid, "build", "running", detail));
    ms_assert_ok(ms_registry_run_update(reg, rid, "test", "failed", detail));
    ms_assert_status(ms_registry_run_update(reg, rid, "deploy", "running", NULL), MS_ERR_STATE);
    assert_detail_has("already ended (failed)");
    ms_assert_ok(ms_registry_run_get(reg, rid, &run));
    assert_string_equal(json_string_value(json_object_get(run, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(run, "step")), "test");
    json_t *steps = json_object_get(run, "steps");
    assert_int_equal(json_array_size(steps), 4);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(steps, 3), "seq")), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(json_array_get(steps, 3), "detail"),
                                          "log")),
        "/tmp/run-1/change.log");
    json_decref(run);

    ms_assert_ok(ms_registry_run_begin(reg, "user-service", 0, &rid2));
    ms_assert_ok(ms_registry_runs(reg, "user-service", 0, 0, &list));
    assert_int_equal(json_array_size(list), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "id")), rid2);
    json_decref(list);

    ms_assert_status(ms_registry_run_update(reg, rid2, "x", "exploded", NULL), MS_ERR_INVALID_ARG);
    assert_detail_has("'exploded'");
    ms_assert_status(ms_registry_run_update(reg, 777, "x", "running", NULL), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_registry_run_get(reg, 777, &run), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_registry_run_begin(reg, "c", 4242, &rid), MS_ERR_NOT_FOUND);
    ms_assert_status(ms_registry_run_begin(reg, NULL, 0, &rid), MS_ERR_INVALID_ARG);
    json_decref(detail);
    ms_registry_close(reg);
}

static void audit_log(void **state)
{
    ms_registry *reg = open_fresh("audit.db");
    json_t *args = json_pack("{s:s}", "version", "1.1.0");
    json_t *list = NULL;

    ms_assert_ok(ms_registry_audit(reg, "claude-code", "deploy", "user-service", "ok", args));
    ms_assert_ok(ms_registry_audit(reg, "cli:ada", "escalation.resolve", NULL,
                                   "escalation 3 was already approved", NULL));
    ms_assert_ok(ms_registry_audit_log(reg, NULL, 0, 0, &list));
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "actor")),
                        "cli:ada");
    assert_true(json_is_null(json_object_get(json_array_get(list, 0), "component")));
    json_decref(list);
    ms_assert_ok(ms_registry_audit_log(reg, "user-service", 0, 0, &list));
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(list, 0), "detail"), "version")),
                        "1.1.0");
    json_decref(list);
    ms_assert_status(ms_registry_audit(reg, NULL, "deploy", NULL, "ok", NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_audit(reg, "a", "", NULL, "ok", NULL), MS_ERR_INVALID_ARG);
    ms_assert_status(ms_registry_audit(reg, "a", "b", NULL, NULL, NULL), MS_ERR_INVALID_ARG);
    json_decref(args);
    ms_registry_close(reg);
}

/* A row whose stored JSON was damaged by hand is reported, not crashed on. */
static void damaged_json_is_reported(void **state)
{
    char p[400];
    ms_registry *reg = open_fresh("damaged.db");
    ms_registry_decision d = decision("c", "e1");
    json_t *detail = json_pack("{s:i}", "x", 1), *list = NULL;
    sqlite3 *db = NULL;

    d.detail = detail;
    ms_assert_ok(ms_registry_record_decision(reg, &d, NULL, NULL));
    path_of(p, sizeof p, "damaged.db");
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db, "UPDATE decisions SET detail_json = '{broken'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    ms_assert_status(ms_registry_decisions(reg, "c", 0, 0, &list), MS_ERR_IO);
    assert_detail_has("stored detail");
    json_decref(detail);
    ms_registry_close(reg);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_creates_directories_and_uses_wal),
        cmocka_unit_test(open_bad_files),
        cmocka_unit_test(decisions_once_per_event),
        cmocka_unit_test(decisions_bad_input),
        cmocka_unit_test(decisions_paging),
        cmocka_unit_test(escalations_lifecycle),
        cmocka_unit_test(escalation_resolved_once_across_threads),
        cmocka_unit_test(processes_share_the_file),
        cmocka_unit_test(runs_record_steps),
        cmocka_unit_test(audit_log),
        cmocka_unit_test(damaged_json_is_reported),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, setup, teardown);
}
