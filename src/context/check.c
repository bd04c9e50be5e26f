/*
 * check.c - `mstack check`: the context files of a whole stack, file by file
 * and against each other (include/mainstack/check.h).
 *
 * Three passes. Discovery turns the paths into a sorted, de-duplicated list
 * of component directories. Loading reads each component's three files and
 * reports, per file, the first layer that fails: syntax (jansson's line and
 * column), the JSON Schema (every error, with its pointer), then the typed
 * loader of context.h (its extra checks, pointer parsed from its detail).
 * The cross-checks then run on what loaded: names and versions agree,
 * referenced files exist, consumed interfaces and component dependencies
 * are provided by the stack within range (check_rules.c does the agent's
 * rules). Findings are data: the call fails only when it cannot run.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "context/check_internal.h"
#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/component.h"
#include "mainstack/json.h"
#include "mainstack/schema.h"

#ifndef MS_INSTALL_SCHEMAS_DIR
#define MS_INSTALL_SCHEMAS_DIR "/usr/local/share/mainstack/schemas"
#endif

#define MAX_FILE ((size_t)4 * 1024 * 1024)

/* --- the report ------------------------------------------------------------ */

const char *ms_check_level_str(ms_check_level l)
{
    return l == MS_CHECK_WARNING ? "warning" : "error";
}

ms_status ms__check_add(ms_check_report *r, ms_check_level level, const char *code,
                        const char *file, int line, int column, const char *pointer,
                        const char *fmt, ...)
{
    char msg[2048];
    ms_check_finding *f;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->n == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 16;
        ms_check_finding *grown = ms__realloc(r->f, ncap * sizeof *grown);
        if (grown == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "check: out of memory for a finding");
        r->f = grown;
        r->cap = ncap;
    }
    f = &r->f[r->n];
    memset(f, 0, sizeof *f);
    f->level = level;
    f->code = code;
    f->line = line;
    f->column = column;
    f->file = ms__strdup(file);
    f->message = ms__strdup(msg);
    f->pointer = pointer != NULL ? ms__strdup(pointer) : NULL;
    if (f->file == NULL || f->message == NULL || (pointer != NULL && f->pointer == NULL)) {
        ms__free((void *)f->file);
        ms__free((void *)f->message);
        ms__free((void *)f->pointer);
        return ms__err(MS_ERR_NO_MEMORY, "check: out of memory for a finding");
    }
    r->n++;
    if (level == MS_CHECK_WARNING)
        r->warnings++;
    else
        r->errors++;
    return MS_OK;
}

void ms_check_report_destroy(ms_check_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        ms__free((void *)r->f[i].file);
        ms__free((void *)r->f[i].message);
        ms__free((void *)r->f[i].pointer);
    }
    ms__free(r->f);
    for (size_t i = 0; i < r->ndirs; i++)
        ms__free(r->dirs[i]);
    ms__free(r->dirs);
    ms__free(r);
}

size_t ms_check_report_count(const ms_check_report *r)
{
    return r != NULL ? r->n : 0;
}

const ms_check_finding *ms_check_report_at(const ms_check_report *r, size_t i)
{
    return r != NULL && i < r->n ? &r->f[i] : NULL;
}

size_t ms_check_report_errors(const ms_check_report *r)
{
    return r != NULL ? r->errors : 0;
}

size_t ms_check_report_warnings(const ms_check_report *r)
{
    return r != NULL ? r->warnings : 0;
}

size_t ms_check_report_component_count(const ms_check_report *r)
{
    return r != NULL ? r->ndirs : 0;
}

const char *ms_check_report_component_at(const ms_check_report *r, size_t i)
{
    return r != NULL && i < r->ndirs ? r->dirs[i] : NULL;
}

size_t ms_check_finding_format(const ms_check_finding *f, char *buf, size_t size)
{
    int n;
    if (f == NULL) {
        n = snprintf(buf, size, "(no finding)");
    } else if (f->line > 0) {
        n = snprintf(buf, size, "%s:%d:%d: %s: %s", f->file, f->line, f->column,
                     ms_check_level_str(f->level), f->message);
    } else if (f->pointer != NULL) {
        n = snprintf(buf, size, "%s: %s: %s: %s", f->file,
                     f->pointer[0] != '\0' ? f->pointer : "(root)", ms_check_level_str(f->level),
                     f->message);
    } else {
        n = snprintf(buf, size, "%s: %s: %s", f->file, ms_check_level_str(f->level), f->message);
    }
    return n < 0 ? 0 : (size_t)n;
}

