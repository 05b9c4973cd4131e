//! The configuration's behaviour: defaults, trimming, and an error naming the setting for every
//! bad value, from the environment and from JSON.

use super::*;
use std::collections::HashMap;

/// A configuration from these variables only.
pub(super) fn env(pairs: &[(&str, &str)]) -> Result<Config, Error> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_lookup(move |name| map.get(name).cloned())
}

pub(super) fn err(r: Result<Config, Error>) -> String {
    r.expect_err("expected a configuration error").to_string()
}

#[test]
fn defaults_and_trimming() {
    let c = env(&[("GEMINI_FREE_KEYS", " a , ,b,, c ")]).unwrap();
    let fps: Vec<_> = c.free_keys.iter().map(|k| k.secret().to_string()).collect();
    assert_eq!(fps, ["a", "b", "c"]);
    assert!(c.paid_key.is_none());
    assert_eq!(
        (c.free_rate_limit, c.paid_rate_limit, c.window_ms),
        (60, 1000, 60_000)
    );
    assert_eq!(c.base_url, DEFAULT_BASE_URL);
    assert_eq!(c.model, DEFAULT_MODEL);
    assert_eq!(
        c.state,
        StateLocation::Shm(crate::store::shm::default_path())
    );
}

#[test]
fn every_bad_value_is_named() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "GEMINI_FREE_KEYS: no API keys configured"),
        (&[("GEMINI_FREE_KEYS", " , ")], "no API keys configured"),
        (&[("GEMINI_FREE_KEYS", "a,b,a")], "GEMINI_FREE_KEYS: key 3"),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_PAID_KEY", "a")],
            "GEMINI_PAID_KEY: the paid key",
        ),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_FREE_RATE_LIMIT", "0")],
            "GEMINI_FREE_RATE_LIMIT: must be a positive integer, got 0",
        ),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_FREE_RATE_LIMIT", "-5")],
            "GEMINI_FREE_RATE_LIMIT: must be a positive integer, got \"-5\"",
        ),
        (
            &[
                ("GEMINI_FREE_KEYS", "a"),
                ("GEMINI_PAID_RATE_LIMIT", "lots"),
            ],
            "GEMINI_PAID_RATE_LIMIT: not a number: \"lots\"",
        ),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_RATE_WINDOW_MS", "1.5")],
            "GEMINI_RATE_WINDOW_MS: must be a positive integer",
        ),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_TIMEOUT_MS", "")],
            "GEMINI_TIMEOUT_MS: is set but empty",
        ),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_BASE_URL", "ftp://x")],
            "GEMINI_BASE_URL: must be an http:// or https://",
        ),
        (
            &[
                ("GEMINI_FREE_KEYS", "a"),
                ("GEMINI_BASE_URL", "localhost:8080"),
            ],
            "GEMINI_BASE_URL",
        ),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_MODEL", "bad/model")],
            "GEMINI_MODEL",
        ),
        (&[("GEMINI_FREE_KEYS", "a b")], "GEMINI_FREE_KEYS: key 1"),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_ROTATOR_LOG", "loud")],
            "GEMINI_ROTATOR_LOG: unknown log level",
        ),
        (
            &[("GEMINI_FREE_KEYS", "a"), ("GEMINI_ROTATOR_STATE", "disk")],
            "GEMINI_ROTATOR_STATE: unknown state location",
        ),
        (
            &[
                ("GEMINI_FREE_KEYS", "a"),
                ("GEMINI_ROTATOR_STATE", "shm:rel/x"),
            ],
            "GEMINI_ROTATOR_STATE: shm:PATH needs an absolute file path",
        ),
    ];
    for (pairs, expected) in cases {
        let msg = err(env(pairs));
        assert!(
            msg.contains(expected),
            "{pairs:?}: {msg:?} lacks {expected:?}"
        );
    }
}

#[test]
fn errors_never_show_a_key() {
    let msg = err(env(&[("GEMINI_FREE_KEYS", "secret-one,secret-one")]));
    assert!(!msg.contains("secret-one"), "{msg}");
    let msg = err(env(&[("GEMINI_FREE_KEYS", "secret two")]));
    assert!(!msg.contains("secret"), "{msg}");
}

#[test]
fn state_locations() {
    let state = |v: &str| {
        env(&[("GEMINI_FREE_KEYS", "a"), ("GEMINI_ROTATOR_STATE", v)])
            .unwrap()
            .state
    };
    assert_eq!(state("memory"), StateLocation::Memory);
    assert_eq!(
        state("shm"),
        StateLocation::Shm(crate::store::shm::default_path())
    );
    assert_eq!(
        state("shm:/tmp/x.state"),
        StateLocation::Shm("/tmp/x.state".into())
    );
}

