//! The table of settings: one row per setting, owning its environment name, its JSON field, its
//! kind (how a value is parsed, with its range), its default and its one-line doc.
//!
//! Everything else is derived from these rows: the parsers read a row's kind and default, errors
//! name a setting as its row does, the JSON reader knows its fields from the table, and the README
//! table and `bindings/settings.json` (which the Go and Python tests check their configuration
//! against) are generated from it (see `docs.rs`). Adding a setting is adding a row here and
//! reading it in `Config::build`; a test fails if a row is never read.

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
    pub default: Default,
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
    /// `shm`, `shm:/absolute/path` or `memory`.
    State,
    /// `off`, `error`, `warn`, `info` or `debug`.
    LogLevel,
}

/// What an unset setting means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Default {
    /// Nothing is configured; the text says what that amounts to (for the docs).
    Unset(&'static str),
    Count(u64),
    Text(&'static str),
}

pub const LOG: Setting = Setting {
    env: Some("GEMINI_ROTATOR_LOG"),
    json: Some("log"),
    kind: Kind::LogLevel,
    default: Default::Unset("off"),
    doc: "Log level, process-wide (events go to stderr, or to the host's callback); unset leaves the level as it is",
};
pub const FREE_KEYS: Setting = Setting {
    env: Some("GEMINI_FREE_KEYS"),
    json: Some("free_keys"),
    kind: Kind::Keys,
    default: Default::Unset("none"),
    doc: "Free keys, used round-robin: comma-separated (whitespace trimmed, empty entries dropped), a list in JSON",
};
pub const PAID_KEY: Setting = Setting {
    env: Some("GEMINI_PAID_KEY"),
    json: Some("paid_key"),
    kind: Kind::Key,
    default: Default::Unset("none"),
    doc: "The paid key, used only when every free key is full",
};
pub const FREE_RATE_LIMIT: Setting = Setting {
    env: Some("GEMINI_FREE_RATE_LIMIT"),
    json: Some("free_rate_limit"),
    kind: Kind::Count {
        min: 1,
        max: 1_000_000,
    },
    default: Default::Count(60),
    doc: "Requests per window per free key",
};
pub const PAID_RATE_LIMIT: Setting = Setting {
    env: Some("GEMINI_PAID_RATE_LIMIT"),
    json: Some("paid_rate_limit"),
    kind: Kind::Count {
        min: 1,
        max: 1_000_000,
    },
    default: Default::Count(1000),
    doc: "Requests per window for the paid key",
};
pub const WINDOW: Setting = Setting {
    env: Some("GEMINI_RATE_WINDOW_MS"),
    json: Some("window_ms"),
    kind: Kind::Count {
        min: 1,
        max: 7 * 86_400_000,
    },
    default: Default::Count(60_000),
    doc: "Length of the rolling rate-limit window, in milliseconds",
};
pub const BASE_URL: Setting = Setting {
    env: Some("GEMINI_BASE_URL"),
    json: Some("base_url"),
    kind: Kind::Url,
    default: Default::Text(DEFAULT_BASE_URL),
    doc: "Service base URL",
};
pub const MODEL: Setting = Setting {
    env: Some("GEMINI_MODEL"),
    json: Some("model"),
    kind: Kind::Model,
    default: Default::Text(DEFAULT_MODEL),
    doc: "Default model (each call can name another)",
};
pub const TIMEOUT: Setting = Setting {
    env: Some("GEMINI_TIMEOUT_MS"),
    json: Some("timeout_ms"),
    kind: Kind::Count {
        min: 1,
        max: 3_600_000,
    },
    default: Default::Count(120_000),
    doc: "A call's time budget in milliseconds, retries included",
};
pub const MAX_ATTEMPTS: Setting = Setting {
    env: Some("GEMINI_MAX_ATTEMPTS"),
    json: Some("max_attempts"),
    kind: Kind::Count { min: 1, max: 100 },
    default: Default::Count(8),
    doc: "HTTP attempts per call at most, across keys and retries",
};
pub const MAX_RETRIES: Setting = Setting {
    env: Some("GEMINI_MAX_RETRIES"),
    json: Some("max_retries"),
    kind: Kind::Count { min: 0, max: 20 },
    default: Default::Count(3),
    doc: "Retries after 5xx or connection failures, at most",
};
pub const RETRY_BASE: Setting = Setting {
    env: Some("GEMINI_RETRY_BASE_MS"),
    json: Some("retry_base_ms"),
    kind: Kind::Count {
        min: 1,
        max: 600_000,
    },
    default: Default::Count(500),
    doc: "Backoff ceiling before the first retry, in milliseconds (doubling, full jitter)",
};
pub const RETRY_MAX: Setting = Setting {
    env: Some("GEMINI_RETRY_MAX_MS"),
    json: Some("retry_max_ms"),
    kind: Kind::Count {
        min: 1,
        max: 3_600_000,
    },
    default: Default::Count(16_000),
    doc: "Backoff cap in milliseconds, at least the first ceiling",
};
pub const STATE: Setting = Setting {
    env: Some("GEMINI_ROTATOR_STATE"),
    json: Some("state"),
    kind: Kind::State,
    default: Default::Text("shm"),
    doc: "Where key state lives: `shm` (shared by every process on the host, in `/dev/shm/gemini-rotator-<uid>.state`), another file, or this process only",
};

/// Every setting, in the order the docs list them and the unknown-field error names them.
pub static SETTINGS: [&Setting; 14] = [
    &LOG,
    &FREE_KEYS,
    &PAID_KEY,
    &FREE_RATE_LIMIT,
    &PAID_RATE_LIMIT,
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

impl Kind {
    /// The values a setting of this kind takes, for the docs.
    pub fn values(&self) -> String {
        match self {
            Kind::Keys => "keys".into(),
            Kind::Key => "a key".into(),
            Kind::Count { min, max } => format!("{min} to {max}"),
            Kind::Url => "an `http://` or `https://` URL with a host, no query".into(),
            Kind::Model => "a model name (`models/` optional)".into(),
            Kind::State => "`shm`, `shm:/absolute/path` or `memory`".into(),
            Kind::LogLevel => "`off`, `error`, `warn`, `info` or `debug`".into(),
        }
    }
}

/// The setting whose JSON field is `field`.
pub fn by_json(field: &str) -> Option<&'static Setting> {
    SETTINGS.iter().copied().find(|s| s.json == Some(field))
}
