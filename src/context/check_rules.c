/*
 * check_rules.c - the agent-config half of the cross-checks: subject pattern
 * relations, and rules that can never match, name what the context does not
 * declare, or are shadowed by an earlier rule.
 *
 * A rule is judged by what ms_agent_evaluate does with it (src/agent): the
 * first rule whose match holds decides, interface and breaking hold only for
 * interface_changed, dependency only for dependency_update, bump only for
 * the two, and the agent sees only messages on its monitored topics. These
 * are warnings: the file is legal, the rule is just dead or misleading.
 */
#include <string.h>

#include "context/check_internal.h"

/* The token at *p (up to '.' or the end): its length; *p moves past it. */
static size_t token(const char **p, const char **start)
{
    const char *s = *p;
    size_t n = 0;
    *start = s;
    while (s[n] != '\0' && s[n] != '.')
        n++;
    *p = s[n] == '.' ? s + n + 1 : s + n;
    return n;
}

static bool is_tok(const char *t, size_t n, char c)
{
    return n == 1 && t[0] == c;
}

bool ms__pattern_overlap(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        const char *ta, *tb;
        size_t na = token(&a, &ta), nb = token(&b, &tb);
        if (is_tok(ta, na, '>') || is_tok(tb, nb, '>'))
            return true; /* the other has at least this one token left */
        if (!is_tok(ta, na, '*') && !is_tok(tb, nb, '*') && (na != nb || memcmp(ta, tb, na) != 0))
            return false;
    }
    return *a == '\0' && *b == '\0';
}

bool ms__pattern_covers(const char *a, const char *b)
{
    while (*a != '\0' && *b != '\0') {
        const char *ta, *tb;
        size_t na = token(&a, &ta), nb = token(&b, &tb);
        if (is_tok(ta, na, '>'))
            return true;
        if (is_tok(tb, nb, '>'))
            return false; /* b takes any length, a a fixed one */
        if (is_tok(ta, na, '*'))
            continue;
        if (is_tok(tb, nb, '*') || na != nb || memcmp(ta, tb, na) != 0)
            return false;
    }
    return *a == '\0' && *b == '\0';
}

static bool str_eq(const char *a, const char *b)
{
    return a != NULL && b != NULL && strcmp(a, b) == 0;
}

/* Every message b matches, a matches too. */
static bool match_covers(const ms_rule_match *a, const ms_rule_match *b)
{
    if (a->type != NULL && !str_eq(a->type, b->type))
        return false;
    if (a->subject != NULL && (b->subject == NULL || !ms__pattern_covers(a->subject, b->subject)))
        return false;
    if (a->interface != NULL && !str_eq(a->interface, b->interface))
        return false;
    if (a->dependency != NULL && !str_eq(a->dependency, b->dependency))
        return false;
    if (a->has_bump && (!b->has_bump || a->bump != b->bump))
        return false;
    if (a->has_breaking && (!b->has_breaking || a->breaking != b->breaking))
        return false;
    return true;
}

/* Why the rule can never match, or NULL. */
static const char *never_reason(const ms_agent_config *cfg, const ms_rule_match *m, char *buf,
                                size_t size)
{
    bool iface_only = m->interface != NULL || m->has_breaking;
    const char *which = m->interface != NULL ? "interface" : "breaking";
    size_t ntopics = ms_agent_config_topic_count(cfg);

    if (iface_only && m->dependency != NULL) {
        snprintf(buf, size,
                 "it asks for %s (interface_changed only) and dependency (dependency_update "
                 "only): no message has both",
                 which);
        return buf;
    }
    if (m->type != NULL && iface_only && strcmp(m->type, "interface_changed") != 0) {
        snprintf(buf, size, "%s holds only for interface_changed, but the rule's type is %s", which,
                 m->type);
        return buf;
    }
    if (m->type != NULL && m->dependency != NULL && strcmp(m->type, "dependency_update") != 0) {
        snprintf(buf, size,
                 "dependency holds only for dependency_update, but the rule's type is %s", m->type);
        return buf;
    }
    if (m->type != NULL && m->has_bump && strcmp(m->type, "interface_changed") != 0 &&
        strcmp(m->type, "dependency_update") != 0) {
        snprintf(buf, size,
                 "bump holds only for interface_changed and dependency_update (whose payloads "
                 "carry two versions), but the rule's type is %s",
                 m->type);
        return buf;
    }
    if (m->subject != NULL && ntopics > 0) {
        for (size_t i = 0; i < ntopics; i++) {
            if (ms__pattern_overlap(m->subject, ms_agent_config_topic_at(cfg, i)))
                return NULL;
        }
        snprintf(buf, size,
                 "subject '%s' overlaps none of the monitored topics: the agent never receives "
                 "such a message",
                 m->subject);
        return buf;
    }
    return NULL;
}

