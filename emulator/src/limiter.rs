//! Exact quota enforcement for one (project, model), as the real service applies it: requests
//! per rolling window (RPM), input tokens per rolling window (TPM), requests per Pacific day
//! (RPD).
//!
//! Pure logic: every function takes the current time (nanoseconds since the emulator started,
//! for the windows) and the current Pacific day (for the daily count) as arguments, so tests
//! drive it with a fake clock. The windows are exact sliding logs, not calendar minutes: at no
//! instant do the requests (or tokens) accepted in `(now - window, now]` exceed the limit.

use std::collections::VecDeque;

/// The limits that apply to one (project, model); `None` means unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per rolling window.
    pub requests: Option<u32>,
    /// Input tokens per rolling window.
    pub tokens: Option<u64>,
    /// Requests per Pacific day.
    pub daily: Option<u32>,
    /// Length of the rolling window, in nanoseconds.
    pub window_ns: u64,
}

/// Which quota a violation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    /// Requests per window (`GenerateRequestsPerMinutePerProjectPerModel`).
    Requests,
    /// Input tokens per window (`GenerateContentInputTokensPerModelPerMinute`).
    Tokens,
    /// Requests per day (`GenerateRequestsPerDayPerProjectPerModel`).
    Daily,
}

/// One quota a request would exceed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Violation {
    pub dimension: Dimension,
    /// The limit, as the 429 quotes it (`quotaValue`).
    pub limit: u64,
    /// When the request could first be admitted as far as this quota goes; `None` for the
    /// daily quota (the next Pacific midnight) and for a limit of 0 (never).
    pub retry_after_ns: Option<u64>,
}

/// What [`Quota::check`] found.
pub type Checked = Result<(), Vec<Violation>>;

/// The requests one (project, model) has accepted so far.
#[derive(Debug, Default)]
pub struct Quota {
    /// Arrival time, request id and input tokens of accepted requests that may still be in
    /// the window, oldest first. Arrival times never decrease: they are taken under one lock.
    accepted: VecDeque<(u64, u64, u64)>,
    /// Sum of the tokens in `accepted`.
    tokens_in_window: u64,
    /// The Pacific day `used_today` counts.
    day: i64,
    /// Accepted requests on `day`.
    used_today: u64,
}

/// A snapshot of what a quota holds, for the stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub in_window: u64,
    pub tokens_in_window: u64,
    pub today: u64,
}

impl Quota {
    /// Admits request `id` with `tokens` input tokens at `now_ns` on Pacific day `day` if no
    /// limit would be exceeded; otherwise reports every limit that would be. An admitted
    /// request is recorded; a rejected one is not.
    pub fn try_admit(
        &mut self,
        now_ns: u64,
        day: i64,
        id: u64,
        tokens: u64,
        limits: &Limits,
    ) -> Checked {
        self.check(now_ns, day, tokens, limits)?;
        self.accepted.push_back((now_ns, id, tokens));
        self.tokens_in_window += tokens;
        self.used_today += 1;
        Ok(())
    }

