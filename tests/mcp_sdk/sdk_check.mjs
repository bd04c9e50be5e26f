// sdk_check.mjs <mstack> <root> <nats url> <escalation id> <resumable escalation id>
//
// mstack mcp driven by the official MCP TypeScript SDK client over stdio: it
// connects (initialize, the SDK's newest protocol revision), lists and calls
// every tool (the SDK checks each structuredContent against the tool's
// outputSchema), reads every resource and template, gets every prompt, and
// pings. The first escalation is rejected; the second (of the "probe"
// component, whose pipeline is one change step: sleep 1) is approved with a
// progress callback, so the work resumes and reports progress. Prints one
// line per check; exits 1 at the first failure.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [mstack, root, natsUrl, escId, resumeId] = process.argv.slice(2);
if (!resumeId) {
  console.error("usage: sdk_check.mjs <mstack> <root> <nats url> <escalation id> " +
                "<resumable escalation id>");
  process.exit(2);
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  console.log(`ok: ${what}`);
}

const transport = new StdioClientTransport({
  command: mstack,
  args: ["mcp", "--root", root, "--nats", natsUrl],
  stderr: "inherit",
});
const client = new Client({ name: "sdk-check", version: "1.0.0" });

// Arguments for each tool (one set or a list); every tool must be covered.
const calls = {
  list_components: {},
  get_context: { component: "user-service", section: "purpose" },
  check_context: [{}, { component: "user-service" }],
  publish_message: { subject: "events.sdk.check", payload: { n: 1 } },
  request: { subject: "component.echo.say", payload: { say: "hi" }, timeout_ms: 3000 },
  health: { timeout_ms: 200 },
  services: { timeout_ms: 200 },
  evaluate_message: {
    component: "user-service",
    subject: "mainstack.dependency.updated.sqlite3",
    type: "dependency_update",
    payload: { name: "sqlite3", from_version: "3.40.0", to_version: "4.0.0" },
    id: "sdk-1",
  },
  list_decisions: { limit: 5 },
  list_escalations: { state: "any" },
  resolve_escalation: [
    { id: Number(escId), decision: "reject", note: "sdk check" },
    { id: Number(resumeId), decision: "approve", note: "sdk check resumes" },
  ],
  list_runs: { component: "probe" },
  list_versions: { component: "probe" },
  history: [{}, { component: "probe", limit: 5 }],
  // probe's agent-config does not allow deploying: both escalate
  deploy: { component: "probe", version: "0.1.0" },
  rollback: { component: "probe" },
};
const results = {};

