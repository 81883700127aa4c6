#!/usr/bin/env python3
"""Regenerates fuzz/corpus/* seeds and prints the AS JWKS embedded in src/lib.rs.

Run from fuzz/: python3 scripts/gen_seeds.py   (needs the `cryptography` package).
JWT seeds are signed with keys the edge does NOT trust (set-ed25519 / edge-es256) under the
trusted kids, so they reach signature verification but can never verify.
"""
import base64, json, os, sys
from cryptography.hazmat.primitives.serialization import load_pem_private_key, Encoding, PublicFormat
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives import hashes

KEYS = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "vectors", "keys")
OUT = os.path.join(os.path.dirname(__file__), "..", "corpus")
T0 = 1_700_000_000  # seconds; src/lib.rs uses T0_MS = 1_700_000_000_000
ISS = "https://as.example"

def b64(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def key(name): return load_pem_private_key(open(os.path.join(KEYS, name), "rb").read(), None)

def jwk(k, kid):
    if isinstance(k, ed25519.Ed25519PrivateKey):
        x = k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64(x), "kid": kid, "alg": "EdDSA", "use": "sig"}
    n = k.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64(n.x.to_bytes(32, "big")), "y": b64(n.y.to_bytes(32, "big")),
            "kid": kid, "alg": "ES256", "use": "sig"}

def sign(k, header, claims):
    inp = (b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
           b64(json.dumps(claims, separators=(",", ":")).encode())).encode()
    if isinstance(k, ed25519.Ed25519PrivateKey):
        sig = k.sign(inp)
    else:
        r, s = decode_dss_signature(k.sign(inp, ec.ECDSA(hashes.SHA256())))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return inp.decode() + "." + b64(sig)

claims = {"active": True, "scope": "orders:read", "client_id": "app", "sub": "alice", "aud": "orders-api",
          "iss": ISS, "exp": T0 + 3600, "iat": T0, "jti": "jti-1", "token_type": "Bearer"}
at = {k: v for k, v in claims.items() if k != "active"}
wrong_ed, wrong_es = key("set-ed25519.pem"), key("edge-es256.pem")

def write(target, name, data):
    d = os.path.join(OUT, target); os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data if isinstance(data, bytes) else data.encode())

# introspection_response: [status selector, content-type selector, flags, body...] (see src/lib.rs)
S200, CT_DIALECT, CT_JSON, CT_JWT, CT_TIJWT, NOFLAGS, MAXAGE60 = 0, 0xff, 2, 1, 0, 0, 0x79
r9701 = {"iss": ISS, "aud": "gateway", "iat": T0, "token_introspection": claims}
seeds = {
    "rfc9701_wrong_key": bytes([S200, CT_TIJWT, NOFLAGS]) + sign(wrong_ed, {"alg": "EdDSA", "typ": "token-introspection+jwt", "kid": "as-ed"}, r9701).encode(),
    "rfc9701_unknown_kid": bytes([S200, CT_TIJWT, MAXAGE60]) + sign(wrong_ed, {"alg": "EdDSA", "typ": "token-introspection+jwt", "kid": "nope"}, r9701).encode(),
    "rfc9701_alg_none": bytes([S200, CT_TIJWT, NOFLAGS]) + (b64(b'{"alg":"none","typ":"token-introspection+jwt"}') + "." + b64(json.dumps(r9701).encode()) + ".").encode(),
    "curity_wrong_key": bytes([S200, CT_JWT, MAXAGE60]) + sign(wrong_es, {"alg": "ES256", "typ": "at+jwt", "kid": "as-es"}, at).encode(),
    "curity_204": bytes([0x80, CT_JWT, NOFLAGS]),
    "keycloak_wrong_key": bytes([S200, CT_JSON, NOFLAGS]) + json.dumps({"active": True, "jwt": sign(wrong_ed, {"alg": "EdDSA", "typ": "at+jwt", "kid": "as-ed"}, at)}).encode(),
    "rfc7662_active": bytes([S200, CT_JSON, MAXAGE60]) + json.dumps(claims).encode(),
    "rfc7662_inactive": bytes([S200, CT_DIALECT, NOFLAGS]) + b'{"active":false}',
    "status_500": bytes([0x83, CT_DIALECT, NOFLAGS]) + b"<html>oops</html>",
    "status_401": bytes([0x81, CT_JSON, NOFLAGS]) + b'{"error":"invalid_client"}',
}
for n, d in seeds.items(): write("introspection_response", n, d)