ms_status ms_check_report_to_json(const ms_check_report *r, json_t **out)
{
    json_t *root = NULL, *dirs = NULL, *findings = NULL;

    if (out == NULL || r == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_check_report_to_json: NULL argument");
    *out = NULL;
    dirs = json_array();
    findings = json_array();
    if (dirs == NULL || findings == NULL)
        goto nomem;
    for (size_t i = 0; i < r->ndirs; i++) {
        if (json_array_append_new(dirs, json_string(r->dirs[i])) != 0)
            goto nomem;
    }
    for (size_t i = 0; i < r->n; i++) {
        const ms_check_finding *f = &r->f[i];
        json_t *o = json_pack("{s:s, s:s, s:s}", "level", ms_check_level_str(f->level), "code",
                              f->code, "file", f->file);
        if (o == NULL)
            goto nomem;
        if (json_array_append_new(findings, o) != 0)
            goto nomem;
        if (f->line > 0 && (json_object_set_new(o, "line", json_integer(f->line)) != 0 ||
                            json_object_set_new(o, "column", json_integer(f->column)) != 0))
            goto nomem;
        if (f->pointer != NULL && json_object_set_new(o, "pointer", json_string(f->pointer)) != 0)
            goto nomem;
        if (json_object_set_new(o, "message", json_string(f->message)) != 0)
            goto nomem;
    }
    root = json_pack("{s:o, s:I, s:I, s:o}", "components", dirs, "errors", (json_int_t)r->errors,
                     "warnings", (json_int_t)r->warnings, "findings", findings);
    if (root == NULL) /* json_pack's "o" steals even on failure */
        return ms__err(MS_ERR_NO_MEMORY, "check: out of memory for the JSON report");
    *out = root;
    return MS_OK;
nomem:
    json_decref(dirs);
    json_decref(findings);
    return ms__err(MS_ERR_NO_MEMORY, "check: out of memory for the JSON report");
}

/* --- paths ----------------------------------------------------------------- */

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *ms__check_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    bool slash = dl > 0 && dir[dl - 1] == '/';
    char *p;

    if (strcmp(dir, ".") == 0)
        return ms__strdup(name);
    p = ms__malloc(dl + nl + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, dl);
    if (!slash)
        p[dl++] = '/';
    memcpy(p + dl, name, nl + 1);
    return p;
}

static bool has_child_dir(const char *dir, const char *child)
{
    char *p = ms__check_join(dir, child);
    bool yes = p != NULL && is_dir(p);
    ms__free(p);
    return yes;
}

ms_status ms_check_find_root(const char *start, char **root)
{
    char buf[PATH_MAX];

    if (root == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_check_find_root: root is NULL");
    *root = NULL;
    if (start == NULL) {
        if (getcwd(buf, sizeof buf) == NULL)
            return ms__err(MS_ERR_IO, "the current directory: %s", strerror(errno));
    } else if (realpath(start, buf) == NULL) {
        return ms__err(MS_ERR_NOT_FOUND, "%s: %s", start, strerror(errno));
    }
    for (;;) {
        char *slash;
        if (has_child_dir(buf, "schemas") && has_child_dir(buf, "components")) {
            *root = ms__strdup(buf);
            return *root != NULL ? MS_OK : ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
        }
        slash = strrchr(buf, '/');
        if (slash == NULL || (slash == buf && buf[1] == '\0'))
            break;
        if (slash == buf)
            slash[1] = '\0'; /* up to "/" itself */
        else
            *slash = '\0';
    }
    return ms__err(MS_ERR_NOT_FOUND,
                   "no project root (a directory with schemas/ and components/) in %s or above",
                   start != NULL ? start : "the current directory");
}

/* --- discovery ------------------------------------------------------------- */

typedef struct dirlist {
    char **dirs;  /* as written (joined from the path given) */
    char **reals; /* realpath of each, to drop duplicates */
    size_t n, cap;
} dirlist;

static void dirlist_free(dirlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        ms__free(l->dirs[i]);
        ms__free(l->reals[i]);
    }
    ms__free(l->dirs);
    ms__free(l->reals);
}

/* Takes dir. */
static ms_status dirlist_add(dirlist *l, char *dir)
{
    char real[PATH_MAX];
    char *r;

    if (realpath(dir, real) == NULL) {
        ms_status s = ms__err(MS_ERR_NOT_FOUND, "%s: %s", dir, strerror(errno));
        ms__free(dir);
        return s;
    }
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->reals[i], real) == 0) {
            ms__free(dir);
            return MS_OK;
        }
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        char **d = ms__realloc(l->dirs, ncap * sizeof *d);
        if (d == NULL)
            goto nomem;
        l->dirs = d;
        d = ms__realloc(l->reals, ncap * sizeof *d);
        if (d == NULL)
            goto nomem;
        l->reals = d;
        l->cap = ncap;
    }
    r = ms__strdup(real);
    if (r == NULL)
        goto nomem;
    l->dirs[l->n] = dir;
    l->reals[l->n] = r;
    l->n++;
    return MS_OK;
nomem:
    ms__free(dir);
    return ms__err(MS_ERR_NO_MEMORY, "check: out of memory while listing components");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every subdirectory of dir with a context/, sorted by name. */
