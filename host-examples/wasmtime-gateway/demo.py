#!/usr/bin/env python3
"""The phantom-gateway demo (`make demo`): a real authorization server (oidc-provider, opaque
tokens, RFC 9701 introspection, revocation), an echo upstream and phantom-gateway hosting the
phantom-edge component. It gets a token with client credentials, calls the gateway, and prints
what the upstream received and what clients see for missing, bad, unknown and revoked tokens."""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests/e2e/gateway"))
import harness  # noqa: E402


def show(title: str, r: harness.Response) -> None:
    print(f"\n== {title}\n   HTTP {r.status}")
    if "www-authenticate" in r.headers:
        print(f"   WWW-Authenticate: {r.headers['www-authenticate']}")
    if r.status != 200:
        print(f"   body: {r.body.decode()}")


def main() -> int:
    auth = harness.AuthServer()
    upstream = harness.EchoUpstream()
    gw = None
    try:
        gw = harness.Gateway(harness.config_toml(auth.issuer, upstream.url))
        print(f"authorization server  {auth.issuer}   (oidc-provider, opaque tokens)")
        print(f"echo upstream         {upstream.url}")
        print(f"phantom-gateway       {gw.url}   admin {gw.admin_url}")

        token = auth.token("orders:read")
        print(f"\nclient token (opaque, {len(token)} chars): {token[:6]}...  (the client holds only this)")
        r = gw.get("/orders/42", token)
        show("GET /orders/42 with the opaque token", r)
        if r.status != 200:
            return 1
        seen = r.json()
        forwarded = seen["headers"]["authorization"]
        jwt = forwarded.removeprefix("Bearer ")
        header, claims = harness.decode_jwt(jwt)
        print("   the upstream received Authorization: Bearer <JWT>")
        print("   JWT header: " + json.dumps(header))
        print("   JWT claims: " + json.dumps(claims, indent=2).replace("\n", "\n   "))
        print(f"   opaque token reached the upstream: {token in json.dumps(seen)}")

        r2 = gw.get("/orders/43", token)
        print(f"\n== same token again: HTTP {r2.status} (answered from the cache, no introspection)")

        show("no token", gw.get("/orders/42"))
        show("malformed Authorization header", gw.get("/orders/42", headers={"authorization": "Bearer a b"}))
        show("unknown token", gw.get("/orders/42", "x" * 43))
        show("token without orders:write on /orders/write", gw.get("/orders/write/1", token))

        auth.revoke(token)
        pushed = gw.revoke({"token": token})
        print(f"\n== revoked at the authorization server, pushed to the admin listener: HTTP {pushed.status}")
        show("the revoked token, at once", gw.get("/orders/42", token))
        metrics = harness.request("GET", f"{gw.admin_url}/metrics").body.decode()
        print("\n== metrics (excerpt)")
        for line in metrics.splitlines():
            if line.startswith("phantom_edge_") and not line.startswith("#"):
                print("   " + line)
        return 0
    finally:
        if gw is not None:
            gw.stop()
        upstream.stop()
        auth.stop()


if __name__ == "__main__":
    sys.exit(main())
