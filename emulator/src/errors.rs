//! The error bodies the emulator sends, shaped exactly like the real service's:
//! `{"error": {"code", "message", "status", "details": [{"@type": ...}, ...]}}`.
//!
//! `details` is left out when there are none, as the real service does.

use serde::Serialize;
use serde_json::{json, Value};

const SERVICE: &str = "generativelanguage.googleapis.com";
const TYPE_PREFIX: &str = "type.googleapis.com/google.rpc.";
const REQUESTS_METRIC: &str =
    "generativelanguage.googleapis.com/generate_content_free_tier_requests";
const INPUT_TOKENS_METRIC: &str =
    "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count";
const RATE_LIMITS_URL: &str = "https://ai.google.dev/gemini-api/docs/rate-limits";
const INVALID_KEY_MESSAGE: &str = "API key not valid. Please pass a valid API key.";
/// The project number shown in errors about a key's project; never a real one.
const PLACEHOLDER_PROJECT: &str = "123456789";

/// An error answer: HTTP status, RPC status, message and typed details.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub status: &'static str,
    pub message: String,
    pub details: Vec<Value>,
}

/// Which quota a 429 violation talks about: the recorded free-tier quota ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaId {
    /// `GenerateRequestsPerMinutePerProjectPerModel-FreeTier`
    RequestsPerMinute,
    /// `GenerateRequestsPerDayPerProjectPerModel-FreeTier`
    RequestsPerDay,
    /// `GenerateContentInputTokensPerModelPerMinute-FreeTier`
    InputTokensPerMinute,
}

impl QuotaId {
    fn id(self) -> &'static str {
        match self {
            QuotaId::RequestsPerMinute => "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            QuotaId::RequestsPerDay => "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            QuotaId::InputTokensPerMinute => "GenerateContentInputTokensPerModelPerMinute-FreeTier",
        }
    }

    fn metric(self) -> &'static str {
        match self {
            QuotaId::RequestsPerMinute | QuotaId::RequestsPerDay => REQUESTS_METRIC,
            QuotaId::InputTokensPerMinute => INPUT_TOKENS_METRIC,
        }
    }
}

