//! Test support: fixed keys, a fake authorization server that signs like a real one, and a
//! driver with a virtual clock. Shared by the integration tests, the vector generator and the
//! benchmarks.
#![allow(dead_code, unreachable_pub)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use phantom_edge_core::{
    Action, AuditKind, Config, Edge, EdgeError, Forward, HttpResponse, Origin, Reject, Request,
    Revocation, Selector, SharedLookup,
};
pub use phantom_edge_core::{Fetch, FetchKind};
use serde_json::{Value, json};
use std::collections::HashMap;

/// The answers the tests give most, in the words they were written with: a JWKS answer (200
/// with a body, or a failure) to the fetch in flight, and an introspection's answer or failure.
/// Each is one [`Edge::handle_fetch`].
pub trait EdgeExt {
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
        let ticket = self.jwks_in_flight().expect("a JWKS fetch in flight");
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

pub const ISSUER: &str = "https://as.example";
/// The media type of an RFC 9701 introspection response.
pub const RFC9701_CT: &str = "application/token-introspection+jwt";
pub const INTROSPECT: &str = "https://as.example/introspect";
pub const JWKS_URI: &str = "https://as.example/jwks";
pub const T0: u64 = 1_700_000_000_000;

pub const AS_ED25519: &str = include_str!("../../../tests/vectors/keys/as-ed25519.pem");
pub const AS_ES256: &str = include_str!("../../../tests/vectors/keys/as-es256.pem");
pub const EDGE_ED25519: &str = include_str!("../../../tests/vectors/keys/edge-ed25519.pem");
pub const SET_ED25519: &str = include_str!("../../../tests/vectors/keys/set-ed25519.pem");
pub const SET_ED25519_PUB: &str = include_str!("../../../tests/vectors/keys/set-ed25519.pub.pem");
pub const CLIENT_DPOP_ES256: &str =
    include_str!("../../../tests/vectors/keys/client-dpop-es256.pem");

/// A signing key with its JOSE alg and kid.
pub struct Signer {
    pub key: EncodingKey,
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub jwk: Value,
}

impl Signer {
    pub fn ed25519(pem: &str, kid: Option<&str>) -> Self {
        Self::new(
            EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
            Algorithm::EdDSA,
            kid,
        )
    }
    pub fn es256(pem: &str, kid: Option<&str>) -> Self {
        Self::new(
            EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
            Algorithm::ES256,
            kid,
        )
    }
    fn new(key: EncodingKey, alg: Algorithm, kid: Option<&str>) -> Self {
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        if let Some(k) = kid {
            jwk["kid"] = k.into();
        }
        Self {
            key,
            alg,
            kid: kid.map(str::to_owned),
            jwk,
        }
    }
    /// Signs arbitrary header members + claims.
    pub fn sign_with_header(&self, header: Value, claims: &Value) -> String {
        let h = B64.encode(serde_json::to_vec(&header).unwrap());
        let p = B64.encode(serde_json::to_vec(claims).unwrap());
        let input = format!("{h}.{p}");
        let sig = jsonwebtoken::crypto::sign(input.as_bytes(), &self.key, self.alg).unwrap();
        format!("{input}.{sig}")
    }
    pub fn sign(&self, typ: &str, claims: &Value) -> String {
        let alg = match self.alg {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            _ => unreachable!(),
        };
        let mut h = json!({ "alg": alg, "typ": typ });
        if let Some(k) = &self.kid {
            h["kid"] = k.clone().into();
        }
        self.sign_with_header(h, claims)
    }
}

/// The fake authorization server: its keys and the answers it gives.
pub struct FakeAs {
    pub ed: Signer,
    pub es: Signer,
}

impl Default for FakeAs {
    fn default() -> Self {
        Self {
            ed: Signer::ed25519(AS_ED25519, Some("as-ed")),
            es: Signer::es256(AS_ES256, Some("as-es")),
        }
    }
}

impl FakeAs {
    pub fn jwks(&self) -> String {
        json!({ "keys": [self.ed.jwk, self.es.jwk] }).to_string()
    }
    /// RFC 7662 members of an active token issued at `now_s`, valid for an hour.
    pub fn claims(now_ms: u64, scope: &str) -> Value {
        let now_s = now_ms / 1000;
        json!({
            "active": true, "scope": scope, "client_id": "app", "sub": "alice",
            "aud": "orders-api", "iss": ISSUER, "exp": now_s + 3600, "iat": now_s,
            "jti": "jti-1", "token_type": "Bearer"
        })
    }
    /// RFC 9701 response body signed with `signer`.
    pub fn rfc9701(&self, signer: &Signer, token_introspection: Value, now_ms: u64) -> String {
        let claims = json!({
            "iss": ISSUER, "aud": "gateway", "iat": now_ms / 1000,
            "token_introspection": token_introspection
        });
        signer.sign("token-introspection+jwt", &claims)
    }
    /// An access-token JWT (Curity/Keycloak/split).
    pub fn access_jwt(&self, signer: &Signer, claims: &Value) -> String {
        let mut c = claims.clone();
        if let Some(o) = c.as_object_mut() {
            o.remove("active");
        }
        signer.sign("at+jwt", &c)
    }
}

pub fn base_config(dialect: &str) -> Value {
    json!({
        "authorization_server": {
            "issuer": ISSUER, "introspection_endpoint": INTROSPECT, "jwks_uri": JWKS_URI,
            "client_id": "gateway", "client_secret": "gateway-secret", "dialect": dialect
        },
        "cache": { "max_ttl": "300s", "negative_ttl": "10s", "max_entries": 1000 },
        "assertions": { "signing_key": EDGE_ED25519, "kid": "edge-1", "max_ttl": "60s" },
        "admin": { "token": "admin-secret-0123456789" },
        "revocation": { "set_key": SET_ED25519_PUB },
        "routes": [
            { "path_prefix": "/orders", "required_scopes": ["orders:read"], "audience": "orders-api" },
            { "path_prefix": "/admin", "required_scopes": ["orders:admin"] },
            { "path_prefix": "/public" }
        ]
    })
}

pub fn config(v: Value) -> Config {
    let raw = phantom_edge_core::RawConfig::from_value(v).unwrap();
    raw.resolve(&|_| None).unwrap()
}

/// An edge with a virtual clock.
pub struct Harness {
    pub edge: Edge,
    pub now: u64,
    pub fake: FakeAs,
}

impl Harness {
    /// The JWKS fetch answered with these keys; the actions that follow.
    pub fn jwks_of(&mut self, keys: &[&Value]) -> Vec<Action> {
        let body = json!({ "keys": keys }).to_string();
        self.edge.handle_jwks(self.now, Ok(body.as_bytes()));
        self.edge.drain_actions()
    }

