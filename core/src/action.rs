//! What the core asks of its host: the [`Action`]s, and the decisions inside them.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

use crate::secret::Fingerprint;
use crate::token::TokenInfo;

/// Chosen by the host, unique among its in-flight requests.
pub type RequestId = u64;
/// Issued by the core for each introspection or shared-store lookup it asks for.
pub type Ticket = u64;

/// Everything the host must do, drained with [`crate::Edge::poll_action`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Action {
    /// Let the request through: set one header, strip the listed inbound headers.
    Forward(Forward),
    /// Answer the client with this status, challenge and body; do not contact the upstream.
    Reject(Reject),
    /// Send this HTTP request (an introspection or a JWKS fetch) and feed the answer back with
    /// [`crate::Edge::handle_fetch`], quoting the ticket.
    Fetch(Fetch),
    /// Look this key up in the shared store (split-token mode) and answer with
    /// [`crate::Edge::handle_shared_lookup`].
    SharedLookup(SharedLookup),
    /// Publish this revocation to the other instances (e.g. Redis pub/sub); they feed it to
    /// their cores with `Origin::Shared`.
    SharedPublish(SharedPublish),
    /// A token-free structured event for logs and metrics pipelines.
    Audit(AuditEvent),
}

/// The request may go upstream.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The host's request id.
    pub request_id: RequestId,
    /// Header to set on the upstream request (lowercase), e.g. `authorization`.
    pub header_name: Arc<str>,
    /// Its value, e.g. `Bearer <jwt>`: a by-value JWT, never the opaque token.
    pub header_value: Arc<str>,
    /// Inbound headers to remove before forwarding (lowercase). Always includes the
    /// `authorization` and `dpop` headers, so the opaque token never reaches the upstream.
    pub strip_headers: Arc<[String]>,
    /// The token's claims, for hosts that expose them to the app (`request.state`, `req.claims`).
    pub token: Arc<TokenInfo>,
    /// Keyed fingerprint of the presented token.
    pub fingerprint: Fingerprint,
    /// When the token came in the query (`request.allow_query_token`): the path and query to
    /// forward instead, without the `access_token` parameter. `None`: forward the path unchanged.
    pub rewritten_path: Option<String>,
}

/// The request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The host's request id.
    pub request_id: RequestId,
    /// HTTP status: 400, 401, 403, 404, 502 or 503.
    pub status: u16,
    /// `WWW-Authenticate` value, when the status calls for one.
    pub www_authenticate: Option<String>,
    /// A JSON body: `{"error": "...", "error_description": "..."}`.
    pub body: String,
    /// Seconds for a `Retry-After` header (RFC 9110 §10.2.3), when the client may try again
    /// soon: set for `rate_limited` (503).
    pub retry_after: Option<u32>,
    /// Why, as a stable code (also in the audit event).
    pub reason: Reason,
    /// Keyed fingerprint of the presented token, if one was presented.
    pub fingerprint: Option<Fingerprint>,
}

/// What a [`Fetch`] is for. The host needs it only for its logs: the core reads the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FetchKind {
    /// `POST` to the introspection endpoint (RFC 7662); the body holds the token.
    Introspection,
    /// `GET` of the authorization server's `jwks_uri`.
    Jwks,
}

impl FetchKind {
    /// `"introspection"` or `"jwks"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Introspection => "introspection",
            Self::Jwks => "jwks",
        }
    }
}

/// An HTTP request the core needs sent: an introspection or a JWKS fetch, one shape for both.
/// The host sends it exactly as given (no redirects followed), reads at most
/// `max_response_bytes` of the answer within `timeout_ms`, and feeds the answer back with
/// [`crate::Edge::handle_fetch`], quoting the ticket: any status, headers and body, or a
/// transport failure. The core decides what a status means, and times the ticket out itself.
///
/// Its `Debug` output hides the body (which holds the token) and the header values (which hold
/// the client credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Fetch {
    /// Quote this ticket when feeding the answer back.
    pub ticket: Ticket,
    /// What the fetch is for.
    pub kind: FetchKind,
    /// `POST` (introspection) or `GET` (JWKS).
    pub method: &'static str,
    /// The endpoint.
    pub url: String,
    /// Request headers (lowercase names), in order: `content-type`, `accept`, and
    /// `authorization` for client_secret_basic.
    pub headers: Vec<(String, String)>,
    /// The body (form-encoded `token=...` for an introspection; empty for a GET). It holds the
    /// token: send it, never log it.
    pub body: String,
    /// Give up after this many milliseconds and report a failure.
    pub timeout_ms: u64,
    /// Read at most this many bytes of the answer's body; a longer one is a failure
    /// (`"answer too large"`).
    pub max_response_bytes: usize,
    /// Fingerprint of the token being introspected (for the host's logs); `None` for a JWKS
    /// fetch.
    pub fingerprint: Option<Fingerprint>,
}

