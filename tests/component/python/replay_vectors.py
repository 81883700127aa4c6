"""Replays every case in tests/vectors/cases through the phantom:edge WebAssembly component,
hosted by the `wasmtime` PyPI package. The canonical JSON of each action (tests/vectors/README.md)
is built here from the WIT values the component returns, and each `step` a `handle-*` returns is
compared list by list with the expected actions of its types (tests/vectors/README.md).

    python replay_vectors.py <phantom_edge_component.wasm> [cases-dir]

Exits 1 with the first difference of every failing case.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any, Callable

from wasmtime.component import Variant

from edge_component import (
    ComponentError, Edge, Runtime, admin_request, field, http_response, proxy_hop, request,
)

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXPECTED_CASES = 74


def canon_decision(d: Any, policy: Any) -> dict[str, Any]:
    """One `decision` as the vectors have it. A forward's header name and strip list come from
    the edge's `forward-policy` (the vectors carry them per forward, as the core has them)."""
    if not isinstance(d, Variant):
        raise AssertionError(f"a decision must be a Variant, got {d!r}")
    t, p = d.tag, d.payload
    if t == "forward":
        out = {
            "type": "forward",
            "request_id": field(p, "request-id"),
            "header_name": field(policy, "header-name"),
            "header_value": field(p, "header-value"),
            "strip_headers": list(field(policy, "strip-headers")),
            "fingerprint": field(p, "fingerprint"),
            "token": json.loads(field(p, "token-json")),  # none only after include-token-json(false)
        }
        # Vectors carry `rewritten_path` only for query-token cases; anywhere else it must be
        # none, so a stray rewrite shows up as a difference.
        if field(p, "rewritten-path") is not None:
            out["rewritten_path"] = field(p, "rewritten-path")
        return out
    if t == "reject":
        return {
            "type": "reject",
            "request_id": field(p, "request-id"),
            "status": field(p, "status"),
            "www_authenticate": field(p, "www-authenticate"),
            "retry_after": field(p, "retry-after"),
            "body": field(p, "body"),
            "reason": field(p, "reason"),
            "fingerprint": field(p, "fingerprint"),
        }
    raise AssertionError(f"unknown decision {d!r}")


def canon_fetch(p: Any) -> dict[str, Any]:
    return {
        "type": "fetch",
        "ticket": field(p, "ticket"),
        "kind": field(p, "kind"),
        "method": field(p, "method"),
        "url": field(p, "url"),
        "headers": [[field(h, "name"), field(h, "value")] for h in field(p, "headers")],
        "body": field(p, "body"),
        "timeout_ms": field(p, "timeout-ms"),
        "max_response_bytes": field(p, "max-response-bytes"),
        "fingerprint": field(p, "fingerprint"),
    }


def canon_audit(p: Any) -> dict[str, Any]:
    out = {"type": "audit", "kind": field(p, "kind"), "level": field(p, "level")}
    for k in ("request_id", "ticket", "fingerprint", "reason", "detail"):
        v = field(p, k.replace("_", "-"))
        if v is not None:
            out[k] = v
    whole = json.loads(field(p, "json"))
    if {"type": "audit", **whole} != out:
        raise AssertionError(f"audit json {field(p, 'json')} disagrees with its fields {out}")
    return out


# The step's lists and the action types each holds (tests/vectors/README.md).
LISTS = {
    "decisions": ("forward", "reject"),
    "fetches": ("fetch",),
    "lookups": ("shared_lookup",),
    "publishes": ("shared_publish",),
    "audits": ("audit",),
}


def canon_step(step: Any, policy: Any) -> dict[str, list[Any]]:
    """A `step` record as the canonical actions of each of its lists."""
    return {
        "decisions": [canon_decision(d, policy) for d in field(step, "decisions")],
        "fetches": [canon_fetch(f) for f in field(step, "fetches")],
        "lookups": [{"type": "shared_lookup", "ticket": field(lk, "ticket"),
                     "key": field(lk, "key")} for lk in field(step, "lookups")],
        "publishes": [{"type": "shared_publish", "message": m} for m in field(step, "publishes")],
        "audits": [canon_audit(a) for a in field(step, "audits")],
    }


