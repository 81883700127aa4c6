//! Fuzz target bodies for `phantom-edge-core`, written against its public API only.
//!
//! Each `pub fn <target>(data: &[u8])` is called by `fuzz_targets/<target>.rs` under cargo-fuzz
//! (libFuzzer, nightly or `RUSTC_BOOTSTRAP=1`) and by `tests/smoke.rs` under plain stable
//! `cargo test` (seed corpus + fixed-seed pseudo-random inputs). A target fails by panicking.

use std::sync::OnceLock;

use phantom_edge_core::{Action, Config, ConfigError, Edge, HttpResponse, LookupResult, Request};
use serde_json::{Value, json};

/// The virtual "now" of every scenario (Unix ms). The seed corpus is generated for this time.
pub const T0_MS: u64 = 1_700_000_000_000;
const ISSUER: &str = "https://as.example";
const EDGE_ED25519: &str = include_str!("../../tests/vectors/keys/edge-ed25519.pem");
const SET_ED25519_PUB: &str = include_str!("../../tests/vectors/keys/set-ed25519.pub.pem");
const ADMIN_TOKEN: &str = "admin-secret-0123456789";
/// The opaque token presented in `introspection_response` scenarios.
const OPAQUE: &str = "opaque-fuzz-token-0123456789abcdef";

/// Public half of `tests/vectors/keys/as-ed25519.pem` (kid `as-ed`) and `as-es256.pem`
/// (kid `as-es`): the keys the authorization server signs with. Printed by
/// `scripts/gen_seeds.py`. Fuzz input cannot carry a valid signature under them.
pub const AS_JWKS: &str = r#"{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "tsfxiHW1qI4oskVsNuTwBWqOqaxJ3Wr8KRaWp6LRRF8", "kid": "as-ed", "alg": "EdDSA", "use": "sig"}, {"kty": "EC", "crv": "P-256", "x": "cg_ZqrIvj9doW5hOF77e9fHEAEccZEcaiwckyIZl5nE", "y": "0p_XJH500wYxejCX3-i2pGo3y33DsuTgW_gWrnfbFtE", "kid": "as-es", "alg": "ES256", "use": "sig"}]}"#;

/// The four introspection dialects, in the order `introspection_response` drives them.
pub const DIALECTS: [&str; 4] = ["rfc9701", "curity", "keycloak", "rfc7662"];

/// Statuses a `Reject` may carry (the contract in `phantom_edge_core::Reject`).
const REJECT_STATUSES: [u16; 6] = [400, 401, 403, 404, 502, 503];

fn config_value(dialect: &str) -> Value {
    json!({
        "authorization_server": {
            "issuer": ISSUER,
            "introspection_endpoint": "https://as.example/introspect",
            "jwks_uri": "https://as.example/jwks",
            "client_id": "gateway",
            "client_secret": "gateway-secret",
            "dialect": dialect
        },
        "cache": { "max_ttl": "300s", "negative_ttl": "10s", "max_entries": 1000 },
        "assertions": { "signing_key": EDGE_ED25519, "kid": "edge-1", "max_ttl": "60s" },
        "admin": { "token": ADMIN_TOKEN },
        "revocation": { "set_key": SET_ED25519_PUB },
        "routes": [
            { "path_prefix": "/orders", "required_scopes": ["orders:read"], "audience": "orders-api" },
            { "path_prefix": "/public" }
        ]
    })
}

