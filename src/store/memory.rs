//! State for this process only, in heap memory.

use super::layout::{KeyCell, PoolCell, Words, POOL_WORDS};
use super::{
    conflict, in_use_token, same_quota, Enabled, InUse, KeyHandle, KeySpec, PoolRecord, Store,
    StoredKey,
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

fn block_words(len: usize) -> Words {
    let block = Arc::new(Block((0..len).map(|_| AtomicU64::new(0)).collect()));
    // From the slice's own pointer (not a reference to its first element), so that the
    // pointer may be used for the whole block.
    let ptr = NonNull::new(block.0.as_ptr().cast_mut()).expect("a boxed slice is never null");
    // SAFETY: the boxed slice never moves and lives as long as `block`, which `Words` keeps.
    unsafe { Words::new(ptr, len, block) }
}

/// A key's record and whether a pool still uses it.
struct Entry {
    cell: KeyCell,
    users: Weak<InUse>,
}

/// Every key and pool record of this process, so that pools sharing a key share its state.
/// Records outlive their pools, so a pool made again later still sees the key's window.
/// A mutex, because records are looked up only when a pool is created, never per request.
static KEYS: Lazy<Mutex<HashMap<KeyId, Entry>>> = Lazy::new(Default::default);
static POOLS: Lazy<Mutex<HashMap<[u8; 16], PoolCell>>> = Lazy::new(Default::default);

fn keys() -> std::sync::MutexGuard<'static, HashMap<KeyId, Entry>> {
    KEYS.lock().unwrap_or_else(|e| e.into_inner())
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
        let mut keys = keys();
        if let Some(entry) = keys.get_mut(&spec.id) {
            if same_quota(entry.cell.quota(), spec) {
                entry.cell.cover_timeout(spec.max_inflight_ms);
                return Ok(KeyHandle {
                    record: Arc::new(entry.cell.clone()),
                    in_use: in_use_token(&mut entry.users),
                });
            }
            if entry.users.upgrade().is_some() {
                return Err(conflict(
                    spec,
                    entry.cell.quota(),
                    "another pool of this process",
                ));
            }
        }
        let cell = KeyCell(block_words(KeyCell::words_for(spec.quota.limit)));
        cell.init(spec.quota, spec.tier);
        if let Some(old) = keys.get(&spec.id) {
            // A new quota for a key no pool uses any more: carry its window on.
            cell.carry_over(&old.cell, self.now());
        }
        cell.cover_timeout(spec.max_inflight_ms);
        let mut users = Weak::new();
        let in_use = in_use_token(&mut users);
        keys.insert(
            spec.id,
            Entry {
                cell: cell.clone(),
                users,
            },
        );
        Ok(KeyHandle {
            record: Arc::new(cell),
            in_use,
        })
    }

    fn pool(&self, id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error> {
        let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        Ok(Arc::new(
            pools
                .entry(*id)
                .or_insert_with(|| PoolCell(block_words(POOL_WORDS)))
                .clone(),
        ))
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn all_keys(&self) -> Result<Vec<StoredKey>, Error> {
        let now = self.now();
        Ok(keys()
            .iter()
            .map(|(id, entry)| StoredKey {
                id: *id,
                fingerprint: fingerprint_of_id(id),
                snapshot: entry.cell.snapshot(now),
            })
            .collect())
    }

    fn enable(&self, fingerprint: &str) -> Result<Enabled, Error> {
        Ok(keys()
            .iter()
            .find(|(id, _)| fingerprint_of_id(id) == fingerprint)
            .map_or(Enabled::NoSuchKey, |(_, entry)| Enabled::Enabled {
                was: entry.cell.enable(),
            }))
    }

    fn used_bytes(&self) -> Option<u64> {
        let words: usize = keys().values().map(|e| e.cell.0.as_slice().len()).sum();
        Some(words as u64 * 8)
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
