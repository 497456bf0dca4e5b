//! The reference evaluator: tables materialized as plain rows, segments
//! evaluated customer by customer, literally following SPEC §2 and §3.
//!
//! See the crate documentation for the approach and the list of
//! interpretations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

use crate::cal::{civil_from_days, days_from_civil, days_in_month, is_leap, parse_ymd};
use crate::dec::Dec;
use crate::read::{Cell, ColTy, Column, Table, locate, read_table};

// ---------------------------------------------------------------------------
// Data model
// ---------------------------------------------------------------------------

/// An external key (id or categorical value): an integer or a string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Key {
    Int(i128),
    Str(String),
}

impl Key {
    fn render(&self) -> String {
        match self {
            Key::Int(v) => v.to_string(),
            Key::Str(s) => s.clone(),
        }
    }
}

/// The kind of an attribute (SPEC §2.4 "Operators by kind").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Categorical; `int` when its values are integers (JSON integers match them).
    Cat {
        int: bool,
    },
    Flag,
    Multi,
    Numeric,
    Date,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Cat { .. } => "categorical",
            Kind::Flag => "flag",
            Kind::Multi => "multi-valued",
            Kind::Numeric => "numeric",
            Kind::Date => "date",
        }
    }
}

/// One attribute value of one row.
#[derive(Clone, Debug, PartialEq, Eq)]
enum AVal {
    Null,
    Key(Key),
    Bool(bool),
    /// A non-empty set of strings (an empty list is stored as `Null`).
    List(BTreeSet<String>),
    Num(Dec),
    /// A local calendar day (day number).
    Day(i128),
}

/// A column of attribute values.
#[derive(Clone, Debug)]
struct Attr {
    kind: Kind,
    vals: Vec<AVal>,
}

/// One kept order line, joined with its order (or its own order columns).
#[derive(Clone, Debug)]
struct Line {
    cust: usize,
    order: Key,
    /// ordered_at, ns since the epoch (UTC).
    ts: i128,
    /// Local calendar day of `ts` in the index time zone.
    day: i128,
    qty: i128,
    cents: i128,
    product: usize,
}

/// Loaded tables, after mapping, ready for row-by-row evaluation.
#[derive(Debug)]
pub struct RefData {
    tz: Tz,
    ids: Vec<Key>,
    id_is_int: bool,
    id_index: HashMap<Key, usize>,
    /// Customer attributes usable in rules, by name after mapping.
    attrs: BTreeMap<String, Attr>,
    /// Customer columns that exist but cannot be used in rules, with the reason.
    unusable: BTreeMap<String, String>,
    /// `where` keys answered by the product: values per product.
    prod_attrs: BTreeMap<String, Attr>,
    prod_unusable: BTreeMap<String, String>,
    /// `where` keys answered by the order: values per line.
    order_attrs: BTreeMap<String, Attr>,
    lines: Vec<Line>,
    by_cust: Vec<Vec<usize>>,
    /// Lines skipped because their order, customer or product is unknown.
    skipped: usize,
}

impl RefData {
    /// Number of customers loaded.
    pub fn customer_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of order lines kept (lines with a known order, customer and product).
    pub fn line_count(&self) -> usize {
        self.lines.len()
    }

    /// Number of lines skipped because their order, customer or product is unknown
    /// (or, with an orders table, their order has a null ordered_at).
    pub fn skipped_lines(&self) -> usize {
        self.skipped
    }

    /// Every customer's external id, rendered as in [`evaluate`]'s output.
    pub fn customer_ids(&self) -> BTreeSet<String> {
        self.ids.iter().map(Key::render).collect()
    }
}

// ---------------------------------------------------------------------------
// Time helpers
// ---------------------------------------------------------------------------

const NS: i128 = 1_000_000_000;

pub(crate) fn local_day(ts_ns: i128, tz: &Tz) -> Result<i128, String> {
    let secs = ts_ns.div_euclid(NS);
    let sub = ts_ns.rem_euclid(NS) as u32;
    let secs = i64::try_from(secs).map_err(|_| format!("timestamp {ts_ns}ns out of range"))?;
    let dt = chrono::DateTime::from_timestamp(secs, sub)
        .ok_or_else(|| format!("timestamp {ts_ns}ns out of range"))?;
    let nd = dt.with_timezone(tz).date_naive();
    Ok(naive_to_day(nd))
}

fn naive_to_day(nd: NaiveDate) -> i128 {
    use chrono::Datelike;
    days_from_civil(nd.year() as i128, nd.month(), nd.day())
}

/// The first instant (ns) whose local date is `day` or later: local midnight,
/// or (when midnight does not exist) the end of the gap.
pub(crate) fn start_of_day(day: i128, tz: &Tz) -> Result<i128, String> {
    let (y, m, d) = civil_from_days(day);
    let nd = i32::try_from(y)
        .ok()
        .and_then(|y| NaiveDate::from_ymd_opt(y, m, d))
        .ok_or_else(|| "as-of date out of range".to_string())?;
    let mut ndt = nd.and_hms_opt(0, 0, 0).expect("midnight");
    for _ in 0..(48 * 60) {
        if let Some(t) = tz.from_local_datetime(&ndt).earliest() {
            return Ok(t.timestamp() as i128 * NS + t.timestamp_subsec_nanos() as i128);
        }
        ndt += chrono::Duration::minutes(1);
    }
    Err("cannot find the start of the as-of day".into())
}

/// The evaluation moment: D and the exclusive upper limit of kept purchase instants.
#[derive(Clone, Copy, Debug)]
struct AsOf {
    d: i128,
    limit: i128,
}

fn parse_as_of(s: &str, tz: &Tz) -> Result<AsOf, String> {
    if let Some(d) = parse_ymd(s) {
        return Ok(AsOf {
            d,
            limit: start_of_day(d + 1, tz)?,
        });
    }
    let instant = if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        dt.timestamp() as i128 * NS + dt.timestamp_subsec_nanos() as i128
    } else if let Ok(ndt) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f") {
        let u = ndt.and_utc();
        u.timestamp() as i128 * NS + u.timestamp_subsec_nanos() as i128
    } else {
        return Err(format!(
            "as-of `{s}`: expected YYYY-MM-DD or an RFC 3339 instant"
        ));
    };
    Ok(AsOf {
        d: local_day(instant, tz)?,
        limit: instant + 1,
    })
}

// ---------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------

