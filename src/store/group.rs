//! The record of one (quota group, model) as atomic words: the three quotas, the cooldown, the
//! model's availability for the group, and its counters (see the store's module text for what
//! each holds and guarantees). Word positions are part of the shared file's format: append,
//! never reorder.

use super::layout::{id_words, words_id, Words};
use super::{LimitKind, Moment, QuotaSnapshot, QuotaTicket, Refusal, TokenTickets};
use crate::error::Error;
use crate::health::CooldownCause;
use crate::key::Tier;
use crate::limiter::{Ticket, Usage, Window, MAX_SLOTS};
use crate::quota::{Limits, Quota};
use std::sync::atomic::{AtomicU64, Ordering::AcqRel, Ordering::Acquire, Ordering::Relaxed};

// The words an admission reads, together (one cache line when the record is aligned) ...
const Q_UNAVAILABLE_UNTIL: usize = 0;
/// The end of a cooldown (low 56 bits) and its cause (high 8 bits), in one word so that the
/// two always agree.
const Q_COOLDOWN: usize = 1;
/// The limits in force, which only go down (0: none) ...
const Q_RATE: usize = 2;
/// ... and the rate ring's length (the configured rate limit).
const Q_CONF_RATE: usize = 3;
const Q_WINDOW_MS: usize = 4;
const Q_MAX_INFLIGHT_MS: usize = 5;
const Q_DAILY: usize = 6;
const Q_TOKENS: usize = 7;
const Q_TOKEN_UNIT: usize = 8;
/// The token ring's length (`token_geometry` of the configured token limit).
const Q_TOKEN_SLOTS: usize = 9;
// ... then the ones it writes: where each ring's next admission looks first (a hint) ...
const Q_RATE_START: usize = 10;
const Q_TOKEN_START: usize = 11;
/// `day << DAY_SHIFT | count`.
const Q_DAY: usize = 12;
// ... and the rest: the configured limits (compared with the next pool's), the counters, the
// names.
const Q_CONF_DAILY: usize = 13; // 0: none
const Q_CONF_TOKENS: usize = 14; // 0: none
const Q_CAPACITY_STREAK: usize = 15;
const Q_FALLBACKS: usize = 16;
const Q_TIER: usize = 17;
const Q_GROUP: usize = 18; // two words
const Q_MODEL_LEN: usize = 20;
const Q_MODEL: usize = 21;
const MODEL_WORDS: usize = 16; // 128 bytes, the longest model name accepted
pub(crate) const QUOTA_HEADER_WORDS: usize = Q_MODEL + MODEL_WORDS;

/// Slots of a token window at most: a slot stands for `limit / slots` tokens (rounded up).
pub(crate) const MAX_TOKEN_SLOTS: u64 = 1024;

const DAY_SHIFT: u32 = 44;
const COUNT_MASK: u64 = (1 << DAY_SHIFT) - 1;
const COOLDOWN_SHIFT: u32 = 56;
const COOLDOWN_MASK: u64 = (1 << COOLDOWN_SHIFT) - 1;
/// Below this many requests left of a day's limit, the count is taken with a compare-and-swap
/// (it never goes past the limit, even for a moment); above, with one add.
const DAY_MARGIN: u64 = 64;

/// The token window's slots and the tokens each stands for, for a limit.
pub(crate) fn token_geometry(limit: u64) -> (u64, u64) {
    if limit == 0 {
        return (0, 0);
    }
    let slots = limit.min(MAX_TOKEN_SLOTS);
    let unit = limit.div_ceil(slots);
    (limit / unit, unit)
}

/// The count a day's word holds for `day` (0: the word is of another day).
#[inline]
fn count_of(word: u64, day: u64) -> u64 {
    if word >> DAY_SHIFT == day {
        word & COUNT_MASK
    } else {
        0
    }
}

/// A (quota group, model) record: header, then the rate ring, then the token ring.
#[derive(Clone)]
pub struct QuotaCell(pub Words);

impl QuotaCell {
    /// The record's length for these limits.
    pub fn words_for(limits: &Limits) -> usize {
        let tokens = limits.tokens.map_or(0, |q| token_geometry(q.limit).0);
        QUOTA_HEADER_WORDS + limits.rate.limit as usize + tokens as usize
    }

    #[inline]
    fn w(&self, i: usize) -> &AtomicU64 {
        self.0.word(i)
    }

