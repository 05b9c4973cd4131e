//! Statistics: what the pool counts ([`counters`]), a snapshot of every key's and the pool's
//! state and counters as a serializable value (here), and its Prometheus exposition
//! (`exposition`). Keys appear by fingerprint only.

pub mod counters;
mod exposition;

pub use exposition::prometheus;

use crate::error::Error;
use crate::pool::Pool;
use crate::store::KeySnapshot;
use counters::{KeyCounter, PoolCounter, LATENCY_BUCKETS_S};
use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct KeyStats {
    pub fingerprint: String,
    pub tier: &'static str,
    pub limit: u64,
    pub window_ms: u64,
    /// Requests counted in the current rolling window (finished or in flight).
    pub in_window: u64,
    pub in_flight: u64,
    /// Milliseconds left of a cooldown after a 429 (0: none).
    pub cooldown_remaining_ms: u64,
    pub cooldown_cause: Option<&'static str>,
    /// Why the key was disabled, if it was.
    pub disabled: Option<&'static str>,
    pub admitted: u64,
    pub succeeded: u64,
    pub refused: u64,
    pub upstream_429: u64,
    pub invalid_key: u64,
    pub permission_denied: u64,
    pub server_errors: u64,
    pub transport_errors: u64,
    pub timeouts: u64,
    pub client_errors: u64,
    pub retries: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LatencyStats {
    pub count: u64,
    pub sum_seconds: f64,
    /// (upper bound in seconds, count of attempts at or below it), cumulative; the last bound
    /// is `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PoolStats {
    pub requests: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub paid_fallbacks: u64,
    pub exhausted: u64,
    pub latency: LatencyStats,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub version: &'static str,
    pub state: String,
    pub keys: Vec<KeyStats>,
    pub pool: PoolStats,
}

/// The statistics of one key record, from its snapshot at `now` (a store time).
pub fn key_stats(fingerprint: String, k: &KeySnapshot, now: u64) -> KeyStats {
    let cooling = k.cooldown_until > now;
    KeyStats {
        fingerprint,
        tier: k.tier.as_str(),
        limit: k.quota.limit,
        window_ms: k.quota.window_ms(),
        in_window: k.usage.in_window,
        in_flight: k.usage.in_flight,
        cooldown_remaining_ms: if cooling { k.cooldown_until - now } else { 0 },
        cooldown_cause: cooling.then(|| k.cooldown_cause.as_str()),
        disabled: k.disabled.map(|r| r.as_str()),
        admitted: k.counter(KeyCounter::Admitted),
        succeeded: k.counter(KeyCounter::Succeeded),
        refused: k.counter(KeyCounter::Refused),
        upstream_429: k.counter(KeyCounter::Upstream429),
        invalid_key: k.counter(KeyCounter::InvalidKey),
        permission_denied: k.counter(KeyCounter::PermissionDenied),
        server_errors: k.counter(KeyCounter::ServerError),
        transport_errors: k.counter(KeyCounter::Transport),
        timeouts: k.counter(KeyCounter::Timeout),
        client_errors: k.counter(KeyCounter::ClientError),
        retries: k.counter(KeyCounter::Retries),
    }
}

pub fn snapshot(pool: &Pool) -> Result<Stats, Error> {
    let now = pool.now();
    let mut keys = Vec::new();
    for k in pool.keys() {
        let snapshot = k.record.snapshot(now)?;
        keys.push(key_stats(k.key.fingerprint().to_string(), &snapshot, now));
    }
    let rec = pool.record().snapshot()?;
    let mut cumulative = 0;
    let buckets = rec
        .latency_buckets
        .iter()
        .enumerate()
        .map(|(i, n)| {
            cumulative += n;
            (
                LATENCY_BUCKETS_S.get(i).copied().unwrap_or(f64::INFINITY),
                cumulative,
            )
        })
        .collect();
    Ok(Stats {
        version: env!("CARGO_PKG_VERSION"),
        state: pool.store().to_string(),
        keys,
        pool: PoolStats {
            requests: rec.counter(PoolCounter::Requests),
            succeeded: rec.counter(PoolCounter::Succeeded),
            failed: rec.counter(PoolCounter::Failed),
            paid_fallbacks: rec.counter(PoolCounter::PaidFallbacks),
            exhausted: rec.counter(PoolCounter::Exhausted),
            latency: LatencyStats {
                count: rec.counter(PoolCounter::LatencyCount),
                sum_seconds: rec.counter(PoolCounter::LatencySumMicros) as f64 / 1e6,
                buckets,
            },
        },
    })
}

/// The snapshot as JSON (`+Inf` bucket bound written as the string "+Inf").
pub fn snapshot_json(pool: &Pool) -> Result<String, Error> {
    let mut value = serde_json::to_value(snapshot(pool)?).unwrap_or_default();
    if let Some(buckets) = value
        .pointer_mut("/pool/latency/buckets")
        .and_then(|b| b.as_array_mut())
    {
        for b in buckets {
            if b.get(0).is_some_and(|v| v.is_null()) {
                b[0] = serde_json::Value::String("+Inf".into());
            }
        }
    }
    Ok(value.to_string())
}