    /// What [`Quota::try_admit`] would answer, without recording anything.
    pub fn check(&mut self, now_ns: u64, day: i64, tokens: u64, limits: &Limits) -> Checked {
        self.roll(now_ns, day, limits.window_ns);
        // A limit of 0 means the model is not on the project's tier: the answer lists every
        // zero quota and nothing else, whatever the others say.
        let zero: Vec<Violation> = [
            (Dimension::Requests, limits.requests.map(u64::from)),
            (Dimension::Tokens, limits.tokens),
            (Dimension::Daily, limits.daily.map(u64::from)),
        ]
        .into_iter()
        .filter(|(_, limit)| *limit == Some(0))
        .map(|(dimension, _)| Violation {
            dimension,
            limit: 0,
            retry_after_ns: None,
        })
        .collect();
        if !zero.is_empty() {
            return Err(zero);
        }

        let mut violations = Vec::new();
        if let Some(limit) = limits.requests {
            if self.accepted.len() >= limit as usize {
                // The wait ends when enough of the oldest leave the window for one more.
                let (oldest, _, _) = self.accepted[self.accepted.len() - limit as usize];
                violations.push(Violation {
                    dimension: Dimension::Requests,
                    limit: u64::from(limit),
                    retry_after_ns: Some(oldest + limits.window_ns - now_ns),
                });
            }
        }
        if let Some(limit) = limits.tokens {
            if self.tokens_in_window + tokens > limit {
                violations.push(Violation {
                    dimension: Dimension::Tokens,
                    limit,
                    retry_after_ns: Some(self.token_wait(now_ns, tokens, limit, limits.window_ns)),
                });
            }
        }
        if let Some(limit) = limits.daily {
            if self.used_today >= u64::from(limit) {
                violations.push(Violation {
                    dimension: Dimension::Daily,
                    limit: u64::from(limit),
                    retry_after_ns: None,
                });
            }
        }
        if violations.is_empty() {
            Ok(())
        } else {
            Err(violations)
        }
    }

    /// How long until the window holds room for `tokens` more. A request larger than the
    /// whole limit never fits: it is told to wait a whole window.
    fn token_wait(&self, now_ns: u64, tokens: u64, limit: u64, window_ns: u64) -> u64 {
        if tokens > limit {
            return window_ns;
        }
        let mut held = self.tokens_in_window;
        for &(t, _, used) in &self.accepted {
            held -= used;
            if held + tokens <= limit {
                return t + window_ns - now_ns;
            }
        }
        window_ns
    }

    /// What the quota holds at `now_ns` on `day`.
    pub fn usage(&mut self, now_ns: u64, day: i64, window_ns: u64) -> Usage {
        self.roll(now_ns, day, window_ns);
        Usage {
            in_window: self.accepted.len() as u64,
            tokens_in_window: self.tokens_in_window,
            today: self.used_today,
        }
    }

