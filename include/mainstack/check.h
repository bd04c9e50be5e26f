/*
 * check.h - checking a stack's context files, and rendering a component's
 * AGENTS.md from them.
 *
 * ms_check_stack finds the components under the paths it is given, checks
 * every component's files (context/context.json, context/agent-config.json,
 * interface.json) for syntax (file:line:column), against the JSON Schemas in
 * schemas/ (file: /json/pointer) and by the typed loaders of context.h, then
 * cross-checks the whole set: names agree, versions agree, each consumed
 * interface and component dependency is in the stack and within range, and
 * each agent rule can match and is not shadowed. Everything it finds is a
 * finding of a report; the call itself fails only when it cannot run (no
 * such path, no schemas). docs/context.md, "Checking and rendering", lists
 * every finding code.
 *
 *     ms_check_report *r;
 *     if (ms_check_stack(NULL, 0, NULL, &r) == MS_OK) {
 *         for (size_t i = 0; i < ms_check_report_count(r); i++) {
 *             char line[2048];
 *             ms_check_finding_format(ms_check_report_at(r, i), line, sizeof line);
 *             puts(line);
 *         }
 *         ms_check_report_destroy(r);
 *     }
 *
 * Threading: each call works on its own data; a report is immutable once
 * returned and may be read from any thread.
 */
#ifndef MAINSTACK_CHECK_H
#define MAINSTACK_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "mainstack/context.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_check_level {
    MS_CHECK_ERROR =
        0,           /* the files are wrong: a loader refuses them or the stack is inconsistent */
    MS_CHECK_WARNING /* legal but probably a mistake (a rule that can never match, ...) */
} ms_check_level;

typedef struct ms_check_finding {
    ms_check_level level;
    const char *code;    /* stable kebab-case name: "syntax", "schema", "unknown-interface", ... */
    const char *file;    /* the file it is about (as found: relative paths stay relative) */
    int line, column;    /* > 0 for a syntax error (1-based), else 0 */
    const char *pointer; /* RFC 6901 pointer into the file ("" = the root), or NULL */
    const char *message; /* what is wrong, in words */
} ms_check_finding;

typedef struct ms_check_options {
    /* Directory of context.schema.json, agent-config.schema.json and
     * interface.schema.json. NULL: <root>/schemas of the project root found
     * from the first path (or the current directory), else the installed
     * <datadir>/mainstack/schemas. */
    const char *schemas_dir;
} ms_check_options;

typedef struct ms_check_report ms_check_report;

/* Check the components found under paths[0..n): each a component directory
 * (it has a context/ subdirectory), a components directory (every
 * subdirectory with a context/), or a project root (its components/). With
 * n == 0, the components/ of the project root found by walking up from the
 * current directory. A component found twice is checked once.
 * MS_OK: *out holds the report (the caller's; ms_check_report_destroy),
 * whatever it found. MS_ERR_NOT_FOUND: a path does not exist or holds no
 * component, or no project root was found (the detail names it);
 * MS_ERR_IO, MS_ERR_PARSE, MS_ERR_SCHEMA, MS_ERR_UNSUPPORTED: a schema
 * could not be loaded (the detail names the file); MS_ERR_NO_MEMORY;
 * MS_ERR_INVALID_ARG (out NULL, or paths NULL with n > 0). opt may be NULL. */
ms_status ms_check_stack(const char *const *paths, size_t n, const ms_check_options *opt,
                         ms_check_report **out);

/* Free a report. NULL-safe. */
void ms_check_report_destroy(ms_check_report *r);

/* Findings in order: per component (in the order found) its syntax, schema
 * and loader findings file by file, then the cross-checks. The i-th, or
 * NULL past the end; borrowed from the report. */
size_t ms_check_report_count(const ms_check_report *r);
const ms_check_finding *ms_check_report_at(const ms_check_report *r, size_t i);
size_t ms_check_report_errors(const ms_check_report *r);
size_t ms_check_report_warnings(const ms_check_report *r);
/* The component directories checked, in order (borrowed). */
size_t ms_check_report_component_count(const ms_check_report *r);
const char *ms_check_report_component_at(const ms_check_report *r, size_t i);

/* {"components": [dir...], "errors": n, "warnings": n, "findings": [{"level":
 * "error"|"warning", "code", "file", "line"?, "column"?, "pointer"?,
 * "message"}]}. *out is a new reference. MS_ERR_NO_MEMORY, MS_ERR_INVALID_ARG. */
ms_status ms_check_report_to_json(const ms_check_report *r, json_t **out);

/* One line: "file:line:column: error: message" for a syntax finding,
 * "file: /pointer: warning: message" for one with a pointer ("(root)" for
 * the document), "file: error: message" otherwise. Truncated to fit, always
 * NUL terminated; returns the length it needed (as snprintf). */
size_t ms_check_finding_format(const ms_check_finding *f, char *buf, size_t size);

const char *ms_check_level_str(ms_check_level l); /* "error", "warning" */

/* The project root: the nearest of start (NULL: the current directory) and
 * its parents that holds both schemas/ and components/. *root is malloc'd
 * (free()). MS_ERR_NOT_FOUND, MS_ERR_IO, MS_ERR_NO_MEMORY. */
ms_status ms_check_find_root(const char *start, char **root);

/* --- AGENTS.md -------------------------------------------------------------- */

/* Render a component's AGENTS.md from its context: a generated-file header,
 * purpose, interfaces provided (with the subjects interface.json serves and
 * emits) and consumed (with their subjects), design decisions with their
 * status, dependencies with their ranges, known issues with workarounds,
 * performance and security notes, how to build and test (tests.command and
 * the actions' argv), responsibilities and constraints, autonomy, rules and
 * escalation. Deterministic: the same files give the same bytes.
 * ctx and cfg are borrowed; interface_json (borrowed) may be NULL.
 * *markdown is malloc'd, NUL terminated (free()). MS_ERR_INVALID_ARG,
 * MS_ERR_NO_MEMORY. */
ms_status ms_context_render_agents_md(const ms_context *ctx, const ms_agent_config *cfg,
                                      const json_t *interface_json, char **markdown);

/* Load <dir>/context/context.json and agent-config.json (ms_context_load_dir) and
 * <dir>/interface.json when it exists, and render them. Errors as ms_context_load_dir, and as
 * ms_json_load_file for interface.json. */
ms_status ms_context_render_dir(const char *dir, char **markdown);

#ifdef __cplusplus
}
#endif
#endif
