//! One test group per numbered requirement of the core (issue 2) and per invariant of docs/DESIGN.md.
mod support;

use phantom_edge_core::{
    Action, AuditKind, AuditKinds, Config, Edge, HttpResponse, Origin, Reason, Revocation, Selector,
};
use serde_json::json;
use support::*;

fn active_9701(h: &mut Harness, ticket: u64, scope: &str) -> Vec<Action> {
    let claims = FakeAs::claims(h.now, scope);
    h.respond_9701(ticket, claims)
}

// 1. Requests --------------------------------------------------------------------------------

#[test]
fn missing_token_is_401_without_error_code() {
    let mut h = Harness::new(base_config("rfc9701"));
    let acts = h.request_with(1, "GET", "/orders", &[], None);
    let r = reject(&acts);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.www_authenticate.as_deref(),
        Some("Bearer realm=\"phantom-edge\"")
    );
    let acts = h.request_with(
        2,
        "GET",
        "/orders",
        &[("authorization", "Basic dTpw")],
        None,
    );
    assert_eq!(reject(&acts).status, 401);
}

#[test]
fn malformed_and_repeated_headers_are_400_invalid_request() {
    let mut h = Harness::new(base_config("rfc9701"));
    for headers in [
        vec![("authorization", "Bearer a b")],
        vec![("authorization", "Bearer")],
        vec![("authorization", "Bearer a"), ("Authorization", "Bearer b")],
    ] {
        let acts = h.request_with(1, "GET", "/orders", &headers, None);
        let r = reject(&acts);
        assert_eq!(r.status, 400, "{headers:?}");
        assert!(
            r.www_authenticate
                .as_ref()
                .unwrap()
                .contains("error=\"invalid_request\"")
        );
        assert!(introspects(&acts).is_empty());
    }
}

#[test]
fn inactive_is_401_invalid_token_and_insufficient_scope_is_403() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders/1", "tok-inactive"));
    let r = reject(&h.respond_9701(t, json!({"active": false}))).clone();
    assert_eq!((r.status, r.reason), (401, Reason::Inactive));
    assert!(
        r.www_authenticate
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    let t = ticket(&h.request(2, "/orders/1", "tok-narrow"));
    let r = reject(&active_9701(&mut h, t, "profile")).clone();
    assert_eq!(r.status, 403);
    let www = r.www_authenticate.unwrap();
    assert!(
        www.contains("error=\"insufficient_scope\"") && www.contains("scope=\"orders:read\""),
        "{www}"
    );
}

#[test]
fn authorization_server_failures_fail_closed() {
    let mut h = Harness::new(base_config("rfc9701"));
    let cases: Vec<(u16, &str, &str, Reason)> = vec![
        (500, "application/json", "{}", Reason::Unavailable),
        (
            401,
            "application/json",
            r#"{"error":"invalid_client"}"#,
            Reason::ClientAuthFailed,
        ),
        (200, RFC9701_CT, "garbage", Reason::Unavailable),
        (
            200,
            "application/json",
            r#"{"active":true}"#,
            Reason::Unavailable,
        ),
    ];
    for (i, (status, ct, body, reason)) in cases.into_iter().enumerate() {
        let t = ticket(&h.request(i as u64, "/orders", &format!("tok-fail-{i}")));
        let acts = h.respond(t, status, ct, body);
        let r = reject(&acts);
        assert_eq!((r.status, r.reason), (503, reason), "case {i}");
        assert!(r.www_authenticate.is_none());
    }
    // Transport failure and timeout.
    let t = ticket(&h.request(10, "/orders", "tok-down"));
    h.edge
        .handle_introspection_failure(h.now, t, "connection refused")
        .unwrap();
    assert_eq!(reject(&h.edge.drain_actions()).status, 503);
    let _t = ticket(&h.request(11, "/orders", "tok-slow"));
    h.advance(1_999);
    assert!(rejects(&h.edge.drain_actions()).is_empty());
    h.advance(1);
    let acts = h.edge.drain_actions();
    assert_eq!(
        (reject(&acts).status, reject(&acts).reason),
        (503, Reason::Timeout)
    );
    // Failures are not cached: the next request introspects again.
    assert_eq!(introspects(&h.request(12, "/orders", "tok-down")).len(), 1);
}

#[test]
fn unavailable_status_can_be_502() {
    let mut cfg = base_config("rfc9701");
    cfg["authorization_server"]["unavailable_status"] = json!(502);
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request(1, "/orders", "tok"));
    assert_eq!(
        reject(&h.respond(t, 502, "text/html", "bad gateway")).status,
        502
    );
}

#[test]
fn no_route_is_404() {
    let mut h = Harness::new(base_config("rfc9701"));
    let r = reject(&h.request(1, "/elsewhere", "tok")).clone();
    assert_eq!((r.status, r.reason), (404, Reason::NoRoute));
}

// 2. Introspection requests ------------------------------------------------------------------

#[test]
fn introspection_request_is_rfc7662_with_client_auth() {
    let mut h = Harness::new(base_config("rfc9701"));
    let acts = h.request(1, "/orders", "a+b/c==");
    let i = introspects(&acts)[0];
    assert_eq!((i.method, i.url.as_str()), ("POST", INTROSPECT));
    assert_eq!(i.body, "token=a%2Bb%2Fc%3D%3D&token_type_hint=access_token");
    let hdr = |n: &str| {
        i.headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(hdr("accept"), Some("application/token-introspection+jwt"));
    assert_eq!(
        hdr("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // base64("gateway:gateway-secret")
    assert_eq!(
        hdr("authorization"),
        Some("Basic Z2F0ZXdheTpnYXRld2F5LXNlY3JldA==")
    );
    assert!(!format!("{i:?}").contains("a+b/c"), "Debug hides the body");

    let mut cfg = base_config("keycloak");
    cfg["authorization_server"]["client_auth"] = json!("client_secret_post");
    let mut h = Harness::new(cfg);
    let acts = h.request(1, "/orders", "tok");
    let i = introspects(&acts)[0];
    assert_eq!(
        i.body,
        "token=tok&token_type_hint=access_token&client_id=gateway&client_secret=gateway-secret"
    );
    assert!(i.headers.iter().all(|(k, _)| k != "authorization"));
    assert!(
        i.headers
            .iter()
            .any(|(k, v)| k == "accept" && v == "application/json")
    );
}

// 3. Dialects -------------------------------------------------------------------------------

#[test]
fn a_route_without_audience_gets_a_jwt_without_the_tokens_audiences() {
    // The token is for orders-api with an admin scope; `/public` names no audience and requires
    // no scope. Its upstream must not get a JWT that orders-api would accept (it got
    // `aud: orders-api` with every granted scope).
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/public/x", "tok"));
    let acts = active_9701(&mut h, t, "orders:read orders:admin");
    let c = jwt_claims(forward(&acts).header_value.strip_prefix("Bearer ").unwrap());
    assert!(c.get("aud").is_none(), "minted for /public: {c}");
    // The same token on /orders: the route's audience.
    let acts = h.request(2, "/orders/1", "tok");
    let c = jwt_claims(forward(&acts).header_value.strip_prefix("Bearer ").unwrap());
    assert_eq!(c["aud"], "orders-api");
}

#[test]
fn rfc9701_mints_a_narrow_upstream_jwt() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders/1", "tok"));
    let acts = active_9701(&mut h, t, "orders:read orders:write profile");
    let f = forward(&acts);
    let jwt = f.header_value.strip_prefix("Bearer ").unwrap();
    assert_eq!(jwt_header(jwt)["typ"], "at+jwt");
    assert_eq!(jwt_header(jwt)["alg"], "EdDSA");
    let c = jwt_claims(jwt);
    assert_eq!(c["aud"], "orders-api");
    assert_eq!(c["scope"], "orders:read", "scopes narrowed to the route");
    assert_eq!(c["sub"], "alice");
    assert!(
        c["exp"].as_u64().unwrap() <= h.now / 1000 + 60,
        "assertions.max_ttl bounds the lifetime"
    );
    assert!(!f.header_value.contains("tok\""));
    // The minted JWT verifies with the edge's published JWKS.
    let jwks: serde_json::Value = serde_json::from_str(&h.edge.assertion_jwks().unwrap()).unwrap();
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    assert!(
        jsonwebtoken::crypto::verify(sig, input.as_bytes(), &key, jsonwebtoken::Algorithm::EdDSA)
            .unwrap()
    );
    assert!(f.strip_headers.iter().any(|h| h == "authorization"));
}

#[test]
fn minted_lifetime_never_exceeds_the_access_token() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let mut claims = FakeAs::claims(h.now, "orders:read");
    claims["exp"] = json!(h.now / 1000 + 20);
    let acts = h.respond_9701(t, claims);
    let jwt = forward(&acts)
        .header_value
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    assert_eq!(jwt_claims(&jwt)["exp"].as_u64().unwrap(), h.now / 1000 + 20);
}

#[test]
fn rfc9701_response_checks() {
    let fake = FakeAs::default();
    let now = T0;
    let claims = FakeAs::claims(now, "orders:read");
    let bad: Vec<(&str, String)> = vec![
        ("wrong typ", fake.ed.sign("JWT", &json!({"iss": ISSUER, "aud": "gateway", "iat": now / 1000, "token_introspection": claims}))),
        ("wrong aud", fake.ed.sign("token-introspection+jwt", &json!({"iss": ISSUER, "aud": "other", "iat": now / 1000, "token_introspection": claims}))),
        ("wrong iss", fake.ed.sign("token-introspection+jwt", &json!({"iss": "https://evil", "aud": "gateway", "iat": now / 1000, "token_introspection": claims}))),
        ("stale iat", fake.ed.sign("token-introspection+jwt", &json!({"iss": ISSUER, "aud": "gateway", "iat": now / 1000 - 600, "token_introspection": claims}))),
        ("alg none", {
            let j = fake.rfc9701(&fake.ed, claims.clone(), now);
            let mut parts: Vec<String> = j.split('.').map(str::to_owned).collect();
            use base64::Engine as _;
            parts[0] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"token-introspection+jwt"}"#);
            format!("{}.{}.", parts[0], parts[1])
        }),
        ("tampered payload", {
            let j = fake.rfc9701(&fake.ed, claims.clone(), now);
            let other = fake.rfc9701(&fake.ed, json!({"active": true, "scope": "orders:read orders:admin"}), now);
            let p: Vec<&str> = j.split('.').collect();
            let q: Vec<&str> = other.split('.').collect();
            format!("{}.{}.{}", p[0], q[1], p[2])
        }),
        ("HS256 with the public key as secret", {
            let secret = serde_json::to_vec(&fake.ed.jwk).unwrap();
            let key = jsonwebtoken::EncodingKey::from_secret(&secret);
            let mut hd = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
            hd.typ = Some("token-introspection+jwt".into());
            hd.kid = Some("as-ed".into());
            jsonwebtoken::encode(&hd, &json!({"iss": ISSUER, "aud": "gateway", "iat": now / 1000, "token_introspection": claims}), &key).unwrap()
        }),
    ];
    for (name, body) in bad {
        let mut h = Harness::new(base_config("rfc9701"));
        let t = ticket(&h.request(1, "/orders", "tok"));
        let acts = h.respond(t, 200, RFC9701_CT, &body);
        let r = reject(&acts);
        assert_eq!(r.status, 503, "{name}");
        // A JSON answer to a JWT request is refused too.
        let t = ticket(&h.request(2, "/orders", "tok2"));
        assert_eq!(
            reject(&h.respond(t, 200, "application/json", r#"{"active":true}"#)).status,
            503
        );
    }
}

#[test]
fn curity_forwards_the_as_jwt_and_204_is_inactive() {
    let mut cfg = base_config("curity");
    cfg.as_object_mut().unwrap().remove("assertions");
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request(1, "/orders", "tok"));
    let jwt = h
        .fake
        .access_jwt(&h.fake.es, &FakeAs::claims(h.now, "orders:read"));
    let acts = h.respond(t, 200, "application/jwt", &jwt);
    assert_eq!(&*forward(&acts).header_value, format!("Bearer {jwt}"));
    let t = ticket(&h.request(2, "/orders", "tok-204"));
    let acts = h.respond(t, 204, "", "");
    assert_eq!(reject(&acts).reason, Reason::Inactive);
    // A JWT signed by someone else is an untrustworthy answer: fail closed.
    let t = ticket(&h.request(3, "/orders", "tok-forged"));
    let forged = Signer::ed25519(EDGE_ED25519, Some("as-ed"))
        .sign("at+jwt", &FakeAs::claims(h.now, "orders:read"));
    assert_eq!(
        reject(&h.respond(t, 200, "application/jwt", &forged)).status,
        503
    );
    // An introspection-response JWT is never accepted as an access token (typ separation).
    let t = ticket(&h.request(4, "/orders", "tok-typ"));
    let wrong = h
        .fake
        .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), h.now);
    assert_eq!(
        reject(&h.respond(t, 200, "application/jwt", &wrong)).status,
        503
    );
}

