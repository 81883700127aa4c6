//! The one configuration every host accepts (TOML or JSON), and its validation.
//!
//! Loading is two steps so the core stays free of I/O: [`RawConfig`] is the serde shape
//! (exactly the keys documented in docs/configuration.md), and [`RawConfig::resolve`] turns it into a checked
//! [`Config`], reading secrets named by `*_env` keys through a lookup function the host passes
//! (usually `|name| env::var(name).ok()`, reading the process environment). Every error names
//! the offending field.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::jose::{Alg, SigningKey, VerifyingKey};
use crate::secret::Secret;

/// `Debug` for a raw config section that prints every field except the secret ones, which show
/// as `{REDACTED}` when set (invariant 1: a host that logs its config must not log secrets). The
/// destructuring makes a new field a compile error until it is listed here.
macro_rules! debug_redacting {
    ($ty:ident { $($field:ident),* $(,)? } secret { $($secret:ident),* $(,)? }) => {
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let Self { $($field,)* $($secret,)* } = self;
                f.debug_struct(stringify!($ty))
                    $(.field(stringify!($field), $field))*
                    $(.field(stringify!($secret), &$secret.as_ref().map(|_| "{REDACTED}")))*
                    .finish()
            }
        }
    };
}

// One file per section: its serde shape (`Raw*`), its defaults as named constants and its
// resolve steps. `parse` reads the shape and names shape errors; `values` checks single values.
mod admin;
mod assertions;
mod authorization_server;
mod cache;
mod dpop;
mod parse;
mod request;
mod revocation;
mod routes;
mod split;
mod upstream;
mod values;

pub use admin::RawAdmin;
use assertions::Assertions;
pub use assertions::RawAssertions;
pub use authorization_server::{
    ClientAuth, DEFAULT_MAX_INTROSPECTIONS_PER_SECOND, Dialect, RawAuthorizationServer,
};
pub use cache::RawCache;
pub use dpop::RawDpop;
pub use request::RawRequest;
pub use revocation::RawRevocation;
pub use routes::{RawRoute, Route};
pub use split::RawSplit;
pub use upstream::{ALWAYS_STRIPPED, FORWARDING_HEADERS, RawUpstream, header_name_as_read};
pub use values::parse_duration;

/// A configuration error: which field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config: {field}: {message}")]
pub struct ConfigError {
    /// Dotted path of the offending key, e.g. `authorization_server.client_secret_env`.
    pub field: String,
    /// What is wrong, in words.
    pub message: String,
}

impl ConfigError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Operating mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Mode {
    /// Introspect opaque tokens at the authorization server.
    #[default]
    Phantom,
    /// Rebuild the JWT from the shared store keyed by the hash of the presented signature.
    Split,
}

// ---------------------------------------------------------------------------------------------
// The serde shape
// ---------------------------------------------------------------------------------------------

/// The configuration as written in TOML or JSON. Unknown keys are refused, except the host
/// sections `[gateway]` and `[middleware]`, which the core carries but does not read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `phantom` (default) or `split`.
    #[serde(default)]
    pub mode: Mode,
    /// Realm in `WWW-Authenticate` challenges.
    #[serde(default)]
    pub realm: Option<String>,
    /// The authorization server.
    pub authorization_server: RawAuthorizationServer,
    /// Cache limits.
    #[serde(default)]
    pub cache: RawCache,
    /// What is forwarded upstream.
    #[serde(default)]
    pub upstream: RawUpstream,
    /// The edge's own signing key for minted upstream JWTs.
    #[serde(default)]
    pub assertions: Option<RawAssertions>,
    /// The bearer secret guarding revocation routes.
    #[serde(default)]
    pub admin: Option<RawAdmin>,
    /// Revocation state and Security Event Tokens.
    #[serde(default)]
    pub revocation: RawRevocation,
    /// Sender-constrained tokens (DPoP, mTLS).
    #[serde(default)]
    pub dpop: RawDpop,
    /// Split-token mode settings.
    #[serde(default)]
    pub split: RawSplit,
    /// Where tokens may come from besides the Authorization header.
    #[serde(default)]
    pub request: RawRequest,
    /// Path prefix → required scopes and audience.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Host section of phantom-gateway; not read by the core.
    #[serde(default)]
    pub gateway: Option<serde_json::Value>,
    /// Host section of the Python and Node middleware; not read by the core.
    #[serde(default)]
    pub middleware: Option<serde_json::Value>,
}

