//! The state machine.
//!
//! [`Edge`] is defined here, with its constructor, the action queue and timer the host drains,
//! its metrics and audit settings. Its other inputs and steps are `impl Edge` blocks, one file
//! per responsibility:
//!
//! - `intake`: [`Edge::handle_request`], from a client request to a decision or a ticket;
//! - `routing`: the path check and the route a path selects;
//! - `tickets`: introspections and shared-store lookups in flight, the requests coalesced on
//!   them, their answers, and `complete`, which answers the waiters and caches;
//! - `jwks`: the authorization server's keys: fetches and their pacing, retry backoff, answers
//!   parked until the keys they need arrive;
//! - `revocations`: revocations, Security Event Tokens, the admin route, publishing to the
//!   other instances;
//! - `authorize`: authorization on every request and the decision it queues;
//! - `mint`: the upstream JWTs minted per route and the header value forwarded;
//! - `challenge`: rejections and their RFC 6750 challenges;
//! - `admin`: the operator routes (revocation, metrics, the edge's JWKS) answered whole.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::action::{
    Action, AuditEvent, AuditKind, AuditKinds, AuditLevel, Reason, RequestId, Ticket,
};
use crate::cache::Cache;
use crate::config::{Config, header_name_as_read};
use crate::introspection::Outcome;
use crate::jose::KeySet;
use crate::metrics::{Metrics, Stats};
use crate::replay::ReplaySet;
use crate::revocation::RevocationSet;
use crate::secret::{Fingerprint, FingerprintBuild, Fingerprinter};

// The inputs, in the order of the run loop (rustdoc lists their methods in this order, before
// the ones defined here), then the steps they share.
mod intake;

mod tickets;

mod jwks;

mod revocations;

mod authorize;
mod challenge;
mod mint;
mod routing;

mod admin;

pub use admin::{ADMIN_CHALLENGE, AdminAnswer, AdminRequest, AdminRoute, Listener, MAX_ADMIN_BODY};
use intake::TokenBucket;
use jwks::JwksFetch;
pub use jwks::MAX_JWKS_BODY;
use mint::Minter;
use tickets::Pending;

/// API misuse by the host. Everything about tokens and the authorization server is an
/// [`Action`], never an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EdgeError {
    /// A response for a ticket this core never issued.
    #[error("unknown ticket {0}")]
    UnknownTicket(Ticket),
    /// A shared-store answer for an introspection ticket, or the reverse.
    #[error("ticket {0} is not of this kind")]
    WrongTicketKind(Ticket),
    /// A revocation or Security Event Token was refused ([`Edge::handle`]).
    #[error(transparent)]
    Revocation(#[from] crate::revocation::RevocationError),
}

/// The answer of the shared store to a [`SharedLookup`](crate::SharedLookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupResult<'a> {
    /// The stored value (`header.payload` for split tokens).
    Found(&'a str),
    /// No such key.
    NotFound,
    /// The store failed: fail closed.
    Error,
}

const SWEEP_INTERVAL_MS: u64 = 10_000;

