"""Unit tests of the Python API surface: config loading, exceptions, the asyncio client."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

import phantom_edge
from e2e_support import EDGE_KEY
from phantom_edge import (
    AsyncEdge,
    Config,
    ConfigError,
    Edge,
    EdgeError,
    Fetch,
    PhantomEdgeError,
    RevocationError,
)

TOML = """
[authorization_server]
issuer = "https://as.example"
introspection_endpoint = "https://as.example/introspect"
client_id = "gateway"
client_secret_env = "PE_TEST_SECRET"
dialect = "rfc7662"
timeout = "250ms"

[assertions]
signing_key_env = "PE_TEST_KEY"
kid = "edge-1"

[admin]
token = "admin-secret-0123456789"

[middleware]
revocation_path = "/revoke"

[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
"""


# TOML's sections as a dict (without [admin]): what Config.from_dict and Config(**...) take.
SECTIONS = {
    "authorization_server": {
        "issuer": "https://as.example", "introspection_endpoint": "https://as.example/introspect",
        "client_id": "gateway", "client_secret_env": "PE_TEST_SECRET", "dialect": "rfc7662",
        "timeout": "250ms",
    },
    "assertions": {"signing_key_env": "PE_TEST_KEY", "kid": "edge-1"},
    "routes": [{"path_prefix": "/orders", "required_scopes": ["orders:read"]}],
    "middleware": {"revocation_path": "/revoke"},
}


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("PE_TEST_SECRET", "gateway-secret")
    monkeypatch.setenv("PE_TEST_KEY", EDGE_KEY)


def test_all_exports():
    for name in phantom_edge.__all__:
        assert hasattr(phantom_edge, name)


def test_config_from_toml_text_and_path(env, tmp_path):
    c = Config.from_toml(TOML)
    assert c.issuer == "https://as.example"
    assert c.timeout_ms == 250
    assert c.middleware == {"revocation_path": "/revoke"}
    p = tmp_path / "edge.toml"
    p.write_text(TOML)
    assert Config.from_toml(p).issuer == "https://as.example"
    assert Config.from_toml(str(p)).issuer == "https://as.example"


def test_config_error_names_the_field(monkeypatch):
    monkeypatch.delenv("PE_TEST_SECRET", raising=False)
    monkeypatch.setenv("PE_TEST_KEY", EDGE_KEY)
    with pytest.raises(ConfigError) as e:
        Config.from_toml(TOML)
    assert e.value.field == "authorization_server.client_secret_env"
    assert "PE_TEST_SECRET" in e.value.message
    assert isinstance(e.value, PhantomEdgeError)


def test_config_unknown_key_refused(env):
    """A valid config plus one unknown key: refused, and the error names that key. The same
    config without it is accepted, so the key is the cause."""
    assert Config.from_dict(SECTIONS).issuer == "https://as.example"
    with pytest.raises(ConfigError) as e:
        Config.from_dict({**SECTIONS, "bogus": 1})
    assert e.value.field == "bogus"
    assert e.value.message.startswith("unknown field `bogus`"), e.value.message
    # The same from TOML, at the top level and inside a section.
    assert Config.from_toml(TOML).issuer == "https://as.example"
    with pytest.raises(ConfigError) as e:
        Config.from_toml("bogus = 1\n" + TOML)
    assert e.value.field == "bogus"
    assert e.value.message.startswith("unknown field `bogus`"), e.value.message
    with pytest.raises(ConfigError) as e:
        Config.from_toml(TOML.replace('kid = "edge-1"', 'kid = "edge-1"\nbogus = 1'))
    assert e.value.field == "assertions.bogus"


def test_config_from_keyword_arguments(env):
    sections = SECTIONS
    cfg = Config(**sections)
    assert cfg.issuer == "https://as.example" and cfg.timeout_ms == 250
    assert cfg.middleware == {"revocation_path": "/revoke"}
    # The same edge as from the dict: same fingerprints and decisions with the same seed.
    a, b = Edge(cfg, b"s" * 32), Edge(Config.from_dict(sections), b"s" * 32)
    assert a.fingerprint("tok") == b.fingerprint("tok")
    # Errors name the field, as for every other source.
    with pytest.raises(ConfigError) as e:
        Config(**{**sections, "bogus": 1})
    assert "bogus" in e.value.field
    with pytest.raises(ConfigError) as e:
        Config(**{**sections, "authorization_server": {**sections["authorization_server"], "timeout": "soon"}})
    assert e.value.field == "authorization_server.timeout"
    with pytest.raises(ConfigError):
        Config()


def test_config_missing_file(tmp_path):
    """An unreadable file is a ConfigError on the pseudo-field `(file)` naming the path (as in
    the Node SDK), for a str and an os.PathLike."""
    for path in ("/nonexistent/phantom-edge.toml", tmp_path / "missing.toml"):
        with pytest.raises(ConfigError) as e:
            Config.from_toml(path)
        assert e.value.field == "(file)"
        assert e.value.message.startswith(f"cannot read {path}:"), e.value.message
        assert isinstance(e.value, PhantomEdgeError)


def test_edge_errors(env):
    edge = Edge(Config.from_toml(TOML), bytes(32), 1_700_000_000_000)
    with pytest.raises(EdgeError) as e:
        edge.handle_fetch(99, failure="x", now_ms=1_700_000_000_000)
    assert e.value.kind == "unknown_ticket" and e.value.ticket == 99
    with pytest.raises(EdgeError) as e:
        edge.handle_fetch(99, 200, [], b"{}", now_ms=1_700_000_000_000)
    assert e.value.kind == "unknown_ticket"
    for both in ({"status": 200, "failure": "x"}, {}, {"failure": "x", "body": b""}):
        with pytest.raises(ValueError):
            edge.handle_fetch(99, **both)
    # A refused admin revocation is an answer (the core's, with its realm), not an exception.
    answer, step = edge.handle_admin("revocations", "POST", listener="app",
                                     content_type="application/json",
                                     authorization="Bearer nope-nope-nope-nope", body=b"{}")
    assert answer.status == 401 and json.loads(answer.body)["error"] == "unauthorized"
    assert ("www-authenticate", 'Bearer realm="phantom-edge-admin"') in answer.headers
    assert not step
    with pytest.raises(ValueError):
        edge.handle_admin("nowhere", "GET", listener="app")
    with pytest.raises(ValueError):
        edge.handle_admin("metrics", "GET", listener="public")
    with pytest.raises(RevocationError) as r:
        edge.handle_revocation({"nothing": 1})
    assert r.value.status == 400
    with pytest.raises(ValueError):
        edge.handle_revocation({"sub": "alice"}, "elsewhere")  # type: ignore[arg-type]
    with pytest.raises(PhantomEdgeError):
        Edge(Config.from_toml(TOML), b"short")


def test_fetch_repr_hides_token(env):
    edge = Edge(Config.from_toml(TOML))
    step = edge.handle_request(1, "GET", "https", "api", "/orders/1", [("authorization", "Bearer sekrit-token")])
    assert len(step.fetches) == 1
    fetch = step.fetches[0]
    assert isinstance(fetch, Fetch) and fetch.kind == "introspection" and fetch.method == "POST"
    assert "sekrit-token" in fetch.body
    assert "sekrit-token" not in repr(fetch)
    assert "gateway-secret" not in repr(fetch) and "content-type" in dict(fetch.headers)
    assert edge.fingerprint("sekrit-token") == fetch.fingerprint
    assert fetch.max_response_bytes > 0 and fetch.timeout_ms == 250
    assert step.wake_at is not None  # the ticket's deadline


def test_forward_objects_are_fresh_per_decision(env):
    """Claims are built lazily and shared templates are copied: a host mutating one request's
    claims never changes another's; the audit events stay complete."""
    from phantom_edge import Audit, Forward

    edge = Edge(Config.from_toml(TOML))
    step = edge.handle_request(1, "GET", "https", "api", "/orders/1", [("authorization", "Bearer tok-1")])
    step = edge.handle_fetch(step.fetches[0].ticket, 200, [("content-type", "application/json")],
                             json.dumps(_active()))
    (first,) = step.decisions

    def hit(rid):
        step = edge.handle_request(rid, "GET", "https", "api", "/orders/1", [("authorization", "Bearer tok-1")])
        assert type(step.decisions) is tuple and step.decisions is step.decisions
        return step

    a1, a2 = hit(2), hit(3)
    (f1,), (f2,) = a1.decisions, a2.decisions
    assert isinstance(f1, Forward) and a1.decision(2) is f1 and a1.decision(3) is None
    assert f1.token is f1.token  # one dict per Forward
    assert list(f1.token) == sorted(f1.token)  # serde_json's key order, as before
    assert f1.token == f2.token == first.token
    assert f1.token["sub"] == "alice" and f1.token["scopes"] == ["orders:read"]
    f1.token["sub"] = "mallory"
    f1.token["scopes"].append("admin")
    f1.token["aud"].append("x")
    assert f2.token["sub"] == "alice" and f2.token["scopes"] == ["orders:read"]
    assert "x" not in f2.token["aud"]
    assert hit(4).decisions[0].token == first.token
    assert f1.header_name == "authorization" and f1.header_value == f2.header_value
    assert f1.header_value.startswith("Bearer ") and "tok-1" not in f1.header_value
    assert f1.strip_headers == ["authorization", "dpop", "x-original-url", "x-rewrite-url"]
    assert f1.strip_headers is not f1.strip_headers
    assert f1.fingerprint == edge.fingerprint("tok-1") and f1.request_id == 2
    audits = a1.audits
    assert audits and isinstance(audits[0], Audit) and audits[0].request_id == 2 and audits[0].fingerprint == f1.fingerprint
    assert json.loads(audits[0].to_json())["kind"] == audits[0].kind
    assert repr(audits[0]) == f"Audit({audits[0].to_json()})"
    assert "tok-1" not in repr(f1) and "tok-1" not in audits[0].to_json()


def _kinds(step):
    """A step's contents, by list: audit kinds, then decision types, then fetch kinds."""
    return ([a.kind for a in step.audits] + [type(d).__name__ for d in step.decisions]
            + [f"Fetch:{f.kind}" for f in step.fetches])


def _hit_edge(**kwargs):
    """An edge with tok-1 cached (its introspection answered active)."""
    edge = Edge(Config.from_toml(TOML), **kwargs)
    assert _kinds(edge.initial_step()) == []
    step = edge.handle_request(1, "GET", "https", "api", "/orders/1", [("authorization", "Bearer tok-1")])
    assert _kinds(step) == ["cache_miss", "Fetch:introspection"]
    step = edge.handle_fetch(step.fetches[0].ticket, 200, [("content-type", "application/json")],
                             json.dumps(_active()))
    assert "Forward" in _kinds(step)
    return edge


def test_mute_audits_skips_kinds_and_can_be_undone(env):
    from phantom_edge import Forward

    edge = _hit_edge()
    with pytest.raises(ValueError, match="no_such_kind"):
        edge.mute_audits(["cache_hit", "no_such_kind"])

    def hit(rid):
        return edge.handle_request(rid, "GET", "https", "api", "/orders/1", [("authorization", "Bearer tok-1")])

    assert _kinds(hit(2)) == ["cache_hit", "Forward"]  # the refused call changed nothing
    edge.mute_audits(["cache_hit"])
    assert _kinds(hit(3)) == ["Forward"]
    step = hit(4)
    assert _kinds(step) == ["Forward"] and step.audits == ()
    assert isinstance(hit(5).decisions[0], Forward)
    assert "phantom_edge_cache_hits_total 4" in edge.prometheus()  # still counted
    edge.mute_audits([])
    assert _kinds(hit(6)) == ["cache_hit", "Forward"]


def test_audit_level_leaves_out_lower_levels_and_composes_with_mute_audits(env):
    edge = Edge(Config.from_toml(TOML))
    edge.initial_step()
    with pytest.raises(ValueError, match="verbose"):
        edge.set_audit_level("verbose")
    tok = [("authorization", "Bearer tok-1")]
    step = edge.handle_request(1, "GET", "https", "api", "/orders/1", tok)
    assert [(a.kind, a.level) for a in step.audits] == [("cache_miss", "debug")]
    assert json.loads(step.audits[0].to_json())["level"] == "debug"
    edge.handle_fetch(step.fetches[0].ticket, 200, [("content-type", "application/json")],
                      json.dumps(_active()))

    edge.set_audit_level("info")  # the refused call above changed nothing until now
    assert _kinds(edge.handle_request(2, "GET", "https", "api", "/orders/1", tok)) == ["Forward"]
    step = edge.handle_request(3, "GET", "https", "api", "/orders/1", [])
    assert _kinds(step) == ["rejected", "Reject"] and step.audits[0].level == "info"
    edge.mute_audits(["rejected"])
    assert _kinds(edge.handle_request(4, "GET", "https", "api", "/orders/1", [])) == ["Reject"]
    edge.set_audit_level("debug")  # the muted kind stays muted
    assert _kinds(edge.handle_request(5, "GET", "https", "api", "/orders/1", [])) == ["Reject"]
    step = edge.handle_request(6, "GET", "https", "api", "/orders/1", tok)
    assert _kinds(step) == ["cache_hit", "Forward"]

async def test_async_edge_logs_audits_at_their_level_and_builds_only_those(env):
    import logging

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    log = logging.getLogger("phantom_edge.test_levels")
    log.addHandler(Keep())
    log.propagate = False
    log.setLevel(logging.INFO)
    fail = {"on": False}

    async def handler(req: httpx.Request) -> httpx.Response:
        if fail["on"]:
            raise httpx.ConnectError("refused")
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with AsyncEdge(TOML, http_client=http, audit_logger=log) as edge:
        hdrs = [("authorization", "Bearer tok-1")]
        assert (await edge.authorize("GET", "https://api/orders/1", hdrs)).forward
        assert (await edge.authorize("GET", "https://api/orders/1", hdrs)).forward
        assert (await edge.authorize("GET", "https://api/orders/1", [])).status == 401
        fail["on"] = True
        assert (await edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer t2")])).status == 503
        logged = [(r.levelno, json.loads(r.args[0])["kind"]) for r in records]
        # At INFO, the routine kinds are neither logged nor built; the others at their level.
        assert (logging.INFO, "rejected") in logged and (logging.WARNING, "as_failure") in logged
        assert all(level >= logging.INFO for level, _ in logged), logged
        levels = {"debug": logging.DEBUG, "info": logging.INFO, "warn": logging.WARNING}
        assert all(levels[json.loads(r.args[0])["level"]] == r.levelno for r in records)
        # DEBUG switched on at run time: the next hit builds and logs its cache_hit.
        log.setLevel(logging.DEBUG)
        records.clear()
        assert (await edge.authorize("GET", "https://api/orders/1", hdrs)).forward
        assert [(r.levelno, json.loads(r.args[0])["kind"]) for r in records] == [
            (logging.DEBUG, "cache_hit")]
    await http.aclose()


def test_every_input_returns_its_whole_step(env):
    """Each input hands out everything it produced (the one-decision fast path of a muted hit
    included), by consumer; nothing waits in a queue for a later call."""
    from phantom_edge import Forward, Reject, Step

    edge = _hit_edge()
    tok = [("authorization", "Bearer tok-1")]

    # A hit with the routine audit on: the audit and the Forward in one step.
    step = edge.handle_request(2, "GET", "https", "api", "/orders/1", tok)
    assert isinstance(step, Step) and _kinds(step) == ["cache_hit", "Forward"]
    assert step.decision(2) is step.decisions[0] and step.decisions[0].request_id == 2
    assert step and step.fetches == () and step.lookups == () and step.publishes == ()

    # Muted: the Forward alone (the fast path); the same step a drained queue would give.
    edge.mute_audits(["cache_hit"])
    step = edge.handle_request(3, "GET", "https", "api", "/orders/1", tok)
    f = step.decision(3)
    assert isinstance(f, Forward) and f.request_id == 3 and f.token["sub"] == "alice"
    assert f.header_value.startswith("Bearer ey") and _kinds(step) == ["Forward"]
    assert step.wake_at is None and "decisions=1" in repr(step)

    # A rejection with its audit; then muted, alone, as the core made it.
    assert _kinds(edge.handle_request(4, "GET", "https", "api", "/orders/1", [])) == ["rejected", "Reject"]
    edge.mute_audits(["cache_hit", "rejected"])
    r = edge.handle_request(4, "GET", "https", "api", "/orders/1", []).decision(4)
    assert isinstance(r, Reject) and r.status == 401 and r.www_authenticate.startswith("Bearer")
    r = edge.handle_request(5, "GET", "https", "api", "/orders/1", tok + [("Authorization", "Bearer x")])
    assert r.decisions[0].status == 400
    assert edge.handle_request(6, "GET", "https", "api", "/nowhere", tok).decisions[0].status == 404

    # A miss: its audit and fetch now, the decision in the step of the answer (with a hit decided
    # meanwhile in its own step).
    miss = edge.handle_request(7, "GET", "https", "api", "/orders/1", [("authorization", "Bearer tok-2")])
    assert _kinds(miss) == ["cache_miss", "Fetch:introspection"] and miss.decision(7) is None
    assert miss.wake_at is not None  # the ticket's deadline
    assert _kinds(edge.handle_request(8, "GET", "https", "api", "/orders/1", tok)) == ["Forward"]
    answered = edge.handle_fetch(miss.fetches[0].ticket, 200, [("content-type", "application/json")],
                                 json.dumps(_active()))
    assert [d.request_id for d in answered.decisions] == [7] and answered.wake_at is None
    assert not edge.handle_timeout()


def test_forwarding_policy_and_admin_routes_are_the_cores(env):
    """upstream_headers (in process and proxy), hop_by_hop_headers, forward_policy and the admin
    routes on both listeners, through the binding."""
    import phantom_edge

    edge = _hit_edge()
    policy = edge.forward_policy()
    assert policy.header_name == "authorization" and "dpop" in policy.strip_headers
    inbound = [("Host", "api"), ("Authorization", "Bearer opaque"), ("X_Original_URL", "/admin"),
               ("x-forwarded-for", "10.0.0.1"), ("Connection", "x-secret"), ("x-secret", "1"),
               ("accept", "*/*")]
    plan = edge.upstream_headers(inbound, "Bearer ey.jwt")
    assert plan.drop == [1, 2] and plan.set == [("authorization", "Bearer ey.jwt")]
    assert "ey.jwt" not in repr(plan)
    plan = edge.upstream_headers(inbound, "Bearer ey.jwt", "proxy", peer="192.0.2.1", proto="https")
    assert plan.drop == [0, 1, 2, 3, 4, 5]
    assert ("x-forwarded-for", "10.0.0.1, 192.0.2.1") in plan.set
    with pytest.raises(ValueError):
        edge.upstream_headers(inbound, "v", "proxy")  # a proxy hop needs its proto
    with pytest.raises(ValueError):
        edge.upstream_headers(inbound, "v", "in_process", peer="192.0.2.1")
    assert phantom_edge.hop_by_hop_headers([("Connection", "x-a"), ("x-a", "1"), ("te", "t"), ("b", "2")]) == [0, 1, 2]

    admin = "Bearer admin-secret-0123456789"
    answer, step = edge.handle_admin("metrics", "GET", listener="app")
    assert answer.status == 401 and not step
    answer, _ = edge.handle_admin("metrics", "GET", listener="operator")
    assert answer.status == 200 and "phantom_edge_requests_total 1" in answer.body
    answer, _ = edge.handle_admin("metrics", "POST", listener="app", authorization=admin)
    assert answer.status == 405 and ("allow", "GET, HEAD") in answer.headers
    answer, _ = edge.handle_admin("jwks", "GET", listener="app")
    assert answer.status == 200 and json.loads(answer.body)["keys"][0]["kid"] == "edge-1"
    too_big = b"x" * (phantom_edge.MAX_ADMIN_BODY + 1)
    answer, _ = edge.handle_admin("revocations", "POST", listener="app", authorization=admin,
                                  content_type="application/json", body=too_big)
    assert answer.status == 413
    answer, step = edge.handle_admin("revocations", "POST", listener="app", authorization=admin,
                                     content_type="application/json", body='{"sub": "alice"}')
    assert (answer.status, answer.body) == (204, "")
    assert [a.kind for a in step.audits] == ["revoked"] and json.loads(step.publishes[0])["sub"] == "alice"
    assert step.wake_at is not None  # the revocation's sweep
    step = edge.handle_request(9, "GET", "https", "api", "/orders/1", [("authorization", "Bearer tok-1")])
    assert step.decisions[0].reason == "revoked"


def test_request_strings_are_read_exactly(env):
    """Non-ASCII text is read and decided by the core; a str no header can carry is refused cleanly
    (nothing reaches the core)."""
    edge = Edge(Config.from_toml(TOML))
    edge.initial_step()
    edge.mute_audits(["rejected"])
    # U+00E9 in the path: no route for it, and the 404 is the core's answer (not a decode error).
    r = edge.handle_request(1, "GET", "https", "api", "/caf\u00e9", [("authorization", "Bearer t")])
    assert r.decisions[0].status == 404
    with pytest.raises(UnicodeEncodeError):
        edge.handle_request(2, "GET", "https", "api", "/orders/\udc80", [("authorization", "Bearer t")])
    with pytest.raises(UnicodeEncodeError):
        edge.handle_request(2, "GET", "https", "api", "/orders/1", [("authorization", "Bearer \udc80")])
    with pytest.raises(TypeError):
        edge.handle_request(3, "GET", "https", "api", "/orders/1", [("authorization", b"Bearer t")])
    assert not edge.handle_timeout()  # nothing reached the core from the refused calls
    assert "phantom_edge_requests_total 1" in edge.prometheus()


def _active(scope="orders:read"):
    now = int(time.time())
    return {"active": True, "client_id": "app", "sub": "alice", "scope": scope,
            "iss": "https://as.example", "exp": now + 600, "iat": now}


async def test_async_edge_coalesces_and_caches(env):
    calls = []

    async def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req)
        await asyncio.sleep(0.05)
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with AsyncEdge(TOML, http_client=http) as edge:
        hdrs = [("authorization", "Bearer tok-1")]
        ds = await asyncio.gather(*[edge.authorize("GET", "https://api/orders/1", hdrs) for _ in range(20)])
        assert all(d.forward for d in ds)
        assert len(calls) == 1
        d = await edge.authorize("GET", "https://api/orders/2?x=1", {"authorization": "Bearer tok-1"})
        assert d.forward and len(calls) == 1
        assert d.claims["sub"] == "alice"
        assert d.header_name == "authorization" and d.header_value.startswith("Bearer ey")
        up = d.upstream_headers([("Authorization", "Bearer tok-1"), ("x-a", "1")])
        assert up == [("x-a", "1"), ("authorization", d.header_value)]
        assert "phantom_edge_cache_hits_total 1" in edge.metrics()
        status, body = await edge.revoke("application/json", "Bearer admin-secret-0123456789",
                                         json.dumps({"token": "tok-1"}))
        assert (status, body) == (204, "")
        d = await edge.authorize("GET", "https://api/orders/2", hdrs)
        assert not d.forward and d.status == 401 and d.reason == "revoked"
    await http.aclose()


async def test_async_edge_timeout_is_driven_by_the_timer(env):
    async def handler(req: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with AsyncEdge(TOML, http_client=http) as edge:
        t0 = time.monotonic()
        d = await asyncio.wait_for(
            edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer slow")]), 3)
        assert not d.forward and d.status == 503 and d.reason == "timeout"
        assert time.monotonic() - t0 < 2
    await http.aclose()


async def test_async_edge_transport_failure_503(env):
    async def handler(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with AsyncEdge(TOML, http_client=http) as edge:
        d = await edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer t")])
        assert d.status == 503 and d.reason == "unavailable"
    await http.aclose()


def test_edge_usable_from_another_thread(env):
    import threading

    edge = Edge(Config.from_toml(TOML))
    out = []
    t = threading.Thread(target=lambda: out.append(
        edge.handle_request(1, "GET", "https", "a", "/orders/1", [])))
    t.start()
    t.join()
    assert _kinds(out[0]) == ["rejected", "Reject"]


async def test_middleware_paths_from_config_section(env):
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    from phantom_edge.asgi import PhantomTokenMiddleware

    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_active())

    async def home(request):
        return PlainTextResponse(request.headers["authorization"][:9])

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    app = Starlette(routes=[Route("/orders/{x}", home)])
    app.add_middleware(PhantomTokenMiddleware, config=Config.from_toml(TOML), http_client=http)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/revoke", json={"sub": "alice"},
                         headers={"authorization": "Bearer admin-secret-0123456789"})
        assert r.status_code == 204
        assert (await c.get("/revoke")).status_code == 405
        admin = {"authorization": "Bearer admin-secret-0123456789"}
        assert (await c.get("/_phantom/metrics")).status_code == 401  # [admin] configured
        assert (await c.get("/_phantom/metrics", headers=admin)).status_code == 200  # default path
        r = await c.get("/orders/1", headers={"authorization": "Bearer t"})
        assert r.status_code == 401  # sub alice revoked
    await http.aclose()


async def test_middleware_hands_the_core_the_raw_path(env):
    """The ASGI middleware decides on `raw_path` as the client sent it: a path the app (or a
    proxy behind it) could resolve to another route is refused by the core, not routed."""
    from phantom_edge.asgi import PhantomTokenMiddleware

    reached: list[str] = []

    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    app = _recording_app(reached, "path")
    mw = PhantomTokenMiddleware(app, config=Config.from_toml(TOML), http_client=http)

    async def call(raw_path: bytes, path: str) -> tuple[int, bytes]:
        status, headers = await _asgi_call(mw, _scope(path, raw_path, b"", b"Bearer tok-raw"))
        return status, headers.get(b"www-authenticate", b"")

    assert (await call(b"/orders/1", "/orders/1"))[0] == 200
    for raw, decoded in [(b"/orders/../admin", "/orders/../admin"),
                         (b"/orders/%2e%2e/admin", "/orders/../admin"),
                         (b"/orders%2Fadmin", "/orders/admin")]:
        status, www = await call(raw, decoded)
        assert status == 400 and b'error="invalid_request"' in www, raw
    assert reached == ["/orders/1"]
    await http.aclose()


async def test_async_edge_decision_at_once_rearms_an_idle_timer(env):
    """A DPoP hit is decided in the call (no ticket), but its proof's replay entry starts the
    sweep deadline: with no timer armed, `authorize` must arm one."""
    import base64
    import hashlib

    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec
    from jwt.algorithms import ECAlgorithm

    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = json.loads(ECAlgorithm.to_jwk(key.public_key()))
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    jkt = b64(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())
    token = "tok-dpop"

    def proof(jti: str) -> str:
        claims = {"jti": jti, "htm": "GET", "htu": "https://api/orders/1", "iat": int(time.time()),
                  "ath": b64(hashlib.sha256(token.encode()).digest())}
        return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", "jwk": members})

    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={**_active(), "cnf": {"jkt": jkt}, "token_type": "DPoP"})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with AsyncEdge(TOML, http_client=http) as edge:
        d = await edge.authorize("GET", "https://api/orders/1",
                                 [("authorization", f"DPoP {token}"), ("dpop", proof("1"))])
        assert d.forward, d
        # Idle, as after a sweep that emptied every bounded set: no timer.
        edge._timer.cancel()
        edge._timer, edge._timer_at = None, None
        d = await edge.authorize("GET", "https://api/orders/1",
                                 [("authorization", f"DPoP {token}"), ("dpop", proof("2"))])
        assert d.forward, d
        # Armed for the step's wake_at: the replay set's sweep, within the sweep interval (10 s).
        now_ms = time.time_ns() // 1_000_000
        assert edge._timer is not None and now_ms < edge._timer_at <= now_ms + 10_000
    await http.aclose()


def _scope(path: str, raw_path, query: bytes, auth: bytes = b"") -> dict:
    headers = [(b"host", b"api")] + ([(b"authorization", auth)] if auth else [])
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
             "scheme": "https", "path": path, "query_string": query, "root_path": "",
             "server": ("api", 443), "client": ("127.0.0.1", 5000), "headers": headers}
    if raw_path is not None:
        scope["raw_path"] = raw_path
    return scope


