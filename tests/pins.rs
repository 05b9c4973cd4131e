//! The pins of the store seam (resource names to the quota group or key that made them) on
//! each store: this process's memory, the state file (shared by two real processes; a full
//! table evicts the pin nearest its expiry) and a real `redis-server` (shared by two stores,
//! expired by Redis, no key material in any value).

#[allow(dead_code)]
mod redis_support;

use gemini_rotator::clock::SystemClock;
use gemini_rotator::key::key_id;
use gemini_rotator::store::memory::MemoryStore;
use gemini_rotator::store::redis::{RedisStore, Target};
use gemini_rotator::store::shm::{ShmStore, PIN_CAPACITY};
use gemini_rotator::store::{PinTarget, Store};
use redis_support::Server;
use std::sync::Arc;

const GROUP_A: PinTarget = PinTarget::Group([0xa; 16]);
const GROUP_B: PinTarget = PinTarget::Group([0xb; 16]);

/// Pin, look up, replace, expire and unpin on one store.
fn the_pin_rules_hold(store: &dyn Store, name: &str) {
    let pins = store.pins();
    let now = store.now();
    assert_eq!(pins.lookup(name, now).unwrap(), None, "no pin yet");
    pins.pin(name, GROUP_A, now + 60_000).unwrap();
    assert_eq!(pins.lookup(name, now).unwrap(), Some(GROUP_A));
    let key = PinTarget::Key(key_id("some-key"));
    pins.pin(name, key, now + 60_000).unwrap();
    assert_eq!(
        pins.lookup(name, now).unwrap(),
        Some(key),
        "a pin is replaced"
    );
    pins.unpin(name).unwrap();
    assert_eq!(pins.lookup(name, now).unwrap(), None, "unpinned");
    pins.unpin(name).unwrap();
}

fn temp_state(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pins");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.state", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

#[test]
fn memory_pins() {
    let store = MemoryStore::new(Arc::new(SystemClock));
    the_pin_rules_hold(&store, "files/memory-1");
    let pins = store.pins();
    let now = store.now();
    pins.pin("files/memory-expired", GROUP_A, now + 1).unwrap();
    assert_eq!(
        pins.lookup("files/memory-expired", now + 1).unwrap(),
        None,
        "expired"
    );
}

#[test]
fn state_file_pins_are_shared_by_processes() {
    // The child: look the pin up in the file the parent names, and say what it found.
    if let Ok(path) = std::env::var("GR_PINS_CHILD_STATE") {
        let store = ShmStore::open(std::path::Path::new(&path), Arc::new(SystemClock)).unwrap();
        let found = store.pins().lookup("files/shared", store.now()).unwrap();
        assert_eq!(found, Some(GROUP_B), "the child sees the parent's pin");
        store
            .pins()
            .pin("files/from-child", GROUP_A, store.now() + 60_000)
            .unwrap();
        return;
    }
    let path = temp_state("shared");
    let store = ShmStore::open(&path, Arc::new(SystemClock)).unwrap();
    the_pin_rules_hold(&store, "files/shm-1");
    store
        .pins()
        .pin("files/shared", GROUP_B, store.now() + 60_000)
        .unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "state_file_pins_are_shared_by_processes",
            "--nocapture",
        ])
        .env("GR_PINS_CHILD_STATE", &path)
        .output()
        .unwrap();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stdout)
    );
    assert_eq!(
        store
            .pins()
            .lookup("files/from-child", store.now())
            .unwrap(),
        Some(GROUP_A),
        "the parent sees the child's pin"
    );
}

#[test]
fn a_full_pin_table_evicts_the_pin_nearest_its_expiry() {
    let path = temp_state("full");
    let store = ShmStore::open(&path, Arc::new(SystemClock)).unwrap();
    let pins = store.pins();
    let now = store.now();
    // Every entry taken, the one of files/n7 nearest its expiry.
    for i in 0..PIN_CAPACITY {
        let until = if i == 7 {
            now + 10_000
        } else {
            now + 100_000 + i as u64
        };
        pins.pin(&format!("files/n{i}"), GROUP_A, until).unwrap();
    }
    pins.pin("files/one-more", GROUP_B, now + 50_000).unwrap();
    assert_eq!(pins.lookup("files/one-more", now).unwrap(), Some(GROUP_B));
    assert_eq!(pins.lookup("files/n7", now).unwrap(), None, "evicted");
    for i in [0, 6, 8, PIN_CAPACITY - 1] {
        assert_eq!(
            pins.lookup(&format!("files/n{i}"), now).unwrap(),
            Some(GROUP_A),
            "files/n{i} is kept"
        );
    }
}

#[test]
fn redis_pins_are_shared_and_expired_by_redis() {
    let server = Server::start(&[]);
    let target = Target::parse(&server.url(), "GEMINI_ROTATOR_STATE").unwrap();
    let a = RedisStore::open(&target, Arc::new(SystemClock)).unwrap();
    let b = RedisStore::open(&target, Arc::new(SystemClock)).unwrap();
    the_pin_rules_hold(&a, "cachedContents/redis-1");
    let key = PinTarget::Key(key_id("the-secret-of-a-key"));
    a.pins().pin("upload:u1", key, a.now() + 60_000).unwrap();
    a.pins().pin("files/r1", GROUP_A, a.now() + 60_000).unwrap();
    assert_eq!(b.pins().lookup("upload:u1", b.now()).unwrap(), Some(key));
    assert_eq!(b.pins().lookup("files/r1", b.now()).unwrap(), Some(GROUP_A));
    let mut c = server.client(None);
    let names: Vec<String> = redis::cmd("KEYS").arg("*pin:*").query(&mut c).unwrap();
    assert!(
        names.iter().all(|n| n.starts_with("gemini-rotator:pin:")),
        "{names:?}"
    );
    assert_eq!(names.len(), 2, "{names:?}");
    for name in &names {
        let value: String = redis::cmd("GET").arg(name).query(&mut c).unwrap();
        assert!(!value.contains("the-secret-of-a-key"), "{value}");
        let ttl: i64 = redis::cmd("TTL").arg(name).query(&mut c).unwrap();
        assert!((1..=60).contains(&ttl), "Redis expires the pin: {ttl}");
    }
    b.pins().unpin("files/r1").unwrap();
    assert_eq!(a.pins().lookup("files/r1", a.now()).unwrap(), None);
}
