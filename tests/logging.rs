//! Log events after the scripted workload. (Alone in its binary: the log sink is process-wide.)

mod common;

use common::*;
use gemini_rotator::log::{self, Level};
use serde_json::Value;
use std::sync::{Arc, Mutex};

#[test]
fn log_events_name_keys_by_fingerprint_only() {
    let events: Arc<Mutex<Vec<Value>>> = Default::default();
    let sink = events.clone();
    log::set_sink(Some(Arc::new(move |_, json| {
        sink.lock()
            .unwrap()
            .push(serde_json::from_str(json).unwrap())
    })));
    log::set_level(Some(Level::Info));
    let w = World::new("obs-log", 3, true, None, 60_000);
    let pool = scripted_workload(&w);
    log::set_level(None);
    log::set_sink(None);
    drop(pool);
    let events = events.lock().unwrap();
    let all = serde_json::to_string(&*events).unwrap();
    for key in w.free.iter().chain(w.paid.iter()) {
        assert!(!all.contains(key.as_str()));
    }
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(count("key_cooldown"), 1, "{all}");
    assert_eq!(count("key_disabled"), 1);
    assert_eq!(count("retry"), 1);
    assert_eq!(count("paid_fallback"), 2);
    assert_eq!(count("exhausted"), 1);
    let disabled = events
        .iter()
        .find(|e| e["event"] == "key_disabled")
        .unwrap();
    assert_eq!(
        disabled["key"],
        gemini_rotator::key::fingerprint(&w.free[1])
    );
    assert_eq!(disabled["reason"], "API_KEY_INVALID");
}
