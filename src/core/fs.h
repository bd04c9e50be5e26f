/*
 * fs.h - small file-system helpers of the library (internal).
 */
#ifndef MS_CORE_FS_H
#define MS_CORE_FS_H

#include <sys/types.h>

#include "mainstack/status.h"

/* mkdir -p path with mode for the directories it makes. `what` labels
 * errors ("registry", "run logs"). MS_ERR_IO naming the directory that
 * could not be made (or that is not a directory), MS_ERR_INVALID_ARG (empty
 * or over 4095 bytes). */
ms_status ms__mkdirs(const char *path, mode_t mode, const char *what);

/* ms__mkdirs of the directory part of path (nothing when it has none). */
ms_status ms__mkdirs_parent(const char *path, mode_t mode, const char *what);

/* Write len bytes to path (created or truncated, mode 0600), all or nothing
 * visible: written to a temporary file beside it, then renamed. MS_ERR_IO. */
ms_status ms__write_file(const char *path, const void *data, size_t len, const char *what);

#endif
