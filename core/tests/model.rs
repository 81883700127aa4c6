//! Property test: random interleavings of requests, answers, revocations and time (forwards, and
//! backwards as an NTP step or a VM migration moves the host's clock), checked against a simple
//! reference model of what may be forwarded (safety) and of what must be (liveness).
//!
//! The model judges expiry and revocation at the edge's effective time: the largest `now` it was
//! ever given (the core never moves time backwards).
mod support;

use std::collections::{HashMap, HashSet};

use phantom_edge_core::{Action, Origin, Revocation, Selector};
use proptest::prelude::*;
use serde_json::json;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Request {
        token: usize,
        route: usize,
    },
    Answer {
        pick: usize,
    },
    Fail {
        pick: usize,
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

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..3usize).prop_map(|(token, route)| Op::Request { token, route }),
        3 => (0..8usize).prop_map(|pick| Op::Answer { pick }),
        1 => (0..8usize).prop_map(|pick| Op::Fail { pick }),
        1 => (0..4usize).prop_map(|token| Op::Revoke { token }),
        1 => Just(Op::RevokeSub),
        2 => (0..40_000u64).prop_map(|ms| Op::Advance { ms }),
        1 => (0..120_000u64).prop_map(|ms| Op::Back { ms }),
    ]
}

/// What the authorization server believes of each token, fixed for a run.
struct Truth {
    active: bool,
    scope: &'static str,
    exp_s: u64,
    sub: &'static str,
}

/// The token of the epilogue: never picked by the ops, never revoked.
const EPILOGUE: usize = 4;

fn truths() -> Vec<Truth> {
    vec![
        Truth {
            active: true,
            scope: "orders:read",
            exp_s: T0 / 1000 + 3600,
            sub: "alice",
        },
        Truth {
            active: true,
            scope: "orders:read orders:admin",
            exp_s: T0 / 1000 + 45,
            sub: "bob",
        },
        Truth {
            active: false,
            scope: "",
            exp_s: 0,
            sub: "",
        },
        Truth {
            active: true,
            scope: "profile",
            exp_s: T0 / 1000 + 600,
            sub: "alice",
        },
        Truth {
            active: true,
            scope: "orders:read",
            exp_s: T0 / 1000 + 10 * 86_400,
            sub: "erin",
        },
    ]
}

const ROUTES: [(&str, &[&str]); 3] = [
    ("/orders", &["orders:read"]),
    ("/admin", &["orders:admin"]),
    ("/public", &[]),
];

/// An RFC 9701 answer is refused once older than `authorization_server.response_max_age` (60 s)
/// plus `leeway` (30 s) by the edge's clock.
const ANSWER_USABLE_MS: u64 = 60_000 + 30_000;
/// `cache.max_ttl` (300 s).
const MAX_TTL_MS: u64 = 300_000;
/// `cache.skew` (5 s).
const SKEW_MS: u64 = 5_000;

struct Model {
    h: Harness,
    truth: Vec<Truth>,
    tokens: Vec<String>,
    /// The edge's effective time: the largest `now` it was ever given.
    eff: u64,
    revoked: HashSet<usize>,
    alice_revoked_at: Option<u64>,
    issued_at: HashMap<usize, u64>,
    /// (ticket, token) in flight, not answered yet.
    open: Vec<(u64, usize)>,
    requests: HashMap<u64, (usize, usize)>,
    decided: HashMap<u64, u32>,
    forwarded: HashSet<u64>,
    /// Latest time any cache entry for the token may live to (max_ttl, exp − skew).
    cache_bound: HashMap<usize, u64>,
    waits: Waits,
    next_id: u64,
}

impl Model {
    fn new() -> Self {
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["max_entries"] = json!(2);
        cfg["cache"]["max_pending"] = json!(3);
        let truth = truths();
        let tokens = (0..truth.len()).map(|i| format!("token-{i}")).collect();
        Self {
            h: Harness::new(cfg),
            truth,
            tokens,
            eff: T0,
            revoked: HashSet::new(),
            alice_revoked_at: None,
            issued_at: HashMap::new(),
            open: Vec::new(),
            requests: HashMap::new(),
            decided: HashMap::new(),
            forwarded: HashSet::new(),
            cache_bound: HashMap::new(),
            waits: Waits::default(),
            next_id: 0,
        }
    }

