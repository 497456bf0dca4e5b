//! Exact conversion of money to integer cents, rounding half away from zero
//! (SPEC §2.4 "Money").

/// Parses a plain decimal string (`-12.345`, `7`, `0.5`) and rounds it to
/// cents, half away from zero. `None` for text that is not a plain decimal or
/// does not fit in an `i64` of cents.
pub fn decimal_str_to_cents(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, f),
        None => (body, ""),
    };
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut cents: i128 = 0;
    for b in int_part.bytes() {
        cents = cents.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        if cents > i64::MAX as i128 {
            return None;
        }
    }
    let frac = frac_part.as_bytes();
    for i in 0..2 {
        let d = frac.get(i).map_or(0, |b| (b - b'0') as i128);
        cents = cents * 10 + d;
    }
    if frac.get(2).is_some_and(|&b| b >= b'5') {
        cents += 1;
    }
    let cents = if neg { -cents } else { cents };
    i64::try_from(cents).ok()
}

/// Rounds a float to cents through its shortest round-trip decimal text, so
/// that `12.345_f64` (stored as 12.34499…) becomes 1235 as a reader of the
/// number expects. `None` for NaN, infinities and out-of-range values.
pub fn float_to_cents(x: f64) -> Option<i64> {
    if !x.is_finite() {
        return None;
    }
    decimal_str_to_cents(&format!("{x}"))
}

/// Rescales an unscaled decimal `value × 10^-scale` to cents, rounding half
/// away from zero. `None` on overflow.
pub fn scaled_to_cents(value: i128, scale: i8) -> Option<i64> {
    let shift = 2 - scale as i32;
    let cents = if shift >= 0 {
        value.checked_mul(10i128.checked_pow(shift as u32)?)?
    } else {
        let div = 10i128.checked_pow((-shift) as u32)?;
        let q = value / div;
        let r = value % div;
        if r.unsigned_abs() * 2 >= div.unsigned_abs() {
            q + value.signum()
        } else {
            q
        }
    };
    i64::try_from(cents).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero() {
        assert_eq!(decimal_str_to_cents("12.345"), Some(1235));
        assert_eq!(decimal_str_to_cents("-12.345"), Some(-1235));
        assert_eq!(decimal_str_to_cents("12.3449"), Some(1234));
        assert_eq!(decimal_str_to_cents("0.005"), Some(1));
        assert_eq!(decimal_str_to_cents("7"), Some(700));
        assert_eq!(decimal_str_to_cents(".5"), Some(50));
        assert_eq!(decimal_str_to_cents("1e3"), None);
        assert_eq!(decimal_str_to_cents(""), None);
        assert_eq!(float_to_cents(12.345), Some(1235));
        assert_eq!(float_to_cents(0.1 + 0.2), Some(30));
        assert_eq!(float_to_cents(f64::NAN), None);
        assert_eq!(scaled_to_cents(123_450, 4), Some(1235));
        assert_eq!(scaled_to_cents(-123_450, 4), Some(-1235));
        assert_eq!(scaled_to_cents(123_449, 4), Some(1234));
        assert_eq!(scaled_to_cents(1999, 2), Some(1999));
        assert_eq!(scaled_to_cents(5, 0), Some(500));
        assert_eq!(scaled_to_cents(5, -2), Some(50_000));
        assert_eq!(scaled_to_cents(i128::MAX, 0), None);
    }
}
