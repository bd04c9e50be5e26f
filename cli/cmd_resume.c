/*
 * cmd_resume.c - finishing or undoing a deployment whose process died
 * (`mstack deploy --resume COMPONENT`, and the start of every `mstack
 * deploy` and `mstack rollback`, under the deploy lock).
 *
 * Every step of a deploy is recorded before it acts (cmd_deploy.c,
 * cmd_promote.c): the record begins "running" with the request, the
 * promotion is "preparing" (its id on the hosts and both artifacts) before
 * any host prepares and "switching" (the hosts prepared) before the first
 * host switches, the watch "watching", a rollback "rolling-back" (its id,
 * from, to). So the newest deployment's state says how far a dead process
 * got, and the hosts ($SRV.PING.<component>: each instance's version) say
 * what actually serves:
 *   - before the switch: undone (the candidate back to candidate, the
 *     prepared hosts aborted, the test directories removed), "interrupted";
 *   - during the switch: finished with the same promotion id (hosts already
 *     switched are noops), or when that fails every host is rolled back;
 *   - during the watch: the watch runs again ("resumed");
 *   - during a rollback: the rollback is finished.
 * Each outcome is the step "resume" of that deployment and an audit entry.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mainstack/deploy.h>

#include "cli.h"

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static bool is(const char *a, const char *b)
{
    return a != NULL && strcmp(a, b) == 0;
}

/* The newest step of dep named step (NULL: any) with outcome (NULL: any);
 * its detail, borrowed. */
static const json_t *step_detail(const json_t *dep, const char *step, const char *outcome)
{
    const json_t *steps = json_object_get(json_object_get(dep, "detail"), "steps");
    for (size_t i = json_array_size(steps); i > 0; i--) {
        const json_t *st = json_array_get(steps, i - 1);
        if ((step == NULL || is(jstr(st, "step"), step)) &&
            (outcome == NULL || is(jstr(st, "outcome"), outcome)))
            return json_object_get(st, "detail");
    }
    return NULL;
}

static const char *last_step(const json_t *dep)
{
    const json_t *steps = json_object_get(json_object_get(dep, "detail"), "steps");
    size_t n = json_array_size(steps);
    return n > 0 ? jstr(json_array_get(steps, n - 1), "step") : NULL;
}

/* What a dead process left: NULL when dep is finished, else the phase:
 * "before-switch", "switch", "watch" or "rollback". */
static const char *phase_of(const json_t *dep, const json_t *request)
{
    const char *state = jstr(dep, "state");
    const char *verb = jstr(request, "verb");

    if (verb == NULL) /* a record of an older build: no request kept */
        verb = is(last_step(dep), "rollback") ? "rollback" : "deploy";
    if (is(state, "rolling-back"))
        return "rollback";
    if (is(verb, "rollback"))
        return is(state, "running") ? "before-switch" : NULL;
    if (is(state, "running") || is(state, "preparing"))
        return "before-switch";
    if (is(state, "ready"))
        return json_is_true(json_object_get(request, "no_promote")) || request == NULL
                   ? NULL
                   : "before-switch";
    if (is(state, "switching"))
        return "switch";
    if (is(state, "watching"))
        return "watch";
    if (is(state, "promoted"))
        return json_integer_value(json_object_get(request, "watch_ms")) > 0 ? "watch" : NULL;
    return NULL;
}

bool cli_deploy_unfinished(ms_registry *reg, const char *component, const char *version)
{
    json_t *list = NULL;
    const json_t *dep;
    bool unfinished = false;

    if (ms_registry_deployments(reg, component, 0, 1, &list) != MS_OK)
        return true; /* unknown: let the resume under the lock decide */
    dep = json_array_get(list, 0);
    if (dep != NULL && (version == NULL || is(jstr(dep, "to_version"), version)))
        unfinished =
            phase_of(dep, json_object_get(json_object_get(dep, "detail"), "request")) != NULL;
    json_decref(list);
    return unfinished;
}

/* {"<version>": instances} of component as $SRV.PING answers (a new
 * object; NULL when asking failed). */
static json_t *serving(ms_bus *bus, const char *component)
{
    char subject[MS_SUBJECT_MAX + 1];
    const char *subjects[1] = {subject};
    ms_message **replies = NULL;
    size_t n = 0;
    json_t *out;

    snprintf(subject, sizeof subject, "$SRV.PING.%s", component);
    if (cli_gather(bus, subjects, 1, NULL, 0, 300, 0, &replies, &n) != MS_OK)
        return NULL;
    out = json_object();
    for (size_t i = 0; out != NULL && i < n; i++) {
        json_t *v = NULL;
        const char *ver;
        if (ms_message_json(replies[i], &v) == MS_OK && is(jstr(v, "name"), component) &&
            (ver = jstr(v, "version")) != NULL)
            json_object_set_new(out, ver,
                                json_integer(json_integer_value(json_object_get(out, ver)) + 1));
        json_decref(v);
    }
    cli_gather_free(replies, n);
    return out;
}

