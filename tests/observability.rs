//! Statistics, the Prometheus exposition and log events after a scripted workload whose every
//! figure is known in advance.

mod common;

use common::*;
use serde_json::json;

#[test]
fn statistics_report_exactly_what_happened() {
    let w = World::new("obs-stats", 3, true, None, 60_000);
    let pool = scripted_workload(&w);
    // `refused` counts the times a key's own limiter, cooldown or disabled flag turned a request
    // away; after that the pool skips the key without asking until the time it named.
    let expect = [
        (
            &w.free[0],
            json!({"admitted": 1, "succeeded": 0, "refused": 1, "upstream_429": 1, "cooldown_cause": "per_minute", "disabled": null}),
        ),
        (
            &w.free[1],
            json!({"admitted": 1, "succeeded": 0, "refused": 1, "invalid_key": 1, "disabled": "API_KEY_INVALID"}),
        ),
        (
            &w.free[2],
            json!({"admitted": 4, "succeeded": 3, "refused": 1, "server_errors": 1, "retries": 1, "in_window": 4}),
        ),
        (
            w.paid.as_ref().unwrap(),
            json!({"admitted": 2, "succeeded": 2, "refused": 1, "in_window": 2, "tier": "paid"}),
        ),
    ];
    for (key, fields) in expect {
        let s = key_stats(&pool, key);
        for (name, value) in fields.as_object().unwrap() {
            assert_eq!(&s[name], value, "{name} of {}: {s}", s["fingerprint"]);
        }
    }
    let p = pool_stats(&pool);
    assert_eq!(
        [
            &p["requests"],
            &p["succeeded"],
            &p["failed"],
            &p["paid_fallbacks"],
            &p["exhausted"],
            &p["latency"]["count"]
        ],
        [6, 5, 1, 2, 1, 8]
    );
}

/// `name{labels} value` lines of the exposition, by name and labels.
fn samples(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line is `series value`");
            (
                series.to_string(),
                value.parse::<f64>().expect("a numeric value"),
            )
        })
        .collect()
}

#[test]
fn the_prometheus_exposition_says_the_same() {
    let w = World::new("obs-prom", 3, true, None, 60_000);
    let pool = scripted_workload(&w);
    let text =
        gemini_rotator::metrics::prometheus(&gemini_rotator::metrics::snapshot(&pool).unwrap());
    for key in w.free.iter().chain(w.paid.iter()) {
        assert!(!text.contains(key.as_str()), "a key in the exposition");
    }
    let s = samples(&text);
    let get = |series: &str| {
        s.iter()
            .find(|(n, _)| n == series)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    let fp = |k: &str| gemini_rotator::key::fingerprint(k);
    let (f0, f1, f2, paid) = (
        fp(&w.free[0]),
        fp(&w.free[1]),
        fp(&w.free[2]),
        fp(w.paid.as_ref().unwrap()),
    );
    assert_eq!(
        get(&format!(
            "gemini_rotator_key_admitted_total{{key=\"{f2}\",tier=\"free\"}}"
        )),
        4.0
    );
    assert_eq!(
        get(&format!(
            "gemini_rotator_key_local_refusals_total{{key=\"{f1}\",tier=\"free\"}}"
        )),
        1.0
    );
    assert_eq!(
        get(&format!(
            "gemini_rotator_key_upstream_rate_limited_total{{key=\"{f0}\",tier=\"free\"}}"
        )),
        1.0
    );
    assert_eq!(
        get(&format!(
            "gemini_rotator_key_errors_total{{key=\"{f1}\",tier=\"free\",class=\"invalid_key\"}}"
        )),
        1.0
    );
    assert_eq!(
        get(&format!(
            "gemini_rotator_key_errors_total{{key=\"{f2}\",tier=\"free\",class=\"server_error\"}}"
        )),
        1.0
    );
    assert_eq!(
        get(&format!(
            "gemini_rotator_key_disabled{{key=\"{f1}\",tier=\"free\",reason=\"API_KEY_INVALID\"}}"
        )),
        1.0
    );
    assert_eq!(
        get(&format!(
            "gemini_rotator_key_succeeded_total{{key=\"{paid}\",tier=\"paid\"}}"
        )),
        2.0
    );
    let cooldown = get(&format!("gemini_rotator_key_cooldown_remaining_seconds{{key=\"{f0}\",tier=\"free\",cause=\"per_minute\"}}"));
    assert!(cooldown > 55.0 && cooldown <= 60.0, "{cooldown}");
    assert_eq!(get("gemini_rotator_requests_total"), 6.0);
    assert_eq!(get("gemini_rotator_paid_fallbacks_total"), 2.0);
    assert_eq!(get("gemini_rotator_exhausted_total"), 1.0);
    assert_eq!(get("gemini_rotator_upstream_latency_seconds_count"), 8.0);
    assert_eq!(
        get("gemini_rotator_upstream_latency_seconds_bucket{le=\"+Inf\"}"),
        8.0
    );
    // Every family has HELP and TYPE, and counters end in _total.
    for line in text.lines().filter(|l| l.starts_with("# TYPE")) {
        let parts: Vec<_> = line.split(' ').collect();
        if parts[3] == "counter" {
            assert!(parts[2].ends_with("_total"), "{line}");
        }
        assert!(text.contains(&format!("# HELP {} ", parts[2])), "{line}");
    }
}
