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

# --workspace, not -p phantom-gateway: the same feature set as `make unit`, so wasmtime and
# cranelift are compiled once (a -p build unifies features differently and compiles them again).
gateway: components
	$(CARGO) build --workspace --bins

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

# Coverage-guided campaign over every fuzz target, one libFuzzer process at a time: up to RUNS
# executions each (and at most FUZZ_TIME seconds, when set), new inputs collected in a scratch
# corpus, then `cargo fuzz cmin` of seeds + new inputs back into fuzz/corpus/<t> (commit the
# result). Prints executions, exec/s, libFuzzer's final cov/ft, corpus size and time per target,
# and the table again at the end (also in $(FUZZ_SCRATCH)/summary.tsv). A crashing target is
# reported with its log tail and artifact, the campaign goes on, and make fails at the end.
#   make fuzz-campaign                                 # 10 M executions per target
#   make fuzz-campaign RUNS=100000000 FUZZ_TIME=120    # two minutes per target
#   make fuzz-campaign FUZZ_TARGETS="dpop_proof path_routing" RUNS=100000
.PHONY: fuzz-campaign
FUZZ_TARGETS ?= authorization_header introspection_response config revocation_body dpop_proof security_event jwks_document path_routing shared_messages
RUNS ?= 10000000
FUZZ_TIME ?=
FUZZ_SCRATCH ?= /tmp/phantom-edge-fuzz-campaign
# A target dir of its own: a `--target` build also writes host artifacts into <dir>/release, so
# sharing ./target would wait for every concurrent `cargo build --release` of the workspace.
FUZZ_TARGET_DIR ?= $(CURDIR)/target/fuzz
FUZZ_ENV = RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR=$(FUZZ_TARGET_DIR)
fuzz-campaign:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && $(FUZZ_ENV) cargo fuzz build
	@mkdir -p $(FUZZ_SCRATCH); sum=$(FUZZ_SCRATCH)/summary.tsv; failed=""; \
	printf 'target\truns\texec/s\tcov\tft\tcorpus_files\tcorpus_kb\tfuzz_s\tcmin_s\tresult\n' > $$sum; \
	for t in $(FUZZ_TARGETS); do \
	  scratch=$(FUZZ_SCRATCH)/$$t; log=$(FUZZ_SCRATCH)/$$t.log; rm -rf $$scratch; mkdir -p $$scratch; \
	  echo "== $$t: cargo fuzz run $$t $$scratch fuzz/corpus/$$t -- -runs=$(RUNS) $(if $(FUZZ_TIME),-max_total_time=$(FUZZ_TIME)) (log: $$log)"; \
	  start=$$(date +%s); result=ok; \
	  (cd fuzz && $(FUZZ_ENV) cargo fuzz run $$t $$scratch corpus/$$t -- -runs=$(RUNS) $(if $(FUZZ_TIME),-max_total_time=$(FUZZ_TIME)) -print_final_stats=1) > $$log 2>&1 || result=CRASH; \
	  fuzz_s=$$(( $$(date +%s) - start )); \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -1); \
	  eps=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $$log | tail -1); \
	  cov=$$(grep -oE 'cov: [0-9]+' $$log | tail -1 | cut -d' ' -f2); \
	  ft=$$(grep -oE 'ft: [0-9]+' $$log | tail -1 | cut -d' ' -f2); \
	  cmin_s=0; \
	  if [ $$result = ok ]; then \
	    cp -rn $$scratch/. fuzz/corpus/$$t/; start=$$(date +%s); \
	    (cd fuzz && $(FUZZ_ENV) cargo fuzz cmin $$t corpus/$$t) > $$log.cmin 2>&1 || { result=CMIN_FAILED; tail -20 $$log.cmin; }; \
	    cmin_s=$$(( $$(date +%s) - start )); \
	  else \
	    failed="$$failed $$t"; echo "!! $$t failed; last lines of $$log:"; tail -60 $$log; \
	    ls -1 fuzz/artifacts/$$t 2>/dev/null | sed "s|^|   artifact: fuzz/artifacts/$$t/|"; \
	  fi; \
	  files=$$(ls fuzz/corpus/$$t | wc -l); kb=$$(du -sk --apparent-size fuzz/corpus/$$t | cut -f1); \
	  [ $$kb -le 2048 ] || echo "warning: fuzz/corpus/$$t is $$kb KB (keep it under ~2 MB: lower -max_len or prune)"; \
	  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $$t "$${runs:-?}" "$${eps:-?}" "$${cov:-?}" "$${ft:-?}" $$files $$kb $$fuzz_s $$cmin_s $$result >> $$sum; \
	  echo "   $$t: runs=$${runs:-?} exec/s=$${eps:-?} cov=$${cov:-?} ft=$${ft:-?} corpus=$$files files/$$kb KB fuzz=$${fuzz_s}s cmin=$${cmin_s}s $$result"; \
	done; \
	echo; column -t -s "$$(printf '\t')" $$sum; \
	if [ -n "$$failed" ]; then echo "fuzz-campaign: failures in:$$failed"; exit 1; fi
