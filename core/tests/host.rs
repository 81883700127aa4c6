//! The host driver (`Step`, `handle`), the one fetch shape (`Fetch` / `handle_fetch`, JWKS
//! included), the forwarding policy (`upstream_headers`) and the operator routes
//! (`handle_admin`).

mod support;

use phantom_edge_core::{
    ADMIN_CHALLENGE, AdminRequest, AdminRoute, AuditKind, Decision, Edge, EdgeError, Hop,
    HttpResponse, Input, Listener, LookupResult, MAX_ADMIN_BODY, MAX_JWKS_BODY, MAX_RESPONSE_BODY,
    Reason, Request, hop_by_hop_headers,
};
use serde_json::json;
use support::*;

fn audits(step: &phantom_edge_core::Step, kind: AuditKind) -> usize {
    step.audits.iter().filter(|e| e.kind == kind).count()
}

#[test]
fn a_step_sorts_the_actions_by_consumer_and_says_when_to_wake() {
    let mut h = Harness::new(base_config("rfc9701"));
    let headers = [("authorization", "Bearer tok-a")];
    let req = Request {
        id: 1,
        method: "GET",
        scheme: "https",
        authority: "api.example",
        path: "/orders/1",
        headers: &headers,
        client_cert_thumbprint: None,
    };
    let step = h.edge.handle(h.now, Input::Request(req)).unwrap();
    assert!(step.decisions.is_empty());
    assert_eq!(step.fetches.len(), 1);
    let f = &step.fetches[0];
    assert_eq!((f.kind, f.method), (FetchKind::Introspection, "POST"));
    assert_eq!(f.max_response_bytes, MAX_RESPONSE_BODY);
    assert!(f.fingerprint.is_some());
    assert_eq!(audits(&step, AuditKind::CacheMiss), 1);
    // The ticket's deadline is the next wake-up.
    assert_eq!(step.wake_at, Some(h.now + f.timeout_ms));
    let body = h
        .fake
        .rfc9701(&h.fake.ed, FakeAs::claims(h.now, "orders:read"), h.now);
    let resp = HttpResponse {
        status: 200,
        headers: &[("content-type", RFC9701_CT)],
        body: body.as_bytes(),
    };
    let step = h
        .edge
        .handle(
            h.now + 5,
            Input::Fetched {
                ticket: f.ticket,
                result: Ok(resp),
            },
        )
        .unwrap();
    let Some(Decision::Forward(fw)) = step.decision(1) else {
        panic!("forwarded: {step:?}")
    };
    assert!(fw.header_value.starts_with("Bearer ey"));
    assert!(step.fetches.is_empty() && step.lookups.is_empty() && step.publishes.is_empty());
    // Nothing pending any more: no timer.
    assert_eq!(step.wake_at, None);
    // A revocation through `handle` publishes; a refused one is an error, and queues nothing.
    let rev = phantom_edge_core::Revocation::from_json(br#"{"sub":"alice"}"#).unwrap();
    let step = h
        .edge
        .handle(
            h.now,
            Input::Revocation {
                revocation: rev,
                origin: phantom_edge_core::Origin::Local,
            },
        )
        .unwrap();
    assert_eq!(step.publishes.len(), 1);
    assert!(step.wake_at.is_some(), "the revocation sweep is armed");
    assert!(matches!(
        h.edge.handle(h.now, Input::SecurityEvent("not.a.set")),
        Err(EdgeError::Revocation(_))
    ));
    assert!(h.edge.step().is_empty());
}

#[test]
fn the_jwks_fetch_has_a_ticket_a_deadline_and_the_core_reads_its_status() {
    let mut edge = Edge::new(config(base_config("rfc9701")), [7; 32], T0);
    let step = edge.step();
    let f = step.fetches.first().expect("the initial JWKS fetch");
    assert_eq!(
        (f.kind, f.method, f.url.as_str()),
        (FetchKind::Jwks, "GET", JWKS_URI)
    );
    assert_eq!(f.max_response_bytes, MAX_JWKS_BODY);
    assert_eq!(f.fingerprint, None);
    assert_eq!(edge.jwks_in_flight(), Some(f.ticket));
    assert_eq!(step.wake_at, Some(T0 + f.timeout_ms), "its deadline");
    // A 503 (with any body) is a failure the core reads, not the host.
    let resp = HttpResponse {
        status: 503,
        headers: &[("content-type", "application/json")],
        body: br#"{"keys":[]}"#,
    };
    edge.handle_fetch(T0 + 10, f.ticket, Ok(&resp)).unwrap();
    let step = edge.step();
    let failed: Vec<_> = step
        .audits
        .iter()
        .filter(|e| e.kind == AuditKind::JwksFailed)
        .collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0]
            .detail
            .as_deref()
            .unwrap()
            .starts_with("status 503")
    );
    assert_eq!(edge.jwks_in_flight(), None);
    assert_eq!(step.wake_at, Some(T0 + 10 + 500), "the retry timer");
    // The same ticket answered again is late, not an error; a JWKS ticket is not a lookup's.
    edge.handle_fetch(T0 + 11, f.ticket, Err("again")).unwrap();
    assert_eq!(audits(&edge.step(), AuditKind::LateResponse), 1);
    // The retry: a new ticket. Nobody answers it: at its deadline it has failed.
    edge.handle_timeout(T0 + 510);
    let step = edge.step();
    let retry = step.fetches.first().expect("retried");
    assert_ne!(retry.ticket, f.ticket);
    assert_eq!(
        edge.handle_shared_lookup(T0 + 511, retry.ticket, LookupResult::NotFound),
        Err(EdgeError::WrongTicketKind(retry.ticket))
    );
    let deadline = step.wake_at.unwrap();
    assert_eq!(deadline, T0 + 510 + retry.timeout_ms);
    edge.handle_timeout(deadline);
    let step = edge.step();
    assert_eq!(audits(&step, AuditKind::JwksFailed), 1);
    assert_eq!(edge.jwks_in_flight(), None);
    assert_eq!(step.wake_at, Some(deadline + 1_000), "backoff doubled");
    // An answer larger than the bound is refused whole.
    edge.handle_timeout(deadline + 1_000);
    let t = edge.step().fetches[0].ticket;
    let big = vec![b' '; MAX_JWKS_BODY + 1];
    let resp = HttpResponse {
        status: 200,
        headers: &[],
        body: &big,
    };
    edge.handle_fetch(deadline + 1_001, t, Ok(&resp)).unwrap();
    assert_eq!(audits(&edge.step(), AuditKind::JwksFailed), 1);
    // A ticket never issued is misuse.
    assert_eq!(
        edge.handle_fetch(deadline + 1_002, 999, Err("x")),
        Err(EdgeError::UnknownTicket(999))
    );
}