static ms_status scan_components(const char *dir, dirlist *l, size_t *found)
{
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t n = 0, cap = 0;
    ms_status s = MS_OK;
    struct dirent *e;

    *found = 0;
    if (d == NULL)
        return ms__err(MS_ERR_IO, "%s: %s", dir, strerror(errno));
    while ((e = readdir(d)) != NULL) {
        char *sub;
        if (e->d_name[0] == '.')
            continue;
        sub = ms__check_join(dir, e->d_name);
        if (sub == NULL) {
            s = ms__err(MS_ERR_NO_MEMORY, "check: out of memory while listing %s", dir);
            goto cleanup;
        }
        if (!has_child_dir(sub, "context")) {
            ms__free(sub);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **grown = ms__realloc(names, ncap * sizeof *grown);
            if (grown == NULL) {
                ms__free(sub);
                s = ms__err(MS_ERR_NO_MEMORY, "check: out of memory while listing %s", dir);
                goto cleanup;
            }
            names = grown;
            cap = ncap;
        }
        names[n++] = sub;
    }
    if (n > 0)
        qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *taken = names[i];
        names[i] = NULL;
        s = dirlist_add(l, taken);
        if (s != MS_OK)
            goto cleanup;
    }
    *found = n;
cleanup:
    for (size_t i = 0; i < n; i++)
        ms__free(names[i]);
    ms__free(names);
    closedir(d);
    return s;
}

static ms_status discover(const char *path, dirlist *l)
{
    size_t found = 0;
    ms_status s;

    if (!is_dir(path))
        return ms__err(MS_ERR_NOT_FOUND, "%s: %s", path,
                       access(path, F_OK) == 0 ? "not a directory" : "no such directory");
    if (has_child_dir(path, "context")) {
        char *dup = ms__strdup(path);
        if (dup == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
        return dirlist_add(l, dup);
    }
    if (has_child_dir(path, "components")) {
        char *sub = ms__check_join(path, "components");
        if (sub == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
        s = scan_components(sub, l, &found);
        ms__free(sub);
    } else {
        s = scan_components(path, l, &found);
    }
    if (s == MS_OK && found == 0)
        s = ms__err(MS_ERR_NOT_FOUND,
                    "%s: no component here (a component directory has a context/ "
                    "subdirectory; a components directory or project root holds some)",
                    path);
    return s;
}

/* The root found above the current directory, written relative to it so
 * that findings name short paths ("components/x/..." or "../../components"). */
static ms_status discover_root(const char *root, dirlist *l)
{
    char cwd[PATH_MAX], rel[PATH_MAX];
    size_t rl = strlen(root), depth = 0, len = 0;

    if (getcwd(cwd, sizeof cwd) == NULL || strncmp(cwd, root, rl) != 0 ||
        (cwd[rl] != '\0' && cwd[rl] != '/') || rl == 1)
        return discover(root, l);
    for (const char *p = cwd + rl; *p; p++)
        depth += *p == '/';
    if (depth == 0)
        return discover(".", l);
    for (size_t i = 0; i < depth && len + 4 < sizeof rel; i++) {
        memcpy(rel + len, i == 0 ? ".." : "/..", i == 0 ? 2 : 3);
        len += i == 0 ? 2 : 3;
    }
    rel[len] = '\0';
    return discover(rel, l);
}

/* --- loading one file -------------------------------------------------------- */

/* Read and parse a file; on a syntax or read problem add the finding and
 * leave *out NULL. Returns only failures to run (no memory). */
static ms_status read_json(ms_check_report *r, const char *path, json_t **out)
{
    json_error_t err;
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    ms_status s = MS_OK;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ms__check_add(r, MS_CHECK_ERROR, "io", path, 0, 0, NULL, "cannot open: %s",
                             strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = ms__check_add(r, MS_CHECK_ERROR, "io", path, 0, 0, NULL, "not a regular file");
        goto cleanup;
    }
    if ((size_t)st.st_size > MAX_FILE) {
        s = ms__check_add(r, MS_CHECK_ERROR, "too-large", path, 0, 0, NULL,
                          "%lld bytes, over the limit of %zu", (long long)st.st_size, MAX_FILE);
        goto cleanup;
    }
    text = ms__malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "check: out of memory reading %s", path);
        goto cleanup;
    }
    while (len < (size_t)st.st_size) {
        ssize_t got = read(fd, text + len, (size_t)st.st_size - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            s = ms__check_add(r, MS_CHECK_ERROR, "io", path, 0, 0, NULL, "read failed: %s",
                              got < 0 ? strerror(errno) : "the file shrank while read");
            goto cleanup;
        }
        len += (size_t)got;
    }
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
    if (*out == NULL) {
        if (json_error_code(&err) == json_error_out_of_memory || err.text[0] == '\0')
            s = ms__err(MS_ERR_NO_MEMORY, "check: out of memory parsing %s", path);
        else
            s = ms__check_add(r, MS_CHECK_ERROR, "syntax", path, err.line > 0 ? err.line : 0,
                              err.line > 0 ? err.column : 0, NULL, "%s", err.text);
    }
cleanup:
    ms__free(text);
    close(fd);
    return s;
}

