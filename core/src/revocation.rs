//! Revocation selectors and the bounded revocation set.
//!
//! Which error is dangerous: a *spurious* revocation (a token refused that was still good) is
//! safe; a *missed* one is a security bug. So matching errs towards refusing: a `sub`, `client_id`
//! or `sid` revocation refuses every matching token issued at or before it, and every matching
//! token whose `iat` is unknown; and when the set is full the core forgets the soonest-expiring entry
//! and drops every cached decision it covered, so those tokens are re-checked at the authorization
//! server.

use std::collections::{BTreeSet, HashMap};

use serde::Deserialize;

use crate::secret::{Fingerprint, FingerprintBuild};
use crate::token::TokenInfo;

/// What to revoke.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Selector {
    /// A raw token: fingerprinted at once, never stored.
    Token(String),
    /// A token fingerprint (as printed in audit events).
    Fingerprint(Fingerprint),
    /// The token's `jti`.
    Jti(String),
    /// Every token of this subject issued up to now.
    Sub(String),
    /// Every token of this client issued up to now.
    ClientId(String),
    /// Every token of this session.
    Sid(String),
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token({REDACTED})"),
            Self::Fingerprint(x) => write!(f, "Fingerprint({x})"),
            Self::Jti(x) => write!(f, "Jti({x:?})"),
            Self::Sub(x) => write!(f, "Sub({x:?})"),
            Self::ClientId(x) => write!(f, "ClientId({x:?})"),
            Self::Sid(x) => write!(f, "Sid({x:?})"),
        }
    }
}

/// A revocation: a selector and, optionally, how long to keep it (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// What is revoked.
    pub selector: Selector,
    /// Keep the revocation until this Unix time (seconds), exactly; default: the token's `exp`
    /// when known, else `revocation.default_ttl` from now, extended by this edge's rules.
    pub until: Option<u64>,
    /// Without `until`: keep it at least until this Unix time (seconds), and longer by this
    /// edge's own rules. What an instance publishes when the revoker gave no `until`: how long
    /// it keeps the revocation itself, so no receiver forgets it sooner.
    pub keep_until: Option<u64>,
    /// A `sub` / `client_id` / `sid` revocation covers the tokens issued (`iat`) up to this Unix
    /// time (seconds); default, and at the latest: when it is handled. What an instance
    /// publishes: when it handled the revocation, so a receiver covers the same tokens (not
    /// those issued between the revocation and the message's arrival).
    pub since: Option<u64>,
}

/// Where a revocation came from: `Local` ones are published to other instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From this instance's admin route or API.
    Local,
    /// From the shared channel (already published by its origin).
    Shared,
}

/// A revocation that was not accepted. `status()` is the HTTP status for admin routes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    /// Not authenticated: no or wrong admin token, or a SET that does not verify.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The body is malformed.
    #[error("invalid revocation: {0}")]
    Invalid(String),
}

impl RevocationError {
    /// 401 or 400.
    pub fn status(&self) -> u16 {
        match self {
            Self::Unauthorized(_) => 401,
            Self::Invalid(_) => 400,
        }
    }

    /// The JSON body for admin routes: `{"error": "...", "error_description": "..."}`.
    pub fn body(&self) -> String {
        let (code, msg) = match self {
            Self::Unauthorized(m) => ("unauthorized", m),
            Self::Invalid(m) => ("invalid_request", m),
        };
        serde_json::json!({ "error": code, "error_description": msg }).to_string()
    }
}

