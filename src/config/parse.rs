//! One reader per kind of setting: each takes its row of the table, reads the raw value from the
//! source, validates it against the row's kind (range, format) and applies the row's default.

use super::groups::{self, KeyEntry};
use super::settings::{DefaultValue, Kind, Setting};
use super::source::{env_text, Raw, Source};
use super::{validate_model, Origin, StateLocation};
use crate::error::Error;
use crate::key::ApiKey;

/// A row read by a reader of another kind, or with a default of the wrong type: a mistake in the
/// table, reported as an error rather than a panic (every test that builds a `Config` reads every
/// row, so it cannot ship).
fn table_mistake(src: &dyn Source, s: &Setting) -> Error {
    Error::config(
        src.name(s),
        format!(
            "internal error: the settings table gives this setting kind {:?} with default {:?}",
            s.kind, s.default
        ),
    )
}

/// A string setting, trimmed; set but empty is an error.
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

/// A string setting with a text default (the row's), validated by `check`.
fn text_or_default(
    src: &dyn Source,
    s: &Setting,
    kind: Kind,
    check: impl FnOnce(&str) -> Result<String, String>,
) -> Result<String, Error> {
    let DefaultValue::Text(default) = s.default else {
        return Err(table_mistake(src, s));
    };
    if s.kind != kind {
        return Err(table_mistake(src, s));
    }
    match text(src, s)? {
        None => Ok(default.to_string()),
        Some(v) => check(&v).map_err(|r| Error::config(src.name(s), r)),
    }
}

/// A [`Kind::Count`] with a [`DefaultValue::Count`].
pub(super) fn count(src: &dyn Source, s: &Setting) -> Result<u64, Error> {
    match (count_or_unset(src, s)?, s.default) {
        (Some(n), _) => Ok(n),
        (None, DefaultValue::Count(default)) => Ok(default),
        (None, _) => Err(table_mistake(src, s)),
    }
}

