/*
 * cmd_run.c - `mstack run COMPONENT...`: host components until told to stop.
 *
 * Creates one runtime (ms_runtime_create) on --nats / $NATS_URL, or
 * in-process without either, loads every COMPONENT (a name on the search
 * path or a path to a .so) --instances times, prints one "serving" line
 * that scripts can wait for, then waits for signals: SIGHUP rereads the
 * config file (ms_runtime_reload_config), SIGTERM and SIGINT shut down
 * gracefully (ms_runtime_shutdown) and the exit code is 0.
 *
 * The three signals are blocked before the runtime starts any thread, so
 * every thread inherits the mask and this thread takes them with
 * sigwaitinfo(): no signal can arrive between the "serving" line and the
 * wait (a SIGTERM sent the moment the line is read still stops cleanly),
 * and each reload is reported on stdout as it happens. This does what
 * ms_runtime_run does, with that report and without its race window.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#ifndef MSTACK_INSTALL_COMPONENTS_REL
#define MSTACK_INSTALL_COMPONENTS_REL "lib/mainstack/components"
#endif

static const cli_option options[] = {
    {"nats", 's', "URL", false, "NATS server (default: $NATS_URL; without either: in-process)"},
    {"config", 'c', "FILE", false, "JSON config file {\"<component>\": {...}}; SIGHUP rereads it"},
    {"instances", 'n', "N", false, "instances of each component (default 1)"},
    {"workers", 'w', "N", false, "worker threads (default: number of CPUs)"},
    {"data-dir", 'd', "DIR", false, "data root (default: $MAINSTACK_DATA_DIR, ./mainstack-data)"},
    {"health-interval", 0, "MS", false, "between health checks (default 5000; 0: none)"},
    {"shutdown-timeout", 0, "MS", false, "deadline of the graceful shutdown (default 10000)"},
    {"restart", 0, "TYPE", false, "permanent (default), transient or temporary"},
    {"name", 0, "NAME", false, "host name in health and on the server (default mstack-PID)"},
    {"component-path", 'p', "DIRS", false, "more ':'-separated directories to find names in"},
    {"root", 'C', "DIR", false,
     "the project root whose registry names the active versions (default: found)"},
    {"build-version", 0, NULL, false,
     "load names from the search path even when the registry has an active version"},
    {"json", 0, NULL, false, "print each event (started, serving, ...) as a JSON line"},
    {NULL, 0, NULL, false, NULL},
};

/* The artifact of name's active version when the project's registry has
 * one (so that a host started or restarted after a deployment serves what
 * was deployed, not whatever the build tree holds): out gets
 * <artifact_dir>/<name>.so and the version. The registry is only read, and
 * only when it exists; any problem means "none" (the search path applies).
 * A name that is a path is never looked up. */
static bool active_artifact(const char *root, const char *name, char *out, size_t cap,
                            char *version, size_t vcap)
{
    char db[4200];
    ms_registry *reg = NULL;
    json_t *rows = NULL, *row;
    bool found = false;
    size_t i;

    if (root == NULL || strchr(name, '/') != NULL || strstr(name, ".so") != NULL)
        return false;
    snprintf(db, sizeof db, "%s/.mainstack/registry.db", root);
    if (access(db, R_OK) != 0 || ms_registry_open(db, &reg) != MS_OK)
        return false;
    if (ms_registry_versions(reg, name, &rows) != MS_OK)
        goto cleanup;
    json_array_foreach(rows, i, row)
    {
        const char *st = json_string_value(json_object_get(row, "state"));
        const char *dir = json_string_value(json_object_get(row, "artifact_dir"));
        if (st == NULL || dir == NULL || strcmp(st, "active") != 0)
            continue;
        snprintf(out, cap, "%s/%s.so", dir, name);
        snprintf(version, vcap, "%s", json_string_value(json_object_get(row, "version")));
        found = access(out, R_OK) == 0;
        if (!found)
            ms_log_kv(MS_LOG_WARN, "run",
                      "the active version's artifact is missing: using the search path",
                      "component", name, "artifact", out, NULL);
        break;
    }
cleanup:
    json_decref(rows);
    ms_registry_close(reg);
    return found;
}

/* The directories searched by default, relative to this binary: the build
 * tree's components directory and the installed one. *out is malloc'd. */