fn names(h: &[(&str, &str)], drop: &[usize]) -> Vec<String> {
    h.iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, (n, _))| (*n).to_owned())
        .collect()
}

#[test]
fn the_forwarding_policy_for_a_proxy() {
    let mut cfg = base_config("rfc9701");
    cfg["upstream"] = json!({ "header": "x-jwt-assertion", "strip_headers": ["x-user"] });
    let h = Harness::new(cfg);
    let inbound = [
        ("Host", "edge.example"),
        ("Authorization", "Bearer opaque"),
        ("DPoP", "proof"),
        ("X_Jwt_Assertion", "forged"),
        ("x-jwt-assertion", "forged"),
        ("X_User", "admin"),
        ("Connection", "keep-alive, X_Secret"),
        ("x-secret", "hop"),
        ("keep-alive", "timeout=5"),
        ("transfer-encoding", "chunked"),
        ("X-Forwarded-For", "203.0.113.9, 10.0.0.1"),
        ("x-forwarded-for", "10.0.0.2"),
        ("Forwarded", "for=evil"),
        ("X-Real-IP", "1.2.3.4"),
        ("x-forwarded-proto", "https"),
        ("X-Original-URL", "/admin"),
        ("accept", "application/json"),
        ("x-kept", "yes"),
    ];
    let plan = h.edge.upstream_headers(
        &inbound,
        "ey.jwt.sig",
        &Hop::Proxy {
            peer: Some("192.0.2.7"),
            proto: "http",
            upstream_authority: Some("orders.internal:8080"),
        },
    );
    assert_eq!(names(&inbound, &plan.drop), ["accept", "x-kept"]);
    let set: Vec<(&str, &str)> = plan
        .set
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        set,
        [
            ("x-jwt-assertion", "ey.jwt.sig"),
            ("host", "orders.internal:8080"),
            ("x-forwarded-host", "edge.example"),
            (
                "x-forwarded-for",
                "203.0.113.9, 10.0.0.1, 10.0.0.2, 192.0.2.7"
            ),
            ("x-forwarded-proto", "http"),
        ]
    );
    // No peer known (wasi:http): the client's chain is not passed on at all; the inbound host
    // is kept when there is no upstream authority.
    let plan = h.edge.upstream_headers(
        &inbound,
        "v",
        &Hop::Proxy {
            peer: None,
            proto: "https",
            upstream_authority: None,
        },
    );
    assert!(!plan.set.iter().any(|(n, _)| n == "x-forwarded-for"));
    assert!(plan.set.contains(&("host".into(), "edge.example".into())));
}

