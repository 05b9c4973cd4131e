//! The rolling-window admission rule, lock-free, on memory that may be shared between processes.
//!
//! A key with limit `L` and window `W` owns a ring of `L` slots. An admission takes a slot whose
//! record is more than `W` old (or free), replacing that record by a compare-and-swap. Every slot
//! therefore holds a sequence of admissions spaced more than `W` apart, so any window of length
//! `W` sees at most one admission per slot: at most `L` in all. That argument rests on one thing
//! only, the compare-and-swap of a slot against the record it replaces, so it holds however
//! threads or processes interleave and whichever of them dies where. Where an admission looks
//! first is a hint (`start`, the slot after the last one taken, written with a plain store): a
//! stale or raced hint costs a few more slots looked at, never a wrong answer, and a process
//! killed at any point leaves nothing half done. A slot that cannot be taken (in flight, or
//! finished inside the window) is passed by, so every record, a dead process's included, holds
//! its one slot and never the key.
//!
//! The window must be counted on the service's clock, which sees a request when it arrives, not
//! when it was admitted. So a slot is written *in flight* at admission and stamped with the
//! completion time when the response is in: the service cannot have seen the request later than
//! that. An in-flight slot whose owner died frees itself `max_inflight_ms + W` after admission.
//!
//! A slot may instead hold a *link* to a slot of another ring (the token window's slots link to
//! the request's slot of the rate window): it is then in flight, finished or free exactly when
//! the record it links to is, so one completion stamps both. A link names the other slot and
//! that record's generation; once the other slot is taken again (which needs its record to be
//! free), the link is free too.
//!
//! Each record carries its slot's generation (one more than the record it replaced), so a
//! record is never written twice in one slot, and a completion or cancellation that comes after
//! its slot was presumed abandoned and reused changes nothing.
//!
//! Times are `clock::now_ms()` values: whole milliseconds rounded up, never 0. A record at `t`
//! blocks its slot while `now <= t + W`, so two admissions of one slot are more than `W` apart.
//!
//! Everything here is pure: `now` is an argument, so tests drive a fake clock.

use std::sync::atomic::{
    AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed, Ordering::Release,
};

const TIME_BITS: u32 = 43;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const INFLIGHT: u64 = 1 << TIME_BITS;
const GEN_SHIFT: u32 = TIME_BITS + 1;
const GEN_MASK: u64 = (1 << 19) - 1;
/// A link to a slot of another ring: its generation as above, its index in the low bits.
const LINK: u64 = 1 << 63;
const INDEX_MASK: u64 = (1 << 20) - 1;

/// Slots a ring may have at most (a link names a slot in 20 bits).
pub const MAX_SLOTS: u64 = 1 << 20;

/// One window: a ring of slots, wherever they live.
pub struct Window<'a> {
    /// The slot the next admission looks at first (a hint; see the module's text).
    pub start: &'a AtomicU64,
    /// The whole ring, as made; completions and cancellations find their slot here.
    pub slots: &'a [AtomicU64],
    /// How many of the first slots admissions use (the limit in force, which can only go down).
    pub in_force: usize,
    /// The ring this one's links point into (empty: it holds none).
    pub links: &'a [AtomicU64],
    pub window_ms: u64,
    /// How long an in-flight request may last before its slot is presumed abandoned.
    pub max_inflight_ms: u64,
}

/// Proof of an admission, to be handed back to the store that made it (here:
/// [`Window::complete`]). Its two words mean what the store that made it says: a store outside
/// this crate makes its own with [`Ticket::new`]. For a [`Window`], `seq` is the slot's index
/// and `record` the in-flight record (or link) written there, which completion replaces only if
/// it is still there.
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

#[inline]
fn generation(record: u64) -> u64 {
    (record >> GEN_SHIFT) & GEN_MASK
}

