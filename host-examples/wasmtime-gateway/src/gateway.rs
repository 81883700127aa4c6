//! Edge mode: one phantom-edge component instance decides every request; this module does the
//! I/O it asks for and proxies allowed requests to the upstream.
//!
//! Flow: a client request gets an id and a oneshot waiter, the component's `decide` runs, and
//! the actions that come out are carried out in order: `forward` / `reject` settle a waiter;
//! `introspect` / `fetch-jwks` spawn an HTTP call whose answer goes back into the component,
//! whose new actions are carried out the same way; `audit` goes to the log. A timer task calls
//! `handle-timeout` when `poll-timeout` says. Every failure of the component itself (a trap)
//! makes the gateway refuse everything from then on (503, `/healthz` 503): it fails closed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use phantom_edge_core::{FORWARDING_HEADERS, header_name_as_read};
use tokio::sync::{Notify, oneshot, watch};
use tracing::{Level, debug, error, info, warn};

use crate::config::{GatewayConfig, Upstream};
use crate::engine::{self, Action, Core, EdgeError, Forward, HttpResponse, LookupResult, Reject};
use crate::server;

/// Response bodies: the upstream's stream, or our own bytes.
pub type Body = UnsyncBoxBody<Bytes, BodyError>;
/// Any body error (hyper's, or wasi:http's error code in proxy-component mode).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Largest introspection / JWKS answer read (the core refuses larger ones anyway).
const MAX_AS_BODY: usize = 1024 * 1024;

/// Wall-clock milliseconds: the only clock; the component never reads one.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

enum Decision {
    Forward(Forward),
    Reject(Reject),
}

/// The gateway's shared state.
pub struct Gateway {
    core: Mutex<Option<Core>>,
    waiters: Mutex<HashMap<u64, oneshot::Sender<Decision>>>,
    next_id: AtomicU64,
    http: reqwest::Client,
    upstream_client: Client<HttpConnector, Incoming>,
    upstream_authority: Option<HeaderValue>,
    upstream: Upstream,
    /// The component's `forward-policy`: the header set to each forward's value, and the
    /// inbound headers removed (always including `authorization` and `dpop`).
    forward_header: HeaderName,
    strip_headers: Vec<HeaderName>,
    timer: Notify,
    cfg: GatewayConfig,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

/// The component failed (trapped) or was already poisoned: answer 503.
#[derive(Debug)]
struct Poisoned;

pub(crate) fn json_response(
    status: u16,
    headers: &[(&str, &str)],
    body: String,
) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert("cache-control", HeaderValue::from_static("no-store"));
    for (n, v) in headers {
        if let (Ok(n), Ok(v)) = (HeaderName::try_from(*n), HeaderValue::try_from(*v)) {
            h.insert(n, v);
        }
    }
    resp
}

pub(crate) fn error_response(status: u16, error: &str, description: &str) -> hyper::Response<Body> {
    let body = serde_json::json!({"error": error, "error_description": description}).to_string();
    json_response(status, &[], body)
}

/// How long the admin listener waits for a revocation body.
const ADMIN_BODY_TIMEOUT: Duration = Duration::from_secs(5);

/// Hop-by-hop headers (RFC 9110 §7.6.1; `http2-settings`, connection-specific per RFC 9113
/// §8.2.2) a proxy must not forward, in either direction. The proxy component's list is the
/// same.
fn hop_by_hop(name: &str, connection: &[String]) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "http2-settings"
    ) || connection.iter().any(|c| c == name)
}

