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
 * ms_deploy_promote switches every running host of a component to another
 * version over the bus, all or nothing: each host prepares the candidate
 * beside the active version, and only when every host has prepared are
 * they all told to switch; a host that cannot prepare (or does not answer
 * in time) gets every host aborted, and the active version never stopped
 * serving. ms_deploy_rollback is the same path back to the previous
 * version. The protocol on mainstack.deploy.<component> is in
 * docs/deploy.md.
 *
 * Threading: the functions are thread-safe as far as the registry is (one
 * ms_registry per thread, or serialised calls). Ownership: arguments are
 * borrowed; the info struct is the caller's.
 */
#ifndef MAINSTACK_DEPLOY_H
#define MAINSTACK_DEPLOY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "mainstack/bus.h"
#include "mainstack/registry.h"
#include "mainstack/runtime.h"
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

/* <root>/.mainstack/artifacts/<component>/<version>/<component>.so into
 * out. MS_ERR_INVALID_ARG (an argument missing), MS_ERR_TOO_LARGE (cap). */
ms_status ms_deploy_artifact_path(const char *root, const char *component, const char *version,
                                  char *out, size_t cap);

/* --- promotion across hosts ---------------------------------------------- */

#define MS_PROMOTE_MAX_HOSTS 64

typedef struct ms_promote_options {
    /* How long $SRV.PING.<component> replies are gathered to find the
     * instances (every one must be covered by a host's prepare). Default
     * 300 ms. */
    int discover_ms;
    int prepare_timeout_ms; /* every host's prepare answer; default 15000 */
    int switch_timeout_ms;  /* every host's switch answer; default 30000 */
    int drain_timeout_ms;   /* the old version's drain on each host; 0: host default */
    /* A prepared host aborts by itself when neither switch nor abort came
     * within this time (a coordinator that died); default 60000. */
    int hold_ms;
    /* At least this many hosts must prepare; 0: those covering the
     * instances discovery found. */
    size_t expected_hosts;
    /* The active version's artifact: hosts that already switched are
     * swapped back to it when another host fails its switch. NULL: they are
     * left on the candidate and the report says the hosts are mixed. */
    const char *previous_artifact;
    const char *deployment_id; /* NULL: a new UUIDv7 */
    /* Progress, called on the calling thread (may be NULL): step
     * "prepared" (host NULL) once every host prepared, before the first
     * switch; "switched" (host: its id) after each host's switch. The switch
     * goes host by host (each switch request names its host), so a caller
     * can record, or a test can stop the process, between two hosts. Before
     * each call the caller's report (out) is filled with what is known so
     * far (the hosts prepared, those switched). The callback must not call
     * ms_deploy_* on the same bus. */
    void (*on_step)(void *ud, const char *step, const char *host);
    void *on_step_ud;
} ms_promote_options;

void ms_promote_options_init(ms_promote_options *o);

/* One host as the promotion saw it. */
typedef struct ms_promote_host {
    char host[64];  /* the runtime's host id */
    char name[128]; /* its host_name */
    size_t instances;
    bool prepared;     /* the candidate was started beside the active version */
    bool switched;     /* the candidate now serves */
    bool aborted;      /* its prepared candidate was removed */
    bool swapped_back; /* switched, then back to the previous version */
    bool noop;         /* it already ran the target version */
    char from_version[64];
    char to_version[64];
    char active_version[64]; /* serving after the last answer */
    ms_swap_report report;   /* of its switch (or its failed prepare) */
    char error[640];         /* why it failed; "" when it did not */
} ms_promote_host;

typedef struct ms_promote_report {
    char deployment_id[128];
    char component[MS_COMPONENT_NAME_MAX + 1];
    char from_version[64];
    char to_version[64];
    bool ok;                /* every host switched */
    bool rolled_back;       /* aborted everywhere: every host still on from_version */
    bool mixed;             /* some hosts switched and others not (see hosts[]) */
    size_t instances_found; /* by discovery */
    size_t nhosts;
    ms_promote_host hosts[MS_PROMOTE_MAX_HOSTS];
    int64_t discover_ms, prepare_ms, switch_ms;
    int64_t total_ms;      /* from the call until every host serves the target */
    char failed_host[128]; /* the first host that failed ("" when none) */
    char error[1024];      /* "" on success */
} ms_promote_report;

