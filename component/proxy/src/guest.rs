//! The `wasi:http/incoming-handler` export.
//!
//! The core lives in a per-instance global: a host that reuses an instance (or a future
//! wasi:http with instance reuse) keeps the cache across requests, while `wasmtime serve`'s
//! instance-per-request gives a fresh edge each time (every request is introspected; nothing
//! outlives the request, so revocation at the authorization server is honoured at once).

use std::cell::RefCell;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phantom_edge_core as core;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingRequest, IncomingResponse, Method, OutgoingBody,
    OutgoingRequest, OutgoingResponse, RequestOptions, ResponseOutparam, Scheme,
};
use wasip2::io::streams::StreamError;

wasip2::http::proxy::export!(Proxy);

struct Proxy;

/// Largest request or response body the proxy buffers (bytes).
const MAX_BODY: usize = 16 * 1024 * 1024;
/// Largest revocation body (a JSON selector or a SET).
const MAX_ADMIN_BODY: usize = 64 * 1024;
/// The revocation route unless `[middleware] revocation_path` says otherwise (as in the Python
/// and Node middleware).
const DEFAULT_REVOCATION_PATH: &str = "/_phantom/revocations";
/// Upstream timeouts: connect, first byte.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(5);
const UPSTREAM_FIRST_BYTE: Duration = Duration::from_secs(30);
/// Headers a proxy must not pass on (RFC 9110 §7.6.1), plus those wasi:http refuses.
const HOP_BY_HOP: [&str; 11] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
];

struct State {
    edge: core::Edge,
    upstream: Url,
    /// `POST` here takes a revocation (`None`: the route is off).
    revocation_path: Option<String>,
}

thread_local! {
    static STATE: RefCell<Option<State>> = const { RefCell::new(None) };
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// An absolute http(s) URL, split the way wasi:http wants it.
#[derive(Clone, Debug)]
struct Url {
    https: bool,
    authority: String,
    path: String,
}

impl Url {
    fn parse(url: &str) -> Result<Self, String> {
        let (https, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(format!("not an http(s) URL: {url}"));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.is_empty() {
            return Err(format!("no host in URL: {url}"));
        }
        Ok(Self {
            https,
            authority: authority.to_owned(),
            path: path.trim_end_matches('/').to_owned(),
        })
    }

    fn scheme(&self) -> Scheme {
        if self.https {
            Scheme::Https
        } else {
            Scheme::Http
        }
    }
}

fn load() -> Result<State, String> {
    let text = std::env::var("PHANTOM_EDGE_CONFIG")
        .map_err(|_| "PHANTOM_EDGE_CONFIG is not set (the TOML config text)".to_owned())?;
    let raw = core::RawConfig::from_toml(&text).map_err(|e| e.to_string())?;
    let upstream = raw
        .gateway
        .as_ref()
        .and_then(|g| g.get("upstream"))
        .and_then(|u| u.as_str())
        .ok_or_else(|| "gateway.upstream: missing (the upstream base URL)".to_owned())?;
    let upstream = Url::parse(upstream).map_err(|e| format!("gateway.upstream: {e}"))?;
    let revocation_path = match raw
        .middleware
        .as_ref()
        .and_then(|m| m.get("revocation_path"))
    {
        None => Some(DEFAULT_REVOCATION_PATH.to_owned()),
        Some(serde_json::Value::String(p)) if p.is_empty() => None,
        Some(serde_json::Value::String(p)) if p.starts_with('/') => Some(p.clone()),
        Some(_) => {
            return Err("middleware.revocation_path: a path starting with /, or \"\"".into());
        }
    };
    let config = raw
        .resolve(&|name| std::env::var(name).ok())
        .map_err(|e| e.to_string())?;
    let audit_level = match std::env::var("PHANTOM_EDGE_AUDIT_LEVEL") {
        Err(_) => core::AuditLevel::Info,
        Ok(name) => core::AuditLevel::from_name(&name).ok_or_else(|| {
            format!("PHANTOM_EDGE_AUDIT_LEVEL: {name:?} is not debug, info or warn")
        })?,
    };
    let seed: [u8; 32] = wasip2::random::random::get_random_bytes(32)
        .try_into()
        .map_err(|_| "wasi:random returned the wrong length".to_owned())?;
    let mut edge = core::Edge::new(config, seed, now_ms());
    edge.set_audit_level(audit_level);
    Ok(State {
        edge,
        upstream,
        revocation_path,
    })
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) {
    let fields = Fields::from_list(headers).unwrap_or_else(|_| {
        // One header the host refuses (forbidden or malformed) must not cost the others.
        let f = Fields::new();
        for (name, value) in headers {
            let _ = f.append(name, value);
        }
        f
    });
    let resp = OutgoingResponse::new(fields);
    let _ = resp.set_status_code(status);
    let Ok(out_body) = resp.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(resp));
    if write_body(&out_body, body).is_ok() {
        let _ = OutgoingBody::finish(out_body, None);
    }
}

fn json_error(out: ResponseOutparam, status: u16, error: &str, description: &str) {
    let body = serde_json::json!({ "error": error, "error_description": description });
    respond(
        out,
        status,
        &[("content-type".into(), b"application/json".to_vec())],
        body.to_string().as_bytes(),
    );
}

fn write_body(body: &OutgoingBody, bytes: &[u8]) -> Result<(), ()> {
    let stream = body.write()?;
    for chunk in bytes.chunks(4096) {
        stream.blocking_write_and_flush(chunk).map_err(|_| ())?;
    }
    Ok(())
}

fn read_body(body: IncomingBody, limit: usize) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let stream = body.stream().map_err(|_| "body already taken".to_owned())?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() > limit {
                        return Err("body too large".into());
                    }
                }
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => return Err(e.to_debug_string()),
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// The whole body of an incoming request, refused beyond `limit` bytes.
fn request_body(request: IncomingRequest, limit: usize) -> Result<Vec<u8>, String> {
    request
        .consume()
        .map_err(|()| "body".to_owned())
        .and_then(|b| read_body(b, limit))
}

struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Sends one request and waits for the whole answer.
fn send(
    method: &Method,
    url: &Url,
    path_with_query: &str,
    headers: &[(String, Vec<u8>)],
    body: &[u8],
    connect: Duration,
    first_byte: Duration,
) -> Result<Answer, String> {
    let fields = Fields::from_list(headers).map_err(|e| format!("headers: {e:?}"))?;
    let req = OutgoingRequest::new(fields);
    let _ = req.set_method(method);
    let _ = req.set_scheme(Some(&url.scheme()));
    let _ = req.set_authority(Some(&url.authority));
    let _ = req.set_path_with_query(Some(path_with_query));
    let out_body = req.body().map_err(|_| "request body".to_owned())?;
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(connect.as_nanos() as u64));
    let _ = options.set_first_byte_timeout(Some(first_byte.as_nanos() as u64));
    let _ = options.set_between_bytes_timeout(Some(first_byte.as_nanos() as u64));
    let future = outgoing_handler::handle(req, Some(options)).map_err(describe)?;
    write_body(&out_body, body).map_err(|()| "writing the request body failed".to_owned())?;
    OutgoingBody::finish(out_body, None).map_err(describe)?;
    future.subscribe().block();
    let resp: IncomingResponse = match future.get() {
        Some(Ok(Ok(r))) => r,
        Some(Ok(Err(e))) => return Err(describe(e)),
        Some(Err(())) | None => return Err("no response".into()),
    };
    let status = resp.status();
    let headers = resp.headers().entries();
    let body = read_body(
        resp.consume().map_err(|_| "response body".to_owned())?,
        MAX_BODY,
    )?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

fn describe(e: ErrorCode) -> String {
    // Token-free: the error code names the transport failure, never a body.
    format!("{e:?}")
}

