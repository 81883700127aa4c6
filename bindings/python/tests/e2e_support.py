"""Helpers for the end-to-end tests against the real oidc-provider fixture."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import threading
from typing import Any, Optional

import httpx

REPO = pathlib.Path(__file__).resolve().parents[3]
AS_DIR = REPO / "tests/e2e/authorization-server"
EDGE_KEY = (REPO / "tests/vectors/keys/edge-ed25519.pem").read_text()
ADMIN_TOKEN = "admin-secret-0123456789"


class AuthServer:
    def __init__(self) -> None:
        if shutil.which("node") is None:
            raise RuntimeError("node not found on PATH")
        if not (AS_DIR / "node_modules/oidc-provider").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=AS_DIR, check=True)
        env = dict(os.environ, AS_PORT="0")
        self.proc = subprocess.Popen(
            ["node", "server.mjs"], cwd=AS_DIR, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        line = ""
        timer = threading.Timer(30, self.proc.kill)
        timer.start()
        try:
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline().strip()
        finally:
            timer.cancel()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"authorization server did not start: {line!r}")
        self.issuer = line.split(" ", 1)[1]

    def token(self, scope: str = "orders:read") -> str:
        r = httpx.post(
            f"{self.issuer}/token", auth=("app", "app-secret"),
            data={"grant_type": "client_credentials", "scope": scope},
        )
        r.raise_for_status()
        return r.json()["access_token"]

    def revoke(self, token: str) -> None:
        r = httpx.post(
            f"{self.issuer}/token/revocation", auth=("gateway", "gateway-secret"),
            data={"token": token, "token_type_hint": "access_token"},
        )
        assert r.status_code == 200

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def edge_config(issuer: str, middleware: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "authorization_server": {
            "issuer": issuer,
            "introspection_endpoint": f"{issuer}/token/introspection",
            "jwks_uri": f"{issuer}/jwks",
            "client_id": "gateway",
            "client_secret": "gateway-secret",
            "dialect": "rfc9701",
            "timeout": "2s",
        },
        "cache": {"ignore_no_store": True},
        "assertions": {"signing_key": EDGE_KEY, "kid": "edge-1"},
        "admin": {"token": ADMIN_TOKEN},
        "routes": [
            {"path_prefix": "/orders/write", "required_scopes": ["orders:write"],
             "audience": "orders-api"},
            {"path_prefix": "/orders", "required_scopes": ["orders:read"],
             "audience": "orders-api"},
        ],
    }
    if middleware is not None:
        cfg["middleware"] = middleware
    return cfg
