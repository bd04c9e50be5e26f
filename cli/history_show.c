/*
 * history_show.c - `mstack history COMPONENT ID`: one deployment as the
 * registry keeps it, step by step. The comparison table of the test step,
 * the failing tests with what they printed, the per-host table of a
 * promotion or rollback, the watch window's verdict; a step this file does
 * not know is shown by its outcome and the text of its detail ("error",
 * "detail" or "reason"), so newer steps still print something useful.
 *
 * Everything printed comes from the stored JSON record (the same that
 * `mstack history --json` gives), never from a live host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CELL_MAX 64

/* A JSON scalar as table text (NULL for a missing value: printed "-"). */
static const char *cell_text(const json_t *v, char buf[CELL_MAX])
{
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, CELL_MAX, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, CELL_MAX, "%.3g", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "yes" : "no";
    return NULL;
}

int cli_print_rows(FILE *f, const json_t *rows, size_t ncols, const char *const *keys,
                   const char *const *headers, const char *indent)
{
    char bufs[8][CELL_MAX];
    cli_table t = {0};
    const json_t *r;
    size_t i;
    int rc;

    if (ncols > 8)
        return CLI_EXIT_FAILURE;
    if ((rc = cli_table_init(&t, ncols, headers)) != CLI_EXIT_OK)
        return rc;
    json_array_foreach(rows, i, r)
    {
        const char *cells[8];
        for (size_t k = 0; k < ncols; k++)
            cells[k] = cell_text(json_object_get(r, keys[k]), bufs[k]);
        if ((rc = cli_table_add(&t, cells)) != CLI_EXIT_OK)
            goto cleanup;
    }
    if (indent == NULL || indent[0] == '\0') {
        cli_table_print(&t, f);
    } else {
        /* cli_table_print has no indent: print to memory, then prefix lines */
        char *text = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&text, &len);

        if (m == NULL) {
            rc = CLI_EXIT_FAILURE;
            goto cleanup;
        }
        cli_table_print(&t, m);
        fclose(m);
        for (char *line = text, *nl; line != NULL && *line != '\0'; line = nl) {
            nl = strchr(line, '\n');
            if (nl != NULL)
                *nl++ = '\0';
            fprintf(f, "%s%s\n", indent, line);
        }
        free(text);
    }
cleanup:
    cli_table_reset(&t);
    return rc;
}

static void show_comparison(const json_t *d)
{
    const json_t *failures = json_object_get(d, "failures"), *fl;
    const char *err = json_string_value(json_object_get(d, "error"));
    size_t i;

    if (json_array_size(json_object_get(d, "table")) > 0)
        cli_deploy_print_comparison(json_object_get(d, "table"), "    ");
    json_array_foreach(failures, i, fl)
    {
        printf("    failing: %s: %s\n", json_string_value(json_object_get(fl, "test")),
               json_string_value(json_object_get(fl, "output")));
    }
    if (err != NULL && err[0] != '\0')
        printf("    %s\n", err);
}

static void show_hosts(const json_t *d)
{
    static const char *const keys[] = {"name",    "instances", "from_version", "to_version",
                                       "serving", "result",    "switch_us",    "error"};
    static const char *const headers[] = {"HOST",    "INSTANCES", "FROM",      "TO",
                                          "SERVING", "RESULT",    "SWITCH_US", "ERROR"};
    const char *err = json_string_value(json_object_get(d, "error"));
    const char *failed = json_string_value(json_object_get(d, "failed_host"));

    if (json_is_integer(json_object_get(d, "total_ms")))
        printf("    %lld ms from the command to every host serving, %lld instance%s found\n",
               (long long)json_integer_value(json_object_get(d, "total_ms")),
               (long long)json_integer_value(json_object_get(d, "instances_found")),
               json_integer_value(json_object_get(d, "instances_found")) == 1 ? "" : "s");
    if (json_array_size(json_object_get(d, "hosts")) > 0)
        (void)cli_print_rows(stdout, json_object_get(d, "hosts"), 8, keys, headers, "    ");
    if (err != NULL && err[0] != '\0')
        printf("    %s%s%s\n", failed && failed[0] ? failed : "", failed && failed[0] ? ": " : "",
               err);
}

