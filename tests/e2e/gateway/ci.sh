#!/usr/bin/env bash
# End-to-end tests of phantom-gateway (edge and proxy-component modes), and of the proxy
# component under `jco serve`, against the real authorization server. Builds and installs what
# they need; run from anywhere.
set -euo pipefail
cd "$(dirname "$0")/../../.."
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release -p phantom-edge-component -p phantom-edge-proxy --target wasm32-wasip2
# --workspace, not -p: the same feature set as `cargo test --workspace`, so wasmtime, cranelift
# and hyper are compiled once for both (with -p they are compiled a second time).
cargo build --workspace --bins
VENV=$TARGET/e2e-venv
if [ ! -x "$VENV/bin/pytest" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r tests/e2e/gateway/requirements.txt
fi
(cd tests/e2e/authorization-server && [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --loglevel=error)
bash tests/component/jco/install.sh
"$VENV/bin/pytest" -q tests/e2e/gateway "$@"
