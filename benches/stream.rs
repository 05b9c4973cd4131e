//! Time to first event: a `streamGenerateContent` stream opened through the pool
//! (`Pool::stream`, which returns once the first event is in) against a bare reqwest blocking
//! POST of the same body and headers to the same emulator on loopback, read until its first
//! event is complete. Each stream is then read to its end (so connections are reused the same
//! way), and only the time to the first event is counted.
//!
//! As in `end_to_end.rs`, the figure that matters is the ratio, measured side by side: every
//! round runs one batch of each variant in an order that rotates from round to round; a
//! round's ratio is the variant's median over bare reqwest's in that round. Reported: the
//! median over rounds and the 25th–75th percentile. A second copy of the bare variant (the
//! control) shows how far apart two identical variants land.
//!
//! Environment: `STREAM_ROUNDS` (default 11), `STREAM_CALLS` (streams per batch, default 300).
//! Prints markdown.

mod common;

use gemini_emulator::{Emulator, EmulatorConfig, KeySpec};
use gemini_rotator::CallOptions;
use std::io::Read;
use std::time::{Duration, Instant};

const MODEL: &str = "gemini-3.6-flash";
const BODY: &str =
    r#"{"contents":[{"role":"user","parts":[{"text":"benchmark prompt of six words"}]}]}"#;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number"))
    })
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// One way of opening a stream: returns the time to its first event, after reading it all.
type Variant<'a> = (&'static str, Box<dyn Fn(usize) -> Duration + 'a>);

fn main() {
    let rounds = env_usize("STREAM_ROUNDS", 11);
    let calls = env_usize("STREAM_CALLS", 300);
    let keys = common::keys("stream", 4);
    let specs = keys
        .iter()
        .enumerate()
        .map(|(i, k)| KeySpec::new(k.clone(), format!("k{i}")))
        .collect();
    let emulator = Emulator::start(EmulatorConfig::with_keys(specs)).expect("emulator");
    let base_url = emulator.base_url();
    let pool = common::pool(&keys, 1_000_000, 60_000, common::State::Shm, &base_url);
    let url = format!("{base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse");
    let bare = reqwest::blocking::Client::builder()
        .user_agent(concat!("gemini-rotator/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(None)
        .build()
        .expect("client");
    let bare_stream = |i: usize| {
        let started = Instant::now();
        let mut response = bare
            .post(&url)
            .header("x-goog-api-key", &keys[i % keys.len()])
            .header("content-type", "application/json")
            .body(BODY)
            .send()
            .expect("send");
        assert!(response.status().is_success());
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        let first = loop {
            let n = response.read(&mut buf).expect("read");
            assert!(n > 0, "the stream ended before its first event");
            seen.extend_from_slice(&buf[..n]);
            if seen.windows(2).any(|w| w == b"\n\n") {
                break started.elapsed();
            }
        };
        std::io::copy(&mut response, &mut std::io::sink()).expect("rest");
        first
    };
    let options = CallOptions::default();
    let pool_stream = |_: usize| {
        let started = Instant::now();
        let stream = pool.stream(BODY, &options, None).expect("stream");
        let first = started.elapsed();
        let mut events = 0;
        while stream.next().expect("event").is_some() {
            events += 1;
        }
        assert_eq!(events, 6, "five words and the echo prefix");
        first
    };
    let variants: Vec<Variant> = vec![
        ("bare reqwest stream", Box::new(bare_stream)),
        ("bare reqwest stream again (control)", Box::new(bare_stream)),
        ("**Pool::stream**", Box::new(pool_stream)),
    ];
    // Warm up every variant (connections, the pool's state file).
    for (_, v) in &variants {
        for i in 0..50 {
            v(i);
        }
    }
    let mut medians: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for k in 0..variants.len() {
            let index = (round + k) % variants.len();
            let mut times: Vec<f64> = (0..calls)
                .map(|i| variants[index].1(i).as_secs_f64() * 1e6)
                .collect();
            medians[index].push(median(&mut times));
        }
    }
    println!(
        "Time to first event, {rounds} rounds of {calls} streams each (6 events per stream):\n"
    );
    println!(
        "| variant | median time to first event (µs) | ratio to bare reqwest: median (p25–p75) |"
    );
    println!("| --- | --- | --- |");
    for (index, (name, _)) in variants.iter().enumerate() {
        let mut ratios: Vec<f64> = (0..rounds)
            .map(|r| medians[index][r] / medians[0][r])
            .collect();
        let mut own = medians[index].clone();
        println!(
            "| {name} | {:.0} | {:.3} ({:.3}–{:.3}) |",
            median(&mut own),
            median(&mut ratios.clone()),
            quantile(&mut ratios, 0.25),
            quantile(&mut ratios, 0.75)
        );
    }
    common::cleanup();
}
