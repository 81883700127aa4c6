"""End-to-end: phantom-gateway (both modes) against the real authorization server
(oidc-provider) and an echo upstream; and the proxy component under a second wasi:http host,
`jco serve` (mode "jco"). Each mode gets an AS, upstream and gateway its tests share (`setup`);
a test that stops one of them or revokes more than its own tokens gets its own (`own`). Every
test makes its own tokens and counts what the upstream saw from where it started, so each runs
alone or in any order."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import re
import signal
import time
import urllib.parse
from typing import Any, Iterator

import jwt as pyjwt
import pytest

import harness

# edge: phantom-gateway hosting the edge component; proxy: phantom-gateway hosting the wasi:http
# proxy component (wasmtime-wasi-http); jco: the same proxy component under `jco serve` (Node).
MODES = ["edge", "proxy", "jco"]


class Setup:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.tokens: list[str] = []
        self.auth = harness.AuthServer()
        self.upstream = harness.EchoUpstream()
        if mode == "jco":
            config = harness.config_toml(self.auth.issuer, self.upstream.url, admin=False)
            self.gw: harness.Gateway | harness.JcoServe = harness.JcoServe(config)
        else:
            self.gw = harness.Gateway(harness.config_toml(self.auth.issuer, self.upstream.url), mode)

    def token(self, scope: str = "orders:read") -> str:
        t = self.auth.token(scope)
        self.tokens.append(t)
        return t

    def close(self) -> None:
        self.gw.stop()
        self.upstream.stop()
        self.auth.stop()


@pytest.fixture(scope="module", params=MODES)
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    s = Setup(request.param)
    yield s
    s.close()


@pytest.fixture
def own(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """A setup for this test alone, in the mode it is parametrized with (`indirect`)."""
    s = Setup(request.param)
    yield s
    s.close()


# A mode without an admin listener nor state kept between requests: nothing to revoke in.
NO_STATE = pytest.param("proxy", marks=pytest.mark.skip(
    reason="proxy component: one instance per request, no admin listener, nothing kept"))


def metric(s: Setup, name: str) -> float:
    assert s.gw.admin_url is not None
    text = harness.request("GET", s.gw.admin_url + "/metrics").body.decode()
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} not in metrics"
    return float(m.group(1))


def edge_jwks(s: Setup) -> dict[str, Any]:
    if s.gw.admin_url is not None:
        r = harness.request("GET", s.gw.admin_url + "/jwks")
        assert r.status == 200
        return r.json()
    # proxy mode has no admin listener: derive the JWKS from the same committed key
    from cryptography.hazmat.primitives import serialization
    key = serialization.load_pem_private_key(harness.EDGE_KEY_PATH.read_bytes(), None)
    jwk = json.loads(pyjwt.algorithms.OKPAlgorithm.to_jwk(key.public_key()))
    jwk["kid"] = "edge-1"
    return {"keys": [jwk]}


def test_valid_token_reaches_upstream_as_a_verified_jwt(setup: Setup) -> None:
    token = setup.token()
    # A DPoP header (any value: with a Bearer token no proof is checked) must be stripped; the
    # other header shows the upstream does get the client's headers.
    r = setup.gw.get("/orders/42?x=1", token,
                     headers={"DPoP": "dpop-proof-that-must-not-arrive", "X-Client-Kept": "yes"})
    assert r.status == 200, r.body
    seen = r.json()
    assert seen["path"] == "/orders/42?x=1"
    assert seen["headers"].get("x-client-kept") == "yes", seen["headers"]
    auth = seen["headers"]["authorization"]
    assert auth.startswith("Bearer ")
    jwt_text = auth.removeprefix("Bearer ")
    assert jwt_text.count(".") == 2
    keys = {k["kid"]: pyjwt.PyJWK(k) for k in edge_jwks(setup)["keys"]}
    header = pyjwt.get_unverified_header(jwt_text)
    assert header["typ"] == "at+jwt" and header["alg"] == "EdDSA"
    claims = pyjwt.decode(jwt_text, keys[header["kid"]], algorithms=["EdDSA"],
                          audience="orders-api", options={"require": ["exp", "iat", "aud"]})
    assert claims["scope"] == "orders:read"
    assert claims["client_id"] == "app"
    assert claims["exp"] <= time.time() + 61  # assertions.max_ttl = 60s
    # the opaque token never reaches the upstream, in any header or the path
    assert token not in json.dumps(seen)
    assert "dpop" not in seen["headers"], seen["raw_headers"]
    assert "dpop-proof-that-must-not-arrive" not in json.dumps(seen)


def test_missing_token_is_401_without_error_code(setup: Setup) -> None:
    seen = len(setup.upstream.seen)
    r = setup.gw.get("/orders/1")
    assert r.status == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="phantom-edge"'
    assert len(setup.upstream.seen) == seen  # nothing reached the upstream


def test_malformed_header_is_400(setup: Setup) -> None:
    seen = len(setup.upstream.seen)
    r = setup.gw.get("/orders/1", headers={"authorization": "Bearer a b c"})
    assert r.status == 400
    assert 'error="invalid_request"' in r.headers["www-authenticate"]
    assert r.json()["error"] == "invalid_request"
    assert len(setup.upstream.seen) == seen


def test_repeated_authorization_header_is_400(setup: Setup) -> None:
    # The gateway hands the component every Authorization value, not just the first.
    token = setup.token()
    u = urllib.parse.urlsplit(setup.gw.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.putrequest("GET", "/orders/1")
        conn.putheader("Authorization", f"Bearer {token}")
        conn.putheader("Authorization", "Bearer second-token")
        conn.endheaders()
        r = conn.getresponse()
        assert r.status == 400
        assert 'error="invalid_request"' in (r.getheader("www-authenticate") or "")
        r.read()
    finally:
        conn.close()


def test_unknown_token_is_401_invalid_token(setup: Setup) -> None:
    bogus = "Q" * 43
    setup.tokens.append(bogus)
    seen = len(setup.upstream.seen)
    r = setup.gw.get("/orders/1", bogus)
    assert r.status == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert len(setup.upstream.seen) == seen


def test_insufficient_scope_is_403_with_scope(setup: Setup) -> None:
    token = setup.token("orders:read")
    r = setup.gw.get("/orders/write/9", token)
    assert r.status == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="orders:write"' in r.headers["www-authenticate"]
    both = setup.token("orders:read orders:write")
    assert setup.gw.get("/orders/write/9", both).status == 200


def test_path_an_upstream_could_resolve_elsewhere_is_400(setup: Setup) -> None:
    # /orders/../orders/write/9 routes as /orders (orders:read) but names /orders/write/9
    # (orders:write) once an upstream resolves it (as do the case-folded, decoded and
    # ;-parameter forms for lenient routers): refused before routing. Sent raw, as written.
    token = setup.token("orders:read")
    u = urllib.parse.urlsplit(setup.gw.url)
    seen = len(setup.upstream.seen)
    for target in ["/orders/../orders/write/9", "/orders/%2e%2e/orders/write/9",
                   "/orders%2Fwrite/9", "//orders/1", "/orders/WRITE/9", "/orders/%77rite/9",
                   "/orders/write;x/9"]:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        try:
            conn.putrequest("GET", target, skip_accept_encoding=True)
            conn.putheader("Authorization", f"Bearer {token}")
            conn.endheaders()
            r = conn.getresponse()
            assert r.status == 400, (target, r.status)
            assert 'error="invalid_request"' in (r.getheader("www-authenticate") or ""), target
            r.read()
        finally:
            conn.close()
    assert len(setup.upstream.seen) == seen  # nothing reached the upstream
    assert setup.gw.get("/orders/1", token).status == 200


def test_unrouted_path_is_404(setup: Setup) -> None:
    assert setup.gw.get("/admin", setup.token()).status == 404


def test_concurrent_misses_introspect_once(setup: Setup) -> None:
    if setup.mode != "edge":
        pytest.skip("proxy component: one instance per request, no shared cache to coalesce in")
    token = setup.token()
    before = metric(setup, "phantom_edge_introspections_total")
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(lambda _: setup.gw.get("/orders/7", token).status, range(100)))
    assert statuses == [200] * 100
    assert metric(setup, "phantom_edge_introspections_total") - before == 1


def test_audit_lines_carry_the_level_they_are_logged_at(setup: Setup) -> None:
    """Debug logging on (RUST_LOG=debug; PHANTOM_EDGE_AUDIT_LEVEL=debug under jco): the routine
    per-request events are built and logged, each with the core's level of its kind."""
    wants = (("cache_miss", "debug"), ("rejected", "info"))
    before = {want: harness.audit_events(setup.gw.logs()).count(want) for want in wants}
    token = setup.token()  # never seen: a cache miss
    assert setup.gw.get("/orders/audit", token).status == 200
    assert setup.gw.get("/orders/audit", None).status == 401
    for want in wants:
        assert harness.wait_until(
            lambda: harness.audit_events(setup.gw.logs()).count(want) > before[want], 5), want


