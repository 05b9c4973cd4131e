//! Quota configuration: projects (`PROJECT:KEY`), daily and token limits, per-model limits and
//! fallbacks, and the config file (JSON and TOML) under the environment; every bad value is an
//! error naming where it was (variable, file, field path) and never showing a key.

use super::tests::{env, err};
use super::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn secrets(c: &Config) -> Vec<&str> {
    c.free_keys.iter().map(|k| k.secret()).collect()
}

/// A fresh directory of this test process, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gr-config-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration from `file` (and more variables).
fn with_file(file: &Path, more: &[(&str, &str)]) -> Result<Config, Error> {
    let path = file.to_str().unwrap().to_string();
    let mut pairs: Vec<(&str, &str)> = vec![("GEMINI_ROTATOR_CONFIG", &path)];
    pairs.extend_from_slice(more);
    env(&pairs)
}

// ---- Projects -------------------------------------------------------------------------------

#[test]
fn keys_of_one_project_share_a_group_and_a_key_alone_is_its_own() {
    let c = env(&[
        (
            "GEMINI_FREE_KEYS",
            " alpha : k1, alpha:k2 ,k3, beta-2.x_y:k4",
        ),
        ("GEMINI_PAID_KEY", "billing:p1"),
    ])
    .unwrap();
    assert_eq!(secrets(&c), ["k1", "k2", "k3", "k4"]);
    let key = |i: usize| &c.free_keys[i];
    assert_eq!(c.project_of(key(0)), Some("alpha"));
    assert_eq!(c.project_of(key(2)), None);
    assert_eq!(c.project_of(key(3)), Some("beta-2.x_y"));
    assert_eq!(c.group_id(key(0)), c.group_id(key(1)));
    assert_eq!(c.group_id(key(0)).as_str(), "alpha");
    assert!(c.group_id(key(0)).is_project());
    let alone = c.group_id(key(2));
    assert!(!alone.is_project());
    assert_eq!(
        alone.as_str(),
        format!("key:{}", crate::key::hex(key(2).id()))
    );
    assert!(alone.as_str()[4..].starts_with(key(2).fingerprint()));
    assert!(!alone.as_str().contains("k3"));
    assert_ne!(alone.digest(), c.group_id(key(0)).digest());
    assert_eq!(c.group_id(key(0)).digest(), c.group_id(key(1)).digest());
    let paid = c.paid_key.as_ref().unwrap();
    assert_eq!((paid.secret(), c.project_of(paid)), ("p1", Some("billing")));
}

#[test]
fn a_key_is_split_at_its_first_colon_and_json_can_give_a_key_with_colons() {
    let c = env(&[("GEMINI_FREE_KEYS", "p:k:with:colons")]).unwrap();
    assert_eq!(secrets(&c), ["k:with:colons"]);
    assert_eq!(c.project_of(&c.free_keys[0]), Some("p"));

    let c = Config::from_json(
        r#"{"free_keys":["a:k1", {"key":"k:2","project":"a"}, {"key":"k3"}, {"key":"k4","project":null}],
            "paid_key":{"key":"pk","project":"paid-proj"}}"#,
    )
    .unwrap();
    assert_eq!(secrets(&c), ["k1", "k:2", "k3", "k4"]);
    assert_eq!(c.group_id(&c.free_keys[0]), c.group_id(&c.free_keys[1]));
    assert_eq!(c.project_of(&c.free_keys[2]), None);
    assert_eq!(c.project_of(&c.free_keys[3]), None);
    assert_eq!(
        c.project_of(c.paid_key.as_ref().unwrap()),
        Some("paid-proj")
    );
}

