//! The emulated Gemini endpoints: `POST /{v1beta|v1}/models/{model}:{method}` for
//! generateContent, streamGenerateContent, countTokens, embedContent and batchEmbedContents,
//! and `GET /{v1beta|v1}/models[/{model}]`. Every one authenticates, meets faults and counts
//! in the log the same way; the model calls also count against (project, model) quotas.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::{Request, Response, Uri};
use serde_json::json;

use crate::config::ModelLimits;
use crate::embeddings::{self, EmbedRequest};
use crate::errors::{ApiError, QuotaId};
use crate::faults::{AppliedFault, FaultKind};
use crate::http::{
    error_response, json_response, query_param, read_body, Body, BodyError, CloseConnection,
    MAX_BODY_BYTES,
};
use crate::method::Method;
use crate::models;
use crate::request::{parse_count_tokens, parse_prompt, Prompt};
use crate::resources::{refs_in, Owner};
use crate::responses;
use crate::state::{Arrival, Input, Pending, Shared, Verdict, LIMIT_ZERO_RETRY_DELAY};
use crate::stream::{self, Framing};

/// The limit quoted by quota faults when the (project, model) has no per-window limit.
const DEFAULT_QUOTED_LIMIT: u64 = 10;
/// The limit quoted by `quota_day` when there is no daily limit.
const DEFAULT_QUOTED_DAILY_LIMIT: u64 = 250;
/// The limit quoted by `quota_tokens` when there is no token limit.
const DEFAULT_QUOTED_TOKEN_LIMIT: u64 = 250_000;
/// The delay advertised by the per-minute quota kinds without `retry_delay`.
const DEFAULT_RETRY_DELAY: &str = "1s";
/// The delay advertised by `quota_day` without `retry_delay`.
const DEFAULT_DAILY_RETRY_DELAY: &str = "86400s";

/// What a valid request asks for, once its body is read.
enum Payload {
    Prompt(Prompt),
    CountTokens(u64),
    Embed(EmbedRequest),
    Batch(Vec<EmbedRequest>),
    Metadata,
}

/// The key a request carries (`x-goog-api-key`, else the `key` query parameter), and
/// whether its URL had a `key` parameter.
fn request_key(request: &Request<Incoming>) -> (Option<String>, bool) {
    let header_key = request
        .headers()
        .get("x-goog-api-key")
        .and_then(|value| value.to_str().ok())
        .filter(|key| !key.is_empty())
        .map(str::to_string);
    let url_key = query_param(request.uri().query(), "key");
    let in_url = url_key.is_some();
    (header_key.or(url_key.filter(|key| !key.is_empty())), in_url)
}

/// The path and query as the log shows them: without a `key` parameter, so that a key
/// never reaches the log.
fn logged_path(uri: &Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some("key"))
        .collect();
    if kept.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// Answers one request of `method` for `model` ("" for models.list).
