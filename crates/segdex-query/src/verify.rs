//! Purchase measures of candidate customers, read from one chunk's line
//! store (see `segdex_index::chunk`).
//!
//! Without a product filter each order's lines, units and cents come from
//! running totals; in a chunk whose orders are in time order the window is
//! one run of orders, so a customer costs a few reads whatever their
//! history. With a product filter the lines of the customer's orders in the
//! window are read.

use crate::lang::{CmpOp, Decimal, Measure, POW10};
use crate::line_sums::{Floors, LineSums, Need, REACH_STEP};
use segdex_index::chunk::{ChunkView, Clip, NULL_VALUE, RunTotals, StoredWindow};
use std::ops::Range;

/// An order-attribute filter of a `where`, resolved to value ids.
#[derive(Debug, Clone)]
pub(crate) struct AttrFilter {
    /// Which order attribute (index into `chunk::ORDER_ATTRS`).
    pub attr: usize,
    /// Allowed value ids.
    pub allowed: Vec<bool>,
    /// Whether a null value passes.
    pub null_ok: bool,
    /// Bitmap sections of the customers with an allowed value.
    pub sections: Vec<u32>,
}

/// What decides whether an order and a line are kept.
#[derive(Clone, Copy)]
pub(crate) struct Keep<'p> {
    /// Allowed products (None = every product), and their list.
    pub products: Option<&'p (Vec<bool>, Vec<u32>)>,
    /// Order-attribute filters.
    pub filters: &'p [AttrFilter],
    /// First and last local day of the window.
    pub lo: i32,
    /// Last local day of the window.
    pub hi: i32,
    /// The window holds every day with orders and the clip cuts none:
    /// every order is in it.
    pub whole: bool,
    /// The as-of clip: orders on its day or later whose instant is after
    /// it are not kept. `None` when it can cut no order of the window (a
    /// whole-day as-of), so no instant is read.
    pub clip: Option<Clip>,
    /// Only whether a line is kept matters (every `having` is empty): a
    /// customer's first kept line decides.
    pub exists_only: bool,
    /// The window as the chunk stores days, when the candidates are not
    /// [`segdex_index::chunk::sparse`] (see [`Self::for_candidates`]):
    /// runs are found by [`ChunkView::window_run_compared`].
    pub compared: Option<StoredWindow>,
}

impl Keep<'_> {
    /// Whether order `i` is in the window, not after the as-of instant and
    /// passes the order-attribute filters.
    #[inline]
    fn order_ok(&self, view: &ChunkView, attrs: &OrderFilters, i: usize) -> bool {
        let day = view.order_day(i);
        day >= self.lo
            && day <= self.hi
            && !self
                .clip
                .is_some_and(|c| day >= c.day && view.order_ns(i) > c.ns)
            && attrs.ok(view, i)
    }

    /// Whether candidate order `i` (from [`Self::candidate_orders`]) is
    /// kept: in a chunk in time order the run is already the window's, so
    /// only the order attributes are left to test.
    #[inline(always)]
    pub(crate) fn candidate_kept(&self, view: &ChunkView, attrs: &OrderFilters, i: usize) -> bool {
        if view.in_time_order() {
            attrs.ok(view, i)
        } else {
            self.order_ok(view, attrs, i)
        }
    }

    /// The clip to apply to a run of orders (only the as-of day's orders
    /// can be after it).
    fn run_clip(&self) -> Option<Clip> {
        self.clip.filter(|c| self.hi >= c.day)
    }

    /// The orders of `local` that can be kept: the window's run when the
    /// chunk is in time order, else all of them.
    #[inline(always)]
    pub(crate) fn candidate_orders(&self, view: &ChunkView, local: usize) -> Range<usize> {
        let orders = view.order_range(local);
        if !view.in_time_order() || self.whole {
            orders
        } else if let Some(w) = &self.compared {
            view.window_run_compared(orders, w)
        } else {
            view.window_run(orders, self.lo, self.hi, self.run_clip())
        }
    }

    /// The lines of [`Self::candidate_orders`] of `local` (one range: a
    /// run of orders owns adjacent lines).
    #[inline(always)]
    pub(crate) fn candidate_lines(&self, view: &ChunkView, local: usize) -> Range<usize> {
        view.lines_of_orders(self.candidate_orders(view, local))
    }

    /// This keep for the candidates `locals` (ascending) of the chunk
    /// `view`: the stored window when they are dense.
    pub(crate) fn for_candidates(&self, view: &ChunkView, locals: &[usize]) -> Self {
        let dense = !segdex_index::chunk::sparse(locals);
        Keep {
            compared: dense.then(|| view.stored_window(self.lo, self.hi, self.run_clip())),
            ..*self
        }
    }
}