const CUST_STORED: [&str; 3] = ["first_name", "last_name", "email"];
const CUST_CAT_STR: [&str; 5] = [
    "customer_type",
    "gender",
    "country",
    "postal_code",
    "loyalty_tier",
];
const CUST_DATES: [&str; 4] = [
    "birth_date",
    "registered_at",
    "last_contacted_at",
    "med_id_expires_on",
];
const CUST_NUMS: [&str; 2] = ["loyalty_points_lifetime", "loyalty_points_spendable"];
const PROD_CAT_STR: [&str; 4] = ["sku", "brand", "product_type", "strain"];
const ORDER_ATTR_STR: [&str; 3] = ["payment_method", "offer_code", "channel"];
/// `where` keys answered by orders; no product column may take these names.
const WHERE_ORDER_KEYS: [&str; 4] = ["store", "payment_method", "offer_code", "channel"];

fn wrong_type(t: &Table, name: &str, col: &Column, want: &str) -> String {
    format!(
        "{}: column `{}` ({name}) has type {:?}, expected {want}",
        t.desc, col.source, col.ty
    )
}

fn key_of(cell: &Cell) -> Option<Key> {
    match cell {
        Cell::Int(v) => Some(Key::Int(*v)),
        Cell::Str(s) => Some(Key::Str(s.clone())),
        _ => None,
    }
}

fn require<'a>(t: &'a Table, table: &str, name: &str) -> Result<&'a Column, String> {
    t.col(name).ok_or_else(|| {
        format!(
            "{}: missing required column `{name}` of table {table}",
            t.desc
        )
    })
}

fn key_column(t: &Table, name: &str, col: &Column) -> Result<bool, String> {
    match col.ty {
        ColTy::Int => Ok(true),
        ColTy::Str => Ok(false),
        _ => Err(wrong_type(t, name, col, "int64 or string")),
    }
}

/// Converts a column to attribute values of `kind`.
fn to_attr(col: &Column, kind: Kind, tz: &Tz, t: &Table, name: &str) -> Result<Attr, String> {
    let mut vals = Vec::with_capacity(col.cells.len());
    for c in &col.cells {
        let v = match (kind, c) {
            (_, Cell::Null) => AVal::Null,
            (Kind::Cat { .. }, Cell::Int(_) | Cell::Str(_)) => AVal::Key(key_of(c).expect("key")),
            (Kind::Flag, Cell::Bool(b)) => AVal::Bool(*b),
            (Kind::Multi, Cell::List(items)) => {
                if items.is_empty() {
                    AVal::Null
                } else {
                    AVal::List(items.iter().cloned().collect())
                }
            }
            (Kind::Numeric, Cell::Int(v)) => AVal::Num(Dec::from_i128(*v)),
            (Kind::Numeric, Cell::Num(d)) => AVal::Num(d.clone()),
            (Kind::Date, Cell::Day(d)) => AVal::Day(*d),
            (Kind::Date, Cell::Ts(ns)) => AVal::Day(
                local_day(*ns, tz).map_err(|e| format!("{}: column `{name}`: {e}", t.desc))?,
            ),
            _ => {
                return Err(format!(
                    "{}: column `{name}`: unexpected value {c:?} for a {} attribute",
                    t.desc,
                    kind.name()
                ));
            }
        };
        vals.push(v);
    }
    Ok(Attr { kind, vals })
}

fn kind_by_type(ty: &ColTy) -> Option<Kind> {
    match ty {
        ColTy::Str => Some(Kind::Cat { int: false }),
        ColTy::ListStr => Some(Kind::Multi),
        ColTy::Int | ColTy::Float | ColTy::Decimal => Some(Kind::Numeric),
        ColTy::Date | ColTy::Timestamp => Some(Kind::Date),
        ColTy::Bool => Some(Kind::Flag),
        ColTy::Other(_) => None,
    }
}

