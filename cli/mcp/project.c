/*
 * project.c - the project tree as the MCP server sees it: components are the
 * directories <root>/components/<name>/ holding an interface.json, and every
 * file read goes through mcp_read_file, which resolves the path (symlinks
 * included) and refuses anything that lands outside the project root.
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
