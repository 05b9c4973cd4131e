//! The table of settings: one row per setting, owning its environment name, its JSON field, its
//! kind (how a value is parsed, with its range), its default and its one-line doc.
//!
//! Everything else is derived from these rows: the parsers read a row's kind and default, errors
//! name a setting as its row does, the JSON reader knows its fields from the table, and the README
//! table and `bindings/settings.json` (which the Go and Python tests check their configuration
//! against) are generated from it (see `docs.rs`).
//!
//! Adding a setting: add its row here and to [`SETTINGS`], read it in `Config::build` with the
//! reader of its kind (`parse.rs`; a count that is off unless set has `DefaultValue::Unset`),
//! regenerate the docs (`docs::REGENERATE`), and give it to Go's `Config` and Python's
//! `KeyPool`. Tests fail until each of those is done: a row that no build reads, a stale README
//! or `settings.json`, a Go or Python configuration without the setting. A setting only one
//! source can give (a config-file path from the environment, a map only JSON can hold) leaves
//! the other name `None`. A limit that a model of `models` may set for itself also goes in
//! [`MODEL_LIMITS`] (and is read in `models.rs`); Go's `ModelLimits` and Python's `ModelLimits`
//! follow (a Go test holds `ModelLimits` to the table's `*_limit` rows).

use super::{DEFAULT_BASE_URL, DEFAULT_MODEL};

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// Its environment variable; `None` for a setting only a JSON configuration can give.
    pub env: Option<&'static str>,
    /// Its field in the JSON configuration; `None` for a setting only the environment can give.
    pub json: Option<&'static str>,
    pub kind: Kind,
    /// What an unset setting means.
    pub default: DefaultValue,
    /// One line, for the README table and the bindings' docs.
    pub doc: &'static str,
}

/// How a value is read and what it may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// API keys: comma-separated in the environment, an array of strings in JSON.
    Keys,
    /// One API key.
    Key,
    /// A whole number in `min..=max`.
    Count { min: u64, max: u64 },
    /// An `http://` or `https://` URL with a host and no query.
    Url,
    /// A model name, with or without `models/`.
    Model,
    /// `shm`, `shm:/absolute/path`, `memory`, or a `redis://` or `rediss://` URL.
    State,
    /// A Redis key prefix: printable ASCII without spaces, braces or `*?[]` (1 to 64 bytes).
    RedisPrefix,
    /// `fail` or `local:N`.
    OnFailure,
    /// A PEM file of certificates.
    PemFile,
    /// `off`, `error`, `warn`, `info` or `debug`.
    LogLevel,
    /// A file path (the config file).
    File,
    /// Per-model limits and fallbacks: an object of objects, by model name (see `models.rs`).
    Models,
}

