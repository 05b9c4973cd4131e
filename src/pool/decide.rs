//! What next after an attempt: a pure function of what happened, where the call stands and
//! the time, so that every reaction (and all of its cooldown and backoff arithmetic) is in one
//! place and is tested without a service, a clock or a sleep.

use super::attempt::Happened;
use crate::clock::next_pacific_midnight;
use crate::config::Config;
use crate::error::Error;
use crate::gemini::{Verdict, Violation, ViolationKind};
use crate::health::{CooldownCause, DisabledReason};
use crate::store::LimitKind;

/// The longest cooldown a `retryDelay` can impose (a per-day quota cools until midnight
/// Pacific time instead).
pub(crate) const MAX_COOLDOWN_MS: u64 = 86_400_000;

/// How long a model that is not on a group's tier (`limit: 0`) stays out before the pool looks
/// again (the tier may change).
pub(crate) const UNAVAILABLE_RECHECK_MS: u64 = 86_400_000;

/// The first capacity backoff (a 429 without quota details); it doubles with each one in a row,
/// up to a quarter of the window.
pub(crate) const CAPACITY_BACKOFF_MS: u64 = 1_000;

/// What the call does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The attempt succeeded: its answer is the call's.
    Return,
    /// The attempt's failure is the call's (the caller's own error, a timeout, or a transient
    /// failure with no retry left).
    Fail,
    /// A transient failure: wait this many milliseconds, then try again (on any key).
    RetryAfter(u64),
    /// The key cannot serve: apply this to it and try another key at once.
    MoveOn(Penalty),
}

/// What happens to a key, or its quota group's models, when it cannot serve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Penalty {
    /// The group's models the answer names are out (one entry per model, the longest wait of
    /// its violations), and limits lower than configured are lowered.
    Quota(Vec<QuotaHit>),
    /// The key is out until an operator enables it.
    Disable(DisabledReason),
}

/// What a 429 says about one model of the key's quota group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QuotaHit {
    /// The model the violation names; `None`: the request's.
    pub model: Option<String>,
    pub wait: Wait,
    /// Limits the service says are lower than (or as low as) the configured ones.
    pub lower: Vec<(LimitKind, u64)>,
}

/// How long a (group, model) is out (store times).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    CoolDown {
        until: u64,
        cause: CooldownCause,
    },
    /// Not on the group's tier: look again at `until`.
    Unavailable {
        until: u64,
    },
}

impl Wait {
    fn until(&self) -> u64 {
        match *self {
            Wait::CoolDown { until, .. } | Wait::Unavailable { until } => until,
        }
    }
}

/// The configuration the decisions read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub max_retries: u32,
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// The cooldown of a 429 that names no delay.
    pub window_ms: u64,
}

impl Policy {
    pub fn of(config: &Config) -> Policy {
        Policy {
            max_retries: config.max_retries,
            retry_base_ms: config.retry_base_ms,
            retry_max_ms: config.retry_max_ms,
            window_ms: config.window_ms,
        }
    }
}

/// Where a call stands between attempts.
#[derive(Debug)]
pub(crate) struct Progress {
    /// When the call started, its deadline, and until when it may wait for a key (store times).
    pub started: u64,
    pub deadline: u64,
    pub wait_until: u64,
    /// Attempts sent, and how many of them retried a transient failure.
    pub attempts: u32,
    pub retries: u32,
    /// What the service (or the connection) last said in this call, for the final error.
    pub last_failure: Option<Error>,
}

impl Progress {
    /// A call starting at `now` with `budget_ms` in all, willing to wait `max_wait_ms` of it.
    pub fn start(now: u64, budget_ms: u64, max_wait_ms: u64) -> Progress {
        let deadline = now.saturating_add(budget_ms);
        Progress {
            started: now,
            deadline,
            wait_until: now.saturating_add(max_wait_ms).min(deadline),
            attempts: 0,
            retries: 0,
            last_failure: None,
        }
    }
}

/// What to do after `happened`, at store time `now` (`unix_secs` on the wall clock, for the
/// Pacific day); `draw` is a uniform random word for the backoff's jitter; `capacity_streak`
/// the capacity 429s in a row the (group, model) has had before this answer.
pub(crate) fn next(
    happened: &Happened,
    progress: &Progress,
    now: u64,
    unix_secs: i64,
    draw: u64,
    capacity_streak: u32,
    policy: &Policy,
) -> Next {
    let verdict = match happened {
        Happened::TimedOut => return Next::Fail,
        Happened::Transport(_) => return back_off(progress, now, draw, policy),
        Happened::Answered { verdict, .. } => verdict,
    };
    match verdict {
        Verdict::Success => Next::Return,
        Verdict::Caller => Next::Fail,
        Verdict::Transient => back_off(progress, now, draw, policy),
        Verdict::KeyDead(reason) => Next::MoveOn(Penalty::Disable(*reason)),
        Verdict::RateLimited {
            delay_ms,
            violations,
        } => Next::MoveOn(Penalty::Quota(quota_hits(
            *delay_ms,
            violations,
            now,
            unix_secs,
            capacity_streak,
            policy.window_ms,
        ))),
    }
}

