//! Random differential-test cases: a small dataset written as Parquet (with
//! the physical variations SPEC §1 allows), random valid segments (SPEC §2)
//! and a few as-of values (SPEC §3), all deterministic for a seed.
//!
//! The generator uses its own splitmix64 generator; it knows which attributes
//! and `where` keys the dataset offers and draws comparison values from the
//! data itself, so that most segments are neither empty nor everyone.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use arrow_schema::TimeUnit;
use chrono_tz::Tz;
use serde_json::{Map, Value, json};

use crate::cal::{civil_from_days, days_from_civil, days_in_month, fmt_day, is_leap};
use crate::dec::Dec;
use crate::eval::{local_day, start_of_day};
use crate::write::{ColData, write_parquet};

/// One randomized differential-test case written to disk.
#[derive(Clone, Debug)]
pub struct Case {
    /// The `--data` directory.
    pub data_dir: PathBuf,
    /// The mapping file, when the case uses one.
    pub mapping: Option<PathBuf>,
    /// The index time zone (IANA name).
    pub timezone: String,
    /// An array of segment objects (also written to `<dir>/segments.json`).
    pub segments: Value,
    /// As-of values: `YYYY-MM-DD` dates and RFC 3339 instants.
    pub as_ofs: Vec<String>,
}

/// The time zones a case is built in.
pub const TIMEZONES: [&str; 7] = [
    "UTC",
    "America/New_York",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
];

/// splitmix64.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    /// Uniform in `lo..=hi`.
    fn int(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    /// True with probability `pct` percent.
    fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len() as u64) as usize]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum GKind {
    Cat,
    Flag,
    Multi,
    Num,
    Date,
}

/// A customer attribute the segments may use, with values to compare against.
#[derive(Clone, Debug)]
struct GAttr {
    name: String,
    kind: GKind,
    pool: Vec<Value>,
}

/// A `where` key and values for it.
#[derive(Clone, Debug)]
struct GWhere {
    key: String,
    pool: Vec<Value>,
}

const NS: i128 = 1_000_000_000;
const MS: i128 = 1_000_000;

/// A key column (ids) of either type.
#[derive(Clone, Debug)]
enum Ids {
    Int(Vec<i64>),
    Str(Vec<String>),
}

impl Ids {
    fn len(&self) -> usize {
        match self {
            Ids::Int(v) => v.len(),
            Ids::Str(v) => v.len(),
        }
    }
    fn json(&self, i: usize) -> Value {
        match self {
            Ids::Int(v) => json!(v[i]),
            Ids::Str(v) => json!(v[i]),
        }
    }
    /// A column of references: `Some(i)` refers to id i, `None` to an id not in the table.
    fn refs(&self, refs: &[Option<usize>], missing_salt: &mut Rng) -> ColData {
        match self {
            Ids::Int(v) => ColData::I64(
                refs.iter()
                    .map(|r| {
                        Some(match r {
                            Some(i) => v[*i],
                            None => 900_000_000 + missing_salt.int(0, 999) * 7,
                        })
                    })
                    .collect(),
            ),
            Ids::Str(v) => ColData::Str(
                refs.iter()
                    .map(|r| {
                        Some(match r {
                            Some(i) => v[*i].clone(),
                            None => format!("missing-{}", missing_salt.int(0, 999)),
                        })
                    })
                    .collect(),
            ),
        }
    }
    fn column(&self) -> ColData {
        match self {
            Ids::Int(v) => ColData::I64(v.iter().map(|x| Some(*x)).collect()),
            Ids::Str(v) => ColData::Str(v.iter().map(|x| Some(x.clone())).collect()),
        }
    }
    /// Ids of the right JSON type that are not in the table.
    fn absent_json(&self) -> Vec<Value> {
        match self {
            Ids::Int(v) => {
                let set: BTreeSet<i64> = v.iter().copied().collect();
                [123_456_789i64, -5, 999_999_999_999]
                    .into_iter()
                    .filter(|x| !set.contains(x))
                    .map(|x| json!(x))
                    .collect()
            }
            Ids::Str(v) => {
                let set: BTreeSet<&String> = v.iter().collect();
                ["nobody", "0000007", "C99999", "7 "]
                    .into_iter()
                    .filter(|x| !set.contains(&x.to_string()))
                    .map(|x| json!(x))
                    .collect()
            }
        }
    }
}

fn gen_ids(rng: &mut Rng, n: usize, int: bool, prefix: &str) -> Ids {
    if int {
        let mut set = BTreeSet::new();
        let mut v = Vec::new();
        let spread = rng.int(1, 3);
        while v.len() < n {
            let x = match spread {
                1 => rng.int(1, (n as i64) * 3),
                2 => rng.int(1_000_000, 1_000_000 + (n as i64) * 50),
                _ => rng.int(0, 9_000_000_000_000),
            };
            if set.insert(x) {
                v.push(x);
            }
        }
        Ids::Int(v)
    } else {
        let mut set = BTreeSet::new();
        let mut v = Vec::new();
        while v.len() < n {
            let k = rng.int(0, (n as i64) * 4);
            let s = match rng.below(5) {
                0 => format!("{k:03}"),
                1 => format!("{k}"),
                2 => format!("{prefix}{k:05}"),
                3 => format!("{prefix}-{k}"),
                _ => format!("{k:07}"),
            };
            if set.insert(s.clone()) {
                v.push(s);
            }
        }
        Ids::Str(v)
    }
}

/// A JSON number with exactly the text `s` (serde_json keeps a number's
/// text: the workspace enables `arbitrary_precision`).
fn num_json(s: &str) -> Value {
    let v: Value = serde_json::from_str(s).expect("a JSON number");
    assert!(v.is_number(), "{s} is not a number");
    v
}

fn cents_str(c: i128) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let a = c.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

fn rfc3339(ns: i128, tz: &Tz, style: u64) -> String {
    let secs = ns.div_euclid(NS) as i64;
    let sub = ns.rem_euclid(NS) as u32;
    let utc = chrono::DateTime::from_timestamp(secs, sub).expect("in range");
    match style {
        0 => utc
            .with_timezone(tz)
            .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
        1 => utc.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        _ => {
            let off = chrono::FixedOffset::east_opt(-3 * 3600).expect("offset");
            utc.with_timezone(&off)
                .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
        }
    }
}

struct Gen {
    rng: Rng,
    tz: Tz,
    /// The reference day the data is spread around.
    r: i128,
    dst_days: Vec<i128>,
    as_of_days: Vec<i128>,
    /// Exact instants (ns) that matter for the as-of clip.
    boundary_instants: Vec<i128>,
    attrs: Vec<GAttr>,
    wheres: Vec<GWhere>,
    cust_ids: Option<Ids>,
    spend_pool: Vec<String>,
    aov_pool: Vec<String>,
    /// `where` and window of earlier purchase conditions with a `having`:
    /// reused with another `having`, as spend tiers are.
    tiers: Vec<Map<String, Value>>,
}

impl Gen {
    fn sod(&self, day: i128) -> i128 {
        start_of_day(day, &self.tz).expect("day in range")
    }