#[test]
fn keycloak_reads_the_jwt_member() {
    let mut cfg = base_config("keycloak");
    cfg.as_object_mut().unwrap().remove("assertions");
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request(1, "/orders", "tok"));
    let jwt = h
        .fake
        .access_jwt(&h.fake.ed, &FakeAs::claims(h.now, "orders:read"));
    let body = json!({"active": true, "jwt": jwt}).to_string();
    let acts = h.respond(t, 200, "application/json", &body);
    assert_eq!(&*forward(&acts).header_value, format!("Bearer {jwt}"));
    let t = ticket(&h.request(2, "/orders", "tok-off"));
    assert_eq!(
        reject(&h.respond(t, 200, "application/json", r#"{"active":false}"#)).status,
        401
    );
}

#[test]
fn rfc7662_json_is_minted_and_inactive_never_cached_as_valid() {
    let mut cfg = base_config("rfc7662");
    cfg["authorization_server"]
        .as_object_mut()
        .unwrap()
        .remove("jwks_uri");
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request(1, "/orders", "tok"));
    let acts = h.respond(
        t,
        200,
        "application/json",
        &FakeAs::claims(h.now, "orders:read").to_string(),
    );
    let jwt = forward(&acts)
        .header_value
        .strip_prefix("Bearer ")
        .unwrap()
        .to_string();
    assert_eq!(jwt_claims(&jwt)["client_id"], "app");
    let t = ticket(&h.request(2, "/orders", "tok-off"));
    assert_eq!(
        reject(&h.respond(t, 200, "application/json", r#"{"active":false}"#)).status,
        401
    );
    h.advance(11_000); // past negative_ttl
    assert_eq!(
        introspects(&h.request(3, "/orders", "tok-off")).len(),
        1,
        "inactive is re-asked, never served as valid"
    );
}

#[test]
fn cache_bytes_follow_jwts_minted_on_hits() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let first = forward(&active_9701(&mut h, t, "orders:read orders:admin"))
        .header_value
        .clone();
    let one_route = h.edge.stats().cache_bytes;
    // A hit that reuses the JWT minted at the miss changes nothing.
    assert_eq!(forward(&h.request(2, "/orders", "tok")).header_value, first);
    assert_eq!(h.edge.stats().cache_bytes, one_route);
    // A hit on a second route mints one more JWT into the same entry: counted, JWT and all; a
    // third route's JWT costs its own length plus the same per-JWT overhead (whatever the
    // implementation's constant is).
    let admin = forward(&h.request(3, "/admin", "tok")).header_value.clone();
    let two_routes = h.edge.stats().cache_bytes;
    let public = forward(&h.request(31, "/public", "tok"))
        .header_value
        .clone();
    let three_routes = h.edge.stats().cache_bytes;
    assert!(
        two_routes >= one_route + admin.len(),
        "the JWT's bytes count"
    );
    assert!(
        three_routes >= two_routes + public.len(),
        "the JWT's bytes count"
    );
    assert_eq!(
        two_routes - one_route - admin.len(),
        three_routes - two_routes - public.len(),
        "one per-JWT overhead"
    );
    let two_routes = three_routes;
    // Past half the assertion lifetime the /orders JWT is replaced: old size out, new size in.
    h.now += 31_000;
    let again = forward(&h.request(4, "/orders", "tok"))
        .header_value
        .clone();
    assert_ne!(again, first);
    assert_eq!(
        h.edge.stats().cache_bytes,
        two_routes + again.len() - first.len()
    );
}

#[test]
fn rfc9701_and_rfc7662_require_assertions() {
    for d in ["rfc9701", "rfc7662"] {
        let mut cfg = base_config(d);
        cfg.as_object_mut().unwrap().remove("assertions");
        let err = phantom_edge_core::RawConfig::from_value(cfg)
            .unwrap()
            .resolve(&|_| None)
            .unwrap_err();
        assert_eq!(err.field, "assertions");
    }
}

// 4. JWKS -----------------------------------------------------------------------------------

#[test]
fn unknown_kid_triggers_one_rate_limited_refetch() {
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
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks)),
        "{acts:?}"
    );
    assert!(
        rejects(&acts).is_empty() && forwards(&acts).is_empty(),
        "parked until the JWKS arrives"
    );
    let jwks = json!({"keys": [h.fake.ed.jwk, rotated.jwk]}).to_string();
    h.edge.handle_jwks(h.now, Ok(jwks.as_bytes()));
    forward(&h.edge.drain_actions());

    // Another unknown kid within jwks_min_refresh: no refetch, fail closed.
    let stranger = Signer::ed25519(EDGE_ED25519, Some("stranger"));
    let t = ticket(&h.request(2, "/orders", "tok2"));
    let body = h
        .fake
        .rfc9701(&stranger, FakeAs::claims(h.now, "orders:read"), h.now);
    let acts = h.respond(t, 200, RFC9701_CT, &body);
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
    );
    assert_eq!(reject(&acts).status, 503);
}

#[test]
fn jwks_without_usable_keys_is_refused() {
    let mut h = Harness::new(base_config("rfc9701"));
    // Past jwks_refresh (10 min), the next answer verified fetches the JWKS again.
    h.advance(601_000);
    let t = ticket(&h.request(1, "/orders", "tok-0"));
    let acts = active_9701(&mut h, t, "orders:read");
    forward(&acts);
    assert!(fetches_jwks(&acts));
    h.edge
        .handle_jwks(h.now, Ok(br#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#));
    let acts = h.edge.drain_actions();
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Audit(e) if e.kind == AuditKind::JwksFailed))
    );
    // The previous keys are kept.
    let t = ticket(&h.request(1, "/orders", "tok"));
    forward(&active_9701(&mut h, t, "orders:read"));
}

// 5. Cache ----------------------------------------------------------------------------------

#[test]
fn cache_hits_skip_the_as_but_not_authorization() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    forward(&active_9701(&mut h, t, "orders:read"));
    let acts = h.request(2, "/orders/9", "tok");
    assert!(introspects(&acts).is_empty());
    forward(&acts);
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Audit(e) if e.kind == AuditKind::CacheHit))
    );
    // Same cached token, route needing another scope: refused on the hit (invariant 4).
    let acts = h.request(3, "/admin", "tok");
    assert!(introspects(&acts).is_empty());
    assert_eq!(reject(&acts).status, 403);
}

#[test]
fn cache_ttl_is_bounded_by_max_age_exp_and_max_ttl() {
    // max-age 30 s
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let body = h
        .fake
        .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), h.now);
    forward(&h.respond_headers(
        t,
        200,
        &[
            ("content-type", RFC9701_CT),
            ("cache-control", "max-age=30"),
        ],
        &body,
    ));
    h.advance(29_000);
    assert!(introspects(&h.request(2, "/orders", "tok")).is_empty());
    h.advance(1_000);
    assert_eq!(introspects(&h.request(3, "/orders", "tok")).len(), 1);

    // token exp in 60 s (skew 5 s) with max_ttl 300 s
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["exp"] = json!(h.now / 1000 + 60);
    forward(&h.respond_9701(t, c));
    assert_cached_for(&mut h, 55_000);

    // max_ttl 300 s
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    forward(&active_9701(&mut h, t, "orders:read"));
    assert_cached_for(&mut h, 300_000);
}

#[test]
fn no_store_is_honoured_unless_configured_otherwise() {
    for (ignore, cached) in [(false, false), (true, true)] {
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["ignore_no_store"] = json!(ignore);
        let mut h = Harness::new(cfg);
        let t = ticket(&h.request(1, "/orders", "tok"));
        let body = h
            .fake
            .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), h.now);
        let acts = h.respond_headers(
            t,
            200,
            &[("content-type", RFC9701_CT), ("cache-control", "no-store")],
            &body,
        );
        forward(&acts);
        let warned = |acts: &[Action]| {
            acts.iter().any(|a| {
                matches!(a, Action::Audit(e) if e.kind == AuditKind::NotCacheable
                    && e.level == phantom_edge_core::AuditLevel::Warn)
            })
        };
        // Said once, at warn level, when the answer is not cached because of no-store.
        assert_eq!(warned(&acts), !cached, "ignore_no_store = {ignore}");
        let acts = h.request(2, "/orders", "tok");
        assert_eq!(introspects(&acts).is_empty(), cached);
        if !cached {
            let t = ticket(&acts);
            let body = h
                .fake
                .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), h.now);
            let acts = h.respond_headers(
                t,
                200,
                &[("content-type", RFC9701_CT), ("cache-control", "no-store")],
                &body,
            );
            forward(&acts);
            assert!(!warned(&acts), "only the first time");
        }
    }
}

/// Sends an RFC 9701 answer for `ticket` signed at `iat_ms`, with extra response `headers`.
fn respond_9701_with(h: &mut Harness, ticket: u64, iat_ms: u64, headers: &[(&str, &str)]) {
    let body = h
        .fake
        .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), iat_ms);
    let mut all = vec![("content-type", RFC9701_CT)];
    all.extend_from_slice(headers);
    forward(&h.respond_headers(ticket, 200, &all, &body));
}

/// The answer for "tok" is served from the cache for exactly `ms` (requests 2 and 3).
fn assert_cached_for(h: &mut Harness, ms: u64) {
    h.advance(ms - 1);
    assert!(introspects(&h.request(2, "/orders", "tok")).is_empty());
    h.advance(1);
    assert_eq!(introspects(&h.request(3, "/orders", "tok")).len(), 1);
}

#[test]
fn age_header_counts_against_max_age() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let now = h.now;
    respond_9701_with(
        &mut h,
        t,
        now,
        &[("cache-control", "max-age=30"), ("age", "25")],
    );
    // RFC 9111 §4.2.3: the answer is already 25 s old, so it is fresh for 5 s more.
    assert_cached_for(&mut h, 5_000);
}

#[test]
fn age_counts_against_max_ttl_without_max_age() {
    // No max-age: the edge's own max_ttl (300 s here) is counted from when the AS answered too
    // (a 290 s old answer was kept 300 s more).
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let now = h.now;
    respond_9701_with(&mut h, t, now, &[("age", "290")]);
    assert_cached_for(&mut h, 10_000);
}

