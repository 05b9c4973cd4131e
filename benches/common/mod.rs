//! Shared helpers of the Rust benchmarks.
#![allow(dead_code)]

use gemini_rotator::{Config, Pool};
use serde_json::json;

/// Where a benchmark keeps key state.
#[derive(Clone, Copy, Debug)]
pub enum State {
    Memory,
    Shm,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Memory => "memory",
            State::Shm => "shm",
        }
    }

    /// The config value, with a state file of this run under /dev/shm (removed by `cleanup`).
    pub fn config(self) -> String {
        match self {
            State::Memory => "memory".into(),
            State::Shm => format!("shm:{}", shm_path()),
        }
    }
}

pub fn shm_path() -> String {
    format!("/dev/shm/gemini-rotator-bench-{}.state", std::process::id())
}

pub fn cleanup() {
    let _ = std::fs::remove_file(shm_path());
}

/// Keys unique to this run.
pub fn keys(tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("bench-{tag}-{}-{i}", std::process::id()))
        .collect()
}

/// A pool of `keys` free keys; nothing is sent over HTTP by the admission benchmarks.
pub fn pool(keys: &[String], limit: u64, window_ms: u64, state: State, base_url: &str) -> Pool {
    pool_with(keys, limit, window_ms, state, base_url, json!({}))
}

/// As [`pool`], with more settings (`extra`, JSON configuration fields) merged in.
pub fn pool_with(
    keys: &[String],
    limit: u64,
    window_ms: u64,
    state: State,
    base_url: &str,
    extra: serde_json::Value,
) -> Pool {
    let mut config = json!({
        "free_keys": keys, "free_rate_limit": limit, "window_ms": window_ms,
        "base_url": base_url, "state": state.config(), "timeout_ms": 10_000,
    });
    for (k, v) in extra.as_object().expect("an object") {
        config[k] = v.clone();
    }
    Pool::new(Config::from_json(&config.to_string()).expect("config")).expect("pool")
}
