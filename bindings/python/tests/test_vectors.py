"""Replays every shared vector in tests/vectors/cases through the Python API. The canonical JSON
of each action is built here, from the Python objects the binding returns."""

import json
import pathlib

import pytest

from phantom_edge import (
    Audit,
    Config,
    Edge,
    EdgeError,
    FetchJwks,
    Forward,
    Introspect,
    Reject,
    RevocationError,
    SharedLookup,
    SharedPublish,
)

CASES = sorted((pathlib.Path(__file__).resolve().parents[3] / "tests/vectors/cases").glob("*.json"))


def canon(a):
    if isinstance(a, Forward):
        return {
            "type": "forward",
            "request_id": a.request_id,
            "header_name": a.header_name,
            "header_value": a.header_value,
            "strip_headers": list(a.strip_headers),
            "fingerprint": a.fingerprint,
            "token": a.token,
        }
    if isinstance(a, Reject):
        return {
            "type": "reject",
            "request_id": a.request_id,
            "status": a.status,
            "www_authenticate": a.www_authenticate,
            "retry_after": a.retry_after,
            "body": a.body,
            "reason": a.reason,
            "fingerprint": a.fingerprint,
        }
    if isinstance(a, Introspect):
        return {
            "type": "introspect",
            "ticket": a.ticket,
            "method": a.method,
            "url": a.url,
            "headers": [[n, v] for n, v in a.headers],
            "body": a.body,
            "timeout_ms": a.timeout_ms,
            "fingerprint": a.fingerprint,
        }
    if isinstance(a, FetchJwks):
        return {"type": "fetch_jwks", "url": a.url}
    if isinstance(a, SharedLookup):
        return {"type": "shared_lookup", "ticket": a.ticket, "key": a.key}
    if isinstance(a, SharedPublish):
        return {"type": "shared_publish", "message": a.message}
    if isinstance(a, Audit):
        out = {"type": "audit", "kind": a.kind, "level": a.level}
        for k in ("request_id", "ticket", "fingerprint", "reason", "detail"):
            v = getattr(a, k)
            if v is not None:
                out[k] = v
        assert json.loads(a.to_json()) == {k: v for k, v in out.items() if k != "type"}
        return out
    raise AssertionError(f"unknown action {a!r}")


def ticket_result(call):
    try:
        call()
    except EdgeError as e:
        return {"error": e.kind}
    return None


def revocation_result(call):
    try:
        call()
    except RevocationError as e:
        return {"error": {"status": e.status}}
    return {"ok": True}


def apply(edge, now, inp):
    t = inp["type"]
    pairs = lambda k: [(n, v) for n, v in inp[k]]  # noqa: E731
    if t == "request":
        edge.handle_request(
            inp["id"], inp["method"], inp["scheme"], inp["authority"], inp["path"],
            pairs("headers"), inp.get("client_cert_thumbprint"), now_ms=now,
        )
        return None
    if t == "introspection_response":
        return ticket_result(lambda: edge.handle_introspection_response(
            inp["ticket"], inp["status"], pairs("headers"), inp["body"].encode(), now_ms=now))
    if t == "introspection_failure":
        return ticket_result(
            lambda: edge.handle_introspection_failure(inp["ticket"], inp["detail"], now_ms=now))
    if t == "jwks":
        edge.handle_jwks(inp["body"].encode(), now_ms=now)
        return None
    if t == "jwks_failure":
        edge.handle_jwks_failure(inp["detail"], now_ms=now)
        return None
    if t == "shared_lookup":
        r = inp["result"]
        if r == "not_found":
            call = lambda: edge.handle_shared_lookup(inp["ticket"], None, now_ms=now)  # noqa: E731
        elif r == "error":
            call = lambda: edge.handle_shared_lookup(inp["ticket"], None, error=True, now_ms=now)  # noqa: E731
        else:
            call = lambda: edge.handle_shared_lookup(inp["ticket"], r["found"], now_ms=now)  # noqa: E731
        return ticket_result(call)
    if t == "revocation":
        return revocation_result(
            lambda: edge.handle_revocation(inp["selector"], inp["origin"], now_ms=now))
    if t == "admin_revocation":
        try:
            edge.handle_admin_revocation(
                inp.get("content_type"), inp.get("authorization"), inp["body"].encode(), now_ms=now)
            return {"status": 204}
        except RevocationError as e:
            return {"status": e.status}
    if t == "security_event":
        return revocation_result(lambda: edge.handle_security_event(inp["set"], now_ms=now))
    if t == "timeout":
        edge.handle_timeout(now_ms=now)
        return None
    raise AssertionError(f"unknown input type {t}")


def test_all_cases_present():
    assert len(CASES) == 69


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_vector(path):
    case = json.loads(path.read_text())
    config = Config.from_dict(case["config"])
    edge = Edge(config, bytes.fromhex(case["seed"]), case["start"])
    assert [canon(a) for a in edge.drain_actions()] == case.get("initial", [])
    for i, step in enumerate(case["steps"]):
        now = step["now"]
        result = apply(edge, now, step["input"])
        # poll_action and drain_actions must agree: use poll_action for odd steps.
        if i % 2:
            actions = []
            while (a := edge.poll_action()) is not None:
                actions.append(a)
        else:
            actions = edge.drain_actions()
        got = [canon(a) for a in actions]
        assert got == step["expect"], f"step {i} ({step['input']['type']}): actions differ"
        assert result == step.get("result"), f"step {i}: result differs"
        if "timeout" in step:
            assert edge.poll_timeout() == step["timeout"], f"step {i}: poll_timeout differs"