#[test]
fn age_beyond_max_age_is_not_cached() {
    // One Age past max-age, and several Age headers (the largest counts).
    for ages in [&["40"][..], &["5", "40"], &["5, 40"]] {
        let mut h = Harness::new(base_config("rfc9701"));
        let t = ticket(&h.request(1, "/orders", "tok"));
        let mut headers = vec![("cache-control", "max-age=30")];
        headers.extend(ages.iter().map(|a| ("age", *a)));
        let now = h.now;
        respond_9701_with(&mut h, t, now, &headers);
        assert_eq!(
            introspects(&h.request(2, "/orders", "tok")).len(),
            1,
            "Age {ages:?} with max-age=30 was cached"
        );
    }
}

#[test]
fn unreadable_age_is_not_cached() {
    for (age, max_age) in [
        ("abc", None),
        ("-1", Some("max-age=30")),
        ("1.5", Some("max-age=30")),
        ("", None),
    ] {
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["ignore_no_store"] = json!(true);
        let mut h = Harness::new(cfg);
        let t = ticket(&h.request(1, "/orders", "tok"));
        let mut headers = vec![("age", age)];
        headers.extend(max_age.map(|m| ("cache-control", m)));
        let now = h.now;
        respond_9701_with(&mut h, t, now, &headers);
        assert_eq!(
            introspects(&h.request(2, "/orders", "tok")).len(),
            1,
            "Age {age:?} ({max_age:?}) was cached"
        );
    }
}

#[test]
fn rfc9701_iat_counts_against_max_age() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    // Signed 50 s ago (accepted: response_max_age 60 s + leeway 30 s): fresh for 10 s more.
    let iat = h.now - 50_000;
    respond_9701_with(&mut h, t, iat, &[("cache-control", "max-age=60")]);
    assert_cached_for(&mut h, 10_000);
}

#[test]
fn rfc9701_response_exp_bounds_the_cache() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let now_s = h.now / 1000;
    let body = h.fake.ed.sign(
        "token-introspection+jwt",
        &json!({
            "iss": ISSUER, "aud": "gateway", "iat": now_s, "exp": now_s + 10,
            "token_introspection": FakeAs::claims(h.now, "orders:read")
        }),
    );
    forward(&h.respond(t, 200, RFC9701_CT, &body));
    assert_cached_for(&mut h, 10_000);
}

#[test]
fn ignore_no_store_still_honours_an_unreadable_max_age() {
    // docs/configuration.md: `max-age` is always honoured; an unreadable one means already stale.
    for max_age in ["max-age=-1", "max-age=1.5", "max-age=abc", "max-age=+5"] {
        let mut cfg = base_config("rfc9701");
        cfg["cache"]["ignore_no_store"] = json!(true);
        let mut h = Harness::new(cfg);
        let t = ticket(&h.request(1, "/orders", "tok"));
        let now = h.now;
        respond_9701_with(&mut h, t, now, &[("cache-control", max_age)]);
        h.advance(1_000);
        assert_eq!(
            introspects(&h.request(2, "/orders", "tok")).len(),
            1,
            "{max_age} was cached"
        );
    }
}

#[test]
fn negative_cache_answers_without_the_as_for_negative_ttl() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "bad"));
    reject(&h.respond_9701(t, json!({"active": false})));
    h.advance(9_999);
    let acts = h.request(2, "/orders", "bad");
    assert!(introspects(&acts).is_empty());
    assert_eq!(reject(&acts).status, 401);
    h.advance(1);
    assert_eq!(introspects(&h.request(3, "/orders", "bad")).len(), 1);
}

#[test]
fn cache_is_bounded_lru() {
    let mut cfg = base_config("rfc9701");
    cfg["cache"]["max_entries"] = json!(3);
    let mut h = Harness::new(cfg);
    for i in 0..3u64 {
        let t = ticket(&h.request(i, "/orders", &format!("tok{i}")));
        forward(&active_9701(&mut h, t, "orders:read"));
    }
    // tok0 is the oldest insert but the most recently used: LRU evicts tok1, then tok2
    // (a FIFO cache would evict tok0 first).
    forward(&h.request(3, "/orders", "tok0"));
    for i in 3..5u64 {
        let t = ticket(&h.request(10 + i, "/orders", &format!("tok{i}")));
        forward(&active_9701(&mut h, t, "orders:read"));
    }
    assert_eq!(h.edge.stats().cache_entries, 3);
    assert_eq!(h.edge.stats().evictions, 2);
    assert!(
        introspects(&h.request(20, "/orders", "tok0")).is_empty(),
        "recently used: kept"
    );
    assert!(introspects(&h.request(21, "/orders", "tok4")).is_empty());
    assert_eq!(
        introspects(&h.request(22, "/orders", "tok1")).len(),
        1,
        "least recently used: evicted"
    );
}

// 6. Coalescing -----------------------------------------------------------------------------

#[test]
fn concurrent_misses_coalesce_into_one_introspection() {
    let mut h = Harness::new(base_config("rfc9701"));
    let mut all = Vec::new();
    for id in 0..100 {
        all.extend(h.request(id, "/orders", "same-token"));
    }
    assert_eq!(introspects(&all).len(), 1);
    let t = ticket(&all);
    let acts = active_9701(&mut h, t, "orders:read");
    let mut ids: Vec<u64> = forwards(&acts).iter().map(|f| f.request_id).collect();
    ids.sort();
    assert_eq!(
        ids,
        (0..100).collect::<Vec<_>>(),
        "every waiter gets the same answer"
    );
    assert_eq!(h.edge.stats().pending, 0);
}

#[test]
fn pending_set_and_waiters_are_bounded() {
    let mut cfg = base_config("rfc9701");
    cfg["cache"]["max_pending"] = json!(2);
    cfg["cache"]["max_waiters"] = json!(2);
    let mut h = Harness::new(cfg);
    h.request(1, "/orders", "a");
    h.request(2, "/orders", "b");
    let r = reject(&h.request(3, "/orders", "c")).clone();
    assert_eq!((r.status, r.reason), (503, Reason::Overloaded));
    h.request(4, "/orders", "a");
    assert_eq!(
        reject(&h.request(5, "/orders", "a")).reason,
        Reason::Overloaded
    );
}

#[test]
fn waiting_requests_are_bounded_over_all_tokens() {
    let mut cfg = base_config("rfc9701");
    cfg["cache"]["max_waiting"] = json!(3);
    let mut h = Harness::new(cfg);
    let ta = ticket(&h.request(1, "/orders", "a"));
    h.request(2, "/orders", "a");
    h.request(3, "/orders", "b");
    assert_eq!(h.edge.stats().waiters, 3);
    for (id, token) in [(4, "c"), (5, "a")] {
        let r = reject(&h.request(id, "/orders", token)).clone();
        assert_eq!((r.status, r.reason), (503, Reason::Overloaded), "{token}");
    }
    assert_eq!((h.edge.stats().pending, h.edge.stats().waiters), (2, 3));
    // Answering a's ticket lets both its waiters through and frees their places.
    let claims = FakeAs::claims(h.now, "orders:read");
    assert_eq!(forwards(&h.respond_9701(ta, claims)).len(), 2);
    assert_eq!(h.edge.stats().waiters, 1);
    assert!(rejects(&h.request(6, "/orders", "c")).is_empty());
    assert_eq!((h.edge.stats().pending, h.edge.stats().waiters), (2, 2));
    // A timed-out ticket frees its places too.
    h.advance(60_000);
    let _ = h.edge.drain_actions();
    assert_eq!((h.edge.stats().pending, h.edge.stats().waiters), (0, 0));
}

#[test]
fn late_answers_are_ignored_and_unknown_tickets_are_errors() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    h.advance(2_000);
    let _ = h.edge.drain_actions();
    let body = h
        .fake
        .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), h.now);
    let resp = HttpResponse {
        status: 200,
        headers: &[("content-type", RFC9701_CT)],
        body: body.as_bytes(),
    };
    h.edge
        .handle_introspection_response(h.now, t, &resp)
        .unwrap();
    assert!(forwards(&h.edge.drain_actions()).is_empty());
    assert!(
        h.edge
            .handle_introspection_response(h.now, 999, &resp)
            .is_err()
    );
}

// 7. Revocation -----------------------------------------------------------------------------

fn cached(h: &mut Harness, token: &str) {
    let t = ticket(&h.request(1, "/orders", token));
    forward(&active_9701(h, t, "orders:read"));
}

#[test]
fn revocation_by_every_selector_stops_a_cached_token() {
    let selectors = [
        Selector::Token("tok".into()),
        Selector::Jti("jti-1".into()),
        Selector::Sub("alice".into()),
        Selector::ClientId("app".into()),
    ];
    for s in selectors {
        let mut h = Harness::new(base_config("rfc9701"));
        cached(&mut h, "tok");
        h.edge
            .handle_revocation(
                h.now,
                Revocation {
                    selector: s.clone(),
                    until: None,
                    keep_until: None,
                    since: None,
                },
                Origin::Shared,
            )
            .unwrap();
        let acts = h.request(2, "/orders", "tok");
        assert_eq!(reject(&acts).reason, Reason::Revoked, "{s:?}");
    }
    // by fingerprint, as printed in audit events
    let mut h = Harness::new(base_config("rfc9701"));
    cached(&mut h, "tok");
    let fp = h.edge.fingerprint("tok");
    let body = format!(r#"{{"fingerprint":"{fp}"}}"#);
    h.edge
        .handle_revocation(
            h.now,
            Revocation::from_json(body.as_bytes()).unwrap(),
            Origin::Shared,
        )
        .unwrap();
    assert_eq!(
        reject(&h.request(2, "/orders", "tok")).reason,
        Reason::Revoked
    );
}

#[test]
fn revocation_while_in_flight_wins() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector: Selector::Sid("s1".into()),
                until: None,
                keep_until: None,
                since: None,
            },
            Origin::Local,
        )
        .unwrap();
    let acts = h.edge.drain_actions();
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::SharedPublish(p) if p.message.contains("\"sid\":\"s1\"")))
    );
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["sid"] = json!("s1");
    let acts = h.respond_9701(t, c);
    assert_eq!(reject(&acts).reason, Reason::Revoked);
    // and never later either
    assert_eq!(
        reject(&h.request(2, "/orders", "tok")).reason,
        Reason::Revoked
    );
}

#[test]
fn a_new_token_for_a_revoked_subject_issued_later_works() {
    let mut h = Harness::new(base_config("rfc9701"));
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector: Selector::Sub("alice".into()),
                until: None,
                keep_until: None,
                since: None,
            },
            Origin::Shared,
        )
        .unwrap();
    h.advance(2_000);
    let t = ticket(&h.request(1, "/orders", "fresh"));
    forward(&active_9701(&mut h, t, "orders:read"));
}

#[test]
fn published_revocations_never_carry_the_token() {
    let mut h = Harness::new(base_config("rfc9701"));
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector: Selector::Token("raw-secret-token".into()),
                until: None,
                keep_until: None,
                since: None,
            },
            Origin::Local,
        )
        .unwrap();
    let acts = h.edge.drain_actions();
    let Some(Action::SharedPublish(p)) =
        acts.iter().find(|a| matches!(a, Action::SharedPublish(_)))
    else {
        panic!()
    };
    assert!(!p.message.contains("raw-secret-token"));
    assert!(
        p.message
            .contains(&h.edge.fingerprint("raw-secret-token").to_string())
    );
}

