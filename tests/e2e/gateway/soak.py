"""Soak: phantom-gateway under mixed traffic for SOAK_SECONDS (default 1800) against the real
authorization server (oidc-provider), restarted every AS_RESTART_SECONDS (default 300) with a new
signing key set (key rotation), with JWKS refreshes (jwks_refresh = 60s), cache hits, misses,
revocations through the admin route; phantom-gateway's RSS sampled every 10 s.

    target/e2e-venv/bin/python tests/e2e/gateway/soak.py      (after `make gateway`, or with
    PHANTOM_GATEWAY_BIN=target/release/phantom-gateway after a release build)

Not a test of CI: it prints a report (statuses, anything unexpected, RSS samples) and exits 1 if
anything unexpected happened: a revoked token forwarded, a status other than 200/401/503, a 503
outside an AS restart window, or a request error. Loopback only; the request loops are bounded
by SOAK_SECONDS and a fixed rate."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from typing import Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import harness  # noqa: E402
from fixture import AS_DIR, AuthServer, free_port, read_ready, stop_process  # noqa: E402

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "1800"))
RESTART_EVERY = float(os.environ.get("AS_RESTART_SECONDS", "300"))
# A restart takes the AS away for a moment; answers for new tokens may be 503 until it is back
# and its new keys are fetched (within about a second: the core retries failed JWKS fetches).
RESTART_GRACE = 5.0
POOL = 20
RATE = 100  # hit requests per second, in total

KEYGEN = """
import { generateKeyPair, exportJWK } from 'jose';
const out = [];
for (const [alg, opts] of [['ES256', {}], ['RS256', { modulusLength: 2048 }]]) {
  const { privateKey } = await generateKeyPair(alg, { extractable: true, ...opts });
  const jwk = await exportJWK(privateKey);
  out.push({ ...jwk, alg, use: 'sig', kid: `soak-${alg}-${process.argv[1]}` });
}
console.log(JSON.stringify({ keys: out }));
"""


class RotatingAuthServer:
    """oidc-provider on a fixed port; `restart()` brings it back with a new key set."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="phantom-soak-as-")
        root = pathlib.Path(self.dir.name)
        for name in ("server.mjs", "package.json"):
            shutil.copy(AS_DIR / name, root / name)
        (root / "node_modules").symlink_to(AS_DIR / "node_modules")
        self.generation = 0
        self.proc: Optional[subprocess.Popen] = None
        self.start()

    def start(self) -> None:
        root = pathlib.Path(self.dir.name)
        keys = subprocess.run(["node", "--input-type=module", "-e", KEYGEN, str(self.generation)],
                              cwd=AS_DIR, check=True, capture_output=True, text=True).stdout
        (root / "keys.json").write_text(keys)
        self.proc = subprocess.Popen(["node", "server.mjs"], cwd=root,
                                     env=dict(os.environ, AS_PORT=str(self.port)),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.issuer = read_ready(self.proc, "authorization server", 30)

    def restart(self) -> None:
        stop_process(self.proc)
        self.generation += 1
        self.start()

    token = AuthServer.token

    def stop(self) -> None:
        stop_process(self.proc)
        self.dir.cleanup()


def rss_kib(pid: int) -> int:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    auth = RotatingAuthServer()
    upstream = harness.EchoUpstream()
    config = harness.config_toml(auth.issuer, upstream.url).replace(
        'timeout = "2s"', 'timeout = "2s"\njwks_refresh = "60s"')
    gw = harness.Gateway(config, "edge", env={"RUST_LOG": "info"})
    statuses: Counter[str] = Counter()
    unexpected: list[str] = []
    rss: list[tuple[float, int]] = []
    revoked: dict[str, float] = {}  # token -> when its revocation was answered
    lock = threading.Lock()
    restarting_until = 0.0
    start = time.monotonic()
    stop = threading.Event()

    def note(kind: str, status: int, token: str, sent: float) -> None:
        now = time.monotonic()
        with lock:
            statuses[f"{kind} {status}"] += 1
            if status not in (200, 401, 503):
                unexpected.append(f"{now - start:.0f}s {kind}: status {status}")
            if status == 200 and token in revoked and sent > revoked[token]:
                unexpected.append(f"{now - start:.0f}s {kind}: a revoked token was forwarded")
            if status == 503 and now > restarting_until:
                unexpected.append(f"{now - start:.0f}s {kind}: 503 outside an AS restart")

    def fresh_token() -> Optional[str]:
        try:
            return auth.token()
        except Exception:  # the AS is restarting
            return None

    pool: list[str] = [t for t in (fresh_token() for _ in range(POOL)) if t]

    def hits() -> None:
        i = 0
        while not stop.is_set():
            with lock:
                token = pool[i % len(pool)] if pool else None
            i += 1
            if token is None:
                time.sleep(0.1)
                continue
            sent = time.monotonic()
            try:
                r = gw.get(f"/orders/{i % 7}", token)
            except Exception as e:  # noqa: BLE001 - reported, not raised
                with lock:
                    unexpected.append(f"hit: {type(e).__name__}")
                continue
            note("hit", r.status, token, sent)
            if r.status == 401 and token not in revoked:
                # The AS forgot its tokens when it restarted: take a new one.
                new = fresh_token()
                with lock:
                    if token in pool:
                        pool.remove(token)
                    if new:
                        pool.append(new)
            time.sleep(1 / RATE)

    def misses() -> None:
        while not stop.is_set():
            token = fresh_token()
            if token:
                note("miss", gw.get("/orders/miss", token).status, token, time.monotonic())
            stop.wait(0.5)

    def revocations() -> None:
        while not stop.wait(30):
            with lock:
                token = pool.pop(0) if pool else None
            if token is None:
                continue
            r = gw.revoke({"token": token})
            with lock:
                statuses[f"revoke {r.status}"] += 1
                revoked[token] = time.monotonic()
                if r.status != 204:
                    unexpected.append(f"revocation answered {r.status}")
            note("revoked", gw.get("/orders/1", token).status, token, time.monotonic())
            new = fresh_token()
            if new:
                with lock:
                    pool.append(new)

    def restarts() -> None:
        nonlocal restarting_until
        while not stop.wait(RESTART_EVERY):
            with lock:
                restarting_until = float("inf")
            auth.restart()
            with lock:
                restarting_until = time.monotonic() + RESTART_GRACE
                statuses["as restart"] += 1

    threads = [threading.Thread(target=f, daemon=True) for f in (hits, misses, revocations, restarts)]
    for t in threads:
        t.start()
    try:
        while time.monotonic() - start < SOAK_SECONDS:
            rss.append((time.monotonic() - start, rss_kib(gw.proc.pid)))
            upstream.seen.clear()  # the echo upstream keeps every request: not what is measured
            print(f"{rss[-1][0]:6.0f}s RSS {rss[-1][1]} KiB; {dict(statuses)}", flush=True)
            time.sleep(10)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
        gw.stop()
        upstream.stop()
        auth.stop()
    warm = [kib for at, kib in rss if at >= 60] or [kib for _, kib in rss]
    print(json.dumps({
        "seconds": round(time.monotonic() - start),
        "statuses": dict(statuses),
        "unexpected": unexpected[:50],
        "unexpected_count": len(unexpected),
        "rss_kib_first_after_warmup": warm[0],
        "rss_kib_last": warm[-1],
        "rss_kib_max_after_warmup": max(warm),
        "rss_samples": len(rss),
    }, indent=2))
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
