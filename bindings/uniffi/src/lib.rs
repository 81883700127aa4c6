//! UniFFI bindings of [`phantom_edge_core`]: the Swift SDK (and, for testing on machines without
//! a Swift toolchain, the Python module generated from the same library).
//!
//! This crate is a thin translation layer and holds no policy: every decision is the core's.
//! [`PhantomEdge`] wraps one core [`phantom_edge_core::Edge`] in a `Mutex` so that it is
//! `Send + Sync` as UniFFI objects must be; each method locks, calls the core with the host's
//! `now_ms`, and converts borrowed core types into owned UniFFI records.
//!
//! The API is the core's host driver, with the operation names every binding uses (wit/edge.wit
//! is the reference table): each input (`handle_request`, `handle_fetch`, `handle_shared_lookup`,
//! `handle_revocation`, `handle_security_event`, `handle_admin`, `handle_timeout`) returns the
//! [`Step`] it produced, and `initial_step` is what the constructor queued (the JWKS fetch). A
//! host carries each step out: answers its `decisions` (a forward's upstream headers come from
//! `upstream_headers`), performs its `fetches` and `lookups` and feeds their answers back, sends
//! its `publishes`, logs its `audits` and re-arms its one timer for `wake_at`.
//!
//! Tokens and the authorization server never produce an error (they produce `Reject`
//! decisions); errors are configuration problems, refused revocations and API misuse (a ticket
//! the core never issued).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use phantom_edge_core as core;

uniffi::setup_scaffolding!();

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, Hash, uniffi::Record)]
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

/// What came back for a [`Fetch`]: the server's answer whatever its status (the core decides
/// what it means), or a token-free description of a transport failure (connection, TLS, no
/// answer within `timeout_ms`, an answer longer than `max_response_bytes`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum FetchResult {
    /// The server answered.
    Response {
        /// HTTP status (any: a 500 is the core's to judge).
        status: u16,
        /// The answer's headers.
        headers: Vec<Header>,
        /// The body as read (at most `max_response_bytes`).
        body: Vec<u8>,
    },
    /// The request failed before an answer came.
    Failure {
        /// What went wrong (never a token).
        detail: String,
    },
}

/// The shared store's answer to a [`SharedLookup`] (split-token mode).
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

/// Let the request through to the upstream, with the headers `upstream_headers` gives.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Forward {
    /// The host's request id.
    pub request_id: u64,
    /// The value of the forwarded header (`forward_policy().header_name`), e.g. `Bearer <jwt>`:
    /// a by-value JWT, never the opaque token.
    pub header_value: String,
    /// Keyed fingerprint of the presented token (32 hex digits).
    pub fingerprint: String,
    /// The token's claims: the core's `TokenInfo` serialized as JSON.
    pub token_json: String,
    /// When the token came in the query (`request.allow_query_token`): the path and query to
    /// forward instead, without `access_token`. `None`: forward the path unchanged.
    pub rewritten_path: Option<String>,
}

/// Refuse the request with this answer; do not contact the upstream.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Reject {
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

/// A request's answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Decision {
    /// Forward it upstream.
    Forward {
        /// The details.
        forward: Forward,
    },
    /// Answer the client.
    Reject {
        /// The details.
        reject: Reject,
    },
}

/// What a [`Fetch`] is for (the host needs it only for its logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum FetchKind {
    /// `POST` to the introspection endpoint; the body holds the token.
    Introspection,
    /// `GET` of the authorization server's JWKS.
    Jwks,
}

/// An HTTP request the core needs sent (an introspection or a JWKS fetch, one shape for both).
/// Send it as given (no redirects), read at most `max_response_bytes` of the answer within
/// `timeout_ms`, and feed whatever came back to `handle_fetch`, quoting the ticket.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct Fetch {
    /// Quote this ticket when feeding the answer back.
    pub ticket: u64,
    /// What it is for.
    pub kind: FetchKind,
    /// `POST` or `GET`.
    pub method: String,
    /// The endpoint.
    pub url: String,
    /// Request headers (content-type, accept, authorization for client_secret_basic).
    pub headers: Vec<Header>,
    /// Form-encoded for an introspection (it holds the token: send it, never log it); empty
    /// for a GET.
    pub body: String,
    /// Give up after this many milliseconds (and report a failure).
    pub timeout_ms: u64,
    /// Read at most this many bytes of the body; a longer answer is a failure.
    pub max_response_bytes: u64,
    /// Fingerprint of the token being introspected; `None` for a JWKS fetch.
    pub fingerprint: Option<String>,
}