/// A [`Kind::Count`], `None` when unset: the reader for a count whose default is
/// [`DefaultValue::Unset`] (a limit that is off unless set).
pub(super) fn count_or_unset(src: &dyn Source, s: &Setting) -> Result<Option<u64>, Error> {
    let Kind::Count { min, max } = s.kind else {
        return Err(table_mistake(src, s));
    };
    let n = match src.get(s)? {
        None => return Ok(None),
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
        Some(Raw::Object(_)) => {
            return Err(Error::config(
                src.name(s),
                "must be a number, got an object",
            ))
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
    Ok(Some(n))
}

/// A [`Kind::Keys`]: comma-separated or a list; blank entries are dropped. Entries may name
/// their project (`groups.rs`).
pub(super) fn keys(src: &dyn Source, s: &Setting) -> Result<Vec<KeyEntry>, Error> {
    if s.kind != Kind::Keys {
        return Err(table_mistake(src, s));
    }
    let list: Vec<Raw> = match src.get(s)? {
        None => return Ok(Vec::new()),
        Some(Raw::Text(t)) => t.split(',').map(|e| Raw::Text(e.to_string())).collect(),
        Some(Raw::List(l)) => l,
        Some(Raw::Number(_)) => {
            return Err(Error::config(
                src.name(s),
                "must be a list of keys, got a number",
            ))
        }
        Some(Raw::Object(_)) => {
            return Err(Error::config(
                src.name(s),
                "must be a list of keys, got an object",
            ))
        }
    };
    let mut out = Vec::new();
    for raw in &list {
        let position = out.len() + 1;
        let Some(entry) = key_entry(src, s, raw, Some(position))? else {
            continue;
        };
        out.push(entry);
    }
    Ok(out)
}

/// A [`Kind::Key`]; blank is unset.
pub(super) fn key(src: &dyn Source, s: &Setting) -> Result<Option<KeyEntry>, Error> {
    if s.kind != Kind::Key {
        return Err(table_mistake(src, s));
    }
    match src.get(s)? {
        None => Ok(None),
        Some(raw @ (Raw::Text(_) | Raw::Object(_))) => key_entry(src, s, &raw, None),
        Some(_) => Err(Error::config(src.name(s), "must be a string")),
    }
}

/// One key entry, `None` when blank; `position` is its place in a list (1-based, blanks not
/// counted), `None` for a lone key.
fn key_entry(
    src: &dyn Source,
    s: &Setting,
    raw: &Raw,
    position: Option<usize>,
) -> Result<Option<KeyEntry>, Error> {
    let which = position
        .map(|p| format!("key {p}"))
        .unwrap_or_else(|| "the key".into());
    let Some((key, project)) =
        groups::entry(raw).map_err(|r| Error::config(src.name(s), format!("{which}: {r}")))?
    else {
        return Ok(None);
    };
    check_key_chars(src, s, &key, position)?;
    Ok(Some(KeyEntry {
        key: ApiKey::new(key),
        project,
    }))
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

/// A [`Kind::Url`], without its trailing slash.
pub(super) fn url(src: &dyn Source, s: &Setting) -> Result<String, Error> {
    text_or_default(src, s, Kind::Url, |url| {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("not a URL ({e}); the value is not shown, in case it is a key"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!(
                "must be an http:// or https:// URL with a host, got scheme {:?}",
                parsed.scheme()
            ));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            // Not echoed: a query is where a key would hide (`?key=...`).
            return Err("must not have a query or fragment (the key goes in the x-goog-api-key header, never in the URL)".into());
        }
        Ok(url.trim_end_matches('/').to_string())
    })
}

/// A [`Kind::Model`], without `models/`.
pub(super) fn model(src: &dyn Source, s: &Setting) -> Result<String, Error> {
    text_or_default(src, s, Kind::Model, validate_model)
}

/// A [`Kind::File`]: a path, relative to the working directory or absolute; `None` when unset.
pub(super) fn file(src: &dyn Source, s: &Setting) -> Result<Option<std::path::PathBuf>, Error> {
    if s.kind != Kind::File {
        return Err(table_mistake(src, s));
    }
    Ok(text(src, s)?.map(std::path::PathBuf::from))
}

/// A [`Kind::LogLevel`]: `None` leaves the process's level as it is; `Some(None)` is off.
pub(super) fn log_level(
    src: &dyn Source,
    s: &Setting,
) -> Result<Option<Option<crate::log::Level>>, Error> {
    if s.kind != Kind::LogLevel {
        return Err(table_mistake(src, s));
    }
    match text(src, s)? {
        None => Ok(None),
        Some(v) => crate::log::Level::parse(&v)
            .map(Some)
            .map_err(|r| Error::config(src.name(s), r)),
    }
}

/// A [`Kind::State`].
///
/// The state location is the host's, not the pool's: a JSON configuration without it takes the
/// environment variable, so that every pool of every process on the host agrees on it.
pub(super) fn state(src: &dyn Source, s: &Setting) -> Result<StateLocation, Error> {
    let default = || Ok(StateLocation::Shm(crate::store::shm::default_path()));
    // Read (and checked) whatever the location, so that a typo shows before Redis is used.
    let redis = redis_settings(src)?;
    if s.kind != Kind::State || s.default != DefaultValue::Text("shm") {
        return Err(table_mistake(src, s));
    }
    let (value, name) = match (text(src, s)?, s.env) {
        (Some(v), _) => (v, src.name(s)),
        (None, Some(env)) if src.origin() == Origin::Json => match env_text(env)? {
            Some(Raw::Text(v)) if !v.trim().is_empty() => (v.trim().to_string(), env.to_string()),
            _ => return default(),
        },
        (None, _) => return default(),
    };
    if value.starts_with("redis://") || value.starts_with("rediss://") {
        let mut target = crate::store::redis::Target::parse(&value, &name)?;
        redis.apply(&mut target);
        return Ok(StateLocation::Redis(target));
    }
    match value.as_str() {
        "memory" => Ok(StateLocation::Memory),
        "shm" => default(),
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
                format!(
                    "unknown state location {v:?} (use shm, shm:/absolute/path, memory, \
                     redis://host:port or rediss://host:port)"
                ),
            )),
        },
    }
}

