/*
 * outbox.c - where notification-service delivers: a file of JSON lines.
 *
 * Each notification is one line written with a single write(2) on a file
 * opened O_APPEND, then fsync'd, so an answered delivery survives a crash and
 * concurrent writers never interleave within a line. The file is opened for
 * each write, not kept open: a file replaced or removed under us (rotation,
 * or a directory put in its place) is noticed at the next write instead of
 * writing into an unlinked inode. A torn last line (a crash mid-write) is
 * fenced off by starting the next line with a newline.
 *
 * Idempotence: the ids of delivered events are kept in memory (a hash set),
 * rebuilt at open from the outbox itself (every line has its event_id) and
 * from delivered.ids (one id per line, appended after each delivery, not
 * fsync'd: the outbox line is the record, the ids file only lets the set
 * survive an outbox rotation). A notification that cannot be written waits
 * in a bounded retry queue, flushed in order before the next one and on each
 * health check.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "notification_service_internal.h"

struct ns_outbox {
    char *dir;
    char *file;
    char *path;     /* dir/file */
    char *ids_path; /* dir/delivered.ids */

    char **slots; /* the delivered-id set: open addressing, linear probing */
    size_t cap, used;

    json_t **pending; /* retry queue, oldest first */
    size_t npending, pending_cap, pending_max;
    size_t dropped;
    char last_error[256]; /* why the last write failed; "" after a success */

    json_t *recent[NS_RECENT_MAX]; /* ring of the last notifications written */
    size_t rhead, rcount;
};

/* --- the id set ----------------------------------------------------------- */

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static bool set_has(const ns_outbox *ob, const char *id)
{
    if (ob->cap == 0)
        return false;
    for (size_t i = hash(id) & (ob->cap - 1);; i = (i + 1) & (ob->cap - 1)) {
        if (ob->slots[i] == NULL)
            return false;
        if (strcmp(ob->slots[i], id) == 0)
            return true;
    }
}

static void set_place(char **slots, size_t cap, char *id)
{
    size_t i = hash(id) & (cap - 1);
    while (slots[i] != NULL)
        i = (i + 1) & (cap - 1);
    slots[i] = id;
}

static ms_status set_add(ns_outbox *ob, const char *id)
{
    char *copy;

    if (set_has(ob, id))
        return MS_OK;
    if ((ob->used + 1) * 2 > ob->cap) { /* keep the load under one half */
        size_t cap = ob->cap ? ob->cap * 2 : 256;
        char **slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return ns__fail(MS_ERR_NO_MEMORY, "outbox: growing the id set");
        for (size_t i = 0; i < ob->cap; i++) {
            if (ob->slots[i] != NULL)
                set_place(slots, cap, ob->slots[i]);
        }
        free(ob->slots);
        ob->slots = slots;
        ob->cap = cap;
    }
    copy = strdup(id);
    if (copy == NULL)
        return ns__fail(MS_ERR_NO_MEMORY, "outbox: adding an id");
    set_place(ob->slots, ob->cap, copy);
    ob->used++;
    return MS_OK;
}

/* --- the ring of recent notifications -------------------------------------- */

static void ring_push(ns_outbox *ob, json_t *record)
{
    size_t at = (ob->rhead + ob->rcount) % NS_RECENT_MAX;

    if (ob->rcount == NS_RECENT_MAX) {
        json_decref(ob->recent[ob->rhead]);
        ob->recent[ob->rhead] = json_incref(record);
        ob->rhead = (ob->rhead + 1) % NS_RECENT_MAX;
        return;
    }
    ob->recent[at] = json_incref(record);
    ob->rcount++;
}

static void ring_clear(ns_outbox *ob)
{
    for (size_t i = 0; i < ob->rcount; i++)
        json_decref(ob->recent[(ob->rhead + i) % NS_RECENT_MAX]);
    ob->rhead = ob->rcount = 0;
}