impl ApiError {
    fn new(code: u16, status: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            status,
            message: message.into(),
            details: Vec::new(),
        }
    }

    fn with_details(mut self, details: Vec<Value>) -> Self {
        self.details = details;
        self
    }

    /// The JSON body, its fields in the real service's order.
    pub fn body(&self) -> String {
        /// `{"error": {...}}`
        #[derive(Serialize)]
        struct Envelope<'a> {
            error: Status<'a>,
        }
        /// A `google.rpc.Status`.
        #[derive(Serialize)]
        struct Status<'a> {
            code: u16,
            message: &'a str,
            status: &'a str,
            #[serde(skip_serializing_if = "<[Value]>::is_empty")]
            details: &'a [Value],
        }
        let envelope = Envelope {
            error: Status {
                code: self.code,
                message: &self.message,
                status: self.status,
                details: &self.details,
            },
        };
        serde_json::to_string(&envelope).expect("JSON values always serialize")
    }

    /// The JSON body as a value (for tests).
    #[cfg(test)]
    pub fn to_json(&self) -> Value {
        serde_json::from_str(&self.body()).expect("the body is JSON")
    }

    // ----- Authentication -----

    /// 403: the request carried no API key.
    pub fn missing_key() -> Self {
        ApiError::new(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        )
    }

    /// 400 API_KEY_INVALID: the key is not one the service knows.
    pub fn invalid_key() -> Self {
        ApiError::new(400, "INVALID_ARGUMENT", INVALID_KEY_MESSAGE).with_details(vec![
            error_info("API_KEY_INVALID", json!({ "service": SERVICE })),
            localized_message(INVALID_KEY_MESSAGE),
        ])
    }

    /// 403: the key was reported as leaked.
    pub fn leaked() -> Self {
        ApiError::new(
            403,
            "PERMISSION_DENIED",
            "Your API key was reported as leaked. Please use another API key.",
        )
    }

    /// 403 CONSUMER_SUSPENDED. The consumer is a fixed placeholder, never the real key.
    /// The real service quotes the key in this message, so clients must redact it: the
    /// emulator does the same, to let their tests prove they do.
    pub fn suspended(key: &str) -> Self {
        let consumer = format!("api_key:{key}");
        ApiError::new(
            403,
            "PERMISSION_DENIED",
            format!("Permission denied: Consumer '{consumer}' has been suspended."),
        )
        .with_details(vec![error_info(
            "CONSUMER_SUSPENDED",
            json!({ "consumer": format!("projects/{PLACEHOLDER_PROJECT}"), "service": SERVICE }),
        )])
    }

    /// 403 SERVICE_DISABLED: the API is not enabled in the key's project.
    pub fn service_disabled() -> Self {
        let url = format!(
            "https://console.developers.google.com/apis/api/{SERVICE}/overview?project={PLACEHOLDER_PROJECT}"
        );
        let message = format!(
            "Generative Language API has not been used in project {PLACEHOLDER_PROJECT} before \
             or it is disabled. Enable it by visiting {url} then retry. If you enabled this API \
             recently, wait a few minutes for the action to propagate to our systems and retry."
        );
        ApiError::new(403, "PERMISSION_DENIED", message.clone()).with_details(vec![
            error_info(
                "SERVICE_DISABLED",
                json!({
                    "activationUrl": url,
                    "consumer": format!("projects/{PLACEHOLDER_PROJECT}"),
                    "containerInfo": PLACEHOLDER_PROJECT,
                    "service": SERVICE,
                    "serviceTitle": "Generative Language API",
                }),
            ),
            localized_message(&message),
            help(&[("Google developers console API activation", &url)]),
        ])
    }

    // ----- Quota -----

    /// 429 with QuotaFailure, Help and RetryInfo, its message ending "Please retry in {delay}."
    pub fn quota(id: QuotaId, model: &str, limit: u64, retry_delay: &str) -> Self {
        ApiError::quota_violations(&[(id, limit)], model, retry_delay)
    }

    /// 429 with one QuotaFailure violation (and one message line) per `(quota, limit)`, then
    /// Help and RetryInfo: the shape of an answer that exceeds several quotas at once.
    pub fn quota_violations(violations: &[(QuotaId, u64)], model: &str, retry_delay: &str) -> Self {
        ApiError::new(
            429,
            "RESOURCE_EXHAUSTED",
            quota_message(violations, model, retry_delay),
        )
        .with_details(vec![
            quota_failure(violations, model),
            rate_limit_help(),
            retry_info(retry_delay),
        ])
    }

    /// 429 with Help and QuotaFailure but no RetryInfo: the delay is only in the message.
    pub fn quota_in_message(model: &str, limit: u64, retry_delay: &str) -> Self {
        let violations = [(QuotaId::RequestsPerMinute, limit)];
        ApiError::new(
            429,
            "RESOURCE_EXHAUSTED",
            quota_message(&violations, model, retry_delay),
        )
        .with_details(vec![rate_limit_help(), quota_failure(&violations, model)])
    }

    /// 429 with no details at all.
    pub fn quota_bare() -> Self {
        ApiError::new(
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        )
    }

    // ----- Server side -----

    /// 500 INTERNAL.
    pub fn internal() -> Self {
        ApiError::new(
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
        )
    }

    /// 502 from the front end.
    pub fn bad_gateway() -> Self {
        ApiError::new(502, "UNAVAILABLE", "Bad Gateway")
    }

    /// 503 UNAVAILABLE: the model is overloaded.
    pub fn overloaded() -> Self {
        ApiError::new(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        )
    }

    /// 504 DEADLINE_EXCEEDED.
    pub fn deadline_exceeded() -> Self {
        ApiError::new(
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        )
    }

    // ----- The caller's request -----

    /// 404: a retired or unknown model, or one that does not serve `method`.
    pub fn model_not_found(version: &str, model: &str, method: &str) -> Self {
        ApiError::new(
            404,
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version {version}, or is not supported \
                 for {method}. Call ListModels to see the list of available models and \
                 their supported methods."
            ),
        )
    }

    /// 400 INVALID_ARGUMENT about one field of the request body.
    pub fn invalid_request(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(400, "INVALID_ARGUMENT", message.clone())
            .with_details(vec![bad_request(field, &message)])
    }

    /// 400 INVALID_ARGUMENT as injected by the `bad_request` fault.
    pub fn bad_contents() -> Self {
        ApiError::invalid_request(
            "contents",
            "Invalid value at 'contents' \
             (type.googleapis.com/google.ai.generativelanguage.v1beta.Content), \
             \"rejected by the emulator\"",
        )
    }

    /// 400 INVALID_ARGUMENT: the body is larger than the service takes.
    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            400,
            "INVALID_ARGUMENT",
            format!("Request payload size exceeds the limit: {limit} bytes."),
        )
    }

    /// 400 FAILED_PRECONDITION: the caller's location is not served.
    pub fn location() -> Self {
        ApiError::new(
            400,
            "FAILED_PRECONDITION",
            "User location is not supported for the API use.",
        )
    }

    // ----- Files and cached contents -----

    /// 403: a file that does not exist, has expired or belongs to another project; the
    /// service does not say which.
    pub fn file_denied(id: &str) -> Self {
        ApiError::new(
            403,
            "PERMISSION_DENIED",
            format!("You do not have permission to access the File {id} or it may not exist."),
        )
    }

    /// 403: a cached content that does not exist, has expired or belongs to another project.
    pub fn cached_content_denied() -> Self {
        ApiError::new(
            403,
            "PERMISSION_DENIED",
            "CachedContent not found (or permission denied)",
        )
    }

    /// 400: a model call names a cached content made for another model.
    pub fn cached_content_model(model: &str, cached_model: &str) -> Self {
        ApiError::new(
            400,
            "INVALID_ARGUMENT",
            format!(
                "Model used by GenerateContent request (models/{model}) and CachedContent \
                 ({cached_model}) has to be the same."
            ),
        )
    }

    /// 409: a file of that name exists already.
    pub fn file_exists(name: &str) -> Self {
        ApiError::new(
            409,
            "ALREADY_EXISTS",
            format!("File {name} already exists."),
        )
    }

    /// 404: an upload URL whose `upload_id` names no open upload session.
    pub fn upload_not_found(upload_id: &str) -> Self {
        ApiError::new(
            404,
            "NOT_FOUND",
            format!(
                "Upload session {upload_id} not found: it was finalized or cancelled, or never \
                 started."
            ),
        )
    }

    /// 400 INVALID_ARGUMENT about the upload protocol (a header, an offset, a size).
    pub fn bad_upload(message: impl Into<String>) -> Self {
        ApiError::new(400, "INVALID_ARGUMENT", message)
    }

    // ----- The emulator's own HTTP surface -----

    /// 404 for a path the emulator does not serve.
    pub fn no_such_path(path: &str) -> Self {
        ApiError::new(
            404,
            "NOT_FOUND",
            format!("The requested URL {path} was not found on this server."),
        )
    }

    /// 405 for a known path used with the wrong method.
    pub fn method_not_allowed(method: &str, path: &str, allowed: &str) -> Self {
        ApiError::new(
            405,
            "UNIMPLEMENTED",
            format!("Method {method} is not allowed for {path}; use {allowed}."),
        )
    }

    /// 400 for a bad control-API request.
    pub fn bad_control_request(message: impl Into<String>) -> Self {
        ApiError::new(400, "INVALID_ARGUMENT", message)
    }

    /// 404 for a control-API lookup that found nothing.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(404, "NOT_FOUND", message)
    }
}

