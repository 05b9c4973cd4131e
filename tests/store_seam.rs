//! The store seam from outside the crate: a store written here (as a Redis store would be)
//! makes its own tickets, counts on its own time, and when it fails the caller gets the
//! store's error, not a panic, and nothing is sent.

mod common;

use common::*;
use gemini_rotator::clock::SystemClock;
use gemini_rotator::health::{CooldownCause, DisabledReason};
use gemini_rotator::key::fingerprint_of_id;
use gemini_rotator::limiter::{Ticket, Usage};
use gemini_rotator::metrics::counters::{KeyCounter, PoolCounter};
use gemini_rotator::store::{
    Enabled, InUse, KeyHandle, KeyRecord, KeySnapshot, KeySpec, LimitKind, Moment, PoolRecord,
    PoolSnapshot, QuotaHandle, QuotaRecord, QuotaSnapshot, QuotaSpec, QuotaTicket, Refusal, Store,
    StoredKey, TokenTickets,
};
use gemini_rotator::{Config, Error, Pool};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex};

/// The store's clock: a fixed time, unlike any on this host.
const STORE_NOW: u64 = 42_000;

/// A store with no limit of its own that remembers what it was asked, and can be made to fail.
#[derive(Default)]
struct Recording {
    down: AtomicBool,
    admitted: AtomicU64,
    completed: Mutex<Vec<(Ticket, u64)>>,
    spec: Mutex<Option<KeySpec>>,
    quota: Mutex<Option<QuotaSpec>>,
}

fn down() -> Error {
    Error::State {
        message: "test store: the server is unreachable".into(),
    }
}

impl Recording {
    fn check(&self) -> Result<(), Error> {
        if self.down.load(SeqCst) {
            Err(down())
        } else {
            Ok(())
        }
    }
}

struct Record(Arc<Recording>);

impl KeyRecord for Record {
    fn disable(&self, _reason: DisabledReason) -> Result<(), Error> {
        self.0.check()
    }
    fn enable(&self) -> Result<Option<DisabledReason>, Error> {
        self.0.check().map(|()| None)
    }
    fn disabled(&self) -> Result<Option<DisabledReason>, Error> {
        self.0.check().map(|()| None)
    }
    fn count(&self, _counter: KeyCounter) -> Result<(), Error> {
        self.0.check()
    }
    fn snapshot(&self) -> Result<KeySnapshot, Error> {
        self.0.check()?;
        let spec = self.0.spec.lock().unwrap().clone().expect("registered");
        Ok(KeySnapshot {
            tier: spec.tier,
            group: spec.group,
            disabled: None,
            counters: Default::default(),
        })
    }
}

impl QuotaRecord for Record {
    fn try_admit(&self, _at: &Moment, _tokens: u64) -> Result<QuotaTicket, Refusal> {
        self.0.check().map_err(Refusal::Store)?;
        Ok(QuotaTicket {
            rate: Ticket::new(self.0.admitted.fetch_add(1, SeqCst), 0xfeed),
            tokens: TokenTickets::None,
        })
    }
    fn complete(&self, ticket: QuotaTicket, now: u64, _tokens: Option<u64>) -> Result<(), Error> {
        self.0.check()?;
        self.0.completed.lock().unwrap().push((ticket.rate, now));
        Ok(())
    }
    fn cool_down(&self, _until: u64, _cause: CooldownCause) -> Result<(), Error> {
        self.0.check()
    }
    fn mark_unavailable(&self, _until: u64) -> Result<(), Error> {
        self.0.check()
    }
    fn lower_limit(&self, _kind: LimitKind, _value: u64) -> Result<bool, Error> {
        self.0.check().map(|()| false)
    }
    fn capacity_streak(&self, _bump: bool) -> Result<u32, Error> {
        self.0.check().map(|()| 0)
    }
    fn reset_capacity(&self) -> Result<(), Error> {
        self.0.check()
    }
    fn count_fallback(&self) -> Result<(), Error> {
        self.0.check()
    }
    fn snapshot(&self, at: &Moment) -> Result<QuotaSnapshot, Error> {
        self.0.check()?;
        let spec = self.0.quota.lock().unwrap().clone().expect("registered");
        let _ = at;
        Ok(QuotaSnapshot {
            group: spec.group,
            model: spec.model,
            tier: spec.tier,
            limits: spec.limits,
            usage: Usage::default(),
            today: 0,
            tokens_in_window: 0,
            cooldown_until: 0,
            cooldown_cause: CooldownCause::None,
            unavailable_until: 0,
            fallbacks: 0,
        })
    }
}

