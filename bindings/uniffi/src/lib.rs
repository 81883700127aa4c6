//! UniFFI bindings of [`phantom_edge_core`]: the Swift SDK (and, for testing on machines without
//! a Swift toolchain, the Python module generated from the same library).
//!
//! This crate is a thin translation layer and holds no policy: every decision is the core's.
//! [`PhantomEdge`] wraps one core [`phantom_edge_core::Edge`] in a `Mutex` so that it is
//! `Send + Sync` as UniFFI objects must be; each method locks, calls the core with the host's
//! `now_ms`, and converts borrowed core types into owned UniFFI records. Tokens and the
//! authorization server never produce an error (they produce `Reject` actions); errors are
//! configuration problems, refused revocations and API misuse (a ticket the core never issued).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use phantom_edge_core as core;

uniffi::setup_scaffolding!();

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Header {
    /// Header name (the core matches case-insensitively).
    pub name: String,
    /// Header value.
    pub value: String,
}

/// An inbound client request, as the core needs it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Request {
    /// Chosen by the host, unique among its in-flight requests.
    pub id: u64,
    /// HTTP method (`GET`).
    pub method: String,
    /// `https` or `http`.
    pub scheme: String,
    /// Host (and port) the client addressed.
    pub authority: String,
    /// Path and query.
    pub path: String,
    /// The request headers, in order (repeated headers matter).
    pub headers: Vec<Header>,
    /// `x5t#S256` of the client certificate (mTLS), if any.
    pub client_cert_thumbprint: Option<String>,
}

/// The shared store's answer to a `SharedLookup` action (split-token mode).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum LookupResult {
    /// The stored value (`header.payload`).
    Found {
        /// The value.
        value: String,
    },
    /// No such key.
    NotFound,
    /// The store failed (the core fails closed).
    Error,
}

/// Where a revocation came from: `Local` ones are published to the other instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Origin {
    /// From this instance's admin route or API.
    Local,
    /// From the shared channel (already published by its origin).
    Shared,
}

/// Let the request through.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ForwardAction {
    /// The host's request id.
    pub request_id: u64,
    /// Header to set on the upstream request (lowercase).
    pub header_name: String,
    /// Its value (`Bearer <jwt>`), never the opaque token.
    pub header_value: String,
    /// Inbound headers to remove before forwarding (lowercase).
    pub strip_headers: Vec<String>,
    /// Keyed fingerprint of the presented token (32 hex digits).
    pub fingerprint: String,
    /// The token's claims: the core's `TokenInfo` serialized as JSON.
    pub token_json: String,
    /// When the token came in the query (`request.allow_query_token`): the path and query to
    /// forward instead, without `access_token`. `None`: forward the path unchanged.
    pub rewritten_path: Option<String>,
}

/// Refuse the request.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RejectAction {
    /// The host's request id.
    pub request_id: u64,
    /// HTTP status: 400, 401, 403, 404, 502 or 503.
    pub status: u16,
    /// `WWW-Authenticate` value, when the status calls for one.
    pub www_authenticate: Option<String>,
    /// Seconds for a `Retry-After` header, when the client may retry soon (`rate_limited`).
    pub retry_after: Option<u32>,
    /// The JSON body to send.
    pub body: String,
    /// Stable snake_case reason code (`inactive`, `revoked`, ...).
    pub reason: String,
    /// Keyed fingerprint of the presented token, if one was presented.
    pub fingerprint: Option<String>,
}

/// Send this request to the introspection endpoint, then call
/// `handle_introspection_response` (or `_failure`) with the ticket.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct IntrospectAction {
    /// Quote this ticket when feeding the answer back.
    pub ticket: u64,
    /// Always `POST`.
    pub method: String,
    /// The introspection endpoint.
    pub url: String,
    /// Request headers (content-type, accept, authorization for client_secret_basic).
    pub headers: Vec<Header>,
    /// Form-encoded body; it holds the token: never log it.
    pub body: String,
    /// Give up after this many milliseconds.
    pub timeout_ms: u64,
    /// Fingerprint of the token being introspected.
    pub fingerprint: String,
}

