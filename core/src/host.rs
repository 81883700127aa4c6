//! The host driver: the part of every host's loop that is policy, written once.
//!
//! A host (phantom-gateway, the proxy component, the Python and Node middleware, a Swift app)
//! does four things: it reads a request, feeds it to the [`Edge`], carries out the I/O the edge
//! asks for and feeds the answers back, and answers the client. This module makes the middle two
//! one call each and sorts what comes out by who consumes it, in the quinn-proto / str0m way:
//!
//! - [`Edge::step`] drains the queue into a [`Step`]: the [`Decision`]s to answer, the
//!   [`Fetch`]es and [`SharedLookup`]s to perform, the [`SharedPublish`]es to send to the other
//!   instances, the [`AuditEvent`]s to log, and `wake_at`, when to call
//!   [`Edge::handle_timeout`] next. No host guesses when to re-arm its timer.
//! - [`Edge::handle`] feeds one [`Input`] and returns its `Step`.
//! - [`Edge::upstream_headers`] is the forwarding policy: which inbound headers go upstream
//!   and which the edge sets, for a proxy and for an in-process middleware alike.
//! - [`Edge::handle_admin`] answers the operator routes (revocation, metrics, the edge's own
//!   JWKS): status, headers and body, with one body limit and one realm.
//!
//! No I/O here either: the host still owns sockets, clocks and threads.

use std::borrow::Cow;

use crate::action::{
    Action, AuditEvent, Fetch, Forward, Reject, RequestId, SharedLookup, SharedPublish, Ticket,
};
use crate::config::{FORWARDING_HEADERS, header_name_as_read};
use crate::edge::{Edge, EdgeError, LookupResult};
use crate::introspection::HttpResponse;
use crate::request::Request;
use crate::revocation::{Origin, Revocation};

/// A request's answer: let it through, or refuse it.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Forward upstream (see [`Edge::upstream_headers`] for the header set).
    Forward(Forward),
    /// Answer the client with this status, challenge and body.
    Reject(Reject),
}

impl Decision {
    /// The request this decides.
    pub fn request_id(&self) -> RequestId {
        match self {
            Self::Forward(f) => f.request_id,
            Self::Reject(r) => r.request_id,
        }
    }
}

/// Everything one input produced, by consumer. Carry out all of it: answer the `decisions`,
/// start the `fetches` and `lookups` (their answers are inputs), send the `publishes`, log the
/// `audits`, and arm the timer for `wake_at`. Within each list the order is the core's.
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// Requests decided now.
    pub decisions: Vec<Decision>,
    /// HTTP requests to send (introspections, JWKS fetches); answer with [`Edge::handle_fetch`].
    pub fetches: Vec<Fetch>,
    /// Shared-store reads (split-token mode); answer with [`Edge::handle_shared_lookup`].
    pub lookups: Vec<SharedLookup>,
    /// Revocations for the other instances.
    pub publishes: Vec<SharedPublish>,
    /// Token-free events for the logs.
    pub audits: Vec<AuditEvent>,
    /// When (Unix ms) to call [`Edge::handle_timeout`] next; `None`: nothing is pending. A host
    /// re-arms its one timer to this after every step.
    pub wake_at: Option<u64>,
}

impl Step {
    /// Whether the step holds nothing to do (a timer may still be due: see `wake_at`).
    pub fn is_empty(&self) -> bool {
        self.decisions.is_empty()
            && self.fetches.is_empty()
            && self.lookups.is_empty()
            && self.publishes.is_empty()
            && self.audits.is_empty()
    }

    /// The decision for `id`, if this step holds it.
    pub fn decision(&self, id: RequestId) -> Option<&Decision> {
        self.decisions.iter().find(|d| d.request_id() == id)
    }
}