async def _asgi_call(mw, scope) -> tuple[int, dict]:
    """Runs one bodiless request through an ASGI app: (status, response headers)."""
    out = {}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
            out["headers"] = dict(message["headers"])

    await mw(scope, receive, send)
    return out["status"], out["headers"]


def _recording_app(seen: list, key: str):
    """An ASGI app that answers 200 and records `scope[key]` of each request it gets."""

    async def app(scope, receive, send):
        seen.append(scope[key])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


async def test_middleware_keeps_query_tokens_out_of_the_servers_scope(env):
    """uvicorn's access log reads the scope it passed in: with `request.allow_query_token`, the
    token must be gone from that scope, for forwards and for rejections."""
    from phantom_edge.asgi import PhantomTokenMiddleware

    seen: list[bytes] = []

    async def handler(req: httpx.Request) -> httpx.Response:
        token = dict(x.split("=", 1) for x in req.content.decode().split("&"))["token"]
        return httpx.Response(200, json=_active() if token == "good-token" else {"active": False})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    cfg = Config.from_toml(TOML + "\n[request]\nallow_query_token = true\n")
    mw = PhantomTokenMiddleware(_recording_app(seen, "query_string"), config=cfg, http_client=http)
    ok = _scope("/orders/1", b"/orders/1", b"x=1&access_token=good-token&y=2")
    assert (await _asgi_call(mw, ok))[0] == 200
    assert ok["query_string"] == b"x=1&y=2" and seen == [b"x=1&y=2"]
    bad = _scope("/orders/1", b"/orders/1", b"access_token=bad-token&z=3")
    assert (await _asgi_call(mw, bad))[0] == 401
    assert bad["query_string"] == b"z=3"
    await http.aclose()


