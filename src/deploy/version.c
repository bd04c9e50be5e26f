/*
 * version.c - ms_version_add: a built component becomes a recorded version.
 *
 * Order: load and validate the plugin (so nothing is copied for a file that
 * is not a component), hash it, refuse a known version with other content
 * before touching the artifact directory, copy the files, then record the
 * row. A copy is written beside its target and renamed (ms__write_file), so
 * an interrupted add leaves no half file under a version's name.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "core/fs.h"
#include "deploy/sha256.h"
#include "mainstack/component.h"
#include "mainstack/deploy.h"

#define MAX_COPY (256u * 1024u * 1024u)

ms_status ms_sha256_file(const char *path, char out[65])
{
    if (path == NULL || out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_sha256_file: path and out are required");
    return ms__sha256_file(path, out);
}

void ms_sha256_hex(const void *data, size_t len, char out[65])
{
    ms__sha256_hex(data, len, out);
}

static ms_status copy_file(const char *from, const char *to)
{
    FILE *fp = NULL;
    char *buf = NULL;
    long n;
    ms_status s = MS_OK;

    if ((fp = fopen(from, "rb")) == NULL)
        return ms__err(MS_ERR_IO, "%s: %s", from, strerror(errno));
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || fseek(fp, 0, SEEK_SET) != 0) {
        s = ms__err(MS_ERR_IO, "%s: cannot size it", from);
        goto cleanup;
    }
    if ((unsigned long)n > MAX_COPY) {
        s = ms__err(MS_ERR_TOO_LARGE, "%s: %ld bytes, more than an artifact may be", from, n);
        goto cleanup;
    }
    buf = ms__malloc(n > 0 ? (size_t)n : 1);
    if (buf == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "copying %s", from);
        goto cleanup;
    }
    if (n > 0 && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        s = ms__err(MS_ERR_IO, "%s: read error", from);
        goto cleanup;
    }
    s = ms__write_file(to, buf, (size_t)n, "artifact");
cleanup:
    ms__free(buf);
    fclose(fp);
    return s;
}

/* out = a + b, or MS_ERR_INVALID_ARG when it does not fit. */
static ms_status join(char *out, size_t cap, const char *a, const char *b)
{
    int n = snprintf(out, cap, "%s%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return ms__err(MS_ERR_INVALID_ARG, "path %s%s is too long", a, b);
    return MS_OK;
}

static bool is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The regular files of dir (one level) into to/. */
static ms_status copy_dir_files(const char *dir, const char *to)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    ms_status s = MS_OK;
    char a[4096], b[4096];
    if (d == NULL)
        return ms__err(MS_ERR_IO, "%s: %s", dir, strerror(errno));
    if ((s = ms__mkdirs(to, 0755, "artifacts")) != MS_OK)
        goto cleanup;
    while (s == MS_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        int na = snprintf(a, sizeof a, "%s/%s", dir, e->d_name);
        int nb = snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        if (na < 0 || nb < 0 || (size_t)na >= sizeof a || (size_t)nb >= sizeof b) {
            s = ms__err(MS_ERR_INVALID_ARG, "%s/%s: path too long", dir, e->d_name);
            break;
        }
        if (is_regular(a))
            s = copy_file(a, b);
    }
cleanup:
    closedir(d);
    return s;
}

