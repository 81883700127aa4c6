#!/usr/bin/env bash
# Smoke test for the e2e authorization server fixture.
#
# Starts server.mjs on a free port (AS_PORT=0, the OS picks it; the issuer is taken from the
# READY line), then exercises the token, introspection (JSON and RFC 9701 JWT), revocation,
# JWKS and discovery endpoints with curl. Exits non-zero on the first failed check.
# Requires: bash, curl, node (>= 20), npm (only if node_modules is missing).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$HERE"

for bin in node curl; do
  command -v "$bin" >/dev/null || { echo "FAIL: '$bin' not found on PATH" >&2; exit 1; }
done

if [ ! -d node_modules/oidc-provider ] || [ ! -d node_modules/jose ]; then
  echo "# node_modules missing: running npm ci"
  npm ci --no-audit --no-fund
fi

WORK="$(mktemp -d)"
SERVER_PID=""
CHECKS=0

cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -f "$WORK/server.err" ]; then
    echo "# ---- server stderr ----" >&2
    sed 's/^/# /' "$WORK/server.err" >&2 || true
  fi
  rm -rf "$WORK"
  if [ "$rc" -ne 0 ]; then
    echo "SMOKE FAILED (exit $rc)" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT

fail() {
  echo "FAIL - $*" >&2
  exit 1
}

ok() {
  CHECKS=$((CHECKS + 1))
  echo "ok $CHECKS - $*"
}

# expect_eq DESCRIPTION ACTUAL EXPECTED
expect_eq() {
  if [ "$2" == "$3" ]; then
    ok "$1 (= $3)"
  else
    fail "$1: expected [$3], got [$2]"
  fi
}

# js EXPR < json    -> evaluates EXPR with `d` bound to the parsed JSON document on stdin;
# strings are printed raw, everything else as JSON.
js() {
  node -e '
    const d = JSON.parse(require("fs").readFileSync(0, "utf8"));
    const v = new Function("d", "return (" + process.argv[1] + ");")(d);
    process.stdout.write(typeof v === "string" ? v : String(JSON.stringify(v)));
  ' "$1"
}

# jwt_part INDEX < jwt  -> base64url-decoded JSON of part INDEX (0 = header, 1 = payload)
jwt_part() {
  node -e '
    const parts = require("fs").readFileSync(0, "utf8").trim().split(".");
    process.stdout.write(Buffer.from(parts[Number(process.argv[1])], "base64url").toString("utf8"));
  ' "$1"
}

# req NAME CURL_ARGS...  -> stores headers in $WORK/NAME.h and body in $WORK/NAME.b, prints the status
req() {
  local name="$1"
  shift
  curl -sS --max-time 10 -D "$WORK/$name.h" -o "$WORK/$name.b" -w '%{http_code}' "$@"
}

# header NAME FILE -> value of the (last) response header NAME
header() {
  { grep -i "^$1:" "$2" || true; } | tail -n 1 | cut -d: -f2- | tr -d '\r' | sed 's/^ *//'
}

# ---------------------------------------------------------------------------------------------
echo "# starting authorization server (AS_PORT=0 -> free port)"
# Pin the defaults so a caller's environment cannot change what the checks expect.
env -u AS_ISSUER -u AS_GATEWAY_CLIENT_ID -u AS_GATEWAY_CLIENT_SECRET -u AS_APP_CLIENT_ID -u AS_APP_CLIENT_SECRET \
  AS_HOST=127.0.0.1 AS_PORT=0 AS_ACCESS_TOKEN_TTL=600 \
  node server.mjs >"$WORK/server.out" 2>"$WORK/server.err" &
SERVER_PID=$!

for _ in $(seq 1 300); do
  if grep -q '^READY ' "$WORK/server.out" 2>/dev/null; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited before printing READY"
  sleep 0.1
done
grep -q '^READY ' "$WORK/server.out" || fail "server did not print READY within 30s"
ISSUER="$(sed -n 's/^READY //p' "$WORK/server.out" | head -n 1)"
ok "server ready, issuer $ISSUER"

GW=(-u gateway:gateway-secret)
APP=(-u app:app-secret)