def split(expected: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The expected actions of a step, by the step list each belongs to (same order)."""
    known = {t for types in LISTS.values() for t in types}
    for a in expected:
        if a["type"] not in known:
            raise AssertionError(f"expected action of unknown type {a['type']!r}")
    return {name: [a for a in expected if a["type"] in types] for name, types in LISTS.items()}


EMPTY_STEP = None  # an input that returned no step (an error result, upstream-headers)


def ticket_result(call: Callable[[], Any]) -> tuple[Any, Any]:
    try:
        return call(), None
    except ComponentError as e:
        if e.tag in ("unknown-ticket", "wrong-ticket-kind"):
            return EMPTY_STEP, {"error": e.tag.replace("-", "_")}
        raise


def revocation_error(e: ComponentError) -> int:
    if e.tag != "revocation":
        raise e
    status = field(e.payload, "status")
    body = json.loads(field(e.payload, "body"))
    if "error" not in body:
        raise AssertionError(f"revocation error body without `error`: {body}")
    return status


def revocation_result(call: Callable[[], Any]) -> tuple[Any, Any]:
    try:
        return call(), {"ok": True}
    except ComponentError as e:
        return EMPTY_STEP, {"error": {"status": revocation_error(e)}}


def hop_of(v: Any) -> Any:
    if v == "in_process":
        return None
    p = v["proxy"]
    return proxy_hop(p.get("peer"), p["proto"], p.get("upstream_authority"))


def apply(edge: Edge, now: int, inp: dict[str, Any]) -> tuple[Any, Any]:
    """Feeds one input. Returns (the step it returned, or None; the result)."""
    t = inp["type"]
    pairs = lambda k: [(n, v) for n, v in inp[k]]  # noqa: E731
    if t == "request":
        req = request(inp["id"], inp["method"], inp["scheme"], inp["authority"], inp["path"],
                      pairs("headers"), inp.get("client_cert_thumbprint"))
        return edge.handle_request(now, req), None
    if t == "fetch_response":
        resp = http_response(inp["status"], pairs("headers"), inp["body"].encode())
        return ticket_result(lambda: edge.handle_fetch(now, inp["ticket"], resp))
    if t == "fetch_failure":
        return ticket_result(lambda: edge.handle_fetch(now, inp["ticket"], inp["detail"]))
    if t == "shared_lookup":
        r = inp["result"]
        if r == "not_found":
            answer = Variant("not-found")
        elif r == "error":
            answer = Variant("error")
        elif isinstance(r, dict) and isinstance(r.get("found"), str):
            answer = Variant("found", r["found"])
        else:
            raise AssertionError(f"bad shared_lookup result {r!r}")
        return ticket_result(lambda: edge.handle_shared_lookup(now, inp["ticket"], answer))
    if t == "revocation":
        selector = json.dumps(inp["selector"], separators=(",", ":"))
        return revocation_result(lambda: edge.handle_revocation(now, selector, inp["origin"]))
    if t == "admin":
        answer, step = edge.handle_admin(now, admin_request(
            inp["route"], inp["listener"], inp["method"], inp.get("authorization"),
            inp.get("content_type"), inp["body"].encode()))
        return step, {
            "status": field(answer, "status"),
            "headers": [[field(h, "name"), field(h, "value")] for h in field(answer, "headers")],
            "body": field(answer, "body"),
        }
    if t == "upstream_headers":
        plan = edge.upstream_headers(pairs("inbound"), inp["header_value"], hop_of(inp["hop"]))
        return EMPTY_STEP, {
            "drop": list(field(plan, "drop")),
            "set": [[field(h, "name"), field(h, "value")] for h in field(plan, "set")],
        }
    if t == "security_event":
        return revocation_result(lambda: edge.handle_security_event(now, inp["set"]))
    if t == "timeout":
        return edge.handle_timeout(now), None
    raise AssertionError(f"unknown input type {t}")


def first_difference(path: str, a: Any, b: Any) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}/{k}: expected {a.get(k)!r}, got {b.get(k)!r}"
            d = first_difference(f"{path}/{k}", a[k], b[k])
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(f"{path}/{i}", x, y)
            if d:
                return d
        if len(a) != len(b):
            return f"{path}: expected {len(a)} elements, got {len(b)}"
        return None
    if type(a) is not type(b) or a != b:  # JSON: true is not 1
        return f"{path}: expected {json.dumps(a)}, got {json.dumps(b)}"
    return None


def check(what: str, expected: Any, actual: Any) -> None:
    d = first_difference("", expected, actual)
    if d:
        raise AssertionError(f"{what}: mismatch at {d}\n--- expected\n"
                             f"{json.dumps(expected, indent=2)}\n--- actual\n"
                             f"{json.dumps(actual, indent=2)}")


def check_step(what: str, expected: list[dict[str, Any]], step: Any, policy: Any) -> None:
    """Each of the step's lists equals the expected actions of its types, in order. No step
    (an input that returned none): nothing may be expected."""
    want = split(expected)
    got = canon_step(step, policy) if step is not None else {name: [] for name in LISTS}
    for name in LISTS:
        check(f"{what} {name}", want[name], got[name])


def replay(rt: Runtime, case: dict[str, Any]) -> None:
    inst = rt.instantiate()
    edge = inst.create(json.dumps(case["config"]), "json", [], bytes.fromhex(case["seed"]),
                       case["start"])
    policy = edge.forward_policy()
    first = edge.initial_step()
    check_step("initial", case.get("initial", []), first, policy)
    wake_at = field(first, "wake-at")
    for i, step in enumerate(case["steps"]):
        now = step["now"]
        what = f"step {i} ({step['input']['type']})"
        got, result = apply(edge, now, step["input"])
        check_step(what, step["expect"], got, policy)
        check(f"{what} result", step.get("result"), result)
        if got is not None:
            wake_at = field(got, "wake-at")
        if "timeout" in step:
            # An input that returned no step changed nothing: the last step's wake-at stands.
            check(f"{what} wake-at", step["timeout"], wake_at)
    edge.drop()


def api_checks(rt: Runtime, cases_dir: pathlib.Path) -> None:
    """Beyond the vectors: create's error results, `env` secrets, the metrics route's bearer
    on the app listener, and `hop-by-hop-headers`."""
    inst = rt.instantiate()

    def create_error(*args: Any) -> ComponentError:
        try:
            inst.create(*args)
        except ComponentError as e:
            return e
        raise AssertionError(f"create{args!r} succeeded")

    e = create_error('{"routes": []}', "json", [], bytes(32), 0)
    assert (e.tag, field(e.payload, "field")) == ("config", "authorization_server"), e
    assert create_error("x = ", "toml", [], bytes(32), 0).tag == "config"
    case = json.loads((cases_dir / "039-cache-hit.json").read_text())
    e = create_error(json.dumps(case["config"]), "json", [], bytes(31), 0)
    assert (e.tag, e.payload) == ("invalid-argument", "seed must be 32 bytes, got 31"), e

    a_s = dict(case["config"]["authorization_server"])
    secret = a_s.pop("client_secret")
    config = json.dumps({**case["config"],
                         "authorization_server": {**a_s, "client_secret_env": "AS_SECRET"}})
    seed = bytes.fromhex(case["seed"])
    e = create_error(config, "json", [("OTHER", secret)], seed, case["start"])
    assert (e.tag, field(e.payload, "field")) == (
        "config", "authorization_server.client_secret_env"), e
    edge = inst.create(config, "json", [("AS_SECRET", secret)], seed, case["start"])
    policy = edge.forward_policy()
    check_step("env: initial", case["initial"], edge.initial_step(), policy)
    s0, s1 = case["steps"][0], case["steps"][1]
    apply(edge, s0["now"], s0["input"])
    got, _ = apply(edge, s1["now"], s1["input"])
    check_step("env: first request", s1["expect"], got, policy)
    edge.drop()

    # The metrics route on the app listener: 403 without [admin], 200 only for its bearer
    # secret, 401 with the one realm otherwise.
    token = case["config"]["admin"]["token"]
    edge = inst.create(json.dumps(case["config"]), "json", [], seed, case["start"])
    bare = inst.create(json.dumps({k: v for k, v in case["config"].items() if k != "admin"}),
                       "json", [], seed, case["start"])

    def metrics(e: Edge, authorization: str | None) -> Any:
        answer, _ = e.handle_admin(case["start"], admin_request(
            "metrics", "app", "GET", authorization, None, b""))
        return answer

    for authorization, want in ((f"Bearer {token}", 200), (f"bearer  {token} ", 200),
                                (f"Bearer {token}x", 401), ("Bearer wrong-0123456789", 401),
                                (f"Basic {token}", 401), (None, 401)):
        answer = metrics(edge, authorization)
        assert field(answer, "status") == want, f"metrics({authorization!r}): {answer!r}"
        headers = {field(h, "name"): field(h, "value") for h in field(answer, "headers")}
        if want == 401:
            assert headers.get("www-authenticate") == 'Bearer realm="phantom-edge-admin"', headers
        else:
            assert "phantom_edge_" in field(answer, "body")
        got = field(metrics(bare, authorization), "status")
        assert got == 403, f"metrics({authorization!r}) without [admin] = {got!r}"
    edge.drop()
    bare.drop()

    # hop-by-hop-headers: the fixed list and the names a Connection header lists, as read.
    got = inst.hop_by_hop_headers([("Connection", "close, X-Trace"), ("content-type", "a"),
                                   ("x_trace", "1"), ("TE", "trailers"), ("x-kept", "2"),
                                   ("Transfer-Encoding", "chunked")])
    assert list(got) == [0, 2, 3, 5], got


def main() -> int:
    wasm = sys.argv[1]
    cases_dir = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "tests/vectors/cases"
    files = sorted(cases_dir.glob("*.json"))
    if len(files) != EXPECTED_CASES:
        print(f"FAIL expected {EXPECTED_CASES} vector cases in {cases_dir}, found {len(files)}")
        return 1
    rt = Runtime(wasm)
    failed = 0
    for f in files:
        try:
            replay(rt, json.loads(f.read_text()))
        except Exception as e:  # noqa: BLE001 - report every case, then fail
            failed += 1
            print(f"FAIL {f.stem}: {type(e).__name__}: {e}")
    api_ok = True
    try:
        api_checks(rt, cases_dir)
    except Exception as e:  # noqa: BLE001
        api_ok = False
        print(f"FAIL api checks (create errors, env secrets, metrics bearer, hop-by-hop): "
              f"{type(e).__name__}: {e}")
    print(f"component vectors (wasmtime-py): {len(files) - failed}/{len(files)} cases passed; "
          f"api checks {'passed' if api_ok else 'FAILED'}")
    return 0 if failed == 0 and api_ok else 1


if __name__ == "__main__":
    sys.exit(main())
