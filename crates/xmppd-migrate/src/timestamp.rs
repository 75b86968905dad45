//! XEP-0082 `DateTime` values, as carried by the XEP-0203 `<delay/>` stamps
//! of offline messages (XEP-0227 §4.5).

use std::fmt;

use xmppd_proto::datetime::{civil_from_days, days_from_civil};

/// Milliseconds per day.
const DAY_MS: i64 = 86_400_000;

/// A point in time with millisecond precision, between
/// `0000-01-01T00:00:00Z` and `9999-12-31T23:59:59.999Z` (the years a
/// XEP-0082 `DateTime` can spell).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    unix_ms: i64,
}

impl Timestamp {
    /// The earliest representable instant, `0000-01-01T00:00:00Z`.
    pub const MIN: Timestamp = Timestamp { unix_ms: days_from_civil(0, 1, 1) * DAY_MS };
    /// The latest representable instant, `9999-12-31T23:59:59.999Z`.
    pub const MAX: Timestamp = Timestamp { unix_ms: days_from_civil(10_000, 1, 1) * DAY_MS - 1 };

    /// The instant `unix_ms` milliseconds after 1970-01-01T00:00:00Z, if it
    /// lies in the representable range.
    pub fn from_unix_ms(unix_ms: i64) -> Option<Timestamp> {
        (Timestamp::MIN.unix_ms..=Timestamp::MAX.unix_ms).contains(&unix_ms).then_some(Timestamp { unix_ms })
    }

    /// Milliseconds since 1970-01-01T00:00:00Z (negative before).
    pub fn unix_ms(self) -> i64 {
        self.unix_ms
    }

    /// Parses a XEP-0082 `DateTime` (`CCYY-MM-DDThh:mm:ss[.sss](Z|±hh:mm)`);
    /// fractions beyond milliseconds are truncated. COMPAT: also accepts the
    /// XEP-0091 legacy form `CCYYMMDDThh:mm:ss` (UTC), found in offline
    /// messages stored by old servers. Surrounding whitespace is ignored.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let text = text.trim();
        let (date, rest) = text.split_once('T')?;
        let (year, month, day) = parse_date(date)?;
        let time = rest.get(..8)?;
        let (hour, minute, second) = parse_time(time)?;
        let mut rest = rest.get(8..)?;
        let mut millis = 0i64;
        if let Some(fraction) = rest.strip_prefix('.') {
            let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            for (index, digit) in fraction.bytes().take(3).enumerate().take(digits) {
                millis += i64::from(digit - b'0') * [100, 10, 1].get(index).copied().unwrap_or(0);
            }
            rest = fraction.get(digits..)?;
        }
        let offset_minutes = match rest {
            "Z" => 0,
            // The legacy form has no zone designator and is always UTC.
            "" if !date.contains('-') => 0,
            _ => {
                let (sign, zone) = match rest.as_bytes().first()? {
                    b'+' => (1, rest.get(1..)?),
                    b'-' => (-1, rest.get(1..)?),
                    _ => return None,
                };
                let (hours, minutes) = zone.split_once(':')?;
                let hours = two_digits(hours).filter(|h| *h <= 23)?;
                let minutes = two_digits(minutes).filter(|m| *m <= 59)?;
                sign * (hours * 60 + minutes)
            }
        };
        if !date.contains('-') && rest.starts_with(['+', '-', 'Z']) {
            // The legacy form never carries a zone.
            return None;
        }
        let days = days_from_civil(year, month, day);
        // A leap second (ss = 60) is folded onto the last second of its minute.
        let seconds = hour * 3600 + minute * 60 + second.min(59) - offset_minutes * 60;
        Timestamp::from_unix_ms(days * DAY_MS + seconds * 1000 + millis)
    }
}

impl fmt::Display for Timestamp {
    /// Formats as a XEP-0082 `DateTime` in UTC, with milliseconds only when
    /// they are not zero (`1469-07-21T00:32:29Z`, `2021-09-22T14:15:22.123Z`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.unix_ms.div_euclid(DAY_MS);
        let ms_of_day = self.unix_ms.rem_euclid(DAY_MS);
        let (year, month, day) = civil_from_days(days);
        let seconds = ms_of_day / 1000;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            seconds / 3600,
            seconds % 3600 / 60,
            seconds % 60
        )?;
        let millis = ms_of_day % 1000;
        if millis != 0 {
            write!(f, ".{millis:03}")?;
        }
        f.write_str("Z")
    }
}

