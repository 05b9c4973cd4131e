//! Statistics: a snapshot of every key's and the pool's state and counters, as a serializable
//! value. Keys appear by fingerprint only.

use crate::clock;
use crate::pool::Pool;
use crate::store::layout::LATENCY_BUCKETS_S;
use crate::store::{KeyCounter, KeyRecord, PoolCounter};
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

/// The statistics of one key record.
pub fn key_stats(fingerprint: String, record: &dyn KeyRecord, now: u64) -> KeyStats {
    let k = record.snapshot(now);
    let cooling = k.cooldown_until > now;
    KeyStats {
        fingerprint,
        tier: k.tier.as_str(),
        limit: k.limit,
        window_ms: k.window_ms,
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

pub fn snapshot(pool: &Pool) -> Stats {
    let now = clock::now_ms();
    let keys = pool
        .keys()
        .map(|k| key_stats(k.key.fingerprint().to_string(), &*k.record, now))
        .collect();
    let rec = pool.record().snapshot();
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

/// Escapes a label value for the Prometheus text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The statistics in the Prometheus text exposition format (version 0.0.4): `_total` counters,
/// seconds, and `key` / `tier` labels that carry fingerprints only.
pub fn prometheus(stats: &Stats) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, String)>| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let key_labels =
        |k: &KeyStats| format!("key=\"{}\",tier=\"{}\"", label(&k.fingerprint), k.tier);
    let per_key = |f: &dyn Fn(&KeyStats) -> u64| -> Vec<(String, String)> {
        stats
            .keys
            .iter()
            .map(|k| (format!("{{{}}}", key_labels(k)), f(k).to_string()))
            .collect()
    };
    type Count = fn(&KeyStats) -> u64;
    // The per-key families that are one number per key: (name, type, help, value).
    let simple: [(&str, &str, &str, Count); 8] = [
        ("gemini_rotator_key_admitted_total", "counter", "Requests sent with the key (every attempt).", |k| k.admitted),
        ("gemini_rotator_key_succeeded_total", "counter", "Successful answers received with the key.", |k| k.succeeded),
        (
            "gemini_rotator_key_local_refusals_total",
            "counter",
            "Times the key's own limiter, cooldown or disabled state held a request back (the library, not the service, refused).",
            |k| k.refused,
        ),
        ("gemini_rotator_key_upstream_rate_limited_total", "counter", "429 answers the service gave the key.", |k| k.upstream_429),
        ("gemini_rotator_key_retries_total", "counter", "Attempts with the key that retried a transient failure.", |k| k.retries),
        (
            "gemini_rotator_key_window_requests",
            "gauge",
            "Requests counted in the key's current rolling window (finished or in flight).",
            |k| k.in_window,
        ),
        ("gemini_rotator_key_in_flight_requests", "gauge", "Requests with the key waiting for an answer.", |k| k.in_flight),
        ("gemini_rotator_key_window_limit_requests", "gauge", "The key's limit per rolling window.", |k| k.limit),
    ];
    for (name, kind, help, value) in simple {
        family(name, kind, help, per_key(&value));
    }
    family(
        "gemini_rotator_key_window_seconds",
        "gauge",
        "The length of the key's rolling window.",
        stats
            .keys
            .iter()
            .map(|k| {
                (
                    format!("{{{}}}", key_labels(k)),
                    format_seconds(k.window_ms),
                )
            })
            .collect(),
    );
    let classes: [(&str, Count); 6] = [
        ("invalid_key", |k| k.invalid_key),
        ("permission_denied", |k| k.permission_denied),
        ("server_error", |k| k.server_errors),
        ("transport", |k| k.transport_errors),
        ("timeout", |k| k.timeouts),
        ("client_error", |k| k.client_errors),
    ];
    let mut rows = Vec::new();
    for k in &stats.keys {
        for (class, f) in classes {
            rows.push((
                format!("{{{},class=\"{class}\"}}", key_labels(k)),
                f(k).to_string(),
            ));
        }
    }
    family(
        "gemini_rotator_key_errors_total",
        "counter",
        "Failed attempts with the key, by class.",
        rows,
    );
    family(
        "gemini_rotator_key_cooldown_remaining_seconds",
        "gauge",
        "Time left of the key's cooldown after a 429 (0: none), with its cause.",
        stats
            .keys
            .iter()
            .map(|k| {
                (
                    format!(
                        "{{{},cause=\"{}\"}}",
                        key_labels(k),
                        k.cooldown_cause.unwrap_or("none")
                    ),
                    format_seconds(k.cooldown_remaining_ms),
                )
            })
            .collect(),
    );
    family(
        "gemini_rotator_key_disabled",
        "gauge",
        "1 if the key is disabled, with the reason.",
        stats
            .keys
            .iter()
            .map(|k| {
                (
                    format!(
                        "{{{},reason=\"{}\"}}",
                        key_labels(k),
                        k.disabled.unwrap_or("none")
                    ),
                    u8::from(k.disabled.is_some()).to_string(),
                )
            })
            .collect(),
    );
    let p = &stats.pool;
    let single = |v: u64| vec![(String::new(), v.to_string())];
    family(
        "gemini_rotator_requests_total",
        "counter",
        "Calls made through the pool.",
        single(p.requests),
    );
    family(
        "gemini_rotator_requests_succeeded_total",
        "counter",
        "Calls that returned a response.",
        single(p.succeeded),
    );
    family(
        "gemini_rotator_requests_failed_total",
        "counter",
        "Calls that returned an error.",
        single(p.failed),
    );
    family(
        "gemini_rotator_paid_fallbacks_total",
        "counter",
        "Attempts the paid key served because no free key could.",
        single(p.paid_fallbacks),
    );
    family(
        "gemini_rotator_exhausted_total",
        "counter",
        "Calls refused because every key had reached its rate limit.",
        single(p.exhausted),
    );
    let mut rows: Vec<(String, String)> = p
        .latency
        .buckets
        .iter()
        .map(|(le, n)| {
            let le = if le.is_infinite() {
                "+Inf".to_string()
            } else {
                le.to_string()
            };
            (format!("_bucket{{le=\"{le}\"}}"), n.to_string())
        })
        .collect();
    rows.push(("_sum".into(), p.latency.sum_seconds.to_string()));
    rows.push(("_count".into(), p.latency.count.to_string()));
    family(
        "gemini_rotator_upstream_latency_seconds",
        "histogram",
        "Latency of HTTP attempts to the service.",
        rows,
    );
    out
}

fn format_seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}