impl std::fmt::Debug for Fetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|h| h.name.as_str()).collect();
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

/// Look a key up in the shared store (split-token mode), then call `handle_shared_lookup`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SharedLookup {
    /// Quote this ticket when answering.
    pub ticket: u64,
    /// The store key (already hashed: never a raw token).
    pub key: String,
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

/// A token-free event for logs and metrics pipelines.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditEvent {
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

/// Everything one input produced, by consumer. Carry out all of it: answer the `decisions`,
/// start the `fetches` and `lookups` (their answers are inputs), send the `publishes` (JSON
/// revocation selectors, never a raw token) to the other instances, log the `audits`, and
/// re-arm the one timer for `wake_at`. Within a list the order is the core's.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct Step {
    /// Requests decided now.
    pub decisions: Vec<Decision>,
    /// HTTP requests to send; answer with `handle_fetch`.
    pub fetches: Vec<Fetch>,
    /// Shared-store reads; answer with `handle_shared_lookup`.
    pub lookups: Vec<SharedLookup>,
    /// Revocations (JSON selector text) for the other instances.
    pub publishes: Vec<String>,
    /// Token-free events for the logs.
    pub audits: Vec<AuditEvent>,
    /// When (Unix ms) to call `handle_timeout` next; `None`: nothing is pending.
    pub wake_at: Option<u64>,
}

/// Where a forwarded request goes next.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Hop {
    /// To another server: the client's forwarding, `host` and hop-by-hop headers are replaced.
    Proxy {
        /// The client's address, appended to `x-forwarded-for`; `None`: no `x-forwarded-for`.
        peer: Option<String>,
        /// The scheme the client used: `x-forwarded-proto`.
        proto: String,
        /// The upstream's `host[:port]`, sent as `host`; `None` keeps the inbound one.
        upstream_authority: Option<String>,
    },
    /// To the app in the same process (a middleware): only the strip list goes.
    InProcess,
}

/// The forwarding policy's answer: drop these inbound headers (keep the others as they are,
/// bytes and order), then add these.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct UpstreamHeaders {
    /// Indexes (ascending) into the inbound list of the headers not passed on.
    pub drop: Vec<u32>,
    /// Headers to add after the kept ones (lowercase names), in order.
    pub set: Vec<Header>,
}

/// How every forwarded request is rewritten; fixed by the configuration.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ForwardPolicy {
    /// The header set to a forward's `header_value` (lowercase), e.g. `authorization`.
    pub header_name: String,
    /// Inbound headers removed before forwarding (lowercase); always includes `authorization`
    /// and `dpop`. `upstream_headers` applies them.
    pub strip_headers: Vec<String>,
}

/// An operator route; the host maps its paths to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AdminRoute {
    /// `POST`: a JSON revocation selector with the `[admin]` bearer, or a SET.
    Revocations,
    /// `GET` / `HEAD`: Prometheus text.
    Metrics,
    /// `GET` / `HEAD`: the edge's own public keys.
    Jwks,
}

/// Who reaches the listener a route is served on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Listener {
    /// A listener only operators reach: the metrics and the JWKS are open there.
    Operator,
    /// The app's own, possibly public, listener: the metrics need the `[admin]` bearer.
    App,
}

/// A request to an operator route.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AdminRequest {
    /// Which route the host mapped the path to.
    pub route: AdminRoute,
    /// Where it was served.
    pub listener: Listener,
    /// The request method (`POST`, `GET`, ...).
    pub method: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body as read: at most `max_admin_body() + 1` bytes (a longer one is answered 413).
    pub body: Vec<u8>,
}

/// The answer to an operator route: write it out as it is.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AdminAnswer {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lowercase names).
    pub headers: Vec<Header>,
    /// The body (empty for 204).
    pub body: String,
}

