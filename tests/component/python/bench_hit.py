"""Per-call cost of a cache-hit `handle-request` through the component on wasmtime-py.

Takes tests/vectors/cases/039-cache-hit.json: JWKS, one miss (a fetch) and its RFC 9701 answer,
then times N identical `handle-request` calls for the same token, each a cache hit whose step
holds [forward] and [audit cache_hit]. Also times two cheap crossings for scale: `fingerprint`,
and `handle-timeout` with nothing due (whose result is a whole, empty, `step`). Prints the median
of R rounds in µs per call.

    python bench_hit.py <component.wasm> [N] [R]
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
import time
from importlib.metadata import version

from edge_component import Runtime, field, http_response, request

ROOT = pathlib.Path(__file__).resolve().parents[3]


def setup(wasm: str):
    case = json.loads((ROOT / "tests/vectors/cases/039-cache-hit.json").read_text())
    s = case["steps"]
    rt = Runtime(wasm)
    inst = rt.instantiate()
    edge = inst.create(json.dumps(case["config"]), "json", [], bytes.fromhex(case["seed"]),
                       case["start"])
    jwks = field(edge.initial_step(), "fetches")[0]
    ji = s[0]["input"]
    edge.handle_fetch(s[0]["now"], field(jwks, "ticket"),
                      http_response(ji["status"], [tuple(h) for h in ji["headers"]],
                                    ji["body"].encode()))
    r1 = s[1]["input"]
    miss = edge.handle_request(s[1]["now"], request(r1["id"], r1["method"], r1["scheme"],
                                                    r1["authority"], r1["path"],
                                                    [tuple(h) for h in r1["headers"]]))
    assert len(field(miss, "fetches")) == 1 and not field(miss, "decisions"), miss
    ir = s[2]["input"]
    answered = edge.handle_fetch(
        s[2]["now"], ir["ticket"],
        http_response(ir["status"], [tuple(h) for h in ir["headers"]], ir["body"].encode()))
    assert [d.tag for d in field(answered, "decisions")] == ["forward"]
    r = s[3]["input"]
    req = request(r["id"], r["method"], r["scheme"], r["authority"], r["path"],
                  [tuple(h) for h in r["headers"]])
    now = s[3]["now"]
    hit = edge.handle_request(now, req)
    assert [d.tag for d in field(hit, "decisions")] == ["forward"], hit
    assert [field(a, "kind") for a in field(hit, "audits")] == ["cache_hit"]
    return edge, now, req


def per_call_us(fn, n: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - t) / n / 1000)
    return statistics.median(samples)


def main() -> None:
    wasm = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    edge, now, req = setup(wasm)
    for _ in range(2000):  # warm up
        edge.handle_request(now, req)
    hit = per_call_us(lambda: edge.handle_request(now, req), n, rounds)
    last = edge.handle_request(now, req)
    assert [field(a, "kind") for a in field(last, "audits")] == ["cache_hit"], "no longer a hit"
    trivial = per_call_us(lambda: edge.fingerprint("tok"), n, rounds)
    empty = per_call_us(lambda: edge.handle_timeout(now), n, rounds)
    print(f"wasmtime-py {version('wasmtime')}: handle-request cache hit {hit:.2f} µs/call; "
          f"fingerprint (-> string) {trivial:.2f} µs/call; "
          f"handle-timeout with nothing due (-> step) {empty:.2f} µs/call "
          f"(median of {rounds} rounds x {n})")


if __name__ == "__main__":
    main()
