/*
 * project.c - the project tree as the MCP server sees it: components are the
 * directories <root>/components/<name>/ holding an interface.json, and every
 * file read goes through mcp_read_file, which resolves the path (symlinks
 * included) and refuses anything that lands outside the project root.
 * The library's loaders (AGENTS.md rendering, checking, the agent's context)
 * open files themselves: mcp_component_dir checks those files resolve inside
 * the root first (a file swapped for a symlink between the check and the
 * load is not caught: the root is the user's own tree, not an adversary's).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcp.h"

bool mcp_valid_name(const char *name)
{
    size_t n = name != NULL ? strlen(name) : 0;
    if (n == 0 || n > 64 || name[0] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

/* Resolve <root>/<rel> into out; 0, ENOENT, EACCES (outside the root). */
static int resolve(const mcp_server *srv, const char *rel, char out[PATH_MAX])
{
    char path[sizeof srv->root + PATH_MAX];
    size_t rl = strlen(srv->root);

    if (snprintf(path, sizeof path, "%s/%s", srv->root, rel) >= (int)sizeof path)
        return ENAMETOOLONG;
    if (realpath(path, out) == NULL)
        return errno;
    if (strncmp(out, srv->root, rl) != 0 || (out[rl] != '/' && out[rl] != '\0'))
        return EACCES;
    return 0;
}

bool mcp_component_visible(const mcp_server *srv, const char *name)
{
    char rel[320], real[PATH_MAX];
    if (!mcp_valid_name(name))
        return false;
    if (srv->component != NULL && strcmp(srv->component, name) != 0)
        return false;
    snprintf(rel, sizeof rel, "components/%s/interface.json", name);
    return resolve(srv, rel, real) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *mcp_components(const mcp_server *srv)
{
    char dir[sizeof srv->root + 16];
    json_t *out = json_array();
    char *names[1024];
    size_t n = 0;
    struct dirent *de;
    DIR *d;

    if (out == NULL)
        return NULL;
    snprintf(dir, sizeof dir, "%s/components", srv->root);
    d = opendir(dir);
    if (d == NULL)
        return out;
    while ((de = readdir(d)) != NULL && n < sizeof names / sizeof names[0]) {
        if (mcp_component_visible(srv, de->d_name) && (names[n] = strdup(de->d_name)) != NULL)
            n++;
    }
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(out, json_string(names[i]));
        free(names[i]);
    }
    return out;
}

