/*
 * cmd_promote.c - the promotion side of the deploy verbs: the step `mstack
 * deploy` runs once the comparison passed, `mstack rollback COMPONENT` and
 * `mstack history COMPONENT`.
 *
 * Promotion (cli_deploy_promote_step): connect to the NATS server the
 * hosts run on (cli_connect), ms_deploy_promote to the candidate's
 * artifact <root>/.mainstack/artifacts/<component>/<version>/<component>.so
 * (the active version's artifact is given as previous_artifact, so a
 * switch that fails half-way is swapped back). On success the candidate
 * becomes active, the version that was active becomes previous and an
 * older previous goes back to candidate (there is one previous: what
 * rollback returns to). On any failure the candidate goes back to state
 * candidate (it passed its tests; what failed is the promotion, so a later
 * deploy may try again); rejected stays reserved for failing tests. The
 * deployment record gets the step "promote" with the outcome promoted,
 * no-hosts (nothing runs the component: tested, not serving), failed (a
 * host refused or did not answer: the report names it) or error (no
 * server), and the per-host report as its detail.
 *
 * Rollback takes the deploy lock, finds the version in state previous and
 * runs ms_deploy_rollback to it (no test run): active -> rolled-back,
 * previous -> active, recorded as a deployment whose step is "rollback".
 *
 * History lists the deployments of a component newest first, each with
 * its steps and, when it did not go through, the reason.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mainstack/deploy.h>

#include "cli.h"

/* ---- the report ------------------------------------------------------------ */

static const char *host_result(const ms_promote_host *h)
{
    if (h->swapped_back)
        return "swapped-back";
    if (h->noop)
        return "noop";
    if (h->switched)
        return "switched";
    if (h->error[0] != '\0')
        return "failed";
    if (h->aborted)
        return "aborted";
    if (h->prepared)
        return "prepared";
    return "no answer";
}

json_t *cli_promote_report_json(const ms_promote_report *r)
{
    json_t *o, *hosts;

    o = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:I, s:I, s:s, s:s, s:[]}", "deployment_id",
                  r->deployment_id, "from_version", r->from_version, "to_version", r->to_version,
                  "ok", r->ok, "rolled_back", r->rolled_back, "mixed", r->mixed, "instances_found",
                  (json_int_t)r->instances_found, "total_ms", (json_int_t)r->total_ms,
                  "failed_host", r->failed_host, "error", r->error, "hosts");
    if (o == NULL)
        return NULL;
    hosts = json_object_get(o, "hosts");
    for (size_t i = 0; i < r->nhosts && i < MS_PROMOTE_MAX_HOSTS; i++) {
        const ms_promote_host *h = &r->hosts[i];
        json_array_append_new(
            hosts,
            json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "host", h->host, "name",
                      h->name, "instances", (json_int_t)h->instances, "result", host_result(h),
                      "from_version", h->from_version, "to_version", h->to_version, "serving",
                      h->active_version, "error", h->error, "switch_us",
                      (json_int_t)h->report.switch_us, "drained", (json_int_t)h->report.drained));
    }
    return o;
}

void cli_promote_report_print(const ms_promote_report *r, FILE *f)
{
    static const char *const headers[] = {"HOST",    "INSTANCES", "FROM",  "TO",
                                          "SERVING", "RESULT",    "DETAIL"};
    cli_table t = {0};

    if (cli_table_init(&t, 7, headers) != CLI_EXIT_OK)
        return;
    for (size_t i = 0; i < r->nhosts && i < MS_PROMOTE_MAX_HOSTS; i++) {
        const ms_promote_host *h = &r->hosts[i];
        char n[24], detail[700];
        const char *cells[7];

        snprintf(n, sizeof n, "%zu", h->instances);
        if (h->error[0] != '\0')
            snprintf(detail, sizeof detail, "%s", h->error);
        else if (h->switched)
            snprintf(detail, sizeof detail, "switch %lld us, %llu drained",
                     (long long)h->report.switch_us, (unsigned long long)h->report.drained);
        else
            detail[0] = '\0';
        cells[0] = h->name[0] != '\0' ? h->name : h->host;
        cells[1] = n;
        cells[2] = h->from_version;
        cells[3] = h->to_version;
        cells[4] = h->active_version;
        cells[5] = host_result(h);
        cells[6] = detail;
        if (cli_table_add(&t, cells) != CLI_EXIT_OK)
            break;
    }
    cli_table_print(&t, f);
    cli_table_reset(&t);
}

/* ---- version states ------------------------------------------------------- */

/* The version of component in state (NULL: none); a new string. */
static char *version_in(const json_t *rows, const char *state)
{
    size_t i;
    json_t *row;

    json_array_foreach(rows, i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "state")), state) == 0)
            return strdup(json_string_value(json_object_get(row, "version")));
    }
    return NULL;
}

