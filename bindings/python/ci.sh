#!/usr/bin/env bash
# CI for the Python SDK (issue 4). Run from the repository root on a fresh machine:
#
#     bash bindings/python/ci.sh
#
# Creates (or reuses) a venv in target/py-venv, installs the tools, builds the extension with
# maturin (release profile, one abi3 wheel), runs stubtest, mypy --strict, and pytest: the 74 shared vectors,
# unit tests, the end-to-end tests against tests/e2e/authorization-server (needs node + npm),
# the host example, and the benchmarks with --benchmark-disable (one round each, as tests).
# PHANTOM_EDGE_WHEEL=1 also runs the tests with that wheel on CPython 3.9 and 3.13 (pyenv).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export MYPY_CACHE_DIR="$ROOT/target/mypy-cache"
VENV="${PHANTOM_EDGE_VENV:-$ROOT/target/py-venv}"
PY="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }

step "venv ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
python -m pip install -q --upgrade pip
python -m pip install -q maturin pytest pytest-asyncio httpx starlette fastapi uvicorn \
  pytest-benchmark "pyjwt[crypto]" cachetools mypy

# One release build: the abi3 wheel every interpreter below installs (a `maturin develop` as
# well would compile the extension a second time).
step "maturin build --release"
(cd bindings/python && maturin build --release --out "$ROOT/target/wheels")
WHEEL="$(ls -t "$ROOT"/target/wheels/phantom_edge-*-abi3-*.whl | head -n1)"
python -m pip install -q --force-reinstall --no-deps "$WHEEL"

step "stubtest"
if python -m mypy.stubtest --help >/dev/null 2>&1; then
  (cd bindings/python && python -m mypy.stubtest phantom_edge._native)
else
  echo "skipped: mypy.stubtest is not available in this mypy"
fi

step "mypy --strict"
python -m mypy --strict bindings/python/python/phantom_edge

step "pytest: vectors, unit, e2e, benchmarks (disabled)"
python -m pytest -q -p no:cacheprovider bindings/python/tests bindings/python/benchmarks \
  --benchmark-disable

step "pytest: host-examples/python-asgi"
python -m pytest -q -p no:cacheprovider host-examples/python-asgi

if [ "${PHANTOM_EDGE_WHEEL:-0}" = "1" ]; then
  # The one abi3 wheel on the oldest and newest CPython this machine has besides the venv's:
  # 3.9 reads str arguments through PyBackedStr, 3.10+ borrows them (src/text.rs), so both
  # paths run the unit, vector and end-to-end tests. Interpreters come from pyenv when present.
  PYENV_VERSIONS="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")/versions"
  for want in 3.9 3.13; do
    pyx="$(ls -d "$PYENV_VERSIONS/$want".*/bin/python 2>/dev/null | sort -V | tail -n1 || true)"
    if [ -z "$pyx" ]; then
      echo "skipped: no CPython $want under $PYENV_VERSIONS"
      continue
    fi
    step "wheel on $("$pyx" --version)"
    xvenv="$ROOT/target/py-venv-$want"
    [ -x "$xvenv/bin/python" ] || "$pyx" -m venv "$xvenv"
    "$xvenv/bin/python" -m pip install -q --upgrade pip
    "$xvenv/bin/python" -m pip install -q --force-reinstall --no-deps "$WHEEL"
    "$xvenv/bin/python" -m pip install -q pytest pytest-asyncio httpx starlette fastapi uvicorn \
      pytest-benchmark "pyjwt[crypto]" cachetools
    (cd "$ROOT/target" && "$xvenv/bin/python" -m pytest -q -p no:cacheprovider \
      "$ROOT/bindings/python/tests" "$ROOT/bindings/python/benchmarks" --benchmark-disable)
  done
fi

step "ok"
