//! Proleptic Gregorian calendar arithmetic on day numbers (days since
//! 1970-01-01), written out here so that the window logic depends on nothing
//! but these few formulas (H. Hinnant's civil-from-days algorithms).

/// Day number of `y-m-d` (days since 1970-01-01; negative before).
pub(crate) fn days_from_civil(y: i128, m: u32, d: u32) -> i128 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i128;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i128 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// `(year, month, day)` of a day number.
pub(crate) fn civil_from_days(z: i128) -> (i128, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Whether `y` has a 29 February.
pub(crate) fn is_leap(y: i128) -> bool {
    y.rem_euclid(4) == 0 && (y.rem_euclid(100) != 0 || y.rem_euclid(400) == 0)
}

/// Number of days of month `m` of year `y`.
pub(crate) fn days_in_month(y: i128, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// 0 for Monday … 6 for Sunday.
pub(crate) fn weekday_from_monday(z: i128) -> i128 {
    // 1970-01-01 was a Thursday (3 days after a Monday).
    (z + 3).rem_euclid(7)
}

/// Parses exactly `YYYY-MM-DD` (a real calendar date) to a day number.
pub(crate) fn parse_ymd(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &c in &b[r] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (c - b'0') as u32;
        }
        Some(v)
    };
    let y = digits(0..4)? as i128;
    let m = digits(5..7)?;
    let d = digits(8..10)?;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// Renders a day number as `YYYY-MM-DD` (for messages and generated JSON).
pub(crate) fn fmt_day(z: i128) -> String {
    let (y, m, d) = civil_from_days(z);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
        assert_eq!(civil_from_days(11016), (2000, 2, 29));
        for z in -800_000..800_000i128 {
            let (y, m, d) = civil_from_days(z);
            assert!(d >= 1 && d <= days_in_month(y, m));
            assert_eq!(days_from_civil(y, m, d), z);
        }
        // 2024-01-01 was a Monday.
        assert_eq!(weekday_from_monday(days_from_civil(2024, 1, 1)), 0);
        assert_eq!(weekday_from_monday(days_from_civil(2024, 3, 10)), 6);
        assert_eq!(parse_ymd("2024-02-29"), Some(days_from_civil(2024, 2, 29)));
        assert_eq!(parse_ymd("2023-02-29"), None);
        assert_eq!(parse_ymd("2023-2-09"), None);
        assert_eq!(fmt_day(days_from_civil(2023, 12, 31)), "2023-12-31");
    }
}