/// Load the four tables under `data_dir` (SPEC §1: a mapping TOML if given, else customers/orders/order_lines/products as `<name>.parquet` files or `<name>/` directories of .parquet files; orders optional when lines carry customer_id and ordered_at), with `timezone` an IANA name (e.g. "UTC", "America/New_York").
pub fn load(data_dir: &Path, mapping: Option<&Path>, timezone: &str) -> Result<RefData, String> {
    let tz: Tz = timezone
        .parse()
        .map_err(|_| format!("unknown time zone `{timezone}`"))?;
    let specs = locate(data_dir, mapping)?;
    let spec = |name: &str| specs.get(name).cloned().flatten();
    let cust_spec = spec("customers").ok_or("table customers not found")?;
    let lines_spec = spec("order_lines").ok_or("table order_lines not found")?;
    let prod_spec = spec("products").ok_or("table products not found")?;
    let customers = read_table("customers", &cust_spec, &["age"])?;
    let mut prod_reserved: Vec<&str> = WHERE_ORDER_KEYS.to_vec();
    prod_reserved.push("product_tag");
    let products = read_table("products", &prod_spec, &prod_reserved)?;
    let lines_t = read_table("order_lines", &lines_spec, &[])?;
    let orders_t = match spec("orders") {
        Some(s) => Some(read_table("orders", &s, &[])?),
        None => None,
    };

    // --- customers
    let idcol = require(&customers, "customers", "customer_id")?;
    let id_is_int = key_column(&customers, "customer_id", idcol)?;
    let mut ids = Vec::with_capacity(customers.nrows);
    let mut id_index = HashMap::new();
    for c in &idcol.cells {
        let k = key_of(c).ok_or_else(|| {
            format!(
                "{}: column `{}` (customer_id): null customer_id",
                customers.desc, idcol.source
            )
        })?;
        if id_index.insert(k.clone(), ids.len()).is_some() {
            return Err(format!(
                "{}: column `{}` (customer_id): duplicate customer_id {}",
                customers.desc,
                idcol.source,
                k.render()
            ));
        }
        ids.push(k);
    }
    let mut attrs = BTreeMap::new();
    let mut unusable = BTreeMap::new();
    for (name, col) in &customers.cols {
        let n = name.as_str();
        let kind = if n == "customer_id" || n == "home_store_id" {
            Kind::Cat {
                int: key_column(&customers, n, col)?,
            }
        } else if CUST_STORED.contains(&n) {
            unusable.insert(
                name.clone(),
                "is stored only and cannot be used in rules".into(),
            );
            continue;
        } else if CUST_CAT_STR.contains(&n) {
            if col.ty != ColTy::Str {
                return Err(wrong_type(&customers, n, col, "string"));
            }
            Kind::Cat { int: false }
        } else if n == "tags" {
            if col.ty != ColTy::ListStr {
                return Err(wrong_type(&customers, n, col, "list<string>"));
            }
            Kind::Multi
        } else if CUST_DATES.contains(&n) {
            if !matches!(col.ty, ColTy::Date | ColTy::Timestamp) {
                return Err(wrong_type(&customers, n, col, "date or timestamp"));
            }
            Kind::Date
        } else if CUST_NUMS.contains(&n) {
            if !col.ty.is_numeric() {
                return Err(wrong_type(&customers, n, col, "an integer"));
            }
            Kind::Numeric
        } else {
            match kind_by_type(&col.ty) {
                Some(k) => k,
                None => {
                    unusable.insert(name.clone(), format!("has unsupported type {:?}", col.ty));
                    continue;
                }
            }
        };
        attrs.insert(name.clone(), to_attr(col, kind, &tz, &customers, n)?);
    }

    // --- products
    let pidcol = require(&products, "products", "product_id")?;
    let pid_is_int = key_column(&products, "product_id", pidcol)?;
    let mut prod_index: HashMap<Key, usize> = HashMap::new();
    for (i, c) in pidcol.cells.iter().enumerate() {
        let k = key_of(c).ok_or_else(|| {
            format!(
                "{}: column `{}` (product_id): null product_id",
                products.desc, pidcol.source
            )
        })?;
        if prod_index.insert(k.clone(), i).is_some() {
            return Err(format!(
                "{}: column `{}` (product_id): duplicate product_id {}",
                products.desc,
                pidcol.source,
                k.render()
            ));
        }
    }
    let mut prod_attrs = BTreeMap::new();
    let mut prod_unusable = BTreeMap::new();
    for (name, col) in &products.cols {
        let n = name.as_str();
        if n == "product_id" || n == "name" {
            prod_unusable.insert(
                name.clone(),
                "is not a purchase attribute (stored only or key)".to_string(),
            );
            continue;
        }
        let (key, kind) = if PROD_CAT_STR.contains(&n) {
            if col.ty != ColTy::Str {
                return Err(wrong_type(&products, n, col, "string"));
            }
            (name.clone(), Kind::Cat { int: false })
        } else if n == "tags" {
            if col.ty != ColTy::ListStr {
                return Err(wrong_type(&products, n, col, "list<string>"));
            }
            prod_unusable.insert(
                "tags".to_string(),
                "is used through the where key `product_tag`".to_string(),
            );
            ("product_tag".to_string(), Kind::Multi)
        } else {
            let kind = match col.ty {
                ColTy::Str => Kind::Cat { int: false },
                ColTy::Int => Kind::Cat { int: true },
                ColTy::Bool => Kind::Flag,
                ColTy::ListStr => Kind::Multi,
                _ => {
                    prod_unusable.insert(
                        name.clone(),
                        format!(
                            "has type {:?}, which cannot be a categorical product attribute",
                            col.ty
                        ),
                    );
                    continue;
                }
            };
            (name.clone(), kind)
        };
        prod_attrs.insert(key, to_attr(col, kind, &tz, &products, n)?);
    }

    // --- orders (optional)
    struct Order {
        cust: Option<usize>,
        ts: Option<i128>,
        row: usize,
    }
    let lid = require(&lines_t, "order_lines", "order_id")?;
    let lid_is_int = key_column(&lines_t, "order_id", lid)?;
    let lpid = require(&lines_t, "order_lines", "product_id")?;
    if key_column(&lines_t, "product_id", lpid)? != pid_is_int {
        return Err(wrong_type(
            &lines_t,
            "product_id",
            lpid,
            "the type of products.product_id",
        ));
    }
    let lqty = require(&lines_t, "order_lines", "quantity")?;
    if lqty.ty != ColTy::Int {
        return Err(wrong_type(&lines_t, "quantity", lqty, "an integer"));
    }
    let ltot = require(&lines_t, "order_lines", "line_total")?;
    if !ltot.ty.is_numeric() {
        return Err(wrong_type(&lines_t, "line_total", ltot, "decimal or float"));
    }
    // Which table carries the order columns.
    let order_src: &Table = orders_t.as_ref().unwrap_or(&lines_t);
    let order_src_name = if orders_t.is_some() {
        "orders"
    } else {
        "order_lines"
    };
    let ocust = require(order_src, order_src_name, "customer_id")?;
    if key_column(order_src, "customer_id", ocust)? != id_is_int {
        return Err(wrong_type(
            order_src,
            "customer_id",
            ocust,
            "the type of customers.customer_id",
        ));
    }
    let ots = require(order_src, order_src_name, "ordered_at")?;
    if ots.ty != ColTy::Timestamp {
        return Err(wrong_type(order_src, "ordered_at", ots, "timestamp"));
    }
    // Order attribute columns (values per row of `order_src`).
    let mut order_cols: BTreeMap<String, Attr> = BTreeMap::new();
    if let Some(col) = order_src.col("store_id") {
        let int = key_column(order_src, "store_id", col)?;
        order_cols.insert(
            "store".into(),
            to_attr(col, Kind::Cat { int }, &tz, order_src, "store_id")?,
        );
    }
    for n in ORDER_ATTR_STR {
        if let Some(col) = order_src.col(n) {
            if col.ty != ColTy::Str {
                return Err(wrong_type(order_src, n, col, "string"));
            }
            order_cols.insert(
                n.into(),
                to_attr(col, Kind::Cat { int: false }, &tz, order_src, n)?,
            );
        }
    }
    let cust_of = |c: &Cell| key_of(c).and_then(|k| id_index.get(&k).copied());
    let ts_of = |c: &Cell| match c {
        Cell::Ts(v) => Some(*v),
        _ => None,
    };
    let mut orders: HashMap<Key, Order> = HashMap::new();
    if let Some(ot) = &orders_t {
        let oid = require(ot, "orders", "order_id")?;
        if key_column(ot, "order_id", oid)? != lid_is_int {
            return Err(wrong_type(
                &lines_t,
                "order_id",
                lid,
                "the type of orders.order_id",
            ));
        }
        for (row, c) in oid.cells.iter().enumerate() {
            let Some(k) = key_of(c) else { continue };
            let o = Order {
                cust: cust_of(&ocust.cells[row]),
                ts: ts_of(&ots.cells[row]),
                row,
            };
            if orders.insert(k.clone(), o).is_some() {
                return Err(format!(
                    "{}: column `{}` (order_id): duplicate order_id {}",
                    ot.desc,
                    oid.source,
                    k.render()
                ));
            }
        }
    }

    // --- lines
    let mut lines = Vec::new();
    let mut order_attrs: BTreeMap<String, Attr> = order_cols
        .iter()
        .map(|(k, a)| {
            (
                k.clone(),
                Attr {
                    kind: a.kind,
                    vals: Vec::new(),
                },
            )
        })
        .collect();
    let mut skipped = 0usize;
    for row in 0..lines_t.nrows {
        let Some(product) = key_of(&lpid.cells[row]).and_then(|k| prod_index.get(&k).copied())
        else {
            skipped += 1;
            continue;
        };
        let Some(order) = key_of(&lid.cells[row]) else {
            skipped += 1;
            continue;
        };
        let (cust, ts, orow) = if orders_t.is_some() {
            match orders.get(&order) {
                Some(o) => (o.cust, o.ts, o.row),
                None => (None, None, 0),
            }
        } else {
            (cust_of(&ocust.cells[row]), ts_of(&ots.cells[row]), row)
        };
        let (Some(cust), Some(ts)) = (cust, ts) else {
            skipped += 1;
            continue;
        };
        let qty = match &lqty.cells[row] {
            Cell::Int(v) => *v,
            _ => 0,
        };
        let cents = match &ltot.cells[row] {
            Cell::Null => 0,
            Cell::Int(v) => v.checked_mul(100).ok_or("line_total out of range")?,
            Cell::Num(d) => d
                .scaled(2)
                .round_half_away()
                .ok_or_else(|| format!("{}: line_total {d} out of range", lines_t.desc))?,
            other => return Err(format!("{}: bad line_total {other:?}", lines_t.desc)),
        };
        let day = local_day(ts, &tz).map_err(|e| format!("ordered_at: {e}"))?;
        for (k, a) in &order_cols {
            order_attrs
                .get_mut(k)
                .expect("same keys")
                .vals
                .push(a.vals[orow].clone());
        }
        lines.push(Line {
            cust,
            order,
            ts,
            day,
            qty,
            cents,
            product,
        });
    }
    let mut by_cust = vec![Vec::new(); ids.len()];
    for (i, l) in lines.iter().enumerate() {
        by_cust[l.cust].push(i);
    }
    Ok(RefData {
        tz,
        ids,
        id_is_int,
        id_index,
        attrs,
        unusable,
        prod_attrs,
        prod_unusable,
        order_attrs,
        lines,
        by_cust,
        skipped,
    })
}

