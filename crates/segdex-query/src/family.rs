//! Families of purchase conditions measured in one walk of the line store.
//!
//! A catalog repeats one form across brands, product types, stores and
//! retailers: "15+ units of brand X", "2+ orders of type Y", "3+ orders at
//! store S", each over the same window. Evaluated one by one, each reads
//! the lines of its own candidates, and a customer who buys from many
//! brands has their lines read once per brand. A family is the purchase
//! conditions with a `having` that differ in one thing only:
//!
//! * [`Varies::Products`]: the products they keep (same window, same
//!   order-attribute keys). One walk over the kept orders adds each line to
//!   every member that keeps its product.
//! * [`Varies::OrderKey`]: the values of one order-attribute key (same
//!   window, products and other keys). One walk adds each kept order to
//!   every member that keeps its value of that key.
//!
//! Then every member's `having`s are tested on its measures.

use crate::Catalog;
use crate::lang::{CmpOp, Condition, Decimal, Measure, Purchase, is_order_key};
use crate::line_sums::{LineSums, Need};
use crate::verify::{AttrFilter, HavingTest, Keep, Measures, OrderCount, OrderFilters, order_id};
use segdex_index::chunk::{ChunkView, NULL_VALUE};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The measure tests of a `having`.
pub(crate) type Having = Vec<(Measure, CmpOp, Decimal)>;

/// One member's tests as the kernels take them: each `having`, and whether
/// it holds at measures 0.
pub(crate) type MemberTests<'h> = Vec<(&'h [(Measure, CmpOp, Decimal)], bool)>;

/// One `where` of a family: a purchase condition with it, and the distinct
/// tests (canonical key of the whole condition, its `having`) made on it.
pub(crate) type Member = (Purchase, Vec<(String, Having)>);

/// What the members of a family differ in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Varies {
    /// The products kept.
    Products,
    /// The values of this order-attribute key.
    OrderKey(String),
}

