//! Regression tests from the security reviews of 2026-11-24: attacker-chosen or extreme inputs
//! that crashed the core, wrapped its time arithmetic, let a revocation lapse while a token it
//! covers could still be presented, or let a DPoP proof through twice. Each test fails (or
//! panics) on the code before the fix it guards, except two: `odd_dpop_jwks_...` is a probe that
//! already passed, and `split_mode_forwards_...` checks the forwarded JWT after split mode
//! stopped caching the signature (what the cache holds is not observable through the API).
mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use phantom_edge_core::{Action, Origin, Reason, Request, Revocation, Selector};
use serde_json::json;
use support::*;

/// A JWS with this header and an empty payload, not validly signed: enough to reach the checks
/// that run before the signature.
fn unsigned_jws(header: serde_json::Value) -> String {
    format!(
        "{}.{}.AAAA",
        B64.encode(serde_json::to_vec(&header).unwrap()),
        B64.encode(b"{}")
    )
}

fn revoke(h: &mut Harness, selector: Selector) {
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector,
                until: None,
                keep_until: None,
                since: None,
            },
            Origin::Local,
        )
        .unwrap();
    let _ = h.edge.drain_actions();
}

#[test]
fn a_multibyte_typ_in_a_dpop_proof_is_refused_not_a_panic() {
    let mut h = Harness::new(base_config("rfc9701"));
    // "application" is 11 bytes and 'é' takes bytes 11..13: byte 12 is inside it.
    let proof = unsigned_jws(json!({"alg": "ES256", "typ": "application\u{e9}"}));
    let acts = h.request_with(
        1,
        "GET",
        "/orders",
        &[("authorization", "DPoP anything"), ("dpop", &proof)],
        None,
    );
    assert_eq!(reject(&acts).reason, Reason::InvalidDpopProof);
    // The edge still works.
    let acts = h.request(2, "/orders", "tok");
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Introspection))
    );
}

#[test]
fn a_multibyte_typ_in_a_security_event_is_refused_not_a_panic() {
    let mut h = Harness::new(base_config("rfc9701"));
    let set = unsigned_jws(json!({"alg": "EdDSA", "typ": "application\u{e9}"}));
    // The SET route needs no admin token: this must be an error, not a crash.
    let r = h.edge.handle_admin_revocation(
        h.now,
        Some("application/secevent+jwt"),
        None,
        set.as_bytes(),
    );
    assert!(r.is_err());
}

#[test]
fn a_huge_cache_control_max_age_does_not_overflow() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let body = h
        .fake
        .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), h.now);
    let headers = [
        ("content-type", RFC9701_CT),
        ("cache-control", "max-age=18446744073709551"),
    ];
    forward(&h.respond_headers(t, 200, &headers, &body));
    // Cached (bounded by max_ttl and the token's exp), not dropped at once.
    forward(&h.request(2, "/orders", "tok"));
}

#[test]
fn a_huge_rfc9701_response_exp_does_not_overflow() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let claims = json!({
        "iss": ISSUER, "aud": "gateway", "iat": h.now / 1000, "exp": u64::MAX,
        "token_introspection": FakeAs::claims(h.now, "orders:read")
    });
    let body = h.fake.ed.sign("token-introspection+jwt", &claims);
    forward(&h.respond(t, 200, RFC9701_CT, &body));
}

/// An authorization server whose "never expires" is Java's `Long.MAX_VALUE`: `exp * 1000 +
/// leeway` wrapped (release) to a revocation kept only until the next sweep.
#[test]
fn a_token_revocation_outlives_a_never_expiring_token() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["exp"] = json!(i64::MAX);
    forward(&h.respond_9701(t, c.clone()));
    revoke(&mut h, Selector::Token("tok".into()));
    assert_eq!(
        reject(&h.request(2, "/orders", "tok")).reason,
        Reason::Revoked
    );
    h.advance(11_000); // past a sweep
    let _ = h.edge.drain_actions();
    let acts = h.request(3, "/orders", "tok");
    if let Some(Action::Reject(r)) = acts.iter().find(|a| matches!(a, Action::Reject(_))) {
        assert_eq!(r.reason, Reason::Revoked);
        return;
    }
    // Introspected again; the AS never heard of the edge-side revocation and says active.
    let t = ticket(&acts);
    let acts = h.respond_9701(t, c);
    assert!(
        forwards(&acts).is_empty(),
        "revoked token forwarded: {acts:?}"
    );
}

const DAY_MS: u64 = 24 * 3600 * 1000;

