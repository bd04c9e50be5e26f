/*
 * context.h - a component's context (context/context.json) and its agent's
 * configuration (context/agent-config.json), loaded into typed objects.
 *
 * The files and every field are described in docs/context.md and by the JSON
 * Schemas schemas/context.schema.json and schemas/agent-config.schema.json.
 * The loader checks what the schemas say (and a little more: unique ids and
 * rule names, versions and ranges that parse, valid subjects, real dates) so
 * a program needs no schema validator to trust what it reads. Errors:
 *   - malformed JSON: MS_ERR_PARSE, "file:line:column: what" (json.h);
 *   - a wrong field: MS_ERR_SCHEMA, "file: /json/pointer: what is wrong"
 *     ("context.json: /dependencies/2/kind: 'lib' is not one of component,
 *     interface, library, service").
 *
 * Ownership and threading: ms_context and ms_agent_config are immutable
 * once loaded and refcounted (atomic _ref/_unref), so any number of threads
 * may read one at once. Every pointer an accessor returns (strings, structs,
 * arrays) is borrowed from the object and valid while a reference is held.
 */
#ifndef MAINSTACK_CONTEXT_H
#define MAINSTACK_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "mainstack/semver.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* --- context.json ------------------------------------------------------- */

typedef enum ms_dd_status {
    MS_DD_PROPOSED = 0,
    MS_DD_ACCEPTED,
    MS_DD_SUPERSEDED,
    MS_DD_DEPRECATED,
    MS_DD_REJECTED
} ms_dd_status;

typedef struct ms_design_decision {
    const char *id;
    const char *decision;
    const char *rationale;
    const char *date; /* YYYY-MM-DD */
    ms_dd_status status;
} ms_design_decision;

typedef enum ms_dep_kind {
    MS_DEP_COMPONENT = 0, /* another mainstack component (its version) */
    MS_DEP_INTERFACE,     /* another component's contract (interface.json version) */
    MS_DEP_LIBRARY,       /* a library linked in */
    MS_DEP_SERVICE        /* a server used at run time (nats-server, ...) */
} ms_dep_kind;

typedef struct ms_dependency {
    const char *name;
    ms_dep_kind kind;
    const char *version;   /* the range as written */
    const ms_range *range; /* parsed */
    const char *purpose;
} ms_dependency;

typedef struct ms_interface_provided {
    const char *name;
    const char *version; /* semver as written */
    ms_semver semver;
    const char *contract; /* path of interface.json, relative to the component; may be NULL */
    const char *header;   /* path of the C header; may be NULL */
} ms_interface_provided;

typedef struct ms_interface_consumed {
    const char *name;
    const char *version; /* the range as written */
    const ms_range *range;
    const char *const *subjects; /* patterns used of it; subject_count of them */
    size_t subject_count;
} ms_interface_consumed;

typedef enum ms_severity {
    MS_SEVERITY_LOW = 0,
    MS_SEVERITY_MEDIUM,
    MS_SEVERITY_HIGH,
    MS_SEVERITY_CRITICAL
} ms_severity;

typedef struct ms_known_issue {
    const char *id;
    const char *description;
    const char *workaround; /* NULL when none is known */
    ms_severity severity;
} ms_known_issue;

typedef struct ms_context ms_context;

/* Load and check a context.json file. *out (one reference) is the caller's.
 * MS_ERR_IO, MS_ERR_TOO_LARGE (over 4 MiB), MS_ERR_PARSE, MS_ERR_SCHEMA,
 * MS_ERR_NO_MEMORY, MS_ERR_INVALID_ARG. */
ms_status ms_context_load(const char *path, ms_context **out);
/* The same from a JSON value (borrowed: a deep copy is kept); source names
 * it in errors (NULL: "context.json"). */
ms_status ms_context_from_json(const json_t *root, const char *source, ms_context **out);
ms_context *ms_context_ref(ms_context *ctx); /* returns ctx; NULL-safe */
void ms_context_unref(ms_context *ctx);      /* NULL-safe */

