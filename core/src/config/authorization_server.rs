//! `[authorization_server]`: where and how tokens are introspected, whose JWTs are trusted, and
//! how often its keys are fetched.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::jose::{Alg, SigningKey};
use crate::secret::Secret;

use super::values::{check_url, duration_or, nonzero, one_secret, parse_algs, positive};
use super::{ConfigError, Mode};

/// Introspection response dialect of the authorization server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Dialect {
    /// RFC 9701: `application/token-introspection+jwt`, signed, claim `token_introspection`.
    Rfc9701,
    /// Curity-style: `Accept: application/jwt`, 200 with the raw JWT body, 204 = inactive.
    Curity,
    /// Keycloak-style: RFC 7662 JSON carrying a `jwt` member.
    Keycloak,
    /// Plain RFC 7662 JSON; the edge mints the upstream JWT itself.
    Rfc7662,
}

impl Dialect {
    /// The `Accept` header sent with introspection requests.
    pub fn accept(self) -> &'static str {
        match self {
            Self::Rfc9701 => "application/token-introspection+jwt",
            Self::Curity => "application/jwt",
            Self::Keycloak | Self::Rfc7662 => "application/json",
        }
    }
}

/// Client authentication at the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// RFC 7523 client assertion signed with `client_key`.
    PrivateKeyJwt,
}

/// Default of `authorization_server.client_auth`.
pub(crate) const DEFAULT_CLIENT_AUTH: ClientAuth = ClientAuth::ClientSecretBasic;
/// Default of `authorization_server.dialect`.
pub(crate) const DEFAULT_DIALECT: Dialect = Dialect::Rfc9701;
/// Default of `authorization_server.algorithms`.
pub(crate) const DEFAULT_ALGORITHMS: [Alg; 5] =
    [Alg::ES256, Alg::ES384, Alg::EdDSA, Alg::RS256, Alg::PS256];
/// Default of `authorization_server.leeway`: 30 s.
pub(crate) const DEFAULT_LEEWAY_MS: u64 = 30_000;
/// Largest `authorization_server.leeway`: 300 s.
pub(crate) const MAX_LEEWAY_MS: u64 = 300_000;
/// Default of `authorization_server.unavailable_status`.
pub(crate) const DEFAULT_UNAVAILABLE_STATUS: u16 = 503;
/// Default of `authorization_server.timeout`: 2 s.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 2_000;
/// Default of `authorization_server.token_type_hint` (an empty hint sends none).
pub(crate) const DEFAULT_TOKEN_TYPE_HINT: &str = "access_token";
/// Default of `authorization_server.response_max_age`: 60 s.
pub(crate) const DEFAULT_RESPONSE_MAX_AGE_MS: u64 = 60_000;
/// Default of `authorization_server.jwks_min_refresh`: 30 s.
pub(crate) const DEFAULT_JWKS_MIN_REFRESH_MS: u64 = 30_000;
/// Default of `authorization_server.jwks_refresh`: 10 min.
pub(crate) const DEFAULT_JWKS_REFRESH_MS: u64 = 600_000;
/// Default of `authorization_server.max_introspections_per_second`.
pub const DEFAULT_MAX_INTROSPECTIONS_PER_SECOND: usize = 1_000;

#[allow(missing_docs)] // each key is documented in docs/configuration.md
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorizationServer {
    pub issuer: String,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub client_secret_env: Option<String>,
    #[serde(default)]
    pub client_key: Option<String>,
    #[serde(default)]
    pub client_key_env: Option<String>,
    #[serde(default)]
    pub client_key_kid: Option<String>,
    #[serde(default = "default_client_auth")]
    pub client_auth: ClientAuth,
    #[serde(default = "default_dialect")]
    pub dialect: Dialect,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub token_type_hint: Option<String>,
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub leeway: Option<String>,
    #[serde(default)]
    pub response_max_age: Option<String>,
    #[serde(default)]
    pub jwks_min_refresh: Option<String>,
    #[serde(default)]
    pub jwks_refresh: Option<String>,
    #[serde(default)]
    pub unavailable_status: Option<u16>,
    #[serde(default)]
    pub max_introspections_per_second: Option<usize>,
}

