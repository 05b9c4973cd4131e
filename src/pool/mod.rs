//! The key pool: chooses a key for every request, sends it, and reacts to what the service says.
//!
//! A call is a loop of attempts, each in three steps that live apart:
//! - `select`: choose a key and admit the request on it ([`Lease`]) for the call's model, on
//!   the key's quota group's record of that model (`models`: found on first use). Free keys
//!   in round-robin from a shared cursor, skipping keys whose group is full, cooling down or
//!   without the model, and disabled keys; the paid key only when no free key can serve that
//!   model; then the model's fallbacks, in order; otherwise [`Error::AllKeysRateLimited`]
//!   with the time until the earliest can admit again (or a wait for it, up to the call's
//!   `max_wait_ms`), or [`Error::ModelUnavailable`] when no key's group has the model.
//! - `attempt`: send on the leased key, classify the answer's status, read the body, and say
//!   what happened. The lease is completed when it is dropped, once the answer is in.
//! - `decide`: what next, a pure function of what happened and the time: return, retry after
//!   a backoff (5xx and transport errors, exponential with full jitter, never held against the
//!   key), move to another key (a 429 cools the key's group for the model it names: for the
//!   service's `retryDelay`, a per-day quota until midnight Pacific time, a quota of 0 makes
//!   the model unavailable for the group, no quota named is a short capacity backoff; a dead
//!   key is disabled), or fail (the caller's error).
//!
//! Time comes from the store ([`Store::now`], on which every record counts) and waiting from
//! the pool's [`Clock`], so tests run the whole loop on a [`crate::clock::FakeClock`].

mod attempt;
mod call;
mod decide;
mod forward;
mod models;
mod resource;
mod select;
mod stream;

pub use forward::{ForwardRequest, Forwarded};
pub use models::{ModelRef, ModelState};
pub use select::NoKey;
pub use stream::{Stream, Usage};

use crate::clock::{Clock, SystemClock};
use crate::config::{validate_model, Config, GroupId};
use crate::error::Error;
use crate::health::DisabledReason;
use crate::http::Http;
use crate::key::{ApiKey, Tier};
use crate::log::{self, Level, Value::Num, Value::Str};
use crate::method::Method;
use crate::metrics::counters::PoolCounter;
use crate::store::{
    self, InUse, KeyRecord, KeySpec, Moment, PoolRecord, QuotaRecord, QuotaTicket, Store,
};
use bytes::Bytes;
use call::{Done, Tried};
use decide::{Next, Penalty, Policy, Progress, QuotaHit, Wait};
use models::Models;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

/// A key of the pool, its quota group and its (possibly shared) own record.
pub struct PoolKey {
    pub key: ApiKey,
    pub tier: Tier,
    /// The key's quota group: keys of one group share every limit.
    pub group: GroupId,
    /// The key's own state (this process's or the host's).
    pub record: Arc<dyn KeyRecord>,
    _in_use: Arc<InUse>,
}

impl PoolKey {
    /// Disables the key for `reason`, and says so in the log.
    fn disable(&self, reason: DisabledReason) -> Result<(), Error> {
        log::event(
            Level::Error,
            "key_disabled",
            &[
                ("key", Str(self.key.fingerprint())),
                ("tier", Str(self.tier.as_str())),
                ("reason", Str(reason.as_str())),
            ],
        );
        self.record.disable(reason)
    }

    pub fn disabled(&self) -> Result<Option<DisabledReason>, Error> {
        self.record.disabled()
    }
}

/// A key admitted for one request of one model. The pool's own attempts hold one while the
/// request is out; callers that send the request themselves (and the benchmarks of admission
/// alone) get one from [`Pool::try_lease`]. Completing it stamps the group's windows with the
/// time the answer came back; dropping it completes it at the store's time then, so that no
/// path, early returns and panics included, leaves a ticket open.
pub struct Lease<'p> {
    pool: &'p Pool,
    key: &'p PoolKey,
    /// The key's position in the pool (free keys, then the paid key).
    index: usize,
    model: ModelRef<'p>,
    ticket: Option<QuotaTicket>,
    /// The service's count of the request's input tokens, once the answer said.
    prompt_tokens: Option<u64>,
}

