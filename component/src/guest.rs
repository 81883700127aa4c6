//! The `phantom:edge/edge` export. One `Edge` resource owns one core state machine; the
//! component model gives resources `&self`, so the state lives in a `RefCell` (a component
//! instance is single-threaded). Every `handle-*` is the core's `handle_*` followed by
//! `Edge::step`, translated: the component holds no policy of its own.

use std::cell::{RefCell, RefMut};

use phantom_edge_core as core;

wit_bindgen::generate!({
    path: "../wit",
    world: "phantom-edge",
});

use exports::phantom::edge::edge::{Guest, GuestEdge};
use exports::phantom::edge::types::{
    AdminAnswer, AdminRequest, AdminRoute, AuditEvent, AuditLevel, ConfigError, ConfigFormat,
    Decision, EdgeError, Fetch, FetchKind, FetchResult, Forward, ForwardPolicy, Header, Hop,
    Listener, LookupResult, Method, Origin, Reject, Request, RevocationError, Scheme, SharedLookup,
    Step, UpstreamHeaders,
};

struct Component;

impl Guest for Component {
    type Edge = Edge;

    fn hop_by_hop_headers(headers: Vec<Header>) -> Vec<u32> {
        indexes(core::hop_by_hop_headers(&pairs(&headers)))
    }
}

/// One edge: the core state machine, and whether the host wants the claims in each forward.
struct Edge {
    core: RefCell<core::Edge>,
    token_json: RefCell<bool>,
}

impl From<core::ConfigError> for EdgeError {
    fn from(e: core::ConfigError) -> Self {
        Self::Config(ConfigError {
            field: e.field,
            message: e.message,
        })
    }
}

impl From<core::RevocationError> for EdgeError {
    fn from(e: core::RevocationError) -> Self {
        Self::Revocation(RevocationError {
            status: e.status(),
            message: e.to_string(),
            body: e.body(),
        })
    }
}

impl From<core::EdgeError> for EdgeError {
    fn from(e: core::EdgeError) -> Self {
        match e {
            core::EdgeError::UnknownTicket(t) => Self::UnknownTicket(t),
            core::EdgeError::WrongTicketKind(t) => Self::WrongTicketKind(t),
            core::EdgeError::Revocation(r) => r.into(),
            other => Self::InvalidArgument(other.to_string()),
        }
    }
}

fn method(m: &Method) -> &str {
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
        Method::Other(m) => m,
    }
}

fn scheme(s: &Scheme) -> &str {
    match s {
        Scheme::Http => "http",
        Scheme::Https => "https",
        Scheme::Other(s) => s,
    }
}

fn pairs(headers: &[Header]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect()
}

fn headers(pairs: Vec<(String, String)>) -> Vec<Header> {
    pairs
        .into_iter()
        .map(|(name, value)| Header { name, value })
        .collect()
}

fn indexes(v: Vec<usize>) -> Vec<u32> {
    // Header lists crossing the boundary are far shorter than u32::MAX.
    v.into_iter()
        .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
        .collect()
}

fn audit_level(l: core::AuditLevel) -> AuditLevel {
    match l {
        core::AuditLevel::Debug => AuditLevel::Debug,
        core::AuditLevel::Info => AuditLevel::Info,
        core::AuditLevel::Warn => AuditLevel::Warn,
    }
}

/// A core decision as the WIT variant.
fn decision(d: core::Decision, token_json: bool) -> Decision {
    match d {
        // `header_name` and `strip_headers` are the edge's, the same in every forward: hosts
        // read them once (`forward-policy`).
        core::Decision::Forward(f) => Decision::Forward(Forward {
            request_id: f.request_id,
            header_value: String::from(&*f.header_value),
            fingerprint: f.fingerprint.hex(),
            token_json: token_json.then(|| serde_json::to_string(&*f.token).unwrap_or_default()),
            rewritten_path: f.rewritten_path,
        }),
        core::Decision::Reject(r) => Decision::Reject(Reject {
            request_id: r.request_id,
            status: r.status,
            www_authenticate: r.www_authenticate,
            retry_after: r.retry_after,
            body: r.body,
            reason: r.reason.as_str().to_owned(),
            fingerprint: r.fingerprint.map(|f| f.hex()),
        }),
    }
}

