//! Fault injection: answers the emulator gives instead of (or before) the normal one.
//!
//! Faults are kept in insertion order. Every fault sees every request that matches its label,
//! in arrival order: its `skip` counts those requests down first, after which it is armed.
//! The first armed fault with `count` left applies to the request (and uses up one of its
//! `count`); a fault whose `count` reaches zero is removed.

use serde::{Deserialize, Serialize};

/// One fault to inject.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Only requests made with the key of this label match; `None` matches every known key.
    pub label: Option<String>,
    /// What to answer.
    pub kind: FaultKind,
    /// Apply to the next N matching requests, then expire; `None` means forever.
    pub count: Option<u64>,
    /// Let the first N matching requests through before applying.
    pub skip: Option<u64>,
    /// Wait this long before answering (or before closing the connection).
    pub latency_ms: Option<u64>,
    /// For the quota kinds: the delay to advertise, as a protobuf Duration string ("2s", "0.5s").
    pub retry_delay: Option<String>,
}

/// What a fault answers. Serialized in snake_case (`http503`, `quota_minute`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Only the latency, then normal handling (including rate limits).
    Delay,
    /// 500 INTERNAL.
    Http500,
    /// 502 Bad Gateway.
    Http502,
    /// 503 UNAVAILABLE, "The model is overloaded".
    Http503,
    /// 504 DEADLINE_EXCEEDED.
    Http504,
    /// 429 with QuotaFailure (per-minute quota id), Help and RetryInfo.
    QuotaMinute,
    /// 429 with QuotaFailure (per-day quota id), Help and RetryInfo.
    QuotaDay,
    /// 429 with Help and QuotaFailure but no RetryInfo; the delay is only in the message.
    QuotaMessage,
    /// 429 with no details at all.
    QuotaBare,
    /// 403 PERMISSION_DENIED: the key was reported as leaked.
    Leaked,
    /// 403 PERMISSION_DENIED with ErrorInfo reason CONSUMER_SUSPENDED.
    Suspended,
    /// 403 PERMISSION_DENIED with ErrorInfo reason SERVICE_DISABLED.
    ServiceDisabled,
    /// 400 INVALID_ARGUMENT with ErrorInfo reason API_KEY_INVALID.
    InvalidKey,
    /// 400 INVALID_ARGUMENT about the request's contents.
    BadRequest,
    /// 400 FAILED_PRECONDITION: user location is not supported.
    Location,
    /// 200 with `promptFeedback.blockReason = SAFETY` and no candidates.
    SafetyBlock,
    /// Close the connection without answering.
    Close,
}

impl FaultKind {
    /// The snake_case name used in JSON and in the request log.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::Delay => "delay",
            FaultKind::Http500 => "http500",
            FaultKind::Http502 => "http502",
            FaultKind::Http503 => "http503",
            FaultKind::Http504 => "http504",
            FaultKind::QuotaMinute => "quota_minute",
            FaultKind::QuotaDay => "quota_day",
            FaultKind::QuotaMessage => "quota_message",
            FaultKind::QuotaBare => "quota_bare",
            FaultKind::Leaked => "leaked",
            FaultKind::Suspended => "suspended",
            FaultKind::ServiceDisabled => "service_disabled",
            FaultKind::InvalidKey => "invalid_key",
            FaultKind::BadRequest => "bad_request",
            FaultKind::Location => "location",
            FaultKind::SafetyBlock => "safety_block",
            FaultKind::Close => "close",
        }
    }
}

impl Fault {
    /// A fault of this kind for every key, forever, with no latency.
    pub fn new(kind: FaultKind) -> Self {
        Fault {
            label: None,
            kind,
            count: None,
            skip: None,
            latency_ms: None,
            retry_delay: None,
        }
    }

    /// Restricts the fault to the key with this label.
    pub fn for_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Applies the fault to the next `count` matching requests only.
    pub fn times(mut self, count: u64) -> Self {
        self.count = Some(count);
        self
    }

    /// Lets the first `skip` matching requests through.
    pub fn after(mut self, skip: u64) -> Self {
        self.skip = Some(skip);
        self
    }

