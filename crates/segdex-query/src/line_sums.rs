//! Sums over runs of lines whose product is allowed, with the line
//! columns' byte widths fixed at compile time.
//!
//! The generic reader ([`segdex_index::packed::Packed::get`]) decodes each
//! value with a runtime width, a mask, a multiply and an add; in the line
//! loop that is three such decodes a line and more live values than there
//! are registers. Here the loop reads the stored bytes of each column with
//! a width known to the compiler, sums the stored values, and applies base
//! and scale once per run: `Σ (base + s·v) = n·base + s·Σ v`. The widths
//! are matched, and the product mask laid out by stored value, once per
//! chunk ([`LineSums::new`]), not once per run: a run is a customer's
//! dozen or so lines.

use segdex_index::chunk::LineColumns;
use std::ops::Range;

/// The stored value in the first `W` bytes of `b`, little-endian (0 for
/// `W = 0`: a column the loop does not read).
#[inline(always)]
fn stored<const W: usize>(b: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..W].copy_from_slice(&b[..W]);
    u64::from_le_bytes(word)
}

/// Count, and sums of stored quantity and cents, of the lines whose stored
/// product is allowed by `table` (one entry per stored product value:
/// `256^WP` of them). A width of 0 leaves that column unread (sum 0).
fn stored_sums<const WP: usize, const WQ: usize, const WC: usize>(
    product: &[u8],
    qty: &[u8],
    cents: &[u8],
    table: &[bool],
) -> (u64, u64, u64) {
    let (mut n, mut u, mut c) = (0u64, 0u64, 0u64);
    // An index loop over slices of known length: the bounds tests fold
    // away (a stored product masked to its width is inside the table).
    let entries = 1usize << (8 * WP);
    let table = &table[..entries];
    let lines = product.len() / WP;
    let (qty, cents) = (&qty[..lines * WQ], &cents[..lines * WC]);
    for j in 0..lines {
        let p = stored::<WP>(&product[j * WP..]) as usize & (entries - 1);
        // A compare-free load and a mask instead of a branch.
        let take = u64::from(table[p]);
        n += take;
        let take = take.wrapping_neg();
        u = u.wrapping_add(stored::<WQ>(&qty[j * WQ..]) & take);
        c = c.wrapping_add(stored::<WC>(&cents[j * WC..]) & take);
    }
    (n, u, c)
}

/// Whether any line of `product` (stored values of `WP` bytes) is allowed
/// by `table` (`256^WP` entries).
fn stored_any<const WP: usize>(product: &[u8], table: &[bool]) -> bool {
    let table = &table[..1usize << (8 * WP)];
    product
        .chunks_exact(WP)
        .any(|b| table[stored::<WP>(b) as usize & (table.len() - 1)])
}

/// Which sums besides the count a [`LineSums`] must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Need {
    /// Units (sum of quantity).
    pub units: bool,
    /// Cents (sum of line totals).
    pub cents: bool,
}

impl Need {
    /// Every sum.
    pub(crate) const ALL: Need = Need {
        units: true,
        cents: true,
    };
}

/// A [`stored_sums`] for one triple of widths.
type StoredSums = fn(&[u8], &[u8], &[u8], &[bool]) -> (u64, u64, u64);

/// The loop for one chunk's widths, prepared by [`LineSums::new`].
struct Fixed<'a> {
    sums: StoredSums,
    /// Which sums besides the count are given (the others are 0).
    need: Need,
    /// Bytes per stored product, quantity and cents.
    widths: [usize; 3],
    /// The stored bytes of the whole product, quantity and cents columns.
    bytes: [&'a [u8]; 3],
    /// Whether each stored product value is allowed (`256^width` entries).
    table: Vec<bool>,
}

/// Lines, units and cents of runs of one chunk's lines whose product is
/// allowed, summed without a branch: with the column widths fixed at
/// compile time when the chunk's widths are ones the loop is made for
/// (products of one or two bytes with scale 1, quantities of one or two
/// bytes, cents of one to four), else line by line through
/// [`segdex_index::packed::Packed::get`].
///
/// The sums are exact in 64 bits: the chunk's encoder bounds the sum of the
/// magnitudes of its quantities and cents by `i64::MAX` (the fixed loop
/// wraps, which is exact for the same reason).
pub(crate) struct LineSums<'a> {
    cols: LineColumns<'a>,
    allowed: &'a [bool],
    fixed: Option<Fixed<'a>>,
}