fn fetch(f: core::Fetch) -> Fetch {
    Fetch {
        ticket: f.ticket,
        kind: match f.kind {
            core::FetchKind::Jwks => FetchKind::Jwks,
            // The only other kind (the core's enum is non-exhaustive).
            _ => FetchKind::Introspection,
        },
        method: f.method.to_owned(),
        url: f.url,
        headers: headers(f.headers),
        body: f.body,
        timeout_ms: f.timeout_ms,
        max_response_bytes: f.max_response_bytes as u64,
        fingerprint: f.fingerprint.map(|f| f.hex()),
    }
}

fn audit(e: core::AuditEvent) -> AuditEvent {
    AuditEvent {
        kind: e.kind.as_str().to_owned(),
        level: audit_level(e.kind.level()),
        request_id: e.request_id,
        ticket: e.ticket,
        fingerprint: e.fingerprint.map(|f| f.hex()),
        reason: e.reason.map(|r| r.as_str().to_owned()),
        json: e.to_json(),
        detail: e.detail,
    }
}

impl Edge {
    fn core(&self) -> RefMut<'_, core::Edge> {
        self.core.borrow_mut()
    }

    /// The core's `step()`, as the WIT record.
    fn step(&self) -> Step {
        let token_json = *self.token_json.borrow();
        let s = self.core().step();
        Step {
            decisions: s
                .decisions
                .into_iter()
                .map(|d| decision(d, token_json))
                .collect(),
            fetches: s.fetches.into_iter().map(fetch).collect(),
            lookups: s
                .lookups
                .into_iter()
                .map(|l| SharedLookup {
                    ticket: l.ticket,
                    key: l.key,
                })
                .collect(),
            publishes: s.publishes.into_iter().map(|p| p.message).collect(),
            audits: s.audits.into_iter().map(audit).collect(),
            wake_at: s.wake_at,
        }
    }

    fn request(&self, now_ms: u64, request: &Request) {
        // The two headers the core reads, as (name, value) pairs, without a heap Vec for the
        // usual one or two.
        const INLINE: usize = 4;
        let named = request
            .authorization
            .iter()
            .map(|v| ("authorization", v.as_str()))
            .chain(request.dpop.iter().map(|v| ("dpop", v.as_str())));
        let count = request.authorization.len() + request.dpop.len();
        let mut inline = [("", ""); INLINE];
        let spilled: Vec<(&str, &str)>;
        let headers: &[(&str, &str)] = if count <= INLINE {
            for (slot, h) in inline.iter_mut().zip(named) {
                *slot = h;
            }
            &inline[..count]
        } else {
            spilled = named.collect();
            &spilled
        };
        let req = core::Request {
            id: request.id,
            method: method(&request.method),
            scheme: scheme(&request.scheme),
            authority: &request.authority,
            path: &request.path,
            headers,
            client_cert_thumbprint: request.client_cert_thumbprint.as_deref(),
        };
        self.core().handle_request(now_ms, &req);
    }
}

impl GuestEdge for Edge {
    fn create(
        config: String,
        format: ConfigFormat,
        env: Vec<(String, String)>,
        seed: Vec<u8>,
        now_ms: u64,
    ) -> Result<exports::phantom::edge::edge::Edge, EdgeError> {
        let seed = <[u8; 32]>::try_from(seed.as_slice()).map_err(|_| {
            EdgeError::InvalidArgument(format!("seed must be 32 bytes, got {}", seed.len()))
        })?;
        let lookup = |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let config = match format {
            ConfigFormat::Toml => core::Config::from_toml(&config, &lookup)?,
            ConfigFormat::Json => core::Config::from_json(&config, &lookup)?,
        };
        let edge = core::Edge::new(config, seed, now_ms);
        Ok(exports::phantom::edge::edge::Edge::new(Self {
            core: RefCell::new(edge),
            token_json: RefCell::new(true),
        }))
    }

    fn initial_step(&self) -> Step {
        self.step()
    }

    fn handle_request(&self, now_ms: u64, request: Request) -> Step {
        self.request(now_ms, &request);
        self.step()
    }

    fn handle_fetch(
        &self,
        now_ms: u64,
        ticket: u64,
        result: FetchResult,
    ) -> Result<Step, EdgeError> {
        match &result {
            FetchResult::Response(r) => {
                let headers = pairs(&r.headers);
                let response = core::HttpResponse {
                    status: r.status,
                    headers: &headers,
                    body: &r.body,
                };
                self.core().handle_fetch(now_ms, ticket, Ok(&response))?;
            }
            FetchResult::Failure(detail) => {
                self.core().handle_fetch(now_ms, ticket, Err(detail))?;
            }
        }
        Ok(self.step())
    }

