//! Generates the shared cross-language test vectors in `tests/vectors/cases/`.
//!
//! Run: `cargo run -p phantom-edge-core --example gen_vectors`
//!
//! Each scenario drives a real [`Edge`] through the same driver the replay test uses
//! (`core/tests/vectors.rs`), records every step, and asserts the step's high-level expectation
//! while generating, so a wrong core cannot silently produce a wrong vector. Everything is
//! deterministic (fixed seed, virtual clock, EdDSA); the ES256 signatures, which are randomized,
//! are reused from the existing vector files when their signing input is unchanged, so running
//! the generator twice leaves `git diff` clean.

#[path = "../tests/support/mod.rs"]
mod support;
#[path = "../tests/vectors.rs"]
mod vectors;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use phantom_edge_core::{Action, AuditKind, Edge, Reason, SEALED_PREFIX, split_jwt};
use serde_json::{Value, json};
use support::{
    EDGE_ED25519, FakeAs, FetchKind, ISSUER, JWKS_URI, SET_ED25519, Signer, T0, base_config,
    forward, introspects, reject, shared_lookup, ticket,
};
use vectors::driver;

const SEED: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const CT_9701: &str = "application/token-introspection+jwt";
const CT_JSON: &str = "application/json";
const CT_JWT: &str = "application/jwt";
const ADMIN: &str = "Bearer admin-secret-0123456789";

// ---------------------------------------------------------------------------------------------
// Recording
// ---------------------------------------------------------------------------------------------

/// ES256 signatures are randomized: reuse an earlier signature over the same signing input.
struct Stable {
    prior: HashMap<String, String>,
}