    /// Safety of everything in `acts`, judged at the edge's effective time.
    fn check(&mut self, acts: &[Action]) {
        let now = self.eff;
        for a in acts {
            match a {
                Action::Forward(f) => {
                    *self.decided.entry(f.request_id).or_default() += 1;
                    self.forwarded.insert(f.request_id);
                    let (t, r) = self.requests[&f.request_id];
                    let tr = &self.truth[t];
                    assert!(tr.active, "inactive token {t} forwarded");
                    assert!(!self.revoked.contains(&t), "revoked token {t} forwarded");
                    if tr.sub == "alice"
                        && let Some(at) = self.alice_revoked_at
                    {
                        assert!(
                            self.issued_at[&t] * 1000 > at,
                            "token {t} of a revoked subject forwarded"
                        );
                    }
                    assert!(
                        now < tr.exp_s * 1000,
                        "expired token {t} forwarded at {now}"
                    );
                    for s in ROUTES[r].1 {
                        assert!(
                            tr.scope.split(' ').any(|x| x == *s),
                            "scope {s} missing for token {t}"
                        );
                    }
                    assert!(!f.header_value.contains("token-"), "opaque token forwarded");
                }
                Action::Reject(rj) => {
                    *self.decided.entry(rj.request_id).or_default() += 1;
                }
                Action::Fetch(i) if i.kind == FetchKind::Introspection => {
                    let t = (0..self.tokens.len())
                        .find(|x| i.body.starts_with(&format!("token=token-{x}&")))
                        .expect("introspection of a known token");
                    assert!(
                        !self.open.iter().any(|(_, x)| *x == t),
                        "two introspections in flight for token {t}"
                    );
                    self.open.push((i.ticket, t));
                }
                _ => {}
            }
        }
        // Timed-out tickets leave the model's open set.
        let to = timed_out(acts);
        self.open.retain(|(t, _)| !to.contains(t));
        self.waits.settle(acts);
    }

    /// Whether the edge must accept a genuine answer for token `t` now (its routes aside): active,
    /// not revoked by any selector that covers it (its own token; `sub` when its `iat` is at or
    /// before the revocation), not expired at the effective time.
    ///
    /// Liveness: the answer (fresh by the edge's clock) then forwards every request waiting on
    /// its ticket whose route the token authorizes, in the same step. The other refusals are
    /// made when a request arrives, so such a request never waits on a ticket: a negative-cache
    /// hit, `overloaded` at `max_pending` / `max_waiters` / `max_waiting`. Not refusals: a token
    /// within `cache.skew` of its exp is not cached, but its waiters are still decided (and
    /// forwarded); and an entry evicted as soon as it is cached (`overloaded`) cannot happen here
    /// (the new entry is the most recently used of at most 2, `max_bytes` is the default).
    fn must_accept(&self, t: usize) -> bool {
        let tr = &self.truth[t];
        let by_sub = tr.sub == "alice"
            && self
                .alice_revoked_at
                .is_some_and(|at| self.issued_at[&t] * 1000 <= at);
        tr.active && !self.revoked.contains(&t) && !by_sub && self.eff < tr.exp_s * 1000
    }

    fn request(&mut self, token: usize, route: usize) -> u64 {
        self.next_id += 1;
        let id = self.next_id;
        self.requests.insert(id, (token, route));
        let acts = self.h.request(id, ROUTES[route].0, &self.tokens[token]);
        self.check(&acts);
        self.waits.request(id, token, &acts);
        // Decided at once with a Forward: a cache hit, which must be within the entry's bound.
        if acts
            .iter()
            .any(|a| matches!(a, Action::Forward(f) if f.request_id == id))
        {
            let bound = self.cache_bound.get(&token).copied().unwrap_or(0);
            assert!(
                self.eff < bound,
                "cache hit for token {token} at {} past every possible entry end {bound}",
                self.eff
            );
        }
        id
    }

