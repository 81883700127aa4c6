//! Replays tests/vectors/cases through the binding object (`PhantomEdge`, owned records, the
//! `Step` of every input and `PhantomEdgeError`) from Rust, so `cargo test` checks the
//! translation layer even where Python is absent. bindings/swift/ci.sh replays the same cases
//! through the generated Python FFI module, and VectorTests.swift through the generated Swift.
//!
//! Replaying through a `Step` (tests/vectors/README.md): each of its lists equals the expected
//! actions of its types, in order, and `wake_at` equals the step's `timeout`. An
//! `upstream_headers` input queues nothing and returns no step: its expected actions are none,
//! and the edge's `wake_at` is the previous step's.

use std::collections::HashMap;

use phantom_edge_uniffi::{
    AdminRequest, AdminRoute, AuditEvent, AuditLevel, Decision, Fetch, FetchKind, FetchResult,
    ForwardPolicy, Header, Hop, Listener, LookupResult, Origin, PhantomEdge, PhantomEdgeError,
    Request, Step, hop_by_hop_headers, max_admin_body,
};
use serde_json::{Map, Value, json};

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("input member {k:?} must be a string"))
}
fn opt_s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(str::to_owned)
}
fn u(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("input member {k:?} must be an integer"))
}
fn pairs(v: &Value, k: &str) -> Vec<Header> {
    v[k].as_array()
        .unwrap_or_else(|| panic!("{k} must be an array"))
        .iter()
        .map(|p| Header {
            name: s_idx(p, 0),
            value: s_idx(p, 1),
        })
        .collect()
}
fn s_idx(p: &Value, i: usize) -> String {
    p[i].as_str().expect("[name, value]").to_owned()
}
fn header_pairs(headers: &[Header]) -> Value {
    headers.iter().map(|h| json!([h.name, h.value])).collect()
}

/// A step's outcome: the step (if the call returned one) and the vector's `result`.
type Outcome = (Option<Step>, Value);

