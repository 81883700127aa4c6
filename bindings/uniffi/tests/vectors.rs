//! Replays tests/vectors/cases through the binding object (`PhantomEdge`, owned records, the
//! `Action` enum and `PhantomEdgeError`) from Rust, so `cargo test` checks the translation layer
//! even where Python is absent. bindings/swift/ci.sh replays the same cases through the
//! generated Python FFI module, and VectorTests.swift through the generated Swift.

use std::collections::HashMap;

use phantom_edge_uniffi::{
    Action, AuditLevel, Header, LookupResult, Origin, PhantomEdge, PhantomEdgeError, Request,
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

fn ticket_result(r: Result<(), PhantomEdgeError>) -> Value {
    match r {
        Ok(()) => Value::Null,
        Err(PhantomEdgeError::UnknownTicket { .. }) => json!({ "error": "unknown_ticket" }),
        Err(PhantomEdgeError::WrongTicketKind { .. }) => json!({ "error": "wrong_ticket_kind" }),
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn revocation_result(r: Result<(), PhantomEdgeError>) -> Value {
    match r {
        Ok(()) => json!({ "ok": true }),
        Err(PhantomEdgeError::Revocation { status, .. }) => {
            json!({ "error": { "status": status } })
        }
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

fn apply(edge: &PhantomEdge, now: u64, input: &Value) -> (Vec<Action>, Value) {
    let result = match s(input, "type") {
        "request" => {
            edge.handle_request(
                now,
                Request {
                    id: u(input, "id"),
                    method: s(input, "method").into(),
                    scheme: s(input, "scheme").into(),
                    authority: s(input, "authority").into(),
                    path: s(input, "path").into(),
                    headers: pairs(input, "headers"),
                    client_cert_thumbprint: opt_s(input, "client_cert_thumbprint"),
                },
            );
            Value::Null
        }
        "introspection_response" => ticket_result(edge.handle_introspection_response(
            now,
            u(input, "ticket"),
            u16::try_from(u(input, "status")).expect("status"),
            pairs(input, "headers"),
            s(input, "body").as_bytes().to_vec(),
        )),
        "introspection_failure" => ticket_result(edge.handle_introspection_failure(
            now,
            u(input, "ticket"),
            s(input, "detail").into(),
        )),
        "jwks" => {
            edge.handle_jwks_response(now, s(input, "body").as_bytes().to_vec());
            Value::Null
        }
        "jwks_failure" => {
            edge.handle_jwks_failure(now, s(input, "detail").into());
            Value::Null
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
        "admin_revocation" => {
            let r = edge.handle_admin_revocation(
                now,
                opt_s(input, "content_type"),
                opt_s(input, "authorization"),
                s(input, "body").as_bytes().to_vec(),
            );
            match r {
                Ok(()) => json!({ "status": 204 }),
                Err(PhantomEdgeError::Revocation { status, .. }) => json!({ "status": status }),
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        "security_event" => {
            revocation_result(edge.handle_security_event(now, s(input, "set").into()))
        }
        "timeout" => {
            edge.handle_timeout(now);
            Value::Null
        }
        other => panic!("unknown input type {other}"),
    };
    let mut actions = Vec::new();
    while let Some(a) = edge.poll_action() {
        actions.push(a);
    }
    (actions, result)
}

fn canon(a: &Action) -> Value {
    match a {
        Action::Forward { forward: f } => json!({
            "type": "forward", "request_id": f.request_id, "header_name": f.header_name,
            "header_value": f.header_value, "strip_headers": f.strip_headers,
            "fingerprint": f.fingerprint,
            "token": serde_json::from_str::<Value>(&f.token_json).expect("token_json"),
        }),
        Action::Reject { reject: r } => json!({
            "type": "reject", "request_id": r.request_id, "status": r.status,
            "www_authenticate": r.www_authenticate, "retry_after": r.retry_after,
            "body": r.body, "reason": r.reason,
            "fingerprint": r.fingerprint,
        }),
        Action::Introspect { introspect: i } => json!({
            "type": "introspect", "ticket": i.ticket, "method": i.method, "url": i.url,
            "headers": i.headers.iter().map(|h| json!([h.name, h.value])).collect::<Vec<_>>(),
            "body": i.body, "timeout_ms": i.timeout_ms, "fingerprint": i.fingerprint,
        }),
        Action::FetchJwks { url } => json!({ "type": "fetch_jwks", "url": url }),
        Action::SharedLookup { ticket, key } => {
            json!({ "type": "shared_lookup", "ticket": ticket, "key": key })
        }
        Action::SharedPublish { message } => {
            json!({ "type": "shared_publish", "message": message })
        }
        Action::Audit { audit: e } => {
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
        Action::Unknown { description } => panic!("no canonical form: {description}"),
    }
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
    let initial: Vec<Value> = edge.drain_actions().iter().map(canon).collect();
    let expected_initial = case.get("initial").cloned().unwrap_or_else(|| json!([]));
    if Value::Array(initial.clone()) != expected_initial {
        return Err(format!("case {name}: initial actions {initial:?}"));
    }
    for (i, step) in case["steps"].as_array().expect("steps").iter().enumerate() {
        let now = u(step, "now");
        let (actions, result) = apply(&edge, now, &step["input"]);
        let actual = Value::Array(actions.iter().map(canon).collect());
        if actual != step["expect"] {
            return Err(format!(
                "case {name}, step {i}: actions\n--- expected\n{:#}\n--- actual\n{actual:#}",
                step["expect"]
            ));
        }
        let expected_result = step.get("result").cloned().unwrap_or(Value::Null);
        if result != expected_result {
            return Err(format!(
                "case {name}, step {i}: result {result} != {expected_result}"
            ));
        }
        if let Some(t) = step.get("timeout") {
            let got = edge.poll_timeout().map_or(Value::Null, Value::from);
            if &got != t {
                return Err(format!("case {name}, step {i}: poll_timeout {got} != {t}"));
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
    assert!(
        files.len() >= 40,
        "expected at least 40 vector cases, found {}",
        files.len()
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

#[test]
fn config_errors_name_the_field_and_short_seeds_are_refused() {
    let toml = "[authorization_server]\nissuer = \"https://as.example\"\n\
        introspection_endpoint = \"https://as.example/i\"\nclient_id = \"gw\"\n\
        client_secret_env = \"PE_UNIFFI_TEST_SECRET\"\ndialect = \"keycloak\"\n\
        jwks_uri = \"https://as.example/jwks\"\n[[routes]]\npath_prefix = \"/\"\n";
    match PhantomEdge::from_toml_with_env(toml.into(), HashMap::new(), vec![0; 32], 0) {
        Err(PhantomEdgeError::Config { field, .. }) => {
            assert_eq!(field, "authorization_server.client_secret_env");
        }
        other => panic!("expected a config error, got {:?}", other.map(|_| ())),
    }
    let env = HashMap::from([("PE_UNIFFI_TEST_SECRET".to_owned(), "s3cret".to_owned())]);
    assert!(matches!(
        PhantomEdge::from_toml_with_env(toml.into(), env.clone(), vec![0; 3], 0),
        Err(PhantomEdgeError::Api { .. })
    ));
    let edge = PhantomEdge::from_toml_with_env(toml.into(), env, vec![0; 32], 0).expect("config");
    assert_eq!(
        edge.poll_action(),
        Some(Action::FetchJwks {
            url: "https://as.example/jwks".into()
        })
    );
    assert!(matches!(
        edge.handle_introspection_failure(0, 42, "x".into()),
        Err(PhantomEdgeError::UnknownTicket { ticket: 42 })
    ));
}

#[test]
fn admin_authorized_is_none_without_admin_and_true_only_for_its_bearer() {
    let toml = "[authorization_server]\nissuer = \"https://as.example\"\n\
        introspection_endpoint = \"https://as.example/i\"\nclient_id = \"gw\"\n\
        client_secret = \"s3cret\"\ndialect = \"keycloak\"\n\
        jwks_uri = \"https://as.example/jwks\"\n[[routes]]\npath_prefix = \"/\"\n";
    let secret = "admin-secret-0123456789";
    let bare = PhantomEdge::from_toml_with_env(toml.into(), HashMap::new(), vec![0; 32], 0)
        .expect("config");
    let admin = PhantomEdge::from_toml_with_env(
        format!("{toml}[admin]\ntoken = \"{secret}\"\n"),
        HashMap::new(),
        vec![0; 32],
        0,
    )
    .expect("config with [admin]");
    for (authorization, want) in [
        (Some(format!("Bearer {secret}")), true),
        (Some(format!("bearer  {secret} ")), true),
        (Some(format!("Bearer {secret}x")), false),
        (Some("Bearer wrong-0123456789".to_owned()), false),
        (Some(format!("Basic {secret}")), false),
        (None, false),
    ] {
        assert_eq!(
            admin.admin_authorized(authorization.clone()),
            Some(want),
            "{authorization:?}"
        );
        assert_eq!(
            bare.admin_authorized(authorization.clone()),
            None,
            "{authorization:?}"
        );
    }
}