/// The order-attribute filters of a `where` over one chunk's columns.
/// A column of one-byte values (value ids below 256: most order
/// attributes) is tested through a table over its stored bytes, read
/// straight from the column; wider columns are decoded.
pub(crate) struct OrderFilters<'a> {
    /// One-byte columns' stored bytes (one per order) and whether each
    /// stored byte passes.
    bytes: Vec<(&'a [u8], [bool; 256])>,
    /// Filters of wider columns.
    wide: Vec<&'a AttrFilter>,
    /// Whether the filters of columns with one value for every order (no
    /// stored bytes) pass it.
    constant_ok: bool,
}

impl<'a> OrderFilters<'a> {
    /// `filters` over `view`'s order-attribute columns.
    pub(crate) fn new(view: &ChunkView<'a>, filters: &'a [AttrFilter]) -> Self {
        let mut out = Self {
            bytes: Vec::new(),
            wide: Vec::new(),
            constant_ok: true,
        };
        for f in filters {
            let col = view.order_attr_column(f.attr);
            let passes = |stored: i64| {
                let v = col.base().wrapping_add(stored.wrapping_mul(col.scale()));
                value_ok(f, v)
            };
            match col.width() {
                0 => out.constant_ok &= col.is_empty() || passes(0),
                1 => {
                    let mut table = [false; 256];
                    for (s, t) in table.iter_mut().enumerate() {
                        *t = passes(s as i64);
                    }
                    out.bytes.push((col.stored_bytes(0..col.len()), table));
                }
                _ => out.wide.push(f),
            }
        }
        out
    }

    /// Whether order `i` passes every filter. Every filter is tested,
    /// without branches: whether an order passes is as good as random, and
    /// a mispredicted branch costs more than the test.
    #[inline(always)]
    pub(crate) fn ok(&self, view: &ChunkView, i: usize) -> bool {
        let mut ok = self.constant_ok;
        for (bytes, table) in &self.bytes {
            ok &= table[bytes[i] as usize];
        }
        for f in &self.wide {
            ok &= value_ok(f, view.order_attr(f.attr, i));
        }
        ok
    }
}

/// Whether value id `v` (or [`NULL_VALUE`]) passes filter `f`.
#[inline(always)]
fn value_ok(f: &AttrFilter, v: i64) -> bool {
    // NULL_VALUE (-1) is past the end of `allowed` as a usize.
    let allowed = f.allowed.get(v as usize).copied().unwrap_or(false);
    allowed | ((v == NULL_VALUE) & f.null_ok)
}

/// Per-customer measures over the kept lines. They fit 64 bits: a
/// chunk's encoder bounds the sum of the magnitudes of its quantities and
/// of its line totals by `i64::MAX`, and counts are below a chunk's lines.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Measures {
    pub orders: i64,
    pub lines: i64,
    pub units: i64,
    pub cents: i64,
}

impl Measures {
    #[inline(always)]
    fn add_run(&mut self, t: segdex_index::chunk::RunTotals) {
        self.lines += t.lines;
        self.units += t.units;
        self.cents += t.cents;
    }
}

/// Whether measures `m` pass `having` (empty: at least one kept line).
pub(crate) fn having_holds(having: &[(Measure, CmpOp, Decimal)], m: &Measures) -> bool {
    if having.is_empty() {
        return m.lines > 0;
    }
    having.iter().all(|&(measure, op, x)| {
        // The measure as a ratio `n / d` in the threshold's units.
        let (n, d) = match measure {
            Measure::Orders => (i128::from(m.orders), 1),
            Measure::Lines => (i128::from(m.lines), 1),
            Measure::Units => (i128::from(m.units), 1),
            Measure::Spend => (i128::from(m.cents), 100),
            Measure::AvgOrderValue => {
                if m.orders <= 0 {
                    return false;
                }
                (i128::from(m.cents), i128::from(m.orders) * 100)
            }
        };
        let ord = if x.scale <= 18
            && x.mantissa.unsigned_abs() < 1 << 56
            && n.unsigned_abs() < 1 << 64
            && d < 1 << 71
        {
            // The products are below 2^124 and 2^127: plain arithmetic.
            (n * POW10[x.scale as usize]).cmp(&(x.mantissa * d))
        } else {
            cmp_ratio(n, d, x.mantissa, POW10[x.scale as usize])
        };
        op.holds(ord)
    })
}