#[test]
fn the_forwarding_policy_in_process() {
    let h = Harness::new(base_config("rfc9701"));
    let inbound = [
        ("host", "app.example"),
        ("authorization", "Bearer opaque"),
        ("x-forwarded-for", "203.0.113.9"),
        ("connection", "keep-alive"),
        ("Authorization", "Bearer second"),
        ("x-original-url", "/admin"),
        ("x-kept", "yes"),
    ];
    let plan = h
        .edge
        .upstream_headers(&inbound, "Bearer ey.jwt.sig", &Hop::InProcess);
    // The deployment's own proxy headers and the connection's stay: the app reads them.
    assert_eq!(
        names(&inbound, &plan.drop),
        ["host", "x-forwarded-for", "connection", "x-kept"]
    );
    assert_eq!(
        plan.set,
        [("authorization".to_owned(), "Bearer ey.jwt.sig".to_owned())]
    );
}

#[test]
fn configured_names_with_underscores_drop_every_spelling() {
    // `upstream.header` and `strip_headers` are HTTP tokens, so `_` is allowed in them; an
    // inbound `X-Jwt-Assertion` is the same variable to a WSGI/CGI upstream and must go too.
    let mut cfg = base_config("rfc9701");
    cfg["upstream"] = json!({ "header": "X_Jwt_Assertion", "strip_headers": ["x_user"] });
    let h = Harness::new(cfg);
    let inbound = [
        ("X-Jwt-Assertion", "forged"),
        ("x_jwt_assertion", "forged"),
        ("X-User", "admin"),
        ("x-kept", "yes"),
    ];
    for hop in [
        Hop::InProcess,
        Hop::Proxy {
            peer: None,
            proto: "http",
            upstream_authority: None,
        },
    ] {
        let plan = h.edge.upstream_headers(&inbound, "ey.jwt.sig", &hop);
        assert_eq!(plan.drop, [0, 1, 2], "{hop:?}");
        assert_eq!(plan.set[0], ("x_jwt_assertion".into(), "ey.jwt.sig".into()));
    }
}

#[test]
fn hop_by_hop_headers_of_an_answer() {
    let answer = [
        ("content-type", "text/plain"),
        ("Connection", "close, x-internal"),
        ("X_Internal", "1"),
        ("transfer-encoding", "chunked"),
        ("etag", "\"1\""),
    ];
    assert_eq!(hop_by_hop_headers(&answer), [1, 2, 3]);
}

fn admin_edge() -> Harness {
    let mut cfg = base_config("rfc9701");
    cfg["admin"] = json!({ "token": "admin-secret-0123456789" });
    Harness::new(cfg)
}

fn admin(
    h: &mut Harness,
    route: AdminRoute,
    listener: Listener,
    method: &str,
    auth: Option<&str>,
    body: &[u8],
) -> phantom_edge_core::AdminAnswer {
    h.edge.handle_admin(
        h.now,
        &AdminRequest {
            route,
            listener,
            method,
            authorization: auth,
            content_type: Some("application/json"),
            body,
        },
    )
}

