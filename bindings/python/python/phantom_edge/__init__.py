"""phantom-edge for Python: the phantom-token edge core (Rust, via pyo3), an asyncio client
(:class:`AsyncEdge`) and ASGI middleware (:mod:`phantom_edge.asgi`).

The native layer is a thin translation of ``phantom-edge-core``: every decision (cache, revocation,
scopes, audience, sender binding, failures) is made by the core.
"""

from ._native import (
    Audit,
    Config,
    ConfigError,
    Edge,
    EdgeError,
    FetchJwks,
    Forward,
    Introspect,
    PhantomEdgeError,
    Reject,
    RevocationError,
    SharedLookup,
    SharedPublish,
    redact_query_tokens,
)
from .client import AsyncEdge, Decision, load_config

__all__ = [
    "AsyncEdge",
    "Audit",
    "Config",
    "ConfigError",
    "Decision",
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
    "load_config",
    "redact_query_tokens",
]
