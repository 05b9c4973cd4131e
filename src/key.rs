//! API keys and their fingerprints.
//!
//! A key is a secret: it is held only in [`ApiKey`], whose `Debug` and `Display` print the
//! fingerprint, never the key. Everything the library shows or stores (errors, statistics, logs,
//! the shared state file) names a key by its fingerprint.

use sha2::{Digest, Sha256};
use std::fmt;

/// Identity of a key in shared state: 16 bytes of SHA-256 over a domain-separated key.
pub type KeyId = [u8; 16];

/// How many hex digits of the identity form the printed fingerprint (48 bits: among 10,000 keys
/// the chance that two share a printed fingerprint is below one in three million).
const FINGERPRINT_HEX_DIGITS: usize = 12;

/// The tier a key belongs to: free keys are rotated, the paid key is the fallback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tier {
    Free,
    Paid,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Free => "free",
            Tier::Paid => "paid",
        }
    }
}

/// A Gemini API key. The secret never leaves this type except as the request header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    secret: String,
    id: KeyId,
    fingerprint: String,
}

impl ApiKey {
    /// Wraps a key. Keys are not validated by shape: Google's key format is changing.
    pub fn new(secret: impl Into<String>) -> ApiKey {
        let secret = secret.into();
        let id = key_id(&secret);
        let fingerprint = fingerprint_of_id(&id);
        ApiKey {
            secret,
            id,
            fingerprint,
        }
    }

    /// The secret, for the `x-goog-api-key` header only.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The identity under which the key's state is stored.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The short, printable fingerprint (12 hex digits).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({})", self.fingerprint)
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.fingerprint)
    }
}

/// The stored identity of a key.
pub fn key_id(secret: &str) -> KeyId {
    let mut hasher = Sha256::new();
    // Domain separation: the identity is useless as a hash of the bare key elsewhere.
    hasher.update(b"gemini-rotator/key/v1\0");
    hasher.update(secret.as_bytes());
    let digest = hasher.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&digest[..16]);
    id
}

/// The printable fingerprint of a stored identity.
pub fn fingerprint_of_id(id: &KeyId) -> String {
    hex(id)[..FINGERPRINT_HEX_DIGITS].to_string()
}

/// The printable fingerprint of a key, as every output of the library shows it.
pub fn fingerprint(secret: &str) -> String {
    fingerprint_of_id(&key_id(secret))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Replaces every occurrence of any of `keys` in `text` by the key's fingerprint.
///
/// Upstream messages can quote the key (a suspended consumer is named `api_key:<KEY>`), so every
/// message from the service passes through here before it reaches a caller.
pub fn redact<'a>(text: &str, keys: impl IntoIterator<Item = &'a ApiKey>) -> String {
    let mut out = text.to_string();
    for key in keys {
        if !key.secret.is_empty() && out.contains(key.secret.as_str()) {
            out = out.replace(key.secret.as_str(), &format!("<key {}>", key.fingerprint));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_secret() {
        let key = ApiKey::new("test-secret-key-123");
        let shown = format!("{key:?} {key}");
        assert!(!shown.contains("test-secret-key-123"), "{shown}");
        assert!(shown.contains(key.fingerprint()));
    }

    #[test]
    fn fingerprint_is_stable_short_hex_and_distinguishes_keys() {
        let a = fingerprint("key-a");
        assert_eq!(a, fingerprint("key-a"));
        assert_eq!(a.len(), FINGERPRINT_HEX_DIGITS);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, fingerprint("key-b"));
    }

    #[test]
    fn redact_replaces_every_occurrence() {
        let key = ApiKey::new("sekrit");
        let text = redact("Consumer 'api_key:sekrit' (sekrit) suspended", [&key]);
        assert!(!text.contains("sekrit"), "{text}");
        assert_eq!(text.matches(key.fingerprint()).count(), 2);
    }
}