/// Purchase conditions that differ in one thing only (see [`Varies`]).
#[derive(Debug)]
pub(crate) struct Family {
    /// What the members differ in.
    pub varies: Varies,
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
/// key of each member condition. A condition with a product key joins a
/// family of products that keep the same orders; one that is in no such
/// family joins, of the families of its order keys' values, the one with
/// the most `where`s.
pub(crate) fn families(catalog: &Catalog) -> HashMap<String, Arc<Family>> {
    fn walk<'c>(c: &'c Condition, out: &mut Vec<(&'c Purchase, String)>) {
        match c {
            Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| walk(c, out)),
            Condition::Not(c) => walk(c, out),
            Condition::Purchased(p) if !p.having.is_empty() => out.push((p, c.canonical())),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for s in catalog.segments() {
        walk(&s.rule, &mut found);
    }
    let add = |group: &mut BTreeMap<String, Member>, p: &Purchase, key: &String| {
        let member = group
            .entry(p.lines_key())
            .or_insert_with(|| (p.clone(), Vec::new()));
        if !member.1.iter().any(|(k, _)| k == key) {
            member.1.push((key.clone(), p.having.clone()));
        }
    };
    let mut out = HashMap::new();
    let mut keep = |varies: Varies, groups: BTreeMap<String, BTreeMap<String, Member>>| {
        for members in groups.into_values().filter(|m| m.len() > 1) {
            let family = Arc::new(Family {
                varies: varies.clone(),
                members: members.into_values().collect(),
                claimed: AtomicBool::new(false),
            });
            for (_, tests) in &family.members {
                for (key, _) in tests {
                    out.insert(key.clone(), family.clone());
                }
            }
        }
    };
    let mut by_orders = BTreeMap::new();
    for (p, key) in found.iter().filter(|(p, _)| p.filters_products()) {
        add(by_orders.entry(p.orders_key()).or_default(), p, key);
    }
    let placed: BTreeSet<String> = by_orders
        .values()
        .filter(|m| m.len() > 1)
        .flat_map(|m| m.keys().cloned())
        .collect();
    keep(Varies::Products, by_orders);
    // The rest, by (order key, everything else): the `where`s of each.
    let rest: Vec<&(&Purchase, String)> = found
        .iter()
        .filter(|(p, _)| !placed.contains(&p.lines_key()))
        .collect();
    let order_keys = |p: &Purchase| -> BTreeSet<String> {
        p.filters
            .iter()
            .filter(|f| is_order_key(&f.key))
            .map(|f| f.key.clone())
            .collect()
    };
    let mut wheres: HashMap<(String, String), BTreeSet<String>> = HashMap::new();
    for (p, _) in &rest {
        for k in order_keys(p) {
            let e = wheres
                .entry((k.clone(), p.lines_key_except(&k)))
                .or_default();
            e.insert(p.lines_key());
        }
    }
    let mut by_value: BTreeMap<String, BTreeMap<String, BTreeMap<String, Member>>> =
        BTreeMap::new();
    for (p, key) in rest {
        let best = order_keys(p).into_iter().max_by_key(|k| {
            (
                wheres[&(k.clone(), p.lines_key_except(k))].len(),
                std::cmp::Reverse(k.clone()),
            )
        });
        if let Some(k) = best {
            let group = by_value
                .entry(k.clone())
                .or_default()
                .entry(p.lines_key_except(&k))
                .or_default();
            add(group, p, key);
        }
    }
    for (k, groups) in by_value {
        keep(Varies::OrderKey(k), groups);
    }
    out
}

/// For each product number (or order-attribute value id), the family
/// members that keep it.
#[derive(Debug)]
pub(crate) struct KeptBy {
    starts: Vec<u32>,
    members: Vec<u32>,
}

impl KeptBy {
    /// From each member's list of kept numbers (`0..n_products`).
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

    /// The members that keep `p` (none for a number out of range).
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
    /// Distinct orders (none: the member has nothing of this customer yet).
    orders: OrderCount,
    lines: i64,
    units: i64,
    cents: i64,
}

/// Every member's measures of one customer at a time, and the lists of
/// customers each test picks.
struct Tally {
    /// Each member's tests, set up, with whether each holds at measures 0.
    tests: Vec<Vec<(HavingTest, bool)>>,
    first_test: Vec<usize>,
    running: Vec<Running>,
    touched: Vec<u32>,
    out: Vec<Vec<usize>>,
}

impl Tally {
    fn new(tests: &[MemberTests]) -> Self {
        let mut first_test = Vec::with_capacity(tests.len());
        let mut n = 0;
        for t in tests {
            first_test.push(n);
            n += t.len();
        }
        Self {
            tests: tests
                .iter()
                .map(|t| {
                    t.iter()
                        .map(|&(having, at_zero)| (HavingTest::new(having), at_zero))
                        .collect()
                })
                .collect(),
            first_test,
            running: vec![Running::default(); tests.len()],
            touched: Vec::new(),
            out: vec![Vec::new(); n],
        }
    }

    /// Adds lines of `order` (its [`order_id`]) to member `m`.
    #[inline(always)]
    fn add(&mut self, m: u32, order: i64, (lines, units, cents): (i64, i64, i64)) {
        let r = &mut self.running[m as usize];
        if r.orders.n == 0 {
            self.touched.push(m);
        }
        r.orders.add_id(order);
        r.lines += lines;
        r.units += units;
        r.cents += cents;
    }

    /// Tests customer `c`'s measures and clears them. A test that holds at
    /// measures 0 (`at_zero`) lists the customers that fail it; any other
    /// lists those that pass it.
    fn close(&mut self, c: usize) {
        for &m in &self.touched {
            let r = std::mem::take(&mut self.running[m as usize]);
            let measures = Measures {
                orders: r.orders.n,
                lines: r.lines,
                units: r.units,
                cents: r.cents,
            };
            for (t, (test, at_zero)) in self.tests[m as usize].iter().enumerate() {
                if test.holds(&measures) != *at_zero {
                    self.out[self.first_test[m as usize] + t].push(c);
                }
            }
        }
        self.touched.clear();
    }
}

/// Walks the kept orders of each of one chunk's candidates (local numbers,
/// ascending), giving each order (position, identity) to `add`, then tests
/// the candidate: one list per test, in member order then test order (see
/// [`Tally::close`]). `reads_lines`: whether `add` reads the orders' lines
/// (else their running totals), for [`ChunkView::prefetching`].
fn tally_orders<'t>(
    view: &ChunkView,
    keep: &Keep,
    tests: &'t [MemberTests<'t>],
    locals: &[usize],
    reads_lines: bool,
    mut add: impl FnMut(&mut Tally, usize, i64),
) -> Vec<Vec<usize>> {
    let keep = &keep.for_candidates(view, locals);
    let mut tally = Tally::new(tests);
    let attrs = OrderFilters::new(view, keep.filters);
    for c in view.prefetching(locals, reads_lines) {
        for i in keep.candidate_orders(view, c) {
            if keep.candidate_kept(view, &attrs, i) {
                add(&mut tally, i, order_id(view, i));
            }
        }
        tally.close(c);
    }
    tally.out
}

/// A [`Varies::Products`] family over one chunk's candidates: each kept
/// line is added to the members that keep its product. Lists as
/// [`tally_orders`].
pub(crate) fn member_lists<'t>(
    view: &ChunkView,
    keep: &Keep,
    products: &KeptBy,
    tests: &'t [MemberTests<'t>],
    locals: &[usize],
) -> Vec<Vec<usize>> {
    let cols = view.line_columns();
    tally_orders(view, keep, tests, locals, true, |tally, i, order| {
        for j in view.line_range(i) {
            let line = (1, cols.qty.get(j), cols.cents.get(j));
            for &m in products.of(cols.product.get(j)) {
                tally.add(m, order, line);
            }
        }
    })
}

/// Which members keep each value of one order attribute.
pub(crate) struct ValueMembers {
    /// The order attribute (index into `chunk::ORDER_ATTRS`).
    attr: usize,
    /// By value id, with null after the last.
    members: KeptBy,
    /// The slot of null: the number of values.
    null_slot: i64,
}

