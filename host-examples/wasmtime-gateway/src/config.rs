//! The `[gateway]` section of the shared config file: phantom-gateway's own settings. Every
//! other section belongs to the component, which checks it.

use std::net::SocketAddr;

use serde::Deserialize;

/// `[gateway]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Where clients connect (`127.0.0.1:8080`; port 0 picks one, printed at start).
    pub listen: SocketAddr,
    /// Base URL of the upstream (`http://127.0.0.1:8081`); the request path is appended.
    pub upstream: String,
    /// Admin listener: `POST /revocations`, `GET /metrics`, `GET /jwks`, `GET /healthz`.
    /// Absent: none.
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    /// Whole-request deadline (client → decision → upstream answer headers), e.g. `"30s"`.
    #[serde(default = "default_request_timeout", with = "duration")]
    pub request_timeout: u64,
    /// How long shutdown waits for in-flight requests, e.g. `"10s"`.
    #[serde(default = "default_grace", with = "duration")]
    pub shutdown_grace: u64,
    /// Most client connections open at once; beyond it, accepting waits (backpressure).
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_request_timeout() -> u64 {
    30_000
}
fn default_grace() -> u64 {
    10_000
}
fn default_max_connections() -> usize {
    10_000
}

/// Durations as the core writes them: `"250ms"`, `"2s"`, `"5m"`, `"1h"`, or integer ms.
mod duration {
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Ms(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Ms(ms) => Ok(ms),
            Raw::Text(t) => parse(&t).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "invalid duration {t:?} (use e.g. \"250ms\", \"2s\", \"5m\")"
                ))
            }),
        }
    }

    pub(super) fn parse(t: &str) -> Option<u64> {
        let t = t.trim();
        let split = t.find(|c: char| !c.is_ascii_digit())?;
        let (n, unit) = t.split_at(split);
        let n: u64 = n.parse().ok()?;
        let mul = match unit.trim() {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return None,
        };
        n.checked_mul(mul)
    }
}

/// A config problem, naming the field.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The upstream base as hyper wants it: `http://host:port` plus a path prefix without the
/// trailing slash.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http://host:port`.
    pub origin: String,
    /// `/prefix` or empty.
    pub prefix: String,
    /// `host:port`.
    pub authority: String,
}

impl GatewayConfig {
    /// Reads `[gateway]` from the config text (TOML).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| ConfigError(format!("config: {}", e.message())))?;
        let section = table
            .get("gateway")
            .ok_or_else(|| {
                ConfigError("gateway: missing section [gateway] (listen, upstream)".into())
            })?
            .clone();
        let cfg: Self = section
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(format!("gateway: {}", e.message())))?;
        cfg.upstream()?;
        Ok(cfg)
    }

    /// The parsed upstream.
    pub fn upstream(&self) -> Result<Upstream, ConfigError> {
        let rest = self.upstream.strip_prefix("http://").ok_or_else(|| {
            ConfigError(format!(
                "gateway.upstream: {:?} must be an http:// URL (TLS to the upstream is not supported; \
                 terminate it in front of phantom-gateway's network or use a sidecar)",
                self.upstream
            ))
        })?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains(['?', '#', '@']) {
            return Err(ConfigError(format!(
                "gateway.upstream: {:?} has no valid host",
                self.upstream
            )));
        }
        Ok(Upstream {
            origin: format!("http://{authority}"),
            prefix: prefix.to_owned(),
            authority: authority.to_owned(),
        })
    }
}

/// The environment variables the config names in `*_env` keys (e.g. `client_secret_env`), with
/// their values: all the component gets to see of the process environment.
pub fn referenced_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    fn walk(v: &toml::Value, names: &mut Vec<String>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    match v {
                        toml::Value::String(name) if k.ends_with("_env") => {
                            names.push(name.clone())
                        }
                        other => walk(other, names),
                    }
                }
            }
            toml::Value::Array(a) => a.iter().for_each(|v| walk(v, names)),
            _ => {}
        }
    }
    let mut names = Vec::new();
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        walk(&toml::Value::Table(table), &mut names);
    }
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|n| lookup(&n).map(|v| (n, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_section_and_names_bad_fields() {
        let ok = GatewayConfig::from_toml(
            "[gateway]\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9/api/\"\nrequest_timeout = \"2s\"\n",
        )
        .unwrap();
        assert_eq!(ok.request_timeout, 2_000);
        let up = ok.upstream().unwrap();
        assert_eq!(up.origin, "http://127.0.0.1:9");
        assert_eq!(up.prefix, "/api");
        let e = GatewayConfig::from_toml("[gateway]\nlisten = \"x\"\nupstream = \"http://a\"\n")
            .unwrap_err();
        assert!(e.0.starts_with("gateway:"), "{e}");
        let e = GatewayConfig::from_toml(
            "[gateway]\nlisten = \"127.0.0.1:1\"\nupstream = \"https://a\"\n",
        )
        .unwrap_err();
        assert!(e.0.contains("gateway.upstream"), "{e}");
        let e = GatewayConfig::from_toml(
            "[gateway]\nlisten = \"127.0.0.1:1\"\nupstream = \"http://a\"\nlisten_addr = 1\n",
        )
        .unwrap_err();
        assert!(e.0.contains("listen_addr"), "{e}");
        // The admin routes' body limit is the core's: no key of the gateway's own.
        let e = GatewayConfig::from_toml(
            "[gateway]\nlisten = \"127.0.0.1:1\"\nupstream = \"http://a\"\nmax_admin_body = 1\n",
        )
        .unwrap_err();
        assert!(e.0.contains("max_admin_body"), "{e}");
        assert!(GatewayConfig::from_toml("[cache]\n").is_err());
    }

    #[test]
    fn passes_only_the_named_environment() {
        let text = "[authorization_server]\nclient_secret_env = \"A\"\n[admin]\ntoken_env = \"B\"\n\
                    [[routes]]\nx_env = \"C\"\nother = \"D\"\n";
        let env = referenced_env(text, |n| (n != "C").then(|| format!("v-{n}")));
        assert_eq!(
            env,
            vec![("A".into(), "v-A".into()), ("B".into(), "v-B".into())]
        );
    }
}
