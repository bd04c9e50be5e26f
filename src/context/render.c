/*
 * render.c - a component's AGENTS.md, written from its context files
 * (include/mainstack/check.h, `mstack context render`).
 *
 * Coding agents read AGENTS.md at the root of the directory they work in;
 * this file gives them the same facts the component's own agent decides
 * by, in prose and lists, with a header saying it is generated. The output
 * depends only on the files (no clock, no paths of the machine), so a CI
 * step can render it again and compare (`mstack context render --check`).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "context/check_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/json.h"

typedef struct buf {
    char *p;
    size_t len, cap;
    bool failed;
} buf;

static void put_n(buf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 4096;
        char *grown;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        grown = ms__realloc(b->p, ncap);
        if (grown == NULL) {
            b->failed = true;
            return;
        }
        b->p = grown;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void put(buf *b, const char *s)
{
    put_n(b, s, strlen(s));
}

static void putf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(buf *b, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        put_n(b, small, (size_t)n);
        return;
    }
    {
        char *big = ms__malloc((size_t)n + 1);
        if (big == NULL) {
            b->failed = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        put_n(b, big, (size_t)n);
        ms__free(big);
    }
}

/* Text in a table cell: '|' escaped, newlines as spaces. */
static void put_cell(buf *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        if (*p == '|')
            put(b, "\\|");
        else if (*p == '\n' || *p == '\r')
            put(b, " ");
        else
            put_n(b, p, 1);
    }
}

/* One argv word as a POSIX shell would need it to read it back. */
static void put_shell_word(buf *b, const char *w)
{
    bool plain = w[0] != '\0';
    for (const char *p = w; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%",
                       *p) != NULL;
    if (plain) {
        put(b, w);
        return;
    }
    put(b, "'");
    for (const char *p = w; *p; p++) {
        if (*p == '\'')
            put(b, "'\\''");
        else
            put_n(b, p, 1);
    }
    put(b, "'");
}

static void render_interfaces(buf *b, const ms_context *ctx, const json_t *iface)
{
    size_t np = ms_context_provides_count(ctx), nc = ms_context_consumes_count(ctx);
    const json_t *iconsumes = iface != NULL ? json_object_get(iface, "consumes") : NULL;
    size_t i;
    const json_t *e;

    put(b, "## Interfaces\n\n");
    put(b, "### Provided\n\n");
    if (np == 0)
        put(b, "Nothing: this component provides no interface.\n");
    for (i = 0; i < np; i++) {
        const ms_interface_provided *p = ms_context_provides_at(ctx, i);
        putf(b, "- **%s** %s", p->name, p->version);
        if (p->contract != NULL)
            putf(b, ", contract `%s`", p->contract);
        if (p->header != NULL)
            putf(b, ", C header `%s`", p->header);
        put(b, "\n");
    }
    if (iface != NULL) {
        static const char *const lists[2] = {"serves", "emits"};
        for (int k = 0; k < 2; k++) {
            const json_t *arr = json_object_get(iface, lists[k]);
            if (json_array_size(arr) == 0)
                continue;
            putf(b, "\n%s (interface.json):\n\n",
                 k == 0 ? "Requests it serves" : "Messages it emits");
            json_array_foreach(arr, i, e)
            {
                const char *subj = json_string_value(json_object_get(e, "subject"));
                const char *desc = json_string_value(json_object_get(e, "description"));
                const char *type = json_string_value(json_object_get(e, "type"));
                putf(b, "- `%s`", subj != NULL ? subj : "?");
                if (type != NULL)
                    putf(b, " (%s)", type);
                if (desc != NULL)
                    putf(b, ": %s", desc);
                put(b, "\n");
            }
        }
    }
    put(b, "\n### Consumed\n\n");
    if (nc == 0 && json_array_size(iconsumes) == 0)
        put(b, "Nothing: this component consumes no other interface.\n");
    for (i = 0; i < nc; i++) {
        const ms_interface_consumed *c = ms_context_consumes_at(ctx, i);
        putf(b, "- **%s**, versions `%s`", c->name, c->version);
        for (size_t j = 0; j < c->subject_count; j++)
            putf(b, "%s`%s`", j == 0 ? ", subjects " : ", ", c->subjects[j]);
        put(b, "\n");
    }
    if (json_array_size(iconsumes) > 0) {
        put(b, "\nWhat it subscribes to (interface.json):\n\n");
        json_array_foreach(iconsumes, i, e)
        {
            const char *subj = json_string_value(json_object_get(e, "subject"));
            const char *from = json_string_value(json_object_get(e, "interface"));
            const char *desc = json_string_value(json_object_get(e, "description"));
            putf(b, "- `%s`", subj != NULL ? subj : "?");
            if (from != NULL)
                putf(b, " (from %s)", from);
            if (desc != NULL)
                putf(b, ": %s", desc);
            put(b, "\n");
        }
    }
    put(b, "\n");
}