impl fmt::Debug for Fetch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Fetch")
            .field("ticket", &self.ticket)
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("header_names", &names)
            .field("body", &"{REDACTED}")
            .field("timeout_ms", &self.timeout_ms)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// Look a key up in the shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedLookup {
    /// Quote this ticket when answering.
    pub ticket: Ticket,
    /// The store key (already hashed: the raw token is never a key).
    pub key: String,
}

/// A revocation to publish to the other instances, as the JSON selector every host accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedPublish {
    /// `{"fingerprint": "..."}`, `{"jti": "..."}`, ... with `until`; never a raw token.
    pub message: String,
}

/// Why a request was rejected or an exchange failed. Stable snake_case codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// No credentials (or another auth scheme).
    MissingToken,
    /// Malformed or repeated Authorization header.
    MalformedRequest,
    /// A path the service behind could read as another route (dot segments, encoded or doubled
    /// slashes, `;` parameters, case, ...): refused before routing.
    AmbiguousPath,
    /// The authorization server says the token is not active, or it is unknown.
    Inactive,
    /// Past `exp` (or before `nbf`).
    Expired,
    /// Revoked at the edge.
    Revoked,
    /// The token's JWT or claims failed verification (signature, iss, typ, ...).
    InvalidToken,
    /// The token's issuer is not the configured one.
    WrongIssuer,
    /// The route's audience is not in the token's `aud`.
    WrongAudience,
    /// A scope the route needs is missing.
    InsufficientScope,
    /// DPoP-bound token without (valid) DPoP, or a certificate-bound token from another client.
    SenderMismatch,
    /// The DPoP proof is missing, malformed or wrong.
    InvalidDpopProof,
    /// No route matches the path.
    NoRoute,
    /// The authorization server failed (unreachable, 5xx, garbage, bad signature on its answer).
    Unavailable,
    /// The authorization server rejected our client credentials: a gateway misconfiguration.
    ClientAuthFailed,
    /// No answer within the timeout.
    Timeout,
    /// Too many pending introspections or waiters.
    Overloaded,
    /// A new introspection beyond `authorization_server.max_introspections_per_second`.
    RateLimited,
}

impl Reason {
    /// The stable code.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MissingToken => "missing_token",
            Self::MalformedRequest => "malformed_request",
            Self::AmbiguousPath => "ambiguous_path",
            Self::Inactive => "inactive",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::InvalidToken => "invalid_token",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::InsufficientScope => "insufficient_scope",
            Self::SenderMismatch => "sender_mismatch",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::NoRoute => "no_route",
            Self::Unavailable => "unavailable",
            Self::ClientAuthFailed => "client_auth_failed",
            Self::Timeout => "timeout",
            Self::Overloaded => "overloaded",
            Self::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kinds of audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[allow(missing_docs)] // the names say it; docs/configuration.md lists them
pub enum AuditKind {
    CacheHit,
    NegativeHit,
    CacheMiss,
    Coalesced,
    Introspected,
    Cached,
    Forwarded,
    Rejected,
    Revoked,
    RevocationOverflow,
    Invalidated,
    AsFailure,
    JwksFetched,
    JwksFailed,
    TicketTimedOut,
    LateResponse,
    SecurityEvent,
    /// Once per edge: an active answer was not cached because the authorization server marked
    /// it `no-store` / `no-cache` (oidc-provider marks every answer so) and
    /// `cache.ignore_no_store` is off, so every request for it is introspected again.
    NotCacheable,
}

impl AuditKind {
    /// Every kind, in declaration order.
    pub const ALL: [Self; 18] = [
        Self::CacheHit,
        Self::NegativeHit,
        Self::CacheMiss,
        Self::Coalesced,
        Self::Introspected,
        Self::Cached,
        Self::Forwarded,
        Self::Rejected,
        Self::Revoked,
        Self::RevocationOverflow,
        Self::Invalidated,
        Self::AsFailure,
        Self::JwksFetched,
        Self::JwksFailed,
        Self::TicketTimedOut,
        Self::LateResponse,
        Self::SecurityEvent,
        Self::NotCacheable,
    ];

    /// The kind with this snake_case name (`"cache_hit"`), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    const fn bit(self) -> u32 {
        const _: () = assert!(AuditKind::ALL.len() < 32, "AuditKinds is a u32 bit set");
        1 << self as u32
    }

