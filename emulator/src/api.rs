//! The emulated Gemini endpoint: `POST /{v1beta|v1}/models/{model}:generateContent`.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, Response};

use crate::errors::{ApiError, QuotaPeriod};
use crate::faults::{AppliedFault, FaultKind};
use crate::http::{
    error_response, json_response, query_param, read_body, Body, BodyError, CloseConnection,
    MAX_BODY_BYTES,
};
use crate::request::parse_prompt;
use crate::responses;
use crate::state::{Arrival, Pending, Shared, Verdict};

/// The limit quoted by quota faults when the key has no per-window limit.
const DEFAULT_QUOTED_LIMIT: u32 = 10;
/// The limit quoted by `quota_day` when the key has no daily limit.
const DEFAULT_QUOTED_DAILY_LIMIT: u32 = 250;
/// The delay advertised by `quota_minute` and `quota_message` without `retry_delay`.
const DEFAULT_RETRY_DELAY: &str = "1s";
/// The delay advertised by `quota_day` without `retry_delay`.
const DEFAULT_DAILY_RETRY_DELAY: &str = "86400s";

/// Answers one `generateContent` request.
pub async fn generate_content(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    version: &str,
    model: &str,
) -> Result<Response<Body>, CloseConnection> {
    let header_key = request
        .headers()
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| !key.is_empty());
    let url_key = query_param(request.uri().query(), "key");
    let key = header_key.or(url_key.as_deref().filter(|key| !key.is_empty()));
    // Kept for the one answer that quotes the key back, as the real service does.
    let key_text = key.unwrap_or_default().to_string();
    // The arrival time is taken here, as soon as the head has been parsed.
    let (mut pending, verdict) = shared.admit(Arrival {
        key,
        key_in_url: url_key.is_some(),
        version,
        model,
    });

    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            pending.release_slot();
            let error = ApiError::payload_too_large(MAX_BODY_BYTES);
            return Ok(finish(pending, error_response(&error)));
        }
        // The client went away; `pending` records the request with status 0.
        Err(BodyError::Broken) => return Err(CloseConnection),
    };
    if let Some(label) = pending.label() {
        shared.store_body(label, &body);
    }
    // A fault's latency delays whatever the answer turns out to be.
    if let Some(ms) = pending.latency_ms().filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    let response = match verdict {
        Verdict::Reject(error) => error_response(&error),
        Verdict::Inject {
            fault,
            limit,
            daily_limit,
        } => {
            let model = pending.model();
            match injected_answer(&shared, &fault, limit, daily_limit, &body, model, &key_text) {
                Some(response) => response,
                None => return Err(CloseConnection),
            }
        }
        Verdict::Serve => match parse_prompt(&body) {
            Ok(prompt) => {
                let id = shared.next_response_id();
                json_response(200, &responses::echo(&prompt, pending.model(), id))
            }
            Err(error) => {
                // An invalid request does not use up quota.
                pending.release_slot();
                error_response(&error)
            }
        },
    };
    Ok(finish(pending, response))
}

/// Records the answer's status and passes the answer on.
fn finish(pending: Pending, response: Response<Body>) -> Response<Body> {
    pending.finish(response.status().as_u16());
    response
}

/// The answer a fault gives, or `None` to close the connection without one. Quota kinds
/// quote the key's `limit` and `daily_limit`.
fn injected_answer(
    shared: &Shared,
    fault: &AppliedFault,
    limit: Option<u32>,
    daily_limit: Option<u32>,
    body: &[u8],
    model: &str,
    key: &str,
) -> Option<Response<Body>> {
    let limit = limit.unwrap_or(DEFAULT_QUOTED_LIMIT);
    let retry_delay = fault.retry_delay.as_deref();
    let error = match fault.kind {
        FaultKind::Close => return None,
        FaultKind::SafetyBlock => {
            let prompt_tokens = parse_prompt(body).map_or(1, |prompt| prompt.prompt_tokens);
            let id = shared.next_response_id();
            let answer = responses::safety_block(prompt_tokens, model, id);
            return Some(json_response(200, &answer));
        }
        // Delay faults are served normally; treat a stray one as a plain internal error
        // rather than bringing the connection down.
        FaultKind::Delay | FaultKind::Http500 => ApiError::internal(),
        FaultKind::Http502 => ApiError::bad_gateway(),
        FaultKind::Http503 => ApiError::overloaded(),
        FaultKind::Http504 => ApiError::deadline_exceeded(),
        FaultKind::QuotaMinute => ApiError::quota(
            QuotaPeriod::Minute,
            model,
            limit,
            retry_delay.unwrap_or(DEFAULT_RETRY_DELAY),
        ),
        FaultKind::QuotaDay => ApiError::quota(
            QuotaPeriod::Day,
            model,
            daily_limit.unwrap_or(DEFAULT_QUOTED_DAILY_LIMIT),
            retry_delay.unwrap_or(DEFAULT_DAILY_RETRY_DELAY),
        ),
        FaultKind::QuotaMessage => {
            ApiError::quota_in_message(model, limit, retry_delay.unwrap_or(DEFAULT_RETRY_DELAY))
        }
        FaultKind::QuotaBare => ApiError::quota_bare(),
        FaultKind::Leaked => ApiError::leaked(),
        FaultKind::Suspended => ApiError::suspended(key),
        FaultKind::ServiceDisabled => ApiError::service_disabled(),
        FaultKind::InvalidKey => ApiError::invalid_key(),
        FaultKind::BadRequest => ApiError::bad_contents(),
        FaultKind::Location => ApiError::location(),
    };
    Some(error_response(&error))
}
