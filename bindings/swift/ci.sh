#!/usr/bin/env bash
# CI for the Swift SDK on a machine without a Swift toolchain (run from the repository root):
#   1. build phantom-edge-uniffi (cdylib + staticlib) and its uniffi-bindgen;
#   2. generate.sh --check: the committed Swift sources, header and module map match the library;
#   3. generate the PYTHON bindings from the very same libphantom_edge_uniffi.so into a build
#      directory (not committed) and replay every tests/vectors case through that FFI layer, one
#      Step per input (bindings/uniffi/tests/replay_vectors.py).
# Honours an existing CARGO_TARGET_DIR (default: the workspace's target/).
# The Swift sources themselves (PhantomEdgeClient, VectorTests.swift) are compiled and tested
# only where `swift` exists: step 4 runs `swift test` when it does, and says so when it does not.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

echo "== cargo build -p phantom-edge-uniffi"
cargo build --quiet -p phantom-edge-uniffi --lib --bin uniffi-bindgen

echo "== bindings/swift/generate.sh --check"
bindings/swift/generate.sh --check

case "$(uname -s)" in
  Darwin) libfile=libphantom_edge_uniffi.dylib ;;
  *)      libfile=libphantom_edge_uniffi.so ;;
esac
pydir="$CARGO_TARGET_DIR/uniffi-python"
rm -rf "$pydir"
mkdir -p "$pydir"
"$CARGO_TARGET_DIR/debug/uniffi-bindgen" generate "$CARGO_TARGET_DIR/debug/$libfile" \
  --language python --no-format --out-dir "$pydir" >/dev/null
cp "$CARGO_TARGET_DIR/debug/$libfile" "$pydir/"

if command -v swift >/dev/null 2>&1; then
  echo "== swift test (bindings/swift)"
  (cd bindings/swift && PHANTOM_EDGE_LIB_DIR="$CARGO_TARGET_DIR/debug" swift test)
else
  echo "== swift: no Swift toolchain on this machine; the Swift sources were not compiled"
fi

echo "== python replay of tests/vectors/cases through the generated FFI module"
python3 bindings/uniffi/tests/replay_vectors.py "$pydir" tests/vectors/cases