fn header_pairs(list: &[(String, String)]) -> Vec<(String, Vec<u8>)> {
    list.iter()
        .map(|(n, v)| (n.clone(), v.as_bytes().to_vec()))
        .collect()
}

/// One JSON line on stderr (with its `level`); events below `PHANTOM_EDGE_AUDIT_LEVEL`
/// (default `info`) are not even built.
fn log(event: &core::AuditEvent) {
    eprintln!("{}", event.to_json());
}

/// Carries out the core's I/O until it decides the request `id`.
fn decide(state: &mut State, id: u64) -> Result<Decision, String> {
    loop {
        let Some(action) = state.edge.poll_action() else {
            return Err("the core queued no decision".into());
        };
        match action {
            core::Action::Forward(f) if f.request_id == id => return Ok(Decision::Forward(f)),
            core::Action::Reject(r) if r.request_id == id => return Ok(Decision::Reject(r)),
            core::Action::Forward(_) | core::Action::Reject(_) => {}
            core::Action::Introspect(i) => {
                let url = Url::parse(&i.url)?;
                let timeout = Duration::from_millis(i.timeout_ms);
                let answer = send(
                    &Method::Post,
                    &url,
                    if url.path.is_empty() { "/" } else { &url.path },
                    &header_pairs(&i.headers),
                    i.body.as_bytes(),
                    timeout,
                    timeout,
                );
                let now = now_ms();
                let fed = match answer {
                    Ok(a) => {
                        let hs: Vec<(String, String)> = a
                            .headers
                            .iter()
                            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
                            .collect();
                        let pairs: Vec<(&str, &str)> =
                            hs.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
                        let resp = core::HttpResponse {
                            status: a.status,
                            headers: &pairs,
                            body: &a.body,
                        };
                        state
                            .edge
                            .handle_introspection_response(now, i.ticket, &resp)
                    }
                    Err(e) => state.edge.handle_introspection_failure(now, i.ticket, &e),
                };
                fed.map_err(|e| e.to_string())?;
            }
            core::Action::FetchJwks(j) => {
                let url = Url::parse(&j.url)?;
                let t = Duration::from_millis(state.edge.config().timeout_ms());
                let answer = send(
                    &Method::Get,
                    &url,
                    if url.path.is_empty() { "/" } else { &url.path },
                    &[("accept".into(), b"application/json".to_vec())],
                    &[],
                    t,
                    t,
                );
                let now = now_ms();
                match answer {
                    Ok(a) if a.status == 200 => state.edge.handle_jwks(now, Ok(&a.body)),
                    Ok(a) => state
                        .edge
                        .handle_jwks(now, Err(&format!("status {}", a.status))),
                    Err(e) => state.edge.handle_jwks(now, Err(&e)),
                }
            }
            core::Action::SharedLookup(l) => {
                // No shared store in this component: split-token mode fails closed.
                state
                    .edge
                    .handle_shared_lookup(now_ms(), l.ticket, core::LookupResult::Error)
                    .map_err(|e| e.to_string())?;
            }
            core::Action::SharedPublish(_) => {}
            core::Action::Audit(e) => log(&e),
            _ => {}
        }
        if let Some(t) = state.edge.poll_timeout() {
            let now = now_ms();
            if t <= now {
                state.edge.handle_timeout(now);
            }
        }
    }
}

enum Decision {
    Forward(core::Forward),
    Reject(core::Reject),
}

impl wasip2::exports::http::incoming_handler::Guest for Proxy {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        STATE.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.is_none() {
                match load() {
                    Ok(s) => *slot = Some(s),
                    Err(e) => {
                        eprintln!("{}", serde_json::json!({"level": "error", "config": e}));
                        return json_error(out, 500, "server_error", "gateway misconfigured");
                    }
                }
            }
            let state = slot.as_mut().expect("loaded above");
            serve(state, request, out);
        });
    }
}

