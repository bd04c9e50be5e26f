/*
 * test_mcp_sdk.c - `mstack mcp` driven by the official MCP TypeScript SDK
 * client (@modelcontextprotocol/sdk, pinned in tests/mcp_sdk/package-lock.json
 * and installed with `npm ci` into the build tree by npm_install.sh).
 *
 * The project root is a temporary copy of the repository's schemas and
 * components (their context files, interface.json and src/interface.h),
 * plus "probe", a component whose pipeline is one change step (sleep 1); the
 * registry holds a decision and an open escalation of user-service (the SDK
 * client rejects it) and a resumable escalation of probe (the client
 * approves it: the work resumes, with progress). A real nats-server carries
 * an echo responder for the request tool. sdk_check.mjs connects over
 * stdio, lists and calls every tool (the SDK validates structuredContent
 * against each outputSchema), reads every resource, gets every prompt; its
 * exit status decides. Skipped where node, npm or the registry are missing,
 * except with CI=true, where that fails.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "ms_test.h"
#include "nats_fixture.h"

static void echo(ms_bus *bus, ms_subscription *sub, const ms_message *msg, void *closure)
{
    (void)sub;
    (void)closure;
    (void)ms_bus_respond(bus, msg, ms_message_data(msg), ms_message_len(msg));
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    assert_true(rc != -1 && WIFEXITED(rc));
    return WEXITSTATUS(rc);
}

static void sdk_client_uses_every_feature(void **state)
{
    char tmpl[] = "/tmp/ms-mcp-sdk-XXXXXX";
    char cmd[PATH_MAX * 4], *path = NULL;
    ms_nats_server *nats = NULL;
    ms_registry *reg = NULL;
    ms_bus *bus = NULL;
    ms_registry_decision d = {.component = "user-service",
                              .decision = "escalate",
                              .rule = "sdk",
                              .reason = "a person decides"};
    int64_t did = 0, eid = 0, eid2 = 0;
    json_t *detail;
    int rc;
    (void)state;

    snprintf(cmd, sizeof cmd, "sh '%s/npm_install.sh' '%s' '%s'", MS_MCP_SDK_SOURCE_DIR,
             MS_MCP_SDK_SOURCE_DIR, MS_MCP_SDK_BINARY_DIR);
    rc = run(cmd);
    if (rc == 77) {
        print_message("mcp-sdk: node, npm or the npm registry unavailable: skipped\n");
        skip();
    }
    if (rc != 0)
        fail_msg("npm_install.sh failed with status %d (see above)", rc);

    assert_non_null(mkdtemp(tmpl));
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/schemas' '%s/' && mkdir -p '%s/components' && "
             "for c in user-service notification-service; do "
             "mkdir -p '%s/components/'$c/src && cp -r '%s/components/'$c/interface.json "
             "'%s/components/'$c/context '%s/components/'$c/ && "
             "cp '%s/components/'$c/src/interface.h '%s/components/'$c/src/; done",
             MS_SOURCE_DIR, tmpl, tmpl, tmpl, MS_SOURCE_DIR, MS_SOURCE_DIR, tmpl, MS_SOURCE_DIR,
             tmpl);
    assert_int_equal(run(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "mkdir -p '%s/components/probe/context' && cd '%s/components/probe' && "
             "printf '%%s' '{\"name\":\"probe\",\"version\":\"0.1.0\",\"description\":"
             "\"a probe\"}' > interface.json && "
             "printf '%%s' '{\"component\":\"probe\",\"version\":\"0.1.0\",\"purpose\":"
             "\"Probes.\"}' > context/context.json && "
             "printf '%%s' '{\"component\":\"probe\",\"autonomy\":{\"level\":\"patch\"},"
             "\"actions\":{\"change\":{\"argv\":[\"sleep\",\"1\"],\"timeout_s\":30}}}' "
             "> context/agent-config.json",
             tmpl, tmpl);
    assert_int_equal(run(cmd), 0);
    ms_assert_ok(ms_registry_default_path(tmpl, &path));
    ms_assert_ok(ms_registry_open(path, &reg));
    ms_assert_ok(ms_registry_record_decision(reg, &d, &did, NULL));
    ms_assert_ok(ms_registry_escalate(reg, "user-service", did, "a person decides", NULL, &eid));
    d.component = "probe";
    ms_assert_ok(ms_registry_record_decision(reg, &d, &did, NULL));
    detail = json_pack("{s:{s:{s:s}}}", "input", "message", "subject", "events.probe.x");
    ms_assert_ok(ms_registry_escalate(reg, "probe", did, "a person decides", detail, &eid2));
    json_decref(detail);
    /* a recorded probe build: deploy and rollback are asked for it, and
     * escalate (probe's agent-config leaves may_deploy false) */
    ms_assert_ok(ms_registry_version_add(reg, "probe", "0.1.0",
                                         "00000000000000000000000000000000000000000000000000000000"
                                         "00000000",
                                         tmpl, NULL, NULL));
    ms_assert_ok(ms_nats_server_start(NULL, &nats));
    ms_assert_ok(ms_bus_connect_url(ms_nats_server_url(nats), &bus));
    ms_assert_ok(ms_bus_subscribe(bus, "component.echo.say", NULL, echo, NULL, NULL));
    ms_assert_ok(ms_bus_flush(bus, 2000));

    snprintf(cmd, sizeof cmd, "cd '%s' && node sdk_check.mjs '%s' '%s' '%s' %lld %lld",
             MS_MCP_SDK_BINARY_DIR, MSTACK_BIN, tmpl, ms_nats_server_url(nats), (long long)eid,
             (long long)eid2);
    rc = run(cmd);
    if (rc != 0)
        fail_msg("sdk_check.mjs failed with status %d (its report is above)", rc);

    /* the SDK client's resolve is in the audit log under its name */
    json_t *log = NULL;
    ms_assert_ok(ms_registry_audit_log(reg, "user-service", 0, 10, &log));
    assert_true(json_array_size(log) >= 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(log, 0), "actor")),
                        "mcp:sdk-check");
    json_decref(log);

    ms_bus_destroy(bus);
    ms_nats_server_stop(nats);
    ms_registry_close(reg);
    free(path);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    (void)run(cmd);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sdk_client_uses_every_feature),
    };
    if (argc > 1)
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
