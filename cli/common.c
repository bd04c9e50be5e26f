/*
 * common.c - what several mstack verbs do the same way: report errors with
 * what to do next, map statuses to exit codes, connect a client bus,
 * read and check a JSON payload, build a message from the metadata
 * options, and print JSON, durations and tables. Everything here is
 * printing and argument handling around public mainstack calls.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

#include "cli.h"

#define MAX_STDIN_BYTES (64u * 1024u * 1024u)

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("mstack: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

int cli_usage_error(const cli_verb *verb, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "mstack %s: ", verb->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'mstack %s --help'.\n", verb->name);
    return CLI_EXIT_USAGE;
}

int cli_check_name(const cli_verb *verb, const char *what, const char *name, bool component)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return cli_usage_error(verb, "%s '%s': expected 1 to 64 characters", what, name);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  (!component && ((c >= 'A' && c <= 'Z') || c == '_'));
        if (!ok)
            return cli_usage_error(
                verb, "%s '%s': character '%c' at %zu is not allowed (%s)", what, name, c, i + 1,
                component ? "a component name is [a-z0-9-]" : "a service name is [A-Za-z0-9_-]");
    }
    return CLI_EXIT_OK;
}

int cli_exit_code(ms_status s)
{
    switch (s) {
    case MS_OK:
        return CLI_EXIT_OK;
    case MS_ERR_TIMEOUT:
        return CLI_EXIT_TIMEOUT;
    case MS_ERR_NO_RESPONDERS:
        return CLI_EXIT_NO_RESPONDERS;
    case MS_ERR_CONNECTION:
    case MS_ERR_AUTH:
        return CLI_EXIT_CONNECTION;
    default:
        return CLI_EXIT_FAILURE;
    }
}

const char *cli_client_url(const cli_args *a)
{
    const char *url = cli_opt(a, "nats");
    if (url == NULL || url[0] == '\0')
        url = getenv("NATS_URL");
    if (url == NULL || url[0] == '\0')
        url = CLI_DEFAULT_NATS_URL;
    return url;
}

int cli_connection_error(const char *url, ms_status s)
{
    const char *detail = ms_last_error();
    if (s == MS_ERR_CONNECTION) {
        cli_error("no NATS server at %s: start one (nats-server -a 127.0.0.1 -p 4222), "
                  "or pass --nats URL / set NATS_URL to the server `mstack run` uses (%s)",
                  url, detail);
        return CLI_EXIT_CONNECTION;
    }
    if (s == MS_ERR_AUTH) {
        cli_error("the NATS server at %s refused the credentials: put user:password@ or a "
                  "token in the URL (%s)",
                  url, detail);
        return CLI_EXIT_CONNECTION;
    }
    if (s == MS_ERR_INVALID_ARG) {
        cli_error("bad NATS URL '%s': expected nats://host:port (%s)", url, detail);
        return CLI_EXIT_USAGE;
    }
    cli_error("cannot connect to %s: %s", url, detail);
    return cli_exit_code(s);
}

int cli_connect(const cli_args *a, ms_bus **out)
{
    return cli_connect_url(cli_client_url(a), a->verb->name, out);
}

int cli_connect_url(const char *url, const char *verb, ms_bus **out)
{
    ms_bus_options o;
    ms_status s;

    *out = NULL;
    if (strncmp(url, "inproc://", 9) == 0) {
        cli_error("%s is an in-process bus, private to one process: mstack %s needs the "
                  "NATS server the components run on (--nats nats://host:port)",
                  url, verb);
        return CLI_EXIT_USAGE;
    }
    ms_bus_options_init(&o);
    o.url = url;
    o.name = "mstack-cli";
    o.connect_timeout_ms = 2000;
    o.max_reconnect = 0;
    s = ms_bus_connect(&o, out);
    if (s != MS_OK)
        return cli_connection_error(url, s);
    return CLI_EXIT_OK;
}

/* Read all of stdin into a malloc'd buffer. */
static int read_stdin(char **data, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);

    if (buf == NULL)
        goto nomem;
    for (;;) {
        size_t got;
        if (n == cap) {
            char *nb;
            if (cap >= MAX_STDIN_BYTES) {
                free(buf);
                cli_error("stdin: more than %u bytes", MAX_STDIN_BYTES);
                return CLI_EXIT_FAILURE;
            }
            nb = realloc(buf, cap * 2 + 1);
            if (nb == NULL)
                goto nomem;
            buf = nb;
            cap *= 2;
        }
        got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0) {
            if (ferror(stdin)) {
                free(buf);
                cli_error("reading stdin failed");
                return CLI_EXIT_FAILURE;
            }
            break;
        }
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return CLI_EXIT_OK;
nomem:
    free(buf);
    cli_error("out of memory reading stdin");
    return CLI_EXIT_FAILURE;
}

