//! The state machine.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::action::{
    Action, AuditEvent, AuditKind, AuditKinds, AuditLevel, FetchJwks, Forward, IntrospectRequest,
    Reason, Reject, RequestId, SharedLookup, SharedPublish, Ticket,
};
use crate::cache::{Cache, Entry, Minted};
use crate::config::{Config, Mode, Route};
use crate::dpop::check_proof;
use crate::introspection::{
    HttpResponse, JwtFailure, Outcome, build_request, media_type, parse_response, verify_access_jwt,
};
use crate::jose::{KeySet, sha256_b64};
use crate::metrics::{Metrics, Stats};
use crate::replay::{ReplaySet, Seen};
use crate::request::{
    Credentials, QueryToken, Request, check_path, credentials, htu_path, normalize_htu,
    query_token, raw_path,
};
use crate::revocation::{
    Extended, Forgotten, Kind, Origin, Revocation, RevocationError, RevocationSet, Selector,
};
use crate::secret::{Fingerprint, FingerprintBuild, Fingerprinter, Secret};
use crate::set::{SetAction, parse_security_event};
use crate::token::TokenInfo;

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
}

/// The answer of the shared store to a [`SharedLookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupResult<'a> {
    /// The stored value (`header.payload` for split tokens).
    Found(&'a str),
    /// No such key.
    NotFound,
    /// The store failed: fail closed.
    Error,
}

#[derive(Debug, Clone)]
struct Binding {
    dpop: bool,
    jkt: Option<String>,
    /// The DPoP proof's replay id and lifetime, recorded when the request is let through.
    proof: Option<(Fingerprint, u64)>,
    /// Split mode: the signature this request presented. The cache keeps only `header.payload.`
    /// of a reassembled JWT (invariant 1: not the credential the client holds); the forwarded
    /// value is completed with the signature each request brings (the same one: it is what the
    /// entry's fingerprint is computed from).
    split_signature: Option<Secret>,
    cert: Option<String>,
    rewritten_path: Option<String>,
}

#[derive(Debug)]
struct Waiter {
    request_id: RequestId,
    route: usize,
    binding: Binding,
}

#[derive(Debug)]
enum Parked {
    Introspection {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Split(String),
}

#[derive(Debug)]
struct Pending {
    ticket: Ticket,
    deadline: u64,
    waiters: Vec<Waiter>,
    /// An invalidation arrived while in flight: answer the waiters, cache nothing.
    no_cache: bool,
    parked: Option<Parked>,
}

/// Mints upstream JWTs and unique ids.
struct Minter {
    key: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("key", &"{REDACTED}")
            .field("counter", &self.counter)
            .finish()
    }
}

impl Minter {
    fn next_id(&mut self) -> String {
        self.counter += 1;
        let h = blake3::keyed_hash(&self.key, &self.counter.to_le_bytes());
        h.as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

const SWEEP_INTERVAL_MS: u64 = 10_000;

/// How far ahead [`Edge::default_until`] follows the latest token `exp` seen: 30 days.
const LATEST_EXP_HORIZON_MS: u64 = 30 * 24 * 3600 * 1000;

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
    jwks_in_flight: bool,
    /// When the last JWKS fetch started (any reason).
    jwks_last_fetch: Option<u64>,
    /// When the last fetch at start or for an unknown `kid` started: unknown kids are
    /// rate-limited by this one, so a scheduled refresh never uses up the allowance a key
    /// rotation needs.
    jwks_last_demand: Option<u64>,
    /// When the key set in use arrived.
    jwks_fetched_at: Option<u64>,
    /// JWKS fetches that failed in a row (0 after a success).
    jwks_failures: u32,
    /// After a failed fetch: when the core fetches again by itself (see [`JWKS_RETRY_MS`]).
    jwks_retry_at: Option<u64>,
    parked: Vec<Ticket>,
    revocations: RevocationSet,
    dpop_replay: ReplaySet,
    set_replay: ReplaySet,
    metrics: Metrics,
    header_name: Arc<str>,
    strip: Arc<[String]>,
    next_sweep: u64,
    /// A route prefix has upper-case letters: paths are also routed case-insensitively.
    routes_fold: bool,
    /// Paces new introspections (`authorization_server.max_introspections_per_second`).
    introspection_budget: TokenBucket,
    /// The `not_cacheable` warning was given.
    warned_no_store: bool,
}

/// A token bucket holding at most one second's worth of `rate`, refilled continuously from the
/// host's clock; `take` spends one token when there is one.
#[derive(Debug)]
struct TokenBucket {
    rate: u64,
    /// Thousandths of a token.
    milli: u64,
    at: u64,
}

impl TokenBucket {
    fn full(rate: u64, now: u64) -> Self {
        Self {
            rate,
            milli: rate.saturating_mul(1000),
            at: now,
        }
    }

    fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.at);
        self.at = self.at.max(now);
        let cap = self.rate.saturating_mul(1000);
        // `rate` per second is `rate` thousandths of a token per millisecond.
        self.milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(cap);
        if self.milli < 1000 {
            return false;
        }
        self.milli -= 1000;
        true
    }
}

/// Why the JWKS is fetched (each has its own pace; see `Edge::request_jwks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JwksFetch {
    Start,
    UnknownKid,
    Refresh,
    /// After a failure, on the backoff timer.
    Retry,
}

/// After a failed JWKS fetch the core fetches again by itself after this long, doubling with
/// each failure in a row up to `jwks_min_refresh`, so an edge started before its authorization
/// server (or that fetched while the server restarted) serves again within about this long of the
/// server coming back. While the last fetch failed, a request that needs the keys may also fetch
/// them, at most this often.
pub(crate) const JWKS_RETRY_MS: u64 = 500;