fn connection_tokens(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all("connection")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| header_name_as_read(t.trim()).into_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The client for the upstream: hyper-util's pooled HTTP/1.1 client, nodelay, 5 s connect
/// timeout, 30 s idle pool.
pub fn upstream_client() -> Client<HttpConnector, Incoming> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// The headers of the upstream request: the inbound ones without `host`, hop-by-hop headers
/// (and those `Connection` names), forwarding headers, and those `drop` names, each also spelt
/// with `_` for `-` (WSGI/CGI servers read `x_jwt` as `x-jwt`); then `set` (the forwarded JWT
/// header), `host` set to the upstream's authority, and this edge's `x-forwarded-for/-host/
/// -proto`.
pub fn upstream_headers(
    inbound: &HeaderMap,
    drop: impl Fn(&str) -> bool,
    set: Option<(HeaderName, HeaderValue)>,
    upstream_authority: Option<&HeaderValue>,
    remote: SocketAddr,
) -> HeaderMap {
    let connection = connection_tokens(inbound);
    let mut headers = HeaderMap::with_capacity(inbound.len() + 4);
    for (name, value) in inbound {
        let n = name.as_str();
        let read_as = header_name_as_read(n);
        let n = &*read_as;
        if n == "host" || hop_by_hop(n, &connection) || FORWARDING_HEADERS.contains(&n) || drop(n) {
            continue;
        }
        headers.append(name.clone(), value.clone());
    }
    if let Some((n, v)) = set {
        headers.insert(n, v);
    }
    if let Some(a) = upstream_authority {
        headers.insert("host", a.clone());
    }
    if let Some(h) = inbound.get("host") {
        headers.insert("x-forwarded-host", h.clone());
    }
    let mut chain: Vec<&str> = inbound
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let peer = remote.ip().to_string();
    chain.push(&peer);
    if let Ok(v) = HeaderValue::try_from(chain.join(", ")) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
    headers
}

/// Removes hop-by-hop headers (and those `Connection` names) from an upstream response.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let connection = connection_tokens(headers);
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|n| hop_by_hop(n.as_str(), &connection))
        .cloned()
        .collect();
    for n in names {
        headers.remove(n);
    }
}

/// Response headers as the component takes them (non-UTF-8 bytes replaced).
fn wit_headers(headers: &HeaderMap) -> Vec<engine::Header> {
    headers
        .iter()
        .map(|(n, v)| engine::Header {
            name: n.as_str().to_owned(),
            value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
        })
        .collect()
}

/// Every value of one request header, in order (non-UTF-8 bytes replaced).
fn header_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