    /// Drops arrivals at or before `now - window`, and starts a new count on a new day.
    fn roll(&mut self, now_ns: u64, day: i64, window_ns: u64) {
        while let Some(&(t, _, tokens)) = self.accepted.front() {
            if t + window_ns > now_ns {
                break;
            }
            self.accepted.pop_front();
            self.tokens_in_window -= tokens;
        }
        if day != self.day {
            // Days only move forward in practice; a clock set back starts a fresh count too.
            self.day = day;
            self.used_today = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn requests(limit: u32, window_ms: u64) -> Limits {
        Limits {
            requests: Some(limit),
            window_ns: window_ms * MS,
            ..Limits::default()
        }
    }

    fn waits(result: Checked) -> Vec<(Dimension, u64, Option<u64>)> {
        result
            .unwrap_err()
            .into_iter()
            .map(|v| (v.dimension, v.limit, v.retry_after_ns))
            .collect()
    }

    #[test]
    fn admits_up_to_the_limit_then_reports_the_exact_wait() {
        let mut q = Quota::default();
        let l = requests(3, 300);
        assert!(q.try_admit(0, 0, 1, 1, &l).is_ok());
        assert!(q.try_admit(10 * MS, 0, 2, 1, &l).is_ok());
        assert!(q.try_admit(20 * MS, 0, 3, 1, &l).is_ok());
        assert_eq!(
            waits(q.try_admit(100 * MS, 0, 4, 1, &l)),
            [(Dimension::Requests, 3, Some(200 * MS))]
        );
        // One nanosecond before the oldest leaves, still full; exactly then, free.
        assert!(q.try_admit(300 * MS - 1, 0, 5, 1, &l).is_err());
        assert!(q.try_admit(300 * MS, 0, 6, 1, &l).is_ok());
        assert!(q.try_admit(300 * MS, 0, 7, 1, &l).is_err());
    }

    #[test]
    fn never_more_than_the_limit_in_any_window() {
        let (limit, window) = (5usize, 1_000u64);
        let l = Limits {
            requests: Some(limit as u32),
            tokens: Some(40),
            window_ns: window,
            ..Limits::default()
        };
        let mut q = Quota::default();
        let mut accepted = Vec::new();
        let (mut now, mut seed) = (0u64, 0x2545_f491_4f6c_dd1du64);
        for id in 0..5_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            now += seed % 300;
            let tokens = seed % 13 + 1;
            if q.try_admit(now, 0, id, tokens, &l).is_ok() {
                accepted.push((now, tokens));
            }
        }
        for (i, &(end, _)) in accepted.iter().enumerate() {
            let inside: Vec<_> = accepted[..=i]
                .iter()
                .filter(|(t, _)| t + window > end)
                .collect();
            assert!(inside.len() <= limit, "window ending at {end}");
            assert!(
                inside.iter().map(|(_, n)| n).sum::<u64>() <= 40,
                "tokens ending at {end}"
            );
        }
        assert!(accepted.len() > 100);
    }

    #[test]
    fn tokens_wait_until_enough_leave() {
        let mut q = Quota::default();
        let l = Limits {
            tokens: Some(10),
            window_ns: 100 * MS,
            ..Limits::default()
        };
        assert!(q.try_admit(0, 0, 1, 4, &l).is_ok());
        assert!(q.try_admit(10 * MS, 0, 2, 4, &l).is_ok());
        // 8 held; 7 more needs both to leave (the second at 110 ms).
        assert_eq!(
            waits(q.check(20 * MS, 0, 7, &l)),
            [(Dimension::Tokens, 10, Some(90 * MS))]
        );
        // 6 more needs only the first to leave (at 100 ms).
        assert_eq!(
            waits(q.check(20 * MS, 0, 6, &l)),
            [(Dimension::Tokens, 10, Some(80 * MS))]
        );
        assert!(q.check(20 * MS, 0, 2, &l).is_ok());
        // Larger than the limit: never fits, told to wait a window.
        assert_eq!(
            waits(q.check(20 * MS, 0, 11, &l)),
            [(Dimension::Tokens, 10, Some(100 * MS))]
        );
    }

    #[test]
    fn the_daily_count_resets_with_the_day_only() {
        let mut q = Quota::default();
        let l = Limits {
            daily: Some(2),
            window_ns: MS,
            ..Limits::default()
        };
        assert!(q.try_admit(0, 7, 1, 1, &l).is_ok());
        assert!(q.try_admit(5 * MS, 7, 2, 1, &l).is_ok());
        assert_eq!(
            waits(q.try_admit(u64::MAX / 2, 7, 3, 1, &l)),
            [(Dimension::Daily, 2, None)]
        );
        assert!(q.try_admit(u64::MAX / 2, 8, 4, 1, &l).is_ok());
        assert_eq!(q.usage(u64::MAX / 2, 8, MS).today, 1);
    }

    #[test]
    fn several_violations_at_once() {
        let mut q = Quota::default();
        let l = Limits {
            requests: Some(1),
            tokens: Some(5),
            daily: Some(1),
            window_ns: 60_000 * MS,
        };
        assert!(q.try_admit(0, 0, 1, 5, &l).is_ok());
        let found: Vec<Dimension> = waits(q.check(MS, 0, 1, &l)).iter().map(|v| v.0).collect();
        assert_eq!(
            found,
            [Dimension::Requests, Dimension::Tokens, Dimension::Daily]
        );
    }

    #[test]
    fn limit_zero_reports_only_the_zero_quotas() {
        let mut q = Quota::default();
        let l = Limits {
            requests: Some(0),
            tokens: Some(100),
            daily: Some(0),
            window_ns: MS,
        };
        assert_eq!(
            waits(q.try_admit(0, 0, 1, 1, &l)),
            [(Dimension::Requests, 0, None), (Dimension::Daily, 0, None)]
        );
    }
}
