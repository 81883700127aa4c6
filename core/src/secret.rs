//! Values that must never be printed, and the keyed fingerprints that stand in for tokens.

use std::fmt;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::str::FromStr;

use subtle::ConstantTimeEq;

/// A secret string (client secret, admin token, PEM key). `Debug` and `Display` print
/// `{REDACTED}`; the value is only reachable through [`Secret::expose`].
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret value. Call sites are few and easy to audit.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Equality with a presented value in time that depends on neither value's content nor the
    /// secret's length: both are hashed (SHA-256) and the digests compared in constant time.
    pub fn ct_eq(&self, presented: &str) -> bool {
        use sha2::{Digest as _, Sha256};
        let a = Sha256::digest(self.0.as_bytes());
        let b = Sha256::digest(presented.as_bytes());
        bool::from(a[..].ct_eq(&b[..]))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{REDACTED}")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{REDACTED}")
    }
}

/// A keyed fingerprint of a token: the first 16 bytes of keyed BLAKE3 under the deployment's
/// fingerprint key. It is what caches, revocation sets, audit events and logs hold instead of the
/// token. Printed as 32 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fingerprint(pub [u8; 16]);

impl Hash for Fingerprint {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Keyed-PRF output is already uniform: 8 bytes of it make a perfect hash.
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(b));
    }
}

/// Identity hasher for [`Fingerprint`] keys (which are uniformly random by construction).
#[derive(Default, Clone, Copy, Debug)]
pub(crate) struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a Fingerprint is hashed: fold it in (FNV-1a).
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

pub(crate) type FingerprintBuild = BuildHasherDefault<FingerprintHasher>;

impl Fingerprint {
    fn hex_digits(&self) -> [u8; 32] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0x0f)];
        }
        out
    }

    /// The 32 lowercase hex digits as a `String` of exactly that size: what `to_string()` gives,
    /// without the formatting machinery (bindings call this on every decision).
    pub fn hex(&self) -> String {
        let digits = self.hex_digits();
        // Only ASCII hex digits were written.
        std::str::from_utf8(&digits).unwrap_or_default().to_owned()
    }
}

impl fmt::Display for Fingerprint {
    /// 32 lowercase hex digits, written in one call (this is on every decision's path).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.hex_digits();
        // Only ASCII hex digits were written.
        f.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = &'static str;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 {
            return Err("a fingerprint is 32 hex digits");
        }
        let mut out = [0u8; 16];
        for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
            let hex = std::str::from_utf8(chunk).map_err(|_| "a fingerprint is 32 hex digits")?;
            out[i] = u8::from_str_radix(hex, 16).map_err(|_| "a fingerprint is 32 hex digits")?;
        }
        Ok(Self(out))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Computes fingerprints under one key.
#[derive(Clone)]
pub(crate) struct Fingerprinter {
    key: [u8; 32],
}

impl fmt::Debug for Fingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fingerprinter({REDACTED})")
    }
}

impl Fingerprinter {
    pub(crate) fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    pub(crate) fn fingerprint(&self, token: &str) -> Fingerprint {
        let hash = blake3::keyed_hash(&self.key, token.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&hash.as_bytes()[..16]);
        Fingerprint(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2-hunter2".into());
        assert_eq!(format!("{s:?} {s}"), "{REDACTED} {REDACTED}");
        assert!(s.ct_eq("hunter2-hunter2"));
        assert!(!s.ct_eq("hunter2-hunter3"));
        assert!(!s.ct_eq("hunter2"));
    }

    #[test]
    fn fingerprints_print_as_lowercase_hex() {
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i as u8) * 17;
        }
        bytes[15] = 0xa5;
        let fp = Fingerprint(bytes);
        assert_eq!(fp.to_string(), "00112233445566778899aabbccddeea5");
        assert_eq!(fp.hex(), fp.to_string());
        assert_eq!(fp.hex().capacity(), 32);
        assert_eq!(
            format!("{fp:?}"),
            "Fingerprint(00112233445566778899aabbccddeea5)"
        );
    }

    #[test]
    fn fingerprints_are_keyed_and_round_trip() {
        let a = Fingerprinter::new([1; 32]).fingerprint("tok");
        let b = Fingerprinter::new([2; 32]).fingerprint("tok");
        assert_ne!(a, b);
        let text = a.to_string();
        assert_eq!(text.len(), 32);
        assert!(!text.contains("tok"));
        assert_eq!(text.parse::<Fingerprint>().unwrap(), a);
        assert!("zz".parse::<Fingerprint>().is_err());
    }
}
