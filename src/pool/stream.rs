//! `streamGenerateContent` through the pool: failover before the first event, never after.
//!
//! Opening a stream is the attempt loop with an attempt of its own: send, classify the status,
//! and read until the first event. Until that event has reached the caller nothing was
//! delivered, so every failure gets generateContent's reactions (cool down, disable, back off)
//! and another attempt, unseen: a non-200 answer, an error object as the first thing in a 200
//! body, a transport failure, an empty body, and a stream that sends no event within
//! `stream_first_event_timeout_ms` (abandoned, another key at once). Once the stream is open it
//! is never retried: a gap longer than `stream_idle_timeout_ms`, an error in the middle (a
//! bare JSON object included) or an end without `finishReason` is the caller's error after the
//! events already delivered.
//!
//! The stream holds its lease: the key's window slot is stamped when the stream ends, however
//! it ends (normal end, error, close, drop). `close` may be called from any thread: it
//! interrupts a blocked `next`, closes the connection and completes the lease at once.

use super::attempt::Happened;
use super::call::{Request, Tried};
use super::resource::Scope;
use super::{estimate_tokens, request_body, CallOptions, Lease, Pool};
use crate::cancel::Cancel;
use crate::error::{ApiError, Error};
use crate::gemini::ErrorBody;
use crate::http::{Answer, Failure};
use crate::key::redact;
use crate::log::{self, Level, Value::Num, Value::Str};
use crate::method::Method;
use crate::metrics::counters::{KeyCounter, PoolCounter};
use crate::sse::{Item, Parser};
use bytes::Bytes;
use serde::Deserialize;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The token counts of a stream's last event (`usageMetadata`), for the token limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_token_count: Option<u64>,
    pub candidates_token_count: Option<u64>,
    pub total_token_count: Option<u64>,
}

/// What the stream needs to know of an event; the event itself is passed on untouched.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFacts {
    #[serde(default)]
    candidates: Vec<CandidateFacts>,
    usage_metadata: Option<Usage>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CandidateFacts {
    finish_reason: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<serde::de::IgnoredAny>,
}

impl EventFacts {
    /// The stream's last event: a candidate finished, or the prompt was blocked (a one-event
    /// stream without candidates).
    fn is_final(&self) -> bool {
        self.candidates.iter().any(|c| c.finish_reason.is_some())
            || self
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some())
    }
}

/// An open stream. `next` gives its events in order; `close` (from any thread) ends it.
pub struct Stream<'p> {
    pool: &'p Pool,
    state: Mutex<State<'p>>,
    /// Triggered by `close`, so that a `next` blocked on the body returns at once.
    closer: Cancel,
    usage: Mutex<Option<Usage>>,
    key_fingerprint: String,
    attempts: u32,
    model: String,
}

enum State<'p> {
    Live(Box<Live<'p>>),
    /// The last event was delivered and the body ended.
    Ended,
    /// The stream ended with an error, already returned.
    Failed,
    Closed,
}

/// A stream that is still reading: its connection and its key's slot.
struct Live<'p> {
    /// Completed when the stream ends (dropped with it), its token reservation corrected to
    /// the last `usageMetadata.promptTokenCount` seen.
    lease: Lease<'p>,
    answer: Answer,
    parser: Parser,
    /// The first event, read (and read into its facts) while opening, not yet delivered.
    first: Option<(Vec<u8>, EventFacts)>,
    body_ended: bool,
    events: u64,
    /// The last event delivered was the final one.
    finished: bool,
    idle: Duration,
}

impl Pool {
    /// Opens a `streamGenerateContent` stream (`request_json` passed through untouched, sent
    /// with `alt=sse`) on the key the pool chooses; it returns once the first event is in.
    /// `cancel`, when triggered from any thread, stops the stream (opening or reading) at once.
    pub fn stream(
        &self,
        request_json: &str,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Stream<'_>, Error> {
        self.stream_scoped(request_json, options, cancel, &Scope::DEFAULT)
    }