/* Remove <root>/.mainstack/tmp/deploy-<component>-*: the test directories
 * of a deploy that died (the lock says no test of it runs). How many. */
static int remove_test_dirs(const char *root, const char *component)
{
    char dir[4200], prefix[128], path[4500];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(dir, sizeof dir, "%s/.mainstack/tmp", root);
    snprintf(prefix, sizeof prefix, "deploy-%s-", component);
    if ((d = opendir(dir)) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        const char *argv[] = {"rm", "-rf", path, NULL};
        ms_proc_spec spec;
        ms_proc_result res;
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0 ||
            strlen(e->d_name) != strlen(prefix) + 6) /* mkdtemp's XXXXXX */
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ms_proc_spec_init(&spec);
        spec.argv = argv;
        spec.timeout_ms = 30000;
        ms_proc_result_init(&res);
        if (ms_proc_run(&spec, &res) == MS_OK && res.exit_code == 0)
            n++;
        ms_proc_result_reset(&res);
    }
    closedir(d);
    return n;
}

/* The request kept in the record, over rq (what this process was asked). */
static void request_from(const json_t *request, const cli_deploy_request *rq,
                         cli_deploy_request *out)
{
    const json_t *v;
    *out = *rq;
    if ((v = json_object_get(request, "watch_ms")) != NULL && json_is_integer(v))
        out->watch_ms = (int)json_integer_value(v);
    if ((v = json_object_get(request, "max_error_rate_increase")) != NULL && json_is_integer(v))
        out->max_error_rate_increase = (int)json_integer_value(v);
    if ((v = json_object_get(request, "min_requests")) != NULL && json_is_integer(v))
        out->min_requests = (int)json_integer_value(v);
    if ((v = json_object_get(request, "prepare_timeout_ms")) != NULL && json_is_integer(v) &&
        json_integer_value(v) > 0)
        out->prepare_timeout_ms = (int)json_integer_value(v);
    if (out->min_requests <= 0)
        out->min_requests = 20;
}

/* A version's state now ("" when not recorded). */
static void state_now(ms_registry *reg, const char *component, const char *version, char *out,
                      size_t cap)
{
    json_t *row = NULL;
    out[0] = '\0';
    if (version != NULL && ms_registry_version_get(reg, component, version, &row) == MS_OK)
        snprintf(out, cap, "%s", jstr(row, "state"));
    json_decref(row);
}

