/*
 * sim_component.c - writing a simulated component's context files.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "sim_component.h"

static int make_dir(const char *path)
{
    return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int rc;

    if (f == NULL)
        return -1;
    rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

int sim_component_write(const char *root, const char *name, const char *iface, bool autonomous,
                        int work_ms, const char *action, char *dir, size_t cap)
{
    char path[4200], text[8192], match[256], argv[4200];

    snprintf(path, sizeof path, "%s/components", root);
    if (make_dir(root) != 0 || make_dir(path) != 0)
        return -1;
    snprintf(dir, cap, "%s/components/%s", root, name);
    snprintf(path, sizeof path, "%s/context", dir);
    if (make_dir(dir) != 0 || make_dir(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/context/context.json", dir);
    snprintf(text, sizeof text,
             "{\n"
             "  \"component\": \"%s\",\n"
             "  \"version\": \"1.0.0\",\n"
             "  \"purpose\": \"A simulated component: its agent reacts to every interface "
             "change and dependency update with %d ms of work.\"\n"
             "}\n",
             name, work_ms);
    if (write_text(path, text) != 0)
        return -1;
    if (iface != NULL)
        snprintf(match, sizeof match, ", \"interface\": \"%s\"", iface);
    else
        match[0] = '\0';
    if (action != NULL)
        snprintf(argv, sizeof argv, "\"%s\", \"%d\"", action, work_ms);
    else
        snprintf(argv, sizeof argv, "\"sleep\", \"%d.%03d\"", work_ms / 1000, work_ms % 1000);
    snprintf(path, sizeof path, "%s/context/agent-config.json", dir);
    snprintf(text, sizeof text,
             "{\n"
             "  \"component\": \"%s\",\n"
             "  \"monitored_topics\": [\"mainstack.interface.changed.>\", "
             "\"mainstack.dependency.updated.>\"],\n"
             "  \"autonomy\": {\"level\": \"%s\", \"may_deploy\": false},\n"
             "  \"rules\": [\n"
             "    {\"name\": \"any-interface-change\", \"match\": {\"type\": "
             "\"interface_changed\"%s}, \"decision\": \"act\",\n"
             "     \"reason\": \"every interface change is worth a look in this simulation\"},\n"
             "    {\"name\": \"any-dependency-update\", \"match\": {\"type\": "
             "\"dependency_update\"}, \"decision\": \"act\",\n"
             "     \"reason\": \"every dependency update is worth a rebuild in this simulation\"}\n"
             "  ],\n"
             "  \"actions\": {\n"
             "    \"change\": {\"argv\": [%s], \"timeout_s\": %d}\n"
             "  }\n"
             "}\n",
             name, autonomous ? "major" : "observe", match, argv, work_ms / 1000 + 60);
    return write_text(path, text);
}
