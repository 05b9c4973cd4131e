//! Key state on a Redis server (or Valkey), shared by every process of every host that names
//! it: `GEMINI_ROTATOR_STATE=redis://[user:password@]host:port[/db]` (`rediss://` for TLS).
//!
//! - One round trip per admission and one per completion: each is one server-side script
//!   (`scripts`), atomic on the server, on the server's clock (`TIME` in the script, never
//!   below the record's high-water mark). Counters ride along: a record keeps its increments
//!   in this process and folds them into the next script it sends (and when it is read or
//!   dropped). The pool's counters are flushed at most once a second, and the round-robin
//!   cursor is this process's own (each process spreads its requests; the limits are shared).
//! - Exact: per (quota group, model) record, the rule of `limiter.rs` on a ring of `limit`
//!   request slots, a Pacific-day count and a ring of token slots, admitted all or nothing in
//!   one script; an in-flight slot of a dead process frees itself timeout + window after
//!   admission.
//! - Times: the store's time is this host's clock; a script answers with the server's time
//!   too, and every time it names is converted to this host's by that difference (hosts'
//!   clocks need not agree with each other or with the server).
//! - Restarted empty: a record that vanished, or one created in a generation younger than
//!   timeout + window (`names::Names::epoch`), admits nothing until timeout + window has
//!   passed, so requests admitted before the loss cannot be doubled.
//! - Failures: a call that Redis cannot answer (unreachable, or no answer within the timeout)
//!   fails with [`Error::State`] naming the address, never the password; or, with
//!   `GEMINI_ROTATOR_REDIS_ON_FAILURE=local:N`, admits on a window of this process held to
//!   1/N of the limit until Redis answers again. A pool made while Redis is down works as soon
//!   as it is up: records register on first use.

mod conn;
mod names;
mod pins;
mod scripts;

pub use conn::{OnFailure, Target};

use super::group::{token_geometry, QuotaCell};
use super::{
    conflict, Enabled, InUse, KeyHandle, KeyRecord, KeySnapshot, KeySpec, LimitKind, Moment,
    PoolRecord, PoolSnapshot, QuotaHandle, QuotaRecord, QuotaSnapshot, QuotaSpec, QuotaTicket,
    Refusal, Store, StoredKey, TokenTickets,
};
use crate::clock::Clock;
use crate::error::Error;
use crate::health::{CooldownCause, DisabledReason};
use crate::key::{fingerprint_of_id, hex, KeyId, Tier};
use crate::limiter::{Ticket, Usage};
use crate::log::{self, Level, Value::Str};
use crate::metrics::counters::{
    latency_bucket, KeyCounter, PoolCounter, KEY_COUNTERS, LATENCY_BUCKETS_S, POOL_COUNTERS,
};
use crate::quota::{Limits, Quota};
use conn::Connections;
use names::{Names, QuotaNames};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Marks a ticket of the local fallback window (a Redis ticket's `seq` never gets this high).
const LOCAL_TICKET: u64 = 1 << 63;
/// How often at most a pool's counters are written to Redis.
const POOL_FLUSH_MS: u64 = 1000;

/// What every record of one store shares.
struct Shared {
    target: Target,
    names: Names,
    conns: Connections,
    clock: Arc<dyn Clock>,
    /// The generation's start (server time), once read.
    epoch: Mutex<Option<u64>>,
    checked_policy: AtomicBool,
}

impl Shared {
    /// Runs `f` on a connection; a failure is a state error naming the address.
    fn run<T>(
        &self,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let result = self.conns.with(f);
        if result.is_ok() && !self.checked_policy.load(Relaxed) {
            self.check_policy();
        }
        result.map_err(|e| {
            if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() {
                self.conns.reset();
            }
            self.error(&e)
        })
    }

    fn error(&self, e: &redis::RedisError) -> Error {
        let detail = e.to_string();
        let why = if e.is_timeout() {
            format!("no answer within {} ms", self.target.timeout_ms)
        } else if e.is_io_error() || e.is_connection_refusal() || e.is_connection_dropped() {
            format!("unreachable ({detail})")
        } else if credentials(e) {
            format!(
                "refused the credentials of {} ({detail})",
                self.target.setting
            )
        } else {
            detail
        };
        Error::State {
            message: format!("Redis at {}: {why}", self.target.address()),
        }
    }

    /// Warns once if Redis may evict keys: an evicted ring silently frees its slots.
    fn check_policy(&self) {
        self.checked_policy.store(true, Relaxed);
        let policy: redis::RedisResult<Vec<String>> = self.conns.with(|c| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("maxmemory-policy")
                .query(c)
        });
        // Managed services may refuse CONFIG: then nothing can be said.
        if let Ok(v) = policy {
            if let Some(p) = v.get(1).filter(|p| p.as_str() != "noeviction") {
                log::event(
                    Level::Warn,
                    "redis_may_evict",
                    &[
                        ("address", Str(&self.target.address())),
                        ("maxmemory_policy", Str(p)),
                        (
                            "advice",
                            Str("set maxmemory-policy noeviction: an evicted record frees its slots and lets more than the limit through"),
                        ),
                    ],
                );
            }
        }
    }

    /// When this Redis's generation began (server time), read once.
    fn epoch(&self) -> Result<u64, Error> {
        if let Some(e) = *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(e);
        }
        let name = self.names.epoch();
        let (born, _now): (u64, u64) = self.run(|c| {
            scripts::EPOCH
                .key(&name)
                .invoke(c)
                .map(|v: Vec<u64>| (v[0], v[1]))
        })?;
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) = Some(born);
        Ok(born)
    }

    /// A server time `t` read when the server's time was `server_now`, on this host's clock.
    fn local_time(&self, t: u64, server_now: u64) -> u64 {
        let now = self.clock.now_ms();
        if t >= server_now {
            now.saturating_add(t - server_now)
        } else {
            now.saturating_sub(server_now - t).max(1)
        }
    }
}

