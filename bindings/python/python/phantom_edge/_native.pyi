"""Type stubs of the native module (pyo3)."""

import os
from typing import Any, Literal, Optional, Union, final

__all__ = [
    "Audit",
    "Config",
    "ConfigError",
    "Edge",
    "EdgeError",
    "FetchJwks",
    "Forward",
    "Introspect",
    "PhantomEdgeError",
    "Reject",
    "RevocationError",
    "SharedLookup",
    "SharedPublish",
    "redact_query_tokens",
]

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
class Introspect:
    @property
    def ticket(self) -> int: ...
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
    def fingerprint(self) -> str: ...

@final
class FetchJwks:
    @property
    def url(self) -> str: ...

@final
class SharedLookup:
    @property
    def ticket(self) -> int: ...
    @property
    def key(self) -> str: ...

@final
class SharedPublish:
    @property
    def message(self) -> str: ...

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

_Action = Union[Forward, Reject, Introspect, FetchJwks, SharedLookup, SharedPublish, Audit]

@final
class Edge:
    def __new__(
        cls, config: Config, seed: Optional[bytes] = None, now_ms: Optional[int] = None
    ) -> Edge: ...
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
    ) -> None: ...
    def decide(
        self,
        id: int,
        method: str,
        scheme: str,
        authority: str,
        path: str,
        headers: list[tuple[str, str]],
        client_cert_thumbprint: Optional[str] = None,
        now_ms: Optional[int] = None,
    ) -> Optional[Union[Forward, Reject]]:
        """``handle_request``; then this request's ``Forward``/``Reject`` when the core decided it at
        once and nothing else is queued (mute the routine audits for that), else ``None`` and every
        action waits for ``poll_action``/``drain_actions`` in order."""
        ...
    def handle_introspection_response(
        self,
        ticket: int,
        status: int,
        headers: list[tuple[str, str]],
        body: Union[bytes, str],
        now_ms: Optional[int] = None,
    ) -> None: ...
    def handle_introspection_failure(
        self, ticket: int, detail: str, now_ms: Optional[int] = None
    ) -> None: ...
    def handle_jwks(self, body: Union[bytes, str], now_ms: Optional[int] = None) -> None: ...
    def handle_jwks_failure(self, detail: str, now_ms: Optional[int] = None) -> None: ...
    def handle_shared_lookup(
        self,
        ticket: int,
        value: Optional[str],
        error: bool = False,
        now_ms: Optional[int] = None,
    ) -> None: ...
    def handle_revocation(
        self,
        selector: Union[str, bytes, dict[str, Any]],
        origin: str = "local",
        now_ms: Optional[int] = None,
    ) -> None: ...
    def handle_security_event(self, set: str, now_ms: Optional[int] = None) -> None: ...
    def admin_authorized(self, authorization: Optional[str]) -> Optional[bool]: ...
    def handle_admin_revocation(
        self,
        content_type: Optional[str],
        authorization: Optional[str],
        body: Union[bytes, str],
        now_ms: Optional[int] = None,
    ) -> None: ...
    def handle_timeout(self, now_ms: Optional[int] = None) -> None: ...
    def poll_action(self) -> Optional[_Action]: ...
    def drain_actions(self) -> list[_Action]: ...
    def mute_audits(self, kinds: list[str]) -> None: ...
    def set_audit_level(self, level: Literal["debug", "info", "warn"]) -> None: ...
    def poll_timeout(self) -> Optional[int]: ...
    def prometheus(self) -> str: ...
    def fingerprint(self, token: str) -> str: ...
    def assertion_jwks(self) -> Optional[str]: ...
    def stats(self) -> dict[str, int]: ...
    def metrics(self) -> dict[str, int]: ...

def redact_query_tokens(target: str) -> Optional[str]:
    """`target` without every query parameter some server reads as `access_token` (the core's
    rules), or None when it has none."""
    ...
