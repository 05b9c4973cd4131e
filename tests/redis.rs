//! The Redis store against a real `redis-server` (started by the tests on a free loopback
//! port): the scripts' rules (boundaries, in-flight expiry, the high-water mark), a restart
//! that loses everything, an unreachable server, a password, a stale NOSCRIPT, and a scan
//! of every key and value for secrets.

mod redis_support;

use gemini_rotator::clock::SystemClock;
use gemini_rotator::key::{key_id, Tier};
use gemini_rotator::quota::{Limits, Quota};
use gemini_rotator::store::redis::{RedisStore, Target};
use gemini_rotator::store::{quota_id, KeySpec, Moment, QuotaSpec, Refusal, Store};
use gemini_rotator::Error;
use redis_support::Server;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SETTING: &str = "GEMINI_ROTATOR_STATE";

/// The quota record of the group `key:<secret's id>` and one model, with a rate limit only.
fn spec(secret: &str, limit: u64, window_ms: u64, inflight_ms: u64) -> QuotaSpec {
    let group = key_id(secret);
    QuotaSpec {
        id: quota_id(&group, "gemini-test"),
        group,
        group_name: format!("key:{}", gemini_rotator::key::fingerprint(secret)),
        model: "gemini-test".into(),
        tier: Tier::Free,
        limits: Limits {
            rate: Quota::requests_per_window(limit, window_ms),
            daily: None,
            tokens: None,
        },
        max_inflight_ms: inflight_ms,
        limit_setting: "GEMINI_FREE_RATE_LIMIT".into(),
        window_setting: "GEMINI_RATE_WINDOW_MS".into(),
    }
}

/// The key's own record.
fn key_spec(secret: &str) -> KeySpec {
    KeySpec {
        id: key_id(secret),
        fingerprint: gemini_rotator::key::fingerprint(secret),
        tier: Tier::Free,
        group: key_id(secret),
    }
}

/// The store's time now, with its Pacific day.
fn at(store: &RedisStore) -> Moment {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    Moment::of(store.now(), unix)
}

fn target(url: &str) -> Target {
    Target::parse(url, SETTING).unwrap()
}

fn open(url: &str) -> RedisStore {
    RedisStore::open(&target(url), Arc::new(SystemClock)).unwrap()
}

/// Marks the server's generation as long established, so that new records are trusted at
/// once (the restart tests leave it alone).
fn established(server: &Server) {
    let mut c = server.client(None);
    let _: () = redis::cmd("SET")
        .arg("gemini-rotator:epoch")
        .arg(1)
        .query(&mut c)
        .unwrap();
}