impl std::fmt::Debug for IntrospectAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntrospectAction")
            .field("ticket", &self.ticket)
            .field("url", &self.url)
            .field("body", &"{REDACTED}")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

/// The log level of an audit event, lowest first (the core's classification of its kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, uniffi::Enum)]
pub enum AuditLevel {
    /// Routine, per request: hits, misses, introspections, forwards.
    Debug,
    /// Security decisions and changes: rejections, revocations, security events, new keys.
    Info,
    /// Failures and overloads: the authorization server or JWKS failing, timeouts.
    Warn,
}

impl From<core::AuditLevel> for AuditLevel {
    fn from(l: core::AuditLevel) -> Self {
        match l {
            core::AuditLevel::Debug => Self::Debug,
            core::AuditLevel::Info => Self::Info,
            core::AuditLevel::Warn => Self::Warn,
        }
    }
}

impl From<AuditLevel> for core::AuditLevel {
    fn from(l: AuditLevel) -> Self {
        match l {
            AuditLevel::Debug => Self::Debug,
            AuditLevel::Info => Self::Info,
            AuditLevel::Warn => Self::Warn,
        }
    }
}

/// A token-free audit event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditAction {
    /// Snake_case kind (`cache_hit`, `introspected`, ...).
    pub kind: String,
    /// The level to log it at.
    pub level: AuditLevel,
    /// The request concerned, if any.
    pub request_id: Option<u64>,
    /// The ticket concerned, if any.
    pub ticket: Option<u64>,
    /// Fingerprint of the token concerned.
    pub fingerprint: Option<String>,
    /// Reason code, for rejections and failures.
    pub reason: Option<String>,
    /// Extra token-free detail.
    pub detail: Option<String>,
    /// The whole event as one line of JSON, for logs.
    pub json: String,
}

/// What the core asks of its host, drained in order with `poll_action` / `drain_actions`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Action {
    /// Forward the request upstream.
    Forward {
        /// The details.
        forward: ForwardAction,
    },
    /// Answer the client.
    Reject {
        /// The details.
        reject: RejectAction,
    },
    /// Call the introspection endpoint.
    Introspect {
        /// The details.
        introspect: IntrospectAction,
    },
    /// GET the JWKS and call `handle_jwks_response` / `handle_jwks_failure`.
    FetchJwks {
        /// The `jwks_uri`.
        url: String,
    },
    /// Look a key up in the shared store, then call `handle_shared_lookup`.
    SharedLookup {
        /// Quote this ticket when answering.
        ticket: u64,
        /// The store key (already hashed).
        key: String,
    },
    /// Publish this revocation (JSON selector text) to the other instances.
    SharedPublish {
        /// The message.
        message: String,
    },
    /// Log this event.
    Audit {
        /// The event.
        audit: AuditAction,
    },
    /// An action kind newer than these bindings (the core's enum is non-exhaustive).
    Unknown {
        /// Its `Debug` form (token-free: the core's `Debug` impls redact).
        description: String,
    },
}

/// Errors of the bindings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum PhantomEdgeError {
    /// The configuration is refused; `field` is the dotted path of the offending key.
    #[error("invalid config: {field}: {message}")]
    Config {
        /// e.g. `authorization_server.client_secret_env`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A revocation was refused: answer `status` (400/401) with `body`.
    #[error("{message}")]
    Revocation {
        /// 400 or 401.
        status: u16,
        /// Human-readable.
        message: String,
        /// The JSON body for an admin route.
        body: String,
    },
    /// An answer for a ticket the core never issued (or already completed).
    #[error("unknown ticket {ticket}")]
    UnknownTicket {
        /// The ticket.
        ticket: u64,
    },
    /// A shared-store answer for an introspection ticket, or the reverse.
    #[error("ticket {ticket} is not of this kind")]
    WrongTicketKind {
        /// The ticket.
        ticket: u64,
    },
    /// Other API misuse (e.g. a seed that is not 32 bytes).
    #[error("{message}")]
    Api {
        /// What is wrong.
        message: String,
    },
}

