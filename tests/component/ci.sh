#!/usr/bin/env bash
# Portability of the phantom:edge component (make component-portability):
#   1. builds the release component (wasm32-wasip2),
#   2. WIT drift: `jco wit` of the built component must equal phantom-edge.component.wit, and the
#      full exported/imported types as wasmtime sees them must equal phantom-edge.component.types,
#   3. replays every tests/vectors case through the component transpiled to JS by jco (node --test),
#   4. replays every case through the component on the `wasmtime` PyPI package.
# After an intended WIT change: PHANTOM_EDGE_BLESS=1 bash tests/component/ci.sh rewrites the two
# snapshots (review the git diff). The cache-hit benchmarks are in bench.sh, not here.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
CARGO="${CARGO:-cargo}"
WASM="$TARGET/wasm32-wasip2/release/phantom_edge_component.wasm"
VENV="$TARGET/component-py-venv"
JCO_DIR="$HERE/jco"
PY_DIR="$HERE/python"
BLESS="${PHANTOM_EDGE_BLESS:-}"

step() { printf '\n== component-portability: %s\n' "$*"; }

step "release component"
rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
(cd "$ROOT" && "$CARGO" build --release -p phantom-edge-component --target wasm32-wasip2)
test -f "$WASM" || { echo "FAIL: no component at $WASM"; exit 1; }
export PHANTOM_EDGE_COMPONENT="$WASM"

step "jco (pinned in package.json / package-lock.json)"
cd "$JCO_DIR"
bash "$JCO_DIR/install.sh"
# The versions this replay was written against: jco 1.35.x and the preview2-shim it generates for.
node -e '
  const v = (p) => require(`./node_modules/${p}/package.json`).version;
  const jco = v("@bytecodealliance/jco"), shim = v("@bytecodealliance/preview2-shim");
  console.log(`jco ${jco}, preview2-shim ${shim}`);
  if (!jco.startsWith("1.35.") || !shim.startsWith("0.26.")) { console.error("FAIL: unexpected versions"); process.exit(1); }
'

step "python venv with wasmtime (python/requirements.txt)"
if [[ ! -x "$VENV/bin/python" ]]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$PY_DIR/requirements.txt"; then
  echo "FAIL: cannot install $(cat "$PY_DIR/requirements.txt") into $VENV"; exit 1
fi

# Compares a snapshot with fresh output; with PHANTOM_EDGE_BLESS=1 rewrites the snapshot.
snapshot() {
  local name="$1" fresh="$2" want="$HERE/$1"
  if [[ -n "$BLESS" ]]; then
    cp "$fresh" "$want"; echo "blessed $name"; return 0
  fi
  if ! diff -u "$want" "$fresh" --label "$name (committed)" --label "$name (built component)"; then
    echo "FAIL: the component's contract differs from tests/component/$name."
    echo "If the WIT change is intended, run PHANTOM_EDGE_BLESS=1 bash tests/component/ci.sh and commit the snapshot."
    return 1
  fi
  echo "$name: unchanged"
}

step "WIT drift"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
node_modules/.bin/jco wit "$WASM" > "$tmp/wit"
"$VENV/bin/python" "$PY_DIR/dump_types.py" "$WASM" > "$tmp/types"
drift=0
snapshot phantom-edge.component.wit "$tmp/wit" || drift=1
snapshot phantom-edge.component.types "$tmp/types" || drift=1
[[ $drift == 0 ]] || exit 1

step "vectors through jco (node --test)"
node transpile.mjs
node --test replay.test.mjs

step "vectors through wasmtime-py"
"$VENV/bin/python" "$PY_DIR/replay_vectors.py" "$WASM"

echo
echo "component-portability: all checks passed"