#[test]
fn a_bad_entry_is_named_by_its_variable_and_position_never_by_its_text() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("GEMINI_FREE_KEYS", "ok1,:secret-aaa")],
            "GEMINI_FREE_KEYS: key 2: the project before ':' is empty",
        ),
        (
            &[("GEMINI_FREE_KEYS", "ok1, , secret-proj:")],
            "GEMINI_FREE_KEYS: key 2: the key after 'PROJECT:' is empty",
        ),
        (
            &[("GEMINI_FREE_KEYS", "secret/proj:k")],
            "GEMINI_FREE_KEYS: key 1: the project name is not one",
        ),
        (
            &[("GEMINI_FREE_KEYS", &format!("{}:k", "s".repeat(65)))],
            "GEMINI_FREE_KEYS: key 1: the project name is not one",
        ),
        (
            &[("GEMINI_FREE_KEYS", "k"), ("GEMINI_PAID_KEY", "secret-p:")],
            "GEMINI_PAID_KEY: the key: the key after 'PROJECT:' is empty",
        ),
        (
            &[("GEMINI_FREE_KEYS", "p:secret one")],
            "GEMINI_FREE_KEYS: key 1 (fingerprint",
        ),
        (
            &[("GEMINI_FREE_KEYS", "p:secret-k, q:secret-k")],
            "GEMINI_FREE_KEYS: key 2 (fingerprint",
        ),
        (
            &[
                ("GEMINI_FREE_KEYS", "shared:secret-1"),
                ("GEMINI_PAID_KEY", "shared:secret-2"),
            ],
            "GEMINI_PAID_KEY: the paid key (fingerprint",
        ),
    ];
    for (pairs, expected) in cases {
        let msg = err(env(pairs));
        assert!(
            msg.contains(expected),
            "{pairs:?}: {msg:?} lacks {expected:?}"
        );
        assert!(
            !msg.contains("secret"),
            "{pairs:?}: {msg:?} shows the entry"
        );
    }
}

#[test]
fn a_bad_json_entry_is_named_by_its_field_and_position() {
    let cases = [
        (
            r#"{"free_keys":["k",{"key":""}]}"#,
            "config field `free_keys`: key 2: its `key` is empty",
        ),
        (
            r#"{"free_keys":[{"project":"p"}]}"#,
            "key 1: an object entry needs a `key`",
        ),
        (
            r#"{"free_keys":[{"key":5}]}"#,
            "key 1: its `key` must be a string",
        ),
        (
            r#"{"free_keys":[{"key":"k","project":""}]}"#,
            "key 1: its `project`: the project name is empty",
        ),
        (
            r#"{"free_keys":[{"key":"k","project":7}]}"#,
            "key 1: its `project` must be a string",
        ),
        (
            r#"{"free_keys":[{"key":"k","secret-field":"x"}]}"#,
            "key 1: an object entry has only the fields `key` and `project`",
        ),
        (
            r#"{"free_keys":[true]}"#,
            "config field `free_keys`: entry 1 must be a string",
        ),
        (
            r#"{"free_keys":{"key":"k"}}"#,
            "config field `free_keys`: must be a list of keys, got an object",
        ),
        (
            r#"{"paid_key":{"key":"k","project":"a b"}}"#,
            "config field `paid_key`: the key: its `project`",
        ),
        (
            r#"{"paid_key":["k"]}"#,
            "config field `paid_key`: must be a string",
        ),
    ];
    for (json, expected) in cases {
        let msg = err(Config::from_json(json));
        assert!(msg.contains(expected), "{json}: {msg:?} lacks {expected:?}");
        assert!(!msg.contains("secret"), "{json}: {msg:?}");
    }
}

// ---- Daily and token limits; per-model limits --------------------------------------------

#[test]
fn daily_and_token_limits_are_off_unless_set() {
    let c = env(&[("GEMINI_FREE_KEYS", "k")]).unwrap();
    assert_eq!(
        (
            c.free_daily_limit,
            c.paid_daily_limit,
            c.free_token_limit,
            c.paid_token_limit
        ),
        (None, None, None, None)
    );
    assert_eq!(
        c.limits("gemini-3.6-flash", Tier::Free),
        ModelLimits {
            rate: 60,
            daily: None,
            tokens: None
        }
    );
    let c = env(&[
        ("GEMINI_FREE_KEYS", "k"),
        ("GEMINI_FREE_DAILY_LIMIT", "20"),
        ("GEMINI_PAID_DAILY_LIMIT", "10000"),
        ("GEMINI_FREE_TOKEN_LIMIT", "250000"),
        ("GEMINI_PAID_TOKEN_LIMIT", " 4000000 "),
    ])
    .unwrap();
    assert_eq!(
        (
            c.free_daily_limit,
            c.paid_daily_limit,
            c.free_token_limit,
            c.paid_token_limit
        ),
        (Some(20), Some(10_000), Some(250_000), Some(4_000_000))
    );
    assert_eq!(
        c.limits("any-model", Tier::Paid),
        ModelLimits {
            rate: 1000,
            daily: Some(10_000),
            tokens: Some(4_000_000)
        }
    );
    assert!(c.fallbacks("any-model").is_empty());
}

