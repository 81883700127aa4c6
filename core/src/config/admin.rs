//! `[admin]`: the bearer secret guarding the revocation route and other operator routes.

use std::fmt;

use serde::Deserialize;

use crate::secret::Secret;

use super::ConfigError;
use super::values::one_secret;

#[allow(missing_docs)]
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
}

debug_redacting!(RawAdmin { token_env } secret { token });

/// The admin token if there is an `[admin]` section (`token_env` is read through `env`).
pub(super) fn resolve(
    raw: Option<&RawAdmin>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Secret>, ConfigError> {
    let admin_token = match raw {
        None => None,
        Some(s) => {
            let t = one_secret(
                env,
                "admin.token",
                s.token.as_deref(),
                s.token_env.as_deref(),
            )?;
            match t {
                None => {
                    return Err(ConfigError::new(
                        "admin.token",
                        "token or token_env is required",
                    ));
                }
                Some(t) if t.expose().len() < 16 => {
                    return Err(ConfigError::new(
                        "admin.token",
                        "must be at least 16 characters",
                    ));
                }
                t => t,
            }
        }
    };
    Ok(admin_token)
}