    fn handle_shared_lookup(
        &self,
        now_ms: u64,
        ticket: u64,
        answer: LookupResult,
    ) -> Result<Step, EdgeError> {
        let r = match &answer {
            LookupResult::Found(v) => core::LookupResult::Found(v),
            LookupResult::NotFound => core::LookupResult::NotFound,
            LookupResult::Error => core::LookupResult::Error,
        };
        self.core().handle_shared_lookup(now_ms, ticket, r)?;
        Ok(self.step())
    }

    fn handle_revocation(
        &self,
        now_ms: u64,
        json: String,
        origin: Origin,
    ) -> Result<Step, EdgeError> {
        let rev = core::Revocation::from_json(json.as_bytes())?;
        let origin = match origin {
            Origin::Local => core::Origin::Local,
            Origin::Shared => core::Origin::Shared,
        };
        self.core().handle_revocation(now_ms, rev, origin)?;
        Ok(self.step())
    }

    fn handle_security_event(&self, now_ms: u64, set: String) -> Result<Step, EdgeError> {
        self.core().handle_security_event(now_ms, &set)?;
        Ok(self.step())
    }

    fn handle_admin(&self, now_ms: u64, request: AdminRequest) -> (AdminAnswer, Step) {
        let req = core::AdminRequest {
            route: match request.route {
                AdminRoute::Revocations => core::AdminRoute::Revocations,
                AdminRoute::Metrics => core::AdminRoute::Metrics,
                AdminRoute::Jwks => core::AdminRoute::Jwks,
            },
            listener: match request.listener {
                Listener::Operator => core::Listener::Operator,
                Listener::App => core::Listener::App,
            },
            method: &request.method,
            authorization: request.authorization.as_deref(),
            content_type: request.content_type.as_deref(),
            body: &request.body,
        };
        let answer = self.core().handle_admin(now_ms, &req);
        let answer = AdminAnswer {
            status: answer.status,
            headers: headers(answer.headers),
            body: answer.body,
        };
        (answer, self.step())
    }

    fn handle_timeout(&self, now_ms: u64) -> Step {
        self.core().handle_timeout(now_ms);
        self.step()
    }

    fn upstream_headers(
        &self,
        inbound: Vec<Header>,
        header_value: String,
        hop: Hop,
    ) -> UpstreamHeaders {
        let inbound = pairs(&inbound);
        let hop = match &hop {
            Hop::Proxy(p) => core::Hop::Proxy {
                peer: p.peer.as_deref(),
                proto: &p.proto,
                upstream_authority: p.upstream_authority.as_deref(),
            },
            Hop::InProcess => core::Hop::InProcess,
        };
        let u = self.core().upstream_headers(&inbound, &header_value, &hop);
        UpstreamHeaders {
            drop: indexes(u.drop),
            set: headers(u.set),
        }
    }

    fn mute_audits(&self, kinds: Vec<String>) -> Result<(), EdgeError> {
        let muted = core::AuditKinds::from_names(kinds.iter().map(String::as_str))
            .map_err(|k| EdgeError::InvalidArgument(format!("unknown audit kind {k:?}")))?;
        self.core().mute_audits(muted);
        Ok(())
    }

    fn set_audit_level(&self, level: AuditLevel) {
        self.core().set_audit_level(match level {
            AuditLevel::Debug => core::AuditLevel::Debug,
            AuditLevel::Info => core::AuditLevel::Info,
            AuditLevel::Warn => core::AuditLevel::Warn,
        });
    }

    fn include_token_json(&self, enabled: bool) {
        *self.token_json.borrow_mut() = enabled;
    }

    fn forward_policy(&self) -> ForwardPolicy {
        let core = self.core();
        ForwardPolicy {
            header_name: core.forward_header_name().to_owned(),
            strip_headers: core.strip_headers().to_vec(),
        }
    }

    fn prometheus(&self) -> String {
        self.core().prometheus()
    }

    fn fingerprint(&self, token: String) -> String {
        self.core().fingerprint(&token).hex()
    }

    fn assertion_jwks(&self) -> Option<String> {
        self.core().assertion_jwks()
    }
}

export!(Component);
