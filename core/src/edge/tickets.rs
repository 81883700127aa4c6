//! Tickets: one introspection (or shared-store lookup) per token in flight, the requests
//! coalesced on it, the answers and failures that end it, and `complete`, which answers every
//! waiter and caches what may be cached.

use std::sync::Arc;

use crate::action::{
    Action, AuditEvent, AuditKind, Fetch, FetchKind, Reason, RequestId, SharedLookup, Ticket,
};
use crate::cache::Entry;
use crate::config::Mode;
use crate::introspection::{
    HttpResponse, JwtFailure, MAX_RESPONSE_BODY, Outcome, build_request, parse_response,
    verify_access_jwt,
};
use crate::secret::Fingerprint;

use super::intake::Binding;
use super::mint::header_value;
use super::revocations::publish_extensions;
use super::{Edge, EdgeError, LookupResult, host_detail};

/// A request waiting for the answer to its token's ticket.
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) request_id: RequestId,
    pub(super) route: usize,
    pub(super) binding: Binding,
}

/// An answer that needs a key not yet in the JWKS, kept until a fresh JWKS arrives.
#[derive(Debug)]
pub(super) enum Parked {
    Introspection {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    Split(String),
}

/// The ticket in flight for one token, and the requests waiting for it.
#[derive(Debug)]
pub(super) struct Pending {
    pub(super) ticket: Ticket,
    pub(super) deadline: u64,
    pub(super) waiters: Vec<Waiter>,
    /// An invalidation arrived while in flight: answer the waiters, cache nothing.
    pub(super) no_cache: bool,
    pub(super) parked: Option<Parked>,
}

impl Edge {
    /// Coalescing: one introspection per token in flight (invariant 5). The waiter joins the
    /// ticket in flight for `fp`, or comes back (`Some`) when there is none.
    pub(super) fn coalesce(&mut self, fp: Fingerprint, waiter: Waiter) -> Option<Waiter> {
        let Some(p) = self.pending.get_mut(&fp) else {
            return Some(waiter);
        };
        let request_id = waiter.request_id;
        p.waiters.push(waiter);
        self.waiting += 1;
        self.metrics.coalesced += 1;
        let mut ev = AuditEvent::new(AuditKind::Coalesced);
        ev.request_id = Some(request_id);
        ev.ticket = Some(p.ticket);
        ev.fingerprint = Some(fp);
        self.audit(ev);
        None
    }

    /// Opens a ticket for `fp` with its first waiter, and queues its I/O: an introspection of
    /// `token` in phantom mode, a shared-store lookup in split mode.
    pub(super) fn open_ticket(&mut self, now: u64, fp: Fingerprint, token: &str, waiter: Waiter) {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let deadline = now.saturating_add(self.cfg.timeout_ms);
        self.pending.insert(
            fp,
            Pending {
                ticket,
                deadline,
                waiters: vec![waiter],
                no_cache: false,
                parked: None,
            },
        );
        self.waiting += 1;
        self.tickets.insert(ticket, fp);
        self.deadlines.insert((deadline, ticket));
        match self.cfg.mode {
            Mode::Phantom => {
                let jti = if self.cfg.client_auth == crate::config::ClientAuth::PrivateKeyJwt {
                    self.minter.next_id()
                } else {
                    String::new()
                };
                let (headers, body) = build_request(&self.cfg, token, now, &jti);
                self.metrics.introspections += 1;
                self.actions.push_back(Action::Fetch(Fetch {
                    ticket,
                    kind: FetchKind::Introspection,
                    method: "POST",
                    url: self.cfg.introspection_endpoint.clone().unwrap_or_default(),
                    headers,
                    body,
                    timeout_ms: self.cfg.timeout_ms,
                    max_response_bytes: MAX_RESPONSE_BODY,
                    fingerprint: Some(fp),
                }));
            }
            Mode::Split => {
                self.metrics.shared_lookups += 1;
                let key = crate::split::store_key(&self.cfg.split_key_prefix, token);
                self.actions
                    .push_back(Action::SharedLookup(SharedLookup { ticket, key }));
            }
        }
    }

    /// The answer to a [`Fetch`](crate::Fetch) (an introspection or a JWKS fetch): `Ok` with
    /// whatever the server answered, any status (the core decides what it means), or `Err`
    /// with a token-free description of a transport failure (connection refused, TLS, timeout,
    /// an answer longer than its `max_response_bytes`). An answer for a ticket that already
    /// ended (timed out) is dropped with a `late_response` audit event.
    pub fn handle_fetch(
        &mut self,
        now: u64,
        ticket: Ticket,
        result: Result<&HttpResponse<'_>, &str>,
    ) -> Result<(), EdgeError> {
        let now = self.tick(now);
        if self.jwks_ticket.is_some_and(|(t, _)| t == ticket) {
            self.jwks_answer(now, result);
            return Ok(());
        }
        let Some(fp) = self.live_ticket(ticket, false)? else {
            return Ok(());
        };
        let response = match result {
            Ok(response) => response,
            Err(detail) => {
                let detail = host_detail(detail);
                self.complete(
                    fp,
                    Outcome::Failure(Reason::Unavailable, format!("transport: {detail}")),
                    now,
                );
                return Ok(());
            }
        };
        self.refresh_stale_jwks(now);
        let outcome = parse_response(&self.cfg, self.keys.as_ref(), response, now);
        if let Outcome::NeedKeys(kid) = outcome {
            let parked = Parked::Introspection {
                status: response.status,
                headers: response
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                body: response.body.to_vec(),
            };
            self.park(fp, ticket, parked, now, kid.as_deref());
            return Ok(());
        }
        self.complete(fp, outcome, now);
        Ok(())
    }

