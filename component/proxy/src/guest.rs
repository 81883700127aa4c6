//! The `wasi:http/incoming-handler` export.
//!
//! The core lives in a per-instance global: a host that reuses an instance (or a future
//! wasi:http with instance reuse) keeps the cache across requests, while `wasmtime serve`'s
//! instance-per-request gives a fresh edge each time (every request is introspected; nothing
//! outlives the request, so revocation at the authorization server is honoured at once).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use phantom_edge_core as core;
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingRequest, IncomingResponse,
    Method, OutgoingBody, OutgoingRequest, OutgoingResponse, RequestOptions, ResponseOutparam,
    Scheme,
};
use wasip2::io::poll::{self, Pollable};
use wasip2::io::streams::{InputStream, OutputStream, StreamError};

wasip2::http::proxy::export!(Proxy);

struct Proxy;

/// Bytes read from a stream at a time. Bodies between the client and the upstream are
/// streamed, never held whole; an answer of the authorization server is read up to its
/// fetch's `max_response_bytes`, an operator route's body up to `core::MAX_ADMIN_BODY` + 1.
const CHUNK: u64 = 64 * 1024;
/// The revocation route unless `[middleware] revocation_path` says otherwise (as in the Python
/// and Node middleware).
const DEFAULT_REVOCATION_PATH: &str = "/_phantom/revocations";
/// Upstream timeouts: connect, first byte.
const UPSTREAM_CONNECT: Duration = Duration::from_secs(5);
const UPSTREAM_FIRST_BYTE: Duration = Duration::from_secs(30);
struct State {
    edge: core::Edge,
    upstream: Url,
    /// `POST` here takes a revocation (`None`: the route is off).
    revocation_path: Option<String>,
    /// The last request id handed to the core. Each request gets its own: a host that keeps
    /// the instance (`jco serve`) runs many requests through one core, and a decision left
    /// queued for an earlier request (one that ended on an error) must never be taken as a
    /// later request's.
    last_id: u64,
    /// When the core's timer is due (the last step's `wake_at`).
    wake_at: Option<u64>,
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
        last_id: 0,
        wake_at: None,
    })
}

/// Response headers: one header the host refuses (forbidden or malformed) must not cost the
/// others.
fn fields(headers: &[(String, Vec<u8>)]) -> Fields {
    Fields::from_list(headers).unwrap_or_else(|_| {
        let f = Fields::new();
        for (name, value) in headers {
            let _ = f.append(name, value);
        }
        f
    })
}

fn respond(out: ResponseOutparam, status: u16, headers: &[(String, Vec<u8>)], body: &[u8]) {
    let resp = OutgoingResponse::new(fields(headers));
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
    write_all(&stream, bytes, None).map_err(|_| ())?;
    stream.blocking_flush().map_err(|_| ())
}

/// An instant on the monotonic clock: the end of one outgoing exchange's time budget.
#[derive(Clone, Copy)]
struct Deadline(monotonic_clock::Instant);

impl Deadline {
    fn after(budget: Duration) -> Self {
        let ns = u64::try_from(budget.as_nanos()).unwrap_or(u64::MAX);
        Self(monotonic_clock::now().saturating_add(ns))
    }

    /// Nanoseconds left, zero once passed.
    fn left(self) -> u64 {
        self.0.saturating_sub(monotonic_clock::now())
    }

    /// Blocks until `ready` is ready (`true`) or the deadline passes first (`false`).
    fn wait(self, ready: &Pollable) -> bool {
        let timer = monotonic_clock::subscribe_instant(self.0);
        poll::poll(&[ready, &timer]).contains(&0)
    }
}

/// Blocks until `ready` is ready, or (with a deadline) fails once the deadline passed.
fn wait(ready: &Pollable, deadline: Option<Deadline>) -> Result<(), String> {
    match deadline {
        None => {
            ready.block();
            Ok(())
        }
        Some(d) if d.wait(ready) => Ok(()),
        Some(_) => Err("timeout: no answer within the deadline".into()),
    }
}