/// A `having` set up for the per-candidate loop: each test of a count or
/// of spend is the range of the measure (an integer: orders, lines, units,
/// cents) that passes it, from the threshold's exact floor and ceiling, so
/// a candidate costs two 64-bit compares per test; `avg_order_value`
/// is one cross product each side in 128 bits from 64-bit factors, or,
/// for thresholds too long for that, [`having_holds`]'s exact compare.
pub(crate) struct HavingTest {
    /// The tests of counts and spend: the range `lo..=hi` of orders,
    /// lines, units and cents (in that order) that passes all of them,
    /// clipped to 64 bits (where [`Measures`] are), `i64::MIN..=i64::MAX`
    /// for a measure without one. A fixed array, so a candidate costs eight
    /// compares and no loop. (In 128 bits the compares were a tenth of
    /// the dense segments' instructions at 1M.)
    bounds: [(i64, i64); 4],
    /// Some range holds no 64-bit value: nothing passes.
    never: bool,
    /// Some count or spend is tested.
    has_bounds: bool,
    /// The `avg_order_value` tests against `mantissa / 10^scale` as
    /// `(op, 10^scale, 100 · mantissa)` (`cents / (100 · orders)` compares
    /// as `cents · 10^scale` against `100 · mantissa · orders`), when every
    /// threshold is short enough; else empty.
    averages: Vec<(CmpOp, i64, i64)>,
    /// The `avg_order_value` tests.
    ratios: Vec<(Measure, CmpOp, Decimal)>,
    /// The having was empty: at least one kept line.
    any_line: bool,
}

impl HavingTest {
    /// Sets up `having` (the same answers as [`having_holds`]).
    pub(crate) fn new(having: &[(Measure, CmpOp, Decimal)]) -> Self {
        let mut wide = [(i128::MIN, i128::MAX); 4];
        let mut t = Self {
            bounds: [(i64::MIN, i64::MAX); 4],
            never: false,
            has_bounds: false,
            averages: Vec::new(),
            ratios: Vec::new(),
            any_line: having.is_empty(),
        };
        for &(measure, op, x) in having {
            // The measure's integer is in hundredths (cents) for spend:
            // the threshold is scaled by 10^places.
            let (places, slot) = match measure {
                Measure::AvgOrderValue => {
                    t.ratios.push((measure, op, x));
                    continue;
                }
                Measure::Orders => (0, 0),
                Measure::Lines => (0, 1),
                Measure::Units => (0, 2),
                Measure::Spend => (2, 3),
            };
            let (floor, ceil) = x.floor_ceil_scaled(places);
            let (lo, hi) = op.int_range(floor, ceil);
            // Several tests of one measure pass together on the
            // intersection of their ranges (empty when lo > hi).
            let b = &mut wide[slot];
            b.0 = b.0.max(lo.unwrap_or(i128::MIN));
            b.1 = b.1.min(hi.unwrap_or(i128::MAX));
            t.has_bounds = true;
        }
        let (min, max) = (i128::from(i64::MIN), i128::from(i64::MAX));
        for (b, &(lo, hi)) in t.bounds.iter_mut().zip(&wide) {
            let (lo, hi) = (lo.max(min), hi.min(max));
            if lo > hi {
                t.never = true;
            } else {
                // In range: both fit.
                *b = (lo as i64, hi as i64);
            }
        }
        // 10^18 < 2^60 and 100 · 2^56 < 2^63: both factors fit i64.
        let short = |x: &Decimal| x.scale <= 18 && x.mantissa.unsigned_abs() < 1 << 56;
        if t.ratios.iter().all(|(_, _, x)| short(x)) {
            t.averages = t
                .ratios
                .iter()
                .map(|&(_, op, x)| (op, POW10[x.scale as usize] as i64, x.mantissa as i64 * 100))
                .collect();
        }
        t
    }

    /// When the test is only lower bounds (`gt`, `gte`) on orders, lines,
    /// units and spend: the least of each that passes. Over lines without
    /// negative values a customer who passes has reached them part-way
    /// through their orders and lines. `None` for any other test.
    pub(crate) fn floors(&self) -> Option<Floors> {
        if self.any_line || self.never || !self.ratios.is_empty() || !self.has_bounds {
            return None;
        }
        if self.bounds.iter().any(|&(_, hi)| hi != i64::MAX) {
            return None;
        }
        let floor = |slot: usize| self.bounds[slot].0;
        Some(Floors {
            orders: floor(0),
            lines: floor(1),
            units: floor(2),
            cents: floor(3),
        })
    }

