#!/usr/bin/env python3
"""Replays tests/vectors/cases/*.json through the UniFFI FFI layer of phantom-edge-uniffi.

The module under test is the Python code that `uniffi-bindgen generate --language python`
produced from the same `libphantom_edge_uniffi.so` the Swift package is generated from, so this
exercises the exact exported C ABI (argument lowering, records, enums, errors, options, byte
buffers) the Swift SDK calls. Mapping of inputs to calls and of actions to canonical JSON mirrors
core/tests/vectors.rs; each input's Step is compared list by list with the expected actions of
its types, and its wake_at with the step's `timeout` (tests/vectors/README.md). An
upstream_headers input (and a call that raised) returns no Step: it queued nothing, and the
timer stays where the last Step put it.

Usage: replay_vectors.py MODULE_DIR CASES_DIR
  MODULE_DIR holds phantom_edge_uniffi.py and libphantom_edge_uniffi.so side by side.
Prints one line per failure and closes with "N passed, M failed"; exit status 1 on any failure.
"""

import json
import os
import sys


def load_module(module_dir):
    sys.path.insert(0, module_dir)
    import phantom_edge_uniffi  # noqa: E402  (generated at test time)

    return phantom_edge_uniffi


class BadInput(Exception):
    pass


def pairs(m, value, key):
    arr = value.get(key)
    if not isinstance(arr, list):
        raise BadInput(f"input member {key!r} must be an array of [name, value]")
    out = []
    for p in arr:
        if not (isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)):
            raise BadInput(f"{key}: each entry must be [name, value]")
        out.append(m.Header(name=p[0], value=p[1]))
    return out


def s(value, key):
    x = value.get(key)
    if not isinstance(x, str):
        raise BadInput(f"input member {key!r} must be a string")
    return x


def opt_s(value, key):
    x = value.get(key)
    if x is None or isinstance(x, str):
        return x
    raise BadInput(f"input member {key!r} must be a string or null")


def u(value, key):
    x = value.get(key)
    if not isinstance(x, int) or isinstance(x, bool) or x < 0:
        raise BadInput(f"input member {key!r} must be a non-negative integer")
    return x


def ticket_result(m, call):
    """(step, result) of a call answering a ticket: no step when it raised."""
    try:
        return call(), None
    except m.PhantomEdgeError.UnknownTicket:
        return None, {"error": "unknown_ticket"}
    except m.PhantomEdgeError.WrongTicketKind:
        return None, {"error": "wrong_ticket_kind"}


def revocation_result(m, call):
    try:
        return call(), {"ok": True}
    except m.PhantomEdgeError.Revocation as e:
        return None, {"error": {"status": e.status}}


def headers_json(headers):
    return [[h.name, h.value] for h in headers]


