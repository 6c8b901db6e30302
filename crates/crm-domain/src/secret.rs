//! Secrets and their fingerprints.
//!
//! Upstream keys, user keys and passwords live in memory as [`SecretString`]
//! (zeroized on drop, `Debug` prints `[REDACTED]`, no `Serialize`). What crm
//! stores and prints is a [`Fingerprint`]: a keyed HMAC-SHA256 plus the last
//! four characters, so a leaked database cannot be used to confirm a guessed key.

use hmac::{Hmac, Mac};
pub use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use std::fmt;

/// A keyed fingerprint of a secret: enough to recognise it, useless to recover it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Fingerprint {
    /// Hex HMAC-SHA256 of the secret under the installation's pepper.
    pub hmac: String,
    /// The last four characters, for humans telling keys apart.
    pub last4: String,
}

impl Fingerprint {
    /// A short form for names and tables: the first eight hex digits.
    pub fn short(&self) -> &str {
        &self.hmac[..self.hmac.len().min(8)]
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({}…{})", self.short(), self.last4)
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…{}", self.short(), self.last4)
    }
}

/// Computes [`Fingerprint`]s under one installation's pepper.
///
/// The pepper is created once per installation by the storage adapter and
/// kept outside the database; two installations fingerprint the same key
/// differently, which is the point.
pub struct KeyFingerprinter {
    pepper: secrecy::SecretBox<[u8]>,
}

impl KeyFingerprinter {
    pub fn new(pepper: Vec<u8>) -> Self {
        KeyFingerprinter {
            pepper: secrecy::SecretBox::new(pepper.into_boxed_slice()),
        }
    }

    pub fn fingerprint(&self, secret: &SecretString) -> Fingerprint {
        self.fingerprint_str(secret.expose_secret())
    }

    fn fingerprint_str(&self, secret: &str) -> Fingerprint {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.pepper.expose_secret())
            .expect("HMAC accepts keys of any length");
        mac.update(secret.as_bytes());
        let hmac = hex::encode(mac.finalize().into_bytes());
        let chars: Vec<char> = secret.chars().collect();
        let last4: String = chars[chars.len().saturating_sub(4)..].iter().collect();
        Fingerprint { hmac, last4 }
    }
}

impl fmt::Debug for KeyFingerprinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyFingerprinter([redacted])")
    }
}

/// Lowercase hex SHA-256 of some bytes (checksums and spec digests; not for secrets).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(Sha256::digest(bytes))
}

/// Replaces every occurrence of each secret in `text` with `[redacted]`.
///
/// Used on host error bodies and evidence before they are stored, because a
/// host or upstream may echo a key back.
pub fn scrub(text: &str, secrets: &[&SecretString]) -> String {
    let mut out = text.to_owned();
    for s in secrets {
        let raw = s.expose_secret();
        if raw.len() >= 4 {
            out = out.replace(raw, "[redacted]");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_keyed_and_never_show_the_secret() {
        let secret = SecretString::from("sk-CANARY-0123456789abcdef");
        let a = KeyFingerprinter::new(b"pepper-a".to_vec()).fingerprint(&secret);
        let b = KeyFingerprinter::new(b"pepper-b".to_vec()).fingerprint(&secret);
        assert_ne!(a.hmac, b.hmac);
        assert_eq!(a.last4, "cdef");
        let shown = format!("{a:?} {a} {}", serde_json::to_string(&a).unwrap());
        assert!(!shown.contains("CANARY"));
        assert!(!format!("{secret:?}").contains("CANARY"));
    }

    #[test]
    fn scrub_removes_echoed_secrets() {
        let secret = SecretString::from("sk-live-abcdef");
        assert_eq!(
            scrub("bad key sk-live-abcdef given", &[&secret]),
            "bad key [redacted] given"
        );
    }
}
