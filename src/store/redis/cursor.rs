//! A pool's round-robin cursor, shared by every process of every host that uses the pool's
//! key set: one Redis counter (`names::Names::cursor`), each of its values handed to one
//! admission, so that the pools of all hosts together take the keys in turn as one pool
//! would.
//!
//! The trade: the cursor chooses the key before the admission, and the key's quota record
//! lives in another Cluster slot than the pool's, so the counter cannot be moved inside the
//! admission script. Instead each process takes its next value in passing: the `INCRBY` rides
//! in the same pipeline (one round trip) as an admission, and the value it returns serves the
//! process's next admission. So no admission ever pays a round trip for the cursor. What it
//! costs: a process uses the value it took at its previous admission, one step behind the
//! others, so the order in which keys are taken is a round robin of the values (every key
//! gets every k-th value: the load is even) rather than of the exact moments; a process's
//! first admission (and one that finds nothing held, because more threads admitted at once
//! than refills arrived, or Redis did not answer) counts on a local cursor instead; a value
//! taken by a process that then exits is never used (one key skipped once).

use redis::{FromRedisValue, RedisResult, Script};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// The most values one cursor asks for in one refill.
const MAX_OWED: u64 = 64;

/// One pool's cursor.
pub(super) struct Cursor {
    name: String,
    /// Values taken from the counter and not handed out yet.
    held: Mutex<VecDeque<u64>>,
    /// How many values the next refill takes (one per value handed out since the last).
    owed: AtomicU64,
    /// Whether the cursor waits in `Refills`.
    queued: AtomicBool,
    /// While Redis does not answer.
    local: AtomicU64,
}

/// The cursors that wait for a refill, taken by the next admission that this store sends.
#[derive(Default)]
pub(super) struct Refills {
    queue: Mutex<Vec<Arc<Cursor>>>,
}

impl Cursor {
    pub fn new(name: String, seed: u64) -> Arc<Cursor> {
        Arc::new(Cursor {
            name,
            held: Mutex::new(VecDeque::new()),
            owed: AtomicU64::new(0),
            queued: AtomicBool::new(false),
            local: AtomicU64::new(seed),
        })
    }

    fn held(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The value for this admission: one taken in passing before, or (none held: this
    /// process's first admission, or more threads at once than refills arrived) a local
    /// count. Either way one more value is owed, so that the next admission takes it.
    pub fn next(self: &Arc<Self>, refills: &Refills) -> u64 {
        let held = self.held().pop_front();
        let value = held.unwrap_or_else(|| self.local.fetch_add(1, Relaxed));
        // Bounded: while Redis does not answer, refills fail and the debt would grow.
        if self.owed.load(Relaxed) < MAX_OWED {
            self.owed.fetch_add(1, Relaxed);
        }
        if !self.queued.swap(true, Relaxed) {
            refills.lock().push(self.clone());
        }
        value
    }
}

impl Refills {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Cursor>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cursors owed values, with how many each.
    fn take(&self) -> Vec<(Arc<Cursor>, u64)> {
        let queue = std::mem::take(&mut *self.lock());
        queue
            .into_iter()
            .filter_map(|c| {
                c.queued.store(false, Relaxed);
                let n = c.owed.swap(0, Relaxed);
                (n > 0).then_some((c, n))
            })
            .collect()
    }

    /// Refills that did not happen: owed again.
    fn give_back(&self, taken: Vec<(Arc<Cursor>, u64)>) {
        let mut queue = self.lock();
        for (c, n) in taken {
            c.owed.fetch_add(n, Relaxed);
            if !c.queued.swap(true, Relaxed) {
                queue.push(c);
            }
        }
    }

    /// Runs `script` on `keys` and `args` (`EVALSHA`, in full after `NOSCRIPT`), with the
    /// owed cursors' `INCRBY`s in the same pipeline: one round trip.
    pub fn invoke<T: FromRedisValue>(
        &self,
        c: &mut redis::Connection,
        script: &Script,
        keys: &[&str],
        args: &[u64],
    ) -> RedisResult<T> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(*k);
        }
        for a in args {
            inv.arg(*a);
        }
        let owed = self.take();
        if owed.is_empty() {
            return inv.invoke(c);
        }
        let mut pipe = redis::pipe();
        for (cursor, n) in &owed {
            pipe.cmd("INCRBY").arg(&cursor.name).arg(*n);
        }
        pipe.cmd("EVALSHA")
            .arg(script.get_hash())
            .arg(keys.len())
            .arg(keys)
            .arg(args);
        // NOSCRIPT (a restart, SCRIPT FLUSH): nothing of the script ran; loaded, and the
        // pipeline sent again (the counter's values of the first try are skipped).
        let values = match pipe.query::<Vec<redis::Value>>(c) {
            Err(e) if e.kind() == redis::ErrorKind::NoScriptError => {
                inv.load(c).and_then(|_| pipe.query::<Vec<redis::Value>>(c))
            }
            other => other,
        };
        match values {
            Ok(mut values) if values.len() == owed.len() + 1 => {
                let result = values.pop().expect("one more than the cursors");
                for ((cursor, n), v) in owed.into_iter().zip(values) {
                    // The counter's value after adding n: the n values before it are ours.
                    let top: u64 = redis::from_redis_value(&v).unwrap_or(0);
                    cursor.held().extend(top.saturating_sub(n)..top);
                }
                T::from_redis_value(&result)
            }
            Ok(_) => {
                self.give_back(owed);
                inv.invoke(c)
            }
            Err(e) => {
                self.give_back(owed);
                Err(e)
            }
        }
    }
}
