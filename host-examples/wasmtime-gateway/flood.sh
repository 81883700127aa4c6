#!/usr/bin/env bash
# A flood of random tokens against phantom-gateway: does the authorization server survive it, and
# do clients with a known (cached) token still get served?
#
#   host-examples/wasmtime-gateway/flood.sh
#
# Builds release (component, phantom-gateway, the bench_upstream example, which is also a stub
# RFC 7662 authorization server counting the introspections it answers), starts the upstream and
# phantom-gateway with `authorization_server.max_introspections_per_second = RATE`, warms one
# token, then:
#   quiet  wrk with the cached token alone (CONNS connections, DURATION): its p99 is the baseline;
#   flood  wrk sending a new random token on every request (FLOOD_CONNS connections) for
#          FLOOD_DURATION, and at the same time the cached-token wrk again.
# Prints the requests the flood made, the introspections the authorization server answered
# (its own count) and their rate, the flood's status codes, the cached token's p99 in both runs,
# and phantom-gateway's RSS sampled every second.
#
# Settings (environment): RATE (200), CONNS (8), DURATION (10s), FLOOD_CONNS (32),
# FLOOD_DURATION (60s), RUST_LOG (info: the access log on, as shipped), SKIP_BUILD=1,
# CARGO_TARGET_DIR. Release builds; loopback only; not part of the tests or CI.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
target="${CARGO_TARGET_DIR:-$root/target}"
RATE="${RATE:-200}"
CONNS="${CONNS:-8}"
DURATION="${DURATION:-10s}"
FLOOD_CONNS="${FLOOD_CONNS:-32}"
FLOOD_DURATION="${FLOOD_DURATION:-60s}"
LOG="${RUST_LOG:-info}"
TOKEN="flood-known-token-0123456789abcdefghijklmnopqrstuv"
gateway_bin="$target/release/phantom-gateway"
wasm="$target/wasm32-wasip2/release/phantom_edge_component.wasm"

if [[ "${SKIP_BUILD:-}" != 1 ]]; then
    cargo build --release -p phantom-edge-component --target wasm32-wasip2
    cargo build --release -p phantom-gateway --bin phantom-gateway --example bench_upstream
fi
command -v wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }

BENCH_NAME=flood
# shellcheck source=bench-lib.sh
source "$here/bench-lib.sh"

start upstream "$target/release/examples/bench_upstream" 127.0.0.1:0
upstream="$addr"
write_config "$work/phantom-edge.toml" "$upstream" "max_introspections_per_second = $RATE"
start gateway env RUST_LOG="$LOG" "$gateway_bin" --config "$work/phantom-edge.toml" --wasm "$wasm"
gateway="$addr"
gw_pid="$last_pid"
code="$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $TOKEN" "http://$gateway/orders/1")"
[[ "$code" == 200 ]] || { echo "warm-up answered $code" >&2; cat "$work/gateway.err" >&2; exit 1; }

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$gw_pid/status"; }
introspections() { curl -s "http://$upstream/introspections"; }
p99() { awk '$1 == "99%" { print $2 }' "$1"; }

cat >"$work/random.lua" <<'EOF'
-- Every request a token nobody has seen: a miss, and an introspection unless rate-limited.
local n = 0
math.randomseed(os.time())
request = function()
    n = n + 1
    local token = string.format("flood-%d-%d-%d", math.random(1, 2147483647), n, math.random(1, 2147483647))
    return wrk.format("GET", "/orders/1", { ["authorization"] = "Bearer " .. token })
end
EOF

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); RSS at start $(rss_kib) KiB" >&2
wrk -t1 -c "$CONNS" -d "$DURATION" --latency -H "authorization: Bearer $TOKEN" \
    "http://$gateway/orders/1" >"$work/quiet.txt"
echo "quiet: cached token p99 $(p99 "$work/quiet.txt"), RSS $(rss_kib) KiB" >&2

a0="$(introspections)"
rss_max=0
(
    while kill -0 "$gw_pid" 2>/dev/null; do
        echo "$(date +%s) $(rss_kib)" >>"$work/rss.txt"
        sleep 1
    done
) &
pids+=("$!")
start_s="$(date +%s.%N)"
wrk -t1 -c "$FLOOD_CONNS" -d "$FLOOD_DURATION" -s "$work/random.lua" "http://$gateway/orders/1" \
    >"$work/flood.txt" &
flood_pid=$!
sleep 1
flood_s="${FLOOD_DURATION%s}"
wrk -t1 -c "$CONNS" -d "$((flood_s - 2))s" --latency -H "authorization: Bearer $TOKEN" \
    "http://$gateway/orders/1" >"$work/during.txt"
wait "$flood_pid"
end_s="$(date +%s.%N)"
a1="$(introspections)"
rss_max="$(awk '{ if ($2 > m) m = $2 } END { print m }' "$work/rss.txt")"

flood_requests="$(awk '/requests in/ { print $1 }' "$work/flood.txt")"
seconds="$(awk -v a="$start_s" -v b="$end_s" 'BEGIN { printf "%.1f", b - a }')"
echo
echo "| what | value |"
echo "|---|---|"
echo "| introspection rate limit | $RATE / s |"
echo "| flood requests (new random token each) | $flood_requests in ${seconds} s |"
echo "| flood answers other than 2xx (the 503 rate_limited) | $(awk '/Non-2xx/ { print $NF }' "$work/flood.txt") |"
echo "| introspections the AS answered | $((a1 - a0)) ($(awk -v n="$((a1 - a0))" -v s="$seconds" 'BEGIN { printf "%.0f", n / s }') / s) |"
echo "| cached token p99, quiet | $(p99 "$work/quiet.txt") |"
echo "| cached token p99, during the flood | $(p99 "$work/during.txt") |"
echo "| cached token requests/s quiet / during | $(awk '/^Requests\/sec/ { print $2 }' "$work/quiet.txt") / $(awk '/^Requests\/sec/ { print $2 }' "$work/during.txt") |"
echo "| cached token non-2xx during the flood | $(awk '/Non-2xx/ { print $NF }' "$work/during.txt" || true) |"
echo "| gateway RSS: start of flood / max / end | $(head -1 "$work/rss.txt" | cut -d' ' -f2) / $rss_max / $(rss_kib) KiB |"
echo "| gateway metrics | $(curl -s "http://$admin/metrics" | awk '/^phantom_edge_(rate_limited|introspections|cache_entries|negative_entries)/ { printf "%s=%s ", $1, $2 }') |"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); raw output in $work" >&2
