//! Node bindings of `phantom-edge-core`: a thin translation layer (napi-rs). Every decision is
//! made by the core; this crate only converts arguments and actions between Rust and JavaScript.
//!
//! The run loop is the core's host driver: every input (`handle*`) returns the `Step` it
//! produced (decisions, fetches, lookups, publishes, audits, `wakeAt`), and the forwarding
//! policy (`upstreamHeaders`) and the operator routes (`handleAdmin`) are the core's too.
//! The generated `index.d.ts` describes this module; the `phantom-edge` package wraps it
//! (`lib/`) with `Error` subclasses, config loading and the async host.
//!
//! Errors thrown from here carry a `code` (`PHANTOM_EDGE_CONFIG`, `PHANTOM_EDGE_REVOCATION`,
//! `PHANTOM_EDGE_UNKNOWN_TICKET`, `PHANTOM_EDGE_WRONG_TICKET_KIND`, `PHANTOM_EDGE_INVALID_ARG`)
//! and a JSON message with their fields; `lib/errors.js` turns them into typed errors.

mod fast;

use std::cell::{RefCell, RefMut};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use napi::Env;
use napi::bindgen_prelude::{
    Array, Buffer, Either, JsObjectValue, Object, ObjectFinalize, ObjectRef, ToNapiValue, Unknown,
};
use napi_derive::napi;
use phantom_edge_core as core;
use serde_json::json;

type Result<T> = napi::Result<T, String>;

fn fail(code: &str, payload: &serde_json::Value) -> napi::Error<String> {
    napi::Error::new(code.to_owned(), payload.to_string())
}

fn config_error(e: &core::ConfigError) -> napi::Error<String> {
    fail(
        "PHANTOM_EDGE_CONFIG",
        &json!({ "field": e.field, "message": e.message }),
    )
}

fn revocation_error(e: &core::RevocationError) -> napi::Error<String> {
    fail(
        "PHANTOM_EDGE_REVOCATION",
        &json!({ "status": e.status(), "body": e.body(), "message": e.to_string() }),
    )
}

fn edge_error(e: &core::EdgeError) -> napi::Error<String> {
    let (code, ticket) = match e {
        core::EdgeError::Revocation(r) => return revocation_error(r),
        core::EdgeError::UnknownTicket(t) => ("PHANTOM_EDGE_UNKNOWN_TICKET", *t),
        core::EdgeError::WrongTicketKind(t) => ("PHANTOM_EDGE_WRONG_TICKET_KIND", *t),
        _ => ("PHANTOM_EDGE_ERROR", 0),
    };
    fail(code, &json!({ "ticket": ticket, "message": e.to_string() }))
}

/// A napi (engine) error in this module's error type.
fn engine<T>(r: napi::Result<T>) -> Result<T> {
    r.map_err(|e| napi::Error::new(e.status.as_ref().to_owned(), e.reason.clone()))
}

fn invalid_arg(field: &str, message: &str) -> napi::Error<String> {
    fail(
        "PHANTOM_EDGE_INVALID_ARG",
        &json!({ "field": field, "message": message }),
    )
}

/// JS numbers → u64 (ids, tickets, times). Negative, fractional or unsafe values are refused.
fn to_u64(field: &str, v: f64) -> Result<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked just above
        Ok(v as u64)
    } else {
        Err(invalid_arg(field, "must be a non-negative safe integer"))
    }
}

#[allow(clippy::cast_precision_loss)] // ids, tickets and times stay below 2^53
const fn to_f64(v: u64) -> f64 {
    v as f64
}

fn now_or(now: Option<f64>) -> Result<u64> {
    match now {
        Some(n) => to_u64("now", n),
        None => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
    }
}

fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(n, x)| (n.as_str(), x.as_str())).collect()
}

fn body_bytes(body: &Either<String, Buffer>) -> &[u8] {
    match body {
        Either::A(s) => s.as_bytes(),
        Either::B(b) => b,
    }
}

/// `target` (path and query) without every query parameter some server reads as `access_token`
/// (the core's spelling rules: `access%5Ftoken`, `ACCESS_TOKEN`, `access.token`, `access_token[]`,
/// inside a `;`-separated parameter), or `null` when it has none: what a host keeps or logs
/// instead of the URL as received.
#[napi]
pub fn redact_query_tokens(target: String) -> Option<String> {
    core::redact_query_tokens(&target)
}

// ---------------------------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------------------------

/// A checked configuration (TOML or JSON, the same for every host). `*_env` secrets are read from
/// the process environment when it is built.
#[napi]
#[derive(Debug)]
pub struct Config {
    inner: core::Config,
    middleware: Option<String>,
}

impl Config {
    fn build(raw: std::result::Result<core::RawConfig, core::ConfigError>) -> Result<Self> {
        let raw = raw.map_err(|e| config_error(&e))?;
        let middleware = raw.middleware.as_ref().map(ToString::to_string);
        let inner = raw
            .resolve(&|k| std::env::var(k).ok())
            .map_err(|e| config_error(&e))?;
        Ok(Self { inner, middleware })
    }
}

#[napi]
impl Config {
    /// Parses TOML text. Throws a `PHANTOM_EDGE_CONFIG` error naming the field.
    #[napi(factory)]
    pub fn from_toml(text: String) -> Result<Self> {
        Self::build(core::RawConfig::from_toml(&text))
    }

    /// Parses JSON text of the same shape as the TOML.
    #[napi(factory)]
    pub fn from_json(text: String) -> Result<Self> {
        Self::build(core::RawConfig::from_json(&text))
    }

    /// The `[middleware]` host section as JSON text (not read by the core), or `null`.
    #[napi(getter)]
    pub fn middleware_json(&self) -> Option<String> {
        self.middleware.clone()
    }

    /// The configured issuer.
    #[napi(getter)]
    pub fn issuer(&self) -> String {
        self.inner.issuer().to_owned()
    }

    /// The JWKS URI, if any.
    #[napi(getter)]
    pub fn jwks_uri(&self) -> Option<String> {
        self.inner.jwks_uri().map(str::to_owned)
    }

