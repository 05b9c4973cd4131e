//! The emulator's shared state, and the decision made for each request the moment it arrives.
//!
//! One mutex guards keys, quotas, faults, the clock and the recorder: a request's verdict must
//! see one consistent view of all of them, and taking the arrival time under the same lock
//! keeps the arrival order, the quota logs and the request log in agreement. Critical sections
//! are short and never span an `.await`.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::{EmulatorConfig, KeySpec, ModelLimits, StreamConfig};
use crate::errors::{duration_string, ApiError, QuotaId};
use crate::faults::{AppliedFault, Fault, FaultTable};
use crate::fingerprint::fingerprint;
use crate::limiter::{Dimension, Limits, Quota, Usage, Violation};
use crate::method::{is_retired, Method};
use crate::pacific;
use crate::resources::{Owner, ResourceRef, ResourceView, Resources};
use crate::stats::{Caller, LogEntry, Outcome, Recorder, Stats};

/// The `retryDelay` of a spent daily quota. The real service sends a short one ("0s", "22s",
/// "36s") although the quota comes back only at Pacific midnight: clients must trust the
/// quota id, not the delay.
const DAILY_RETRY_DELAY_NS: u64 = 22_000_000_000;
/// The `retryDelay` of a `limit: 0` answer: the trap that invites endless retries.
pub const LIMIT_ZERO_RETRY_DELAY: &str = "1.1s";

/// What the request's body turned out to be.
#[derive(Debug)]
pub enum Input {
    /// Valid, with this many input tokens (0 for methods without a body).
    Tokens(u64),
    /// Invalid: answered with this error unless something earlier answers first.
    Invalid(ApiError),
    /// The client went away while sending it.
    Abandoned,
}

/// What the emulator knows once a request's head and body have been read.
#[derive(Debug)]
pub struct Arrival<'a> {
    /// The key, from `x-goog-api-key` or else the `key` query parameter.
    pub key: Option<&'a str>,
    /// A `key` query parameter was present.
    pub key_in_url: bool,
    /// "v1beta" or "v1".
    pub version: &'static str,
    /// The path and query (without any `key` parameter), as the log shows it.
    pub path: &'a str,
    /// The files and cached contents a model call's body names, checked against the
    /// key's project before the quota is.
    pub refs: &'a [ResourceRef],
    /// For a request on an upload URL that carries no key: the upload session's owner. As in
    /// the service, the `upload_id` is then the credential (google-genai sends no key there).
    pub session_owner: Option<Owner>,
    /// The model in the path ("" for models.list).
    pub model: &'a str,
    pub method: Method,
    pub input: Input,
}

/// How a request will be answered, decided on arrival.
#[derive(Debug)]
pub enum Verdict {
    /// Answer with this error.
    Reject(ApiError),
    /// A fault applies that replaces the answer; the request holds no quota.
    Inject {
        fault: AppliedFault,
        /// The request's (project, model) quotas, quoted by the quota kinds.
        limits: ModelLimits,
    },
    /// Admitted: answer it, shaped by a `delay` or stream fault if one applies.
    Serve { modifier: Option<AppliedFault> },
    /// The client is gone: close the connection.
    Abandon,
}

/// The state shared by the server tasks and the [`crate::Emulator`] handle.
#[derive(Debug)]
pub struct Shared {
    started: Instant,
    record_bodies: bool,
    next_response_id: AtomicU64,
    global_models: BTreeMap<String, ModelLimits>,
    stream: StreamConfig,
    /// `http://127.0.0.1:PORT`, set once the socket is bound: upload URLs and file URIs.
    base_url: OnceLock<String>,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Bumped by every reset, so requests in flight across a reset are not recorded.
    generation: u64,
    next_seq: u64,
    /// The wall-clock time (ms since the Unix epoch) at `started`; the clock runs from it.
    wall_at_start_ms: i64,
    label_of_key: HashMap<String, Arc<str>>,
    keys: HashMap<Arc<str>, KeyEntry>,
    quotas: HashMap<(Arc<str>, String), Quota>,
    faults: FaultTable,
    recorder: Recorder,
    bodies: HashMap<Arc<str>, String>,
    resources: Resources,
}

#[derive(Debug)]
struct KeyEntry {
    spec: KeySpec,
    project: Arc<str>,
}