/* "1.1.0 active, 1.2.0 rolled-back" into out. */
static void describe_versions(const json_t *rows, char *out, size_t cap)
{
    size_t i, n = 0;
    json_t *row;

    out[0] = '\0';
    json_array_foreach(rows, i, row)
    {
        int k = snprintf(out + n, cap - n, "%s%s %s", i ? ", " : "",
                         json_string_value(json_object_get(row, "version")),
                         json_string_value(json_object_get(row, "state")));
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
}

/* ---- promotion -------------------------------------------------------------- */

/* Classify a failed promote/rollback: the outcome and the sentence. */
const char *cli_deploy_failure_outcome(ms_status s, const ms_promote_report *rep)
{
    (void)rep;
    if (s == MS_ERR_NOT_FOUND)
        return "no-hosts";
    if (s == MS_ERR_STATE || s == MS_ERR_TIMEOUT)
        return "failed";
    return "error";
}

/* what: "promotion" or "rollback"; done: "promoted" or "rolled back". */
void cli_deploy_print_failure(const char *what, const char *done, const char *component,
                              const char *version, ms_status s, const ms_promote_report *rep)
{
    if (s == MS_ERR_NOT_FOUND) {
        cli_error("no running host runs %s: %s was not %s, nothing serves it (start the "
                  "component with mstack run, then try again)",
                  component, version, done);
        return;
    }
    cli_error("the %s of %s to %s failed%s%s: %s%s", what, component, version,
              rep->failed_host[0] ? " at " : "", rep->failed_host,
              rep->error[0] ? rep->error : ms_last_error(),
              rep->rolled_back ? " (aborted on every host: each still serves what it served)"
              : rep->mixed     ? " (WARNING: the hosts are mixed, see the table)"
                               : "");
}

/* ---- intents and the fault hook ---------------------------------------------- */

void cli_deploy_fault(const char *point)
{
    const char *f = getenv("MAINSTACK_DEPLOY_FAULT");
    size_t n = strlen(point);
    bool stop;

    if (f == NULL || strncmp(f, point, n) != 0 || (f[n] != '\0' && f[n] != ':'))
        return;
    stop = strcmp(f + n, ":stop") == 0;
    fprintf(stderr, "mstack: MAINSTACK_DEPLOY_FAULT: %s at %s (pid %ld)\n",
            stop ? "stopping" : "killing myself", point, (long)getpid());
    fflush(stdout);
    fflush(stderr);
    (void)raise(stop ? SIGSTOP : SIGKILL);
}

/* The hosts of a report as the intent records them. */
static json_t *hosts_json(const ms_promote_report *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < r->nhosts && i < MS_PROMOTE_MAX_HOSTS; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:b}", "host", r->hosts[i].host, "name",
                                           r->hosts[i].name, "instances",
                                           (json_int_t)r->hosts[i].instances, "switched",
                                           r->hosts[i].switched));
    return a;
}

/* What a promotion's or a rollback's on_step does: record that the switch
 * begins (promotion: step "promote" outcome "switching", with the hosts
 * prepared) and stop at the fault points of the test hook. */
typedef struct step_ctx {
    ms_registry *reg;
    int64_t dep_id;
    const json_t *intent; /* borrowed: the "preparing" detail */
    const ms_promote_report *rep;
    bool rollback;
    int switched;
} step_ctx;

static void on_switch_step(void *ud, const char *step, const char *host)
{
    step_ctx *c = ud;
    (void)host;
    if (strcmp(step, "prepared") == 0 && !c->rollback) {
        json_t *d = json_deep_copy(c->intent);
        cli_deploy_fault("after-prepare");
        if (d != NULL) {
            json_object_set_new(d, "hosts", hosts_json(c->rep));
            json_object_set_new(d, "instances_found",
                                json_integer((json_int_t)c->rep->instances_found));
        }
        /* durable before the first host switches: a survivor knows hosts
         * may be mixed */
        if (d == NULL ||
            ms_registry_deployment_update(c->reg, c->dep_id, "promote", "switching", d) != MS_OK)
            cli_error("warning: recording that the switch begins failed: %s", ms_last_error());
        json_decref(d);
    } else if (strcmp(step, "switched") == 0 && c->switched++ == 0) {
        cli_deploy_fault(c->rollback ? "rollback-switch" : "between-switches");
    }
}

/* A new id for a promotion or rollback on the hosts, recorded before it
 * starts so that a survivor can abort or finish it. */
static void switch_id(int64_t dep_id, const char *what, char *out, size_t cap)
{
    char id[MS_ID_LEN + 1];
    ms_id_new(id);
    snprintf(out, cap, "d%lld-%s-%s", (long long)dep_id, what, id);
}

/* Roll the hosts of component back from `from` to `to` (artifacts given),
 * recording the intent (step, outcome "rolling-back") first and, on
 * success, the states (from -> rolled-back, to -> active) with the step in
 * one transaction. rollback_id: the id on the hosts (NULL: a new one).
 * extra (borrowed, may be NULL): merged into the intent. base (borrowed,
 * may be NULL): the recorded detail is a copy of it with the report as
 * "rollback"; without it, the report itself (with the intent). *rep is the
 * caller's; *detail_out (a new reference) is that detail. Returns the
 * ms_deploy_rollback status (the step is recorded only on MS_OK: the
 * caller records a failure). */