    fn step(&mut self, op: Op) {
        let acts = match op {
            Op::Request { token, route } => {
                self.request(token, route);
                return;
            }
            Op::Answer { pick } | Op::Fail { pick } if !self.open.is_empty() => {
                let (ticket, t) = self.open.remove(pick % self.open.len());
                if matches!(op, Op::Fail { .. }) {
                    self.h.respond(ticket, 500, "text/plain", "oops")
                } else {
                    let now = self.h.now;
                    let tr = &self.truth[t];
                    let ti = if tr.active {
                        let iat = *self.issued_at.entry(t).or_insert(now / 1000 - 1);
                        json!({"active": true, "scope": tr.scope, "sub": tr.sub, "exp": tr.exp_s,
                               "iat": iat, "iss": ISSUER, "aud": "orders-api"})
                    } else {
                        json!({"active": false})
                    };
                    if tr.active {
                        let end = (self.eff + MAX_TTL_MS).min(tr.exp_s * 1000 - SKEW_MS);
                        let b = self.cache_bound.entry(t).or_default();
                        *b = (*b).max(end);
                    }
                    // Liveness: a genuine answer, signed now by the host's clock, for a token the
                    // edge must accept, forwards at once every waiter whose route it authorizes.
                    // (After the clock stepped back more than the answer's usable age, the edge
                    // refuses it as stale: nothing is due then.)
                    let fresh = self.eff <= (now / 1000) * 1000 + ANSWER_USABLE_MS;
                    let due: Vec<u64> = if fresh && self.must_accept(t) {
                        let scopes = tr.scope;
                        self.waits
                            .waiting(ticket)
                            .into_iter()
                            .filter(|id| {
                                let r = self.requests[id].1;
                                ROUTES[r]
                                    .1
                                    .iter()
                                    .all(|s| scopes.split(' ').any(|x| x == *s))
                            })
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let body = self.h.fake.rfc9701(&self.h.fake.ed, ti, now);
                    let acts =
                        self.h
                            .respond(ticket, 200, "application/token-introspection+jwt", &body);
                    self.check(&acts);
                    for id in due {
                        assert!(
                            self.forwarded.contains(&id),
                            "request {id} for token {t} not forwarded on a genuine answer at {}: {acts:?}",
                            self.eff
                        );
                    }
                    return;
                }
            }
            Op::Answer { .. } | Op::Fail { .. } => vec![],
            Op::Revoke { token } => {
                self.revoked.insert(token);
                let r = Revocation {
                    selector: Selector::Token(self.tokens[token].clone()),
                    until: None,
                    keep_until: None,
                    since: None,
                };
                self.h
                    .edge
                    .handle_revocation(self.h.now, r, Origin::Local)
                    .unwrap();
                self.h.edge.drain_actions()
            }
            Op::RevokeSub => {
                // Covers the tokens issued up to when the edge handled it: its effective time.
                self.alice_revoked_at = Some(self.eff);
                let r = Revocation {
                    selector: Selector::Sub("alice".into()),
                    until: None,
                    keep_until: None,
                    since: None,
                };
                self.h
                    .edge
                    .handle_revocation(self.h.now, r, Origin::Local)
                    .unwrap();
                self.h.edge.drain_actions()
            }
            Op::Advance { ms } => {
                self.h.advance(ms);
                self.eff = self.eff.max(self.h.now);
                self.h.edge.drain_actions()
            }
            Op::Back { ms } => {
                self.h.now = self.h.now.saturating_sub(ms);
                self.h.edge.handle_timeout(self.h.now);
                self.h.edge.drain_actions()
            }
        };
        self.check(&acts);
    }

    /// The host's clock catches up with the edge's and passes every timeout.
    fn settle(&mut self) {
        self.step(Op::Advance {
            ms: self.eff.saturating_sub(self.h.now) + 10_000,
        });
    }
}

/// Cases: `MODEL_CASES` overrides the default 256 (for longer local runs).
fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn nothing_revoked_expired_inactive_or_unauthorized_is_forwarded(ops in proptest::collection::vec(op(), 1..80)) {
        let mut m = Model::new();
        for op in ops {
            m.step(op);
            let s = m.h.edge.stats();
            prop_assert!(s.cache_entries <= 2 && s.pending <= 3, "bounds exceeded: {s:?}");
        }
        // Liveness: once time passes every timeout, every request was decided exactly once.
        m.settle();
        for id in m.requests.keys() {
            prop_assert_eq!(m.decided.get(id).copied().unwrap_or(0), 1, "request {} decided {:?} times", id, m.decided.get(id));
        }
        // Liveness: every run forwards. A fresh token, never revoked, on two routes it satisfies
        // (the second request coalesced), answered genuinely: both forwarded.
        let a = m.request(EPILOGUE, 0);
        let b = m.request(EPILOGUE, 2);
        let pick = m.open.iter().position(|(_, t)| *t == EPILOGUE).expect("the epilogue introspects");
        m.step(Op::Answer { pick });
        prop_assert!(m.forwarded.contains(&a) && m.forwarded.contains(&b), "the epilogue was not forwarded");
        prop_assert_eq!(m.decided.get(&a).copied(), Some(1));
        prop_assert_eq!(m.decided.get(&b).copied(), Some(1));
    }
}