    /// The introspection deadline in milliseconds.
    #[napi(getter)]
    pub fn timeout_ms(&self) -> f64 {
        to_f64(self.inner.timeout_ms())
    }

    /// `request.allow_query_token`: tokens may come in the URL's query, so the request URL as
    /// received must not be logged.
    #[napi(getter)]
    pub fn allow_query_token(&self) -> bool {
        self.inner.allow_query_token()
    }
}

// ---------------------------------------------------------------------------------------------
// The Step: what one input produced, by consumer
// ---------------------------------------------------------------------------------------------

/// The claims of a forwarded token (absent claims are `undefined`).
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct TokenClaims {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    pub aud: Vec<String>,
    pub iss: Option<String>,
    pub exp: Option<f64>,
    pub iat: Option<f64>,
    pub nbf: Option<f64>,
    pub jti: Option<String>,
    pub sid: Option<String>,
    pub username: Option<String>,
    pub token_type: Option<String>,
    pub cnf_jkt: Option<String>,
    #[napi(js_name = "cnfX5tS256")]
    pub cnf_x5t_s256: Option<String>,
}

/// Let the request through. Its upstream headers come from `upstreamHeaders(inbound,
/// headerValue, hop)` (`headerName` and `stripHeaders` are the edge's `forwardPolicy()`).
/// `requestId` is absent on the shared, frozen `Forward` of a `handleRequest` step decided at
/// once (a cache hit): it decides that call's request.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Forward {
    #[napi(js_name = "type", ts_type = "'forward'")]
    pub ty: &'static str,
    pub request_id: Option<f64>,
    pub header_name: String,
    pub header_value: String,
    pub strip_headers: Vec<String>,
    /// The token's claims.
    pub token: TokenClaims,
    /// Keyed fingerprint of the presented token (32 hex digits), never the token.
    pub fingerprint: String,
    /// When the token came in the query: the path and query to forward instead.
    pub rewritten_path: Option<String>,
}

/// Answer the client with `status`, `WWW-Authenticate: wwwAuthenticate` and the JSON `body`.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Reject {
    #[napi(js_name = "type", ts_type = "'reject'")]
    pub ty: &'static str,
    pub request_id: f64,
    pub status: u16,
    pub www_authenticate: Option<String>,
    /// Seconds for a `Retry-After` header, when the client may retry soon (`rate_limited`).
    pub retry_after: Option<u32>,
    pub body: String,
    /// Stable snake_case reason code (`missing_token`, `inactive`, `insufficient_scope`, ...).
    pub reason: String,
    pub fingerprint: Option<String>,
}

/// Send this HTTP request (an introspection or a JWKS fetch) as given (no redirects), read at
/// most `maxResponseBytes` of the answer within `timeoutMs`, and feed whatever came back to
/// `handleFetch(ticket, ...)`: any status, or a failure. `body` may hold the token: never log it.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Fetch {
    pub ticket: f64,
    #[napi(ts_type = "'introspection' | 'jwks'")]
    pub kind: &'static str,
    /// `POST` (introspection) or `GET` (JWKS).
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout_ms: f64,
    pub max_response_bytes: f64,
    /// Fingerprint of the token being introspected (for logs); `null` for a JWKS fetch.
    pub fingerprint: Option<String>,
}

/// Look `key` up in the shared store; answer with `handleSharedLookup`.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct SharedLookup {
    pub ticket: f64,
    pub key: String,
}

/// A token-free audit event (fingerprints only).
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Audit {
    /// `cache_hit`, `cache_miss`, `introspected`, `rejected`, `revoked`, ... (snake_case)
    pub kind: &'static str,
    /// The level to log it at: the core's classification of its kind.
    #[napi(ts_type = "'debug' | 'info' | 'warn'")]
    pub level: &'static str,
    pub request_id: Option<f64>,
    pub ticket: Option<f64>,
    pub fingerprint: Option<String>,
    pub reason: Option<String>,
    pub detail: Option<String>,
}

fn reject_to_js(r: core::Reject) -> Reject {
    Reject {
        ty: "reject",
        request_id: to_f64(r.request_id),
        status: r.status,
        www_authenticate: r.www_authenticate,
        retry_after: r.retry_after,
        body: r.body,
        reason: r.reason.as_str().to_owned(),
        fingerprint: r.fingerprint.map(|f| f.hex()),
    }
}

fn fetch_to_js(f: core::Fetch) -> Fetch {
    Fetch {
        ticket: to_f64(f.ticket),
        kind: f.kind.as_str(),
        method: f.method,
        url: f.url,
        headers: f.headers,
        body: f.body,
        timeout_ms: to_f64(f.timeout_ms),
        max_response_bytes: usize_f64(f.max_response_bytes),
        fingerprint: f.fingerprint.map(|f| f.hex()),
    }
}

fn audit_to_js(e: core::AuditEvent) -> Audit {
    Audit {
        kind: e.kind.as_str(),
        level: e.level.as_str(),
        request_id: e.request_id.map(to_f64),
        ticket: e.ticket.map(to_f64),
        fingerprint: e.fingerprint.map(|f| f.hex()),
        reason: e.reason.map(|r| r.as_str().to_owned()),
        detail: e.detail,
    }
}

fn js_array<'e, T, I>(env: &'e Env, items: I) -> Result<Array<'e>>
where
    T: ToNapiValue,
    I: ExactSizeIterator<Item = T>,
{
    let mut a = engine(env.create_array(u32::try_from(items.len()).unwrap_or(u32::MAX)))?;
    for (i, x) in items.enumerate() {
        engine(a.set(u32::try_from(i).unwrap_or(u32::MAX), x))?;
    }
    Ok(a)
}

