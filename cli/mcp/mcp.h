/*
 * mcp.h - what the files of `mstack mcp` (the Model Context Protocol server
 * over stdio) share.
 *
 * server.c reads stdin one line (one JSON-RPC message) at a time, checks the
 * envelope and hands each request to its method (methods.c: lifecycle,
 * discovery, logging; tools.c, resources.c, prompts.c: the features). Slow
 * methods run on a worker thread of their own, so that a long tool never
 * holds up `ping` or any other request; out.c serialises every output line
 * behind one mutex. project.c confines file access to the project root (and
 * renders AGENTS.md with the library's renderer), argcheck.c validates tool
 * arguments with the library's JSON Schema validator, and tool_*.c are the
 * tools, one table entry each (tools.c).
 *
 * Threading: the main thread reads stdin and runs the quick methods; each
 * slow request runs on its own thread (mcp_thread_start: joinable, joined
 * once it ended); NATS callbacks (escalation
 * watcher) run on the bus's threads. mcp_server fields are set before the
 * first thread starts, except the ones under `lock` (session state, lazily
 * opened bus and registry, subscriptions) and the writer's own mutex.
 * Names shared between these files start with mcp_ (part of the CLI, not of
 * the library).
 */
#ifndef MSTACK_MCP_H
#define MSTACK_MCP_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <mainstack/mainstack.h>

/* The longest input line accepted (bytes, without the newline). Longer lines
 * are discarded as they arrive (memory stays bounded) and answered with
 * -32600. */
#define MCP_MAX_LINE (4u * 1024u * 1024u)
/* Requests running on worker threads at once; more get -32603. */
#define MCP_MAX_INFLIGHT 64
/* The newest protocol revision and the session-based ones, newest first. */
#define MCP_VERSION_STATELESS "2026-07-28"
#define MCP_VERSION_LATEST_SESSION "2025-11-25"
/* The reserved _meta keys of 2026-07-28. */
#define MCP_META_PROTOCOL_VERSION "io.modelcontextprotocol/protocolVersion"
#define MCP_META_CLIENT_INFO "io.modelcontextprotocol/clientInfo"
#define MCP_META_CLIENT_CAPABILITIES "io.modelcontextprotocol/clientCapabilities"
#define MCP_META_LOG_LEVEL "io.modelcontextprotocol/logLevel"
#define MCP_META_SERVER_INFO "io.modelcontextprotocol/serverInfo"
#define MCP_META_SUBSCRIPTION_ID "io.modelcontextprotocol/subscriptionId"

/* JSON-RPC and MCP error codes. */
enum {
    MCP_PARSE_ERROR = -32700,
    MCP_INVALID_REQUEST = -32600,
    MCP_METHOD_NOT_FOUND = -32601,
    MCP_INVALID_PARAMS = -32602,
    MCP_INTERNAL_ERROR = -32603,
    MCP_RESOURCE_NOT_FOUND = -32002,          /* up to 2025-11-25 */
    MCP_MISSING_CLIENT_CAPABILITY = -32021,   /* 2026-07-28 */
    MCP_UNSUPPORTED_PROTOCOL_VERSION = -32022 /* 2026-07-28 */
};

/* MCP logging levels (RFC 5424 order), debug = 0 .. emergency = 7. */
enum {
    MCP_LOG_DEBUG = 0,
    MCP_LOG_INFO,
    MCP_LOG_NOTICE,
    MCP_LOG_WARNING,
    MCP_LOG_ERROR,
    MCP_LOG_CRITICAL,
    MCP_LOG_ALERT,
    MCP_LOG_EMERGENCY,
    MCP_LOG_OFF
};

/* A protocol error for the response: code, message (what was wrong and what
 * to do) and optional data (owned). */
typedef struct mcp_error {
    int code;
    char message[768];
    json_t *data;
} mcp_error;

typedef struct mcp_server mcp_server;
struct mcp_sub;