impl Gateway {
    /// Wraps a freshly built core. The gateway does not pass claims on, so it asks the component
    /// not to serialise them per request; audit events below info level (the routine
    /// per-request kinds, which `audit` would log at debug) are not built unless that level is
    /// on.
    pub fn new(
        mut core: Core,
        cfg: GatewayConfig,
    ) -> Result<Arc<Self>, crate::config::ConfigError> {
        let upstream = cfg.upstream()?;
        let level = if tracing::enabled!(target: "phantom_edge::audit", Level::DEBUG) {
            engine::AuditLevel::Debug
        } else {
            engine::AuditLevel::Info
        };
        let component_err =
            |e: wasmtime::Error| crate::config::ConfigError(format!("component: {e:#}"));
        core.output(false, level).map_err(component_err)?;
        let policy = core.forward_policy().map_err(component_err)?;
        let header = |n: &str| {
            HeaderName::try_from(n).map_err(|_| {
                crate::config::ConfigError(format!("component: invalid header name {n:?}"))
            })
        };
        let forward_header = header(&policy.header_name)?;
        let strip_headers = policy
            .strip_headers
            .iter()
            .map(|n| header(n))
            .collect::<Result<Vec<_>, _>>()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| crate::config::ConfigError(format!("http client: {e}")))?;
        let upstream_authority = HeaderValue::try_from(upstream.authority.as_str()).ok();
        Ok(Arc::new(Self {
            core: Mutex::new(Some(core)),
            waiters: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            http,
            upstream_client: upstream_client(),
            upstream_authority,
            upstream,
            forward_header,
            strip_headers,
            timer: Notify::new(),
            cfg,
        }))
    }

    /// Runs `f` on the component. A trap poisons it for good: the gateway fails closed.
    fn with_core<T>(
        &self,
        f: impl FnOnce(&mut Core) -> wasmtime::Result<T>,
    ) -> Result<T, Poisoned> {
        let mut guard = self
            .core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(core) = guard.as_mut() else {
            return Err(Poisoned);
        };
        match f(core) {
            Ok(v) => Ok(v),
            Err(e) => {
                error!(error = %format!("{e:#}"), "the phantom-edge component trapped; refusing all requests from now on");
                *guard = None;
                Err(Poisoned)
            }
        }
    }

    /// Whether the component is alive.
    pub fn healthy(&self) -> bool {
        self.core
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_some()
    }

    /// Feeds one answer into the component and carries out what follows.
    fn feed(
        self: &Arc<Self>,
        what: &str,
        f: impl FnOnce(&mut Core) -> wasmtime::Result<Result<(), EdgeError>>,
    ) {
        let actions = self.with_core(|c| {
            let r = f(c)?;
            if let Err(e) = r {
                warn!(input = what, error = %engine::describe(&e), "component refused an input");
            }
            c.drain()
        });
        match actions {
            Ok(a) => self.dispatch(a),
            Err(Poisoned) => self.fail_all(),
        }
    }

    /// After a trap: every waiting request gets 503.
    fn fail_all(&self) {
        let waiters: Vec<_> = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .collect();
        for (id, tx) in waiters {
            let _ = tx.send(Decision::Reject(Reject {
                request_id: id,
                status: 503,
                www_authenticate: None,
                retry_after: None,
                body:
                    r#"{"error":"temporarily_unavailable","error_description":"gateway failure"}"#
                        .into(),
                reason: "unavailable".into(),
                fingerprint: None,
            }));
        }
    }

    fn settle(&self, id: u64, d: Decision) {
        let tx = self
            .waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(d);
        }
    }

    /// Carries out the component's actions, in order.
    fn dispatch(self: &Arc<Self>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Forward(f) => self.settle(f.request_id, Decision::Forward(f)),
                Action::Reject(r) => self.settle(r.request_id, Decision::Reject(r)),
                Action::Introspect(i) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.introspect(i).await });
                }
                Action::FetchJwks(url) => {
                    let me = self.clone();
                    tokio::spawn(async move { me.fetch_jwks(url).await });
                }
                Action::SharedLookup(l) => {
                    // phantom-gateway has no shared store yet: split-token lookups fail closed.
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.feed("shared-lookup", |c| {
                            c.shared_lookup(now_ms(), l.ticket, &LookupResult::Error)
                        });
                    });
                }
                Action::SharedPublish(message) => {
                    debug!(%message, "revocation for other instances (no shared channel configured)");
                }
                Action::Audit(e) => audit(&e),
            }
        }
        self.timer.notify_one();
    }

    async fn introspect(self: Arc<Self>, i: engine::Introspect) {
        let ticket = i.ticket;
        let mut req = self
            .http
            .post(&i.url)
            .timeout(Duration::from_millis(i.timeout_ms))
            .body(i.body);
        for h in &i.headers {
            req = req.header(&h.name, &h.value);
        }
        match fetch(req).await {
            Ok((status, headers, body)) => {
                let response = HttpResponse {
                    status,
                    headers,
                    body,
                };
                self.feed("introspection-response", |c| {
                    c.introspection_response(now_ms(), ticket, &response)
                });
            }
            Err(detail) => {
                info!(ticket, fingerprint = %i.fingerprint, %detail, "introspection request failed");
                self.feed("introspection-failure", |c| {
                    c.introspection_failure(now_ms(), ticket, &detail)
                });
            }
        }
    }

    async fn fetch_jwks(self: Arc<Self>, url: String) {
        let req = self
            .http
            .get(&url)
            .header("accept", "application/json")
            .timeout(Duration::from_secs(5));
        let outcome = fetch(req).await;
        self.feed("jwks", |c| {
            let now = now_ms();
            match &outcome {
                Ok((200, _, body)) => c.jwks(now, Ok(body)),
                Ok((status, _, _)) => c.jwks(now, Err(&format!("status {status}"))),
                Err(detail) => c.jwks(now, Err(detail)),
            }
            .map(Ok)
        });
    }

    /// Calls `handle-timeout` whenever `poll-timeout` says; re-armed by every dispatch.
    pub async fn run_timer(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            let next = match self.with_core(Core::poll_timeout) {
                Ok(n) => n,
                Err(Poisoned) => return,
            };
            let now = now_ms();
            match next {
                Some(t) if t <= now => {
                    self.feed("timeout", |c| c.timeout(now_ms()).map(Ok));
                    // never spin: at most one timeout round per millisecond
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                }
                Some(t) => {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(t - now)) => {}
                        () = self.timer.notified() => {}
                        _ = stop.changed() => return,
                    }
                }
                None => {
                    tokio::select! {
                        () = self.timer.notified() => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }

    /// One client request.
    pub async fn handle(
        self: Arc<Self>,
        req: hyper::Request<Incoming>,
        remote: SocketAddr,
    ) -> hyper::Response<Body> {
        let started = std::time::Instant::now();
        let method = req.method().clone();
        let path_only = req.uri().path().to_owned();
        let (resp, fingerprint, reason) = self.decide_and_proxy(req, remote).await;
        // Access log: the path without its query (a query could hold a token), never a token.
        info!(
            target: "phantom_gateway::access",
            %method,
            path = %path_only,
            status = resp.status().as_u16(),
            fingerprint = fingerprint.as_deref().unwrap_or(""),
            reason = reason.as_deref().unwrap_or(""),
            ms = started.elapsed().as_secs_f64() * 1000.0,
        );
        resp
    }

    async fn decide_and_proxy(
        self: &Arc<Self>,
        req: hyper::Request<Incoming>,
        remote: SocketAddr,
    ) -> (hyper::Response<Body>, Option<String>, Option<String>) {
        // One deadline for the whole request: the decision, then the upstream's answer headers.
        let deadline =
            tokio::time::Instant::now() + Duration::from_millis(self.cfg.request_timeout);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = to_wit_request(id, &req);
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, tx);
        match self.with_core(|c| c.decide(now_ms(), &request)) {
            Ok(actions) => self.dispatch(actions),
            Err(Poisoned) => {
                self.remove_waiter(id);
                self.fail_all();
                return (
                    error_response(503, "temporarily_unavailable", "gateway failure"),
                    None,
                    Some("unavailable".into()),
                );
            }
        }
        drop(request);
        let Ok(Ok(decision)) = tokio::time::timeout_at(deadline, rx).await else {
            self.remove_waiter(id);
            return (
                error_response(504, "temporarily_unavailable", "no decision in time"),
                None,
                Some("timeout".into()),
            );
        };
        match decision {
            Decision::Reject(r) => {
                let mut headers = Vec::new();
                if let Some(w) = &r.www_authenticate {
                    headers.push(("www-authenticate", w.as_str()));
                }
                let retry = r.retry_after.map(|s| s.to_string());
                if let Some(s) = &retry {
                    headers.push(("retry-after", s.as_str()));
                }
                let resp = json_response(r.status, &headers, r.body.clone());
                (resp, r.fingerprint, Some(r.reason))
            }
            Decision::Forward(f) => {
                let fp = f.fingerprint.clone();
                (self.proxy(req, f, remote, deadline).await, Some(fp), None)
            }
        }
    }

    fn remove_waiter(&self, id: u64) {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
    }

    async fn proxy(
        &self,
        req: hyper::Request<Incoming>,
        f: Forward,
        remote: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> hyper::Response<Body> {
        let (parts, body) = req.into_parts();
        let path = f.rewritten_path.clone().unwrap_or_else(|| {
            parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned())
        });
        let uri = format!("{}{}{}", self.upstream.origin, self.upstream.prefix, path);
        let Ok(uri) = uri.parse::<hyper::Uri>() else {
            return error_response(400, "invalid_request", "bad request target");
        };
        let Ok(value) = HeaderValue::try_from(f.header_value.as_str()) else {
            return error_response(502, "bad_gateway", "invalid forwarded header");
        };
        let headers = upstream_headers(
            &parts.headers,
            |n| n == self.forward_header.as_str() || self.strip_headers.iter().any(|s| s == n),
            Some((self.forward_header.clone(), value)),
            self.upstream_authority.as_ref(),
            remote,
        );
        let mut up = hyper::Request::new(body);
        *up.method_mut() = parts.method;
        *up.uri_mut() = uri;
        *up.headers_mut() = headers;
        match tokio::time::timeout_at(deadline, self.upstream_client.request(up)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
                hyper::Response::from_parts(parts, body.map_err(BodyError::from).boxed_unsync())
            }
            Ok(Err(e)) => {
                warn!(error = %e, "upstream request failed");
                error_response(502, "bad_gateway", "upstream unreachable")
            }
            Err(_) => error_response(504, "gateway_timeout", "upstream did not answer in time"),
        }
    }

    /// The admin listener's routes: `GET /healthz`, `GET /metrics`, `POST /revocations`, and
    /// `GET /jwks` (the edge's public keys, for upstreams verifying the JWTs it mints).
    pub async fn admin(self: Arc<Self>, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
        let path = req.uri().path().to_owned();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/healthz") => {
                if self.healthy() {
                    json_response(200, &[], r#"{"status":"ok"}"#.into())
                } else {
                    json_response(503, &[], r#"{"status":"failed"}"#.into())
                }
            }
            (&Method::GET, "/metrics") => match self.with_core(Core::prometheus) {
                Ok(text) => {
                    let mut resp = json_response(200, &[], String::new());
                    *resp.body_mut() = Full::new(Bytes::from(text))
                        .map_err(|never: Infallible| match never {})
                        .boxed_unsync();
                    resp.headers_mut().insert(
                        "content-type",
                        HeaderValue::from_static("text/plain; version=0.0.4"),
                    );
                    resp
                }
                Err(Poisoned) => error_response(503, "temporarily_unavailable", "gateway failure"),
            },
            (&Method::POST, "/revocations") => self.revoke(req).await,
            (&Method::GET, "/jwks") => match self.with_core(Core::assertion_jwks) {
                Ok(Some(jwks)) => json_response(200, &[], jwks),
                Ok(None) => error_response(404, "not_found", "this edge does not mint JWTs"),
                Err(Poisoned) => error_response(503, "temporarily_unavailable", "gateway failure"),
            },
            (_, "/healthz" | "/metrics" | "/revocations" | "/jwks") => {
                error_response(405, "method_not_allowed", "method not allowed")
            }
            _ => error_response(404, "not_found", "no such admin route"),
        }
    }

    async fn revoke(self: &Arc<Self>, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type");
        let authorization = header("authorization");
        // The body is read before anything authenticates it (a SET is its own credential), so
        // a client sending it slowly holds one of the admin listener's connections: at most
        // ADMIN_BODY_TIMEOUT, not until it stops.
        let read = Limited::new(req.into_body(), self.cfg.max_admin_body).collect();
        let body = match tokio::time::timeout(ADMIN_BODY_TIMEOUT, read).await {
            Ok(Ok(b)) => b.to_bytes(),
            Ok(Err(_)) => return error_response(413, "invalid_request", "body too large"),
            Err(_) => {
                let mut resp = error_response(408, "invalid_request", "body not received in time");
                resp.headers_mut()
                    .insert("connection", HeaderValue::from_static("close"));
                return resp;
            }
        };
        let outcome = self.with_core(|c| {
            let r = c.admin_revocation(
                now_ms(),
                content_type.as_deref(),
                authorization.as_deref(),
                &body,
            )?;
            let actions = c.drain()?;
            Ok((r, actions))
        });
        match outcome {
            Ok((r, actions)) => {
                self.dispatch(actions);
                match r {
                    Ok(()) => {
                        info!("revocation accepted");
                        let mut resp = json_response(204, &[], String::new());
                        resp.headers_mut().remove("content-type");
                        resp
                    }
                    Err(EdgeError::Revocation(e)) => {
                        info!(status = e.status, reason = %e.message, "revocation refused");
                        let mut headers = Vec::new();
                        if e.status == 401 {
                            headers
                                .push(("www-authenticate", "Bearer realm=\"phantom-edge-admin\""));
                        }
                        json_response(e.status, &headers, e.body)
                    }
                    Err(other) => error_response(400, "invalid_request", &engine::describe(&other)),
                }
            }
            Err(Poisoned) => error_response(503, "temporarily_unavailable", "gateway failure"),
        }
    }
}