static void render_context(buf *b, const ms_context *ctx)
{
    size_t n;

    n = ms_context_decision_count(ctx);
    if (n > 0) {
        put(b, "## Design decisions\n\n");
        for (size_t i = 0; i < n; i++) {
            const ms_design_decision *d = ms_context_decision_at(ctx, i);
            putf(b, "- **%s** (%s, %s): %s\n  Why: %s\n", d->id, ms_dd_status_str(d->status),
                 d->date, d->decision, d->rationale);
        }
        put(b, "\n");
    }
    n = ms_context_dependency_count(ctx);
    if (n > 0) {
        put(b, "## Dependencies\n\n| name | kind | versions | what for |\n|---|---|---|---|\n");
        for (size_t i = 0; i < n; i++) {
            const ms_dependency *d = ms_context_dependency_at(ctx, i);
            put(b, "| ");
            put_cell(b, d->name);
            putf(b, " | %s | `", ms_dep_kind_str(d->kind));
            put_cell(b, d->version);
            put(b, "` | ");
            put_cell(b, d->purpose);
            put(b, " |\n");
        }
        put(b, "\n");
    }
    n = ms_context_issue_count(ctx);
    if (n > 0) {
        put(b, "## Known issues\n\n");
        for (size_t i = 0; i < n; i++) {
            const ms_known_issue *k = ms_context_issue_at(ctx, i);
            putf(b, "- **%s** (%s): %s\n", k->id, ms_severity_str(k->severity), k->description);
            if (k->workaround != NULL)
                putf(b, "  Workaround: %s\n", k->workaround);
        }
        put(b, "\n");
    }
    n = ms_context_performance_count(ctx);
    if (n > 0) {
        put(b, "## Performance\n\n");
        for (size_t i = 0; i < n; i++)
            putf(b, "- %s\n", ms_context_performance_at(ctx, i));
        put(b, "\n");
    }
    n = ms_context_security_count(ctx);
    if (n > 0) {
        put(b, "## Security\n\n");
        for (size_t i = 0; i < n; i++)
            putf(b, "- %s\n", ms_context_security_at(ctx, i));
        put(b, "\n");
    }
}

static void render_actions(buf *b, const ms_context *ctx, const ms_agent_config *cfg)
{
    const char *tests = ms_context_tests_command(ctx);
    const ms_agent_deploy *deploy;
    bool any = false;

    put(b, "## Build and test\n\nFrom the repository root.\n\n");
    if (tests != NULL)
        putf(b, "Run the tests:\n\n```sh\n%s\n```\n\n", tests);
    for (int k = 0; k < MS_ACTION_KIND_COUNT; k++) {
        const ms_agent_action *a = ms_agent_config_action(cfg, (ms_action_kind)k);
        if (a == NULL)
            continue;
        if (!any)
            put(b, "The agent's actions (each run without a shell, in this order, when it "
                   "acts):\n\n");
        any = true;
        putf(b, "- %s (timeout %llds", ms_action_kind_str((ms_action_kind)k), a->timeout_s);
        for (size_t i = 0; i < a->env_count; i++)
            putf(b, "%s%s=%s", i == 0 ? "; environment " : ", ", a->env[i].name, a->env[i].value);
        put(b, "):\n\n  ```sh\n  ");
        for (size_t i = 0; i < a->argc; i++) {
            if (i > 0)
                put(b, " ");
            put_shell_word(b, a->argv[i]);
        }
        put(b, "\n  ```\n\n");
    }
    deploy = ms_agent_config_deploy(cfg);
    if (deploy != NULL) {
        putf(b, "Then the framework's steps (timeout %llds each): `mstack version add %s ",
             deploy->timeout_s, ms_context_component(ctx));
        put_shell_word(b, deploy->build_dir);
        putf(b, "` records the build, and `mstack deploy %s VERSION", ms_context_component(ctx));
        for (size_t i = 0; i < deploy->argc; i++) {
            put(b, " ");
            put_shell_word(b, deploy->args[i]);
        }
        putf(b, "` tests it against the active version%s.\n\n",
             ms_agent_config_may_deploy(cfg)
                 ? " and promotes it"
                 : "; it is promoted only when a person approves the escalation");
        any = true;
    }
    if (tests == NULL && !any)
        put(b, "No test command is recorded in the context.\n\n");
}

static void put_match(buf *b, const ms_rule_match *m)
{
    const char *sep = "";
    if (m->type == NULL && m->subject == NULL && m->interface == NULL && m->dependency == NULL &&
        !m->has_bump && !m->has_breaking) {
        put(b, "every message");
        return;
    }
    if (m->type != NULL) {
        putf(b, "type `%s`", m->type);
        sep = ", ";
    }
    if (m->subject != NULL) {
        putf(b, "%ssubject `%s`", sep, m->subject);
        sep = ", ";
    }
    if (m->interface != NULL) {
        putf(b, "%sinterface `%s`", sep, m->interface);
        sep = ", ";
    }
    if (m->dependency != NULL) {
        putf(b, "%sdependency `%s`", sep, m->dependency);
        sep = ", ";
    }
    if (m->has_bump) {
        putf(b, "%sbump %s", sep, ms_bump_str(m->bump));
        sep = ", ";
    }
    if (m->has_breaking)
        putf(b, "%s%s", sep, m->breaking ? "breaking" : "not breaking");
}

