//! Configuration, from the environment or from a JSON object, validated up front: every problem
//! is an error that names the variable or field and the reason, never a silent default.

use crate::error::Error;
use crate::key::ApiKey;
use serde_json::{Map, Value};
use std::collections::HashSet;

/// The default model: Gemini 3.6 Flash, the current stable Flash model.
pub const DEFAULT_MODEL: &str = "gemini-3.6-flash";
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com";

/// Where key state is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StateLocation {
    /// This process only.
    Memory,
    /// Shared by every process on the host through this memory-mapped file.
    Shm(std::path::PathBuf),
}

/// Where a configuration came from: it decides how errors name a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Environment,
    Json,
}

/// A validated pool configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub origin: Origin,
    pub free_keys: Vec<ApiKey>,
    pub paid_key: Option<ApiKey>,
    /// Requests per window per free key.
    pub free_rate_limit: u64,
    /// Requests per window for the paid key.
    pub paid_rate_limit: u64,
    pub window_ms: u64,
    /// Without a trailing slash.
    pub base_url: String,
    pub model: String,
    /// The whole call's time budget, retries included.
    pub timeout_ms: u64,
    /// HTTP attempts per call at most, across keys and retries.
    pub max_attempts: u32,
    /// Retries after transient failures (5xx, transport) at most.
    pub max_retries: u32,
    /// Backoff before the first retry; it doubles up to `retry_max_ms`, with full jitter.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    pub state: StateLocation,
    /// The log level to set when the pool is created (`None`: leave it as it is; `Some(None)`:
    /// off).
    pub log: Option<Option<crate::log::Level>>,
}

/// One setting: its environment variable and its JSON field.
struct Setting {
    env: &'static str,
    json: &'static str,
}

const FREE_KEYS: Setting = Setting {
    env: "GEMINI_FREE_KEYS",
    json: "free_keys",
};
const PAID_KEY: Setting = Setting {
    env: "GEMINI_PAID_KEY",
    json: "paid_key",
};
const FREE_LIMIT: Setting = Setting {
    env: "GEMINI_FREE_RATE_LIMIT",
    json: "free_rate_limit",
};
const PAID_LIMIT: Setting = Setting {
    env: "GEMINI_PAID_RATE_LIMIT",
    json: "paid_rate_limit",
};
const WINDOW: Setting = Setting {
    env: "GEMINI_RATE_WINDOW_MS",
    json: "window_ms",
};
const BASE_URL: Setting = Setting {
    env: "GEMINI_BASE_URL",
    json: "base_url",
};
const MODEL: Setting = Setting {
    env: "GEMINI_MODEL",
    json: "model",
};
const TIMEOUT: Setting = Setting {
    env: "GEMINI_TIMEOUT_MS",
    json: "timeout_ms",
};
const MAX_ATTEMPTS: Setting = Setting {
    env: "GEMINI_MAX_ATTEMPTS",
    json: "max_attempts",
};
const MAX_RETRIES: Setting = Setting {
    env: "GEMINI_MAX_RETRIES",
    json: "max_retries",
};
const RETRY_BASE: Setting = Setting {
    env: "GEMINI_RETRY_BASE_MS",
    json: "retry_base_ms",
};
const RETRY_MAX: Setting = Setting {
    env: "GEMINI_RETRY_MAX_MS",
    json: "retry_max_ms",
};
const LOG: Setting = Setting {
    env: "GEMINI_ROTATOR_LOG",
    json: "log",
};
const STATE: Setting = Setting {
    env: "GEMINI_ROTATOR_STATE",
    json: "state",
};

const ALL: [&Setting; 14] = [
    &LOG,
    &FREE_KEYS,
    &PAID_KEY,
    &FREE_LIMIT,
    &PAID_LIMIT,
    &WINDOW,
    &BASE_URL,
    &MODEL,
    &TIMEOUT,
    &MAX_ATTEMPTS,
    &MAX_RETRIES,
    &RETRY_BASE,
    &RETRY_MAX,
    &STATE,
];

/// A value as read from its source, before validation.
enum Raw {
    Text(String),
    List(Vec<String>),
    Number(u64),
}

