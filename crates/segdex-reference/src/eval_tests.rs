//! Hand-computed examples pinning the fine points of SPEC §2–§3.

use super::*;
use crate::cal::days_from_civil;
use crate::write::{ColData, write_parquet};
use arrow_schema::TimeUnit;
use serde_json::json;
use std::path::PathBuf;

// ---------------------------------------------------------------------------
// fixtures
// ---------------------------------------------------------------------------

struct Fx {
    dir: PathBuf,
}

impl Fx {
    fn new(name: &str) -> Fx {
        let dir =
            std::env::temp_dir().join(format!("segdex-ref-unit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Fx { dir }
    }
    fn table(&self, rel: &str, cols: Vec<(&str, ColData)>) -> &Fx {
        let cols: Vec<(String, ColData)> =
            cols.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
        let n = cols[0].1.len();
        write_parquet(&self.dir.join(rel), &cols, 0, n).unwrap();
        self
    }
    /// Products / orders / lines tables with no rows.
    fn no_purchases(&self) -> &Fx {
        self.table("products.parquet", vec![("product_id", ints(&[]))]);
        self.table(
            "orders.parquet",
            vec![
                ("order_id", ints(&[])),
                ("customer_id", ints(&[])),
                ("ordered_at", ts(&[])),
            ],
        );
        self.table(
            "order_lines.parquet",
            vec![
                ("order_id", ints(&[])),
                ("product_id", ints(&[])),
                ("quantity", ints(&[])),
                ("line_total", dec2(&[])),
            ],
        )
    }
    fn load(&self, tz: &str) -> RefData {
        load(&self.dir, None, tz).unwrap()
    }
    fn try_load(&self, tz: &str) -> Result<RefData, String> {
        load(&self.dir, None, tz)
    }
}

impl Drop for Fx {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn ints(v: &[i64]) -> ColData {
    ColData::I64(v.iter().map(|x| Some(*x)).collect())
}
fn strs(v: &[&str]) -> ColData {
    ColData::Str(v.iter().map(|x| Some(x.to_string())).collect())
}
fn ostrs(v: &[Option<&str>]) -> ColData {
    ColData::Str(v.iter().map(|x| x.map(str::to_string)).collect())
}
fn dates(v: &[Option<&str>]) -> ColData {
    ColData::Date32(
        v.iter()
            .map(|x| x.map(|s| parse_ymd(s).unwrap() as i32))
            .collect(),
    )
}
fn instant_ms(s: &str) -> i64 {
    let t = chrono::DateTime::parse_from_rfc3339(s).unwrap();
    t.timestamp_millis()
}
/// Timestamps (ms, annotated UTC) from RFC 3339 strings.
fn ts(v: &[&str]) -> ColData {
    ColData::Ts(
        v.iter().map(|s| Some(instant_ms(s))).collect(),
        TimeUnit::Millisecond,
        Some("UTC".into()),
    )
}
fn dec2(v: &[Option<&str>]) -> ColData {
    ColData::Dec128(
        v.iter()
            .map(|x| x.map(|s| Dec::parse(s).unwrap().scaled(2).round_half_away().unwrap()))
            .collect(),
        12,
        2,
    )
}
fn lists(v: &[Option<&[&str]>]) -> ColData {
    ColData::ListStr(
        v.iter()
            .map(|x| x.map(|l| l.iter().map(|s| s.to_string()).collect()))
            .collect(),
    )
}

/// Members of one segment with `rule`, sorted ids.
fn members(data: &RefData, rule: Value, as_of: &str) -> Vec<String> {
    let seg = json!({"code": "t", "name": "t", "mode": "dynamic", "active": true, "rule": rule});
    let r = evaluate(data, &seg, as_of).unwrap_or_else(|e| panic!("{e}"));
    r["t"].iter().cloned().collect()
}

fn err(data: &RefData, rule: Value) -> String {
    let seg = json!({"code": "t", "rule": rule});
    evaluate(data, &seg, "2024-01-01").expect_err("should be an error")
}

fn ids(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn day(s: &str) -> i128 {
    parse_ymd(s).unwrap()
}

fn range_str(w: Win, d: &str) -> (String, String) {
    let (lo, hi) = w.range(day(d));
    (
        lo.map_or("-inf".into(), crate::cal::fmt_day),
        hi.map_or("+inf".into(), crate::cal::fmt_day),
    )
}

fn r(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

// ---------------------------------------------------------------------------
// windows (SPEC §2.3)
// ---------------------------------------------------------------------------

#[test]
fn window_ranges() {
    // 2024-03-31 is a Sunday; weeks run Monday..Sunday.
    assert_eq!(
        range_str(Win::ThisWeek, "2024-03-31"),
        r("2024-03-25", "2024-03-31")
    );
    assert_eq!(
        range_str(Win::LastWeek, "2024-03-31"),
        r("2024-03-18", "2024-03-24")
    );
    assert_eq!(
        range_str(Win::CurrentWeek, "2024-03-31"),
        r("2024-03-25", "2024-03-31")
    );
    // A Monday.
    assert_eq!(
        range_str(Win::ThisWeek, "2024-03-25"),
        r("2024-03-25", "2024-03-25")
    );
    assert_eq!(
        range_str(Win::CurrentWeek, "2024-03-25"),
        r("2024-03-25", "2024-03-31")
    );
    assert_eq!(
        range_str(Win::LastWeek, "2024-01-01"),
        r("2023-12-25", "2023-12-31")
    );
    assert_eq!(
        range_str(Win::Today, "2024-01-01"),
        r("2024-01-01", "2024-01-01")
    );
    assert_eq!(
        range_str(Win::Yesterday, "2024-01-01"),
        r("2023-12-31", "2023-12-31")
    );
    assert_eq!(
        range_str(Win::PreviousMonth, "2024-01-01"),
        r("2023-12-01", "2023-12-31")
    );
    assert_eq!(
        range_str(Win::PreviousMonth, "2024-03-15"),
        r("2024-02-01", "2024-02-29")
    );
    assert_eq!(
        range_str(Win::CurrentMonth, "2023-02-10"),
        r("2023-02-01", "2023-02-28")
    );
    assert_eq!(
        range_str(Win::MonthToDate, "2023-02-10"),
        r("2023-02-01", "2023-02-10")
    );
    assert_eq!(
        range_str(Win::YearToDate, "2024-01-01"),
        r("2024-01-01", "2024-01-01")
    );
    assert_eq!(
        range_str(Win::LastYear, "2024-06-30"),
        r("2023-01-01", "2023-12-31")
    );
    assert_eq!(
        range_str(Win::AllTime, "2024-06-30"),
        r("-inf", "2024-06-30")
    );
    assert_eq!(
        range_str(Win::LastDays(1), "2024-06-30"),
        r("2024-06-30", "2024-06-30")
    );
    assert_eq!(
        range_str(Win::LastDays(30), "2024-03-01"),
        r("2024-02-01", "2024-03-01")
    );
    assert_eq!(
        range_str(Win::NextDays(7), "2024-02-26"),
        r("2024-02-26", "2024-03-03")
    );
    assert_eq!(
        range_str(Win::Relative(-3, 2), "2024-03-01"),
        r("2024-02-27", "2024-03-03")
    );
    assert_eq!(
        range_str(Win::Since(day("2024-02-01")), "2024-03-01"),
        r("2024-02-01", "2024-03-01")
    );
    assert_eq!(
        range_str(Win::Before(day("2024-02-01")), "2024-03-01"),
        r("-inf", "2024-01-31")
    );
    // last_months: (D minus N months, day clamped) + 1 day … D.
    assert_eq!(
        range_str(Win::LastMonths(1), "2024-03-31"),
        r("2024-03-01", "2024-03-31")
    );
    assert_eq!(
        range_str(Win::LastMonths(1), "2024-03-30"),
        r("2024-03-01", "2024-03-30")
    );
    assert_eq!(
        range_str(Win::LastMonths(1), "2024-03-28"),
        r("2024-02-29", "2024-03-28")
    );
    assert_eq!(
        range_str(Win::LastMonths(1), "2023-03-31"),
        r("2023-03-01", "2023-03-31")
    );
    assert_eq!(
        range_str(Win::LastMonths(3), "2024-05-31"),
        r("2024-03-01", "2024-05-31")
    );
    assert_eq!(
        range_str(Win::LastMonths(12), "2024-02-29"),
        r("2023-03-01", "2024-02-29")
    );
    assert_eq!(
        range_str(Win::LastMonths(1), "2024-01-15"),
        r("2023-12-16", "2024-01-15")
    );
    assert_eq!(
        range_str(Win::LastMonths(14), "2024-01-31"),
        r("2022-12-01", "2024-01-31")
    );
}

fn date_customers(name: &str, col: &str, vals: &[Option<&str>]) -> (Fx, RefData) {
    let fx = Fx::new(name);
    let n = vals.len() as i64;
    fx.table(
        "customers.parquet",
        vec![
            ("customer_id", ints(&(1..=n).collect::<Vec<_>>())),
            (col, dates(vals)),
        ],
    )
    .no_purchases();
    let data = fx.load("UTC");
    (fx, data)
}

#[test]
fn attribute_windows_see_future_days_and_since_after_d_is_empty() {
    let (_fx, data) = date_customers(
        "futwin",
        "med_id_expires_on",
        &[
            Some("2024-05-31"),
            Some("2024-06-01"),
            Some("2024-06-30"),
            Some("2024-07-01"),
            Some("2020-01-01"),
            None,
        ],
    );
    let w =
        |w: Value, at: &str| members(&data, json!({"attr": "med_id_expires_on", "window": w}), at);
    assert_eq!(w(json!({"next_days": 30}), "2024-06-01"), ids(&["2", "3"]));
    assert_eq!(w(json!("current_month"), "2024-06-01"), ids(&["2", "3"]));
    assert_eq!(
        w(json!({"relative_days": [-1, 29]}), "2024-06-01"),
        ids(&["1", "2", "3"])
    );
    // all_time on an attribute is every day up to D.
    assert_eq!(w(json!("all_time"), "2024-06-01"), ids(&["1", "2", "5"]));
    // before: no lower bound, and no clip at D.
    assert_eq!(
        w(json!({"before": "2024-07-01"}), "2024-06-01"),
        ids(&["1", "2", "3", "5"])
    );
    assert_eq!(w(json!({"since": "2024-06-02"}), "2024-06-01"), ids(&[]));
    assert_eq!(
        w(json!({"since": "2024-05-31"}), "2024-06-01"),
        ids(&["1", "2"])
    );
    assert_eq!(w(json!({"last_months": 3}), "2024-05-31"), ids(&["1"]));
    // not of a window includes the null date.
    assert_eq!(
        members(
            &data,
            json!({"not": {"attr": "med_id_expires_on", "window": "all_time"}}),
            "2024-06-01"
        ),
        ids(&["3", "4", "6"])
    );
    // Comparisons with dates; null never matches.
    assert_eq!(
        members(
            &data,
            json!({"attr": "med_id_expires_on", "gte": "2024-06-01", "lt": "2024-07-01"}),
            "2024-01-01"
        ),
        ids(&["2", "3"])
    );
    assert_eq!(
        members(
            &data,
            json!({"attr": "med_id_expires_on", "between": ["2024-05-31", "2024-06-01"]}),
            "2024-01-01"
        ),
        ids(&["1", "2"])
    );
    assert_eq!(
        members(
            &data,
            json!({"attr": "med_id_expires_on", "in": ["2020-01-01", "2024-07-01"]}),
            "2024-01-01"
        ),
        ids(&["4", "5"])
    );
    assert_eq!(
        members(
            &data,
            json!({"attr": "med_id_expires_on", "not_in": ["2020-01-01"]}),
            "2024-01-01"
        ),
        ids(&["1", "2", "3", "4", "6"])
    );
}

// ---------------------------------------------------------------------------
// anniversaries and age
// ---------------------------------------------------------------------------

#[test]
fn anniversary_leap_day_and_wrap() {
    let births = [
        Some("2000-02-29"), // 1
        Some("2001-02-28"), // 2
        Some("1999-03-01"), // 3
        Some("1980-12-02"), // 4
        Some("1980-01-03"), // 5
        Some("1980-12-01"), // 6
        Some("1980-01-04"), // 7
        Some("1980-12-31"), // 8
        None,               // 9
    ];
    let (_fx, data) = date_customers("anniv", "birth_date", &births);
    let a =
        |w: Value, at: &str| members(&data, json!({"attr": "birth_date", "anniversary": w}), at);
    // A non-leap year: 29 February counts as 28 February.
    assert_eq!(a(json!("today"), "2023-02-28"), ids(&["1", "2"]));
    assert_eq!(a(json!("today"), "2023-03-01"), ids(&["3"]));
    // A leap year: the 29th is its own day.
    assert_eq!(a(json!("today"), "2024-02-28"), ids(&["2"]));
    assert_eq!(a(json!("today"), "2024-02-29"), ids(&["1"]));
    assert_eq!(a(json!("yesterday"), "2024-03-01"), ids(&["1"]));
    // month_days are literal: a range ending 02-28 does not take 29 February.
    assert_eq!(
        a(json!({"month_days": ["02-01", "02-28"]}), "2023-06-01"),
        ids(&["2"])
    );
    assert_eq!(
        a(json!({"month_days": ["02-28", "03-01"]}), "2023-06-01"),
        ids(&["1", "2", "3"])
    );
    assert_eq!(
        a(json!({"month_days": ["02-29", "02-29"]}), "2023-06-01"),
        ids(&["1"])
    );
    // Wrapping the year: 2 December … 3 January.
    assert_eq!(
        a(json!({"month_days": ["12-02", "01-03"]}), "2023-06-01"),
        ids(&["4", "5", "8"])
    );
    // A real-day window that wraps the year.
    assert_eq!(a(json!({"next_days": 7}), "2023-12-28"), ids(&["5", "8"]));
    assert_eq!(
        a(json!({"relative_days": [-26, 6]}), "2023-12-28"),
        ids(&["4", "5", "8"])
    );
    assert_eq!(
        a(json!({"relative_days": [-27, 6]}), "2023-12-28"),
        ids(&["4", "5", "6", "8"])
    );
    // 2023-03-02 … 2024-02-28 (364 days): no 29 Feb and no non-leap 28 Feb,
    // and 1 March is not in it either.
    assert_eq!(
        a(json!({"last_days": 364}), "2024-02-28"),
        ids(&["2", "4", "5", "6", "7", "8"])
    );
    // A window of a year or more covers every month-day (2023-03-01 … 2024-02-28).
    assert_eq!(
        a(json!({"last_days": 365}), "2024-02-28"),
        ids(&["1", "2", "3", "4", "5", "6", "7", "8"])
    );
    // A window reaching a non-leap 28 February takes 29 February births.
    assert_eq!(
        a(json!({"last_days": 3}), "2023-03-01"),
        ids(&["1", "2", "3"])
    );
    assert_eq!(a(json!("all_time"), "2023-03-01").len(), 8);
    assert_eq!(a(json!({"since": "2023-03-02"}), "2023-03-01"), ids(&[]));
}

#[test]
fn age_by_month_and_day() {
    let (_fx, data) = date_customers(
        "age",
        "birth_date",
        &[
            Some("2000-02-29"),
            Some("2000-03-01"),
            Some("2000-02-28"),
            None,
        ],
    );
    let older = |at: &str| members(&data, json!({"attr": "age", "gte": 23}), at);
    assert_eq!(older("2023-02-27"), ids(&[]));
    assert_eq!(older("2023-02-28"), ids(&["3"]));
    // Born on 29 February: a year older on 1 March in a year without 29 February.
    assert_eq!(older("2023-03-01"), ids(&["1", "2", "3"]));
    let exactly = |n: i64, at: &str| members(&data, json!({"attr": "age", "eq": n}), at);
    assert_eq!(exactly(23, "2024-02-28"), ids(&["1", "2"]));
    assert_eq!(exactly(24, "2024-02-29"), ids(&["1", "3"]));
    assert_eq!(
        members(&data, json!({"attr": "age", "is_null": true}), "2024-02-29"),
        ids(&["4"])
    );
    assert_eq!(
        members(
            &data,
            json!({"attr": "age", "between": [22.5, 23.5]}),
            "2023-06-01"
        ),
        ids(&["1", "2", "3"])
    );
    assert_eq!(
        members(&data, json!({"attr": "age", "not_in": [23]}), "2023-06-01"),
        ids(&["4"])
    );
}

// ---------------------------------------------------------------------------
// time zones, DST and the as-of clip
// ---------------------------------------------------------------------------

/// One customer per order, one line per order, in America/New_York.
fn dst_fixture(name: &str) -> (Fx, RefData) {
    let fx = Fx::new(name);
    let times = [
        "2024-03-11T03:59:59.999Z", // 1: local 2024-03-10 23:59:59.999 EDT
        "2024-03-11T04:00:00Z",     // 2: local 2024-03-11 00:00 EDT
        "2024-03-10T04:59:59Z",     // 3: local 2024-03-09 23:59:59 EST
        "2024-03-10T05:00:00Z",     // 4: local 2024-03-10 00:00 EST
        "2024-11-04T04:30:00Z",     // 5: local 2024-11-03 23:30 EST (25-hour day)
        "2024-11-03T03:59:00Z",     // 6: local 2024-11-02 23:59 EDT
    ];
    let n = times.len() as i64;
    let idv: Vec<i64> = (1..=n).collect();
    fx.table("customers.parquet", vec![("customer_id", ints(&idv))]);
    fx.table("products.parquet", vec![("product_id", ints(&[1]))]);
    fx.table(
        "orders.parquet",
        vec![
            ("order_id", ints(&idv)),
            ("customer_id", ints(&idv)),
            ("ordered_at", ts(&times)),
        ],
    );
    fx.table(
        "order_lines.parquet",
        vec![
            ("order_id", ints(&idv)),
            ("product_id", ints(&vec![1; n as usize])),
            ("quantity", ints(&vec![1; n as usize])),
            ("line_total", dec2(&vec![Some("1.00"); n as usize])),
        ],
    );
    let data = fx.load("America/New_York");
    (fx, data)
}

#[test]
fn dst_days_and_the_as_of_clip() {
    let (_fx, data) = dst_fixture("dst");
    let bought = |w: Value, at: &str| members(&data, json!({"purchased": {"window": w}}), at);
    // A date as-of is the whole local day: the clip is the start of 2024-03-11 (04:00Z).
    assert_eq!(bought(json!("today"), "2024-03-10"), ids(&["1", "4"]));
    assert_eq!(
        bought(json!("all_time"), "2024-03-10"),
        ids(&["1", "3", "4"])
    );
    assert_eq!(bought(json!("yesterday"), "2024-03-10"), ids(&["3"]));
    // An instant: purchases after it do not count.
    assert_eq!(
        bought(json!("today"), "2024-03-10T12:00:00-04:00"),
        ids(&["4"])
    );
    assert_eq!(bought(json!("today"), "2024-03-11T03:59:59Z"), ids(&["4"]));
    // A purchase exactly at the as-of instant counts.
    assert_eq!(
        bought(json!("today"), "2024-03-11T00:00:00-04:00"),
        ids(&["2"])
    );
    assert_eq!(
        bought(json!("today"), "2024-03-11T03:59:59.999Z"),
        ids(&["1", "4"])
    );
    assert_eq!(
        bought(json!("yesterday"), "2024-03-11T00:00:00-04:00"),
        ids(&["1", "4"])
    );
    // D is the local date of the instant in the index zone, whatever the offset written:
    // 2024-03-10T23:30-08:00 is 2024-03-11 03:30 in New York.
    assert_eq!(
        bought(json!("today"), "2024-03-10T23:30:00-08:00"),
        ids(&["2"])
    );
    assert_eq!(
        bought(json!("today"), "2024-03-11T08:59:59+05:00"),
        ids(&["4"])
    );
    // Future-day windows on purchases are clipped.
    assert_eq!(
        bought(json!({"next_days": 3}), "2024-03-10"),
        ids(&["1", "4"])
    );
    assert_eq!(
        bought(json!("current_week"), "2024-03-10"),
        ids(&["1", "3", "4"])
    );
    // Fall back: 2024-11-03 has 25 hours.
    assert_eq!(bought(json!("today"), "2024-11-03"), ids(&["5"]));
    assert_eq!(bought(json!("yesterday"), "2024-11-03"), ids(&["6"]));
    // Weeks: 2024-03-11 is a Monday.
    assert_eq!(bought(json!("this_week"), "2024-03-11"), ids(&["2"]));
    assert_eq!(
        bought(json!("last_week"), "2024-03-11"),
        ids(&["1", "3", "4"])
    );
}

#[test]
fn timestamp_attributes_compare_by_local_day() {
    let fx = Fx::new("tsattr");
    fx.table(
        "customers.parquet",
        vec![
            ("customer_id", ints(&[1, 2, 3])),
            (
                "registered_at",
                ts(&[
                    "2024-03-11T03:00:00Z", // local 2024-03-10 23:00 EDT
                    "2024-03-11T04:00:00Z", // local 2024-03-11 00:00
                    "2024-03-10T04:30:00Z", // local 2024-03-09 23:30 EST
                ]),
            ),
        ],
    )
    .no_purchases();
    let data = fx.load("America/New_York");
    let m = |rule: Value| members(&data, rule, "2024-03-11");
    assert_eq!(
        m(json!({"attr": "registered_at", "eq": "2024-03-10"})),
        ids(&["1"])
    );
    assert_eq!(
        m(json!({"attr": "registered_at", "gt": "2024-03-10"})),
        ids(&["2"])
    );
    assert_eq!(
        m(json!({"attr": "registered_at", "window": "yesterday"})),
        ids(&["1"])
    );
    assert_eq!(
        m(json!({"attr": "registered_at", "window": "today"})),
        ids(&["2"])
    );
    assert_eq!(
        m(json!({"attr": "registered_at", "anniversary": {"month_days": ["03-09", "03-09"]}})),
        ids(&["3"])
    );
    // The same data in UTC gives other local days.
    let data = fx.load("UTC");
    let m = |rule: Value| members(&data, rule, "2024-03-11");
    assert_eq!(
        m(json!({"attr": "registered_at", "eq": "2024-03-10"})),
        ids(&["3"])
    );
    assert_eq!(
        m(json!({"attr": "registered_at", "eq": "2024-03-11"})),
        ids(&["1", "2"])
    );
}

#[test]
fn half_hour_and_quarter_hour_zones() {
    // Lord Howe (+10:30 / +11) and Chatham (+12:45 / +13:45).
    let (fx, _) = dst_fixture("zones");
    let data = fx.load("Australia/Lord_Howe");
    // 2024-03-10T13:30Z is local midnight 2024-03-11 (+11:00); 2024-03-11T03:59:59.999Z
    // is 2024-03-11 14:59 local.
    assert_eq!(
        members(
            &data,
            json!({"purchased": {"window": "today"}}),
            "2024-03-11"
        ),
        ids(&["1", "2"])
    );
    let data = fx.load("Pacific/Chatham");
    // Chatham is +13:45 in March: 2024-03-10T05:00Z is 18:45 on the 10th.
    assert_eq!(
        members(
            &data,
            json!({"purchased": {"window": "today"}}),
            "2024-03-10"
        ),
        ids(&["3", "4"])
    );
}

// ---------------------------------------------------------------------------
// purchases: measures, money, where
// ---------------------------------------------------------------------------

/// Customers 1..=5; products 10 (PP Flower, tags [sale], strain Indica),
/// 11 (CC Prerolls, tags [], strain null), 12 (PP Prerolls, tags null, Sativa).
fn shop(name: &str, denormalized: bool) -> (Fx, RefData) {
    let fx = Fx::new(name);
    fx.table(
        "customers.parquet",
        vec![("customer_id", ints(&[1, 2, 3, 4, 5]))],
    );
    fx.table(
        "products.parquet",
        vec![
            ("product_id", ints(&[10, 11, 12])),
            ("brand", strs(&["PP", "CC", "PP"])),
            ("product_type", strs(&["Flower", "Prerolls", "Prerolls"])),
            ("strain", ostrs(&[Some("Indica"), None, Some("Sativa")])),
            ("tags", lists(&[Some(&["sale"]), Some(&[]), None])),
        ],
    );
    // order: (id, customer, time, payment, offer)
    let orders: [(i64, i64, &str, &str, Option<&str>); 6] = [
        (100, 1, "2024-01-10T12:00:00Z", "cash", None),
        (101, 1, "2024-01-11T12:00:00Z", "card", Some("")),
        (102, 1, "2024-01-12T12:00:00Z", "card", Some("VIP")),
        (200, 2, "2024-01-10T12:00:00Z", "cash", Some("VIP")),
        (300, 3, "2024-01-10T12:00:00Z", "cash", None),
        (400, 4, "2024-02-10T12:00:00Z", "debit", None),
    ];
    // line: (order, product, qty, total)
    let lines: [(i64, i64, i64, Option<&str>); 9] = [
        (100, 10, 1, Some("33.33")),
        (101, 11, 2, Some("33.33")),
        (102, 12, 0, Some("33.34")),
        (200, 10, 1, Some("10.00")),
        (200, 11, 3, Some("20.00")),
        (300, 12, 5, None),
        (400, 11, 1, Some("5.00")),
        (999, 10, 1, Some("7.00")), // unknown order: skipped
        (400, 77, 1, Some("9.00")), // unknown product: skipped
    ];
    let mut lcols = vec![
        (
            "order_id",
            ints(&lines.iter().map(|l| l.0).collect::<Vec<_>>()),
        ),
        (
            "product_id",
            ints(&lines.iter().map(|l| l.1).collect::<Vec<_>>()),
        ),
        (
            "quantity",
            ints(&lines.iter().map(|l| l.2).collect::<Vec<_>>()),
        ),
        (
            "line_total",
            dec2(&lines.iter().map(|l| l.3).collect::<Vec<_>>()),
        ),
    ];
    let ocols = |rows: &[(i64, i64, &str, &str, Option<&str>)]| {
        vec![
            (
                "customer_id",
                ints(&rows.iter().map(|o| o.1).collect::<Vec<_>>()),
            ),
            (
                "ordered_at",
                ts(&rows.iter().map(|o| o.2).collect::<Vec<_>>()),
            ),
            (
                "payment_method",
                strs(&rows.iter().map(|o| o.3).collect::<Vec<_>>()),
            ),
            (
                "offer_code",
                ostrs(&rows.iter().map(|o| o.4).collect::<Vec<_>>()),
            ),
        ]
    };
    if denormalized {
        // Each line carries its order's columns; line 8 (order 999) has customer 9 (unknown).
        let mut rows = Vec::new();
        for l in &lines {
            let o = orders.iter().find(|o| o.0 == l.0).copied().unwrap_or((
                999,
                9,
                "2024-01-10T12:00:00Z",
                "cash",
                None,
            ));
            rows.push(o);
        }
        lcols.extend(ocols(&rows));
    } else {
        let mut cols = vec![(
            "order_id",
            ints(&orders.iter().map(|o| o.0).collect::<Vec<_>>()),
        )];
        cols.extend(ocols(&orders));
        fx.table("orders.parquet", cols);
    }
    fx.table("order_lines.parquet", lcols);
    let data = fx.load("UTC");
    assert_eq!(data.skipped_lines(), 2);
    (fx, data)
}

#[test]
fn measures_and_exact_money() {
    for denorm in [false, true] {
        let (_fx, data) = shop(if denorm { "measures_d" } else { "measures" }, denorm);
        let h = |having: Value| {
            members(
                &data,
                json!({"purchased": {"having": having}}),
                "2024-06-01",
            )
        };
        // Customer 1: 3 orders, 3 lines, 3 units, 100.00. 2: 1 order, 2 lines, 4 units, 30.00.
        // 3: 1 order, 1 line (null total), 5 units, 0.00. 4: 1 order, 5.00. 5: nothing.
        assert_eq!(h(json!({"orders": {"eq": 3}})), ids(&["1"]));
        assert_eq!(h(json!({"lines": {"gte": 2}})), ids(&["1", "2"]));
        assert_eq!(h(json!({"units": {"gt": 3}})), ids(&["2", "3"]));
        assert_eq!(h(json!({"spend": {"eq": 100}})), ids(&["1"]));
        assert_eq!(
            h(json!({"spend": {"gt": 99.999, "lt": 100.001}})),
            ids(&["1"])
        );
        assert_eq!(h(json!({"spend": {"between": [5, 30]}})), ids(&["2", "4"]));
        // Measures that hold at zero include customers who bought nothing.
        assert_eq!(h(json!({"spend": {"lt": 50}})), ids(&["2", "3", "4", "5"]));
        assert_eq!(h(json!({"orders": {"lte": 0}})), ids(&["5"]));
        // A null line_total is 0 spend but still a line and an order.
        assert_eq!(h(json!({"spend": {"eq": 0}})), ids(&["3", "5"]));
        assert_eq!(
            h(json!({"spend": {"eq": 0}, "lines": {"eq": 1}})),
            ids(&["3"])
        );
        // avg_order_value is the exact ratio: 100.00 / 3 = 33.333…
        assert_eq!(h(json!({"avg_order_value": {"eq": 33.33}})), ids(&[]));
        assert_eq!(
            h(json!({"avg_order_value": {"gt": 33.333, "lt": 33.334}})),
            ids(&["1"])
        );
        assert_eq!(
            h(json!({"avg_order_value": {"lte": 33.333}})),
            ids(&["2", "3", "4"])
        );
        assert_eq!(h(json!({"avg_order_value": {"eq": 30}})), ids(&["2"]));
        // Never true with no orders.
        assert_eq!(
            h(json!({"avg_order_value": {"lt": 1000}})),
            ids(&["1", "2", "3", "4"])
        );
        // having {} = no having = at least one kept line.
        assert_eq!(h(json!({})), ids(&["1", "2", "3", "4"]));
        assert_eq!(
            members(&data, json!({"purchased": {}}), "2024-06-01"),
            ids(&["1", "2", "3", "4"])
        );
        // Windows and the clip on purchases.
        let w = |win: Value, at: &str| members(&data, json!({"purchased": {"window": win}}), at);
        assert_eq!(w(json!("today"), "2024-01-11"), ids(&["1"]));
        assert_eq!(w(json!("all_time"), "2024-01-10"), ids(&["1", "2", "3"]));
        assert_eq!(
            w(json!("previous_month"), "2024-02-29"),
            ids(&["1", "2", "3"])
        );
        assert_eq!(
            members(
                &data,
                json!({"purchased": {"window": {"last_days": 2}, "having": {"orders": {"eq": 2}}}}),
                "2024-01-12"
            ),
            ids(&["1"])
        );
    }
}

#[test]
fn same_line_where_and_not_in() {
    for denorm in [false, true] {
        let (_fx, data) = shop(if denorm { "where_d" } else { "where" }, denorm);
        let w = |wh: Value| members(&data, json!({"purchased": {"where": wh}}), "2024-06-01");
        // Customer 2 bought a PP Flower and a CC Preroll, never a PP Preroll.
        assert_eq!(
            w(json!({"brand": ["PP"], "product_type": ["Prerolls"]})),
            ids(&["1", "3"])
        );
        assert_eq!(w(json!({"brand": ["PP"]})), ids(&["1", "2", "3"]));
        // Order attributes on the same line.
        assert_eq!(
            w(json!({"brand": ["PP"], "payment_method": ["cash"]})),
            ids(&["1", "2", "3"])
        );
        assert_eq!(
            w(json!({"product_type": ["Prerolls"], "payment_method": ["cash"]})),
            ids(&["2", "3"])
        );
        assert_eq!(
            w(json!({"offer_code": ["VIP"], "brand": ["PP"]})),
            ids(&["1", "2"])
        );
        // not_in keeps null values (and the empty string is a value).
        assert_eq!(
            w(json!({"offer_code": {"not_in": ["VIP"]}})),
            ids(&["1", "3", "4"])
        );
        assert_eq!(w(json!({"offer_code": [""]})), ids(&["1"]));
        assert_eq!(
            w(json!({"offer_code": {"not_in": ["VIP", ""]}, "brand": ["PP"]})),
            ids(&["1", "3"])
        );
        assert_eq!(
            w(json!({"strain": {"not_in": ["Indica"]}})),
            ids(&["1", "2", "3", "4"])
        );
        assert_eq!(
            w(json!({"strain": {"not_in": ["Indica", "Sativa"]}})),
            ids(&["1", "2", "4"])
        );
        assert_eq!(
            w(json!({"strain": ["Indica", "Sativa"]})),
            ids(&["1", "2", "3"])
        );
        // product_tag: not_in keeps products without tags (empty list or null).
        assert_eq!(w(json!({"product_tag": ["sale"]})), ids(&["1", "2"]));
        assert_eq!(
            w(json!({"product_tag": {"not_in": ["sale"]}})),
            ids(&["1", "2", "3", "4"])
        );
        assert_eq!(
            w(json!({"product_tag": {"not_in": ["sale"]}, "brand": ["PP"]})),
            ids(&["1", "3"])
        );
        assert_eq!(w(json!({"brand": []})), ids(&[]));
        assert_eq!(
            w(json!({"brand": {"not_in": []}})),
            ids(&["1", "2", "3", "4"])
        );
        // where with having: units of PP Prerolls.
        assert_eq!(
            members(
                &data,
                json!({"purchased": {"where": {"brand": ["PP"], "product_type": ["Prerolls"]},
                                     "having": {"units": {"gte": 1}}}}),
                "2024-06-01"
            ),
            ids(&["3"])
        );
        // A where key whose column is missing is an error.
        assert!(
            err(
                &data,
                json!({"purchased": {"where": {"channel": ["online"]}}})
            )
            .contains("channel")
        );
        assert!(err(&data, json!({"purchased": {"where": {"store": [1]}}})).contains("store_id"));
    }
}

#[test]
fn denormalized_lines_use_their_own_time_and_customer() {
    let fx = Fx::new("denorm_own");
    fx.table(
        "customers.parquet",
        vec![("customer_id", strs(&["7", "007"]))],
    );
    fx.table("products.parquet", vec![("product_id", strs(&["p"]))]);
    // One order_id "A" whose lines belong to two customers and straddle midnight.
    fx.table(
        "order_lines.parquet",
        vec![
            ("order_id", strs(&["A", "A", "A"])),
            ("product_id", strs(&["p", "p", "p"])),
            ("quantity", ints(&[1, 1, 1])),
            ("line_total", dec2(&[Some("1"), Some("2"), Some("4")])),
            ("customer_id", strs(&["7", "7", "007"])),
            (
                "ordered_at",
                ts(&[
                    "2024-01-01T23:59:00Z",
                    "2024-01-02T00:01:00Z",
                    "2024-01-02T00:02:00Z",
                ]),
            ),
        ],
    );
    let data = fx.load("UTC");
    let m = |rule: Value, at: &str| members(&data, rule, at);
    assert_eq!(
        m(json!({"purchased": {"window": "today"}}), "2024-01-01"),
        ids(&["7"])
    );
    assert_eq!(
        m(json!({"purchased": {"window": "today"}}), "2024-01-02"),
        ids(&["007", "7"])
    );
    assert_eq!(
        m(
            json!({"purchased": {"having": {"spend": {"eq": 3}, "orders": {"eq": 1}}}}),
            "2024-01-02"
        ),
        ids(&["7"])
    );
    assert_eq!(
        m(
            json!({"purchased": {"window": "today", "having": {"spend": {"eq": 2}}}}),
            "2024-01-02"
        ),
        ids(&["7"])
    );
    // String ids compare exactly: "7" and "007" differ; unknown ids are ignored.
    assert_eq!(
        m(json!({"customers": ["007", "0007"]}), "2024-01-02"),
        ids(&["007"])
    );
    assert!(err(&data, json!({"customers": [7]})).contains("strings"));
}

#[test]
fn line_total_rounding_half_away_from_zero() {
    let fx = Fx::new("rounding");
    fx.table(
        "customers.parquet",
        vec![("customer_id", ints(&[1, 2, 3, 4, 5]))],
    );
    fx.table("products.parquet", vec![("product_id", ints(&[1]))]);
    fx.table(
        "orders.parquet",
        vec![
            ("order_id", ints(&[1, 2, 3, 4, 5])),
            ("customer_id", ints(&[1, 2, 3, 4, 5])),
            ("ordered_at", ts(&["2024-01-01T00:00:00Z"; 5])),
        ],
    );
    let orders = ints(&[1, 2, 3, 4, 5, 5]);
    let lines_f = |totals: ColData| {
        vec![
            ("order_id", orders.clone()),
            ("product_id", ints(&[1; 6])),
            ("quantity", ints(&[1; 6])),
            ("line_total", totals),
        ]
    };
    // Floats: the shortest round-trip decimal is rounded half away from zero.
    fx.table(
        "order_lines.parquet",
        lines_f(ColData::F64(vec![
            Some(2.675),
            Some(1.005),
            Some(-1.005),
            Some(0.004999),
            Some(0.125),
            Some(0.125),
        ])),
    );
    let data = fx.load("UTC");
    let spend = |x: Value| {
        members(
            &data,
            json!({"purchased": {"having": {"spend": {"eq": x}}}}),
            "2024-02-01",
        )
    };
    assert_eq!(spend(json!(2.68)), ids(&["1"]));
    assert_eq!(spend(json!(1.01)), ids(&["2"]));
    assert_eq!(spend(json!(-1.01)), ids(&["3"]));
    assert_eq!(spend(json!(0)), ids(&["4"]));
    // Each line is rounded, then summed: 0.13 + 0.13.
    assert_eq!(spend(json!(0.26)), ids(&["5"]));
    // Decimals with scale 4.
    fx.table(
        "order_lines.parquet",
        lines_f(ColData::Dec128(
            vec![
                Some(26750),
                Some(10049),
                Some(-10050),
                Some(50),
                Some(-49),
                None,
            ],
            14,
            4,
        )),
    );
    let data = fx.load("UTC");
    let spend = |x: Value| {
        members(
            &data,
            json!({"purchased": {"having": {"spend": {"eq": x}}}}),
            "2024-02-01",
        )
    };
    assert_eq!(spend(json!(2.68)), ids(&["1"]));
    assert_eq!(spend(json!(1.0)), ids(&["2"]));
    assert_eq!(spend(json!(-1.01)), ids(&["3"]));
    // 0.0050 rounds up to 0.01; -0.0049 + null is 0.00.
    assert_eq!(spend(json!(0.01)), ids(&["4"]));
    assert_eq!(spend(json!(0)), ids(&["5"]));
}

// ---------------------------------------------------------------------------
// attributes of every kind
// ---------------------------------------------------------------------------

fn people(name: &str) -> (Fx, RefData) {
    let fx = Fx::new(name);
    fx.table(
        "customers.parquet",
        vec![
            ("customer_id", ints(&[1, 2, 3, 4])),
            ("gender", ostrs(&[Some("F"), None, Some("M"), Some("")])),
            (
                "tags",
                lists(&[Some(&["a"]), Some(&[]), None, Some(&["b", "a"])]),
            ),
            (
                "home_store_id",
                ColData::I64(vec![Some(12), Some(7), None, Some(12)]),
            ),
            (
                "loyalty_points_lifetime",
                ColData::I64(vec![Some(10), Some(20), None, Some(30)]),
            ),
            (
                "score",
                ColData::F64(vec![Some(0.1), Some(2.5), Some(-1.0), None]),
            ),
            (
                "credit",
                ColData::Dec128(vec![Some(1050), None, Some(-1), Some(0)], 10, 2),
            ),
            (
                "vip",
                ColData::Bool(vec![Some(true), Some(false), None, Some(true)]),
            ),
            (
                "color",
                ostrs(&[Some("Red"), Some("red"), Some("Rot"), None]),
            ),
            ("first_name", strs(&["A", "B", "C", "D"])),
            (
                "odd",
                ColData::Ts(vec![None; 4], TimeUnit::Microsecond, None),
            ),
        ],
    )
    .no_purchases();
    let data = fx.load("UTC");
    (fx, data)
}

#[test]
fn categorical_multi_flag_and_numeric() {
    let (_fx, data) = people("kinds");
    let m = |rule: Value| members(&data, rule, "2024-01-01");
    assert_eq!(
        m(json!({"attr": "gender", "in": ["F", ""]})),
        ids(&["1", "4"])
    );
    assert_eq!(
        m(json!({"attr": "gender", "not_in": ["F"]})),
        ids(&["2", "3", "4"])
    );
    assert_eq!(m(json!({"attr": "gender", "is_null": true})), ids(&["2"]));
    assert_eq!(
        m(json!({"attr": "gender", "is_null": false})),
        ids(&["1", "3", "4"])
    );
    assert_eq!(m(json!({"attr": "tags", "in": ["a"]})), ids(&["1", "4"]));
    assert_eq!(
        m(json!({"attr": "tags", "not_in": ["a"]})),
        ids(&["2", "3"])
    );
    assert_eq!(
        m(json!({"attr": "tags", "is_null": true})),
        ids(&["2", "3"])
    );
    assert_eq!(
        m(json!({"attr": "tags", "all_of": ["a", "b"]})),
        ids(&["4"])
    );
    assert_eq!(
        m(json!({"attr": "tags", "all_of": ["a"]})),
        ids(&["1", "4"])
    );
    assert_eq!(
        m(json!({"attr": "home_store_id", "in": [12]})),
        ids(&["1", "4"])
    );
    assert_eq!(
        m(json!({"attr": "home_store_id", "not_in": [12]})),
        ids(&["2", "3"])
    );
    assert_eq!(
        m(json!({"attr": "customer_id", "in": [3, 99]})),
        ids(&["3"])
    );
    assert_eq!(m(json!({"attr": "vip", "in": [true]})), ids(&["1", "4"]));
    assert_eq!(
        m(json!({"attr": "vip", "not_in": [true]})),
        ids(&["2", "3"])
    );
    assert_eq!(m(json!({"attr": "vip", "is_null": true})), ids(&["3"]));
    assert_eq!(m(json!({"attr": "color", "in": ["red"]})), ids(&["2"]));
    assert_eq!(
        m(json!({"attr": "loyalty_points_lifetime", "gt": 10, "lte": 30})),
        ids(&["2", "4"])
    );
    assert_eq!(
        m(json!({"attr": "loyalty_points_lifetime", "between": [10, 20]})),
        ids(&["1", "2"])
    );
    assert_eq!(
        m(json!({"attr": "loyalty_points_lifetime", "in": [20, 30.0]})),
        ids(&["2", "4"])
    );
    assert_eq!(
        m(json!({"attr": "loyalty_points_lifetime", "not_in": [20]})),
        ids(&["1", "3", "4"])
    );
    assert_eq!(
        m(json!({"attr": "loyalty_points_lifetime", "lt": 10.5})),
        ids(&["1"])
    );
    assert_eq!(
        m(json!({"not": {"attr": "loyalty_points_lifetime", "gte": 0}})),
        ids(&["3"])
    );
    // Float values compare as their shortest decimal form: 0.1 is 0.1.
    assert_eq!(m(json!({"attr": "score", "eq": 0.1})), ids(&["1"]));
    assert_eq!(m(json!({"attr": "score", "lt": 0.1})), ids(&["3"]));
    assert_eq!(m(json!({"attr": "credit", "eq": 10.5})), ids(&["1"]));
    assert_eq!(m(json!({"attr": "credit", "lt": 0})), ids(&["3"]));
    assert_eq!(
        m(json!({"attr": "credit", "gte": -0.01, "lte": 0.0})),
        ids(&["3", "4"])
    );
    assert_eq!(m(json!({"all": []})), ids(&["1", "2", "3", "4"]));
    assert_eq!(m(json!({"any": []})), ids(&[]));
    assert_eq!(m(json!({"customers": [2, 4, 400]})), ids(&["2", "4"]));
    assert_eq!(
        m(
            json!({"any": [{"attr": "gender", "in": ["F"]}, {"not": {"attr": "vip", "in": [false]}}]})
        ),
        ids(&["1", "3", "4"])
    );
}

#[test]
fn segment_references_and_errors() {
    let (_fx, data) = people("refs");
    let segs = json!([
        {"code": "b", "name": "B", "mode": "static", "active": false,
         "rule": {"attr": "gender", "in": ["F", "M"]}},
        {"code": "a", "rule": {"all": [{"segment": "b"}, {"not": {"attr": "vip", "in": [true]}}]}},
        {"code": "c", "rule": {"segment": "a"}}
    ]);
    let r = evaluate(&data, &segs, "2024-01-01").unwrap();
    assert_eq!(r["b"].iter().cloned().collect::<Vec<_>>(), ids(&["1", "3"]));
    assert_eq!(r["a"].iter().cloned().collect::<Vec<_>>(), ids(&["3"]));
    assert_eq!(r["c"].iter().cloned().collect::<Vec<_>>(), ids(&["3"]));
    let cyc = json!([
        {"code": "x", "rule": {"segment": "y"}},
        {"code": "y", "rule": {"not": {"segment": "x"}}}
    ]);
    assert!(
        evaluate(&data, &cyc, "2024-01-01")
            .unwrap_err()
            .contains("cycle")
    );
    let selfref = json!({"code": "x", "rule": {"any": [{"segment": "x"}]}});
    assert!(
        evaluate(&data, &selfref, "2024-01-01")
            .unwrap_err()
            .contains("cycle")
    );

    let e = |rule: Value| err(&data, rule);
    assert!(
        e(json!({"all": [{"attr": "gender", "in": ["F"]}, {"attr": "nope", "in": ["x"]}]}))
            .contains("rule.all[1].attr")
    );
    assert!(e(json!({"attr": "gender", "gt": "F"})).contains("does not fit"));
    assert!(e(json!({"attr": "gender", "all_of": ["F"]})).contains("does not fit"));
    assert!(e(json!({"attr": "tags", "window": "today"})).contains("does not fit"));
    assert!(e(json!({"attr": "score", "anniversary": "today"})).contains("does not fit"));
    assert!(e(json!({"attr": "home_store_id", "in": ["12"]})).contains("does not fit"));
    assert!(e(json!({"attr": "gender", "in": [1]})).contains("does not fit"));
    assert!(e(json!({"attr": "vip", "in": ["true"]})).contains("does not fit"));
    assert!(e(json!({"attr": "loyalty_points_lifetime", "gt": "10"})).contains("does not fit"));
    assert!(e(json!({"attr": "loyalty_points_lifetime", "between": [20, 10]})).contains("greater"));
    assert!(e(json!({"attr": "gender", "in": ["F"], "not_in": ["M"]})).contains("combined"));
    assert!(e(json!({"attr": "gender", "is_null": "yes"})).contains("true or false"));
    assert!(e(json!({"attr": "first_name", "in": ["A"]})).contains("stored only"));
    // A timestamp column that is all null is still a date attribute.
    assert_eq!(
        members(&data, json!({"attr": "odd", "is_null": true}), "2024-01-01"),
        ids(&["1", "2", "3", "4"])
    );
    assert!(e(json!({"attr": "age", "gt": 3})).contains("birth_date"));
    assert!(e(json!({"attr": "strain", "in": ["x"]})).contains("unknown attribute"));
    assert!(e(json!({"segment": "zzz"})).contains("unknown segment"));
    assert!(e(json!({"customers": ["1"]})).contains("integers"));
    assert!(e(json!({"all": [], "any": []})).contains("exactly one"));
    assert!(e(json!({"bogus": []})).contains("unknown condition"));
    assert!(e(json!({"purchased": {"when": "today"}})).contains("unknown key"));
    assert!(e(json!({"purchased": {"window": {"last_days": 0}}})).contains("at least 1"));
    assert!(e(json!({"purchased": {"window": {"next_days": -2}}})).contains("at least 1"));
    assert!(e(json!({"purchased": {"window": {"last_months": 1.5}}})).contains("integer"));
    assert!(e(json!({"purchased": {"window": {"relative_days": [3, 1]}}})).contains("a > b"));
    assert!(
        e(json!({"purchased": {"window": {"between": ["2024-02-02", "2024-02-01"]}}}))
            .contains("after")
    );
    assert!(
        e(json!({"purchased": {"window": {"month_days": ["01-01", "01-02"]}}}))
            .contains("anniversary")
    );
    assert!(e(json!({"purchased": {"window": "tomorrow"}})).contains("unknown window"));
    assert!(e(json!({"purchased": {"window": {"since": "2024-02-30"}}})).contains("YYYY-MM-DD"));
    assert!(
        e(json!({"purchased": {"having": {"revenue": {"gt": 1}}}})).contains("unknown measure")
    );
    assert!(
        e(json!({"purchased": {"having": {"spend": {"above": 1}}}})).contains("unknown comparison")
    );
    assert!(e(json!({"purchased": {"having": {"spend": {}}}})).contains("no comparison"));
    assert!(e(json!({"purchased": {"having": {"spend": {"gt": "1"}}}})).contains("number"));
    assert!(e(json!({"purchased": {"where": {"sku": ["x"]}}})).contains("sku"));
    assert!(e(json!({"purchased": {"where": {"product_id": [1]}}})).contains("product_id"));
    let bad_seg = |s: Value| evaluate(&data, &s, "2024-01-01").unwrap_err();
    assert!(
        bad_seg(json!({"code": "t", "rule": {"all": []}, "owner": "me"})).contains("unknown key")
    );
    assert!(bad_seg(json!({"code": "T", "rule": {"all": []}})).contains("[a-z0-9_]+"));
    assert!(
        bad_seg(json!({"code": "t", "rule": {"all": []}, "mode": "sometimes"})).contains("mode")
    );
    assert!(
        bad_seg(json!([{"code": "t", "rule": {"all": []}}, {"code": "t", "rule": {"any": []}}]))
            .contains("duplicate")
    );
    assert!(
        evaluate(
            &data,
            &json!({"code": "t", "rule": {"all": []}}),
            "yesterday"
        )
        .is_err()
    );
}

#[test]
fn month_day_validation() {
    let (_fx, data) = date_customers("mdval", "birth_date", &[Some("2000-01-01")]);
    let e = |w: Value| err(&data, json!({"attr": "birth_date", "anniversary": w}));
    assert!(e(json!({"month_days": ["02-30", "03-01"]})).contains("month-day"));
    assert!(e(json!({"month_days": ["13-01", "03-01"]})).contains("month-day"));
    assert!(e(json!({"month_days": ["2-01", "03-01"]})).contains("MM-DD"));
    assert!(e(json!({"month_days": ["02-01"]})).contains("two"));
    assert!(e(json!({"last_days": 0})).contains("at least 1"));
    assert!(
        err(
            &data,
            json!({"attr": "birth_date", "window": {"month_days": ["01-01", "01-02"]}})
        )
        .contains("anniversary")
    );
    assert!(err(&data, json!({"attr": "birth_date", "gt": "2000-1-1"})).contains("does not fit"));
}

// ---------------------------------------------------------------------------
// loading: mapping, directories, bad input
// ---------------------------------------------------------------------------

#[test]
fn mapping_directories_and_excludes() {
    let fx = Fx::new("mapping");
    fx.table(
        "crm/members.parquet",
        vec![
            ("member_no", strs(&["a", "b", "c"])),
            (
                "dob",
                dates(&[Some("2000-01-01"), None, Some("1990-06-15")]),
            ),
            ("supplier_notes", strs(&["x", "y", "z"])),
        ],
    );
    fx.table(
        "catalog.parquet",
        vec![
            ("product_id", ints(&[1, 2])),
            ("category", strs(&["Edibles", "Flower"])),
            ("product_type", strs(&["junk", "junk"])),
        ],
    );
    // Lines split over two files, denormalized, with renamed columns.
    let part = |rel: &str, rows: &[(&str, &str, i64, &str, &str)]| {
        fx.table(
            rel,
            vec![
                (
                    "ticket_id",
                    strs(&rows.iter().map(|r| r.0).collect::<Vec<_>>()),
                ),
                (
                    "member_no",
                    strs(&rows.iter().map(|r| r.1).collect::<Vec<_>>()),
                ),
                ("item", ints(&rows.iter().map(|r| r.2).collect::<Vec<_>>())),
                ("sold_at", ts(&rows.iter().map(|r| r.3).collect::<Vec<_>>())),
                ("quantity", ints(&vec![1; rows.len()])),
                (
                    "net_amount",
                    dec2(&rows.iter().map(|r| Some(r.4)).collect::<Vec<_>>()),
                ),
                ("register_store", ints(&vec![12; rows.len()])),
                ("cashier", strs(&vec!["kim"; rows.len()])),
            ],
        );
    };
    part(
        "pos/tickets/part-0.parquet",
        &[("t1", "a", 1, "2024-01-01T10:00:00Z", "5.00")],
    );
    part(
        "pos/tickets/part-1.parquet",
        &[
            ("t2", "b", 2, "2024-01-02T10:00:00Z", "7.00"),
            ("t3", "zz", 2, "2024-01-02T10:00:00Z", "7.00"),
        ],
    );
    std::fs::write(fx.dir.join("pos/tickets/_SUCCESS"), "").unwrap();
    let mapping = fx.dir.join("map.toml");
    std::fs::write(
        &mapping,
        r#"
[customers]
path = "crm/members.parquet"
customer_id = "member_no"
birth_date = "dob"
exclude = ["supplier_notes"]

[order_lines]
path = "pos/tickets"
order_id = "ticket_id"
customer_id = "member_no"
product_id = "item"
ordered_at = "sold_at"
line_total = "net_amount"
store_id = "register_store"

[products]
path = "catalog.parquet"
product_type = "category"
exclude = ["product_type"]
"#,
    )
    .unwrap();
    let data = load(&fx.dir, Some(&mapping), "UTC").unwrap();
    assert_eq!(data.customer_count(), 3);
    assert_eq!(data.line_count(), 2);
    assert_eq!(data.skipped_lines(), 1);
    let m = |rule: Value| members(&data, rule, "2024-06-01");
    assert_eq!(
        m(json!({"purchased": {"where": {"product_type": ["Flower"], "store": [12]}}})),
        ids(&["b"])
    );
    assert_eq!(
        m(json!({"attr": "birth_date", "is_null": false})),
        ids(&["a", "c"])
    );
    assert_eq!(m(json!({"attr": "customer_id", "in": ["c"]})), ids(&["c"]));
    assert!(
        err(&data, json!({"attr": "supplier_notes", "in": ["x"]})).contains("unknown attribute")
    );
    assert!(err(&data, json!({"attr": "dob", "is_null": true})).contains("unknown attribute"));
    assert!(err(&data, json!({"purchased": {"where": {"cashier": ["kim"]}}})).contains("unknown"));

    // Without the exclude, products.product_type would take a name mapped to another column.
    std::fs::write(
        &mapping,
        "[customers]\npath = \"crm/members.parquet\"\ncustomer_id = \"member_no\"\n\
         [order_lines]\npath = \"pos/tickets\"\norder_id = \"ticket_id\"\ncustomer_id = \"member_no\"\n\
         product_id = \"item\"\nordered_at = \"sold_at\"\nline_total = \"net_amount\"\n\
         [products]\npath = \"catalog.parquet\"\nproduct_type = \"category\"\n",
    )
    .unwrap();
    let e = load(&fx.dir, Some(&mapping), "UTC").unwrap_err();
    assert!(e.contains("product_type") && e.contains("rename"), "{e}");
}

#[test]
fn bad_input_is_refused() {
    let fx = Fx::new("bad");
    fx.table("customers.parquet", vec![("customer_id", ints(&[1, 2, 1]))])
        .no_purchases();
    let e = fx.try_load("UTC").unwrap_err();
    assert!(e.contains("duplicate customer_id 1"), "{e}");
    fx.table(
        "customers.parquet",
        vec![("customer_id", ints(&[1, 2])), ("age", ints(&[3, 4]))],
    );
    assert!(fx.try_load("UTC").unwrap_err().contains("age"));
    fx.table(
        "customers.parquet",
        vec![("customer_id", ints(&[1, 2])), ("gender", ints(&[3, 4]))],
    );
    assert!(fx.try_load("UTC").unwrap_err().contains("gender"));
    fx.table("customers.parquet", vec![("id", ints(&[1, 2]))]);
    assert!(fx.try_load("UTC").unwrap_err().contains("customer_id"));
    fx.table("customers.parquet", vec![("customer_id", ints(&[1, 2]))]);
    assert!(
        fx.try_load("Mars/Olympus")
            .unwrap_err()
            .contains("time zone")
    );
    fx.table("products.parquet", vec![("product_id", strs(&["p", "p"]))]);
    assert!(
        fx.try_load("UTC")
            .unwrap_err()
            .contains("duplicate product_id p")
    );
    fx.table("products.parquet", vec![("product_id", strs(&["p"]))]);
    // Lines' product_id must have the products' type.
    assert!(fx.try_load("UTC").unwrap_err().contains("product_id"));
    std::fs::remove_file(fx.dir.join("products.parquet")).unwrap();
    assert!(fx.try_load("UTC").unwrap_err().contains("products"));
}

#[test]
fn as_of_forms() {
    let tz: Tz = "Asia/Kolkata".parse().unwrap();
    let a = parse_as_of("2024-03-10", &tz).unwrap();
    assert_eq!(a.d, day("2024-03-10"));
    // Start of 2024-03-11 in +05:30 is 2024-03-10T18:30Z.
    assert_eq!(
        a.limit,
        instant_ms("2024-03-10T18:30:00Z") as i128 * 1_000_000
    );
    let b = parse_as_of("2024-03-10T18:29:59Z", &tz).unwrap();
    assert_eq!(b.d, day("2024-03-10"));
    let c = parse_as_of("2024-03-10T18:30:00Z", &tz).unwrap();
    assert_eq!(c.d, day("2024-03-11"));
    assert_eq!(
        c.limit,
        instant_ms("2024-03-10T18:30:00Z") as i128 * 1_000_000 + 1
    );
    assert!(parse_as_of("2024-02-30", &tz).is_err());
    assert!(parse_as_of("10/03/2024", &tz).is_err());
    assert_eq!(day("2024-03-10"), days_from_civil(2024, 3, 10));
}
