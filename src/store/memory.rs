//! State for this process only, in heap memory.

use super::layout::{KeyCell, PoolCell, Words, POOL_WORDS};
use super::{adopt, tier_word, KeySpec, Store};
use crate::error::Error;
use crate::key::KeyId;
use once_cell::sync::Lazy;
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

/// A heap block of zeroed atomic words.
struct Block(Box<[AtomicU64]>);

fn block_words(len: usize) -> Words {
    let block = Arc::new(Block((0..len).map(|_| AtomicU64::new(0)).collect()));
    let ptr = NonNull::from(&block.0[0]);
    // SAFETY: the boxed slice never moves and lives as long as `block`, which `Words` keeps.
    unsafe { Words::new(ptr, len, block) }
}

/// Every key and pool record of this process, so that pools sharing a key share its state.
/// A mutex, because records are looked up only when a pool is created, never per request.
static KEYS: Lazy<Mutex<HashMap<KeyId, KeyCell>>> = Lazy::new(Default::default);
static POOLS: Lazy<Mutex<HashMap<[u8; 16], PoolCell>>> = Lazy::new(Default::default);

/// The in-process store.
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryStore;

impl Store for MemoryStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyCell, Error> {
        let mut keys = KEYS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(cell) = keys.get(&spec.id) {
            adopt(cell, spec, "this process")?;
            return Ok(cell.clone());
        }
        let cell = KeyCell(block_words(KeyCell::words_for(spec.limit)));
        cell.init(spec.limit, spec.window_ms, tier_word(spec.tier));
        adopt(&cell, spec, "this process")?;
        keys.insert(spec.id, cell.clone());
        Ok(cell)
    }

    fn pool(&self, id: &[u8; 16]) -> Result<PoolCell, Error> {
        let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
        Ok(pools
            .entry(*id)
            .or_insert_with(|| PoolCell(block_words(POOL_WORDS)))
            .clone())
    }

    fn describe(&self) -> String {
        "memory".to_string()
    }
}
