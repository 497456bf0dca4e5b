//! Exact decimal numbers of any size: a sign, a digit string and a power of ten.
//!
//! Used for every numeric comparison of the reference, so that no float ever
//! takes part in a decision.

use std::cmp::Ordering;

/// An exact decimal `(-1)^neg × digits × 10^exp`, kept normalized: no leading or
/// trailing zero digits, and zero is `digits == []`, `neg == false`, `exp == 0`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Dec {
    neg: bool,
    digits: Vec<u8>,
    exp: i64,
}

impl Dec {
    /// Zero.
    pub(crate) fn zero() -> Dec {
        Dec {
            neg: false,
            digits: Vec::new(),
            exp: 0,
        }
    }

    /// An exact integer.
    pub(crate) fn from_i128(v: i128) -> Dec {
        let digits: Vec<u8> = v
            .unsigned_abs()
            .to_string()
            .bytes()
            .map(|b| b - b'0')
            .collect();
        Dec {
            neg: v < 0,
            digits,
            exp: 0,
        }
        .normalized()
    }

    /// `mantissa × 10^-scale` (an Arrow decimal's value).
    pub(crate) fn from_scaled(mantissa: i128, scale: i64) -> Dec {
        let mut d = Dec::from_i128(mantissa);
        if !d.digits.is_empty() {
            d.exp -= scale;
        }
        d
    }

    /// Parses `[+-]digits[.digits][(e|E)[+-]digits]` exactly (also `.5`, `5.`).
    pub(crate) fn parse(s: &str) -> Option<Dec> {
        let b = s.as_bytes();
        let mut i = 0;
        let mut neg = false;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            neg = b[i] == b'-';
            i += 1;
        }
        let mut digits = Vec::new();
        let mut exp: i64 = 0;
        let mut any = false;
        while i < b.len() && b[i].is_ascii_digit() {
            digits.push(b[i] - b'0');
            any = true;
            i += 1;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                digits.push(b[i] - b'0');
                exp = exp.checked_sub(1)?;
                any = true;
                i += 1;
            }
        }
        if !any {
            return None;
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            i += 1;
            let mut eneg = false;
            if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                eneg = b[i] == b'-';
                i += 1;
            }
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return None;
            }
            let e: i64 = s[start..i].parse().ok()?;
            exp = if eneg {
                exp.checked_sub(e)?
            } else {
                exp.checked_add(e)?
            };
        }
        if i != b.len() {
            return None;
        }
        Some(Dec { neg, digits, exp }.normalized())
    }

    fn normalized(mut self) -> Dec {
        let lead = self.digits.iter().take_while(|&&d| d == 0).count();
        self.digits.drain(..lead);
        while let Some(&0) = self.digits.last() {
            self.digits.pop();
            self.exp += 1;
        }
        if self.digits.is_empty() {
            return Dec::zero();
        }
        self
    }

    /// `self × 10^k`.
    pub(crate) fn scaled(&self, k: i64) -> Dec {
        let mut d = self.clone();
        if !d.digits.is_empty() {
            d.exp += k;
        }
        d
    }

    /// `self × n`, exactly.
    pub(crate) fn mul_u64(&self, n: u64) -> Dec {
        if n == 0 || self.digits.is_empty() {
            return Dec::zero();
        }
        let mut out = Vec::with_capacity(self.digits.len() + 20);
        let mut carry: u128 = 0;
        for &d in self.digits.iter().rev() {
            let t = d as u128 * n as u128 + carry;
            out.push((t % 10) as u8);
            carry = t / 10;
        }
        while carry > 0 {
            out.push((carry % 10) as u8);
            carry /= 10;
        }
        out.reverse();
        Dec {
            neg: self.neg,
            digits: out,
            exp: self.exp,
        }
        .normalized()
    }

    /// Rounds to a whole number, half away from zero; `None` when it does not fit an i128.
    pub(crate) fn round_half_away(&self) -> Option<i128> {
        if self.digits.is_empty() {
            return Some(0);
        }
        let n = self.digits.len() as i64;
        let (int_digits, round_up): (&[u8], bool) = if self.exp >= 0 {
            (&self.digits[..], false)
        } else {
            let frac = -self.exp;
            if frac > n {
                // |value| < 0.1
                (&[][..], false)
            } else {
                let k = (n - frac) as usize;
                (&self.digits[..k], self.digits[k] >= 5)
            }
        };
        let mut mag: i128 = 0;
        for &d in int_digits {
            mag = mag.checked_mul(10)?.checked_add(d as i128)?;
        }
        if self.exp > 0 {
            for _ in 0..self.exp {
                mag = mag.checked_mul(10)?;
            }
        }
        if round_up {
            mag = mag.checked_add(1)?;
        }
        Some(if self.neg { -mag } else { mag })
    }

    /// The exact value of a float, taken as its shortest round-trip decimal form
    /// (what Rust's `Display` prints); `None` for NaN and infinities.
    pub(crate) fn from_f64(v: f64) -> Option<Dec> {
        if !v.is_finite() {
            return None;
        }
        Dec::parse(&format!("{v}"))
    }

    /// As [`Dec::from_f64`], with the shortest round-trip form of the f32 itself.
    pub(crate) fn from_f32(v: f32) -> Option<Dec> {
        if !v.is_finite() {
            return None;
        }
        Dec::parse(&format!("{v}"))
    }

    fn sign(&self) -> i8 {
        if self.digits.is_empty() {
            0
        } else if self.neg {
            -1
        } else {
            1
        }
    }
}