int cli_read_payload(const cli_verb *verb, const char *arg, bool raw, char **data, size_t *len)
{
    int rc;
    json_t *v = NULL;
    const char *name = "argument";

    *data = NULL;
    *len = 0;
    if (arg == NULL) {
        *data = calloc(1, 1);
        if (*data == NULL) {
            cli_error("out of memory");
            return CLI_EXIT_FAILURE;
        }
        return CLI_EXIT_OK;
    }
    if (strcmp(arg, "-") == 0) {
        name = "stdin";
        rc = read_stdin(data, len);
        if (rc != CLI_EXIT_OK)
            return rc;
    } else {
        *len = strlen(arg);
        *data = strdup(arg);
        if (*data == NULL) {
            cli_error("out of memory");
            return CLI_EXIT_FAILURE;
        }
    }
    if (raw || *len == 0)
        return CLI_EXIT_OK;
    if (ms_json_parse(*data, *len, name, &v) != MS_OK) {
        rc = cli_usage_error(verb,
                             "the payload is not valid JSON: %s\n"
                             "  Quote it for the shell, as in '{\"name\": \"Ada\"}', "
                             "or pass --raw to send it as it is.",
                             ms_last_error());
        free(*data);
        *data = NULL;
        *len = 0;
        return rc;
    }
    json_decref(v);
    return CLI_EXIT_OK;
}

/* Apply the metadata options of a (those the verb declares) to m. */
static int apply_options(const cli_args *a, ms_message *m, const char *default_type)
{
    const cli_verb *verb = a->verb;
    const char *type = default_type, *source = "mstack", *id = NULL;
    char idbuf[MS_ID_LEN + 1], ts[MS_TIMESTAMP_LEN + 1], tp[MS_TRACEPARENT_LEN + 1];

    if (cli_has_option(verb, "type") && cli_opt(a, "type") != NULL)
        type = cli_opt(a, "type");
    if (cli_has_option(verb, "source") && cli_opt(a, "source") != NULL)
        source = cli_opt(a, "source");
    if (cli_has_option(verb, "id") && cli_opt(a, "id") != NULL)
        id = cli_opt(a, "id");
    if (id == NULL) {
        ms_id_new(idbuf);
        id = idbuf;
    }
    ms_timestamp_now(ts);
    ms_traceparent_new(tp);
    if (ms_message_set_id(m, id) != MS_OK)
        return cli_usage_error(verb, "--id '%s': %s", id, ms_last_error());
    if (ms_message_set_timestamp(m, ts) != MS_OK || ms_message_set_traceparent(m, tp) != MS_OK) {
        cli_error("%s", ms_last_error());
        return CLI_EXIT_FAILURE;
    }
    if (source[0] != '\0' && ms_message_set_source(m, source) != MS_OK)
        return cli_usage_error(verb, "--source '%s': %s", source, ms_last_error());
    if (type != NULL && type[0] != '\0' && ms_message_set_type_name(m, type) != MS_OK)
        return cli_usage_error(verb, "--type '%s': %s", type, ms_last_error());
    if (cli_has_option(verb, "header")) {
        const char *const *hv = NULL;
        size_t nh = cli_opt_all(a, "header", &hv);
        for (size_t i = 0; i < nh; i++) {
            const char *eq = strchr(hv[i], '=');
            char key[256];
            if (eq == NULL || eq == hv[i] || (size_t)(eq - hv[i]) >= sizeof key)
                return cli_usage_error(verb, "--header '%s': expected KEY=VALUE", hv[i]);
            memcpy(key, hv[i], (size_t)(eq - hv[i]));
            key[eq - hv[i]] = '\0';
            if (ms_message_add_header(m, key, eq + 1) != MS_OK)
                return cli_usage_error(verb, "--header '%s': %s", hv[i], ms_last_error());
        }
    }
    return CLI_EXIT_OK;
}

