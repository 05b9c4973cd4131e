//! Small HTTP helpers shared by the handlers: JSON answers, query parameters, body reading.

use std::fmt;

use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::errors::ApiError;

/// The body type of every answer.
pub type Body = Full<Bytes>;

/// The real service refuses request payloads over 20 MiB.
pub const MAX_BODY_BYTES: usize = 20 * 1024 * 1024;

const JSON: &str = "application/json; charset=UTF-8";

/// Returned by a handler to drop the connection without answering (the `close` fault, or a
/// client that went away mid-body). hyper closes the connection when a service fails.
#[derive(Debug)]
pub struct CloseConnection;

impl fmt::Display for CloseConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection closed by the emulator")
    }
}

impl std::error::Error for CloseConnection {}

/// A JSON answer with the service's content type.
pub fn json_response(status: u16, body: &impl Serialize) -> Response<Body> {
    let text = serde_json::to_string(body).expect("answers always serialize");
    text_response(status, text)
}

/// An answer whose body is already JSON text.
fn text_response(status: u16, text: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
    response
}

/// An error answer: `{"error": {...}}` with the error's HTTP status.
pub fn error_response(error: &ApiError) -> Response<Body> {
    text_response(error.code, error.body())
}

/// A 405 answer that also names the allowed method in `Allow`.
pub fn method_not_allowed(method: &str, path: &str, allowed: &'static str) -> Response<Body> {
    let mut response = error_response(&ApiError::method_not_allowed(method, path, allowed));
    response
        .headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allowed));
    response
}

/// Why a request body could not be read.
pub enum BodyError {
    /// Larger than [`MAX_BODY_BYTES`].
    TooLarge,
    /// The connection failed while the body was being read.
    Broken,
}

/// Reads the whole request body, up to [`MAX_BODY_BYTES`].
pub async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge),
        Err(_) => Err(BodyError::Broken),
    }
}

/// The first value of query parameter `name`, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // In query strings `+` stands for a space; an encoded plus (%2B) stays a plus.
        let decode = |text: &str| percent_decode(&text.replace('+', " "));
        (decode(key) == name).then(|| decode(value))
    })
}

/// Decodes `%XX` escapes. Invalid escapes stay as they are; invalid UTF-8 becomes U+FFFD.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_queries() {
        assert_eq!(
            query_param(Some("a=1&label=my%20key&x"), "label").as_deref(),
            Some("my key")
        );
        assert_eq!(query_param(Some("key"), "key").as_deref(), Some(""));
        assert_eq!(query_param(Some("a=1"), "key"), None);
        assert_eq!(query_param(None, "key"), None);
        assert_eq!(query_param(Some("q=a+b%2B"), "q").as_deref(), Some("a b+"));
        assert_eq!(percent_decode("a+b%3Ac%zz%4"), "a+b:c%zz%4");
    }
}
