//! The Gemini wire format, as far as the rotator needs it: error bodies, what an answer says
//! about the key that received it, and the text of a response. Requests and successful responses
//! pass through untouched, so every current and future API field works.

use crate::health::DisabledReason;
use serde_json::Value;

/// `{"error": {"code", "message", "status", "details"}}`, or that object wrapped in an array (the
/// OpenAI-compatible endpoint's shape).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ErrorBody {
    pub code: u16,
    pub message: String,
    pub status: String,
    pub details: Vec<Value>,
}

impl ErrorBody {
    pub fn parse(body: &[u8]) -> Option<ErrorBody> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let outer = match &value {
            Value::Array(items) => items.first()?,
            other => other,
        };
        let error = outer.get("error")?;
        Some(ErrorBody {
            code: error.get("code").and_then(Value::as_u64).unwrap_or(0) as u16,
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            status: error
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            details: error
                .get("details")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        })
    }

    /// The details entries of one kind (`RetryInfo`, `QuotaFailure`, `ErrorInfo`, ...), in any
    /// order.
    fn details_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.details.iter().filter(move |d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.rsplit('.').next() == Some(kind))
        })
    }

    /// `ErrorInfo.reason`, if any.
    pub fn reason(&self) -> Option<&str> {
        self.details_of("ErrorInfo")
            .find_map(|d| d.get("reason").and_then(Value::as_str))
    }

    /// The `RetryInfo.retryDelay`, else the "Please retry in Xs" of the message, in milliseconds.
    pub fn retry_delay_ms(&self) -> Option<u64> {
        self.details_of("RetryInfo")
            .find_map(|d| {
                d.get("retryDelay")
                    .and_then(Value::as_str)
                    .and_then(parse_duration_ms)
            })
            .or_else(|| retry_in_from_message(&self.message))
    }

    /// The `QuotaFailure` violations, in order: what quota each names, for which model, at
    /// what value. A "limit: 0" in the message with no violation saying so is a violation of
    /// value 0 too (the service's older shape).
    pub fn violations(&self) -> Vec<Violation> {
        let mut list: Vec<Violation> = self
            .details_of("QuotaFailure")
            .filter_map(|d| d.get("violations").and_then(Value::as_array))
            .flatten()
            .map(|v| Violation {
                quota_id: v
                    .get("quotaId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                model: v
                    .pointer("/quotaDimensions/model")
                    .and_then(Value::as_str)
                    .map(|m| m.strip_prefix("models/").unwrap_or(m).to_string()),
                value: v.get("quotaValue").and_then(|q| match q {
                    Value::String(s) => s.trim().parse().ok(),
                    other => other.as_u64(),
                }),
            })
            .collect();
        if self.message.contains("limit: 0") && !list.iter().any(|v| v.value == Some(0)) {
            match list.first_mut() {
                Some(first) => first.value = Some(0),
                None => list.push(Violation {
                    quota_id: String::new(),
                    model: None,
                    value: Some(0),
                }),
            }
        }
        list
    }
}

/// One `QuotaFailure` violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// e.g. `GenerateRequestsPerDayPerProjectPerModel-FreeTier`.
    pub quota_id: String,
    /// `quotaDimensions.model`, without `models/`.
    pub model: Option<String>,
    /// `quotaValue`: the limit the service applies.
    pub value: Option<u64>,
}

/// What a violated quota counts, read from its `quotaId`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationKind {
    RequestsPerDay,
    RequestsPerMinute,
    InputTokensPerMinute,
    /// A quota id this library does not know: treated as per minute.
    Other,
}

impl Violation {
    pub fn kind(&self) -> ViolationKind {
        let id = &self.quota_id;
        if id.contains("PerDay") {
            ViolationKind::RequestsPerDay
        } else if id.contains("Token") {
            ViolationKind::InputTokensPerMinute
        } else if id.contains("Requests") {
            ViolationKind::RequestsPerMinute
        } else {
            ViolationKind::Other
        }
    }
}

/// A protobuf Duration string ("26s", "45.8s", "0.5s") in milliseconds, rounded up.
pub fn parse_duration_ms(s: &str) -> Option<u64> {
    let secs: f64 = s.trim().strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| (secs * 1000.0).ceil() as u64)
}

