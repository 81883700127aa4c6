"""A thin host for the phantom:edge component on the `wasmtime` PyPI package (component model).

wasmtime-py has no generated bindings for components (`wasmtime.bindgen` is gone): functions are
looked up by export name (`[static]edge.create`, `[method]edge.handle-request`, ...), records
are plain objects whose attributes carry the WIT field names (kebab-case, read with `getattr`),
variants whose cases cannot be told apart by Python type come back as `Variant(tag, payload)`
(those that can are the bare payload: a `fetch-result` is an `http_response(...)` record or a
failure string, a `hop` a `proxy_hop(...)` record or None for `in-process`), and every call must
be followed by `post_return`.

    rt = Runtime(path_to_component_wasm)      # compiles once
    inst = rt.instantiate()                   # a fresh Store + instance
    edge = inst.create(config_json, "json", [], seed_bytes, now_ms)  # raises ComponentError
    step = edge.initial_step()                # what create queued (the JWKS fetch)
    step = edge.handle_request(now_ms, request(...))   # decisions, fetches, ..., wake-at
"""

from __future__ import annotations

from typing import Any

from wasmtime import Config, Engine, Store, WasiConfig
from wasmtime.component import Component, Linker, Record, ResourceAny, Variant

IFACE = "phantom:edge/edge@0.4.0"

METHODS = (
    "initial-step",
    "handle-request",
    "handle-fetch",
    "handle-shared-lookup",
    "handle-revocation",
    "handle-security-event",
    "handle-admin",
    "handle-timeout",
    "upstream-headers",
    "mute-audits",
    "set-audit-level",
    "include-token-json",
    "forward-policy",
    "prometheus",
    "fingerprint",
    "assertion-jwks",
)


class Rec(Record):
    """A WIT record to pass in: attributes named as the WIT fields (kebab-case allowed). A
    `Record`, so that a variant whose case is a record (`fetch-result`, `hop`) takes it."""

    def __init__(self, **fields: Any) -> None:
        for k, v in fields.items():
            setattr(self, k.replace("_", "-"), v)


def header(name: str, value: str) -> Rec:
    return Rec(name=name, value=value)


METHOD_TAGS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")


def method(m: str) -> Variant:
    """The WIT `method` variant: the common methods by (case-sensitive) name, else `other`."""
    return Variant(m.lower()) if m in METHOD_TAGS else Variant("other", m)


def scheme(s: str) -> Variant:
    return Variant(s) if s in ("http", "https") else Variant("other", s)


def request(id: int, method_: str, scheme_: str, authority: str, path: str,
            headers: list[tuple[str, str]], client_cert_thumbprint: str | None = None) -> Rec:
    """A WIT request from a request's headers: every Authorization and DPoP value, in order
    (names are case-insensitive); the core reads no other header."""
    def values(name: str) -> list[str]:
        return [v for n, v in headers if n.lower() == name]
    return Rec(id=id, method=method(method_), scheme=scheme(scheme_), authority=authority,
               path=path, authorization=values("authorization"), dpop=values("dpop"),
               client_cert_thumbprint=client_cert_thumbprint)


def http_response(status: int, headers: list[tuple[str, str]], body: bytes) -> Rec:
    return Rec(status=status, headers=[header(n, v) for n, v in headers], body=body)


def proxy_hop(peer: str | None, proto: str, upstream_authority: str | None) -> Rec:
    """The `hop` variant's `proxy` case (its `in-process` case is None)."""
    return Rec(peer=peer, proto=proto, upstream_authority=upstream_authority)


def admin_request(route: str, listener: str, method_: str, authorization: str | None,
                  content_type: str | None, body: bytes) -> Rec:
    return Rec(route=route, listener=listener, method=method_, authorization=authorization,
               content_type=content_type, body=body)


def field(rec: Any, name: str) -> Any:
    """A field of a record the component returned (WIT name, kebab-case)."""
    return getattr(rec, name)


class ComponentError(Exception):
    """An `err(edge-error)` result: `.error` is the `Variant(tag, payload)`."""

    def __init__(self, error: Variant) -> None:
        super().__init__(f"{error.tag}: {error.payload!r}")
        self.error = error

    @property
    def tag(self) -> str:
        return self.error.tag

    @property
    def payload(self) -> Any:
        return self.error.payload


class Runtime:
    def __init__(self, wasm_path: str) -> None:
        self.engine = Engine(Config())
        self.component = Component.from_file(self.engine, wasm_path)
        self.linker = Linker(self.engine)
        self.linker.add_wasip2()

    def instantiate(self) -> "Instance":
        return Instance(self)


