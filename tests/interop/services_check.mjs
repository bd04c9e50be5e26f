#!/usr/bin/env node
// services_check.mjs - mainstack's service discovery seen by the official
// NATS JavaScript services client (@nats-io/services, Svcm).
//
// Connects to --url, asks PING, INFO and STATS for all services, by name and
// by name and id through the client, and checks each answer against the
// NATS Services API (ADR-32: the io.nats.micro.v1.*_response schemas) and
// against --expect, a JSON file written by the test driver that lists the
// services, instances and endpoints mainstack must show. It also runs a
// reference service of the client library itself (Svcm.add) on the same
// server and compares the shapes of the two, calls user-service endpoints
// with plain requests (successes, and errors the client must recognise by
// their Nats-Service-Error / Nats-Service-Error-Code headers), and checks
// that STATS counted those calls.
//
// Prints one PASS or FAIL line per check and a last line
// "interop: OK (<n> checks)" or "interop: FAILED (<k> of <n> checks)".
// Exit status: 0 all passed, 1 a check failed, 2 bad usage or no connection.
//
// Usage: node services_check.mjs --url nats://127.0.0.1:4222 --expect expect.json

import { readFileSync } from "node:fs";
import { connect } from "@nats-io/transport-node";
import {
  ServiceError,
  ServiceErrorCodeHeader,
  ServiceErrorHeader,
  ServiceResponseType,
  Svcm,
} from "@nats-io/services";

// --- arguments ---------------------------------------------------------------

function usage(msg) {
  console.error(`services_check: ${msg}`);
  console.error("usage: node services_check.mjs --url <nats url> --expect <expect.json>");
  process.exit(2);
}

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a !== "--url" && a !== "--expect") usage(`unknown argument '${a}'`);
    if (i + 1 >= argv.length) usage(`${a} needs a value`);
    out[a.slice(2)] = argv[++i];
  }
  if (!out.url) usage("--url is required");
  if (!out.expect) usage("--expect is required");
  return out;
}

// --- the report --------------------------------------------------------------

let passed = 0;
let failed = 0;

function check(ok, what, detail) {
  if (ok) {
    passed++;
    console.log(`PASS ${what}`);
  } else {
    failed++;
    console.log(`FAIL ${what}${detail ? `: ${detail}` : ""}`);
  }
  return ok;
}

// A list of problems found: empty is a pass.
function checkList(problems, what) {
  return check(problems.length === 0, what, problems.join("; "));
}

const show = (v) => JSON.stringify(v);

// --- ADR-32 (schemas io.nats.micro.v1.{ping,info,stats}_response) ---------------

const NAME_RE = /^[A-Za-z0-9_-]+$/;
// semver 2.0.0: MAJOR.MINOR.PATCH, no leading zeros, optional -pre and +build
const NUM = "(0|[1-9][0-9]*)";
const PRE_ID = "(0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)";
const SEMVER_RE = new RegExp(
  `^${NUM}\\.${NUM}\\.${NUM}(-${PRE_ID}(\\.${PRE_ID})*)?(\\+[0-9A-Za-z-]+(\\.[0-9A-Za-z-]+)*)?$`,
);
// RFC 3339 date-time with a zone
const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// The keys nats.go's micro package sends, in its order.
const KEYS = {
  ping: ["name", "id", "version", "metadata", "type"],
  info: ["name", "id", "version", "metadata", "type", "description", "endpoints"],
  stats: ["name", "id", "version", "metadata", "type", "started", "endpoints"],
  endpointInfo: ["name", "subject", "queue_group", "metadata"],
  endpointStats: [
    "name",
    "subject",
    "queue_group",
    "num_requests",
    "num_errors",
    "last_error",
    "processing_time",
    "average_processing_time",
  ],
};
const OPTIONAL = { endpointStats: ["data"] };
const TYPES = {
  ping: ServiceResponseType.PING,
  info: ServiceResponseType.INFO,
  stats: ServiceResponseType.STATS,
};

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function checkKeys(obj, kind, where, problems) {
  const want = KEYS[kind];
  const allowed = new Set([...want, ...(OPTIONAL[kind] ?? [])]);
  for (const k of want) if (!(k in obj)) problems.push(`${where}: missing "${k}"`);
  for (const k of Object.keys(obj))
    if (!allowed.has(k)) problems.push(`${where}: unexpected key "${k}"`);
}

