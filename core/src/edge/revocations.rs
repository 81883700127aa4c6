//! Revocation: revocations from operators, other instances and Security Event Tokens, the
//! admin route, CAEP invalidations, and what is published to the other instances.

use std::collections::VecDeque;

use crate::action::{Action, AuditEvent, AuditKind, SharedPublish};
use crate::config::Mode;
use crate::introspection::media_type;
use crate::replay::Seen;
use crate::revocation::{Extended, Forgotten, Kind, Origin, Revocation, RevocationError, Selector};
use crate::secret::{Fingerprint, Secret};
use crate::set::{SetAction, parse_security_event};

use super::Edge;

/// How far ahead [`Edge::default_until`] follows the latest token `exp` seen: 30 days.
const LATEST_EXP_HORIZON_MS: u64 = 30 * 24 * 3600 * 1000;

impl Edge {
    /// Handles a revocation. After this returns, no matching token is forwarded again, including
    /// one whose introspection is in flight (invariant 2). `Origin::Local` revocations are
    /// queued as [`SharedPublish`] for the other instances.
    pub fn handle_revocation(
        &mut self,
        now: u64,
        revocation: Revocation,
        origin: Origin,
    ) -> Result<(), RevocationError> {
        let now = self.tick(now);
        let until_ms = match revocation.until {
            Some(u) => {
                let ms = u.saturating_mul(1000);
                if ms <= now {
                    return Err(RevocationError::Invalid("until is in the past".into()));
                }
                Some(ms)
            }
            None => None,
        };
        // Without `until`: at least as long as the instance that published it keeps it.
        let floor = revocation.keep_until.map_or(0, |k| k.saturating_mul(1000));
        // When it was revoked (what a `sub` / `client_id` / `sid` entry covers): the
        // publisher's time, never later than ours.
        let at_ms = revocation
            .since
            .map_or(now, |s| s.saturating_mul(1000).min(now));
        let key = match &revocation.selector {
            Selector::Token(t) => {
                // Split mode: the client holds the JWT's signature, and that is what requests
                // are keyed by; an operator holding the whole JWT revokes the same token.
                let t = match (self.cfg.mode, t.rsplit_once('.')) {
                    (Mode::Split, Some((head, signature)))
                        if signature.is_empty() || head.matches('.').count() != 1 =>
                    {
                        return Err(RevocationError::Invalid(
                            "in split mode a token is the signature the client holds or the whole JWT".into(),
                        ));
                    }
                    (Mode::Split, Some((_, signature))) => signature,
                    _ => t.as_str(),
                };
                Forgotten::Fingerprint(self.fp.fingerprint(t))
            }
            Selector::Fingerprint(fp) => Forgotten::Fingerprint(*fp),
            Selector::Jti(v) => Forgotten::Named(Kind::Jti, v.clone()),
            Selector::Sub(v) => Forgotten::Named(Kind::Sub, v.clone()),
            Selector::ClientId(v) => Forgotten::Named(Kind::ClientId, v.clone()),
            Selector::Sid(v) => Forgotten::Named(Kind::Sid, v.clone()),
        };
        let (overflow, kept_until) = match &key {
            Forgotten::Fingerprint(fp) => self.revoke_fingerprint(*fp, until_ms, floor, now),
            Forgotten::Named(kind, name) => {
                let u = until_ms.unwrap_or_else(|| self.default_until(now).max(floor));
                let o = self
                    .revocations
                    .add_named(*kind, name, at_ms, u, until_ms.is_some());
                (o, u)
            }
        };
        let fp = match key {
            Forgotten::Fingerprint(fp) => Some(fp),
            Forgotten::Named(..) => None,
        };
        if let Some(forgotten) = overflow {
            // Forgetting a revocation is only safe if what it covered is re-checked at the AS.
            let n = match &forgotten {
                Forgotten::Fingerprint(f) => usize::from(self.cache.remove(f).is_some()),
                Forgotten::Named(kind, name) => self.cache.purge(|_, info| {
                    let field = match kind {
                        Kind::Jti => &info.jti,
                        Kind::Sub => &info.sub,
                        Kind::ClientId => &info.client_id,
                        Kind::Sid => &info.sid,
                    };
                    field.as_deref() == Some(name.as_str())
                }),
            };
            self.metrics.revocation_overflows += 1;
            let mut ev = AuditEvent::new(AuditKind::RevocationOverflow);
            ev.detail = Some(format!(
                "revocation set full: the soonest-expiring entry was dropped and {n} cached decisions it covered"
            ));
            self.audit(ev);
        }
        self.metrics.revocations += 1;
        let mut ev = AuditEvent::new(AuditKind::Revoked);
        ev.fingerprint = fp;
        let by_fingerprint = fp.is_some();
        ev.detail = Some(
            if by_fingerprint && origin == Origin::Local && self.cfg.fingerprint_key.is_none() {
                // Published by fingerprint, keyed by this instance's own seed: no other instance
                // computes the same fingerprints, so it cannot match there.
                format!(
                    "{}; published by fingerprint, which other instances cannot match without a shared cache.fingerprint_key",
                    selector_name(&revocation.selector)
                )
            } else {
                selector_name(&revocation.selector).into()
            },
        );
        self.audit(ev);
        if origin == Origin::Local {
            let since = matches!(key, Forgotten::Named(..)).then_some(at_ms);
            self.actions
                .push_back(shared_revocation(&key, revocation.until, kept_until, since));
        }
        Ok(())
    }

