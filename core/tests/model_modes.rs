//! Property tests for the modes `model.rs` does not cover: RFC 9701 signed answers with JWKS
//! rotation and forged/stale answers, split-token mode against a random shared store, two
//! instances sharing revocations through `SharedPublish`, and DPoP-bound tokens. Each run is
//! checked against a small reference model of what may be forwarded, and every bounded
//! structure is checked after every step.
mod support;

use std::collections::{HashMap, HashSet};

use phantom_edge_core::{Action, LookupResult, Origin, Reason, Revocation, Selector, Stats};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

const EDGE_ES256: &str = include_str!("../../tests/vectors/keys/edge-es256.pem");
const EDGE_ED25519_KEY: &str = EDGE_ED25519;

const ROUTES: [(&str, &[&str], Option<&str>); 3] = [
    ("/orders", &["orders:read"], Some("orders-api")),
    ("/admin", &["orders:admin"], None),
    ("/public", &[], None),
];

/// Cases per property: `MODEL_MODES_CASES` overrides the default (for longer local runs).
fn cases(default: u32) -> u32 {
    std::env::var("MODEL_MODES_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn t0s() -> u64 {
    T0 / 1000
}

/// Every request of a run got exactly one decision (`decided`: request id → decisions).
fn assert_each_decided_once<'a>(ids: impl Iterator<Item = &'a u64>, decided: &HashMap<u64, u32>) {
    for id in ids {
        assert_eq!(
            decided.get(id).copied().unwrap_or(0),
            1,
            "request {id} decided {:?} times",
            decided.get(id)
        );
    }
}

/// What the authorization server believes of a token.
#[derive(Clone, Debug)]
struct Truth {
    active: bool,
    scope: &'static str,
    aud: &'static str,
    sub: &'static str,
    exp_s: u64,
    iat_s: u64,
}

impl Truth {
    fn ti(&self) -> Value {
        if !self.active {
            return json!({"active": false});
        }
        json!({"active": true, "scope": self.scope, "sub": self.sub, "aud": self.aud,
               "exp": self.exp_s, "iat": self.iat_s, "iss": ISSUER, "client_id": "app",
               "jti": format!("jti-{}", self.sub)})
    }
    fn allows(&self, route: usize) -> bool {
        let (_, scopes, aud) = ROUTES[route];
        scopes
            .iter()
            .all(|s| self.scope.split(' ').any(|x| x == *s))
            && aud.is_none_or(|a| a == self.aud)
    }
}

fn stats_bounded(s: &Stats, max_entries: usize, max_pending: usize, revs: usize, replay: usize) {
    assert!(s.cache_entries <= max_entries, "cache over bound: {s:?}");
    assert!(
        s.negative_entries <= max_entries,
        "negative cache over bound: {s:?}"
    );
    assert!(s.pending <= max_pending, "pending over bound: {s:?}");
    assert!(s.waiters <= max_pending * 1000, "waiters over bound: {s:?}");
    assert!(s.revocations <= revs, "revocations over bound: {s:?}");
    assert!(
        s.dpop_replay_entries <= replay,
        "replay set over bound: {s:?}"
    );
    assert!(s.jwks_keys <= 100, "jwks over bound: {s:?}");
    assert!(
        s.cache_entries > 0 || s.cache_bytes == 0,
        "cache byte count drifted: {s:?}"
    );
}

/// An RFC 9701 answer is refused once older than `authorization_server.response_max_age` (60 s)
/// plus `leeway` (30 s) by the edge's clock.
const ANSWER_USABLE_MS: u64 = 60_000 + 30_000;

/// Whether an RFC 9701 answer signed at `signed_ms` (by the host's clock) is still usable at the
/// edge's effective time `eff` (which is ahead after the host's clock stepped back).
fn answer_fresh(signed_ms: u64, eff: u64) -> bool {
    eff <= (signed_ms / 1000) * 1000 + ANSWER_USABLE_MS
}

/// The host's clock catches up with the edge's effective time `eff` and passes every timeout.
fn settle(h: &mut Harness, eff: u64) {
    h.advance(eff.saturating_sub(h.now) + 10_000);
}

// Which requests wait on which ticket in the core: a request not decided at once waits on the
// ticket it opened (its `Introspect` or `SharedLookup`) or joined (coalesced on the one in
// flight for its token, answered or not: an answer parked for a JWKS fetch keeps it open).
//
// Liveness, in every model below: when a genuine answer for a ticket still in flight can be
// verified (the edge has its key; else once the JWKS with it arrives), is fresh by the edge's
// clock, and is about a token that is active, revoked by no selector that covers it and
// unexpired at the effective time, every request waiting on the ticket whose route the token
// authorizes (scopes, audience, sender binding) is forwarded in that same step (DPoP: unless
// its proof's `jti` is already in the replay set, or the set is full). The other refusals
// (negative-cache hit, `overloaded` at `max_pending` / `max_waiters` / `max_waiting`, an
// invalid proof) are made when a request arrives, so such a request never waits on a ticket.
// Not refusals: a token within `cache.skew` of its exp is not cached, but its waiters are still
// decided (and forwarded); an entry evicted as soon as it is cached (`overloaded`) cannot happen
// in these models (the new entry is the most recently used, `max_bytes` is the default).
/// Liveness: each of `due` is forwarded in `acts`.
fn assert_forwarded(acts: &[Action], due: &[u64], what: &str) {
    for id in due {
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Forward(f) if f.request_id == *id)),
            "request {id} not forwarded: {what}: {acts:?}"
        );
    }
}

// =============================================================================================
// 1. RFC 9701: signed answers, ES256, JWKS rotation, forged / stale answers
// =============================================================================================

/// Genuine AS keys: 0 `as-es` (P-256), 1 `as-es2` (P-256, rotated in), 2 `as-ed` (Ed25519).
fn genuine_keys() -> Vec<Signer> {
    vec![
        Signer::es256(AS_ES256, Some("as-es")),
        Signer::es256(EDGE_ES256, Some("as-es2")),
        Signer::ed25519(AS_ED25519, Some("as-ed")),
    ]
}

/// The key sets the AS may publish.
const PUBLISHED: [&[usize]; 4] = [&[0], &[1], &[0, 1], &[1, 2]];

#[derive(Debug, Clone, Copy)]
enum Answer9701 {
    /// The truth, signed by a published genuine key (`key` picks which).
    Genuine { key: usize },
    /// The truth, signed by any genuine key (maybe one rotated out).
    AnyGenuine { key: usize },
    /// A lie (active, admin scopes, sub mallory), signed by an attacker's key using `as-es`.
    ForgedSameKid,
    /// A lie signed by an attacker's key with a kid nobody published.
    ForgedUnknownKid,
    /// A lie signed by an attacker's key without kid.
    ForgedNoKid,
    /// A lie, genuinely signed, but with an `iat` this many seconds old.
    StaleIat { age: u64 },
    /// A lie, genuinely signed, `iat` this many seconds ahead.
    FutureIat { ahead: u64 },
    /// A lie, genuinely signed, for another client (`aud`).
    WrongAud,
    /// A lie, genuinely signed, from another issuer.
    WrongIss,
    /// A lie, genuinely signed, typ `at+jwt`.
    WrongTyp,
    /// A lie, genuinely signed, top-level `exp` in the past.
    ExpiredResponse,
    /// A lie, genuinely signed, but the content-type is JSON.
    WrongContentType,
    /// 500.
    ServerError,
    /// Garbage body.
    Garbage,
    /// Transport failure.
    Transport,
}

fn answer9701() -> impl Strategy<Value = Answer9701> {
    prop_oneof![
        6 => (0..3usize).prop_map(|key| Answer9701::Genuine { key }),
        2 => (0..3usize).prop_map(|key| Answer9701::AnyGenuine { key }),
        1 => Just(Answer9701::ForgedSameKid),
        1 => Just(Answer9701::ForgedUnknownKid),
        1 => Just(Answer9701::ForgedNoKid),
        1 => (60..400u64).prop_map(|age| Answer9701::StaleIat { age }),
        1 => (20..200u64).prop_map(|ahead| Answer9701::FutureIat { ahead }),
        1 => Just(Answer9701::WrongAud),
        1 => Just(Answer9701::WrongIss),
        1 => Just(Answer9701::WrongTyp),
        1 => Just(Answer9701::ExpiredResponse),
        1 => Just(Answer9701::WrongContentType),
        1 => Just(Answer9701::ServerError),
        1 => Just(Answer9701::Garbage),
        1 => Just(Answer9701::Transport),
    ]
}

#[derive(Debug, Clone)]
enum Op9701 {
    Request {
        token: usize,
        route: usize,
    },
    /// `cc`: the Cache-Control of the answer (`None`, `Some(None)` no-store, `Some(Some(s))`
    /// max-age in seconds).
    Answer {
        pick: usize,
        how: Answer9701,
        cc: Option<Option<u64>>,
    },
    /// Answer the outstanding JWKS fetch: 0 published keys, 1 error, 2 garbage, 3 empty set.
    Jwks {
        how: u8,
    },
    Rotate {
        set: usize,
    },
    Revoke {
        token: usize,
    },
    RevokeSub,
    Advance {
        ms: u64,
    },
    /// The host's clock steps back (NTP step, VM migration): later inputs carry a smaller `now`.
    Back {
        ms: u64,
    },
}