fn sleep_until(store: &RedisStore, t: u64) {
    while store.now() < t {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Admits once the record's refusal time has come: the time a refusal names is the server's,
/// carried to this host's clock with a round trip's uncertainty, so a try at that very time
/// may be a millisecond early; a few more tries within 100 ms settle it.
fn admit_from(
    store: &RedisStore,
    key: &dyn gemini_rotator::store::QuotaRecord,
    t: u64,
) -> Result<gemini_rotator::store::QuotaTicket, Refusal> {
    sleep_until(store, t);
    let give_up = store.now() + 100;
    loop {
        match key.try_admit(&at(&store), 0) {
            Err(Refusal::Until(_)) if store.now() < give_up => {
                std::thread::sleep(Duration::from_millis(2))
            }
            other => return other,
        }
    }
}

#[test]
fn the_limit_then_refusal_until_the_window_passes_and_an_abandoned_slot_frees_late() {
    let server = Server::start(&[]);
    established(&server);
    let store = open(&server.url());
    let key = store
        .quota(&spec("AIza-test-window-1", 3, 400, 300))
        .unwrap()
        .record;
    let mut tickets = Vec::new();
    for _ in 0..3 {
        tickets.push(key.try_admit(&at(&store), 0).expect("within the limit"));
    }
    let refused = key.try_admit(&at(&store), 0);
    let Err(Refusal::Until(ready)) = refused else {
        panic!("the fourth must be refused, got {refused:?}");
    };
    // In flight: the estimate is that they finish now, so a window from now at best.
    assert!(ready > store.now() + 300, "{ready} vs {}", store.now());
    // Two complete; the third is abandoned (its process died).
    key.complete(tickets[0].clone(), store.now(), None).unwrap();
    key.complete(tickets[1].clone(), store.now(), None).unwrap();
    let done = store.now();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        matches!(key.try_admit(&at(&store), 0), Err(Refusal::Until(_))),
        "inside the window nothing frees"
    );
    sleep_until(&store, done + 420);
    let a = key
        .try_admit(&at(&store), 0)
        .expect("the first finished slot frees after the window");
    let b = key.try_admit(&at(&store), 0).expect("and the second");
    assert!(
        matches!(key.try_admit(&at(&store), 0), Err(Refusal::Until(_))),
        "the abandoned slot holds until timeout + window after its admission"
    );
    key.complete(a, store.now(), None).unwrap();
    key.complete(b, store.now(), None).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    key.try_admit(&at(&store), 0)
        .expect("the abandoned slot frees timeout + window after admission");
    let snap = key.snapshot(&at(&store)).unwrap();
    assert_eq!(snap.limits.rate, Quota::requests_per_window(3, 400));
    assert_eq!(snap.usage.in_flight, 1);
}

#[test]
fn threads_of_two_stores_never_exceed_the_limit_in_any_window() {
    let server = Server::start(&[]);
    established(&server);
    const LIMIT: usize = 5;
    const WINDOW: u64 = 200;
    let stamps = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Instant::now();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (url, stamps) = (server.url(), stamps.clone());
            std::thread::spawn(move || {
                let store = open(&url);
                let key = store
                    .quota(&spec("AIza-test-race", LIMIT as u64, WINDOW, 1000))
                    .unwrap()
                    .record;
                while started.elapsed() < Duration::from_millis(1500) {
                    if let Ok(t) = key.try_admit(&at(&store), 0) {
                        key.complete(t.clone(), store.now(), None).unwrap();
                        stamps.lock().unwrap().push(t.rate.record);
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let mut admitted = stamps.lock().unwrap().clone();
    admitted.sort_unstable();
    assert!(
        admitted.len() > 2 * LIMIT,
        "admitted {} only",
        admitted.len()
    );
    // Admission times are server times; an admission is at or before its slot's stamp, so
    // admissions more than one window apart per slot bound any window of stamps.
    let mut lo = 0;
    for hi in 0..admitted.len() {
        while admitted[hi] - admitted[lo] > WINDOW {
            lo += 1;
        }
        assert!(
            hi - lo < LIMIT,
            "{} admissions within {WINDOW} ms",
            hi - lo + 1
        );
    }
}

#[test]
fn a_restart_that_loses_everything_holds_admissions_back_for_timeout_plus_window() {
    let mut server = Server::start(&[]);
    established(&server);
    let store = open(&server.url());
    let key = store
        .quota(&spec("AIza-test-restart", 2, 300, 200))
        .unwrap()
        .record;
    let _in_flight = key.try_admit(&at(&store), 0).unwrap();
    let t = key.try_admit(&at(&store), 0).unwrap();
    key.complete(t, store.now(), None).unwrap();
    server.restart_empty();
    let lost_at = store.now();
    // A store opened after the restart holds its new records back too.
    let fresh = open(&server.url());
    let other = fresh
        .quota(&spec("AIza-test-restart-2", 2, 300, 200))
        .unwrap()
        .record;
    assert!(matches!(
        other.try_admit(&at(&fresh), 0),
        Err(Refusal::Until(_))
    ));
    let mut first = None;
    // The connection broke: the first call may fail as a state error, never admit.
    for _ in 0..3 {
        match key.try_admit(&at(&store), 0) {
            Err(Refusal::Until(ready)) => {
                first = Some(ready);
                break;
            }
            Err(Refusal::Store(e)) => assert!(e.to_string().contains("127.0.0.1"), "{e}"),
            other => panic!("over-admission after a restart: {other:?}"),
        }
    }
    let ready = first.expect("the record's loss is detected");
    assert!(
        ready >= lost_at + 500,
        "held back for timeout + window: {ready} vs {lost_at}"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(matches!(
        key.try_admit(&at(&store), 0),
        Err(Refusal::Until(_))
    ));
    admit_from(&store, &*key, ready).expect("service resumes");
}

#[test]
fn an_unreachable_server_fails_promptly_naming_it_and_works_once_it_is_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:pa55word@127.0.0.1:{port}/0");
    let mut t = target(&url);
    t.timeout_ms = 500;
    let store = RedisStore::open(&t, Arc::new(SystemClock)).expect("no server is no error yet");
    let key = store
        .quota(&spec("AIza-test-down", 2, 100, 100))
        .expect("a pool can be made");
    let started = Instant::now();
    let e = match key.record.try_admit(&at(&store), 0) {
        Err(Refusal::Store(e)) => e,
        other => panic!("{other:?}"),
    };
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let text = e.to_string();
    assert!(matches!(e, Error::State { .. }), "{e:?}");
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) && !text.contains("pa55word"),
        "{text}"
    );
    // Redis comes up: the same pool's record registers and, after the hold a new
    // generation takes, admits.
    let _server = Server::start_on(port, &["--requirepass", "pa55word"]);
    let until = match key.record.try_admit(&at(&store), 0) {
        Err(Refusal::Until(t)) => t,
        other => panic!("{other:?}"),
    };
    admit_from(&store, &*key.record, until).expect("works once Redis is up");
}

#[test]
fn a_password_is_required_and_a_wrong_one_names_the_setting() {
    let server = Server::start(&["--requirepass", "s3cr3t-pw"]);
    let wrong = format!("redis://:nope-pw@127.0.0.1:{}/0", server.port);
    let e = RedisStore::open(&target(&wrong), Arc::new(SystemClock))
        .err()
        .expect("refused");
    let text = e.to_string();
    assert!(
        text.contains(SETTING) && !text.contains("nope-pw"),
        "{text}"
    );
    let right = format!("redis://:s3cr3t-pw@127.0.0.1:{}/0", server.port);
    let store = RedisStore::open(&target(&right), Arc::new(SystemClock)).unwrap();
    assert!(!store.describe().contains("s3cr3t"));
    let key = store
        .quota(&spec("AIza-test-pw", 2, 100, 100))
        .unwrap()
        .record;
    // A new generation: held back first, then admitted.
    let until = match key.try_admit(&at(&store), 0) {
        Err(Refusal::Until(t)) => t,
        other => panic!("{other:?}"),
    };
    admit_from(&store, &*key, until).expect("admitted with the right password");
}

#[test]
fn a_flushed_script_cache_is_refilled_and_nothing_runs_twice() {
    let server = Server::start(&[]);
    established(&server);
    let store = open(&server.url());
    let key = store
        .quota(&spec("AIza-test-flush", 3, 10_000, 1000))
        .unwrap()
        .record;
    key.try_admit(&at(&store), 0).unwrap();
    let mut c = server.client(None);
    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut c).unwrap();
    key.try_admit(&at(&store), 0).unwrap();
    key.try_admit(&at(&store), 0).unwrap();
    assert!(
        matches!(key.try_admit(&at(&store), 0), Err(Refusal::Until(_))),
        "exactly three"
    );
    assert_eq!(key.snapshot(&at(&store)).unwrap().usage.in_window, 3);
}

#[test]
fn every_redis_key_is_under_the_prefix_and_no_value_holds_an_api_key() {
    let server = Server::start(&[]);
    established(&server);
    let secrets = [
        "AIzaSyScanSecretNumberOne0000000",
        "AIzaSyScanSecretNumberTwo0000000",
    ];
    {
        let store = open(&server.url());
        for s in secrets {
            let quota = store.quota(&spec(s, 2, 1000, 1000)).unwrap().record;
            let key = store.key(&key_spec(s)).unwrap().record;
            let t = quota.try_admit(&at(&store), 0).unwrap();
            key.count(gemini_rotator::metrics::counters::KeyCounter::Admitted)
                .unwrap();
            quota.complete(t, store.now(), None).unwrap();
            key.disable(gemini_rotator::health::DisabledReason::Leaked)
                .unwrap();
        }
        let pool = store.pool(&[7; 16]).unwrap();
        pool.add(gemini_rotator::metrics::counters::PoolCounter::Requests, 2)
            .unwrap();
        assert_eq!(
            pool.snapshot()
                .unwrap()
                .counter(gemini_rotator::metrics::counters::PoolCounter::Requests),
            2
        );
        let all = store.all_keys().unwrap();
        assert_eq!(all.len(), 2);
        assert!(all
            .iter()
            .all(|k| k.snapshot.disabled.is_some() && k.snapshot.counters[0] == 1));
    }
    let mut c = server.client(None);
    let names: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert!(names.len() >= 4, "{names:?}");
    for name in &names {
        assert!(name.starts_with("gemini-rotator:"), "{name}");
        let dump: Vec<u8> = redis::cmd("DUMP").arg(name).query(&mut c).unwrap();
        for s in secrets {
            assert!(!name.contains(s));
            for needle in [s.as_bytes(), &s.as_bytes()[..12]] {
                assert!(
                    !dump.windows(needle.len()).any(|w| w == needle),
                    "{name} holds part of an API key"
                );
            }
        }
    }
}

/// Sets the record's high-water mark (the header's last word, at the start of its ring
/// string): the scripts' time is then at least `t`, which drives the server's clock forward
/// exactly, to test the boundaries to the millisecond.
fn set_hwm(server: &Server, secret: &str, t: u64) {
    let id = spec(secret, 1, 1, 1).id;
    let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let mut c = server.client(None);
    let _: Vec<i64> = redis::cmd("BITFIELD")
        .arg(format!("gemini-rotator:quota:{{{hex}}}:rate"))
        .arg("SET")
        .arg("i64")
        .arg(format!(
            "#{}",
            gemini_rotator::store::redis::HEADER_WORDS - 1
        ))
        .arg(t)
        .query(&mut c)
        .unwrap();
}

#[test]
fn boundaries_are_exact_to_the_millisecond_and_a_clock_behind_the_mark_frees_nothing() {
    let server = Server::start(&[]);
    established(&server);
    let store = open(&server.url());
    let secret = "AIza-test-boundaries";
    let key = store.quota(&spec(secret, 1, 1000, 500)).unwrap().record;
    // Far ahead of the server's clock: the server's own time is behind the mark from here on.
    let base = 4_000_000_000_000u64;
    set_hwm(&server, secret, base);
    let t = key.try_admit(&at(&store), 0).unwrap();
    assert_eq!(
        t.rate.record, base,
        "admitted at the mark, not at the (earlier) server time"
    );
    set_hwm(&server, secret, base + 10);
    key.complete(t, store.now(), None).unwrap();
    set_hwm(&server, secret, base + 1010);
    assert!(
        matches!(key.try_admit(&at(&store), 0), Err(Refusal::Until(_))),
        "exactly one window after the completion is still inside"
    );
    set_hwm(&server, secret, base + 1011);
    let t = key
        .try_admit(&at(&store), 0)
        .expect("one millisecond later it is free");
    assert_eq!(t.rate.record, base + 1011);
    // Left in flight: it holds its slot until admission + timeout + window.
    set_hwm(&server, secret, base + 1011 + 1500);
    assert!(matches!(
        key.try_admit(&at(&store), 0),
        Err(Refusal::Until(_))
    ));
    set_hwm(&server, secret, base + 1011 + 1501);
    let t = key
        .try_admit(&at(&store), 0)
        .expect("the abandoned slot frees");
    // The server's clock (far behind the mark) never moves the record's time back.
    key.complete(t, store.now(), None).unwrap();
    assert!(matches!(
        key.try_admit(&at(&store), 0),
        Err(Refusal::Until(_))
    ));
}

#[test]
fn a_server_that_does_not_answer_fails_within_the_timeout_and_recovers() {
    let server = Server::start(&[]);
    established(&server);
    let mut t = target(&server.url());
    t.timeout_ms = 300;
    let store = RedisStore::open(&t, Arc::new(SystemClock)).unwrap();
    let key = store
        .quota(&spec("AIza-test-stopped", 5, 100, 100))
        .unwrap()
        .record;
    key.try_admit(&at(&store), 0).unwrap();
    server.signal("-STOP");
    let started = Instant::now();
    let e = match key.try_admit(&at(&store), 0) {
        Err(Refusal::Store(e)) => e,
        other => panic!("{other:?}"),
    };
    let took = started.elapsed();
    server.signal("-CONT");
    assert!(e.to_string().contains("no answer within 300 ms"), "{e}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // The broken connection was dropped: the next call connects afresh.
    key.try_admit(&at(&store), 0)
        .expect("works again once the server answers");
}

#[test]
fn the_local_fallback_holds_each_process_to_its_share_while_redis_is_down() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut t = target(&format!("redis://127.0.0.1:{port}/0"));
    t.on_failure = gemini_rotator::store::redis::OnFailure::Local { share: 3 };
    let store = RedisStore::open(&t, Arc::new(SystemClock)).unwrap();
    let key = store
        .quota(&spec("AIza-test-local", 7, 10_000, 1000))
        .unwrap()
        .record;
    // 7 / 3: two admissions in this process, then refusals naming a time.
    let a = key.try_admit(&at(&store), 0).expect("local share");
    let b = key.try_admit(&at(&store), 0).expect("local share");
    assert!(matches!(
        key.try_admit(&at(&store), 0),
        Err(Refusal::Until(_))
    ));
    key.complete(a, store.now(), None).unwrap();
    key.complete(b, store.now(), None).unwrap();
}

#[test]
fn three_quotas_admit_all_or_nothing_and_completion_corrects_the_tokens() {
    let server = Server::start(&[]);
    established(&server);
    let store = open(&server.url());
    let mut s = spec("AIza-test-three", 10, 60_000, 1000);
    s.limits.daily = Some(Quota::requests_per_day(3));
    s.limits.tokens = Some(Quota::tokens_per_window(100, 60_000));
    let q = store.quota(&s).unwrap().record;
    // 60 of 100 tokens: then 50 more do not fit, and the refusal takes nothing.
    let a = q.try_admit(&at(&store), 60).unwrap();
    assert_eq!(a.tokens.as_slice().len(), 60);
    assert!(matches!(
        q.try_admit(&at(&store), 50),
        Err(Refusal::Until(_))
    ));
    let snap = q.snapshot(&at(&store)).unwrap();
    assert_eq!(
        (snap.usage.in_window, snap.today, snap.tokens_in_window),
        (1, 1, 60)
    );
    // The service counted 20: 40 slots free again.
    q.complete(a, store.now(), Some(20)).unwrap();
    assert_eq!(q.snapshot(&at(&store)).unwrap().tokens_in_window, 20);
    let b = q.try_admit(&at(&store), 50).unwrap();
    q.complete(b, store.now(), None).unwrap();
    q.try_admit(&at(&store), 1).unwrap();
    // Three today: the fourth waits for the Pacific midnight, without taking a slot.
    let day = at(&store);
    assert_eq!(q.try_admit(&day, 1), Err(Refusal::Until(day.day_ends)));
    let snap = q.snapshot(&at(&store)).unwrap();
    assert_eq!((snap.usage.in_window, snap.today), (3, 3));
    // A lowered limit and an unavailable model, per (group, model).
    assert!(q
        .lower_limit(gemini_rotator::store::LimitKind::Daily, 2)
        .unwrap());
    assert!(!q
        .lower_limit(gemini_rotator::store::LimitKind::Daily, 5)
        .unwrap());
    q.mark_unavailable(store.now() + 5000).unwrap();
    assert!(matches!(
        q.try_admit(&at(&store), 1),
        Err(Refusal::Unavailable(_))
    ));
    let snap = q.snapshot(&at(&store)).unwrap();
    assert_eq!(snap.limits.daily, Some(Quota::requests_per_day(2)));
    assert!(snap.unavailable_until > store.now());
    assert_eq!(q.capacity_streak(true).unwrap(), 0);
    assert_eq!(q.capacity_streak(true).unwrap(), 1);
    q.count_fallback().unwrap();
    let all = store.all_quotas(&at(&store)).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].model.as_str(), all[0].fallbacks),
        ("gemini-test", 1)
    );
    // Other limits for the same group and model while its slots count: refused, naming both.
    let mut other = s.clone();
    other.limits.rate = Quota::requests_per_window(5, 60_000);
    let e = store.quota(&other).err().expect("a conflict");
    assert!(e.to_string().contains("gemini-test"), "{e}");
}

