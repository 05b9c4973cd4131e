//! The emulator's shared state, and the decision made for each request the moment it arrives.
//!
//! One mutex guards keys, quotas, faults and the recorder: a request's verdict must see one
//! consistent view of all of them, and taking the arrival time under the same lock keeps the
//! arrival order, the rate log and the request log in agreement. Critical sections are short
//! and never span an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::config::{EmulatorConfig, KeySpec};
use crate::errors::{duration_string, ApiError, QuotaPeriod};
use crate::faults::{AppliedFault, Fault, FaultKind, FaultTable};
use crate::limiter::{Exceeded, KeyQuota};
use crate::stats::{Caller, LogEntry, Outcome, Recorder, Stats};

/// What the emulator knows when a `generateContent` request's head has been read.
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    /// The key, from `x-goog-api-key` or else the `key` query parameter.
    pub key: Option<&'a str>,
    /// A `key` query parameter was present.
    pub key_in_url: bool,
    /// "v1beta" or "v1".
    pub version: &'a str,
    pub model: &'a str,
}

/// How a request will be answered, decided on arrival.
#[derive(Debug)]
pub enum Verdict {
    /// Answer with this error; the body does not matter.
    Reject(ApiError),
    /// A fault applies (other than `delay`); the request holds no quota slot.
    Inject {
        fault: AppliedFault,
        /// The key's limits, quoted by the quota kinds.
        limit: Option<u32>,
        daily_limit: Option<u32>,
    },
    /// Admitted by the limiter: validate the body and answer it.
    Serve,
}

/// The state shared by the server tasks and the [`crate::Emulator`] handle.
#[derive(Debug)]
pub struct Shared {
    started: Instant,
    record_bodies: bool,
    next_response_id: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every reset, so requests in flight across a reset are not recorded.
    generation: u64,
    next_seq: u64,
    label_of_key: HashMap<String, Arc<str>>,
    keys: HashMap<Arc<str>, KeyEntry>,
    faults: FaultTable,
    recorder: Recorder,
    bodies: HashMap<Arc<str>, String>,
}

#[derive(Debug)]
struct KeyEntry {
    spec: KeySpec,
    quota: KeyQuota,
}