/// The emulator's wall clock, as `GET /_emulator/clock` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockView {
    /// RFC 3339, UTC.
    pub now: String,
    pub unix_ms: i64,
    /// The Pacific date (`YYYY-MM-DD`) whose requests the daily quotas count.
    pub pacific_date: String,
    /// America/Los_Angeles' current offset from UTC, in minutes (-420 or -480).
    pub utc_offset_minutes: i64,
    /// When the daily quotas next reset (RFC 3339, UTC), and in how many milliseconds.
    pub next_reset: String,
    pub ms_to_next_reset: i64,
}

impl Shared {
    /// State for a validated configuration.
    pub fn new(config: &EmulatorConfig) -> Arc<Self> {
        let started = Instant::now();
        let wall_at_start_ms = match &config.clock {
            Some(text) => pacific::parse_rfc3339(text).expect("validated with the config"),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
        };
        let shared = Shared {
            started,
            record_bodies: config.record_bodies,
            next_response_id: AtomicU64::new(1),
            global_models: config.models.clone(),
            stream: config.stream.clone(),
            base_url: OnceLock::new(),
            inner: Mutex::new(Inner {
                wall_at_start_ms,
                resources: Resources::with_seed(id_seed()),
                ..Inner::default()
            }),
        };
        for spec in &config.keys {
            shared
                .set_key(spec.clone())
                .expect("validated with the config");
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

    /// Records the emulator's base URL (once; later calls change nothing).
    pub fn set_base_url(&self, base_url: String) {
        let _ = self.base_url.set(base_url);
    }

    /// The emulator's base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base_url
            .get()
            .map_or("http://127.0.0.1", String::as_str)
    }

    /// Runs `f` on the files, uploads and cached contents, with the wall-clock time (ms
    /// since the Unix epoch) that decides their expiry.
    pub fn with_resources<R>(&self, f: impl FnOnce(&mut Resources, i64) -> R) -> R {
        let now_ns = self.now_ns();
        let mut inner = self.lock();
        let wall_ms = inner.wall_at_start_ms + (now_ns / 1_000_000) as i64;
        f(&mut inner.resources, wall_ms)
    }

    /// Every live resource (`GET /_emulator/resources`).
    pub fn resource_views(&self) -> Vec<ResourceView> {
        self.with_resources(|resources, now_ms| resources.views(now_ms))
    }

    /// Every model the catalog lists beyond the built-in ones.
    pub fn configured_models(&self) -> impl Iterator<Item = &String> {
        self.global_models.keys()
    }

    /// The default shape of streams.
    pub fn stream_config(&self) -> &StreamConfig {
        &self.stream
    }

    /// Takes the arrival time and decides how the request will be answered.
    pub fn admit(self: &Arc<Self>, arrival: Arrival<'_>) -> (Pending, Verdict) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        let t_ns = self.now_ns();
        let seq = inner.next_seq;
        inner.next_seq += 1;

        let label = match (arrival.key, &arrival.session_owner) {
            (Some(key), _) => inner.label_of_key.get(key).cloned(),
            (None, Some(owner)) => Some(Arc::clone(&owner.label)),
            (None, None) => None,
        };
        let caller = match (arrival.key, &label) {
            (None, Some(label)) => Caller::Known(Arc::clone(label)),
            (None, _) => Caller::Missing,
            (Some(_), None) => Caller::Unknown,
            (Some(_), Some(label)) => Caller::Known(Arc::clone(label)),
        };
        let entry = label.as_ref().and_then(|label| inner.keys.get(label));
        let mut pending = Pending {
            shared: Arc::clone(self),
            generation: inner.generation,
            seq,
            t_ns,
            caller,
            project: entry.map(|entry| Arc::clone(&entry.project)),
            key_fingerprint: arrival.key.map(fingerprint),
            key_in_url: arrival.key_in_url,
            version: arrival.version,
            path: arrival.path.to_string(),
            resources: arrival.refs.iter().map(ResourceRef::name).collect(),
            model: arrival.model.to_string(),
            method: arrival.method,
            tokens: None,
            fault: None,
            latency_ms: None,
            rate_limited: false,
            finished: false,
        };

        let input = match arrival.input {
            Input::Abandoned => return (pending, Verdict::Abandon),
            input => input,
        };
        let Some((label, entry)) = label.zip(entry) else {
            let error = match arrival.key {
                None => ApiError::missing_key(),
                Some(_) => ApiError::invalid_key(),
            };
            return (pending, Verdict::Reject(error));
        };
        let (model, method) = (arrival.model, arrival.method);
        if method != Method::ListModels && (is_retired(model) || !method.served_by(model)) {
            let error = ApiError::model_not_found(arrival.version, model, method.as_str());
            return (pending, Verdict::Reject(error));
        }

        let model_limits = entry.spec.limits_for(model, &self.global_models);
        let limits = Limits {
            requests: model_limits.limit,
            tokens: model_limits.token_limit,
            daily: model_limits.daily_limit,
            window_ns: entry.spec.window_ms.saturating_mul(1_000_000),
        };
        let project = Arc::clone(&entry.project);
        let fault = inner.faults.pick(&label, model, method);
        pending.fault = fault.as_ref().map(|f| f.kind);
        pending.latency_ms = fault.as_ref().and_then(|f| f.latency_ms);
        let modifier = match fault {
            Some(fault) if !fault.kind.is_modifier() => {
                let verdict = Verdict::Inject {
                    fault,
                    limits: model_limits,
                };
                return (pending, verdict);
            }
            modifier => modifier,
        };
        if !method.uses_quota() {
            return (pending, Verdict::Serve { modifier });
        }

        let wall_ms = inner.wall_at_start_ms + (t_ns / 1_000_000) as i64;
        // A model call may use only its own project's files and cached contents.
        let input = match input {
            Input::Tokens(tokens) if !arrival.refs.is_empty() => {
                match inner
                    .resources
                    .check_refs(arrival.refs, &project, model, wall_ms)
                {
                    Ok(()) => Input::Tokens(tokens),
                    Err(error) => Input::Invalid(error),
                }
            }
            input => input,
        };
        let day = pacific::pacific_day(wall_ms);
        let quota = inner
            .quotas
            .entry((project, model.to_string()))
            .or_default();
        let checked = match &input {
            // An invalid request does not use quota, but a full quota still answers first.
            Input::Invalid(_) => quota.check(t_ns, day, 0, &limits),
            _ => {
                let tokens = match input {
                    Input::Tokens(tokens) => tokens,
                    _ => 0,
                };
                let admitted = quota.try_admit(t_ns, day, seq, tokens, &limits);
                if admitted.is_ok() {
                    pending.tokens = Some(tokens);
                }
                admitted
            }
        };
        let verdict = match (checked, input) {
            (Err(violations), _) => {
                pending.rate_limited = true;
                Verdict::Reject(quota_error(&violations, model))
            }
            (Ok(()), Input::Invalid(error)) => Verdict::Reject(error),
            (Ok(()), _) => Verdict::Serve { modifier },
        };
        (pending, verdict)
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
        let now_ns = self.now_ns();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let day = pacific::pacific_day(inner.wall_at_start_ms + (now_ns / 1_000_000) as i64);
        // A project's window length is that of its keys (they all agree).
        let windows: HashMap<&str, u64> = inner
            .keys
            .values()
            .map(|entry| {
                (
                    &*entry.project,
                    entry.spec.window_ms.saturating_mul(1_000_000),
                )
            })
            .collect();
        let quotas = &mut inner.quotas;
        let mut stats = inner.recorder.stats(|project, model| {
            let window_ns = windows.get(project).copied().unwrap_or(60_000_000_000);
            match quotas.get_mut(&(Arc::from(project), model.to_string())) {
                Some(quota) => quota.usage(now_ns, day, window_ns),
                None => Usage::default(),
            }
        });
        let wall_ms = inner.wall_at_start_ms + (now_ns / 1_000_000) as i64;
        for (project, counts) in inner.resources.counts(wall_ms) {
            let entry = stats.projects.entry(project).or_default();
            entry.files = counts.files;
            entry.cached_contents = counts.cached_contents;
            entry.upload_sessions = counts.upload_sessions;
        }
        stats
    }

    pub fn log(&self) -> Vec<LogEntry> {
        self.lock().recorder.log()
    }

    pub fn add_fault(&self, fault: Fault) {
        self.lock().faults.add(fault);
    }

    /// Adds a key, or replaces the one with the same label (its project's quota history is
    /// kept). A secret already used by another label now belongs to this one. Refused when
    /// another key of the same project carries different quotas.
    pub fn set_key(&self, spec: KeySpec) -> Result<(), crate::ConfigError> {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for other in inner.keys.values() {
            if other.spec.label != spec.label {
                spec.check_same_project(&other.spec)?;
            }
        }
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
        let project: Arc<str> = Arc::from(spec.project_name());
        inner.recorder.add_label(Arc::clone(&label), &project);
        inner.keys.insert(label, KeyEntry { spec, project });
        Ok(())
    }

    /// Clears counters, the log, faults, recorded bodies and every quota; keys and the
    /// clock stay.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.faults.clear();
        inner.recorder.clear();
        inner.bodies.clear();
        inner.quotas.clear();
        inner.resources.clear();
    }

