"""The asyncio host of the core: carries out the :class:`Step` each input returns (answers the
decisions, performs the fetches and lookups with one shared ``httpx.AsyncClient``, publishes,
logs, re-arms the one timer at ``wake_at``). No policy here: every decision, the forwarding policy
and the operator routes come from the core."""

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
    AdminAnswer,
    Config,
    Edge,
    EdgeError,
    Fetch,
    Forward,
    Reject,
    SharedLookup,
    Step,
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


class _AnswerTooLarge(Exception):
    """The answer passed the fetch's `max_response_bytes`."""


def _cancelling() -> bool:
    """Whether the current task is being cancelled (Python 3.11+; False before)."""
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    return bool(cancelling()) if cancelling is not None else False


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
    #: The edge that decided (its forwarding policy makes ``upstream_headers``).
    _edge: Optional[Edge] = field(default=None, repr=False, compare=False)

    @classmethod
    def _from_native(cls, d: Union[Forward, Reject], edge: Optional[Edge] = None) -> "Decision":
        if isinstance(d, Forward):
            return cls(
                forward=True,
                header_name=d.header_name,
                header_value=d.header_value,
                strip_headers=d.strip_headers,
                claims=d.token,
                fingerprint=d.fingerprint,
                rewritten_path=d.rewritten_path,
                _edge=edge,
            )
        return cls(
            forward=False,
            status=d.status,
            www_authenticate=d.www_authenticate,
            retry_after=d.retry_after,
            body=d.body,
            reason=d.reason,
            fingerprint=d.fingerprint,
        )

    def upstream_headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``headers`` as the app behind this middleware gets them (forward only; a rejection
        returns them unchanged): the core's forwarding policy for an in-process hop drops the
        stripped headers and every spelling of the upstream header (names compared as WSGI/CGI
        servers read them: ``x_user_id`` is X-User-Id) and appends the upstream header."""
        if not self.forward:
            return list(headers)
        if self._edge is None or self.header_value is None:
            # Fail closed: without the deciding edge's policy the opaque token would stay in.
            raise ValueError("upstream_headers needs a forward decided by an AsyncEdge")
        plan = self._edge.upstream_headers(headers, self.header_value, "in_process")
        drop = set(plan.drop)
        return [h for i, h in enumerate(headers) if i not in drop] + plan.set


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
        # The constructor's step (the JWKS fetch) is carried out on the first call, inside the
        # event loop (this object may be built before one runs).
        self._started = False
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
        # Audit events below the logger's level are not even built (re-checked on every call:
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
        self._prepare()
        rid = next(self._ids)
        step = self._edge.handle_request(
            rid, method, scheme, authority, path, hdrs, client_cert_thumbprint, _now_ms()
        )
        # A cache hit (or a rejection without I/O) is decided in this step; anything else waits
        # on a future that the step of a later input (the fetch's answer, the timer) completes.
        decided = step.decision(rid)
        self._run(step)
        if decided is not None:
            return Decision._from_native(decided, self._edge)
        fut: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._waiters[rid] = fut
        try:
            return await fut
        finally:
            self._waiters.pop(rid, None)

    async def admin(
        self,
        route: Literal["revocations", "metrics", "jwks"],
        method: str,
        *,
        listener: Literal["operator", "app"] = "app",
        authorization: Optional[str] = None,
        content_type: Optional[str] = None,
        body: Union[bytes, str] = b"",
    ) -> AdminAnswer:
        """An operator route, answered whole by the core (status, headers, body): write it out as
        it is. ``body``: at most ``MAX_ADMIN_BODY`` + 1 bytes as read."""
        self._prepare()
        answer, step = self._edge.handle_admin(
            route,
            method,
            listener=listener,
            authorization=authorization,
            content_type=content_type,
            body=body,
            now_ms=_now_ms(),
        )
        self._run(step)
        return answer

    async def revoke(
        self, content_type: Optional[str], authorization: Optional[str], body: Union[bytes, str]
    ) -> tuple[int, str]:
        """The revocation route: ``(204, "")`` or ``(400|401|413, json_body)``."""
        answer = await self.admin(
            "revocations", "POST", authorization=authorization, content_type=content_type, body=body
        )
        return answer.status, answer.body

    def metrics(self) -> str:
        """Prometheus text exposition."""
        return self._edge.prometheus()

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
            self._run(self._edge.handle_timeout(_now_ms() + self.config.timeout_ms + 1))
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

    # -- the run loop: every input returns a Step; carry it out ----------------------------

    def _prepare(self) -> None:
        """Before an input: carry out the constructor's step once (inside the event loop), and
        have the core build only the audit events the logger writes (levels can change)."""
        if not self._started:
            self._started = True
            self._run(self._edge.initial_step())
        level: _AuditLevel = next(
            (name for name, lv in _LOG_LEVELS.items() if self._log.isEnabledFor(lv)), "warn"
        )
        if level != self._audit_level:
            self._edge.set_audit_level(level)
            self._audit_level = level

    def _run(self, step: Step) -> None:
        """Answer the decisions, start the fetches and lookups (their answers are the next
        inputs: `_feed`), publish, log, and re-arm the one timer for `wake_at`."""
        for d in step.decisions:
            fut = self._waiters.get(d.request_id)
            if fut is not None and not fut.done():
                fut.set_result(Decision._from_native(d, self._edge))
        for f in step.fetches:
            self._spawn(self._fetch(f))
        for lookup in step.lookups:
            self._spawn(self._lookup(lookup))
        for message in step.publishes if self._on_publish is not None else ():
            self._publish(message)
        for a in step.audits:
            if self._log.isEnabledFor(_LOG_LEVELS[a.level]):
                self._log.log(_LOG_LEVELS[a.level], "phantom_edge audit %s", a.to_json())
        self._arm_timer(step.wake_at)

    def _feed(self, handle: Callable[..., Step], *answer: Any, **kw: Any) -> None:
        """Feed an answer to the core (`handle(*answer, **kw)`), carry out the step it produced."""
        try:
            step = handle(*answer, **kw)
        except EdgeError as e:  # a ticket the core does not know (any more)
            self._log.debug("phantom_edge late answer: %s", e.kind)
            return
        except Exception as e:  # refused input: the ticket then times out in the core (503)
            self._log.warning("phantom_edge answer refused: %s", type(e).__name__)
            return
        self._run(step)

    def _arm_timer(self, at: Optional[int]) -> None:
        if self._timer is not None:
            if at == self._timer_at:
                return
            self._timer.cancel()
        self._timer, self._timer_at = None, at
        if at is not None:
            delay = max(0.0, (at - _now_ms()) / 1000.0)
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer, self._timer_at = None, None
        self._run(self._edge.handle_timeout(_now_ms()))

    async def _fetch(self, f: Fetch) -> None:
        try:
            status, headers, body = await self._send(f)
        except Exception as e:  # transport failure, timeout, oversized (a cancellation stops)
            failure = "answer too large" if isinstance(e, _AnswerTooLarge) else type(e).__name__
            self._feed(self._edge.handle_fetch, f.ticket, failure=failure, now_ms=_now_ms())
        else:
            self._feed(self._edge.handle_fetch, f.ticket, status, headers, body, now_ms=_now_ms())

    async def _lookup(self, a: SharedLookup) -> None:
        value: Any = None
        error = self._shared_lookup is None  # no store: fail closed (503)
        if self._shared_lookup is not None:
            try:
                value = await self._shared_lookup(a.key)
                # redis-py answers bytes unless decode_responses=True; other types are an error.
                if isinstance(value, (bytes, bytearray)):
                    value = value.decode("utf-8")
                error = value is not None and not isinstance(value, str)
            except asyncio.CancelledError:
                # This task cancelled (aclose): stop. A CancelledError of the store client's own
                # (its task was cancelled) is a store error: the ticket is answered (503) at once.
                if self._closing or _cancelling():
                    raise
                error = True
            except Exception:
                error = True
        found = None if error else value
        self._feed(self._edge.handle_shared_lookup, a.ticket, found, error, _now_ms())

    # -- I/O helpers -----------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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

    async def _send(self, f: Fetch) -> tuple[int, list[tuple[str, str]], bytes]:
        """Sends a fetch as given: redirects not followed (it carries client credentials), the
        whole exchange within its `timeout_ms` (httpx's own timeouts are per phase), the answer
        refused past its `max_response_bytes` instead of buffered."""
        timeout = f.timeout_ms / 1000.0

        async def exchange() -> tuple[int, list[tuple[str, str]], bytes]:
            async with self._client().stream(
                f.method,
                f.url,
                headers=f.headers,
                content=f.body.encode() if f.body else None,
                timeout=timeout,
                follow_redirects=False,
            ) as resp:
                body = bytearray()
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > f.max_response_bytes:
                        raise _AnswerTooLarge()
                raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw]
                return resp.status_code, raw, bytes(body)

        return await asyncio.wait_for(exchange(), timeout)
