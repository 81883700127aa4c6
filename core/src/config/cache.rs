//! `[cache]`: how long and how many introspection answers are kept, the bounds on requests in
//! flight, and the key token fingerprints are computed with.

use std::fmt;

use serde::Deserialize;

use super::ConfigError;
use super::values::{duration_or, nonzero, one_secret, positive};

/// Default of `cache.max_ttl`: 5 min.
pub(crate) const DEFAULT_MAX_TTL_MS: u64 = 300_000;
/// Default of `cache.negative_ttl`: 10 s.
pub(crate) const DEFAULT_NEGATIVE_TTL_MS: u64 = 10_000;
/// Default of `cache.max_entries` (and of `cache.negative_max_entries`, which defaults to
/// `cache.max_entries`).
pub(crate) const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default of `cache.max_bytes`: 256 MiB.
pub(crate) const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;
/// Default of `cache.skew`: 5 s.
pub(crate) const DEFAULT_SKEW_MS: u64 = 5_000;
/// Default of `cache.max_pending`.
pub(crate) const DEFAULT_MAX_PENDING: usize = 10_000;
/// Default of `cache.max_waiters`.
pub(crate) const DEFAULT_MAX_WAITERS: usize = 1_000;
/// Default of `cache.max_waiting`.
pub(crate) const DEFAULT_MAX_WAITING: usize = 20_000;

#[allow(missing_docs)]
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCache {
    #[serde(default)]
    pub max_ttl: Option<String>,
    #[serde(default)]
    pub negative_ttl: Option<String>,
    #[serde(default)]
    pub max_entries: Option<usize>,
    #[serde(default)]
    pub max_bytes: Option<usize>,
    #[serde(default)]
    pub negative_max_entries: Option<usize>,
    #[serde(default)]
    pub skew: Option<String>,
    #[serde(default)]
    pub max_pending: Option<usize>,
    #[serde(default)]
    pub max_waiters: Option<usize>,
    #[serde(default)]
    pub max_waiting: Option<usize>,
    #[serde(default)]
    pub fingerprint_key: Option<String>,
    #[serde(default)]
    pub fingerprint_key_env: Option<String>,
    #[serde(default)]
    pub ignore_no_store: bool,
}

debug_redacting!(RawCache {
    max_ttl, negative_ttl, max_entries, max_bytes, negative_max_entries, skew, max_pending,
    max_waiters, max_waiting, fingerprint_key_env, ignore_no_store,
} secret { fingerprint_key });

/// The `[cache]` section checked by [`RawCache::resolve`].
pub(super) struct Cache {
    pub(super) max_ttl_ms: u64,
    pub(super) negative_ttl_ms: u64,
    pub(super) max_entries: usize,
    pub(super) fingerprint_key: Option<[u8; 32]>,
    pub(super) ignore_no_store: bool,
}

/// The bounds of `[cache]` checked by [`RawCache::resolve_limits`].
pub(super) struct CacheLimits {
    pub(super) max_bytes: usize,
    pub(super) negative_max_entries: usize,
    pub(super) skew_ms: u64,
    pub(super) max_pending: usize,
    pub(super) max_waiters: usize,
    pub(super) max_waiting: usize,
}

impl RawCache {
    /// The lifetimes, the number of entries and the fingerprint key (`fingerprint_key_env` is
    /// read through `env`).
    pub(super) fn resolve(
        &self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Cache, ConfigError> {
        let c = self;
        let max_ttl_ms = positive("cache.max_ttl", c.max_ttl.as_deref(), DEFAULT_MAX_TTL_MS)?;
        let negative_ttl_ms = duration_or(
            "cache.negative_ttl",
            c.negative_ttl.as_deref(),
            DEFAULT_NEGATIVE_TTL_MS,
        )?;
        let max_entries = nonzero("cache.max_entries", c.max_entries, DEFAULT_MAX_ENTRIES)?;
        let fingerprint_key = one_secret(
            env,
            "cache.fingerprint_key",
            c.fingerprint_key.as_deref(),
            c.fingerprint_key_env.as_deref(),
        )?
        .map(|s| {
            let bytes = s.expose().as_bytes();
            if bytes.len() < 32 {
                return Err(ConfigError::new(
                    "cache.fingerprint_key",
                    "must be at least 32 bytes",
                ));
            }
            Ok(blake3::derive_key(
                "phantom-edge 2026 fingerprint key",
                bytes,
            ))
        })
        .transpose()?;
        Ok(Cache {
            max_ttl_ms,
            negative_ttl_ms,
            max_entries,
            fingerprint_key,
            ignore_no_store: c.ignore_no_store,
        })
    }

    /// The byte bound, the negative entries (by default as many as `max_entries`), the clock
    /// skew and the bounds on requests waiting for answers.
    pub(super) fn resolve_limits(&self, max_entries: usize) -> Result<CacheLimits, ConfigError> {
        let c = self;
        Ok(CacheLimits {
            max_bytes: nonzero("cache.max_bytes", c.max_bytes, DEFAULT_MAX_BYTES)?,
            negative_max_entries: nonzero(
                "cache.negative_max_entries",
                c.negative_max_entries,
                max_entries,
            )?,
            skew_ms: duration_or("cache.skew", c.skew.as_deref(), DEFAULT_SKEW_MS)?,
            max_pending: nonzero("cache.max_pending", c.max_pending, DEFAULT_MAX_PENDING)?,
            max_waiters: nonzero("cache.max_waiters", c.max_waiters, DEFAULT_MAX_WAITERS)?,
            max_waiting: nonzero("cache.max_waiting", c.max_waiting, DEFAULT_MAX_WAITING)?,
        })
    }
}
