//! Purchase measures of candidate customers, read from one chunk's line
//! store (see `segdex_index::chunk`).
//!
//! Without a product filter each order's lines, units and cents come from
//! running totals; in a chunk whose orders are in time order the window is
//! one run of orders, so a customer costs a few reads whatever their
//! history. With a product filter the lines of the customer's orders in the
//! window are read.

use crate::lang::{CmpOp, Decimal, Measure};
use crate::line_sums::{allowed_sums, line_allowed};
use segdex_index::chunk::{ChunkView, Clip, NULL_VALUE};
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
    /// The as-of day: orders of that day after `clip` are not kept.
    pub as_of_day: i32,
    /// The as-of instant (ns).
    pub clip: i64,
    /// Only whether a line is kept matters (every `having` is empty): a
    /// customer's first kept line decides.
    pub exists_only: bool,
}

impl Keep<'_> {
    /// Whether order `i` is in the window, not after the as-of instant and
    /// passes the order-attribute filters.
    #[inline]
    fn order_ok(&self, view: &ChunkView, i: usize) -> bool {
        let day = view.order_day(i);
        day >= self.lo
            && day <= self.hi
            && !(day >= self.as_of_day && view.order_ns(i) > self.clip)
            && order_attrs_ok(self.filters, view, i)
    }

    /// Whether candidate order `i` (from [`Self::candidate_orders`]) is
    /// kept: in a chunk in time order the run is already the window's, so
    /// only the order attributes are left to test.
    #[inline(always)]
    pub(crate) fn candidate_kept(&self, view: &ChunkView, i: usize) -> bool {
        if view.in_time_order() {
            order_attrs_ok(self.filters, view, i)
        } else {
            self.order_ok(view, i)
        }
    }

    /// The clip to apply to a run of orders (only the as-of day's orders
    /// can be after it).
    fn run_clip(&self) -> Option<Clip> {
        (self.hi >= self.as_of_day).then_some(Clip {
            day: self.as_of_day,
            ns: self.clip,
        })
    }

    /// The orders of `local` that can be kept: the window's run when the
    /// chunk is in time order, else all of them.
    #[inline]
    pub(crate) fn candidate_orders(&self, view: &ChunkView, local: usize) -> Range<usize> {
        let orders = view.order_range(local);
        if view.in_time_order() && !self.whole {
            view.window_run(orders, self.lo, self.hi, self.run_clip())
        } else {
            orders
        }
    }
}

/// Whether order `i` passes every order-attribute filter of a `where`.
/// Every filter is tested, without branches: whether an order passes is
/// as good as random, and a mispredicted branch costs more than the test.
#[inline(always)]
pub(crate) fn order_attrs_ok(filters: &[AttrFilter], view: &ChunkView, i: usize) -> bool {
    let mut ok = true;
    for f in filters {
        let v = view.order_attr(f.attr, i);
        // NULL_VALUE (-1) is past the end of `allowed` as a usize.
        let allowed = f.allowed.get(v as usize).copied().unwrap_or(false);
        ok &= (allowed as u8 | ((v == NULL_VALUE) & f.null_ok) as u8) != 0;
    }
    ok
}

/// Per-customer measures over the kept lines.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Measures {
    pub orders: i128,
    pub lines: i128,
    pub units: i128,
    pub cents: i128,
}

impl Measures {
    #[inline(always)]
    fn add_run(&mut self, t: segdex_index::chunk::RunTotals) {
        self.lines += t.lines as i128;
        self.units += t.units as i128;
        self.cents += t.cents as i128;
    }
}

/// Whether measures `m` pass `having` (empty: at least one kept line).
pub(crate) fn having_holds(having: &[(Measure, CmpOp, Decimal)], m: &Measures) -> bool {
    if having.is_empty() {
        return m.lines > 0;
    }
    having.iter().all(|&(measure, op, x)| {
        let pow = 10i128.pow(x.scale);
        // Compare lhs/den against x = mantissa / 10^scale, exactly.
        let (lhs, rhs) = match measure {
            Measure::Orders => (m.orders * pow, x.mantissa),
            Measure::Lines => (m.lines * pow, x.mantissa),
            Measure::Units => (m.units * pow, x.mantissa),
            Measure::Spend => (m.cents * pow, x.mantissa * 100),
            Measure::AvgOrderValue => {
                if m.orders == 0 {
                    return false;
                }
                (m.cents * pow, x.mantissa * 100 * m.orders)
            }
        };
        match op {
            CmpOp::Gt => lhs > rhs,
            CmpOp::Gte => lhs >= rhs,
            CmpOp::Lt => lhs < rhs,
            CmpOp::Lte => lhs <= rhs,
            CmpOp::Eq => lhs == rhs,
        }
    })
}

