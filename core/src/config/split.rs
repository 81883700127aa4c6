//! `[split]`: split-token mode, where the edge rebuilds the JWT from a shared store.

use serde::Deserialize;

use crate::split::DEFAULT_SPLIT_KEY_PREFIX as DEFAULT_KEY_PREFIX;

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplit {
    #[serde(default)]
    pub key_prefix: Option<String>,
    /// Also read plain `header.payload` store values (as other issuers write them), not only
    /// the sealed ones `split_jwt` makes. Off by default: a plain value puts the claims in
    /// clear in the store.
    #[serde(default)]
    pub plain_values: Option<bool>,
}

impl RawSplit {
    /// The prefix of shared-store keys, and whether plain values are read (nothing to check).
    pub(super) fn resolve(&self) -> (String, bool) {
        (
            self.key_prefix
                .clone()
                .unwrap_or_else(|| DEFAULT_KEY_PREFIX.into()),
            self.plain_values.unwrap_or(false),
        )
    }
}