/* The value at an RFC 6901 pointer of doc, or NULL. */
static const json_t *resolve(const json_t *doc, const char *ptr)
{
    char tok[256];
    while (doc != NULL && *ptr == '/') {
        size_t n = 0;
        ptr++;
        while (*ptr != '\0' && *ptr != '/' && n + 1 < sizeof tok) {
            if (ptr[0] == '~' && (ptr[1] == '0' || ptr[1] == '1')) {
                tok[n++] = ptr[1] == '0' ? '~' : '/';
                ptr += 2;
            } else {
                tok[n++] = *ptr++;
            }
        }
        tok[n] = '\0';
        if (json_is_object(doc)) {
            doc = json_object_get(doc, tok);
        } else if (json_is_array(doc)) {
            char *end;
            unsigned long i = strtoul(tok, &end, 10);
            doc = *end == '\0' && n > 0 ? json_array_get(doc, i) : NULL;
        } else {
            doc = NULL;
        }
    }
    return *ptr == '\0' ? doc : NULL;
}

/* An additionalProperties error of the validator is about the object;
 * a person wants the unknown field itself, and the ones allowed there. */
static ms_status unknown_field(ms_check_report *r, const json_t *schema_doc, const char *path,
                               const ms_schema_error *e, bool *done)
{
    static const char kw[] = "/additionalProperties";
    static const char pre[] = "property '", post[] = "' is not allowed";
    char ptr[600], parent[600], allowed[700];
    size_t sl = strlen(e->schema_path), ml = strlen(e->message), len = 0;
    const json_t *props;
    const char *key, *k;
    size_t klen;
    void *it;

    *done = false;
    if (sl < sizeof kw - 1 || strcmp(e->schema_path + sl - (sizeof kw - 1), kw) != 0 ||
        strncmp(e->message, pre, sizeof pre - 1) != 0 || ml < sizeof pre + sizeof post - 2 ||
        strcmp(e->message + ml - (sizeof post - 1), post) != 0 ||
        sl - (sizeof kw - 1) >= sizeof parent)
        return MS_OK;
    key = e->message + sizeof pre - 1;
    klen = ml - (sizeof pre - 1) - (sizeof post - 1);
    len = (size_t)snprintf(ptr, sizeof ptr, "%s/", e->instance_path);
    for (size_t i = 0; i < klen && len + 3 < sizeof ptr; i++) {
        if (key[i] == '~' || key[i] == '/') {
            ptr[len++] = '~';
            ptr[len++] = key[i] == '~' ? '0' : '1';
        } else {
            ptr[len++] = key[i];
        }
    }
    ptr[len] = '\0';
    memcpy(parent, e->schema_path, sl - (sizeof kw - 1));
    parent[sl - (sizeof kw - 1)] = '\0';
    props = json_object_get(resolve(schema_doc, parent), "properties");
    len = 0;
    allowed[0] = '\0';
    for (it = json_object_iter((json_t *)props); it != NULL && len + 1 < sizeof allowed;
         it = json_object_iter_next((json_t *)props, it)) {
        k = json_object_iter_key(it);
        int n = snprintf(allowed + len, sizeof allowed - len, "%s%s", len ? ", " : "", k);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    *done = true;
    if (allowed[0] == '\0')
        return ms__check_add(r, MS_CHECK_ERROR, "schema", path, 0, 0, ptr, "unknown field");
    return ms__check_add(r, MS_CHECK_ERROR, "schema", path, 0, 0, ptr,
                         "unknown field (expected one of: %s)", allowed);
}

/* Schema errors of doc as findings; *valid says whether there were none. */
static ms_status schema_check(ms_check_report *r, const ms_schema *schema, const json_t *schema_doc,
                              const char *path, const json_t *doc, bool *valid)
{
    ms_schema_error *errs = NULL;
    size_t n = 0;
    ms_status s = ms_schema_validate(schema, doc, 0, &errs, &n);

    *valid = s == MS_OK;
    if (s == MS_OK)
        return MS_OK;
    if (s != MS_ERR_SCHEMA)
        return s;
    s = MS_OK;
    for (size_t i = 0; i < n && s == MS_OK; i++) {
        bool done;
        s = unknown_field(r, schema_doc, path, &errs[i], &done);
        if (s == MS_OK && !done)
            s = ms__check_add(r, MS_CHECK_ERROR, "schema", path, 0, 0, errs[i].instance_path, "%s",
                              errs[i].message);
    }
    ms_schema_errors_free(errs, n);
    return s;
}

/* A loader's MS_ERR_SCHEMA detail is "<path>: <pointer>: <what>". */
static ms_status loader_finding(ms_check_report *r, const char *path, const char *detail)
{
    char pointer[600];
    const char *p = detail;
    const char *colon;
    size_t pl = strlen(path);

    if (strncmp(p, path, pl) == 0 && strncmp(p + pl, ": ", 2) == 0)
        p += pl + 2;
    if (strncmp(p, "(root): ", 8) == 0)
        return ms__check_add(r, MS_CHECK_ERROR, "invalid", path, 0, 0, "", "%s", p + 8);
    colon = p[0] == '/' ? strstr(p, ": ") : NULL;
    if (colon == NULL || (size_t)(colon - p) >= sizeof pointer)
        return ms__check_add(r, MS_CHECK_ERROR, "invalid", path, 0, 0, NULL, "%s", p);
    memcpy(pointer, p, (size_t)(colon - p));
    pointer[colon - p] = '\0';
    return ms__check_add(r, MS_CHECK_ERROR, "invalid", path, 0, 0, pointer, "%s", colon + 2);
}

typedef enum file_kind { KIND_CONTEXT = 0, KIND_AGENT, KIND_INTERFACE } file_kind;

static ms_status load_component(ms_check_report *r, ms_schema *const schemas[3],
                                json_t *const schema_docs[3], ms__check_component *c)
{
    static const char *const rel[3] = {"context/context.json", "context/agent-config.json",
                                       "interface.json"};
    char **paths[3] = {&c->ctx_path, &c->cfg_path, &c->iface_path};
    ms_status s = MS_OK;

    for (int k = 0; k < 3; k++) {
        json_t *doc = NULL;
        bool valid = false;

        *paths[k] = ms__check_join(c->dir, rel[k]);
        if (*paths[k] == NULL)
            return ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
        if (!is_file(*paths[k])) {
            if (k == KIND_INTERFACE && access(*paths[k], F_OK) != 0)
                continue; /* optional */
            s = ms__check_add(r, MS_CHECK_ERROR, "missing", *paths[k], 0, 0, NULL,
                              access(*paths[k], F_OK) == 0
                                  ? "not a regular file"
                                  : "missing: every component directory has context/%s",
                              k == KIND_CONTEXT ? "context.json" : "agent-config.json");
            if (s != MS_OK)
                return s;
            continue;
        }
        if (k == KIND_INTERFACE)
            c->iface_present = true;
        s = read_json(r, *paths[k], &doc);
        if (s != MS_OK || doc == NULL)
            goto next;
        s = schema_check(r, schemas[k], schema_docs[k], *paths[k], doc, &valid);
        if (s != MS_OK || !valid)
            goto next;
        if (k == KIND_CONTEXT)
            s = ms_context_from_json(doc, *paths[k], &c->ctx);
        else if (k == KIND_AGENT)
            s = ms_agent_config_from_json(doc, *paths[k], &c->cfg);
        else
            c->iface = json_incref(doc);
        if (s == MS_ERR_SCHEMA || s == MS_ERR_PARSE)
            s = loader_finding(r, *paths[k], ms_last_error());
    next:
        json_decref(doc);
        if (s != MS_OK)
            return s;
    }
    return MS_OK;
}

/* --- cross-checks ------------------------------------------------------------ */

/* The interfaces libmainstack itself provides: the component ABI. */
static bool framework_provides(const char *name, ms_semver *version)
{
    if (strcmp(name, "mainstack-component") != 0)
        return false;
    memset(version, 0, sizeof *version);
    version->major = MS_COMPONENT_ABI;
    return true;
}

typedef struct provider {
    const ms__check_component *c; /* NULL: the framework */
    const char *version;
    ms_semver semver;
} provider;

static bool find_provider(const ms__check_stack *st, const char *name, provider *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < st->n; i++) {
        const ms_interface_provided *p =
            st->c[i].ctx != NULL ? ms_context_find_provided(st->c[i].ctx, name) : NULL;
        if (p != NULL) {
            out->c = &st->c[i];
            out->version = p->version;
            out->semver = p->semver;
            return true;
        }
    }
    if (framework_provides(name, &out->semver)) {
        out->version = "1.0.0";
        return true;
    }
    return false;
}

