//! Choosing a key: free keys in round-robin from the shared cursor, the paid key only when no
//! free key can admit, and a wait (bounded by the call) when none can.

use super::{Lease, Pool, PoolKey};
use crate::error::Error;
use crate::health::DisabledReason;
use crate::limiter::Ticket;
use crate::log::{self, Level, Value::Num, Value::Str};
use crate::metrics::counters::{KeyCounter, PoolCounter};
use crate::store::Refusal;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// How often a pool looks again at a key it found disabled (it may have been enabled again).
const DISABLED_RECHECK_MS: u64 = 10_000;

/// Why no key of the pool admitted a request.
#[derive(Debug, PartialEq, Eq)]
pub enum NoKey {
    /// Every key is full or cooling down: one may admit from this time on (a [`Pool::now`]
    /// time).
    Until(u64),
    /// Every key is disabled: none will admit until an operator enables one.
    AllDisabled,
    /// The store failed.
    Store(Error),
}

/// The position of the first key in `hints` whose hint is not ahead of `now`, lowering
/// `earliest` to the hints passed over. A key that refused is not asked again before the time
/// it named, and a disabled key not before `DISABLED_RECHECK_MS` later, so that a key enabled
/// again (`gemini-rotator enable`) is taken back by running pools (`seen_disabled` remembers
/// that it was disabled). The hints are one word per key in a dense local array, so passing
/// over full keys is this tight loop, which touches no shared memory.
#[inline]
fn first_due(hints: &[AtomicU64], now: u64, earliest: &mut u64) -> Option<usize> {
    for (i, hint) in hints.iter().enumerate() {
        let hint = hint.load(Relaxed);
        if now >= hint {
            return Some(i);
        }
        *earliest = (*earliest).min(hint);
    }
    None
}