/// A subject revocation without `until` is kept as long as the tokens this edge has accepted
/// can live, not just `revocation.default_ttl` (1 day): the authorization server issues 48 h
/// tokens here, so alice's older token must stay refused after a day.
#[test]
fn a_subject_revocation_lasts_as_long_as_the_tokens_the_edge_has_seen() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t0 = h.now;
    let long = |sub: &str, iat_ms: u64| {
        let mut c = FakeAs::claims(iat_ms, "orders:read");
        c["sub"] = json!(sub);
        c["exp"] = json!(iat_ms / 1000 + 48 * 3600);
        c
    };
    // Bob's 48 h token teaches the edge how long tokens live.
    let t = ticket(&h.request(1, "/orders", "bob-tok"));
    forward(&h.respond_9701(t, long("bob", t0)));
    revoke(&mut h, Selector::Sub("alice".into()));
    h.advance(DAY_MS + 20_000);
    let _ = h.edge.drain_actions();
    // Alice's token, issued an hour before the revocation, first presented now.
    let t = ticket(&h.request(2, "/orders", "alice-tok"));
    let acts = h.respond_9701(t, long("alice", t0 - 3_600_000));
    assert_eq!(
        reject(&acts).reason,
        Reason::Revoked,
        "forwarded after a day: {acts:?}"
    );
}

/// A revocation seen to match a token is kept until that token expires, even when it was
/// stored before the edge knew how long tokens live.
#[test]
fn a_revocation_that_matched_a_token_is_kept_until_the_token_expires() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t0 = h.now;
    revoke(&mut h, Selector::Sub("alice".into()));
    let claims = || {
        let mut c = FakeAs::claims(t0 - 3_600_000, "orders:read");
        c["sub"] = json!("alice");
        c["exp"] = json!(t0 / 1000 + 47 * 3600);
        c
    };
    h.advance(3_600_000);
    let t = ticket(&h.request(1, "/orders", "alice-tok"));
    assert_eq!(reject(&h.respond_9701(t, claims())).reason, Reason::Revoked);
    h.advance(DAY_MS);
    let _ = h.edge.drain_actions();
    let acts = h.request(2, "/orders", "alice-tok");
    if let Some(Action::Reject(r)) = acts.iter().find(|a| matches!(a, Action::Reject(_))) {
        assert_eq!(r.reason, Reason::Revoked);
        return;
    }
    let t = ticket(&acts);
    let acts = h.respond_9701(t, claims());
    assert_eq!(
        reject(&acts).reason,
        Reason::Revoked,
        "forwarded after a day: {acts:?}"
    );
}

#[test]
fn debug_of_a_request_never_prints_header_values() {
    let headers = [
        ("authorization", "Bearer RAW-SECRET"),
        ("dpop", "PROOF-SECRET"),
    ];
    let req = Request {
        id: 1,
        method: "GET",
        scheme: "https",
        authority: "a",
        path: "/",
        headers: &headers,
        client_cert_thumbprint: None,
    };
    let s = format!("{req:?}");
    assert!(
        !s.contains("RAW-SECRET") && !s.contains("PROOF-SECRET"),
        "{s}"
    );
    assert!(s.contains("authorization"), "{s}");
}

#[test]
fn debug_of_the_raw_config_never_prints_secrets() {
    let mut cfg = base_config("rfc9701");
    cfg["authorization_server"]["client_secret"] = json!("CLIENT-SECRET-VALUE");
    cfg["admin"] = json!({"token": "ADMIN-TOKEN-VALUE-0123456789"});
    cfg["cache"] = json!({"fingerprint_key": "FINGERPRINT-KEY-VALUE-0123456789abcdef"});
    let raw = phantom_edge_core::RawConfig::from_json(&cfg.to_string()).unwrap();
    let s = format!("{raw:?}");
    for secret in [
        "CLIENT-SECRET-VALUE",
        "ADMIN-TOKEN-VALUE",
        "FINGERPRINT-KEY-VALUE",
        "PRIVATE KEY",
    ] {
        assert!(!s.contains(secret), "{secret} in {s}");
    }
    assert!(s.contains("{REDACTED}") && s.contains(ISSUER), "{s}");
}

