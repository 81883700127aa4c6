//! The client for the component's `fetch`es (introspections and JWKS fetches, one path for
//! both): sends the request as given, no redirects, reads at most `max-response-bytes` within
//! `timeout-ms`, and hands back whatever came back. Any status is an answer: the component
//! decides what it means.

use std::time::Duration;

use crate::engine::{Fetch, FetchResult, Header, HttpResponse};

/// A pooled HTTP client for the authorization server.
#[derive(Debug, Clone)]
pub struct AsClient {
    http: reqwest::Client,
}

impl AsClient {
    /// No redirects (a fetch is sent exactly as the component wrote it), 5 s connect timeout
    /// (within each fetch's own `timeout-ms`).
    pub fn new() -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        Ok(Self { http })
    }

    /// Performs one fetch. `Failure` carries a token-free description (the body, which holds
    /// the token, is never part of it).
    pub async fn fetch(&self, f: Fetch) -> FetchResult {
        match self.send(f).await {
            Ok(response) => FetchResult::Response(response),
            Err(detail) => FetchResult::Failure(detail),
        }
    }

    async fn send(&self, f: Fetch) -> Result<HttpResponse, String> {
        let method = reqwest::Method::from_bytes(f.method.as_bytes())
            .map_err(|_| format!("invalid method {:?}", f.method))?;
        // reqwest's timeout runs from connecting until the body has been read.
        let mut req = self
            .http
            .request(method, &f.url)
            .timeout(Duration::from_millis(f.timeout_ms));
        for h in &f.headers {
            req = req.header(&h.name, &h.value);
        }
        if !f.body.is_empty() {
            req = req.body(f.body);
        }
        let mut resp = req.send().await.map_err(describe)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(n, v)| Header {
                name: n.as_str().to_owned(),
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
            .collect();
        let max = usize::try_from(f.max_response_bytes).unwrap_or(usize::MAX);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(describe)? {
            if body.len() + chunk.len() > max {
                return Err("answer too large".into());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

/// Token-free transport error.
fn describe(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    };
    format!("{kind}: {}", e.without_url())
}