    /// [`Pool::stream`] in the API version and on the keys `scope` says.
    pub(crate) fn stream_scoped(
        &self,
        request_json: &str,
        options: &CallOptions,
        cancel: Option<&Cancel>,
        scope: &Scope<'_>,
    ) -> Result<Stream<'_>, Error> {
        self.record.add(PoolCounter::Requests, 1)?;
        let opened = self.open(request_json, options, cancel, scope);
        if let Err(e) = &opened {
            self.count_outcome(Err(e))?;
        }
        opened
    }

    fn open(
        &self,
        request_json: &str,
        options: &CallOptions,
        cancel: Option<&Cancel>,
        scope: &Scope<'_>,
    ) -> Result<Stream<'_>, Error> {
        let body = request_body(request_json)?;
        let chain = self.model_chain(options)?;
        let tokens = estimate_tokens(&body);
        let only = scope.only.as_deref();
        let done = self.run(options, &chain, tokens, only, |lease, remaining, retry| {
            let model = lease.model().to_string();
            let request = Request {
                version: scope.version,
                model: &model,
                method: Method::StreamGenerateContent,
                body: &body,
                cancel,
            };
            self.stream_attempt(lease, &request, remaining, retry)
                .map(|tried| match tried {
                    Tried::Happened(happened, live) => Tried::Happened(scope.judge(happened), live),
                    abandoned => abandoned,
                })
        })?;
        let live = done.value.ok_or_else(|| Error::Transport {
            message: "the stream opened without an event".into(),
        })?;
        Ok(Stream {
            pool: self,
            state: Mutex::new(State::Live(live)),
            closer: Cancel::new(),
            usage: Mutex::new(None),
            key_fingerprint: done.key.key.fingerprint().to_string(),
            attempts: done.attempts,
            model: done.model,
        })
    }

    /// One attempt at opening a stream: a success is a live stream whose first event is in.
    fn stream_attempt<'p>(
        &'p self,
        lease: Lease<'p>,
        request: &Request<'_>,
        remaining_ms: u64,
        retry: bool,
    ) -> Result<Tried<Box<Live<'p>>>, Error> {
        let key = lease.pool_key();
        self.count_attempt(key, retry)?;
        let sent = Instant::now();
        let deadline = sent + Duration::from_millis(remaining_ms);
        let first_ms = self.config.stream_first_event_timeout_ms;
        let first_deadline = deadline.min(sent + Duration::from_millis(first_ms));
        let outcome = |answer| {
            self.observed(key, sent, answer)
                .map(|h| Tried::Happened(h, None))
        };
        let mut answer = match self.send(key, request, deadline) {
            Ok(answer) => answer,
            Err(failure) => {
                drop(lease);
                return outcome(Err(failure));
            }
        };
        if answer.status != 200 {
            let status = answer.status;
            let body = answer.read_body(deadline).map(|body| (status, body));
            drop(lease);
            return outcome(body);
        }
        let mut parser = Parser::new();
        let mut body_ended = false;
        let item = loop {
            if let Some(item) = parser.next_item() {
                break Some(item);
            }
            if body_ended {
                break parser.finish();
            }
            match answer.next_chunk(first_deadline, None) {
                Ok(Some(chunk)) => parser.push(&chunk),
                Ok(None) => body_ended = true,
                Err(Failure::Timeout) if first_deadline < deadline => {
                    drop(answer);
                    drop(lease);
                    key.record.count(KeyCounter::Timeout)?;
                    log::event(
                        Level::Warn,
                        "stream_stalled",
                        &[
                            ("key", Str(key.key.fingerprint())),
                            ("first_event_timeout_ms", Num(first_ms)),
                        ],
                    );
                    return Ok(Tried::Abandoned(Error::Timeout { after_ms: first_ms }));
                }
                Err(failure) => {
                    drop(answer);
                    drop(lease);
                    return outcome(Err(failure));
                }
            }
        };
        let facts = match &item {
            Some(Item::Event(data)) => serde_json::from_slice::<EventFacts>(data).ok(),
            _ => None,
        };
        let first = match (item, facts) {
            (Some(Item::Event(data)), Some(facts)) if facts.error.is_none() => (data, facts),
            // An error as the first thing in the body (or an event that is not JSON): the
            // answer is that error.
            (Some(Item::Event(text) | Item::Bare(text)), _) => {
                drop(answer);
                drop(lease);
                let status = ErrorBody::parse(&text).map_or(0, |e| e.code);
                let status = if (400..600).contains(&status) {
                    status
                } else {
                    500
                };
                return outcome(Ok((status, Bytes::from(text))));
            }
            (None, _) => {
                drop(answer);
                drop(lease);
                return outcome(Err(Failure::Transport(
                    "the stream ended before its first event".into(),
                )));
            }
        };
        let happened: Happened = self.observed(key, sent, Ok((200, Bytes::new())))?;
        let live = Live {
            lease,
            answer,
            parser,
            first: Some(first),
            body_ended,
            events: 0,
            finished: false,
            idle: Duration::from_millis(self.config.stream_idle_timeout_ms),
        };
        Ok(Tried::Happened(happened, Some(Box::new(live))))
    }
}

