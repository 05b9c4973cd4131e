//! State for this process only, in heap memory.

use super::group::QuotaCell;
use super::layout::{KeyCell, PoolCell, Words, KEY_WORDS, POOL_WORDS};
use super::{
    conflict, in_use_token, same_limits, Enabled, InUse, KeyHandle, KeySpec, Moment, PoolRecord,
    QuotaHandle, QuotaSnapshot, QuotaSpec, Store, StoredKey,
};
use crate::clock::Clock;
use crate::error::Error;
use crate::key::{fingerprint_of_id, KeyId};
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, Weak};

/// A heap block of zeroed atomic words.
struct Block(Box<[AtomicU64]>);

pub(crate) fn block_words(len: usize) -> Words {
    let block = Arc::new(Block((0..len).map(|_| AtomicU64::new(0)).collect()));
    // From the slice's own pointer (not a reference to its first element), so that the
    // pointer may be used for the whole block.
    let ptr = NonNull::new(block.0.as_ptr().cast_mut()).expect("a boxed slice is never null");
    // SAFETY: the boxed slice never moves and lives as long as `block`, which `Words` keeps.
    unsafe { Words::new(ptr, len, block) }
}

/// A quota record and whether a pool still uses it.
struct Entry {
    cell: QuotaCell,
    users: Weak<InUse>,
}

/// Every record of this process, so that pools sharing a key share its state. Records outlive
/// their pools, so a pool made again later still sees the windows. A mutex, because records
/// are looked up only when a pool is created or first uses a model, never per request.
static KEYS: Lazy<Mutex<HashMap<KeyId, KeyCell>>> = Lazy::new(Default::default);
static QUOTAS: Lazy<Mutex<HashMap<[u8; 16], Entry>>> = Lazy::new(Default::default);
static POOLS: Lazy<Mutex<HashMap<[u8; 16], PoolCell>>> = Lazy::new(Default::default);

fn locked<T>(m: &'static Mutex<T>) -> std::sync::MutexGuard<'static, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The in-process store; its time is the clock it is given.
#[derive(Clone)]
pub struct MemoryStore {
    clock: Arc<dyn Clock>,
}

impl MemoryStore {
    pub fn new(clock: Arc<dyn Clock>) -> MemoryStore {
        MemoryStore { clock }
    }
}

impl Store for MemoryStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error> {
        let cell = locked(&KEYS)
            .entry(spec.id)
            .or_insert_with(|| {
                let cell = KeyCell(block_words(KEY_WORDS));
                cell.init(spec.tier, &spec.group);
                cell
            })
            .clone();
        Ok(KeyHandle {
            record: Arc::new(cell),
            in_use: Arc::new(InUse),
        })
    }

    fn quota(&self, spec: &QuotaSpec) -> Result<QuotaHandle, Error> {
        let mut quotas = locked(&QUOTAS);
        if let Some(entry) = quotas.get_mut(&spec.id) {
            if same_limits(entry.cell.configured(), spec) {
                entry.cell.cover_timeout(spec.max_inflight_ms);
                return Ok(QuotaHandle {
                    record: Arc::new(entry.cell.clone()),
                    in_use: in_use_token(&mut entry.users),
                });
            }
            if entry.users.upgrade().is_some() {
                return Err(conflict(
                    spec,
                    entry.cell.configured(),
                    "another pool of this process",
                ));
            }
        }
        let cell = QuotaCell(block_words(QuotaCell::words_for(&spec.limits)));
        cell.init(&spec.limits, spec.tier, &spec.group, &spec.model);
        cell.cover_timeout(spec.max_inflight_ms);
        if let Some(old) = quotas.get(&spec.id) {
            // New limits for a record no pool uses any more: carry its state on.
            cell.carry_over(&old.cell, self.now());
        }
        let mut users = Weak::new();
        let in_use = in_use_token(&mut users);
        quotas.insert(
            spec.id,
            Entry {
                cell: cell.clone(),
                users,
            },
        );
        Ok(QuotaHandle {
            record: Arc::new(cell),
            in_use,
        })
    }

    fn pool(&self, id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error> {
        Ok(Arc::new(
            locked(&POOLS)
                .entry(*id)
                .or_insert_with(|| PoolCell(block_words(POOL_WORDS)))
                .clone(),
        ))
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn all_keys(&self) -> Result<Vec<StoredKey>, Error> {
        Ok(locked(&KEYS)
            .iter()
            .map(|(id, cell)| StoredKey {
                id: *id,
                fingerprint: fingerprint_of_id(id),
                snapshot: cell.snapshot(),
            })
            .collect())
    }

    fn all_quotas(&self, at: &Moment) -> Result<Vec<QuotaSnapshot>, Error> {
        Ok(locked(&QUOTAS)
            .values()
            .map(|e| e.cell.snapshot(at))
            .collect())
    }

    fn enable(&self, fingerprint: &str) -> Result<Enabled, Error> {
        Ok(locked(&KEYS)
            .iter()
            .find(|(id, _)| fingerprint_of_id(id) == fingerprint)
            .map_or(Enabled::NoSuchKey, |(_, cell)| Enabled::Enabled {
                was: cell.enable(),
            }))
    }

    fn used_bytes(&self) -> Option<u64> {
        let keys = locked(&KEYS).len() * KEY_WORDS;
        let quotas: usize = locked(&QUOTAS)
            .values()
            .map(|e| e.cell.0.as_slice().len())
            .sum();
        Some((keys + quotas) as u64 * 8)
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}

/// Pins in this process's memory: a map behind a lock (pins are rare; see `PinRecord`).
#[derive(Default)]
pub struct MemoryPins {
    pins: std::sync::Mutex<HashMap<String, (super::PinTarget, u64)>>,
}

impl super::PinRecord for MemoryPins {
    fn pin(&self, name: &str, target: super::PinTarget, expires_at: u64) -> Result<(), Error> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.insert(name.to_string(), (target, expires_at));
        Ok(())
    }

    fn lookup(&self, name: &str, now: u64) -> Result<Option<super::PinTarget>, Error> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        match pins.get(name) {
            Some(&(target, until)) if now < until => Ok(Some(target)),
            Some(_) => {
                pins.remove(name);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    fn unpin(&self, name: &str) -> Result<(), Error> {
        let mut pins = self.pins.lock().unwrap_or_else(|p| p.into_inner());
        pins.remove(name);
        Ok(())
    }
}

/// This process's pins, shared by every memory store (records are process-wide, so pins are).
pub fn process_pins() -> Arc<dyn super::PinRecord> {
    static PINS: once_cell::sync::Lazy<Arc<MemoryPins>> =
        once_cell::sync::Lazy::new(Default::default);
    PINS.clone()
}
