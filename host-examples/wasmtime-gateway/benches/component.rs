//! Per-call cost of a cache-hit decision: the native core (`phantom_edge_core::Edge`) against the
//! same core inside the component (`Core::decide`, one wasmtime crossing), in one process, with
//! the same config, the same introspection answer and the same request. Plus two trivial
//! crossings (`poll-timeout`, `fingerprint`) to show the fixed cost of entering the component.
//!
//! `cargo bench -p phantom-gateway --bench component` (release; needs the component built first:
//! `cargo build --release -p phantom-edge-component --target wasm32-wasip2`, or set
//! `PHANTOM_EDGE_WASM`). Results and conditions: BENCHMARKS.md, "Gateway and component".
//!
//! Setup: dialect `rfc7662` with `[assertions]` (the edge mints an Ed25519 JWT for the upstream
//! at the miss and reuses it on every hit: the clock is fixed, so no hit re-mints). The cache is
//! filled with `BENCH_TOKENS` (default 10000) tokens by real request → introspect → answer
//! round trips on both sides.

#![allow(missing_docs, missing_debug_implementations)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use phantom_edge_core as native;
use phantom_gateway::engine::{self, Action, ConfigFormat, Core, Header, HttpResponse, Loaded};

const T0: u64 = 1_700_000_000_000;
const ISSUER: &str = "http://as.bench";
const EDGE_KEY: &str = include_str!("../../../tests/vectors/keys/edge-ed25519.pem");
const SEED: [u8; 32] = [7; 32];

fn tokens_n() -> usize {
    std::env::var("BENCH_TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

fn config_toml(entries: usize) -> String {
    format!(
        r#"[authorization_server]
issuer = "{ISSUER}"
introspection_endpoint = "{ISSUER}/introspect"
client_id = "gateway"
client_secret = "gateway-secret"
dialect = "rfc7662"

[cache]
max_ttl = "3600s"
negative_ttl = "10s"
max_entries = {entries}
max_bytes = 1073741824

[assertions]
signing_key = """{EDGE_KEY}"""
kid = "edge-1"
max_ttl = "7200s"

[[routes]]
path_prefix = "/orders"
required_scopes = ["orders:read"]
audience = "orders-api"
"#
    )
}

/// The RFC 7662 answer for every token (the edge cannot tell which token it belongs to).
fn as_answer(now_ms: u64) -> String {
    let now_s = now_ms / 1000;
    serde_json::json!({
        "active": true, "scope": "orders:read orders:write", "client_id": "app", "sub": "alice",
        "aud": "orders-api", "iss": ISSUER, "exp": now_s + 3600, "iat": now_s,
        "token_type": "Bearer"
    })
    .to_string()
}

fn bearer(i: usize) -> String {
    format!("Bearer hit_{i:010}_phantom-opaque-reference-tokn")
}

const HOST: &str = "127.0.0.1:8080";
const PATH: &str = "/orders/1";

// ----------------------------------------------------------------------------------------------
// Native
// ----------------------------------------------------------------------------------------------

fn native_request<'a>(id: u64, headers: &'a [(&'a str, &'a str)]) -> native::Request<'a> {
    native::Request {
        id,
        method: "GET",
        scheme: "http",
        authority: HOST,
        path: PATH,
        headers,
        client_cert_thumbprint: None,
    }
}

fn native_filled(tokens: &[String], body: &str) -> native::Edge {
    let cfg = native::Config::from_toml(&config_toml(tokens.len()), &|_| None).unwrap();
    let mut edge = native::Edge::new(cfg, SEED, T0);
    let _ = edge.drain_actions();
    let resp_headers = [("content-type", "application/json")];
    for (i, t) in tokens.iter().enumerate() {
        let headers = [("host", HOST), ("authorization", t.as_str())];
        edge.handle_request(T0, &native_request(i as u64, &headers));
        let ticket = edge
            .drain_actions()
            .into_iter()
            .find_map(|a| match a {
                native::Action::Introspect(r) => Some(r.ticket),
                _ => None,
            })
            .expect("fill: no introspection");
        let resp = native::HttpResponse {
            status: 200,
            headers: &resp_headers,
            body: body.as_bytes(),
        };
        edge.handle_introspection_response(T0, ticket, &resp)
            .unwrap();
        assert!(
            edge.drain_actions()
                .iter()
                .any(|a| matches!(a, native::Action::Forward(_))),
            "fill: no Forward"
        );
    }
    assert_eq!(edge.stats().cache_entries, tokens.len());
    edge
}

/// One native hit: `handle_request`, then every action drained (`Audit(CacheHit)`, `Forward`).
#[inline(always)]
fn native_hit(edge: &mut native::Edge, now: u64, id: u64, auth: &str) {
    let headers = [("host", HOST), ("authorization", auth)];
    edge.handle_request(now, &native_request(id, &headers));
    let mut forwarded = false;
    while let Some(a) = edge.poll_action() {
        forwarded |= matches!(a, native::Action::Forward(_));
        black_box(a);
    }
    assert!(forwarded, "native: no Forward on a cache hit");
}

