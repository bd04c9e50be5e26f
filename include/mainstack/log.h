/*
 * log.h - levelled logging, one logfmt line per event on stderr.
 *
 *   ts=2026-11-25T10:43:46.123Z level=info mod=bus msg="connected" url=nats://...
 *
 * The threshold comes from the MAINSTACK_LOG environment variable (trace,
 * debug, info, warn, error, off; default warn) read on first use, and can be
 * changed with ms_log_set_level(). Lines are written with one write(2) so that
 * lines from different threads never interleave. Thread-safe.
 */
#ifndef MAINSTACK_LOG_H
#define MAINSTACK_LOG_H

#include <stdbool.h>

#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_log_level {
    MS_LOG_TRACE = 0,
    MS_LOG_DEBUG,
    MS_LOG_INFO,
    MS_LOG_WARN,
    MS_LOG_ERROR,
    MS_LOG_OFF
} ms_log_level;

/* Receives each formatted line (no trailing newline). Called on the logging
 * thread; must be thread-safe. */
typedef void (*ms_log_sink)(ms_log_level level, const char *line, void *closure);

void ms_log_set_level(ms_log_level level);
ms_log_level ms_log_get_level(void);
bool ms_log_enabled(ms_log_level level);

/* Parse "trace".."off" (case-insensitive). MS_ERR_PARSE when unknown. */
ms_status ms_log_level_parse(const char *name, ms_log_level *out);
const char *ms_log_level_name(ms_log_level level);

/* Replace the stderr sink (NULL restores stderr). For tests and embedders. */
void ms_log_set_sink(ms_log_sink sink, void *closure);

/* Log msg with key/value pairs: a NULL-terminated list of const char * keys
 * and values, e.g. ms_log_kv(MS_LOG_INFO, "bus", "connected", "url", u, NULL).
 * Values are quoted when they need it. */
void ms_log_kv(ms_log_level level, const char *module, const char *msg, ...);

/* printf-style message, no extra keys. */
void ms_logf(ms_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