pub async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    version: &'static str,
    model: &str,
    method: Method,
) -> Result<Response<Body>, CloseConnection> {
    let (key, key_in_url) = request_key(&request);
    let query = request.uri().query().map(str::to_string);
    let path = logged_path(request.uri());
    // Kept for the one answer that quotes the key back, as the real service does.
    let key_text = key.clone().unwrap_or_default();

    let framing = match method {
        Method::StreamGenerateContent => Some(stream_framing(query.as_deref())),
        _ => None,
    };
    let (body, input, payload) = if method.uses_quota() {
        match read_body(request.into_body()).await {
            Ok(body) => {
                let parsed = match framing {
                    Some(Err(ref error)) => Err(error.clone()),
                    _ => parse(method, model, &body),
                };
                match parsed {
                    Ok((tokens, payload)) => (body, Input::Tokens(tokens), Some(payload)),
                    Err(error) => (body, Input::Invalid(error), None),
                }
            }
            Err(BodyError::TooLarge) => {
                let error = ApiError::payload_too_large(MAX_BODY_BYTES);
                (Default::default(), Input::Invalid(error), None)
            }
            Err(BodyError::Broken) => (Default::default(), Input::Abandoned, None),
        }
    } else {
        (
            Default::default(),
            Input::Tokens(0),
            Some(Payload::Metadata),
        )
    };

    let refs = match input {
        Input::Tokens(_) => refs_in(&body),
        _ => Vec::new(),
    };
    // The arrival time is taken here, once the body is in: the token quota needs it.
    let (pending, verdict) = shared.admit(Arrival {
        key: key.as_deref(),
        key_in_url,
        version,
        path: &path,
        refs: &refs,
        session_owner: None,
        model,
        method,
        input,
    });
    if let Some(label) = pending.label() {
        if method.uses_quota() {
            shared.store_body(label, &body);
        }
    }
    // A fault's latency delays whatever the answer turns out to be.
    if let Some(ms) = pending.latency_ms().filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    let response = match verdict {
        // The client went away; `pending` records the request with status 0.
        Verdict::Abandon => return Err(CloseConnection),
        Verdict::Reject(error) => error_response(&error),
        Verdict::Inject { fault, limits } => {
            if let (FaultKind::SafetyBlock, Some(Ok(framing))) = (fault.kind, framing) {
                // A blocked stream is a stream of one event.
                let prompt_tokens = parse_prompt(&body).map_or(1, |prompt| prompt.prompt_tokens);
                let id = shared.next_response_id();
                let events = vec![responses::safety_block(prompt_tokens, pending.model(), id)];
                let ticket = pending.finish_stream();
                return Ok(stream::respond(&shared, events, framing, None, ticket));
            }
            let model = pending.model();
            match injected_answer(&shared, &fault, &limits, &body, model, &key_text) {
                Some(mut response) => {
                    if method == Method::StreamGenerateContent && fault.event_stream == Some(true) {
                        let sse = HeaderValue::from_static("text/event-stream");
                        response.headers_mut().insert(CONTENT_TYPE, sse);
                    }
                    response
                }
                None => return Err(CloseConnection),
            }
        }
        Verdict::Serve { modifier } => {
            let payload = payload.expect("admitted requests are valid");
            let framing = framing.map(|f| f.expect("admitted streams have a valid `alt`"));
            return Ok(serve(
                &shared,
                pending,
                payload,
                framing,
                modifier,
                query.as_deref(),
            ));
        }
    };
    Ok(finish(pending, response))
}

/// Validates the body of a model call: its input tokens and what it asks for.
fn parse(method: Method, model: &str, body: &[u8]) -> Result<(u64, Payload), ApiError> {
    Ok(match method {
        Method::GenerateContent | Method::StreamGenerateContent => {
            let prompt = parse_prompt(body)?;
            (prompt.prompt_tokens, Payload::Prompt(prompt))
        }
        Method::CountTokens => {
            let tokens = parse_count_tokens(body)?;
            (tokens, Payload::CountTokens(tokens))
        }
        Method::EmbedContent => {
            let request = embeddings::parse_embed(body, model)?;
            (request.tokens, Payload::Embed(request))
        }
        Method::BatchEmbedContents => {
            let requests = embeddings::parse_batch(body, model)?;
            (
                requests.iter().map(|r| r.tokens).sum(),
                Payload::Batch(requests),
            )
        }
        _ => (0, Payload::Metadata),
    })
}

/// `alt=sse` streams Server-Sent Events; no `alt` (or `alt=json`) streams a JSON array, as
/// the real service does; anything else is a 400.
fn stream_framing(query: Option<&str>) -> Result<Framing, ApiError> {
    match query_param(query, "alt").as_deref() {
        Some("sse") => Ok(Framing::Sse),
        None | Some("json") => Ok(Framing::JsonArray),
        Some(other) => Err(ApiError::invalid_request(
            "alt",
            format!("Invalid value at 'alt' (type.googleapis.com/google.api.Alt), \"{other}\""),
        )),
    }
}

