//! The demo: a few hundred requests from several threads through the library, against the
//! built-in emulator with three free keys and a paid key, then what happened.

use crate::Usage;
use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec};
use gemini_rotator::metrics::{KeyStats, Stats};
use gemini_rotator::{CallOptions, Config, Error, Pool};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

const THREADS: usize = 8;
const PER_THREAD: usize = 40;
const FREE_LIMIT: u32 = 40;
const PAID_LIMIT: u32 = 30;
const WINDOW_MS: u64 = 2_000;

pub fn run(args: &[String]) -> Result<(), Usage> {
    if let Some(a) = args.first() {
        return Err(Usage(format!("demo takes no arguments, got {a:?}")));
    }
    // Demo keys, unique to this run; the emulator enforces the same limits as the library, so
    // any over-admission would show up as a 429 from the "service".
    let run = std::process::id();
    let free: Vec<String> = (1..=3).map(|i| format!("demo-free-{i}-{run}")).collect();
    let paid = format!("demo-paid-{run}");
    let mut keys: Vec<KeySpec> = free
        .iter()
        .enumerate()
        .map(|(i, k)| {
            KeySpec::new(k.clone(), format!("free-{}", i + 1)).with_limit(FREE_LIMIT, WINDOW_MS)
        })
        .collect();
    keys.push(KeySpec::new(paid.clone(), "paid").with_limit(PAID_LIMIT, WINDOW_MS));
    let emu = Emulator::start(EmulatorConfig::with_keys(keys))
        .map_err(|e| Usage(format!("emulator: {e}")))?;
    // One overloaded answer and one upstream quota error, to show how they are handled.
    emu.add_fault(Fault::new(FaultKind::Http503).for_label("free-2").times(1));
    emu.add_fault(
        Fault::new(FaultKind::QuotaMinute)
            .for_label("free-3")
            .times(1)
            .with_retry_delay("1s"),
    );

    // Shared-memory state as in production, in a file of this run's own, so that demo keys
    // never linger in the host's state file. It is unlinked once the pool has mapped it and
    // registered its keys: the mapping lives on, and nothing is left behind however the demo
    // ends.
    let state = std::path::PathBuf::from(format!("/dev/shm/gemini-rotator-demo-{run}.state"));
    let config = serde_json::json!({
        "free_keys": free, "paid_key": paid,
        "free_rate_limit": FREE_LIMIT, "paid_rate_limit": PAID_LIMIT, "window_ms": WINDOW_MS,
        "base_url": emu.base_url(), "retry_base_ms": 20, "retry_max_ms": 200,
        "state": format!("shm:{}", state.display()),
    });
    let pool = Pool::new(Config::from_json(&config.to_string())?);
    let _ = std::fs::remove_file(&state);
    let pool = Arc::new(pool?);
    println!("gemini-rotator demo: emulator at {}", emu.base_url());
    println!(
        "3 free keys ({FREE_LIMIT} requests per {WINDOW_MS} ms each), 1 paid key ({PAID_LIMIT} per {WINDOW_MS} ms); \
         {THREADS} threads x {PER_THREAD} requests, no waiting, then one more round waiting for keys\n"
    );

    let started = Instant::now();
    let outcomes = burst(&pool, 0);
    let burst_ms = started.elapsed().as_millis();
    let waited = burst(&pool, 5_000);
    let total_ms = started.elapsed().as_millis();

    for (title, o) in [
        ("Burst (fail at once when every key is full)", &outcomes),
        ("Second round (wait up to 5 s for a key)", &waited),
    ] {
        println!("{title}:");
        for (what, n) in o {
            println!("  {n:>4}  {what}");
        }
    }
    println!("\nFirst round took {burst_ms} ms, both {total_ms} ms.\n");
    print!(
        "{}",
        stats_table(&gemini_rotator::metrics::snapshot(&pool)?)
    );

    let emu_stats = serde_json::to_value(emu.stats()).unwrap_or_default();
    let upstream_429: u64 = emu_stats["keys"]
        .as_object()
        .map(|m| {
            m.values()
                .map(|k| k["rate_limited"].as_u64().unwrap_or(0))
                .sum()
        })
        .unwrap_or(0);
    println!(
        "\nThe emulator received {} requests and answered {upstream_429} of them with its own 429 \
         (0 means the library never sent more than a key's limit in any rolling window).",
        emu_stats["total"]
    );
    let labels = emu_stats["keys"].as_object().cloned().unwrap_or_default();
    let per_label: Vec<String> = labels
        .iter()
        .map(|(l, s)| format!("{l}: {}", s["requests"]))
        .collect();
    println!(
        "Requests per key as the emulator counted them: {}",
        per_label.join(", ")
    );
    Ok(())
}

