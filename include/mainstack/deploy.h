/*
 * deploy.h - versions of a component as artifacts (docs/deploy.md).
 *
 * ms_version_add records a built component: its shared object, its
 * interface.json and its context snapshot are copied under
 * <root>/.mainstack/artifacts/<component>/<version>/, the version is read
 * from the plugin's own metadata (the .so is loaded and validated: a file
 * that is not a mainstack component, or one built for another ABI, is
 * refused), the content hash is the sha256 of the .so, and the registry
 * records the version in state candidate. The same version with the same
 * content again is a no-op; with other content it is refused.
 *
 * Threading: the functions are thread-safe as far as the registry is (one
 * ms_registry per thread, or serialised calls). Ownership: arguments are
 * borrowed; the info struct is the caller's.
 */
#ifndef MAINSTACK_DEPLOY_H
#define MAINSTACK_DEPLOY_H

#include <stdbool.h>

#include "mainstack/registry.h"
#include "mainstack/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ms_version_info {
    char component[65];
    char version[64];
    char sha256[65];    /* of the shared object, lowercase hex */
    char dir[4096];     /* the artifact directory */
    char so_path[4096]; /* the copy of the shared object in it */
    bool fresh;         /* false: that version with that content was already recorded */
    bool has_interface; /* interface.json was copied */
    bool has_context;   /* the context snapshot was copied */
} ms_version_info;

/*
 * Record a built component. reg: the project's registry (borrowed). root:
 * the project root (artifacts go under <root>/.mainstack/artifacts).
 * component: its name, which must be the plugin's metadata.name.
 * so_path: the built shared object. source_dir (may be NULL): the
 * component's directory, whose interface.json and context/ (a directory,
 * copied as context/) are copied when present. out (optional) is filled.
 * Returns MS_OK; MS_ERR_INVALID_ARG (arguments; the plugin is another
 * component); the ms_plugin_load statuses naming the file (MS_ERR_IO
 * missing or not loadable, MS_ERR_NOT_FOUND not a mainstack component,
 * MS_ERR_UNSUPPORTED ABI mismatch, MS_ERR_SCHEMA bad metadata);
 * MS_ERR_STATE (that version is recorded with another sha256: both named);
 * MS_ERR_IO (copying, naming the file).
 */
ms_status ms_version_add(ms_registry *reg, const char *root, const char *component,
                         const char *so_path, const char *source_dir, ms_version_info *out);

/* The sha256 of a file's content as 64 lowercase hex digits. MS_ERR_IO,
 * MS_ERR_INVALID_ARG. */
ms_status ms_sha256_file(const char *path, char out[65]);
/* The sha256 of len bytes. */
void ms_sha256_hex(const void *data, size_t len, char out[65]);

#ifdef __cplusplus
}
#endif
#endif
