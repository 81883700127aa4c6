//! Routing: the route a request path selects (the longest `path_prefix` on a segment boundary),
//! read both as this edge reads it and as a lenient upstream would.

use crate::action::Reason;
use crate::config::Route;
use crate::request::{check_path, raw_path};

use super::Edge;
use super::intake::Refusal;

impl Edge {
    /// The path check and the route for a request target: a path the edge and the service
    /// behind could read differently is refused, and so is one no route covers.
    pub(super) fn route(&self, path: &str) -> Result<usize, Refusal> {
        let lenient =
            check_path(path).map_err(|why| Refusal::request(Reason::AmbiguousPath, Some(why)))?;
        let raw = raw_path(path);
        let route = route_matching(&self.cfg.routes, raw, false);
        // The route as a lenient upstream would pick it (decoded, `;` parameters and trailing
        // dots dropped, any case) must be the same one, or the two could authorize differently.
        // (Skipped when neither reading can differ: nothing decoded, no upper case anywhere.)
        if lenient.is_some() || self.routes_fold || raw.bytes().any(|c| c.is_ascii_uppercase()) {
            let other = route_matching(&self.cfg.routes, lenient.as_deref().unwrap_or(raw), true);
            if other != route {
                let why = Some("the path could be routed differently by the service behind");
                return Err(Refusal::request(Reason::AmbiguousPath, why));
            }
        }
        route.ok_or(Refusal::request(Reason::NoRoute, None))
    }
}

/// Longest `path_prefix` that matches on a segment boundary (`path` may carry a query).
#[cfg(test)]
fn route_for(routes: &[Route], path: &str) -> Option<usize> {
    route_matching(routes, raw_path(path), false)
}

/// The route for `path` (no query), comparing ASCII case-insensitively when `fold_case`.
fn route_matching(routes: &[Route], path: &str, fold_case: bool) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, r) in routes.iter().enumerate() {
        let p = r.path_prefix.as_str();
        let starts = path.len() >= p.len()
            && if fold_case {
                path.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
            } else {
                path.as_bytes()[..p.len()] == *p.as_bytes()
            };
        let hit =
            p == "/" || (starts && matches!(path.as_bytes().get(p.len()), None | Some(&b'/')));
        if hit && best.is_none_or(|(_, len)| p.len() > len) {
            best = Some((i, p.len()));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(prefixes: &[&str]) -> Vec<Route> {
        prefixes
            .iter()
            .map(|p| Route {
                path_prefix: (*p).into(),
                required_scopes: vec![],
                audience: None,
            })
            .collect()
    }

    #[test]
    fn routes_match_on_segment_boundaries_longest_first() {
        let r = routes(&["/orders", "/orders/admin", "/"]);
        assert_eq!(route_for(&r, "/orders"), Some(0));
        assert_eq!(route_for(&r, "/orders/1?x=y"), Some(0));
        assert_eq!(route_for(&r, "/orders/admin/x"), Some(1));
        assert_eq!(route_for(&r, "/ordersX"), Some(2));
        let r = routes(&["/orders"]);
        assert_eq!(route_for(&r, "/ordersX"), None);
        assert_eq!(route_for(&r, "/"), None);
    }
}
