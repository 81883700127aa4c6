//! Replays the shared cross-language test vectors in `tests/vectors/cases/` (format: see
//! `tests/vectors/README.md`) against the core through its public API.
//!
//! The `driver` module (inputs → API calls, actions → canonical JSON) is also used by the
//! generator, `core/examples/gen_vectors.rs`, so a vector records exactly what was run.
#![allow(dead_code)]

use serde_json::Value;

pub(crate) mod driver {
    use phantom_edge_core::{
        Action, AdminRequest, AdminRoute, Config, Edge, Hop, HttpResponse, Listener, LookupResult,
        Origin, RawConfig, Request, Revocation, RevocationError,
    };
    use serde_json::{Map, Value, json};

    /// Builds the [`Config`] from a vector's `config` member, the way bindings do.
    pub(crate) fn config_from(v: &Value) -> Result<Config, String> {
        RawConfig::from_value(v.clone())
            .and_then(|raw| raw.resolve(&|_| None))
            .map_err(|e| e.to_string())
    }

    /// Parses the 64-hex-digit seed.
    pub(crate) fn seed_from(hex: &str) -> Result<[u8; 32], String> {
        if hex.len() != 64 {
            return Err(format!("seed must be 64 hex digits, got {}", hex.len()));
        }
        let mut out = [0u8; 32];
        for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(chunk).map_err(|e| e.to_string())?;
            out[i] = u8::from_str_radix(s, 16).map_err(|e| format!("seed: {e}"))?;
        }
        Ok(out)
    }

    fn s<'a>(v: &'a Value, k: &str) -> Result<&'a str, String> {
        v.get(k)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("input member {k:?} must be a string"))
    }
    fn opt_s<'a>(v: &'a Value, k: &str) -> Result<Option<&'a str>, String> {
        match v.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(x)) => Ok(Some(x)),
            Some(_) => Err(format!("input member {k:?} must be a string or null")),
        }
    }
    fn u(v: &Value, k: &str) -> Result<u64, String> {
        v.get(k)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("input member {k:?} must be a non-negative integer"))
    }
    fn pairs(v: &Value, k: &str) -> Result<Vec<(String, String)>, String> {
        let arr = v
            .get(k)
            .and_then(Value::as_array)
            .ok_or_else(|| format!("input member {k:?} must be an array of [name, value]"))?;
        arr.iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([Value::String(n), Value::String(v)]) => Ok((n.clone(), v.clone())),
                _ => Err(format!("{k}: each entry must be [name, value]")),
            })
            .collect()
    }

    fn revocation_result(r: Result<(), RevocationError>) -> Value {
        match r {
            Ok(()) => json!({ "ok": true }),
            Err(e) => json!({ "error": { "status": e.status() } }),
        }
    }

    fn ticket_result(r: Result<(), phantom_edge_core::EdgeError>) -> Option<Value> {
        match r {
            Ok(()) => None,
            Err(phantom_edge_core::EdgeError::UnknownTicket(_)) => {
                Some(json!({ "error": "unknown_ticket" }))
            }
            Err(_) => Some(json!({ "error": "wrong_ticket_kind" })),
        }
    }

    /// Feeds one input to the edge at `now`, then drains the actions. Returns the actions and
    /// the step's `result` (for inputs that have one).
    pub(crate) fn apply(
        edge: &mut Edge,
        now: u64,
        input: &Value,
    ) -> Result<(Vec<Action>, Option<Value>), String> {
        let result = match s(input, "type")? {
            "request" => {
                let headers = pairs(input, "headers")?;
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let req = Request {
                    id: u(input, "id")?,
                    method: s(input, "method")?,
                    scheme: s(input, "scheme")?,
                    authority: s(input, "authority")?,
                    path: s(input, "path")?,
                    headers: &h,
                    client_cert_thumbprint: opt_s(input, "client_cert_thumbprint")?,
                };
                edge.handle_request(now, &req);
                None
            }
            "fetch_response" => {
                let headers = pairs(input, "headers")?;
                let h: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let status = u16::try_from(u(input, "status")?).map_err(|e| e.to_string())?;
                let resp = HttpResponse {
                    status,
                    headers: &h,
                    body: s(input, "body")?.as_bytes(),
                };
                ticket_result(edge.handle_fetch(now, u(input, "ticket")?, Ok(&resp)))
            }
            "fetch_failure" => {
                ticket_result(edge.handle_fetch(now, u(input, "ticket")?, Err(s(input, "detail")?)))
            }
            "shared_lookup" => {
                let r = match input.get("result") {
                    Some(Value::String(x)) if x == "not_found" => LookupResult::NotFound,
                    Some(Value::String(x)) if x == "error" => LookupResult::Error,
                    Some(Value::Object(o)) => match o.get("found") {
                        Some(Value::String(v)) => LookupResult::Found(v),
                        _ => return Err("shared_lookup result: {\"found\": string}".into()),
                    },
                    _ => return Err("shared_lookup result must be found/not_found/error".into()),
                };
                ticket_result(edge.handle_shared_lookup(now, u(input, "ticket")?, r))
            }
            "revocation" => {
                let selector = input
                    .get("selector")
                    .ok_or("revocation needs a selector object")?;
                let origin = match s(input, "origin")? {
                    "local" => Origin::Local,
                    "shared" => Origin::Shared,
                    o => return Err(format!("unknown origin {o:?}")),
                };
                let body = serde_json::to_vec(selector).map_err(|e| e.to_string())?;
                let r = Revocation::from_json(&body)
                    .and_then(|rev| edge.handle_revocation(now, rev, origin));
                Some(revocation_result(r))
            }
            "admin" => {
                let route = AdminRoute::from_name(s(input, "route")?)
                    .ok_or("admin route: revocations, metrics or jwks")?;
                let listener = match s(input, "listener")? {
                    "operator" => Listener::Operator,
                    "app" => Listener::App,
                    l => return Err(format!("unknown listener {l:?}")),
                };
                let answer = edge.handle_admin(
                    now,
                    &AdminRequest {
                        route,
                        listener,
                        method: s(input, "method")?,
                        authorization: opt_s(input, "authorization")?,
                        content_type: opt_s(input, "content_type")?,
                        body: s(input, "body")?.as_bytes(),
                    },
                );
                Some(json!({
                    "status": answer.status,
                    "headers": answer.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                    "body": answer.body,
                }))
            }
            "upstream_headers" => {
                let inbound = pairs(input, "inbound")?;
                let h: Vec<(&str, &str)> = inbound
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let hop_v = input.get("hop").ok_or("upstream_headers needs a hop")?;
                let hop = if hop_v == "in_process" {
                    Hop::InProcess
                } else {
                    let p = hop_v
                        .get("proxy")
                        .ok_or("hop: \"in_process\" or {\"proxy\": {...}}")?;
                    Hop::Proxy {
                        peer: opt_s(p, "peer")?,
                        proto: s(p, "proto")?,
                        upstream_authority: opt_s(p, "upstream_authority")?,
                    }
                };
                let plan = edge.upstream_headers(&h, s(input, "header_value")?, &hop);
                Some(json!({
                    "drop": plan.drop,
                    "set": plan.set.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                }))
            }
            "security_event" => Some(revocation_result(
                edge.handle_security_event(now, s(input, "set")?),
            )),
            "timeout" => {
                edge.handle_timeout(now);
                None
            }
            other => return Err(format!("unknown input type {other:?}")),
        };
        Ok((edge.drain_actions(), result))
    }

    fn str_list(v: &[String]) -> Value {
        Value::Array(v.iter().map(|x| Value::String(x.clone())).collect())
    }

    /// The canonical JSON of one action (see tests/vectors/README.md).
    pub(crate) fn canon(a: &Action) -> Value {
        match a {
            Action::Forward(f) => json!({
                "type": "forward",
                "request_id": f.request_id,
                "header_name": &*f.header_name,
                "header_value": &*f.header_value,
                "strip_headers": str_list(&f.strip_headers),
                "fingerprint": f.fingerprint.to_string(),
                "token": serde_json::to_value(&*f.token).expect("TokenInfo serializes"),
            }),
            Action::Reject(r) => json!({
                "type": "reject",
                "request_id": r.request_id,
                "status": r.status,
                "www_authenticate": r.www_authenticate,
                "retry_after": r.retry_after,
                "body": r.body,
                "reason": r.reason.as_str(),
                "fingerprint": r.fingerprint.map(|f| f.to_string()),
            }),
            Action::Fetch(f) => json!({
                "type": "fetch",
                "ticket": f.ticket,
                "kind": f.kind.as_str(),
                "method": f.method,
                "url": f.url,
                "headers": f.headers.iter().map(|(n, v)| json!([n, v])).collect::<Vec<_>>(),
                "body": f.body,
                "timeout_ms": f.timeout_ms,
                "max_response_bytes": f.max_response_bytes,
                "fingerprint": f.fingerprint.map(|fp| fp.to_string()),
            }),
            Action::SharedLookup(l) => {
                json!({ "type": "shared_lookup", "ticket": l.ticket, "key": l.key })
            }
            Action::SharedPublish(p) => json!({ "type": "shared_publish", "message": p.message }),
            Action::Audit(ev) => {
                let mut m = Map::new();
                m.insert("type".into(), "audit".into());
                match serde_json::to_value(ev).expect("AuditEvent serializes") {
                    Value::Object(o) => m.extend(o),
                    other => panic!("AuditEvent serialized to a non-object: {other}"),
                }
                Value::Object(m)
            }
            other => panic!("action without a canonical form: {other:?}"),
        }
    }

    pub(crate) fn canon_all(actions: &[Action]) -> Value {
        Value::Array(actions.iter().map(canon).collect())
    }

    pub(crate) fn timeout_json(edge: &Edge) -> Value {
        edge.poll_timeout().map_or(Value::Null, Value::from)
    }
}

