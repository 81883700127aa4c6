//! Node bindings of `phantom-edge-core`: a thin translation layer (napi-rs). Every decision is
//! made by the core; this crate only converts arguments and actions between Rust and JavaScript.
//!
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
    Array, Buffer, Either, Either7, JsObjectValue, Object, ObjectFinalize, ObjectRef, Unknown,
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
// Actions: plain objects, discriminated by `type`
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

impl From<&core::TokenInfo> for TokenClaims {
    fn from(t: &core::TokenInfo) -> Self {
        Self {
            sub: t.sub.clone(),
            client_id: t.client_id.clone(),
            scopes: t.scopes.clone(),
            aud: t.aud.clone(),
            iss: t.iss.clone(),
            exp: t.exp.map(to_f64),
            iat: t.iat.map(to_f64),
            nbf: t.nbf.map(to_f64),
            jti: t.jti.clone(),
            sid: t.sid.clone(),
            username: t.username.clone(),
            token_type: t.token_type.clone(),
            cnf_jkt: t.cnf_jkt.clone(),
            cnf_x5t_s256: t.cnf_x5t_s256.clone(),
        }
    }
}

/// Let the request through: set `headerName: headerValue`, strip `stripHeaders`.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Forward {
    #[napi(js_name = "type", ts_type = "'forward'")]
    pub ty: &'static str,
    pub request_id: f64,
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

/// Send this HTTP request to the introspection endpoint; answer with
/// `handleIntrospectionResponse` / `handleIntrospectionFailure` quoting `ticket`.
/// `body` holds the token: never log it.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Introspect {
    #[napi(js_name = "type", ts_type = "'introspect'")]
    pub ty: &'static str,
    pub ticket: f64,
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub timeout_ms: f64,
    pub fingerprint: String,
}

/// GET `url` and answer with `handleJwks` / `handleJwksFailure`.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct FetchJwks {
    #[napi(js_name = "type", ts_type = "'fetchJwks'")]
    pub ty: &'static str,
    pub url: String,
}

/// Look `key` up in the shared store; answer with `handleSharedLookup`.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct SharedLookup {
    #[napi(js_name = "type", ts_type = "'sharedLookup'")]
    pub ty: &'static str,
    pub ticket: f64,
    pub key: String,
}

/// Publish `message` (a JSON selector, never a raw token) to the other instances.
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct SharedPublish {
    #[napi(js_name = "type", ts_type = "'sharedPublish'")]
    pub ty: &'static str,
    pub message: String,
}

