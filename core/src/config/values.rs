//! Checks and parsers for single values, shared by the sections: durations, counts, secrets
//! given literally or by environment variable, algorithm lists, URLs, header-name tokens.

use crate::jose::Alg;
use crate::secret::Secret;

use super::ConfigError;

pub(super) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(super) fn check_url(field: &str, url: &str) -> Result<(), ConfigError> {
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
pub(super) fn one_secret(
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

pub(super) fn parse_algs(field: &str, list: &[String]) -> Result<Vec<Alg>, ConfigError> {
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

pub(super) fn duration_or(
    field: &str,
    text: Option<&str>,
    default_ms: u64,
) -> Result<u64, ConfigError> {
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

pub(super) fn positive(
    field: &str,
    text: Option<&str>,
    default_ms: u64,
) -> Result<u64, ConfigError> {
    let v = duration_or(field, text, default_ms)?;
    if v == 0 {
        return Err(ConfigError::new(field, "must be greater than zero"));
    }
    Ok(v)
}

pub(super) fn nonzero(field: &str, v: Option<usize>, default: usize) -> Result<usize, ConfigError> {
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
}