/// For each of `havings`, the candidates (local customer numbers,
/// ascending) of one chunk whose measures pass it.
pub(crate) fn passing(
    view: &ChunkView,
    keep: &Keep,
    havings: &[&[(Measure, CmpOp, Decimal)]],
    locals: &[usize],
) -> Vec<Vec<usize>> {
    let mut out = vec![Vec::new(); havings.len()];
    let uses =
        |pick: fn(&Measure) -> bool| havings.iter().any(|h| h.iter().any(|(m, _, _)| pick(m)));
    let counts_orders = uses(|m| matches!(m, Measure::Orders | Measure::AvgOrderValue));
    // An empty `having` tests lines > 0: only order counts skip the sums.
    let sums = havings.iter().any(|h| h.is_empty()) || uses(|m| !matches!(m, Measure::Orders));
    // In a chunk in time order, without order-attribute filters and without
    // an order count, a customer's kept lines are one contiguous range.
    let flat = view.in_time_order() && keep.filters.is_empty() && !counts_orders;
    for &c in locals {
        let m = match keep.products {
            None => no_product_measures(view, keep, sums, c),
            Some((allowed, _)) if flat => flat_product_measures(view, keep, allowed, c),
            Some((allowed, _)) => product_measures(view, keep, allowed, c),
        };
        for (h, o) in havings.iter().zip(out.iter_mut()) {
            if having_holds(h, &m) {
                o.push(c);
            }
        }
    }
    out
}

/// Measures of `local` when every line of a kept order is kept; without
/// `sums` only the orders are counted.
fn no_product_measures(view: &ChunkView, keep: &Keep, sums: bool, local: usize) -> Measures {
    let mut m = Measures::default();
    let orders = keep.candidate_orders(view, local);
    if view.in_time_order() && keep.filters.is_empty() {
        m.orders = orders.len() as i128;
        m.add_run(view.run_totals(orders));
        return m;
    }
    if view.in_time_order() && !keep.exists_only {
        // Each order of the run is distinct: count and sum without branches.
        for i in orders {
            let take = -i64::from(order_attrs_ok(keep.filters, view, i));
            m.orders -= take as i128;
            if sums {
                let t = view.run_totals(i..i + 1);
                m.lines += (t.lines & take) as i128;
                m.units += (t.units & take) as i128;
                m.cents += (t.cents & take) as i128;
            }
        }
        return m;
    }
    let mut count = OrderCount::default();
    for i in orders {
        if keep.candidate_kept(view, i) {
            count.add(view, i);
            if sums {
                m.add_run(view.run_totals(i..i + 1));
            }
            if keep.exists_only {
                break;
            }
        }
    }
    m.orders = count.n;
    m
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
    pub n: i128,
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
fn flat_product_measures(
    view: &ChunkView,
    keep: &Keep,
    allowed: &[bool],
    local: usize,
) -> Measures {
    let run = keep.candidate_orders(view, local);
    let lines = view.lines_of_orders(run);
    let cols = view.line_columns();
    if keep.exists_only {
        let found = lines.into_iter().any(|j| line_allowed(&cols, allowed, j));
        return Measures {
            lines: i128::from(found),
            ..Measures::default()
        };
    }
    let (n, u, c) = allowed_sums(&cols, allowed, lines);
    Measures {
        orders: 0,
        lines: n as i128,
        units: u as i128,
        cents: c as i128,
    }
}

/// Measures of `local` with a product filter: the lines of its kept orders
/// whose product is allowed, summed without a branch (the sums fit i64:
/// see `ChunkWriter::encode`).
fn product_measures(view: &ChunkView, keep: &Keep, allowed: &[bool], local: usize) -> Measures {
    let cols = view.line_columns();
    let mut count = OrderCount::default();
    let (mut lines, mut units, mut cents) = (0i64, 0i64, 0i64);
    for i in keep.candidate_orders(view, local) {
        if !keep.candidate_kept(view, i) {
            continue;
        }
        let (n, u, c) = allowed_sums(&cols, allowed, view.line_range(i));
        if view.in_time_order() && !keep.exists_only {
            // Every order of the run is distinct: count without a branch.
            count.n += i128::from(n > 0);
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
        lines: lines as i128,
        units: units as i128,
        cents: cents as i128,
    }
}