impl PoolRecord for Record {
    fn next_cursor(&self) -> Result<u64, Error> {
        self.0.check().map(|()| 0)
    }
    fn add(&self, _counter: PoolCounter, _n: u64) -> Result<(), Error> {
        self.0.check()
    }
    fn observe_latency(&self, _micros: u64) -> Result<(), Error> {
        self.0.check()
    }
    fn snapshot(&self) -> Result<PoolSnapshot, Error> {
        self.0.check()?;
        Ok(PoolSnapshot {
            counters: Default::default(),
            latency_buckets: vec![0; 13],
        })
    }
}

struct RecordingStore(Arc<Recording>);

impl Store for RecordingStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error> {
        *self.0.spec.lock().unwrap() = Some(spec.clone());
        Ok(KeyHandle {
            record: Arc::new(Record(self.0.clone())),
            in_use: Arc::new(InUse),
        })
    }
    fn quota(&self, spec: &QuotaSpec) -> Result<QuotaHandle, Error> {
        *self.0.quota.lock().unwrap() = Some(spec.clone());
        Ok(QuotaHandle {
            record: Arc::new(Record(self.0.clone())),
            in_use: Arc::new(InUse),
        })
    }
    fn pool(&self, _id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error> {
        Ok(Arc::new(Record(self.0.clone())))
    }
    fn now(&self) -> u64 {
        STORE_NOW
    }
    fn all_keys(&self) -> Result<Vec<StoredKey>, Error> {
        let spec = self.0.spec.lock().unwrap().clone().expect("registered");
        Ok(vec![StoredKey {
            id: spec.id,
            fingerprint: fingerprint_of_id(&spec.id),
            snapshot: KeyRecord::snapshot(&Record(self.0.clone()))?,
        }])
    }
    fn all_quotas(&self, at: &Moment) -> Result<Vec<QuotaSnapshot>, Error> {
        Ok(vec![QuotaRecord::snapshot(&Record(self.0.clone()), at)?])
    }
    fn enable(&self, _fingerprint: &str) -> Result<Enabled, Error> {
        Ok(Enabled::NoSuchKey)
    }
    fn used_bytes(&self) -> Option<u64> {
        None
    }
    fn describe(&self) -> String {
        "recording".into()
    }
}

fn pool(w: &World, recording: &Arc<Recording>) -> Pool {
    let config = Config::from_json(&w.config_json(json!({"free_rate_limit": 10}))).unwrap();
    Pool::with_store(
        config,
        Arc::new(RecordingStore(recording.clone())),
        Arc::new(SystemClock),
    )
    .unwrap()
}

#[test]
fn a_store_outside_the_crate_makes_the_tickets_and_the_time() {
    let w = World::new("seam", 1, false, None, 60_000);
    let recording = Arc::new(Recording::default());
    let pool = pool(&w, &recording);
    assert_eq!(pool.store(), "recording");
    for _ in 0..2 {
        ask(&pool).unwrap();
    }
    // Each attempt's lease handed the store's own ticket back, stamped with the store's time.
    assert_eq!(
        *recording.completed.lock().unwrap(),
        [
            (Ticket::new(0, 0xfeed), STORE_NOW),
            (Ticket::new(1, 0xfeed), STORE_NOW)
        ]
    );
    let spec = recording.quota.lock().unwrap().clone().unwrap();
    assert_eq!(
        (spec.limits.rate.limit, spec.limits.rate.window_ms()),
        (10, 60_000)
    );
    assert_eq!((spec.limits.daily, spec.limits.tokens), (None, None));
    let stats = key_stats(&pool, &w.free[0]);
    assert_eq!(stats["limit"], 10, "{stats}");
}

#[test]
fn a_failing_store_is_an_error_for_the_caller_and_nothing_is_sent() {
    let w = World::new("seam-down", 1, false, None, 60_000);
    let recording = Arc::new(Recording::default());
    let pool = pool(&w, &recording);
    ask(&pool).unwrap();
    recording.down.store(true, SeqCst);
    assert_eq!(ask(&pool).unwrap_err(), down());
    assert_eq!(
        gemini_rotator::metrics::snapshot_json(&pool).unwrap_err(),
        down()
    );
    assert_eq!(
        w.stats()["total"],
        1,
        "nothing was sent while the store was down"
    );
    recording.down.store(false, SeqCst);
    ask(&pool).unwrap();
    assert_eq!(w.stats()["total"], 2);
}
