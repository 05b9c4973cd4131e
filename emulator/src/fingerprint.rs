//! Key fingerprints, computed by the same rule as gemini-rotator's (`src/key.rs`): the first
//! 12 hex digits of SHA-256 over a domain tag and the key. The request log names keys this
//! way, so a test can match what the emulator saw with what the pool reports, and a key never
//! appears itself.

use sha2::{Digest, Sha256};

const DOMAIN: &[u8] = b"gemini-rotator/key/v1\0";
const HEX_DIGITS: usize = 12;

/// The fingerprint of `secret`.
pub fn fingerprint(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(DOMAIN);
    hasher.update(secret.as_bytes());
    let mut text = hex(&hasher.finalize());
    text.truncate(HEX_DIGITS);
    text
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_stable_and_distinct() {
        let a = fingerprint("key-a");
        assert_eq!(a.len(), HEX_DIGITS);
        assert_eq!(a, fingerprint("key-a"));
        assert_ne!(a, fingerprint("key-b"));
        assert!(!a.contains("key"));
        // The core's `key::fingerprint("key-a")`.
        assert_eq!(a, "b1f7aed3c596");
    }
}
