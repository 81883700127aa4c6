//! The one configuration every host accepts (TOML or JSON), and its validation.
//!
//! Loading is two steps so the core stays free of I/O: [`RawConfig`] is the serde shape
//! (exactly the keys documented in docs/configuration.md), and [`RawConfig::resolve`] turns it into a checked
//! [`Config`], reading secrets named by `*_env` keys through a lookup function the host passes
//! (usually `|name| std::env::var(name).ok()`). Every error names the offending field.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::jose::{Alg, SigningKey, VerifyingKey};
use crate::secret::Secret;

/// Inbound headers never passed upstream, before `upstream.strip_headers`: the client's
/// credentials and the path-override headers.
pub const ALWAYS_STRIPPED: [&str; 4] = ["authorization", "dpop", "x-original-url", "x-rewrite-url"];

/// Inbound headers about the client's connection that an upstream may trust, so a host that
/// proxies sets its own and passes none of the client's on (`x-forwarded-host` / `-proto` from
/// the request, `x-forwarded-for` only where the peer is known). Beyond RFC 7239's `forwarded`
/// and the `x-forwarded-for/-host/-proto` trio, the names common frameworks read behind a
/// trusted proxy: the port and path prefix (Spring's ForwardedHeaderFilter, Werkzeug's
/// ProxyFix, Django), the scheme under other names (Rack: `x-forwarded-scheme`,
/// `x-forwarded-ssl`, `x-url-scheme`, `front-end-https`; Gunicorn: `x-forwarded-protocol`;
/// Tornado: `x-scheme`), the proxy (Tomcat: `x-forwarded-by`) and the client address
/// (`x-real-ip`, `client-ip`, `x-client-ip`, `true-client-ip`, `x-cluster-client-ip`).
pub const FORWARDING_HEADERS: [&str; 18] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-protocol",
    "x-forwarded-by",
    "x-scheme",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-scheme",
    "x-forwarded-ssl",
    "x-url-scheme",
    "front-end-https",
    "x-real-ip",
    "client-ip",
    "x-client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
];

/// A header name as WSGI/CGI servers read it: lowercase, `_` as `-` (`X_Jwt_Assertion` and
/// `X-Jwt-Assertion` are the same variable there). Hosts compare inbound names in this form
/// with the headers they strip or set.
pub fn header_name_as_read(name: &str) -> std::borrow::Cow<'_, str> {
    if name.bytes().any(|b| b == b'_' || b.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(name.to_ascii_lowercase().replace('_', "-"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

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

debug_redacting!(RawAuthorizationServer {
    issuer, introspection_endpoint, jwks_uri, client_id, client_secret_env, client_key_env,
    client_key_kid, client_auth, dialect, timeout, token_type_hint, algorithms, leeway,
    response_max_age, jwks_min_refresh, jwks_refresh, unavailable_status,
    max_introspections_per_second,
} secret { client_secret, client_key });

debug_redacting!(RawCache {
    max_ttl, negative_ttl, max_entries, max_bytes, negative_max_entries, skew, max_pending,
    max_waiters, max_waiting, fingerprint_key_env, ignore_no_store,
} secret { fingerprint_key });

debug_redacting!(RawAssertions {
    signing_key_env, kid, max_ttl, issuer,
} secret { signing_key });

debug_redacting!(RawAdmin { token_env } secret { token });

fn default_client_auth() -> ClientAuth {
    ClientAuth::ClientSecretBasic
}
fn default_dialect() -> Dialect {
    Dialect::Rfc9701
}

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

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub scheme: Option<String>,
    #[serde(default)]
    pub strip_headers: Option<Vec<String>>,
}

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

#[allow(missing_docs)]
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub token_env: Option<String>,
}

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

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSplit {
    #[serde(default)]
    pub key_prefix: Option<String>,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRequest {
    #[serde(default)]
    pub allow_query_token: bool,
}

#[allow(missing_docs)]
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub path_prefix: String,
    #[serde(default)]
    pub required_scopes: Vec<String>,
    #[serde(default)]
    pub audience: Option<String>,
}

impl RawConfig {
    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| ConfigError::new("(toml)", e.message().to_string()))?;
        serde_path_to_error::deserialize(de).map_err(|e| shape_error(&e, |i| i.message().into()))
    }

    /// Parses JSON text.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let raw = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| shape_error(&e, ToString::to_string))?;
        de.end()
            .map_err(|e| ConfigError::new("(json)", e.to_string()))?;
        Ok(raw)
    }

    /// Parses a JSON value (what bindings build from dicts and objects).
    pub fn from_value(value: serde_json::Value) -> Result<Self, ConfigError> {
        serde_path_to_error::deserialize(value).map_err(|e| shape_error(&e, ToString::to_string))
    }

    /// Checks everything and reads secrets named by `*_env` keys through `env`.
    pub fn resolve(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::build(self, env)
    }
}