    /// Whether measures `m` pass.
    #[inline(always)]
    pub(crate) fn holds(&self, m: &Measures) -> bool {
        if self.any_line {
            return m.lines > 0;
        }
        let within = |v: i64, (lo, hi): (i64, i64)| (v >= lo) & (v <= hi);
        let b = &self.bounds;
        let mut ok = !self.never
            & within(m.orders, b[0])
            & within(m.lines, b[1])
            & within(m.units, b[2])
            & within(m.cents, b[3]);
        if !self.averages.is_empty() {
            let (cents, orders) = (m.cents, m.orders);
            for &(op, p10, m100) in &self.averages {
                // |cents · 10^scale| < 2^123, |100 · mantissa · orders| < 2^126.
                let ord = (i128::from(cents) * i128::from(p10))
                    .cmp(&(i128::from(m100) * i128::from(orders)));
                ok &= (orders > 0) & op.holds(ord);
            }
            return ok;
        }
        ok && (self.ratios.is_empty() || having_holds(&self.ratios, m))
    }
}

/// Compares `n1 / d1` with `n2 / d2` exactly, for `d1, d2 > 0`, without
/// overflow: cross products when they fit, else by continued fractions
/// (integer parts, then the reciprocals of the remainders).
fn cmp_ratio(n1: i128, d1: i128, n2: i128, d2: i128) -> std::cmp::Ordering {
    debug_assert!(d1 > 0 && d2 > 0);
    if let (Some(a), Some(b)) = (n1.checked_mul(d2), n2.checked_mul(d1)) {
        return a.cmp(&b);
    }
    let (q1, q2) = (n1.div_euclid(d1), n2.div_euclid(d2));
    if q1 != q2 {
        return q1.cmp(&q2);
    }
    // a/b against c/d, each in [0, 1).
    let (mut a, mut b) = (n1.rem_euclid(d1) as u128, d1 as u128);
    let (mut c, mut d) = (n2.rem_euclid(d2) as u128, d2 as u128);
    let mut reversed = false;
    loop {
        let flip = |o: std::cmp::Ordering| if reversed { o.reverse() } else { o };
        if a == 0 || c == 0 {
            return flip((a != 0).cmp(&(c != 0)));
        }
        // a/b < c/d exactly when b/a > d/c.
        reversed = !reversed;
        let (q1, q2) = (b / a, d / c);
        if q1 != q2 {
            return if reversed { q2.cmp(&q1) } else { q1.cmp(&q2) };
        }
        (a, b, c, d) = (b % a, a, d % c, c);
    }
}

/// For each of `havings`, the candidates (local customer numbers,
/// ascending) of one chunk whose measures pass it.
pub(crate) fn passing(
    view: &ChunkView,
    keep: &Keep,
    havings: &[&[(Measure, CmpOp, Decimal)]],
    locals: &[usize],
) -> Vec<Vec<usize>> {
    let keep = &keep.for_candidates(view, locals);
    let mut out = vec![Vec::new(); havings.len()];
    let uses =
        |pick: fn(&Measure) -> bool| havings.iter().any(|h| h.iter().any(|(m, _, _)| pick(m)));
    let counts_orders = uses(|m| matches!(m, Measure::Orders | Measure::AvgOrderValue));
    // An empty `having` tests lines > 0. Only the totals some test reads
    // are read (1: read, 0: not).
    let totals = RunTotals {
        lines: i64::from(
            havings.iter().any(|h| h.is_empty()) || uses(|m| matches!(m, Measure::Lines)),
        ),
        units: i64::from(uses(|m| matches!(m, Measure::Units))),
        cents: i64::from(uses(|m| {
            matches!(m, Measure::Spend | Measure::AvgOrderValue)
        })),
    };
    // In a chunk in time order, without order-attribute filters and without
    // an order count, a customer's kept lines are one contiguous range.
    let flat = view.in_time_order() && keep.filters.is_empty() && !counts_orders;
    let attrs = OrderFilters::new(view, keep.filters);
    let need = Need {
        units: totals.units != 0,
        cents: totals.cents != 0,
    };
    let line_sums = keep
        .products
        .map(|(allowed, _)| LineSums::new(view.line_columns(), allowed, need));
    let tests: Vec<HavingTest> = havings.iter().map(|h| HavingTest::new(h)).collect();
    // One test of lower bounds that only grow along a customer's lines
    // (or orders): they are read only until the bounds are reached.
    let floors = match &tests[..] {
        [t] => t.floors(),
        _ => None,
    };
    if let (Some(f), Some(o)) = (floors, out.first_mut()) {
        match &line_sums {
            // Lines in one range: no order count, no negative sums.
            Some(ls) if flat && f.orders == i64::MIN && ls.never_negative(f) => {
                ls.push_reaching(view, keep, locals, f, o);
                return out;
            }
            // Orders kept by their attributes, counted (and their lines),
            // in a chunk in time order (each order its own).
            None if view.in_time_order()
                && !keep.filters.is_empty()
                && f.units == i64::MIN
                && f.cents == i64::MIN =>
            {
                for &c in locals {
                    if orders_reach(view, keep, &attrs, f, c) {
                        o.push(c);
                    }
                }
                return out;
            }
            _ => {}
        }
    }
    if keep.whole && keep.products.is_none() && keep.filters.is_empty() && view.in_time_order() {
        // Every order is kept: each customer's all-time totals, in a loop
        // with no window search (at 1M on one thread, 8 to 25 % faster
        // than the general loop below on 750k candidates).
        for &c in locals {
            let orders = view.order_range(c);
            let mut m = Measures {
                orders: orders.len() as i64,
                ..Measures::default()
            };
            m.add_run(view.run_totals_of(orders, totals));
            for (t, o) in tests.iter().zip(out.iter_mut()) {
                if t.holds(&m) {
                    o.push(c);
                }
            }
        }
        return out;
    }
    for c in view.prefetching(locals, keep.products.is_some()) {
        let m = match (keep.products, &line_sums) {
            (Some(_), Some(ls)) if flat => flat_product_measures(view, keep, ls, c),
            (Some(_), Some(ls)) => product_measures(view, keep, &attrs, ls, counts_orders, c),
            _ => no_product_measures(view, keep, &attrs, totals, c),
        };
        for (t, o) in tests.iter().zip(out.iter_mut()) {
            if t.holds(&m) {
                o.push(c);
            }
        }
    }
    out
}