fn ticket_result(r: Result<Step, PhantomEdgeError>) -> Outcome {
    match r {
        Ok(step) => (Some(step), Value::Null),
        Err(PhantomEdgeError::UnknownTicket { .. }) => (None, json!({ "error": "unknown_ticket" })),
        Err(PhantomEdgeError::WrongTicketKind { .. }) => {
            (None, json!({ "error": "wrong_ticket_kind" }))
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn revocation_result(r: Result<Step, PhantomEdgeError>) -> Outcome {
    match r {
        Ok(step) => (Some(step), json!({ "ok": true })),
        Err(PhantomEdgeError::Revocation { status, .. }) => {
            (None, json!({ "error": { "status": status } }))
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn apply(edge: &PhantomEdge, now: u64, input: &Value) -> Outcome {
    match s(input, "type") {
        "request" => {
            let request = Request {
                id: u(input, "id"),
                method: s(input, "method").into(),
                scheme: s(input, "scheme").into(),
                authority: s(input, "authority").into(),
                path: s(input, "path").into(),
                headers: pairs(input, "headers"),
                client_cert_thumbprint: opt_s(input, "client_cert_thumbprint"),
            };
            (Some(edge.handle_request(now, request)), Value::Null)
        }
        "fetch_response" => {
            let result = FetchResult::Response {
                status: u16::try_from(u(input, "status")).expect("status"),
                headers: pairs(input, "headers"),
                body: s(input, "body").as_bytes().to_vec(),
            };
            ticket_result(edge.handle_fetch(now, u(input, "ticket"), result))
        }
        "fetch_failure" => {
            let result = FetchResult::Failure {
                detail: s(input, "detail").into(),
            };
            ticket_result(edge.handle_fetch(now, u(input, "ticket"), result))
        }
        "shared_lookup" => {
            let r = match &input["result"] {
                Value::String(x) if x == "not_found" => LookupResult::NotFound,
                Value::String(x) if x == "error" => LookupResult::Error,
                Value::Object(o) => LookupResult::Found {
                    value: o["found"].as_str().expect("found").into(),
                },
                other => panic!("bad shared_lookup result {other}"),
            };
            ticket_result(edge.handle_shared_lookup(now, u(input, "ticket"), r))
        }
        "revocation" => {
            let origin = match s(input, "origin") {
                "local" => Origin::Local,
                "shared" => Origin::Shared,
                o => panic!("unknown origin {o}"),
            };
            revocation_result(edge.handle_revocation(now, input["selector"].to_string(), origin))
        }
        "admin" => {
            let route = match s(input, "route") {
                "revocations" => AdminRoute::Revocations,
                "metrics" => AdminRoute::Metrics,
                "jwks" => AdminRoute::Jwks,
                r => panic!("unknown route {r}"),
            };
            let listener = match s(input, "listener") {
                "operator" => Listener::Operator,
                "app" => Listener::App,
                l => panic!("unknown listener {l}"),
            };
            let out = edge.handle_admin(
                now,
                AdminRequest {
                    route,
                    listener,
                    method: s(input, "method").into(),
                    authorization: opt_s(input, "authorization"),
                    content_type: opt_s(input, "content_type"),
                    body: s(input, "body").as_bytes().to_vec(),
                },
            );
            let a = out.answer;
            let result = json!({
                "status": a.status, "headers": header_pairs(&a.headers), "body": a.body,
            });
            (Some(out.step), result)
        }
        "upstream_headers" => {
            let hop = &input["hop"];
            let hop = if hop == "in_process" {
                Hop::InProcess
            } else {
                let p = &hop["proxy"];
                Hop::Proxy {
                    peer: opt_s(p, "peer"),
                    proto: s(p, "proto").into(),
                    upstream_authority: opt_s(p, "upstream_authority"),
                }
            };
            let plan = edge.upstream_headers(
                pairs(input, "inbound"),
                s(input, "header_value").into(),
                hop,
            );
            (
                None,
                json!({ "drop": plan.drop, "set": header_pairs(&plan.set) }),
            )
        }
        "security_event" => {
            revocation_result(edge.handle_security_event(now, s(input, "set").into()))
        }
        "timeout" => (Some(edge.handle_timeout(now)), Value::Null),
        other => panic!("unknown input type {other}"),
    }
}

fn canon_decision(d: &Decision, policy: &ForwardPolicy) -> Value {
    match d {
        Decision::Forward { forward: f } => json!({
            "type": "forward", "request_id": f.request_id, "header_name": policy.header_name,
            "header_value": f.header_value, "strip_headers": policy.strip_headers,
            "fingerprint": f.fingerprint,
            "token": serde_json::from_str::<Value>(&f.token_json).expect("token_json"),
        }),
        Decision::Reject { reject: r } => json!({
            "type": "reject", "request_id": r.request_id, "status": r.status,
            "www_authenticate": r.www_authenticate, "retry_after": r.retry_after,
            "body": r.body, "reason": r.reason,
            "fingerprint": r.fingerprint,
        }),
    }
}

fn canon_fetch(f: &Fetch) -> Value {
    json!({
        "type": "fetch", "ticket": f.ticket,
        "kind": match f.kind { FetchKind::Introspection => "introspection", FetchKind::Jwks => "jwks" },
        "method": f.method, "url": f.url, "headers": header_pairs(&f.headers), "body": f.body,
        "timeout_ms": f.timeout_ms, "max_response_bytes": f.max_response_bytes,
        "fingerprint": f.fingerprint,
    })
}

fn canon_audit(e: &AuditEvent) -> Value {
    let mut m = Map::new();
    m.insert("type".into(), "audit".into());
    m.insert("kind".into(), e.kind.clone().into());
    let level = match e.level {
        AuditLevel::Debug => "debug",
        AuditLevel::Info => "info",
        AuditLevel::Warn => "warn",
    };
    m.insert("level".into(), level.into());
    let opt = [
        ("request_id", e.request_id.map(Value::from)),
        ("ticket", e.ticket.map(Value::from)),
        ("fingerprint", e.fingerprint.clone().map(Value::from)),
        ("reason", e.reason.clone().map(Value::from)),
        ("detail", e.detail.clone().map(Value::from)),
    ];
    for (k, v) in opt {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    }
    let mut whole: Map<String, Value> = serde_json::from_str(&e.json).expect("audit json");
    whole.insert("type".into(), "audit".into());
    assert_eq!(whole, m, "audit json disagrees with its fields");
    Value::Object(m)
}

/// The step's lists in canonical JSON, by consumer.
fn canon_step(step: &Step, policy: &ForwardPolicy) -> [Value; 5] {
    [
        step.decisions
            .iter()
            .map(|d| canon_decision(d, policy))
            .collect(),
        step.fetches.iter().map(canon_fetch).collect(),
        step.lookups
            .iter()
            .map(|l| json!({ "type": "shared_lookup", "ticket": l.ticket, "key": l.key }))
            .collect(),
        step.publishes
            .iter()
            .map(|m| json!({ "type": "shared_publish", "message": m }))
            .collect(),
        step.audits.iter().map(canon_audit).collect(),
    ]
}

/// The expected actions split the way a `Step` holds them.
fn split_expected(expected: &Value) -> [Value; 5] {
    let mut lists: [Vec<Value>; 5] = Default::default();
    for a in expected.as_array().expect("expected actions") {
        let i = match s(a, "type") {
            "forward" | "reject" => 0,
            "fetch" => 1,
            "shared_lookup" => 2,
            "shared_publish" => 3,
            "audit" => 4,
            t => panic!("unknown action type {t}"),
        };
        lists[i].push(a.clone());
    }
    lists.map(Value::Array)
}

const LISTS: [&str; 5] = ["decisions", "fetches", "lookups", "publishes", "audits"];

fn check_step(
    what: &str,
    step: &Step,
    expected: &Value,
    policy: &ForwardPolicy,
) -> Result<(), String> {
    let actual = canon_step(step, policy);
    for ((list, want), got) in LISTS.iter().zip(split_expected(expected)).zip(actual) {
        if want != got {
            return Err(format!(
                "{what}: {list}\n--- expected\n{want:#}\n--- actual\n{got:#}"
            ));
        }
    }
    Ok(())
}

fn replay(case: &Value) -> Result<(), String> {
    let name = s(case, "name");
    let seed: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&s(case, "seed")[2 * i..2 * i + 2], 16).expect("seed hex"))
        .collect();
    let edge = PhantomEdge::from_json_with_env(
        case["config"].to_string(),
        HashMap::new(),
        seed,
        u(case, "start"),
    )
    .map_err(|e| format!("case {name}: {e}"))?;
    let policy = edge.forward_policy();
    let initial = edge.initial_step();
    let expected_initial = case.get("initial").cloned().unwrap_or_else(|| json!([]));
    check_step(
        &format!("case {name}: initial step"),
        &initial,
        &expected_initial,
        &policy,
    )?;
    let mut wake_at = initial.wake_at;
    for (i, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
        let now = u(step, "now");
        let what = format!("case {name}, step {i} ({})", s(&step["input"], "type"));
        let (produced, result) = apply(&edge, now, &step["input"]);
        // A call that returned no step (an error, upstream_headers) queued nothing the vector
        // expects now: what it left queued comes with the next step.
        let produced = produced.unwrap_or_else(|| Step {
            wake_at,
            ..Step::default()
        });
        check_step(&what, &produced, &step["expect"], &policy)?;
        wake_at = produced.wake_at;
        let expected_result = step.get("result").cloned().unwrap_or(Value::Null);
        if result != expected_result {
            return Err(format!("{what}: result {result} != {expected_result}"));
        }
        if let Some(t) = step.get("timeout") {
            let got = wake_at.map_or(Value::Null, Value::from);
            if &got != t {
                return Err(format!("{what}: wake_at {got} != {t}"));
            }
        }
    }
    Ok(())
}

#[test]
fn vectors_replay_through_the_binding_layer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors/cases");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        74,
        "expected 74 vector cases in {}",
        dir.display()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|p| {
            let case: Value =
                serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json");
            replay(&case).err()
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}

const TOML: &str = "[authorization_server]\nissuer = \"https://as.example\"\n\
    introspection_endpoint = \"https://as.example/i\"\nclient_id = \"gw\"\n\
    client_secret = \"s3cret\"\ndialect = \"keycloak\"\n\
    jwks_uri = \"https://as.example/jwks\"\n[[routes]]\npath_prefix = \"/\"\n";

fn edge(extra: &str) -> std::sync::Arc<PhantomEdge> {
    PhantomEdge::from_toml_with_env(format!("{TOML}{extra}"), HashMap::new(), vec![0; 32], 0)
        .expect("config")
}

fn request(id: u64, token: &str) -> Request {
    Request {
        id,
        method: "GET".into(),
        scheme: "https".into(),
        authority: "api.example".into(),
        path: "/orders".into(),
        headers: vec![Header {
            name: "authorization".into(),
            value: format!("Bearer {token}"),
        }],
        client_cert_thumbprint: None,
    }
}

#[test]
fn config_errors_name_the_field_and_short_seeds_are_refused() {
    let toml = TOML.replace(
        "client_secret = \"s3cret\"",
        "client_secret_env = \"PE_UNIFFI_TEST_SECRET\"",
    );
    match PhantomEdge::from_toml_with_env(toml.clone(), HashMap::new(), vec![0; 32], 0) {
        Err(PhantomEdgeError::Config { field, .. }) => {
            assert_eq!(field, "authorization_server.client_secret_env");
        }
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
    let env = HashMap::from([("PE_UNIFFI_TEST_SECRET".to_owned(), "s3cret".to_owned())]);
    assert!(matches!(
        PhantomEdge::from_toml_with_env(toml.clone(), env.clone(), vec![0; 3], 0),
        Err(PhantomEdgeError::Api { .. })
    ));
    let edge = PhantomEdge::from_toml_with_env(toml, env, vec![0; 32], 0).expect("config");
    let first = edge.initial_step();
    assert_eq!(first.fetches.len(), 1, "{first:?}");
    let jwks = &first.fetches[0];
    assert_eq!(
        (jwks.kind, jwks.method.as_str(), jwks.url.as_str()),
        (FetchKind::Jwks, "GET", "https://as.example/jwks")
    );
    assert_eq!(jwks.fingerprint, None);
    assert!(first.wake_at.is_some(), "the JWKS fetch has a deadline");
    assert!(edge.initial_step().fetches.is_empty(), "drained");
    assert!(matches!(
        edge.handle_fetch(0, 42, FetchResult::Failure { detail: "x".into() }),
        Err(PhantomEdgeError::UnknownTicket { ticket: 42 })
    ));
}

/// The metrics route on the app's listener: 403 without `[admin]`, 401 (with the realm) for a
/// missing or wrong bearer, 200 only for the `[admin]` bearer secret.
#[test]
fn app_metrics_need_admin_and_only_its_bearer() {
    let secret = "admin-secret-0123456789";
    let bare = edge("");
    let admin = edge(&format!("[admin]\ntoken = \"{secret}\"\n"));
    let metrics = |e: &PhantomEdge, authorization: Option<String>| {
        e.handle_admin(
            0,
            AdminRequest {
                route: AdminRoute::Metrics,
                listener: Listener::App,
                method: "GET".into(),
                authorization,
                content_type: None,
                body: Vec::new(),
            },
        )
        .answer
    };
    for (authorization, want) in [
        (Some(format!("Bearer {secret}")), 200),
        (Some(format!("bearer  {secret} ")), 200),
        (Some(format!("Bearer {secret}x")), 401),
        (Some("Bearer wrong-0123456789".to_owned()), 401),
        (Some(format!("Basic {secret}")), 401),
        (None, 401),
    ] {
        let a = metrics(&admin, authorization.clone());
        assert_eq!(a.status, want, "{authorization:?}");
        if want == 401 {
            assert!(
                a.headers.contains(&Header {
                    name: "www-authenticate".into(),
                    value: "Bearer realm=\"phantom-edge-admin\"".into()
                }),
                "{a:?}"
            );
        } else {
            assert!(a.body.contains("phantom_edge"), "{a:?}");
        }
        assert_eq!(metrics(&bare, authorization.clone()).status, 403);
    }
    // On the operator listener the metrics are open; a body over the limit is 413.
    let open = bare.handle_admin(
        0,
        AdminRequest {
            route: AdminRoute::Metrics,
            listener: Listener::Operator,
            method: "GET".into(),
            authorization: None,
            content_type: None,
            body: Vec::new(),
        },
    );
    assert_eq!(open.answer.status, 200);
    let big = admin.handle_admin(
        0,
        AdminRequest {
            route: AdminRoute::Revocations,
            listener: Listener::Operator,
            method: "POST".into(),
            authorization: Some(format!("Bearer {secret}")),
            content_type: Some("application/json".into()),
            body: vec![b' '; usize::try_from(max_admin_body()).expect("fits") + 1],
        },
    );
    assert_eq!(big.answer.status, 413);
}

#[test]
fn mute_audits_and_set_audit_level_filter_the_audits() {
    let e = edge("");
    let _ = e.initial_step();
    let kinds = |s: &Step| s.audits.iter().map(|a| a.kind.clone()).collect::<Vec<_>>();
    let first = e.handle_request(0, request(1, "tok-a"));
    assert!(
        kinds(&first).contains(&"cache_miss".to_owned()),
        "{first:?}"
    );
    assert_eq!(first.fetches.len(), 1);

    assert!(matches!(
        e.mute_audits(vec!["cache_miss".into(), "no_such_kind".into()]),
        Err(PhantomEdgeError::Api { .. })
    ));
    // The refused call changed nothing.
    let second = e.handle_request(0, request(2, "tok-b"));
    assert!(kinds(&second).contains(&"cache_miss".to_owned()));

    e.mute_audits(vec!["cache_miss".into()])
        .expect("known kind");
    let third = e.handle_request(0, request(3, "tok-c"));
    assert!(
        !kinds(&third).contains(&"cache_miss".to_owned()),
        "{third:?}"
    );
    assert_eq!(
        third.fetches.len(),
        1,
        "decisions and fetches are unchanged"
    );

    e.mute_audits(Vec::new()).expect("empty list");
    e.set_audit_level(AuditLevel::Warn);
    let fourth = e.handle_request(0, request(4, "tok-d"));
    assert!(
        fourth.audits.iter().all(|a| a.level == AuditLevel::Warn),
        "{fourth:?}"
    );
    e.set_audit_level(AuditLevel::Debug);
    let fifth = e.handle_request(0, request(5, "tok-e"));
    assert!(kinds(&fifth).contains(&"cache_miss".to_owned()));
}

#[test]
fn forward_policy_and_hop_by_hop_headers() {
    let e = edge("");
    let policy = e.forward_policy();
    assert_eq!(policy.header_name, "authorization");
    for h in ["authorization", "dpop"] {
        assert!(policy.strip_headers.iter().any(|s| s == h), "{policy:?}");
    }
    let h = |n: &str, v: &str| Header {
        name: n.into(),
        value: v.into(),
    };
    let answer = vec![
        h("Content-Type", "text/plain"),
        h("Connection", "close, X-Private"),
        h("x-private", "1"),
        h("Transfer-Encoding", "chunked"),
        h("etag", "\"1\""),
    ];
    assert_eq!(hop_by_hop_headers(answer), vec![1, 2, 3]);
    // In process: the inbound credentials and the JWT header's spellings go, the deployment's
    // forwarding headers stay; the JWT header is set last.
    let plan = e.upstream_headers(
        vec![
            h("Authorization", "Bearer opaque"),
            h("X-Forwarded-For", "10.0.0.1"),
            h("accept", "*/*"),
        ],
        "Bearer jwt".into(),
        Hop::InProcess,
    );
    assert_eq!(plan.drop, vec![0]);
    assert_eq!(plan.set, vec![h("authorization", "Bearer jwt")]);
}

#[test]
fn split_jwt_seals_the_store_value() {
    let jwt = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDMwMH0.c2lnbmF0dXJl";
    let s = phantom_edge_uniffi::split_jwt(jwt.into(), "phantom-edge:split:".into()).unwrap();
    assert_eq!(s.client_token, "c2lnbmF0dXJl");
    assert!(
        s.store_key.starts_with("phantom-edge:split:") && !s.store_key.contains("c2lnbmF0dXJl")
    );
    assert!(s.store_value.starts_with("pe1:") && !s.store_value.contains("eyJ"));
    assert_eq!(s.expires_at, Some(1_700_000_300));
    assert!(phantom_edge_uniffi::split_jwt("not.a".into(), String::new()).is_err());
}