#[test]
fn debug_of_an_edge_never_prints_its_minting_key() {
    let h = Harness::new(base_config("rfc9701"));
    let s = format!("{:?}", h.edge);
    // The keys the edge derives from its seed ([7; 32] in the harness), in the forms Debug
    // would print them, and the seed itself; and the PEM body of its signing key.
    let seed = [7u8; 32];
    for context in ["phantom-edge 2026 jti", "phantom-edge 2026 fingerprint"] {
        let key = blake3::derive_key(context, &seed);
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !s.contains(&format!("{key:?}")),
            "{context} key printed: {s}"
        );
        assert!(!s.contains(&hex), "{context} key printed as hex: {s}");
    }
    assert!(!s.contains(&format!("{seed:?}")), "seed printed: {s}");
    for line in EDGE_ED25519.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!s.contains(line.trim()), "signing key PEM printed: {s}");
    }
    assert!(s.contains(r#"Minter { key: "{REDACTED}""#), "{s}");
}

#[test]
fn odd_dpop_jwks_are_refused_without_a_panic() {
    let mut h = Harness::new(base_config("rfc9701"));
    let jwks = [
        json!({"kty":"EC","crv":"P-256","x":"","y":""}),
        json!({"kty":"EC","crv":"P-256","x":"AA","y":"AA"}),
        json!({"kty":"EC","crv":"P-256","x": "A".repeat(5000),"y":"AA"}),
        json!({"kty":"RSA","n":"AA","e":"AQAB"}),
        json!({"kty":"RSA","n":"","e":""}),
        json!({"kty":"OKP","crv":"Ed25519","x":"AA"}),
        json!({"kty":"EC","crv":"P-256","x":"\u{e9}","y":"\u{e9}"}),
    ];
    for (i, jwk) in jwks.iter().enumerate() {
        let alg = match jwk["kty"].as_str().unwrap() {
            "RSA" => "RS256",
            "OKP" => "EdDSA",
            _ => "ES256",
        };
        let proof = unsigned_jws(json!({"alg": alg, "typ": "dpop+jwt", "jwk": jwk}));
        let acts = h.request_with(
            i as u64,
            "GET",
            "/orders",
            &[("authorization", "DPoP x"), ("dpop", &proof)],
            None,
        );
        assert_eq!(reject(&acts).reason, Reason::InvalidDpopProof, "{i}");
    }
}

const HTU: &str = "https://api.example/orders";

/// Proofs for tokens nobody issued (any string, the attacker's own key) take no room in the
/// bounded replay set: before, 50 of them filled it and every DPoP client got 503.
#[test]
fn proofs_for_unknown_tokens_cannot_fill_the_dpop_replay_set() {
    let mut cfg = base_config("rfc9701");
    cfg["dpop"] = json!({"max_replay_entries": 50});
    let mut h = Harness::new(cfg);
    let attacker = Signer::es256(AS_ES256, None);
    for i in 0..60 {
        let junk = format!("junk{i}");
        let p = dpop_proof(&attacker, "GET", HTU, &junk, h.now / 1000, &format!("a{i}"));
        let auth = format!("DPoP {junk}");
        let acts = h.request_with(
            100 + i,
            "GET",
            "/orders",
            &[("authorization", &auth), ("dpop", &p)],
            None,
        );
        let t = ticket(&acts);
        assert_eq!(
            reject(&h.respond_9701(t, json!({"active": false}))).reason,
            Reason::Inactive
        );
    }
    assert_eq!(h.edge.stats().dpop_replay_entries, 0);
    // The victim's bound token and proof go through, and only that proof is remembered.
    let victim = Signer::es256(CLIENT_DPOP_ES256, None);
    let p = dpop_proof(&victim, "GET", HTU, "victim-tok", h.now / 1000, "v1");
    let headers = [("authorization", "DPoP victim-tok"), ("dpop", p.as_str())];
    let t = ticket(&h.request_with(1, "GET", "/orders", &headers, None));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["cnf"] = json!({"jkt": jkt(&victim)});
    forward(&h.respond_9701(t, c));
    assert_eq!(h.edge.stats().dpop_replay_entries, 1);
    // Replayed: refused, on the cache-hit path too.
    let r = reject(&h.request_with(2, "GET", "/orders", &headers, None)).clone();
    assert_eq!(r.reason, Reason::InvalidDpopProof);
}

/// A proof sent twice while its token is being introspected: a proof is recorded only when a
/// request is let through, so both requests wait on the one introspection, and when it answers
/// the first goes on and the second is refused as a replay.
#[test]
fn a_proof_replayed_while_its_token_is_introspected_is_let_through_once() {
    let mut h = Harness::new(base_config("rfc9701"));
    let client = Signer::es256(CLIENT_DPOP_ES256, None);
    let p = dpop_proof(&client, "GET", HTU, "tok", h.now / 1000, "once");
    let headers = [("authorization", "DPoP tok"), ("dpop", p.as_str())];
    let t = ticket(&h.request_with(1, "GET", "/orders", &headers, None));
    let coalesced = h.request_with(2, "GET", "/orders", &headers, None);
    assert!(
        coalesced
            .iter()
            .all(|a| !matches!(a, Action::Fetch(f) if f.kind == FetchKind::Introspection)),
        "{coalesced:?}"
    );
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["cnf"] = json!({"jkt": jkt(&client)});
    let acts = h.respond_9701(t, c);
    let fs = forwards(&acts);
    assert_eq!(fs.len(), 1, "{acts:?}");
    assert_eq!(fs[0].request_id, 1);
    let rs = rejects(&acts);
    assert_eq!(rs.len(), 1, "{acts:?}");
    assert_eq!(
        (rs[0].request_id, rs[0].reason),
        (2, Reason::InvalidDpopProof)
    );
}

/// Split mode keeps `header.payload.` of the reassembled JWT, not the signature the client
/// holds; every forward, from the lookup and from the cache, carries the whole JWT again.
#[test]
fn split_mode_forwards_the_whole_jwt_on_a_miss_and_on_hits() {
    let mut h = Harness::new(split_config());
    let jwt = h
        .fake
        .access_jwt(&h.fake.ed, &FakeAs::claims(h.now, "orders:read"));
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let acts = h.request(1, "/orders", sig);
    let l = shared_lookup(&acts);
    // A second request joins the lookup (no second SharedLookup, no decision yet).
    let joined = h.request(2, "/orders", sig);
    assert!(
        joined.iter().all(|a| matches!(a, Action::Audit(_))),
        "{joined:?}"
    );
    h.edge
        .handle_shared_lookup(
            h.now,
            l.ticket,
            phantom_edge_core::LookupResult::Found(head),
        )
        .unwrap();
    let acts = h.edge.drain_actions();
    let fs = forwards(&acts);
    assert_eq!(fs.len(), 2, "{acts:?}");
    for f in fs {
        assert_eq!(&*f.header_value, format!("Bearer {jwt}"));
    }
    for id in 3..5 {
        assert_eq!(
            &*forward(&h.request(id, "/orders", sig)).header_value,
            format!("Bearer {jwt}")
        );
    }
}

/// A JWKS fetch the host never answers (a lost task) blocked every later refresh: keys could
/// never rotate again until restart. It now counts as failed after the introspection timeout.
#[test]
fn a_jwks_fetch_never_answered_does_not_block_refreshes_for_good() {
    let mut h = Harness::new(base_config("rfc9701"));
    h.advance(30_000); // past jwks_min_refresh since the start-up fetch
    let rotated = Signer::ed25519(SET_ED25519, Some("as-rotated"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let body = h
        .fake
        .rfc9701(&rotated, FakeAs::claims(h.now, "orders:read"), h.now);
    let acts = h.respond(t, 200, RFC9701_CT, &body);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
    );
    // The host drops that fetch. The parked request times out (503) as before.
    h.advance(600_000);
    let _ = h.edge.drain_actions();
    let t = ticket(&h.request(2, "/orders", "tok2"));
    let body = h
        .fake
        .rfc9701(&rotated, FakeAs::claims(h.now, "orders:read"), h.now);
    let acts = h.respond(t, 200, RFC9701_CT, &body);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks)),
        "no new fetch: {acts:?}"
    );
    let jwks = json!({"keys": [h.fake.ed.jwk, rotated.jwk]}).to_string();
    h.edge.handle_jwks(h.now, Ok(jwks.as_bytes()));
    forward(&h.edge.drain_actions());
}