#[test]
fn admin_route_is_authenticated() {
    let mut h = Harness::new(base_config("rfc9701"));
    cached(&mut h, "tok");
    let body = br#"{"token":"tok"}"#;
    let e = h
        .edge
        .handle_admin_revocation(h.now, Some("application/json"), None, body)
        .unwrap_err();
    assert_eq!(e.status(), 401);
    let e = h
        .edge
        .handle_admin_revocation(h.now, Some("application/json"), Some("Bearer wrong"), body)
        .unwrap_err();
    assert_eq!(e.status(), 401);
    let ok = Some("Bearer admin-secret-0123456789");
    let e = h
        .edge
        .handle_admin_revocation(h.now, Some("application/json"), ok, b"{")
        .unwrap_err();
    assert_eq!(e.status(), 400);
    h.edge
        .handle_admin_revocation(h.now, Some("application/json; charset=utf-8"), ok, body)
        .unwrap();
    assert_eq!(
        reject(&h.request(2, "/orders", "tok")).reason,
        Reason::Revoked
    );
}

#[test]
fn security_event_tokens_revoke_sessions() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["sid"] = json!("sess-9");
    forward(&h.respond_9701(t, c));
    let set_signer = Signer::ed25519(SET_ED25519, None);
    let set = set_signer.sign("secevent+jwt", &json!({
        "iss": ISSUER, "jti": "set-1", "iat": h.now / 1000,
        "sub_id": {"format": "opaque", "id": "sess-9"},
        "events": {"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {"event_timestamp": h.now / 1000}}
    }));
    // Wrong signer: refused.
    let forged = Signer::ed25519(EDGE_ED25519, None).sign("secevent+jwt", &jwt_claims(&set));
    assert_eq!(
        h.edge
            .handle_admin_revocation(
                h.now,
                Some("application/secevent+jwt"),
                None,
                forged.as_bytes()
            )
            .unwrap_err()
            .status(),
        401
    );
    forward(&h.request(2, "/orders", "tok"));
    h.edge
        .handle_admin_revocation(
            h.now,
            Some("application/secevent+jwt"),
            None,
            set.as_bytes(),
        )
        .unwrap();
    assert_eq!(
        reject(&h.request(3, "/orders", "tok")).reason,
        Reason::Revoked
    );
    // Replays are accepted idempotently.
    h.edge.handle_security_event(h.now, &set).unwrap();
}

#[test]
fn an_old_security_event_posted_again_spares_newer_sessions() {
    // Anyone may post a SET (its signature is the credential). Posted again after its jti left
    // the replay window, the same SET revoked alice's session of two days later: a SET older
    // than that window is refused now.
    let mut h = Harness::new(base_config("rfc9701"));
    let set = Signer::ed25519(SET_ED25519, None).sign(
        "secevent+jwt",
        &json!({
            "iss": ISSUER, "jti": "set-1", "iat": h.now / 1000,
            "sub_id": {"format": "iss_sub", "iss": ISSUER, "sub": "alice"},
            "events": {"https://schemas.openid.net/secevent/caep/event-type/session-revoked": {}}
        }),
    );
    let post = |h: &mut Harness| {
        let r = h.edge.handle_admin_revocation(
            h.now,
            Some("application/secevent+jwt"),
            None,
            set.as_bytes(),
        );
        let _ = h.edge.drain_actions();
        r
    };
    let t = ticket(&h.request(1, "/orders", "old"));
    forward(&active_9701(&mut h, t, "orders:read"));
    post(&mut h).unwrap();
    assert_eq!(
        reject(&h.request(2, "/orders", "old")).reason,
        Reason::Revoked
    );
    // Within the window (a day): a replay is recognised and changes nothing.
    h.advance(86_400_000 - 1_000);
    post(&mut h).unwrap();
    h.advance(86_400_000 + 1_000);
    let t = ticket(&h.request(3, "/orders", "fresh"));
    forward(&active_9701(&mut h, t, "orders:read"));
    assert_eq!(post(&mut h).unwrap_err().status(), 400);
    forward(&h.request(4, "/orders", "fresh"));
}

#[test]
fn a_security_event_delivered_late_covers_tokens_issued_before_it_arrived() {
    // The SET says when it was made (iat); tokens issued between then and its delivery (or
    // under a transmitter clock behind the AS's) are covered, as by any revocation handled now.
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["iat"] = json!(h.now / 1000 - 2);
    forward(&h.respond_9701(t, c));
    let set = Signer::ed25519(SET_ED25519, None).sign(
        "secevent+jwt",
        &json!({
            "iss": ISSUER, "jti": "set-late", "iat": h.now / 1000 - 5,
            "sub_id": {"format": "iss_sub", "iss": ISSUER, "sub": "alice"},
            "events": {"https://schemas.openid.net/secevent/risc/event-type/account-disabled": {}}
        }),
    );
    h.edge
        .handle_admin_revocation(
            h.now,
            Some("application/secevent+jwt"),
            None,
            set.as_bytes(),
        )
        .unwrap();
    assert_eq!(
        reject(&h.request(2, "/orders", "tok")).reason,
        Reason::Revoked
    );
}

#[test]
fn revocations_expire_and_stay_bounded() {
    let mut cfg = base_config("rfc9701");
    cfg["revocation"]["max_entries"] = json!(3);
    let mut h = Harness::new(cfg);
    for i in 0..10 {
        let sel = Selector::Jti(format!("j{i}"));
        h.edge
            .handle_revocation(
                h.now,
                Revocation {
                    selector: sel,
                    until: Some(h.now / 1000 + 60),
                    keep_until: None,
                    since: None,
                },
                Origin::Shared,
            )
            .unwrap();
    }
    assert_eq!(h.edge.stats().revocations, 3);
    h.advance(61_000);
    h.advance(10_000);
    assert_eq!(h.edge.stats().revocations, 0);
}

// 8. Forwarding -----------------------------------------------------------------------------

#[test]
fn upstream_header_name_and_scheme_are_configurable() {
    let mut cfg = base_config("rfc9701");
    cfg["upstream"] =
        json!({"header": "X-Internal-JWT", "scheme": "", "strip_headers": ["Cookie"]});
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request(1, "/orders", "tok"));
    let acts = active_9701(&mut h, t, "orders:read");
    let f = forward(&acts);
    assert_eq!(&*f.header_name, "x-internal-jwt");
    assert_eq!(
        f.header_value.split('.').count(),
        3,
        "bare JWT without scheme"
    );
    for s in [
        "authorization",
        "dpop",
        "x-original-url",
        "x-rewrite-url",
        "cookie",
    ] {
        assert!(f.strip_headers.iter().any(|h| h == s), "{s}");
    }
    // The edge-level view (what the component hands out once) says the same as every Forward.
    assert_eq!(h.edge.forward_header_name(), &*f.header_name);
    assert_eq!(h.edge.strip_headers(), &*f.strip_headers);
}

// Sender constraints -------------------------------------------------------------------------

#[test]
fn dpop_bound_tokens_need_a_matching_proof() {
    let client = Signer::es256(CLIENT_DPOP_ES256, None);
    let jkt = jkt(&client);
    let mut h = Harness::new(base_config("rfc9701"));
    let htu = "https://api.example/orders";
    let proof = dpop_proof(&client, "GET", htu, "tok", h.now / 1000, "p1");
    let acts = h.request_with(
        1,
        "GET",
        "/orders?x=1",
        &[("authorization", "DPoP tok"), ("dpop", &proof)],
        None,
    );
    let t = ticket(&acts);
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["cnf"] = json!({"jkt": jkt});
    let acts = h.respond_9701(t, c);
    let f = forward(&acts);
    assert_eq!(
        jwt_claims(f.header_value.strip_prefix("Bearer ").unwrap())["cnf"]["jkt"],
        jkt.as_str()
    );

    // Replayed proof.
    let r = reject(&h.request_with(
        2,
        "GET",
        "/orders",
        &[("authorization", "DPoP tok"), ("dpop", &proof)],
        None,
    ))
    .clone();
    assert_eq!(r.reason, Reason::InvalidDpopProof);
    assert!(r.www_authenticate.unwrap().starts_with("DPoP "));
    // Presented as Bearer: refused with a DPoP challenge (RFC 9449 §7.2).
    let r = reject(&h.request(3, "/orders", "tok")).clone();
    assert_eq!((r.status, r.reason), (401, Reason::SenderMismatch));
    assert!(r.www_authenticate.unwrap().starts_with("DPoP "));
    // Wrong method, wrong URI, wrong token, stale.
    for (m, u, tok, iat) in [
        ("POST", htu, "tok", h.now / 1000),
        ("GET", "https://api.example/other", "tok", h.now / 1000),
        ("GET", htu, "other", h.now / 1000),
        ("GET", htu, "tok", h.now / 1000 - 3600),
    ] {
        let p = dpop_proof(&client, m, u, tok, iat, &format!("{m}{u}{tok}{iat}"));
        let acts = h.request_with(
            4,
            "GET",
            "/orders",
            &[("authorization", "DPoP tok"), ("dpop", &p)],
            None,
        );
        assert_eq!(
            reject(&acts).reason,
            Reason::InvalidDpopProof,
            "{m} {u} {tok} {iat}"
        );
    }
    // A different key with a valid proof: sender mismatch.
    let other = Signer::es256(AS_ES256, None);
    let p = dpop_proof(&other, "GET", htu, "tok", h.now / 1000, "p9");
    let acts = h.request_with(
        5,
        "GET",
        "/orders",
        &[("authorization", "DPoP tok"), ("dpop", &p)],
        None,
    );
    assert_eq!(reject(&acts).reason, Reason::SenderMismatch);
}

#[test]
fn dpop_origins_replace_the_requests_scheme_and_host_in_htu() {
    let client = Signer::es256(CLIENT_DPOP_ES256, None);
    let mut cfg = base_config("rfc9701");
    cfg["dpop"] = json!({"origins": ["https://Public.example:443", "http://127.0.0.1:8080"]});
    let mut h = Harness::new(cfg);
    let dpop_request = |h: &mut Harness, id: u64, htu: &str| {
        let p = dpop_proof(&client, "GET", htu, "tok", h.now / 1000, &format!("p{id}"));
        h.request_with(
            id,
            "GET",
            "/orders?x=1",
            &[("authorization", "DPoP tok"), ("dpop", &p)],
            None,
        )
    };
    // The request came in for api.example (its Host): a proof for that URI is not for this
    // edge's public origin.
    let acts = dpop_request(&mut h, 1, "https://api.example/orders");
    assert_eq!(reject(&acts).reason, Reason::InvalidDpopProof);
    let t = ticket(&dpop_request(&mut h, 2, "https://public.example/orders"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["cnf"] = json!({"jkt": jkt(&client)});
    assert_eq!(forwards(&h.respond_9701(t, c)).len(), 1);
    assert_eq!(
        forwards(&dpop_request(&mut h, 3, "http://127.0.0.1:8080/orders")).len(),
        1
    );
    let acts = dpop_request(&mut h, 4, "https://public.example/other");
    assert_eq!(reject(&acts).reason, Reason::InvalidDpopProof);

    for bad in [
        "https://public.example/api",
        "ftp://public.example",
        "public.example",
        "https://a?b",
    ] {
        let mut cfg = base_config("rfc9701");
        cfg["dpop"] = json!({"origins": [bad]});
        let e = phantom_edge_core::RawConfig::from_value(cfg)
            .unwrap()
            .resolve(&|_| None)
            .unwrap_err();
        assert_eq!(e.field, "dpop.origins", "{bad}");
    }
    let mut cfg = base_config("rfc9701");
    cfg["dpop"] = json!({"origins": []});
    let e = phantom_edge_core::RawConfig::from_value(cfg)
        .unwrap()
        .resolve(&|_| None)
        .unwrap_err();
    assert_eq!(e.field, "dpop.origins");
}

#[test]
fn certificate_bound_tokens_need_the_certificate() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request_with(
        1,
        "GET",
        "/orders",
        &[("authorization", "Bearer tok")],
        Some("thumb-A"),
    ));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["cnf"] = json!({"x5t#S256": "thumb-A"});
    forward(&h.respond_9701(t, c));
    let acts = h.request_with(
        2,
        "GET",
        "/orders",
        &[("authorization", "Bearer tok")],
        Some("thumb-B"),
    );
    assert_eq!(reject(&acts).reason, Reason::SenderMismatch);
    let acts = h.request_with(
        3,
        "GET",
        "/orders",
        &[("authorization", "Bearer tok")],
        None,
    );
    assert_eq!(reject(&acts).reason, Reason::SenderMismatch);
}

