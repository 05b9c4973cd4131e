//! A Redis that may evict keys (`maxmemory-policy` other than `noeviction`) could silently
//! free a ring's slots: the store warns when it connects. (Its own test binary: the log sink
//! is process-wide.)

mod redis_support;

use gemini_rotator::clock::SystemClock;
use gemini_rotator::log::{self, Level};
use gemini_rotator::store::redis::{RedisStore, Target};
use redis_support::Server;
use std::sync::{Arc, Mutex};

#[test]
fn an_evicting_redis_is_warned_about_at_connect_and_a_safe_one_is_not() {
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink = lines.clone();
    log::set_sink(Some(Arc::new(move |_: Level, line: &str| {
        sink.lock().unwrap().push(line.to_string())
    })));
    log::set_level(Some(Level::Warn));
    let warned = |server: &Server| {
        let t = Target::parse(&server.url(), "GEMINI_ROTATOR_STATE").unwrap();
        lines.lock().unwrap().clear();
        RedisStore::open(&t, Arc::new(SystemClock)).unwrap();
        let found: Vec<String> = lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("redis_may_evict"))
            .cloned()
            .collect();
        found
    };
    let evicting = Server::start(&["--maxmemory-policy", "allkeys-lru"]);
    let found = warned(&evicting);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("allkeys-lru") && found[0].contains(&evicting.port.to_string()),
        "{}",
        found[0]
    );
    let safe = Server::start(&[]);
    assert!(warned(&safe).is_empty());
    log::set_sink(None);
}