    /// A day where purchases or dates tend to be interesting.
    fn near_day(&mut self) -> i128 {
        let r = self.r;
        match self.rng.below(20) {
            0..=4 => {
                let d = *self.rng.pick(&self.as_of_days.clone());
                d + self.rng.int(-8, 3) as i128
            }
            5..=6 if !self.dst_days.is_empty() => {
                let d = *self.rng.pick(&self.dst_days.clone());
                d + self.rng.int(-1, 1) as i128
            }
            7..=8 => {
                // Around a month end near R.
                let (y, m, _) = civil_from_days(r + self.rng.int(-400, 100) as i128);
                days_from_civil(y, m, days_in_month(y, m)) + self.rng.int(-1, 1) as i128
            }
            9 => r + self.rng.int(1, 200) as i128,
            _ => r + self.rng.int(-900, 30) as i128,
        }
    }

    /// An instant on (or just around) the local day `day`.
    fn instant_on(&mut self, day: i128) -> i128 {
        let start = self.sod(day);
        match self.rng.below(20) {
            0 => start,
            1 => start - MS,
            2..=9 => start + self.rng.int(-3_600_000, 3_600_000) as i128 * MS,
            _ => start + self.rng.int(0, 86_399_999) as i128 * MS,
        }
    }

    // -----------------------------------------------------------------
    // segments
    // -----------------------------------------------------------------

    fn window(&mut self, purchase: bool) -> Value {
        let r = self.r;
        let k = self.rng.below(if purchase { 20 } else { 18 });
        match k {
            0 => json!("all_time"),
            1 => json!("today"),
            2 => json!("yesterday"),
            3 => json!("this_week"),
            4 => json!("last_week"),
            5 => json!("current_week"),
            6 => json!("month_to_date"),
            7 => json!("previous_month"),
            8 => json!("current_month"),
            9 => json!("year_to_date"),
            10 => json!("last_year"),
            11 => json!({"last_days": *self.rng.pick(&[1, 2, 7, 14, 30, 60, 90, 365, 366, 500])}),
            12 => json!({"next_days": *self.rng.pick(&[1, 3, 7, 30, 90, 400])}),
            13 => {
                let a = self.rng.int(-90, 20);
                let b = a + self.rng.int(0, 60);
                json!({"relative_days": [a, b]})
            }
            14 => json!({"last_months": *self.rng.pick(&[1, 2, 3, 6, 12, 13, 24])}),
            15 => {
                let a = r + self.rng.int(-500, 60) as i128;
                let b = a + self.rng.int(0, 200) as i128;
                json!({"between": [fmt_day(a), fmt_day(b)]})
            }
            16 => {
                let a = r + self.rng.int(-500, 20) as i128;
                json!({"since": fmt_day(a)})
            }
            17 => {
                let a = r + self.rng.int(-600, 100) as i128;
                json!({"before": fmt_day(a)})
            }
            _ => json!({"last_days": self.rng.int(1, 120)}),
        }
    }

    fn anniversary(&mut self) -> Value {
        match self.rng.below(10) {
            0..=5 => match self.rng.below(8) {
                0 => json!({"next_days": *self.rng.pick(&[7, 14, 30, 365])}),
                1 => json!({"last_days": *self.rng.pick(&[7, 30, 364, 365])}),
                2 => json!("current_month"),
                3 => json!("today"),
                4 => json!("current_week"),
                5 => {
                    let a = self.rng.int(-20, 5);
                    json!({"relative_days": [a, a + self.rng.int(0, 40)]})
                }
                6 => {
                    // Around the end of February.
                    let (y, _, _) = civil_from_days(self.r);
                    let y = y + self.rng.int(-1, 1) as i128;
                    let a = days_from_civil(y, 2, 20) + self.rng.int(0, 8) as i128;
                    let b = a + self.rng.int(0, 6) as i128;
                    json!({"between": [fmt_day(a), fmt_day(b)]})
                }
                _ => self.window(false),
            },
            _ => {
                let fixed = [
                    ("12-02", "01-03"),
                    ("02-28", "03-01"),
                    ("02-29", "02-29"),
                    ("02-01", "02-28"),
                    ("12-25", "01-07"),
                    ("02-28", "02-28"),
                ];
                if self.rng.pct(50) {
                    let (a, b) = *self.rng.pick(&fixed);
                    json!({"month_days": [a, b]})
                } else {
                    let (_, m, d) = civil_from_days(self.r + self.rng.int(-30, 30) as i128);
                    let (_, m2, d2) = civil_from_days(
                        days_from_civil(2001, m, d.min(28)) + self.rng.int(0, 40) as i128,
                    );
                    json!({"month_days": [format!("{m:02}-{d:02}"), format!("{m2:02}-{d2:02}")]})
                }
            }
        }
    }

    fn pick_values(&mut self, pool: &[Value], max: u64) -> Vec<Value> {
        let n = 1 + self.rng.below(max) as usize;
        let mut out: Vec<Value> = Vec::new();
        for _ in 0..n {
            let v = self.rng.pick(pool).clone();
            if !out.contains(&v) {
                out.push(v);
            }
        }
        out
    }

    fn attr_cond(&mut self) -> Value {
        let a = self.rng.pick(&self.attrs).clone();
        let mut o = Map::new();
        o.insert("attr".into(), json!(a.name));
        let r = self.rng.below(100);
        match a.kind {
            GKind::Cat | GKind::Flag | GKind::Multi => {
                if r < 8 {
                    o.insert("is_null".into(), json!(self.rng.pct(50)));
                } else if a.kind == GKind::Multi && r < 30 {
                    let v = self.pick_values(&a.pool, 2);
                    o.insert("all_of".into(), json!(v));
                } else if r < 72 {
                    let v = self.pick_values(&a.pool, 3);
                    o.insert("in".into(), json!(v));
                } else {
                    let v = self.pick_values(&a.pool, 3);
                    o.insert("not_in".into(), json!(v));
                }
            }
            GKind::Num | GKind::Date => {
                let recent = a.name != "birth_date";
                if r < 6 {
                    o.insert("is_null".into(), json!(self.rng.pct(50)));
                } else if r < 14 {
                    let v = self.pick_values(&a.pool, 3);
                    let k = if self.rng.pct(60) { "in" } else { "not_in" };
                    o.insert(k.into(), json!(v));
                } else if a.kind == GKind::Date && recent && r < 40 {
                    let w = self.window(false);
                    o.insert("window".into(), w);
                } else if a.kind == GKind::Date && r < 58 {
                    let w = self.anniversary();
                    o.insert("anniversary".into(), w);
                } else {
                    for (k, v) in self.comparisons(&a.pool) {
                        o.insert(k, v);
                    }
                }
            }
        }
        Value::Object(o)
    }

    /// Comparison keys over values of `pool`: one bound, eq, a lower and an
    /// upper bound, or between.
    fn comparisons(&mut self, pool: &[Value]) -> Vec<(String, Value)> {
        let x = self.rng.pick(pool).clone();
        let y = self.rng.pick(pool).clone();
        let (lo, hi) = if value_cmp(&x, &y) == std::cmp::Ordering::Greater {
            (y, x)
        } else {
            (x, y)
        };
        let r = self.rng.below(100);
        if r < 45 {
            let op = *self.rng.pick(&["gt", "gte", "lt", "lte"]);
            vec![(op.to_string(), lo)]
        } else if r < 55 {
            vec![("eq".to_string(), lo)]
        } else if r < 80 {
            let a = *self.rng.pick(&["gt", "gte"]);
            let b = *self.rng.pick(&["lt", "lte"]);
            vec![(a.to_string(), lo), (b.to_string(), hi)]
        } else {
            vec![("between".to_string(), json!([lo, hi]))]
        }
    }