/// Reads settings from one source and names them as that source does.
trait Source {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error>;
    fn origin(&self) -> Origin;
    fn name(&self, s: &Setting) -> String {
        name_in(self.origin(), s)
    }
}

fn name_in(origin: Origin, s: &Setting) -> String {
    match origin {
        Origin::Environment => s.env.to_string(),
        Origin::Json => format!("config field `{}`", s.json),
    }
}

/// The process environment. A value that is not UTF-8 is an error, never taken as unset.
struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        env_text(s.env)
    }
    fn origin(&self) -> Origin {
        Origin::Environment
    }
}

fn env_text(name: &str) -> Result<Option<Raw>, Error> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(|t| Some(Raw::Text(t)))
            .map_err(|_| Error::config(name, "is not valid UTF-8")),
    }
}

struct Env<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Source for Env<F> {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        Ok((self.0)(s.env).map(Raw::Text))
    }
    fn origin(&self) -> Origin {
        Origin::Environment
    }
}

struct Json(Map<String, Value>);

impl Source for Json {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        let name = || self.name(s);
        Ok(match self.0.get(s.json) {
            None | Some(Value::Null) => None,
            Some(Value::String(t)) => Some(Raw::Text(t.clone())),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(n) => Some(Raw::Number(n)),
                None => {
                    return Err(Error::config(
                        name(),
                        format!("must be a positive integer, got {n}"),
                    ))
                }
            },
            Some(Value::Array(items)) => {
                let mut list = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(t) => list.push(t.clone()),
                        other => {
                            return Err(Error::config(
                                name(),
                                format!("entry {} must be a string, got {}", i + 1, kind(other)),
                            ))
                        }
                    }
                }
                Some(Raw::List(list))
            }
            Some(other) => {
                return Err(Error::config(name(), format!("unexpected {}", kind(other))))
            }
        })
    }
    fn origin(&self) -> Origin {
        Origin::Json
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, Error> {
        Config::build(&ProcessEnv)
    }

    /// Reads settings through `lookup` (an environment stand-in, for tests and embedding).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        Config::build(&Env(lookup))
    }

    /// Reads a JSON object whose fields are the lower-case setting names (`free_keys` is an
    /// array of strings). Unknown fields are errors, so that a typo is never ignored.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::invalid_json("config_json", &e))?;
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                "config_json",
                format!("must be a JSON object, got {}", kind(&value)),
            ));
        };
        if let Some(unknown) = map
            .keys()
            .find(|k| !ALL.iter().any(|s| s.json == k.as_str()))
        {
            let known: Vec<_> = ALL.iter().map(|s| s.json).collect();
            return Err(Error::config(
                format!("config field `{unknown}`"),
                format!("unknown field (known fields: {})", known.join(", ")),
            ));
        }
        Config::build(&Json(map))
    }

    fn build(src: &dyn Source) -> Result<Config, Error> {
        let free_keys = keys(src, &FREE_KEYS)?;
        let paid_key = match src.get(&PAID_KEY)? {
            None => None,
            Some(Raw::Text(t)) if t.trim().is_empty() => None,
            Some(Raw::Text(t)) => {
                let t = t.trim();
                check_key_chars(src, &PAID_KEY, t, None)?;
                Some(ApiKey::new(t))
            }
            Some(_) => return Err(Error::config(src.name(&PAID_KEY), "must be a string")),
        };
        if free_keys.is_empty() && paid_key.is_none() {
            return Err(Error::config(
                src.name(&FREE_KEYS),
                format!(
                    "no API keys configured: set {} and/or {}",
                    src.name(&FREE_KEYS),
                    src.name(&PAID_KEY)
                ),
            ));
        }
        let mut seen = HashSet::new();
        for (i, key) in free_keys.iter().enumerate() {
            if !seen.insert(key.id()) {
                return Err(Error::config(
                    src.name(&FREE_KEYS),
                    format!(
                        "key {} (fingerprint {}) appears more than once",
                        i + 1,
                        key.fingerprint()
                    ),
                ));
            }
        }
        if let Some(paid) = &paid_key {
            if seen.contains(paid.id()) {
                return Err(Error::config(
                    src.name(&PAID_KEY),
                    format!(
                        "the paid key (fingerprint {}) is also listed as a free key",
                        paid.fingerprint()
                    ),
                ));
            }
        }
        let window_ms = number(src, &WINDOW, 60_000, 1, 7 * 86_400_000)?;
        let timeout_ms = number(src, &TIMEOUT, 120_000, 1, 3_600_000)?;
        let retry_base_ms = number(src, &RETRY_BASE, 500, 1, 600_000)?;
        let retry_max_ms = number(src, &RETRY_MAX, 16_000, 1, 3_600_000)?;
        if retry_max_ms < retry_base_ms {
            return Err(Error::config(
                src.name(&RETRY_MAX),
                format!(
                    "must be at least {} ({retry_base_ms})",
                    src.name(&RETRY_BASE)
                ),
            ));
        }
        Ok(Config {
            origin: src.origin(),
            free_keys,
            paid_key,
            free_rate_limit: number(src, &FREE_LIMIT, 60, 1, 1_000_000)?,
            paid_rate_limit: number(src, &PAID_LIMIT, 1000, 1, 1_000_000)?,
            window_ms,
            base_url: base_url(src)?,
            model: match text(src, &MODEL)? {
                None => DEFAULT_MODEL.to_string(),
                Some(m) => validate_model(&m).map_err(|r| Error::config(src.name(&MODEL), r))?,
            },
            timeout_ms,
            max_attempts: number(src, &MAX_ATTEMPTS, 8, 1, 100)? as u32,
            max_retries: number(src, &MAX_RETRIES, 3, 0, 20)? as u32,
            retry_base_ms,
            retry_max_ms,
            state: state(src)?,
            log: match text(src, &LOG)? {
                None => None,
                Some(v) => Some(
                    crate::log::Level::parse(&v).map_err(|r| Error::config(src.name(&LOG), r))?,
                ),
            },
        })
    }

    /// How this configuration names a setting given by its JSON field name
    /// (`free_rate_limit` is `GEMINI_FREE_RATE_LIMIT` in the environment).
    pub fn setting_name(&self, json_field: &str) -> String {
        match ALL.iter().find(|s| s.json == json_field) {
            Some(s) => name_in(self.origin, s),
            None => json_field.to_string(),
        }
    }

    /// Every key, free keys first.
    pub fn all_keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.free_keys.iter().chain(self.paid_key.iter())
    }
}