ms_status cli_deploy_rollback_switch(ms_registry *reg, ms_bus *bus, const cli_deploy_request *rq,
                                     int64_t dep_id, const char *step, const char *from,
                                     const char *to, const char *rollback_id, const json_t *extra,
                                     const json_t *base, ms_promote_report *rep,
                                     json_t **detail_out)
{
    char art[4096], from_art[4096], rid[200];
    ms_promote_options po;
    step_ctx sc;
    json_t *intent = NULL, *detail = NULL;
    ms_status s;

    *detail_out = NULL;
    memset(rep, 0, sizeof *rep);
    if ((s = ms_deploy_artifact_path(rq->root, rq->component, to, art, sizeof art)) != MS_OK ||
        (from != NULL && (s = ms_deploy_artifact_path(rq->root, rq->component, from, from_art,
                                                      sizeof from_art)) != MS_OK)) {
        snprintf(rep->error, sizeof rep->error, "%s", ms_last_error());
        *detail_out = json_pack("{s:s}", "error", rep->error);
        return s;
    }
    if (rollback_id != NULL)
        snprintf(rid, sizeof rid, "%s", rollback_id);
    else
        switch_id(dep_id, "rollback", rid, sizeof rid);
    intent = json_pack("{s:s, s:s?, s:s, s:s, s:s?}", "rollback_id", rid, "from", from, "to", to,
                       "artifact", art, "previous_artifact", from != NULL ? from_art : NULL);
    if (intent != NULL && extra != NULL)
        json_object_update_missing(intent, (json_t *)extra);
    if (intent == NULL ||
        ms_registry_deployment_update(reg, dep_id, step, "rolling-back", intent) != MS_OK) {
        s = intent == NULL ? MS_ERR_NO_MEMORY : MS_ERR_IO;
        snprintf(rep->error, sizeof rep->error, "recording the rollback's intent: %s",
                 ms_last_error());
        *detail_out = json_pack("{s:s}", "error", rep->error);
        json_decref(intent);
        return s;
    }
    ms_promote_options_init(&po);
    if (rq->prepare_timeout_ms > 0)
        po.prepare_timeout_ms = rq->prepare_timeout_ms;
    po.previous_artifact = from != NULL ? from_art : NULL;
    po.deployment_id = rid;
    memset(&sc, 0, sizeof sc);
    sc.reg = reg;
    sc.dep_id = dep_id;
    sc.rep = rep;
    sc.rollback = true;
    po.on_step = on_switch_step;
    po.on_step_ud = &sc;
    s = ms_deploy_rollback(bus, rq->component, to, art, &po, rep);
    if (base != NULL) {
        detail = json_deep_copy(base);
        if (detail != NULL)
            json_object_set_new(detail, "rollback", cli_promote_report_json(rep));
    } else {
        detail = cli_promote_report_json(rep);
        if (detail != NULL)
            json_object_set(detail, "intent", intent);
    }
    if (s == MS_OK) {
        ms_version_change ch[2];
        size_t n = 0;
        if (from != NULL)
            ch[n++] = (ms_version_change){from, "rolled-back"};
        ch[n++] = (ms_version_change){to, "active"};
        if (ms_registry_version_transition(reg, rq->component, ch, n, dep_id, step, "rolled-back",
                                           detail) != MS_OK)
            cli_error("rolled back, but recording the version states failed: %s (mstack deploy "
                      "--resume %s records them)",
                      ms_last_error(), rq->component);
    }
    json_decref(intent);
    *detail_out = detail;
    return s;
}

/* ---- the watch window ------------------------------------------------------- */

/* One sample: every answer to subject within timeout_ms as a JSON array (a
 * new reference; empty when nobody answered, NULL when asking failed). */