async def test_middleware_without_raw_path_reencodes_the_decoded_path(env):
    """ASGI lets a server omit `raw_path`: the decoded `path` is re-encoded, so a `%3F` the
    client sent is not read as the start of a query (the app would route `/orders?/../admin`)."""
    from phantom_edge.asgi import PhantomTokenMiddleware

    reached: list[str] = []

    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    app = _recording_app(reached, "path")
    mw = PhantomTokenMiddleware(app, config=Config.from_toml(TOML), http_client=http)
    ok = _scope("/orders/1", None, b"", b"Bearer tok-q")
    assert (await _asgi_call(mw, ok))[0] == 200
    ambiguous = _scope("/orders?/../admin/x", None, b"", b"Bearer tok-q")
    assert (await _asgi_call(mw, ambiguous))[0] == 400
    assert reached == ["/orders/1"]
    await http.aclose()


async def test_middleware_metrics_without_admin_are_refused(env):
    """Without `[admin]` nobody may read the metrics on the app's listener (fail closed): 403,
    whatever bearer is sent, and no metric in the answer."""
    from phantom_edge.asgi import PhantomTokenMiddleware

    no_admin = TOML.replace('[admin]\ntoken = "admin-secret-0123456789"\n', "")
    assert "[admin]" not in no_admin
    seen: list[str] = []
    mw = PhantomTokenMiddleware(_recording_app(seen, "path"), config=Config.from_toml(no_admin))
    for auth in (b"", b"Bearer admin-secret-0123456789"):
        status, headers = await _asgi_call(mw, _scope("/_phantom/metrics", None, b"", auth))
        assert status == 403 and headers[b"content-type"] == b"application/json"
    assert seen == []
    await mw.edge.aclose()