/// The phantom-token edge as a sans-I/O state machine. See the crate documentation for the
/// run-loop contract.
#[derive(Debug)]
pub struct Edge {
    cfg: Arc<Config>,
    fp: Fingerprinter,
    minter: Minter,
    last_now: u64,
    actions: VecDeque<Action>,
    /// The latest `exp` (ms) of any active token introspected: revocations without a lifetime
    /// of their own are kept at least until then, up to a horizon ([`Edge::default_until`]).
    latest_exp_ms: u64,
    /// Audit kinds muted by name ([`Edge::mute_audits`]).
    muted_kinds: AuditKinds,
    /// Lowest audit level queued ([`Edge::set_audit_level`]).
    audit_level: AuditLevel,
    /// Audit kinds not queued: `muted_kinds` and the kinds below `audit_level`.
    muted: AuditKinds,
    cache: Cache,
    pending: HashMap<Fingerprint, Pending, FingerprintBuild>,
    /// Waiters over all of `pending` (bounded by `cache.max_waiting`).
    waiting: usize,
    tickets: HashMap<Ticket, Fingerprint>,
    deadlines: BTreeSet<(u64, Ticket)>,
    next_ticket: Ticket,
    keys: Option<KeySet>,
    /// The JWKS fetch in flight: its ticket and deadline (also in `deadlines`).
    jwks_ticket: Option<(Ticket, u64)>,
    /// When the last JWKS fetch started (any reason).
    jwks_last_fetch: Option<u64>,
    /// When the last fetch at start or for an unknown `kid` started: unknown kids are
    /// rate-limited by this one, so a scheduled refresh never uses up the allowance a key
    /// rotation needs.
    jwks_last_demand: Option<u64>,
    /// Unknown `kid`s that fetched the JWKS, and when (bounded: `jwks::JWKS_NEW_KIDS`).
    kids_sought: Vec<(String, u64)>,
    /// When the key set in use arrived.
    jwks_fetched_at: Option<u64>,
    /// JWKS fetches that failed in a row (0 after a success).
    jwks_failures: u32,
    /// After a failed fetch: when the core fetches again by itself (see
    /// [`JWKS_RETRY_MS`](jwks::JWKS_RETRY_MS)).
    jwks_retry_at: Option<u64>,
    parked: Vec<Ticket>,
    revocations: RevocationSet,
    dpop_replay: ReplaySet,
    set_replay: ReplaySet,
    metrics: Metrics,
    header_name: Arc<str>,
    strip: Arc<[String]>,
    /// `header_name` and `strip` as WSGI/CGI servers read them (`header_name_as_read`), for the
    /// forwarding policy: computed once, not per forwarded request.
    forwarding_as_read: (String, Box<[String]>),
    next_sweep: u64,
    /// A route prefix has upper-case letters: paths are also routed case-insensitively.
    routes_fold: bool,
    /// Paces new introspections (`authorization_server.max_introspections_per_second`).
    introspection_budget: TokenBucket,
    /// The `not_cacheable` warning was given.
    warned_no_store: bool,
}

impl Edge {
    /// Creates the edge at time `now` (Unix milliseconds). `seed` is 32 bytes of entropy from the
    /// host: it keys token fingerprints (unless `cache.fingerprint_key` is configured) and the
    /// ids of minted JWTs. The same seed and events give the same actions.
    ///
    /// Queues a [`FetchJwks`](crate::FetchJwks) when the configuration verifies JWTs.
    pub fn new(config: Config, seed: [u8; 32], now: u64) -> Self {
        let fp_key = config
            .fingerprint_key
            .unwrap_or_else(|| blake3::derive_key("phantom-edge 2026 fingerprint", &seed));
        let mut edge = Self {
            fp: Fingerprinter::new(fp_key),
            minter: Minter::new(blake3::derive_key("phantom-edge 2026 jti", &seed)),
            last_now: now,
            actions: VecDeque::new(),
            latest_exp_ms: 0,
            muted_kinds: AuditKinds::NONE,
            audit_level: AuditLevel::Debug,
            muted: AuditKinds::NONE,
            cache: Cache::new(
                config.max_entries,
                config.max_bytes,
                config.negative_max_entries,
            ),
            pending: HashMap::default(),
            waiting: 0,
            tickets: HashMap::new(),
            deadlines: BTreeSet::new(),
            next_ticket: 1,
            keys: None,
            jwks_ticket: None,
            jwks_last_fetch: None,
            jwks_last_demand: None,
            kids_sought: Vec::new(),
            jwks_fetched_at: None,
            jwks_failures: 0,
            jwks_retry_at: None,
            parked: Vec::new(),
            revocations: RevocationSet::new(config.revocation_max_entries),
            dpop_replay: ReplaySet::new(config.dpop_max_replay_entries),
            set_replay: ReplaySet::new(config.revocation_max_entries),
            metrics: Metrics::default(),
            header_name: config.upstream_header.as_str().into(),
            strip: config.strip_headers.clone().into(),
            forwarding_as_read: (
                header_name_as_read(&config.upstream_header).into_owned(),
                config
                    .strip_headers
                    .iter()
                    .map(|h| header_name_as_read(h).into_owned())
                    .collect(),
            ),
            next_sweep: now.saturating_add(SWEEP_INTERVAL_MS),
            introspection_budget: TokenBucket::full(config.max_introspections_per_second, now),
            warned_no_store: false,
            routes_fold: config
                .routes
                .iter()
                .any(|r| r.path_prefix.bytes().any(|c| c.is_ascii_uppercase())),
            cfg: Arc::new(config),
        };
        if edge.cfg.jwks_uri.is_some() {
            edge.request_jwks(now, JwksFetch::Start);
        }
        edge
    }