    /// An edge whose initial JWKS fetch (if any) is left for the test to answer.
    pub fn raw(cfg: Value) -> Self {
        let mut edge = Edge::new(config(cfg), [7; 32], T0);
        let _ = edge.drain_actions();
        Self {
            edge,
            now: T0,
            fake: FakeAs::default(),
        }
    }

    pub fn new(cfg: Value) -> Self {
        let edge = Edge::new(config(cfg), [7; 32], T0);
        let mut h = Self {
            edge,
            now: T0,
            fake: FakeAs::default(),
        };
        // Answer the initial JWKS fetch.
        let acts = h.edge.drain_actions();
        if acts
            .iter()
            .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
        {
            let jwks = h.fake.jwks();
            h.edge.handle_jwks(h.now, Ok(jwks.as_bytes()));
            let _ = h.edge.drain_actions();
        }
        h
    }

    pub fn advance(&mut self, ms: u64) {
        self.now += ms;
        self.edge.handle_timeout(self.now);
    }

    pub fn request_with(
        &mut self,
        id: u64,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        cert: Option<&str>,
    ) -> Vec<Action> {
        let req = Request {
            id,
            method,
            scheme: "https",
            authority: "api.example",
            path,
            headers,
            client_cert_thumbprint: cert,
        };
        self.edge.handle_request(self.now, &req);
        self.edge.drain_actions()
    }

