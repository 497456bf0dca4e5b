//! Integer columns packed to the fewest whole bytes that hold
//! `(value - base) / scale`, as stored in the line store.
//!
//! `scale` is the greatest common divisor of the differences, so instants in
//! nanoseconds that are whole seconds take 4 bytes, not 8. Reading a value is
//! one unaligned 8-byte load, a mask, a multiply and an add, whatever the
//! width — no branch on the width in the inner loops.
//!
//! Encoding: `count: u64`, `base: i64`, `scale: i64`, `width: u8` and 7 zero
//! bytes, then `count × width` little-endian bytes, then 8 zero bytes of
//! slack (so the last value can be read with an 8-byte load), padded to a
//! multiple of 8.

const HEADER: usize = 32;
const SLACK: usize = 8;

/// Asks the CPU to start loading the cache line holding `r` (a no-op where
/// the architecture has no such hint here). Loops over scattered customers
/// wait on memory more than they compute; a load started a few customers
/// ahead overlaps those waits.
#[inline(always)]
fn prefetch_read<T>(r: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch only hints the cache; it reads nothing the
    // program sees and cannot fault, and `r` is a live reference anyway.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>((r as *const T).cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Encodes `values` and appends the encoding to `out`.
pub fn encode(values: &[i64], out: &mut Vec<u8>) {
    let (base, top) = match values.first() {
        Some(&v0) => values
            .iter()
            .fold((v0, v0), |(lo, hi), &v| (lo.min(v), hi.max(v))),
        None => (0, 0),
    };
    let diff = |v: i64| (v as i128 - base as i128) as u64;
    // The gcd of the differences; once it is 1 it stays 1.
    let mut scale = 0u64;
    for &v in values {
        scale = gcd(scale, diff(v));
        if scale == 1 {
            break;
        }
    }
    // A span of zero (all equal) or a scale that does not fit i64 keeps 1.
    let scale = if scale == 0 || scale > i64::MAX as u64 {
        1
    } else {
        scale
    };
    let span = diff(top) / scale;
    let width = (64 - span.leading_zeros()).div_ceil(8) as usize;
    out.reserve(HEADER + values.len() * width + SLACK + 8);
    out.extend_from_slice(&(values.len() as u64).to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.extend_from_slice(&(scale as i64).to_le_bytes());
    out.push(width as u8);
    out.extend_from_slice(&[0u8; 7]);
    let div = ExactDiv::new(scale);
    match width {
        0 => {}
        1 => put::<1>(values, base, div, out),
        2 => put::<2>(values, base, div, out),
        3 => put::<3>(values, base, div, out),
        4 => put::<4>(values, base, div, out),
        5 => put::<5>(values, base, div, out),
        6 => put::<6>(values, base, div, out),
        7 => put::<7>(values, base, div, out),
        _ => put::<8>(values, base, div, out),
    }
    out.extend_from_slice(&[0u8; SLACK]);
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

/// Division by `d` of numbers known to be multiples of it: a shift by the
/// power of two in `d`, then a multiply by the inverse of its odd part
/// modulo 2^64 (exact for multiples; a 64-bit `div` per value was a tenth
/// of the build's time in instants that are whole seconds).
#[derive(Clone, Copy)]
struct ExactDiv {
    shift: u32,
    inverse: u64,
}

impl ExactDiv {
    fn new(d: u64) -> Self {
        let shift = d.trailing_zeros();
        let odd = d >> shift;
        // Newton's iteration doubles the correct low bits: 3, 6, ..., 96.
        let mut inverse = odd;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        Self { shift, inverse }
    }

    /// `x / d`, for `x` a multiple of `d`.
    fn of(self, x: u64) -> u64 {
        (x >> self.shift).wrapping_mul(self.inverse)
    }
}

/// Appends `(v - base) / scale` of each value in its low `W` bytes, with
/// the width known at compile time.
fn put<const W: usize>(values: &[i64], base: i64, div: ExactDiv, out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + values.len() * W, 0);
    for (dst, &v) in out[start..].chunks_exact_mut(W).zip(values) {
        let d = div.of((v as i128 - base as i128) as u64);
        dst.copy_from_slice(&d.to_le_bytes()[..W]);
    }
}

/// A packed column read in place from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    base: i64,
    scale: i64,
    width: usize,
    mask: u64,
    len: usize,
    /// The values' bytes plus the slack.
    data: &'a [u8],
}

impl<'a> Packed<'a> {
    /// Parses one column at the start of `bytes`; returns it and the rest.
    pub fn parse(bytes: &'a [u8]) -> Option<(Self, &'a [u8])> {
        let header = bytes.get(..HEADER)?;
        let word = |i: usize| -> Option<[u8; 8]> { header[i..i + 8].try_into().ok() };
        let len = usize::try_from(u64::from_le_bytes(word(0)?)).ok()?;
        let base = i64::from_le_bytes(word(8)?);
        let scale = i64::from_le_bytes(word(16)?);
        let width = header[24] as usize;
        if width > 8 || scale < 1 {
            return None;
        }
        let body = len.checked_mul(width)?.checked_add(SLACK)?;
        let padded = body.checked_add(7)? / 8 * 8;
        let data = bytes.get(HEADER..HEADER.checked_add(body)?)?;
        let rest = bytes.get(HEADER.checked_add(padded)?..)?;
        let mask = if width == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * width)) - 1
        };
        Some((
            Self {
                base,
                scale,
                width,
                mask,
                len,
                data,
            },
            rest,
        ))
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the column is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes per stored value (0 when every value is `base`).
    pub fn width(&self) -> usize {
        self.width
    }

    /// The value a stored 0 stands for.
    pub fn base(&self) -> i64 {
        self.base
    }

    /// The step between stored values: value = base + stored × scale.
    pub fn scale(&self) -> i64 {
        self.scale
    }

    /// The stored bytes of values `range`: [`Self::width`] little-endian
    /// bytes each, before base and scale. Panics like slice indexing when
    /// the range is past the end.
    #[inline(always)]
    pub fn stored_bytes(&self, range: std::ops::Range<usize>) -> &'a [u8] {
        assert!(
            range.end <= self.len,
            "packed range {range:?} out of range ({} values)",
            self.len
        );
        &self.data[range.start * self.width..range.end * self.width]
    }

    /// Asks the CPU to start loading value `i`'s bytes into the cache: a
    /// hint with no effect on any result (an index past the column is
    /// ignored).
    #[inline(always)]
    pub fn prefetch(&self, i: usize) {
        if let Some(b) = self.data.get(i * self.width) {
            prefetch_read(b);
        }
    }

    /// Value `i`. An index past the end reads a value that may be
    /// meaningless or panics like slice indexing; callers stay in range
    /// (chunk offsets are validated when a chunk is first opened).
    #[inline(always)]
    pub fn get(&self, i: usize) -> i64 {
        let off = i * self.width;
        let raw = match self.data.get(off..off + 8) {
            Some(b) => u64::from_le_bytes(b.try_into().expect("8 bytes")),
            None => panic!("packed index {i} out of range ({} values)", self.len),
        };
        self.base
            .wrapping_add(((raw & self.mask) as i64).wrapping_mul(self.scale))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_width_and_scale() {
        for values in [
            vec![],
            vec![5, 5, 5],
            vec![-3, 200, 7],
            vec![0, 65_000, -1],
            vec![0, 1 << 20, 3],
            vec![i64::MIN, i64::MAX, 0],
            vec![1_700_000_000_000_000_000, 1_700_000_000_999_999_999],
            // Whole seconds in nanoseconds: scale 1e9, 4 bytes.
            vec![
                1_700_000_000_000_000_000,
                1_700_000_100_000_000_000,
                1_600_000_000_000_000_000,
            ],
            vec![-40, 60, 160],
        ] {
            let mut buf = Vec::new();
            encode(&values, &mut buf);
            encode(&[42], &mut buf);
            assert_eq!(buf.len() % 8, 0);
            let (p, rest) = Packed::parse(&buf).unwrap();
            assert_eq!((0..p.len()).map(|i| p.get(i)).collect::<Vec<_>>(), values);
            let (q, rest) = Packed::parse(rest).unwrap();
            assert_eq!(q.get(0), 42);
            assert!(rest.is_empty());
        }
        assert!(Packed::parse(&[0u8; 10]).is_none());
    }

    #[test]
    fn exact_division_matches_div_on_multiples() {
        for d in [
            1u64,
            2,
            3,
            10,
            1 << 40,
            1_000_000_000,
            60_000_000_000,
            86_400_000_000_000,
            (1 << 63) - 25,
            i64::MAX as u64,
        ] {
            let div = ExactDiv::new(d);
            let top = u64::MAX / d;
            for k in [0, 1, 2, 3, 7, 1000, top / 3, top - 1, top] {
                assert_eq!(div.of(k * d), k, "{k} * {d}");
            }
        }
    }

    #[test]
    fn seconds_in_nanoseconds_take_four_bytes() {
        let values: Vec<i64> = (0..100)
            .map(|i| 1_700_000_000_000_000_000 + (i * i * 1000 + i) * 1_000_000_000)
            .collect();
        let mut buf = Vec::new();
        encode(&values, &mut buf);
        let (p, _) = Packed::parse(&buf).unwrap();
        assert_eq!(p.width, 3);
        assert_eq!(p.get(99), values[99]);
    }

    #[test]
    fn stored_bytes_decode_with_base_and_scale() {
        let values = vec![-40i64, 60, 160, 560];
        let mut buf = Vec::new();
        encode(&values, &mut buf);
        let (p, _) = Packed::parse(&buf).unwrap();
        let bytes = p.stored_bytes(1..4);
        assert_eq!(bytes.len(), 3 * p.width());
        let decoded: Vec<i64> = bytes
            .chunks_exact(p.width())
            .map(|b| {
                let mut w = [0u8; 8];
                w[..b.len()].copy_from_slice(b);
                p.base() + u64::from_le_bytes(w) as i64 * p.scale()
            })
            .collect();
        assert_eq!(decoded, values[1..]);
    }
}