impl ValueMembers {
    /// From each member's filter of order attribute `attr` (`n_values`
    /// values), with the filter that keeps what any of them keeps.
    pub fn new(attr: usize, n_values: usize, filters: &[&AttrFilter]) -> (Self, AttrFilter) {
        let mut any = AttrFilter {
            attr,
            allowed: vec![false; n_values],
            null_ok: false,
            sections: Vec::new(),
        };
        let mut lists = Vec::with_capacity(filters.len());
        for f in filters {
            let mut kept: Vec<u32> = (0..n_values as u32)
                .filter(|&v| f.allowed[v as usize])
                .collect();
            if f.null_ok {
                kept.push(n_values as u32);
            }
            lists.push(kept);
            any.allowed
                .iter_mut()
                .zip(&f.allowed)
                .for_each(|(a, &b)| *a |= b);
            any.null_ok |= f.null_ok;
            any.sections.extend(&f.sections);
        }
        any.sections.sort_unstable();
        any.sections.dedup();
        let members = KeptBy::new(
            n_values + 1,
            &lists.iter().map(Vec::as_slice).collect::<Vec<_>>(),
        );
        let values = Self {
            attr,
            members,
            null_slot: n_values as i64,
        };
        (values, any)
    }

    /// How many (value, member) pairs there are (see [`KeptBy::pairs`]).
    pub fn pairs(&self) -> usize {
        self.members.pairs()
    }
}

/// A [`Varies::OrderKey`] family over one chunk's candidates: orders are
/// given to the members that keep their value of the attribute, counting
/// the lines of `keep`'s products. Lists as [`tally_orders`].
pub(crate) fn order_value_lists<'t>(
    view: &ChunkView,
    keep: &Keep,
    values: &ValueMembers,
    tests: &'t [MemberTests<'t>],
    locals: &[usize],
) -> Vec<Vec<usize>> {
    let sums = keep
        .products
        .map(|(allowed, _)| LineSums::new(view.line_columns(), allowed, Need::ALL));
    let reads_lines = keep.products.is_some();
    tally_orders(view, keep, tests, locals, reads_lines, |tally, i, order| {
        let v = view.order_attr(values.attr, i);
        let of = values
            .members
            .of(if v == NULL_VALUE { values.null_slot } else { v });
        if of.is_empty() {
            return;
        }
        let sums = match &sums {
            None => {
                let t = view.run_totals(i..i + 1);
                (t.lines, t.units, t.cents)
            }
            Some(sums) => match sums.of(view.line_range(i)) {
                (0, _, _) => return,
                sums => sums,
            },
        };
        for &m in of {
            tally.add(m, order, sums);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog(rules: Vec<serde_json::Value>) -> Catalog {
        let segments: Vec<_> = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| json!({"code": format!("s{i}"), "rule": rule}))
            .collect();
        Catalog::from_json(&json!(segments)).unwrap()
    }

    fn bought(w: serde_json::Value) -> serde_json::Value {
        json!({"purchased": {"where": w, "window": {"last_days": 30}, "having": {"orders": {"gte": 3}}}})
    }

    #[test]
    fn families_group_by_what_varies() {
        let c = catalog(vec![
            bought(json!({"brand": ["A"], "store": ["1"]})),
            bought(json!({"brand": ["B"], "store": ["1"]})),
            bought(json!({"store": ["1"]})),
            bought(json!({"store": ["2"]})),
            bought(json!({"store": ["3"], "payment_method": ["cash"]})),
            bought(json!({"store": ["4"], "payment_method": ["cash"]})),
            bought(json!({"store": ["4"], "payment_method": ["card"]})),
            bought(json!({"store": ["5"]})),
            bought(json!({"store": ["5"], "payment_method": ["cash"]})),
        ]);
        let fams = families(&c);
        let of = |i: usize| {
            let key = c.segments()[i].rule.canonical();
            fams.get(&key).cloned()
        };
        // Brands at one store: a products family.
        let f0 = of(0).expect("brand family");
        assert_eq!(f0.varies, Varies::Products);
        assert!(Arc::ptr_eq(&f0, &of(1).unwrap()));
        assert_eq!(f0.members.len(), 2);
        // Stores alone: a family of store values.
        let f2 = of(2).expect("store family");
        assert_eq!(f2.varies, Varies::OrderKey("store".into()));
        assert!(Arc::ptr_eq(&f2, &of(3).unwrap()) && Arc::ptr_eq(&f2, &of(7).unwrap()));
        assert_eq!(f2.members.len(), 3);
        // With cash: stores 3, 4 and 5 vary in store, store 4's card and
        // cash in payment method; each condition joins one family, the one
        // with more `where`s.
        let f4 = of(4).expect("cash family");
        assert!(Arc::ptr_eq(&f4, &of(5).unwrap()) && Arc::ptr_eq(&f4, &of(8).unwrap()));
        assert_eq!(f4.varies, Varies::OrderKey("store".into()));
        assert!(of(6).is_none(), "store 4 by card is left alone");
    }
}
