//! Configuration, from the environment or from a JSON object, validated up front: every problem
//! is an error that names the variable or field and the reason, never a silent default.
//!
//! - [`settings`]: the table, one row per setting (names, kind and range, default, doc).
//! - `source`: the environment and JSON sources, and how each names a setting.
//! - `parse`: one reader per kind of setting, driven by its row.
//! - `docs`: the README table and `bindings/settings.json`, generated from the table.

pub mod docs;
mod parse;
pub mod settings;
mod source;
#[cfg(test)]
mod tests;

use crate::error::Error;
use crate::key::ApiKey;
use serde_json::Value;
use settings::*;
use source::{kind, name_in, Env, Json, ProcessEnv, Source};
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
        if let Some(unknown) = map.keys().find(|k| settings::by_json(k).is_none()) {
            let known: Vec<_> = SETTINGS.iter().filter_map(|s| s.json).collect();
            return Err(Error::config(
                format!("config field `{unknown}`"),
                format!("unknown field (known fields: {})", known.join(", ")),
            ));
        }
        Config::build(&Json(map))
    }

    fn build(src: &dyn Source) -> Result<Config, Error> {
        // Each row is read by the reader of its kind; what follows a read are the rules that
        // tie settings together. (The order decides which of two bad values is reported.)
        let free_keys = parse::keys(src, &FREE_KEYS)?;
        let paid_key = parse::key(src, &PAID_KEY)?;
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
            state: parse::state(src, &STATE)?,
            log: parse::log_level(src, &LOG)?,
        })
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
