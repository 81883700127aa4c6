#!/usr/bin/env bash
# Per-call cost of a cache-hit `handle-request` through the component, on jco (Node) and wasmtime-py.
# Run after ci.sh (it reuses the release component, jco's node_modules and the venv).
#   bash tests/component/bench.sh [N]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
WASM="$TARGET/wasm32-wasip2/release/phantom_edge_component.wasm"
export PHANTOM_EDGE_COMPONENT="$WASM"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
(cd "$HERE/jco" && node transpile.mjs >/dev/null && node bench-hit.mjs "${1:-50000}")
(cd "$HERE/python" && "$TARGET/component-py-venv/bin/python" bench_hit.py "$WASM" "${1:-20000}")
