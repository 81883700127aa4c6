//! The baseline for `bench.sh`: a reverse proxy without phantom-edge. Same accept loop as
//! phantom-gateway (`phantom_gateway::server`), same upstream client (hyper-util legacy `Client`
//! over `HttpConnector`, nodelay, 5 s connect timeout, 30 s idle pool), and the same header work
//! per request (drop hop-by-hop and `host`, set `host`, `x-forwarded-*`); it only skips the
//! decision. The `authorization` header passes through unchanged.
//!
//! `cargo run --release -p phantom-gateway --example direct_proxy -- LISTEN UPSTREAM`
//! e.g. `127.0.0.1:0 http://127.0.0.1:8081`; prints `READY listen=ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use phantom_gateway::gateway::{Body, BodyError};
use phantom_gateway::server;
use tokio::sync::watch;

/// phantom-gateway's default `[gateway] max_connections`.
const MAX_CONNECTIONS: usize = 10_000;

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

struct Proxy {
    client: Client<HttpConnector, Incoming>,
    origin: String,
    authority: HeaderValue,
}

fn error(status: u16) -> hyper::Response<Body> {
    let mut r = hyper::Response::new(
        http_body_util::Empty::new()
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed_unsync(),
    );
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    r
}

impl Proxy {
    async fn handle(
        &self,
        req: hyper::Request<Incoming>,
        remote: SocketAddr,
    ) -> hyper::Response<Body> {
        let (parts, body) = req.into_parts();
        let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(uri) = format!("{}{pq}", self.origin).parse::<hyper::Uri>() else {
            return error(400);
        };
        let mut headers = HeaderMap::with_capacity(parts.headers.len() + 4);
        let original_host = parts.headers.get("host").cloned();
        for (name, value) in &parts.headers {
            let n = name.as_str();
            if n == "host" || HOP_BY_HOP.contains(&n) {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        headers.insert("host", self.authority.clone());
        if let Some(h) = original_host {
            headers.insert("x-forwarded-host", h);
        }
        if let Ok(v) = HeaderValue::try_from(remote.ip().to_string()) {
            headers.append("x-forwarded-for", v);
        }
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        let mut up = hyper::Request::new(body);
        *up.method_mut() = parts.method;
        *up.uri_mut() = uri;
        *up.headers_mut() = headers;
        match tokio::time::timeout(Duration::from_secs(10), self.client.request(up)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                for n in HOP_BY_HOP {
                    parts.headers.remove(n);
                }
                hyper::Response::from_parts(parts, body.map_err(BodyError::from).boxed_unsync())
            }
            Ok(Err(_)) => error(502),
            Err(_) => error(504),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        return Err(
            "usage: direct_proxy LISTEN UPSTREAM (e.g. 127.0.0.1:0 http://127.0.0.1:8081)".into(),
        );
    };
    let listen: SocketAddr = listen.parse()?;
    let origin = upstream.trim_end_matches('/').to_owned();
    let authority = origin
        .strip_prefix("http://")
        .ok_or("UPSTREAM must be an http:// URL")?
        .split('/')
        .next()
        .unwrap_or_default();
    let authority = HeaderValue::try_from(authority)?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let proxy = Arc::new(Proxy {
        client,
        origin,
        authority,
    });
    let listener = server::bind(listen).await?;
    server::announce(listener.local_addr()?, None);
    let (_stop_tx, stop) = watch::channel(false);
    server::run(
        listener,
        stop,
        Duration::from_secs(1),
        MAX_CONNECTIONS,
        move |req, remote| {
            let p = proxy.clone();
            async move { p.handle(req, remote).await }
        },
    )
    .await;
    Ok(())
}
