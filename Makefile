# phantom-edge: every task a developer or CI runs. `make` lists them.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: help python node swift demo demo-core components gateway gateway-e2e component-portability test check fmt clippy unit wasm no-io fuzz-smoke as-smoke bench vectors vectors-drift fuzz
help:
	@echo "make demo        the demo: oidc-provider + echo upstream + phantom-gateway (component in wasmtime)"
	@echo "make demo-core   the core alone: a full phantom-token exchange against an in-process fake AS"
	@echo "make test        everything CI runs: fmt, clippy, unit/integration/property/vector tests,"
	@echo "                 wasm32-wasip2 build, no-I/O check, fuzz-target smoke, AS fixture smoke"
	@echo "make python      Python SDK: wheel, stubtest, mypy, vectors, unit, e2e against oidc-provider"
	@echo "make node        Node SDK: napi build, index.d.ts drift check, vectors, unit, e2e (Express + Fastify)"
	@echo "make gateway-e2e phantom-gateway end to end (edge + proxy-component modes; proxy component under jco serve) against oidc-provider"
	@echo "make component-portability  WIT drift check + vectors through the component on jco and wasmtime-py"
	@echo "make swift       uniffi/Swift SDK: drift check + every vector through the generated FFI (Python)"
	@echo "make bench       criterion benchmarks of the core (release)"
	@echo "make vectors     regenerate tests/vectors/cases (then review git diff)"
	@echo "make fuzz T=...  run one cargo-fuzz target (see README)"

demo: gateway
	@cd tests/e2e/authorization-server && { [ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund --loglevel=error; }
	python3 host-examples/wasmtime-gateway/demo.py

demo-core:
	$(CARGO) run -q -p phantom-edge-core --example demo

# The two components (release: small and fast; LTO off) and the gateway that hosts them.
components:
	rustup target add wasm32-wasip2 >/dev/null
	$(CARGO) build --release -p phantom-edge-component -p phantom-edge-proxy --target wasm32-wasip2

gateway: components
	$(CARGO) build -p phantom-gateway

gateway-e2e: gateway
	bash tests/e2e/gateway/ci.sh

test: fmt clippy unit vectors-drift wasm no-io fuzz-smoke as-smoke gateway-e2e component-portability swift python node
	@echo "make test: all checks passed"

fmt:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p phantom-edge-core --lib --target wasm32-wasip2 -- -D warnings
	$(CARGO) clippy -p phantom-edge-component -p phantom-edge-proxy --target wasm32-wasip2 -- -D warnings

unit:
	$(CARGO) test --workspace

wasm:
	rustup target add wasm32-wasip2 >/dev/null
	$(CARGO) build -p phantom-edge-core --target wasm32-wasip2

# The core must stay free of I/O, clocks, threads and async (docs/DESIGN.md).
no-io:
	@if grep -rnE 'std::net|std::fs|SystemTime::now|Instant::now|thread::spawn|tokio|async fn|std::env' core/src | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; then \
	  echo "core/src must not do I/O, read clocks, spawn threads or be async"; exit 1; fi
	@if $(CARGO) tree -p phantom-edge-core -e normal --prefix none | grep -E '^(tokio|hyper|reqwest|ureq|mio|async-std|isahc|curl) '; then \
	  echo "core has an I/O dependency"; exit 1; fi
	@echo "no-io: ok"

fuzz-smoke:
	@if [ -f fuzz/Cargo.toml ]; then CARGO_TARGET_DIR=$(CURDIR)/target $(CARGO) test --manifest-path fuzz/Cargo.toml; fi

swift:
	bash bindings/swift/ci.sh

python:
	PHANTOM_EDGE_WHEEL=1 bash bindings/python/ci.sh

node:
	bash bindings/node/ci.sh

as-smoke:
	bash tests/e2e/authorization-server/smoke.sh

bench:
	$(CARGO) bench -p phantom-edge-core

vectors:
	$(CARGO) run -q -p phantom-edge-core --example gen_vectors

# The committed vectors are exactly what the generator writes (and its own checks pass): a stale
# or hand-edited case fails here. Built with the workspace's features, as `unit` built it.
vectors-drift:
	$(CARGO) build -q --workspace --example gen_vectors
	"$${CARGO_TARGET_DIR:-target}/debug/examples/gen_vectors"
	@if ! git diff --exit-code --stat -- tests/vectors || [ -n "$$(git status --porcelain -- tests/vectors)" ]; then \
	  git status --short -- tests/vectors; \
	  echo "tests/vectors differs from what core/examples/gen_vectors.rs writes: run make vectors and commit the result (never edit a case by hand)"; exit 1; fi
	@echo "vectors-drift: ok"

# The phantom:edge component on other runtimes: WIT drift check, every vector through jco (Node)
# and through wasmtime-py (tests/component/ci.sh).
.PHONY: component-portability
component-portability:
	bash tests/component/ci.sh

fuzz:
	mkdir -p /tmp/corpus-$(T) && cd fuzz && RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(CURDIR)/target cargo fuzz run $(T) /tmp/corpus-$(T) corpus/$(T) -- -max_total_time=60