    /// The wall clock now.
    pub fn clock(&self) -> ClockView {
        let now_ns = self.now_ns();
        let wall_ms = self.lock().wall_at_start_ms + (now_ns / 1_000_000) as i64;
        let next = pacific::next_pacific_midnight(wall_ms);
        ClockView {
            now: pacific::format_utc(wall_ms),
            unix_ms: wall_ms,
            pacific_date: pacific::format_date(pacific::pacific_day(wall_ms)),
            utc_offset_minutes: pacific::utc_offset_ms(wall_ms) / 60_000,
            next_reset: pacific::format_utc(next),
            ms_to_next_reset: next - wall_ms,
        }
    }

    /// Sets the wall clock to `unix_ms` from now on. Only the Pacific day depends on it: the
    /// rolling windows run on the monotonic clock, so setting it never makes them forget or
    /// remember requests.
    pub fn set_clock(&self, unix_ms: i64) {
        let now_ms = (self.now_ns() / 1_000_000) as i64;
        self.lock().wall_at_start_ms = unix_ms - now_ms;
    }

    /// Moves the wall clock by `ms` (negative moves it back).
    pub fn advance_clock(&self, ms: i64) {
        self.lock().wall_at_start_ms += ms;
    }

    /// Records how the stream of request `seq` (admitted in `generation`) is going.
    fn update_stream(&self, generation: u64, seq: u64, events: u32, end: Option<&str>) {
        let mut inner = self.lock();
        if inner.generation == generation {
            inner.recorder.update_stream(seq, events, end);
        }
    }
}

