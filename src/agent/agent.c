/*
 * agent.c - the ms_agent object: one component's agent at work.
 *
 * Intake has two sources feeding one bounded queue: a reader thread on the
 * durable consumer agent-<component> (the control events, kept by the
 * stream while the agent is away) and queue subscriptions on the monitored
 * topics (queue group agent-<component>, so two agents of one component
 * share them; subjects the stream carries are left to the reader). One
 * worker thread takes the queue in order and decides each message: evaluate
 * (and maybe consult the evaluator), record (registry: one decision per
 * component and event id, so a redelivery is recognised and not acted on
 * twice), publish the decision, then start the pipeline or the escalation.
 * A durable delivery is acknowledged only after its decision is recorded;
 * one that could not be recorded is handed back (nak) to come again.
 *
 * A full queue holds whoever feeds it: the reader simply stops fetching
 * (the stream keeps the rest), a subscription handler waits up to
 * PUSH_WAIT_MS and then counts the message as an error and logs it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "core/time_util.h"
#include "mainstack/json.h"
#include "mainstack/log.h"
#include "mainstack/stream.h"
#include "mainstack/subject.h"

#define PUSH_WAIT_MS 5000
#define READ_WAIT_MS 250
#define THREAD_STACK (256u << 10)

typedef struct item {
    ms_message *m;  /* one reference */
    ms_delivery *d; /* NULL for a subscription's message */
} item;

struct ms_agent {
    ms_agent_options o; /* strings point at the copies below */
    char *component_dir, *root, *agent_id;
    char *deploy_program, *deploy_nats_url; /* copies; NULL when not given */
    char **evaluator_argv;
    ms_context *ctx;
    ms_agent_config *cfg;
    char decision_subject[200];
    char durable[96];
    ms__pipeline_env env;
    bool own_runner;

    pthread_mutex_t mu; /* guards the queue, the flags and runs; with the cvs */
    pthread_cond_t cv_items, cv_space, cv_idle;
    item *queue;
    size_t cap, head, len; /* cap grows (doubling) up to o.max_pending */
    bool started, stopping, worker_busy;
    int runs; /* pipelines running */

    pthread_t worker, reader;
    bool have_worker, have_reader;
    ms_consumer *consumer;
    ms_subscription **subs;
    size_t nsubs;

    atomic_uint_fast64_t st[10];
};

enum {
    ST_RECEIVED,
    ST_IGNORED,
    ST_ACTED,
    ST_ESCALATED,
    ST_REDELIVERED,
    ST_RUNS_STARTED,
    ST_RUNS_SUCCEEDED,
    ST_RUNS_ESCALATED,
    ST_ERRORS,
};

static void count(ms_agent *a, int which)
{
    atomic_fetch_add(&a->st[which], 1);
}

void ms_agent_options_init(ms_agent_options *o)
{
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->durable = true;
    o->evaluator_timeout_ms = 10000;
    o->max_pending = 10000;
    o->consumer_ack_wait_ms = 30000;
}

const char *ms_agent_component(const ms_agent *a)
{
    return a ? ms_context_component(a->ctx) : NULL;
}

void ms_agent_get_stats(const ms_agent *a, ms_agent_stats *out)
{
    ms_agent *m = (ms_agent *)a;

    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (a == NULL)
        return;
    out->received = atomic_load(&m->st[ST_RECEIVED]);
    out->ignored = atomic_load(&m->st[ST_IGNORED]);
    out->acted = atomic_load(&m->st[ST_ACTED]);
    out->escalated = atomic_load(&m->st[ST_ESCALATED]);
    out->redelivered = atomic_load(&m->st[ST_REDELIVERED]);
    out->runs_started = atomic_load(&m->st[ST_RUNS_STARTED]);
    out->runs_succeeded = atomic_load(&m->st[ST_RUNS_SUCCEEDED]);
    out->runs_escalated = atomic_load(&m->st[ST_RUNS_ESCALATED]);
    out->errors = atomic_load(&m->st[ST_ERRORS]);
    pthread_mutex_lock(&m->mu);
    out->pending = m->len;
    pthread_mutex_unlock(&m->mu);
}

/* --- creating ----------------------------------------------------------- */

