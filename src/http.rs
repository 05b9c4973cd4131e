//! The HTTP client: one reused, keep-alive reqwest client per pool, rustls TLS, the key in the
//! `x-goog-api-key` header and never in the URL.
//!
//! It is reqwest's async client on a small runtime the library owns, driven from the caller's
//! thread (`Handle::block_on`). Not the blocking client: a blocking read cannot be interrupted
//! from another thread, and a stream closed by its caller, a cancelled Go context or a
//! cancelled asyncio task must stop the HTTP request itself, at once (see `cancel.rs`). Every
//! wait here races the response against the call's deadline and the caller's cancel tokens.
//!
//! Runtime threads do not survive `fork`. So the runtime and client remember the fork
//! generation that built them; a forked child builds its own on first use, and never drops
//! the parent's (dropping it would wait for threads that do not exist in the child).

use crate::cancel::{self, Cancel};
use crate::key::ApiKey;
use crate::method::Method;
use bytes::Bytes;
use std::future::Future;
use std::sync::atomic::{
    AtomicPtr, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;

/// Why an HTTP exchange brought no answer.
#[derive(Debug)]
pub enum Failure {
    /// No answer within the time given.
    Timeout,
    /// Connecting, sending or reading failed.
    Transport(String),
    /// A cancel token of the exchange was triggered; the connection is closed.
    Cancelled,
}

/// The service's answer once its status is in: the body is read separately
/// ([`Answer::read_body`], or a chunk at a time with [`Answer::next_chunk`]), so that a caller
/// can look at the status first and a stream can be read as it comes. Dropping it closes the
/// connection if the body was not read to its end.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The answer's `content-type` and `x-goog-upload-*` headers, for a forwarded request
    /// ([`Http::send_request`]); empty otherwise.
    pub headers: Vec<(String, String)>,
    response: reqwest::Response,
    runtime: Handle,
    cancel: Vec<Cancel>,
}

impl Answer {
    /// The whole body, as the service sent it (no decoding), by `deadline`.
    pub fn read_body(self, deadline: Instant) -> Result<Bytes, Failure> {
        let Answer {
            response,
            runtime,
            cancel,
            ..
        } = self;
        wait(&runtime, response.bytes(), deadline, &cancel, None)
    }

    /// The next piece of the body as it arrives (`None` at its end), by `deadline`, or
    /// cancelled by any of the answer's tokens or `also`.
    pub fn next_chunk(
        &mut self,
        deadline: Instant,
        also: Option<&Cancel>,
    ) -> Result<Option<Bytes>, Failure> {
        let runtime = self.runtime.clone();
        wait(
            &runtime,
            self.response.chunk(),
            deadline,
            &self.cancel,
            also,
        )
    }
}

/// Runs `exchange` on the caller's thread until it is done, `deadline` passes, or a token is
/// triggered; in the last two cases it is dropped, which closes its connection.
fn wait<T>(
    runtime: &Handle,
    exchange: impl Future<Output = Result<T, reqwest::Error>>,
    deadline: Instant,
    cancel: &[Cancel],
    also: Option<&Cancel>,
) -> Result<T, Failure> {
    let mut tokens: Vec<&Cancel> = cancel.iter().collect();
    tokens.extend(also);
    if tokens.iter().any(|t| t.is_triggered()) {
        return Err(Failure::Cancelled);
    }
    runtime.block_on(async {
        tokio::select! {
            biased;
            () = cancel::any(&tokens) => Err(Failure::Cancelled),
            result = exchange => result.map_err(|e| failure(&e)),
            () = tokio::time::sleep_until(deadline.into()) => Err(Failure::Timeout),
        }
    })
}

fn failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Transport(chain(e))
    }
}

