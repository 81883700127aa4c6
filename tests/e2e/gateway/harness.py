"""Processes for the gateway demo and end-to-end tests: the real authorization server
(oidc-provider), an echo upstream, and phantom-gateway. Standard library only, so the demo runs
on a fresh machine with nothing but python3, node/npm and cargo."""

from __future__ import annotations

import base64
import http.server
import json
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Optional

REPO = pathlib.Path(__file__).resolve().parents[3]
AS_DIR = REPO / "tests/e2e/authorization-server"
EDGE_KEY_PATH = REPO / "tests/vectors/keys/edge-ed25519.pem"
ADMIN_TOKEN = "admin-secret-0123456789"


def target_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def gateway_binary() -> pathlib.Path:
    return pathlib.Path(
        os.environ.get("PHANTOM_GATEWAY_BIN", target_dir() / "debug/phantom-gateway")
    )


def _read_ready(proc: subprocess.Popen, what: str, seconds: float = 60) -> str:
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


def _stop(proc: Optional[subprocess.Popen]) -> None:
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


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class AuthServer:
    """panva/oidc-provider with the project's fixture (tests/e2e/authorization-server)."""

    def __init__(self, env: Optional[dict[str, str]] = None) -> None:
        if shutil.which("node") is None:
            raise RuntimeError("node not found on PATH")
        if not (AS_DIR / "node_modules/oidc-provider").is_dir():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                           cwd=AS_DIR, check=True)
        self.proc = subprocess.Popen(
            ["node", "server.mjs"], cwd=AS_DIR, env=dict(os.environ, AS_PORT="0", **(env or {})),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        try:
            self.issuer = _read_ready(self.proc, "authorization server", 30)
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

    def revoke(self, token: str) -> None:
        body = urllib.parse.urlencode({"token": token, "token_type_hint": "access_token"})
        r = request("POST", f"{self.issuer}/token/revocation", {
            "authorization": _basic("gateway", "gateway-secret"),
            "content-type": "application/x-www-form-urlencoded"}, body.encode())
        if r.status != 200:
            raise RuntimeError(f"revocation at the AS failed: {r.status}")

    def stop(self) -> None:
        _stop(self.proc)


class EchoUpstream:
    """An upstream that answers every request with what it received, and remembers it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                record = {"method": self.command, "path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "body": body.decode("utf-8", "replace")}
                outer.seen.append(record)
                out = json.dumps(record).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_toml(issuer: str, upstream: str, *, admin: bool = True) -> str:
    """The demo's phantom-edge.toml: RFC 9701 introspection at oidc-provider, minted EdDSA JWTs
    for the upstream, one route needing orders:read for audience orders-api."""
    key = EDGE_KEY_PATH.read_text()
    admin_listen = 'admin_listen = "127.0.0.1:0"\n' if admin else ""
    return f'''# phantom-edge.toml for the phantom-gateway demo and end-to-end tests
[authorization_server]
issuer = "{issuer}"
introspection_endpoint = "{issuer}/token/introspection"
jwks_uri = "{issuer}/jwks"
client_id = "gateway"
client_secret_env = "PHANTOM_EDGE_CLIENT_SECRET"
dialect = "rfc9701"
timeout = "2s"

[cache]
max_ttl = "300s"
negative_ttl = "10s"
# oidc-provider marks introspection answers Cache-Control: no-store
ignore_no_store = true

[assertions]
signing_key = """{key}"""
kid = "edge-1"
max_ttl = "60s"

[admin]
token_env = "PHANTOM_EDGE_ADMIN_TOKEN"

[[routes]]
path_prefix = "/orders/write"
required_scopes = ["orders:write"]
audience = "orders-api"

[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
audience = "orders-api"

[gateway]
listen = "127.0.0.1:0"
upstream = "{upstream}"
{admin_listen}request_timeout = "10s"
shutdown_grace = "2s"
'''


class Gateway:
    """phantom-gateway with a config file in a temp dir; stderr (the logs) kept for scanning."""

    def __init__(self, config: str, mode: str = "edge", env: Optional[dict[str, str]] = None) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="phantom-gateway-")
        path = pathlib.Path(self.dir.name) / "phantom-edge.toml"
        path.write_text(config)
        self.log_path = pathlib.Path(self.dir.name) / "gateway.log"
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, PHANTOM_EDGE_CLIENT_SECRET="gateway-secret",
                   PHANTOM_EDGE_ADMIN_TOKEN=ADMIN_TOKEN, RUST_LOG="debug", **(env or {}))
        binary = gateway_binary()
        if not binary.is_file():
            raise RuntimeError(f"{binary} not built (cargo build -p phantom-gateway)")
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(path), "--component", mode],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
        )
        try:
            ready = dict(kv.split("=", 1) for kv in _read_ready(self.proc, "phantom-gateway").split())
        except Exception:
            self.stop()
            print(self.logs())
            raise
        self.url = f"http://{ready['listen']}"
        self.admin_url = f"http://{ready['admin']}" if "admin" in ready else None

    def get(self, path: str, token: Optional[str] = None,
            headers: Optional[dict[str, str]] = None) -> Response:
        h = dict(headers or {})
        if token is not None:
            h["authorization"] = f"Bearer {token}"
        return request("GET", self.url + path, h)

    def revoke(self, selector: dict[str, Any], admin_token: str = ADMIN_TOKEN) -> Response:
        assert self.admin_url is not None
        return request("POST", self.admin_url + "/revocations", {
            "authorization": f"Bearer {admin_token}", "content-type": "application/json"},
            json.dumps(selector).encode())

    def logs(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        _stop(self.proc)
        self.log.close()
        return self.proc.returncode


def decode_jwt(jwt: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and payload of a compact JWS (no verification: for display and claim checks)."""
    def part(p: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    h, p, _ = jwt.split(".")
    return part(h), part(p)


def wait_until(predicate: Any, seconds: float = 10) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