static char **copy_argv(const char *const *argv)
{
    size_t n = 0;
    char **out;

    while (argv[n] != NULL)
        n++;
    if ((out = ms__calloc(n + 1, sizeof *out)) == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if ((out[i] = ms__strdup(argv[i])) == NULL) {
            for (size_t j = 0; j < i; j++)
                ms__free(out[j]);
            ms__free(out);
            return NULL;
        }
    }
    return out;
}

static void free_argv(char **argv)
{
    for (size_t i = 0; argv != NULL && argv[i] != NULL; i++)
        ms__free(argv[i]);
    ms__free(argv);
}

ms_status ms_agent_create(const ms_agent_options *o, ms_agent **out)
{
    ms_agent *a = NULL;
    char cwd[4096], host[128] = "host";
    ms_status s;

    if (o == NULL || out == NULL || o->bus == NULL || o->registry == NULL ||
        o->component_dir == NULL)
        return ms__err(MS_ERR_INVALID_ARG,
                       "agent: options with a bus, a registry and a component_dir are required");
    *out = NULL;
    if ((a = ms__calloc(1, sizeof *a)) == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "agent: allocating");
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv_items, NULL);
    pthread_cond_init(&a->cv_space, NULL);
    pthread_cond_init(&a->cv_idle, NULL);
    a->o = *o;
    if (a->o.max_pending == 0)
        a->o.max_pending = 10000;
    if ((s = ms_context_load_dir(o->component_dir, &a->ctx, &a->cfg)) != MS_OK)
        goto fail;
    a->component_dir = ms__strdup(o->component_dir);
    a->root = ms__strdup(o->root ? o->root : (getcwd(cwd, sizeof cwd) ? cwd : "."));
    (void)gethostname(host, sizeof host - 1);
    if (o->agent_id != NULL) {
        a->agent_id = ms__strdup(o->agent_id);
    } else if ((a->agent_id = ms__malloc(300)) != NULL) {
        snprintf(a->agent_id, 300, "agent-%s@%s:%ld", ms_context_component(a->ctx), host,
                 (long)getpid());
    }
    if (o->evaluator_argv != NULL && o->evaluator_argv[0] != NULL)
        a->evaluator_argv = copy_argv(o->evaluator_argv);
    if (o->deploy_program != NULL && (a->deploy_program = ms__strdup(o->deploy_program)) == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "agent: allocating");
        goto fail;
    }
    if (o->deploy_nats_url != NULL &&
        (a->deploy_nats_url = ms__strdup(o->deploy_nats_url)) == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "agent: allocating");
        goto fail;
    }
    a->o.deploy_program = a->deploy_program;
    a->o.deploy_nats_url = a->deploy_nats_url;
    /* the queue starts small and grows to max_pending: hundreds of idle
     * agents in one host cost little */
    a->cap = a->o.max_pending < 64 ? a->o.max_pending : 64;
    a->queue = ms__calloc(a->cap, sizeof *a->queue);
    if (a->component_dir == NULL || a->root == NULL || a->agent_id == NULL || a->queue == NULL ||
        (o->evaluator_argv != NULL && o->evaluator_argv[0] != NULL && a->evaluator_argv == NULL)) {
        s = ms__err(MS_ERR_NO_MEMORY, "agent: allocating");
        goto fail;
    }
    a->o.component_dir = a->component_dir;
    a->o.root = a->root;
    a->o.agent_id = a->agent_id;
    a->o.evaluator_argv = (const char *const *)a->evaluator_argv;
    snprintf(a->decision_subject, sizeof a->decision_subject, "mainstack.agent.%s.decision",
             ms_context_component(a->ctx));
    snprintf(a->durable, sizeof a->durable, "agent-%s", ms_context_component(a->ctx));
    if (o->runner == NULL) {
        if ((s = ms_proc_runner_create(NULL, &a->o.runner)) != MS_OK)
            goto fail;
        a->own_runner = true;
    }
    a->env = (ms__pipeline_env){
        .bus = o->bus,
        .registry = o->registry,
        .runner = a->o.runner,
        .ctx = a->ctx,
        .cfg = a->cfg,
        .root = a->root,
        .component_dir = a->component_dir,
        .agent_id = a->agent_id,
        .deploy_program = a->deploy_program,
        .deploy_nats_url = a->deploy_nats_url,
    };
    if (ms_agent_config_deploy(a->cfg) != NULL && a->deploy_program == NULL)
        ms_log_kv(MS_LOG_INFO, "agent",
                  "actions.deploy is configured but no deploy program was given: the pipeline "
                  "ends after test",
                  "component", ms_context_component(a->ctx), NULL);
    *out = a;
    return MS_OK;