/// What a 429 means, per model it names: a per-day quota spends the model until midnight, a
/// per-minute one cools it for the answer's delay, a quota of 0 makes it unavailable, and no
/// violation at all is the service's capacity (a short backoff, doubling with each in a row,
/// capped at a quarter of the window). Several violations of one model: the longest wait wins.
pub(crate) fn quota_hits(
    delay_ms: Option<u64>,
    violations: &[Violation],
    now: u64,
    unix_secs: i64,
    capacity_streak: u32,
    window_ms: u64,
) -> Vec<QuotaHit> {
    if violations.is_empty() {
        let cap = (window_ms / 4).max(1);
        let backoff = CAPACITY_BACKOFF_MS
            .saturating_mul(1u64 << capacity_streak.min(30))
            .min(cap);
        return vec![QuotaHit {
            model: None,
            wait: Wait::CoolDown {
                until: now.saturating_add(backoff),
                cause: CooldownCause::Capacity,
            },
            lower: vec![],
        }];
    }
    let mut hits: Vec<QuotaHit> = Vec::new();
    for v in violations {
        let kind = v.kind();
        let wait = if v.value == Some(0) {
            Wait::Unavailable {
                until: now.saturating_add(UNAVAILABLE_RECHECK_MS),
            }
        } else {
            let per_day = kind == ViolationKind::RequestsPerDay;
            let (until, cause) = cooldown(delay_ms, per_day, now, unix_secs, window_ms);
            Wait::CoolDown { until, cause }
        };
        let lower = match (v.value, kind) {
            (Some(0), _) => None,
            (Some(n), ViolationKind::RequestsPerDay) => Some((LimitKind::Daily, n)),
            (Some(n), ViolationKind::RequestsPerMinute) => Some((LimitKind::Rate, n)),
            (Some(n), ViolationKind::InputTokensPerMinute) => Some((LimitKind::Tokens, n)),
            _ => None,
        };
        match hits.iter_mut().find(|h| h.model == v.model) {
            Some(hit) => {
                if wait.until() > hit.wait.until() {
                    hit.wait = wait;
                }
                hit.lower.extend(lower);
            }
            None => hits.push(QuotaHit {
                model: v.model.clone(),
                wait,
                lower: lower.into_iter().collect(),
            }),
        }
    }
    hits
}

/// Until when a key that answered 429 cools: a per-day quota until the next midnight Pacific
/// time (whatever delay the answer names); otherwise the answer's delay, or one window when it
/// names none, from 1 ms to a day (the delay comes from the wire).
pub(crate) fn cooldown(
    delay_ms: Option<u64>,
    per_day: bool,
    now: u64,
    unix_secs: i64,
    window_ms: u64,
) -> (u64, CooldownCause) {
    if per_day {
        let wait_s = (next_pacific_midnight(unix_secs) - unix_secs).max(1) as u64;
        return (
            now.saturating_add(wait_s.saturating_mul(1000)),
            CooldownCause::PerDay,
        );
    }
    let delay = delay_ms.unwrap_or(window_ms).clamp(1, MAX_COOLDOWN_MS);
    (now.saturating_add(delay), CooldownCause::PerMinute)
}