/// The checked configuration for `dialect`, built once.
pub fn fixed_config(dialect: &str) -> Config {
    static CONFIGS: OnceLock<Vec<(&'static str, Config)>> = OnceLock::new();
    let all = CONFIGS.get_or_init(|| {
        DIALECTS
            .iter()
            .map(|d| {
                let text = config_value(d).to_string();
                let cfg = Config::from_json(&text, &|_| None)
                    .unwrap_or_else(|e| panic!("harness config for {d} is invalid: {e}"));
                (*d, cfg)
            })
            .collect()
    });
    all.iter()
        .find(|(d, _)| *d == dialect)
        .map(|(_, c)| c.clone())
        .expect("unknown dialect")
}

/// A fresh edge for `dialect` at `T0_MS`, with its initial JWKS fetch answered by [`AS_JWKS`].
pub fn fresh_edge(dialect: &str) -> Edge {
    let mut edge = Edge::new(fixed_config(dialect), [7; 32], T0_MS);
    let acts = edge.drain_actions();
    if acts.iter().any(|a| matches!(a, Action::FetchJwks(_))) {
        edge.handle_jwks(T0_MS, Ok(AS_JWKS.as_bytes()));
        let _ = edge.drain_actions();
    }
    edge
}

/// Drains `edge`, answering every `FetchJwks` with [`AS_JWKS`] (a bounded number of rounds).
fn drain_answering_jwks(edge: &mut Edge, now: u64, out: &mut Vec<Action>) {
    for _ in 0..4 {
        let acts = edge.drain_actions();
        let fetch = acts.iter().any(|a| matches!(a, Action::FetchJwks(_)));
        out.extend(acts);
        if !fetch {
            return;
        }
        edge.handle_jwks(now, Ok(AS_JWKS.as_bytes()));
    }
    out.extend(edge.drain_actions());
}

/// A GET request without headers; callers set `headers` with struct-update syntax.
fn get(id: u64, path: &'static str) -> Request<'static> {
    Request {
        id,
        method: "GET",
        scheme: "https",
        authority: "api.example",
        path,
        headers: &[],
        client_cert_thumbprint: None,
    }
}

/// The single decision (`Forward` or `Reject`) for `id` in `acts`; panics unless exactly one.
/// Checks the `Reject` status contract and the `Forward` stripping contract.
fn decision(acts: &[Action], id: u64) -> Option<&Action> {
    let mut found = None;
    for a in acts {
        let rid = match a {
            Action::Forward(f) => f.request_id,
            Action::Reject(r) => r.request_id,
            _ => continue,
        };
        if rid != id {
            continue;
        }
        assert!(found.is_none(), "two decisions for request {id}: {acts:?}");
        found = Some(a);
        match a {
            Action::Reject(r) => {
                assert!(
                    REJECT_STATUSES.contains(&r.status),
                    "Reject status {} outside {REJECT_STATUSES:?}: {r:?}",
                    r.status
                );
                assert!(
                    serde_json::from_str::<Value>(&r.body).is_ok(),
                    "Reject body is not JSON: {r:?}"
                );
            }
            Action::Forward(f) => {
                for h in ["authorization", "dpop", "x-original-url", "x-rewrite-url"] {
                    assert!(
                        f.strip_headers.iter().any(|s| s == h),
                        "Forward does not strip {h}: {f:?}"
                    );
                }
            }
            _ => unreachable!(),
        }
    }
    found
}

fn debug_all(acts: &[Action]) -> String {
    let mut s = String::new();
    for a in acts {
        s.push_str(&format!("{a:?}\n"));
        if let Action::Audit(ev) = a {
            s.push_str(&ev.to_json());
            s.push('\n');
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// authorization_header
// ---------------------------------------------------------------------------------------------

/// Runs one request with these Authorization / DPoP header values through a fixed rfc7662 edge,
/// answers its introspection (if any) with an active token, and returns every action.
fn auth_scenario(auth: Option<&str>, dpop: Option<&str>) -> Vec<Action> {
    let mut edge = fresh_edge("rfc7662");
    let mut headers: Vec<(&str, &str)> = vec![("accept", "*/*")];
    if let Some(a) = auth {
        headers.push(("authorization", a));
    }
    if let Some(d) = dpop {
        headers.push(("dpop", d));
    }
    let req = Request {
        headers: &headers,
        ..get(1, "/orders/1")
    };
    edge.handle_request(T0_MS, &req);
    let mut acts = edge.drain_actions();
    let tickets: Vec<u64> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Introspect(i) => Some(i.ticket),
            _ => None,
        })
        .collect();
    assert!(
        tickets.len() <= 1,
        "one request, several introspections: {acts:?}"
    );
    if let Some(&t) = tickets.first() {
        let body = active_claims().to_string();
        let resp = HttpResponse {
            status: 200,
            headers: &[("content-type", "application/json")],
            body: body.as_bytes(),
        };
        edge.handle_introspection_response(T0_MS + 10, t, &resp)
            .expect("a ticket the edge just issued is known");
        acts.extend(edge.drain_actions());
    }
    assert!(
        decision(&acts, 1).is_some(),
        "request 1 got no decision: {acts:?}"
    );
    acts
}

fn active_claims() -> Value {
    let now_s = T0_MS / 1000;
    json!({
        "active": true, "scope": "orders:read", "client_id": "app", "sub": "alice",
        "aud": "orders-api", "iss": ISSUER, "exp": now_s + 3600, "iat": now_s,
        "jti": "jti-1", "token_type": "Bearer"
    })
}

/// Text every scenario may print regardless of the token (descriptions, URLs, claims of the
/// fixed introspection answer, minted JWT). A header value found only inside this text is a
/// coincidence, not a leak.
fn vocabulary() -> &'static str {
    static VOCAB: OnceLock<String> = OnceLock::new();
    VOCAB.get_or_init(|| {
        let long = format!("Bearer {}", "a".repeat(5000));
        let cases: [(Option<&str>, Option<&str>); 10] = [
            (None, None),
            (Some("Basic Z2F0ZXdheQ=="), None),
            (Some("Bearer"), None),
            (Some("Bearer a b"), None),
            (Some(&long), None),
            (Some("Bearer reference-token-0000000000"), None),
            (Some("DPoP reference-token-0000000000"), None),
            (Some("DPoP reference-token-0000000000"), Some("x.y.z")),
            (Some("Bearer reference-token-0000000000"), Some("x.y.z")),
            (Some("Bearer a\"b"), None),
        ];
        let mut s = config_value("rfc7662").to_string();
        for (a, d) in cases {
            s.push_str(&debug_all(&auth_scenario(a, d)));
        }
        s
    })
}

fn assert_no_leak(secret: &str, what: &str, out: &str) {
    if secret.len() >= 16 && out.contains(secret) && !vocabulary().contains(secret) {
        panic!(
            "{what} ({} bytes) leaked into action output:\n{out}",
            secret.len()
        );
    }
}

/// Target `authorization_header`: `data` = Authorization value [`\0` DPoP value]. Never panics;
/// every request gets exactly one decision; a `Reject` has an allowed status; no action (nor
/// audit JSON) contains the raw header value or the token when it is ≥ 16 bytes.
pub fn authorization_header(data: &[u8]) {
    let (auth, dpop) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let auth = String::from_utf8_lossy(auth);
    let dpop = dpop.map(String::from_utf8_lossy);
    let acts = auth_scenario(Some(&auth), dpop.as_deref());
    let out = debug_all(&acts);
    assert_no_leak(&auth, "raw Authorization value", &out);
    let trimmed = auth.trim_matches([' ', '\t']);
    if let Some((_, token)) = trimmed.split_once([' ', '\t']) {
        assert_no_leak(token.trim_start_matches([' ', '\t']), "token", &out);
    }
    if let Some(d) = &dpop {
        assert_no_leak(d, "raw DPoP value", &out);
    }
}

// ---------------------------------------------------------------------------------------------
// introspection_response
// ---------------------------------------------------------------------------------------------

/// How `data` is read as an introspection answer: byte 0 picks the status, byte 1 the
/// content-type, byte 2 a Cache-Control header, the rest is the body.
fn response_parts(dialect: &str, data: &[u8]) -> (u16, Option<String>, Option<String>, Vec<u8>) {
    let b = |i: usize, d: u8| data.get(i).copied().unwrap_or(d);
    let status = match b(0, 0) {
        0..=0x7f => 200,
        0x80 => 204,
        0x81 => 401,
        0x82 => 403,
        0x83 => 500,
        0x84 => 503,
        x => u16::from(x) * 3,
    };
    let accept = fixed_config(dialect).dialect().accept();
    let ct = match b(1, 0xff) {
        0 => Some("application/token-introspection+jwt".to_string()),
        1 => Some("application/jwt".to_string()),
        2 => Some("application/json".to_string()),
        3 => Some("Application/JSON; charset=utf-8".to_string()),
        4 => None,
        5 => Some(String::new()),
        6 => Some("text/html".to_string()),
        _ => Some(accept.to_string()),
    };
    let flags = b(2, 0);
    let cache = if flags & 1 == 1 {
        Some(format!("max-age={}", flags >> 1))
    } else if flags & 2 == 2 {
        Some("no-store".to_string())
    } else if flags & 4 == 4 {
        Some("max-age=oops".to_string())
    } else {
        None
    };
    (status, ct, cache, data.get(3..).unwrap_or(&[]).to_vec())
}

/// Drives one `dialect` edge: request → Introspect ticket → the answer read from `data` →
/// (JWKS refreshes answered) → timeout if still pending → a second request with the same token.
/// Checks the decision contracts and returns whether request 1 was forwarded.
pub fn introspection_outcome(dialect: &str, data: &[u8]) -> bool {
    let (status, ct, cache, body) = response_parts(dialect, data);
    let mut edge = fresh_edge(dialect);
    let auth = format!("Bearer {OPAQUE}");
    let headers = [("authorization", auth.as_str())];
    edge.handle_request(
        T0_MS,
        &Request {
            headers: &headers,
            ..get(1, "/orders/1")
        },
    );
    let acts = edge.drain_actions();
    let ticket = match acts.iter().find_map(|a| match a {
        Action::Introspect(i) => Some(i.ticket),
        _ => None,
    }) {
        Some(t) => t,
        None => panic!("harness: no Introspect for a fresh token ({dialect}): {acts:?}"),
    };
    let mut rh: Vec<(&str, &str)> = Vec::new();
    if let Some(c) = &ct {
        rh.push(("content-type", c));
    }
    if let Some(c) = &cache {
        rh.push(("cache-control", c));
    }
    let resp = HttpResponse {
        status,
        headers: &rh,
        body: &body,
    };
    let now = T0_MS + 50;
    edge.handle_introspection_response(now, ticket, &resp)
        .expect("a ticket the edge just issued is known");
    let mut acts = Vec::new();
    drain_answering_jwks(&mut edge, now, &mut acts);
    if decision(&acts, 1).is_none() {
        // Parked (e.g. waiting for keys): the core must still answer by its own timeout.
        let later = edge.poll_timeout().unwrap_or(now).max(now) + 60_000;
        edge.handle_timeout(later);
        drain_answering_jwks(&mut edge, later, &mut acts);
    }
    let out = debug_all(&acts);
    assert!(
        !out.contains(OPAQUE),
        "opaque token leaked ({dialect}): {out}"
    );
    let forwarded = match decision(&acts, 1) {
        None => panic!("request 1 never decided ({dialect}): {acts:?}"),
        Some(Action::Forward(f)) => {
            assert_eq!(status, 200, "Forward from status {status} ({dialect})");
            assert!(!f.header_value.contains(OPAQUE), "opaque token forwarded");
            assert!(
                f.token.scopes.iter().any(|s| s == "orders:read"),
                "Forward without the route's scope ({dialect}): {f:?}"
            );
            assert!(
                f.token.aud.iter().any(|a| a == "orders-api"),
                "Forward without the route's audience ({dialect}): {f:?}"
            );
            assert!(
                f.token.iss.as_deref().is_none_or(|i| i == ISSUER),
                "Forward with a foreign issuer ({dialect}): {f:?}"
            );
            assert!(
                f.token.exp.is_none_or(|e| e * 1000 > T0_MS),
                "Forward of an expired token ({dialect}): {f:?}"
            );
            if dialect == "rfc7662" {
                // Plain JSON is trusted as is, but only an explicit `"active": true`.
                let v: Value = serde_json::from_slice(&body).expect("Forward from non-JSON body");
                assert_eq!(
                    v.get("active"),
                    Some(&Value::Bool(true)),
                    "Forward from {v}"
                );
            }
            true
        }
        Some(_) => false,
    };
    // Same token again: never forwarded unless the first one was (no forward from a negative
    // or failed answer without a new, successful introspection).
    edge.handle_request(
        now + 1,
        &Request {
            headers: &headers,
            ..get(2, "/orders/1")
        },
    );
    let acts2 = edge.drain_actions();
    if let Some(Action::Forward(f)) = decision(&acts2, 2) {
        assert!(
            forwarded,
            "second request forwarded after the first was not ({dialect}): {f:?}"
        );
    }
    forwarded
}

/// Target `introspection_response`: `data` as the introspection answer for each dialect. Never
/// panics; JWT dialects (rfc9701, curity, keycloak) never forward: fuzz input cannot be signed
/// with the AS keys.
pub fn introspection_response(data: &[u8]) {
    for d in DIALECTS {
        let forwarded = introspection_outcome(d, data);
        if d != "rfc7662" {
            assert!(
                !forwarded,
                "{d}: Forward from an answer not signed by the AS keys"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// config
// ---------------------------------------------------------------------------------------------

/// Target `config`: `data` (lossy UTF-8) as TOML and as JSON, env lookups returning `None`.
/// Never panics; an accepted config builds an edge that decides a request exactly once, with a
/// status from the contract and never a `Forward` when every I/O it asked for failed; a refused
/// one names a field and says why. A JSON object is also read with each secret in turn set to a
/// canary (literal or through `*_env`): a refusal never repeats it, nor does the config's `Debug`.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for parsed in [
        Config::from_toml(&text, &|_| None),
        Config::from_json(&text, &|_| None),
    ] {
        match parsed {
            Ok(cfg) => exercise_config(cfg),
            Err(e) => check_config_error(&e),
        }
    }
    if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(&text) {
        secrets_not_echoed(map);
    }
}

/// A refusal names the offending key (or the pseudo-field of a syntax error) and says why.
fn check_config_error(e: &ConfigError) {
    assert!(!e.field.is_empty(), "config error without a field: {e:?}");
    assert!(
        !e.message.trim().is_empty(),
        "config error without a message: {e:?}"
    );
    let shown = e.to_string();
    assert!(
        shown.contains(&e.field) && shown.contains(&e.message),
        "config error display {shown:?} leaves out its field or message"
    );
}

/// The keys whose values are secrets (`section.key`); each also has a `key_env` form.
const SECRET_KEYS: [(&str, &str); 5] = [
    ("authorization_server", "client_secret"),
    ("authorization_server", "client_key"),
    ("assertions", "signing_key"),
    ("admin", "token"),
    ("cache", "fingerprint_key"),
];

/// `map` with one secret at a time set to a canary (in each section `map` has; long enough for
/// `admin.token`, and too short for it), every environment variable reading as that canary.
fn secrets_not_echoed(map: serde_json::Map<String, Value>) {
    for canary in ["zq-canary-secret-0123456789abcdef", "zq-canary"] {
        let env = |_: &str| Some(canary.to_string());
        for (section, key) in SECRET_KEYS {
            let mut v = Value::Object(map.clone());
            let Some(Value::Object(s)) = v.get_mut(section) else {
                continue;
            };
            if !s.contains_key(&format!("{key}_env")) {
                s.insert(key.to_string(), Value::String(canary.to_string()));
            }
            match Config::from_json(&v.to_string(), &env) {
                Ok(cfg) => assert!(
                    !format!("{cfg:?}").contains(canary),
                    "a secret in the config's Debug: {cfg:?}"
                ),
                Err(e) => {
                    check_config_error(&e);
                    assert!(
                        !e.to_string().contains(canary),
                        "a secret repeated in a config error: {e}"
                    );
                }
            }
        }
    }
}

fn exercise_config(cfg: Config) {
    let _ = (
        cfg.issuer(),
        cfg.jwks_uri(),
        cfg.timeout_ms(),
        cfg.routes().len(),
    );
    let mut edge = Edge::new(cfg, [1; 32], T0_MS);
    let headers = [("authorization", "Bearer config-fuzz-token")];
    let mut acts = edge.drain_actions();
    fail_io(&mut edge, T0_MS, &acts);
    edge.handle_request(
        T0_MS,
        &Request {
            headers: &headers,
            ..get(1, "/orders/1")
        },
    );
    // Every introspection, lookup and key fetch fails; when nothing is left to answer, time
    // passes. Several rounds: the decision must come once, and nothing after it may add another.
    let mut now = T0_MS;
    for _ in 0..6 {
        let new = edge.drain_actions();
        let quiet = new.is_empty();
        fail_io(&mut edge, now, &new);
        acts.extend(new);
        if quiet {
            now = edge.poll_timeout().unwrap_or(now).max(now) + 120_000;
            edge.handle_timeout(now);
        }
    }
    acts.extend(edge.drain_actions());
    match decision(&acts, 1) {
        None => panic!("request 1 never decided: {acts:?}"),
        Some(Action::Forward(f)) => panic!("forwarded although every I/O failed: {f:?}"),
        Some(_) => {}
    }
    let _ = edge.prometheus();
}

/// Answers every introspection, shared-store lookup and JWKS fetch in `acts` with a failure.
fn fail_io(edge: &mut Edge, now: u64, acts: &[Action]) {
    for a in acts {
        match a {
            Action::Introspect(i) => edge
                .handle_introspection_failure(now, i.ticket, "fuzz: connection refused")
                .expect("a ticket the edge just issued is known"),
            Action::SharedLookup(l) => edge
                .handle_shared_lookup(now, l.ticket, LookupResult::Error)
                .expect("a ticket the edge just issued is known"),
            Action::FetchJwks(_) => edge.handle_jwks(now, Err("fuzz: connection refused")),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// revocation_body
// ---------------------------------------------------------------------------------------------

/// Target `revocation_body`: `data` through `Edge::handle_admin_revocation` as
/// `application/json` (with the right admin token) and as `application/secevent+jwt`. Never
/// panics; errors are 400/401 with a JSON body; a `{"token": ...}` selector never reaches an
/// action (published revocations carry fingerprints); afterwards the edge still decides a
/// request for an active token exactly once: forwarded after a refused revocation (which changes
/// nothing), forwarded or refused with 401 after an accepted one.
pub fn revocation_body(data: &[u8]) {
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let raw_token = serde_json::from_slice::<Value>(data)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned));
    for ct in ["application/json", "application/secevent+jwt"] {
        let mut edge = fresh_edge("rfc7662");
        let accepted = match edge.handle_admin_revocation(T0_MS, Some(ct), Some(&admin), data) {
            Ok(()) => true,
            Err(e) => {
                assert!(
                    matches!(e.status(), 400 | 401),
                    "revocation error status {}",
                    e.status()
                );
                assert!(serde_json::from_str::<Value>(&e.body()).is_ok());
                false
            }
        };
        let acts = edge.drain_actions();
        if let Some(t) = raw_token.as_deref().filter(|t| t.len() >= 16) {
            let out = debug_all(&acts);
            assert!(
                !out.contains(t) || vocabulary().contains(t),
                "revoked raw token leaked: {out}"
            );
        }
        // The edge still works after whatever was revoked.
        let headers = [("authorization", "Bearer after-revocation-token-0001")];
        edge.handle_request(
            T0_MS + 1,
            &Request {
                headers: &headers,
                ..get(9, "/orders/1")
            },
        );
        let mut acts = edge.drain_actions();
        if decision(&acts, 9).is_none() {
            // Not cached: answered by the introspection, with an active token.
            let ticket = acts
                .iter()
                .find_map(|a| match a {
                    Action::Introspect(i) => Some(i.ticket),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("request 9 neither decided nor introspected: {acts:?}"));
            let body = active_claims().to_string();
            let resp = HttpResponse {
                status: 200,
                headers: &[("content-type", "application/json")],
                body: body.as_bytes(),
            };
            edge.handle_introspection_response(T0_MS + 2, ticket, &resp)
                .expect("a ticket the edge just issued is known");
            acts.extend(edge.drain_actions());
        }
        match decision(&acts, 9) {
            None => panic!("request 9 never decided after the revocation ({ct}): {acts:?}"),
            Some(Action::Forward(_)) => {}
            Some(Action::Reject(r)) => {
                assert!(
                    accepted,
                    "refused revocation ({ct}) still refused a token: {r:?}"
                );
                assert_eq!(r.status, 401, "revoked token refused with {r:?} ({ct})");
            }
            Some(_) => unreachable!(),
        }
    }
}