    fn measure(&mut self) -> (String, Value) {
        let (name, pool): (&str, Vec<Value>) = match self.rng.below(5) {
            0 => ("orders", [0, 1, 2, 3, 5].iter().map(|x| json!(x)).collect()),
            1 => ("lines", [0, 1, 2, 4, 8].iter().map(|x| json!(x)).collect()),
            2 => (
                "units",
                [0, 1, 3, 6, 10, 16].iter().map(|x| json!(x)).collect(),
            ),
            3 => (
                "spend",
                self.spend_pool.iter().map(|s| num_json(s)).collect(),
            ),
            _ => (
                "avg_order_value",
                self.aov_pool.iter().map(|s| num_json(s)).collect(),
            ),
        };
        let mut o = Map::new();
        for (k, v) in self.comparisons(&pool) {
            o.insert(k, v);
        }
        (name.to_string(), Value::Object(o))
    }

    fn having(&mut self) -> Value {
        let mut hv = Map::new();
        let n = 1 + self.rng.below(2);
        for _ in 0..n {
            let (k, v) = self.measure();
            hv.insert(k, v);
        }
        Value::Object(hv)
    }

    fn purchased(&mut self) -> Value {
        if !self.tiers.is_empty() && self.rng.pct(20) {
            let mut p = self.rng.pick(&self.tiers).clone();
            p.insert("having".into(), self.having());
            return json!({ "purchased": p });
        }
        let mut p = Map::new();
        if self.rng.pct(75) && !self.wheres.is_empty() {
            let mut w = Map::new();
            let n = *self.rng.pick(&[1, 1, 1, 2, 2, 3]);
            for _ in 0..n {
                let k = self.rng.pick(&self.wheres).clone();
                let vals = self.pick_values(&k.pool, 3);
                let v = if self.rng.pct(22) {
                    json!({"not_in": vals})
                } else {
                    json!(vals)
                };
                w.insert(k.key.clone(), v);
            }
            p.insert("where".into(), Value::Object(w));
        } else if self.rng.pct(10) {
            p.insert("where".into(), json!({}));
        }
        if self.rng.pct(60) {
            let w = self.window(true);
            p.insert("window".into(), w);
        }
        let h = self.rng.below(100);
        if h < 35 {
            // no having
        } else if h < 40 {
            p.insert("having".into(), json!({}));
        } else {
            self.tiers.push(p.clone());
            p.insert("having".into(), self.having());
        }
        json!({ "purchased": p })
    }

    fn customers_cond(&mut self) -> Value {
        let ids = self.cust_ids.clone().expect("customers generated");
        let mut v = Vec::new();
        let k = self.rng.int(1, (ids.len() as i64 / 2).max(2));
        for _ in 0..k {
            v.push(ids.json(self.rng.below(ids.len() as u64) as usize));
        }
        let absent = ids.absent_json();
        for _ in 0..self.rng.int(0, 2) {
            if !absent.is_empty() {
                v.push(self.rng.pick(&absent).clone());
            }
        }
        json!({ "customers": v })
    }

    fn leaf(&mut self, earlier: &[String]) -> Value {
        let r = self.rng.below(100);
        if r < 46 {
            self.attr_cond()
        } else if r < 84 {
            self.purchased()
        } else if r < 87 {
            self.customers_cond()
        } else if r < 96 && !earlier.is_empty() {
            json!({"segment": self.rng.pick(earlier)})
        } else if r < 98 {
            if self.rng.pct(50) {
                json!({"all": []})
            } else {
                json!({"any": []})
            }
        } else {
            self.attr_cond()
        }
    }

    fn cond(&mut self, depth: u32, earlier: &[String]) -> Value {
        // Composite nodes get rarer with depth; depth 3 holds only leaves.
        let composite = match depth {
            0 => 65,
            1 => 40,
            2 => 20,
            _ => 0,
        };
        if !self.rng.pct(composite) {
            return self.leaf(earlier);
        }
        match self.rng.below(20) {
            0..=7 => {
                let n = if self.rng.pct(80) { 2 } else { 3 };
                let v: Vec<Value> = (0..n).map(|_| self.cond(depth + 1, earlier)).collect();
                json!({ "all": v })
            }
            8..=15 => {
                let n = 2 + self.rng.below(2);
                let v: Vec<Value> = (0..n).map(|_| self.cond(depth + 1, earlier)).collect();
                json!({ "any": v })
            }
            16..=18 => json!({ "not": self.cond(depth + 1, earlier) }),
            _ => {
                let v = vec![self.cond(depth + 1, earlier)];
                json!({ "all": v })
            }
        }
    }
}

