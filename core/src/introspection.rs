//! RFC 7662 requests, and the four response dialects normalised into one [`Outcome`].

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64STD;

use crate::action::Reason;
use crate::config::{ClientAuth, Config, Dialect};
use crate::jose::{Jws, JwsError, KeySet};
use crate::token::{Claims, TokenInfo};

/// Largest introspection response body we parse.
pub const MAX_RESPONSE_BODY: usize = 32 * 1024;

/// An HTTP response as the host received it.
#[derive(Debug, Clone, Copy)]
pub struct HttpResponse<'a> {
    /// Status code.
    pub status: u16,
    /// Response headers (any case).
    pub headers: &'a [(&'a str, &'a str)],
    /// Body bytes.
    pub body: &'a [u8],
}

/// What an introspection (or split-token lookup) established.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Active: claims, the AS-issued JWT to forward as is (Curity, Keycloak, split), and the
    /// response's own freshness bound.
    Active {
        info: Box<TokenInfo>,
        jwt: Option<String>,
        cache: CacheDirective,
    },
    /// Not active, unknown, or expired according to the AS.
    Inactive(Reason),
    /// The answer cannot be trusted or used: fail closed.
    Failure(Reason, String),
    /// A signature names a key we do not have (its `kid`, when the JWS names one): refresh the
    /// JWKS and try again.
    NeedKeys(Option<String>),
}

/// What a response says about how long its answer may be used: `Cache-Control`, `Age` and, for
/// RFC 9701, the signed answer's `iat` and `exp`. See [`CacheDirective::fresh_until`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CacheDirective {
    /// `no-store` or `no-cache` (which `cache.ignore_no_store` may override).
    pub(crate) no_store: bool,
    /// The smallest `max-age`/`s-maxage`; `Some(0)` (already stale) when one, or an `Age`, cannot
    /// be read. Never overridden by `cache.ignore_no_store`.
    pub(crate) max_age_ms: Option<u64>,
    /// `Age` (RFC 9111 §5.1): how long the answer already spent in caches on its way to us; the
    /// largest when there are several.
    pub(crate) age_ms: u64,
    /// RFC 9701: the signed answer's `iat`; `max-age` counts from there too.
    pub(crate) issued_at_ms: Option<u64>,
    /// RFC 9701: the signed answer's own `exp`.
    pub(crate) not_after_ms: Option<u64>,
}

impl CacheDirective {
    /// The latest time (Unix ms) an answer handled at `now_ms` may be used, as far as the response
    /// says (`None`: it sets no bound; `max_ttl` and the token's `exp` still apply). `max-age` is
    /// counted from the answer's age (RFC 9111 §4.2.3: `max-age − Age` from now) and, for RFC 9701,
    /// from `iat` as well, whichever ends first; the signed answer's `exp` bounds it too. A result
    /// at or before `now_ms` means "do not cache" (invariant 3).
    pub(crate) fn fresh_until(&self, now_ms: u64) -> Option<u64> {
        let by_age = self
            .max_age_ms
            .map(|ma| now_ms.saturating_add(ma.saturating_sub(self.age_ms)));
        // An `iat` in the future (clock skew within leeway) loses to the now-based bound.
        let by_iat = self
            .max_age_ms
            .zip(self.issued_at_ms)
            .map(|(ma, iat)| iat.saturating_add(ma));
        [by_age, by_iat, self.not_after_ms]
            .into_iter()
            .flatten()
            .min()
    }
}

/// RFC 9111 §1.2.2 `delta-seconds` (digits only) in milliseconds, saturating when too large for
/// us (a huge value reads as "very long"); `None` when it is not a delta-seconds at all.
fn delta_seconds_ms(v: &str) -> Option<u64> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(v.parse::<u64>().unwrap_or(u64::MAX).saturating_mul(1000))
}