/// A shape error (unknown or missing key, wrong type) named by its path: `cache.max_ttl`,
/// `routes[0].path_prefix`, or the key itself for an unknown or missing one (`cache.maxttl`).
/// The value is never repeated: `client_secret = 1234567` must not print the secret.
fn shape_error<E>(
    e: &serde_path_to_error::Error<E>,
    message: impl Fn(&E) -> String,
) -> ConfigError {
    let message = without_value(&message(e.inner()));
    let path = e.path().to_string();
    let field = match (field_from_message(&message), path.as_str()) {
        // An unknown key ends the path already; a missing one does not.
        (Some(key), ".") => key,
        (Some(key), _) if path == key || path.ends_with(&format!(".{key}")) => path,
        (Some(key), _) => format!("{path}.{key}"),
        (None, ".") => "(config)".into(),
        (None, _) => path,
    };
    ConfigError::new(field, message)
}

/// serde's messages name an unknown or missing key in backquotes ("unknown field `cahce`,
/// expected ...", "missing field `issuer`").
fn field_from_message(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_string())
}

/// "invalid type: integer `1234567`, expected a string" → "invalid type: integer, expected a
/// string" (also for "invalid value", quoted strings and "unknown variant `x`"): the kind and
/// what was expected stay, the value goes.
fn without_value(message: &str) -> String {
    if let Some(rest) = message.strip_prefix("unknown variant ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("unknown variant, expected {expected}");
    }
    for lead in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = message.strip_prefix(lead)
            && let Some((what, expected)) = rest.rsplit_once(", expected ")
        {
            let kind = what.split([' ', '`', '"']).next().unwrap_or("");
            return format!("{lead}{kind}, expected {expected}");
        }
    }
    message.to_string()
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
    pub(crate) allow_query_token: bool,
    pub(crate) routes: Vec<Route>,
}

/// The `[assertions]` section, checked.
#[derive(Clone)]
pub(crate) struct Assertions {
    pub(crate) key: Arc<SigningKey>,
    pub(crate) max_ttl_ms: u64,
    pub(crate) issuer: String,
}

/// One `[[routes]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Matched on a path-segment boundary: `/orders` matches `/orders` and `/orders/1`, not
    /// `/ordersX`.
    pub path_prefix: String,
    /// Every one must be in the token's `scope`.
    pub required_scopes: Vec<String>,
    /// Must be in the token's `aud`, and is the `aud` of minted upstream JWTs.
    pub audience: Option<String>,
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