/// The revocation route: a JSON selector with the `[admin]` bearer token, or an RFC 8417 SET;
/// every check is the core's. It reaches this instance's cache only, which is the whole cache
/// under hosts that reuse the instance (`jco serve`); under instance-per-request hosts there is
/// no cache to revoke from, and revocation at the authorization server already applies at once.
fn revoke(
    state: &mut State,
    request: IncomingRequest,
    headers: &[(String, String)],
    out: ResponseOutparam,
) {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let Ok(body) = request_body(request, MAX_ADMIN_BODY) else {
        return json_error(out, 413, "invalid_request", "revocation body too large");
    };
    match state.edge.handle_admin_revocation(
        now_ms(),
        header("content-type"),
        header("authorization"),
        &body,
    ) {
        Ok(()) => respond(out, 204, &[], b""),
        Err(e) => respond(
            out,
            e.status(),
            &[("content-type".into(), b"application/json".to_vec())],
            e.body().as_bytes(),
        ),
    }
}

fn method_str(m: &Method) -> &str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
        Method::Other(s) => s,
    }
}

fn serve(state: &mut State, request: IncomingRequest, out: ResponseOutparam) {
    let method = request.method();
    let path = request.path_with_query().unwrap_or_else(|| "/".into());
    let authority = request.authority().unwrap_or_default();
    let scheme = match request.scheme() {
        Some(Scheme::Https) => "https",
        _ => "http",
    };
    let raw_headers = request.headers().entries();
    let headers: Vec<(String, String)> = raw_headers
        .iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    if matches!(method, Method::Post) && state.revocation_path.as_deref() == path.split('?').next()
    {
        return revoke(state, request, &headers, out);
    }
    let id = 1;
    let req = core::Request {
        id,
        method: method_str(&method),
        scheme,
        authority: &authority,
        path: &path,
        headers: &pairs,
        client_cert_thumbprint: None,
    };
    state.edge.handle_request(now_ms(), &req);
    let forward = match decide(state, id) {
        Ok(Decision::Forward(f)) => f,
        Ok(Decision::Reject(r)) => {
            let mut hs = vec![("content-type".to_owned(), b"application/json".to_vec())];
            if let Some(w) = &r.www_authenticate {
                hs.push(("www-authenticate".into(), w.as_bytes().to_vec()));
            }
            return respond(out, r.status, &hs, r.body.as_bytes());
        }
        Err(e) => {
            eprintln!("{}", serde_json::json!({"level": "error", "error": e}));
            return json_error(out, 503, "temporarily_unavailable", "gateway error");
        }
    };
    let Ok(body) = request_body(request, MAX_BODY) else {
        return json_error(out, 413, "invalid_request", "request body too large");
    };
    let mut upstream_headers: Vec<(String, Vec<u8>)> = raw_headers
        .into_iter()
        .filter(|(n, _)| {
            let n = n.to_ascii_lowercase();
            !HOP_BY_HOP.contains(&n.as_str())
                && !forward.strip_headers.contains(&n)
                && n != *forward.header_name
        })
        .collect();
    upstream_headers.push((
        forward.header_name.to_string(),
        forward.header_value.as_bytes().to_vec(),
    ));
    let target = forward.rewritten_path.as_deref().unwrap_or(&path);
    let full = format!("{}{}", state.upstream.path, target);
    match send(
        &method,
        &state.upstream,
        &full,
        &upstream_headers,
        &body,
        UPSTREAM_CONNECT,
        UPSTREAM_FIRST_BYTE,
    ) {
        Ok(a) => {
            let hs: Vec<(String, Vec<u8>)> = a
                .headers
                .into_iter()
                .filter(|(n, _)| !HOP_BY_HOP.contains(&n.to_ascii_lowercase().as_str()))
                .collect();
            respond(out, a.status, &hs, &a.body);
        }
        Err(e) => {
            eprintln!("{}", serde_json::json!({"level": "error", "upstream": e}));
            json_error(out, 502, "bad_gateway", "upstream unreachable");
        }
    }
}
