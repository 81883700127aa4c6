"""Processes for the gateway demo and end-to-end tests: the real authorization server
(oidc-provider), an echo upstream, and phantom-gateway. Standard library only, so the demo runs
on a fresh machine with nothing but python3, node/npm and cargo."""

from __future__ import annotations

import base64
import http.server
import signal
import socket
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from typing import Any, Optional

REPO = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests/e2e/authorization-server"))

from fixture import AuthServer, Response, read_ready, request, stop_process  # noqa: E402

__all__ = ["AuthServer", "EchoUpstream", "Gateway", "JcoServe", "Response", "config_toml", "decode_jwt",
           "request"]
EDGE_KEY_PATH = REPO / "tests/vectors/keys/edge-ed25519.pem"
ADMIN_TOKEN = "admin-secret-0123456789"


def target_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def gateway_binary() -> pathlib.Path:
    return pathlib.Path(
        os.environ.get("PHANTOM_GATEWAY_BIN", target_dir() / "debug/phantom-gateway")
    )


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that does not log each request to stderr."""

    def log_message(self, *args: Any) -> None:
        pass


def read_body(h: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body, sent with a content-length or chunked (the proxy component streams
    request bodies it does not know the length of)."""
    if h.headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        while True:
            size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return out
            out += h.rfile.read(size)
            h.rfile.readline()
    length = int(h.headers.get("content-length") or 0)
    return h.rfile.read(length) if length else b""


def serve(handler: type[http.server.BaseHTTPRequestHandler]) -> http.server.ThreadingHTTPServer:
    """`handler` served on 127.0.0.1 (a free port) from a daemon thread; `shutdown()` stops it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class EchoUpstream:
    """An upstream that answers every request with what it received, and remembers it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        outer = self

        class Handler(QuietHandler):
            def _answer(self) -> None:
                body = read_body(self)
                record = {"method": self.command, "path": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()},
                          "raw_headers": [[k, v] for k, v in self.headers.items()],
                          "body": body.decode("utf-8", "replace")}
                outer.seen.append(record)
                out = json.dumps(record).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlowIntrospection:
    """An RFC 7662 introspection endpoint that answers after `delay` seconds: "active" for every
    token, except those starting with `inactive-`."""

    def __init__(self, issuer: str, delay: float) -> None:
        class Handler(QuietHandler):
            def do_POST(self) -> None:
                form = read_body(self).decode()
                token = urllib.parse.parse_qs(form).get("token", [""])[0]
                time.sleep(delay)
                now = int(time.time())
                answer = ({"active": False} if token.startswith("inactive-") else
                          {"active": True, "scope": "orders:read orders:write",
                           "aud": "orders-api", "iss": issuer, "sub": "alice",
                           "client_id": "app", "exp": now + 600, "iat": now})
                body = json.dumps(answer).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the edge gave up on us

        self.server = serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"

    def stop(self) -> None:
        self.server.shutdown()


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


def rfc7662_config(introspection: SlowIntrospection, upstream: str, *, admin: bool = True) -> str:
    """`config_toml` for a fake RFC 7662 endpoint (`SlowIntrospection`) instead of oidc-provider:
    no JWKS, plain JSON answers."""
    issuer = "https://as.example"
    return (config_toml(issuer, upstream, admin=admin)
            .replace(f'introspection_endpoint = "{issuer}/token/introspection"',
                     f'introspection_endpoint = "{introspection.url}"')
            .replace('jwks_uri = "https://as.example/jwks"\n', "")
            .replace('dialect = "rfc9701"', 'dialect = "rfc7662"'))


class Gateway:
    """phantom-gateway with a config file in a temp dir; stderr (the logs) kept for scanning."""

    def __init__(self, config: str, mode: str = "edge", env: Optional[dict[str, str]] = None) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="phantom-gateway-")
        path = pathlib.Path(self.dir.name) / "phantom-edge.toml"
        path.write_text(config)
        self.log_path = pathlib.Path(self.dir.name) / "gateway.log"
        self.log = open(self.log_path, "wb")
        env = {**os.environ, "PHANTOM_EDGE_CLIENT_SECRET": "gateway-secret",
               "PHANTOM_EDGE_ADMIN_TOKEN": ADMIN_TOKEN, "RUST_LOG": "debug", **(env or {})}
        binary = gateway_binary()
        if not binary.is_file():
            raise RuntimeError(f"{binary} not built (cargo build -p phantom-gateway)")
        self.proc = subprocess.Popen(
            [str(binary), "--config", str(path), "--component", mode],
            stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
        )
        try:
            ready = dict(kv.split("=", 1) for kv in read_ready(self.proc, "phantom-gateway").split())
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
        stop_process(self.proc)
        self.log.close()
        return self.proc.returncode


JCO = REPO / "tests/component/jco/node_modules/.bin/jco"


class JcoServe:
    """The proxy component (`phantom_edge_proxy.wasm`) under `jco serve`: Node's wasi:http host
    (@bytecodealliance/jco and its preview2-shim), a host implementation independent of wasmtime.
    Same interface as `Gateway` without the admin listener. Config and secrets come from the
    environment, as under `wasmtime serve` or Spin."""

    def __init__(self, config: str) -> None:
        wasm = target_dir() / "wasm32-wasip2/release/phantom_edge_proxy.wasm"
        for need, how in ((JCO, "bash tests/component/jco/install.sh"),
                          (wasm, "cargo build --release -p phantom-edge-proxy --target wasm32-wasip2")):
            if not need.exists():
                raise RuntimeError(f"{need} missing ({how})")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.dir = tempfile.TemporaryDirectory(prefix="phantom-jco-serve-")
        self.log_path = pathlib.Path(self.dir.name) / "jco-serve.log"
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, PHANTOM_EDGE_CONFIG=config, PHANTOM_EDGE_AUDIT_LEVEL="debug",
                   PHANTOM_EDGE_CLIENT_SECRET="gateway-secret", PHANTOM_EDGE_ADMIN_TOKEN=ADMIN_TOKEN)
        # jco runs the server in a child node process: a session of its own, stopped as a group.
        self.proc = subprocess.Popen(
            [str(JCO), "serve", "--host", "127.0.0.1", "--port", str(port),
             "--jco-dir", str(pathlib.Path(self.dir.name) / "out"), str(wasm)],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        self.admin_url: Optional[str] = None
        if not wait_until(self._listening, 60):
            self.stop()
            raise RuntimeError(f"jco serve did not listen on {port}:\n{self.logs()}")

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"jco serve exited ({self.proc.returncode}):\n{self.logs()}")
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", int(self.url.rsplit(":", 1)[1]))) == 0

    get = Gateway.get

    def revoke(self, selector: dict[str, Any], admin_token: str = ADMIN_TOKEN) -> Response:
        """The proxy component's in-path revocation route (`[middleware] revocation_path`)."""
        return request("POST", self.url + "/_phantom/revocations", {
            "authorization": f"Bearer {admin_token}", "content-type": "application/json"},
            json.dumps(selector).encode())

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if not self.log.closed:
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


def audit_events(logs: str) -> list[tuple[str, str]]:
    """(kind, level) of every audit event in the logs: the proxy component writes each as a JSON
    line; phantom-gateway (edge mode) logs it as the `event` field of its own JSON lines."""
    out = []
    for line in logs.splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if not isinstance(obj, dict):
            continue
        event = obj.get("fields", {}).get("event") if "fields" in obj else obj
        if isinstance(event, str):
            event = json.loads(event)
        if isinstance(event, dict) and "kind" in event:
            out.append((event["kind"], event["level"]))
    return out