    /// How long a revocation without `until` (and without a known `exp` of the token) is kept:
    /// `revocation.default_ttl`, and at least until every active token this edge has
    /// introspected so far has expired (a token issued before the revocation can live that
    /// long), looking at most [`LATEST_EXP_HORIZON_MS`] ahead: one "never expiring" token must
    /// not make every later revocation permanent (the bounded set would then overflow and drop
    /// the soonest-expiring, most precise entries). Entries are also kept until the exp of any
    /// token they are seen to match (`RevocationSet::matches`).
    fn default_until(&self, now: u64) -> u64 {
        let seen = self
            .latest_exp_ms
            .min(now.saturating_add(LATEST_EXP_HORIZON_MS));
        now.saturating_add(self.cfg.revocation_default_ttl_ms)
            .max(seen.saturating_add(self.cfg.leeway_ms))
    }

    /// Revokes one token by its fingerprint, kept until `until_ms` (the revoker's, fixed), else
    /// until its exp when this edge knows it, else by `default_until`, and at least until
    /// `floor`. Returns what the set forgot to make room, and how long the entry is kept (ms).
    fn revoke_fingerprint(
        &mut self,
        fp: Fingerprint,
        until_ms: Option<u64>,
        floor: u64,
        now: u64,
    ) -> (Option<Forgotten>, u64) {
        let until = until_ms.unwrap_or_else(|| {
            self.cache
                .peek(&fp)
                .and_then(|e| e.info.exp)
                .map(|e| e.saturating_mul(1000).saturating_add(self.cfg.leeway_ms))
                .filter(|e| *e > now)
                .unwrap_or_else(|| self.default_until(now))
                .max(floor)
        });
        let overflow = self
            .revocations
            .add_fingerprint(fp, now, until, until_ms.is_some());
        self.cache.remove(&fp);
        (overflow, until)
    }

    /// Handles an RFC 8417 Security Event Token (CAEP session-revoked and token-claims-change,
    /// RISC account events), verified against `revocation.set_key`. Duplicate `jti`s are
    /// accepted and ignored; a SET whose `iat` is older than `revocation.default_ttl` is refused
    /// (its `jti` may have been forgotten).
    pub fn handle_security_event(&mut self, now: u64, set: &str) -> Result<(), RevocationError> {
        let now = self.tick(now);
        let parsed = parse_security_event(&self.cfg, set, now)?;
        // Its jti is remembered for `revocation.default_ttl` past its `iat` (or past now, if
        // later); a SET older than that could no longer be told from a replay, and is refused
        // (posted again later it revoked the sessions started since).
        let iat_ms = parsed.iat.saturating_mul(1000);
        let window = self.cfg.revocation_default_ttl_ms;
        if iat_ms.saturating_add(window) < now {
            return Err(RevocationError::Invalid(
                "SET: iat is older than revocation.default_ttl (it could be a replay)".into(),
            ));
        }
        let id = self.fp.fingerprint(&format!("set\0{}", parsed.jti));
        let remember_until = now
            .max(iat_ms.saturating_add(self.cfg.leeway_ms))
            .saturating_add(window);
        match self.set_replay.insert(id, remember_until, now) {
            Seen::Replay => return Ok(()),
            Seen::Full => {
                return Err(RevocationError::Invalid(
                    "too many recent security events; retry later".into(),
                ));
            }
            Seen::New => {}
        }
        let mut ev = AuditEvent::new(AuditKind::SecurityEvent);
        ev.detail = Some(format!("events={}", parsed.actions.len()));
        self.audit(ev);
        for action in parsed.actions {
            match action {
                SetAction::Revoke(selector) => {
                    self.handle_revocation(
                        now,
                        Revocation {
                            selector,
                            until: None,
                            keep_until: None,
                            since: None,
                        },
                        Origin::Local,
                    )?;
                }
                SetAction::Invalidate(selector) => self.invalidate(&selector),
            }
        }
        Ok(())
    }