impl Shared {
    /// State for a validated configuration.
    pub fn new(config: &EmulatorConfig) -> Arc<Self> {
        let shared = Shared {
            started: Instant::now(),
            record_bodies: config.record_bodies,
            next_response_id: AtomicU64::new(1),
            inner: Mutex::new(Inner::default()),
        };
        for spec in &config.keys {
            shared.set_key(spec.clone());
        }
        for fault in &config.faults {
            shared.add_fault(fault.clone());
        }
        Arc::new(shared)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while the lock was held has already been reported by that panic; keep
        // serving rather than failing every later request too.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    /// Takes the arrival time and decides how the request will be answered.
    pub fn admit(self: &Arc<Self>, arrival: Arrival<'_>) -> (Pending, Verdict) {
        let mut inner = self.lock();
        let t_ns = self.now_ns();
        let seq = inner.next_seq;
        inner.next_seq += 1;

        let label = arrival
            .key
            .and_then(|key| inner.label_of_key.get(key).cloned());
        let caller = match (arrival.key, label) {
            (None, _) => Caller::Missing,
            (Some(_), None) => Caller::Unknown,
            (Some(_), Some(label)) => Caller::Known(label),
        };
        let mut pending = Pending {
            shared: Arc::clone(self),
            generation: inner.generation,
            seq,
            t_ns,
            caller: caller.clone(),
            key_in_url: arrival.key_in_url,
            model: arrival.model.to_string(),
            fault: None,
            latency_ms: None,
            rate_limited: false,
            holds_slot: false,
            finished: false,
        };

        let label = match caller {
            Caller::Missing => return (pending, Verdict::Reject(ApiError::missing_key())),
            Caller::Unknown => return (pending, Verdict::Reject(ApiError::invalid_key())),
            Caller::Known(label) => label,
        };
        if is_retired(arrival.model) {
            let error = ApiError::model_not_found(arrival.version, arrival.model);
            return (pending, Verdict::Reject(error));
        }

        let inner = &mut *inner;
        let fault = inner.faults.pick(&label);
        pending.fault = fault.as_ref().map(|f| f.kind);
        pending.latency_ms = fault.as_ref().and_then(|f| f.latency_ms);
        let entry = inner
            .keys
            .get_mut(&label)
            .expect("every mapped key has an entry");
        let spec = &entry.spec;
        match fault {
            Some(fault) if fault.kind != FaultKind::Delay => {
                let verdict = Verdict::Inject {
                    fault,
                    limit: spec.limit,
                    daily_limit: spec.daily_limit,
                };
                (pending, verdict)
            }
            // No fault, or a `delay` fault: normal handling.
            _ => {
                let window_ns = spec.window_ms.saturating_mul(1_000_000);
                let admitted =
                    entry
                        .quota
                        .try_admit(t_ns, seq, spec.limit, window_ns, spec.daily_limit);
                let verdict = match admitted {
                    Ok(()) => {
                        pending.holds_slot = true;
                        Verdict::Serve
                    }
                    Err(exceeded) => {
                        pending.rate_limited = true;
                        Verdict::Reject(quota_error(exceeded, arrival.model))
                    }
                };
                (pending, verdict)
            }
        }
    }

    /// A fresh `responseId` number.
    pub fn next_response_id(&self) -> u64 {
        self.next_response_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether request bodies are kept.
    pub fn records_bodies(&self) -> bool {
        self.record_bodies
    }

    /// Keeps the body of the latest request made with the key of `label`.
    pub fn store_body(&self, label: &Arc<str>, body: &[u8]) {
        if self.record_bodies {
            let text = String::from_utf8_lossy(body).into_owned();
            self.lock().bodies.insert(Arc::clone(label), text);
        }
    }

    /// The body of the latest request made with the key of `label`.
    pub fn last_body(&self, label: &str) -> Option<String> {
        self.lock().bodies.get(label).cloned()
    }

    pub fn stats(&self) -> Stats {
        self.lock().recorder.stats()
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.lock().recorder.log()
    }

    pub fn add_fault(&self, fault: Fault) {
        self.lock().faults.add(fault);
    }

    /// Adds a key, or replaces the one with the same label (keeping its rate history).
    /// A secret already used by another label now belongs to this one.
    pub fn set_key(&self, spec: KeySpec) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let label: Arc<str> = match inner.keys.get_key_value(spec.label.as_str()) {
            Some((label, _)) => Arc::clone(label),
            None => Arc::from(spec.label.as_str()),
        };
        if let Some(old) = inner.keys.get(&label) {
            if inner.label_of_key.get(&old.spec.key) == Some(&label) {
                inner.label_of_key.remove(&old.spec.key);
            }
        }
        inner
            .label_of_key
            .insert(spec.key.clone(), Arc::clone(&label));
        inner.recorder.add_label(Arc::clone(&label));
        match inner.keys.get_mut(&label) {
            Some(entry) => entry.spec = spec,
            None => {
                let entry = KeyEntry {
                    spec,
                    quota: KeyQuota::default(),
                };
                inner.keys.insert(label, entry);
            }
        }
    }

    /// Clears counters, the log, faults, recorded bodies and every rate window; keys stay.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.faults.clear();
        inner.recorder.clear();
        inner.bodies.clear();
        for entry in inner.keys.values_mut() {
            entry.quota.clear();
        }
    }
}

/// Models the real service no longer serves: `gemini-pro` and every 1.x model.
fn is_retired(model: &str) -> bool {
    model.starts_with("gemini-pro") || model.starts_with("gemini-1.")
}

/// The 429 the emulator's own limiter answers.
fn quota_error(exceeded: Exceeded, model: &str) -> ApiError {
    match exceeded {
        Exceeded::Window {
            limit,
            retry_after_ns,
        } => ApiError::quota(
            QuotaPeriod::Minute,
            model,
            limit,
            &duration_string(retry_after_ns),
        ),
        // A spent daily quota does not come back while the emulator runs.
        Exceeded::Daily { limit } => ApiError::quota(QuotaPeriod::Day, model, limit, "86400s"),
    }
}

/// A request that has arrived and not yet been recorded.
///
/// Dropping it without [`Pending::finish`] (the client went away, or the connection was
/// closed on purpose) records it with status 0.
#[derive(Debug)]
pub struct Pending {
    shared: Arc<Shared>,
    generation: u64,
    seq: u64,
    t_ns: u64,
    caller: Caller,
    key_in_url: bool,
    model: String,
    fault: Option<FaultKind>,
    latency_ms: Option<u64>,
    rate_limited: bool,
    holds_slot: bool,
    finished: bool,
}

impl Pending {
    /// The label of the key used, if it is a known key.
    pub fn label(&self) -> Option<&Arc<str>> {
        match &self.caller {
            Caller::Known(label) => Some(label),
            _ => None,
        }
    }

