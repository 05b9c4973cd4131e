//! The library's errors. Every message names what was wrong; none contains an API key.

use std::fmt;

/// A failed Gemini call: what the service answered, with any key in the message redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status (e.g. 400).
    pub http_status: u16,
    /// RPC status from the error body (e.g. `INVALID_ARGUMENT`), empty if the body had none.
    pub rpc_status: String,
    /// The service's message.
    pub message: String,
    /// The key that received this answer.
    pub key_fingerprint: Option<String>,
    /// The service's error body, byte for byte as received (`details` and all), any key of
    /// the pool in it redacted; empty when the error came in the middle of a stream's text
    /// without one.
    pub body: bytes::Bytes,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// Bad configuration: `setting` is the environment variable or JSON field.
    Config { setting: String, reason: String },
    /// A bad argument to a call.
    InvalidArgument { argument: String, reason: String },
    /// A JSON argument that does not parse.
    InvalidJson { argument: String, reason: String },
    /// No key can admit the request now; one can in `retry_after_ms`. `last_answer`: what the
    /// service last said in this call, if a key was refused by it.
    AllKeysRateLimited {
        retry_after_ms: u64,
        last_answer: Option<String>,
    },
    /// No key's quota group has the model (nor any of its fallbacks): the service answered
    /// "limit: 0" for each, i.e. the model is not on their tier. Not a rate limit: waiting
    /// does not help.
    ModelUnavailable {
        model: String,
        fallbacks: Vec<String>,
        last_answer: Option<String>,
    },
    /// Every key of the pool is disabled (invalid, leaked, suspended...): nothing will admit.
    NoUsableKeys {
        detail: String,
        last_answer: Option<String>,
    },
    /// The service answered with an error that is the caller's to handle.
    Api(ApiError),
    /// No answer: the connection failed (after the retries allowed).
    Transport { message: String },
    /// The call's time ran out.
    Timeout { after_ms: u64 },
    /// The state store could not be opened or is unusable.
    State { message: String },
    /// The caller cancelled the call (or closed the stream) while it was running.
    Cancelled,
    /// A stream ended without a last event (no `finishReason`) after `events` events: the
    /// answer is incomplete, not a success.
    IncompleteStream { events: u64 },
}

impl Error {
    pub fn config(setting: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Config {
            setting: setting.into(),
            reason: reason.into(),
        }
    }

    pub fn invalid(argument: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::InvalidArgument {
            argument: argument.into(),
            reason: reason.into(),
        }
    }

    pub fn invalid_json(argument: impl Into<String>, e: &serde_json::Error) -> Error {
        Error::InvalidJson {
            argument: argument.into(),
            reason: e.to_string(),
        }
    }

    /// Milliseconds until a key can admit again, for [`Error::AllKeysRateLimited`].
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Error::AllKeysRateLimited { retry_after_ms, .. } => Some(*retry_after_ms),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config { setting, reason } => {
                write!(f, "invalid configuration: {setting}: {reason}")
            }
            Error::InvalidArgument { argument, reason } => {
                write!(f, "invalid argument `{argument}`: {reason}")
            }
            Error::InvalidJson { argument, reason } => {
                write!(f, "invalid argument `{argument}`: not valid JSON: {reason}")
            }
            Error::AllKeysRateLimited {
                retry_after_ms,
                last_answer,
            } => {
                write!(
                    f,
                    "all API keys have reached their rate limits; retry in {}.{:03}s",
                    retry_after_ms / 1000,
                    retry_after_ms % 1000
                )?;
                if let Some(answer) = last_answer {
                    write!(f, " (the service's last answer: {answer})")?;
                }
                Ok(())
            }
            Error::ModelUnavailable {
                model,
                fallbacks,
                last_answer,
            } => {
                write!(
                    f,
                    "model {model} is not available to any key of the pool (the service says its limit is 0 on their tier)"
                )?;
                if !fallbacks.is_empty() {
                    write!(f, ", nor are its fallbacks {}", fallbacks.join(", "))?;
                }
                if let Some(answer) = last_answer {
                    write!(f, "; the service's last answer: {answer}")?;
                }
                Ok(())
            }
            Error::NoUsableKeys {
                detail,
                last_answer,
            } => {
                write!(
                    f,
                    "no usable API keys: every key of the pool is disabled ({detail})"
                )?;
                if let Some(answer) = last_answer {
                    write!(f, "; the service's last answer: {answer}")?;
                }
                Ok(())
            }
            Error::Api(e) => {
                write!(f, "Gemini API error {}", e.http_status)?;
                if !e.rpc_status.is_empty() {
                    write!(f, " {}", e.rpc_status)?;
                }
                write!(f, ": {}", e.message)?;
                if let Some(fp) = &e.key_fingerprint {
                    write!(f, " (key {fp})")?;
                }
                Ok(())
            }
            Error::Transport { message } => write!(f, "transport error: {message}"),
            Error::Timeout { after_ms } => write!(f, "request timed out after {after_ms} ms"),
            Error::State { message } => write!(f, "state store: {message}"),
            Error::Cancelled => write!(f, "cancelled by the caller"),
            Error::IncompleteStream { events } => write!(
                f,
                "the stream ended without finishReason after {events} events: the answer is incomplete"
            ),
        }
    }
}

impl std::error::Error for Error {}
