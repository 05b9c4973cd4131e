//! Small HTTP helpers shared by the handlers: the answer body type (whole or streamed), JSON
//! answers, query parameters, body reading.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::errors::ApiError;

/// The body of every answer: either whole (sent with `Content-Length`), or produced piece by
/// piece through a channel. A streamed body has no length, so hyper sends it with chunked
/// transfer encoding (HTTP/1.1) and writes each piece as soon as it is produced.
#[derive(Debug)]
pub enum Body {
    Whole(Option<Bytes>),
    Streamed(mpsc::Receiver<Result<Bytes, StreamAborted>>),
}

/// Sent into a streamed body to drop the connection mid-body: the chunked encoding is never
/// terminated, so the client sees a broken body rather than a clean end.
#[derive(Debug)]
pub struct StreamAborted;

impl fmt::Display for StreamAborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stream dropped by the emulator")
    }
}

impl std::error::Error for StreamAborted {}

impl Body {
    /// A whole body.
    pub fn whole(bytes: impl Into<Bytes>) -> Body {
        Body::Whole(Some(bytes.into()))
    }

    /// A streamed body and the sender that feeds it; dropping the sender ends the body.
    pub fn channel() -> (mpsc::Sender<Result<Bytes, StreamAborted>>, Body) {
        // One slot: a piece waits for the connection to take the previous one, so a slow
        // client slows the stream instead of the emulator buffering it.
        let (tx, rx) = mpsc::channel(1);
        (tx, Body::Streamed(rx))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = StreamAborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamAborted>>> {
        match self.get_mut() {
            Body::Whole(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Streamed(rx) => rx
                .poll_recv(cx)
                .map(|piece| piece.map(|piece| piece.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Whole(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Body::Streamed(_) => SizeHint::default(),
        }
    }
}

/// The real service refuses request payloads over 20 MiB.
pub const MAX_BODY_BYTES: usize = 20 * 1024 * 1024;

pub const JSON: &str = "application/json; charset=UTF-8";

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
    let mut response = Response::new(Body::whole(text));
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