/// What `handle_admin` returns: the answer, and the step the route produced (a revocation can
/// answer waiting requests and publish to the other instances).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AdminOutcome {
    /// Write this out.
    pub answer: AdminAnswer,
    /// Carry this out.
    pub step: Step,
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
    /// Other API misuse (a seed that is not 32 bytes, an unknown audit kind).
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
            core::EdgeError::Revocation(e) => e.into(),
            // The core's enum is non-exhaustive: a newer misuse error is still misuse.
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

fn pairs_to_headers(pairs: Vec<(String, String)>) -> Vec<Header> {
    pairs
        .into_iter()
        .map(|(name, value)| Header { name, value })
        .collect()
}

fn indexes(v: Vec<usize>) -> Vec<u32> {
    // Header lists are far below 2^32 entries: the host passed them in.
    v.into_iter()
        .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
        .collect()
}

impl From<core::Decision> for Decision {
    fn from(d: core::Decision) -> Self {
        match d {
            core::Decision::Forward(f) => Self::Forward {
                forward: Forward {
                    request_id: f.request_id,
                    header_value: String::from(&*f.header_value),
                    fingerprint: f.fingerprint.hex(),
                    token_json: serde_json::to_string(&*f.token).unwrap_or_default(),
                    rewritten_path: f.rewritten_path,
                },
            },
            core::Decision::Reject(r) => Self::Reject {
                reject: Reject {
                    request_id: r.request_id,
                    status: r.status,
                    www_authenticate: r.www_authenticate,
                    retry_after: r.retry_after,
                    body: r.body,
                    reason: r.reason.as_str().to_owned(),
                    fingerprint: r.fingerprint.map(|f| f.hex()),
                },
            },
        }
    }
}

impl From<core::FetchKind> for FetchKind {
    fn from(k: core::FetchKind) -> Self {
        match k {
            core::FetchKind::Introspection => Self::Introspection,
            // The core's enum is non-exhaustive; a new kind is still an HTTP request to send.
            _ => Self::Jwks,
        }
    }
}

impl From<core::Fetch> for Fetch {
    fn from(f: core::Fetch) -> Self {
        Self {
            ticket: f.ticket,
            kind: f.kind.into(),
            method: f.method.to_owned(),
            url: f.url,
            headers: pairs_to_headers(f.headers),
            body: f.body,
            timeout_ms: f.timeout_ms,
            max_response_bytes: u64::try_from(f.max_response_bytes).unwrap_or(u64::MAX),
            fingerprint: f.fingerprint.map(|fp| fp.hex()),
        }
    }
}

impl From<core::AuditEvent> for AuditEvent {
    fn from(e: core::AuditEvent) -> Self {
        Self {
            kind: e.kind.as_str().to_owned(),
            level: e.level.into(),
            request_id: e.request_id,
            ticket: e.ticket,
            fingerprint: e.fingerprint.map(|f| f.hex()),
            reason: e.reason.map(|r| r.as_str().to_owned()),
            json: e.to_json(),
            detail: e.detail,
        }
    }
}

impl From<core::Step> for Step {
    fn from(s: core::Step) -> Self {
        Self {
            decisions: s.decisions.into_iter().map(Decision::from).collect(),
            fetches: s.fetches.into_iter().map(Fetch::from).collect(),
            lookups: s
                .lookups
                .into_iter()
                .map(|l| SharedLookup {
                    ticket: l.ticket,
                    key: l.key,
                })
                .collect(),
            publishes: s.publishes.into_iter().map(|p| p.message).collect(),
            audits: s.audits.into_iter().map(AuditEvent::from).collect(),
            wake_at: s.wake_at,
        }
    }
}

fn admin_route(r: AdminRoute) -> core::AdminRoute {
    match r {
        AdminRoute::Revocations => core::AdminRoute::Revocations,
        AdminRoute::Metrics => core::AdminRoute::Metrics,
        AdminRoute::Jwks => core::AdminRoute::Jwks,
    }
}

fn listener(l: Listener) -> core::Listener {
    match l {
        Listener::Operator => core::Listener::Operator,
        Listener::App => core::Listener::App,
    }
}

/// The phantom-token edge: one core state machine behind a mutex. Every input takes the
/// host's clock (`now_ms`, Unix milliseconds; the core never reads a clock itself) and returns
/// the [`Step`] it produced.
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

    /// Feeds one input under the lock and takes its step in the same critical section.
    fn handle(&self, now_ms: u64, input: core::Input<'_>) -> Result<Step, PhantomEdgeError> {
        Ok(self.edge().handle(now_ms, input)?.into())
    }
}