def test_revoked_token_is_refused_at_once(setup: Setup) -> None:
    token = setup.token()
    assert setup.gw.get("/orders/5", token).status == 200
    setup.auth.revoke(token)
    if setup.mode == "edge":
        # cached: still allowed until the push reaches the admin listener
        assert setup.gw.get("/orders/5", token).status == 200
        assert setup.gw.revoke({"token": token}, admin_token="wrong-admin-token-xxxx").status == 401
        bad = harness.request("POST", setup.gw.admin_url + "/revocations", {
            "authorization": f"Bearer {harness.ADMIN_TOKEN}",
            "content-type": "application/json"}, b'{"nope": 1}')
        assert bad.status == 400 and "error" in bad.json()
        assert setup.gw.revoke({"token": token}).status == 204
    elif setup.mode == "jco":
        # jco serve keeps one instance: the proxy component's cache serves the token until the
        # revocation reaches its in-path route
        assert setup.gw.get("/orders/5", token).status == 200
        assert setup.gw.revoke({"token": token}, admin_token="wrong-admin-token-xxxx").status == 401
        assert setup.gw.revoke({"token": token}).status == 204
    r = setup.gw.get("/orders/5", token)
    assert r.status == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]


@pytest.mark.parametrize("own", ["edge", NO_STATE, "jco"], indirect=True)
def test_revocation_by_client_id_covers_every_token(own: Setup) -> None:
    """Revokes every token of the AS's only client: a setup of its own, so no other test's
    tokens are refused. Edge mode through the admin listener, jco through the in-path route."""
    t1, t2 = own.token(), own.token()
    assert own.gw.get("/orders/1", t1).status == 200  # cached
    assert own.gw.revoke({"client_id": "app", "until": int(time.time()) + 600}).status == 204
    assert own.gw.get("/orders/1", t1).status == 401
    assert own.gw.get("/orders/1", t2).status == 401  # never seen before the revocation


