#!/usr/bin/env bash
# CI for the Node SDK (issue 5). Run from anywhere on a machine with Rust, Node >= 20 and npm:
#
#     bash bindings/node/ci.sh
#
# npm ci (pinned devDependencies: @napi-rs/cli, express, fastify, jose, ...); napi build (debug
# profile, into $CARGO_TARGET_DIR when set, else the workspace's target/ directory); a drift check
# of the generated index.d.ts and index.js against the committed ones; then `node --test` of
# everything: the 74 shared vectors (through the Step driver), unit tests, end-to-end tests against
# tests/e2e/authorization-server through Express and Fastify, and host-examples/node-express.
# (Node 20 because the oidc-provider fixture needs it; the package itself runs on Node >= 18.17.)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PKG="$ROOT/bindings/node"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export npm_config_update_notifier=false

step() { printf '\n== %s\n' "$*"; }

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "warning: node $(node --version): the e2e fixture (oidc-provider 9) declares Node >= 20" >&2
fi

step "npm ci (bindings/node)"
(cd "$PKG" && npm ci --no-audit --no-fund)

step "napi build (debug) + drift check of index.d.ts / index.js"
SAVED="$(mktemp -d)"
trap 'rm -rf "$SAVED"' EXIT
cp "$PKG/index.d.ts" "$PKG/index.js" "$SAVED/"
(cd "$PKG" && npx napi build --platform)
drift=0
for f in index.d.ts index.js; do
  if ! diff -u "$SAVED/$f" "$PKG/$f"; then
    echo "drift: bindings/node/$f differs from what napi build generates; commit the regenerated file" >&2
    drift=1
  fi
done
if [ "$drift" -ne 0 ]; then exit 1; fi
echo "no drift"

step "tsc: the published types (index.d.ts, lib/*.d.ts) against test/types/check.ts"
(cd "$PKG" && npx tsc -p test/types)

step "npm ci (host-examples/node-express)"
(cd "$ROOT/host-examples/node-express" && npm ci --no-audit --no-fund)

step "node --test: vectors, unit, e2e (Express + Fastify), host example"
(cd "$PKG" && node --test test/*.test.js)
(cd "$ROOT/host-examples/node-express" && node --test test/*.test.js)

step "ok"
