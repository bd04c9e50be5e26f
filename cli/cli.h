/*
 * cli.h - what the files of the `mstack` command share.
 *
 * mstack is a thin front end over the public API (<mainstack/...> only):
 * main.c picks the verb, args.c parses its options against the verb's
 * table, common.c connects, reads payloads, maps statuses to exit codes
 * and prints tables and JSON, gather.c collects every reply to a fan-out
 * request, and each cmd_<verb>.c is a few calls into the library. Names
 * shared between these files start with cli_ (this is a program, not the
 * library: no ms_ prefix). Output goes to stdout, diagnostics to stderr.
 */
#ifndef MSTACK_CLI_H
#define MSTACK_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <mainstack/mainstack.h>

/* Exit codes, documented in `mstack --help` and docs/cli.md. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1,       /* anything not listed below */
    CLI_EXIT_USAGE = 2,         /* unknown verb or option, bad or missing argument,
                                   malformed JSON input */
    CLI_EXIT_TIMEOUT = 3,       /* no reply within --timeout */
    CLI_EXIT_NO_RESPONDERS = 4, /* nobody subscribes to the subject / nobody answered */
    CLI_EXIT_REMOTE = 5,        /* the service answered with an error */
    CLI_EXIT_CONNECTION = 6,    /* no NATS server at the URL */
    CLI_EXIT_UNHEALTHY = 7      /* health: an instance is unhealthy or not running */
};

/* The NATS URL a client verb uses without --nats and without $NATS_URL. */
#define CLI_DEFAULT_NATS_URL "nats://127.0.0.1:4222"

#define CLI_MAX_OPTIONS 24
#define CLI_MAX_REPEAT 64

/* One option of a verb. */
typedef struct cli_option {
    const char *name; /* long name, without "--"; NULL ends a table */
    char short_name;  /* 0: none */
    const char *arg;  /* placeholder of its value ("URL"); NULL: a flag */
    bool repeat;      /* may be given more than once (values kept in order) */
    const char *help; /* one line */
} cli_option;

struct cli_args;

/* One verb: its help text and the function that runs it. */
typedef struct cli_verb {
    const char *name;
    const char *alias;       /* a short name, or NULL */
    const char *usage;       /* what follows "mstack <verb> " in the usage line */
    const char *summary;     /* one line, for `mstack --help` */
    const char *description; /* paragraphs of the verb's help */
    const cli_option *options;
    size_t min_positional, max_positional;
    const char *examples; /* lines of the help's Examples section */
    /* Returns the process exit code. */
    int (*run)(const struct cli_verb *verb, const struct cli_args *args);
    bool hidden; /* internal: left out of `mstack --help` */
} cli_verb;

/* The parsed command line of one verb. Every string is borrowed from argv. */
typedef struct cli_args {
    const cli_verb *verb;
    size_t count[CLI_MAX_OPTIONS]; /* times each option of verb->options was given */
    const char *values[CLI_MAX_OPTIONS][CLI_MAX_REPEAT];
    const char **positional; /* malloc'd array (cli_args_reset frees it) */
    size_t npositional;
} cli_args;

/* The verbs (cmd_*.c). */
extern const cli_verb cli_verb_run;
extern const cli_verb cli_verb_publish;
extern const cli_verb cli_verb_request;
extern const cli_verb cli_verb_health;
extern const cli_verb cli_verb_services;
extern const cli_verb cli_verb_check;
extern const cli_verb cli_verb_context;
extern const cli_verb cli_verb_agent;
extern const cli_verb cli_verb_escalations;
extern const cli_verb cli_verb_mcp;
extern const cli_verb cli_verb_version;
extern const cli_verb cli_verb_versions;
extern const cli_verb cli_verb_deploy;
extern const cli_verb cli_verb_test_host;
extern const cli_verb cli_verb_rollback;
extern const cli_verb cli_verb_history;

/* --- args.c ---------------------------------------------------------------- */

/* Parse argv (after the verb) into *out. Returns CLI_EXIT_OK, CLI_EXIT_USAGE
 * (the problem printed, with a pointer to --help), or -1 when --help was
 * given and the help was printed (the caller exits 0). Free with
 * cli_args_reset. */
int cli_args_parse(const cli_verb *verb, int argc, char **argv, cli_args *out);
void cli_args_reset(cli_args *a);
/* True when the verb declares option `name`. */
bool cli_has_option(const cli_verb *verb, const char *name);
/* The last value of option `name` (NULL when absent). */
const char *cli_opt(const cli_args *a, const char *name);
/* True when flag `name` was given. */
bool cli_flag(const cli_args *a, const char *name);
/* Every value of a repeatable option, in order; returns how many. */
size_t cli_opt_all(const cli_args *a, const char *name, const char *const **values);
/* Option `name` as an integer in [min, max]; def when absent. CLI_EXIT_OK or
 * CLI_EXIT_USAGE (printed). */
