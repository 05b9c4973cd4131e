//! gemini-rotator: spread Gemini API traffic over many API keys, from any language.
//!
//! - [`config`]: settings from the environment or JSON, validated.
//! - [`limiter`]: the exact rolling-window admission rule, lock-free, pure.
//! - [`store`]: where key state lives (this process, or shared by every process on the host).
//! - [`pool`]: key selection, the HTTP attempt loop and the reaction to upstream failures.
//! - [`gemini`]: the Gemini wire format (error bodies, response text).
//! - [`http`]: the reused, fork-aware HTTP client.
//! - [`metrics`]: statistics snapshots and the Prometheus exposition.
//! - [`log`]: structured log events.
//! - `ffi`: the C ABI (`include/gemini_rotator.h`).

pub mod clock;
pub mod config;
pub mod error;
pub mod ffi;
pub mod gemini;
pub mod http;
pub mod key;
pub mod limiter;
pub mod log;
pub mod metrics;
pub mod pool;
pub mod store;

pub use config::Config;
pub use error::{ApiError, Error};
pub use pool::{CallOptions, Lease, Pool, Response};
