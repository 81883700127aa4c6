"""End-to-end: DPoP (RFC 9449) sender-constrained tokens from the real authorization server
(oidc-provider, tokens bound with `cnf.jkt`) through every gateway mode (phantom-gateway hosting
the edge component, phantom-gateway hosting the proxy component, and the proxy component under
`jco serve`):

- a DPoP-bound token in the `DPoP` scheme with a valid proof for the request is forwarded: the
  upstream gets the minted JWT (with the binding's `cnf.jkt`), never the opaque token nor the
  proof;
- every way of presenting it wrongly is 401 with a `DPoP` challenge (docs/configuration.md,
  decision table): as `Bearer` or with another key's proof (`invalid_token`, sender mismatch,
  §7.2); without a proof, with a replayed one, or one for another method, URI, token or time
  (`invalid_dpop_proof`, §4.3).

Each mode gets an AS, upstream and gateway its tests share; every test makes its own key and
token and counts what the upstream saw from where it started, so each runs alone or in any
order. The gateway has no `dpop.origins`, so a proof's `htu` is `http://<listen addr><path>`."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any, Iterator

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import harness
from fixture import dpop_proof, jwk_thumbprint

# edge: phantom-gateway hosting the edge component; proxy: phantom-gateway hosting the wasi:http
# proxy component (wasmtime-wasi-http, an instance per request); jco: the proxy component under
# `jco serve` (Node, one instance kept).
MODES = ["edge", "proxy", "jco"]


class Setup:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.auth = harness.AuthServer()
        self.upstream = harness.EchoUpstream()
        if mode == "jco":
            config = harness.config_toml(self.auth.issuer, self.upstream.url, admin=False)
            self.gw: harness.Gateway | harness.JcoServe = harness.JcoServe(config)
        else:
            self.gw = harness.Gateway(harness.config_toml(self.auth.issuer, self.upstream.url), mode)

    def bound_token(self) -> tuple[Any, str]:
        """A fresh P-256 key and an access token the AS bound to it."""
        key = ec.generate_private_key(ec.SECP256R1())
        return key, self.auth.dpop_token(key)

    def url(self, path: str) -> str:
        """The `htu` of a request for `path` here: the gateway's origin (what the client sends
        as Host) and the path without its query."""
        return self.gw.url + path.split("?", 1)[0]

    def dpop_get(self, path: str, token: str, proof: str | None,
                 scheme: str = "DPoP") -> harness.Response:
        """GET `path` with `Authorization: <scheme> <token>` and, unless None, `DPoP: <proof>`."""
        headers = {"authorization": f"{scheme} {token}"}
        if proof is not None:
            headers["dpop"] = proof
        return harness.request("GET", self.gw.url + path, headers)

    def close(self) -> None:
        self.gw.stop()
        self.upstream.stop()
        self.auth.stop()


@pytest.fixture(scope="module", params=MODES)
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    s = Setup(request.param)
    yield s
    s.close()


def edge_public_key() -> Any:
    """The minted JWTs' verification key (the committed test signing key, kid edge-1)."""
    key = serialization.load_pem_private_key(harness.EDGE_KEY_PATH.read_bytes(), None)
    return key.public_key()  # type: ignore[union-attr]


def assert_dpop_challenge(r: harness.Response, error: str) -> None:
    """401 with an RFC 9449 §7.1 challenge: the `DPoP` scheme, `error`, and the algorithms
    this edge takes for proofs."""
    assert r.status == 401, (r.status, r.body)
    www = r.headers.get("www-authenticate", "")
    assert www.startswith("DPoP "), www
    assert f'error="{error}"' in www, www
    assert 'algs="' in www and "ES256" in www, www
    assert r.json()["error"] == error, r.body


def test_a_bound_token_with_its_proof_reaches_upstream_as_a_minted_jwt(setup: Setup) -> None:
    """The whole DPoP path works against the real AS: oidc-provider binds the token to the
    client's key (`cnf.jkt`), the edge checks the proof (signature, htm, htu, ath, iat, jti) and
    the binding, and forwards the minted JWT (carrying `cnf.jkt`), with neither the opaque token
    nor the proof (the `dpop` header is stripped). A second request with a fresh proof also
    passes (a proof is per request, the token stays good)."""
    key, token = setup.bound_token()
    jkt = jwk_thumbprint(key)
    # The AS really bound it: without this, the test would not be about DPoP.
    info = setup.auth.introspect(token)
    assert info["active"] is True and info["token_type"] == "DPoP", info
    assert info["cnf"] == {"jkt": jkt}, info
    seen_before = len(setup.upstream.seen)
    for i in range(2):
        path = f"/orders/{i}?x=1"
        proof = dpop_proof(key, "GET", setup.url(path), token)
        r = setup.dpop_get(path, token, proof)
        assert r.status == 200, (r.status, r.body)
        seen = r.json()
        assert seen["path"] == path
        auth = seen["headers"]["authorization"]
        assert auth.startswith("Bearer ey"), auth
        minted = auth.removeprefix("Bearer ")
        assert pyjwt.get_unverified_header(minted)["typ"] == "at+jwt"
        claims = pyjwt.decode(minted, edge_public_key(), algorithms=["EdDSA"],
                              audience="orders-api", options={"require": ["exp", "iat", "aud"]})
        assert claims["client_id"] == "app" and claims["scope"] == "orders:read", claims
        assert claims["cnf"] == {"jkt": jkt}, claims  # the binding is carried over
        text = json.dumps(seen)
        assert token not in text, "the opaque token reached the upstream"
        assert "dpop" not in seen["headers"], seen["raw_headers"]
        assert proof not in text, "the DPoP proof reached the upstream"
    assert len(setup.upstream.seen) == seen_before + 2