/// What an unset setting means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// Nothing is configured; the text says what that amounts to (for the docs).
    Unset(&'static str),
    Count(u64),
    Text(&'static str),
}

pub const FREE_KEYS: Setting = Setting {
    env: Some("GEMINI_FREE_KEYS"),
    json: Some("free_keys"),
    kind: Kind::Keys,
    default: DefaultValue::Unset("none"),
    doc: "Free keys, used round-robin; `PROJECT:KEY` puts a key in a project whose keys share every limit (whitespace trimmed, empty entries dropped)",
};
pub const PAID_KEY: Setting = Setting {
    env: Some("GEMINI_PAID_KEY"),
    json: Some("paid_key"),
    kind: Kind::Key,
    default: DefaultValue::Unset("none"),
    doc: "The paid key (`PROJECT:KEY` allowed), used only when no free key can serve the model",
};
pub const FREE_RATE_LIMIT: Setting = Setting {
    env: Some("GEMINI_FREE_RATE_LIMIT"),
    json: Some("free_rate_limit"),
    kind: Kind::Count {
        min: 1,
        max: 1_000_000,
    },
    default: DefaultValue::Count(60),
    doc: "Requests per window per free quota group (a project, or a key without one) and model",
};
pub const PAID_RATE_LIMIT: Setting = Setting {
    env: Some("GEMINI_PAID_RATE_LIMIT"),
    json: Some("paid_rate_limit"),
    kind: Kind::Count {
        min: 1,
        max: 1_000_000,
    },
    default: DefaultValue::Count(1000),
    doc: "Requests per window for the paid key, per model",
};
/// The bound of a daily count (fits a `u32`, so that a store may keep it in one).
const MAX_DAILY: u64 = 1_000_000_000;
/// The bound of a token count per window (paid tiers reach tens of millions a minute).
const MAX_TOKENS: u64 = 1_000_000_000_000;
pub const FREE_DAILY_LIMIT: Setting = Setting {
    env: Some("GEMINI_FREE_DAILY_LIMIT"),
    json: Some("free_daily_limit"),
    kind: Kind::Count {
        min: 1,
        max: MAX_DAILY,
    },
    default: DefaultValue::Unset("none"),
    doc: "Requests per Pacific day (midnight America/Los_Angeles) per free quota group and model",
};
pub const PAID_DAILY_LIMIT: Setting = Setting {
    env: Some("GEMINI_PAID_DAILY_LIMIT"),
    json: Some("paid_daily_limit"),
    kind: Kind::Count {
        min: 1,
        max: MAX_DAILY,
    },
    default: DefaultValue::Unset("none"),
    doc: "Requests per Pacific day for the paid key, per model",
};
pub const FREE_TOKEN_LIMIT: Setting = Setting {
    env: Some("GEMINI_FREE_TOKEN_LIMIT"),
    json: Some("free_token_limit"),
    kind: Kind::Count {
        min: 1,
        max: MAX_TOKENS,
    },
    default: DefaultValue::Unset("none"),
    doc: "Input tokens per window per free quota group and model",
};
pub const PAID_TOKEN_LIMIT: Setting = Setting {
    env: Some("GEMINI_PAID_TOKEN_LIMIT"),
    json: Some("paid_token_limit"),
    kind: Kind::Count {
        min: 1,
        max: MAX_TOKENS,
    },
    default: DefaultValue::Unset("none"),
    doc: "Input tokens per window for the paid key, per model",
};
pub const WINDOW: Setting = Setting {
    env: Some("GEMINI_RATE_WINDOW_MS"),
    json: Some("window_ms"),
    kind: Kind::Count {
        min: 1,
        max: 7 * 86_400_000,
    },
    default: DefaultValue::Count(60_000),
    doc: "Length of the rolling rate-limit window, in milliseconds",
};
pub const BASE_URL: Setting = Setting {
    env: Some("GEMINI_BASE_URL"),
    json: Some("base_url"),
    kind: Kind::Url,
    default: DefaultValue::Text(DEFAULT_BASE_URL),
    doc: "Service base URL",
};
pub const MODEL: Setting = Setting {
    env: Some("GEMINI_MODEL"),
    json: Some("model"),
    kind: Kind::Model,
    default: DefaultValue::Text(DEFAULT_MODEL),
    doc: "Default model (each call can name another)",
};
pub const TIMEOUT: Setting = Setting {
    env: Some("GEMINI_TIMEOUT_MS"),
    json: Some("timeout_ms"),
    kind: Kind::Count {
        min: 1,
        max: 3_600_000,
    },
    default: DefaultValue::Count(120_000),
    doc: "A call's time budget in milliseconds, retries included",
};
pub const MAX_ATTEMPTS: Setting = Setting {
    env: Some("GEMINI_MAX_ATTEMPTS"),
    json: Some("max_attempts"),
    kind: Kind::Count { min: 1, max: 100 },
    default: DefaultValue::Count(8),
    doc: "HTTP attempts per call at most, across keys and retries",
};
pub const MAX_RETRIES: Setting = Setting {
    env: Some("GEMINI_MAX_RETRIES"),
    json: Some("max_retries"),
    kind: Kind::Count { min: 0, max: 20 },
    default: DefaultValue::Count(3),
    doc: "Retries after 5xx or connection failures, at most",
};
pub const RETRY_BASE: Setting = Setting {
    env: Some("GEMINI_RETRY_BASE_MS"),
    json: Some("retry_base_ms"),
    kind: Kind::Count {
        min: 1,
        max: 600_000,
    },
    default: DefaultValue::Count(500),
    doc: "Backoff ceiling before the first retry, in milliseconds (doubling, full jitter)",
};
pub const RETRY_MAX: Setting = Setting {
    env: Some("GEMINI_RETRY_MAX_MS"),
    json: Some("retry_max_ms"),
    kind: Kind::Count {
        min: 1,
        max: 3_600_000,
    },
    default: DefaultValue::Count(16_000),
    doc: "Backoff cap in milliseconds, at least the first ceiling",
};
pub const STREAM_FIRST_EVENT_TIMEOUT: Setting = Setting {
    env: Some("GEMINI_STREAM_FIRST_EVENT_TIMEOUT_MS"),
    json: Some("stream_first_event_timeout_ms"),
    kind: Kind::Count {
        min: 1,
        max: 3_600_000,
    },
    // Thinking models can think for tens of seconds before their first event.
    default: DefaultValue::Count(60_000),
    doc: "A stream that sends no event within this many milliseconds is abandoned and retried on another key (within the call's budget)",
};
pub const STREAM_IDLE_TIMEOUT: Setting = Setting {
    env: Some("GEMINI_STREAM_IDLE_TIMEOUT_MS"),
    json: Some("stream_idle_timeout_ms"),
    kind: Kind::Count {
        min: 1,
        max: 3_600_000,
    },
    default: DefaultValue::Count(60_000),
    doc: "A gap between two events of a stream longer than this many milliseconds ends it with a timeout error",
};
pub const STATE: Setting = Setting {
    env: Some("GEMINI_ROTATOR_STATE"),
    json: Some("state"),
    kind: Kind::State,
    default: DefaultValue::Text("shm"),
    doc: "Where key state lives: `shm` (shared by every process on the host, in `/dev/shm/gemini-rotator-<uid>.state`), another file, this process only, or a Redis server shared by every host (see [Many hosts](#many-hosts))",
};
// The Redis settings are the host's, like the state location: only the environment gives them.
pub const REDIS_PREFIX: Setting = Setting {
    env: Some("GEMINI_ROTATOR_REDIS_PREFIX"),
    json: None,
    kind: Kind::RedisPrefix,
    default: DefaultValue::Text("gemini-rotator:"),
    doc: "With Redis state: the start of every Redis key the library writes (pools that share keys must share it)",
};
pub const REDIS_ON_FAILURE: Setting = Setting {
    env: Some("GEMINI_ROTATOR_REDIS_ON_FAILURE"),
    json: None,
    kind: Kind::OnFailure,
    default: DefaultValue::Text("fail"),
    doc: "With Redis state, when Redis cannot answer: `fail` the call (a state error), or `local:N` (each process counts alone, held to 1/N of every limit, until Redis answers)",
};
pub const REDIS_TIMEOUT: Setting = Setting {
    env: Some("GEMINI_ROTATOR_REDIS_TIMEOUT_MS"),
    json: None,
    kind: Kind::Count {
        min: 1,
        max: 60_000,
    },
    default: DefaultValue::Count(2000),
    doc: "With Redis state: the bound of one connect and of one command's wait for its answer, in milliseconds",
};

pub const REDIS_CA_FILE: Setting = Setting {
    env: Some("GEMINI_ROTATOR_REDIS_CA_FILE"),
    json: None,
    kind: Kind::PemFile,
    default: DefaultValue::Unset("the default roots"),
    doc: "With `rediss://` state: the certificate authorities that the Redis server's certificate must chain to (e.g. your own CA), instead of the default roots",
};

pub const MODELS: Setting = Setting {
    env: None,
    json: Some("models"),
    kind: Kind::Models,
    default: DefaultValue::Unset("none"),
    doc: "Per-model limits and fallbacks, by model name (see [Config file](#config-file)); a limit a model does not set is the global one",
};
pub const CONFIG_FILE: Setting = Setting {
    env: Some("GEMINI_ROTATOR_CONFIG"),
    json: None,
    kind: Kind::File,
    default: DefaultValue::Unset("none"),
    doc: "A config file with the JSON configuration's fields (TOML if the name ends in `.toml`); a variable that is set overrides it",
};

pub const LOG: Setting = Setting {
    env: Some("GEMINI_ROTATOR_LOG"),
    json: Some("log"),
    kind: Kind::LogLevel,
    default: DefaultValue::Unset("off"),
    doc: "Log level, process-wide (events go to stderr, or to the host's callback); unset leaves the level as it is",
};
/// Every setting, in the order the docs list them and the unknown-field error names them.
pub static SETTINGS: &[&Setting] = &[
    &FREE_KEYS,
    &PAID_KEY,
    &FREE_RATE_LIMIT,
    &PAID_RATE_LIMIT,
    &FREE_DAILY_LIMIT,
    &PAID_DAILY_LIMIT,
    &FREE_TOKEN_LIMIT,
    &PAID_TOKEN_LIMIT,
    &WINDOW,
    &BASE_URL,
    &MODEL,
    &TIMEOUT,
    &MAX_ATTEMPTS,
    &MAX_RETRIES,
    &RETRY_BASE,
    &RETRY_MAX,
    &STREAM_FIRST_EVENT_TIMEOUT,
    &STREAM_IDLE_TIMEOUT,
    &STATE,
    &REDIS_PREFIX,
    &REDIS_ON_FAILURE,
    &REDIS_TIMEOUT,
    &REDIS_CA_FILE,
    &LOG,
    &MODELS,
    &CONFIG_FILE,
];

/// The limits a model of `models` may set for itself, under the same JSON names as the global
/// settings (read by the same reader, with the same range).
pub static MODEL_LIMITS: &[&Setting] = &[
    &FREE_RATE_LIMIT,
    &FREE_DAILY_LIMIT,
    &FREE_TOKEN_LIMIT,
    &PAID_RATE_LIMIT,
    &PAID_DAILY_LIMIT,
    &PAID_TOKEN_LIMIT,
];

impl Kind {
    /// The values a setting of this kind takes, for the docs.
    pub fn values(&self) -> String {
        match self {
            Kind::Keys => "keys (`KEY` or `PROJECT:KEY`), comma-separated (in JSON, an array of strings or `{\"key\", \"project\"}` objects)".into(),
            Kind::Key => "a key (`KEY` or `PROJECT:KEY`; in JSON also `{\"key\", \"project\"}`)".into(),
            Kind::Count { min, max } => format!("{min} to {max}"),
            Kind::Url => "an `http://` or `https://` URL with a host, no query".into(),
            Kind::Model => "a model name (`models/` optional)".into(),
            Kind::State => "`shm`, `shm:/absolute/path`, `memory`, `redis://[user:password@]host:port[/db]` or `rediss://...`".into(),
            Kind::RedisPrefix => "1 to 64 printable ASCII characters, no spaces, braces or `*?[]`".into(),
            Kind::OnFailure => "`fail` or `local:N` (N from 1 to 1000)".into(),
            Kind::PemFile => "a PEM file path (one or more `BEGIN CERTIFICATE` blocks)".into(),
            Kind::LogLevel => "`off`, `error`, `warn`, `info` or `debug`".into(),
            Kind::File => "a file path (JSON, or TOML when it ends in `.toml`)".into(),
            Kind::Models => "an object: model name to its limits and `fallback` list".into(),
        }
    }
}

/// The setting whose JSON field is `field`.
pub fn by_json(field: &str) -> Option<&'static Setting> {
    SETTINGS.iter().copied().find(|s| s.json == Some(field))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_row_is_named_once_and_in_the_house_spelling() {
        let (mut envs, mut fields) = (HashSet::new(), HashSet::new());
        for s in SETTINGS {
            assert!(s.env.is_some() || s.json.is_some(), "{s:?} has no name");
            if let Some(env) = s.env {
                assert!(envs.insert(env), "{env} appears twice");
                assert!(
                    env.starts_with("GEMINI_")
                        && env.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                    "{env}"
                );
            }
            if let Some(field) = s.json {
                assert!(fields.insert(field), "{field} appears twice");
                assert!(
                    field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                    "{field}"
                );
                assert_eq!(by_json(field).map(|r| r.env), Some(s.env));
            }
        }
        assert_eq!(by_json("no_such_field").map(|s| s.env), None);
    }

    #[test]
    fn every_default_fits_its_kind() {
        for s in SETTINGS {
            match (s.kind, s.default) {
                (Kind::Count { min, max }, DefaultValue::Count(n)) => {
                    assert!(min <= n && n <= max, "{s:?}")
                }
                (Kind::Count { .. }, DefaultValue::Unset(_)) => {}
                (Kind::Count { .. }, DefaultValue::Text(_)) => panic!("{s:?}: a text default"),
                (_, DefaultValue::Count(_)) => panic!("{s:?}: a number default"),
                _ => {}
            }
        }
    }

    #[test]
    fn every_doc_is_one_line_that_fits_a_table_cell() {
        for s in SETTINGS {
            assert!(!s.doc.is_empty(), "{s:?}");
            assert!(!s.doc.contains(['\n', '|']), "{s:?}");
            assert!(!s.doc.ends_with('.'), "{s:?}: a cell, not a sentence");
        }
    }
}
