//! `[[routes]]`: path prefixes and what a token needs for each (scopes, audience).

use serde::Deserialize;

use super::ConfigError;

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Matched on a path-segment boundary: `/orders` matches `/orders` and `/orders/1`, not
    /// `/ordersX`.
    pub path_prefix: String,
    /// Every one must be in the token's `scope`.
    pub required_scopes: Vec<String>,
    /// Must be in the token's `aud`, and is the `aud` of minted upstream JWTs.
    pub audience: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path_prefix: String,
    #[serde(default)]
    pub required_scopes: Vec<String>,
    #[serde(default)]
    pub audience: Option<String>,
}

/// The routes, in the order given: at least one, each prefix a plain path, told apart from the
/// others without regard to case.
pub(super) fn resolve(raw: &[RawRoute]) -> Result<Vec<Route>, ConfigError> {
    let mut routes = Vec::with_capacity(raw.len());
    if raw.is_empty() {
        return Err(ConfigError::new(
            "routes",
            "at least one [[routes]] entry is required (use path_prefix = \"/\" for a catch-all)",
        ));
    }
    for (i, r) in raw.iter().enumerate() {
        let field = format!("routes[{i}].path_prefix");
        if !r.path_prefix.starts_with('/') {
            return Err(ConfigError::new(field, "must start with '/'"));
        }
        if r.path_prefix.contains(['?', '#']) {
            return Err(ConfigError::new(
                field,
                "must be a path without query or fragment",
            ));
        }
        if r.path_prefix.contains("//") {
            // "//" would trim to "" and match every path; no request path has "//" anyway.
            return Err(ConfigError::new(
                field,
                "must not contain an empty segment (//)",
            ));
        }
        let prefix = if r.path_prefix.len() > 1 {
            r.path_prefix.trim_end_matches('/')
        } else {
            "/"
        };
        // A prefix a request could reach only through a path the edge refuses as ambiguous
        // (`%`, `;`, `admin.`, a letter read as an ASCII one) would never match. (Other
        // non-ASCII text is read as written: `/café` is reached by a raw UTF-8 path.)
        // Non-ASCII letters in lower case only: paths are compared with them folded so.
        let plain = match crate::request::check_path(prefix) {
            Ok(None) => true,
            Ok(Some(lenient)) => lenient == prefix && !prefix.contains(['%', ';']),
            Err(_) => false,
        };
        if !plain {
            return Err(ConfigError::new(
                field,
                "must be a plain path: no %-encoding, ';', dot segments, segments ending \
                 in '.', upper-case non-ASCII letters or letters that case-fold to ASCII \
                 ones",
            ));
        }
        if routes
            .iter()
            .any(|x: &Route| x.path_prefix.eq_ignore_ascii_case(prefix))
        {
            // Routes are also compared as case-insensitive upstreams read them.
            return Err(ConfigError::new(
                field,
                format!("duplicate path_prefix {prefix:?} (case is not told apart)"),
            ));
        }
        for (j, s) in r.required_scopes.iter().enumerate() {
            // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E (it goes into the
            // WWW-Authenticate `scope` parameter as is).
            let scope_char = |b: u8| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e);
            if s.is_empty() || !s.bytes().all(scope_char) {
                return Err(ConfigError::new(
                    format!("routes[{i}].required_scopes[{j}]"),
                    "a scope is a non-empty RFC 6749 scope-token: printable ASCII without \
                     spaces, quotes or backslashes",
                ));
            }
        }
        if r.audience.as_deref() == Some("") {
            return Err(ConfigError::new(
                format!("routes[{i}].audience"),
                "must not be empty",
            ));
        }
        routes.push(Route {
            path_prefix: prefix.to_string(),
            required_scopes: r.required_scopes.clone(),
            audience: r.audience.clone(),
        });
    }
    Ok(routes)
}