fail:
    ms_agent_destroy(a);
    return s;
}

/* --- deciding ----------------------------------------------------------- */

static void emit(ms_agent *a, const ms_agent_event *ev)
{
    if (a->o.on_event != NULL)
        a->o.on_event(ev, a->o.closure);
}

static void on_run_done(int64_t run_id, const char *state, void *closure)
{
    ms_agent *a = closure;
    ms_agent_event ev = {.kind = MS_AGENT_RUN_DONE,
                         .component = ms_context_component(a->ctx),
                         .run_id = run_id,
                         .run_state = state};

    count(a, strcmp(state, "succeeded") == 0 ? ST_RUNS_SUCCEEDED : ST_RUNS_ESCALATED);
    emit(a, &ev);
    pthread_mutex_lock(&a->mu);
    a->runs--;
    pthread_cond_broadcast(&a->cv_idle);
    pthread_mutex_unlock(&a->mu);
}

static bool has_actions(const ms_agent_config *cfg)
{
    for (int k = 0; k < MS_ACTION_KIND_COUNT; k++)
        if (ms_agent_config_action(cfg, (ms_action_kind)k) != NULL)
            return true;
    return false;
}

/* What the commands (and an escalation's resumption) get: the evaluator
 * input plus the decision. */
static ms_status make_input(ms_agent *a, const ms_message *msg, const ms_decision *d,
                            int64_t decision_id, json_t **out)
{
    json_t *input = NULL, *dj = NULL;
    ms_status s = ms_agent_input_json(msg, a->ctx, a->cfg, &input);

    if (s == MS_OK)
        s = ms_decision_to_json(d, ms_context_component(a->ctx), NULL, &dj);
    if (s == MS_OK) {
        json_object_set_new(dj, "id", json_integer(decision_id));
        if (json_object_set_new(input, "decision", dj) != 0)
            s = ms__err(MS_ERR_NO_MEMORY, "agent: building the input");
        dj = NULL;
    }
    json_decref(dj);
    if (s != MS_OK) {
        json_decref(input);
        return s;
    }
    *out = input;
    return MS_OK;
}

static void publish_decision(ms_agent *a, const ms_message *msg, const ms_decision *d,
                             int64_t decision_id)
{
    json_t *j = NULL;
    char *text = NULL;
    size_t len = 0;

    if (ms_decision_to_json(d, ms_context_component(a->ctx), msg, &j) == MS_OK) {
        json_object_set_new(j, "decision_id", json_integer(decision_id));
        json_object_set_new(j, "agent", json_string(a->agent_id));
        if (ms_json_dump(j, &text, &len) == MS_OK &&
            ms_bus_publish(a->o.bus, a->decision_subject, text, len) == MS_OK) {
            free(text);
            json_decref(j);
            return;
        }
    }
    ms_log_kv(MS_LOG_WARN, "agent", "decision recorded but not published", "component",
              ms_context_component(a->ctx), "error", ms_last_error(), NULL);
    free(text);
    json_decref(j);
}

/* After the decision was recorded: do what it says. */
static ms_status carry_out(ms_agent *a, const ms_message *msg, const ms_decision *d,
                           int64_t decision_id)
{
    json_t *input = NULL;
    ms_status s;

    if (d->verdict == MS_VERDICT_IGNORE) {
        count(a, ST_IGNORED);
        return MS_OK;
    }
    if ((s = make_input(a, msg, d, decision_id, &input)) != MS_OK)
        return s;
    if (d->verdict == MS_VERDICT_ACT && has_actions(a->cfg)) {
        count(a, ST_ACTED);
        pthread_mutex_lock(&a->mu);
        a->runs++;
        pthread_mutex_unlock(&a->mu);
        s = ms__pipeline_start(&a->env, decision_id, input, NULL, on_run_done, a, NULL);
        if (s == MS_OK) {
            count(a, ST_RUNS_STARTED);
        } else {
            pthread_mutex_lock(&a->mu);
            a->runs--;
            pthread_cond_broadcast(&a->cv_idle);
            pthread_mutex_unlock(&a->mu);
        }
    } else {
        char reason[MS_DECISION_REASON_MAX + 128];
        json_t *detail = json_pack("{s:O}", "input", input);

        count(a, ST_ESCALATED);
        if (d->verdict == MS_VERDICT_ACT)
            snprintf(reason, sizeof reason,
                     "%s (act decided, but agent-config.json defines no actions: a person must "
                     "make the change)",
                     d->reason);
        else
            snprintf(reason, sizeof reason, "%s", d->reason);
        s = detail ? ms__escalate(&a->env, decision_id, reason, detail, NULL)
                   : ms__err(MS_ERR_NO_MEMORY, "agent: an escalation");
        json_decref(detail);
    }
    json_decref(input);
    return s;
}

