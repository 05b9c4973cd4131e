//! The statistics in the Prometheus text exposition format.

use super::{KeyModelStats, KeyStats, Stats};

/// Escapes a label value for the Prometheus text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The statistics in the Prometheus text exposition format (version 0.0.4): `_total` counters,
/// seconds, and `key` / `tier` / `model` labels (keys by fingerprint only).
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
    // Per key and model: the key's group's record of each model the pool has used.
    type ModelValue = fn(&KeyModelStats) -> Option<String>;
    let per_model: [(&str, &str, ModelValue); 7] = [
        (
            "gemini_rotator_key_model_window_requests",
            "Requests counted in the rolling window of the key's group for the model.",
            |m| Some(m.in_window.to_string()),
        ),
        (
            "gemini_rotator_key_model_window_limit_requests",
            "The group's limit per rolling window for the model (lowered if the service said so).",
            |m| Some(m.rate_limit.to_string()),
        ),
        (
            "gemini_rotator_key_model_requests_today",
            "Requests counted on the group's Pacific day for the model.",
            |m| Some(m.today.to_string()),
        ),
        (
            "gemini_rotator_key_model_daily_limit_requests",
            "The group's limit per Pacific day for the model (absent: none).",
            |m| m.daily_limit.map(|d| d.to_string()),
        ),
        (
            "gemini_rotator_key_model_window_tokens",
            "Input tokens reserved in the group's rolling window for the model.",
            |m| Some(m.tokens_in_window.to_string()),
        ),
        (
            "gemini_rotator_key_model_window_limit_tokens",
            "The group's input-token limit per rolling window for the model (absent: none).",
            |m| m.token_limit.map(|t| t.to_string()),
        ),
        (
            "gemini_rotator_key_model_unavailable",
            "1 if the model is not on the group's tier (the service said limit 0).",
            |m| Some(u8::from(m.unavailable).to_string()),
        ),
    ];
    let model_labels = |k: &KeyStats, m: &KeyModelStats| {
        format!("{},model=\"{}\"", key_labels(k), label(&m.model))
    };
    for (name, help, value) in per_model {
        let mut rows = Vec::new();
        for k in &stats.keys {
            for m in &k.models {
                if let Some(v) = value(m) {
                    rows.push((format!("{{{}}}", model_labels(k, m)), v));
                }
            }
        }
        family(name, "gauge", help, rows);
    }
    let mut rows = Vec::new();
    for k in &stats.keys {
        for m in &k.models {
            rows.push((
                format!(
                    "{{{},cause=\"{}\"}}",
                    model_labels(k, m),
                    m.cooldown_cause.unwrap_or("none")
                ),
                format_seconds(m.cooldown_remaining_ms),
            ));
        }
    }
    family(
        "gemini_rotator_key_model_cooldown_remaining_seconds",
        "gauge",
        "Time left of the cooldown of the key's group for the model (0: none), with its cause.",
        rows,
    );
    family(
        "gemini_rotator_model_requests_left_today",
        "gauge",
        "Requests the pool's keys may still send today for the model, over their groups (absent: some group has no daily limit).",
        stats
            .models
            .iter()
            .filter_map(|m| {
                let left = m.requests_left_today?;
                Some((format!("{{model=\"{}\"}}", label(&m.model)), left.to_string()))
            })
            .collect(),
    );
    family(
        "gemini_rotator_model_fallbacks_total",
        "counter",
        "Calls the model served as another model's fallback.",
        stats
            .models
            .iter()
            .map(|m| {
                (
                    format!("{{model=\"{}\"}}", label(&m.model)),
                    m.fallbacks.to_string(),
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
