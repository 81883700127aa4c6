//! Request intake: [`Edge::handle_request`], from a client request to a decision made at once
//! or a waiter on a ticket. The steps run in a fixed order, and the first that refuses the
//! request decides it: the path and its route, the credentials, the DPoP proof, the cached
//! decision, the negative cache and the revocations, the bounds, the introspection rate.

use std::borrow::Cow;

use crate::action::{AuditEvent, AuditKind, Reason, RequestId};
use crate::config::Mode;
use crate::dpop::{ProofKey, check_proof};
use crate::request::{
    Credentials, QueryToken, Request, credentials, htu_path, normalize_htu, query_token,
};
use crate::secret::{Fingerprint, Secret};

use super::Edge;
use super::tickets::Waiter;

/// What ties a request to the token it presents, checked by authorization on every request.
#[derive(Debug, Clone)]
pub(super) struct Binding {
    pub(super) dpop: bool,
    pub(super) jkt: Option<String>,
    /// The DPoP proof's replay id and lifetime, recorded when the request is let through.
    pub(super) proof: Option<(Fingerprint, u64)>,
    /// Split mode: the signature this request presented. The cache keeps only `header.payload.`
    /// of a reassembled JWT (invariant 1: not the credential the client holds); the forwarded
    /// value is completed with the signature each request brings (the same one: it is what the
    /// entry's fingerprint is computed from).
    pub(super) split_signature: Option<Secret>,
    pub(super) cert: Option<String>,
    pub(super) rewritten_path: Option<String>,
}

/// A request refused by one of the intake steps, before any ticket: what
/// [`Edge::handle_request`] rejects it with.
#[derive(Debug)]
pub(super) struct Refusal {
    reason: Reason,
    fp: Option<Fingerprint>,
    dpop: bool,
    /// Why, for the audit event only.
    detail: Option<&'static str>,
}

impl Refusal {
    /// Refused before a token was read: no fingerprint, a `Bearer` challenge.
    pub(super) fn request(reason: Reason, detail: Option<&'static str>) -> Self {
        Self {
            reason,
            fp: None,
            dpop: false,
            detail,
        }
    }

    /// Refused for the token `fp`, presented in the `DPoP` scheme when `dpop`.
    fn token(reason: Reason, fp: Fingerprint, dpop: bool, detail: Option<&'static str>) -> Self {
        Self {
            reason,
            fp: Some(fp),
            dpop,
            detail,
        }
    }
}

/// The token a request presents, and how.
struct Presented<'r> {
    token: Cow<'r, str>,
    /// In the `DPoP` authorization scheme.
    dpop: bool,
    /// From the `access_token` query parameter: the path without it, forwarded instead.
    rewritten_path: Option<String>,
}

/// A token bucket holding at most one second's worth of `rate`, refilled continuously from the
/// host's clock; `take` spends one token when there is one.
#[derive(Debug)]
pub(super) struct TokenBucket {
    rate: u64,
    /// Thousandths of a token.
    milli: u64,
    at: u64,
}

impl TokenBucket {
    pub(super) fn full(rate: u64, now: u64) -> Self {
        Self {
            rate,
            milli: rate.saturating_mul(1000),
            at: now,
        }
    }

    fn take(&mut self, now: u64) -> bool {
        let elapsed = now.saturating_sub(self.at);
        self.at = self.at.max(now);
        let cap = self.rate.saturating_mul(1000);
        // `rate` per second is `rate` thousandths of a token per millisecond.
        self.milli = self
            .milli
            .saturating_add(elapsed.saturating_mul(self.rate))
            .min(cap);
        if self.milli < 1000 {
            return false;
        }
        self.milli -= 1000;
        true
    }
}

impl Edge {
    /// A client request arrived. Queues a `Forward` or `Reject` for `req.id` now (cache hit,
    /// negative hit, bad request), or later when the introspection it queues (or joins) is
    /// answered.
    pub fn handle_request(&mut self, now: u64, req: &Request<'_>) {
        let now = self.tick(now);
        self.metrics.requests += 1;
        if let Err(r) = self.intake(now, req) {
            self.reject(req.id, r.reason, r.fp, r.dpop, None, r.detail);
        }
    }

    /// The steps of [`Edge::handle_request`], in order. `Ok` when the request was decided from
    /// the cache, joined a ticket in flight or opened one; `Err` when a step refused it.
    fn intake(&mut self, now: u64, req: &Request<'_>) -> Result<(), Refusal> {
        let route = self.route(req.path)?;
        let Presented {
            token,
            dpop,
            rewritten_path,
        } = self.presented(req)?;
        let token: &str = &token;
        let fp = self.fp.fingerprint(token);

        // A DPoP proof is checked per request, before anything can succeed (RFC 9449 §4.3).
        let proof = if dpop {
            Some(self.check_dpop(now, req, token, fp)?)
        } else {
            None
        };
        let binding = Binding {
            dpop,
            proof: proof.as_ref().map(|p| (p.replay_id, p.replay_until)),
            jkt: proof.map(|p| p.jkt),
            split_signature: (self.cfg.mode == Mode::Split).then(|| Secret::new(token.to_owned())),
            cert: req.client_cert_thumbprint.map(str::to_owned),
            rewritten_path,
        };

        // Positive cache: authorization still runs on every hit (invariant 4).
        if self.decide_cached(req.id, fp, route, &binding, now, true) {
            return Ok(());
        }
        self.check_known_refused(req.id, fp, dpop, now)?;
        self.count_miss(req.id, fp);

        let waiter = Waiter {
            request_id: req.id,
            route,
            binding,
        };
        self.check_bounds(fp, dpop)?;
        let Some(waiter) = self.coalesce(fp, waiter) else {
            return Ok(());
        };
        self.check_introspection_rate(now, fp, dpop)?;
        self.open_ticket(now, fp, token, waiter);
        Ok(())
    }

