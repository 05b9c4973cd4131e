//! What the emulator saw: counters per key and per (project, model), and a log of every
//! request to the Gemini API surface.
//!
//! Keys appear only under their labels, never as secrets.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;
use crate::limiter::Usage;
use crate::method::Method;

/// A snapshot of the counters, as served by `GET /_emulator/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Stats {
    /// Every request received on the Gemini API surface (every method).
    pub total: u64,
    /// Requests with a key the emulator does not know.
    pub unknown_key: u64,
    /// Requests with no key at all.
    pub missing_key: u64,
    /// Requests that carried a `key` query parameter (keys belong in the header).
    pub key_in_url: u64,
    /// Counters of each configured key, by label.
    pub keys: BTreeMap<String, KeyStats>,
    /// Counters and current quota usage of each project, by model.
    #[serde(default)]
    pub projects: BTreeMap<String, ProjectStats>,
    /// Streams whose body is still being sent.
    #[serde(default)]
    pub open_streams: u64,
    /// Requests by API version ("v1", "v1beta").
    #[serde(default)]
    pub by_version: BTreeMap<String, u64>,
    /// Requests by method ("generateContent", "files.create", "cachedContents.get", ...).
    #[serde(default)]
    pub by_method: BTreeMap<String, u64>,
}

/// One project: its keys and, per model, what it used.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ProjectStats {
    /// Labels of the project's keys.
    pub keys: Vec<String>,
    /// By model, for the models it was asked for.
    pub models: BTreeMap<String, ModelStats>,
    /// Its live uploaded files.
    #[serde(default)]
    pub files: u64,
    /// Its live cached contents.
    #[serde(default)]
    pub cached_contents: u64,
    /// Its open resumable uploads.
    #[serde(default)]
    pub upload_sessions: u64,
}

/// What one (project, model) saw, and what its quotas hold right now.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct ModelStats {
    /// Model calls (every method but models.list/get).
    pub requests: u64,
    /// Answered with HTTP 200.
    pub ok: u64,
    /// 429s of the emulator's own quotas.
    pub rate_limited: u64,
    /// Input tokens of the admitted requests.
    pub input_tokens: u64,
    /// Admitted requests in the current rolling window.
    pub in_window: u64,
    /// Input tokens in the current rolling window.
    pub tokens_in_window: u64,
    /// Admitted requests in the current Pacific day.
    pub today: u64,
}

/// The counters of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct KeyStats {
    /// The project whose quotas the key uses.
    #[serde(default)]
    pub project: String,
    /// Requests made with this key.
    pub requests: u64,
    /// Requests answered with HTTP 200.
    pub ok: u64,
    /// 429s answered by the emulator's own limiter (not by a fault).
    pub rate_limited: u64,
    /// Requests to which a fault applied (including `delay`).
    pub injected: u64,
    /// Requests by HTTP status; "0" counts requests that got no answer at all.
    pub by_status: BTreeMap<String, u64>,
}

/// One request, as served by `GET /_emulator/log`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct LogEntry {
    /// Arrival time: milliseconds since the emulator started, to the microsecond.
    pub t_ms: f64,
    /// The label of the key used; `null` for a missing or unknown key.
    pub label: Option<String>,
    /// The project of that key; `null` for a missing or unknown key.
    #[serde(default)]
    pub project: Option<String>,
    /// The fingerprint of the key sent, known or not (gemini-rotator's rule: the first 12 hex
    /// digits of SHA-256 over "gemini-rotator/key/v1\0" and the key); `null` with no key.
    #[serde(default)]
    pub key_fingerprint: Option<String>,
    /// The API version of the path ("v1", "v1beta").
    #[serde(default)]
    pub version: String,
    /// The path and query, without any `key` parameter.
    #[serde(default)]
    pub path: String,
    /// The files, uploads and cached contents the request named or made
    /// (`files/abc`, `cachedContents/xyz`), in its path or its body.
    #[serde(default)]
    pub resources: Vec<String>,
    /// The HTTP status answered; 0 when the connection closed without an answer.
    pub status: u16,
    /// The model named in the path ("" for models.list).
    pub model: String,
    /// The API method ("generateContent", "streamGenerateContent", "models.list", ...).
    #[serde(default)]
    pub method: String,
    /// Input tokens counted against the quota; `null` when the request was not admitted.
    #[serde(default)]
    pub tokens: Option<u64>,
    /// The fault that applied, if any.
    pub fault: Option<String>,
    /// For a 200 stream: how much of it was sent and how it ended.
    #[serde(default)]
    pub stream: Option<StreamLog>,
}

/// How a streamed answer went.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub struct StreamLog {
    /// Events (or, for the array form, elements) written so far.
    pub events: u32,
    /// `null` while the stream is open; then "complete", "client_closed", "cut", "dropped",
    /// "error" (a mid-stream error was sent) or "empty".
    pub end: Option<String>,
}

/// Who made a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// No key at all.
    Missing,
    /// A key the emulator does not know.
    Unknown,
    /// A configured key, by label.
    Known(Arc<str>),
}

