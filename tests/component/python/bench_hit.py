"""Per-call cost of a cache-hit `decide` through the component on wasmtime-py.

Takes tests/vectors/cases/039-cache-hit.json: JWKS, one miss (introspect) and its RFC 9701
answer, then times N identical `decide` calls for the same token, each a cache hit answered with
[audit cache_hit, forward]. Also times two cheap crossings for scale: `poll-timeout`, and
`poll-action` on an empty queue (whose result type is the whole `action` variant). Prints the median of R rounds in µs per call.

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
    edge.drain_actions()
    edge.handle_jwks_response(s[0]["now"], s[0]["input"]["body"].encode())
    edge.drain_actions()
    r1 = s[1]["input"]
    miss = edge.decide(s[1]["now"], request(r1["id"], r1["method"], r1["scheme"], r1["authority"],
                                            r1["path"], [tuple(h) for h in r1["headers"]]))
    assert [a.tag for a in miss] == ["audit", "introspect"], miss
    ir = s[2]["input"]
    edge.handle_introspection_response(
        s[2]["now"], ir["ticket"],
        http_response(ir["status"], [tuple(h) for h in ir["headers"]], ir["body"].encode()))
    assert [a.tag for a in edge.drain_actions()] == ["audit", "audit", "forward"]
    r = s[3]["input"]
    req = request(r["id"], r["method"], r["scheme"], r["authority"], r["path"],
                  [tuple(h) for h in r["headers"]])
    now = s[3]["now"]
    hit = edge.decide(now, req)
    assert [a.tag for a in hit] == ["audit", "forward"], hit
    assert field(hit[0].payload, "kind") == "cache_hit"
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
        edge.decide(now, req)
    hit = per_call_us(lambda: edge.decide(now, req), n, rounds)
    last = edge.decide(now, req)
    assert [a.tag for a in last] == ["audit", "forward"], "no longer a cache hit"
    trivial = per_call_us(edge.poll_timeout, n, rounds)
    empty = per_call_us(edge.poll_action, n, rounds)
    print(f"wasmtime-py {version('wasmtime')}: decide cache hit {hit:.2f} µs/call; "
          f"poll-timeout (-> option<u64>) {trivial:.2f} µs/call; "
          f"poll-action on an empty queue (-> option<action>) {empty:.2f} µs/call "
          f"(median of {rounds} rounds x {n})")


if __name__ == "__main__":
    main()