#[uniffi::export]
impl PhantomEdge {
    /// Builds the edge from TOML configuration text; `*_env` secrets are read from the process
    /// environment. `seed` must be 32 random bytes. Its first step comes from `initial_step`.
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

    /// What the constructor queued (the initial JWKS fetch, if `jwks_uri` is set): the first
    /// step to carry out.
    pub fn initial_step(&self) -> Step {
        self.edge().step().into()
    }

    /// A client request arrived. Its decision is in this step (a cache hit, a refusal) or in
    /// the step of a later input (after the I/O this step asks for).
    pub fn handle_request(&self, now_ms: u64, request: Request) -> Step {
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
        let mut edge = self.edge();
        edge.handle_request(now_ms, &req);
        edge.step().into()
    }

    /// The answer to a `Fetch` (introspection or JWKS): any status, or a transport failure.
    pub fn handle_fetch(
        &self,
        now_ms: u64,
        ticket: u64,
        result: FetchResult,
    ) -> Result<Step, PhantomEdgeError> {
        match &result {
            FetchResult::Response {
                status,
                headers,
                body,
            } => {
                let headers = headers_to_pairs(headers);
                let response = core::HttpResponse {
                    status: *status,
                    headers: &headers,
                    body,
                };
                self.handle(
                    now_ms,
                    core::Input::Fetched {
                        ticket,
                        result: Ok(response),
                    },
                )
            }
            FetchResult::Failure { detail } => self.handle(
                now_ms,
                core::Input::Fetched {
                    ticket,
                    result: Err(detail.as_str()),
                },
            ),
        }
    }

    /// The shared store answered a `SharedLookup`.
    pub fn handle_shared_lookup(
        &self,
        now_ms: u64,
        ticket: u64,
        result: LookupResult,
    ) -> Result<Step, PhantomEdgeError> {
        let result = match &result {
            LookupResult::Found { value } => core::LookupResult::Found(value),
            LookupResult::NotFound => core::LookupResult::NotFound,
            LookupResult::Error => core::LookupResult::Error,
        };
        self.handle(now_ms, core::Input::LookedUp { ticket, result })
    }

    /// A revocation given as the JSON selector text (`{"sub": "alice", "until": 1700000000}`),
    /// already authenticated by the host. A malformed selector is `Revocation { status: 400 }`.
    pub fn handle_revocation(
        &self,
        now_ms: u64,
        selector_json: String,
        origin: Origin,
    ) -> Result<Step, PhantomEdgeError> {
        let revocation = core::Revocation::from_json(selector_json.as_bytes())?;
        let origin = match origin {
            Origin::Local => core::Origin::Local,
            Origin::Shared => core::Origin::Shared,
        };
        self.handle(now_ms, core::Input::Revocation { revocation, origin })
    }

    /// An RFC 8417 Security Event Token (compact JWS), verified against `revocation.set_key`.
    pub fn handle_security_event(
        &self,
        now_ms: u64,
        set: String,
    ) -> Result<Step, PhantomEdgeError> {
        self.handle(now_ms, core::Input::SecurityEvent(&set))
    }

    /// An operator route (revocation, metrics, the edge's JWKS), answered whole: status,
    /// headers (the one realm) and body; then the step it produced.
    pub fn handle_admin(&self, now_ms: u64, request: AdminRequest) -> AdminOutcome {
        let req = core::AdminRequest {
            route: admin_route(request.route),
            listener: listener(request.listener),
            method: &request.method,
            authorization: request.authorization.as_deref(),
            content_type: request.content_type.as_deref(),
            body: &request.body,
        };
        let mut edge = self.edge();
        let answer = edge.handle_admin(now_ms, &req);
        AdminOutcome {
            answer: AdminAnswer {
                status: answer.status,
                headers: pairs_to_headers(answer.headers),
                body: answer.body,
            },
            step: edge.step().into(),
        }
    }

    /// Time passed: expire tickets and sweep bounded state. Call it at the last step's
    /// `wake_at`.
    pub fn handle_timeout(&self, now_ms: u64) -> Step {
        let mut edge = self.edge();
        edge.handle_timeout(now_ms);
        edge.step().into()
    }