#[test]
fn json_config_mirrors_the_environment() {
    let c = Config::from_json(
        r#"{"free_keys":["k1","k2"],"paid_key":"p","free_rate_limit":5,"window_ms":1000,
            "base_url":"http://127.0.0.1:9/","model":"models/gemini-3.6-flash"}"#,
    )
    .unwrap();
    assert_eq!(c.free_keys.len(), 2);
    assert_eq!(c.paid_key.as_ref().map(|k| k.secret()), Some("p"));
    assert_eq!((c.free_rate_limit, c.window_ms), (5, 1000));
    assert_eq!(c.base_url, "http://127.0.0.1:9");
    assert_eq!(c.model, "gemini-3.6-flash");
}

#[test]
fn json_errors_name_the_field() {
    let cases = [
        (
            r#"{"free_keys":["a"],"free_rate_limit":-1}"#,
            "config field `free_rate_limit`: must be a positive integer",
        ),
        (
            r#"{"free_keys":["a"],"free_rate_limit":"x"}"#,
            "config field `free_rate_limit`: not a number",
        ),
        (
            r#"{"free_keys":[1]}"#,
            "config field `free_keys`: entry 1 must be a string",
        ),
        (
            r#"{"free_keys":["a"],"frees":1}"#,
            "config field `frees`: unknown field",
        ),
        (
            r#"{"free_keys":[]}"#,
            "config field `free_keys`: no API keys configured",
        ),
        (
            r#"[1]"#,
            "invalid argument `config_json`: must be a JSON object",
        ),
        (r#"{"#, "invalid argument `config_json`: not valid JSON"),
    ];
    for (json, expected) in cases {
        let msg = Config::from_json(json).err().unwrap().to_string();
        assert!(msg.contains(expected), "{json}: {msg:?} lacks {expected:?}");
    }
}

/// Records which rows a build reads, over a full, valid environment.
struct Recording {
    read: std::cell::RefCell<Vec<&'static str>>,
}

impl source::Source for Recording {
    fn get(&self, s: &Setting) -> Result<Option<source::Raw>, Error> {
        let name = s.env.or(s.json).expect("a named row");
        self.read.borrow_mut().push(name);
        Ok(None)
    }
    fn origin(&self) -> Origin {
        Origin::Environment
    }
}

#[test]
fn a_build_reads_every_row_of_the_table() {
    let src = Recording {
        read: Default::default(),
    };
    // Without keys the build stops after the keys: read a paid key from a stand-in instead.
    let _ = Config::build(&src);
    let keys_only = src.read.borrow().clone();
    assert_eq!(
        keys_only,
        [
            "GEMINI_ROTATOR_CONFIG",
            "GEMINI_FREE_KEYS",
            "GEMINI_PAID_KEY"
        ]
    );

    struct WithKey(Recording);
    impl source::Source for WithKey {
        fn get(&self, s: &Setting) -> Result<Option<source::Raw>, Error> {
            self.0.get(s)?;
            Ok((s.json == FREE_KEYS.json).then(|| source::Raw::Text("k".into())))
        }
        fn origin(&self) -> Origin {
            Origin::Environment
        }
    }
    let src = WithKey(Recording {
        read: Default::default(),
    });
    Config::build(&src).expect("the defaults are valid");
    let mut read = src.0.read.borrow().clone();
    read.sort_unstable();
    let mut all: Vec<_> = SETTINGS.iter().map(|s| s.env.or(s.json).unwrap()).collect();
    all.sort_unstable();
    assert_eq!(read, all, "every row is read exactly once");
}

#[test]
fn unset_settings_take_the_defaults_of_the_table() {
    let c = env(&[("GEMINI_FREE_KEYS", "a")]).unwrap();
    let count = |s: &Setting| match s.default {
        settings::DefaultValue::Count(n) => n,
        other => panic!("{s:?}: {other:?}"),
    };
    assert_eq!(c.free_rate_limit, count(&FREE_RATE_LIMIT));
    assert_eq!(c.paid_rate_limit, count(&PAID_RATE_LIMIT));
    assert_eq!(c.window_ms, count(&WINDOW));
    assert_eq!(c.timeout_ms, count(&TIMEOUT));
    assert_eq!(u64::from(c.max_attempts), count(&MAX_ATTEMPTS));
    assert_eq!(u64::from(c.max_retries), count(&MAX_RETRIES));
    assert_eq!(c.retry_base_ms, count(&RETRY_BASE));
    assert_eq!(c.retry_max_ms, count(&RETRY_MAX));
    let text = |s: &Setting| match s.default {
        settings::DefaultValue::Text(t) => t,
        other => panic!("{s:?}: {other:?}"),
    };
    assert_eq!(c.base_url, text(&BASE_URL));
    assert_eq!(c.model, text(&MODEL));
    assert_eq!(c.log, None);
}

#[test]
fn errors_name_a_setting_as_its_source_does() {
    let c = env(&[("GEMINI_FREE_KEYS", "a")]).unwrap();
    assert_eq!(c.setting_name("free_rate_limit"), "GEMINI_FREE_RATE_LIMIT");
    assert_eq!(c.setting_name("no_such_field"), "no_such_field");
    let c = Config::from_json(r#"{"free_keys":["a"]}"#).unwrap();
    assert_eq!(c.setting_name("window_ms"), "config field `window_ms`");
}