fn op9701() -> impl Strategy<Value = Op9701> {
    prop_oneof![
        5 => (0..4usize, 0..3usize).prop_map(|(token, route)| Op9701::Request { token, route }),
        5 => (0..8usize, answer9701(), prop_oneof![3 => Just(None), 1 => Just(Some(None)), 2 => (0..20u64).prop_map(|a| Some(Some(a)))])
            .prop_map(|(pick, how, cc)| Op9701::Answer { pick, how, cc }),
        2 => prop_oneof![4 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)]
            .prop_map(|how| Op9701::Jwks { how }),
        1 => (0..PUBLISHED.len()).prop_map(|set| Op9701::Rotate { set }),
        1 => (0..4usize).prop_map(|token| Op9701::Revoke { token }),
        1 => Just(Op9701::RevokeSub),
        2 => prop_oneof![(0..3_000u64), (0..40_000u64)].prop_map(|ms| Op9701::Advance { ms }),
        1 => (0..120_000u64).prop_map(|ms| Op9701::Back { ms }),
    ]
}

fn truths_9701() -> Vec<Truth> {
    let iat_s = t0s() - 10;
    vec![
        Truth {
            active: true,
            scope: "orders:read",
            aud: "orders-api",
            sub: "alice",
            exp_s: t0s() + 3600,
            iat_s,
        },
        Truth {
            active: true,
            scope: "orders:read orders:admin",
            aud: "orders-api",
            sub: "bob",
            exp_s: t0s() + 45,
            iat_s,
        },
        Truth {
            active: false,
            scope: "",
            aud: "",
            sub: "",
            exp_s: 0,
            iat_s,
        },
        Truth {
            active: true,
            scope: "orders:read profile",
            aud: "other-api",
            sub: "alice",
            exp_s: t0s() + 600,
            iat_s,
        },
        // The epilogue's token: never picked by the ops, never revoked.
        Truth {
            active: true,
            scope: "orders:read",
            aud: "orders-api",
            sub: "erin",
            exp_s: t0s() + 10 * 86_400,
            iat_s,
        },
    ]
}

/// The token of the epilogue of a run (`truths_9701`).
const EPILOGUE_9701: usize = 4;

fn lie() -> Value {
    json!({"active": true, "scope": "orders:read orders:admin profile", "sub": "mallory",
           "aud": "orders-api", "exp": t0s() + 100_000, "iat": t0s() - 10, "iss": ISSUER,
           "client_id": "app", "jti": "forged"})
}

fn jwks_of(keys: &[Signer], set: &[usize]) -> String {
    let v: Vec<Value> = set.iter().map(|i| keys[*i].jwk.clone()).collect();
    json!({ "keys": v }).to_string()
}

fn sign_9701(signer: &Signer, typ: &str, claims: &Value, kid: Option<&str>) -> String {
    let alg = match signer.alg {
        jsonwebtoken::Algorithm::ES256 => "ES256",
        _ => "EdDSA",
    };
    let mut h = json!({"alg": alg, "typ": typ});
    if let Some(k) = kid {
        h["kid"] = json!(k);
    }
    signer.sign_with_header(h, claims)
}

struct Model9701 {
    truth: Vec<Truth>,
    /// The edge's effective time: the largest `now` it was ever given (the core never moves
    /// time backwards). Expiry, revocation and freshness are judged at this time.
    eff: u64,
    revoked: HashSet<usize>,
    alice_revoked: bool,
    requests: HashMap<u64, (usize, usize)>,
    decided: HashMap<u64, u32>,
    forwarded: HashSet<u64>,
    open: Vec<(u64, usize)>,
    /// Latest time any cache entry for the token may live to.
    cache_bound: HashMap<usize, u64>,
    waits: Waits,
}

impl Model9701 {
    fn check(&mut self, acts: &[Action], jwks_out: &mut bool) {
        let now = self.eff;
        for a in acts {
            match a {
                Action::Forward(f) => {
                    *self.decided.entry(f.request_id).or_default() += 1;
                    self.forwarded.insert(f.request_id);
                    let (t, r) = self.requests[&f.request_id];
                    let tr = &self.truth[t];
                    assert!(tr.active, "inactive token {t} forwarded: {:?}", f.token);
                    assert_eq!(
                        f.token.sub.as_deref(),
                        Some(tr.sub),
                        "forwarded claims are not the AS's (forged answer accepted)"
                    );
                    assert!(!self.revoked.contains(&t), "revoked token {t} forwarded");
                    assert!(
                        !(self.alice_revoked && tr.sub == "alice"),
                        "token {t} of a revoked subject forwarded"
                    );
                    assert!(
                        now < tr.exp_s * 1000,
                        "expired token {t} forwarded at {now}"
                    );
                    assert!(
                        tr.allows(r),
                        "token {t} forwarded on route {r} it is not authorized for"
                    );
                    assert!(!f.header_value.contains("tok-"), "opaque token forwarded");
                }
                Action::Reject(rj) => {
                    *self.decided.entry(rj.request_id).or_default() += 1;
                }
                Action::Fetch(i) if i.kind == FetchKind::Introspection => {
                    let t = (0..self.truth.len())
                        .find(|x| i.body.starts_with(&format!("token=tok-{x}&")))
                        .expect("introspection of a known token");
                    assert!(
                        !self.open.iter().any(|(_, x)| *x == t),
                        "two introspections in flight for {t}"
                    );
                    self.open.push((i.ticket, t));
                }
                Action::Fetch(f) if f.kind == FetchKind::Jwks => *jwks_out = true,
                _ => {}
            }
        }
        let to = timed_out(acts);
        self.open.retain(|(t, _)| !to.contains(t));
        self.waits.settle(acts);
    }

    /// Whether the edge must accept the truth about token `t` now (once verified and fresh):
    /// active, revoked by no selector that covers it, not expired at the effective time.
    fn must_accept(&self, t: usize) -> bool {
        let tr = &self.truth[t];
        tr.active
            && !self.revoked.contains(&t)
            && !(self.alice_revoked && tr.sub == "alice")
            && self.eff < tr.exp_s * 1000
    }

    /// The requests waiting on `ticket` (for token `t`) whose route the token authorizes.
    fn due(&self, ticket: u64, t: usize) -> Vec<u64> {
        self.waits
            .waiting(ticket)
            .into_iter()
            .filter(|id| self.truth[t].allows(self.requests[id].1))
            .collect()
    }
}

/// A genuine answer signed by a key the edge did not have: parked until the JWKS arrives.
struct Parked9701 {
    ticket: u64,
    token: usize,
    /// The signing key (index in `genuine_keys`).
    key: usize,
    /// When it was signed, by the host's clock.
    signed_ms: u64,
}

struct Run9701 {
    h: Harness,
    m: Model9701,
    keys: Vec<Signer>,
    forger_es: Signer,
    /// The keys the AS publishes.
    published: &'static [usize],
    /// The keys the edge verifies with: those of the last JWKS it got.
    edge_keys: Vec<usize>,
    jwks_out: bool,
    parked: Vec<Parked9701>,
    next_id: u64,
}

impl Run9701 {
    fn new() -> Self {
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["max_entries"] = json!(2);
        cfg["cache"]["max_pending"] = json!(3);
        cfg["authorization_server"]["jwks_min_refresh"] = json!("5s");
        Self {
            h: Harness::new(cfg),
            m: Model9701 {
                truth: truths_9701(),
                eff: T0,
                revoked: HashSet::new(),
                alice_revoked: false,
                requests: HashMap::new(),
                decided: HashMap::new(),
                forwarded: HashSet::new(),
                open: Vec::new(),
                cache_bound: HashMap::new(),
                waits: Waits::default(),
            },
            keys: genuine_keys(),
            forger_es: Signer::es256(CLIENT_DPOP_ES256, None),
            published: &[0, 2],
            // The harness answered the first fetch with as-ed + as-es.
            edge_keys: vec![0, 2],
            jwks_out: false,
            parked: Vec::new(),
            next_id: 0,
        }
    }