const char *ms_context_source(const ms_context *ctx); /* file name or source label */
const char *ms_context_component(const ms_context *ctx);
const char *ms_context_version(const ms_context *ctx);
const ms_semver *ms_context_semver(const ms_context *ctx);
const char *ms_context_purpose(const ms_context *ctx);
/* The i-th element, or NULL past the end. */
size_t ms_context_decision_count(const ms_context *ctx);
const ms_design_decision *ms_context_decision_at(const ms_context *ctx, size_t i);
size_t ms_context_dependency_count(const ms_context *ctx);
const ms_dependency *ms_context_dependency_at(const ms_context *ctx, size_t i);
size_t ms_context_provides_count(const ms_context *ctx);
const ms_interface_provided *ms_context_provides_at(const ms_context *ctx, size_t i);
size_t ms_context_consumes_count(const ms_context *ctx);
const ms_interface_consumed *ms_context_consumes_at(const ms_context *ctx, size_t i);
size_t ms_context_issue_count(const ms_context *ctx);
const ms_known_issue *ms_context_issue_at(const ms_context *ctx, size_t i);
size_t ms_context_performance_count(const ms_context *ctx);
const char *ms_context_performance_at(const ms_context *ctx, size_t i);
size_t ms_context_security_count(const ms_context *ctx);
const char *ms_context_security_at(const ms_context *ctx, size_t i);
/* tests.command, or NULL when the file has no tests object. */
const char *ms_context_tests_command(const ms_context *ctx);
/* The document as loaded (borrowed, read-only: do not modify or incref it
 * from several threads; copy it to keep it). */
const json_t *ms_context_json(const ms_context *ctx);

/* Lookups used by the agent. The first dependency named name whose kind is
 * not MS_DEP_INTERFACE (then the first of kind interface); NULL if none. */
const ms_dependency *ms_context_find_dependency(const ms_context *ctx, const char *name);
/* The consumed interface named name, or NULL. */
const ms_interface_consumed *ms_context_find_consumed(const ms_context *ctx, const char *name);
/* The provided interface named name, or NULL. */
const ms_interface_provided *ms_context_find_provided(const ms_context *ctx, const char *name);

const char *ms_dd_status_str(ms_dd_status s); /* "proposed", ... */
const char *ms_dep_kind_str(ms_dep_kind k);   /* "component", ... */
const char *ms_severity_str(ms_severity s);   /* "low", ... */

/* --- agent-config.json -------------------------------------------------- */

/* How far an agent may go on its own. The values line up with ms_bump: an
 * agent may act on a change whose bump is at most its level. */
typedef enum ms_autonomy {
    MS_AUTONOMY_OBSERVE = 0, /* never acts: decides ignore or escalate only */
    MS_AUTONOMY_PATCH,       /* acts on patch-level changes */
    MS_AUTONOMY_MINOR,       /* acts on patch and minor */
    MS_AUTONOMY_MAJOR        /* acts on any change */
} ms_autonomy;

typedef enum ms_verdict { MS_VERDICT_IGNORE = 0, MS_VERDICT_ACT, MS_VERDICT_ESCALATE } ms_verdict;

/* What a rule matches; every field is optional (NULL / has_ = false) and
 * the ones present must all hold. */
typedef struct ms_rule_match {
    const char *type;       /* Ms-Type name, e.g. "interface_changed" */
    const char *subject;    /* a subject pattern (wildcards allowed) */
    const char *interface;  /* interface_changed: interface_name */
    const char *dependency; /* dependency_update: name */
    bool has_bump;
    ms_bump bump; /* patch, minor or major between the two versions */
    bool has_breaking;
    bool breaking; /* interface_changed: breaking */
} ms_rule_match;

typedef struct ms_agent_rule {
    const char *name; /* unique in the file; never starts with "default:" */
    ms_rule_match match;
    ms_verdict decision;
    const char *reason;
} ms_agent_rule;

typedef struct ms_env_var {
    const char *name;
    const char *value;
} ms_env_var;

/* The steps of the agent's pipeline, in order. change, build and test are
 * the argv commands of agent-config.json ("actions"); version and deploy
 * are framework steps (`mstack version add`, `mstack deploy`) whose argv
 * the pipeline builds, run when the file has an "actions.deploy" object
 * (ms_agent_config_deploy) and the agent knows the mstack program
 * (ms_agent_options.deploy_program). */