/* One request being handled. Owned by server.c; a method borrows it. */
typedef struct mcp_request {
    mcp_server *srv;
    json_t *id;               /* string or integer (owned) */
    char *method;             /* owned */
    json_t *params;           /* object (owned; {} when absent) */
    json_t *progress_token;   /* borrowed from params._meta, or NULL */
    bool stateless;           /* 2026-07-28: version and client in params._meta */
    char version[16];         /* the protocol revision this request speaks */
    char client[128];         /* the client's name (initialize or _meta clientInfo) */
    int log_level;            /* notifications/message threshold for this request */
    atomic_bool cancelled;    /* notifications/cancelled arrived */
    atomic_bool finished;     /* the response was sent (or suppressed) */
    double last_progress;     /* under srv->lock */
    bool keep_open;           /* subscriptions/listen: no response until cancelled */
    struct mcp_request *next; /* in-flight list, under srv->lock */
} mcp_request;

/* A method: fill *result (new reference) and return 0, or fill *err and
 * return its code. */
typedef int (*mcp_method_fn)(mcp_request *rq, json_t **result, mcp_error *err);

struct mcp_server {
    /* set at creation, read-only after */
    char root[4096];       /* realpath of the project root */
    const char *component; /* --component, or NULL: every component */
    const char *nats_url;  /* --nats, $NATS_URL or the default */
    int out_fd;            /* stdout */

    pthread_mutex_t out_lock; /* one output line at a time */
    bool out_broken;          /* under out_lock: stdout closed */

    pthread_mutex_t lock;
    pthread_cond_t idle;      /* signalled when a worker ends */
    size_t workers;           /* running worker threads */
    mcp_request *inflight;    /* worker requests not finished */
    bool initialize_seen;     /* initialize answered */
    bool initialized;         /* notifications/initialized received */
    char version[16];         /* negotiated session revision */
    char client[128];         /* clientInfo.name of initialize */
    int log_level;            /* logging/setLevel (session) */
    ms_bus *bus;              /* lazily connected */
    ms_registry *registry;    /* lazily opened */
    ms_subscription *esc_sub; /* mainstack.escalation.* watcher */
    struct mcp_sub *subs;     /* resource subscriptions */
    struct mcp_thread *ended; /* threads that ended, to be joined */
    atomic_bool stopping;     /* EOF or a signal: workers wind down */

    /* mcp_tools_init, before the first thread; read-only after */
    ms_schema **in_schemas;  /* compiled inputSchema of each tool (as listed) */
    ms_schema **out_schemas; /* compiled outputSchema of each tool */
};

/* --- server.c --------------------------------------------------------------- */

/* Run the server on stdin/stdout until EOF or SIGTERM/SIGINT. root must
 * exist. Returns the process exit code. */
int mcp_server_run(const char *root, const char *component, const char *nats_url);

/* The bus (connected on first use) or NULL with *err filled (what to do). */
ms_bus *mcp_bus(mcp_server *srv, mcp_error *err);
/* The registry (opened on first use) or NULL with *err filled. */
ms_registry *mcp_registry(mcp_server *srv, mcp_error *err);
/* Run fn(arg) on a new thread counted in srv->workers (shutdown waits for
 * it) and joined after it ended. False (nothing started) when the server is
 * stopping or the thread cannot be created. Any thread. */
bool mcp_thread_start(mcp_server *srv, void *(*fn)(void *), void *arg);

/* --- out.c ------------------------------------------------------------------ */

/* Write one JSON-RPC message as one line (takes no reference). Returns false
 * when stdout is gone. */