struct Slot {
    /// The fork generation (see `forks`) of the process that built the runtime and client.
    generation: u64,
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

/// How many times this process's line has forked: bumped in every child by a `pthread_atfork`
/// handler. A pid would not do: a grandchild can be given its grandparent's recycled pid.
fn forks() -> u64 {
    static FORKS: AtomicU64 = AtomicU64::new(0);
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn in_child() {
        FORKS.fetch_add(1, Relaxed);
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
    FORKS.load(Relaxed)
}

pub struct Http {
    base_url: String,
    /// The pool's default model, and the URL of each method of it (in `Method::ALL`'s
    /// order), parsed once: most calls use them.
    default_model: String,
    default_urls: Vec<reqwest::Url>,
    slot: AtomicPtr<Slot>,
}

fn build_slot() -> Result<Box<Slot>, String> {
    // One worker runs the connections (as the blocking client's one thread did); each
    // caller's thread drives its own request and waits on it.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("gemini-rotator-http")
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the HTTP runtime: {e}"))?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("gemini-rotator/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))?;
    Ok(Box::new(Slot {
        generation: forks(),
        runtime,
        client,
    }))
}

/// An error and its causes, one line: reqwest's top-level message alone rarely says why.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(url).map_err(|e| format!("cannot build the request URL: {e}"))
}

/// The API version of every call that does not name one (`gr_generate`, `gr_call`, ...).
pub const DEFAULT_API_VERSION: &str = "v1beta";

fn model_url(
    base_url: &str,
    version: &str,
    model: &str,
    method: Method,
) -> Result<reqwest::Url, String> {
    parse_url(&format!(
        "{base_url}/{version}/models/{model}{}",
        method.url_suffix()
    ))
}

/// Whether a request or answer header is one a forwarded request keeps: `content-type` and
/// the upload protocol's `x-goog-upload-*`. Every other (the SDK's placeholder key,
/// `authorization`, user agents) is dropped.
pub fn is_forwarded_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("content-type")
        || name
            .get(..14)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-goog-upload-"))
}

impl Http {
    pub fn new(base_url: &str, default_model: &str) -> Result<Http, String> {
        let default_urls = Method::ALL
            .iter()
            .map(|m| model_url(base_url, DEFAULT_API_VERSION, default_model, *m))
            .collect::<Result<_, _>>()?;
        Ok(Http {
            default_model: default_model.to_string(),
            default_urls,
            base_url: base_url.to_string(),
            slot: AtomicPtr::new(Box::into_raw(build_slot()?)),
        })
    }

    fn slot(&self) -> Result<&Slot, String> {
        let current = self.slot.load(Acquire);
        // SAFETY: slots are only ever freed by `drop`, in the process that built them.
        if unsafe { (*current).generation } == forks() {
            return Ok(unsafe { &*current });
        }
        // A forked child: build a runtime and client of its own. The parent's are left
        // alone (leaked).
        let fresh = Box::into_raw(build_slot()?);
        match self.slot.compare_exchange(current, fresh, AcqRel, Acquire) {
            Ok(_) => Ok(unsafe { &*fresh }),
            Err(winner) => {
                // Another thread of this child won; ours is this process's own, so drop it.
                drop(unsafe { Box::from_raw(fresh) });
                Ok(unsafe { &*winner })
            }
        }
    }

    /// The URL of `method` of `model` in API `version` (`v1beta`, `v1`, ...).
    pub fn model_url(
        &self,
        version: &str,
        model: &str,
        method: Method,
    ) -> Result<reqwest::Url, String> {
        if model == self.default_model && version == DEFAULT_API_VERSION {
            if let Some(i) = Method::ALL.iter().position(|m| *m == method) {
                return Ok(self.default_urls[i].clone());
            }
        }
        model_url(&self.base_url, version, model, method)
    }

    /// The URL of a forwarded request: the pool's base URL, then `path_and_query` (which
    /// starts with `/{version}/` or `/upload/{version}/`, checked by the caller).
    pub fn forward_url(&self, path_and_query: &str) -> Result<reqwest::Url, String> {
        parse_url(&format!("{}{path_and_query}", self.base_url))
    }

