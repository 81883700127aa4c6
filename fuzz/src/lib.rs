//! Fuzz target bodies for `phantom-edge-core`, written against its public API only.
//!
//! Each `pub fn <target>(data: &[u8])` is called by `fuzz_targets/<target>.rs` under cargo-fuzz
//! (libFuzzer, nightly or `RUSTC_BOOTSTRAP=1`) and by `tests/smoke.rs` under plain stable
//! `cargo test` (seed corpus + fixed-seed pseudo-random inputs). A target fails by panicking.

use std::sync::OnceLock;

use phantom_edge_core::{
    Action, Config, ConfigError, Edge, EdgeError, FetchKind, HttpResponse, LookupResult, Request,
};
use serde_json::{Value, json};

/// The answers the targets give, each one [`Edge::handle_fetch`]: a JWKS body (200) or failure
/// to the fetch in flight, an introspection's answer or transport failure.
trait EdgeExt {
    fn handle_jwks(&mut self, now: u64, result: Result<&[u8], &str>);
    fn handle_introspection_response(
        &mut self,
        now: u64,
        ticket: u64,
        resp: &HttpResponse<'_>,
    ) -> Result<(), EdgeError>;
    fn handle_introspection_failure(
        &mut self,
        now: u64,
        ticket: u64,
        detail: &str,
    ) -> Result<(), EdgeError>;
}

impl EdgeExt for Edge {
    fn handle_jwks(&mut self, now: u64, result: Result<&[u8], &str>) {
        // No fetch in flight (its deadline passed): nothing to answer.
        let Some(ticket) = self.jwks_in_flight() else {
            return;
        };
        let r = match result {
            Ok(body) => self.handle_fetch(
                now,
                ticket,
                Ok(&HttpResponse {
                    status: 200,
                    headers: &[("content-type", "application/json")],
                    body,
                }),
            ),
            Err(detail) => self.handle_fetch(now, ticket, Err(detail)),
        };
        r.expect("the JWKS ticket is live");
    }

    fn handle_introspection_response(
        &mut self,
        now: u64,
        ticket: u64,
        resp: &HttpResponse<'_>,
    ) -> Result<(), EdgeError> {
        self.handle_fetch(now, ticket, Ok(resp))
    }

    fn handle_introspection_failure(
        &mut self,
        now: u64,
        ticket: u64,
        detail: &str,
    ) -> Result<(), EdgeError> {
        self.handle_fetch(now, ticket, Err(detail))
    }
}

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
    if acts.iter().any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks)) {
        edge.handle_jwks(T0_MS, Ok(AS_JWKS.as_bytes()));
        let _ = edge.drain_actions();
    }
    edge
}

/// Drains `edge`, answering every JWKS `Fetch` with [`AS_JWKS`] (a bounded number of rounds).
fn drain_answering_jwks(edge: &mut Edge, now: u64, out: &mut Vec<Action>) {
    for _ in 0..4 {
        let acts = edge.drain_actions();
        let fetch = acts.iter().any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks));
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
            Action::Fetch(i) if i.kind == FetchKind::Introspection => Some(i.ticket),
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
        Action::Fetch(i) if i.kind == FetchKind::Introspection => Some(i.ticket),
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
    // Finding F1 (fixed): an empty key (`{"": 1}`, `"" = 1`) was refused with an empty field.
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
            Action::Fetch(i) => edge
                .handle_fetch(now, i.ticket, Err("fuzz: connection refused"))
                .expect("a ticket the edge just issued is known"),
            Action::SharedLookup(l) => edge
                .handle_shared_lookup(now, l.ticket, LookupResult::Error)
                .expect("a ticket the edge just issued is known"),
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
                    Action::Fetch(i) if i.kind == FetchKind::Introspection => Some(i.ticket),
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

// ---------------------------------------------------------------------------------------------
// Helpers shared by the targets below
// ---------------------------------------------------------------------------------------------

/// The ticket of the (single) `Introspect` in `acts`, if any.
fn introspect_ticket(acts: &[Action]) -> Option<u64> {
    let tickets: Vec<u64> = acts
        .iter()
        .filter_map(|a| match a {
            Action::Fetch(i) if i.kind == FetchKind::Introspection => Some(i.ticket),
            _ => None,
        })
        .collect();
    assert!(tickets.len() <= 1, "several introspections: {acts:?}");
    tickets.first().copied()
}

/// Answers `ticket` with a 200 `application/json` body of `claims` and drains the edge.
fn answer_claims(edge: &mut Edge, now: u64, ticket: u64, claims: &Value) -> Vec<Action> {
    let body = claims.to_string();
    let resp = HttpResponse {
        status: 200,
        headers: &[("content-type", "application/json")],
        body: body.as_bytes(),
    };
    edge.handle_introspection_response(now, ticket, &resp)
        .expect("a ticket the edge just issued is known");
    edge.drain_actions()
}