impl<'p> Lease<'p> {
    /// The admitted key (send it only in the `x-goog-api-key` header).
    pub fn key(&self) -> &ApiKey {
        &self.key.key
    }

    pub fn tier(&self) -> Tier {
        self.key.tier
    }

    /// The model the lease admits a request of.
    pub fn model(&self) -> &str {
        &self.model.model
    }

    /// The pool's key this lease is on.
    pub(crate) fn pool_key(&self) -> &'p PoolKey {
        self.key
    }

    /// The record of the key's group for the lease's model.
    pub(crate) fn quota(&self) -> &dyn QuotaRecord {
        &*self.model.quotas[self.index]
    }

    /// The answer said how many input tokens the request had: the reservation is corrected to
    /// it on completion.
    pub fn set_prompt_tokens(&mut self, tokens: Option<u64>) {
        self.prompt_tokens = tokens;
    }

    /// Marks the request finished at `now_ms` (a [`Pool::now`] time).
    #[inline]
    pub fn complete(mut self, now_ms: u64) -> Result<(), Error> {
        match self.ticket.take() {
            Some(ticket) => self.quota().complete(ticket, now_ms, self.prompt_tokens),
            None => Ok(()),
        }
    }
}

impl Drop for Lease<'_> {
    #[inline]
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.complete_on_drop(ticket);
        }
    }
}

impl Lease<'_> {
    /// A drop cannot hand an error to anyone: the store's failure is logged, and the slot
    /// frees itself after the in-flight allowance, as a dead process's does.
    #[inline(never)]
    fn complete_on_drop(&self, ticket: QuotaTicket) {
        let now = self.pool.store.now();
        if let Err(e) = self.quota().complete(ticket, now, self.prompt_tokens) {
            log::event(
                Level::Error,
                "store_error",
                &[
                    ("key", Str(self.key.key.fingerprint())),
                    ("during", Str("complete")),
                    ("error", Str(&e.to_string())),
                ],
            );
        }
    }
}

/// Per-call options.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// The model; `None` uses the pool's default.
    pub model: Option<String>,
    /// How long to wait for a key when every key is full (0: fail at once).
    pub max_wait_ms: u64,
    /// The call's time budget; `None` (or more than the pool's) uses the pool's.
    pub timeout_ms: Option<u64>,
}

/// A successful call.
#[derive(Clone, Debug)]
pub struct Response {
    /// The service's response JSON, as received, byte for byte.
    pub body: Bytes,
    /// The fingerprint of the key that served it.
    pub key_fingerprint: String,
    /// HTTP attempts the call took (1 when nothing went wrong).
    pub attempts: u32,
    /// The model that served it: the one asked for, or one of its fallbacks.
    pub model: String,
}

pub struct Pool {
    config: Config,
    free: Vec<PoolKey>,
    paid: Option<PoolKey>,
    record: Arc<dyn PoolRecord>,
    /// Per key: whether it was disabled when this process last asked it.
    seen_disabled: Box<[AtomicBool]>,
    /// The records of every model the pool has used.
    models: Models,
    /// The Pacific day as of the last admission: its number and the store time its midnight
    /// falls at, packed into one word (see [`Pool::moment`]).
    day: AtomicU64,
    http: Http,
    store: Arc<dyn Store>,
    /// `store.describe()`, made once.
    store_name: String,
    clock: Arc<dyn Clock>,
}

/// The Pacific day's number in the low bits of `Pool::day`, its end above (`Moment::of` keeps
/// the day to these bits).
const DAY_BITS: u32 = 20;

impl Pool {
    /// A pool configured from the environment.
    pub fn from_env() -> Result<Pool, Error> {
        Pool::new(Config::from_env()?)
    }

