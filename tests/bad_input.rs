//! Every bad-input rule of SPEC §1: a clear error naming where, nothing
//! written, an existing index left as it was; unknown references counted
//! (or refused with --strict); corrupt indexes refused.

mod common;
use arrow_array::ArrayRef;
use common::*;
use segdex::{AsOf, BuildOptions, Catalog, Evaluator, Index, build_index};
use serde_json::json;
use std::path::Path;

fn err_text(data: &Path) -> String {
    let out = data.parent().unwrap().join("index");
    let e = build(data, &out)
        .expect_err("build should fail")
        .to_string();
    assert!(!out.exists(), "a failed build left {out:?} behind");
    e
}

fn assert_has(text: &str, needles: &[&str]) {
    for n in needles {
        assert!(text.contains(n), "{text:?} lacks {n:?}");
    }
}

/// The build error of the small dataset with these order lines.
fn err_with_lines(lines: Vec<(&str, ArrayRef)>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    write(&data.join("order_lines.parquet"), lines);
    err_text(&data)
}

#[test]
fn missing_required_column_names_file_and_column() {
    let e = err_with_lines(vec![
        ("order_id", ints(&[1])),
        ("product_id", ints(&[100])),
        ("quantity", ints(&[1])),
    ]);
    assert_has(&e, &["order_lines.parquet", "line_total", "missing"]);
}

#[test]
fn wrong_types_name_file_column_and_type() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    write(
        &data.join("order_lines.parquet"),
        vec![
            ("order_id", ints(&[1])),
            ("product_id", ints(&[100])),
            ("quantity", strs(&["two"])),
            ("line_total", money(&[Some(100)])),
        ],
    );
    assert_has(
        &err_text(&data),
        &["order_lines.parquet", "quantity", "Utf8", "integer"],
    );

    small_dataset(&data);
    write(
        &data.join("customers.parquet"),
        vec![
            ("customer_id", ints(&[1])),
            ("birth_date", strs(&["1990-01-01"])),
        ],
    );
    assert_has(
        &err_text(&data),
        &["customers.parquet", "birth_date", "date or timestamp"],
    );

    // Lines whose product ids are strings while products' are integers.
    small_dataset(&data);
    write(
        &data.join("order_lines.parquet"),
        vec![
            ("order_id", ints(&[1])),
            ("product_id", strs(&["100"])),
            ("quantity", ints(&[1])),
            ("line_total", money(&[Some(100)])),
        ],
    );
    assert_has(
        &err_text(&data),
        &["order_lines.parquet", "product_id", "int64 ids"],
    );
}

#[test]
fn duplicate_keys_name_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    write(
        &data.join("customers.parquet"),
        vec![("customer_id", ints(&[5, 6, 5]))],
    );
    assert_has(
        &err_text(&data),
        &[
            "customers.parquet",
            "customer_id",
            "row 2",
            "duplicate",
            "value 5",
        ],
    );

    small_dataset(&data);
    write(
        &data.join("products.parquet"),
        vec![
            ("product_id", strs(&["a", "b", "b"])),
            ("brand", strs(&["x", "y", "z"])),
        ],
    );
    assert_has(
        &err_text(&data),
        &["products.parquet", "product_id", "duplicate", "\"b\""],
    );
}

#[test]
fn unreadable_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    std::fs::write(data.join("orders.parquet"), b"this is not parquet").unwrap();
    assert_has(&err_text(&data), &["orders.parquet"]);
}

