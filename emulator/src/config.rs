//! The emulator's configuration: which API keys exist and how fast each may be used.
//!
//! The same types are read from the binary's `--config` file, accepted by
//! `POST /_emulator/keys`, and built directly by Rust tests.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::faults::Fault;

/// Everything the emulator needs to start.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmulatorConfig {
    /// The API keys the emulator accepts. Any other key gets `400 API_KEY_INVALID`.
    pub keys: Vec<KeySpec>,
    /// Faults active from the first request on (more can be added at run time).
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Keep the last request body of every key, for [`crate::Emulator::last_body`].
    #[serde(default)]
    pub record_bodies: bool,
    /// Tokio worker threads serving requests; 2 when absent.
    #[serde(default)]
    pub worker_threads: Option<usize>,
}

/// One API key the emulator knows, and its quota.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The secret sent in `x-goog-api-key`. Never shown in stats or logs.
    pub key: String,
    /// The public name under which the key appears in stats and logs.
    pub label: String,
    /// Requests accepted per rolling window; `None` means unlimited.
    pub limit: Option<u32>,
    /// Length of the rolling window in milliseconds.
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Requests accepted over the emulator's whole life (until a reset); `None` means unlimited.
    pub daily_limit: Option<u32>,
}

/// The real service's per-minute quotas use a one-minute window.
fn default_window_ms() -> u64 {
    60_000
}

impl KeySpec {
    /// An unlimited key.
    pub fn new(key: impl Into<String>, label: impl Into<String>) -> Self {
        KeySpec {
            key: key.into(),
            label: label.into(),
            limit: None,
            window_ms: default_window_ms(),
            daily_limit: None,
        }
    }

    /// Limits the key to `limit` requests in any rolling window of `window_ms` milliseconds.
    pub fn with_limit(mut self, limit: u32, window_ms: u64) -> Self {
        self.limit = Some(limit);
        self.window_ms = window_ms;
        self
    }

    /// Limits the key to `daily_limit` requests over the emulator's life.
    pub fn with_daily_limit(mut self, daily_limit: u32) -> Self {
        self.daily_limit = Some(daily_limit);
        self
    }

    /// Checks what can be checked about one key on its own.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.key.is_empty() {
            return Err(ConfigError(format!(
                "key with label '{}' has an empty `key`",
                self.label
            )));
        }
        if self.label.is_empty() {
            return Err(ConfigError("a key has an empty `label`".into()));
        }
        Ok(())
    }
}

impl EmulatorConfig {
    /// A configuration with these keys, no faults and default settings.
    pub fn with_keys(keys: Vec<KeySpec>) -> Self {
        EmulatorConfig {
            keys,
            ..EmulatorConfig::default()
        }
    }

    /// Parses a configuration from JSON text, naming the offending field on failure.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config: EmulatorConfig =
            serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every key, and that no label or key appears twice.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut labels = HashSet::new();
        let mut secrets = HashSet::new();
        for spec in &self.keys {
            spec.validate()?;
            if !labels.insert(spec.label.as_str()) {
                return Err(ConfigError(format!(
                    "label '{}' is used by more than one key",
                    spec.label
                )));
            }
            if !secrets.insert(spec.key.as_str()) {
                // Name the label, never the key itself.
                return Err(ConfigError(format!(
                    "the key of label '{}' is also used by another label",
                    spec.label
                )));
            }
        }
        if self.worker_threads == Some(0) {
            return Err(ConfigError("`worker_threads` must be at least 1".into()));
        }
        Ok(())
    }
}

/// A configuration that cannot be used, with a message saying why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_defaults_to_one_minute() {
        let config =
            EmulatorConfig::from_json(r#"{"keys":[{"key":"k","label":"a","limit":5}]}"#).unwrap();
        assert_eq!(config.keys[0].window_ms, 60_000);
        assert_eq!(config.keys[0].limit, Some(5));
        assert_eq!(config.keys[0].daily_limit, None);
        assert!(config.faults.is_empty());
    }

    #[test]
    fn rejects_duplicates_without_leaking_keys() {
        let err = EmulatorConfig::from_json(
            r#"{"keys":[{"key":"secret","label":"a"},{"key":"secret","label":"b"}]}"#,
        )
        .unwrap_err();
        assert!(err.0.contains("'b'"), "{err}");
        assert!(!err.0.contains("secret"), "{err}");

        let err = EmulatorConfig::from_json(
            r#"{"keys":[{"key":"x","label":"a"},{"key":"y","label":"a"}]}"#,
        )
        .unwrap_err();
        assert!(err.0.contains("label 'a'"), "{err}");
    }

    #[test]
    fn names_unknown_fields() {
        let err = EmulatorConfig::from_json(r#"{"keys":[{"key":"x","label":"a","limt":1}]}"#)
            .unwrap_err();
        assert!(err.0.contains("limt"), "{err}");
    }
}