impl Stream<'_> {
    /// The next event (a GenerateContentResponse JSON, as received), `None` at the normal end
    /// (after the event with `finishReason`). An error ends the stream: the events delivered
    /// before it are all there will be.
    pub fn next(&self) -> Result<Option<Bytes>, Error> {
        let mut state = lock(&self.state);
        let live = match &mut *state {
            State::Live(live) => live,
            State::Ended => return Ok(None),
            State::Failed => {
                return Err(Error::invalid(
                    "stream",
                    "has ended with an error (returned before)",
                ))
            }
            State::Closed => return Err(Error::invalid("stream", "is closed")),
        };
        let result = live.next(&self.closer, &self.usage, self.pool);
        match &result {
            Ok(Some(_)) => return result,
            Ok(None) => *state = State::Ended,
            Err(Error::Cancelled) => *state = State::Closed,
            Err(_) => *state = State::Failed,
        }
        // The connection and the slot are released here, before the caller hears the end.
        drop(state);
        self.pool
            .count_outcome(result.as_ref().map(|_| ()))
            .and(result)
    }

    /// Ends the stream now, from any thread: a `next` blocked on the body returns
    /// [`Error::Cancelled`], the connection is closed and the key's slot completed before this
    /// returns. Closing twice, or after the end, does nothing.
    pub fn close(&self) {
        self.closer.trigger();
        let mut state = lock(&self.state);
        if matches!(*state, State::Live(_)) {
            *state = State::Closed;
            drop(state);
            // Closed early by its caller: counted as a success, not the service's failure.
            let _ = self.pool.count_outcome(Ok(()));
        }
    }

    /// The last event's `usageMetadata`, once an event carried it.
    pub fn usage(&self) -> Option<Usage> {
        *lock(&self.usage)
    }

    /// The fingerprint of the key serving the stream.
    pub fn key_fingerprint(&self) -> &str {
        &self.key_fingerprint
    }

    /// The model that serves the stream: the one asked for, or one of its fallbacks.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// HTTP attempts opening the stream took.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

impl Drop for Stream<'_> {
    fn drop(&mut self) {
        self.close();
    }
}

