//! Configuration, from the environment or from a JSON object, validated up front: every problem
//! is an error that names the variable or field and the reason, never a silent default.
//!
//! - [`settings`]: the table, one row per setting (names, kind and range, default, doc).
//! - `source`: the environment, JSON and config-file sources, and how each names a setting.
//! - `parse`: one reader per kind of setting, driven by its row.
//! - `groups`: key entries with their project (`PROJECT:KEY`), and quota group ids.
//! - `models`: per-model limits and fallbacks (the `models` field).
//! - `file`: the config file (`GEMINI_ROTATOR_CONFIG`), JSON or TOML.
//! - `docs`: the README table and `bindings/settings.json`, generated from the table.

pub mod docs;
mod file;
mod groups;
mod models;
mod parse;
pub mod settings;
mod source;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_quota;

pub use groups::{validate_project, GroupId};
pub use models::{LimitOverrides, ModelConfig, ModelLimits};

use crate::error::Error;
use crate::key::{ApiKey, KeyId, Tier};
use serde_json::Value;
use settings::*;
use source::{kind, name_in, Env, Json, Layered, Place, ProcessEnv, Source};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;

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
    /// Shared by every host through a Redis server (its password never in `Debug`).
    Redis(crate::store::redis::Target),
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
    /// Requests per window per free quota group and model (see [`Config::limits`]).
    pub free_rate_limit: u64,
    /// Requests per window for the paid key, per model.
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
    /// How long a stream may take to send its first event before it is retried elsewhere.
    pub stream_first_event_timeout_ms: u64,
    /// The longest gap between two events of a stream.
    pub stream_idle_timeout_ms: u64,
    pub state: StateLocation,
    /// The log level to set when the pool is created (`None`: leave it as it is; `Some(None)`:
    /// off).
    pub log: Option<Option<crate::log::Level>>,
    /// Requests per Pacific day per free quota group and model; `None`: no daily limit.
    pub free_daily_limit: Option<u64>,
    /// Requests per Pacific day for the paid key, per model; `None`: no daily limit.
    pub paid_daily_limit: Option<u64>,
    /// Input tokens per window per free quota group and model; `None`: no token limit.
    pub free_token_limit: Option<u64>,
    /// Input tokens per window for the paid key, per model; `None`: no token limit.
    pub paid_token_limit: Option<u64>,
    /// Per-model limits and fallbacks, by model name (without `models/`). Read through
    /// [`Config::limits`] and [`Config::fallbacks`].
    pub models: BTreeMap<String, ModelConfig>,
    /// The project of each key that names one, by key identity. Read through
    /// [`Config::project_of`] and [`Config::group_id`].
    pub projects: HashMap<KeyId, String>,
    /// The config file read (`GEMINI_ROTATOR_CONFIG`), if any.
    pub config_file: Option<PathBuf>,
}

impl Config {
    /// Reads the process environment, and the config file `GEMINI_ROTATOR_CONFIG` names, if
    /// any: a variable that is set (even to an empty value) overrides the file's field.
    pub fn from_env() -> Result<Config, Error> {
        Config::build(&ProcessEnv)
    }

    /// The host's state location alone, from the process environment (`GEMINI_ROTATOR_STATE`
    /// and, for Redis, its settings), for tools that work on every key of the shared state.
    pub fn state_from_env() -> Result<StateLocation, Error> {
        parse::state(&ProcessEnv, &STATE)
    }