/// Writes all of `bytes` (no flush), as fast as the reader takes them.
fn write_all(
    stream: &OutputStream,
    bytes: &[u8],
    deadline: Option<Deadline>,
) -> Result<(), String> {
    let mut rest = bytes;
    while !rest.is_empty() {
        let room = stream.check_write().map_err(stream_error)?;
        if room == 0 {
            wait(&stream.subscribe(), deadline)?;
            continue;
        }
        let n = rest.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        stream.write(&rest[..n]).map_err(stream_error)?;
        rest = &rest[n..];
    }
    Ok(())
}

fn stream_error(e: StreamError) -> String {
    match e {
        StreamError::Closed => "stream closed".into(),
        StreamError::LastOperationFailed(e) => e.to_debug_string(),
    }
}

/// The next chunk of `stream` (`None` at its end); with a deadline, fails once it passed.
fn read_chunk(stream: &InputStream, deadline: Option<Deadline>) -> Result<Option<Vec<u8>>, String> {
    loop {
        if deadline.is_some() {
            wait(&stream.subscribe(), deadline)?;
        }
        let chunk = match deadline {
            None => stream.blocking_read(CHUNK),
            Some(_) => stream.read(CHUNK),
        };
        match chunk {
            Ok(c) if c.is_empty() => {}
            Ok(c) => return Ok(Some(c)),
            Err(StreamError::Closed) => return Ok(None),
            Err(e) => return Err(stream_error(e)),
        }
    }
}

/// The body, up to `limit` bytes; a longer one is an error (`too_large`: "answer too large").
fn read_body(
    body: IncomingBody,
    limit: usize,
    deadline: Option<Deadline>,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| "body already taken".to_owned())?;
        while let Some(chunk) = read_chunk(&stream, deadline)? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > limit {
                return Err(format!("answer larger than {limit} bytes"));
            }
        }
    }
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// An operator route's body as read: at most `core::MAX_ADMIN_BODY` + 1 bytes (the core
/// answers a longer one 413).
fn admin_body(request: IncomingRequest) -> Result<Vec<u8>, String> {
    let cap = core::MAX_ADMIN_BODY + 1;
    let body = request.consume().map_err(|()| "body".to_owned())?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| "body already taken".to_owned())?;
        while bytes.len() < cap {
            match read_chunk(&stream, None)? {
                Some(chunk) => bytes.extend_from_slice(&chunk),
                None => break,
            }
        }
    }
    bytes.truncate(cap);
    drop(IncomingBody::finish(body));
    Ok(bytes)
}

/// Why copying a body from one stream to another stopped.
enum PipeError {
    /// Reading the source failed (the sender went away or sent a malformed body).
    Read(String),
    /// Writing failed (the receiver went away, or answered without reading it all).
    Write(String),
}

/// Copies `from` to `to` until `from` ends, a chunk at a time: nothing is held whole.
fn pipe(from: &InputStream, to: &OutputStream) -> Result<(), PipeError> {
    while let Some(chunk) = read_chunk(from, None).map_err(PipeError::Read)? {
        write_all(to, &chunk, None).map_err(PipeError::Write)?;
    }
    to.blocking_flush()
        .map_err(|e| PipeError::Write(stream_error(e)))
}

/// An outgoing request, sent: its body still open for writing, its answer to come.
struct Sent {
    body: OutgoingBody,
    answer: FutureIncomingResponse,
}

/// Host timeouts of an outgoing request (nanoseconds): connect, first byte, between bytes.
type Timeouts = (u64, u64, u64);

fn start(
    method: &Method,
    url: &Url,
    path_with_query: &str,
    headers: &[(String, Vec<u8>)],
    (connect, first_byte, between_bytes): Timeouts,
) -> Result<Sent, String> {
    let fields = Fields::from_list(headers).map_err(|e| format!("headers: {e:?}"))?;
    let req = OutgoingRequest::new(fields);
    let _ = req.set_method(method);
    let _ = req.set_scheme(Some(&url.scheme()));
    let _ = req.set_authority(Some(&url.authority));
    let _ = req.set_path_with_query(Some(path_with_query));
    let body = req.body().map_err(|()| "request body".to_owned())?;
    let options = RequestOptions::new();
    let _ = options.set_connect_timeout(Some(connect));
    let _ = options.set_first_byte_timeout(Some(first_byte));
    let _ = options.set_between_bytes_timeout(Some(between_bytes));
    let answer = outgoing_handler::handle(req, Some(options)).map_err(describe)?;
    Ok(Sent { body, answer })
}

