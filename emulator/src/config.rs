//! The emulator's configuration: which API keys exist, which project each belongs to, and the
//! quotas of each (project, model).
//!
//! The same types are read from the binary's `--config` file, accepted by
//! `POST /_emulator/keys`, and built directly by Rust tests.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Per-model quotas for every project, used where a key says nothing for that model.
    /// Every model named here is also listed by `GET /{version}/models`.
    #[serde(default)]
    pub models: BTreeMap<String, ModelLimits>,
    /// The wall-clock time at start (RFC 3339), for the Pacific day; absent means the real
    /// time. The clock then runs forward in real time and can be set through the control API.
    #[serde(default)]
    pub clock: Option<String>,
    /// How streamed answers are shaped unless a fault says otherwise.
    #[serde(default)]
    pub stream: StreamConfig,
}

/// The quotas of one model; absent fields fall back to the next level (see
/// [`KeySpec::limits_for`]), and where nothing says anything there is no limit. A limit of 0
/// means the model is not on the project's tier.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelLimits {
    /// Requests per rolling window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Requests per Pacific day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_limit: Option<u32>,
    /// Input tokens per rolling window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_limit: Option<u64>,
}

/// The default shape of `streamGenerateContent` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Pause between two events, in milliseconds.
    #[serde(default)]
    pub gap_ms: u64,
    /// End events with `\r\n\r\n` instead of `\n\n`.
    #[serde(default)]
    pub crlf: bool,
}

