//! Where key and pool state lives. A store hands out records of atomic words ([`layout`]); the
//! limiter and the pool work on those records and never know which store made them.
//!
//! - [`memory::MemoryStore`]: this process only. Records are process-wide, so two pools that
//!   share a key share its count.
//! - [`shm::ShmStore`]: every process on the host, through a memory-mapped file (the default).
//!
//! The interface is [`Store`] (find or create records), [`KeyRecord`] (the operations on a
//! key's state: admit, complete, cool down, disable, count, read) and [`PoolRecord`] (the
//! round-robin cursor and pool-wide counters). The pool knows nothing else, so a store on a
//! distributed engine (Redis, with each operation a server-side script) can implement the same
//! guarantees for several hosts: one record per key, one per pool key set, at most the limit in
//! any rolling window (`limiter`'s rule), and one limit per key among the pools that use it (a
//! conflicting one is an error, never silently merged; see [`conflict`]). Both stores here
//! implement the record traits with the same atomic words ([`layout`]).

pub mod layout;
pub mod memory;
pub mod shm;

use crate::error::Error;
use crate::key::{KeyId, Tier};
use crate::limiter::Ticket;
pub use layout::{CooldownCause, DisabledReason, KeyCell, KeyCounter, PoolCell, PoolCounter};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

/// What a pool asks of a key's record.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub id: KeyId,
    pub fingerprint: String,
    pub tier: Tier,
    pub limit: u64,
    pub window_ms: u64,
    /// The longest a request through this pool can take; in-flight slots older than this plus
    /// the window are presumed abandoned.
    pub max_inflight_ms: u64,
    /// How the configuration names the limit and the window (e.g. `GEMINI_FREE_RATE_LIMIT`,
    /// "config field `window_ms`"), for errors.
    pub limit_setting: String,
    pub window_setting: String,
}

/// A key's record, and the token that marks it in use by a pool of this process for as long
/// as the pool holds it.
pub struct KeyHandle {
    pub record: Arc<dyn KeyRecord>,
    pub in_use: Arc<InUse>,
}

/// What a key's record holds at one moment.
#[derive(Clone, Debug)]
pub struct KeySnapshot {
    pub tier: Tier,
    pub limit: u64,
    pub window_ms: u64,
    pub usage: crate::limiter::Usage,
    /// The end of the key's cooldown (0: none ever) and its cause.
    pub cooldown_until: u64,
    pub cooldown_cause: CooldownCause,
    pub disabled: Option<DisabledReason>,
    pub counters: [u64; layout::KEY_COUNTERS],
}

impl KeySnapshot {
    pub fn counter(&self, c: KeyCounter) -> u64 {
        self.counters[c as usize]
    }
}

/// The operations on a key's state, wherever it lives. Every method may be called from any
/// thread (and, for shared stores, any process) at once.
pub trait KeyRecord: Send + Sync {
    /// Admits a request at `now`, or says when the key may admit again (`u64::MAX`: it is
    /// disabled). A disabled or cooling key refuses; otherwise the rolling window decides.
    fn try_admit(&self, now: u64) -> Result<Ticket, u64>;
    /// Marks an admitted request finished at `now` (the window counts from then).
    fn complete(&self, ticket: Ticket, now: u64);
    /// Cools the key down until `until`, unless it already cools longer.
    fn cool_down(&self, until: u64, cause: CooldownCause);
    /// Disables the key; the first reason recorded stays.
    fn disable(&self, reason: DisabledReason);
    /// Takes the key back into service; says why it was disabled, if it was.
    fn enable(&self) -> Option<DisabledReason>;
    /// Why the key is disabled, if it is (without the cost of a whole snapshot).
    fn disabled(&self) -> Option<DisabledReason>;
    fn count(&self, counter: KeyCounter);
    fn snapshot(&self, now: u64) -> KeySnapshot;
}

/// What a pool record holds at one moment.
#[derive(Clone, Debug)]
pub struct PoolSnapshot {
    pub counters: [u64; layout::POOL_COUNTERS],
    /// Non-cumulative attempts per latency bucket (`layout::LATENCY_BUCKETS_S`, then above).
    pub latency_buckets: Vec<u64>,
}

impl PoolSnapshot {
    pub fn counter(&self, c: PoolCounter) -> u64 {
        self.counters[c as usize]
    }
}

/// The shared part of a pool: its round-robin cursor and pool-wide counters.
pub trait PoolRecord: Send + Sync {
    /// The cursor's value before this call moves it on by one.
    fn next_cursor(&self) -> u64;
    fn add(&self, counter: PoolCounter, n: u64);
    fn observe_latency(&self, micros: u64);
    fn snapshot(&self) -> PoolSnapshot;
}

/// Held by every pool that uses a key; the store keeps a weak reference to know whether a
/// pool of this process still uses the key.
#[derive(Debug, Default)]
pub struct InUse;

/// One key, one limit: the rule when a pool configures a key whose record exists with another
/// limit or window. While a pool of this process (or, for shared state, another process that
/// registered the key and still runs) uses the record, the new configuration is refused with
/// an error naming both; once nobody does, the record is made again with the new limit (its
/// window history is dropped, since it was counted against the old limit).
pub(crate) fn conflict(spec: &KeySpec, limit: u64, window: u64, holder: &str) -> Error {
    let setting = if limit != spec.limit {
        &spec.limit_setting
    } else {
        &spec.window_setting
    };
    Error::config(
        setting.clone(),
        format!(
            "key {} is in use by {holder} with {limit} requests per {window} ms, and this pool \
             configures {} per {} ms; one key has one limit: configure the same values \
             everywhere it is used, or stop the processes that use the old ones",
            spec.fingerprint, spec.limit, spec.window_ms
        ),
    )
}

/// Whether a record was made for this limit and window.
pub(crate) fn same_limits(cell: &KeyCell, spec: &KeySpec) -> bool {
    cell.limit() == spec.limit && cell.window_ms() == spec.window_ms
}

/// Raises a record's in-flight allowance to cover this pool's timeout.
pub(crate) fn cover_timeout(cell: &KeyCell, spec: &KeySpec) {
    cell.0
        .word(layout::K_MAX_INFLIGHT_MS)
        .fetch_max(spec.max_inflight_ms, Relaxed);
}

/// The token of a key in a registry of this process: the live one, or a new one.
pub(crate) fn in_use_token(slot: &mut Weak<InUse>) -> Arc<InUse> {
    slot.upgrade().unwrap_or_else(|| {
        let token = Arc::new(InUse);
        *slot = Arc::downgrade(&token);
        token
    })
}

/// A place to keep key and pool records.
pub trait Store: Send + Sync {
    /// The record of a key, created on first use (see [`conflict`] for a changed limit).
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error>;
    /// The record of a pool's key set (its round-robin cursor and pool-wide counters).
    fn pool(&self, id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error>;
    /// `memory`, or where the shared state lives.
    fn describe(&self) -> String;
}

pub(crate) fn tier_word(tier: Tier) -> u64 {
    match tier {
        Tier::Free => 0,
        Tier::Paid => 1,
    }
}