#[test]
fn a_stale_jwks_is_fetched_again_and_removed_keys_stop_verifying() {
    // The JWKS was fetched once at start and only again for an unknown `kid`: a key the AS had
    // removed (rotated out, compromised) verified answers until a restart.
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok-1"));
    let acts = active_9701(&mut h, t, "orders:read");
    forward(&acts);
    assert!(!fetches_jwks(&acts));
    // Past `jwks_refresh` (default 10 min): the next verification asks for the JWKS again,
    // and is itself still verified with the keys in use.
    h.advance(600_000);
    let t = ticket(&h.request(2, "/orders", "tok-2"));
    let acts = active_9701(&mut h, t, "orders:read");
    assert!(fetches_jwks(&acts), "{acts:?}");
    forward(&acts);
    // The AS now publishes only its ES256 key: answers signed with the removed Ed25519 key fail
    // (its kid is unknown now: one fetch for it, which does not bring it back).
    let es = h.fake.es.jwk.clone();
    h.jwks_of(&[&es]);
    let t = ticket(&h.request(3, "/orders", "tok-3"));
    let acts = active_9701(&mut h, t, "orders:read");
    assert!(fetches_jwks(&acts), "{acts:?}");
    let acts = h.jwks_of(&[&es]);
    assert_eq!(reject(&acts).status, 503, "{acts:?}");
    let t = ticket(&h.request(4, "/orders", "tok-4"));
    let body = h
        .fake
        .rfc9701(&h.fake.es, FakeAs::claims(h.now, "orders:read"), h.now);
    forward(&h.respond(t, 200, RFC9701_CT, &body));
}

#[test]
fn a_scheduled_jwks_refresh_leaves_the_unknown_kid_refetch_available() {
    // The AS rotates its key (oidc-provider makes new ones on every restart) just after a
    // scheduled refresh: the answer with the new kid must fetch the JWKS again, not get 503 for
    // jwks_min_refresh (the refresh had used up the unknown-kid allowance).
    let mut h = Harness::new(base_config("rfc9701"));
    h.advance(600_000);
    let t = ticket(&h.request(1, "/orders", "tok-1"));
    let acts = active_9701(&mut h, t, "orders:read");
    assert!(fetches_jwks(&acts), "{acts:?}");
    forward(&acts);
    let ed = h.fake.ed.jwk.clone();
    h.jwks_of(&[&ed]);
    h.advance(1_000);
    let rotated = Signer::ed25519(AS_ED25519, Some("as-ed-2"));
    let t = ticket(&h.request(2, "/orders", "tok-2"));
    let body = h
        .fake
        .rfc9701(&rotated, FakeAs::claims(h.now, "orders:read"), h.now);
    let acts = h.respond(t, 200, RFC9701_CT, &body);
    assert!(fetches_jwks(&acts), "{acts:?}");
    forward(&h.jwks_of(&[&rotated.jwk]));
}

#[test]
fn a_failed_jwks_fetch_is_retried_with_backoff_until_the_as_answers() {
    // The edge started before its authorization server: the start-up fetch fails. It must not
    // wait out jwks_min_refresh (30 s) before the first valid token can be verified.
    let fake = FakeAs::default();
    let mut edge = Edge::new(config(base_config("rfc9701")), [7; 32], T0);
    assert!(fetches_jwks(&edge.drain_actions()));
    edge.handle_jwks(T0 + 10, Err("connection refused"));
    let acts = edge.drain_actions();
    let failed = acts
        .iter()
        .find_map(|a| match a {
            Action::Audit(e) if e.kind == AuditKind::JwksFailed => e.detail.clone(),
            _ => None,
        })
        .expect("jwks_failed audited");
    assert!(failed.contains("retry in 500 ms"), "{failed}");
    // The retry is the core's own timer: 0.5 s, then 1 s, 2 s, ... (doubling).
    let mut at = T0 + 10;
    for backoff in [500, 1_000, 2_000, 4_000] {
        assert_eq!(edge.poll_timeout(), Some(at + backoff));
        edge.handle_timeout(at + backoff - 1);
        assert!(
            !fetches_jwks(&edge.drain_actions()),
            "not before {backoff} ms"
        );
        at += backoff;
        edge.handle_timeout(at);
        assert!(
            fetches_jwks(&edge.drain_actions()),
            "retried after {backoff} ms"
        );
        edge.handle_jwks(at, Err("status 502"));
        let _ = edge.drain_actions();
    }
    // The AS is back: the retry brings the keys, and a valid token is forwarded at once.
    at += 8_000;
    edge.handle_timeout(at);
    assert!(fetches_jwks(&edge.drain_actions()));
    let jwks = fake.jwks();
    edge.handle_jwks(at, Ok(jwks.as_bytes()));
    let _ = edge.drain_actions();
    assert_eq!(edge.poll_timeout(), None, "no retry after a success");
    let req = phantom_edge_core::Request {
        id: 1,
        method: "GET",
        scheme: "https",
        authority: "api.example",
        path: "/orders",
        headers: &[("authorization", "Bearer tok")],
        client_cert_thumbprint: None,
    };
    edge.handle_request(at, &req);
    let t = ticket(&edge.drain_actions());
    let body = fake.rfc9701(&fake.ed, FakeAs::claims(at, "orders:read"), at);
    let headers = [("content-type", RFC9701_CT)];
    let resp = HttpResponse {
        status: 200,
        headers: &headers,
        body: body.as_bytes(),
    };
    edge.handle_introspection_response(at, t, &resp).unwrap();
    forward(&edge.drain_actions());
}

#[test]
fn a_request_after_a_failed_jwks_fetch_fetches_again_without_the_unknown_kid_allowance() {
    // The start-up fetch failed (AS down); 3 s later the AS is up and a valid token's answer
    // arrives before the backoff timer fires: it fetches the keys then (it used to get 503 for
    // the rest of jwks_min_refresh, "JWKS refresh rate-limited"), and is forwarded.
    let mut edge = Edge::new(config(base_config("rfc9701")), [7; 32], T0);
    let fake = FakeAs::default();
    let _ = edge.drain_actions();
    edge.handle_jwks(T0, Err("connection refused"));
    let _ = edge.drain_actions();
    let request = |edge: &mut Edge, id: u64, now: u64, token: &str| {
        let auth = format!("Bearer {token}");
        let headers = [("authorization", auth.as_str())];
        let req = phantom_edge_core::Request {
            id,
            method: "GET",
            scheme: "https",
            authority: "api.example",
            path: "/orders",
            headers: &headers,
            client_cert_thumbprint: None,
        };
        edge.handle_request(now, &req);
        edge.drain_actions()
    };
    let answer = |edge: &mut Edge, t: u64, now: u64| {
        let body = fake.rfc9701(&fake.ed, FakeAs::claims(now, "orders:read"), now);
        let headers = [("content-type", RFC9701_CT)];
        let resp = HttpResponse {
            status: 200,
            headers: &headers,
            body: body.as_bytes(),
        };
        edge.handle_introspection_response(now, t, &resp).unwrap();
        edge.drain_actions()
    };
    // Within JWKS_RETRY_MS of the failed fetch: no new fetch, fail closed.
    let t = ticket(&request(&mut edge, 1, T0 + 100, "tok-1"));
    let acts = answer(&mut edge, t, T0 + 100);
    assert!(!fetches_jwks(&acts));
    assert_eq!(reject(&acts).status, 503);
    // Later, still well within jwks_min_refresh of the start-up demand: the answer parks and
    // fetches the keys.
    let t = ticket(&request(&mut edge, 2, T0 + 3_000, "tok-2"));
    let acts = answer(&mut edge, t, T0 + 3_000);
    assert!(fetches_jwks(&acts), "{acts:?}");
    assert!(rejects(&acts).is_empty() && forwards(&acts).is_empty());
    let jwks = fake.jwks();
    edge.handle_jwks(T0 + 3_010, Ok(jwks.as_bytes()));
    forward(&edge.drain_actions());
    // Keys in hand again: unknown kids are back on the jwks_min_refresh allowance.
    let stranger = Signer::ed25519(EDGE_ED25519, Some("stranger"));
    let t = ticket(&request(&mut edge, 3, T0 + 4_000, "tok-3"));
    let body = fake.rfc9701(
        &stranger,
        FakeAs::claims(T0 + 4_000, "orders:read"),
        T0 + 4_000,
    );
    let headers = [("content-type", RFC9701_CT)];
    let resp = HttpResponse {
        status: 200,
        headers: &headers,
        body: body.as_bytes(),
    };
    edge.handle_introspection_response(T0 + 4_000, t, &resp)
        .unwrap();
    // Keys in hand again: a kid never sought fetches once (a rotation)...
    assert!(fetches_jwks(&edge.drain_actions()));
    edge.handle_jwks(T0 + 4_010, Ok(jwks.as_bytes()));
    assert_eq!(reject(&edge.drain_actions()).status, 503, "not in the JWKS");
    // ... and the same unknown kid again waits for the jwks_min_refresh allowance.
    let t = ticket(&request(&mut edge, 4, T0 + 5_000, "tok-4"));
    edge.handle_introspection_response(T0 + 5_000, t, &resp)
        .unwrap();
    let acts = edge.drain_actions();
    assert!(!fetches_jwks(&acts));
    assert_eq!(reject(&acts).status, 503);
}

#[test]
fn a_rotated_kid_fetches_the_jwks_at_once_even_just_after_a_fetch() {
    // The AS restarted with new keys 10 s after the edge fetched its JWKS for an unknown kid:
    // the new kid fetches again at once (it waited out jwks_min_refresh: 30 s of 503s). Only a
    // bounded number of distinct new kids do so per jwks_min_refresh, never more often than
    // every 0.5 s; a kid already sought waits for the allowance.
    let mut h = Harness::new(base_config("rfc9701"));
    h.advance(31_000);
    let mut generation = 0;
    let mut rotate = |h: &mut Harness, id: u64| {
        generation += 1;
        let kid = format!("as-rotated-{generation}");
        let signer = Signer::ed25519(SET_ED25519, Some(&kid));
        let t = ticket(&h.request(id, "/orders", &format!("tok-{id}")));
        let body = h
            .fake
            .rfc9701(&signer, FakeAs::claims(h.now, "orders:read"), h.now);
        let acts = h.respond(t, 200, RFC9701_CT, &body);
        (acts, signer)
    };
    let (acts, first) = rotate(&mut h, 1);
    assert!(fetches_jwks(&acts));
    forward(&h.jwks_of(&[&first.jwk]));
    h.advance(10_000);
    let (acts, second) = rotate(&mut h, 2);
    assert!(
        fetches_jwks(&acts),
        "a new kid within jwks_min_refresh: {acts:?}"
    );
    forward(&h.jwks_of(&[&second.jwk]));
    // Within 0.5 s of that fetch: no fetch, even for a new kid.
    h.advance(100);
    let (acts, _) = rotate(&mut h, 3);
    assert!(!fetches_jwks(&acts));
    assert_eq!(reject(&acts).status, 503);
    // At most JWKS_NEW_KIDS (8) new kids per jwks_min_refresh: 2 used, 6 more, then no more.
    for id in 4..10 {
        h.advance(600);
        let (acts, _) = rotate(&mut h, id);
        assert!(fetches_jwks(&acts), "new kid {id}");
        reject(&h.jwks_of(&[&second.jwk]));
    }
    h.advance(600);
    let (acts, _) = rotate(&mut h, 10);
    assert!(!fetches_jwks(&acts), "the ninth new kid within 30 s");
    assert_eq!(reject(&acts).status, 503);
}

