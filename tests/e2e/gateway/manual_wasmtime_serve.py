"""Manual check (not in CI: wasmtime-cli is a ~9-minute build): the proxy component under
`wasmtime serve`, against the real authorization server and the echo upstream.

    cargo install wasmtime-cli --version 48.0.8 --locked --root /tmp/wasmtime-cli
    cargo build --release -p phantom-edge-proxy --target wasm32-wasip2
    bash tests/e2e/gateway/ci.sh -k nothing      # venv + oidc-provider, if not there yet
    WASMTIME=/tmp/wasmtime-cli/bin/wasmtime target/e2e-venv/bin/python tests/e2e/gateway/manual_wasmtime_serve.py

Exits non-zero on the first unexpected answer."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys

import harness


def main() -> int:
    wasmtime = os.environ.get("WASMTIME", "wasmtime")
    wasm = harness.target_dir() / "wasm32-wasip2/release/phantom_edge_proxy.wasm"
    auth, upstream = harness.AuthServer(), harness.EchoUpstream()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = harness.config_toml(auth.issuer, upstream.url, admin=False)
    proc = subprocess.Popen(
        [wasmtime, "serve", "--addr", f"127.0.0.1:{port}", "-S", "cli=y",
         "--env", f"PHANTOM_EDGE_CONFIG={config}", "--env", "PHANTOM_EDGE_CLIENT_SECRET=gateway-secret",
         "--env", f"PHANTOM_EDGE_ADMIN_TOKEN={harness.ADMIN_TOKEN}",
         str(pathlib.Path(wasm))],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    token = ""
    try:
        def listening() -> bool:
            with socket.socket() as c:
                return c.connect_ex(("127.0.0.1", port)) == 0

        assert harness.wait_until(listening, 60)
        token = auth.token("orders:read")
        bearer = {"authorization": f"Bearer {token}"}
        r = harness.request("GET", url + "/orders/1", bearer)
        assert r.status == 200, r.body
        assert r.json()["headers"]["authorization"].count(".") == 2 and token not in r.body.decode()
        for path, headers, status in [("/orders/1", {}, 401),
                                      ("/orders/1", {"authorization": "Bearer a b"}, 400),
                                      ("/orders/write/1", bearer, 403), ("/admin", bearer, 404)]:
            got = harness.request("GET", url + path, headers).status
            assert got == status, (path, got, status)
        auth.revoke(token)  # instance per request: no cache, so at once
        assert harness.request("GET", url + "/orders/1", bearer).status == 401
        fresh = auth.token("orders:read")
        auth.stop()
        assert harness.request("GET", url + "/orders/1",
                               {"authorization": f"Bearer {fresh}"}).status == 503
        print("wasmtime serve: forward with a minted JWT, 401/400/403/404, AS revocation 401, AS down 503: ok")
        return 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=15)[0]
        assert not token or token not in out, "token in wasmtime serve output"
        upstream.stop()
        auth.stop()


if __name__ == "__main__":
    sys.exit(main())
