//! Families of purchase conditions measured in one walk of the line store.
//!
//! A catalog repeats one form across brands, product types and retailers:
//! "15+ units of brand X", "2+ orders of type Y", each over the same window.
//! Evaluated one by one, each reads the lines of its own candidates, and a
//! customer who buys from many brands has their lines read once per brand.
//! A family is the purchase conditions with a `having` and a product key
//! that keep the same orders (same window, same order-attribute keys) and
//! differ only in the products they keep: one walk over the candidates'
//! kept orders adds each line to the measures of every member whose
//! products include the line's product, then tests every `having`.

use crate::Catalog;
use crate::lang::{CmpOp, Condition, Decimal, Measure, Purchase};
use crate::verify::{Keep, Measures, having_holds};
use segdex_index::chunk::ChunkView;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The measure tests of a `having`.
pub(crate) type Having = Vec<(Measure, CmpOp, Decimal)>;

/// One `where` of a family: a purchase condition with it, and the distinct
/// tests (canonical key of the whole condition, its `having`) made on it.
pub(crate) type Member = (Purchase, Vec<(String, Having)>);

/// Purchase conditions that keep the same orders and test different lines.
#[derive(Debug)]
pub(crate) struct Family {
    /// Its `where`s, each with its tests.
    pub members: Vec<Member>,
    /// Set once a thread starts measuring the family; others arriving
    /// meanwhile evaluate their own condition rather than wait (a rayon
    /// worker that waits may be the one that holds the work it waits for).
    claimed: AtomicBool,
}

impl Family {
    /// Claims the family for measuring; false when already claimed.
    pub fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }
}

/// The families of `catalog` with two or more `where`s, by the canonical
/// key of each member condition.
pub(crate) fn families(catalog: &Catalog) -> HashMap<String, Arc<Family>> {
    fn walk(c: &Condition, out: &mut BTreeMap<String, BTreeMap<String, Member>>) {
        match c {
            Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| walk(c, out)),
            Condition::Not(c) => walk(c, out),
            Condition::Purchased(p) if !p.having.is_empty() && p.filters_products() => {
                let member = out
                    .entry(p.orders_key())
                    .or_default()
                    .entry(p.lines_key())
                    .or_insert_with(|| (p.clone(), Vec::new()));
                let key = c.canonical();
                if !member.1.iter().any(|(k, _)| *k == key) {
                    member.1.push((key, p.having.clone()));
                }
            }
            _ => {}
        }
    }
    let mut by_orders = BTreeMap::new();
    for s in catalog.segments() {
        walk(&s.rule, &mut by_orders);
    }
    let mut out = HashMap::new();
    for members in by_orders.into_values().filter(|m| m.len() > 1) {
        let family = Arc::new(Family {
            members: members.into_values().collect(),
            claimed: AtomicBool::new(false),
        });
        for (_, tests) in &family.members {
            for (key, _) in tests {
                out.insert(key.clone(), family.clone());
            }
        }
    }
    out
}

/// For each product number, the family members whose `where` keeps it.
#[derive(Debug)]
pub(crate) struct ProductMembers {
    starts: Vec<u32>,
    members: Vec<u32>,
}

impl ProductMembers {
    /// From each member's list of kept product numbers (`n_products` in
    /// all).
    pub fn new(n_products: usize, lists: &[&[u32]]) -> Self {
        let mut counts = vec![0u32; n_products + 1];
        for list in lists {
            for &p in *list {
                counts[p as usize + 1] += 1;
            }
        }
        for i in 1..counts.len() {
            counts[i] += counts[i - 1];
        }
        let mut next = counts.clone();
        let mut members = vec![0u32; counts[n_products] as usize];
        for (m, list) in lists.iter().enumerate() {
            for &p in *list {
                members[next[p as usize] as usize] = m as u32;
                next[p as usize] += 1;
            }
        }
        Self {
            starts: counts,
            members,
        }
    }

    /// How many (product, member) pairs there are: the work a line costs,
    /// summed over products.
    pub fn pairs(&self) -> usize {
        self.members.len()
    }

    /// The members that keep product `p` (none for a product out of range).
    #[inline(always)]
    fn of(&self, p: i64) -> &[u32] {
        let p = p as usize;
        match (self.starts.get(p), self.starts.get(p + 1)) {
            (Some(&s), Some(&e)) => &self.members[s as usize..e as usize],
            _ => &[],
        }
    }
}

/// One member's running measures over a customer's kept lines.
#[derive(Debug, Default, Clone, Copy)]
struct Running {
    orders: i64,
    lines: i64,
    units: i64,
    cents: i64,
    /// The last order that added to this member (valid when `lines > 0`).
    last_order: i64,
}

/// For one chunk's candidates (local numbers, ascending): one list per
/// test, in member order then test order. A test that holds at measures 0
/// (`at_zero`) lists the candidates that fail it; any other lists those
/// that pass it.
pub(crate) fn member_lists(
    view: &ChunkView,
    keep: &Keep,
    products: &ProductMembers,
    tests: &[Vec<(&[(Measure, CmpOp, Decimal)], bool)>],
    locals: &[usize],
) -> Vec<Vec<usize>> {
    let mut first_test = Vec::with_capacity(tests.len());
    let mut n_tests = 0;
    for t in tests {
        first_test.push(n_tests);
        n_tests += t.len();
    }
    let mut out = vec![Vec::new(); n_tests];
    let mut running = vec![Running::default(); tests.len()];
    let mut touched: Vec<u32> = Vec::new();
    let cols = view.line_columns();
    let time_order = view.in_time_order();
    for &c in locals {
        for i in keep.candidate_orders(view, c) {
            if !keep.candidate_kept(view, i) {
                continue;
            }
            // In a chunk in time order each order is its own; otherwise the
            // parts of one order id are adjacent.
            let order = if time_order {
                i as i64
            } else {
                view.order_key(i)
            };
            for j in view.line_range(i) {
                let of = products.of(cols.product.get(j));
                if of.is_empty() {
                    continue;
                }
                let (qty, cents) = (cols.qty.get(j), cols.cents.get(j));
                for &m in of {
                    let r = &mut running[m as usize];
                    if r.lines == 0 {
                        touched.push(m);
                        r.orders = 1;
                        r.last_order = order;
                    } else if r.last_order != order {
                        r.orders += 1;
                        r.last_order = order;
                    }
                    r.lines += 1;
                    r.units += qty;
                    r.cents += cents;
                }
            }
        }
        for &m in &touched {
            let r = std::mem::take(&mut running[m as usize]);
            let measures = Measures {
                orders: r.orders as i128,
                lines: r.lines as i128,
                units: r.units as i128,
                cents: r.cents as i128,
            };
            for (t, &(having, at_zero)) in tests[m as usize].iter().enumerate() {
                if having_holds(having, &measures) != at_zero {
                    out[first_test[m as usize] + t].push(c);
                }
            }
        }
        touched.clear();
    }
    out
}