static const ms__check_component *find_component(const ms__check_stack *st, const char *name)
{
    for (size_t i = 0; i < st->n; i++) {
        if (st->c[i].ctx != NULL && strcmp(ms_context_component(st->c[i].ctx), name) == 0)
            return &st->c[i];
    }
    return NULL;
}

/* Whether pattern overlaps a subject the provider's interface.json serves or
 * emits. True when the provider has no interface.json (nothing to say). */
static bool provider_has_subject(const provider *p, const char *pattern)
{
    static const char *const lists[2] = {"serves", "emits"};
    bool any = false;

    if (p->c == NULL || p->c->iface == NULL)
        return true;
    for (int k = 0; k < 2; k++) {
        const json_t *arr = json_object_get(p->c->iface, lists[k]);
        size_t i;
        const json_t *e;
        json_array_foreach(arr, i, e)
        {
            const char *subj = json_string_value(json_object_get(e, "subject"));
            any = true;
            if (subj != NULL && ms__pattern_overlap(pattern, subj))
                return true;
        }
    }
    return !any;
}

/* A consumed interface named name, range text and parsed range, at
 * pointer base (".../name" and ".../version" are derived). */
static ms_status check_consumed(ms_check_report *r, const ms__check_stack *st,
                                const ms__check_component *c, const char *file, const char *base,
                                const char *name_field, const char *name, const char *range_text,
                                const ms_range *range, provider *prov, bool *found)
{
    char ptr[600];
    char have[128];

    *found = find_provider(st, name, prov);
    if (!*found) {
        snprintf(ptr, sizeof ptr, "%s/%s", base, name_field);
        return ms__check_add(r, MS_CHECK_ERROR, "unknown-interface", file, 0, 0, ptr,
                             "interface '%s' is provided by no component of the stack (%zu "
                             "checked)",
                             name, st->n);
    }
    if (range == NULL || ms_range_match(range, &prov->semver))
        return MS_OK;
    ms_semver_format(&prov->semver, have, sizeof have);
    snprintf(ptr, sizeof ptr, "%s/version", base);
    return ms__check_add(r, MS_CHECK_WARNING, "version-out-of-range", file, 0, 0, ptr,
                         "interface '%s' is at %s (%s), outside the range '%s' %s declares", name,
                         have, prov->c != NULL ? prov->c->ctx_path : "libmainstack", range_text,
                         ms_context_component(c->ctx));
}