/// A token-free audit event (fingerprints only).
#[napi(object, object_from_js = false)]
#[derive(Debug)]
pub struct Audit {
    #[napi(js_name = "type", ts_type = "'audit'")]
    pub ty: &'static str,
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

/// One action of the core.
pub type Action =
    Either7<Forward, Reject, Introspect, FetchJwks, SharedLookup, SharedPublish, Audit>;

fn action_to_js(action: core::Action) -> Result<Action> {
    Ok(match action {
        core::Action::Forward(f) => Either7::A(Forward {
            ty: "forward",
            request_id: to_f64(f.request_id),
            header_name: String::from(&*f.header_name),
            header_value: String::from(&*f.header_value),
            strip_headers: f.strip_headers.to_vec(),
            token: TokenClaims::from(&*f.token),
            fingerprint: f.fingerprint.hex(),
            rewritten_path: f.rewritten_path,
        }),
        core::Action::Reject(r) => Either7::B(Reject {
            ty: "reject",
            request_id: to_f64(r.request_id),
            status: r.status,
            www_authenticate: r.www_authenticate,
            retry_after: r.retry_after,
            body: r.body,
            reason: r.reason.as_str().to_owned(),
            fingerprint: r.fingerprint.map(|f| f.hex()),
        }),
        core::Action::Introspect(i) => Either7::C(Introspect {
            ty: "introspect",
            ticket: to_f64(i.ticket),
            method: i.method.to_owned(),
            url: i.url,
            headers: i.headers,
            body: i.body,
            timeout_ms: to_f64(i.timeout_ms),
            fingerprint: i.fingerprint.hex(),
        }),
        core::Action::FetchJwks(j) => Either7::D(FetchJwks {
            ty: "fetchJwks",
            url: j.url,
        }),
        core::Action::SharedLookup(l) => Either7::E(SharedLookup {
            ty: "sharedLookup",
            ticket: to_f64(l.ticket),
            key: l.key,
        }),
        core::Action::SharedPublish(p) => Either7::F(SharedPublish {
            ty: "sharedPublish",
            message: p.message,
        }),
        core::Action::Audit(e) => Either7::G(Audit {
            ty: "audit",
            kind: e.kind.as_str(),
            level: e.level.as_str(),
            request_id: e.request_id.map(to_f64),
            ticket: e.ticket.map(to_f64),
            fingerprint: e.fingerprint.map(|f| f.hex()),
            reason: e.reason.map(|r| r.as_str().to_owned()),
            detail: e.detail,
        }),
        other => {
            return Err(fail(
                "PHANTOM_EDGE_ERROR",
                &json!({ "message": format!("action not supported by this binding: {other:?}") }),
            ));
        }
    })
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
// Forward objects on the hit path
// ---------------------------------------------------------------------------------------------

/// Direct-mapped caches of the JS values of a `Forward`, keyed by the core's `Arc`s (a cache hit
/// hands out the same `Arc<TokenInfo>` and the same minted header value every time): the frozen
/// claims object with the fingerprint string, and a holder of the header name, value and the
/// frozen `stripHeaders` array. Only immutable (frozen) objects and strings are shared between
/// `Forward`s. Bounded: `SLOTS` entries each; references are released on eviction and when the
/// `Edge` is garbage-collected.
#[derive(Default)]
struct JsCache {
    claims: Vec<Option<ClaimsEntry>>,
    headers: Vec<Option<HeadersEntry>>,
    decisions: Vec<Option<DecisionEntry>>,
}

/// Claims holder `{ token, fingerprint }` of one token.
type ClaimsEntry = (Arc<core::TokenInfo>, core::Fingerprint, ObjectRef<false>);
/// Holder `{ headerName, headerValue, stripHeaders }`, keyed by name, value and strip list.
type HeadersEntry = (Arc<str>, Arc<str>, Arc<[String]>, ObjectRef<false>);
/// Frozen `Forward` without `requestId`, keyed by header value, claims and fingerprint.
type DecisionEntry = (
    Arc<str>,
    Arc<core::TokenInfo>,
    core::Fingerprint,
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
    let mut a = engine(env.create_array(u32::try_from(items.len()).unwrap_or(u32::MAX)))?;
    for (i, x) in items.iter().enumerate() {
        engine(a.set(u32::try_from(i).unwrap_or(u32::MAX), x.as_str()))?;
    }
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
        for (_, _, _, r) in self.decisions.drain(..).flatten() {
            engine(r.unref(env))?;
        }
        Ok(())
    }

    /// A frozen `Forward` without `requestId`, shared by every hit on the same cache entry and
    /// upstream header (for `decide`, whose caller knows the request).
    fn decision<'e>(&mut self, env: &'e Env, f: &core::Forward) -> Result<Object<'e>> {
        if self.decisions.is_empty() {
            self.decisions.resize_with(SLOTS, || None);
        }
        let i = slot(Arc::as_ptr(&f.header_value));
        // One minted value per route and token, so name and strip list come with the value.
        if let Some((value, info, fp, r)) = &self.decisions[i]
            && Arc::ptr_eq(value, &f.header_value)
            && Arc::ptr_eq(info, &f.token)
            && *fp == f.fingerprint
        {
            return engine(r.get_value(env));
        }
        let mut o = self.forward(env, f)?;
        engine(o.delete_named_property("requestId"))?;
        engine(o.freeze())?;
        let r = engine(o.create_ref::<false>())?;
        let entry = (
            Arc::clone(&f.header_value),
            Arc::clone(&f.token),
            f.fingerprint,
            r,
        );
        if let Some((_, _, _, old)) = self.decisions[i].replace(entry) {
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

/// One action as JS: `Forward`s built through the cache, the others as plain objects.
fn to_js<'e>(
    env: &'e Env,
    cache: &mut JsCache,
    action: core::Action,
) -> Result<Either<Object<'e>, Action>> {
    match action {
        core::Action::Forward(f) => cache.forward(env, &f).map(Either::A),
        other => action_to_js(other).map(Either::B),
    }
}

