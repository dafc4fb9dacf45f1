//! Timestamps: ISO-8601 text to Unix nanoseconds and back.
//!
//! The canonical format writes times as ISO-8601 text with nine fractional digits; OTLP
//! writes Unix nanoseconds. Everything inside halo-rs compares `i64` nanoseconds, so both
//! meet here. The hand-written fast path handles the shapes exporters actually write:
//! `2026-04-23T05:32:00.123456789Z`, any fraction length, `Z` or a numeric offset, and
//! also no zone at all (`2026-04-23T05:32:00.123456`, Python's `isoformat()` of a naive
//! time), which is read as UTC, as the reference engine compares such times as text
//! beside zoned ones. Anything else falls back to chrono's RFC 3339 parser.

use std::cell::Cell;

/// Parses an ISO-8601 timestamp (RFC 3339, or without a zone, read as UTC; `T` or a space
/// between date and time) into nanoseconds since the Unix epoch.
///
/// Returns `None` when the text is not a timestamp.
pub fn parse_rfc3339_nanos(text: &str) -> Option<i64> {
    fast_path(text.as_bytes()).or_else(|| {
        chrono::DateTime::parse_from_rfc3339(text)
            .ok()
            .and_then(|t| t.timestamp_nanos_opt())
    })
}

/// Parses a time given as a bound (a filter's `start_time_gte`, say): any timestamp
/// [`parse_rfc3339_nanos`] reads, or a bare date (`2026-04-23`), read as midnight UTC.
pub fn parse_time_bound_nanos(text: &str) -> Option<i64> {
    let text = text.trim();
    parse_rfc3339_nanos(text).or_else(|| {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
        date_days(year, month, day)?.checked_mul(86_400 * 1_000_000_000)
    })
}