static int default_component_path(const char *extra, char **out)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    size_t cap;
    char *slash;

    *out = NULL;
    if (n <= 0) {
        exe[0] = '\0';
    } else {
        /* <prefix>/bin/mstack -> <prefix>: drop the file, then its directory. */
        exe[n] = '\0';
        for (int k = 0; k < 2; k++) {
            slash = strrchr(exe, '/');
            if (slash != NULL)
                *slash = '\0';
        }
    }
    cap = strlen(exe) * 2 + strlen(MSTACK_INSTALL_COMPONENTS_REL) + 32 +
          (extra != NULL ? strlen(extra) : 0);
    *out = malloc(cap);
    if (*out == NULL) {
        cli_error("out of memory");
        return CLI_EXIT_FAILURE;
    }
    if (exe[0] != '\0')
        snprintf(*out, cap, "%s%s%s/components:%s/" MSTACK_INSTALL_COMPONENTS_REL,
                 extra != NULL ? extra : "", extra != NULL ? ":" : "", exe, exe);
    else
        snprintf(*out, cap, "%s", extra != NULL ? extra : "");
    return CLI_EXIT_OK;
}

/* Print one event line: a sentence, or with --json the object itself. */
static void report(bool json_mode, json_t *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(bool json_mode, json_t *event, const char *fmt, ...)
{
    if (json_mode) {
        if (event != NULL)
            cli_print_json(event, false);
    } else {
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    }
    json_decref(event);
    fflush(stdout);
}

/* The error of a failed ms_runtime_create, with what to do. */
static int create_error(const cli_verb *verb, const char *url, const char *config, ms_status s)
{
    if (s == MS_ERR_CONNECTION) {
        cli_error("no NATS server at %s: start one (nats-server -a 127.0.0.1 -p 4222 -js) "
                  "and pass its URL with --nats or NATS_URL, or leave both unset to serve "
                  "in-process (%s)",
                  url, ms_last_error());
        return CLI_EXIT_CONNECTION;
    }
    if (s == MS_ERR_AUTH)
        return cli_connection_error(url, s);
    if (config != NULL && (s == MS_ERR_IO || s == MS_ERR_PARSE || s == MS_ERR_SCHEMA))
        return cli_usage_error(verb, "the config file %s cannot be used: %s", config,
                               ms_last_error());
    if (s == MS_ERR_INVALID_ARG)
        return cli_usage_error(verb, "%s", ms_last_error());
    cli_error("cannot start the runtime: %s", ms_last_error());
    return cli_exit_code(s);
}

/* Load every component `instances` times. */
static int load_all(ms_runtime *rt, const cli_args *a, int instances, ms_restart_type restart,
                    bool json_mode)
{
    char root[4096], art[4400], active[64];
    bool use_registry = !cli_flag(a, "build-version");
    int rc;

    if (use_registry && (rc = cli_project_root(a, root, sizeof root)) != CLI_EXIT_OK)
        return rc; /* a --root that is not a directory */

    for (size_t c = 0; c < a->npositional; c++) {
        const char *name = a->positional[c];
        bool from_registry =
            use_registry && active_artifact(root, name, art, sizeof art, active, sizeof active);

        if (from_registry) {
            report(json_mode,
                   json_pack("{s:s, s:s, s:s, s:s}", "event", "active-version", "component", name,
                             "version", active, "artifact", art),
                   "%s: the registry of %s names %s active: loading %s", name, root, active, art);
            name = art;
        }
        for (int k = 0; k < instances; k++) {
            ms_instance_options io;
            ms_instance *inst = NULL;
            ms_instance_stats st;
            ms_status s;

            ms_instance_options_init(rt, &io);
            io.restart = restart;
            s = ms_runtime_load(rt, name, &io, &inst);
            if (s == MS_ERR_NOT_FOUND && strchr(name, '/') == NULL && strstr(name, ".so") == NULL) {
                cli_error("no component called '%s': %s. A component of this tree is "
                          "built by make.",
                          name, ms_last_error());
                return CLI_EXIT_FAILURE;
            }
            if (s != MS_OK) {
                cli_error("cannot load component '%s': %s", name, ms_last_error());
                return cli_exit_code(s) == CLI_EXIT_CONNECTION ? CLI_EXIT_CONNECTION
                                                               : CLI_EXIT_FAILURE;
            }
            if (ms_instance_get_stats(inst, &st) != MS_OK)
                memset(&st, 0, sizeof st);
            const ms_component_ops *ops = ms_instance_ops(inst);
            report(json_mode,
                   json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "started", "component",
                             ms_instance_component(inst), "version", ops->metadata.version,
                             "instance", ms_instance_id(inst), "state",
                             ms_instance_state_str(st.state)),
                   "started %s %s (instance %s, %s)", ms_instance_component(inst),
                   ops->metadata.version, ms_instance_id(inst), ms_instance_state_str(st.state));
            if (st.state != MS_INSTANCE_RUNNING)
                cli_error("%s instance %s is %s, not running%s%s; the supervisor restarts it "
                          "by its restart type",
                          ms_instance_component(inst), ms_instance_id(inst),
                          ms_instance_state_str(st.state), st.last_error[0] != '\0' ? ": " : "",
                          st.last_error);
        }
    }
    return CLI_EXIT_OK;
}