    /// A pool on the host's clocks.
    pub fn new(config: Config) -> Result<Pool, Error> {
        Pool::with_clock(config, Arc::new(SystemClock))
    }

    /// A pool whose store (the one `config.state` names) counts time on `clock`, and which
    /// waits by sleeping on it (tests give it a `FakeClock`).
    pub fn with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Pool, Error> {
        let store = store::open(&config.state, clock.clone())?;
        Pool::with_store(config, store, clock)
    }

    /// A pool on a store of the caller's (`config.state` is not used), waiting on `clock`.
    pub fn with_store(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Pool, Error> {
        let pool_key = |key: &ApiKey, tier: Tier| -> Result<PoolKey, Error> {
            let group = config.group_id(key);
            let handle = store.key(&KeySpec {
                id: *key.id(),
                fingerprint: key.fingerprint().to_string(),
                tier,
                group: group.digest(),
            })?;
            Ok(PoolKey {
                record: handle.record,
                _in_use: handle.in_use,
                key: key.clone(),
                tier,
                group,
            })
        };
        let free = config
            .free_keys
            .iter()
            .map(|key| pool_key(key, Tier::Free))
            .collect::<Result<Vec<_>, _>>()?;
        let paid = config
            .paid_key
            .as_ref()
            .map(|key| pool_key(key, Tier::Paid))
            .transpose()?;
        let keys: Vec<&PoolKey> = free.iter().chain(paid.iter()).collect();
        let default = ModelState::open(&config, &*store, &keys, &config.model)?;
        let record = store.pool(&pool_id(&config))?;
        if let Some(level) = config.log {
            log::set_level(level);
        }
        let http = Http::new(&config.base_url, &config.model)
            .map_err(|message| Error::Transport { message })?;
        let n = free.len() + paid.is_some() as usize;
        Ok(Pool {
            seen_disabled: (0..n).map(|_| AtomicBool::new(false)).collect(),
            models: Models {
                default,
                others: Default::default(),
            },
            day: AtomicU64::new(0),
            free,
            paid,
            record,
            http,
            store_name: store.describe(),
            store,
            clock,
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the pool's key state lives (`memory`, or the shared file).
    pub fn store(&self) -> &str {
        &self.store_name
    }

    /// The store itself.
    pub fn store_handle(&self) -> &dyn Store {
        &*self.store
    }

    /// The store's time now, which admissions, cooldowns and statistics count on.
    pub fn now(&self) -> u64 {
        self.store.now()
    }

    /// `now` (a store time) with the Pacific day it falls in. The day is worked out from the
    /// wall clock only when the last one known has ended, so admission reads one word for it.
    #[inline]
    pub fn moment(&self, now: u64) -> Moment {
        let word = self.day.load(Relaxed);
        let day_ends = word >> DAY_BITS;
        if now < day_ends {
            return Moment {
                now,
                day: word & ((1 << DAY_BITS) - 1),
                day_ends,
            };
        }
        self.new_day(now)
    }

    #[cold]
    fn new_day(&self, now: u64) -> Moment {
        let at = Moment::of(now, self.clock.unix_secs());
        self.day.store(at.day_ends << DAY_BITS | at.day, Relaxed);
        at
    }

    /// Every key of the pool, free keys first.
    pub fn keys(&self) -> impl Iterator<Item = &PoolKey> {
        self.free.iter().chain(self.paid.iter())
    }

    pub fn record(&self) -> &dyn PoolRecord {
        &*self.record
    }

    /// Sends one `generateContent` request (`request_json`, passed through untouched) through
    /// the pool. When the call fails, its own error is returned even if counting it failed too.
    pub fn generate(&self, request_json: &str, options: &CallOptions) -> Result<Response, Error> {
        self.call(Method::GenerateContent, request_json, options, None)
    }

    /// Runs one call, counted on the pool: a request when it starts, its outcome when it ends.
    /// When the call fails, its own error is returned even if counting it failed too.
    fn counted<T>(&self, call: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
        self.record.add(PoolCounter::Requests, 1)?;
        let result = call();
        let counted = self.count_outcome(result.as_ref().map(|_| ()));
        let value = result?;
        counted.map(|()| value)
    }

    /// Counts a call's outcome on the pool (requests were counted when it started).
    fn count_outcome(&self, result: Result<(), &Error>) -> Result<(), Error> {
        match result {
            Ok(()) => self.record.add(PoolCounter::Succeeded, 1),
            Err(e) => self.record.add(PoolCounter::Failed, 1).and_then(|()| {
                if matches!(e, Error::AllKeysRateLimited { .. }) {
                    self.record.add(PoolCounter::Exhausted, 1)
                } else {
                    Ok(())
                }
            }),
        }
    }

    /// The model a call asks for and its fallbacks, in order.
    fn model_chain(&self, options: &CallOptions) -> Result<Vec<ModelRef<'_>>, Error> {
        let model = match &options.model {
            None => self.config.model.clone(),
            Some(m) => validate_model(m).map_err(|r| Error::invalid("model", r))?,
        };
        let mut chain = vec![self.model_state(&model)?];
        for fallback in self.config.fallbacks(&model) {
            chain.push(self.model_state(fallback)?);
        }
        Ok(chain)
    }

    /// The attempt loop of one call, over the models of `chain` (the one asked for, then its
    /// fallbacks), admitting `tokens` input tokens per attempt. `attempt` sends one attempt on
    /// the lease it is given (whose model is the one to send to), with the call's remaining
    /// time. `only`: when given, the keys (by position) the call may use (a pinned resource's
    /// group); `None` is every key, with no cost on the admitting path and whether it retries a transient failure; the loop decides what next and
    /// applies it.
    fn run<'p, T>(
        &'p self,
        options: &CallOptions,
        chain: &[ModelRef<'p>],
        tokens: u64,
        only: Option<&[bool]>,
        mut attempt: impl FnMut(Lease<'p>, u64, bool) -> Result<Tried<T>, Error>,
    ) -> Result<Done<'p, T>, Error> {
        let budget = options
            .timeout_ms
            .unwrap_or(self.config.timeout_ms)
            .min(self.config.timeout_ms);
        let policy = Policy::of(&self.config);
        let mut progress = Progress::start(self.store.now(), budget, options.max_wait_ms);
        loop {
            if progress.attempts >= self.config.max_attempts {
                // Only failures that move on to another attempt get here, so there is one.
                return Err(progress
                    .last_failure
                    .unwrap_or(Error::Timeout { after_ms: budget }));
            }
            let lease = self.acquire_waiting(
                chain,
                tokens,
                only,
                progress.wait_until,
                progress.last_failure.as_ref(),
            )?;
            let now = self.store.now();
            let remaining = progress.deadline.saturating_sub(now);
            if remaining == 0 {
                drop(lease);
                return Err(Error::Timeout {
                    after_ms: self.store.now().saturating_sub(progress.started),
                });
            }
            progress.attempts += 1;
            let key = lease.pool_key();
            // The lease's own model state: no second lookup, no copy of its name per attempt.
            let (index, state) = (lease.index, lease.model.clone());
            let served = state.model.as_str();
            if served != chain[0].model {
                lease.quota().count_fallback()?;
                self.record.add(PoolCounter::ModelFallbacks, 1)?;
                log::event(
                    Level::Info,
                    "model_fallback",
                    &[("model", Str(&chain[0].model)), ("served_by", Str(served))],
                );
            }
            let (happened, value) = match attempt(lease, remaining, progress.retries > 0)? {
                Tried::Happened(happened, value) => (happened, value),
                Tried::Abandoned(failure) => {
                    // Abandoned without an answer to judge the key by (a stream that sent
                    // nothing in time): another key at once.
                    progress.last_failure = Some(failure);
                    continue;
                }
            };
            let now = self.store.now();
            let quota = &state.quotas[index];
            let capacity = happened.is_capacity_429();
            let streak = if capacity {
                quota.capacity_streak(true)?
            } else {
                0
            };
            let next = decide::next(
                &happened,
                &progress,
                now,
                self.clock.unix_secs(),
                random_draw(),
                streak,
                &policy,
            );
            let result = self.result_of(happened, key, now.saturating_sub(progress.started));
            match next {
                Next::Return | Next::Fail => {
                    if matches!(next, Next::Return) {
                        quota.reset_capacity()?;
                    }
                    return result.map(|body| Done {
                        body,
                        value,
                        key,
                        attempts: progress.attempts,
                        model: served.to_string(),
                    });
                }
                Next::MoveOn(penalty) => {
                    match penalty {
                        Penalty::Quota(hits) => {
                            for hit in &hits {
                                self.apply(key, index, served, hit, now)?;
                            }
                        }
                        Penalty::Disable(reason) => key.disable(reason)?,
                    }
                    progress.last_failure = result.err();
                }
                Next::RetryAfter(backoff_ms) => {
                    progress.retries += 1;
                    let failure = result.err();
                    log::event(
                        Level::Info,
                        "retry",
                        &[
                            ("retry", Num(progress.retries as u64)),
                            ("backoff_ms", Num(backoff_ms)),
                            (
                                "after",
                                Str(&failure.as_ref().map(Error::to_string).unwrap_or_default()),
                            ),
                        ],
                    );
                    progress.last_failure = failure;
                    self.clock.sleep(Duration::from_millis(backoff_ms));
                }
            }
        }
    }

    /// Applies what a 429 said about one model of key `index`'s group (`served`: the model
    /// the request was for, when the violation names none), and says so in the log.
    fn apply(
        &self,
        key: &PoolKey,
        index: usize,
        served: &str,
        hit: &QuotaHit,
        now: u64,
    ) -> Result<(), Error> {
        let model = hit.model.as_deref().unwrap_or(served);
        let state = self.model_state(model)?;
        let quota = &state.quotas[index];
        let (event, cause, until) = match hit.wait {
            Wait::CoolDown { until, cause } => {
                quota.cool_down(until, cause)?;
                // The name it had when cooldowns were per key: what the key's answer did.
                ("key_cooldown", cause.as_str(), until)
            }
            Wait::Unavailable { until } => {
                quota.mark_unavailable(until)?;
                ("model_unavailable", "limit_0", until)
            }
        };
        log::event(
            Level::Warn,
            event,
            &[
                ("key", Str(key.key.fingerprint())),
                ("tier", Str(key.tier.as_str())),
                ("group", Str(key.group.as_str())),
                ("model", Str(model)),
                ("cause", Str(cause)),
                ("cooldown_ms", Num(until.saturating_sub(now))),
            ],
        );
        for &(kind, value) in &hit.lower {
            if quota.lower_limit(kind, value)? {
                // Info: the pool adapts by itself; the service's figure is now in force.
                log::event(
                    Level::Info,
                    "limit_lowered",
                    &[
                        ("group", Str(key.group.as_str())),
                        ("model", Str(model)),
                        ("limit", Str(kind.as_str())),
                        ("value", Num(value)),
                    ],
                );
            }
        }
        Ok(())
    }
}

/// The input tokens a request is counted as before it is sent: its bytes / 2, rounded up. A
/// token is about four characters of text and an image part's base64 is far more bytes than
/// its tokens, so this over-estimates (which is safe: the reservation is corrected to the
/// answer's `promptTokenCount`, and an over-estimate only holds room back until then).
pub fn estimate_tokens(body: &[u8]) -> u64 {
    (body.len() as u64).div_ceil(2).max(1)
}

/// The request as the bytes every attempt sends, made once: it must be a JSON object, and it
/// is sent as given, byte for byte. One pass checks both (see [`RequestShape`]).
fn request_body(request_json: &str) -> Result<Bytes, Error> {
    match serde_json::from_str::<RequestShape>(request_json) {
        Err(e) => Err(Error::invalid_json("request_json", &e)),
        Ok(RequestShape::NotAnObject) => Err(Error::invalid(
            "request_json",
            "must be a JSON object (a GenerateContentRequest)",
        )),
        Ok(RequestShape::Object) => Ok(Bytes::copy_from_slice(request_json.as_bytes())),
    }
}

/// What a request body is, read without keeping anything: valid JSON that is an object, or
/// valid JSON that is something else. Invalid JSON is the parser's error, whatever the shape.
enum RequestShape {
    Object,
    NotAnObject,
}

impl<'de> serde::Deserialize<'de> for RequestShape {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RequestShape, D::Error> {
        d.deserialize_any(ShapeVisitor)
    }
}

struct ShapeVisitor;

impl<'de> serde::de::Visitor<'de> for ShapeVisitor {
    type Value = RequestShape;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<RequestShape, A::Error> {
        use serde::de::IgnoredAny;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(RequestShape::Object)
    }

    // Every other shape is read to its end too, so that invalid JSON inside it is still the
    // parser's error.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<RequestShape, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(RequestShape::NotAnObject)
    }
    fn visit_bool<E>(self, _: bool) -> Result<RequestShape, E> {
        Ok(RequestShape::NotAnObject)
    }
    fn visit_i64<E>(self, _: i64) -> Result<RequestShape, E> {
        Ok(RequestShape::NotAnObject)
    }
    fn visit_u64<E>(self, _: u64) -> Result<RequestShape, E> {
        Ok(RequestShape::NotAnObject)
    }
    fn visit_f64<E>(self, _: f64) -> Result<RequestShape, E> {
        Ok(RequestShape::NotAnObject)
    }
    fn visit_str<E>(self, _: &str) -> Result<RequestShape, E> {
        Ok(RequestShape::NotAnObject)
    }
    fn visit_unit<E>(self) -> Result<RequestShape, E> {
        Ok(RequestShape::NotAnObject)
    }
}

/// A uniform random word for backoff jitter, from a small per-thread xorshift generator (not
/// for anything secret).
fn random_draw() -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            crate::clock::now_ms() ^ (std::process::id() as u64) << 32 ^ 0x9E37_79B9_7F4A_7C15
        );
    }
    static SALT: AtomicU64 = AtomicU64::new(0);
    STATE.with(|s| {
        let mut x = s.get() ^ SALT.fetch_add(0x9E37_79B9, Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// The identity of a pool's key set: pools of the same keys share a cursor and counters.
fn pool_id(config: &Config) -> [u8; 16] {
    let mut free: Vec<_> = config.free_keys.iter().map(|k| *k.id()).collect();
    free.sort_unstable();
    let mut h = Sha256::new();
    h.update(b"gemini-rotator/pool/v1\0");
    for id in &free {
        h.update(id);
    }
    h.update(b"paid\0");
    if let Some(paid) = &config.paid_key {
        h.update(paid.id());
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize()[..16]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_is_checked_in_one_pass_and_kept_byte_for_byte() {
        let body = request_body(" {\"contents\": [1, {\"a\": null}]} ").unwrap();
        assert_eq!(&body[..], b" {\"contents\": [1, {\"a\": null}]} ");
        for not_object in ["[1, 2]", "\"x\"", "3", "true", "null", "[{\"a\": [1]}]"] {
            assert!(
                matches!(request_body(not_object), Err(Error::InvalidArgument { .. })),
                "{not_object}"
            );
        }
        for invalid in ["{", "{\"a\": }", "[1,", "{} x", "", "{\"a\": tru}"] {
            assert!(
                matches!(request_body(invalid), Err(Error::InvalidJson { .. })),
                "{invalid}"
            );
        }
    }
}
