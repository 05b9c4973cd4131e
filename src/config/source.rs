//! Where settings are read from (the process environment, a stand-in for it, a JSON object), as
//! raw values, and how each source names a setting in errors.

use super::settings::Setting;
use super::Origin;
use crate::error::Error;
use serde_json::{Map, Value};

/// A value as read from its source, before validation.
pub(super) enum Raw {
    Text(String),
    List(Vec<String>),
    Number(u64),
}

/// Reads settings from one source and names them as that source does.
pub(super) trait Source {
    /// The setting's raw value; `None` when unset (or when this source cannot give it).
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error>;
    fn origin(&self) -> Origin;
    fn name(&self, s: &Setting) -> String {
        name_in(self.origin(), s)
    }
}

/// `GEMINI_FREE_RATE_LIMIT` in the environment, "config field `free_rate_limit`" in JSON.
pub(super) fn name_in(origin: Origin, s: &Setting) -> String {
    let env = s.env.map(str::to_string);
    let json = s.json.map(|field| format!("config field `{field}`"));
    let name = match origin {
        Origin::Environment => env.or(json),
        Origin::Json => json.or(env),
    };
    // Every row has at least one name (a test checks it).
    name.unwrap_or_else(|| "an unnamed setting".into())
}

/// The process environment. A value that is not UTF-8 is an error, never taken as unset.
pub(super) struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        match s.env {
            Some(name) => env_text(name),
            None => Ok(None),
        }
    }
    fn origin(&self) -> Origin {
        Origin::Environment
    }
}

pub(super) fn env_text(name: &str) -> Result<Option<Raw>, Error> {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => v
            .into_string()
            .map(|t| Some(Raw::Text(t)))
            .map_err(|_| Error::config(name, "is not valid UTF-8")),
    }
}

/// An environment stand-in: a lookup function.
pub(super) struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Source for Env<F> {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        Ok(s.env.and_then(&self.0).map(Raw::Text))
    }
    fn origin(&self) -> Origin {
        Origin::Environment
    }
}

/// A JSON object whose fields are the settings' JSON names (checked by `Config::from_json`).
pub(super) struct Json(pub Map<String, Value>);

impl Source for Json {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        let name = || self.name(s);
        let Some(field) = s.json else {
            return Ok(None);
        };
        Ok(match self.0.get(field) {
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

/// A JSON value's kind, as errors name it.
pub(super) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