impl Ord for Dec {
    fn cmp(&self, other: &Self) -> Ordering {
        let (sa, sb) = (self.sign(), other.sign());
        if sa != sb {
            return sa.cmp(&sb);
        }
        if sa == 0 {
            return Ordering::Equal;
        }
        let top_a = self.digits.len() as i128 + self.exp as i128;
        let top_b = other.digits.len() as i128 + other.exp as i128;
        let mag = top_a
            .cmp(&top_b)
            .then_with(|| self.digits.cmp(&other.digits));
        if sa > 0 { mag } else { mag.reverse() }
    }
}

impl PartialOrd for Dec {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for Dec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.digits.is_empty() {
            return write!(f, "0");
        }
        let s: String = self.digits.iter().map(|d| (b'0' + d) as char).collect();
        write!(f, "{}{}e{}", if self.neg { "-" } else { "" }, s, self.exp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn parse_and_compare() {
        assert_eq!(d("100.0"), d("100"));
        assert_eq!(d("1e2"), d("100"));
        assert_eq!(d("-0.0"), Dec::zero());
        assert!(d("33.333") > d("33.33"));
        assert!(d("-33.333") < d("-33.33"));
        assert!(d("0.125") > d("0.12"));
        assert!(d("0.13") > d("0.125"));
        assert!(d("1e300") > d("99999999999999999999999"));
        assert!(d("-5") < d("0.0001"));
        assert_eq!(d(".5"), d("0.5"));
        assert!(Dec::parse("").is_none());
        assert!(Dec::parse("1.2.3").is_none());
        assert!(Dec::parse("e5").is_none());
        assert!(Dec::parse("1e").is_none());
        assert_eq!(Dec::from_scaled(12345, 2), d("123.45"));
        assert_eq!(Dec::from_scaled(5, -3), d("5000"));
    }

    #[test]
    fn rounding_half_away() {
        let cents = |s: &str| d(s).scaled(2).round_half_away();
        assert_eq!(cents("1.005"), Some(101));
        assert_eq!(cents("1.0049999"), Some(100));
        assert_eq!(cents("-1.005"), Some(-101));
        assert_eq!(cents("-1.0049"), Some(-100));
        assert_eq!(cents("0.004"), Some(0));
        assert_eq!(cents("0.005"), Some(1));
        assert_eq!(cents("0.0005"), Some(0));
        assert_eq!(cents("12"), Some(1200));
        // 2.675 as f64 is 2.67499999999999982236431605997495353221893310546875,
        // but its shortest round-trip form is "2.675", which rounds to 2.68.
        assert_eq!(
            Dec::from_f64(2.675).unwrap().scaled(2).round_half_away(),
            Some(268)
        );
        assert_eq!(Dec::from_f32(0.1).unwrap(), d("0.1"));
    }

    #[test]
    fn multiply() {
        assert_eq!(d("33.33").mul_u64(3), d("99.99"));
        assert_eq!(d("-0.5").mul_u64(7), d("-3.5"));
        assert_eq!(
            d("99999999999999999999").mul_u64(u64::MAX),
            d("1844674407370955161481553255926290448385")
        );
    }
}