/// THREADS x PER_THREAD calls; what they ended in, by kind.
fn burst(pool: &Arc<Pool>, max_wait_ms: u64) -> BTreeMap<String, usize> {
    let body = r#"{"contents":[{"role":"user","parts":[{"text":"Say hello"}]}]}"#;
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || {
                let options = CallOptions {
                    max_wait_ms,
                    ..Default::default()
                };
                (0..PER_THREAD)
                    .map(|_| match pool.generate(body, &options) {
                        Ok(r) if r.attempts > 1 => "served after a retry".to_string(),
                        Ok(_) => "served".to_string(),
                        Err(Error::AllKeysRateLimited { .. }) => {
                            "refused: all API keys have reached their rate limits".to_string()
                        }
                        Err(e) => format!("failed: {e}"),
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut counts = BTreeMap::new();
    for h in handles {
        for outcome in h.join().unwrap_or_default() {
            *counts.entry(outcome).or_insert(0) += 1;
        }
    }
    counts
}

/// The statistics as a table for people.
pub fn stats_table(stats: &Stats) -> String {
    let mut out = format!("Key pool (state: {}):\n", stats.state);
    out.push_str(&key_table(&stats.keys));
    let p = &stats.pool;
    out.push_str(&format!(
        "Pool: {} requests, {} succeeded, {} failed, {} paid fallbacks, {} model fallbacks, {} \
         refused as exhausted; upstream latency mean {:.2} ms over {} attempts\n",
        p.requests,
        p.succeeded,
        p.failed,
        p.paid_fallbacks,
        p.model_fallbacks,
        p.exhausted,
        if p.latency.count > 0 {
            p.latency.sum_seconds * 1e3 / p.latency.count as f64
        } else {
            0.0
        },
        p.latency.count
    ));
    for m in &stats.models {
        let left = m
            .requests_left_today
            .map_or("no daily limit".to_string(), |n| {
                format!("{n} requests left today")
            });
        out.push_str(&format!(
            "Model {}: {left}, {} calls served as a fallback\n",
            m.model, m.fallbacks
        ));
    }
    out
}

/// One line per key (its default model's window), then one per key and model it has used:
/// requests in the window, today, tokens, cooldown, availability.
pub fn key_table(keys: &[KeyStats]) -> String {
    let mut out = key_lines(keys);
    if keys.iter().all(|k| k.models.is_empty()) {
        return out;
    }
    out.push_str(
        "  key           model                      window       today         tokens            cooldown            available\n",
    );
    for k in keys {
        for m in &k.models {
            let of = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
            let cooldown = match (m.cooldown_remaining_ms, m.cooldown_cause) {
                (0, _) => "-".to_string(),
                (ms, cause) => format!("{}.{:03}s {}", ms / 1000, ms % 1000, cause.unwrap_or("")),
            };
            out.push_str(&format!(
                "  {:<12}  {:<25}  {:>5}/{:<5}  {:>5}/{:<6}  {:>7}/{:<8}  {:<18}  {}\n",
                k.fingerprint,
                m.model,
                m.in_window,
                m.rate_limit,
                m.today,
                of(m.daily_limit),
                m.tokens_in_window,
                of(m.token_limit),
                cooldown,
                if m.unavailable { "no (limit 0)" } else { "yes" },
            ));
        }
    }
    out
}

fn key_lines(keys: &[KeyStats]) -> String {
    let mut out = String::from(
        "  key           tier  limit/window    in window  admitted  ok    refused  429  5xx  retries  cooldown            disabled\n",
    );
    for k in keys {
        let cooldown = match (k.cooldown_remaining_ms, k.cooldown_cause) {
            (0, _) => "-".to_string(),
            (ms, cause) => format!("{}.{:03}s {}", ms / 1000, ms % 1000, cause.unwrap_or("")),
        };
        out.push_str(&format!(
            "  {:<12}  {:<4}  {:>5}/{:<8}  {:>9}  {:>8}  {:>4}  {:>7}  {:>3}  {:>3}  {:>7}  {:<18}  {}\n",
            k.fingerprint,
            k.tier,
            k.limit,
            format!("{}ms", k.window_ms),
            k.in_window,
            k.admitted,
            k.succeeded,
            k.refused,
            k.upstream_429,
            k.server_errors,
            k.retries,
            cooldown,
            k.disabled.unwrap_or("-"),
        ));
    }
    out
}