/// A Redis Cluster node that owns every slot: it refuses any script whose keys are not all in
/// one slot (CROSSSLOT), and a script that touches an undeclared key of another slot.
fn cluster_node() -> Server {
    let server = Server::start(&["--cluster-enabled", "yes"]);
    let mut c = server.client(None);
    let _: () = redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query(&mut c)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("CLUSTER").arg("INFO").query(&mut c).unwrap();
        if info.contains("cluster_state:ok") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the cluster did not come up: {info}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

#[test]
fn every_script_runs_on_a_cluster_node_so_each_records_keys_share_a_slot() {
    let server = cluster_node();
    let mut c = server.client(None);
    // The node does check: a script on keys of two slots is refused.
    let refused: redis::RedisResult<i64> = redis::cmd("EVAL")
        .arg("return 1")
        .arg(2)
        .arg("a")
        .arg("b")
        .query(&mut c);
    let e = refused.unwrap_err();
    assert_eq!(e.code(), Some("CROSSSLOT"), "the node checks slots: {e}");
    established(&server);
    let store = open(&server.url());
    let secret = "AIza-test-cluster";
    let mut s = spec(secret, 3, 60_000, 1000);
    s.limits.daily = Some(Quota::requests_per_day(100));
    s.limits.tokens = Some(Quota::tokens_per_window(1000, 60_000));
    // Every script of the store, once: registration, admission, completion, the rare writes,
    // snapshots, the key's record, the pool's record and its cursor.
    let q = store.quota(&s).unwrap().record;
    let t = q.try_admit(&at(&store), 10).unwrap();
    q.complete(t, store.now(), Some(5)).unwrap();
    q.cool_down(
        store.now() + 10,
        gemini_rotator::health::CooldownCause::PerMinute,
    )
    .unwrap();
    q.mark_unavailable(store.now() + 10).unwrap();
    assert!(q
        .lower_limit(gemini_rotator::store::LimitKind::Rate, 2)
        .unwrap());
    q.capacity_streak(true).unwrap();
    q.reset_capacity().unwrap();
    q.count_fallback().unwrap();
    let snap = q.snapshot(&at(&store)).unwrap();
    assert_eq!(
        (snap.usage.in_window, snap.today, snap.fallbacks),
        (1, 1, 1)
    );
    assert_eq!(store.all_quotas(&at(&store)).unwrap().len(), 1);
    let key = store.key(&key_spec(secret)).unwrap().record;
    key.count(gemini_rotator::metrics::counters::KeyCounter::Admitted)
        .unwrap();
    key.disable(gemini_rotator::health::DisabledReason::Leaked)
        .unwrap();
    assert!(key.disabled().unwrap().is_some());
    assert!(key.snapshot().unwrap().disabled.is_some());
    let fp = gemini_rotator::key::fingerprint(secret);
    assert!(matches!(
        store.enable(&fp).unwrap(),
        gemini_rotator::store::Enabled::Enabled { was: Some(_) }
    ));
    let pool = store.pool(&[9; 16]).unwrap();
    // The first value is local; the next admission takes the shared counter's first in
    // passing (its INCRBY pipelined with the script: commands of two slots, no script).
    pool.next_cursor().unwrap();
    std::thread::sleep(Duration::from_millis(100)); // the cooldown and unavailability end
    q.try_admit(&at(&store), 1).unwrap();
    assert_eq!(pool.next_cursor().unwrap(), 0);
    pool.add(gemini_rotator::metrics::counters::PoolCounter::Requests, 1)
        .unwrap();
    assert_eq!(
        pool.snapshot()
            .unwrap()
            .counter(gemini_rotator::metrics::counters::PoolCounter::Requests),
        1
    );
    // And by name: the Redis keys of each record (its hash tag) hash to one slot.
    let names: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    let mut by_tag = std::collections::HashMap::<String, Vec<(String, i64)>>::new();
    for name in names {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(&name)
            .query(&mut c)
            .unwrap();
        let tag = match (name.find('{'), name.find('}')) {
            (Some(a), Some(b)) => name[a..=b].to_string(),
            _ => name.clone(),
        };
        by_tag.entry(tag).or_default().push((name, slot));
    }
    let quota_names = by_tag
        .values()
        .find(|v| v.iter().any(|(n, _)| n.ends_with(":rate")))
        .expect("the quota record");
    assert_eq!(quota_names.len(), 3, "{quota_names:?}");
    let pool_names = by_tag
        .values()
        .find(|v| v.iter().any(|(n, _)| n.ends_with(":cursor")))
        .expect("the pool record");
    assert_eq!(pool_names.len(), 2, "{pool_names:?}");
    for names in by_tag.values() {
        assert!(
            names.iter().all(|(_, slot)| *slot == names[0].1),
            "one record, one slot: {names:?}"
        );
    }
}

/// A throwaway certificate authority and a certificate it signs for 127.0.0.1, made with the
/// `openssl` command in `dir`: (CA file, server certificate, server key).
fn certificates(dir: &std::path::Path, name: &str) -> (String, String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let f = |n: &str| dir.join(format!("{name}-{n}")).display().to_string();
    let (ca, ca_key, crt, key, csr, ext) = (
        f("ca.crt"),
        f("ca.key"),
        f("server.crt"),
        f("server.key"),
        f("server.csr"),
        f("ext.cnf"),
    );
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for args in [
        [
            &["req", "-x509"][..],
            &ec[..],
            &["-keyout", &ca_key, "-out", &ca, "-days", "2"],
            &[
                "-subj",
                "/CN=gemini-rotator test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec[..],
            &["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    ] {
        let out = std::process::Command::new("openssl")
            .args(&args)
            .output()
            .expect("the openssl command is installed (tests/run needs it)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (ca, crt, key)
}

#[test]
fn admissions_over_tls_trust_the_configured_ca_and_a_wrong_one_is_a_state_error() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("redis-tls-{}", std::process::id()));
    let (ca, crt, key) = certificates(&dir, "good");
    let (other_ca, _, _) = certificates(&dir, "other");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = port.to_string();
    let _server = Server::start_on(
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &p,
            "--tls-cert-file",
            &crt,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
        ],
    );
    let url = format!("rediss://127.0.0.1:{port}/0");
    let with_ca = |file: Option<&str>| {
        let mut t = target(&url);
        t.ca_file = file.map(Into::into);
        RedisStore::open(&t, Arc::new(SystemClock))
    };
    // Trusting the CA that signed the server's certificate: admissions over TLS.
    let store = with_ca(Some(&ca)).unwrap();
    let q = store
        .quota(&spec("AIza-test-tls", 2, 100, 100))
        .unwrap()
        .record;
    // A new generation: held back first, then admitted.
    let until = match q.try_admit(&at(&store), 0) {
        Err(Refusal::Until(t)) => t,
        other => panic!("{other:?}"),
    };
    let t = admit_from(&store, &*q, until).expect("admitted over TLS");
    q.complete(t, store.now(), None).unwrap();
    assert_eq!(q.snapshot(&at(&store)).unwrap().usage.in_window, 1);
    // Another CA, or the default roots: the server is not trusted, a state error naming it.
    for file in [Some(other_ca.as_str()), None] {
        let store = with_ca(file).expect("an untrusted server is no error yet");
        let q = store
            .quota(&spec("AIza-test-tls", 2, 100, 100))
            .unwrap()
            .record;
        let e = match q.try_admit(&at(&store), 0) {
            Err(Refusal::Store(e)) => e,
            other => panic!("{file:?}: {other:?}"),
        };
        let text = e.to_string();
        assert!(matches!(e, Error::State { .. }), "{e:?}");
        assert!(
            text.contains(&url)
                && text.contains("not trusted")
                && text.contains("GEMINI_ROTATOR_REDIS_CA_FILE"),
            "{text}"
        );
    }
    // A file that cannot be read, or holds no certificate: a configuration error naming the
    // setting and the file.
    let not_pem = dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.join("missing.pem");
    for (file, words) in [(&missing, "cannot be read"), (&not_pem, "no certificate")] {
        let e = with_ca(Some(file.to_str().unwrap()))
            .err()
            .expect("refused");
        let text = e.to_string();
        assert!(matches!(e, Error::Config { .. }), "{e:?}");
        assert!(
            text.contains("GEMINI_ROTATOR_REDIS_CA_FILE")
                && text.contains(file.to_str().unwrap())
                && text.contains(words),
            "{text}"
        );
    }
    // A CA file for a plain redis:// URL is a mistake, said so.
    let mut t = target(&format!("redis://127.0.0.1:{port}/0"));
    t.ca_file = Some(ca.clone().into());
    let e = RedisStore::open(&t, Arc::new(SystemClock))
        .err()
        .expect("refused");
    assert!(e.to_string().contains("no TLS"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_head_slot_still_in_flight_is_passed_over_and_a_refusal_keeps_nothing() {
    let server = Server::start(&[]);
    established(&server);
    let store = open(&server.url());
    let q = store
        .quota(&spec("AIza-test-head", 3, 200, 60_000))
        .unwrap()
        .record;
    let a = q.try_admit(&at(&store), 0).unwrap();
    let b = q.try_admit(&at(&store), 0).unwrap();
    let c = q.try_admit(&at(&store), 0).unwrap();
    assert_eq!((a.rate.seq, b.rate.seq, c.rate.seq), (0, 1, 2));
    // a stays in flight (for up to a minute); b and c finish.
    q.complete(b, store.now(), None).unwrap();
    q.complete(c, store.now(), None).unwrap();
    std::thread::sleep(Duration::from_millis(260));
    // The head (seq 3) is a's slot: put back untouched, and the next free slot taken.
    let d = q.try_admit(&at(&store), 0).expect("b's slot is free");
    assert_eq!(d.rate.seq, 4);
    let e = q.try_admit(&at(&store), 0).expect("c's slot is free");
    assert_eq!(e.rate.seq, 5);
    assert!(matches!(
        q.try_admit(&at(&store), 0),
        Err(Refusal::Until(_))
    ));
    let snap = q.snapshot(&at(&store)).unwrap();
    assert_eq!((snap.usage.in_window, snap.usage.in_flight), (3, 3));
    q.complete(d, store.now(), None).unwrap();
    q.complete(e, store.now(), None).unwrap();
    assert_eq!(q.snapshot(&at(&store)).unwrap().usage.in_flight, 1, "a's");

    // Tokens that fit and a rate that does not: the refusal keeps no token slot, no day count.
    let mut s = spec("AIza-test-keep-nothing", 1, 60_000, 1000);
    s.limits.daily = Some(Quota::requests_per_day(10));
    s.limits.tokens = Some(Quota::tokens_per_window(100, 60_000));
    let q = store.quota(&s).unwrap().record;
    q.try_admit(&at(&store), 10).unwrap();
    assert!(matches!(
        q.try_admit(&at(&store), 10),
        Err(Refusal::Until(_))
    ));
    let snap = q.snapshot(&at(&store)).unwrap();
    assert_eq!(
        (snap.usage.in_window, snap.today, snap.tokens_in_window),
        (1, 1, 10)
    );
    // A lowered rate limit and a cooldown live in the record's header, shared.
    let other = open(&server.url());
    let seen = other.quota(&s).unwrap().record;
    assert!(q
        .lower_limit(gemini_rotator::store::LimitKind::Tokens, 50)
        .unwrap());
    q.cool_down(
        store.now() + 5000,
        gemini_rotator::health::CooldownCause::PerMinute,
    )
    .unwrap();
    let snap = seen.snapshot(&at(&other)).unwrap();
    assert_eq!(
        snap.limits.tokens,
        Some(Quota::tokens_per_window(50, 60_000))
    );
    assert_eq!(
        snap.cooldown_cause,
        gemini_rotator::health::CooldownCause::PerMinute
    );
    assert!(snap.cooldown_until > other.now() + 4000);
}
