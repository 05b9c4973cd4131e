//! The control API under `/_emulator/`, for tests written in other languages: stats, the
//! request log, live resources (files, uploads, cached contents), faults, keys, reset and the
//! wall clock. It is never rate-limited and never
//! logged.

use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::config::KeySpec;
use crate::errors::ApiError;
use crate::faults::Fault;
use crate::http::{
    error_response, json_response, method_not_allowed, query_param, read_body, Body, BodyError,
    CloseConnection,
};
use crate::state::Shared;

/// Answers a request for `/_emulator/{endpoint}`.
pub async fn handle(
    shared: &Shared,
    request: Request<Incoming>,
    endpoint: &str,
) -> Result<Response<Body>, CloseConnection> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let expected = match endpoint {
        "stats" | "log" | "last_body" | "resources" => Method::GET,
        "faults" | "keys" | "reset" => Method::POST,
        "clock" if method == Method::POST => Method::POST,
        "clock" => Method::GET,
        _ => return Ok(error_response(&ApiError::no_such_path(&path))),
    };
    if method != expected {
        let allowed = if expected == Method::GET {
            "GET"
        } else {
            "POST"
        };
        return Ok(method_not_allowed(method.as_str(), &path, allowed));
    }

    let ok = || json_response(200, &json!({ "ok": true }));
    let response = match endpoint {
        "stats" => json_response(200, &shared.stats()),
        "log" => json_response(200, &shared.log()),
        "resources" => json_response(200, &shared.resource_views()),
        "last_body" => last_body(shared, request.uri().query()),
        "faults" => match parse::<Fault>(request, "fault").await? {
            Ok(fault) => match fault.validate() {
                Ok(()) => {
                    shared.add_fault(fault);
                    ok()
                }
                Err(e) => error_response(&ApiError::bad_control_request(format!(
                    "invalid fault: {e}"
                ))),
            },
            Err(error) => error_response(&error),
        },
        "keys" => match parse::<KeySpec>(request, "key spec").await? {
            Ok(spec) => match spec.validate().and_then(|()| shared.set_key(spec)) {
                Ok(()) => ok(),
                Err(e) => error_response(&ApiError::bad_control_request(format!(
                    "invalid key spec: {e}"
                ))),
            },
            Err(error) => error_response(&error),
        },
        "clock" if method == Method::GET => json_response(200, &shared.clock()),
        "clock" => match parse::<ClockChange>(request, "clock change").await? {
            Ok(change) => match change.apply(shared) {
                Ok(()) => json_response(200, &shared.clock()),
                Err(message) => error_response(&ApiError::bad_control_request(message)),
            },
            Err(error) => error_response(&error),
        },
        _ => {
            shared.reset();
            ok()
        }
    };
    Ok(response)
}

/// `GET /_emulator/last_body?label=L`: the body verbatim, or 404 when none was recorded.
fn last_body(shared: &Shared, query: Option<&str>) -> Response<Body> {
    let Some(label) = query_param(query, "label") else {
        let error = ApiError::bad_control_request("missing query parameter `label`");
        return error_response(&error);
    };
    if !shared.records_bodies() {
        let error =
            ApiError::not_found("bodies are not recorded: start with \"record_bodies\": true");
        return error_response(&error);
    }
    match shared.last_body(&label) {
        Some(body) => {
            let mut response = Response::new(Body::whole(body));
            response.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=UTF-8"),
            );
            response
        }
        None => error_response(&ApiError::not_found(format!(
            "no body recorded for label '{label}'"
        ))),
    }
}

/// The body of `POST /_emulator/clock`: exactly one of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockChange {
    /// Set the clock to this RFC 3339 time.
    now: Option<String>,
    /// Set the clock to this many milliseconds since the Unix epoch.
    unix_ms: Option<i64>,
    /// Move the clock by this many milliseconds (negative: back).
    advance_ms: Option<i64>,
}

impl ClockChange {
    fn apply(self, shared: &Shared) -> Result<(), String> {
        match (self.now, self.unix_ms, self.advance_ms) {
            (Some(now), None, None) => {
                let unix_ms =
                    crate::pacific::parse_rfc3339(&now).map_err(|e| format!("`now`: {e}"))?;
                shared.set_clock(unix_ms);
            }
            (None, Some(unix_ms), None) => shared.set_clock(unix_ms),
            (None, None, Some(ms)) => shared.advance_clock(ms),
            _ => return Err("give exactly one of `now`, `unix_ms` and `advance_ms`".into()),
        }
        Ok(())
    }
}

/// Reads a JSON body into `T`, or a 400 naming what is wrong with it.
async fn parse<T: DeserializeOwned>(
    request: Request<Incoming>,
    what: &str,
) -> Result<Result<T, ApiError>, CloseConnection> {
    let body = match read_body(request.into_body()).await {
        Ok(body) => body,
        Err(BodyError::TooLarge) => {
            let error = ApiError::bad_control_request(format!("{what} body is too large"));
            return Ok(Err(error));
        }
        Err(BodyError::Broken) => return Err(CloseConnection),
    };
    Ok(serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_control_request(format!("invalid {what}: {e}"))))
}
