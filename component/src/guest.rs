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
    Action, AuditEvent, ConfigError, ConfigFormat, EdgeError, Forward, Header, HttpResponse,
    Introspect, LookupResult, Origin, Reject, Request, RevocationError, SharedLookup,
};

struct Component;

impl Guest for Component {
    type Edge = Edge;
}

/// One edge: the core state machine.
struct Edge(RefCell<core::Edge>);

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

fn pairs(headers: &[Header]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect()
}

/// Core actions as WIT variants. `None` for an action kind newer than this component (the
/// core's enum is non-exhaustive); such actions are dropped, which can only withhold a
/// decision, never grant one — and the crate is built against one core version.
fn action(a: core::Action) -> Option<Action> {
    Some(match a {
        core::Action::Forward(f) => Action::Forward(Forward {
            request_id: f.request_id,
            header_name: f.header_name.to_string(),
            header_value: f.header_value.to_string(),
            strip_headers: f.strip_headers.to_vec(),
            fingerprint: f.fingerprint.to_string(),
            token_json: serde_json::to_string(&*f.token).unwrap_or_default(),
            rewritten_path: f.rewritten_path,
        }),
        core::Action::Reject(r) => Action::Reject(Reject {
            request_id: r.request_id,
            status: r.status,
            www_authenticate: r.www_authenticate,
            body: r.body,
            reason: r.reason.as_str().to_owned(),
            fingerprint: r.fingerprint.map(|f| f.to_string()),
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
            fingerprint: i.fingerprint.to_string(),
        }),
        core::Action::FetchJwks(j) => Action::FetchJwks(j.url),
        core::Action::SharedLookup(l) => Action::SharedLookup(SharedLookup {
            ticket: l.ticket,
            key: l.key,
        }),
        core::Action::SharedPublish(p) => Action::SharedPublish(p.message),
        core::Action::Audit(e) => Action::Audit(AuditEvent {
            kind: e.kind.as_str().to_owned(),
            request_id: e.request_id,
            ticket: e.ticket,
            fingerprint: e.fingerprint.map(|f| f.to_string()),
            reason: e.reason.map(|r| r.as_str().to_owned()),
            json: e.to_json(),
            detail: e.detail,
        }),
        _ => return None,
    })
}

impl Edge {
    fn core(&self) -> RefMut<'_, core::Edge> {
        self.0.borrow_mut()
    }

    fn drain(&self) -> Vec<Action> {
        self.core()
            .drain_actions()
            .into_iter()
            .filter_map(action)
            .collect()
    }

    fn request(&self, now_ms: u64, request: &Request) {
        let headers = pairs(&request.headers);
        let req = core::Request {
            id: request.id,
            method: &request.method,
            scheme: &request.scheme,
            authority: &request.authority,
            path: &request.path,
            headers: &headers,
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
        Ok(exports::phantom::edge::edge::Edge::new(Self(RefCell::new(
            edge,
        ))))
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

    fn handle_timeout(&self, now_ms: u64) {
        self.core().handle_timeout(now_ms);
    }

    fn poll_action(&self) -> Option<Action> {
        loop {
            let next = self.core().poll_action()?;
            if let Some(a) = action(next) {
                return Some(a);
            }
        }
    }

    fn drain_actions(&self) -> Vec<Action> {
        self.drain()
    }

    fn poll_timeout(&self) -> Option<u64> {
        self.core().poll_timeout()
    }

    fn prometheus(&self) -> String {
        self.core().prometheus()
    }

    fn fingerprint(&self, token: String) -> String {
        self.core().fingerprint(&token).to_string()
    }

    fn assertion_jwks(&self) -> Option<String> {
        self.core().assertion_jwks()
    }
}

export!(Component);