/// Measures of `local` when every line of a kept order is kept: its
/// orders, and of lines, units and cents those `totals` asks for.
fn no_product_measures(
    view: &ChunkView,
    keep: &Keep,
    attrs: &OrderFilters,
    totals: RunTotals,
    local: usize,
) -> Measures {
    let mut m = Measures::default();
    let sums = totals != RunTotals::default();
    let orders = keep.candidate_orders(view, local);
    if view.in_time_order() && keep.filters.is_empty() {
        m.orders = orders.len() as i64;
        m.add_run(view.run_totals_of(orders, totals));
        return m;
    }
    if view.in_time_order() && !keep.exists_only {
        // Each order of the run is distinct: count and sum without branches.
        for i in orders {
            let take = -i64::from(attrs.ok(view, i));
            m.orders -= take;
            if sums {
                let t = view.run_totals_of(i..i + 1, totals);
                m.lines += t.lines & take;
                m.units += t.units & take;
                m.cents += t.cents & take;
            }
        }
        return m;
    }
    let mut count = OrderCount::default();
    for i in orders {
        if keep.candidate_kept(view, attrs, i) {
            count.add(view, i);
            if sums {
                m.add_run(view.run_totals_of(i..i + 1, totals));
            }
            if keep.exists_only {
                break;
            }
        }
    }
    m.orders = count.n;
    m
}

/// Whether `local`'s kept orders (of a chunk in time order, without a
/// product filter) reach `floors` on orders and lines, counted a few
/// orders at a time and left once they are reached.
fn orders_reach(
    view: &ChunkView,
    keep: &Keep,
    attrs: &OrderFilters,
    floors: Floors,
    local: usize,
) -> bool {
    const LINES: RunTotals = RunTotals {
        lines: 1,
        units: 0,
        cents: 0,
    };
    let run = keep.candidate_orders(view, local);
    let count_lines = floors.lines != i64::MIN;
    let (mut orders, mut lines) = (0i64, 0i64);
    let mut from = run.start;
    loop {
        let to = run.end.min(from + REACH_STEP);
        for i in from..to {
            let take = -i64::from(attrs.ok(view, i));
            orders -= take;
            if count_lines {
                lines += view.run_totals_of(i..i + 1, LINES).lines & take;
            }
        }
        if floors.met(orders, lines, 0, 0) || to == run.end {
            return floors.met(orders, lines, 0, 0);
        }
        from = to;
    }
}

/// The identity of order `i` for counting distinct orders: in a chunk in
/// time order each order is its own; otherwise the parts of one order id
/// are adjacent and share its key.
#[inline(always)]
pub(crate) fn order_id(view: &ChunkView, i: usize) -> i64 {
    if view.in_time_order() {
        i as i64
    } else {
        view.order_key(i)
    }
}

