//! Exact per-key rate enforcement, as the real service does it.
//!
//! Pure logic: every function takes the current time (nanoseconds since the emulator started)
//! as an argument, so tests can drive it with a fake clock.

use std::collections::VecDeque;

/// Which of a key's quotas turned a request away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exceeded {
    /// The rolling window is full; a slot frees up after `retry_after_ns`.
    Window { limit: u32, retry_after_ns: u64 },
    /// The daily allowance is spent; it does not come back within the emulator's life.
    Daily { limit: u32 },
}

/// The quotas of one key and the requests they have accepted so far.
#[derive(Debug, Default)]
pub struct KeyQuota {
    /// Arrival times (and request ids) of accepted requests that may still be in the window,
    /// oldest first. Arrival times never decrease because they are taken under one lock.
    accepted: VecDeque<(u64, u64)>,
    /// Accepted requests counted against the daily limit.
    used_today: u64,
}

impl KeyQuota {
    /// Admits request `id` arriving at `now_ns` if neither the daily limit nor the rolling
    /// window of `window_ns` (the interval `(now - window, now]`) is full.
    ///
    /// An admitted request is recorded; a rejected one is not.
    pub fn try_admit(
        &mut self,
        now_ns: u64,
        id: u64,
        limit: Option<u32>,
        window_ns: u64,
        daily_limit: Option<u32>,
    ) -> Result<(), Exceeded> {
        self.expire(now_ns, window_ns);
        if let Some(daily) = daily_limit {
            if self.used_today >= u64::from(daily) {
                return Err(Exceeded::Daily { limit: daily });
            }
        }
        if let Some(limit) = limit {
            if self.accepted.len() >= limit as usize {
                // The wait ends when the oldest counted request leaves the window. With a
                // limit of 0 nothing is ever counted, so report a whole window.
                let retry_after_ns = match self.accepted.front() {
                    Some(&(oldest, _)) => oldest + window_ns - now_ns,
                    None => window_ns,
                };
                return Err(Exceeded::Window {
                    limit,
                    retry_after_ns,
                });
            }
        }
        self.accepted.push_back((now_ns, id));
        self.used_today += 1;
        Ok(())
    }

    /// Gives back the slot of admitted request `id` (used when the request turns out invalid).
    pub fn release(&mut self, id: u64) {
        if let Some(pos) = self.accepted.iter().rposition(|&(_, i)| i == id) {
            self.accepted.remove(pos);
        }
        self.used_today = self.used_today.saturating_sub(1);
    }

    /// Forgets every accepted request.
    pub fn clear(&mut self) {
        self.accepted.clear();
        self.used_today = 0;
    }

    /// Drops arrivals at or before `now - window`: they no longer count.
    fn expire(&mut self, now_ns: u64, window_ns: u64) {
        while let Some(&(t, _)) = self.accepted.front() {
            if t + window_ns <= now_ns {
                self.accepted.pop_front();
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn admits_up_to_the_limit_then_reports_the_exact_wait() {
        let mut q = KeyQuota::default();
        let window = 300 * MS;
        assert!(q.try_admit(0, 1, Some(3), window, None).is_ok());
        assert!(q.try_admit(10 * MS, 2, Some(3), window, None).is_ok());
        assert!(q.try_admit(20 * MS, 3, Some(3), window, None).is_ok());
        assert_eq!(
            q.try_admit(100 * MS, 4, Some(3), window, None),
            Err(Exceeded::Window {
                limit: 3,
                retry_after_ns: 200 * MS
            })
        );
        // One nanosecond before the oldest leaves, still full; exactly then, free.
        assert!(q.try_admit(300 * MS - 1, 5, Some(3), window, None).is_err());
        assert!(q.try_admit(300 * MS, 6, Some(3), window, None).is_ok());
        assert!(q.try_admit(300 * MS, 7, Some(3), window, None).is_err());
    }

    #[test]
    fn never_more_than_limit_in_any_window() {
        // A deterministic pseudo-random arrival pattern; check the bound over every window
        // that ends at an accepted arrival.
        let (limit, window) = (5u32, 1_000u64);
        let mut q = KeyQuota::default();
        let mut accepted = Vec::new();
        let mut now = 0u64;
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for id in 0..5_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            now += seed % 300;
            if q.try_admit(now, id, Some(limit), window, None).is_ok() {
                accepted.push(now);
            }
        }
        for (i, &end) in accepted.iter().enumerate() {
            let in_window = accepted[..=i].iter().filter(|&&t| t + window > end).count();
            assert!(in_window <= limit as usize, "window ending at {end}");
        }
        assert!(accepted.len() > 100);
    }

    #[test]
    fn released_slots_are_free_again() {
        let mut q = KeyQuota::default();
        assert!(q.try_admit(0, 1, Some(1), MS, Some(1)).is_ok());
        assert!(q.try_admit(1, 2, Some(1), MS, Some(1)).is_err());
        q.release(1);
        assert!(q.try_admit(2, 3, Some(1), MS, Some(1)).is_ok());
    }

    #[test]
    fn daily_limit_does_not_expire() {
        let mut q = KeyQuota::default();
        assert!(q.try_admit(0, 1, None, MS, Some(2)).is_ok());
        assert!(q.try_admit(5 * MS, 2, None, MS, Some(2)).is_ok());
        assert_eq!(
            q.try_admit(u64::MAX / 2, 3, None, MS, Some(2)),
            Err(Exceeded::Daily { limit: 2 })
        );
        q.clear();
        assert!(q.try_admit(u64::MAX / 2, 4, None, MS, Some(2)).is_ok());
    }

    #[test]
    fn limit_zero_admits_nothing() {
        let mut q = KeyQuota::default();
        assert_eq!(
            q.try_admit(0, 1, Some(0), 60_000 * MS, None),
            Err(Exceeded::Window {
                limit: 0,
                retry_after_ns: 60_000 * MS
            })
        );
    }
}
