/*
 * watch.c - the verdict of the watch window that follows a promotion.
 *
 * Pure arithmetic over the samples the caller gathered ($SRV.STATS
 * responses and health statuses as JSON), so the decision can be tested
 * without a bus: `mstack deploy` samples, calls ms_watch_judge after each
 * sample and rolls back on the first degraded verdict. Health is judged
 * first (an unhealthy instance is degraded whatever its error rate), then
 * the error rate, only once the new version handled min_requests in the
 * window. Rates are percentages (0..100).
 */
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "mainstack/deploy.h"

void ms_watch_limits_init(ms_watch_limits *l)
{
    l->max_error_rate_increase = 5.0;
    l->min_requests = 20;
}

static const char *str(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

static uint64_t count_of(const json_t *o, const char *key)
{
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v > 0 ? (uint64_t)v : 0;
}

/* The sums over the endpoints of one STATS response. */
static void sum_endpoints(const json_t *st, uint64_t *requests, uint64_t *errors)
{
    size_t i;
    json_t *ep;

    *requests = 0;
    *errors = 0;
    json_array_foreach(json_object_get(st, "endpoints"), i, ep)
    {
        *requests += count_of(ep, "num_requests");
        *errors += count_of(ep, "num_errors");
    }
}

static bool is_stats_of(const json_t *st, const char *component)
{
    return json_is_object(st) && strcmp(str(st, "name"), component) == 0;
}

/* The STATS response of instance id in list, or NULL. */
static const json_t *find_id(const json_t *list, const char *id)
{
    size_t i;
    json_t *st;

    json_array_foreach(list, i, st)
    {
        if (json_is_object(st) && strcmp(str(st, "id"), id) == 0)
            return st;
    }
    return NULL;
}

static double rate_of(uint64_t requests, uint64_t errors)
{
    return requests > 0 ? 100.0 * (double)errors / (double)requests : 0.0;
}

static bool instance_ok(const json_t *inst)
{
    return strcmp(str(inst, "state"), "running") == 0 &&
           (strcmp(str(inst, "status"), "healthy") == 0 ||
            strcmp(str(inst, "status"), "degraded") == 0);
}

ms_status ms_watch_judge(const char *component, const json_t *previous, const json_t *start,
                         const json_t *now, const json_t *health, const ms_watch_limits *l,
                         ms_watch_verdict *out)
{
    ms_watch_limits defaults;
    size_t i, unhealthy = 0;
    json_t *st;
    const json_t *first_bad = NULL;

    if (out == NULL || component == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "watch: component and out are required");
    if ((previous != NULL && !json_is_array(previous)) ||
        (start != NULL && !json_is_array(start)) || (now != NULL && !json_is_array(now)) ||
        (health != NULL && !json_is_array(health)))
        return ms__err(MS_ERR_INVALID_ARG,
                       "watch: previous, start, now and health must be JSON arrays (or NULL)");
    if (l == NULL) {
        ms_watch_limits_init(&defaults);
        l = &defaults;
    }
    memset(out, 0, sizeof *out);

    json_array_foreach(previous, i, st)
    {
        uint64_t r, e;
        if (!is_stats_of(st, component))
            continue;
        sum_endpoints(st, &r, &e);
        out->previous_requests += r;
        out->previous_errors += e;
    }
    out->previous_rate = rate_of(out->previous_requests, out->previous_errors);

    json_array_foreach(now, i, st)
    {
        uint64_t r, e, r0 = 0, e0 = 0;
        const json_t *before;
        if (!is_stats_of(st, component))
            continue;
        sum_endpoints(st, &r, &e);
        before = find_id(start, str(st, "id"));
        if (before != NULL)
            sum_endpoints(before, &r0, &e0);
        if (before != NULL && r >= r0 && e >= e0) {
            r -= r0;
            e -= e0;
        }
        out->requests += r;
        out->errors += e;
    }

    json_array_foreach(health, i, st)
    {
        if (!json_is_object(st) || strcmp(str(st, "component"), component) != 0)
            continue;
        if (!instance_ok(st)) {
            unhealthy++;
            if (first_bad == NULL)
                first_bad = st;
        }
    }
    if (unhealthy > 0) {
        out->degraded = true;
        snprintf(out->check, sizeof out->check, "health");
        out->value = (double)unhealthy;
        out->threshold = 0;
        snprintf(out->detail, sizeof out->detail, "%zu instance%s unhealthy: %s is %s/%s%s%s",
                 unhealthy, unhealthy == 1 ? "" : "s", str(first_bad, "instance"),
                 str(first_bad, "state"), str(first_bad, "status"),
                 str(first_bad, "detail")[0] ? ": " : "", str(first_bad, "detail"));
        return MS_OK;
    }

    out->value = rate_of(out->requests, out->errors);
    out->threshold = out->previous_rate + l->max_error_rate_increase;
    if (out->requests >= l->min_requests && out->requests > 0 && out->value > out->threshold) {
        out->degraded = true;
        snprintf(out->check, sizeof out->check, "error_rate");
        snprintf(out->detail, sizeof out->detail,
                 "error rate %.1f%% (%llu of %llu requests) exceeds the previous version's "
                 "%.1f%% + %.1f points",
                 out->value, (unsigned long long)out->errors, (unsigned long long)out->requests,
                 out->previous_rate, l->max_error_rate_increase);
        return MS_OK;
    }
    snprintf(out->detail, sizeof out->detail,
             "error rate %.1f%% (%llu of %llu requests), previous %.1f%%, limit %.1f%%", out->value,
             (unsigned long long)out->errors, (unsigned long long)out->requests, out->previous_rate,
             out->threshold);
    return MS_OK;
}
