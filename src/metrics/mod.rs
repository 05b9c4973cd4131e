//! Statistics: what the pool counts ([`counters`]), a snapshot of every key's and the pool's
//! state and counters as a serializable value (here), and its Prometheus exposition
//! (`exposition`). Keys appear by fingerprint only.

pub mod counters;
mod exposition;

pub use exposition::prometheus;

use crate::error::Error;
use crate::pool::Pool;
use crate::store::{KeySnapshot, QuotaSnapshot};
use counters::{KeyCounter, PoolCounter, LATENCY_BUCKETS_S};
use serde::Serialize;

/// One key's statistics. `limit` .. `cooldown_cause` are its group's record of the pool's
/// default model (the same as `models[0]`), kept for readers of the schema before models.
#[derive(Clone, Debug, Serialize)]
pub struct KeyStats {
    pub fingerprint: String,
    pub tier: &'static str,
    /// The key's quota group: its project, or `key:` and the key's stored identity.
    pub group: String,
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
    /// Per model the pool (or, store-wide, any pool) has used: the key's group's record.
    pub models: Vec<KeyModelStats>,
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

/// A key's group's state for one model.
#[derive(Clone, Debug, Serialize)]
pub struct KeyModelStats {
    pub model: String,
    /// Requests per window in force, and the requests counted in the window now.
    pub rate_limit: u64,
    pub window_ms: u64,
    pub in_window: u64,
    pub in_flight: u64,
    /// Requests per Pacific day in force (`null`: none), and the requests counted today.
    pub daily_limit: Option<u64>,
    pub today: u64,
    /// Input tokens per window in force (`null`: none), and the tokens reserved in the window.
    pub token_limit: Option<u64>,
    pub tokens_in_window: u64,
    /// Milliseconds left of a cooldown (0: none) and its cause (`per_minute`, `per_day`,
    /// `capacity`).
    pub cooldown_remaining_ms: u64,
    pub cooldown_cause: Option<&'static str>,
    /// The model is not on the group's tier (a `limit: 0` answer), for this long still.
    pub unavailable: bool,
    pub unavailable_remaining_ms: u64,
    /// Calls the model served as another model's fallback on this group.
    pub fallbacks: u64,
}

/// Pool-wide statistics of one model.
#[derive(Clone, Debug, Serialize)]
pub struct ModelStats {
    pub model: String,
    /// Requests the pool's keys may still send today, over their groups (each counted once;
    /// groups without the model left out); `null` when some group has no daily limit.
    pub requests_left_today: Option<u64>,
    /// Calls this model served as another model's fallback.
    pub fallbacks: u64,
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
    /// Calls served by a fallback of the model they asked for.
    pub model_fallbacks: u64,
    pub exhausted: u64,
    pub latency: LatencyStats,
}

/// The statistics snapshot; its JSON is the schema documented in the README ("Observability").
#[derive(Clone, Debug, Serialize)]
pub struct Stats {
    pub version: &'static str,
    pub state: String,
    pub keys: Vec<KeyStats>,
    /// Per model the pool has used, the default first.
    pub models: Vec<ModelStats>,
    pub pool: PoolStats,
}

/// A group's record of one model at `now`.
pub fn key_model_stats(q: &QuotaSnapshot, now: u64) -> KeyModelStats {
    let cooling = q.cooldown_until > now;
    let unavailable = q.unavailable_until > now;
    KeyModelStats {
        model: q.model.clone(),
        rate_limit: q.limits.rate.limit,
        window_ms: q.limits.rate.window_ms(),
        in_window: q.usage.in_window,
        in_flight: q.usage.in_flight,
        daily_limit: q.limits.daily.map(|d| d.limit),
        today: q.today,
        token_limit: q.limits.tokens.map(|t| t.limit),
        tokens_in_window: q.tokens_in_window,
        cooldown_remaining_ms: if cooling { q.cooldown_until - now } else { 0 },
        cooldown_cause: cooling.then(|| q.cooldown_cause.as_str()),
        unavailable,
        unavailable_remaining_ms: if unavailable {
            q.unavailable_until - now
        } else {
            0
        },
        fallbacks: q.fallbacks,
    }
}

/// The statistics of one key record and its group's records of each model (`models`, the
/// first standing for the key's default model) at `now` (a store time).
pub fn key_stats(
    fingerprint: String,
    group: String,
    k: &KeySnapshot,
    models: Vec<KeyModelStats>,
) -> KeyStats {
    let first = models.first();
    KeyStats {
        fingerprint,
        tier: k.tier.as_str(),
        group,
        limit: first.map_or(0, |m| m.rate_limit),
        window_ms: first.map_or(0, |m| m.window_ms),
        in_window: first.map_or(0, |m| m.in_window),
        in_flight: first.map_or(0, |m| m.in_flight),
        cooldown_remaining_ms: first.map_or(0, |m| m.cooldown_remaining_ms),
        cooldown_cause: first.and_then(|m| m.cooldown_cause),
        disabled: k.disabled.map(|r| r.as_str()),
        models,
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

/// Pool-wide figures of one model from its groups' records (one per group).
pub fn model_stats(model: &str, groups: &[QuotaSnapshot], now: u64) -> ModelStats {
    let mut left = Some(0u64);
    for q in groups.iter().filter(|q| q.unavailable_until <= now) {
        left = match (left, q.limits.daily) {
            (Some(sum), Some(d)) => Some(sum + d.limit.saturating_sub(q.today)),
            _ => None,
        };
    }
    ModelStats {
        model: model.to_string(),
        requests_left_today: left,
        fallbacks: groups.iter().map(|q| q.fallbacks).sum(),
    }
}

pub fn snapshot(pool: &Pool) -> Result<Stats, Error> {
    let now = pool.now();
    let at = pool.moment(now);
    let used = pool.models_used();
    // Per model, per key: its group's record.
    let mut per_model: Vec<Vec<QuotaSnapshot>> = Vec::with_capacity(used.len());
    for m in &used {
        per_model.push(
            m.quotas
                .iter()
                .map(|q| q.snapshot(&at))
                .collect::<Result<_, _>>()?,
        );
    }
    let mut keys = Vec::new();
    for (i, k) in pool.keys().enumerate() {
        let snapshot = k.record.snapshot()?;
        let models = per_model
            .iter()
            .map(|records| key_model_stats(&records[i], now))
            .collect();
        keys.push(key_stats(
            k.key.fingerprint().to_string(),
            k.group.to_string(),
            &snapshot,
            models,
        ));
    }
    let models = used
        .iter()
        .zip(&per_model)
        .map(|(m, records)| {
            let mut groups: Vec<QuotaSnapshot> = Vec::new();
            for r in records {
                if !groups.iter().any(|g| g.group == r.group) {
                    groups.push(r.clone());
                }
            }
            model_stats(&m.model, &groups, now)
        })
        .collect();
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
        models,
        pool: PoolStats {
            requests: rec.counter(PoolCounter::Requests),
            succeeded: rec.counter(PoolCounter::Succeeded),
            failed: rec.counter(PoolCounter::Failed),
            paid_fallbacks: rec.counter(PoolCounter::PaidFallbacks),
            model_fallbacks: rec.counter(PoolCounter::ModelFallbacks),
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
