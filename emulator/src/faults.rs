//! Fault injection: answers the emulator gives instead of (or before) the normal one.
//!
//! Faults are kept in insertion order. Every fault sees every request that matches its label,
//! in arrival order: its `skip` counts those requests down first, after which it is armed.
//! The first armed fault with `count` left applies to the request (and uses up one of its
//! `count`); a fault whose `count` reaches zero is removed.
//!
//! Which requests match: the fault's `label`, `model` and `method` filters, and its kind:
//! stream kinds match only `streamGenerateContent`, `safety_block` only the generating
//! methods, and a fault without `method` never matches `models.list` / `models.get`.

use serde::{Deserialize, Serialize};

use crate::method::Method;

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
    /// Only requests for this model match.
    #[serde(default)]
    pub model: Option<String>,
    /// Only requests of this method match ("generateContent", "models.list", ...).
    #[serde(default)]
    pub method: Option<Method>,
    /// Stream kinds: events sent before the stall, error or cut (default 1).
    #[serde(default)]
    pub after_events: Option<u32>,
    /// `stream_stall_first` / `stream_stall_mid`: how long the stall lasts before the stream
    /// goes on; absent means until the client gives up.
    #[serde(default)]
    pub stall_ms: Option<u64>,
    /// Any streamed answer this fault applies to: pause between events, in milliseconds.
    #[serde(default)]
    pub gap_ms: Option<u64>,
    /// Any streamed answer this fault applies to: `\r\n\r\n` framing.
    #[serde(default)]
    pub crlf: Option<bool>,
    /// `stream_error_mid`: the error kind whose body is sent mid-stream (default `http503`).
    #[serde(default)]
    pub error: Option<FaultKind>,
    /// Error kinds answering a stream request: label the plain JSON error body
    /// `Content-Type: text/event-stream`, as the real service sometimes does.
    #[serde(default)]
    pub event_stream: Option<bool>,
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
    /// 429 with no details at all: Google's capacity problem.
    QuotaBare,
    /// 429 with QuotaFailure (input tokens per minute), Help and RetryInfo.
    QuotaTokens,
    /// 429 with per-minute, per-day and token violations at once.
    QuotaMulti,
    /// 429 for a model not on the project's tier: quotaValue "0", "Please retry in 1.1s".
    LimitZero,
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
    /// A 200 stream that sends nothing before the first event for `stall_ms` (or forever).
    StreamStallFirst,
    /// A 200 stream that stalls after `after_events` events for `stall_ms` (or forever).
    StreamStallMid,
    /// A 200 stream that sends `after_events` events, then a bare pretty-printed JSON error
    /// (no `data:` prefix), then ends.
    StreamErrorMid,
    /// A 200 stream that ends cleanly after `after_events` events, without `finishReason`.
    StreamCut,
    /// A 200 stream whose connection is dropped after `after_events` events (the chunked
    /// body never terminates properly).
    StreamDrop,
    /// A 200 stream with no events at all.
    StreamEmpty,
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
            FaultKind::QuotaTokens => "quota_tokens",
            FaultKind::QuotaMulti => "quota_multi",
            FaultKind::LimitZero => "limit_zero",
            FaultKind::Leaked => "leaked",
            FaultKind::Suspended => "suspended",
            FaultKind::ServiceDisabled => "service_disabled",
            FaultKind::InvalidKey => "invalid_key",
            FaultKind::BadRequest => "bad_request",
            FaultKind::Location => "location",
            FaultKind::SafetyBlock => "safety_block",
            FaultKind::Close => "close",
            FaultKind::StreamStallFirst => "stream_stall_first",
            FaultKind::StreamStallMid => "stream_stall_mid",
            FaultKind::StreamErrorMid => "stream_error_mid",
            FaultKind::StreamCut => "stream_cut",
            FaultKind::StreamDrop => "stream_drop",
            FaultKind::StreamEmpty => "stream_empty",
        }
    }

    /// Kinds that shape a streamed answer rather than replace it.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            FaultKind::StreamStallFirst
                | FaultKind::StreamStallMid
                | FaultKind::StreamErrorMid
                | FaultKind::StreamCut
                | FaultKind::StreamDrop
                | FaultKind::StreamEmpty
        )
    }

    /// Kinds after which the request is handled normally, quotas included.
    pub fn is_modifier(self) -> bool {
        self == FaultKind::Delay || self.is_stream()
    }

    /// Whether a fault of this kind can apply to a request of `method`.
    fn applies_to(self, method: Method) -> bool {
        match self {
            _ if self.is_stream() => method == Method::StreamGenerateContent,
            FaultKind::SafetyBlock => {
                matches!(
                    method,
                    Method::GenerateContent | Method::StreamGenerateContent
                )
            }
            _ => true,
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
            model: None,
            method: None,
            after_events: None,
            stall_ms: None,
            gap_ms: None,
            crlf: None,
            error: None,
            event_stream: None,
        }
    }

    /// Restricts the fault to requests for `model`.
    pub fn for_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// Restricts the fault to requests of `method` (its API name, e.g. "countTokens" or
    /// "models.list"). Panics on a name the emulator does not serve: a test's typo.
    pub fn for_method(mut self, method: &str) -> Self {
        let parsed = serde_json::from_value(serde_json::Value::String(method.into()));
        self.method = Some(parsed.unwrap_or_else(|_| panic!("no such method {method:?}")));
        self
    }

    /// Stream kinds: the number of events sent before the fault shows.
    pub fn after_events(mut self, events: u32) -> Self {
        self.after_events = Some(events);
        self
    }

    /// Stall kinds: how long the stall lasts.
    pub fn with_stall_ms(mut self, stall_ms: u64) -> Self {
        self.stall_ms = Some(stall_ms);
        self
    }

    /// Streams: the pause between events.
    pub fn with_gap_ms(mut self, gap_ms: u64) -> Self {
        self.gap_ms = Some(gap_ms);
        self
    }

    /// Streams: `\r\n\r\n` framing.
    pub fn with_crlf(mut self) -> Self {
        self.crlf = Some(true);
        self
    }

    /// `stream_error_mid`: which error's body is sent.
    pub fn with_error(mut self, kind: FaultKind) -> Self {
        self.error = Some(kind);
        self
    }

    /// Error kinds on a stream request: the error body says `text/event-stream`.
    pub fn as_event_stream(mut self) -> Self {
        self.event_stream = Some(true);
        self
    }

    /// Checks what cannot be expressed in the types, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(error) = self.error {
            if error.is_modifier() || matches!(error, FaultKind::Close | FaultKind::SafetyBlock) {
                return Err(format!(
                    "`error` must be an error kind (http503, quota_minute, ...), not '{}'",
                    error.as_str()
                ));
            }
        }
        if let Some(delay) = &self.retry_delay {
            if crate::errors::parse_duration(delay).is_none() {
                return Err(format!(
                    "`retry_delay` {delay:?} is not a protobuf Duration such as \"2s\" or \"0.5s\""
                ));
            }
        }
        Ok(())
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

