//! End to end: one `generateContent` call through the pool (`Pool::generate`, and the same call
//! through the C ABI's `gr_generate`) against a bare reqwest blocking POST of the same body and
//! headers to the same emulator on loopback, on one thread and on 8 threads.
//!
//! Absolute times are noisy here (two cores; the emulator runs on the same machine), so the
//! figure that matters is the ratio, measured side by side: every round runs one batch of each
//! variant, in an order that rotates from round to round (A B C D, B C D A, ...), and a round's
//! ratio is the variant's figure over bare reqwest's in that round. Reported: the median over
//! rounds and the 25th–75th percentile of the rounds' ratios. A second copy of the bare variant
//! (the control) shows how far apart two identical variants land.
//!
//! Figures per batch: wall time per call (throughput), the median latency of one call, and the
//! CPU time of the whole process per call; the emulator's share of CPU is the same for every
//! variant (same requests, same headers), so the difference to bare reqwest is the client's.
//!
//! The emulator stands in for a remote service: it is pinned to the last CPU and the client to
//! the others, so that the two do not take turns on one core (`E2E_PIN=0`: no pinning). With
//! two CPUs the client then has one core: the 8-thread run is bound by the client's CPU, which
//! makes any extra work of the pool show in full.
//!
//! Environment: `E2E_ROUNDS` (default 15), `E2E_CALLS` (calls per batch on one thread, default
//! 1000; 4x that on 8 threads), `E2E_KEYS` (keys in the pool, default 4), `E2E_DIAGNOSTIC=0`
//! leaves out the diagnostic variants (bare reqwest plus one more thing the pool does, each),
//! `E2E_PROFILE=<variant number>` runs that variant alone on 8 threads, for a profiler.
//! Prints markdown.

use gemini_emulator::{Emulator, EmulatorConfig, KeySpec};
use gemini_rotator::ffi::{self, error::gr_status};
use gemini_rotator::{CallOptions, Config, Pool};
use std::ffi::CString;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const MODEL: &str = "gemini-3.6-flash";
/// The Go and Python benchmarks' request.
const BODY: &str = r#"{"contents":[{"role":"user","parts":[{"text":"benchmark prompt"}]}],"generationConfig":{"temperature":0.7,"maxOutputTokens":1000}}"#;
const THREADS: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number")),
        Err(_) => default,
    }
}

/// One way of sending the request; `call(i)` sends call number `i` and checks the answer.
struct Variant<'a> {
    name: &'static str,
    call: Box<dyn Fn(usize) + Sync + 'a>,
}

fn check(body: &str) {
    assert!(
        body.contains("echo: benchmark prompt"),
        "unexpected answer: {body}"
    );
}

/// CPU time of the whole process (client and emulator), in microseconds.
fn process_cpu_us() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; the process CPU-time clock always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 * 1e6 + ts.tv_nsec as f64 / 1e3
}

/// What one batch measured, in microseconds per call.
#[derive(Clone, Copy)]
struct Figures {
    /// Wall time of the batch / calls.
    mean: f64,
    /// The median latency of one call.
    median: f64,
    /// CPU time of the process (client and emulator) / calls.
    cpu: f64,
}

/// Runs one batch of `calls` calls on `threads` threads.
fn batch(variant: &Variant, threads: usize, calls: usize) -> Figures {
    let per_thread = calls / threads;
    let run = |t: usize, barrier: Option<&Barrier>| {
        let mut latencies = Vec::with_capacity(per_thread);
        if let Some(b) = barrier {
            b.wait();
        }
        for i in 0..per_thread {
            let started = Instant::now();
            (variant.call)(t * per_thread + i);
            latencies.push(started.elapsed().as_secs_f64() * 1e6);
        }
        latencies
    };
    let cpu_before = process_cpu_us();
    let (elapsed, mut latencies) = if threads == 1 {
        let started = Instant::now();
        let latencies = run(0, None);
        (started.elapsed(), latencies)
    } else {
        let barrier = Barrier::new(threads + 1);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (run, barrier) = (&run, &barrier);
                    s.spawn(move || run(t, Some(barrier)))
                })
                .collect();
            barrier.wait();
            let started = Instant::now();
            let latencies: Vec<f64> = handles
                .into_iter()
                .flat_map(|h| h.join().expect("worker"))
                .collect();
            (started.elapsed(), latencies)
        })
    };
    let n = (per_thread * threads) as f64;
    Figures {
        mean: elapsed.as_secs_f64() * 1e6 / n,
        cpu: (process_cpu_us() - cpu_before) / n,
        median: median(&mut latencies),
    }
}

fn median(v: &mut [f64]) -> f64 {
    quantile(v, 0.5)
}

/// The `q` quantile, interpolated between the two nearest values.
fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let x = q * (v.len() - 1) as f64;
    let (i, frac) = (x.floor() as usize, x - x.floor());
    if i + 1 < v.len() {
        v[i] * (1.0 - frac) + v[i + 1] * frac
    } else {
        v[i]
    }
}

