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
//! 2. Feed an input: [`Edge::handle_request`], [`Edge::handle_fetch`] (the answer to an
//!    introspection or JWKS [`Fetch`]), [`Edge::handle_shared_lookup`],
//!    [`Edge::handle_revocation`], [`Edge::handle_security_event`], [`Edge::handle_admin`] and
//!    [`Edge::handle_timeout`] (or [`Edge::handle`] with an [`Input`]).
//! 3. Take the [`Step`] it produced ([`Edge::step`]) and carry it out: answer its `decisions`
//!    (a `Forward`'s upstream headers come from [`Edge::upstream_headers`]), perform its
//!    `fetches` and `lookups` (their answers are inputs), send its `publishes` to the other
//!    instances, log its `audits`, and arm the one timer for `wake_at`.
//!
//! ([`Edge::poll_action`] drains the same queue one [`Action`] at a time, in the core's order.)
//!
//! Tokens and the authorization server never produce an `Err`: an inactive token, a 5xx or a
//! timeout is a `Reject` decision. `Err` means the host misused the API (a ticket never issued).
//!
//! ```
//! use phantom_edge_core::{Config, Decision, Edge, FetchKind, HttpResponse, Request};
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
//! let start = edge.step();
//! assert_eq!(start.fetches[0].kind, FetchKind::Jwks);
//!
//! let headers = [("authorization", "Bearer opaque-token")];
//! let req = Request { id: 1, method: "GET", scheme: "https", authority: "api.example",
//!                     path: "/orders/7", headers: &headers, client_cert_thumbprint: None };
//! edge.handle_request(1_700_000_000_000, &req);
//! let step = edge.step();
//! let fetch = &step.fetches[0];
//! assert_eq!((fetch.kind, fetch.method), (FetchKind::Introspection, "POST"));
//! assert!(step.wake_at.is_some()); // the ticket's deadline
//!
//! // The authorization server says the token is not active:
//! let resp = HttpResponse { status: 200, headers: &[("content-type", "application/json")],
//!                           body: br#"{"active": false}"# };
//! edge.handle_fetch(1_700_000_000_050, fetch.ticket, Ok(&resp)).unwrap();
//! let Some(Decision::Reject(reject)) = edge.step().decision(1).cloned() else { panic!() };
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
mod host;
mod introspection;
mod jose;
mod metrics;
mod replay;
mod request;
mod revocation;
mod secret;
mod set;
mod split;
mod token;

pub use action::{
    Action, AuditEvent, AuditKind, AuditKinds, AuditLevel, Fetch, FetchKind, Forward, Reason,
    Reject, RequestId, SharedLookup, SharedPublish, Ticket,
};
pub use config::{
    ALWAYS_STRIPPED, ClientAuth, Config, ConfigError, Dialect, FORWARDING_HEADERS, Mode, RawConfig,
    Route, header_name_as_read,
};
pub use edge::{
    ADMIN_CHALLENGE, AdminAnswer, AdminRequest, AdminRoute, Listener, MAX_ADMIN_BODY, MAX_JWKS_BODY,
};
pub use edge::{Edge, EdgeError, LookupResult};
pub use host::{Decision, HOP_BY_HOP, Hop, Input, Step, UpstreamHeaders, hop_by_hop_headers};
pub use introspection::{HttpResponse, MAX_RESPONSE_BODY};
pub use jose::{Alg, KeySet, MAX_JWS_LEN};
pub use metrics::{Metrics, Stats};
pub use request::{MAX_TOKEN_LEN, Request, redact_query_tokens};
pub use revocation::{Origin, Revocation, RevocationError, Selector};
pub use secret::{Fingerprint, Secret};
pub use split::{DEFAULT_SPLIT_KEY_PREFIX, SEALED_PREFIX, SplitError, SplitToken, split_jwt};
pub use token::TokenInfo;