try {
  await client.connect(transport);
  const version = client.getServerVersion();
  check(version && version.name === "mstack-mcp", `connected to ${version && version.name}`);
  const caps = client.getServerCapabilities();
  check(caps.tools && caps.resources && caps.prompts, "capabilities: tools, resources, prompts");

  const { tools } = await client.listTools();
  check(tools.length === Object.keys(calls).length, `tools/list: ${tools.length} tools`);
  // list_runs last: it lists the run the approval resumed
  tools.sort((a, b) => (a.name === "list_runs") - (b.name === "list_runs"));
  const progress = [];
  for (const tool of tools) {
    check(calls[tool.name] !== undefined, `tool ${tool.name} has a test call`);
    check(tool.outputSchema && tool.outputSchema.type === "object", `${tool.name} outputSchema`);
    for (const args of [].concat(calls[tool.name])) {
      const opts = args.decision === "approve" ? { onprogress: (p) => progress.push(p) } : {};
      // the SDK validates structuredContent against the tool's outputSchema
      const res = await client.callTool({ name: tool.name, arguments: args }, undefined, opts);
      check(!res.isError, `${tool.name}: ${res.isError ? res.content[0].text : "no error"}`);
      check(res.structuredContent !== undefined, `${tool.name}: structuredContent`);
      check(JSON.stringify(JSON.parse(res.content[0].text)) ===
                JSON.stringify(res.structuredContent),
            `${tool.name}: text equals structuredContent`);
      results[`${tool.name} ${JSON.stringify(args)}`] = res.structuredContent;
      if (tool.name === "resolve_escalation" && args.decision === "approve") {
        check(res.structuredContent.run_state === "succeeded",
              `approve resumed the work: run ${res.structuredContent.run_state}`);
        check(progress.some((p) => (p.message || "").includes("resolved")),
              "progress: resolved");
        // the SDK handles notifications asynchronously and drops progress that
        // arrives right before the response (test_mcp.c checks the last one on
        // the wire); the step sleeps, so progress while it runs is seen
        check(progress.some((p) => (p.message || "").includes("resumed run")),
              `progress: the resumed run (${JSON.stringify(progress)})`);
      }
      if (tool.name === "evaluate_message") {
        check(res.structuredContent.decision === "escalate" &&
                  res.structuredContent.rule === "sqlite-major",
              `evaluate_message: ${res.structuredContent.decision} by ${res.structuredContent.rule}`);
      }
      if (tool.name === "list_runs") {
        check(res.structuredContent.runs.length === 1 &&
                  res.structuredContent.runs[0].state === "succeeded",
              "list_runs: the resumed run succeeded");
      }
      if (tool.name === "list_versions") {
        check(res.structuredContent.count === 1 &&
                  res.structuredContent.versions[0].version === "0.1.0",
              `list_versions: ${JSON.stringify(res.structuredContent.versions)}`);
      }
      if (tool.name === "deploy" || tool.name === "rollback") {
        check(res.structuredContent.escalated === true &&
                  res.structuredContent.deployed === false &&
                  res.structuredContent.escalation_id > 0,
              `${tool.name}: escalated, nothing deployed (${res.structuredContent.outcome})`);
      }
      if (tool.name === "check_context") {
        check(res.structuredContent.errors === 0,
              `check_context ${JSON.stringify(args)}: ${res.structuredContent.errors} errors`);
      }
    }
  }
  // a tool error is a result; an unknown tool is a protocol error
  const bad = await client.callTool({ name: "get_context", arguments: { component: "nope" } });
  check(bad.isError === true, "get_context on a missing component: isError");
  let threw = false;
  try {
    await client.callTool({ name: "no_such_tool", arguments: {} });
  } catch (e) {
    threw = e.code === -32602;
  }
  check(threw, "unknown tool: -32602");

  const { resources } = await client.listResources();
  check(resources.length >= 10, `resources/list: ${resources.length} resources`);
  for (const r of resources) {
    const got = await client.readResource({ uri: r.uri });
    check(got.contents.length === 1 && got.contents[0].text.length > 0, `read ${r.uri}`);
  }
  const { resourceTemplates } = await client.listResourceTemplates();
  check(resourceTemplates.length === 5, "resources/templates/list: 5 templates");
  await client.subscribeResource({ uri: "mainstack://components/user-service/escalations" });
  check(true, "resources/subscribe");

  const { prompts } = await client.listPrompts();
  check(prompts.length === 2, "prompts/list: 2 prompts");
  const m = await client.getPrompt({ name: "maintain_component",
                                     arguments: { component: "user-service" } });
  check(m.messages[0].content.text.includes("user-service"), "prompts/get maintain_component");
  const r = await client.getPrompt({ name: "review_escalation", arguments: { id: escId } });
  check(r.messages[0].content.text.includes("resolve_escalation"),
        "prompts/get review_escalation");
  await client.setLoggingLevel("info");
  check(true, "logging/setLevel");
  await client.ping();
  check(true, "ping");
  await client.close();
  console.log("sdk check passed");
  process.exit(0);
} catch (e) {
  console.error(`sdk check FAILED: ${e && e.stack ? e.stack : e}`);
  try { await client.close(); } catch (_) { /* ignore */ }
  process.exit(1);
}
