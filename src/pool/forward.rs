//! Requests forwarded as an SDK built them (`gr_forward`, `gr_forward_stream`): routed by
//! their path (`crate::resource`), in the API version they name.
//!
//! - A model method is the pool's model call (rotation, admission per group and model,
//!   reactions, failover), on the keys the resources it names allow.
//! - The models list and resource requests (files, uploads, cached contents, operations,
//!   batches) use no model quota: they go on one key without admission, to the next allowed
//!   key after a dead key, a 429, a 5xx or no answer. What an answer creates is pinned to the
//!   serving key's group (an upload session to the key); a deleted resource is unpinned.
//! - A request naming a resource the store has no pin for goes to any key; when the answer
//!   says the resource is not there (403/404 quoting it), one key of each other group is
//!   asked before the service's answer is given back, and the resource is pinned where found.

use super::attempt::Happened;
use super::resource::Scope;
use super::{CallOptions, Pool, PoolKey, Response, Stream};
use crate::cancel::Cancel;
use crate::error::Error;
use crate::gemini::Verdict;
use crate::method::Method;
use crate::resource::{self, Route, Target, UPLOAD_PIN_PREFIX};
use crate::store::PinTarget;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// One HTTP request as an SDK built it.
pub struct ForwardRequest<'a> {
    /// `GET`, `POST`, `PATCH`, `PUT`, `DELETE`.
    pub method: &'a str,
    /// The URL's path and query as the SDK built it.
    pub path: &'a str,
    /// The SDK's headers; only `content-type` and `x-goog-upload-*` are forwarded.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// A forwarded request's answer: the call's response, the service's HTTP status (2xx) and
/// the answer's `content-type` and `x-goog-upload-*` headers.
#[derive(Clone, Debug)]
pub struct Forwarded {
    pub response: Response,
    pub http_status: u16,
    pub headers: Vec<(String, String)>,
}

/// The content type of a model method's answer.
const JSON: &str = "application/json; charset=UTF-8";

impl Pool {
    /// Forwards one request (not a stream: [`Pool::forward_stream`]).
    pub fn forward(
        &self,
        request: &ForwardRequest<'_>,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Forwarded, Error> {
        let target = Target::parse(request.path)?;
        match target.route(request.method, request.path)? {
            Route::Model {
                method: Method::StreamGenerateContent,
                ..
            } => Err(Error::invalid(
                "path",
                format!(
                    "{} {}: streamGenerateContent is a stream: forward it with gr_forward_stream",
                    request.method, request.path
                ),
            )),
            Route::Model { model, method } => {
                let response =
                    self.forward_model(&target, &model, request.body, options, |o, s| {
                        self.call_scoped(method, json_body(request.body)?, o, cancel, s)
                    })?;
                Ok(Forwarded {
                    response,
                    http_status: 200,
                    headers: vec![("content-type".into(), JSON.into())],
                })
            }
            Route::Models => self.forward_plain(request, &target, None, options, cancel),
            Route::Resource { name } => self.forward_plain(request, &target, name, options, cancel),
        }
    }

    /// Forwards `POST .../models/M:streamGenerateContent` (anything else is
    /// `Error::InvalidArgument` naming the path): the stream as [`Pool::stream`] opens it.
    pub fn forward_stream(
        &self,
        path: &str,
        body: &[u8],
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Stream<'_>, Error> {
        let target = Target::parse(path)?;
        match target.route("POST", path)? {
            Route::Model {
                model,
                method: Method::StreamGenerateContent,
            } => self.forward_model(&target, &model, body, options, |o, s| {
                self.stream_scoped(json_body(body)?, o, cancel, s)
            }),
            _ => Err(Error::invalid(
                "path",
                format!("POST {path}: gr_forward_stream forwards only models/{{model}}:streamGenerateContent"),
            )),
        }
    }