impl RawConfig {
    /// Checks everything and reads secrets named by `*_env` keys through `env`.
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::build(self, env)
    }
}

// ---------------------------------------------------------------------------------------------
// The checked configuration
// ---------------------------------------------------------------------------------------------

/// A checked configuration. Build it with [`Config::from_toml`], [`Config::from_json`] or
/// [`RawConfig::resolve`]. All durations are milliseconds.
#[derive(Clone)]
pub struct Config {
    pub(crate) mode: Mode,
    pub(crate) realm: String,
    pub(crate) issuer: String,
    pub(crate) introspection_endpoint: Option<String>,
    pub(crate) jwks_uri: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_auth: ClientAuth,
    pub(crate) client_secret: Option<Secret>,
    pub(crate) client_key: Option<Arc<SigningKey>>,
    pub(crate) dialect: Dialect,
    pub(crate) timeout_ms: u64,
    pub(crate) token_type_hint: Option<String>,
    pub(crate) algorithms: Vec<Alg>,
    pub(crate) leeway_ms: u64,
    pub(crate) response_max_age_ms: u64,
    pub(crate) jwks_min_refresh_ms: u64,
    /// A JWKS older than this is fetched again when a signature is next verified.
    pub(crate) jwks_refresh_ms: u64,
    pub(crate) unavailable_status: u16,
    /// New introspections per second (a token bucket holding one second's worth).
    pub(crate) max_introspections_per_second: u64,
    pub(crate) max_ttl_ms: u64,
    pub(crate) negative_ttl_ms: u64,
    pub(crate) max_entries: usize,
    pub(crate) max_bytes: usize,
    pub(crate) negative_max_entries: usize,
    pub(crate) skew_ms: u64,
    pub(crate) max_pending: usize,
    pub(crate) max_waiters: usize,
    /// Requests waiting on tickets, all tokens together.
    pub(crate) max_waiting: usize,
    pub(crate) fingerprint_key: Option<[u8; 32]>,
    pub(crate) ignore_no_store: bool,
    pub(crate) upstream_header: String,
    pub(crate) upstream_scheme: String,
    pub(crate) strip_headers: Vec<String>,
    pub(crate) assertions: Option<Assertions>,
    pub(crate) admin_token: Option<Secret>,
    pub(crate) revocation_max_entries: usize,
    pub(crate) revocation_default_ttl_ms: u64,
    pub(crate) set_key: Option<Arc<VerifyingKey>>,
    pub(crate) set_issuer: String,
    pub(crate) set_audience: Option<String>,
    pub(crate) dpop_algorithms: Vec<Alg>,
    pub(crate) dpop_proof_max_age_ms: u64,
    pub(crate) dpop_max_replay_entries: usize,
    /// `dpop.origins`, normalised (`https://api.example`): when set, a proof's `htu` must be one
    /// of them + the request path; the request's own scheme and `Host` are not used.
    pub(crate) dpop_origins: Vec<String>,
    pub(crate) split_key_prefix: String,
    /// `split.plain_values`: plain `header.payload` store values are read too.
    pub(crate) split_plain_values: bool,
    pub(crate) allow_query_token: bool,
    pub(crate) routes: Vec<Route>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Secrets are `Secret` (printing `{REDACTED}`); keys print their kid and alg only.
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("issuer", &self.issuer)
            .field("introspection_endpoint", &self.introspection_endpoint)
            .field("jwks_uri", &self.jwks_uri)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field("client_secret", &self.client_secret)
            .field("dialect", &self.dialect)
            .field("routes", &self.routes)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Parses and checks TOML, reading `*_env` secrets through `env`.
    pub fn from_toml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        RawConfig::from_toml(text)?.resolve(env)
    }

    /// Parses and checks JSON, reading `*_env` secrets through `env`.
    pub fn from_json(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        RawConfig::from_json(text)?.resolve(env)
    }

    /// The configured routes, in the order given.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The issuer of the authorization server.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The JWKS URI of the authorization server, if configured.
    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// The introspection request timeout (ticket deadline) in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// Whether tokens are read from the `access_token` query parameter
    /// (`request.allow_query_token`): hosts then must keep the original request target out of
    /// their own logs.
    pub fn allow_query_token(&self) -> bool {
        self.allow_query_token
    }

    /// The operating mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Every section's checks, in the order they have always run: a configuration with several
    /// errors reports the first one met here. Each section's `resolve` step runs in the order of
    /// the sections, then the `resolve_limits` steps check the remaining durations and bounds.
    fn build(raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mode = raw.mode;
        let a = raw.authorization_server.resolve(mode, env)?;
        let c = raw.cache.resolve(env)?;
        let u = raw.upstream.resolve()?;
        let assertions = assertions::resolve(raw.assertions.as_ref(), mode, a.dialect, env)?;
        let admin_token = admin::resolve(raw.admin.as_ref(), env)?;
        let r = raw.revocation.resolve(&a.issuer, env)?;
        let d = raw.dpop.resolve()?;
        let routes = routes::resolve(&raw.routes)?;
        let realm = resolve_realm(raw.realm.as_deref())?;
        let a_limits = raw.authorization_server.resolve_limits()?;
        let c_limits = raw.cache.resolve_limits(c.max_entries)?;
        let r_limits = raw.revocation.resolve_limits()?;
        let d_limits = raw.dpop.resolve_limits()?;
        let (split_key_prefix, split_plain_values) = raw.split.resolve();

        Ok(Self {
            mode,
            realm,
            issuer: a.issuer,
            introspection_endpoint: a.introspection_endpoint,
            jwks_uri: a.jwks_uri,
            client_id: a.client_id,
            client_auth: a.client_auth,
            client_secret: a.client_secret,
            client_key: a.client_key,
            dialect: a.dialect,
            timeout_ms: a.timeout_ms,
            token_type_hint: a.token_type_hint,
            algorithms: a.algorithms,
            leeway_ms: a.leeway_ms,
            response_max_age_ms: a_limits.response_max_age_ms,
            jwks_min_refresh_ms: a_limits.jwks_min_refresh_ms,
            jwks_refresh_ms: a_limits.jwks_refresh_ms,
            unavailable_status: a.unavailable_status,
            max_introspections_per_second: a_limits.max_introspections_per_second,
            max_ttl_ms: c.max_ttl_ms,
            negative_ttl_ms: c.negative_ttl_ms,
            max_entries: c.max_entries,
            max_bytes: c_limits.max_bytes,
            negative_max_entries: c_limits.negative_max_entries,
            skew_ms: c_limits.skew_ms,
            max_pending: c_limits.max_pending,
            max_waiters: c_limits.max_waiters,
            max_waiting: c_limits.max_waiting,
            fingerprint_key: c.fingerprint_key,
            ignore_no_store: c.ignore_no_store,
            upstream_header: u.header,
            upstream_scheme: u.scheme,
            strip_headers: u.strip_headers,
            assertions,
            admin_token,
            revocation_max_entries: r_limits.max_entries,
            revocation_default_ttl_ms: r_limits.default_ttl_ms,
            set_key: r.set_key,
            set_issuer: r.set_issuer,
            set_audience: r.set_audience,
            dpop_algorithms: d.algorithms,
            dpop_proof_max_age_ms: d_limits.proof_max_age_ms,
            dpop_max_replay_entries: d_limits.max_replay_entries,
            dpop_origins: d.origins,
            allow_query_token: raw.request.allow_query_token,
            split_key_prefix,
            split_plain_values,
            routes,
        })
    }
}

/// Default of `realm`.
pub(crate) const DEFAULT_REALM: &str = "phantom-edge";

/// The realm of `WWW-Authenticate` challenges (a quoted-string there).
fn resolve_realm(realm: Option<&str>) -> Result<String, ConfigError> {
    let realm = realm.map_or_else(|| DEFAULT_REALM.to_owned(), str::to_owned);
    if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
        return Err(ConfigError::new(
            "realm",
            "must not contain quotes, backslashes or control characters",
        ));
    }
    Ok(realm)
}
