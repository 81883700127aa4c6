//! Per-call cost of a cache-hit decision: the native core (`phantom_edge_core::Edge`,
//! `handle_request` + `step`) against the same core inside the component (`Core::request`:
//! `handle-request`, one wasmtime crossing returning the step), in one process, with the same
//! config, the same introspection answer and the same request. Plus a trivial crossing
//! (`fingerprint`) to show the fixed cost of entering the component, and the two per-forward
//! header crossings phantom-gateway makes (`upstream-headers`, `hop-by-hop-headers`).
//!
//! `cargo bench -p phantom-gateway --bench component` (release; needs the component built first:
//! `cargo build --release -p phantom-edge-component --target wasm32-wasip2`, or set
//! `PHANTOM_EDGE_WASM`). Results and conditions: BENCHMARKS.md, "Gateway and component".
//!
//! Setup: dialect `rfc7662` with `[assertions]` (the edge mints an Ed25519 JWT for the upstream
//! at the miss and reuses it on every hit: the clock is fixed, so no hit re-mints). The cache is
//! filled with `BENCH_TOKENS` (default 10000) tokens by real request → fetch → answer round
//! trips on both sides.

#![allow(missing_docs, missing_debug_implementations)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use phantom_edge_core as native;
use phantom_gateway::engine::{
    self, ConfigFormat, Core, Decision, FetchResult, Header, Hop, HttpResponse, Loaded, ProxyHop,
};

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
# The fill introspects every token at one instant.
max_introspections_per_second = {entries}

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
    let _ = edge.step();
    let resp_headers = [("content-type", "application/json")];
    for (i, t) in tokens.iter().enumerate() {
        let headers = [("host", HOST), ("authorization", t.as_str())];
        edge.handle_request(T0, &native_request(i as u64, &headers));
        let step = edge.step();
        let Some(ticket) = step.fetches.first().map(|f| f.ticket) else {
            panic!("fill: no fetch: {step:?}");
        };
        let resp = native::HttpResponse {
            status: 200,
            headers: &resp_headers,
            body: body.as_bytes(),
        };
        edge.handle_fetch(T0, ticket, Ok(&resp)).unwrap();
        assert!(
            edge.step()
                .decisions
                .iter()
                .any(|d| matches!(d, native::Decision::Forward(_))),
            "fill: no Forward"
        );
    }
    assert_eq!(edge.stats().cache_entries, tokens.len());
    edge
}

/// One native hit: `handle_request`, then its `step` (`Forward`, `Audit(CacheHit)`).
#[inline(always)]
fn native_hit(edge: &mut native::Edge, now: u64, id: u64, auth: &str) {
    let headers = [("host", HOST), ("authorization", auth)];
    edge.handle_request(now, &native_request(id, &headers));
    let step = edge.step();
    assert!(
        matches!(step.decisions.as_slice(), [native::Decision::Forward(_)]),
        "native: no Forward on a cache hit"
    );
    black_box(step);
}