#[test]
fn new_introspections_are_rate_limited_while_known_tokens_are_served() {
    // A flood of random tokens must not take the authorization server down: beyond
    // max_introspections_per_second, a new token gets 503 with Retry-After and no introspection.
    let mut cfg = base_config("rfc9701");
    cfg["authorization_server"]["max_introspections_per_second"] = json!(3);
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request(0, "/orders", "cached"));
    forward(&active_9701(&mut h, t, "orders:read"));
    let t = ticket(&h.request(1, "/orders", "inactive"));
    reject(&h.respond_9701(t, json!({"active": false})));
    assert_eq!(introspects(&h.request(2, "/orders", "new-2")).len(), 1);
    let acts = h.request(3, "/orders", "new-3");
    assert!(introspects(&acts).is_empty(), "{acts:?}");
    let r = reject(&acts);
    assert_eq!(
        (r.status, r.reason, r.retry_after),
        (503, Reason::RateLimited, Some(1))
    );
    assert!(r.body.contains("temporarily_unavailable"));
    assert!(
        !r.body.contains("new-3") && r.fingerprint.is_some(),
        "token-free, fingerprinted"
    );
    // Cached, negatively cached and coalesced requests take no introspection: still answered.
    forward(&h.request(4, "/orders", "cached"));
    assert_eq!(reject(&h.request(5, "/orders", "inactive")).status, 401);
    let acts = h.request(6, "/orders", "new-2");
    assert!(acts.is_empty() || rejects(&acts).is_empty(), "{acts:?}");
    // The bucket refills at 3 per second: one more after a third of a second, not before.
    h.now += 333;
    assert_eq!(
        reject(&h.request(7, "/orders", "new-7")).reason,
        Reason::RateLimited
    );
    h.now += 1;
    assert_eq!(introspects(&h.request(8, "/orders", "new-8")).len(), 1);
    assert_eq!(h.edge.metrics().rate_limited, 2);
    assert!(
        h.edge
            .prometheus()
            .contains("phantom_edge_rate_limited_total 2")
    );
    // It holds at most one second's worth: after a long quiet spell, 3 new tokens, not more.
    h.now += 60_000;
    for i in 0..3 {
        assert_eq!(
            introspects(&h.request(20 + i, "/orders", &format!("burst-{i}"))).len(),
            1
        );
    }
    assert_eq!(
        reject(&h.request(30, "/orders", "burst-4")).reason,
        Reason::RateLimited
    );
}

#[test]
fn oauth_error_answers_are_decided_by_their_code() {
    // oidc-provider answers a JWT-shaped token it did not issue with 400 unsupported_token_type:
    // that token is not valid (401, cached negatively), not an outage (503).
    let mut h = Harness::new(base_config("rfc9701"));
    let token_errors = ["unsupported_token_type", "invalid_token", "invalid_grant"];
    for (i, code) in token_errors.iter().enumerate() {
        let tok = format!("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln-{i}");
        let t = ticket(&h.request(i as u64, "/orders", &tok));
        let body = format!(r#"{{"error":"{code}","error_description":"x"}}"#);
        let acts = h.respond(t, 400, "application/json", &body);
        let r = reject(&acts);
        assert_eq!((r.status, r.reason), (401, Reason::Inactive), "{code}");
        assert!(
            r.www_authenticate
                .as_deref()
                .is_some_and(|w| w.contains("error=\"invalid_token\"")),
            "{code}: {r:?}"
        );
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::Audit(e) if e.kind == AuditKind::AsFailure)),
            "{code}: not an AS failure"
        );
        // Negatively cached: the next request does not ask the AS again.
        let acts = h.request(100 + i as u64, "/orders", &tok);
        assert!(introspects(&acts).is_empty(), "{code}");
        assert_eq!(reject(&acts).status, 401);
    }
    // Our own client refused, our request broken, or no OAuth error at all: fail closed, and
    // never cached.
    let failures: [(&str, Reason); 6] = [
        (r#"{"error":"invalid_client"}"#, Reason::ClientAuthFailed),
        (
            r#"{"error":"unauthorized_client"}"#,
            Reason::ClientAuthFailed,
        ),
        (r#"{"error":"invalid_request"}"#, Reason::Unavailable),
        (r#"{"error":"something_else"}"#, Reason::Unavailable),
        (r#"{"active":false}"#, Reason::Unavailable),
        ("<html>Bad Request</html>", Reason::Unavailable),
    ];
    for (i, (body, reason)) in failures.iter().enumerate() {
        let tok = format!("tok-400-{i}");
        let t = ticket(&h.request(200 + i as u64, "/orders", &tok));
        let acts = h.respond(t, 400, "application/json", body);
        let r = reject(&acts);
        assert_eq!((r.status, r.reason), (503, *reason), "{body}");
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Audit(e) if e.kind == AuditKind::AsFailure)),
            "{body}"
        );
        assert_eq!(
            introspects(&h.request(300 + i as u64, "/orders", &tok)).len(),
            1,
            "{body}: not cached"
        );
    }
}

#[test]
fn non_ascii_case_variants_of_a_route_are_ambiguous() {
    // /CAFÉ is /café to .NET's OrdinalIgnoreCase and Java's equalsIgnoreCase: a token without
    // the /café route's scope was forwarded under the catch-all.
    let mut cfg = base_config("rfc9701");
    cfg["routes"] = json!([
        { "path_prefix": "/caf\u{e9}", "required_scopes": ["orders:admin"] },
        { "path_prefix": "/adm\u{ed}n", "required_scopes": ["orders:admin"] },
        { "path_prefix": "/" }
    ]);
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request(1, "/x", "tok"));
    forward(&active_9701(&mut h, t, "orders:read"));
    for (id, path) in [
        (2, "/CAF\u{c9}/x"),
        (3, "/caf%C3%89/x"),
        (4, "/CAF%C3%89/x"),
        (5, "/ADM\u{cd}N/x"),
    ] {
        assert_eq!(
            reject(&h.request(id, path, "tok")).reason,
            Reason::AmbiguousPath,
            "{path}"
        );
    }
    // The route as written is the route (and its scope is still required).
    assert_eq!(
        reject(&h.request(6, "/caf\u{e9}/x", "tok")).reason,
        Reason::InsufficientScope
    );
}

#[test]
fn keys_of_two_types_may_share_a_kid() {
    // RFC 7517 §4.5: the JWS alg picks among them (the first key with the kid was taken, and
    // an ES256 answer signed with the second got 503).
    let mut h = Harness::raw(base_config("rfc9701"));
    let ed = Signer::ed25519(AS_ED25519, Some("k1"));
    let es = Signer::es256(AS_ES256, Some("k1"));
    h.jwks_of(&[&ed.jwk, &es.jwk]);
    for (id, signer) in [(1, &es), (2, &ed)] {
        let token = format!("tok-{id}");
        let t = ticket(&h.request(id, "/orders", &token));
        let body = h
            .fake
            .rfc9701(signer, FakeAs::claims(h.now, "orders:read"), h.now);
        forward(&h.respond(t, 200, RFC9701_CT, &body));
    }
}

#[test]
fn tokens_bound_by_a_method_the_edge_cannot_check_are_refused() {
    // RFC 7800 `jwk` / `kid` / `jku` bindings (and any other member) cannot be enforced here:
    // the token must not pass as a bearer token (it did: `cnf` members other than `jkt` and
    // `x5t#S256` were dropped), alone or next to a method the edge does check.
    let bindings = [
        json!({"jwk": {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}}),
        json!({"kid": "client-key-1"}),
        json!({"jku": "https://client.example/jwks"}),
        json!({"x5t#S256": "thumb-A", "jwk": {"kty": "EC"}}),
    ];
    for (i, cnf) in bindings.into_iter().enumerate() {
        let mut h = Harness::new(base_config("rfc9701"));
        let t = ticket(&h.request_with(
            1,
            "GET",
            "/orders",
            &[("authorization", "Bearer tok")],
            Some("thumb-A"),
        ));
        let mut c = FakeAs::claims(h.now, "orders:read");
        c["cnf"] = cnf;
        let acts = h.respond_9701(t, c);
        assert_eq!(reject(&acts).reason, Reason::SenderMismatch, "binding {i}");
        // Cached as such: the next request is refused without asking the AS again.
        let acts = h.request(2, "/orders", "tok");
        assert!(introspects(&acts).is_empty(), "binding {i}");
        assert_eq!(reject(&acts).reason, Reason::SenderMismatch, "binding {i}");
    }
    // An empty `cnf` binds nothing.
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["cnf"] = json!({});
    forward(&h.respond_9701(t, c));
}

// Split mode --------------------------------------------------------------------------------

#[test]
fn split_tokens_are_reassembled_and_verified() {
    let mut h = Harness::new(split_config());
    let jwt = h
        .fake
        .access_jwt(&h.fake.ed, &FakeAs::claims(h.now, "orders:read"));
    let (head, sig) = jwt.rsplit_once('.').unwrap();
    let acts = h.request(1, "/orders", sig);
    let l = shared_lookup(&acts);
    assert!(!l.key.contains(sig));
    let t = l.ticket;
    h.edge
        .handle_shared_lookup(h.now, t, phantom_edge_core::LookupResult::Found(head))
        .unwrap();
    assert_eq!(
        &*forward(&h.edge.drain_actions()).header_value,
        format!("Bearer {jwt}")
    );
    // Poisoned store: another payload under the same signature.
    let evil = h.fake.access_jwt(
        &h.fake.ed,
        &FakeAs::claims(h.now, "orders:read orders:admin"),
    );
    let (evil_head, _) = evil.rsplit_once('.').unwrap();
    let (_, sig2) = h
        .fake
        .access_jwt(
            &h.fake.ed,
            &json!({"iss": ISSUER, "exp": h.now / 1000 + 60, "sub": "bob"}),
        )
        .rsplit_once('.')
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .unwrap();
    let acts = h.request(2, "/admin", &sig2);
    let l = shared_lookup(&acts);
    h.edge
        .handle_shared_lookup(
            h.now,
            l.ticket,
            phantom_edge_core::LookupResult::Found(evil_head),
        )
        .unwrap();
    assert_eq!(reject(&h.edge.drain_actions()).status, 401);
}