/// One input to [`Edge::handle`]; each mirrors a `handle_*` method.
#[derive(Debug)]
#[non_exhaustive]
pub enum Input<'a> {
    /// A client request ([`Edge::handle_request`]).
    Request(Request<'a>),
    /// The answer to a [`Fetch`] ([`Edge::handle_fetch`]).
    Fetched {
        /// The fetch's ticket.
        ticket: Ticket,
        /// The server's answer (any status), or a transport failure.
        result: Result<HttpResponse<'a>, &'a str>,
    },
    /// The shared store's answer to a [`SharedLookup`] ([`Edge::handle_shared_lookup`]).
    LookedUp {
        /// The lookup's ticket.
        ticket: Ticket,
        /// What the store said.
        result: LookupResult<'a>,
    },
    /// A revocation ([`Edge::handle_revocation`]).
    Revocation {
        /// What is revoked.
        revocation: Revocation,
        /// `Local` ones are published to the other instances.
        origin: Origin,
    },
    /// An RFC 8417 Security Event Token ([`Edge::handle_security_event`]).
    SecurityEvent(&'a str),
    /// Time passed ([`Edge::handle_timeout`]).
    Timeout,
}

impl Edge {
    /// Drains every queued action into a [`Step`], by consumer, with the next wake-up time.
    #[must_use]
    pub fn step(&mut self) -> Step {
        let mut step = Step::default();
        while let Some(action) = self.poll_action() {
            match action {
                Action::Forward(f) => step.decisions.push(Decision::Forward(f)),
                Action::Reject(r) => step.decisions.push(Decision::Reject(r)),
                Action::Fetch(f) => step.fetches.push(f),
                Action::SharedLookup(l) => step.lookups.push(l),
                Action::SharedPublish(p) => step.publishes.push(p),
                Action::Audit(a) => step.audits.push(a),
            }
        }
        step.wake_at = self.poll_timeout();
        step
    }

    /// Feeds one input at `now` and returns everything it produced. `Err` is API misuse (a
    /// ticket never issued) or a refused revocation; the step is then left queued for the next
    /// call.
    pub fn handle(&mut self, now: u64, input: Input<'_>) -> Result<Step, EdgeError> {
        match input {
            Input::Request(r) => self.handle_request(now, &r),
            Input::Fetched { ticket, result } => {
                self.handle_fetch(now, ticket, result.as_ref().map_err(|d| *d))?;
            }
            Input::LookedUp { ticket, result } => {
                self.handle_shared_lookup(now, ticket, result)?;
            }
            Input::Revocation { revocation, origin } => {
                self.handle_revocation(now, revocation, origin)?;
            }
            Input::SecurityEvent(set) => self.handle_security_event(now, set)?,
            Input::Timeout => self.handle_timeout(now),
        }
        Ok(self.step())
    }
}

// ---------------------------------------------------------------------------------------------
// Forwarding policy
// ---------------------------------------------------------------------------------------------

/// Where a forwarded request goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop<'a> {
    /// A proxy (phantom-gateway, the proxy component): the request is sent to another server,
    /// which may trust the forwarding headers, so the client's are replaced by the edge's own.
    Proxy {
        /// The client's address (the TCP peer), appended to the inbound `x-forwarded-for`
        /// chain. `None` (the peer is not known, as in wasi:http): no `x-forwarded-for` at all,
        /// since a chain the client wrote with no hop of ours after it is the client's word.
        peer: Option<&'a str>,
        /// The scheme the client used (`http` / `https`): `x-forwarded-proto`.
        proto: &'a str,
        /// The upstream's `host[:port]`, sent as `host`; `None` keeps the inbound one.
        upstream_authority: Option<&'a str>,
    },
    /// A middleware: the app reads the request in the same process, behind whatever proxies
    /// the deployment already has, whose forwarding and connection headers stay as they are.
    InProcess,
}

/// How to turn the inbound headers into the upstream's: drop these, then add those.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamHeaders {
    /// Indexes (ascending) into the inbound list of the headers not passed on. The host keeps
    /// the others as they are, bytes and order (their values are never rewritten).
    pub drop: Vec<usize>,
    /// Headers to add after the kept ones (lowercase names), in order: the forwarded JWT's, then
    /// for a proxy `host`, `x-forwarded-host`, `x-forwarded-for`, `x-forwarded-proto`.
    pub set: Vec<(String, String)>,
}