#[inline]
fn encode(generation: u64, in_flight: bool, time: u64) -> u64 {
    debug_assert!(time > 0 && time <= TIME_MASK);
    (generation & GEN_MASK) << GEN_SHIFT | if in_flight { INFLIGHT } else { 0 } | (time & TIME_MASK)
}

/// A free record that keeps its slot's generation (a cancelled admission's).
#[inline]
fn freed(record: u64) -> u64 {
    if record & LINK != 0 {
        0
    } else {
        record & (GEN_MASK << GEN_SHIFT)
    }
}

impl Window<'_> {
    /// The record a slot's record stands for: itself, or for a link the record it links to
    /// (0, free, once that slot has moved on).
    #[inline]
    fn resolve(&self, record: u64) -> u64 {
        if record & LINK == 0 {
            return record;
        }
        let target = match self.links.get((record & INDEX_MASK) as usize) {
            Some(slot) => slot.load(Acquire),
            None => return 0,
        };
        if target & LINK == 0 && generation(target) == generation(record) {
            target
        } else {
            0
        }
    }

    /// The first `now` at which a slot holding `record` (resolved) may be taken again (0: it
    /// is free).
    #[inline]
    fn blocked_until(&self, record: u64) -> u64 {
        let time = record & TIME_MASK;
        if time == 0 {
            return 0;
        }
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

    /// Takes a slot at `now` for the record `make` writes there (given the record it
    /// replaces), or says from when on it may try again. A slot that cannot be taken is passed
    /// by; the window refuses only when every slot in force is taken, and names the earliest
    /// any of them frees. A refusal looks at each slot once.
    #[inline]
    fn take(&self, now: u64, make: impl Fn(u64) -> u64) -> Result<Ticket, u64> {
        let n = self.in_force.min(self.slots.len());
        if n == 0 {
            return Err(now + self.window_ms + 1);
        }
        let mut i = self.start.load(Relaxed) as usize;
        if i >= n {
            i = 0;
        }
        let mut looked = 0;
        let mut earliest = u64::MAX;
        loop {
            let slot = &self.slots[i];
            let record = slot.load(Acquire);
            let resolved = self.resolve(record);
            if now >= self.blocked_until(resolved) {
                let mine = make(record);
                if slot.compare_exchange(record, mine, AcqRel, Acquire).is_ok() {
                    let next = if i + 1 == n { 0 } else { i + 1 };
                    self.start.store(next as u64, Relaxed);
                    return Ok(Ticket {
                        seq: i as u64,
                        record: mine,
                    });
                }
                // Another admission changed the slot first: look at it again.
                continue;
            }
            earliest = earliest.min(self.ready_estimate(resolved, now));
            looked += 1;
            if looked >= n {
                return Err(earliest);
            }
            i = if i + 1 == n { 0 } else { i + 1 };
        }
    }

    /// Admits one request at `now`, or says from when on it may try again.
    #[inline]
    pub fn try_admit(&self, now: u64) -> Result<Ticket, u64> {
        self.take(now, |old| encode(generation(old) + 1, true, now))
    }

    /// Admits one request at `now` whose slot links to `target`, an admission of the ring
    /// `links` is: the slot is in flight and finished with it, and needs no completion of its
    /// own.
    #[inline]
    pub fn try_admit_linked(&self, now: u64, target: Ticket) -> Result<Ticket, u64> {
        debug_assert!(target.seq < MAX_SLOTS && target.record & LINK == 0);
        let link = LINK | generation(target.record) << GEN_SHIFT | (target.seq & INDEX_MASK);
        self.take(now, |_| link)
    }

    /// Stamps an admitted request with the time its response came back (`now`). If the slot was
    /// meanwhile presumed abandoned and reused, there is nothing left to stamp; a link needs no
    /// stamp (the slot it links to has its own).
    #[inline]
    pub fn complete(&self, ticket: Ticket, now: u64) {
        if ticket.record & LINK != 0 {
            return;
        }
        if let Some(slot) = self.slots.get(ticket.seq as usize) {
            let admitted = ticket.record & TIME_MASK;
            let done = encode(generation(ticket.record), false, now.max(admitted));
            let _ = slot.compare_exchange(ticket.record, done, AcqRel, Acquire);
        }
    }

    /// Takes back an admission whose request was never sent (another quota of the same
    /// admission refused): its slot is free again, as if it had never been taken. If the slot
    /// was meanwhile presumed abandoned and reused, there is nothing to take back.
    pub fn cancel(&self, ticket: Ticket) {
        if let Some(slot) = self.slots.get(ticket.seq as usize) {
            let _ = slot.compare_exchange(ticket.record, freed(ticket.record), AcqRel, Acquire);
        }
    }

    /// The records that could still count against a window of up to `horizon_ms` at `now`
    /// (in flight, or finished within the horizon), newest first: (in flight, time).
    pub fn live_records(&self, now: u64, horizon_ms: u64) -> Vec<(bool, u64)> {
        let mut live: Vec<(bool, u64)> = self
            .slots
            .iter()
            .map(|slot| self.resolve(slot.load(Acquire)))
            .filter(|&r| {
                r & TIME_MASK != 0 && (r & INFLIGHT != 0 || now <= (r & TIME_MASK) + horizon_ms)
            })
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
            self.slots[i].store(encode(1, in_flight, time.max(1)), Release);
        }
        let in_force = self.in_force.max(1);
        self.start.store((n % in_force) as u64, Release);
    }

    /// What counts against the window at `now` (a scan of the ring: for statistics, not for
    /// admission).
    pub fn usage(&self, now: u64) -> Usage {
        let mut usage = Usage::default();
        for slot in self.slots {
            let record = self.resolve(slot.load(Acquire));
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
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::Arc;

    struct Owned {
        start: AtomicU64,
        slots: Vec<AtomicU64>,
    }

    impl Owned {
        fn new(limit: usize) -> Owned {
            Owned {
                start: AtomicU64::new(0),
                slots: (0..limit).map(|_| AtomicU64::new(0)).collect(),
            }
        }
        fn window(&self, window_ms: u64, max_inflight_ms: u64) -> Window<'_> {
            self.linked(window_ms, max_inflight_ms, &[])
        }
        fn linked<'a>(
            &'a self,
            window_ms: u64,
            max_inflight_ms: u64,
            links: &'a [AtomicU64],
        ) -> Window<'a> {
            Window {
                start: &self.start,
                slots: &self.slots,
                in_force: self.slots.len(),
                links,
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
    fn a_stale_or_raced_start_only_costs_a_longer_look() {
        let owned = Owned::new(3);
        let w = owned.window(1000, 0);
        let a = w.try_admit(5).unwrap();
        // A hint that went back (another thread's late store), or out of range (a lowered
        // limit): the taken slot is passed by, the free ones found.
        owned.start.store(a.seq, Relaxed);
        let b = w.try_admit(6).unwrap();
        assert_ne!(b.seq, a.seq);
        owned.start.store(99, Relaxed);
        let c = w.try_admit(7).unwrap();
        assert!(c.seq != a.seq && c.seq != b.seq);
        assert_eq!(w.try_admit(8), Err(1006), "every slot taken: refused");
        // A slot taken twice holds two different records (its generation moved on).
        w.cancel(a);
        let again = w.try_admit(9).unwrap();
        assert_eq!(again.seq, a.seq);
        assert_ne!(again.record, a.record);
        w.cancel(a); // stale: takes nothing back
        assert!(w.try_admit(10).is_err());
    }

    #[test]
    fn a_linked_slot_is_in_flight_finished_and_free_with_the_slot_it_links_to() {
        let rate = Owned::new(2);
        let tokens = Owned::new(2);
        let r = rate.window(100, 1_000);
        let t = tokens.linked(100, 1_000, &rate.slots);
        let req = r.try_admit(10).unwrap();
        let tok = t.try_admit_linked(10, req).unwrap();
        assert_eq!(
            t.usage(50),
            Usage {
                in_window: 1,
                in_flight: 1
            }
        );
        r.complete(req, 60);
        t.complete(tok, 60); // nothing to stamp: the link follows the rate slot
        assert_eq!(
            t.usage(70),
            Usage {
                in_window: 1,
                in_flight: 0
            }
        );
        assert_eq!(t.live_records(70, 100), vec![(false, 60)]);
        let other = t.try_admit_linked(70, r.try_admit(70).unwrap()).unwrap();
        assert_ne!(other.seq, tok.seq);
        assert_eq!(
            t.try_admit(80),
            Err(161),
            "both token slots taken, one frees at 161"
        );
        assert!(
            t.try_admit(161).is_ok(),
            "free once the linked request left the window"
        );
        // A cancelled link frees at once; an abandoned request frees its links with it.
        let rate = Owned::new(1);
        let tokens = Owned::new(1);
        let r = rate.window(100, 1_000);
        let t = tokens.linked(100, 1_000, &rate.slots);
        let lost = r.try_admit(10).unwrap();
        let tok = t.try_admit_linked(10, lost).unwrap();
        t.cancel(tok);
        let tok = t.try_admit_linked(11, lost).unwrap();
        assert_eq!(t.try_admit(1_110), Err(1_111));
        assert!(
            r.try_admit(1_111).is_ok(),
            "the abandoned rate slot is taken again"
        );
        assert!(t.try_admit(1_111).is_ok(), "and the link to it is free");
        t.cancel(tok); // stale: nothing to take back
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

    proptest! {
        /// The token window's bound with its slots linked to the rate window's: on any
        /// schedule of admissions (a rate slot, then `units` linked token slots or none),
        /// completions (which stamp only the rate slot) and cancellations, no rolling window
        /// ever holds more than the token ring's slots, counting each request's units at its
        /// completion.
        #[test]
        fn linked_token_slots_hold_the_bound_on_random_schedules(
            rate_limit in 1usize..10,
            token_slots in 1usize..10,
            window in 1u64..300,
            ops in proptest::collection::vec((0u8..4, 0u64..200, 1u64..4), 1..300),
        ) {
            let rate = Owned::new(rate_limit);
            let tokens = Owned::new(token_slots);
            let r = rate.window(window, 1_000_000);
            let t = tokens.linked(window, 1_000_000, &rate.slots);
            let mut now = 1u64;
            let mut pending: Vec<(Ticket, Vec<Ticket>)> = Vec::new();
            let mut stamps: Vec<u64> = Vec::new();
            for (kind, dt, units) in ops {
                match kind {
                    0 => now += dt,
                    1 => {
                        let Ok(req) = r.try_admit(now) else { continue };
                        let mut held = Vec::new();
                        for _ in 0..units {
                            match t.try_admit_linked(now, req) {
                                Ok(tk) => held.push(tk),
                                Err(_) => break,
                            }
                        }
                        if held.len() as u64 == units {
                            pending.push((req, held));
                        } else {
                            for tk in held {
                                t.cancel(tk);
                            }
                            r.cancel(req);
                        }
                    }
                    _ => {
                        if pending.is_empty() {
                            continue;
                        }
                        let (req, held) = pending.remove((dt as usize) % pending.len());
                        r.complete(req, now);
                        for tk in &held {
                            t.complete(*tk, now);
                            stamps.push(now);
                        }
                    }
                }
                let in_flight: usize = pending.iter().map(|(_, h)| h.len()).sum();
                let recent = stamps.iter().filter(|&&s| now <= s + window).count();
                prop_assert!(in_flight + recent <= token_slots,
                    "{} in flight and {} in the window at {}", in_flight, recent, now);
                prop_assert_eq!(t.usage(now).in_window as usize, in_flight + recent);
            }
            prop_assert!(max_in_any_window(&mut stamps, window) <= token_slots);
        }
    }
}