// ---------------------------------------------------------------------------
// Segment language
// ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
enum Scalar {
    Key(Key),
    Bool(bool),
    Num(Dec),
    Day(i128),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Gt,
    Gte,
    Lt,
    Lte,
    Eq,
}

impl Op {
    fn from_name(s: &str) -> Option<Op> {
        Some(match s {
            "gt" => Op::Gt,
            "gte" => Op::Gte,
            "lt" => Op::Lt,
            "lte" => Op::Lte,
            "eq" => Op::Eq,
            _ => return None,
        })
    }
    fn holds<T: Ord>(self, a: &T, b: &T) -> bool {
        match self {
            Op::Gt => a > b,
            Op::Gte => a >= b,
            Op::Lt => a < b,
            Op::Lte => a <= b,
            Op::Eq => a == b,
        }
    }
}

#[derive(Clone, Debug)]
enum Win {
    AllTime,
    Today,
    Yesterday,
    ThisWeek,
    LastWeek,
    CurrentWeek,
    MonthToDate,
    PreviousMonth,
    CurrentMonth,
    YearToDate,
    LastYear,
    LastDays(i128),
    NextDays(i128),
    Relative(i128, i128),
    LastMonths(i128),
    Between(i128, i128),
    Since(i128),
    Before(i128),
}

/// Inclusive day range; `None` = unbounded on that side. Empty when lo > hi.
type Range = (Option<i128>, Option<i128>);

fn first_of_month(d: i128) -> i128 {
    let (y, m, _) = civil_from_days(d);
    days_from_civil(y, m, 1)
}

fn last_of_month(d: i128) -> i128 {
    let (y, m, _) = civil_from_days(d);
    days_from_civil(y, m, days_in_month(y, m))
}

impl Win {
    fn range(&self, d: i128) -> Range {
        let monday = d - crate::cal::weekday_from_monday(d);
        let (y, _, _) = civil_from_days(d);
        match *self {
            Win::AllTime => (None, Some(d)),
            Win::Today => (Some(d), Some(d)),
            Win::Yesterday => (Some(d - 1), Some(d - 1)),
            Win::ThisWeek => (Some(monday), Some(d)),
            Win::LastWeek => (Some(monday - 7), Some(monday - 1)),
            Win::CurrentWeek => (Some(monday), Some(monday + 6)),
            Win::MonthToDate => (Some(first_of_month(d)), Some(d)),
            Win::PreviousMonth => {
                let prev = first_of_month(d) - 1;
                (Some(first_of_month(prev)), Some(prev))
            }
            Win::CurrentMonth => (Some(first_of_month(d)), Some(last_of_month(d))),
            Win::YearToDate => (Some(days_from_civil(y, 1, 1)), Some(d)),
            Win::LastYear => (
                Some(days_from_civil(y - 1, 1, 1)),
                Some(days_from_civil(y - 1, 12, 31)),
            ),
            Win::LastDays(n) => (Some(d - (n - 1)), Some(d)),
            Win::NextDays(n) => (Some(d), Some(d + (n - 1))),
            Win::Relative(a, b) => (Some(d + a), Some(d + b)),
            Win::LastMonths(n) => {
                let (y, m, dd) = civil_from_days(d);
                let idx = y * 12 + (m as i128 - 1) - n;
                let (ny, nm) = (idx.div_euclid(12), (idx.rem_euclid(12) + 1) as u32);
                let nd = dd.min(days_in_month(ny, nm));
                (Some(days_from_civil(ny, nm, nd) + 1), Some(d))
            }
            Win::Between(a, b) => (Some(a), Some(b)),
            Win::Since(s) => (Some(s), Some(d)),
            Win::Before(b) => (None, Some(b - 1)),
        }
    }
}

fn in_range(r: &Range, day: i128) -> bool {
    r.0.is_none_or(|lo| day >= lo) && r.1.is_none_or(|hi| day <= hi)
}

#[derive(Clone, Debug)]
enum Ann {
    Win(Win),
    /// Literal month-day range `(m, d) ..= (m, d)`, wrapping the year when start > end.
    MonthDays((u32, u32), (u32, u32)),
}

#[derive(Clone, Debug)]
enum Test {
    In(Vec<Scalar>),
    NotIn(Vec<Scalar>),
    AllOf(Vec<String>),
    IsNull(bool),
    Cmp(Vec<(Op, Scalar)>),
    Window(Win),
    Anniv(Ann),
}

#[derive(Clone, Debug)]
enum AttrRef {
    Col(String),
    Age,
}

#[derive(Clone, Copy, Debug)]
enum Measure {
    Orders,
    Lines,
    Units,
    Spend,
    Aov,
}

/// A measure and the comparisons it must pass.
type MeasureTest = (Measure, Vec<(Op, Dec)>);

#[derive(Clone, Debug)]
enum WKey {
    Prod(String),
    Order(String),
}