int cli_build_message(const cli_args *a, const char *subject, const char *data, size_t len,
                      const char *default_type, ms_message **out)
{
    ms_message *m = NULL;
    ms_status s = ms_message_create(subject, data, len, &m);
    int rc;

    *out = NULL;
    if (s == MS_ERR_INVALID_SUBJECT || s == MS_ERR_INVALID_ARG)
        return cli_usage_error(a->verb, "'%s' is not a subject to send to: %s", subject,
                               ms_last_error());
    if (s != MS_OK) {
        cli_error("%s", ms_last_error());
        return CLI_EXIT_FAILURE;
    }
    rc = apply_options(a, m, default_type);
    if (rc != CLI_EXIT_OK) {
        ms_message_unref(m);
        return rc;
    }
    *out = m;
    return CLI_EXIT_OK;
}

void cli_print_json(const json_t *v, bool pretty)
{
    char *text = json_dumps(v, (pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_ENCODE_ANY);
    if (text == NULL) {
        cli_error("cannot print the JSON value (out of memory)");
        return;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
}

void cli_print_payload(const void *data, size_t len, bool json_mode)
{
    json_t *v = NULL;

    if (len == 0) {
        if (json_mode)
            fputs("null\n", stdout);
        return;
    }
    if (ms_json_parse(data, len, "reply", &v) == MS_OK) {
        cli_print_json(v, !json_mode);
        json_decref(v);
        return;
    }
    if (json_mode) {
        json_t *str = json_stringn(data, len);
        if (str != NULL) {
            cli_print_json(str, false);
            json_decref(str);
            return;
        }
    }
    fwrite(data, 1, len, stdout);
    if (((const char *)data)[len - 1] != '\n')
        fputc('\n', stdout);
}

void cli_format_ns(double ns, char *out, size_t cap)
{
    if (ns < 1e3)
        snprintf(out, cap, "%.0fns", ns);
    else if (ns < 1e6)
        snprintf(out, cap, "%.1fus", ns / 1e3);
    else if (ns < 1e9)
        snprintf(out, cap, "%.2fms", ns / 1e6);
    else
        snprintf(out, cap, "%.2fs", ns / 1e9);
}

/* --- tables ------------------------------------------------------------- */

int cli_table_init(cli_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof *t);
    t->ncols = ncols;
    t->cap = 8;
    t->cells = calloc(t->cap * ncols, sizeof *t->cells);
    if (t->cells == NULL)
        goto nomem;
    for (size_t c = 0; c < ncols; c++) {
        t->cells[c] = strdup(headers[c]);
        if (t->cells[c] == NULL)
            goto nomem;
    }
    return CLI_EXIT_OK;
nomem:
    cli_table_reset(t);
    cli_error("out of memory");
    return CLI_EXIT_FAILURE;
}

int cli_table_add(cli_table *t, const char *const *cells)
{
    size_t row = t->nrows + 1;
    if (row >= t->cap) {
        char **nc = realloc(t->cells, t->cap * 2 * t->ncols * sizeof *nc);
        if (nc == NULL)
            goto nomem;
        memset(nc + t->cap * t->ncols, 0, t->cap * t->ncols * sizeof *nc);
        t->cells = nc;
        t->cap *= 2;
    }
    for (size_t c = 0; c < t->ncols; c++) {
        const char *v = cells[c] != NULL && cells[c][0] != '\0' ? cells[c] : "-";
        t->cells[row * t->ncols + c] = strdup(v);
        if (t->cells[row * t->ncols + c] == NULL)
            goto nomem;
    }
    t->nrows++;
    return CLI_EXIT_OK;
nomem:
    cli_error("out of memory");
    return CLI_EXIT_FAILURE;
}

static int row_cmp(const cli_table *t, size_t r1, size_t r2, size_t col, size_t col2)
{
    int d = strcmp(t->cells[r1 * t->ncols + col], t->cells[r2 * t->ncols + col]);
    if (d != 0)
        return d;
    return strcmp(t->cells[r1 * t->ncols + col2], t->cells[r2 * t->ncols + col2]);
}

void cli_table_sort(cli_table *t, size_t col, size_t col2)
{
    /* Insertion sort of the data rows (1..nrows): tables are small. */
    for (size_t i = 2; i <= t->nrows; i++) {
        for (size_t j = i; j > 1 && row_cmp(t, j - 1, j, col, col2) > 0; j--) {
            for (size_t c = 0; c < t->ncols; c++) {
                char *tmp = t->cells[j * t->ncols + c];
                t->cells[j * t->ncols + c] = t->cells[(j - 1) * t->ncols + c];
                t->cells[(j - 1) * t->ncols + c] = tmp;
            }
        }
    }
}

void cli_table_print(const cli_table *t, FILE *f)
{
    size_t width[32] = {0};
    size_t ncols = t->ncols < 32 ? t->ncols : 32;

    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            size_t w = strlen(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (size_t r = 0; r <= t->nrows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            const char *v = t->cells[r * t->ncols + c];
            if (c + 1 == ncols)
                fprintf(f, "%s\n", v);
            else
                fprintf(f, "%-*s  ", (int)width[c], v);
        }
    }
}

void cli_table_reset(cli_table *t)
{
    if (t->cells != NULL) {
        for (size_t i = 0; i < t->cap * t->ncols; i++)
            free(t->cells[i]);
        free(t->cells);
    }
    memset(t, 0, sizeof *t);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cli_project_root(const cli_args *a, char *out, size_t cap)
{
    const char *given = cli_has_option(a->verb, "root") ? cli_opt(a, "root") : NULL;
    char cwd[4096], probe[4200];

    if (given == NULL || given[0] == '\0')
        given = getenv("MAINSTACK_ROOT");
    if (given != NULL && given[0] != '\0') {
        if (!is_dir(given) || realpath(given, cwd) == NULL)
            return cli_usage_error(a->verb, "--root %s: not a directory", given);
        snprintf(out, cap, "%s", cwd);
        return CLI_EXIT_OK;
    }
    if (getcwd(cwd, sizeof cwd) == NULL) {
        snprintf(out, cap, ".");
        return CLI_EXIT_OK;
    }
    for (;;) {
        char *slash;

        snprintf(probe, sizeof probe, "%s/components", cwd);
        if (is_dir(probe)) {
            snprintf(out, cap, "%s", cwd);
            return CLI_EXIT_OK;
        }
        snprintf(probe, sizeof probe, "%s/.mainstack", cwd);
        if (is_dir(probe)) {
            snprintf(out, cap, "%s", cwd);
            return CLI_EXIT_OK;
        }
        slash = strrchr(cwd, '/');
        if (slash == NULL || slash == cwd)
            break;
        *slash = '\0';
    }
    if (getcwd(out, cap) == NULL)
        snprintf(out, cap, ".");
    return CLI_EXIT_OK;
}

void cli_component_dir(const char *root, const char *arg, char *out, size_t cap)
{
    char probe[4200];

    snprintf(probe, sizeof probe, "%s/context", arg);
    if (strchr(arg, '/') != NULL || is_dir(probe))
        snprintf(out, cap, "%s", arg);
    else
        snprintf(out, cap, "%s/components/%s", root, arg);
}

void cli_self_exe(char *out, size_t cap)
{
    ssize_t n = readlink("/proc/self/exe", out, cap - 1);

    if (n <= 0)
        snprintf(out, cap, "mstack");
    else
        out[n] = '\0';
}
