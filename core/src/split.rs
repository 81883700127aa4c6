//! Split tokens, the issuer's side and the store's format.
//!
//! In split-token mode the client holds only the signature of a JWT; the edge rebuilds the JWT
//! from a shared store keyed by a hash of that signature. [`split_jwt`] is the helper an
//! authorization server (or a token-issuing service) runs to populate the store: it returns the
//! client's part, the store key and the store value. The value is **sealed**: encrypted and
//! authenticated (ChaCha20-Poly1305, RFC 8439) under a key derived from the signature, so the
//! store holds neither claims nor anything a reader of the store could replay: the store key is
//! SHA-256 of the signature (not reversible), and only a client presenting the signature can
//! open the value. Someone who can write to the store cannot forge a value either: it would not
//! open, and even one sealed under a signature the writer knows (their own token) reassembles a
//! JWT whose signature does not verify. The edge refuses both (401 `invalid_token`).
//!
//! Values other issuers write in the plain `header.payload` form are read only with
//! `split.plain_values = true`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};

use crate::jose::sha256_b64;

/// The default `split.key_prefix`.
pub const DEFAULT_SPLIT_KEY_PREFIX: &str = "phantom-edge:split:";

/// The prefix of a sealed store value (`pe1:` then base64url of ciphertext and tag).
pub const SEALED_PREFIX: &str = "pe1:";

/// blake3 key-derivation context of the sealing key (from the signature).
const KDF_CONTEXT: &str = "phantom-edge 2026-12-08 split-token store value v1";
/// Associated data: binds a ciphertext to this format.
const AAD: &[u8] = b"phantom-edge split v1";

/// A JWT split for the split-token pattern.
#[derive(Clone, PartialEq, Eq)]
pub struct SplitToken {
    /// What the client gets as its access token: the JWT's signature (base64url).
    pub client_token: String,
    /// The store key: `key_prefix` + base64url(SHA-256(client_token)).
    pub store_key: String,
    /// The store value: `header.payload`, sealed under a key derived from the signature.
    pub store_value: String,
    /// The JWT's `exp` (Unix s), if it has one: expire the store entry then.
    pub expires_at: Option<u64>,
}

/// The client's part is a bearer credential: not printed.
impl std::fmt::Debug for SplitToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SplitToken")
            .field("client_token", &"{REDACTED}")
            .field("store_key", &self.store_key)
            .field("store_value", &self.store_value)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a JWT cannot be split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SplitError {
    /// Not three base64url parts (a compact JWS), or a part is empty.
    #[error("not a compact JWS (header.payload.signature, base64url)")]
    NotAJws,
    /// The payload is not a JSON object.
    #[error("the payload is not a JSON object")]
    BadPayload,
}

/// Splits a signed JWT (compact JWS) into the client's part, the store key and the sealed
/// store value. `key_prefix` is the edge's `split.key_prefix` (default `phantom-edge:split:`).
/// The signature is not verified here (the issuer just made it); the edge verifies the
/// reassembled JWT on every lookup.
pub fn split_jwt(jwt: &str, key_prefix: &str) -> Result<SplitToken, SplitError> {
    let jwt = jwt.trim();
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(SplitError::NotAJws);
    };
    let b64 = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if !(b64(h) && b64(p) && b64(sig)) {
        return Err(SplitError::NotAJws);
    }
    let payload = B64.decode(p).map_err(|_| SplitError::NotAJws)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&payload).map_err(|_| SplitError::BadPayload)?;
    if !claims.is_object() {
        return Err(SplitError::BadPayload);
    }
    Ok(SplitToken {
        client_token: sig.to_owned(),
        store_key: store_key(key_prefix, sig),
        store_value: seal(&format!("{h}.{p}"), sig),
        expires_at: claims.get("exp").and_then(serde_json::Value::as_u64),
    })
}

/// The store key of a client's part.
pub(crate) fn store_key(prefix: &str, client_token: &str) -> String {
    format!("{prefix}{}", sha256_b64(client_token.as_bytes()))
}

fn cipher(client_token: &str) -> ChaCha20Poly1305 {
    let key = blake3::derive_key(KDF_CONTEXT, client_token.as_bytes());
    ChaCha20Poly1305::new(&key.into())
}

/// Each key seals one value (the key is derived from one signature), so a fixed nonce is never
/// reused with another message under the same key.
const NONCE: [u8; 12] = [0; 12];

fn seal(header_payload: &str, client_token: &str) -> String {
    let sealed = cipher(client_token)
        .encrypt(
            &NONCE.into(),
            Payload {
                msg: header_payload.as_bytes(),
                aad: AAD,
            },
        )
        .expect("ChaCha20-Poly1305 seals any message that fits in memory");
    format!("{SEALED_PREFIX}{}", B64.encode(sealed))
}

/// Opens a sealed value (without its prefix) with the client's part: `header.payload`, or
/// `None` when it does not open (altered, or sealed for another signature).
pub(crate) fn open(sealed_b64: &str, client_token: &str) -> Option<String> {
    let sealed = B64.decode(sealed_b64).ok()?;
    let plain = cipher(client_token)
        .decrypt(
            &NONCE.into(),
            Payload {
                msg: &sealed,
                aad: AAD,
            },
        )
        .ok()?;
    String::from_utf8(plain).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str =
        "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDMwMH0.c2lnbmF0dXJl";

    #[test]
    fn a_split_token_opens_only_with_its_signature() {
        let s = split_jwt(JWT, "p:").unwrap();
        assert_eq!(s.client_token, "c2lnbmF0dXJl");
        assert_eq!(s.store_key, store_key("p:", "c2lnbmF0dXJl"));
        assert!(!s.store_key.contains(&s.client_token));
        assert_eq!(s.expires_at, Some(1_700_000_300));
        let sealed = s.store_value.strip_prefix(SEALED_PREFIX).unwrap();
        // Nothing of the claims in clear.
        assert!(!s.store_value.contains("eyJ"));
        assert_eq!(
            open(sealed, &s.client_token).as_deref(),
            Some("eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTcwMDAwMDMwMH0")
        );
        assert_eq!(open(sealed, "b3RoZXI"), None, "another signature");
        let mut bytes = B64.decode(sealed).unwrap();
        bytes[0] ^= 1;
        assert_eq!(open(&B64.encode(bytes), &s.client_token), None, "altered");
        assert!(!format!("{s:?}").contains("c2lnbmF0dXJl"));
    }

    #[test]
    fn only_compact_jws_split() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "a..c",
            "a.b.c d",
            "eyJ4IjoxfQ.W10.c2ln",
        ] {
            assert!(split_jwt(bad, "p:").is_err(), "{bad:?}");
        }
    }
}