#[derive(Clone, Debug)]
struct Purch {
    /// `(key, negated, alternatives)`.
    wh: Vec<(WKey, bool, Vec<Scalar>)>,
    win: Win,
    /// `None`: at least one kept line.
    having: Option<Vec<MeasureTest>>,
}

#[derive(Clone, Debug)]
enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Customers(BTreeSet<usize>),
    Segment(String),
    Attr(AttrRef, Test),
    Purchased(Purch),
}

struct Parser<'a> {
    data: &'a RefData,
    codes: &'a BTreeSet<String>,
    refs: BTreeSet<String>,
}

fn obj<'v>(v: &'v Value, path: &str) -> Result<&'v serde_json::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("{path}: expected an object"))
}

fn arr<'v>(v: &'v Value, path: &str) -> Result<&'v Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("{path}: expected an array"))
}

fn json_int(v: &Value) -> Option<i128> {
    if let Some(i) = v.as_i64() {
        Some(i as i128)
    } else {
        v.as_u64().map(|u| u as i128)
    }
}

fn json_num(v: &Value, path: &str) -> Result<Dec, String> {
    match v {
        Value::Number(n) => {
            Dec::parse(&n.to_string()).ok_or_else(|| format!("{path}: unreadable number {n}"))
        }
        _ => Err(format!("{path}: expected a number, got {v}")),
    }
}

fn json_date(v: &Value, path: &str) -> Result<i128, String> {
    v.as_str()
        .and_then(parse_ymd)
        .ok_or_else(|| format!("{path}: expected a date YYYY-MM-DD, got {v}"))
}

fn json_pos_n(v: &Value, path: &str) -> Result<i128, String> {
    let n = json_int(v).ok_or_else(|| format!("{path}: expected an integer N ≥ 1, got {v}"))?;
    if n < 1 {
        return Err(format!("{path}: N must be at least 1, got {n}"));
    }
    Ok(n)
}

fn parse_md(v: &Value, path: &str) -> Result<(u32, u32), String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{path}: expected \"MM-DD\""))?;
    let b = s.as_bytes();
    let ok = b.len() == 5
        && b[2] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 2 || c.is_ascii_digit());
    if !ok {
        return Err(format!("{path}: expected \"MM-DD\", got {s:?}"));
    }
    let m: u32 = s[0..2].parse().expect("digits");
    let d: u32 = s[3..5].parse().expect("digits");
    // Month lengths of a leap year: 02-29 is a valid month-day.
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(2000, m) {
        return Err(format!("{path}: no such month-day {s:?}"));
    }
    Ok((m, d))
}

fn parse_window(v: &Value, path: &str, anniversary: bool) -> Result<Ann, String> {
    if let Some(s) = v.as_str() {
        let w = match s {
            "all_time" => Win::AllTime,
            "today" => Win::Today,
            "yesterday" => Win::Yesterday,
            "this_week" => Win::ThisWeek,
            "last_week" => Win::LastWeek,
            "current_week" => Win::CurrentWeek,
            "month_to_date" => Win::MonthToDate,
            "previous_month" => Win::PreviousMonth,
            "current_month" => Win::CurrentMonth,
            "year_to_date" => Win::YearToDate,
            "last_year" => Win::LastYear,
            _ => return Err(format!("{path}: unknown window {s:?}")),
        };
        return Ok(Ann::Win(w));
    }
    let o = obj(v, path)?;
    if o.len() != 1 {
        return Err(format!("{path}: a window object has exactly one key"));
    }
    let (k, x) = o.iter().next().expect("one key");
    let p = format!("{path}.{k}");
    let pair = |x: &Value| -> Result<(Value, Value), String> {
        let a = arr(x, &p)?;
        if a.len() != 2 {
            return Err(format!("{p}: expected two elements"));
        }
        Ok((a[0].clone(), a[1].clone()))
    };
    let w = match k.as_str() {
        "last_days" => Win::LastDays(json_pos_n(x, &p)?),
        "next_days" => Win::NextDays(json_pos_n(x, &p)?),
        "last_months" => Win::LastMonths(json_pos_n(x, &p)?),
        "relative_days" => {
            let (a, b) = pair(x)?;
            let a = json_int(&a).ok_or_else(|| format!("{p}[0]: expected an integer"))?;
            let b = json_int(&b).ok_or_else(|| format!("{p}[1]: expected an integer"))?;
            if a > b {
                return Err(format!("{p}: a > b ({a} > {b})"));
            }
            Win::Relative(a, b)
        }
        "between" => {
            let (a, b) = pair(x)?;
            let a = json_date(&a, &format!("{p}[0]"))?;
            let b = json_date(&b, &format!("{p}[1]"))?;
            if a > b {
                return Err(format!("{p}: d1 is after d2"));
            }
            Win::Between(a, b)
        }
        "since" => Win::Since(json_date(x, &p)?),
        "before" => Win::Before(json_date(x, &p)?),
        "month_days" if anniversary => {
            let (a, b) = pair(x)?;
            return Ok(Ann::MonthDays(
                parse_md(&a, &format!("{p}[0]"))?,
                parse_md(&b, &format!("{p}[1]"))?,
            ));
        }
        "month_days" => return Err(format!("{p}: month_days is only allowed in anniversary")),
        _ => return Err(format!("{p}: unknown window key")),
    };
    Ok(Ann::Win(w))
}

fn scalar_for(kind: Kind, v: &Value, path: &str) -> Result<Scalar, String> {
    let bad = || format!("{path}: value {v} does not fit a {} attribute", kind.name());
    Ok(match kind {
        Kind::Cat { int: true } => Scalar::Key(Key::Int(json_int(v).ok_or_else(bad)?)),
        Kind::Cat { int: false } | Kind::Multi => {
            Scalar::Key(Key::Str(v.as_str().ok_or_else(bad)?.to_string()))
        }
        Kind::Flag => Scalar::Bool(v.as_bool().ok_or_else(bad)?),
        Kind::Numeric => {
            if !v.is_number() {
                return Err(bad());
            }
            Scalar::Num(json_num(v, path)?)
        }
        Kind::Date => Scalar::Day(json_date(v, path).map_err(|_| bad())?),
    })
}

fn scalars(kind: Kind, v: &Value, path: &str) -> Result<Vec<Scalar>, String> {
    arr(v, path)?
        .iter()
        .enumerate()
        .map(|(i, x)| scalar_for(kind, x, &format!("{path}[{i}]")))
        .collect()
}