impl<'a> LineSums<'a> {
    /// Prepares the sums over `cols` of the lines whose product number is
    /// allowed by `allowed` (indexed by product number); the units and
    /// cents not in `need` may be left at 0.
    pub(crate) fn new(cols: LineColumns<'a>, allowed: &'a [bool], need: Need) -> Self {
        Self {
            cols,
            allowed,
            fixed: Self::fixed(&cols, allowed, need),
        }
    }

    fn fixed(cols: &LineColumns<'a>, allowed: &[bool], need: Need) -> Option<Fixed<'a>> {
        let (p, q, c) = (cols.product, cols.qty, cols.cents);
        if p.scale() != 1 {
            return None;
        }
        // A measure no test reads is not summed: the loop reads its column
        // with width 0 (as it reads a column of one value, whose stored
        // values are all 0), and `of` gives 0 for it.
        let (wq, wc) = (
            if need.units { q.width() } else { 0 },
            if need.cents { c.width() } else { 0 },
        );
        macro_rules! widths {
            ($(($wp:literal, $wq:literal, $wc:literal)),*) => {
                match (p.width(), wq, wc) {
                    $(($wp, $wq, $wc) => stored_sums::<$wp, $wq, $wc> as StoredSums,)*
                    _ => return None,
                }
            };
        }
        #[rustfmt::skip]
        let sums = widths!(
            (1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 0, 3), (1, 0, 4),
            (1, 1, 0), (1, 1, 1), (1, 1, 2), (1, 1, 3), (1, 1, 4),
            (1, 2, 0), (1, 2, 1), (1, 2, 2), (1, 2, 3), (1, 2, 4),
            (2, 0, 0), (2, 0, 1), (2, 0, 2), (2, 0, 3), (2, 0, 4),
            (2, 1, 0), (2, 1, 1), (2, 1, 2), (2, 1, 3), (2, 1, 4),
            (2, 2, 0), (2, 2, 1), (2, 2, 2), (2, 2, 3), (2, 2, 4)
        );
        // Stored value s is product base + s; past `allowed` nothing is.
        let mut table = vec![false; 1 << (8 * p.width())];
        let from = usize::try_from(p.base()).ok()?;
        let kept = allowed.get(from..).unwrap_or_default();
        let n = kept.len().min(table.len());
        table[..n].copy_from_slice(&kept[..n]);
        Some(Fixed {
            sums,
            need,
            widths: [p.width(), wq, wc],
            bytes: [
                p.stored_bytes(0..p.len()),
                q.stored_bytes(0..q.len()),
                c.stored_bytes(0..c.len()),
            ],
            table,
        })
    }

    /// Whether the widths of this chunk took the fixed-width loop.
    #[cfg(test)]
    fn is_fixed(&self) -> bool {
        self.fixed.is_some()
    }

    /// Count, units and cents of the allowed lines of `range`.
    #[inline(always)]
    pub(crate) fn of(&self, range: Range<usize>) -> (i64, i64, i64) {
        let Some(f) = &self.fixed else {
            return self.line_by_line(range);
        };
        let part = |k: usize| &f.bytes[k][range.start * f.widths[k]..range.end * f.widths[k]];
        let (n, u, s) = (f.sums)(part(0), part(1), part(2), &f.table);
        let n = n as i64;
        // A column of one value (width 0) sums to n · base.
        let total = |col: segdex_index::packed::Packed, needed: bool, stored: u64| {
            if !needed {
                return 0;
            }
            col.base()
                .wrapping_mul(n)
                .wrapping_add(col.scale().wrapping_mul(stored as i64))
        };
        (
            n,
            total(self.cols.qty, f.need.units, u),
            total(self.cols.cents, f.need.cents, s),
        )
    }

    /// Whether any line of `range` has an allowed product (stops at the
    /// first).
    pub(crate) fn any(&self, range: Range<usize>) -> bool {
        match &self.fixed {
            Some(f) => {
                let w = f.widths[0];
                let bytes = &f.bytes[0][range.start * w..range.end * w];
                if w == 1 {
                    stored_any::<1>(bytes, &f.table)
                } else {
                    stored_any::<2>(bytes, &f.table)
                }
            }
            None => {
                let cols = &self.cols;
                range
                    .into_iter()
                    .any(|j| line_allowed(cols, self.allowed, j))
            }
        }
    }

    /// [`Self::of`] through the generic reader.
    fn line_by_line(&self, range: Range<usize>) -> (i64, i64, i64) {
        let cols = &self.cols;
        let (mut n, mut u, mut c) = (0i64, 0i64, 0i64);
        for j in range {
            let take = -i64::from(line_allowed(cols, self.allowed, j));
            n -= take;
            u += cols.qty.get(j) & take;
            c += cols.cents.get(j) & take;
        }
        (n, u, c)
    }
}

/// Whether line `j`'s product is allowed (`allowed` is indexed by product
/// number).
#[inline(always)]
pub(crate) fn line_allowed(cols: &LineColumns, allowed: &[bool], j: usize) -> bool {
    allowed.get(cols.product.get(j) as usize).copied() == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use segdex_index::packed::{self, Packed};

    /// A small deterministic generator (xorshift), so the test needs no
    /// crate and its cases are the same every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn column(values: &[i64]) -> Vec<u8> {
        let mut buf = Vec::new();
        packed::encode(values, &mut buf);
        buf
    }

