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
    fn slice(&self, i: usize) -> &Bitmap {
        self.slices[i].borrow()
    }

    /// Rows of `eq` whose value's low `top` bits are `>=` those of `c`
    /// (the higher bits being equal).
    fn ge_from(&self, mut eq: Bitmap, c: u64, top: usize) -> Bitmap {
        let mut gt = Bitmap::new();
        for i in (0..top).rev() {
            if eq.is_empty() {
                break;
            }
            let slice = self.slice(i);
            if (c >> i) & 1 == 1 {
                eq &= slice;
            } else {
                gt |= &eq & slice;
                eq -= slice;
            }
        }
        gt | eq
    }

    /// Rows of `eq` whose value's low `top` bits are `<=` those of `c`.
    fn le_from(&self, mut eq: Bitmap, c: u64, top: usize) -> Bitmap {
        let mut lt = Bitmap::new();
        for i in (0..top).rev() {
            if eq.is_empty() {
                break;
            }
            let slice = self.slice(i);
            if (c >> i) & 1 == 1 {
                lt |= &eq - slice;
                eq &= slice;
            } else {
                eq -= slice;
            }
        }
        lt | eq
    }

    /// Whether `c` has a bit above the slices (so exceeds every value).
    fn too_big(&self, c: u64) -> bool {
        let bits = self.slices.len();
        bits < 64 && c >> bits != 0
    }

    /// Rows whose value is `>= c`.
    pub fn ge(&self, c: u64) -> Bitmap {
        if self.too_big(c) {
            return Bitmap::new();
        }
        self.ge_from(self.exists.borrow().clone(), c, self.slices.len())
    }

    /// Rows whose value is `<= c`.
    pub fn le(&self, c: u64) -> Bitmap {
        if self.too_big(c) {
            return self.exists.borrow().clone();
        }
        self.le_from(self.exists.borrow().clone(), c, self.slices.len())
    }

    /// Rows whose value lies in `lo..=hi` (either bound may be absent).
    ///
    /// One pass: the bits `lo` and `hi` share narrow one candidate set;
    /// below the first bit where they differ, the rows with `lo`'s bit are
    /// compared with `lo` only and the rows with `hi`'s bit with `hi` only.
    pub fn range(&self, lo: Option<u64>, hi: Option<u64>) -> Bitmap {
        let (lo, hi) = match (lo, hi) {
            (None, None) => return self.exists.borrow().clone(),
            (Some(lo), None) => return self.ge(lo),
            (None, Some(hi)) => return self.le(hi),
            (Some(lo), Some(hi)) => (lo, hi),
        };
        let bits = self.slices.len();
        if lo > hi || self.too_big(lo) {
            return Bitmap::new();
        }
        if self.too_big(hi) {
            return self.ge(lo);
        }
        let mut eq: Bitmap = self.exists.borrow().clone();
        let mut top = bits;
        while top > 0 {
            let i = top - 1;
            let (l, h) = ((lo >> i) & 1, (hi >> i) & 1);
            if l != h {
                break;
            }
            if l == 1 {
                eq &= self.slice(i);
            } else {
                eq -= self.slice(i);
            }
            if eq.is_empty() {
                return eq;
            }
            top = i;
        }
        if top == 0 {
            return eq; // lo == hi
        }
        // Bit top-1: lo has 0, hi has 1.
        let split = self.slice(top - 1);
        let ones = &eq & split;
        eq -= split;
        self.ge_from(eq, lo, top - 1) | self.le_from(ones, hi, top - 1)
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
        let mut x: u64 = 0x853c49e6748fea9b;
        for _ in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let lo = x % 1100;
            let hi = lo + (x >> 32) % 300;
            assert_eq!(
                bsi.range(Some(lo), Some(hi)),
                naive(&values, |v| (lo..=hi).contains(&v)),
                "range {lo}..={hi}"
            );
            assert_eq!(
                bsi.range(Some(lo), Some(lo)),
                naive(&values, |v| v == lo),
                "eq {lo}"
            );
        }
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