/// The Redis settings that are set (each `None` leaves the table's default).
#[derive(Default)]
struct RedisSettings {
    prefix: Option<String>,
    on_failure: Option<crate::store::redis::OnFailure>,
    timeout_ms: Option<u64>,
    ca_file: Option<std::path::PathBuf>,
}

impl RedisSettings {
    fn apply(self, target: &mut crate::store::redis::Target) {
        if let Some(p) = self.prefix {
            target.prefix = p;
        }
        if let Some(f) = self.on_failure {
            target.on_failure = f;
        }
        if let Some(t) = self.timeout_ms {
            target.timeout_ms = t;
        }
        if let Some(f) = self.ca_file {
            target.ca_file = Some(f);
        }
    }
}

/// The Redis settings (the host's, like the location: read from the environment whatever
/// the configuration's origin).
fn redis_settings(src: &dyn Source) -> Result<RedisSettings, Error> {
    use super::settings::{REDIS_CA_FILE, REDIS_ON_FAILURE, REDIS_PREFIX, REDIS_TIMEOUT};
    let mut target = RedisSettings::default();
    let host_text = |s: &Setting| -> Result<Option<(String, String)>, Error> {
        let env = s.env.ok_or_else(|| table_mistake(src, s))?;
        let raw = if src.origin() == Origin::Environment {
            src.get(s)?
        } else {
            env_text(env)?
        };
        match raw {
            None => Ok(None),
            Some(Raw::Text(t)) if t.trim().is_empty() => {
                Err(Error::config(env, "is set but empty"))
            }
            Some(Raw::Text(t)) => Ok(Some((t.trim().to_string(), env.to_string()))),
            Some(_) => Err(Error::config(env, "must be a string")),
        }
    };
    if REDIS_PREFIX.kind != Kind::RedisPrefix || REDIS_ON_FAILURE.kind != Kind::OnFailure {
        return Err(table_mistake(src, &REDIS_PREFIX));
    }
    if let Some((prefix, name)) = host_text(&REDIS_PREFIX)? {
        let ok = prefix.len() <= 64
            && prefix
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"{}*?[]\\".contains(&b));
        if !ok {
            return Err(Error::config(
                name,
                format!("{prefix:?} is not a key prefix (1 to 64 printable ASCII characters, no spaces, braces or *?[])"),
            ));
        }
        target.prefix = Some(prefix);
    }
    if let Some((mode, name)) = host_text(&REDIS_ON_FAILURE)? {
        use crate::store::redis::OnFailure;
        target.on_failure = Some(match mode.as_str() {
            "fail" => OnFailure::Fail,
            m => match m.strip_prefix("local:").map(str::parse::<u64>) {
                Some(Ok(share)) if (1..=1000).contains(&share) => OnFailure::Local { share },
                _ => {
                    return Err(Error::config(
                        name,
                        format!("{m:?} is not a failure mode (use fail, or local:N with N from 1 to 1000: each process held to 1/N of every limit)"),
                    ))
                }
            },
        });
    }
    if let Some((ms, name)) = host_text(&REDIS_TIMEOUT)? {
        let Kind::Count { min, max } = REDIS_TIMEOUT.kind else {
            return Err(table_mistake(src, &REDIS_TIMEOUT));
        };
        target.timeout_ms = Some(match ms.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                return Err(Error::config(
                    name,
                    format!("must be a whole number from {min} to {max}, got {ms:?}"),
                ))
            }
        });
    }
    // Read (and checked) when the store connects: the error names this setting and the file.
    if let Some((path, _)) = host_text(&REDIS_CA_FILE)? {
        target.ca_file = Some(path.into());
    }
    Ok(target)
}
