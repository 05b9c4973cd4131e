//! The layout of the state the store keeps per key and per pool: plain arrays of `u64` atomics,
//! so the same code runs on heap memory (this process) and on a shared mapping (every process on
//! the host). Word positions are part of the shared file's format: append, never reorder.

use super::{KeySnapshot, PoolSnapshot, Refusal};
use crate::error::Error;
use crate::health::{CooldownCause, DisabledReason};
use crate::key::Tier;
use crate::limiter::{Ticket, Window};
use crate::metrics::counters::{
    latency_bucket, KeyCounter, PoolCounter, KEY_COUNTERS, LATENCY_BUCKETS_S, POOL_COUNTERS,
};
use crate::quota::Quota;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

// Key record header words.
pub(crate) const K_HEAD: usize = 0;
pub(crate) const K_LIMIT: usize = 1;
pub(crate) const K_WINDOW_MS: usize = 2;
pub(crate) const K_MAX_INFLIGHT_MS: usize = 3;
/// The end of a cooldown (monotonic ms, low 56 bits) and its cause (high 8 bits), in one word so
/// that the two always agree.
pub(crate) const K_COOLDOWN: usize = 4;
// Word 5 is unused (it held the cooldown's cause before the cause moved into `K_COOLDOWN`).
pub(crate) const K_DISABLED: usize = 6;
pub(crate) const K_TIER: usize = 7;
/// The key's counters (`KeyCounter`), one word each.
pub(crate) const K_COUNTERS: usize = 8;

pub(crate) const KEY_HEADER_WORDS: usize = K_COUNTERS + KEY_COUNTERS;

const COOLDOWN_SHIFT: u32 = 56;
const COOLDOWN_MASK: u64 = (1 << COOLDOWN_SHIFT) - 1;

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

    pub fn as_slice(&self) -> &[AtomicU64] {
        // SAFETY: guaranteed by the constructor's contract.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn word(&self, i: usize) -> &AtomicU64 {
        &self.as_slice()[i]
    }
}

/// A key's record: header, counters, then the limiter's ring of `limit` slots.
#[derive(Clone)]
pub struct KeyCell(pub Words);

impl KeyCell {
    pub fn words_for(limit: u64) -> usize {
        KEY_HEADER_WORDS + limit as usize
    }

    pub fn limit(&self) -> u64 {
        self.0.word(K_LIMIT).load(Relaxed)
    }

    /// Whether the record is as long as its limit says (a record read from a shared file is
    /// checked before its ring is used).
    pub fn fits(&self) -> bool {
        let limit = self.limit();
        limit > 0 && KEY_HEADER_WORDS as u64 + limit <= self.0.as_slice().len() as u64
    }

    pub fn window_ms(&self) -> u64 {
        self.0.word(K_WINDOW_MS).load(Relaxed)
    }

    /// The quota the record was made for.
    pub fn quota(&self) -> Quota {
        Quota::requests_per_window(self.limit(), self.window_ms())
    }

    /// Raises the record's in-flight allowance to cover a pool's timeout: the longest any pool
    /// using the key may take.
    pub fn cover_timeout(&self, max_inflight_ms: u64) {
        self.0
            .word(K_MAX_INFLIGHT_MS)
            .fetch_max(max_inflight_ms, Relaxed);
    }

