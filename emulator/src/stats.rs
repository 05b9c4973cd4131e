//! What the emulator saw: counters per key and a log of every `generateContent` request.
//!
//! Keys appear only under their labels, never as secrets.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::faults::FaultKind;

/// A snapshot of the counters, as served by `GET /_emulator/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct Stats {
    /// Every `generateContent` request received.
    pub total: u64,
    /// Requests with a key the emulator does not know.
    pub unknown_key: u64,
    /// Requests with no key at all.
    pub missing_key: u64,
    /// Requests that carried a `key` query parameter (keys belong in the header).
    pub key_in_url: u64,
    /// Counters of each configured key, by label.
    pub keys: BTreeMap<String, KeyStats>,
}

/// The counters of one key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct KeyStats {
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

/// One `generateContent` request, as served by `GET /_emulator/log`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
pub struct LogEntry {
    /// Arrival time: milliseconds since the emulator started, to the microsecond.
    pub t_ms: f64,
    /// The label of the key used; `null` for a missing or unknown key.
    pub label: Option<String>,
    /// The HTTP status answered; 0 when the connection closed without an answer.
    pub status: u16,
    /// The model named in the path.
    pub model: String,
    /// The fault that applied, if any.
    pub fault: Option<String>,
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
    pub key_in_url: bool,
    pub status: u16,
    pub model: String,
    pub fault: Option<FaultKind>,
    /// The 429 came from the emulator's own limiter.
    pub rate_limited: bool,
}

/// The running counters and the request log.
#[derive(Debug, Default)]
pub struct Recorder {
    total: u64,
    unknown_key: u64,
    missing_key: u64,
    key_in_url: u64,
    keys: BTreeMap<Arc<str>, Counters>,
    /// Entries in arrival order (by `seq`), although requests may finish in another order.
    log: Vec<(u64, LogEntry)>,
}

/// [`KeyStats`] with numeric statuses, converted to strings only for snapshots.
#[derive(Debug, Default)]
struct Counters {
    requests: u64,
    ok: u64,
    rate_limited: u64,
    injected: u64,
    by_status: BTreeMap<u16, u64>,
}

impl Recorder {
    /// Makes a key appear in the stats, with zero counts until it is used.
    pub fn add_label(&mut self, label: Arc<str>) {
        self.keys.entry(label).or_default();
    }

    /// Records one finished request.
    pub fn record(&mut self, outcome: Outcome) {
        self.total += 1;
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
        let entry = LogEntry {
            t_ms: (outcome.t_ns / 1_000) as f64 / 1_000.0,
            label,
            status: outcome.status,
            model: outcome.model,
            fault: outcome.fault.map(|kind| kind.as_str().to_string()),
        };
        // Usually the newest arrival finishes last, so this is nearly always the end.
        let at = self.log.partition_point(|(seq, _)| *seq < outcome.seq);
        self.log.insert(at, (outcome.seq, entry));
    }

    /// Zeroes every counter and empties the log; labels stay.
    pub fn clear(&mut self) {
        let labels: Vec<Arc<str>> = self.keys.keys().cloned().collect();
        *self = Recorder::default();
        for label in labels {
            self.add_label(label);
        }
    }

    /// A copy of the counters.
    pub fn stats(&self) -> Stats {
        let keys = self
            .keys
            .iter()
            .map(|(label, c)| {
                let stats = KeyStats {
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
        }
    }

    /// A copy of the log, in arrival order.
    pub fn log(&self) -> Vec<LogEntry> {
        self.log.iter().map(|(_, entry)| entry.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(seq: u64, caller: Caller, status: u16) -> Outcome {
        Outcome {
            seq,
            t_ns: seq * 1_500,
            caller,
            key_in_url: false,
            status,
            model: "m".into(),
            fault: None,
            rate_limited: false,
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
        let stats = recorder.stats();
        assert_eq!(
            (stats.total, stats.missing_key, stats.unknown_key),
            (3, 1, 1)
        );
        assert_eq!(stats.keys["a"].by_status["200"], 1);
        assert_eq!(stats.keys["a"].ok, 1);
    }

    #[test]
    fn clear_keeps_labels() {
        let mut recorder = Recorder::default();
        recorder.add_label(Arc::from("a"));
        recorder.record(outcome(1, Caller::Known(Arc::from("a")), 200));
        recorder.clear();
        let stats = recorder.stats();
        assert_eq!(stats.total, 0);
        assert_eq!(stats.keys["a"], KeyStats::default());
        assert!(recorder.log().is_empty());
    }
}
