//! The key pool: chooses a key for every request, sends it, and reacts to what the service says.
//!
//! Selection: free keys in round-robin from a shared cursor, skipping keys that are full,
//! cooling down or disabled; the paid key only when no free key can admit; otherwise
//! [`Error::AllKeysRateLimited`] with the time until the earliest key can admit again.
//! Upstream failures: a 429 cools the key down for the service's `retryDelay` (a per-day quota
//! until midnight Pacific time) and the call moves to another key; a dead key (invalid, leaked,
//! suspended, API disabled) is disabled and the call moves on; 5xx and transport errors are
//! retried with exponential backoff and full jitter, never held against the key; anything else
//! is the caller's and comes back as is.

use crate::clock;
use crate::config::{validate_model, Config, StateLocation};
use crate::error::{ApiError, Error};
use crate::gemini::{classify, ErrorBody, Verdict};
use crate::http::{Http, Outcome};
use crate::key::{redact, ApiKey, Tier};
use crate::limiter::Ticket;
use crate::log::{self, Level, Value::Num, Value::Str};
use crate::store::memory::MemoryStore;
use crate::store::shm::ShmStore;
use crate::store::{
    CooldownCause, DisabledReason, KeyCounter, KeyRecord, KeySpec, PoolCounter, PoolRecord, Store,
};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often a pool looks again at a key it found disabled (it may have been enabled again).
const DISABLED_RECHECK_MS: u64 = 10_000;

/// The longest cooldown a `retryDelay` can impose (a per-day quota cools until midnight
/// Pacific time instead).
const MAX_COOLDOWN_MS: u64 = 86_400_000;

/// A key of the pool and its (possibly shared) state record.
pub struct PoolKey {
    pub key: ApiKey,
    pub tier: Tier,
    /// The key's state (this process's or the host's).
    pub record: Arc<dyn KeyRecord>,
    /// Marks the key in use by this pool (see `store::conflict`).
    _in_use: std::sync::Arc<crate::store::InUse>,
}

impl PoolKey {
    /// Admits at `now`, or says when this key may admit again (`u64::MAX`: never).
    fn cool_down(&self, until: u64, cause: CooldownCause) {
        log::event(
            Level::Warn,
            "key_cooldown",
            &[
                ("key", Str(self.key.fingerprint())),
                ("tier", Str(self.tier.as_str())),
                ("cause", Str(cause.as_str())),
                ("cooldown_ms", Num(until.saturating_sub(clock::now_ms()))),
            ],
        );
        self.record.cool_down(until, cause);
    }

    fn disable(&self, reason: DisabledReason) {
        log::event(
            Level::Error,
            "key_disabled",
            &[
                ("key", Str(self.key.fingerprint())),
                ("tier", Str(self.tier.as_str())),
                ("reason", Str(reason.as_str())),
            ],
        );
        self.record.disable(reason);
    }

    pub fn disabled(&self) -> Option<DisabledReason> {
        self.record.disabled()
    }
}

/// A key admitted for one request, for callers that send the request themselves (and for the
/// benchmarks of admission alone). Completing it stamps the key's window with the time the
/// answer came back; dropping it completes it now.
pub struct Lease<'p> {
    key: &'p PoolKey,
    ticket: Option<Ticket>,
}

impl Lease<'_> {
    /// The admitted key (send it only in the `x-goog-api-key` header).
    pub fn key(&self) -> &ApiKey {
        &self.key.key
    }

    pub fn tier(&self) -> Tier {
        self.key.tier
    }

    /// Marks the request finished at `now_ms` (a `clock::now_ms()` time).
    pub fn complete(mut self, now_ms: u64) {
        if let Some(ticket) = self.ticket.take() {
            self.key.record.complete(ticket, now_ms);
        }
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.key.record.complete(ticket, clock::now_ms());
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
    /// The service's response JSON, as received (bytes: a NUL byte in it is data).
    pub body: Vec<u8>,
    /// The fingerprint of the key that served it.
    pub key_fingerprint: String,
    /// HTTP attempts the call took (1 when nothing went wrong).
    pub attempts: u32,
}

pub struct Pool {
    config: Config,
    free: Vec<PoolKey>,
    paid: Option<PoolKey>,
    record: Arc<dyn PoolRecord>,
    /// Per key (free keys, then the paid key): when this process may next ask it (see
    /// `try_key`). Never later than the key could really admit: cooldowns and window records
    /// only ever move forward.
    hints: Box<[AtomicU64]>,
    /// Per key: whether it was disabled when this process last asked it.
    seen_disabled: Box<[std::sync::atomic::AtomicBool]>,
    http: Http,
    store: String,
}

