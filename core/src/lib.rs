//! # phantom-edge-core
//!
//! The decision logic of a phantom-token edge as a pure state machine. This crate contains no
//! networking code, reads no clock, spawns no threads and is not async: the host owns sockets,
//! clocks and threads, passes the wall-clock time (`now`, Unix milliseconds) into every call,
//! performs the HTTP calls the core asks for, and feeds the results back.
//!
//! ## The run loop
//!
//! 1. Build a [`Config`] (TOML or JSON) and an [`Edge`] with 32 bytes of entropy.
//! 2. Feed inputs: [`Edge::handle_request`], [`Edge::handle_introspection_response`] /
//!    [`Edge::handle_introspection_failure`], [`Edge::handle_jwks`],
//!    [`Edge::handle_shared_lookup`], [`Edge::handle_revocation`],
//!    [`Edge::handle_security_event`], [`Edge::handle_admin_revocation`] and
//!    [`Edge::handle_timeout`].
//! 3. After every input, drain [`Edge::poll_action`] until it returns `None` and carry out each
//!    [`Action`] in order: `Forward` / `Reject` answer a request; `Introspect`, `FetchJwks` and
//!    `SharedLookup` are I/O whose answers come back as inputs; `SharedPublish` goes to the other
//!    instances; `Audit` goes to logs.
//! 4. Then ask [`Edge::poll_timeout`] and call [`Edge::handle_timeout`] at that time.
//!
//! Tokens and the authorization server never produce an `Err`: an inactive token, a 5xx or a
//! timeout is a `Reject` action. `Err` means the host misused the API (a ticket never issued).
//!
//! ```
//! use phantom_edge_core::{Action, Config, Edge, HttpResponse, Request};
//!
//! let toml = r#"
//! [authorization_server]
//! issuer = "https://as.example"
//! introspection_endpoint = "https://as.example/introspect"
//! client_id = "gateway"
//! client_secret = "s3cret"
//! dialect = "keycloak"
//! jwks_uri = "https://as.example/jwks"
//!
//! [[routes]]
//! path_prefix = "/orders"
//! required_scopes = ["orders:read"]
//! "#;
//! let config = Config::from_toml(toml, &|_| None).unwrap();
//! let mut edge = Edge::new(config, [7; 32], 1_700_000_000_000);
//! assert!(matches!(edge.poll_action(), Some(Action::FetchJwks(_))));
//!
//! let headers = [("authorization", "Bearer opaque-token")];
//! let req = Request { id: 1, method: "GET", scheme: "https", authority: "api.example",
//!                     path: "/orders/7", headers: &headers, client_cert_thumbprint: None };
//! edge.handle_request(1_700_000_000_000, &req);
//! let ticket = loop {
//!     match edge.poll_action() {
//!         Some(Action::Introspect(i)) => break i.ticket,
//!         Some(_) => continue,
//!         None => unreachable!(),
//!     }
//! };
//! // The authorization server says the token is not active:
//! let resp = HttpResponse { status: 200, headers: &[("content-type", "application/json")],
//!                           body: br#"{"active": false}"# };
//! edge.handle_introspection_response(1_700_000_000_050, ticket, &resp).unwrap();
//! let reject = edge.drain_actions().into_iter().find_map(|a| match a {
//!     Action::Reject(r) => Some(r),
//!     _ => None,
//! }).unwrap();
//! assert_eq!(reject.status, 401);
//! assert!(reject.www_authenticate.unwrap().contains("error=\"invalid_token\""));
//! ```
//!
//! ## Invariants
//!
//! No raw token is stored, logged or used as a key (keyed [`Fingerprint`]s stand in); after a
//! revocation no matching token is forwarded, even one in flight; a cache entry never outlives
//! the token's `exp`, the response's `max-age` or `max_ttl`; authorization runs on every request;
//! concurrent misses coalesce; every failure fails closed; all state is bounded; every JWT is
//! verified; the same inputs at the same times give the same actions.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod action;
mod cache;
pub mod config;
mod dpop;
mod edge;
mod introspection;
mod jose;
mod metrics;
mod replay;
mod request;
mod revocation;
mod secret;
mod set;
mod token;

pub use action::{
    Action, AuditEvent, AuditKind, AuditKinds, AuditLevel, FetchJwks, Forward, IntrospectRequest,
    Reason, Reject, RequestId, SharedLookup, SharedPublish, Ticket,
};
pub use config::{
    ALWAYS_STRIPPED, ClientAuth, Config, ConfigError, Dialect, FORWARDING_HEADERS, Mode, RawConfig,
    Route, header_name_as_read,
};
pub use edge::{Edge, EdgeError, LookupResult};
pub use introspection::{HttpResponse, MAX_RESPONSE_BODY};
pub use jose::{Alg, KeySet, MAX_JWS_LEN};
pub use metrics::{Metrics, Stats};
pub use request::{MAX_TOKEN_LEN, Request, redact_query_tokens};
pub use revocation::{Origin, Revocation, RevocationError, Selector};
pub use secret::{Fingerprint, Secret};
pub use token::TokenInfo;
