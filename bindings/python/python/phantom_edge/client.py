"""The asyncio host of the core: performs the I/O the core asks for, with one shared
``httpx.AsyncClient``, and drives its timers. No policy here: every decision comes from the core."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal, Optional, Union
from urllib.parse import urlsplit

from ._native import (
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

__all__ = ["AsyncEdge", "Decision", "load_config"]

logger = logging.getLogger("phantom_edge")

ConfigSource = Union[Config, str, "os.PathLike[str]", "dict[str, Any]"]


def load_config(config: ConfigSource) -> Config:
    """A :class:`Config` from a ``Config``, a dict, a TOML/JSON path or TOML text."""
    if isinstance(config, Config):
        return config
    if isinstance(config, dict):
        return Config.from_dict(config)
    path = os.fspath(config)
    if path.endswith(".json") and "\n" not in path:
        return Config.from_json(config)
    return Config.from_toml(config)


#: The `logging` level of each audit level (the core classifies every audit kind).
_AuditLevel = Literal["debug", "info", "warn"]
_LOG_LEVELS: dict[_AuditLevel, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
}


#: Largest introspection or JWKS answer read (the core refuses larger ones anyway).
_MAX_ANSWER = 1024 * 1024


class _AnswerTooLarge(Exception):
    """The authorization server's answer passed `_MAX_ANSWER` bytes."""


