//! The normalised view of a token, whatever dialect it came from.

use serde::{Deserialize, Deserializer, Serialize};

/// What the edge knows of an active token: the RFC 7662 members it decides on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenInfo {
    /// `sub`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// `client_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// `scope`, split on spaces.
    pub scopes: Vec<String>,
    /// `aud`, always as a list.
    pub aud: Vec<String>,
    /// `iss`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// `exp`, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
    /// `iat`, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// `nbf`, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// `jti`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// `sid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// `username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `token_type`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// `cnf.jkt`: the token is DPoP-bound to this key thumbprint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf_jkt: Option<String>,
    /// `cnf.x5t#S256`: the token is bound to this client certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cnf_x5t_s256: Option<String>,
    /// `cnf` names a confirmation method this edge cannot check (RFC 7800 `jwk`, `jwe`, `jku`,
    /// `kid`, or any other member): such a token is refused (`sender_mismatch`), never taken
    /// for a bearer token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cnf_unsupported: bool,
}

impl TokenInfo {
    /// Whether every scope in `required` was granted.
    pub fn has_scopes(&self, required: &[String]) -> bool {
        required.iter().all(|r| self.scopes.iter().any(|s| s == r))
    }

    /// Rough heap size, for the cache's byte bound.
    pub(crate) fn heap_bytes(&self) -> usize {
        let o = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        o(&self.sub)
            + o(&self.client_id)
            + o(&self.iss)
            + o(&self.jti)
            + o(&self.sid)
            + o(&self.username)
            + o(&self.token_type)
            + o(&self.cnf_jkt)
            + o(&self.cnf_x5t_s256)
            + self.scopes.iter().map(|s| s.len() + 24).sum::<usize>()
            + self.aud.iter().map(|s| s.len() + 24).sum::<usize>()
    }
}

/// The claim members we read, from RFC 7662 JSON, an RFC 9701 `token_introspection` object or an
/// access-token JWT. A derived struct: a duplicated member among these is an error, not
/// "last one wins" (RFC 8725 §3.?; docs/STANDARDS.md).
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    #[serde(default)]
    pub(crate) active: Option<bool>,
    #[serde(default)]
    pub(crate) scope: Option<String>,
    /// `scp`: an array (Okta, RFC 9068 drafts) or one space-separated string (Azure AD).
    #[serde(default)]
    pub(crate) scp: Option<OneOrMany>,
    #[serde(default)]
    pub(crate) client_id: Option<String>,
    #[serde(default)]
    pub(crate) username: Option<String>,
    #[serde(default)]
    pub(crate) token_type: Option<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) iat: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) nbf: Option<u64>,
    #[serde(default)]
    pub(crate) sub: Option<String>,
    #[serde(default)]
    pub(crate) aud: Option<OneOrMany>,
    #[serde(default)]
    pub(crate) iss: Option<String>,
    #[serde(default)]
    pub(crate) jti: Option<String>,
    #[serde(default)]
    pub(crate) sid: Option<String>,
    #[serde(default)]
    pub(crate) cnf: Option<Cnf>,
}

/// `cnf` (RFC 7800 §3.1): the members this edge enforces, and whether there are others.
#[derive(Debug, Deserialize)]
pub(crate) struct Cnf {
    #[serde(default)]
    pub(crate) jkt: Option<String>,
    #[serde(default, rename = "x5t#S256")]
    pub(crate) x5t_s256: Option<String>,
    /// Every other member: a binding the edge cannot check.
    #[serde(flatten)]
    pub(crate) other: std::collections::BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }

    pub(crate) fn contains(&self, value: &str) -> bool {
        match self {
            Self::One(s) => s == value,
            Self::Many(v) => v.iter().any(|s| s == value),
        }
    }
}

/// NumericDate: a non-negative JSON number of seconds; fractions are truncated.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v: Option<serde_json::Number> = Option::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(n) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else if let Some(f) = n
                .as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && *f < 1e15)
            {
                Ok(Some(f as u64))
            } else {
                Err(serde::de::Error::custom(
                    "NumericDate must be a non-negative number",
                ))
            }
        }
    }
}

impl Claims {
    pub(crate) fn into_info(self) -> TokenInfo {
        let mut scopes: Vec<String> = self
            .scope
            .as_deref()
            .unwrap_or("")
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        let scp = match self.scp {
            Some(OneOrMany::One(s)) => s.split(' ').map(str::to_owned).collect(),
            Some(OneOrMany::Many(v)) => v,
            None => Vec::new(),
        };
        for s in scp {
            if !s.is_empty() && !s.contains(' ') && !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        TokenInfo {
            sub: self.sub,
            client_id: self.client_id,
            scopes,
            aud: self.aud.map(OneOrMany::into_vec).unwrap_or_default(),
            iss: self.iss,
            exp: self.exp,
            iat: self.iat,
            nbf: self.nbf,
            jti: self.jti,
            sid: self.sid,
            username: self.username,
            token_type: self.token_type,
            cnf_jkt: self.cnf.as_ref().and_then(|c| c.jkt.clone()),
            cnf_unsupported: self.cnf.as_ref().is_some_and(|c| !c.other.is_empty()),
            cnf_x5t_s256: self.cnf.and_then(|c| c.x5t_s256),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_refused() {
        let r: Result<Claims, _> =
            serde_json::from_str(r#"{"active":true,"scope":"a","scope":"b"}"#);
        assert!(r.is_err());
        let r: Result<Claims, _> = serde_json::from_str(r#"{"active":false,"active":true}"#);
        assert!(r.is_err());
        let r: Result<Claims, _> = serde_json::from_str(r#"{"cnf":{"jkt":"a","jkt":"b"}}"#);
        assert!(r.is_err());
        // `scp` as an array or as one space-separated string (Azure AD).
        for scp in [r#"["a","b"]"#, r#""a b""#] {
            let c: Claims =
                serde_json::from_str(&format!(r#"{{"scope":"a","scp":{scp}}}"#)).unwrap();
            assert_eq!(c.into_info().scopes, ["a", "b"], "{scp}");
        }
    }

    #[test]
    fn numeric_dates() {
        let c: Claims = serde_json::from_str(r#"{"exp": 1700000000.9, "iat": 5}"#).unwrap();
        assert_eq!((c.exp, c.iat), (Some(1_700_000_000), Some(5)));
        assert!(serde_json::from_str::<Claims>(r#"{"exp": -1}"#).is_err());
        assert!(serde_json::from_str::<Claims>(r#"{"exp": "1"}"#).is_err());
    }

    #[test]
    fn scopes_and_audiences_normalise() {
        let c: Claims =
            serde_json::from_str(r#"{"scope":"a  b","scp":["b","c"],"aud":"x","cnf":{"jkt":"j"}}"#)
                .unwrap();
        let i = c.into_info();
        assert_eq!(i.scopes, ["a", "b", "c"]);
        assert_eq!(i.aud, ["x"]);
        assert_eq!(i.cnf_jkt.as_deref(), Some("j"));
        assert!(i.has_scopes(&["a".into(), "c".into()]));
        assert!(!i.has_scopes(&["d".into()]));
    }
}