    /// The model named in the path.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// How long the applied fault (of any kind) delays the answer.
    pub fn latency_ms(&self) -> Option<u64> {
        self.latency_ms
    }

    /// Gives the quota slot back: the request turned out invalid and is not counted.
    pub fn release_slot(&mut self) {
        if !std::mem::take(&mut self.holds_slot) {
            return;
        }
        let mut inner = self.shared.lock();
        if inner.generation != self.generation {
            return; // A reset already cleared the window.
        }
        if let Some(label) = self.label() {
            if let Some(entry) = inner.keys.get_mut(label) {
                entry.quota.release(self.seq);
            }
        }
    }

    /// Records the answer's status.
    pub fn finish(mut self, status: u16) {
        self.record(status);
    }

    fn record(&mut self, status: u16) {
        self.finished = true;
        let mut inner = self.shared.lock();
        if inner.generation != self.generation {
            return; // Arrived before a reset: not part of what the caller now observes.
        }
        inner.recorder.record(Outcome {
            seq: self.seq,
            t_ns: self.t_ns,
            caller: self.caller.clone(),
            key_in_url: self.key_in_url,
            status,
            model: std::mem::take(&mut self.model),
            fault: self.fault,
            rate_limited: self.rate_limited,
        });
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            self.record(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrival<'a>(key: Option<&'a str>, model: &'a str) -> Arrival<'a> {
        Arrival {
            key,
            key_in_url: false,
            version: "v1beta",
            model,
        }
    }

    fn shared() -> Arc<Shared> {
        Shared::new(&EmulatorConfig::with_keys(vec![KeySpec::new(
            "secret", "a",
        )
        .with_limit(1, 60_000)]))
    }

    #[test]
    fn verdicts_in_order_of_precedence() {
        let shared = shared();
        let (p, v) = shared.admit(arrival(None, "gemini-3"));
        assert!(matches!(v, Verdict::Reject(e) if e.code == 403));
        p.finish(403);
        let (p, v) = shared.admit(arrival(Some("other"), "gemini-3"));
        assert!(matches!(v, Verdict::Reject(e) if e.code == 400));
        p.finish(400);
        let (p, v) = shared.admit(arrival(Some("secret"), "gemini-1.5-flash"));
        assert!(matches!(v, Verdict::Reject(e) if e.code == 404));
        p.finish(404);
        let (p, v) = shared.admit(arrival(Some("secret"), "gemini-3"));
        assert!(matches!(v, Verdict::Serve));
        p.finish(200);
        let (p, v) = shared.admit(arrival(Some("secret"), "gemini-3"));
        assert!(matches!(v, Verdict::Reject(e) if e.code == 429));
        p.finish(429);
        shared.add_fault(Fault::new(FaultKind::Http503).times(1));
        let (p, v) = shared.admit(arrival(Some("secret"), "gemini-3"));
        assert!(matches!(v, Verdict::Inject { .. }));
        drop(p);

        let stats = shared.stats();
        assert_eq!(stats.total, 6);
        let a = &stats.keys["a"];
        assert_eq!((a.requests, a.ok, a.rate_limited, a.injected), (4, 1, 1, 1));
        assert_eq!(a.by_status["0"], 1);
        let log = shared.log();
        assert_eq!(log[5].fault.as_deref(), Some("http503"));
        assert!(log.windows(2).all(|w| w[0].t_ms <= w[1].t_ms));
    }

    #[test]
    fn released_slot_and_reset() {
        let shared = shared();
        let (mut p, _) = shared.admit(arrival(Some("secret"), "m"));
        p.release_slot();
        p.finish(400);
        let (p, v) = shared.admit(arrival(Some("secret"), "m"));
        assert!(matches!(v, Verdict::Serve));
        shared.reset();
        p.finish(200); // From before the reset: not recorded.
        assert_eq!(shared.stats().total, 0);
        let (_, v) = shared.admit(arrival(Some("secret"), "m"));
        assert!(matches!(v, Verdict::Serve));
    }

    #[test]
    fn set_key_replaces_by_label() {
        let shared = shared();
        shared.set_key(KeySpec::new("new-secret", "a"));
        let (_, v) = shared.admit(arrival(Some("secret"), "m"));
        assert!(matches!(v, Verdict::Reject(e) if e.code == 400));
        let (_, v) = shared.admit(arrival(Some("new-secret"), "m"));
        assert!(matches!(v, Verdict::Serve));
        assert_eq!(shared.stats().keys.len(), 1);
    }
}