def test_admin_health_and_metrics(setup: Setup) -> None:
    if setup.mode != "edge":
        pytest.skip("the proxy component has no admin listener")
    assert harness.request("GET", setup.gw.admin_url + "/healthz").status == 200
    m = harness.request("GET", setup.gw.admin_url + "/metrics")
    assert m.status == 200 and m.headers["content-type"].startswith("text/plain")
    before = metric(setup, "phantom_edge_revocations_total")
    assert setup.gw.revoke({"token": setup.token()}).status == 204
    assert metric(setup, "phantom_edge_revocations_total") == before + 1




@pytest.mark.parametrize("own", MODES, indirect=True)
def test_authorization_server_down_is_503(own: Setup) -> None:
    """Stops the AS: a setup of its own."""
    cached = own.token()
    assert own.gw.get("/orders/3", cached).status == 200
    fresh = own.token()
    seen = len(own.upstream.seen)
    own.auth.stop()
    r = own.gw.get("/orders/3", fresh)
    assert r.status == 503
    assert r.json()["error"] == "temporarily_unavailable"
    assert len(own.upstream.seen) == seen
    if own.mode != "proxy":
        # one edge (jco serve keeps one instance): a token introspected before the AS went away
        # is still served from its cache (proxy mode has none: one instance per request)
        assert own.gw.get("/orders/3", cached).status == 200
        assert len(own.upstream.seen) == seen + 1


@pytest.mark.parametrize("own", MODES, indirect=True)
def test_no_raw_token_in_logs_and_clean_shutdown(own: Setup) -> None:
    """Tokens forwarded, unknown, of too small a scope and revoked at the AS go through the
    gateway, which is then stopped (a setup of its own): its debug logs hold the audit events
    of those requests, and none of the tokens."""
    ok, narrow, revoked = own.token(), own.token("orders:read"), own.token()
    bogus = "R" * 43
    own.tokens.append(bogus)
    own.auth.revoke(revoked)
    assert own.gw.get("/orders/1", ok).status == 200
    assert own.gw.get("/orders/write/1", narrow).status == 403
    assert own.gw.get("/orders/1", revoked).status == 401
    assert own.gw.get("/orders/1", bogus).status == 401
    assert own.gw.get("/orders/1", None).status == 401
    wants = {("cache_miss", "debug"), ("rejected", "info")}
    harness.wait_until(lambda: wants <= set(harness.audit_events(own.gw.logs())), 5)
    if own.mode == "jco":
        own.gw.stop()  # jco's own process: its exit code is not ours to check
    else:
        own.gw.proc.send_signal(signal.SIGTERM)
        assert own.gw.proc.wait(15) == 0
    logs = own.gw.logs()
    # The logs hold what the requests above did, so the scan below reads real output.
    assert wants <= set(harness.audit_events(logs)), harness.audit_events(logs)
    if own.mode != "jco":
        assert len(logs) > 1000, "expected debug logs to scan"
    for t in own.tokens:
        assert t not in logs