    pub fn window(&self) -> Window<'_> {
        let words = self.0.as_slice();
        Window {
            head: &words[K_HEAD],
            slots: &words[KEY_HEADER_WORDS..],
            window_ms: words[K_WINDOW_MS].load(Relaxed),
            max_inflight_ms: words[K_MAX_INFLIGHT_MS].load(Relaxed),
        }
    }

    pub fn count(&self, c: KeyCounter) {
        self.0.word(K_COUNTERS + c as usize).fetch_add(1, Relaxed);
    }

    pub fn counter(&self, c: KeyCounter) -> u64 {
        self.0.word(K_COUNTERS + c as usize).load(Relaxed)
    }

    /// Makes this fresh record (a key's new limit or window) carry on from `old`: the newest of
    /// the old window's records that could still count (up to the new limit), so that the
    /// change never lets more through in any window than the stricter of the two would; and
    /// the cooldown, the disabled flag and the counters.
    pub fn carry_over(&self, old: &KeyCell, now: u64) {
        let horizon = old.window_ms().max(self.window_ms());
        self.window().seed(&old.window().live_records(now, horizon));
        for w in [K_COOLDOWN, K_DISABLED] {
            self.0.word(w).store(old.0.word(w).load(Relaxed), Relaxed);
        }
        for c in 0..KEY_COUNTERS {
            let w = K_COUNTERS + c;
            self.0.word(w).store(old.0.word(w).load(Relaxed), Relaxed);
        }
    }

    /// The end of the key's cooldown (0: never cooled) and its cause.
    pub fn cooldown(&self) -> (u64, CooldownCause) {
        let w = self.0.word(K_COOLDOWN).load(Relaxed);
        (
            w & COOLDOWN_MASK,
            CooldownCause::from_word(w >> COOLDOWN_SHIFT),
        )
    }

    /// Cools the key down until `until` for `cause`, unless it already cools longer.
    pub fn extend_cooldown(&self, until: u64, cause: CooldownCause) {
        let word = self.0.word(K_COOLDOWN);
        let new = until.min(COOLDOWN_MASK) | (cause as u64) << COOLDOWN_SHIFT;
        let mut current = word.load(Relaxed);
        while current & COOLDOWN_MASK < until.min(COOLDOWN_MASK) {
            match word.compare_exchange_weak(current, new, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes a disabled or cooling key back into service (an operator's decision, e.g. after
    /// enabling the API in the key's project). Returns the reason it was disabled, if it was.
    pub fn enable(&self) -> Option<DisabledReason> {
        let was = DisabledReason::from_word(self.0.word(K_DISABLED).swap(0, Relaxed));
        self.0.word(K_COOLDOWN).store(0, Relaxed);
        was
    }

    /// Writes a fresh record's constant header fields.
    pub fn init(&self, quota: Quota, tier: Tier) {
        self.0.word(K_LIMIT).store(quota.limit, Relaxed);
        self.0.word(K_WINDOW_MS).store(quota.window_ms(), Relaxed);
        let tier = match tier {
            Tier::Free => 0,
            Tier::Paid => 1,
        };
        self.0.word(K_TIER).store(tier, Relaxed);
    }

    pub fn tier(&self) -> Tier {
        if self.0.word(K_TIER).load(Relaxed) == 1 {
            Tier::Paid
        } else {
            Tier::Free
        }
    }

    pub fn disabled(&self) -> Option<DisabledReason> {
        DisabledReason::from_word(self.0.word(K_DISABLED).load(Relaxed))
    }

    /// What the record holds at `now`.
    pub fn snapshot(&self, now: u64) -> KeySnapshot {
        let (cooldown_until, cooldown_cause) = self.cooldown();
        let mut counters = [0; KEY_COUNTERS];
        for (i, c) in counters.iter_mut().enumerate() {
            *c = self.0.word(K_COUNTERS + i).load(Relaxed);
        }
        KeySnapshot {
            tier: self.tier(),
            quota: self.quota(),
            usage: self.window().usage(now),
            cooldown_until,
            cooldown_cause,
            disabled: self.disabled(),
            counters,
        }
    }
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
    #[inline]
    fn try_admit(&self, now: u64) -> Result<Ticket, Refusal> {
        if let Some(reason) = self.disabled() {
            return Err(Refusal::Disabled(reason));
        }
        let (cool, _) = self.cooldown();
        if now < cool {
            return Err(Refusal::Until(cool));
        }
        self.window().try_admit(now).map_err(Refusal::Until)
    }

    fn complete(&self, ticket: Ticket, now: u64) -> Result<(), Error> {
        self.window().complete(ticket, now);
        Ok(())
    }

    fn cool_down(&self, until: u64, cause: CooldownCause) -> Result<(), Error> {
        self.extend_cooldown(until, cause);
        Ok(())
    }

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

    fn snapshot(&self, now: u64) -> Result<KeySnapshot, Error> {
        Ok(KeyCell::snapshot(self, now))
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