fn credentials(e: &redis::RedisError) -> bool {
    e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

/// The Redis store.
pub struct RedisStore {
    shared: Arc<Shared>,
}

impl RedisStore {
    /// A store on `target`. It connects now to check what only the server can (credentials,
    /// the database number) and reports those as configuration errors; a server that does not
    /// answer is no error yet: records register when it does.
    pub fn open(target: &Target, clock: Arc<dyn Clock>) -> Result<RedisStore, Error> {
        let shared = Arc::new(Shared {
            conns: Connections::new(target)?,
            names: Names::new(&target.prefix),
            target: target.clone(),
            clock,
            epoch: Mutex::new(None),
            checked_policy: AtomicBool::new(false),
        });
        let name = shared.names.epoch();
        match shared
            .conns
            .with(|c| scripts::EPOCH.key(&name).invoke::<Vec<u64>>(c))
        {
            Ok(v) => {
                *shared.epoch.lock().unwrap_or_else(|e| e.into_inner()) = Some(v[0]);
                shared.check_policy();
            }
            Err(e) if credentials(&e) || e.to_string().contains("DB index") => {
                return Err(Error::config(
                    target.setting.clone(),
                    format!("Redis at {} refused this connection: {e}", target.address()),
                ));
            }
            Err(e) => log::event(
                Level::Warn,
                "redis_unavailable",
                &[("error", Str(&shared.error(&e).to_string()))],
            ),
        }
        Ok(RedisStore { shared })
    }

    /// Every hash name that `pattern` matches.
    fn scan(&self, pattern: &str) -> Result<Vec<String>, Error> {
        self.shared.run(|c| {
            let mut cursor = 0u64;
            let mut out = Vec::new();
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query(c)?;
                out.extend(batch);
                if next == 0 {
                    return Ok(out);
                }
                cursor = next;
            }
        })
    }

    fn key_ids(&self) -> Result<Vec<KeyId>, Error> {
        Ok(self
            .scan(&self.shared.names.key_pattern())?
            .iter()
            .filter_map(|m| names::id_of(m))
            .collect())
    }
}

