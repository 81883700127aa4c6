# Shared by bench.sh and flood.sh (sourced, not run): a scratch directory whose processes are
# stopped on exit, `start` for programs that print a READY line, and the gateway config both use.

work="$(mktemp -d -t "phantom-${BENCH_NAME:-bench}.XXXXXX")"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# start NAME CMD...: runs CMD with stdout to $work/NAME.out, waits for its READY line, sets
# $addr to the listen address, $admin to the admin address (if any) and $last_pid.
start() {
    local name="$1"; shift
    "$@" >"$work/$name.out" 2>"$work/$name.err" &
    last_pid=$!
    pids+=("$last_pid")
    for _ in $(seq 1 600); do
        if grep -q '^READY' "$work/$name.out" 2>/dev/null; then
            addr="$(sed -n 's/^READY listen=\([^ ]*\).*/\1/p' "$work/$name.out" | head -1)"
            admin="$(sed -n 's/^READY .*admin=\([^ ]*\).*/\1/p' "$work/$name.out" | head -1)"
            return 0
        fi
        sleep 0.1
    done
    echo "$name did not start; stderr:" >&2
    cat "$work/$name.err" >&2
    return 1
}

# write_config PATH UPSTREAM [EXTRA]: phantom-gateway's config for the bench_upstream at
# UPSTREAM (also the stub RFC 7662 authorization server); EXTRA goes into
# [authorization_server].
write_config() {
    local path="$1" upstream="$2" extra="${3:-}"
    cat >"$path" <<CONF
[authorization_server]
issuer = "http://$upstream"
introspection_endpoint = "http://$upstream/introspect"
client_id = "gateway"
client_secret = "gateway-secret"
dialect = "rfc7662"
timeout = "2s"
$extra

[cache]
max_ttl = "300s"
# Explicit, as in the demo: an authorization server marking its answers no-store (oidc-provider
# does) would otherwise make every request an introspection.
ignore_no_store = true

[assertions]
signing_key = """$(cat "$root/tests/vectors/keys/edge-ed25519.pem")"""
kid = "edge-1"
max_ttl = "600s"

[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
audience = "orders-api"

[gateway]
listen = "127.0.0.1:0"
upstream = "http://$upstream"
admin_listen = "127.0.0.1:0"
request_timeout = "10s"
CONF
}
