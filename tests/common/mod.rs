//! Small hand-made Parquet fixtures for the end-to-end tests.
#![allow(dead_code)]

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use parquet::arrow::ArrowWriter;
use std::path::Path;
use std::sync::Arc;

/// Writes one Parquet file from named columns.
pub fn write(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let batch = RecordBatch::try_from_iter(columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

pub fn ints(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}
pub fn opt_ints(v: &[Option<i64>]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}
pub fn strs(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}
pub fn opt_strs(v: &[Option<&str>]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}
/// Timestamps (µs, UTC) from RFC 3339 strings.
pub fn instants(v: &[&str]) -> ArrayRef {
    let us: Vec<i64> = v
        .iter()
        .map(|s| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        })
        .collect();
    Arc::new(TimestampMicrosecondArray::from(us).with_timezone("UTC"))
}
/// Dates from YYYY-MM-DD strings (None = null).
pub fn dates(v: &[Option<&str>]) -> ArrayRef {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    let d: Vec<Option<i32>> = v
        .iter()
        .map(|s| {
            s.map(|s| {
                (chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap() - epoch).num_days()
                    as i32
            })
        })
        .collect();
    Arc::new(Date32Array::from(d))
}
/// Money as decimal(12,2) from cents (None = null).
pub fn money(cents: &[Option<i64>]) -> ArrayRef {
    let v: Vec<Option<i128>> = cents.iter().map(|c| c.map(i128::from)).collect();
    Arc::new(
        Decimal128Array::from(v)
            .with_precision_and_scale(12, 2)
            .unwrap(),
    )
}
/// Lists of strings (None = null list).
pub fn lists(v: &[Option<&[&str]>]) -> ArrayRef {
    let mut b = ListBuilder::new(StringBuilder::new());
    for item in v {
        match item {
            Some(xs) => {
                for x in *xs {
                    b.values().append_value(x);
                }
                b.append(true);
            }
            None => b.append(false),
        }
    }
    Arc::new(b.finish())
}

/// A small valid dataset: 4 customers, 3 products, 4 orders, 6 lines.
pub fn small_dataset(dir: &Path) {
    write(
        &dir.join("customers.parquet"),
        vec![
            ("customer_id", ints(&[10, 20, 30, 40])),
            ("first_name", strs(&["Ann", "Bo", "Cy", "Di"])),
            (
                "customer_type",
                strs(&["Recreational", "Medical", "Medical", "Employee"]),
            ),
            (
                "birth_date",
                dates(&[
                    Some("2000-02-29"),
                    Some("1990-06-15"),
                    None,
                    Some("2004-11-30"),
                ]),
            ),
            (
                "tags",
                lists(&[Some(&["Local", "VIP"]), Some(&[]), None, Some(&["Local"])]),
            ),
            ("home_store_id", ints(&[1, 2, 1, 3])),
            (
                "registered_at",
                instants(&[
                    "2020-01-01T08:00:00Z",
                    "2019-05-05T08:00:00Z",
                    "2024-01-01T00:30:00Z",
                    "2023-03-03T12:00:00Z",
                ]),
            ),
        ],
    );
    write(
        &dir.join("products.parquet"),
        vec![
            ("product_id", ints(&[100, 200, 300])),
            (
                "brand",
                opt_strs(&[Some("Phat Panda"), Some("Cheeba Chews"), None]),
            ),
            ("product_type", strs(&["Prerolls", "Edibles", "Prerolls"])),
            ("name", strs(&["PP Preroll", "CC Gummies", "House Preroll"])),
        ],
    );
    write(
        &dir.join("orders.parquet"),
        vec![
            ("order_id", ints(&[1, 2, 3, 4])),
            ("customer_id", ints(&[10, 10, 20, 30])),
            ("store_id", ints(&[1, 2, 1, 1])),
            (
                "ordered_at",
                instants(&[
                    "2024-03-01T10:00:00Z",
                    "2024-03-20T23:30:00Z",
                    "2024-02-10T12:00:00Z",
                    "2023-12-31T23:59:59Z",
                ]),
            ),
            ("payment_method", strs(&["cash", "debit", "cash", "credit"])),
        ],
    );
    write(
        &dir.join("order_lines.parquet"),
        vec![
            ("order_id", ints(&[1, 1, 2, 3, 4, 4])),
            ("product_id", ints(&[100, 200, 100, 300, 100, 200])),
            ("quantity", ints(&[2, 1, 5, 1, 3, 1])),
            (
                "line_total",
                money(&[
                    Some(2000),
                    Some(1550),
                    Some(5000),
                    None,
                    Some(3000),
                    Some(999),
                ]),
            ),
        ],
    );
}

/// Builds `data` into `out` with default options.
pub fn build(data: &Path, out: &Path) -> Result<segdex::BuildSummary, segdex::IndexError> {
    segdex::build_index(data, None, out, &segdex::BuildOptions::default(), &|_| {})
}

/// The sample of [`small_dataset`] written under `dir/data` and built into
/// `dir/index`; the index directory.
pub fn built_sample(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("data");
    small_dataset(&data);
    let out = dir.join("index");
    build(&data, &out).unwrap();
    out
}
