//! The layout of the state the store keeps per key and per pool (per quota group and model:
//! `group`): plain arrays of `u64` atomics,
//! so the same code runs on heap memory (this process) and on a shared mapping (every process on
//! the host). Word positions are part of the shared file's format: append, never reorder.

use super::{KeySnapshot, PoolSnapshot};
use crate::error::Error;
use crate::health::DisabledReason;
use crate::key::Tier;
use crate::metrics::counters::{
    latency_bucket, KeyCounter, PoolCounter, KEY_COUNTERS, LATENCY_BUCKETS_S, POOL_COUNTERS,
};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

// Key record words.
pub(crate) const K_DISABLED: usize = 0;
pub(crate) const K_TIER: usize = 1;
/// The key's quota group (`GroupId::digest`), two words.
pub(crate) const K_GROUP: usize = 2;
/// The key's counters (`KeyCounter`), one word each.
pub(crate) const K_COUNTERS: usize = 4;

pub(crate) const KEY_WORDS: usize = K_COUNTERS + KEY_COUNTERS;

// Pool record words.
pub(crate) const P_CURSOR: usize = 0;
/// The pool's counters (`PoolCounter`), one word each, then the latency histogram's buckets.
pub(crate) const P_COUNTERS: usize = 1;

pub(crate) const P_BUCKETS: usize = P_COUNTERS + POOL_COUNTERS;
pub(crate) const POOL_WORDS: usize = P_BUCKETS + LATENCY_BUCKETS_S.len() + 1;

/// A run of atomic words owned by a store (heap block or shared mapping), kept alive by `owner`.
#[derive(Clone)]
pub struct Words {
    ptr: NonNull<AtomicU64>,
    len: usize,
    _owner: Arc<dyn Send + Sync>,
}

// SAFETY: the words are atomics; `owner` keeps the memory mapped/allocated while any `Words`
// exists, and is itself Send + Sync.
unsafe impl Send for Words {}
unsafe impl Sync for Words {}

impl Words {
    /// # Safety
    /// `ptr..ptr+len` must be valid, 8-byte aligned words that stay valid while `owner` lives.
    pub unsafe fn new(ptr: NonNull<AtomicU64>, len: usize, owner: Arc<dyn Send + Sync>) -> Words {
        Words {
            ptr,
            len,
            _owner: owner,
        }
    }

    #[inline]
    pub fn as_slice(&self) -> &[AtomicU64] {
        // SAFETY: guaranteed by the constructor's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    #[inline]
    pub fn word(&self, i: usize) -> &AtomicU64 {
        &self.as_slice()[i]
    }
}

/// A key's record: tier, group, disabled reason, counters.
#[derive(Clone)]
pub struct KeyCell(pub Words);

impl KeyCell {
    pub fn count(&self, c: KeyCounter) {
        self.0.word(K_COUNTERS + c as usize).fetch_add(1, Relaxed);
    }

    pub fn counter(&self, c: KeyCounter) -> u64 {
        self.0.word(K_COUNTERS + c as usize).load(Relaxed)
    }

    /// Takes a disabled key back into service (an operator's decision, e.g. after enabling
    /// the API in the key's project). Returns the reason it was disabled, if it was.
    pub fn enable(&self) -> Option<DisabledReason> {
        DisabledReason::from_word(self.0.word(K_DISABLED).swap(0, Relaxed))
    }

    /// Writes a fresh record's constant fields.
    pub fn init(&self, tier: Tier, group: &[u8; 16]) {
        let tier = match tier {
            Tier::Free => 0,
            Tier::Paid => 1,
        };
        self.0.word(K_TIER).store(tier, Relaxed);
        let [a, b] = id_words(group);
        self.0.word(K_GROUP).store(a, Relaxed);
        self.0.word(K_GROUP + 1).store(b, Relaxed);
    }

    pub fn tier(&self) -> Tier {
        if self.0.word(K_TIER).load(Relaxed) == 1 {
            Tier::Paid
        } else {
            Tier::Free
        }
    }

