//! The operator routes every host serves, answered here so that each host only routes a path
//! to an [`AdminRoute`] and writes the [`AdminAnswer`] out: the revocation route, the metrics
//! and the edge's own JWKS, with one body limit and one realm.

use super::Edge;

/// The largest request body an operator route reads. A host reads at most one byte more and
/// passes what it read: a longer body is answered 413.
pub const MAX_ADMIN_BODY: usize = 64 * 1024;

/// The `WWW-Authenticate` challenge of the operator routes.
pub const ADMIN_CHALLENGE: &str = "Bearer realm=\"phantom-edge-admin\"";

/// An operator route (the host maps its paths to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminRoute {
    /// `POST`: a JSON revocation selector with the `[admin]` bearer token, or an
    /// `application/secevent+jwt` Security Event Token (its own credential).
    Revocations,
    /// `GET` / `HEAD`: the Prometheus text exposition.
    Metrics,
    /// `GET` / `HEAD`: the edge's own public keys, for upstreams verifying the JWTs it mints.
    Jwks,
}

impl AdminRoute {
    /// `"revocations"`, `"metrics"` or `"jwks"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revocations => "revocations",
            Self::Metrics => "metrics",
            Self::Jwks => "jwks",
        }
    }

    /// The route with this name, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Revocations, Self::Metrics, Self::Jwks]
            .into_iter()
            .find(|r| r.as_str() == name)
    }
}

/// Who can reach the listener the route is served on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// A listener only operators reach (phantom-gateway's `admin_listen`): the metrics and the
    /// JWKS are open there, as a Prometheus scraper expects.
    Operator,
    /// The app's own, possibly public, listener (a middleware's routes): the metrics need the
    /// `[admin]` bearer token, and without an `[admin]` section nobody reads them.
    App,
}

/// A request to an operator route.
#[derive(Debug, Clone, Copy)]
pub struct AdminRequest<'a> {
    /// Which route the host mapped the path to.
    pub route: AdminRoute,
    /// Where it was served.
    pub listener: Listener,
    /// The request method (`POST`, `GET`, ...).
    pub method: &'a str,
    /// The `Authorization` header, if any.
    pub authorization: Option<&'a str>,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The body as read: at most [`MAX_ADMIN_BODY`] + 1 bytes.
    pub body: &'a [u8],
}

/// The answer to write out as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminAnswer {
    /// HTTP status.
    pub status: u16,
    /// Response headers (lowercase names).
    pub headers: Vec<(String, String)>,
    /// The body (empty for 204).
    pub body: String,
}

impl AdminAnswer {
    fn json(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body,
        }
    }

    fn error(status: u16, error: &str, description: &str) -> Self {
        Self::json(
            status,
            serde_json::json!({ "error": error, "error_description": description }).to_string(),
        )
    }

    fn with(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl Edge {
    /// Answers an operator route. Follow it with [`Edge::step`]: a revocation can answer
    /// waiting requests and publish to the other instances.
    pub fn handle_admin(&mut self, now: u64, req: &AdminRequest<'_>) -> AdminAnswer {
        let read = matches!(req.method, "GET" | "HEAD");
        match req.route {
            AdminRoute::Revocations if req.method != "POST" => {
                AdminAnswer::error(405, "method_not_allowed", "use POST").with("allow", "POST")
            }
            AdminRoute::Metrics | AdminRoute::Jwks if !read => {
                AdminAnswer::error(405, "method_not_allowed", "use GET").with("allow", "GET, HEAD")
            }
            _ if req.body.len() > MAX_ADMIN_BODY => AdminAnswer::error(
                413,
                "invalid_request",
                &format!("body larger than {MAX_ADMIN_BODY} bytes"),
            ),
            AdminRoute::Revocations => {
                match self.handle_admin_revocation(
                    now,
                    req.content_type,
                    req.authorization,
                    req.body,
                ) {
                    Ok(()) => AdminAnswer {
                        status: 204,
                        headers: vec![("cache-control".into(), "no-store".into())],
                        body: String::new(),
                    },
                    Err(e) => {
                        let answer = AdminAnswer::json(e.status(), e.body());
                        if e.status() == 401 {
                            answer.with("www-authenticate", ADMIN_CHALLENGE)
                        } else {
                            answer
                        }
                    }
                }
            }
            AdminRoute::Metrics => {
                if req.listener == Listener::App {
                    match self.admin_authorized(req.authorization) {
                        None => {
                            return AdminAnswer::error(
                                403,
                                "forbidden",
                                "metrics need an [admin] token in the configuration",
                            );
                        }
                        Some(false) => {
                            return AdminAnswer::error(
                                401,
                                "unauthorized",
                                "missing or wrong admin bearer token",
                            )
                            .with("www-authenticate", ADMIN_CHALLENGE);
                        }
                        Some(true) => {}
                    }
                }
                AdminAnswer {
                    status: 200,
                    headers: vec![
                        (
                            "content-type".into(),
                            "text/plain; version=0.0.4; charset=utf-8".into(),
                        ),
                        ("cache-control".into(), "no-store".into()),
                    ],
                    body: self.prometheus(),
                }
            }
            AdminRoute::Jwks => match self.assertion_jwks() {
                Some(jwks) => AdminAnswer::json(200, jwks),
                None => AdminAnswer::error(404, "not_found", "this edge does not mint JWTs"),
            },
        }
    }
}
