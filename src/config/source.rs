//! Where settings are read from (the process environment, a stand-in for it, a JSON object, a
//! config file under the environment), as raw values, and how each source names a setting in
//! errors.

use super::settings::Setting;
use super::Origin;
use crate::error::Error;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// A value as read from its source, before validation.
pub(super) enum Raw {
    Text(String),
    /// A JSON array: each entry a `Text` or an `Object`.
    List(Vec<Raw>),
    Number(u64),
    /// A JSON object (a key with its project, the `models` map).
    Object(Map<String, Value>),
}

/// Reads settings from one source and names them as that source does.
pub(super) trait Source {
    /// The setting's raw value; `None` when unset (or when this source cannot give it).
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error>;
    fn origin(&self) -> Origin;
    fn name(&self, s: &Setting) -> String {
        name_in(self.origin(), s)
    }
    /// Where this source's JSON objects come from, to name the fields inside them.
    fn json_place(&self) -> Place {
        Place::Inline
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

/// Where a JSON object came from, for naming its fields.
#[derive(Clone, Debug)]
pub(super) enum Place {
    /// The JSON configuration given to `gr_pool_new` (or `Config::from_json`).
    Inline,
    /// A config file.
    File(PathBuf),
}

impl Place {
    /// A field (a path such as `models."gemini-3.6-flash".free_daily_limit`) as errors name it.
    pub(super) fn field(&self, path: &str) -> String {
        match self {
            Place::Inline => format!("config field `{path}`"),
            Place::File(file) => format!("config file {}, field `{path}`", quoted(file)),
        }
    }
}

/// A path as errors show it: quoted, so that spaces and an empty name stay visible.
pub(super) fn quoted(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

/// A JSON object whose fields are the settings' JSON names (checked by the caller: the top level
/// by `Config::from_json` and `file::load`, a model's by `models.rs`).
pub(super) struct Json {
    pub map: Map<String, Value>,
    pub place: Place,
    /// The object's path in its document, with a trailing dot (`models."m".`), or empty.
    pub prefix: String,
}

impl Json {
    pub(super) fn new(map: Map<String, Value>, place: Place) -> Json {
        Json {
            map,
            place,
            prefix: String::new(),
        }
    }

    /// The name of `field` of this object, as a path from the document's top.
    pub(super) fn field_name(&self, field: &str) -> String {
        self.place.field(&format!("{}{field}", self.prefix))
    }
}

impl Source for Json {
    fn json_place(&self) -> Place {
        self.place.clone()
    }
    fn name(&self, s: &Setting) -> String {
        match s.json {
            Some(field) => self.field_name(field),
            None => name_in(Origin::Json, s),
        }
    }
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        let name = || self.name(s);
        let Some(field) = s.json else {
            return Ok(None);
        };
        Ok(match self.map.get(field) {
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
                        Value::String(t) => list.push(Raw::Text(t.clone())),
                        Value::Object(o) => list.push(Raw::Object(o.clone())),
                        other => {
                            return Err(Error::config(
                                name(),
                                format!(
                                    "entry {} must be a string (or an object), got {}",
                                    i + 1,
                                    kind(other)
                                ),
                            ))
                        }
                    }
                }
                Some(Raw::List(list))
            }
            Some(Value::Object(o)) => Some(Raw::Object(o.clone())),
            Some(other) => {
                return Err(Error::config(name(), format!("unexpected {}", kind(other))))
            }
        })
    }
    fn origin(&self) -> Origin {
        Origin::Json
    }
}

/// The environment over a config file: a variable that is set (even to an empty value) wins over
/// the file's field; errors name whichever gave the value.
pub(super) struct Layered<'a> {
    pub env: &'a dyn Source,
    pub file: Json,
}

impl Source for Layered<'_> {
    fn get(&self, s: &Setting) -> Result<Option<Raw>, Error> {
        match self.env.get(s)? {
            Some(v) => Ok(Some(v)),
            None => self.file.get(s),
        }
    }
    fn origin(&self) -> Origin {
        Origin::Environment
    }
    fn json_place(&self) -> Place {
        self.file.place.clone()
    }
    fn name(&self, s: &Setting) -> String {
        let in_env = matches!(self.env.get(s), Ok(Some(_)) | Err(_));
        let in_file = s
            .json
            .is_some_and(|f| self.file.map.get(f).is_some_and(|v| !v.is_null()));
        if !in_env && in_file {
            self.file.name(s)
        } else {
            self.env.name(s)
        }
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
