//! Reading the serde shape ([`RawConfig`]) from TOML, JSON or a JSON value, and naming shape
//! errors by their path without repeating the value.

use super::{ConfigError, RawConfig};

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
/// expected ...", "missing field `issuer`"). The key is what stands before "`, expected" (or
/// the last backquote), so a key with a backquote in it is named whole; an empty key is named
/// `""` (a refusal always names its field).
fn field_from_message(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    let end = rest.find("`, expected").or_else(|| rest.rfind('`'))?;
    Some(match &rest[..end] {
        "" => "\"\"".to_string(),
        key => key.to_string(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // Found by the `config` fuzz target: an empty key named no field.
        assert_eq!(
            field_from_message("unknown field ``, expected one of `mode`"),
            Some("\"\"".into())
        );
        assert_eq!(
            field_from_message("unknown field `a`b`, expected one of `mode`"),
            Some("a`b".into())
        );
        assert_eq!(
            field_from_message("missing field `issuer`"),
            Some("issuer".into())
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