fn digits(bytes: &[u8], from: usize, len: usize) -> Option<i64> {
    let mut value = 0i64;
    for &b in bytes.get(from..from + len)? {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(value)
}

thread_local! {
    /// The last date-and-minute prefix read on this thread (`2026-04-21T08:00`, as 16
    /// bytes) and its seconds since the epoch: spans come in time order, so consecutive
    /// timestamps share it, and the calendar arithmetic is most of a timestamp's cost.
    static LAST_MINUTE: Cell<(u128, i64)> = const { Cell::new((0, 0)) };
}

fn fast_path(b: &[u8]) -> Option<i64> {
    if b.len() < 16 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' {
        return None;
    }
    let prefix = u128::from_le_bytes(b[..16].try_into().ok()?);
    let (last_prefix, last_secs) = LAST_MINUTE.get();
    let minute_secs = if prefix == last_prefix {
        last_secs
    } else {
        let secs = minute_secs(b)?;
        LAST_MINUTE.set((prefix, secs));
        secs
    };
    // Seconds may be left out (`isoformat(timespec='minutes')`).
    let (second, seconds_end) = match b.get(16) {
        Some(b':') => (digits(b, 17, 2)?, 19),
        _ => (0, 16),
    };
    if second > 60 {
        return None;
    }
    let mut i = seconds_end;
    let mut nanos = 0i64;
    // ISO-8601 allows a comma before the fraction too; a fraction needs seconds.
    if seconds_end == 19 && matches!(b.get(i), Some(b'.' | b',')) {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + i64::from(b[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n..9 {
            nanos *= 10;
        }
    }
    let offset_secs = zone_offset_secs(&b[i..])?;
    let secs = minute_secs + second - offset_secs;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// The seconds since the epoch of the date and minute in the first 16 bytes of `b`
/// (`2026-04-21T08:00`, separators already checked); `None` when that is no time.
fn minute_secs(b: &[u8]) -> Option<i64> {
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    Some(date_days(year, month, day)? * 86_400 + hour * 3600 + minute * 60)
}

/// Days since 1970-01-01 of a date, or `None` when there is no such date (2026-02-30).
fn date_days(year: i64, month: i64, day: i64) -> Option<i64> {
    ((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day))
        .then(|| days_from_civil(year, month, day))
}

/// The zone at the end of a timestamp, in seconds east of UTC: `Z`, `+hh:mm`, `+hhmm`,
/// `+hh`, or nothing (UTC).
fn zone_offset_secs(zone: &[u8]) -> Option<i64> {
    let (sign, rest) = match zone {
        [] | [b'Z' | b'z'] => return Some(0),
        [b'+', rest @ ..] => (1, rest),
        [b'-', rest @ ..] => (-1, rest),
        _ => return None,
    };
    let (h, m) = match rest.len() {
        2 => (digits(rest, 0, 2)?, 0),
        4 => (digits(rest, 0, 2)?, digits(rest, 2, 2)?),
        5 if rest[2] == b':' => (digits(rest, 0, 2)?, digits(rest, 3, 2)?),
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// The days in `month` of `year` (proleptic Gregorian): 2026-02-30 is no date.
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats Unix nanoseconds as RFC 3339 UTC text with nine fractional digits, the way the
/// canonical format writes it.
pub fn format_rfc3339_nanos(nanos: i64) -> String {
    let secs = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000) as u32;
    match chrono::DateTime::from_timestamp(secs, sub) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S.%fZ").to_string(),
        None => nanos.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_path_agrees_with_chrono() {
        for text in [
            "2026-04-23T05:32:00.000000000Z",
            "2026-04-23T05:32:00.1Z",
            "2026-04-23T05:32:00Z",
            "1999-12-31T23:59:59.999999999+02:00",
            "2024-02-29T12:00:00.123456-05:30",
            "1969-07-20T20:17:40Z",
        ] {
            let expected = chrono::DateTime::parse_from_rfc3339(text)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap();
            assert_eq!(fast_path(text.as_bytes()), Some(expected), "{text}");
        }
    }

    #[test]
    fn the_remembered_minute_gives_what_chrono_gives_in_any_order() {
        // Timestamps that share a minute, follow one another, differ only in the date or
        // the zone, and invalid ones between them, so each is read with the remembered
        // minute of another.
        let texts = [
            "2026-04-23T05:32:00.5Z",
            "2026-04-23T05:32:59.999999999Z",
            "2026-04-23T05:32:10+02:00",
            "2026-04-23T05:33:00Z",
            "2026-02-30T05:33:00Z",
            "2026-04-24T05:32:00Z",
            "2024-02-29T05:32:00Z",
            "2025-02-29T05:32:00Z",
            "2026-04-23T05:32:61Z",
            "2026-04-23T24:32:00Z",
        ];
        let mut rng = crate::test_rng::XorShift(0x853c_49e6_748f_ea9b);
        for _ in 0..2_000 {
            let text = texts[(rng.next() % texts.len() as u64) as usize];
            let expected = chrono::DateTime::parse_from_rfc3339(text)
                .ok()
                .and_then(|t| t.timestamp_nanos_opt());
            assert_eq!(parse_rfc3339_nanos(text), expected, "{text}");
        }
    }

    #[test]
    fn reads_iso_8601_without_a_zone_as_utc() {
        let utc = parse_rfc3339_nanos("2026-04-23T05:32:00Z").unwrap();
        for text in [
            "2026-04-23T05:32:00",
            "2026-04-23 05:32:00",
            "2026-04-23t05:32:00",
            "2026-04-23T05:32:00+00",
            "2026-04-23T07:32:00+0200",
            "2026-04-23T00:02:00-05:30",
            "2026-04-23T05:32",
            "2026-04-23T05:32Z",
            "2026-04-23 07:32+02:00",
        ] {
            assert_eq!(parse_rfc3339_nanos(text), Some(utc), "{text}");
        }
        // Python's isoformat() of a naive time, with microseconds.
        assert_eq!(
            parse_rfc3339_nanos("2026-04-23T05:32:00.123456"),
            Some(utc + 123_456_000)
        );
        assert_eq!(
            parse_rfc3339_nanos("2026-04-23T05:32:00,5Z"),
            Some(utc + 500_000_000)
        );
    }

    #[test]
    fn a_bound_may_be_a_bare_date() {
        assert_eq!(
            parse_time_bound_nanos("2026-04-23"),
            parse_rfc3339_nanos("2026-04-23T00:00:00Z")
        );
        assert_eq!(
            parse_time_bound_nanos(" 2026-04-23T05:32:00+01:00 "),
            parse_rfc3339_nanos("2026-04-23T04:32:00Z")
        );
        assert_eq!(parse_time_bound_nanos("2026-4-23"), None);
        assert_eq!(parse_time_bound_nanos("2026-04-32"), None);
        assert_eq!(parse_time_bound_nanos("2026-02-30"), None);
        assert!(parse_time_bound_nanos("2024-02-29").is_some());
    }

    #[test]
    fn rejects_non_timestamps() {
        for text in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2025-02-29T00:00:00",
            "2026-04-31 00:00:00",
            "2026-04-23T05:3",
            "2026-04-23T05:32.5",
            "2026-04-23T05:32:00+2",
            "2026-04-23T05:32:00+24:00",
            "2026-04-23T05:32:00 UTC",
            "2026-04-23T05:32:00.Z",
            "12345",
        ] {
            assert_eq!(parse_rfc3339_nanos(text), None, "{text}");
        }
    }

    #[test]
    fn round_trips_through_text() {
        let n = parse_rfc3339_nanos("2026-04-23T05:32:00.123456789Z").unwrap();
        assert_eq!(format_rfc3339_nanos(n), "2026-04-23T05:32:00.123456789Z");
    }
}