int cli_deploy_resume(ms_registry *reg, const cli_deploy_request *rq, const char *holder,
                      bool *acted, json_t **result)
{
    const char *component = rq->component;
    cli_deploy_request orq;
    json_t *list = NULL, *dep, *request, *detail = NULL, *seen = NULL, *watch = NULL;
    const char *phase, *from, *to, *outcome = "error", *action = "";
    char at[80], cur[64];
    ms_bus *bus = NULL;
    ms_promote_report *rep = NULL;
    int64_t id;
    int rc = CLI_EXIT_FAILURE, removed = 0;
    ms_status s;

    *acted = false;
    *result = NULL;
    if (ms_registry_deployments(reg, component, 0, 1, &list) != MS_OK) {
        cli_error("reading the deployments of %s: %s", component, ms_last_error());
        return CLI_EXIT_FAILURE;
    }
    dep = json_array_get(list, 0);
    request = json_object_get(json_object_get(dep, "detail"), "request");
    if (!json_is_object(request))
        request = NULL;
    phase = dep != NULL ? phase_of(dep, request) : NULL;
    if (phase == NULL) {
        *result = json_pack(
            "{s:s, s:s, s:o, s:o}", "component", component, "outcome", "nothing", "deployment",
            dep != NULL ? json_integer(json_integer_value(json_object_get(dep, "id")))
                        : json_null(),
            "state", dep != NULL ? json_string(jstr(dep, "state")) : json_null());
        json_decref(list);
        return CLI_EXIT_OK;
    }
    *acted = true;
    id = (int64_t)json_integer_value(json_object_get(dep, "id"));
    from = jstr(dep, "from_version");
    to = jstr(dep, "to_version");
    snprintf(at, sizeof at, "%s:%s", last_step(dep) != NULL ? last_step(dep) : "begin",
             jstr(dep, "state"));
    request_from(request, rq, &orq);
    if (!rq->quiet) {
        printf("resuming deployment %lld of %s (%s -> %s), interrupted at %s (begun by %s)\n",
               (long long)id, component, from != NULL ? from : "none", to, at,
               jstr(json_object_get(dep, "detail"), "who"));
        fflush(stdout);
    }
    rep = calloc(1, sizeof *rep);
    if (rep == NULL) {
        cli_error("out of memory");
        goto cleanup;
    }
    if (!is(jstr(request, "verb"), "rollback"))
        removed = remove_test_dirs(rq->root, component);
    if (cli_connect_url(rq->nats_url, "deploy", &bus) != CLI_EXIT_OK) {
        bus = NULL;
        if (!is(phase, "before-switch")) {
            /* the hosts cannot be asked: nothing is changed, resume later */
            cli_error("deployment %lld of %s cannot be resumed without the hosts (at %s)",
                      (long long)id, component, at);
            rc = CLI_EXIT_CONNECTION;
            goto cleanup;
        }
    }
    if (bus != NULL)
        seen = serving(bus, component);

    if (is(phase, "before-switch")) {
        const json_t *intent = step_detail(dep, "promote", "preparing");
        size_t aborted = 0, answered = 0;
        bool candidate_serves =
            seen != NULL && to != NULL && !is(from, to) && json_object_get(seen, to) != NULL;
        if (candidate_serves && intent != NULL) {
            phase = "switch"; /* a host switched: finish it rather than undo */
            goto do_switch;
        }
        if (bus != NULL && intent != NULL && jstr(intent, "promote_id") != NULL &&
            ms_deploy_abort(bus, component, jstr(intent, "promote_id"), 1000, &aborted,
                            &answered) != MS_OK)
            cli_error("warning: aborting the prepared hosts failed: %s (they abort by "
                      "themselves after their hold time)",
                      ms_last_error());
        detail = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I, s:O?, s:s}", "interrupted_at", at,
                           "found_by", holder, "action", "undone", "tmp_removed", removed,
                           "hosts_aborted", (json_int_t)aborted, "hosts_answered",
                           (json_int_t)answered, "serving", seen, "note",
                           bus == NULL ? "no NATS server: a host that prepared aborts by itself "
                                         "after its hold time"
                                       : "nothing was switched");
        state_now(reg, component, to, cur, sizeof cur);
        outcome = "interrupted";
        action = "undone: nothing was switched";
        {
            /* back where it was before the deployment (a previous version
             * deployed again stays the rollback target) */
            ms_version_change ch = {to, cli_deploy_back_state(jstr(request, "back_state"))};
            bool back = is(jstr(request, "verb"), "rollback") ? false : is(cur, "testing");
            if (ms_registry_version_transition(reg, component, &ch, back ? 1 : 0, id, "resume",
                                               outcome, detail) != MS_OK) {
                cli_error("recording the resume: %s", ms_last_error());
                goto cleanup;
            }
        }
        rc = CLI_EXIT_OK;
        goto report;
    }
