//! The admin (operator) listener of edge mode. `GET /healthz` is the gateway's own: whether the
//! component is alive. `/revocations`, `/metrics` and `/jwks` go to the component's
//! `handle-admin` (listener `operator`) whatever the method: it answers 204/200, and
//! 405/413/401/403 with its one realm and body limit. Any other path is 404.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::Method;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use phantom_edge_core::MAX_ADMIN_BODY;
use tracing::info;

use crate::engine::{AdminRequest, AdminRoute, Listener};
use crate::gateway::{Gateway, Poisoned};
use crate::http::{Body, error_response, json_response, response};

/// How long the admin listener waits for a request body.
const ADMIN_BODY_TIMEOUT: Duration = Duration::from_secs(5);

impl Gateway {
    /// One request on the admin listener.
    pub async fn admin(self: Arc<Self>, req: hyper::Request<Incoming>) -> hyper::Response<Body> {
        let route = match req.uri().path() {
            "/healthz" if req.method() == Method::GET => return self.healthz(),
            "/healthz" => {
                return json_response(
                    405,
                    &[("allow", "GET")],
                    r#"{"error":"method_not_allowed","error_description":"use GET"}"#.into(),
                );
            }
            "/revocations" => AdminRoute::Revocations,
            "/metrics" => AdminRoute::Metrics,
            "/jwks" => AdminRoute::Jwks,
            _ => return error_response(404, "not_found", "no such admin route"),
        };
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let authorization = header("authorization");
        let content_type = header("content-type");
        let method = req.method().as_str().to_owned();
        // The body is read before anything authenticates it (a SET is its own credential), so
        // a client sending it slowly holds one of the admin listener's connections: at most
        // ADMIN_BODY_TIMEOUT, not until it stops. One byte past the limit tells the component
        // it was exceeded (it answers 413).
        let read = read_at_most(req.into_body(), MAX_ADMIN_BODY + 1);
        let body = match tokio::time::timeout(ADMIN_BODY_TIMEOUT, read).await {
            Ok(Ok(b)) => b,
            Ok(Err(_)) => return error_response(400, "invalid_request", "body not received"),
            Err(_) => {
                let mut resp = error_response(408, "invalid_request", "body not received in time");
                resp.headers_mut()
                    .insert("connection", HeaderValue::from_static("close"));
                return resp;
            }
        };
        let request = AdminRequest {
            route,
            listener: Listener::Operator,
            method,
            authorization,
            content_type,
            body,
        };
        match self.admin_request(&request) {
            Ok(answer) => {
                if route == AdminRoute::Revocations {
                    info!(status = answer.status, "admin revocation answered");
                }
                let headers = answer.headers.iter().map(|h| (&h.name, &h.value));
                response(answer.status, headers, answer.body)
            }
            Err(Poisoned) => error_response(503, "temporarily_unavailable", "gateway failure"),
        }
    }

    /// `GET /healthz`: 200 while the component is alive, 503 once it trapped.
    fn healthz(&self) -> hyper::Response<Body> {
        if self.healthy() {
            json_response(200, &[], r#"{"status":"ok"}"#.into())
        } else {
            json_response(503, &[], r#"{"status":"failed"}"#.into())
        }
    }
}

/// Reads a body up to `cap` bytes (what lies beyond is not read).
async fn read_at_most(mut body: Incoming, cap: usize) -> Result<Vec<u8>, hyper::Error> {
    let mut out = Vec::new();
    while out.len() < cap {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let take = data.len().min(cap - out.len());
            out.extend_from_slice(&data[..take]);
        }
    }
    Ok(out)
}