# --- discovery + JWKS ------------------------------------------------------------------------
status=$(req disco "$ISSUER/.well-known/openid-configuration")
expect_eq "discovery HTTP status" "$status" 200
expect_eq "discovery issuer" "$(js 'd.issuer' <"$WORK/disco.b")" "$ISSUER"
expect_eq "discovery token_endpoint" "$(js 'd.token_endpoint' <"$WORK/disco.b")" "$ISSUER/token"
expect_eq "discovery introspection_endpoint" "$(js 'd.introspection_endpoint' <"$WORK/disco.b")" "$ISSUER/token/introspection"
expect_eq "discovery revocation_endpoint" "$(js 'd.revocation_endpoint' <"$WORK/disco.b")" "$ISSUER/token/revocation"
expect_eq "discovery jwks_uri" "$(js 'd.jwks_uri' <"$WORK/disco.b")" "$ISSUER/jwks"
expect_eq "discovery introspection_signing_alg_values_supported has ES256" \
  "$(js 'd.introspection_signing_alg_values_supported.includes("ES256")' <"$WORK/disco.b")" true

status=$(req jwks "$ISSUER/jwks")
expect_eq "jwks HTTP status" "$status" 200
expect_eq "jwks has the fixed ES256 P-256 key" \
  "$(js 'd.keys.filter(k => k.kid === "phantom-edge-test-es256" && k.kty === "EC" && k.crv === "P-256").length' <"$WORK/jwks.b")" 1
expect_eq "jwks exposes no private key material" \
  "$(js 'd.keys.some(k => "d" in k || "p" in k || "q" in k)' <"$WORK/jwks.b")" false

# --- token -----------------------------------------------------------------------------------
status=$(req token "${APP[@]}" -d grant_type=client_credentials -d scope=orders:read "$ISSUER/token")
expect_eq "client_credentials token (app, scope=orders:read) HTTP status" "$status" 200
TOKEN="$(js 'd.access_token' <"$WORK/token.b")"
[ -n "$TOKEN" ] || fail "no access_token in token response: $(cat "$WORK/token.b")"
expect_eq "token_type" "$(js 'd.token_type' <"$WORK/token.b")" Bearer
expect_eq "granted scope" "$(js 'd.scope' <"$WORK/token.b")" "orders:read"
expect_eq "expires_in" "$(js 'd.expires_in' <"$WORK/token.b")" 600
case "$TOKEN" in
  *.*) fail "access token looks like a JWT, expected opaque: $TOKEN" ;;
  *) ok "access token is opaque (${#TOKEN} chars, no dots)" ;;
esac

