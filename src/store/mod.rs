//! Where key, quota and pool state lives, behind one seam: [`Store`] finds or creates records;
//! [`KeyRecord`] holds what is a key's own, [`QuotaRecord`] what a quota group spends on one
//! model, and [`PoolRecord`] a pool's (the round-robin cursor and pool-wide counters). The
//! pool knows nothing else, so a store outside this crate (Redis, each operation a server-side
//! script) can implement it for several hosts with the same guarantees.
//!
//! # The records
//!
//! - **Key record**, one per key (by [`KeyId`]): the tier, the key's quota group (16-byte
//!   digest), the disabled reason (first one wins) and the per-key counters
//!   ([`KeyCounter`]). Nothing about quotas: keys of one group share those.
//! - **Quota record**, one per (quota group, model) (by [`QuotaSpec::id`], a digest of both),
//!   created lazily the first time a pool uses the model. It holds:
//!   - the configured [`Limits`] (to compare with the next pool's: [`conflict`]) and the limits
//!     in force, which only ever go down (a 429 that names a lower `quotaValue`);
//!   - requests per rolling window: a ring of `rate` slots ([`crate::limiter`]'s rule: each
//!     slot holds one admission at a time, in flight or finished, and frees one window after
//!     the answer, or `max_inflight_ms` + window after admission if its owner died);
//!   - requests per Pacific day: one word, `day << 44 | count`, where `day` is the Pacific day
//!     (the UTC date number of its ending midnight); a new day starts the count again;
//!   - input tokens per rolling window: a ring of slots like the rate's, each slot standing for
//!     `token_unit` tokens (limit / slots, rounded up); a request takes as many slots as its
//!     estimate needs (at most all), so the window never holds more than the limit;
//!   - the cooldown (end and cause in one word: per minute, per day, capacity), the capacity
//!     backoff's streak, the end of "model unavailable for this group" (a `limit: 0` answer),
//!     and the counter of calls this model served as a fallback.
//! - **Pool record**, one per pool key set: the cursor and the pool counters.
//!
//! # The operations and what each must guarantee
//!
//! - [`QuotaRecord::try_admit`] is **all or nothing** across the three quotas: either every
//!   one of them counts the request, or none does (a refusal takes back what it had taken),
//!   and it says why ([`Refusal`]): unavailable, cooling, or full until a time (the earliest
//!   the quota that refused frees; the next Pacific midnight for the day). Each quota is exact
//!   under any interleaving of threads, processes and hosts: never more than its limit in any
//!   window or day. The daily count is committed last and never taken back, so it counts
//!   exactly the requests admitted (a dead process's request stays counted: it may have been
//!   sent); in-flight rate and token slots of a dead process free themselves like any others.
//! - [`QuotaRecord::complete`] stamps the slots with the answer's time and corrects the token
//!   reservation to the service's `promptTokenCount` (slots above it are freed; more is taken
//!   if free, otherwise the service's own limit has the last word).
//! - `cool_down`, `mark_unavailable`: extend only (the later end wins); `lower_limit`: lowers
//!   only; `enable` of a key does not touch quota records (a cooldown is the group's).
//! - every method may fail (a network store can), and a failure reaches the caller as an
//!   [`Error`], never a panic.
//!
//! Every time a record sees is one of [`Store::now`]'s values; the day is the pool's
//! ([`Moment`]).
//!
//! The stores here keep records as atomic words ([`layout`], [`group`]), the same code on
//! both:
//! - [`memory::MemoryStore`]: this process only. Records are process-wide, so two pools that
//!   share a key share its state.
//! - [`shm::ShmStore`]: every process on the host, through a memory-mapped file (the default).
//! - [`redis::RedisStore`]: every process of every host that names one Redis server.

pub mod group;
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
use crate::quota::Limits;
use std::sync::{Arc, Weak};

/// What a pool asks of a key's record.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub id: KeyId,
    pub fingerprint: String,
    pub tier: Tier,
    /// The key's quota group (`GroupId::digest`).
    pub group: [u8; 16],
}