/// "median [p25–p75]" of `values`, with `digits` decimals (and a sign when `signed`).
fn summary(mut values: Vec<f64>, digits: usize, signed: bool) -> String {
    let (m, q1, q3) = (
        median(&mut values),
        quantile(&mut values, 0.25),
        quantile(&mut values, 0.75),
    );
    if signed {
        format!("{m:+.digits$} [{q1:+.digits$} – {q3:+.digits$}]")
    } else {
        format!("{m:.digits$} [{q1:.digits$} – {q3:.digits$}]")
    }
}

/// Pins the calling thread (and the threads it starts from now on) to `cpus`.
fn pin(cpus: &[usize]) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET and sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity failed");
    }
}

/// Runs `rounds` rounds of every variant and prints one markdown table.
fn compare(
    title: &str,
    variants: &[Variant],
    emulator: &Emulator,
    threads: usize,
    calls: usize,
    rounds: usize,
) {
    // Warm-up: connections, the emulator's tables, the state file's pages, the allocator.
    for v in variants {
        batch(v, threads, calls / 4);
    }
    let n = variants.len();
    let mut figures: Vec<Vec<Figures>> = vec![Vec::new(); n];
    for round in 0..rounds {
        for j in 0..n {
            let which = (round + j) % n;
            // The emulator keeps a log of every request: clear it (untimed) so that every batch
            // meets the same emulator.
            emulator.reset();
            figures[which].push(batch(&variants[which], threads, calls));
        }
    }
    println!("### {title}\n");
    println!(
        "{rounds} rounds of {calls} calls per variant, order rotating every round. Ratios: the \
         variant's figure / bare reqwest's in the same round, median over rounds \
         [25th – 75th percentile].\n"
    );
    println!(
        "| variant | wall µs/call | ratio (wall) | median latency µs | ratio (latency) | \
         process CPU µs/call | extra CPU µs/call |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let bare = &figures[0];
    for (v, mine) in variants.iter().zip(&figures) {
        let absolute = |f: fn(&Figures) -> f64| {
            let mut values: Vec<f64> = mine.iter().map(f).collect();
            median(&mut values)
        };
        let ratio = |f: fn(&Figures) -> f64| {
            let ratios = mine.iter().zip(bare).map(|(m, b)| f(m) / f(b)).collect();
            summary(ratios, 3, false)
        };
        let extra = mine.iter().zip(bare).map(|(m, b)| m.cpu - b.cpu).collect();
        println!(
            "| {} | {:.1} | {} | {:.1} | {} | {:.1} | {} |",
            v.name,
            absolute(|f| f.mean),
            ratio(|f| f.mean),
            absolute(|f| f.median),
            ratio(|f| f.median),
            absolute(|f| f.cpu),
            summary(extra, 2, true),
        );
    }
    println!();
}

fn main() {
    let rounds = env_usize("E2E_ROUNDS", 15).max(1);
    let calls = env_usize("E2E_CALLS", 1000).max(THREADS);
    let nkeys = env_usize("E2E_KEYS", 4).max(1);
    let diagnostic = std::env::var("E2E_DIAGNOSTIC").map_or(true, |v| v != "0");

    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cpus >= 2 && std::env::var("E2E_PIN").map_or(true, |v| v != "0");
    if pinned {
        // The emulator's runtime threads are started now and inherit this.
        pin(&[cpus - 1]);
    }
    let pid = std::process::id();
    let keys: Vec<String> = (0..nkeys).map(|i| format!("bench-e2e-{pid}-{i}")).collect();
    let emulator = Emulator::start(EmulatorConfig::with_keys(
        keys.iter()
            .enumerate()
            .map(|(i, k)| KeySpec::new(k.clone(), format!("k{i}")))
            .collect(),
    ))
    .expect("start the emulator");
    let url = emulator.generate_url(MODEL);
    if pinned {
        // This thread, the benchmark's workers and the HTTP clients' runtime threads.
        pin(&(0..cpus - 1).collect::<Vec<_>>());
    }

    let state = format!("/dev/shm/gemini-rotator-bench-e2e-{pid}.state");
    let config = serde_json::json!({
        "free_keys": keys,
        // High enough never to refuse on loopback: 100,000 per second per key.
        "free_rate_limit": 100_000, "window_ms": 1000,
        "base_url": emulator.base_url(), "model": MODEL,
        "state": format!("shm:{state}"), "timeout_ms": 30_000,
    })
    .to_string();
    let pool = Pool::new(Config::from_json(&config).expect("config")).expect("pool");
    let options = CallOptions::default();

    let c_config = CString::new(config.clone()).expect("no NUL");
    let mut c_pool = std::ptr::null_mut();
    let mut c_error = std::ptr::null_mut();
    // SAFETY: a valid config string and out-params.
    let status = unsafe { ffi::gr_pool_new(c_config.as_ptr(), &mut c_pool, &mut c_error) };
    assert!(matches!(status, gr_status::GR_OK), "gr_pool_new failed");
    struct SharedPool(*mut ffi::gr_pool);
    // SAFETY: a gr_pool may be used from any thread at once (see the header).
    unsafe impl Sync for SharedPool {}
    let c_pool = SharedPool(c_pool);
    let c_body = CString::new(BODY).expect("no NUL");

    // The bare client: reqwest's blocking client with the library's client settings (user
    // agent, no delay, idle timeout), one client shared by all threads as the pool shares its
    // one client, and the same keys in turn.
    let bare = reqwest::blocking::Client::builder()
        .user_agent(concat!("gemini-rotator/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(None)
        .build()
        .expect("client");
    let send = |key: &str, timeout: bool| {
        let mut request = bare
            .post(&url)
            .header("x-goog-api-key", key)
            .header("content-type", "application/json");
        if timeout {
            request = request.timeout(Duration::from_secs(30));
        }
        let response = request.body(BODY.to_owned()).send().expect("send");
        assert!(response.status().is_success());
        check(&response.text().expect("body"));
    };
    let json_check = || {
        serde_json::from_str::<serde::de::IgnoredAny>(BODY).expect("valid JSON");
    };

    let mut variants = vec![
        Variant {
            name: "bare reqwest POST",
            call: Box::new(|i| send(&keys[i % nkeys], false)),
        },
        Variant {
            name: "bare reqwest POST again (control)",
            call: Box::new(|i| send(&keys[i % nkeys], false)),
        },
        Variant {
            name: "**Pool::generate**",
            call: Box::new(|_| {
                let response = pool.generate(BODY, &options).expect("generate");
                check(std::str::from_utf8(&response.body).expect("UTF-8"));
            }),
        },
        Variant {
            name: "gr_generate (C ABI)",
            call: Box::new(|_| {
                let c_pool = &c_pool;
                let (mut out, mut err) = (std::ptr::null_mut(), std::ptr::null_mut());
                // SAFETY: a live pool, a NUL-terminated body and valid out-params.
                let status = unsafe {
                    ffi::gr_generate(
                        c_pool.0,
                        std::ptr::null(),
                        c_body.as_ptr(),
                        0,
                        0,
                        &mut out,
                        &mut err,
                    )
                };
                assert!(matches!(status, gr_status::GR_OK), "gr_generate failed");
                let mut len = 0;
                // SAFETY: on GR_OK `out` is a live response; its body is `len` bytes, borrowed
                // until the response is freed (once, after the check).
                unsafe {
                    let body = ffi::response::gr_response_body(out, &mut len);
                    let body = std::slice::from_raw_parts(body.cast::<u8>(), len);
                    check(std::str::from_utf8(body).expect("UTF-8"));
                    ffi::response::gr_response_free(out);
                }
            }),
        },
    ];
    if diagnostic {
        // Bare reqwest plus, cumulatively, what Pool::generate adds around the same POST.
        variants.push(Variant {
            name: "diag: bare + per-request timeout",
            call: Box::new(|i| send(&keys[i % nkeys], true)),
        });
        variants.push(Variant {
            name: "diag: … + JSON check of the body",
            call: Box::new(|i| {
                json_check();
                send(&keys[i % nkeys], true)
            }),
        });
        variants.push(Variant {
            name: "diag: … + admission (try_lease, complete)",
            call: Box::new(|_| {
                json_check();
                let lease = pool.try_lease(pool.now()).expect("admitted");
                send(lease.key().secret(), true);
                lease.complete(pool.now()).expect("completed");
            }),
        });
    }

    if let Ok(which) = std::env::var("E2E_PROFILE") {
        let v = &variants[which
            .parse::<usize>()
            .expect("E2E_PROFILE: a variant number")];
        eprintln!("profiling: {}", v.name);
        for _ in 0..rounds {
            emulator.reset();
            batch(v, THREADS, calls * 4);
        }
    } else {
        println!(
            "## End to end, Rust: Pool::generate vs bare reqwest, {}\n\n\
             Emulator in-process on loopback, {nkeys} unlimited keys, key state in a \
             shared-memory file; {}.\n",
            if pinned { "pinned" } else { "not pinned" },
            if pinned {
                format!(
                    "the emulator pinned to CPU {}, the client (its threads and the HTTP \
                     clients' runtime threads) to CPU {}",
                    cpus - 1,
                    if cpus == 2 {
                        "0".to_string()
                    } else {
                        format!("0–{}", cpus - 2)
                    }
                )
            } else {
                "no CPU pinning: the client and the emulator share every CPU".to_string()
            }
        );
        compare("1 thread", &variants, &emulator, 1, calls, rounds);
        compare(
            &format!("{THREADS} threads (one shared pool, one shared client)"),
            &variants,
            &emulator,
            THREADS,
            calls * 4,
            rounds,
        );
    }

    drop(variants);
    // SAFETY: the pool made above, freed once after every call on it.
    unsafe { ffi::gr_pool_free(c_pool.0) };
    drop(pool);
    let _ = std::fs::remove_file(&state);
}
