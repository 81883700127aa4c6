"""Replays every case in tests/vectors/cases through the phantom:edge WebAssembly component,
hosted by the `wasmtime` PyPI package. The canonical JSON of each action (tests/vectors/README.md)
is built here from the WIT values the component returns.

    python replay_vectors.py <phantom_edge_component.wasm> [cases-dir]

Exits 1 with the first difference of every failing case.
"""

from __future__ import annotations

import json
import pathlib
import sys
from typing import Any, Callable

from wasmtime.component import Variant

from edge_component import ComponentError, Edge, Runtime, field, http_response, request

ROOT = pathlib.Path(__file__).resolve().parents[3]
EXPECTED_CASES = 69


def canon(a: Any, policy: Any) -> dict[str, Any]:
    """One action as the vectors have it. A forward's header name and strip list come from the
    edge's `forward-policy` (the vectors carry them per forward, as the core has them)."""
    if not isinstance(a, Variant):
        raise AssertionError(f"an action must be a Variant, got {a!r}")
    t, p = a.tag, a.payload
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
    if t == "introspect":
        return {
            "type": "introspect",
            "ticket": field(p, "ticket"),
            "method": field(p, "method"),
            "url": field(p, "url"),
            "headers": [[field(h, "name"), field(h, "value")] for h in field(p, "headers")],
            "body": field(p, "body"),
            "timeout_ms": field(p, "timeout-ms"),
            "fingerprint": field(p, "fingerprint"),
        }
    if t == "fetch-jwks":
        return {"type": "fetch_jwks", "url": p}
    if t == "shared-lookup":
        return {"type": "shared_lookup", "ticket": field(p, "ticket"), "key": field(p, "key")}
    if t == "shared-publish":
        return {"type": "shared_publish", "message": p}
    if t == "audit":
        out = {"type": "audit", "kind": field(p, "kind"), "level": field(p, "level")}
        for k in ("request_id", "ticket", "fingerprint", "reason", "detail"):
            v = field(p, k.replace("_", "-"))
            if v is not None:
                out[k] = v
        whole = json.loads(field(p, "json"))
        if {"type": "audit", **whole} != out:
            raise AssertionError(f"audit json {field(p, 'json')} disagrees with its fields {out}")
        return out
    raise AssertionError(f"unknown action {a!r}")


def ticket_result(call: Callable[[], None]) -> Any:
    try:
        call()
    except ComponentError as e:
        if e.tag in ("unknown-ticket", "wrong-ticket-kind"):
            return {"error": e.tag.replace("-", "_")}
        raise
    return None


def revocation_error(e: ComponentError) -> int:
    if e.tag != "revocation":
        raise e
    status = field(e.payload, "status")
    body = json.loads(field(e.payload, "body"))
    if "error" not in body:
        raise AssertionError(f"revocation error body without `error`: {body}")
    return status


def revocation_result(call: Callable[[], None]) -> Any:
    try:
        call()
    except ComponentError as e:
        return {"error": {"status": revocation_error(e)}}
    return {"ok": True}


def apply(edge: Edge, i: int, now: int, inp: dict[str, Any]) -> tuple[list[Any] | None, Any]:
    """Feeds one input. Returns (actions already drained by `decide`, or None; the result)."""
    t = inp["type"]
    pairs = lambda k: [(n, v) for n, v in inp[k]]  # noqa: E731
    if t == "request":
        req = request(inp["id"], inp["method"], inp["scheme"], inp["authority"], inp["path"],
                      pairs("headers"), inp.get("client_cert_thumbprint"))
        # decide (handle-request + drain-actions in one call) on even steps.
        if i % 2 == 0:
            return edge.decide(now, req), None
        edge.handle_request(now, req)
        return None, None
    if t == "introspection_response":
        resp = http_response(inp["status"], pairs("headers"), inp["body"].encode())
        return None, ticket_result(
            lambda: edge.handle_introspection_response(now, inp["ticket"], resp))
    if t == "introspection_failure":
        return None, ticket_result(
            lambda: edge.handle_introspection_failure(now, inp["ticket"], inp["detail"]))
    if t == "jwks":
        edge.handle_jwks_response(now, inp["body"].encode())
        return None, None
    if t == "jwks_failure":
        edge.handle_jwks_failure(now, inp["detail"])
        return None, None
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
        return None, ticket_result(lambda: edge.handle_shared_lookup(now, inp["ticket"], answer))
    if t == "revocation":
        selector = json.dumps(inp["selector"], separators=(",", ":"))
        return None, revocation_result(
            lambda: edge.handle_revocation(now, selector, inp["origin"]))
    if t == "admin_revocation":
        try:
            edge.handle_admin_revocation(now, inp.get("content_type"), inp.get("authorization"),
                                         inp["body"].encode())
            return None, {"status": 204}
        except ComponentError as e:
            return None, {"status": revocation_error(e)}
    if t == "security_event":
        return None, revocation_result(lambda: edge.handle_security_event(now, inp["set"]))
    if t == "timeout":
        edge.handle_timeout(now)
        return None, None
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