impl Revocation {
    /// Parses the JSON selector every host accepts: exactly one of `token`, `fingerprint`,
    /// `jti`, `sub`, `client_id`, `sid`, and optionally `until` or `keep_until`, and `since` (Unix
    /// seconds).
    pub fn from_json(body: &[u8]) -> Result<Self, RevocationError> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            token: Option<String>,
            fingerprint: Option<String>,
            jti: Option<String>,
            sub: Option<String>,
            client_id: Option<String>,
            sid: Option<String>,
            until: Option<u64>,
            keep_until: Option<u64>,
            since: Option<u64>,
        }
        let b: Body = serde_json::from_slice(body).map_err(|e| {
            // serde's message may quote a value: make sure it never quotes a token.
            let msg = e.to_string();
            RevocationError::Invalid(
                if msg.contains("unknown field") || msg.contains("duplicate field") {
                    msg.split(", expected").next().unwrap_or("").to_string()
                } else {
                    format!(
                        "body must be a JSON object with one selector (line {}, column {})",
                        e.line(),
                        e.column()
                    )
                },
            )
        })?;
        let mut selectors = Vec::new();
        if let Some(t) = b.token {
            selectors.push(Selector::Token(t));
        }
        if let Some(f) = b.fingerprint {
            let fp = f
                .parse()
                .map_err(|m: &str| RevocationError::Invalid(format!("fingerprint: {m}")))?;
            selectors.push(Selector::Fingerprint(fp));
        }
        if let Some(v) = b.jti {
            selectors.push(Selector::Jti(v));
        }
        if let Some(v) = b.sub {
            selectors.push(Selector::Sub(v));
        }
        if let Some(v) = b.client_id {
            selectors.push(Selector::ClientId(v));
        }
        if let Some(v) = b.sid {
            selectors.push(Selector::Sid(v));
        }
        if selectors.len() != 1 {
            return Err(RevocationError::Invalid(
                "exactly one of token, fingerprint, jti, sub, client_id, sid is required".into(),
            ));
        }
        let selector = selectors.remove(0);
        let empty = match &selector {
            Selector::Token(s)
            | Selector::Jti(s)
            | Selector::Sub(s)
            | Selector::ClientId(s)
            | Selector::Sid(s) => s.is_empty() || s.len() > 4096,
            Selector::Fingerprint(_) => false,
        };
        if empty {
            return Err(RevocationError::Invalid(
                "the selector value must be 1 to 4096 characters".into(),
            ));
        }
        Ok(Self {
            selector,
            until: b.until,
            keep_until: b.keep_until,
            since: b.since,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// When the revocation was handled (ms).
    at_ms: u64,
    /// When it may be forgotten (ms).
    until_ms: u64,
    /// `until_ms` was set by whoever revoked (`until`): kept as given, never extended by
    /// [`RevocationSet::matches`].
    fixed: bool,
}

/// Moves `e`'s expiry, indexed in `order` under `key`, to `until_ms` if that is later (the one
/// place the index and the entry are changed together after insertion); whether it moved.
fn extend(
    order: &mut BTreeSet<(u64, Forgotten)>,
    e: &mut Entry,
    key: &Forgotten,
    until_ms: u64,
) -> bool {
    if until_ms <= e.until_ms {
        return false;
    }
    order.remove(&(e.until_ms, key.clone()));
    e.until_ms = until_ms;
    order.insert((until_ms, key.clone()));
    true
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Kind {
    Jti,
    Sub,
    ClientId,
    Sid,
}

impl Kind {
    /// The member naming it in a JSON selector.
    pub(crate) const fn field(self) -> &'static str {
        match self {
            Self::Jti => "jti",
            Self::Sub => "sub",
            Self::ClientId => "client_id",
            Self::Sid => "sid",
        }
    }
}

/// An entry [`RevocationSet::matches`] kept longer: its key, when it was revoked and its new
/// expiry (ms).
#[derive(Debug)]
pub(crate) struct Extended {
    pub(crate) key: Forgotten,
    pub(crate) at_ms: u64,
    pub(crate) until_ms: u64,
}

impl Forgotten {
    /// The JSON selector of this entry, as other instances read it.
    pub(crate) fn selector_json(&self) -> serde_json::Value {
        match self {
            Self::Fingerprint(fp) => serde_json::json!({ "fingerprint": fp.to_string() }),
            Self::Named(kind, name) => serde_json::json!({ kind.field(): name }),
        }
    }
}

/// A revocation set key: what [`RevocationSet::add_fingerprint`] / `add_named` may forget.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Forgotten {
    Fingerprint(Fingerprint),
    Named(Kind, String),
}

/// The revocation set. `epoch` increases on every addition, so cache entries checked at the
/// current epoch need no re-check. `order` indexes entries by expiry, so expiring and making room
/// cost O(log n).
#[derive(Debug)]
pub(crate) struct RevocationSet {
    fps: HashMap<Fingerprint, Entry, FingerprintBuild>,
    named: [HashMap<String, Entry>; 4],
    order: BTreeSet<(u64, Forgotten)>,
    pub(crate) epoch: u64,
    max: usize,
}

fn slot(kind: Kind) -> usize {
    match kind {
        Kind::Jti => 0,
        Kind::Sub => 1,
        Kind::ClientId => 2,
        Kind::Sid => 3,
    }
}