fn header<'a>(a: &'a phantom_edge_core::AdminAnswer, name: &str) -> Option<&'a str> {
    a.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn the_operator_routes_are_answered_whole() {
    let mut h = admin_edge();
    const OK: Option<&str> = Some("Bearer admin-secret-0123456789");
    let body = br#"{"sub":"alice"}"#;
    // Revocation: 204, published; a wrong bearer is challenged with the one realm.
    let a = admin(
        &mut h,
        AdminRoute::Revocations,
        Listener::Operator,
        "POST",
        OK,
        body,
    );
    assert_eq!((a.status, a.body.as_str()), (204, ""));
    assert_eq!(header(&a, "content-type"), None);
    assert_eq!(h.edge.step().publishes.len(), 1);
    let a = admin(
        &mut h,
        AdminRoute::Revocations,
        Listener::Operator,
        "POST",
        Some("Bearer nope"),
        body,
    );
    assert_eq!(a.status, 401);
    assert_eq!(header(&a, "www-authenticate"), Some(ADMIN_CHALLENGE));
    assert_eq!(json_of(&a.body)["error"], "unauthorized");
    // The body bound, the same for every host.
    let big = vec![b'{'; MAX_ADMIN_BODY + 1];
    let a = admin(
        &mut h,
        AdminRoute::Revocations,
        Listener::App,
        "POST",
        OK,
        &big,
    );
    assert_eq!(a.status, 413);
    let fits = [
        br#"{"sub":""#.as_slice(),
        &vec![b'a'; MAX_ADMIN_BODY - 10],
        b"\"}",
    ]
    .concat();
    assert_eq!(fits.len(), MAX_ADMIN_BODY);
    let a = admin(
        &mut h,
        AdminRoute::Revocations,
        Listener::App,
        "POST",
        OK,
        &fits,
    );
    assert_ne!(a.status, 413);
    // Methods.
    let a = admin(
        &mut h,
        AdminRoute::Revocations,
        Listener::Operator,
        "GET",
        OK,
        b"",
    );
    assert_eq!((a.status, header(&a, "allow")), (405, Some("POST")));
    let a = admin(
        &mut h,
        AdminRoute::Metrics,
        Listener::Operator,
        "POST",
        OK,
        b"",
    );
    assert_eq!((a.status, header(&a, "allow")), (405, Some("GET, HEAD")));
    // Metrics: open on the operator listener, the admin bearer on the app's.
    let a = admin(
        &mut h,
        AdminRoute::Metrics,
        Listener::Operator,
        "GET",
        None,
        b"",
    );
    assert_eq!(a.status, 200);
    assert!(a.body.contains("phantom_edge_"));
    assert!(
        header(&a, "content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let a = admin(&mut h, AdminRoute::Metrics, Listener::App, "GET", None, b"");
    assert_eq!(a.status, 401);
    assert_eq!(header(&a, "www-authenticate"), Some(ADMIN_CHALLENGE));
    let a = admin(&mut h, AdminRoute::Metrics, Listener::App, "HEAD", OK, b"");
    assert_eq!(a.status, 200);
    // Without [admin] nobody reads the metrics on the app's listener; the JWKS route of an edge
    // that does not mint is 404.
    // (keycloak: the AS's JWT is forwarded, nothing minted)
    let mut cfg = base_config("keycloak");
    cfg.as_object_mut().unwrap().remove("admin");
    cfg.as_object_mut().unwrap().remove("assertions");
    let mut plain = Harness::new(cfg);
    let a = admin(
        &mut plain,
        AdminRoute::Metrics,
        Listener::App,
        "GET",
        OK,
        b"",
    );
    assert_eq!(a.status, 403);
    let a = admin(
        &mut plain,
        AdminRoute::Jwks,
        Listener::Operator,
        "GET",
        None,
        b"",
    );
    assert_eq!(a.status, 404);
    assert_eq!(AdminRoute::from_name("metrics"), Some(AdminRoute::Metrics));
    assert_eq!(AdminRoute::from_name("healthz"), None);
}

fn json_of(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap()
}

#[test]
fn a_transport_failure_of_an_introspection_is_a_503() {
    let mut h = Harness::new(base_config("rfc9701"));
    let t = ticket(&h.request(1, "/orders", "tok"));
    h.edge
        .handle_fetch(h.now, t, Err("connection refused"))
        .unwrap();
    let step = h.edge.step();
    let Some(Decision::Reject(r)) = step.decision(1) else {
        panic!("{step:?}")
    };
    assert_eq!((r.status, r.reason), (503, Reason::Unavailable));
    assert!(h.edge.drain_actions().is_empty(), "step drained the queue");
}
