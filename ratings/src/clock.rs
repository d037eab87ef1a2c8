//! The project's one clock: Unix time in milliseconds.
//!
//! It lives here, in the crate at the bottom of the house that every other crate may import,
//! because its users sit on both sides of a rule: the SQL store stamps rows with it, and the
//! controller's gateway (which never imports the store) stamps the worker records it shares
//! through Redis. Battles are timestamped facts, so a clock is not out of place next to them.

/// Milliseconds since the Unix epoch (0 on a clock set before 1970).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The UTC day of a Unix time in milliseconds, `YYYY-MM-DD` (the proleptic Gregorian
/// calendar, by Howard Hinnant's days-to-civil algorithm).
pub fn utc_day(unix_ms: u64) -> String {
    let z = (unix_ms / 86_400_000) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_are_utc_calendar_dates() {
        assert_eq!(super::utc_day(0), "1970-01-01");
        assert_eq!(super::utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(super::utc_day(1_796_342_399_999), "2026-12-03");
        assert_eq!(super::utc_day(1_796_342_400_000), "2026-12-04");
    }

    #[test]
    fn it_is_now() {
        // 2020-09-13 in milliseconds: any sane clock is past it, and seconds would not be.
        assert!(super::unix_ms() > 1_600_000_000_000);
    }
}