async def test_async_edge_publishes_through_async_callbacks_and_survives_failures(env, caplog):
    import logging

    published: list[str] = []

    async def publish(message: str) -> None:
        await asyncio.sleep(0)
        published.append(message)

    async def failing(message: str) -> None:
        raise ConnectionError("redis down")

    def raising(message: str) -> None:
        raise ConnectionError("redis down")

    auth = "Bearer admin-secret-0123456789"
    async with AsyncEdge(TOML, on_publish=publish) as edge:
        assert await edge.revoke("application/json", auth, json.dumps({"sub": "alice"})) == (204, "")
        await asyncio.sleep(0.01)
        assert [json.loads(m)["sub"] for m in published] == ["alice"]

    async def slow_publish(message: str) -> None:
        await asyncio.sleep(0.1)
        published.append(message)

    # Closed right after a revocation: the publish in flight still completes.
    async with AsyncEdge(TOML, on_publish=slow_publish) as edge:
        assert await edge.revoke("application/json", auth, json.dumps({"sub": "carol"})) == (204, "")
    assert [json.loads(m)["sub"] for m in published] == ["alice", "carol"]
    caplog.set_level(logging.WARNING, logger="phantom_edge")
    for cb in (failing, raising):
        async with AsyncEdge(TOML, on_publish=cb) as edge:
            # Already in force here: the failed publish does not turn it into an error.
            assert await edge.revoke("application/json", auth, json.dumps({"sub": "bob"})) == (204, "")
            await asyncio.sleep(0.01)
            assert "phantom_edge_revocations_total 1" in edge.metrics()
    assert caplog.text.count("publish failed: ConnectionError") == 2