/// After a transient failure: fail once the retries are spent or the backoff would outlast the
/// deadline, else wait an exponentially growing, fully jittered time.
fn back_off(progress: &Progress, now: u64, draw: u64, policy: &Policy) -> Next {
    if progress.retries >= policy.max_retries {
        return Next::Fail;
    }
    let ceiling = policy
        .retry_base_ms
        .saturating_mul(1u64 << progress.retries.min(20))
        .min(policy.retry_max_ms);
    let sleep = draw % (ceiling + 1);
    if now.saturating_add(sleep) >= progress.deadline {
        return Next::Fail;
    }
    Next::RetryAfter(sleep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemini::ErrorBody;

    const POLICY: Policy = Policy {
        max_retries: 3,
        retry_base_ms: 100,
        retry_max_ms: 1_000,
        window_ms: 60_000,
    };

    fn answer(verdict: Verdict) -> Happened {
        Happened::Answered {
            status: 0,
            body: bytes::Bytes::new(),
            error: Some(ErrorBody::default()),
            verdict,
        }
    }

    /// Unix seconds of a UTC time in 2026.
    fn utc_2026(month: u32, day: u32, hour: i64, minute: i64) -> i64 {
        let days_before_month = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let days = 20_454 + days_before_month[month as usize - 1] + day as i64 - 1; // 2026-01-01
        days * 86_400 + hour * 3_600 + minute * 60
    }

    #[test]
    fn success_returns_and_the_callers_errors_and_timeouts_fail() {
        let p = Progress::start(1_000, 10_000, 0);
        assert_eq!(
            next(&answer(Verdict::Success), &p, 1_500, 0, 0, 0, &POLICY),
            Next::Return
        );
        assert_eq!(
            next(&answer(Verdict::Caller), &p, 1_500, 0, 0, 0, &POLICY),
            Next::Fail
        );
        assert_eq!(
            next(&Happened::TimedOut, &p, 1_500, 0, 0, 0, &POLICY),
            Next::Fail
        );
    }

    #[test]
    fn a_dead_key_is_disabled_and_the_call_moves_on() {
        let p = Progress::start(1_000, 10_000, 0);
        let dead = answer(Verdict::KeyDead(DisabledReason::Leaked));
        assert_eq!(
            next(&dead, &p, 1_500, 0, 0, 0, &POLICY),
            Next::MoveOn(Penalty::Disable(DisabledReason::Leaked))
        );
    }

    fn violation(id: &str, model: Option<&str>, value: u64) -> Violation {
        Violation {
            quota_id: id.to_string(),
            model: model.map(str::to_string),
            value: Some(value),
        }
    }

    const RPM: &str = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier";
    const RPD: &str = "GenerateRequestsPerDayPerProjectPerModel-FreeTier";
    const TPM: &str = "GenerateContentInputTokensPerModelPerMinute-FreeTier";

    #[test]
    fn a_per_minute_429_cools_its_model_for_its_delay_or_a_window_from_one_ms_to_a_day() {
        let p = Progress::start(1_000, 10_000, 0);
        let limited = |delay_ms, kind: &str| {
            let h = answer(Verdict::RateLimited {
                delay_ms,
                violations: vec![violation(kind, Some("gemini-3-flash"), 5)],
            });
            match next(&h, &p, 5_000, 0, 0, 0, &POLICY) {
                Next::MoveOn(Penalty::Quota(hits)) => {
                    assert_eq!(hits.len(), 1);
                    assert_eq!(hits[0].model.as_deref(), Some("gemini-3-flash"));
                    match hits[0].wait {
                        Wait::CoolDown { until, cause } => {
                            assert_eq!(cause, CooldownCause::PerMinute);
                            until - 5_000
                        }
                        other => panic!("{other:?}"),
                    }
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(limited(Some(26_000), RPM), 26_000);
        assert_eq!(limited(Some(26_000), TPM), 26_000, "tokens too");
        assert_eq!(limited(None, RPM), 60_000, "no delay named: one window");
        assert_eq!(limited(Some(0), RPM), 1);
        assert_eq!(limited(Some(u64::MAX), RPM), MAX_COOLDOWN_MS);
    }

    #[test]
    fn a_quota_of_zero_makes_the_model_unavailable_for_a_day() {
        let hits = quota_hits(
            None,
            &[violation(RPM, Some("gemini-3-pro"), 0)],
            100,
            0,
            0,
            60_000,
        );
        assert_eq!(
            hits,
            vec![QuotaHit {
                model: Some("gemini-3-pro".into()),
                wait: Wait::Unavailable {
                    until: 100 + UNAVAILABLE_RECHECK_MS
                },
                lower: vec![],
            }]
        );
    }

    #[test]
    fn a_429_without_details_backs_off_from_a_second_doubling_to_a_quarter_window() {
        let wait = |streak| match &quota_hits(None, &[], 1_000, 0, streak, 60_000)[0] {
            QuotaHit {
                model: None,
                wait: Wait::CoolDown { until, cause },
                ..
            } => {
                assert_eq!(*cause, CooldownCause::Capacity);
                until - 1_000
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            [wait(0), wait(1), wait(2), wait(3), wait(4), wait(40)],
            [1_000, 2_000, 4_000, 8_000, 15_000, 15_000]
        );
    }

    #[test]
    fn several_violations_the_longest_wait_wins_per_model_and_lower_values_are_kept() {
        let unix = utc_2026(11, 28, 20, 53); // 11 h 7 min before Pacific midnight
        let hits = quota_hits(
            Some(20_000),
            &[
                violation(RPM, Some("m"), 5),
                violation(RPD, Some("m"), 15),
                violation(TPM, Some("other"), 1_000),
            ],
            0,
            unix,
            0,
            60_000,
        );
        assert_eq!(hits.len(), 2);
        assert_eq!(
            hits[0].wait,
            Wait::CoolDown {
                until: (11 * 3_600 + 7 * 60) * 1_000,
                cause: CooldownCause::PerDay
            }
        );
        assert_eq!(
            hits[0].lower,
            vec![(LimitKind::Rate, 5), (LimitKind::Daily, 15)]
        );
        assert_eq!(hits[1].model.as_deref(), Some("other"));
        assert_eq!(hits[1].lower, vec![(LimitKind::Tokens, 1_000)]);
    }

    #[test]
    fn a_per_day_429_cools_until_pacific_midnight_whatever_its_delay() {
        // 2026-11-28 20:53 UTC is 12:53 PST: midnight is 08:00 UTC the next day, 11 h 7 min on.
        let unix = utc_2026(11, 28, 20, 53);
        let (until, cause) = cooldown(Some(10_000), true, 7_000, unix, 60_000);
        assert_eq!(cause, CooldownCause::PerDay);
        assert_eq!(until - 7_000, (11 * 3_600 + 7 * 60) * 1_000);
        // On the day daylight time starts (8 March 2026), the day is 23 hours long: from
        // 00:30 PST (08:30 UTC) midnight is 22 h 30 min on, at 07:00 UTC on 9 March.
        let (until, _) = cooldown(None, true, 1, utc_2026(3, 8, 8, 30), 60_000);
        assert_eq!(until - 1, (22 * 3_600 + 30 * 60) * 1_000);
        // On the day it ends (1 November 2026), 25 hours: from 00:30 PDT (07:30 UTC) midnight
        // is 24 h 30 min on, at 08:00 UTC on 2 November.
        let (until, _) = cooldown(None, true, 1, utc_2026(11, 1, 7, 30), 60_000);
        assert_eq!(until - 1, (24 * 3_600 + 30 * 60) * 1_000);
        // A second before midnight: at least one second.
        let (until, _) = cooldown(None, true, 1, utc_2026(11, 29, 7, 59) + 59, 60_000);
        assert_eq!(until - 1, 1_000);
    }

    #[test]
    fn transient_failures_back_off_exponentially_with_full_jitter_until_spent() {
        let mut p = Progress::start(1_000, 100_000, 0);
        let transient = answer(Verdict::Transient);
        // The draw picks within [0, ceiling]: ceilings 100, 200, 400 for retries 0, 1, 2.
        for (retries, ceiling) in [(0, 100), (1, 200), (2, 400)] {
            p.retries = retries;
            assert_eq!(
                next(&transient, &p, 2_000, 0, ceiling, 0, &POLICY),
                Next::RetryAfter(ceiling)
            );
            assert_eq!(
                next(&transient, &p, 2_000, 0, ceiling + 1, 0, &POLICY),
                Next::RetryAfter(0)
            );
        }
        p.retries = 3;
        assert_eq!(
            next(&transient, &p, 2_000, 0, 5, 0, &POLICY),
            Next::Fail,
            "spent"
        );
        let transport = Happened::Transport("connection reset".into());
        p.retries = 0;
        assert_eq!(
            next(&transport, &p, 2_000, 0, 7, 0, &POLICY),
            Next::RetryAfter(7)
        );
    }

    #[test]
    fn the_backoff_is_capped_and_never_outlasts_the_deadline() {
        let mut p = Progress::start(1_000, 10_000, 0);
        p.retries = 2;
        let policy = Policy {
            max_retries: 10,
            retry_max_ms: 250,
            ..POLICY
        };
        let transient = answer(Verdict::Transient);
        assert_eq!(
            next(&transient, &p, 2_000, 0, 250, 0, &policy),
            Next::RetryAfter(250)
        );
        assert_eq!(
            next(&transient, &p, 2_000, 0, 251, 0, &policy),
            Next::RetryAfter(0)
        );
        // Deadline 11,000: a 250 ms backoff from 10,750 would reach it.
        assert_eq!(next(&transient, &p, 10_750, 0, 250, 0, &policy), Next::Fail);
        assert_eq!(
            next(&transient, &p, 10_749, 0, 250, 0, &policy),
            Next::RetryAfter(250)
        );
    }

    #[test]
    fn a_call_waits_for_a_key_at_most_its_budget() {
        let p = Progress::start(1_000, 5_000, 60_000);
        assert_eq!((p.deadline, p.wait_until), (6_000, 6_000));
        let p = Progress::start(1_000, 5_000, 2_000);
        assert_eq!((p.deadline, p.wait_until), (6_000, 3_000));
    }
}