/// A seed for resource ids that differs between emulators, even two started at once.
fn id_seed() -> u64 {
    static STARTED: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let nth = STARTED.fetch_add(1, Ordering::Relaxed);
    nanos ^ u64::from(std::process::id()).rotate_left(32) ^ nth.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The 429 the emulator's own quotas answer: one violation per exceeded quota, the longest
/// wait in RetryInfo; a `limit: 0` answer carries the 1.1 s trap instead.
fn quota_error(violations: &[Violation], model: &str) -> ApiError {
    let quotas: Vec<(QuotaId, u64)> = violations
        .iter()
        .map(|v| {
            let id = match v.dimension {
                Dimension::Requests => QuotaId::RequestsPerMinute,
                Dimension::Tokens => QuotaId::InputTokensPerMinute,
                Dimension::Daily => QuotaId::RequestsPerDay,
            };
            (id, v.limit)
        })
        .collect();
    if violations.iter().all(|v| v.limit == 0) {
        return ApiError::quota_violations(&quotas, model, LIMIT_ZERO_RETRY_DELAY);
    }
    let wait_ns = violations
        .iter()
        .map(|v| v.retry_after_ns.unwrap_or(DAILY_RETRY_DELAY_NS))
        .max()
        .unwrap_or(0);
    ApiError::quota_violations(&quotas, model, &duration_string(wait_ns))
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
    project: Option<Arc<str>>,
    key_fingerprint: Option<String>,
    key_in_url: bool,
    version: &'static str,
    path: String,
    resources: Vec<String>,
    model: String,
    method: Method,
    tokens: Option<u64>,
    fault: Option<crate::faults::FaultKind>,
    latency_ms: Option<u64>,
    rate_limited: bool,
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

    /// The label and project of a known key.
    pub fn owner(&self) -> Option<Owner> {
        Some(Owner {
            label: Arc::clone(self.label()?),
            project: Arc::clone(self.project.as_ref()?),
        })
    }

    /// Names the resource the request is about, for the log.
    pub fn name_resource(&mut self, name: String) {
        if !self.resources.contains(&name) {
            self.resources.push(name);
        }
    }

    /// How long the applied fault (of any kind) delays the answer.
    pub fn latency_ms(&self) -> Option<u64> {
        self.latency_ms
    }

    /// Records the answer's status.
    pub fn finish(mut self, status: u16) {
        self.record(status, false);
    }

    /// Records a 200 stream, which stays open in the stats until its [`StreamTicket`] ends.
    pub fn finish_stream(mut self) -> StreamTicket {
        self.record(200, true);
        StreamTicket {
            shared: Arc::clone(&self.shared),
            generation: self.generation,
            seq: self.seq,
            events: 0,
            ended: false,
        }
    }

    fn record(&mut self, status: u16, stream: bool) {
        self.finished = true;
        let mut inner = self.shared.lock();
        if inner.generation != self.generation {
            return; // Arrived before a reset: not part of what the caller now observes.
        }
        inner.recorder.record(Outcome {
            seq: self.seq,
            t_ns: self.t_ns,
            caller: self.caller.clone(),
            project: self.project.clone(),
            key_fingerprint: self.key_fingerprint.take(),
            key_in_url: self.key_in_url,
            version: self.version,
            path: std::mem::take(&mut self.path),
            resources: std::mem::take(&mut self.resources),
            status,
            model: std::mem::take(&mut self.model),
            method: self.method,
            tokens: self.tokens,
            fault: self.fault,
            rate_limited: self.rate_limited,
            stream,
        });
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.finished {
            self.record(0, false);
        }
    }
}

/// The log entry of a stream being sent. Dropped without [`StreamTicket::end`] (the server
/// shut down mid-stream), it records the stream as closed by the client.
#[derive(Debug)]
pub struct StreamTicket {
    shared: Arc<Shared>,
    generation: u64,
    seq: u64,
    events: u32,
    ended: bool,
}

impl StreamTicket {
    /// Counts one more event written.
    pub fn sent(&mut self) {
        self.events += 1;
        self.shared
            .update_stream(self.generation, self.seq, self.events, None);
    }

    /// Records how the stream ended ("complete", "client_closed", "cut", ...); a later call
    /// corrects an earlier one.
    pub fn end(&mut self, how: &str) {
        self.ended = true;
        self.shared
            .update_stream(self.generation, self.seq, self.events, Some(how));
    }
}

impl Drop for StreamTicket {
    fn drop(&mut self) {
        if !self.ended {
            self.shared.update_stream(
                self.generation,
                self.seq,
                self.events,
                Some("client_closed"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::FaultKind;

    fn arrival<'a>(key: Option<&'a str>, model: &'a str) -> Arrival<'a> {
        Arrival {
            key,
            key_in_url: false,
            version: "v1beta",
            path: "/v1beta/models/m:generateContent",
            refs: &[],
            session_owner: None,
            model,
            method: Method::GenerateContent,
            input: Input::Tokens(1),
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
        assert!(matches!(v, Verdict::Serve { modifier: None }));
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
    fn quotas_are_per_model_and_invalid_bodies_use_none() {
        let shared = shared();
        let mut bad = arrival(Some("secret"), "m");
        bad.input = Input::Invalid(ApiError::bad_contents());
        let (p, v) = shared.admit(bad);
        assert!(matches!(v, Verdict::Reject(e) if e.code == 400));
        p.finish(400);
        let (p, v) = shared.admit(arrival(Some("secret"), "m"));
        assert!(matches!(v, Verdict::Serve { .. }));
        p.finish(200);
        // Another model of the same project has its own quota.
        let (_, v) = shared.admit(arrival(Some("secret"), "other"));
        assert!(matches!(v, Verdict::Serve { .. }));
        let (_, v) = shared.admit(arrival(Some("secret"), "m"));
        assert!(matches!(v, Verdict::Reject(e) if e.code == 429));
        shared.reset();
        let (_, v) = shared.admit(arrival(Some("secret"), "m"));
        assert!(matches!(v, Verdict::Serve { .. }));
    }

    #[test]
    fn set_key_replaces_by_label() {
        let shared = shared();
        shared.set_key(KeySpec::new("new-secret", "a")).unwrap();
        let (_, v) = shared.admit(arrival(Some("secret"), "m"));
        assert!(matches!(v, Verdict::Reject(e) if e.code == 400));
        let (_, v) = shared.admit(arrival(Some("new-secret"), "m"));
        assert!(matches!(v, Verdict::Serve { .. }));
        assert_eq!(shared.stats().keys.len(), 1);
        // A second key of project "a" must carry the same quotas.
        let err = shared
            .set_key(KeySpec::new("x", "b").in_project("a").with_limit(3, 1000))
            .unwrap_err();
        assert!(err.0.contains("project 'a'"), "{err}");
    }

    #[test]
    fn the_clock_can_be_set_and_moved() {
        let shared = shared();
        let start = pacific::parse_rfc3339("2026-03-08T07:59:59Z").unwrap();
        shared.set_clock(start);
        let clock = shared.clock();
        assert_eq!(clock.pacific_date, "2026-03-07");
        assert_eq!(clock.utc_offset_minutes, -480);
        assert!(
            clock.ms_to_next_reset <= 1000 && clock.ms_to_next_reset > 900,
            "{clock:?}"
        );
        shared.advance_clock(1000);
        assert_eq!(shared.clock().pacific_date, "2026-03-08");
    }
}