function checkMetadata(v, where, problems) {
  if (v === null) return;
  if (!isObject(v)) {
    problems.push(`${where}: metadata ${show(v)} is neither an object nor null`);
    return;
  }
  for (const [k, val] of Object.entries(v))
    if (typeof val !== "string") problems.push(`${where}: metadata.${k} is not a string`);
}

function checkNonNegInt(v, where, problems) {
  if (!Number.isInteger(v) || v < 0) problems.push(`${where} = ${show(v)}: not an integer >= 0`);
}

// Problems of one response of kind ping, info or stats.
function validate(kind, r) {
  const p = [];
  if (!isObject(r)) return [`not a JSON object: ${show(r)}`];
  const where = `${r.name ?? "?"}/${r.id ?? "?"}`;
  checkKeys(r, kind, where, p);
  if (r.type !== TYPES[kind]) p.push(`${where}: type ${show(r.type)}, want "${TYPES[kind]}"`);
  if (typeof r.name !== "string" || !NAME_RE.test(r.name))
    p.push(`${where}: name ${show(r.name)} does not match ${NAME_RE}`);
  if (typeof r.id !== "string" || r.id.length === 0) p.push(`${where}: id ${show(r.id)} is empty`);
  if (typeof r.id === "string" && !NAME_RE.test(r.id))
    p.push(`${where}: id ${show(r.id)} is not a subject token the client can address`);
  if (typeof r.version !== "string" || !SEMVER_RE.test(r.version))
    p.push(`${where}: version ${show(r.version)} is not semver 2.0.0`);
  checkMetadata(r.metadata, where, p);
  if (kind === "info") {
    if (typeof r.description !== "string") p.push(`${where}: description is not a string`);
    if (!Array.isArray(r.endpoints)) p.push(`${where}: endpoints is not an array`);
    for (const [i, e] of (r.endpoints ?? []).entries()) {
      const ew = `${where} endpoints[${i}]`;
      if (!isObject(e)) {
        p.push(`${ew}: not an object`);
        continue;
      }
      checkKeys(e, "endpointInfo", ew, p);
      if (typeof e.name !== "string" || !NAME_RE.test(e.name))
        p.push(`${ew}: name ${show(e.name)} does not match ${NAME_RE}`);
      if (typeof e.subject !== "string" || e.subject.length === 0)
        p.push(`${ew}: subject ${show(e.subject)} is empty`);
      if (typeof e.queue_group !== "string") p.push(`${ew}: queue_group is not a string`);
      checkMetadata(e.metadata, ew, p);
    }
  }
  if (kind === "stats") {
    if (typeof r.started !== "string" || !RFC3339_RE.test(r.started) || isNaN(Date.parse(r.started)))
      p.push(`${where}: started ${show(r.started)} is not an RFC 3339 date-time`);
    if (!Array.isArray(r.endpoints)) p.push(`${where}: endpoints is not an array`);
    for (const [i, e] of (r.endpoints ?? []).entries()) {
      const ew = `${where} endpoints[${i}]`;
      if (!isObject(e)) {
        p.push(`${ew}: not an object`);
        continue;
      }
      checkKeys(e, "endpointStats", ew, p);
      if (typeof e.name !== "string" || !NAME_RE.test(e.name))
        p.push(`${ew}: name ${show(e.name)} does not match ${NAME_RE}`);
      if (typeof e.subject !== "string" || e.subject.length === 0)
        p.push(`${ew}: subject ${show(e.subject)} is empty`);
      if (typeof e.queue_group !== "string") p.push(`${ew}: queue_group is not a string`);
      if (typeof e.last_error !== "string") p.push(`${ew}: last_error is not a string`);
      for (const k of ["num_requests", "num_errors", "processing_time", "average_processing_time"])
        checkNonNegInt(e[k], `${ew}.${k}`, p);
      if (Number.isInteger(e.num_errors) && e.num_errors > e.num_requests)
        p.push(`${ew}: num_errors ${e.num_errors} > num_requests ${e.num_requests}`);
      if (e.num_requests > 0 && e.average_processing_time !== Math.floor(e.processing_time / e.num_requests))
        p.push(`${ew}: average_processing_time ${e.average_processing_time} is not ` +
               `processing_time / num_requests (${e.processing_time} / ${e.num_requests})`);
    }
  }
  return p;
}

// --- expectations ----------------------------------------------------------------

// expect.json: {"services": [{"name", "version", "description",
//   "instances": [{"id", "metadata"}], "endpoints": [{"name", "subject", "queue_group"}]}]}
function loadExpect(path) {
  let e;
  try {
    e = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    usage(`cannot read ${path}: ${err.message}`);
  }
  if (!Array.isArray(e.services) || e.services.length === 0)
    usage(`${path}: "services" must be a non-empty array`);
  return e;
}