    /// A model call in `target`'s version on the keys its resources allow; when it names a
    /// resource without a pin and the answer says it is not there, each other group is asked.
    fn forward_model<T>(
        &self,
        target: &Target,
        model: &str,
        body: &[u8],
        options: &CallOptions,
        call: impl Fn(&CallOptions, &Scope<'_>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let options = CallOptions {
            model: Some(model.to_string()),
            ..options.clone()
        };
        let names = resource::names_in_body(body);
        let scope = self.scope_for(&target.version, &names)?;
        let first = call(&options, &scope);
        let asked = match &first {
            Err(e @ Error::Api(api)) if scope.unpinned_not_found(e) => api.key_fingerprint.clone(),
            _ => return first,
        };
        // Not where the first key's project is: one try per other group.
        for group in self.groups_except(asked.as_deref()) {
            let mut only = self.allowed_by(group);
            if let Some(pinned) = &scope.only {
                only.iter_mut().zip(pinned).for_each(|(a, p)| *a &= *p);
            }
            if !only.contains(&true) {
                continue;
            }
            let scoped = Scope {
                version: scope.version,
                only: Some(only),
                names: scope.names.clone(),
                unpinned: scope.unpinned.clone(),
            };
            match call(&options, &scoped) {
                Ok(done) => {
                    for name in &scope.unpinned {
                        self.pin(name, group, resource::DEFAULT_PIN_TTL_MS)?;
                    }
                    return Ok(done);
                }
                Err(e) if scope.unpinned_not_found(&e) => {}
                Err(other) => return Err(other),
            }
        }
        first
    }

    /// The quota groups of the pool's keys, in key order, without the group of the key with
    /// fingerprint `except`.
    fn groups_except(&self, except: Option<&str>) -> Vec<PinTarget> {
        let skip = self
            .keys()
            .find(|k| Some(k.key.fingerprint()) == except)
            .map(Pool::group_of);
        let mut groups: Vec<PinTarget> = Vec::new();
        for key in self.keys() {
            let g = Pool::group_of(key);
            if Some(g) != skip && !groups.contains(&g) {
                groups.push(g);
            }
        }
        groups
    }