    /// How much an event of this kind matters to an operator, i.e. the log level a host writes
    /// it at: the per-request events of normal operation at [`AuditLevel::Debug`], security
    /// decisions and key changes at [`AuditLevel::Info`], failures and overloads at
    /// [`AuditLevel::Warn`]. The one classification every host uses
    /// ([`Edge::set_audit_level`](crate::Edge::set_audit_level)).
    pub const fn level(self) -> AuditLevel {
        match self {
            Self::CacheHit
            | Self::NegativeHit
            | Self::CacheMiss
            | Self::Coalesced
            | Self::Introspected
            | Self::Cached
            | Self::Forwarded => AuditLevel::Debug,
            Self::Rejected
            | Self::Revoked
            | Self::Invalidated
            | Self::JwksFetched
            | Self::SecurityEvent => AuditLevel::Info,
            Self::RevocationOverflow
            | Self::AsFailure
            | Self::JwksFailed
            | Self::TicketTimedOut
            | Self::LateResponse
            | Self::NotCacheable => AuditLevel::Warn,
        }
    }

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CacheHit => "cache_hit",
            Self::NegativeHit => "negative_hit",
            Self::CacheMiss => "cache_miss",
            Self::Coalesced => "coalesced",
            Self::Introspected => "introspected",
            Self::Cached => "cached",
            Self::Forwarded => "forwarded",
            Self::Rejected => "rejected",
            Self::Revoked => "revoked",
            Self::RevocationOverflow => "revocation_overflow",
            Self::Invalidated => "invalidated",
            Self::AsFailure => "as_failure",
            Self::JwksFetched => "jwks_fetched",
            Self::JwksFailed => "jwks_failed",
            Self::TicketTimedOut => "ticket_timed_out",
            Self::LateResponse => "late_response",
            Self::SecurityEvent => "security_event",
            Self::NotCacheable => "not_cacheable",
        }
    }
}

/// The log level of an audit event ([`AuditKind::level`]), lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditLevel {
    /// Routine, per request: hits, misses, introspections, forwards.
    #[default]
    Debug,
    /// Security decisions and changes: rejections, revocations, security events, new keys.
    Info,
    /// Failures and overloads: the authorization server or JWKS failing, timeouts, late
    /// answers, a revocation list over its bound.
    Warn,
}

impl AuditLevel {
    /// Every level, lowest first.
    pub const ALL: [Self; 3] = [Self::Debug, Self::Info, Self::Warn];

    /// The stable lowercase name: `debug`, `info`, `warn`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
        }
    }

    /// The level with this name (as [`AuditLevel::as_str`]), if there is one.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == name)
    }
}

impl fmt::Display for AuditLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of audit kinds, e.g. the ones an [`Edge`](crate::Edge) does not queue
/// ([`Edge::mute_audits`](crate::Edge::mute_audits)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditKinds(u32);

impl AuditKinds {
    /// No kind.
    pub const NONE: Self = Self(0);
    /// Every kind.
    pub const ALL: Self = Self((1 << AuditKind::ALL.len()) - 1);

    /// Whether `kind` is in the set.
    pub const fn contains(self, kind: AuditKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// The kinds whose [`AuditKind::level`] is lower than `level` (none for
    /// [`AuditLevel::Debug`]).
    pub fn below(level: AuditLevel) -> Self {
        AuditKind::ALL
            .into_iter()
            .filter(|k| k.level() < level)
            .collect()
    }

    /// The union of the two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// The kinds named (snake_case, as [`AuditKind::as_str`]); the first unknown name is the
    /// error.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Self, &'a str> {
        names
            .into_iter()
            .map(|n| AuditKind::from_name(n).ok_or(n))
            .collect()
    }
}

impl FromIterator<AuditKind> for AuditKinds {
    fn from_iter<I: IntoIterator<Item = AuditKind>>(kinds: I) -> Self {
        Self(kinds.into_iter().fold(0, |set, k| set | k.bit()))
    }
}

/// A token-free audit event. It carries fingerprints, never tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    /// What happened.
    pub kind: AuditKind,
    /// How much it matters: always `kind.level()` ([`AuditKind::level`]), carried so that the
    /// JSON line says at which level to log it.
    pub level: AuditLevel,
    /// The request concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<RequestId>,
    /// The ticket concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<Ticket>,
    /// Keyed fingerprint of the token concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// Why (for rejections and failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Extra token-free detail ("status 500", "ttl_ms=300000", "unknown kid").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    pub(crate) fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            level: kind.level(),
            request_id: None,
            ticket: None,
            fingerprint: None,
            reason: None,
            detail: None,
        }
    }

    /// One line of JSON, for logs.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::AuditKind;

    #[test]
    fn audit_kind_all_is_complete_and_named() {
        // An exhaustive match: a new kind does not compile until it has a place in `ALL`.
        let position = |k: AuditKind| match k {
            AuditKind::CacheHit => 0,
            AuditKind::NegativeHit => 1,
            AuditKind::CacheMiss => 2,
            AuditKind::Coalesced => 3,
            AuditKind::Introspected => 4,
            AuditKind::Cached => 5,
            AuditKind::Forwarded => 6,
            AuditKind::Rejected => 7,
            AuditKind::Revoked => 8,
            AuditKind::RevocationOverflow => 9,
            AuditKind::Invalidated => 10,
            AuditKind::AsFailure => 11,
            AuditKind::JwksFetched => 12,
            AuditKind::JwksFailed => 13,
            AuditKind::TicketTimedOut => 14,
            AuditKind::LateResponse => 15,
            AuditKind::SecurityEvent => 16,
            AuditKind::NotCacheable => 17,
        };
        for (i, k) in AuditKind::ALL.into_iter().enumerate() {
            assert_eq!(position(k), i);
            assert_eq!(AuditKind::from_name(k.as_str()), Some(k));
        }
        assert_eq!(AuditKind::from_name("Cache_Hit"), None);
        assert_eq!(AuditKind::from_name(""), None);
    }
}
