//! The rolling-window admission rule, lock-free, on memory that may be shared between processes.
//!
//! A key with limit `L` and window `W` owns a ring of `L` slots and a counter `head` of the
//! admissions made so far. Admission number `n` goes to slot `n mod L`, replacing the record of
//! admission `n - L`, and only if that record is more than `W` old. Every slot therefore holds a
//! sequence of admissions spaced more than `W` apart, so any window of length `W` sees at most
//! one admission per slot: at most `L` in all. That argument rests on one thing only, the
//! compare-and-swap of a slot against the record it replaces, so it holds however threads or
//! processes interleave and whichever of them dies where. `head` only spreads admissions over
//! the slots; a thread that finds the slot for `head` already taken helps `head` forward, so a
//! process killed between the two steps blocks nobody; and a slot that cannot be taken (in
//! flight, or finished inside the window) is passed by, so every record, a dead process's
//! included, holds its one slot and never the key.
//!
//! The window must be counted on the service's clock, which sees a request when it arrives, not
//! when it was admitted. So a slot is written *in flight* at admission and stamped with the
//! completion time when the response is in: the service cannot have seen the request later than
//! that. An in-flight slot whose owner died frees itself `max_inflight_ms + W` after admission.
//!
//! Times are `clock::now_ms()` values: whole milliseconds rounded up, never 0. A record at `t`
//! blocks its slot while `now <= t + W`, so two admissions of one slot are more than `W` apart.
//!
//! Everything here is pure: `now` is an argument, so tests drive a fake clock.

use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Release};

const TIME_BITS: u32 = 43;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const INFLIGHT: u64 = 1 << TIME_BITS;
const TAG_SHIFT: u32 = TIME_BITS + 1;
const TAG_MASK: u64 = (1 << (64 - TAG_SHIFT)) - 1;

/// One key's window: the admission counter and the ring of slots, wherever they live.
pub struct Window<'a> {
    pub head: &'a AtomicU64,
    pub slots: &'a [AtomicU64],
    pub window_ms: u64,
    /// How long an in-flight request may last before its slot is presumed abandoned.
    pub max_inflight_ms: u64,
}

/// Proof of an admission, to be handed back to the store that made it (here:
/// [`Window::complete`]). Its two words mean what the store that made it says: a store outside
/// this crate makes its own with [`Ticket::new`]. For a [`Window`], `seq` is the admission's
/// number (its slot is `seq mod limit`) and `record` the in-flight record it wrote there, which
/// completion replaces only if it is still there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ticket {
    pub seq: u64,
    pub record: u64,
}

impl Ticket {
    pub const fn new(seq: u64, record: u64) -> Ticket {
        Ticket { seq, record }
    }
}

/// What a window holds right now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Admissions that still count against the window (finished or in flight).
    pub in_window: u64,
    /// Of those, requests still in flight.
    pub in_flight: u64,
}

fn tag_of(seq: u64, limit: u64) -> u64 {
    (seq / limit) & TAG_MASK
}

fn encode(tag: u64, in_flight: bool, time: u64) -> u64 {
    debug_assert!(time > 0 && time <= TIME_MASK);
    (tag << TAG_SHIFT) | if in_flight { INFLIGHT } else { 0 } | (time & TIME_MASK)
}

