/*
 * fs.c - mkdir -p and whole-file writes, with errors that name the path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"

#define PATH_CAP 4096

ms_status ms__mkdirs(const char *path, mode_t mode, const char *what)
{
    char buf[PATH_CAP];
    size_t n = path ? strlen(path) : 0;
    struct stat st;

    if (n == 0 || n >= sizeof buf)
        return ms__err(MS_ERR_INVALID_ARG, "%s: directory '%s' is empty or too long", what,
                       path ? path : "");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        char saved;

        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return ms__err(MS_ERR_IO, "%s: mkdir %s: %s", what, buf, strerror(errno));
        buf[i] = saved;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ms__err(MS_ERR_IO, "%s: %s is not a directory", what, path);
    return MS_OK;
}

ms_status ms__mkdirs_parent(const char *path, mode_t mode, const char *what)
{
    char buf[PATH_CAP];
    size_t n = path ? strlen(path) : 0;
    char *slash;

    if (n == 0 || n >= sizeof buf)
        return ms__err(MS_ERR_INVALID_ARG, "%s: path '%s' is empty or too long", what,
                       path ? path : "");
    memcpy(buf, path, n + 1);
    slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf)
        return MS_OK;
    *slash = '\0';
    return ms__mkdirs(buf, mode, what);
}

ms_status ms__write_file(const char *path, const void *data, size_t len, const char *what)
{
    char tmp[PATH_CAP];
    const char *p = data;
    size_t off = 0;
    int fd;

    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
        return ms__err(MS_ERR_INVALID_ARG, "%s: path '%s' is too long", what, path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ms__err(MS_ERR_IO, "%s: creating %s: %s", what, tmp, strerror(errno));
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int err = w < 0 ? errno : EIO;

            close(fd);
            unlink(tmp);
            return ms__err(MS_ERR_IO, "%s: writing %s: %s", what, tmp, strerror(err));
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int err = errno;

        unlink(tmp);
        return ms__err(MS_ERR_IO, "%s: writing %s: %s", what, path, strerror(err));
    }
    return MS_OK;
}
