//! One attempt: send the request on a leased key, classify the answer, and say what happened.
//!
//! The attempt is two steps with a seam between them: sending and classifying the status
//! (`Http::send`, which returns once the status is in), then reading the body
//! (`Answer::read_body`). A streamed answer takes the seam: it keeps the lease (so that the
//! key's window counts the request until the stream ends) and reads the body as it comes.

use super::call::Request;
use super::{Lease, Pool, PoolKey};
use crate::cancel::Cancel;
use crate::error::{ApiError, Error};
use crate::gemini::{classify, ErrorBody, Verdict};
use crate::health::DisabledReason;
use crate::http::{Answer, Failure};
use crate::key::redact;
use crate::metrics::counters::KeyCounter;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// What one attempt came to.
#[derive(Debug)]
pub(crate) enum Happened {
    /// The service answered: its status, body, error body (for a non-2xx status, if it is the
    /// service's JSON error) and what that means.
    Answered {
        status: u16,
        body: Bytes,
        error: Option<ErrorBody>,
        verdict: Verdict,
    },
    /// No answer within the call's remaining time.
    TimedOut,
    /// No answer: connecting, sending or reading failed (the message may quote a key: it is
    /// redacted before anyone sees it).
    Transport(String),
}

impl Happened {
    pub(super) fn answered(status: u16, body: Bytes) -> Happened {
        let error = (!(200..300).contains(&status))
            .then(|| ErrorBody::parse(&body))
            .flatten();
        let verdict = classify(status, error.as_ref());
        Happened::Answered {
            status,
            body,
            error,
            verdict,
        }
    }

    /// A 429 that names no quota: the service's capacity, not the group's quota.
    pub(crate) fn is_capacity_429(&self) -> bool {
        matches!(self, Happened::Answered {
            verdict: Verdict::RateLimited { violations, .. },
            ..
        } if violations.is_empty())
    }

    /// What an exchange came to. A cancelled one is the call's end: the caller asked for it.
    pub(super) fn of(answer: Result<(u16, Bytes), Failure>) -> Result<Happened, Error> {
        Ok(match answer {
            Ok((status, body)) => Happened::answered(status, body),
            Err(Failure::Timeout) => Happened::TimedOut,
            Err(Failure::Transport(message)) => Happened::Transport(message),
            Err(Failure::Cancelled) => return Err(Error::Cancelled),
        })
    }

    /// The key counter this outcome adds to.
    fn counter(&self) -> KeyCounter {
        match self {
            Happened::TimedOut => KeyCounter::Timeout,
            Happened::Transport(_) => KeyCounter::Transport,
            Happened::Answered { verdict, .. } => match verdict {
                Verdict::Success => KeyCounter::Succeeded,
                Verdict::RateLimited { .. } => KeyCounter::Upstream429,
                Verdict::KeyDead(DisabledReason::ApiKeyInvalid) => KeyCounter::InvalidKey,
                Verdict::KeyDead(_) => KeyCounter::PermissionDenied,
                Verdict::Transient => KeyCounter::ServerError,
                Verdict::Caller => KeyCounter::ClientError,
            },
        }
    }
}

