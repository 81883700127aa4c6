//! RFC 8417 Security Event Tokens: CAEP and RISC events mapped onto revocations.

use serde::Deserialize;

use crate::config::Config;
use crate::jose::Jws;
use crate::revocation::{RevocationError, Selector};
use crate::token::OneOrMany;

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

/// What one event asks of the edge.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SetAction {
    /// Refuse matching tokens from now on.
    Revoke(Selector),
    /// Forget cached claims of matching tokens (they may have changed); do not refuse them.
    Invalidate(Selector),
}

#[derive(Debug)]
pub(crate) struct ParsedSet {
    pub(crate) jti: String,
    /// `iat`, Unix seconds: how long its `jti` is remembered, and how old it may be.
    pub(crate) iat: u64,
    pub(crate) actions: Vec<SetAction>,
}

#[derive(Deserialize)]
struct SetClaims {
    iss: String,
    jti: String,
    iat: serde_json::Number,
    #[serde(default)]
    aud: Option<OneOrMany>,
    events: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    sub_id: Option<serde_json::Value>,
}

fn unauthorized(m: &str) -> RevocationError {
    RevocationError::Unauthorized(m.into())
}
fn invalid(m: impl Into<String>) -> RevocationError {
    RevocationError::Invalid(m.into())
}

/// Verifies the SET (configured key, alg allowlist, `typ` `secevent+jwt`, `iss`, `aud`, `iat`)
/// and maps its events.
pub(crate) fn parse_security_event(
    cfg: &Config,
    set: &str,
    now_ms: u64,
) -> Result<ParsedSet, RevocationError> {
    let Some(key) = &cfg.set_key else {
        return Err(unauthorized(
            "no SET verification key is configured (revocation.set_key)",
        ));
    };
    let jws = Jws::parse(set, &cfg.algorithms).map_err(|e| unauthorized(&format!("SET: {e}")))?;
    jws.check_typ(&[Some("secevent+jwt")])
        .map_err(|_| unauthorized("SET: typ is not secevent+jwt"))?;
    jws.verify_with(key)
        .map_err(|_| unauthorized("SET: signature does not verify"))?;
    let payload = jws
        .payload()
        .map_err(|_| invalid("SET: payload is not base64url"))?;
    let c: SetClaims =
        serde_json::from_slice(&payload).map_err(|e| invalid(format!("SET claims: {e}")))?;
    if c.iss != cfg.set_issuer {
        return Err(unauthorized("SET: iss is not revocation.set_issuer"));
    }
    if let Some(aud) = &cfg.set_audience
        && !c.aud.as_ref().is_some_and(|a| a.contains(aud))
    {
        return Err(unauthorized("SET: aud does not name us"));
    }
    let iat = c
        .iat
        .as_u64()
        .ok_or_else(|| invalid("SET: iat is not a number"))?;
    let iat_ms = iat.saturating_mul(1000);
    if iat_ms > now_ms.saturating_add(cfg.leeway_ms) {
        return Err(invalid("SET: iat is in the future"));
    }
    if c.jti.is_empty() || c.jti.len() > 256 {
        return Err(invalid("SET: jti must be 1 to 256 characters"));
    }
    if c.events.is_empty() {
        return Err(invalid("SET: no events"));
    }
    let mut actions = Vec::new();
    for (uri, body) in &c.events {
        let session = uri == &format!("{CAEP}session-revoked");
        let revoke = session
            || [
                "account-disabled",
                "account-purged",
                "credential-compromise",
                "sessions-revoked",
                "tokens-revoked",
                "identifier-changed",
            ]
            .iter()
            .any(|e| uri == &format!("{RISC}{e}"));
        let claims_change = uri == &format!("{CAEP}token-claims-change");
        if !revoke && !claims_change {
            continue; // RFC 8417 §2.2: ignore events we do not know
        }
        let subject = c
            .sub_id
            .as_ref()
            .or_else(|| body.get("subject"))
            .ok_or_else(|| invalid("SET: no sub_id or subject"))?;
        let selector = subject_selector(subject, session)?;
        actions.push(if claims_change {
            SetAction::Invalidate(selector)
        } else {
            SetAction::Revoke(selector)
        });
    }
    Ok(ParsedSet {
        jti: c.jti,
        iat,
        actions,
    })
}

/// Maps an RFC 9493 subject identifier onto a selector.
fn subject_selector(
    s: &serde_json::Value,
    session_event: bool,
) -> Result<Selector, RevocationError> {
    let get = |k: &str| {
        s.get(k)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let format = get("format")
        .or_else(|| get("subject_type"))
        .unwrap_or_default()
        .replace('-', "_");
    match format.as_str() {
        "iss_sub" => get("sub")
            .map(Selector::Sub)
            .ok_or_else(|| invalid("SET: iss_sub without sub")),
        "jwt_id" => get("jti")
            .map(Selector::Jti)
            .ok_or_else(|| invalid("SET: jwt_id without jti")),
        "opaque" => {
            let id = get("id").ok_or_else(|| invalid("SET: opaque without id"))?;
            Ok(if session_event {
                Selector::Sid(id)
            } else {
                Selector::Sub(id)
            })
        }
        "complex" => {
            if let Some(session) = s.get("session") {
                let id = session
                    .get("id")
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty());
                if let Some(id) = id {
                    return Ok(Selector::Sid(id.to_string()));
                }
            }
            match s.get("user") {
                Some(user) => subject_selector(user, false),
                None => Err(invalid("SET: complex subject without session or user")),
            }
        }
        other => Err(invalid(format!(
            "SET: unsupported subject format {other:?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subject_formats() {
        assert_eq!(
            subject_selector(&json!({"format":"iss_sub","iss":"x","sub":"alice"}), false).unwrap(),
            Selector::Sub("alice".into())
        );
        assert_eq!(
            subject_selector(&json!({"format":"opaque","id":"s1"}), true).unwrap(),
            Selector::Sid("s1".into())
        );
        assert_eq!(
            subject_selector(
                &json!({"format":"complex","session":{"format":"opaque","id":"s2"}}),
                true
            )
            .unwrap(),
            Selector::Sid("s2".into())
        );
        assert_eq!(
            subject_selector(&json!({"subject_type":"jwt-id","iss":"x","jti":"j"}), false).unwrap(),
            Selector::Jti("j".into())
        );
        assert!(subject_selector(&json!({"format":"email","email":"a@b"}), false).is_err());
    }
}