/// The 200 answer of an admitted request.
fn serve(
    shared: &Shared,
    pending: Pending,
    payload: Payload,
    framing: Option<Framing>,
    modifier: Option<AppliedFault>,
    query: Option<&str>,
) -> Response<Body> {
    let model = pending.model().to_string();
    let response = match payload {
        Payload::Prompt(prompt) => {
            let id = shared.next_response_id();
            if let Some(framing) = framing {
                let events = responses::stream_events(&prompt, &model, id);
                let ticket = pending.finish_stream();
                return stream::respond(shared, events, framing, modifier, ticket);
            }
            json_response(200, &responses::echo(&prompt, &model, id))
        }
        Payload::CountTokens(tokens) => json_response(200, &json!({ "totalTokens": tokens })),
        Payload::Embed(request) => json_response(200, &embeddings::embed_answer(&request)),
        Payload::Batch(requests) => json_response(200, &embeddings::batch_answer(&requests)),
        Payload::Metadata if model.is_empty() => {
            let names = models::catalog(shared.configured_models());
            let page_size = query_param(query, "pageSize");
            let page_token = query_param(query, "pageToken");
            match models::list_page(&names, page_size.as_deref(), page_token.as_deref()) {
                Ok(page) => json_response(200, &page),
                Err(error) => error_response(&error),
            }
        }
        Payload::Metadata => json_response(200, &models::model_resource(&model)),
    };
    finish(pending, response)
}

/// A request about a file, an upload or a cached content that passed authentication and
/// faults: what its handler needs.
pub struct ResourceRequest {
    /// To be finished with the answer's status.
    pub pending: Pending,
    /// The key's label and project, which own what the request makes.
    pub owner: Owner,
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Bytes,
}

/// Reads a resource request and meets it like every request (key, faults, the log); `Err`
/// is the answer when it ends there. `resource` names what its path names, for the log.
/// `session_owner` (for an upload URL) stands for the key when the request carries none.
pub async fn admit_resource(
    shared: &Arc<Shared>,
    request: Request<Incoming>,
    version: &'static str,
    method: Method,
    resource: Option<String>,
    session_owner: impl FnOnce() -> Option<Owner>,
) -> Result<ResourceRequest, Result<Response<Body>, CloseConnection>> {
    let (key, key_in_url) = request_key(&request);
    let session_owner = if key.is_none() { session_owner() } else { None };
    let path = logged_path(request.uri());
    let query = request.uri().query().map(str::to_string);
    let (parts, body) = request.into_parts();
    let (body, input) = match read_body(body).await {
        Ok(body) => (body, Input::Tokens(0)),
        Err(BodyError::TooLarge) => {
            let error = ApiError::payload_too_large(MAX_BODY_BYTES);
            (Bytes::new(), Input::Invalid(error))
        }
        Err(BodyError::Broken) => (Bytes::new(), Input::Abandoned),
    };
    let too_large = match &input {
        Input::Invalid(error) => Some(error.clone()),
        _ => None,
    };
    let (mut pending, verdict) = shared.admit(Arrival {
        key: key.as_deref(),
        key_in_url,
        version,
        path: &path,
        refs: &[],
        session_owner,
        model: "",
        method,
        input,
    });
    if let Some(resource) = resource {
        pending.name_resource(resource);
    }
    if let Some(ms) = pending.latency_ms().filter(|&ms| ms > 0) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let response = match verdict {
        Verdict::Abandon => return Err(Err(CloseConnection)),
        Verdict::Reject(error) => error_response(&error),
        Verdict::Inject { fault, limits } => {
            let key_text = key.unwrap_or_default();
            match injected_answer(shared, &fault, &limits, &body, "", &key_text) {
                Some(response) => response,
                None => return Err(Err(CloseConnection)),
            }
        }
        Verdict::Serve { .. } => match (too_large, pending.owner()) {
            (Some(error), _) => error_response(&error),
            (None, Some(owner)) => {
                return Ok(ResourceRequest {
                    pending,
                    owner,
                    headers: parts.headers,
                    query,
                    body,
                })
            }
            (None, None) => error_response(&ApiError::invalid_key()),
        },
    };
    Err(Ok(finish(pending, response)))
}

