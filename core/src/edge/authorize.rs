//! Authorization on every request (invariant 4): the checks a token's claims must pass for a
//! route and a request's binding, and the `Forward` or `Reject` each decision queues.

use std::sync::Arc;

use crate::action::{Action, AuditEvent, AuditKind, Forward, Reason, RequestId};
use crate::cache::Entry;
use crate::config::Config;
use crate::replay::Seen;
use crate::secret::Fingerprint;
use crate::token::TokenInfo;

use super::intake::Binding;
use super::mint::{Minter, upstream_value};
use super::revocations::publish_extensions;
use super::tickets::Waiter;
use super::{Edge, queue_audit};

impl Edge {
    /// Authorizes a request against the cached entry for `fp` and queues the decision.
    pub(super) fn decide_cached(
        &mut self,
        id: RequestId,
        fp: Fingerprint,
        route: usize,
        binding: &Binding,
        now: u64,
        hit: bool,
    ) -> bool {
        let Self {
            cache,
            cfg,
            minter,
            actions,
            metrics,
            revocations,
            muted,
            ..
        } = self;
        // One lookup per request: the entry found here is the one decided on.
        let Some(entry) = cache.get_mut(&fp, now) else {
            return false;
        };
        if entry.epoch != revocations.epoch {
            if let Some(extended) = revocations.matches(&fp, &entry.info, cfg.leeway_ms) {
                publish_extensions(actions, extended);
                cache.remove(&fp);
                cache.insert_negative(
                    fp,
                    now.saturating_add(cfg.negative_ttl_ms.max(1)),
                    Reason::Revoked,
                );
                self.reject(id, Reason::Revoked, Some(fp), binding.dpop, None, None);
                return true;
            }
            entry.epoch = revocations.epoch;
        }
        if hit {
            metrics.cache_hits += 1;
            let mut ev = AuditEvent::new(AuditKind::CacheHit);
            ev.request_id = Some(id);
            ev.fingerprint = Some(fp);
            queue_audit(actions, *muted, ev);
        }
        let mut resized = None;
        let decision = decide(cfg, minter, entry, route, binding, now, &mut resized);
        let info = entry.info.clone();
        if let Some((before, after)) = resized {
            cache.resized(before, after);
        }
        self.emit_decision(decision, id, fp, route, binding, info, now);
        true
    }

    /// Queues the `Forward` or `Reject` for one authorization decision. A request let through
    /// with a DPoP proof records the proof's `jti` here, and only here (RFC 9449 §11.1): a proof
    /// for a token that is unknown, inactive, revoked or bound to another key never takes room
    /// in the bounded replay set, so nobody without a valid bound token can fill it.
    #[allow(clippy::too_many_arguments)]
    fn emit_decision(
        &mut self,
        decision: Result<Arc<str>, Reason>,
        id: RequestId,
        fp: Fingerprint,
        route: usize,
        binding: &Binding,
        info: Arc<TokenInfo>,
        now: u64,
    ) {
        if decision.is_ok()
            && let Some((proof, until)) = binding.proof
        {
            // Remembered at least past `now`: the window may have closed while the request
            // waited for its introspection, and a second waiter with the same proof, decided
            // in this same call, must still find it.
            match self
                .dpop_replay
                .insert(proof, until.max(now.saturating_add(1)), now)
            {
                Seen::New => {}
                Seen::Replay => {
                    let why = Some(crate::dpop::PROOF_REPLAYED);
                    return self.reject(id, Reason::InvalidDpopProof, Some(fp), true, None, why);
                }
                Seen::Full => {
                    let why = Some("DPoP replay set full");
                    return self.reject(id, Reason::Overloaded, Some(fp), true, None, why);
                }
            }
        }
        match decision {
            Ok(value) => {
                self.metrics.forwarded += 1;
                self.actions.push_back(Action::Forward(Forward {
                    request_id: id,
                    header_name: self.header_name.clone(),
                    header_value: value,
                    strip_headers: self.strip.clone(),
                    token: info,
                    fingerprint: fp,
                    rewritten_path: binding.rewritten_path.clone(),
                }));
            }
            Err(reason) => {
                let dpop =
                    binding.dpop || (reason == Reason::SenderMismatch && info.cnf_jkt.is_some());
                let scopes = (reason == Reason::InsufficientScope)
                    .then(|| self.cfg.routes[route].required_scopes.join(" "));
                self.reject(id, reason, Some(fp), dpop, scopes, None);
            }
        }
    }

    /// Decides for one waiter on an answer that is not cached (it may not be, or is already
    /// stale): each waiter is authorized against the entry as it stands.
    pub(super) fn decide_uncached(
        &mut self,
        w: Waiter,
        fp: Fingerprint,
        entry: &mut Entry,
        now: u64,
    ) {
        // Not in the cache yet: its size is counted when it is inserted.
        let decision = decide(
            &self.cfg,
            &mut self.minter,
            entry,
            w.route,
            &w.binding,
            now,
            &mut None,
        );
        self.emit_decision(
            decision,
            w.request_id,
            fp,
            w.route,
            &w.binding,
            entry.info.clone(),
            now,
        );
    }
}

/// Authorization on every request (invariant 4), then the upstream header value.
fn decide(
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
    if info.exp.is_some_and(|e| e.saturating_mul(1000) <= now) {
        return Err(Reason::Expired);
    }
    if info
        .nbf
        .is_some_and(|n| n.saturating_mul(1000) > now.saturating_add(cfg.leeway_ms))
    {
        return Err(Reason::InvalidToken);
    }
    if info.iss.as_ref().is_some_and(|i| *i != cfg.issuer) {
        return Err(Reason::WrongIssuer);
    }
    if info.cnf_unsupported {
        return Err(Reason::SenderMismatch);
    }
    match (&info.cnf_jkt, b.dpop) {
        (Some(jkt), true) if b.jkt.as_ref() == Some(jkt) => {}
        (Some(_), _) => return Err(Reason::SenderMismatch),
        // RFC 9449 §7.1: the DPoP scheme is for DPoP-bound tokens only.
        (None, true) => return Err(Reason::SenderMismatch),
        (None, false) => {}
    }
    if let Some(x5t) = &info.cnf_x5t_s256
        && b.cert.as_ref() != Some(x5t)
    {
        return Err(Reason::SenderMismatch);
    }
    if let Some(aud) = &route.audience
        && !info.aud.iter().any(|a| a == aud)
    {
        return Err(Reason::WrongAudience);
    }
    if !info.has_scopes(&route.required_scopes) {
        return Err(Reason::InsufficientScope);
    }
    upstream_value(cfg, minter, entry, route_idx, b, now, resized)
}