    fn step(&mut self, op: Op9701) {
        let Self {
            h,
            m,
            keys,
            forger_es,
            published,
            edge_keys,
            jwks_out,
            parked,
            next_id,
        } = self;
        // Liveness: the requests this step must forward, and why.
        let mut due: Vec<u64> = Vec::new();
        let mut why = String::new();
        // A genuine answer the edge cannot verify yet (its key is not in the edge's JWKS).
        let mut park: Option<Parked9701> = None;
        let acts = match op {
            Op9701::Request { token, route } => {
                *next_id += 1;
                let id = *next_id;
                m.requests.insert(id, (token, route));
                let acts = h.request(id, ROUTES[route].0, &format!("tok-{token}"));
                // Decided at once with a Forward: a cache hit, which must be within the bound.
                if acts
                    .iter()
                    .any(|a| matches!(a, Action::Forward(f) if f.request_id == id))
                {
                    let bound = m.cache_bound.get(&token).copied().unwrap_or(0);
                    assert!(
                        m.eff < bound,
                        "cache hit for token {token} at {} past every possible entry end {bound} (max-age / max_ttl / exp)",
                        m.eff
                    );
                }
                m.waits.request(id, token, &acts);
                acts
            }
            Op9701::Answer { pick, how, cc } => {
                if m.open.is_empty() {
                    return;
                }
                let (ticket, t) = m.open.remove(pick % m.open.len());
                // The truth is signed by the AS at the host's clock (behind the edge's after a
                // step back); the lies are dated by the edge's clock, so that they stay stale, in
                // the future or expired there.
                let now_s = h.now / 1000;
                let eff_s = m.eff / 1000;
                let truth = m.truth[t].ti();
                let envelope = |ti: &Value, iat: u64| json!({"iss": ISSUER, "aud": "gateway", "iat": iat, "token_introspection": ti});
                let good = &keys[published[0]];
                let genuine_key = match how {
                    Answer9701::Genuine { key } => Some(published[key % published.len()]),
                    Answer9701::AnyGenuine { key } => Some(key),
                    _ => None,
                };
                let body = match how {
                    Answer9701::Genuine { .. } | Answer9701::AnyGenuine { .. } => {
                        let k = &keys[genuine_key.unwrap()];
                        sign_9701(
                            k,
                            "token-introspection+jwt",
                            &envelope(&truth, now_s),
                            k.kid.as_deref(),
                        )
                    }
                    Answer9701::ForgedSameKid => sign_9701(
                        forger_es,
                        "token-introspection+jwt",
                        &envelope(&lie(), eff_s),
                        Some("as-es"),
                    ),
                    Answer9701::ForgedUnknownKid => sign_9701(
                        forger_es,
                        "token-introspection+jwt",
                        &envelope(&lie(), eff_s),
                        Some("evil"),
                    ),
                    Answer9701::ForgedNoKid => sign_9701(
                        forger_es,
                        "token-introspection+jwt",
                        &envelope(&lie(), eff_s),
                        None,
                    ),
                    Answer9701::StaleIat { age } => sign_9701(
                        good,
                        "token-introspection+jwt",
                        &envelope(&lie(), eff_s.saturating_sub(age + 31)),
                        good.kid.as_deref(),
                    ),
                    Answer9701::FutureIat { ahead } => sign_9701(
                        good,
                        "token-introspection+jwt",
                        &envelope(&lie(), eff_s + ahead + 31),
                        good.kid.as_deref(),
                    ),
                    Answer9701::WrongAud => {
                        let mut e = envelope(&lie(), eff_s);
                        e["aud"] = json!("someone-else");
                        sign_9701(good, "token-introspection+jwt", &e, good.kid.as_deref())
                    }
                    Answer9701::WrongIss => {
                        let mut e = envelope(&lie(), eff_s);
                        e["iss"] = json!("https://evil.example");
                        sign_9701(good, "token-introspection+jwt", &e, good.kid.as_deref())
                    }
                    Answer9701::WrongTyp => sign_9701(
                        good,
                        "at+jwt",
                        &envelope(&lie(), eff_s),
                        good.kid.as_deref(),
                    ),
                    Answer9701::ExpiredResponse => {
                        let mut e = envelope(&lie(), eff_s);
                        e["exp"] = json!(eff_s - 31);
                        sign_9701(good, "token-introspection+jwt", &e, good.kid.as_deref())
                    }
                    Answer9701::WrongContentType => {
                        let b = sign_9701(
                            good,
                            "token-introspection+jwt",
                            &envelope(&lie(), eff_s),
                            good.kid.as_deref(),
                        );
                        let acts = h.respond(ticket, 200, "application/json", &b);
                        m.check(&acts, jwks_out);
                        return;
                    }
                    Answer9701::ServerError => {
                        let acts = h.respond(ticket, 500, "text/plain", "oops");
                        m.check(&acts, jwks_out);
                        return;
                    }
                    Answer9701::Garbage => "not.a.jwt".to_string(),
                    Answer9701::Transport => {
                        h.edge
                            .handle_introspection_failure(h.now, ticket, "refused")
                            .unwrap();
                        let acts = h.edge.drain_actions();
                        m.check(&acts, jwks_out);
                        return;
                    }
                };
                let cc_value = match cc {
                    None => None,
                    Some(None) => Some("no-store".to_string()),
                    Some(Some(a)) => Some(format!("max-age={a}")),
                };
                if genuine_key.is_some() && m.truth[t].active {
                    // Invariant 3: the entry this answer may create ends by max-age, max_ttl and
                    // exp - skew. It may complete up to the ticket's timeout later (parked for a
                    // JWKS fetch).
                    let ttl = match cc {
                        None => 300_000,
                        Some(None) => 1,
                        Some(Some(a)) => (a * 1000).min(300_000),
                    };
                    let end = (m.eff + 2_000 + ttl).min(m.truth[t].exp_s * 1000 - 5_000);
                    let b = m.cache_bound.entry(t).or_default();
                    *b = (*b).max(end);
                }
                // Liveness: the truth, signed by a key the edge has, still fresh by the edge's
                // clock, about a token it must accept, forwards at once every waiter whose route
                // the token authorizes (whatever the Cache-Control: an answer that may not be
                // cached still decides its waiters). Signed by a key the edge lacks, it waits
                // for a JWKS fetch (or fails at once when the fetch is rate-limited).
                if let Some(k) = genuine_key {
                    if !edge_keys.contains(&k) {
                        park = Some(Parked9701 {
                            ticket,
                            token: t,
                            key: k,
                            signed_ms: h.now,
                        });
                    } else if answer_fresh(h.now, m.eff) && m.must_accept(t) {
                        due = m.due(ticket, t);
                        why = format!("genuine answer for token {t} at {}", m.eff);
                    }
                }
                let mut hs = vec![("content-type", RFC9701_CT)];
                if let Some(v) = &cc_value {
                    hs.push(("cache-control", v.as_str()));
                }
                h.respond_headers(ticket, 200, &hs, &body)
            }
            Op9701::Jwks { how } => {
                if !*jwks_out {
                    return;
                }
                *jwks_out = false;
                if h.edge.jwks_in_flight().is_none() {
                    // Its deadline passed (after every parked answer's own): the core failed it.
                    parked.clear();
                    return;
                }
                let doc = jwks_of(keys, published);
                // Every parked answer is verified again now. Liveness: one signed by a key now
                // published, still fresh, about a token the edge must accept, forwards its
                // waiters whose route the token authorizes.
                if how == 0 {
                    for p in parked.iter() {
                        if m.waits.alive(p.ticket)
                            && published.contains(&p.key)
                            && answer_fresh(p.signed_ms, m.eff)
                            && m.must_accept(p.token)
                        {
                            due.extend(m.due(p.ticket, p.token));
                        }
                    }
                    why = format!("parked genuine answers once the JWKS came at {}", m.eff);
                    *edge_keys = published.to_vec();
                }
                parked.clear();
                match how {
                    0 => h.edge.handle_jwks(h.now, Ok(doc.as_bytes())),
                    1 => h.edge.handle_jwks(h.now, Err("status 500")),
                    2 => h.edge.handle_jwks(h.now, Ok(b"{\"keys\": 7")),
                    _ => h.edge.handle_jwks(h.now, Ok(b"{\"keys\": []}")),
                }
                h.edge.drain_actions()
            }
            Op9701::Rotate { set } => {
                *published = PUBLISHED[set];
                return;
            }
            Op9701::Revoke { token } => {
                m.revoked.insert(token);
                h.revoke_local(Selector::Token(format!("tok-{token}")))
            }
            Op9701::RevokeSub => {
                m.alice_revoked = true;
                h.revoke_local(Selector::Sub("alice".into()))
            }
            Op9701::Advance { ms } => {
                h.advance(ms);
                m.eff = m.eff.max(h.now);
                h.edge.drain_actions()
            }
            Op9701::Back { ms } => {
                h.now = h.now.saturating_sub(ms);
                h.edge.handle_timeout(h.now);
                h.edge.drain_actions()
            }
        };
        m.check(&acts, jwks_out);
        assert_forwarded(&acts, &due, &why);
        if let Some(p) = park
            && m.waits.alive(p.ticket)
        {
            parked.push(p);
        }
        stats_bounded(&h.edge.stats(), 2, 3, 100_000, 100_000);
        let undecided = m
            .requests
            .keys()
            .filter(|id| !m.decided.contains_key(id))
            .count();
        assert_eq!(h.edge.stats().waiters, undecided, "waiters count drifted");
    }

    /// The end of a run: a JWKS fetch still out fails, the host's clock catches up with the
    /// edge's and every ticket times out.
    fn settle(&mut self) {
        if self.jwks_out {
            self.jwks_out = false;
            self.parked.clear();
            // (Unless its deadline passed: then the core failed it already.)
            if self.h.edge.jwks_in_flight().is_some() {
                self.h.edge.handle_jwks(self.h.now, Err("gone"));
                let acts = self.h.edge.drain_actions();
                self.m.check(&acts, &mut self.jwks_out);
            }
        }
        settle(&mut self.h, self.m.eff);
        self.m.eff = self.m.eff.max(self.h.now);
        let acts = self.h.edge.drain_actions();
        self.m.check(&acts, &mut self.jwks_out);
    }
}

fn run_9701(ops: Vec<Op9701>) {
    let mut r = Run9701::new();
    for op in ops {
        r.step(op);
    }
    // Liveness: every ticket ends; each request decided once.
    r.settle();
    assert_each_decided_once(r.m.requests.keys(), &r.m.decided);
    let s = r.h.edge.stats();
    assert_eq!((s.pending, s.waiters), (0, 0), "{s:?}");
    // Liveness: every run forwards. The edge gets the keys published now (if it is fetching
    // them), then a fresh token, never revoked, is requested on two routes it satisfies (the
    // second request coalesced) and answered genuinely: both are forwarded, at once or once the
    // JWKS with the answer's key came.
    r.step(Op9701::Jwks { how: 0 });
    let first = r.next_id + 1;
    r.step(Op9701::Request {
        token: EPILOGUE_9701,
        route: 0,
    });
    r.step(Op9701::Request {
        token: EPILOGUE_9701,
        route: 2,
    });
    let pick =
        r.m.open
            .iter()
            .position(|(_, t)| *t == EPILOGUE_9701)
            .expect("the epilogue introspects");
    r.step(Op9701::Answer {
        pick,
        how: Answer9701::Genuine { key: 0 },
        cc: None,
    });
    r.step(Op9701::Jwks { how: 0 });
    for id in [first, first + 1] {
        assert!(
            r.m.forwarded.contains(&id),
            "epilogue request {id} not forwarded"
        );
    }
    assert_each_decided_once(r.m.requests.keys(), &r.m.decided);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn rfc9701_only_genuine_fresh_answers_are_forwarded(ops in proptest::collection::vec(op9701(), 1..60)) {
        run_9701(ops);
    }
}