impl From<core::ConfigError> for PhantomEdgeError {
    fn from(e: core::ConfigError) -> Self {
        Self::Config {
            field: e.field,
            message: e.message,
        }
    }
}

impl From<core::RevocationError> for PhantomEdgeError {
    fn from(e: core::RevocationError) -> Self {
        Self::Revocation {
            status: e.status(),
            message: e.to_string(),
            body: e.body(),
        }
    }
}

impl From<core::EdgeError> for PhantomEdgeError {
    fn from(e: core::EdgeError) -> Self {
        match e {
            core::EdgeError::UnknownTicket(ticket) => Self::UnknownTicket { ticket },
            core::EdgeError::WrongTicketKind(ticket) => Self::WrongTicketKind { ticket },
            other => Self::Api {
                message: other.to_string(),
            },
        }
    }
}

fn headers_to_pairs(headers: &[Header]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect()
}

impl From<core::Action> for Action {
    fn from(a: core::Action) -> Self {
        match a {
            core::Action::Forward(f) => Self::Forward {
                forward: ForwardAction {
                    request_id: f.request_id,
                    header_name: String::from(&*f.header_name),
                    header_value: String::from(&*f.header_value),
                    strip_headers: f.strip_headers.to_vec(),
                    fingerprint: f.fingerprint.hex(),
                    token_json: serde_json::to_string(&*f.token).unwrap_or_default(),
                    rewritten_path: f.rewritten_path,
                },
            },
            core::Action::Reject(r) => Self::Reject {
                reject: RejectAction {
                    request_id: r.request_id,
                    status: r.status,
                    www_authenticate: r.www_authenticate,
                    retry_after: r.retry_after,
                    body: r.body,
                    reason: r.reason.as_str().to_owned(),
                    fingerprint: r.fingerprint.map(|f| f.hex()),
                },
            },
            core::Action::Introspect(i) => Self::Introspect {
                introspect: IntrospectAction {
                    ticket: i.ticket,
                    method: i.method.to_owned(),
                    url: i.url,
                    headers: i
                        .headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                    body: i.body,
                    timeout_ms: i.timeout_ms,
                    fingerprint: i.fingerprint.hex(),
                },
            },
            core::Action::FetchJwks(j) => Self::FetchJwks { url: j.url },
            core::Action::SharedLookup(l) => Self::SharedLookup {
                ticket: l.ticket,
                key: l.key,
            },
            core::Action::SharedPublish(p) => Self::SharedPublish { message: p.message },
            core::Action::Audit(e) => Self::Audit {
                audit: AuditAction {
                    kind: e.kind.as_str().to_owned(),
                    level: e.level.into(),
                    request_id: e.request_id,
                    ticket: e.ticket,
                    fingerprint: e.fingerprint.map(|f| f.hex()),
                    reason: e.reason.map(|r| r.as_str().to_owned()),
                    json: e.to_json(),
                    detail: e.detail,
                },
            },
            other => Self::Unknown {
                description: format!("{other:?}"),
            },
        }
    }
}

/// The phantom-token edge: one core state machine behind a mutex. Every method takes the
/// host's clock (`now_ms`, Unix milliseconds); the core never reads a clock itself.
#[derive(uniffi::Object)]
pub struct PhantomEdge {
    inner: Mutex<core::Edge>,
}

impl std::fmt::Debug for PhantomEdge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhantomEdge").finish_non_exhaustive()
    }
}