#[test]
fn admin_authorized_checks_the_admin_bearer_token_for_host_routes() {
    let mut cfg = base_config("rfc9701");
    cfg.as_object_mut().unwrap().remove("admin");
    let h = Harness::new(cfg);
    assert_eq!(
        h.edge.admin_authorized(Some("Bearer x")),
        None,
        "no [admin]"
    );
    let mut cfg = base_config("rfc9701");
    cfg["admin"] = json!({"token": "admin-secret-0123456789"});
    let h = Harness::new(cfg);
    assert_eq!(
        h.edge
            .admin_authorized(Some("Bearer admin-secret-0123456789")),
        Some(true)
    );
    assert_eq!(
        h.edge
            .admin_authorized(Some("bearer  admin-secret-0123456789 ")),
        Some(true)
    );
    for wrong in [
        None,
        Some(""),
        Some("Bearer admin-secret-012345678"),
        Some("Basic admin-secret-0123456789"),
        Some("admin-secret-0123456789"),
    ] {
        assert_eq!(h.edge.admin_authorized(wrong), Some(false), "{wrong:?}");
    }
}

/// A token revocation is published by fingerprint; without a shared `cache.fingerprint_key`
/// each instance keys fingerprints with its own seed, so the others cannot match it: the
/// `revoked` audit event says so instead of leaving operators to find out.
#[test]
fn a_published_token_revocation_without_a_shared_fingerprint_key_is_flagged() {
    let detail = |cfg: serde_json::Value| {
        let mut h = Harness::new(cfg);
        h.edge
            .handle_revocation(
                h.now,
                Revocation {
                    selector: Selector::Token("tok".into()),
                    until: None,
                    keep_until: None,
                    since: None,
                },
                Origin::Local,
            )
            .unwrap();
        h.edge
            .drain_actions()
            .into_iter()
            .find_map(|a| match a {
                Action::Audit(e) if e.kind == phantom_edge_core::AuditKind::Revoked => e.detail,
                _ => None,
            })
            .unwrap()
    };
    let alone = detail(base_config("rfc9701"));
    assert!(alone.contains("cannot match"), "{alone}");
    let mut shared = base_config("rfc9701");
    shared["cache"] = json!({"fingerprint_key": "0123456789abcdef0123456789abcdef"});
    assert_eq!(detail(shared), "selector=token");
}

