//! The baseline for `bench.sh`: a reverse proxy without phantom-edge. Same accept loop as
//! phantom-gateway (`phantom_gateway::server`), the same upstream client
//! (`phantom_gateway::gateway::upstream_client`) and the same header code
//! (`upstream_headers`, `strip_hop_by_hop`); it only skips the decision. The `authorization` header passes through unchanged.
//!
//! `cargo run --release -p phantom-gateway --example direct_proxy -- LISTEN UPSTREAM`
//! e.g. `127.0.0.1:0 http://127.0.0.1:8081`; prints `READY listen=ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use phantom_gateway::gateway::{
    Body, BodyError, strip_hop_by_hop, upstream_client, upstream_headers,
};
use phantom_gateway::server;
use tokio::sync::watch;

/// phantom-gateway's default `[gateway] max_connections`.
const MAX_CONNECTIONS: usize = 10_000;

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
        let headers = upstream_headers(
            &parts.headers,
            |_| false,
            None,
            Some(&self.authority),
            remote,
        );
        let mut up = hyper::Request::new(body);
        *up.method_mut() = parts.method;
        *up.uri_mut() = uri;
        *up.headers_mut() = headers;
        match tokio::time::timeout(Duration::from_secs(10), self.client.request(up)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                strip_hop_by_hop(&mut parts.headers);
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
    let client = upstream_client();
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