    /// The shared store answered a [`SharedLookup`] (split-token mode).
    pub fn handle_shared_lookup(
        &mut self,
        now: u64,
        ticket: Ticket,
        result: LookupResult<'_>,
    ) -> Result<(), EdgeError> {
        if self.jwks_ticket.is_some_and(|(t, _)| t == ticket) {
            return Err(EdgeError::WrongTicketKind(ticket));
        }
        let now = self.tick(now);
        let Some(fp) = self.live_ticket(ticket, true)? else {
            return Ok(());
        };
        let outcome = match result {
            LookupResult::NotFound => Outcome::Inactive(Reason::Inactive),
            LookupResult::Error => {
                Outcome::Failure(Reason::Unavailable, "shared store error".into())
            }
            LookupResult::Found(value) => {
                self.refresh_stale_jwks(now);
                let o = self.split_outcome(fp, value, now);
                if let Outcome::NeedKeys(kid) = o {
                    self.park(
                        fp,
                        ticket,
                        Parked::Split(value.to_string()),
                        now,
                        kid.as_deref(),
                    );
                    return Ok(());
                }
                o
            }
        };
        self.complete(fp, outcome, now);
        Ok(())
    }

    pub(super) fn split_outcome(&self, fp: Fingerprint, value: &str, now: u64) -> Outcome {
        // The signature the waiters presented (all the same: it is what `fp` is computed from),
        // held only while the lookup is in flight.
        let Some(sig) = self
            .pending
            .get(&fp)
            .and_then(|p| p.waiters.first())
            .and_then(|w| w.binding.split_signature.as_ref())
        else {
            return Outcome::Failure(Reason::Unavailable, "split lookup without signature".into());
        };
        let Some(keys) = &self.keys else {
            return Outcome::NeedKeys(None);
        };
        // A sealed value opens only with the signature it was sealed for (an altered one, or
        // one sealed for another token, does not); a plain one is read only when allowed.
        let value = match value.strip_prefix(crate::split::SEALED_PREFIX) {
            Some(sealed) => match crate::split::open(sealed, sig.expose()) {
                Some(hp) => hp,
                None => return Outcome::Inactive(Reason::InvalidToken),
            },
            None if self.cfg.split_plain_values => value.to_owned(),
            None => return Outcome::Inactive(Reason::InvalidToken),
        };
        if value.split('.').count() != 2 {
            return Outcome::Inactive(Reason::InvalidToken);
        }
        let jwt = format!("{value}.{}", sig.expose());
        // Reassembled from the shared store: verify before trusting (cache poisoning defence).
        match verify_access_jwt(&self.cfg, keys, &jwt, now) {
            Ok(info) => Outcome::Active {
                info: Box::new(info),
                // Without the signature: each request appends its own (`Binding`).
                jwt: Some(format!("{value}.")),
                cache: Default::default(),
            },
            Err(JwtFailure::NeedKeys(kid)) => Outcome::NeedKeys(kid),
            Err(JwtFailure::Expired) => Outcome::Inactive(Reason::Expired),
            Err(JwtFailure::Invalid(_)) => Outcome::Inactive(Reason::InvalidToken),
        }
    }

    /// `Ok(Some(fp))` for a live ticket of the expected kind (`split`: a shared-store lookup),
    /// `Ok(None)` for one that already ended (a late answer).
    fn live_ticket(
        &mut self,
        ticket: Ticket,
        split: bool,
    ) -> Result<Option<Fingerprint>, EdgeError> {
        match self.tickets.get(&ticket) {
            Some(fp) => {
                // Every token's ticket of a split-mode edge is a shared-store lookup (the JWKS
                // fetch's ticket is not in `tickets`: its answer is taken before).
                if (self.cfg.mode == Mode::Split) != split {
                    return Err(EdgeError::WrongTicketKind(ticket));
                }
                Ok(Some(*fp))
            }
            None if ticket > 0 && ticket < self.next_ticket => {
                let mut ev = AuditEvent::new(AuditKind::LateResponse);
                ev.ticket = Some(ticket);
                self.audit(ev);
                Ok(None)
            }
            None => Err(EdgeError::UnknownTicket(ticket)),
        }
    }