const idsOf = (list) => list.map((r) => `${r.name}/${r.id}`).sort();
const expectedIds = (svcs) => svcs.flatMap((s) => s.instances.map((i) => `${s.name}/${i.id}`)).sort();

function sameSet(got, want, what) {
  const missing = want.filter((x) => !got.includes(x));
  const extra = got.filter((x) => !want.includes(x));
  const p = [];
  if (missing.length) p.push(`missing ${missing.join(", ")}`);
  if (extra.length) p.push(`unexpected ${extra.join(", ")}`);
  if (got.length !== new Set(got).size) p.push(`answered more than once: ${got.join(", ")}`);
  return checkList(p, what);
}

// Identity and endpoints of one response against the expectation.
function matchExpect(kind, r, svc) {
  const p = [];
  const inst = svc.instances.find((i) => i.id === r.id);
  if (r.version !== svc.version) p.push(`version ${show(r.version)}, want ${show(svc.version)}`);
  if (inst && show(r.metadata ?? {}) !== show(inst.metadata ?? {}))
    p.push(`metadata ${show(r.metadata)}, want ${show(inst.metadata)}`);
  if (kind === "info" && r.description !== svc.description)
    p.push(`description ${show(r.description)}, want ${show(svc.description)}`);
  if (kind !== "ping") {
    const got = (r.endpoints ?? []).map((e) => `${e.name} ${e.subject} [${e.queue_group}]`);
    const want = svc.endpoints.map((e) => `${e.name} ${e.subject} [${e.queue_group}]`);
    if (show(got) !== show(want)) p.push(`endpoints ${show(got)}, want ${show(want)}`);
  }
  return p;
}

// --- the client ----------------------------------------------------------------

async function collect(iterPromise) {
  const out = [];
  for await (const r of await iterPromise) out.push(r);
  return out;
}

// One verb for all, by name, by name and id, plus queries that must get no
// answer, all sent at once (each waits for the client's "stall" end).
async function ask(kind, client, quick, expect) {
  const q = (c, ...a) => collect(c[kind](...a));
  const [a, b] = [expect.services[0], expect.services[expect.services.length - 1]];
  const jobs = {
    all: q(client),
    cross: a === b ? Promise.resolve([]) : q(quick, a.name, b.instances[0].id),
    nobody: q(quick, "no-such-service"),
  };
  for (const svc of expect.services) {
    jobs[`name:${svc.name}`] = q(client, svc.name);
    for (const inst of svc.instances) jobs[`id:${svc.name}:${inst.id}`] = q(client, svc.name, inst.id);
  }
  const keys = Object.keys(jobs);
  const values = await Promise.all(keys.map((k) => jobs[k]));
  return Object.fromEntries(keys.map((k, i) => [k, values[i]]));
}

// Check what ask() got; returns mainstack's answers to "all".
function judge(kind, got, expect) {
  const all = got.all;
  const ours = all.filter((r) => r.name !== REF_NAME);
  const ref = all.filter((r) => r.name === REF_NAME);
  checkList(ours.flatMap((r) => validate(kind, r)), `${kind} all: ${ours.length} mainstack answers valid per ADR-32`);
  const refProblems = ref.flatMap((r) => validate(kind, r));
  if (refProblems.length) console.log(`NOTE the nats.js reference service itself deviates: ${refProblems.join("; ")}`);
  sameSet(idsOf(all), [...expectedIds(expect.services), `${REF_NAME}/${refId}`], `${kind} all: every instance answered once`);
  for (const svc of expect.services) {
    const byName = got[`name:${svc.name}`];
    checkList(byName.flatMap((r) => validate(kind, r)), `${kind} ${svc.name}: answers valid`);
    sameSet(idsOf(byName), expectedIds([svc]), `${kind} ${svc.name}: its ${svc.instances.length} instance(s) answered`);
    checkList(byName.flatMap((r) => matchExpect(kind, r, svc)), `${kind} ${svc.name}: identity and endpoints as expected`);
    for (const inst of svc.instances) {
      const one = got[`id:${svc.name}:${inst.id}`];
      sameSet(idsOf(one), [`${svc.name}/${inst.id}`], `${kind} ${svc.name} ${inst.id}: that instance alone`);
      if (kind === "stats" && one.length === 1 && Number.isInteger(inst.num_requests)) {
        // what the host counted before the script ran, plus the script's own calls
        const none = { requests: 0, errors: 0 };
        const mine = svc.instances.length === 1 ? (calls[svc.name] ?? none) : none;
        const sum = (k) => (one[0].endpoints ?? []).reduce((n, e) => n + e[k], 0);
        const [wr, we] = [inst.num_requests + mine.requests, inst.num_errors + mine.errors];
        check(sum("num_requests") === wr && sum("num_errors") === we,
              `stats ${svc.name} ${inst.id}: ${wr} requests, ${we} errors, as the host counted`,
              `got ${sum("num_requests")} requests, ${sum("num_errors")} errors`);
      }
    }
  }
  // wrong pairs and unknown names: no answer
  const [a, b] = [expect.services[0], expect.services[expect.services.length - 1]];
  if (a !== b)
    check(got.cross.length === 0, `${kind} ${a.name} with an id of ${b.name}: no answer`,
          `got ${show(idsOf(got.cross))}`);
  check(got.nobody.length === 0, `${kind} no-such-service: no answer`, `got ${show(idsOf(got.nobody))}`);
  return ours;
}