    #[inline]
    fn load(&self, i: usize) -> u64 {
        self.w(i).load(Relaxed)
    }

    /// Writes a fresh record's constant fields.
    pub fn init(&self, limits: &Limits, tier: Tier, group: &[u8; 16], model: &str) {
        let daily = limits.daily.map_or(0, |q| q.limit);
        let tokens = limits.tokens.map_or(0, |q| q.limit);
        for (i, v) in [
            (Q_CONF_RATE, limits.rate.limit),
            (Q_WINDOW_MS, limits.rate.window_ms()),
            (Q_CONF_DAILY, daily),
            (Q_CONF_TOKENS, tokens),
            (Q_RATE, limits.rate.limit),
            (Q_DAILY, daily),
            (Q_TOKENS, tokens),
            (Q_TOKEN_UNIT, token_geometry(tokens).1),
            (Q_TOKEN_SLOTS, token_geometry(tokens).0),
            (Q_TIER, (tier == Tier::Paid) as u64),
        ] {
            self.w(i).store(v, Relaxed);
        }
        let [a, b] = id_words(group);
        self.w(Q_GROUP).store(a, Relaxed);
        self.w(Q_GROUP + 1).store(b, Relaxed);
        let name = &model.as_bytes()[..model.len().min(MODEL_WORDS * 8)];
        self.w(Q_MODEL_LEN).store(name.len() as u64, Relaxed);
        for (i, chunk) in name.chunks(8).enumerate() {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.w(Q_MODEL + i).store(u64::from_le_bytes(b), Relaxed);
        }
    }

    /// Whether the record is as long as its limits say (a record read from a shared file is
    /// checked before its rings are used).
    pub fn fits(&self) -> bool {
        let rate = self.load(Q_CONF_RATE);
        let token_slots = self.load(Q_TOKEN_SLOTS);
        rate > 0
            && rate <= MAX_SLOTS
            && (token_slots, self.load(Q_TOKEN_UNIT)) == token_geometry(self.load(Q_CONF_TOKENS))
            && self.load(Q_MODEL_LEN) <= (MODEL_WORDS * 8) as u64
            && (QUOTA_HEADER_WORDS as u64)
                .saturating_add(rate)
                .saturating_add(token_slots)
                <= self.0.as_slice().len() as u64
    }

    /// The limits the record was made for.
    pub fn configured(&self) -> Limits {
        self.limits_of(Q_CONF_RATE, Q_CONF_DAILY, Q_CONF_TOKENS)
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits_of(Q_RATE, Q_DAILY, Q_TOKENS)
    }

    fn limits_of(&self, rate: usize, daily: usize, tokens: usize) -> Limits {
        let window_ms = self.load(Q_WINDOW_MS);
        let some = |n: u64| (n > 0).then_some(n);
        Limits {
            rate: Quota::requests_per_window(self.load(rate), window_ms),
            daily: some(self.load(daily)).map(Quota::requests_per_day),
            tokens: some(self.load(tokens)).map(|n| Quota::tokens_per_window(n, window_ms)),
        }
    }

    pub fn model(&self) -> String {
        let len = (self.load(Q_MODEL_LEN) as usize).min(MODEL_WORDS * 8);
        let mut bytes = Vec::with_capacity(MODEL_WORDS * 8);
        for i in 0..MODEL_WORDS {
            bytes.extend_from_slice(&self.load(Q_MODEL + i).to_le_bytes());
        }
        bytes.truncate(len);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    pub fn group(&self) -> [u8; 16] {
        words_id(self.load(Q_GROUP), self.load(Q_GROUP + 1))
    }

    /// Raises the record's in-flight allowance to cover a pool's timeout: the longest any pool
    /// using the record may take.
    pub fn cover_timeout(&self, max_inflight_ms: u64) {
        self.w(Q_MAX_INFLIGHT_MS)
            .fetch_max(max_inflight_ms, Relaxed);
    }

    /// The rate ring (admissions use as many slots as the rate in force).
    #[inline]
    fn rate_window(&self) -> Window<'_> {
        let words = self.0.as_slice();
        let ring = self.load(Q_CONF_RATE) as usize;
        Window {
            start: &words[Q_RATE_START],
            slots: &words[QUOTA_HEADER_WORDS..QUOTA_HEADER_WORDS + ring],
            in_force: (self.load(Q_RATE) as usize).clamp(1, ring),
            links: &[],
            window_ms: self.load(Q_WINDOW_MS),
            max_inflight_ms: self.load(Q_MAX_INFLIGHT_MS),
        }
    }