    /// Ends a ticket: answers every waiter and caches what may be cached.
    pub(super) fn complete(&mut self, fp: Fingerprint, outcome: Outcome, now: u64) {
        let Some(p) = self.pending.remove(&fp) else {
            return;
        };
        self.waiting -= p.waiters.len();
        self.tickets.remove(&p.ticket);
        self.deadlines.remove(&(p.deadline, p.ticket));
        self.parked.retain(|t| *t != p.ticket);
        match outcome {
            Outcome::Active { info, jwt, cache } => {
                let mut ev = AuditEvent::new(AuditKind::Introspected);
                ev.ticket = Some(p.ticket);
                ev.fingerprint = Some(fp);
                ev.detail = Some("active".into());
                self.audit(ev);
                // A revocation handled while this was in flight wins (invariant 2).
                // A token is kept in mind for revocations until its exp (see default_until).
                if let Some(exp) = info.exp {
                    self.latest_exp_ms = self.latest_exp_ms.max(exp.saturating_mul(1000));
                }
                if let Some(extended) = self.revocations.matches(&fp, &info, self.cfg.leeway_ms) {
                    publish_extensions(&mut self.actions, extended);
                    self.cache.insert_negative(
                        fp,
                        now.saturating_add(self.cfg.negative_ttl_ms.max(1)),
                        Reason::Revoked,
                    );
                    for w in p.waiters {
                        self.reject(
                            w.request_id,
                            Reason::Revoked,
                            Some(fp),
                            w.binding.dpop,
                            None,
                            None,
                        );
                    }
                    return;
                }
                let refused_by_no_store = cache.no_store && !self.cfg.ignore_no_store;
                if refused_by_no_store && !self.warned_no_store {
                    // Said once: with oidc-provider's defaults every answer is `no-store`, and
                    // an edge that caches nothing introspects every request.
                    self.warned_no_store = true;
                    let mut ev = AuditEvent::new(AuditKind::NotCacheable);
                    ev.fingerprint = Some(fp);
                    ev.detail = Some(
                        "the authorization server marks its answers no-store / no-cache: nothing \
                         is cached (set cache.ignore_no_store = true to cache them up to max_ttl)"
                            .into(),
                    );
                    self.audit(ev);
                }
                let cfg = &self.cfg;
                // The answer's `Age` counts against max_ttl too (it was that old when it came).
                let mut expires = now.saturating_add(cfg.max_ttl_ms.saturating_sub(cache.age_ms));
                // max-age − Age, RFC 9701 iat + max-age and exp (`CacheDirective::fresh_until`).
                if let Some(until) = cache.fresh_until(now) {
                    expires = expires.min(until);
                }
                if let Some(exp) = info.exp {
                    expires = expires.min(exp.saturating_mul(1000).saturating_sub(cfg.skew_ms));
                }
                let cacheable = !p.no_cache && !refused_by_no_store && expires > now;
                let forward = jwt.map(|j| header_value(&cfg.upstream_scheme, &j));
                let entry = Entry {
                    info: Arc::new(*info),
                    expires_ms: if cacheable {
                        expires
                    } else {
                        now.saturating_add(1)
                    },
                    epoch: self.revocations.epoch,
                    forward,
                    minted: Vec::new(),
                };
                if cacheable {
                    let mut ev = AuditEvent::new(AuditKind::Cached);
                    ev.fingerprint = Some(fp);
                    ev.detail = Some(format!("ttl_ms={}", expires - now));
                    self.audit(ev);
                    self.cache.insert(fp, entry);
                    for w in p.waiters {
                        if !self.decide_cached(w.request_id, fp, w.route, &w.binding, now, false) {
                            // Evicted at once (bounds smaller than one entry): fail closed.
                            self.reject(
                                w.request_id,
                                Reason::Overloaded,
                                Some(fp),
                                w.binding.dpop,
                                None,
                                None,
                            );
                        }
                    }
                } else {
                    let mut entry = entry;
                    for w in p.waiters {
                        self.decide_uncached(w, fp, &mut entry, now);
                    }
                }
            }
            Outcome::Inactive(reason) => {
                let mut ev = AuditEvent::new(AuditKind::Introspected);
                ev.ticket = Some(p.ticket);
                ev.fingerprint = Some(fp);
                ev.reason = Some(reason);
                ev.detail = Some("inactive".into());
                self.audit(ev);
                if self.cfg.negative_ttl_ms > 0 {
                    self.cache.insert_negative(
                        fp,
                        now.saturating_add(self.cfg.negative_ttl_ms),
                        reason,
                    );
                }
                for w in p.waiters {
                    self.reject(w.request_id, reason, Some(fp), w.binding.dpop, None, None);
                }
            }
            Outcome::Failure(reason, detail) => {
                self.metrics.introspection_failures += 1;
                let mut ev = AuditEvent::new(AuditKind::AsFailure);
                ev.ticket = Some(p.ticket);
                ev.fingerprint = Some(fp);
                ev.reason = Some(reason);
                ev.detail = Some(detail);
                self.audit(ev);
                for w in p.waiters {
                    self.reject(w.request_id, reason, Some(fp), w.binding.dpop, None, None);
                }
            }
            Outcome::NeedKeys(_) => {
                for w in p.waiters {
                    self.reject(
                        w.request_id,
                        Reason::Unavailable,
                        Some(fp),
                        w.binding.dpop,
                        None,
                        None,
                    );
                }
            }
        }
    }
}
