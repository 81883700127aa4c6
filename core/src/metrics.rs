//! Counters and gauges the host exports.

use std::fmt::Write as _;

/// Monotonic counters since the edge was created.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Requests handled.
    pub requests: u64,
    /// Requests forwarded.
    pub forwarded: u64,
    /// Requests rejected.
    pub rejected: u64,
    /// Positive cache hits.
    pub cache_hits: u64,
    /// Negative cache hits.
    pub negative_hits: u64,
    /// Cache misses (pending joins included).
    pub cache_misses: u64,
    /// Requests that joined an introspection already in flight.
    pub coalesced: u64,
    /// Introspection requests queued.
    pub introspections: u64,
    /// New introspections refused by `authorization_server.max_introspections_per_second`.
    pub rate_limited: u64,
    /// Shared-store lookups queued (split mode).
    pub shared_lookups: u64,
    /// Introspections that failed (AS down, 5xx, garbage, timeout).
    pub introspection_failures: u64,
    /// Revocations handled.
    pub revocations: u64,
    /// JWKS fetches queued.
    pub jwks_fetches: u64,
    /// Revocations that pushed the soonest-expiring entry out of the full revocation set (its
    /// cached decisions are dropped too); counted whether or not the audit kind is muted.
    pub revocation_overflows: u64,
}

/// Current sizes of the bounded structures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Positive cache entries.
    pub cache_entries: usize,
    /// Approximate bytes held by the positive cache.
    pub cache_bytes: usize,
    /// Negative cache entries.
    pub negative_entries: usize,
    /// Tickets in flight.
    pub pending: usize,
    /// Requests waiting on tickets.
    pub waiters: usize,
    /// Revocation entries.
    pub revocations: usize,
    /// DPoP proof jtis remembered.
    pub dpop_replay_entries: usize,
    /// Usable keys in the authorization server's JWKS.
    pub jwks_keys: usize,
    /// Positive cache evictions since start.
    pub evictions: u64,
}

impl Metrics {
    /// Prometheus text exposition format.
    pub fn prometheus(&self, s: &Stats) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP phantom_edge_{name}_total {help}\n# TYPE phantom_edge_{name}_total counter\nphantom_edge_{name}_total {v}"
            );
        };
        counter("requests", "Requests handled.", self.requests);
        counter("forwarded", "Requests forwarded upstream.", self.forwarded);
        counter("rejected", "Requests rejected.", self.rejected);
        counter("cache_hits", "Positive cache hits.", self.cache_hits);
        counter("negative_hits", "Negative cache hits.", self.negative_hits);
        counter("cache_misses", "Cache misses.", self.cache_misses);
        counter(
            "rate_limited",
            "New introspections refused by the introspection rate limit.",
            self.rate_limited,
        );
        counter(
            "coalesced",
            "Requests that joined an introspection in flight.",
            self.coalesced,
        );
        counter(
            "introspections",
            "Introspection requests sent.",
            self.introspections,
        );
        counter(
            "shared_lookups",
            "Shared-store lookups (split mode).",
            self.shared_lookups,
        );
        counter(
            "introspection_failures",
            "Failed introspections.",
            self.introspection_failures,
        );
        counter("revocations", "Revocations handled.", self.revocations);
        counter("jwks_fetches", "JWKS fetches.", self.jwks_fetches);
        counter(
            "revocation_overflows",
            "Revocations that evicted the soonest-expiring entry of the full revocation set.",
            self.revocation_overflows,
        );
        counter("cache_evictions", "Positive cache evictions.", s.evictions);
        let mut gauge = |name: &str, help: &str, v: usize| {
            let _ = writeln!(
                out,
                "# HELP phantom_edge_{name} {help}\n# TYPE phantom_edge_{name} gauge\nphantom_edge_{name} {v}"
            );
        };
        gauge("cache_entries", "Positive cache entries.", s.cache_entries);
        gauge(
            "cache_bytes",
            "Approximate bytes in the positive cache.",
            s.cache_bytes,
        );
        gauge(
            "negative_entries",
            "Negative cache entries.",
            s.negative_entries,
        );
        gauge("pending_tickets", "Introspections in flight.", s.pending);
        gauge("waiters", "Requests waiting on introspections.", s.waiters);
        gauge("revocation_entries", "Revocation entries.", s.revocations);
        gauge(
            "dpop_replay_entries",
            "DPoP proof ids remembered.",
            s.dpop_replay_entries,
        );
        gauge(
            "jwks_keys",
            "Usable keys of the authorization server.",
            s.jwks_keys,
        );
        out
    }
}
