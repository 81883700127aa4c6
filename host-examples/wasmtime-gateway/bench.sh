#!/usr/bin/env bash
# Gateway throughput on loopback at a 100% cache-hit rate, against a proxy without phantom-edge.
#
#   host-examples/wasmtime-gateway/bench.sh
#
# Builds release (component, phantom-gateway, the bench_upstream and direct_proxy examples),
# starts the upstream (which is also a stub RFC 7662 authorization server), the direct proxy and
# phantom-gateway (dialect rfc7662, minted Ed25519 JWT for the upstream), warms one token (one
# real introspection), then runs wrk with the same threads / connections / duration and the same
# token against:
#   upstream     the upstream directly (the ceiling of this box)
#   direct       the direct proxy -> upstream (the cost of proxying)
#   gateway      phantom-gateway -> upstream, every request a cache hit (default log level: info,
#                one JSON access-log line per request, as shipped)
#   gateway-warn the same gateway restarted with RUST_LOG=warn (no access log): the logging share
# and prints a table. Targets are interleaved ROUNDS times; the table gives every round.
#
# Settings (environment): THREADS (2), CONNS (32), DURATION (10s), ROUNDS (2), TARGETS
# (upstream direct gateway gateway-warn), SKIP_BUILD=1, CARGO_TARGET_DIR, GATEWAY_BIN and
# PHANTOM_EDGE_WASM (to compare another build of the gateway or the component).
# Release builds only: this script is not part of the tests or CI.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
THREADS="${THREADS:-2}"
CONNS="${CONNS:-32}"
DURATION="${DURATION:-10s}"
ROUNDS="${ROUNDS:-2}"
TARGETS="${TARGETS:-upstream direct gateway gateway-warn}"
TOKEN="bench-opaque-token-0123456789abcdefghijklmnopqrstuv"
gateway_bin="${GATEWAY_BIN:-$target/release/phantom-gateway}"
wasm="${PHANTOM_EDGE_WASM:-$target/wasm32-wasip2/release/phantom_edge_component.wasm}"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p phantom-edge-component --target wasm32-wasip2
    cargo build --release -p phantom-gateway --bin phantom-gateway --example bench_upstream --example direct_proxy
fi
if ! command -v wrk >/dev/null; then
    echo "wrk not found; installing (Debian: apt-get install -y wrk)" >&2
    apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
fi

# shellcheck source=bench-lib.sh
source "$here/bench-lib.sh"

start upstream "$target/release/examples/bench_upstream" 127.0.0.1:0
upstream="$addr"
upstream_pid="$last_pid"
start direct "$target/release/examples/direct_proxy" 127.0.0.1:0 "http://$upstream"
direct="$addr"
direct_pid="$last_pid"

write_config "$work/phantom-edge.toml" "$upstream"

gateway_admin=""
# start_gateway NAME RUST_LOG: (re)starts phantom-gateway, warms the token, sets $gateway.
start_gateway() {
    local name="$1" log="$2"
    if [[ -n "${gw_pid:-}" ]]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
    start "$name" env RUST_LOG="$log" "$gateway_bin" --config "$work/phantom-edge.toml" --wasm "$wasm"
    gateway="$addr"
    gw_pid="$last_pid"
    gateway_admin="$(sed -n 's/^READY .*admin=\([^ ]*\).*/\1/p' "$work/$name.out" | head -1)"
    local code
    code="$(curl -s -o "$work/warm.body" -w '%{http_code}' -H "authorization: Bearer $TOKEN" "http://$gateway/orders/1")"
    if [[ "$code" != 200 ]]; then
        echo "warm-up through the gateway answered $code: $(cat "$work/warm.body")" >&2
        cat "$work/$name.err" >&2
        exit 1
    fi
}

metric() { curl -s "http://$gateway_admin/metrics" | awk -v m="phantom_edge_$1" '$1 == m { print $2 }'; }

results="$work/results.tsv"
: >"$results"
# cpu_ticks PID: user + system CPU time of a process so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
clk_tck="$(getconf CLK_TCK)"

# run LABEL ADDR PID: one wrk run; appends a row. PID is the server process wrk talks to: its CPU
# time per request is reported too (less sensitive to the other load on the box than requests/s).
run() {
    local label="$1" addr="$2" pid="$3" out c0 c1
    c0="$(cpu_ticks "$pid")"
    out="$(wrk -t "$THREADS" -c "$CONNS" -d "$DURATION" --latency \
        -H "authorization: Bearer $TOKEN" "http://$addr/orders/1")"
    c1="$(cpu_ticks "$pid")"
    echo "$out" >"$work/wrk-$label-$round.txt"
    local rps avg p50 p99 errs n cpu
    rps="$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")"
    avg="$(awk '$1 == "Latency" { print $2; exit }' <<<"$out")"
    p50="$(awk '$1 == "50%" { print $2 }' <<<"$out")"
    p99="$(awk '$1 == "99%" { print $2 }' <<<"$out")"
    n="$(awk '/requests in/ { print $1 }' <<<"$out")"
    cpu="$(awk -v t="$((c1 - c0))" -v hz="$clk_tck" -v n="$n" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')"
    errs="$(awk '/Non-2xx|Socket errors/ { printf "%s ", $0 }' <<<"$out")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$label" "$rps" "$cpu" "$avg" "$p50" "$p99" "${errs:-none}" >>"$results"
    printf '  round %s %-12s %10s req/s  %6s us CPU/req  avg %-8s p50 %-8s p99 %-8s %s\n' \
        "$round" "$label" "$rps" "$cpu" "$avg" "$p50" "$p99" "${errs:-}" >&2
}

echo "gateway $gateway_bin, component $wasm" >&2
echo "wrk -t $THREADS -c $CONNS -d $DURATION --latency, loopback; upstream $upstream, direct proxy $direct" >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for round in $(seq 1 "$ROUNDS"); do
    for t in $TARGETS; do
        case "$t" in
            upstream) run upstream "$upstream" "$upstream_pid" ;;
            direct) run direct "$direct" "$direct_pid" ;;
            gateway | gateway-warn)
                if [[ "$t" == gateway ]]; then start_gateway gateway info; else start_gateway gateway-warn warn; fi
                h0="$(metric cache_hits_total)"; m0="$(metric cache_misses_total)"
                run "$t" "$gateway" "$gw_pid"
                h1="$(metric cache_hits_total)"; m1="$(metric cache_misses_total)"
                echo "    $t: cache hits +$((h1 - h0)), misses +$((m1 - m0)) during the run" >&2
                ;;
            *) echo "unknown target $t" >&2; exit 2 ;;
        esac
    done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo
echo "| round | target | requests/s | server CPU µs/request | latency avg | p50 | p99 | errors |"
echo "|---|---|---|---|---|---|---|---|"
awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8 }' "$results"
echo
echo "mean per target (server CPU: the process wrk talks to, not the upstream behind it):"
awk -F'\t' '{ s[$2] += $3; c[$2] += $4; n[$2]++ } END { for (k in s) printf "  %-12s %10.0f req/s  %6.1f us CPU/req  (%d rounds)\n", k, s[k] / n[k], c[k] / n[k], n[k] }' "$results"
echo "(raw wrk output in $work)"
