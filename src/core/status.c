/*
 * status.c - status names and the thread-local error detail.
 *
 * The detail buffer is per thread (like errno), so a failing call on one
 * thread never clobbers the message another thread is about to read.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "mainstack/status.h"
#include "mainstack/version.h"

#define DETAIL_MAX 1024

static _Thread_local char detail[DETAIL_MAX];

static const char *const names[MS_STATUS_COUNT_] = {
    [MS_OK] = "ok",
    [MS_ERR_INVALID_ARG] = "invalid_argument",
    [MS_ERR_NO_MEMORY] = "no_memory",
    [MS_ERR_INVALID_SUBJECT] = "invalid_subject",
    [MS_ERR_TOO_LARGE] = "too_large",
    [MS_ERR_TIMEOUT] = "timeout",
    [MS_ERR_NO_RESPONDERS] = "no_responders",
    [MS_ERR_CONNECTION] = "connection",
    [MS_ERR_CLOSED] = "closed",
    [MS_ERR_FULL] = "full",
    [MS_ERR_NOT_FOUND] = "not_found",
    [MS_ERR_PARSE] = "parse",
    [MS_ERR_SCHEMA] = "schema",
    [MS_ERR_IO] = "io",
    [MS_ERR_STATE] = "state",
    [MS_ERR_UNSUPPORTED] = "unsupported",
    [MS_ERR_AUTH] = "auth",
    [MS_ERR_INTERNAL] = "internal",
};

const char *ms_status_name(ms_status s)
{
    if ((unsigned)s >= MS_STATUS_COUNT_ || names[s] == NULL)
        return "unknown_status";
    return names[s];
}

const char *ms_last_error(void)
{
    return detail;
}

void ms_clear_error(void)
{
    detail[0] = '\0';
}

ms_status ms__err(ms_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return s;
}

ms_status ms__err_wrap(ms_status s, const char *fmt, ...)
{
    char inner[DETAIL_MAX];
    char outer[DETAIL_MAX];
    va_list ap;

    memcpy(inner, detail, sizeof inner);
    va_start(ap, fmt);
    vsnprintf(outer, sizeof outer, fmt, ap);
    va_end(ap);
    /* Keep as much of both as fits: the outer context is short by nature. */
    if (inner[0] != '\0')
        snprintf(detail, sizeof detail, "%.255s: %.760s", outer, inner);
    else
        snprintf(detail, sizeof detail, "%s", outer);
    return s;
}

const char *ms_version(void)
{
    return MS_VERSION_STRING;
}