/// Logs an audit event at the level the core gives its kind.
fn audit(e: &engine::AuditEvent) {
    match e.level {
        engine::AuditLevel::Debug => debug!(target: "phantom_edge::audit", event = %e.json),
        engine::AuditLevel::Info => info!(target: "phantom_edge::audit", event = %e.json),
        engine::AuditLevel::Warn => warn!(target: "phantom_edge::audit", event = %e.json),
    }
}

/// Sends a request to the authorization server and reads the whole (bounded) answer.
async fn fetch(
    req: reqwest::RequestBuilder,
) -> Result<(u16, Vec<engine::Header>, Vec<u8>), String> {
    let mut resp = req.send().await.map_err(describe_reqwest)?;
    let status = resp.status().as_u16();
    let headers = wit_headers(resp.headers());
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(describe_reqwest)? {
        if body.len() + chunk.len() > MAX_AS_BODY {
            return Err("answer too large".into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, headers, body))
}

/// Token-free transport error (the request body, which holds the token, is never part of it).
fn describe_reqwest(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    format!("{kind}: {}", e.without_url())
}

fn to_wit_request(id: u64, req: &hyper::Request<Incoming>) -> engine::Request {
    let authority = req
        .headers()
        .get("host")
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .to_owned();
    engine::Request {
        id,
        method: req.method().as_str().into(),
        scheme: engine::Scheme::Http,
        authority,
        path: req
            .uri()
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        authorization: header_values(req.headers(), AUTHORIZATION.as_str()),
        dpop: header_values(req.headers(), "dpop"),
        client_cert_thumbprint: None,
    }
}

/// Serves edge mode until `stop` flips: the client listener, the admin listener and the timer.
pub async fn serve(
    gateway: Arc<Gateway>,
    stop: watch::Receiver<bool>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let cfg = gateway.cfg.clone();
    let grace = Duration::from_millis(cfg.shutdown_grace);
    let main = server::bind(cfg.listen).await?;
    let admin = match cfg.admin_listen {
        Some(a) => Some(server::bind(a).await?),
        None => None,
    };
    let main_addr = main.local_addr()?;
    let admin_addr = admin.as_ref().map(|l| l.local_addr()).transpose()?;
    info!(listen = %main_addr, admin = ?admin_addr, upstream = %cfg.upstream, "phantom-gateway ready (edge mode)");
    server::announce(main_addr, admin_addr);
    let timer = tokio::spawn(gateway.clone().run_timer(stop.clone()));
    let g = gateway.clone();
    let main_task = tokio::spawn(server::run(
        main,
        stop.clone(),
        grace,
        cfg.max_connections,
        move |req, remote| {
            let g = g.clone();
            async move { g.handle(req, remote).await }
        },
    ));
    let admin_task = admin.map(|l| {
        let g = gateway.clone();
        tokio::spawn(server::run(
            l,
            stop.clone(),
            grace,
            64,
            move |req, _remote| {
                let g = g.clone();
                async move { g.admin(req).await }
            },
        ))
    });
    let _ = main_task.await;
    if let Some(t) = admin_task {
        let _ = t.await;
    }
    timer.abort();
    Ok(())
}