/// Everything recorded about one finished request.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Arrival order.
    pub seq: u64,
    /// Arrival time in nanoseconds since the emulator started.
    pub t_ns: u64,
    pub caller: Caller,
    pub project: Option<Arc<str>>,
    pub key_fingerprint: Option<String>,
    pub key_in_url: bool,
    pub version: &'static str,
    pub path: String,
    pub resources: Vec<String>,
    pub status: u16,
    pub model: String,
    pub method: Method,
    pub tokens: Option<u64>,
    pub fault: Option<FaultKind>,
    /// The 429 came from the emulator's own limiter.
    pub rate_limited: bool,
    /// The answer is a stream whose end is recorded later.
    pub stream: bool,
}

/// The running counters and the request log.
#[derive(Debug, Default)]
pub struct Recorder {
    total: u64,
    unknown_key: u64,
    missing_key: u64,
    key_in_url: u64,
    keys: BTreeMap<Arc<str>, Counters>,
    /// Model-call counters by (project, model).
    models: BTreeMap<(Arc<str>, String), ModelCounters>,
    open_streams: u64,
    by_version: BTreeMap<&'static str, u64>,
    by_method: BTreeMap<&'static str, u64>,
    /// Entries in arrival order (by `seq`), although requests may finish in another order.
    log: Vec<(u64, LogEntry)>,
}

#[derive(Debug, Default)]
struct ModelCounters {
    requests: u64,
    ok: u64,
    rate_limited: u64,
    input_tokens: u64,
}

/// [`KeyStats`] with numeric statuses, converted to strings only for snapshots.
#[derive(Debug, Default)]
struct Counters {
    project: String,
    requests: u64,
    ok: u64,
    rate_limited: u64,
    injected: u64,
    by_status: BTreeMap<u16, u64>,
}

impl Recorder {
    /// Makes a key appear in the stats (with zero counts until it is used) under `project`.
    pub fn add_label(&mut self, label: Arc<str>, project: &str) {
        self.keys.entry(label).or_default().project = project.to_string();
    }

    /// Records one finished request.
    pub fn record(&mut self, outcome: Outcome) {
        self.total += 1;
        *self.by_version.entry(outcome.version).or_default() += 1;
        *self.by_method.entry(outcome.method.as_str()).or_default() += 1;
        if outcome.key_in_url {
            self.key_in_url += 1;
        }
        let label = match &outcome.caller {
            Caller::Missing => {
                self.missing_key += 1;
                None
            }
            Caller::Unknown => {
                self.unknown_key += 1;
                None
            }
            Caller::Known(label) => {
                let counters = self.keys.entry(label.clone()).or_default();
                counters.requests += 1;
                counters.ok += u64::from(outcome.status == 200);
                counters.rate_limited += u64::from(outcome.rate_limited);
                counters.injected += u64::from(outcome.fault.is_some());
                *counters.by_status.entry(outcome.status).or_default() += 1;
                Some(label.to_string())
            }
        };
        if let (Some(project), true) = (&outcome.project, outcome.method.uses_quota()) {
            let key = (Arc::clone(project), outcome.model.clone());
            let counters = self.models.entry(key).or_default();
            counters.requests += 1;
            counters.ok += u64::from(outcome.status == 200);
            counters.rate_limited += u64::from(outcome.rate_limited);
            counters.input_tokens += outcome.tokens.unwrap_or(0);
        }
        if outcome.stream {
            self.open_streams += 1;
        }
        let entry = LogEntry {
            t_ms: (outcome.t_ns / 1_000) as f64 / 1_000.0,
            label,
            project: outcome.project.map(|p| p.to_string()),
            key_fingerprint: outcome.key_fingerprint,
            version: outcome.version.to_string(),
            path: outcome.path,
            resources: outcome.resources,
            status: outcome.status,
            model: outcome.model,
            method: outcome.method.as_str().to_string(),
            tokens: outcome.tokens,
            fault: outcome.fault.map(|kind| kind.as_str().to_string()),
            stream: outcome.stream.then_some(StreamLog {
                events: 0,
                end: None,
            }),
        };
        // Usually the newest arrival finishes last, so this is nearly always the end.
        let at = self.log.partition_point(|(seq, _)| *seq < outcome.seq);
        self.log.insert(at, (outcome.seq, entry));
    }

    /// Records how the stream of request `seq` is going (or how it ended, when `end` is set).
    pub fn update_stream(&mut self, seq: u64, events: u32, end: Option<&str>) {
        if let Ok(at) = self.log.binary_search_by_key(&seq, |(s, _)| *s) {
            let entry = &mut self.log[at].1;
            let was_open = entry.stream.as_ref().is_some_and(|s| s.end.is_none());
            entry.stream = Some(StreamLog {
                events,
                end: end.map(str::to_string),
            });
            if was_open && end.is_some() {
                self.open_streams -= 1;
            }
        }
    }

    /// Zeroes every counter and empties the log; labels stay.
    pub fn clear(&mut self) {
        let labels: Vec<(Arc<str>, String)> = self
            .keys
            .iter()
            .map(|(label, c)| (label.clone(), c.project.clone()))
            .collect();
        *self = Recorder::default();
        for (label, project) in labels {
            self.add_label(label, &project);
        }
    }