/*
 * Promote component to version on every host that runs it. artifact_path:
 * the candidate's shared object as the hosts can open it (usually
 * ms_deploy_artifact_path under a shared root). Phases: discover the
 * instances ($SRV.PING.<component>), prepare on every host (each answers
 * with the instances it runs), then switch on every host; acknowledgements
 * from each. On a failed or missing prepare every host is aborted and the
 * active version keeps serving (out->rolled_back). o may be NULL
 * (defaults); out (optional) is filled in every case.
 * Returns MS_OK; MS_ERR_INVALID_ARG; MS_ERR_NOT_FOUND (no instance
 * answered discovery); MS_ERR_STATE (a host refused: out->failed_host and
 * out->error say which and why); MS_ERR_TIMEOUT (a host did not answer in
 * time, named); the bus statuses.
 */
ms_status ms_deploy_promote(ms_bus *bus, const char *component, const char *version,
                            const char *artifact_path, const ms_promote_options *o,
                            ms_promote_report *out);

/*
 * Roll back: the same zero-loss path to the previous version, with no test
 * run (the caller knows which version that is: the registry's "previous").
 * Equivalent to ms_deploy_promote(bus, component, previous_version,
 * previous_artifact, o, out).
 */
ms_status ms_deploy_rollback(ms_bus *bus, const char *component, const char *previous_version,
                             const char *previous_artifact, const ms_promote_options *o,
                             ms_promote_report *out);

/*
 * Abort deployment_id (the deployment_id a promotion was given) on every
 * host of component that prepared it and has not switched: the candidate
 * is removed at once instead of at its hold time. Answers are gathered for
 * timeout_ms (0: 1000). *aborted (optional): how many hosts had it
 * prepared and removed it; *answered (optional): how many hosts of the
 * component answered. MS_OK; MS_ERR_INVALID_ARG; the bus statuses.
 */
ms_status ms_deploy_abort(ms_bus *bus, const char *component, const char *deployment_id,
                          int timeout_ms, size_t *aborted, size_t *answered);

/* --- the watch window after a promotion ----------------------------------- */

/* When a promoted version counts as degraded (docs/deploy.md, "Watch"). */
typedef struct ms_watch_limits {
    /* Degraded when the new version's error rate exceeds the previous
     * version's by more than this many percentage points; default 5. */
    double max_error_rate_increase;
    /* ...and only once the new version handled at least this many requests
     * in the window (fewer say nothing); default 20. */
    uint64_t min_requests;
} ms_watch_limits;

void ms_watch_limits_init(ms_watch_limits *l);

typedef struct ms_watch_verdict {
    bool degraded;
    char check[16];             /* "health", "error_rate" or "" (not degraded) */
    double value;               /* error_rate: the new rate in %; health: unhealthy count */
    double threshold;           /* error_rate: previous rate + increase; health: 0 */
    double previous_rate;       /* the previous version's error rate in % */
    uint64_t previous_requests; /* its num_requests, summed over its instances */
    uint64_t previous_errors;   /* its num_errors */
    uint64_t requests, errors;  /* the new version's, in the window */
    char detail[256];           /* one sentence; the unhealthy instance when health */
} ms_watch_verdict;

/*
 * The decision of the watch window, pure (no I/O): previous, start and now
 * are JSON arrays of $SRV.STATS responses (io.nats.micro.v1.stats_response
 * objects); only those whose "name" is component count, each summed over
 * its endpoints' num_requests and num_errors. previous: the instances of
 * the version that was active, sampled just before the switch (its
 * cumulative rate is the baseline). start: sampled just after the switch;
 * now: the latest sample. The new version's counts are now minus start per
 * instance id (an id absent from start, or whose counters went backwards
 * after a restart, counts in full). health (may be NULL): an array of
 * instance statuses as mainstack.health.<component>.get answers; any of
 * component whose state is not running or whose status is neither healthy
 * nor degraded makes the verdict degraded on check "health", which is
 * judged before the error rate. l may be NULL (defaults).
 * Returns MS_OK with *out filled; MS_ERR_INVALID_ARG (component or out
 * NULL, or an argument that is not an array).
 */
ms_status ms_watch_judge(const char *component, const json_t *previous, const json_t *start,
                         const json_t *now, const json_t *health, const ms_watch_limits *l,
                         ms_watch_verdict *out);

/* The sha256 of a file's content as 64 lowercase hex digits. MS_ERR_IO,
 * MS_ERR_INVALID_ARG. */
ms_status ms_sha256_file(const char *path, char out[65]);
/* The sha256 of len bytes. */
void ms_sha256_hex(const void *data, size_t len, char out[65]);

#ifdef __cplusplus
}
#endif
#endif