    /// The configuration this edge runs with.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The next action for the host, or `None` when there is nothing left to do now. After
    /// draining, ask [`Edge::poll_timeout`] when to call [`Edge::handle_timeout`].
    #[must_use]
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The decision for request `id` when it is the only queued action (a cache hit, or a
    /// rejection made without I/O, with nothing else to hand out): taken from the queue, so a
    /// host can answer a hit in one call. Otherwise `None`, and the queue is unchanged (drain it
    /// as usual; the decision, if any, is in it in order).
    ///
    /// A request decided at once creates no ticket; it can move [`Edge::poll_timeout`] only when
    /// it carried a DPoP proof (whose replay entry can start the sweep deadline), so a host needs
    /// to re-check its timer after such a decision only for DPoP requests.
    pub fn take_decision(&mut self, id: RequestId) -> Option<Action> {
        let alone = self.actions.len() == 1
            && match self.actions.front() {
                Some(Action::Forward(f)) => f.request_id == id,
                Some(Action::Reject(r)) => r.request_id == id,
                _ => false,
            };
        if alone {
            self.actions.pop_front()
        } else {
            None
        }
    }

    /// Drains every queued action.
    #[must_use]
    pub fn drain_actions(&mut self) -> Vec<Action> {
        self.actions.drain(..).collect()
    }

    /// When (Unix ms) [`Edge::handle_timeout`] must be called next, if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let ticket = self.deadlines.first().map(|(d, _)| *d);
        let sweep = (self.revocations.len() + self.dpop_replay.len() + self.set_replay.len() > 0)
            .then_some(self.next_sweep);
        [ticket, sweep, self.jwks_retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// The ticket of the JWKS fetch in flight, if one is (its answer goes to
    /// [`Edge::handle_fetch`] like any other).
    pub fn jwks_in_flight(&self) -> Option<Ticket> {
        self.jwks_ticket.map(|(t, _)| t)
    }

    /// Counters since start.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Current sizes of the bounded structures.
    pub fn stats(&self) -> Stats {
        Stats {
            cache_entries: self.cache.len(),
            cache_bytes: self.cache.bytes(),
            negative_entries: self.cache.negative_len(),
            pending: self.pending.len(),
            waiters: self.waiting,
            revocations: self.revocations.len(),
            dpop_replay_entries: self.dpop_replay.len(),
            jwks_keys: self.keys.as_ref().map_or(0, KeySet::len),
            evictions: self.cache.evictions,
        }
    }

    /// Prometheus text exposition of [`Edge::metrics`] and [`Edge::stats`].
    pub fn prometheus(&self) -> String {
        self.metrics.prometheus(&self.stats())
    }

    /// The header every [`Forward`](crate::Forward) sets (its `header_name`): constant for an
    /// edge.
    pub fn forward_header_name(&self) -> &str {
        &self.header_name
    }

    /// The headers every [`Forward`](crate::Forward) strips (its `strip_headers`): constant for
    /// an edge, always including `authorization` and `dpop`.
    pub fn strip_headers(&self) -> &[String] {
        &self.strip
    }

    /// The forwarded header's name and the stripped names, as read (see `forwarding_as_read`).
    pub(crate) fn forwarding_names_as_read(&self) -> (&str, &[String]) {
        (&self.forwarding_as_read.0, &self.forwarding_as_read.1)
    }

    /// The fingerprint this edge computes for a token (for operators and revocation tooling).
    pub fn fingerprint(&self, token: &str) -> Fingerprint {
        self.fp.fingerprint(token)
    }

    /// The edge's own public keys as a JWKS document (`{"keys": [...]}`), for backends that
    /// verify minted JWTs. `None` without `[assertions]`.
    pub fn assertion_jwks(&self) -> Option<String> {
        let a = self.cfg.assertions.as_ref()?;
        Some(serde_json::json!({ "keys": [a.key.public_jwk()] }).to_string())
    }

    fn tick(&mut self, now: u64) -> u64 {
        // The core never moves time backwards.
        self.last_now = self.last_now.max(now);
        self.last_now
    }

    fn audit(&mut self, ev: AuditEvent) {
        queue_audit(&mut self.actions, self.muted, ev);
    }

    /// From now on, audit events of these kinds are not queued (e.g. the routine `cache_hit`
    /// while the host's logger is above DEBUG): a hit then queues only its `Forward`.
    /// [`AuditKinds::NONE`] queues every kind again. Decisions, metrics and every other action
    /// are unchanged; events already queued stay queued.
    /// Composes with [`Edge::set_audit_level`]: a kind is queued when neither mutes it.
    pub fn mute_audits(&mut self, kinds: AuditKinds) {
        self.muted_kinds = kinds;
        self.muted = kinds.union(AuditKinds::below(self.audit_level));
    }

    /// From now on, audit events below `level` ([`AuditKind::level`]) are not queued: a host
    /// whose logger is at info level sets [`AuditLevel::Info`] and the routine per-request
    /// kinds are not even built. [`AuditLevel::Debug`] (the default) queues every level again.
    /// Composes with [`Edge::mute_audits`]; decisions, metrics and every other action are
    /// unchanged; events already queued stay queued.
    pub fn set_audit_level(&mut self, level: AuditLevel) {
        self.audit_level = level;
        self.muted = self.muted_kinds.union(AuditKinds::below(level));
    }

    // -----------------------------------------------------------------------------------------
    // Time
    // -----------------------------------------------------------------------------------------

    /// Time passed: times out pending tickets (their waiters get 503) and forgets expired
    /// revocations and replay entries.
    pub fn handle_timeout(&mut self, now: u64) {
        let now = self.tick(now);
        while let Some(&(deadline, ticket)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            if self.jwks_ticket.is_some_and(|(t, _)| t == ticket) {
                self.jwks_answer(now, Err("no answer within the timeout"));
            } else if let Some(fp) = self.tickets.get(&ticket).copied() {
                let mut ev = AuditEvent::new(AuditKind::TicketTimedOut);
                ev.ticket = Some(ticket);
                ev.fingerprint = Some(fp);
                self.audit(ev);
                self.complete(
                    fp,
                    Outcome::Failure(Reason::Timeout, "no answer within the timeout".into()),
                    now,
                );
            }
        }
        if self.jwks_retry_at.is_some_and(|t| t <= now) {
            // Cleared first: a fetch already in flight settles the retry with its own result.
            self.jwks_retry_at = None;
            self.request_jwks(now, JwksFetch::Retry);
        }
        if now >= self.next_sweep {
            self.revocations.expire(now);
            self.dpop_replay.expire(now);
            self.set_replay.expire(now);
            self.next_sweep = now.saturating_add(SWEEP_INTERVAL_MS);
        }
    }
}

/// A host-supplied failure detail made safe for audit events: no control characters, bounded.
fn host_detail(detail: &str) -> String {
    detail
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

/// Queues `ev` unless its kind is muted (the one place that rule is applied).
fn queue_audit(actions: &mut VecDeque<Action>, muted: AuditKinds, ev: AuditEvent) {
    if !muted.contains(ev.kind) {
        actions.push_back(Action::Audit(ev));
    }
}