fn seed_array(seed: &[u8]) -> Result<[u8; 32], PhantomEdgeError> {
    <[u8; 32]>::try_from(seed).map_err(|_| PhantomEdgeError::Api {
        message: format!("seed must be 32 bytes, got {}", seed.len()),
    })
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl PhantomEdge {
    fn build(
        config: core::Config,
        seed: &[u8],
        now_ms: u64,
    ) -> Result<Arc<Self>, PhantomEdgeError> {
        let seed = seed_array(seed)?;
        Ok(Arc::new(Self {
            inner: Mutex::new(core::Edge::new(config, seed, now_ms)),
        }))
    }

    /// A panic inside the core cannot leave a half-updated edge reachable through the bindings
    /// in a way that forwards more than it should (every decision re-checks state), so a
    /// poisoned lock is taken over rather than turning every later call into a crash.
    fn edge(&self) -> MutexGuard<'_, core::Edge> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[uniffi::export]
impl PhantomEdge {
    /// Builds the edge from TOML configuration text; `*_env` secrets are read from the process
    /// environment. `seed` must be 32 random bytes.
    #[uniffi::constructor]
    pub fn from_toml(
        text: String,
        seed: Vec<u8>,
        now_ms: u64,
    ) -> Result<Arc<Self>, PhantomEdgeError> {
        let config = core::Config::from_toml(&text, &process_env)?;
        Self::build(config, &seed, now_ms)
    }

    /// Builds the edge from JSON configuration text (same structure as the TOML); `*_env`
    /// secrets are read from the process environment.
    #[uniffi::constructor]
    pub fn from_json(
        text: String,
        seed: Vec<u8>,
        now_ms: u64,
    ) -> Result<Arc<Self>, PhantomEdgeError> {
        let config = core::Config::from_json(&text, &process_env)?;
        Self::build(config, &seed, now_ms)
    }

    /// Like `from_toml`, with `*_env` secrets read from `env` instead of the process environment.
    #[uniffi::constructor]
    pub fn from_toml_with_env(
        text: String,
        env: HashMap<String, String>,
        seed: Vec<u8>,
        now_ms: u64,
    ) -> Result<Arc<Self>, PhantomEdgeError> {
        let config = core::Config::from_toml(&text, &|k: &str| env.get(k).cloned())?;
        Self::build(config, &seed, now_ms)
    }

    /// Like `from_json`, with `*_env` secrets read from `env` instead of the process environment.
    #[uniffi::constructor]
    pub fn from_json_with_env(
        text: String,
        env: HashMap<String, String>,
        seed: Vec<u8>,
        now_ms: u64,
    ) -> Result<Arc<Self>, PhantomEdgeError> {
        let config = core::Config::from_json(&text, &|k: &str| env.get(k).cloned())?;
        Self::build(config, &seed, now_ms)
    }

    /// A client request arrived.
    pub fn handle_request(&self, now_ms: u64, request: Request) {
        let headers = headers_to_pairs(&request.headers);
        let req = core::Request {
            id: request.id,
            method: &request.method,
            scheme: &request.scheme,
            authority: &request.authority,
            path: &request.path,
            headers: &headers,
            client_cert_thumbprint: request.client_cert_thumbprint.as_deref(),
        };
        self.edge().handle_request(now_ms, &req);
    }

    /// The introspection endpoint answered `ticket`.
    pub fn handle_introspection_response(
        &self,
        now_ms: u64,
        ticket: u64,
        status: u16,
        headers: Vec<Header>,
        body: Vec<u8>,
    ) -> Result<(), PhantomEdgeError> {
        let headers = headers_to_pairs(&headers);
        let resp = core::HttpResponse {
            status,
            headers: &headers,
            body: &body,
        };
        Ok(self
            .edge()
            .handle_introspection_response(now_ms, ticket, &resp)?)
    }

    /// Sending the introspection request for `ticket` failed (connection, TLS, timeout).
    pub fn handle_introspection_failure(
        &self,
        now_ms: u64,
        ticket: u64,
        detail: String,
    ) -> Result<(), PhantomEdgeError> {
        Ok(self
            .edge()
            .handle_introspection_failure(now_ms, ticket, &detail)?)
    }

    /// The JWKS fetch succeeded with this body.
    pub fn handle_jwks_response(&self, now_ms: u64, body: Vec<u8>) {
        self.edge().handle_jwks(now_ms, Ok(&body));
    }

    /// The JWKS fetch failed.
    pub fn handle_jwks_failure(&self, now_ms: u64, detail: String) {
        self.edge().handle_jwks(now_ms, Err(&detail));
    }

    /// The shared store answered a `SharedLookup`.
    pub fn handle_shared_lookup(
        &self,
        now_ms: u64,
        ticket: u64,
        result: LookupResult,
    ) -> Result<(), PhantomEdgeError> {
        let r = match &result {
            LookupResult::Found { value } => core::LookupResult::Found(value),
            LookupResult::NotFound => core::LookupResult::NotFound,
            LookupResult::Error => core::LookupResult::Error,
        };
        Ok(self.edge().handle_shared_lookup(now_ms, ticket, r)?)
    }

    /// A revocation given as the JSON selector text (`{"sub": "alice", "until": 1700000000}`),
    /// already authenticated by the host. A malformed selector is `Revocation { status: 400 }`.
    pub fn handle_revocation(
        &self,
        now_ms: u64,
        selector_json: String,
        origin: Origin,
    ) -> Result<(), PhantomEdgeError> {
        let rev = core::Revocation::from_json(selector_json.as_bytes())?;
        let origin = match origin {
            Origin::Local => core::Origin::Local,
            Origin::Shared => core::Origin::Shared,
        };
        Ok(self.edge().handle_revocation(now_ms, rev, origin)?)
    }

    /// An RFC 8417 Security Event Token (compact JWS), verified against `revocation.set_key`.
    pub fn handle_security_event(&self, now_ms: u64, set: String) -> Result<(), PhantomEdgeError> {
        Ok(self.edge().handle_security_event(now_ms, &set)?)
    }

    /// The revocation route: the request's `Content-Type` and `Authorization` headers and body.
    /// `Ok` → answer 204; `Revocation { status, body }` → answer that.
    pub fn handle_admin_revocation(
        &self,
        now_ms: u64,
        content_type: Option<String>,
        authorization: Option<String>,
        body: Vec<u8>,
    ) -> Result<(), PhantomEdgeError> {
        Ok(self.edge().handle_admin_revocation(
            now_ms,
            content_type.as_deref(),
            authorization.as_deref(),
            &body,
        )?)
    }

    /// Whether `authorization` (an `Authorization` header value) carries the `[admin]` bearer
    /// secret, for the host's other operator routes (metrics): none (`nil`) without `[admin]`
    /// (answer 403), `false` for a missing or wrong bearer (answer 401).
    pub fn admin_authorized(&self, authorization: Option<String>) -> Option<bool> {
        self.edge().admin_authorized(authorization.as_deref())
    }

    /// Time passed: call at (or after) `poll_timeout()`.
    pub fn handle_timeout(&self, now_ms: u64) {
        self.edge().handle_timeout(now_ms);
    }

    /// The next action, if any.
    pub fn poll_action(&self) -> Option<Action> {
        self.edge().poll_action().map(Action::from)
    }

    /// Every queued action, in order.
    pub fn drain_actions(&self) -> Vec<Action> {
        self.edge()
            .drain_actions()
            .into_iter()
            .map(Action::from)
            .collect()
    }

    /// Audit events below `level` are no longer queued: `Info` leaves out the routine
    /// per-request kinds (hits, misses, introspections, forwards), which are then not even
    /// built; `Debug` (the default) queues every level again. Decisions and metrics are
    /// unchanged.
    pub fn set_audit_level(&self, level: AuditLevel) {
        self.edge().set_audit_level(level.into());
    }

    /// When to call `handle_timeout` next (Unix ms), if anything is pending.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.edge().poll_timeout()
    }

    /// The metrics in the Prometheus text format.
    pub fn prometheus(&self) -> String {
        self.edge().prometheus()
    }

    /// The keyed fingerprint (32 hex digits) of a token, as audit events and revocations use.
    pub fn fingerprint(&self, token: String) -> String {
        self.edge().fingerprint(&token).to_string()
    }

    /// The edge's public JWKS (for backends verifying minted JWTs), if `[assertions]` is set.
    pub fn assertion_jwks(&self) -> Option<String> {
        self.edge().assertion_jwks()
    }
}
