//! Timestamps as the pipeline stores and compares them.
//!
//! Every time we write is UTC with exactly three fractional digits
//! (`2026-11-25T10:15:30.123Z`), so the strings sort like the instants they name: the table's
//! index on "files with tag X, newest first" relies on it. Parsing accepts the RFC 3339 forms
//! that arrive from S3 events, SageMaker notifications and query parameters (any number of
//! fractional digits, `Z` or a numeric offset, or a bare date).

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {value:?}: {problem} (expected RFC 3339, e.g. 2026-11-25T10:15:30Z)")]
pub struct TimestampError {
    /// The text as given.
    pub value: String,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Years outside 0..=9999 are clamped so the width (and the ordering) never changes.
pub fn format_millis(epoch_ms: i64) -> String {
    const MIN: i64 = -62_167_219_200_000; // 0000-01-01T00:00:00.000Z
    const MAX: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    let ms = epoch_ms.clamp(MIN, MAX);
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (in_day / 3_600_000, in_day / 60_000 % 60);
    let (second, milli) = (in_day / 1000 % 60, in_day % 1000);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{milli:03}Z")
}

/// Parses an RFC 3339 timestamp (or a bare `YYYY-MM-DD`, meaning its midnight UTC) into
/// milliseconds since the Unix epoch; digits beyond milliseconds are truncated.
pub fn parse_millis(text: &str) -> Result<i64, TimestampError> {
    let fail = |problem| TimestampError {
        value: text.to_string(),
        problem,
    };
    let bytes = text.trim().as_bytes();
    let number = |range: std::ops::Range<usize>, problem| -> Result<i64, TimestampError> {
        let part = bytes.get(range).ok_or_else(|| fail(problem))?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return Err(fail(problem));
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let year = number(0..4, "bad year")?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return Err(fail("date must be YYYY-MM-DD"));
    }
    let month = number(5..7, "bad month")?;
    let day = number(8..10, "bad day")?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(fail("no such date"));
    }
    let date_ms = days_from_civil(year, month, day) * 86_400_000;
    if bytes.len() == 10 {
        return Ok(date_ms);
    }
    if !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return Err(fail("expected 'T' after the date"));
    }
    let hour = number(11..13, "bad hour")?;
    if bytes.get(13) != Some(&b':') || bytes.get(16) != Some(&b':') {
        return Err(fail("time must be HH:MM:SS"));
    }
    let minute = number(14..16, "bad minute")?;
    let second = number(17..19, "bad second")?;
    if hour > 23 || minute > 59 || second > 60 {
        return Err(fail("time out of range"));
    }
    let mut rest = &bytes[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let digits = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return Err(fail("empty fraction of a second"));
        }
        for (i, d) in fraction[..digits].iter().take(3).enumerate() {
            millis += i64::from(d - b'0') * [100, 10, 1][i];
        }
        rest = &fraction[digits..];
    }
    let offset_ms = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [h1, h2, m1, m2];
            if !digits.iter().all(|d| d.is_ascii_digit()) {
                return Err(fail("bad offset"));
            }
            let hours = i64::from((h1 - b'0') * 10 + (h2 - b'0'));
            let minutes = i64::from((m1 - b'0') * 10 + (m2 - b'0'));
            if hours > 23 || minutes > 59 {
                return Err(fail("bad offset"));
            }
            let magnitude = (hours * 60 + minutes) * 60_000;
            if *sign == b'+' {
                magnitude
            } else {
                -magnitude
            }
        }
        _ => return Err(fail("expected 'Z' or an offset like +02:00")),
    };
    Ok(date_ms + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms)
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_millis(1_643_150_760_608), "2022-01-25T22:46:00.608Z");
        assert_eq!(format_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_millis(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_the_forms_we_receive() {
        assert_eq!(
            parse_millis("2022-01-25T22:46:00.608Z"),
            Ok(1_643_150_760_608)
        );
        assert_eq!(parse_millis("2022-01-25T22:46:00Z"), Ok(1_643_150_760_000));
        assert_eq!(
            parse_millis("2022-01-25T22:46:00.608123456Z"),
            Ok(1_643_150_760_608)
        );
        assert_eq!(
            parse_millis("2022-01-25T22:46:00.6Z"),
            Ok(1_643_150_760_600)
        );
        assert_eq!(
            parse_millis("2022-01-26T00:46:00.608+02:00"),
            Ok(1_643_150_760_608)
        );
        assert_eq!(
            parse_millis("2022-01-25T20:46:00.608-02:00"),
            Ok(1_643_150_760_608)
        );
        assert_eq!(parse_millis("2022-01-25"), Ok(1_643_068_800_000));
    }

    #[test]
    fn refuses_what_is_not_a_timestamp() {
        for bad in [
            "",
            "yesterday",
            "2022-13-01",
            "2022-02-30",
            "2021-02-29",
            "2022-01-25T24:00:00Z",
            "2022-01-25T22:46:00",
            "2022-01-25T22:46:00.Z",
            "2022-01-25T22:46Z",
            "2022-1-25",
            "2022-01-25T22:46:00+2:00",
            "2022-01-25X22:46:00Z",
            "+022-01-25",
        ] {
            let err = parse_millis(bad).expect_err(bad);
            assert_eq!(err.value, bad);
        }
    }

    /// The Gregorian leap rule as the calendar states it.
    fn model_leap(year: i64) -> bool {
        (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
    }

    /// Days in a month, from the rhyme: thirty days have September, April, June and
    /// November; February 28, or 29 in a leap year; all the rest 31.
    fn model_month_days(year: i64, month: i64) -> i64 {
        match month {
            9 | 4 | 6 | 11 => 30,
            2 if model_leap(year) => 29,
            2 => 28,
            _ => 31,
        }
    }

    /// Days from 1970-01-01 to a date, counted year by year and month by month.
    fn model_days(year: i64, month: i64, day: i64) -> i64 {
        let mut days = 0;
        for y in year.min(1970)..year.max(1970) {
            let length = if model_leap(y) { 366 } else { 365 };
            days += if year < 1970 { -length } else { length };
        }
        for m in 1..month {
            days += model_month_days(year, m);
        }
        days + day - 1
    }

    #[test]
    fn leap_years_and_month_lengths_at_their_edges() {
        for (date, valid) in [
            ("2000-02-29", true),  // divisible by 400
            ("2400-02-29", true),  // divisible by 400
            ("2024-02-29", true),  // divisible by 4, not by 100
            ("0004-02-29", true),  // the first leap year of the era
            ("1900-02-29", false), // divisible by 100, not by 400
            ("2100-02-29", false), // divisible by 100, not by 400
            ("2023-02-29", false), // not divisible by 4
            ("2023-02-28", true),
            ("2023-01-31", true),
            ("2023-03-31", true),
            ("2023-04-30", true),
            ("2023-04-31", false),
            ("2023-06-31", false),
            ("2023-09-31", false),
            ("2023-11-31", false),
            ("2023-12-31", true),
            ("2023-12-32", false),
            ("2023-00-10", false),
            ("2023-13-10", false),
            ("2023-05-00", false),
            ("0000-01-01", true),
            ("9999-12-31", true),
        ] {
            let parsed = parse_millis(date);
            if valid {
                let year: i64 = date[..4].parse().expect("digits");
                let month: i64 = date[5..7].parse().expect("digits");
                let day: i64 = date[8..].parse().expect("digits");
                assert_eq!(
                    parsed,
                    Ok(model_days(year, month, day) * 86_400_000),
                    "{date}"
                );
            } else {
                assert_eq!(
                    parsed,
                    Err(TimestampError {
                        value: date.into(),
                        problem: "no such date"
                    }),
                    "{date}"
                );
            }
        }
    }

    #[test]
    fn times_and_offsets_at_their_edges() {
        let day = 1_643_068_800_000; // 2022-01-25T00:00:00Z
        let ok = |text: &str, ms: i64| assert_eq!(parse_millis(text), Ok(day + ms), "{text}");
        ok("2022-01-25T23:59:59.999Z", 86_399_999);
        ok("2022-01-25T23:59:60Z", 86_400_000); // a leap second, as RFC 3339 allows
        ok("2022-01-25t00:00:01z", 1_000);
        ok("2022-01-25 00:00:01Z", 1_000);
        ok("  2022-01-25T00:00:00.1Z \n", 100);
        ok("2022-01-25T00:00:00.12Z", 120);
        ok("2022-01-25T00:00:00.123Z", 123);
        ok("2022-01-25T00:00:00.1239Z", 123);
        ok(
            "2022-01-25T12:00:00+23:59",
            12 * 3_600_000 - (23 * 60 + 59) * 60_000,
        );
        ok(
            "2022-01-25T12:00:00-23:59",
            12 * 3_600_000 + (23 * 60 + 59) * 60_000,
        );
        ok("2022-01-25T12:00:00+00:00", 12 * 3_600_000);
        ok("2022-01-25T12:00:00-00:30", 12 * 3_600_000 + 30 * 60_000);
        for (text, problem) in [
            ("2022-01-25T24:00:00Z", "time out of range"),
            ("2022-01-25T23:60:00Z", "time out of range"),
            ("2022-01-25T23:59:61Z", "time out of range"),
            ("2022-01-25T12:00:00+24:00", "bad offset"),
            ("2022-01-25T12:00:00+00:60", "bad offset"),
            ("2022-01-25T12:00:00+0a:00", "bad offset"),
            ("2022-01-25T12:00:00+00:0a", "bad offset"),
            (
                "2022-01-25T12:00:00+01",
                "expected 'Z' or an offset like +02:00",
            ),
            (
                "2022-01-25T12:00:00.5",
                "expected 'Z' or an offset like +02:00",
            ),
            ("2022-01-25T12:00:00.Z", "empty fraction of a second"),
            ("2022-01-25T12-00:00Z", "time must be HH:MM:SS"),
            ("2022-01-25T12:00-00Z", "time must be HH:MM:SS"),
            ("2022-01-25T1a:00:00Z", "bad hour"),
            ("2022-01-25T12:0a:00Z", "bad minute"),
            ("2022-01-25T12:00:0aZ", "bad second"),
            ("2022-01-25X12:00:00Z", "expected 'T' after the date"),
            ("2022/01/25", "date must be YYYY-MM-DD"),
            ("2022-01/25", "date must be YYYY-MM-DD"),
            ("2022-0a-25", "bad month"),
            ("2022-01-2a", "bad day"),
            ("20a2-01-25", "bad year"),
        ] {
            assert_eq!(
                parse_millis(text),
                Err(TimestampError {
                    value: text.into(),
                    problem
                }),
                "{text}"
            );
        }
    }

    #[test]
    fn formats_the_ends_of_the_range_and_clamps_beyond() {
        assert_eq!(
            format_millis(-62_167_219_200_000),
            "0000-01-01T00:00:00.000Z"
        );
        assert_eq!(format_millis(i64::MIN), "0000-01-01T00:00:00.000Z");
        assert_eq!(
            format_millis(253_402_300_799_999),
            "9999-12-31T23:59:59.999Z"
        );
        assert_eq!(format_millis(i64::MAX), "9999-12-31T23:59:59.999Z");
        assert_eq!(format_millis(86_399_999), "1970-01-01T23:59:59.999Z");
        assert_eq!(format_millis(-86_400_000), "1969-12-31T00:00:00.000Z");
        assert_eq!(format_millis(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(format_millis(951_868_800_000), "2000-03-01T00:00:00.000Z");
    }

    proptest! {
        #[test]
        fn parse_matches_a_calendar_model(
            year in 0i64..=9999, month in 0i64..=13, day in 0i64..=32,
            hour in 0i64..=24, minute in 0i64..=60, second in 0i64..=61,
            fraction in proptest::option::of("[0-9]{1,5}"),
            offset in proptest::option::of((any::<bool>(), 0i64..=24, 0i64..=60)),
        ) {
            let mut text = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}");
            if let Some(digits) = &fraction {
                text.push('.');
                text.push_str(digits);
            }
            match offset {
                Some((east, h, m)) => text.push_str(&format!("{}{h:02}:{m:02}", if east { '+' } else { '-' })),
                None => text.push('Z'),
            }
            let date_ok = (1..=12).contains(&month) && (1..=model_month_days(year, month)).contains(&day);
            let time_ok = hour <= 23 && minute <= 59 && second <= 60;
            let offset_ok = offset.is_none_or(|(_, h, m)| h <= 23 && m <= 59);
            let parsed = parse_millis(&text);
            if date_ok && time_ok && offset_ok {
                let millis = fraction.map_or(0, |digits| {
                    format!("{digits:0<3}")[..3].parse::<i64>().expect("digits")
                });
                let offset_ms = offset.map_or(0, |(east, h, m)| {
                    let magnitude = (h * 60 + m) * 60_000;
                    if east { magnitude } else { -magnitude }
                });
                let expected = model_days(year, month, day) * 86_400_000
                    + ((hour * 60 + minute) * 60 + second) * 1000 + millis - offset_ms;
                prop_assert_eq!(parsed, Ok(expected), "{}", text);
            } else {
                prop_assert!(parsed.is_err(), "{}", text);
            }
        }

        #[test]
        fn format_matches_a_calendar_model(
            year in 0i64..=9999, month in 1i64..=12, day in 1i64..=31, ms in 0i64..86_400_000
        ) {
            prop_assume!(day <= model_month_days(year, month));
            let instant = model_days(year, month, day) * 86_400_000 + ms;
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
                ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000
            );
            prop_assert_eq!(format_millis(instant), expected);
        }

        #[test]
        fn format_then_parse_round_trips(ms in -62_167_219_200_000i64..=253_402_300_799_999) {
            let text = format_millis(ms);
            prop_assert_eq!(text.len(), 24);
            prop_assert_eq!(parse_millis(&text), Ok(ms));
        }

        #[test]
        fn string_order_is_time_order(a in 0i64..=253_402_300_799_999, b in 0i64..=253_402_300_799_999) {
            prop_assert_eq!(format_millis(a).cmp(&format_millis(b)), a.cmp(&b));
        }

        #[test]
        fn arbitrary_text_is_refused_naming_it(text in any::<String>()) {
            // Only text that starts (after blanks) with four digits and a dash can be a date.
            let t = text.trim().as_bytes();
            let date_like = t.len() >= 5 && t[..4].iter().all(u8::is_ascii_digit) && t[4] == b'-';
            match parse_millis(&text) {
                Ok(ms) => {
                    prop_assert!(date_like);
                    prop_assert_eq!(parse_millis(&format_millis(ms)), Ok(ms));
                }
                Err(e) => {
                    prop_assert_eq!(&e.value, &text);
                    if !date_like {
                        prop_assert!(["bad year", "date must be YYYY-MM-DD"].contains(&e.problem));
                    }
                }
            }
        }
    }
}