def test_a_bound_token_sent_as_bearer_is_a_sender_mismatch(setup: Setup) -> None:
    """RFC 9449 §7.2: a DPoP-bound token presented as a Bearer token is refused, whether or not
    a (valid) proof comes along, with a `DPoP` challenge so the client learns the scheme."""
    key, token = setup.bound_token()
    seen = len(setup.upstream.seen)
    r = setup.dpop_get("/orders/1", token, None, scheme="Bearer")
    assert_dpop_challenge(r, "invalid_token")
    proof = dpop_proof(key, "GET", setup.url("/orders/1"), token)
    r = setup.dpop_get("/orders/1", token, proof, scheme="Bearer")
    assert_dpop_challenge(r, "invalid_token")
    assert len(setup.upstream.seen) == seen
    # The refusals were the presentation's, not the token's: it still works as DPoP.
    r = setup.dpop_get("/orders/1", token, dpop_proof(key, "GET", setup.url("/orders/1"), token))
    assert r.status == 200, (r.status, r.body)


def test_an_unbound_token_in_the_dpop_scheme_is_a_sender_mismatch(setup: Setup) -> None:
    """RFC 9449 §7.1: the `DPoP` scheme is for DPoP-bound tokens only; a Bearer token from the
    same AS with a valid proof is refused, not silently accepted as unbound."""
    key = ec.generate_private_key(ec.SECP256R1())
    token = setup.auth.token()
    seen = len(setup.upstream.seen)
    r = setup.dpop_get("/orders/1", token, dpop_proof(key, "GET", setup.url("/orders/1"), token))
    assert_dpop_challenge(r, "invalid_token")
    assert len(setup.upstream.seen) == seen


def test_a_bound_token_without_a_proof_is_refused(setup: Setup) -> None:
    """RFC 9449 §4.3: the `DPoP` scheme needs a proof on every request."""
    _, token = setup.bound_token()
    seen = len(setup.upstream.seen)
    r = setup.dpop_get("/orders/1", token, None)
    assert_dpop_challenge(r, "invalid_dpop_proof")
    assert len(setup.upstream.seen) == seen


def test_a_replayed_proof_is_refused(setup: Setup, request: pytest.FixtureRequest) -> None:
    """RFC 9449 §11.1: a proof's `jti` is single-use: the same proof (same request, still
    fresh) sent again is refused, though the first use went through."""
    if setup.mode == "proxy":
        # Known gap, kept visible: strict, so the day replays are caught here this fails until
        # the marker goes.
        request.applymarker(pytest.mark.xfail(strict=True, reason=(
            "phantom-gateway's proxy mode runs an instance per request: the DPoP replay set, "
            "like the cache, is not kept between requests, so a replayed proof passes")))
    key, token = setup.bound_token()
    proof = dpop_proof(key, "GET", setup.url("/orders/7"), token)
    seen = len(setup.upstream.seen)
    r = setup.dpop_get("/orders/7", token, proof)
    assert r.status == 200, (r.status, r.body)
    r = setup.dpop_get("/orders/7", token, proof)
    assert_dpop_challenge(r, "invalid_dpop_proof")
    assert len(setup.upstream.seen) == seen + 1


def test_a_proof_signed_by_another_key_is_a_sender_mismatch(setup: Setup) -> None:
    """The proof is valid in itself (its own `jwk`, right htm/htu/ath) but made with a key the
    token is not bound to: someone who stole the token cannot use it with their own key."""
    _, token = setup.bound_token()
    thief = ec.generate_private_key(ec.SECP256R1())
    seen = len(setup.upstream.seen)
    r = setup.dpop_get("/orders/1", token, dpop_proof(thief, "GET", setup.url("/orders/1"), token))
    assert_dpop_challenge(r, "invalid_token")
    assert len(setup.upstream.seen) == seen


def _ath_of(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


@pytest.mark.parametrize("wrong", ["htm", "htu path", "htu origin", "htu scheme", "ath", "iat"])
def test_a_proof_for_another_request_is_refused(setup: Setup, wrong: str) -> None:
    """RFC 9449 §4.3: the proof must be for this request: its method (`htm`), its URI (`htu`:
    origin and path), this token (`ath`), and recent (`iat` within `dpop.proof_max_age`, 60 s).
    Each proof below is signed by the token's own key and differs from a valid one only in
    `wrong`."""
    key, token = setup.bound_token()
    other_token = setup.auth.dpop_token(key)
    assert _ath_of(other_token) != _ath_of(token)
    path = "/orders/1"
    proof = {
        "htm": lambda: dpop_proof(key, "POST", setup.url(path), token),
        "htu path": lambda: dpop_proof(key, "GET", setup.url("/orders/2"), token),
        "htu origin": lambda: dpop_proof(key, "GET", f"http://api.example{path}", token),
        "htu scheme": lambda: dpop_proof(
            key, "GET", setup.url(path).replace("http://", "https://", 1), token),
        "ath": lambda: dpop_proof(key, "GET", setup.url(path), other_token),
        "iat": lambda: dpop_proof(key, "GET", setup.url(path), token, iat=int(time.time()) - 600),
    }[wrong]()
    seen = len(setup.upstream.seen)
    r = setup.dpop_get(path, token, proof)
    assert_dpop_challenge(r, "invalid_dpop_proof")
    assert len(setup.upstream.seen) == seen
    # The same request with a right proof passes: the refusal was the proof's.
    r = setup.dpop_get(path, token, dpop_proof(key, "GET", setup.url(path), token))
    assert r.status == 200, (r.status, r.body)