/// A small per-thread xorshift generator for backoff jitter (not for anything secret).
fn jitter_below(bound: u64) -> u64 {
    thread_local! {
        static STATE: std::cell::Cell<u64> = std::cell::Cell::new(
            clock::now_ms() ^ (std::process::id() as u64) << 32 ^ 0x9E37_79B9_7F4A_7C15
        );
    }
    static SALT: AtomicU64 = AtomicU64::new(0);
    STATE.with(|s| {
        let mut x = s.get() ^ SALT.fetch_add(0x9E37_79B9, Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        if bound == 0 {
            0
        } else {
            x % bound
        }
    })
}

impl Pool {
    /// A pool configured from the environment.
    pub fn from_env() -> Result<Pool, Error> {
        Pool::new(Config::from_env()?)
    }

    pub fn new(config: Config) -> Result<Pool, Error> {
        let store: Box<dyn Store> = match &config.state {
            StateLocation::Memory => Box::new(MemoryStore),
            StateLocation::Shm(path) => Box::new(ShmStore::open(path)?),
        };
        let spec = |key: &ApiKey, tier: Tier| KeySpec {
            id: *key.id(),
            fingerprint: key.fingerprint().to_string(),
            tier,
            limit: match tier {
                Tier::Free => config.free_rate_limit,
                Tier::Paid => config.paid_rate_limit,
            },
            window_ms: config.window_ms,
            max_inflight_ms: config.timeout_ms,
            limit_setting: config.setting_name(match tier {
                Tier::Free => "free_rate_limit",
                Tier::Paid => "paid_rate_limit",
            }),
            window_setting: config.setting_name("window_ms"),
        };
        let mut free = Vec::with_capacity(config.free_keys.len());
        for key in &config.free_keys {
            let handle = store.key(&spec(key, Tier::Free))?;
            free.push(PoolKey {
                record: handle.record,
                _in_use: handle.in_use,
                key: key.clone(),
                tier: Tier::Free,
            });
        }
        let paid = match &config.paid_key {
            Some(key) => {
                let handle = store.key(&spec(key, Tier::Paid))?;
                Some(PoolKey {
                    record: handle.record,
                    _in_use: handle.in_use,
                    key: key.clone(),
                    tier: Tier::Paid,
                })
            }
            None => None,
        };
        let record = store.pool(&pool_id(&config))?;
        if let Some(level) = config.log {
            log::set_level(level);
        }
        let http = Http::new(&config.base_url, &config.model)
            .map_err(|message| Error::Transport { message })?;
        let n = free.len() + paid.is_some() as usize;
        let hints = (0..n).map(|_| AtomicU64::new(0)).collect();
        let seen_disabled = (0..n).map(|_| Default::default()).collect();
        Ok(Pool {
            hints,
            seen_disabled,
            free,
            paid,
            record,
            http,
            store: store.describe(),
            config,
        })
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the pool's key state lives (`memory`, or the shared file).
    pub fn store(&self) -> &str {
        &self.store
    }

    /// Every key of the pool, free keys first.
    pub fn keys(&self) -> impl Iterator<Item = &PoolKey> {
        self.free.iter().chain(self.paid.iter())
    }

    pub fn record(&self) -> &dyn PoolRecord {
        &*self.record
    }

    /// Chooses a key and admits the request on it, or says when the earliest key can admit.
    fn acquire(&self, now: u64) -> Result<(&PoolKey, Ticket), u64> {
        let mut earliest = u64::MAX;
        let k = self.free.len();
        if k > 0 {
            let start = (self.record.next_cursor() % k as u64) as usize;
            // From the cursor to the end, then from the start: no division per key.
            for index in (start..k).chain(0..start) {
                if let Some(ready) = self.held_back(index, now) {
                    earliest = earliest.min(ready);
                    continue;
                }
                match self.try_key(index, &self.free[index], now) {
                    Ok(ticket) => return Ok((&self.free[index], ticket)),
                    Err(ready) => earliest = earliest.min(ready),
                }
            }
        }
        if let Some(paid) = &self.paid {
            let tried = match self.held_back(k, now) {
                Some(ready) => Err(ready),
                None => self.try_key(k, paid, now),
            };
            match tried {
                Ok(ticket) => {
                    if k > 0 {
                        self.record.add(PoolCounter::PaidFallbacks, 1);
                        log::event(
                            Level::Info,
                            "paid_fallback",
                            &[("key", Str(paid.key.fingerprint()))],
                        );
                    }
                    return Ok((paid, ticket));
                }
                Err(ready) => earliest = earliest.min(ready),
            }
        }
        // Every key disabled: nothing will ever admit (until an operator enables one).
        if self.seen_disabled.iter().all(|d| d.load(Relaxed)) {
            return Err(u64::MAX);
        }
        Err(earliest)
    }

    /// When key `index` (free keys, then the paid key) told this process it may admit again,
    /// if that is still ahead: a key that refused is not asked again before the time it named.
    /// The hints are one word per key in a dense local array, so passing over full keys is a
    /// tight loop that touches no shared memory.
    /// The hint of key `index` if it is still ahead of `now`. A disabled key's hint is the time
    /// to look at it again (`DISABLED_RECHECK_MS`), so that a key enabled again (`gemini-rotator
    /// enable`) is taken back by running pools; `seen_disabled` remembers that it was disabled.
    #[inline]
    fn held_back(&self, index: usize, now: u64) -> Option<u64> {
        let hint = self.hints[index].load(Relaxed);
        (now < hint).then_some(hint)
    }

    /// Asks key `index` to admit; a refusal is counted and becomes the key's hint.
    fn try_key(&self, index: usize, key: &PoolKey, now: u64) -> Result<Ticket, u64> {
        let result = key.record.try_admit(now);
        let disabled = result == Err(u64::MAX);
        if disabled != self.seen_disabled[index].load(Relaxed) {
            self.seen_disabled[index].store(disabled, Relaxed);
        }
        result.inspect_err(|&ready| {
            key.record.count(KeyCounter::Refused);
            let hint = if ready == u64::MAX {
                now.saturating_add(DISABLED_RECHECK_MS)
            } else {
                ready
            };
            self.hints[index].store(hint, Relaxed);
        })
    }

    /// Admits one request at `now_ms` (a `clock::now_ms()` time) on the key the pool chooses, or
    /// says from when on a key can admit (`u64::MAX`: every key is disabled). No HTTP, no
    /// waiting, no counters but the keys' own: the selection and admission alone.
    pub fn try_lease(&self, now_ms: u64) -> Result<Lease<'_>, u64> {
        self.acquire(now_ms).map(|(key, ticket)| Lease {
            key,
            ticket: Some(ticket),
        })
    }

    /// Why no key can serve, when none will ever again (all disabled).
    fn no_usable_keys(&self, last_failure: Option<&Error>) -> Error {
        let list: Vec<String> = self
            .keys()
            .map(|k| {
                let reason = k.disabled().map(DisabledReason::as_str).unwrap_or("usable");
                format!("{} {}", k.key.fingerprint(), reason)
            })
            .collect();
        Error::NoUsableKeys {
            detail: list.join(", "),
            last_answer: last_failure.map(Error::to_string),
        }
    }

    /// Waits (up to `wait_until`, a `clock::now_ms` time) for a key to admit the request.
    /// `last_failure` is what the service last answered in this call, for the error.
    fn acquire_waiting(
        &self,
        wait_until: u64,
        last_failure: Option<&Error>,
    ) -> Result<(&PoolKey, Ticket), Error> {
        loop {
            let now = clock::now_ms();
            match self.acquire(now) {
                Ok(found) => return Ok(found),
                Err(u64::MAX) => return Err(self.no_usable_keys(last_failure)),
                Err(ready) if ready > wait_until => {
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
                Err(ready) => {
                    std::thread::sleep(Duration::from_millis(ready.saturating_sub(now).max(1)))
                }
            }
        }
    }

    /// Sends one `generateContent` request (`request_json`, passed through untouched) through
    /// the pool.
    pub fn generate(&self, request_json: &str, options: &CallOptions) -> Result<Response, Error> {
        self.record.add(PoolCounter::Requests, 1);
        let result = self.generate_inner(request_json, options);
        match &result {
            Ok(_) => self.record.add(PoolCounter::Succeeded, 1),
            Err(e) => {
                self.record.add(PoolCounter::Failed, 1);
                if matches!(e, Error::AllKeysRateLimited { .. }) {
                    self.record.add(PoolCounter::Exhausted, 1);
                }
            }
        }
        result
    }

    fn generate_inner(&self, request_json: &str, options: &CallOptions) -> Result<Response, Error> {
        check_request(request_json)?;
        let model = match &options.model {
            None => self.config.model.clone(),
            Some(m) => validate_model(m).map_err(|r| Error::invalid("model", r))?,
        };
        let budget = options
            .timeout_ms
            .unwrap_or(self.config.timeout_ms)
            .min(self.config.timeout_ms);
        let started = clock::now_ms();
        let deadline = started.saturating_add(budget);
        let wait_until = started.saturating_add(options.max_wait_ms).min(deadline);

        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut last_failure: Option<Error> = None;
        loop {
            if attempts >= self.config.max_attempts {
                // Only failures that move on to another attempt get here, so there is one.
                return Err(last_failure.unwrap_or(Error::Timeout { after_ms: budget }));
            }
            let (key, ticket) = self.acquire_waiting(wait_until, last_failure.as_ref())?;
            let now = clock::now_ms();
            let remaining = deadline.saturating_sub(now);
            if remaining == 0 {
                key.record.complete(ticket, now);
                return Err(Error::Timeout {
                    after_ms: clock::now_ms().saturating_sub(started),
                });
            }
            attempts += 1;
            key.record.count(KeyCounter::Admitted);
            if retries > 0 {
                key.record.count(KeyCounter::Retries);
            }
            let sent = Instant::now();
            let outcome = self.http.generate(
                &key.key,
                &model,
                request_json,
                Duration::from_millis(remaining),
            );
            key.record.complete(ticket, clock::now_ms());
            self.record
                .observe_latency(sent.elapsed().as_micros() as u64);

            let (status, body) = match outcome {
                Outcome::Answer { status, body } => (status, body),
                Outcome::Timeout => {
                    key.record.count(KeyCounter::Timeout);
                    return Err(Error::Timeout {
                        after_ms: clock::now_ms().saturating_sub(started),
                    });
                }
                Outcome::Transport(message) => {
                    key.record.count(KeyCounter::Transport);
                    let failure = Error::Transport {
                        message: redact(&message, self.config.all_keys()),
                    };
                    self.back_off(&mut retries, deadline, failure, &mut last_failure)?;
                    continue;
                }
            };
            let error = (!(200..300).contains(&status))
                .then(|| ErrorBody::parse(&body))
                .flatten();
            let api_error = || {
                let e = error.clone().unwrap_or_default();
                Error::Api(ApiError {
                    http_status: status,
                    rpc_status: e.status,
                    message: redact(
                        if e.message.is_empty() {
                            body.trim()
                        } else {
                            &e.message
                        },
                        self.config.all_keys(),
                    ),
                    key_fingerprint: Some(key.key.fingerprint().to_string()),
                })
            };
            match classify(status, error.as_ref()) {
                Verdict::Success => {
                    key.record.count(KeyCounter::Succeeded);
                    return Ok(Response {
                        body: body.into_bytes(),
                        key_fingerprint: key.key.fingerprint().to_string(),
                        attempts,
                    });
                }
                Verdict::RateLimited { delay_ms, per_day } => {
                    key.record.count(KeyCounter::Upstream429);
                    let now = clock::now_ms();
                    if per_day {
                        let unix = clock::unix_now_secs();
                        let wait_s = (clock::next_pacific_midnight(unix) - unix).max(1) as u64;
                        key.cool_down(now.saturating_add(wait_s * 1000), CooldownCause::PerDay);
                    } else {
                        // The delay comes from the wire: a day at most, whatever it says.
                        let delay = delay_ms
                            .unwrap_or(self.config.window_ms)
                            .clamp(1, MAX_COOLDOWN_MS);
                        key.cool_down(now.saturating_add(delay), CooldownCause::PerMinute);
                    }
                    last_failure = Some(api_error());
                }
                Verdict::KeyDead(reason) => {
                    key.record.count(match reason {
                        DisabledReason::ApiKeyInvalid => KeyCounter::InvalidKey,
                        _ => KeyCounter::PermissionDenied,
                    });
                    key.disable(reason);
                    last_failure = Some(api_error());
                }
                Verdict::Transient => {
                    key.record.count(KeyCounter::ServerError);
                    self.back_off(&mut retries, deadline, api_error(), &mut last_failure)?;
                }
                Verdict::Caller => {
                    key.record.count(KeyCounter::ClientError);
                    return Err(api_error());
                }
            }
        }
    }

    /// After a transient failure: gives up once the retries are spent or the backoff would
    /// outlast the deadline, otherwise sleeps for an exponentially growing, fully jittered time.
    fn back_off(
        &self,
        retries: &mut u32,
        deadline: u64,
        failure: Error,
        last_failure: &mut Option<Error>,
    ) -> Result<(), Error> {
        if *retries >= self.config.max_retries {
            return Err(failure);
        }
        let ceiling = self
            .config
            .retry_base_ms
            .saturating_mul(1u64 << (*retries).min(20))
            .min(self.config.retry_max_ms);
        let sleep = jitter_below(ceiling + 1);
        if clock::now_ms() + sleep >= deadline {
            return Err(failure);
        }
        *retries += 1;
        log::event(
            Level::Info,
            "retry",
            &[
                ("retry", Num(*retries as u64)),
                ("backoff_ms", Num(sleep)),
                ("after", Str(&failure.to_string())),
            ],
        );
        *last_failure = Some(failure);
        std::thread::sleep(Duration::from_millis(sleep));
        Ok(())
    }
}

/// The request must be a JSON object; it is sent as given, byte for byte.
fn check_request(request_json: &str) -> Result<(), Error> {
    serde_json::from_str::<serde::de::IgnoredAny>(request_json)
        .map_err(|e| Error::invalid_json("request_json", &e))?;
    if !request_json.trim_start().starts_with('{') {
        return Err(Error::invalid(
            "request_json",
            "must be a JSON object (a GenerateContentRequest)",
        ));
    }
    Ok(())
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