/// What a pool asks of a (quota group, model) record.
#[derive(Clone, Debug)]
pub struct QuotaSpec {
    /// The record's identity: [`quota_id`] of the group and the model.
    pub id: [u8; 16],
    pub group: [u8; 16],
    /// The group as people read it (a project's name, or `key:` and a key's stored identity),
    /// for errors.
    pub group_name: String,
    /// The model, without `models/` (at most 128 bytes).
    pub model: String,
    pub tier: Tier,
    pub limits: Limits,
    /// The longest a request through this pool can take; in-flight slots older than this plus
    /// the window are presumed abandoned.
    pub max_inflight_ms: u64,
    /// How the configuration names the limits (e.g. `GEMINI_FREE_RATE_LIMIT`, "config field
    /// `window_ms`"), for errors.
    pub limit_setting: String,
    pub window_setting: String,
}

/// The identity of the record of `group` and `model`.
pub fn quota_id(group: &[u8; 16], model: &str) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"gemini-rotator/quota/v1\0");
    h.update(group);
    h.update(model.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize()[..16]);
    id
}

/// When an admission happens: the store's time, and the Pacific day it falls in (the UTC day
/// number of the midnight that ends it) with that midnight as a store time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Moment {
    pub now: u64,
    pub day: u64,
    pub day_ends: u64,
}

impl Moment {
    /// Store time `now`, when the wall clock shows `unix_secs`. The day's end is whole seconds
    /// from `now`, so it may fall up to a second after the real midnight: never before it.
    pub fn of(now: u64, unix_secs: i64) -> Moment {
        let midnight = crate::clock::next_pacific_midnight(unix_secs);
        Moment {
            now,
            day: midnight.div_euclid(86_400) as u64 & ((1 << 20) - 1),
            day_ends: now.saturating_add(((midnight - unix_secs).max(1) as u64) * 1000),
        }
    }
}

/// Why a record did not admit a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Full or cooling down: it may admit from this time on (a [`Store::now`] time).
    Until(u64),
    /// The model is not on the group's tier (a `limit: 0` answer); look again from this time.
    Unavailable(u64),
    /// Disabled: it admits nothing until an operator enables it.
    Disabled(DisabledReason),
    /// The store could not say.
    Store(Error),
}

/// A key's record, and the token that marks it in use by a pool of this process.
pub struct KeyHandle {
    pub record: Arc<dyn KeyRecord>,
    pub in_use: Arc<InUse>,
}

/// A quota record, and the token that marks it in use by a pool of this process for as long
/// as the pool holds it (see [`conflict`]).
pub struct QuotaHandle {
    pub record: Arc<dyn QuotaRecord>,
    pub in_use: Arc<InUse>,
}

/// What a key's record holds at one moment.
#[derive(Clone, Debug)]
pub struct KeySnapshot {
    pub tier: Tier,
    pub group: [u8; 16],
    pub disabled: Option<DisabledReason>,
    pub counters: [u64; KEY_COUNTERS],
}

impl KeySnapshot {
    pub fn counter(&self, c: KeyCounter) -> u64 {
        self.counters[c as usize]
    }
}

/// The operations on a key's own state. Every method may be called from any thread (and, for
/// shared stores, any process) at once.
pub trait KeyRecord: Send + Sync {
    /// Disables the key; the first reason recorded stays.
    fn disable(&self, reason: DisabledReason) -> Result<(), Error>;
    /// Takes the key back into service; says why it was disabled, if it was.
    fn enable(&self) -> Result<Option<DisabledReason>, Error>;
    /// Why the key is disabled, if it is (without the cost of a whole snapshot).
    fn disabled(&self) -> Result<Option<DisabledReason>, Error>;
    fn count(&self, counter: KeyCounter) -> Result<(), Error>;
    fn snapshot(&self) -> Result<KeySnapshot, Error>;
}

/// The slots an admission took of a token window: none (no token limit), one, or several.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenTickets {
    None,
    One(Ticket),
    Many(Vec<Ticket>),
}

impl TokenTickets {
    pub fn as_slice(&self) -> &[Ticket] {
        match self {
            TokenTickets::None => &[],
            TokenTickets::One(t) => std::slice::from_ref(t),
            TokenTickets::Many(v) => v,
        }
    }
}

/// Proof of an admission on a quota record, handed back to it on completion. A store outside
/// this crate fills the words with what it needs to find its reservations again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaTicket {
    pub rate: Ticket,
    pub tokens: TokenTickets,
}

