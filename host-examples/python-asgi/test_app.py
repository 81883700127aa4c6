"""Imports the example app and checks the middleware is wired (no authorization server needed)."""

import pathlib
import sys

import httpx
import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("PHANTOM_EDGE_CLIENT_SECRET", "gateway-secret")
    monkeypatch.setenv("PHANTOM_EDGE_SIGNING_KEY", (REPO / "tests/vectors/keys/edge-ed25519.pem").read_text())
    monkeypatch.setenv("PHANTOM_EDGE_ADMIN_TOKEN", "admin-secret-0123456789")


async def test_example_app(env):
    import app as example

    transport = httpx.ASGITransport(app=example.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.example") as c:
        r = await c.get("/orders/1")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="phantom-edge"'
        assert (await c.get("/_phantom/metrics")).status_code == 401
        r = await c.get("/_phantom/metrics",
                        headers={"authorization": "Bearer admin-secret-0123456789"})
        assert r.status_code == 200 and "phantom_edge_requests_total 1" in r.text
        r = await c.post("/_phantom/revocations", json={"sub": "alice"})
        assert r.status_code == 401
