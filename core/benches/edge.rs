//! Criterion benchmarks of the edge state machine: cache hits at 1M entries, the miss path with
//! RFC 9701 verification (ES256 and EdDSA) and its peers, and revocation handling.
//! See BENCHMARKS.md for how to run them and the results.
//!
//! `BENCH_TOKENS` (default 1000000) sets how many tokens the hit benchmarks cache.

#![allow(missing_docs, missing_debug_implementations)]

#[path = "../tests/support/mod.rs"]
mod support;

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use phantom_edge_core::{Action, Edge, Fingerprint, Origin, Revocation, Selector};

use common::*;
use support::*;

fn tokens_n() -> usize {
    std::env::var("BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

/// One cache hit: the request, then actions drained up to and including the Forward.
#[inline(always)]
fn hit(edge: &mut Edge, now: u64, id: u64, auth: &str) {
    let headers = [("authorization", auth)];
    edge.handle_request(now, &request(id, &headers));
    loop {
        match edge.poll_action() {
            Some(Action::Forward(f)) => {
                black_box(f);
                break;
            }
            Some(a) => {
                black_box(a);
            }
            None => panic!("no Forward on a cache hit"),
        }
    }
}

fn drain(edge: &mut Edge) {
    while let Some(a) = edge.poll_action() {
        black_box(a);
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Cache hits (and 3c: the first hit after a revocation, on the same 1M-entry edge)
// ---------------------------------------------------------------------------------------------

fn cache_hits(c: &mut Criterion) {
    let n = tokens_n();
    let t = Instant::now();
    let (mut h, tokens) = filled_curity(n, "hit");
    eprintln!(
        "filled {n} tokens in {:.1?} ({} cache entries, {} estimated cache bytes)",
        t.elapsed(),
        h.edge.stats().cache_entries,
        h.edge.stats().cache_bytes
    );
    assert_eq!(h.edge.stats().cache_entries, n);
    let order = permutation(n, 0x5eed);
    let now = h.now + 1_000;

    let mut g = c.benchmark_group("cache_hit");
    g.bench_function(format!("hot_token/{n}"), |b| {
        let auth = tokens[n / 2].as_str();
        let mut id = 0u64;
        b.iter(|| {
            id += 1;
            hit(&mut h.edge, now, id, auth);
        });
    });
    g.bench_function(format!("random_token/{n}"), |b| {
        let mut i = 0usize;
        b.iter(|| {
            let auth = tokens[order[i] as usize].as_str();
            i += 1;
            if i == n {
                i = 0;
            }
            hit(&mut h.edge, now, i as u64, auth);
        });
    });
    g.bench_function("fingerprint_only", |b| {
        let tok = tokens[0].strip_prefix("Bearer ").unwrap();
        b.iter(|| h.edge.fingerprint(black_box(tok)));
    });
    g.finish();

    // 3c. The first hit on each cached token after a revocation bumped the epoch: the entry is
    // re-checked against the revocation set. A realistic set: 10k fingerprints + 10k subjects.
    let mut s = 42u64;
    for i in 0..10_000 {
        let fp = Fingerprint(
            ((u128::from(splitmix(&mut s)) << 64) | u128::from(splitmix(&mut s))).to_le_bytes(),
        );
        let r = Revocation {
            selector: Selector::Fingerprint(fp),
            until: None,
            keep_until: None,
            since: None,
        };
        h.edge.handle_revocation(now, r, Origin::Shared).unwrap();
        let r = Revocation {
            selector: Selector::Sub(format!("user-{i}")),
            until: None,
            keep_until: None,
            since: None,
        };
        h.edge.handle_revocation(now, r, Origin::Shared).unwrap();
    }
    drain(&mut h.edge);
    let mut g = c.benchmark_group("revocation");
    let mut bump = 0u64;
    g.bench_function(format!("first_hit_after_revocation/{n}"), |b| {
        let mut pos = 0usize;
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                // Untimed: an unrelated revocation bumps the epoch.
                bump += 1;
                let r = Revocation {
                    selector: Selector::Sub(format!("other-{bump}")),
                    until: None,
                    keep_until: None,
                    since: None,
                };
                h.edge.handle_revocation(now, r, Origin::Shared).unwrap();
                drain(&mut h.edge);
                // Timed: each token hit once since the bump (distinct tokens, random order).
                let chunk = (iters - done).min(n as u64);
                let start = Instant::now();
                for _ in 0..chunk {
                    let auth = tokens[order[pos] as usize].as_str();
                    pos += 1;
                    if pos == n {
                        pos = 0;
                    }
                    hit(&mut h.edge, now, pos as u64, auth);
                }
                total += start.elapsed();
                done += chunk;
            }
            total
        });
    });
    g.bench_function(format!("hit_same_epoch_peer/{n}"), |b| {
        let mut i = 0usize;
        b.iter(|| {
            let auth = tokens[order[i] as usize].as_str();
            i += 1;
            if i == n {
                i = 0;
            }
            hit(&mut h.edge, now, i as u64, auth);
        });
    });
    g.finish();
    assert_eq!(
        h.edge.stats().cache_entries,
        n,
        "an unrelated revocation must not drop entries"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Miss path with verification, and its peers
// ---------------------------------------------------------------------------------------------

fn misses(c: &mut Criterion) {
    let fake = FakeAs::default();
    let mut g = c.benchmark_group("miss");
    for (name, signer) in [("es256", &fake.es), ("eddsa", &fake.ed)] {
        // (a) Full miss, RFC 9701: request → Introspect → signed response → Forward, including
        // minting the upstream JWT (Ed25519 edge key). Small cache, a fresh token each time.
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["max_entries"] = 1024.into();
        let mut h = Harness::new(cfg);
        let now = h.now;
        let body = rfc9701_body(&h.fake, signer, now);
        let hdrs = [("content-type", "application/token-introspection+jwt")];
        let mut ctr = 0usize;
        g.bench_function(format!("rfc9701_full_miss_incl_mint/{name}"), |b| {
            b.iter_batched(
                || {
                    ctr += 1;
                    bearer("m9701", ctr)
                },
                |auth| {
                    assert!(miss_and_answer(
                        &mut h.edge,
                        now,
                        1,
                        &auth,
                        &hdrs,
                        body.as_bytes()
                    ));
                    auth
                },
                BatchSize::SmallInput,
            )
        });
        assert!(h.edge.stats().cache_entries <= 1024);

        // (c) Curity miss with the same AS key type: verification of the forwarded access JWT,
        // no minting.
        let mut h = Harness::new(curity_config(1024));
        let cbody = curity_body(&h.fake, signer, now);
        let chdrs = [("content-type", "application/jwt")];
        g.bench_function(format!("curity_miss_no_mint/{name}"), |b| {
            b.iter_batched(
                || {
                    ctr += 1;
                    bearer("mcur", ctr)
                },
                |auth| {
                    assert!(miss_and_answer(
                        &mut h.edge,
                        now,
                        1,
                        &auth,
                        &chdrs,
                        cbody.as_bytes()
                    ));
                    auth
                },
                BatchSize::SmallInput,
            )
        });

        // (b) Peer: the bare signature verification of the same RFC 9701 response JWT.
        let jwk: Jwk = serde_json::from_value(signer.jwk.clone()).unwrap();
        let key = DecodingKey::from_jwk(&jwk).unwrap();
        let (msg, sig) = body.rsplit_once('.').unwrap();
        assert!(jsonwebtoken::crypto::verify(sig, msg.as_bytes(), &key, signer.alg).unwrap());
        g.bench_function(format!("bare_verify_rfc9701_jwt/{name}"), |b| {
            b.iter(|| {
                jsonwebtoken::crypto::verify(
                    black_box(sig),
                    black_box(msg.as_bytes()),
                    &key,
                    signer.alg,
                )
                .unwrap()
            })
        });
        let (cmsg, csig) = cbody.rsplit_once('.').unwrap();
        g.bench_function(format!("bare_verify_access_jwt/{name}"), |b| {
            b.iter(|| {
                jsonwebtoken::crypto::verify(
                    black_box(csig),
                    black_box(cmsg.as_bytes()),
                    &key,
                    signer.alg,
                )
                .unwrap()
            })
        });
    }
    // Peer for the minting cost: a bare Ed25519 signature (the edge's [assertions] key) over a
    // signing input the size of a minted JWT's.
    let edge_key = EncodingKey::from_ed_pem(EDGE_ED25519.as_bytes()).unwrap();
    let msg = "x".repeat(330);
    g.bench_function("bare_sign_minted_jwt/eddsa", |b| {
        b.iter(|| {
            jsonwebtoken::crypto::sign(black_box(msg.as_bytes()), &edge_key, Algorithm::EdDSA)
                .unwrap()
        })
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// 3. Revocation handling
// ---------------------------------------------------------------------------------------------

fn random_fp(s: &mut u64) -> Fingerprint {
    Fingerprint(((u128::from(splitmix(s)) << 64) | u128::from(splitmix(s))).to_le_bytes())
}

/// An edge with an empty decision cache and `SET` fingerprint + `SET` subject revocations.
fn revocation_edge(set: usize, s: &mut u64, now: u64) -> Harness {
    let mut h = Harness::new(curity_config(1024));
    for i in 0..set {
        let r = Revocation {
            selector: Selector::Fingerprint(random_fp(s)),
            until: None,
            keep_until: None,
            since: None,
        };
        h.edge.handle_revocation(now, r, Origin::Shared).unwrap();
        let r = Revocation {
            selector: Selector::Sub(format!("preloaded-{i}")),
            until: None,
            keep_until: None,
            since: None,
        };
        h.edge.handle_revocation(now, r, Origin::Shared).unwrap();
    }
    drain(&mut h.edge);
    h
}

/// Times `handle_revocation` (Origin::Local, so it also builds the SharedPublish) plus draining
/// its actions. The set is rebuilt (untimed) whenever the measurement grew it by more than 50%,
/// so every sample runs against a set of 20k–40k entries, far below the bound.
fn bench_revocation(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut make: impl FnMut(&mut u64, u64) -> Selector,
) {
    const SET: usize = 10_000;
    let now = T0 + 1_000;
    let mut s = 7u64;
    let mut k = 0u64;
    let mut h = revocation_edge(SET, &mut s, now);
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            while done < iters {
                if h.edge.stats().revocations > 3 * SET {
                    h = revocation_edge(SET, &mut s, now);
                }
                let chunk = (iters - done).min(SET as u64);
                let sels: Vec<Selector> = (0..chunk)
                    .map(|_| {
                        k += 1;
                        make(&mut s, k)
                    })
                    .collect();
                let start = Instant::now();
                for sel in sels {
                    let r = Revocation {
                        selector: sel,
                        until: None,
                        keep_until: None,
                        since: None,
                    };
                    h.edge.handle_revocation(now, r, Origin::Local).unwrap();
                    drain(&mut h.edge);
                }
                total += start.elapsed();
                done += chunk;
            }
            total
        })
    });
}

fn revocations(c: &mut Criterion) {
    let now = T0 + 1_000;
    let mut s = 99u64;
    let mut g = c.benchmark_group("revocation");
    bench_revocation(&mut g, "by_fingerprint/set_20k", |s, _| {
        Selector::Fingerprint(random_fp(s))
    });
    bench_revocation(&mut g, "by_sub/set_20k", |_, k| {
        Selector::Sub(format!("user-{k}"))
    });

    // At the bound (revocation.max_entries = 100000, the default, full): every new revocation
    // scans the whole set for a victim and flushes the decision cache (empty here).
    let mut cfg = curity_config(1024);
    cfg["revocation"]["max_entries"] = 100_000.into();
    let mut h = Harness::new(cfg);
    for _ in 0..100_000 {
        let r = Revocation {
            selector: Selector::Fingerprint(random_fp(&mut s)),
            until: None,
            keep_until: None,
            since: None,
        };
        h.edge.handle_revocation(now, r, Origin::Shared).unwrap();
    }
    drain(&mut h.edge);
    assert_eq!(h.edge.stats().revocations, 100_000);
    g.bench_function("by_fingerprint/set_full_100k_overflow", |b| {
        b.iter_batched(
            || Revocation {
                selector: Selector::Fingerprint(random_fp(&mut s)),
                until: None,
                keep_until: None,
                since: None,
            },
            |r| {
                h.edge.handle_revocation(now, r, Origin::Local).unwrap();
                drain(&mut h.edge);
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, cache_hits, misses, revocations);
criterion_main!(benches);
