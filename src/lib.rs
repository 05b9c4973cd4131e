//! gemini-rotator: spread Gemini API traffic over many API keys, from any language.
//!
//! - [`config`]: settings from the environment or JSON, validated.
//! - [`key`]: API keys and their fingerprints; [`health`]: why a key is out of service.
//! - [`quota`]: a limit as a value; [`limiter`]: the exact rolling-window admission rule,
//!   lock-free, pure.
//! - [`clock`]: the clocks a pool reads (real, or fake for tests), and the Pacific day.
//! - [`store`]: the seam to where key state lives (this process, or shared by every process
//!   on the host).
//! - [`pool`]: key selection, one attempt at a time, and the decision of what next.
//! - [`gemini`]: the Gemini wire format (error bodies, response text).
//! - [`http`]: the reused, fork-aware HTTP client, on a runtime the library owns;
//!   [`cancel`]: a token that stops an HTTP exchange from another thread.
//! - [`method`]: the model methods; [`sse`]: the stream's event framing; [`resource`]:
//!   requests as an SDK builds them (routes, API version, resource names and the pin rule).
//! - [`metrics`]: counters, statistics snapshots and the Prometheus exposition.
//! - [`log`]: structured log events.
//! - `ffi`: the C ABI (`include/gemini_rotator.h`).

pub mod cancel;
pub mod clock;
pub mod config;
pub mod error;
pub mod ffi;
pub mod gemini;
pub mod health;
pub mod http;
pub mod key;
pub mod limiter;
pub mod log;
pub mod method;
pub mod metrics;
pub mod pool;
pub mod quota;
pub mod resource;
pub mod sse;
pub mod store;

pub use config::Config;
pub use error::{ApiError, Error};
pub use pool::{
    CallOptions, ForwardRequest, Forwarded, Lease, NoKey, Pool, Response, Stream, Usage,
};
