//! Where key and pool state lives, behind one seam: [`Store`] finds or creates records,
//! [`KeyRecord`] holds a key's state (admit, complete, cool down, disable, count, read) and
//! [`PoolRecord`] a pool's (the round-robin cursor and pool-wide counters). The pool knows
//! nothing else, so a store outside this crate (Redis, with each operation a server-side
//! script) can implement it for several hosts with the same guarantees:
//!
//! - one record per key, one per pool key set;
//! - at most the key's [`Quota`] in any rolling window (`limiter`'s rule), counted on the
//!   store's own clock ([`Store::now`]: every time a record sees is one of its values);
//! - one quota per key among the pools that use it: a conflicting one is an error, never
//!   silently merged ([`conflict`]);
//! - every method may fail (a network store can), and a failure reaches the caller as an
//!   [`Error`], never a panic; a refusal says why ([`Refusal`]).
//!
//! The stores here keep records as atomic words ([`layout`]), the same code on both:
//! - [`memory::MemoryStore`]: this process only. Records are process-wide, so two pools that
//!   share a key share its count.
//! - [`shm::ShmStore`]: every process on the host, through a memory-mapped file (the default).
//! - [`redis::RedisStore`]: every process of every host that names one Redis server.

pub mod layout;
pub mod memory;
pub mod redis;
pub mod shm;

use crate::clock::Clock;
use crate::config::StateLocation;
use crate::error::Error;
use crate::health::{CooldownCause, DisabledReason};
use crate::key::{KeyId, Tier};
use crate::limiter::{Ticket, Usage};
use crate::metrics::counters::{KeyCounter, PoolCounter, KEY_COUNTERS, POOL_COUNTERS};
use crate::quota::Quota;
use std::sync::{Arc, Weak};

/// What a pool asks of a key's record.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub id: KeyId,
    pub fingerprint: String,
    pub tier: Tier,
    pub quota: Quota,
    /// The longest a request through this pool can take; in-flight slots older than this plus
    /// the window are presumed abandoned.
    pub max_inflight_ms: u64,
    /// How the configuration names the limit and the window (e.g. `GEMINI_FREE_RATE_LIMIT`,
    /// "config field `window_ms`"), for errors.
    pub limit_setting: String,
    pub window_setting: String,
}

/// Why a key's record did not admit a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Full or cooling down: it may admit from this time on (a [`Store::now`] time).
    Until(u64),
    /// Disabled: it admits nothing until an operator enables it.
    Disabled(DisabledReason),
    /// The store could not say.
    Store(Error),
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
    pub quota: Quota,
    pub usage: Usage,
    /// The end of the key's cooldown (0: none ever) and its cause.
    pub cooldown_until: u64,
    pub cooldown_cause: CooldownCause,
    pub disabled: Option<DisabledReason>,
    pub counters: [u64; KEY_COUNTERS],
}

impl KeySnapshot {
    pub fn counter(&self, c: KeyCounter) -> u64 {
        self.counters[c as usize]
    }
}

/// The operations on a key's state, wherever it lives. Every method may be called from any
/// thread (and, for shared stores, any process) at once. Times are [`Store::now`] values.
pub trait KeyRecord: Send + Sync {
    /// Admits a request at `now`, or says why not. A disabled or cooling key refuses;
    /// otherwise the rolling window decides.
    fn try_admit(&self, now: u64) -> Result<Ticket, Refusal>;
    /// Marks an admitted request finished at `now` (the window counts from then).
    fn complete(&self, ticket: Ticket, now: u64) -> Result<(), Error>;
    /// Cools the key down until `until`, unless it already cools longer.
    fn cool_down(&self, until: u64, cause: CooldownCause) -> Result<(), Error>;
    /// Disables the key; the first reason recorded stays.
    fn disable(&self, reason: DisabledReason) -> Result<(), Error>;
    /// Takes the key back into service (and ends any cooldown); says why it was disabled, if
    /// it was.
    fn enable(&self) -> Result<Option<DisabledReason>, Error>;
    /// Why the key is disabled, if it is (without the cost of a whole snapshot).
    fn disabled(&self) -> Result<Option<DisabledReason>, Error>;
    fn count(&self, counter: KeyCounter) -> Result<(), Error>;
    fn snapshot(&self, now: u64) -> Result<KeySnapshot, Error>;
}

