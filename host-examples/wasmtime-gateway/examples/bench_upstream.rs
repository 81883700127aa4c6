//! The benchmark upstream: HTTP/1.1 keep-alive, answers every request `200 ok`, except
//! `POST /introspect`, where it is a stub RFC 7662 authorization server: every token is active
//! (`iss` = this server's `http://ADDR`, scope `orders:read`, audience `orders-api`, one hour).
//! With phantom-gateway in front (dialect `rfc7662`), the first request with a token misses and
//! every later one is a cache hit.
//!
//! `cargo run --release -p phantom-gateway --example bench_upstream -- [ADDR]`
//! (ADDR, or `BENCH_UPSTREAM_LISTEN`, default `127.0.0.1:0`); prints `READY listen=ADDR`.
//! `GET /introspections` answers how many introspections it has answered (for `flood.sh`: what
//! the authorization server saw). Same accept loop as phantom-gateway
//! (`phantom_gateway::server`). Used by `bench.sh` and `flood.sh`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderValue;
use phantom_gateway::http::Body;
use phantom_gateway::server;
use tokio::sync::watch;

/// Introspections answered so far.
static INTROSPECTIONS: AtomicU64 = AtomicU64::new(0);

/// phantom-gateway's default `[gateway] max_connections`.
const MAX_CONNECTIONS: usize = 10_000;

fn respond(content_type: &'static str, body: Bytes) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(
        Full::new(body)
            .map_err(|never: Infallible| match never {})
            .boxed_unsync(),
    );
    resp.headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    resp
}

/// An RFC 7662 answer: active, for the benchmark route, valid for an hour.
fn introspection(issuer: &str) -> hyper::Response<Body> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let body = serde_json::json!({
        "active": true, "scope": "orders:read", "client_id": "bench", "sub": "bench-user",
        "aud": "orders-api", "iss": issuer, "exp": now + 3600, "iat": now,
        "token_type": "Bearer"
    });
    respond("application/json", Bytes::from(body.to_string()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BENCH_UPSTREAM_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()?;
    let listener = server::bind(addr).await?;
    let local = listener.local_addr()?;
    server::announce(local, None);
    let issuer: &'static str = Box::leak(format!("http://{local}").into_boxed_str());
    let (_stop_tx, stop) = watch::channel(false);
    server::run(
        listener,
        stop,
        Duration::from_secs(1),
        MAX_CONNECTIONS,
        move |req: hyper::Request<hyper::body::Incoming>, _remote| async move {
            if req.method() == hyper::Method::POST && req.uri().path() == "/introspect" {
                INTROSPECTIONS.fetch_add(1, Ordering::Relaxed);
                return introspection(issuer);
            }
            if req.uri().path() == "/introspections" {
                let n = INTROSPECTIONS.load(Ordering::Relaxed).to_string();
                return respond("text/plain", Bytes::from(n));
            }
            respond("text/plain", Bytes::from_static(b"ok"))
        },
    )
    .await;
    Ok(())
}