fn two_digits(text: &str) -> Option<i64> {
    digits(text, 2)
}

/// Exactly `count` ASCII digits.
fn digits(text: &str, count: usize) -> Option<i64> {
    if text.len() != count || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `CCYY-MM-DD`, or COMPAT `CCYYMMDD` (XEP-0091).
fn parse_date(date: &str) -> Option<(i64, i64, i64)> {
    let (year, month, day) = if date.len() == 10 {
        let mut parts = date.split('-');
        let fields = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        fields
    } else if date.len() == 8 {
        (date.get(..4)?, date.get(4..6)?, date.get(6..)?)
    } else {
        return None;
    };
    let (year, month, day) = (digits(year, 4)?, two_digits(month)?, two_digits(day)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

/// `hh:mm:ss`.
fn parse_time(time: &str) -> Option<(i64, i64, i64)> {
    let mut parts = time.split(':');
    let (hour, minute, second) = (parts.next()?, parts.next()?, parts.next()?);
    let (hour, minute, second) = (two_digits(hour)?, two_digits(minute)?, two_digits(second)?);
    (hour <= 23 && minute <= 59 && second <= 60).then_some((hour, minute, second))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<String> {
        Timestamp::parse(text).map(|stamp| stamp.to_string())
    }

    #[test]
    fn xep_0082_forms() {
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z").map(Timestamp::unix_ms), Some(0));
        // XEP-0082 §4 example instant.
        assert_eq!(Timestamp::parse("2002-10-06T11:12:30Z").map(Timestamp::unix_ms), Some(1_033_902_750_000));
        assert_eq!(parsed("1469-07-21T00:32:29Z").as_deref(), Some("1469-07-21T00:32:29Z"));
        assert_eq!(parsed(" 2021-09-22T14:15:22.123456Z\n").as_deref(), Some("2021-09-22T14:15:22.123Z"));
        assert_eq!(parsed("2021-09-22T14:15:22.5Z").as_deref(), Some("2021-09-22T14:15:22.500Z"));
        assert_eq!(parsed("2002-10-06T13:12:30+02:00").as_deref(), Some("2002-10-06T11:12:30Z"));
        assert_eq!(parsed("2002-10-06T01:12:30-11:30").as_deref(), Some("2002-10-06T12:42:30Z"));
        assert_eq!(parsed("2000-02-29T23:59:60Z").as_deref(), Some("2000-02-29T23:59:59Z"));
        // COMPAT: XEP-0091.
        assert_eq!(parsed("20020910T23:08:25").as_deref(), Some("2002-09-10T23:08:25Z"));
    }

    #[test]
    fn rejects() {
        for bad in [
            "",
            "2002-10-06",
            "2002-10-06T11:12:30",
            "2002-13-06T11:12:30Z",
            "2001-02-29T11:12:30Z",
            "2002-10-06T24:00:00Z",
            "2002-10-06T11:12:30.Z",
            "2002-10-06T11:12:30+2:00",
            "02002-10-06T11:12:30Z",
            "20020910T23:08:25Z",
            "2002-10-06t11:12:30Z",
            "٢٠٠٢-10-06T11:12:30Z",
        ] {
            assert_eq!(Timestamp::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn range() {
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp::from_unix_ms(Timestamp::MAX.unix_ms() + 1), None);
        assert_eq!(Timestamp::parse("0000-01-01T00:00:00+00:01"), None);
        for ms in [-62_167_219_200_000, -1, 0, 1, 951_782_400_001, 253_402_300_799_999] {
            let stamp = Timestamp::from_unix_ms(ms).map(|s| s.to_string());
            assert_eq!(stamp.as_deref().and_then(Timestamp::parse).map(Timestamp::unix_ms), Some(ms));
        }
    }
}