pub(crate) fn header<'a>(headers: &[(&'a str, &'a str)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// Parses every `Cache-Control` and `Age` header. Anything we cannot read means "do not cache": a
/// cache must never outlive what the response allows (invariant 3). An unreadable `max-age` or
/// `Age` reads as `max-age=0` (already stale), which `cache.ignore_no_store` does not override;
/// of several `Age` values (headers or a comma-separated list) the largest counts.
pub(crate) fn cache_directive(headers: &[(&str, &str)]) -> CacheDirective {
    let mut d = CacheDirective::default();
    let mut stale = false;
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("age"))
    {
        for part in v.split(',') {
            match delta_seconds_ms(part.trim()) {
                Some(ms) => d.age_ms = d.age_ms.max(ms),
                None => stale = true,
            }
        }
    }
    for (_, v) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cache-control"))
    {
        for part in v.split(',') {
            let part = part.trim();
            let (name, value) = match part.split_once('=') {
                Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
                None => (part, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                d.no_store = true;
            } else if name.eq_ignore_ascii_case("max-age") || name.eq_ignore_ascii_case("s-maxage")
            {
                match value.and_then(delta_seconds_ms) {
                    Some(ms) => d.max_age_ms = Some(d.max_age_ms.map_or(ms, |m| m.min(ms))),
                    None => stale = true,
                }
            }
        }
    }
    if stale {
        d.max_age_ms = Some(0);
    }
    d
}

/// Builds the RFC 7662 §2.1 request body and headers for `token`.
pub(crate) fn build_request(
    cfg: &Config,
    token: &str,
    now_ms: u64,
    jti: &str,
) -> (Vec<(String, String)>, String) {
    let mut form = form_urlencoded::Serializer::new(String::with_capacity(token.len() + 64));
    form.append_pair("token", token);
    if let Some(hint) = &cfg.token_type_hint {
        form.append_pair("token_type_hint", hint);
    }
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept".to_string(), cfg.dialect.accept().to_string()),
    ];
    match cfg.client_auth {
        ClientAuth::ClientSecretBasic => {
            let secret = cfg.client_secret.as_ref().map(|s| s.expose()).unwrap_or("");
            // RFC 6749 §2.3.1: both parts form-urlencoded before base64.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let basic = B64STD.encode(format!("{}:{}", enc(&cfg.client_id), enc(secret)));
            headers.push(("authorization".to_string(), format!("Basic {basic}")));
        }
        ClientAuth::ClientSecretPost => {
            form.append_pair("client_id", &cfg.client_id);
            form.append_pair(
                "client_secret",
                cfg.client_secret.as_ref().map(|s| s.expose()).unwrap_or(""),
            );
        }
        ClientAuth::PrivateKeyJwt => {
            if let Some(key) = &cfg.client_key {
                let now_s = now_ms / 1000;
                let claims = serde_json::json!({
                    "iss": cfg.client_id, "sub": cfg.client_id, "aud": cfg.issuer,
                    "iat": now_s, "exp": now_s + 60, "jti": jti,
                });
                form.append_pair("client_id", &cfg.client_id);
                form.append_pair(
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                );
                form.append_pair("client_assertion", &key.sign("JWT", &claims));
            }
        }
    }
    (headers, form.finish())
}

fn failure(detail: impl Into<String>) -> Outcome {
    Outcome::Failure(Reason::Unavailable, detail.into())
}

/// A 400 answer, decided by its OAuth error code (RFC 6749 §5.2, RFC 7009 §2.2.1), so that a
/// client cannot make the edge report an outage with a token the authorization server merely
/// refuses to look at:
///
/// - `unsupported_token_type` (oidc-provider's answer to a JWT-shaped token it did not issue),
///   `invalid_token` and `invalid_grant` are about the presented token: it is not active (401,
///   cached negatively like any inactive answer).
/// - `invalid_client` and `unauthorized_client` are about our own client: a misconfiguration
///   (`client_auth_failed`, 503).
/// - Anything else (`invalid_request`, an unknown code, no JSON, a body too large) means our
///   request or the server is broken: fail closed (503).
fn error_outcome(resp: &HttpResponse<'_>) -> Outcome {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
    }
    let code = (resp.body.len() <= MAX_RESPONSE_BODY)
        .then(|| serde_json::from_slice::<OAuthError>(resp.body).ok())
        .flatten()
        .map(|e| e.error);
    match code.as_deref() {
        Some("unsupported_token_type" | "invalid_token" | "invalid_grant") => {
            Outcome::Inactive(Reason::Inactive)
        }
        Some(c @ ("invalid_client" | "unauthorized_client")) => Outcome::Failure(
            Reason::ClientAuthFailed,
            format!("status 400 {c}: the authorization server refused our client"),
        ),
        // Only the codes RFC 6749 and RFC 7009 define are echoed into the audit detail: the
        // rest of the body is the server's (and may repeat what it was sent).
        Some(
            c @ ("invalid_request"
            | "invalid_scope"
            | "unsupported_grant_type"
            | "temporarily_unavailable"
            | "server_error"),
        ) => failure(format!("status 400 {c}")),
        Some(_) => failure("status 400 with an unknown error code"),
        None => failure("status 400 without an OAuth error body"),
    }
}