/// Distinct order ids among one customer's kept orders, seen in order
/// (see [`order_id`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct OrderCount {
    /// Distinct orders so far.
    pub n: i64,
    last_key: Option<i64>,
}

impl OrderCount {
    #[inline]
    fn add(&mut self, view: &ChunkView, i: usize) {
        self.add_id(order_id(view, i));
    }

    /// Counts the order with identity `id` (from [`order_id`]).
    #[inline(always)]
    pub(crate) fn add_id(&mut self, id: i64) {
        if self.last_key != Some(id) {
            self.n += 1;
            self.last_key = Some(id);
        }
    }
}

/// Lines, units and cents (not orders) of `local` with a product filter,
/// in a chunk in time order and without order-attribute filters: the
/// window's run of orders owns one contiguous range of lines, read in one
/// loop with no per-order work.
fn flat_product_measures(view: &ChunkView, keep: &Keep, sums: &LineSums, local: usize) -> Measures {
    let lines = keep.candidate_lines(view, local);
    if keep.exists_only {
        let found = sums.any(lines);
        return Measures {
            lines: i64::from(found),
            ..Measures::default()
        };
    }
    let (n, u, c) = sums.of(lines);
    Measures {
        orders: 0,
        lines: n,
        units: u,
        cents: c,
    }
}