/// A `Step` as a plain JS object (`Forward`s built through the cache).
fn step_to_js<'e>(env: &'e Env, cache: &mut JsCache, step: core::Step) -> Result<Object<'e>> {
    let mut decisions =
        engine(env.create_array(u32::try_from(step.decisions.len()).unwrap_or(u32::MAX)))?;
    for (i, d) in step.decisions.into_iter().enumerate() {
        let i = u32::try_from(i).unwrap_or(u32::MAX);
        match d {
            core::Decision::Forward(f) => engine(decisions.set(i, cache.forward(env, &f)?))?,
            core::Decision::Reject(r) => engine(decisions.set(i, reject_to_js(r)))?,
        }
    }
    let mut o = engine(Object::new(env))?;
    engine(o.set_c_named_property(c"decisions", decisions))?;
    engine(o.set_c_named_property(
        c"fetches",
        js_array(env, step.fetches.into_iter().map(fetch_to_js))?,
    ))?;
    engine(o.set_c_named_property(
        c"lookups",
        js_array(
            env,
            step.lookups.into_iter().map(|l| SharedLookup {
                ticket: to_f64(l.ticket),
                key: l.key,
            }),
        )?,
    ))?;
    engine(o.set_c_named_property(
        c"publishes",
        js_array(env, step.publishes.into_iter().map(|p| p.message))?,
    ))?;
    engine(o.set_c_named_property(
        c"audits",
        js_array(env, step.audits.into_iter().map(audit_to_js))?,
    ))?;
    engine(o.set_c_named_property(c"wakeAt", step.wake_at.map(to_f64)))?;
    Ok(o)
}

/// Counters since start.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct EdgeMetrics {
    pub requests: f64,
    pub forwarded: f64,
    pub rejected: f64,
    pub cache_hits: f64,
    pub negative_hits: f64,
    pub cache_misses: f64,
    pub coalesced: f64,
    pub introspections: f64,
    pub shared_lookups: f64,
    pub introspection_failures: f64,
    pub revocations: f64,
    pub jwks_fetches: f64,
    pub revocation_overflows: f64,
}

/// Current sizes of the bounded structures.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct EdgeStats {
    pub cache_entries: f64,
    pub cache_bytes: f64,
    pub negative_entries: f64,
    pub pending: f64,
    pub waiters: f64,
    pub revocations: f64,
    pub dpop_replay_entries: f64,
    pub jwks_keys: f64,
    pub evictions: f64,
}

#[allow(clippy::cast_precision_loss)] // sizes stay far below 2^53
const fn usize_f64(v: usize) -> f64 {
    v as f64
}

// ---------------------------------------------------------------------------------------------
// Inputs and the policy calls' shapes
// ---------------------------------------------------------------------------------------------

/// What came back for a `Fetch`: the server's answer, whatever its status.
#[napi(object)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Either<String, Buffer>,
}

/// A proxy's next hop (see `upstreamHeaders`).
#[napi(object)]
#[derive(Debug)]
pub struct ProxyHop {
    /// The client's address, appended to `x-forwarded-for`; `null`: no `x-forwarded-for`.
    pub peer: Option<String>,
    /// The scheme the client used: `x-forwarded-proto`.
    pub proto: String,
    /// The upstream's `host[:port]`, sent as `host`; `null` keeps the inbound one.
    pub upstream_authority: Option<String>,
}

/// The forwarding policy's answer: drop these inbound headers (indexes, ascending; keep the
/// others as they are, bytes and order), then append these.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct UpstreamHeaders {
    pub drop: Vec<u32>,
    pub set: Vec<(String, String)>,
}

/// The header every forward sets and the inbound headers it strips (constant for an edge).
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct ForwardPolicy {
    pub header_name: String,
    pub strip_headers: Vec<String>,
}

/// A request to an operator route (the host maps its paths to `route`). `body`: at most
/// 64 KiB + 1 bytes as read (a longer one is answered 413).
#[napi(object)]
pub struct AdminRequest {
    #[napi(ts_type = "'revocations' | 'metrics' | 'jwks'")]
    pub route: String,
    /// `'app'`: a middleware's route on the app's listener (metrics need the `[admin]` bearer);
    /// `'operator'`: a listener only operators reach.
    #[napi(ts_type = "'app' | 'operator'")]
    pub listener: String,
    pub method: String,
    pub authorization: Option<String>,
    pub content_type: Option<String>,
    pub body: Option<Either<String, Buffer>>,
}

// `Debug` without the bodies (an introspection answer or a revocation can name a token).
impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("body_len", &body_bytes(&self.body).len())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AdminRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminRequest")
            .field("route", &self.route)
            .field("listener", &self.listener)
            .field("method", &self.method)
            .field(
                "body_len",
                &self.body.as_ref().map_or(0, |b| body_bytes(b).len()),
            )
            .finish_non_exhaustive()
    }
}

/// The answer to write out as it is.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct AdminAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

fn u32_indexes(v: Vec<usize>) -> Vec<u32> {
    v.into_iter()
        .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
        .collect()
}

/// The largest body an operator route reads (64 KiB): a host reads at most one byte more and
/// passes what it read to `handleAdmin` (a longer body is answered 413).
#[napi]
#[allow(clippy::cast_possible_truncation)] // 64 KiB
pub const MAX_ADMIN_BODY: u32 = core::MAX_ADMIN_BODY as u32;

/// A JWT split for the split-token pattern.
#[napi(object)]
#[derive(Debug)]
pub struct SplitToken {
    /// What the client gets as its access token: the JWT's signature.
    pub client_token: String,
    /// The store key: the prefix and base64url(SHA-256(clientToken)).
    pub store_key: String,
    /// The store value, sealed under a key derived from the signature: no claims in the store.
    pub store_value: String,
    /// The JWT's `exp` (Unix s), if it has one: expire the store entry then.
    pub expires_at: Option<i64>,
}