/// The media type of a `Content-Type` value, without parameters, lowercased.
pub(crate) fn media_type(content_type: Option<&str>) -> String {
    content_type
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Turns the authorization server's answer into an [`Outcome`].
pub(crate) fn parse_response(
    cfg: &Config,
    keys: Option<&KeySet>,
    resp: &HttpResponse<'_>,
    now_ms: u64,
) -> Outcome {
    match resp.status {
        200 => {}
        204 if cfg.dialect == Dialect::Curity => return Outcome::Inactive(Reason::Inactive),
        401 | 403 => {
            return Outcome::Failure(
                Reason::ClientAuthFailed,
                format!(
                    "status {}: the authorization server refused our client credentials",
                    resp.status
                ),
            );
        }
        400 => return error_outcome(resp),
        s => return failure(format!("status {s}")),
    }
    if resp.body.len() > MAX_RESPONSE_BODY {
        return failure("response body too large");
    }
    let cache = cache_directive(resp.headers);
    let mt = media_type(header(resp.headers, "content-type"));
    match cfg.dialect {
        Dialect::Rfc7662 => {
            if mt != "application/json" {
                return failure(format!("unexpected content-type {mt:?}"));
            }
            match serde_json::from_slice::<Claims>(resp.body) {
                Ok(c) => from_introspection_claims(cfg, c, None, cache, now_ms),
                Err(_) => failure("introspection response is not valid RFC 7662 JSON"),
            }
        }
        Dialect::Rfc9701 => {
            if mt != "application/token-introspection+jwt" {
                return failure(format!(
                    "unexpected content-type {mt:?} (asked for application/token-introspection+jwt)"
                ));
            }
            let Some(keys) = keys else {
                return Outcome::NeedKeys(None);
            };
            let Ok(text) = std::str::from_utf8(resp.body) else {
                return failure("response is not UTF-8");
            };
            parse_rfc9701(cfg, keys, text.trim(), cache, now_ms)
        }
        Dialect::Curity => {
            if mt != "application/jwt" && !mt.is_empty() {
                return failure(format!("unexpected content-type {mt:?}"));
            }
            let Some(keys) = keys else {
                return Outcome::NeedKeys(None);
            };
            let Ok(text) = std::str::from_utf8(resp.body) else {
                return failure("response is not UTF-8");
            };
            from_access_jwt(cfg, keys, text.trim(), cache, now_ms, false)
        }
        Dialect::Keycloak => {
            if mt != "application/json" {
                return failure(format!("unexpected content-type {mt:?}"));
            }
            #[derive(serde::Deserialize)]
            struct Kc {
                active: bool,
                #[serde(default)]
                jwt: Option<String>,
            }
            let Ok(kc) = serde_json::from_slice::<Kc>(resp.body) else {
                return failure("introspection response is not valid JSON with `active`");
            };
            if !kc.active {
                return Outcome::Inactive(Reason::Inactive);
            }
            let Some(jwt) = kc.jwt else {
                return failure("active response without a `jwt` member");
            };
            let Some(keys) = keys else {
                return Outcome::NeedKeys(None);
            };
            from_access_jwt(cfg, keys, &jwt, cache, now_ms, false)
        }
    }
}

/// RFC 9701 §5: verify the response JWT, then read `token_introspection`.
fn parse_rfc9701(
    cfg: &Config,
    keys: &KeySet,
    jwt: &str,
    mut cache: CacheDirective,
    now_ms: u64,
) -> Outcome {
    #[derive(serde::Deserialize)]
    struct Resp {
        iss: String,
        aud: crate::token::OneOrMany,
        #[serde(deserialize_with = "de_u64")]
        iat: u64,
        #[serde(default)]
        exp: Option<serde_json::Number>,
        token_introspection: Claims,
    }
    let jws = match Jws::parse(jwt, &cfg.algorithms) {
        Ok(j) => j,
        Err(e) => return failure(format!("introspection JWT: {e}")),
    };
    if jws.check_typ(&[Some("token-introspection+jwt")]).is_err() {
        return failure("introspection JWT: typ is not token-introspection+jwt");
    }
    match jws.verify(keys) {
        Ok(()) => {}
        Err(JwsError::UnknownKid) => return Outcome::NeedKeys(jws.header.kid.clone()),
        Err(e) => return failure(format!("introspection JWT: {e}")),
    }
    let Ok(payload) = jws.payload() else {
        return failure("introspection JWT: payload is not base64url");
    };
    let r: Resp = match serde_json::from_slice(&payload) {
        Ok(r) => r,
        Err(e) => return failure(format!("introspection JWT claims: {e}")),
    };
    if r.iss != cfg.issuer {
        return failure("introspection JWT: iss is not the configured issuer");
    }
    if !r.aud.contains(&cfg.client_id) {
        return failure("introspection JWT: aud is not our client_id");
    }
    let iat_ms = r.iat.saturating_mul(1000);
    if iat_ms > now_ms.saturating_add(cfg.leeway_ms)
        || now_ms
            > iat_ms
                .saturating_add(cfg.response_max_age_ms)
                .saturating_add(cfg.leeway_ms)
    {
        return failure("introspection JWT: iat is not fresh");
    }
    if let Some(exp) = r.exp {
        let exp_ms = exp.as_u64().map(|e| e.saturating_mul(1000));
        if exp_ms.is_none_or(|e| e.saturating_add(cfg.leeway_ms) <= now_ms) {
            return failure("introspection JWT: expired");
        }
        // The signed answer bounds its own use (no leeway here: within it, it is not cached).
        cache.not_after_ms = exp_ms;
    }
    cache.issued_at_ms = Some(iat_ms);
    from_introspection_claims(cfg, r.token_introspection, None, cache, now_ms)
}

fn de_u64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let n: serde_json::Number = serde::Deserialize::deserialize(d)?;
    n.as_u64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        })
        .ok_or_else(|| serde::de::Error::custom("expected a non-negative number"))
}