impl Window<'_> {
    fn limit(&self) -> u64 {
        self.slots.len() as u64
    }

    /// The first `now` at which a slot holding `record` may be taken again (0: it is free).
    fn blocked_until(&self, record: u64) -> u64 {
        if record == 0 {
            return 0;
        }
        let time = record & TIME_MASK;
        let hold = if record & INFLIGHT != 0 {
            self.max_inflight_ms + self.window_ms
        } else {
            self.window_ms
        };
        time + hold + 1
    }

    /// A caller-facing estimate of when a slot frees: an in-flight request is expected to finish
    /// now, so it frees one window from now at the earliest.
    fn ready_estimate(&self, record: u64, now: u64) -> u64 {
        if record & INFLIGHT != 0 {
            self.blocked_until(record).min(now + self.window_ms + 1)
        } else {
            self.blocked_until(record)
        }
    }

    /// Admits one request at `now`, or says from when on it may try again.
    ///
    /// A slot that cannot be taken (its request is still in flight, or finished inside the
    /// window) is passed by: `head` moves on without writing it, and the slot is looked at again
    /// a lap later. So each record holds its own slot and nothing more, and the key refuses only
    /// when every one of its slots is taken; the time it names is then the earliest any slot
    /// frees. A refusal looks at each slot once.
    pub fn try_admit(&self, now: u64) -> Result<Ticket, u64> {
        let limit = self.limit();
        let mut passed = 0;
        let mut earliest = u64::MAX;
        loop {
            let head = self.head.load(Acquire);
            let slot = &self.slots[(head % limit) as usize];
            let record = slot.load(Acquire);
            let tag = tag_of(head, limit);
            if record != 0 && record >> TAG_SHIFT == tag {
                // Admission `head` is recorded but `head` has not moved on yet: help it.
                let _ = self.head.compare_exchange(head, head + 1, AcqRel, Acquire);
                continue;
            }
            if now < self.blocked_until(record) {
                earliest = earliest.min(self.ready_estimate(record, now));
                if passed >= limit {
                    return Err(earliest);
                }
                // Taken: pass it by (if another thread moved `head` first, so be it).
                passed += 1;
                let _ = self.head.compare_exchange(head, head + 1, AcqRel, Acquire);
                continue;
            }
            let mine = encode(tag, true, now);
            if slot.compare_exchange(record, mine, AcqRel, Acquire).is_ok() {
                let _ = self.head.compare_exchange(head, head + 1, AcqRel, Acquire);
                return Ok(Ticket {
                    seq: head,
                    record: mine,
                });
            }
        }
    }

    /// Stamps an admitted request with the time its response came back (`now`). If the slot was
    /// meanwhile presumed abandoned and reused, there is nothing left to stamp.
    pub fn complete(&self, ticket: Ticket, now: u64) {
        let slot = &self.slots[(ticket.seq % self.limit()) as usize];
        let admitted = ticket.record & TIME_MASK;
        let done = encode(ticket.record >> TAG_SHIFT, false, now.max(admitted));
        let _ = slot.compare_exchange(ticket.record, done, AcqRel, Acquire);
    }

    /// Takes back an admission whose request was never sent (another quota of the same
    /// admission refused): its slot is free again, as if it had never been taken. If the slot
    /// was meanwhile presumed abandoned and reused, there is nothing to take back.
    pub fn cancel(&self, ticket: Ticket) {
        let slot = &self.slots[(ticket.seq % self.limit()) as usize];
        let _ = slot.compare_exchange(ticket.record, 0, AcqRel, Acquire);
    }

    /// The records that could still count against a window of up to `horizon_ms` at `now`
    /// (in flight, or finished within the horizon), newest first: (in flight, time).
    pub fn live_records(&self, now: u64, horizon_ms: u64) -> Vec<(bool, u64)> {
        let mut live: Vec<(bool, u64)> = self
            .slots
            .iter()
            .map(|slot| slot.load(Acquire))
            .filter(|&r| r != 0 && (r & INFLIGHT != 0 || now <= (r & TIME_MASK) + horizon_ms))
            .map(|r| (r & INFLIGHT != 0, r & TIME_MASK))
            .collect();
        live.sort_unstable_by_key(|&(_, time)| std::cmp::Reverse(time));
        live
    }

    /// Fills a fresh window with records (at most its limit; the first ones kept), as if they
    /// had been its first admissions.
    pub fn seed(&self, records: &[(bool, u64)]) {
        let n = records.len().min(self.slots.len());
        for (i, &(in_flight, time)) in records[..n].iter().enumerate() {
            self.slots[i].store(encode(0, in_flight, time.max(1)), Release);
        }
        self.head.store(n as u64, Release);
    }

    /// What counts against the window at `now` (a scan of the ring: for statistics, not for
    /// admission).
    pub fn usage(&self, now: u64) -> Usage {
        let mut usage = Usage::default();
        for slot in self.slots {
            let record = slot.load(Acquire);
            if now < self.blocked_until(record) {
                usage.in_window += 1;
                if record & INFLIGHT != 0 {
                    usage.in_flight += 1;
                }
            }
        }
        usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    struct Owned {
        head: AtomicU64,
        slots: Vec<AtomicU64>,
    }

    impl Owned {
        fn new(limit: usize) -> Owned {
            Owned {
                head: AtomicU64::new(0),
                slots: (0..limit).map(|_| AtomicU64::new(0)).collect(),
            }
        }
        fn window(&self, window_ms: u64, max_inflight_ms: u64) -> Window<'_> {
            Window {
                head: &self.head,
                slots: &self.slots,
                window_ms,
                max_inflight_ms,
            }
        }
    }

    /// The most times that fall in any half-open window `(t - w, t]`... i.e. pairs closer than
    /// or equal to `w` apart, counted with a two-pointer sweep over sorted times.
    fn max_in_any_window(times: &mut [u64], window: u64) -> usize {
        times.sort_unstable();
        let mut best = 0;
        let mut lo = 0;
        for hi in 0..times.len() {
            while times[hi] - times[lo] > window {
                lo += 1;
            }
            best = best.max(hi - lo + 1);
        }
        best
    }

    #[test]
    fn admits_the_limit_then_refuses_until_the_oldest_leaves() {
        let owned = Owned::new(3);
        let w = owned.window(1000, 0);
        let tickets: Vec<_> = (0..3).map(|i| w.try_admit(10 + i).unwrap()).collect();
        for (i, t) in tickets.iter().enumerate() {
            w.complete(*t, 10 + i as u64);
        }
        assert_eq!(w.try_admit(500), Err(1011));
        assert_eq!(
            w.try_admit(1010),
            Err(1011),
            "exactly W after is still inside"
        );
        assert!(w.try_admit(1011).is_ok());
        assert_eq!(w.try_admit(1011), Err(1012));
    }

    #[test]
    fn a_calendar_minute_boundary_does_not_double_the_limit() {
        // A fixed-window counter lets 2L through around a reset; a rolling window never does.
        let owned = Owned::new(5);
        let w = owned.window(60_000, 0);
        let mut admitted = Vec::new();
        for now in [59_000u64, 59_500, 60_001, 60_500, 61_000] {
            for _ in 0..5 {
                if let Ok(t) = w.try_admit(now) {
                    w.complete(t, now);
                    admitted.push(now);
                }
            }
        }
        assert_eq!(admitted.len(), 5, "{admitted:?}");
    }

    #[test]
    fn a_cancelled_admission_frees_its_slot_at_once() {
        let owned = Owned::new(1);
        let w = owned.window(1000, 0);
        let t = w.try_admit(10).unwrap();
        assert!(w.try_admit(11).is_err());
        w.cancel(t);
        let again = w.try_admit(12).expect("the slot is free again");
        w.cancel(t); // a stale ticket takes nothing back
        assert!(w.try_admit(13).is_err());
        w.complete(again, 13);
    }

    #[test]
    fn completion_time_is_what_the_window_counts_from() {
        let owned = Owned::new(1);
        let w = owned.window(100, 10_000);
        let t = w.try_admit(1).unwrap();
        assert!(w.try_admit(500).is_err(), "in flight blocks the slot");
        w.complete(t, 600);
        assert_eq!(w.try_admit(650), Err(701));
        assert!(w.try_admit(701).is_ok());
    }

    #[test]
    fn an_abandoned_in_flight_slot_frees_after_max_inflight_plus_window() {
        let owned = Owned::new(1);
        let w = owned.window(100, 1000);
        let _lost = w.try_admit(1).unwrap(); // its owner dies and never completes
        assert!(w.try_admit(1100).is_err());
        assert!(w.try_admit(1102).is_ok());
    }

    #[test]
    fn an_unfinished_request_holds_its_own_slot_and_nothing_more() {
        // A process dies mid-request: its slot stays in flight for max_inflight + W, but the
        // other slots keep serving as their records leave the window.
        let owned = Owned::new(3);
        let w = owned.window(100, 10_000);
        let _dead = w.try_admit(1).unwrap();
        for now in [2, 3] {
            let t = w.try_admit(now).unwrap();
            w.complete(t, now);
        }
        assert_eq!(
            w.try_admit(50),
            Err(103),
            "full: one unfinished, two in the window"
        );
        let t = w.try_admit(104).expect("the finished slots free on time");
        w.complete(t, 104);
        let t = w.try_admit(105).expect("so does the other");
        w.complete(t, 105);
        assert_eq!(w.try_admit(106), Err(205));
        assert_eq!(
            w.usage(106),
            Usage {
                in_window: 3,
                in_flight: 1
            }
        );
    }

    #[test]
    fn a_long_request_finishing_late_does_not_hold_back_the_others() {
        // Completion order differs from admission order: the slot that frees first serves first.
        let owned = Owned::new(2);
        let w = owned.window(100, 10_000);
        let a = w.try_admit(1).unwrap();
        let b = w.try_admit(2).unwrap();
        w.complete(b, 3);
        w.complete(a, 90);
        assert_eq!(
            w.usage(104),
            Usage {
                in_window: 1,
                in_flight: 0
            }
        );
        assert!(w.try_admit(104).is_ok(), "B's slot is free from 104");
        assert_eq!(w.try_admit(105), Err(191), "then A's, at 191");
    }

    #[test]
    fn seeded_records_count_like_admissions() {
        let old = Owned::new(5);
        let w = old.window(100, 1_000);
        for now in [1, 2, 3, 4] {
            let t = w.try_admit(now).unwrap();
            w.complete(t, now);
        }
        let _flying = w.try_admit(5).unwrap();
        let live = w.live_records(50, 100);
        assert_eq!(live.len(), 5);
        assert_eq!(live[0], (true, 5));
        // A smaller limit keeps the newest records: full at once.
        let new = Owned::new(3);
        let n = new.window(100, 1_000);
        n.seed(&live);
        assert_eq!(
            n.usage(50),
            Usage {
                in_window: 3,
                in_flight: 1
            }
        );
        assert!(n.try_admit(50).is_err());
        assert!(
            n.try_admit(105).is_ok(),
            "the oldest kept record (3) leaves at 104"
        );
    }

    #[test]
    fn a_lap_of_unfinished_requests_refuses() {
        let owned = Owned::new(2);
        let w = owned.window(100, 1_000);
        let _a = w.try_admit(1).unwrap();
        let _b = w.try_admit(2).unwrap();
        // Both in flight: refused, with the estimate that one finishes now.
        assert_eq!(w.try_admit(500), Err(601));
    }

    #[test]
    fn a_late_completion_of_a_reused_slot_changes_nothing() {
        let owned = Owned::new(1);
        let w = owned.window(100, 50);
        let old = w.try_admit(1).unwrap();
        let new = w.try_admit(200).unwrap();
        w.complete(old, 210); // too late: the slot is someone else's now
        w.complete(new, 220);
        assert_eq!(w.try_admit(300), Err(321));
    }

    #[test]
    fn a_recorded_but_unadvanced_head_is_helped_forward() {
        let owned = Owned::new(2);
        let w = owned.window(1000, 0);
        let t = w.try_admit(5).unwrap();
        // Simulate a process that died between writing its slot and moving head.
        owned.head.store(t.seq, std::sync::atomic::Ordering::SeqCst);
        let next = w.try_admit(6).unwrap();
        assert_eq!(next.seq, t.seq + 1);
        assert_eq!(owned.head.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn usage_counts_in_window_and_in_flight() {
        let owned = Owned::new(4);
        let w = owned.window(100, 1000);
        let a = w.try_admit(1).unwrap();
        let _b = w.try_admit(2).unwrap();
        w.complete(a, 3);
        assert_eq!(
            w.usage(50),
            Usage {
                in_window: 2,
                in_flight: 1
            }
        );
        assert_eq!(
            w.usage(200),
            Usage {
                in_window: 1,
                in_flight: 1
            }
        );
    }

    #[test]
    fn threads_racing_on_one_window_never_exceed_the_limit() {
        const LIMIT: usize = 16;
        const WINDOW: u64 = 50;
        let owned = Arc::new(Owned::new(LIMIT));
        let clock = Arc::new(AtomicU64::new(1));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (owned, clock) = (owned.clone(), clock.clone());
                std::thread::spawn(move || {
                    let w = owned.window(WINDOW, 1_000_000);
                    let mut stamps = Vec::new();
                    for i in 0..20_000u64 {
                        // Time moves forward by the racing threads themselves.
                        let now = if i % 7 == 0 {
                            clock.fetch_add(1, AcqRel) + 1
                        } else {
                            clock.load(Acquire)
                        };
                        if let Ok(t) = w.try_admit(now) {
                            let done = clock.load(Acquire);
                            w.complete(t, done);
                            stamps.push(done);
                        }
                    }
                    stamps
                })
            })
            .collect();
        let mut all: Vec<u64> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        assert!(all.len() > LIMIT, "the test must admit across many windows");
        assert!(max_in_any_window(&mut all, WINDOW) <= LIMIT);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Advance(u64),
        Admit,
        CompleteOldest,
        CompleteNewest,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u64..300).prop_map(Op::Advance),
            Just(Op::Admit),
            Just(Op::Admit),
            Just(Op::CompleteOldest),
            Just(Op::CompleteNewest),
        ]
    }

    proptest! {
        /// On any schedule, no rolling window ever holds more than the limit, counting each
        /// request at its completion (the latest moment the service can have seen it); and a
        /// request is refused exactly when the limit is reached: every slot holds a request in
        /// flight or one that finished inside the window.
        #[test]
        fn the_rolling_window_bound_holds_on_random_schedules(
            limit in 1usize..12,
            window in 1u64..500,
            ops in proptest::collection::vec(op(), 1..400),
        ) {
            let owned = Owned::new(limit);
            let w = owned.window(window, 1_000_000);
            let mut now = 1u64;
            let mut pending: std::collections::VecDeque<Ticket> = Default::default();
            let mut stamps: Vec<u64> = Vec::new();
            for op in ops {
                match op {
                    Op::Advance(d) => now += d,
                    Op::Admit => match w.try_admit(now) {
                        Ok(t) => pending.push_back(t),
                        Err(ready) => {
                            prop_assert!(ready > now);
                            // Refused only when every slot is taken, by a request in flight or
                            // one that finished inside the window.
                            let recent = stamps.iter().filter(|&&s| now <= s + window).count();
                            prop_assert_eq!(pending.len() + recent, limit,
                                "refused at {} with {} in flight and {} in the window", now, pending.len(), recent);
                        }
                    },
                    Op::CompleteOldest | Op::CompleteNewest => {
                        let t = if matches!(op, Op::CompleteOldest) {
                            pending.pop_front()
                        } else {
                            pending.pop_back()
                        };
                        if let Some(t) = t {
                            w.complete(t, now);
                            stamps.push(now);
                        }
                    }
                }
            }
            prop_assert!(max_in_any_window(&mut stamps, window) <= limit);
        }
    }
}