    /// A request that uses no model quota (the models list, resources): on one allowed key
    /// at a time, no admission.
    fn forward_plain(
        &self,
        request: &ForwardRequest<'_>,
        target: &Target,
        path_name: Option<String>,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Forwarded, Error> {
        self.counted(|| self.forward_plain_unrecorded(request, target, path_name, options, cancel))
    }

    fn forward_plain_unrecorded(
        &self,
        request: &ForwardRequest<'_>,
        target: &Target,
        path_name: Option<String>,
        options: &CallOptions,
        cancel: Option<&Cancel>,
    ) -> Result<Forwarded, Error> {
        let mut names = resource::names_in_body(request.body);
        names.extend(path_name.iter().cloned());
        let scope = self.scope_for(&target.version, &names)?;
        let url = self
            .http
            .forward_url(&target.path_and_query(false))
            .map_err(|message| Error::Transport { message })?;
        let body = (!request.body.is_empty() || request.method != "GET")
            .then(|| Bytes::copy_from_slice(request.body));
        let budget = options
            .timeout_ms
            .unwrap_or(self.config.timeout_ms)
            .min(self.config.timeout_ms);
        let deadline = Instant::now() + Duration::from_millis(budget);
        let cancel: Vec<&Cancel> = cancel.into_iter().collect();
        // The keys in order: from the shared cursor, allowed ones only.
        let keys: Vec<&PoolKey> = self.keys().collect();
        let start = (self.record.next_cursor()? % keys.len().max(1) as u64) as usize;
        let order: Vec<usize> = (0..keys.len())
            .map(|i| (start + i) % keys.len())
            .filter(|&i| scope.only.as_ref().map_or(true, |o| o[i]))
            .collect();
        let mut attempts = 0;
        let mut last_failure: Option<Error> = None;
        // A 403/404 about an unpinned resource: the first such answer, and the groups asked.
        let mut not_here: Option<Error> = None;
        let mut groups_asked: Vec<PinTarget> = Vec::new();
        for index in order {
            let key = keys[index];
            if attempts >= self.config.max_attempts {
                break;
            }
            if key.disabled()?.is_some() {
                continue;
            }
            let group = Pool::group_of(key);
            if not_here.is_some() && groups_asked.contains(&group) {
                continue;
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout { after_ms: budget });
            }
            attempts += 1;
            let sent = Instant::now();
            self.count_attempt(key, attempts > 1)?;
            let mut headers = Vec::new();
            let answer = self
                .http
                .send_request(
                    &key.key,
                    request.method,
                    url.clone(),
                    request.headers,
                    body.clone(),
                    deadline,
                    &cancel,
                )
                .and_then(|answer| {
                    headers = answer.headers.clone();
                    let status = answer.status;
                    answer.read_body(deadline).map(|body| (status, body))
                });
            let happened = scope.judge(self.observed(key, sent, answer)?);
            if scope.about_unpinned(&happened) {
                groups_asked.push(group);
                let e = self.result_of(happened, key, 0).err();
                not_here = not_here.or(e);
                continue;
            }
            let (move_on, dead) = match &happened {
                Happened::Answered { verdict, .. } => match verdict {
                    Verdict::KeyDead(reason) => (true, Some(*reason)),
                    Verdict::RateLimited { .. } | Verdict::Transient => (true, None),
                    Verdict::Success | Verdict::Caller => (false, None),
                },
                Happened::TimedOut | Happened::Transport(_) => (true, None),
            };
            if let Some(reason) = dead {
                key.disable(reason)?;
            }
            let status = match &happened {
                Happened::Answered { status, .. } => *status,
                _ => 0,
            };
            match self.result_of(happened, key, sent.elapsed().as_millis() as u64) {
                Ok(answer) => {
                    self.pins_after(request, target, &names, &scope, key, &headers, &answer)?;
                    return Ok(Forwarded {
                        response: Response {
                            body: answer,
                            key_fingerprint: key.key.fingerprint().to_string(),
                            attempts,
                            model: String::new(),
                        },
                        http_status: status,
                        headers,
                    });
                }
                Err(e) if move_on => last_failure = Some(e),
                Err(e) => return Err(e),
            }
        }
        if let Some(e) = not_here {
            return Err(e);
        }
        Err(last_failure.unwrap_or_else(|| self.no_usable_keys(None)))
    }

    /// The pins a successful answer makes or removes: an upload session started (pinned to
    /// the key), a resource created or found (pinned to the key's group), a resource deleted
    /// (unpinned).
    #[allow(clippy::too_many_arguments)]
    fn pins_after(
        &self,
        request: &ForwardRequest<'_>,
        target: &Target,
        names: &[String],
        scope: &Scope<'_>,
        key: &PoolKey,
        headers: &[(String, String)],
        answer: &[u8],
    ) -> Result<(), Error> {
        let group = Pool::group_of(key);
        if request.method == "DELETE" {
            for name in names {
                self.store.pins().unpin(name)?;
            }
            return Ok(());
        }
        if target.upload {
            let started = headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case("x-goog-upload-url"))
                .and_then(|(_, url)| resource::upload_id(url));
            if let Some(id) = started {
                let name = format!("{UPLOAD_PIN_PREFIX}{id}");
                let to_key = PinTarget::Key(*key.key.id());
                self.pin(&name, to_key, resource::DEFAULT_PIN_TTL_MS)?;
            }
        }
        // Found where no pin said: pinned there now.
        for name in &scope.unpinned {
            if !name.starts_with(UPLOAD_PIN_PREFIX) {
                self.pin(name, group, resource::DEFAULT_PIN_TTL_MS)?;
            }
        }
        if let Some(created) =
            resource::created(answer, self.clock.unix_secs().max(0) as u64 * 1000)
        {
            self.pin(&created.name, group, created.ttl_ms)?;
        }
        Ok(())
    }
}

/// A model call's body: the SDK's JSON, as text.
fn json_body(body: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(body).map_err(|e| {
        Error::invalid(
            "body",
            format!(
                "a model method's body must be UTF-8 JSON (bad byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}
