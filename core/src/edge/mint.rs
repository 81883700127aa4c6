//! Minting: the upstream JWTs the edge signs itself (`[assertions]`), one per route, kept in the
//! cache entry while fresh enough, and the header value every `Forward` carries.

use std::sync::Arc;

use crate::action::Reason;
use crate::cache::{Entry, Minted};
use crate::config::{Config, Route};
use crate::token::TokenInfo;

use super::intake::Binding;

/// Mints upstream JWTs and unique ids.
pub(super) struct Minter {
    key: [u8; 32],
    counter: u64,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("key", &"{REDACTED}")
            .field("counter", &self.counter)
            .finish()
    }
}

impl Minter {
    pub(super) fn new(key: [u8; 32]) -> Self {
        Self { key, counter: 0 }
    }

    pub(super) fn next_id(&mut self) -> String {
        self.counter += 1;
        let h = blake3::keyed_hash(&self.key, &self.counter.to_le_bytes());
        h.as_bytes()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// The upstream header value for an authorized request: the authorization server's JWT
/// (completed with the request's own signature in split mode) or, with `[assertions]`, a JWT
/// minted for the route, reused while it has at least half of `assertions.max_ttl` left.
pub(super) fn upstream_value(
    cfg: &Config,
    minter: &mut Minter,
    entry: &mut Entry,
    route_idx: usize,
    b: &Binding,
    now: u64,
    resized: &mut Option<(usize, usize)>,
) -> Result<Arc<str>, Reason> {
    let info = &*entry.info;
    let route = &cfg.routes[route_idx];
    let Some(a) = &cfg.assertions else {
        let forward = entry.forward.as_ref().ok_or(Reason::Unavailable)?;
        return Ok(match &b.split_signature {
            Some(sig) => Arc::from(format!("{forward}{}", sig.expose())),
            None => Arc::clone(forward),
        });
    };
    let token_exp_ms = info.exp.map_or(u64::MAX, |e| e.saturating_mul(1000));
    let fresh_enough = now.saturating_add(a.max_ttl_ms / 2).min(token_exp_ms);
    if let Some(m) = entry
        .minted
        .iter()
        .find(|m| m.route == route_idx && m.exp_ms > now && m.exp_ms >= fresh_enough)
    {
        return Ok(m.value.clone());
    }
    let exp_ms = now.saturating_add(a.max_ttl_ms).min(token_exp_ms);
    let jwt = mint(cfg, minter, info, route, now, exp_ms);
    let value = header_value(&cfg.upstream_scheme, &jwt);
    let minted = Minted {
        route: route_idx,
        value: value.clone(),
        exp_ms,
    };
    // The entry's size changes only here: (bytes before, bytes after) of its minted JWTs for
    // this route, so a hit does not recount the whole entry.
    let before = entry
        .minted
        .iter()
        .filter(|m| m.route == route_idx)
        .map(Minted::bytes)
        .sum();
    *resized = Some((before, minted.bytes()));
    entry.minted.retain(|m| m.route != route_idx);
    entry.minted.push(minted);
    Ok(value)
}

pub(super) fn header_value(scheme: &str, jwt: &str) -> Arc<str> {
    if scheme.is_empty() {
        jwt.into()
    } else {
        format!("{scheme} {jwt}").into()
    }
}

/// An RFC 9068 access token for one upstream: `aud` the route's audience (none where the route
/// names none), scopes narrowed to the route's required scopes (all granted scopes where the
/// route requires none), lifetime within the access token's, `cnf` carried over.
fn mint(
    cfg: &Config,
    minter: &mut Minter,
    info: &TokenInfo,
    route: &Route,
    now: u64,
    exp_ms: u64,
) -> String {
    let Some(a) = &cfg.assertions else {
        return String::new();
    };
    let mut c = serde_json::Map::new();
    c.insert("iss".into(), a.issuer.clone().into());
    // Only the token's own `sub`: the edge cannot tell a client-credentials token (RFC 9068
    // §2.2 would name the client) from a user's token whose answer lacks `sub`.
    if let Some(s) = &info.sub {
        c.insert("sub".into(), s.clone().into());
    }
    // Only the route's audience: a route without one names no upstream, and copying the
    // token's `aud` made the JWT its upstream receives good at every service the token was
    // for (with all its scopes, since such routes often require none).
    if let Some(aud) = &route.audience {
        c.insert("aud".into(), aud.clone().into());
    }
    if let Some(v) = &info.client_id {
        c.insert("client_id".into(), v.clone().into());
    }
    let scope = if route.required_scopes.is_empty() {
        info.scopes.join(" ")
    } else {
        route.required_scopes.join(" ")
    };
    if !scope.is_empty() {
        c.insert("scope".into(), scope.into());
    }
    c.insert("iat".into(), (now / 1000).into());
    c.insert("exp".into(), (exp_ms / 1000).into());
    c.insert("jti".into(), minter.next_id().into());
    if let Some(v) = &info.sid {
        c.insert("sid".into(), v.clone().into());
    }
    let mut cnf = serde_json::Map::new();
    if let Some(v) = &info.cnf_jkt {
        cnf.insert("jkt".into(), v.clone().into());
    }
    if let Some(v) = &info.cnf_x5t_s256 {
        cnf.insert("x5t#S256".into(), v.clone().into());
    }
    if !cnf.is_empty() {
        c.insert("cnf".into(), cnf.into());
    }
    a.key.sign("at+jwt", &serde_json::Value::Object(c))
}
