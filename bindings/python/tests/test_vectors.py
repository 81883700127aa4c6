"""Replays every shared vector in tests/vectors/cases through the Python API, one `Step` per input:
each of the step's lists equals the expected actions of its types, in order, and `wake_at` the
expected `timeout`. The canonical JSON of each action is built here, from the Python objects the
binding returns."""

import json
import pathlib

import pytest

from phantom_edge import (
    Audit,
    Config,
    Edge,
    EdgeError,
    Fetch,
    Forward,
    Reject,
    RevocationError,
    SharedLookup,
    Step,
)

CASES = sorted((pathlib.Path(__file__).resolve().parents[3] / "tests/vectors/cases").glob("*.json"))

#: Which Step list holds each expected action type.
LIST_OF = {"forward": "decisions", "reject": "decisions", "fetch": "fetches",
           "shared_lookup": "lookups", "shared_publish": "publishes", "audit": "audits"}


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
    if isinstance(a, Fetch):
        return {
            "type": "fetch",
            "ticket": a.ticket,
            "kind": a.kind,
            "method": a.method,
            "url": a.url,
            "headers": [[n, v] for n, v in a.headers],
            "body": a.body,
            "timeout_ms": a.timeout_ms,
            "max_response_bytes": a.max_response_bytes,
            "fingerprint": a.fingerprint,
        }
    if isinstance(a, SharedLookup):
        return {"type": "shared_lookup", "ticket": a.ticket, "key": a.key}
    if isinstance(a, str):
        return {"type": "shared_publish", "message": a}
    if isinstance(a, Audit):
        out = {"type": "audit", "kind": a.kind, "level": a.level}
        for k in ("request_id", "ticket", "fingerprint", "reason", "detail"):
            v = getattr(a, k)
            if v is not None:
                out[k] = v
        assert json.loads(a.to_json()) == {k: v for k, v in out.items() if k != "type"}
        return out
    raise AssertionError(f"unknown object in a step: {a!r}")


def lists(step):
    """The step's lists in canonical JSON, by list name."""
    assert isinstance(step, Step)
    out = {name: [canon(a) for a in getattr(step, name)] for name in set(LIST_OF.values())}
    assert bool(step) == any(out.values())
    return out


def expected_lists(actions):
    out = {name: [] for name in set(LIST_OF.values())}
    for a in actions:
        out[LIST_OF[a["type"]]].append(a)
    return out


def ticket_result(call):
    try:
        return call(), None
    except EdgeError as e:
        return None, {"error": e.kind}


def revocation_result(call):
    try:
        return call(), {"ok": True}
    except RevocationError as e:
        return None, {"error": {"status": e.status}}


def apply(edge, now, inp):
    """Feeds one input: (the Step it produced or None, the step's `result`)."""
    t = inp["type"]
    pairs = lambda k: [(n, v) for n, v in inp[k]]  # noqa: E731
    if t == "request":
        return edge.handle_request(
            inp["id"], inp["method"], inp["scheme"], inp["authority"], inp["path"],
            pairs("headers"), inp.get("client_cert_thumbprint"), now_ms=now,
        ), None
    if t == "fetch_response":
        return ticket_result(lambda: edge.handle_fetch(
            inp["ticket"], inp["status"], pairs("headers"), inp["body"].encode(), now_ms=now))
    if t == "fetch_failure":
        return ticket_result(
            lambda: edge.handle_fetch(inp["ticket"], failure=inp["detail"], now_ms=now))
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
    if t == "admin":
        answer, step = edge.handle_admin(
            inp["route"], inp["method"], listener=inp["listener"],
            authorization=inp["authorization"], content_type=inp["content_type"],
            body=inp["body"].encode(), now_ms=now)
        return step, {"status": answer.status, "headers": [[n, v] for n, v in answer.headers],
                      "body": answer.body}
    if t == "upstream_headers":
        hop = inp["hop"]
        if hop == "in_process":
            plan = edge.upstream_headers(pairs("inbound"), inp["header_value"], "in_process")
        else:
            plan = edge.upstream_headers(pairs("inbound"), inp["header_value"], "proxy",
                                         **hop["proxy"])
        return None, {"drop": plan.drop, "set": [[n, v] for n, v in plan.set]}
    if t == "security_event":
        return revocation_result(lambda: edge.handle_security_event(inp["set"], now_ms=now))
    if t == "timeout":
        return edge.handle_timeout(now_ms=now), None
    raise AssertionError(f"unknown input type {t}")


def test_all_cases_present():
    assert len(CASES) == 74


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_vector(path):
    case = json.loads(path.read_text())
    config = Config.from_dict(case["config"])
    edge = Edge(config, bytes.fromhex(case["seed"]), case["start"])
    assert lists(edge.initial_step()) == expected_lists(case.get("initial", []))
    wake_at = None
    for i, step in enumerate(case["steps"]):
        got, result = apply(edge, step["now"], step["input"])
        assert result == step.get("result"), f"step {i}: result differs"
        if got is None:  # refused, or an input that queues nothing: nothing to carry out
            assert step["expect"] == [], f"step {i} ({step['input']['type']}): actions expected"
        else:
            expect = expected_lists(step["expect"])
            assert lists(got) == expect, f"step {i} ({step['input']['type']}): step differs"
            wake_at = got.wake_at
        if "timeout" in step:
            assert wake_at == step["timeout"], f"step {i}: wake_at differs"
