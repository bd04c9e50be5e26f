/*
 * out.c - everything `mstack mcp` writes: one JSON-RPC message per line on
 * stdout, serialised behind one mutex so that lines from worker threads and
 * NATS callbacks never interleave; progress notifications gated on the
 * request being open; log lines on stderr and, above the client's level, as
 * notifications/message. Nothing else ever reaches stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcp.h"

static const char *const level_names[] = {"debug", "info",     "notice", "warning",
                                          "error", "critical", "alert",  "emergency"};

int mcp_log_level_parse(const char *name)
{
    for (int i = 0; i < MCP_LOG_OFF; i++) {
        if (name != NULL && strcmp(name, level_names[i]) == 0)
            return i;
    }
    return -1;
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    return true;
}

bool mcp_send(mcp_server *srv, const json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    size_t len;
    bool ok = false;

    if (text == NULL) {
        fputs("mstack mcp: cannot serialise a message (out of memory?)\n", stderr);
        return false;
    }
    len = strlen(text);
    pthread_mutex_lock(&srv->out_lock);
    if (!srv->out_broken) {
        /* one write of the line and its newline when it fits, else two */
        char *line = realloc(text, len + 2);
        if (line != NULL) {
            text = line;
            text[len] = '\n';
            ok = write_all(srv->out_fd, text, len + 1);
        } else {
            ok = write_all(srv->out_fd, text, len) && write_all(srv->out_fd, "\n", 1);
        }
        if (!ok) {
            srv->out_broken = true;
            fprintf(stderr, "mstack mcp: writing stdout failed (%s): the client is gone\n",
                    strerror(errno));
        }
    }
    pthread_mutex_unlock(&srv->out_lock);
    free(text);
    return ok;
}

void mcp_send_result(mcp_server *srv, const json_t *id, json_t *result)
{
    json_t *msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result",
                            result != NULL ? result : json_object());
    if (msg == NULL) {
        mcp_error e;
        mcp_fail(&e, MCP_INTERNAL_ERROR, "out of memory building the result");
        mcp_send_error(srv, id, &e);
        return;
    }
    mcp_send(srv, msg);
    json_decref(msg);
}

void mcp_send_error(mcp_server *srv, const json_t *id, mcp_error *err)
{
    json_t *error = json_pack("{s:i, s:s}", "code", err->code, "message", err->message);
    json_t *msg;

    if (error != NULL && err->data != NULL)
        json_object_set(error, "data", err->data);
    json_decref(err->data);
    err->data = NULL;
    msg = json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id != NULL ? id : json_null(),
                    "error", error);
    if (msg != NULL)
        mcp_send(srv, msg);
    json_decref(msg);
}

void mcp_send_notification(mcp_server *srv, const char *method, json_t *params)
{
    json_t *msg = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (msg != NULL && params != NULL)
        json_object_set(msg, "params", params);
    json_decref(params);
    if (msg != NULL)
        mcp_send(srv, msg);
    json_decref(msg);
}

int mcp_fail(mcp_error *err, int code, const char *fmt, ...)
{
    va_list ap;
    err->code = code;
    err->data = NULL;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

bool mcp_cancelled(const mcp_request *rq)
{
    return atomic_load(&rq->cancelled) || atomic_load(&rq->srv->stopping);
}

void mcp_progress(mcp_request *rq, double progress, double total, const char *message)
{
    mcp_server *srv = rq->srv;
    json_t *params;

    if (rq->progress_token == NULL)
        return;
    pthread_mutex_lock(&srv->lock);
    /* held while sending: finishing a request takes this lock first, so no
     * progress can follow its response */
    if (!atomic_load(&rq->finished) && !mcp_cancelled(rq) && progress > rq->last_progress) {
        rq->last_progress = progress;
        params = json_pack("{s:O, s:f}", "progressToken", rq->progress_token, "progress", progress);
        if (params != NULL && total > 0)
            json_object_set_new(params, "total", json_real(total));
        if (params != NULL && message != NULL && mcp_version_cmp(rq->version, "2025-03-26") >= 0)
            json_object_set_new(params, "message", json_string(message));
        if (params != NULL)
            mcp_send_notification(srv, "notifications/progress", params);
    }
    pthread_mutex_unlock(&srv->lock);
}

void mcp_log(mcp_server *srv, mcp_request *rq, int level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    int threshold;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (level < 0 || level >= MCP_LOG_OFF)
        level = MCP_LOG_INFO;
    fprintf(stderr, "mstack mcp: %s: %s\n", level_names[level], text);
    if (rq != NULL) {
        threshold = rq->log_level;
    } else {
        pthread_mutex_lock(&srv->lock);
        threshold = srv->log_level;
        pthread_mutex_unlock(&srv->lock);
    }
    if (level >= threshold) {
        json_t *params = json_pack("{s:s, s:s, s:s}", "level", level_names[level], "logger",
                                   "mstack", "data", text);
        if (params != NULL)
            mcp_send_notification(srv, "notifications/message", params);
    }
}