const MAX_LEEWAY_MS: u64 = 300_000;

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

    fn build(raw: RawConfig, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let a = &raw.authorization_server;
        let mode = raw.mode;
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
            None => vec![Alg::ES256, Alg::ES384, Alg::EdDSA, Alg::RS256, Alg::PS256],
        };
        let leeway_ms = duration_or("authorization_server.leeway", a.leeway.as_deref(), 30_000)?;
        if leeway_ms > MAX_LEEWAY_MS {
            return Err(ConfigError::new(
                "authorization_server.leeway",
                "at most 300s",
            ));
        }
        let unavailable_status = a.unavailable_status.unwrap_or(503);
        if unavailable_status != 502 && unavailable_status != 503 {
            return Err(ConfigError::new(
                "authorization_server.unavailable_status",
                "must be 502 or 503",
            ));
        }
        let timeout_ms = positive("authorization_server.timeout", a.timeout.as_deref(), 2_000)?;

        let c = &raw.cache;
        let max_ttl_ms = positive("cache.max_ttl", c.max_ttl.as_deref(), 300_000)?;
        let negative_ttl_ms = duration_or("cache.negative_ttl", c.negative_ttl.as_deref(), 10_000)?;
        let max_entries = nonzero("cache.max_entries", c.max_entries, 100_000)?;
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

        let u = &raw.upstream;
        let upstream_header = u
            .header
            .clone()
            .unwrap_or_else(|| "authorization".into())
            .to_ascii_lowercase();
        if upstream_header.is_empty() || !upstream_header.bytes().all(is_token_char) {
            return Err(ConfigError::new(
                "upstream.header",
                "must be a valid HTTP header name",
            ));
        }
        let upstream_scheme = u.scheme.clone().unwrap_or_else(|| "Bearer".into());
        if !upstream_scheme.bytes().all(is_token_char) {
            return Err(ConfigError::new(
                "upstream.scheme",
                "must be an HTTP auth scheme token (or empty)",
            ));
        }
        // Always: the client's credentials, and the headers some servers and frameworks
        // (IIS URL Rewrite, Symfony, Zend) take as the request's path instead of the target
        // line: the upstream must route on the path this edge authorized.
        let mut strip_headers: Vec<String> = ALWAYS_STRIPPED.iter().map(|h| (*h).into()).collect();
        for h in u.strip_headers.iter().flatten() {
            let h = h.to_ascii_lowercase();
            if h.is_empty() || !h.bytes().all(is_token_char) {
                return Err(ConfigError::new(
                    "upstream.strip_headers",
                    format!("not a header name: {h:?}"),
                ));
            }
            if !strip_headers.contains(&h) {
                strip_headers.push(h);
            }
        }

        let assertions = match &raw.assertions {
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
                    max_ttl_ms: positive("assertions.max_ttl", s.max_ttl.as_deref(), 60_000)?,
                    issuer: s.issuer.clone().unwrap_or_else(|| "phantom-edge".into()),
                })
            }
        };
        // The RFC 9701 response JWT must never be used as an access token (RFC 9701 §8.1), and
        // plain JSON has no JWT at all: both need the edge to mint.
        if assertions.is_none()
            && mode == Mode::Phantom
            && matches!(a.dialect, Dialect::Rfc9701 | Dialect::Rfc7662)
        {
            return Err(ConfigError::new(
                "assertions",
                "required with dialect \"rfc9701\" or \"rfc7662\": the edge mints the upstream JWT",
            ));
        }

        let admin_token = match &raw.admin {
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

        let r = &raw.revocation;
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

        let d = &raw.dpop;
        let dpop_algorithms = match &d.algorithms {
            Some(list) => parse_algs("dpop.algorithms", list)?,
            None => vec![Alg::ES256, Alg::EdDSA, Alg::PS256, Alg::RS256],
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

        let mut routes = Vec::with_capacity(raw.routes.len());
        if raw.routes.is_empty() {
            return Err(ConfigError::new(
                "routes",
                "at least one [[routes]] entry is required (use path_prefix = \"/\" for a catch-all)",
            ));
        }
        for (i, r) in raw.routes.iter().enumerate() {
            let field = format!("routes[{i}].path_prefix");
            if !r.path_prefix.starts_with('/') {
                return Err(ConfigError::new(field, "must start with '/'"));
            }
            if r.path_prefix.contains(['?', '#']) {
                return Err(ConfigError::new(
                    field,
                    "must be a path without query or fragment",
                ));
            }
            if r.path_prefix.contains("//") {
                // "//" would trim to "" and match every path; no request path has "//" anyway.
                return Err(ConfigError::new(
                    field,
                    "must not contain an empty segment (//)",
                ));
            }
            let prefix = if r.path_prefix.len() > 1 {
                r.path_prefix.trim_end_matches('/')
            } else {
                "/"
            };
            // A prefix a request could reach only through a path the edge refuses as ambiguous
            // (`%`, `;`, `admin.`, a letter read as an ASCII one) would never match. (Other
            // non-ASCII text is read as written: `/café` is reached by a raw UTF-8 path.)
            // Non-ASCII letters in lower case only: paths are compared with them folded so.
            let plain = match crate::request::check_path(prefix) {
                Ok(None) => true,
                Ok(Some(lenient)) => lenient == prefix && !prefix.contains(['%', ';']),
                Err(_) => false,
            };
            if !plain {
                return Err(ConfigError::new(
                    field,
                    "must be a plain path: no %-encoding, ';', dot segments, segments ending \
                     in '.', upper-case non-ASCII letters or letters that case-fold to ASCII \
                     ones",
                ));
            }
            if routes
                .iter()
                .any(|x: &Route| x.path_prefix.eq_ignore_ascii_case(prefix))
            {
                // Routes are also compared as case-insensitive upstreams read them.
                return Err(ConfigError::new(
                    field,
                    format!("duplicate path_prefix {prefix:?} (case is not told apart)"),
                ));
            }
            for (j, s) in r.required_scopes.iter().enumerate() {
                // RFC 6749 §3.3 scope-token: %x21 / %x23-5B / %x5D-7E (it goes into the
                // WWW-Authenticate `scope` parameter as is).
                let scope_char = |b: u8| matches!(b, 0x21 | 0x23..=0x5b | 0x5d..=0x7e);
                if s.is_empty() || !s.bytes().all(scope_char) {
                    return Err(ConfigError::new(
                        format!("routes[{i}].required_scopes[{j}]"),
                        "a scope is a non-empty RFC 6749 scope-token: printable ASCII without \
                         spaces, quotes or backslashes",
                    ));
                }
            }
            if r.audience.as_deref() == Some("") {
                return Err(ConfigError::new(
                    format!("routes[{i}].audience"),
                    "must not be empty",
                ));
            }
            routes.push(Route {
                path_prefix: prefix.to_string(),
                required_scopes: r.required_scopes.clone(),
                audience: r.audience.clone(),
            });
        }

        let realm = raw.realm.clone().unwrap_or_else(|| "phantom-edge".into());
        if realm.contains(['"', '\\']) || realm.chars().any(char::is_control) {
            return Err(ConfigError::new(
                "realm",
                "must not contain quotes, backslashes or control characters",
            ));
        }

        Ok(Self {
            mode,
            realm,
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
                    .unwrap_or_else(|| "access_token".into()),
            )
            .filter(|h| !h.is_empty()),
            algorithms,
            leeway_ms,
            response_max_age_ms: positive(
                "authorization_server.response_max_age",
                a.response_max_age.as_deref(),
                60_000,
            )?,
            jwks_min_refresh_ms: duration_or(
                "authorization_server.jwks_min_refresh",
                a.jwks_min_refresh.as_deref(),
                30_000,
            )?,
            jwks_refresh_ms: positive(
                "authorization_server.jwks_refresh",
                a.jwks_refresh.as_deref(),
                600_000,
            )?,
            unavailable_status,
            max_introspections_per_second: nonzero(
                "authorization_server.max_introspections_per_second",
                a.max_introspections_per_second,
                DEFAULT_MAX_INTROSPECTIONS_PER_SECOND,
            )? as u64,
            max_ttl_ms,
            negative_ttl_ms,
            max_entries,
            max_bytes: nonzero("cache.max_bytes", c.max_bytes, 256 * 1024 * 1024)?,
            negative_max_entries: nonzero(
                "cache.negative_max_entries",
                c.negative_max_entries,
                max_entries,
            )?,
            skew_ms: duration_or("cache.skew", c.skew.as_deref(), 5_000)?,
            max_pending: nonzero("cache.max_pending", c.max_pending, 10_000)?,
            max_waiters: nonzero("cache.max_waiters", c.max_waiters, 1_000)?,
            max_waiting: nonzero("cache.max_waiting", c.max_waiting, 20_000)?,
            fingerprint_key,
            ignore_no_store: c.ignore_no_store,
            upstream_header,
            upstream_scheme,
            strip_headers,
            assertions,
            admin_token,
            revocation_max_entries: nonzero("revocation.max_entries", r.max_entries, 100_000)?,
            revocation_default_ttl_ms: positive(
                "revocation.default_ttl",
                r.default_ttl.as_deref(),
                86_400_000,
            )?,
            set_key,
            set_issuer: r.set_issuer.clone().unwrap_or_else(|| a.issuer.clone()),
            set_audience: r.set_audience.clone(),
            dpop_algorithms,
            dpop_proof_max_age_ms: positive(
                "dpop.proof_max_age",
                d.proof_max_age.as_deref(),
                60_000,
            )?,
            dpop_max_replay_entries: nonzero(
                "dpop.max_replay_entries",
                d.max_replay_entries,
                100_000,
            )?,
            dpop_origins,
            allow_query_token: raw.request.allow_query_token,
            split_key_prefix: raw
                .split
                .key_prefix
                .clone()
                .unwrap_or_else(|| "phantom-edge:split:".into()),
            routes,
        })
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(r)
            if !r.is_empty()
                && !r.starts_with('/')
                && !url.chars().any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Ok(())
        }
        _ => Err(ConfigError::new(
            field,
            format!("must be an absolute http(s) URL, got {url:?}"),
        )),
    }
}