fn text(src: &dyn Source, s: &Setting) -> Result<Option<String>, Error> {
    match src.get(s)? {
        None => Ok(None),
        Some(Raw::Text(t)) => {
            let t = t.trim().to_string();
            if t.is_empty() {
                Err(Error::config(src.name(s), "is set but empty"))
            } else {
                Ok(Some(t))
            }
        }
        Some(_) => Err(Error::config(src.name(s), "must be a string")),
    }
}

fn number(src: &dyn Source, s: &Setting, default: u64, min: u64, max: u64) -> Result<u64, Error> {
    let n = match src.get(s)? {
        None => return Ok(default),
        Some(Raw::Number(n)) => n,
        Some(Raw::Text(t)) => {
            let t = t.trim();
            if t.is_empty() {
                return Err(Error::config(src.name(s), "is set but empty"));
            }
            match t.parse::<u64>() {
                Ok(n) => n,
                Err(_) if t.parse::<i128>().is_ok() || t.parse::<f64>().is_ok() => {
                    return Err(Error::config(
                        src.name(s),
                        format!("must be a positive integer, got {t:?}"),
                    ))
                }
                Err(_) => return Err(Error::config(src.name(s), format!("not a number: {t:?}"))),
            }
        }
        Some(Raw::List(_)) => {
            return Err(Error::config(src.name(s), "must be a number, got an array"))
        }
    };
    if n < min {
        let what = if min == 1 {
            "a positive integer".to_string()
        } else {
            format!("at least {min}")
        };
        return Err(Error::config(
            src.name(s),
            format!("must be {what}, got {n}"),
        ));
    }
    if n > max {
        return Err(Error::config(
            src.name(s),
            format!("must be at most {max}, got {n}"),
        ));
    }
    Ok(n)
}