/// "... Please retry in 35.59s." (also "ms" and "m") in milliseconds.
pub fn retry_in_from_message(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find("retry in ")? + "retry in ".len();
    let rest = &lower[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let n: f64 = rest[..end].parse().ok()?;
    let unit = &rest[end..];
    let ms = if unit.starts_with("ms") {
        n
    } else if unit.starts_with('s') {
        n * 1000.0
    } else if unit.starts_with('m') {
        n * 60_000.0
    } else {
        return None;
    };
    (ms.is_finite() && ms >= 0.0).then(|| ms.ceil() as u64)
}

/// What an answer means for the key that received it and for the call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx, including an answer blocked for safety: the call succeeded.
    Success,
    /// 429: the quota group's model cools down (`delay_ms` when the service said how long;
    /// until midnight for a per-day quota; unavailable for a quota of 0; a short backoff when no
    /// violation is named: the service's capacity), and the call moves on to another key.
    RateLimited {
        delay_ms: Option<u64>,
        violations: Vec<Violation>,
    },
    /// The key is unusable: it is disabled, and the call moves on to another key.
    KeyDead(DisabledReason),
    /// 500/502/503/504 (and 408): try again after a backoff; nothing against the key.
    Transient,
    /// Anything else: the caller's request (bad argument, unknown model, location): returned as
    /// is, no retry, nothing against the key.
    Caller,
}

pub fn classify(http_status: u16, body: Option<&ErrorBody>) -> Verdict {
    let status = body.map(|b| b.status.as_str()).unwrap_or("");
    let message = body.map(|b| b.message.as_str()).unwrap_or("");
    let reason = body.and_then(ErrorBody::reason);
    match http_status {
        200..=299 => Verdict::Success,
        429 => Verdict::RateLimited {
            delay_ms: body.and_then(ErrorBody::retry_delay_ms),
            violations: body.map(ErrorBody::violations).unwrap_or_default(),
        },
        400 if reason == Some("API_KEY_INVALID")
            || message.contains("API key not valid")
            || message.contains("API Key not found") =>
        {
            Verdict::KeyDead(DisabledReason::ApiKeyInvalid)
        }
        // Only the service's own PERMISSION_DENIED speaks about the key: a 403 from a proxy on
        // the way (no Gemini error body) is the caller's to see, not a reason to disable keys.
        403 if status == "PERMISSION_DENIED" => Verdict::KeyDead(match reason {
            Some("CONSUMER_SUSPENDED") => DisabledReason::ConsumerSuspended,
            Some("SERVICE_DISABLED") => DisabledReason::ServiceDisabled,
            _ if message.to_ascii_lowercase().contains("leaked") => DisabledReason::Leaked,
            _ => DisabledReason::PermissionDenied,
        }),
        408 | 500 | 502 | 503 | 504 => Verdict::Transient,
        _ => Verdict::Caller,
    }
}

