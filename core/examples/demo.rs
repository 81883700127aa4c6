//! The demo: a full phantom-token exchange between a client, phantom-edge and an in-process fake
//! authorization server speaking RFC 9701, driven by a host loop with a virtual clock.
//!
//! Run: `cargo run -p phantom-edge-core --example demo`

#[path = "../tests/support/mod.rs"]
mod support;

use phantom_edge_core::{Action, Origin, Revocation, Selector};
use serde_json::json;
use support::*;

/// The host's side: carry out every action, answering introspections from the fake AS.
fn run(h: &mut Harness, label: &str, token: Option<&str>, path: &str) {
    println!("\n== {label}: GET {path}");
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    let mut queue = h.request_with(1, "GET", path, &headers, None);
    while !queue.is_empty() {
        let mut next = Vec::new();
        for action in queue {
            match action {
                Action::Fetch(i) if i.kind == FetchKind::Introspection => {
                    println!(
                        "   edge -> AS        POST {} (ticket {}, token fingerprint {})",
                        i.url,
                        i.ticket,
                        i.fingerprint.map(|f| f.to_string()).unwrap_or_default()
                    );
                    h.now += 12; // the AS takes 12 ms
                    let active = token.is_some_and(|t| t.starts_with("good"));
                    let claims = if active {
                        FakeAs::claims(h.now, "orders:read profile")
                    } else {
                        json!({"active": false})
                    };
                    let body = h.fake.rfc9701(&h.fake.es, claims, h.now);
                    println!(
                        "   AS -> edge        200 application/token-introspection+jwt (ES256-signed)"
                    );
                    next.extend(h.respond(
                        i.ticket,
                        200,
                        "application/token-introspection+jwt",
                        &body,
                    ));
                }
                Action::Forward(f) => {
                    let jwt = f
                        .header_value
                        .strip_prefix("Bearer ")
                        .unwrap_or(&f.header_value);
                    println!(
                        "   edge -> upstream  {}: Bearer <JWT>  (stripped: {:?})",
                        f.header_name, f.strip_headers
                    );
                    println!("   upstream sees JWT header {}", jwt_header(jwt));
                    println!("   upstream sees JWT claims {}", jwt_claims(jwt));
                }
                Action::Reject(r) => {
                    println!(
                        "   edge -> client    {} WWW-Authenticate: {}",
                        r.status,
                        r.www_authenticate.as_deref().unwrap_or("-")
                    );
                    println!("   body {}", r.body);
                }
                Action::Audit(e) => println!("   audit {}", e.to_json()),
                other => println!("   {other:?}"),
            }
        }
        queue = next;
    }
}

fn main() {
    let mut h = Harness::new(base_config("rfc9701"));
    run(
        &mut h,
        "valid opaque token (miss: introspect, verify, mint)",
        Some("good-opaque-token-1"),
        "/orders/42",
    );
    run(
        &mut h,
        "same token again (cache hit, scopes re-checked)",
        Some("good-opaque-token-1"),
        "/orders/43",
    );
    run(
        &mut h,
        "same token, route needing orders:admin",
        Some("good-opaque-token-1"),
        "/admin/users",
    );
    run(&mut h, "no token", None, "/orders/42");
    run(&mut h, "malformed header", Some("two words"), "/orders/42");
    run(
        &mut h,
        "unknown token",
        Some("bad-opaque-token"),
        "/orders/42",
    );
    println!("\n== revoke the first token (admin route / pub-sub)");
    let revocation = Revocation {
        selector: Selector::Token("good-opaque-token-1".into()),
        until: None,
        keep_until: None,
        since: None,
    };
    h.edge
        .handle_revocation(h.now, revocation, Origin::Local)
        .unwrap();
    for a in h.edge.drain_actions() {
        println!("   {a:?}");
    }
    run(
        &mut h,
        "revoked token",
        Some("good-opaque-token-1"),
        "/orders/42",
    );
    println!("\n== metrics\n{}", h.edge.prometheus());
}
