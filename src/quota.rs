//! A limit as a value: how much of what, per which period.
//!
//! Today a key has one quota, requests per rolling window (`GEMINI_*_RATE_LIMIT` per
//! `GEMINI_ROTATOR_WINDOW_MS`). The shape leaves room for the others the service applies (per
//! Pacific day, input tokens per window): each is a new [`Unit`] or [`Period`], so adding a
//! dimension is adding a quota, and the rules that compare quotas (one key, one limit: see
//! `store::conflict`) work on them unchanged.

use std::fmt;

/// What a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Requests sent.
    Requests,
}

/// Over which period a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    /// Any rolling window of this many milliseconds (see `limiter`).
    Rolling { window_ms: u64 },
}

/// At most `limit` of `unit` per `period`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Quota {
    pub limit: u64,
    pub unit: Unit,
    pub period: Period,
}

impl Quota {
    /// At most `limit` requests in any rolling window of `window_ms`.
    pub const fn requests_per_window(limit: u64, window_ms: u64) -> Quota {
        Quota {
            limit,
            unit: Unit::Requests,
            period: Period::Rolling { window_ms },
        }
    }

    /// The length of the quota's rolling window.
    pub fn window_ms(&self) -> u64 {
        match self.period {
            Period::Rolling { window_ms } => window_ms,
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Requests => "requests",
        };
        match self.period {
            Period::Rolling { window_ms } => write!(f, "{} {unit} per {window_ms} ms", self.limit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quota_says_what_it_allows() {
        let q = Quota::requests_per_window(5, 60_000);
        assert_eq!((q.limit, q.window_ms()), (5, 60_000));
        assert_eq!(q.to_string(), "5 requests per 60000 ms");
        assert_ne!(q, Quota::requests_per_window(5, 30_000));
    }
}