    /// The forwarding policy: how the inbound headers of a forwarded request become the
    /// upstream's (`header_value` is the forward's). Names are compared as WSGI/CGI servers read
    /// them; keep the kept headers' bytes and order and append `set`.
    pub fn upstream_headers(
        &self,
        inbound: Vec<Header>,
        header_value: String,
        hop: Hop,
    ) -> UpstreamHeaders {
        let inbound = headers_to_pairs(&inbound);
        let hop = match &hop {
            Hop::Proxy {
                peer,
                proto,
                upstream_authority,
            } => core::Hop::Proxy {
                peer: peer.as_deref(),
                proto,
                upstream_authority: upstream_authority.as_deref(),
            },
            Hop::InProcess => core::Hop::InProcess,
        };
        let plan = self.edge().upstream_headers(&inbound, &header_value, &hop);
        UpstreamHeaders {
            drop: indexes(plan.drop),
            set: pairs_to_headers(plan.set),
        }
    }

    /// Audit kinds (`cache_hit`, `cache_miss`, ...) the edge no longer produces (events already
    /// produced still come); an empty list produces all again. Metrics still count them. An
    /// unknown kind is an `Api` error and changes nothing.
    pub fn mute_audits(&self, kinds: Vec<String>) -> Result<(), PhantomEdgeError> {
        let kinds =
            core::AuditKinds::from_names(kinds.iter().map(String::as_str)).map_err(|unknown| {
                PhantomEdgeError::Api {
                    message: format!("unknown audit kind {unknown:?}"),
                }
            })?;
        self.edge().mute_audits(kinds);
        Ok(())
    }

    /// Audit events below `level` are no longer produced: `Info` leaves out the routine
    /// per-request kinds (hits, misses, introspections, forwards), which are then not even
    /// built; `Debug` (the default) produces every level again. Composes with `mute_audits`;
    /// decisions and metrics are unchanged.
    pub fn set_audit_level(&self, level: AuditLevel) {
        self.edge().set_audit_level(level.into());
    }

    /// The header every forward sets and the inbound headers it strips (also applied by
    /// `upstream_headers`). Constant for an edge.
    pub fn forward_policy(&self) -> ForwardPolicy {
        let edge = self.edge();
        ForwardPolicy {
            header_name: edge.forward_header_name().to_owned(),
            strip_headers: edge.strip_headers().to_vec(),
        }
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

/// The hop-by-hop headers of a message a proxy relays (the upstream's answer on its way back,
/// too): indexes, ascending.
#[uniffi::export]
pub fn hop_by_hop_headers(headers: Vec<Header>) -> Vec<u32> {
    indexes(core::hop_by_hop_headers(&headers_to_pairs(&headers)))
}

/// A JWT split for the split-token pattern.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SplitToken {
    /// What the client gets as its access token: the JWT's signature.
    pub client_token: String,
    /// The store key: the prefix and base64url(SHA-256(client_token)).
    pub store_key: String,
    /// The store value, sealed under a key derived from the signature: no claims in the store.
    pub store_value: String,
    /// The JWT's `exp` (Unix s), if it has one: expire the store entry then.
    pub expires_at: Option<u64>,
}

/// Splits a signed JWT for the split-token pattern (the issuer's side), so an authorization
/// server or a token service can populate the shared store. `key_prefix`: the edges'
/// `split.key_prefix` (`phantom-edge:split:` by default).
#[uniffi::export]
pub fn split_jwt(jwt: String, key_prefix: String) -> Result<SplitToken, PhantomEdgeError> {
    let s = core::split_jwt(&jwt, &key_prefix).map_err(|e| PhantomEdgeError::Api {
        message: e.to_string(),
    })?;
    Ok(SplitToken {
        client_token: s.client_token,
        store_key: s.store_key,
        store_value: s.store_value,
        expires_at: s.expires_at,
    })
}

/// The largest body an operator route reads (64 KiB): read at most one byte more and pass it
/// to `handle_admin`, which answers 413 for a longer one.
#[uniffi::export]
pub fn max_admin_body() -> u64 {
    u64::try_from(core::MAX_ADMIN_BODY).unwrap_or(u64::MAX)
}
