"""phantom-edge for Python: the phantom-token edge core (Rust, via pyo3), an asyncio client
(:class:`AsyncEdge`) and ASGI middleware (:mod:`phantom_edge.asgi`).

The native layer is a thin translation of ``phantom-edge-core``: every decision (cache, revocation,
scopes, audience, sender binding, failures), the forwarding policy and the operator routes are the
core's. Each input to :class:`Edge` returns the :class:`Step` it produced.
"""

from ._native import (
    MAX_ADMIN_BODY,
    AdminAnswer,
    Audit,
    Config,
    ConfigError,
    Edge,
    EdgeError,
    Fetch,
    Forward,
    ForwardPolicy,
    PhantomEdgeError,
    Reject,
    RevocationError,
    SharedLookup,
    Step,
    UpstreamHeaders,
    hop_by_hop_headers,
    redact_query_tokens,
    split_jwt,
)
from .client import AsyncEdge, Decision, load_config

__all__ = [
    "MAX_ADMIN_BODY",
    "AdminAnswer",
    "AsyncEdge",
    "Audit",
    "Config",
    "ConfigError",
    "Decision",
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
    "load_config",
    "redact_query_tokens",
    "split_jwt",
]