/* Wait for signals until SIGTERM or SIGINT. */
static int serve(ms_runtime *rt, const sigset_t *sigs, const char *config, bool json_mode)
{
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(sigs, &info);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            cli_error("waiting for signals failed: %s", strerror(errno));
            return CLI_EXIT_FAILURE;
        }
        if (sig != SIGHUP) {
            const char *name = sig == SIGINT ? "SIGINT" : "SIGTERM";
            report(json_mode, json_pack("{s:s, s:s}", "event", "stopping", "signal", name),
                   "stopping (%s): finishing the messages already received", name);
            return CLI_EXIT_OK;
        }
        if (config == NULL) {
            report(json_mode,
                   json_pack("{s:s, s:b, s:s}", "event", "reload", "ok", 0, "error",
                             "no config file (--config)"),
                   "SIGHUP: nothing to reload (no --config file)");
            continue;
        }
        ms_status s = ms_runtime_reload_config(rt);
        if (s == MS_OK)
            report(json_mode,
                   json_pack("{s:s, s:b, s:s}", "event", "reload", "ok", 1, "config", config),
                   "reloaded the config %s", config);
        else
            report(json_mode,
                   json_pack("{s:s, s:b, s:s, s:s, s:s}", "event", "reload", "ok", 0, "config",
                             config, "status", ms_status_name(s), "error", ms_last_error()),
                   "config reload of %s failed (%s): %s; the old config stays in force", config,
                   ms_status_name(s), ms_last_error());
    }
}

