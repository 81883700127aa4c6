#!/usr/bin/env bash
# Installs the pinned jco toolchain (package.json / package-lock.json) into tests/component/jco,
# once per lock: used by tests/component/ci.sh and by the gateway e2e (`jco serve` host).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$TARGET"
cd "$HERE"
lock_sum="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)"
if [[ ! -x node_modules/.bin/jco || "$(cat node_modules/.phantom-lock-sum 2>/dev/null)" != "$lock_sum" ]]; then
  if ! npm ci --no-audit --no-fund >"$TARGET/component-npm-ci.log" 2>&1; then
    # The registry mirror on the build machines serves only linux-x64 builds of jco's optional
    # native helpers, so the committed lock cannot list the other platforms' ones and `npm ci`
    # calls it out of sync. Install from the same lock without rewriting it.
    echo "npm ci refused the lock (see $TARGET/component-npm-ci.log); npm install --no-save from the lock"
    npm install --no-save --no-audit --no-fund
  fi
  echo "$lock_sum" > node_modules/.phantom-lock-sum
fi