class Instance:
    def __init__(self, rt: Runtime) -> None:
        self.store = Store(rt.engine)
        self.store.set_wasi(WasiConfig())
        self.instance = rt.linker.instantiate(self.store, rt.component)
        iface = self.instance.get_export_index(self.store, IFACE)
        if iface is None:
            raise LookupError(f"the component does not export {IFACE}")

        def func(name: str) -> Any:
            idx = self.instance.get_export_index(self.store, name, iface)
            f = self.instance.get_func(self.store, idx) if idx is not None else None
            if f is None:
                raise LookupError(f"{IFACE} has no function {name}")
            return f

        self._create = func("[static]edge.create")
        self.funcs = {m: func(f"[method]edge.{m}") for m in METHODS}
        self._hop_by_hop = func("hop-by-hop-headers")

    def call(self, f: Any, *args: Any) -> Any:
        try:
            return f(self.store, *args)
        finally:
            f.post_return(self.store)

    def create(self, config: str, fmt: str, env: list[tuple[str, str]], seed: bytes,
               now_ms: int) -> "Edge":
        r = self.call(self._create, config, fmt, env, seed, now_ms)
        if isinstance(r, Variant):
            raise ComponentError(r)
        if not isinstance(r, ResourceAny):
            raise TypeError(f"create returned {r!r}")
        return Edge(self, r)

    def hop_by_hop_headers(self, headers: list[tuple[str, str]]) -> list[int]:
        """The interface's free function: indexes of the hop-by-hop headers."""
        return self.call(self._hop_by_hop, [header(n, v) for n, v in headers])


class Edge:
    """The `edge` resource: method names as in WIT with `_` for `-`. Every `handle-*` returns
    its `step` record; `result<step, edge-error>` methods return the step or raise
    ComponentError, `result<_, edge-error>` ones None or raise."""

    def __init__(self, inst: Instance, res: ResourceAny) -> None:
        self._inst = inst
        self._res = res

    def _call(self, method: str, *args: Any) -> Any:
        return self._inst.call(self._inst.funcs[method], self._res, *args)

    def _fallible(self, method: str, *args: Any) -> Any:
        r = self._call(method, *args)
        if isinstance(r, Variant):
            raise ComponentError(r)
        return r

    def initial_step(self) -> Any:
        return self._call("initial-step")

    def handle_request(self, now_ms: int, req: Rec) -> Any:
        return self._call("handle-request", now_ms, req)

    def handle_fetch(self, now_ms: int, ticket: int, result: Rec | str) -> Any:
        """`result`: an `http_response(...)` (any status) or a failure description."""
        return self._fallible("handle-fetch", now_ms, ticket, result)

    def handle_shared_lookup(self, now_ms: int, ticket: int, answer: Variant) -> Any:
        return self._fallible("handle-shared-lookup", now_ms, ticket, answer)

    def handle_revocation(self, now_ms: int, json_text: str, origin: str) -> Any:
        return self._fallible("handle-revocation", now_ms, json_text, origin)

    def handle_security_event(self, now_ms: int, set_jwt: str) -> Any:
        return self._fallible("handle-security-event", now_ms, set_jwt)

    def handle_admin(self, now_ms: int, req: Rec) -> tuple[Any, Any]:
        """(admin-answer, step)."""
        return self._call("handle-admin", now_ms, req)

    def handle_timeout(self, now_ms: int) -> Any:
        return self._call("handle-timeout", now_ms)

    def upstream_headers(self, inbound: list[tuple[str, str]], header_value: str,
                         hop: Rec | None) -> Any:
        """`hop`: a `proxy_hop(...)`, or None for `in-process`."""
        return self._call("upstream-headers", [header(n, v) for n, v in inbound], header_value,
                          hop)

    def forward_policy(self) -> Any:
        return self._call("forward-policy")

    def mute_audits(self, kinds: list[str]) -> None:
        self._fallible("mute-audits", kinds)

    def set_audit_level(self, level: str) -> None:
        self._call("set-audit-level", level)

    def include_token_json(self, enabled: bool) -> None:
        self._call("include-token-json", enabled)

    def prometheus(self) -> str:
        return self._call("prometheus")

    def fingerprint(self, token: str) -> str:
        return self._call("fingerprint", token)

    def assertion_jwks(self) -> str | None:
        return self._call("assertion-jwks")

    def drop(self) -> None:
        self._res.drop(self._inst.store)