/// Formats a wait as a protobuf Duration string, rounded up to the millisecond so that
/// waiting that long is always enough: "0.412s", "1.5s", "26s".
pub fn duration_string(nanos: u64) -> String {
    let millis = nanos.div_ceil(1_000_000);
    let (secs, frac) = (millis / 1000, millis % 1000);
    if frac == 0 {
        format!("{secs}s")
    } else {
        let frac = format!("{frac:03}");
        format!("{secs}.{}s", frac.trim_end_matches('0'))
    }
}

/// The seconds of a protobuf Duration string ("2s", "0.5s", "1.1s"), if it is one.
pub fn parse_duration(text: &str) -> Option<f64> {
    let number = text.strip_suffix('s')?;
    let valid = !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && number.bytes().filter(|&b| b == b'.').count() <= 1;
    valid.then(|| number.parse().ok()).flatten()
}

fn quota_message(violations: &[(QuotaId, u64)], model: &str, retry_delay: &str) -> String {
    let mut message = format!(
        "You exceeded your current quota, please check your plan and billing details. For more \
         information on this error, head to: {RATE_LIMITS_URL}. To monitor your current usage, \
         head to: https://ai.dev/rate-limit. "
    );
    for (id, limit) in violations {
        let metric = id.metric();
        message.push_str(&format!(
            "\n* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}"
        ));
    }
    message.push_str(&format!("\nPlease retry in {retry_delay}."));
    message
}

