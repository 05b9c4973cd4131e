//! Statistics: a snapshot of every key's and the pool's state and counters, as a serializable
//! value. Keys appear by fingerprint only.

use crate::clock;
use crate::pool::Pool;
use crate::store::layout::{K_COOLDOWN_CAUSE, K_COOLDOWN_UNTIL, LATENCY_BUCKETS_S};
use crate::store::{CooldownCause, KeyCounter, PoolCounter};
use serde::Serialize;
use std::sync::atomic::Ordering::Relaxed;

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

pub fn snapshot(pool: &Pool) -> Stats {
    let now = clock::now_ms();
    let keys = pool
        .keys()
        .map(|k| {
            let cell = &k.cell;
            let usage = cell.window().usage(now);
            let cool_until = cell.0.word(K_COOLDOWN_UNTIL).load(Relaxed);
            let cooling = cool_until > now;
            KeyStats {
                fingerprint: k.key.fingerprint().to_string(),
                tier: k.tier.as_str(),
                limit: cell.limit(),
                window_ms: cell.window_ms(),
                in_window: usage.in_window,
                in_flight: usage.in_flight,
                cooldown_remaining_ms: if cooling { cool_until - now } else { 0 },
                cooldown_cause: cooling.then(|| {
                    CooldownCause::from_word(cell.0.word(K_COOLDOWN_CAUSE).load(Relaxed)).as_str()
                }),
                disabled: k.disabled().map(|r| r.as_str()),
                admitted: cell.counter(KeyCounter::Admitted),
                succeeded: cell.counter(KeyCounter::Succeeded),
                refused: cell.counter(KeyCounter::Refused),
                upstream_429: cell.counter(KeyCounter::Upstream429),
                invalid_key: cell.counter(KeyCounter::InvalidKey),
                permission_denied: cell.counter(KeyCounter::PermissionDenied),
                server_errors: cell.counter(KeyCounter::ServerError),
                transport_errors: cell.counter(KeyCounter::Transport),
                timeouts: cell.counter(KeyCounter::Timeout),
                client_errors: cell.counter(KeyCounter::ClientError),
                retries: cell.counter(KeyCounter::Retries),
            }
        })
        .collect();
    let rec = pool.record();
    let mut cumulative = 0;
    let buckets = rec
        .latency_buckets()
        .into_iter()
        .enumerate()
        .map(|(i, n)| {
            cumulative += n;
            (
                LATENCY_BUCKETS_S.get(i).copied().unwrap_or(f64::INFINITY),
                cumulative,
            )
        })
        .collect();
    Stats {
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
    }
}

/// The snapshot as JSON (`+Inf` bucket bound written as the string "+Inf").
pub fn snapshot_json(pool: &Pool) -> String {
    let mut value = serde_json::to_value(snapshot(pool)).unwrap_or_default();
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
    value.to_string()
}