/// What a pool record holds at one moment.
#[derive(Clone, Debug)]
pub struct PoolSnapshot {
    pub counters: [u64; POOL_COUNTERS],
    /// Non-cumulative attempts per latency bucket (`counters::LATENCY_BUCKETS_S`, then above).
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
    fn next_cursor(&self) -> Result<u64, Error>;
    fn add(&self, counter: PoolCounter, n: u64) -> Result<(), Error>;
    fn observe_latency(&self, micros: u64) -> Result<(), Error>;
    fn snapshot(&self) -> Result<PoolSnapshot, Error>;
}

/// A key record found in a store, by identity, whichever pool registered it.
#[derive(Clone, Debug)]
pub struct StoredKey {
    pub id: KeyId,
    pub fingerprint: String,
    pub snapshot: KeySnapshot,
}

/// What [`Store::enable`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enabled {
    /// No key of the store has that fingerprint.
    NoSuchKey,
    /// The key is in service now; it had been disabled for this reason, if at all.
    Enabled { was: Option<DisabledReason> },
}

/// A place to keep key and pool records.
pub trait Store: Send + Sync {
    /// The record of a key, created on first use (see [`conflict`] for a changed quota).
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error>;
    /// The record of a pool's key set (its round-robin cursor and pool-wide counters).
    fn pool(&self, id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error>;
    /// The store's time, in milliseconds (never 0), which every record counts on: for the
    /// stores here the host's monotonic clock (or the clock the pool was given); a store
    /// shared by several hosts answers with its own (e.g. the server's, as measured against
    /// the local clock when it was opened).
    fn now(&self) -> u64;
    /// Every key record in the store, whichever pool or process registered it.
    fn all_keys(&self) -> Result<Vec<StoredKey>, Error>;
    /// Takes the key with this fingerprint back into service, for every pool that uses it.
    fn enable(&self, fingerprint: &str) -> Result<Enabled, Error>;
    /// Bytes of records the store holds, where it can tell.
    fn used_bytes(&self) -> Option<u64>;
    /// `memory`, or where the shared state lives.
    fn describe(&self) -> String;
}

/// The store a configuration names, counting time on `clock`.
pub fn open(location: &StateLocation, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>, Error> {
    Ok(match location {
        StateLocation::Memory => Arc::new(memory::MemoryStore::new(clock)),
        StateLocation::Shm(path) => Arc::new(shm::ShmStore::open(path, clock)?),
        StateLocation::Redis(target) => Arc::new(redis::RedisStore::open(target, clock)?),
    })
}

/// Held by every pool that uses a key; the store keeps a weak reference to know whether a
/// pool of this process still uses the key.
#[derive(Debug, Default)]
pub struct InUse;

/// One key, one quota: the rule when a pool configures a key whose record exists with
/// another quota. While a pool of this process (or, for shared state, another process that
/// registered the key and still runs) uses the record, the new configuration is refused with
/// this error, naming both; once nobody does, the record is made again with the new quota and
/// carries the old window on (the newest records that can still count, up to the new limit;
/// see `layout::KeyCell::carry_over`), so the change never lets more through in any window
/// than the stricter of the two quotas would.
pub fn conflict(spec: &KeySpec, existing: Quota, holder: &str) -> Error {
    let setting = if existing.limit != spec.quota.limit {
        &spec.limit_setting
    } else {
        &spec.window_setting
    };
    Error::config(
        setting.clone(),
        format!(
            "key {} is in use by {holder} with {} requests per {} ms, and this pool \
             configures {} per {} ms; one key has one limit: configure the same values \
             everywhere it is used, or stop the processes that use the old ones",
            spec.fingerprint,
            existing.limit,
            existing.window_ms(),
            spec.quota.limit,
            spec.quota.window_ms()
        ),
    )
}

/// Whether a record made for `existing` serves this pool as it is.
pub fn same_quota(existing: Quota, spec: &KeySpec) -> bool {
    existing == spec.quota
}

/// The token of a key in a registry of this process: the live one, or a new one.
pub(crate) fn in_use_token(slot: &mut Weak<InUse>) -> Arc<InUse> {
    slot.upgrade().unwrap_or_else(|| {
        let token = Arc::new(InUse);
        *slot = Arc::downgrade(&token);
        token
    })
}