def replay(rt: Runtime, case: dict[str, Any]) -> None:
    inst = rt.instantiate()
    edge = inst.create(json.dumps(case["config"]), "json", [], bytes.fromhex(case["seed"]),
                       case["start"])
    policy = edge.forward_policy()
    check("initial", case.get("initial", []), [canon(a, policy) for a in edge.drain_actions()])
    for i, step in enumerate(case["steps"]):
        now = step["now"]
        what = f"step {i} ({step['input']['type']})"
        drained, result = apply(edge, i, now, step["input"])
        if drained is None:
            # poll-action and drain-actions must agree: poll-action on odd steps.
            if i % 2:
                drained = []
                while (a := edge.poll_action()) is not None:
                    drained.append(a)
            else:
                drained = edge.drain_actions()
        elif edge.poll_action() is not None:
            raise AssertionError(f"{what}: decide left actions in the queue")
        check(f"{what} actions", step["expect"], [canon(a, policy) for a in drained])
        check(f"{what} result", step.get("result"), result)
        if "timeout" in step:
            check(f"{what} poll-timeout", step["timeout"], edge.poll_timeout())
    edge.drop()


def api_checks(rt: Runtime, cases_dir: pathlib.Path) -> None:
    """Beyond the vectors: create's error results, `env` secrets and `admin-authorized`."""
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
    check("env: initial", case["initial"], [canon(a, policy) for a in edge.drain_actions()])
    s0, s1 = case["steps"][0], case["steps"][1]
    edge.handle_jwks_response(s0["now"], s0["input"]["body"].encode())
    edge.drain_actions()
    got, _ = apply(edge, 0, s1["now"], s1["input"])
    check("env: first request", s1["expect"], [canon(a, policy) for a in got])
    edge.drop()

    # admin-authorized: none without [admin], true only for its bearer secret.
    token = case["config"]["admin"]["token"]
    edge = inst.create(json.dumps(case["config"]), "json", [], seed, case["start"])
    bare = inst.create(json.dumps({k: v for k, v in case["config"].items() if k != "admin"}),
                       "json", [], seed, case["start"])
    for authorization, want in ((f"Bearer {token}", True), (f"bearer  {token} ", True),
                                (f"Bearer {token}x", False), ("Bearer wrong-0123456789", False),
                                (f"Basic {token}", False), (None, False)):
        got = edge.admin_authorized(authorization)
        assert got is want, f"admin-authorized({authorization!r}) = {got!r}, want {want!r}"
        got = bare.admin_authorized(authorization)
        assert got is None, f"admin-authorized({authorization!r}) without [admin] = {got!r}"
    edge.drop()
    bare.drop()


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
        print(f"FAIL api checks (create errors, env secrets, admin-authorized): "
              f"{type(e).__name__}: {e}")
    print(f"component vectors (wasmtime-py): {len(files) - failed}/{len(files)} cases passed; "
          f"api checks {'passed' if api_ok else 'FAILED'}")
    return 0 if failed == 0 and api_ok else 1


if __name__ == "__main__":
    sys.exit(main())