/// The fault that applies to one request: the fault as it was added.
pub type AppliedFault = Fault;

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

    /// Decides which fault, if any, applies to a request of `method` for `model` made with
    /// the key of `label`.
    pub fn pick(&mut self, label: &str, model: &str, method: Method) -> Option<AppliedFault> {
        let mut applied: Option<AppliedFault> = None;
        let mut spent: Option<usize> = None;
        for (index, active) in self.active.iter_mut().enumerate() {
            let fault = &active.fault;
            let matches = fault.label.as_deref().is_none_or(|l| l == label)
                && fault.model.as_deref().is_none_or(|m| m == model)
                && match fault.method {
                    Some(only) => only == method,
                    None => method.uses_quota(),
                }
                && fault.kind.applies_to(method);
            if !matches {
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
            applied = Some(active.fault.clone());
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
            .map(|_| {
                table
                    .pick(label, "m", Method::GenerateContent)
                    .map(|applied| applied.kind)
            })
            .collect()
    }

    #[test]
    fn model_method_and_kind_filter() {
        let mut table = FaultTable::default();
        table.add(Fault::new(FaultKind::StreamCut));
        table.add(Fault::new(FaultKind::Http500).for_model("x"));
        table.add(Fault::new(FaultKind::Http503).for_method("models.list"));
        let pick = |t: &mut FaultTable, model, method| t.pick("a", model, method).map(|f| f.kind);
        assert_eq!(pick(&mut table, "m", Method::GenerateContent), None);
        assert_eq!(pick(&mut table, "m", Method::GetModel), None);
        assert_eq!(
            pick(&mut table, "m", Method::ListModels),
            Some(FaultKind::Http503)
        );
        assert_eq!(
            pick(&mut table, "x", Method::CountTokens),
            Some(FaultKind::Http500)
        );
        assert_eq!(
            pick(&mut table, "m", Method::StreamGenerateContent),
            Some(FaultKind::StreamCut)
        );
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