/// A native hit plus the conversions the component's guest does to every step before it
/// crosses back by default (component/src/guest.rs `Edge::step`): the Forward's value and
/// fingerprint copied and its `token_json` serialised, the audit event's JSON built. Attributes
/// the component's extra cost to the crossing or to this work.
#[inline(always)]
fn native_hit_converted(edge: &mut native::Edge, now: u64, id: u64, auth: &str) {
    let headers = [("host", HOST), ("authorization", auth)];
    edge.handle_request(now, &native_request(id, &headers));
    let step = edge.step();
    let mut forwarded = false;
    for d in step.decisions {
        match d {
            native::Decision::Forward(f) => {
                forwarded = true;
                black_box((
                    f.header_value.to_string(),
                    f.fingerprint.hex(),
                    serde_json::to_string(&*f.token).unwrap_or_default(),
                ));
            }
            other => {
                black_box(other);
            }
        }
    }
    for e in step.audits {
        black_box((
            e.kind.as_str().to_owned(),
            e.fingerprint.map(|f| f.hex()),
            e.to_json(),
        ));
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
    let _ = core.initial_step().unwrap();
    let resp = FetchResult::Response(HttpResponse {
        status: 200,
        headers: vec![Header {
            name: "content-type".into(),
            value: "application/json".into(),
        }],
        body: body.as_bytes().to_vec(),
    });
    for (i, t) in tokens.iter().enumerate() {
        let step = core.request(T0, &wit_request(i as u64, t)).unwrap();
        let Some(ticket) = step.fetches.first().map(|f| f.ticket) else {
            panic!("fill: no fetch: {step:?}");
        };
        let step = core.fetch(T0, ticket, &resp).unwrap().unwrap();
        assert!(
            step.decisions
                .iter()
                .any(|d| matches!(d, Decision::Forward(_))),
            "fill: no Forward"
        );
    }
    core
}

/// One hit through the component: `handle-request`, its whole step back in the host.
#[inline(always)]
fn component_hit(core: &mut Core, now: u64, req: &engine::Request) {
    let step = core.request(now, req).unwrap();
    assert!(
        matches!(step.decisions.as_slice(), [Decision::Forward(_)]),
        "component: no Forward on a cache hit"
    );
    black_box(step);
}

/// The inbound headers of a typical proxied request, as phantom-gateway passes them.
fn typical_inbound(auth: &str) -> Vec<(String, String)> {
    [
        ("host", HOST),
        ("user-agent", "bench/1.0"),
        ("accept", "application/json"),
        ("authorization", auth),
        ("x-forwarded-for", "10.0.0.1"),
        ("connection", "keep-alive"),
    ]
    .iter()
    .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
    .collect()
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
        edge.step()
            .decisions
            .into_iter()
            .find_map(|d| match d {
                native::Decision::Forward(f) => Some(f.header_value.len()),
                native::Decision::Reject(_) => None,
            })
            .unwrap()
    };
    let component_fwd = core
        .request(now, &wit_request(0, hot))
        .unwrap()
        .decisions
        .into_iter()
        .find_map(|d| match d {
            Decision::Forward(f) => Some(f.header_value.len()),
            Decision::Reject(_) => None,
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
            let step = core.request(now, &wit_request(0, hot)).unwrap();
            match (step.decisions.as_slice(), step.audits.as_slice()) {
                ([Decision::Forward(f)], []) => assert!(f.token_json.is_none()),
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
    // component/src/guest.rs `Edge::step` makes per hit).
    let (fwd, audit) = {
        let headers = [("host", HOST), ("authorization", hot)];
        edge.handle_request(now, &native_request(0, &headers));
        let mut step = edge.step();
        let fwd = match step.decisions.pop() {
            Some(native::Decision::Forward(f)) => f,
            other => panic!("expected a Forward, got {other:?}"),
        };
        (fwd, step.audits.pop().unwrap())
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
    let tok = hot.strip_prefix("Bearer ").unwrap();
    g.bench_function("native/fingerprint", |b| {
        b.iter(|| black_box(edge.fingerprint(black_box(tok)).hex()));
    });
    g.bench_function("component/fingerprint", |b| {
        b.iter(|| black_box(core.fingerprint(black_box(tok)).unwrap()));
    });
    g.finish();

    // The two header crossings phantom-gateway makes per forwarded request, against the same
    // policy called natively.
    let inbound = typical_inbound(hot);
    let jwt = "Bearer eyJ.minted.jwt";
    let mut g = c.benchmark_group("forwarding");
    g.bench_function("native/upstream_headers", |b| {
        let pairs: Vec<(&str, &str)> = inbound
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let hop = native::Hop::Proxy {
            peer: Some("127.0.0.1"),
            proto: "http",
            upstream_authority: Some("127.0.0.1:9000"),
        };
        b.iter(|| black_box(edge.upstream_headers(black_box(&pairs), jwt, &hop)));
    });
    g.bench_function("component/upstream_headers", |b| {
        let list: Vec<Header> = inbound
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        let hop = Hop::Proxy(ProxyHop {
            peer: Some("127.0.0.1".into()),
            proto: "http".into(),
            upstream_authority: Some("127.0.0.1:9000".into()),
        });
        b.iter(|| black_box(core.upstream_headers(black_box(&list), jwt, &hop).unwrap()));
    });
    let answer: Vec<Header> = [
        ("content-type", "application/json"),
        ("content-length", "2"),
        ("connection", "keep-alive"),
        ("date", "Thu, 01 Jan 2026 00:00:00 GMT"),
    ]
    .iter()
    .map(|(n, v)| Header {
        name: (*n).into(),
        value: (*v).into(),
    })
    .collect();
    g.bench_function("component/hop_by_hop_headers", |b| {
        b.iter(|| black_box(core.hop_by_hop_headers(black_box(&answer)).unwrap()));
    });
    g.finish();
}

criterion_group!(benches, hits);
criterion_main!(benches);