int cli_opt_int(const cli_args *a, const char *name, int def, int min, int max, int *out);

/* Help of one verb, or of mstack itself, on f. */
void cli_print_verb_help(const cli_verb *verb, FILE *f);
void cli_print_main_help(FILE *f);
/* The exit code table (main.c). */
void cli_print_exit_codes(FILE *f);

/* --- common.c -------------------------------------------------------------- */

/* "mstack: <message>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "mstack <verb>: <message>" and "Try 'mstack <verb> --help'." on stderr;
 * returns CLI_EXIT_USAGE. */
int cli_usage_error(const cli_verb *verb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A service or component name used as one subject token: 1..64 bytes of
 * [A-Za-z0-9_-] (component names: lower case only, [a-z0-9-]). Prints the
 * usage error and returns CLI_EXIT_USAGE, or returns CLI_EXIT_OK. */
int cli_check_name(const cli_verb *verb, const char *what, const char *name, bool component);
/* The exit code for a failed call's status. */
int cli_exit_code(ms_status s);

/* The URL of a client verb: --nats, else $NATS_URL, else CLI_DEFAULT_NATS_URL. */
const char *cli_client_url(const cli_args *a);
/* Connect a client bus to cli_client_url. On failure the reason and what to
 * do are printed and the exit code returned. *out is the caller's
 * (ms_bus_destroy). */
int cli_connect(const cli_args *a, ms_bus **out);
/* The same for a given URL; verb names the command in the messages. */
int cli_connect_url(const char *url, const char *verb, ms_bus **out);
/* Print the hint for a connection failure to url (status s). Returns the
 * exit code. */
int cli_connection_error(const char *url, ms_status s);

/* The payload argument of publish/request: NULL -> empty, "-" -> stdin,
 * else the text itself. Unless raw, it must be JSON (an error names
 * line:column). *data is malloc'd (free()). CLI_EXIT_OK, CLI_EXIT_USAGE,
 * CLI_EXIT_FAILURE. */
int cli_read_payload(const cli_verb *verb, const char *arg, bool raw, char **data, size_t *len);

/* Build a message on subject with payload, a new id, time and trace
 * context, and the --type, --source, --header and --id options of a (each
 * one optional in the verb's table). *out is the caller's. CLI_EXIT_OK or
 * CLI_EXIT_USAGE (printed). */
int cli_build_message(const cli_args *a, const char *subject, const char *data, size_t len,
                      const char *default_type, ms_message **out);

/* Print a JSON value on stdout: pretty (indent 2) or compact, then "\n". */
void cli_print_json(const json_t *v, bool pretty);
/* Print a payload: pretty JSON when it parses as JSON, else the bytes. */
void cli_print_payload(const void *data, size_t len, bool json_mode);

/* Human time for nanoseconds: "830ns", "12.4us", "3.21ms", "1.50s". */
void cli_format_ns(double ns, char *out, size_t cap);

/* A text table: headers, then rows; columns padded to their widest cell. */
typedef struct cli_table {
    size_t ncols;
    size_t nrows;
    size_t cap;
    char **cells; /* nrows+1 rows of ncols strdup'd cells; row 0 = headers */
} cli_table;

/* ncols headers (borrowed, copied). CLI_EXIT_OK or CLI_EXIT_FAILURE. */
int cli_table_init(cli_table *t, size_t ncols, const char *const *headers);
/* Add a row of ncols cells (copied; NULL prints as "-"). */
int cli_table_add(cli_table *t, const char *const *cells);
/* Sort rows by column col then col2 (strcmp). */
void cli_table_sort(cli_table *t, size_t col, size_t col2);
void cli_table_print(const cli_table *t, FILE *f);
void cli_table_reset(cli_table *t);
/* Print a JSON array of objects as a table: column k is key keys[k] under
 * headers[k] (at most 8; strings as they are, numbers and booleans as
 * text, anything else "-"), every line prefixed by indent (may be NULL). */
int cli_print_rows(FILE *f, const json_t *rows, size_t ncols, const char *const *keys,
                   const char *const *headers, const char *indent);

/* The project root: --root, else $MAINSTACK_ROOT, else the nearest of the
 * current directory and its parents that holds components/ or .mainstack/,
 * else the current directory. Written to out (absolute). CLI_EXIT_OK, or
 * CLI_EXIT_USAGE when --root is not a directory (printed). */
int cli_project_root(const cli_args *a, char *out, size_t cap);
/* A component argument as a directory: a path (it has a '/', or is an
 * existing directory holding context/) as it is, else
 * <root>/components/<name>. */
void cli_component_dir(const char *root, const char *arg, char *out, size_t cap);

/* The path of the running mstack program (/proc/self/exe; "mstack" when it
 * cannot be read): what mstack deploy runs as its test host, and what the
 * agents run for their pipeline's version and deploy steps. */
void cli_self_exe(char *out, size_t cap);

/* --- cmd_version.c (shared with cmd_deploy.c) ------------------------------ */

/* The components directory of the build tree this mstack runs from
 * (<build>/cli/mstack -> <build>/components). */
void cli_build_components_dir(char *out, size_t cap);
/* Open <root>/.mainstack/registry.db; on failure the reason is printed and
 * the exit code returned. */
int cli_open_registry(const char *root, ms_registry **out);

/* --- gather.c -------------------------------------------------------------- */

/* Publish data on subject with a fresh inbox as reply subject and collect
 * every reply until timeout_ms passes or max replies arrived (0: no limit).
 * Several subjects may be asked at once (subjects[0..nsubjects)) with the
 * same inbox. *replies is malloc'd (cli_gather_free). Empty status
 * messages (NATS "no responders") are not counted as replies. Returns
 * MS_OK (even with 0 replies) or the bus status of the subscribe/publish. */
ms_status cli_gather(ms_bus *bus, const char *const *subjects, size_t nsubjects, const void *data,
                     size_t len, int timeout_ms, size_t max, ms_message ***replies, size_t *count);
void cli_gather_free(ms_message **replies, size_t count);

/* --- deploy verbs (cmd_deploy.c, cmd_promote.c) ------------------------------ */

/* "<user>@<host> pid <pid>": who holds a deploy lock. */
void cli_deploy_holder(char *out, size_t cap);
/* Take component's deploy lock for holder; a lock of a dead process of this
 * host is released with a warning. Prints the error; CLI_EXIT_FAILURE. */
int cli_deploy_lock(ms_registry *reg, const char *component, const char *holder);
/* What mstack deploy / mstack rollback do, as a function the verbs and the
 * MCP server's deploy and rollback tools share. */
typedef struct cli_deploy_request {
    const char *root;      /* the project root */
    const char *component; /* a valid component name */
    const char *version;   /* deploy: the recorded version; rollback: unused */
    const char *nats_url;  /* the NATS server the hosts run on */
    const char *actor;     /* who asked, for the audit log (NULL: the lock holder) */
    int timeout_ms;        /* each test suite / tests.command (deploy) */
    int prepare_timeout_ms;
    int watch_ms;                /* deploy: the watch window after promotion (0: none) */
    int max_error_rate_increase; /* deploy: percentage points allowed over the previous rate */
    int min_requests;            /* deploy: requests needed before the error rate is judged */
    bool no_promote;             /* deploy: stop after the comparison */
    bool quiet;                  /* nothing on stdout (errors still go to stderr) */
    /* deploy: the version's state when the deployment does not go through
     * (set by cli_deploy_run from the state it had; NULL: candidate) */
    const char *back_state;
} cli_deploy_request;

/* The state a version returns to when a deployment of it does not go
 * through, given the state it had before: previous, rejected and
 * rolled-back are kept (a previous version deployed again stays the
 * rollback target), anything else is candidate. */
const char *cli_deploy_back_state(const char *before);

/* The promotion step of mstack deploy (cmd_promote.c): promotes rq->version
 * (active: the version it replaces, or NULL) on every host of the NATS
 * server at rq->nats_url, then watches it for rq->watch_ms (rolling back on
 * its own when it degrades), sets the version states and records steps
 * "promote" and "watch" in deployment dep_id. quiet: nothing on stdout.
 * *result gets {"outcome", "report", "watch"} (the caller's). Returns the
 * exit code. */
int cli_deploy_promote_step(ms_registry *reg, const cli_deploy_request *rq, const char *active,
                            int64_t dep_id, bool quiet, json_t **result);

/* The watch window after a promotion of version (active: the version it
 * replaced, now previous, or NULL; previous: the $SRV.STATS baseline of
 * the version still active before the switch, borrowed, may be NULL):
 * rq->watch_ms and the limits of rq; records the step "watch" (intent
 * "watching", then permanent, rolled-back, degraded or error) in dep_id;
 * a degraded version is rolled back at once. *result {"outcome",
 * "report"}. Returns the exit code. */
int cli_deploy_watch(ms_registry *reg, ms_bus *bus, const cli_deploy_request *rq,
                     const char *version, const char *active, const json_t *previous,
                     int64_t dep_id, json_t **result);
/* Switch every host from `from` back to `to` (cmd_promote.c): the intent
 * (step, "rolling-back") first, then ms_deploy_rollback, then on success
 * the states (from rolled-back, to active) with the step, one transaction. */
ms_status cli_deploy_rollback_switch(ms_registry *reg, ms_bus *bus, const cli_deploy_request *rq,
                                     int64_t dep_id, const char *step, const char *from,
                                     const char *to, const char *rollback_id, const json_t *extra,
                                     const json_t *base, ms_promote_report *rep,
                                     json_t **detail_out);
/* The per-host report as JSON (a new reference) / as a table. */
json_t *cli_promote_report_json(const ms_promote_report *r);
void cli_promote_report_print(const ms_promote_report *r, FILE *f);
/* The outcome of a failed promotion or rollback (no-hosts, failed, error)
 * and its message on stderr. */
const char *cli_deploy_failure_outcome(ms_status s, const ms_promote_report *rep);
void cli_deploy_print_failure(const char *what, const char *done, const char *component,
                              const char *version, ms_status s, const ms_promote_report *rep);
/* Every $SRV.STATS.<component> answer as an array (NULL: asking failed). */
json_t *cli_deploy_sample_stats(ms_bus *bus, const char *component);
/* The test hook (docs/deploy.md, "Crash safety"): when
 * MAINSTACK_DEPLOY_FAULT is "<point>" or "<point>:kill" the process
 * SIGKILLs itself here, "<point>:stop" SIGSTOPs itself (a test then kills
 * it or lets it go on with SIGCONT). */
void cli_deploy_fault(const char *point);
/* Find component's newest deployment; when it is unfinished (a process
 * died in it), reconcile with what the hosts serve and finish or undo it
 * (cmd_resume.c). The caller holds the deploy lock (as holder). *acted:
 * whether something was resumed; *result (may stay NULL): {"component",
 * "deployment", "interrupted_at", "outcome", "action", "detail"}. Nothing
 * to resume is CLI_EXIT_OK. rq->quiet: nothing on stdout. */
/* Whether component's last deployment (when version is given: only if it
 * went to version) looks unfinished - what cli_deploy_resume would act on
 * if its process is gone; true when unsure. */
bool cli_deploy_unfinished(ms_registry *reg, const char *component, const char *version);
int cli_deploy_resume(ms_registry *reg, const cli_deploy_request *rq, const char *holder,
                      bool *acted, json_t **result);

/* Phases of cli_deploy_run, in order (progress reports them). */
enum {
    CLI_DEPLOY_LOCK = 1,
    CLI_DEPLOY_TEST_ACTIVE,
    CLI_DEPLOY_TEST_CANDIDATE,
    CLI_DEPLOY_COMPARE,
    CLI_DEPLOY_PROMOTE, /* prepare and switch on every host: once begun, it completes */
    CLI_DEPLOY_DONE,
    CLI_DEPLOY_PHASES = CLI_DEPLOY_DONE
};

/* Hooks of a caller that watches the work (all may be NULL). progress is
 * called on the calling thread as each phase begins (phase of
 * CLI_DEPLOY_PHASES); cancelled is polled between phases: true before the
 * promotion began stops the work there (the lock is released, the
 * candidate goes back to state candidate, the deployment is recorded
 * "cancelled", the active version keeps serving); once the promotion began
 * it runs to its end. */
typedef struct cli_deploy_hooks {
    void (*progress)(void *ud, int phase, const char *message);
    bool (*cancelled)(void *ud);
    void *ud;
} cli_deploy_hooks;

/* mstack deploy COMPONENT VERSION. *result (the caller's, may be left NULL
 * on an early error) gets {"component", "deployment", "outcome", "detail",
 * "promotion"?, "cancelled"?}; the outcome is ready, rejected, promoted,
 * no-hosts, failed, cancelled or error. Returns the verb's exit code;
 * errors are printed on stderr. */
int cli_deploy_run(const cli_deploy_request *rq, const cli_deploy_hooks *hooks, json_t **result);
/* mstack rollback COMPONENT: *result {"component", "deployment", "from",
 * "to", "outcome", "report"}. cancelled is polled before the switch. */
/* The comparison table of a test step (rows: {test, active, candidate,
 * verdict}) on stdout, each line prefixed by indent (may be NULL). */
void cli_deploy_print_comparison(const json_t *rows, const char *indent);
/* mstack history COMPONENT ID: one deployment in full (history_show.c). */
int cli_history_show(ms_registry *reg, const char *component, int64_t id, bool json);
int cli_rollback_run(const cli_deploy_request *rq, const cli_deploy_hooks *hooks, json_t **result);

#endif
