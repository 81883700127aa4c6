//! Property tests for the modes `model.rs` does not cover: RFC 9701 signed answers with JWKS
//! rotation and forged/stale answers, split-token mode against a random shared store, two
//! instances sharing revocations through `SharedPublish`, and DPoP-bound tokens. Each run is
//! checked against a small reference model of what may be forwarded, and every bounded
//! structure is checked after every step.
mod support;

use std::collections::{HashMap, HashSet};

use phantom_edge_core::{
    Action, AuditKind, LookupResult, Origin, Reason, Revocation, Selector, Stats,
};
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

fn decided_ids(acts: &[Action]) -> Vec<u64> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Forward(f) => Some(f.request_id),
            Action::Reject(r) => Some(r.request_id),
            _ => None,
        })
        .collect()
}

fn timed_out(acts: &[Action]) -> Vec<u64> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Audit(e) if e.kind == AuditKind::TicketTimedOut => e.ticket,
            _ => None,
        })
        .collect()
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
    ]
}

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
    revoked: HashSet<usize>,
    alice_revoked: bool,
    requests: HashMap<u64, (usize, usize)>,
    decided: HashMap<u64, u32>,
    open: Vec<(u64, usize)>,
    /// Latest time any cache entry for the token may live to.
    cache_bound: HashMap<usize, u64>,
}