    pub fn group(&self) -> [u8; 16] {
        words_id(
            self.0.word(K_GROUP).load(Relaxed),
            self.0.word(K_GROUP + 1).load(Relaxed),
        )
    }

    pub fn disabled(&self) -> Option<DisabledReason> {
        DisabledReason::from_word(self.0.word(K_DISABLED).load(Relaxed))
    }

    pub fn snapshot(&self) -> KeySnapshot {
        let mut counters = [0; KEY_COUNTERS];
        for (i, c) in counters.iter_mut().enumerate() {
            *c = self.0.word(K_COUNTERS + i).load(Relaxed);
        }
        KeySnapshot {
            tier: self.tier(),
            group: self.group(),
            disabled: self.disabled(),
            counters,
        }
    }
}

/// A 16-byte identity as two words.
pub(crate) fn id_words(id: &[u8; 16]) -> [u64; 2] {
    [
        u64::from_le_bytes(id[..8].try_into().unwrap()),
        u64::from_le_bytes(id[8..].try_into().unwrap()),
    ]
}

pub(crate) fn words_id(a: u64, b: u64) -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&a.to_le_bytes());
    id[8..].copy_from_slice(&b.to_le_bytes());
    id
}

/// A pool's shared record: the round-robin cursor and the pool-wide counters.
#[derive(Clone)]
pub struct PoolCell(pub Words);

impl PoolCell {
    pub fn cursor(&self) -> &AtomicU64 {
        self.0.word(P_CURSOR)
    }

    pub fn add(&self, c: PoolCounter, n: u64) {
        self.0.word(P_COUNTERS + c as usize).fetch_add(n, Relaxed);
    }

    pub fn counter(&self, c: PoolCounter) -> u64 {
        self.0.word(P_COUNTERS + c as usize).load(Relaxed)
    }

    pub fn observe_latency(&self, micros: u64) {
        self.add(PoolCounter::LatencyCount, 1);
        self.add(PoolCounter::LatencySumMicros, micros);
        self.0
            .word(P_BUCKETS + latency_bucket(micros))
            .fetch_add(1, Relaxed);
    }

    /// Non-cumulative counts per bucket (the last is above the last bound).
    pub fn latency_buckets(&self) -> Vec<u64> {
        (0..=LATENCY_BUCKETS_S.len())
            .map(|i| self.0.word(P_BUCKETS + i).load(Relaxed))
            .collect()
    }
}

// The stores here cannot fail once a record is found: every operation is a few atomics.
impl super::KeyRecord for KeyCell {
    fn disable(&self, reason: DisabledReason) -> Result<(), Error> {
        let _ = self
            .0
            .word(K_DISABLED)
            .compare_exchange(0, reason as u64, Relaxed, Relaxed);
        Ok(())
    }

    fn enable(&self) -> Result<Option<DisabledReason>, Error> {
        Ok(KeyCell::enable(self))
    }

    fn disabled(&self) -> Result<Option<DisabledReason>, Error> {
        Ok(KeyCell::disabled(self))
    }

    fn count(&self, counter: KeyCounter) -> Result<(), Error> {
        KeyCell::count(self, counter);
        Ok(())
    }

    fn snapshot(&self) -> Result<KeySnapshot, Error> {
        Ok(KeyCell::snapshot(self))
    }
}

impl super::PoolRecord for PoolCell {
    #[inline]
    fn next_cursor(&self) -> Result<u64, Error> {
        Ok(self.cursor().fetch_add(1, Relaxed))
    }

    fn add(&self, counter: PoolCounter, n: u64) -> Result<(), Error> {
        PoolCell::add(self, counter, n);
        Ok(())
    }

    fn observe_latency(&self, micros: u64) -> Result<(), Error> {
        PoolCell::observe_latency(self, micros);
        Ok(())
    }

    fn snapshot(&self) -> Result<PoolSnapshot, Error> {
        let mut counters = [0; POOL_COUNTERS];
        for (i, c) in counters.iter_mut().enumerate() {
            *c = self.0.word(P_COUNTERS + i).load(Relaxed);
        }
        Ok(PoolSnapshot {
            counters,
            latency_buckets: self.latency_buckets(),
        })
    }
}