/// Splits a signed JWT for the split-token pattern (the issuer's side), so an authorization
/// server or a token service can populate the shared store. `keyPrefix` defaults to
/// `phantom-edge:split:`. Throws for a JWT that is not a compact JWS.
#[napi]
pub fn split_jwt(jwt: String, key_prefix: Option<String>) -> napi::Result<SplitToken> {
    let prefix = key_prefix
        .as_deref()
        .unwrap_or(core::DEFAULT_SPLIT_KEY_PREFIX);
    let s = core::split_jwt(&jwt, prefix)
        .map_err(|e| napi::Error::new(napi::Status::InvalidArg, e.to_string()))?;
    Ok(SplitToken {
        client_token: s.client_token,
        store_key: s.store_key,
        store_value: s.store_value,
        expires_at: s.expires_at.and_then(|e| i64::try_from(e).ok()),
    })
}

/// Indexes (ascending) of the hop-by-hop headers of a message a proxy relays (also the
/// upstream's answer on its way back): RFC 9110 §7.6.1's and those its `Connection` headers list.
#[napi]
pub fn hop_by_hop_headers(headers: Vec<(String, String)>) -> Vec<u32> {
    u32_indexes(core::hop_by_hop_headers(&pairs(&headers)))
}

// ---------------------------------------------------------------------------------------------
// Forward objects on the hit path
// ---------------------------------------------------------------------------------------------

/// Direct-mapped caches of the JS values of a `Forward`, keyed by the core's `Arc`s (a cache hit
/// hands out the same `Arc<TokenInfo>` and the same minted header value every time): the frozen
/// claims object with the fingerprint string, a holder of the header name, value and the frozen
/// `stripHeaders` array, and the frozen `Step` of a hit decided at once. Only immutable (frozen)
/// objects and strings are shared. Bounded: `SLOTS` entries each; references are released on
/// eviction and when the `Edge` is garbage-collected.
#[derive(Default)]
struct JsCache {
    claims: Vec<Option<ClaimsEntry>>,
    headers: Vec<Option<HeadersEntry>>,
    steps: Vec<Option<StepEntry>>,
}

/// Claims holder `{ token, fingerprint }` of one token.
type ClaimsEntry = (Arc<core::TokenInfo>, core::Fingerprint, ObjectRef<false>);
/// Holder `{ headerName, headerValue, stripHeaders }`, keyed by name, value and strip list.
type HeadersEntry = (Arc<str>, Arc<str>, Arc<[String]>, ObjectRef<false>);
/// Frozen `Step` `{ decisions: [Forward without requestId], ..., wakeAt }`, keyed by header
/// value, claims, fingerprint and `wakeAt`.
type StepEntry = (
    Arc<str>,
    Arc<core::TokenInfo>,
    core::Fingerprint,
    Option<u64>,
    ObjectRef<false>,
);

impl std::fmt::Debug for JsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsCache").finish_non_exhaustive()
    }
}

const SLOTS: usize = 64;

fn slot<T: ?Sized>(ptr: *const T) -> usize {
    (ptr.cast::<u8>() as usize >> 4) % SLOTS
}

fn claims_object<'e>(env: &'e Env, t: &core::TokenInfo) -> Result<Object<'e>> {
    let mut o = engine(Object::new(env))?;
    let text = |o: &mut Object<'e>, k: &std::ffi::CStr, v: &Option<String>| -> Result<()> {
        v.as_deref()
            .map_or(Ok(()), |v| engine(o.set_c_named_property(k, v)))
    };
    let num = |o: &mut Object<'e>, k: &std::ffi::CStr, v: Option<u64>| -> Result<()> {
        v.map_or(Ok(()), |v| engine(o.set_c_named_property(k, to_f64(v))))
    };
    text(&mut o, c"sub", &t.sub)?;
    text(&mut o, c"clientId", &t.client_id)?;
    engine(o.set_c_named_property(c"scopes", frozen_array(env, &t.scopes)?))?;
    engine(o.set_c_named_property(c"aud", frozen_array(env, &t.aud)?))?;
    text(&mut o, c"iss", &t.iss)?;
    num(&mut o, c"exp", t.exp)?;
    num(&mut o, c"iat", t.iat)?;
    num(&mut o, c"nbf", t.nbf)?;
    text(&mut o, c"jti", &t.jti)?;
    text(&mut o, c"sid", &t.sid)?;
    text(&mut o, c"username", &t.username)?;
    text(&mut o, c"tokenType", &t.token_type)?;
    text(&mut o, c"cnfJkt", &t.cnf_jkt)?;
    text(&mut o, c"cnfX5tS256", &t.cnf_x5t_s256)?;
    engine(o.freeze())?;
    Ok(o)
}

fn frozen_array<'e>(env: &'e Env, items: &[String]) -> Result<Array<'e>> {
    let a = js_array(env, items.iter().map(String::as_str))?;
    let mut obj = engine(a.coerce_to_object())?;
    engine(obj.freeze())?;
    Ok(a)
}