#[test]
fn bad_daily_and_token_limits_are_named() {
    let cases = [
        (
            "GEMINI_FREE_DAILY_LIMIT",
            "0",
            "must be a positive integer, got 0",
        ),
        (
            "GEMINI_PAID_DAILY_LIMIT",
            "1000000001",
            "must be at most 1000000000",
        ),
        ("GEMINI_FREE_TOKEN_LIMIT", "lots", "not a number"),
        ("GEMINI_PAID_TOKEN_LIMIT", "", "is set but empty"),
        (
            "GEMINI_FREE_TOKEN_LIMIT",
            "1e6",
            "must be a positive integer",
        ),
    ];
    for (name, value, reason) in cases {
        let msg = err(env(&[("GEMINI_FREE_KEYS", "k"), (name, value)]));
        assert!(
            msg.contains(&format!("{name}: {reason}")),
            "{name}={value}: {msg}"
        );
    }
    let msg = err(Config::from_json(
        r#"{"free_keys":["k"],"free_daily_limit":2.5}"#,
    ));
    assert!(
        msg.contains("config field `free_daily_limit`: must be a positive integer"),
        "{msg}"
    );
}

#[test]
fn a_model_sets_its_own_limits_and_takes_the_global_ones_it_does_not_set() {
    let c = Config::from_json(
        r#"{"free_keys":["k"], "free_rate_limit": 5, "free_daily_limit": 20, "paid_token_limit": 99,
            "models": {
              "gemini-3.6-flash": {"free_daily_limit": 25, "free_token_limit": 250000,
                                   "paid_rate_limit": 7, "fallback": ["gemini-3.1-flash-lite"]},
              "models/gemini-3.1-flash-lite": {"free_rate_limit": 15, "free_daily_limit": 500}
            }}"#,
    )
    .unwrap();
    assert_eq!(
        c.models.keys().collect::<Vec<_>>(),
        ["gemini-3.1-flash-lite", "gemini-3.6-flash"]
    );
    assert_eq!(
        c.limits("gemini-3.6-flash", Tier::Free),
        ModelLimits {
            rate: 5,
            daily: Some(25),
            tokens: Some(250_000)
        }
    );
    assert_eq!(
        c.limits("models/gemini-3.6-flash", Tier::Paid),
        ModelLimits {
            rate: 7,
            daily: None,
            tokens: Some(99)
        }
    );
    assert_eq!(
        c.limits("gemini-3.1-flash-lite", Tier::Free),
        ModelLimits {
            rate: 15,
            daily: Some(500),
            tokens: None
        }
    );
    assert_eq!(
        c.limits("gemini-other", Tier::Free),
        ModelLimits {
            rate: 5,
            daily: Some(20),
            tokens: None
        }
    );
    assert_eq!(c.fallbacks("gemini-3.6-flash"), ["gemini-3.1-flash-lite"]);
    assert_eq!(
        c.fallbacks("models/gemini-3.6-flash"),
        ["gemini-3.1-flash-lite"]
    );
    assert!(c.fallbacks("gemini-3.1-flash-lite").is_empty());
}

#[test]
fn a_fallback_model_need_not_be_listed_and_chains_without_a_cycle_are_fine() {
    let c = Config::from_json(
        r#"{"free_keys":["k"], "models": {
              "a": {"fallback": ["b", "models/c"]}, "b": {"fallback": ["c"]}, "d": {"fallback": []}}}"#,
    )
    .unwrap();
    assert_eq!(c.fallbacks("a"), ["b", "c"]);
    assert_eq!(c.fallbacks("b"), ["c"]);
    assert_eq!(c.limits("c", Tier::Free), c.limits("unlisted", Tier::Free));
}