/// Sends request `id` (`path`, these headers) and, when it asks for an introspection, answers it
/// with `claims`. Returns every action; the request must be decided.
fn request_answered(
    edge: &mut Edge,
    now: u64,
    id: u64,
    path: &'static str,
    headers: &[(&str, &str)],
    claims: &Value,
) -> Vec<Action> {
    edge.handle_request(
        now,
        &Request {
            headers,
            ..get(id, path)
        },
    );
    let mut acts = edge.drain_actions();
    if let Some(t) = introspect_ticket(&acts) {
        acts.extend(answer_claims(edge, now, t, claims));
    }
    assert!(
        decision(&acts, id).is_some(),
        "request {id} got no decision: {acts:?}"
    );
    acts
}

/// Panics when `secret` (≥ 16 bytes) is in `out` but not in the fixed text `vocab`.
fn assert_not_echoed(secret: &str, what: &str, out: &str, vocab: &str) {
    if secret.len() >= 16 && out.contains(secret) && !vocab.contains(secret) {
        panic!(
            "{what} ({} bytes) leaked into action output:\n{out}",
            secret.len()
        );
    }
}

/// An Ed25519 key is "held" by a JWKS document when its public `x` is in it: as a JSON string
/// (after undoing padding and the standard alphabet) or, for documents serde does not read, as
/// its first 16 characters anywhere in the bytes.
fn document_holds(doc: &[u8], x: &str) -> bool {
    fn walk(v: &Value, x: &str) -> bool {
        match v {
            Value::String(s) => {
                let n: String = s
                    .trim_end_matches('=')
                    .chars()
                    .map(|c| match c {
                        '+' => '-',
                        '/' => '_',
                        c => c,
                    })
                    .collect();
                n == x
            }
            Value::Array(a) => a.iter().any(|v| walk(v, x)),
            Value::Object(o) => o.values().any(|v| walk(v, x)),
            _ => false,
        }
    }
    let raw = String::from_utf8_lossy(doc);
    raw.contains(&x[..16])
        || raw.contains(&x[..16].replace('-', "+").replace('_', "/"))
        || serde_json::from_slice::<Value>(doc).is_ok_and(|v| walk(&v, x))
}

// ---------------------------------------------------------------------------------------------
// dpop_proof
// ---------------------------------------------------------------------------------------------

/// The opaque token of `dpop_proof`, bound (`cnf.jkt`) to `tests/vectors/keys/client-dpop-es256`.
pub const DPOP_TOKEN: &str = "dpop-bound-token-0123456789abcdef";
/// RFC 7638 thumbprint of `client-dpop-es256` (printed by `scripts/gen_seeds.py dpop_proof`).
pub const DPOP_JKT: &str = "_ADhLm-6_pZH6cexmpaKBVPcdADgtBMb6td7XUkuG8Q";

fn dpop_claims() -> Value {
    let mut c = active_claims();
    c["cnf"] = json!({ "jkt": DPOP_JKT });
    c["token_type"] = json!("DPoP");
    c
}

/// `dpop_proof` as a scenario: a fresh rfc7662 edge caches [`DPOP_TOKEN`] (DPoP-bound) through
/// a first request at `T0_MS`, presented as `Bearer` (refused: the token is bound; cached all the
/// same) or, with `setup_proof`, as `DPoP` with that proof. Then request 2,
/// `GET https://api.example/orders/1` with `Authorization: DPoP <DPOP_TOKEN>` and one `DPoP`
/// header per entry of `proofs`, at `T0_MS + 1000`. Checks the decision contract and that neither
/// the token nor a proof is echoed; returns whether request 2 was forwarded, and its actions.
pub fn dpop_outcome(setup_proof: Option<&str>, proofs: &[&str]) -> (bool, Vec<Action>) {
    let mut edge = fresh_edge("rfc7662");
    let auth = format!("DPoP {DPOP_TOKEN}");
    let bearer = format!("Bearer {DPOP_TOKEN}");
    let setup: Vec<(&str, &str)> = match setup_proof {
        Some(p) => vec![("authorization", auth.as_str()), ("dpop", p)],
        None => vec![("authorization", bearer.as_str())],
    };
    let mut acts = request_answered(&mut edge, T0_MS, 1, "/orders/1", &setup, &dpop_claims());
    let mut headers: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
    headers.extend(proofs.iter().map(|p| ("dpop", *p)));
    edge.handle_request(
        T0_MS + 1000,
        &Request {
            headers: &headers,
            ..get(2, "/orders/1")
        },
    );
    let acts2 = edge.drain_actions();
    assert!(
        introspect_ticket(&acts2).is_none(),
        "a cached token was introspected again: {acts2:?}"
    );
    let forwarded = match decision(&acts2, 2) {
        None => panic!("request 2 never decided: {acts2:?}"),
        Some(Action::Forward(f)) => {
            assert!(
                f.token.cnf_jkt.as_deref() == Some(DPOP_JKT),
                "Forward of a DPoP request for a token not bound to the proof key: {f:?}"
            );
            true
        }
        Some(_) => false,
    };
    acts.extend(acts2);
    let out = debug_all(&acts);
    assert!(
        !out.contains(DPOP_TOKEN),
        "the DPoP-bound token leaked: {out}"
    );
    for p in proofs {
        assert_not_echoed(p, "a DPoP proof", &out, dpop_vocabulary());
    }
    (forwarded, acts)
}

