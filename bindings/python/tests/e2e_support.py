"""Helpers for the end-to-end tests against the real oidc-provider fixture."""

from __future__ import annotations

import pathlib
import sys
from typing import Any, Optional

REPO = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests/e2e/authorization-server"))

from fixture import AuthServer  # noqa: E402  (the shared authorization-server fixture)

__all__ = ["ADMIN_TOKEN", "EDGE_KEY", "AuthServer", "edge_config"]

EDGE_KEY = (REPO / "tests/vectors/keys/edge-ed25519.pem").read_text()
ADMIN_TOKEN = "admin-secret-0123456789"


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