def apply(m, edge, now, inp):
    """Feeds one input at `now`; returns (step or None, result)."""
    t = s(inp, "type")
    if t == "request":
        req = m.Request(
            id=u(inp, "id"),
            method=s(inp, "method"),
            scheme=s(inp, "scheme"),
            authority=s(inp, "authority"),
            path=s(inp, "path"),
            headers=pairs(m, inp, "headers"),
            client_cert_thumbprint=opt_s(inp, "client_cert_thumbprint"),
        )
        return edge.handle_request(now, req), None
    if t == "fetch_response":
        answer = m.FetchResult.RESPONSE(
            status=u(inp, "status"),
            headers=pairs(m, inp, "headers"),
            body=s(inp, "body").encode("utf-8"),
        )
        return ticket_result(m, lambda: edge.handle_fetch(now, u(inp, "ticket"), answer))
    if t == "fetch_failure":
        failure = m.FetchResult.FAILURE(detail=s(inp, "detail"))
        return ticket_result(m, lambda: edge.handle_fetch(now, u(inp, "ticket"), failure))
    if t == "shared_lookup":
        r = inp.get("result")
        if r == "not_found":
            lookup = m.LookupResult.NOT_FOUND()
        elif r == "error":
            lookup = m.LookupResult.ERROR()
        elif isinstance(r, dict) and isinstance(r.get("found"), str):
            lookup = m.LookupResult.FOUND(value=r["found"])
        else:
            raise BadInput("shared_lookup result must be found/not_found/error")
        return ticket_result(m, lambda: edge.handle_shared_lookup(now, u(inp, "ticket"), lookup))
    if t == "revocation":
        if "selector" not in inp:
            raise BadInput("revocation needs a selector object")
        selector = json.dumps(inp["selector"], separators=(",", ":"))
        origin = {"local": m.Origin.LOCAL, "shared": m.Origin.SHARED}.get(s(inp, "origin"))
        if origin is None:
            raise BadInput(f"unknown origin {inp['origin']!r}")
        return revocation_result(m, lambda: edge.handle_revocation(now, selector, origin))
    if t == "admin":
        routes = {
            "revocations": m.AdminRoute.REVOCATIONS,
            "metrics": m.AdminRoute.METRICS,
            "jwks": m.AdminRoute.JWKS,
        }
        listeners = {"operator": m.Listener.OPERATOR, "app": m.Listener.APP}
        route, listener = routes.get(s(inp, "route")), listeners.get(s(inp, "listener"))
        if route is None or listener is None:
            raise BadInput("admin: unknown route or listener")
        out = edge.handle_admin(
            now,
            m.AdminRequest(
                route=route,
                listener=listener,
                method=s(inp, "method"),
                authorization=opt_s(inp, "authorization"),
                content_type=opt_s(inp, "content_type"),
                body=s(inp, "body").encode("utf-8"),
            ),
        )
        a = out.answer
        return out.step, {"status": a.status, "headers": headers_json(a.headers), "body": a.body}
    if t == "upstream_headers":
        hop = inp.get("hop")
        if hop == "in_process":
            hop = m.Hop.IN_PROCESS()
        elif isinstance(hop, dict) and isinstance(hop.get("proxy"), dict):
            p = hop["proxy"]
            hop = m.Hop.PROXY(
                peer=opt_s(p, "peer"),
                proto=s(p, "proto"),
                upstream_authority=opt_s(p, "upstream_authority"),
            )
        else:
            raise BadInput('hop: "in_process" or {"proxy": {...}}')
        plan = edge.upstream_headers(pairs(m, inp, "inbound"), s(inp, "header_value"), hop)
        return None, {"drop": list(plan.drop), "set": headers_json(plan.set)}
    if t == "security_event":
        return revocation_result(m, lambda: edge.handle_security_event(now, s(inp, "set")))
    if t == "timeout":
        return edge.handle_timeout(now), None
    raise BadInput(f"unknown input type {t!r}")


def canon_decision(d, policy):
    if d.is_forward():
        f = d.forward
        return {
            "type": "forward",
            "request_id": f.request_id,
            "header_name": policy.header_name,
            "header_value": f.header_value,
            "strip_headers": list(policy.strip_headers),
            "fingerprint": f.fingerprint,
            "token": json.loads(f.token_json),
        }
    r = d.reject
    return {
        "type": "reject",
        "request_id": r.request_id,
        "status": r.status,
        "www_authenticate": r.www_authenticate,
        "retry_after": r.retry_after,
        "body": r.body,
        "reason": r.reason,
        "fingerprint": r.fingerprint,
    }


def canon_fetch(f):
    return {
        "type": "fetch",
        "ticket": f.ticket,
        "kind": f.kind.name.lower(),
        "method": f.method,
        "url": f.url,
        "headers": headers_json(f.headers),
        "body": f.body,
        "timeout_ms": f.timeout_ms,
        "max_response_bytes": f.max_response_bytes,
        "fingerprint": f.fingerprint,
    }


def canon_audit(e):
    out = {"type": "audit", "kind": e.kind, "level": e.level.name.lower()}
    for k in ("request_id", "ticket", "fingerprint", "reason", "detail"):
        v = getattr(e, k)
        if v is not None:
            out[k] = v
    # The `json` field must say the same as the structured fields.
    whole = json.loads(e.json)
    if {"type": "audit", **whole} != out:
        raise AssertionError(f"audit json {e.json} disagrees with its fields {out}")
    return out


# A Step's lists, and the action types each holds (tests/vectors/README.md).
LISTS = (
    ("decisions", ("forward", "reject")),
    ("fetches", ("fetch",)),
    ("lookups", ("shared_lookup",)),
    ("publishes", ("shared_publish",)),
    ("audits", ("audit",)),
)


def canon_step(step, policy):
    """The canonical JSON of a Step's lists, by list name."""
    return {
        "decisions": [canon_decision(d, policy) for d in step.decisions],
        "fetches": [canon_fetch(f) for f in step.fetches],
        "lookups": [
            {"type": "shared_lookup", "ticket": x.ticket, "key": x.key} for x in step.lookups
        ],
        "publishes": [{"type": "shared_publish", "message": x} for x in step.publishes],
        "audits": [canon_audit(e) for e in step.audits],
    }