fn typed(kind: &str, mut body: Value) -> Value {
    body["@type"] = Value::String(format!("{TYPE_PREFIX}{kind}"));
    body
}

fn error_info(reason: &str, metadata: Value) -> Value {
    typed(
        "ErrorInfo",
        json!({ "reason": reason, "domain": "googleapis.com", "metadata": metadata }),
    )
}

fn localized_message(message: &str) -> Value {
    typed(
        "LocalizedMessage",
        json!({ "locale": "en-US", "message": message }),
    )
}

fn help(links: &[(&str, &str)]) -> Value {
    let links: Vec<Value> = links
        .iter()
        .map(|(description, url)| json!({ "description": description, "url": url }))
        .collect();
    typed("Help", json!({ "links": links }))
}

fn rate_limit_help() -> Value {
    help(&[("Learn more about Gemini API quotas", RATE_LIMITS_URL)])
}

fn quota_failure(violations: &[(QuotaId, u64)], model: &str) -> Value {
    let violations: Vec<Value> = violations
        .iter()
        .map(|(id, limit)| {
            json!({
                "quotaMetric": id.metric(),
                "quotaId": id.id(),
                "quotaDimensions": { "location": "global", "model": model },
                "quotaValue": limit.to_string(),
            })
        })
        .collect();
    typed("QuotaFailure", json!({ "violations": violations }))
}

fn retry_info(retry_delay: &str) -> Value {
    typed("RetryInfo", json!({ "retryDelay": retry_delay }))
}

fn bad_request(field: &str, description: &str) -> Value {
    typed(
        "BadRequest",
        json!({ "fieldViolations": [{ "field": field, "description": description }] }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_look_like_protobuf() {
        assert_eq!(duration_string(412_000_000), "0.412s");
        assert_eq!(duration_string(411_000_001), "0.412s");
        assert_eq!(duration_string(26_000_000_000), "26s");
        assert_eq!(duration_string(1_500_000_000), "1.5s");
        assert_eq!(duration_string(1), "0.001s");
    }

    #[test]
    fn parses_durations() {
        assert_eq!(parse_duration("2s"), Some(2.0));
        assert_eq!(parse_duration("0.412s"), Some(0.412));
        for bad in ["2", "s", "-1s", "1.2.3s", "1 s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn fields_come_in_the_service_order() {
        let body = ApiError::invalid_key().body();
        assert!(
            body.starts_with(r#"{"error":{"code":400,"message":"API key not valid."#),
            "{body}"
        );
        assert!(body.contains(r#""status":"INVALID_ARGUMENT","details":[{"@type""#));
    }

    #[test]
    fn details_are_left_out_when_empty() {
        let body = ApiError::quota_bare().to_json();
        assert_eq!(body["error"]["code"], 429);
        assert!(body["error"].get("details").is_none());
    }

    #[test]
    fn quota_details_carry_the_type_and_values() {
        let body = ApiError::quota(QuotaId::RequestsPerMinute, "gemini-x", 3, "0.25s").to_json();
        let details = body["error"]["details"].as_array().unwrap();
        assert_eq!(
            details[0]["@type"],
            "type.googleapis.com/google.rpc.QuotaFailure"
        );
        assert_eq!(details[0]["violations"][0]["quotaValue"], "3");
        assert_eq!(details[2]["retryDelay"], "0.25s");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.ends_with("limit: 3, model: gemini-x\nPlease retry in 0.25s."));
    }

    #[test]
    fn several_violations_make_several_lines() {
        let violations = [
            (QuotaId::InputTokensPerMinute, 0),
            (QuotaId::RequestsPerDay, 0),
        ];
        let body = ApiError::quota_violations(&violations, "m", "1.1s").to_json();
        let found = &body["error"]["details"][0]["violations"];
        assert_eq!(
            found[0]["quotaId"],
            "GenerateContentInputTokensPerModelPerMinute-FreeTier"
        );
        assert_eq!(
            found[0]["quotaMetric"],
            "generativelanguage.googleapis.com/generate_content_free_tier_input_token_count"
        );
        assert_eq!(found[1]["quotaValue"], "0");
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(
            message.matches("limit: 0, model: m\n").count(),
            2,
            "{message}"
        );
        assert!(message.ends_with("Please retry in 1.1s."));
    }
}