    /// Reads settings through `lookup` (an environment stand-in, for tests and embedding),
    /// with the config file it names, as [`Config::from_env`] does.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        Config::build(&Env(lookup))
    }

    /// Reads a JSON object whose fields are the lower-case setting names (`free_keys` is an
    /// array of key entries, `models` an object). Unknown fields are errors, so that a typo is
    /// never ignored. It names no config file: `GEMINI_ROTATOR_CONFIG` is not read.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::invalid_json("config_json", &e))?;
        let Value::Object(map) = value else {
            return Err(Error::invalid(
                "config_json",
                format!("must be a JSON object, got {}", kind(&value)),
            ));
        };
        let src = Json::new(map, Place::Inline);
        no_unknown_fields(&src)?;
        Config::build(&src)
    }

    /// The environment-like `env`, over the config file it names, if any.
    fn build(env: &dyn Source) -> Result<Config, Error> {
        let Some(path) = parse::file(env, &CONFIG_FILE)? else {
            return Config::build_from(env, None);
        };
        let file = Json::new(file::load(&path)?, Place::File(path.clone()));
        no_unknown_fields(&file)?;
        Config::build_from(&Layered { env, file }, Some(path))
    }

    fn build_from(src: &dyn Source, config_file: Option<PathBuf>) -> Result<Config, Error> {
        // Each row is read by the reader of its kind; what follows a read are the rules that
        // tie settings together. (The order decides which of two bad values is reported.)
        let free_entries = parse::keys(src, &FREE_KEYS)?;
        let paid_entry = parse::key(src, &PAID_KEY)?;
        let projects = groups::projects(src, &free_entries, paid_entry.as_ref())?;
        let free_keys: Vec<ApiKey> = free_entries.into_iter().map(|e| e.key).collect();
        let paid_key = paid_entry.map(|e| e.key);
        if free_keys.is_empty() && paid_key.is_none() {
            return Err(Error::config(
                src.name(&FREE_KEYS),
                format!(
                    "no API keys configured: set {} and/or {}{}",
                    src.name(&FREE_KEYS),
                    src.name(&PAID_KEY),
                    match &config_file {
                        Some(path) => format!(
                            " (or `free_keys` and/or `paid_key` in {})",
                            file::name(path)
                        ),
                        None => String::new(),
                    }
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
        let window_ms = parse::count(src, &WINDOW)?;
        let timeout_ms = parse::count(src, &TIMEOUT)?;
        let retry_base_ms = parse::count(src, &RETRY_BASE)?;
        let retry_max_ms = parse::count(src, &RETRY_MAX)?;
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
            free_rate_limit: parse::count(src, &FREE_RATE_LIMIT)?,
            paid_rate_limit: parse::count(src, &PAID_RATE_LIMIT)?,
            window_ms,
            base_url: parse::url(src, &BASE_URL)?,
            model: parse::model(src, &MODEL)?,
            timeout_ms,
            max_attempts: small(src, &MAX_ATTEMPTS)?,
            max_retries: small(src, &MAX_RETRIES)?,
            retry_base_ms,
            retry_max_ms,
            stream_first_event_timeout_ms: parse::count(src, &STREAM_FIRST_EVENT_TIMEOUT)?,
            stream_idle_timeout_ms: parse::count(src, &STREAM_IDLE_TIMEOUT)?,
            state: parse::state(src, &STATE)?,
            log: parse::log_level(src, &LOG)?,
            free_daily_limit: parse::count_or_unset(src, &FREE_DAILY_LIMIT)?,
            paid_daily_limit: parse::count_or_unset(src, &PAID_DAILY_LIMIT)?,
            free_token_limit: parse::count_or_unset(src, &FREE_TOKEN_LIMIT)?,
            paid_token_limit: parse::count_or_unset(src, &PAID_TOKEN_LIMIT)?,
            models: models::read(src)?,
            projects,
            config_file,
        })
    }

    /// The project `key` belongs to, if its entry named one (`PROJECT:KEY`).
    pub fn project_of(&self, key: &ApiKey) -> Option<&str> {
        self.projects.get(key.id()).map(String::as_str)
    }

    /// The quota group of `key`: keys of one project share every limit; a key without a project
    /// is a group of its own.
    pub fn group_id(&self, key: &ApiKey) -> GroupId {
        GroupId::of(key, self.project_of(key))
    }

    /// The limits in force for `model` (with or without `models/`) on `tier`: the model's own
    /// (from `models`), else the global settings.
    pub fn limits(&self, model: &str, tier: Tier) -> ModelLimits {
        let global = match tier {
            Tier::Free => ModelLimits {
                rate: self.free_rate_limit,
                daily: self.free_daily_limit,
                tokens: self.free_token_limit,
            },
            Tier::Paid => ModelLimits {
                rate: self.paid_rate_limit,
                daily: self.paid_daily_limit,
                tokens: self.paid_token_limit,
            },
        };
        match self.models.get(models::normalize(model)) {
            Some(m) => ModelLimits::resolve(global, m.tier(tier)),
            None => global,
        }
    }

    /// The models that serve a call for `model` (with or without `models/`) when no key can,
    /// in order; empty when none is configured.
    pub fn fallbacks(&self, model: &str) -> &[String] {
        self.models
            .get(models::normalize(model))
            .map_or(&[], |m| m.fallback.as_slice())
    }

    /// How this configuration names a setting given by its JSON field name
    /// (`free_rate_limit` is `GEMINI_FREE_RATE_LIMIT` in the environment).
    pub fn setting_name(&self, json_field: &str) -> String {
        match settings::by_json(json_field) {
            Some(s) => name_in(self.origin, s),
            None => json_field.to_string(),
        }
    }

    /// Every key, free keys first.
    pub fn all_keys(&self) -> impl Iterator<Item = &ApiKey> {
        self.free_keys.iter().chain(self.paid_key.iter())
    }
}

/// A JSON configuration (inline or a file) has only the table's fields.
fn no_unknown_fields(src: &Json) -> Result<(), Error> {
    let Some(unknown) = src.map.keys().find(|k| settings::by_json(k).is_none()) else {
        return Ok(());
    };
    let known: Vec<_> = SETTINGS.iter().filter_map(|s| s.json).collect();
    Err(Error::config(
        src.field_name(unknown),
        format!("unknown field (known fields: {})", known.join(", ")),
    ))
}

/// A count whose row's range fits in a `u32`.
fn small(src: &dyn Source, s: &Setting) -> Result<u32, Error> {
    let n = parse::count(src, s)?;
    u32::try_from(n).map_err(|_| {
        Error::config(
            src.name(s),
            format!("must be at most {}, got {n}", u32::MAX),
        )
    })
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