impl Parser<'_> {
    fn cond(&mut self, v: &Value, path: &str) -> Result<Cond, String> {
        let o = obj(v, path)?;
        if o.contains_key("attr") {
            return self.attr(o, path);
        }
        if o.len() != 1 {
            return Err(format!(
                "{path}: a condition has exactly one of all, any, not, customers, segment, attr, purchased"
            ));
        }
        let (k, x) = o.iter().next().expect("one key");
        let p = format!("{path}.{k}");
        match k.as_str() {
            "all" | "any" => {
                let items = arr(x, &p)?
                    .iter()
                    .enumerate()
                    .map(|(i, c)| self.cond(c, &format!("{p}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if k == "all" {
                    Cond::All(items)
                } else {
                    Cond::Any(items)
                })
            }
            "not" => Ok(Cond::Not(Box::new(self.cond(x, &p)?))),
            "customers" => {
                let mut set = BTreeSet::new();
                for (i, id) in arr(x, &p)?.iter().enumerate() {
                    let key = if self.data.id_is_int {
                        Key::Int(json_int(id).ok_or_else(|| {
                            format!("{p}[{i}]: customer ids are integers, got {id}")
                        })?)
                    } else {
                        Key::Str(
                            id.as_str()
                                .ok_or_else(|| {
                                    format!("{p}[{i}]: customer ids are strings, got {id}")
                                })?
                                .to_string(),
                        )
                    };
                    if let Some(&c) = self.data.id_index.get(&key) {
                        set.insert(c);
                    }
                }
                Ok(Cond::Customers(set))
            }
            "segment" => {
                let code = x
                    .as_str()
                    .ok_or_else(|| format!("{p}: expected a segment code"))?;
                if !self.codes.contains(code) {
                    return Err(format!("{p}: unknown segment `{code}`"));
                }
                self.refs.insert(code.to_string());
                Ok(Cond::Segment(code.to_string()))
            }
            "purchased" => self.purchased(x, &p),
            _ => Err(format!("{p}: unknown condition key")),
        }
    }

    fn attr(&mut self, o: &serde_json::Map<String, Value>, path: &str) -> Result<Cond, String> {
        let ap = format!("{path}.attr");
        let name = o["attr"]
            .as_str()
            .ok_or_else(|| format!("{ap}: expected an attribute name"))?;
        let (aref, kind) = if name == "age" {
            match self.data.attrs.get("birth_date") {
                Some(a) if a.kind == Kind::Date => (AttrRef::Age, Kind::Numeric),
                _ => {
                    return Err(format!(
                        "{ap}: `age` needs the column birth_date, which is missing"
                    ));
                }
            }
        } else if let Some(a) = self.data.attrs.get(name) {
            (AttrRef::Col(name.to_string()), a.kind)
        } else if let Some(why) = self.data.unusable.get(name) {
            return Err(format!("{ap}: attribute `{name}` {why}"));
        } else {
            return Err(format!("{ap}: unknown attribute `{name}`"));
        };
        let ops: Vec<(&String, &Value)> = o.iter().filter(|(k, _)| *k != "attr").collect();
        if ops.is_empty() {
            return Err(format!("{path}: no operator for attribute `{name}`"));
        }
        let cmp_keys = ["gt", "gte", "lt", "lte", "eq"];
        let numeric_like = matches!(kind, Kind::Numeric | Kind::Date);
        let misfit = |op: &str| {
            format!(
                "{path}.{op}: operator `{op}` does not fit the {} attribute `{name}`",
                kind.name()
            )
        };
        if ops.iter().all(|(k, _)| cmp_keys.contains(&k.as_str())) {
            let mut v = Vec::new();
            for (k, x) in ops {
                if !numeric_like {
                    return Err(misfit(k));
                }
                let p = format!("{path}.{k}");
                v.push((Op::from_name(k).expect("cmp"), scalar_for(kind, x, &p)?));
            }
            return Ok(Cond::Attr(aref, Test::Cmp(v)));
        }
        if ops.len() != 1 {
            let keys: Vec<&str> = ops.iter().map(|(k, _)| k.as_str()).collect();
            return Err(format!(
                "{path}: operators {keys:?} cannot be combined (only gt/gte/lt/lte/eq combine)"
            ));
        }
        let (k, x) = ops[0];
        let p = format!("{path}.{k}");
        let test = match k.as_str() {
            "in" | "not_in" => {
                let vals = scalars(kind, x, &p)?;
                if k == "in" {
                    Test::In(vals)
                } else {
                    Test::NotIn(vals)
                }
            }
            "all_of" => {
                if kind != Kind::Multi {
                    return Err(misfit(k));
                }
                let vals = scalars(kind, x, &p)?
                    .into_iter()
                    .map(|s| match s {
                        Scalar::Key(Key::Str(s)) => s,
                        _ => unreachable!("multi values are strings"),
                    })
                    .collect();
                Test::AllOf(vals)
            }
            "is_null" => Test::IsNull(
                x.as_bool()
                    .ok_or_else(|| format!("{p}: expected true or false"))?,
            ),
            "between" => {
                if !numeric_like {
                    return Err(misfit(k));
                }
                let a = arr(x, &p)?;
                if a.len() != 2 {
                    return Err(format!("{p}: expected [x, y]"));
                }
                let lo = scalar_for(kind, &a[0], &format!("{p}[0]"))?;
                let hi = scalar_for(kind, &a[1], &format!("{p}[1]"))?;
                if scalar_gt(&lo, &hi) {
                    return Err(format!("{p}: x is greater than y"));
                }
                Test::Cmp(vec![(Op::Gte, lo), (Op::Lte, hi)])
            }
            "window" => {
                if kind != Kind::Date {
                    return Err(misfit(k));
                }
                match parse_window(x, &p, false)? {
                    Ann::Win(w) => Test::Window(w),
                    Ann::MonthDays(..) => unreachable!("not allowed"),
                }
            }
            "anniversary" => {
                if kind != Kind::Date {
                    return Err(misfit(k));
                }
                Test::Anniv(parse_window(x, &p, true)?)
            }
            _ => return Err(format!("{p}: unknown operator `{k}`")),
        };
        Ok(Cond::Attr(aref, test))
    }

    fn purchased(&mut self, v: &Value, path: &str) -> Result<Cond, String> {
        let o = obj(v, path)?;
        let mut p = Purch {
            wh: Vec::new(),
            win: Win::AllTime,
            having: None,
        };
        for (k, x) in o {
            let kp = format!("{path}.{k}");
            match k.as_str() {
                "where" => {
                    for (wk, wv) in obj(x, &kp)? {
                        let wp = format!("{kp}.{wk}");
                        let (key, kind) = self.where_key(wk, &wp)?;
                        let (neg, vals) = if let Some(no) = wv.as_object() {
                            if no.len() != 1 || !no.contains_key("not_in") {
                                return Err(format!(
                                    "{wp}: expected a list of values or {{\"not_in\": [...]}}"
                                ));
                            }
                            (true, scalars(kind, &no["not_in"], &format!("{wp}.not_in"))?)
                        } else {
                            (false, scalars(kind, wv, &wp)?)
                        };
                        p.wh.push((key, neg, vals));
                    }
                }
                "window" => {
                    p.win = match parse_window(x, &kp, false)? {
                        Ann::Win(w) => w,
                        Ann::MonthDays(..) => unreachable!("not allowed"),
                    }
                }
                "having" => {
                    let mut hv = Vec::new();
                    for (mk, mv) in obj(x, &kp)? {
                        let mp = format!("{kp}.{mk}");
                        let m = match mk.as_str() {
                            "orders" => Measure::Orders,
                            "lines" => Measure::Lines,
                            "units" => Measure::Units,
                            "spend" => Measure::Spend,
                            "avg_order_value" => Measure::Aov,
                            _ => return Err(format!("{mp}: unknown measure `{mk}`")),
                        };
                        let mo = obj(mv, &mp)?;
                        if mo.is_empty() {
                            return Err(format!("{mp}: no comparison"));
                        }
                        let mut ops = Vec::new();
                        for (ok, ov) in mo {
                            let op_path = format!("{mp}.{ok}");
                            if ok == "between" {
                                let a = arr(ov, &op_path)?;
                                if a.len() != 2 {
                                    return Err(format!("{op_path}: expected [x, y]"));
                                }
                                let lo = json_num(&a[0], &format!("{op_path}[0]"))?;
                                let hi = json_num(&a[1], &format!("{op_path}[1]"))?;
                                if lo > hi {
                                    return Err(format!("{op_path}: x is greater than y"));
                                }
                                ops.push((Op::Gte, lo));
                                ops.push((Op::Lte, hi));
                            } else {
                                let op = Op::from_name(ok).ok_or_else(|| {
                                    format!("{op_path}: unknown comparison `{ok}`")
                                })?;
                                ops.push((op, json_num(ov, &op_path)?));
                            }
                        }
                        hv.push((m, ops));
                    }
                    p.having = if hv.is_empty() { None } else { Some(hv) };
                }
                _ => return Err(format!("{kp}: unknown key in purchased")),
            }
        }
        Ok(Cond::Purchased(p))
    }

    fn where_key(&self, k: &str, path: &str) -> Result<(WKey, Kind), String> {
        let missing = |col: &str| format!("{path}: `{k}` needs the column {col}, which is missing");
        if WHERE_ORDER_KEYS.contains(&k) {
            return match self.data.order_attrs.get(k) {
                Some(a) => Ok((WKey::Order(k.to_string()), a.kind)),
                None => Err(missing(if k == "store" { "store_id" } else { k })),
            };
        }
        if let Some(a) = self.data.prod_attrs.get(k) {
            return Ok((WKey::Prod(k.to_string()), a.kind));
        }
        if k == "product_tag" {
            return Err(missing("products.tags"));
        }
        if PROD_CAT_STR.contains(&k) {
            return Err(missing(&format!("products.{k}")));
        }
        if let Some(why) = self.data.prod_unusable.get(k) {
            return Err(format!("{path}: product column `{k}` {why}"));
        }
        Err(format!("{path}: unknown purchase attribute `{k}`"))
    }
}