impl Edge {
    /// Creates the edge at time `now` (Unix milliseconds). `seed` is 32 bytes of entropy from the
    /// host: it keys token fingerprints (unless `cache.fingerprint_key` is configured) and the
    /// ids of minted JWTs. The same seed and events give the same actions.
    ///
    /// Queues a [`FetchJwks`] when the configuration verifies JWTs.
    pub fn new(config: Config, seed: [u8; 32], now: u64) -> Self {
        let fp_key = config
            .fingerprint_key
            .unwrap_or_else(|| blake3::derive_key("phantom-edge 2026 fingerprint", &seed));
        let mut edge = Self {
            fp: Fingerprinter::new(fp_key),
            minter: Minter {
                key: blake3::derive_key("phantom-edge 2026 jti", &seed),
                counter: 0,
            },
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
            jwks_in_flight: false,
            jwks_last_fetch: None,
            jwks_last_demand: None,
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

    /// The header every [`Forward`] sets (its `header_name`): constant for an edge.
    pub fn forward_header_name(&self) -> &str {
        &self.header_name
    }

    /// The headers every [`Forward`] strips (its `strip_headers`): constant for an edge, always
    /// including `authorization` and `dpop`.
    pub fn strip_headers(&self) -> &[String] {
        &self.strip
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
    // Requests
    // -----------------------------------------------------------------------------------------

    /// A client request arrived. Queues a `Forward` or `Reject` for `req.id` now (cache hit,
    /// negative hit, bad request), or later when the introspection it queues (or joins) is
    /// answered.
    pub fn handle_request(&mut self, now: u64, req: &Request<'_>) {
        let now = self.tick(now);
        self.metrics.requests += 1;
        let lenient = match check_path(req.path) {
            Ok(l) => l,
            Err(why) => {
                return self.reject(req.id, Reason::AmbiguousPath, None, false, None, Some(why));
            }
        };
        let raw = raw_path(req.path);
        let route = route_matching(&self.cfg.routes, raw, false);
        // The route as a lenient upstream would pick it (decoded, `;` parameters and trailing
        // dots dropped, any case) must be the same one, or the two could authorize differently.
        // (Skipped when neither reading can differ: nothing decoded, no upper case anywhere.)
        if lenient.is_some() || self.routes_fold || raw.bytes().any(|c| c.is_ascii_uppercase()) {
            let other = route_matching(&self.cfg.routes, lenient.as_deref().unwrap_or(raw), true);
            if other != route {
                let why = Some("the path could be routed differently by the service behind");
                return self.reject(req.id, Reason::AmbiguousPath, None, false, None, why);
            }
        }
        let Some(route) = route else {
            return self.reject(req.id, Reason::NoRoute, None, false, None, None);
        };
        let query = if self.cfg.allow_query_token {
            query_token(req.path)
        } else {
            QueryToken::Absent
        };
        let query_owned: String;
        let (token, dpop, rewritten_path) = match (credentials(req.headers), query) {
            (Credentials::Malformed(why), _) | (_, QueryToken::Malformed(why)) => {
                return self.reject(
                    req.id,
                    Reason::MalformedRequest,
                    None,
                    false,
                    None,
                    Some(why),
                );
            }
            (Credentials::Bearer(_) | Credentials::Dpop(_), QueryToken::One { .. }) => {
                let why = Some("the token was sent in more than one way");
                return self.reject(req.id, Reason::MalformedRequest, None, false, None, why);
            }
            (Credentials::None, QueryToken::Absent) => {
                return self.reject(req.id, Reason::MissingToken, None, false, None, None);
            }
            (Credentials::None, QueryToken::One { token, rewritten }) => {
                query_owned = token;
                (query_owned.as_str(), false, Some(rewritten))
            }
            (Credentials::Bearer(t), QueryToken::Absent) => (t, false, None),
            (Credentials::Dpop(t), QueryToken::Absent) => (t, true, None),
        };
        let fp = self.fp.fingerprint(token);

        // A DPoP proof is checked per request, before anything can succeed (RFC 9449 §4.3).
        let mut jkt = None;
        let mut proof = None;
        if dpop {
            let proofs: Vec<&str> = req
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("dpop"))
                .map(|(_, v)| *v)
                .collect();
            // This edge's public origins when configured (behind TLS offload the request's
            // scheme is not the client's, and `Host` is the client's to choose), else the
            // request's own.
            let htus: Vec<String> = if self.cfg.dpop_origins.is_empty() {
                vec![normalize_htu(req.scheme, req.authority, req.path)]
            } else {
                let path = htu_path(req.path);
                self.cfg
                    .dpop_origins
                    .iter()
                    .map(|o| format!("{o}{path}"))
                    .collect()
            };
            match check_proof(
                &self.cfg,
                &self.fp,
                &self.dpop_replay,
                &proofs,
                req.method,
                &htus,
                token,
                now,
            ) {
                Ok(p) => {
                    jkt = Some(p.jkt);
                    proof = Some((p.replay_id, p.replay_until));
                }
                Err(why) => {
                    return self.reject(
                        req.id,
                        Reason::InvalidDpopProof,
                        Some(fp),
                        true,
                        None,
                        Some(why),
                    );
                }
            }
        }
        let binding = Binding {
            dpop,
            jkt,
            proof,
            split_signature: (self.cfg.mode == Mode::Split).then(|| Secret::new(token.to_owned())),
            cert: req.client_cert_thumbprint.map(str::to_owned),
            rewritten_path,
        };

        // Positive cache: authorization still runs on every hit (invariant 4).
        if self.decide_cached(req.id, fp, route, &binding, now, true) {
            return;
        }
        if let Some(reason) = self.cache.negative(&fp, now) {
            self.metrics.negative_hits += 1;
            let mut ev = AuditEvent::new(AuditKind::NegativeHit);
            ev.request_id = Some(req.id);
            ev.fingerprint = Some(fp);
            self.audit(ev);
            return self.reject(req.id, reason, Some(fp), dpop, None, None);
        }
        if self.revocations.is_fingerprint_revoked(&fp) {
            return self.reject(req.id, Reason::Revoked, Some(fp), dpop, None, None);
        }
        self.metrics.cache_misses += 1;
        let mut ev = AuditEvent::new(AuditKind::CacheMiss);
        ev.request_id = Some(req.id);
        ev.fingerprint = Some(fp);
        self.audit(ev);

        let waiter = Waiter {
            request_id: req.id,
            route,
            binding,
        };
        // Bounded (invariant 7): the waiters over all tokens, the waiters on this token's ticket,
        // the tickets in flight.
        let in_flight = self.pending.get(&fp).map(|p| p.waiters.len());
        let full = if self.waiting >= self.cfg.max_waiting {
            Some("too many waiting requests")
        } else if in_flight.is_some_and(|n| n >= self.cfg.max_waiters) {
            Some("too many waiters")
        } else if in_flight.is_none() && self.pending.len() >= self.cfg.max_pending {
            Some("too many pending")
        } else {
            None
        };
        if let Some(detail) = full {
            return self.reject(
                req.id,
                Reason::Overloaded,
                Some(fp),
                dpop,
                None,
                Some(detail),
            );
        }
        if let Some(p) = self.pending.get_mut(&fp) {
            // Coalescing: one introspection per token in flight (invariant 5).
            p.waiters.push(waiter);
            self.waiting += 1;
            self.metrics.coalesced += 1;
            let mut ev = AuditEvent::new(AuditKind::Coalesced);
            ev.request_id = Some(req.id);
            ev.ticket = Some(p.ticket);
            ev.fingerprint = Some(fp);
            self.audit(ev);
            return;
        }
        // A flood of unknown tokens must not take the authorization server down: new
        // introspections are paced by a token bucket (cached and coalesced requests are not).
        if self.cfg.mode == Mode::Phantom && !self.introspection_budget.take(now) {
            self.metrics.rate_limited += 1;
            let why = Some("introspection rate limit reached");
            return self.reject(req.id, Reason::RateLimited, Some(fp), dpop, None, why);
        }
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let deadline = now.saturating_add(self.cfg.timeout_ms);
        self.pending.insert(
            fp,
            Pending {
                ticket,
                deadline,
                waiters: vec![waiter],
                no_cache: false,
                parked: None,
            },
        );
        self.waiting += 1;
        self.tickets.insert(ticket, fp);
        self.deadlines.insert((deadline, ticket));
        match self.cfg.mode {
            Mode::Phantom => {
                let jti = if self.cfg.client_auth == crate::config::ClientAuth::PrivateKeyJwt {
                    self.minter.next_id()
                } else {
                    String::new()
                };
                let (headers, body) = build_request(&self.cfg, token, now, &jti);
                self.metrics.introspections += 1;
                self.actions
                    .push_back(Action::Introspect(IntrospectRequest {
                        ticket,
                        method: "POST",
                        url: self.cfg.introspection_endpoint.clone().unwrap_or_default(),
                        headers,
                        body,
                        timeout_ms: self.cfg.timeout_ms,
                        fingerprint: fp,
                    }));
            }
            Mode::Split => {
                self.metrics.shared_lookups += 1;
                let key = format!(
                    "{}{}",
                    self.cfg.split_key_prefix,
                    sha256_b64(token.as_bytes())
                );
                self.actions
                    .push_back(Action::SharedLookup(SharedLookup { ticket, key }));
            }
        }
    }

    /// Authorizes a request against the cached entry for `fp` and queues the decision.
    fn decide_cached(
        &mut self,
        id: RequestId,
        fp: Fingerprint,
        route: usize,
        binding: &Binding,
        now: u64,
        hit: bool,
    ) -> bool {
        let Self {
            cache,
            cfg,
            minter,
            actions,
            metrics,
            revocations,
            muted,
            ..
        } = self;
        // One lookup per request: the entry found here is the one decided on.
        let Some(entry) = cache.get_mut(&fp, now) else {
            return false;
        };
        if entry.epoch != revocations.epoch {
            if let Some(extended) = revocations.matches(&fp, &entry.info, cfg.leeway_ms) {
                publish_extensions(actions, extended);
                cache.remove(&fp);
                cache.insert_negative(
                    fp,
                    now.saturating_add(cfg.negative_ttl_ms.max(1)),
                    Reason::Revoked,
                );
                self.reject(id, Reason::Revoked, Some(fp), binding.dpop, None, None);
                return true;
            }
            entry.epoch = revocations.epoch;
        }
        if hit {
            metrics.cache_hits += 1;
            let mut ev = AuditEvent::new(AuditKind::CacheHit);
            ev.request_id = Some(id);
            ev.fingerprint = Some(fp);
            queue_audit(actions, *muted, ev);
        }
        let mut resized = None;
        let decision = decide(cfg, minter, entry, route, binding, now, &mut resized);
        let info = entry.info.clone();
        if let Some((before, after)) = resized {
            cache.resized(before, after);
        }
        self.emit_decision(decision, id, fp, route, binding, info, now);
        true
    }

    /// Queues the `Forward` or `Reject` for one authorization decision. A request let through
    /// with a DPoP proof records the proof's `jti` here, and only here (RFC 9449 §11.1): a proof
    /// for a token that is unknown, inactive, revoked or bound to another key never takes room
    /// in the bounded replay set, so nobody without a valid bound token can fill it.
    #[allow(clippy::too_many_arguments)]
    fn emit_decision(
        &mut self,
        decision: Result<Arc<str>, Reason>,
        id: RequestId,
        fp: Fingerprint,
        route: usize,
        binding: &Binding,
        info: Arc<TokenInfo>,
        now: u64,
    ) {
        if decision.is_ok()
            && let Some((proof, until)) = binding.proof
        {
            // Remembered at least past `now`: the window may have closed while the request
            // waited for its introspection, and a second waiter with the same proof, decided
            // in this same call, must still find it.
            match self
                .dpop_replay
                .insert(proof, until.max(now.saturating_add(1)), now)
            {
                Seen::New => {}
                Seen::Replay => {
                    let why = Some(crate::dpop::PROOF_REPLAYED);
                    return self.reject(id, Reason::InvalidDpopProof, Some(fp), true, None, why);
                }
                Seen::Full => {
                    let why = Some("DPoP replay set full");
                    return self.reject(id, Reason::Overloaded, Some(fp), true, None, why);
                }
            }
        }
        match decision {
            Ok(value) => {
                self.metrics.forwarded += 1;
                self.actions.push_back(Action::Forward(Forward {
                    request_id: id,
                    header_name: self.header_name.clone(),
                    header_value: value,
                    strip_headers: self.strip.clone(),
                    token: info,
                    fingerprint: fp,
                    rewritten_path: binding.rewritten_path.clone(),
                }));
            }
            Err(reason) => {
                let dpop =
                    binding.dpop || (reason == Reason::SenderMismatch && info.cnf_jkt.is_some());
                let scopes = (reason == Reason::InsufficientScope)
                    .then(|| self.cfg.routes[route].required_scopes.join(" "));
                self.reject(id, reason, Some(fp), dpop, scopes, None);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &mut self,
        id: RequestId,
        reason: Reason,
        fp: Option<Fingerprint>,
        dpop: bool,
        scope: Option<String>,
        detail: Option<&str>,
    ) {
        self.metrics.rejected += 1;
        let r = build_reject(&self.cfg, id, reason, fp, dpop, scope.as_deref());
        let mut ev = AuditEvent::new(AuditKind::Rejected);
        ev.request_id = Some(id);
        ev.fingerprint = fp;
        ev.reason = Some(reason);
        ev.detail = detail.map(str::to_owned);
        self.audit(ev);
        self.actions.push_back(Action::Reject(r));
    }

    // -----------------------------------------------------------------------------------------
    // Answers from the authorization server and the shared store
    // -----------------------------------------------------------------------------------------

    /// The introspection endpoint answered `ticket`.
    pub fn handle_introspection_response(
        &mut self,
        now: u64,
        ticket: Ticket,
        response: &HttpResponse<'_>,
    ) -> Result<(), EdgeError> {
        let now = self.tick(now);
        let Some(fp) = self.live_ticket(ticket, false)? else {
            return Ok(());
        };
        self.refresh_stale_jwks(now);
        let outcome = parse_response(&self.cfg, self.keys.as_ref(), response, now);
        if matches!(outcome, Outcome::NeedKeys) {
            let parked = Parked::Introspection {
                status: response.status,
                headers: response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                body: response.body.to_vec(),
            };
            self.park(fp, ticket, parked, now);
            return Ok(());
        }
        self.complete(fp, outcome, now);
        Ok(())
    }

    /// Sending the introspection request for `ticket` failed (connection refused, TLS, timeout).
    pub fn handle_introspection_failure(
        &mut self,
        now: u64,
        ticket: Ticket,
        detail: &str,
    ) -> Result<(), EdgeError> {
        let now = self.tick(now);
        let Some(fp) = self.live_ticket(ticket, false)? else {
            return Ok(());
        };
        let detail = host_detail(detail);
        self.complete(
            fp,
            Outcome::Failure(Reason::Unavailable, format!("transport: {detail}")),
            now,
        );
        Ok(())
    }

    /// The shared store answered a [`SharedLookup`] (split-token mode).
    pub fn handle_shared_lookup(
        &mut self,
        now: u64,
        ticket: Ticket,
        result: LookupResult<'_>,
    ) -> Result<(), EdgeError> {
        let now = self.tick(now);
        let Some(fp) = self.live_ticket(ticket, true)? else {
            return Ok(());
        };
        let outcome = match result {
            LookupResult::NotFound => Outcome::Inactive(Reason::Inactive),
            LookupResult::Error => {
                Outcome::Failure(Reason::Unavailable, "shared store error".into())
            }
            LookupResult::Found(value) => {
                self.refresh_stale_jwks(now);
                let o = self.split_outcome(fp, value, now);
                if matches!(o, Outcome::NeedKeys) {
                    self.park(fp, ticket, Parked::Split(value.to_string()), now);
                    return Ok(());
                }
                o
            }
        };
        self.complete(fp, outcome, now);
        Ok(())
    }

    fn split_outcome(&self, fp: Fingerprint, value: &str, now: u64) -> Outcome {
        // The signature the waiters presented (all the same: it is what `fp` is computed from),
        // held only while the lookup is in flight.
        let Some(sig) = self
            .pending
            .get(&fp)
            .and_then(|p| p.waiters.first())
            .and_then(|w| w.binding.split_signature.as_ref())
        else {
            return Outcome::Failure(Reason::Unavailable, "split lookup without signature".into());
        };
        let Some(keys) = &self.keys else {
            return Outcome::NeedKeys;
        };
        if value.split('.').count() != 2 {
            return Outcome::Inactive(Reason::InvalidToken);
        }
        let jwt = format!("{value}.{}", sig.expose());
        // Reassembled from the shared store: verify before trusting (cache poisoning defence).
        match verify_access_jwt(&self.cfg, keys, &jwt, now) {
            Ok(info) => Outcome::Active {
                info: Box::new(info),
                // Without the signature: each request appends its own (`Binding`).
                jwt: Some(format!("{value}.")),
                cache: Default::default(),
            },
            Err(JwtFailure::NeedKeys) => Outcome::NeedKeys,
            Err(JwtFailure::Expired) => Outcome::Inactive(Reason::Expired),
            Err(JwtFailure::Invalid(_)) => Outcome::Inactive(Reason::InvalidToken),
        }
    }

    /// `Ok(Some(fp))` for a live ticket of the expected kind (`split`: a shared-store lookup),
    /// `Ok(None)` for one that already ended (a late answer).
    fn live_ticket(
        &mut self,
        ticket: Ticket,
        split: bool,
    ) -> Result<Option<Fingerprint>, EdgeError> {
        match self.tickets.get(&ticket) {
            Some(fp) => {
                // Every ticket of a split-mode edge is a shared-store lookup.
                if (self.cfg.mode == Mode::Split) != split {
                    return Err(EdgeError::WrongTicketKind(ticket));
                }
                Ok(Some(*fp))
            }
            None if ticket > 0 && ticket < self.next_ticket => {
                let mut ev = AuditEvent::new(AuditKind::LateResponse);
                ev.ticket = Some(ticket);
                self.audit(ev);
                Ok(None)
            }
            None => Err(EdgeError::UnknownTicket(ticket)),
        }
    }

    fn park(&mut self, fp: Fingerprint, ticket: Ticket, parked: Parked, now: u64) {
        if self.request_jwks(now, JwksFetch::UnknownKid) {
            if let Some(p) = self.pending.get_mut(&fp) {
                p.parked = Some(parked);
            }
            self.parked.push(ticket);
        } else {
            self.complete(
                fp,
                Outcome::Failure(
                    Reason::Unavailable,
                    "signing key unknown and JWKS refresh rate-limited".into(),
                ),
                now,
            );
        }
    }

    /// Before a signature is verified: a key set older than `jwks_refresh` is fetched again (in
    /// the background: this answer is verified with the keys in use), so a key the AS removed,
    /// rotated out or compromised, stops being trusted without a restart.
    fn refresh_stale_jwks(&mut self, now: u64) {
        if self
            .jwks_fetched_at
            .is_some_and(|t| now >= t.saturating_add(self.cfg.jwks_refresh_ms))
        {
            self.request_jwks(now, JwksFetch::Refresh);
        }
    }

    /// Queues a JWKS fetch unless one is in flight or one happened too recently. Returns whether
    /// a fresh JWKS is on its way.
    fn request_jwks(&mut self, now: u64, why: JwksFetch) -> bool {
        if self.jwks_in_flight {
            // A fetch the host never answered (a lost task) must not block key refreshes for
            // good: after the introspection timeout it counts as failed.
            let started = self.jwks_last_fetch.unwrap_or(now);
            if now < started.saturating_add(self.cfg.timeout_ms) {
                return true;
            }
            self.jwks_in_flight = false;
        }
        let Some(url) = self.cfg.jwks_uri.clone() else {
            return false;
        };
        // Unknown kids (anyone can send one) at most every jwks_min_refresh, unless the last
        // fetch failed: then the keys in use are not known to be current, and a request that
        // needs them may fetch every JWKS_RETRY_MS (an authorization server that was down when
        // the edge started, or restarted with new keys, is followed at once). Retries after a
        // failure run on their own backoff timer (`handle_timeout`).
        let (last, pace) = match why {
            JwksFetch::Start | JwksFetch::Retry => (None, 0),
            JwksFetch::UnknownKid if self.jwks_failures > 0 => {
                (self.jwks_last_fetch, JWKS_RETRY_MS)
            }
            JwksFetch::UnknownKid => (self.jwks_last_demand, self.cfg.jwks_min_refresh_ms),
            JwksFetch::Refresh => (self.jwks_last_fetch, self.cfg.jwks_min_refresh_ms),
        };
        if last.is_some_and(|t| now < t.saturating_add(pace)) {
            return false;
        }
        if matches!(why, JwksFetch::Start | JwksFetch::UnknownKid) {
            self.jwks_last_demand = Some(now);
        }
        self.jwks_retry_at = None;
        self.jwks_in_flight = true;
        self.jwks_last_fetch = Some(now);
        self.metrics.jwks_fetches += 1;
        self.actions.push_back(Action::FetchJwks(FetchJwks { url }));
        true
    }

    /// The JWKS fetch finished: `Ok(body)` for a 200 answer, `Err(detail)` otherwise.
    pub fn handle_jwks(&mut self, now: u64, result: Result<&[u8], &str>) {
        let now = self.tick(now);
        self.jwks_in_flight = false;
        let parsed = match result {
            Ok(body) => KeySet::from_json(body, &self.cfg.algorithms),
            Err(e) => Err(host_detail(e)),
        };
        match parsed {
            Ok(keys) => {
                let mut ev = AuditEvent::new(AuditKind::JwksFetched);
                ev.detail = Some(format!("keys={}", keys.len()));
                self.audit(ev);
                self.keys = Some(keys);
                self.jwks_fetched_at = Some(now);
                self.jwks_failures = 0;
                self.jwks_retry_at = None;
            }
            Err(why) => {
                // Retried by itself: 0.5 s, 1 s, 2 s, ... up to jwks_min_refresh.
                self.jwks_failures = self.jwks_failures.saturating_add(1);
                let backoff = JWKS_RETRY_MS
                    .saturating_mul(1 << (self.jwks_failures - 1).min(20))
                    .min(self.cfg.jwks_min_refresh_ms.max(JWKS_RETRY_MS));
                self.jwks_retry_at = Some(now.saturating_add(backoff));
                let mut ev = AuditEvent::new(AuditKind::JwksFailed);
                ev.detail = Some(format!("{why}; retry in {backoff} ms"));
                self.audit(ev);
            }
        }
        for ticket in std::mem::take(&mut self.parked) {
            let Some(&fp) = self.tickets.get(&ticket) else {
                continue;
            };
            let Some(parked) = self.pending.get_mut(&fp).and_then(|p| p.parked.take()) else {
                continue;
            };
            let outcome = match &parked {
                Parked::Introspection {
                    status,
                    headers,
                    body,
                } => {
                    let h: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    let resp = HttpResponse {
                        status: *status,
                        headers: &h,
                        body,
                    };
                    parse_response(&self.cfg, self.keys.as_ref(), &resp, now)
                }
                Parked::Split(value) => self.split_outcome(fp, value, now),
            };
            let outcome = match outcome {
                Outcome::NeedKeys => {
                    Outcome::Failure(Reason::Unavailable, "signing key not in the JWKS".into())
                }
                o => o,
            };
            self.complete(fp, outcome, now);
        }
    }

    /// Ends a ticket: answers every waiter and caches what may be cached.
    fn complete(&mut self, fp: Fingerprint, outcome: Outcome, now: u64) {
        let Some(p) = self.pending.remove(&fp) else {
            return;
        };
        self.waiting -= p.waiters.len();
        self.tickets.remove(&p.ticket);
        self.deadlines.remove(&(p.deadline, p.ticket));
        self.parked.retain(|t| *t != p.ticket);
        match outcome {
            Outcome::Active { info, jwt, cache } => {
                let mut ev = AuditEvent::new(AuditKind::Introspected);
                ev.ticket = Some(p.ticket);
                ev.fingerprint = Some(fp);
                ev.detail = Some("active".into());
                self.audit(ev);
                // A revocation handled while this was in flight wins (invariant 2).
                // A token is kept in mind for revocations until its exp (see default_until).
                if let Some(exp) = info.exp {
                    self.latest_exp_ms = self.latest_exp_ms.max(exp.saturating_mul(1000));
                }
                if let Some(extended) = self.revocations.matches(&fp, &info, self.cfg.leeway_ms) {
                    publish_extensions(&mut self.actions, extended);
                    self.cache.insert_negative(
                        fp,
                        now.saturating_add(self.cfg.negative_ttl_ms.max(1)),
                        Reason::Revoked,
                    );
                    for w in p.waiters {
                        self.reject(
                            w.request_id,
                            Reason::Revoked,
                            Some(fp),
                            w.binding.dpop,
                            None,
                            None,
                        );
                    }
                    return;
                }
                let refused_by_no_store = cache.no_store && !self.cfg.ignore_no_store;
                if refused_by_no_store && !self.warned_no_store {
                    // Said once: with oidc-provider's defaults every answer is `no-store`, and
                    // an edge that caches nothing introspects every request.
                    self.warned_no_store = true;
                    let mut ev = AuditEvent::new(AuditKind::NotCacheable);
                    ev.fingerprint = Some(fp);
                    ev.detail = Some(
                        "the authorization server marks its answers no-store / no-cache: nothing \
                         is cached (set cache.ignore_no_store = true to cache them up to max_ttl)"
                            .into(),
                    );
                    self.audit(ev);
                }
                let cfg = &self.cfg;
                // The answer's `Age` counts against max_ttl too (it was that old when it came).
                let mut expires = now.saturating_add(cfg.max_ttl_ms.saturating_sub(cache.age_ms));
                // max-age − Age, RFC 9701 iat + max-age and exp (`CacheDirective::fresh_until`).
                if let Some(until) = cache.fresh_until(now) {
                    expires = expires.min(until);
                }
                if let Some(exp) = info.exp {
                    expires = expires.min(exp.saturating_mul(1000).saturating_sub(cfg.skew_ms));
                }
                let cacheable = !p.no_cache && !refused_by_no_store && expires > now;
                let forward = jwt.map(|j| header_value(&cfg.upstream_scheme, &j));
                let entry = Entry {
                    info: Arc::new(*info),
                    expires_ms: if cacheable {
                        expires
                    } else {
                        now.saturating_add(1)
                    },
                    epoch: self.revocations.epoch,
                    forward,
                    minted: Vec::new(),
                };
                if cacheable {
                    let mut ev = AuditEvent::new(AuditKind::Cached);
                    ev.fingerprint = Some(fp);
                    ev.detail = Some(format!("ttl_ms={}", expires - now));
                    self.audit(ev);
                    self.cache.insert(fp, entry);
                    for w in p.waiters {
                        if !self.decide_cached(w.request_id, fp, w.route, &w.binding, now, false) {
                            // Evicted at once (bounds smaller than one entry): fail closed.
                            self.reject(
                                w.request_id,
                                Reason::Overloaded,
                                Some(fp),
                                w.binding.dpop,
                                None,
                                None,
                            );
                        }
                    }
                } else {
                    let mut entry = entry;
                    for w in p.waiters {
                        self.decide_uncached(w, fp, &mut entry, now);
                    }
                }
            }
            Outcome::Inactive(reason) => {
                let mut ev = AuditEvent::new(AuditKind::Introspected);
                ev.ticket = Some(p.ticket);
                ev.fingerprint = Some(fp);
                ev.reason = Some(reason);
                ev.detail = Some("inactive".into());
                self.audit(ev);
                if self.cfg.negative_ttl_ms > 0 {
                    self.cache.insert_negative(
                        fp,
                        now.saturating_add(self.cfg.negative_ttl_ms),
                        reason,
                    );
                }
                for w in p.waiters {
                    self.reject(w.request_id, reason, Some(fp), w.binding.dpop, None, None);
                }
            }
            Outcome::Failure(reason, detail) => {
                self.metrics.introspection_failures += 1;
                let mut ev = AuditEvent::new(AuditKind::AsFailure);
                ev.ticket = Some(p.ticket);
                ev.fingerprint = Some(fp);
                ev.reason = Some(reason);
                ev.detail = Some(detail);
                self.audit(ev);
                for w in p.waiters {
                    self.reject(w.request_id, reason, Some(fp), w.binding.dpop, None, None);
                }
            }
            Outcome::NeedKeys => {
                for w in p.waiters {
                    self.reject(
                        w.request_id,
                        Reason::Unavailable,
                        Some(fp),
                        w.binding.dpop,
                        None,
                        None,
                    );
                }
            }
        }
    }

    fn decide_uncached(&mut self, w: Waiter, fp: Fingerprint, entry: &mut Entry, now: u64) {
        // Not in the cache yet: its size is counted when it is inserted.
        let decision = decide(
            &self.cfg,
            &mut self.minter,
            entry,
            w.route,
            &w.binding,
            now,
            &mut None,
        );
        self.emit_decision(
            decision,
            w.request_id,
            fp,
            w.route,
            &w.binding,
            entry.info.clone(),
            now,
        );
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
            if let Some(fp) = self.tickets.get(&ticket).copied() {
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

    // -----------------------------------------------------------------------------------------
    // Revocation
    // -----------------------------------------------------------------------------------------

    /// Handles a revocation. After this returns, no matching token is forwarded again, including
    /// one whose introspection is in flight (invariant 2). `Origin::Local` revocations are
    /// queued as [`SharedPublish`] for the other instances.
    pub fn handle_revocation(
        &mut self,
        now: u64,
        revocation: Revocation,
        origin: Origin,
    ) -> Result<(), RevocationError> {
        let now = self.tick(now);
        let until_ms = match revocation.until {
            Some(u) => {
                let ms = u.saturating_mul(1000);
                if ms <= now {
                    return Err(RevocationError::Invalid("until is in the past".into()));
                }
                Some(ms)
            }
            None => None,
        };
        // Without `until`: at least as long as the instance that published it keeps it.
        let floor = revocation.keep_until.map_or(0, |k| k.saturating_mul(1000));
        // When it was revoked (what a `sub` / `client_id` / `sid` entry covers): the
        // publisher's time, never later than ours.
        let at_ms = revocation
            .since
            .map_or(now, |s| s.saturating_mul(1000).min(now));
        let key = match &revocation.selector {
            Selector::Token(t) => {
                // Split mode: the client holds the JWT's signature, and that is what requests
                // are keyed by; an operator holding the whole JWT revokes the same token.
                let t = match (self.cfg.mode, t.rsplit_once('.')) {
                    (Mode::Split, Some((head, signature)))
                        if signature.is_empty() || head.matches('.').count() != 1 =>
                    {
                        return Err(RevocationError::Invalid(
                            "in split mode a token is the signature the client holds or the whole JWT".into(),
                        ));
                    }
                    (Mode::Split, Some((_, signature))) => signature,
                    _ => t.as_str(),
                };
                Forgotten::Fingerprint(self.fp.fingerprint(t))
            }
            Selector::Fingerprint(fp) => Forgotten::Fingerprint(*fp),
            Selector::Jti(v) => Forgotten::Named(Kind::Jti, v.clone()),
            Selector::Sub(v) => Forgotten::Named(Kind::Sub, v.clone()),
            Selector::ClientId(v) => Forgotten::Named(Kind::ClientId, v.clone()),
            Selector::Sid(v) => Forgotten::Named(Kind::Sid, v.clone()),
        };
        let (overflow, kept_until) = match &key {
            Forgotten::Fingerprint(fp) => self.revoke_fingerprint(*fp, until_ms, floor, now),
            Forgotten::Named(kind, name) => {
                let u = until_ms.unwrap_or_else(|| self.default_until(now).max(floor));
                let o = self
                    .revocations
                    .add_named(*kind, name, at_ms, u, until_ms.is_some());
                (o, u)
            }
        };
        let fp = match key {
            Forgotten::Fingerprint(fp) => Some(fp),
            Forgotten::Named(..) => None,
        };
        if let Some(forgotten) = overflow {
            // Forgetting a revocation is only safe if what it covered is re-checked at the AS.
            let n = match &forgotten {
                Forgotten::Fingerprint(f) => usize::from(self.cache.remove(f).is_some()),
                Forgotten::Named(kind, name) => self.cache.purge(|_, info| {
                    let field = match kind {
                        Kind::Jti => &info.jti,
                        Kind::Sub => &info.sub,
                        Kind::ClientId => &info.client_id,
                        Kind::Sid => &info.sid,
                    };
                    field.as_deref() == Some(name.as_str())
                }),
            };
            self.metrics.revocation_overflows += 1;
            let mut ev = AuditEvent::new(AuditKind::RevocationOverflow);
            ev.detail = Some(format!(
                "revocation set full: the soonest-expiring entry was dropped and {n} cached decisions it covered"
            ));
            self.audit(ev);
        }
        self.metrics.revocations += 1;
        let mut ev = AuditEvent::new(AuditKind::Revoked);
        ev.fingerprint = fp;
        let by_fingerprint = fp.is_some();
        ev.detail = Some(
            if by_fingerprint && origin == Origin::Local && self.cfg.fingerprint_key.is_none() {
                // Published by fingerprint, keyed by this instance's own seed: no other instance
                // computes the same fingerprints, so it cannot match there.
                format!(
                    "{}; published by fingerprint, which other instances cannot match without a shared cache.fingerprint_key",
                    selector_name(&revocation.selector)
                )
            } else {
                selector_name(&revocation.selector).into()
            },
        );
        self.audit(ev);
        if origin == Origin::Local {
            let since = matches!(key, Forgotten::Named(..)).then_some(at_ms);
            self.actions
                .push_back(shared_revocation(&key, revocation.until, kept_until, since));
        }
        Ok(())
    }

    /// How long a revocation without `until` (and without a known `exp` of the token) is kept:
    /// `revocation.default_ttl`, and at least until every active token this edge has
    /// introspected so far has expired (a token issued before the revocation can live that
    /// long), looking at most [`LATEST_EXP_HORIZON_MS`] ahead: one "never expiring" token must
    /// not make every later revocation permanent (the bounded set would then overflow and drop
    /// the soonest-expiring, most precise entries). Entries are also kept until the exp of any
    /// token they are seen to match (`RevocationSet::matches`).
    fn default_until(&self, now: u64) -> u64 {
        let seen = self
            .latest_exp_ms
            .min(now.saturating_add(LATEST_EXP_HORIZON_MS));
        now.saturating_add(self.cfg.revocation_default_ttl_ms)
            .max(seen.saturating_add(self.cfg.leeway_ms))
    }

    /// Revokes one token by its fingerprint, kept until `until_ms` (the revoker's, fixed), else
    /// until its exp when this edge knows it, else by `default_until`, and at least until
    /// `floor`. Returns what the set forgot to make room, and how long the entry is kept (ms).
    fn revoke_fingerprint(
        &mut self,
        fp: Fingerprint,
        until_ms: Option<u64>,
        floor: u64,
        now: u64,
    ) -> (Option<Forgotten>, u64) {
        let until = until_ms.unwrap_or_else(|| {
            self.cache
                .peek(&fp)
                .and_then(|e| e.info.exp)
                .map(|e| e.saturating_mul(1000).saturating_add(self.cfg.leeway_ms))
                .filter(|e| *e > now)
                .unwrap_or_else(|| self.default_until(now))
                .max(floor)
        });
        let overflow = self
            .revocations
            .add_fingerprint(fp, now, until, until_ms.is_some());
        self.cache.remove(&fp);
        (overflow, until)
    }

    /// Handles an RFC 8417 Security Event Token (CAEP session-revoked and token-claims-change,
    /// RISC account events), verified against `revocation.set_key`. Duplicate `jti`s are
    /// accepted and ignored; a SET whose `iat` is older than `revocation.default_ttl` is refused
    /// (its `jti` may have been forgotten).
    pub fn handle_security_event(&mut self, now: u64, set: &str) -> Result<(), RevocationError> {
        let now = self.tick(now);
        let parsed = parse_security_event(&self.cfg, set, now)?;
        // Its jti is remembered for `revocation.default_ttl` past its `iat` (or past now, if
        // later); a SET older than that could no longer be told from a replay, and is refused
        // (posted again later it revoked the sessions started since).
        let iat_ms = parsed.iat.saturating_mul(1000);
        let window = self.cfg.revocation_default_ttl_ms;
        if iat_ms.saturating_add(window) < now {
            return Err(RevocationError::Invalid(
                "SET: iat is older than revocation.default_ttl (it could be a replay)".into(),
            ));
        }
        let id = self.fp.fingerprint(&format!("set\0{}", parsed.jti));
        let remember_until = now
            .max(iat_ms.saturating_add(self.cfg.leeway_ms))
            .saturating_add(window);
        match self.set_replay.insert(id, remember_until, now) {
            Seen::Replay => return Ok(()),
            Seen::Full => {
                return Err(RevocationError::Invalid(
                    "too many recent security events; retry later".into(),
                ));
            }
            Seen::New => {}
        }
        let mut ev = AuditEvent::new(AuditKind::SecurityEvent);
        ev.detail = Some(format!("events={}", parsed.actions.len()));
        self.audit(ev);
        for action in parsed.actions {
            match action {
                SetAction::Revoke(selector) => {
                    self.handle_revocation(
                        now,
                        Revocation {
                            selector,
                            until: None,
                            keep_until: None,
                            since: None,
                        },
                        Origin::Local,
                    )?;
                }
                SetAction::Invalidate(selector) => self.invalidate(&selector),
            }
        }
        Ok(())
    }

    /// Drops cached decisions for matching tokens so their claims are fetched again, without
    /// refusing them (CAEP token-claims-change). In-flight results are used once, not cached.
    fn invalidate(&mut self, selector: &Selector) {
        let fp_target = match selector {
            Selector::Token(t) => Some(self.fp.fingerprint(t)),
            Selector::Fingerprint(f) => Some(*f),
            _ => None,
        };
        let n = self.cache.purge(|fp, info| match selector {
            Selector::Token(_) | Selector::Fingerprint(_) => Some(*fp) == fp_target,
            Selector::Jti(v) => info.jti.as_ref() == Some(v),
            Selector::Sub(v) => info.sub.as_ref() == Some(v),
            Selector::ClientId(v) => info.client_id.as_ref() == Some(v),
            Selector::Sid(v) => info.sid.as_ref() == Some(v),
        });
        for p in self.pending.values_mut() {
            p.no_cache = true;
        }
        let mut ev = AuditEvent::new(AuditKind::Invalidated);
        ev.fingerprint = fp_target;
        ev.detail = Some(format!("{} entries", n));
        self.audit(ev);
    }

    /// Whether `authorization` (an `Authorization` header value) carries the `[admin]` bearer
    /// token, for host routes other than revocation that only operators may use (the
    /// middleware's metrics route): `None` when no `[admin]` token is configured, so the host
    /// knows there is nothing to check against.
    pub fn admin_authorized(&self, authorization: Option<&str>) -> Option<bool> {
        let secret = self.cfg.admin_token.as_ref()?;
        Some(bearer_is(secret, authorization))
    }

    /// The revocation route every host exposes, in one place: `content_type` and
    /// `authorization` are the request's headers, `body` its bytes. A JSON selector needs the
    /// `[admin]` bearer secret; an `application/secevent+jwt` body is authenticated by its
    /// signature. `Ok` → answer 204; `Err(e)` → answer `e.status()` with `e.body()`.
    pub fn handle_admin_revocation(
        &mut self,
        now: u64,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<(), RevocationError> {
        let mt = media_type(content_type);
        if mt == "application/secevent+jwt" {
            let text = std::str::from_utf8(body)
                .map_err(|_| RevocationError::Invalid("body is not UTF-8".into()))?;
            return self.handle_security_event(now, text.trim());
        }
        let Some(secret) = &self.cfg.admin_token else {
            return Err(RevocationError::Unauthorized(
                "no [admin] token is configured".into(),
            ));
        };
        if !bearer_is(secret, authorization) {
            return Err(RevocationError::Unauthorized(
                "missing or wrong admin bearer token".into(),
            ));
        }
        if mt != "application/json" {
            return Err(RevocationError::Invalid(
                "content-type must be application/json or application/secevent+jwt".into(),
            ));
        }
        let revocation = Revocation::from_json(body)?;
        self.handle_revocation(now, revocation, Origin::Local)
    }
}

/// Whether `authorization` is `Bearer <secret>` (compared in constant time).
fn bearer_is(secret: &Secret, authorization: Option<&str>) -> bool {
    authorization
        .and_then(|a| {
            let (scheme, rest) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .is_some_and(|p| secret.ct_eq(p))
}

/// A host-supplied failure detail made safe for audit events: no control characters, bounded.
fn host_detail(detail: &str) -> String {
    detail
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

fn selector_name(s: &Selector) -> &'static str {
    match s {
        Selector::Token(_) => "selector=token",
        Selector::Fingerprint(_) => "selector=fingerprint",
        Selector::Jti(_) => "selector=jti",
        Selector::Sub(_) => "selector=sub",
        Selector::ClientId(_) => "selector=client_id",
        Selector::Sid(_) => "selector=sid",
    }
}

/// The message telling the other instances of a revocation: its selector, and the revoker's
/// `until` (Unix s) passed on as given — fixed on every instance — or else `keep_until`, how long
/// this instance keeps it (`kept_until_ms`): a floor each receiver extends by its own rules
/// (`default_until`, the exp of any token it sees match). Published as a fixed `until`, such a
/// default lapsed on a receiver while a matching token still lived; not published at all, a
/// receiver that had not seen the token kept it only `default_ttl`. `since_ms`: when it was
/// revoked, for the selectors that cover tokens issued before then.
fn shared_revocation(
    key: &Forgotten,
    until: Option<u64>,
    kept_until_ms: u64,
    since_ms: Option<u64>,
) -> Action {
    let mut message = key.selector_json();
    match until {
        Some(u) => message["until"] = u.into(),
        None => message["keep_until"] = kept_until_ms.div_ceil(1000).into(),
    }
    if let Some(at) = since_ms {
        message["since"] = (at / 1000).into();
    }
    Action::SharedPublish(SharedPublish {
        message: message.to_string(),
    })
}

/// Revocations kept longer because a token they cover was seen (its exp is later than this
/// instance kept them): published again with the new `keep_until`, so an instance that has not
/// seen the token keeps them as long (it extends its own entry; it does not publish in turn).
fn publish_extensions(actions: &mut VecDeque<Action>, extended: Vec<Extended>) {
    for e in extended {
        actions.push_back(shared_revocation(&e.key, None, e.until_ms, Some(e.at_ms)));
    }
}

/// Queues `ev` unless its kind is muted (the one place that rule is applied).
fn queue_audit(actions: &mut VecDeque<Action>, muted: AuditKinds, ev: AuditEvent) {
    if !muted.contains(ev.kind) {
        actions.push_back(Action::Audit(ev));
    }
}

/// Longest `path_prefix` that matches on a segment boundary (`path` may carry a query).
#[cfg(test)]
fn route_for(routes: &[Route], path: &str) -> Option<usize> {
    route_matching(routes, raw_path(path), false)
}

/// The route for `path` (no query), comparing ASCII case-insensitively when `fold_case`.
fn route_matching(routes: &[Route], path: &str, fold_case: bool) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, r) in routes.iter().enumerate() {
        let p = r.path_prefix.as_str();
        let starts = path.len() >= p.len()
            && if fold_case {
                path.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            } else {
                path.as_bytes()[..p.len()] == *p.as_bytes()
            };
        let hit =
            p == "/" || (starts && matches!(path.as_bytes().get(p.len()), None | Some(&b'/')));
        if hit && best.is_none_or(|(_, len)| p.len() > len) {
            best = Some((i, p.len()));
        }
    }
    best.map(|(i, _)| i)
}

fn header_value(scheme: &str, jwt: &str) -> Arc<str> {
    if scheme.is_empty() {
        jwt.into()
    } else {
        format!("{scheme} {jwt}").into()
    }
}

/// Authorization on every request (invariant 4), then the upstream header value.
fn decide(
    cfg: &Config,
    minter: &mut Minter,
    entry: &mut Entry,
    route_idx: usize,
    b: &Binding,
    now: u64,
    resized: &mut Option<(usize, usize)>,
) -> Result<Arc<str>, Reason> {
    let info = &*entry.info;
    let route = &cfg.routes[route_idx];
    if info.exp.is_some_and(|e| e.saturating_mul(1000) <= now) {
        return Err(Reason::Expired);
    }
    if info
        .nbf
        .is_some_and(|n| n.saturating_mul(1000) > now.saturating_add(cfg.leeway_ms))
    {
        return Err(Reason::InvalidToken);
    }
    if info.iss.as_ref().is_some_and(|i| *i != cfg.issuer) {
        return Err(Reason::WrongIssuer);
    }
    if info.cnf_unsupported {
        return Err(Reason::SenderMismatch);
    }
    match (&info.cnf_jkt, b.dpop) {
        (Some(jkt), true) if b.jkt.as_ref() == Some(jkt) => {}
        (Some(_), _) => return Err(Reason::SenderMismatch),
        // RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens only.
        (None, true) => return Err(Reason::SenderMismatch),
        (None, false) => {}
    }
    if let Some(x5t) = &info.cnf_x5t_s256
        && b.cert.as_ref() != Some(x5t)
    {
        return Err(Reason::SenderMismatch);
    }
    if let Some(aud) = &route.audience
        && !info.aud.iter().any(|a| a == aud)
    {
        return Err(Reason::WrongAudience);
    }
    if !info.has_scopes(&route.required_scopes) {
        return Err(Reason::InsufficientScope);
    }
    let Some(a) = &cfg.assertions else {
        let forward = entry.forward.as_ref().ok_or(Reason::Unavailable)?;
        return Ok(match &b.split_signature {
            Some(sig) => Arc::from(format!("{forward}{}", sig.expose())),
            None => Arc::clone(forward),
        });
    };
    let token_exp_ms = info.exp.map_or(u64::MAX, |e| e.saturating_mul(1000));
    let fresh_enough = now.saturating_add(a.max_ttl_ms / 2).min(token_exp_ms);
    if let Some(m) = entry
        .minted
        .iter()
        .find(|m| m.route == route_idx && m.exp_ms > now && m.exp_ms >= fresh_enough)
    {
        return Ok(m.value.clone());
    }
    let exp_ms = now.saturating_add(a.max_ttl_ms).min(token_exp_ms);
    let jwt = mint(cfg, minter, info, route, now, exp_ms);
    let value = header_value(&cfg.upstream_scheme, &jwt);
    let minted = Minted {
        route: route_idx,
        value: value.clone(),
        exp_ms,
    };
    // The entry's size changes only here: (bytes before, bytes after) of its minted JWTs for
    // this route, so a hit does not recount the whole entry.
    let before = entry
        .minted
        .iter()
        .filter(|m| m.route == route_idx)
        .map(Minted::bytes)
        .sum();
    *resized = Some((before, minted.bytes()));
    entry.minted.retain(|m| m.route != route_idx);
    entry.minted.push(minted);
    Ok(value)
}

/// An RFC 9068 access token for one upstream: `aud` the route's audience (none where the route
/// names none), scopes narrowed to the route's required scopes (all granted scopes where the
/// route requires none), lifetime within the access token's, `cnf` carried over.
fn mint(
    cfg: &Config,
    minter: &mut Minter,
    info: &TokenInfo,
    route: &Route,
    now: u64,
    exp_ms: u64,
) -> String {
    let Some(a) = &cfg.assertions else {
        return String::new();
    };
    let mut c = serde_json::Map::new();
    c.insert("iss".into(), a.issuer.clone().into());
    // Only the token's own `sub`: the edge cannot tell a client-credentials token (RFC 9068
    // §2.2 would name the client) from a user's token whose answer lacks `sub`.
    if let Some(s) = &info.sub {
        c.insert("sub".into(), s.clone().into());
    }
    // Only the route's audience: a route without one names no upstream, and copying the
    // token's `aud` made the JWT its upstream receives good at every service the token was
    // for (with all its scopes, since such routes often require none).
    if let Some(aud) = &route.audience {
        c.insert("aud".into(), aud.clone().into());
    }
    if let Some(v) = &info.client_id {
        c.insert("client_id".into(), v.clone().into());
    }
    let scope = if route.required_scopes.is_empty() {
        info.scopes.join(" ")
    } else {
        route.required_scopes.join(" ")
    };
    if !scope.is_empty() {
        c.insert("scope".into(), scope.into());
    }
    c.insert("iat".into(), (now / 1000).into());
    c.insert("exp".into(), (exp_ms / 1000).into());
    c.insert("jti".into(), minter.next_id().into());
    if let Some(v) = &info.sid {
        c.insert("sid".into(), v.clone().into());
    }
    let mut cnf = serde_json::Map::new();
    if let Some(v) = &info.cnf_jkt {
        cnf.insert("jkt".into(), v.clone().into());
    }
    if let Some(v) = &info.cnf_x5t_s256 {
        cnf.insert("x5t#S256".into(), v.clone().into());
    }
    if !cnf.is_empty() {
        c.insert("cnf".into(), cnf.into());
    }
    a.key.sign("at+jwt", &serde_json::Value::Object(c))
}

/// Status, challenge and body for a rejection (RFC 6750 §3, RFC 9449 §7).
pub(crate) fn build_reject(
    cfg: &Config,
    id: RequestId,
    reason: Reason,
    fp: Option<Fingerprint>,
    dpop: bool,
    scope: Option<&str>,
) -> Reject {
    let realm = &cfg.realm;
    let scheme = if dpop || reason == Reason::InvalidDpopProof {
        "DPoP"
    } else {
        "Bearer"
    };
    let algs = if scheme == "DPoP" {
        let names: Vec<&str> = cfg.dpop_algorithms.iter().map(|a| a.name()).collect();
        format!(", algs=\"{}\"", names.join(" "))
    } else {
        String::new()
    };
    let challenge = |error: &str, desc: &str| {
        format!("{scheme} realm=\"{realm}\", error=\"{error}\", error_description=\"{desc}\"{algs}")
    };
    let (status, www, error, desc): (u16, Option<String>, &str, &str) = match reason {
        Reason::MissingToken => (
            401,
            Some(format!("{scheme} realm=\"{realm}\"{algs}")),
            "unauthorized",
            "an access token is required",
        ),
        Reason::MalformedRequest => {
            let d = "the Authorization header is malformed";
            (
                400,
                Some(challenge("invalid_request", d)),
                "invalid_request",
                d,
            )
        }
        Reason::AmbiguousPath => {
            let d = "the request path is ambiguous";
            (
                400,
                Some(challenge("invalid_request", d)),
                "invalid_request",
                d,
            )
        }
        Reason::Inactive
        | Reason::Expired
        | Reason::Revoked
        | Reason::InvalidToken
        | Reason::WrongIssuer
        | Reason::WrongAudience
        | Reason::SenderMismatch => {
            // One description for all: no oracle telling revoked from expired from unknown.
            let d = "the access token is not valid";
            (401, Some(challenge("invalid_token", d)), "invalid_token", d)
        }
        Reason::InvalidDpopProof => {
            let d = "the DPoP proof is not valid";
            (
                401,
                Some(challenge("invalid_dpop_proof", d)),
                "invalid_dpop_proof",
                d,
            )
        }
        Reason::InsufficientScope => {
            let d = "the access token lacks a required scope";
            let s = scope.unwrap_or("");
            (
                403,
                Some(format!(
                    "{scheme} realm=\"{realm}\", error=\"insufficient_scope\", error_description=\"{d}\", scope=\"{s}\"{algs}"
                )),
                "insufficient_scope",
                d,
            )
        }
        Reason::NoRoute => (404, None, "not_found", "no route for this path"),
        Reason::Unavailable | Reason::ClientAuthFailed | Reason::Timeout | Reason::Overloaded => (
            cfg.unavailable_status,
            None,
            "temporarily_unavailable",
            "the authorization service is unavailable",
        ),
        // Always 503: the one status whose Retry-After says "try again soon".
        Reason::RateLimited => (
            503,
            None,
            "temporarily_unavailable",
            "too many new tokens at once; retry later",
        ),
    };
    Reject {
        request_id: id,
        status,
        www_authenticate: www,
        body: serde_json::json!({ "error": error, "error_description": desc }).to_string(),
        retry_after: (reason == Reason::RateLimited).then_some(1),
        reason,
        fingerprint: fp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(prefixes: &[&str]) -> Vec<Route> {
        prefixes
            .iter()
            .map(|p| Route {
                path_prefix: (*p).into(),
                required_scopes: vec![],
                audience: None,
            })
            .collect()
    }

    #[test]
    fn routes_match_on_segment_boundaries_longest_first() {
        let r = routes(&["/orders", "/orders/admin", "/"]);
        assert_eq!(route_for(&r, "/orders"), Some(0));
        assert_eq!(route_for(&r, "/orders/1?x=y"), Some(0));
        assert_eq!(route_for(&r, "/orders/admin/x"), Some(1));
        assert_eq!(route_for(&r, "/ordersX"), Some(2));
        let r = routes(&["/orders"]);
        assert_eq!(route_for(&r, "/ordersX"), None);
        assert_eq!(route_for(&r, "/"), None);
    }
}