impl JsCache {
    /// `{ token, fingerprint }` for this token's claims.
    fn claims<'e>(&mut self, env: &'e Env, f: &core::Forward) -> Result<Object<'e>> {
        if self.claims.is_empty() {
            self.claims.resize_with(SLOTS, || None);
        }
        let i = slot(Arc::as_ptr(&f.token));
        if let Some((info, fp, r)) = &self.claims[i]
            && Arc::ptr_eq(info, &f.token)
            && *fp == f.fingerprint
        {
            return engine(r.get_value(env));
        }
        let mut holder = engine(Object::new(env))?;
        engine(holder.set_c_named_property(c"token", claims_object(env, &f.token)?))?;
        engine(holder.set_c_named_property(c"fingerprint", f.fingerprint.hex()))?;
        let r = engine(holder.create_ref::<false>())?;
        if let Some((_, _, old)) = self.claims[i].replace((Arc::clone(&f.token), f.fingerprint, r))
        {
            engine(old.unref(env))?;
        }
        Ok(holder)
    }

    /// `{ headerName, headerValue, stripHeaders }` for this upstream header.
    fn headers<'e>(&mut self, env: &'e Env, f: &core::Forward) -> Result<Object<'e>> {
        if self.headers.is_empty() {
            self.headers.resize_with(SLOTS, || None);
        }
        let i = slot(Arc::as_ptr(&f.header_value));
        if let Some((name, value, strip, r)) = &self.headers[i]
            && Arc::ptr_eq(value, &f.header_value)
            && Arc::ptr_eq(name, &f.header_name)
            && Arc::ptr_eq(strip, &f.strip_headers)
        {
            return engine(r.get_value(env));
        }
        let mut holder = engine(Object::new(env))?;
        engine(holder.set_c_named_property(c"headerName", &*f.header_name))?;
        engine(holder.set_c_named_property(c"headerValue", &*f.header_value))?;
        engine(holder.set_c_named_property(c"stripHeaders", frozen_array(env, &f.strip_headers)?))?;
        let r = engine(holder.create_ref::<false>())?;
        let entry = (
            Arc::clone(&f.header_name),
            Arc::clone(&f.header_value),
            Arc::clone(&f.strip_headers),
            r,
        );
        if let Some((_, _, _, old)) = self.headers[i].replace(entry) {
            engine(old.unref(env))?;
        }
        Ok(holder)
    }

    fn release(&mut self, env: &Env) -> Result<()> {
        for (_, _, r) in self.claims.drain(..).flatten() {
            engine(r.unref(env))?;
        }
        for (_, _, _, r) in self.headers.drain(..).flatten() {
            engine(r.unref(env))?;
        }
        for (_, _, _, _, r) in self.steps.drain(..).flatten() {
            engine(r.unref(env))?;
        }
        Ok(())
    }

    /// The frozen `Step` of a hit decided at once: its one decision is `f` without `requestId`
    /// (the caller knows the request), frozen and shared by every hit on the same cache entry
    /// and upstream header while `wakeAt` stays the same; every list else is empty (and frozen).
    fn hit_step<'e>(
        &mut self,
        env: &'e Env,
        f: &core::Forward,
        wake_at: Option<u64>,
    ) -> Result<Object<'e>> {
        if self.steps.is_empty() {
            self.steps.resize_with(SLOTS, || None);
        }
        let i = slot(Arc::as_ptr(&f.header_value));
        // One minted value per route and token, so name and strip list come with the value.
        if let Some((value, info, fp, at, r)) = &self.steps[i]
            && Arc::ptr_eq(value, &f.header_value)
            && Arc::ptr_eq(info, &f.token)
            && *fp == f.fingerprint
            && *at == wake_at
        {
            return engine(r.get_value(env));
        }
        let mut forward = self.forward(env, f)?;
        engine(forward.delete_named_property("requestId"))?;
        engine(forward.freeze())?;
        let mut decisions = engine(env.create_array(1))?;
        engine(decisions.set(0, forward))?;
        let mut o = engine(Object::new(env))?;
        for (k, v) in [
            (c"decisions", decisions),
            (c"fetches", engine(env.create_array(0))?),
            (c"lookups", engine(env.create_array(0))?),
            (c"publishes", engine(env.create_array(0))?),
            (c"audits", engine(env.create_array(0))?),
        ] {
            engine(engine(v.coerce_to_object())?.freeze())?;
            engine(o.set_c_named_property(k, v))?;
        }
        engine(o.set_c_named_property(c"wakeAt", wake_at.map(to_f64)))?;
        engine(o.freeze())?;
        let r = engine(o.create_ref::<false>())?;
        let entry = (
            Arc::clone(&f.header_value),
            Arc::clone(&f.token),
            f.fingerprint,
            wake_at,
            r,
        );
        if let Some((_, _, _, _, old)) = self.steps[i].replace(entry) {
            engine(old.unref(env))?;
        }
        Ok(o)
    }

    /// The `Forward` as a fresh object whose values (strings, frozen claims and arrays) are shared.
    fn forward<'e>(&mut self, env: &'e Env, f: &core::Forward) -> Result<Object<'e>> {
        let claims = self.claims(env, f)?;
        let headers = self.headers(env, f)?;
        let mut o = engine(Object::new(env))?;
        let copy = |o: &mut Object<'e>, from: &Object<'e>, k: &std::ffi::CStr| -> Result<()> {
            let v: Unknown<'e> = engine(from.get_c_named_property_unchecked(k))?;
            engine(o.set_c_named_property(k, v))
        };
        engine(o.set_c_named_property(c"type", "forward"))?;
        engine(o.set_c_named_property(c"requestId", to_f64(f.request_id)))?;
        copy(&mut o, &headers, c"headerName")?;
        copy(&mut o, &headers, c"headerValue")?;
        copy(&mut o, &headers, c"stripHeaders")?;
        copy(&mut o, &claims, c"token")?;
        copy(&mut o, &claims, c"fingerprint")?;
        if let Some(p) = &f.rewritten_path {
            engine(o.set_c_named_property(c"rewrittenPath", p.as_str()))?;
        }
        Ok(o)
    }
}

// ---------------------------------------------------------------------------------------------
// Edge
// ---------------------------------------------------------------------------------------------

/// The phantom-token edge state machine. Feed an input (`handle*`): each returns the `Step` it
/// produced. Carry the step out: answer its `decisions` (a forward's upstream headers come from
/// `upstreamHeaders`), perform its `fetches` and `lookups` and feed their answers back
/// (`handleFetch`, `handleSharedLookup`), send its `publishes`, log its `audits`, and call
/// `handleTimeout` at its `wakeAt`. The first step is `initialStep()`. `now` (Unix ms) is
/// optional everywhere and defaults to the current time.
#[napi(custom_finalize)]
#[derive(Debug)]
pub struct Edge {
    /// Shared with the functions `bearerRequest()` made (they outlive nothing: see `fast`).
    state: Rc<RefCell<State>>,
}

/// Everything behind one `Edge`.
#[derive(Debug)]
struct State {
    inner: core::Edge,
    cache: JsCache,
    audit: bool,
    /// Audit kinds not produced (`muteAudits`).
    muted: core::AuditKinds,
    /// The argument strings of the `bearerRequest` function's current call (UTF-16 as read,
    /// UTF-8 as handed to the core), kept to reuse their allocations.
    scratch: (Vec<u16>, Vec<u8>),
}