/// The same proof in two coalesced requests, decided in one `complete()` after the proof's
/// replay lifetime passed (leeway shorter than the introspection timeout): it was recorded
/// already expired, the second insert reclaimed it, and both requests were forwarded.
#[test]
fn a_proof_decided_after_its_window_is_still_let_through_once() {
    let mut cfg = base_config("rfc9701");
    cfg["authorization_server"]["leeway"] = json!("1s");
    cfg["authorization_server"]["timeout"] = json!("5s");
    let mut h = Harness::new(cfg);
    let client = Signer::es256(CLIENT_DPOP_ES256, None);
    // iat at the end of its window: iat + 60 s + 1 s leeway is just ahead of now.
    let iat = (h.now - 60_000) / 1000;
    let p = dpop_proof(&client, "GET", HTU, "tok", iat, "dup");
    let headers = [("authorization", "DPoP tok"), ("dpop", p.as_str())];
    let t = ticket(&h.request_with(1, "GET", "/orders", &headers, None));
    let _ = h.request_with(2, "GET", "/orders", &headers, None);
    h.advance(3_000); // the introspection answers late, within its timeout
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["cnf"] = json!({"jkt": jkt(&client)});
    let acts = h.respond_9701(t, c);
    assert_eq!(forwards(&acts).len(), 1, "{acts:?}");
}

/// One "never expiring" token (exp = i64::MAX) must not make every later revocation without
/// `until` permanent: they follow the latest exp seen at most 30 days ahead.
#[test]
fn one_never_expiring_token_does_not_make_default_revocations_permanent() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "forever"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["exp"] = json!(i64::MAX);
    c["sub"] = json!("svc");
    forward(&h.respond_9701(t, c));
    for s in ["a", "b", "c"] {
        revoke(&mut h, Selector::Sub(s.into()));
    }
    assert_eq!(h.edge.stats().revocations, 3);
    h.advance(29 * DAY_MS);
    let _ = h.edge.drain_actions();
    assert_eq!(
        h.edge.stats().revocations,
        3,
        "kept while tokens seen may live"
    );
    h.advance(2 * DAY_MS);
    let _ = h.edge.drain_actions();
    assert_eq!(h.edge.stats().revocations, 0, "not kept forever");
}

/// An `until` the revoker set bounds the revocation, whatever tokens it matched meanwhile.
#[test]
fn an_explicit_until_is_not_extended_by_a_matching_token() {
    let mut h = Harness::new(base_config("rfc9701"));
    let until_s = h.now / 1000 + 600;
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector: Selector::Sub("alice".into()),
                until: Some(until_s),
                keep_until: None,
                since: None,
            },
            Origin::Local,
        )
        .unwrap();
    let _ = h.edge.drain_actions();
    h.advance(1_000);
    let t = ticket(&h.request(1, "/orders", "tok"));
    let mut c = FakeAs::claims(h.now - 5_000, "orders:read");
    c["sub"] = json!("alice");
    c["exp"] = json!(h.now / 1000 + 3600);
    assert_eq!(reject(&h.respond_9701(t, c)).reason, Reason::Revoked);
    h.advance(700_000); // past until
    let _ = h.edge.drain_actions();
    assert_eq!(
        h.edge.stats().revocations,
        0,
        "kept past its explicit until"
    );
}
