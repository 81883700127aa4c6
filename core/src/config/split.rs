//! `[split]`: split-token mode, where the edge rebuilds the JWT from a shared store.

use serde::Deserialize;

/// Default of `split.key_prefix`.
pub(crate) const DEFAULT_KEY_PREFIX: &str = "phantom-edge:split:";

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplit {
    #[serde(default)]
    pub key_prefix: Option<String>,
}

impl RawSplit {
    /// The prefix of shared-store keys (nothing to check).
    pub(super) fn resolve(&self) -> String {
        self.key_prefix
            .clone()
            .unwrap_or_else(|| DEFAULT_KEY_PREFIX.into())
    }
}
