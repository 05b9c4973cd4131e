//! Pins in the state file: a fixed-size table (`PIN_CAPACITY` entries of `PIN_ENTRY_WORDS`
//! words) between the quota table and the arena. An entry is [name digest (2 words), target
//! kind, target id (2 words), expiry (a store time; 0: empty)]. Names are kept as digests, so
//! an entry is fixed-size whatever the name; the name is the service's, never key material.
//!
//! Every operation takes the file lock (`flock`, bounded wait, dropped by the kernel when a
//! holder dies): pins are rare next to admissions (one per resource made, one lookup per
//! request that names a resource), and a lock keeps the five words of an entry consistent. A
//! full table evicts the entry nearest its expiry.

use super::{reserve, FileLock, ShmFile, ShmStore, PIN_CAPACITY, PIN_ENTRY_WORDS, PIN_TABLE};
use crate::error::Error;
use crate::store::{PinRecord, PinTarget};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

const E_NAME: usize = 0; // two words
const E_KIND: usize = 2;
const E_ID: usize = 3; // two words
const E_EXPIRES: usize = 5;

/// The digest a pin's name is kept as.
fn name_digest(name: &str) -> [u64; 2] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"gemini-rotator/pin/v1\0");
    h.update(name.as_bytes());
    let d = h.finalize();
    [
        u64::from_le_bytes(d[..8].try_into().unwrap()),
        u64::from_le_bytes(d[8..16].try_into().unwrap()),
    ]
}

/// The state file's pins.
pub struct ShmPins {
    file: Arc<ShmFile>,
}

impl ShmStore {
    pub(super) fn shm_pins(&self) -> Arc<dyn PinRecord> {
        Arc::new(ShmPins {
            file: self.file.clone(),
        })
    }
}

impl ShmPins {
    fn word(&self, entry: usize, field: usize) -> &std::sync::atomic::AtomicU64 {
        self.file.word(PIN_TABLE + entry * PIN_ENTRY_WORDS + field)
    }

    /// The entry holding `digest`, if any (expired or not).
    fn find(&self, digest: [u64; 2]) -> Option<usize> {
        (0..PIN_CAPACITY).find(|&e| {
            self.word(e, E_EXPIRES).load(Relaxed) != 0
                && self.word(e, E_NAME).load(Relaxed) == digest[0]
                && self.word(e, E_NAME + 1).load(Relaxed) == digest[1]
        })
    }
}

impl PinRecord for ShmPins {
    fn pin(&self, name: &str, target: PinTarget, expires_at: u64) -> Result<(), Error> {
        let lock = FileLock::take(&self.file.path)?;
        reserve(
            &lock.0,
            &self.file.path,
            PIN_TABLE,
            PIN_CAPACITY * PIN_ENTRY_WORDS,
        )?;
        let digest = name_digest(name);
        let entry = self.find(digest).unwrap_or_else(|| {
            // An empty entry, else the one nearest its expiry (expired ones first: they are
            // the nearest).
            (0..PIN_CAPACITY)
                .min_by_key(|&e| self.word(e, E_EXPIRES).load(Relaxed))
                .unwrap_or(0)
        });
        let bytes = target.to_bytes();
        let id = |r: std::ops::Range<usize>| u64::from_le_bytes(bytes[r].try_into().unwrap());
        self.word(entry, E_NAME).store(digest[0], Relaxed);
        self.word(entry, E_NAME + 1).store(digest[1], Relaxed);
        self.word(entry, E_KIND).store(bytes[0] as u64, Relaxed);
        self.word(entry, E_ID).store(id(1..9), Relaxed);
        self.word(entry, E_ID + 1).store(id(9..17), Relaxed);
        self.word(entry, E_EXPIRES)
            .store(expires_at.max(1), Relaxed);
        Ok(())
    }

    fn lookup(&self, name: &str, now: u64) -> Result<Option<PinTarget>, Error> {
        let _lock = FileLock::take(&self.file.path)?;
        let Some(entry) = self.find(name_digest(name)) else {
            return Ok(None);
        };
        if self.word(entry, E_EXPIRES).load(Relaxed) <= now {
            return Ok(None);
        }
        let mut bytes = [0u8; 17];
        bytes[0] = self.word(entry, E_KIND).load(Relaxed) as u8;
        bytes[1..9].copy_from_slice(&self.word(entry, E_ID).load(Relaxed).to_le_bytes());
        bytes[9..].copy_from_slice(&self.word(entry, E_ID + 1).load(Relaxed).to_le_bytes());
        Ok(PinTarget::from_bytes(&bytes))
    }

    fn unpin(&self, name: &str) -> Result<(), Error> {
        let _lock = FileLock::take(&self.file.path)?;
        if let Some(entry) = self.find(name_digest(name)) {
            self.word(entry, E_EXPIRES).store(0, Relaxed);
        }
        Ok(())
    }
}