    /// A revocation by `selector` on this instance (no `until`), and the actions it queued.
    pub fn revoke_local(&mut self, selector: Selector) -> Vec<Action> {
        let r = Revocation {
            selector,
            until: None,
            keep_until: None,
            since: None,
        };
        self.edge
            .handle_revocation(self.now, r, Origin::Local)
            .unwrap();
        self.edge.drain_actions()
    }

    pub fn request(&mut self, id: u64, path: &str, token: &str) -> Vec<Action> {
        let auth = format!("Bearer {token}");
        self.request_with(id, "GET", path, &[("authorization", &auth)], None)
    }

    /// Answers `ticket` with a 200 RFC 9701 response carrying `token_introspection`, signed
    /// by the fake AS's EdDSA key now.
    pub fn respond_9701(&mut self, ticket: u64, token_introspection: Value) -> Vec<Action> {
        let body = self
            .fake
            .rfc9701(&self.fake.ed, token_introspection, self.now);
        self.respond(ticket, 200, RFC9701_CT, &body)
    }

    pub fn respond(
        &mut self,
        ticket: u64,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Vec<Action> {
        let headers = [("content-type", content_type)];
        let resp = HttpResponse {
            status,
            headers: &headers,
            body: body.as_bytes(),
        };
        self.edge
            .handle_introspection_response(self.now, ticket, &resp)
            .unwrap();
        self.edge.drain_actions()
    }

    pub fn respond_headers(
        &mut self,
        ticket: u64,
        status: u16,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Vec<Action> {
        let resp = HttpResponse {
            status,
            headers,
            body: body.as_bytes(),
        };
        self.edge
            .handle_introspection_response(self.now, ticket, &resp)
            .unwrap();
        self.edge.drain_actions()
    }
}

/// Whether `actions` ask for the JWKS.
pub fn fetches_jwks(actions: &[Action]) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Fetch(f) if f.kind == FetchKind::Jwks))
}

pub fn introspects(actions: &[Action]) -> Vec<&Fetch> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Fetch(
                i @ Fetch {
                    kind: FetchKind::Introspection,
                    ..
                },
            ) = a
            {
                Some(i)
            } else {
                None
            }
        })
        .collect()
}
pub fn ticket(actions: &[Action]) -> u64 {
    let i = introspects(actions);
    assert_eq!(
        i.len(),
        1,
        "expected exactly one introspection in {actions:?}"
    );
    i[0].ticket
}
/// The one `SharedLookup` among `actions` (split mode).
pub fn shared_lookup(actions: &[Action]) -> &SharedLookup {
    let l: Vec<&SharedLookup> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SharedLookup(l) => Some(l),
            _ => None,
        })
        .collect();
    assert_eq!(
        l.len(),
        1,
        "expected exactly one shared lookup in {actions:?}"
    );
    l[0]
}

/// `base_config("rfc9701")` in split mode, without `[assertions]` (the AS-issued JWT goes on).
/// Split mode reading plain `header.payload` store values (`split.plain_values`), as the
/// tests that build values by hand write them; `sealed_split_config` is the default.
pub fn split_config() -> Value {
    let mut cfg = sealed_split_config();
    cfg["split"] = json!({ "plain_values": true });
    cfg
}

/// Split mode as configured by default: only sealed store values (`split_jwt`) are read.
pub fn sealed_split_config() -> Value {
    let mut cfg = base_config("rfc9701");
    cfg["mode"] = json!("split");
    cfg.as_object_mut().unwrap().remove("assertions");
    cfg
}

/// A DPoP proof (RFC 9449) by `signer` for `token`.
pub fn dpop_proof(
    signer: &Signer,
    method: &str,
    htu: &str,
    token: &str,
    iat: u64,
    jti: &str,
) -> String {
    use sha2::Digest as _;
    let ath = B64.encode(sha2::Sha256::digest(token.as_bytes()));
    signer.sign_with_header(
        json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": signer.jwk}),
        &json!({"jti": jti, "htm": method, "htu": htu, "iat": iat, "ath": ath}),
    )
}

/// The RFC 7638 thumbprint of `signer`'s public JWK (a DPoP-bound token's `cnf.jkt`).
pub fn jkt(signer: &Signer) -> String {
    let jwk: Jwk = serde_json::from_value(signer.jwk.clone()).unwrap();
    jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
        .unwrap()
}