/// Waits for the answer's status and headers (with a deadline: fails once it passed; dropping
/// the future then cancels the request).
fn response(
    answer: FutureIncomingResponse,
    deadline: Option<Deadline>,
) -> Result<IncomingResponse, String> {
    {
        let ready = answer.subscribe();
        wait(&ready, deadline)?;
    }
    match answer.get() {
        Some(Ok(Ok(r))) => Ok(r),
        Some(Ok(Err(e))) => Err(describe(e)),
        Some(Err(())) | None => Err("no response".into()),
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// One fetch the core asked for, all of it (connect, request, status and headers, the whole
/// body up to its `max_response_bytes`) within its `timeout_ms`: an answer that trickles in is
/// cut off at the deadline and reported as a failure, never waited for beyond it.
fn ask(f: &core::Fetch) -> Result<Answer, String> {
    let url = Url::parse(&f.url)?;
    let url = &url;
    let method = match f.method {
        "GET" => Method::Get,
        "POST" => Method::Post,
        other => Method::Other(other.to_owned()),
    };
    let method = &method;
    let headers = &header_pairs(&f.headers);
    let body = f.body.as_bytes();
    let deadline = Deadline::after(Duration::from_millis(f.timeout_ms));
    // The host's own timeouts, as a backstop: none of them bounds the total.
    let ns = deadline.left();
    let path = if url.path.is_empty() { "/" } else { &url.path };
    // The body is known: sent with its length, not chunked (as edge mode sends it; some
    // servers and firewalls in front of an authorization server refuse chunked requests).
    let mut headers = headers.to_vec();
    if !body.is_empty() {
        headers.push(("content-length".into(), body.len().to_string().into_bytes()));
    }
    let sent = start(method, url, path, &headers, (ns, ns, ns))?;
    {
        let stream = sent.body.write().map_err(|()| "request body".to_owned())?;
        write_all(&stream, body, Some(deadline))?;
        stream.flush().map_err(stream_error)?;
    }
    OutgoingBody::finish(sent.body, None).map_err(describe)?;
    let resp = response(sent.answer, Some(deadline))?;
    let status = resp.status();
    let headers = resp.headers().entries();
    let incoming = resp.consume().map_err(|()| "response body".to_owned())?;
    let body = read_body(incoming, f.max_response_bytes, Some(deadline))?;
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

/// The host driver's loop: carries out each step (one fetch at a time: wasi:http blocks) until
/// the core decides the request `id`.
fn decide(state: &mut State, id: u64) -> Result<core::Decision, String> {
    let mut fetches = VecDeque::new();
    let mut lookups = VecDeque::new();
    let mut step = take_step(state);
    loop {
        step.audits.iter().for_each(log);
        if let Some(d) = step.decisions.into_iter().find(|d| d.request_id() == id) {
            return Ok(d);
        }
        fetches.extend(step.fetches);
        lookups.extend(step.lookups);
        if let Some(f) = fetches.pop_front() {
            let answer = ask(&f);
            let now = catch_up(state);
            let fed = match &answer {
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
                    state.edge.handle_fetch(now, f.ticket, Ok(&resp))
                }
                Err(e) => state.edge.handle_fetch(now, f.ticket, Err(e)),
            };
            fed.map_err(|e| e.to_string())?;
        } else if let Some(l) = lookups.pop_front() {
            // No shared store in this component: split-token mode fails closed.
            let now = catch_up(state);
            state
                .edge
                .handle_shared_lookup(now, l.ticket, core::LookupResult::Error)
                .map_err(|e| e.to_string())?;
        } else {
            return Err("the core queued no decision".into());
        }
        step = take_step(state);
    }
}

/// The core's step, remembering when its timer is due.
fn take_step(state: &mut State) -> core::Step {
    let step = state.edge.step();
    state.wake_at = step.wake_at;
    step
}

/// Lets the core's timers run up to now (tickets past their deadline end with 503) and returns
/// now. Called before an answer is fed in, so one that came too late is never accepted.
fn catch_up(state: &mut State) -> u64 {
    let now = now_ms();
    if state.wake_at.is_some_and(|t| t <= now) {
        state.edge.handle_timeout(now);
    }
    now
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
/// answered whole by the core (status, challenge, body limit), on the app's listener. It reaches
/// this instance's cache only, which is the whole cache under hosts that reuse the instance
/// (`jco serve`); under instance-per-request hosts there is no cache to revoke from, and
/// revocation at the authorization server already applies at once.
fn revoke(
    state: &mut State,
    method: &str,
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
    let Ok(body) = admin_body(request) else {
        return json_error(out, 400, "invalid_request", "the body could not be read");
    };
    let answer = state.edge.handle_admin(
        now_ms(),
        &core::AdminRequest {
            route: core::AdminRoute::Revocations,
            listener: core::Listener::App,
            method,
            authorization: header("authorization"),
            content_type: header("content-type"),
            body: &body,
        },
    );
    // What the revocation produced: published to nobody (no shared channel here), logged.
    take_step(state).audits.iter().for_each(log);
    respond(
        out,
        answer.status,
        &header_pairs(&answer.headers),
        answer.body.as_bytes(),
    );
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

/// The upstream request's headers: the core's forwarding policy applied to the inbound ones
/// (kept with their bytes), with the client's authority as the `host` it reads. `host` itself is
/// not a wasi:http field: the upstream's authority is set on the request instead.
fn upstream_headers(
    edge: &core::Edge,
    inbound: Vec<(String, Vec<u8>)>,
    pairs: &[(&str, &str)],
    forward: &core::Forward,
    authority: &str,
    scheme: &str,
    upstream_authority: &str,
) -> Vec<(String, Vec<u8>)> {
    let mut read: Vec<(&str, &str)> = pairs.to_vec();
    read.push(("host", authority));
    let plan = edge.upstream_headers(
        &read,
        &forward.header_value,
        &core::Hop::Proxy {
            peer: None,
            proto: scheme,
            upstream_authority: Some(upstream_authority),
        },
    );
    let mut headers: Vec<(String, Vec<u8>)> = inbound
        .into_iter()
        .enumerate()
        .filter(|(i, _)| plan.drop.binary_search(i).is_err())
        .map(|(_, h)| h)
        .collect();
    headers.extend(
        plan.set
            .into_iter()
            .filter(|(n, _)| n != "host")
            .map(|(n, v)| (n, v.into_bytes())),
    );
    headers
}

fn serve(state: &mut State, request: IncomingRequest, out: ResponseOutparam) {
    let method = request.method();
    if matches!(method, Method::Connect) {
        return json_error(out, 405, "invalid_request", "CONNECT is not proxied");
    }
    // Only origin-form targets: the core decides on this path, and exactly this path is
    // forwarded (no target is made up for `*` or an authority-form request).
    let Some(path) = request.path_with_query().filter(|p| p.starts_with('/')) else {
        return json_error(
            out,
            400,
            "invalid_request",
            "the request target is not a path",
        );
    };
    let Some(authority) = request.authority().filter(|a| !a.is_empty()) else {
        return json_error(out, 400, "invalid_request", "no Host");
    };
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
    if state.revocation_path.as_deref() == path.split('?').next() {
        let method = method_str(&method).to_owned();
        return revoke(state, &method, request, &headers, out);
    }
    state.last_id += 1;
    let id = state.last_id;
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
        Ok(core::Decision::Forward(f)) => f,
        Ok(core::Decision::Reject(r)) => {
            let mut hs = vec![("content-type".to_owned(), b"application/json".to_vec())];
            if let Some(w) = &r.www_authenticate {
                hs.push(("www-authenticate".into(), w.as_bytes().to_vec()));
            }
            if let Some(s) = r.retry_after {
                hs.push(("retry-after".into(), s.to_string().into_bytes()));
            }
            return respond(out, r.status, &hs, r.body.as_bytes());
        }
        Err(e) => {
            eprintln!("{}", serde_json::json!({"level": "error", "error": e}));
            return json_error(out, 503, "temporarily_unavailable", "gateway error");
        }
    };
    let headers = upstream_headers(
        &state.edge,
        raw_headers,
        &pairs,
        &forward,
        &authority,
        scheme,
        &state.upstream.authority,
    );
    let target = forward.rewritten_path.as_deref().unwrap_or(&path);
    let full = format!("{}{}", state.upstream.path, target);
    proxy(&method, &state.upstream, &full, &headers, request, out);
}

/// Forwards the request to the upstream and its answer back, both bodies streamed a chunk at a
/// time (the request body is read only now, after the core decided to forward).
fn proxy(
    method: &Method,
    upstream: &Url,
    path_with_query: &str,
    headers: &[(String, Vec<u8>)],
    request: IncomingRequest,
    out: ResponseOutparam,
) {
    let timeouts = (
        nanos(UPSTREAM_CONNECT),
        nanos(UPSTREAM_FIRST_BYTE),
        nanos(UPSTREAM_FIRST_BYTE),
    );
    let sent = match start(method, upstream, path_with_query, headers, timeouts) {
        Ok(s) => s,
        Err(e) => return bad_gateway(out, &e),
    };
    let Ok(client_body) = request.consume() else {
        return bad_gateway(out, "request body already taken");
    };
    let copied = match (client_body.stream(), sent.body.write()) {
        (Ok(from), Ok(to)) => pipe(&from, &to),
        _ => Err(PipeError::Write("body streams".into())),
    };
    drop(IncomingBody::finish(client_body));
    match copied {
        Ok(()) => {
            if let Err(e) = OutgoingBody::finish(sent.body, None) {
                return bad_gateway(out, &describe(e));
            }
        }
        Err(PipeError::Read(e)) => {
            // Not finished: the host aborts the upstream request rather than end it early.
            drop(sent);
            eprintln!(
                "{}",
                serde_json::json!({"level": "warn", "request_body": e})
            );
            return json_error(
                out,
                400,
                "invalid_request",
                "the request body could not be read",
            );
        }
        // The upstream stopped reading: it may have answered already (say 413).
        Err(PipeError::Write(e)) => {
            eprintln!(
                "{}",
                serde_json::json!({"level": "warn", "upstream_request_body": e})
            );
            drop(sent.body);
        }
    }
    let resp = match response(sent.answer, None) {
        Ok(r) => r,
        Err(e) => return bad_gateway(out, &e),
    };
    let entries = resp.headers().entries();
    let text: Vec<(String, String)> = entries
        .iter()
        .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect();
    let pairs: Vec<(&str, &str)> = text.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let hop = core::hop_by_hop_headers(&pairs);
    let hs: Vec<(String, Vec<u8>)> = entries
        .into_iter()
        .enumerate()
        .filter(|(i, _)| hop.binary_search(i).is_err())
        .map(|(_, h)| h)
        .collect();
    let Ok(upstream_body) = resp.consume() else {
        return bad_gateway(out, "response body already taken");
    };
    let answer = OutgoingResponse::new(fields(&hs));
    let _ = answer.set_status_code(resp.status());
    let Ok(body) = answer.body() else {
        return;
    };
    ResponseOutparam::set(out, Ok(answer));
    let copied = match (upstream_body.stream(), body.write()) {
        (Ok(from), Ok(to)) => pipe(&from, &to),
        _ => Err(PipeError::Write("body streams".into())),
    };
    drop(IncomingBody::finish(upstream_body));
    match copied {
        Ok(()) => {
            let _ = OutgoingBody::finish(body, None);
        }
        // Not finished: the host ends the client's response as broken, not as complete.
        Err(PipeError::Read(e)) => {
            eprintln!(
                "{}",
                serde_json::json!({"level": "error", "upstream_body": e})
            );
        }
        Err(PipeError::Write(_)) => {} // the client went away
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn bad_gateway(out: ResponseOutparam, e: &str) {
    eprintln!("{}", serde_json::json!({"level": "error", "upstream": e}));
    json_error(out, 502, "bad_gateway", "upstream unreachable");
}
