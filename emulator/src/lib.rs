//! A Gemini API emulator for gemini-rotator's tests, benchmarks and demo.
//!
//! It serves the Gemini API on loopback (`generateContent`, `streamGenerateContent`,
//! `countTokens`, `embedContent`, `batchEmbedContents`, the models list, files with their
//! resumable upload, cached contents, under `v1` and `v1beta`) with the real service's answer
//! and error shapes, keeps files and cached contents to the project that made them, enforces quotas per
//! (project, model) as Google does (requests and input tokens per rolling window, requests per
//! Pacific day, `limit: 0`), injects faults on demand, and records what it saw (counters and a
//! request log) without ever showing a key.
//!
//! ```no_run
//! use gemini_emulator::{Emulator, EmulatorConfig, Fault, FaultKind, KeySpec};
//!
//! let emulator = Emulator::start(EmulatorConfig::with_keys(vec![
//!     KeySpec::new("key-a", "a").with_limit(3, 300),
//! ]))?;
//! emulator.add_fault(Fault::new(FaultKind::Http503).for_label("a").times(1));
//! println!("POST {}", emulator.generate_url("gemini-3-flash"));
//! # Ok::<(), std::io::Error>(())
//! ```

mod api;
mod caches;
mod config;
mod control;
mod embeddings;
mod errors;
mod faults;
mod files;
mod fingerprint;
mod http;
mod limiter;
mod method;
mod models;
mod pacific;
mod paging;
mod request;
mod resources;
mod responses;
mod server;
mod state;
mod stats;
mod stream;

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use config::{ConfigError, EmulatorConfig, KeySpec, ModelLimits, StreamConfig};
pub use faults::{Fault, FaultKind};
pub use method::Method;
pub use resources::ResourceView;
pub use state::ClockView;
pub use stats::{KeyStats, LogEntry, ModelStats, ProjectStats, Stats, StreamLog};

use state::Shared;

/// Tokio worker threads when the configuration does not say.
const DEFAULT_WORKER_THREADS: usize = 2;

/// A running emulator. It serves until dropped.
///
/// All methods take `&self` and may be called from any thread while requests are served.
#[derive(Debug)]
pub struct Emulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` with a port chosen by the system.
    ///
    /// Returns once the socket is listening. Serving happens on a dedicated tokio runtime in
    /// background threads. Fails with `InvalidInput` for an invalid configuration.
    pub fn start(config: EmulatorConfig) -> io::Result<Emulator> {
        Emulator::start_on_port(config, 0)
    }

    /// Like [`Emulator::start`], on a given port (0 lets the system choose).
    pub fn start_on_port(config: EmulatorConfig, port: u16) -> io::Result<Emulator> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let shared = Shared::new(&config);

        let listener = StdTcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.worker_threads.unwrap_or(DEFAULT_WORKER_THREADS))
            .thread_name("gemini-emulator-worker")
            .enable_all()
            .build()?;
        let listener = {
            let _context = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };

        shared.set_base_url(format!("http://{addr}"));

        let (shutdown, shutdown_rx) = oneshot::channel();
        let serving = Arc::clone(&shared);
        // The runtime lives on its own thread, so that dropping the emulator never drops a
        // runtime inside another runtime's async context.
        let thread = std::thread::Builder::new()
            .name("gemini-emulator".into())
            .spawn(move || {
                runtime.block_on(server::serve(listener, serving, shutdown_rx));
                // Dropping the runtime cancels whatever the grace period did not finish.
                drop(runtime);
            })?;

        Ok(Emulator {
            addr,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The port the emulator listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The full `generateContent` URL for `model` (API version `v1beta`).
    pub fn generate_url(&self, model: &str) -> String {
        format!("{}/v1beta/models/{model}:generateContent", self.base_url())
    }

    /// The URL of `method` on `model` (API version `v1beta`); `streamGenerateContent` gets
    /// `?alt=sse`.
    pub fn model_url(&self, model: &str, method: Method) -> String {
        let base = self.base_url();
        match method {
            Method::ListModels => format!("{base}/v1beta/models"),
            Method::GetModel => format!("{base}/v1beta/models/{model}"),
            Method::StreamGenerateContent => {
                format!("{base}/v1beta/models/{model}:streamGenerateContent?alt=sse")
            }
            _ => format!("{base}/v1beta/models/{model}:{method}"),
        }
    }

    /// A snapshot of the counters (the JSON of `GET /_emulator/stats`).
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Every finished request, in arrival order (`GET /_emulator/log`).
    pub fn log(&self) -> Vec<LogEntry> {
        self.shared.log()
    }

    /// Every live file, open upload and cached content, with the project and key label that
    /// own it (`GET /_emulator/resources`).
    pub fn resources(&self) -> Vec<ResourceView> {
        self.shared.resource_views()
    }

    /// Adds a fault after the existing ones.
    pub fn add_fault(&self, fault: Fault) {
        self.shared.add_fault(fault);
    }

    /// Adds a key, or replaces the key with the same label (its project's quota history is
    /// kept). If another label had the same secret, the secret now belongs to this label.
    /// Fails when the spec is invalid, or another key of its project sets other quotas.
    pub fn set_key(&self, spec: KeySpec) -> Result<(), ConfigError> {
        spec.validate()?;
        self.shared.set_key(spec)
    }

    /// The emulator's wall clock, which decides the Pacific day of the daily quotas.
    pub fn clock(&self) -> ClockView {
        self.shared.clock()
    }

    /// Sets the wall clock to `unix_ms` (milliseconds since the Unix epoch); it runs on
    /// from there. Rolling windows do not depend on it.
    pub fn set_clock(&self, unix_ms: i64) {
        self.shared.set_clock(unix_ms);
    }

    /// Sets the wall clock from RFC 3339 text (`2026-03-08T09:59:59Z`).
    pub fn set_clock_rfc3339(&self, text: &str) -> Result<(), ConfigError> {
        let unix_ms = pacific::parse_rfc3339(text).map_err(ConfigError)?;
        self.shared.set_clock(unix_ms);
        Ok(())
    }

    /// Moves the wall clock by `ms` milliseconds (negative: back).
    pub fn advance_clock(&self, ms: i64) {
        self.shared.advance_clock(ms);
    }

    /// Clears counters, the log, faults, recorded bodies, quota state, files, uploads and
    /// cached contents; keys and the clock stay. Requests in flight during the reset are not recorded.
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// The body of the last request made with the key of `label`, when the configuration
    /// set `record_bodies`.
    pub fn last_body(&self, label: &str) -> Option<String> {
        self.shared.last_body(label)
    }
}

impl Drop for Emulator {
    /// Stops accepting, lets requests in flight finish briefly, closes every connection and
    /// waits for the server thread.
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
