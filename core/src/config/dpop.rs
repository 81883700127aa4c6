//! `[dpop]`: sender-constrained tokens: the proof algorithms, their lifetime and replay set, and
//! the edge's public origins a proof's `htu` names.

use serde::Deserialize;

use crate::jose::Alg;

use super::ConfigError;
use super::values::{nonzero, parse_algs, positive};

/// Default of `dpop.algorithms`.
pub(crate) const DEFAULT_ALGORITHMS: [Alg; 4] = [Alg::ES256, Alg::EdDSA, Alg::PS256, Alg::RS256];
/// Default of `dpop.proof_max_age`: 60 s.
pub(crate) const DEFAULT_PROOF_MAX_AGE_MS: u64 = 60_000;
/// Default of `dpop.max_replay_entries`.
pub(crate) const DEFAULT_MAX_REPLAY_ENTRIES: usize = 100_000;

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDpop {
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub proof_max_age: Option<String>,
    #[serde(default)]
    pub max_replay_entries: Option<usize>,
    #[serde(default)]
    pub origins: Option<Vec<String>>,
}

/// The `[dpop]` section checked by [`RawDpop::resolve`].
pub(super) struct Dpop {
    pub(super) algorithms: Vec<Alg>,
    pub(super) origins: Vec<String>,
}

/// The bounds of `[dpop]` checked by [`RawDpop::resolve_limits`].
pub(super) struct DpopLimits {
    pub(super) proof_max_age_ms: u64,
    pub(super) max_replay_entries: usize,
}

impl RawDpop {
    /// The proof algorithms, and the origins normalised (`https://api.example`).
    pub(super) fn resolve(&self) -> Result<Dpop, ConfigError> {
        let d = self;
        let dpop_algorithms = match &d.algorithms {
            Some(list) => parse_algs("dpop.algorithms", list)?,
            None => DEFAULT_ALGORITHMS.to_vec(),
        };
        if d.origins.as_ref().is_some_and(Vec::is_empty) {
            return Err(ConfigError::new(
                "dpop.origins",
                "an empty list: name this edge's public origins, or leave the key out to compare htu with the request's own scheme and Host",
            ));
        }
        let mut dpop_origins = Vec::new();
        for o in d.origins.iter().flatten() {
            let normalized = crate::request::normalize_url(o)
                .filter(|n| {
                    n.ends_with('/') && n.matches('/').count() == 3 && !o.contains(['?', '#'])
                })
                .filter(|n| n.starts_with("https://") || n.starts_with("http://"));
            let Some(n) = normalized else {
                return Err(ConfigError::new(
                    "dpop.origins",
                    format!("not an origin (scheme://host[:port], no path): {o:?}"),
                ));
            };
            dpop_origins.push(n.trim_end_matches('/').to_owned());
        }
        Ok(Dpop {
            algorithms: dpop_algorithms,
            origins: dpop_origins,
        })
    }

    /// How old a proof may be, and the size of the replay set.
    pub(super) fn resolve_limits(&self) -> Result<DpopLimits, ConfigError> {
        let d = self;
        Ok(DpopLimits {
            proof_max_age_ms: positive(
                "dpop.proof_max_age",
                d.proof_max_age.as_deref(),
                DEFAULT_PROOF_MAX_AGE_MS,
            )?,
            max_replay_entries: nonzero(
                "dpop.max_replay_entries",
                d.max_replay_entries,
                DEFAULT_MAX_REPLAY_ENTRIES,
            )?,
        })
    }
}
