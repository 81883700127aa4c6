//! DPoP proof checks at the resource server (RFC 9449 §4.3, §7.1).

use serde::Deserialize;

use crate::config::Config;
use crate::jose::{Jws, VerifyingKey, jwk_thumbprint, sha256_b64};
use crate::replay::ReplaySet;
use crate::request::normalize_url;
use crate::secret::{Fingerprint, Fingerprinter};

/// A proof that passed every check that does not depend on the token's `cnf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProofKey {
    /// RFC 7638 thumbprint of the proof's `jwk`: must equal the token's `cnf.jkt`.
    pub(crate) jkt: String,
    /// The proof's replay-set id (keyed fingerprint of `jkt` and `jti`) and until when it must
    /// be remembered. Recorded only when the request is let through: a proof for a token that
    /// is unknown, inactive or bound to another key takes no room in the set.
    pub(crate) replay_id: Fingerprint,
    pub(crate) replay_until: u64,
}

#[derive(Deserialize)]
struct ProofClaims {
    jti: String,
    htm: String,
    htu: String,
    iat: serde_json::Number,
    #[serde(default)]
    ath: Option<String>,
}

/// Checks one `DPoP` header value for a request carrying `token`; the error says why the proof
/// is refused.
#[allow(clippy::too_many_arguments)] // each is one input of RFC 9449 §4.3
pub(crate) fn check_proof(
    cfg: &Config,
    fp: &Fingerprinter,
    replay: &ReplaySet,
    proofs: &[&str],
    method: &str,
    htus: &[String],
    token: &str,
    now_ms: u64,
) -> Result<ProofKey, &'static str> {
    let [proof] = proofs else {
        return Err(if proofs.is_empty() {
            "missing DPoP proof"
        } else {
            "more than one DPoP header"
        });
    };
    let jws = Jws::parse(proof, &cfg.dpop_algorithms)
        .map_err(|_| "malformed proof or alg not allowed")?;
    jws.check_typ(&[Some("dpop+jwt")])
        .map_err(|_| "typ is not dpop+jwt")?;
    let jwk = jws
        .header
        .jwk
        .as_ref()
        .ok_or("no jwk in the proof header")?;
    let key =
        VerifyingKey::from_jwk(jwk, &cfg.dpop_algorithms).map_err(|_| "unusable or private jwk")?;
    jws.verify_with(&key)
        .map_err(|_| "proof signature does not verify")?;
    let payload = jws.payload().map_err(|_| "malformed proof payload")?;
    let c: ProofClaims =
        serde_json::from_slice(&payload).map_err(|_| "proof claims missing or malformed")?;
    if c.htm != method {
        return Err("htm does not match the request method");
    }
    if !normalize_url(&c.htu).is_some_and(|u| htus.contains(&u)) {
        return Err("htu does not match the request URI");
    }
    let iat_ms = c
        .iat
        .as_u64()
        .or_else(|| c.iat.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
        .ok_or("iat is not a number")?
        .saturating_mul(1000);
    if iat_ms > now_ms.saturating_add(cfg.leeway_ms)
        || iat_ms
            .saturating_add(cfg.dpop_proof_max_age_ms)
            .saturating_add(cfg.leeway_ms)
            < now_ms
    {
        return Err("iat outside the acceptance window");
    }
    match c.ath {
        Some(ath) if ath == sha256_b64(token.as_bytes()) => {}
        Some(_) => return Err("ath does not match the access token"),
        None => return Err("no ath"),
    }
    let jkt = jwk_thumbprint(jwk).ok_or("cannot compute the jwk thumbprint")?;
    if c.jti.is_empty() || c.jti.len() > 256 {
        return Err("bad jti");
    }
    let replay_id = fp.fingerprint(&format!("dpop\0{jkt}\0{}", c.jti));
    if replay.contains(&replay_id, now_ms) {
        return Err(PROOF_REPLAYED);
    }
    Ok(ProofKey {
        jkt,
        replay_id,
        replay_until: iat_ms
            .saturating_add(cfg.dpop_proof_max_age_ms)
            .saturating_add(cfg.leeway_ms.saturating_mul(2)),
    })
}

/// Why a proof whose `jti` was seen before is refused.
pub(crate) const PROOF_REPLAYED: &str = "proof jti replayed";