/// One API key the emulator knows, its project, and its project's quotas.
///
/// Quotas belong to (project, model), never to a key: keys of one project share them, and so
/// must all carry the same limit fields.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// The secret sent in `x-goog-api-key`. Never shown in stats or logs.
    pub key: String,
    /// The public name under which the key appears in stats and logs.
    pub label: String,
    /// The Cloud project the key belongs to; absent means a project of its own, named by
    /// the label.
    #[serde(default)]
    pub project: Option<String>,
    /// Requests accepted per rolling window, per model; `None` means unlimited.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Length of the rolling windows (requests and tokens) in milliseconds.
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// Requests accepted per Pacific day, per model; `None` means unlimited.
    #[serde(default)]
    pub daily_limit: Option<u32>,
    /// Input tokens accepted per rolling window, per model; `None` means unlimited.
    #[serde(default)]
    pub token_limit: Option<u64>,
    /// Quotas of particular models in this key's project, overriding the fields above.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, ModelLimits>,
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
            project: None,
            limit: None,
            window_ms: default_window_ms(),
            daily_limit: None,
            token_limit: None,
            models: BTreeMap::new(),
        }
    }

    /// Puts the key in `project`, whose quotas it then shares with the project's other keys.
    pub fn in_project(mut self, project: impl Into<String>) -> Self {
        self.project = Some(project.into());
        self
    }

    /// The project whose quotas this key uses: its `project`, else its own label.
    pub fn project_name(&self) -> &str {
        self.project.as_deref().unwrap_or(&self.label)
    }

    /// Limits the key's project to `token_limit` input tokens per window, per model.
    pub fn with_token_limit(mut self, token_limit: u64) -> Self {
        self.token_limit = Some(token_limit);
        self
    }

    /// Sets the quotas of one model in the key's project.
    pub fn with_model(mut self, model: impl Into<String>, limits: ModelLimits) -> Self {
        self.models.insert(model.into(), limits);
        self
    }

    /// The quotas of `model` in this key's project: each field from this key's `models`
    /// entry for the model, else this key's own field, else the configuration-wide `models`
    /// entry (`global`), else unlimited.
    pub fn limits_for(&self, model: &str, global: &BTreeMap<String, ModelLimits>) -> ModelLimits {
        let mine = self.models.get(model);
        let everyone = global.get(model);
        ModelLimits {
            limit: mine
                .and_then(|m| m.limit)
                .or(self.limit)
                .or(everyone.and_then(|m| m.limit)),
            daily_limit: mine
                .and_then(|m| m.daily_limit)
                .or(self.daily_limit)
                .or(everyone.and_then(|m| m.daily_limit)),
            token_limit: mine
                .and_then(|m| m.token_limit)
                .or(self.token_limit)
                .or(everyone.and_then(|m| m.token_limit)),
        }
    }

    /// Whether two keys carry the same quota fields (required within one project).
    pub fn same_limits(&self, other: &KeySpec) -> bool {
        (
            self.limit,
            self.window_ms,
            self.daily_limit,
            self.token_limit,
            &self.models,
        ) == (
            other.limit,
            other.window_ms,
            other.daily_limit,
            other.token_limit,
            &other.models,
        )
    }

    /// Limits the key's project to `limit` requests per model in any rolling window of
    /// `window_ms` milliseconds.
    pub fn with_limit(mut self, limit: u32, window_ms: u64) -> Self {
        self.limit = Some(limit);
        self.window_ms = window_ms;
        self
    }

    /// Limits the key's project to `daily_limit` requests per Pacific day, per model.
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
        if self.project.as_deref() == Some("") {
            return Err(ConfigError(format!(
                "key with label '{}' has an empty `project`",
                self.label
            )));
        }
        if self.window_ms == 0 {
            return Err(ConfigError(format!(
                "key with label '{}': `window_ms` must be at least 1",
                self.label
            )));
        }
        if let Some(model) = self.models.keys().find(|m| m.is_empty()) {
            return Err(ConfigError(format!(
                "key with label '{}' has quotas for an empty model name {model:?}",
                self.label
            )));
        }
        Ok(())
    }

    /// Checks that this key agrees with `other` of the same project on every quota field.
    pub fn check_same_project(&self, other: &KeySpec) -> Result<(), ConfigError> {
        if self.project_name() != other.project_name() || self.same_limits(other) {
            return Ok(());
        }
        Err(ConfigError(format!(
            "keys '{}' and '{}' are both in project '{}' but set different quotas (limit, \
             window_ms, daily_limit, token_limit, models); quotas belong to the project, so \
             give its keys the same ones",
            other.label,
            self.label,
            self.project_name()
        )))
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
        let mut first_of_project: HashMap<&str, &KeySpec> = HashMap::new();
        for spec in &self.keys {
            spec.validate()?;
            let first = first_of_project.entry(spec.project_name()).or_insert(spec);
            spec.check_same_project(first)?;
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
        for (i, fault) in self.faults.iter().enumerate() {
            fault
                .validate()
                .map_err(|e| ConfigError(format!("faults[{i}]: {e}")))?;
        }
        if self.models.keys().any(String::is_empty) {
            return Err(ConfigError("`models` has an empty model name".into()));
        }
        if let Some(clock) = &self.clock {
            crate::pacific::parse_rfc3339(clock)
                .map_err(|e| ConfigError(format!("`clock`: {e}")))?;
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
    fn limits_resolve_from_the_most_specific_level() {
        let config = EmulatorConfig::from_json(
            r#"{"models": {"m": {"limit": 5, "daily_limit": 20, "token_limit": 100}},
                "keys": [{"key": "k", "label": "a", "daily_limit": 7,
                          "models": {"m": {"token_limit": 9}}}]}"#,
        )
        .unwrap();
        let key = &config.keys[0];
        let limits = key.limits_for("m", &config.models);
        assert_eq!(
            (limits.limit, limits.daily_limit, limits.token_limit),
            (Some(5), Some(7), Some(9))
        );
        let other = key.limits_for("other", &config.models);
        assert_eq!(
            (other.limit, other.daily_limit, other.token_limit),
            (None, Some(7), None)
        );
        assert_eq!(key.project_name(), "a");
    }

    #[test]
    fn keys_of_one_project_must_agree_on_quotas() {
        let err = EmulatorConfig::from_json(
            r#"{"keys": [{"key": "x", "label": "a", "project": "p", "limit": 5},
                         {"key": "y", "label": "b", "project": "p"}]}"#,
        )
        .unwrap_err();
        assert!(
            err.0.contains("'a' and 'b'") && err.0.contains("project 'p'"),
            "{err}"
        );
        // A key without a project is in the project named by its label.
        let err = EmulatorConfig::from_json(
            r#"{"keys": [{"key": "x", "label": "p", "limit": 1},
                         {"key": "y", "label": "b", "project": "p", "limit": 2}]}"#,
        )
        .unwrap_err();
        assert!(err.0.contains("project 'p'"), "{err}");
        EmulatorConfig::from_json(
            r#"{"keys": [{"key": "x", "label": "a", "project": "p", "limit": 5},
                         {"key": "y", "label": "b", "project": "p", "limit": 5}]}"#,
        )
        .unwrap();
    }

    #[test]
    fn bad_fields_are_named() {
        for (text, expected) in [
            (r#"{"keys": [], "clock": "noon"}"#, "`clock`"),
            (r#"{"keys": [], "models": {"m": {"limt": 1}}}"#, "limt"),
            (
                r#"{"keys": [{"key": "k", "label": "a", "window_ms": 0}]}"#,
                "window_ms",
            ),
            (
                r#"{"keys": [{"key": "k", "label": "a", "project": ""}]}"#,
                "empty `project`",
            ),
            (r#"{"keys": [], "stream": {"gap": 1}}"#, "gap"),
        ] {
            let err = EmulatorConfig::from_json(text).unwrap_err();
            assert!(err.0.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn names_unknown_fields() {
        let err = EmulatorConfig::from_json(r#"{"keys":[{"key":"x","label":"a","limt":1}]}"#)
            .unwrap_err();
        assert!(err.0.contains("limt"), "{err}");
    }
}
