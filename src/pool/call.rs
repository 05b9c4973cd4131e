//! A call of any model method (generateContent, countTokens, embedContent,
//! batchEmbedContents) through the attempt loop, and the models list.
//!
//! Every model method rotates and counts against the limits like generateContent: to the pool
//! they differ only in the URL. The stream has its own attempt (`stream.rs`) on the same loop.

use super::resource::Scope;
use super::{estimate_tokens, request_body, CallOptions, Lease, Pool, PoolKey, Response};
use crate::cancel::Cancel;
use crate::error::Error;
use crate::gemini::Verdict;
use crate::method::Method;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// What one attempt sends.
pub(crate) struct Request<'a> {
    /// The API version (`v1beta` unless the caller's URL named another).
    pub version: &'a str,
    pub model: &'a str,
    pub method: Method,
    pub body: &'a Bytes,
    pub cancel: Option<&'a Cancel>,
}

/// What an attempt of the loop came to.
pub(crate) enum Tried<T> {
    /// An outcome for `decide`, and what the attempt made of a success (a live stream).
    Happened(super::attempt::Happened, Option<T>),
    /// Given up without an outcome that says anything about the key (a stream that sent no
    /// event in time): the loop tries another key at once.
    Abandoned(Error),
}

/// A call's success, as the loop returns it.
pub(crate) struct Done<'p, T> {
    pub body: Bytes,
    pub value: Option<T>,
    pub key: &'p PoolKey,
    pub attempts: u32,
    /// The model that served it (the one asked for, or a fallback).
    pub model: String,
}

impl Pool {
    /// Sends one request of `method` (`request_json`, passed through untouched) through the
    /// pool; `cancel`, when triggered from any thread, stops it at once (the HTTP request
    /// itself) with [`Error::Cancelled`]. Streams are [`Pool::stream`]'s.
    pub fn call(
        &self,
        method: Method,
        request_json: &str,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Response, Error> {
        if method == Method::StreamGenerateContent {
            return Err(Error::invalid(
                "method",
                "streamGenerateContent is a stream: open it as one (Pool::stream, gr_stream_open)",
            ));
        }
        self.call_scoped(method, request_json, options, cancel, &Scope::DEFAULT)
    }

    /// [`Pool::call`] in the API version and on the keys `scope` says.
    pub(crate) fn call_scoped(
        &self,
        method: Method,
        request_json: &str,
        options: &CallOptions,
        cancel: Option<&Cancel>,
        scope: &Scope<'_>,
    ) -> Result<Response, Error> {
        self.counted(|| self.call_unrecorded(method, request_json, options, cancel, scope))
    }

    fn call_unrecorded(
        &self,
        method: Method,
        request_json: &str,
        options: &CallOptions,
        cancel: Option<&Cancel>,
        scope: &Scope<'_>,
    ) -> Result<Response, Error> {
        let body = request_body(request_json)?;
        // Every method is admitted on the quotas of its own model (and its fallbacks).
        let chain = self.model_chain(options)?;
        let tokens = estimate_tokens(&body);
        let done = self.run(
            options,
            &chain,
            tokens,
            scope.only.as_deref(),
            |lease: Lease<'_>, remaining, retry| {
                let model = lease.model().to_string();
                let request = Request {
                    version: scope.version,
                    model: &model,
                    method,
                    body: &body,
                    cancel,
                };
                self.attempt(lease, &request, remaining, retry)
                    .map(|happened| Tried::<()>::Happened(scope.judge(happened), None))
            },
        )?;
        Ok(Response {
            body: done.body,
            key_fingerprint: done.key.key.fingerprint().to_string(),
            attempts: done.attempts,
            model: done.model,
        })
    }

    /// One page of the models list (`page_size` 0: the service's default; `page_token` "":
    /// the first page), as the service's JSON. The list uses no quota, so no window slot is
    /// taken: it is asked of the first key that is not disabled, and of the next when a key
    /// turns out dead or rate-limited.
    pub fn list_models(
        &self,
        page_size: u32,
        page_token: &str,
        cancel: Option<&Cancel>,
    ) -> Result<Response, Error> {
        let url = self
            .http
            .models_url(page_size, page_token)
            .map_err(|message| Error::Transport { message })?;
        let cancel: Vec<&Cancel> = cancel.into_iter().collect();
        let mut last_failure = None;
        let mut attempts = 0;
        for key in self.keys() {
            if key.disabled()?.is_some() {
                continue;
            }
            attempts += 1;
            let deadline = Instant::now() + Duration::from_millis(self.config.timeout_ms);
            let answer = self
                .http
                .send(&key.key, url.clone(), None, deadline, &cancel)
                .and_then(|answer| {
                    let status = answer.status;
                    answer.read_body(deadline).map(|body| (status, body))
                });
            // Not counted on the key: the list is no admitted request of it.
            let happened = super::attempt::Happened::of(answer)?;
            let move_on = matches!(
                &happened,
                super::attempt::Happened::Answered {
                    verdict: Verdict::KeyDead(_) | Verdict::RateLimited { .. },
                    ..
                }
            );
            if let super::attempt::Happened::Answered {
                verdict: Verdict::KeyDead(reason),
                ..
            } = &happened
            {
                key.disable(*reason)?;
            }
            match self.result_of(happened, key, 0) {
                Ok(body) => {
                    return Ok(Response {
                        body,
                        key_fingerprint: key.key.fingerprint().to_string(),
                        attempts,
                        // The list is no model's.
                        model: String::new(),
                    });
                }
                Err(e) if move_on => last_failure = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_failure.unwrap_or_else(|| self.no_usable_keys(None)))
    }
}