int mcp_read_file(const mcp_server *srv, const char *rel, size_t max, char **data, size_t *len,
                  char *msg, size_t cap)
{
    char real[PATH_MAX];
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd, rc = resolve(srv, rel, real);

    *data = NULL;
    *len = 0;
    if (rc == EACCES) {
        snprintf(msg, cap, "%s resolves to %s, outside the project root %s: refused", rel, real,
                 srv->root);
        return EACCES;
    }
    if (rc != 0) {
        snprintf(msg, cap, "%s: %s", rel, strerror(rc));
        return rc == ENOENT || rc == ENOTDIR ? ENOENT : EIO;
    }
    fd = open(real, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(msg, cap, "%s: %s", rel, strerror(errno));
        return EIO;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(msg, cap, "%s is not a regular file", rel);
        close(fd);
        return EIO;
    }
    if ((size_t)st.st_size > max) {
        snprintf(msg, cap, "%s is %lld bytes, more than the %zu this server reads", rel,
                 (long long)st.st_size, max);
        close(fd);
        return EFBIG;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        snprintf(msg, cap, "%s: out of memory", rel);
        close(fd);
        return EIO;
    }
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

json_t *mcp_read_json(const mcp_server *srv, const char *rel, char *msg, size_t cap, int *errnum)
{
    char *data = NULL;
    size_t len = 0;
    json_t *v = NULL;
    int rc = mcp_read_file(srv, rel, 16u * 1024u * 1024u, &data, &len, msg, cap);

    if (errnum != NULL)
        *errnum = rc;
    if (rc != 0)
        return NULL;
    if (ms_json_parse(data, len, rel, &v) != MS_OK) {
        snprintf(msg, cap, "%s", ms_last_error());
        if (errnum != NULL)
            *errnum = EINVAL;
    }
    free(data);
    return v;
}

int mcp_component_dir(const mcp_server *srv, const char *name, char *dir, size_t dcap, char *msg,
                      size_t cap)
{
    static const char *const files[] = {"context/context.json", "context/agent-config.json",
                                        "interface.json"};
    char rel[320], real[PATH_MAX];

    if (!mcp_component_visible(srv, name)) {
        snprintf(msg, cap, "no component '%s' here (list_components names them)", name);
        return ENOENT;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        int rc;
        snprintf(rel, sizeof rel, "components/%s/%s", name, files[i]);
        rc = resolve(srv, rel, real);
        if (rc == EACCES) {
            snprintf(msg, cap, "%s resolves to %s, outside the project root %s: refused", rel, real,
                     srv->root);
            return EACCES;
        }
        if (rc != 0 && i < 2) { /* interface.json exists: the component is visible */
            snprintf(msg, cap, "%s: %s", rel, strerror(rc));
            return ENOENT;
        }
    }
    if (snprintf(dir, dcap, "%s/components/%s", srv->root, name) >= (int)dcap) {
        snprintf(msg, cap, "components/%s: path too long", name);
        return ENOENT;
    }
    return 0;
}

int mcp_agents_md(const mcp_server *srv, const char *name, char **md, char *msg, size_t cap)
{
    char dir[PATH_MAX];
    int rc = mcp_component_dir(srv, name, dir, sizeof dir, msg, cap);

    *md = NULL;
    if (rc != 0)
        return rc;
    if (ms_context_render_dir(dir, md) != MS_OK) {
        snprintf(msg, cap, "cannot render AGENTS.md of %s: %s", name, ms_last_error());
        *md = NULL;
        return EINVAL;
    }
    return 0;
}

int mcp_context_components(const mcp_server *srv, json_t **names, json_t **skipped)
{
    static const char *const files[] = {"context/context.json", "context/agent-config.json",
                                        "interface.json"};
    char dir[sizeof srv->root + 16];
    char *found[1024];
    size_t nfound = 0;
    struct dirent *de;
    DIR *d;
    int rc = 0;

    *names = json_array();
    *skipped = json_array();
    snprintf(dir, sizeof dir, "%s/components", srv->root);
    d = opendir(dir);
    while (d != NULL && (de = readdir(d)) != NULL && nfound < sizeof found / sizeof found[0]) {
        char path[sizeof dir + 300];
        struct stat st;
        if (!mcp_valid_name(de->d_name))
            continue;
        snprintf(path, sizeof path, "%s/%s/context", dir, de->d_name);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
            (found[nfound] = strdup(de->d_name)) != NULL)
            nfound++;
    }
    if (d != NULL)
        closedir(d);
    qsort(found, nfound, sizeof found[0], cmp_str);
    for (size_t i = 0; i < nfound; i++) {
        const char *why = NULL;
        char rel[320], real[PATH_MAX], reason[512];
        for (size_t k = 0; k < sizeof files / sizeof files[0] && why == NULL; k++) {
            snprintf(rel, sizeof rel, "components/%s/%s", found[i], files[k]);
            if (resolve(srv, rel, real) == EACCES)
                why = files[k];
        }
        if (why == NULL) {
            json_array_append_new(*names, json_string(found[i]));
        } else if (srv->component == NULL || strcmp(srv->component, found[i]) == 0) {
            snprintf(reason, sizeof reason,
                     "%s resolves outside the project root: not read, not checked", why);
            json_array_append_new(*skipped,
                                  json_pack("{s:s, s:s}", "component", found[i], "reason", reason));
        }
        free(found[i]);
    }
    if (*names == NULL || *skipped == NULL) {
        json_decref(*names);
        json_decref(*skipped);
        *names = *skipped = NULL;
        rc = -1;
    }
    return rc;
}