pub fn forwards(actions: &[Action]) -> Vec<&Forward> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Forward(f) = a {
                Some(f)
            } else {
                None
            }
        })
        .collect()
}
pub fn rejects(actions: &[Action]) -> Vec<&Reject> {
    actions
        .iter()
        .filter_map(|a| {
            if let Action::Reject(r) = a {
                Some(r)
            } else {
                None
            }
        })
        .collect()
}
pub fn forward(actions: &[Action]) -> &Forward {
    let f = forwards(actions);
    assert_eq!(f.len(), 1, "expected one Forward in {actions:?}");
    assert!(rejects(actions).is_empty());
    f[0]
}
pub fn reject(actions: &[Action]) -> &Reject {
    let r = rejects(actions);
    assert_eq!(r.len(), 1, "expected one Reject in {actions:?}");
    assert!(forwards(actions).is_empty());
    r[0]
}

/// Decodes the payload of a compact JWT (no verification: for assertions in tests).
pub fn jwt_claims(jwt: &str) -> Value {
    let p = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(p).unwrap()).unwrap()
}
pub fn jwt_header(jwt: &str) -> Value {
    let p = jwt.split('.').next().unwrap();
    serde_json::from_slice(&B64.decode(p).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The property models' bookkeeping (core/tests/model.rs, model_modes.rs)
// ---------------------------------------------------------------------------------------------

/// The request ids decided (forwarded or rejected) in `acts`.
pub fn decided_ids(acts: &[Action]) -> Vec<u64> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Forward(f) => Some(f.request_id),
            Action::Reject(r) => Some(r.request_id),
            _ => None,
        })
        .collect()
}

/// The tickets that timed out in `acts`.
pub fn timed_out(acts: &[Action]) -> Vec<u64> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Audit(e) if e.kind == AuditKind::TicketTimedOut => e.ticket,
            _ => None,
        })
        .collect()
}

/// Which requests wait on which ticket in the core: a request not decided at once waits on the
/// ticket it opened (its `Introspect` or `SharedLookup`) or joined (coalesced on the one in flight
/// for its token, answered or not: an answer parked for a JWKS fetch keeps it open).
#[derive(Default)]
pub struct Waits {
    /// Ticket → the requests waiting on it, in arrival order.
    on: HashMap<u64, Vec<u64>>,
    /// Token → its ticket in flight in the core.
    ticket_of: HashMap<usize, u64>,
}

impl Waits {
    /// Request `id` for `token` got `acts`.
    pub fn request(&mut self, id: u64, token: usize, acts: &[Action]) {
        if decided_ids(acts).contains(&id) {
            return;
        }
        let opened = acts.iter().find_map(|a| match a {
            Action::Fetch(i) if i.kind == FetchKind::Introspection => Some(i.ticket),
            Action::SharedLookup(l) => Some(l.ticket),
            _ => None,
        });
        let ticket = match opened {
            Some(t) => {
                self.ticket_of.insert(token, t);
                t
            }
            None => *self.ticket_of.get(&token).unwrap_or_else(|| {
                panic!("request {id} neither decided nor waiting on a ticket: {acts:?}")
            }),
        };
        self.on.entry(ticket).or_default().push(id);
    }

    /// Forgets the tickets that ended in `acts`: their waiters were decided, or they timed out.
    pub fn settle(&mut self, acts: &[Action]) {
        let decided = decided_ids(acts);
        let mut ended = timed_out(acts);
        ended.extend(
            self.on
                .iter()
                .filter(|(_, ids)| ids.iter().any(|i| decided.contains(i)))
                .map(|(t, _)| *t),
        );
        for t in ended {
            self.on.remove(&t);
            self.ticket_of.retain(|_, x| *x != t);
        }
    }

    pub fn waiting(&self, ticket: u64) -> Vec<u64> {
        self.on.get(&ticket).cloned().unwrap_or_default()
    }

    pub fn alive(&self, ticket: u64) -> bool {
        self.on.contains_key(&ticket)
    }
}
