"""ASGI middleware: ``app.add_middleware(PhantomTokenMiddleware, config="phantom-edge.toml")``.

For each HTTP request the core decides; a forward rewrites the headers the app sees as the core's
forwarding policy for an in-process hop says (``Edge.upstream_headers``: the stripped headers and
every spelling of the upstream header go, the upstream header is appended, the others stay as they
are) and stores the claims in ``scope["state"]["phantom_edge"]`` (``request.state.phantom_edge``
in Starlette/FastAPI); a reject is answered with the core's status, ``WWW-Authenticate`` and body.
It also serves the revocation route (default ``/_phantom/revocations``) and the metrics (default
``/_phantom/metrics``), both answered whole by the core (``Edge.handle_admin`` on the app's
listener: the metrics need the ``[admin]`` bearer token, and without ``[admin]`` nobody reads
them); both paths come from the ``[middleware]`` section (``revocation_path``, ``metrics_path``;
``""`` disables a route). Logs carry audit events (fingerprints), never tokens.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, Awaitable, Callable, Literal, MutableMapping, Optional

from ._native import MAX_ADMIN_BODY, redact_query_tokens
from .client import AsyncEdge, ConfigSource, load_config

__all__ = ["PhantomTokenMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DEFAULT_REVOCATION_PATH = "/_phantom/revocations"
DEFAULT_METRICS_PATH = "/_phantom/metrics"

logger = logging.getLogger("phantom_edge.asgi")


#: Characters a path segment may carry unencoded (RFC 3986 pchar, and `/`).
_PCHAR = "/:@!$&'()*+,;=-._~"


def _drop_query_tokens(scope: Scope) -> None:
    """Removes, in place, every query parameter the core reads as `access_token` (any spelling it
    takes or refuses: the core's `redact_query_tokens`) from the scope's `query_string`, and from
    `raw_path` when a server left the query in it: the server's own access log reads them."""
    qs = scope.get("query_string", b"")
    if qs:
        redacted = redact_query_tokens("?" + qs.decode("latin-1"))
        if redacted is not None:
            scope["query_string"] = redacted.partition("?")[2].encode("latin-1")
    raw_path = scope.get("raw_path")
    if raw_path and b"?" in raw_path:
        redacted = redact_query_tokens(raw_path.decode("latin-1"))
        if redacted is not None:
            scope["raw_path"] = redacted.encode("latin-1")


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers = headers + [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class PhantomTokenMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        config: ConfigSource = "phantom-edge.toml",
        *,
        http_client: Any = None,
        edge: Optional[AsyncEdge] = None,
        revocation_path: Optional[str] = None,
        metrics_path: Optional[str] = None,
    ) -> None:
        self.app = app
        if edge is None:
            edge = AsyncEdge(load_config(config), http_client=http_client, audit_logger=logger)
        self.edge = edge
        section = edge.config.middleware or {}
        self.revocation_path = (
            revocation_path
            if revocation_path is not None
            else section.get("revocation_path", DEFAULT_REVOCATION_PATH)
        )
        self.metrics_path = (
            metrics_path
            if metrics_path is not None
            else section.get("metrics_path", DEFAULT_METRICS_PATH)
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if kind == "http" and self.revocation_path and path == self.revocation_path:
            await self._admin("revocations", scope, receive, send)
            return
        if kind == "http" and self.metrics_path and path == self.metrics_path:
            await self._admin("metrics", scope, receive, send)
            return

        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        authority = next((v for k, v in headers if k.lower() == "host"), None)
        if authority is None:
            server = scope.get("server")
            authority = f"{server[0]}:{server[1]}" if server else "localhost"
        raw_path = scope.get("raw_path")
        # Without raw_path (ASGI allows it) `path` is already decoded: re-encode what would
        # change its reading (`?`, `#`, `%`, spaces, ...) so the core sees one unambiguous target.
        target = raw_path.decode("latin-1") if raw_path else urllib.parse.quote(path, safe=_PCHAR)
        qs = scope.get("query_string", b"")
        if qs:
            target = f"{target}?{qs.decode('latin-1')}"
        scheme = scope.get("scheme", "http")
        method = scope.get("method", "GET")
        try:
            decision = await self.edge.authorize_parts(
                method, scheme, authority, target, headers, _cert_thumbprint(scope)
            )
        finally:
            if self.edge.config.allow_query_token:
                # The server's access log reads this scope: no token may stay in its query,
                # whatever the decision (or if there was none).
                _drop_query_tokens(scope)
        if not decision.forward:
            out = [(b"content-type", b"application/json")]
            if decision.www_authenticate:
                out.append((b"www-authenticate", decision.www_authenticate.encode("latin-1")))
            if decision.retry_after is not None:
                out.append((b"retry-after", str(decision.retry_after).encode()))
            if kind == "websocket":
                if "websocket.http.response" not in (scope.get("extensions") or {}):
                    # The server cannot send a response: it answers the handshake with 403.
                    await send({"type": "websocket.close", "code": 1008})
                    return
                body = decision.body.encode()
                out.append((b"content-length", str(len(body)).encode()))
                await send(
                    {
                        "type": "websocket.http.response.start",
                        "status": decision.status,
                        "headers": out,
                    }
                )
                await send({"type": "websocket.http.response.body", "body": body})
                return
            await _respond(send, decision.status, decision.body.encode(), out)
            return
        # The core's forwarding policy: drop these inbound headers (the others keep their bytes
        # and order), append those.
        assert decision.header_value is not None
        plan = self.edge.edge.upstream_headers(headers, decision.header_value, "in_process")
        drop = set(plan.drop)
        new_scope = dict(scope)
        new_scope["headers"] = [h for i, h in enumerate(scope["headers"]) if i not in drop] + [
            (n.encode("latin-1"), v.encode("latin-1")) for n, v in plan.set
        ]
        if decision.rewritten_path is not None:
            # The token came in the query: the app sees the query without access_token, and so
            # does the server's access log (it reads the scope it passed in: changed in place).
            new_path, _, new_qs = decision.rewritten_path.partition("?")
            for sc in (scope, new_scope):
                sc["raw_path"] = new_path.encode("latin-1")
                sc["path"] = urllib.parse.unquote(new_path)
                sc["query_string"] = new_qs.encode("latin-1")
        state = dict(scope.get("state") or {})
        state["phantom_edge"] = decision.claims
        new_scope["state"] = state
        await self.app(new_scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def wrapped_receive() -> Message:
            return await receive()

        async def wrapped_send(message: Message) -> None:
            if message.get("type") == "lifespan.shutdown.complete":
                await self.edge.aclose()
            await send(message)

        await self.app(scope, wrapped_receive, wrapped_send)

    async def _admin(
        self, route: Literal["revocations", "metrics"], scope: Scope, receive: Receive, send: Send
    ) -> None:
        """An operator route: the body (at most `MAX_ADMIN_BODY` + 1 bytes) and two headers go to
        the core, whose answer is written out as it is."""
        body = b""
        while len(body) <= MAX_ADMIN_BODY:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if not msg.get("more_body", False):
                break
        content_type = authorization = None
        for k, v in scope["headers"]:
            name = k.decode("latin-1").lower()
            if name == "content-type":
                content_type = v.decode("latin-1")
            elif name == "authorization":
                authorization = v.decode("latin-1")
        answer = await self.edge.admin(
            route,
            scope.get("method", "GET"),
            listener="app",
            authorization=authorization,
            content_type=content_type,
            body=body[: MAX_ADMIN_BODY + 1],
        )
        headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in answer.headers]
        await _respond(send, answer.status, answer.body.encode(), headers)


def _cert_thumbprint(scope: Scope) -> Optional[str]:
    """``base64url(SHA-256(DER))`` of the client certificate, when the server exposes it via the
    ASGI TLS extension; otherwise None."""
    tls = (scope.get("extensions") or {}).get("tls") or {}
    chain = tls.get("client_cert_chain") or []
    if not chain:
        return None
    import base64
    import hashlib
    import ssl

    try:
        der = ssl.PEM_cert_to_DER_cert(chain[0])
    except Exception:
        return None
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()