/// A group digest from its hex form (as the records store it).
fn digest_of_hex(hex: &str) -> [u8; 16] {
    let mut id = [0u8; 16];
    for (i, b) in id.iter_mut().enumerate() {
        *b = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    id
}

fn tier_word(tier: Tier) -> u8 {
    matches!(tier, Tier::Paid) as u8
}

fn tier_of(w: u64) -> Tier {
    if w == 1 {
        Tier::Paid
    } else {
        Tier::Free
    }
}

/// Reads a key record (folding `pending` in first); `None`: no such record.
fn read_key(
    shared: &Shared,
    meta: &str,
    pending: &[(String, u64)],
) -> Result<Option<KeySnapshot>, Error> {
    let values: Vec<redis::Value> = shared.run(|c| {
        let mut inv = scripts::KEY.key(meta);
        inv.arg("read").arg(KEY_COUNTERS);
        for (f, n) in pending {
            inv.arg(f).arg(*n);
        }
        inv.invoke(c)
    })?;
    if values.len() < 3 {
        return Ok(None);
    }
    let num = |i: usize| -> u64 {
        values
            .get(i)
            .and_then(|v| redis::from_redis_value::<i64>(v).ok())
            .unwrap_or(0)
            .max(0) as u64
    };
    let group: String = redis::from_redis_value(&values[2]).unwrap_or_default();
    let mut counters = [0u64; KEY_COUNTERS];
    for (i, c) in counters.iter_mut().enumerate() {
        *c = num(3 + i);
    }
    Ok(Some(KeySnapshot {
        tier: tier_of(num(0)),
        group: digest_of_hex(&group),
        disabled: DisabledReason::from_word(num(1)),
        counters,
    }))
}

/// Reads a quota record; `None`: no such record.
fn read_quota(
    shared: &Shared,
    names: &QuotaNames,
    at: &Moment,
) -> Result<Option<QuotaSnapshot>, Error> {
    let values: Vec<redis::Value> = shared.run(|c| {
        scripts::READ
            .key(&names.meta)
            .key(&names.rate)
            .key(&names.tokens)
            .invoke(c)
    })?;
    if values.len() < 21 {
        return Ok(None);
    }
    let num = |i: usize| -> u64 {
        redis::from_redis_value::<i64>(&values[i])
            .unwrap_or(0)
            .max(0) as u64
    };
    let text = |i: usize| -> String { redis::from_redis_value(&values[i]).unwrap_or_default() };
    let server_now = num(0);
    let local = |t: u64| {
        if t == 0 {
            0
        } else {
            shared.local_time(t, server_now)
        }
    };
    // Fields from 1: cr, win, cdly, ctok, r, d, tk, unit, day, cnt, cd, cdc, un, fb, tier.
    let window = num(2);
    let limits = |rate: u64, daily: u64, tokens: u64| Limits {
        rate: Quota::requests_per_window(rate, window),
        daily: (daily > 0).then(|| Quota::requests_per_day(daily)),
        tokens: (tokens > 0).then(|| Quota::tokens_per_window(tokens, window)),
    };
    let _configured = limits(num(1), num(3), num(4));
    Ok(Some(QuotaSnapshot {
        group: digest_of_hex(&text(19)),
        model: text(20),
        tier: tier_of(num(15)),
        limits: limits(num(5), num(6), num(7)),
        usage: Usage {
            in_window: num(16),
            in_flight: num(17),
        },
        today: if num(9) == at.day { num(10) } else { 0 },
        tokens_in_window: num(18) * num(8),
        cooldown_until: local(num(11)),
        cooldown_cause: CooldownCause::from_word(num(12)),
        unavailable_until: local(num(13)),
        fallbacks: num(14),
    }))
}

impl Store for RedisStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error> {
        let record = Arc::new(RedisKey {
            shared: self.shared.clone(),
            meta: self.shared.names.key(&spec.id),
            spec: spec.clone(),
            registered: AtomicBool::new(false),
            pending: Default::default(),
            last_flush: AtomicU64::new(self.shared.clock.now_ms()),
        });
        // Register now if Redis answers; if it does not, on first use.
        let _ = record.register();
        Ok(KeyHandle {
            record,
            in_use: Arc::new(InUse),
        })
    }

    fn quota(&self, spec: &QuotaSpec) -> Result<QuotaHandle, Error> {
        let record = Arc::new(RedisQuota {
            shared: self.shared.clone(),
            names: self.shared.names.quota(&spec.id),
            spec: spec.clone(),
            registered: AtomicBool::new(false),
            local: match self.shared.target.on_failure {
                OnFailure::Fail => None,
                OnFailure::Local { share } => Some(local_cell(spec, share)),
            },
            streak_seen: AtomicBool::new(false),
        });
        // Register now if Redis answers (conflicting limits are an error now); if it does
        // not, on first use.
        if let Err(e @ Error::Config { .. }) = record.register(false) {
            return Err(e);
        }
        Ok(QuotaHandle {
            record,
            in_use: Arc::new(InUse),
        })
    }

    fn pool(&self, id: &[u8; 16]) -> Result<Arc<dyn PoolRecord>, Error> {
        Ok(Arc::new(RedisPool {
            shared: self.shared.clone(),
            name: self.shared.names.pool(id),
            // Each process starts its own round robin somewhere else.
            cursor: AtomicU64::new(self.shared.clock.now_ms().wrapping_mul(0x9E37_79B9) >> 7),
            pending: Mutex::new(PoolPending::default()),
            last_flush: AtomicU64::new(self.shared.clock.now_ms()),
        }))
    }

    fn now(&self) -> u64 {
        self.shared.clock.now_ms()
    }

    fn all_keys(&self) -> Result<Vec<StoredKey>, Error> {
        let mut out = Vec::new();
        for id in self.key_ids()? {
            if let Some(snapshot) = read_key(&self.shared, &self.shared.names.key(&id), &[])? {
                out.push(StoredKey {
                    id,
                    fingerprint: fingerprint_of_id(&id),
                    snapshot,
                });
            }
        }
        Ok(out)
    }

    fn all_quotas(&self, at: &Moment) -> Result<Vec<QuotaSnapshot>, Error> {
        let mut out = Vec::new();
        for meta in self.scan(&self.shared.names.quota_pattern())? {
            let Some(id) = names::id_of(&meta) else {
                continue;
            };
            if let Some(s) = read_quota(&self.shared, &self.shared.names.quota(&id), at)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn enable(&self, fingerprint: &str) -> Result<Enabled, Error> {
        for id in self.key_ids()? {
            if fingerprint_of_id(&id) == fingerprint {
                let meta = self.shared.names.key(&id);
                let was: i64 = self
                    .shared
                    .run(|c| scripts::KEY.key(&meta).arg("enable").invoke(c))?;
                return Ok(Enabled::Enabled {
                    was: DisabledReason::from_word(was.max(0) as u64),
                });
            }
        }
        Ok(Enabled::NoSuchKey)
    }

    fn used_bytes(&self) -> Option<u64> {
        None
    }

    fn describe(&self) -> String {
        self.shared.target.address()
    }

    fn pins(&self) -> Arc<dyn super::PinRecord> {
        Arc::new(pins::RedisPins {
            shared: self.shared.clone(),
        })
    }
}

/// A key's own record on Redis: tier, group, disabled reason, counters.
struct RedisKey {
    shared: Arc<Shared>,
    meta: String,
    spec: KeySpec,
    registered: AtomicBool,
    /// Counter increments not yet sent, by counter.
    pending: [AtomicU64; KEY_COUNTERS],
    last_flush: AtomicU64,
}

impl RedisKey {
    fn register(&self) -> Result<(), Error> {
        let pending = self.take_pending();
        let result: Result<i64, Error> = self.shared.run(|c| {
            let mut inv = scripts::KEY.key(&self.meta);
            inv.arg("register")
                .arg(tier_word(self.spec.tier))
                .arg(hex(&self.spec.group))
                .arg(&self.spec.fingerprint);
            for (f, n) in &pending {
                inv.arg(f).arg(*n);
            }
            inv.invoke(c)
        });
        match result {
            Ok(_) => {
                self.registered.store(true, Relaxed);
                Ok(())
            }
            Err(e) => {
                self.give_back(&pending);
                Err(e)
            }
        }
    }

    /// The pending counter increments, taken (to be given back if the call fails).
    fn take_pending(&self) -> Vec<(String, u64)> {
        self.pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| match p.swap(0, Relaxed) {
                0 => None,
                n => Some((format!("c{i}"), n)),
            })
            .collect()
    }

    fn give_back(&self, pending: &[(String, u64)]) {
        for (field, n) in pending {
            if let Ok(i) = field[1..].parse::<usize>() {
                self.pending[i].fetch_add(*n, Relaxed);
            }
        }
    }

    /// Runs a key op (registering first if need be), folding the pending counters in.
    fn op(&self, op: &str, args: &[u64]) -> Result<i64, Error> {
        if !self.registered.load(Relaxed) {
            self.register()?;
        }
        let pending = self.take_pending();
        let result = self.shared.run(|c| {
            let mut inv = scripts::KEY.key(&self.meta);
            inv.arg(op);
            for a in args {
                inv.arg(*a);
            }
            for (f, n) in &pending {
                inv.arg(f).arg(*n);
            }
            inv.invoke(c)
        });
        if result.is_err() {
            self.give_back(&pending);
        }
        result
    }
}

impl KeyRecord for RedisKey {
    fn disable(&self, reason: DisabledReason) -> Result<(), Error> {
        self.op("disable", &[reason as u64]).map(|_| ())
    }

    fn enable(&self) -> Result<Option<DisabledReason>, Error> {
        self.op("enable", &[])
            .map(|w| DisabledReason::from_word(w.max(0) as u64))
    }

    fn disabled(&self) -> Result<Option<DisabledReason>, Error> {
        let w: Option<u64> = self
            .shared
            .run(|c| redis::cmd("HGET").arg(&self.meta).arg("dis").query(c))?;
        Ok(DisabledReason::from_word(w.unwrap_or(0)))
    }

    fn count(&self, counter: KeyCounter) -> Result<(), Error> {
        self.pending[counter as usize].fetch_add(1, Relaxed);
        let now = self.shared.clock.now_ms();
        if now.saturating_sub(self.last_flush.load(Relaxed)) >= POOL_FLUSH_MS {
            self.last_flush.store(now, Relaxed);
            // Statistics only: a failure keeps the increments for the next flush.
            let _ = self.register();
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<KeySnapshot, Error> {
        if !self.registered.load(Relaxed) {
            self.register()?;
        }
        let pending = self.take_pending();
        match read_key(&self.shared, &self.meta, &pending) {
            Ok(Some(s)) => Ok(s),
            Ok(None) => {
                self.give_back(&pending);
                Err(Error::State {
                    message: format!(
                        "Redis at {} has no record of key {}",
                        self.shared.target.address(),
                        self.spec.fingerprint
                    ),
                })
            }
            Err(e) => {
                self.give_back(&pending);
                Err(e)
            }
        }
    }
}

impl Drop for RedisKey {
    fn drop(&mut self) {
        if self.pending.iter().any(|p| p.load(Relaxed) > 0) {
            // Best effort: a process that cannot reach Redis loses these statistics only.
            let _ = self.register();
        }
    }
}

/// With `OnFailure::Local`: a quota record of this process's memory, every limit held to
/// 1/`share`, which admits while Redis does not answer.
fn local_cell(spec: &QuotaSpec, share: u64) -> QuotaCell {
    let part = |q: Quota| Quota {
        limit: (q.limit / share).max(1),
        ..q
    };
    let limits = Limits {
        rate: part(spec.limits.rate),
        daily: spec.limits.daily.map(part),
        tokens: spec.limits.tokens.map(part),
    };
    let cell = QuotaCell(super::memory::block_words(QuotaCell::words_for(&limits)));
    cell.init(&limits, spec.tier, &spec.group, &spec.model);
    cell.cover_timeout(spec.max_inflight_ms);
    cell
}

/// A (quota group, model) record on Redis.
struct RedisQuota {
    shared: Arc<Shared>,
    names: QuotaNames,
    spec: QuotaSpec,
    registered: AtomicBool,
    local: Option<QuotaCell>,
    /// Whether this process saw a capacity streak it has not reset yet, so that a success
    /// costs no extra round trip (the rule of one per admission and one per completion); a
    /// streak another process began is reset by that process's next success.
    streak_seen: AtomicBool,
}

/// What a registration found: the record admits from this server time on (0: at once); the
/// server's time then.
struct Registered {
    until: u64,
    now: u64,
}

impl RedisQuota {
    /// Creates or checks the record; `lost`: it was registered and is gone.
    fn register(&self, lost: bool) -> Result<Registered, Error> {
        let born = self.shared.epoch()?;
        let spec = &self.spec;
        let l = &spec.limits;
        let tokens = l.tokens.map_or(0, |q| q.limit);
        let (slots, unit) = token_geometry(tokens);
        let v: Vec<u64> = self.shared.run(|c| {
            scripts::REGISTER
                .key(&self.names.meta)
                .key(&self.names.rate)
                .key(&self.names.tokens)
                .arg(l.rate.limit)
                .arg(l.rate.window_ms())
                .arg(l.daily.map_or(0, |q| q.limit))
                .arg(tokens)
                .arg(unit)
                .arg(slots)
                .arg(spec.max_inflight_ms)
                .arg(tier_word(spec.tier))
                .arg(hex(&spec.group))
                .arg(&spec.model)
                .arg(lost as u8)
                .arg(born)
                .invoke(c)
        })?;
        if v[0] == 1 {
            let existing = Limits {
                rate: Quota::requests_per_window(v[1], v[2]),
                daily: (v[3] > 0).then(|| Quota::requests_per_day(v[3])),
                tokens: (v[4] > 0).then(|| Quota::tokens_per_window(v[4], v[2])),
            };
            return Err(conflict(
                spec,
                existing,
                "another process sharing this Redis",
            ));
        }
        self.registered.store(true, Relaxed);
        Ok(Registered {
            until: v[1],
            now: v[2],
        })
    }

    fn admit_remote(
        &self,
        at: &Moment,
        tokens: u64,
    ) -> Result<Result<QuotaTicket, Refusal>, Error> {
        if !self.registered.load(Relaxed) {
            let Registered { until, now } = self.register(false)?;
            if until > now {
                return Ok(Err(Refusal::Until(self.shared.local_time(until, now))));
            }
        }
        let v: Vec<i64> = self.shared.run(|c| {
            scripts::ADMIT
                .key(&self.names.meta)
                .key(&self.names.rate)
                .key(&self.names.tokens)
                .arg(at.day)
                .arg(tokens)
                .invoke(c)
        })?;
        let n = |i: usize| v.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(match v.first() {
            Some(0) => {
                let admitted = n(1);
                let seqs: Vec<Ticket> = (3..v.len()).map(|i| Ticket::new(n(i), admitted)).collect();
                Ok(QuotaTicket {
                    rate: Ticket::new(n(2), admitted),
                    tokens: match seqs.len() {
                        0 => TokenTickets::None,
                        1 => TokenTickets::One(seqs[0]),
                        _ => TokenTickets::Many(seqs),
                    },
                })
            }
            Some(1) => Err(Refusal::Until(self.shared.local_time(n(1), n(2)))),
            Some(4) => Err(Refusal::Unavailable(self.shared.local_time(n(1), n(2)))),
            Some(5) => Err(Refusal::Until(at.day_ends)),
            _ => {
                // Gone since it was registered: Redis lost its data (or evicted the record).
                // Made again, held back for timeout + window.
                log::event(
                    Level::Warn,
                    "redis_record_lost",
                    &[
                        ("group", Str(&self.spec.group_name)),
                        ("model", Str(&self.spec.model)),
                    ],
                );
                *self.shared.epoch.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let Registered { until, now } = self.register(true)?;
                Err(Refusal::Until(
                    self.shared.local_time(until.max(now + 1), now),
                ))
            }
        })
    }

    fn op(&self, op: &str, args: &[String]) -> Result<i64, Error> {
        if !self.registered.load(Relaxed) {
            self.register(false)?;
        }
        self.shared.run(|c| {
            let mut inv = scripts::QUOTA_OPS.key(&self.names.meta);
            inv.arg(op);
            for a in args {
                inv.arg(a);
            }
            inv.invoke(c)
        })
    }

    fn delta(&self, until: u64) -> String {
        until.saturating_sub(self.shared.clock.now_ms()).to_string()
    }
}

impl QuotaRecord for RedisQuota {
    fn try_admit(&self, at: &Moment, tokens: u64) -> Result<QuotaTicket, Refusal> {
        match self.admit_remote(at, tokens) {
            Ok(r) => r,
            Err(e) => match &self.local {
                Some(local) => local.try_admit(at, tokens).map(|mut t| {
                    t.rate.seq |= LOCAL_TICKET;
                    t
                }),
                None => Err(Refusal::Store(e)),
            },
        }
    }

    fn complete(
        &self,
        ticket: QuotaTicket,
        now: u64,
        prompt_tokens: Option<u64>,
    ) -> Result<(), Error> {
        if ticket.rate.seq & LOCAL_TICKET != 0 {
            if let Some(local) = &self.local {
                let mut t = ticket;
                t.rate.seq &= !LOCAL_TICKET;
                local.complete(t, now, prompt_tokens);
            }
            return Ok(());
        }
        let _: i64 = self.shared.run(|c| {
            let mut inv = scripts::COMPLETE.key(&self.names.meta);
            inv.key(&self.names.rate)
                .key(&self.names.tokens)
                .arg(ticket.rate.record)
                .arg(ticket.rate.seq)
                .arg(prompt_tokens.map_or(-1, |n| n.min(i64::MAX as u64) as i64));
            for t in ticket.tokens.as_slice() {
                inv.arg(t.seq);
            }
            inv.invoke(c)
        })?;
        Ok(())
    }

    fn cool_down(&self, until: u64, cause: CooldownCause) -> Result<(), Error> {
        self.op("cool", &[self.delta(until), (cause as u64).to_string()])
            .map(|_| ())
    }

    fn mark_unavailable(&self, until: u64) -> Result<(), Error> {
        self.op("unavailable", &[self.delta(until)]).map(|_| ())
    }

    fn lower_limit(&self, kind: LimitKind, value: u64) -> Result<bool, Error> {
        let field = match kind {
            LimitKind::Rate => "r",
            LimitKind::Daily => "d",
            LimitKind::Tokens => "tk",
        };
        self.op("lower", &[field.to_string(), value.to_string()])
            .map(|v| v == 1)
    }

    fn capacity_streak(&self, bump: bool) -> Result<u32, Error> {
        let streak = self
            .op("streak", &[(bump as u8).to_string()])
            .map(|v| v.clamp(0, u32::MAX as i64) as u32)?;
        if bump || streak > 0 {
            self.streak_seen.store(true, Relaxed);
        }
        Ok(streak)
    }

    fn reset_capacity(&self) -> Result<(), Error> {
        if !self.streak_seen.swap(false, Relaxed) {
            return Ok(());
        }
        self.op("reset", &[]).map(|_| ()).inspect_err(|_| {
            // Not reset: the next success tries again.
            self.streak_seen.store(true, Relaxed);
        })
    }

    fn count_fallback(&self) -> Result<(), Error> {
        self.op("fallback", &[]).map(|_| ())
    }

    fn snapshot(&self, at: &Moment) -> Result<QuotaSnapshot, Error> {
        if !self.registered.load(Relaxed) {
            self.register(false)?;
        }
        read_quota(&self.shared, &self.names, at)?.ok_or_else(|| Error::State {
            message: format!(
                "Redis at {} has no record of quota group {} and model {}",
                self.shared.target.address(),
                self.spec.group_name,
                self.spec.model
            ),
        })
    }
}

/// A pool's counter increments not yet written.
#[derive(Default)]
struct PoolPending {
    counters: [u64; POOL_COUNTERS],
    buckets: [u64; LATENCY_BUCKETS_S.len() + 1],
}

impl PoolPending {
    fn take(&mut self) -> Vec<(String, u64)> {
        let c = self
            .counters
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("p{i}"), *n));
        let b = self
            .buckets
            .iter()
            .enumerate()
            .map(|(i, n)| (format!("b{i}"), *n));
        let out = c.chain(b).filter(|(_, n)| *n > 0).collect();
        *self = PoolPending::default();
        out
    }

    fn give_back(&mut self, pending: &[(String, u64)]) {
        for (field, n) in pending {
            let i: usize = field[1..].parse().unwrap_or(0);
            match field.as_bytes()[0] {
                b'p' => self.counters[i] += n,
                _ => self.buckets[i] += n,
            }
        }
    }
}

/// A pool's record on Redis.
struct RedisPool {
    shared: Arc<Shared>,
    name: String,
    cursor: AtomicU64,
    pending: Mutex<PoolPending>,
    last_flush: AtomicU64,
}

impl RedisPool {
    fn pending(&self) -> std::sync::MutexGuard<'_, PoolPending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the pending increments and reads every field back.
    fn flush(&self) -> Result<Vec<(String, u64)>, Error> {
        let pending = self.pending().take();
        self.last_flush.store(self.shared.clock.now_ms(), Relaxed);
        let result: Result<Vec<(String, u64)>, Error> = self.shared.run(|c| {
            let mut inv = scripts::POOL.key(&self.name);
            for (f, n) in &pending {
                inv.arg(f).arg(*n);
            }
            inv.invoke(c)
        });
        if result.is_err() {
            self.pending().give_back(&pending);
        }
        result
    }

    fn maybe_flush(&self) {
        let now = self.shared.clock.now_ms();
        if now.saturating_sub(self.last_flush.load(Relaxed)) >= POOL_FLUSH_MS {
            // Statistics only: a failure keeps the increments for the next flush.
            let _ = self.flush();
        }
    }
}

impl PoolRecord for RedisPool {
    fn next_cursor(&self) -> Result<u64, Error> {
        Ok(self.cursor.fetch_add(1, Relaxed))
    }

    fn add(&self, counter: PoolCounter, n: u64) -> Result<(), Error> {
        self.pending().counters[counter as usize] += n;
        self.maybe_flush();
        Ok(())
    }

    fn observe_latency(&self, micros: u64) -> Result<(), Error> {
        {
            let mut p = self.pending();
            p.counters[PoolCounter::LatencyCount as usize] += 1;
            p.counters[PoolCounter::LatencySumMicros as usize] += micros;
            p.buckets[latency_bucket(micros)] += 1;
        }
        self.maybe_flush();
        Ok(())
    }

    fn snapshot(&self) -> Result<PoolSnapshot, Error> {
        let fields = self.flush()?;
        let mut snap = PoolSnapshot {
            counters: [0; POOL_COUNTERS],
            latency_buckets: vec![0; LATENCY_BUCKETS_S.len() + 1],
        };
        for (f, n) in fields {
            let i: usize = f[1..].parse().unwrap_or(usize::MAX);
            match f.as_bytes().first() {
                Some(b'p') if i < POOL_COUNTERS => snap.counters[i] = n,
                Some(b'b') if i < snap.latency_buckets.len() => snap.latency_buckets[i] = n,
                _ => {}
            }
        }
        Ok(snap)
    }
}

impl Drop for RedisPool {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}
