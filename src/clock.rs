//! Time: the monotonic clock that admission runs on, the Pacific-time midnight at which
//! Gemini's per-day quotas reset, and the [`Clock`] a pool reads them through.
//!
//! Admission times are milliseconds of `CLOCK_MONOTONIC`, which every process on a Linux host
//! reads alike, so they can be compared across processes through shared memory. They are offset
//! by one so that 0 never is a time (0 marks an empty slot) and so that a recorded stamp is never
//! earlier than the instant it stands for (see `limiter`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a pool gets the time and how it waits: the host's clocks ([`SystemClock`], the
/// default), or a [`FakeClock`] that tests move by hand, so that waiting, backoff and
/// cooldowns (a per-day one included) are tested without real sleeping.
pub trait Clock: Send + Sync {
    /// Monotonic milliseconds, never 0 (see [`now_ms`]).
    fn now_ms(&self) -> u64;
    /// Seconds since the Unix epoch on the wall clock (for the Pacific day).
    fn unix_secs(&self) -> i64;
    /// Waits `d`.
    fn sleep(&self, d: Duration);
}

/// The host's clocks: `CLOCK_MONOTONIC`, the wall clock, and a real sleep.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
    fn unix_secs(&self) -> i64 {
        unix_now_secs()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A clock that moves only when told to, or when someone sleeps on it (a sleep advances both
/// times by its length at once): what waits for a key or backs off finishes at once, at
/// exactly the time it would have woken.
#[derive(Debug)]
pub struct FakeClock {
    ms: AtomicU64,
    unix: AtomicI64,
}

impl FakeClock {
    /// A clock showing `now_ms` (at least 1) on the monotonic clock and `unix_secs` on the wall.
    pub fn new(now_ms: u64, unix_secs: i64) -> FakeClock {
        FakeClock {
            ms: AtomicU64::new(now_ms.max(1)),
            unix: AtomicI64::new(unix_secs),
        }
    }

    /// Moves both times forward by `ms` milliseconds (the wall clock by the whole seconds the
    /// monotonic one crosses, so the two keep step).
    pub fn advance(&self, ms: u64) {
        let before = self.ms.fetch_add(ms, Relaxed);
        let secs = (before + ms) / 1000 - before / 1000;
        self.unix.fetch_add(secs as i64, Relaxed);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.ms.load(Relaxed)
    }
    fn unix_secs(&self) -> i64 {
        self.unix.load(Relaxed)
    }
    fn sleep(&self, d: Duration) {
        self.advance(d.as_millis() as u64)
    }
}

/// Milliseconds on the host's monotonic clock, plus one: `floor(t_ms) + 1`.
pub fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; CLOCK_MONOTONIC is always available on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    debug_assert_eq!(rc, 0);
    ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000 + 1
}

/// Seconds since the Unix epoch on the wall clock.
pub fn unix_now_secs() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;

/// Days since 1970-01-01 of a proleptic Gregorian civil date.
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil year of a day number.
fn year_of_day(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    yoe + era * 400 + i64::from(month <= 2)
}

/// Day number of the `n`th Sunday (1-based) of a month.
fn nth_sunday(year: i64, month: i64, n: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    // 1970-01-01 was a Thursday: (days + 4) mod 7 is 0 on Sundays.
    let to_sunday = (7 - (first + 4).rem_euclid(7)) % 7;
    first + to_sunday + 7 * (n - 1)
}

/// Whether US Pacific daylight time is in force at a UTC instant (rules in force since 2007:
/// from the second Sunday of March, 02:00 PST, to the first Sunday of November, 02:00 PDT).
fn pacific_dst(unix_secs: i64) -> bool {
    let year = year_of_day(unix_secs.div_euclid(DAY));
    let start = nth_sunday(year, 3, 2) * DAY + 2 * HOUR + 8 * HOUR;
    let end = nth_sunday(year, 11, 1) * DAY + 2 * HOUR + 7 * HOUR;
    (start..end).contains(&unix_secs)
}

/// The next midnight in America/Los_Angeles after `unix_secs`, as Unix seconds. Gemini's
/// requests-per-day quotas reset then.
pub fn next_pacific_midnight(unix_secs: i64) -> i64 {
    let offset = if pacific_dst(unix_secs) {
        -7 * HOUR
    } else {
        -8 * HOUR
    };
    let local_day = (unix_secs + offset).div_euclid(DAY);
    let local_midnight = (local_day + 1) * DAY;
    // Midnight is never inside a transition (they happen at 02:00), so one of the two offsets
    // is consistent: try standard time first.
    let standard = local_midnight + 8 * HOUR;
    if pacific_dst(standard) {
        local_midnight + 7 * HOUR
    } else {
        standard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(y: i64, mo: i64, d: i64, h: i64, mi: i64) -> i64 {
        days_from_civil(y, mo, d) * DAY + h * HOUR + mi * 60
    }

    #[test]
    fn monotonic_ms_is_never_zero_and_never_goes_back() {
        let a = now_ms();
        let b = now_ms();
        assert!(a >= 1 && b >= a);
    }

    #[test]
    fn a_fake_clock_moves_only_when_told_or_slept_on() {
        let c = FakeClock::new(1_500, 1_000);
        assert_eq!((c.now_ms(), c.unix_secs()), (1_500, 1_000));
        c.advance(400);
        assert_eq!((c.now_ms(), c.unix_secs()), (1_900, 1_000));
        c.sleep(Duration::from_millis(200));
        assert_eq!((c.now_ms(), c.unix_secs()), (2_100, 1_001));
        c.sleep(Duration::from_secs(86_400));
        assert_eq!(c.unix_secs(), 87_401);
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-1000, 0, 365, 11_016, 20_000, 25_000] {
            let y = year_of_day(days);
            assert!(days_from_civil(y, 1, 1) <= days && days < days_from_civil(y + 1, 1, 1));
        }
    }

    #[test]
    fn dst_boundaries_of_2026() {
        // 2026: DST from Sunday 8 March 10:00 UTC to Sunday 1 November 09:00 UTC.
        assert!(!pacific_dst(utc(2026, 3, 8, 9, 59)));
        assert!(pacific_dst(utc(2026, 3, 8, 10, 0)));
        assert!(pacific_dst(utc(2026, 11, 1, 8, 59)));
        assert!(!pacific_dst(utc(2026, 11, 1, 9, 0)));
    }

    #[test]
    fn next_midnight_in_winter_summer_and_on_transition_days() {
        // Winter (PST, UTC-8): 2026-11-28 20:53 UTC is 12:53 PST; midnight is 08:00 UTC next day.
        assert_eq!(
            next_pacific_midnight(utc(2026, 11, 28, 20, 53)),
            utc(2026, 11, 29, 8, 0)
        );
        // Summer (PDT, UTC-7).
        assert_eq!(
            next_pacific_midnight(utc(2026, 7, 4, 12, 0)),
            utc(2026, 7, 5, 7, 0)
        );
        // Just before local midnight in summer: 06:59 UTC is 23:59 PDT.
        assert_eq!(
            next_pacific_midnight(utc(2026, 7, 5, 6, 59)),
            utc(2026, 7, 5, 7, 0)
        );
        // Exactly at midnight: the *next* one.
        assert_eq!(
            next_pacific_midnight(utc(2026, 7, 5, 7, 0)),
            utc(2026, 7, 6, 7, 0)
        );
        // The day DST starts (8 March 2026): the day before ends at 08:00 UTC (PST);
        // the day itself ends at 07:00 UTC on 9 March (PDT).
        assert_eq!(
            next_pacific_midnight(utc(2026, 3, 7, 20, 0)),
            utc(2026, 3, 8, 8, 0)
        );
        assert_eq!(
            next_pacific_midnight(utc(2026, 3, 8, 20, 0)),
            utc(2026, 3, 9, 7, 0)
        );
        // The day DST ends (1 November 2026): ends at 08:00 UTC on 2 November (PST).
        assert_eq!(
            next_pacific_midnight(utc(2026, 11, 1, 20, 0)),
            utc(2026, 11, 2, 8, 0)
        );
    }
}