/// Records the answer's status and passes the answer on.
pub fn finish(pending: Pending, response: Response<Body>) -> Response<Body> {
    pending.finish(response.status().as_u16());
    response
}

/// The answer a fault gives, or `None` to close the connection without one. Quota kinds
/// quote the request's (project, model) limits.
fn injected_answer(
    shared: &Shared,
    fault: &AppliedFault,
    limits: &ModelLimits,
    body: &[u8],
    model: &str,
    key: &str,
) -> Option<Response<Body>> {
    if fault.kind == FaultKind::Close {
        return None;
    }
    if fault.kind == FaultKind::SafetyBlock {
        let prompt_tokens = parse_prompt(body).map_or(1, |prompt| prompt.prompt_tokens);
        let id = shared.next_response_id();
        let answer = responses::safety_block(prompt_tokens, model, id);
        return Some(json_response(200, &answer));
    }
    Some(error_response(&fault_error(fault, limits, model, key)))
}

/// The error body of an error fault kind (also sent mid-stream by `stream_error_mid`).
pub fn fault_error(fault: &AppliedFault, limits: &ModelLimits, model: &str, key: &str) -> ApiError {
    let minute = limits.limit.map_or(DEFAULT_QUOTED_LIMIT, u64::from);
    let day = limits
        .daily_limit
        .map_or(DEFAULT_QUOTED_DAILY_LIMIT, u64::from);
    let tokens = limits.token_limit.unwrap_or(DEFAULT_QUOTED_TOKEN_LIMIT);
    let retry_delay = fault.retry_delay.as_deref();
    let per_minute = retry_delay.unwrap_or(DEFAULT_RETRY_DELAY);
    match fault.kind {
        FaultKind::Http502 => ApiError::bad_gateway(),
        FaultKind::Http503 => ApiError::overloaded(),
        FaultKind::Http504 => ApiError::deadline_exceeded(),
        FaultKind::QuotaMinute => {
            ApiError::quota(QuotaId::RequestsPerMinute, model, minute, per_minute)
        }
        FaultKind::QuotaDay => ApiError::quota(
            QuotaId::RequestsPerDay,
            model,
            day,
            retry_delay.unwrap_or(DEFAULT_DAILY_RETRY_DELAY),
        ),
        FaultKind::QuotaTokens => {
            ApiError::quota(QuotaId::InputTokensPerMinute, model, tokens, per_minute)
        }
        FaultKind::QuotaMulti => ApiError::quota_violations(
            &[
                (QuotaId::RequestsPerMinute, minute),
                (QuotaId::InputTokensPerMinute, tokens),
                (QuotaId::RequestsPerDay, day),
            ],
            model,
            per_minute,
        ),
        FaultKind::LimitZero => ApiError::quota_violations(
            &[
                (QuotaId::InputTokensPerMinute, 0),
                (QuotaId::RequestsPerMinute, 0),
                (QuotaId::RequestsPerDay, 0),
            ],
            model,
            retry_delay.unwrap_or(LIMIT_ZERO_RETRY_DELAY),
        ),
        FaultKind::QuotaMessage => ApiError::quota_in_message(model, minute, per_minute),
        FaultKind::QuotaBare => ApiError::quota_bare(),
        FaultKind::Leaked => ApiError::leaked(),
        FaultKind::Suspended => ApiError::suspended(key),
        FaultKind::ServiceDisabled => ApiError::service_disabled(),
        FaultKind::InvalidKey => ApiError::invalid_key(),
        FaultKind::BadRequest => ApiError::bad_contents(),
        FaultKind::Location => ApiError::location(),
        // Modifier kinds are served normally, and `close` / `safety_block` answered before;
        // treat a stray one as a plain internal error rather than bringing the connection down.
        FaultKind::Http500
        | FaultKind::Delay
        | FaultKind::Close
        | FaultKind::SafetyBlock
        | FaultKind::StreamStallFirst
        | FaultKind::StreamStallMid
        | FaultKind::StreamErrorMid
        | FaultKind::StreamCut
        | FaultKind::StreamDrop
        | FaultKind::StreamEmpty => ApiError::internal(),
    }
}
