//! Wall-clock arithmetic the daily quota needs: UTC civil dates, RFC 3339 text, and the day in
//! America/Los_Angeles, whose midnight resets requests-per-day quotas.
//!
//! Written out here rather than pulled from a time-zone crate: one zone, one rule set, a few
//! dozen lines. US rule since 2007: daylight time (UTC-7) from the second Sunday of March at
//! 02:00 standard time (10:00 UTC) to the first Sunday of November at 02:00 daylight time
//! (09:00 UTC); standard time (UTC-8) otherwise.

const MS_PER_DAY: i64 = 86_400_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let month = i64::from(month);
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date `(year, month, day)` of a day number (the inverse of [`days_from_civil`]).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Weekday of a day number, 0 = Sunday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7) // 1970-01-01 was a Thursday.
}

/// The day number of the `nth` (1-based) Sunday of a month.
fn nth_sunday(year: i64, month: u32, nth: i64) -> i64 {
    let first = days_from_civil(year, month, 1);
    first + (7 - weekday(first)) % 7 + 7 * (nth - 1)
}

/// Los Angeles' offset from UTC at instant `unix_ms`, in milliseconds (-7 h or -8 h).
pub fn utc_offset_ms(unix_ms: i64) -> i64 {
    let (year, _, _) = civil_from_days(unix_ms.div_euclid(MS_PER_DAY));
    let dst_start = nth_sunday(year, 3, 2) * MS_PER_DAY + 10 * MS_PER_HOUR;
    let dst_end = nth_sunday(year, 11, 1) * MS_PER_DAY + 9 * MS_PER_HOUR;
    if (dst_start..dst_end).contains(&unix_ms) {
        -7 * MS_PER_HOUR
    } else {
        -8 * MS_PER_HOUR
    }
}

/// The Pacific calendar day (as a day number) that instant `unix_ms` falls in.
pub fn pacific_day(unix_ms: i64) -> i64 {
    (unix_ms + utc_offset_ms(unix_ms)).div_euclid(MS_PER_DAY)
}

/// The instant of the first Pacific midnight after `unix_ms`.
pub fn next_pacific_midnight(unix_ms: i64) -> i64 {
    let next_day = pacific_day(unix_ms) + 1;
    // Midnight is never within an hour of a change (changes happen at 02:00), so the offset
    // of the instant a few hours before that midnight is the offset at it.
    let guess = next_day * MS_PER_DAY + 8 * MS_PER_HOUR;
    next_day * MS_PER_DAY - utc_offset_ms(guess - 3 * MS_PER_HOUR)
}

/// `YYYY-MM-DD` of a day number.
pub fn format_date(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}")
}

/// RFC 3339 in UTC with milliseconds: `2026-03-08T10:00:00.000Z`.
pub fn format_utc(unix_ms: i64) -> String {
    let days = unix_ms.div_euclid(MS_PER_DAY);
    let ms = unix_ms.rem_euclid(MS_PER_DAY);
    let (h, m, s, milli) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{}T{h:02}:{m:02}:{s:02}.{milli:03}Z", format_date(days))
}

/// Parses RFC 3339 (`2026-03-08T01:59:59Z`, fractional seconds and `±HH:MM` offsets allowed)
/// into milliseconds since the Unix epoch, saying what is wrong otherwise.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let bad =
        |why: &str| format!("invalid time '{text}': {why} (expected e.g. 2026-03-08T09:59:59Z)");
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad("not RFC 3339"));
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad("not RFC 3339"));
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = &text[range];
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("a field is not a number"));
        }
        part.parse::<i64>()
            .map_err(|_| bad("a field is not a number"))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month as u32) {
        return Err(bad("no such date"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(bad("no such time of day"));
    }
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad("empty fraction of a second"));
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded
            .parse()
            .map_err(|_| bad("bad fraction of a second"))?;
        rest = &fraction[digits..];
    }
    let offset_ms = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let hours: i64 = rest[1..3].parse().map_err(|_| bad("bad UTC offset"))?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| bad("bad UTC offset"))?;
            sign * (hours * 60 + minutes) * 60_000
        }
        _ => return Err(bad("missing or bad UTC offset ('Z' or '+HH:MM')")),
    };
    let days = days_from_civil(year, month as u32, day as u32);
    Ok(days * MS_PER_DAY + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms)
}