static ms_status check_context_refs(ms_check_report *r, const ms__check_stack *st,
                                    const ms__check_component *c)
{
    const ms_context *ctx = c->ctx;
    const char *file = c->ctx_path;
    char ptr[600];
    ms_status s = MS_OK;

    for (size_t i = 0; i < ms_context_consumes_count(ctx) && s == MS_OK; i++) {
        const ms_interface_consumed *ic = ms_context_consumes_at(ctx, i);
        provider prov;
        bool found;
        char base[128];
        snprintf(base, sizeof base, "/interfaces/consumes/%zu", i);
        s = check_consumed(r, st, c, file, base, "name", ic->name, ic->version, ic->range, &prov,
                           &found);
        for (size_t j = 0; found && j < ic->subject_count && s == MS_OK; j++) {
            if (provider_has_subject(&prov, ic->subjects[j]))
                continue;
            snprintf(ptr, sizeof ptr, "%s/subjects/%zu", base, j);
            s = ms__check_add(r, MS_CHECK_WARNING, "subject-not-provided", file, 0, 0, ptr,
                              "'%s' matches no subject that %s serves or emits (%s)",
                              ic->subjects[j], ic->name, prov.c->iface_path);
        }
    }
    for (size_t i = 0; i < ms_context_dependency_count(ctx) && s == MS_OK; i++) {
        const ms_dependency *d = ms_context_dependency_at(ctx, i);
        char base[64];
        snprintf(base, sizeof base, "/dependencies/%zu", i);
        if (d->kind == MS_DEP_INTERFACE) {
            provider prov;
            bool found;
            s = check_consumed(r, st, c, file, base, "name", d->name, d->version, d->range, &prov,
                               &found);
        } else if (d->kind == MS_DEP_COMPONENT) {
            const ms__check_component *other = find_component(st, d->name);
            if (other == NULL) {
                snprintf(ptr, sizeof ptr, "%s/name", base);
                s = ms__check_add(r, MS_CHECK_ERROR, "unknown-component", file, 0, 0, ptr,
                                  "component '%s' is not in the stack (%zu checked)", d->name,
                                  st->n);
            } else if (!ms_range_match(d->range, ms_context_semver(other->ctx))) {
                snprintf(ptr, sizeof ptr, "%s/version", base);
                s = ms__check_add(r, MS_CHECK_WARNING, "version-out-of-range", file, 0, 0, ptr,
                                  "component '%s' is at %s (%s), outside the range '%s'", d->name,
                                  ms_context_version(other->ctx), other->ctx_path, d->version);
            }
        }
    }
    for (size_t i = 0; i < ms_context_provides_count(ctx) && s == MS_OK; i++) {
        const ms_interface_provided *p = ms_context_provides_at(ctx, i);
        const char *const files[2] = {p->contract, p->header};
        const char *const fields[2] = {"contract", "header"};
        for (int k = 0; k < 2 && s == MS_OK; k++) {
            char *full;
            if (files[k] == NULL)
                continue;
            full = ms__check_join(c->dir, files[k]);
            if (full == NULL)
                return ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
            if (!is_file(full)) {
                snprintf(ptr, sizeof ptr, "/interfaces/provides/%zu/%s", i, fields[k]);
                s = ms__check_add(r, MS_CHECK_ERROR, "missing-file", file, 0, 0, ptr,
                                  "%s does not exist", full);
            }
            ms__free(full);
        }
        /* The contract that is this component's interface.json: same version. */
        if (s == MS_OK && c->iface != NULL && p->contract != NULL &&
            strcmp(p->contract, "interface.json") == 0) {
            const char *iv = json_string_value(json_object_get(c->iface, "version"));
            if (iv != NULL && strcmp(iv, p->version) != 0) {
                snprintf(ptr, sizeof ptr, "/interfaces/provides/%zu/version", i);
                s = ms__check_add(r, MS_CHECK_ERROR, "version-mismatch", file, 0, 0, ptr,
                                  "'%s' provides %s, but %s says version %s", p->name, p->version,
                                  c->iface_path, iv);
            }
        }
    }
    return s;
}