// ---------------------------------------------------------------------------------------------
// Edge
// ---------------------------------------------------------------------------------------------

/// The phantom-token edge state machine. Feed inputs (`handle*`), then drain `pollAction()`
/// until `null` and carry out each action in order; call `handleTimeout()` at `pollTimeout()`.
/// `now` (Unix ms) is optional everywhere and defaults to the current time.
#[napi(custom_finalize)]
#[derive(Debug)]
pub struct Edge {
    /// Shared with the functions `bearerDecider()` made (they outlive nothing: see `fast`).
    state: Rc<RefCell<State>>,
}

/// Everything behind one `Edge`.
#[derive(Debug)]
struct State {
    inner: core::Edge,
    cache: JsCache,
    audit: bool,
    /// Audit kinds not queued (`muteAudits`).
    muted: core::AuditKinds,
    /// The argument strings of the `bearerDecider` function's current call (UTF-16 as read,
    /// UTF-8 as handed to the core), kept to reuse their allocations.
    scratch: (Vec<u16>, Vec<u8>),
}

impl State {
    /// Tells the core which audit kinds not to queue: the muted ones, or all with
    /// `auditActions = false`.
    fn apply_mutes(&mut self) {
        self.inner.mute_audits(if self.audit {
            self.muted
        } else {
            core::AuditKinds::ALL
        });
    }

