//! Compact JWS verification and signing on top of `jsonwebtoken`'s crypto providers.
//!
//! We parse the compact serialization ourselves (strict header, `crit` refused, size capped,
//! duplicate members refused by derived deserializers) and hand only the signature check and
//! signing to `jsonwebtoken::crypto`, so that time-based claims are checked against the `now`
//! the host passes in, never the OS clock (RFC 8725 §3.1, §3.11; RFC 7515 §4.1.11).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use serde::Deserialize;

/// Largest compact JWS we decode at all (RFC 8725 §3.1: cap before decoding).
pub const MAX_JWS_LEN: usize = 16 * 1024;

/// Signature algorithms. Symmetric algorithms and `none` are not representable: an HMAC alg can
/// never verify with a public key because it cannot be named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
#[non_exhaustive]
pub enum Alg {
    ES256,
    ES384,
    EdDSA,
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
}

impl Alg {
    /// Parses an asymmetric JOSE alg name; `none`, `HS*` and unknown names give `None`.
    pub fn parse_allowed(name: &str) -> Option<Self> {
        Some(match name {
            "ES256" => Self::ES256,
            "ES384" => Self::ES384,
            "EdDSA" | "Ed25519" => Self::EdDSA,
            "RS256" => Self::RS256,
            "RS384" => Self::RS384,
            "RS512" => Self::RS512,
            "PS256" => Self::PS256,
            "PS384" => Self::PS384,
            "PS512" => Self::PS512,
            _ => return None,
        })
    }

    /// The JOSE name.
    pub fn name(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            Self::ES256 => Algorithm::ES256,
            Self::ES384 => Algorithm::ES384,
            Self::EdDSA => Algorithm::EdDSA,
            Self::RS256 => Algorithm::RS256,
            Self::RS384 => Algorithm::RS384,
            Self::RS512 => Algorithm::RS512,
            Self::PS256 => Algorithm::PS256,
            Self::PS384 => Algorithm::PS384,
            Self::PS512 => Algorithm::PS512,
        }
    }
}

/// Why a JWS was not accepted. `UnknownKid` is the one a JWKS refresh can cure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum JwsError {
    /// Not three base64url parts, too long, or the header is not the JSON we accept.
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    /// `alg` is not in the allowlist (this includes `none` and every HMAC alg).
    #[error("algorithm not allowed")]
    AlgNotAllowed,
    /// The header carries `crit` extensions we do not understand (RFC 7515 §4.1.11).
    #[error("unsupported critical header")]
    Crit,
    /// `typ` is not the one expected for this kind of JWT (RFC 8725 §3.11).
    #[error("unexpected typ")]
    Typ,
    /// No key with this `kid` (or, without `kid`, none for this alg).
    #[error("unknown key")]
    UnknownKid,
    /// The signature does not verify.
    #[error("bad signature")]
    Signature,
}

/// The protected header members we read. Other members are ignored; duplicates of these are
/// refused by the derived deserializer.
#[derive(Debug, Deserialize)]
pub(crate) struct JwsHeader {
    pub(crate) alg: String,
    #[serde(default)]
    pub(crate) kid: Option<String>,
    #[serde(default)]
    pub(crate) typ: Option<String>,
    #[serde(default)]
    pub(crate) crit: Option<serde_json::Value>,
    #[serde(default)]
    pub(crate) jwk: Option<serde_json::Value>,
}

/// A parsed, not yet verified compact JWS.
#[derive(Debug)]
pub(crate) struct Jws<'a> {
    pub(crate) header: JwsHeader,
    pub(crate) alg: Alg,
    /// `base64url(header) "." base64url(payload)`: the signing input.
    pub(crate) signing_input: &'a str,
    pub(crate) signature: &'a str,
    payload_b64: &'a str,
}