/// A lock whose holder panicking leaves consistent data (each state is set whole).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Live<'_> {
    fn next(
        &mut self,
        closer: &Cancel,
        usage: &Mutex<Option<Usage>>,
        pool: &Pool,
    ) -> Result<Option<Bytes>, Error> {
        if let Some((data, facts)) = self.first.take() {
            return Ok(Some(self.delivered(data, facts, usage)));
        }
        loop {
            if let Some(item) = self.parser.next_item() {
                return self.item(item, usage, pool);
            }
            if self.body_ended {
                return match self.parser.finish() {
                    Some(item) => self.item(item, usage, pool),
                    None if self.finished => Ok(None),
                    None => Err(Error::IncompleteStream {
                        events: self.events,
                    }),
                };
            }
            match self
                .answer
                .next_chunk(Instant::now() + self.idle, Some(closer))
            {
                Ok(Some(chunk)) => self.parser.push(&chunk),
                Ok(None) => self.body_ended = true,
                Err(Failure::Timeout) => {
                    return Err(Error::Timeout {
                        after_ms: self.idle.as_millis() as u64,
                    })
                }
                Err(Failure::Cancelled) => return Err(Error::Cancelled),
                Err(Failure::Transport(message)) => {
                    return Err(Error::Transport {
                        message: redact(&message, pool.config.all_keys()),
                    })
                }
            }
        }
    }

    fn item(
        &mut self,
        item: Item,
        usage: &Mutex<Option<Usage>>,
        pool: &Pool,
    ) -> Result<Option<Bytes>, Error> {
        match item {
            Item::Event(data) => self.deliver(data, usage, pool),
            Item::Bare(text) => Err(mid_stream_error(&text, pool)),
        }
    }

    fn deliver(
        &mut self,
        data: Vec<u8>,
        usage: &Mutex<Option<Usage>>,
        pool: &Pool,
    ) -> Result<Option<Bytes>, Error> {
        let facts: EventFacts = serde_json::from_slice(&data).map_err(|e| Error::Transport {
            message: format!("the stream sent an event that is not JSON: {e}"),
        })?;
        if facts.error.is_some() {
            return Err(mid_stream_error(&data, pool));
        }
        Ok(Some(self.delivered(data, facts, usage)))
    }

    /// Takes note of an event on its way to the caller.
    fn delivered(
        &mut self,
        data: Vec<u8>,
        facts: EventFacts,
        usage: &Mutex<Option<Usage>>,
    ) -> Bytes {
        if let Some(u) = facts.usage_metadata {
            if u.prompt_token_count.is_some() {
                self.lease.set_prompt_tokens(u.prompt_token_count);
            }
            *lock(usage) = Some(u);
        }
        self.finished = facts.is_final();
        self.events += 1;
        Bytes::from(data)
    }
}

/// The error the service sent in the middle of a stream, as the caller sees it.
fn mid_stream_error(text: &[u8], pool: &Pool) -> Error {
    let keys = || pool.config.all_keys();
    match ErrorBody::parse(text) {
        Some(e) => Error::Api(ApiError {
            http_status: e.code,
            rpc_status: e.status,
            message: redact(&e.message, keys()),
            key_fingerprint: None,
            body: super::attempt::redact_bytes(Bytes::copy_from_slice(text), keys()),
        }),
        None => Error::Transport {
            message: format!(
                "the stream sent text outside its events: {}",
                redact(String::from_utf8_lossy(text).trim(), keys())
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_may_be_closed_from_another_thread() {
        fn shared_across_threads<T: Send + Sync>() {}
        shared_across_threads::<Stream<'static>>();
    }

    #[test]
    fn the_last_event_is_a_finished_candidate_or_a_blocked_prompt() {
        let facts = |json: &str| serde_json::from_str::<EventFacts>(json).unwrap();
        assert!(!facts(
            r#"{"candidates":[{"content":{}}],"usageMetadata":{"promptTokenCount":3}}"#
        )
        .is_final());
        assert!(facts(r#"{"candidates":[{"finishReason":"STOP"}]}"#).is_final());
        assert!(facts(r#"{"promptFeedback":{"blockReason":"SAFETY"}}"#).is_final());
        let usage = facts(r#"{"usageMetadata":{"promptTokenCount":3,"totalTokenCount":9}}"#);
        assert_eq!(
            usage.usage_metadata,
            Some(Usage {
                prompt_token_count: Some(3),
                candidates_token_count: None,
                total_token_count: Some(9)
            })
        );
        assert!(facts(r#"{"error":{"code":503}}"#).error.is_some());
    }
}