# authorization_header: Authorization value, optionally NUL, then the DPoP header value.
dpop = sign(key("client-dpop-es256.pem"), {"alg": "ES256", "typ": "dpop+jwt", "jwk": {k: v for k, v in jwk(key("client-dpop-es256.pem"), "x").items() if k in ("kty", "crv", "x", "y")}},
            {"htm": "GET", "htu": "https://api.example/orders/1", "iat": T0, "jti": "p-1"})
for n, d in {
    "bearer": "Bearer opaque-token-0123456789abcdef",
    "bearer_lower_pad": "bearer   abc.DEF-ghi_jkl~mno+pqr/st==  ",
    "dpop": "DPoP opaque-dpop-token-0123456789\0" + dpop,
    "dpop_no_proof": "DPoP opaque-dpop-token-0123456789",
    "basic": "Basic Z2F0ZXdheTpnYXRld2F5LXNlY3JldA==",
    "quoted": 'Bearer "abc"',
    "empty_bearer": "Bearer ",
}.items(): write("authorization_header", n, d)

# config: the whole input is tried as TOML and as JSON.
toml_cfg = f'''[authorization_server]
issuer = "{ISS}"
introspection_endpoint = "{ISS}/introspect"
client_id = "gateway"
client_secret = "s3cret"
dialect = "keycloak"
jwks_uri = "{ISS}/jwks"

[cache]
max_ttl = "300s"

[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
'''
json_cfg = json.dumps({"authorization_server": {"issuer": ISS, "introspection_endpoint": ISS + "/introspect",
    "client_id": "gateway", "client_secret_env": "SECRET", "dialect": "rfc7662"},
    "assertions": {"signing_key": open(os.path.join(KEYS, "edge-ed25519.pem")).read(), "kid": "edge-1", "max_ttl": "60s"},
    "admin": {"token": "admin-secret-0123456789"}, "routes": [{"path_prefix": "/"}]})
write("config", "keycloak_toml", toml_cfg.encode())
write("config", "rfc7662_json", json_cfg.encode())
write("config", "bad_duration_toml", toml_cfg.replace('"300s"', '"5 fortnights"').encode())

# revocation_body: the whole input is sent as application/json (with the admin token) and as secevent+jwt.
setk = key("set-ed25519.pem")
set_claims = {"iss": ISS, "aud": "gateway", "iat": T0, "jti": "set-1", "events": {
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked": {"subject": {"format": "opaque", "id": "alice"}}}}
for n, d in {
    "json_jti": json.dumps({"jti": "jti-1"}).encode(),
    "json_token": json.dumps({"token": "opaque-token-0123456789abcdef"}).encode(),
    "json_sub_until": json.dumps({"sub": "alice", "until": T0 + 600}).encode(),
    "set_wrong_key": sign(wrong_ed, {"alg": "EdDSA", "typ": "secevent+jwt"}, set_claims).encode(),
    "set_valid": sign(setk, {"alg": "EdDSA", "typ": "secevent+jwt"}, set_claims).encode(),
}.items(): write("revocation_body", n, d)

print(json.dumps({"keys": [jwk(key("as-ed25519.pem"), "as-ed"), jwk(key("as-es256.pem"), "as-es")]}))

# Positive controls for tests/smoke.rs (NOT corpus: they are validly signed with the AS keys, so
# the JWT dialects must forward them; they prove the fuzz harness's JWKS is wired correctly).
fx = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"); os.makedirs(fx, exist_ok=True)
as_ed, as_es = key("as-ed25519.pem"), key("as-es256.pem")
for n, d in {
    "valid_rfc9701": bytes([S200, CT_TIJWT, NOFLAGS]) + sign(as_ed, {"alg": "EdDSA", "typ": "token-introspection+jwt", "kid": "as-ed"}, r9701).encode(),
    "valid_curity": bytes([S200, CT_JWT, NOFLAGS]) + sign(as_es, {"alg": "ES256", "typ": "at+jwt", "kid": "as-es"}, at).encode(),
    "valid_keycloak": bytes([S200, CT_JSON, NOFLAGS]) + json.dumps({"active": True, "jwt": sign(as_ed, {"alg": "EdDSA", "typ": "at+jwt", "kid": "as-ed"}, at)}).encode(),
}.items(): open(os.path.join(fx, n), "wb").write(d)