@pytest.mark.parametrize("mode", ["edge", "proxy"])
def test_audit_events_below_the_log_level_are_not_logged(mode: str) -> None:
    """RUST_LOG=info: the gateway sets the core's audit level to info (in proxy mode through
    PHANTOM_EDGE_AUDIT_LEVEL), so routine events are not even built; rejections still are."""
    auth = harness.AuthServer()
    upstream = harness.EchoUpstream()
    gw = harness.Gateway(harness.config_toml(auth.issuer, upstream.url), mode, env={"RUST_LOG": "info"})
    try:
        token = auth.token()
        assert gw.get("/orders/1", token).status == 200
        assert gw.get("/orders/1", token).status == 200
        assert gw.get("/orders/1", None).status == 401
        assert harness.wait_until(lambda: ("rejected", "info") in harness.audit_events(gw.logs()), 5)
        kinds = {kind for kind, _ in harness.audit_events(gw.logs())}
        assert not kinds & {"cache_miss", "introspected", "cached", "cache_hit"}, kinds
    finally:
        gw.stop()
        upstream.stop()
        auth.stop()


def test_expired_token_is_refused() -> None:
    """A token the AS issued for 2 s: allowed, then refused once expired (the cache entry
    never outlives exp)."""
    auth = harness.AuthServer({"AS_ACCESS_TOKEN_TTL": "2"})
    upstream = harness.EchoUpstream()
    gw = harness.Gateway(harness.config_toml(auth.issuer, upstream.url))
    try:
        token = auth.token()
        assert gw.get("/orders/1", token).status == 200
        time.sleep(2.6)
        r = gw.get("/orders/1", token)
        assert r.status == 401
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    finally:
        gw.stop()
        upstream.stop()
        auth.stop()


@pytest.mark.parametrize("mode", ["edge", "proxy"])
def test_a_request_answered_504_is_never_forwarded_later(mode: str) -> None:
    """The AS answers after 2.5 s, the gateway's request deadline is 1 s: the client gets 504,
    and nothing reaches the upstream afterwards (proxy mode used to let the guest carry on and
    forward the request once the introspection came back)."""
    issuer = "https://as.example"
    slow = harness.SlowIntrospection(issuer, 2.5)
    upstream = harness.EchoUpstream()
    cfg = (harness.rfc7662_config(slow, upstream.url)
              .replace('timeout = "2s"', 'timeout = "5s"')
              .replace('request_timeout = "10s"', 'request_timeout = "1s"'))
    gw = harness.Gateway(cfg, mode)
    try:
        t0 = time.monotonic()
        r = harness.request("POST", gw.url + "/orders/write/1", {"authorization": "Bearer slow-1"},
                            b"x=1")
        assert r.status == 504
        assert time.monotonic() - t0 < 2.0
        time.sleep(2.5)
        assert upstream.seen == [], upstream.seen
    finally:
        gw.stop()
        upstream.stop()
        slow.stop()


@pytest.mark.parametrize("mode", ["edge", "proxy"])
def test_connection_specific_response_headers_are_not_passed_on(mode: str) -> None:
    """`HTTP2-Settings` is connection-specific (RFC 9113 §8.2.2): neither mode passes it from the
    upstream to the client (edge mode did), and the other response headers all arrive."""
    class Handler(harness.QuietHandler):
        def do_GET(self) -> None:
            body = b"hello"
            self.send_response(200)
            self.send_header("content-type", "text/plain")
            self.send_header("x-kept", "yes")
            self.send_header("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    upstream = harness.serve(Handler)
    issuer = "https://as.example"
    introspection = harness.SlowIntrospection(issuer, 0)
    cfg = harness.rfc7662_config(introspection, f"http://127.0.0.1:{upstream.server_address[1]}")
    gw = harness.Gateway(cfg, mode)
    try:
        r = gw.get("/orders/1", "any-token")
        assert r.status == 200 and r.body == b"hello"
        assert r.headers.get("x-kept") == "yes", r.headers
        assert r.headers.get("content-type") == "text/plain", r.headers
        assert "http2-settings" not in r.headers
    finally:
        gw.stop()
        upstream.shutdown()
        introspection.stop()
