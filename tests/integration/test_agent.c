/*
 * test_agent.c - the agent runner with real parts: a registry in a temp
 * dir, real commands for the pipeline steps (shell scripts started from
 * argv), the in-process bus and a real nats-server with JetStream. Covers
 * act (the pipeline, its stdin and MAINSTACK_* variables, argv passed
 * literally), escalate (recorded and published), ignore, a failing step
 * escalated and resumed on approval, commands that do not exist, hang or
 * print megabytes, the evaluator (narrowing only), redelivery, an agent that
 * was down catching up, two agents of one component, a burst of 10,000
 * events, and bad context files.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ms_test.h"
#include "nats_fixture.h"

#define WAIT_MS 20000

typedef struct fx {
    char dir[256];  /* the project root (temp) */
    char comp[300]; /* <root>/components/web-ui */
    ms_nats_server *srv;
    ms_bus *bus;
    ms_registry *reg;
} fx;

static void write_file(const char *path, const char *text, bool exec)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    if (exec)
        chmod(path, 0755);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    return buf;
}

/* The component web-ui: consumes user-api ^1.0, depends on library libfoo
 * ^2.0; autonomy minor; steps are scripts in the root (argv, no shell). */
static void write_component(fx *f, const char *change_argv, const char *extra_rules,
                            int change_timeout_s)
{
    char path[600], buf[8192];

    snprintf(path, sizeof path, "%s/components", f->dir);
    mkdir(path, 0755);
    mkdir(f->comp, 0755);
    snprintf(path, sizeof path, "%s/context", f->comp);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/context/context.json", f->comp);
    write_file(path,
               "{\"component\": \"web-ui\", \"version\": \"1.0.0\","
               " \"purpose\": \"Shows users in a browser.\","
               " \"interfaces\": {\"consumes\": [{\"name\": \"user-api\", \"version\": \"^1.0\"}]},"
               " \"dependencies\": [{\"name\": \"libfoo\", \"kind\": \"library\","
               " \"version\": \"^2.0\", \"purpose\": \"rendering\"}]}",
               false);
    snprintf(path, sizeof path, "%s/context/agent-config.json", f->comp);
    snprintf(
        buf, sizeof buf,
        "{\"component\": \"web-ui\","
        " \"monitored_topics\": [\"mainstack.interface.changed.>\", \"ops.web-ui.>\"],"
        " \"autonomy\": {\"level\": \"minor\", \"may_deploy\": false},"
        " \"rules\": [%s],"
        " \"actions\": {"
        "  \"change\": {\"argv\": [%s], \"timeout_s\": %d, \"env\": {\"FROM_CONFIG\": \"yes\"}},"
        "  \"build\": {\"argv\": [\"%s/step.sh\", \"build\"], \"timeout_s\": 30},"
        "  \"test\": {\"argv\": [\"%s/step.sh\", \"test\"], \"timeout_s\": 30}}}",
        extra_rules ? extra_rules : "", change_argv, change_timeout_s, f->dir, f->dir);
    write_file(path, buf, false);
    /* step.sh NAME [ARG]: records the step, its variables and its stdin;
     * fails when <root>/fail-<NAME> exists */
    snprintf(path, sizeof path, "%s/step.sh", f->dir);
    write_file(path,
               "#!/bin/sh\n"
               "echo \"$1 $MAINSTACK_STEP $MAINSTACK_COMPONENT $MAINSTACK_RUN_ID "
               "$FROM_CONFIG\" >> \"$MAINSTACK_ROOT/steps.txt\"\n"
               "cat > \"$MAINSTACK_ROOT/stdin-$1.json\"\n"
               "printf '%s\\n' \"$2\" > \"$MAINSTACK_ROOT/arg-$1.txt\"\n"
               "echo \"step $1 says hello\"\n"
               "if [ -e \"$MAINSTACK_ROOT/fail-$1\" ]; then echo \"$1 broke\" >&2; exit 3; fi\n"
               "exit 0\n",
               true);
}

static void default_change(fx *f, char *out, size_t cap)
{
    /* an argument a shell would expand: it must arrive literally */
    snprintf(out, cap, "\"%s/step.sh\", \"change\", \"$(touch %s/pwned) `id` *\"", f->dir, f->dir);
}