/// What `dpop_outcome` prints for fixed proofs: a fuzzed proof found only inside it is not a leak.
fn dpop_vocabulary() -> &'static str {
    static VOCAB: OnceLock<String> = OnceLock::new();
    VOCAB.get_or_init(|| {
        let mut s = config_value("rfc7662").to_string();
        for proofs in [&[][..], &[""], &["x.y.z"], &["a", "b"]] {
            let mut edge = fresh_edge("rfc7662");
            let auth = format!("DPoP {DPOP_TOKEN}");
            let mut headers: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
            headers.extend(proofs.iter().map(|p| ("dpop", *p)));
            let acts = request_answered(&mut edge, T0_MS, 1, "/orders/1", &headers, &dpop_claims());
            s.push_str(&debug_all(&acts));
        }
        s
    })
}

/// Target `dpop_proof`: `data` (lossy UTF-8) split at NUL into up to four `DPoP` header values
/// (none for empty input), on a request presenting the cached DPoP-bound [`DPOP_TOKEN`] in the
/// `DPoP` scheme. Never panics; exactly one decision, without an introspection; statuses in the
/// contract; never a `Forward`: a fuzz input cannot sign with the bound key (`scripts/gen_seeds.py`
/// keeps every seed short of a valid fresh proof for this request); neither the token nor a proof
/// is echoed in any action.
pub fn dpop_proof(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let proofs: Vec<&str> = if text.is_empty() {
        Vec::new()
    } else {
        text.split('\0').take(4).collect()
    };
    let (forwarded, acts) = dpop_outcome(None, &proofs);
    assert!(
        !forwarded,
        "Forward for a DPoP proof the fuzzer made (cannot be signed by the bound key): {acts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// security_event
// ---------------------------------------------------------------------------------------------

const SET_TOKEN: &str = "set-fuzz-cached-token-0123456789";

/// `security_event` as a scenario: a fresh rfc7662 edge with [`SET_TOKEN`] cached (request 1),
/// then `data` through `handle_security_event` (lossy UTF-8), through `handle_admin_revocation`
/// as `application/secevent+jwt` without credentials, and again with the admin bearer token (which
/// must not stand in for the SET's signature), each followed by a request with the cached token.
/// Errors must be 400/401 with a JSON body; a request after a refusal must be forwarded (nothing
/// changed). Returns whether any of the three calls accepted the SET.
pub fn security_event_accepted(data: &[u8]) -> bool {
    let mut edge = fresh_edge("rfc7662");
    let auth = format!("Bearer {SET_TOKEN}");
    let headers = [("authorization", auth.as_str())];
    let acts = request_answered(&mut edge, T0_MS, 1, "/orders/1", &headers, &active_claims());
    assert!(
        matches!(decision(&acts, 1), Some(Action::Forward(_))),
        "harness: active token not forwarded: {acts:?}"
    );
    let text = String::from_utf8_lossy(data);
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let mut accepted = false;
    for step in 0..3u64 {
        let now = T0_MS + 10 + step;
        let result = match step {
            0 => edge.handle_security_event(now, &text),
            1 => edge.handle_admin_revocation(now, Some("application/secevent+jwt"), None, data),
            _ => edge.handle_admin_revocation(
                now,
                Some("Application/SecEvent+JWT; charset=utf-8"),
                Some(&admin),
                data,
            ),
        };
        match result {
            Ok(()) => accepted = true,
            Err(e) => {
                assert!(
                    matches!(e.status(), 400 | 401),
                    "SET error status {} ({e})",
                    e.status()
                );
                let body: Value = serde_json::from_str(&e.body())
                    .unwrap_or_else(|_| panic!("SET error body is not JSON: {}", e.body()));
                assert!(body.get("error").is_some(), "SET error body: {body}");
            }
        }
        let _ = edge.drain_actions();
        let id = 10 + step;
        edge.handle_request(
            now,
            &Request {
                headers: &headers,
                ..get(id, "/orders/1")
            },
        );
        let acts = edge.drain_actions();
        match decision(&acts, id) {
            None => panic!("request {id} not decided at once after a SET (step {step}): {acts:?}"),
            Some(Action::Forward(_)) => {}
            Some(Action::Reject(r)) => assert!(
                accepted,
                "a refused SET changed a decision (step {step}): {r:?}"
            ),
            Some(_) => unreachable!(),
        }
    }
    accepted
}

/// Target `security_event`: never panics, errors are 400/401 with JSON bodies, the edge still
/// decides (and forwards) the cached token, and the SET is never accepted: fuzz input cannot
/// carry a signature by `revocation.set_key` (the corpus holds no SET the core must accept).
pub fn security_event(data: &[u8]) {
    assert!(
        !security_event_accepted(data),
        "a SET the fuzzer made was accepted"
    );
}

// ---------------------------------------------------------------------------------------------
// jwks_document
// ---------------------------------------------------------------------------------------------

/// Public `x` of `as-ed25519` (kid `as-ed`, signs the rfc9701 fixture) and `as-es256` (kid
/// `as-es`, signs the curity fixture), as in [`AS_JWKS`].
const AS_ED_X: &str = "tsfxiHW1qI4oskVsNuTwBWqOqaxJ3Wr8KRaWp6LRRF8";
const AS_ES_X: &str = "cg_ZqrIvj9doW5hOF77e9fHEAEccZEcaiwckyIZl5nE";
/// The introspection answers of `jwks_document`, validly signed by the AS keys.
const VALID_RFC9701: &[u8] = include_bytes!("../tests/fixtures/valid_rfc9701");
const VALID_CURITY: &[u8] = include_bytes!("../tests/fixtures/valid_curity");

/// [`AS_JWKS`] with only the key of `kid`.
fn as_jwks_only(kid: &str) -> String {
    let mut v: Value = serde_json::from_str(AS_JWKS).expect("AS_JWKS is JSON");
    v["keys"]
        .as_array_mut()
        .expect("keys")
        .retain(|k| k["kid"] == kid);
    v.to_string()
}

/// Drains `edge`, answering every JWKS `Fetch` with `doc` and, when nothing is left, letting time
/// pass to the core's next deadline, until request `id` is decided (a bounded number of rounds).
fn drive_with_jwks(edge: &mut Edge, mut now: u64, id: u64, doc: &[u8], acts: &mut Vec<Action>) {
    for _ in 0..8 {
        let new = edge.drain_actions();
        let fetch = new.iter().any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks));
        acts.extend(new);
        if fetch {
            edge.handle_jwks(now, Ok(doc));
            continue;
        }
        if decision(acts, id).is_some() {
            return;
        }
        now = edge.poll_timeout().unwrap_or(now).max(now) + 1;
        edge.handle_timeout(now);
    }
}