#[test]
fn failed_build_leaves_existing_index_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    let out = dir.path().join("index");
    build(&data, &out).unwrap();
    let before = std::fs::read(out.join("index.seg")).unwrap();
    write(
        &data.join("customers.parquet"),
        vec![("customer_id", ints(&[1, 1]))],
    );
    assert!(build(&data, &out).is_err());
    assert_eq!(std::fs::read(out.join("index.seg")).unwrap(), before);
    Index::open(&out).unwrap();
    // No temporary directory is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn unknown_references_are_counted_or_refused_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    write(
        &data.join("orders.parquet"),
        vec![
            ("order_id", ints(&[1, 2, 3])),
            ("customer_id", ints(&[10, 999, 20])),
            (
                "ordered_at",
                instants(&[
                    "2024-03-01T10:00:00Z",
                    "2024-03-01T10:00:00Z",
                    "2024-03-01T10:00:00Z",
                ]),
            ),
        ],
    );
    write(
        &data.join("order_lines.parquet"),
        vec![
            ("order_id", ints(&[1, 2, 3, 77, 1])),
            ("product_id", ints(&[100, 100, 555, 100, 200])),
            ("quantity", ints(&[1, 1, 1, 1, 1])),
            (
                "line_total",
                money(&[Some(100), Some(100), Some(100), Some(100), None]),
            ),
        ],
    );
    let out = dir.path().join("index");
    let s = build(&data, &out).unwrap();
    assert_eq!(s.lines_skipped["unknown customer_id"], 1);
    assert_eq!(s.lines_skipped["unknown product_id"], 1);
    assert_eq!(s.lines_skipped["unknown order_id"], 1);
    assert_eq!(s.null_line_totals, 1);
    assert_eq!(Index::open(&out).unwrap().meta().lines, 2);

    let strict = BuildOptions {
        strict: true,
        ..Default::default()
    };
    let e = build_index(&data, None, &dir.path().join("strict"), &strict, &|_| {})
        .unwrap_err()
        .to_string();
    assert_has(&e, &["--strict", "order_lines.parquet", "unknown"]);
    assert!(!dir.path().join("strict").exists());
}

#[test]
fn null_line_total_is_zero_spend_but_counts_lines_and_units() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    let out = dir.path().join("index");
    assert_eq!(build(&data, &out).unwrap().null_line_totals, 1);
    let index = Index::open(&out).unwrap();
    // Customer 20's only line (order 3, product 300) has a null total.
    let cat = Catalog::from_json(&json!([
        {"code": "one_line", "rule": {"all": [{"customers": [20]}, {"purchased": {"having": {"lines": {"eq": 1}, "units": {"eq": 1}, "orders": {"eq": 1}}}}]}},
        {"code": "zero_spend", "rule": {"all": [{"customers": [20]}, {"purchased": {"having": {"spend": {"eq": 0}}}}]}},
        {"code": "zero_aov", "rule": {"all": [{"customers": [20]}, {"purchased": {"having": {"avg_order_value": {"eq": 0}}}}]}},
    ]))
    .unwrap();
    let as_of = AsOf::parse("2024-12-31", index.zone()).unwrap();
    let ev = Evaluator::new(&index, &cat, as_of);
    for code in ["one_line", "zero_spend", "zero_aov"] {
        assert_eq!(ev.evaluate(code).unwrap().len(), 1, "{code}");
    }
}

#[test]
fn mapping_errors_and_clashes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    let mapping = dir.path().join("m.toml");
    let out = dir.path().join("index");
    let run = |text: &str| {
        std::fs::write(&mapping, text).unwrap();
        build_index(
            &data,
            Some(&mapping),
            &out,
            &BuildOptions::default(),
            &|_| {},
        )
    };
    let e = run("[customers]\ncustomer_id = \"member_no\"\n")
        .unwrap_err()
        .to_string();
    assert_has(&e, &["customer_id", "member_no", "customers.parquet"]);
    // first_name mapped to the canonical first_name's neighbour: the source
    // column `customer_type` would take a canonical name it is not mapped to.
    let e = run("[customers]\ncustomer_type = \"first_name\"\n")
        .unwrap_err()
        .to_string();
    assert_has(&e, &["customer_type", "rename it in the mapping"]);
    // A column named like a derived attribute must be renamed.
    write(
        &data.join("customers.parquet"),
        vec![("customer_id", ints(&[1])), ("age", ints(&[30]))],
    );
    let e = build(&data, &out).unwrap_err().to_string();
    assert_has(&e, &["age", "rename it"]);
    let s = run("[customers]\nage_in_crm = \"age\"\n").unwrap();
    assert_eq!(s.rows_read["customers"], 1);
    assert!(
        Index::open(&out)
            .unwrap()
            .customer_field("age_in_crm")
            .is_some()
    );
    run("[customers]\nexclude = [\"age\"]\n").unwrap();
    assert!(
        Index::open(&out)
            .unwrap()
            .customer_field("age_in_crm")
            .is_none()
    );
    let e = run("[customers]\nexclude = [\"nope\"]\n")
        .unwrap_err()
        .to_string();
    assert_has(&e, &["nope"]);
}

