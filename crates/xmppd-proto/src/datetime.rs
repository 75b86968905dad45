//! XEP-0082 date and time profiles: the `DateTime` form
//! `CCYY-MM-DDThh:mm:ss[.sss]Z`, always in UTC, as used by delayed delivery
//! (XEP-0203) and entity time (XEP-0202).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Formats a point in time as a XEP-0082 `DateTime` in UTC with
/// millisecond precision, e.g. `2026-11-24T19:21:09.123Z`.
pub fn format_datetime(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    format_unix_ms(i64::try_from(since.as_millis()).unwrap_or(i64::MAX))
}

/// Formats milliseconds since the Unix epoch (UTC) as a XEP-0082 `DateTime`.
pub fn format_unix_ms(ms: i64) -> String {
    let ms = ms.max(0);
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`); `month` 1–12, `day` 1–31.
pub const fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`] (H. Hinnant's `civil_from_days`):
/// (year, month 1–12, day 1–31).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(format_unix_ms(0), "1970-01-01T00:00:00.000Z");
        // XEP-0082 §4 example instant.
        assert_eq!(format_unix_ms(1_033_902_750_000), "2002-10-06T11:12:30.000Z");
        assert_eq!(format_unix_ms(951_782_400_001), "2000-02-29T00:00:00.001Z");
        assert_eq!(format_unix_ms(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    }
}