    /// A copy of the counters; `usage` gives the live quota state of a (project, model).
    pub fn stats(&self, mut usage: impl FnMut(&str, &str) -> Usage) -> Stats {
        let mut projects: BTreeMap<String, ProjectStats> = BTreeMap::new();
        for (label, c) in &self.keys {
            let project = projects.entry(c.project.clone()).or_default();
            project.keys.push(label.to_string());
        }
        for ((project, model), c) in &self.models {
            let now = usage(project, model);
            let stats = ModelStats {
                requests: c.requests,
                ok: c.ok,
                rate_limited: c.rate_limited,
                input_tokens: c.input_tokens,
                in_window: now.in_window,
                tokens_in_window: now.tokens_in_window,
                today: now.today,
            };
            let entry = projects.entry(project.to_string()).or_default();
            entry.models.insert(model.clone(), stats);
        }
        let keys = self
            .keys
            .iter()
            .map(|(label, c)| {
                let stats = KeyStats {
                    project: c.project.clone(),
                    requests: c.requests,
                    ok: c.ok,
                    rate_limited: c.rate_limited,
                    injected: c.injected,
                    by_status: c
                        .by_status
                        .iter()
                        .map(|(status, n)| (status.to_string(), *n))
                        .collect(),
                };
                (label.to_string(), stats)
            })
            .collect();
        Stats {
            total: self.total,
            unknown_key: self.unknown_key,
            missing_key: self.missing_key,
            key_in_url: self.key_in_url,
            keys,
            projects,
            open_streams: self.open_streams,
            by_version: counts_by_name(&self.by_version),
            by_method: counts_by_name(&self.by_method),
        }
    }

    /// A copy of the log, in arrival order.
    pub fn log(&self) -> Vec<LogEntry> {
        self.log.iter().map(|(_, entry)| entry.clone()).collect()
    }
}

fn counts_by_name(counts: &BTreeMap<&'static str, u64>) -> BTreeMap<String, u64> {
    counts
        .iter()
        .map(|(name, n)| (name.to_string(), *n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(seq: u64, caller: Caller, status: u16) -> Outcome {
        Outcome {
            seq,
            t_ns: seq * 1_500,
            project: match &caller {
                Caller::Known(label) => Some(label.clone()),
                _ => None,
            },
            caller,
            key_fingerprint: None,
            key_in_url: false,
            version: "v1beta",
            path: "/v1beta/models/m:generateContent".into(),
            resources: Vec::new(),
            status,
            model: "m".into(),
            method: Method::GenerateContent,
            tokens: Some(2),
            fault: None,
            rate_limited: false,
            stream: false,
        }
    }

    #[test]
    fn log_stays_in_arrival_order() {
        let mut recorder = Recorder::default();
        let label: Arc<str> = Arc::from("a");
        recorder.record(outcome(2, Caller::Known(label.clone()), 200));
        recorder.record(outcome(1, Caller::Missing, 403));
        recorder.record(outcome(3, Caller::Unknown, 400));
        let log = recorder.log();
        assert_eq!(
            log.iter().map(|e| e.status).collect::<Vec<_>>(),
            [403, 200, 400]
        );
        assert_eq!(log[0].t_ms, 0.001);
        let stats = recorder.stats(|_, _| Usage::default());
        assert_eq!(
            (stats.total, stats.missing_key, stats.unknown_key),
            (3, 1, 1)
        );
        assert_eq!(stats.keys["a"].by_status["200"], 1);
        assert_eq!(stats.keys["a"].ok, 1);
        let model = &stats.projects["a"].models["m"];
        assert_eq!((model.requests, model.ok, model.input_tokens), (1, 1, 2));
    }

    #[test]
    fn clear_keeps_labels() {
        let mut recorder = Recorder::default();
        recorder.add_label(Arc::from("a"), "p");
        recorder.record(outcome(1, Caller::Known(Arc::from("a")), 200));
        recorder.clear();
        let stats = recorder.stats(|_, _| Usage::default());
        assert_eq!(stats.total, 0);
        assert_eq!(stats.keys["a"].requests, 0);
        assert_eq!(stats.keys["a"].project, "p");
        assert_eq!(stats.projects["p"].keys, ["a"]);
        assert!(recorder.log().is_empty());
    }

    #[test]
    fn streams_are_open_until_they_end() {
        let mut recorder = Recorder::default();
        let mut streamed = outcome(1, Caller::Known(Arc::from("a")), 200);
        streamed.stream = true;
        recorder.record(streamed);
        assert_eq!(recorder.stats(|_, _| Usage::default()).open_streams, 1);
        recorder.update_stream(1, 2, None);
        recorder.update_stream(1, 3, Some("complete"));
        recorder.update_stream(1, 3, Some("complete"));
        assert_eq!(recorder.stats(|_, _| Usage::default()).open_streams, 0);
        let stream = recorder.log()[0].stream.clone().unwrap();
        assert_eq!(
            (stream.events, stream.end.as_deref()),
            (3, Some("complete"))
        );
    }
}