/// RFC 7662 members (plain JSON or RFC 9701's `token_introspection`).
fn from_introspection_claims(
    cfg: &Config,
    c: Claims,
    jwt: Option<String>,
    cache: CacheDirective,
    now_ms: u64,
) -> Outcome {
    match c.active {
        Some(true) => {}
        Some(false) => return Outcome::Inactive(Reason::Inactive),
        None => return failure("introspection response has no boolean `active`"),
    }
    if c.token_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
    {
        return Outcome::Inactive(Reason::InvalidToken);
    }
    let info = c.into_info();
    if let Some(iss) = &info.iss
        && iss != &cfg.issuer
    {
        return Outcome::Inactive(Reason::WrongIssuer);
    }
    if let Some(exp) = info.exp
        && exp.saturating_mul(1000) <= now_ms
    {
        return Outcome::Inactive(Reason::Expired);
    }
    Outcome::Active {
        info: Box::new(info),
        jwt,
        cache,
    }
}

/// How an access-token JWT failed.
#[derive(Debug)]
pub(crate) enum JwtFailure {
    NeedKeys(Option<String>),
    Expired,
    Invalid(String),
}

/// Verifies an access-token JWT issued by the authorization server (RFC 9068 / RFC 8725): alg
/// allowlist, known key, typ (never an introspection response, DPoP proof or SET), iss, exp, nbf.
pub(crate) fn verify_access_jwt(
    cfg: &Config,
    keys: &KeySet,
    jwt: &str,
    now_ms: u64,
) -> Result<TokenInfo, JwtFailure> {
    let jws = Jws::parse(jwt, &cfg.algorithms).map_err(|e| JwtFailure::Invalid(e.to_string()))?;
    jws.check_typ(&[Some("at+jwt"), Some("jwt"), None])
        .map_err(|_| JwtFailure::Invalid("typ is not at+jwt or JWT".into()))?;
    match jws.verify(keys) {
        Ok(()) => {}
        Err(JwsError::UnknownKid) => return Err(JwtFailure::NeedKeys(jws.header.kid.clone())),
        Err(e) => return Err(JwtFailure::Invalid(e.to_string())),
    }
    let payload = jws
        .payload()
        .map_err(|e| JwtFailure::Invalid(e.to_string()))?;
    let claims: Claims = serde_json::from_slice(&payload)
        .map_err(|e| JwtFailure::Invalid(format!("claims: {e}")))?;
    if claims.active == Some(false) {
        return Err(JwtFailure::Invalid("active is false".into()));
    }
    let info = claims.into_info();
    if info.iss.as_deref() != Some(cfg.issuer.as_str()) {
        return Err(JwtFailure::Invalid(
            "iss is not the configured issuer".into(),
        ));
    }
    let Some(exp) = info.exp else {
        return Err(JwtFailure::Invalid("no exp".into()));
    };
    if exp.saturating_mul(1000) <= now_ms {
        return Err(JwtFailure::Expired);
    }
    if info
        .nbf
        .is_some_and(|nbf| nbf.saturating_mul(1000) > now_ms.saturating_add(cfg.leeway_ms))
    {
        return Err(JwtFailure::Invalid("not yet valid (nbf)".into()));
    }
    Ok(info)
}