/// `usageMetadata.promptTokenCount` of a response, found without parsing the whole body (the
/// last occurrence: the usage block comes after the candidates, whose text could quote it).
pub(crate) fn prompt_token_count(body: &[u8]) -> Option<u64> {
    const NAME: &[u8] = b"\"promptTokenCount\"";
    let at = body.windows(NAME.len()).rposition(|w| w == NAME)? + NAME.len();
    let rest = &body[at..];
    let start = rest.iter().position(|b| b.is_ascii_digit())?;
    if rest[..start]
        .iter()
        .any(|&b| b != b':' && !b.is_ascii_whitespace())
    {
        return None;
    }
    let digits = rest[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&rest[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// `body` with any of `keys` in it redacted (a copy only when one is there: the service
/// rarely quotes a key).
pub(crate) fn redact_bytes<'a>(
    body: Bytes,
    keys: impl IntoIterator<Item = &'a crate::key::ApiKey>,
) -> Bytes {
    let keys: Vec<_> = keys.into_iter().collect();
    let quoted = keys.iter().any(|k| {
        let secret = k.secret().as_bytes();
        !secret.is_empty() && body.windows(secret.len()).any(|w| w == secret)
    });
    if !quoted {
        return body;
    }
    Bytes::from(redact(&String::from_utf8_lossy(&body), keys))
}

impl Pool {
    /// Sends `request` on the leased key within `remaining_ms`, counts the attempt on the key
    /// and the pool, and completes the lease once the answer is in. `retry`: the attempt
    /// retries a transient failure.
    pub(super) fn attempt(
        &self,
        mut lease: Lease<'_>,
        request: &Request<'_>,
        remaining_ms: u64,
        retry: bool,
    ) -> Result<Happened, Error> {
        let key = lease.pool_key();
        self.count_attempt(key, retry)?;
        let sent = Instant::now();
        let deadline = sent + Duration::from_millis(remaining_ms);
        let answer = self.send(key, request, deadline).and_then(|answer| {
            // The seam: the status is in, the body not yet read.
            let status = answer.status;
            answer.read_body(deadline).map(|body| (status, body))
        });
        // The answer is in: the windows count the request from now, and its tokens as the
        // service counted them.
        if let Ok((200..=299, body)) = &answer {
            lease.set_prompt_tokens(prompt_token_count(body));
        }
        drop(lease);
        self.observed(key, sent, answer)
    }

    /// Counts an attempt starting on `key`.
    pub(super) fn count_attempt(&self, key: &PoolKey, retry: bool) -> Result<(), Error> {
        key.record.count(KeyCounter::Admitted)?;
        if retry {
            key.record.count(KeyCounter::Retries)?;
        }
        Ok(())
    }

    /// Sends `request` with `key` and waits for the answer's status, until `deadline`.
    pub(super) fn send(
        &self,
        key: &PoolKey,
        request: &Request<'_>,
        deadline: Instant,
    ) -> Result<Answer, Failure> {
        let url = self
            .http
            .model_url(request.version, request.model, request.method)
            .map_err(Failure::Transport)?;
        let cancel: Vec<&Cancel> = request.cancel.into_iter().collect();
        self.http
            .send(&key.key, url, Some(request.body.clone()), deadline, &cancel)
    }

    /// What an attempt sent at `sent` on `key` came to, counted on the key and the pool.
    pub(super) fn observed(
        &self,
        key: &PoolKey,
        sent: Instant,
        answer: Result<(u16, Bytes), Failure>,
    ) -> Result<Happened, Error> {
        self.record
            .observe_latency(sent.elapsed().as_micros() as u64)?;
        let happened = Happened::of(answer)?;
        key.record.count(happened.counter())?;
        Ok(happened)
    }

    /// The attempt's result for the caller: the body of a success, or the error that says
    /// what went wrong (any key the service quoted redacted). `elapsed_ms`: the call's time so
    /// far, for a timeout.
    pub(super) fn result_of(
        &self,
        happened: Happened,
        key: &PoolKey,
        elapsed_ms: u64,
    ) -> Result<Bytes, Error> {
        let keys = || self.config.all_keys();
        match happened {
            Happened::Answered {
                verdict: Verdict::Success,
                body,
                ..
            } => Ok(body),
            Happened::Answered {
                status,
                body,
                error,
                ..
            } => {
                let e = error.unwrap_or_default();
                let message = if e.message.is_empty() {
                    redact(String::from_utf8_lossy(&body).trim(), keys())
                } else {
                    redact(&e.message, keys())
                };
                Err(Error::Api(ApiError {
                    http_status: status,
                    rpc_status: e.status,
                    message,
                    key_fingerprint: Some(key.key.fingerprint().to_string()),
                    body: redact_bytes(body, keys()),
                }))
            }
            Happened::TimedOut => Err(Error::Timeout {
                after_ms: elapsed_ms,
            }),
            Happened::Transport(message) => Err(Error::Transport {
                message: redact(&message, keys()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::prompt_token_count;

    #[test]
    fn the_prompt_token_count_is_read_from_the_usage_block() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"\"promptTokenCount\": 9"}]}}],
            "usageMetadata": {"promptTokenCount" : 1234, "totalTokenCount": 2000}}"#;
        assert_eq!(prompt_token_count(body), Some(1234));
        assert_eq!(prompt_token_count(br#"{"candidates":[]}"#), None);
        assert_eq!(prompt_token_count(br#"{"promptTokenCount": "x"}"#), None);
    }
}
