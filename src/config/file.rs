//! The config file named by `GEMINI_ROTATOR_CONFIG`: JSON, or TOML when its name ends in
//! `.toml`, holding the fields of the JSON configuration. TOML is read into the same JSON value,
//! so that one set of readers (and one set of error messages) serves both.
//!
//! A parse error says where (line and column) and what was expected, never the text around it:
//! the line could hold a key.

use super::source::{kind, quoted};
use crate::error::Error;
use serde_json::{Map, Number, Value};
use std::path::Path;

/// How errors about the file as a whole name it.
pub(super) fn name(path: &Path) -> String {
    format!(
        "config file {} ({})",
        quoted(path),
        super::settings::CONFIG_FILE.env.unwrap_or("config file")
    )
}

/// The file's top-level object.
pub(super) fn load(path: &Path) -> Result<Map<String, Value>, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::config(name(path), format!("cannot be read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::config(
            name(path),
            format!(
                "is not UTF-8 text (at byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let value = if is_toml(path) {
        toml_value(path, &text)?
    } else {
        serde_json::from_str::<Value>(&text).map_err(|e| {
            Error::config(
                name(path),
                format!(
                    "not valid JSON at line {}, column {}: {}",
                    e.line(),
                    e.column(),
                    json_reason(&e)
                ),
            )
        })?
    };
    match value {
        Value::Object(map) => Ok(map),
        other => Err(Error::config(
            name(path),
            format!("must hold an object of settings, got {}", kind(&other)),
        )),
    }
}

/// Whether the file is read as TOML.
pub(super) fn is_toml(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

/// serde_json's message without its " at line L column C" tail (said once, before it).
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn toml_value(path: &Path, text: &str) -> Result<Value, Error> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e
            .span()
            .map(|span| line_and_column(text, span.start))
            .unwrap_or((1, 1));
        Error::config(
            name(path),
            format!(
                "not valid TOML at line {line}, column {column}: {}",
                e.message().trim_end()
            ),
        )
    })?;
    from_toml(path, "", toml::Value::Table(table))
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A TOML value as the JSON value the readers take. `at` is its path, for the one TOML type
/// without a JSON counterpart (a date-time, which no setting takes).
fn from_toml(path: &Path, at: &str, value: toml::Value) -> Result<Value, Error> {
    // Paths as errors write them: `models."gemini-3.6-flash".free_daily_limit` (a model name is
    // always quoted, a field name when it is not plain).
    let field = |key: &str| {
        let plain = key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let key = if plain && Some(at) != super::settings::MODELS.json {
            key.to_string()
        } else {
            format!("{key:?}")
        };
        if at.is_empty() {
            key
        } else {
            format!("{at}.{key}")
        }
    };
    Ok(match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::Number(Number::from(i)),
        toml::Value::Float(f) => match Number::from_f64(f) {
            Some(n) => Value::Number(n),
            None => {
                return Err(Error::config(
                    super::source::Place::File(path.into()).field(at),
                    format!("must be a positive integer, got {f}"),
                ))
            }
        },
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(_) => {
            return Err(Error::config(
                super::source::Place::File(path.into()).field(at),
                "a date-time, which no setting takes",
            ))
        }
        toml::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| from_toml(path, &format!("{at}[{}]", i + 1), v))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| {
                    let value = from_toml(path, &field(&k), v)?;
                    Ok((k, value))
                })
                .collect::<Result<_, Error>>()?,
        ),
    })
}