/// Curity and Keycloak: the AS hands us the access token as a JWT to forward.
fn from_access_jwt(
    cfg: &Config,
    keys: &KeySet,
    jwt: &str,
    cache: CacheDirective,
    now_ms: u64,
    _split: bool,
) -> Outcome {
    match verify_access_jwt(cfg, keys, jwt, now_ms) {
        Ok(info) => Outcome::Active {
            info: Box::new(info),
            jwt: Some(jwt.to_string()),
            cache,
        },
        Err(JwtFailure::NeedKeys(kid)) => Outcome::NeedKeys(kid),
        Err(JwtFailure::Expired) => Outcome::Inactive(Reason::Expired),
        // The AS's own answer does not verify: it cannot be trusted, so fail closed as an AS fault.
        Err(JwtFailure::Invalid(why)) => {
            failure(format!("JWT from the authorization server: {why}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        let d = cache_directive(&[("Cache-Control", "public, max-age=60")]);
        assert_eq!(
            d,
            CacheDirective {
                max_age_ms: Some(60_000),
                ..Default::default()
            }
        );
        let d = cache_directive(&[
            ("cache-control", "max-age=60"),
            ("cache-control", "max-age=10"),
        ]);
        assert_eq!(d.max_age_ms, Some(10_000));
        assert!(cache_directive(&[("cache-control", "no-store")]).no_store);
        assert_eq!(cache_directive(&[]), CacheDirective::default());
        // Unreadable: already stale, not `no-store` (which `ignore_no_store` could override).
        for v in [
            "max-age=abc",
            "max-age=-1",
            "max-age=1.5",
            "max-age=+5",
            "max-age",
        ] {
            let d = cache_directive(&[("cache-control", v)]);
            assert_eq!((d.no_store, d.max_age_ms), (false, Some(0)), "{v}");
        }
        let d = cache_directive(&[("cache-control", "max-age=99999999999999999999")]);
        assert_eq!(d.max_age_ms, Some(u64::MAX));
    }

    #[test]
    fn age() {
        let h =
            |age: &'static str| cache_directive(&[("cache-control", "max-age=30"), ("age", age)]);
        assert_eq!(h("25").age_ms, 25_000);
        assert_eq!(h("25").fresh_until(1_000_000), Some(1_005_000));
        assert_eq!(h("40").fresh_until(1_000_000), Some(1_000_000));
        assert_eq!(h("5, 40").age_ms, 40_000);
        assert_eq!(h("99999999999999999999").fresh_until(7), Some(7));
        for bad in ["-1", "1.5", "abc", "", "5, x"] {
            assert_eq!(h(bad).fresh_until(7), Some(7), "{bad:?}");
        }
        let d = cache_directive(&[("age", "5"), ("Age", "9")]);
        assert_eq!((d.age_ms, d.max_age_ms), (9_000, None));
        assert_eq!(cache_directive(&[("age", "x")]).max_age_ms, Some(0));
    }

    #[test]
    fn rfc9701_iat_and_exp_bound_freshness() {
        let d = CacheDirective {
            max_age_ms: Some(60_000),
            issued_at_ms: Some(50_000),
            not_after_ms: Some(200_000),
            ..Default::default()
        };
        // iat 50 s ago: fresh for 10 s more.
        assert_eq!(d.fresh_until(100_000), Some(110_000));
        // iat in the future (skew): the now-based bound wins.
        assert_eq!(d.fresh_until(40_000), Some(100_000));
        // Signed long ago: no underflow, simply stale.
        assert_eq!(d.fresh_until(u64::MAX), Some(110_000));
        let d = CacheDirective {
            not_after_ms: Some(10_000),
            ..Default::default()
        };
        assert_eq!(d.fresh_until(0), Some(10_000));
    }
}