ms_status ms_agent_handle(ms_agent *a, const ms_message *msg, int64_t *decision_id, bool *fresh)
{
    ms_decision d;
    ms_registry_decision rd;
    int64_t id = 0;
    bool is_new = false;
    ms_status s;

    if (a == NULL || msg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "agent handle: a and msg are required");
    count(a, ST_RECEIVED);
    if ((s = ms_agent_evaluate(msg, a->ctx, a->cfg, &d)) != MS_OK)
        goto fail;
    if (a->evaluator_argv != NULL)
        ms__evaluator_consult(a->o.evaluator_argv, a->o.evaluator_timeout_ms, msg, a->ctx, a->cfg,
                              &d);
    rd = (ms_registry_decision){
        .component = ms_context_component(a->ctx),
        .decision = ms_verdict_str(d.verdict),
        .rule = d.rule,
        .reason = d.reason,
        .event_id = ms_message_id(msg),
        .subject = ms_message_subject(msg),
        .type = ms_message_type_name(msg) ? ms_message_type_name(msg)
                                          : ms_msg_type_str(ms_message_type(msg)),
        .agent = a->agent_id,
    };
    if ((s = ms_registry_record_decision(a->o.registry, &rd, &id, &is_new)) != MS_OK)
        goto fail;
    if (decision_id != NULL)
        *decision_id = id;
    if (fresh != NULL)
        *fresh = is_new;
    if (!is_new) {
        /* Decided before (a redelivery, or the other agent of this component
         * got there first): nothing is done twice. */
        count(a, ST_REDELIVERED);
    } else {
        publish_decision(a, msg, &d, id);
        s = carry_out(a, msg, &d, id);
    }
    {
        ms_agent_event ev = {.kind = MS_AGENT_DECIDED,
                             .component = ms_context_component(a->ctx),
                             .decision = &d,
                             .fresh = is_new,
                             .decision_id = id,
                             .event_subject = ms_message_subject(msg)};
        emit(a, &ev);
    }
    if (s == MS_OK)
        return MS_OK;
fail:
    count(a, ST_ERRORS);
    ms_log_kv(MS_LOG_ERROR, "agent", "a message could not be decided", "component",
              ms_context_component(a->ctx), "subject", ms_message_subject(msg), "error",
              ms_last_error(), NULL);
    return s;
}

/* --- intake -------------------------------------------------------------- */

/* Double the ring (under a->mu), up to max_pending. false when it is at
 * its bound or memory is short. */
static bool grow_locked(ms_agent *a)
{
    size_t cap = a->cap * 2 > a->o.max_pending ? a->o.max_pending : a->cap * 2;
    item *q;

    if (cap <= a->cap || (q = ms__calloc(cap, sizeof *q)) == NULL)
        return false;
    for (size_t i = 0; i < a->len; i++)
        q[i] = a->queue[(a->head + i) % a->cap];
    ms__free(a->queue);
    a->queue = q;
    a->head = 0;
    a->cap = cap;
    return true;
}

/* Queue it; waits while full, up to wait_ms (< 0: until stopping). false
 * when not queued (full past the wait, or stopping). */