    /// The URL of one page of the models list.
    pub fn models_url(&self, page_size: u32, page_token: &str) -> Result<reqwest::Url, String> {
        let mut url = parse_url(&format!("{}/v1beta/models", self.base_url))?;
        {
            let mut query = url.query_pairs_mut();
            if page_size > 0 {
                query.append_pair("pageSize", &page_size.to_string());
            }
            if !page_token.is_empty() {
                query.append_pair("pageToken", page_token);
            }
        }
        Ok(url)
    }

    /// Sends a request to `url` with `key`: a POST of `body` (the caller's JSON, untouched;
    /// shared, not copied), or a GET without one, and waits for the answer's status, until
    /// `deadline` or until one of `cancel` is triggered (the answer keeps the tokens for its
    /// body).
    pub fn send(
        &self,
        key: &ApiKey,
        url: reqwest::Url,
        body: Option<Bytes>,
        deadline: Instant,
        cancel: &[&Cancel],
    ) -> Result<Answer, Failure> {
        let method = match body {
            Some(_) => reqwest::Method::POST,
            None => reqwest::Method::GET,
        };
        let json = [("content-type".to_string(), "application/json".to_string())];
        let headers: &[(String, String)] = if body.is_some() { &json } else { &[] };
        self.exchange(key, method, url, headers, body, false, deadline, cancel)
    }

    /// Sends a forwarded request: `method` to `url` with `key`, the caller's `headers` (only
    /// those [`is_forwarded_header`] keeps) and `body` (untouched); the answer keeps its
    /// forwarded headers.
    #[allow(clippy::too_many_arguments)]
    pub fn send_request(
        &self,
        key: &ApiKey,
        method: &str,
        url: reqwest::Url,
        headers: &[(String, String)],
        body: Option<Bytes>,
        deadline: Instant,
        cancel: &[&Cancel],
    ) -> Result<Answer, Failure> {
        let method = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| Failure::Transport(format!("bad HTTP method {method:?}: {e}")))?;
        self.exchange(key, method, url, headers, body, true, deadline, cancel)
    }

    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        key: &ApiKey,
        method: reqwest::Method,
        url: reqwest::Url,
        headers: &[(String, String)],
        body: Option<Bytes>,
        keep_headers: bool,
        deadline: Instant,
        cancel: &[&Cancel],
    ) -> Result<Answer, Failure> {
        let slot = self.slot().map_err(Failure::Transport)?;
        let Ok(mut secret) = reqwest::header::HeaderValue::from_str(key.secret()) else {
            // Configuration checks keys for header-safe characters; this cannot happen.
            return Err(Failure::Transport(
                "the key cannot be sent in an HTTP header".into(),
            ));
        };
        // Marked sensitive: never printed by the HTTP stack's debug output.
        secret.set_sensitive(true);
        let mut request = slot.client.request(method, url);
        for (name, value) in headers {
            if is_forwarded_header(name) {
                request = request.header(name.as_str(), value.as_str());
            }
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let cancel: Vec<Cancel> = cancel.iter().map(|c| (*c).clone()).collect();
        let response = wait(
            slot.runtime.handle(),
            request.header("x-goog-api-key", secret).send(),
            deadline,
            &cancel,
            None,
        )?;
        let headers = if keep_headers {
            response
                .headers()
                .iter()
                .filter(|(name, _)| is_forwarded_header(name.as_str()))
                .filter_map(|(name, value)| {
                    Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(Answer {
            status: response.status().as_u16(),
            headers,
            response,
            runtime: slot.runtime.handle().clone(),
            cancel,
        })
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        let slot = *self.slot.get_mut();
        // SAFETY: we own the slot; it is freed only in the process that built it.
        if unsafe { (*slot).generation } == forks() {
            let Slot {
                runtime, client, ..
            } = *unsafe { Box::from_raw(slot) };
            drop(client);
            // Without waiting for the connections' tasks: a pool may be freed from a thread
            // that is itself inside a runtime (a Rust test's), where a blocking shutdown panics.
            runtime.shutdown_background();
        }
    }
}