    /// The credentials: the token in the `Authorization` header (`Bearer` or `DPoP`), or in the
    /// `access_token` query parameter where `request.allow_query_token` allows it; never both.
    fn presented<'r>(&self, req: &Request<'r>) -> Result<Presented<'r>, Refusal> {
        let query = if self.cfg.allow_query_token {
            query_token(req.path)
        } else {
            QueryToken::Absent
        };
        let presented = |token, dpop, rewritten_path| Presented {
            token,
            dpop,
            rewritten_path,
        };
        match (credentials(req.headers), query) {
            (Credentials::Malformed(why), _) | (_, QueryToken::Malformed(why)) => {
                Err(Refusal::request(Reason::MalformedRequest, Some(why)))
            }
            (Credentials::Bearer(_) | Credentials::Dpop(_), QueryToken::One { .. }) => {
                let why = Some("the token was sent in more than one way");
                Err(Refusal::request(Reason::MalformedRequest, why))
            }
            (Credentials::None, QueryToken::Absent) => {
                Err(Refusal::request(Reason::MissingToken, None))
            }
            (Credentials::None, QueryToken::One { token, rewritten }) => {
                Ok(presented(Cow::Owned(token), false, Some(rewritten)))
            }
            (Credentials::Bearer(t), QueryToken::Absent) => {
                Ok(presented(Cow::Borrowed(t), false, None))
            }
            (Credentials::Dpop(t), QueryToken::Absent) => {
                Ok(presented(Cow::Borrowed(t), true, None))
            }
        }
    }

    /// The request's DPoP proof for `token` (RFC 9449 §4.3): one `DPoP` header, for this method
    /// and URI, fresh and not replayed.
    fn check_dpop(
        &self,
        now: u64,
        req: &Request<'_>,
        token: &str,
        fp: Fingerprint,
    ) -> Result<ProofKey, Refusal> {
        let proofs: Vec<&str> = req
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("dpop"))
            .map(|(_, v)| *v)
            .collect();
        // This edge's public origins when configured (behind TLS offload the request's
        // scheme is not the client's, and `Host` is the client's to choose), else the
        // request's own.
        let htus: Vec<String> = if self.cfg.dpop_origins.is_empty() {
            vec![normalize_htu(req.scheme, req.authority, req.path)]
        } else {
            let path = htu_path(req.path);
            self.cfg
                .dpop_origins
                .iter()
                .map(|o| format!("{o}{path}"))
                .collect()
        };
        check_proof(
            &self.cfg,
            &self.fp,
            &self.dpop_replay,
            &proofs,
            req.method,
            &htus,
            token,
            now,
        )
        .map_err(|why| Refusal::token(Reason::InvalidDpopProof, fp, true, Some(why)))
    }

    /// A token already known to be refused: a negative cache entry (an answer that it is not
    /// active), or a revocation of its fingerprint.
    fn check_known_refused(
        &mut self,
        id: RequestId,
        fp: Fingerprint,
        dpop: bool,
        now: u64,
    ) -> Result<(), Refusal> {
        if let Some(reason) = self.cache.negative(&fp, now) {
            self.metrics.negative_hits += 1;
            let mut ev = AuditEvent::new(AuditKind::NegativeHit);
            ev.request_id = Some(id);
            ev.fingerprint = Some(fp);
            self.audit(ev);
            return Err(Refusal::token(reason, fp, dpop, None));
        }
        if self.revocations.is_fingerprint_revoked(&fp) {
            return Err(Refusal::token(Reason::Revoked, fp, dpop, None));
        }
        Ok(())
    }

    fn count_miss(&mut self, id: RequestId, fp: Fingerprint) {
        self.metrics.cache_misses += 1;
        let mut ev = AuditEvent::new(AuditKind::CacheMiss);
        ev.request_id = Some(id);
        ev.fingerprint = Some(fp);
        self.audit(ev);
    }

    /// Bounded (invariant 7): the waiters over all tokens, the waiters on this token's ticket,
    /// the tickets in flight.
    fn check_bounds(&self, fp: Fingerprint, dpop: bool) -> Result<(), Refusal> {
        let in_flight = self.pending.get(&fp).map(|p| p.waiters.len());
        let full = if self.waiting >= self.cfg.max_waiting {
            Some("too many waiting requests")
        } else if in_flight.is_some_and(|n| n >= self.cfg.max_waiters) {
            Some("too many waiters")
        } else if in_flight.is_none() && self.pending.len() >= self.cfg.max_pending {
            Some("too many pending")
        } else {
            None
        };
        match full {
            Some(detail) => Err(Refusal::token(Reason::Overloaded, fp, dpop, Some(detail))),
            None => Ok(()),
        }
    }

    /// A flood of unknown tokens must not take the authorization server down: new
    /// introspections are paced by a token bucket (cached and coalesced requests are not).
    fn check_introspection_rate(
        &mut self,
        now: u64,
        fp: Fingerprint,
        dpop: bool,
    ) -> Result<(), Refusal> {
        if self.cfg.mode == Mode::Phantom && !self.introspection_budget.take(now) {
            self.metrics.rate_limited += 1;
            let why = Some("introspection rate limit reached");
            return Err(Refusal::token(Reason::RateLimited, fp, dpop, why));
        }
        Ok(())
    }
}
