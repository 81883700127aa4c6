"""End to end: Starlette app + PhantomTokenMiddleware (via httpx.ASGITransport) against the real
oidc-provider authorization server."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from e2e_support import ADMIN_TOKEN, EDGE_KEY, AuthServer, edge_config
from phantom_edge.asgi import PhantomTokenMiddleware


@pytest.fixture(scope="module")
def auth_server():
    server = AuthServer()
    yield server
    server.stop()


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({
        "authorization": request.headers.get("authorization"),
        "all_headers": [[k, v] for k, v in request.headers.items()],
        "claims": request.state.phantom_edge,
    })


def make_app(issuer: str, counter: dict[str, int]):
    async def on_request(req: httpx.Request) -> None:
        if req.url.path.endswith("/token/introspection"):
            counter["introspections"] += 1

    http = httpx.AsyncClient(event_hooks={"request": [on_request]})
    app = Starlette(routes=[Route("/orders/write", echo), Route("/orders/{rest:path}", echo)])
    app.add_middleware(PhantomTokenMiddleware, config=edge_config(issuer), http_client=http)
    return app, http


@pytest.fixture
async def client(auth_server):
    counter = {"introspections": 0}
    app, http = make_app(auth_server.issuer, counter)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as c:
        c.counter = counter  # type: ignore[attr-defined]
        yield c
    await http.aclose()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def verify_jwt(value: str) -> dict:
    assert value.startswith("Bearer ")
    key = serialization.load_pem_private_key(EDGE_KEY.encode(), None).public_key()
    return jwt.decode(value[7:], key, algorithms=["EdDSA"], audience="orders-api",
                      options={"verify_iat": False})


async def test_valid_token_forwards_a_jwt(client, auth_server):
    token = auth_server.token()
    r = await client.get("/orders/7", headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert token not in r.text
    claims = verify_jwt(body["authorization"])
    assert claims["aud"] == "orders-api"
    assert claims["scope"] == "orders:read"
    assert claims["iss"] == "phantom-edge"
    assert jwt.get_unverified_header(body["authorization"][7:])["typ"] == "at+jwt"
    assert body["claims"]["client_id"] == "app"
    assert body["claims"]["scopes"] == ["orders:read"]
    assert body["claims"]["aud"] == ["orders-api"]


async def test_missing_token_401(client):
    r = await client.get("/orders/7")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="phantom-edge"'


async def test_malformed_header_400(client):
    r = await client.get("/orders/7", headers={"authorization": "Bearer a b c"})
    assert r.status_code == 400
    assert 'error="invalid_request"' in r.headers["www-authenticate"]


async def test_unknown_token_401(client):
    r = await client.get("/orders/7", headers=bearer("x" * 43))
    assert r.status_code == 401
    assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert r.json()["error"] == "invalid_token"


async def test_insufficient_scope_403(client, auth_server):
    token = auth_server.token("orders:read")
    r = await client.get("/orders/write", headers=bearer(token))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert 'scope="orders:write"' in r.headers["www-authenticate"]


async def test_revoked_at_as_then_pushed_401(client, auth_server):
    token = auth_server.token()
    assert (await client.get("/orders/1", headers=bearer(token))).status_code == 200
    auth_server.revoke(token)
    # Still cached at the edge until the revocation is pushed.
    assert (await client.get("/orders/1", headers=bearer(token))).status_code == 200
    r = await client.post("/_phantom/revocations", headers={
        "authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json",
    }, content=json.dumps({"token": token}))
    assert r.status_code == 204, r.text
    r = await client.get("/orders/1", headers=bearer(token))
    assert r.status_code == 401
    # bad admin credentials
    r = await client.post("/_phantom/revocations", headers={
        "authorization": "Bearer wrong-wrong-wrong-wrong", "content-type": "application/json",
    }, content=json.dumps({"token": token}))
    assert r.status_code == 401


async def test_metrics_route(client, auth_server):
    await client.get("/orders/1", headers=bearer(auth_server.token()))
    # [admin] is configured: only its bearer token reads the metrics (the core checks it).
    for headers in ({}, {"authorization": "Bearer wrong"}):
        r = await client.get("/_phantom/metrics", headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
        assert "phantom_edge" not in r.text
    r = await client.get("/_phantom/metrics", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert r.status_code == 200
    assert "phantom_edge_requests_total 1" in r.text


async def test_concurrent_requests_one_introspection(client, auth_server):
    token = auth_server.token()
    rs = await asyncio.gather(*[client.get("/orders/1", headers=bearer(token)) for _ in range(100)])
    assert [r.status_code for r in rs] == [200] * 100
    assert client.counter["introspections"] == 1


async def test_logs_never_contain_the_token(client, auth_server, caplog):
    caplog.set_level(logging.DEBUG)
    token = auth_server.token()
    await client.get("/orders/1", headers=bearer(token))
    await client.get("/orders/1", headers=bearer(token))
    await client.get("/orders/write", headers=bearer(token))
    await client.get("/orders/1", headers=bearer("y" * 43))
    await client.post("/_phantom/revocations", headers={
        "authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json",
    }, content=json.dumps({"token": token}))
    await client.get("/orders/1", headers=bearer(token))
    text = caplog.text
    assert "phantom_edge audit" in text
    assert token not in text
    assert "y" * 43 not in text
    assert base64.b64encode(token.encode()).decode() not in text


async def test_as_stopped_503():
    server = AuthServer()
    counter = {"introspections": 0}
    app, http = make_app(server.issuer, counter)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as c:
        ok = server.token()
        assert (await c.get("/orders/1", headers=bearer(ok))).status_code == 200
        fresh = server.token()
        server.stop()
        r = await c.get("/orders/1", headers=bearer(fresh))
        assert r.status_code == 503
        assert r.json()["error"]
        # the cached token is still served from the cache
        assert (await c.get("/orders/1", headers=bearer(ok))).status_code == 200
    await http.aclose()


async def test_query_token_is_removed_from_what_the_app_sees(auth_server):
    """RFC 6750 §2.3 (request.allow_query_token): the app gets the JWT in Authorization and the
    query without access_token; the opaque token reaches it nowhere."""

    async def echo_query(request: Request) -> JSONResponse:
        return JSONResponse({
            "authorization": request.headers.get("authorization"),
            "path": request.url.path,
            "query": request.url.query,
            "raw_path": request.scope.get("raw_path", b"").decode(),
        })

    cfg = edge_config(auth_server.issuer)
    cfg["request"] = {"allow_query_token": True}
    app = Starlette(routes=[Route("/orders/{rest:path}", echo_query)])
    app.add_middleware(PhantomTokenMiddleware, config=cfg)
    token = auth_server.token()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as c:
        r = await c.get(f"/orders/9?x=1&access_token={token}&y=2")
    assert r.status_code == 200, r.text
    body = r.json()
    assert token not in r.text
    assert body["path"] == "/orders/9"
    assert body["query"] == "x=1&y=2"
    assert verify_jwt(body["authorization"])["scope"] == "orders:read"


# A JWT-shaped token (header.payload.signature) that oidc-provider refuses to introspect.
JWT_SHAPED = ("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJtYWxsb3J5IiwiZXhwIjo0MTAyNDQ0ODAwfQ"
              ".c2lnbmF0dXJlLW9mLW5vLWtleS1hdC1hbGw")


async def test_a_jwt_shaped_token_is_invalid_not_an_outage(client, auth_server, caplog):
    """oidc-provider answers it 400 unsupported_token_type: 401 invalid_token (negatively
    cached), not a 503 and an as_failure warning."""
    caplog.set_level(logging.DEBUG)
    for _ in range(2):
        r = await client.get("/orders/1", headers=bearer(JWT_SHAPED))
        assert r.status_code == 401, r.text
        assert 'error="invalid_token"' in r.headers["www-authenticate"]
    assert client.counter["introspections"] == 1, "cached negatively"
    assert (await client.get("/orders/1", headers=bearer(auth_server.token()))).status_code == 200
    assert '"as_failure"' not in caplog.text
    assert '"introspected"' in caplog.text


async def test_started_before_the_authorization_server_serves_within_seconds():
    """Pods start in any order: an edge whose first JWKS fetch failed serves valid tokens
    within seconds of the AS coming up (it got 503 "JWKS refresh rate-limited" for the rest of
    jwks_min_refresh, 30 s)."""
    from fixture import free_port

    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    app, http = make_app(issuer, {"introspections": 0})
    server = None
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as c:
            down = await c.get("/orders/1", headers=bearer("some-opaque-token"))
            assert down.status_code == 503
            await asyncio.sleep(3)  # the AS comes up 3 s later
            server = AuthServer(port=port)
            assert server.issuer == issuer
            token = server.token()
            loop = asyncio.get_running_loop()
            up = loop.time()
            statuses = []
            while loop.time() - up < 10:
                r = await c.get("/orders/2", headers=bearer(token))
                statuses.append(r.status_code)
                if r.status_code == 200:
                    break
                assert r.status_code == 503, r.text
                await asyncio.sleep(0.2)
            assert statuses[-1] == 200, f"still failing 10 s after the AS came up: {statuses}"
    finally:
        await http.aclose()
        if server is not None:
            server.stop()