/// JWKS rotation: an answer signed by a key published after the edge fetched the JWKS is
/// parked, the JWKS fetched again, and the answer then verified.
#[test]
fn rfc9701_unknown_kid_refetches_the_jwks_and_then_verifies() {
    let mut cfg = base_config("rfc9701");
    cfg["authorization_server"]["jwks_min_refresh"] = json!("5s");
    let mut h = Harness::new(cfg);
    let keys = genuine_keys();
    h.advance(6_000);
    let t = ticket(&h.request(1, "/orders", "tok-0"));
    let truth = truths_9701()[0].ti();
    let body = sign_9701(
        &keys[1],
        "token-introspection+jwt",
        &json!({"iss": ISSUER, "aud": "gateway", "iat": h.now / 1000, "token_introspection": truth}),
        Some("as-es2"),
    );
    let acts = h.respond(t, 200, RFC9701_CT, &body);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks)),
        "{acts:?}"
    );
    assert!(decided_ids(&acts).is_empty());
    h.edge
        .handle_jwks(h.now, Ok(jwks_of(&keys, &[1]).as_bytes()));
    let f = forward(&h.edge.drain_actions()).clone();
    assert_eq!(f.token.sub.as_deref(), Some("alice"));
    // The old key is gone now: an answer signed by it fails closed.
    let t = ticket(&h.request(2, "/orders", "tok-1"));
    let body = sign_9701(
        &keys[0],
        "token-introspection+jwt",
        &json!({"iss": ISSUER, "aud": "gateway", "iat": h.now / 1000, "token_introspection": truths_9701()[1].ti()}),
        Some("as-es"),
    );
    let acts = h.respond(t, 200, RFC9701_CT, &body);
    assert!(forwards(&acts).is_empty());
}

// =============================================================================================
// 2. Split-token mode against a random shared store
// =============================================================================================

struct SplitToken {
    jwt: String,
    head: String,
    sig: String,
    truth: Truth,
    genuine: bool,
    nbf_s: Option<u64>,
}