fn days_in_month(year: i64, month: u32) -> i64 {
    let next = if month == 12 {
        days_from_civil(year + 1, 1, 1)
    } else {
        days_from_civil(year, month + 1, 1)
    };
    next - days_from_civil(year, month, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_rfc3339(text).unwrap()
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        for days in [-800_000, -1, 0, 1, 19_000, 20_424, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(
            format_utc(at("2026-03-08T09:59:59.5+00:00")),
            "2026-03-08T09:59:59.500Z"
        );
        assert_eq!(at("2026-03-08T01:59:59-08:00"), at("2026-03-08T09:59:59Z"));
    }

    #[test]
    fn offsets_follow_daylight_saving() {
        // 2026: DST from Sunday 8 March 10:00 UTC to Sunday 1 November 09:00 UTC.
        assert_eq!(
            utc_offset_ms(at("2026-03-08T09:59:59.999Z")),
            -8 * MS_PER_HOUR
        );
        assert_eq!(utc_offset_ms(at("2026-03-08T10:00:00Z")), -7 * MS_PER_HOUR);
        assert_eq!(
            utc_offset_ms(at("2026-11-01T08:59:59.999Z")),
            -7 * MS_PER_HOUR
        );
        assert_eq!(utc_offset_ms(at("2026-11-01T09:00:00Z")), -8 * MS_PER_HOUR);
        assert_eq!(utc_offset_ms(at("2026-07-01T00:00:00Z")), -7 * MS_PER_HOUR);
        assert_eq!(utc_offset_ms(at("2026-12-25T00:00:00Z")), -8 * MS_PER_HOUR);
    }

    #[test]
    fn pacific_midnight_on_ordinary_and_change_days() {
        // Winter: midnight is 08:00 UTC.
        let t = at("2026-01-15T07:59:59.999Z");
        assert_eq!(format_date(pacific_day(t)), "2026-01-14");
        assert_eq!(next_pacific_midnight(t), at("2026-01-15T08:00:00Z"));
        assert_eq!(format_date(pacific_day(t + 1)), "2026-01-15");
        // Spring forward (8 March 2026): that day starts at 08:00 UTC and is 23 hours long.
        let t = at("2026-03-08T12:00:00Z");
        assert_eq!(format_date(pacific_day(t)), "2026-03-08");
        assert_eq!(next_pacific_midnight(t), at("2026-03-09T07:00:00Z"));
        assert_eq!(
            next_pacific_midnight(at("2026-03-07T09:00:00Z")),
            at("2026-03-08T08:00:00Z")
        );
        // Fall back (1 November 2026): starts at 07:00 UTC and is 25 hours long.
        let t = at("2026-11-01T07:00:00Z");
        assert_eq!(format_date(pacific_day(t)), "2026-11-01");
        assert_eq!(format_date(pacific_day(t - 1)), "2026-10-31");
        assert_eq!(next_pacific_midnight(t), at("2026-11-02T08:00:00Z"));
    }

    #[test]
    fn parse_names_the_problem() {
        for (text, why) in [
            ("yesterday", "not RFC 3339"),
            ("2026-02-30T00:00:00Z", "no such date"),
            ("2026-01-01T24:00:00Z", "no such time"),
            ("2026-01-01T00:00:00", "UTC offset"),
            ("2026-01-01T00:00:00.Z", "fraction"),
        ] {
            let err = parse_rfc3339(text).unwrap_err();
            assert!(err.contains(why) && err.contains(text), "{text}: {err}");
        }
    }
}