impl State {
    /// Tells the core which audit kinds not to produce: the muted ones, or all with
    /// `auditActions = false`.
    fn apply_mutes(&mut self) {
        self.inner.mute_audits(if self.audit {
            self.muted
        } else {
            core::AuditKinds::ALL
        });
    }

    /// The step of the core's last input as JS.
    fn step<'e>(&mut self, env: &'e Env) -> Result<Object<'e>> {
        let step = self.inner.step();
        step_to_js(env, &mut self.cache, step)
    }

    /// Right after the core took request `id`: the step. When the core decided it at once with
    /// nothing else to do (a cache hit with no audit events produced), the frozen shared step
    /// of that cache entry.
    fn request_step<'e>(&mut self, env: &'e Env, id: u64) -> Result<Object<'e>> {
        match self.inner.take_decision(id) {
            Some(core::Action::Forward(f)) if f.rewritten_path.is_none() => {
                let wake_at = self.inner.poll_timeout();
                self.cache.hit_step(env, &f, wake_at)
            }
            Some(core::Action::Forward(f)) => {
                let mut step = self.inner.step();
                step.decisions.push(core::Decision::Forward(f));
                step_to_js(env, &mut self.cache, step)
            }
            Some(core::Action::Reject(r)) => {
                let mut step = self.inner.step();
                step.decisions.push(core::Decision::Reject(r));
                step_to_js(env, &mut self.cache, step)
            }
            Some(_) | None => self.step(env),
        }
    }
}

/// Drops one holder of the state; the last one releases the cached JS objects (they are
/// references into the JS heap, so the release needs `env`). Runs in finalizers, where nothing
/// could receive an error: a failed release only leaks those references.
fn release_state(state: Rc<RefCell<State>>, env: &Env) {
    if let Ok(cell) = Rc::try_unwrap(state) {
        let _ = cell.into_inner().cache.release(env);
    }
}

impl ObjectFinalize for Edge {
    fn finalize(self, env: Env) -> napi::Result<()> {
        release_state(self.state, &env);
        Ok(())
    }
}

/// The state, exclusively. Every entry point (the methods and the `bearerRequest` function) runs
/// to completion on the JS thread without calling back into JS, so a second borrow cannot
/// happen; refused rather than trusted.
fn exclusive(state: &RefCell<State>) -> Result<RefMut<'_, State>> {
    state
        .try_borrow_mut()
        .map_err(|_| invalid_arg("this", "the edge is already in use (re-entrant call)"))
}

impl Edge {
    fn state(&self) -> Result<RefMut<'_, State>> {
        exclusive(&self.state)
    }
}

fn strings(v: Option<Either<String, Vec<String>>>) -> Vec<String> {
    match v {
        None => Vec::new(),
        Some(Either::A(s)) => vec![s],
        Some(Either::B(v)) => v,
    }
}

#[napi]
impl Edge {
    /// `seed`: 32 random bytes (the JS wrapper passes `crypto.randomBytes(32)` by default). What
    /// the edge queued at once (the JWKS fetch) is `initialStep()`.
    #[napi(constructor)]
    pub fn new(config: &Config, seed: Buffer, now: Option<f64>) -> Result<Self> {
        let seed: [u8; 32] = seed
            .as_ref()
            .try_into()
            .map_err(|_| invalid_arg("seed", "must be exactly 32 bytes"))?;
        Ok(Self {
            state: Rc::new(RefCell::new(State {
                inner: core::Edge::new(config.inner.clone(), seed, now_or(now)?),
                cache: JsCache::default(),
                audit: true,
                muted: core::AuditKinds::NONE,
                scratch: (Vec::new(), Vec::new()),
            })),
        })
    }

