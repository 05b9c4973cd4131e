//! The HTTP client: one reused, keep-alive reqwest blocking client per pool, rustls TLS, the key
//! in the `x-goog-api-key` header and never in the URL.
//!
//! A reqwest blocking client runs its connections on a runtime thread, and threads do not
//! survive `fork`. So the client remembers the fork generation that built it; a forked child
//! builds its own on first use, and never drops the parent's (dropping it would wait for a
//! thread that does not exist in the child).

use crate::key::ApiKey;
use bytes::Bytes;
use std::sync::atomic::{
    AtomicPtr, AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed,
};
use std::time::Duration;

/// Why an HTTP exchange brought no answer.
#[derive(Debug)]
pub enum Failure {
    /// No answer within the time given.
    Timeout,
    /// Connecting, sending or reading failed.
    Transport(String),
}

/// The service's answer once its status is in: the body is read separately
/// ([`Answer::read_body`]), so that a caller can look at the status first (and a stream can
/// be read as it comes).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    response: reqwest::blocking::Response,
}

impl Answer {
    /// The whole body, as the service sent it (no decoding).
    pub fn read_body(self) -> Result<Bytes, Failure> {
        self.response.bytes().map_err(|e| failure(&e))
    }
}

fn failure(e: &reqwest::Error) -> Failure {
    if e.is_timeout() {
        Failure::Timeout
    } else {
        Failure::Transport(chain(e))
    }
}

struct Slot {
    /// The fork generation (see `forks`) of the process that built the client.
    generation: u64,
    client: reqwest::blocking::Client,
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
    /// The URL for the pool's default model, parsed once (most calls use it).
    default_url: (String, reqwest::Url),
    slot: AtomicPtr<Slot>,
}

fn build_slot() -> Result<Box<Slot>, String> {
    let client = reqwest::blocking::Client::builder()
        .user_agent(concat!("gemini-rotator/", env!("CARGO_PKG_VERSION")))
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        // Per-request timeouts are set on each request from the call's remaining budget.
        .timeout(None)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", chain(&e)))?;
    Ok(Box::new(Slot {
        generation: forks(),
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

impl Http {
    pub fn new(base_url: &str, default_model: &str) -> Result<Http, String> {
        let url = format!("{base_url}/v1beta/models/{default_model}:generateContent");
        let parsed =
            reqwest::Url::parse(&url).map_err(|e| format!("cannot build the request URL: {e}"))?;
        Ok(Http {
            default_url: (default_model.to_string(), parsed),
            base_url: base_url.to_string(),
            slot: AtomicPtr::new(Box::into_raw(build_slot()?)),
        })
    }

    fn client(&self) -> Result<&reqwest::blocking::Client, String> {
        let current = self.slot.load(Acquire);
        // SAFETY: slots are only ever freed by `drop`, in the process that built them.
        if unsafe { (*current).generation } == forks() {
            return Ok(unsafe { &(*current).client });
        }
        // A forked child: build a client of its own. The parent's slot is left alone (leaked).
        let fresh = Box::into_raw(build_slot()?);
        match self.slot.compare_exchange(current, fresh, AcqRel, Acquire) {
            Ok(_) => Ok(unsafe { &(*fresh).client }),
            Err(winner) => {
                // Another thread of this child won; ours is this process's own, so drop it.
                drop(unsafe { Box::from_raw(fresh) });
                Ok(unsafe { &(*winner).client })
            }
        }
    }

    /// The `generateContent` URL for a model.
    pub fn generate_url(&self, model: &str) -> Result<reqwest::Url, String> {
        if model == self.default_url.0 {
            return Ok(self.default_url.1.clone());
        }
        let url = format!("{}/v1beta/models/{model}:generateContent", self.base_url);
        reqwest::Url::parse(&url).map_err(|e| format!("cannot build the request URL: {e}"))
    }

    /// POSTs `body` (the caller's JSON, untouched; shared, not copied) to `model`'s
    /// `generateContent` with `key`, and waits for the answer's status.
    pub fn send(
        &self,
        key: &ApiKey,
        model: &str,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let client = self.client().map_err(Failure::Transport)?;
        let Ok(mut secret) = reqwest::header::HeaderValue::from_str(key.secret()) else {
            // Configuration checks keys for header-safe characters; this cannot happen.
            return Err(Failure::Transport(
                "the key cannot be sent in an HTTP header".into(),
            ));
        };
        // Marked sensitive: never printed by the HTTP stack's debug output.
        secret.set_sensitive(true);
        let url = self.generate_url(model).map_err(Failure::Transport)?;
        let response = client
            .post(url)
            .header("x-goog-api-key", secret)
            .header("content-type", "application/json")
            .timeout(timeout)
            .body(body)
            .send()
            .map_err(|e| failure(&e))?;
        Ok(Answer {
            status: response.status().as_u16(),
            response,
        })
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        let slot = *self.slot.get_mut();
        // SAFETY: we own the slot; it is freed only in the process that built it.
        if unsafe { (*slot).generation } == forks() {
            drop(unsafe { Box::from_raw(slot) });
        }
    }
}