/* An intent (recorded before the step acted): what it was about to do. */
static bool show_intent(const char *outcome, const json_t *d)
{
    if (strcmp(outcome, "preparing") == 0) {
        const char *from = json_string_value(json_object_get(d, "from"));
        printf("    about to prepare %s -> %s on every host (promotion %s)\n",
               from ? from : "(none)", json_string_value(json_object_get(d, "to")),
               json_string_value(json_object_get(d, "promote_id")));
        return true;
    }
    if (strcmp(outcome, "switching") == 0) {
        const json_t *h;
        size_t i;

        printf("    prepared, about to switch:");
        json_array_foreach(json_object_get(d, "hosts"), i, h)
        {
            printf("%s %s (%lld instance%s)", i ? "," : "",
                   json_string_value(json_object_get(h, "name")),
                   (long long)json_integer_value(json_object_get(h, "instances")),
                   json_integer_value(json_object_get(h, "instances")) == 1 ? "" : "s");
        }
        printf("\n");
        return true;
    }
    if (strcmp(outcome, "watching") == 0) {
        printf("    window %lld ms: error rate at most the previous + %lld points over at least "
               "%lld requests, every instance healthy\n",
               (long long)json_integer_value(json_object_get(d, "window_ms")),
               (long long)json_integer_value(json_object_get(d, "max_error_rate_increase")),
               (long long)json_integer_value(json_object_get(d, "min_requests")));
        return true;
    }
    return false;
}

static void show_other(const json_t *d)
{
    static const char *const texts[] = {"detail", "error", "reason"};

    for (size_t k = 0; k < sizeof texts / sizeof texts[0]; k++) {
        const char *s = json_string_value(json_object_get(d, texts[k]));
        if (s != NULL && s[0] != '\0') {
            printf("    %s\n", s);
            return;
        }
    }
}

int cli_history_show(ms_registry *reg, const char *component, int64_t id, bool json)
{
    json_t *dep = NULL, *st;
    const json_t *detail, *steps;
    const char *owner, *from;
    size_t i;
    int rc = CLI_EXIT_FAILURE;

    if (ms_registry_deployment_get(reg, id, &dep) != MS_OK) {
        cli_error("%s", ms_last_error());
        return CLI_EXIT_FAILURE;
    }
    owner = json_string_value(json_object_get(dep, "component"));
    if (owner == NULL || strcmp(owner, component) != 0) {
        cli_error("deployment %lld is of %s, not of %s (mstack history %s lists %s's)",
                  (long long)id, owner ? owner : "(unknown)", component, component, component);
        goto cleanup;
    }
    rc = CLI_EXIT_OK;
    if (json) {
        cli_print_json(dep, true);
        goto cleanup;
    }
    detail = json_object_get(dep, "detail");
    from = json_string_value(json_object_get(dep, "from_version"));
    printf("deployment %lld of %s: %s -> %s, %s\n", (long long)id, component,
           from ? from : "(none active)", json_string_value(json_object_get(dep, "to_version")),
           json_string_value(json_object_get(dep, "state")));
    printf("  by %s, begun %s, last step %s\n", json_string_value(json_object_get(detail, "who")),
           json_string_value(json_object_get(dep, "time")),
           json_string_value(json_object_get(dep, "updated_time")));
    steps = json_object_get(detail, "steps");
    json_array_foreach(steps, i, st)
    {
        const char *name = json_string_value(json_object_get(st, "step"));
        const char *outcome = json_string_value(json_object_get(st, "outcome"));
        const json_t *d = json_object_get(st, "detail");

        if (name == NULL || outcome == NULL)
            continue;
        printf("  %s: %s (%s)\n", name, outcome, json_string_value(json_object_get(st, "time")));
        if (d == NULL || show_intent(outcome, d))
            continue;
        if (strcmp(name, "test") == 0)
            show_comparison(d);
        else if (json_object_get(d, "hosts") != NULL)
            show_hosts(d);
        else
            show_other(d);
    }
cleanup:
    json_decref(dep);
    return rc;
}