    /// Waits `latency_ms` before answering.
    pub fn with_latency_ms(mut self, latency_ms: u64) -> Self {
        self.latency_ms = Some(latency_ms);
        self
    }

    /// Sets the retry delay that quota kinds advertise.
    pub fn with_retry_delay(mut self, retry_delay: impl Into<String>) -> Self {
        self.retry_delay = Some(retry_delay.into());
        self
    }
}

/// The fault that applies to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedFault {
    pub kind: FaultKind,
    pub latency_ms: Option<u64>,
    pub retry_delay: Option<String>,
}

/// A fault and what is left of its `skip` and `count`.
#[derive(Debug)]
struct ActiveFault {
    fault: Fault,
    skip_left: u64,
    count_left: Option<u64>,
}

/// The active faults, in insertion order.
#[derive(Debug, Default)]
pub struct FaultTable {
    active: Vec<ActiveFault>,
}

impl FaultTable {
    /// Adds a fault after all existing ones.
    pub fn add(&mut self, fault: Fault) {
        if fault.count == Some(0) {
            return; // It could never apply.
        }
        self.active.push(ActiveFault {
            skip_left: fault.skip.unwrap_or(0),
            count_left: fault.count,
            fault,
        });
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// Decides which fault, if any, applies to a request made with the key of `label`.
    pub fn pick(&mut self, label: &str) -> Option<AppliedFault> {
        let mut applied: Option<AppliedFault> = None;
        let mut spent: Option<usize> = None;
        for (index, active) in self.active.iter_mut().enumerate() {
            if active.fault.label.as_deref().is_some_and(|l| l != label) {
                continue;
            }
            if active.skip_left > 0 {
                // This request is one of the ones the fault lets through.
                active.skip_left -= 1;
                continue;
            }
            if applied.is_some() {
                continue; // An earlier fault already answers this request.
            }
            applied = Some(AppliedFault {
                kind: active.fault.kind,
                latency_ms: active.fault.latency_ms,
                retry_delay: active.fault.retry_delay.clone(),
            });
            if let Some(left) = active.count_left.as_mut() {
                *left -= 1;
                if *left == 0 {
                    spent = Some(index);
                }
            }
        }
        if let Some(index) = spent {
            self.active.remove(index);
        }
        applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(table: &mut FaultTable, label: &str, n: usize) -> Vec<Option<FaultKind>> {
        (0..n)
            .map(|_| table.pick(label).map(|applied| applied.kind))
            .collect()
    }

    #[test]
    fn kinds_serialize_in_snake_case() {
        for kind in [
            FaultKind::Http503,
            FaultKind::QuotaMinute,
            FaultKind::ServiceDisabled,
            FaultKind::SafetyBlock,
        ] {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        let fault: Fault = serde_json::from_str(r#"{"kind":"http500"}"#).unwrap();
        assert_eq!(fault, Fault::new(FaultKind::Http500));
    }

    #[test]
    fn count_and_skip() {
        let mut table = FaultTable::default();
        table.add(Fault::new(FaultKind::Http503).after(1).times(2));
        assert_eq!(
            kinds(&mut table, "a", 4),
            [
                None,
                Some(FaultKind::Http503),
                Some(FaultKind::Http503),
                None
            ]
        );
        assert!(table.active.is_empty());
    }

    #[test]
    fn first_armed_fault_wins_and_skips_count_every_matching_request() {
        let mut table = FaultTable::default();
        table.add(Fault::new(FaultKind::Http500).times(1));
        table.add(Fault::new(FaultKind::Leaked).after(1).times(1));
        assert_eq!(
            kinds(&mut table, "a", 3),
            [Some(FaultKind::Http500), Some(FaultKind::Leaked), None]
        );
    }

    #[test]
    fn labels_filter() {
        let mut table = FaultTable::default();
        table.add(Fault::new(FaultKind::Close).for_label("b"));
        assert_eq!(kinds(&mut table, "a", 2), [None, None]);
        assert_eq!(
            kinds(&mut table, "b", 2),
            [Some(FaultKind::Close), Some(FaultKind::Close)]
        );
    }
}