def _cancelling() -> bool:
    """Whether the current task is being cancelled (Python 3.11+; False before)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


def _as_read(name: str) -> str:
    """A header name as WSGI/CGI servers read it: lowercase, ``_`` as ``-`` (mirrors the core's
    ``header_name_as_read``, which phantom-gateway calls)."""
    return name.lower().replace("_", "-")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Decision:
    """The core's decision for one request."""

    forward: bool
    #: forward: the header to set upstream, its value and the inbound headers to strip.
    #: ``header_value`` (the upstream JWT) and the claims are left out of the repr, as the
    #: native ``Forward``'s repr leaves them out.
    header_name: Optional[str] = None
    header_value: Optional[str] = field(default=None, repr=False)
    strip_headers: list[str] = field(default_factory=list)
    #: forward: the token's claims (``sub``, ``client_id``, ``scopes``, ``aud``, ...).
    claims: dict[str, Any] = field(default_factory=dict, repr=False)
    #: reject: status, ``WWW-Authenticate`` value (or None), JSON body, stable reason code.
    status: int = 200
    www_authenticate: Optional[str] = None
    #: reject: seconds for a ``Retry-After`` header (``rate_limited``), or None.
    retry_after: Optional[int] = None
    body: str = ""
    reason: Optional[str] = None
    #: keyed fingerprint of the presented token (never the token itself).
    fingerprint: Optional[str] = None
    #: forward, token taken from the query (``request.allow_query_token``): the path and query
    #: to pass on instead, without ``access_token``; None: pass the path on unchanged.
    rewritten_path: Optional[str] = None

    @classmethod
    def _from_action(cls, a: Union[Forward, Reject]) -> "Decision":
        if isinstance(a, Forward):
            return cls(
                forward=True,
                header_name=a.header_name,
                header_value=a.header_value,
                strip_headers=list(a.strip_headers),
                claims=a.token,
                fingerprint=a.fingerprint,
                rewritten_path=a.rewritten_path,
            )
        return cls(
            forward=False,
            status=a.status,
            www_authenticate=a.www_authenticate,
            retry_after=a.retry_after,
            body=a.body,
            reason=a.reason,
            fingerprint=a.fingerprint,
        )

    def upstream_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``headers`` without the stripped ones, plus the upstream header (forward only). Names
        are compared as WSGI/CGI servers (Django, ...) read them: ``x_user_id`` is X-User-Id."""
        strip = {_as_read(h) for h in self.strip_headers}
        if self.header_name is not None:
            strip.add(_as_read(self.header_name))
        out = [(n, v) for n, v in headers if _as_read(n) not in strip]
        if self.header_name is not None and self.header_value is not None:
            out.append((self.header_name, self.header_value))
        return out


class AsyncEdge:
    """An asyncio host around :class:`Edge`.

    ``await authorize(...)`` returns the core's :class:`Decision`. Concurrent calls for one token
    share one introspection (the core coalesces them; each call waits on a future keyed by its
    request id). Call :meth:`aclose` when done (closes the HTTP client if this object made it).
    """

    def __init__(
        self,
        config: ConfigSource,
        *,
        http_client: Any = None,
        seed: Optional[bytes] = None,
        shared_lookup: Optional[Callable[[str], Awaitable[Optional[str]]]] = None,
        on_publish: Optional[Callable[[str], Any]] = None,
        audit_logger: Optional[logging.Logger] = None,
    ) -> None:
        self.config = load_config(config)
        self._edge = Edge(self.config, seed)
        self._http = http_client
        self._owns_http = http_client is None
        self._shared_lookup = shared_lookup
        self._on_publish = on_publish
        self._log = audit_logger or logger
        self._ids = itertools.count(1)
        self._waiters: dict[int, asyncio.Future[Decision]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Revocations being handed to `on_publish`: aclose() lets them finish (bounded).
        self._publishing: set[asyncio.Task[None]] = set()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._timer_at: Optional[int] = None
        # Audit events below the logger's level are not even built (re-checked on every pump:
        # logging levels can change at run time).
        self._audit_level: Optional[_AuditLevel] = None
        # Set by aclose(): a CancelledError in a lookup is then ours (Python < 3.11 cannot
        # tell otherwise; 3.11+ asks the task, `cancelling()`).
        self._closing = False

    @property
    def edge(self) -> Edge:
        """The underlying state machine."""
        return self._edge

    def _client(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient()
        return self._http

    # -- public API ------------------------------------------------------------------------

    async def authorize(
        self,
        method: str,
        url: str,
        headers: Union[list[tuple[str, str]], dict[str, str], Any],
        client_cert_thumbprint: Optional[str] = None,
    ) -> Decision:
        """Decide on a request to ``url`` (absolute: ``https://host/path?query``)."""
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        return await self.authorize_parts(
            method, parts.scheme or "http", parts.netloc, path, headers, client_cert_thumbprint
        )

    async def authorize_parts(
        self,
        method: str,
        scheme: str,
        authority: str,
        path: str,
        headers: Union[list[tuple[str, str]], dict[str, str], Any],
        client_cert_thumbprint: Optional[str] = None,
    ) -> Decision:
        """Like :meth:`authorize`, with the URL already split."""
        if hasattr(headers, "multi_items"):
            hdrs = list(headers.multi_items())
        elif hasattr(headers, "items"):
            hdrs = list(headers.items())
        else:
            hdrs = list(headers)
        self._sync_audit_level()
        rid = next(self._ids)
        # A cache hit (or a rejection without I/O) is decided in this call; anything else waits
        # on a future that the run loop completes (the decision is then queued, and stays so
        # until the pump below hands it out).
        decided = self._edge.decide(
            rid, method, scheme, authority, path, hdrs, client_cert_thumbprint, _now_ms()
        )
        if decided is not None:
            # No ticket was made, but the sweep deadline can start (a DPoP proof's replay entry).
            self._arm_timer()
            return Decision._from_action(decided)
        fut: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        self._pump()
        try:
            return await fut
        finally:
            self._waiters.pop(rid, None)

    async def revoke(
        self, content_type: Optional[str], authorization: Optional[str], body: Union[bytes, str]
    ) -> tuple[int, str]:
        """The revocation route: ``(204, "")`` or ``(400|401, json_body)``."""
        try:
            self._edge.handle_admin_revocation(content_type, authorization, body, _now_ms())
            result = (204, "")
        except RevocationError as e:
            result = (e.status, e.body)
        self._pump()
        return result

    def metrics(self) -> str:
        """Prometheus text exposition."""
        return self._edge.prometheus()

    def admin_authorized(self, authorization: Optional[str]) -> Optional[bool]:
        """Whether `authorization` carries the ``[admin]`` bearer token (``None``: none is
        configured), for operator-only routes such as metrics."""
        return self._edge.admin_authorized(authorization)

    def fingerprint(self, token: str) -> str:
        return self._edge.fingerprint(token)

    async def aclose(self) -> None:
        self._closing = True
        # A revocation handled just before shutdown still reaches the other instances: the
        # publishes in flight may finish (within the configured timeout); other I/O is cancelled.
        if self._publishing:
            await asyncio.wait(list(self._publishing), timeout=self.config.timeout_ms / 1000.0)
            for t in list(self._publishing):
                t.cancel()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # The I/O was cancelled: every ticket still pending times out in the core now (503), so
        # no request waits forever on an answer that will not come.
        if any(not f.done() for f in self._waiters.values()):
            self._edge.handle_timeout(_now_ms() + self.config.timeout_ms + 1)
            self._pump()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    async def __aenter__(self) -> "AsyncEdge":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- the run loop ----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _sync_audit_level(self) -> None:
        """Have the core build only the audit events the logger writes (levels can change)."""
        level: _AuditLevel = next(
            (name for name, lv in _LOG_LEVELS.items() if self._log.isEnabledFor(lv)), "warn"
        )
        if level != self._audit_level:
            self._edge.set_audit_level(level)
            self._audit_level = level

    def _pump(self) -> None:
        """Carry out every queued action, then re-arm the timer."""
        self._sync_audit_level()
        while True:
            action = self._edge.poll_action()
            if action is None:
                break
            if isinstance(action, (Forward, Reject)):
                fut = self._waiters.get(action.request_id)
                if fut is not None and not fut.done():
                    fut.set_result(Decision._from_action(action))
            elif isinstance(action, Audit):
                level = _LOG_LEVELS[action.level]
                if self._log.isEnabledFor(level):
                    self._log.log(level, "phantom_edge audit %s", action.to_json())
            elif isinstance(action, Introspect):
                self._spawn(self._introspect(action))
            elif isinstance(action, FetchJwks):
                self._spawn(self._fetch_jwks(action))
            elif isinstance(action, SharedLookup):
                self._spawn(self._lookup(action))
            elif isinstance(action, SharedPublish):
                if self._on_publish is not None:
                    self._publish(action.message)
        self._arm_timer()

    def _publish(self, message: str) -> None:
        """Hand a revocation to `on_publish` (sync, or async like redis.asyncio's publish). A
        failure is logged; it never undoes the revocation, which is already in force here."""
        assert self._on_publish is not None
        try:
            result = self._on_publish(message)
        except Exception as e:
            self._log.warning("phantom_edge publish failed: %s", type(e).__name__)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(self._await_publish(result))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _await_publish(self, pending: Awaitable[Any]) -> None:
        try:
            await pending
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._log.warning("phantom_edge publish failed: %s", type(e).__name__)

    def _arm_timer(self) -> None:
        at = self._edge.poll_timeout()
        if at == self._timer_at and self._timer is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = at
        if at is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = max(0.0, (at - _now_ms()) / 1000.0)
        self._timer = loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._edge.handle_timeout(_now_ms())
        self._pump()

    async def _send(
        self, method: str, url: str, headers: Any, content: Optional[bytes], timeout_ms: int
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """One request to the authorization server: redirects not followed (the request carries
        client credentials), the whole exchange within `timeout_ms` (httpx's own timeouts are per
        phase), the answer refused past `_MAX_ANSWER` bytes instead of buffered."""

        async def exchange() -> tuple[int, list[tuple[str, str]], bytes]:
            async with self._client().stream(
                method,
                url,
                headers=headers,
                content=content,
                timeout=timeout_ms / 1000.0,
                follow_redirects=False,
            ) as resp:
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_ANSWER:
                        raise _AnswerTooLarge()
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw]
                return resp.status_code, raw, bytes(body)

        return await asyncio.wait_for(exchange(), timeout_ms / 1000.0)

    async def _introspect(self, a: Introspect) -> None:
        try:
            status, headers, body = await self._send(
                a.method, a.url, a.headers, a.body.encode(), a.timeout_ms
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:  # transport failure, timeout, oversized: the core fails closed
            self._feed(
                lambda: self._edge.handle_introspection_failure(
                    a.ticket, type(e).__name__, _now_ms()
                )
            )
            return
        self._feed(
            lambda: self._edge.handle_introspection_response(
                a.ticket, status, headers, body, _now_ms()
            )
        )

    async def _fetch_jwks(self, a: FetchJwks) -> None:
        try:
            status, _, body = await self._send(
                "GET", a.url, {"accept": "application/json"}, None, self.config.timeout_ms
            )
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._feed(lambda: self._edge.handle_jwks_failure(type(e).__name__, _now_ms()))
            return
        if status == 200:
            self._feed(lambda: self._edge.handle_jwks(body, _now_ms()))
        else:
            self._feed(lambda: self._edge.handle_jwks_failure(f"status {status}", _now_ms()))

    async def _lookup(self, a: SharedLookup) -> None:
        if self._shared_lookup is None:
            self._feed(lambda: self._edge.handle_shared_lookup(a.ticket, None, True, _now_ms()))
            return
        try:
            value = await self._shared_lookup(a.key)
        except asyncio.CancelledError:
            # This task cancelled (aclose): stop. A CancelledError of the store client's own
            # (its task was cancelled) is a store error: the ticket is answered (503) at once.
            if self._closing or _cancelling():
                raise
            self._feed(lambda: self._edge.handle_shared_lookup(a.ticket, None, True, _now_ms()))
            return
        except Exception:
            self._feed(lambda: self._edge.handle_shared_lookup(a.ticket, None, True, _now_ms()))
            return
        # redis-py answers bytes unless decode_responses=True; anything else is a store error.
        if isinstance(value, (bytes, bytearray)):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError:
                value = 0  # refused below
        if value is not None and not isinstance(value, str):
            self._feed(lambda: self._edge.handle_shared_lookup(a.ticket, None, True, _now_ms()))
            return
        found = value
        self._feed(lambda: self._edge.handle_shared_lookup(a.ticket, found, False, _now_ms()))

    def _feed(self, call: Callable[[], None]) -> None:
        try:
            call()
        except EdgeError as e:  # the ticket already timed out in the core
            self._log.debug("phantom_edge late answer: %s", e.kind)
        except Exception as e:  # refused input: the ticket then times out in the core (503)
            self._log.warning("phantom_edge answer refused: %s", type(e).__name__)
        self._pump()