#[test]
fn split_store_values_are_sealed_to_the_signature() {
    use phantom_edge_core::{LookupResult, SEALED_PREFIX, split_jwt};
    let mut h = Harness::new(sealed_split_config());
    let lookup = |h: &mut Harness, id: u64, sig: &str, value: &str| {
        let t = shared_lookup(&h.request(id, "/orders", sig)).ticket;
        h.edge
            .handle_shared_lookup(h.now, t, LookupResult::Found(value))
            .unwrap();
        h.edge.drain_actions()
    };
    let jwt = h
        .fake
        .access_jwt(&h.fake.ed, &FakeAs::claims(h.now, "orders:read"));
    let s = split_jwt(&jwt, "phantom-edge:split:").unwrap();
    let (head, _) = jwt.rsplit_once('.').unwrap();
    // The key the edge looks up is the helper's.
    let acts = h.request(1, "/orders", &s.client_token);
    let l = shared_lookup(&acts);
    assert_eq!(l.key, s.store_key);
    // The sealed value opens with the client's part and forwards the whole JWT.
    h.edge
        .handle_shared_lookup(h.now, l.ticket, LookupResult::Found(&s.store_value))
        .unwrap();
    let acts = h.edge.drain_actions();
    assert_eq!(&*forward(&acts).header_value, format!("Bearer {jwt}"));
    // Another token's client part: the value does not open (a value copied between keys).
    let other = h
        .fake
        .access_jwt(&h.fake.ed, &FakeAs::claims(h.now + 1_000, "orders:read"));
    let o = split_jwt(&other, "phantom-edge:split:").unwrap();
    let acts = lookup(&mut h, 3, &o.client_token, &s.store_value);
    assert_eq!(reject(&acts).reason, Reason::InvalidToken);
    // Altered in the store: does not open. A plain value: refused by default.
    let sealed = s.store_value.strip_prefix(SEALED_PREFIX).unwrap();
    let altered = format!(
        "{SEALED_PREFIX}{}{}",
        if sealed.starts_with('A') { "B" } else { "A" },
        &sealed[1..]
    );
    let third = h
        .fake
        .access_jwt(&h.fake.ed, &FakeAs::claims(h.now + 2_000, "orders:read"));
    let (third_head, third_sig) = third.rsplit_once('.').unwrap();
    let acts = lookup(&mut h, 4, third_sig, &altered);
    assert_eq!(reject(&acts).reason, Reason::InvalidToken);
    h.advance(11_000); // past the negative entry
    let acts = lookup(&mut h, 5, third_sig, third_head);
    assert_eq!(reject(&acts).reason, Reason::InvalidToken);
    assert_ne!(head, third_head);
}

#[test]
fn split_tokens_are_revoked_by_their_signature_or_the_whole_jwt() {
    let mut h = Harness::new(split_config());
    for (i, whole) in [false, true].into_iter().enumerate() {
        let id = 10 * (i as u64 + 1);
        let jwt = h.fake.access_jwt(
            &h.fake.ed,
            &json!({"iss": ISSUER, "exp": h.now / 1000 + 600, "sub": format!("u{i}"),
                    "scope": "orders:read", "aud": "orders-api"}),
        );
        let (head, sig) = jwt.rsplit_once('.').unwrap();
        let t = shared_lookup(&h.request(id, "/orders", sig)).ticket;
        h.edge
            .handle_shared_lookup(h.now, t, phantom_edge_core::LookupResult::Found(head))
            .unwrap();
        assert_eq!(forwards(&h.edge.drain_actions()).len(), 1);
        let selector = if whole { jwt.clone() } else { sig.to_owned() };
        h.revoke_local(Selector::Token(selector));
        let r = reject(&h.request(id + 1, "/orders", sig)).clone();
        assert_eq!(
            (r.status, r.reason),
            (401, Reason::Revoked),
            "whole JWT: {whole}"
        );
    }
    // What the store holds (no signature), or a part of a JWT: refused, not a silent no-op.
    for bad in ["aGVhZA.cGF5bG9hZA.", "aGVhZA.cGF5bG9hZA", "a.b.c.d"] {
        let r = Revocation {
            selector: Selector::Token(bad.into()),
            until: None,
            keep_until: None,
            since: None,
        };
        assert!(
            h.edge.handle_revocation(h.now, r, Origin::Local).is_err(),
            "{bad}"
        );
    }
}

// 9. Audit: no raw token anywhere (invariant 1) ----------------------------------------------

#[test]
fn no_action_or_event_ever_contains_the_raw_token() {
    let token = "RAW-TOKEN-must-not-leak-0123456789";
    let mut h = Harness::new(base_config("rfc9701"));
    let mut seen = Vec::new();
    let acts = h.request(1, "/orders", token);
    let t = ticket(&acts);
    seen.extend(acts);
    seen.extend(active_9701(&mut h, t, "orders:read"));
    seen.extend(h.request(2, "/orders", token));
    seen.extend(h.request(3, "/admin", token));
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector: Selector::Token(token.into()),
                until: None,
                keep_until: None,
                since: None,
            },
            Origin::Local,
        )
        .unwrap();
    seen.extend(h.edge.drain_actions());
    seen.extend(h.request(4, "/orders", token));
    for a in &seen {
        let text = format!("{a:?}");
        assert!(!text.contains(token), "leak in {text}");
        if let Action::Audit(e) = a {
            assert!(!e.to_json().contains(token));
        }
    }
    assert!(!h.edge.prometheus().contains(token));
    assert!(
        h.edge
            .prometheus()
            .contains("phantom_edge_cache_hits_total 2")
    );
}

// 10. Config --------------------------------------------------------------------------------

#[test]
fn config_errors_name_the_field() {
    let toml_ok = r#"
[authorization_server]
issuer = "http://127.0.0.1:3000"
introspection_endpoint = "http://127.0.0.1:3000/token/introspection"
jwks_uri = "http://127.0.0.1:3000/jwks"
client_id = "gateway"
client_secret_env = "PHANTOM_EDGE_CLIENT_SECRET"
client_auth = "client_secret_basic"
dialect = "keycloak"
timeout = "2s"

[cache]
max_ttl = "300s"
negative_ttl = "10s"
max_entries = 100000

[upstream]
header = "authorization"

[admin]
token_env = "PHANTOM_EDGE_ADMIN_TOKEN"

[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
audience = "orders-api"

[gateway]
listen = "127.0.0.1:8080"
"#;
    let env = |k: &str| match k {
        "PHANTOM_EDGE_CLIENT_SECRET" => Some("s".to_string()),
        "PHANTOM_EDGE_ADMIN_TOKEN" => Some("0123456789abcdef".to_string()),
        _ => None,
    };
    Config::from_toml(toml_ok, &env).unwrap();
    // Non-ASCII text that folds to no ASCII letter is a plain prefix (matched in raw UTF-8).
    Config::from_toml(
        &toml_ok.replace("path_prefix = \"/orders\"", "path_prefix = \"/caf\u{e9}\""),
        &env,
    )
    .unwrap();
    let bad = |from: &str, to: &str, field: &'static str| (toml_ok.replace(from, to), field);
    let cases: Vec<(String, &str)> = vec![
        bad("[cache]", "[cahce]", "cahce"),
        bad(
            "client_secret_env = \"PHANTOM_EDGE_CLIENT_SECRET\"",
            "client_secret_env = \"NOPE\"",
            "authorization_server.client_secret_env",
        ),
        bad(
            "client_secret_env = \"PHANTOM_EDGE_CLIENT_SECRET\"",
            "client_secret_env = \"PHANTOM_EDGE_CLIENT_SECRET\"\nclient_secret = \"x\"",
            "authorization_server.client_secret",
        ),
        bad(
            "timeout = \"2s\"",
            "timeout = \"two seconds\"",
            "authorization_server.timeout",
        ),
        bad(
            "max_entries = 100000",
            "max_entries = 0",
            "cache.max_entries",
        ),
        bad(
            "path_prefix = \"/orders\"",
            "path_prefix = \"orders\"",
            "routes[0].path_prefix",
        ),
        bad(
            "dialect = \"keycloak\"",
            "dialect = \"rfc9701\"",
            "assertions",
        ),
        bad(
            "dialect = \"keycloak\"",
            "dialect = \"keycloak\"\nalgorithms = [\"HS256\"]",
            "authorization_server.algorithms",
        ),
        bad(
            "dialect = \"keycloak\"",
            "dialect = \"keycloak\"\nalgorithms = [\"none\"]",
            "authorization_server.algorithms",
        ),
        bad(
            "issuer = \"http://127.0.0.1:3000\"",
            "issuer = \"127.0.0.1\"",
            "authorization_server.issuer",
        ),
        bad(
            "required_scopes = [\"orders:read\"]",
            "required_scopes = [\"orders:read\\r\\nSet-Cookie:a=b\"]",
            "routes[0].required_scopes[0]",
        ),
        bad(
            "required_scopes = [\"orders:read\"]",
            "required_scopes = [\"bestellungen:lesen\u{e4}\"]",
            "routes[0].required_scopes[0]",
        ),
        bad(
            "path_prefix = \"/orders\"",
            "path_prefix = \"/orders.\"",
            "routes[0].path_prefix",
        ),
        bad(
            "path_prefix = \"/orders\"",
            "path_prefix = \"/ord%65rs\"",
            "routes[0].path_prefix",
        ),
        bad(
            "path_prefix = \"/orders\"",
            "path_prefix = \"/orders;v=1\"",
            "routes[0].path_prefix",
        ),
        bad(
            "path_prefix = \"/orders\"",
            "path_prefix = \"/\u{131}tems\"",
            "routes[0].path_prefix",
        ),
        bad(
            "path_prefix = \"/orders\"",
            "path_prefix = \"/CAF\u{c9}\"",
            "routes[0].path_prefix",
        ),
        bad(
            "[gateway]",
            "[[routes]]\npath_prefix = \"/Orders/\"\n\n[gateway]",
            "routes[1].path_prefix",
        ),
        bad(
            "client_secret_env = \"PHANTOM_EDGE_CLIENT_SECRET\"",
            "client_secret = 1234567",
            "authorization_server.client_secret",
        ),
        bad(
            "client_auth = \"client_secret_basic\"",
            "client_auth = \"1234567\"",
            "authorization_server.client_auth",
        ),
    ];
    for (text, field) in cases {
        let e = Config::from_toml(&text, &env).unwrap_err();
        assert_eq!(e.field, field, "{e}");
        // A secret given with the wrong type is not repeated in the error.
        assert!(!e.to_string().contains("1234567"), "{e}");
    }
    // Secrets never appear in Debug output.
    let c = Config::from_toml(
        &toml_ok.replace(
            "client_secret_env = \"PHANTOM_EDGE_CLIENT_SECRET\"",
            "client_secret = \"hunter2-secret\"",
        ),
        &env,
    )
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2-secret"));
    // JSON of the same shape.
    let json =
        serde_json::to_string(&toml::from_str::<serde_json::Value>(toml_ok).unwrap()).unwrap();
    Config::from_json(&json, &env).unwrap();
}

/// An active RFC 9701 answer the AS made at `at` (its own clock), fed in at the harness's now.
fn active_at(h: &mut Harness, ticket: u64, at: u64) -> Vec<Action> {
    let body = h
        .fake
        .rfc9701(&h.fake.ed, FakeAs::claims(at, "orders:read"), at);
    h.respond(ticket, 200, RFC9701_CT, &body)
}

#[test]
fn time_never_goes_backwards() {
    // A cached entry that expired by the latest clock reading is never served again when the
    // host's clock steps back (NTP, VM migration).
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    forward(&active_9701(&mut h, t, "orders:read")); // cached until T0 + max_ttl (300 s)
    h.now = T0 + 400_000; // past max_ttl: another token's request moves the clock
    let t = ticket(&h.request(2, "/orders", "other"));
    forward(&active_9701(&mut h, t, "orders:read"));
    h.now = T0 + 100_000; // the clock steps back 300 s
    let acts = h.request(3, "/orders", "tok");
    assert!(forwards(&acts).is_empty(), "stale entry served: {acts:?}");
    assert_eq!(introspects(&acts).len(), 1, "exactly one introspection");
    // ... and the answer (made by the AS at the real time) is cached from the latest time, not
    // from the stepped-back one.
    let t = ticket(&acts);
    forward(&active_at(&mut h, t, T0 + 400_000));
    h.now = T0 + 400_000 + 299_999;
    assert!(introspects(&h.request(4, "/orders", "tok")).is_empty());
    h.now = T0 + 400_000 + 300_000;
    assert_eq!(introspects(&h.request(5, "/orders", "tok")).len(), 1);
}

#[test]
fn a_revocation_until_a_time_is_not_revived_by_a_clock_step_back() {
    // Revoked until T0 + 200 s; the clock reaches T0 + 400 s (the revocation is over), then
    // steps back to T0 + 100 s: the edge's time is still T0 + 400 s, so the token is
    // introspected (the AS decides), and a revocation until T0 + 250 s given now is refused as
    // already past.
    let mut h = Harness::new(base_config("rfc9701"));
    cached(&mut h, "tok");
    let until = Revocation {
        selector: Selector::Token("tok".into()),
        until: Some(T0 / 1000 + 200),
        keep_until: None,
        since: None,
    };
    h.edge
        .handle_revocation(h.now, until, Origin::Local)
        .unwrap();
    assert_eq!(
        reject(&h.request(10, "/orders", "tok")).reason,
        Reason::Revoked
    );
    h.advance(400_000);
    h.now = T0 + 100_000;
    let acts = h.request(11, "/orders", "tok");
    assert_eq!(introspects(&acts).len(), 1, "{acts:?}");
    let t = ticket(&acts);
    forward(&active_at(&mut h, t, T0 + 400_000));
    let late = Revocation {
        selector: Selector::Token("tok".into()),
        until: Some(T0 / 1000 + 250),
        keep_until: None,
        since: None,
    };
    assert!(
        h.edge
            .handle_revocation(h.now, late, Origin::Local)
            .is_err(),
        "until judged against the edge's latest time"
    );
}

#[test]
fn a_forgotten_revocation_sends_only_what_it_covered_back_to_the_as() {
    let mut cfg = base_config("rfc9701");
    cfg["revocation"]["max_entries"] = json!(1);
    let mut h = Harness::new(cfg);
    cached(&mut h, "alice-token");
    let t = ticket(&h.request(2, "/orders", "bob-token"));
    let mut c = FakeAs::claims(h.now, "orders:read");
    c["sub"] = json!("bob");
    c["jti"] = json!("jti-bob");
    forward(&h.respond_9701(t, c));
    let soon = Some(h.now / 1000 + 100);
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector: Selector::Sub("alice".into()),
                until: soon,
                keep_until: None,
                since: None,
            },
            Origin::Shared,
        )
        .unwrap();
    // The set holds one entry: this forgets the alice revocation.
    h.edge
        .handle_revocation(
            h.now,
            Revocation {
                selector: Selector::Jti("other".into()),
                until: Some(h.now / 1000 + 500),
                keep_until: None,
                since: None,
            },
            Origin::Shared,
        )
        .unwrap();
    let acts = h.edge.drain_actions();
    assert!(
        acts.iter()
            .any(|a| matches!(a, Action::Audit(e) if e.kind == AuditKind::RevocationOverflow))
    );
    assert_eq!(h.edge.metrics().revocation_overflows, 1);
    assert!(
        h.edge
            .prometheus()
            .contains("phantom_edge_revocation_overflows_total 1")
    );
    assert_eq!(h.edge.stats().revocations, 1);
    // alice's token is no longer refused at the edge, but it is re-checked at the AS, not served
    // from the cache; bob's cached decision is untouched.
    assert_eq!(
        introspects(&h.request(3, "/orders", "alice-token")).len(),
        1
    );
    assert!(introspects(&h.request(4, "/orders", "bob-token")).is_empty());
}

