"""Type stubs of the native module (pyo3)."""

import os
from typing import Any, Literal, Optional, Union, final

__all__ = [
    "MAX_ADMIN_BODY",
    "AdminAnswer",
    "Audit",
    "Config",
    "ConfigError",
    "Edge",
    "EdgeError",
    "Fetch",
    "Forward",
    "ForwardPolicy",
    "PhantomEdgeError",
    "Reject",
    "RevocationError",
    "SharedLookup",
    "Step",
    "UpstreamHeaders",
    "hop_by_hop_headers",
    "redact_query_tokens",
    "split_jwt",
]

#: The largest body an operator route reads: read at most one byte more and pass what was read
#: to ``Edge.handle_admin`` (a longer body is answered 413).
MAX_ADMIN_BODY: int

class PhantomEdgeError(Exception):
    """Base class of every phantom-edge error."""

class ConfigError(PhantomEdgeError):
    field: str
    message: str

class RevocationError(PhantomEdgeError):
    status: int
    body: str

class EdgeError(PhantomEdgeError):
    kind: str
    ticket: int

_Source = Union[str, "os.PathLike[str]"]

@final
class Config:
    def __new__(cls, **sections: Any) -> Config:
        """One keyword argument per top-level section (``authorization_server``, ``routes``,
        ``cache``, ...): the same as ``Config.from_dict`` of those sections."""
        ...
    @staticmethod
    def from_toml(source: _Source) -> Config: ...
    @staticmethod
    def from_json(source: _Source) -> Config: ...
    @staticmethod
    def from_dict(data: dict[str, Any]) -> Config: ...
    @property
    def middleware(self) -> Optional[dict[str, Any]]: ...
    @property
    def issuer(self) -> str: ...
    @property
    def jwks_uri(self) -> Optional[str]: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def allow_query_token(self) -> bool: ...

@final
class Forward:
    @property
    def request_id(self) -> int: ...
    @property
    def header_name(self) -> str: ...
    @property
    def header_value(self) -> str: ...
    @property
    def strip_headers(self) -> list[str]: ...
    @property
    def token(self) -> dict[str, Any]: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def rewritten_path(self) -> Optional[str]: ...

