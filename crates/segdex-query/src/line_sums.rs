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
//!
//! [`LineSums::push_reaching`] runs the same loop for a `having` of lower
//! bounds, over a block of candidates at once, and leaves each candidate's
//! lines once the bounds are met: a heavy buyer passes long before their
//! last line.

use crate::verify::Keep;
use segdex_index::chunk::{ChunkView, LineColumns};
use std::borrow::Cow;
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
/// product is allowed by `table` (see [`Fixed::table`]: a power of two of
/// entries, read at the stored value masked to it).
/// A width of 0 leaves that column unread (sum 0).
fn stored_sums<const WP: usize, const WQ: usize, const WC: usize>(
    product: &[u8],
    qty: &[u8],
    cents: &[u8],
    table: &[bool],
) -> (u64, u64, u64) {
    let mut sums = (0, 0, 0);
    add_blocks::<WP, WQ, WC>(product, qty, cents, table, &mut sums, |_| false);
    sums
}

/// Adds the allowed lines of all `product.len() / WP` lines to `sums` (as
/// [`add_lines`]), [`REACH_STEP`] lines at a time, and returns `true` as
/// soon as `stop` of the sums after a whole block does (the lines after it
/// unread). Each whole block is a slice of a length known to the compiler:
/// its loop is unrolled, with no bounds check a line (at 1M, the three
/// all-time product segments 50.2 → 44.0 ms).
#[inline(always)]
fn add_blocks<const WP: usize, const WQ: usize, const WC: usize>(
    product: &[u8],
    qty: &[u8],
    cents: &[u8],
    table: &[bool],
    sums: &mut (u64, u64, u64),
    mut stop: impl FnMut((u64, u64, u64)) -> bool,
) -> bool {
    let lines = product.len() / WP;
    let blocks = lines / REACH_STEP;
    for b in 0..blocks {
        let at = |w: usize| b * REACH_STEP * w..(b + 1) * REACH_STEP * w;
        let (p, q, c) = (&product[at(WP)], &qty[at(WQ)], &cents[at(WC)]);
        add_lines::<WP, WQ, WC>(p, q, c, table, 0..REACH_STEP, sums);
        if stop(*sums) {
            return true;
        }
    }
    add_lines::<WP, WQ, WC>(product, qty, cents, table, blocks * REACH_STEP..lines, sums);
    false
}

/// Adds the count, stored quantity and stored cents of the allowed lines
/// `range` (of the `product.len() / WP` lines) to `sums`.
#[inline(always)]
fn add_lines<const WP: usize, const WQ: usize, const WC: usize>(
    product: &[u8],
    qty: &[u8],
    cents: &[u8],
    table: &[bool],
    range: Range<usize>,
    sums: &mut (u64, u64, u64),
) {
    let (mut n, mut u, mut c) = *sums;
    // An index loop over slices of known length (the table's is a power
    // of two: a stored product masked to it is inside).
    let mask = table.len() - 1;
    let lines = product.len() / WP;
    let (qty, cents) = (&qty[..lines * WQ], &cents[..lines * WC]);
    for j in range {
        let p = stored::<WP>(&product[j * WP..]) as usize & mask;
        // A compare-free load and a mask instead of a branch.
        let take = u64::from(table[p]);
        n += take;
        let take = take.wrapping_neg();
        u = u.wrapping_add(stored::<WQ>(&qty[j * WQ..]) & take);
        c = c.wrapping_add(stored::<WC>(&cents[j * WC..]) & take);
    }
    *sums = (n, u, c);
}

/// Whether the lines whose stored product is allowed by `table` reach
/// `floors` ([`stored_sums`]' loop, checked every [`REACH_STEP`] lines and
/// left at the first check that passes).
fn stored_reach<const WP: usize, const WQ: usize, const WC: usize>(
    product: &[u8],
    qty: &[u8],
    cents: &[u8],
    table: &[bool],
    floors: &StoredFloors,
) -> bool {
    let mut sums = (0, 0, 0);
    add_blocks::<WP, WQ, WC>(product, qty, cents, table, &mut sums, |s| floors.reached(s))
        || floors.reached(sums)
}

