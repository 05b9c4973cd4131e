//! State for this process only, in heap memory.

use super::layout::{KeyCell, PoolCell, Words, POOL_WORDS};
use super::{
    conflict, cover_timeout, in_use_token, same_limits, tier_word, InUse, KeyHandle, KeySpec,
    PoolRecord, Store,
};
use crate::error::Error;
use crate::key::KeyId;
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

/// The in-process store.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error> {
        let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = keys.get_mut(&spec.id) {
            if same_limits(&entry.cell, spec) {
                cover_timeout(&entry.cell, spec);
                return Ok(KeyHandle {
                    record: Arc::new(entry.cell.clone()),
                    in_use: in_use_token(&mut entry.users),
                });
            }
            if entry.users.upgrade().is_some() {
                let (limit, window) = (entry.cell.limit(), entry.cell.window_ms());
                return Err(conflict(
                    spec,
                    limit,
                    window,
                    "another pool of this process",
                ));
            }
        }
        let cell = KeyCell(block_words(KeyCell::words_for(spec.limit)));
        cell.init(spec.limit, spec.window_ms, tier_word(spec.tier));
        if let Some(old) = keys.get(&spec.id) {
            // A new limit for a key no pool uses any more: carry its window on.
            cell.carry_over(&old.cell, crate::clock::now_ms());
        }
        cover_timeout(&cell, spec);
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

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
