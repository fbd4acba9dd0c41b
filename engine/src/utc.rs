//! Calendar dates in UTC from Unix time, for the few places that print one (JUnit timestamps,
//! certificate validity), without a date-time crate.

/// `2024-03-01T12:30:05` for a Unix time: UTC, without a zone.
pub(crate) fn iso(epoch: u64) -> String {
    let (year, month, day) = civil(epoch / 86_400);
    let secs = epoch % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// (year, month, day) of a day counted from 1970-01-01 (Howard Hinnant's civil_from_days).
fn civil(days: u64) -> (i64, i64, i64) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use super::iso;

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00");
        assert_eq!(iso(1_735_689_600), "2025-01-01T00:00:00");
        assert_eq!(iso(951_825_600), "2000-02-29T12:00:00");
        assert_eq!(iso(4_102_444_799), "2099-12-31T23:59:59");
    }
}