    /// Drops cached decisions for matching tokens so their claims are fetched again, without
    /// refusing them (CAEP token-claims-change). In-flight results are used once, not cached.
    fn invalidate(&mut self, selector: &Selector) {
        let fp_target = match selector {
            Selector::Token(t) => Some(self.fp.fingerprint(t)),
            Selector::Fingerprint(f) => Some(*f),
            _ => None,
        };
        let n = self.cache.purge(|fp, info| match selector {
            Selector::Token(_) | Selector::Fingerprint(_) => Some(*fp) == fp_target,
            Selector::Jti(v) => info.jti.as_ref() == Some(v),
            Selector::Sub(v) => info.sub.as_ref() == Some(v),
            Selector::ClientId(v) => info.client_id.as_ref() == Some(v),
            Selector::Sid(v) => info.sid.as_ref() == Some(v),
        });
        for p in self.pending.values_mut() {
            p.no_cache = true;
        }
        let mut ev = AuditEvent::new(AuditKind::Invalidated);
        ev.fingerprint = fp_target;
        ev.detail = Some(format!("{} entries", n));
        self.audit(ev);
    }

    /// Whether `authorization` (an `Authorization` header value) carries the `[admin]` bearer
    /// token, for host routes other than revocation that only operators may use (the
    /// middleware's metrics route): `None` when no `[admin]` token is configured, so the host
    /// knows there is nothing to check against.
    pub fn admin_authorized(&self, authorization: Option<&str>) -> Option<bool> {
        let secret = self.cfg.admin_token.as_ref()?;
        Some(bearer_is(secret, authorization))
    }

    /// The revocation route every host exposes, in one place: `content_type` and
    /// `authorization` are the request's headers, `body` its bytes. A JSON selector needs the
    /// `[admin]` bearer secret; an `application/secevent+jwt` body is authenticated by its
    /// signature. `Ok` → answer 204; `Err(e)` → answer `e.status()` with `e.body()`.
    pub fn handle_admin_revocation(
        &mut self,
        now: u64,
        content_type: Option<&str>,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<(), RevocationError> {
        let mt = media_type(content_type);
        if mt == "application/secevent+jwt" {
            let text = std::str::from_utf8(body)
                .map_err(|_| RevocationError::Invalid("body is not UTF-8".into()))?;
            return self.handle_security_event(now, text.trim());
        }
        let Some(secret) = &self.cfg.admin_token else {
            return Err(RevocationError::Unauthorized(
                "no [admin] token is configured".into(),
            ));
        };
        if !bearer_is(secret, authorization) {
            return Err(RevocationError::Unauthorized(
                "missing or wrong admin bearer token".into(),
            ));
        }
        if mt != "application/json" {
            return Err(RevocationError::Invalid(
                "content-type must be application/json or application/secevent+jwt".into(),
            ));
        }
        let revocation = Revocation::from_json(body)?;
        self.handle_revocation(now, revocation, Origin::Local)
    }
}

/// Whether `authorization` is `Bearer <secret>` (compared in constant time).
fn bearer_is(secret: &Secret, authorization: Option<&str>) -> bool {
    authorization
        .and_then(|a| {
            let (scheme, rest) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .is_some_and(|p| secret.ct_eq(p))
}

fn selector_name(s: &Selector) -> &'static str {
    match s {
        Selector::Token(_) => "selector=token",
        Selector::Fingerprint(_) => "selector=fingerprint",
        Selector::Jti(_) => "selector=jti",
        Selector::Sub(_) => "selector=sub",
        Selector::ClientId(_) => "selector=client_id",
        Selector::Sid(_) => "selector=sid",
    }
}

/// The message telling the other instances of a revocation: its selector, and the revoker's
/// `until` (Unix s) passed on as given — fixed on every instance — or else `keep_until`, how long
/// this instance keeps it (`kept_until_ms`): a floor each receiver extends by its own rules
/// (`default_until`, the exp of any token it sees match). Published as a fixed `until`, such a
/// default lapsed on a receiver while a matching token still lived; not published at all, a
/// receiver that had not seen the token kept it only `default_ttl`. `since_ms`: when it was
/// revoked, for the selectors that cover tokens issued before then.
fn shared_revocation(
    key: &Forgotten,
    until: Option<u64>,
    kept_until_ms: u64,
    since_ms: Option<u64>,
) -> Action {
    let mut message = key.selector_json();
    match until {
        Some(u) => message["until"] = u.into(),
        None => message["keep_until"] = kept_until_ms.div_ceil(1000).into(),
    }
    if let Some(at) = since_ms {
        message["since"] = (at / 1000).into();
    }
    Action::SharedPublish(SharedPublish {
        message: message.to_string(),
    })
}

/// Revocations kept longer because a token they cover was seen (its exp is later than this
/// instance kept them): published again with the new `keep_until`, so an instance that has not
/// seen the token keeps them as long (it extends its own entry; it does not publish in turn).
pub(super) fn publish_extensions(actions: &mut VecDeque<Action>, extended: Vec<Extended>) {
    for e in extended {
        actions.push_back(shared_revocation(&e.key, None, e.until_ms, Some(e.at_ms)));
    }
}
