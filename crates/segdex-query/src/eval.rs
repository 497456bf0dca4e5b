//! Planning segment rules against an index and evaluating them with bitmap
//! operations, in parallel.
//!
//! * Customer attributes: unions / intersections of value bitmaps,
//!   bit-sliced range compares for numbers, and for dates the union of the
//!   fewest year / month / day buckets that cover the range (or every dated
//!   row less the complement's cover, when that is smaller); `age` becomes a
//!   range of birth dates.
//! * Purchases: a candidate set from time-bucketed purchase bitmaps (per
//!   product all-time and per month, per day for any purchase, per order
//!   attribute value) that contains every customer with a kept line. When
//!   the buckets answer the condition exactly (no `having`, no order
//!   attribute, whole months, no split day) the candidates are the answer;
//!   otherwise each candidate's lines are checked in the customer-sorted
//!   line store, chunk by chunk in parallel. Customers outside the
//!   candidates have every measure 0, which decides them at once.
//! * Families (see `crate::family`): in a batch, purchase conditions with
//!   a `having` that differ only in the products kept, or only in one order
//!   key's values (the same template over many brands or stores), are
//!   measured together in one walk over the union of their candidates.

use crate::family::{self, Family, KeptBy};
use crate::lang::{
    AttrTest, CmpOp, Condition, Decimal, Measure, Purchase, SegmentError, Window, float_threshold,
    scaled_floor_ceil,
};
use crate::verify::{self, AttrFilter, Keep, Measures, having_holds};
use crate::window::{AsOf, DayRange, anniversary_slots, born_by, days};
use crate::{Catalog, QueryError};
use rayon::prelude::*;
use segdex_bitmap::{Bitmap, Bsi, union_all};
use segdex_index::model::{
    BsiMeta, DateSections, Field, FieldKind, IdKind, NumEncoding, float_key,
};
use segdex_index::time::{date_of, month_days, month_of};
use segdex_index::{CHUNK_ROWS, ExternalId, Index};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A rule resolved against an index, ready to evaluate.
#[derive(Debug)]
enum Node<'i> {
    All(Vec<Node<'i>>),
    Any(Vec<Node<'i>>),
    Not(Box<Node<'i>>),
    Rows(Bitmap),
    Segment(String),
    Union(Vec<u32>),
    Intersection(Vec<u32>),
    Range(&'i BsiMeta, Option<u64>, Option<u64>),
    /// Rows of a date attribute with a value in `lo..=hi` (day numbers),
    /// from its year / month / day buckets.
    Dates(&'i DateSections, i32, i32),
    /// The first section's rows less the union of the others'.
    Except(u32, Vec<u32>),
    Purchase(Box<PurchasePlan>),
    /// A sub-condition that occurs more than once in the catalog: computed
    /// once, then shared.
    Shared(String, Box<Node<'i>>),
}

#[derive(Debug)]
struct PurchasePlan {
    /// Allowed products (None = every product), and their list.
    products: Option<(Vec<bool>, Vec<u32>)>,
    filters: Vec<AttrFilter>,
    window: Window,
    having: Vec<(Measure, CmpOp, Decimal)>,
}

/// Evaluates the segments of a catalog against an index as of one instant.
/// Results of referenced segments are computed once and shared.
pub struct Evaluator<'a> {
    index: &'a Index,
    catalog: &'a Catalog,
    as_of: AsOf,
    memo: Mutex<HashMap<String, Arc<Bitmap>>>,
    /// Each segment's plan, made once (by `check` or the first `evaluate`).
    plans: Mutex<HashMap<String, Arc<Node<'a>>>>,
    /// Canonical keys of sub-conditions that occur more than once.
    shared_keys: HashSet<String>,
    shared: Mutex<HashMap<String, Arc<Bitmap>>>,
    /// Purchase conditions that keep the same lines and test different
    /// `having`s, by canonical key: each group's line store is read once
    /// for all its tests.
    having_groups: HashMap<String, Arc<HavingGroup>>,
    /// Purchase conditions that keep the same orders and different
    /// products, by canonical key: one walk of the line store measures a
    /// whole family.
    families: HashMap<String, Arc<Family>>,
    hits: AtomicU64,
    misses: AtomicU64,
    family_walks: AtomicU64,
    /// See [`Evaluator::with_family_min_share`].
    family_min_share: u64,
}

/// How much sharing of identical sub-conditions saved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SharingStats {
    /// Distinct sub-conditions that occur more than once in the catalog.
    pub shared_conditions: u64,
    /// Evaluations answered from an earlier result.
    pub hits: u64,
    /// Shared sub-conditions computed.
    pub computed: u64,
    /// Families of purchase conditions (alike but for the products kept, or
    /// for one order key's values) measured in one walk of the line store
    /// each.
    pub family_walks: u64,
}

/// Canonical keys and `having`s of purchase conditions with the same
/// `where` and window.
type HavingGroup = Vec<(String, Vec<(Measure, CmpOp, Decimal)>)>;

/// Purchase conditions with a `having`, grouped by the lines they keep;
/// only groups of two or more distinct tests.
fn having_groups(catalog: &Catalog) -> HashMap<String, Arc<HavingGroup>> {
    fn walk(c: &Condition, groups: &mut HashMap<String, HavingGroup>) {
        match c {
            Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| walk(c, groups)),
            Condition::Not(c) => walk(c, groups),
            Condition::Purchased(p) if !p.having.is_empty() => {
                let g = groups.entry(p.lines_key()).or_default();
                let key = c.canonical();
                if !g.iter().any(|(k, _)| *k == key) {
                    g.push((key, p.having.clone()));
                }
            }
            _ => {}
        }
    }
    let mut groups = HashMap::new();
    for s in catalog.segments() {
        walk(&s.rule, &mut groups);
    }
    let mut out = HashMap::new();
    for g in groups.into_values().filter(|g| g.len() > 1) {
        let g = Arc::new(g);
        for (k, _) in g.iter() {
            out.insert(k.clone(), g.clone());
        }
    }
    out
}

fn count_keys(c: &Condition, counts: &mut HashMap<String, u32>) {
    *counts.entry(c.canonical()).or_default() += 1;
    match c {
        Condition::All(v) | Condition::Any(v) => v.iter().for_each(|c| count_keys(c, counts)),
        Condition::Not(c) => count_keys(c, counts),
        _ => {}
    }
}

type Res<T> = Result<T, SegmentError>;

/// The measure tests of a `having`.
type Having = [(Measure, CmpOp, Decimal)];

impl<'a> Evaluator<'a> {
    /// An evaluator of `catalog` over `index` as of `as_of`.
    /// Identical sub-conditions (same canonical form) across the catalog's
    /// segments are computed once; see [`Evaluator::without_sharing`].
    pub fn new(index: &'a Index, catalog: &'a Catalog, as_of: AsOf) -> Self {
        let mut counts = HashMap::new();
        for s in catalog.segments() {
            count_keys(&s.rule, &mut counts);
        }
        let having_groups = having_groups(catalog);
        let families = family::families(catalog);
        let shared_keys = counts
            .into_iter()
            .filter(|(k, n)| {
                (*n > 1 && !k.starts_with("segment:"))
                    || having_groups.contains_key(k)
                    || families.contains_key(k)
            })
            .map(|(k, _)| k)
            .collect();
        Self {
            index,
            catalog,
            as_of,
            memo: Mutex::new(HashMap::new()),
            plans: Mutex::new(HashMap::new()),
            shared_keys,
            shared: Mutex::new(HashMap::new()),
            having_groups,
            families,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            family_walks: AtomicU64::new(0),
            family_min_share: FAMILY_MIN_SHARE,
        }
    }

    /// Sets when a family of product conditions is measured in one walk:
    /// when its members' candidates, added up, are at least `share` times
    /// the walk's candidates (default 4; 0 walks every family). The
    /// answers are the same either way; tests use 0 to exercise the walk
    /// on small data.
    pub fn with_family_min_share(mut self, share: u64) -> Self {
        self.family_min_share = share;
        self
    }

    /// Turns sharing of identical sub-conditions off (to measure it).
    pub fn without_sharing(mut self) -> Self {
        self.shared_keys.clear();
        self.having_groups.clear();
        self.families.clear();
        self.plans.lock().expect("plans lock").clear();
        self
    }

    /// What sharing saved so far.
    pub fn sharing_stats(&self) -> SharingStats {
        SharingStats {
            shared_conditions: self.shared_keys.len() as u64,
            hits: self.hits.load(Ordering::Relaxed),
            computed: self.misses.load(Ordering::Relaxed),
            family_walks: self.family_walks.load(Ordering::Relaxed),
        }
    }

    /// Fixes the members of segment `code` (a static segment's frozen
    /// members): references to it, and `evaluate(code)`, return them.
    pub fn fix_members(&self, code: &str, members: Arc<Bitmap>) {
        self.memo
            .lock()
            .expect("memo lock")
            .insert(code.to_string(), members);
    }

    /// Forgets the members of segment `code`, for a caller that has used
    /// them and knows no segment still to be evaluated references it: a
    /// recalculation pass keeps memory flat instead of holding every
    /// segment's members to the end. Evaluating `code` again recomputes it.
    pub fn forget(&self, code: &str) {
        self.memo.lock().expect("memo lock").remove(code);
    }

    /// The index this evaluates over.
    pub fn index(&self) -> &'a Index {
        self.index
    }

    /// The as-of of this evaluation.
    pub fn as_of(&self) -> AsOf {
        self.as_of
    }

    /// Checks every segment against the index (attribute names, kinds,
    /// value types); returns every problem found.
    pub fn check(&self) -> Vec<SegmentError> {
        self.catalog
            .segments()
            .iter()
            .filter_map(|s| self.planned(&s.code, &s.rule).err())
            .collect()
    }

    /// The plan of segment `code`, made on first use.
    fn planned(&self, code: &str, rule: &Condition) -> Res<Arc<Node<'a>>> {
        if let Some(p) = self.plans.lock().expect("plans lock").get(code) {
            return Ok(p.clone());
        }
        let node = Arc::new(self.plan(code, rule)?);
        self.plans
            .lock()
            .expect("plans lock")
            .insert(code.to_string(), node.clone());
        Ok(node)
    }

    /// The members of segment `code` as a bitmap of customer rows.
    pub fn evaluate(&self, code: &str) -> Result<Arc<Bitmap>, QueryError> {
        if let Some(b) = self.memo.lock().expect("memo lock").get(code) {
            return Ok(b.clone());
        }
        let seg = self
            .catalog
            .get(code)
            .ok_or_else(|| QueryError::UnknownSegment(code.to_string()))?;
        let node = self
            .planned(code, &seg.rule)
            .map_err(|e| QueryError::Segments(vec![e]))?;
        let result = Arc::new(self.eval(&node, None)?);
        self.memo
            .lock()
            .expect("memo lock")
            .insert(code.to_string(), result.clone());
        Ok(result)
    }

    /// Every customer row.
    fn everyone(&self) -> Bitmap {
        (*self.index.all_rows()).clone()
    }

    fn idx_err(&self, code: &str, path: &str, e: segdex_index::IndexError) -> SegmentError {
        SegmentError {
            code: code.to_string(),
            path: path.to_string(),
            message: e.to_string(),
        }
    }

    // -----------------------------------------------------------------------
    // Planning

    fn plan(&self, code: &str, c: &Condition) -> Res<Node<'a>> {
        let node = self.plan_inner(code, c)?;
        if self.shared_keys.is_empty() {
            return Ok(node);
        }
        let key = c.canonical();
        Ok(if self.shared_keys.contains(&key) {
            Node::Shared(key, Box::new(node))
        } else {
            node
        })
    }

    fn plan_inner(&self, code: &str, c: &Condition) -> Res<Node<'a>> {
        let err = |path: &str, message: String| SegmentError {
            code: code.to_string(),
            path: path.to_string(),
            message,
        };
        Ok(match c {
            Condition::All(v) => {
                Node::All(v.iter().map(|c| self.plan(code, c)).collect::<Res<_>>()?)
            }
            Condition::Any(v) => {
                Node::Any(v.iter().map(|c| self.plan(code, c)).collect::<Res<_>>()?)
            }
            Condition::Not(c) => Node::Not(Box::new(self.plan(code, c)?)),
            Condition::Segment { code: other, path } => {
                if self.catalog.get(other).is_none() {
                    return Err(err(path, format!("references unknown segment `{other}`")));
                }
                Node::Segment(other.clone())
            }
            Condition::Customers { ids, path } => Node::Rows(self.rows_of_ids(code, ids, path)?),
            Condition::Attr { name, test, path } => self.plan_attr(code, name, test, path)?,
            Condition::Purchased(p) => Node::Purchase(Box::new(self.plan_purchase(code, p)?)),
        })
    }

    /// Rows of the listed external ids (ids that do not exist are ignored).
    fn rows_of_ids(&self, code: &str, ids: &[Json], path: &str) -> Res<Bitmap> {
        let err = |path: &str, message: String| SegmentError {
            code: code.to_string(),
            path: path.to_string(),
            message,
        };
        {
            {
                let kind = self.index.customer_id_kind();
                let mut rows = Bitmap::new();
                for (i, id) in ids.iter().enumerate() {
                    let ext = match (kind, id) {
                        (IdKind::Int, Json::Number(n)) if n.is_i64() => {
                            ExternalId::Int(n.as_i64().expect("i64"))
                        }
                        (IdKind::Str, Json::String(s)) => ExternalId::Str(s.clone()),
                        _ => {
                            return Err(err(
                                &format!("{path}[{i}]"),
                                format!(
                                    "customer ids are {} in this index",
                                    if kind == IdKind::Int {
                                        "integers"
                                    } else {
                                        "strings"
                                    }
                                ),
                            ));
                        }
                    };
                    if let Some(r) = self
                        .index
                        .row_of(&ext)
                        .map_err(|e| self.idx_err(code, path, e))?
                    {
                        rows.insert(r);
                    }
                }
                Ok(rows)
            }
        }
    }

    fn customer_field(&self, code: &str, name: &str, path: &str) -> Res<&'a Field> {
        let meta = self.index.meta();
        self.index.customer_field(name).ok_or_else(|| {
            let message = if let Some(u) = meta.customer_unindexed.iter().find(|u| u.name == name) {
                format!(
                    "column `{name}` has type {}, which segdex does not index (strings, lists of strings, numbers, dates, timestamps and booleans are indexed)",
                    u.data_type
                )
            } else if meta.stored_only.iter().any(|s| s == name) {
                format!("`{name}` is stored for export only and cannot be used in rules")
            } else if segdex_ingest::TableKind::Customers.canonical_columns().contains(&name) {
                format!("attribute `{name}` is not in this index: the customers table has no such column")
            } else {
                let mut names: Vec<&str> = meta.customer_fields.iter().map(|f| f.name.as_str()).collect();
                if self.index.customer_field("birth_date").is_some() {
                    names.push("age");
                }
                format!("unknown attribute `{name}` (attributes: {})", names.join(", "))
            };
            SegmentError {
                code: code.to_string(),
                path: format!("{path}.attr"),
                message,
            }
        })
    }

    fn plan_attr(&self, code: &str, name: &str, test: &AttrTest, path: &str) -> Res<Node<'a>> {
        let err = |p: &str, message: String| SegmentError {
            code: code.to_string(),
            path: p.to_string(),
            message,
        };
        let op_name = match test {
            AttrTest::In(_) => "in",
            AttrTest::NotIn(_) => "not_in",
            AttrTest::AllOf(_) => "all_of",
            AttrTest::IsNull(_) => "is_null",
            AttrTest::Compare(_) => "comparison",
            AttrTest::Window(_) => "window",
            AttrTest::Anniversary(_) => "anniversary",
        };
        let misfit = |kind: &str| {
            err(
                path,
                format!("operator `{op_name}` does not fit {kind} attribute `{name}`"),
            )
        };
        if name == "customer_id" {
            // The key is categorical: every customer has one, none is null.
            return Ok(match test {
                AttrTest::In(vs) => {
                    Node::Rows(self.rows_of_ids(code, vs, &format!("{path}.in"))?)
                }
                AttrTest::NotIn(vs) => Node::Not(Box::new(Node::Rows(self.rows_of_ids(
                    code,
                    vs,
                    &format!("{path}.not_in"),
                )?))),
                AttrTest::IsNull(true) => Node::Union(vec![]),
                AttrTest::IsNull(false) => Node::All(vec![]),
                _ => return Err(misfit("categorical")),
            });
        }
        if name == "age" {
            let birth = self.index.customer_field("birth_date").ok_or_else(|| {
                err(
                    &format!("{path}.attr"),
                    "`age` needs a birth_date column, which the customers table lacks".into(),
                )
            })?;
            if birth.kind != FieldKind::Date {
                return Err(err(
                    &format!("{path}.attr"),
                    "`age` needs birth_date to be a date".into(),
                ));
            }
            let dates = self.dates_of(code, path, birth)?;
            let range = |lo: Option<i128>, hi: Option<i128>| -> Node<'a> {
                // age >= lo  <=>  birth <= born_by(D, lo)
                // age <= hi  <=>  birth >  born_by(D, hi + 1)
                let d = self.as_of.day;
                let clampy = |y: i128| y.clamp(-100_000, 100_000) as i64;
                let bhi = lo.and_then(|a| born_by(d, clampy(a)));
                let blo = hi.and_then(|a| born_by(d, clampy(a + 1))).map(|b| b + 1);
                date_node(dates, blo.map(i128::from), bhi.map(i128::from))
            };
            return Ok(match test {
                AttrTest::IsNull(b) => null_node(birth, *b),
                AttrTest::Compare(cmps) => {
                    let (lo, hi) = self.int_bounds(code, path, cmps, 0)?;
                    range(lo, hi)
                }
                AttrTest::In(vs) | AttrTest::NotIn(vs) => {
                    let mut any = Vec::new();
                    for v in vs {
                        let (lo, hi) = self.int_bounds(code, path, &[(CmpOp::Eq, v.clone())], 0)?;
                        any.push(range(lo, hi));
                    }
                    let n = Node::Any(any);
                    if matches!(test, AttrTest::NotIn(_)) {
                        Node::Not(Box::new(n))
                    } else {
                        n
                    }
                }
                _ => return Err(misfit("numeric")),
            });
        }
        let field = self.customer_field(code, name, path)?;
        match field.kind {
            FieldKind::Categorical | FieldKind::Flag | FieldKind::Multi => {
                let kind_name = match field.kind {
                    FieldKind::Flag => "flag",
                    FieldKind::Multi => "multi-valued",
                    _ => "categorical",
                };
                match test {
                    AttrTest::In(vs) => Ok(Node::Union(
                        self.value_sections(code, path, "in", field, vs)?,
                    )),
                    AttrTest::NotIn(vs) => Ok(Node::Not(Box::new(Node::Union(
                        self.value_sections(code, path, "not_in", field, vs)?,
                    )))),
                    AttrTest::AllOf(vs) if field.kind == FieldKind::Multi => {
                        let secs = self.value_sections_all(code, path, field, vs)?;
                        Ok(match secs {
                            Some(s) if s.is_empty() => Node::All(vec![]),
                            Some(s) => Node::Intersection(s),
                            None => Node::Union(vec![]),
                        })
                    }
                    AttrTest::IsNull(b) => Ok(null_node(field, *b)),
                    _ => Err(misfit(kind_name)),
                }
            }
            FieldKind::Date => {
                let dates = self.dates_of(code, path, field)?;
                if let Some(n) =
                    self.key_test(code, path, field, test, |lo, hi| date_node(dates, lo, hi))
                {
                    return n;
                }
                match test {
                    AttrTest::IsNull(b) => Ok(null_node(field, *b)),
                    AttrTest::Window(w) => {
                        let r = days(*w, self.as_of.day);
                        if r.is_empty() {
                            return Ok(Node::Union(vec![]));
                        }
                        Ok(date_node(dates, r.lo.map(i128::from), r.hi.map(i128::from)))
                    }
                    AttrTest::Anniversary(a) => {
                        let slots = anniversary_slots(*a, self.as_of.day);
                        let pick = |want: bool| -> Vec<u32> {
                            slots
                                .iter()
                                .zip(&field.month_day_sections)
                                .filter(|(s, _)| **s == want)
                                .map(|(_, &sec)| sec)
                                .collect()
                        };
                        // Most of the year: every dated row less the rest.
                        let taken = slots.iter().filter(|s| **s).count();
                        Ok(if taken * 2 > slots.len() {
                            Node::Except(dates.exists, pick(false))
                        } else {
                            Node::Union(pick(true))
                        })
                    }
                    _ => Err(misfit("date")),
                }
            }
            FieldKind::Numeric => {
                let bsi = self.bsi_of(code, path, field)?;
                if let Some(n) =
                    self.key_test(code, path, field, test, |lo, hi| range_node(bsi, lo, hi))
                {
                    return n;
                }
                match test {
                    AttrTest::IsNull(b) => Ok(null_node(field, *b)),
                    _ => Err(misfit("numeric")),
                }
            }
        }
    }

    /// A comparison, `in` or `not_in` on a numeric or date field: each
    /// value's key range made a node by `range`. None for other tests.
    fn key_test(
        &self,
        code: &str,
        path: &str,
        field: &Field,
        test: &AttrTest,
        range: impl Fn(Option<i128>, Option<i128>) -> Node<'a>,
    ) -> Option<Res<Node<'a>>> {
        let vs = match test {
            AttrTest::Compare(cmps) => {
                return Some(
                    self.key_bounds(code, path, field, cmps)
                        .map(|(lo, hi)| range(lo, hi)),
                );
            }
            AttrTest::In(vs) | AttrTest::NotIn(vs) => vs,
            _ => return None,
        };
        let mut any = Vec::new();
        for v in vs {
            match self.key_bounds(code, path, field, &[(CmpOp::Eq, v.clone())]) {
                Ok((lo, hi)) => any.push(range(lo, hi)),
                Err(e) => return Some(Err(e)),
            }
        }
        let n = Node::Any(any);
        Some(Ok(if matches!(test, AttrTest::NotIn(_)) {
            Node::Not(Box::new(n))
        } else {
            n
        }))
    }

    /// The bit-sliced index of numeric field `field`.
    fn bsi_of<'f>(&self, code: &str, path: &str, field: &'f Field) -> Res<&'f BsiMeta> {
        field.bsi.as_ref().ok_or_else(|| SegmentError {
            code: code.to_string(),
            path: path.to_string(),
            message: format!("the index has no numbers for `{}`; rebuild it", field.name),
        })
    }

    /// The time buckets of date field `field`.
    fn dates_of(&self, code: &str, path: &str, field: &'a Field) -> Res<&'a DateSections> {
        field.dates.as_ref().ok_or_else(|| SegmentError {
            code: code.to_string(),
            path: path.to_string(),
            message: format!(
                "the index has no day buckets for `{}`; rebuild it",
                field.name
            ),
        })
    }

    /// Integer bounds [lo, hi] of `cmps` on integers scaled by 10^shift.
    fn int_bounds(
        &self,
        code: &str,
        path: &str,
        cmps: &[(CmpOp, Json)],
        shift: u32,
    ) -> Res<(Option<i128>, Option<i128>)> {
        let mut keyed = Vec::with_capacity(cmps.len());
        for (op, v) in cmps {
            let floor_ceil = v
                .as_number()
                .and_then(|n| scaled_floor_ceil(n, shift))
                .ok_or_else(|| SegmentError {
                    code: code.to_string(),
                    path: path.to_string(),
                    message: format!("expected a number, found {v}"),
                })?;
            keyed.push((*op, floor_ceil));
        }
        Ok(key_range(&keyed))
    }

    /// Key bounds of comparisons on a numeric or date field.
    fn key_bounds(
        &self,
        code: &str,
        path: &str,
        field: &Field,
        cmps: &[(CmpOp, Json)],
    ) -> Res<(Option<i128>, Option<i128>)> {
        let bad = |v: &Json, what: &str| SegmentError {
            code: code.to_string(),
            path: path.to_string(),
            message: format!("attribute `{}` compares with {what}, found {v}", field.name),
        };
        if field.kind == FieldKind::Date {
            let mut as_numbers = Vec::new();
            for (op, v) in cmps {
                let day = v
                    .as_str()
                    .and_then(crate::lang::parse_date)
                    .ok_or_else(|| bad(v, "dates YYYY-MM-DD"))?;
                as_numbers.push((*op, Json::from(day)));
            }
            return self.int_bounds(code, path, &as_numbers, 0);
        }
        let bsi = self.bsi_of(code, path, field)?;
        match bsi.encoding {
            NumEncoding::Int { .. } | NumEncoding::Decimal { .. } => {
                if let Some((_, v)) = cmps.iter().find(|(_, v)| !v.is_number()) {
                    return Err(bad(v, "numbers"));
                }
                let shift = match bsi.encoding {
                    NumEncoding::Decimal { scale, .. } => scale.max(0) as u32,
                    _ => 0,
                };
                self.int_bounds(code, path, cmps, shift)
            }
            NumEncoding::Float { .. } => {
                let mut keyed = Vec::with_capacity(cmps.len());
                for (op, v) in cmps {
                    // A stored double stands for its shortest decimal text,
                    // and the threshold is exact: `lt 0.10000000000000001`
                    // holds for 0.1 though both round to the same double.
                    let (x, side) = v
                        .as_number()
                        .and_then(float_threshold)
                        .ok_or_else(|| bad(v, "numbers"))?;
                    let k = float_key(x) as i128;
                    // The keys at or below and at or above the threshold.
                    let floor_ceil = match side {
                        std::cmp::Ordering::Equal => (k, k),
                        std::cmp::Ordering::Less => (k, k + 1),
                        std::cmp::Ordering::Greater => (k - 1, k),
                    };
                    keyed.push((*op, floor_ceil));
                }
                Ok(key_range(&keyed))
            }
        }
    }

    fn typed_value(
        &self,
        code: &str,
        path: &str,
        field: &Field,
        v: &Json,
    ) -> Res<segdex_index::Value> {
        use segdex_index::Value;
        let want = if field.kind == FieldKind::Flag {
            "true or false"
        } else if field.int_values {
            "integers"
        } else {
            "strings"
        };
        let value = match v {
            Json::Bool(b) if field.kind == FieldKind::Flag => Some(Value::Bool(*b)),
            Json::Number(n) if field.int_values && field.kind != FieldKind::Flag => {
                n.as_i64().map(Value::Int)
            }
            Json::String(s) if !field.int_values && field.kind != FieldKind::Flag => {
                Some(Value::Str(s.clone()))
            }
            _ => None,
        };
        value.ok_or_else(|| SegmentError {
            code: code.to_string(),
            path: path.to_string(),
            message: format!("values of `{}` are {want}, found {v}", field.name),
        })
    }

    fn value_sections(
        &self,
        code: &str,
        path: &str,
        op: &str,
        field: &Field,
        vs: &[Json],
    ) -> Res<Vec<u32>> {
        let mut out = Vec::new();
        for (i, v) in vs.iter().enumerate() {
            let value = self.typed_value(code, &format!("{path}.{op}[{i}]"), field, v)?;
            if let Some(k) = field.value_index(&value) {
                out.push(field.value_sections[k]);
            }
        }
        Ok(out)
    }

    /// Sections of every value for `all_of`; None when a value never occurs.
    fn value_sections_all(
        &self,
        code: &str,
        path: &str,
        field: &Field,
        vs: &[Json],
    ) -> Res<Option<Vec<u32>>> {
        let mut out = Vec::new();
        for (i, v) in vs.iter().enumerate() {
            let value = self.typed_value(code, &format!("{path}.all_of[{i}]"), field, v)?;
            match field.value_index(&value) {
                Some(k) => out.push(field.value_sections[k]),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    fn plan_purchase(&self, code: &str, p: &Purchase) -> Res<PurchasePlan> {
        let n_products = self.index.meta().products as usize;
        let mut products: Option<Bitmap> = None;
        let mut filters = Vec::new();
        for f in &p.filters {
            if crate::lang::is_order_key(&f.key) {
                let (attr, field) = self.index.order_attr(&f.key).expect("order keys exist");
                if field.source.is_empty() {
                    return Err(SegmentError {
                        code: code.to_string(),
                        path: f.path.clone(),
                        message: format!(
                            "`{}` needs the {} column, which the input does not have",
                            f.key,
                            segdex_index::chunk::ORDER_ATTR_COLUMNS[attr]
                        ),
                    });
                }
                let mut allowed = vec![false; field.values.len()];
                for (i, v) in f.values.iter().enumerate() {
                    let value = self.typed_value(code, &format!("{}[{i}]", f.path), field, v)?;
                    if let Some(k) = field.value_index(&value) {
                        allowed[k] = true;
                    }
                }
                if f.negate {
                    allowed.iter_mut().for_each(|a| *a = !*a);
                }
                let mut sections: Vec<u32> = allowed
                    .iter()
                    .enumerate()
                    .filter(|(_, a)| **a)
                    .map(|(k, _)| field.value_sections[k])
                    .collect();
                if f.negate {
                    sections.push(field.null_section);
                }
                filters.push(AttrFilter {
                    attr,
                    allowed,
                    null_ok: f.negate,
                    sections,
                });
            } else {
                let field = self.index.product_field(&f.key).ok_or_else(|| {
                    let names: Vec<&str> = self
                        .index
                        .meta()
                        .product_fields
                        .iter()
                        .map(|f| f.name.as_str())
                        .chain(crate::lang::is_order_key_list().map(|k| -> &str { k }))
                        .collect();
                    SegmentError {
                        code: code.to_string(),
                        path: f.path.clone(),
                        message: if let Some(u) = self.index.meta().product_unindexed.iter().find(|u| u.name == f.key) {
                            format!(
                                "product column `{}` has type {}; where keys are categorical (strings, integers, booleans, lists of strings)",
                                f.key, u.data_type
                            )
                        } else if f.key == "name" {
                            "the product name is stored only and cannot be used in rules".into()
                        } else {
                            format!("unknown where key `{}` (keys: {})", f.key, names.join(", "))
                        },
                    }
                })?;
                let path = &f.path;
                let secs = {
                    let mut out = Vec::new();
                    for (i, v) in f.values.iter().enumerate() {
                        let vp = if f.negate {
                            format!("{path}.not_in[{i}]")
                        } else {
                            format!("{path}[{i}]")
                        };
                        let value = self.typed_value(code, &vp, field, v)?;
                        if let Some(k) = field.value_index(&value) {
                            out.push(field.value_sections[k]);
                        }
                    }
                    out
                };
                let maps = secs
                    .iter()
                    .map(|&s| self.index.bitmap(s))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| self.idx_err(code, &f.path, e))?;
                let mut set = union_all(maps.iter().map(|b| b.as_ref()));
                if f.negate {
                    set = segdex_bitmap::all_rows(n_products as u32) - set;
                }
                products = Some(match products {
                    Some(prev) => prev & set,
                    None => set,
                });
            }
        }
        let products = products.map(|set| {
            // Padded with slots never allowed to a power of two above the
            // products: the line loops use the mask itself as their table
            // where a chunk's products start at 0 (`LineSums`).
            let mut mask = vec![false; (n_products + 1).next_power_of_two()];
            for p in set.iter() {
                mask[p as usize] = true;
            }
            (mask, set.iter().collect())
        });
        Ok(PurchasePlan {
            products,
            filters,
            window: p.window,
            having: p.having.clone(),
        })
    }

    // -----------------------------------------------------------------------
    // Evaluation

    /// Evaluates `node`. With a `mask`, the result is exact only inside
    /// the mask (`result ∩ mask = answer ∩ mask`): purchase conditions then
    /// check only the masked candidates' lines.
    fn eval(&self, node: &Node<'a>, mask: Option<&Bitmap>) -> Result<Bitmap, QueryError> {
        let ie = |e: segdex_index::IndexError| QueryError::Index(e);
        Ok(match node {
            Node::All(children) => {
                if children.is_empty() {
                    return Ok(mask.cloned().unwrap_or_else(|| self.everyone()));
                }
                // The conditions that read the line store run only on the
                // customers still in the running.
                let (parts, costly) = self.cheap_then_costly(children, mask)?;
                let mut acc: Option<Bitmap> = mask.cloned();
                for b in parts {
                    acc = Some(match acc {
                        Some(a) => a & b,
                        None => b,
                    });
                }
                for c in costly {
                    if acc.as_ref().is_some_and(|a| a.is_empty()) {
                        break;
                    }
                    let b = self.eval(c, acc.as_ref())?;
                    acc = Some(match acc {
                        Some(a) => a & b,
                        None => b,
                    });
                }
                acc.expect("at least one child")
            }
            Node::Any(children) => {
                // The conditions that read the line store run only on the
                // customers no earlier child has let in.
                let (parts, costly) = self.cheap_then_costly(children, mask)?;
                let mut u = union_all(parts.iter());
                for (i, c) in costly.into_iter().enumerate() {
                    if i == 0 && u.is_empty() {
                        u = self.eval(c, mask)?;
                        continue;
                    }
                    let rest = match mask {
                        Some(m) => m - &u,
                        None => self.everyone() - &u,
                    };
                    if rest.is_empty() {
                        break;
                    }
                    u |= self.eval(c, Some(&rest))?;
                }
                match mask {
                    Some(m) => u & m,
                    None => u,
                }
            }
            Node::Not(c) => {
                let inner = self.eval(c, mask)?;
                match mask {
                    Some(m) => m - inner,
                    None => self.everyone() - inner,
                }
            }
            Node::Rows(b) => b.clone(),
            Node::Segment(other) => (*self.evaluate(other)?).clone(),
            Node::Union(secs) => self.union_of(secs)?,
            Node::Intersection(secs) => {
                let maps = self.load(secs)?;
                let mut it = maps.iter();
                let first = it
                    .next()
                    .map(|b| (**b).clone())
                    .unwrap_or_else(|| self.everyone());
                it.fold(first, |acc, b| acc & b.as_ref())
            }
            Node::Range(meta, lo, hi) => {
                let bsi = Bsi {
                    slices: self.load(&meta.slices)?,
                    exists: self.index.bitmap(meta.exists).map_err(ie)?,
                };
                bsi.range(*lo, *hi)
            }
            Node::Dates(d, lo, hi) => {
                let table = self.index.date_table(d).map_err(ie)?;
                let inside = table.sections(*lo, *hi);
                // A range holding most rows: every dated row less the rest
                // (sizes estimated from the stored bytes, before reading).
                let bytes = |v: &[u32]| v.iter().map(|&s| self.index.section_bytes(s)).sum::<u64>();
                let outside = if inside.len() > 1 {
                    table.sections_outside(*lo, *hi)
                } else {
                    Vec::new()
                };
                if inside.len() > 1 && bytes(&outside) < bytes(&inside) {
                    self.except(d.exists, &outside)?
                } else {
                    self.union_of(&inside)?
                }
            }
            Node::Except(base, secs) => self.except(*base, secs)?,
            Node::Purchase(p) => self.eval_purchase(p, mask).map_err(ie)?,
            Node::Shared(key, inner) => {
                if let Some(b) = self.shared.lock().expect("shared lock").get(key) {
                    self.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((**b).clone());
                }
                // Computed whole (no mask), since others share it; a
                // purchase with sibling `having`s computes theirs too.
                self.misses.fetch_add(1, Ordering::Relaxed);
                if let (Node::Purchase(_), Some(fam)) = (inner.as_ref(), self.families.get(key))
                    && fam.claim()
                    && let Some(results) = self.eval_family(fam)?
                {
                    self.family_walks.fetch_add(1, Ordering::Relaxed);
                    let mut shared = self.shared.lock().expect("shared lock");
                    let mut own = None;
                    for (k, b) in results {
                        if k == *key {
                            own = Some(b.clone());
                        }
                        shared.entry(k).or_insert_with(|| Arc::new(b));
                    }
                    if let Some(own) = own {
                        return Ok(own);
                    }
                }
                if let (Node::Purchase(p), Some(group)) =
                    (inner.as_ref(), self.having_groups.get(key))
                {
                    let havings: Vec<&Having> = group.iter().map(|(_, h)| h.as_slice()).collect();
                    let results = self.eval_purchase_havings(p, &havings, None).map_err(ie)?;
                    let mut shared = self.shared.lock().expect("shared lock");
                    let mut own = None;
                    for ((k, _), b) in group.iter().zip(results) {
                        if k == key {
                            own = Some(b.clone());
                        }
                        shared.entry(k.clone()).or_insert_with(|| Arc::new(b));
                    }
                    return Ok(own.expect("a key is in its own group"));
                }
                let b = self.eval(inner, None)?;
                self.shared
                    .lock()
                    .expect("shared lock")
                    .insert(key.clone(), Arc::new(b.clone()));
                b
            }
        })
    }

    /// The bitmaps of `secs`.
    fn load(&self, secs: &[u32]) -> Result<Vec<Arc<Bitmap>>, QueryError> {
        secs.iter()
            .map(|&s| self.index.bitmap(s))
            .collect::<Result<Vec<_>, _>>()
            .map_err(QueryError::Index)
    }

    /// The union of the bitmaps of `secs`.
    fn union_of(&self, secs: &[u32]) -> Result<Bitmap, QueryError> {
        Ok(union_par(&self.load(secs)?))
    }

    /// The rows of section `base` that are in none of `secs`.
    fn except(&self, base: u32, secs: &[u32]) -> Result<Bitmap, QueryError> {
        let base = self.index.bitmap(base).map_err(QueryError::Index)?;
        Ok(base.as_ref() - self.union_of(secs)?)
    }

    /// The first step of an `all` or `any`: its bitmap-only children
    /// evaluated in turn (microseconds each, less than waking a second
    /// thread costs), and the children that read the line store, cheapest
    /// first, for the caller to run one at a time on the customers still
    /// undecided (each is parallel over chunks).
    fn cheap_then_costly<'n>(
        &self,
        children: &'n [Node<'a>],
        mask: Option<&Bitmap>,
    ) -> Result<(Vec<Bitmap>, Vec<&'n Node<'a>>), QueryError> {
        let (cheap, mut costly): (Vec<&Node>, Vec<&Node>) =
            children.iter().partition(|c| cost(c) == 0);
        costly.sort_by_key(|c| cost(c));
        let parts = cheap
            .iter()
            .map(|c| self.eval(c, mask))
            .collect::<Result<_, _>>()?;
        Ok((parts, costly))
    }

    fn eval_purchase(
        &self,
        p: &PurchasePlan,
        mask: Option<&Bitmap>,
    ) -> Result<Bitmap, segdex_index::IndexError> {
        let mut v = self.eval_purchase_havings(p, &[&p.having], mask)?;
        Ok(v.pop().expect("one having"))
    }

    /// The purchase condition `p` under each of `havings` in place of its
    /// own (same `where` and window): one candidate set and one reading of
    /// the line store for all of them.
    fn eval_purchase_havings(
        &self,
        p: &PurchasePlan,
        havings: &[&Having],
        mask: Option<&Bitmap>,
    ) -> Result<Vec<Bitmap>, segdex_index::IndexError> {
        let d = self.as_of.day;
        let at_zero: Vec<bool> = havings
            .iter()
            .map(|h| having_holds(h, &Measures::default()))
            .collect();
        let none_kept = || {
            at_zero
                .iter()
                .map(|&z| if z { self.everyone() } else { Bitmap::new() })
                .collect::<Vec<_>>()
        };
        let exists_only = havings.iter().all(|h| h.is_empty());
        let Some(span) = self.order_span(p.window) else {
            return Ok(none_kept());
        };
        let Span {
            lo,
            hi,
            first,
            last,
        } = span;
        let covers_all = span.covers_all();
        let split_day = !self.as_of.whole_day && hi == d;
        if let Some((_, list)) = &p.products
            && exists_only
            && p.filters.is_empty()
            && !covers_all
            && let Some(b) =
                self.bought_by_months(p, list, (lo, hi), (first, last), split_day, mask)?
        {
            return Ok(vec![b; havings.len()]);
        }
        let month_aligned = {
            let lo_d = date_of(lo);
            let hi_next = date_of(hi + 1);
            (lo == first || chrono::Datelike::day(&lo_d) == 1)
                && (hi == last || chrono::Datelike::day(&hi_next) == 1)
        };
        let exact = exists_only
            && p.filters.is_empty()
            && !split_day
            && (p.products.is_none() || covers_all || month_aligned);
        let list = p.products.as_ref().map(|(_, list)| list.as_slice());
        let cand = self.purchase_candidates(list, exact, &p.filters, &span, mask)?;
        let passing = if exact {
            vec![cand.clone(); havings.len()]
        } else {
            self.verify(p, havings, &cand, lo, hi)?
        };
        let outside = if at_zero.iter().any(|&z| z) {
            Some(match mask {
                Some(m) => m - &cand,
                None => self.everyone() - &cand,
            })
        } else {
            None
        };
        Ok(passing
            .into_iter()
            .zip(&at_zero)
            .map(|(b, &z)| match (&outside, z) {
                (Some(o), true) => b | o,
                _ => b,
            })
            .collect())
    }

    /// The days of `window` as of the evaluation, clipped to the days
    /// with orders; `None` when no order can be in it.
    fn order_span(&self, window: Window) -> Option<Span> {
        let d = self.as_of.day;
        let range: DayRange = days(window, d).until(d);
        let (first, last) = self.index.meta().purchases.order_days()?;
        let lo = range.lo.map_or(first, |l| l.max(first));
        let hi = range.hi.map_or(last, |h| h.min(last));
        (lo <= hi).then_some(Span {
            lo,
            hi,
            first,
            last,
        })
    }

    /// The customers who may have a kept line (all who do, within `mask`):
    /// buyers of a listed product (of any product when `products` is
    /// `None`) in the span's days, with an allowed value of every
    /// order-attribute filter. `exact`: the buyers must be exact (no lines
    /// are read afterwards).
    fn purchase_candidates(
        &self,
        products: Option<&[u32]>,
        exact: bool,
        filters: &[AttrFilter],
        span: &Span,
        mask: Option<&Bitmap>,
    ) -> Result<Bitmap, segdex_index::IndexError> {
        let index = self.index;
        let meta = &index.meta().purchases;
        let Span {
            lo,
            hi,
            first,
            last,
        } = *span;
        let covers_all = span.covers_all();
        // Customers who ordered on days lo..=hi: the months wholly inside
        // (days without orders count as inside) and the edge days.
        let any_days = |lo: i32, hi: i32| -> Result<Bitmap, segdex_index::IndexError> {
            let first_month = month_of(first);
            let mut maps = Vec::new();
            let mut day = lo;
            while day <= hi {
                let m = month_of(day);
                let (ms, me) = month_days(m);
                if (day == ms || day == first) && (me <= hi || hi == last) {
                    maps.push(index.bitmap(meta.any_month[(m - first_month) as usize])?);
                    day = me + 1;
                } else {
                    for d in day..=me.min(hi) {
                        maps.push(index.bitmap(meta.any_day[(d - first) as usize])?);
                    }
                    day = me.min(hi) + 1;
                }
            }
            Ok(union_par(&maps))
        };
        // When the lines are read anyway and most products are allowed (a
        // `not_in`), the buyers of any product in the window are a superset
        // of the candidates that costs one bitmap (or the window's days),
        // not a union over thousands of products.
        let most_products =
            products.is_some_and(|list| !exact && list.len() * 2 > index.meta().products as usize);
        let mut cand = match products {
            Some(list) if !most_products => {
                let (m_lo, m_hi) = (month_of(lo), month_of(hi));
                let mut maps = Vec::new();
                for &prod in list {
                    if covers_all {
                        maps.push(index.product_all_time(prod)?);
                    } else {
                        for &(m, s) in index.product_months(prod)? {
                            if (m_lo..=m_hi).contains(&m) {
                                maps.push(index.bitmap(s)?);
                            }
                        }
                    }
                }
                let mut c = union_par(&maps);
                if !covers_all && hi - lo < 92 {
                    c &= any_days(lo, hi)?;
                }
                c
            }
            _ if covers_all => (*index.bitmap(meta.any_all_time)?).clone(),
            _ => any_days(lo, hi)?,
        };
        if let Some(m) = mask {
            cand &= m;
        }
        if let Some(allowed) = self.filter_customers(filters)? {
            cand &= allowed;
        }
        Ok(cand)
    }

    /// The customers with an allowed value of every order-attribute filter
    /// (`None` when there is no filter).
    fn filter_customers(
        &self,
        filters: &[AttrFilter],
    ) -> Result<Option<Bitmap>, segdex_index::IndexError> {
        let mut out: Option<Bitmap> = None;
        for f in filters {
            let maps = f
                .sections
                .iter()
                .map(|&s| self.index.bitmap(s))
                .collect::<Result<Vec<_>, _>>()?;
            let allowed = union_par(&maps);
            out = Some(match out {
                Some(o) => o & allowed,
                None => allowed,
            });
        }
        Ok(out)
    }

    /// Whether each customer bought an allowed product in days `lo..=hi`
    /// (no `having`, no order attribute), answered by months: the months
    /// wholly inside the window are unions of product-month bitmaps, and
    /// only the customers who bought in the edge months and in none of the
    /// inner ones have the edge days of their lines checked. `None` when
    /// no month is wholly inside (the caller checks every candidate).
    #[allow(clippy::too_many_arguments)]
    fn bought_by_months(
        &self,
        p: &PurchasePlan,
        products: &[u32],
        (lo, hi): (i32, i32),
        (first, last): (i32, i32),
        split_day: bool,
        mask: Option<&Bitmap>,
    ) -> Result<Option<Bitmap>, segdex_index::IndexError> {
        let index = self.index;
        let any_day = &index.meta().purchases.any_day;
        let (m_lo, m_hi) = (month_of(lo), month_of(hi));
        // A month is inside when the window holds every day of it that can
        // have lines: none before the data's first day or after its last,
        // and the as-of day is partly outside when it is split.
        let inside = |m: i32| {
            let (ms, me) = month_days(m);
            (ms >= lo || lo == first)
                && ((me <= hi && !(split_day && me == hi)) || (hi == last && !split_day))
        };
        if !(m_lo..=m_hi).any(inside) {
            return Ok(None);
        }
        let mut inner = Vec::new();
        let mut edges: Vec<(i32, Vec<Arc<Bitmap>>)> = Vec::new();
        for &prod in products {
            for &(m, s) in index.product_months(prod)? {
                if !(m_lo..=m_hi).contains(&m) {
                    continue;
                }
                let b = index.bitmap(s)?;
                if inside(m) {
                    inner.push(b);
                } else {
                    match edges.iter_mut().find(|(e, _)| *e == m) {
                        Some((_, v)) => v.push(b),
                        None => edges.push((m, vec![b])),
                    }
                }
            }
        }
        let mut bought = union_par(&inner);
        if let Some(m) = mask {
            bought &= m;
        }
        for (m, maps) in edges {
            let (ms, me) = month_days(m);
            let (e_lo, e_hi) = (lo.max(ms), hi.min(me));
            let days = (e_lo..=e_hi)
                .map(|day| index.bitmap(any_day[(day - first) as usize]))
                .collect::<Result<Vec<_>, _>>()?;
            let mut cand = union_par(&maps);
            cand &= union_par(&days);
            cand -= &bought;
            if let Some(mk) = mask {
                cand &= mk;
            }
            if !cand.is_empty() {
                let found = self.verify(p, &[&[]], &cand, e_lo, e_hi)?;
                bought |= &found[0];
            }
        }
        Ok(Some(bought))
    }

    /// Checks each candidate's lines in the line store, chunk by chunk in
    /// parallel; returns, for each of `havings`, those whose measures pass
    /// it.
    fn verify(
        &self,
        p: &PurchasePlan,
        havings: &[&Having],
        cand: &Bitmap,
        lo: i32,
        hi: i32,
    ) -> Result<Vec<Bitmap>, segdex_index::IndexError> {
        let exists_only = havings.iter().all(|h| h.is_empty());
        let keep = self.keep(p.products.as_ref(), &p.filters, lo, hi, exists_only);
        self.chunk_lists(cand, havings.len(), |view, locals| {
            verify::passing(view, &keep, havings, locals)
        })
    }

    /// What keeps an order and a line of days `lo..=hi` as of the
    /// evaluation.
    fn keep<'p>(
        &self,
        products: Option<&'p (Vec<bool>, Vec<u32>)>,
        filters: &'p [AttrFilter],
        lo: i32,
        hi: i32,
        exists_only: bool,
    ) -> Keep<'p> {
        // Every order is in the window, and the as-of clip cuts nothing
        // when the as-of is a day's end or the window ends before its day.
        let whole = self
            .index
            .meta()
            .purchases
            .order_days()
            .is_some_and(|(first_day, last_day)| lo <= first_day && hi >= last_day)
            && (hi < self.as_of.day || self.as_of.whole_day);
        Keep {
            products,
            filters,
            lo,
            hi,
            whole,
            clip: self.as_of.clip(),
            exists_only,
            compared: None,
        }
    }

    /// Runs `check` on the candidates of each chunk (local numbers,
    /// ascending, in blocks of at most [`CHECK_BLOCK`]), in parallel tasks
    /// of a chunk or, with few chunks, of a quarter chunk (see
    /// [`CHUNKS_PER_THREAD`]); `check` returns `n`
    /// lists of local numbers, gathered here into `n` bitmaps of rows.
    /// Blocks keep the lists small and reused: a chunk's whole candidate
    /// list would be a fresh allocation of up to half a megabyte per chunk
    /// and evaluation, paid in page faults.
    fn chunk_lists(
        &self,
        cand: &Bitmap,
        n: usize,
        check: impl Fn(&segdex_index::chunk::ChunkView, &[usize]) -> Vec<Vec<usize>> + Sync,
    ) -> Result<Vec<Bitmap>, segdex_index::IndexError> {
        let (Some(first), Some(last)) = (cand.min(), cand.max()) else {
            return Ok(vec![Bitmap::new(); n]);
        };
        // Quarter chunks only when there are few chunks a thread: more
        // tasks cost the dense loops a few percent (at 10M, 153 chunks).
        let chunks = (last / CHUNK_ROWS - first / CHUNK_ROWS + 1) as usize;
        let task_rows = if chunks < CHUNKS_PER_THREAD * rayon::current_num_threads() {
            CHUNK_ROWS / 4
        } else {
            CHUNK_ROWS
        };
        // Each task's candidates are read, checked and turned back into a
        // bitmap of its rows; a chunk's quarters fill parts of one
        // container each, which the union below merges.
        let parts = (first / task_rows..=last / task_rows)
            .into_par_iter()
            .map(|t| -> Result<Vec<Bitmap>, segdex_index::IndexError> {
                let start = t * task_rows;
                let k = start / CHUNK_ROWS;
                // Local numbers count from the chunk's first row.
                let base = k * CHUNK_ROWS;
                let mut rows = cand.range(start..start.saturating_add(task_rows));
                // Candidates are read a block at a time (roaring's
                // `next_many`), and each answer is set in a bit array of
                // the task's rows that becomes one container (or part of
                // one) at the end: neither costs a call per customer.
                let mut buf = vec![0u32; CHECK_BLOCK];
                let mut got = rows.next_many(&mut buf).len();
                if got == 0 {
                    return Ok(vec![Bitmap::new(); n]);
                }
                let view = self.index.chunk(k as usize)?;
                let skip = (start - base) as usize;
                let mut bits = vec![vec![0u8; task_rows as usize / 8]; n];
                let mut block = Vec::with_capacity(CHECK_BLOCK);
                while got > 0 {
                    block.clear();
                    block.extend(buf[..got].iter().map(|&r| (r - base) as usize));
                    for (b, list) in bits.iter_mut().zip(check(&view, &block)) {
                        for c in list {
                            let c = c - skip;
                            b[c / 8] |= 1 << (c % 8);
                        }
                    }
                    got = rows.next_many(&mut buf).len();
                }
                Ok(bits
                    .iter()
                    .map(|b| Bitmap::from_lsb0_bytes(start, b))
                    .collect())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut out = vec![Bitmap::new(); n];
        for part in parts {
            for (o, b) in out.iter_mut().zip(part) {
                *o |= b;
            }
        }
        Ok(out)
    }

    /// Every test of `fam` (canonical key and members), from one walk of
    /// the line store over the customers who may have a kept line of any of
    /// its `where`s. `None` when the walk would cost more than measuring
    /// the members one by one (lines or orders kept by many members at
    /// once).
    fn eval_family(&self, fam: &Family) -> Result<Option<Vec<(String, Bitmap)>>, QueryError> {
        // A `where` that cannot be planned is left to its own evaluation,
        // which reports the problem.
        let plans: Vec<(PurchasePlan, &[(String, family::Having)])> = fam
            .members
            .iter()
            .filter_map(|(p, tests)| Some((self.plan_purchase("", p).ok()?, tests.as_slice())))
            .collect();
        let Some((head, _)) = plans.first() else {
            return Ok(None);
        };
        let tests: Vec<Vec<(&Having, bool)>> = plans
            .iter()
            .map(|(_, tests)| {
                tests
                    .iter()
                    .map(|(_, h)| (h.as_slice(), having_holds(h, &Measures::default())))
                    .collect()
            })
            .collect();
        let keys = plans
            .iter()
            .flat_map(|(_, tests)| tests.iter().map(|(k, _)| k.clone()));
        let at_zero: Vec<bool> = tests.iter().flatten().map(|&(_, z)| z).collect();
        let span = self.order_span(head.window);
        let lists = match (&fam.varies, span) {
            (_, None) => None,
            (family::Varies::Products, Some(span)) => {
                let n_products = self.index.meta().products as usize;
                let lists: Vec<&[u32]> = plans
                    .iter()
                    .map(|(p, _)| p.products.as_ref().map_or(&[][..], |(_, l)| l.as_slice()))
                    .collect();
                let products = KeptBy::new(n_products, &lists);
                if products.pairs() > 2 * n_products.max(1) {
                    return Ok(None);
                }
                // The walk reads each candidate's lines once for every
                // member; one by one, a customer's lines are read once per
                // member they may pass, with early stops and masks the
                // walk lacks. The walk pays only when a candidate is one
                // of several members' on average.
                // The filters are the same for every member: applied once.
                let allowed = self.filter_customers(&head.filters)?;
                let mut cand = Bitmap::new();
                let mut member_candidates = 0u64;
                for list in &lists {
                    let c = self.purchase_candidates(Some(list), false, &[], &span, None)?;
                    member_candidates += match &allowed {
                        Some(a) => c.intersection_len(a),
                        None => c.len(),
                    };
                    cand |= c;
                }
                if let Some(a) = &allowed {
                    cand &= a;
                }
                if member_candidates < self.family_min_share.saturating_mul(cand.len()) {
                    return Ok(None);
                }
                let keep = self.keep(None, &head.filters, span.lo, span.hi, false);
                Some(self.chunk_lists(&cand, at_zero.len(), |view, locals| {
                    family::member_lists(view, &keep, &products, &tests, locals)
                })?)
            }
            (family::Varies::OrderKey(key), Some(span)) => {
                let Some((attr, field)) = self.index.order_attr(key) else {
                    return Ok(None);
                };
                // Each member's filter of `attr`; the other filters are the
                // same in every member.
                let mut of_attr = Vec::with_capacity(plans.len());
                for (p, _) in &plans {
                    let mut fs = p.filters.iter().filter(|f| f.attr == attr);
                    let (Some(f), None) = (fs.next(), fs.next()) else {
                        return Ok(None);
                    };
                    of_attr.push(f);
                }
                let (values, any) = family::ValueMembers::new(attr, field.values.len(), &of_attr);
                if values.pairs() > 2 * (field.values.len() + 1) {
                    return Ok(None);
                }
                let others: Vec<AttrFilter> = head
                    .filters
                    .iter()
                    .filter(|f| f.attr != attr)
                    .cloned()
                    .collect();
                let mut with_any = others.clone();
                with_any.push(any);
                let list = head.products.as_ref().map(|(_, l)| l.as_slice());
                let cand = self.purchase_candidates(list, false, &with_any, &span, None)?;
                let keep = self.keep(head.products.as_ref(), &others, span.lo, span.hi, false);
                Some(self.chunk_lists(&cand, at_zero.len(), |view, locals| {
                    family::order_value_lists(view, &keep, &values, &tests, locals)
                })?)
            }
        };
        // A test that holds at 0 listed the candidates that fail it.
        let lists = lists.unwrap_or_else(|| vec![Bitmap::new(); at_zero.len()]);
        Ok(Some(
            keys.zip(lists.into_iter().zip(at_zero))
                .map(|(k, (b, z))| (k, if z { self.everyone() - b } else { b }))
                .collect(),
        ))
    }
}

/// A family of products is measured in one walk only when its members'
/// candidates add up to this many times the candidates of the walk: the
/// walk costs several times a member's own line loop per line (at 1M, the
/// suite's four all-time product conditions, 3.1 members a candidate,
/// took 186 ms as a walk and 73 ms one by one), and the recalculation
/// bench's brand family (21 members, 8.1 a candidate) still walks.
const FAMILY_MIN_SHARE: u64 = 4;

/// Below this many bitmaps a union runs on one thread (see [`union_par`]).
const UNION_SPLIT: usize = 64;

/// The union of `maps`, one part per thread (roaring's many-way union of
/// each part, then one OR of the parts): a window's hundreds of day
/// bitmaps, or a product type's hundreds of product-month bitmaps, are
/// otherwise the one part of a purchase condition that runs on one core.
fn union_par<B: AsRef<Bitmap> + Sync>(maps: &[B]) -> Bitmap {
    let parts = rayon::current_num_threads().min(maps.len() / UNION_SPLIT);
    if parts <= 1 {
        return union_all(maps.iter().map(|b| b.as_ref()));
    }
    maps.par_chunks(maps.len().div_ceil(parts))
        .map(|part| union_all(part.iter().map(|b| b.as_ref())))
        .reduce(Bitmap::new, |mut a, b| {
            a |= b;
            a
        })
}

/// The most candidates of a chunk checked at once (see
/// [`Evaluator::chunk_lists`]).
const CHECK_BLOCK: usize = 4096;

/// Below this many chunks a thread, [`Evaluator::chunk_lists`] checks
/// quarter chunks in parallel, not whole ones, so that two threads share 16
/// chunks (1M customers) evenly: with a task a chunk, the suite on two
/// threads took 1 / 1.84 of its time on one, for the same CPU time (a
/// thread sat idle at the end).
const CHUNKS_PER_THREAD: usize = 16;

/// The days a purchase window keeps, clipped to the days with orders.
#[derive(Debug, Clone, Copy)]
struct Span {
    /// First day kept.
    lo: i32,
    /// Last day kept.
    hi: i32,
    /// First day with orders.
    first: i32,
    /// Last day with orders.
    last: i32,
}

impl Span {
    /// Whether every day with orders is kept.
    fn covers_all(&self) -> bool {
        self.lo == self.first && self.hi == self.last
    }
}

/// How much reading of the line store a node may need: 0 for bitmap-only
/// nodes, more for purchase conditions (those with `having` or order
/// attribute filters most). Orders the children of `all`.
fn cost(node: &Node<'_>) -> u8 {
    match node {
        Node::Purchase(p) => 1 + (!p.having.is_empty()) as u8 + (!p.filters.is_empty()) as u8,
        Node::All(v) | Node::Any(v) => v.iter().map(cost).max().unwrap_or(0),
        Node::Not(c) | Node::Shared(_, c) => cost(c),
        Node::Segment(_) => 1,
        _ => 0,
    }
}

fn null_node<'i>(field: &Field, is_null: bool) -> Node<'i> {
    let n = Node::Union(vec![field.null_section]);
    if is_null { n } else { Node::Not(Box::new(n)) }
}

/// A date range node for day bounds (inclusive; either may be absent).
fn date_node(dates: &DateSections, lo: Option<i128>, hi: Option<i128>) -> Node<'_> {
    let day = |x: i128| x.clamp(i32::MIN as i128, i32::MAX as i128) as i32;
    let lo = lo.map_or(i32::MIN, day);
    let hi = hi.map_or(i32::MAX, day);
    if lo > hi {
        return Node::Union(vec![]);
    }
    Node::Dates(dates, lo, hi)
}