/// Whether any line of `product` (stored values of `WP` bytes) is allowed
/// by `table` (as in [`stored_sums`]).
fn stored_any<const WP: usize>(product: &[u8], table: &[bool]) -> bool {
    let mask = table.len() - 1;
    product
        .chunks_exact(WP)
        .any(|b| table[stored::<WP>(b) as usize & mask])
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

/// The least orders, lines, units and cents a test of lower bounds passes
/// with (`i64::MIN` where it has no bound), from
/// [`crate::verify::HavingTest::floors`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Floors {
    /// Least number of distinct orders.
    pub orders: i64,
    /// Least number of lines.
    pub lines: i64,
    /// Least sum of quantity.
    pub units: i64,
    /// Least sum of line totals, in cents.
    pub cents: i64,
}

impl Floors {
    /// Whether `orders`, `lines`, `units` and `cents` are each at least
    /// their floor.
    #[inline(always)]
    pub(crate) fn met(&self, orders: i64, lines: i64, units: i64, cents: i64) -> bool {
        orders >= self.orders && lines >= self.lines && units >= self.units && cents >= self.cents
    }
}

/// Lines (or orders) summed between checks of floors: a heavy buyer's
/// lines are read until a few past the point where the floors are met.
pub(crate) const REACH_STEP: usize = 8;

/// [`Floors`] against stored sums: a stored sum `s` of `n` lines is worth
/// `base · n + scale · s` (bases and scales not negative; 0 for a column
/// not read).
#[derive(Debug, Clone, Copy)]
struct StoredFloors {
    floors: Floors,
    qty: (i64, i64),
    cents: (i64, i64),
}

impl StoredFloors {
    #[inline(always)]
    fn reached(&self, (n, u, c): (u64, u64, u64)) -> bool {
        let n = n as i64;
        // No orders are counted here (see `LineSums::reaches`).
        self.floors
            .met(0, n, worth(self.qty, n, u), worth(self.cents, n, c))
    }
}

/// What `stored`, a sum of `n` stored values of a column with `base` and
/// `scale`, is worth: `base · n + scale · stored`, wrapping (exact, since
/// the chunk's encoder bounds a customer's sum of magnitudes by `i64::MAX`).
#[inline(always)]
fn worth((base, scale): (i64, i64), n: i64, stored: u64) -> i64 {
    base.wrapping_mul(n)
        .wrapping_add(scale.wrapping_mul(stored as i64))
}

/// A [`stored_sums`] for one triple of widths.
type StoredSums = fn(&[u8], &[u8], &[u8], &[bool]) -> (u64, u64, u64);
/// A [`stored_reach`] for one triple of widths (tests call it on
/// ranges of lines).
type StoredReach = fn(&[u8], &[u8], &[u8], &[bool], &StoredFloors) -> bool;
/// A [`reach_each`] for one triple of widths.
type ReachEach = fn(&Fixed, &ChunkView, &Keep, &[usize], &StoredFloors, &mut Vec<usize>);

/// Pushes onto `out` each of one chunk's candidates `locals` (ascending)
/// whose allowed lines, of the orders `keep` keeps of it in a chunk in time
/// order, reach `floors` ([`stored_reach`]). One loop a chunk for all the
/// candidates, with the widths known to the compiler: a call through a
/// pointer a candidate, with the floors copied and the lines' bytes
/// sliced by runtime widths, was a fifth of the instructions of the
/// all-time product segments at 1M.
fn reach_each<const WP: usize, const WQ: usize, const WC: usize>(
    f: &Fixed,
    view: &ChunkView,
    keep: &Keep,
    locals: &[usize],
    floors: &StoredFloors,
    out: &mut Vec<usize>,
) {
    for c in view.prefetching(locals, true) {
        let lines = keep.candidate_lines(view, c);
        let at = |w: usize| lines.start * w..lines.end * w;
        let (p, q, cents) = (
            &f.bytes[0][at(WP)],
            &f.bytes[1][at(WQ)],
            &f.bytes[2][at(WC)],
        );
        if stored_reach::<WP, WQ, WC>(p, q, cents, &f.table, floors) {
            out.push(c);
        }
    }
}