/// Hop-by-hop headers (RFC 9110 §7.6.1, and `http2-settings`, RFC 9113 §8.2.2): never sent on
/// by a proxy, in either direction.
pub const HOP_BY_HOP: [&str; 10] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// The names a message's `Connection` headers list (as read: lowercase, `_` as `-`): hop-by-hop
/// for that message too.
fn connection_tokens(headers: &[(&str, &str)]) -> Vec<String> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .flat_map(|(_, v)| v.split(','))
        .map(|t| header_name_as_read(t.trim()).into_owned())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Indexes (ascending) of the hop-by-hop headers of a message a proxy relays (also the
/// upstream's answer on its way back): [`HOP_BY_HOP`] and the names its `Connection` headers
/// list, compared as read.
pub fn hop_by_hop_headers(headers: &[(&str, &str)]) -> Vec<usize> {
    let connection = connection_tokens(headers);
    headers
        .iter()
        .enumerate()
        .filter(|(_, (n, _))| {
            let n = header_name_as_read(n);
            HOP_BY_HOP.contains(&&*n) || connection.iter().any(|c| *c == n)
        })
        .map(|(i, _)| i)
        .collect()
}

impl Edge {
    /// The forwarding policy: how the inbound headers of a forwarded request become the
    /// upstream's. `inbound` are the request's headers in order (values as text; only
    /// `connection`, `host` and `x-forwarded-for` are read, so a host may pass other values
    /// lossily converted), `header_value` the [`Forward`]'s.
    ///
    /// Every name is compared as WSGI/CGI servers read it ([`header_name_as_read`]: `X_Jwt`
    /// is `x-jwt`). Always dropped: the strip list ([`Edge::strip_headers`]: the client's
    /// credentials, the path-override headers, `upstream.strip_headers`) and any inbound header
    /// spelt like the one the edge sets. For a [`Hop::Proxy`] also: `host`, the hop-by-hop
    /// headers and those `Connection` lists, and every [`FORWARDING_HEADERS`] name (the edge
    /// sets its own). The forwarded JWT's header is added last of the kept ones.
    pub fn upstream_headers(
        &self,
        inbound: &[(&str, &str)],
        header_value: &str,
        hop: &Hop<'_>,
    ) -> UpstreamHeaders {
        let header_name = self.forward_header_name();
        // Compared as read on both sides: `upstream.header = "x_jwt"` or a strip entry `x_user`
        // must still drop an inbound `X-Jwt` / `X-User` (WSGI reads them as the same name).
        let (own, strip) = self.forwarding_names_as_read();
        let proxy = matches!(hop, Hop::Proxy { .. });
        let connection = if proxy {
            connection_tokens(inbound)
        } else {
            Vec::new()
        };
        let mut out = UpstreamHeaders::default();
        let mut host: Option<&str> = None;
        let mut chain: Vec<&str> = Vec::new();
        for (i, (name, value)) in inbound.iter().enumerate() {
            let n: Cow<'_, str> = header_name_as_read(name);
            let n = &*n;
            if proxy {
                if n == "host" {
                    host.get_or_insert(value);
                } else if n == "x-forwarded-for" {
                    chain.extend(value.split(',').map(str::trim).filter(|v| !v.is_empty()));
                }
            }
            let dropped = n == own
                || strip.iter().any(|s| s == n)
                || (proxy
                    && (n == "host"
                        || HOP_BY_HOP.contains(&n)
                        || connection.iter().any(|c| c == n)
                        || FORWARDING_HEADERS.contains(&n)));
            if dropped {
                out.drop.push(i);
            }
        }
        out.set
            .push((header_name.to_owned(), header_value.to_owned()));
        if let Hop::Proxy {
            peer,
            proto,
            upstream_authority,
        } = *hop
        {
            match (upstream_authority, host) {
                (Some(a), _) => out.set.push(("host".into(), a.into())),
                (None, Some(h)) => out.set.push(("host".into(), h.into())),
                (None, None) => {}
            }
            if let Some(h) = host {
                out.set.push(("x-forwarded-host".into(), h.into()));
            }
            if let Some(peer) = peer {
                chain.push(peer);
                out.set.push(("x-forwarded-for".into(), chain.join(", ")));
            }
            out.set.push(("x-forwarded-proto".into(), proto.into()));
        }
        out
    }
}
