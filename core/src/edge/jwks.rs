//! The authorization server's JWKS: fetching it at start, for an unknown `kid` and when stale,
//! each at its own pace; retrying a failed fetch on a backoff timer; answers parked until the
//! keys they need arrive.

use crate::action::{Action, AuditEvent, AuditKind, Fetch, FetchKind, Reason, Ticket};
use crate::introspection::{HttpResponse, Outcome, parse_response};
use crate::jose::KeySet;
use crate::secret::Fingerprint;

use super::tickets::Parked;
use super::{Edge, host_detail};

/// Why the JWKS is fetched (each has its own pace; see `Edge::request_jwks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JwksFetch {
    Start,
    UnknownKid,
    /// A `kid` not sought within `jwks_min_refresh`: a key rotation.
    NewKid,
    Refresh,
    /// After a failure, on the backoff timer.
    Retry,
}

/// After a failed JWKS fetch the core fetches again by itself after this long, doubling with
/// each failure in a row up to `jwks_min_refresh`, so an edge started before its authorization
/// server (or that fetched while the server restarted) serves again within about this long of the
/// server coming back. While the last fetch failed, a request that needs the keys may also fetch
/// them, at most this often.
pub(crate) const JWKS_RETRY_MS: u64 = 500;

/// How many distinct unknown `kid`s may each fetch the JWKS once per `jwks_min_refresh` (see
/// [`Edge::park`]), and the longest `kid` counted as one.
pub(crate) const JWKS_NEW_KIDS: usize = 8;
const MAX_KID_LEN: usize = 128;

/// The largest JWKS document read (a [`Fetch`]'s `max_response_bytes`): room for dozens of
/// RSA-4096 keys.
pub const MAX_JWKS_BODY: usize = 64 * 1024;

impl Edge {
    /// An answer that needs a key the JWKS in use lacks waits (parked) for a fresh JWKS, or
    /// fails closed when none may be fetched now. A `kid` this edge has not sought within
    /// `jwks_min_refresh` (the authorization server rotated its keys, e.g. on a restart) fetches
    /// at once, at most every `JWKS_RETRY_MS` and for at most `JWKS_NEW_KIDS` kids per
    /// `jwks_min_refresh`; any other unknown kid waits for the unknown-kid allowance.
    pub(super) fn park(
        &mut self,
        fp: Fingerprint,
        ticket: Ticket,
        parked: Parked,
        now: u64,
        kid: Option<&str>,
    ) {
        let new_kid = kid.filter(|k| self.first_time_sought(k, now));
        let fetching = match new_kid {
            Some(k) if self.request_jwks(now, JwksFetch::NewKid) => {
                self.kids_sought.push((k.to_owned(), now));
                true
            }
            _ => self.request_jwks(now, JwksFetch::UnknownKid),
        };
        if fetching {
            if let Some(p) = self.pending.get_mut(&fp) {
                p.parked = Some(parked);
            }
            self.parked.push(ticket);
        } else {
            self.complete(
                fp,
                Outcome::Failure(
                    Reason::Unavailable,
                    "signing key unknown and JWKS refresh rate-limited".into(),
                ),
                now,
            );
        }
    }

    /// Whether `kid` did not fetch the JWKS within `jwks_min_refresh` (and there is room to
    /// remember it when it does).
    fn first_time_sought(&mut self, kid: &str, now: u64) -> bool {
        let window = self.cfg.jwks_min_refresh_ms;
        self.kids_sought
            .retain(|(_, at)| now < at.saturating_add(window));
        kid.len() <= MAX_KID_LEN
            && self.kids_sought.len() < JWKS_NEW_KIDS
            && !self.kids_sought.iter().any(|(k, _)| k == kid)
    }

    /// Before a signature is verified: a key set older than `jwks_refresh` is fetched again (in
    /// the background: this answer is verified with the keys in use), so a key the AS removed,
    /// rotated out or compromised, stops being trusted without a restart.
    pub(super) fn refresh_stale_jwks(&mut self, now: u64) {
        if self
            .jwks_fetched_at
            .is_some_and(|t| now >= t.saturating_add(self.cfg.jwks_refresh_ms))
        {
            self.request_jwks(now, JwksFetch::Refresh);
        }
    }