static bool push(ms_agent *a, ms_message *m, ms_delivery *d, int wait_ms)
{
    struct timespec until = ms__deadline_in(CLOCK_REALTIME, wait_ms < 0 ? 0 : wait_ms);
    bool ok = false;

    pthread_mutex_lock(&a->mu);
    while (!a->stopping && a->len == a->cap && !grow_locked(a)) {
        if (wait_ms < 0)
            pthread_cond_wait(&a->cv_space, &a->mu);
        else if (pthread_cond_timedwait(&a->cv_space, &a->mu, &until) != 0)
            break;
    }
    if (!a->stopping && a->len < a->cap) {
        a->queue[(a->head + a->len) % a->cap] = (item){.m = m, .d = d};
        a->len++;
        pthread_cond_signal(&a->cv_items);
        ok = true;
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

static bool carried_by_stream(const char *subject)
{
    for (size_t i = 0; ms_control_subjects[i] != NULL; i++)
        if (ms_subject_matches(ms_control_subjects[i], subject))
            return true;
    return false;
}

static void on_topic(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    ms_agent *a = closure;
    ms_message *m;

    (void)bus;
    (void)sub;
    if (a->consumer != NULL && carried_by_stream(ms_message_subject(msg)))
        return; /* the reader gets it from the stream, once */
    m = ms_message_ref((ms_message *)msg);
    if (!push(a, m, NULL, PUSH_WAIT_MS)) {
        count(a, ST_ERRORS);
        ms_log_kv(MS_LOG_ERROR, "agent", "queue full: a message was not decided", "component",
                  ms_context_component(a->ctx), "subject", ms_message_subject(msg), NULL);
        ms_message_unref(m);
    }
}

static void *reader_main(void *arg)
{
    ms_agent *a = arg;

    for (;;) {
        ms_delivery *d = NULL;
        ms_status s;
        bool stop;

        pthread_mutex_lock(&a->mu);
        stop = a->stopping;
        pthread_mutex_unlock(&a->mu);
        if (stop)
            break;
        s = ms_consumer_next(a->consumer, READ_WAIT_MS, &d);
        if (s == MS_ERR_TIMEOUT)
            continue;
        if (s != MS_OK) {
            if (s == MS_ERR_CLOSED)
                break;
            /* disconnected, say: the bus reconnects; try again shortly */
            usleep(100 * 1000);
            continue;
        }
        if (!push(a, ms_message_ref((ms_message *)ms_delivery_message(d)), d, -1)) {
            /* stopping: give it back for the next reader */
            ms_message_unref((ms_message *)ms_delivery_message(d));
            (void)ms_delivery_nak(d, 0);
            ms_delivery_free(d);
            break;
        }
    }
    return NULL;
}

static void *worker_main(void *arg)
{
    ms_agent *a = arg;

    for (;;) {
        item it;

        pthread_mutex_lock(&a->mu);
        a->worker_busy = false;
        pthread_cond_broadcast(&a->cv_idle);
        while (a->len == 0 && !a->stopping)
            pthread_cond_wait(&a->cv_items, &a->mu);
        if (a->len == 0) { /* stopping, and everything taken was decided */
            pthread_mutex_unlock(&a->mu);
            break;
        }
        it = a->queue[a->head];
        a->head = (a->head + 1) % a->cap;
        a->len--;
        a->worker_busy = true;
        pthread_cond_signal(&a->cv_space);
        pthread_mutex_unlock(&a->mu);

        ms_status s = ms_agent_handle(a, it.m, NULL, NULL);
        if (it.d != NULL) {
            /* acknowledged only once recorded; otherwise it comes again */
            if (s == MS_OK)
                s = ms_delivery_ack(it.d);
            else
                s = ms_delivery_nak(it.d, 1000);
            if (s != MS_OK)
                ms_log_kv(MS_LOG_WARN, "agent", "acknowledging an event", "component",
                          ms_context_component(a->ctx), "error", ms_last_error(), NULL);
            ms_delivery_free(it.d);
        }
        ms_message_unref(it.m);
    }
    return NULL;
}

static ms_status start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int rc;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    rc = pthread_create(t, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    return rc == 0 ? MS_OK : ms__err(MS_ERR_INTERNAL, "agent: starting a thread: error %d", rc);
}

ms_status ms_agent_start(ms_agent *a)
{
    ms_stream_config sc;
    ms_consumer_options co;
    size_t ntopics;
    ms_status s;

    if (a == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "agent start: a is required");
    if (a->started)
        return ms__err(MS_ERR_STATE, "agent %s: already started", ms_context_component(a->ctx));
    a->started = true;
    if (a->o.durable) {
        ms_stream_config_init(&sc);
        ms_consumer_options_init(&co);
        co.durable = a->durable;
        co.ack_wait_ms = a->o.consumer_ack_wait_ms;
        if ((s = ms_stream_ensure(a->o.bus, &sc)) != MS_OK ||
            (s = ms_consumer_open(a->o.bus, &sc, &co, &a->consumer)) != MS_OK)
            return ms__err_wrap(s, "agent %s: the durable consumer", ms_context_component(a->ctx));
    }
    ntopics = ms_agent_config_topic_count(a->cfg);
    if (ntopics > 0 && (a->subs = ms__calloc(ntopics, sizeof *a->subs)) == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "agent: allocating");
    for (size_t i = 0; i < ntopics; i++) {
        s = ms_bus_subscribe(a->o.bus, ms_agent_config_topic_at(a->cfg, i), a->durable, on_topic, a,
                             &a->subs[a->nsubs]);
        if (s != MS_OK)
            return ms__err_wrap(s, "agent %s: monitored topic %s", ms_context_component(a->ctx),
                                ms_agent_config_topic_at(a->cfg, i));
        a->nsubs++;
    }
    if ((s = start_thread(&a->worker, worker_main, a)) != MS_OK)
        return s;
    a->have_worker = true;
    if (a->consumer != NULL) {
        if ((s = start_thread(&a->reader, reader_main, a)) != MS_OK)
            return s;
        a->have_reader = true;
    }
    return MS_OK;
}

ms_status ms_agent_wait_idle(ms_agent *a, int timeout_ms)
{
    struct timespec until = ms__deadline_in(CLOCK_REALTIME, timeout_ms);
    ms_status s = MS_OK;

    if (a == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "agent wait_idle: a is required");
    pthread_mutex_lock(&a->mu);
    while (a->len > 0 || a->worker_busy || a->runs > 0) {
        if (pthread_cond_timedwait(&a->cv_idle, &a->mu, &until) != 0) {
            s = ms__err(MS_ERR_TIMEOUT, "agent %s: still busy after %d ms (%zu queued, %d runs)",
                        ms_context_component(a->ctx), timeout_ms, a->len, a->runs);
            break;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return s;
}

ms_status ms_agent_stop(ms_agent *a, int timeout_ms)
{
    ms_status s = MS_OK;

    if (a == NULL)
        return MS_OK;
    /* No more intake: subscriptions first, then the reader. */
    for (size_t i = 0; i < a->nsubs; i++)
        (void)ms_subscription_unsubscribe(a->subs[i]);
    a->nsubs = 0;
    pthread_mutex_lock(&a->mu);
    a->stopping = true;
    pthread_cond_broadcast(&a->cv_items);
    pthread_cond_broadcast(&a->cv_space);
    pthread_mutex_unlock(&a->mu);
    ms_consumer_interrupt(a->consumer); /* the reader's fetch returns now */
    if (a->have_reader) {
        pthread_join(a->reader, NULL);
        a->have_reader = false;
    }
    /* The worker decides what was taken, then exits. */
    if (a->have_worker) {
        pthread_join(a->worker, NULL);
        a->have_worker = false;
    }
    ms_consumer_close(a->consumer);
    a->consumer = NULL;
    if (ms_agent_wait_idle(a, timeout_ms) != MS_OK) {
        s = ms__err(MS_ERR_TIMEOUT, "agent %s: pipelines still running after %d ms: killed",
                    ms_context_component(a->ctx), timeout_ms);
        if (a->own_runner) {
            /* destroying the runner kills its runs and delivers their
             * callbacks (cancelled) */
            ms_proc_runner_destroy(a->o.runner);
            a->o.runner = NULL;
            a->env.runner = NULL;
        }
        (void)ms_agent_wait_idle(a, 10000);
    }
    return s;
}

void ms_agent_destroy(ms_agent *a)
{
    if (a == NULL)
        return;
    if (a->started)
        (void)ms_agent_stop(a, 5000);
    if (a->own_runner)
        ms_proc_runner_destroy(a->o.runner);
    /* what was queued but never taken (stop drains it; a failed start may
     * leave some) */
    for (size_t i = 0; i < a->len; i++) {
        item *it = &a->queue[(a->head + i) % a->cap];

        ms_delivery_free(it->d);
        ms_message_unref(it->m);
    }
    ms__free(a->queue);
    ms__free(a->subs);
    ms_context_unref(a->ctx);
    ms_agent_config_unref(a->cfg);
    free_argv(a->evaluator_argv);
    ms__free(a->component_dir);
    ms__free(a->root);
    ms__free(a->agent_id);
    ms__free(a->deploy_program);
    ms__free(a->deploy_nats_url);
    pthread_cond_destroy(&a->cv_idle);
    pthread_cond_destroy(&a->cv_space);
    pthread_cond_destroy(&a->cv_items);
    pthread_mutex_destroy(&a->mu);
    ms__free(a);
}
