//! Bit-sliced indexes: one bitmap per bit of an unsigned value plus an
//! existence bitmap, after O'Neil & Quass ("Improved query performance with
//! variant indexes") as FeatureBase int fields and RoaringBitmap's
//! `RoaringBitSliceIndex` do. A range predicate costs one pass over the
//! slices whatever the range.
//!
//! Values are `u64` offsets: callers map their domain (integers, decimal
//! units, day numbers, ordered float bits) to offsets from the column minimum
//! so that the number of slices is the bit width of the column's spread.

use crate::Bitmap;
use std::borrow::Borrow;

/// A bit-sliced index over row ids, borrowing or owning its bitmaps.
#[derive(Debug, Clone, Default)]
pub struct Bsi<B = Bitmap> {
    /// `slices[i]` holds the rows whose value has bit `i` set.
    pub slices: Vec<B>,
    /// The rows that have a value (not null).
    pub exists: B,
}

impl<B: Borrow<Bitmap>> Bsi<B> {
    /// Rows whose value is `>= c`.
    pub fn ge(&self, c: u64) -> Bitmap {
        let bits = self.slices.len();
        if bits < 64 && c >> bits != 0 {
            return Bitmap::new();
        }
        let mut gt = Bitmap::new();
        let mut eq: Bitmap = self.exists.borrow().clone();
        for i in (0..bits).rev() {
            let slice: &Bitmap = self.slices[i].borrow();
            if (c >> i) & 1 == 1 {
                eq &= slice;
            } else {
                gt |= &eq & slice;
                eq -= slice;
            }
            if eq.is_empty() {
                break;
            }
        }
        gt | eq
    }

    /// Rows whose value is `<= c`.
    pub fn le(&self, c: u64) -> Bitmap {
        let bits = self.slices.len();
        if bits < 64 && c >> bits != 0 {
            return self.exists.borrow().clone();
        }
        let mut lt = Bitmap::new();
        let mut eq: Bitmap = self.exists.borrow().clone();
        for i in (0..bits).rev() {
            let slice: &Bitmap = self.slices[i].borrow();
            if (c >> i) & 1 == 1 {
                lt |= &eq - slice;
                eq &= slice;
            } else {
                eq -= slice;
            }
            if eq.is_empty() {
                break;
            }
        }
        lt | eq
    }

    /// Rows whose value lies in `lo..=hi` (either bound may be absent).
    pub fn range(&self, lo: Option<u64>, hi: Option<u64>) -> Bitmap {
        match (lo, hi) {
            (Some(lo), Some(hi)) if lo > hi => Bitmap::new(),
            (Some(lo), Some(hi)) => self.ge(lo) & self.le(hi),
            (Some(lo), None) => self.ge(lo),
            (None, Some(hi)) => self.le(hi),
            (None, None) => self.exists.borrow().clone(),
        }
    }
}

/// Collects `(row, value)` pairs and produces a [`Bsi`].
#[derive(Debug, Default)]
pub struct BsiBuilder {
    rows: Vec<u32>,
    values: Vec<u64>,
}

impl BsiBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `value` for `row`; rows must be pushed in ascending order.
    pub fn push(&mut self, row: u32, value: u64) {
        debug_assert!(self.rows.last().is_none_or(|&r| r < row));
        self.rows.push(row);
        self.values.push(value);
    }

    /// Builds the slices: as many as the bit width of the largest value.
    pub fn build(self) -> Bsi {
        let max = self.values.iter().copied().max().unwrap_or(0);
        let bits = (64 - max.leading_zeros()) as usize;
        let exists = Bitmap::from_sorted_iter(self.rows.iter().copied())
            .expect("rows are pushed in ascending order");
        let slices = (0..bits)
            .map(|i| {
                Bitmap::from_sorted_iter(
                    self.rows
                        .iter()
                        .zip(&self.values)
                        .filter(|&(_, v)| (v >> i) & 1 == 1)
                        .map(|(&r, _)| r),
                )
                .expect("rows are pushed in ascending order")
            })
            .collect();
        Bsi { slices, exists }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<Option<u64>>, Bsi) {
        let mut values = Vec::new();
        let mut b = BsiBuilder::new();
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for row in 0..3000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(7) {
                values.push(None);
            } else {
                let v = x % 1000;
                values.push(Some(v));
                b.push(row, v);
            }
        }
        (values, b.build())
    }

    fn naive(values: &[Option<u64>], f: impl Fn(u64) -> bool) -> Bitmap {
        values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some_and(&f))
            .map(|(r, _)| r as u32)
            .collect()
    }

    #[test]
    fn compares_like_a_scan() {
        let (values, bsi) = sample();
        for c in [
            0,
            1,
            2,
            499,
            500,
            998,
            999,
            1000,
            1023,
            1024,
            5000,
            u64::MAX,
        ] {
            assert_eq!(bsi.ge(c), naive(&values, |v| v >= c), "ge {c}");
            assert_eq!(bsi.le(c), naive(&values, |v| v <= c), "le {c}");
        }
        for (lo, hi) in [(10, 20), (0, 0), (999, 999), (500, 100), (0, 2000)] {
            assert_eq!(
                bsi.range(Some(lo), Some(hi)),
                naive(&values, |v| (lo..=hi).contains(&v)),
                "range {lo}..={hi}"
            );
        }
        assert_eq!(bsi.range(None, None), naive(&values, |_| true));
    }

    #[test]
    fn all_zero_values_have_no_slices() {
        let mut b = BsiBuilder::new();
        b.push(3, 0);
        b.push(9, 0);
        let bsi = b.build();
        assert!(bsi.slices.is_empty());
        assert_eq!(bsi.le(0).len(), 2);
        assert_eq!(bsi.ge(1).len(), 0);
        assert_eq!(bsi.ge(0).len(), 2);
    }
}