    /// Queues a JWKS fetch unless one is in flight or one happened too recently. Returns whether
    /// a fresh JWKS is on its way.
    pub(super) fn request_jwks(&mut self, now: u64, why: JwksFetch) -> bool {
        if let Some((_, deadline)) = self.jwks_ticket {
            // A fetch the host never answered must not block key refreshes for good: past its
            // deadline it has failed (also when the host has not called `handle_timeout` yet).
            if now < deadline {
                return true;
            }
            self.jwks_answer(now, Err("no answer within the timeout"));
        }
        let Some(url) = self.cfg.jwks_uri.clone() else {
            return false;
        };
        // Unknown kids (anyone can send one) at most every jwks_min_refresh, unless the last
        // fetch failed: then the keys in use are not known to be current, and a request that
        // needs them may fetch every JWKS_RETRY_MS (an authorization server that was down when
        // the edge started, or restarted with new keys, is followed at once). Retries after a
        // failure run on their own backoff timer (`handle_timeout`).
        let (last, pace) = match why {
            JwksFetch::Start | JwksFetch::Retry => (None, 0),
            JwksFetch::UnknownKid if self.jwks_failures > 0 => {
                (self.jwks_last_fetch, JWKS_RETRY_MS)
            }
            JwksFetch::UnknownKid => (self.jwks_last_demand, self.cfg.jwks_min_refresh_ms),
            JwksFetch::NewKid => (self.jwks_last_fetch, JWKS_RETRY_MS),
            JwksFetch::Refresh => (self.jwks_last_fetch, self.cfg.jwks_min_refresh_ms),
        };
        if last.is_some_and(|t| now < t.saturating_add(pace)) {
            return false;
        }
        if matches!(
            why,
            JwksFetch::Start | JwksFetch::UnknownKid | JwksFetch::NewKid
        ) {
            self.jwks_last_demand = Some(now);
        }
        self.jwks_retry_at = None;
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let deadline = now.saturating_add(self.cfg.timeout_ms);
        self.jwks_ticket = Some((ticket, deadline));
        self.deadlines.insert((deadline, ticket));
        self.jwks_last_fetch = Some(now);
        self.metrics.jwks_fetches += 1;
        self.actions.push_back(Action::Fetch(Fetch {
            ticket,
            kind: FetchKind::Jwks,
            method: "GET",
            url,
            headers: vec![("accept".into(), "application/json".into())],
            body: String::new(),
            timeout_ms: self.cfg.timeout_ms,
            max_response_bytes: MAX_JWKS_BODY,
            fingerprint: None,
        }));
        true
    }

    /// The JWKS fetch in flight ended (`handle_fetch`, or its deadline passed): a 200 answer
    /// with a key set replaces the keys in use; anything else is a failure, retried on the
    /// backoff timer. Parked answers are then verified (or fail closed).
    pub(super) fn jwks_answer(&mut self, now: u64, result: Result<&HttpResponse<'_>, &str>) {
        if let Some((ticket, deadline)) = self.jwks_ticket.take() {
            self.deadlines.remove(&(deadline, ticket));
        }
        let parsed = match result {
            Ok(r) if r.status != 200 => Err(format!("status {}", r.status)),
            Ok(r) if r.body.len() > MAX_JWKS_BODY => {
                Err(format!("answer larger than {MAX_JWKS_BODY} bytes"))
            }
            Ok(r) => KeySet::from_json(r.body, &self.cfg.algorithms),
            Err(e) => Err(host_detail(e)),
        };
        match parsed {
            Ok(keys) => {
                let mut ev = AuditEvent::new(AuditKind::JwksFetched);
                ev.detail = Some(format!("keys={}", keys.len()));
                self.audit(ev);
                self.keys = Some(keys);
                self.jwks_fetched_at = Some(now);
                self.jwks_failures = 0;
                self.jwks_retry_at = None;
            }
            Err(why) => {
                // Retried by itself: 0.5 s, 1 s, 2 s, ... up to jwks_min_refresh.
                self.jwks_failures = self.jwks_failures.saturating_add(1);
                let backoff = JWKS_RETRY_MS
                    .saturating_mul(1 << (self.jwks_failures - 1).min(20))
                    .min(self.cfg.jwks_min_refresh_ms.max(JWKS_RETRY_MS));
                self.jwks_retry_at = Some(now.saturating_add(backoff));
                let mut ev = AuditEvent::new(AuditKind::JwksFailed);
                ev.detail = Some(format!("{why}; retry in {backoff} ms"));
                self.audit(ev);
            }
        }
        for ticket in std::mem::take(&mut self.parked) {
            let Some(&fp) = self.tickets.get(&ticket) else {
                continue;
            };
            let Some(parked) = self.pending.get_mut(&fp).and_then(|p| p.parked.take()) else {
                continue;
            };
            let outcome = match &parked {
                Parked::Introspection {
                    status,
                    headers,
                    body,
                } => {
                    let h: Vec<(&str, &str)> = headers
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    let resp = HttpResponse {
                        status: *status,
                        headers: &h,
                        body,
                    };
                    parse_response(&self.cfg, self.keys.as_ref(), &resp, now)
                }
                Parked::Split(value) => self.split_outcome(fp, value, now),
            };
            let outcome = match outcome {
                Outcome::NeedKeys(_) => {
                    Outcome::Failure(Reason::Unavailable, "signing key not in the JWKS".into())
                }
                o => o,
            };
            self.complete(fp, outcome, now);
        }
    }
}