impl RevocationSet {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            fps: HashMap::default(),
            named: Default::default(),
            order: BTreeSet::new(),
            epoch: 0,
            max,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// Adds a revocation. Returns the entry forgotten to stay within the bound, if any: the
    /// caller must then drop cached decisions it covered, so they are re-checked at the AS.
    pub(crate) fn add_fingerprint(
        &mut self,
        fp: Fingerprint,
        at_ms: u64,
        until_ms: u64,
        fixed: bool,
    ) -> Option<Forgotten> {
        self.epoch += 1;
        let key = Forgotten::Fingerprint(fp);
        if let Some(e) = self.fps.get_mut(&fp) {
            e.fixed &= fixed;
            extend(&mut self.order, e, &key, until_ms);
            return None;
        }
        let forgotten = self.make_room();
        self.fps.insert(
            fp,
            Entry {
                at_ms,
                until_ms,
                fixed,
            },
        );
        self.order.insert((until_ms, key));
        forgotten
    }

    pub(crate) fn add_named(
        &mut self,
        kind: Kind,
        name: &str,
        at_ms: u64,
        until_ms: u64,
        fixed: bool,
    ) -> Option<Forgotten> {
        self.epoch += 1;
        if let Some(e) = self.named[slot(kind)].get_mut(name) {
            // A later revocation of the same subject covers later tokens too.
            e.at_ms = e.at_ms.max(at_ms);
            e.fixed &= fixed;
            if until_ms > e.until_ms {
                let key = Forgotten::Named(kind, name.to_string());
                extend(&mut self.order, e, &key, until_ms);
            }
            return None;
        }
        let forgotten = self.make_room();
        self.named[slot(kind)].insert(
            name.to_string(),
            Entry {
                at_ms,
                until_ms,
                fixed,
            },
        );
        self.order
            .insert((until_ms, Forgotten::Named(kind, name.to_string())));
        forgotten
    }

    /// Forgets the entry that expires first when full.
    fn make_room(&mut self) -> Option<Forgotten> {
        if self.order.len() < self.max {
            return None;
        }
        let (_, victim) = self.order.pop_first()?;
        self.remove_key(&victim);
        Some(victim)
    }

    fn remove_key(&mut self, key: &Forgotten) {
        match key {
            Forgotten::Fingerprint(fp) => {
                self.fps.remove(fp);
            }
            Forgotten::Named(kind, name) => {
                self.named[slot(*kind)].remove(name);
            }
        }
    }

    pub(crate) fn is_fingerprint_revoked(&self, fp: &Fingerprint) -> bool {
        self.fps.contains_key(fp)
    }

    /// Whether a token with this fingerprint and these claims is revoked. A `sub` / `client_id`
    /// / `sid` revocation covers tokens issued (`iat`) no later than it was handled, by our
    /// clock: no skew margin, because a margin would refuse a token issued right after the
    /// revocation (a user signing in again) for its whole lifetime. Keep the clocks in sync.
    ///
    /// Every entry that matches is kept at least until the token expires (its `exp` plus
    /// `leeway_ms`): a revocation stored with a default lifetime (the token's `exp` unknown
    /// then) must not be forgotten while a token it covers can still be presented. An entry
    /// whose `until` the revoker set is left as it is.
    ///
    /// `None`: not revoked. `Some(extended)`: revoked, and the entries this call kept longer,
    /// for the caller to tell the other instances.
    pub(crate) fn matches(
        &mut self,
        fp: &Fingerprint,
        info: &TokenInfo,
        leeway_ms: u64,
    ) -> Option<Vec<Extended>> {
        let keep_until = info
            .exp
            .map_or(0, |e| e.saturating_mul(1000).saturating_add(leeway_ms));
        let mut keys = Vec::new();
        if self.fps.contains_key(fp) {
            keys.push(Forgotten::Fingerprint(*fp));
        }
        if let Some(jti) = &info.jti
            && self.named[slot(Kind::Jti)].contains_key(jti)
        {
            keys.push(Forgotten::Named(Kind::Jti, jti.clone()));
        }
        let issued_before = |e: &Entry| {
            info.iat
                .is_none_or(|iat| iat.saturating_mul(1000) <= e.at_ms)
        };
        for (kind, v) in [
            (Kind::Sub, &info.sub),
            (Kind::ClientId, &info.client_id),
            (Kind::Sid, &info.sid),
        ] {
            if let Some(v) = v
                && self.named[slot(kind)].get(v).is_some_and(issued_before)
            {
                keys.push(Forgotten::Named(kind, v.clone()));
            }
        }
        if keys.is_empty() {
            return None;
        }
        Some(
            keys.into_iter()
                .filter_map(|key| {
                    let at_ms = self.keep_until(&key, keep_until)?;
                    Some(Extended {
                        key,
                        at_ms,
                        until_ms: keep_until,
                    })
                })
                .collect(),
        )
    }