/// Exactly one of `key` and `key_env` (or neither). `name` is the field of the literal key.
fn one_secret(
    env: &dyn Fn(&str) -> Option<String>,
    name: &str,
    literal: Option<&str>,
    env_name: Option<&str>,
) -> Result<Option<Secret>, ConfigError> {
    match (literal, env_name) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            name,
            format!("give {name} or {name}_env, not both"),
        )),
        (Some(""), None) => Err(ConfigError::new(name, "must not be empty")),
        (Some(v), None) => Ok(Some(Secret::new(v.to_string()))),
        (None, Some(var)) => match env(var) {
            Some(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            _ => Err(ConfigError::new(
                format!("{name}_env"),
                format!("environment variable {var} is not set or empty"),
            )),
        },
        (None, None) => Ok(None),
    }
}

fn parse_algs(field: &str, list: &[String]) -> Result<Vec<Alg>, ConfigError> {
    if list.is_empty() {
        return Err(ConfigError::new(field, "must list at least one algorithm"));
    }
    list.iter()
        .map(|s| {
            Alg::parse_allowed(s).ok_or_else(|| {
                ConfigError::new(
                    field,
                    format!("{s:?} is not allowed (asymmetric only: ES256, ES384, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512)"),
                )
            })
        })
        .collect()
}