/// The text of a response: the non-thought text parts of the first candidate, joined.
pub fn response_text(response: &Value) -> String {
    let parts = response
        .pointer("/candidates/0/content/parts")
        .and_then(Value::as_array);
    let mut text = String::new();
    for part in parts.into_iter().flatten() {
        if part.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> ErrorBody {
        ErrorBody::parse(v.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("26s"), Some(26_000));
        assert_eq!(parse_duration_ms("45.8s"), Some(45_800));
        assert_eq!(parse_duration_ms("0.0001s"), Some(1));
        assert_eq!(parse_duration_ms("26"), None);
        assert_eq!(parse_duration_ms("-1s"), None);
        assert_eq!(
            retry_in_from_message("Quota exceeded. Please retry in 35.59s."),
            Some(35_590)
        );
        assert_eq!(retry_in_from_message("please retry in 250ms"), Some(250));
        assert_eq!(retry_in_from_message("no hint here"), None);
    }

    #[test]
    fn the_429_shapes() {
        let q = |id: &str, value: &str| json!({"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaId":id,"quotaValue":value,"quotaDimensions":{"location":"global","model":"gemini-3-flash"}}]});
        let help = json!({"@type":"type.googleapis.com/google.rpc.Help","links":[]});
        let retry = json!({"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"26s"});
        let limited = |b: &ErrorBody| match classify(429, Some(b)) {
            Verdict::RateLimited {
                delay_ms,
                violations,
            } => (delay_ms, violations),
            other => panic!("{other:?}"),
        };
        let bare = body(
            json!({"error":{"code":429,"message":"Resource exhausted","status":"RESOURCE_EXHAUSTED"}}),
        );
        assert_eq!(limited(&bare), (None, vec![]));
        let full = body(
            json!({"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED",
            "details":[q("GenerateRequestsPerMinutePerProjectPerModel-FreeTier", "10"), help, retry]}}),
        );
        let (delay, v) = limited(&full);
        assert_eq!(delay, Some(26_000));
        assert_eq!(v[0].kind(), ViolationKind::RequestsPerMinute);
        assert_eq!(
            (v[0].model.as_deref(), v[0].value),
            (Some("gemini-3-flash"), Some(10))
        );
        let msg = body(
            json!({"error":{"code":429,"message":"Quota exceeded. Please retry in 35.59s.","status":"RESOURCE_EXHAUSTED",
            "details":[help, q("GenerateRequestsPerDayPerProjectPerModel-FreeTier", "20")]}}),
        );
        let (delay, v) = limited(&msg);
        assert_eq!(delay, Some(35_590));
        assert_eq!(v[0].kind(), ViolationKind::RequestsPerDay);
        let tokens = body(
            json!({"error":{"code":429,"message":"x","details":[q("GenerateContentInputTokensPerModelPerMinute-FreeTier", "250000")]}}),
        );
        assert_eq!(
            limited(&tokens).1[0].kind(),
            ViolationKind::InputTokensPerMinute
        );
        let zero = body(
            json!({"error":{"code":429,"message":"Quota exceeded, limit: 0, model: gemini-3-pro","details":[help]}}),
        );
        assert_eq!(
            limited(&zero).1[0].value,
            Some(0),
            "limit: 0 in the message"
        );
        let help_only = body(
            json!({"error":{"code":429,"message":"x","status":"RESOURCE_EXHAUSTED","details":[help]}}),
        );
        assert_eq!(limited(&help_only), (None, vec![]));
        assert_eq!(
            classify(429, None),
            Verdict::RateLimited {
                delay_ms: None,
                violations: vec![]
            }
        );
    }

    #[test]
    fn dead_keys_and_caller_errors() {
        let invalid = body(
            json!({"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}),
        );
        assert_eq!(
            classify(400, Some(&invalid)),
            Verdict::KeyDead(DisabledReason::ApiKeyInvalid)
        );
        let leaked = body(
            json!({"error":{"code":403,"message":"Your API key was reported as leaked. Please use another API key.","status":"PERMISSION_DENIED"}}),
        );
        assert_eq!(
            classify(403, Some(&leaked)),
            Verdict::KeyDead(DisabledReason::Leaked)
        );
        let suspended = body(
            json!({"error":{"code":403,"message":"suspended","status":"PERMISSION_DENIED",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"CONSUMER_SUSPENDED"}]}}),
        );
        assert_eq!(
            classify(403, Some(&suspended)),
            Verdict::KeyDead(DisabledReason::ConsumerSuspended)
        );
        let location = body(
            json!({"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}),
        );
        assert_eq!(classify(400, Some(&location)), Verdict::Caller);
        assert_eq!(classify(404, None), Verdict::Caller);
        for s in [500, 502, 503, 504] {
            assert_eq!(classify(s, None), Verdict::Transient);
        }
        assert_eq!(classify(200, None), Verdict::Success);
    }

    #[test]
    fn array_wrapped_errors_parse() {
        let e = ErrorBody::parse(br#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#).unwrap();
        assert_eq!((e.code, e.status.as_str()), (503, "UNAVAILABLE"));
        assert!(ErrorBody::parse(b"<html>bad gateway</html>").is_none());
    }

    #[test]
    fn text_skips_thoughts() {
        let r = json!({"candidates":[{"content":{"parts":[{"text":"hmm","thought":true},{"text":"Hello"},{"text":", world"}]}}]});
        assert_eq!(response_text(&r), "Hello, world");
        assert_eq!(
            response_text(&json!({"promptFeedback":{"blockReason":"SAFETY"}})),
            ""
        );
    }
}
