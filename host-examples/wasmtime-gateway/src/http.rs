//! HTTP plumbing every listener shares: the body type, answers built from status, headers and
//! body, the upstream client, and the conversions between hyper's headers and the component's
//! header lists (applying its `upstream-headers` / `hop-by-hop-headers` answers). No policy:
//! which headers go and come is the component's word.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::engine::{Header, UpstreamHeaders};

/// Response bodies: the upstream's stream, or our own bytes.
pub type Body = UnsyncBoxBody<Bytes, BodyError>;
/// Any body error (hyper's, or wasi:http's error code in proxy-component mode).
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A whole body from bytes.
pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

/// An answer with exactly these headers (names the component wrote; an invalid one is left
/// out).
pub fn response<N: AsRef<str>, V: AsRef<str>>(
    status: u16,
    headers: impl IntoIterator<Item = (N, V)>,
    body: impl Into<Bytes>,
) -> hyper::Response<Body> {
    let mut resp = hyper::Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    for (n, v) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::try_from(n.as_ref()),
            HeaderValue::try_from(v.as_ref()),
        ) {
            h.append(n, v);
        }
    }
    resp
}

/// A JSON answer (`no-store`) with these extra headers.
pub fn json_response(status: u16, headers: &[(&str, &str)], body: String) -> hyper::Response<Body> {
    let fixed = [
        ("content-type", "application/json"),
        ("cache-control", "no-store"),
    ];
    response(status, fixed.iter().chain(headers).copied(), body)
}

/// `{"error": ..., "error_description": ...}`.
pub fn error_response(status: u16, error: &str, description: &str) -> hyper::Response<Body> {
    let body = serde_json::json!({"error": error, "error_description": description}).to_string();
    json_response(status, &[], body)
}

/// The client for the upstream: hyper-util's pooled HTTP/1.1 client, nodelay, 5 s connect
/// timeout, 30 s idle pool.
pub fn upstream_client() -> Client<HttpConnector, Incoming> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// A header map as the component takes it, in iteration order (non-UTF-8 bytes replaced: the
/// component reads only `connection`, `host` and `x-forwarded-for` values, and the bytes sent
/// on are the map's own).
pub fn header_list(headers: &HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(n, v)| Header {
            name: n.as_str().to_owned(),
            value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
        })
        .collect()
}

/// `headers` without the entries at `drop` (indexes into [`header_list`]'s order), the others
/// as they were.
pub fn without(headers: &HeaderMap, drop: &[u32]) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    let mut drop = drop.iter().peekable();
    for (i, (name, value)) in headers.iter().enumerate() {
        if drop.peek().is_some_and(|&&d| d as usize == i) {
            drop.next();
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The upstream request's headers: the inbound ones without the plan's `drop`, then its `set`.
/// `None` when a `set` header cannot be sent (an invalid name or value): the host cannot apply
/// the decision, so it fails closed.
pub fn apply_upstream_headers(inbound: &HeaderMap, plan: &UpstreamHeaders) -> Option<HeaderMap> {
    let mut out = without(inbound, &plan.drop);
    for h in &plan.set {
        let name = HeaderName::try_from(h.name.as_str()).ok()?;
        let value = HeaderValue::try_from(h.value.as_str()).ok()?;
        out.append(name, value);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.append(
                HeaderName::try_from(*n).unwrap(),
                HeaderValue::try_from(*v).unwrap(),
            );
        }
        m
    }

    #[test]
    fn a_plan_drops_by_index_in_list_order_and_appends() {
        let inbound = map(&[("a", "1"), ("b", "2"), ("a", "3"), ("c", "4")]);
        let list = header_list(&inbound);
        let names: Vec<&str> = list.iter().map(|h| h.name.as_str()).collect();
        // HeaderMap iterates a name's values together: the indexes are into this order.
        assert_eq!(names, ["a", "a", "b", "c"]);
        let plan = UpstreamHeaders {
            drop: vec![1, 3],
            set: vec![Header {
                name: "x-jwt".into(),
                value: "v".into(),
            }],
        };
        let out = apply_upstream_headers(&inbound, &plan).unwrap();
        let got: Vec<(&str, &str)> = out
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(got, [("a", "1"), ("b", "2"), ("x-jwt", "v")]);
        let bad = UpstreamHeaders {
            drop: vec![],
            set: vec![Header {
                name: "x".into(),
                value: "a\nb".into(),
            }],
        };
        assert!(apply_upstream_headers(&inbound, &bad).is_none());
    }

    #[test]
    fn answers_carry_exactly_the_given_headers() {
        let r = response(204, [("cache-control", "no-store")], "");
        assert_eq!(r.status(), 204);
        assert_eq!(r.headers().len(), 1);
        let r = json_response(401, &[("www-authenticate", "Bearer")], "{}".into());
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["www-authenticate"], "Bearer");
    }
}