impl Pool {
    /// Chooses a key and admits the request on it at `now`, or says why none would.
    fn acquire(&self, now: u64) -> Result<Lease<'_>, NoKey> {
        let mut earliest = u64::MAX;
        let k = self.free.len();
        if k > 0 {
            let cursor = self.record.next_cursor().map_err(NoKey::Store)?;
            let start = (cursor % k as u64) as usize;
            // From the cursor to the end, then from the start: no division per key.
            for (from, to) in [(start, k), (0, start)] {
                let mut index = from;
                while let Some(found) = first_due(&self.hints[index..to], now, &mut earliest) {
                    index += found;
                    let key = &self.free[index];
                    match self.try_key(index, key, now) {
                        Ok(ticket) => return Ok(self.lease(key, ticket)),
                        Err(Refusal::Until(ready)) => earliest = earliest.min(ready),
                        Err(Refusal::Disabled(_)) => {}
                        Err(Refusal::Store(e)) => return Err(NoKey::Store(e)),
                    }
                    index += 1;
                }
            }
        }
        if let Some(paid) = &self.paid {
            let tried = match self.held_back(k, now) {
                Some(ready) => Err(Refusal::Until(ready)),
                None => self.try_key(k, paid, now),
            };
            match tried {
                Ok(ticket) => {
                    let lease = self.lease(paid, ticket);
                    if k > 0 {
                        self.record
                            .add(PoolCounter::PaidFallbacks, 1)
                            .map_err(NoKey::Store)?;
                        log::event(
                            Level::Info,
                            "paid_fallback",
                            &[("key", Str(paid.key.fingerprint()))],
                        );
                    }
                    return Ok(lease);
                }
                Err(Refusal::Until(ready)) => earliest = earliest.min(ready),
                Err(Refusal::Disabled(_)) => {}
                Err(Refusal::Store(e)) => return Err(NoKey::Store(e)),
            }
        }
        // Every key disabled: nothing will ever admit (until an operator enables one).
        if self.seen_disabled.iter().all(|d| d.load(Relaxed)) {
            return Err(NoKey::AllDisabled);
        }
        Err(NoKey::Until(earliest))
    }

    fn lease<'p>(&'p self, key: &'p PoolKey, ticket: Ticket) -> Lease<'p> {
        Lease {
            pool: self,
            key,
            ticket: Some(ticket),
        }
    }

    /// The hint of key `index` (free keys, then the paid key) if it is still ahead of `now`
    /// (see [`first_due`]).
    #[inline]
    fn held_back(&self, index: usize, now: u64) -> Option<u64> {
        let hint = self.hints[index].load(Relaxed);
        (now < hint).then_some(hint)
    }

    /// Asks key `index` to admit; a refusal is counted and becomes the key's hint.
    #[inline]
    fn try_key(&self, index: usize, key: &PoolKey, now: u64) -> Result<Ticket, Refusal> {
        match key.record.try_admit(now) {
            Ok(ticket) => {
                if self.seen_disabled[index].load(Relaxed) {
                    self.seen_disabled[index].store(false, Relaxed);
                }
                Ok(ticket)
            }
            Err(refusal) => Err(self.refused(index, key, now, refusal)),
        }
    }

    /// A refusal of key `index`: counted, and made its hint (off the admitting path).
    #[cold]
    #[inline(never)]
    fn refused(&self, index: usize, key: &PoolKey, now: u64, refusal: Refusal) -> Refusal {
        let disabled = matches!(refusal, Refusal::Disabled(_));
        if disabled != self.seen_disabled[index].load(Relaxed) {
            self.seen_disabled[index].store(disabled, Relaxed);
        }
        let hint = match refusal {
            Refusal::Store(_) => return refusal,
            Refusal::Until(ready) => ready,
            Refusal::Disabled(_) => now.saturating_add(DISABLED_RECHECK_MS),
        };
        if let Err(e) = key.record.count(KeyCounter::Refused) {
            return Refusal::Store(e);
        }
        self.hints[index].store(hint, Relaxed);
        refusal
    }

    /// Admits one request at `now_ms` (a [`Pool::now`] time) on the key the pool chooses, or
    /// says why no key would. No HTTP, no waiting, no counters but the keys' own: the selection
    /// and admission alone.
    pub fn try_lease(&self, now_ms: u64) -> Result<Lease<'_>, NoKey> {
        self.acquire(now_ms)
    }

    /// Why no key can serve, when none will ever again (all disabled).
    pub(super) fn no_usable_keys(&self, last_failure: Option<&Error>) -> Error {
        let mut list = Vec::new();
        for k in self.keys() {
            let reason = match k.disabled() {
                Ok(reason) => reason.map_or("usable", DisabledReason::as_str),
                Err(e) => return e,
            };
            list.push(format!("{} {}", k.key.fingerprint(), reason));
        }
        Error::NoUsableKeys {
            detail: list.join(", "),
            last_answer: last_failure.map(Error::to_string),
        }
    }

    /// Waits (up to `wait_until`, a store time) for a key to admit the request, sleeping on the
    /// pool's clock. `last_failure` is what the service last answered in this call, for the
    /// error.
    pub(super) fn acquire_waiting(
        &self,
        wait_until: u64,
        last_failure: Option<&Error>,
    ) -> Result<Lease<'_>, Error> {
        loop {
            let now = self.store.now();
            let ready = match self.acquire(now) {
                Ok(lease) => return Ok(lease),
                Err(NoKey::AllDisabled) => return Err(self.no_usable_keys(last_failure)),
                Err(NoKey::Store(e)) => return Err(e),
                Err(NoKey::Until(ready)) => ready,
            };
            if ready > wait_until {
                let retry_after_ms = ready.saturating_sub(now).max(1);
                log::event(
                    Level::Warn,
                    "exhausted",
                    &[("retry_after_ms", Num(retry_after_ms))],
                );
                return Err(Error::AllKeysRateLimited {
                    retry_after_ms,
                    last_answer: last_failure.map(Error::to_string),
                });
            }
            self.clock
                .sleep(Duration::from_millis(ready.saturating_sub(now).max(1)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hints(values: &[u64]) -> Vec<AtomicU64> {
        values.iter().map(|&v| AtomicU64::new(v)).collect()
    }

    #[test]
    fn the_scan_stops_at_the_first_due_key_and_keeps_the_earliest_hint_passed() {
        let mut earliest = u64::MAX;
        assert_eq!(
            first_due(&hints(&[9, 7, 4, 0, 8]), 4, &mut earliest),
            Some(2)
        );
        assert_eq!(earliest, 7);
        let mut earliest = u64::MAX;
        assert_eq!(first_due(&hints(&[9, 7, 8]), 4, &mut earliest), None);
        assert_eq!(earliest, 7);
        assert_eq!(first_due(&hints(&[]), 4, &mut earliest), None);
    }
}
