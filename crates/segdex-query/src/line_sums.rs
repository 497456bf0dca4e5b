//! Sums over a run of lines whose product is allowed, with the line
//! columns' byte widths fixed at compile time.
//!
//! The generic reader ([`segdex_index::packed::Packed::get`]) decodes each
//! value with a runtime width, a mask, a multiply and an add; in the line
//! loop that is three such decodes a line and more live values than there
//! are registers. Here the loop reads the stored bytes of each column with
//! a width known to the compiler, sums the stored values, and applies base
//! and scale once per run: `Σ (base + s·v) = n·base + s·Σ v`.

use segdex_index::chunk::LineColumns;
use std::ops::Range;

/// The stored value in the first `W` bytes of `b`, little-endian.
#[inline(always)]
fn stored<const W: usize>(b: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..W].copy_from_slice(&b[..W]);
    u64::from_le_bytes(word)
}

/// Count, and sums of stored quantity and cents, of the lines whose stored
/// product is allowed by `mask`.
#[inline(always)]
fn stored_sums<const WP: usize, const WQ: usize, const WC: usize>(
    product: &[u8],
    qty: &[u8],
    cents: &[u8],
    mask: &[bool],
) -> (u64, u64, u64) {
    let (mut n, mut u, mut c) = (0u64, 0u64, 0u64);
    // An index loop over slices of known length: the bounds tests fold
    // away, and there is no iterator adapter to set up on each call (a run
    // is a customer's dozen or so lines).
    let lines = product.len() / WP;
    let (qty, cents) = (&qty[..lines * WQ], &cents[..lines * WC]);
    for j in 0..lines {
        let p = stored::<WP>(&product[j * WP..]);
        // A stored value past the mask is a product of no other chunk's
        // range; the test compiles to a compare and a conditional move.
        let take = u64::from(mask.get(p as usize).copied().unwrap_or(false));
        n += take;
        let take = take.wrapping_neg();
        u = u.wrapping_add(stored::<WQ>(&qty[j * WQ..]) & take);
        c = c.wrapping_add(stored::<WC>(&cents[j * WC..]) & take);
    }
    (n, u, c)
}

/// Whether line `j`'s product is allowed (`allowed` is indexed by product
/// number).
#[inline(always)]
pub(crate) fn line_allowed(cols: &LineColumns, allowed: &[bool], j: usize) -> bool {
    allowed.get(cols.product.get(j) as usize).copied() == Some(true)
}

/// Lines, units and cents of the lines `range` whose product is allowed,
/// summed without a branch: with the column widths fixed at compile time
/// when the chunk has widths [`fixed_sums`] is made for, else line by line
/// through [`segdex_index::packed::Packed::get`].
///
/// The sums are exact in 64 bits: the chunk's encoder bounds the sum of the
/// magnitudes of its quantities and cents by `i64::MAX`.
#[inline(always)]
pub(crate) fn allowed_sums(
    cols: &LineColumns,
    allowed: &[bool],
    range: Range<usize>,
) -> (i64, i64, i64) {
    if let Some(sums) = fixed_sums(cols, allowed, range.clone()) {
        return sums;
    }
    let (mut n, mut u, mut c) = (0i64, 0i64, 0i64);
    for j in range {
        let take = -i64::from(line_allowed(cols, allowed, j));
        n -= take;
        u += cols.qty.get(j) & take;
        c += cols.cents.get(j) & take;
    }
    (n, u, c)
}

/// [`allowed_sums`] with fixed widths, or `None` when the chunk's columns
/// do not have one of the widths this loop is made for: products of one or
/// two bytes with scale 1, quantities of one or two bytes, cents of one to
/// four. The sums wrap in 64 bits, which is exact for the same reason.
#[inline]
fn fixed_sums(
    cols: &LineColumns,
    allowed: &[bool],
    range: Range<usize>,
) -> Option<(i64, i64, i64)> {
    let (p, q, c) = (cols.product, cols.qty, cols.cents);
    if p.scale() != 1 {
        return None;
    }
    let mask = allowed.get(usize::try_from(p.base()).ok()?..)?;
    let pb = p.stored_bytes(range.clone());
    let qb = q.stored_bytes(range.clone());
    let cb = c.stored_bytes(range);
    macro_rules! widths {
        ($(($wp:literal, $wq:literal, $wc:literal)),*) => {
            match (p.width(), q.width(), c.width()) {
                $(($wp, $wq, $wc) => stored_sums::<$wp, $wq, $wc>(pb, qb, cb, mask),)*
                _ => return None,
            }
        };
    }
    let (n, u, s) = widths!(
        (1, 1, 1),
        (1, 1, 2),
        (1, 1, 3),
        (1, 1, 4),
        (1, 2, 1),
        (1, 2, 2),
        (1, 2, 3),
        (1, 2, 4),
        (2, 1, 1),
        (2, 1, 2),
        (2, 1, 3),
        (2, 1, 4),
        (2, 2, 1),
        (2, 2, 2),
        (2, 2, 3),
        (2, 2, 4)
    );
    let n = n as i64;
    let total = |col: segdex_index::packed::Packed, stored: u64| {
        col.base()
            .wrapping_mul(n)
            .wrapping_add(col.scale().wrapping_mul(stored as i64))
    };
    Some((n, total(q, u), total(c, s)))
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
        for case in 0..400 {
            let lines = 1 + rng.below(300) as usize;
            let n_products = [3u64, 200, 300, 70_000][case % 4];
            let product_base = rng.below(5) as i64 * [1, 0][case % 2];
            let qty_span = [2u64, 250, 60_000, 1 << 20][(case / 4) % 4] as i64;
            let cents_span = [100u64, 60_000, 1 << 22, 1 << 30, 1 << 34][(case / 16) % 5] as i64;
            let qty_scale = [1, 3][(case / 80) % 2];
            let cents_lo = [0, -5_000][(case / 160) % 2];
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
            match fixed_sums(&cols, &allowed, start..end) {
                Some(got) => {
                    assert_eq!(got, expect, "case {case}");
                    fixed += 1;
                }
                None => declined += 1,
            }
        }
        assert!(
            fixed > 150 && declined > 20,
            "{fixed} fixed, {declined} declined"
        );
    }
}