    /// What the constructor queued (the initial JWKS fetch, if any). Call it once, first.
    #[napi(ts_return_type = "Step")]
    pub fn initial_step<'e>(&mut self, env: &'e Env) -> Result<Object<'e>> {
        self.state()?.step(env)
    }

    /// A client request arrived. `authorization` and `dpop`: every value of those headers, in
    /// order (the only request headers the core reads; two `Authorization` headers are refused).
    /// Its decision is in the returned step at once (a cache hit, a refusal) or in the step of a
    /// later input, after the fetches or lookups this one asks for. A hit with no audit events
    /// to hand out returns a frozen step shared by the hits on one cache entry, whose `Forward`
    /// has no `requestId` (it is this request's).
    #[napi(ts_return_type = "Step")]
    #[allow(clippy::too_many_arguments)]
    pub fn handle_request<'e>(
        &mut self,
        env: &'e Env,
        id: f64,
        method: String,
        scheme: String,
        authority: String,
        path: String,
        authorization: Option<Either<String, Vec<String>>>,
        dpop: Option<Either<String, Vec<String>>>,
        client_cert_thumbprint: Option<String>,
        now: Option<f64>,
    ) -> Result<Object<'e>> {
        let authorization = strings(authorization);
        let dpop = strings(dpop);
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|v| ("authorization", v.as_str()))
            .chain(dpop.iter().map(|v| ("dpop", v.as_str())))
            .collect();
        let id = to_u64("id", id)?;
        let req = core::Request {
            id,
            method: &method,
            scheme: &scheme,
            authority: &authority,
            path: &path,
            headers: &headers,
            client_cert_thumbprint: client_cert_thumbprint.as_deref(),
        };
        let now = now_or(now)?;
        let mut state = self.state()?;
        state.inner.handle_request(now, &req);
        state.request_step(env, id)
    }

    /// A function `(id, method, scheme, authority, path, authorization, now?)` that does what
    /// `handleRequest(id, method, scheme, authority, path, authorization, null, null, now)` does
    /// on this edge, at a fraction of the call cost (a plain N-API function, no per-call class
    /// checks; see `src/fast.rs`). For requests with one `Authorization` header or none, no `DPoP`
    /// header and no client certificate; the `Edge` wrapper's `handleRequest` uses it for those by
    /// itself.
    #[napi(
        ts_return_type = "(id: number, method: string, scheme: string, authority: string, path: string, authorization: string | null | undefined, now?: number | null) => Step"
    )]
    pub fn bearer_request<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
        fast::make(env, &self.state)
    }

    /// The answer to the fetch `ticket` (an introspection or a JWKS fetch): the server's
    /// response, whatever its status, or a string: a token-free description of a transport
    /// failure (refused, TLS, timeout, an answer over `maxResponseBytes`). Throws
    /// `PHANTOM_EDGE_UNKNOWN_TICKET` / `PHANTOM_EDGE_WRONG_TICKET_KIND` for a ticket never issued.
    #[napi(ts_return_type = "Step")]
    pub fn handle_fetch<'e>(
        &mut self,
        env: &'e Env,
        ticket: f64,
        result: Either<HttpResponse, String>,
        now: Option<f64>,
    ) -> Result<Object<'e>> {
        let ticket = to_u64("ticket", ticket)?;
        let now = now_or(now)?;
        let mut state = self.state()?;
        match &result {
            Either::A(r) => {
                let h = pairs(&r.headers);
                let resp = core::HttpResponse {
                    status: r.status,
                    headers: &h,
                    body: body_bytes(&r.body),
                };
                state.inner.handle_fetch(now, ticket, Ok(&resp))
            }
            Either::B(detail) => state.inner.handle_fetch(now, ticket, Err(detail)),
        }
        .map_err(|e| edge_error(&e))?;
        state.step(env)
    }

    /// The shared store answered `ticket`: `value` found, `null` not found, or `error: true`.
    #[napi(ts_return_type = "Step")]
    pub fn handle_shared_lookup<'e>(
        &mut self,
        env: &'e Env,
        ticket: f64,
        value: Option<String>,
        error: Option<bool>,
        now: Option<f64>,
    ) -> Result<Object<'e>> {
        let r = if error.unwrap_or(false) {
            core::LookupResult::Error
        } else {
            value
                .as_deref()
                .map_or(core::LookupResult::NotFound, core::LookupResult::Found)
        };
        let ticket = to_u64("ticket", ticket)?;
        let now = now_or(now)?;
        let mut state = self.state()?;
        state
            .inner
            .handle_shared_lookup(now, ticket, r)
            .map_err(|e| edge_error(&e))?;
        state.step(env)
    }

    /// A revocation as the JSON selector text (`{"sub": "alice"}`, ...); `origin` is `"local"`
    /// (default; published to other instances) or `"shared"`. Throws `PHANTOM_EDGE_REVOCATION`
    /// (with `status` and `body`) when refused.
    #[napi(ts_return_type = "Step")]
    pub fn handle_revocation<'e>(
        &mut self,
        env: &'e Env,
        selector: Either<String, Buffer>,
        #[napi(ts_arg_type = "'local' | 'shared' | undefined | null")] origin: Option<String>,
        now: Option<f64>,
    ) -> Result<Object<'e>> {
        let origin = match origin.as_deref() {
            None | Some("local") => core::Origin::Local,
            Some("shared") => core::Origin::Shared,
            Some(_) => return Err(invalid_arg("origin", "must be \"local\" or \"shared\"")),
        };
        let now = now_or(now)?;
        let mut state = self.state()?;
        core::Revocation::from_json(body_bytes(&selector))
            .and_then(|r| state.inner.handle_revocation(now, r, origin))
            .map_err(|e| revocation_error(&e))?;
        state.step(env)
    }

    /// An RFC 8417 Security Event Token (compact JWT). Throws `PHANTOM_EDGE_REVOCATION` when
    /// refused.
    #[napi(ts_return_type = "Step")]
    pub fn handle_security_event<'e>(
        &mut self,
        env: &'e Env,
        set: String,
        now: Option<f64>,
    ) -> Result<Object<'e>> {
        let now = now_or(now)?;
        let mut state = self.state()?;
        state
            .inner
            .handle_security_event(now, &set)
            .map_err(|e| revocation_error(&e))?;
        state.step(env)
    }

    /// An operator route (revocation, metrics, the edge's JWKS), answered whole by the core:
    /// `answer` (status, headers, body: write it out as it is), then the `step` it produced.
    #[napi(ts_return_type = "{ answer: AdminAnswer; step: Step }")]
    pub fn handle_admin<'e>(
        &mut self,
        env: &'e Env,
        request: AdminRequest,
        now: Option<f64>,
    ) -> Result<Object<'e>> {
        let route = core::AdminRoute::from_name(&request.route).ok_or_else(|| {
            invalid_arg("route", "must be \"revocations\", \"metrics\" or \"jwks\"")
        })?;
        let listener = match request.listener.as_str() {
            "app" => core::Listener::App,
            "operator" => core::Listener::Operator,
            _ => return Err(invalid_arg("listener", "must be \"app\" or \"operator\"")),
        };
        let body = request.body.as_ref().map_or(&[][..], body_bytes);
        let req = core::AdminRequest {
            route,
            listener,
            method: &request.method,
            authorization: request.authorization.as_deref(),
            content_type: request.content_type.as_deref(),
            body,
        };
        let now = now_or(now)?;
        let mut state = self.state()?;
        let a = state.inner.handle_admin(now, &req);
        let answer = AdminAnswer {
            status: a.status,
            headers: a.headers,
            body: a.body,
        };
        let step = state.step(env)?;
        let mut o = engine(Object::new(env))?;
        engine(o.set_c_named_property(c"answer", answer))?;
        engine(o.set_c_named_property(c"step", step))?;
        Ok(o)
    }

    /// Time passed: expire tickets and sweep bounded sets.
    #[napi(ts_return_type = "Step")]
    pub fn handle_timeout<'e>(&mut self, env: &'e Env, now: Option<f64>) -> Result<Object<'e>> {
        let now = now_or(now)?;
        let mut state = self.state()?;
        state.inner.handle_timeout(now);
        state.step(env)
    }

    /// The forwarding policy: how the inbound headers of a forwarded request become the
    /// upstream's (`headerValue` is the `Forward`'s). `hop`: `'in_process'` for a middleware
    /// (only the strip list and every spelling of the forwarded header's name go), or a proxy's
    /// next hop (the client's forwarding, host and hop-by-hop headers are replaced too). Names
    /// are compared as WSGI/CGI servers read them (`X_Jwt` is `x-jwt`).
    #[napi]
    pub fn upstream_headers(
        &self,
        inbound: Vec<(String, String)>,
        header_value: String,
        #[napi(ts_arg_type = "'in_process' | ProxyHop")] hop: Either<String, ProxyHop>,
    ) -> Result<UpstreamHeaders> {
        let hop = match &hop {
            Either::A(s) if s == "in_process" => core::Hop::InProcess,
            Either::A(_) => return Err(invalid_arg("hop", "must be 'in_process' or a ProxyHop")),
            Either::B(p) => core::Hop::Proxy {
                peer: p.peer.as_deref(),
                proto: &p.proto,
                upstream_authority: p.upstream_authority.as_deref(),
            },
        };
        let u = self
            .state()?
            .inner
            .upstream_headers(&pairs(&inbound), &header_value, &hop);
        Ok(UpstreamHeaders {
            drop: u32_indexes(u.drop),
            set: u.set,
        })
    }

    /// The header every forward sets and the inbound headers it strips (also applied by
    /// `upstreamHeaders`).
    #[napi]
    pub fn forward_policy(&self) -> Result<ForwardPolicy> {
        let state = self.state()?;
        Ok(ForwardPolicy {
            header_name: state.inner.forward_header_name().to_owned(),
            strip_headers: state.inner.strip_headers().to_vec(),
        })
    }

    /// Whether steps carry `audits` (default `true`). A host that does not log them turns them
    /// off to save building the objects; the core's decisions do not change.
    #[napi(setter)]
    pub fn set_audit_actions(&mut self, enabled: bool) -> Result<()> {
        let mut state = self.state()?;
        state.audit = enabled;
        state.apply_mutes();
        Ok(())
    }

    /// See the setter.
    #[napi(getter)]
    pub fn get_audit_actions(&self) -> Result<bool> {
        Ok(self.state()?.audit)
    }

    /// Audit kinds (`cache_hit`, `cache_miss`, ...) that the core no longer produces (so steps
    /// never carry them), e.g. the routine ones a logger at info level would drop; `[]` produces
    /// all again. Throws `PHANTOM_EDGE_INVALID_ARG` for an unknown kind (and changes nothing).
    #[napi]
    pub fn mute_audits(&mut self, kinds: Vec<String>) -> Result<()> {
        let muted = core::AuditKinds::from_names(kinds.iter().map(String::as_str))
            .map_err(|k| invalid_arg("kinds", &format!("unknown audit kind {k:?}")))?;
        let mut state = self.state()?;
        state.muted = muted;
        state.apply_mutes();
        Ok(())
    }

    /// Audit events below `level` (`'debug'`, `'info'` or `'warn'`) are no longer produced:
    /// `'info'` leaves out the routine per-request kinds (hits, misses, introspections,
    /// forwards), which are then not even built; `'debug'` (the default) produces every level
    /// again. Composes with `muteAudits`. Throws `PHANTOM_EDGE_INVALID_ARG` for an unknown level
    /// (and changes nothing).
    #[napi(ts_args_type = "level: 'debug' | 'info' | 'warn'")]
    pub fn set_audit_level(&mut self, level: String) -> Result<()> {
        let level = core::AuditLevel::from_name(&level).ok_or_else(|| {
            invalid_arg(
                "level",
                &format!("unknown audit level {level:?} (debug, info or warn)"),
            )
        })?;
        self.state()?.inner.set_audit_level(level);
        Ok(())
    }

    /// Prometheus text exposition of the counters and sizes.
    #[napi]
    pub fn prometheus(&self) -> Result<String> {
        Ok(self.state()?.inner.prometheus())
    }

    /// The keyed fingerprint (32 hex digits) this edge computes for `token`.
    #[napi]
    pub fn fingerprint(&self, token: String) -> Result<String> {
        Ok(self.state()?.inner.fingerprint(&token).hex())
    }

    /// The edge's public JWKS (JSON text) for backends, or `null` without `[assertions]`.
    #[napi]
    pub fn assertion_jwks(&self) -> Result<Option<String>> {
        Ok(self.state()?.inner.assertion_jwks())
    }

    /// Current sizes of the bounded structures.
    #[napi]
    pub fn stats(&self) -> Result<EdgeStats> {
        let s = self.state()?.inner.stats();
        Ok(EdgeStats {
            cache_entries: usize_f64(s.cache_entries),
            cache_bytes: usize_f64(s.cache_bytes),
            negative_entries: usize_f64(s.negative_entries),
            pending: usize_f64(s.pending),
            waiters: usize_f64(s.waiters),
            revocations: usize_f64(s.revocations),
            dpop_replay_entries: usize_f64(s.dpop_replay_entries),
            jwks_keys: usize_f64(s.jwks_keys),
            evictions: to_f64(s.evictions),
        })
    }

    /// Counters since start.
    #[napi]
    pub fn metrics(&self) -> Result<EdgeMetrics> {
        let state = self.state()?;
        let m = state.inner.metrics();
        Ok(EdgeMetrics {
            requests: to_f64(m.requests),
            forwarded: to_f64(m.forwarded),
            rejected: to_f64(m.rejected),
            cache_hits: to_f64(m.cache_hits),
            negative_hits: to_f64(m.negative_hits),
            cache_misses: to_f64(m.cache_misses),
            coalesced: to_f64(m.coalesced),
            introspections: to_f64(m.introspections),
            shared_lookups: to_f64(m.shared_lookups),
            introspection_failures: to_f64(m.introspection_failures),
            revocations: to_f64(m.revocations),
            jwks_fetches: to_f64(m.jwks_fetches),
            revocation_overflows: to_f64(m.revocation_overflows),
        })
    }
}