/// The limits a 429 can show to be lower than configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    Rate,
    Daily,
    Tokens,
}

impl LimitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Rate => "rate",
            LimitKind::Daily => "daily",
            LimitKind::Tokens => "tokens",
        }
    }
}

/// What a quota record holds at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaSnapshot {
    pub group: [u8; 16],
    pub model: String,
    pub tier: Tier,
    /// The limits in force (lowered by the service's answers, if they were).
    pub limits: Limits,
    pub usage: Usage,
    /// Requests counted today (0 when the record's day is not `day`).
    pub today: u64,
    /// Input tokens reserved in the window (whole slots of `token_unit`), 0 with no token
    /// limit.
    pub tokens_in_window: u64,
    /// The end of the cooldown (0: none ever) and its cause.
    pub cooldown_until: u64,
    pub cooldown_cause: CooldownCause,
    /// Until when the model is unavailable for the group (0: it never was).
    pub unavailable_until: u64,
    /// Calls this record's model served as another model's fallback.
    pub fallbacks: u64,
}

/// The operations on a (quota group, model) record; see the module's text for what each
/// guarantees. Times are [`Store::now`] values.
pub trait QuotaRecord: Send + Sync {
    /// Admits a request estimated at `tokens` input tokens at `at`, on all three quotas or
    /// none, or says why not.
    fn try_admit(&self, at: &Moment, tokens: u64) -> Result<QuotaTicket, Refusal>;
    /// Marks an admitted request finished at `now`; `prompt_tokens` is the service's count of
    /// its input tokens, when the answer said.
    fn complete(
        &self,
        ticket: QuotaTicket,
        now: u64,
        prompt_tokens: Option<u64>,
    ) -> Result<(), Error>;
    /// Cools the group's model down until `until`, unless it already cools longer.
    fn cool_down(&self, until: u64, cause: CooldownCause) -> Result<(), Error>;
    /// The model is not on the group's tier: unavailable until `until`.
    fn mark_unavailable(&self, until: u64) -> Result<(), Error>;
    /// Lowers a limit in force to `value` (never raises it, never below 1); says whether it
    /// was lowered.
    fn lower_limit(&self, kind: LimitKind, value: u64) -> Result<bool, Error>;
    /// The capacity backoff's streak: how many capacity 429s in a row; `bump` adds one and
    /// returns the streak before it; `reset` ends it.
    fn capacity_streak(&self, bump: bool) -> Result<u32, Error>;
    fn reset_capacity(&self) -> Result<(), Error>;
    /// Counts a call this model served as a fallback.
    fn count_fallback(&self) -> Result<(), Error>;
    fn snapshot(&self, at: &Moment) -> Result<QuotaSnapshot, Error>;
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

/// A place to keep key, quota and pool records.
pub trait Store: Send + Sync {
    /// The record of a key, created on first use.
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error>;
    /// The record of a (quota group, model), created on first use (see [`conflict`] for
    /// changed limits).
    fn quota(&self, spec: &QuotaSpec) -> Result<QuotaHandle, Error>;
    /// The record of a pool's key set (its round-robin cursor and pool-wide counters).
    fn pool(&self, id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error>;
    /// The store's time, in milliseconds (never 0), which every record counts on: for the
    /// stores here the host's monotonic clock (or the clock the pool was given); a store
    /// shared by several hosts answers with its own (e.g. the server's, as measured against
    /// the local clock when it was opened).
    fn now(&self) -> u64;
    /// Every key record in the store, whichever pool or process registered it.
    fn all_keys(&self) -> Result<Vec<StoredKey>, Error>;
    /// Every quota record in the store, at `at`.
    fn all_quotas(&self, at: &Moment) -> Result<Vec<QuotaSnapshot>, Error>;
    /// Takes the key with this fingerprint back into service, for every pool that uses it.
    fn enable(&self, fingerprint: &str) -> Result<Enabled, Error>;
    /// Bytes of records the store holds, where it can tell.
    fn used_bytes(&self) -> Option<u64>;
    /// `memory`, or where the shared state lives.
    fn describe(&self) -> String;
    /// The pins of resources to the quota group (or key) that made them. A store that keeps
    /// none of its own (one outside this crate) gets this process's.
    fn pins(&self) -> Arc<dyn PinRecord> {
        memory::process_pins()
    }
}

/// What a resource is pinned to: the quota group whose project holds it (files, cached
/// contents, operations), or the exact key that started an upload session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinTarget {
    /// A quota group (`GroupId::digest`).
    Group([u8; 16]),
    /// A key, by its stored identity (never its secret).
    Key(KeyId),
}

impl PinTarget {
    /// One byte of kind and the 16 bytes of identity, as shared stores keep it.
    pub fn to_bytes(self) -> [u8; 17] {
        let (kind, id) = match self {
            PinTarget::Group(g) => (1, g),
            PinTarget::Key(k) => (2, k),
        };
        let mut out = [0u8; 17];
        out[0] = kind;
        out[1..].copy_from_slice(&id);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<PinTarget> {
        let id: [u8; 16] = b.get(1..17)?.try_into().ok()?;
        match b.first()? {
            1 => Some(PinTarget::Group(id)),
            2 => Some(PinTarget::Key(id)),
            _ => None,
        }
    }
}

/// Pins: resource names (`files/abc`, `cachedContents/x`, `upload:{id}`) to what serves them,
/// each until a store time. Names are the service's, never key material. Shared like the rest
/// of the store's state (every process on the host, or every host on one Redis). Pins are
/// rare next to admissions: a store may take a lock for them.
pub trait PinRecord: Send + Sync {
    /// Pins `name` to `target` until `expires_at` (a [`Store::now`] time), replacing any pin.
    fn pin(&self, name: &str, target: PinTarget, expires_at: u64) -> Result<(), Error>;
    /// What `name` is pinned to at `now`, if a pin for it has not expired.
    fn lookup(&self, name: &str, now: u64) -> Result<Option<PinTarget>, Error>;
    /// Removes the pin of `name` (the resource was deleted); no pin is no error.
    fn unpin(&self, name: &str) -> Result<(), Error>;
}

/// The store a configuration names, counting time on `clock`.
pub fn open(location: &StateLocation, clock: Arc<dyn Clock>) -> Result<Arc<dyn Store>, Error> {
    Ok(match location {
        StateLocation::Memory => Arc::new(memory::MemoryStore::new(clock)),
        StateLocation::Shm(path) => Arc::new(shm::ShmStore::open(path, clock)?),
        StateLocation::Redis(target) => Arc::new(redis::RedisStore::open(target, clock)?),
    })
}

/// Held by every pool that uses a record; the store keeps a weak reference to know whether a
/// pool of this process still uses it.
#[derive(Debug, Default)]
pub struct InUse;

/// One (quota group, model), one set of limits: the rule when a pool configures limits for a
/// record that exists with others. While a pool of this process (or, for shared state,
/// another process that registered the record and still runs) uses it, the new configuration
/// is refused with this error, naming both; once nobody does, the record is made again with
/// the new limits and carries the old state on (the newest window records that can still
/// count, up to the new limits, the day's count, the cooldown; see `group::QuotaCell::
/// carry_over`), so the change never lets more through than the stricter of the two would.
pub fn conflict(spec: &QuotaSpec, existing: Limits, holder: &str) -> Error {
    let setting = if existing.rate.window_ms() != spec.limits.rate.window_ms() {
        &spec.window_setting
    } else {
        &spec.limit_setting
    };
    Error::config(
        setting.clone(),
        format!(
            "quota group {} uses model {} through {holder} with {existing}, and this pool \
             configures {}; one group and model has one set of limits: configure the same \
             values everywhere its keys are used, or stop the processes that use the old ones",
            spec.group_name, spec.model, spec.limits
        ),
    )
}

/// Whether a record made for `existing` serves this pool as it is.
pub fn same_limits(existing: Limits, spec: &QuotaSpec) -> bool {
    existing == spec.limits
}

/// The token of a record in a registry of this process: the live one, or a new one.
pub(crate) fn in_use_token(slot: &mut Weak<InUse>) -> Arc<InUse> {
    slot.upgrade().unwrap_or_else(|| {
        let token = Arc::new(InUse);
        *slot = Arc::downgrade(&token);
        token
    })
}