fn is_b64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl<'a> Jws<'a> {
    /// Splits and checks the structure and header: size, parts, base64url, header JSON, `crit`,
    /// `alg` allowlist. Signature not checked yet.
    pub(crate) fn parse(token: &'a str, allowed: &[Alg]) -> Result<Self, JwsError> {
        if token.len() > MAX_JWS_LEN {
            return Err(JwsError::Malformed("too long"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwsError::Malformed("not three parts"));
        };
        if h.is_empty() || s.is_empty() || !is_b64url(h) || !is_b64url(p) || !is_b64url(s) {
            return Err(JwsError::Malformed("parts are not base64url"));
        }
        let header_bytes = B64
            .decode(h)
            .map_err(|_| JwsError::Malformed("header is not base64url"))?;
        let header: JwsHeader = serde_json::from_slice(&header_bytes)
            .map_err(|_| JwsError::Malformed("header is not a JSON object"))?;
        if header.crit.is_some() {
            return Err(JwsError::Crit);
        }
        let alg = Alg::parse_allowed(&header.alg)
            .filter(|a| allowed.contains(a))
            .ok_or(JwsError::AlgNotAllowed)?;
        Ok(Self {
            header,
            alg,
            signing_input: &token[..h.len() + 1 + p.len()],
            signature: s,
            payload_b64: p,
        })
    }

    /// Checks `typ` against the accepted values (compared case-insensitively, with an optional
    /// `application/` prefix, RFC 7515 §4.1.9). `None` in `accepted` allows an absent `typ`.
    pub(crate) fn check_typ(&self, accepted: &[Option<&str>]) -> Result<(), JwsError> {
        let typ = self.header.typ.as_deref().map(|t| {
            // `get`: a `typ` from the wire may have a multi-byte character across byte 12.
            match t.get(..12) {
                Some(p) if t.len() > 12 && p.eq_ignore_ascii_case("application/") => &t[12..],
                _ => t,
            }
        });
        let ok = accepted.iter().any(|a| match (a, typ) {
            (None, None) => true,
            (Some(a), Some(t)) => a.eq_ignore_ascii_case(t),
            _ => false,
        });
        if ok { Ok(()) } else { Err(JwsError::Typ) }
    }

    /// Verifies the signature with one key.
    pub(crate) fn verify_with(&self, key: &VerifyingKey) -> Result<(), JwsError> {
        if !key.algs.contains(&self.alg) {
            return Err(JwsError::UnknownKid);
        }
        match jsonwebtoken::crypto::verify(
            self.signature,
            self.signing_input.as_bytes(),
            &key.key,
            self.alg.jwt(),
        ) {
            Ok(true) => Ok(()),
            _ => Err(JwsError::Signature),
        }
    }

    /// Verifies the signature against a key set: by `kid` (and alg: RFC 7517 §4.5 lets keys of
    /// different types share a `kid`) when the header has one, else every key that can do this
    /// alg.
    pub(crate) fn verify(&self, keys: &KeySet) -> Result<(), JwsError> {
        match self.header.kid.as_deref() {
            Some(kid) => {
                let key = keys
                    .keys
                    .iter()
                    .find(|k| k.kid.as_deref() == Some(kid) && k.algs.contains(&self.alg))
                    .ok_or(JwsError::UnknownKid)?;
                self.verify_with(key)
            }
            None => {
                let mut any = false;
                for key in keys.keys.iter().filter(|k| k.algs.contains(&self.alg)) {
                    any = true;
                    if self.verify_with(key).is_ok() {
                        return Ok(());
                    }
                }
                Err(if any {
                    JwsError::Signature
                } else {
                    JwsError::UnknownKid
                })
            }
        }
    }

    /// The decoded payload bytes.
    pub(crate) fn payload(&self) -> Result<Vec<u8>, JwsError> {
        B64.decode(self.payload_b64)
            .map_err(|_| JwsError::Malformed("payload is not base64url"))
    }
}

/// A public key that verifies signatures, with the algorithms it may be used with.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) algs: Vec<Alg>,
    key: DecodingKey,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algs", &self.algs)
            .finish()
    }
}

impl VerifyingKey {
    /// From a JWK: asymmetric keys only; `alg` (if present) must be allowed; `use` must be `sig`
    /// if present; private members are refused.
    pub(crate) fn from_jwk(
        value: &serde_json::Value,
        allowed: &[Alg],
    ) -> Result<Self, &'static str> {
        let obj = value.as_object().ok_or("a JWK is a JSON object")?;
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|m| obj.contains_key(*m))
        {
            return Err("private or symmetric key material");
        }
        let jwk: Jwk = serde_json::from_value(value.clone()).map_err(|_| "unsupported JWK")?;
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            return Err("encryption key");
        }
        let family: Vec<Alg> = match &jwk.algorithm {
            AlgorithmParameters::EllipticCurve(p) => match p.curve {
                EllipticCurve::P256 => vec![Alg::ES256],
                EllipticCurve::P384 => vec![Alg::ES384],
                _ => return Err("unsupported curve"),
            },
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                vec![Alg::EdDSA]
            }
            AlgorithmParameters::RSA(_) => {
                vec![
                    Alg::RS256,
                    Alg::RS384,
                    Alg::RS512,
                    Alg::PS256,
                    Alg::PS384,
                    Alg::PS512,
                ]
            }
            _ => return Err("unsupported key type"),
        };
        let declared = obj.get("alg").and_then(|a| a.as_str());
        let algs: Vec<Alg> = match declared {
            Some(name) => {
                let a = Alg::parse_allowed(name).ok_or("alg not allowed")?;
                if !family.contains(&a) {
                    return Err("alg does not match the key type");
                }
                vec![a]
            }
            None => family,
        };
        let algs: Vec<Alg> = algs.into_iter().filter(|a| allowed.contains(a)).collect();
        if algs.is_empty() {
            return Err("no allowed alg for this key");
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| "unusable JWK")?;
        Ok(Self {
            kid: jwk.common.key_id.clone(),
            algs,
            key,
        })
    }

    /// From a PEM public key (SPKI) or certificate: Ed25519, P-256/P-384 or RSA.
    pub(crate) fn from_pem(pem: &[u8]) -> Result<Self, String> {
        let (key, algs) = if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, vec![Alg::EdDSA])
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, vec![Alg::ES256, Alg::ES384])
        } else if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, vec![Alg::RS256, Alg::PS256])
        } else {
            return Err("not a PEM public key (Ed25519, P-256, P-384 or RSA)".into());
        };
        Ok(Self {
            kid: None,
            algs,
            key,
        })
    }
}

