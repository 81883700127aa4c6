//! `[revocation]`: the bounded revocation set and the key Security Event Tokens are verified
//! with.

use std::sync::Arc;

use serde::Deserialize;

use crate::jose::VerifyingKey;

use super::ConfigError;
use super::values::{nonzero, one_secret, positive};

/// Default of `revocation.max_entries`.
pub(crate) const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Default of `revocation.default_ttl`: one day.
pub(crate) const DEFAULT_TTL_MS: u64 = 86_400_000;

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRevocation {
    #[serde(default)]
    pub max_entries: Option<usize>,
    #[serde(default)]
    pub default_ttl: Option<String>,
    #[serde(default)]
    pub set_key: Option<String>,
    #[serde(default)]
    pub set_key_env: Option<String>,
    #[serde(default)]
    pub set_issuer: Option<String>,
    #[serde(default)]
    pub set_audience: Option<String>,
}

/// The `[revocation]` section checked by [`RawRevocation::resolve`].
pub(super) struct Revocation {
    pub(super) set_key: Option<Arc<VerifyingKey>>,
    pub(super) set_issuer: String,
    pub(super) set_audience: Option<String>,
}

/// The bounds of `[revocation]` checked by [`RawRevocation::resolve_limits`].
pub(super) struct RevocationLimits {
    pub(super) max_entries: usize,
    pub(super) default_ttl_ms: u64,
}

impl RawRevocation {
    /// The Security Event Token key (`set_key_env` is read through `env`), issuer (by default
    /// the authorization server's `issuer`) and audience.
    pub(super) fn resolve(
        &self,
        issuer: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Revocation, ConfigError> {
        let r = self;
        let set_key = one_secret(
            env,
            "revocation.set_key",
            r.set_key.as_deref(),
            r.set_key_env.as_deref(),
        )?
        .map(|pem| {
            VerifyingKey::from_pem(pem.expose().as_bytes())
                .map_err(|m| ConfigError::new("revocation.set_key", m))
        })
        .transpose()?
        .map(Arc::new);
        Ok(Revocation {
            set_key,
            set_issuer: r.set_issuer.clone().unwrap_or_else(|| issuer.to_owned()),
            set_audience: r.set_audience.clone(),
        })
    }

    /// The size of the revocation set and how long a revocation without `until` is kept.
    pub(super) fn resolve_limits(&self) -> Result<RevocationLimits, ConfigError> {
        let r = self;
        Ok(RevocationLimits {
            max_entries: nonzero("revocation.max_entries", r.max_entries, DEFAULT_MAX_ENTRIES)?,
            default_ttl_ms: positive(
                "revocation.default_ttl",
                r.default_ttl.as_deref(),
                DEFAULT_TTL_MS,
            )?,
        })
    }
}