    /// The token ring (empty without a token limit), whose slots link to the rate ring's, and
    /// the tokens a slot stands for.
    #[inline]
    fn token_window(&self) -> (Window<'_>, u64) {
        let words = self.0.as_slice();
        let rate_start = QUOTA_HEADER_WORDS;
        let start = rate_start + self.load(Q_CONF_RATE) as usize;
        let ring = self.load(Q_TOKEN_SLOTS) as usize;
        let unit = self.load(Q_TOKEN_UNIT);
        // The whole ring unless a 429 lowered the limit (no division per admission then).
        let tokens = self.load(Q_TOKENS);
        let in_force = if tokens == self.load(Q_CONF_TOKENS) {
            ring
        } else {
            tokens
                .checked_div(unit)
                .map_or(0, |n| (n as usize).clamp(1, ring))
        };
        (
            Window {
                start: &words[Q_TOKEN_START],
                slots: &words[start..start + ring],
                in_force,
                links: &words[rate_start..start],
                window_ms: self.load(Q_WINDOW_MS),
                max_inflight_ms: self.load(Q_MAX_INFLIGHT_MS),
            },
            unit,
        )
    }

    #[inline]
    pub fn cooldown(&self) -> (u64, CooldownCause) {
        let w = self.load(Q_COOLDOWN);
        (
            w & COOLDOWN_MASK,
            CooldownCause::from_word(w >> COOLDOWN_SHIFT),
        )
    }

