//! Structured log events: key cooldowns, disabled keys, paid fallbacks, exhaustion, retries.
//!
//! Off by default. `GEMINI_ROTATOR_LOG` (or the `log` config field) sets the level: `error`,
//! `warn`, `info`, `debug` (or `off`). Events go to stderr as one logfmt line each, unless the
//! host program installs a sink (`gr_set_log_callback` in C), which then receives each event as
//! a JSON object. Keys appear by fingerprint only: events are built from fingerprints, never
//! from keys.

use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, RwLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }

    /// `error`, `warn`, `info`, `debug`, or `off` (None).
    pub fn parse(s: &str) -> Result<Option<Level>, String> {
        Ok(Some(match s.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => return Ok(None),
            "error" => Level::Error,
            "warn" | "warning" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            other => {
                return Err(format!(
                    "unknown log level {other:?} (use off, error, warn, info or debug)"
                ))
            }
        }))
    }
}

/// A field value of an event.
pub enum Value<'a> {
    Str(&'a str),
    Num(u64),
}

/// Where events go instead of stderr: the level and the event as a JSON object.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static LEVEL: AtomicU8 = AtomicU8::new(0);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sets the most detailed level that is emitted (`None`: off).
pub fn set_level(level: Option<Level>) {
    LEVEL.store(level.map_or(0, |l| l as u8), Relaxed);
}

/// Sends events to `sink` instead of stderr (`None`: back to stderr).
pub fn set_sink(sink: Option<Sink>) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

pub fn enabled(level: Level) -> bool {
    LEVEL.load(Relaxed) >= level as u8
}

/// Emits an event if its level is enabled.
pub fn event(level: Level, name: &str, fields: &[(&str, Value<'_>)]) {
    if !enabled(level) {
        return;
    }
    // The read guard is held while the sink runs, so that `set_sink` returns only once no call
    // of the previous sink is running (a C caller may free its user data then).
    let guard = SINK.read().unwrap_or_else(|e| e.into_inner());
    match guard.as_ref() {
        Some(sink) => {
            let mut obj = serde_json::Map::new();
            obj.insert("level".into(), level.as_str().into());
            obj.insert("event".into(), name.into());
            for (k, v) in fields {
                let v = match v {
                    Value::Str(s) => serde_json::Value::from(*s),
                    Value::Num(n) => serde_json::Value::from(*n),
                };
                obj.insert((*k).into(), v);
            }
            sink(level, &serde_json::Value::Object(obj).to_string());
        }
        None => {
            let mut line = format!("gemini-rotator: level={} event={name}", level.as_str());
            for (k, v) in fields {
                match v {
                    Value::Str(s) if s.contains(|c: char| c.is_whitespace() || c == '"') => {
                        line.push_str(&format!(" {k}={s:?}"))
                    }
                    Value::Str(s) => line.push_str(&format!(" {k}={s}")),
                    Value::Num(n) => line.push_str(&format!(" {k}={n}")),
                }
            }
            eprintln!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn levels_filter_and_a_sink_receives_json() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        set_sink(Some(Arc::new(move |level, json| {
            s.lock().unwrap().push((level, json.to_string()))
        })));
        set_level(Some(Level::Warn));
        event(Level::Info, "quiet", &[]);
        event(
            Level::Warn,
            "key_cooldown",
            &[("key", Value::Str("abc")), ("cooldown_ms", Value::Num(5))],
        );
        set_level(None);
        event(Level::Error, "off", &[]);
        set_sink(None);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&seen[0].1).unwrap();
        assert_eq!(v["event"], "key_cooldown");
        assert_eq!(v["cooldown_ms"], 5);
        assert_eq!(Level::parse("WARN").unwrap(), Some(Level::Warn));
        assert!(Level::parse("loud").is_err());
    }
}