/// The keys of one issuer (a parsed JWKS document).
#[derive(Clone, Debug, Default)]
pub struct KeySet {
    pub(crate) keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// Parses a JWKS document. Keys that are unusable here (encryption keys, symmetric keys,
    /// disallowed algs) are skipped; a document with no usable key at all is an error.
    pub(crate) fn from_json(doc: &[u8], allowed: &[Alg]) -> Result<Self, String> {
        #[derive(Deserialize)]
        struct Doc {
            keys: Vec<serde_json::Value>,
        }
        if doc.len() > 1024 * 1024 {
            return Err("JWKS document larger than 1 MiB".into());
        }
        let doc: Doc =
            serde_json::from_slice(doc).map_err(|e| format!("not a JWKS document: {e}"))?;
        let keys: Vec<VerifyingKey> = doc
            .keys
            .iter()
            .take(100)
            .filter_map(|k| VerifyingKey::from_jwk(k, allowed).ok())
            .collect();
        if keys.is_empty() {
            return Err("JWKS has no usable signing key".into());
        }
        Ok(Self { keys })
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// A private key the edge signs with (minted upstream JWTs, client assertions).
pub(crate) struct SigningKey {
    kid: Option<String>,
    alg: Alg,
    key: EncodingKey,
    public_jwk: serde_json::Value,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// From a PKCS#8 PEM private key: Ed25519 → EdDSA, P-256 → ES256, P-384 → ES384, RSA → RS256.
    pub(crate) fn from_pem(pem: &[u8], kid: Option<String>) -> Result<Self, String> {
        type Loader = fn(&[u8]) -> jsonwebtoken::errors::Result<EncodingKey>;
        let candidates: [(Loader, Alg); 4] = [
            (EncodingKey::from_ed_pem, Alg::EdDSA),
            (EncodingKey::from_ec_pem, Alg::ES256),
            (EncodingKey::from_ec_pem, Alg::ES384),
            (EncodingKey::from_rsa_pem, Alg::RS256),
        ];
        for (load, alg) in candidates {
            let Ok(key) = load(pem) else { continue };
            // Deriving the public JWK also proves the key matches the alg (curve checks).
            let Ok(jwk) = Jwk::from_encoding_key(&key, alg.jwt()) else {
                continue;
            };
            let mut public_jwk = serde_json::to_value(&jwk).map_err(|e| e.to_string())?;
            if let Some(obj) = public_jwk.as_object_mut() {
                obj.insert("use".into(), "sig".into());
                obj.insert("alg".into(), alg.name().into());
                if let Some(kid) = &kid {
                    obj.insert("kid".into(), kid.clone().into());
                }
            }
            // Sign once to be sure the backend accepts this key for this alg.
            if jsonwebtoken::crypto::sign(b"probe", &key, alg.jwt()).is_err() {
                continue;
            }
            return Ok(Self {
                kid,
                alg,
                key,
                public_jwk,
            });
        }
        Err("not a PKCS#8 PEM private key (Ed25519, P-256, P-384 or RSA)".into())
    }

    /// The algorithm this key signs with.
    pub(crate) fn alg(&self) -> Alg {
        self.alg
    }

    /// The public half as a JWK (`kty`, curve or modulus, `kid`, `alg`, `use: sig`).
    pub(crate) fn public_jwk(&self) -> &serde_json::Value {
        &self.public_jwk
    }

    /// Signs `claims` as a compact JWS with this `typ`.
    pub(crate) fn sign(&self, typ: &str, claims: &serde_json::Value) -> String {
        let mut header = serde_json::Map::new();
        header.insert("alg".into(), self.alg.name().into());
        header.insert("typ".into(), typ.into());
        if let Some(kid) = &self.kid {
            header.insert("kid".into(), kid.clone().into());
        }
        // Serializing a Map of strings and a Value cannot fail.
        let h = B64.encode(serde_json::to_vec(&header).unwrap_or_default());
        let p = B64.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut out = String::with_capacity(h.len() + p.len() + 100);
        out.push_str(&h);
        out.push('.');
        out.push_str(&p);
        // The key was probed at load; a failure here would be a backend bug. Fail closed with an
        // unverifiable token rather than panic in the request path.
        let sig = jsonwebtoken::crypto::sign(out.as_bytes(), &self.key, self.alg.jwt())
            .unwrap_or_default();
        out.push('.');
        out.push_str(&sig);
        out
    }
}

/// `base64url(SHA-256(data))`, as used by `ath`, `x5t#S256` and RFC 7638 thumbprints.
pub(crate) fn sha256_b64(data: &[u8]) -> String {
    use sha2::Digest as _;
    B64.encode(sha2::Sha256::digest(data))
}

/// RFC 7638 JWK thumbprint (SHA-256) of a public JWK given as JSON.
pub(crate) fn jwk_thumbprint(jwk: &serde_json::Value) -> Option<String> {
    let o = jwk.as_object()?;
    let s = |k: &str| o.get(k).and_then(|v| v.as_str());
    // Members in lexicographic order, no whitespace; values are base64url or fixed names, so
    // JSON string escaping is never needed — refuse anything that would need it.
    let clean = |v: &str| {
        v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    };
    let canonical = match s("kty")? {
        "EC" => {
            let (crv, x, y) = (s("crv")?, s("x")?, s("y")?);
            if !(clean(crv) && clean(x) && clean(y)) {
                return None;
            }
            format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
        }
        "OKP" => {
            let (crv, x) = (s("crv")?, s("x")?);
            if !(clean(crv) && clean(x)) {
                return None;
            }
            format!(r#"{{"crv":"{crv}","kty":"OKP","x":"{x}"}}"#)
        }
        "RSA" => {
            let (e, n) = (s("e")?, s("n")?);
            if !(clean(e) && clean(n)) {
                return None;
            }
            format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#)
        }
        _ => return None,
    };
    Some(sha256_b64(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7638_thumbprint_example() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            jwk_thumbprint(&jwk).unwrap(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn none_and_hmac_cannot_be_named() {
        for a in ["none", "HS256", "HS384", "HS512", "", "es256"] {
            assert_eq!(Alg::parse_allowed(a), None, "{a}");
        }
    }

    #[test]
    fn structure_is_checked_before_anything_else() {
        let all = [Alg::ES256, Alg::EdDSA];
        assert!(matches!(
            Jws::parse("a.b", &all),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(
            Jws::parse("a.b.c.d", &all),
            Err(JwsError::Malformed(_))
        ));
        assert!(matches!(
            Jws::parse("a+b.c.d", &all),
            Err(JwsError::Malformed(_))
        ));
        let long = "a".repeat(MAX_JWS_LEN + 1);
        assert!(matches!(
            Jws::parse(&long, &all),
            Err(JwsError::Malformed(_))
        ));
        // {"alg":"none"}
        let none = format!(
            "{}.{}.c2ln",
            B64.encode(br#"{"alg":"none"}"#),
            B64.encode(b"{}")
        );
        assert_eq!(
            Jws::parse(&none, &all).unwrap_err(),
            JwsError::AlgNotAllowed
        );
        let hs = format!(
            "{}.{}.c2ln",
            B64.encode(br#"{"alg":"HS256"}"#),
            B64.encode(b"{}")
        );
        assert_eq!(Jws::parse(&hs, &all).unwrap_err(), JwsError::AlgNotAllowed);
        let dup = format!(
            "{}.{}.c2ln",
            B64.encode(br#"{"alg":"ES256","alg":"none"}"#),
            B64.encode(b"{}")
        );
        assert!(matches!(
            Jws::parse(&dup, &all),
            Err(JwsError::Malformed(_))
        ));
        let crit = format!(
            "{}.{}.c2ln",
            B64.encode(br#"{"alg":"ES256","crit":["exp"]}"#),
            B64.encode(b"{}")
        );
        assert_eq!(Jws::parse(&crit, &all).unwrap_err(), JwsError::Crit);
    }
}
