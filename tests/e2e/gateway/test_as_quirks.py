"""End-to-end: what a real authorization server does that a fake one does not, through every
gateway mode (phantom-gateway hosting the edge component, phantom-gateway hosting the proxy
component, and the proxy component under `jco serve`):

- oidc-provider answers a JWT-shaped bearer token it did not issue with
  `400 {"error":"unsupported_token_type"}`: the client gets 401 invalid_token, not an outage;
- the edge started before its authorization server (pods, restarts: nobody controls the order)
  serves valid tokens within a few seconds of the server coming up, not after the unknown-kid
  refetch allowance (`jwks_min_refresh`, 30 s) has run out.

Each test starts its own processes."""

from __future__ import annotations

import time
from typing import Iterator

import pytest

import harness
from fixture import free_port

MODES = ["edge", "proxy", "jco"]

# A JWT-shaped token (header.payload.signature) that oidc-provider refuses to introspect.
JWT_SHAPED = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo0MTAyNDQ0ODAwfQ"
              ".c2lnbmF0dXJlLW9mLW5vLWtleS1hdC1hbGw")


def start_gateway(mode: str, issuer: str, upstream: str) -> harness.Gateway | harness.JcoServe:
    if mode == "jco":
        return harness.JcoServe(harness.config_toml(issuer, upstream, admin=False))
    return harness.Gateway(harness.config_toml(issuer, upstream), mode)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def upstream() -> Iterator[harness.EchoUpstream]:
    u = harness.EchoUpstream()
    yield u
    u.stop()


def test_a_jwt_shaped_token_is_invalid_not_an_outage(mode: str,
                                                     upstream: harness.EchoUpstream) -> None:
    auth = harness.AuthServer()
    gw = start_gateway(mode, auth.issuer, upstream.url)
    try:
        for _ in range(2):  # the second answer comes from the negative cache (edge, jco)
            r = gw.get("/orders/1", JWT_SHAPED)
            assert r.status == 401, (r.status, r.body)
            assert 'error="invalid_token"' in r.headers.get("www-authenticate", ""), r.headers
        assert upstream.seen == []
        # A valid token still works, so the 401 above was the token's, not the edge's.
        r = gw.get("/orders/2", auth.token())
        assert r.status == 200, (r.status, r.body)
        kinds = [kind for kind, _ in harness.audit_events(gw.logs())]
        assert "as_failure" not in kinds, "a refused token is not an authorization-server failure"
        assert "introspected" in kinds, kinds
        if mode != "proxy":  # phantom-gateway's proxy mode runs an instance per request: no cache
            assert kinds.count("introspected") == 2, kinds  # the refused token, the valid one
            assert "negative_hit" in kinds, kinds
    finally:
        gw.stop()
        auth.stop()


def test_an_edge_started_before_its_authorization_server_recovers(
        mode: str, upstream: harness.EchoUpstream) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    gw = start_gateway(mode, issuer, upstream.url)
    auth = None
    try:
        # The AS is not there yet: fail closed (its JWKS fetch at start fails too).
        r = gw.get("/orders/1", "some-opaque-token")
        assert r.status == 503, (r.status, r.body)
        time.sleep(3)  # as in the report: the AS came up 3 s after the edge
        auth = harness.AuthServer(port=port)
        assert auth.issuer == issuer
        up = time.monotonic()
        token = auth.token()
        statuses = []
        # Before the fix: 503 "signing key unknown and JWKS refresh rate-limited" for the rest of
        # jwks_min_refresh (30 s). The bound here is only far below that, not a benchmark.
        while time.monotonic() - up < 10:
            r = gw.get("/orders/2", token)
            statuses.append(r.status)
            if r.status == 200:
                break
            assert r.status == 503, (r.status, r.body)
            time.sleep(0.2)
        assert statuses[-1] == 200, f"still {statuses[-1]} 10 s after the AS came up: {statuses}"
        seen = upstream.seen[-1]
        assert token not in str(seen)
        assert seen["headers"]["authorization"].startswith("Bearer ey")
    finally:
        gw.stop()
        if auth is not None:
            auth.stop()