static int setup_common(void **state, bool nats)
{
    fx *f = calloc(1, sizeof *f);
    char regpath[400], change[600];
    static int seq;

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/ms-agent-test.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->comp, sizeof f->comp, "%s/components/web-ui", f->dir);
    if (nats) {
        ms_nats_server_opts o = {.jetstream = 1};

        if (ms_nats_server_start(&o, &f->srv) != MS_OK ||
            ms_bus_connect_url(ms_nats_server_url(f->srv), &f->bus) != MS_OK)
            return -1;
    } else {
        char url[64];

        snprintf(url, sizeof url, "inproc://agent-test-%d", seq++);
        if (ms_bus_connect_url(url, &f->bus) != MS_OK)
            return -1;
    }
    snprintf(regpath, sizeof regpath, "%s/.mainstack/registry.db", f->dir);
    if (ms_registry_open(regpath, &f->reg) != MS_OK)
        return -1;
    default_change(f, change, sizeof change);
    write_component(f, change, NULL, 30);
    *state = f;
    return 0;
}

static int inproc_up(void **state)
{
    return setup_common(state, false);
}

static int nats_up(void **state)
{
    return setup_common(state, true);
}

static int down(void **state)
{
    fx *f = *state;
    char cmd[300];

    ms_registry_close(f->reg);
    ms_bus_destroy(f->bus);
    ms_nats_server_stop(f->srv);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

static ms_agent *make_agent(fx *f, const char *const *evaluator)
{
    ms_agent_options o;
    ms_agent *a = NULL;

    ms_agent_options_init(&o);
    o.bus = f->bus;
    o.registry = f->reg;
    o.component_dir = f->comp;
    o.root = f->dir;
    o.evaluator_argv = evaluator;
    ms_assert_ok(ms_agent_create(&o, &a));
    return a;
}

static ms_message *iface(const char *name, const char *from, const char *to, bool breaking)
{
    ms_message *m = NULL;

    ms_assert_ok(ms_msg_interface_changed(NULL, "architect", name, from, to, breaking,
                                          "adds an optional field", &m));
    return m;
}

static void assert_has(const char *hay, const char *needle)
{
    if (hay == NULL || strstr(hay, needle) == NULL)
        fail_msg("'%s' does not contain '%s'", hay ? hay : "(null)", needle);
}

static json_t *only(json_t *list)
{
    assert_int_equal(json_array_size(list), 1);
    return json_array_get(list, 0);
}

/* --- collecting what is published ---------------------------------------- */

typedef struct seen {
    pthread_mutex_t mu;
    int n;
    char last[4096];
} seen;

static void on_seen(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    seen *s = closure;

    (void)bus;
    (void)sub;
    pthread_mutex_lock(&s->mu);
    s->n++;
    snprintf(s->last, sizeof s->last, "%.*s", (int)ms_message_len(msg),
             (const char *)ms_message_data(msg));
    pthread_mutex_unlock(&s->mu);
}

static int seen_count(seen *s)
{
    int n;

    pthread_mutex_lock(&s->mu);
    n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void wait_seen(seen *s, int n)
{
    int64_t until = ms_test_now_ms() + WAIT_MS;

    while (seen_count(s) < n && ms_test_now_ms() < until)
        ms_test_sleep_ms(5);
    assert_true(seen_count(s) >= n);
}

/* --- act, escalate, ignore ------------------------------------------------ */

static void act_runs_the_pipeline(void **state)
{
    fx *f = *state;
    seen decisions = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ms_agent *a = make_agent(f, NULL);
    ms_message *m = iface("user-api", "1.2.0", "1.3.0", false);
    json_t *list = NULL, *run = NULL;
    int64_t did = 0;
    bool fresh = false;
    char path[600];
    char *text;

    ms_assert_ok(ms_bus_subscribe(f->bus, "mainstack.agent.web-ui.decision", NULL, on_seen,
                                  &decisions, NULL));
    ms_assert_ok(ms_bus_flush(f->bus, 5000));
    ms_assert_ok(ms_agent_handle(a, m, &did, &fresh));
    assert_true(fresh);
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));

    /* the decision: recorded and published */
    ms_assert_ok(ms_registry_decisions(f->reg, "web-ui", 0, 0, &list));
    json_t *d = only(list);
    assert_string_equal(json_string_value(json_object_get(d, "decision")), "act");
    assert_string_equal(json_string_value(json_object_get(d, "event_id")), ms_message_id(m));
    json_decref(list);
    wait_seen(&decisions, 1);
    assert_has(decisions.last, "\"decision\":\"act\"");
    assert_has(decisions.last, "\"decision_id\"");

    /* the run: three steps, in order, each with the variables and stdin */
    ms_assert_ok(ms_registry_runs(f->reg, "web-ui", 0, 0, &list));
    json_int_t rid = json_integer_value(json_object_get(only(list), "id"));
    json_decref(list);
    ms_assert_ok(ms_registry_run_get(f->reg, rid, &run));
    assert_string_equal(json_string_value(json_object_get(run, "state")), "succeeded");
    json_decref(run);
    snprintf(path, sizeof path, "%s/steps.txt", f->dir);
    text = read_file(path);
    char want[256];
    /* FROM_CONFIG is the change action's own env entry: only it has it */
    snprintf(want, sizeof want,
             "change change web-ui %lld yes\nbuild build web-ui %lld \n"
             "test test web-ui %lld \n",
             (long long)rid, (long long)rid, (long long)rid);
    assert_string_equal(text, want);
    free(text);
    snprintf(path, sizeof path, "%s/stdin-change.json", f->dir);
    text = read_file(path);
    assert_has(text, "\"new_version\":\"1.3.0\"");
    assert_has(text, "\"decision\":{");
    assert_has(text, "\"context\":{");
    free(text);
    /* the argument reached the command as it was written: no shell ran */
    snprintf(path, sizeof path, "%s/arg-change.txt", f->dir);
    text = read_file(path);
    assert_has(text, "$(touch ");
    assert_has(text, "`id` *");
    free(text);
    snprintf(path, sizeof path, "%s/pwned", f->dir);
    assert_int_not_equal(access(path, F_OK), 0);
    /* each step's output in its own log */
    snprintf(path, sizeof path, "%s/.mainstack/runs/web-ui/%lld.build.log", f->dir, (long long)rid);
    text = read_file(path);
    assert_has(text, "step build says hello");
    free(text);

    ms_agent_stats st;
    ms_agent_get_stats(a, &st);
    assert_int_equal(st.acted, 1);
    assert_int_equal(st.runs_succeeded, 1);
    ms_agent_destroy(a);
    ms_message_unref(m);
}

