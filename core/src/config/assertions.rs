//! `[assertions]`: the edge's own signing key for the upstream JWTs it mints.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::jose::{Alg, SigningKey};

use super::values::{one_secret, positive};
use super::{ConfigError, Dialect, Mode};

/// Default of `assertions.max_ttl`: 60 s.
pub(crate) const DEFAULT_MAX_TTL_MS: u64 = 60_000;
/// Default of `assertions.issuer`.
pub(crate) const DEFAULT_ISSUER: &str = "phantom-edge";

#[allow(missing_docs)]
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssertions {
    #[serde(default)]
    pub signing_key: Option<String>,
    #[serde(default)]
    pub signing_key_env: Option<String>,
    pub kid: String,
    #[serde(default)]
    pub max_ttl: Option<String>,
    #[serde(default)]
    pub issuer: Option<String>,
}

debug_redacting!(RawAssertions {
    signing_key_env, kid, max_ttl, issuer,
} secret { signing_key });

/// The `[assertions]` section, checked.
#[derive(Clone)]
pub(crate) struct Assertions {
    pub(crate) key: Arc<SigningKey>,
    pub(crate) max_ttl_ms: u64,
    pub(crate) issuer: String,
}

/// The `[assertions]` section if there is one (`signing_key_env` is read through `env`), and
/// whether `mode` and `dialect` need one.
pub(super) fn resolve(
    raw: Option<&RawAssertions>,
    mode: Mode,
    dialect: Dialect,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Assertions>, ConfigError> {
    let assertions = match raw {
        None => None,
        Some(s) => {
            let Some(pem) = one_secret(
                env,
                "assertions.signing_key",
                s.signing_key.as_deref(),
                s.signing_key_env.as_deref(),
            )?
            else {
                return Err(ConfigError::new(
                    "assertions.signing_key",
                    "signing_key or signing_key_env (a PEM private key, Ed25519 or P-256) is required",
                ));
            };
            if s.kid.is_empty() {
                return Err(ConfigError::new("assertions.kid", "must not be empty"));
            }
            let key = SigningKey::from_pem(pem.expose().as_bytes(), Some(s.kid.clone()))
                .map_err(|m| ConfigError::new("assertions.signing_key", m))?;
            if !matches!(key.alg(), Alg::EdDSA | Alg::ES256) {
                return Err(ConfigError::new(
                    "assertions.signing_key",
                    "must be an Ed25519 or P-256 key",
                ));
            }
            Some(Assertions {
                key: Arc::new(key),
                max_ttl_ms: positive(
                    "assertions.max_ttl",
                    s.max_ttl.as_deref(),
                    DEFAULT_MAX_TTL_MS,
                )?,
                issuer: s.issuer.clone().unwrap_or_else(|| DEFAULT_ISSUER.into()),
            })
        }
    };
    // The RFC 9701 response JWT must never be used as an access token (RFC 9701 §8.1), and
    // plain JSON has no JWT at all: both need the edge to mint.
    if assertions.is_none()
        && mode == Mode::Phantom
        && matches!(dialect, Dialect::Rfc9701 | Dialect::Rfc7662)
    {
        return Err(ConfigError::new(
            "assertions",
            "required with dialect \"rfc9701\" or \"rfc7662\": the edge mints the upstream JWT",
        ));
    }
    Ok(assertions)
}