fn keys(src: &dyn Source, s: &Setting) -> Result<Vec<ApiKey>, Error> {
    let list: Vec<String> = match src.get(s)? {
        None => return Ok(Vec::new()),
        Some(Raw::Text(t)) => t.split(',').map(str::to_string).collect(),
        Some(Raw::List(l)) => l,
        Some(Raw::Number(_)) => {
            return Err(Error::config(
                src.name(s),
                "must be a list of keys, got a number",
            ))
        }
    };
    let mut out = Vec::new();
    for (i, k) in list
        .iter()
        .map(|k| k.trim())
        .filter(|k| !k.is_empty())
        .enumerate()
    {
        check_key_chars(src, s, k, Some(i + 1))?;
        out.push(ApiKey::new(k));
    }
    Ok(out)
}

/// A key must fit in an HTTP header: visible ASCII only.
fn check_key_chars(
    src: &dyn Source,
    s: &Setting,
    key: &str,
    position: Option<usize>,
) -> Result<(), Error> {
    if key.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    let which = position
        .map(|p| format!("key {p}"))
        .unwrap_or_else(|| "the key".into());
    Err(Error::config(
        src.name(s),
        format!(
            "{which} (fingerprint {}) contains a space, control or non-ASCII character, which an HTTP header cannot carry",
            crate::key::fingerprint(key)
        ),
    ))
}

fn base_url(src: &dyn Source) -> Result<String, Error> {
    let Some(url) = text(src, &BASE_URL)? else {
        return Ok(DEFAULT_BASE_URL.to_string());
    };
    let parsed = reqwest::Url::parse(&url).map_err(|e| {
        Error::config(
            src.name(&BASE_URL),
            format!("not a URL ({e}); the value is not shown, in case it is a key"),
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::config(
            src.name(&BASE_URL),
            format!(
                "must be an http:// or https:// URL with a host, got scheme {:?}",
                parsed.scheme()
            ),
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        // Not echoed: a query is where a key would hide (`?key=...`).
        return Err(Error::config(
            src.name(&BASE_URL),
            "must not have a query or fragment (the key goes in the x-goog-api-key header, never in the URL)",
        ));
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// `shm` (the default: a file under /dev/shm), `shm:/absolute/path`, or `memory`.
///
/// The state location is the host's, not the pool's: a JSON configuration without `state`
/// takes `GEMINI_ROTATOR_STATE` from the environment, so that every pool of every process on
/// the host agrees on it.
fn state(src: &dyn Source) -> Result<StateLocation, Error> {
    let (value, name) = match text(src, &STATE)? {
        Some(v) => (v, src.name(&STATE)),
        None if src.origin() == Origin::Json => match env_text(STATE.env)? {
            Some(Raw::Text(v)) if !v.trim().is_empty() => {
                (v.trim().to_string(), STATE.env.to_string())
            }
            _ => return Ok(StateLocation::Shm(crate::store::shm::default_path())),
        },
        None => return Ok(StateLocation::Shm(crate::store::shm::default_path())),
    };
    match value.as_str() {
        "memory" => Ok(StateLocation::Memory),
        "shm" => Ok(StateLocation::Shm(crate::store::shm::default_path())),
        v => match v.strip_prefix("shm:") {
            Some(path) if path.starts_with('/') && !path.ends_with('/') => {
                Ok(StateLocation::Shm(std::path::PathBuf::from(path)))
            }
            Some(path) => Err(Error::config(
                name,
                format!("shm:PATH needs an absolute file path, got {path:?}"),
            )),
            None => Err(Error::config(
                name,
                format!("unknown state location {v:?} (use shm, shm:/absolute/path or memory)"),
            )),
        },
    }
}

/// A model name as the URL path takes it: `gemini-3.6-flash` or `models/gemini-3.6-flash`.
pub fn validate_model(model: &str) -> Result<String, String> {
    let name = model.trim().strip_prefix("models/").unwrap_or(model.trim());
    if name.is_empty() {
        return Err("the model name is empty".into());
    }
    if name.len() > 128
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        return Err(format!(
            "{model:?} is not a model name (letters, digits, '-', '.', '_' only, at most 128)"
        ));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(move |name| map.get(name).cloned())
    }

    fn err(r: Result<Config, Error>) -> String {
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
}
