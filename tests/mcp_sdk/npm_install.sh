#!/bin/sh
# npm_install.sh <source dir> <build dir> - install the npm packages pinned in
# <source dir>/package-lock.json (`npm ci`) into <build dir>, with the
# directory's package.json and its *.mjs scripts. node_modules lives in
# <build dir> only. Used by test_mcp_sdk (tests/mcp_sdk: the MCP TypeScript
# SDK) and mcp_conformance.server (tests/mcp_conformance: the official
# conformance suite and Node 22); messages carry the source directory's name.
#
# Installs again only when package-lock.json changed; serialised with flock.
# Exit status: 0 ready; 77 node/npm/the registry missing here, outside CI
# (the test is skipped); 1 the same with CI=true, or any other failure.
set -u

src=${1:?usage: npm_install.sh <source dir> <build dir>}
dst=${2:?usage: npm_install.sh <source dir> <build dir>}

label=$(basename "$src")
on_ci=false
case "${CI:-}" in true | TRUE | True | 1 | yes) on_ci=true ;; esac

unavailable() {
    echo "$label: $1" >&2
    if $on_ci; then
        echo "$label: CI=true: this test needs node (>= 18), npm and the npm registry" >&2
        exit 1
    fi
    echo "$label: not on CI: skipping (set CI=true to make this a failure)" >&2
    exit 77
}

command -v node >/dev/null 2>&1 || unavailable "node not found on PATH (Debian: nodejs)"
command -v npm >/dev/null 2>&1 || unavailable "npm not found on PATH (Debian: npm)"
major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[ "$major" -ge 18 ] 2>/dev/null || unavailable "node $(node --version 2>&1) is too old (need >= 18)"

mkdir -p "$dst" || exit 1
cp "$src/package.json" "$src/package-lock.json" "$dst/" || exit 1
for script in "$src"/*.mjs; do
    [ -e "$script" ] || continue
    cp "$script" "$dst/" || exit 1
done

exec 9>"$dst/.install.lock" || exit 1
if command -v flock >/dev/null 2>&1; then
    flock 9 || exit 1
fi

stamp="$dst/node_modules/.mainstack-lock"
if [ -d "$dst/node_modules" ] && cmp -s "$src/package-lock.json" "$stamp"; then
    exit 0
fi
log="$dst/npm-ci.log"
if ! (cd "$dst" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error \
        --fetch-retries=1 --fetch-retry-mintimeout=1000 --fetch-retry-maxtimeout=3000 \
        --fetch-timeout=20000) >"$log" 2>&1; then
    sed -n '1,20p' "$log" >&2
    unavailable "npm ci failed in $dst (registry unreachable?; full log: $log)"
fi
cp "$src/package-lock.json" "$stamp" || exit 1
exit 0