/// A native hit plus the conversions the component's guest does to every action before it
/// crosses back by default (component/src/guest.rs `action()`): the Forward's value and
/// fingerprint copied and its `token_json` serialised, the audit event's JSON built. Attributes the component's extra
/// cost to the crossing or to this work.
#[inline(always)]
fn native_hit_converted(edge: &mut native::Edge, now: u64, id: u64, auth: &str) {
    let headers = [("host", HOST), ("authorization", auth)];
    edge.handle_request(now, &native_request(id, &headers));
    let mut forwarded = false;
    while let Some(a) = edge.poll_action() {
        match a {
            native::Action::Forward(f) => {
                forwarded = true;
                black_box((
                    f.header_value.to_string(),
                    f.fingerprint.hex(),
                    serde_json::to_string(&*f.token).unwrap_or_default(),
                ));
            }
            native::Action::Audit(e) => {
                black_box((
                    e.kind.as_str().to_owned(),
                    e.fingerprint.map(|f| f.hex()),
                    e.to_json(),
                ));
            }
            other => {
                black_box(other);
            }
        }
    }
    assert!(forwarded, "native: no Forward on a cache hit");
}

// ----------------------------------------------------------------------------------------------
// Component
// ----------------------------------------------------------------------------------------------

fn wasm_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PHANTOM_EDGE_WASM") {
        return p.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join("wasm32-wasip2/release/phantom_edge_component.wasm")
}

fn wit_request(id: u64, auth: &str) -> engine::Request {
    engine::Request {
        id,
        method: engine::Method::Get,
        scheme: engine::Scheme::Http,
        authority: HOST.into(),
        path: PATH.into(),
        authorization: vec![auth.into()],
        dpop: vec![],
        client_cert_thumbprint: None,
    }
}

fn component_filled(tokens: &[String], body: &str) -> Core {
    let path = wasm_path();
    let loaded = Loaded::from_file(&path).unwrap_or_else(|e| {
        panic!(
            "{e:#}\nbuild it: cargo build --release -p phantom-edge-component --target wasm32-wasip2"
        )
    });
    let cfg = config_toml(tokens.len());
    let mut core = Core::new(&loaded, &cfg, ConfigFormat::Toml, &[], SEED, T0).unwrap();
    let _ = core.drain().unwrap();
    let resp = HttpResponse {
        status: 200,
        headers: vec![Header {
            name: "content-type".into(),
            value: "application/json".into(),
        }],
        body: body.as_bytes().to_vec(),
    };
    for (i, t) in tokens.iter().enumerate() {
        let ticket = core
            .decide(T0, &wit_request(i as u64, t))
            .unwrap()
            .into_iter()
            .find_map(|a| match a {
                Action::Introspect(r) => Some(r.ticket),
                _ => None,
            })
            .expect("fill: no introspection");
        core.introspection_response(T0, ticket, &resp)
            .unwrap()
            .unwrap();
        assert!(
            core.drain()
                .unwrap()
                .iter()
                .any(|a| matches!(a, Action::Forward(_))),
            "fill: no Forward"
        );
    }
    core
}

/// One hit through the component: `decide`, every action back in the host.
#[inline(always)]
fn component_hit(core: &mut Core, now: u64, req: &engine::Request) {
    let actions = core.decide(now, req).unwrap();
    assert!(
        actions.iter().any(|a| matches!(a, Action::Forward(_))),
        "component: no Forward on a cache hit"
    );
    black_box(actions);
}

// ----------------------------------------------------------------------------------------------

