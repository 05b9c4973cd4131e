//! Shared helpers of the Rust integration tests: an emulator on loopback with keys unique to
//! the test, and pools configured against it.
#![allow(dead_code)]

use gemini_emulator::{Emulator, EmulatorConfig, Fault};
use gemini_rotator::clock::FakeClock;
use gemini_rotator::{CallOptions, Config, Error, Pool, Response};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Key strings unique to this test run and this test: key state is shared by every pool of the
/// process (and the host), so tests must never reuse each other's keys.
pub fn unique_keys(test: &str, n: usize) -> Vec<String> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let run = format!(
        "{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    (0..n).map(|i| format!("test-{test}-{run}-{i}")).collect()
}

/// The state file of this test process: shared memory semantics exactly as in production, in
/// a file of its own under the target directory (files of test processes that are gone are
/// removed on first use).
pub fn state_path() -> String {
    static PATH: once_cell::sync::Lazy<String> = once_cell::sync::Lazy::new(|| {
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("state");
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let pid = name
                .strip_prefix("pid-")
                .and_then(|n| n.strip_suffix(".state"))
                .and_then(|p| p.parse::<i32>().ok());
            // SAFETY: kill with signal 0 only checks that the process exists.
            if pid.is_some_and(|p| unsafe { libc::kill(p, 0) } != 0) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        dir.join(format!("pid-{}.state", std::process::id()))
            .display()
            .to_string()
    });
    format!("shm:{}", &*PATH)
}

/// A test's world: the emulator, its keys by label, and the pool settings.
pub struct World {
    pub emu: Emulator,
    pub free: Vec<String>,
    pub paid: Option<String>,
}

impl World {
    /// `free` free keys (labels free0..), an optional paid key (label paid), each known to the
    /// emulator with `emu_limit` per `emu_window_ms` (None: unlimited).
    pub fn new(
        test: &str,
        free: usize,
        paid: bool,
        emu_limit: Option<u32>,
        emu_window_ms: u64,
    ) -> World {
        let keys = unique_keys(test, free + 1);
        let mut specs = Vec::new();
        for (i, k) in keys[..free].iter().enumerate() {
            specs.push(json!({"key": k, "label": format!("free{i}"), "limit": emu_limit, "window_ms": emu_window_ms}));
        }
        if paid {
            specs.push(json!({"key": keys[free], "label": "paid", "limit": emu_limit, "window_ms": emu_window_ms}));
        }
        let config =
            EmulatorConfig::from_json(&json!({"keys": specs, "record_bodies": true}).to_string())
                .expect("emulator config");
        World {
            emu: Emulator::start(config).expect("emulator starts"),
            free: keys[..free].to_vec(),
            paid: paid.then(|| keys[free].clone()),
        }
    }

    /// The pool's JSON config with these overrides merged in.
    pub fn config_json(&self, overrides: Value) -> String {
        let mut c = json!({
            "free_keys": self.free,
            "base_url": self.emu.base_url(),
            "retry_base_ms": 1,
            "retry_max_ms": 5,
            "timeout_ms": 10_000,
            "state": state_path(),
        });
        if let Some(paid) = &self.paid {
            c["paid_key"] = json!(paid);
        }
        for (k, v) in overrides.as_object().expect("overrides are an object") {
            c[k] = v.clone();
        }
        c.to_string()
    }

    pub fn pool(&self, overrides: Value) -> Pool {
        Pool::new(Config::from_json(&self.config_json(overrides)).expect("valid config"))
            .expect("pool")
    }

    /// A pool of this world on a fake clock (its store counts time on it, and waiting sleeps
    /// on it).
    pub fn pool_on(&self, clock: &Arc<FakeClock>, overrides: Value) -> Pool {
        let config = Config::from_json(&self.config_json(overrides)).expect("valid config");
        Pool::with_clock(config, clock.clone()).expect("pool")
    }

    pub fn fault(&self, fault: Value) {
        self.emu
            .add_fault(serde_json::from_value::<Fault>(fault).expect("fault"));
    }

    pub fn stats(&self) -> Value {
        serde_json::to_value(self.emu.stats()).unwrap()
    }