#[test]
fn denormalized_lines_need_customer_and_instant() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    std::fs::remove_file(data.join("orders.parquet")).unwrap();
    assert_has(
        &err_text(&data),
        &["order_lines.parquet", "customer_id", "missing"],
    );
}

#[test]
fn files_of_one_table_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    std::fs::remove_file(data.join("products.parquet")).unwrap();
    write(
        &data.join("products/a.parquet"),
        vec![
            ("product_id", ints(&[100, 200])),
            ("brand", strs(&["x", "y"])),
        ],
    );
    write(
        &data.join("products/b.parquet"),
        vec![("product_id", strs(&["300"])), ("brand", strs(&["z"]))],
    );
    assert_has(&err_text(&data), &["b.parquet", "product_id"]);
}

#[test]
fn corrupt_indexes_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = built_sample(dir.path());
    let seg = out.join("index.seg");
    let good = std::fs::read(&seg).unwrap();

    // Truncated anywhere: refused on open.
    for cut in [0, 7, good.len() / 2, good.len() - 1] {
        std::fs::write(&seg, &good[..cut]).unwrap();
        let e = Index::open(&out).unwrap_err().to_string();
        assert!(e.contains("corrupt") || e.contains("truncated"), "{e}");
    }
    // A flipped byte anywhere is caught before it is used.
    for i in (0..good.len()).step_by(97) {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        std::fs::write(&seg, &bad).unwrap();
        if let Ok(index) = Index::open(&out) {
            assert!(index.verify_all().is_err(), "flipped byte {i} unnoticed");
        }
    }
    std::fs::write(&seg, &good).unwrap();
    Index::open(&out).unwrap().verify_all().unwrap();

    // Another format version, another format, no manifest.
    let manifest = out.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            &format!(
                "\"format_version\": {}",
                segdex::index::model::FORMAT_VERSION
            ),
            "\"format_version\": 99",
        ),
    )
    .unwrap();
    assert!(
        Index::open(&out)
            .unwrap_err()
            .to_string()
            .contains("version 99")
    );
    std::fs::write(&manifest, text.replace("segdex-index", "other")).unwrap();
    assert!(
        Index::open(&out)
            .unwrap_err()
            .to_string()
            .contains("not a segdex index")
    );
    std::fs::write(&manifest, "{").unwrap();
    assert!(
        Index::open(&out)
            .unwrap_err()
            .to_string()
            .contains("corrupt")
    );
    std::fs::remove_file(&manifest).unwrap();
    assert!(
        Index::open(&out)
            .unwrap_err()
            .to_string()
            .contains("not a segdex index")
    );
}

#[test]
fn a_corrupt_section_fails_the_query_not_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let out = built_sample(dir.path());
    let seg = out.join("index.seg");
    let mut bytes = std::fs::read(&seg).unwrap();
    // Flip a byte early in the data (the first sections hold bitmaps).
    bytes[20] ^= 0xFF;
    std::fs::write(&seg, &bytes).unwrap();
    let index = Index::open(&out).unwrap();
    let cat = Catalog::from_json(&json!([
        {"code": "a", "rule": {"attr": "brand", "in": ["x"]}},
        {"code": "b", "rule": {"purchased": {"where": {"brand": ["Phat Panda"]}}}},
        {"code": "c", "rule": {"attr": "customer_type", "in": ["Medical"]}},
        {"code": "d", "rule": {"attr": "tags", "in": ["Local"]}},
    ]))
    .unwrap();
    let ev = Evaluator::new(
        &index,
        &cat,
        AsOf::parse("2024-12-31", index.zone()).unwrap(),
    );
    let failures = ["b", "c", "d"]
        .iter()
        .filter(|c| {
            ev.evaluate(c)
                .is_err_and(|e| e.to_string().contains("corrupt"))
        })
        .count();
    assert!(failures >= 1, "no query noticed the corrupt section");
}

