// Dev-only harness: min and median over short batches (robust to a loaded machine).
use gemini_rotator::{Config, Pool};
use serde_json::json;
use std::time::Instant;

fn pool(tag: &str, state: &str, extra: serde_json::Value) -> Pool {
    let keys = vec![format!("dev-{tag}-{}", std::process::id())];
    let mut c = json!({"free_keys": keys, "free_rate_limit": 4096, "window_ms": 8,
        "base_url": "http://127.0.0.1:9", "state": state, "timeout_ms": 10_000});
    for (k, v) in extra.as_object().unwrap() { c[k] = v.clone(); }
    Pool::new(Config::from_json(&c.to_string()).unwrap()).unwrap()
}

fn run(p: &Pool, i: &mut u64) -> (f64, f64) {
    let mut per = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        for _ in 0..2000 {
            *i += 1;
            let now = 1 + *i / 64;
            let lease = p.try_lease(std::hint::black_box(now)).expect("admitted");
            lease.complete(now).unwrap();
        }
        per.push(t.elapsed().as_nanos() as f64 / 2000.0);
    }
    per.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (per[0], per[per.len() / 2])
}

fn main() {
    let three = std::env::args().nth(1).as_deref() == Some("three");
    let shm = format!("shm:/dev/shm/gr-dev-{}.state", std::process::id());
    for state in ["memory", shm.as_str()] {
        let p = pool("r", state, json!({}));
        let mut i = 0;
        let (min, med) = run(&p, &mut i);
        println!("rate  {:6} min {min:6.1} med {med:6.1}", &state[..3]);
        if three {
            let p = pool("t", state, json!({"free_daily_limit": 1_000_000_000u64, "free_token_limit": 4096}));
            let mut i = 0;
            let (min, med) = run(&p, &mut i);
            println!("three {:6} min {min:6.1} med {med:6.1}", &state[..3]);
        }
    }
    let _ = std::fs::remove_file(format!("/dev/shm/gr-dev-{}.state", std::process::id()));
}