status=$(req token2 "${APP[@]}" -d grant_type=client_credentials -d scope=orders:read \
  --data-urlencode resource=https://orders.example "$ISSUER/token")
expect_eq "token with explicit resource=https://orders.example HTTP status" "$status" 200
expect_eq "token with explicit resource: scope" "$(js 'd.scope' <"$WORK/token2.b")" "orders:read"

# --- JSON introspection ----------------------------------------------------------------------
status=$(req intro "${GW[@]}" -H 'Accept: application/json' --data-urlencode "token=$TOKEN" "$ISSUER/token/introspection")
expect_eq "JSON introspection (gateway) HTTP status" "$status" 200
expect_eq "JSON introspection Content-Type" "$(header content-type "$WORK/intro.h")" "application/json; charset=utf-8"
expect_eq "JSON introspection Cache-Control" "$(header cache-control "$WORK/intro.h")" "no-store"
expect_eq "JSON introspection active" "$(js 'd.active' <"$WORK/intro.b")" true
expect_eq "JSON introspection aud" "$(js 'd.aud' <"$WORK/intro.b")" "orders-api"
expect_eq "JSON introspection scope" "$(js 'd.scope' <"$WORK/intro.b")" "orders:read"
expect_eq "JSON introspection client_id" "$(js 'd.client_id' <"$WORK/intro.b")" "app"
expect_eq "JSON introspection iss" "$(js 'd.iss' <"$WORK/intro.b")" "$ISSUER"
expect_eq "JSON introspection token_type" "$(js 'd.token_type' <"$WORK/intro.b")" "Bearer"
expect_eq "JSON introspection exp - iat" "$(js 'd.exp - d.iat' <"$WORK/intro.b")" 600
echo "#   JSON introspection body: $(sed "s/$TOKEN/<token>/g" "$WORK/intro.b")"

status=$(req badauth -u gateway:wrong-secret --data-urlencode "token=$TOKEN" "$ISSUER/token/introspection")
expect_eq "introspection with wrong gateway secret HTTP status" "$status" 401
expect_eq "introspection with wrong gateway secret error" "$(js 'd.error' <"$WORK/badauth.b")" "invalid_client"

# --- JWT introspection (RFC 9701) ------------------------------------------------------------
status=$(req jwt "${GW[@]}" -H 'Accept: application/token-introspection+jwt' --data-urlencode "token=$TOKEN" "$ISSUER/token/introspection")
expect_eq "JWT introspection (gateway) HTTP status" "$status" 200
ctype="$(header content-type "$WORK/jwt.h")"
expect_eq "JWT introspection media type" "${ctype%%;*}" "application/token-introspection+jwt"
expect_eq "JWT introspection Cache-Control" "$(header cache-control "$WORK/jwt.h")" "no-store"
expect_eq "JWT introspection body has 3 dot-separated parts" "$(tr -d '\r\n' <"$WORK/jwt.b" | awk -F. '{print NF}')" 3
jwt_part 0 <"$WORK/jwt.b" >"$WORK/jwt.header.json"
jwt_part 1 <"$WORK/jwt.b" >"$WORK/jwt.payload.json"
expect_eq "JWT header typ" "$(js 'd.typ' <"$WORK/jwt.header.json")" "token-introspection+jwt"
expect_eq "JWT header alg" "$(js 'd.alg' <"$WORK/jwt.header.json")" "ES256"
expect_eq "JWT header kid" "$(js 'd.kid' <"$WORK/jwt.header.json")" "phantom-edge-test-es256"
expect_eq "JWT payload iss" "$(js 'd.iss' <"$WORK/jwt.payload.json")" "$ISSUER"
expect_eq "JWT payload aud (the introspecting client)" "$(js 'd.aud' <"$WORK/jwt.payload.json")" "gateway"
expect_eq "JWT payload token_introspection.active" "$(js 'd.token_introspection.active' <"$WORK/jwt.payload.json")" true
expect_eq "JWT payload token_introspection.aud" "$(js 'd.token_introspection.aud' <"$WORK/jwt.payload.json")" "orders-api"
expect_eq "JWT payload token_introspection.scope" "$(js 'd.token_introspection.scope' <"$WORK/jwt.payload.json")" "orders:read"
expect_eq "JWT payload token_introspection.client_id" "$(js 'd.token_introspection.client_id' <"$WORK/jwt.payload.json")" "app"
echo "#   JWT header:  $(cat "$WORK/jwt.header.json")"
echo "#   JWT payload: $(cat "$WORK/jwt.payload.json")"

verified=$(node --input-type=module -e '
  import { createRemoteJWKSet, jwtVerify } from "jose";
  const [jwt, issuer] = process.argv.slice(1);
  const { payload } = await jwtVerify(jwt, createRemoteJWKSet(new URL(`${issuer}/jwks`)), {
    issuer, audience: "gateway", typ: "token-introspection+jwt", algorithms: ["ES256"],
  });
  process.stdout.write(String(payload.token_introspection.active));
' "$(tr -d '\r\n' <"$WORK/jwt.b")" "$ISSUER") || fail "JWT introspection response signature did not verify against $ISSUER/jwks"
expect_eq "JWT introspection signature verifies (jose, ES256, JWKS)" "$verified" true

# --- revocation ------------------------------------------------------------------------------
status=$(req revoke "${GW[@]}" --data-urlencode "token=$TOKEN" -d token_type_hint=access_token "$ISSUER/token/revocation")
expect_eq "revocation (gateway) HTTP status" "$status" 200

status=$(req intro2 "${GW[@]}" -H 'Accept: application/json' --data-urlencode "token=$TOKEN" "$ISSUER/token/introspection")
expect_eq "JSON introspection after revocation HTTP status" "$status" 200
expect_eq "JSON introspection after revocation body" "$(js 'd' <"$WORK/intro2.b")" '{"active":false}'

status=$(req jwt2 "${GW[@]}" -H 'Accept: application/token-introspection+jwt' --data-urlencode "token=$TOKEN" "$ISSUER/token/introspection")
expect_eq "JWT introspection after revocation HTTP status" "$status" 200
expect_eq "JWT introspection after revocation token_introspection.active" \
  "$(jwt_part 1 <"$WORK/jwt2.b" | js 'd.token_introspection.active')" false

# --- shutdown --------------------------------------------------------------------------------
kill -TERM "$SERVER_PID"
server_rc=0
wait "$SERVER_PID" || server_rc=$?
SERVER_PID=""
expect_eq "server exit code after SIGTERM" "$server_rc" 0

echo "# all $CHECKS checks passed"