#[test]
fn segment_errors_name_segment_and_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = built_sample(dir.path());
    let index = Index::open(&out).unwrap();
    let cases = [
        (
            json!({"code": "s", "rule": {"all": [{"all": []}, {"attr": "colour", "in": ["red"]}]}}),
            "segment `s`: rule.all[1].attr: unknown attribute `colour`",
        ),
        (
            json!({"code": "s", "rule": {"attr": "customer_type", "in": [3]}}),
            "rule.in[0]: values of `customer_type` are strings",
        ),
        (
            json!({"code": "s", "rule": {"attr": "home_store_id", "in": ["1"]}}),
            "rule.in[0]: values of `home_store_id` are integers",
        ),
        (
            json!({"code": "s", "rule": {"attr": "customer_type", "gt": 3}}),
            "does not fit categorical",
        ),
        (
            json!({"code": "s", "rule": {"attr": "first_name", "in": ["Ann"]}}),
            "stored for export only",
        ),
        (
            json!({"code": "s", "rule": {"attr": "email", "in": ["a@b"]}}),
            "no such column",
        ),
        (
            json!({"code": "s", "rule": {"attr": "birth_date", "gt": 5}}),
            "dates YYYY-MM-DD",
        ),
        (
            json!({"code": "s", "rule": {"purchased": {"where": {"offer_code": ["X"]}}}}),
            "rule.purchased.where.offer_code: `offer_code` needs the offer_code column",
        ),
        (
            json!({"code": "s", "rule": {"purchased": {"where": {"flavour": ["X"]}}}}),
            "unknown where key `flavour`",
        ),
        (
            json!({"code": "s", "rule": {"purchased": {"where": {"name": ["X"]}}}}),
            "stored only",
        ),
        (
            json!({"code": "s", "rule": {"customers": ["10"]}}),
            "rule.customers[0]: customer ids are integers",
        ),
        (
            json!({"code": "s", "rule": {"attr": "tags", "all_of": ["Local"]}, "extra": 1}),
            "extra: unknown key",
        ),
    ];
    for (seg, needle) in cases {
        let problems = match Catalog::from_json(&seg) {
            Err(e) => e,
            Ok(cat) => {
                let ev = Evaluator::new(
                    &index,
                    &cat,
                    AsOf::parse("2024-12-31", index.zone()).unwrap(),
                );
                ev.check()
            }
        };
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "{text:?} lacks {needle:?}"
        );
    }
}

#[test]
fn unindexable_custom_columns_build_but_cannot_be_used() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    let price: arrow_array::ArrayRef =
        std::sync::Arc::new(arrow_array::Float64Array::from(vec![9.5, 4.0, 2.25]));
    write(
        &data.join("products.parquet"),
        vec![
            ("product_id", ints(&[100, 200, 300])),
            ("brand", strs(&["a", "b", "c"])),
            ("price", price),
        ],
    );
    let out = dir.path().join("index");
    build(&data, &out).unwrap();
    let index = Index::open(&out).unwrap();
    let cat = Catalog::from_json(
        &json!({"code": "s", "rule": {"purchased": {"where": {"price": [9.5]}}}}),
    )
    .unwrap();
    let ev = Evaluator::new(
        &index,
        &cat,
        AsOf::parse("2024-12-31", index.zone()).unwrap(),
    );
    let problems: Vec<String> = ev.check().iter().map(|p| p.to_string()).collect();
    assert!(
        problems[0].contains("rule.purchased.where.price: product column `price` has type Float64"),
        "{problems:?}"
    );
}

#[test]
fn float32_money_rounds_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    let totals: arrow_array::ArrayRef =
        std::sync::Arc::new(arrow_array::Float32Array::from(vec![1.005f32]));
    write(
        &data.join("order_lines.parquet"),
        vec![
            ("order_id", ints(&[1])),
            ("product_id", ints(&[100])),
            ("quantity", ints(&[1])),
            ("line_total", totals),
        ],
    );
    let out = dir.path().join("index");
    build(&data, &out).unwrap();
    let index = Index::open(&out).unwrap();
    let cat = Catalog::from_json(
        &json!({"code": "s", "rule": {"purchased": {"having": {"spend": {"eq": 1.01}}}}}),
    )
    .unwrap();
    let ev = Evaluator::new(
        &index,
        &cat,
        AsOf::parse("2024-12-31", index.zone()).unwrap(),
    );
    assert_eq!(ev.evaluate("s").unwrap().len(), 1);
}

