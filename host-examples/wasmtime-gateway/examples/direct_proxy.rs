//! The baseline for `bench.sh`: a reverse proxy without phantom-edge's decision. Same accept
//! loop as phantom-gateway (`phantom_gateway::server`), the same upstream client
//! (`phantom_gateway::http::upstream_client`) and the same header work: the forwarding policy
//! (`upstream_headers`, `hop_by_hop_headers`) of a native core, applied with the gateway's
//! `apply_upstream_headers` / `without` (phantom-gateway asks its component, one crossing
//! each). The `authorization` header passes through unchanged (set again to its own value).
//!
//! `cargo run --release -p phantom-gateway --example direct_proxy -- LISTEN UPSTREAM`
//! e.g. `127.0.0.1:0 http://127.0.0.1:8081`; prints `READY listen=ADDR`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use phantom_edge_core::{Config, Edge, Hop, hop_by_hop_headers};
use phantom_gateway::engine::{Header, UpstreamHeaders};
use phantom_gateway::http::{
    Body, BodyError, apply_upstream_headers, header_list, upstream_client, without,
};
use phantom_gateway::server;
use tokio::sync::watch;

/// phantom-gateway's default `[gateway] max_connections`.
const MAX_CONNECTIONS: usize = 10_000;

struct Proxy {
    client: Client<HttpConnector, Incoming>,
    origin: String,
    authority: String,
    /// Only its forwarding policy is used (the header it sets is `authorization`).
    policy: Edge,
}

/// A minimal configuration: the edge is never asked to decide.
const POLICY: &str = r#"
[authorization_server]
issuer = "http://as.invalid"
introspection_endpoint = "http://as.invalid/introspect"
client_id = "direct"
client_secret = "direct-secret"

[[routes]]
path_prefix = "/"
"#;

fn pairs(list: &[Header]) -> Vec<(&str, &str)> {
    list.iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect()
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
        let inbound = header_list(&parts.headers);
        let authorization = parts
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let peer = remote.ip().to_string();
        let hop = Hop::Proxy {
            peer: Some(&peer),
            proto: "http",
            upstream_authority: Some(&self.authority),
        };
        let plan = self
            .policy
            .upstream_headers(&pairs(&inbound), authorization, &hop);
        let plan = UpstreamHeaders {
            drop: plan.drop.iter().map(|&i| i as u32).collect(),
            set: plan
                .set
                .into_iter()
                .filter(|(n, v)| n != "authorization" || !v.is_empty())
                .map(|(name, value)| Header { name, value })
                .collect(),
        };
        let Some(headers) = apply_upstream_headers(&parts.headers, &plan) else {
            return error(503);
        };
        let mut up = hyper::Request::new(body);
        *up.method_mut() = parts.method;
        *up.uri_mut() = uri;
        *up.headers_mut() = headers;
        match tokio::time::timeout(Duration::from_secs(10), self.client.request(up)).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                let list = header_list(&parts.headers);
                let drop: Vec<u32> = hop_by_hop_headers(&pairs(&list))
                    .into_iter()
                    .map(|i| i as u32)
                    .collect();
                parts.headers = without(&parts.headers, &drop);
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
    let authority = authority.to_owned();
    let config = Config::from_toml(POLICY, &|_| None).map_err(|e| e.to_string())?;
    let client = upstream_client();
    let proxy = Arc::new(Proxy {
        client,
        origin,
        authority,
        policy: Edge::new(config, [0; 32], 0),
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
