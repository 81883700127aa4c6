"""Start the authorization-server fixture (server.mjs) from Python tests: `AuthServer()` runs
`node server.mjs` on a free port and offers `issuer`, `token(scope)`, `revoke(token)` and
`stop()`. Standard library only; used by the gateway end-to-end tests and demo
(tests/e2e/gateway/harness.py) and by the Python SDK's (bindings/python/tests/e2e_support.py).

DPoP (RFC 9449): `dpop_proof(key, method, url, ...)` makes a proof, `AuthServer.dpop_token(key)`
gets a token bound to `key`, `AuthServer.introspect(token)` shows the binding (`cnf.jkt`). These
need PyJWT and cryptography (`pyjwt[crypto]`), imported only when called, so the module itself
stays standard-library only."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

AS_DIR = pathlib.Path(__file__).resolve().parent


def read_ready(proc: subprocess.Popen, what: str, seconds: float = 60) -> str:
    timer = threading.Timer(seconds, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
    finally:
        timer.cancel()
    if not line.startswith("READY "):
        raise RuntimeError(f"{what} did not start (exit {proc.poll()}): {line!r}")
    return line[len("READY "):]


def stop_process(proc: Optional[subprocess.Popen]) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)


def request(method: str, url: str, headers: Optional[dict[str, str]] = None,
            body: Optional[bytes] = None, timeout: float = 10) -> Response:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


def free_port() -> int:
    """A port nothing listens on now (for a server started later, e.g. an AS started after the
    edge that uses it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def dpop_jwk(key: Any) -> dict[str, str]:
    """The public JWK of `key` (a `cryptography` EC private key), as a DPoP proof's `jwk` header
    carries it."""
    from jwt.algorithms import ECAlgorithm

    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {k: jwk[k] for k in ("kty", "crv", "x", "y")}


def jwk_thumbprint(key: Any) -> str:
    """RFC 7638 thumbprint of `key`'s public JWK: what a token bound to it carries as `cnf.jkt`."""
    canonical = json.dumps(dpop_jwk(key), sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def dpop_proof(key: Any, method: str, url: str, access_token: Optional[str] = None, *,
               jti: Optional[str] = None, iat: Optional[int] = None) -> str:
    """An RFC 9449 DPoP proof signed by `key` (an EC P-256 private key from `cryptography`):
    header `typ: dpop+jwt`, `alg: ES256`, `jwk` = the public key; claims a fresh random `jti`
    (or `jti`), `htm` = `method`, `htu` = `url` without query and fragment, `iat` now (or `iat`),
    and `ath` = base64url(SHA-256(`access_token`)) when one is given (a proof for a resource
    request; a token request has none)."""
    import jwt

    claims: dict[str, Any] = {
        "jti": jti if jti is not None else base64.urlsafe_b64encode(os.urandom(18)).decode(),
        "htm": method,
        "htu": url.split("#", 1)[0].split("?", 1)[0],
        "iat": int(time.time()) if iat is None else iat,
    }
    if access_token is not None:
        digest = hashlib.sha256(access_token.encode("ascii")).digest()
        claims["ath"] = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return jwt.encode(claims, key, algorithm="ES256",
                      headers={"typ": "dpop+jwt", "jwk": dpop_jwk(key)})


class AuthServer:
    """panva/oidc-provider with the project's fixture (tests/e2e/authorization-server)."""

    def __init__(self, env: Optional[dict[str, str]] = None, port: int = 0) -> None:
        """`port` 0 picks a free one; a fixed port lets a test start an edge before its AS
        (see `free_port`)."""
        if shutil.which("node") is None:
            raise RuntimeError("node not found on PATH")
        if not (AS_DIR / "node_modules/oidc-provider").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=AS_DIR, check=True)
        self.proc = subprocess.Popen(
            ["node", "server.mjs"], cwd=AS_DIR, env=dict(os.environ, **(env or {}), AS_PORT=str(port)),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            self.issuer = read_ready(self.proc, "authorization server", 30)
        except Exception:
            self.stop()
            raise

    def token(self, scope: str = "orders:read") -> str:
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope})
        r = request("POST", f"{self.issuer}/token", {
            "authorization": _basic("app", "app-secret"),
            "content-type": "application/x-www-form-urlencoded"}, body.encode())
        if r.status != 200:
            raise RuntimeError(f"token request failed: {r.status} {r.body!r}")
        return r.json()["access_token"]

    def dpop_token(self, key: Any, scope: str = "orders:read") -> str:
        """A client-credentials access token bound to `key` (RFC 9449 §5): the token request
        carries a DPoP proof made with it, so oidc-provider answers `token_type: DPoP` and its
        introspection carries `cnf.jkt` = `jwk_thumbprint(key)`. `key`: an EC P-256 private key
        from `cryptography` (`ec.generate_private_key(ec.SECP256R1())`)."""
        url = f"{self.issuer}/token"
        body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": scope})
        r = request("POST", url, {
            "authorization": _basic("app", "app-secret"),
            "content-type": "application/x-www-form-urlencoded",
            "dpop": dpop_proof(key, "POST", url)}, body.encode())
        if r.status != 200:
            raise RuntimeError(f"DPoP token request failed: {r.status} {r.body!r}")
        answer = r.json()
        if answer.get("token_type") != "DPoP":
            raise RuntimeError(f"the token is not DPoP-bound: token_type {answer.get('token_type')!r}")
        return str(answer["access_token"])

    def introspect(self, token: str) -> dict[str, Any]:
        """The AS's RFC 7662 introspection answer (plain JSON) for one of `app`'s tokens, asked as
        `app` itself (a client may introspect its own tokens)."""
        body = urllib.parse.urlencode({"token": token})
        r = request("POST", f"{self.issuer}/token/introspection", {
            "authorization": _basic("app", "app-secret"),
            "accept": "application/json",
            "content-type": "application/x-www-form-urlencoded"}, body.encode())
        if r.status != 200:
            raise RuntimeError(f"introspection at the AS failed: {r.status} {r.body!r}")
        return dict(r.json())

    def revoke(self, token: str) -> None:
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        r = request("POST", f"{self.issuer}/token/revocation", {
            "authorization": _basic("gateway", "gateway-secret"),
            "content-type": "application/x-www-form-urlencoded"}, body.encode())
        if r.status != 200:
            raise RuntimeError(f"revocation at the AS failed: {r.status}")

    def stop(self) -> None:
        stop_process(self.proc)
