//! A limit as a value: how much of what, per which period.
//!
//! The service applies three per (project, model), and so does the pool: requests per rolling
//! window (`GEMINI_*_RATE_LIMIT` per `GEMINI_ROTATOR_WINDOW_MS`), requests per Pacific day
//! (`GEMINI_*_DAILY_LIMIT`) and input tokens per rolling window (`GEMINI_*_TOKEN_LIMIT`). Each
//! is a [`Quota`]; a record of a (quota group, model) holds a [`Limits`], and the rules that
//! compare them (one group and model, one set of limits: see `store::conflict`) work on the
//! values.

use std::fmt;

/// What a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Unit {
    /// Requests sent.
    Requests,
    /// Input tokens sent (estimated before sending, corrected from the answer).
    InputTokens,
}

/// Over which period a quota counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    /// Any rolling window of this many milliseconds (see `limiter`).
    Rolling { window_ms: u64 },
    /// A calendar day in America/Los_Angeles, midnight to midnight (23 or 25 hours on the days
    /// daylight saving time starts or ends).
    PacificDay,
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

    /// At most `limit` requests per Pacific day.
    pub const fn requests_per_day(limit: u64) -> Quota {
        Quota {
            limit,
            unit: Unit::Requests,
            period: Period::PacificDay,
        }
    }

    /// At most `limit` input tokens in any rolling window of `window_ms`.
    pub const fn tokens_per_window(limit: u64, window_ms: u64) -> Quota {
        Quota {
            limit,
            unit: Unit::InputTokens,
            period: Period::Rolling { window_ms },
        }
    }

    /// The length of the quota's rolling window (0 for a daily quota).
    pub fn window_ms(&self) -> u64 {
        match self.period {
            Period::Rolling { window_ms } => window_ms,
            Period::PacificDay => 0,
        }
    }
}

impl fmt::Display for Quota {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Requests => "requests",
            Unit::InputTokens => "input tokens",
        };
        match self.period {
            Period::Rolling { window_ms } => write!(f, "{} {unit} per {window_ms} ms", self.limit),
            Period::PacificDay => write!(f, "{} {unit} per Pacific day", self.limit),
        }
    }
}

/// The three limits of one (quota group, model): requests per window always; per day and
/// tokens per window when configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Limits {
    pub rate: Quota,
    pub daily: Option<Quota>,
    pub tokens: Option<Quota>,
}

impl Limits {
    /// The limits as a list, for messages.
    pub fn quotas(&self) -> impl Iterator<Item = Quota> {
        [Some(self.rate), self.daily, self.tokens]
            .into_iter()
            .flatten()
    }
}

impl fmt::Display for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list: Vec<String> = self.quotas().map(|q| q.to_string()).collect();
        f.write_str(&list.join(", "))
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
        assert_eq!(
            Quota::requests_per_day(20).to_string(),
            "20 requests per Pacific day"
        );
        assert_eq!(
            Quota::tokens_per_window(250_000, 60_000).to_string(),
            "250000 input tokens per 60000 ms"
        );
        let limits = Limits {
            rate: q,
            daily: Some(Quota::requests_per_day(20)),
            tokens: None,
        };
        assert_eq!(
            limits.to_string(),
            "5 requests per 60000 ms, 20 requests per Pacific day"
        );
    }
}