async def test_async_edge_reads_store_bytes_and_refuses_other_types(env):
    """redis-py answers bytes unless decode_responses=True: read as text (a prompt decision, not
    a timeout); any other type is a store error (503 at once)."""
    from e2e_support import EDGE_KEY as key_pem
    from cryptography.hazmat.primitives import serialization
    from jwt.algorithms import OKPAlgorithm

    jwk = json.loads(OKPAlgorithm.to_jwk(serialization.load_pem_private_key(key_pem.encode(), None).public_key()))
    jwk.update(kid="k1", alg="EdDSA", use="sig")

    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": [jwk]})

    split = """
mode = "split"
[authorization_server]
issuer = "https://as.example"
jwks_uri = "https://as.example/jwks"
timeout = "2s"
[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
"""
    for value, status, reason in [(b"not.ajwt", 401, "invalid_token"), (42, 503, "unavailable")]:
        async def lookup(key: str, value=value):
            return value

        http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        async with AsyncEdge(split, http_client=http, shared_lookup=lookup) as edge:
            t0 = time.monotonic()
            d = await edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer sig")])
            assert (d.status, d.reason) == (status, reason)
            assert time.monotonic() - t0 < 1
        await http.aclose()


async def test_async_edge_refuses_oversized_answers_and_does_not_follow_redirects(env):
    calls: list[str] = []

    async def handler(req: httpx.Request) -> httpx.Response:
        calls.append(req.url.path)
        if req.url.path == "/introspect":
            if b"token=big" in req.content:
                async def stream():
                    for _ in range(64):  # 4 MiB
                        calls.append("chunk")
                        yield b" " * 65536
                return httpx.Response(200, content=stream(), headers={"content-type": "application/json"})
            return httpx.Response(302, headers={"location": "https://as.example/elsewhere"})
        return httpx.Response(200, json=_active())

    # A client that follows redirects by default: the edge's requests still do not.
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler), follow_redirects=True)
    async with AsyncEdge(TOML, http_client=http) as edge:
        d = await edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer moved")])
        assert d.status == 503
        assert "/elsewhere" not in calls
        d = await edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer big")])
        assert d.status == 503
        assert calls.count("chunk") <= 20, calls.count("chunk")
    await http.aclose()


