//! Edge mode: one phantom-edge component instance decides every request; this module carries
//! out the steps it returns and proxies allowed requests to the upstream.
//!
//! The loop: a client request gets an id and a oneshot waiter, and goes in with
//! `handle-request`. Every `handle-*` returns a step, carried out the same way: its decisions
//! settle waiters, its fetches are sent ([`AsClient`]) and whatever came back goes in with
//! `handle-fetch`, its audits go to the log, and the timer is re-armed to its `wake-at`. A
//! forward's upstream headers are the component's `upstream-headers`; the upstream's answer
//! loses its `hop-by-hop-headers`. Every failure of the component itself (a trap) makes the
//! gateway refuse everything from then on (503, `/healthz` 503): it fails closed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HeaderMap};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::{oneshot, watch};
use tracing::{Level, debug, error, info, warn};

use crate::as_client::AsClient;
use crate::config::{GatewayConfig, Upstream};
use crate::engine::{
    self, AdminAnswer, AdminRequest, Core, Decision, EdgeError, Fetch, FetchResult, Forward, Hop,
    LookupResult, ProxyHop, Reject, Step,
};
use crate::http::{
    Body, BodyError, apply_upstream_headers, error_response, header_list, json_response,
    upstream_client, without,
};
use crate::server;

/// Wall-clock milliseconds: the only clock; the component never reads one.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The gateway's shared state.
pub struct Gateway {
    core: Mutex<Option<Core>>,
    waiters: Mutex<HashMap<u64, oneshot::Sender<Decision>>>,
    next_id: AtomicU64,
    as_client: AsClient,
    upstream_client: Client<HttpConnector, Incoming>,
    upstream: Upstream,
    /// The last step's `wake-at`: when the timer calls `handle-timeout` next.
    wake_at: watch::Sender<Option<u64>>,
    /// What `create` queued (the initial JWKS fetch), carried out when serving starts.
    initial: Mutex<Option<Step>>,
    cfg: GatewayConfig,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

/// The component failed (trapped) or was already poisoned: answer 503.
#[derive(Debug)]
pub(crate) struct Poisoned;

/// Every answer the gateway writes for a failed component.
fn gateway_failure() -> hyper::Response<Body> {
    error_response(503, "temporarily_unavailable", "gateway failure")
}

impl Gateway {
    /// Wraps a freshly built core, keeping its initial step (the JWKS fetch) for [`serve`] to
    /// carry out. The gateway does not pass claims on, so it asks the component not to
    /// serialise them per request; audit events below info level (the routine per-request
    /// kinds, which `audit` would log at debug) are not built unless that level is on.
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
        let first = core.initial_step().map_err(component_err)?;
        let as_client = AsClient::new().map_err(crate::config::ConfigError)?;
        let gateway = Arc::new(Self {
            core: Mutex::new(Some(core)),
            waiters: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            as_client,
            upstream_client: upstream_client(),
            upstream,
            wake_at: watch::Sender::new(first.wake_at),
            initial: Mutex::new(Some(first)),
            cfg,
        });
        Ok(gateway)
    }

    /// Runs `f` on the component. A trap poisons it for good: the gateway fails closed.
    fn with_core<T>(
        &self,
        f: impl FnOnce(&mut Core) -> wasmtime::Result<T>,
    ) -> Result<T, Poisoned> {
        let mut guard = lock(&self.core);
        let Some(core) = guard.as_mut() else {
            return Err(Poisoned);
        };
        match f(core) {
            Ok(v) => Ok(v),
            Err(e) => {
                error!(error = %format!("{e:#}"), "the phantom-edge component trapped; refusing all requests from now on");
                *guard = None;
                drop(guard);
                self.fail_all();
                Err(Poisoned)
            }
        }
    }

    /// Runs one input that returns a step, and re-arms the timer to the step's `wake-at` while
    /// still holding the component (so the last step's `wake-at` is the one that stands).
    fn input<T>(
        &self,
        f: impl FnOnce(&mut Core) -> wasmtime::Result<T>,
        step: impl Fn(&T) -> Option<&Step>,
    ) -> Result<T, Poisoned> {
        self.with_core(|c| {
            let out = f(c)?;
            if let Some(s) = step(&out) {
                self.wake_at
                    .send_if_modified(|w| std::mem::replace(w, s.wake_at) != s.wake_at);
            }
            Ok(out)
        })
    }

    /// Feeds an answer (a fetch's, a lookup's) and carries out the step it returns.
    fn feed(
        self: &Arc<Self>,
        what: &str,
        f: impl FnOnce(&mut Core) -> wasmtime::Result<Result<Step, EdgeError>>,
    ) {
        match self.input(f, |r| r.as_ref().ok()) {
            Ok(Ok(step)) => self.carry_out(step),
            Ok(Err(e)) => {
                warn!(input = what, error = %engine::describe(&e), "component refused an input");
            }
            Err(Poisoned) => {}
        }
    }

    /// Carries out a step: answers its decisions, starts its fetches and lookups, logs its
    /// audits (its `wake-at` was taken by [`Self::input`]).
    fn carry_out(self: &Arc<Self>, step: Step) {
        for e in &step.audits {
            audit(e);
        }
        for d in step.decisions {
            let id = match &d {
                Decision::Forward(f) => f.request_id,
                Decision::Reject(r) => r.request_id,
            };
            if let Some(tx) = lock(&self.waiters).remove(&id) {
                let _ = tx.send(d);
            }
        }
        for f in step.fetches {
            let me = self.clone();
            tokio::spawn(async move { me.fetch(f).await });
        }
        for l in step.lookups {
            // phantom-gateway has no shared store yet: split-token lookups fail closed.
            let me = self.clone();
            tokio::spawn(async move {
                me.feed("shared-lookup", |c| {
                    c.shared_lookup(now_ms(), l.ticket, &LookupResult::Error)
                });
            });
        }
        for message in step.publishes {
            debug!(%message, "revocation for other instances (no shared channel configured)");
        }
    }

