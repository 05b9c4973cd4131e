//! Choosing a key for a model: free keys in round-robin from the shared cursor, the paid key
//! only when no free key can serve that model, then the model's fallbacks, and a wait (bounded
//! by the call) when none can.

use super::models::{ModelRef, ModelState};
use super::{Lease, Pool, PoolKey};
use crate::error::Error;
use crate::health::DisabledReason;
use crate::log::{self, Level, Value::Num, Value::Str};
use crate::metrics::counters::{KeyCounter, PoolCounter};
use crate::store::{Moment, QuotaTicket, Refusal};
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
    /// No key that is in service has the model (its group's tier lacks it): look again from
    /// this time.
    Unavailable(u64),
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
    /// Chooses a key and admits a request of `model` estimated at `tokens` input tokens on it
    /// at `now`, or says why none would.
    fn acquire<'p>(
        &'p self,
        now: u64,
        model: &ModelRef<'p>,
        tokens: u64,
    ) -> Result<Lease<'p>, NoKey> {
        let at = self.moment(now);
        let tokens = if model.counts_tokens { tokens } else { 0 };
        let mut earliest = u64::MAX;
        let k = self.free.len();
        if k > 0 {
            // With one free key there is nothing to rotate: the shared cursor is left alone.
            let start = if k == 1 {
                0
            } else {
                let cursor = self.record.next_cursor().map_err(NoKey::Store)?;
                (cursor % k as u64) as usize
            };
            // From the cursor to the end, then from the start: no division per key.
            for (from, to) in [(start, k), (0, start)] {
                let mut index = from;
                while let Some(found) = first_due(&model.hints[index..to], now, &mut earliest) {
                    index += found;
                    let key = &self.free[index];
                    match self.try_key(index, key, model, &at, tokens) {
                        Ok(ticket) => return Ok(self.lease(key, index, model, ticket)),
                        Err(Refusal::Until(ready)) | Err(Refusal::Unavailable(ready)) => {
                            earliest = earliest.min(ready)
                        }
                        Err(Refusal::Disabled(_)) => {}
                        Err(Refusal::Store(e)) => return Err(NoKey::Store(e)),
                    }
                    index += 1;
                }
            }
        }
        if let Some(paid) = &self.paid {
            let tried = match self.held_back(model, k, now) {
                Some(ready) => Err(Refusal::Until(ready)),
                None => self.try_key(k, paid, model, &at, tokens),
            };
            match tried {
                Ok(ticket) => {
                    let lease = self.lease(paid, k, model, ticket);
                    if k > 0 {
                        self.record
                            .add(PoolCounter::PaidFallbacks, 1)
                            .map_err(NoKey::Store)?;
                        log::event(
                            Level::Info,
                            "paid_fallback",
                            &[
                                ("key", Str(paid.key.fingerprint())),
                                ("model", Str(&model.model)),
                            ],
                        );
                    }
                    return Ok(lease);
                }
                Err(Refusal::Until(ready)) | Err(Refusal::Unavailable(ready)) => {
                    earliest = earliest.min(ready)
                }
                Err(Refusal::Disabled(_)) => {}
                Err(Refusal::Store(e)) => return Err(NoKey::Store(e)),
            }
        }
        // Every key disabled: nothing will ever admit (until an operator enables one).
        let disabled = |i: usize| self.seen_disabled[i].load(Relaxed);
        if (0..self.seen_disabled.len()).all(disabled) {
            return Err(NoKey::AllDisabled);
        }
        // Every key in service lacks the model.
        if (0..self.seen_disabled.len())
            .all(|i| disabled(i) || model.seen_unavailable[i].load(Relaxed))
        {
            return Err(NoKey::Unavailable(earliest));
        }
        Err(NoKey::Until(earliest))
    }

    pub(super) fn lease<'p>(
        &'p self,
        key: &'p PoolKey,
        index: usize,
        model: &ModelRef<'p>,
        ticket: QuotaTicket,
    ) -> Lease<'p> {
        let model = match model {
            ModelRef::Default(m) => ModelRef::Default(m),
            ModelRef::Other(m) => ModelRef::Other(m.clone()),
        };
        Lease {
            pool: self,
            key,
            index,
            model,
            ticket: Some(ticket),
            prompt_tokens: None,
        }
    }

    /// The hint of key `index` (free keys, then the paid key) for `model` if it is still ahead
    /// of `now` (see [`first_due`]).
    #[inline]
    fn held_back(&self, model: &ModelState, index: usize, now: u64) -> Option<u64> {
        let hint = model.hints[index].load(Relaxed);
        (now < hint).then_some(hint)
    }

    /// Asks key `index` to admit a request of `model`: the key must be in service, and its
    /// group's record of the model must admit. A refusal is counted and becomes the key's hint
    /// for the model.
    #[inline(always)]
    pub(super) fn try_key(
        &self,
        index: usize,
        key: &PoolKey,
        model: &ModelState,
        at: &Moment,
        tokens: u64,
    ) -> Result<QuotaTicket, Refusal> {
        let admitted = match key.record.disabled() {
            Ok(Some(reason)) => Err(Refusal::Disabled(reason)),
            Ok(None) => match &model.cells[index] {
                Some(cell) => cell.try_admit(at, tokens),
                None => model.quotas[index].try_admit(at, tokens),
            },
            Err(e) => Err(Refusal::Store(e)),
        };
        match admitted {
            Ok(ticket) => {
                if self.seen_disabled[index].load(Relaxed) {
                    self.seen_disabled[index].store(false, Relaxed);
                }
                if model.seen_unavailable[index].load(Relaxed) {
                    model.seen_unavailable[index].store(false, Relaxed);
                }
                Ok(ticket)
            }
            Err(refusal) => Err(self.refused(index, key, model, at.now, refusal)),
        }
    }

    /// A refusal of key `index`: counted, and made its hint (off the admitting path).
    #[cold]
    #[inline(never)]
    fn refused(
        &self,
        index: usize,
        key: &PoolKey,
        model: &ModelState,
        now: u64,
        refusal: Refusal,
    ) -> Refusal {
        let disabled = matches!(refusal, Refusal::Disabled(_));
        if disabled != self.seen_disabled[index].load(Relaxed) {
            self.seen_disabled[index].store(disabled, Relaxed);
        }
        if !disabled {
            let unavailable = matches!(refusal, Refusal::Unavailable(_));
            model.seen_unavailable[index].store(unavailable, Relaxed);
        }
        let hint = match refusal {
            Refusal::Store(_) => return refusal,
            Refusal::Until(ready) | Refusal::Unavailable(ready) => ready,
            Refusal::Disabled(_) => now.saturating_add(DISABLED_RECHECK_MS),
        };
        if let Err(e) = key.record.count(KeyCounter::Refused) {
            return Refusal::Store(e);
        }
        model.hints[index].store(hint, Relaxed);
        refusal
    }

    /// Admits one request of the pool's default model at `now_ms` (a [`Pool::now`] time) on
    /// the key the pool chooses, or says why no key would. No HTTP, no waiting, no counters
    /// but the keys' own: the selection and admission alone.
    #[inline]
    pub fn try_lease(&self, now_ms: u64) -> Result<Lease<'_>, NoKey> {
        self.acquire(now_ms, &ModelRef::Default(&self.models.default), 1)
    }

    /// As [`Pool::try_lease`], for `model` and a request estimated at `tokens` input tokens.
    pub fn try_lease_model(
        &self,
        now_ms: u64,
        model: &str,
        tokens: u64,
    ) -> Result<Lease<'_>, NoKey> {
        let state = self.model_state(model).map_err(NoKey::Store)?;
        self.acquire(now_ms, &state, tokens)
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

    /// Waits (up to `wait_until`, a store time) for a key to admit the request on the first
    /// model of `chain` that can serve it (the call's model, then its fallbacks), sleeping on
    /// the pool's clock; only on the keys `only` allows, when given (see `resource`).
    /// `last_failure` is what the service last answered in this call, for the error.
    pub(super) fn acquire_waiting<'p>(
        &'p self,
        chain: &[ModelRef<'p>],
        tokens: u64,
        only: Option<&[bool]>,
        wait_until: u64,
        last_failure: Option<&Error>,
    ) -> Result<Lease<'p>, Error> {
        loop {
            let now = self.store.now();
            let mut ready = u64::MAX;
            let mut unavailable = 0;
            for model in chain {
                let acquired = match only {
                    None => self.acquire(now, model, tokens),
                    Some(only) => self.acquire_only(now, model, tokens, only),
                };
                match acquired {
                    Ok(lease) => return Ok(lease),
                    Err(NoKey::AllDisabled) => return Err(self.no_usable_keys(last_failure)),
                    Err(NoKey::Store(e)) => return Err(e),
                    Err(NoKey::Until(r)) => ready = ready.min(r),
                    Err(NoKey::Unavailable(r)) => {
                        unavailable += 1;
                        ready = ready.min(r);
                    }
                }
            }
            if unavailable == chain.len() {
                return Err(Error::ModelUnavailable {
                    model: chain[0].model.clone(),
                    fallbacks: chain[1..].iter().map(|m| m.model.clone()).collect(),
                    last_answer: last_failure.map(Error::to_string),
                });
            }
            if ready > wait_until {
                let retry_after_ms = ready.saturating_sub(now).max(1);
                log::event(
                    Level::Warn,
                    "exhausted",
                    &[
                        ("model", Str(&chain[0].model)),
                        ("retry_after_ms", Num(retry_after_ms)),
                    ],
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