do_switch:
    if (is(phase, "switch")) {
        const json_t *intent = step_detail(dep, "promote", "switching");
        ms_promote_options po;
        if (intent == NULL)
            intent = step_detail(dep, "promote", "preparing");
        if (intent == NULL || jstr(intent, "promote_id") == NULL ||
            jstr(intent, "artifact") == NULL) {
            cli_error("deployment %lld of %s: the promotion's intent is not recorded: cannot "
                      "finish it",
                      (long long)id, component);
            goto cleanup;
        }
        ms_promote_options_init(&po);
        po.deployment_id = jstr(intent, "promote_id");
        po.previous_artifact = jstr(intent, "previous_artifact");
        po.prepare_timeout_ms = orq.prepare_timeout_ms > 0 ? orq.prepare_timeout_ms : 15000;
        s = ms_deploy_promote(bus, component, to, jstr(intent, "artifact"), &po, rep);
        detail = json_pack("{s:s, s:s, s:s, s:o, s:O?}", "interrupted_at", at, "found_by", holder,
                           "action", "finished the switch", "report", cli_promote_report_json(rep),
                           "serving", seen);
        if (s == MS_OK) {
            outcome = "promoted";
            action = "finished the switch on every host";
            if (ms_registry_version_promote(reg, component, to, id, "resume", outcome, detail) !=
                MS_OK) {
                cli_error("recording the resume: %s", ms_last_error());
                goto cleanup;
            }
            if (!rq->quiet)
                cli_promote_report_print(rep, stdout);
            rc = CLI_EXIT_OK;
            if (orq.watch_ms > 0) {
                cli_deploy_request wrq = orq;
                wrq.version = to;
                rc = cli_deploy_watch(reg, bus, &wrq, to, from, json_object_get(intent, "baseline"),
                                      id, &watch);
                if (watch != NULL)
                    outcome = jstr(watch, "outcome");
            }
            goto report;
        }
        cli_deploy_print_failure("promotion", "promoted", component, to, s, rep);
        if (from == NULL) {
            ms_version_change ch = {to, "candidate"};
            outcome = "failed";
            action = "could not finish the switch, and no previous version to go back to";
            (void)ms_registry_version_transition(reg, component, &ch, 1, id, "resume", outcome,
                                                 detail);
            goto report;
        }
        {
            json_t *rb = NULL, *extra = json_pack("{s:s, s:O}", "interrupted_at", at, "finish",
                                                  json_object_get(detail, "report"));
            s = cli_deploy_rollback_switch(reg, bus, rq, id, "resume", to, from, NULL, extra, NULL,
                                           rep, &rb);
            json_decref(extra);
            json_decref(detail);
            detail = rb;
        }
        if (s == MS_OK) {
            outcome = "rolled-back";
            action = "could not finish the switch: every host rolled back";
            rc = CLI_EXIT_FAILURE;
        } else {
            outcome = "rolling-back"; /* still unfinished: a later resume tries again */
            action = "could not finish the switch nor roll back: the hosts may be mixed";
            cli_deploy_print_failure("rollback", "rolled back", component, from, s, rep);
        }
        goto report;
    }
    if (is(phase, "watch")) {
        const json_t *intent = step_detail(dep, "promote", "switching");
        cli_deploy_request wrq = orq;
        if (intent == NULL)
            intent = step_detail(dep, "watch", "watching");
        detail = json_pack("{s:s, s:s, s:s, s:i, s:O?}", "interrupted_at", at, "found_by", holder,
                           "action", "watching again", "window_ms", orq.watch_ms, "serving", seen);
        if (ms_registry_deployment_update(reg, id, "resume", "resumed", detail) != MS_OK) {
            cli_error("recording the resume: %s", ms_last_error());
            goto cleanup;
        }
        action = "watched again";
        wrq.version = to;
        rc = cli_deploy_watch(reg, bus, &wrq, to, from, json_object_get(intent, "baseline"), id,
                              &watch);
        outcome = watch != NULL ? jstr(watch, "outcome") : "error";
        goto report;
    }
    /* rollback: finish it, with the same id on the hosts */
    {
        /* the newest rolling-back step: of a watch, a rollback or a resume */
        const json_t *intent = step_detail(dep, NULL, "rolling-back");
        json_t *rb = NULL, *extra;
        if (intent == NULL || jstr(intent, "to") == NULL) {
            cli_error("deployment %lld of %s: the rollback's intent is not recorded", (long long)id,
                      component);
            goto cleanup;
        }
        extra = json_pack("{s:s, s:s}", "interrupted_at", at, "found_by", holder);
        s = cli_deploy_rollback_switch(reg, bus, rq, id, "resume", jstr(intent, "from"),
                                       jstr(intent, "to"), jstr(intent, "rollback_id"), extra, NULL,
                                       rep, &rb);
        json_decref(extra);
        detail = rb;
        if (s == MS_OK) {
            outcome = "rolled-back";
            action = "finished the rollback";
            rc = CLI_EXIT_OK;
            if (!rq->quiet)
                cli_promote_report_print(rep, stdout);
        } else {
            outcome = "rolling-back";
            action = "could not finish the rollback (try again)";
            cli_deploy_print_failure("rollback", "rolled back", component, jstr(intent, "to"), s,
                                     rep);
        }
    }
report:
    if (!rq->quiet) {
        printf("deployment %lld of %s: %s (%s)\n", (long long)id, component, action, outcome);
        fflush(stdout);
    }
    (void)ms_registry_audit(reg, rq->actor ? rq->actor : holder, "resume", component, outcome,
                            detail);
    *result = json_pack("{s:s, s:I, s:s, s:s, s:s, s:O*, s:O*}", "component", component,
                        "deployment", (json_int_t)id, "interrupted_at", at, "outcome", outcome,
                        "action", action, "detail", detail, "watch", watch);
cleanup:
    ms_bus_destroy(bus);
    free(rep);
    json_decref(seen);
    json_decref(watch);
    json_decref(detail);
    json_decref(list);
    return rc;
}