static bool declares_interface(const ms_context *ctx, const char *name)
{
    if (ms_context_find_consumed(ctx, name) != NULL || ms_context_find_provided(ctx, name) != NULL)
        return true;
    for (size_t i = 0; i < ms_context_dependency_count(ctx); i++) {
        const ms_dependency *d = ms_context_dependency_at(ctx, i);
        if (d->kind == MS_DEP_INTERFACE && strcmp(d->name, name) == 0)
            return true;
    }
    return false;
}

ms_status ms__check_rules(ms_check_report *r, const ms__check_component *c)
{
    const ms_agent_config *cfg = c->cfg;
    const char *file = c->cfg_path;
    size_t n = ms_agent_config_rule_count(cfg);
    size_t ntopics = ms_agent_config_topic_count(cfg);
    bool never[256];
    ms_status s = MS_OK;
    char ptr[96], why[512];

    for (size_t i = 0; i < ntopics && s == MS_OK; i++) {
        const char *t = ms_agent_config_topic_at(cfg, i);
        for (size_t j = 0; j < ntopics; j++) {
            const char *o = ms_agent_config_topic_at(cfg, j);
            if (j == i || !ms__pattern_covers(o, t) || (strcmp(o, t) == 0 && j > i))
                continue;
            snprintf(ptr, sizeof ptr, "/monitored_topics/%zu", i);
            s = ms__check_add(r, MS_CHECK_WARNING, "topic-redundant", file, 0, 0, ptr,
                              "'%s' is already covered by '%s' (/monitored_topics/%zu)", t, o, j);
            break;
        }
    }
    for (size_t i = 0; i < n && s == MS_OK; i++) {
        const ms_agent_rule *rule = ms_agent_config_rule_at(cfg, i);
        const ms_rule_match *m = &rule->match;
        const char *reason = never_reason(cfg, m, why, sizeof why);

        if (i < sizeof never / sizeof never[0])
            never[i] = reason != NULL;
        if (reason != NULL) {
            snprintf(ptr, sizeof ptr, "/rules/%zu/match", i);
            s = ms__check_add(r, MS_CHECK_WARNING, "rule-never-matches", file, 0, 0, ptr,
                              "rule '%s' can never match: %s", rule->name, reason);
            continue;
        }
        if (c->ctx != NULL && m->interface != NULL && !declares_interface(c->ctx, m->interface)) {
            snprintf(ptr, sizeof ptr, "/rules/%zu/match/interface", i);
            s = ms__check_add(r, MS_CHECK_WARNING, "rule-unknown-interface", file, 0, 0, ptr,
                              "rule '%s' is about interface '%s', which its context.json neither "
                              "consumes nor provides",
                              rule->name, m->interface);
            if (s != MS_OK)
                break;
        }
        if (c->ctx != NULL && m->dependency != NULL &&
            ms_context_find_dependency(c->ctx, m->dependency) == NULL) {
            snprintf(ptr, sizeof ptr, "/rules/%zu/match/dependency", i);
            s = ms__check_add(r, MS_CHECK_WARNING, "rule-unknown-dependency", file, 0, 0, ptr,
                              "rule '%s' is about dependency '%s', which its context.json does not "
                              "list",
                              rule->name, m->dependency);
            if (s != MS_OK)
                break;
        }
        for (size_t j = 0; j < i && j < sizeof never / sizeof never[0]; j++) {
            const ms_agent_rule *earlier = ms_agent_config_rule_at(cfg, j);
            if (never[j] || !match_covers(&earlier->match, m))
                continue;
            snprintf(ptr, sizeof ptr, "/rules/%zu", i);
            s = ms__check_add(r, MS_CHECK_WARNING, "rule-shadowed", file, 0, 0, ptr,
                              "rule '%s' never decides: the earlier rule '%s' (/rules/%zu) matches "
                              "every message it matches",
                              rule->name, earlier->name, j);
            break;
        }
    }
    return s;
}
