//! Memory: the resident memory of a process before and after it makes a pool of 10, 1,000 and
//! 10,000 keys (and after every key's window has been filled once, so that every slot of every
//! ring has been written), and the space the shared state file takes (allocated bytes:
//! `st_blocks * 512`; the file is sparse).
//!
//! Every measurement runs in a fresh child process (this program, started again with
//! `--child`), so that one measurement's allocations never hide another's. Keys have the
//! default limit (60 requests per 60 s): a key's record is a header and a ring of one 8-byte
//! slot per unit of its limit. Prints markdown.

use gemini_rotator::{Config, Pool};
use std::os::unix::fs::MetadataExt;
use std::process::Command;

const LIMIT: u64 = 60;
const WINDOW_MS: u64 = 60_000;
const SIZES: [usize; 3] = [10, 1_000, 10_000];

/// A field of /proc/self/status, in KiB (`VmRSS`, `RssAnon`, `RssShmem`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Allocated bytes of the file (0 if it does not exist).
fn allocated(path: &str) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}

/// One measurement, in this (fresh) process; prints one line of numbers.
fn child(n: usize, state: &str) {
    let pid = std::process::id();
    let path = format!("/dev/shm/gemini-rotator-bench-memory-{pid}.state");
    let location = match state {
        "memory" => "memory".to_string(),
        _ => format!("shm:{path}"),
    };
    let keys: Vec<String> = (0..n).map(|i| format!("bench-mem-{pid}-{i}")).collect();
    let config = serde_json::json!({
        "free_keys": keys, "free_rate_limit": LIMIT, "window_ms": WINDOW_MS,
        "base_url": "http://127.0.0.1:9", "state": location,
    })
    .to_string();
    let config = Config::from_json(&config).expect("config");
    // Everything but the pool is in place: the keys, the parsed configuration, and a first
    // pool of one other key (the HTTP client and TLS set-up are paid once per pool, not per
    // key; they are measured by the 10-key row against this baseline too).
    let before = status_kib("VmRSS");
    let pool = Pool::new(config).expect("pool");
    let after_pool = status_kib("VmRSS");
    let file_after_pool = allocated(&path);

    // Fill every window: admissions at one instant until no key admits.
    let now = pool.now();
    let mut admitted = 0u64;
    while let Ok(lease) = pool.try_lease(now) {
        lease.complete(now).expect("completed");
        admitted += 1;
    }
    assert_eq!(
        admitted,
        n as u64 * LIMIT,
        "every slot of every key admitted once"
    );
    let after_fill = status_kib("VmRSS");
    let shmem = status_kib("RssShmem");
    let file_after_fill = allocated(&path);
    println!("{before} {after_pool} {after_fill} {shmem} {file_after_pool} {file_after_fill}");
    drop(pool);
    let _ = std::fs::remove_file(&path);
}

fn mib(kib: u64) -> String {
    format!("{:.2}", kib as f64 / 1024.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let n = args[i + 1].parse().expect("key count");
        child(n, &args[i + 2]);
        return;
    }
    let exe = std::env::current_exe().expect("own path");
    println!("## Memory\n");
    println!(
        "Each row is a fresh process. Keys: {LIMIT} requests per {} s each (a record of 19 \
         header words and {LIMIT} ring slots of 8 bytes). RSS from `VmRSS` in \
         /proc/self/status (MiB); \"filled\": after every key admitted {LIMIT} requests, so \
         every slot was written. The state file is sparse (256 MiB apparent size); \"allocated\" \
         is `st_blocks × 512`.\n",
        WINDOW_MS / 1000
    );
    println!(
        "| keys | state | RSS before | RSS + pool | RSS + filled | of which shared memory | \
         file allocated (pool / filled) | bytes per key beyond the 10-key row |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for state in ["memory", "shm"] {
        // (keys, RSS growth after filling in KiB, file bytes after filling) of the 10-key row.
        let mut first: Option<(usize, u64, u64)> = None;
        for n in SIZES {
            let out = Command::new(&exe)
                .args(["--child", &n.to_string(), state])
                .output()
                .expect("run the child");
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Vec<u64> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(|x| x.parse().expect("number"))
                .collect();
            let [before, after_pool, after_fill, shmem, file_pool, file_fill] = v[..] else {
                panic!("unexpected child output: {v:?}");
            };
            let grown = after_fill.saturating_sub(before);
            let per_key = match first {
                None => {
                    first = Some((n, grown, file_fill));
                    "–".to_string()
                }
                Some((n0, grown0, file0)) => {
                    let rss = (grown as f64 - grown0 as f64) * 1024.0 / (n - n0) as f64;
                    if state == "shm" {
                        let file = (file_fill as f64 - file0 as f64) / (n - n0) as f64;
                        format!("{rss:.0} RSS, {file:.0} file")
                    } else {
                        format!("{rss:.0} RSS")
                    }
                }
            };
            let (shared, file) = if state == "shm" {
                (
                    mib(shmem),
                    format!("{} / {} MiB", mib(file_pool / 1024), mib(file_fill / 1024)),
                )
            } else {
                ("–".to_string(), "–".to_string())
            };
            println!(
                "| {n} | {state} | {} | {:+.2} | {:+.2} | {shared} | {file} | {per_key} |",
                mib(before),
                (after_pool as f64 - before as f64) / 1024.0,
                (after_fill as f64 - before as f64) / 1024.0,
            );
        }
    }
    println!();
}
