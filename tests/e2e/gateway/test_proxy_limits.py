"""End-to-end: the wasi:http proxy component's limits, under phantom-gateway's proxy mode
(wasmtime-wasi-http) and `jco serve`. The authorization server's `timeout` is one deadline for
the whole call (connect, headers, the entire body), not a per-phase timeout an answer can
trickle past; and bodies between the client and the upstream are streamed, not buffered whole
in the instance (they used to be, capped at 16 MiB each)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.client
import json
import pathlib
import socket
import time
from typing import Any, Iterator, Optional

import pytest

import harness

MODES = ["proxy", "jco"]


class TricklingIntrospection:
    """An RFC 7662 endpoint that sends its status and headers at once, then an "active" body
    one byte every `interval` seconds, or spread over `total` seconds (a slow or hostile
    authorization server). Duck-types `harness.SlowIntrospection` for `harness.rfc7662_config`."""

    def __init__(self, interval: float = 0, total: float = 0,
                 issuer: str = "https://as.example") -> None:
        self.calls = 0
        outer = self

        class Handler(harness.QuietHandler):
            def do_POST(self) -> None:
                outer.calls += 1
                self.rfile.read(int(self.headers.get("content-length") or 0))
                now = int(time.time())
                body = json.dumps({"active": True, "scope": "orders:read orders:write",
                                   "aud": "orders-api", "iss": issuer, "sub": "alice",
                                   "client_id": "app", "exp": now + 600, "iat": now}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.flush()
                    step = interval or total / len(body)
                    for i in range(len(body)):
                        self.wfile.write(body[i:i + 1])
                        self.wfile.flush()
                        time.sleep(step)
                except OSError:
                    pass  # the edge gave up on us

        self.server = harness.serve(Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/introspect"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(mode: str, cfg: str) -> harness.Gateway | harness.JcoServe:
    if mode == "jco":
        return harness.JcoServe(cfg.replace('admin_listen = "127.0.0.1:0"\n', ""))
    return harness.Gateway(cfg, mode)


def through_trickle(mode: str, trickle: TricklingIntrospection,
                    token: str) -> tuple[Any, float, list[dict[str, Any]]]:
    """One request through a gateway whose AS is `trickle`: the answer, how long it took, and
    what the upstream got."""
    upstream = harness.EchoUpstream()
    gw = start(mode, harness.rfc7662_config(trickle, upstream.url))  # type: ignore[arg-type]
    try:
        t0 = time.monotonic()
        r = gw.get("/orders/1", token)
        return r, time.monotonic() - t0, upstream.seen
    finally:
        gw.stop()
        upstream.stop()
        trickle.stop()


@pytest.mark.parametrize("mode", MODES)
def test_authorization_server_timeout_is_one_deadline_for_the_whole_answer(mode: str) -> None:
    """timeout = "2s", an AS that trickles its body a byte every 0.5 s (each byte well within
    any per-byte timeout): 503 after about 2 s, never the ~10 s request deadline (504) or a 200
    from an answer that completed late, and nothing forwarded."""
    trickle = TricklingIntrospection(interval=0.5)
    r, elapsed, seen = through_trickle(mode, trickle, "tok-trickle")
    assert r.status == 503, (r.status, r.body)
    assert 1.5 < elapsed < 3.5, elapsed
    assert trickle.calls == 1
    assert seen == []


@pytest.mark.parametrize("mode", MODES)
def test_an_answer_completing_after_the_deadline_is_refused(mode: str) -> None:
    """The whole answer takes ~2.6 s (a byte every ~15 ms) with timeout = "2s": the proxy stops
    reading at the deadline and the request is refused (503), though the answer says active."""
    r, elapsed, seen = through_trickle(mode, TricklingIntrospection(total=2.6), "tok-late")
    assert r.status == 503, (r.status, r.body)
    assert elapsed < 2.8, elapsed
    assert seen == []


def upload(url: str, path: str, token: str, body: bytes) -> tuple[int, bytes]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.request("POST", path, body, {"authorization": f"Bearer {token}",
                                          "content-type": "application/octet-stream"})
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


class Upstreams:
    def __init__(self, mode: str) -> None:
        self.introspection = harness.SlowIntrospection("https://as.example", 0)
        self.upstream = harness.EchoUpstream()
        self.gw = start(mode, harness.rfc7662_config(self.introspection, self.upstream.url))

    def close(self) -> None:
        self.gw.stop()
        self.upstream.stop()
        self.introspection.stop()


@pytest.fixture(scope="module", params=MODES)
def bodies(request: pytest.FixtureRequest) -> Iterator[Upstreams]:
    s = Upstreams(request.param)
    yield s
    s.close()


def test_a_body_beyond_the_old_buffer_cap_is_forwarded_intact_both_ways(bodies: Upstreams) -> None:
    """24 MiB up (the proxy refused more than 16 MiB with 413) and the echo of it, larger still,
    back down (it answered 502 beyond 16 MiB)."""
    body = bytes(range(32, 127)) * (24 * 1024 * 1024 // 95)
    status, answer = upload(bodies.gw.url, "/orders/write/big", "tok-big", body)
    assert status == 200, answer[:300]
    seen = bodies.upstream.seen[-1]
    assert seen["path"] == "/orders/write/big"
    assert len(seen["body"]) == len(body)
    assert hashlib.sha256(seen["body"].encode()).digest() == hashlib.sha256(body).digest()
    echoed: dict[str, Any] = json.loads(answer)
    assert echoed["body"].encode() == body


def test_a_body_is_not_read_before_the_core_decided(bodies: Upstreams) -> None:
    """The client sends the headers of a 1 MiB upload and withholds the body: the edge asks the
    authorization server and answers 401 (the token is inactive) without waiting for the body,
    and nothing reaches the upstream."""
    before = len(bodies.upstream.seen)
    host, port = bodies.gw.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        t0 = time.monotonic()
        sock.sendall(b"POST /orders/write/x HTTP/1.1\r\nHost: edge\r\n"
                     b"Authorization: Bearer inactive-upload\r\n"
                     b"Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.split(b" ", 2)[1] == b"401", answer[:300]
        assert time.monotonic() - t0 < 5
    assert len(bodies.upstream.seen) == before


def peak_rss_kib(pid: int) -> Optional[int]:
    status = pathlib.Path(f"/proc/{pid}/status")
    if not status.exists():
        return None
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def test_concurrent_uploads_do_not_hold_their_bodies_in_memory() -> None:
    """Six concurrent 12 MiB uploads echoed back through phantom-gateway's proxy mode: its peak
    RSS grows by well under the 144 MiB the bodies add up to (each instance held the request
    body and the upstream's answer whole: about 50 MB per request)."""
    s = Upstreams("proxy")
    try:
        assert isinstance(s.gw, harness.Gateway)
        pid = s.gw.proc.pid
        body = b"z" * (12 * 1024 * 1024)
        # Warm up: compiled code, the pooled structures of one request.
        assert upload(s.gw.url, "/orders/write/warm", "tok-rss", body)[0] == 200
        base = peak_rss_kib(pid)
        if base is None:
            pytest.skip("no /proc/<pid>/status")
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(lambda i: upload(s.gw.url, f"/orders/write/{i}", "tok-rss",
                                                     body)[0], range(6)))
        assert results == [200] * 6
        peak = peak_rss_kib(pid)
        assert peak is not None
        grown_mib = (peak - base) / 1024
        assert grown_mib < 48, f"peak RSS grew by {grown_mib:.0f} MiB"
    finally:
        s.close()