    /// One fetch (an introspection or a JWKS fetch): whatever came back goes to `handle-fetch`.
    async fn fetch(self: Arc<Self>, f: Fetch) {
        let (ticket, kind, fingerprint) = (f.ticket, f.kind, f.fingerprint.clone());
        let result = self.as_client.fetch(f).await;
        if let FetchResult::Failure(detail) = &result {
            info!(ticket, kind = ?kind, fingerprint = fingerprint.as_deref().unwrap_or(""), %detail, "fetch failed");
        }
        self.feed("fetch", |c| c.fetch(now_ms(), ticket, &result));
    }

    /// After a trap: every waiting request gets 503.
    fn fail_all(&self) {
        let waiters: Vec<_> = lock(&self.waiters).drain().collect();
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

    /// Whether the component is alive.
    pub fn healthy(&self) -> bool {
        lock(&self.core).is_some()
    }

    /// An operator route: the component's answer, after carrying out the step it produced.
    pub(crate) fn admin_request(
        self: &Arc<Self>,
        request: &AdminRequest,
    ) -> Result<AdminAnswer, Poisoned> {
        let (answer, step) = self.input(|c| c.admin(now_ms(), request), |(_, s)| Some(s))?;
        self.carry_out(step);
        Ok(answer)
    }

    /// Calls `handle-timeout` at the last step's `wake-at`.
    pub async fn run_timer(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut wake = self.wake_at.subscribe();
        loop {
            let next = *wake.borrow_and_update();
            let due = async {
                match next {
                    Some(t) => {
                        tokio::time::sleep(Duration::from_millis(t.saturating_sub(now_ms()))).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = due => {
                    match self.input(|c| c.timeout(now_ms()), whole) {
                        Ok(step) => self.carry_out(step),
                        Err(Poisoned) => return,
                    }
                    // never spin: at most one timeout round per millisecond
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                _ = wake.changed() => {}
                _ = stop.changed() => return,
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
        lock(&self.waiters).insert(id, tx);
        match self.input(|c| c.request(now_ms(), &request), whole) {
            Ok(step) => self.carry_out(step),
            Err(Poisoned) => {
                lock(&self.waiters).remove(&id);
                return (gateway_failure(), None, Some("unavailable".into()));
            }
        }
        drop(request);
        let Ok(Ok(decision)) = tokio::time::timeout_at(deadline, rx).await else {
            lock(&self.waiters).remove(&id);
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

    /// Sends a forwarded request upstream with the component's headers, and its answer back
    /// without the hop-by-hop ones. A decision the gateway cannot apply fails closed (503).
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
        let inbound = header_list(&parts.headers);
        let hop = Hop::Proxy(ProxyHop {
            peer: Some(remote.ip().to_string()),
            proto: "http".into(),
            upstream_authority: Some(self.upstream.authority.clone()),
        });
        let Ok(plan) = self.with_core(|c| c.upstream_headers(&inbound, &f.header_value, &hop))
        else {
            return gateway_failure();
        };
        let Some(headers) = apply_upstream_headers(&parts.headers, &plan) else {
            return error_response(503, "temporarily_unavailable", "invalid forwarded header");
        };
        let mut up = hyper::Request::new(body);
        *up.method_mut() = parts.method;
        *up.uri_mut() = uri;
        *up.headers_mut() = headers;
        match tokio::time::timeout_at(deadline, self.upstream_client.request(up)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                parts.headers = without_hop_by_hop(&parts.headers);
                hyper::Response::from_parts(parts, body.map_err(BodyError::from).boxed_unsync())
            }
            Ok(Err(e)) => {
                warn!(error = %e, "upstream request failed");
                error_response(502, "bad_gateway", "upstream unreachable")
            }
            Err(_) => error_response(504, "gateway_timeout", "upstream did not answer in time"),
        }
    }
}

/// An upstream answer's headers without its hop-by-hop ones: the core's `hop_by_hop_headers`,
/// called natively (the same code as the component's `hop-by-hop-headers`, without a component
/// call and the core's lock on every forwarded answer).
fn without_hop_by_hop(headers: &HeaderMap) -> HeaderMap {
    let text: Vec<(&str, std::borrow::Cow<'_, str>)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let pairs: Vec<(&str, &str)> = text.iter().map(|(n, v)| (*n, &**v)).collect();
    let drop: Vec<u32> = phantom_edge_core::hop_by_hop_headers(&pairs)
        .into_iter()
        .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
        .collect();
    without(headers, &drop)
}

/// The step of an input that returns a bare step.
fn whole(step: &Step) -> Option<&Step> {
    Some(step)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Logs an audit event at the level the core gives its kind.
fn audit(e: &engine::AuditEvent) {
    match e.level {
        engine::AuditLevel::Debug => debug!(target: "phantom_edge::audit", event = %e.json),
        engine::AuditLevel::Info => info!(target: "phantom_edge::audit", event = %e.json),
        engine::AuditLevel::Warn => warn!(target: "phantom_edge::audit", event = %e.json),
    }
}

/// Every value of one request header, in order (non-UTF-8 bytes replaced).
fn header_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
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
    let initial = lock(&gateway.initial).take();
    if let Some(step) = initial {
        gateway.carry_out(step);
    }
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