static ms_status check_interface_refs(ms_check_report *r, const ms__check_stack *st,
                                      const ms__check_component *c)
{
    const json_t *arr = json_object_get(c->iface, "consumes");
    const char *file = c->iface_path;
    ms_status s = MS_OK;
    size_t i;
    const json_t *e;

    json_array_foreach(arr, i, e)
    {
        const char *name = json_string_value(json_object_get(e, "interface"));
        const char *vtext = json_string_value(json_object_get(e, "version"));
        const char *subject = json_string_value(json_object_get(e, "subject"));
        ms_range range;
        bool has_range = false, found;
        provider prov;
        char base[64], ptr[128];

        if (name == NULL)
            continue;
        snprintf(base, sizeof base, "/consumes/%zu", i);
        if (vtext != NULL) {
            if (ms_range_parse(vtext, &range) != MS_OK) {
                snprintf(ptr, sizeof ptr, "%s/version", base);
                s = ms__check_add(r, MS_CHECK_ERROR, "invalid", file, 0, 0, ptr, "%s",
                                  ms_last_error());
                if (s != MS_OK)
                    return s;
            } else {
                has_range = true;
            }
        }
        s = check_consumed(r, st, c, file, base, "interface", name, vtext,
                           has_range ? &range : NULL, &prov, &found);
        if (s == MS_OK && found && subject != NULL && !provider_has_subject(&prov, subject)) {
            snprintf(ptr, sizeof ptr, "%s/subject", base);
            s = ms__check_add(r, MS_CHECK_WARNING, "subject-not-provided", file, 0, 0, ptr,
                              "'%s' matches no subject that %s serves or emits (%s)", subject, name,
                              prov.c->iface_path);
        }
        if (s != MS_OK)
            return s;
    }
    return MS_OK;
}

static const char *dir_basename(const ms__check_component *c)
{
    const char *slash = strrchr(c->real, '/');
    return slash != NULL ? slash + 1 : c->real;
}

static ms_status cross_check(ms_check_report *r, const ms__check_stack *st,
                             const ms__check_component *c)
{
    const char *dirname = dir_basename(c);
    const char *name = c->ctx != NULL ? ms_context_component(c->ctx) : NULL;
    ms_status s = MS_OK;

    if (name != NULL && strcmp(name, dirname) != 0)
        s = ms__check_add(r, MS_CHECK_ERROR, "name-mismatch", c->ctx_path, 0, 0, "/component",
                          "component '%s', but its directory is named '%s'", name, dirname);
    if (s == MS_OK && c->cfg != NULL) {
        const char *cn = ms_agent_config_component(c->cfg);
        const char *want = name != NULL ? name : dirname;
        if (strcmp(cn, want) != 0)
            s = ms__check_add(r, MS_CHECK_ERROR, "name-mismatch", c->cfg_path, 0, 0, "/component",
                              "component '%s', but %s names '%s'", cn,
                              name != NULL ? c->ctx_path : "the directory", want);
    }
    if (s == MS_OK && c->iface != NULL) {
        const char *in = json_string_value(json_object_get(c->iface, "name"));
        const char *iv = json_string_value(json_object_get(c->iface, "version"));
        const char *want = name != NULL ? name : dirname;
        if (in != NULL && strcmp(in, want) != 0)
            s = ms__check_add(r, MS_CHECK_ERROR, "name-mismatch", c->iface_path, 0, 0, "/name",
                              "name '%s', but the component is '%s'", in, want);
        if (s == MS_OK && iv != NULL && c->ctx != NULL &&
            strcmp(iv, ms_context_version(c->ctx)) != 0)
            s = ms__check_add(r, MS_CHECK_ERROR, "version-mismatch", c->iface_path, 0, 0,
                              "/version", "version %s, but %s says %s", iv, c->ctx_path,
                              ms_context_version(c->ctx));
        if (s == MS_OK)
            s = check_interface_refs(r, st, c);
    }
    if (s == MS_OK && c->ctx != NULL)
        s = check_context_refs(r, st, c);
    if (s == MS_OK && c->cfg != NULL)
        s = ms__check_rules(r, c);
    return s;
}

