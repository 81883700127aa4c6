//! Property test: random interleavings of requests, answers, revocations and time, checked
//! against a simple reference model of what may be forwarded.
mod support;

use std::collections::{HashMap, HashSet};

use phantom_edge_core::{Action, Origin, Revocation, Selector};
use proptest::prelude::*;
use serde_json::json;
use support::*;

#[derive(Debug, Clone)]
enum Op {
    Request { token: usize, route: usize },
    Answer { pick: usize },
    Fail { pick: usize },
    Revoke { token: usize },
    RevokeSub,
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..4usize, 0..3usize).prop_map(|(token, route)| Op::Request { token, route }),
        3 => (0..8usize).prop_map(|pick| Op::Answer { pick }),
        1 => (0..8usize).prop_map(|pick| Op::Fail { pick }),
        1 => (0..4usize).prop_map(|token| Op::Revoke { token }),
        1 => Just(Op::RevokeSub),
        2 => (0..40_000u64).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// What the authorization server believes of each token, fixed for a run.
struct Truth {
    active: bool,
    scope: &'static str,
    exp_s: u64,
    sub: &'static str,
}

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
    ]
}

const ROUTES: [(&str, &[&str]); 3] = [
    ("/orders", &["orders:read"]),
    ("/admin", &["orders:admin"]),
    ("/public", &[]),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn nothing_revoked_expired_inactive_or_unauthorized_is_forwarded(ops in proptest::collection::vec(op(), 1..80)) {
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["max_entries"] = json!(2);
        cfg["cache"]["max_pending"] = json!(3);
        let mut h = Harness::new(cfg);
        let truth = truths();
        let tokens: Vec<String> = (0..truth.len()).map(|i| format!("token-{i}")).collect();
        let mut revoked: HashSet<usize> = HashSet::new();
        let mut alice_revoked_at: Option<u64> = None;
        let mut issued_at: HashMap<usize, u64> = HashMap::new();
        let mut open: Vec<(u64, usize)> = Vec::new(); // (ticket, token) in flight
        let mut requests: HashMap<u64, (usize, usize)> = HashMap::new();
        let mut decided: HashMap<u64, u32> = HashMap::new();
        let mut next_id = 0u64;

        let check = |acts: &[Action], now: u64, revoked: &HashSet<usize>, alice: Option<u64>,
                         issued: &HashMap<usize, u64>, requests: &HashMap<u64, (usize, usize)>,
                         decided: &mut HashMap<u64, u32>, open: &mut Vec<(u64, usize)>, token_of: &dyn Fn(&str) -> Option<usize>| {
            for a in acts {
                match a {
                    Action::Forward(f) => {
                        *decided.entry(f.request_id).or_default() += 1;
                        let (t, r) = requests[&f.request_id];
                        let tr = &truth[t];
                        assert!(tr.active, "inactive token {t} forwarded");
                        assert!(!revoked.contains(&t), "revoked token {t} forwarded");
                        if tr.sub == "alice" && let Some(at) = alice {
                            assert!(issued[&t] * 1000 > at, "token {t} of a revoked subject forwarded");
                        }
                        assert!(now < tr.exp_s * 1000, "expired token {t} forwarded");
                        for s in ROUTES[r].1 {
                            assert!(tr.scope.split(' ').any(|x| x == *s), "scope {s} missing for token {t}");
                        }
                        assert!(!f.header_value.contains("token-"), "opaque token forwarded");
                    }
                    Action::Reject(rj) => {
                        *decided.entry(rj.request_id).or_default() += 1;
                    }
                    Action::Introspect(i) => {
                        let t = token_of(&i.body).expect("introspection of a known token");
                        assert!(!open.iter().any(|(_, x)| *x == t), "two introspections in flight for token {t}");
                        open.push((i.ticket, t));
                    }
                    _ => {}
                }
            }
        };
        let token_of = |body: &str| (0..4).find(|i| body.starts_with(&format!("token=token-{i}&")));

        for op in ops {
            let acts = match op {
                Op::Request { token, route } => {
                    next_id += 1;
                    requests.insert(next_id, (token, route));
                    h.request(next_id, ROUTES[route].0, &tokens[token])
                }
                Op::Answer { pick } | Op::Fail { pick } if !open.is_empty() => {
                    let (ticket, t) = open.remove(pick % open.len());
                    if matches!(op, Op::Fail { .. }) {
                        h.respond(ticket, 500, "text/plain", "oops")
                    } else {
                        let tr = &truth[t];
                        let ti = if tr.active {
                            let iat = issued_at.entry(t).or_insert(h.now / 1000 - 1);
                            json!({"active": true, "scope": tr.scope, "sub": tr.sub, "exp": tr.exp_s,
                                   "iat": *iat, "iss": ISSUER, "aud": "orders-api"})
                        } else {
                            json!({"active": false})
                        };
                        let body = h.fake.rfc9701(&h.fake.ed, ti, h.now);
                        h.respond(ticket, 200, "application/token-introspection+jwt", &body)
                    }
                }
                Op::Answer { .. } | Op::Fail { .. } => vec![],
                Op::Revoke { token } => {
                    revoked.insert(token);
                    h.edge.handle_revocation(h.now, Revocation { selector: Selector::Token(tokens[token].clone()), until: None, keep_until: None, since: None }, Origin::Local).unwrap();
                    h.edge.drain_actions()
                }
                Op::RevokeSub => {
                    alice_revoked_at = Some(h.now);
                    h.edge.handle_revocation(h.now, Revocation { selector: Selector::Sub("alice".into()), until: None, keep_until: None, since: None }, Origin::Local).unwrap();
                    h.edge.drain_actions()
                }
                Op::Advance { ms } => {
                    h.advance(ms);
                    let acts = h.edge.drain_actions();
                    // Timed-out tickets leave the model's open set.
                    let live: Vec<(u64, usize)> = open.iter().copied().filter(|(t, _)| {
                        !acts.iter().any(|a| matches!(a, Action::Audit(e) if e.ticket == Some(*t) && e.kind == phantom_edge_core::AuditKind::TicketTimedOut))
                    }).collect();
                    open = live;
                    acts
                }
            };
            check(&acts, h.now, &revoked, alice_revoked_at, &issued_at, &requests, &mut decided, &mut open, &token_of);
            let s = h.edge.stats();
            prop_assert!(s.cache_entries <= 2 && s.pending <= 3, "bounds exceeded: {s:?}");
        }
        // Liveness: once time passes every timeout, every request was decided exactly once.
        h.advance(10_000);
        let acts = h.edge.drain_actions();
        check(&acts, h.now, &revoked, alice_revoked_at, &issued_at, &requests, &mut decided, &mut open, &token_of);
        for id in requests.keys() {
            prop_assert_eq!(decided.get(id).copied().unwrap_or(0), 1, "request {} decided {:?} times", id, decided.get(id));
        }
    }
}
