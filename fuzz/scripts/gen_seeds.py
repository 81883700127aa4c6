#!/usr/bin/env python3
"""Regenerates fuzz/corpus/* seeds and prints the AS JWKS embedded in src/lib.rs.

Run from fuzz/: python3 scripts/gen_seeds.py [target ...]   (needs the `cryptography` package).
With target names, only those corpus directories (and their fixtures) are written: ES256 signatures
of the first four targets' seeds are randomised, so regenerating them changes their bytes.
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

def sign(k, header, claims, deterministic=False):
    inp = (b64(json.dumps(header, separators=(",", ":")).encode()) + "." +
           b64(json.dumps(claims, separators=(",", ":")).encode())).encode()
    if isinstance(k, ed25519.Ed25519PrivateKey):
        sig = k.sign(inp)
    else:
        r, s = decode_dss_signature(k.sign(inp, ec.ECDSA(hashes.SHA256(), deterministic_signing=deterministic)))
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return inp.decode() + "." + b64(sig)

claims = {"active": True, "scope": "orders:read", "client_id": "app", "sub": "alice", "aud": "orders-api",
          "iss": ISS, "exp": T0 + 3600, "iat": T0, "jti": "jti-1", "token_type": "Bearer"}
at = {k: v for k, v in claims.items() if k != "active"}
wrong_ed, wrong_es = key("set-ed25519.pem"), key("edge-es256.pem")

WANT = set(sys.argv[1:])
def wanted(target): return not WANT or target in WANT

def write(target, name, data):
    if not wanted(target): return
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

if not WANT: print(json.dumps({"keys": [jwk(key("as-ed25519.pem"), "as-ed"), jwk(key("as-es256.pem"), "as-es")]}))

# Positive controls for tests/smoke.rs (NOT corpus: they are validly signed with the AS keys, so
# the JWT dialects must forward them; they prove the fuzz harness's JWKS is wired correctly).
fx = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"); os.makedirs(fx, exist_ok=True)
as_ed, as_es = key("as-ed25519.pem"), key("as-es256.pem")
for n, d in {
    "valid_rfc9701": bytes([S200, CT_TIJWT, NOFLAGS]) + sign(as_ed, {"alg": "EdDSA", "typ": "token-introspection+jwt", "kid": "as-ed"}, r9701).encode(),
    "valid_curity": bytes([S200, CT_JWT, NOFLAGS]) + sign(as_es, {"alg": "ES256", "typ": "at+jwt", "kid": "as-es"}, at).encode(),
    "valid_keycloak": bytes([S200, CT_JSON, NOFLAGS]) + json.dumps({"active": True, "jwt": sign(as_ed, {"alg": "EdDSA", "typ": "at+jwt", "kid": "as-ed"}, at)}).encode(),
}.items():
    if wanted("introspection_response"): open(os.path.join(fx, n), "wb").write(d)

# ---------------------------------------------------------------------------------------------
# The five targets added for "Hardening" item 3. ES256 signatures are deterministic (RFC 6979),
# so `python3 scripts/gen_seeds.py dpop_proof security_event jwks_document path_routing
# shared_messages` rewrites the same bytes (except the random RSA modulus of jwks_document/rsa_key). Rule for every seed below: no input may be one that
# the target's assertion must let through (a validly signed, fresh proof for the fuzzed request; a
# SET signed by the SET key that the core must accept; a JWKS holding the AS's real public keys;
# a split value that completes a valid JWT with the harness's signature). Positive controls for
# those go to tests/fixtures/, which libFuzzer never reads.
import hashlib
def det(k, header, claims): return sign(k, header, claims, deterministic=True)
def pub_jwk(k): return {m: v for m, v in jwk(k, "x").items() if m in ("kty", "crv", "x", "y")}
def thumb(k):
    j = pub_jwk(k)
    return b64(hashlib.sha256(json.dumps(j, sort_keys=True, separators=(",", ":")).encode()).digest())

# dpop_proof: the DPoP header value(s) (NUL separates several headers) of GET
# https://api.example/orders/1 with `Authorization: DPoP <DPOP_TOKEN>`; the cached token is bound
# to client-dpop-es256 (cnf.jkt printed below, DPOP_JKT in src/lib.rs).
DPOP_TOKEN = "dpop-bound-token-0123456789abcdef"
HTU = "https://api.example/orders/1"
client = key("client-dpop-es256.pem")
ath = b64(hashlib.sha256(DPOP_TOKEN.encode()).digest())
def proof(k=client, htm="GET", htu=HTU, iat=T0, jti="p-1", ath=ath, typ="dpop+jwt", jwk_=None, alg=None):
    h = {"alg": alg or ("EdDSA" if isinstance(k, ed25519.Ed25519PrivateKey) else "ES256"), "typ": typ,
         "jwk": jwk_ if jwk_ is not None else pub_jwk(k)}
    c = {"htm": htm, "htu": htu, "iat": iat, "jti": jti}
    if ath is not None: c["ath"] = ath
    return det(k, h, c)
unsigned = lambda h, c: b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode()) + "."
for n, d in {
    # Passes every proof check, but its key is not the one the token is bound to (SenderMismatch).
    "other_key_es256": proof(k=key("edge-es256.pem"), jti="p-2"),
    "other_key_ed25519": proof(k=key("set-ed25519.pem"), jti="p-3"),
    # Signed by the bound key, each wrong in one way.
    "wrong_htm": proof(htm="POST", jti="p-4"),
    "wrong_htu_path": proof(htu="https://api.example/orders/2", jti="p-5"),
    "wrong_htu_host": proof(htu="https://evil.example/orders/1", jti="p-6"),
    "stale_iat": proof(iat=T0 - 3600, jti="p-7"),
    "future_iat": proof(iat=T0 + 3600, jti="p-8"),
    "no_ath": proof(ath=None, jti="p-9"),
    "wrong_ath": proof(ath=b64(hashlib.sha256(b"another-token").digest()), jti="p-10"),
    "typ_jwt": proof(typ="JWT", jti="p-11"),
    "private_jwk": proof(jwk_=dict(pub_jwk(client), d="AAAA"), jti="p-12"),
    "jwk_other_key": proof(jwk_=pub_jwk(key("edge-es256.pem")), jti="p-13"),
    "alg_none": unsigned({"alg": "none", "typ": "dpop+jwt", "jwk": pub_jwk(client)},
                         {"htm": "GET", "htu": HTU, "iat": T0, "jti": "p-14", "ath": ath}),
    "two_headers": proof(k=key("edge-es256.pem"), jti="p-15") + "\0" + proof(htm="POST", jti="p-16"),
    "garbage": "x.y.z",
    "empty": "",
}.items(): write("dpop_proof", n, d)

# security_event: the bytes as a SET (handle_security_event) and as an application/secevent+jwt
# admin body. Nothing here may verify AND pass the claim checks: signed by the SET key only when a
# claim is refused (typ, iss, iat, events), otherwise signed by another key or not at all.
setk, hdr = key("set-ed25519.pem"), {"alg": "EdDSA", "typ": "secevent+jwt"}
sess = {"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {"subject": {"format": "opaque", "id": "alice"}}}
base = {"iss": ISS, "aud": "gateway", "iat": T0, "jti": "set-1", "events": sess}
for n, d in {
    "wrong_key": det(key("edge-ed25519.pem"), hdr, base),
    "wrong_key_risc": det(key("edge-ed25519.pem"), hdr, dict(base, events={
        "https://schemas.openid.net/secevent/risc/event-type/account-disabled": {"subject": {"format": "iss_sub", "iss": ISS, "sub": "alice"}}})),
    "alg_none": unsigned({"alg": "none", "typ": "secevent+jwt"}, base),
    "alg_hs256": (lambda inp: inp + "." + b64(__import__("hmac").new(open(os.path.join(KEYS, "set-ed25519.pub.pem"), "rb").read(), inp.encode(), hashlib.sha256).digest()))(
        b64(json.dumps({"alg": "HS256", "typ": "secevent+jwt"}).encode()) + "." + b64(json.dumps(base).encode())),
    "set_key_typ_jwt": det(setk, {"alg": "EdDSA", "typ": "JWT"}, base),
    "set_key_wrong_iss": det(setk, hdr, dict(base, iss="https://evil.example")),
    "set_key_old_iat": det(setk, hdr, dict(base, iat=T0 - 3 * 86400)),
    "set_key_future_iat": det(setk, hdr, dict(base, iat=T0 + 3600)),
    "set_key_no_events": det(setk, hdr, dict(base, events={})),
    "set_key_bad_subject": det(setk, hdr, dict(base, events={next(iter(sess)): {"subject": {"format": "email", "email": "a@b"}}})),
    "two_parts": b64(json.dumps(hdr).encode()) + "." + b64(json.dumps(base).encode()),
    "json_selector": json.dumps({"jti": "jti-1"}),
}.items(): write("security_event", n, d)

# jwks_document: the bytes as the AS's JWKS (at start and after an unknown kid). The AS answers
# are signed by as-ed25519 (kid as-ed) and as-es256 (kid as-es); every key here is another key,
# most under those kids.
def wrong(k, kid, **extra): return dict(jwk(k, kid), **extra)
oed, oes = key("set-ed25519.pem"), key("edge-es256.pem")
jw = lambda *keys: json.dumps({"keys": list(keys)})
from cryptography.hazmat.primitives.asymmetric import rsa
rsa_k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
rn = rsa_k.public_key().public_numbers()
rsa_jwk = {"kty": "RSA", "n": b64(rn.n.to_bytes(256, "big")), "e": "AQAB", "kid": "as-es", "alg": "RS256"}
for n, d in {
    "wrong_keys_right_kids": jw(wrong(oed, "as-ed"), wrong(oes, "as-es")),
    "wrong_ed_only": jw(wrong(oed, "as-ed")),
    "wrong_es_only": jw(wrong(oes, "as-es")),
    "no_kid": jw({m: v for m, v in wrong(oed, "x").items() if m != "kid"}),
    "alg_mismatch": jw(wrong(oed, "as-ed", alg="ES256"), wrong(oes, "as-es", alg="EdDSA")),
    "use_enc": jw(wrong(oes, "as-es", use="enc")),
    "oct_key": jw({"kty": "oct", "k": b64(b"shared-secret-for-hs256-0123456"), "kid": "as-ed", "alg": "HS256"}),
    "rsa_key": jw(rsa_jwk),
    "ec_off_curve": jw(dict(wrong(oes, "as-es"), y=b64(bytes(31) + b"\x01"))),
    "ed_small_order": jw(dict(wrong(oed, "as-ed"), x=b64(b"\x01" + bytes(31)))),
    "ed_short_x": jw(dict(wrong(oed, "as-ed"), x="AAAA")),
    "private_parts": jw(dict(wrong(oed, "as-ed"), d=b64(bytes(32)))),
    "duplicate_kids": jw(wrong(oed, "as-ed"), wrong(key("edge-ed25519.pem"), "as-ed")),
    "empty_keys": '{"keys": []}',
    "not_an_object": "[]",
    "keys_not_a_list": '{"keys": {"kid": "as-ed"}}',
}.items(): write("jwks_document", n, d)

# path_routing: [method NUL] request target, against routes /orders, /orders/write, /admin and a
# catch-all / (the cached token holds only the catch-all's scope).
for n, d in {
    "root": "/", "public": "/public/x?y=1", "orders": "/orders/1", "orders_write_post": "POST\0/orders/write",
    "admin": "/admin", "admin_upper": "/ADMIN/x", "dot_dot": "/x/../admin", "encoded_dot_dot": "/x/%2e%2e/admin",
    "encoded_letter": "/%61dmin", "matrix": "/admin;jsessionid=1", "dot_dot_semicolon": "/x/..;/admin",
    "trailing_dot": "/admin./x", "dotless_i": "/adm\u0131n", "encoded_slash": "/x%2Fadmin",
    "query_admin": "/x?next=/admin", "orders_prefix_lookalike": "/ordersX/write", "double_slash": "//admin",
    "backslash": "/x\\..\\admin", "unicode_encoded": "/adm%C4%B1n",
}.items(): write("path_routing", n, d)

# shared_messages: the bytes as a revocation message from another instance (Revocation::from_json,
# Origin::Shared) and as the split-mode store value (header.payload) for a request whose
# signature (SPLIT_SIGNATURE in src/lib.rs) is no signature of anything.
SHARED_TOKEN = "shared-cached-token-0123456789abcd"
# Fingerprint of SHARED_TOKEN for the harness edge (seed [7; 32]): `cargo test -- --ignored
# print_shared_fingerprint --nocapture` in fuzz/ prints it.
SHARED_FP = "88670c11ca4c289fe301a4d3a813da90"
curity_jwt = sign(as_ed, {"alg": "EdDSA", "typ": "at+jwt", "kid": "as-ed"}, at)
hp = curity_jwt.rsplit(".", 1)[0]
for n, d in {
    "jti": json.dumps({"jti": "jti-1"}),
    "jti_until": json.dumps({"jti": "jti-1", "until": T0 + 600}),
    "sub_since": json.dumps({"sub": "alice", "since": T0 + 10, "keep_until": T0 + 7200}),
    "sub_before": json.dumps({"sub": "alice", "since": T0 - 10}),
    "client_id": json.dumps({"client_id": "app", "keep_until": T0 + 600}),
    "sid": json.dumps({"sid": "s-1"}),
    "token": json.dumps({"token": SHARED_TOKEN}),
    "fingerprint": json.dumps({"fingerprint": SHARED_FP}),
    "until_past": json.dumps({"jti": "jti-1", "until": 1}),
    "two_selectors": json.dumps({"jti": "jti-1", "sub": "alice"}),
    "split_as_value": hp,
    "split_unknown_kid": b64(json.dumps({"alg": "EdDSA", "typ": "at+jwt", "kid": "nope"}).encode()) + "." + hp.split(".")[1],
    "split_alg_none": b64(json.dumps({"alg": "none", "typ": "at+jwt"}).encode()) + "." + hp.split(".")[1],
    "split_three_parts": curity_jwt,
}.items(): write("shared_messages", n, d)

if wanted("dpop_proof"):
    print("DPOP_JKT =", thumb(client))
    # Positive controls (tests/smoke.rs): fresh proofs for the fuzzed request, signed by the bound key.
    for n, d in {
        "dpop_valid_proof": proof(jti="p-valid"),
        "dpop_setup_proof": proof(jti="p-setup"),
    }.items(): open(os.path.join(fx, n), "wb").write(d.encode())

# Copies of seeds tests/smoke.rs reads by name (`make fuzz-campaign` renames corpus files: cmin
# names them by content hash).
for target, seed, copy in [("introspection_response", "rfc7662_active", "rfc7662_active"),
                           ("revocation_body", "set_valid", "set_valid"),
                           ("jwks_document", "wrong_keys_right_kids", "jwks_wrong_keys_right_kids")]:
    if wanted(target):
        open(os.path.join(fx, copy), "wb").write(open(os.path.join(OUT, target, seed), "rb").read())