#[test]
fn query_tokens_only_when_enabled_and_never_forwarded() {
    let mut h = Harness::new(base_config("rfc9701"));
    let acts = h.request_with(1, "GET", "/orders?access_token=tok&x=1", &[], None);
    assert_eq!(
        reject(&acts).reason,
        Reason::MissingToken,
        "disabled by default"
    );

    let mut cfg = base_config("rfc9701");
    cfg["request"] = json!({"allow_query_token": true});
    let mut h = Harness::new(cfg);
    let t = ticket(&h.request_with(1, "GET", "/orders?x=1&access_token=tok", &[], None));
    let acts = active_9701(&mut h, t, "orders:read");
    assert_eq!(
        forward(&acts).rewritten_path.as_deref(),
        Some("/orders?x=1")
    );
    // The same token by header hits the same cache entry and forwards the path unchanged.
    let acts = h.request(2, "/orders", "tok");
    assert!(introspects(&acts).is_empty());
    assert_eq!(forward(&acts).rewritten_path, None);
    // Two ways at once is invalid_request (RFC 6750 §2).
    let acts = h.request_with(
        3,
        "GET",
        "/orders?access_token=tok",
        &[("authorization", "Bearer tok")],
        None,
    );
    assert_eq!(reject(&acts).status, 400);
    let acts = h.request_with(4, "GET", "/orders?access_token=a&access_token=b", &[], None);
    assert_eq!(reject(&acts).status, 400);
}

fn audit_kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Audit(e) => Some(e.kind.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn muted_audit_kinds_are_not_queued_and_nothing_else_changes() {
    assert_eq!(
        AuditKinds::from_names(["cache_hit", "no_such_kind", "rejected"]),
        Err("no_such_kind")
    );
    let routine = AuditKinds::from_names(["cache_hit", "cache_miss"]).unwrap();
    assert!(routine.contains(AuditKind::CacheHit) && !routine.contains(AuditKind::Rejected));

    let mut h = Harness::new(base_config("rfc7662"));
    h.edge.mute_audits(routine);
    let miss = h.request(1, "/orders", "tok");
    assert!(audit_kinds(&miss).is_empty(), "{miss:?}");
    let t = ticket(&miss);
    let body = json!({"active": true, "sub": "alice", "scope": "orders:read", "aud": "orders-api",
        "exp": h.now / 1000 + 600});
    let cached = h.respond(t, 200, "application/json", &body.to_string());
    // Kinds not muted are still queued (the introspection's own events).
    assert!(audit_kinds(&cached).contains(&"introspected"), "{cached:?}");
    assert_eq!(forwards(&cached).len(), 1, "{cached:?}");
    // A hit queues just its Forward; the metric still counts it.
    let hit = h.request(2, "/orders", "tok");
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert_eq!(forward(&hit).request_id, 2);
    let nothing = h.request(3, "/orders", "");
    assert_eq!(audit_kinds(&nothing), ["rejected"]);
    assert_eq!(h.edge.metrics().cache_hits, 1);
    // NONE queues every kind again.
    h.edge.mute_audits(AuditKinds::NONE);
    assert_eq!(audit_kinds(&h.request(4, "/orders", "tok")), ["cache_hit"]);
}

#[test]
fn audit_level_mutes_the_kinds_below_it_and_composes_with_muted_kinds() {
    use phantom_edge_core::AuditLevel;
    // The classification every host logs by: the per-request routine kinds at debug, security
    // decisions at info, failures at warn.
    let at = |l: AuditLevel| -> Vec<&str> {
        AuditKind::ALL
            .into_iter()
            .filter(|k| k.level() == l)
            .map(AuditKind::as_str)
            .collect()
    };
    assert_eq!(
        at(AuditLevel::Debug),
        [
            "cache_hit",
            "negative_hit",
            "cache_miss",
            "coalesced",
            "introspected",
            "cached",
            "forwarded"
        ]
    );
    assert_eq!(
        at(AuditLevel::Info),
        [
            "rejected",
            "revoked",
            "invalidated",
            "jwks_fetched",
            "security_event"
        ]
    );
    assert_eq!(
        at(AuditLevel::Warn),
        [
            "revocation_overflow",
            "as_failure",
            "jwks_failed",
            "ticket_timed_out",
            "late_response",
            "not_cacheable"
        ]
    );
    assert_eq!(AuditKinds::below(AuditLevel::Debug), AuditKinds::NONE);
    assert!(AuditKinds::below(AuditLevel::Warn).contains(AuditKind::Rejected));
    assert!(!AuditKinds::below(AuditLevel::Warn).contains(AuditKind::AsFailure));
    assert_eq!(AuditLevel::from_name("warn"), Some(AuditLevel::Warn));
    assert_eq!(AuditLevel::from_name("WARN"), None);

    let mut h = Harness::new(base_config("rfc7662"));
    h.edge.set_audit_level(AuditLevel::Info);
    let miss = h.request(1, "/orders", "tok");
    assert!(audit_kinds(&miss).is_empty(), "{miss:?}");
    let body = json!({"active": true, "sub": "alice", "scope": "orders:read", "aud": "orders-api",
        "exp": h.now / 1000 + 600});
    let cached = h.respond(ticket(&miss), 200, "application/json", &body.to_string());
    assert!(audit_kinds(&cached).is_empty(), "{cached:?}");
    assert_eq!(forwards(&cached).len(), 1, "{cached:?}");
    assert_eq!(h.request(2, "/orders", "tok").len(), 1);
    assert_eq!(audit_kinds(&h.request(3, "/orders", "")), ["rejected"]);
    // Muting kinds by name keeps the level, and the other way round.
    h.edge
        .mute_audits(AuditKinds::from_names(["rejected"]).unwrap());
    assert!(audit_kinds(&h.request(4, "/orders", "")).is_empty());
    assert_eq!(h.request(5, "/orders", "tok").len(), 1, "level still info");
    h.edge.set_audit_level(AuditLevel::Debug);
    assert_eq!(audit_kinds(&h.request(6, "/orders", "tok")), ["cache_hit"]);
    assert!(
        audit_kinds(&h.request(7, "/orders", "")).is_empty(),
        "rejected still muted"
    );
    h.edge.mute_audits(AuditKinds::NONE);
    h.edge.set_audit_level(AuditLevel::Warn);
    assert!(audit_kinds(&h.request(8, "/orders", "")).is_empty());
    assert_eq!(h.edge.metrics().cache_hits, 3);
}

#[test]
fn take_decision_only_when_the_decision_is_all_there_is() {
    let mut h = Harness::new(base_config("rfc7662"));
    h.edge
        .mute_audits(AuditKinds::from_names(["cache_hit", "cache_miss"]).unwrap());
    let req = |id, token: &'static str| (id, format!("Bearer {token}"));
    let send = |h: &mut Harness, (id, auth): (u64, String)| {
        let headers = [("authorization", auth.as_str())];
        let r = phantom_edge_core::Request {
            id,
            method: "GET",
            scheme: "https",
            authority: "api",
            path: "/orders/1",
            headers: &headers,
            client_cert_thumbprint: None,
        };
        h.edge.handle_request(h.now, &r);
    };
    // A miss: an introspection is queued, no decision; the queue is left as it was.
    send(&mut h, req(1, "tok"));
    assert!(h.edge.take_decision(1).is_none());
    let t = ticket(&h.edge.drain_actions());
    let body = json!({"active": true, "scope": "orders:read", "aud": "orders-api",
        "exp": h.now / 1000 + 600});
    h.respond(t, 200, "application/json", &body.to_string());
    // A hit (its audit muted): the Forward is all there is, and it is taken.
    send(&mut h, req(2, "tok"));
    assert!(
        h.edge.take_decision(3).is_none(),
        "another request's decision is not taken"
    );
    match h.edge.take_decision(2) {
        Some(Action::Forward(f)) => assert_eq!(f.request_id, 2),
        other => panic!("{other:?}"),
    }
    assert!(h.edge.poll_action().is_none());
    // Two decisions queued: neither is taken alone, both stay in order.
    send(&mut h, req(4, "tok"));
    send(&mut h, req(5, "tok"));
    assert!(h.edge.take_decision(5).is_none());
    assert_eq!(forwards(&h.edge.drain_actions()).len(), 2);
    // A rejection without I/O comes with its audit unless muted.
    send(&mut h, req(6, "a b"));
    assert!(h.edge.take_decision(6).is_none());
    assert_eq!(reject(&h.edge.drain_actions()).status, 400);
    h.edge.mute_audits(AuditKinds::ALL);
    send(&mut h, req(7, "a b"));
    assert!(matches!(h.edge.take_decision(7), Some(Action::Reject(r)) if r.status == 400));
}