debug_redacting!(RawAuthorizationServer {
    issuer, introspection_endpoint, jwks_uri, client_id, client_secret_env, client_key_env,
    client_key_kid, client_auth, dialect, timeout, token_type_hint, algorithms, leeway,
    response_max_age, jwks_min_refresh, jwks_refresh, unavailable_status,
    max_introspections_per_second,
} secret { client_secret, client_key });

fn default_client_auth() -> ClientAuth {
    DEFAULT_CLIENT_AUTH
}
fn default_dialect() -> Dialect {
    DEFAULT_DIALECT
}

/// The `[authorization_server]` section checked by [`RawAuthorizationServer::resolve`].
pub(super) struct AuthorizationServer {
    pub(super) issuer: String,
    pub(super) introspection_endpoint: Option<String>,
    pub(super) jwks_uri: Option<String>,
    pub(super) client_id: String,
    pub(super) client_auth: ClientAuth,
    pub(super) client_secret: Option<Secret>,
    pub(super) client_key: Option<Arc<SigningKey>>,
    pub(super) dialect: Dialect,
    pub(super) timeout_ms: u64,
    pub(super) token_type_hint: Option<String>,
    pub(super) algorithms: Vec<Alg>,
    pub(super) leeway_ms: u64,
    pub(super) unavailable_status: u16,
}

/// The durations and bounds of `[authorization_server]` checked by
/// [`RawAuthorizationServer::resolve_limits`].
pub(super) struct AuthorizationServerLimits {
    pub(super) response_max_age_ms: u64,
    pub(super) jwks_min_refresh_ms: u64,
    pub(super) jwks_refresh_ms: u64,
    pub(super) max_introspections_per_second: u64,
}