static void breaking_change_escalates(void **state)
{
    fx *f = *state;
    seen esc = {.mu = PTHREAD_MUTEX_INITIALIZER};
    ms_agent *a = make_agent(f, NULL);
    ms_message *m = iface("user-api", "1.3.0", "2.0.0", true);
    json_t *list = NULL;
    char path[600];

    ms_assert_ok(
        ms_bus_subscribe(f->bus, "mainstack.escalation.web-ui", NULL, on_seen, &esc, NULL));
    ms_assert_ok(ms_bus_flush(f->bus, 5000));
    ms_assert_ok(ms_agent_handle(a, m, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_assert_ok(ms_registry_escalations(f->reg, "web-ui", "open", 0, 0, &list));
    json_t *e = only(list);
    assert_has(json_string_value(json_object_get(e, "reason")), "2.0.0");
    assert_non_null(json_object_get(json_object_get(e, "detail"), "input"));
    json_decref(list);
    wait_seen(&esc, 1);
    assert_has(esc.last, "\"escalation_id\"");
    /* nothing ran */
    snprintf(path, sizeof path, "%s/steps.txt", f->dir);
    assert_int_not_equal(access(path, F_OK), 0);
    ms_agent_destroy(a);
    ms_message_unref(m);
}

static void irrelevant_is_ignored_and_redelivery_is_not_redone(void **state)
{
    fx *f = *state;
    ms_agent *a = make_agent(f, NULL);
    ms_message *other = iface("billing-api", "1.0.0", "1.1.0", false);
    ms_message *mine = iface("user-api", "1.0.0", "1.0.1", false);
    json_t *list = NULL;
    bool fresh = true;
    ms_agent_stats st;

    ms_assert_ok(ms_agent_handle(a, other, NULL, &fresh));
    assert_true(fresh);
    ms_assert_ok(ms_agent_handle(a, mine, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_assert_ok(ms_agent_handle(a, mine, NULL, &fresh)); /* delivered again */
    assert_false(fresh);
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_assert_ok(ms_registry_decisions(f->reg, "web-ui", 0, 0, &list));
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "decision")),
                        "ignore");
    json_decref(list);
    ms_assert_ok(ms_registry_runs(f->reg, "web-ui", 0, 0, &list));
    assert_int_equal(json_array_size(list), 1); /* one run, not two */
    json_decref(list);
    ms_agent_get_stats(a, &st);
    assert_int_equal(st.redelivered, 1);
    assert_int_equal(st.ignored, 1);
    ms_agent_destroy(a);
    ms_message_unref(other);
    ms_message_unref(mine);
}

/* --- failing steps -------------------------------------------------------- */

static json_t *open_escalation(fx *f)
{
    json_t *list = NULL, *e;

    ms_assert_ok(ms_registry_escalations(f->reg, "web-ui", "open", 0, 0, &list));
    e = json_incref(only(list));
    json_decref(list);
    return e;
}

static void failing_step_escalates_then_resumes(void **state)
{
    fx *f = *state;
    ms_agent *a = make_agent(f, NULL);
    ms_message *m = iface("user-api", "1.2.0", "1.3.0", false);
    ms_agent_options o;
    char path[600], run_state[16];
    char *text;
    json_t *e;

    snprintf(path, sizeof path, "%s/fail-build", f->dir);
    write_file(path, "", false);
    ms_assert_ok(ms_agent_handle(a, m, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    e = open_escalation(f);
    const char *reason = json_string_value(json_object_get(e, "reason"));
    assert_has(reason, "failed at step build: exit status 3");
    assert_has(reason, "build.log");
    json_t *detail = json_object_get(e, "detail");
    assert_string_equal(json_string_value(json_object_get(detail, "step")), "build");
    assert_has(json_string_value(json_object_get(detail, "output_tail")), "build broke");
    text = read_file(json_string_value(json_object_get(detail, "log")));
    assert_has(text, "build broke");
    free(text);
    json_int_t eid = json_integer_value(json_object_get(e, "id"));
    json_decref(e);

    /* a person fixes it and approves: the pipeline resumes at build */
    unlink(path);
    ms_agent_options_init(&o);
    o.bus = f->bus;
    o.registry = f->reg;
    o.root = f->dir;
    ms_assert_ok(ms_agent_resolve_escalation(&o, eid, true, "fixed the build", "ada", run_state));
    assert_string_equal(run_state, "succeeded");
    snprintf(path, sizeof path, "%s/steps.txt", f->dir);
    text = read_file(path);
    /* change once (first run), build twice (failed, then resumed), test once */
    assert_int_equal((int)(strstr(text, "test test") != NULL), 1);
    assert_null(strstr(strstr(text, "build build") + 1, "change change"));
    free(text);
    /* resolved once */
    ms_assert_status(ms_agent_resolve_escalation(&o, eid, true, NULL, "bob", NULL), MS_ERR_STATE);
    ms_agent_destroy(a);
    ms_message_unref(m);
}

static void missing_command_escalates(void **state)
{
    fx *f = *state;
    ms_agent *a;
    ms_message *m = iface("user-api", "1.2.0", "1.3.0", false);
    json_t *e;

    write_component(f, "\"no-such-command-anywhere\", \"--go\"", NULL, 30);
    a = make_agent(f, NULL);
    ms_assert_ok(ms_agent_handle(a, m, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    e = open_escalation(f);
    assert_has(json_string_value(json_object_get(e, "reason")), "step change: could not start");
    assert_has(json_string_value(json_object_get(e, "reason")), "no-such-command-anywhere");
    json_decref(e);
    ms_agent_destroy(a);
    ms_message_unref(m);
}

static void hanging_command_is_killed(void **state)
{
    fx *f = *state;
    ms_agent *a;
    ms_message *m = iface("user-api", "1.2.0", "1.3.0", false);
    json_t *e;

    write_component(f, "\"sleep\", \"300\"", NULL, 1);
    a = make_agent(f, NULL);
    ms_assert_ok(ms_agent_handle(a, m, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    e = open_escalation(f);
    assert_has(json_string_value(json_object_get(e, "reason")), "time limit");
    assert_true(json_is_true(json_object_get(json_object_get(e, "detail"), "timed_out")));
    json_decref(e);
    ms_agent_destroy(a);
    ms_message_unref(m);
}

static void megabytes_of_output_are_bounded(void **state)
{
    fx *f = *state;
    ms_agent *a;
    ms_message *m = iface("user-api", "1.2.0", "1.3.0", false);
    json_t *list = NULL, *run = NULL;
    char path[600];
    struct stat st;

    /* 24 MiB of output: the log keeps 16 MiB and says the rest was cut */
    write_component(f, "\"head\", \"-c\", \"25165824\", \"/dev/zero\"", NULL, 60);
    a = make_agent(f, NULL);
    ms_assert_ok(ms_agent_handle(a, m, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS * 3));
    ms_assert_ok(ms_registry_runs(f->reg, "web-ui", 0, 0, &list));
    json_int_t rid = json_integer_value(json_object_get(only(list), "id"));
    json_decref(list);
    ms_assert_ok(ms_registry_run_get(f->reg, rid, &run));
    assert_string_equal(json_string_value(json_object_get(run, "state")), "succeeded");
    json_decref(run);
    snprintf(path, sizeof path, "%s/.mainstack/runs/web-ui/%lld.change.log", f->dir,
             (long long)rid);
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size >= (16 << 20) && st.st_size < (17 << 20));
    ms_agent_destroy(a);
    ms_message_unref(m);
}

/* --- the evaluator ------------------------------------------------------- */

static void evaluator_narrows_never_widens(void **state)
{
    fx *f = *state;
    char path[600], script[600];
    const char *argv[] = {script, NULL};
    ms_agent *a;
    ms_message *act = iface("user-api", "1.2.0", "1.3.0", false);
    ms_message *ign = iface("billing-api", "1.0.0", "1.1.0", false);
    json_t *list = NULL;

    /* answers escalate for user-api, act for anything else; reads its input */
    snprintf(script, sizeof script, "%s/evaluator.sh", f->dir);
    write_file(script,
               "#!/bin/sh\n"
               "input=$(cat)\n"
               "case \"$input\" in\n"
               "*'\"interface_name\":\"user-api\"'*) echo '{\"decision\":\"escalate\",\"rule\":"
               "\"llm\",\"reason\":\"the summary mentions a migration\"}' ;;\n"
               "*) echo '{\"decision\":\"act\",\"rule\":\"llm\",\"reason\":\"why not\"}' ;;\n"
               "esac\n",
               true);
    a = make_agent(f, argv);
    ms_assert_ok(ms_agent_handle(a, act, NULL, NULL));
    ms_assert_ok(ms_agent_handle(a, ign, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_assert_ok(ms_registry_decisions(f->reg, "web-ui", 0, 0, &list));
    json_t *d_ign = json_array_get(list, 0), *d_act = json_array_get(list, 1);
    /* act narrowed to escalate, by the evaluator */
    assert_string_equal(json_string_value(json_object_get(d_act, "decision")), "escalate");
    assert_string_equal(json_string_value(json_object_get(d_act, "rule")), "evaluator:llm");
    assert_has(json_string_value(json_object_get(d_act, "reason")), "migration");
    /* ignore not widened to act */
    assert_string_equal(json_string_value(json_object_get(d_ign, "decision")), "ignore");
    assert_has(json_string_value(json_object_get(d_ign, "reason")), "refused");
    json_decref(list);
    ms_agent_destroy(a);

    /* an evaluator that hangs: the policy's decision stands, with a note */
    snprintf(path, sizeof path, "%s/slow.sh", f->dir);
    write_file(path, "#!/bin/sh\nsleep 60\n", true);
    snprintf(script, sizeof script, "%s", path);
    ms_agent_options o;
    ms_agent_options_init(&o);
    o.bus = f->bus;
    o.registry = f->reg;
    o.component_dir = f->comp;
    o.root = f->dir;
    o.evaluator_argv = argv;
    o.evaluator_timeout_ms = 300;
    ms_assert_ok(ms_agent_create(&o, &a));
    ms_message *again = iface("user-api", "1.3.0", "1.3.1", false);
    ms_assert_ok(ms_agent_handle(a, again, NULL, NULL));
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_assert_ok(ms_registry_decisions(f->reg, "web-ui", 0, 1, &list));
    assert_string_equal(json_string_value(json_object_get(only(list), "decision")), "act");
    assert_has(json_string_value(json_object_get(only(list), "reason")), "evaluator ignored");
    json_decref(list);
    ms_agent_destroy(a);
    ms_message_unref(again);
    ms_message_unref(act);
    ms_message_unref(ign);
}

/* --- intake: durable, shared, bursts ------------------------------------- */

static void publish_events(fx *f, int n, bool relevant)
{
    for (int i = 0; i < n; i++) {
        char to[32];
        ms_message *m;

        snprintf(to, sizeof to, "1.%d.0", i + 1);
        m = iface(relevant ? "user-api" : "other-api", "1.0.0", to, false);
        ms_assert_ok(ms_stream_publish(f->bus, m, 10000, NULL));
        ms_message_unref(m);
    }
}

static size_t decisions_recorded(fx *f)
{
    json_t *list = NULL;
    size_t n = 0;
    int64_t before = 0;

    for (;;) {
        size_t k;

        ms_assert_ok(ms_registry_decisions(f->reg, "web-ui", before, 1000, &list));
        k = json_array_size(list);
        if (k > 0)
            before = json_integer_value(json_object_get(json_array_get(list, k - 1), "id"));
        json_decref(list);
        n += k;
        if (k == 0)
            return n;
    }
}

static void wait_decisions(fx *f, size_t n, int timeout_ms)
{
    int64_t until = ms_test_now_ms() + timeout_ms;

    while (decisions_recorded(f) < n && ms_test_now_ms() < until)
        ms_test_sleep_ms(50);
    assert_int_equal(decisions_recorded(f), n);
}

static void agent_down_catches_up(void **state)
{
    fx *f = *state;
    ms_stream_config sc;
    ms_agent *a;

    ms_stream_config_init(&sc);
    ms_assert_ok(ms_stream_ensure(f->bus, &sc));
    /* the agent was up once, then went away */
    a = make_agent(f, NULL);
    ms_assert_ok(ms_agent_start(a));
    ms_agent_destroy(a);
    publish_events(f, 5, false); /* while it is down */
    a = make_agent(f, NULL);
    ms_assert_ok(ms_agent_start(a));
    wait_decisions(f, 5, WAIT_MS);
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_agent_destroy(a);
    /* and once more: nothing is decided twice */
    a = make_agent(f, NULL);
    ms_assert_ok(ms_agent_start(a));
    ms_test_sleep_ms(500);
    ms_agent_destroy(a);
    assert_int_equal(decisions_recorded(f), 5);
}

static void two_agents_one_component(void **state)
{
    fx *f = *state;
    ms_agent *a, *b;
    ms_agent_stats sa, sb;
    json_t *list = NULL;

    write_component(f, "\"true\"", NULL, 30);
    a = make_agent(f, NULL);
    b = make_agent(f, NULL);
    ms_assert_ok(ms_agent_start(a));
    ms_assert_ok(ms_agent_start(b));
    publish_events(f, 20, true);
    wait_decisions(f, 20, WAIT_MS);
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_assert_ok(ms_agent_wait_idle(b, WAIT_MS));
    ms_agent_get_stats(a, &sa);
    ms_agent_get_stats(b, &sb);
    /* every event decided once, acted on once, by one of them */
    assert_int_equal(sa.acted + sb.acted, 20);
    assert_int_equal(sa.runs_succeeded + sb.runs_succeeded, 20);
    ms_assert_ok(ms_registry_runs(f->reg, "web-ui", 0, 1000, &list));
    assert_int_equal(json_array_size(list), 20);
    json_decref(list);
    ms_agent_destroy(a);
    ms_agent_destroy(b);
}

static void burst_of_ten_thousand(void **state)
{
    enum { N = 10000 };
    fx *f = *state;
    ms_agent_options o;
    ms_agent *a = NULL;
    ms_agent_stats st;

    ms_agent_options_init(&o);
    o.bus = f->bus;
    o.registry = f->reg;
    o.component_dir = f->comp;
    o.root = f->dir;
    o.max_pending = 256; /* far below the burst: the queue stays bounded */
    ms_assert_ok(ms_agent_create(&o, &a));
    ms_assert_ok(ms_agent_start(a));
    publish_events(f, N, false);
    wait_decisions(f, N, 120000);
    ms_agent_get_stats(a, &st);
    assert_true(st.pending <= 256);
    assert_int_equal(st.errors, 0);
    assert_int_equal(st.ignored, N);
    ms_agent_destroy(a);
}

static void inproc_start_reads_topics(void **state)
{
    fx *f = *state;
    ms_agent *a = make_agent(f, NULL);
    ms_message *m = iface("user-api", "1.2.0", "1.2.5", false);
    ms_message *op = NULL;

    ms_assert_ok(ms_agent_start(a));
    ms_assert_status(ms_agent_start(a), MS_ERR_STATE);
    ms_assert_ok(ms_stream_publish(f->bus, m, 1000, NULL));
    ms_assert_ok(ms_msg_command("ops.web-ui.restart", "ops", "restart", NULL, &op));
    ms_assert_ok(ms_bus_publish_msg(f->bus, op));
    wait_decisions(f, 2, WAIT_MS);
    ms_assert_ok(ms_agent_wait_idle(a, WAIT_MS));
    ms_assert_ok(ms_agent_stop(a, 5000));
    ms_agent_destroy(a);
    ms_message_unref(m);
    ms_message_unref(op);
}

/* --- bad input ------------------------------------------------------------ */

static void bad_context_files(void **state)
{
    fx *f = *state;
    ms_agent_options o;
    ms_agent *a = NULL;
    char path[600];

    ms_agent_options_init(&o);
    ms_assert_status(ms_agent_create(&o, &a), MS_ERR_INVALID_ARG);
    o.bus = f->bus;
    o.registry = f->reg;
    o.component_dir = "/nonexistent/component";
    ms_assert_status(ms_agent_create(&o, &a), MS_ERR_IO);
    assert_has(ms_last_error(), "/nonexistent/component");
    o.component_dir = f->comp;
    snprintf(path, sizeof path, "%s/context/agent-config.json", f->comp);
    write_file(path, "{\"component\": \"web-ui\",\n  \"autonomy\": {\"level\": }}", false);
    ms_assert_status(ms_agent_create(&o, &a), MS_ERR_PARSE);
    assert_has(ms_last_error(), "agent-config.json:2:");
    write_file(path, "{\"component\": \"web-ui\", \"autonomy\": {\"level\": \"total\"}}", false);
    ms_assert_status(ms_agent_create(&o, &a), MS_ERR_SCHEMA);
    assert_has(ms_last_error(), "/autonomy/level");
    write_file(path, "{\"component\": \"web-ui\", \"autonomy\": {\"level\": \"minor\"}, \"x\": 1}",
               false);
    ms_assert_status(ms_agent_create(&o, &a), MS_ERR_SCHEMA);
    assert_has(ms_last_error(), "/x");
    assert_null(a);
    ms_assert_status(ms_agent_handle(NULL, NULL, NULL, NULL), MS_ERR_INVALID_ARG);
    ms_agent_destroy(NULL);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(act_runs_the_pipeline, inproc_up, down),
        cmocka_unit_test_setup_teardown(breaking_change_escalates, inproc_up, down),
        cmocka_unit_test_setup_teardown(irrelevant_is_ignored_and_redelivery_is_not_redone,
                                        inproc_up, down),
        cmocka_unit_test_setup_teardown(failing_step_escalates_then_resumes, inproc_up, down),
        cmocka_unit_test_setup_teardown(missing_command_escalates, inproc_up, down),
        cmocka_unit_test_setup_teardown(hanging_command_is_killed, inproc_up, down),
        cmocka_unit_test_setup_teardown(megabytes_of_output_are_bounded, inproc_up, down),
        cmocka_unit_test_setup_teardown(evaluator_narrows_never_widens, inproc_up, down),
        cmocka_unit_test_setup_teardown(inproc_start_reads_topics, inproc_up, down),
        cmocka_unit_test_setup_teardown(agent_down_catches_up, nats_up, down),
        cmocka_unit_test_setup_teardown(two_agents_one_component, nats_up, down),
        cmocka_unit_test_setup_teardown(burst_of_ten_thousand, nats_up, down),
        cmocka_unit_test_setup_teardown(bad_context_files, inproc_up, down),
    };

    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