def test_header_hygiene_and_refused_targets_under_jco() -> None:
    """test_hygiene.py's proxy-mode checks, under `jco serve` (no phantom-gateway in front to
    refuse targets first): the guest drops the client's forwarding headers and `_` spellings
    of its own and stripped headers, sets x-forwarded-host/-proto, and refuses `*`."""
    introspection = harness.SlowIntrospection("https://as.example", 0)
    upstream = harness.EchoUpstream()
    cfg = harness.rfc7662_config(introspection, upstream.url)
    cfg += '\n[upstream]\nheader = "x-jwt-assertion"\nscheme = ""\nstrip_headers = ["x-internal"]\n'
    gw = start("jco", cfg)
    try:
        r = gw.get("/orders/1", "tok-jco", {
            "X-Forwarded-For": "6.6.6.6", "X-Forwarded-Host": "evil.example",
            "X-Forwarded-Proto": "https", "Forwarded": "for=1.2.3.4", "X-Real-IP": "6.6.6.6",
            "X_Jwt_Assertion": "forged", "X_Internal": "forged", "X-Internal": "forged"})
        assert r.status == 200, r.body
        raw = upstream.seen[-1]["raw_headers"]
        names = [k.lower() for k, _ in raw]
        for gone in ("forwarded", "x-real-ip", "x-forwarded-for", "x_jwt_assertion",
                     "x_internal", "x-internal"):
            assert gone not in names, (gone, raw)
        host = gw.url.removeprefix("http://")
        assert [v for k, v in raw if k.lower() == "x-forwarded-host"] == [host]
        assert [v for k, v in raw if k.lower() == "x-forwarded-proto"] == ["http"]
        before = len(upstream.seen)
        h, port = host.split(":")
        conn = http.client.HTTPConnection(h, int(port), timeout=10)
        try:
            conn.request("OPTIONS", "*", headers={"authorization": "Bearer tok-jco"})
            assert conn.getresponse().status == 400
        finally:
            conn.close()
        assert len(upstream.seen) == before
    finally:
        gw.stop()
        upstream.stop()
        introspection.stop()
