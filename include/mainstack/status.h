/*
 * status.h - the one status type of mainstack and its thread-local detail.
 *
 * Every fallible call returns an ms_status (MS_OK == 0) and passes results
 * through out-parameters. When a call fails it also leaves a human-readable
 * detail in a thread-local buffer (what was wrong and where), read with
 * ms_last_error() on the same thread, the way errno / nats_GetLastError work.
 */
#ifndef MAINSTACK_STATUS_H
#define MAINSTACK_STATUS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ms_status {
    MS_OK = 0,
    MS_ERR_INVALID_ARG,     /* a NULL or out-of-range argument */
    MS_ERR_NO_MEMORY,       /* an allocation failed */
    MS_ERR_INVALID_SUBJECT, /* a subject or pattern breaks the NATS rules */
    MS_ERR_TOO_LARGE,       /* a payload over the transport's max_payload */
    MS_ERR_TIMEOUT,         /* a deadline passed (request, flush, drain, connect) */
    MS_ERR_NO_RESPONDERS,   /* a request found nobody subscribed to its subject */
    MS_ERR_CONNECTION,      /* cannot connect, or the connection was lost */
    MS_ERR_CLOSED,          /* the bus or subscription is closed or draining */
    MS_ERR_FULL,            /* a bounded queue stayed full past its timeout */
    MS_ERR_NOT_FOUND,       /* a named thing does not exist */
    MS_ERR_PARSE,           /* malformed input (JSON, URL, header, ...) */
    MS_ERR_SCHEMA,          /* well-formed input of the wrong shape */
    MS_ERR_IO,              /* a system call on a file or socket failed */
    MS_ERR_STATE,           /* the call is not valid in the object's current state */
    MS_ERR_UNSUPPORTED,     /* the transport or build cannot do this */
    MS_ERR_AUTH,            /* the server refused the credentials */
    MS_ERR_INTERNAL,        /* a bug or an unexpected library failure */
    MS_STATUS_COUNT_
} ms_status;

/* Stable lower_snake name of a status ("ok", "timeout", ...); never NULL. */
const char *ms_status_name(ms_status s);

/* The detail left by the last failing call on this thread: what was wrong and
 * where. Never NULL; "" when no detail was recorded. Borrowed: valid until the
 * next mainstack call on this thread. */
const char *ms_last_error(void);

/* Forget this thread's last error detail. */
void ms_clear_error(void);

#ifdef __cplusplus
}
#endif
#endif
