#!/usr/bin/env python3
"""Replays tests/vectors/cases/*.json through the UniFFI FFI layer of phantom-edge-uniffi.

The module under test is the Python code that `uniffi-bindgen generate --language python`
produced from the same `libphantom_edge_uniffi.so` the Swift package is generated from, so this
exercises the exact exported C ABI (argument lowering, records, enums, errors, options, byte
buffers) the Swift SDK calls. Mapping of inputs to calls and of actions to canonical JSON mirrors
core/tests/vectors.rs; see tests/vectors/README.md.

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
    try:
        call()
        return None
    except m.PhantomEdgeError.UnknownTicket:
        return {"error": "unknown_ticket"}
    except m.PhantomEdgeError.WrongTicketKind:
        return {"error": "wrong_ticket_kind"}


def revocation_result(m, call):
    try:
        call()
        return {"ok": True}
    except m.PhantomEdgeError.Revocation as e:
        return {"error": {"status": e.status}}


def apply(m, edge, now, inp):
    """Feeds one input at `now`, drains the actions; returns (actions, result)."""
    t = s(inp, "type")
    result = None
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
        edge.handle_request(now, req)
    elif t == "introspection_response":
        headers = pairs(m, inp, "headers")
        status = u(inp, "status")
        body = s(inp, "body").encode("utf-8")
        result = ticket_result(
            m,
            lambda: edge.handle_introspection_response(now, u(inp, "ticket"), status, headers, body),
        )
    elif t == "introspection_failure":
        result = ticket_result(
            m, lambda: edge.handle_introspection_failure(now, u(inp, "ticket"), s(inp, "detail"))
        )
    elif t == "jwks":
        edge.handle_jwks_response(now, s(inp, "body").encode("utf-8"))
    elif t == "jwks_failure":
        edge.handle_jwks_failure(now, s(inp, "detail"))
    elif t == "shared_lookup":
        r = inp.get("result")
        if r == "not_found":
            lookup = m.LookupResult.NOT_FOUND()
        elif r == "error":
            lookup = m.LookupResult.ERROR()
        elif isinstance(r, dict) and isinstance(r.get("found"), str):
            lookup = m.LookupResult.FOUND(value=r["found"])
        else:
            raise BadInput("shared_lookup result must be found/not_found/error")
        result = ticket_result(m, lambda: edge.handle_shared_lookup(now, u(inp, "ticket"), lookup))
    elif t == "revocation":
        if "selector" not in inp:
            raise BadInput("revocation needs a selector object")
        selector = json.dumps(inp["selector"], separators=(",", ":"))
        origin = {"local": m.Origin.LOCAL, "shared": m.Origin.SHARED}.get(s(inp, "origin"))
        if origin is None:
            raise BadInput(f"unknown origin {inp['origin']!r}")
        result = revocation_result(m, lambda: edge.handle_revocation(now, selector, origin))
    elif t == "admin_revocation":
        try:
            edge.handle_admin_revocation(
                now,
                opt_s(inp, "content_type"),
                opt_s(inp, "authorization"),
                s(inp, "body").encode("utf-8"),
            )
            result = {"status": 204}
        except m.PhantomEdgeError.Revocation as e:
            result = {"status": e.status}
    elif t == "security_event":
        result = revocation_result(m, lambda: edge.handle_security_event(now, s(inp, "set")))
    elif t == "timeout":
        edge.handle_timeout(now)
    else:
        raise BadInput(f"unknown input type {t!r}")
    # Drain one at a time through poll_action (the README's contract); drain_actions is
    # exercised on the initial actions.
    actions = []
    while True:
        a = edge.poll_action()
        if a is None:
            break
        actions.append(a)
    return actions, result


def canon(a):
    """The canonical JSON of one action (tests/vectors/README.md)."""
    if a.is_forward():
        f = a.forward
        return {
            "type": "forward",
            "request_id": f.request_id,
            "header_name": f.header_name,
            "header_value": f.header_value,
            "strip_headers": list(f.strip_headers),
            "fingerprint": f.fingerprint,
            "token": json.loads(f.token_json),
        }
    if a.is_reject():
        r = a.reject
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
    if a.is_introspect():
        i = a.introspect
        return {
            "type": "introspect",
            "ticket": i.ticket,
            "method": i.method,
            "url": i.url,
            "headers": [[h.name, h.value] for h in i.headers],
            "body": i.body,
            "timeout_ms": i.timeout_ms,
            "fingerprint": i.fingerprint,
        }
    if a.is_fetch_jwks():
        return {"type": "fetch_jwks", "url": a.url}
    if a.is_shared_lookup():
        return {"type": "shared_lookup", "ticket": a.ticket, "key": a.key}
    if a.is_shared_publish():
        return {"type": "shared_publish", "message": a.message}
    if a.is_audit():
        e = a.audit
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
    raise AssertionError(f"action without a canonical form: {a}")


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
    initial = [canon(a) for a in edge.drain_actions()]
    check(name, "initial actions", case.get("initial", []), initial)
    for i, step in enumerate(case["steps"]):
        now = step["now"]
        inp = step["input"]
        what = f"step {i} ({inp.get('type', '?')} at {now})"
        try:
            actions, result = apply(m, edge, now, inp)
        except BadInput as e:
            raise AssertionError(f"case {name}, {what}: bad input: {e}") from None
        check(name, f"{what}: actions", step["expect"], [canon(a) for a in actions])
        check(name, f"{what}: result", step.get("result"), result)
        if "timeout" in step:
            check(name, f"{what}: poll_timeout", step["timeout"], edge.poll_timeout())


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
    if not edge.poll_action().is_fetch_jwks():
        problems.append("first action is not fetch_jwks")
    if edge.poll_action() is not None:
        problems.append("more than one initial action")
    fp = edge.fingerprint("opaque-token")
    if len(fp) != 32:
        problems.append(f"fingerprint {fp!r}")
    if "phantom_edge" not in edge.prometheus():
        problems.append("prometheus text has no phantom_edge metric")
    try:
        edge.handle_introspection_failure(1_700_000_000_000, 99, "nope")
        problems.append("unknown ticket accepted")
    except m.PhantomEdgeError.UnknownTicket as e:
        if e.ticket != 99:
            problems.append(f"unknown ticket {e.ticket}")
    try:
        edge.handle_admin_revocation(1_700_000_000_000, "application/json", None, b"{}")
        problems.append("unauthenticated admin revocation accepted")
    except m.PhantomEdgeError.Revocation as e:
        if e.status not in (400, 401) or "error" not in json.loads(e.body):
            problems.append(f"admin revocation error {e!r}")
    # admin_authorized: None without [admin] (403), True only for its bearer secret (else 401).
    admin_token = "admin-secret-0123456789"
    admin = m.PhantomEdge.from_toml(
        toml + f'[admin]\ntoken = "{admin_token}"\n', bytes(32), 1_700_000_000_000
    )
    for authorization, want in (
        (f"Bearer {admin_token}", True),
        (f"bearer  {admin_token} ", True),
        (f"Bearer {admin_token}x", False),
        ("Bearer wrong-0123456789", False),
        (f"Basic {admin_token}", False),
        (None, False),
    ):
        got = admin.admin_authorized(authorization)
        if got is not want:
            problems.append(f"admin_authorized({authorization!r}) = {got!r}, want {want!r}")
        got = edge.admin_authorized(authorization)
        if got is not None:
            problems.append(f"admin_authorized({authorization!r}) without [admin] = {got!r}")
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
    if len(files) < 40:
        print(f"FAIL expected at least 40 vector cases in {cases_dir}, found {len(files)}")
        failed += 1
    print(f"python FFI replay of {len(files)} vector cases through libphantom_edge_uniffi")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