fn permutation(n: usize, seed: u64) -> Vec<u32> {
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

fn hits(c: &mut Criterion) {
    let n = tokens_n();
    let tokens: Vec<String> = (0..n).map(bearer).collect();
    let body = as_answer(T0);
    let t = std::time::Instant::now();
    let mut edge = native_filled(&tokens, &body);
    eprintln!("native: filled {n} tokens in {:.1?}", t.elapsed());
    let t = std::time::Instant::now();
    let mut core = component_filled(&tokens, &body);
    eprintln!("component: filled {n} tokens in {:.1?}", t.elapsed());
    let now = T0 + 1_000;
    let hot = tokens[n / 2].as_str();
    let order = permutation(n, 0x5eed);

    // Same answer on both sides: the forwarded header (minted JWT) has the same length.
    let native_fwd = {
        let headers = [("host", HOST), ("authorization", hot)];
        edge.handle_request(now, &native_request(0, &headers));
        edge.drain_actions()
            .into_iter()
            .find_map(|a| match a {
                native::Action::Forward(f) => Some(f.header_value.len()),
                _ => None,
            })
            .unwrap()
    };
    let component_fwd = core
        .decide(now, &wit_request(0, hot))
        .unwrap()
        .into_iter()
        .find_map(|a| match a {
            Action::Forward(f) => Some(f.header_value.len()),
            _ => None,
        })
        .unwrap();
    assert_eq!(native_fwd, component_fwd);
    eprintln!("forwarded header value: {native_fwd} bytes on both sides");

    let mut g = c.benchmark_group("hit");
    g.bench_function("native/hot_token", |b| {
        let mut id = 0u64;
        b.iter(|| {
            id += 1;
            native_hit(&mut edge, now, id, hot);
        });
    });
    g.bench_function("native/hot_token_plus_guest_conversions", |b| {
        let mut id = 0u64;
        b.iter(|| {
            id += 1;
            native_hit_converted(&mut edge, now, id, hot);
        });
    });
    g.bench_function(format!("native/random_token/{n}"), |b| {
        let mut i = 0usize;
        b.iter(|| {
            let auth = tokens[order[i] as usize].as_str();
            i = (i + 1) % n;
            native_hit(&mut edge, now, i as u64, auth);
        });
    });
    let reqs: Vec<engine::Request> = order
        .iter()
        .map(|&k| wit_request(0, &tokens[k as usize]))
        .collect();
    // The same three component runs with the defaults (claims JSON and every audit returned),
    // then as phantom-gateway sets the component up (gateway.rs `Gateway::new`): no
    // token-json, the routine audits muted.
    for (suffix, token_json, level) in [
        ("", true, engine::AuditLevel::Debug),
        ("_gateway_output", false, engine::AuditLevel::Info),
    ] {
        core.output(token_json, level).unwrap();
        if !token_json {
            match core.decide(now, &wit_request(0, hot)).unwrap().as_slice() {
                [Action::Forward(f)] => assert!(f.token_json.is_none()),
                other => panic!("gateway output: expected one Forward, got {other:?}"),
            }
        }
        g.bench_function(format!("component/hot_token{suffix}"), |b| {
            let mut req = wit_request(0, hot);
            b.iter(|| {
                req.id += 1;
                component_hit(&mut core, now, &req);
            });
        });
        // What the gateway does per request on top: build the owned WIT request (Strings).
        g.bench_function(
            format!("component/hot_token{suffix}_incl_wit_request"),
            |b| {
                let mut id = 0u64;
                b.iter(|| {
                    id += 1;
                    let req = wit_request(id, black_box(hot));
                    component_hit(&mut core, now, &req);
                });
            },
        );
        g.bench_function(format!("component/random_token{suffix}/{n}"), |b| {
            let mut i = 0usize;
            b.iter(|| {
                let req = &reqs[i];
                i = (i + 1) % n;
                component_hit(&mut core, now, req);
            });
        });
    }
    core.output(true, engine::AuditLevel::Debug).unwrap();
    g.finish();

    // Where the guest's per-hit conversion time goes (native code, the same calls as
    // component/src/guest.rs `action()` makes per hit).
    let (fwd, audit) = {
        let headers = [("host", HOST), ("authorization", hot)];
        edge.handle_request(now, &native_request(0, &headers));
        let mut fwd = None;
        let mut audit = None;
        for a in edge.drain_actions() {
            match a {
                native::Action::Forward(f) => fwd = Some(f),
                native::Action::Audit(e) => audit = Some(e),
                _ => {}
            }
        }
        (fwd.unwrap(), audit.unwrap())
    };
    let mut g = c.benchmark_group("guest_conversion");
    g.bench_function("forward_token_json", |b| {
        b.iter(|| black_box(serde_json::to_string(&*black_box(&fwd).token).unwrap()));
    });
    g.bench_function("audit_to_json", |b| {
        b.iter(|| black_box(black_box(&audit).to_json()));
    });
    g.bench_function("fingerprint_to_string", |b| {
        b.iter(|| black_box(black_box(&fwd).fingerprint.hex()));
    });
    g.finish();

    let mut g = c.benchmark_group("crossing");
    g.bench_function("native/poll_timeout", |b| {
        b.iter(|| black_box(edge.poll_timeout()));
    });
    g.bench_function("component/poll_timeout", |b| {
        b.iter(|| black_box(core.poll_timeout().unwrap()));
    });
    let tok = hot.strip_prefix("Bearer ").unwrap();
    g.bench_function("native/fingerprint", |b| {
        b.iter(|| black_box(edge.fingerprint(black_box(tok)).hex()));
    });
    g.bench_function("component/fingerprint", |b| {
        b.iter(|| black_box(core.fingerprint(black_box(tok)).unwrap()));
    });
    g.finish();
}

criterion_group!(benches, hits);
criterion_main!(benches);
