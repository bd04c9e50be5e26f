/*
 * error.h - setting the thread-local error detail (internal).
 *
 *     return ms__err(MS_ERR_INVALID_SUBJECT, "subject '%s': empty token at byte %zu", s, i);
 *
 * records the detail and returns the status, so a failing path is one line.
 */
#ifndef MS_CORE_ERROR_H
#define MS_CORE_ERROR_H

#include "mainstack/status.h"

ms_status ms__err(ms_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the current detail with "what: " (keeps the inner detail). */
ms_status ms__err_wrap(ms_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
