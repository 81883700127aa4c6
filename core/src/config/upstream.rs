//! `[upstream]`: what is forwarded upstream: the header carrying the JWT and its scheme, and the
//! inbound headers stripped.

use serde::Deserialize;

use super::ConfigError;
use super::values::is_token_char;

/// Inbound headers never passed upstream, before `upstream.strip_headers`: the client's
/// credentials and the path-override headers.
pub const ALWAYS_STRIPPED: [&str; 4] = ["authorization", "dpop", "x-original-url", "x-rewrite-url"];

/// Inbound headers about the client's connection that an upstream may trust, so a host that
/// proxies sets its own and passes none of the client's on (`x-forwarded-host` / `-proto` from
/// the request, `x-forwarded-for` only where the peer is known). Beyond RFC 7239's `forwarded`
/// and the `x-forwarded-for/-host/-proto` trio, the names common frameworks read behind a
/// trusted proxy: the port and path prefix (Spring's ForwardedHeaderFilter, Werkzeug's
/// ProxyFix, Django), the scheme under other names (Rack: `x-forwarded-scheme`,
/// `x-forwarded-ssl`, `x-url-scheme`, `front-end-https`; Gunicorn: `x-forwarded-protocol`;
/// Tornado: `x-scheme`), the proxy (Tomcat: `x-forwarded-by`) and the client address
/// (`x-real-ip`, `client-ip`, `x-client-ip`, `true-client-ip`, `x-cluster-client-ip`).
pub const FORWARDING_HEADERS: [&str; 18] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-protocol",
    "x-forwarded-by",
    "x-scheme",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-url-scheme",
    "front-end-https",
    "x-real-ip",
    "client-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
];

/// A header name as WSGI/CGI servers read it: lowercase, `_` as `-` (`X_Jwt_Assertion` and
/// `X-Jwt-Assertion` are the same variable there). Hosts compare inbound names in this form
/// with the headers they strip or set.
pub fn header_name_as_read(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b == b'_' || b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase().replace('_', "-"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Default of `upstream.header`.
pub(crate) const DEFAULT_HEADER: &str = "authorization";
/// Default of `upstream.scheme`.
pub(crate) const DEFAULT_SCHEME: &str = "Bearer";

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub strip_headers: Option<Vec<String>>,
}

/// The `[upstream]` section checked by [`RawUpstream::resolve`].
pub(super) struct Upstream {
    pub(super) header: String,
    pub(super) scheme: String,
    pub(super) strip_headers: Vec<String>,
}

impl RawUpstream {
    /// The header name and scheme, and the headers stripped: [`ALWAYS_STRIPPED`], then
    /// `strip_headers` (lower-cased, each once).
    pub(super) fn resolve(&self) -> Result<Upstream, ConfigError> {
        let u = self;
        let upstream_header = u
            .header
            .clone()
            .unwrap_or_else(|| DEFAULT_HEADER.into())
            .to_ascii_lowercase();
        if upstream_header.is_empty() || !upstream_header.bytes().all(is_token_char) {
            return Err(ConfigError::new(
                "upstream.header",
                "must be a valid HTTP header name",
            ));
        }
        let upstream_scheme = u.scheme.clone().unwrap_or_else(|| DEFAULT_SCHEME.into());
        if !upstream_scheme.bytes().all(is_token_char) {
            return Err(ConfigError::new(
                "upstream.scheme",
                "must be an HTTP auth scheme token (or empty)",
            ));
        }
        // Always: the client's credentials, and the headers some servers and frameworks
        // (IIS URL Rewrite, Symfony, Zend) take as the request's path instead of the target
        // line: the upstream must route on the path this edge authorized.
        let mut strip_headers: Vec<String> = ALWAYS_STRIPPED.iter().map(|h| (*h).into()).collect();
        for h in u.strip_headers.iter().flatten() {
            let h = h.to_ascii_lowercase();
            if h.is_empty() || !h.bytes().all(is_token_char) {
                return Err(ConfigError::new(
                    "upstream.strip_headers",
                    format!("not a header name: {h:?}"),
                ));
            }
            if !strip_headers.contains(&h) {
                strip_headers.push(h);
            }
        }
        Ok(Upstream {
            header: upstream_header,
            scheme: upstream_scheme,
            strip_headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_as_wsgi_reads_them() {
        assert_eq!(header_name_as_read("X_Jwt_Assertion"), "x-jwt-assertion");
        assert_eq!(header_name_as_read("X-Forwarded-Host"), "x-forwarded-host");
        assert!(matches!(
            header_name_as_read("x-kept"),
            std::borrow::Cow::Borrowed("x-kept")
        ));
    }
}