bool mcp_send(mcp_server *srv, const json_t *msg);
void mcp_send_result(mcp_server *srv, const json_t *id, json_t *result); /* takes result */
/* id NULL -> null. Takes err->data. */
void mcp_send_error(mcp_server *srv, const json_t *id, mcp_error *err);
void mcp_send_notification(mcp_server *srv, const char *method, json_t *params); /* takes */
/* Fill err; returns code. */
int mcp_fail(mcp_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* notifications/progress for rq, only when the client gave a progressToken,
 * the request is still open and progress is larger than the last sent.
 * total <= 0: unknown. Thread-safe. */
void mcp_progress(mcp_request *rq, double progress, double total, const char *message);
/* True when the client cancelled rq (or the server is stopping). */
bool mcp_cancelled(const mcp_request *rq);
/* A log line: always on stderr; as notifications/message when level reaches
 * the threshold of rq (NULL: the session's). */
void mcp_log(mcp_server *srv, mcp_request *rq, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int mcp_log_level_parse(const char *name); /* -1: unknown */

/* --- methods.c -------------------------------------------------------------- */

/* The method named name, or NULL. *threaded: run on a worker thread;
 * *before_init: allowed before the session is initialised. */
mcp_method_fn mcp_method_find(const char *name, bool *threaded, bool *before_init);
/* Versions this server speaks, newest first, NULL-terminated. */
extern const char *const mcp_versions[];
/* The server's capabilities object (new reference). */
json_t *mcp_capabilities(void);
/* Add the 2026-07-28 result fields (resultType; cache hints when ttl_ms >= 0)
 * to a result of a stateless request. */
void mcp_decorate(const mcp_request *rq, json_t *result, long ttl_ms, const char *scope);
/* What every 2026-07-28 result carries: resultType ("complete" unless set)
 * and _meta["io.modelcontextprotocol/serverInfo"] (unless set). */
void mcp_stamp_result(json_t *result);
/* The server's Implementation {name, title, version} (new reference). */
json_t *mcp_server_info(void);
/* Compare revisions "YYYY-MM-DD": <0, 0, >0. */
int mcp_version_cmp(const char *a, const char *b);

/* --- tools.c ---------------------------------------------------------------- */

/* A tool's outcome: structured result (new reference) or an error text that
 * says what to do (isError result). */
typedef struct mcp_tool_out {
    json_t *structured;
    char error[1024];
    bool failed;
} mcp_tool_out;

/* A tool: name, description, schemas (JSON text), honest annotations, and
 * its function. The function gets validated arguments; it fills *out, or
 * returns a protocol error code with *err filled (rare: errors of the
 * call itself). */
typedef struct mcp_tool {
    const char *name;
    const char *title;
    const char *description;
    const char *input_schema;
    const char *output_schema;
    bool read_only, destructive, idempotent, open_world;
    bool component_arg; /* takes "component": fixed by --component */
    int (*run)(mcp_request *rq, const json_t *args, mcp_tool_out *out, mcp_error *err);
} mcp_tool;

/* Compile every tool's inputSchema (as tools/list shows it under the
 * server's scope) and outputSchema into srv. 0, or -1 with msg filled (a
 * schema the validator refuses: a bug of this server). */
int mcp_tools_init(mcp_server *srv, char *msg, size_t cap);
void mcp_tools_free(mcp_server *srv);
/* The tool table: NULL past the end. */
const mcp_tool *mcp_tool_at(size_t i);
int mcp_tools_list(mcp_request *rq, json_t **result, mcp_error *err);
int mcp_tools_call(mcp_request *rq, json_t **result, mcp_error *err);
/* Tool failure helper: sets out->failed and the text; returns 0. */
int mcp_tool_fail(mcp_tool_out *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The component a tool acts on: args.component, or the --component scope.
 * NULL when neither (fine for tools where it is optional). */
const char *mcp_tool_component(const mcp_request *rq, const json_t *args);
/* Record a state-changing call in the registry's audit log. */
void mcp_audit(mcp_request *rq, const char *action, const char *component, const char *outcome,
               const json_t *detail);

/* The tools (tool_*.c). */
extern const mcp_tool mcp_tool_list_components, mcp_tool_get_context;
extern const mcp_tool mcp_tool_publish_message, mcp_tool_request, mcp_tool_health,
    mcp_tool_services;
extern const mcp_tool mcp_tool_list_decisions, mcp_tool_list_escalations,
    mcp_tool_resolve_escalation, mcp_tool_list_runs;
extern const mcp_tool mcp_tool_check_context, mcp_tool_evaluate_message;
extern const mcp_tool mcp_tool_list_versions, mcp_tool_history, mcp_tool_deploy, mcp_tool_rollback;

/* --- argcheck.c ------------------------------------------------------------- */

/* Compile a schema given as JSON text; what ("inputSchema") labels errors.
 * NULL with msg filled when the text is not JSON or the validator refuses it
 * (a keyword docs/schema.md does not list, ...). */
ms_schema *mcp_schema_compile(const char *tool, const char *what, const char *text, char *msg,
                              size_t cap);
/* Validate tool arguments against a compiled inputSchema (ms_schema_validate).
 * False when they break it: msg says where (the argument's JSON pointer) and
 * what, "/limit: expected integer, got string; ..."; *errors (new reference,
 * or NULL) lists them as [{"pointer", "message", "schemaPath"}]. */
bool mcp_args_check(const ms_schema *schema, const json_t *instance, char *msg, size_t cap,
                    json_t **errors);

/* --- project.c -------------------------------------------------------------- */

/* A component name: [a-z0-9-], 1..64. */
bool mcp_valid_name(const char *name);
/* True when component exists in the project (and is inside the scope). */
bool mcp_component_visible(const mcp_server *srv, const char *name);
/* Sorted names of the visible components (new reference: array of strings). */
json_t *mcp_components(const mcp_server *srv);
/* Read <root>/<rel> (at most max bytes), refusing paths that resolve outside
 * the root (symlinks included). *data malloc'd. 0, or an errno-like code with
 * msg filled: ENOENT (missing), EACCES (outside the root), EFBIG, EIO. */
int mcp_read_file(const mcp_server *srv, const char *rel, size_t max, char **data, size_t *len,
                  char *msg, size_t cap);
/* Read and parse a JSON file of the project. NULL with msg filled. */
json_t *mcp_read_json(const mcp_server *srv, const char *rel, char *msg, size_t cap, int *errnum);
/* The directory of a visible component, <root>/components/<name>, after
 * checking that its context files (context/context.json,
 * context/agent-config.json, and interface.json when present) resolve inside
 * the root. 0, or ENOENT (a context file is missing) / EACCES (one lands
 * outside the root) with msg filled. */
int mcp_component_dir(const mcp_server *srv, const char *name, char *dir, size_t dcap, char *msg,
                      size_t cap);
/* The components with a context/ directory (sorted names, new reference)
 * whose context files all resolve inside the root, and those skipped because
 * one does not ([{"component", "reason"}], only within the scope). 0, or -1
 * (out of memory). */
int mcp_context_components(const mcp_server *srv, json_t **names, json_t **skipped);
/* AGENTS.md of a component: ms_context_render_dir on its directory, so the
 * bytes are those `mstack context render` writes. *md malloc'd. 0, ENOENT,
 * EACCES (as mcp_component_dir), or EINVAL when the files do not load (msg
 * names the file and what is wrong). */
int mcp_agents_md(const mcp_server *srv, const char *name, char **md, char *msg, size_t cap);

/* --- resources.c / prompts.c ----------------------------------------------- */

int mcp_resources_list(mcp_request *rq, json_t **result, mcp_error *err);
int mcp_resources_templates(mcp_request *rq, json_t **result, mcp_error *err);
int mcp_resources_read(mcp_request *rq, json_t **result, mcp_error *err);
int mcp_resources_subscribe(mcp_request *rq, json_t **result, mcp_error *err);
int mcp_resources_unsubscribe(mcp_request *rq, json_t **result, mcp_error *err);
int mcp_subscriptions_listen(mcp_request *rq, json_t **result, mcp_error *err);
/* Drop the subscriptions of a listen request (cancelled or ended). */
void mcp_subs_drop_listen(mcp_server *srv, const json_t *listen_id);
/* The same with srv->lock held by the caller. */
void mcp_subs_drop_listen_locked(mcp_server *srv, const json_t *listen_id);
void mcp_subs_free(mcp_server *srv);
int mcp_prompts_list(mcp_request *rq, json_t **result, mcp_error *err);
int mcp_prompts_get(mcp_request *rq, json_t **result, mcp_error *err);

#endif