fn value_cmp(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let x = Dec::parse(&x.to_string()).expect("number");
            let y = Dec::parse(&y.to_string()).expect("number");
            x.cmp(&y)
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// Per-table writing instructions: path relative to the data dir, whether to
/// split the rows over several files, and the canonical → source renames.
struct TableOut {
    rel: String,
    split: bool,
    renames: Vec<(String, String)>,
    exclude: Vec<String>,
}

fn write_table(data_dir: &Path, out: &mut TableOut, cols: Vec<(String, ColData)>, rng: &mut Rng) {
    // Only columns that exist are renamed.
    out.renames
        .retain(|(canonical, _)| cols.iter().any(|(n, _)| n == canonical));
    let cols: Vec<(String, ColData)> = cols
        .into_iter()
        .map(|(name, c)| {
            let src = out
                .renames
                .iter()
                .find(|(t, _)| *t == name)
                .map(|(_, s)| s.clone())
                .unwrap_or(name);
            (src, c)
        })
        .collect();
    let n = cols.first().map_or(0, |c| c.1.len());
    let path = data_dir.join(&out.rel);
    if out.split {
        let parts = if n < 4 { 1 } else { rng.int(2, 3) as usize };
        let mut lo = 0;
        for k in 0..parts {
            let hi = if k + 1 == parts {
                n
            } else {
                lo + (n - lo) / (parts - k)
            };
            write_parquet(&path.join(format!("part-{k:02}.parquet")), &cols, lo, hi)
                .expect("write parquet");
            lo = hi;
        }
    } else {
        write_parquet(&path, &cols, 0, n).expect("write parquet");
    }
}

fn ts_unit(rng: &mut Rng) -> (TimeUnit, i128) {
    match rng.below(3) {
        0 => (TimeUnit::Millisecond, MS),
        1 => (TimeUnit::Microsecond, 1_000),
        _ => (TimeUnit::Nanosecond, 1),
    }
}

fn ts_zone(rng: &mut Rng, tz: &str) -> Option<String> {
    match rng.below(4) {
        0 => None,
        1 => Some("UTC".into()),
        2 => Some(tz.to_string()),
        _ => Some("+02:00".into()),
    }
}

fn ts_col(rng: &mut Rng, tz: &str, vals: &[Option<i128>]) -> ColData {
    let (unit, div) = ts_unit(rng);
    let zone = ts_zone(rng, tz);
    ColData::Ts(
        vals.iter()
            .map(|v| v.map(|ns| ns.div_euclid(div) as i64))
            .collect(),
        unit,
        zone,
    )
}

fn opt_str(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

/// Write a random small dataset (Parquet, via arrow's ArrowWriter) and random segments under `dir`, deterministic for `seed`.
pub fn random_case(seed: u64, dir: &Path) -> Case {
    let mut rng = Rng(seed.wrapping_mul(0xA24B_AED4_963E_E407) ^ 0x5EED);
    let tz_name = *rng.pick(&TIMEZONES);
    let tz: Tz = tz_name.parse().expect("known zone");
    let r = days_from_civil(2022, 6, 1) + rng.int(0, 3 * 365) as i128;
    let mut g = Gen {
        rng,
        tz,
        r,
        dst_days: Vec::new(),
        as_of_days: Vec::new(),
        boundary_instants: Vec::new(),
        attrs: Vec::new(),
        wheres: Vec::new(),
        cust_ids: None,
        spend_pool: Vec::new(),
        aov_pool: Vec::new(),
        tiers: Vec::new(),
    };
    let mut prev = g.sod(r - 901);
    for d in (r - 900)..(r + 220) {
        let s = g.sod(d);
        if s - prev != 86_400 * NS {
            g.dst_days.push(d - 1);
        }
        prev = s;
    }

    // ---- as-of values
    let mut as_ofs = vec![fmt_day(r)];
    g.as_of_days.push(r);
    g.boundary_instants.push(g.sod(r + 1));
    {
        // An instant near a local midnight, sometimes on a DST day.
        let day = if !g.dst_days.is_empty() && g.rng.pct(50) {
            let near: Vec<i128> = g
                .dst_days
                .iter()
                .copied()
                .filter(|d| (*d - r).abs() < 200)
                .collect();
            if near.is_empty() {
                r + g.rng.int(-10, 10) as i128
            } else {
                *g.rng.pick(&near) + g.rng.int(0, 1) as i128
            }
        } else {
            r + g.rng.int(-10, 10) as i128
        };
        let delta = *g
            .rng
            .pick(&[0i128, -NS, NS, 59 * 60 * NS, -30 * 60 * NS, 12 * 3600 * NS]);
        let inst = g.sod(day) + delta;
        let style = g.rng.below(3);
        as_ofs.push(rfc3339(inst, &g.tz, style));
        g.as_of_days.push(local_day(inst, &g.tz).expect("day"));
        g.boundary_instants.push(inst);
    }
    {
        // An early as-of: much of the data comes after it.
        let day = r - g.rng.int(300, 500) as i128;
        if g.rng.pct(50) {
            as_ofs.push(fmt_day(day));
            g.boundary_instants.push(g.sod(day + 1));
            g.as_of_days.push(day);
        } else {
            let inst = g.sod(day) + g.rng.int(0, 86_399) as i128 * NS;
            let style = g.rng.below(3);
            as_ofs.push(rfc3339(inst, &g.tz, style));
            g.as_of_days.push(local_day(inst, &g.tz).expect("day"));
            g.boundary_instants.push(inst);
        }
    }
    if g.rng.pct(60) {
        let day = if let Some(&d) = g.dst_days.iter().find(|d| **d > r - 200) {
            d
        } else {
            r + 17
        };
        if g.rng.pct(50) {
            as_ofs.push(fmt_day(day));
            g.boundary_instants.push(g.sod(day + 1));
            g.as_of_days.push(day);
        } else {
            let inst = g.sod(day) + g.rng.int(-7200, 7200) as i128 * NS;
            as_ofs.push(rfc3339(inst, &g.tz, 0));
            g.as_of_days.push(local_day(inst, &g.tz).expect("day"));
            g.boundary_instants.push(inst);
        }
    }
    // A late as-of, after every order (orders fall on days up to R + 225),
    // so windows that reach back to the first order keep every order: the
    // engine's all-time path. Not an as-of day of `near_day`, so no order
    // is generated near it.
    as_ofs.push(fmt_day(r + 400));

    // ---- layout
    let use_mapping = g.rng.pct(40);
    let denorm = g.rng.pct(35);
    let data_dir = dir.join("data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir).expect("clean data dir");
    }
    std::fs::create_dir_all(&data_dir).expect("create data dir");
    let mut outs: Vec<(&str, TableOut)> = Vec::new();
    for t in ["customers", "orders", "order_lines", "products"] {
        if t == "orders" && denorm {
            continue;
        }
        let split = g.rng.pct(30);
        let mut out = TableOut {
            rel: if split {
                t.to_string()
            } else {
                format!("{t}.parquet")
            },
            split,
            renames: Vec::new(),
            exclude: Vec::new(),
        };
        if use_mapping {
            out.rel = match (t, split) {
                ("customers", false) => "crm/members.parquet".into(),
                ("customers", true) => "crm/members".into(),
                ("orders", false) => "pos_export/orders.parquet".into(),
                ("orders", true) => "pos_export/orders".into(),
                ("order_lines", false) => "pos_export/lines.parquet".into(),
                ("order_lines", true) => "pos_export/tickets".into(),
                (_, false) => "catalog.parquet".into(),
                (_, true) => "catalog".into(),
            };
            let candidates: &[(&str, &str)] = match t {
                "customers" => &[
                    ("customer_id", "member_no"),
                    ("birth_date", "dob"),
                    ("customer_type", "member_type"),
                    ("tags", "labels"),
                ],
                "orders" => &[
                    ("order_id", "order_no"),
                    ("ordered_at", "placed_at"),
                    ("customer_id", "member_no"),
                ],
                "order_lines" if denorm => &[
                    ("order_id", "ticket_id"),
                    ("line_total", "net_amount"),
                    ("quantity", "qty"),
                    ("customer_id", "member_no"),
                    ("ordered_at", "sold_at"),
                    ("store_id", "register_store"),
                ],
                "order_lines" => &[
                    ("order_id", "ticket_id"),
                    ("line_total", "net_amount"),
                    ("quantity", "qty"),
                    ("product_id", "item_id"),
                ],
                _ => &[
                    ("product_type", "category"),
                    ("brand", "maker"),
                    ("product_id", "item_id"),
                ],
            };
            for (c, s) in candidates {
                if g.rng.pct(50) {
                    out.renames.push((c.to_string(), s.to_string()));
                }
            }
            if t == "customers" {
                out.exclude.push("internal_notes".into());
            }
            if t == "products" {
                out.exclude.push("supplier_notes".into());
            }
        }
        outs.push((t, out));
    }
    fn out_of(outs: &[(&str, TableOut)], name: &str) -> usize {
        outs.iter().position(|(t, _)| *t == name).expect("table")
    }

    // ---- customers
    let nc = g.rng.int(20, 300) as usize;
    let cust_int = g.rng.pct(50);
    let cust_ids = gen_ids(&mut g.rng, nc, cust_int, "C");
    g.cust_ids = Some(cust_ids.clone());
    let mut ccols: Vec<(String, ColData)> = vec![("customer_id".into(), cust_ids.column())];
    g.attrs.push(GAttr {
        name: "customer_id".into(),
        kind: GKind::Cat,
        pool: (0..6)
            .map(|_| cust_ids.json(g.rng.below(nc as u64) as usize))
            .chain(cust_ids.absent_json().into_iter().take(1))
            .collect(),
    });
    // Helper to draw one of several strings, some null.
    let names = ["Ann", "Bob", "Chloé", "Dev", "Eun", "Femi"];
    if g.rng.pct(60) {
        let v = (0..nc)
            .map(|_| opt_str(Some(*g.rng.pick(&names))))
            .collect();
        ccols.push(("first_name".into(), ColData::Str(v)));
        let v = (0..nc)
            .map(|i| Some(format!("user{i}@example.com")))
            .collect();
        ccols.push(("email".into(), ColData::Str(v)));
    }
    let cat = |g: &mut Gen,
               ccols: &mut Vec<(String, ColData)>,
               name: &str,
               values: &[Option<&str>],
               prob: u64| {
        if !g.rng.pct(prob) {
            return;
        }
        let v: Vec<Option<String>> = (0..nc).map(|_| opt_str(*g.rng.pick(values))).collect();
        let mut pool: Vec<Value> = values.iter().flatten().map(|s| json!(s)).collect();
        pool.push(json!("Nonexistent"));
        ccols.push((name.to_string(), ColData::Str(v)));
        g.attrs.push(GAttr {
            name: name.to_string(),
            kind: GKind::Cat,
            pool,
        });
    };
    cat(
        &mut g,
        &mut ccols,
        "customer_type",
        &[
            Some("Recreational"),
            Some("Recreational"),
            Some("Medical"),
            Some("Employee"),
            Some("medical"),
            Some(""),
        ],
        95,
    );
    cat(
        &mut g,
        &mut ccols,
        "gender",
        &[Some("F"), Some("M"), Some("X"), None, Some("")],
        85,
    );
    cat(
        &mut g,
        &mut ccols,
        "country",
        &[Some("US"), Some("CA"), Some("DE"), Some("AU")],
        70,
    );
    cat(
        &mut g,
        &mut ccols,
        "postal_code",
        &[Some("98101"), Some("02139"), Some("10115"), None],
        60,
    );
    cat(
        &mut g,
        &mut ccols,
        "loyalty_tier",
        &[Some("Bronze"), Some("Silver"), Some("Gold"), None],
        80,
    );
    cat(
        &mut g,
        &mut ccols,
        "fav_color",
        &[Some("red"), Some("Red"), Some(""), None, Some("blue")],
        70,
    );
    // home_store_id: int64 or string, categorical.
    if g.rng.pct(85) {
        if g.rng.pct(50) {
            let stores = [1i64, 2, 3, 12, 40];
            let v = (0..nc)
                .map(|_| {
                    if g.rng.pct(5) {
                        None
                    } else {
                        Some(*g.rng.pick(&stores))
                    }
                })
                .collect();
            ccols.push(("home_store_id".into(), ColData::I64(v)));
            let mut pool: Vec<Value> = stores.iter().map(|x| json!(x)).collect();
            pool.push(json!(99));
            g.attrs.push(GAttr {
                name: "home_store_id".into(),
                kind: GKind::Cat,
                pool,
            });
        } else {
            let stores = ["S1", "S2", "012", "12"];
            let v = (0..nc)
                .map(|_| {
                    if g.rng.pct(5) {
                        None
                    } else {
                        Some(g.rng.pick(&stores).to_string())
                    }
                })
                .collect();
            ccols.push(("home_store_id".into(), ColData::Str(v)));
            g.attrs.push(GAttr {
                name: "home_store_id".into(),
                kind: GKind::Cat,
                pool: stores.iter().map(|x| json!(x)).collect(),
            });
        }
    }
    // tags and a custom list column.
    for (name, vals, prob) in [
        (
            "tags",
            &["Local", "VIP", "Tourist", "Veteran", "local"][..],
            90,
        ),
        ("interests", &["hiking", "cooking", "music"][..], 60),
    ] {
        if !g.rng.pct(prob) {
            continue;
        }
        let v = (0..nc)
            .map(|_| match g.rng.below(10) {
                0 => None,
                1 => Some(Vec::new()),
                _ => {
                    let n = 1 + g.rng.below(3);
                    let mut items: Vec<String> = Vec::new();
                    for _ in 0..n {
                        let s = g.rng.pick(vals).to_string();
                        if !items.contains(&s) {
                            items.push(s);
                        }
                    }
                    Some(items)
                }
            })
            .collect();
        ccols.push((name.into(), ColData::ListStr(v)));
        let mut pool: Vec<Value> = vals.iter().map(|s| json!(s)).collect();
        pool.push(json!("none_such"));
        g.attrs.push(GAttr {
            name: name.into(),
            kind: GKind::Multi,
            pool,
        });
    }
    // birth_date
    if g.rng.pct(90) {
        let (_, rm, rd) = civil_from_days(r);
        let v: Vec<Option<i32>> = (0..nc)
            .map(|_| {
                let y = g.rng.int(1950, 2006) as i128;
                let day = match g.rng.below(20) {
                    0 | 1 => return None,
                    2 | 3 => {
                        let mut y = y;
                        while !is_leap(y) {
                            y += 1;
                        }
                        days_from_civil(y, 2, 29)
                    }
                    4 => days_from_civil(y, 2, 28) + g.rng.int(0, 1) as i128,
                    5 => days_from_civil(y, 12, 25) + g.rng.int(0, 12) as i128,
                    6..=9 => days_from_civil(y, rm, rd.min(28)) + g.rng.int(-10, 10) as i128,
                    _ => days_from_civil(y, 1, 1) + g.rng.int(0, 364) as i128,
                };
                Some(day as i32)
            })
            .collect();
        let mut pool: Vec<Value> = v
            .iter()
            .flatten()
            .take(6)
            .map(|d| json!(fmt_day(*d as i128)))
            .collect();
        pool.push(json!("2000-02-29"));
        ccols.push(("birth_date".into(), ColData::Date32(v)));
        g.attrs.push(GAttr {
            name: "birth_date".into(),
            kind: GKind::Date,
            pool,
        });
        g.attrs.push(GAttr {
            name: "age".into(),
            kind: GKind::Num,
            pool: [18, 21, 25, 30, 35, 40, 50, 65]
                .iter()
                .map(|x| json!(x))
                .chain([json!(30.5), num_json("1e30"), num_json("-1e30")])
                .collect(),
        });
    }
    // numeric: loyalty points (int64), visits (int64), score (float64), credit (decimal).
    for (name, prob) in [
        ("loyalty_points_lifetime", 80),
        ("loyalty_points_spendable", 60),
        ("visits", 60),
    ] {
        if !g.rng.pct(prob) {
            continue;
        }
        let hi = if name == "visits" { 30 } else { 3000 };
        let v: Vec<Option<i64>> = (0..nc)
            .map(|_| {
                if g.rng.pct(7) {
                    None
                } else {
                    Some(g.rng.int(0, hi))
                }
            })
            .collect();
        let mut pool: Vec<Value> = v.iter().flatten().take(5).map(|x| json!(x)).collect();
        pool.push(json!(hi / 2));
        pool.push(num_json(&format!("{}.5", hi / 3)));
        // Past every stored integer, and a fraction longer than any scale.
        pool.push(num_json("1e30"));
        pool.push(num_json("-1e25"));
        pool.push(num_json(&format!(
            "{}.0000000000000000000000000000000001",
            hi / 4
        )));
        ccols.push((name.into(), ColData::I64(v)));
        g.attrs.push(GAttr {
            name: name.into(),
            kind: GKind::Num,
            pool,
        });
    }
    if g.rng.pct(60) {
        let v: Vec<Option<f64>> = (0..nc)
            .map(|_| {
                if g.rng.pct(8) {
                    None
                } else {
                    let s = format!("{}.{:03}", g.rng.int(0, 9), g.rng.int(0, 999));
                    Some(s.parse().expect("float"))
                }
            })
            .collect();
        let mut pool: Vec<Value> = v
            .iter()
            .flatten()
            .take(5)
            .map(|x| num_json(&x.to_string()))
            .collect();
        pool.push(json!(5));
        pool.push(num_json("2.5"));
        // Thresholds a hair above and below a stored value: the same
        // nearest double, yet not equal to the value the double stands for.
        if let Some(x) = v.iter().flatten().next() {
            let thousandths = (x * 1000.0).round() as i128;
            let place = |n: i128| format!("{}.{:025}", n / 10i128.pow(25), n % 10i128.pow(25));
            let scaled = thousandths * 10i128.pow(22);
            pool.push(num_json(&place(scaled + 1)));
            if scaled > 0 {
                pool.push(num_json(&place(scaled - 1)));
            }
        }
        pool.push(num_json("1e400"));
        pool.push(num_json("-1e30"));
        ccols.push(("score".into(), ColData::F64(v)));
        g.attrs.push(GAttr {
            name: "score".into(),
            kind: GKind::Num,
            pool,
        });
    }
    if g.rng.pct(60) {
        let v: Vec<Option<i128>> = (0..nc)
            .map(|_| {
                if g.rng.pct(8) {
                    None
                } else {
                    Some(g.rng.int(-5000, 200_000) as i128)
                }
            })
            .collect();
        let mut pool: Vec<Value> = v
            .iter()
            .flatten()
            .take(5)
            .map(|c| num_json(&cents_str(*c)))
            .collect();
        pool.push(num_json("1000.005"));
        pool.push(json!(0));
        pool.push(num_json("1e30"));
        pool.push(num_json("-1000.0000000000000000000000000000000001"));
        ccols.push(("credit".into(), ColData::Dec128(v, 10, 2)));
        g.attrs.push(GAttr {
            name: "credit".into(),
            kind: GKind::Num,
            pool,
        });
    }
    // dates: med_id_expires_on, last_visit_on (date32); registered_at, last_contacted_at,
    // vip_since (timestamps).
    for (name, lo, hi, prob, null_pct) in [
        ("med_id_expires_on", -60i64, 150i64, 75u64, 30u64),
        ("last_visit_on", -400, 40, 50, 10),
    ] {
        if !g.rng.pct(prob) {
            continue;
        }
        let v: Vec<Option<i32>> = (0..nc)
            .map(|_| {
                if g.rng.pct(null_pct) {
                    None
                } else if g.rng.pct(30) {
                    Some(g.near_day() as i32)
                } else {
                    Some((r + g.rng.int(lo, hi) as i128) as i32)
                }
            })
            .collect();
        let mut pool: Vec<Value> = v
            .iter()
            .flatten()
            .take(5)
            .map(|d| json!(fmt_day(*d as i128)))
            .collect();
        pool.push(json!(fmt_day(r)));
        ccols.push((name.into(), ColData::Date32(v)));
        g.attrs.push(GAttr {
            name: name.into(),
            kind: GKind::Date,
            pool,
        });
    }
    for (name, lo, hi, prob, null_pct) in [
        ("registered_at", -2000i64, 30i64, 90u64, 0u64),
        ("last_contacted_at", -300, 10, 60, 25),
        ("vip_since", -900, 60, 50, 40),
    ] {
        if !g.rng.pct(prob) {
            continue;
        }
        let v: Vec<Option<i128>> = (0..nc)
            .map(|_| {
                if g.rng.pct(null_pct) {
                    None
                } else {
                    let day = if g.rng.pct(40) {
                        g.near_day()
                    } else {
                        r + g.rng.int(lo, hi) as i128
                    };
                    Some(g.instant_on(day))
                }
            })
            .collect();
        let mut pool: Vec<Value> = v
            .iter()
            .flatten()
            .take(5)
            .map(|ns| json!(fmt_day(local_day(*ns, &g.tz).expect("day"))))
            .collect();
        pool.push(json!(fmt_day(r - 180)));
        let col = ts_col(&mut g.rng, tz_name, &v);
        ccols.push((name.into(), col));
        g.attrs.push(GAttr {
            name: name.into(),
            kind: GKind::Date,
            pool,
        });
    }
    if g.rng.pct(60) {
        let v = (0..nc)
            .map(|_| match g.rng.below(10) {
                0 => None,
                1..=4 => Some(true),
                _ => Some(false),
            })
            .collect();
        ccols.push(("opted_in".into(), ColData::Bool(v)));
        g.attrs.push(GAttr {
            name: "opted_in".into(),
            kind: GKind::Flag,
            pool: vec![json!(true), json!(false)],
        });
    }
    if use_mapping {
        let v = (0..nc).map(|i| Some(format!("note {i}"))).collect();
        ccols.push(("internal_notes".into(), ColData::Str(v)));
    }
    let ci = out_of(&outs, "customers");
    write_table(&data_dir, &mut outs[ci].1, ccols, &mut g.rng);

    // ---- products
    let np = g.rng.int(15, 80) as usize;
    let prod_int = g.rng.pct(50);
    let prod_ids = gen_ids(&mut g.rng, np, prod_int, "P");
    let mut pcols: Vec<(String, ColData)> = vec![("product_id".into(), prod_ids.column())];
    let pcat = |g: &mut Gen,
                pcols: &mut Vec<(String, ColData)>,
                name: &str,
                values: &[Option<&str>],
                prob: u64| {
        if !g.rng.pct(prob) {
            return;
        }
        let v: Vec<Option<String>> = (0..np).map(|_| opt_str(*g.rng.pick(values))).collect();
        let mut pool: Vec<Value> = values.iter().flatten().map(|s| json!(s)).collect();
        pool.push(json!("Nope"));
        pcols.push((name.to_string(), ColData::Str(v)));
        g.wheres.push(GWhere {
            key: name.to_string(),
            pool,
        });
    };
    if g.rng.pct(85) {
        let v: Vec<Option<String>> = (0..np)
            .map(|i| {
                if g.rng.pct(5) {
                    None
                } else {
                    Some(format!("SKU-{:03}", i % (np - 2)))
                }
            })
            .collect();
        let pool: Vec<Value> = v.iter().flatten().take(8).map(|s| json!(s)).collect();
        pcols.push(("sku".into(), ColData::Str(v)));
        g.wheres.push(GWhere {
            key: "sku".into(),
            pool,
        });
    }
    pcat(
        &mut g,
        &mut pcols,
        "brand",
        &[
            Some("Phat Panda"),
            Some("Cheeba Chews"),
            Some("Grassroots"),
            Some("phat panda"),
            None,
        ],
        95,
    );
    pcat(
        &mut g,
        &mut pcols,
        "product_type",
        &[
            Some("Prerolls"),
            Some("Edibles"),
            Some("Flower"),
            Some("Vapes"),
            None,
        ],
        95,
    );
    pcat(
        &mut g,
        &mut pcols,
        "strain",
        &[
            Some("Indica"),
            Some("Sativa"),
            Some("Hybrid"),
            None,
            Some(""),
        ],
        75,
    );
    pcat(
        &mut g,
        &mut pcols,
        "vendor",
        &[Some("Acme"), Some("Zeta"), None],
        50,
    );
    if g.rng.pct(80) {
        let v = (0..np).map(|i| Some(format!("Product {i}"))).collect();
        pcols.push(("name".into(), ColData::Str(v)));
    }
    if g.rng.pct(85) {
        let vals = ["organic", "sale", "new", "limited"];
        let v = (0..np)
            .map(|_| match g.rng.below(8) {
                0 => None,
                1 => Some(Vec::new()),
                _ => {
                    let mut items: Vec<String> = Vec::new();
                    for _ in 0..(1 + g.rng.below(2)) {
                        let s = g.rng.pick(&vals).to_string();
                        if !items.contains(&s) {
                            items.push(s);
                        }
                    }
                    Some(items)
                }
            })
            .collect();
        pcols.push(("tags".into(), ColData::ListStr(v)));
        let mut pool: Vec<Value> = vals.iter().map(|s| json!(s)).collect();
        pool.push(json!("Sale"));
        g.wheres.push(GWhere {
            key: "product_tag".into(),
            pool,
        });
    }
    if g.rng.pct(40) {
        let sizes = [1i64, 2, 5, 10];
        let v = (0..np)
            .map(|_| {
                if g.rng.pct(10) {
                    None
                } else {
                    Some(*g.rng.pick(&sizes))
                }
            })
            .collect();
        pcols.push(("pack_size".into(), ColData::I64(v)));
        g.wheres.push(GWhere {
            key: "pack_size".into(),
            pool: sizes.iter().map(|x| json!(x)).collect(),
        });
    }
    if use_mapping {
        let v = (0..np).map(|_| Some("call rep".to_string())).collect();
        pcols.push(("supplier_notes".into(), ColData::Str(v)));
    }
    let pi = out_of(&outs, "products");
    write_table(&data_dir, &mut outs[pi].1, pcols, &mut g.rng);

    // ---- orders
    struct GOrder {
        cust: Option<usize>,
        ts: i128,
        store: Option<usize>,
        pay: Option<&'static str>,
        offer: Option<&'static str>,
        channel: Option<&'static str>,
    }
    let store_int = g.rng.pct(50);
    let store_ints = [1i64, 2, 3, 12];
    let store_strs = ["S1", "S2", "012", "12"];
    let pays = [
        Some("cash"),
        Some("card"),
        Some("debit"),
        Some("cash"),
        None,
    ];
    let offers = [None, None, Some("SPRING10"), Some("VIP"), Some("")];
    let chans = [
        Some("in_store"),
        Some("online"),
        Some("delivery"),
        Some("in_store"),
    ];
    let mut orders: Vec<GOrder> = Vec::new();
    let new_order = |g: &mut Gen, cust: Option<usize>, ts: i128| GOrder {
        cust,
        ts,
        store: if g.rng.pct(4) {
            None
        } else {
            Some(g.rng.below(4) as usize)
        },
        pay: *g.rng.pick(&pays),
        offer: *g.rng.pick(&offers),
        channel: *g.rng.pick(&chans),
    };
    for c in 0..nc {
        if g.rng.pct(25) {
            continue;
        }
        let n = g.rng.int(1, 8);
        for _ in 0..n {
            let day = g.near_day();
            let ts = g.instant_on(day);
            orders.push(new_order(&mut g, Some(c), ts));
        }
    }
    for k in 0..g.boundary_instants.len() {
        let b = g.boundary_instants[k];
        for ts in [b, b - 1, b + 1, b - MS, b + MS, b - NS] {
            let c = g.rng.below(nc as u64) as usize;
            orders.push(new_order(&mut g, Some(c), ts));
        }
    }
    for _ in 0..g.rng.int(1, 4) {
        let day = g.near_day();
        let ts = g.instant_on(day);
        orders.push(new_order(&mut g, None, ts));
    }
    let no = orders.len();
    let order_int = g.rng.pct(50);
    let order_ids = gen_ids(&mut g.rng, no, order_int, "T");

    // ---- lines
    #[derive(Clone)]
    struct GLine {
        order: Option<usize>,
        product: Option<usize>,
        qty: i64,
        total: Option<String>,
    }
    let total_kind = match g.rng.below(10) {
        0..=5 => 0, // decimal(12,2)
        6..=7 => 1, // decimal(14,4)
        _ => 2,     // float64
    };
    // Some shops sell one unit a line: then every quantity is the same,
    // a column the engine stores in no bytes at all.
    let one_qty = if g.rng.pct(20) {
        Some(g.rng.int(1, 2))
    } else {
        None
    };
    let mut lines: Vec<GLine> = Vec::new();
    for (oi, _) in orders.iter().enumerate() {
        for _ in 0..g.rng.int(1, 3) {
            let product = if g.rng.pct(3) {
                None
            } else {
                Some(g.rng.below(np as u64) as usize)
            };
            let qty = match one_qty {
                Some(q) => q,
                None if g.rng.pct(6) => 0,
                None => g.rng.int(1, 6),
            };
            let cents: i128 = match g.rng.below(40) {
                0 => 0,
                1 => -(g.rng.int(100, 3000) as i128),
                _ => g.rng.int(50, 9000) as i128,
            };
            let total = if g.rng.pct(3) {
                None
            } else {
                Some(match total_kind {
                    0 => cents_str(cents),
                    1 => {
                        let sub = match g.rng.below(4) {
                            0 => 50,
                            1 => 0,
                            _ => g.rng.int(0, 99),
                        };
                        format!("{}{:02}", cents_str(cents), sub)
                    }
                    _ => {
                        if g.rng.pct(40) {
                            format!("{}{}", cents_str(cents), g.rng.int(0, 9))
                        } else {
                            cents_str(cents)
                        }
                    }
                })
            };
            lines.push(GLine {
                order: Some(oi),
                product,
                qty,
                total,
            });
        }
    }
    if !denorm {
        for _ in 0..g.rng.int(1, 5) {
            let mut l = lines[g.rng.below(lines.len() as u64) as usize].clone();
            l.order = None;
            lines.push(l);
        }
    }
    // Shuffle the lines (Fisher-Yates), so files are not ordered by order.
    for i in (1..lines.len()).rev() {
        let j = g.rng.below(i as u64 + 1) as usize;
        lines.swap(i, j);
    }
    // Spend and average-order-value thresholds from the data.
    {
        let mut per_cust: Vec<(i128, BTreeSet<usize>)> = vec![(0, BTreeSet::new()); nc];
        for l in &lines {
            let (Some(oi), Some(_)) = (l.order, l.product) else {
                continue;
            };
            let Some(c) = orders[oi].cust else { continue };
            let cents = l.total.as_deref().map_or(0, |t| {
                Dec::parse(t)
                    .expect("decimal")
                    .scaled(2)
                    .round_half_away()
                    .expect("fits")
            });
            per_cust[c].0 += cents;
            per_cust[c].1.insert(oi);
        }
        g.spend_pool = vec![
            "0".into(),
            "50".into(),
            "33.333".into(),
            "100.005".into(),
            "250".into(),
            "12.34".into(),
            // Past what i128 cross products hold, and past i128 itself.
            "1e37".into(),
            "-1e40".into(),
            "0.0000000000000000000000000001".into(),
        ];
        g.aov_pool = vec![
            "20".into(),
            "33.333".into(),
            "45.5".into(),
            "75".into(),
            "60.125".into(),
            "1e37".into(),
            "33.333333333333333333333333333333".into(),
        ];
        for _ in 0..6 {
            let (cents, os) = &per_cust[g.rng.below(nc as u64) as usize];
            if os.is_empty() {
                continue;
            }
            g.spend_pool.push(cents_str(*cents));
            g.spend_pool.push(format!("{}1", cents_str(*cents)));
            // A customer's spend to 30 places, one unit over in the last.
            g.spend_pool
                .push(format!("{}{}1", cents_str(*cents), "0".repeat(27)));
            let n = os.len() as i128;
            if (cents * 10_000) % n == 0 {
                let q = cents * 10_000 / n;
                let sign = if q < 0 { "-" } else { "" };
                let a = q.unsigned_abs();
                g.aov_pool
                    .push(format!("{sign}{}.{:06}", a / 1_000_000, a % 1_000_000));
            }
        }
    }
    // Order-attribute where keys.
    let has_store = g.rng.pct(90);
    let has_pay = g.rng.pct(90);
    let has_offer = g.rng.pct(80);
    let has_chan = g.rng.pct(85);
    if has_store {
        g.wheres.push(GWhere {
            key: "store".into(),
            pool: if store_int {
                store_ints
                    .iter()
                    .map(|x| json!(x))
                    .chain([json!(77)])
                    .collect()
            } else {
                store_strs
                    .iter()
                    .map(|x| json!(x))
                    .chain([json!("S9")])
                    .collect()
            },
        });
    }
    for (has, key, vals) in [
        (has_pay, "payment_method", &pays[..]),
        (has_offer, "offer_code", &offers[..]),
        (has_chan, "channel", &chans[..]),
    ] {
        if has {
            let mut pool: Vec<Value> = vals.iter().flatten().map(|s| json!(s)).collect();
            pool.dedup();
            pool.push(json!("zzz"));
            g.wheres.push(GWhere {
                key: key.into(),
                pool,
            });
        }
    }
    let store_col = |rows: &[Option<usize>]| -> ColData {
        if store_int {
            ColData::I64(rows.iter().map(|s| s.map(|i| store_ints[i])).collect())
        } else {
            ColData::Str(
                rows.iter()
                    .map(|s| s.map(|i| store_strs[i].to_string()))
                    .collect(),
            )
        }
    };
    let str_col = |rows: Vec<Option<&str>>| ColData::Str(rows.into_iter().map(opt_str).collect());
    let attach_order_attrs = |g: &mut Gen, cols: &mut Vec<(String, ColData)>, rows: &[&GOrder]| {
        if has_store {
            let s: Vec<Option<usize>> = rows.iter().map(|o| o.store).collect();
            let c = store_col(&s);
            cols.push(("store_id".into(), c));
        }
        if has_pay {
            cols.push((
                "payment_method".into(),
                str_col(rows.iter().map(|o| o.pay).collect()),
            ));
        }
        if has_offer {
            cols.push((
                "offer_code".into(),
                str_col(rows.iter().map(|o| o.offer).collect()),
            ));
        }
        if has_chan {
            cols.push((
                "channel".into(),
                str_col(rows.iter().map(|o| o.channel).collect()),
            ));
        }
        if g.rng.pct(30) {
            cols.push((
                "cashier".into(),
                ColData::Str(rows.iter().map(|_| Some("kim".to_string())).collect()),
            ));
        }
    };
    let order_refs: Vec<Option<usize>> = lines.iter().map(|l| l.order).collect();
    let mut lcols: Vec<(String, ColData)> = Vec::new();
    if denorm {
        // Lines carry the order columns; an order is the lines with one order_id.
        let ids: Vec<Option<usize>> = lines
            .iter()
            .map(|l| Some(l.order.expect("denormalized lines have orders")))
            .collect();
        lcols.push(("order_id".into(), order_ids.refs(&ids, &mut g.rng)));
        let rows: Vec<&GOrder> = lines
            .iter()
            .map(|l| &orders[l.order.expect("order")])
            .collect();
        let custs: Vec<Option<usize>> = rows.iter().map(|o| o.cust).collect();
        lcols.push(("customer_id".into(), cust_ids.refs(&custs, &mut g.rng)));
        let ts: Vec<Option<i128>> = rows
            .iter()
            .map(|o| {
                // Now and then a line of an order has its own, different time.
                if g.rng.pct(4) {
                    Some(o.ts + g.rng.int(-7200, 7200) as i128 * NS)
                } else {
                    Some(o.ts)
                }
            })
            .collect();
        let col = ts_col(&mut g.rng, tz_name, &ts);
        lcols.push(("ordered_at".into(), col));
        attach_order_attrs(&mut g, &mut lcols, &rows);
    } else {
        lcols.push(("order_id".into(), order_ids.refs(&order_refs, &mut g.rng)));
    }
    let prefs: Vec<Option<usize>> = lines.iter().map(|l| l.product).collect();
    lcols.push(("product_id".into(), prod_ids.refs(&prefs, &mut g.rng)));
    if g.rng.pct(50) {
        lcols.push((
            "quantity".into(),
            ColData::I32(lines.iter().map(|l| Some(l.qty as i32)).collect()),
        ));
    } else {
        lcols.push((
            "quantity".into(),
            ColData::I64(lines.iter().map(|l| Some(l.qty)).collect()),
        ));
    }
    let totals = match total_kind {
        0 | 1 => {
            let scale = if total_kind == 0 { 2 } else { 4 };
            ColData::Dec128(
                lines
                    .iter()
                    .map(|l| {
                        l.total.as_deref().map(|t| {
                            let d = Dec::parse(t).expect("decimal");
                            d.scaled(scale as i64).round_half_away().expect("exact")
                        })
                    })
                    .collect(),
                if total_kind == 0 { 12 } else { 14 },
                scale,
            )
        }
        _ => ColData::F64(
            lines
                .iter()
                .map(|l| l.total.as_deref().map(|t| t.parse().expect("float")))
                .collect(),
        ),
    };
    lcols.push(("line_total".into(), totals));
    if g.rng.pct(25) {
        lcols.push((
            "register_no".into(),
            ColData::I64(lines.iter().map(|_| Some(3)).collect()),
        ));
    }
    let li = out_of(&outs, "order_lines");
    write_table(&data_dir, &mut outs[li].1, lcols, &mut g.rng);

    if !denorm {
        let mut ocols: Vec<(String, ColData)> = vec![("order_id".into(), order_ids.column())];
        let custs: Vec<Option<usize>> = orders.iter().map(|o| o.cust).collect();
        ocols.push(("customer_id".into(), cust_ids.refs(&custs, &mut g.rng)));
        let ts: Vec<Option<i128>> = orders.iter().map(|o| Some(o.ts)).collect();
        let col = ts_col(&mut g.rng, tz_name, &ts);
        ocols.push(("ordered_at".into(), col));
        let rows: Vec<&GOrder> = orders.iter().collect();
        attach_order_attrs(&mut g, &mut ocols, &rows);
        let oi = out_of(&outs, "orders");
        write_table(&data_dir, &mut outs[oi].1, ocols, &mut g.rng);
    }

    // ---- mapping file
    let mapping = if use_mapping {
        let mut text = String::new();
        for (t, out) in &outs {
            text.push_str(&format!("[{t}]\npath = \"{}\"\n", out.rel));
            for (c, s) in &out.renames {
                text.push_str(&format!("{c} = \"{s}\"\n"));
            }
            if !out.exclude.is_empty() {
                let ex: Vec<String> = out.exclude.iter().map(|e| format!("\"{e}\"")).collect();
                text.push_str(&format!("exclude = [{}]\n", ex.join(", ")));
            }
            text.push('\n');
        }
        let p = dir.join("mapping.toml");
        std::fs::write(&p, text).expect("write mapping");
        Some(p)
    } else {
        None
    };

    // ---- segments
    let nseg = g.rng.int(30, 60) as usize;
    let mut codes: Vec<String> = Vec::new();
    let mut segs = Vec::new();
    for i in 0..nseg {
        let rule = g.cond(0, &codes);
        let code = format!("seg_{i:02}");
        segs.push(json!({
            "code": code,
            "name": format!("Random segment {i}"),
            "mode": "dynamic",
            "active": true,
            "rule": rule,
        }));
        codes.push(code);
    }
    let segments = Value::Array(segs);
    std::fs::write(
        dir.join("segments.json"),
        serde_json::to_string_pretty(&segments).expect("json"),
    )
    .expect("write segments");
    Case {
        data_dir,
        mapping,
        timezone: tz_name.to_string(),
        segments,
        as_ofs,
    }
}
