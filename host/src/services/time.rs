//! Instants as the services read and write them: ISO-8601 text (RFC 3339 profile, with a
//! timezone) or Unix milliseconds in; `YYYY-MM-DDTHH:MM:SS.mmmZ` out, the form JavaScript's
//! `Date.prototype.toISOString` writes. Stored timestamps use that form, so their text order
//! is their time order.

use stage_store::now_ms;

/// 9999-12-31T23:59:59.999Z, the last instant the output form can write.
const MAX_MS: i64 = 253_402_300_799_999;
const MS_PER_DAY: i64 = 86_400_000;

/// What an instant must look like, for error messages.
pub const INSTANT_FORMS: &str =
    "an ISO-8601 time with a timezone (e.g. 2025-01-31T12:00:00Z) or Unix milliseconds, between 1970 and 9999";

/// Now, formatted.
pub fn now_iso() -> String {
    format_iso(now_ms())
}

/// `ms` (Unix milliseconds) as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_iso(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(MS_PER_DAY), ms.rem_euclid(MS_PER_DAY));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// Unix milliseconds, if `ms` is within the accepted range.
pub fn check_ms(ms: i64) -> Option<i64> {
    (0..=MAX_MS).contains(&ms).then_some(ms)
}

/// Parses `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DD[T ]HH:MM[:SS[.fraction]]` followed by
/// `Z` or an offset `±HH[:MM]`. Fractions beyond milliseconds are truncated.
pub fn parse_iso(text: &str) -> Option<i64> {
    let mut input = Cursor { bytes: text.as_bytes(), at: 0 };
    let year = input.number(4)?;
    input.expect(b'-')?;
    let month = input.number(2)?;
    input.expect(b'-')?;
    let day = input.number(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let midnight = days_from_civil(year, month, day) * MS_PER_DAY;
    if input.at_end() {
        return check_ms(midnight);
    }
    if !matches!(input.next()?, b'T' | b't' | b' ') {
        return None;
    }
    let hour = input.number(2)?;
    input.expect(b':')?;
    let minute = input.number(2)?;
    let (mut second, mut millis) = (0, 0);
    if input.skip(b':') {
        second = input.number(2)?;
        if input.skip(b'.') || input.skip(b',') {
            let digits = input.digits();
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            millis = digits.iter().chain(b"00").take(3).fold(0, |n, d| n * 10 + i64::from(d - b'0'));
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_minutes = match input.next()? {
        b'Z' | b'z' => 0,
        sign @ (b'+' | b'-') => {
            let hours = input.number(2)?;
            let minutes = if input.skip(b':') || !input.at_end() { input.number(2)? } else { 0 };
            if hours > 23 || minutes > 59 {
                return None;
            }
            if sign == b'-' { -(hours * 60 + minutes) } else { hours * 60 + minutes }
        }
        _ => return None,
    };
    if !input.at_end() {
        return None;
    }
    let local = midnight + ((hour * 60 + minute) * 60 + second) * 1000 + millis;
    check_ms(local - offset_minutes * 60_000)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.at == self.bytes.len()
    }
    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }
    fn skip(&mut self, byte: u8) -> bool {
        let found = self.bytes.get(self.at) == Some(&byte);
        self.at += usize::from(found);
        found
    }
    fn expect(&mut self, byte: u8) -> Option<()> {
        self.skip(byte).then_some(())
    }
    /// Exactly `width` ASCII digits as a number.
    fn number(&mut self, width: usize) -> Option<i64> {
        let digits = self.bytes.get(self.at..self.at + width)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.at += width;
        Some(digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    }
    /// All ASCII digits from here on.
    fn digits(&mut self) -> &[u8] {
        let start = self.at;
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        &self.bytes[start..self.at]
    }
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
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * (month + if month > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::{format_iso, parse_iso};

    #[test]
    fn formats_like_javascript_to_iso_string() {
        assert_eq!(format_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_iso(1_738_324_800_123), "2025-01-31T12:00:00.123Z");
        assert_eq!(format_iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_iso(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_rfc_3339_forms() {
        assert_eq!(parse_iso("2025-01-31T12:00:00Z"), Some(1_738_324_800_000));
        assert_eq!(parse_iso("2025-01-31T12:00:00.123Z"), Some(1_738_324_800_123));
        assert_eq!(parse_iso("2025-01-31T12:00:00.1234567z"), Some(1_738_324_800_123));
        assert_eq!(parse_iso("2025-01-31t12:00:00.5Z"), Some(1_738_324_800_500));
        assert_eq!(parse_iso("2025-01-31 14:30:00+02:30"), Some(1_738_324_800_000));
        assert_eq!(parse_iso("2025-01-31T07:00:00-0500"), Some(1_738_324_800_000));
        assert_eq!(parse_iso("2025-01-31T14:00+02"), Some(1_738_324_800_000));
        assert_eq!(parse_iso("2025-01-31T12:00Z"), Some(1_738_324_800_000));
        assert_eq!(parse_iso("2025-01-31"), Some(1_738_281_600_000));
        assert_eq!(parse_iso("2024-02-29T00:00:00Z"), Some(1_709_164_800_000));
    }

    #[test]
    fn refuses_what_is_not_an_instant() {
        for bad in [
            "",
            "yesterday",
            "2025-01-31T12:00:00",
            "2025-13-01",
            "2025-02-29",
            "2025-01-32",
            "2025-01-31T24:00:00Z",
            "2025-01-31T12:60:00Z",
            "2025-01-31T12:00:60Z",
            "2025-01-31T12:00:00.Z",
            "2025-01-31T12:00:00Zjunk",
            "2025-01-31T12:00:00+2",
            "1969-12-31T23:59:59Z",
            "25-01-31",
            "+2025-01-31",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trips_through_text() {
        for ms in [0, 1, 59_999, 86_399_999, 1_738_324_800_123, 4_102_444_800_000, 253_402_300_799_999] {
            assert_eq!(parse_iso(&format_iso(ms)), Some(ms), "{ms}");
        }
    }
}
