//! Criterion benches of the evaluation kernels, on a generated dataset of
//! `SEGDEX_KERNEL_CUSTOMERS` customers (default 200,000; generated and
//! indexed once under `target/bench/kernels-<N>/`):
//!
//! ```sh
//! cargo bench --bench kernels
//! ```
//!
//! Raw bitmap kernels (union of many buckets, bit-sliced range compare) and
//! whole conditions of each kind through the evaluator: categorical
//! AND/OR/NOT, numeric and date ranges, window unions over day buckets,
//! same-line `where`, and measure thresholds.

use criterion::{Criterion, criterion_group, criterion_main};
use segdex::{AsOf, BuildOptions, Catalog, Evaluator, Index};
use segdex_bitmap::{Bitmap, Bsi, union_all};
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

fn index() -> Index {
    let n: u64 = std::env::var("SEGDEX_KERNEL_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("bench")
        .join(format!("kernels-{n}"));
    let (data, index) = (dir.join("data"), dir.join("index"));
    if !data.join("customers.parquet").exists() {
        let opts = segdex::datagen::GenerateOptions {
            customers: n,
            ..Default::default()
        };
        segdex::datagen::generate(&opts, &data, &|_, _| {}).expect("generate");
    }
    if Index::open(&index).is_err() {
        let opts = BuildOptions {
            timezone: "America/Los_Angeles".into(),
            strict: true,
        };
        segdex::build_index(&data, None, &index, &opts, &|_| {}).expect("build");
    }
    Index::open(&index).expect("open")
}

/// The condition kinds, one segment each.
const SEGMENTS: &str = r#"[
 {"code": "categorical_and_or_not", "name": "c", "mode": "dynamic", "active": true,
  "rule": {"all": [{"attr": "customer_type", "in": ["Recreational", "Medical"]},
                   {"not": {"attr": "tags", "in": ["Tourist"]}},
                   {"any": [{"attr": "loyalty_tier", "in": ["Gold", "Platinum"]},
                            {"attr": "sms_opt_in", "in": [true]}]}]}},
 {"code": "numeric_range", "name": "n", "mode": "dynamic", "active": true,
  "rule": {"attr": "loyalty_points_lifetime", "between": [1000, 5000]}},
 {"code": "age_range", "name": "a", "mode": "dynamic", "active": true,
  "rule": {"attr": "age", "between": [21, 30]}},
 {"code": "window_union_90_days", "name": "w", "mode": "dynamic", "active": true,
  "rule": {"purchased": {"window": {"last_days": 90}}}},
 {"code": "same_line_where_3_months", "name": "s", "mode": "dynamic", "active": true,
  "rule": {"purchased": {"where": {"brand": ["Phat Panda"], "product_type": ["Prerolls"]},
                         "window": {"last_months": 3}}}},
 {"code": "measure_spend_all_time", "name": "m", "mode": "dynamic", "active": true,
  "rule": {"purchased": {"having": {"spend": {"gte": 500}}}}},
 {"code": "measure_units_brand", "name": "u", "mode": "dynamic", "active": true,
  "rule": {"purchased": {"where": {"brand": ["Cheeba Chews"]}, "having": {"units": {"gt": 10}}}}}
]"#;

fn kernels(c: &mut Criterion) {
    let index = index();
    let json: serde_json::Value = serde_json::from_str(SEGMENTS).expect("segments");
    let catalog = Catalog::from_json(&json).expect("catalog");
    let as_of = AsOf::parse("2026-11-20", index.zone()).expect("as-of");

    // Raw kernels: a union of 90 day buckets, and a bit-sliced compare.
    let meta = index.meta();
    let days: Vec<Arc<Bitmap>> = meta.purchases.any_day[meta.purchases.any_day.len() - 90..]
        .iter()
        .map(|&s| index.bitmap(s).expect("bucket"))
        .collect();
    c.bench_function("kernel/union_90_day_buckets", |b| {
        b.iter(|| black_box(union_all(days.iter().map(|d| d.as_ref()))))
    });
    let field = index
        .customer_field("loyalty_points_lifetime")
        .expect("field");
    let bsi_meta = field.bsi.as_ref().expect("bsi");
    let bsi = Bsi {
        slices: bsi_meta
            .slices
            .iter()
            .map(|&s| index.bitmap(s).expect("slice"))
            .collect(),
        exists: index.bitmap(bsi_meta.exists).expect("exists"),
    };
    c.bench_function("kernel/bsi_range", |b| {
        b.iter(|| black_box(bsi.range(Some(1000), Some(5000))))
    });

    for s in catalog.segments() {
        c.bench_function(&format!("segment/{}", s.code), |b| {
            b.iter(|| {
                let eval = Evaluator::new(&index, &catalog, as_of);
                black_box(eval.evaluate(&s.code).expect("evaluate"))
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = kernels
}
criterion_main!(benches);
