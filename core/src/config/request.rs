//! `[request]`: where tokens may come from besides the `Authorization` header (nothing to
//! check: `allow_query_token` is used as given, by default `false`).

use serde::Deserialize;

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    #[serde(default)]
    pub allow_query_token: bool,
}