/// `jwks_document` as a scenario for `dialect` (`rfc9701`: answer signed by `as-ed`; `curity`:
/// by `as-es`). `at_start`: `doc` is the edge's first JWKS; otherwise the first JWKS is the AS's
/// other key only, so the answer's kid is unknown and `doc` is what the refetch brings. Either
/// way every later fetch is answered with `doc`. The request (1 s after start, so an unknown kid
/// may fetch at once) must be decided exactly once, and so must a second one after it. Returns
/// whether request 1 was forwarded.
pub fn jwks_outcome(dialect: &str, at_start: bool, doc: &[u8]) -> bool {
    let (answer, other_kid) = match dialect {
        "rfc9701" => (VALID_RFC9701, "as-es"),
        "curity" => (VALID_CURITY, "as-ed"),
        _ => panic!("jwks_outcome: no signed fixture for {dialect}"),
    };
    let mut edge = Edge::new(fixed_config(dialect), [7; 32], T0_MS);
    let first = edge.drain_actions();
    assert!(
        first.iter().any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks)),
        "harness: no JWKS fetch at start ({dialect})"
    );
    let other = as_jwks_only(other_kid);
    edge.handle_jwks(T0_MS, Ok(if at_start { doc } else { other.as_bytes() }));
    let _ = edge.drain_actions();
    let now = T0_MS + 1000;
    let auth = format!("Bearer {OPAQUE}");
    let headers = [("authorization", auth.as_str())];
    edge.handle_request(
        now,
        &Request {
            headers: &headers,
            ..get(1, "/orders/1")
        },
    );
    let mut acts = edge.drain_actions();
    let ticket = introspect_ticket(&acts)
        .unwrap_or_else(|| panic!("harness: no Introspect ({dialect}): {acts:?}"));
    let (status, ct, _, body) = response_parts(dialect, answer);
    let ct = ct.expect("fixture content-type");
    let resp = HttpResponse {
        status,
        headers: &[("content-type", ct.as_str())],
        body: &body,
    };
    edge.handle_introspection_response(now, ticket, &resp)
        .expect("a ticket the edge just issued is known");
    drive_with_jwks(&mut edge, now, 1, doc, &mut acts);
    let forwarded = match decision(&acts, 1) {
        None => panic!("request 1 never decided ({dialect}, at_start {at_start}): {acts:?}"),
        Some(a) => matches!(a, Action::Forward(_)),
    };
    // The edge keeps deciding: the same token again, its introspection (if any) failing.
    let later = edge.poll_timeout().unwrap_or(now).max(now) + 1;
    edge.handle_request(
        later,
        &Request {
            headers: &headers,
            ..get(2, "/orders/1")
        },
    );
    let mut acts2 = edge.drain_actions();
    if let Some(t) = introspect_ticket(&acts2) {
        edge.handle_introspection_failure(later, t, "fuzz: connection refused")
            .expect("a ticket the edge just issued is known");
    }
    drive_with_jwks(&mut edge, later, 2, doc, &mut acts2);
    if let Some(Action::Forward(_)) = decision(&acts2, 2) {
        assert!(
            forwarded,
            "request 2 forwarded, request 1 was not ({dialect})"
        );
    } else if decision(&acts2, 2).is_none() {
        panic!("request 2 never decided ({dialect}, at_start {at_start}): {acts2:?}");
    }
    assert!(
        !debug_all(&acts).contains(OPAQUE) && !debug_all(&acts2).contains(OPAQUE),
        "opaque token leaked ({dialect})"
    );
    forwarded
}

