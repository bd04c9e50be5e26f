/*
 * plugin.c - loading a component from a shared object.
 *
 * dlopen(RTLD_NOW | RTLD_LOCAL) so that an unresolved symbol is reported at
 * load time (not as a crash at the first call) and two plugins never see
 * each other's symbols; then the single entry symbol, mainstack_component,
 * is looked up and called, and its ops are validated (ABI first). Every
 * error names the file, so "mstack run ./x.so" says which file is wrong and
 * how. A plugin leaves the mainstack symbols it uses undefined: the host
 * (linked with libmainstack) provides them (docs/runtime.md).
 */
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/error.h"
#include "mainstack/component.h"

struct ms_plugin {
    void *handle;
    char *path;
    const ms_component_ops *ops; /* points into the loaded object */
};

ms_status ms_plugin_load(const char *path, ms_plugin **out)
{
    ms_plugin *p = NULL;
    struct stat st;
    union {
        void *obj;
        ms_component_entry fn;
    } entry;
    const char *err;
    ms_status s;

    if (out == NULL)
        return ms__err(MS_ERR_INVALID_ARG, "ms_plugin_load: out is NULL");
    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return ms__err(MS_ERR_INVALID_ARG, "ms_plugin_load: path is NULL or empty");
    /* dlopen's message for a missing file is vague about which lookup
     * failed; say it plainly. A name without '/' would also be searched in
     * the library path by dlopen: the runtime resolves names itself. */
    if (stat(path, &st) != 0)
        return ms__err(MS_ERR_IO, "plugin %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ms__err(MS_ERR_IO, "plugin %s: not a regular file", path);

    p = ms__calloc(1, sizeof *p);
    if (p == NULL)
        return ms__err(MS_ERR_NO_MEMORY, "plugin %s: allocating", path);
    p->path = ms__strdup(path);
    if (p->path == NULL) {
        s = ms__err(MS_ERR_NO_MEMORY, "plugin %s: allocating", path);
        goto cleanup;
    }
    (void)dlerror();
    p->handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (p->handle == NULL) {
        err = dlerror();
        s = ms__err(MS_ERR_IO, "plugin %s: cannot load: %s", path,
                    err != NULL ? err : "unknown dlopen error");
        goto cleanup;
    }
    (void)dlerror();
    entry.obj = dlsym(p->handle, MS_COMPONENT_ENTRY_SYMBOL);
    err = dlerror();
    if (err != NULL || entry.obj == NULL) {
        s = ms__err(MS_ERR_NOT_FOUND,
                    "plugin %s: not a mainstack component (no '%s' symbol; export one with "
                    "MS_COMPONENT_EXPORT)",
                    path, MS_COMPONENT_ENTRY_SYMBOL);
        goto cleanup;
    }
    p->ops = entry.fn();
    if (p->ops == NULL) {
        s = ms__err(MS_ERR_SCHEMA, "plugin %s: %s() returned NULL", path,
                    MS_COMPONENT_ENTRY_SYMBOL);
        goto cleanup;
    }
    s = ms_component_validate(p->ops, path);
    if (s != MS_OK)
        goto cleanup;
    *out = p;
    return MS_OK;

cleanup:
    ms_plugin_unload(p);
    return s;
}

const ms_component_ops *ms_plugin_ops(const ms_plugin *p)
{
    return p == NULL ? NULL : p->ops;
}

const char *ms_plugin_path(const ms_plugin *p)
{
    return p == NULL ? NULL : p->path;
}

void ms_plugin_unload(ms_plugin *p)
{
    if (p == NULL)
        return;
    if (p->handle != NULL)
        (void)dlclose(p->handle);
    ms__free(p->path);
    ms__free(p);
}