def check_step(name, what, expected, step, policy):
    actual = canon_step(step, policy)
    seen = set()
    for list_name, types in LISTS:
        seen.update(types)
        want = [a for a in expected if a.get("type") in types]
        check(name, f"{what}: {list_name}", want, actual[list_name])
    unknown = [a for a in expected if a.get("type") not in seen]
    if unknown:
        raise AssertionError(f"case {name}, {what}: unknown expected action types {unknown}")


def first_difference(path, a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a.keys()) + [k for k in b.keys() if k not in a]:
            p = f"{path}/{k}"
            if k in a and k in b:
                d = first_difference(p, a[k], b[k])
                if d:
                    return d
            else:
                return f"{p}: expected {a.get(k)!r}, got {b.get(k)!r}"
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(f"{path}/{i}", x, y)
            if d:
                return d
        if len(a) != len(b):
            return f"{path}: expected {len(a)} elements, got {len(b)}"
        return None
    # JSON: true is not 1
    if type(a) is not type(b) or a != b:
        return f"{path}: expected {json.dumps(a)}, got {json.dumps(b)}"
    return None


def check(name, what, expected, actual):
    d = first_difference("", expected, actual)
    if d:
        raise AssertionError(
            f"case {name}, {what}: mismatch at {d}\n--- expected\n"
            f"{json.dumps(expected, indent=2)}\n--- actual\n{json.dumps(actual, indent=2)}"
        )


def replay(m, case):
    name = case["name"]
    edge = m.PhantomEdge.from_json_with_env(
        json.dumps(case["config"]), {}, bytes.fromhex(case["seed"]), case["start"]
    )
    policy = edge.forward_policy()
    initial = edge.initial_step()
    check_step(name, "initial step", case.get("initial", []), initial, policy)
    wake_at = initial.wake_at
    for i, step in enumerate(case["steps"]):
        now = step["now"]
        inp = step["input"]
        what = f"step {i} ({inp.get('type', '?')} at {now})"
        try:
            produced, result = apply(m, edge, now, inp)
        except BadInput as e:
            raise AssertionError(f"case {name}, {what}: bad input: {e}") from None
        if produced is None:
            # A call that returned no step (an error, upstream_headers) queued nothing the
            # vector expects now, and left the timer where the last step put it.
            produced = m.Step(
                decisions=[], fetches=[], lookups=[], publishes=[], audits=[], wake_at=wake_at
            )
        check_step(name, what, step["expect"], produced, policy)
        wake_at = produced.wake_at
        check(name, f"{what}: result", step.get("result"), result)
        if "timeout" in step:
            check(name, f"{what}: wake_at", step["timeout"], wake_at)