async def test_async_edge_aclose_answers_requests_whose_io_it_cancelled(env):
    async def handler(req: httpx.Request) -> httpx.Response:
        await asyncio.sleep(3600)
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    edge = AsyncEdge(TOML, http_client=http)
    pending = asyncio.ensure_future(
        edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer hangs")]))
    await asyncio.sleep(0.05)
    await edge.aclose()
    d = await asyncio.wait_for(pending, 2)
    assert d.status == 503
    await http.aclose()


def test_redact_query_tokens_is_the_cores():
    """The core's spelling rules, exposed: hosts redact what they keep or log with it."""
    assert phantom_edge.redact_query_tokens("/orders/1?x=1") is None
    assert phantom_edge.redact_query_tokens("/orders/1") is None
    assert phantom_edge.redact_query_tokens("/o?x=1&access_token=t&y=2") == "/o?x=1&y=2"
    for spelt in ("access%5Ftoken", "ACCESS_TOKEN", "access.token", "access_token[]"):
        assert phantom_edge.redact_query_tokens(f"/o?{spelt}=t") == "/o", spelt
    assert phantom_edge.redact_query_tokens("/o?x=1;access_token=t&y=2") == "/o?y=2"


@pytest.mark.parametrize("query", [b"access%5Ftoken=secret-tok-1", b"ACCESS_TOKEN=secret-tok-1",
                                   b"access.token=secret-tok-1", b"access_token[]=secret-tok-1",
                                   b"x=1;access_token=secret-tok-1"])
async def test_middleware_drops_every_spelling_of_query_tokens_from_the_servers_scope(env, query):
    """Every name the core reads as access_token (taken, or refused as malformed) must leave the
    scope uvicorn's access log reads, on rejections too."""
    from phantom_edge.asgi import PhantomTokenMiddleware

    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"active": False})

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    seen: list = []
    cfg = Config.from_toml(TOML + "\n[request]\nallow_query_token = true\n")
    mw = PhantomTokenMiddleware(_recording_app(seen, "path"), config=cfg, http_client=http)
    scope = _scope("/orders/1", b"/orders/1", query)
    status, _ = await _asgi_call(mw, scope)
    assert status in (400, 401) and seen == []
    assert b"secret-tok-1" not in scope["query_string"]
    await http.aclose()