#[test]
fn every_bad_models_field_is_named_by_its_path() {
    let cases = [
        (
            r#"{"gemini-3.6-flash": {"free_daily_limit": 0}}"#,
            r#"config field `models."gemini-3.6-flash".free_daily_limit`: must be a positive integer, got 0"#,
        ),
        (
            r#"{"m": {"free_token_limit": "many"}}"#,
            r#"config field `models."m".free_token_limit`: not a number"#,
        ),
        (
            r#"{"m": {"paid_rate_limit": -3}}"#,
            r#"config field `models."m".paid_rate_limit`: must be a positive integer, got -3"#,
        ),
        (
            r#"{"m": {"free_rate_limit": 2000000}}"#,
            r#"config field `models."m".free_rate_limit`: must be at most 1000000"#,
        ),
        (
            r#"{"m": {"free_daily": 3}}"#,
            r#"config field `models."m".free_daily`: unknown field (known fields: free_rate_limit"#,
        ),
        (
            r#"{"m": {"window_ms": 3}}"#,
            r#"config field `models."m".window_ms`: unknown field"#,
        ),
        (
            r#"{"bad/model": {}}"#,
            r#"config field `models."bad/model"`: "bad/model" is not a model name"#,
        ),
        (
            r#"{"": {}}"#,
            r#"config field `models.""`: the model name is empty"#,
        ),
        (
            r#"{"m": 5}"#,
            r#"config field `models."m"`: must be an object of limits, got a number"#,
        ),
        (
            r#"{"m": {}, "models/m": {}}"#,
            r#"config field `models."models/m"`: names the same model as `models."m"`"#,
        ),
        (
            r#"{"m": {"fallback": "n"}}"#,
            r#"config field `models."m".fallback`: must be an array"#,
        ),
        (
            r#"{"m": {"fallback": ["n", 3]}}"#,
            r#"config field `models."m".fallback`: entry 2: must be a model name, got a number"#,
        ),
        (
            r#"{"m": {"fallback": ["n", "no such!"]}}"#,
            r#"config field `models."m".fallback`: entry 2: "no such!" is not a model name"#,
        ),
        (
            r#"{"m": {"fallback": ["models/m"]}}"#,
            r#"config field `models."m".fallback`: entry 1: m cannot fall back to itself"#,
        ),
        (
            r#"{"m": {"fallback": ["n", "n"]}}"#,
            r#"config field `models."m".fallback`: entry 2: n is listed twice"#,
        ),
        (
            r#"{"a": {"fallback": ["b"]}, "b": {"fallback": ["a"]}}"#,
            r#"config field `models."b".fallback`: the fallbacks form a cycle: a → b → a"#,
        ),
        (
            r#"{"a": {"fallback": ["x", "b"]}, "b": {"fallback": ["c"]}, "c": {"fallback": ["b"]}}"#,
            r#"config field `models."c".fallback`: the fallbacks form a cycle: b → c → b"#,
        ),
    ];
    for (models, expected) in cases {
        let json = format!(r#"{{"free_keys":["k"],"models":{models}}}"#);
        let msg = err(Config::from_json(&json));
        assert!(
            msg.contains(expected),
            "{models}: {msg:?} lacks {expected:?}"
        );
    }
    let msg = err(Config::from_json(r#"{"free_keys":["k"],"models":[]}"#));
    assert!(
        msg.contains("config field `models`: must be an object"),
        "{msg}"
    );
}

#[test]
fn the_json_configuration_names_no_file() {
    let msg = err(Config::from_json(
        r#"{"free_keys":["k"],"config":"/x.json"}"#,
    ));
    assert!(
        msg.contains("config field `config`: unknown field"),
        "{msg}"
    );
    let c = Config::from_json(r#"{"free_keys":["k"]}"#).unwrap();
    assert_eq!(c.config_file, None);
}

// ---- The config file ---------------------------------------------------------------------

const TOML_FILE: &str = r#"
# Keys of project "alpha" share one quota.
free_keys = ["alpha:k1", "alpha:k2", { key = "k:3", project = "beta" }, "k4"]
paid_key = "billing:p1"
free_rate_limit = 5
free_daily_limit = 20
window_ms = 60000
state = "memory"

[models."gemini-3.6-flash"]
free_daily_limit = 20
free_token_limit = 250000
fallback = ["gemini-3.1-flash-lite"]

[models."gemini-3.1-flash-lite"]
free_rate_limit = 15
free_daily_limit = 500
"#;

#[test]
fn a_toml_file_gives_every_field_of_the_json_configuration() {
    let dir = TempDir::new();
    let path = dir.file("rotator.toml", TOML_FILE);
    let c = with_file(&path, &[]).unwrap();
    assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
    assert_eq!(c.origin, Origin::Environment);
    assert_eq!(secrets(&c), ["k1", "k2", "k:3", "k4"]);
    assert_eq!(c.group_id(&c.free_keys[0]), c.group_id(&c.free_keys[1]));
    assert_eq!(c.project_of(&c.free_keys[2]), Some("beta"));
    assert_eq!(c.project_of(c.paid_key.as_ref().unwrap()), Some("billing"));
    assert_eq!((c.free_rate_limit, c.free_daily_limit), (5, Some(20)));
    assert_eq!(c.state, StateLocation::Memory);
    assert_eq!(
        c.limits("gemini-3.1-flash-lite", Tier::Free),
        ModelLimits {
            rate: 15,
            daily: Some(500),
            tokens: None
        }
    );
    assert_eq!(c.fallbacks("gemini-3.6-flash"), ["gemini-3.1-flash-lite"]);
}

#[test]
fn a_json_file_is_read_as_the_json_configuration() {
    let dir = TempDir::new();
    let path = dir.file(
        "rotator.json",
        r#"{"free_keys":["p:k1",{"key":"k2","project":"p"}],"paid_daily_limit":300,
            "models":{"m":{"paid_daily_limit":5,"fallback":["n"]}}}"#,
    );
    let c = with_file(&path, &[]).unwrap();
    assert_eq!(c.group_id(&c.free_keys[0]), c.group_id(&c.free_keys[1]));
    assert_eq!(c.limits("m", Tier::Paid).daily, Some(5));
    assert_eq!(c.limits("n", Tier::Paid).daily, Some(300));
    // A name that does not end in .toml is JSON, whatever it is.
    let path = dir.file("rotator.conf", r#"{"free_keys":["k"]}"#);
    assert_eq!(secrets(&with_file(&path, &[]).unwrap()), ["k"]);
}

#[test]
fn a_variable_that_is_set_overrides_the_files_field() {
    let dir = TempDir::new();
    let path = dir.file("rotator.toml", TOML_FILE);
    let c = with_file(
        &path,
        &[
            ("GEMINI_FREE_KEYS", "env1,env2"),
            ("GEMINI_FREE_RATE_LIMIT", "9"),
            ("GEMINI_ROTATOR_STATE", "shm:/tmp/override.state"),
        ],
    )
    .unwrap();
    // The variable replaces the file's keys (no merge); the file's paid key stays.
    assert_eq!(secrets(&c), ["env1", "env2"]);
    assert_eq!(c.paid_key.as_ref().map(|k| k.secret()), Some("p1"));
    assert_eq!((c.free_rate_limit, c.free_daily_limit), (9, Some(20)));
    assert_eq!(c.state, StateLocation::Shm("/tmp/override.state".into()));
    // Models come from the file only, whatever the variables say.
    assert_eq!(c.fallbacks("gemini-3.6-flash"), ["gemini-3.1-flash-lite"]);
    // Set but empty is set: it removes the file's paid key.
    let c = with_file(&path, &[("GEMINI_PAID_KEY", "")]).unwrap();
    assert!(c.paid_key.is_none());
    // ... and an empty list of free keys leaves only the paid key.
    let c = with_file(&path, &[("GEMINI_FREE_KEYS", " ")]).unwrap();
    assert!(c.free_keys.is_empty() && c.paid_key.is_some());
}

#[test]
fn a_bad_value_is_named_by_where_it_came_from() {
    let dir = TempDir::new();
    let path = dir.file("bad.toml", "free_keys = [\"k\"]\nfree_rate_limit = 0\n");
    let file = format!("config file {:?}", path.display().to_string());
    let msg = err(with_file(&path, &[]));
    assert!(
        msg.contains(&format!(
            "{file}, field `free_rate_limit`: must be a positive integer, got 0"
        )),
        "{msg}"
    );
    // Overridden by a good variable, the file's bad value is never read.
    with_file(&path, &[("GEMINI_FREE_RATE_LIMIT", "3")]).unwrap();
    // A bad variable is named as a variable.
    let msg = err(with_file(&path, &[("GEMINI_FREE_RATE_LIMIT", "x")]));
    assert!(
        msg.contains("GEMINI_FREE_RATE_LIMIT: not a number"),
        "{msg}"
    );
}

#[test]
fn every_bad_file_is_named_with_the_field_and_the_reason() {
    let dir = TempDir::new();
    let cases: &[(&str, &str, &str)] = &[
        ("unknown.toml", "free_keys = [\"k\"]\nfree_keyz = 1\n", "field `free_keyz`: unknown field"),
        (
            "model-unknown.toml",
            "free_keys = [\"k\"]\n[models.m]\nfree_rate = 1\n",
            "field `models.\"m\".free_rate`: unknown field",
        ),
        (
            "model-number.json",
            r#"{"free_keys":["k"],"models":{"gemini-3.6-flash":{"free_daily_limit":-20}}}"#,
            "field `models.\"gemini-3.6-flash\".free_daily_limit`: must be a positive integer, got -20",
        ),
        (
            "float.toml",
            "free_keys = [\"k\"]\n[models.m]\nfree_token_limit = 2.5\n",
            "field `models.\"m\".free_token_limit`: must be a positive integer, got 2.5",
        ),
        (
            "cycle.toml",
            "free_keys = [\"k\"]\nmodels.a.fallback = [\"b\"]\nmodels.b.fallback = [\"a\"]\n",
            "field `models.\"b\".fallback`: the fallbacks form a cycle: a → b → a",
        ),
        (
            "self.json",
            r#"{"free_keys":["k"],"models":{"a":{"fallback":["a"]}}}"#,
            "field `models.\"a\".fallback`: entry 1: a cannot fall back to itself",
        ),
        (
            "date.toml",
            "free_keys = [\"k\"]\n[models.m]\nfree_daily_limit = 2026-12-01\n",
            "field `models.\"m\".free_daily_limit`: a date-time, which no setting takes",
        ),
        ("bad-key.toml", "free_keys = [\":secret-k\"]\n", "field `free_keys`: key 1: the project before ':' is empty"),
        ("no-keys.json", "{}", "no API keys configured"),
        ("array.json", "[1, 2]", "(GEMINI_ROTATOR_CONFIG): must hold an object of settings, got an array"),
        (
            "syntax.json",
            "{\n  \"free_keys\": [\"secret-k\"]\n  \"window_ms\": 5\n}\n",
            "(GEMINI_ROTATOR_CONFIG): not valid JSON at line 3, column 3: expected `,` or `}`",
        ),
        (
            "syntax.toml",
            "free_keys = [\"secret-k\"]\nwindow_ms = = 5\n",
            "(GEMINI_ROTATOR_CONFIG): not valid TOML at line 2, column 13:",
        ),
        (
            "duplicate.toml",
            "free_keys = [\"secret-k\"]\nfree_keys = [\"secret-j\"]\n",
            "(GEMINI_ROTATOR_CONFIG): not valid TOML at line 2, column 1:",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.file(name, text);
        let msg = err(with_file(&path, &[]));
        let file = format!("config file {:?}", path.display().to_string());
        assert!(
            msg.contains(&file),
            "{name}: {msg:?} does not name the file"
        );
        assert!(msg.contains(expected), "{name}: {msg:?} lacks {expected:?}");
        assert!(!msg.contains("secret"), "{name}: {msg:?} shows a key");
    }
}

#[test]
fn an_unreadable_or_unnamed_file_is_an_error() {
    let dir = TempDir::new();
    let missing = dir.0.join("missing.toml");
    let msg = err(with_file(&missing, &[("GEMINI_FREE_KEYS", "k")]));
    assert!(
        msg.contains(&format!(
            "config file {:?} (GEMINI_ROTATOR_CONFIG): cannot be read:",
            missing.display().to_string()
        )),
        "{msg}"
    );
    let msg = err(with_file(&dir.0, &[("GEMINI_FREE_KEYS", "k")]));
    assert!(msg.contains("cannot be read"), "{msg}");
    let path = dir.0.join("latin1.json");
    std::fs::write(&path, b"{\"free_keys\": [\"\xe9\"]}").unwrap();
    let msg = err(with_file(&path, &[]));
    assert!(msg.contains("is not UTF-8 text (at byte 16)"), "{msg}");
    let msg = err(env(&[
        ("GEMINI_ROTATOR_CONFIG", " "),
        ("GEMINI_FREE_KEYS", "k"),
    ]));
    assert!(
        msg.contains("GEMINI_ROTATOR_CONFIG: is set but empty"),
        "{msg}"
    );
}

#[test]
fn the_file_is_json_unless_its_name_ends_in_toml() {
    assert!(file::is_toml(Path::new("/etc/rotator.toml")));
    assert!(file::is_toml(Path::new("rotator.TOML")));
    assert!(!file::is_toml(Path::new("rotator.toml.json")));
    assert!(!file::is_toml(Path::new("toml")));
}
