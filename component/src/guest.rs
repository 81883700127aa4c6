//! The `phantom:edge/edge` export. One `Edge` resource owns one core state machine; the
//! component model gives resources `&self`, so the state lives in a `RefCell` (a component
//! instance is single-threaded).

use std::cell::{RefCell, RefMut};

use phantom_edge_core as core;

wit_bindgen::generate!({
    path: "../wit",
    world: "phantom-edge",
});

use exports::phantom::edge::edge::{Guest, GuestEdge};
use exports::phantom::edge::types::{
    Action, AuditEvent, AuditLevel, ConfigError, ConfigFormat, EdgeError, Forward, ForwardPolicy,
    Header, HttpResponse, Introspect, LookupResult, Method, Origin, Reject, Request,
    RevocationError, Scheme, SharedLookup,
};

struct Component;

impl Guest for Component {
    type Edge = Edge;
}

/// One edge: the core state machine, and what the host asked to be left out of the actions.
struct Edge {
    core: RefCell<core::Edge>,
    out: RefCell<Output>,
}

/// What the host does not want returned (`include-token-json`; `mute-audits` is the core's).
struct Output {
    token_json: bool,
}

impl Output {
    /// Core actions as WIT variants. `None` for an action kind newer than this component (the
    /// core's enum is non-exhaustive); such actions are dropped, which can only withhold a
    /// decision, never grant one — and the crate is built against one core version.
    fn action(&self, a: core::Action) -> Option<Action> {
        action(a, self.token_json)
    }
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

/// One core action as a WIT variant (see `Output::action`).
fn action(a: core::Action, token_json: bool) -> Option<Action> {
    Some(match a {
        core::Action::Forward(f) => Action::Forward(Forward {
            // `header_name` and `strip_headers` are the edge's, the same in every Forward: hosts
            // read them once (`forward-policy`).
            request_id: f.request_id,
            header_value: String::from(&*f.header_value),
            fingerprint: f.fingerprint.hex(),
            token_json: token_json.then(|| serde_json::to_string(&*f.token).unwrap_or_default()),
            rewritten_path: f.rewritten_path,
        }),
        core::Action::Reject(r) => Action::Reject(Reject {
            request_id: r.request_id,
            status: r.status,
            www_authenticate: r.www_authenticate,
            retry_after: r.retry_after,
            body: r.body,
            reason: r.reason.as_str().to_owned(),
            fingerprint: r.fingerprint.map(|f| f.hex()),
        }),
        core::Action::Introspect(i) => Action::Introspect(Introspect {
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
        }),
        core::Action::FetchJwks(j) => Action::FetchJwks(j.url),
        core::Action::SharedLookup(l) => Action::SharedLookup(SharedLookup {
            ticket: l.ticket,
            key: l.key,
        }),
        core::Action::SharedPublish(p) => Action::SharedPublish(p.message),
        core::Action::Audit(e) => Action::Audit(AuditEvent {
            kind: e.kind.as_str().to_owned(),
            level: match e.kind.level() {
                core::AuditLevel::Debug => AuditLevel::Debug,
                core::AuditLevel::Info => AuditLevel::Info,
                core::AuditLevel::Warn => AuditLevel::Warn,
            },
            request_id: e.request_id,
            ticket: e.ticket,
            fingerprint: e.fingerprint.map(|f| f.hex()),
            reason: e.reason.map(|r| r.as_str().to_owned()),
            json: e.to_json(),
            detail: e.detail,
        }),
        _ => return None,
    })
}

impl Edge {
    fn core(&self) -> RefMut<'_, core::Edge> {
        self.core.borrow_mut()
    }

    fn drain(&self) -> Vec<Action> {
        let out = self.out.borrow();
        let mut core = self.core();
        let mut actions = Vec::new();
        while let Some(a) = core.poll_action() {
            actions.extend(out.action(a));
        }
        actions
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
            out: RefCell::new(Output { token_json: true }),
        }))
    }

    fn handle_request(&self, now_ms: u64, request: Request) {
        self.request(now_ms, &request);
    }

    fn decide(&self, now_ms: u64, request: Request) -> Vec<Action> {
        self.request(now_ms, &request);
        self.drain()
    }

    fn handle_introspection_response(
        &self,
        now_ms: u64,
        ticket: u64,
        response: HttpResponse,
    ) -> Result<(), EdgeError> {
        let headers = pairs(&response.headers);
        let resp = core::HttpResponse {
            status: response.status,
            headers: &headers,
            body: &response.body,
        };
        Ok(self
            .core()
            .handle_introspection_response(now_ms, ticket, &resp)?)
    }

    fn handle_introspection_failure(
        &self,
        now_ms: u64,
        ticket: u64,
        detail: String,
    ) -> Result<(), EdgeError> {
        Ok(self
            .core()
            .handle_introspection_failure(now_ms, ticket, &detail)?)
    }

    fn handle_jwks_response(&self, now_ms: u64, body: Vec<u8>) {
        self.core().handle_jwks(now_ms, Ok(&body));
    }

    fn handle_jwks_failure(&self, now_ms: u64, detail: String) {
        self.core().handle_jwks(now_ms, Err(&detail));
    }

    fn handle_shared_lookup(
        &self,
        now_ms: u64,
        ticket: u64,
        answer: LookupResult,
    ) -> Result<(), EdgeError> {
        let r = match &answer {
            LookupResult::Found(v) => core::LookupResult::Found(v),
            LookupResult::NotFound => core::LookupResult::NotFound,
            LookupResult::Error => core::LookupResult::Error,
        };
        Ok(self.core().handle_shared_lookup(now_ms, ticket, r)?)
    }

    fn handle_revocation(
        &self,
        now_ms: u64,
        json: String,
        origin: Origin,
    ) -> Result<(), EdgeError> {
        let rev = core::Revocation::from_json(json.as_bytes())?;
        let origin = match origin {
            Origin::Local => core::Origin::Local,
            Origin::Shared => core::Origin::Shared,
        };
        Ok(self.core().handle_revocation(now_ms, rev, origin)?)
    }

    fn handle_security_event(&self, now_ms: u64, set: String) -> Result<(), EdgeError> {
        Ok(self.core().handle_security_event(now_ms, &set)?)
    }

    fn handle_admin_revocation(
        &self,
        now_ms: u64,
        content_type: Option<String>,
        authorization: Option<String>,
        body: Vec<u8>,
    ) -> Result<(), EdgeError> {
        Ok(self.core().handle_admin_revocation(
            now_ms,
            content_type.as_deref(),
            authorization.as_deref(),
            &body,
        )?)
    }

    fn admin_authorized(&self, authorization: Option<String>) -> Option<bool> {
        self.core().admin_authorized(authorization.as_deref())
    }

    fn handle_timeout(&self, now_ms: u64) {
        self.core().handle_timeout(now_ms);
    }

    fn poll_action(&self) -> Option<Action> {
        let out = self.out.borrow();
        let mut core = self.core();
        loop {
            if let Some(a) = out.action(core.poll_action()?) {
                return Some(a);
            }
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
        self.out.borrow_mut().token_json = enabled;
    }

    fn drain_actions(&self) -> Vec<Action> {
        self.drain()
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.core().poll_timeout()
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