fn split_tokens(fake: &FakeAs) -> Vec<SplitToken> {
    let forger = Signer::ed25519(EDGE_ED25519_KEY, Some("as-ed"));
    let iat_s = t0s() - 10;
    let specs: Vec<(Truth, bool, Option<u64>)> = vec![
        (
            Truth {
                active: true,
                scope: "orders:read",
                aud: "orders-api",
                sub: "alice",
                exp_s: t0s() + 3600,
                iat_s,
            },
            true,
            None,
        ),
        (
            Truth {
                active: true,
                scope: "orders:read orders:admin",
                aud: "orders-api",
                sub: "bob",
                exp_s: t0s() + 45,
                iat_s,
            },
            true,
            None,
        ),
        (
            Truth {
                active: true,
                scope: "profile",
                aud: "other-api",
                sub: "carol",
                exp_s: t0s() + 600,
                iat_s,
            },
            true,
            None,
        ),
        // Forged: an attacker wrote header.payload into the store and holds its own signature.
        (
            Truth {
                active: true,
                scope: "orders:read orders:admin",
                aud: "orders-api",
                sub: "mallory",
                exp_s: t0s() + 3600,
                iat_s,
            },
            false,
            None,
        ),
        // Not before T0 + 100 s.
        (
            Truth {
                active: true,
                scope: "orders:read orders:admin",
                aud: "orders-api",
                sub: "dave",
                exp_s: t0s() + 3600,
                iat_s,
            },
            true,
            Some(t0s() + 100),
        ),
        // The epilogue's token: never picked by the ops, never revoked.
        (
            Truth {
                active: true,
                scope: "orders:read",
                aud: "orders-api",
                sub: "erin",
                exp_s: t0s() + 10 * 86_400,
                iat_s,
            },
            true,
            None,
        ),
    ];
    specs
        .into_iter()
        .map(|(truth, genuine, nbf_s)| {
            let mut c = json!({"iss": ISSUER, "sub": truth.sub, "scope": truth.scope, "aud": truth.aud,
                               "exp": truth.exp_s, "iat": truth.iat_s, "client_id": "app",
                               "jti": format!("jti-{}", truth.sub)});
            if let Some(n) = nbf_s {
                c["nbf"] = json!(n);
            }
            let signer = if genuine { &fake.ed } else { &forger };
            let jwt = signer.sign("at+jwt", &c);
            let (head, sig) = jwt.rsplit_once('.').unwrap();
            SplitToken { head: head.into(), sig: sig.into(), jwt: jwt.clone(), truth, genuine, nbf_s }
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum StoreAnswer {
    Correct,
    OtherValue(usize),
    NotFound,
    Error,
    Garbage(u8),
}

#[derive(Debug, Clone)]
enum OpSplit {
    Request {
        token: usize,
        route: usize,
    },
    Answer {
        pick: usize,
        how: StoreAnswer,
    },
    Revoke {
        token: usize,
    },
    RevokeSub,
    Advance {
        ms: u64,
    },
    /// The host's clock steps back (NTP step, VM migration): later inputs carry a smaller `now`.
    Back {
        ms: u64,
    },
}

/// The token of the epilogue of a run (`split_tokens`).
const EPILOGUE_SPLIT: usize = 5;

fn op_split() -> impl Strategy<Value = OpSplit> {
    let how = prop_oneof![
        5 => Just(StoreAnswer::Correct),
        2 => (0..5usize).prop_map(StoreAnswer::OtherValue),
        1 => Just(StoreAnswer::NotFound),
        1 => Just(StoreAnswer::Error),
        1 => (0..5u8).prop_map(StoreAnswer::Garbage),
    ];
    prop_oneof![
        5 => (0..5usize, 0..3usize).prop_map(|(token, route)| OpSplit::Request { token, route }),
        5 => (0..8usize, how).prop_map(|(pick, how)| OpSplit::Answer { pick, how }),
        1 => (0..5usize).prop_map(|token| OpSplit::Revoke { token }),
        1 => Just(OpSplit::RevokeSub),
        2 => prop_oneof![(0..3_000u64), (0..40_000u64)].prop_map(|ms| OpSplit::Advance { ms }),
        1 => (0..120_000u64).prop_map(|ms| OpSplit::Back { ms }),
    ]
}

fn split_key(sig: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(sig.as_bytes());
    format!(
        "phantom-edge:split:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h)
    )
}

struct RunSplit {
    h: Harness,
    toks: Vec<SplitToken>,
    /// The edge's effective time: the largest `now` it was ever given.
    eff: u64,
    revoked: HashSet<usize>,
    alice_revoked: bool,
    requests: HashMap<u64, (usize, usize)>,
    decided: HashMap<u64, u32>,
    forwarded: HashSet<u64>,
    open: Vec<(u64, usize)>,
    waits: Waits,
    next_id: u64,
}

impl RunSplit {
    fn new() -> Self {
        let mut cfg = split_config();
        cfg["cache"]["max_entries"] = json!(2);
        cfg["cache"]["max_pending"] = json!(3);
        let h = Harness::new(cfg);
        let toks = split_tokens(&h.fake);
        Self {
            h,
            toks,
            eff: T0,
            revoked: HashSet::new(),
            alice_revoked: false,
            requests: HashMap::new(),
            decided: HashMap::new(),
            forwarded: HashSet::new(),
            open: Vec::new(),
            waits: Waits::default(),
            next_id: 0,
        }
    }

    /// Safety of everything in `acts`, judged at the edge's effective time.
    fn check(&mut self, acts: &[Action]) {
        let now = self.eff;
        for a in acts {
            // The signature the client holds appears nowhere but in a Forward's header value.
            let text = match a {
                Action::Forward(f) => format!(
                    "{:?} {:?} {} {:?} {:?}",
                    f.token, f.strip_headers, f.fingerprint, f.rewritten_path, f.header_name
                ),
                Action::Audit(e) => format!("{a:?} {}", e.to_json()),
                _ => format!("{a:?}"),
            };
            for t in &self.toks {
                assert!(!text.contains(&t.sig), "signature leaked in {text}");
            }
            match a {
                Action::Forward(f) => {
                    *self.decided.entry(f.request_id).or_default() += 1;
                    self.forwarded.insert(f.request_id);
                    let (t, r) = self.requests[&f.request_id];
                    let tk = &self.toks[t];
                    assert!(tk.genuine, "forged split token {t} forwarded");
                    assert_eq!(
                        &*f.header_value,
                        format!("Bearer {}", tk.jwt),
                        "forwarded JWT is not the one presented"
                    );
                    assert_eq!(f.token.sub.as_deref(), Some(tk.truth.sub));
                    assert!(
                        !self.revoked.contains(&t),
                        "revoked split token {t} forwarded"
                    );
                    assert!(
                        !(self.alice_revoked && tk.truth.sub == "alice"),
                        "token of revoked subject forwarded"
                    );
                    assert!(
                        now < tk.truth.exp_s * 1000,
                        "expired split token {t} forwarded at {now}"
                    );
                    if let Some(nbf) = tk.nbf_s {
                        assert!(
                            nbf * 1000 <= now + 30_000,
                            "split token {t} forwarded before nbf"
                        );
                    }
                    assert!(tk.truth.allows(r), "split token {t} forwarded on route {r}");
                }
                Action::Reject(rj) => {
                    *self.decided.entry(rj.request_id).or_default() += 1;
                }
                Action::SharedLookup(l) => {
                    let t = (0..self.toks.len())
                        .find(|i| split_key(&self.toks[*i].sig) == l.key)
                        .expect("lookup key of a presented signature");
                    assert!(
                        !self.open.iter().any(|(_, x)| *x == t),
                        "two lookups in flight for {t}"
                    );
                    self.open.push((l.ticket, t));
                }
                Action::Fetch(f) if f.kind == FetchKind::Introspection => {
                    panic!("split mode introspected")
                }
                _ => {}
            }
        }
        let to = timed_out(acts);
        self.open.retain(|(t, _)| !to.contains(t));
        self.waits.settle(acts);
    }

    /// Whether the edge must accept split token `t` now, reassembled from its genuine stored
    /// value: signed by the AS, revoked by no selector that covers it, not expired and not
    /// before its `nbf` (with the 30 s leeway) at the effective time.
    fn must_accept(&self, t: usize) -> bool {
        let tk = &self.toks[t];
        tk.genuine
            && !self.revoked.contains(&t)
            && !(self.alice_revoked && tk.truth.sub == "alice")
            && self.eff < tk.truth.exp_s * 1000
            && tk.nbf_s.is_none_or(|nbf| nbf * 1000 <= self.eff + 30_000)
    }

    fn step(&mut self, op: OpSplit) {
        let n = self.toks.len();
        let mut due: Vec<u64> = Vec::new();
        let acts = match op {
            OpSplit::Request { token, route } => {
                self.next_id += 1;
                let id = self.next_id;
                self.requests.insert(id, (token, route));
                let acts = self.h.request(id, ROUTES[route].0, &self.toks[token].sig);
                self.waits.request(id, token, &acts);
                acts
            }
            OpSplit::Answer { pick, how } => {
                if self.open.is_empty() {
                    return;
                }
                let (ticket, t) = self.open.remove(pick % self.open.len());
                let toks = &self.toks;
                let garbage = ["", "garbage", "abc.def", "a.b.c", &toks[t].jwt];
                let value: Option<String> = match how {
                    StoreAnswer::Correct => Some(toks[t].head.clone()),
                    StoreAnswer::OtherValue(j) => Some(toks[j % n].head.clone()),
                    StoreAnswer::NotFound | StoreAnswer::Error => None,
                    StoreAnswer::Garbage(g) => {
                        Some(garbage[g as usize % garbage.len()].to_string())
                    }
                };
                let res = match (&how, &value) {
                    (StoreAnswer::NotFound, _) => LookupResult::NotFound,
                    (StoreAnswer::Error, _) => LookupResult::Error,
                    (_, Some(v)) => LookupResult::Found(v),
                    _ => unreachable!(),
                };
                // Liveness: the token's own stored value (the keys are those the harness gave
                // at start), for a token the edge must accept, forwards at once every waiter
                // whose route the token authorizes.
                if value.as_deref() == Some(toks[t].head.as_str()) && self.must_accept(t) {
                    due = self
                        .waits
                        .waiting(ticket)
                        .into_iter()
                        .filter(|id| self.toks[t].truth.allows(self.requests[id].1))
                        .collect();
                }
                self.h
                    .edge
                    .handle_shared_lookup(self.h.now, ticket, res)
                    .unwrap();
                self.h.edge.drain_actions()
            }
            OpSplit::Revoke { token } => {
                self.revoked.insert(token);
                self.h
                    .revoke_local(Selector::Token(self.toks[token].sig.clone()))
            }
            OpSplit::RevokeSub => {
                self.alice_revoked = true;
                self.h.revoke_local(Selector::Sub("alice".into()))
            }
            OpSplit::Advance { ms } => {
                self.h.advance(ms);
                self.eff = self.eff.max(self.h.now);
                self.h.edge.drain_actions()
            }
            OpSplit::Back { ms } => {
                self.h.now = self.h.now.saturating_sub(ms);
                self.h.edge.handle_timeout(self.h.now);
                self.h.edge.drain_actions()
            }
        };
        self.check(&acts);
        assert_forwarded(
            &acts,
            &due,
            &format!("genuine stored value at {}", self.eff),
        );
        stats_bounded(&self.h.edge.stats(), 2, 3, 100_000, 100_000);
        let undecided = self
            .requests
            .keys()
            .filter(|id| !self.decided.contains_key(id))
            .count();
        assert_eq!(
            self.h.edge.stats().waiters,
            undecided,
            "waiters count drifted"
        );
    }
}

fn run_split(ops: Vec<OpSplit>) {
    let mut r = RunSplit::new();
    for op in ops {
        r.step(op);
    }
    // Liveness: the host's clock catches up with the edge's, every ticket times out; each
    // request decided once.
    settle(&mut r.h, r.eff);
    r.eff = r.eff.max(r.h.now);
    let acts = r.h.edge.drain_actions();
    r.check(&acts);
    assert_each_decided_once(r.requests.keys(), &r.decided);
    // Liveness: every run forwards. A fresh token, never revoked, on two routes it satisfies
    // (the second request coalesced), its genuine value found in the store: both forwarded.
    let first = r.next_id + 1;
    r.step(OpSplit::Request {
        token: EPILOGUE_SPLIT,
        route: 0,
    });
    r.step(OpSplit::Request {
        token: EPILOGUE_SPLIT,
        route: 2,
    });
    let pick = r
        .open
        .iter()
        .position(|(_, t)| *t == EPILOGUE_SPLIT)
        .expect("the epilogue looks up the store");
    r.step(OpSplit::Answer {
        pick,
        how: StoreAnswer::Correct,
    });
    for id in [first, first + 1] {
        assert!(
            r.forwarded.contains(&id),
            "epilogue request {id} not forwarded"
        );
    }
    assert_each_decided_once(r.requests.keys(), &r.decided);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn split_forwards_only_verified_store_values(ops in proptest::collection::vec(op_split(), 1..60)) {
        run_split(ops);
    }
}

// =============================================================================================
// 3. Two instances sharing revocations through SharedPublish
// =============================================================================================

fn shared_config() -> Value {
    let mut cfg = base_config("rfc9701");
    cfg["cache"]["fingerprint_key"] = json!("shared-fingerprint-key-0123456789abcdef");
    cfg["cache"]["max_entries"] = json!(3);
    cfg
}

fn two_truths() -> Vec<Truth> {
    let iat_s = t0s() - 10;
    vec![
        // A long-lived token (20 days): beyond revocation.default_ttl, within the 30 days the
        // core looks ahead for the latest exp it has seen (a token living longer than both is
        // covered only as long as this edge sees it: docs/configuration.md, revocation.default_ttl).
        Truth {
            active: true,
            scope: "orders:read",
            aud: "orders-api",
            sub: "alice",
            exp_s: t0s() + 20 * 86_400,
            iat_s,
        },
        Truth {
            active: true,
            scope: "orders:read orders:admin",
            aud: "orders-api",
            sub: "bob",
            exp_s: t0s() + 3 * 86_400,
            iat_s,
        },
        Truth {
            active: true,
            scope: "orders:read",
            aud: "orders-api",
            sub: "alice",
            exp_s: t0s() + 3600,
            iat_s,
        },
    ]
}

#[derive(Debug, Clone)]
enum OpTwo {
    /// The same request to A and to B (a client behind a load balancer).
    Request {
        token: usize,
        route: usize,
    },
    /// A request to B only.
    RequestB {
        token: usize,
    },
    /// A request to A only: A learns a token's exp that B has not seen.
    RequestA {
        token: usize,
    },
    RevokeToken {
        token: usize,
    },
    RevokeSub {
        who: usize,
    },
    RevokeJti {
        token: usize,
    },
    Deliver,
    Advance {
        ms: u64,
    },
    /// The hosts' clocks step back (NTP step, VM migration): later inputs carry a smaller `now`.
    Back {
        ms: u64,
    },
}

fn op_two() -> impl Strategy<Value = OpTwo> {
    prop_oneof![
        5 => (0..3usize, 0..2usize).prop_map(|(token, route)| OpTwo::Request { token, route }),
        2 => (0..3usize).prop_map(|token| OpTwo::RequestB { token }),
        2 => (0..3usize).prop_map(|token| OpTwo::RequestA { token }),
        1 => (0..3usize).prop_map(|token| OpTwo::RevokeToken { token }),
        1 => (0..2usize).prop_map(|who| OpTwo::RevokeSub { who }),
        1 => (0..3usize).prop_map(|token| OpTwo::RevokeJti { token }),
        3 => Just(OpTwo::Deliver),
        3 => prop_oneof![2 => 0..60_000u64, 2 => 3_600_000..2 * 86_400_000u64, 1 => 2 * 86_400_000..12 * 86_400_000u64].prop_map(|ms| OpTwo::Advance { ms }),
        1 => (0..120_000u64).prop_map(|ms| OpTwo::Back { ms }),
    ]
}

/// Sends one request and answers its introspection at once with the truth (genuine, fresh).
fn request_sync(
    h: &mut Harness,
    id: u64,
    route: usize,
    token: usize,
    truth: &Truth,
) -> Vec<Action> {
    let mut acts = h.request(id, ROUTES[route].0, &format!("tok-{token}"));
    if let Some(i) = introspects(&acts).first().map(|i| i.ticket) {
        let body = h.fake.rfc9701(&h.fake.es, truth.ti(), h.now);
        acts.extend(h.respond(i, 200, RFC9701_CT, &body));
    }
    acts
}

fn decision(acts: &[Action], id: u64) -> Result<(), Reason> {
    for a in acts {
        match a {
            Action::Forward(f) if f.request_id == id => return Ok(()),
            Action::Reject(r) if r.request_id == id => return Err(r.reason),
            _ => {}
        }
    }
    panic!("request {id} not decided: {acts:?}")
}

fn publishes(acts: &[Action]) -> Vec<String> {
    acts.iter()
        .filter_map(|a| match a {
            Action::SharedPublish(p) => Some(p.message.clone()),
            _ => None,
        })
        .collect()
}

fn run_two(ops: Vec<OpTwo>) {
    let mut a = Harness::new(shared_config());
    let mut b = Harness::new(shared_config());
    let truth = two_truths();
    let mut queue: Vec<String> = Vec::new();
    // Revocations made on A and already delivered to B: (what, when delivered).
    let mut pending_rev: Vec<(OpTwo, u64)> = Vec::new();
    let mut delivered: Vec<(OpTwo, u64)> = Vec::new();
    // Every revocation made on A, delivered or not.
    let mut made: Vec<OpTwo> = Vec::new();
    // The instances' effective time: the largest `now` they were given (both get the same).
    let mut eff = T0;
    let mut id = 0u64;
    for op in ops {
        match &op {
            OpTwo::Request { token, route } => {
                id += 1;
                let acts = request_sync(&mut a, id, *route, *token, &truth[*token]);
                // A revocation A keeps longer on seeing this token is published again.
                queue.extend(publishes(&acts));
                let da = decision(&acts, id);
                if must_forward(&made, &truth, *token, *route, &acts, a.now, eff) {
                    assert_eq!(da, Ok(()), "A refused token {token} on route {route}");
                }
                let acts = request_sync(&mut b, id, *route, *token, &truth[*token]);
                let db = decision(&acts, id);
                if must_forward(&made, &truth, *token, *route, &acts, b.now, eff) {
                    assert_eq!(db, Ok(()), "B refused token {token} on route {route}");
                }
                // Also past revocation.default_ttl: the receiver keeps what the origin keeps
                // (`published_default_until_is_not_fixed_on_the_receiver`).
                if queue.is_empty() && db.is_ok() {
                    assert!(
                        da != Err(Reason::Revoked),
                        "after delivery, B forwards token {token} that A (the revocation's origin) refuses as revoked at +{} s; delivered: {delivered:?}",
                        (eff - T0) / 1000
                    );
                }
                check_b(&delivered, &truth, *token, db, eff);
            }
            OpTwo::RequestB { token } => {
                id += 1;
                let acts = request_sync(&mut b, id, 0, *token, &truth[*token]);
                let db = decision(&acts, id);
                if must_forward(&made, &truth, *token, 0, &acts, b.now, eff) {
                    assert_eq!(db, Ok(()), "B refused token {token}");
                }
                check_b(&delivered, &truth, *token, db, eff);
            }
            OpTwo::RequestA { token } => {
                id += 1;
                let acts = request_sync(&mut a, id, 0, *token, &truth[*token]);
                queue.extend(publishes(&acts));
                if must_forward(&made, &truth, *token, 0, &acts, a.now, eff) {
                    assert_eq!(decision(&acts, id), Ok(()), "A refused token {token}");
                }
            }
            OpTwo::RevokeToken { token } => {
                let r = Revocation {
                    selector: Selector::Token(format!("tok-{token}")),
                    until: None,
                    keep_until: None,
                    since: None,
                };
                a.edge.handle_revocation(a.now, r, Origin::Local).unwrap();
                queue.extend(publishes(&a.edge.drain_actions()));
                pending_rev.push((op.clone(), eff));
                made.push(op.clone());
            }
            OpTwo::RevokeSub { who } => {
                let s = ["alice", "bob"][*who];
                let r = Revocation {
                    selector: Selector::Sub(s.into()),
                    until: None,
                    keep_until: None,
                    since: None,
                };
                a.edge.handle_revocation(a.now, r, Origin::Local).unwrap();
                queue.extend(publishes(&a.edge.drain_actions()));
                pending_rev.push((op.clone(), eff));
                made.push(op.clone());
            }
            OpTwo::RevokeJti { token } => {
                let j = format!("jti-{}", truth[*token].sub);
                let r = Revocation {
                    selector: Selector::Jti(j),
                    until: None,
                    keep_until: None,
                    since: None,
                };
                a.edge.handle_revocation(a.now, r, Origin::Local).unwrap();
                queue.extend(publishes(&a.edge.drain_actions()));
                pending_rev.push((op.clone(), eff));
                made.push(op.clone());
            }
            OpTwo::Deliver => {
                deliver(&mut b, &mut queue);
                delivered.extend(pending_rev.drain(..).map(|(o, _)| (o, eff)));
            }
            OpTwo::Advance { ms } => {
                // Pub/sub delivers within seconds: what was published is delivered before a
                // long pause.
                if *ms > 60_000 {
                    deliver(&mut b, &mut queue);
                    delivered.extend(pending_rev.drain(..).map(|(o, _)| (o, eff)));
                }
                a.advance(*ms);
                b.advance(*ms);
                eff = eff.max(a.now);
                let _ = a.edge.drain_actions();
                let _ = b.edge.drain_actions();
            }
            OpTwo::Back { ms } => {
                for h in [&mut a, &mut b] {
                    h.now = h.now.saturating_sub(*ms);
                    h.edge.handle_timeout(h.now);
                    let _ = h.edge.drain_actions();
                }
            }
        }
        stats_bounded(&a.edge.stats(), 3, 10_000, 100_000, 100_000);
        stats_bounded(&b.edge.stats(), 3, 10_000, 100_000, 100_000);
    }
}

fn deliver(b: &mut Harness, queue: &mut Vec<String>) {
    for msg in queue.drain(..) {
        receive(b, &msg);
    }
}

/// B handles one message A published, as the shared channel delivers it: accepted (the model
/// revokes without `until`, and a `keep_until` in the past is only a floor), and not
/// published again.
fn receive(b: &mut Harness, msg: &str) {
    let r = Revocation::from_json(msg.as_bytes()).expect("a published message parses");
    if let Err(e) = b.edge.handle_revocation(b.now, r, Origin::Shared) {
        panic!("B refused the published {msg}: {e}");
    }
    assert!(
        publishes(&b.edge.drain_actions()).is_empty(),
        "shared revocations are not republished: {msg}"
    );
}

/// Whether the revocation `op` covers `token` (every token was issued before any revocation).
fn covers(op: &OpTwo, truth: &[Truth], token: usize) -> bool {
    match op {
        OpTwo::RevokeToken { token: t } => *t == token,
        OpTwo::RevokeSub { who } => truth[token].sub == ["alice", "bob"][*who],
        OpTwo::RevokeJti { token: t } => truth[*t].sub == truth[token].sub,
        _ => false,
    }
}

/// Liveness on one instance: a request for `token` on `route`, answered at once (`acts`, from
/// `request_sync`), is forwarded when no revocation ever made covers the token (one an instance
/// has forgotten may or may not be kept elsewhere: not judged), the token is unexpired at the
/// effective time `eff` and authorized on the route, and, if the instance asked the AS, the
/// answer (signed by the host's clock `now`) is still fresh by the instance's clock.
fn must_forward(
    made: &[OpTwo],
    truth: &[Truth],
    token: usize,
    route: usize,
    acts: &[Action],
    now: u64,
    eff: u64,
) -> bool {
    let fresh = introspects(acts).is_empty() || answer_fresh(now, eff);
    !made.iter().any(|op| covers(op, truth, token))
        && truth[token].allows(route)
        && eff < truth[token].exp_s * 1000
        && fresh
}

/// Within `revocation.default_ttl` (24 h) of its delivery, a revocation is absolute on B.
fn check_b(
    delivered: &[(OpTwo, u64)],
    truth: &[Truth],
    token: usize,
    db: Result<(), Reason>,
    now: u64,
) {
    if db.is_err() {
        return;
    }
    for (op, at) in delivered {
        if now >= at + 86_400_000 {
            continue;
        }
        assert!(
            !covers(op, truth, token),
            "B forwarded token {token} {} s after {op:?} was delivered",
            (now - at) / 1000
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn shared_revocations_hold_on_the_receiving_instance(ops in proptest::collection::vec(op_two(), 1..40)) {
        run_two(ops);
    }
}

// =============================================================================================
// 4. DPoP-bound tokens
// =============================================================================================

#[derive(Debug, Clone, Copy)]
struct ProofSpec {
    dpop_scheme: bool,
    with_proof: bool,
    /// 0 the client's key, 1 another key.
    signer: usize,
    jti: u8,
    /// Seconds relative to now.
    iat_off: i64,
    /// 0 ok, 1 wrong htm, 2 wrong htu, 3 wrong ath.
    defect: u8,
}

#[derive(Debug, Clone)]
enum OpDpop {
    Request {
        token: usize,
        route: usize,
        p: ProofSpec,
    },
    /// Send again the last proof sent (an exact replay).
    Replay {
        token: usize,
    },
    Answer {
        pick: usize,
    },
    Advance {
        ms: u64,
    },
    /// The host's clock steps back (NTP step, VM migration): later inputs carry a smaller `now`.
    Back {
        ms: u64,
    },
}

fn proof_spec() -> impl Strategy<Value = ProofSpec> {
    (
        prop_oneof![4 => Just(true), 1 => Just(false)],
        prop_oneof![8 => Just(true), 1 => Just(false)],
        prop_oneof![3 => Just(0usize), 1 => Just(1usize)],
        0..3u8,
        prop_oneof![4 => Just(0i64), 1 => -150..60i64],
        prop_oneof![6 => Just(0u8), 1 => 1..4u8],
    )
        .prop_map(
            |(dpop_scheme, with_proof, signer, jti, iat_off, defect)| ProofSpec {
                dpop_scheme,
                with_proof,
                signer,
                jti,
                iat_off,
                defect,
            },
        )
}

fn op_dpop() -> impl Strategy<Value = OpDpop> {
    prop_oneof![
        5 => (0..3usize, 0..2usize, proof_spec()).prop_map(|(token, route, p)| OpDpop::Request { token, route, p }),
        1 => (0..3usize).prop_map(|token| OpDpop::Replay { token }),
        4 => (0..8usize).prop_map(|pick| OpDpop::Answer { pick }),
        2 => prop_oneof![(0..3_000u64), (0..100_000u64)].prop_map(|ms| OpDpop::Advance { ms }),
        1 => (0..120_000u64).prop_map(|ms| OpDpop::Back { ms }),
    ]
}

/// The key each token is bound to (`cnf.jkt`): 0 the client's, 1 the other, `None` unbound.
/// Tokens 3 and 4 are the epilogue's: never picked by the ops.
const DPOP_BINDING: [Option<usize>; 5] = [Some(0), None, Some(1), None, Some(0)];

/// A DPoP proof is usable from `leeway` (30 s) before its `iat` to `dpop.proof_max_age` (60 s)
/// plus `leeway` after, and its `jti` is remembered until `iat` + max age + twice the leeway.
const PROOF_AHEAD_MS: u64 = 30_000;
const PROOF_USABLE_MS: u64 = 60_000 + 30_000;
const PROOF_REMEMBERED_MS: u64 = 60_000 + 60_000;
/// `dpop.max_replay_entries` in the model's configuration.
const REPLAY_MAX: usize = 4;

/// What a request of the DPoP model sent.
struct Sent {
    token: usize,
    scheme_dpop: bool,
    /// The proof passed every check but replay when the request arrived.
    proof_valid: bool,
    key: Option<usize>,
    jti: Option<(usize, u8)>,
    iat_ms: u64,
}

/// Token → (DPoP scheme, proof, key, jti, iat ms, proof well-formed) of its last request.
type LastProof = (bool, Option<String>, Option<usize>, Option<u8>, u64, bool);

struct RunDpop {
    h: Harness,
    signers: [Signer; 2],
    jkts: [String; 2],
    /// The edge's effective time: the largest `now` it was ever given.
    eff: u64,
    sent: HashMap<u64, Sent>,
    last: HashMap<usize, LastProof>,
    /// (jkt index, jti) → replay-set expiry of the proof let through.
    forwarded_jti: HashMap<(usize, u8), u64>,
    decided: HashMap<u64, u32>,
    forwarded: HashSet<u64>,
    open: Vec<(u64, usize)>,
    waits: Waits,
    id: u64,
}

const DPOP_HTU: &str = "https://api.example/orders";

impl RunDpop {
    fn new() -> Self {
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["max_entries"] = json!(2);
        cfg["cache"]["max_pending"] = json!(3);
        cfg["dpop"] = json!({"max_replay_entries": REPLAY_MAX});
        let signers = [
            Signer::es256(CLIENT_DPOP_ES256, None),
            Signer::es256(EDGE_ES256, None),
        ];
        let jkts = [jkt(&signers[0]), jkt(&signers[1])];
        Self {
            h: Harness::new(cfg),
            signers,
            jkts,
            eff: T0,
            sent: HashMap::new(),
            last: HashMap::new(),
            forwarded_jti: HashMap::new(),
            decided: HashMap::new(),
            forwarded: HashSet::new(),
            open: Vec::new(),
            waits: Waits::default(),
            id: 0,
        }
    }

    fn exp_s(t: usize) -> u64 {
        if t < 3 {
            t0s() + 3600
        } else {
            t0s() + 10 * 86_400
        }
    }

    fn truth_of(&self, t: usize) -> Value {
        let mut c = json!({"active": true, "scope": "orders:read orders:admin", "sub": format!("u{t}"),
                           "aud": "orders-api", "exp": Self::exp_s(t), "iat": t0s() - 10, "iss": ISSUER});
        if let Some(k) = DPOP_BINDING[t] {
            c["cnf"] = json!({"jkt": self.jkts[k]});
        }
        c
    }

    /// Whether a proof issued at `iat_ms` is within its window at the effective time.
    fn in_window(&self, iat_ms: u64) -> bool {
        iat_ms <= self.eff + PROOF_AHEAD_MS && iat_ms + PROOF_USABLE_MS >= self.eff
    }

    /// Safety of everything in `acts`, judged at the edge's effective time.
    fn handle(&mut self, acts: &[Action]) {
        let now = self.eff;
        for a in acts {
            match a {
                Action::Forward(f) => {
                    *self.decided.entry(f.request_id).or_default() += 1;
                    self.forwarded.insert(f.request_id);
                    let s = &self.sent[&f.request_id];
                    match DPOP_BINDING[s.token] {
                        Some(k) => {
                            assert!(
                                s.scheme_dpop,
                                "DPoP-bound token {} forwarded as Bearer",
                                s.token
                            );
                            assert!(
                                s.proof_valid,
                                "DPoP-bound token {} forwarded with an invalid proof",
                                s.token
                            );
                            assert_eq!(
                                s.key,
                                Some(k),
                                "token {} forwarded with a proof by another key",
                                s.token
                            );
                            let j = s.jti.unwrap();
                            if let Some(until) = self.forwarded_jti.get(&j) {
                                assert!(
                                    now >= *until,
                                    "proof jti {j:?} replayed and forwarded at {now} (remembered until {until})"
                                );
                            }
                            self.forwarded_jti
                                .insert(j, (s.iat_ms + PROOF_REMEMBERED_MS).max(now + 1));
                        }
                        None => assert!(
                            !s.scheme_dpop,
                            "unbound token forwarded under the DPoP scheme"
                        ),
                    }
                }
                Action::Reject(r) => *self.decided.entry(r.request_id).or_default() += 1,
                Action::Fetch(i) if i.kind == FetchKind::Introspection => {
                    let t = (0..DPOP_BINDING.len())
                        .find(|x| i.body.starts_with(&format!("token=tok-{x}&")))
                        .unwrap();
                    self.open.push((i.ticket, t));
                }
                _ => {}
            }
        }
        let to = timed_out(acts);
        self.open.retain(|(t, _)| !to.contains(t));
        self.waits.settle(acts);
    }

    /// Liveness: of the requests waiting on `ticket` (a genuine, fresh answer for an unexpired
    /// token), those the edge must forward, in the order it decides them. A bound token needs
    /// the DPoP scheme and a proof by its key that was valid on arrival; its `jti` must not be
    /// in the replay set (recorded by an earlier forward, or an earlier waiter of this ticket)
    /// and the set must have room (else `overloaded`). An unbound token needs the Bearer scheme.
    fn due(&self, ticket: u64) -> Vec<u64> {
        let mut replay: HashMap<(usize, u8), u64> = self
            .forwarded_jti
            .iter()
            .filter(|(_, until)| **until > self.eff)
            .map(|(j, until)| (*j, *until))
            .collect();
        let mut due = Vec::new();
        for id in self.waits.waiting(ticket) {
            let s = &self.sent[&id];
            let ok = match DPOP_BINDING[s.token] {
                None => !s.scheme_dpop,
                Some(k) if s.scheme_dpop && s.proof_valid && s.key == Some(k) => {
                    let j = s.jti.unwrap();
                    if replay.contains_key(&j) || replay.len() >= REPLAY_MAX {
                        false
                    } else {
                        replay.insert(j, (s.iat_ms + PROOF_REMEMBERED_MS).max(self.eff + 1));
                        true
                    }
                }
                Some(_) => false,
            };
            if ok {
                due.push(id);
            }
        }
        due
    }

    fn request(&mut self, token: usize, p: ProofSpec) -> u64 {
        self.id += 1;
        let id = self.id;
        let tok = format!("tok-{token}");
        // The client dates its proof by the host's clock.
        let now_s = (self.h.now / 1000) as i64;
        let iat = (now_s + p.iat_off).max(0) as u64;
        let (htm, u, ath_tok) = match p.defect {
            1 => ("POST", DPOP_HTU, tok.as_str()),
            2 => ("GET", "https://api.example/admin", tok.as_str()),
            3 => ("GET", DPOP_HTU, "tok-other"),
            _ => ("GET", DPOP_HTU, tok.as_str()),
        };
        let proof = p.with_proof.then(|| {
            dpop_proof(
                &self.signers[p.signer],
                htm,
                u,
                ath_tok,
                iat,
                &format!("j{}", p.jti),
            )
        });
        let iat_ms = iat * 1000;
        let valid = p.with_proof && p.defect == 0 && self.in_window(iat_ms);
        self.last.insert(
            token,
            (
                p.dpop_scheme,
                proof.clone(),
                Some(p.signer),
                Some(p.jti),
                iat_ms,
                p.defect == 0 && p.with_proof,
            ),
        );
        self.sent.insert(
            id,
            Sent {
                token,
                scheme_dpop: p.dpop_scheme,
                proof_valid: valid,
                key: p.with_proof.then_some(p.signer),
                jti: p.with_proof.then_some((p.signer, p.jti)),
                iat_ms,
            },
        );
        let auth = format!("{} {tok}", if p.dpop_scheme { "DPoP" } else { "Bearer" });
        let mut hs: Vec<(&str, &str)> = vec![("authorization", &auth)];
        if let Some(pr) = &proof {
            hs.push(("dpop", pr));
        }
        let acts = self.h.request_with(id, "GET", "/orders", &hs, None);
        self.after(&acts, &[]);
        self.waits.request(id, token, &acts);
        id
    }

    fn after(&mut self, acts: &[Action], due: &[u64]) {
        self.handle(acts);
        assert_forwarded(acts, due, &format!("genuine answer at {}", self.eff));
        stats_bounded(&self.h.edge.stats(), 2, 3, 100_000, REPLAY_MAX);
    }

    fn step(&mut self, op: OpDpop) {
        let mut due = Vec::new();
        let acts = match op {
            OpDpop::Request { token, route, p } => {
                let _ = route;
                self.request(token, p);
                return;
            }
            OpDpop::Replay { token } => {
                let Some((scheme, proof, key, jti, iat_ms, ok)) = self.last.get(&token).cloned()
                else {
                    return;
                };
                self.id += 1;
                let id = self.id;
                let tok = format!("tok-{token}");
                let valid = ok && self.in_window(iat_ms);
                self.sent.insert(
                    id,
                    Sent {
                        token,
                        scheme_dpop: scheme,
                        proof_valid: valid,
                        key: proof.as_ref().and(key),
                        jti: proof.as_ref().and(key.zip(jti)),
                        iat_ms,
                    },
                );
                let auth = format!("{} {tok}", if scheme { "DPoP" } else { "Bearer" });
                let mut hs: Vec<(&str, &str)> = vec![("authorization", &auth)];
                if let Some(pr) = &proof {
                    hs.push(("dpop", pr));
                }
                let acts = self.h.request_with(id, "GET", "/orders", &hs, None);
                self.waits.request(id, token, &acts);
                acts
            }
            OpDpop::Answer { pick } => {
                if self.open.is_empty() {
                    return;
                }
                let (ticket, t) = self.open.remove(pick % self.open.len());
                // Signed now by the host's clock: stale by the edge's after a large step back.
                if answer_fresh(self.h.now, self.eff) && self.eff < Self::exp_s(t) * 1000 {
                    due = self.due(ticket);
                }
                let truth = self.truth_of(t);
                self.h.respond_9701(ticket, truth)
            }
            OpDpop::Advance { ms } => {
                self.h.advance(ms);
                self.eff = self.eff.max(self.h.now);
                self.h.edge.drain_actions()
            }
            OpDpop::Back { ms } => {
                self.h.now = self.h.now.saturating_sub(ms);
                self.h.edge.handle_timeout(self.h.now);
                self.h.edge.drain_actions()
            }
        };
        self.after(&acts, &due);
    }
}

fn run_dpop(ops: Vec<OpDpop>) {
    let mut r = RunDpop::new();
    for op in ops {
        r.step(op);
    }
    // The host's clock catches up with the edge's, every ticket times out: each request
    // decided once.
    settle(&mut r.h, r.eff);
    r.eff = r.eff.max(r.h.now);
    let acts = r.h.edge.drain_actions();
    r.after(&acts, &[]);
    assert_each_decided_once(r.sent.keys(), &r.decided);
    // Liveness: every run forwards. Once every remembered proof expired, fresh tokens answered
    // genuinely: an unbound one sent as Bearer twice, a bound one sent twice with fresh proofs
    // by its key (distinct jtis); the second requests coalesced. All four are forwarded.
    r.step(OpDpop::Advance {
        ms: PROOF_AHEAD_MS + PROOF_REMEMBERED_MS + 10_000,
    });
    let bearer = ProofSpec {
        dpop_scheme: false,
        with_proof: false,
        signer: 0,
        jti: 0,
        iat_off: 0,
        defect: 0,
    };
    let bound = |jti| ProofSpec {
        dpop_scheme: true,
        with_proof: true,
        jti,
        ..bearer
    };
    let ids = [
        r.request(3, bearer),
        r.request(4, bound(100)),
        r.request(3, bearer),
        r.request(4, bound(101)),
    ];
    for t in [3, 4] {
        let pick = r
            .open
            .iter()
            .position(|(_, x)| *x == t)
            .expect("the epilogue introspects");
        r.step(OpDpop::Answer { pick });
    }
    for id in ids {
        assert!(
            r.forwarded.contains(&id),
            "epilogue request {id} not forwarded"
        );
    }
    assert_each_decided_once(r.sent.keys(), &r.decided);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]
    #[test]
    fn dpop_bound_tokens_need_a_fresh_proof_by_the_bound_key(ops in proptest::collection::vec(op_dpop(), 1..50)) {
        run_dpop(ops);
    }
}

/// A revocation made without `until` was published with the `until` the origin computed by
/// default (`revocation.default_ttl`, or the latest exp the origin had seen), and the receiver
/// read it as one the revoker set: fixed, never extended by a matching token
/// (`RevocationSet::matches`). The receiver forgot it after `default_ttl` and forwarded the
/// revoked subject's token again while the origin still refused it (invariant 2 on the
/// receiver). Now only a certain `until` is published.
#[test]
fn published_default_until_is_not_fixed_on_the_receiver() {
    let mut a = Harness::new(shared_config());
    let mut b = Harness::new(shared_config());
    // bob's token lives 3 days, beyond revocation.default_ttl (24 h).
    let bob = two_truths()[1].clone();
    a.edge
        .handle_revocation(
            a.now,
            Revocation {
                selector: Selector::Sub("bob".into()),
                until: None,
                keep_until: None,
                since: None,
            },
            Origin::Local,
        )
        .unwrap();
    let msg = publishes(&a.edge.drain_actions()).remove(0);
    receive(&mut b, &msg);
    // Both instances see bob's token and refuse it.
    assert_eq!(
        decision(&request_sync(&mut a, 1, 0, 1, &bob), 1),
        Err(Reason::Revoked)
    );
    assert_eq!(
        decision(&request_sync(&mut b, 1, 0, 1, &bob), 1),
        Err(Reason::Revoked)
    );
    // A day later the token is still valid (2 days left).
    a.advance(86_400_000);
    b.advance(86_400_000);
    assert_eq!(
        decision(&request_sync(&mut a, 2, 0, 1, &bob), 2),
        Err(Reason::Revoked),
        "the origin still refuses"
    );
    assert_eq!(
        decision(&request_sync(&mut b, 2, 0, 1, &bob), 2),
        Err(Reason::Revoked),
        "the receiver forwards the revoked subject's token ({msg})"
    );
}

/// The origin had seen a long-lived token of the subject, the receiver had not: the receiver
/// kept the revocation only `revocation.default_ttl` (24 h) and forwarded the token on day 2
/// while the origin, which knew the token lives 20 days, still refused it. The published
/// `keep_until` carries how long the origin keeps it.
#[test]
fn receiver_keeps_a_revocation_as_long_as_its_origin() {
    let mut a = Harness::new(shared_config());
    let mut b = Harness::new(shared_config());
    let alice = two_truths()[0].clone(); // 20 days
    assert_eq!(decision(&request_sync(&mut a, 1, 0, 0, &alice), 1), Ok(()));
    let msg = publishes(&a.revoke_local(Selector::Sub("alice".into()))).remove(0);
    let published = Revocation::from_json(msg.as_bytes()).unwrap();
    assert_eq!(published.until, None, "{msg}");
    assert!(published.keep_until >= Some(alice.exp_s), "{msg}");
    receive(&mut b, &msg);
    a.advance(2 * 86_400_000);
    b.advance(2 * 86_400_000);
    for (h, who) in [(&mut a, "origin"), (&mut b, "receiver")] {
        assert_eq!(
            decision(&request_sync(h, 2, 0, 0, &alice), 2),
            Err(Reason::Revoked),
            "{who} ({msg})"
        );
    }
}

/// The origin published a revocation of alice before it had seen her 20-day token, then saw it:
/// it keeps the revocation until that token expires and says so again (`keep_until`, with the
/// original `since`). The receiver, which never saw the token, then refuses it on day 2; and a
/// token alice got after the revocation stays valid there, although the second message arrived
/// later than that token was issued.
#[test]
fn a_revocation_kept_longer_later_is_published_again() {
    let mut a = Harness::new(shared_config());
    let mut b = Harness::new(shared_config());
    let old = two_truths()[0].clone(); // 20 days, issued before the revocation
    let first = publishes(&a.revoke_local(Selector::Sub("alice".into()))).remove(0);
    receive(&mut b, &first);
    for h in [&mut a, &mut b] {
        h.advance(30_000);
    }
    let mut new = old.clone();
    new.iat_s = (a.now / 1000) - 5; // alice signed in again after the revocation
    let acts = request_sync(&mut a, 1, 0, 0, &old);
    assert_eq!(decision(&acts, 1), Err(Reason::Revoked));
    let again = publishes(&acts);
    assert_eq!(again.len(), 1, "{acts:?}");
    let r = Revocation::from_json(again[0].as_bytes()).unwrap();
    assert_eq!((r.until, r.since), (None, Some(T0 / 1000)), "{}", again[0]);
    assert!(r.keep_until >= Some(old.exp_s), "{}", again[0]);
    receive(&mut b, &again[0]);
    assert_eq!(decision(&request_sync(&mut b, 2, 0, 5, &new), 2), Ok(()));
    for h in [&mut a, &mut b] {
        h.advance(2 * 86_400_000);
    }
    for (h, who) in [(&mut a, "origin"), (&mut b, "receiver")] {
        assert_eq!(
            decision(&request_sync(h, 3, 0, 0, &old), 3),
            Err(Reason::Revoked),
            "{who}"
        );
    }
}