impl Model9701 {
    fn check(&mut self, acts: &[Action], now: u64, jwks_out: &mut bool) {
        for a in acts {
            match a {
                Action::Forward(f) => {
                    *self.decided.entry(f.request_id).or_default() += 1;
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
                Action::Introspect(i) => {
                    let t = (0..4)
                        .find(|x| i.body.starts_with(&format!("token=tok-{x}&")))
                        .expect("introspection of a known token");
                    assert!(
                        !self.open.iter().any(|(_, x)| *x == t),
                        "two introspections in flight for {t}"
                    );
                    self.open.push((i.ticket, t));
                }
                Action::FetchJwks(_) => *jwks_out = true,
                _ => {}
            }
        }
        let to = timed_out(acts);
        self.open.retain(|(t, _)| !to.contains(t));
    }
}

fn run_9701(ops: Vec<Op9701>) {
    let mut cfg = base_config("rfc9701");
    cfg["cache"]["max_entries"] = json!(2);
    cfg["cache"]["max_pending"] = json!(3);
    cfg["authorization_server"]["jwks_min_refresh"] = json!("5s");
    let mut h = Harness::new(cfg);
    let keys = genuine_keys();
    let forger_es = Signer::es256(CLIENT_DPOP_ES256, None);
    let mut published: &[usize] = &[0, 2];
    // The harness answered the first fetch with as-ed + as-es.
    let mut jwks_out = false;
    let mut m = Model9701 {
        truth: truths_9701(),
        revoked: HashSet::new(),
        alice_revoked: false,
        requests: HashMap::new(),
        decided: HashMap::new(),
        open: Vec::new(),
        cache_bound: HashMap::new(),
    };
    let mut next_id = 0u64;
    for op in ops {
        let acts = match op {
            Op9701::Request { token, route } => {
                next_id += 1;
                m.requests.insert(next_id, (token, route));
                let acts = h.request(next_id, ROUTES[route].0, &format!("tok-{token}"));
                // Decided at once with a Forward: a cache hit, which must be within the bound.
                if acts
                    .iter()
                    .any(|a| matches!(a, Action::Forward(f) if f.request_id == next_id))
                {
                    let bound = m.cache_bound.get(&token).copied().unwrap_or(0);
                    assert!(
                        h.now < bound,
                        "cache hit for token {token} at {} past every possible entry end {bound} (max-age / max_ttl / exp)",
                        h.now
                    );
                }
                acts
            }
            Op9701::Answer { pick, how, cc } => {
                if m.open.is_empty() {
                    continue;
                }
                let (ticket, t) = m.open.remove(pick % m.open.len());
                let now_s = h.now / 1000;
                let truth = m.truth[t].ti();
                let envelope = |ti: &Value, iat: u64| json!({"iss": ISSUER, "aud": "gateway", "iat": iat, "token_introspection": ti});
                let good = &keys[published[0]];
                let body = match how {
                    Answer9701::Genuine { key } => {
                        let k = &keys[published[key % published.len()]];
                        sign_9701(
                            k,
                            "token-introspection+jwt",
                            &envelope(&truth, now_s),
                            k.kid.as_deref(),
                        )
                    }
                    Answer9701::AnyGenuine { key } => {
                        let k = &keys[key];
                        sign_9701(
                            k,
                            "token-introspection+jwt",
                            &envelope(&truth, now_s),
                            k.kid.as_deref(),
                        )
                    }
                    Answer9701::ForgedSameKid => sign_9701(
                        &forger_es,
                        "token-introspection+jwt",
                        &envelope(&lie(), now_s),
                        Some("as-es"),
                    ),
                    Answer9701::ForgedUnknownKid => sign_9701(
                        &forger_es,
                        "token-introspection+jwt",
                        &envelope(&lie(), now_s),
                        Some("evil"),
                    ),
                    Answer9701::ForgedNoKid => sign_9701(
                        &forger_es,
                        "token-introspection+jwt",
                        &envelope(&lie(), now_s),
                        None,
                    ),
                    Answer9701::StaleIat { age } => sign_9701(
                        good,
                        "token-introspection+jwt",
                        &envelope(&lie(), now_s.saturating_sub(age + 31)),
                        good.kid.as_deref(),
                    ),
                    Answer9701::FutureIat { ahead } => sign_9701(
                        good,
                        "token-introspection+jwt",
                        &envelope(&lie(), now_s + ahead + 31),
                        good.kid.as_deref(),
                    ),
                    Answer9701::WrongAud => {
                        let mut e = envelope(&lie(), now_s);
                        e["aud"] = json!("someone-else");
                        sign_9701(good, "token-introspection+jwt", &e, good.kid.as_deref())
                    }
                    Answer9701::WrongIss => {
                        let mut e = envelope(&lie(), now_s);
                        e["iss"] = json!("https://evil.example");
                        sign_9701(good, "token-introspection+jwt", &e, good.kid.as_deref())
                    }
                    Answer9701::WrongTyp => sign_9701(
                        good,
                        "at+jwt",
                        &envelope(&lie(), now_s),
                        good.kid.as_deref(),
                    ),
                    Answer9701::ExpiredResponse => {
                        let mut e = envelope(&lie(), now_s);
                        e["exp"] = json!(now_s - 31);
                        sign_9701(good, "token-introspection+jwt", &e, good.kid.as_deref())
                    }
                    Answer9701::WrongContentType => {
                        let b = sign_9701(
                            good,
                            "token-introspection+jwt",
                            &envelope(&lie(), now_s),
                            good.kid.as_deref(),
                        );
                        let acts = h.respond(ticket, 200, "application/json", &b);
                        m.check(&acts, h.now, &mut jwks_out);
                        continue;
                    }
                    Answer9701::ServerError => {
                        let acts = h.respond(ticket, 500, "text/plain", "oops");
                        m.check(&acts, h.now, &mut jwks_out);
                        continue;
                    }
                    Answer9701::Garbage => "not.a.jwt".to_string(),
                    Answer9701::Transport => {
                        h.edge
                            .handle_introspection_failure(h.now, ticket, "refused")
                            .unwrap();
                        let acts = h.edge.drain_actions();
                        m.check(&acts, h.now, &mut jwks_out);
                        continue;
                    }
                };
                let cc_value = match cc {
                    None => None,
                    Some(None) => Some("no-store".to_string()),
                    Some(Some(a)) => Some(format!("max-age={a}")),
                };
                if matches!(
                    how,
                    Answer9701::Genuine { .. } | Answer9701::AnyGenuine { .. }
                ) && m.truth[t].active
                {
                    // Invariant 3: the entry this answer may create ends by max-age, max_ttl and
                    // exp - skew. It may complete up to the ticket's timeout later (parked for a
                    // JWKS fetch).
                    let ttl = match cc {
                        None => 300_000,
                        Some(None) => 1,
                        Some(Some(a)) => (a * 1000).min(300_000),
                    };
                    let end = (h.now + 2_000 + ttl).min(m.truth[t].exp_s * 1000 - 5_000);
                    let b = m.cache_bound.entry(t).or_default();
                    *b = (*b).max(end);
                }
                let mut hs = vec![("content-type", RFC9701_CT)];
                if let Some(v) = &cc_value {
                    hs.push(("cache-control", v.as_str()));
                }
                h.respond_headers(ticket, 200, &hs, &body)
            }
            Op9701::Jwks { how } => {
                if !jwks_out {
                    continue;
                }
                jwks_out = false;
                let doc = jwks_of(&keys, published);
                match how {
                    0 => h.edge.handle_jwks(h.now, Ok(doc.as_bytes())),
                    1 => h.edge.handle_jwks(h.now, Err("status 500")),
                    2 => h.edge.handle_jwks(h.now, Ok(b"{\"keys\": 7")),
                    _ => h.edge.handle_jwks(h.now, Ok(b"{\"keys\": []}")),
                }
                h.edge.drain_actions()
            }
            Op9701::Rotate { set } => {
                published = PUBLISHED[set];
                continue;
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
                h.edge.drain_actions()
            }
        };
        m.check(&acts, h.now, &mut jwks_out);
        stats_bounded(&h.edge.stats(), 2, 3, 100_000, 100_000);
        let undecided = m
            .requests
            .keys()
            .filter(|id| !m.decided.contains_key(id))
            .count();
        assert_eq!(h.edge.stats().waiters, undecided, "waiters count drifted");
    }
    // Liveness: a JWKS fetch still out fails, every ticket times out; each request decided once.
    if jwks_out {
        h.edge.handle_jwks(h.now, Err("gone"));
        let acts = h.edge.drain_actions();
        m.check(&acts, h.now, &mut jwks_out);
    }
    h.advance(10_000);
    let acts = h.edge.drain_actions();
    m.check(&acts, h.now, &mut jwks_out);
    assert_each_decided_once(m.requests.keys(), &m.decided);
    let s = h.edge.stats();
    assert_eq!((s.pending, s.waiters), (0, 0), "{s:?}");
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
        acts.iter().any(|a| matches!(a, Action::FetchJwks(_))),
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
    Request { token: usize, route: usize },
    Answer { pick: usize, how: StoreAnswer },
    Revoke { token: usize },
    RevokeSub,
    Advance { ms: u64 },
}

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

fn run_split(ops: Vec<OpSplit>) {
    let mut cfg = split_config();
    cfg["cache"]["max_entries"] = json!(2);
    cfg["cache"]["max_pending"] = json!(3);
    let mut h = Harness::new(cfg);
    let toks = split_tokens(&h.fake);
    let n = toks.len();
    let mut revoked: HashSet<usize> = HashSet::new();
    let mut alice_revoked = false;
    let mut requests: HashMap<u64, (usize, usize)> = HashMap::new();
    let mut decided: HashMap<u64, u32> = HashMap::new();
    let mut open: Vec<(u64, usize)> = Vec::new();
    let mut next_id = 0u64;

    let check = |acts: &[Action],
                 now: u64,
                 revoked: &HashSet<usize>,
                 alice_revoked: bool,
                 requests: &HashMap<u64, (usize, usize)>,
                 decided: &mut HashMap<u64, u32>,
                 open: &mut Vec<(u64, usize)>| {
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
            for t in &toks {
                assert!(!text.contains(&t.sig), "signature leaked in {text}");
            }
            match a {
                Action::Forward(f) => {
                    *decided.entry(f.request_id).or_default() += 1;
                    let (t, r) = requests[&f.request_id];
                    let tk = &toks[t];
                    assert!(tk.genuine, "forged split token {t} forwarded");
                    assert_eq!(
                        &*f.header_value,
                        format!("Bearer {}", tk.jwt),
                        "forwarded JWT is not the one presented"
                    );
                    assert_eq!(f.token.sub.as_deref(), Some(tk.truth.sub));
                    assert!(!revoked.contains(&t), "revoked split token {t} forwarded");
                    assert!(
                        !(alice_revoked && tk.truth.sub == "alice"),
                        "token of revoked subject forwarded"
                    );
                    assert!(
                        now < tk.truth.exp_s * 1000,
                        "expired split token {t} forwarded"
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
                    *decided.entry(rj.request_id).or_default() += 1;
                }
                Action::SharedLookup(l) => {
                    let t = (0..toks.len())
                        .find(|i| split_key(&toks[*i].sig) == l.key)
                        .expect("lookup key of a presented signature");
                    assert!(
                        !open.iter().any(|(_, x)| *x == t),
                        "two lookups in flight for {t}"
                    );
                    open.push((l.ticket, t));
                }
                Action::Introspect(_) => panic!("split mode introspected"),
                _ => {}
            }
        }
        let to = timed_out(acts);
        open.retain(|(t, _)| !to.contains(t));
    };

    for op in ops {
        let acts = match op {
            OpSplit::Request { token, route } => {
                next_id += 1;
                requests.insert(next_id, (token, route));
                h.request(next_id, ROUTES[route].0, &toks[token].sig)
            }
            OpSplit::Answer { pick, how } => {
                if open.is_empty() {
                    continue;
                }
                let (ticket, t) = open.remove(pick % open.len());
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
                h.edge.handle_shared_lookup(h.now, ticket, res).unwrap();
                h.edge.drain_actions()
            }
            OpSplit::Revoke { token } => {
                revoked.insert(token);
                h.revoke_local(Selector::Token(toks[token].sig.clone()))
            }
            OpSplit::RevokeSub => {
                alice_revoked = true;
                h.revoke_local(Selector::Sub("alice".into()))
            }
            OpSplit::Advance { ms } => {
                h.advance(ms);
                h.edge.drain_actions()
            }
        };
        check(
            &acts,
            h.now,
            &revoked,
            alice_revoked,
            &requests,
            &mut decided,
            &mut open,
        );
        stats_bounded(&h.edge.stats(), 2, 3, 100_000, 100_000);
        let undecided = requests
            .keys()
            .filter(|id| !decided.contains_key(id))
            .count();
        assert_eq!(h.edge.stats().waiters, undecided, "waiters count drifted");
    }
    h.advance(10_000);
    let acts = h.edge.drain_actions();
    check(
        &acts,
        h.now,
        &revoked,
        alice_revoked,
        &requests,
        &mut decided,
        &mut open,
    );
    assert_each_decided_once(requests.keys(), &decided);
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
        // covered only as long as this edge sees it: README, revocation.default_ttl).
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
    let mut id = 0u64;
    for op in ops {
        match &op {
            OpTwo::Request { token, route } => {
                id += 1;
                let acts = request_sync(&mut a, id, *route, *token, &truth[*token]);
                // A revocation A keeps longer on seeing this token is published again.
                queue.extend(publishes(&acts));
                let da = decision(&acts, id);
                let db = decision(
                    &request_sync(&mut b, id, *route, *token, &truth[*token]),
                    id,
                );
                // Also past revocation.default_ttl: the receiver keeps what the origin keeps
                // (`published_default_until_is_not_fixed_on_the_receiver`).
                if queue.is_empty() && db.is_ok() {
                    assert!(
                        da != Err(Reason::Revoked),
                        "after delivery, B forwards token {token} that A (the revocation's origin) refuses as revoked at +{} s; delivered: {delivered:?}",
                        (b.now - T0) / 1000
                    );
                }
                check_b(&delivered, &truth, *token, db, b.now);
            }
            OpTwo::RequestB { token } => {
                id += 1;
                let db = decision(&request_sync(&mut b, id, 0, *token, &truth[*token]), id);
                check_b(&delivered, &truth, *token, db, b.now);
            }
            OpTwo::RequestA { token } => {
                id += 1;
                let acts = request_sync(&mut a, id, 0, *token, &truth[*token]);
                queue.extend(publishes(&acts));
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
                pending_rev.push((op.clone(), a.now));
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
                pending_rev.push((op.clone(), a.now));
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
                pending_rev.push((op.clone(), a.now));
            }
            OpTwo::Deliver => {
                deliver(&mut b, &mut queue);
                delivered.extend(pending_rev.drain(..).map(|(o, _)| (o, b.now)));
            }
            OpTwo::Advance { ms } => {
                // Pub/sub delivers within seconds: what was published is delivered before a
                // long pause.
                if *ms > 60_000 {
                    deliver(&mut b, &mut queue);
                    delivered.extend(pending_rev.drain(..).map(|(o, _)| (o, b.now)));
                }
                a.advance(*ms);
                b.advance(*ms);
                let _ = a.edge.drain_actions();
                let _ = b.edge.drain_actions();
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
        let hit = match op {
            OpTwo::RevokeToken { token: t } => *t == token,
            OpTwo::RevokeSub { who } => truth[token].sub == ["alice", "bob"][*who],
            OpTwo::RevokeJti { token: t } => truth[*t].sub == truth[token].sub,
            _ => false,
        };
        assert!(
            !hit,
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
    ]
}

fn run_dpop(ops: Vec<OpDpop>) {
    let mut cfg = base_config("rfc9701");
    cfg["cache"]["max_entries"] = json!(2);
    cfg["cache"]["max_pending"] = json!(3);
    cfg["dpop"] = json!({"max_replay_entries": 4});
    let mut h = Harness::new(cfg);
    let signers = [
        Signer::es256(CLIENT_DPOP_ES256, None),
        Signer::es256(EDGE_ES256, None),
    ];
    let jkts = [jkt(&signers[0]), jkt(&signers[1])];
    // Token 0 bound to the client's key, 1 unbound, 2 bound to the other key.
    let binding: [Option<usize>; 3] = [Some(0), None, Some(1)];
    let truth_of = |t: usize| -> Value {
        let mut c = json!({"active": true, "scope": "orders:read orders:admin", "sub": format!("u{t}"),
                           "aud": "orders-api", "exp": t0s() + 3600, "iat": t0s() - 10, "iss": ISSUER});
        if let Some(k) = binding[t] {
            c["cnf"] = json!({"jkt": jkts[k]});
        }
        c
    };
    // request id -> (token, proof ok at request time?, proof key, jti key, proof text)
    struct Sent {
        token: usize,
        scheme_dpop: bool,
        proof_valid: bool,
        key: Option<usize>,
        jti: Option<(usize, u8)>,
        iat_ms: u64,
    }
    let mut sent: HashMap<u64, Sent> = HashMap::new();
    // token -> (DPoP scheme, proof, key, jti, iat ms, proof well-formed) of the last request.
    type Last = (bool, Option<String>, Option<usize>, Option<u8>, u64, bool);
    let mut last: HashMap<usize, Last> = HashMap::new();
    // (jkt index, jti) -> replay-set expiry of the proof let through.
    let mut forwarded_jti: HashMap<(usize, u8), u64> = HashMap::new();
    let mut decided: HashMap<u64, u32> = HashMap::new();
    let mut open: Vec<(u64, usize)> = Vec::new();
    let mut id = 0u64;
    let htu = "https://api.example/orders";

    let handle = |acts: Vec<Action>,
                  now: u64,
                  sent: &HashMap<u64, Sent>,
                  open: &mut Vec<(u64, usize)>,
                  decided: &mut HashMap<u64, u32>,
                  forwarded_jti: &mut HashMap<(usize, u8), u64>| {
        for a in &acts {
            match a {
                Action::Forward(f) => {
                    *decided.entry(f.request_id).or_default() += 1;
                    let s = &sent[&f.request_id];
                    match binding[s.token] {
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
                            if let Some(until) = forwarded_jti.get(&j) {
                                assert!(
                                    now >= *until,
                                    "proof jti {j:?} replayed and forwarded at {now} (remembered until {until})"
                                );
                            }
                            forwarded_jti.insert(j, (s.iat_ms + 60_000 + 60_000).max(now + 1));
                        }
                        None => assert!(
                            !s.scheme_dpop,
                            "unbound token forwarded under the DPoP scheme"
                        ),
                    }
                }
                Action::Reject(r) => *decided.entry(r.request_id).or_default() += 1,
                Action::Introspect(i) => {
                    let t = (0..3)
                        .find(|x| i.body.starts_with(&format!("token=tok-{x}&")))
                        .unwrap();
                    open.push((i.ticket, t));
                }
                _ => {}
            }
        }
        let to = timed_out(&acts);
        open.retain(|(t, _)| !to.contains(t));
    };

    for op in ops {
        let acts = match op {
            OpDpop::Request { token, route, p } => {
                id += 1;
                let tok = format!("tok-{token}");
                let now_s = (h.now / 1000) as i64;
                let iat = (now_s + p.iat_off).max(0) as u64;
                let (htm, u, ath_tok) = match p.defect {
                    1 => ("POST", htu, tok.as_str()),
                    2 => ("GET", "https://api.example/admin", tok.as_str()),
                    3 => ("GET", htu, "tok-other"),
                    _ => ("GET", htu, tok.as_str()),
                };
                let proof = p.with_proof.then(|| {
                    dpop_proof(
                        &signers[p.signer],
                        htm,
                        u,
                        ath_tok,
                        iat,
                        &format!("j{}", p.jti),
                    )
                });
                let iat_ms = iat * 1000;
                let in_window = iat_ms <= h.now + 30_000 && iat_ms + 60_000 + 30_000 >= h.now;
                let valid = p.with_proof && p.defect == 0 && in_window;
                let _ = route;
                last.insert(
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
                sent.insert(
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
                h.request_with(id, "GET", "/orders", &hs, None)
            }
            OpDpop::Replay { token } => {
                let Some((scheme, proof, key, jti, iat_ms, ok)) = last.get(&token).cloned() else {
                    continue;
                };
                id += 1;
                let tok = format!("tok-{token}");
                let in_window = iat_ms <= h.now + 30_000 && iat_ms + 60_000 + 30_000 >= h.now;
                sent.insert(
                    id,
                    Sent {
                        token,
                        scheme_dpop: scheme,
                        proof_valid: ok && in_window,
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
                h.request_with(id, "GET", "/orders", &hs, None)
            }
            OpDpop::Answer { pick } => {
                if open.is_empty() {
                    continue;
                }
                let (ticket, t) = open.remove(pick % open.len());
                h.respond_9701(ticket, truth_of(t))
            }
            OpDpop::Advance { ms } => {
                h.advance(ms);
                h.edge.drain_actions()
            }
        };
        handle(
            acts,
            h.now,
            &sent,
            &mut open,
            &mut decided,
            &mut forwarded_jti,
        );
        stats_bounded(&h.edge.stats(), 2, 3, 100_000, 4);
    }
    h.advance(10_000);
    let acts = h.edge.drain_actions();
    handle(
        acts,
        h.now,
        &sent,
        &mut open,
        &mut decided,
        &mut forwarded_jti,
    );
    assert_each_decided_once(sent.keys(), &decided);
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