static json_t *sample(ms_bus *bus, const char *subject, int timeout_ms)
{
    const char *subjects[1] = {subject};
    ms_message **replies = NULL;
    size_t n = 0;
    json_t *list;

    if (cli_gather(bus, subjects, 1, NULL, 0, timeout_ms, 0, &replies, &n) != MS_OK)
        return NULL;
    list = json_array();
    for (size_t i = 0; list != NULL && i < n; i++) {
        json_t *v = NULL;
        if (ms_message_header(replies[i], "Nats-Service-Error") != NULL ||
            ms_message_json(replies[i], &v) != MS_OK)
            continue;
        if (json_array_append_new(list, v) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    cli_gather_free(replies, n);
    return list;
}

json_t *cli_deploy_sample_stats(ms_bus *bus, const char *component)
{
    char subject[MS_SUBJECT_MAX + 1];
    snprintf(subject, sizeof subject, "$SRV.STATS.%s", component);
    return sample(bus, subject, 300);
}

static json_t *sample_health(ms_bus *bus, const char *component)
{
    char subject[MS_SUBJECT_MAX + 1];
    snprintf(subject, sizeof subject, "mainstack.health.%s.get", component);
    return sample(bus, subject, 300);
}

static json_t *verdict_json(const ms_watch_verdict *v, int window_ms, int64_t watched_ms)
{
    return json_pack("{s:s, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:i, s:I, s:s}", "check",
                     v->check[0] ? v->check : "none", "value", v->value, "threshold", v->threshold,
                     "previous_rate", v->previous_rate, "previous_requests",
                     (json_int_t)v->previous_requests, "previous_errors",
                     (json_int_t)v->previous_errors, "requests", (json_int_t)v->requests, "errors",
                     (json_int_t)v->errors, "window_ms", window_ms, "watched_ms",
                     (json_int_t)watched_ms, "detail", v->detail);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_deploy_watch(ms_registry *reg, ms_bus *bus, const cli_deploy_request *rq,
                     const char *version, const char *active, const json_t *previous,
                     int64_t dep_id, json_t **result)
{
    const char *component = rq->component;
    const bool json_mode = rq->quiet;
    const int window_ms = rq->watch_ms;
    ms_watch_limits lim;
    ms_watch_verdict v;
    json_t *start = NULL, *now = NULL, *health = NULL, *detail = NULL, *intent;
    const char *outcome = "error";
    int64_t t0 = now_ms(), watched = 0;
    int rc = CLI_EXIT_FAILURE;
    bool first = true, recorded = false;

    *result = NULL;
    ms_watch_limits_init(&lim);
    lim.max_error_rate_increase = rq->max_error_rate_increase;
    lim.min_requests = (uint64_t)rq->min_requests;
    memset(&v, 0, sizeof v);
    /* the intent: a survivor knows the window was open, with what limits */
    intent =
        json_pack("{s:s, s:s?, s:i, s:i, s:i, s:O?}", "version", version, "previous", active,
                  "window_ms", window_ms, "max_error_rate_increase", rq->max_error_rate_increase,
                  "min_requests", rq->min_requests, "baseline", previous);
    if (intent == NULL ||
        ms_registry_deployment_update(reg, dep_id, "watch", "watching", intent) != MS_OK)
        cli_error("warning: recording the watch window failed: %s", ms_last_error());
    json_decref(intent);
    if (!json_mode) {
        printf("watching %s %s for %d ms (error rate at most the previous + %.1f points over "
               "at least %llu requests, every instance healthy)\n",
               component, version, window_ms, lim.max_error_rate_increase,
               (unsigned long long)lim.min_requests);
        fflush(stdout);
    }
    start = cli_deploy_sample_stats(bus, component);
    if (start == NULL) {
        cli_error("watching %s: asking $SRV.STATS failed: %s", component, ms_last_error());
        goto record;
    }
    for (;;) {
        int64_t left = window_ms - (now_ms() - t0);
        if (left > 0)
            usleep((useconds_t)(left < 500 ? left : 500) * 1000);
        json_decref(now);
        json_decref(health);
        now = cli_deploy_sample_stats(bus, component);
        health = sample_health(bus, component);
        watched = now_ms() - t0;
        if (now == NULL || health == NULL) {
            cli_error("watching %s: sampling failed: %s", component, ms_last_error());
            goto record;
        }
        if (first) {
            cli_deploy_fault("watch");
            first = false;
        }
        if (ms_watch_judge(component, previous, start, now, health, &lim, &v) != MS_OK) {
            cli_error("watching %s: %s", component, ms_last_error());
            goto record;
        }
        if (v.degraded || watched >= window_ms)
            break;
    }
    detail = verdict_json(&v, window_ms, watched);
    if (!v.degraded) {
        outcome = "permanent";
        rc = CLI_EXIT_OK;
        if (!json_mode)
            printf("%s %s is permanent after %lld ms: %s\n", component, version, (long long)watched,
                   v.detail);
        goto record;
    }
    if (!json_mode) {
        printf("watch check %s failed after %lld ms: %s (value %.1f, threshold %.1f)\n", v.check,
               (long long)watched, v.detail, v.value, v.threshold);
        fflush(stdout);
    }
    if (active == NULL) {
        outcome = "degraded";
        cli_error("%s %s is degraded (%s) but no previous version exists to roll back to",
                  component, version, v.detail);
        goto record;
    }
    {
        ms_promote_report *rep = calloc(1, sizeof *rep);
        json_t *rb = NULL, *verdict = NULL;
        ms_status s;

        if (rep == NULL) {
            cli_error("cannot roll back: out of memory");
            goto record;
        }
        verdict = json_pack("{s:O}", "verdict", detail);
        s = cli_deploy_rollback_switch(reg, bus, rq, dep_id, "watch", version, active, NULL,
                                       verdict, detail, rep, &rb);
        json_decref(verdict);
        if (rb != NULL) {
            json_decref(detail);
            detail = rb;
        }
        if (s == MS_OK) {
            outcome = "rolled-back";
            recorded = true; /* with the states, by cli_deploy_rollback_switch */
            if (!json_mode) {
                cli_promote_report_print(rep, stdout);
                printf("rolled %s back to %s on %zu host%s: check %s failed\n", component, active,
                       rep->nhosts, rep->nhosts == 1 ? "" : "s", v.check);
            }
            cli_error("%s %s was rolled back to %s: check %s failed: %s", component, version,
                      active, v.check, v.detail);
        } else {
            outcome = cli_deploy_failure_outcome(s, rep);
            if (!json_mode && rep->nhosts > 0)
                cli_promote_report_print(rep, stdout);
            fflush(stdout);
            cli_deploy_print_failure("rollback", "rolled back", component, active, s, rep);
        }
        free(rep);
    }
record:
    if (detail == NULL)
        detail = json_pack("{s:s}", "error", ms_last_error());
    if (!recorded &&
        ms_registry_deployment_update(reg, dep_id, "watch", outcome, detail) != MS_OK) {
        cli_error("recording the deployment: %s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
    }
    *result = json_pack("{s:s, s:o*}", "outcome", outcome, "report", detail);
    json_decref(start);
    json_decref(now);
    json_decref(health);
    return rc;
}

int cli_deploy_promote_step(ms_registry *reg, const cli_deploy_request *rq, const char *active,
                            int64_t dep_id, bool json_mode, json_t **result)
{
    char art[4096], prev_art[4096], pid[200];
    ms_promote_options po;
    ms_promote_report *rep = NULL;
    ms_bus *bus = NULL;
    json_t *detail = NULL, *previous = NULL, *watch = NULL, *intent = NULL;
    const char *outcome = "error";
    int rc;
    ms_status s;
    step_ctx sc;

    const char *root = rq->root, *component = rq->component, *version = rq->version;
    const char *nats_url = rq->nats_url;
    const int prepare_timeout_ms = rq->prepare_timeout_ms, window = rq->watch_ms;

    *result = NULL;
    if (ms_deploy_artifact_path(root, component, version, art, sizeof art) != MS_OK ||
        (active != NULL &&
         ms_deploy_artifact_path(root, component, active, prev_art, sizeof prev_art) != MS_OK)) {
        cli_error("%s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
        detail = json_pack("{s:s}", "error", ms_last_error());
        goto record;
    }
    if ((rc = cli_connect_url(nats_url, "deploy", &bus)) != CLI_EXIT_OK) {
        detail =
            json_pack("{s:s, s:s}", "error", "cannot connect to the NATS server", "url", nats_url);
        goto record;
    }
    rep = calloc(1, sizeof *rep);
    if (rep == NULL) {
        cli_error("out of memory");
        rc = CLI_EXIT_FAILURE;
        goto record;
    }
    if (window > 0)
        previous = cli_deploy_sample_stats(bus, component); /* the baseline: still active */
    switch_id(dep_id, "promote", pid, sizeof pid);
    intent = json_pack("{s:s, s:s?, s:s, s:s, s:s?, s:O?}", "promote_id", pid, "from", active, "to",
                       version, "artifact", art, "previous_artifact",
                       active != NULL ? prev_art : NULL, "baseline", previous);
    /* durable before any host prepares: a survivor can abort it by its id */
    if (intent == NULL ||
        ms_registry_deployment_update(reg, dep_id, "promote", "preparing", intent) != MS_OK) {
        cli_error("recording the promotion's intent: %s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
        detail = json_pack("{s:s}", "error", ms_last_error());
        goto record;
    }
    ms_promote_options_init(&po);
    po.previous_artifact = active != NULL ? prev_art : NULL;
    po.deployment_id = pid;
    if (prepare_timeout_ms > 0)
        po.prepare_timeout_ms = prepare_timeout_ms;
    memset(&sc, 0, sizeof sc);
    sc.reg = reg;
    sc.dep_id = dep_id;
    sc.intent = intent;
    sc.rep = rep;
    po.on_step = on_switch_step;
    po.on_step_ud = &sc;
    if (!json_mode) {
        printf("promoting %s %s on every host that runs it\n", component, version);
        fflush(stdout);
    }
    s = ms_deploy_promote(bus, component, version, art, &po, rep);
    detail = cli_promote_report_json(rep);
    if (s == MS_OK) {
        outcome = "promoted";
        /* the states and the step together: never two actives, never a
         * promotion recorded without its states */
        if (ms_registry_version_promote(reg, component, version, dep_id, "promote", "promoted",
                                        detail) != MS_OK) {
            cli_error("promoted, but recording the version states failed: %s (mstack deploy "
                      "--resume %s records them)",
                      ms_last_error(), component);
            rc = CLI_EXIT_FAILURE;
        }
        if (!json_mode) {
            cli_promote_report_print(rep, stdout);
            printf("promoted %s %s on %zu host%s (%lld ms)%s%s%s\n", component, version,
                   rep->nhosts, rep->nhosts == 1 ? "" : "s", (long long)rep->total_ms,
                   active ? ": " : "", active ? active : "", active ? " is previous" : "");
            fflush(stdout);
        }
        cli_deploy_fault("after-switch");
    } else {
        outcome = cli_deploy_failure_outcome(s, rep);
        rc = CLI_EXIT_FAILURE;
        if (detail != NULL && s == MS_ERR_NOT_FOUND)
            json_object_set_new(detail, "error",
                                json_string("no running host runs the component: tested but "
                                            "not serving"));
        if (!json_mode && rep->nhosts > 0)
            cli_promote_report_print(rep, stdout);
        fflush(stdout);
        cli_deploy_print_failure("promotion", "promoted", component, version, s, rep);
    }
record:
    if (strcmp(outcome, "promoted") != 0) {
        /* not promoted: back where it was, with the step, in one transaction */
        ms_version_change ch = {version, rq->back_state != NULL ? rq->back_state : "candidate"};
        if (ms_registry_version_transition(reg, component, &ch, 1, dep_id, "promote", outcome,
                                           detail) != MS_OK) {
            cli_error("recording the deployment: %s", ms_last_error());
            rc = CLI_EXIT_FAILURE;
        }
    }
    if (strcmp(outcome, "promoted") == 0 && rc == CLI_EXIT_OK && window > 0) {
        rc = cli_deploy_watch(reg, bus, rq, version, active, previous, dep_id, &watch);
        if (watch != NULL)
            outcome = json_string_value(json_object_get(watch, "outcome"));
    }
    *result = json_pack("{s:s, s:o*, s:o*}", "outcome", outcome, "report", detail, "watch", watch);
    json_decref(previous);
    json_decref(intent);
    ms_bus_destroy(bus);
    free(rep);
    return rc;
}

/* ---- rollback ---------------------------------------------------------------- */

int cli_rollback_run(const cli_deploy_request *rq, const cli_deploy_hooks *hooks, json_t **result)
{
    const char *component = rq->component, *root = rq->root;
    const bool json_mode = rq->quiet;
    char holder[400], art[4096], list[1024];
    ms_registry *reg = NULL;
    ms_bus *bus = NULL;
    ms_promote_report *rep = NULL;
    json_t *rows = NULL, *detail = NULL, *request = NULL, *resumed = NULL;
    char *active = NULL, *previous = NULL;
    const char *outcome = "error";
    bool locked = false, acted = false, recorded = false;
    int64_t dep_id = 0;
    int rc;
    ms_status s;

    *result = NULL;
    if ((rc = cli_open_registry(root, &reg)) != CLI_EXIT_OK)
        return rc;
    rc = CLI_EXIT_FAILURE;
    if (hooks != NULL && hooks->progress != NULL)
        hooks->progress(hooks->ud, CLI_DEPLOY_LOCK, "taking the deploy lock");
    cli_deploy_holder(holder, sizeof holder);
    if (cli_deploy_lock(reg, component, holder) != CLI_EXIT_OK)
        goto cleanup;
    locked = true;
    /* an interrupted deployment is finished or undone first */
    if (cli_deploy_resume(reg, rq, holder, &acted, &resumed) != CLI_EXIT_OK) {
        cli_error("the unfinished deployment of %s could not be resumed: not rolling back",
                  component);
        goto cleanup;
    }
    if (ms_registry_versions(reg, component, &rows) != MS_OK) {
        cli_error("%s", ms_last_error());
        goto cleanup;
    }
    if (json_array_size(rows) == 0) {
        cli_error("no versions of '%s' are recorded: nothing to roll back to", component);
        goto cleanup;
    }
    active = version_in(rows, "active");
    previous = version_in(rows, "previous");
    if (previous == NULL) {
        describe_versions(rows, list, sizeof list);
        cli_error("%s has no version in state previous to roll back to (versions: %s)", component,
                  list);
        goto cleanup;
    }
    if (ms_deploy_artifact_path(root, component, previous, art, sizeof art) != MS_OK) {
        cli_error("%s", ms_last_error());
        goto cleanup;
    }
    request =
        json_pack("{s:s, s:i}", "verb", "rollback", "prepare_timeout_ms", rq->prepare_timeout_ms);
    if (ms_registry_deployment_start(reg, component, active, previous, holder, request, NULL, 0,
                                     &dep_id) != MS_OK) {
        cli_error("%s", ms_last_error());
        goto cleanup;
    }
    if (hooks != NULL && hooks->cancelled != NULL && hooks->cancelled(hooks->ud)) {
        /* nothing switched: the active version keeps serving */
        outcome = "cancelled";
        detail = json_pack("{s:s}", "error", "cancelled before the switch: nothing was switched");
        goto record;
    }
    if (hooks != NULL && hooks->progress != NULL)
        hooks->progress(hooks->ud, CLI_DEPLOY_PROMOTE,
                        "switching every host to the previous "
                        "version");
    if ((rc = cli_connect_url(rq->nats_url, "rollback", &bus)) != CLI_EXIT_OK) {
        detail = json_pack("{s:s, s:s}", "error", "cannot connect to the NATS server", "url",
                           rq->nats_url);
        goto record;
    }
    rc = CLI_EXIT_FAILURE;
    rep = calloc(1, sizeof *rep);
    if (rep == NULL) {
        cli_error("out of memory");
        goto record;
    }
    if (!json_mode) {
        printf("rolling %s back from %s to %s (no test run)\n", component,
               active ? active : "(none active)", previous);
        fflush(stdout);
    }
    s = cli_deploy_rollback_switch(reg, bus, rq, dep_id, "rollback", active, previous, NULL, NULL,
                                   NULL, rep, &detail);
    if (s == MS_OK) {
        outcome = "rolled-back";
        recorded = true;
        rc = CLI_EXIT_OK;
        if (!json_mode) {
            cli_promote_report_print(rep, stdout);
            printf("rolled %s back to %s on %zu host%s (%lld ms)\n", component, previous,
                   rep->nhosts, rep->nhosts == 1 ? "" : "s", (long long)rep->total_ms);
        }
    } else {
        outcome = cli_deploy_failure_outcome(s, rep);
        if (!json_mode && rep->nhosts > 0)
            cli_promote_report_print(rep, stdout);
        fflush(stdout);
        cli_deploy_print_failure("rollback", "rolled back", component, previous, s, rep);
    }
record:
    if (!recorded &&
        ms_registry_deployment_update(reg, dep_id, "rollback", outcome, detail) != MS_OK) {
        cli_error("recording the deployment: %s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
    }
    (void)ms_registry_audit(reg, rq->actor ? rq->actor : holder, "rollback", component, outcome,
                            detail);
    *result = json_pack("{s:s, s:I, s:s?, s:s, s:s, s:O*, s:O*}", "component", component,
                        "deployment", (json_int_t)dep_id, "from", active, "to", previous, "outcome",
                        outcome, "report", detail, "resumed", resumed);
    if (hooks != NULL && hooks->progress != NULL)
        hooks->progress(hooks->ud, CLI_DEPLOY_DONE, outcome);
cleanup:
    if (locked && ms_registry_deploy_unlock(reg, component, holder) != MS_OK) {
        cli_error("releasing the deploy lock: %s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
    }
    ms_bus_destroy(bus);
    free(rep);
    free(active);
    free(previous);
    json_decref(detail);
    json_decref(rows);
    json_decref(request);
    json_decref(resumed);
    ms_registry_close(reg);
    return rc;
}

static int run_rollback(const cli_verb *verb, const cli_args *a)
{
    cli_deploy_request rq = {0};
    char root[4096];
    json_t *result = NULL;
    int rc;

    rq.component = a->positional[0];
    rq.quiet = cli_flag(a, "json");
    rq.nats_url = cli_client_url(a);
    if ((rc = cli_check_name(verb, "component", rq.component, true)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "prepare-timeout", 15000, 100, 600000, &rq.prepare_timeout_ms)) !=
            CLI_EXIT_OK ||
        (rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc;
    rq.root = root;
    rc = cli_rollback_run(&rq, NULL, &result);
    if (rq.quiet && result != NULL)
        cli_print_json(result, true);
    json_decref(result);
    return rc;
}

static const cli_option rollback_options[] = {
    {"root", 'C', "DIR", false, "the project root (default: found from the current directory)"},
    {"nats", 's', "URL", false, "the NATS server the hosts run on (default $NATS_URL)"},
    {"prepare-timeout", 0, "MS", false, "how long every host has to prepare (default 15000)"},
    {"json", 0, NULL, false, "print the outcome and the per-host report as JSON"},
    {NULL, 0, NULL, false, NULL},
};

const cli_verb cli_verb_rollback = {
    .name = "rollback",
    .usage = "COMPONENT [--nats URL] [--prepare-timeout MS] [--json]",
    .summary = "switch every host back to the previous version (no test run)",
    .description = "Takes the component's deploy lock and switches every host that runs COMPONENT\n"
                   "back to the version in state previous (the one the last promotion replaced),\n"
                   "by the same all-or-nothing path as a promotion, without running tests. On\n"
                   "success the active version becomes rolled-back and the previous one active.\n"
                   "The rollback is recorded as a deployment (step rollback). With no previous\n"
                   "version the versions that exist are named and the exit code is 1.\n",
    .options = rollback_options,
    .min_positional = 1,
    .max_positional = 1,
    .examples = "  mstack rollback user-service\n"
                "  mstack rollback user-service --nats nats://10.0.0.5:4222 --json\n",
    .run = run_rollback,
};

/* ---- history ------------------------------------------------------------------ */

/* Why a deployment did not go through ("" when it did). */
static void reason_of(const json_t *dep, char *out, size_t cap)
{
    const json_t *res = json_object_get(json_object_get(dep, "detail"), "result");
    const json_t *failures = json_object_get(res, "failures"), *fl;
    const char *err = json_string_value(json_object_get(res, "error"));
    const char *host = json_string_value(json_object_get(res, "failed_host"));
    size_t i, n = 0;

    out[0] = '\0';
    if (json_array_size(failures) > 0) {
        n = (size_t)snprintf(out, cap, "failing:");
        json_array_foreach(failures, i, fl)
        {
            int k =
                snprintf(out + n, cap - n, " %s", json_string_value(json_object_get(fl, "test")));
            if (k < 0 || (size_t)k >= cap - n)
                break;
            n += (size_t)k;
        }
    } else if (err != NULL && err[0] != '\0') {
        if (host != NULL && host[0] != '\0')
            snprintf(out, cap, "at %s: %s", host, err);
        else
            snprintf(out, cap, "%s", err);
    }
}

static void steps_of(const json_t *dep, char *out, size_t cap)
{
    const json_t *steps = json_object_get(json_object_get(dep, "detail"), "steps"), *st;
    size_t i, n = 0;

    out[0] = '\0';
    json_array_foreach(steps, i, st)
    {
        const json_t *next = json_array_get(steps, i + 1);
        const char *o = json_string_value(json_object_get(st, "outcome"));
        int k;
        /* an intent followed by the end of the same step says nothing more */
        if (next != NULL && o != NULL &&
            (strcmp(o, "preparing") == 0 || strcmp(o, "switching") == 0 ||
             strcmp(o, "watching") == 0 || strcmp(o, "rolling-back") == 0) &&
            strcmp(json_string_value(json_object_get(st, "step")),
                   json_string_value(json_object_get(next, "step"))) == 0)
            continue;
        k = snprintf(out + n, cap - n, "%s%s:%s", n ? " " : "",
                     json_string_value(json_object_get(st, "step")),
                     json_string_value(json_object_get(st, "outcome")));
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
}

static int run_history(const cli_verb *verb, const cli_args *a)
{
    static const char *const headers[] = {"ID", "TIME", "FROM", "TO", "OUTCOME", "STEPS", "REASON"};
    const char *component = a->positional[0];
    char root[4096];
    ms_registry *reg = NULL;
    json_t *list = NULL, *dep;
    cli_table t = {0};
    int limit = 0, rc;
    size_t i;

    if ((rc = cli_check_name(verb, "component", component, true)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "limit", 50, 1, 100000, &limit)) != CLI_EXIT_OK ||
        (rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc;
    if ((rc = cli_open_registry(root, &reg)) != CLI_EXIT_OK)
        return rc;
    if (a->npositional == 2) {
        long long id = 0;
        char *end = NULL;

        id = strtoll(a->positional[1], &end, 10);
        if (end == a->positional[1] || *end != '\0' || id <= 0)
            rc = cli_usage_error(verb, "ID must be a deployment number (the ID column), got '%s'",
                                 a->positional[1]);
        else
            rc = cli_history_show(reg, component, (int64_t)id, cli_flag(a, "json"));
        goto cleanup;
    }
    if (ms_registry_deployments(reg, component, 0, (size_t)limit, &list) != MS_OK) {
        cli_error("%s", ms_last_error());
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    if (cli_flag(a, "json")) {
        cli_print_json(list, true);
        goto cleanup;
    }
    if (json_array_size(list) == 0) {
        printf("no deployments of %s yet (mstack deploy %s VERSION)\n", component, component);
        goto cleanup;
    }
    if ((rc = cli_table_init(&t, 7, headers)) != CLI_EXIT_OK)
        goto cleanup;
    json_array_foreach(list, i, dep)
    {
        char id[24], steps[512], reason[700];
        const char *cells[7];
        const char *from = json_string_value(json_object_get(dep, "from_version"));

        snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(dep, "id")));
        steps_of(dep, steps, sizeof steps);
        reason_of(dep, reason, sizeof reason);
        cells[0] = id;
        cells[1] = json_string_value(json_object_get(dep, "time"));
        cells[2] = from != NULL ? from : "-";
        cells[3] = json_string_value(json_object_get(dep, "to_version"));
        cells[4] = json_string_value(json_object_get(dep, "state"));
        cells[5] = steps;
        cells[6] = reason;
        if ((rc = cli_table_add(&t, cells)) != CLI_EXIT_OK)
            goto cleanup;
    }
    cli_table_print(&t, stdout);
cleanup:
    cli_table_reset(&t);
    json_decref(list);
    ms_registry_close(reg);
    return rc;
}

static const cli_option history_options[] = {
    {"root", 'C', "DIR", false, "the project root (default: found from the current directory)"},
    {"limit", 'n', "N", false, "show at most N deployments (default 50)"},
    {"json", 0, NULL, false, "print the deployment records as JSON"},
    {NULL, 0, NULL, false, NULL},
};

const cli_verb cli_verb_history = {
    .name = "history",
    .usage = "COMPONENT [ID] [--limit N] [--json]",
    .summary = "the deployments and rollbacks of a component, newest first",
    .description =
        "Lists every deployment of COMPONENT recorded in the registry, newest first:\n"
        "from which version to which, its outcome (the last step's: ready, rejected,\n"
        "promoted, no-hosts, failed, rolled-back, error), each step with its outcome, and\n"
        "why it did not go through (the failing tests, or the host and its error).\n"
        "With ID, that one deployment in full: each step with its time, the comparison\n"
        "table of the test step and what each failing test printed, the per-host table\n"
        "of a promotion or rollback, and the watch window's verdict.\n",
    .options = history_options,
    .min_positional = 1,
    .max_positional = 2,
    .examples = "  mstack history user-service\n"
                "  mstack history user-service 3\n"
                "  mstack history user-service --limit 5 --json\n",
    .run = run_history,
};