/* --- the entry point ------------------------------------------------------- */

static ms_status load_schemas(const ms_check_options *opt, const char *first, ms_schema *schemas[3],
                              json_t *docs[3])
{
    static const char *const names[3] = {"context.schema.json", "agent-config.schema.json",
                                         "interface.schema.json"};
    char *root = NULL, *dir = NULL;
    ms_status s = MS_OK;

    if (opt != NULL && opt->schemas_dir != NULL) {
        dir = ms__strdup(opt->schemas_dir);
    } else {
        if (ms_check_find_root(first, &root) != MS_OK && first != NULL)
            (void)ms_check_find_root(NULL, &root);
        dir = root != NULL ? ms__check_join(root, "schemas") : ms__strdup(MS_INSTALL_SCHEMAS_DIR);
    }
    if (dir == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
        goto cleanup;
    }
    if (!is_dir(dir)) {
        s = ms__err(MS_ERR_NOT_FOUND, "schemas: %s is not a directory (give --schemas DIR)", dir);
        goto cleanup;
    }
    for (int k = 0; k < 3 && s == MS_OK; k++) {
        char *p = ms__check_join(dir, names[k]);
        if (p == NULL) {
            s = ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
            break;
        }
        s = ms_schema_load(p, &schemas[k]);
        if (s == MS_OK)
            s = ms_json_load_file(p, 0, &docs[k]);
        ms__free(p);
    }
cleanup:
    ms__free(root);
    ms__free(dir);
    return s;
}

ms_status ms_check_stack(const char *const *paths, size_t n, const ms_check_options *opt,
                         ms_check_report **out)
{
    ms_schema *schemas[3] = {NULL, NULL, NULL};
    json_t *schema_docs[3] = {NULL, NULL, NULL};
    dirlist list = {0};
    ms__check_stack st = {0};
    ms_check_report *r = NULL;
    char *root = NULL;
    ms_status s;

    if (out == NULL || (paths == NULL && n > 0))
        return ms__err(MS_ERR_INVALID_ARG, "ms_check_stack: out is NULL, or paths NULL");
    *out = NULL;
    if (n == 0) {
        s = ms_check_find_root(NULL, &root);
        if (s != MS_OK)
            goto cleanup;
        s = discover_root(root, &list);
    } else {
        s = MS_OK;
        for (size_t i = 0; i < n && s == MS_OK; i++)
            s = discover(paths[i], &list);
    }
    if (s != MS_OK)
        goto cleanup;
    s = load_schemas(opt, n > 0 ? paths[0] : root, schemas, schema_docs);
    if (s != MS_OK)
        goto cleanup;
    r = ms__calloc(1, sizeof *r);
    st.c = ms__calloc(list.n, sizeof *st.c);
    if (r == NULL || st.c == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "check: out of memory");
        goto cleanup;
    }
    /* The report keeps the directories; the stack borrows them. */
    r->dirs = list.dirs;
    r->ndirs = list.n;
    list.dirs = NULL;
    st.n = list.n;
    for (size_t i = 0; i < st.n; i++) {
        st.c[i].dir = r->dirs[i];
        st.c[i].real = list.reals[i];
    }
    for (size_t i = 0; i < st.n && s == MS_OK; i++)
        s = load_component(r, schemas, schema_docs, &st.c[i]);
    for (size_t i = 0; i < st.n && s == MS_OK; i++)
        s = cross_check(r, &st, &st.c[i]);
    if (s == MS_OK) {
        *out = r;
        r = NULL;
    }
cleanup:
    for (size_t i = 0; st.c != NULL && i < st.n; i++) {
        ms_context_unref(st.c[i].ctx);
        ms_agent_config_unref(st.c[i].cfg);
        json_decref(st.c[i].iface);
        ms__free(st.c[i].ctx_path);
        ms__free(st.c[i].cfg_path);
        ms__free(st.c[i].iface_path);
    }
    ms__free(st.c);
    if (list.dirs == NULL) { /* handed to the report: free the rest */
        for (size_t i = 0; i < list.n; i++)
            ms__free(list.reals[i]);
        ms__free(list.reals);
    } else {
        dirlist_free(&list);
    }
    ms_check_report_destroy(r);
    for (int k = 0; k < 3; k++) {
        ms_schema_destroy(schemas[k]);
        json_decref(schema_docs[k]);
    }
    ms__free(root);
    return s;
}
