//! Key state on a Redis server (or Valkey), shared by every process of every host that names
//! it: `GEMINI_ROTATOR_STATE=redis://[user:password@]host:port[/db]` (`rediss://` for TLS).
//!
//! - One round trip per admission and one per completion: each is one server-side script
//!   (`scripts`), atomic on the server, on the server's clock (`TIME` in the script, never
//!   below the record's high-water mark). Counters ride along: a record keeps its increments
//!   in this process and folds them into the next script it sends (and when it is read or
//!   dropped). The pool's counters are flushed at most once a second, and the round-robin
//!   cursor is this process's own (each process spreads its requests; the limits are shared).
//! - Exact: the rule of `limiter.rs` on a ring of `limit` slots per key; an in-flight slot of a
//!   dead process frees itself timeout + window after admission.
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
mod scripts;

pub use conn::{OnFailure, Target};

use super::{
    conflict, Enabled, InUse, KeyHandle, KeyRecord, KeySnapshot, KeySpec, PoolRecord, PoolSnapshot,
    Refusal, Store, StoredKey,
};
use crate::clock::Clock;
use crate::error::Error;
use crate::health::{CooldownCause, DisabledReason};
use crate::key::{fingerprint_of_id, Tier};
use crate::limiter::{Ticket, Usage, Window};
use crate::log::{self, Level, Value::Str};
use crate::metrics::counters::{
    latency_bucket, KeyCounter, PoolCounter, KEY_COUNTERS, LATENCY_BUCKETS_S, POOL_COUNTERS,
};
use crate::quota::Quota;
use conn::Connections;
use names::{KeyNames, Names};
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

    /// Reads a record's snapshot (folding `pending` in first); `None`: no such record.
    fn read(&self, names: &KeyNames, pending: &[(String, u64)]) -> Result<Option<Read>, Error> {
        read(&self.shared, names, pending)
    }

    /// Every key record's hash name.
    fn scan(&self) -> Result<Vec<String>, Error> {
        let pattern = self.shared.names.key_pattern();
        self.shared.run(|c| {
            let mut cursor = 0u64;
            let mut out = Vec::new();
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
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
}

/// A record's state as `read.lua` returns it.
struct Read {
    snapshot: KeySnapshot,
}

fn read(
    shared: &Shared,
    names: &KeyNames,
    pending: &[(String, u64)],
) -> Result<Option<Read>, Error> {
    let values: Vec<redis::Value> = shared.run(|c| {
        let mut inv = scripts::READ.key(&names.meta);
        inv.key(&names.ring).arg(KEY_COUNTERS);
        for (f, n) in pending {
            inv.arg(f).arg(*n);
        }
        inv.invoke(c)
    })?;
    if values.is_empty() {
        return Ok(None);
    }
    let num = |i: usize| -> u64 {
        redis::from_redis_value::<i64>(&values[i]).map_or(0, |v| v.max(0) as u64)
    };
    let now = num(0);
    let mut counters = [0; KEY_COUNTERS];
    for (i, c) in counters.iter_mut().enumerate() {
        *c = num(12 + i);
    }
    let cd = num(5);
    Ok(Some(Read {
        snapshot: KeySnapshot {
            tier: if num(4) == 1 { Tier::Paid } else { Tier::Free },
            quota: Quota::requests_per_window(num(1), num(2)),
            usage: Usage {
                in_window: num(9),
                in_flight: num(10),
            },
            cooldown_until: if cd == 0 {
                0
            } else {
                shared.local_time(cd, now)
            },
            cooldown_cause: CooldownCause::from_word(num(6)),
            disabled: DisabledReason::from_word(num(7)),
            counters,
        },
    }))
}

impl Store for RedisStore {
    fn key(&self, spec: &KeySpec) -> Result<KeyHandle, Error> {
        let record = Arc::new(RedisKey {
            shared: self.shared.clone(),
            names: self.shared.names.key(&spec.id),
            spec: spec.clone(),
            registered: AtomicBool::new(false),
            pending: Default::default(),
            local: match self.shared.target.on_failure {
                OnFailure::Fail => None,
                OnFailure::Local { share } => Some(LocalWindow::new(
                    (spec.quota.limit / share).max(1),
                    spec.quota.window_ms(),
                    spec.max_inflight_ms,
                )),
            },
        });
        // Register now if Redis answers (a conflicting quota is an error now); if it does not,
        // on first use.
        if let Err(e @ Error::Config { .. }) = record.register(false) {
            return Err(e);
        }
        Ok(KeyHandle {
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
        for meta in self.scan()? {
            let Some(id) = names::key_id_of(&meta) else {
                continue;
            };
            if let Some(r) = self.read(&self.shared.names.key(&id), &[])? {
                out.push(StoredKey {
                    id,
                    fingerprint: fingerprint_of_id(&id),
                    snapshot: r.snapshot,
                });
            }
        }
        Ok(out)
    }

    fn enable(&self, fingerprint: &str) -> Result<Enabled, Error> {
        for meta in self.scan()? {
            let Some(id) = names::key_id_of(&meta) else {
                continue;
            };
            if fingerprint_of_id(&id) == fingerprint {
                let was: i64 = self
                    .shared
                    .run(|c| scripts::HEALTH.key(&meta).arg("enable").invoke(c))?;
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
}

/// A key's record on Redis.
struct RedisKey {
    shared: Arc<Shared>,
    names: KeyNames,
    spec: KeySpec,
    registered: AtomicBool,
    /// Counter increments not yet sent, by counter.
    pending: [AtomicU64; KEY_COUNTERS],
    /// With `OnFailure::Local`: this process's window while Redis does not answer.
    local: Option<LocalWindow>,
}

/// What a registration found.
enum Registered {
    /// The record admits from this server time on (0: at once); the server's time then.
    From { until: u64, now: u64 },
}

impl RedisKey {
    /// Creates or checks the record; `lost`: it was registered and is gone.
    fn register(&self, lost: bool) -> Result<Registered, Error> {
        let born = self.shared.epoch()?;
        let spec = &self.spec;
        let v: Vec<u64> = self.shared.run(|c| {
            scripts::REGISTER
                .key(&self.names.meta)
                .key(&self.names.ring)
                .arg(spec.quota.limit)
                .arg(spec.quota.window_ms())
                .arg(spec.max_inflight_ms)
                .arg(matches!(spec.tier, Tier::Paid) as u8)
                .arg(&spec.fingerprint)
                .arg(lost as u8)
                .arg(born)
                .invoke(c)
        })?;
        if v[0] == 1 {
            return Err(conflict(
                spec,
                Quota::requests_per_window(v[1], v[2]),
                "another process sharing this Redis",
            ));
        }
        self.registered.store(true, Relaxed);
        Ok(Registered::From {
            until: v[1],
            now: v[2],
        })
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

    fn admit_remote(&self) -> Result<Result<Ticket, Refusal>, Error> {
        if !self.registered.load(Relaxed) {
            let Registered::From { until, now } = self.register(false)?;
            if until > now {
                return Ok(Err(Refusal::Until(self.shared.local_time(until, now))));
            }
        }
        let pending = self.take_pending();
        let result: Result<Vec<i64>, Error> = self.shared.run(|c| {
            let mut inv = scripts::ADMIT.key(&self.names.meta);
            inv.key(&self.names.ring);
            for (f, n) in &pending {
                inv.arg(f).arg(*n);
            }
            inv.invoke(c)
        });
        let v = match result {
            Ok(v) => v,
            Err(e) => {
                self.give_back(&pending);
                return Err(e);
            }
        };
        let at = |i: usize| v.get(i).copied().unwrap_or(0).max(0) as u64;
        Ok(match v.first() {
            Some(0) => Ok(Ticket::new(at(1), at(2))),
            Some(1) => Err(Refusal::Until(self.shared.local_time(at(1), at(2)))),
            Some(2) => Err(Refusal::Disabled(
                DisabledReason::from_word(at(1)).unwrap_or(DisabledReason::ApiKeyInvalid),
            )),
            _ => {
                // Gone since it was registered: Redis lost its data (or evicted the record).
                // Made again, held back for timeout + window.
                log::event(
                    Level::Warn,
                    "redis_record_lost",
                    &[("key", Str(&self.spec.fingerprint))],
                );
                *self.shared.epoch.lock().unwrap_or_else(|e| e.into_inner()) = None;
                self.give_back(&pending);
                let Registered::From { until, now } = self.register(true)?;
                Err(Refusal::Until(
                    self.shared.local_time(until.max(now + 1), now),
                ))
            }
        })
    }

    fn health(&self, op: &str, args: &[u64]) -> Result<i64, Error> {
        if !self.registered.load(Relaxed) {
            self.register(false)?;
        }
        self.shared.run(|c| {
            let mut inv = scripts::HEALTH.key(&self.names.meta);
            inv.arg(op);
            for a in args {
                inv.arg(*a);
            }
            inv.invoke(c)
        })
    }
}

impl KeyRecord for RedisKey {
    fn try_admit(&self, _now: u64) -> Result<Ticket, Refusal> {
        match self.admit_remote() {
            Ok(r) => r,
            Err(e) => match &self.local {
                Some(local) => local
                    .window()
                    .try_admit(self.shared.clock.now_ms())
                    .map(|t| Ticket::new(t.seq | LOCAL_TICKET, t.record))
                    .map_err(Refusal::Until),
                None => Err(Refusal::Store(e)),
            },
        }
    }

    fn complete(&self, ticket: Ticket, _now: u64) -> Result<(), Error> {
        if ticket.seq & LOCAL_TICKET != 0 {
            if let Some(local) = &self.local {
                local.window().complete(
                    Ticket::new(ticket.seq & !LOCAL_TICKET, ticket.record),
                    self.shared.clock.now_ms(),
                );
            }
            return Ok(());
        }
        let pending = self.take_pending();
        let result: Result<i64, Error> = self.shared.run(|c| {
            let mut inv = scripts::COMPLETE.key(&self.names.meta);
            inv.key(&self.names.ring).arg(ticket.seq).arg(ticket.record);
            for (f, n) in &pending {
                inv.arg(f).arg(*n);
            }
            inv.invoke(c)
        });
        if result.is_err() {
            self.give_back(&pending);
        }
        result.map(|_| ())
    }

    fn cool_down(&self, until: u64, cause: CooldownCause) -> Result<(), Error> {
        let delta = until.saturating_sub(self.shared.clock.now_ms());
        self.health("cool", &[delta, cause as u64]).map(|_| ())
    }

    fn disable(&self, reason: DisabledReason) -> Result<(), Error> {
        self.health("disable", &[reason as u64]).map(|_| ())
    }

    fn enable(&self) -> Result<Option<DisabledReason>, Error> {
        self.health("enable", &[])
            .map(|w| DisabledReason::from_word(w.max(0) as u64))
    }

    fn disabled(&self) -> Result<Option<DisabledReason>, Error> {
        let w: Option<u64> = self
            .shared
            .run(|c| redis::cmd("HGET").arg(&self.names.meta).arg("dis").query(c))?;
        Ok(DisabledReason::from_word(w.unwrap_or(0)))
    }

    fn count(&self, counter: KeyCounter) -> Result<(), Error> {
        self.pending[counter as usize].fetch_add(1, Relaxed);
        Ok(())
    }

    fn snapshot(&self, _now: u64) -> Result<KeySnapshot, Error> {
        let pending = self.take_pending();
        match read(&self.shared, &self.names, &pending) {
            Ok(Some(r)) => Ok(r.snapshot),
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
        let pending = self.take_pending();
        if !pending.is_empty() {
            // Best effort: a process that cannot reach Redis loses these statistics only.
            let _ = read(&self.shared, &self.names, &pending);
        }
    }
}

/// The local fallback: limiter.rs's window on this process's memory.
struct LocalWindow {
    head: AtomicU64,
    slots: Vec<AtomicU64>,
    window_ms: u64,
    max_inflight_ms: u64,
}

impl LocalWindow {
    fn new(limit: u64, window_ms: u64, max_inflight_ms: u64) -> LocalWindow {
        LocalWindow {
            head: AtomicU64::new(0),
            slots: (0..limit).map(|_| AtomicU64::new(0)).collect(),
            window_ms,
            max_inflight_ms,
        }
    }

    fn window(&self) -> Window<'_> {
        Window {
            head: &self.head,
            slots: &self.slots,
            window_ms: self.window_ms,
            max_inflight_ms: self.max_inflight_ms,
        }
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