/// The loop for one chunk's widths, prepared by [`LineSums::new`].
struct Fixed<'a> {
    sums: StoredSums,
    #[cfg(test)]
    reach: StoredReach,
    reach_each: ReachEach,
    /// Base and scale of the quantity and of the cents column, or (0, 0)
    /// for a sum not needed: a stored sum `s` of `n` lines is worth
    /// `base · n + scale · s`. (A column of one value has width 0 and
    /// stored values 0, and sums to `n · base`.)
    values: [(i64, i64); 2],
    /// Bytes per stored product, quantity and cents.
    widths: [usize; 3],
    /// The stored bytes of the whole product, quantity and cents columns.
    bytes: [&'a [u8]; 3],
    /// Whether each stored product value is allowed, padded with `false`
    /// to a power of two above every stored value of a product of the
    /// index (a stored value is read masked to it). As long as the index
    /// has products, not `256^width`, and the query's own mask where the
    /// chunk's products start at 0 (the usual case): one table for every
    /// chunk and thread, which stays in the first-level cache. A fresh
    /// table of 64 KiB a call (two-byte products) made some loops 15 %
    /// slower at 10M; capping the stored value (a conditional move)
    /// instead of masking it cost 9 % on `vendor_day`.
    table: Cow<'a, [bool]>,
}

impl<'a> Fixed<'a> {
    /// The stored bytes of lines `range` in the product, quantity and cents
    /// columns.
    #[inline(always)]
    fn parts(&self, range: Range<usize>) -> [&'a [u8]; 3] {
        let part =
            |k: usize| &self.bytes[k][range.start * self.widths[k]..range.end * self.widths[k]];
        [part(0), part(1), part(2)]
    }
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