fn cases_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/cases")
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

/// Where two JSON values first differ, as a JSON-pointer-ish path.
fn first_difference(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()) {
                let p = format!("{path}/{k}");
                match (x.get(k), y.get(k)) {
                    (Some(i), Some(j)) => {
                        if let Some(d) = first_difference(&p, i, j) {
                            return Some(d);
                        }
                    }
                    (i, j) => return Some(format!("{p}: expected {i:?}, got {j:?}")),
                }
            }
            None
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (l, r)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(&format!("{path}/{i}"), l, r) {
                    return Some(d);
                }
            }
            (x.len() != y.len())
                .then(|| format!("{path}: expected {} elements, got {}", x.len(), y.len()))
        }
        _ => (a != b).then(|| format!("{path}: expected {a}, got {b}")),
    }
}

fn check(case: &str, what: &str, expected: &Value, actual: &Value) -> Result<(), String> {
    match first_difference("", expected, actual) {
        None => Ok(()),
        Some(d) => Err(format!(
            "case {case}, {what}: mismatch at {d}\n--- expected\n{}\n--- actual\n{}",
            pretty(expected),
            pretty(actual)
        )),
    }
}

/// Replays one vector; `Err` describes the first mismatch.
fn replay(case: &Value) -> Result<(), String> {
    let name = case["name"].as_str().ok_or("case has no name")?;
    let config = driver::config_from(&case["config"]).map_err(|e| format!("case {name}: {e}"))?;
    let seed = driver::seed_from(case["seed"].as_str().ok_or("no seed")?)
        .map_err(|e| format!("case {name}: {e}"))?;
    let start = case["start"].as_u64().ok_or("no start")?;
    let mut edge = phantom_edge_core::Edge::new(config, seed, start);
    let initial = driver::canon_all(&edge.drain_actions());
    let expected_initial = case.get("initial").cloned().unwrap_or(Value::Array(vec![]));
    check(name, "initial actions", &expected_initial, &initial)?;
    let steps = case["steps"].as_array().ok_or("no steps")?;
    for (i, step) in steps.iter().enumerate() {
        let now = step["now"].as_u64().ok_or("step has no now")?;
        let input = &step["input"];
        let what = format!(
            "step {i} ({} at {now})",
            input["type"].as_str().unwrap_or("?")
        );
        let (actions, result) = driver::apply(&mut edge, now, input)
            .map_err(|e| format!("case {name}, {what}: bad input: {e}"))?;
        check(
            name,
            &format!("{what}: actions"),
            &step["expect"],
            &driver::canon_all(&actions),
        )?;
        let expected_result = step.get("result").cloned().unwrap_or(Value::Null);
        check(
            name,
            &format!("{what}: result"),
            &expected_result,
            &result.unwrap_or(Value::Null),
        )?;
        if let Some(t) = step.get("timeout") {
            check(
                name,
                &format!("{what}: poll_timeout"),
                t,
                &driver::timeout_json(&edge),
            )?;
        }
    }
    Ok(())
}

fn load_cases() -> Vec<(String, Value)> {
    let dir = cases_dir();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}

#[test]
fn vectors_replay() {
    let cases = load_cases();
    assert!(
        cases.len() >= 40,
        "expected at least 40 vector cases in {}, found {}",
        cases_dir().display(),
        cases.len()
    );
    let mut failures = Vec::new();
    for (file, case) in &cases {
        if let Err(e) = replay(case) {
            failures.push(format!("[{file}] {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} vector cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

#[test]
fn vector_files_are_well_formed() {
    for (file, case) in load_cases() {
        let name = case["name"]
            .as_str()
            .unwrap_or_else(|| panic!("{file}: no name"));
        assert!(
            file.ends_with(&format!("-{name}.json")),
            "{file}: file name does not end with the case name {name:?}"
        );
        assert!(case["description"].is_string(), "{file}: no description");
        assert!(
            case["steps"].as_array().is_some_and(|s| !s.is_empty()),
            "{file}: no steps"
        );
        for (i, step) in case["steps"].as_array().unwrap().iter().enumerate() {
            assert!(
                step["expect"].is_array(),
                "{file}: step {i} has no expect array"
            );
        }
    }
}