def smoke(m):
    """A few checks of the binding surface the vectors do not reach."""
    problems = []
    try:
        m.PhantomEdge.from_toml_with_env(
            '[authorization_server]\nissuer = "x"\n', {}, bytes(32), 0
        )
        problems.append("incomplete config was accepted")
    except m.PhantomEdgeError.Config as e:
        if not e.field:
            problems.append(f"config error without a field: {e!r}")
    try:
        m.PhantomEdge.from_toml_with_env("", {}, bytes(3), 0)
        problems.append("empty config / short seed was accepted")
    except (m.PhantomEdgeError.Config, m.PhantomEdgeError.Api):
        pass
    toml = (
        "[authorization_server]\n"
        'issuer = "https://as.example"\n'
        'introspection_endpoint = "https://as.example/introspect"\n'
        'client_id = "gateway"\n'
        'client_secret_env = "PE_TEST_SECRET"\n'
        'dialect = "keycloak"\n'
        'jwks_uri = "https://as.example/jwks"\n'
        "[[routes]]\n"
        'path_prefix = "/orders"\n'
    )
    try:
        m.PhantomEdge.from_toml_with_env(toml, {}, bytes(32), 0)
        problems.append("missing env secret was accepted")
    except m.PhantomEdgeError.Config as e:
        if e.field != "authorization_server.client_secret_env":
            problems.append(f"config error names {e.field!r}")
    os.environ["PE_TEST_SECRET"] = "s3cret-from-the-environment"
    edge = m.PhantomEdge.from_toml(toml, bytes(32), 1_700_000_000_000)
    first = edge.initial_step()
    if [f.kind for f in first.fetches] != [m.FetchKind.JWKS] or first.wake_at is None:
        problems.append(f"initial step is not one JWKS fetch with a deadline: {first!r}")
    if edge.initial_step().fetches:
        problems.append("initial_step did not drain the queue")
    fp = edge.fingerprint("opaque-token")
    if len(fp) != 32:
        problems.append(f"fingerprint {fp!r}")
    if "phantom_edge" not in edge.prometheus():
        problems.append("prometheus text has no phantom_edge metric")
    try:
        edge.handle_fetch(1_700_000_000_000, 99, m.FetchResult.FAILURE(detail="nope"))
        problems.append("unknown ticket accepted")
    except m.PhantomEdgeError.UnknownTicket as e:
        if e.ticket != 99:
            problems.append(f"unknown ticket {e.ticket}")
    try:
        edge.mute_audits(["cache_hit", "no_such_kind"])
        problems.append("unknown audit kind accepted")
    except m.PhantomEdgeError.Api:
        pass
    edge.mute_audits(["cache_miss"])
    edge.set_audit_level(m.AuditLevel.INFO)
    edge.set_audit_level(m.AuditLevel.DEBUG)
    hop = m.hop_by_hop_headers(
        [m.Header(name="Connection", value="x-a"), m.Header(name="X-A", value="1"),
         m.Header(name="etag", value="1")]
    )
    if list(hop) != [0, 1]:
        problems.append(f"hop_by_hop_headers {hop!r}")

    def admin_call(e, route, listener, method, authorization, body=b""):
        return e.handle_admin(
            1_700_000_000_000,
            m.AdminRequest(route=route, listener=listener, method=method,
                           authorization=authorization, content_type="application/json",
                           body=body),
        ).answer

    a = admin_call(edge, m.AdminRoute.REVOCATIONS, m.Listener.OPERATOR, "POST", None, b"{}")
    if a.status != 401 or "error" not in json.loads(a.body):
        problems.append(f"unauthenticated admin revocation answered {a!r}")
    a = admin_call(edge, m.AdminRoute.REVOCATIONS, m.Listener.OPERATOR, "POST", None,
                   b" " * (m.max_admin_body() + 1))
    if a.status != 413:
        problems.append(f"oversized admin body answered {a.status}")
    # The app listener's metrics: 403 without [admin], 200 only for its bearer (else 401).
    admin_token = "admin-secret-0123456789"
    admin = m.PhantomEdge.from_toml(
        toml + f'[admin]\ntoken = "{admin_token}"\n', bytes(32), 1_700_000_000_000
    )
    for authorization, want in (
        (f"Bearer {admin_token}", 200),
        (f"bearer  {admin_token} ", 200),
        (f"Bearer {admin_token}x", 401),
        ("Bearer wrong-0123456789", 401),
        (f"Basic {admin_token}", 401),
        (None, 401),
    ):
        got = admin_call(admin, m.AdminRoute.METRICS, m.Listener.APP, "GET", authorization)
        if got.status != want:
            problems.append(f"app metrics with {authorization!r}: {got.status}, want {want}")
        got = admin_call(edge, m.AdminRoute.METRICS, m.Listener.APP, "GET", authorization)
        if got.status != 403:
            problems.append(f"app metrics without [admin] with {authorization!r}: {got.status}")
    return problems


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    m = load_module(sys.argv[1])
    cases_dir = sys.argv[2]
    files = sorted(f for f in os.listdir(cases_dir) if f.endswith(".json"))
    passed = failed = 0
    for f in files:
        with open(os.path.join(cases_dir, f), encoding="utf-8") as fh:
            case = json.load(fh)
        try:
            replay(m, case)
            passed += 1
        except Exception as e:  # noqa: BLE001  (report every case)
            failed += 1
            print(f"FAIL [{f}] {type(e).__name__}: {e}")
    # The binding smoke checks are reported on their own line; a failure among them counts as
    # one failure in the closing line (which otherwise counts vector cases).
    problems = smoke(m)
    for p in problems:
        print(f"FAIL [binding smoke] {p}")
    print(f"binding smoke checks: {'FAILED' if problems else 'ok'}")
    if problems:
        failed += 1
    if len(files) != 74:
        print(f"FAIL expected 74 vector cases in {cases_dir}, found {len(files)}")
        failed += 1
    print(f"python FFI replay of {len(files)} vector cases through libphantom_edge_uniffi")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