impl Stable {
    fn load(dir: &Path) -> Self {
        fn walk(v: &Value, out: &mut HashMap<String, String>) {
            match v {
                Value::String(s) => {
                    for word in s.split(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
                    {
                        let parts: Vec<&str> = word.split('.').collect();
                        if parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) {
                            out.insert(format!("{}.{}", parts[0], parts[1]), word.to_string());
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                Value::Object(o) => o.values().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut prior = HashMap::new();
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path())
                    && let Ok(v) = serde_json::from_str::<Value>(&text)
                {
                    walk(&v, &mut prior);
                }
            }
        }
        Self { prior }
    }

    fn get(&self, jwt: String) -> String {
        let input = jwt
            .rsplit_once('.')
            .map(|(i, _)| i.to_string())
            .unwrap_or_default();
        self.prior.get(&input).cloned().unwrap_or(jwt)
    }
}

struct Scenario {
    name: String,
    description: String,
    config: Value,
    start: u64,
    now: u64,
    edge: Edge,
    initial: Vec<Action>,
    steps: Vec<Value>,
    fake: FakeAs,
}

impl Scenario {
    /// A scenario whose initial actions are left for the scenario to answer.
    fn raw(name: &str, description: &str, config: Value) -> Self {
        let cfg = driver::config_from(&config).expect("scenario config resolves");
        let seed = driver::seed_from(SEED).unwrap();
        let mut edge = Edge::new(cfg, seed, T0);
        let initial = edge.drain_actions();
        Self {
            name: name.into(),
            description: description.into(),
            config,
            start: T0,
            now: T0,
            edge,
            initial,
            steps: Vec::new(),
            fake: FakeAs::default(),
        }
    }

    /// A scenario with the initial JWKS fetch (if any) answered with the AS's full JWKS.
    fn new(name: &str, description: &str, config: Value) -> Self {
        let mut s = Self::raw(name, description, config);
        if s.initial
            .iter()
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        {
            let body = s.fake.jwks();
            let acts = s.jwks(&body);
            assert!(
                has_audit(&acts, AuditKind::JwksFetched),
                "{}: JWKS accepted",
                s.name
            );
        }
        s
    }

    fn advance(&mut self, ms: u64) -> &mut Self {
        self.now += ms;
        self
    }

    fn step(&mut self, input: Value) -> (Vec<Action>, Option<Value>) {
        let (actions, result) = driver::apply(&mut self.edge, self.now, &input)
            .unwrap_or_else(|e| panic!("{}: bad input: {e}", self.name));
        let mut step = json!({
            "now": self.now,
            "input": input,
            "expect": driver::canon_all(&actions),
        });
        if let Some(r) = &result {
            step["result"] = r.clone();
        }
        step["timeout"] = driver::timeout_json(&self.edge);
        self.steps.push(step);
        (actions, result)
    }

    fn request_full(
        &mut self,
        id: u64,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        cert: Option<&str>,
    ) -> Vec<Action> {
        let headers: Vec<Value> = headers.iter().map(|(n, v)| json!([n, v])).collect();
        self.step(json!({
            "type": "request", "id": id, "method": method, "scheme": "https",
            "authority": "api.example", "path": path, "headers": headers,
            "client_cert_thumbprint": cert,
        }))
        .0
    }

    fn request(&mut self, id: u64, path: &str, token: &str) -> Vec<Action> {
        let auth = format!("Bearer {token}");
        self.request_full(id, "GET", path, &[("authorization", &auth)], None)
    }

    fn respond_h(
        &mut self,
        ticket: u64,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Vec<Action> {
        let headers: Vec<Value> = headers.iter().map(|(n, v)| json!([n, v])).collect();
        let (acts, result) = self.step(json!({
            "type": "fetch_response", "ticket": ticket, "status": status,
            "headers": headers, "body": body,
        }));
        assert!(result.is_none(), "{}: ticket accepted", self.name);
        acts
    }

    fn respond(&mut self, ticket: u64, status: u16, content_type: &str, body: &str) -> Vec<Action> {
        self.respond_h(ticket, status, &[("content-type", content_type)], body)
    }

    /// The JWKS fetch in flight answers 200 with `body`.
    fn jwks(&mut self, body: &str) -> Vec<Action> {
        let ticket = self.jwks_ticket();
        self.step(json!({
            "type": "fetch_response", "ticket": ticket, "status": 200,
            "headers": [["content-type", "application/json"]], "body": body,
        }))
        .0
    }

    /// The JWKS fetch in flight fails in transport.
    fn jwks_failure(&mut self, detail: &str) -> Vec<Action> {
        let ticket = self.jwks_ticket();
        let (acts, r) =
            self.step(json!({ "type": "fetch_failure", "ticket": ticket, "detail": detail }));
        assert!(r.is_none(), "{}: JWKS ticket accepted", self.name);
        acts
    }

    fn jwks_ticket(&self) -> u64 {
        self.edge
            .jwks_in_flight()
            .unwrap_or_else(|| panic!("{}: a JWKS fetch in flight", self.name))
    }

    fn revoke(&mut self, selector: Value, origin: &str) -> (Vec<Action>, Value) {
        let (a, r) =
            self.step(json!({ "type": "revocation", "selector": selector, "origin": origin }));
        (a, r.expect("revocation has a result"))
    }

    fn admin(
        &mut self,
        content_type: Option<&str>,
        auth: Option<&str>,
        body: &str,
    ) -> (Vec<Action>, Value) {
        let (a, r) = self.step(json!({
            "type": "admin", "route": "revocations", "listener": "operator", "method": "POST",
            "content_type": content_type, "authorization": auth, "body": body,
        }));
        (a, r.expect("admin revocation has a result"))
    }

    fn security_event(&mut self, set: &str) -> (Vec<Action>, Value) {
        let (a, r) = self.step(json!({ "type": "security_event", "set": set }));
        (a, r.expect("security event has a result"))
    }

    fn timeout(&mut self) -> Vec<Action> {
        self.step(json!({ "type": "timeout" })).0
    }

    fn lookup(&mut self, ticket: u64, result: Value) -> Vec<Action> {
        let (a, r) =
            self.step(json!({ "type": "shared_lookup", "ticket": ticket, "result": result }));
        assert!(r.is_none(), "{}: lookup ticket accepted", self.name);
        a
    }

    /// An RFC 9701 answer (EdDSA) for the current time.
    fn rfc9701_body(&self, ti: Value) -> String {
        self.fake.rfc9701(&self.fake.ed, ti, self.now)
    }

    fn claims(&self, scope: &str) -> Value {
        FakeAs::claims(self.now, scope)
    }

    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "config": self.config,
            "seed": SEED,
            "start": self.start,
            "initial": driver::canon_all(&self.initial),
            "steps": self.steps,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions on the real actions
// ---------------------------------------------------------------------------------------------

fn has_audit(acts: &[Action], kind: AuditKind) -> bool {
    acts.iter()
        .any(|a| matches!(a, Action::Audit(e) if e.kind == kind))
}

fn expect_reject(acts: &[Action], status: u16, reason: Reason) {
    let r = reject(acts);
    assert_eq!((r.status, r.reason), (status, reason), "reject in {acts:?}");
    assert!(
        introspects(acts).is_empty(),
        "no introspection with the reject"
    );
}

fn expect_forward(acts: &[Action]) -> String {
    let f = forward(acts);
    assert_eq!(&*f.header_name, "authorization");
    assert!(f.strip_headers.iter().any(|h| h == "authorization"));
    f.header_value
        .strip_prefix("Bearer ")
        .expect("Bearer value")
        .to_string()
}

fn no_decision(acts: &[Action]) {
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::Forward(_) | Action::Reject(_))),
        "no decision expected yet: {acts:?}"
    );
}

fn expect_introspect(acts: &[Action]) -> u64 {
    no_decision(acts);
    ticket(acts)
}

fn www(acts: &[Action]) -> String {
    reject(acts).www_authenticate.clone().unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

fn cfg(dialect: &str) -> Value {
    base_config(dialect)
}

fn cfg_with(dialect: &str, f: impl FnOnce(&mut Value)) -> Value {
    let mut c = base_config(dialect);
    f(&mut c);
    c
}

/// Curity and Keycloak without `[assertions]`: the AS-issued JWT is forwarded as is.
fn as_jwt_cfg(dialect: &str) -> Value {
    cfg_with(dialect, |c| {
        c.as_object_mut().unwrap().remove("assertions");
    })
}

fn rfc7662_cfg() -> Value {
    cfg_with("rfc7662", |c| {
        c["authorization_server"]
            .as_object_mut()
            .unwrap()
            .remove("jwks_uri");
    })
}

fn split_cfg() -> Value {
    json!({
        "mode": "split",
        "authorization_server": { "issuer": ISSUER, "jwks_uri": JWKS_URI },
        "cache": { "max_ttl": "300s", "negative_ttl": "10s", "max_entries": 1000 },
        "routes": [
            { "path_prefix": "/orders", "required_scopes": ["orders:read"], "audience": "orders-api" }
        ]
    })
}

// ---------------------------------------------------------------------------------------------
// Scenario helpers
// ---------------------------------------------------------------------------------------------

/// Request + RFC 9701 active answer → forward. Returns the minted upstream JWT.
fn rfc9701_forward(s: &mut Scenario, id: u64, path: &str, token: &str, ti: Value) -> Vec<Action> {
    let acts = s.request(id, path, token);
    let t = expect_introspect(&acts);
    let body = s.rfc9701_body(ti);
    s.respond(t, 200, CT_9701, &body)
}

/// Request + plain RFC 7662 JSON answer.
fn rfc7662_answer(
    s: &mut Scenario,
    id: u64,
    path: &str,
    token: &str,
    claims: &Value,
    headers: &[(&str, &str)],
) -> Vec<Action> {
    let acts = s.request(id, path, token);
    let t = expect_introspect(&acts);
    let mut h = vec![("content-type", CT_JSON)];
    h.extend_from_slice(headers);
    s.respond_h(t, 200, &h, &claims.to_string())
}

fn set_jwt(claims: &Value) -> String {
    Signer::ed25519(SET_ED25519, None).sign("secevent+jwt", claims)
}

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

// ---------------------------------------------------------------------------------------------
// The scenarios
// ---------------------------------------------------------------------------------------------

fn scenarios(stable: &Stable) -> Vec<Scenario> {
    let mut out = Vec::new();

    // --- Dialects --------------------------------------------------------------------------

    {
        let mut s = Scenario::new(
            "rfc9701-active-forward",
            "RFC 9701 dialect: a signed (EdDSA) introspection response for an active token; the edge mints an EdDSA upstream JWT for the route's audience.",
            cfg("rfc9701"),
        );
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        let jwt = expect_forward(&acts);
        assert_eq!(support::jwt_claims(&jwt)["aud"], "orders-api");
        assert_eq!(support::jwt_header(&jwt)["kid"], "edge-1");
        assert!(has_audit(&acts, AuditKind::Cached));
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "rfc9701-es256-active-forward",
            "RFC 9701 dialect with an ES256-signed introspection response (ES256 signatures are randomized; the generator reuses the recorded one).",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-es");
        let t = expect_introspect(&acts);
        let body = stable.get(s.fake.rfc9701(&s.fake.es, s.claims("orders:read"), s.now));
        let acts = s.respond(t, 200, CT_9701, &body);
        expect_forward(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "curity-active-forward",
            "Curity dialect: 200 application/jwt with the access-token JWT, which is forwarded as is.",
            as_jwt_cfg("curity"),
        );
        let acts = s.request(1, "/orders/1", "tok-c");
        let t = expect_introspect(&acts);
        let jwt = s.fake.access_jwt(&s.fake.ed, &s.claims("orders:read"));
        let acts = s.respond(t, 200, CT_JWT, &jwt);
        assert_eq!(expect_forward(&acts), jwt);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "curity-204-inactive",
            "Curity dialect: 204 No Content means inactive → 401 invalid_token.",
            as_jwt_cfg("curity"),
        );
        let acts = s.request(1, "/orders/1", "tok-c");
        let t = expect_introspect(&acts);
        let acts = s.respond_h(t, 204, &[], "");
        expect_reject(&acts, 401, Reason::Inactive);
        assert!(www(&acts).contains("error=\"invalid_token\""));
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "keycloak-jwt-member-forward",
            "Keycloak dialect: RFC 7662 JSON with a `jwt` member, which is verified and forwarded as is.",
            as_jwt_cfg("keycloak"),
        );
        let acts = s.request(1, "/orders/1", "tok-k");
        let t = expect_introspect(&acts);
        let jwt = s.fake.access_jwt(&s.fake.ed, &s.claims("orders:read"));
        let body = json!({ "active": true, "jwt": jwt }).to_string();
        let acts = s.respond(t, 200, CT_JSON, &body);
        assert_eq!(expect_forward(&acts), jwt);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "keycloak-inactive",
            "Keycloak dialect: {\"active\": false} → 401.",
            as_jwt_cfg("keycloak"),
        );
        let acts = s.request(1, "/orders/1", "tok-k");
        let t = expect_introspect(&acts);
        let acts = s.respond(t, 200, CT_JSON, r#"{"active":false}"#);
        expect_reject(&acts, 401, Reason::Inactive);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "keycloak-active-without-jwt",
            "Keycloak dialect: active but no `jwt` member → the answer is unusable → 503.",
            as_jwt_cfg("keycloak"),
        );
        let acts = s.request(1, "/orders/1", "tok-k");
        let t = expect_introspect(&acts);
        let acts = s.respond(t, 200, CT_JSON, r#"{"active":true,"scope":"orders:read"}"#);
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "rfc7662-minted-forward",
            "Plain RFC 7662 JSON (no jwks_uri, so no initial JWKS fetch); the edge mints the upstream JWT.",
            rfc7662_cfg(),
        );
        assert!(s.initial.is_empty());
        let c = s.claims("orders:read orders:write");
        let acts = rfc7662_answer(&mut s, 1, "/orders/1", "tok-p", &c, &[]);
        let jwt = expect_forward(&acts);
        assert_eq!(support::jwt_claims(&jwt)["scope"], "orders:read");
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "rfc7662-client-secret-post",
            "client_secret_post: the credentials go in the form body, no Authorization header on the introspection request.",
            cfg_with("rfc7662", |c| {
                c["authorization_server"]["client_auth"] = "client_secret_post".into();
            }),
        );
        let acts = s.request(1, "/public/x", "tok-p");
        let i = introspects(&acts)[0];
        assert!(i.body.contains("client_secret=gateway-secret"));
        assert!(!i.headers.iter().any(|(n, _)| n == "authorization"));
        let t = i.ticket;
        let acts = s.respond(t, 200, CT_JSON, &s.claims("profile").to_string());
        expect_forward(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "unavailable-status-502",
            "authorization_server.unavailable_status = 502: AS failures answer 502.",
            cfg_with("rfc7662", |c| {
                c["authorization_server"]["unavailable_status"] = 502.into();
            }),
        );
        let acts = s.request(1, "/orders/1", "tok-p");
        let t = expect_introspect(&acts);
        let acts = s.respond(t, 500, "text/plain", "oops");
        expect_reject(&acts, 502, Reason::Unavailable);
        out.push(s);
    }

    // --- Request syntax --------------------------------------------------------------------

    {
        let mut s = Scenario::new(
            "missing-token-401",
            "No Authorization header → 401 with a bare challenge (no error code).",
            cfg("rfc9701"),
        );
        let acts = s.request_full(1, "GET", "/orders/1", &[("accept", "*/*")], None);
        expect_reject(&acts, 401, Reason::MissingToken);
        assert_eq!(www(&acts), "Bearer realm=\"phantom-edge\"");
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "other-scheme-is-missing-token",
            "Authorization: Basic ... is not a bearer token → 401 missing_token, bare challenge.",
            cfg("rfc9701"),
        );
        let acts = s.request_full(
            1,
            "GET",
            "/orders/1",
            &[("Authorization", "Basic dXNlcjpwYXNz")],
            None,
        );
        expect_reject(&acts, 401, Reason::MissingToken);
        assert!(!www(&acts).contains("error="));
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "malformed-header-400",
            "A bearer token that is not token68 syntax → 400 invalid_request.",
            cfg("rfc9701"),
        );
        let acts = s.request_full(
            1,
            "GET",
            "/orders/1",
            &[("authorization", "Bearer a,b")],
            None,
        );
        expect_reject(&acts, 400, Reason::MalformedRequest);
        assert!(www(&acts).contains("error=\"invalid_request\""));
        let acts = s.request_full(2, "GET", "/orders/1", &[("authorization", "Bearer ")], None);
        expect_reject(&acts, 400, Reason::MalformedRequest);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "repeated-authorization-400",
            "Two Authorization headers → 400 invalid_request.",
            cfg("rfc9701"),
        );
        let acts = s.request_full(
            1,
            "GET",
            "/orders/1",
            &[("authorization", "Bearer a"), ("Authorization", "Bearer b")],
            None,
        );
        expect_reject(&acts, 400, Reason::MalformedRequest);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "no-route-404",
            "A path no route matches (segment boundary: /ordersX is not /orders) → 404, before any introspection.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/ordersX", "tok-a");
        expect_reject(&acts, 404, Reason::NoRoute);
        assert!(reject(&acts).www_authenticate.is_none());
        out.push(s);
    }

    // --- Token decisions -------------------------------------------------------------------

    {
        let mut s = Scenario::new(
            "unknown-token-inactive-401",
            "RFC 9701 {active: false} → 401 invalid_token.",
            cfg("rfc9701"),
        );
        let acts = rfc9701_forward(
            &mut s,
            1,
            "/orders/1",
            "unknown",
            json!({ "active": false }),
        );
        expect_reject(&acts, 401, Reason::Inactive);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "expired-claims-401",
            "Introspection claims with exp in the past → 401 (reason expired).",
            rfc7662_cfg(),
        );
        let mut c = s.claims("orders:read");
        c["exp"] = (T0 / 1000 - 10).into();
        let acts = rfc7662_answer(&mut s, 1, "/orders/1", "tok-old", &c, &[]);
        expect_reject(&acts, 401, Reason::Expired);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "insufficient-scope-403",
            "Active token without the route's scope → 403 with scope=\"orders:read\"; the same token passes on a route needing no scope (cache hit).",
            cfg("rfc9701"),
        );
        let c = s.claims("profile");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        expect_reject(&acts, 403, Reason::InsufficientScope);
        assert!(www(&acts).contains("scope=\"orders:read\""));
        let acts = s.request(2, "/public/x", "tok-a");
        assert!(has_audit(&acts, AuditKind::CacheHit));
        expect_forward(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "wrong-audience-401",
            "The route's audience is not in the token's aud → 401 invalid_token.",
            cfg("rfc9701"),
        );
        let mut c = s.claims("orders:read");
        c["aud"] = json!(["billing-api"]);
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        expect_reject(&acts, 401, Reason::WrongAudience);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "wrong-issuer-401",
            "Introspection claims from another issuer → 401 (reason wrong_issuer).",
            cfg("rfc9701"),
        );
        let mut c = s.claims("orders:read");
        c["iss"] = "https://evil.example".into();
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        expect_reject(&acts, 401, Reason::WrongIssuer);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "dpop-bound-as-bearer-401",
            "A DPoP-bound token (cnf.jkt) presented with the Bearer scheme → 401 with a DPoP challenge.",
            cfg("rfc9701"),
        );
        let mut c = s.claims("orders:read");
        c["cnf"] = json!({ "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" });
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-dpop", c);
        expect_reject(&acts, 401, Reason::SenderMismatch);
        assert!(www(&acts).starts_with("DPoP "));
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "mtls-bound-match-and-mismatch",
            "A certificate-bound token (cnf x5t#S256): forwarded with the matching client certificate thumbprint, 401 with another one or none.",
            cfg("rfc9701"),
        );
        let x5t = "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2";
        let mut c = s.claims("orders:read");
        c["cnf"] = json!({ "x5t#S256": x5t });
        let acts = s.request_full(
            1,
            "GET",
            "/orders/1",
            &[("authorization", "Bearer tok-mtls")],
            Some(x5t),
        );
        let t = expect_introspect(&acts);
        let body = s.rfc9701_body(c);
        let acts = s.respond(t, 200, CT_9701, &body);
        let jwt = expect_forward(&acts);
        assert_eq!(support::jwt_claims(&jwt)["cnf"]["x5t#S256"], x5t);
        let acts = s.request_full(
            2,
            "GET",
            "/orders/1",
            &[("authorization", "Bearer tok-mtls")],
            Some("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
        );
        expect_reject(&acts, 401, Reason::SenderMismatch);
        assert!(www(&acts).starts_with("Bearer "));
        let acts = s.request_full(
            3,
            "GET",
            "/orders/1",
            &[("authorization", "Bearer tok-mtls")],
            None,
        );
        expect_reject(&acts, 401, Reason::SenderMismatch);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "refresh-token-type-401",
            "An active token whose token_type is refresh_token is not an access token → 401.",
            cfg("rfc9701"),
        );
        let mut c = s.claims("orders:read");
        c["token_type"] = "refresh_token".into();
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-r", c);
        expect_reject(&acts, 401, Reason::InvalidToken);
        out.push(s);
    }

    // --- Authorization server failures -----------------------------------------------------

    {
        let mut s = Scenario::new(
            "as-500-503",
            "The AS answers 500 → 503 temporarily_unavailable.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let acts = s.respond(t, 500, "text/plain", "internal error");
        expect_reject(&acts, 503, Reason::Unavailable);
        assert!(has_audit(&acts, AuditKind::AsFailure));
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "as-401-client-auth-failed-503",
            "The AS refuses our client credentials (401) → 503, reason client_auth_failed.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let acts = s.respond(t, 401, CT_JSON, r#"{"error":"invalid_client"}"#);
        expect_reject(&acts, 503, Reason::ClientAuthFailed);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "garbage-body-503",
            "RFC 7662 dialect: a body that is not JSON → 503.",
            rfc7662_cfg(),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let acts = s.respond(t, 200, CT_JSON, "<html>not json</html>");
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "rfc9701-wrong-content-type-503",
            "RFC 9701 dialect: a plain application/json answer is refused → 503.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let body = s.claims("orders:read").to_string();
        let acts = s.respond(t, 200, CT_JSON, &body);
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "rfc9701-bad-signature-503",
            "RFC 9701 response signed by another key under the AS's kid → 503.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let forger = Signer::ed25519(EDGE_ED25519, Some("as-ed"));
        let body = s.fake.rfc9701(&forger, s.claims("orders:read"), s.now);
        let acts = s.respond(t, 200, CT_9701, &body);
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    for (name, desc, typ, aud, iat_back_s) in [
        (
            "rfc9701-wrong-typ-503",
            "RFC 9701 response JWT with typ JWT instead of token-introspection+jwt → 503.",
            "JWT",
            "gateway",
            0u64,
        ),
        (
            "rfc9701-wrong-aud-503",
            "RFC 9701 response JWT whose aud is not our client_id → 503.",
            "token-introspection+jwt",
            "someone-else",
            0,
        ),
        (
            "rfc9701-stale-iat-503",
            "RFC 9701 response JWT issued 120 s ago (response_max_age 60 s + leeway 30 s) → 503.",
            "token-introspection+jwt",
            "gateway",
            120,
        ),
    ] {
        let mut s = Scenario::new(name, desc, cfg("rfc9701"));
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let claims = json!({
            "iss": ISSUER, "aud": aud, "iat": s.now / 1000 - iat_back_s,
            "token_introspection": s.claims("orders:read"),
        });
        let body = s.fake.ed.sign(typ, &claims);
        let acts = s.respond(t, 200, CT_9701, &body);
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "rfc9701-alg-none-503",
            "RFC 9701 response with alg none (unsigned) → 503.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h = b64.encode(br#"{"alg":"none","typ":"token-introspection+jwt"}"#);
        let p = b64.encode(
            json!({ "iss": ISSUER, "aud": "gateway", "iat": s.now / 1000, "token_introspection": s.claims("orders:read") })
                .to_string(),
        );
        let acts = s.respond(t, 200, CT_9701, &format!("{h}.{p}."));
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::raw(
            "rfc9701-unknown-kid-refetch",
            "The first JWKS lacks the signing key: the response is parked, the JWKS fetched again (after jwks_min_refresh), and the parked response then verifies → forward.",
            cfg("rfc9701"),
        );
        let es_only = json!({ "keys": [s.fake.es.jwk] }).to_string();
        let acts = s.jwks(&es_only);
        assert!(has_audit(&acts, AuditKind::JwksFetched));
        s.advance(31_000);
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        no_decision(&acts);
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        );
        s.advance(20);
        let full = s.fake.jwks();
        let acts = s.jwks(&full);
        expect_forward(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::raw(
            "rfc9701-unknown-kid-still-unknown-503",
            "The refetched JWKS still lacks the signing key → 503.",
            cfg("rfc9701"),
        );
        let es_only = json!({ "keys": [s.fake.es.jwk] }).to_string();
        s.jwks(&es_only);
        s.advance(31_000);
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        );
        let acts = s.jwks(&es_only);
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::raw(
            "rfc9701-unknown-kid-rate-limited-503",
            "An unknown kid fetches the JWKS once (a kid not sought within jwks_min_refresh: a rotation); the JWKS still lacks it → 503; the same kid again within jwks_min_refresh: no refetch → 503 at once.",
            cfg("rfc9701"),
        );
        let es_only = json!({ "keys": [s.fake.es.jwk] }).to_string();
        s.jwks(&es_only);
        s.advance(1_000);
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        );
        s.advance(10);
        expect_reject(&s.jwks(&es_only), 503, Reason::Unavailable);
        s.advance(1_000);
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 2, "/orders/1", "tok-b", c);
        assert!(
            !acts
                .iter()
                .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        );
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::raw(
            "jwks-failure-then-request",
            "The initial JWKS fetch fails (the AS is not up yet); 3 s later an RFC 9701 answer needs keys → JWKS fetched again at once (while the last fetch failed, requests may fetch every 0.5 s, outside the jwks_min_refresh allowance) → forward.",
            cfg("rfc9701"),
        );
        let acts = s.jwks_failure("connection refused");
        assert!(has_audit(&acts, AuditKind::JwksFailed));
        s.advance(3_000);
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        assert!(
            acts.iter()
                .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        );
        let full = s.fake.jwks();
        let acts = s.jwks(&full);
        expect_forward(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "transport-failure-503",
            "The introspection request fails in transport → 503.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let (acts, r) =
            s.step(json!({ "type": "fetch_failure", "ticket": t, "detail": "connection refused" }));
        assert!(r.is_none());
        expect_reject(&acts, 503, Reason::Unavailable);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "ticket-timeout-503",
            "No answer within the 2 s timeout → 503 (reason timeout); the late answer is only audited.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        assert_eq!(s.edge.poll_timeout(), Some(T0 + 2_000));
        s.advance(1_999);
        no_decision(&s.timeout());
        s.advance(1);
        let acts = s.timeout();
        expect_reject(&acts, 503, Reason::Timeout);
        assert!(has_audit(&acts, AuditKind::TicketTimedOut));
        s.advance(100);
        let body = s.rfc9701_body(s.claims("orders:read"));
        let acts = s.respond(t, 200, CT_9701, &body);
        no_decision(&acts);
        assert!(has_audit(&acts, AuditKind::LateResponse));
        out.push(s);
    }

    // --- Cache -----------------------------------------------------------------------------

    {
        let mut s = Scenario::new(
            "cache-hit",
            "A second request with the same token is decided from the cache: no introspection, a cache_hit audit, the same minted JWT.",
            cfg("rfc9701"),
        );
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        let first = expect_forward(&acts);
        s.advance(1_000);
        let acts = s.request(2, "/orders/2", "tok-a");
        assert!(has_audit(&acts, AuditKind::CacheHit));
        assert!(introspects(&acts).is_empty());
        assert_eq!(expect_forward(&acts), first);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "cache-expiry-max-age",
            "Cache-Control: max-age=10 bounds the cache entry: a hit at +9 s, a new introspection at +10 s.",
            rfc7662_cfg(),
        );
        let c = s.claims("orders:read");
        let acts = rfc7662_answer(
            &mut s,
            1,
            "/orders/1",
            "tok-a",
            &c,
            &[("cache-control", "max-age=10")],
        );
        expect_forward(&acts);
        s.advance(9_000);
        let acts = s.request(2, "/orders/1", "tok-a");
        assert!(has_audit(&acts, AuditKind::CacheHit));
        expect_forward(&acts);
        s.advance(1_000);
        let acts = s.request(3, "/orders/1", "tok-a");
        expect_introspect(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "cache-expiry-max-ttl",
            "cache.max_ttl = 20s bounds the cache entry.",
            cfg_with("rfc7662", |c| {
                c["authorization_server"]
                    .as_object_mut()
                    .unwrap()
                    .remove("jwks_uri");
                c["cache"]["max_ttl"] = "20s".into();
            }),
        );
        let c = s.claims("orders:read");
        let acts = rfc7662_answer(&mut s, 1, "/orders/1", "tok-a", &c, &[]);
        expect_forward(&acts);
        s.advance(19_999);
        let acts = s.request(2, "/orders/1", "tok-a");
        assert!(has_audit(&acts, AuditKind::CacheHit));
        s.advance(1);
        let acts = s.request(3, "/orders/1", "tok-a");
        expect_introspect(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "cache-expiry-token-exp",
            "The token's exp (30 s away, minus cache.skew 5 s) bounds the cache entry; the minted JWT never outlives exp.",
            rfc7662_cfg(),
        );
        let mut c = s.claims("orders:read");
        c["exp"] = (T0 / 1000 + 30).into();
        let acts = rfc7662_answer(&mut s, 1, "/orders/1", "tok-a", &c, &[]);
        let jwt = expect_forward(&acts);
        assert!(support::jwt_claims(&jwt)["exp"].as_u64().unwrap() <= T0 / 1000 + 30);
        s.advance(24_999);
        let acts = s.request(2, "/orders/1", "tok-a");
        assert!(has_audit(&acts, AuditKind::CacheHit));
        s.advance(1);
        let acts = s.request(3, "/orders/1", "tok-a");
        expect_introspect(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "no-store-not-cached",
            "Cache-Control: no-store: forwarded, not cached; the next request introspects again.",
            rfc7662_cfg(),
        );
        let c = s.claims("orders:read");
        let acts = rfc7662_answer(
            &mut s,
            1,
            "/orders/1",
            "tok-a",
            &c,
            &[("cache-control", "no-store")],
        );
        expect_forward(&acts);
        assert!(!has_audit(&acts, AuditKind::Cached));
        s.advance(100);
        let acts = s.request(2, "/orders/1", "tok-a");
        expect_introspect(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "negative-cache",
            "An inactive answer is cached for cache.negative_ttl (10 s): a negative hit without introspection, then a new introspection after 10 s.",
            cfg("rfc9701"),
        );
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-x", json!({ "active": false }));
        expect_reject(&acts, 401, Reason::Inactive);
        s.advance(5_000);
        let acts = s.request(2, "/orders/1", "tok-x");
        assert!(has_audit(&acts, AuditKind::NegativeHit));
        expect_reject(&acts, 401, Reason::Inactive);
        s.advance(5_000);
        let acts = s.request(3, "/orders/1", "tok-x");
        expect_introspect(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "coalescing",
            "Two concurrent requests with the same token: one introspection, the second coalesced; one answer decides both (per route).",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let acts = s.request(2, "/public/x", "tok-a");
        no_decision(&acts);
        assert!(introspects(&acts).is_empty());
        assert!(has_audit(&acts, AuditKind::Coalesced));
        let body = s.rfc9701_body(s.claims("orders:read"));
        let acts = s.respond(t, 200, CT_9701, &body);
        let f = support::forwards(&acts);
        assert_eq!(
            f.iter().map(|f| f.request_id).collect::<Vec<_>>(),
            vec![1, 2]
        );
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "coalescing-failure",
            "Two coalesced requests and an AS failure: both answered 503.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        let acts = s.request(2, "/orders/2", "tok-a");
        no_decision(&acts);
        let acts = s.respond(t, 503, "text/plain", "");
        let r = support::rejects(&acts);
        assert_eq!(
            r.iter()
                .map(|r| (r.request_id, r.status))
                .collect::<Vec<_>>(),
            vec![(1, 503), (2, 503)]
        );
        out.push(s);
    }

    // --- Revocation ------------------------------------------------------------------------

    for (name, desc, selector_of, origin) in [
        (
            "revoke-by-token",
            "Revocation by raw token (local: published as a fingerprint); the cached token is refused.",
            "token",
            "local",
        ),
        (
            "revoke-by-fingerprint",
            "Revocation by fingerprint from the shared channel (not re-published).",
            "fingerprint",
            "shared",
        ),
        ("revoke-by-jti", "Revocation by jti.", "jti", "local"),
        (
            "revoke-by-sub",
            "Revocation of every token of a subject issued up to now.",
            "sub",
            "local",
        ),
        (
            "revoke-by-client-id",
            "Revocation of every token of a client issued up to now.",
            "client_id",
            "shared",
        ),
        ("revoke-by-sid", "Revocation of a session.", "sid", "local"),
    ] {
        let mut s = Scenario::new(name, desc, cfg("rfc9701"));
        let mut c = s.claims("orders:read");
        c["sid"] = "session-1".into();
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        expect_forward(&acts);
        s.advance(1_000);
        let selector = match selector_of {
            "token" => json!({ "token": "tok-a" }),
            "fingerprint" => json!({ "fingerprint": s.edge.fingerprint("tok-a").to_string() }),
            "jti" => json!({ "jti": "jti-1" }),
            "sub" => json!({ "sub": "alice" }),
            "client_id" => json!({ "client_id": "app" }),
            _ => json!({ "sid": "session-1" }),
        };
        let (acts, r) = s.revoke(selector, origin);
        assert_eq!(r, json!({ "ok": true }));
        assert!(has_audit(&acts, AuditKind::Revoked));
        let published = acts.iter().any(|a| matches!(a, Action::SharedPublish(_)));
        assert_eq!(published, origin == "local");
        if let Some(Action::SharedPublish(p)) =
            acts.iter().find(|a| matches!(a, Action::SharedPublish(_)))
        {
            assert!(
                !p.message.contains("tok-a"),
                "a raw token is never published"
            );
        }
        s.advance(1_000);
        let acts = s.request(2, "/orders/1", "tok-a");
        expect_reject(&acts, 401, Reason::Revoked);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "revoke-while-in-flight",
            "A revocation (by sub) handled while the introspection is in flight wins over the active answer: 401, and the token stays refused.",
            cfg("rfc9701"),
        );
        let acts = s.request(1, "/orders/1", "tok-a");
        let t = expect_introspect(&acts);
        s.advance(10);
        let (_, r) = s.revoke(json!({ "sub": "alice" }), "shared");
        assert_eq!(r, json!({ "ok": true }));
        s.advance(10);
        let body = s.rfc9701_body(FakeAs::claims(T0, "orders:read"));
        let acts = s.respond(t, 200, CT_9701, &body);
        expect_reject(&acts, 401, Reason::Revoked);
        s.advance(10);
        let acts = s.request(2, "/orders/1", "tok-a");
        expect_reject(&acts, 401, Reason::Revoked);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "revoke-sub-spares-newer-tokens",
            "A sub revocation refuses tokens issued up to it, not a token issued afterwards.",
            cfg("rfc9701"),
        );
        s.advance(5_000);
        let (_, r) = s.revoke(json!({ "sub": "alice" }), "local");
        assert_eq!(r, json!({ "ok": true }));
        s.advance(5_000);
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-new", c);
        expect_forward(&acts);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "revocation-invalid",
            "Malformed revocations: until in the past, two selectors, unknown member → error 400.",
            cfg("rfc9701"),
        );
        for sel in [
            json!({ "sub": "alice", "until": T0 / 1000 - 1 }),
            json!({ "sub": "alice", "jti": "x" }),
            json!({ "user": "alice" }),
        ] {
            let (acts, r) = s.revoke(sel, "local");
            assert_eq!(r, json!({ "error": { "status": 400 } }));
            assert!(acts.is_empty());
        }
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "admin-revocation-204",
            "The admin route with the admin bearer secret and a JSON selector → 204; the revocation is published and applied.",
            cfg("rfc9701"),
        );
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        expect_forward(&acts);
        let (acts, r) = s.admin(
            Some("application/json; charset=utf-8"),
            Some(ADMIN),
            r#"{"jti":"jti-1"}"#,
        );
        assert_eq!(r["status"], 204);
        assert!(acts.iter().any(|a| matches!(a, Action::SharedPublish(_))));
        let acts = s.request(2, "/orders/1", "tok-a");
        expect_reject(&acts, 401, Reason::Revoked);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "admin-revocation-401",
            "The admin route without or with a wrong bearer secret → 401, nothing revoked.",
            cfg("rfc9701"),
        );
        let (acts, r) = s.admin(
            Some(CT_JSON),
            Some("Bearer wrong-secret-0123456789"),
            r#"{"sub":"alice"}"#,
        );
        assert_eq!(r["status"], 401);
        assert!(acts.is_empty());
        let (_, r) = s.admin(Some(CT_JSON), None, r#"{"sub":"alice"}"#);
        assert_eq!(r["status"], 401);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "admin-revocation-400",
            "The admin route, authenticated, with a bad body or content-type → 400.",
            cfg("rfc9701"),
        );
        let (_, r) = s.admin(Some(CT_JSON), Some(ADMIN), "not json");
        assert_eq!(r["status"], 400);
        let (_, r) = s.admin(Some("text/plain"), Some(ADMIN), r#"{"sub":"alice"}"#);
        assert_eq!(r["status"], 400);
        let (_, r) = s.admin(Some(CT_JSON), Some(ADMIN), "{}");
        assert_eq!(r["status"], 400);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "set-session-revoked-sid",
            "A CAEP session-revoked SET (sub_id opaque = the session id, EdDSA with the SET key) revokes the session's tokens.",
            cfg("rfc9701"),
        );
        let mut c = s.claims("orders:read");
        c["sid"] = "sess-42".into();
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        expect_forward(&acts);
        s.advance(1_000);
        let set = set_jwt(&json!({
            "iss": ISSUER, "jti": "set-1", "iat": s.now / 1000,
            "sub_id": { "format": "opaque", "id": "sess-42" },
            "events": { SESSION_REVOKED: { "event_timestamp": s.now / 1000 } },
        }));
        let (acts, r) = s.security_event(&set);
        assert_eq!(r, json!({ "ok": true }));
        assert!(has_audit(&acts, AuditKind::SecurityEvent));
        let (acts, r) = s.security_event(&set);
        assert_eq!(r, json!({ "ok": true }));
        assert!(acts.is_empty(), "a replayed SET is ignored");
        let acts = s.request(2, "/orders/1", "tok-a");
        expect_reject(&acts, 401, Reason::Revoked);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "set-iss-sub-via-admin-route",
            "A session-revoked SET with an iss_sub subject, posted to the admin route as application/secevent+jwt (no admin secret needed) → 204, the subject's tokens are revoked.",
            cfg("rfc9701"),
        );
        let c = s.claims("orders:read");
        let acts = rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c);
        expect_forward(&acts);
        s.advance(1_000);
        let set = set_jwt(&json!({
            "iss": ISSUER, "jti": "set-2", "iat": s.now / 1000,
            "sub_id": { "format": "iss_sub", "iss": ISSUER, "sub": "alice" },
            "events": { SESSION_REVOKED: {} },
        }));
        let (_, r) = s.admin(Some("application/secevent+jwt"), None, &set);
        assert_eq!(r["status"], 204);
        let acts = s.request(2, "/orders/1", "tok-a");
        expect_reject(&acts, 401, Reason::Revoked);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "set-rejected",
            "SETs that must not be accepted: signed by the AS key instead of the SET key (401), wrong issuer (401), wrong typ (401).",
            cfg("rfc9701"),
        );
        let claims = json!({
            "iss": ISSUER, "jti": "set-3", "iat": s.now / 1000,
            "sub_id": { "format": "opaque", "id": "sess-42" },
            "events": { SESSION_REVOKED: {} },
        });
        let forged = s.fake.ed.sign("secevent+jwt", &claims);
        let (acts, r) = s.security_event(&forged);
        assert_eq!(r, json!({ "error": { "status": 401 } }));
        assert!(acts.is_empty());
        let mut wrong_iss = claims.clone();
        wrong_iss["iss"] = "https://evil.example".into();
        let (_, r) = s.security_event(&set_jwt(&wrong_iss));
        assert_eq!(r, json!({ "error": { "status": 401 } }));
        let wrong_typ = Signer::ed25519(SET_ED25519, None).sign("JWT", &claims);
        let (_, r) = s.security_event(&wrong_typ);
        assert_eq!(r, json!({ "error": { "status": 401 } }));
        out.push(s);
    }

    // --- Split-token mode ------------------------------------------------------------------

    // (header.payload, the sealed store value split_jwt makes, the signature the client holds)
    let split_parts = |s: &Scenario, claims: &Value| -> (String, String, String) {
        let jwt = s.fake.access_jwt(&s.fake.ed, claims);
        let split = split_jwt(&jwt, "phantom-edge:split:").unwrap();
        let (hp, _) = jwt.rsplit_once('.').unwrap();
        (hp.to_string(), split.store_value, split.client_token)
    };
    {
        let mut s = Scenario::new(
            "split-found-forward",
            "Split mode: the client presents the JWT signature; the shared store returns header.payload; the reassembled JWT verifies and is forwarded.",
            split_cfg(),
        );
        let c = s.claims("orders:read");
        let (hp, value, sig) = split_parts(&s, &c);
        assert!(
            !value.contains(&hp[..20]),
            "no claims in clear in the store"
        );
        let acts = s.request(1, "/orders/1", &sig);
        no_decision(&acts);
        let l = shared_lookup(&acts);
        assert!(l.key.starts_with("phantom-edge:split:") && !l.key.contains(&sig));
        let t = l.ticket;
        let acts = s.lookup(t, json!({ "found": value }));
        assert_eq!(expect_forward(&acts), format!("{hp}.{sig}"));
        let acts = s.request(2, "/orders/1", &sig);
        assert!(has_audit(&acts, AuditKind::CacheHit));
        expect_forward(&acts);
        out.push(s);
    }
    for (name, desc, kind) in [
        (
            "split-not-found-401",
            "Split mode: the key is not in the shared store → 401.",
            "not_found",
        ),
        (
            "split-tampered-401",
            "Split mode: someone who can write to the store and knows the client's part sealed a value with the payload altered (scope widened): it opens, but the reassembled signature no longer verifies → 401.",
            "tampered",
        ),
        (
            "split-store-error-503",
            "Split mode: the shared store fails → 503.",
            "error",
        ),
    ] {
        let mut s = Scenario::new(name, desc, split_cfg());
        let c = s.claims("profile");
        let (hp, _, sig) = split_parts(&s, &c);
        let acts = s.request(1, "/orders/1", &sig);
        let l = shared_lookup(&acts);
        let t = l.ticket;
        let result = match kind {
            "not_found" => json!("not_found"),
            "error" => json!("error"),
            _ => {
                let forged = split_parts(&s, &s.claims("orders:read")).0;
                let header = hp.split('.').next().unwrap();
                let payload = forged.split('.').nth(1).unwrap();
                let resealed = split_jwt(&format!("{header}.{payload}.{sig}"), "").unwrap();
                json!({ "found": resealed.store_value })
            }
        };
        let acts = s.lookup(t, result);
        match kind {
            "not_found" => expect_reject(&acts, 401, Reason::Inactive),
            "tampered" => expect_reject(&acts, 401, Reason::InvalidToken),
            _ => expect_reject(&acts, 503, Reason::Unavailable),
        }
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "ambiguous-path-400",
            "Paths an upstream could read as another route → 400 invalid_request (reason \
             ambiguous_path) before routing or introspection: dot segments (raw, %2e, ..;), \
             encoded or doubled slashes, backslashes, and paths whose decoded / case-folded / \
             parameter-stripped reading picks another route (/ADMIN, /%61dmin, /admin;x, \
             /admin., and /admın with a dotless i, encoded or not, which .NET and Java \
             case-insensitive comparisons read as /ADMIN). A token cached for /orders is not forwarded for any of them; \
             /orders/ABC-1 (same route either way) is.",
            cfg("rfc9701"),
        );
        let c = s.claims("orders:read");
        let first = expect_forward(&rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", c));
        for (id, path) in [
            (2, "/orders/../admin/users"),
            (3, "/orders/%2e%2e/admin"),
            (4, "/orders/..;/admin"),
            (5, "/orders%2Fadmin"),
            (6, "//admin"),
            (7, "/orders\\..\\admin"),
            (8, "/ADMIN/users"),
            (9, "/%61dmin/users"),
            (10, "/admin;x/users"),
            (11, "/admin./users"),
            (12, "/adm%C4%B1n/users"),
            (13, "/adm\u{131}n/users"),
        ] {
            let acts = s.request(id, path, "tok-a");
            expect_reject(&acts, 400, Reason::AmbiguousPath);
            assert!(www(&acts).contains("error=\"invalid_request\""));
        }
        let acts = s.request(14, "/orders/ABC-1", "tok-a");
        assert_eq!(expect_forward(&acts), first);
        out.push(s);
    }
    {
        let mut s = Scenario::raw(
            "jwks-failure-retried-with-backoff",
            "A failed JWKS fetch is retried by the core's own timer: 0.5 s after the first failure, 1 s after the second; the third attempt succeeds and the timer is disarmed.",
            cfg("rfc9701"),
        );
        let acts = s.jwks_failure("connection refused");
        assert!(has_audit(&acts, AuditKind::JwksFailed));
        assert_eq!(s.edge.poll_timeout(), Some(T0 + 500));
        s.advance(500);
        assert!(
            s.timeout()
                .iter()
                .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        );
        let ticket = s.jwks_ticket();
        s.step(json!({
            "type": "fetch_response", "ticket": ticket, "status": 503,
            "headers": [["content-type", "text/html"]], "body": "<h1>503</h1>",
        }));
        assert_eq!(s.edge.poll_timeout(), Some(T0 + 1_500));
        s.advance(1_000);
        assert!(
            s.timeout()
                .iter()
                .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        );
        let full = s.fake.jwks();
        assert!(has_audit(&s.jwks(&full), AuditKind::JwksFetched));
        assert_eq!(s.edge.poll_timeout(), None);
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "oauth-400-unsupported-token-type-401",
            "The AS answers 400 {\"error\":\"unsupported_token_type\"} (oidc-provider, for a JWT-shaped token it did not issue) → 401 invalid_token, cached negatively; 400 invalid_client → 503 client_auth_failed; 400 invalid_request → 503 unavailable.",
            cfg("rfc9701"),
        );
        let jwt_shaped = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
        let acts = s.request(1, "/orders/1", jwt_shaped);
        let t = expect_introspect(&acts);
        let acts = s.respond(t, 400, CT_JSON, r#"{"error":"unsupported_token_type"}"#);
        expect_reject(&acts, 401, Reason::Inactive);
        let acts = s.request(2, "/orders/1", jwt_shaped);
        expect_reject(&acts, 401, Reason::Inactive);
        for (id, body, reason) in [
            (3, r#"{"error":"invalid_client"}"#, Reason::ClientAuthFailed),
            (4, r#"{"error":"invalid_request"}"#, Reason::Unavailable),
        ] {
            let acts = s.request(id, "/orders/1", &format!("tok-{id}"));
            let t = expect_introspect(&acts);
            let acts = s.respond(t, 400, CT_JSON, body);
            expect_reject(&acts, 503, reason);
        }
        out.push(s);
    }
    {
        let mut c = cfg("rfc9701");
        c["authorization_server"]["max_introspections_per_second"] = json!(2);
        let mut s = Scenario::new(
            "introspection-rate-limit-503-retry-after",
            "max_introspections_per_second = 2: two new tokens are introspected, the third gets 503 rate_limited with Retry-After: 1 while the known token is still served; half a second later one more new token may be introspected.",
            c,
        );
        let claims = s.claims("orders:read");
        expect_forward(&rfc9701_forward(&mut s, 1, "/orders/1", "tok-a", claims));
        expect_introspect(&s.request(2, "/orders/1", "tok-b"));
        let acts = s.request(3, "/orders/1", "tok-c");
        expect_reject(&acts, 503, Reason::RateLimited);
        assert_eq!(reject(&acts).retry_after, Some(1));
        expect_forward(&s.request(4, "/orders/1", "tok-a"));
        s.advance(500);
        expect_introspect(&s.request(5, "/orders/1", "tok-c"));
        out.push(s);
    }
    {
        let c = cfg_with("rfc9701", |c| {
            c["upstream"] = json!({ "header": "x-jwt-assertion", "strip_headers": ["x-user"] });
        });
        let mut s = Scenario::new(
            "forwarding-header-set",
            "The upstream header set every host applies (Edge::upstream_headers): for a proxy, the strip list, any spelling of the JWT header (X_Jwt_Assertion), host, hop-by-hop and Connection-listed names and every forwarding header are dropped, then the JWT header, host, x-forwarded-host, the x-forwarded-for chain with the peer, and x-forwarded-proto are set; with no peer known the client's chain is not passed on; in process only the strip list and the JWT header's spellings go.",
            c,
        );
        let inbound = json!([
            ["Host", "edge.example"],
            ["Authorization", "Bearer opaque"],
            ["DPoP", "proof"],
            ["X_Jwt_Assertion", "forged"],
            ["x-jwt-assertion", "forged"],
            ["X_User", "admin"],
            ["Connection", "keep-alive, X_Secret"],
            ["x-secret", "hop"],
            ["keep-alive", "timeout=5"],
            ["transfer-encoding", "chunked"],
            ["X-Forwarded-For", "203.0.113.9, 10.0.0.1"],
            ["x-forwarded-for", "10.0.0.2"],
            ["Forwarded", "for=evil"],
            ["X-Real-IP", "1.2.3.4"],
            ["x-forwarded-proto", "https"],
            ["X-Original-URL", "/admin"],
            ["accept", "application/json"],
            ["x-kept", "yes"],
        ]);
        for hop in [
            json!({ "proxy": { "peer": "192.0.2.7", "proto": "http",
                               "upstream_authority": "orders.internal:8080" } }),
            json!({ "proxy": { "peer": null, "proto": "https", "upstream_authority": null } }),
            json!("in_process"),
        ] {
            let (acts, r) = s.step(json!({
                "type": "upstream_headers", "inbound": inbound, "header_value": "ey.jwt.sig",
                "hop": hop,
            }));
            assert!(acts.is_empty());
            let r = r.expect("a header plan");
            let kept: Vec<usize> = (0..18)
                .filter(|i| !r["drop"].as_array().unwrap().contains(&json!(i)))
                .collect();
            if hop == "in_process" {
                // x_user, both JWT spellings, authorization, dpop, x-original-url go
                assert_eq!(r["drop"], json!([1, 2, 3, 4, 5, 15]));
            } else {
                assert_eq!(kept, [16, 17], "{}", s.name);
            }
        }
        out.push(s);
    }
    {
        let mut s = Scenario::new(
            "admin-routes-answered-by-the-core",
            "The operator routes every host serves (Edge::handle_admin): a revocation 204 (published), a wrong bearer 401 with the one realm, a body over 64 KiB 413, a wrong method 405 with Allow; metrics open on the operator listener and behind the admin bearer on the app's; the edge's own JWKS.",
            cfg("rfc9701"),
        );
        let admin = |s: &mut Scenario,
                     route: &str,
                     listener: &str,
                     method: &str,
                     auth: Option<&str>,
                     body: &str| {
            let (acts, r) = s.step(json!({
                "type": "admin", "route": route, "listener": listener, "method": method,
                "content_type": CT_JSON, "authorization": auth, "body": body,
            }));
            (acts, r.expect("an answer"))
        };
        let (acts, r) = admin(
            &mut s,
            "revocations",
            "operator",
            "POST",
            Some(ADMIN),
            r#"{"sub":"alice"}"#,
        );
        assert_eq!(r["status"], 204);
        assert!(acts.iter().any(|a| matches!(a, Action::SharedPublish(_))));
        let (_, r) = admin(
            &mut s,
            "revocations",
            "app",
            "POST",
            Some("Bearer wrong"),
            r#"{"sub":"bob"}"#,
        );
        assert_eq!(r["status"], 401);
        let big = format!("{{\"sub\":\"{}\"}}", "a".repeat(64 * 1024));
        let (_, r) = admin(&mut s, "revocations", "app", "POST", Some(ADMIN), &big);
        assert_eq!(r["status"], 413);
        let (_, r) = admin(&mut s, "revocations", "operator", "GET", Some(ADMIN), "");
        assert_eq!(r["status"], 405);
        let (_, r) = admin(&mut s, "metrics", "app", "GET", None, "");
        assert_eq!(r["status"], 401);
        let (_, r) = admin(&mut s, "jwks", "operator", "GET", None, "");
        assert_eq!(r["status"], 200);
        assert!(r["body"].as_str().unwrap().contains("\"keys\""));
        out.push(s);
    }
    for (name, desc, kind) in [
        (
            "split-sealed-value-altered-401",
            "Split mode: one byte of the sealed store value was changed in the store: it no longer opens → 401 invalid_token, never forwarded.",
            "altered",
        ),
        (
            "split-plain-value-refused-by-default",
            "Split mode: a plain header.payload store value (claims in clear) is refused unless split.plain_values is on → 401 invalid_token.",
            "plain",
        ),
        (
            "split-plain-value-with-plain-values",
            "Split mode with split.plain_values = true: a plain header.payload value, as other issuers write it, is read; the reassembled JWT verifies and is forwarded.",
            "plain_allowed",
        ),
    ] {
        let mut c = split_cfg();
        if kind == "plain_allowed" {
            c["split"] = json!({ "plain_values": true });
        }
        let mut s = Scenario::new(name, desc, c);
        let claims = s.claims("orders:read");
        let (hp, value, sig) = split_parts(&s, &claims);
        let acts = s.request(1, "/orders/1", &sig);
        let l = shared_lookup(&acts);
        let t = l.ticket;
        let found = match kind {
            "altered" => {
                let b = value.strip_prefix(SEALED_PREFIX).unwrap();
                let flipped = if b.starts_with('A') { "B" } else { "A" };
                format!("{SEALED_PREFIX}{flipped}{}", &b[1..])
            }
            _ => hp.clone(),
        };
        let acts = s.lookup(t, json!({ "found": found }));
        if kind == "plain_allowed" {
            assert_eq!(expect_forward(&acts), format!("{hp}.{sig}"));
        } else {
            expect_reject(&acts, 401, Reason::InvalidToken);
        }
        out.push(s);
    }

    out
}

fn main() {
    let dir: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/cases");
    let stable = Stable::load(&dir);
    let scenarios = scenarios(&stable);
    std::fs::create_dir_all(&dir).unwrap();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "json") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let mut names = std::collections::HashSet::new();
    for (i, s) in scenarios.iter().enumerate() {
        assert!(
            names.insert(s.name.clone()),
            "duplicate case name {}",
            s.name
        );
        let path = dir.join(format!("{:03}-{}.json", i + 1, s.name));
        let mut text = serde_json::to_string_pretty(&s.to_json()).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
    println!("wrote {} cases to {}", scenarios.len(), dir.display());
}