typedef enum ms_action_kind {
    MS_ACTION_CHANGE = 0,
    MS_ACTION_BUILD,
    MS_ACTION_TEST,
    MS_ACTION_VERSION,
    MS_ACTION_DEPLOY
} ms_action_kind;
#define MS_ACTION_KIND_COUNT 5
/* The kinds a config defines as commands: change, build, test. */
#define MS_ACTION_COMMAND_COUNT 3

typedef struct ms_agent_action {
    const char *const *argv; /* argc strings and a NULL; run without a shell */
    size_t argc;
    long long timeout_s;
    const ms_env_var *env; /* added to the environment; env_count of them */
    size_t env_count;
} ms_agent_action;

/* actions.deploy: how the framework steps version and deploy run. */
typedef struct ms_agent_deploy {
    const char *build_dir;   /* where <component>.so is built; relative: to the project root */
    long long timeout_s;     /* limit of each of the two steps (default 900) */
    const char *const *args; /* extra argv of `mstack deploy` (argc of them, then NULL); never
                                --no-promote, --root/-C, --json or --help/-h */
    size_t argc;
} ms_agent_deploy;

typedef struct ms_agent_config ms_agent_config;

/* Load and check an agent-config.json file; errors as ms_context_load. */
ms_status ms_agent_config_load(const char *path, ms_agent_config **out);
ms_status ms_agent_config_from_json(const json_t *root, const char *source, ms_agent_config **out);
ms_agent_config *ms_agent_config_ref(ms_agent_config *cfg); /* NULL-safe */
void ms_agent_config_unref(ms_agent_config *cfg);           /* NULL-safe */

const char *ms_agent_config_source(const ms_agent_config *cfg);
const char *ms_agent_config_component(const ms_agent_config *cfg);
size_t ms_agent_config_topic_count(const ms_agent_config *cfg);
const char *ms_agent_config_topic_at(const ms_agent_config *cfg, size_t i);
ms_autonomy ms_agent_config_autonomy(const ms_agent_config *cfg);
bool ms_agent_config_may_deploy(const ms_agent_config *cfg);
size_t ms_agent_config_rule_count(const ms_agent_config *cfg);
const ms_agent_rule *ms_agent_config_rule_at(const ms_agent_config *cfg, size_t i);
size_t ms_agent_config_responsibility_count(const ms_agent_config *cfg);
const char *ms_agent_config_responsibility_at(const ms_agent_config *cfg, size_t i);
size_t ms_agent_config_constraint_count(const ms_agent_config *cfg);
const char *ms_agent_config_constraint_at(const ms_agent_config *cfg, size_t i);
/* The action of that kind, or NULL when the file does not define it
 * (always NULL for MS_ACTION_VERSION and MS_ACTION_DEPLOY: framework steps). */
const ms_agent_action *ms_agent_config_action(const ms_agent_config *cfg, ms_action_kind kind);
/* actions.deploy, or NULL when the file has none (the pipeline then ends
 * after test). */
const ms_agent_deploy *ms_agent_config_deploy(const ms_agent_config *cfg);
/* escalation.subject, or mainstack.escalation.<component> when absent. */
const char *ms_agent_config_escalation_subject(const ms_agent_config *cfg);
const json_t *ms_agent_config_json(const ms_agent_config *cfg);

const char *ms_autonomy_str(ms_autonomy a); /* "observe", "patch", "minor", "major" */
const char *ms_verdict_str(ms_verdict v);   /* "ignore", "act", "escalate" */
ms_status ms_verdict_parse(const char *name, ms_verdict *out); /* MS_ERR_PARSE */
/* "change", "build", "test", "version", "deploy" */
const char *ms_action_kind_str(ms_action_kind k);

/* --- a component directory ----------------------------------------------- */

/* Load <dir>/context/context.json and <dir>/context/agent-config.json, and
 * check that both name the same component (MS_ERR_SCHEMA naming both
 * files otherwise). On success both outs hold a reference; on failure both
 * are NULL. Errors as ms_context_load. */
ms_status ms_context_load_dir(const char *dir, ms_context **ctx, ms_agent_config **cfg);

#ifdef __cplusplus
}
#endif
#endif
