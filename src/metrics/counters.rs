//! What the pool counts, per key and pool-wide, and the latency histogram's buckets.
//!
//! Each counter is one word of a key's or a pool's record, in the order of the enum: the order
//! is part of the shared state file's format, so counters are appended, never reordered.

/// Per-key counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum KeyCounter {
    /// Requests this key was chosen for (every attempt).
    Admitted,
    /// 2xx answers.
    Succeeded,
    /// Times the key's limiter, cooldown or disabled flag turned a request away (a process
    /// then skips the key without asking until the time it named, so skips are not counted).
    Refused,
    /// 429 answers from the service.
    Upstream429,
    /// 400 API_KEY_INVALID answers.
    InvalidKey,
    /// 403 PERMISSION_DENIED answers.
    PermissionDenied,
    /// 500/502/503/504 answers.
    ServerError,
    /// Connection-level failures.
    Transport,
    /// Attempts that ran out of time.
    Timeout,
    /// Other 4xx answers (the caller's request).
    ClientError,
    /// Attempts that were a retry after a transient failure.
    Retries,
}

/// How many [`KeyCounter`]s there are.
pub(crate) const KEY_COUNTERS: usize = KeyCounter::Retries as usize + 1;

/// Pool-wide counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum PoolCounter {
    /// Calls made through the pool.
    Requests,
    /// Calls that returned a response.
    Succeeded,
    /// Calls that returned an error.
    Failed,
    /// Attempts the paid key served because every free key was full.
    PaidFallbacks,
    /// Calls refused because no key could admit them.
    Exhausted,
    /// Upstream attempts timed, and their total in microseconds.
    LatencyCount,
    LatencySumMicros,
    /// Calls served by a fallback of the model they asked for.
    ModelFallbacks,
}

/// How many [`PoolCounter`]s there are.
pub(crate) const POOL_COUNTERS: usize = PoolCounter::ModelFallbacks as usize + 1;

/// Upper bounds (seconds) of the upstream latency histogram's buckets; one more bucket counts
/// the attempts above the last bound.
pub(crate) const LATENCY_BUCKETS_S: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The bucket of an attempt that took `micros` (the last one: above every bound).
pub fn latency_bucket(micros: u64) -> usize {
    let secs = micros as f64 / 1e6;
    LATENCY_BUCKETS_S
        .iter()
        .position(|&b| secs <= b)
        .unwrap_or(LATENCY_BUCKETS_S.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_are_the_ones_the_state_file_was_laid_out_for() {
        // Layout version 2 has 11 key counters and 8 pool counters.
        assert_eq!((KEY_COUNTERS, POOL_COUNTERS), (11, 8));
        assert_eq!(latency_bucket(5_000), 0);
        assert_eq!(latency_bucket(5_001), 1);
        assert_eq!(latency_bucket(31_000_000), LATENCY_BUCKETS_S.len());
    }
}