#[test]
fn implausible_quantity_names_file_column_and_row() {
    let e = err_with_lines(vec![
        ("order_id", ints(&[1, 2])),
        ("product_id", ints(&[100, 200])),
        ("quantity", ints(&[1, 3_000_000_000])),
        ("line_total", money(&[Some(100), Some(200)])),
    ]);
    assert_has(
        &e,
        &["order_lines.parquet", "quantity", "row 1", "3000000000"],
    );
}

/// Members (as customer ids) of one rule over a built index.
fn members_of(index: &Index, rule: serde_json::Value) -> Vec<String> {
    let cat = Catalog::from_json(&json!({"code": "s", "rule": rule})).unwrap();
    let ev = Evaluator::new(
        index,
        &cat,
        AsOf::parse("2024-12-31", index.zone()).unwrap(),
    );
    let rows = ev.evaluate("s").unwrap();
    index
        .external_ids(&rows)
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect()
}

#[test]
fn numeric_attributes_compare_exactly_with_any_threshold() {
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    let f32s: ArrayRef = Arc::new(arrow_array::Float32Array::from(vec![
        Some(0.1f32),
        Some(2.5),
        Some(f32::INFINITY),
        Some(f32::NAN),
    ]));
    let f64s: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![
        Some(0.1),
        Some(0.1 + 0.2),
        Some(f64::NEG_INFINITY),
        None,
    ]));
    write(
        &data.join("customers.parquet"),
        vec![
            ("customer_id", ints(&[10, 20, 30, 40])),
            ("score32", f32s),
            ("score64", f64s),
            ("visits", ints(&[1, 2, 3, 4])),
        ],
    );
    let out = dir.path().join("index");
    build(&data, &out).unwrap();
    let index = Index::open(&out).unwrap();
    // As JSON text: a Rust float literal would lose the numbers' digits.
    let cases = [
        // A float32 is the value of its own shortest text; infinities and
        // NaN are null.
        (r#"{"attr": "score32", "eq": 0.1}"#, vec!["10"]),
        (r#"{"attr": "score32", "gt": 0.1}"#, vec!["20"]),
        (r#"{"attr": "score32", "is_null": true}"#, vec!["30", "40"]),
        // The threshold's exact value, not the double nearest to it.
        (
            r#"{"attr": "score64", "lt": 0.10000000000000001}"#,
            vec!["10"],
        ),
        (
            r#"{"attr": "score64", "gte": 0.10000000000000001}"#,
            vec!["20"],
        ),
        (r#"{"attr": "score64", "eq": 0.3}"#, vec![]),
        (
            r#"{"attr": "score64", "in": [0.30000000000000004]}"#,
            vec!["20"],
        ),
        (r#"{"attr": "score64", "lt": 1e400}"#, vec!["10", "20"]),
        (r#"{"attr": "score64", "gt": -1e400}"#, vec!["10", "20"]),
        (r#"{"attr": "score64", "is_null": true}"#, vec!["30", "40"]),
        // Integers: any size, any number of places.
        (
            r#"{"attr": "visits", "lt": 2.0000000000000000000000000000000001}"#,
            vec!["10", "20"],
        ),
        (
            r#"{"attr": "visits", "lte": 1e30}"#,
            vec!["10", "20", "30", "40"],
        ),
        (r#"{"attr": "visits", "gt": 1e30}"#, vec![]),
        (r#"{"attr": "visits", "in": [1e30, 3]}"#, vec!["30"]),
        (r#"{"attr": "visits", "between": [-1e40, 1.5]}"#, vec!["10"]),
    ];
    for (rule, want) in cases {
        let rule: serde_json::Value = serde_json::from_str(rule).unwrap();
        assert_eq!(members_of(&index, rule.clone()), want, "{rule}");
    }
}
