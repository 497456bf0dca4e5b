//! The random case generator produces valid, non-trivial cases.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

use segdex_reference::cases::random_case;
use segdex_reference::{evaluate, load};

/// Collects the language features a rule uses.
fn features(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                out.insert(format!("key:{k}"));
                match (k.as_str(), x) {
                    ("window" | "anniversary", Value::String(w)) => {
                        out.insert(format!("win:{w}"));
                    }
                    ("window" | "anniversary", Value::Object(w)) => {
                        for wk in w.keys() {
                            out.insert(format!("win:{wk}"));
                        }
                    }
                    ("all" | "any", Value::Array(a)) if a.is_empty() => {
                        out.insert(format!("empty:{k}"));
                    }
                    ("having" | "where", Value::Object(h)) if h.is_empty() => {
                        out.insert(format!("empty:{k}"));
                    }
                    ("attr", Value::String(a)) => {
                        out.insert(format!("attr:{a}"));
                    }
                    _ => {}
                }
                features(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| features(x, out)),
        Value::Number(n) => {
            let s = n.to_string();
            if s.split('.').nth(1).is_some_and(|f| f.len() >= 3) {
                out.insert("number:3decimals".into());
            }
        }
        _ => {}
    }
}

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("segdex-ref-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn random_cases_are_valid_and_non_trivial() {
    let n_cases: u64 = std::env::var("SEGDEX_REF_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let (mut total, mut empty, mut full) = (0usize, 0usize, 0usize);
    let mut seen = BTreeSet::new();
    for seed in 0..n_cases {
        let dir = scratch(&format!("case{seed}"));
        let case = random_case(seed, &dir);
        let data = load(&case.data_dir, case.mapping.as_deref(), &case.timezone)
            .unwrap_or_else(|e| panic!("seed {seed}: load: {e}"));
        let n = data.customer_count();
        features(&case.segments, &mut seen);
        seen.insert(format!("tz:{}", case.timezone));
        seen.insert(format!("mapping:{}", case.mapping.is_some()));
        seen.insert(format!(
            "orders_table:{}",
            case.data_dir.join("orders.parquet").exists()
                || case.data_dir.join("orders").exists()
                || case.data_dir.join("pos_export/orders.parquet").exists()
                || case.data_dir.join("pos_export/orders").exists()
        ));
        for a in &case.as_ofs {
            seen.insert(format!("as_of_len:{}", a.len() == 10));
        }
        assert!(n >= 20);
        assert!(data.line_count() > 0);
        for as_of in &case.as_ofs {
            let res = evaluate(&data, &case.segments, as_of)
                .unwrap_or_else(|e| panic!("seed {seed} as_of {as_of}: {e}"));
            assert_eq!(res.len(), case.segments.as_array().unwrap().len());
            for (code, ids) in &res {
                total += 1;
                if ids.is_empty() {
                    empty += 1;
                    if std::env::var("SEGDEX_REF_DUMP").is_ok() {
                        let seg = case
                            .segments
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|s| s["code"] == code.as_str())
                            .unwrap();
                        eprintln!("EMPTY {as_of} {}", seg["rule"]);
                    }
                } else if ids.len() == n {
                    full += 1;
                    if std::env::var("SEGDEX_REF_DUMP").is_ok() {
                        let seg = case
                            .segments
                            .as_array()
                            .unwrap()
                            .iter()
                            .find(|s| s["code"] == code.as_str())
                            .unwrap();
                        eprintln!("FULL {as_of} {}", seg["rule"]);
                    }
                }
            }
        }
        eprintln!(
            "seed {seed}: tz {} mapping {} customers {n} lines {} skipped {} as_ofs {:?}",
            case.timezone,
            case.mapping.is_some(),
            data.line_count(),
            data.skipped_lines(),
            case.as_ofs
        );
        // Deterministic for a seed.
        let again = random_case(seed, &dir);
        assert_eq!(again.segments, case.segments);
        assert_eq!(again.as_ofs, case.as_ofs);
        let _ = std::fs::remove_dir_all(&dir);
    }
    if n_cases >= 12 {
        let mut want: Vec<String> = Vec::new();
        for k in [
            "all",
            "any",
            "not",
            "customers",
            "segment",
            "attr",
            "purchased",
            "in",
            "not_in",
            "all_of",
            "is_null",
            "gt",
            "gte",
            "lt",
            "lte",
            "eq",
            "between",
            "window",
            "anniversary",
            "where",
            "having",
            "orders",
            "lines",
            "units",
            "spend",
            "avg_order_value",
            "brand",
            "product_type",
            "product_tag",
            "store",
            "payment_method",
            "offer_code",
            "channel",
            "sku",
            "strain",
        ] {
            want.push(format!("key:{k}"));
        }
        for w in [
            "all_time",
            "today",
            "yesterday",
            "this_week",
            "last_week",
            "current_week",
            "month_to_date",
            "previous_month",
            "current_month",
            "year_to_date",
            "last_year",
            "last_days",
            "next_days",
            "relative_days",
            "last_months",
            "between",
            "since",
            "before",
            "month_days",
        ] {
            want.push(format!("win:{w}"));
        }
        for a in [
            "age",
            "birth_date",
            "tags",
            "registered_at",
            "home_store_id",
            "opted_in",
        ] {
            want.push(format!("attr:{a}"));
        }
        for x in [
            "empty:all",
            "empty:any",
            "empty:having",
            "empty:where",
            "number:3decimals",
            "mapping:true",
            "mapping:false",
            "orders_table:true",
            "orders_table:false",
            "as_of_len:true",
            "as_of_len:false",
        ] {
            want.push(x.to_string());
        }
        let missing: Vec<&String> = want.iter().filter(|w| !seen.contains(*w)).collect();
        assert!(missing.is_empty(), "never generated: {missing:?}");
    }
    let trivial = empty + full;
    eprintln!("results: {total}, empty {empty}, everyone {full}");
    assert!(
        trivial * 100 < total * 40,
        "too many trivial results: {empty} empty + {full} everyone of {total}"
    );
}