static int run(const cli_verb *verb, const cli_args *a)
{
    const bool json_mode = cli_flag(a, "json");
    const char *url = cli_opt(a, "nats");
    const char *config = cli_opt(a, "config");
    ms_runtime_options o;
    ms_runtime *rt = NULL;
    ms_restart_type restart = MS_RESTART_PERMANENT;
    char *path = NULL;
    sigset_t sigs, old;
    bool blocked = false;
    int instances = 1, workers = 0, interval = 0, shutdown_ms = 0, rc;
    ms_status s;
    json_t *names = NULL;

    ms_runtime_options_init(&o);
    if ((rc = cli_opt_int(a, "instances", 1, 1, 64, &instances)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "workers", 0, 0, 256, &workers)) != CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "health-interval", o.health_interval_ms, 0, 86400000, &interval)) !=
            CLI_EXIT_OK ||
        (rc = cli_opt_int(a, "shutdown-timeout", o.shutdown_timeout_ms, 1, 3600000,
                          &shutdown_ms)) != CLI_EXIT_OK)
        return rc;
    if (cli_opt(a, "restart") != NULL &&
        ms_restart_type_parse(cli_opt(a, "restart"), &restart) != MS_OK)
        return cli_usage_error(verb, "--restart '%s': expected permanent, transient or temporary",
                               cli_opt(a, "restart"));
    if (url == NULL || url[0] == '\0')
        url = getenv("NATS_URL");
    if (url == NULL || url[0] == '\0')
        url = MS_RUNTIME_DEFAULT_URL;
    if ((rc = default_component_path(cli_opt(a, "component-path"), &path)) != CLI_EXIT_OK)
        return rc;

    o.url = url;
    o.host_name = cli_opt(a, "name");
    o.workers = workers;
    o.config_path = config;
    o.data_root = cli_opt(a, "data-dir");
    o.component_path = path;
    o.health_interval_ms = interval;
    o.shutdown_timeout_ms = shutdown_ms;
    o.restart = restart;

    /* Before any thread exists, so that every thread inherits the mask. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    if (pthread_sigmask(SIG_BLOCK, &sigs, &old) != 0) {
        cli_error("cannot block signals");
        rc = CLI_EXIT_FAILURE;
        goto cleanup;
    }
    blocked = true;

    s = ms_runtime_create(&o, &rt);
    if (s != MS_OK) {
        rc = create_error(verb, url, config, s);
        goto cleanup;
    }
    rc = load_all(rt, a, instances, restart, json_mode);
    if (rc != CLI_EXIT_OK)
        goto cleanup;

    names = json_array();
    for (size_t c = 0; names != NULL && c < a->npositional; c++)
        json_array_append_new(names, json_string(a->positional[c]));
    {
        char list[1024] = "";
        size_t used = 0;
        for (size_t c = 0; c < a->npositional && used < sizeof list; c++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", c > 0 ? ", " : "",
                             a->positional[c]);
            if (w < 0)
                break;
            used += (size_t)w;
        }
        report(json_mode,
               json_pack("{s:s, s:O, s:i, s:s, s:I, s:i}", "event", "serving", "components", names,
                         "instances", instances, "url", url, "pid", (json_int_t)getpid(), "workers",
                         ms_runtime_workers(rt)),
               "serving %s (%d instance%s each) on %s, pid %ld, %d workers; SIGHUP reloads "
               "the config, SIGTERM or Ctrl-C stops",
               list, instances, instances == 1 ? "" : "s", url, (long)getpid(),
               ms_runtime_workers(rt));
    }

    rc = serve(rt, &sigs, config, json_mode);
    s = ms_runtime_shutdown(rt, shutdown_ms);
    if (s != MS_OK) {
        cli_error("the shutdown did not finish cleanly: %s", ms_last_error());
        if (rc == CLI_EXIT_OK)
            rc = CLI_EXIT_FAILURE;
    }
    ms_runtime_destroy(rt);
    rt = NULL;
    if (rc == CLI_EXIT_OK)
        report(json_mode, json_pack("{s:s}", "event", "stopped"), "stopped");

cleanup:
    json_decref(names);
    ms_runtime_destroy(rt);
    if (blocked)
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    free(path);
    return rc;
}

const cli_verb cli_verb_run = {
    .name = "run",
    .alias = NULL,
    .usage = "[options] COMPONENT...",
    .summary = "host components (names or .so paths) until SIGTERM",
    .description =
        "Loads each COMPONENT and serves it until SIGTERM or SIGINT, then shuts down\n"
        "gracefully (every request already received is answered) and exits 0. SIGHUP\n"
        "rereads the --config file and hands each instance whose config changed the new\n"
        "one. A COMPONENT is a path when it contains '/' or ends in .so, otherwise a name\n"
        "looked up as <dir>/<name>.so, <dir>/lib<name>.so, <dir>/<name>/<name>.so in the\n"
        "directories of $MAINSTACK_COMPONENT_PATH, then --component-path, then the\n"
        "build tree's (../components from the binary's directory) and the installed\n"
        "one (<prefix>/" MSTACK_INSTALL_COMPONENTS_REL ").\n"
        "A name with an active version in the project's registry (<root>/.mainstack/\n"
        "registry.db, when it exists; --root, $MAINSTACK_ROOT or found from the current\n"
        "directory) is loaded from that version's artifact instead, so a host started\n"
        "or restarted after a deployment serves the deployed version (a line says so);\n"
        "--build-version keeps the search path.\n"
        "\n"
        "Serves on --nats URL, else $NATS_URL, else in-process (inproc://mainstack: only\n"
        "this process sees the components). Prints one line per instance started, then\n"
        "one line starting with \"serving\" once everything is subscribed (scripts wait\n"
        "for it), one line per SIGHUP, and \"stopped\" at the end. Logs go to stderr\n"
        "(MAINSTACK_LOG sets the level).\n",
    .options = options,
    .min_positional = 1,
    .max_positional = 64,
    .examples = "  mstack run --nats nats://127.0.0.1:4222 user-service notification-service\n"
                "  mstack run --config stack.json --data-dir /var/lib/mainstack user-service\n"
                "  mstack run ./build/components/user-service.so --instances 3 --workers 4\n",
    .run = run,
};