fn scalar_gt(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Num(x), Scalar::Num(y)) => x > y,
        (Scalar::Day(x), Scalar::Day(y)) => x > y,
        _ => false,
    }
}

fn valid_code(c: &str) -> bool {
    !c.is_empty()
        && c.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

struct Segment {
    code: String,
    rule: Cond,
    refs: BTreeSet<String>,
}

fn parse_segments(data: &RefData, segments: &Value) -> Result<Vec<Segment>, String> {
    let list: Vec<&Value> = match segments {
        Value::Array(a) => a.iter().collect(),
        Value::Object(_) => vec![segments],
        _ => return Err("segments: expected a segment object or an array of them".into()),
    };
    let mut codes = BTreeSet::new();
    for (i, s) in list.iter().enumerate() {
        let o = s
            .as_object()
            .ok_or_else(|| format!("segments[{i}]: expected an object"))?;
        let code = o
            .get("code")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("segments[{i}]: missing code"))?;
        if !valid_code(code) {
            return Err(format!(
                "segments[{i}]: code {code:?} must match [a-z0-9_]+"
            ));
        }
        if !codes.insert(code.to_string()) {
            return Err(format!("segments[{i}]: duplicate code `{code}`"));
        }
    }
    let mut out = Vec::new();
    for s in list {
        let o = s.as_object().expect("checked");
        let code = o["code"].as_str().expect("checked").to_string();
        let err = |m: String| format!("segment `{code}`: {m}");
        for (k, v) in o {
            let ok = match k.as_str() {
                "code" | "rule" => true,
                "name" | "description" => v.is_string(),
                "mode" => v == "dynamic" || v == "static",
                "active" => v.is_boolean(),
                _ => return Err(err(format!("unknown key `{k}`"))),
            };
            if !ok {
                return Err(err(format!("{k}: invalid value {v}")));
            }
        }
        let rule = o.get("rule").ok_or_else(|| err("missing rule".into()))?;
        let mut p = Parser {
            data,
            codes: &codes,
            refs: BTreeSet::new(),
        };
        let rule = p.cond(rule, "rule").map_err(err)?;
        out.push(Segment {
            code,
            rule,
            refs: p.refs,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

struct Ctx<'a> {
    data: &'a RefData,
    at: AsOf,
    members: &'a HashMap<String, Vec<bool>>,
}

fn age_at(birth: i128, d: i128) -> i128 {
    let (by, bm, bd) = civil_from_days(birth);
    let (dy, dm, dd) = civil_from_days(d);
    dy - by - i128::from((dm, dd) < (bm, bd))
}

fn anniversary_holds(ann: &Ann, day: i128, d: i128) -> bool {
    let (_, m, dd) = civil_from_days(day);
    let md = (m, dd);
    match ann {
        Ann::MonthDays(s, e) => {
            if s <= e {
                *s <= md && md <= *e
            } else {
                md >= *s || md <= *e
            }
        }
        Ann::Win(w) => {
            let (lo, hi) = w.range(d);
            let (Some(lo), Some(hi)) = (lo, hi) else {
                // Unbounded: more than a year.
                return true;
            };
            if lo > hi {
                return false;
            }
            if hi - lo + 1 >= 365 {
                return true;
            }
            (lo..=hi).any(|x| {
                let (y, xm, xd) = civil_from_days(x);
                (xm, xd) == md || (md == (2, 29) && (xm, xd) == (2, 28) && !is_leap(y))
            })
        }
    }
}

fn scalar_matches(v: &AVal, s: &Scalar) -> bool {
    match (v, s) {
        (AVal::Key(a), Scalar::Key(b)) => a == b,
        (AVal::Bool(a), Scalar::Bool(b)) => a == b,
        (AVal::List(set), Scalar::Key(Key::Str(b))) => set.contains(b),
        (AVal::Num(a), Scalar::Num(b)) => a == b,
        (AVal::Day(a), Scalar::Day(b)) => a == b,
        _ => false,
    }
}

fn in_list(v: &AVal, vals: &[Scalar]) -> bool {
    vals.iter().any(|s| scalar_matches(v, s))
}

impl Ctx<'_> {
    fn holds(&self, c: &Cond, cust: usize) -> bool {
        match c {
            Cond::All(v) => v.iter().all(|c| self.holds(c, cust)),
            Cond::Any(v) => v.iter().any(|c| self.holds(c, cust)),
            Cond::Not(c) => !self.holds(c, cust),
            Cond::Customers(set) => set.contains(&cust),
            Cond::Segment(code) => self.members[code][cust],
            Cond::Attr(a, t) => self.attr_holds(a, t, cust),
            Cond::Purchased(p) => self.purchased_holds(p, cust),
        }
    }

    fn attr_value(&self, a: &AttrRef, cust: usize) -> AVal {
        match a {
            AttrRef::Col(n) => self.data.attrs[n].vals[cust].clone(),
            AttrRef::Age => match &self.data.attrs["birth_date"].vals[cust] {
                AVal::Day(b) => AVal::Num(Dec::from_i128(age_at(*b, self.at.d))),
                _ => AVal::Null,
            },
        }
    }

    fn attr_holds(&self, a: &AttrRef, t: &Test, cust: usize) -> bool {
        let v = self.attr_value(a, cust);
        match t {
            Test::In(vals) => in_list(&v, vals),
            Test::NotIn(vals) => !in_list(&v, vals),
            Test::AllOf(vals) => match &v {
                AVal::List(set) => vals.iter().all(|x| set.contains(x)),
                _ => vals.is_empty(),
            },
            Test::IsNull(b) => (v == AVal::Null) == *b,
            Test::Cmp(ops) => ops.iter().all(|(op, s)| match (&v, s) {
                (AVal::Num(x), Scalar::Num(y)) => op.holds(x, y),
                (AVal::Day(x), Scalar::Day(y)) => op.holds(x, y),
                _ => false,
            }),
            Test::Window(w) => match v {
                AVal::Day(day) => in_range(&w.range(self.at.d), day),
                _ => false,
            },
            Test::Anniv(ann) => match v {
                AVal::Day(day) => anniversary_holds(ann, day, self.at.d),
                _ => false,
            },
        }
    }

    fn where_holds(&self, p: &Purch, li: usize) -> bool {
        let line = &self.data.lines[li];
        p.wh.iter().all(|(key, neg, vals)| {
            let v = match key {
                WKey::Prod(n) => &self.data.prod_attrs[n].vals[line.product],
                WKey::Order(n) => &self.data.order_attrs[n].vals[li],
            };
            in_list(v, vals) != *neg
        })
    }

    fn purchased_holds(&self, p: &Purch, cust: usize) -> bool {
        let range = p.win.range(self.at.d);
        let mut orders = BTreeSet::new();
        let (mut nlines, mut units, mut cents) = (0i128, 0i128, 0i128);
        for &li in &self.data.by_cust[cust] {
            let l = &self.data.lines[li];
            if l.ts >= self.at.limit || !in_range(&range, l.day) || !self.where_holds(p, li) {
                continue;
            }
            orders.insert(&l.order);
            nlines += 1;
            units += l.qty;
            cents += l.cents;
        }
        let Some(having) = &p.having else {
            return nlines > 0;
        };
        let norders = orders.len() as u64;
        having.iter().all(|(m, ops)| {
            ops.iter().all(|(op, x)| match m {
                Measure::Orders => op.holds(&Dec::from_i128(norders as i128), x),
                Measure::Lines => op.holds(&Dec::from_i128(nlines), x),
                Measure::Units => op.holds(&Dec::from_i128(units), x),
                Measure::Spend => op.holds(&Dec::from_i128(cents), &x.scaled(2)),
                // spend / orders (op) x  <=>  cents (op) x * 100 * orders, orders > 0.
                Measure::Aov => {
                    norders > 0 && op.holds(&Dec::from_i128(cents), &x.scaled(2).mul_u64(norders))
                }
            })
        })
    }
}

/// Evaluate every segment in `segments` (one segment object or an array of them, SPEC §2) as of `as_of` (SPEC §3: "YYYY-MM-DD" = the whole local day, or an RFC 3339 instant). Returns code -> set of matching external customer ids rendered as strings (int64 ids in decimal).
pub fn evaluate(
    data: &RefData,
    segments: &Value,
    as_of: &str,
) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let at = parse_as_of(as_of, &data.tz)?;
    let segs = parse_segments(data, segments)?;
    // Dependency order (and cycle detection) by depth-first search.
    let by_code: HashMap<&str, &Segment> = segs.iter().map(|s| (s.code.as_str(), s)).collect();
    let mut order: Vec<&str> = Vec::new();
    let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = in progress, 2 = done
    fn visit<'s>(
        code: &'s str,
        by_code: &HashMap<&str, &'s Segment>,
        state: &mut HashMap<&'s str, u8>,
        order: &mut Vec<&'s str>,
        stack: &mut Vec<&'s str>,
    ) -> Result<(), String> {
        match state.get(code) {
            Some(2) => return Ok(()),
            Some(1) => {
                stack.push(code);
                return Err(format!(
                    "segment `{code}`: reference cycle {}",
                    stack.join(" -> ")
                ));
            }
            _ => {}
        }
        state.insert(code, 1);
        stack.push(code);
        let seg = by_code[code];
        for r in &seg.refs {
            visit(r.as_str(), by_code, state, order, stack)?;
        }
        stack.pop();
        state.insert(code, 2);
        order.push(code);
        Ok(())
    }
    for s in &segs {
        visit(&s.code, &by_code, &mut state, &mut order, &mut Vec::new())?;
    }
    let mut members: HashMap<String, Vec<bool>> = HashMap::new();
    for code in order {
        let seg = by_code[code];
        let ctx = Ctx {
            data,
            at,
            members: &members,
        };
        let v: Vec<bool> = (0..data.ids.len())
            .map(|c| ctx.holds(&seg.rule, c))
            .collect();
        members.insert(code.to_string(), v);
    }
    let mut out = BTreeMap::new();
    for s in &segs {
        let v = &members[&s.code];
        let set = v
            .iter()
            .enumerate()
            .filter(|(_, b)| **b)
            .map(|(i, _)| data.ids[i].render())
            .collect();
        out.insert(s.code.clone(), set);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