    /// Requests the emulator received with the key of `label`.
    pub fn received(&self, label: &str) -> u64 {
        self.stats()["keys"][label]["requests"]
            .as_u64()
            .unwrap_or(0)
    }

    pub fn label_of(&self, fingerprint: &str) -> String {
        if let Some(i) = self
            .free
            .iter()
            .position(|k| gemini_rotator::key::fingerprint(k) == fingerprint)
        {
            return format!("free{i}");
        }
        if self
            .paid
            .as_deref()
            .map(gemini_rotator::key::fingerprint)
            .as_deref()
            == Some(fingerprint)
        {
            return "paid".into();
        }
        panic!("fingerprint {fingerprint} is not one of this world's keys")
    }
}

pub const HELLO: &str = r#"{"contents":[{"role":"user","parts":[{"text":"hello"}]}]}"#;

pub fn ask(pool: &Pool) -> Result<Response, Error> {
    pool.generate(HELLO, &CallOptions::default())
}

/// The statistics of a key (by fingerprint) from the pool's snapshot.
pub fn key_stats(pool: &Pool, key: &str) -> Value {
    let stats: Value =
        serde_json::from_str(&gemini_rotator::metrics::snapshot_json(pool).unwrap()).unwrap();
    let fp = gemini_rotator::key::fingerprint(key);
    stats["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["fingerprint"] == fp.as_str())
        .cloned()
        .expect("key in stats")
}

pub fn pool_stats(pool: &Pool) -> Value {
    let stats: Value =
        serde_json::from_str(&gemini_rotator::metrics::snapshot_json(pool).unwrap()).unwrap();
    stats["pool"].clone()
}

/// Three free keys (limit 4), a paid key (limit 2); free0 answers one per-minute 429, free1 is
/// an invalid key, free2 answers one 503 (which counts in its window: the service saw it). Six
/// calls: the first is served by free2 after a 429,
/// an invalid key and a retry; two more by free2; two by the paid key; the sixth is refused.
pub fn scripted_workload(w: &World) -> gemini_rotator::Pool {
    let pool = w.pool(json!({"free_rate_limit": 4, "paid_rate_limit": 2}));
    w.fault(json!({"label": "free0", "kind": "quota_minute", "count": 1, "retry_delay": "60s"}));
    w.fault(json!({"label": "free1", "kind": "invalid_key"}));
    w.fault(json!({"label": "free2", "kind": "http503", "count": 1}));
    let served: Vec<_> = (0..6)
        .map(|_| ask(&pool).map(|r| (w.label_of(&r.key_fingerprint), r.attempts)))
        .collect();
    let served: Vec<_> = served
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|(l, a)| (l.as_str(), *a))
                .map_err(|e| e.to_string())
        })
        .collect();
    assert_eq!(served[0], Ok(("free2", 4)));
    assert_eq!(
        served[1..5],
        [
            Ok(("free2", 1)),
            Ok(("free2", 1)),
            Ok(("paid", 1)),
            Ok(("paid", 1))
        ]
    );
    assert!(served[5]
        .as_ref()
        .unwrap_err()
        .contains("all API keys have reached their rate limits"));
    pool
}

/// Serializes the tests of one binary that fork: a child forked while another test thread
/// holds one of the library's locks would wait for it forever.
pub fn fork_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Waits for a forked child, killing it (and failing) if it has not ended within 30 s, so that
/// a hung child can never hang the test run. Returns the wait status.
pub fn wait_child(pid: i32) -> i32 {
    let started = std::time::Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: reaping our own child without blocking.
        let got = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if got == pid {
            return status;
        }
        assert!(got == 0, "waitpid failed");
        if started.elapsed() > std::time::Duration::from_secs(30) {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            panic!("the forked child did not finish within 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Reads one byte from a pipe, waiting at most 30 s (a child that hangs must not hang the test).
pub fn read_byte_within_30s(fd: i32) -> Option<u8> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: polling and reading one byte from our own pipe.
    unsafe {
        if libc::poll(&mut pfd, 1, 30_000) != 1 {
            return None;
        }
        let mut b = [0u8];
        (libc::read(fd, b.as_mut_ptr().cast(), 1) == 1).then_some(b[0])
    }
}