    /// Right after the core took request `id`: its decision if the core made it at once and
    /// nothing else is queued (see `Edge::decide`); else `None`, everything left queued.
    fn take_decision<'e>(
        &mut self,
        env: &'e Env,
        id: u64,
    ) -> Result<Option<Either<Object<'e>, Action>>> {
        match self.inner.take_decision(id) {
            Some(core::Action::Forward(f)) if f.rewritten_path.is_none() => {
                self.cache.decision(env, &f).map(|o| Some(Either::A(o)))
            }
            Some(a) => to_js(env, &mut self.cache, a).map(Some),
            None => Ok(None),
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

/// The state, exclusively. Every entry point (the methods and the `bearerDecider` function) runs
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

#[napi]
impl Edge {
    /// `seed`: 32 random bytes (the JS wrapper passes `crypto.randomBytes(32)` by default).
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

    /// A client request arrived. `headers` may be limited to `authorization` and `dpop` (the
    /// only ones the core reads), repeated as often as they occur.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn handle_request(
        &mut self,
        id: f64,
        method: String,
        scheme: String,
        authority: String,
        path: String,
        headers: Vec<(String, String)>,
        client_cert_thumbprint: Option<String>,
        now: Option<f64>,
    ) -> Result<()> {
        let h = pairs(&headers);
        let req = core::Request {
            id: to_u64("id", id)?,
            method: &method,
            scheme: &scheme,
            authority: &authority,
            path: &path,
            headers: &h,
            client_cert_thumbprint: client_cert_thumbprint.as_deref(),
        };
        self.state()?.inner.handle_request(now_or(now)?, &req);
        Ok(())
    }

    /// `handleRequest`, then, when the core decided this request at once (a cache hit, or a
    /// rejection that needs no I/O) and nothing else is left to hand out, that decision.
    /// Otherwise `null`, and every action (the decision too) waits for `pollAction` in order.
    /// One call instead of three on the hit path (with `auditActions = false`, since a hit also
    /// queues an audit event). A `Forward` returned here has no `requestId` (the caller knows
    /// it) and is frozen and shared by the hits on one cache entry.
    #[napi(ts_return_type = "Readonly<Omit<Forward, 'requestId'>> | Reject | null")]
    #[allow(clippy::too_many_arguments)]
    pub fn decide<'e>(
        &mut self,
        env: &'e Env,
        id: f64,
        method: String,
        scheme: String,
        authority: String,
        path: String,
        headers: Vec<(String, String)>,
        client_cert_thumbprint: Option<String>,
        now: Option<f64>,
    ) -> Result<Option<Either<Object<'e>, Action>>> {
        self.handle_request(
            id,
            method,
            scheme,
            authority,
            path,
            headers,
            client_cert_thumbprint,
            now,
        )?;
        self.state()?.take_decision(env, to_u64("id", id)?)
    }

    /// A function `(id, method, scheme, authority, path, authorization, now?)` that makes the
    /// same decision as `decide(id, method, scheme, authority, path, authorization == null ? []
    /// : [['authorization', authorization]], null, now)` on this edge, at a fraction of the call
    /// cost (a plain N-API function, no per-call class checks; see `src/fast.rs`). For requests
    /// with one `Authorization` header or none, no `DPoP` header and no client certificate; the
    /// `Edge` wrapper's `decide` uses it for those by itself.
    #[napi(
        ts_return_type = "(id: number, method: string, scheme: string, authority: string, path: string, authorization: string | null | undefined, now?: number | null) => Readonly<Omit<Forward, 'requestId'>> | Reject | null"
    )]
    pub fn bearer_decider<'e>(&self, env: &'e Env) -> Result<Unknown<'e>> {
        fast::make(env, &self.state)
    }

    /// The introspection endpoint answered `ticket`.
    #[napi]
    pub fn handle_introspection_response(
        &mut self,
        ticket: f64,
        status: u16,
        headers: Vec<(String, String)>,
        body: Either<String, Buffer>,
        now: Option<f64>,
    ) -> Result<()> {
        let h = pairs(&headers);
        let resp = core::HttpResponse {
            status,
            headers: &h,
            body: body_bytes(&body),
        };
        let ticket = to_u64("ticket", ticket)?;
        self.state()?
            .inner
            .handle_introspection_response(now_or(now)?, ticket, &resp)
            .map_err(|e| edge_error(&e))
    }

    /// Sending the introspection for `ticket` failed (connection refused, TLS, timeout).
    #[napi]
    pub fn handle_introspection_failure(
        &mut self,
        ticket: f64,
        detail: String,
        now: Option<f64>,
    ) -> Result<()> {
        let ticket = to_u64("ticket", ticket)?;
        self.state()?
            .inner
            .handle_introspection_failure(now_or(now)?, ticket, &detail)
            .map_err(|e| edge_error(&e))
    }

    /// The JWKS fetch answered 200 with `body`.
    #[napi]
    pub fn handle_jwks(&mut self, body: Either<String, Buffer>, now: Option<f64>) -> Result<()> {
        self.state()?
            .inner
            .handle_jwks(now_or(now)?, Ok(body_bytes(&body)));
        Ok(())
    }

    /// The JWKS fetch failed.
    #[napi]
    pub fn handle_jwks_failure(&mut self, detail: String, now: Option<f64>) -> Result<()> {
        self.state()?.inner.handle_jwks(now_or(now)?, Err(&detail));
        Ok(())
    }

    /// The shared store answered `ticket`: `value` found, `null` not found, or `error: true`.
    #[napi]
    pub fn handle_shared_lookup(
        &mut self,
        ticket: f64,
        value: Option<String>,
        error: Option<bool>,
        now: Option<f64>,
    ) -> Result<()> {
        let r = if error.unwrap_or(false) {
            core::LookupResult::Error
        } else {
            value
                .as_deref()
                .map_or(core::LookupResult::NotFound, core::LookupResult::Found)
        };
        let ticket = to_u64("ticket", ticket)?;
        self.state()?
            .inner
            .handle_shared_lookup(now_or(now)?, ticket, r)
            .map_err(|e| edge_error(&e))
    }

    /// A revocation as the JSON selector text (`{"sub": "alice"}`, ...); `origin` is `"local"`
    /// (default; published to other instances) or `"shared"`.
    #[napi]
    pub fn handle_revocation(
        &mut self,
        selector: Either<String, Buffer>,
        #[napi(ts_arg_type = "'local' | 'shared' | undefined | null")] origin: Option<String>,
        now: Option<f64>,
    ) -> Result<()> {
        let origin = match origin.as_deref() {
            None | Some("local") => core::Origin::Local,
            Some("shared") => core::Origin::Shared,
            Some(_) => return Err(invalid_arg("origin", "must be \"local\" or \"shared\"")),
        };
        let now = now_or(now)?;
        let mut state = self.state()?;
        core::Revocation::from_json(body_bytes(&selector))
            .and_then(|r| state.inner.handle_revocation(now, r, origin))
            .map_err(|e| revocation_error(&e))
    }

    /// An RFC 8417 Security Event Token (compact JWT).
    #[napi]
    pub fn handle_security_event(&mut self, set: String, now: Option<f64>) -> Result<()> {
        self.state()?
            .inner
            .handle_security_event(now_or(now)?, &set)
            .map_err(|e| revocation_error(&e))
    }

    /// Whether `authorization` (an `Authorization` header value) carries the `[admin]` bearer
    /// token, for operator-only host routes such as metrics: `null` when no `[admin]` token is
    /// configured.
    #[napi]
    pub fn admin_authorized(&self, authorization: Option<String>) -> Result<Option<bool>> {
        Ok(self
            .state()?
            .inner
            .admin_authorized(authorization.as_deref()))
    }

    /// The revocation route: returns (answer 204) or throws a `PHANTOM_EDGE_REVOCATION` error
    /// with `status` (400/401) and `body`.
    #[napi]
    pub fn handle_admin_revocation(
        &mut self,
        content_type: Option<String>,
        authorization: Option<String>,
        body: Either<String, Buffer>,
        now: Option<f64>,
    ) -> Result<()> {
        self.state()?
            .inner
            .handle_admin_revocation(
                now_or(now)?,
                content_type.as_deref(),
                authorization.as_deref(),
                body_bytes(&body),
            )
            .map_err(|e| revocation_error(&e))
    }

    /// Time passed: expire tickets and sweep bounded sets.
    #[napi]
    pub fn handle_timeout(&mut self, now: Option<f64>) -> Result<()> {
        self.state()?.inner.handle_timeout(now_or(now)?);
        Ok(())
    }

    /// Whether `pollAction` / `drainActions` return `audit` actions (default `true`). A host
    /// that does not log them turns them off to save building the objects; the core's decisions
    /// do not change.
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

    /// Audit kinds (`cache_hit`, `cache_miss`, ...) that the core no longer queues (so
    /// `pollAction` / `drainActions` never see them), e.g. the routine ones a logger at info level
    /// would drop; `[]` queues all again. Throws `PHANTOM_EDGE_INVALID_ARG` for an unknown kind
    /// (and changes nothing).
    #[napi]
    pub fn mute_audits(&mut self, kinds: Vec<String>) -> Result<()> {
        let muted = core::AuditKinds::from_names(kinds.iter().map(String::as_str))
            .map_err(|k| invalid_arg("kinds", &format!("unknown audit kind {k:?}")))?;
        let mut state = self.state()?;
        state.muted = muted;
        state.apply_mutes();
        Ok(())
    }

    /// Audit events below `level` (`'debug'`, `'info'` or `'warn'`) are no longer queued:
    /// `'info'` leaves out the routine per-request kinds (hits, misses, introspections,
    /// forwards), which are then not even built; `'debug'` (the default) queues every level
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

    /// The next action, or `null`. A `Forward`'s `token` (the claims), `stripHeaders` and
    /// `token.scopes` / `token.aud` are frozen and shared by the `Forward`s of one cache entry.
    #[napi(ts_return_type = "Action | null")]
    pub fn poll_action<'e>(&mut self, env: &'e Env) -> Result<Option<Either<Object<'e>, Action>>> {
        let state = &mut *self.state()?;
        let next = state.inner.poll_action();
        next.map(|a| to_js(env, &mut state.cache, a)).transpose()
    }

    /// Every queued action, in order.
    #[napi(ts_return_type = "Array<Action>")]
    pub fn drain_actions<'e>(&mut self, env: &'e Env) -> Result<Vec<Either<Object<'e>, Action>>> {
        let state = &mut *self.state()?;
        state
            .inner
            .drain_actions()
            .into_iter()
            .map(|a| to_js(env, &mut state.cache, a))
            .collect()
    }

    /// When (Unix ms) `handleTimeout` must be called next, or `null`.
    #[napi]
    pub fn poll_timeout(&self) -> Result<Option<f64>> {
        Ok(self.state()?.inner.poll_timeout().map(to_f64))
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
