//! Integer columns packed to the narrowest byte width that holds
//! `value - base`, as stored in the line store.
//!
//! Encoding: `count: u64`, `base: i64`, `width: u8` and 7 zero bytes, then
//! `count × width` little-endian bytes, padded to a multiple of 8.

/// Encodes `values` and appends the encoding to `out`.
pub fn encode(values: &[i64], out: &mut Vec<u8>) {
    let base = values.iter().copied().min().unwrap_or(0);
    let span = values
        .iter()
        .map(|&v| (v as i128 - base as i128) as u128)
        .max()
        .unwrap_or(0);
    let width: u8 = match span {
        0 => 0,
        1..=0xFF => 1,
        0x100..=0xFFFF => 2,
        0x1_0000..=0xFFFF_FFFF => 4,
        _ => 8,
    };
    out.extend_from_slice(&(values.len() as u64).to_le_bytes());
    out.extend_from_slice(&base.to_le_bytes());
    out.push(width);
    out.extend_from_slice(&[0u8; 7]);
    for &v in values {
        let d = (v as i128 - base as i128) as u64;
        out.extend_from_slice(&d.to_le_bytes()[..width as usize]);
    }
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

/// A packed column read in place from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    base: i64,
    width: usize,
    len: usize,
    data: &'a [u8],
}

impl<'a> Packed<'a> {
    /// Parses one column at the start of `bytes`; returns it and the rest.
    pub fn parse(bytes: &'a [u8]) -> Option<(Self, &'a [u8])> {
        let header = bytes.get(..24)?;
        let len = usize::try_from(u64::from_le_bytes(header[0..8].try_into().ok()?)).ok()?;
        let base = i64::from_le_bytes(header[8..16].try_into().ok()?);
        let width = header[16] as usize;
        if ![0, 1, 2, 4, 8].contains(&width) {
            return None;
        }
        let body = len.checked_mul(width)?;
        let padded = body.checked_add(7)? / 8 * 8;
        let data = bytes.get(24..24 + body)?;
        let rest = bytes.get(24 + padded..)?;
        Some((
            Self {
                base,
                width,
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

    /// Value `i` (panics if out of range, like slice indexing).
    #[inline]
    pub fn get(&self, i: usize) -> i64 {
        let w = self.width;
        let d = match w {
            0 => 0u64,
            1 => self.data[i] as u64,
            2 => u16::from_le_bytes([self.data[2 * i], self.data[2 * i + 1]]) as u64,
            4 => u32::from_le_bytes(self.data[4 * i..4 * i + 4].try_into().expect("4")) as u64,
            _ => u64::from_le_bytes(self.data[8 * i..8 * i + 8].try_into().expect("8")),
        };
        assert!(i < self.len, "packed index out of range");
        self.base.wrapping_add(d as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_width() {
        for values in [
            vec![],
            vec![5, 5, 5],
            vec![-3, 200, 7],
            vec![0, 65_000, -1],
            vec![i64::MIN, i64::MAX, 0],
            vec![1_700_000_000_000_000_000, 1_700_000_000_999_999_999],
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
}