json_t *ns__outbox_recent(const ns_outbox *ob, size_t limit)
{
    json_t *arr = json_array();
    size_t n = limit < ob->rcount ? limit : ob->rcount;

    if (arr == NULL)
        return NULL;
    for (size_t i = ob->rcount - n; i < ob->rcount; i++) {
        if (json_array_append(arr, ob->recent[(ob->rhead + i) % NS_RECENT_MAX]) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* --- loading --------------------------------------------------------------- */

static char *join(const char *dir, const char *file)
{
    size_t n = strlen(dir) + strlen(file) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, file);
    return p;
}

/* Read every id of the ids file into the set. A missing file is fine. */
static ms_status load_ids(ns_outbox *ob)
{
    FILE *f = fopen(ob->ids_path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    ms_status s = MS_OK;

    if (f == NULL)
        return MS_OK;
    while (s == MS_OK && (n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[--n] = '\0';
        if (n > 0 && n <= NOTIFY_EVENT_ID_MAX && strlen(line) == (size_t)n)
            s = set_add(ob, line);
    }
    free(line);
    fclose(f);
    return s;
}

/* Read the outbox: every event_id into the set, the last lines into the
 * ring. Lines that do not parse (a torn write) are skipped. */
static ms_status load_outbox(ns_outbox *ob)
{
    FILE *f = fopen(ob->path, "re");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    ms_status s = MS_OK;

    if (f == NULL)
        return MS_OK;
    while (s == MS_OK && (n = getline(&line, &cap, f)) > 0) {
        json_t *rec = json_loadb(line, (size_t)n, 0, NULL);
        const char *id = json_string_value(json_object_get(rec, NOTIFY_FIELD_EVENT_ID));
        if (id != NULL && strlen(id) <= NOTIFY_EVENT_ID_MAX) {
            s = set_add(ob, id);
            ring_push(ob, rec);
        }
        json_decref(rec);
    }
    free(line);
    fclose(f);
    return s;
}

static ms_status set_paths(ns_outbox *ob, const char *file)
{
    char *f = strdup(file), *p = join(ob->dir, file);

    if (f == NULL || p == NULL) {
        free(f);
        free(p);
        return ns__fail(MS_ERR_NO_MEMORY, "outbox: allocating");
    }
    free(ob->file);
    free(ob->path);
    ob->file = f;
    ob->path = p;
    return MS_OK;
}

ms_status ns__outbox_open(const char *dir, const char *file, size_t pending_max, ns_outbox **out)
{
    ns_outbox *ob;
    ms_status s;

    if (dir == NULL || file == NULL || out == NULL || pending_max == 0)
        return ns__fail(MS_ERR_INVALID_ARG, "outbox: NULL argument or pending_max 0");
    *out = NULL;
    ob = calloc(1, sizeof *ob);
    if (ob == NULL)
        return ns__fail(MS_ERR_NO_MEMORY, "outbox: allocating");
    ob->pending_max = pending_max;
    ob->dir = strdup(dir);
    ob->ids_path = join(dir, NS_IDS_FILE);
    if (ob->dir == NULL || ob->ids_path == NULL) {
        s = ns__fail(MS_ERR_NO_MEMORY, "outbox: allocating");
        goto fail;
    }
    if ((s = set_paths(ob, file)) != MS_OK || (s = load_ids(ob)) != MS_OK ||
        (s = load_outbox(ob)) != MS_OK)
        goto fail;
    *out = ob;
    return MS_OK;
fail:
    ns__outbox_close(ob);
    return s;
}

void ns__outbox_close(ns_outbox *ob)
{
    if (ob == NULL)
        return;
    for (size_t i = 0; i < ob->cap; i++)
        free(ob->slots[i]);
    free(ob->slots);
    for (size_t i = 0; i < ob->npending; i++)
        json_decref(ob->pending[i]);
    free(ob->pending);
    ring_clear(ob);
    free(ob->dir);
    free(ob->file);
    free(ob->path);
    free(ob->ids_path);
    free(ob);
}

ms_status ns__outbox_set_file(ns_outbox *ob, const char *file)
{
    ms_status s;

    if (strcmp(file, ob->file) == 0)
        return MS_OK;
    if ((s = set_paths(ob, file)) != MS_OK)
        return s;
    ring_clear(ob);
    return load_outbox(ob);
}

void ns__outbox_set_pending_max(ns_outbox *ob, size_t pending_max)
{
    ob->pending_max = pending_max ? pending_max : 1;
}

const char *ns__outbox_path(const ns_outbox *ob)
{
    return ob->path;
}

const char *ns__outbox_file(const ns_outbox *ob)
{
    return ob->file;
}

size_t ns__outbox_pending(const ns_outbox *ob)
{
    return ob->npending;
}

size_t ns__outbox_dropped(const ns_outbox *ob)
{
    return ob->dropped;
}

size_t ns__outbox_delivered(const ns_outbox *ob)
{
    return ob->used;
}

bool ns__outbox_seen(const ns_outbox *ob, const char *event_id)
{
    if (set_has(ob, event_id))
        return true;
    for (size_t i = 0; i < ob->npending; i++) {
        const char *id = json_string_value(json_object_get(ob->pending[i], NOTIFY_FIELD_EVENT_ID));
        if (id != NULL && strcmp(id, event_id) == 0)
            return true;
    }
    return false;
}

/* --- writing --------------------------------------------------------------- */

static ms_status io_fail(ns_outbox *ob, const char *path, const char *what, int err)
{
    if (path == ob->path)
        snprintf(ob->last_error, sizeof ob->last_error, "outbox %s: %s: %s", path, what,
                 strerror(err));
    return ns__fail(MS_ERR_IO, "outbox %s: %s: %s", path, what, strerror(err));
}

/* Open path for appending (and reading: the last byte is checked): a
 * regular file, created when absent. *needs_nl when the last line is torn;
 * *fresh when it is empty (just created: its directory entry needs a sync). */
static ms_status open_append(ns_outbox *ob, const char *path, int *fd_out, bool *needs_nl,
                             bool *fresh)
{
    struct stat sb;
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

    if (fd < 0)
        return io_fail(ob, path, "cannot open for appending", errno);
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return io_fail(ob, path, "fstat", err);
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return io_fail(ob, path, "not a regular file", EINVAL);
    }
    *needs_nl = false;
    *fresh = sb.st_size == 0;
    if (sb.st_size > 0) {
        char last;
        if (pread(fd, &last, 1, sb.st_size - 1) == 1)
            *needs_nl = last != '\n';
    }
    *fd_out = fd;
    return MS_OK;
}

/* Append text (a line without its newline) to path with one write; fsync
 * when durable. */
static ms_status append_line(ns_outbox *ob, const char *path, const char *text, bool durable)
{
    size_t len = strlen(text), off = 0, total;
    bool nl = false, fresh = false;
    char *line;
    ms_status s;
    int fd = -1;

    if ((s = open_append(ob, path, &fd, &nl, &fresh)) != MS_OK)
        return s;
    total = len + 1 + (nl ? 1 : 0);
    line = malloc(total);
    if (line == NULL) {
        close(fd);
        return ns__fail(MS_ERR_NO_MEMORY, "outbox: allocating a line");
    }
    if (nl)
        line[off++] = '\n'; /* fence off a torn last line */
    memcpy(line + off, text, len);
    line[total - 1] = '\n';
    off = 0;
    while (off < total) {
        ssize_t w = write(fd, line + off, total - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;
            free(line);
            close(fd);
            return io_fail(ob, path, "write", err);
        }
        off += (size_t)w;
    }
    free(line);
    if (durable && fsync(fd) != 0) {
        int err = errno;
        close(fd);
        return io_fail(ob, path, "fsync", err);
    }
    if (close(fd) != 0)
        return io_fail(ob, path, "close", errno);
    if (durable && fresh) { /* make the new file's directory entry durable too */
        int dfd = open(ob->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            (void)fsync(dfd);
            close(dfd);
        }
    }
    return MS_OK;
}

/* Write one record to the outbox and remember it as delivered. */
static ms_status write_record(ns_outbox *ob, json_t *record, json_t *written)
{
    const char *id = json_string_value(json_object_get(record, NOTIFY_FIELD_EVENT_ID));
    char *text = json_dumps(record, JSON_COMPACT);
    ms_status s;

    if (text == NULL)
        return ns__fail(MS_ERR_NO_MEMORY, "outbox: serialising a notification");
    s = append_line(ob, ob->path, text, true);
    free(text);
    if (s != MS_OK)
        return s;
    ob->last_error[0] = '\0';
    /* Delivered. What follows only helps idempotence after a rotation or
     * feeds the ring: failing it must not fail the delivery. */
    if (id != NULL) {
        (void)set_add(ob, id);
        (void)append_line(ob, ob->ids_path, id, false);
    }
    ring_push(ob, record);
    if (written != NULL)
        (void)json_array_append(written, record);
    return MS_OK;
}

ms_status ns__outbox_retry(ns_outbox *ob, json_t *written)
{
    size_t done = 0;
    ms_status s = MS_OK;

    while (done < ob->npending) {
        s = write_record(ob, ob->pending[done], written);
        if (s != MS_OK)
            break;
        json_decref(ob->pending[done]);
        done++;
    }
    if (done > 0) {
        memmove(ob->pending, ob->pending + done, (ob->npending - done) * sizeof *ob->pending);
        ob->npending -= done;
    }
    if (s != MS_OK)
        return ns__fail(MS_ERR_IO, "%s; %zu notification%s pending", ob->last_error, ob->npending,
                        ob->npending == 1 ? "" : "s");
    return MS_OK;
}

static ms_status enqueue(ns_outbox *ob, json_t *record)
{
    const char *id = json_string_value(json_object_get(record, NOTIFY_FIELD_EVENT_ID));

    if (ob->npending >= ob->pending_max) {
        ob->dropped++;
        return ns__fail(MS_ERR_FULL,
                        "%s; the retry queue is full (pending_max %zu): the notification of "
                        "event %s is dropped",
                        ob->last_error, ob->pending_max, id ? id : "?");
    }
    if (ob->npending == ob->pending_cap) {
        size_t cap = ob->pending_cap ? ob->pending_cap * 2 : 16;
        json_t **grown = realloc(ob->pending, cap * sizeof *grown);
        if (grown == NULL) {
            ob->dropped++;
            return ns__fail(MS_ERR_NO_MEMORY, "outbox: growing the retry queue");
        }
        ob->pending = grown;
        ob->pending_cap = cap;
    }
    ob->pending[ob->npending++] = json_incref(record);
    return ns__fail(MS_ERR_IO,
                    "%s; the notification is queued and retried on the next event or health "
                    "check (%zu pending)",
                    ob->last_error, ob->npending);
}

ms_status ns__outbox_deliver(ns_outbox *ob, json_t *record, json_t *written)
{
    if (ob == NULL || record == NULL)
        return ns__fail(MS_ERR_INVALID_ARG, "outbox deliver: NULL argument");
    /* Keep the order: nothing overtakes a queued notification. */
    if (ns__outbox_retry(ob, written) != MS_OK || write_record(ob, record, written) != MS_OK)
        return enqueue(ob, record);
    return MS_OK;
}

ms_status ns__outbox_probe(ns_outbox *ob)
{
    bool nl = false, fresh = false;
    int fd = -1;
    ms_status s = open_append(ob, ob->path, &fd, &nl, &fresh);

    if (s != MS_OK)
        return s;
    close(fd);
    ob->last_error[0] = '\0';
    return MS_OK;
}