    pub fn extend_cooldown(&self, until: u64, cause: CooldownCause) {
        let word = self.w(Q_COOLDOWN);
        let until = until.min(COOLDOWN_MASK);
        let new = until | (cause as u64) << COOLDOWN_SHIFT;
        let mut current = word.load(Relaxed);
        while current & COOLDOWN_MASK < until {
            match word.compare_exchange_weak(current, new, Relaxed, Relaxed) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// Requests counted on `day`.
    #[inline]
    fn count_on(&self, day: u64) -> u64 {
        count_of(self.w(Q_DAY).load(Acquire), day)
    }

    /// Counts one request on the day of `at`, unless the day's limit is reached; `seen` is
    /// the day's word as the admission first read it. A count never moves back to an earlier
    /// day: a process whose clock has not reached the midnight another process has passed
    /// counts on the later day.
    ///
    /// Far from the limit the count is one add: each request that finds the count below the
    /// limit is admitted, so at most `limit` are, however many race; one that finds it at the
    /// limit takes its add back. Near the limit (and to start a day) it is a compare-and-swap,
    /// so the count never shows more than the limit there.
    #[inline]
    fn count_day(&self, at: &Moment, limit: u64, seen: u64) -> Result<(), u64> {
        if seen >> DAY_SHIFT == at.day && (seen & COUNT_MASK) + DAY_MARGIN < limit {
            let before = self.w(Q_DAY).fetch_add(1, AcqRel);
            if before >> DAY_SHIFT == at.day && before & COUNT_MASK < limit {
                return Ok(());
            }
            self.take_back_day(before);
        }
        self.count_day_exactly(at, limit)
    }

    /// Takes back an add made on the word `before` was, unless the day has moved on since
    /// (the add then counted on a day that is over).
    #[cold]
    fn take_back_day(&self, before: u64) {
        let word = self.w(Q_DAY);
        let mut current = word.load(Acquire);
        while current >> DAY_SHIFT == before >> DAY_SHIFT && current & COUNT_MASK > 0 {
            match word.compare_exchange_weak(current, current - 1, AcqRel, Acquire) {
                Ok(_) => return,
                Err(seen) => current = seen,
            }
        }
    }

    /// The day's count by compare-and-swap.
    #[cold]
    fn count_day_exactly(&self, at: &Moment, limit: u64) -> Result<(), u64> {
        let word = self.w(Q_DAY);
        let mut current = word.load(Acquire);
        loop {
            let (day, count) = match current >> DAY_SHIFT {
                d if d == at.day => (d, current & COUNT_MASK),
                d if d > at.day && current != 0 => (d, current & COUNT_MASK),
                _ => (at.day, 0),
            };
            if count >= limit {
                return Err(at.day_ends);
            }
            let new = day << DAY_SHIFT | (count + 1);
            match word.compare_exchange_weak(current, new, AcqRel, Acquire) {
                Ok(_) => return Ok(()),
                Err(seen) => current = seen,
            }
        }
    }

    /// Takes `units` slots of the token ring at `now`, all or none, linked to the request's
    /// slot `rate` of the rate ring.
    fn take_tokens(
        window: &Window<'_>,
        units: u64,
        now: u64,
        rate: Ticket,
    ) -> Result<TokenTickets, u64> {
        if units == 1 {
            return window.try_admit_linked(now, rate).map(TokenTickets::One);
        }
        let mut taken = Vec::with_capacity(units as usize);
        for _ in 0..units {
            match window.try_admit_linked(now, rate) {
                Ok(t) => taken.push(t),
                Err(ready) => {
                    for t in taken {
                        window.cancel(t);
                    }
                    return Err(ready);
                }
            }
        }
        Ok(TokenTickets::Many(taken))
    }

    /// Admits a request of `tokens` estimated input tokens at `at` on every quota, or on none.
    /// The quotas that can be taken back (the windows' slots) are taken first and the day's
    /// count, which is never taken back, last. The token slots link to the request's rate
    /// slot, so that its completion stamps them all.
    #[inline]
    pub fn try_admit(&self, at: &Moment, tokens: u64) -> Result<QuotaTicket, Refusal> {
        let now = at.now;
        let unavailable = self.load(Q_UNAVAILABLE_UNTIL);
        let cool = self.load(Q_COOLDOWN) & COOLDOWN_MASK;
        let daily = self.load(Q_DAILY);
        let day = if daily > 0 {
            self.w(Q_DAY).load(Acquire)
        } else {
            0
        };
        // Unavailable, cooling, or a spent day: refused before any slot is touched.
        if now < unavailable || now < cool || (daily > 0 && count_of(day, at.day) >= daily) {
            return Err(self.blocked(at));
        }
        let rate_window = self.rate_window();
        let rate = rate_window.try_admit(now).map_err(Refusal::Until)?;
        let mut token_tickets = TokenTickets::None;
        if tokens > 0 && self.load(Q_TOKEN_SLOTS) > 0 {
            let (window, unit) = self.token_window();
            let taken = if tokens <= unit {
                // One slot (no division): the common case.
                window.try_admit_linked(now, rate).map(TokenTickets::One)
            } else {
                let units = tokens.div_ceil(unit).min(window.in_force as u64).max(1);
                Self::take_tokens(&window, units, now, rate)
            };
            match taken {
                Ok(t) => token_tickets = t,
                Err(ready) => {
                    rate_window.cancel(rate);
                    return Err(Refusal::Until(ready));
                }
            }
        }
        if daily > 0 {
            if let Err(ends) = self.count_day(at, daily, day) {
                self.take_back(&rate_window, rate, &token_tickets);
                return Err(Refusal::Until(ends));
            }
        }
        Ok(QuotaTicket {
            rate,
            tokens: token_tickets,
        })
    }

    /// Why a record that is unavailable, cooling down or spent for the day refuses.
    #[cold]
    fn blocked(&self, at: &Moment) -> Refusal {
        let unavailable = self.load(Q_UNAVAILABLE_UNTIL);
        if at.now < unavailable {
            return Refusal::Unavailable(unavailable);
        }
        let (cool, _) = self.cooldown();
        if at.now < cool {
            return Refusal::Until(cool);
        }
        Refusal::Until(at.day_ends)
    }

    /// Takes back the slots of an admission that another quota refused: the token slots
    /// first, then the rate slot they link to.
    #[cold]
    fn take_back(&self, rate_window: &Window<'_>, rate: Ticket, tokens: &TokenTickets) {
        let (window, _) = self.token_window();
        for t in tokens.as_slice() {
            window.cancel(*t);
        }
        rate_window.cancel(rate);
    }

    /// Stamps the admission's slots with `now` (the token slots follow the rate slot they link
    /// to), and corrects its token reservation to `prompt_tokens` when known: slots above it
    /// are freed, and missing ones taken if free.
    #[inline]
    pub fn complete(&self, ticket: QuotaTicket, now: u64, prompt_tokens: Option<u64>) {
        self.rate_window().complete(ticket.rate, now);
        if let Some(counted) = prompt_tokens {
            self.correct_tokens(ticket, now, counted);
        }
    }

    /// The token part of [`QuotaCell::complete`] beyond the link's implicit stamp.
    fn correct_tokens(&self, ticket: QuotaTicket, now: u64, counted: u64) {
        if self.load(Q_TOKEN_SLOTS) == 0 {
            return;
        }
        let held = ticket.tokens.as_slice();
        let (window, unit) = self.token_window();
        let needed = counted.div_ceil(unit).min(window.in_force as u64) as usize;
        for (i, t) in held.iter().enumerate() {
            if i < needed {
                window.complete(*t, now);
            } else {
                window.cancel(*t);
            }
        }
        // The service counted more than was reserved: count it too, as far as there is room
        // (beyond that the service's own limit answers, and its 429 cools the record).
        for _ in held.len()..needed {
            match window.try_admit(now) {
                Ok(t) => window.complete(t, now),
                Err(_) => break,
            }
        }
    }

    /// Makes this fresh record (new limits) carry on from `old`: the newest records of its
    /// windows that could still count (up to the new limits), the day's count, the cooldown,
    /// the model's availability and the counters, so that a change never lets more through
    /// than the stricter of the two would.
    pub fn carry_over(&self, old: &QuotaCell, now: u64) {
        let horizon = old.load(Q_WINDOW_MS).max(self.load(Q_WINDOW_MS));
        self.rate_window()
            .seed(&old.rate_window().live_records(now, horizon));
        if self.load(Q_TOKEN_SLOTS) > 0 && old.load(Q_TOKEN_SLOTS) > 0 {
            // Slots of another size: as many of the old reserved tokens as the new slots hold.
            let (old_window, old_unit) = old.token_window();
            let (new_window, new_unit) = self.token_window();
            let live = old_window.live_records(now, horizon);
            let n = (live.len() as u64 * old_unit).div_ceil(new_unit) as usize;
            let mut records = Vec::with_capacity(n);
            for i in 0..n {
                records.push(live[(i * live.len()) / n.max(1)]);
            }
            new_window.seed(&records);
        }
        for w in [
            Q_DAY,
            Q_COOLDOWN,
            Q_UNAVAILABLE_UNTIL,
            Q_CAPACITY_STREAK,
            Q_FALLBACKS,
        ] {
            self.w(w).store(old.load(w), Relaxed);
        }
    }

    pub fn snapshot(&self, at: &Moment) -> QuotaSnapshot {
        let (cooldown_until, cooldown_cause) = self.cooldown();
        let tokens_in_window = if self.load(Q_TOKEN_SLOTS) > 0 {
            let (window, unit) = self.token_window();
            window.usage(at.now).in_window * unit
        } else {
            0
        };
        let usage: Usage = self.rate_window().usage(at.now);
        QuotaSnapshot {
            group: self.group(),
            model: self.model(),
            tier: if self.load(Q_TIER) == 1 {
                Tier::Paid
            } else {
                Tier::Free
            },
            limits: self.limits(),
            usage,
            today: self.count_on(at.day),
            tokens_in_window,
            cooldown_until,
            cooldown_cause,
            unavailable_until: self.load(Q_UNAVAILABLE_UNTIL),
            fallbacks: self.load(Q_FALLBACKS),
        }
    }
}

impl super::QuotaRecord for QuotaCell {
    #[inline]
    fn try_admit(&self, at: &Moment, tokens: u64) -> Result<QuotaTicket, Refusal> {
        QuotaCell::try_admit(self, at, tokens)
    }

    #[inline]
    fn complete(
        &self,
        ticket: QuotaTicket,
        now: u64,
        prompt_tokens: Option<u64>,
    ) -> Result<(), Error> {
        QuotaCell::complete(self, ticket, now, prompt_tokens);
        Ok(())
    }

    fn cool_down(&self, until: u64, cause: CooldownCause) -> Result<(), Error> {
        self.extend_cooldown(until, cause);
        Ok(())
    }

    fn mark_unavailable(&self, until: u64) -> Result<(), Error> {
        self.w(Q_UNAVAILABLE_UNTIL).fetch_max(until, Relaxed);
        Ok(())
    }

    fn lower_limit(&self, kind: LimitKind, value: u64) -> Result<bool, Error> {
        let word = match kind {
            LimitKind::Rate => Q_RATE,
            LimitKind::Daily => Q_DAILY,
            LimitKind::Tokens => Q_TOKENS,
        };
        let value = value.max(1);
        let before = self.w(word).load(Relaxed);
        // No limit of that kind configured (0): nothing to lower.
        if before == 0 || value >= before {
            return Ok(false);
        }
        Ok(self.w(word).fetch_min(value, Relaxed) > value)
    }

    fn capacity_streak(&self, bump: bool) -> Result<u32, Error> {
        let word = self.w(Q_CAPACITY_STREAK);
        let before = if bump {
            word.fetch_add(1, Relaxed)
        } else {
            word.load(Relaxed)
        };
        Ok(before.min(u32::MAX as u64) as u32)
    }

    fn reset_capacity(&self) -> Result<(), Error> {
        let word = self.w(Q_CAPACITY_STREAK);
        // Read first: a success must not write a shared line every time.
        if word.load(Relaxed) != 0 {
            word.store(0, Relaxed);
        }
        Ok(())
    }

    fn count_fallback(&self) -> Result<(), Error> {
        self.w(Q_FALLBACKS).fetch_add(1, Relaxed);
        Ok(())
    }

    fn snapshot(&self, at: &Moment) -> Result<QuotaSnapshot, Error> {
        Ok(QuotaCell::snapshot(self, at))
    }

    fn cell(&self) -> Option<&QuotaCell> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::QuotaRecord;
    use std::ptr::NonNull;
    use std::sync::Arc;

    struct Block(Box<[AtomicU64]>);

    fn cell(limits: Limits) -> QuotaCell {
        let len = QuotaCell::words_for(&limits);
        let block = Arc::new(Block((0..len).map(|_| AtomicU64::new(0)).collect()));
        let ptr = NonNull::new(block.0.as_ptr().cast_mut()).unwrap();
        // SAFETY: the block lives as long as the words.
        let cell = QuotaCell(unsafe { Words::new(ptr, len, block) });
        cell.init(&limits, Tier::Free, &[7; 16], "gemini-3-flash");
        cell.cover_timeout(1_000);
        cell
    }

    fn limits(rate: u64, daily: Option<u64>, tokens: Option<u64>) -> Limits {
        Limits {
            rate: Quota::requests_per_window(rate, 1_000),
            daily: daily.map(Quota::requests_per_day),
            tokens: tokens.map(|t| Quota::tokens_per_window(t, 1_000)),
        }
    }

    fn at(now: u64, day: u64) -> Moment {
        Moment {
            now,
            day,
            day_ends: 1_000_000 * day,
        }
    }

    #[test]
    fn the_record_names_its_model_and_group_and_fits_its_limits() {
        let c = cell(limits(3, Some(20), Some(250_000)));
        assert_eq!(c.model(), "gemini-3-flash");
        assert_eq!(c.group(), [7; 16]);
        assert!(c.fits());
        assert_eq!(c.configured(), limits(3, Some(20), Some(250_000)));
        assert_eq!(token_geometry(250_000), (1020, 245));
        assert_eq!(token_geometry(10), (10, 1));
    }

    #[test]
    fn the_day_admits_its_limit_and_refuses_until_midnight_then_starts_again() {
        let c = cell(limits(100, Some(2), None));
        for now in [10, 20] {
            let t = c.try_admit(&at(now, 5), 0).unwrap();
            c.complete(t, now, None);
        }
        assert_eq!(c.try_admit(&at(30, 5), 0), Err(Refusal::Until(5_000_000)));
        assert_eq!(c.snapshot(&at(30, 5)).today, 2);
        let t = c.try_admit(&at(40, 6), 0).expect("a new day");
        c.complete(t, 40, None);
        assert_eq!(c.snapshot(&at(40, 6)).today, 1);
    }

    #[test]
    fn a_refusal_of_one_quota_takes_nothing_of_the_others() {
        // The window refuses: the day is not counted.
        let c = cell(limits(1, Some(5), None));
        let t = c.try_admit(&at(10, 1), 0).unwrap();
        assert!(matches!(c.try_admit(&at(11, 1), 0), Err(Refusal::Until(_))));
        assert_eq!(c.snapshot(&at(11, 1)).today, 1);
        c.complete(t, 11, None);
        // The tokens refuse: neither the window's slot nor the day is taken.
        let c = cell(limits(5, Some(5), Some(10)));
        let t = c.try_admit(&at(10, 1), 8).unwrap();
        assert!(c.try_admit(&at(11, 1), 5).is_err());
        let s = c.snapshot(&at(11, 1));
        assert_eq!((s.usage.in_window, s.today, s.tokens_in_window), (1, 1, 8));
        c.complete(t, 11, Some(3));
        assert_eq!(c.snapshot(&at(12, 1)).tokens_in_window, 3, "corrected down");
        let t = c
            .try_admit(&at(12, 1), 5)
            .expect("room after the correction");
        c.complete(t, 12, Some(7));
        assert_eq!(c.snapshot(&at(13, 1)).tokens_in_window, 10, "corrected up");
        // The day refuses last: the slots it had taken are free again.
        let c = cell(limits(2, Some(1), Some(10)));
        let t = c.try_admit(&at(10, 1), 4).unwrap();
        c.complete(t, 10, None);
        assert!(c.try_admit(&at(11, 1), 4).is_err());
        let s = c.snapshot(&at(11, 1));
        assert_eq!((s.usage.in_window, s.tokens_in_window), (1, 4));
    }

    #[test]
    fn a_request_larger_than_the_token_limit_waits_for_an_empty_window() {
        let c = cell(limits(5, None, Some(10)));
        let t = c.try_admit(&at(10, 1), 50).expect("takes the whole window");
        assert!(c.try_admit(&at(11, 1), 1).is_err());
        c.complete(t, 11, None);
        assert!(c.try_admit(&at(1_012, 1), 1).is_ok());
    }

    #[test]
    fn unavailable_and_cooldown_refuse_and_limits_only_go_down() {
        let c = cell(limits(3, Some(20), None));
        c.mark_unavailable(500).unwrap();
        assert_eq!(c.try_admit(&at(10, 1), 0), Err(Refusal::Unavailable(500)));
        c.extend_cooldown(700, CooldownCause::Capacity);
        assert_eq!(c.try_admit(&at(600, 1), 0), Err(Refusal::Until(700)));
        assert!(c.lower_limit(LimitKind::Rate, 1).unwrap());
        assert!(!c.lower_limit(LimitKind::Rate, 2).unwrap(), "never raised");
        assert!(
            !c.lower_limit(LimitKind::Tokens, 2).unwrap(),
            "none configured"
        );
        assert_eq!(c.limits().rate.limit, 1);
        assert_eq!(c.configured().rate.limit, 3);
        let t = c.try_admit(&at(800, 1), 0).unwrap();
        assert!(c.try_admit(&at(801, 1), 0).is_err(), "the lowered rate");
        c.complete(t, 801, None);
        assert_eq!(c.capacity_streak(true).unwrap(), 0);
        assert_eq!(c.capacity_streak(false).unwrap(), 1);
        c.reset_capacity().unwrap();
        assert_eq!(c.capacity_streak(false).unwrap(), 0);
    }

    /// Threads racing on one record, each admitting (and completing) until refused: how many
    /// got in, on day 3.
    fn race_for_the_day(c: &QuotaCell, threads: usize, attempts: u64) -> u64 {
        let admitted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    for i in 0..attempts {
                        if let Ok(t) = c.try_admit(&at(10 + i, 3), 1) {
                            admitted.fetch_add(1, Relaxed);
                            c.complete(t, 10 + i, None);
                        }
                    }
                });
            }
        });
        admitted.load(Relaxed)
    }

    #[test]
    fn far_from_the_limit_the_day_is_one_add_and_the_race_for_the_last_slots_is_exact() {
        // The first requests take the add (count + margin below the limit), the last ones the
        // compare-and-swap; threads crossing from one to the other admit exactly the limit.
        let limit = DAY_MARGIN + 40;
        let c = cell(limits(100_000, Some(limit), Some(1_000_000)));
        assert_eq!(race_for_the_day(&c, 4, 200), limit);
        assert_eq!(c.snapshot(&at(300, 3)).today, limit);
        assert!(c.try_admit(&at(300, 3), 1).is_err());
        // Started near the limit: the same.
        let c = cell(limits(100_000, Some(limit), None));
        for i in 0..limit - DAY_MARGIN - 3 {
            let t = c.try_admit(&at(1 + i, 3), 0).unwrap();
            c.complete(t, 1 + i, None);
        }
        assert_eq!(race_for_the_day(&c, 4, 100), DAY_MARGIN + 3);
        assert_eq!(c.snapshot(&at(300, 3)).today, limit);
        // Far from a large limit, many threads: never more than it, nor less.
        let c = cell(limits(100_000, Some(5_000), None));
        assert_eq!(race_for_the_day(&c, 4, 2_000), 5_000);
    }

    #[test]
    fn an_add_that_found_the_day_full_is_taken_back_unless_the_day_moved_on() {
        let c = cell(limits(10, Some(1_000), None));
        let word = |day: u64, count: u64| day << DAY_SHIFT | count;
        c.w(Q_DAY).store(word(4, 7), Relaxed);
        c.take_back_day(word(4, 6));
        assert_eq!(c.w(Q_DAY).load(Relaxed), word(4, 6));
        // The day moved on (a new day's count replaced the word): nothing to take back.
        c.w(Q_DAY).store(word(5, 1), Relaxed);
        c.take_back_day(word(4, 6));
        assert_eq!(c.w(Q_DAY).load(Relaxed), word(5, 1));
    }

    #[test]
    fn the_day_never_moves_back_to_an_earlier_day() {
        // Two processes straddle midnight: one is on day 6, the other still on day 5. The
        // later day's count is never reset by the earlier one's requests: they count on it.
        let c = cell(limits(100, Some(3), None));
        for (now, day) in [(10, 6), (11, 5), (12, 6)] {
            let t = c.try_admit(&at(now, day), 0).unwrap();
            c.complete(t, now, None);
        }
        assert_eq!(c.snapshot(&at(13, 6)).today, 3);
        assert!(
            c.try_admit(&at(14, 5), 0).is_err(),
            "day 6 is full, for everyone"
        );
        assert!(c.try_admit(&at(15, 6), 0).is_err());
    }

    #[test]
    fn token_slots_are_stamped_by_the_request_s_completion_and_freed_with_it() {
        let c = cell(limits(10, None, Some(10)));
        // Completed at 500: its tokens count until one window (1,000) after that.
        let t = c.try_admit(&at(10, 1), 10).unwrap();
        c.complete(t, 500, None);
        assert_eq!(c.snapshot(&at(1_500, 1)).tokens_in_window, 10);
        assert!(c.try_admit(&at(1_500, 1), 1).is_err());
        assert_eq!(c.snapshot(&at(1_501, 1)).tokens_in_window, 0);
        // Never completed (its process died): freed after the in-flight allowance (1,000)
        // and the window, with its rate slot.
        let _lost = c.try_admit(&at(2_000, 1), 10).unwrap();
        assert!(c.try_admit(&at(4_000, 1), 1).is_err());
        let s = c.snapshot(&at(4_000, 1));
        assert_eq!((s.usage.in_flight, s.tokens_in_window), (1, 10));
        let t = c.try_admit(&at(4_001, 1), 1).expect("freed");
        c.complete(t, 4_001, Some(1));
    }

    #[test]
    fn a_completion_after_the_limit_was_lowered_stamps_its_own_slot() {
        let c = cell(limits(3, None, None));
        let tickets: Vec<_> = (0..3)
            .map(|i| c.try_admit(&at(10 + i, 1), 0).unwrap())
            .collect();
        assert!(c.lower_limit(LimitKind::Rate, 1).unwrap());
        for t in tickets {
            c.complete(t, 20, None);
        }
        let s = c.snapshot(&at(21, 1));
        assert_eq!((s.usage.in_window, s.usage.in_flight), (3, 0));
    }

    #[test]
    fn threads_racing_for_the_last_of_the_day_never_exceed_it() {
        let c = cell(limits(1_000, Some(37), Some(100_000)));
        let admitted = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..100 {
                        if let Ok(t) = c.try_admit(&at(10 + i, 3), 10) {
                            admitted.fetch_add(1, Relaxed);
                            c.complete(t, 10 + i, None);
                        }
                    }
                });
            }
        });
        assert_eq!(admitted.load(Relaxed), 37);
        assert_eq!(c.snapshot(&at(200, 3)).today, 37);
    }
}