    #[test]
    fn fixed_width_sums_equal_line_by_line_sums() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        // (product span, quantity values, cents values) cover every width
        // this loop takes, bases below zero, scales above one, and widths
        // it does not take (then `None`).
        let (mut fixed, mut declined) = (0, 0);
        for case in 0..480 {
            let lines = 1 + rng.below(300) as usize;
            let n_products = [3u64, 200, 300, 70_000][case % 4];
            let product_base = rng.below(5) as i64 * [1, 0][case % 2];
            // A span of 1 is a column of one value (stored in 0 bytes).
            let qty_span = [1u64, 2, 250, 60_000, 1 << 20][(case / 4) % 5] as i64;
            let cents_span = [100u64, 60_000, 1 << 22, 1 << 30, 1 << 34, 1][(case / 20) % 6] as i64;
            let qty_scale = [1, 3][(case / 120) % 2];
            let cents_lo = [0, -5_000][(case / 240) % 2];
            let product: Vec<i64> = (0..lines)
                .map(|_| product_base + rng.below(n_products) as i64)
                .collect();
            let qty: Vec<i64> = (0..lines)
                .map(|_| (rng.below(qty_span as u64) as i64 - 1) * qty_scale)
                .collect();
            let cents: Vec<i64> = (0..lines)
                .map(|_| cents_lo + rng.below(cents_span as u64) as i64)
                .collect();
            let (pb, qb, cb) = (column(&product), column(&qty), column(&cents));
            let cols = LineColumns {
                product: Packed::parse(&pb).unwrap().0,
                qty: Packed::parse(&qb).unwrap().0,
                cents: Packed::parse(&cb).unwrap().0,
            };
            let total_products = (product_base as u64 + n_products) as usize;
            let mut allowed = vec![false; total_products];
            for a in allowed.iter_mut() {
                *a = rng.below(3) == 0;
            }
            let start = rng.below(lines as u64) as usize;
            let end = start + rng.below((lines - start) as u64 + 1) as usize;
            let expect = (start..end)
                .filter(|&j| allowed[product[j] as usize])
                .fold((0, 0, 0), |(n, u, c), j| (n + 1, u + qty[j], c + cents[j]));
            let sums = LineSums::new(cols, &allowed, Need::ALL);
            assert_eq!(sums.of(start..end), expect, "case {case}");
            assert_eq!(sums.any(start..end), expect.0 > 0, "case {case}");
            if sums.is_fixed() {
                fixed += 1;
            } else {
                declined += 1;
            }
            // With only some sums needed, those (and the count) agree.
            for (units, cents) in [(true, false), (false, true), (false, false)] {
                let part = LineSums::new(cols, &allowed, Need { units, cents });
                let (n, u, c) = part.of(start..end);
                assert_eq!(n, expect.0, "case {case}");
                assert!(!units || u == expect.1, "case {case}");
                assert!(!cents || c == expect.2, "case {case}");
            }
        }
        assert!(
            fixed > 150 && declined > 20,
            "{fixed} fixed, {declined} declined"
        );
    }
}