/// Measures of `local` with a product filter: the lines of its kept orders
/// whose product is allowed, summed without a branch (the sums fit i64:
/// see `ChunkWriter::encode`). Unless orders are counted, the kept orders
/// of a chunk in time order are summed a stretch of adjacent ones at a
/// time (their lines are contiguous): one call for what would be several.
fn product_measures(
    view: &ChunkView,
    keep: &Keep,
    attrs: &OrderFilters,
    sums: &LineSums,
    counts_orders: bool,
    local: usize,
) -> Measures {
    let mut count = OrderCount::default();
    let (mut lines, mut units, mut cents) = (0i64, 0i64, 0i64);
    let run = keep.candidate_orders(view, local);
    if view.in_time_order() && !counts_orders {
        let mut i = run.start;
        while i < run.end {
            if !attrs.ok(view, i) {
                i += 1;
                continue;
            }
            let mut j = i + 1;
            while j < run.end && attrs.ok(view, j) {
                j += 1;
            }
            let (n, u, c) = sums.of(view.lines_of_orders(i..j));
            lines += n;
            units += u;
            cents += c;
            if keep.exists_only && n > 0 {
                break;
            }
            i = j;
        }
        return Measures {
            orders: 0,
            lines,
            units,
            cents,
        };
    }
    for i in run {
        if !keep.candidate_kept(view, attrs, i) {
            continue;
        }
        let (n, u, c) = sums.of(view.line_range(i));
        if view.in_time_order() && !keep.exists_only {
            // Every order of the run is distinct: count without a branch.
            count.n += i64::from(n > 0);
        } else if n > 0 {
            count.add(view, i);
            if keep.exists_only {
                lines += n;
                break;
            }
        }
        lines += n;
        units += u;
        cents += c;
    }
    Measures {
        orders: count.n,
        lines,
        units,
        cents,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use segdex_index::chunk::ChunkWriter;

    /// One customer with `n` orders whose attribute columns are `attrs`.
    fn chunk(attrs: [Vec<i64>; 4]) -> Vec<u8> {
        let n = attrs[0].len() as i64;
        ChunkWriter {
            cust_start: vec![0, n],
            order_day: (0..n).collect(),
            order_ns: (0..n).collect(),
            order_key: (0..n).collect(),
            order_attr: attrs,
            order_line_start: (0..=n).collect(),
            line_product: vec![0; n as usize],
            line_qty: vec![1; n as usize],
            line_cents: vec![1; n as usize],
        }
        .encode()
        .unwrap()
    }

    fn filter(attr: usize, allowed: &[i64], null_ok: bool) -> AttrFilter {
        let mut a = vec![false; 400];
        for &v in allowed {
            a[v as usize] = true;
        }
        AttrFilter {
            attr,
            allowed: a,
            null_ok,
            sections: Vec::new(),
        }
    }

    /// `n1/d1` against `n2/d2` by cross products: exact for the small
    /// operands it is given.
    fn cross(n1: i128, d1: i128, n2: i128, d2: i128) -> std::cmp::Ordering {
        (n1 * d2).cmp(&(n2 * d1))
    }

    #[test]
    fn ratios_compare_exactly_past_the_cross_products_range() {
        // Small operands against plain cross products, every sign.
        let mut seed = 7u64;
        let mut next = |m: i128| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as i128 % m
        };
        for _ in 0..20_000 {
            let (n1, d1, n2, d2) = (
                next(2001) - 1000,
                next(97) + 1,
                next(2001) - 1000,
                next(97) + 1,
            );
            assert_eq!(
                cmp_ratio(n1, d1, n2, d2),
                cross(n1, d1, n2, d2),
                "{n1}/{d1} {n2}/{d2}"
            );
            // The same ratios scaled far past i128 cross products.
            let (k1, k2) = (10i128.pow(19) + next(1000), 10i128.pow(18) * 3 + next(1000));
            assert_eq!(
                cmp_ratio(n1 * k1, d1 * k1, n2 * k2, d2 * k2),
                cross(n1, d1, n2, d2),
                "{n1}/{d1} {n2}/{d2} times {k1}, {k2}"
            );
        }
        // Equal by construction, and one unit either side of equal.
        let d = 10i128.pow(30);
        for n in [1i128, 170_000_000, 17_000_000_000, -5] {
            let x = n * 10i128.pow(28);
            assert!(cmp_ratio(n, 100, x, d).is_eq());
            assert!(cmp_ratio(n, 100, x + 1, d).is_lt());
            assert!(cmp_ratio(n, 100, x - 1, d).is_gt());
        }
    }

    #[test]
    fn having_tests_answer_as_having_holds_does() {
        let big = 10i128.pow(37);
        let mantissas = [
            -big,
            -20_001,
            -3,
            0,
            1,
            2,
            3,
            199,
            200,
            201,
            20_001,
            200_000_001 * 10i128.pow(28) - 1,
            200_000_001 * 10i128.pow(28),
            200_000_001 * 10i128.pow(28) + 1,
            // Either side of the longest threshold the 64-bit average
            // compare takes.
            (1 << 56) - 1,
            1 << 56,
            // Either side of each end of 64 bits, where the bounds are
            // clipped.
            i128::from(i64::MIN) - 1,
            i128::from(i64::MIN),
            i128::from(i64::MAX),
            i128::from(i64::MAX) + 1,
            big,
        ];
        let measures = [
            Measure::Orders,
            Measure::Lines,
            Measure::Units,
            Measure::Spend,
            Measure::AvgOrderValue,
        ];
        let ops = [CmpOp::Gt, CmpOp::Gte, CmpOp::Lt, CmpOp::Lte, CmpOp::Eq];
        let mut tests = Vec::new();
        for &mantissa in &mantissas {
            for scale in [0, 1, 2, 3, 18, 19, 30] {
                for &measure in &measures {
                    for &op in &ops {
                        tests.push((measure, op, Decimal { mantissa, scale }));
                    }
                }
            }
        }
        // The ends of 64 bits, where the clipped bounds meet the
        // measures' range.
        let values = [
            i64::MIN,
            i64::MIN + 1,
            -301,
            -1,
            0,
            1,
            2,
            3,
            199,
            200,
            201,
            20_001,
            200_000_001,
            i64::MAX - 1,
            i64::MAX,
        ];
        let (mut checked, mut floored) = (0, 0);
        for &cents in &values {
            for &n in &[0i64, 1, 2, 3, 7] {
                // Lines differ from orders, so a test read off the wrong
                // one shows.
                let m = Measures {
                    orders: n,
                    lines: 2 * n + 1,
                    units: cents,
                    cents,
                };
                for (i, one) in tests.iter().enumerate() {
                    // One test, and that test with another beside it.
                    let pair = [*one, tests[(i * 7919) % tests.len()]];
                    for having in [&pair[..1], &pair[..]] {
                        let test = HavingTest::new(having);
                        assert_eq!(
                            test.holds(&m),
                            having_holds(having, &m),
                            "{having:?} at {m:?}"
                        );
                        checked += 1;
                        // Floors, where given, decide as the test does:
                        // lower bounds, and nothing else that binds.
                        if let Some(f) = test.floors() {
                            assert_eq!(
                                f.met(m.orders, m.lines, m.units, m.cents),
                                having_holds(having, &m),
                                "{having:?} at {m:?}"
                            );
                            floored += 1;
                        }
                    }
                }
                assert_eq!(HavingTest::new(&[]).holds(&m), m.lines > 0);
            }
        }
        assert!(checked > 100_000);
        assert!(floored > 10_000, "{floored}");
    }

    #[test]
    fn havings_are_exact_for_large_spend_and_long_thresholds() {
        let dec = |mantissa: i128, scale: u32| Decimal { mantissa, scale };
        let m = Measures {
            orders: 7,
            lines: 5,
            units: 7,
            cents: 200_000_001, // $2,000,000.01: times 10^30 is past i128
        };
        let holds = |measure, op, x| having_holds(&[(measure, op, x)], &m);
        // 2000000.01 with 30 decimal places, and a last digit either side.
        let exact = 200_000_001 * 10i128.pow(28);
        assert!(holds(Measure::Spend, CmpOp::Eq, dec(exact, 30)));
        assert!(holds(Measure::Spend, CmpOp::Gte, dec(exact, 30)));
        assert!(!holds(Measure::Spend, CmpOp::Gt, dec(exact, 30)));
        assert!(holds(Measure::Spend, CmpOp::Lt, dec(exact + 1, 30)));
        assert!(holds(Measure::Spend, CmpOp::Gt, dec(exact - 1, 30)));
        // A threshold whose cents do not fit i128, either sign.
        assert!(holds(Measure::Spend, CmpOp::Lt, dec(10i128.pow(37), 0)));
        assert!(!holds(Measure::Spend, CmpOp::Lt, dec(-(10i128.pow(37)), 0)));
        assert!(holds(
            Measure::AvgOrderValue,
            CmpOp::Lt,
            dec(10i128.pow(37), 0)
        ));
        // avg_order_value: 2000000.01 / 7 = 285714.287142857142… recurring.
        let seventh = 200_000_001 * 10i128.pow(28) / 7; // truncated
        assert!(holds(Measure::AvgOrderValue, CmpOp::Gt, dec(seventh, 30)));
        assert!(holds(
            Measure::AvgOrderValue,
            CmpOp::Lt,
            dec(seventh + 1, 30)
        ));
        assert!(!holds(Measure::AvgOrderValue, CmpOp::Eq, dec(seventh, 30)));
        // Counts against 30 decimal places.
        assert!(holds(
            Measure::Lines,
            CmpOp::Gt,
            dec(5 * 10i128.pow(30) - 1, 30)
        ));
        assert!(!holds(
            Measure::Lines,
            CmpOp::Gt,
            dec(5 * 10i128.pow(30), 30)
        ));
        assert!(holds(Measure::Units, CmpOp::Lte, dec(7, 0)));
        assert!(!holds(Measure::Orders, CmpOp::Lt, dec(7, 0)));
    }

    #[test]
    fn order_filters_agree_with_the_values_on_every_column_width() {
        let n = 600i64;
        // Column 0 is two bytes wide (ids up to 399), column 1 one value
        // for every order (no stored bytes), column 2 one byte with nulls
        // and a base above zero, column 3 one byte.
        let attrs = [
            (0..n).map(|i| i * 7 % 400).collect::<Vec<_>>(),
            vec![3; n as usize],
            (0..n)
                .map(|i| if i % 5 == 0 { NULL_VALUE } else { 10 + i % 9 })
                .collect(),
            (0..n).map(|i| i % 4).collect(),
        ];
        let bytes = chunk(attrs.clone());
        let view = ChunkView::parse(&bytes).unwrap();
        assert_eq!(view.order_attr_column(0).width(), 2);
        assert_eq!(view.order_attr_column(1).width(), 0);
        assert_eq!(view.order_attr_column(2).width(), 1);
        let cases = [
            vec![filter(0, &[7, 14, 399], false)],
            vec![filter(1, &[3], false)],
            vec![filter(1, &[4], true)],
            vec![filter(2, &[11, 17], false)],
            vec![filter(2, &[12], true)],
            vec![filter(2, &[12], true), filter(3, &[0, 1], false)],
            vec![filter(0, &[0, 28, 56], false), filter(1, &[3], false)],
            vec![filter(3, &[2], false), filter(1, &[2], false)],
            vec![],
        ];
        for (k, filters) in cases.iter().enumerate() {
            let of = OrderFilters::new(&view, filters);
            let mut passed = 0;
            for i in 0..n as usize {
                let expect = filters.iter().all(|f| {
                    let v = attrs[f.attr].get(i).copied().unwrap();
                    if v == NULL_VALUE {
                        f.null_ok
                    } else {
                        f.allowed[v as usize]
                    }
                });
                assert_eq!(of.ok(&view, i), expect, "case {k}, order {i}");
                passed += usize::from(expect);
            }
            // Every case but the impossible one keeps some orders.
            assert_eq!(passed == 0, k == 2 || k == 7, "case {k}: {passed} kept");
        }
    }
}