/// A BSI range node for key bounds (inclusive, in the field's key space).
fn range_node(bsi: &BsiMeta, lo: Option<i128>, hi: Option<i128>) -> Node<'_> {
    let base: i128 = match bsi.encoding {
        NumEncoding::Int { base } | NumEncoding::Decimal { base, .. } => base as i128,
        NumEncoding::Float { base } => base as i128,
    };
    if let (Some(l), Some(h)) = (lo, hi)
        && l > h
    {
        return Node::Union(vec![]);
    }
    let hi_off = match hi {
        Some(h) if h < base => return Node::Union(vec![]),
        Some(h) => Some(u64::try_from(h - base).unwrap_or(u64::MAX)),
        None => None,
    };
    let lo_off = match lo {
        Some(l) if l > base => match u64::try_from(l - base) {
            Ok(v) => Some(v),
            Err(_) => return Node::Union(vec![]),
        },
        _ => None,
    };
    Node::Range(bsi, lo_off, hi_off)
}

/// The key bounds [lo, hi] (`None`: open) where every comparison holds,
/// each given with the floor and ceiling keys of its threshold; `(1, 0)`
/// when none can.
fn key_range(cmps: &[(CmpOp, (i128, i128))]) -> (Option<i128>, Option<i128>) {
    let mut lo: Option<i128> = None;
    let mut hi: Option<i128> = None;
    for &(op, (floor, ceil)) in cmps {
        let (l, h) = op.int_range(floor, ceil);
        lo = lo.max(l); // None (open) is below every bound
        hi = match (hi, h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    match (lo, hi) {
        (Some(l), Some(h)) if l > h => (Some(1), Some(0)),
        bounds => bounds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_in_parts_equals_union_in_one() {
        // Bitmaps of scattered ids (a small LCG), in counts below, at and
        // well above what one part takes, on a pool of three threads.
        let mut x = 0x2545_F491_u64;
        let mut next = move || {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (x >> 33) as u32
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for n in [
            0,
            1,
            UNION_SPLIT,
            2 * UNION_SPLIT,
            3 * UNION_SPLIT + 7,
            1000,
        ] {
            let maps: Vec<Arc<Bitmap>> = (0..n)
                .map(|_| Arc::new((0..next() % 300).map(|_| next() % 2_000_000).collect()))
                .collect();
            let one = union_all(maps.iter().map(|b| b.as_ref()));
            assert_eq!(pool.install(|| union_par(&maps)), one, "{n} bitmaps");
        }
    }
}