/// Target `jwks_document`: `data` as the AS's JWKS, at start and after an unknown kid, for an
/// RFC 9701 answer signed by `as-ed` (Ed25519) and a Curity JWT signed by `as-es` (P-256). Never
/// panics; each request is decided exactly once; never a `Forward` unless the document holds the
/// public key that signed the answer (the corpus never does, and fuzz input cannot derive it):
/// a document cannot make a signature by a key it does not hold verify.
pub fn jwks_document(data: &[u8]) {
    for (dialect, x) in [("rfc9701", AS_ED_X), ("curity", AS_ES_X)] {
        for at_start in [true, false] {
            if jwks_outcome(dialect, at_start, data) {
                assert!(
                    document_holds(data, x),
                    "{dialect} (at_start {at_start}): Forward of an answer signed by a key the \
                     JWKS does not hold: {}",
                    String::from_utf8_lossy(data)
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// path_routing
// ---------------------------------------------------------------------------------------------

/// The cached token of `path_routing`: scope `basic` only, every route's audience.
const ROUTING_TOKEN: &str = "routing-fuzz-token-0123456789abcd";
/// Path prefixes the token's scope does not reach: no reading of a forwarded path may land there.
pub const PROTECTED_PREFIXES: [&str; 3] = ["/orders", "/orders/write", "/admin"];

fn routing_config() -> Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        let mut v = config_value("rfc7662");
        v["routes"] = json!([
            { "path_prefix": "/orders", "required_scopes": ["orders:read"], "audience": "orders-api" },
            { "path_prefix": "/orders/write", "required_scopes": ["orders:write"], "audience": "orders-write-api" },
            { "path_prefix": "/admin", "required_scopes": ["admin"], "audience": "admin-api" },
            { "path_prefix": "/", "required_scopes": ["basic"], "audience": "public-api" }
        ]);
        Config::from_json(&v.to_string(), &|_| None)
            .unwrap_or_else(|e| panic!("harness routing config is invalid: {e}"))
    })
    .clone()
}

fn routing_claims() -> Value {
    let mut c = active_claims();
    c["scope"] = json!("basic");
    c["aud"] = json!(["orders-api", "orders-write-api", "admin-api", "public-api"]);
    c
}

/// The `aud` of the JWT in a `Forward`'s header value (`Bearer <jwt>`).
fn minted_aud(header_value: &str) -> Option<String> {
    let jwt = header_value.rsplit(' ').next()?;
    let payload = jwt.split('.').nth(1)?;
    let bytes = b64url_decode(payload)?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("aud")?.as_str().map(str::to_owned)
}

fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// The reference reading of a request target, written for this harness without the core's
/// code: every way a lenient server behind the edge could read the path. The path is cut at `?`
/// or `#`, then each combination of: percent-decoding (none, once, until nothing changes; bytes
/// read as UTF-8, lossily), `\` read as `/`, `;parameters` dropped from each segment, trailing
/// dots (and spaces) dropped from each segment except `.` and `..`, and dot segments resolved
/// (RFC 3986 §5.2.4, empty segments dropped); every reading is case-folded (ASCII, and any
/// non-ASCII letter whose upper or lower case is one ASCII letter, combining marks aside).
pub fn lenient_readings(target: &str) -> Vec<String> {
    let path = target.split(['?', '#']).next().unwrap_or("");
    let once = percent_decode(path);
    let mut full = once.clone();
    for _ in 0..4 {
        let next = percent_decode(&full);
        if next == full {
            break;
        }
        full = next;
    }
    let mut out = Vec::new();
    for decoded in [path.to_string(), once, full] {
        for flags in 0u8..16 {
            let mut p = decoded.clone();
            if flags & 1 != 0 {
                p = p.replace('\\', "/");
            }
            let segs: Vec<String> = p
                .split('/')
                .map(|seg| {
                    let mut seg = seg;
                    if flags & 2 != 0 {
                        seg = seg.split(';').next().unwrap_or("");
                    }
                    if flags & 4 != 0 && seg != "." && seg != ".." {
                        seg = seg.trim_end_matches(['.', ' ']);
                    }
                    seg.to_string()
                })
                .collect();
            let reading = if flags & 8 != 0 {
                let mut stack: Vec<&str> = Vec::new();
                for s in &segs {
                    match s.as_str() {
                        "" | "." => {}
                        ".." => {
                            stack.pop();
                        }
                        s => stack.push(s),
                    }
                }
                format!("/{}", stack.join("/"))
            } else {
                segs.join("/")
            };
            out.push(fold_case(&reading));
        }
    }
    out.sort();
    out.dedup();
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(h * 16 + l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fold_case(s: &str) -> String {
    let single_ascii = |mapped: &mut dyn Iterator<Item = char>| {
        let mut letters = mapped.filter(|c| !('\u{300}'..='\u{36f}').contains(c));
        match (letters.next(), letters.next()) {
            (Some(a), None) if a.is_ascii_alphabetic() => Some(a.to_ascii_lowercase()),
            _ => None,
        }
    };
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else if let Some(a) =
            single_ascii(&mut c.to_uppercase()).or_else(|| single_ascii(&mut c.to_lowercase()))
        {
            out.push(a);
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether some lenient reading of `target` lands on a protected prefix (segment boundary).
pub fn reaches_protected(target: &str) -> Option<(String, &'static str)> {
    for r in lenient_readings(target) {
        for p in PROTECTED_PREFIXES {
            if r == p || r.strip_prefix(p).is_some_and(|rest| rest.starts_with('/')) {
                return Some((r, p));
            }
        }
    }
    None
}

/// `path_routing` as a scenario: the token cached through `GET /`, then request 2 with `method`
/// and `target`. Returns the audience of the JWT forwarded (the route the core matched), `None`
/// when refused.
pub fn routing_outcome(method: &str, target: &str) -> Option<String> {
    let mut edge = Edge::new(routing_config(), [7; 32], T0_MS);
    let first = edge.drain_actions();
    if first.iter().any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks)) {
        edge.handle_jwks(T0_MS, Ok(AS_JWKS.as_bytes()));
        let _ = edge.drain_actions();
    }
    let auth = format!("Bearer {ROUTING_TOKEN}");
    let headers = [("authorization", auth.as_str())];
    let acts = request_answered(&mut edge, T0_MS, 1, "/", &headers, &routing_claims());
    assert!(
        matches!(decision(&acts, 1), Some(Action::Forward(_))),
        "harness: GET / not forwarded: {acts:?}"
    );
    edge.handle_request(
        T0_MS + 1,
        &Request {
            id: 2,
            method,
            scheme: "https",
            authority: "api.example",
            path: target,
            headers: &headers,
            client_cert_thumbprint: None,
        },
    );
    let acts = edge.drain_actions();
    assert!(
        introspect_ticket(&acts).is_none(),
        "a cached token was introspected again: {acts:?}"
    );
    match decision(&acts, 2) {
        None => panic!("request 2 ({method} {target:?}) never decided: {acts:?}"),
        Some(Action::Forward(f)) => {
            assert!(f.rewritten_path.is_none(), "path rewritten: {f:?}");
            Some(minted_aud(&f.header_value).unwrap_or_default())
        }
        Some(_) => None,
    }
}

/// Target `path_routing`: `[method NUL] target` (lossy UTF-8; method `GET` without a NUL)
/// against routes `/orders`, `/orders/write`, `/admin` and a catch-all `/` whose scope is the
/// only one the cached token has. Never panics; one decision; a `Forward` only when the core
/// matched the catch-all (the minted JWT's `aud` is `public-api`) and no reading in
/// [`lenient_readings`] reaches `/orders`, `/orders/write` or `/admin`.
pub fn path_routing(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (method, target) = match text.split_once('\0') {
        Some((m, t)) => (m, t),
        None => ("GET", &*text),
    };
    if let Some(aud) = routing_outcome(method, target) {
        assert_eq!(
            aud, "public-api",
            "{method} {target:?}: forwarded on a route other than the catch-all"
        );
        if let Some((reading, prefix)) = reaches_protected(target) {
            panic!(
                "{method} {target:?} forwarded on the catch-all, but a lenient server reads it as \
                 {reading:?}, under {prefix}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// shared_messages
// ---------------------------------------------------------------------------------------------

/// The token cached before a shared revocation arrives (claims: [`active_claims`]).
pub const SHARED_TOKEN: &str = "shared-cached-token-0123456789abcd";
/// What a split-mode request presents: base64url of 64 bytes that sign nothing.
pub const SPLIT_SIGNATURE: &str =
    "c3BsaXQtZnV6ei1zaWduYXR1cmUtbm90LWEtc2lnbmF0dXJlLW9mLWFueXRoaW5nLWF0LWFsbC0wMTIzNDU2IQ";

/// What a shared revocation did: whether it was accepted, whether it covers [`SHARED_TOKEN`]
/// (by the rules of `docs`: token, fingerprint, `jti`, or `sub` / `client_id` issued at or
/// before its `since`), and whether the cached token was forwarded afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedOutcome {
    /// `Revocation::from_json` and `handle_revocation(.., Origin::Shared)` both succeeded.
    pub accepted: bool,
    /// The accepted revocation selects the cached token.
    pub covers: bool,
    /// The request after it was forwarded.
    pub forwarded: bool,
}

/// The message as another instance's `SharedPublish` arrives at a host: parsed with
/// `Revocation::from_json` (what every binding and the component do) and handled with
/// `Origin::Shared`, on an edge that has [`SHARED_TOKEN`] cached; then the token again.
pub fn shared_revocation_outcome(data: &[u8]) -> SharedOutcome {
    use phantom_edge_core::{Origin, Revocation, Selector};
    let mut edge = fresh_edge("rfc7662");
    let auth = format!("Bearer {SHARED_TOKEN}");
    let headers = [("authorization", auth.as_str())];
    let mut acts = request_answered(&mut edge, T0_MS, 1, "/orders/1", &headers, &active_claims());
    assert!(
        matches!(decision(&acts, 1), Some(Action::Forward(_))),
        "harness: active token not forwarded: {acts:?}"
    );
    let now = T0_MS + 10;
    let check_err = |status: u16, body: String| {
        assert!(
            matches!(status, 400 | 401),
            "revocation error status {status}"
        );
        assert!(
            serde_json::from_str::<Value>(&body).is_ok(),
            "revocation error body is not JSON: {body}"
        );
    };
    let mut raw_token = None;
    let (accepted, covers) = match Revocation::from_json(data) {
        Err(e) => {
            check_err(e.status(), e.body());
            (false, false)
        }
        Ok(rev) => {
            let since_ok = rev.since.is_none_or(|s| s.saturating_mul(1000) >= T0_MS);
            let covers = match &rev.selector {
                Selector::Token(t) => {
                    raw_token = Some(t.clone());
                    t == SHARED_TOKEN
                }
                Selector::Fingerprint(f) => *f == edge.fingerprint(SHARED_TOKEN),
                Selector::Jti(j) => j == "jti-1",
                Selector::Sub(s) => s == "alice" && since_ok,
                Selector::ClientId(c) => c == "app" && since_ok,
                _ => false,
            };
            match edge.handle_revocation(now, rev, Origin::Shared) {
                Ok(()) => {
                    let published = edge.drain_actions();
                    assert!(
                        !published
                            .iter()
                            .any(|a| matches!(a, Action::SharedPublish(_))),
                        "a revocation from another instance was published again: {published:?}"
                    );
                    acts.extend(published);
                    (true, covers)
                }
                Err(e) => {
                    check_err(e.status(), e.body());
                    (false, false)
                }
            }
        }
    };
    acts.extend(edge.drain_actions());
    edge.handle_request(
        now + 10,
        &Request {
            headers: &headers,
            ..get(2, "/orders/1")
        },
    );
    let acts2 = edge.drain_actions();
    let forwarded = match decision(&acts2, 2) {
        None => panic!("request 2 not decided at once after a shared revocation: {acts2:?}"),
        Some(Action::Forward(_)) => true,
        Some(Action::Reject(r)) => {
            assert!(
                accepted,
                "a refused shared revocation refused a token: {r:?}"
            );
            assert_eq!(r.status, 401, "revoked token refused with {r:?}");
            false
        }
        Some(_) => unreachable!(),
    };
    assert!(
        !(covers && forwarded),
        "the cached token was forwarded after a shared revocation that covers it"
    );
    acts.extend(acts2);
    let out = debug_all(&acts);
    assert!(
        !out.contains(SHARED_TOKEN),
        "the cached token leaked: {out}"
    );
    if let Some(t) = raw_token {
        assert_not_echoed(&t, "a revoked raw token", &out, vocabulary());
    }
    SharedOutcome {
        accepted,
        covers,
        forwarded,
    }
}

fn split_config() -> Config {
    static CFG: OnceLock<Config> = OnceLock::new();
    CFG.get_or_init(|| {
        let v = json!({
            "mode": "split",
            "authorization_server": {
                "issuer": ISSUER,
                "jwks_uri": "https://as.example/jwks"
            },
            "cache": { "max_ttl": "300s", "negative_ttl": "10s", "max_entries": 1000 },
            "routes": [
                { "path_prefix": "/orders", "required_scopes": ["orders:read"], "audience": "orders-api" }
            ],
            // Plain header.payload values reach the verifier (the surface worth fuzzing: a
            // fuzzed sealed value almost never opens); sealed ones are read as well.
            "split": { "plain_values": true }
        });
        Config::from_json(&v.to_string(), &|_| None)
            .unwrap_or_else(|e| panic!("harness split config is invalid: {e}"))
    })
    .clone()
}

/// A split-mode request presenting `signature`, its `SharedLookup` answered `Found(value)` (lossy
/// UTF-8), JWKS fetches answered with [`AS_JWKS`], time passing until it is decided; then a
/// second request with the same signature, its lookup (if any) answered `NotFound`. Checks the
/// decision contract and that the signature is in no action but a `Forward`'s header. Returns
/// whether request 1 was forwarded.
pub fn split_outcome(signature: &str, value: &[u8]) -> bool {
    let mut edge = Edge::new(split_config(), [7; 32], T0_MS);
    let mut acts = Vec::new();
    drain_answering_jwks(&mut edge, T0_MS, &mut acts);
    let auth = format!("Bearer {signature}");
    let headers = [("authorization", auth.as_str())];
    edge.handle_request(
        T0_MS + 1,
        &Request {
            headers: &headers,
            ..get(1, "/orders/1")
        },
    );
    let mut acts = edge.drain_actions();
    let lookup = |acts: &[Action]| {
        acts.iter().find_map(|a| match a {
            Action::SharedLookup(l) => Some(l.ticket),
            _ => None,
        })
    };
    let ticket = lookup(&acts).unwrap_or_else(|| panic!("harness: no SharedLookup: {acts:?}"));
    let text = String::from_utf8_lossy(value);
    let mut now = T0_MS + 5;
    edge.handle_shared_lookup(now, ticket, LookupResult::Found(&text))
        .expect("a ticket the edge just issued is known");
    for _ in 0..6 {
        drain_answering_jwks(&mut edge, now, &mut acts);
        if decision(&acts, 1).is_some() {
            break;
        }
        now = edge.poll_timeout().unwrap_or(now).max(now) + 1;
        edge.handle_timeout(now);
    }
    let forwarded = match decision(&acts, 1) {
        None => panic!("split request never decided: {acts:?}"),
        Some(a) => matches!(a, Action::Forward(_)),
    };
    edge.handle_request(
        now + 1,
        &Request {
            headers: &headers,
            ..get(2, "/orders/1")
        },
    );
    let mut acts2 = edge.drain_actions();
    if let Some(t) = lookup(&acts2) {
        edge.handle_shared_lookup(now + 2, t, LookupResult::NotFound)
            .expect("a ticket the edge just issued is known");
        acts2.extend(edge.drain_actions());
    }
    match decision(&acts2, 2) {
        None => panic!("second split request never decided: {acts2:?}"),
        Some(Action::Forward(_)) => assert!(forwarded, "second split request forwarded alone"),
        Some(_) => {}
    }
    acts.extend(acts2);
    let not_forwards: Vec<Action> = acts
        .into_iter()
        .filter(|a| !matches!(a, Action::Forward(_)))
        .collect();
    let out = debug_all(&not_forwards);
    assert!(
        !out.contains(signature),
        "the presented split signature leaked: {out}"
    );
    forwarded
}

/// Target `shared_messages`: `data` as a revocation another instance published (parsed with
/// `Revocation::from_json`, handled with `Origin::Shared`) and as the split-mode store value for
/// a request presenting [`SPLIT_SIGNATURE`]. Never panics; errors are 400/401 with JSON bodies;
/// a shared revocation is not published again, and one that covers the cached token stops its
/// forwarding; neither raw token appears in any action; the split value never leads to a
/// `Forward` (no `header.payload` completes that signature into a valid JWT).
pub fn shared_messages(data: &[u8]) {
    shared_revocation_outcome(data);
    assert!(
        !split_outcome(SPLIT_SIGNATURE, data),
        "Forward of a split value the fuzzer made: {}",
        String::from_utf8_lossy(data)
    );
}