async def test_middleware_drops_query_tokens_from_raw_path_and_when_authorize_raises(env):
    """A server that keeps the query in `raw_path` logs that too; and an exception while deciding
    must not leave the token in the scope (redacted in a `finally`)."""
    from phantom_edge.asgi import PhantomTokenMiddleware

    cfg = Config.from_toml(TOML + "\n[request]\nallow_query_token = true\n")
    mw = PhantomTokenMiddleware(_recording_app([], "path"), config=cfg)

    async def boom(*args, **kwargs):
        raise RuntimeError("boom")

    mw.edge.authorize_parts = boom  # type: ignore[method-assign]
    scope = _scope("/orders/1", b"/orders/1?Access_Token=secret-tok-2&x=1", b"Access_Token=secret-tok-2&x=1")
    with pytest.raises(RuntimeError):
        await _asgi_call(mw, scope)
    assert scope["query_string"] == b"x=1" and scope["raw_path"] == b"/orders/1?x=1"
    await mw.edge.aclose()


async def test_middleware_strips_underscore_spellings_of_stripped_and_set_headers(env):
    """Django's ASGI handler and WSGI adapters read `x_user_id` as X-User-Id: as phantom-gateway
    does (core::header_name_as_read), such spellings of stripped and set headers are dropped."""
    from phantom_edge.asgi import PhantomTokenMiddleware

    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    cfg = Config.from_toml(TOML.replace(
        "[admin]", '[upstream]\nheader = "x-jwt-assertion"\nstrip_headers = ["x-user-id"]\n\n[admin]'))
    seen: list = []
    mw = PhantomTokenMiddleware(_recording_app(seen, "headers"), config=cfg, http_client=http)
    scope = _scope("/orders/1", b"/orders/1", b"", b"Bearer tok-u")
    scope["headers"] += [(b"x_user_id", b"admin"), (b"x_jwt_assertion", b"forged"),
                         (b"x_original_url", b"/admin")]
    assert (await _asgi_call(mw, scope))[0] == 200
    read_as = [n.decode().replace("_", "-") for n, _ in seen[0]]
    assert "x-user-id" not in read_as and "x-original-url" not in read_as, read_as
    assert read_as.count("x-jwt-assertion") == 1, read_as
    await http.aclose()