    fn fixed(cols: &LineColumns<'a>, allowed: &'a [bool], need: Need) -> Option<Fixed<'a>> {
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
                    $(($wp, $wq, $wc) => (
                        stored_sums::<$wp, $wq, $wc> as StoredSums,
                        stored_reach::<$wp, $wq, $wc> as StoredReach,
                        reach_each::<$wp, $wq, $wc> as ReachEach,
                    ),)*
                    _ => return None,
                }
            };
        }
        #[rustfmt::skip]
        let (sums, reach, reach_each) = widths!(
            (1, 0, 0), (1, 0, 1), (1, 0, 2), (1, 0, 3), (1, 0, 4),
            (1, 1, 0), (1, 1, 1), (1, 1, 2), (1, 1, 3), (1, 1, 4),
            (1, 2, 0), (1, 2, 1), (1, 2, 2), (1, 2, 3), (1, 2, 4),
            (2, 0, 0), (2, 0, 1), (2, 0, 2), (2, 0, 3), (2, 0, 4),
            (2, 1, 0), (2, 1, 1), (2, 1, 2), (2, 1, 3), (2, 1, 4),
            (2, 2, 0), (2, 2, 1), (2, 2, 2), (2, 2, 3), (2, 2, 4)
        );
        // Stored value s is product base + s; past `allowed` nothing is.
        let from = usize::try_from(p.base()).ok()?;
        // Stored values of products of the index are below
        // `allowed.len() - from`; larger ones (none in a sound index) read
        // some entry of the table, never past it.
        let table = if from == 0 && allowed.len().is_power_of_two() {
            Cow::Borrowed(allowed)
        } else {
            let kept = allowed.get(from..).unwrap_or_default();
            let mut table = vec![false; (kept.len() + 1).next_power_of_two()];
            table[..kept.len()].copy_from_slice(kept);
            Cow::Owned(table)
        };
        // Only the tests walk one range at a time (`reaches`).
        #[cfg(not(test))]
        let _ = reach;
        Some(Fixed {
            sums,
            #[cfg(test)]
            reach,
            reach_each,
            values: [(q, need.units), (c, need.cents)].map(|(col, needed)| {
                if needed {
                    (col.base(), col.scale())
                } else {
                    (0, 0)
                }
            }),
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
        let [p, q, c] = f.parts(range);
        let (n, u, s) = (f.sums)(p, q, c, &f.table);
        let n = n as i64;
        (n, worth(f.values[0], n, u), worth(f.values[1], n, s))
    }

    /// Whether no quantity (when `floors` bounds units) and no line total
    /// (when it bounds cents) of the chunk is negative: then the sums
    /// `floors` bounds only grow along a run, and [`Self::reaches`] may
    /// stop early.
    pub(crate) fn never_negative(&self, floors: Floors) -> bool {
        // Stored values are unsigned: base + scale · stored >= 0 for all.
        let ok = |col: segdex_index::packed::Packed| col.base() >= 0 && col.scale() >= 0;
        (floors.units == i64::MIN || ok(self.cols.qty))
            && (floors.cents == i64::MIN || ok(self.cols.cents))
    }

    /// Whether the allowed lines of `range` reach every one of `floors`
    /// (count, units and cents at least them), reading lines only until
    /// they do. Requires [`Self::never_negative`] of `floors`, and no
    /// floor on orders (lines are not orders).
    #[cfg(test)]
    pub(crate) fn reaches(&self, range: Range<usize>, floors: Floors) -> bool {
        debug_assert_eq!(floors.orders, i64::MIN);
        let Some(f) = &self.fixed else {
            let (n, u, c) = self.line_by_line(range);
            return floors.met(0, n, u, c);
        };
        let [p, q, c] = f.parts(range);
        let stored = StoredFloors {
            floors,
            qty: f.values[0],
            cents: f.values[1],
        };
        (f.reach)(p, q, c, &f.table, &stored)
    }

    /// Pushes onto `out` each of the candidates `locals` (ascending) of
    /// the chunk `view` in time order whose allowed lines of the orders
    /// `keep` keeps reach every one of `floors` (count, units and cents at
    /// least them), reading each candidate's lines only until they do.
    /// Requires [`Self::never_negative`] of `floors`, and no floor on
    /// orders (lines are not orders).
    pub(crate) fn push_reaching(
        &self,
        view: &ChunkView,
        keep: &Keep,
        locals: &[usize],
        floors: Floors,
        out: &mut Vec<usize>,
    ) {
        debug_assert_eq!(floors.orders, i64::MIN);
        let Some(f) = &self.fixed else {
            for c in view.prefetching(locals, true) {
                let lines = keep.candidate_lines(view, c);
                let (n, u, cents) = self.line_by_line(lines);
                if floors.met(0, n, u, cents) {
                    out.push(c);
                }
            }
            return;
        };
        let stored = StoredFloors {
            floors,
            qty: f.values[0],
            cents: f.values[1],
        };
        (f.reach_each)(f, view, keep, locals, &stored, out);
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
        let mut reached = [0; 2];
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
            // Quantities from -1, 0 or 1 up: with none negative (and
            // cents from 0), sums may stop early at floors.
            let qty_lo = rng.below(3) as i64 - 1;
            let qty: Vec<i64> = (0..lines)
                .map(|_| (rng.below(qty_span as u64) as i64 + qty_lo) * qty_scale)
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
            // A query's own mask is padded to a power of two, and then is
            // the loop's table where the products start at 0.
            if case % 3 == 0 {
                allowed.resize(total_products.next_power_of_two(), false);
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
            // With only some sums needed, those (and the count) agree, and
            // floors on them are reached exactly when the sums meet them.
            for (units, cents) in [(true, true), (true, false), (false, true), (false, false)] {
                let part = LineSums::new(cols, &allowed, Need { units, cents });
                let (n, u, c) = part.of(start..end);
                assert_eq!(n, expect.0, "case {case}");
                assert!(!units || u == expect.1, "case {case}");
                assert!(!cents || c == expect.2, "case {case}");
                // Floors within |sum| + 1 of the sums, so both answers are
                // common (and, with negative values, a run that passes a
                // floor part-way and ends below it).
                let mut near = |sum: i64, needed: bool| {
                    if needed {
                        let r = sum.unsigned_abs() + 1;
                        sum - r as i64 + rng.below(2 * r + 1) as i64
                    } else {
                        i64::MIN
                    }
                };
                let floors = Floors {
                    orders: i64::MIN,
                    lines: near(expect.0, true),
                    units: near(expect.1, units),
                    cents: near(expect.2, cents),
                };
                if part.never_negative(floors) {
                    let want = floors.met(0, expect.0, expect.1, expect.2);
                    assert_eq!(
                        part.reaches(start..end, floors),
                        want,
                        "case {case} {floors:?}"
                    );
                    reached[usize::from(want)] += 1;
                }
            }
        }
        assert!(
            reached[0] > 100 && reached[1] > 100,
            "floors not reached {}, reached {}",
            reached[0],
            reached[1]
        );
        assert!(
            fixed > 150 && declined > 20,
            "{fixed} fixed, {declined} declined"
        );
    }
}
