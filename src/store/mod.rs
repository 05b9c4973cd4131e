//! Where key and pool state lives. A store hands out records of atomic words ([`layout`]); the
//! limiter and the pool work on those records and never know which store made them.
//!
//! - [`memory::MemoryStore`]: this process only. Records are process-wide, so two pools that
//!   share a key share its count.
//! - [`shm::ShmStore`]: every process on the host, through a memory-mapped file (the default).
//!
//! A store on another engine (shared memory, Redis) implements the same trait with the same
//! guarantees: one record per key, one per pool key set, and the first configuration of a key
//! wins (a conflicting one is an error, never silently merged).

pub mod layout;
pub mod memory;
pub mod shm;

use crate::error::Error;
use crate::key::{KeyId, Tier};
pub use layout::{CooldownCause, DisabledReason, KeyCell, KeyCounter, PoolCell, PoolCounter};
use std::sync::atomic::Ordering::Relaxed;

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
}

/// A place to keep key and pool records.
pub trait Store: Send + Sync {
    /// The record of a key, created on first use.
    fn key(&self, spec: &KeySpec) -> Result<KeyCell, Error>;
    /// The record of a pool's key set (its round-robin cursor and pool-wide counters).
    fn pool(&self, id: &[u8; 16]) -> Result<PoolCell, Error>;
    /// `memory`, or where the shared state lives.
    fn describe(&self) -> String;
}

pub(crate) fn tier_word(tier: Tier) -> u64 {
    match tier {
        Tier::Free => 0,
        Tier::Paid => 1,
    }
}

/// Checks that an existing record was made for the same limit and window, and raises its
/// in-flight allowance to cover this pool's timeout.
pub(crate) fn adopt(cell: &KeyCell, spec: &KeySpec, store: &str) -> Result<(), Error> {
    let (limit, window) = (cell.limit(), cell.window_ms());
    if limit != spec.limit || window != spec.window_ms {
        return Err(Error::config(
            "rate limits",
            format!(
                "key {} is already in use in {store} with {limit} requests per {window} ms, \
                 and this pool configures {} per {} ms; one key has one limit: configure the same \
                 values everywhere it is used",
                spec.fingerprint, spec.limit, spec.window_ms
            ),
        ));
    }
    cell.0
        .word(layout::K_MAX_INFLIGHT_MS)
        .fetch_max(spec.max_inflight_ms, Relaxed);
    Ok(())
}