// Calls this script made itself, per service name.
const calls = {};

// The reference: a service of the client library itself on the same server.
const REF_NAME = "js-reference";
let refId = "";

// Keys and JSON types of the reference's answer that ours lacks or types differently.
function shapeDiff(ours, ref, where, p) {
  const typeOf = (v) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);
  for (const [k, v] of Object.entries(ref)) {
    if (!(k in ours)) {
      p.push(`${where}: the reference sends "${k}", mainstack does not`);
      continue;
    }
    const [to, tr] = [typeOf(ours[k]), typeOf(v)];
    const nullable = k === "metadata" && (to === "null" || tr === "null");
    if (to !== tr && !nullable) p.push(`${where}.${k}: ${to}, the reference sends ${tr}`);
    if (to === "array" && tr === "array" && ours[k].length && v.length)
      shapeDiff(ours[k][0], v[0], `${where}.${k}[0]`, p);
  }
}

// --- calls -------------------------------------------------------------------------

async function call(nc, subject, body) {
  return nc.request(subject, JSON.stringify(body), { timeout: 3000 });
}

function errorOf(m) {
  return {
    err: ServiceError.toServiceError(m),
    text: m.headers?.get(ServiceErrorHeader) ?? "",
    code: m.headers?.get(ServiceErrorCodeHeader) ?? "",
  };
}

async function expectOk(nc, subject, body, what) {
  const m = await call(nc, subject, body);
  const e = errorOf(m);
  if (!check(!ServiceError.isServiceError(m), `${what}: a success`, `error ${e.code} ${e.text}`))
    return null;
  try {
    return m.json();
  } catch (err) {
    check(false, `${what}: reply is JSON`, err.message);
    return null;
  }
}

async function expectError(nc, subject, body, code, mentions, what) {
  const m = await call(nc, subject, body);
  const e = errorOf(m);
  console.log(`     ${subject} ${show(body)} -> ${ServiceErrorCodeHeader}: ${e.code}, ${ServiceErrorHeader}: ${e.text}`);
  check(ServiceError.isServiceError(m), `${what}: ServiceError.isServiceError sees an error`);
  check(e.err !== null && e.err.code === code, `${what}: code ${code}`, `got ${e.err?.code} (header ${show(e.code)})`);
  check(e.text.includes(mentions), `${what}: ${ServiceErrorHeader} names '${mentions}'`, `got ${show(e.text)}`);
  return e.text;
}