async def test_decision_repr_hides_the_upstream_credential(env):
    async def handler(req: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=_active())

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with AsyncEdge(TOML, http_client=http) as edge:
        d = await edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer tok-r")])
        assert d.forward
        assert d.header_value.split(" ", 1)[1] not in repr(d)  # as Forward.__repr__ does
        assert "alice" not in repr(d)  # nor the claims
    await http.aclose()


async def test_middleware_websocket_rejection_keeps_the_cores_status(env):
    from phantom_edge.asgi import PhantomTokenMiddleware

    mw = PhantomTokenMiddleware(_recording_app([], "path"), config=Config.from_toml(TOML))
    sent: list = []

    async def receive():
        return {"type": "websocket.connect"}

    async def send(m):
        sent.append(m)

    for extensions in ({"websocket.http.response": {}}, {}):
        sent.clear()
        scope = _scope("/orders/1", b"/orders/1", b"")
        scope.update(type="websocket", extensions=extensions)
        await mw(scope, receive, send)
        if extensions:
            assert sent[0]["type"] == "websocket.http.response.start" and sent[0]["status"] == 401
            assert (b"www-authenticate", b'Bearer realm="phantom-edge"') in sent[0]["headers"]
            assert sent[1]["type"] == "websocket.http.response.body"
            assert json.loads(sent[1]["body"])["error"] == "unauthorized"  # the core's body
        else:  # the server cannot send a response: close (it answers 403)
            assert [m["type"] for m in sent] == ["websocket.close"]
    await mw.edge.aclose()


async def test_async_edge_lookup_raising_cancelled_error_is_a_store_error(env):
    split = """
mode = "split"
[authorization_server]
issuer = "https://as.example"
jwks_uri = "https://as.example/jwks"
timeout = "5s"
[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
"""

    async def lookup(key: str):
        raise asyncio.CancelledError()  # the store client's own task was cancelled

    async with AsyncEdge(split, shared_lookup=lookup) as edge:
        t0 = time.monotonic()
        d = await edge.authorize("GET", "https://api/orders/1", [("authorization", "Bearer sig")])
        assert d.status == 503 and time.monotonic() - t0 < 1


async def test_middleware_admin_routes_write_out_the_cores_answers(env):
    """The middleware maps its paths to the core's routes (app listener) and writes the answers
    out as they are: the realm, 405 with its Allow, and 413 past MAX_ADMIN_BODY (read no
    further)."""
    from phantom_edge import MAX_ADMIN_BODY
    from phantom_edge.asgi import PhantomTokenMiddleware

    mw = PhantomTokenMiddleware(_recording_app([], "path"), config=Config.from_toml(TOML))
    app = httpx.ASGITransport(app=mw)
    async with httpx.AsyncClient(transport=app, base_url="http://t") as c:
        r = await c.get("/_phantom/metrics", headers={"authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="phantom-edge-admin"'
        assert "phantom_edge" not in r.text
        r = await c.delete("/_phantom/metrics")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
        r = await c.post("/revoke", content=b"{" + b" " * MAX_ADMIN_BODY + b"}",
                         headers={"authorization": "Bearer admin-secret-0123456789",
                                  "content-type": "application/json"})
        assert r.status_code == 413 and r.json()["error"] == "invalid_request"
        r = await c.post("/revoke", json={"sub": "alice"},
                         headers={"authorization": "Bearer admin-secret-0123456789"})
        assert r.status_code == 204 and r.headers["cache-control"] == "no-store"
    await mw.edge.aclose()


def test_decision_upstream_headers_fails_closed_without_the_deciding_edge():
    """A rejection passes headers through unchanged (nothing goes upstream); a forward not made by
    an edge has no forwarding policy to apply: refused, never the inbound headers as they are."""
    from phantom_edge import Decision

    hdrs = [("authorization", "Bearer opaque"), ("x-a", "1")]
    assert Decision(forward=False, status=401).upstream_headers(hdrs) == hdrs
    with pytest.raises(ValueError):
        Decision(forward=True, header_name="authorization", header_value="Bearer ey").upstream_headers(hdrs)


def test_split_jwt_seals_the_store_value():
    # The issuer's side of split tokens: the same helper as the core's (the sealed values in the
    # split vectors are opened by this binding's Edge in test_vectors).
    jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDMwMH0.c2lnbmF0dXJl"
    s = phantom_edge.split_jwt(jwt)
    assert s["client_token"] == "c2lnbmF0dXJl"
    assert s["store_key"].startswith("phantom-edge:split:")
    assert "c2lnbmF0dXJl" not in s["store_key"]
    assert s["store_value"].startswith("pe1:") and "eyJ" not in s["store_value"]
    assert s["expires_at"] == 1700000300
    assert phantom_edge.split_jwt(jwt, key_prefix="x:")["store_key"].startswith("x:")
    with pytest.raises(ValueError):
        phantom_edge.split_jwt("not.a")
