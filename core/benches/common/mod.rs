//! Helpers shared by the benchmark binaries: configurations and a fast way to fill the cache with
//! real introspections (the edge verifies every response exactly as in production).
#![allow(dead_code, unreachable_pub)]

use phantom_edge_core::{Action, Edge, HttpResponse, Request};
use serde_json::Value;

use crate::support::{EdgeExt, FakeAs, FetchKind, Harness, Signer, base_config};

/// Curity-dialect configuration without `[assertions]`: the AS-issued JWT is forwarded as is, so
/// a hit does no minting. Cache large enough for `entries` tokens.
pub fn curity_config(entries: usize) -> Value {
    let mut c = base_config("curity");
    c.as_object_mut().unwrap().remove("assertions");
    c["cache"]["max_entries"] = entries.into();
    c["cache"]["max_bytes"] = (16usize << 30).into();
    c["cache"]["max_ttl"] = "3600s".into();
    c["revocation"]["max_entries"] = 4_000_000.into();
    c
}

/// A realistic opaque token (48 characters, like Curity/Keycloak reference tokens) as the
/// `Authorization` header value.
pub fn bearer(prefix: &str, i: usize) -> String {
    format!("Bearer {prefix}_{i:010}_phantom-opaque-reference-tokn")
}

/// The request every benchmark sends: GET /orders/1 (scope orders:read, audience orders-api).
pub fn request<'a>(id: u64, headers: &'a [(&'a str, &'a str)]) -> Request<'a> {
    Request {
        id,
        method: "GET",
        scheme: "https",
        authority: "api.example",
        path: "/orders/1",
        headers,
        client_cert_thumbprint: None,
    }
}

/// Sends one request with `auth`, and when it misses, answers the introspection with
/// `content_type` / `body`. Returns whether a Forward came out. Drains everything.
pub fn miss_and_answer(
    edge: &mut Edge,
    now: u64,
    id: u64,
    auth: &str,
    resp_headers: &[(&str, &str)],
    body: &[u8],
) -> bool {
    let headers = [("authorization", auth)];
    edge.handle_request(now, &request(id, &headers));
    let mut ticket = None;
    let mut forwarded = false;
    while let Some(a) = edge.poll_action() {
        match a {
            Action::Fetch(i) if i.kind == FetchKind::Introspection => ticket = Some(i.ticket),
            Action::Forward(_) => forwarded = true,
            _ => {}
        }
    }
    if let Some(t) = ticket {
        let resp = HttpResponse {
            status: 200,
            headers: resp_headers,
            body,
        };
        edge.handle_introspection_response(now, t, &resp).unwrap();
        while let Some(a) = edge.poll_action() {
            if let Action::Forward(_) = a {
                forwarded = true;
            }
        }
    }
    forwarded
}

/// A harness whose cache holds `n` tokens (Curity dialect, EdDSA-signed access JWT, one real
/// introspection + verification per token). Returns the harness and the `Authorization` values.
pub fn filled_curity(n: usize, prefix: &str) -> (Harness, Vec<String>) {
    let mut h = Harness::new(curity_config(n.max(1)));
    let tokens: Vec<String> = (0..n).map(|i| bearer(prefix, i)).collect();
    fill_curity(&mut h, &tokens);
    (h, tokens)
}

/// Fills with the given tokens (all answered with the same signed access JWT: the edge cannot
/// and does not tell).
pub fn fill_curity(h: &mut Harness, tokens: &[String]) {
    let body = curity_body(&h.fake, &h.fake.ed, h.now);
    let hdrs = [("content-type", "application/jwt")];
    for (i, t) in tokens.iter().enumerate() {
        assert!(
            miss_and_answer(&mut h.edge, h.now, i as u64, t, &hdrs, body.as_bytes()),
            "fill: no Forward"
        );
    }
}

/// The Curity answer: the access token as a JWT signed by `signer`.
pub fn curity_body(fake: &FakeAs, signer: &Signer, now: u64) -> String {
    fake.access_jwt(signer, &FakeAs::claims(now, "orders:read orders:write"))
}

/// The RFC 9701 answer signed by `signer`.
pub fn rfc9701_body(fake: &FakeAs, signer: &Signer, now: u64) -> String {
    fake.rfc9701(signer, FakeAs::claims(now, "orders:read orders:write"), now)
}

/// A deterministic permutation of 0..n (xorshift Fisher–Yates).
pub fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut s = seed | 1;
    for i in (1..n).rev() {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let j = (s % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
    v
}

/// splitmix64, for pseudo-random fingerprints.
pub fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