static void render_agent(buf *b, const ms_agent_config *cfg)
{
    static const char *const level_text[] = {
        "never acts on its own: it ignores or escalates",
        "acts on its own on patch-level changes only",
        "acts on its own on patch and minor changes",
        "acts on its own on any change",
    };
    ms_autonomy level = ms_agent_config_autonomy(cfg);
    size_t n;

    n = ms_agent_config_responsibility_count(cfg);
    if (n > 0) {
        put(b, "## Responsibilities\n\n");
        for (size_t i = 0; i < n; i++)
            putf(b, "- %s\n", ms_agent_config_responsibility_at(cfg, i));
        put(b, "\n");
    }
    n = ms_agent_config_constraint_count(cfg);
    if (n > 0) {
        put(b, "## Constraints (never do these)\n\n");
        for (size_t i = 0; i < n; i++)
            putf(b, "- %s\n", ms_agent_config_constraint_at(cfg, i));
        put(b, "\n");
    }
    put(b, "## Autonomy and escalation\n\n");
    putf(b, "- Autonomy: **%s**, the agent %s (a breaking interface change counts as major).\n",
         ms_autonomy_str(level), level <= MS_AUTONOMY_MAJOR ? level_text[level] : "?");
    putf(b, "- Deploys without a person: %s.\n", ms_agent_config_may_deploy(cfg) ? "yes" : "no");
    putf(b,
         "- Escalations go to `%s`; whatever is beyond the autonomy level, or uncertain, "
         "is escalated there for a person.\n",
         ms_agent_config_escalation_subject(cfg));
    n = ms_agent_config_topic_count(cfg);
    for (size_t i = 0; i < n; i++)
        putf(b, "%s`%s`", i == 0 ? "- Monitored topics: " : ", ", ms_agent_config_topic_at(cfg, i));
    if (n > 0)
        put(b, ".\n");
    n = ms_agent_config_rule_count(cfg);
    if (n > 0) {
        put(b, "\nRules, tried in order before the default policy (docs/context.md); the first "
               "that matches decides:\n\n");
        for (size_t i = 0; i < n; i++) {
            const ms_agent_rule *r = ms_agent_config_rule_at(cfg, i);
            putf(b, "%zu. **%s**: ", i + 1, r->name);
            put_match(b, &r->match);
            putf(b, " → %s. %s\n", ms_verdict_str(r->decision), r->reason);
        }
    }
    put(b, "\n");
}

ms_status ms_context_render_agents_md(const ms_context *ctx, const ms_agent_config *cfg,
                                      const json_t *interface_json, char **markdown)
{
    buf b = {0};
    const char *name;

    if (markdown == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_context_render_agents_md: markdown is NULL");
    *markdown = NULL;
    if (ctx == NULL || cfg == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_context_render_agents_md: ctx or cfg is NULL");
    name = ms_context_component(ctx);
    putf(&b,
         "<!-- Generated from context/context.json, context/agent-config.json and "
         "interface.json by `mstack context render %s`. Do not edit by hand: edit those files "
         "and render again. -->\n\n",
         name);
    putf(&b, "# %s %s\n\n%s\n\n", name, ms_context_version(ctx), ms_context_purpose(ctx));
    put(&b, "This file is for coding agents and people changing this component. The facts "
            "come from `context/context.json` (what to know), `context/agent-config.json` (how "
            "its agent behaves) and `interface.json` (the contract); change those, then run "
            "`mstack check` and `mstack context render`.\n\n");
    render_interfaces(&b, ctx, interface_json);
    render_context(&b, ctx);
    render_actions(&b, ctx, cfg);
    render_agent(&b, cfg);
    /* One trailing newline. */
    while (!b.failed && b.len > 1 && b.p[b.len - 1] == '\n' && b.p[b.len - 2] == '\n')
        b.p[--b.len] = '\0';
    if (b.failed) {
        ms__free(b.p);
        return ms__err(MS_ERR_NO_MEMORY, "render: out of memory");
    }
    *markdown = b.p;
    return MS_OK;
}

ms_status ms_context_render_dir(const char *dir, char **markdown)
{
    ms_context *ctx = NULL;
    ms_agent_config *cfg = NULL;
    json_t *iface = NULL;
    char *path = NULL;
    struct stat st;
    ms_status s;

    if (markdown == NULL || dir == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_context_render_dir: NULL argument");
    *markdown = NULL;
    s = ms_context_load_dir(dir, &ctx, &cfg);
    if (s != MS_OK)
        goto cleanup;
    path = ms__check_join(dir, "interface.json");
    if (path == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "render: out of memory");
        goto cleanup;
    }
    if (stat(path, &st) == 0) {
        s = ms_json_load_file(path, 0, &iface);
        if (s != MS_OK)
            goto cleanup;
    }
    s = ms_context_render_agents_md(ctx, cfg, iface, markdown);
cleanup:
    json_decref(iface);
    ms__free(path);
    ms_agent_config_unref(cfg);
    ms_context_unref(ctx);
    return s;
}