    /// Moves the expiry of `key`'s entry to `until_ms` if that is later and the revoker did not
    /// fix it; if it moved, when the entry was revoked (`at_ms`).
    fn keep_until(&mut self, key: &Forgotten, until_ms: u64) -> Option<u64> {
        let entry = match key {
            Forgotten::Fingerprint(fp) => self.fps.get_mut(fp),
            Forgotten::Named(kind, name) => self.named[slot(*kind)].get_mut(name),
        };
        match entry {
            Some(e) if !e.fixed => extend(&mut self.order, e, key, until_ms).then_some(e.at_ms),
            _ => None,
        }
    }

    /// Forgets expired revocations.
    pub(crate) fn expire(&mut self, now_ms: u64) {
        while let Some((until, _)) = self.order.first() {
            if *until > now_ms {
                break;
            }
            if let Some((_, key)) = self.order.pop_first() {
                self.remove_key(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_selector_needs_exactly_one() {
        assert!(Revocation::from_json(br#"{"sub":"alice"}"#).is_ok());
        assert!(Revocation::from_json(br#"{"sub":"alice","jti":"x"}"#).is_err());
        assert!(Revocation::from_json(br#"{}"#).is_err());
        assert!(Revocation::from_json(br#"{"user":"alice"}"#).is_err());
        assert!(Revocation::from_json(br#"{"sub":""}"#).is_err());
        assert!(Revocation::from_json(br#"{"fingerprint":"nothex"}"#).is_err());
        let r = Revocation::from_json(br#"{"jti":"j1","until":1700000000}"#).unwrap();
        assert_eq!(r.until, Some(1_700_000_000));
    }

    #[test]
    fn error_messages_never_echo_the_token() {
        let e = Revocation::from_json(br#"{"token": 12345678901234567890123}"#).unwrap_err();
        assert!(!e.to_string().contains("1234567890"));
        let e = Revocation::from_json(br#"{"token":"secret-token-value","sub":"x"}"#).unwrap_err();
        assert!(!e.to_string().contains("secret-token-value"));
    }

    #[test]
    fn subject_revocation_covers_earlier_tokens_only() {
        let mut s = RevocationSet::new(10);
        s.add_named(Kind::Sub, "alice", 10_000, 100_000, false);
        let fp = Fingerprint([0; 16]);
        let mut t = TokenInfo {
            sub: Some("alice".into()),
            iat: Some(5),
            ..Default::default()
        };
        assert!(s.matches(&fp, &t, 0).is_some());
        t.iat = Some(11);
        assert!(s.matches(&fp, &t, 0).is_none());
        assert!(
            s.matches(&fp, &t, 60_000).is_none(),
            "no skew margin: a later token is not revoked"
        );
        t.iat = None;
        assert!(
            s.matches(&fp, &t, 0).is_some(),
            "unknown iat must be treated as revoked"
        );
        t.sub = Some("bob".into());
        assert!(s.matches(&fp, &t, 0).is_none());
    }

    #[test]
    fn a_match_keeps_the_entry_until_the_token_expires() {
        let mut s = RevocationSet::new(10);
        s.add_named(Kind::Sub, "alice", 10_000, 100_000, false);
        let fp = Fingerprint([0; 16]);
        let t = TokenInfo {
            sub: Some("alice".into()),
            iat: Some(5),
            exp: Some(500),
            ..Default::default()
        };
        assert!(s.matches(&fp, &t, 2_000).is_some());
        s.expire(400_000);
        assert_eq!(
            s.len(),
            1,
            "kept past its own until: the token lives to 500 s"
        );
        assert!(s.matches(&fp, &t, 2_000).is_some());
        s.expire(502_000);
        assert_eq!(s.len(), 0, "forgotten once exp + leeway has passed");
    }

    #[test]
    fn bounded_with_overflow_signal() {
        let mut s = RevocationSet::new(2);
        assert_eq!(s.add_named(Kind::Jti, "a", 0, 100, false), None);
        assert_eq!(s.add_named(Kind::Jti, "b", 0, 50, false), None);
        assert_eq!(
            s.add_named(Kind::Jti, "c", 0, 200, false),
            Some(Forgotten::Named(Kind::Jti, "b".into()))
        );
        assert_eq!(s.len(), 2);
        let info = |j: &str| TokenInfo {
            jti: Some(j.into()),
            ..Default::default()
        };
        let fp = Fingerprint([0; 16]);
        assert!(
            s.matches(&fp, &info("b"), 0).is_none(),
            "the soonest-expiring entry goes first"
        );
        assert!(s.matches(&fp, &info("a"), 0).is_some() && s.matches(&fp, &info("c"), 0).is_some());
        s.expire(100);
        assert_eq!(s.len(), 1);
    }
}