@final
class Reject:
    @property
    def request_id(self) -> int: ...
    @property
    def status(self) -> int: ...
    @property
    def www_authenticate(self) -> Optional[str]: ...
    @property
    def retry_after(self) -> Optional[int]: ...
    @property
    def body(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def fingerprint(self) -> Optional[str]: ...

@final
class Fetch:
    """An HTTP request to send (an introspection or a JWKS fetch); answer with
    ``Edge.handle_fetch``."""

    @property
    def ticket(self) -> int: ...
    @property
    def kind(self) -> Literal["introspection", "jwks"]: ...
    @property
    def method(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def body(self) -> str: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def max_response_bytes(self) -> int: ...
    @property
    def fingerprint(self) -> Optional[str]: ...

@final
class SharedLookup:
    @property
    def ticket(self) -> int: ...
    @property
    def key(self) -> str: ...

@final
class Audit:
    @property
    def kind(self) -> str: ...
    @property
    def level(self) -> Literal["debug", "info", "warn"]: ...
    @property
    def request_id(self) -> Optional[int]: ...
    @property
    def ticket(self) -> Optional[int]: ...
    @property
    def fingerprint(self) -> Optional[str]: ...
    @property
    def reason(self) -> Optional[str]: ...
    @property
    def detail(self) -> Optional[str]: ...
    def to_json(self) -> str: ...

@final
class Step:
    """Everything one input produced, by consumer: answer the decisions, perform the fetches and
    lookups (their answers are inputs), send the publishes, log the audits, re-arm the timer for
    ``wake_at``."""

    @property
    def decisions(self) -> tuple[Union[Forward, Reject], ...]: ...
    @property
    def fetches(self) -> tuple[Fetch, ...]: ...
    @property
    def lookups(self) -> tuple[SharedLookup, ...]: ...
    @property
    def publishes(self) -> tuple[str, ...]: ...
    @property
    def audits(self) -> tuple[Audit, ...]: ...
    @property
    def wake_at(self) -> Optional[int]: ...
    def decision(self, request_id: int) -> Optional[Union[Forward, Reject]]: ...
    def __bool__(self) -> bool: ...

@final
class UpstreamHeaders:
    """Drop the inbound headers at ``drop`` (ascending), keep the others as they are, append
    ``set``."""

    @property
    def drop(self) -> list[int]: ...
    @property
    def set(self) -> list[tuple[str, str]]: ...

@final
class ForwardPolicy:
    @property
    def header_name(self) -> str: ...
    @property
    def strip_headers(self) -> list[str]: ...

@final
class AdminAnswer:
    @property
    def status(self) -> int: ...
    @property
    def headers(self) -> list[tuple[str, str]]: ...
    @property
    def body(self) -> str: ...

@final
class Edge:
    def __new__(
        cls, config: Config, seed: Optional[bytes] = None, now_ms: Optional[int] = None
    ) -> Edge: ...
    def initial_step(self) -> Step:
        """What the constructor queued (the initial JWKS fetch, if any)."""
        ...
    def handle_request(
        self,
        id: int,
        method: str,
        scheme: str,
        authority: str,
        path: str,
        headers: list[tuple[str, str]],
        client_cert_thumbprint: Optional[str] = None,
        now_ms: Optional[int] = None,
    ) -> Step: ...
    def handle_fetch(
        self,
        ticket: int,
        status: Optional[int] = None,
        headers: Optional[list[tuple[str, str]]] = None,
        body: Union[bytes, str, None] = None,
        *,
        failure: Optional[str] = None,
        now_ms: Optional[int] = None,
    ) -> Step:
        """The answer to a ``Fetch`` (``status``, ``headers``, ``body``: any status), or
        ``failure=`` a transport failure. Raises ``EdgeError`` for a foreign ticket."""
        ...
    def handle_shared_lookup(
        self,
        ticket: int,
        value: Optional[str],
        error: bool = False,
        now_ms: Optional[int] = None,
    ) -> Step: ...
    def handle_revocation(
        self,
        selector: Union[str, bytes, dict[str, Any]],
        origin: Literal["local", "shared"] = "local",
        now_ms: Optional[int] = None,
    ) -> Step: ...
    def handle_security_event(self, set: str, now_ms: Optional[int] = None) -> Step: ...
    def handle_admin(
        self,
        route: Literal["revocations", "metrics", "jwks"],
        method: str,
        *,
        listener: Literal["operator", "app"],
        authorization: Optional[str] = None,
        content_type: Optional[str] = None,
        body: Union[bytes, str, None] = None,
        now_ms: Optional[int] = None,
    ) -> tuple[AdminAnswer, Step]: ...
    def handle_timeout(self, now_ms: Optional[int] = None) -> Step: ...
    def upstream_headers(
        self,
        inbound: list[tuple[str, str]],
        header_value: str,
        hop: Literal["in_process", "proxy"] = "in_process",
        *,
        peer: Optional[str] = None,
        proto: Optional[str] = None,
        upstream_authority: Optional[str] = None,
    ) -> UpstreamHeaders: ...
    def forward_policy(self) -> ForwardPolicy: ...
    def mute_audits(self, kinds: list[str]) -> None: ...
    def set_audit_level(self, level: Literal["debug", "info", "warn"]) -> None: ...
    def prometheus(self) -> str: ...
    def fingerprint(self, token: str) -> str: ...
    def assertion_jwks(self) -> Optional[str]: ...
    def stats(self) -> dict[str, int]: ...
    def metrics(self) -> dict[str, int]: ...

def redact_query_tokens(target: str) -> Optional[str]:
    """`target` without every query parameter some server reads as `access_token` (the core's
    rules), or None when it has none."""
    ...

def hop_by_hop_headers(headers: list[tuple[str, str]]) -> list[int]:
    """Indexes (ascending) of the hop-by-hop headers of a message a proxy relays."""
    ...

def split_jwt(jwt: str, key_prefix: str = ...) -> dict[str, Any]:
    """Splits a signed JWT for the split-token pattern (``key_prefix`` defaults to
    ``"phantom-edge:split:"``): ``client_token`` (what the client gets),
    ``store_key``, ``store_value`` (sealed: no claims in the store) and ``expires_at`` (the
    JWT's ``exp``, or None). Raises ValueError for a JWT that is not a compact JWS."""
    ...