ms_status ms_version_add(ms_registry *reg, const char *root, const char *component,
                         const char *so_path, const char *source_dir, ms_version_info *out)
{
    ms_version_info local;
    ms_version_info *v = out != NULL ? out : &local;
    ms_plugin *pl = NULL;
    const ms_component_ops *ops;
    json_t *have = NULL, *detail = NULL;
    char path[4096], ctx_src[4096];
    ms_status s;
    int n;

    memset(v, 0, sizeof *v);
    if (reg == NULL || root == NULL || root[0] == '\0' || component == NULL ||
        component[0] == '\0' || so_path == NULL || so_path[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG,
                       "ms_version_add: reg, root, component and so_path are required");
    /* 1. a mainstack component of this ABI, and the one named */
    if ((s = ms_plugin_load(so_path, &pl)) != MS_OK)
        return s;
    ops = ms_plugin_ops(pl);
    if (strcmp(ops->metadata.name, component) != 0) {
        s = ms__err(MS_ERR_INVALID_ARG, "%s is component '%s', not '%s'", so_path,
                    ops->metadata.name, component);
        goto cleanup;
    }
    snprintf(v->component, sizeof v->component, "%s", component);
    snprintf(v->version, sizeof v->version, "%s", ops->metadata.version);
    /* 2. its content */
    if ((s = ms__sha256_file(so_path, v->sha256)) != MS_OK)
        goto cleanup;
    n = snprintf(v->dir, sizeof v->dir, "%s/.mainstack/artifacts/%s/%s", root, component,
                 v->version);
    if (n < 0 || (size_t)n >= sizeof v->dir) {
        s = ms__err(MS_ERR_INVALID_ARG, "ms_version_add: the artifact path is too long");
        goto cleanup;
    }
    n = snprintf(v->so_path, sizeof v->so_path, "%s/%s.so", v->dir, component);
    if (n < 0 || (size_t)n >= sizeof v->so_path) {
        s = ms__err(MS_ERR_INVALID_ARG, "ms_version_add: the artifact path is too long");
        goto cleanup;
    }
    /* 3. a known version: the same content is a no-op, other content refused */
    s = ms_registry_version_get(reg, component, v->version, &have);
    if (s == MS_OK) {
        const char *sha = json_string_value(json_object_get(have, "sha256"));
        if (sha != NULL && strcmp(sha, v->sha256) == 0) {
            v->fresh = false;
            if ((s = join(path, sizeof path, v->dir, "/interface.json")) != MS_OK)
                goto cleanup;
            v->has_interface = is_regular(path);
            if ((s = join(path, sizeof path, v->dir, "/context")) != MS_OK)
                goto cleanup;
            v->has_context = is_dir(path);
            s = MS_OK;
        } else {
            s = ms__err(MS_ERR_STATE,
                        "%s %s is already recorded with sha256 %s; %s is %s (another content "
                        "under the same version: bump the version in its metadata)",
                        component, v->version, sha != NULL ? sha : "?", so_path, v->sha256);
        }
        goto cleanup;
    }
    if (s != MS_ERR_NOT_FOUND)
        goto cleanup;
    /* 4. the files */
    if ((s = ms__mkdirs(v->dir, 0755, "artifacts")) != MS_OK ||
        (s = copy_file(so_path, v->so_path)) != MS_OK)
        goto cleanup;
    if (source_dir != NULL) {
        char src[4096];
        if ((s = join(src, sizeof src, source_dir, "/interface.json")) != MS_OK)
            goto cleanup;
        if (is_regular(src)) {
            if ((s = join(path, sizeof path, v->dir, "/interface.json")) != MS_OK)
                goto cleanup;
            if ((s = copy_file(src, path)) != MS_OK)
                goto cleanup;
            v->has_interface = true;
        }
        if ((s = join(ctx_src, sizeof ctx_src, source_dir, "/context")) != MS_OK)
            goto cleanup;
        if (is_dir(ctx_src)) {
            if ((s = join(path, sizeof path, v->dir, "/context")) != MS_OK)
                goto cleanup;
            if ((s = copy_dir_files(ctx_src, path)) != MS_OK)
                goto cleanup;
            v->has_context = true;
        }
    }
    /* 5. the row */
    detail = json_pack("{s:s, s:s, s:b, s:b}", "source", so_path, "description",
                       ops->metadata.description, "interface", v->has_interface, "context",
                       v->has_context);
    if (detail == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "ms_version_add: allocating");
        goto cleanup;
    }
    s = ms_registry_version_add(reg, component, v->version, v->sha256, v->dir, detail, &v->fresh);
cleanup:
    json_decref(have);
    json_decref(detail);
    ms_plugin_unload(pl);
    return s;
}