fn duration_or(field: &str, text: Option<&str>, default_ms: u64) -> Result<u64, ConfigError> {
    match text {
        None => Ok(default_ms),
        Some(t) => parse_duration(t).ok_or_else(|| {
            ConfigError::new(
                field,
                format!("{t:?} is not a duration (e.g. \"250ms\", \"2s\", \"5m\", \"1h\")"),
            )
        }),
    }
}

fn positive(field: &str, text: Option<&str>, default_ms: u64) -> Result<u64, ConfigError> {
    let v = duration_or(field, text, default_ms)?;
    if v == 0 {
        return Err(ConfigError::new(field, "must be greater than zero"));
    }
    Ok(v)
}

/// Default of `authorization_server.max_introspections_per_second`.
pub const DEFAULT_MAX_INTROSPECTIONS_PER_SECOND: usize = 1_000;

fn nonzero(field: &str, v: Option<usize>, default: usize) -> Result<usize, ConfigError> {
    match v {
        Some(0) => Err(ConfigError::new(field, "must be greater than zero")),
        Some(v) => Ok(v),
        None => Ok(default),
    }
}

/// Parses `"250ms"`, `"2s"`, `"5m"`, `"1h"`, `"1d"` into milliseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_as_wsgi_reads_them() {
        assert_eq!(header_name_as_read("X_Jwt_Assertion"), "x-jwt-assertion");
        assert_eq!(header_name_as_read("X-Forwarded-Host"), "x-forwarded-host");
        assert!(matches!(
            header_name_as_read("x-kept"),
            std::borrow::Cow::Borrowed("x-kept")
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Some(2000));
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("5m"), Some(300_000));
        assert_eq!(parse_duration("1h"), Some(3_600_000));
        assert_eq!(parse_duration("2"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("1.5s"), None);
    }

    #[test]
    fn field_names_come_from_serde_messages() {
        assert_eq!(
            field_from_message("unknown field `cahce`, expected one of"),
            Some("cahce".into())
        );
        assert_eq!(
            field_from_message("invalid type: integer `5`, expected"),
            None
        );
        assert_eq!(
            without_value("invalid type: integer `1234567`, expected a string"),
            "invalid type: integer, expected a string"
        );
        assert_eq!(
            without_value("unknown variant `hunter2, x`, expected `a` or `b`"),
            "unknown variant, expected `a` or `b`"
        );
        assert_eq!(
            without_value("invalid value: string \"hunter2, x\", expected one of `a`, `b`"),
            "invalid value: string, expected one of `a`, `b`"
        );
    }
}