// --- main --------------------------------------------------------------------------

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const expect = loadExpect(args.expect);
  let nc;
  try {
    nc = await connect({ servers: args.url, timeout: 3000, name: "services_check" });
  } catch (err) {
    console.error(`services_check: cannot connect to ${args.url}: ${err.message}`);
    process.exit(2);
  }
  console.log(`services_check: node ${process.versions.node}, connected to ${args.url}`);

  const svcm = new Svcm(nc);
  const ref = await svcm.add({
    name: REF_NAME,
    version: "1.0.0",
    description: "reference service of the client library",
    metadata: { origin: "nats.js" },
  });
  ref.addEndpoint("echo", { handler: (_err, m) => m.respond(m.data), metadata: { kind: "echo" } });
  refId = ref.info().id;

  const client = svcm.client(); // the defaults: strategy "stall", maxWait 2000 ms
  const quick = svcm.client({ strategy: "stall", maxWait: 800 }); // for "no answer" queries

  const [gotPing, gotInfo] = await Promise.all([
    ask("ping", client, quick, expect),
    ask("info", client, quick, expect),
  ]);
  const pings = judge("ping", gotPing, expect);
  const infos = judge("info", gotInfo, expect);
  console.log(`     sample ping: ${show(pings[0])}`);
  console.log(`     sample info: ${show(infos.find((r) => r.name === "user-service") ?? infos[0])}`);

  // user-service through plain requests
  const us = expect.services.find((s) => s.name === "user-service");
  let usRequests = 0;
  let usErrors = 0;
  let lastCreateError = "";
  if (us) {
    const email = `ada-${Date.now()}@example.com`;
    const made = await expectOk(nc, "component.user-service.create", { email, name: "Ada Lovelace" },
                                "user-service create");
    usRequests++;
    check(made !== null && typeof made.id === "string" && made.email === email,
          "user-service create: the user comes back with an id", show(made));
    const got = made && (await expectOk(nc, "component.user-service.get", { id: made.id }, "user-service get"));
    usRequests++;
    check(got !== null && got.id === made?.id && got.name === "Ada Lovelace",
          "user-service get: the same user", show(got));
    await expectError(nc, "component.user-service.create", { email, name: "Again" }, 409, "email",
                      "user-service create, email taken");
    const unknown = "01890000-0000-7000-8000-000000000000";
    await expectError(nc, "component.user-service.get", { id: unknown }, 404, unknown,
                      "user-service get, no such user");
    lastCreateError = await expectError(nc, "component.user-service.create",
                                        { email: "not-an-address", name: "Bob" }, 400, "email",
                                        "user-service create, bad email");
    usRequests += 3;
    usErrors += 3;
    calls["user-service"] = { requests: usRequests, errors: usErrors };
    console.log(`user-service calls: ${usRequests} requests, ${usErrors} errors`);
  }

  // STATS after the calls: the counts must show them
  const stats = judge("stats", await ask("stats", client, quick, expect), expect);
  if (us) {
    const s = stats.find((r) => r.name === "user-service");
    console.log(`     sample stats: ${show(s)}`);
    const eps = Object.fromEntries((s?.endpoints ?? []).map((e) => [e.name, e]));
    const total = (k) => (s?.endpoints ?? []).reduce((n, e) => n + e[k], 0);
    check(total("num_requests") === usRequests && total("num_errors") === usErrors,
          `user-service stats: ${usRequests} requests, ${usErrors} errors counted`,
          `got ${total("num_requests")} requests, ${total("num_errors")} errors`);
    check(eps.create?.num_requests === 3 && eps.create?.num_errors === 2,
          "user-service stats: create 3 requests, 2 errors", show(eps.create));
    check(eps.get?.num_requests === 2 && eps.get?.num_errors === 1,
          "user-service stats: get 2 requests, 1 error", show(eps.get));
    // micro records "<code>:<description>" of the last error reply
    check(eps.create?.last_error === `400:${lastCreateError}`,
          "user-service stats: create last_error is \"<code>:<description>\" of the last error reply",
          show(eps.create?.last_error));
    check(eps.create?.processing_time > 0, "user-service stats: create processing_time > 0 ns",
          show(eps.create?.processing_time));
    const started = Date.parse(s?.started);
    check(started <= Date.now() + 60000, "user-service stats: started is not in the future", s?.started);
  }

  // shapes against the client library's own service
  const shape = [];
  const refAnswers = {
    ping: (await collect(client.ping(REF_NAME, refId)))[0],
    info: (await collect(client.info(REF_NAME, refId)))[0],
    stats: (await collect(client.stats(REF_NAME, refId)))[0],
  };
  const ours = { ping: pings[0], info: infos[0], stats: stats[0] };
  for (const k of ["ping", "info", "stats"]) {
    if (!refAnswers[k]) shape.push(`${k}: the reference did not answer`);
    else shapeDiff(ours[k], refAnswers[k], k, shape);
  }
  console.log(`     reference stats: ${show(refAnswers.stats)}`);
  checkList(shape, "mainstack sends every field the nats.js reference service sends, same JSON types");

  await ref.stop();
  await nc.drain();
  const n = passed + failed;
  if (failed === 0) {
    console.log(`interop: OK (${n} checks)`);
    return 0;
  }
  console.log(`interop: FAILED (${failed} of ${n} checks)`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.log(`FAIL unexpected error: ${err?.stack ?? err}`);
    console.log(`interop: FAILED (${failed + 1} of ${passed + failed + 1} checks)`);
    process.exit(1);
  },
);