impl RawAuthorizationServer {
    /// The endpoints, the client's credentials for `mode`, the algorithms, leeway, status and
    /// timeout; `client_secret_env` and `client_key_env` are read through `env`.
    pub(super) fn resolve(
        &self,
        mode: Mode,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AuthorizationServer, ConfigError> {
        let a = self;
        check_url("authorization_server.issuer", &a.issuer)?;
        if mode == Mode::Phantom {
            match &a.introspection_endpoint {
                Some(u) => check_url("authorization_server.introspection_endpoint", u)?,
                None => {
                    return Err(ConfigError::new(
                        "authorization_server.introspection_endpoint",
                        "required in phantom mode",
                    ));
                }
            }
        }
        let needs_jwks = mode == Mode::Split || a.dialect != Dialect::Rfc7662;
        match &a.jwks_uri {
            Some(u) => check_url("authorization_server.jwks_uri", u)?,
            None if needs_jwks => {
                return Err(ConfigError::new(
                    "authorization_server.jwks_uri",
                    "required: this mode and dialect verify JWTs signed by the authorization server",
                ));
            }
            None => {}
        }
        let client_id = match (&a.client_id, mode) {
            (Some(id), _) if !id.is_empty() => id.clone(),
            (Some(_), _) => {
                return Err(ConfigError::new(
                    "authorization_server.client_id",
                    "must not be empty",
                ));
            }
            (None, Mode::Split) => String::new(),
            (None, Mode::Phantom) => {
                return Err(ConfigError::new(
                    "authorization_server.client_id",
                    "required in phantom mode",
                ));
            }
        };
        let client_secret = one_secret(
            env,
            "authorization_server.client_secret",
            a.client_secret.as_deref(),
            a.client_secret_env.as_deref(),
        )?;
        let client_key_pem = one_secret(
            env,
            "authorization_server.client_key",
            a.client_key.as_deref(),
            a.client_key_env.as_deref(),
        )?;
        let mut client_key = None;
        if mode == Mode::Phantom {
            match a.client_auth {
                ClientAuth::ClientSecretBasic | ClientAuth::ClientSecretPost => {
                    if client_secret.is_none() {
                        return Err(ConfigError::new(
                            "authorization_server.client_secret",
                            "client_secret or client_secret_env is required for this client_auth",
                        ));
                    }
                    if client_key_pem.is_some() {
                        return Err(ConfigError::new(
                            "authorization_server.client_key",
                            "only used with client_auth = \"private_key_jwt\"",
                        ));
                    }
                }
                ClientAuth::PrivateKeyJwt => {
                    let Some(pem) = client_key_pem else {
                        return Err(ConfigError::new(
                            "authorization_server.client_key",
                            "client_key or client_key_env (a PEM private key) is required for private_key_jwt",
                        ));
                    };
                    if client_secret.is_some() {
                        return Err(ConfigError::new(
                            "authorization_server.client_secret",
                            "not used with private_key_jwt: remove it",
                        ));
                    }
                    let kid = a.client_key_kid.clone();
                    let key = SigningKey::from_pem(pem.expose().as_bytes(), kid)
                        .map_err(|m| ConfigError::new("authorization_server.client_key", m))?;
                    client_key = Some(Arc::new(key));
                }
            }
        }

        let algorithms = match &a.algorithms {
            Some(list) => parse_algs("authorization_server.algorithms", list)?,
            None => DEFAULT_ALGORITHMS.to_vec(),
        };
        let leeway_ms = duration_or(
            "authorization_server.leeway",
            a.leeway.as_deref(),
            DEFAULT_LEEWAY_MS,
        )?;
        if leeway_ms > MAX_LEEWAY_MS {
            return Err(ConfigError::new(
                "authorization_server.leeway",
                "at most 300s",
            ));
        }
        let unavailable_status = a.unavailable_status.unwrap_or(DEFAULT_UNAVAILABLE_STATUS);
        if unavailable_status != 502 && unavailable_status != 503 {
            return Err(ConfigError::new(
                "authorization_server.unavailable_status",
                "must be 502 or 503",
            ));
        }
        let timeout_ms = positive(
            "authorization_server.timeout",
            a.timeout.as_deref(),
            DEFAULT_TIMEOUT_MS,
        )?;
        Ok(AuthorizationServer {
            issuer: a.issuer.clone(),
            introspection_endpoint: a.introspection_endpoint.clone(),
            jwks_uri: a.jwks_uri.clone(),
            client_id,
            client_auth: a.client_auth,
            client_secret,
            client_key,
            dialect: a.dialect,
            timeout_ms,
            token_type_hint: Some(
                a.token_type_hint
                    .clone()
                    .unwrap_or_else(|| DEFAULT_TOKEN_TYPE_HINT.into()),
            )
            .filter(|h| !h.is_empty()),
            algorithms,
            leeway_ms,
            unavailable_status,
        })
    }

    /// The key-set refresh pace, the response age limit and the introspection rate.
    pub(super) fn resolve_limits(&self) -> Result<AuthorizationServerLimits, ConfigError> {
        let a = self;
        Ok(AuthorizationServerLimits {
            response_max_age_ms: positive(
                "authorization_server.response_max_age",
                a.response_max_age.as_deref(),
                DEFAULT_RESPONSE_MAX_AGE_MS,
            )?,
            jwks_min_refresh_ms: duration_or(
                "authorization_server.jwks_min_refresh",
                a.jwks_min_refresh.as_deref(),
                DEFAULT_JWKS_MIN_REFRESH_MS,
            )?,
            jwks_refresh_ms: positive(
                "authorization_server.jwks_refresh",
                a.jwks_refresh.as_deref(),
                DEFAULT_JWKS_REFRESH_MS,
            )?,
            max_introspections_per_second: nonzero(
                "authorization_server.max_introspections_per_second",
                a.max_introspections_per_second,
                DEFAULT_MAX_INTROSPECTIONS_PER_SECOND,
            )? as u64,
        })
    }
}
