//! Differential tests: the engine against the independent row-by-row
//! reference evaluator (`segdex-reference`) on many small random datasets
//! (int and string ids, normalized and denormalized lines, mapping files,
//! several time zones with DST edges) × random segments covering every form
//! of the language × several as-of instants. Every answer must be equal.
//!
//! `SEGDEX_DIFF_CASES=N` runs N cases (default 24); `SEGDEX_DIFF_SEED=S`
//! starts at seed S, to replay a failure.

use segdex::{AsOf, BuildOptions, Catalog, Evaluator, Index, build_index, evaluate_all};
use std::collections::BTreeSet;
use std::fmt::Write;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The external ids of `members`, as text (as the reference answers).
fn id_set(index: &Index, members: &segdex::Bitmap) -> BTreeSet<String> {
    index
        .external_ids(members)
        .unwrap()
        .into_iter()
        .map(|id| id.to_string())
        .collect()
}

/// Builds `case`'s index under `dir` and opens it.
fn case_index(seed: u64, case: &segdex_reference::cases::Case, dir: &std::path::Path) -> Index {
    let index_dir = dir.join("index");
    let opts = BuildOptions {
        timezone: case.timezone.clone(),
        strict: false,
    };
    build_index(
        &case.data_dir,
        case.mapping.as_deref(),
        &index_dir,
        &opts,
        &|_| {},
    )
    .unwrap_or_else(|e| panic!("seed {seed}: build failed: {e}"));
    Index::open(&index_dir).unwrap()
}

#[test]
fn engine_matches_reference_on_random_cases() {
    let cases = env_u64("SEGDEX_DIFF_CASES", 24);
    let start = env_u64("SEGDEX_DIFF_SEED", 0);
    let mut report = String::new();
    let mut compared = 0usize;
    let mut mismatches = 0usize;
    for seed in start..start + cases {
        let dir = tempfile::tempdir().unwrap();
        let case = segdex_reference::cases::random_case(seed, dir.path());
        let index = case_index(seed, &case, dir.path());
        let reference =
            segdex_reference::load(&case.data_dir, case.mapping.as_deref(), &case.timezone)
                .unwrap_or_else(|e| panic!("seed {seed}: reference load failed: {e}"));
        let catalog = Catalog::from_json(&case.segments)
            .unwrap_or_else(|e| panic!("seed {seed}: segments rejected: {e:?}"));
        for as_of in &case.as_ofs {
            let expected = segdex_reference::evaluate(&reference, &case.segments, as_of)
                .unwrap_or_else(|e| panic!("seed {seed} as of {as_of}: reference failed: {e}"));
            let at = AsOf::parse(as_of, index.zone()).unwrap();
            let got = evaluate_all(&index, &catalog, at)
                .unwrap_or_else(|e| panic!("seed {seed} as of {as_of}: engine failed: {e}"));
            // Sharing identical sub-conditions must not change any answer.
            let unshared = Evaluator::new(&index, &catalog, at).without_sharing();
            for (code, members) in &got {
                assert_eq!(
                    **members,
                    *unshared.evaluate(code).unwrap(),
                    "seed {seed} as of {as_of} segment {code}: sharing changed the answer"
                );
            }
            for (code, members) in got {
                compared += 1;
                let ids = id_set(&index, &members);
                let want = &expected[&code];
                if &ids != want {
                    mismatches += 1;
                    if mismatches <= 12 {
                        let seg = case
                            .segments
                            .as_array()
                            .and_then(|a| a.iter().find(|s| s["code"] == code.as_str()))
                            .cloned()
                            .unwrap_or_default();
                        let missing: Vec<_> = want.difference(&ids).take(5).collect();
                        let extra: Vec<_> = ids.difference(want).take(5).collect();
                        writeln!(
                            report,
                            "seed {seed} tz {} as of {as_of} segment {code}: engine {} vs reference {}; missing {missing:?} extra {extra:?}\n  {}",
                            case.timezone,
                            ids.len(),
                            want.len(),
                            seg["rule"]
                        )
                        .unwrap();
                    }
                }
            }
        }
    }
    assert!(compared > 0, "no segment was compared");
    assert_eq!(
        mismatches, 0,
        "{mismatches} of {compared} answers differ:\n{report}"
    );
}

/// The generated dataset at 140,000 customers (three chunks of the line
/// store, built in parallel and merged) against the reference, for the
/// suite's purchase segments: every chunk boundary, the merged bitmaps and
/// the chunk-by-chunk evaluation are exercised where the random cases
/// above, of a few hundred customers, stay inside one chunk.
#[test]
fn several_chunks_match_reference() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = segdex::datagen::GenerateOptions {
        customers: 140_000,
        years: 2,
        ..Default::default()
    };
    segdex::datagen::generate(&opts, &data, &|_, _| {}).unwrap();
    let index_dir = dir.path().join("index");
    let tz = "America/Los_Angeles";
    let build = BuildOptions {
        timezone: tz.into(),
        strict: false,
    };
    build_index(&data, None, &index_dir, &build, &|_| {}).unwrap();
    let index = Index::open(&index_dir).unwrap();
    assert!(
        index.customers() > 2 * 65_536,
        "the data spans three chunks"
    );
    let suite = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/suite");
    let segments: Vec<serde_json::Value> = [
        "full_price_200",
        "vendor_day",
        "no_promo_cash",
        "organic_fans",
        "big_spenders",
        "lapsed_or_low_value",
        "stores_3_7_last_week",
        "top_skus_buyers",
        "munchie_lovers",
        "not_munchie_recreational",
        "ytd_loyal_10_orders",
    ]
    .iter()
    .map(|code| {
        let text = std::fs::read_to_string(suite.join(format!("{code}.json"))).unwrap();
        serde_json::from_str(&text).unwrap()
    })
    .collect();
    let segments = serde_json::Value::Array(segments);
    let reference = segdex_reference::load(&data, None, tz).unwrap();
    let catalog = Catalog::from_json(&segments).unwrap();
    let as_of = "2026-11-20T15:30:00-08:00";
    let expected = segdex_reference::evaluate(&reference, &segments, as_of).unwrap();
    let got = evaluate_all(&index, &catalog, AsOf::parse(as_of, index.zone()).unwrap()).unwrap();
    let mut nonempty = 0;
    for (code, members) in got {
        let ids = id_set(&index, &members);
        assert_eq!(ids, expected[&code], "segment {code}");
        nonempty += usize::from(!ids.is_empty());
    }
    assert!(nonempty >= 8, "most segments have members ({nonempty})");
}

/// The `purchased` objects of `v` (at any depth).
fn purchases_in(v: &serde_json::Value, out: &mut Vec<serde_json::Map<String, serde_json::Value>>) {
    match v {
        serde_json::Value::Object(m) => {
            if let Some(serde_json::Value::Object(p)) = m.get("purchased") {
                out.push(p.clone());
            }
            m.values().for_each(|x| purchases_in(x, out));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| purchases_in(x, out)),
        _ => {}
    }
}

/// Catalogs of many purchase conditions with a `having` that keep the same
/// orders (one window, the same order keys) and different products: the
/// form a segment library repeats across brands and types, which the
/// engine measures in one walk of the line store per family. The `where`s
/// and windows come from each random case's own segments; the `having`s
/// include tests that hold at zero (`orders = 0`, `spend < x`), which
/// take every customer without a kept line.
#[test]
fn purchase_families_match_reference() {
    let cases = env_u64("SEGDEX_DIFF_CASES", 24).min(12);
    let start = env_u64("SEGDEX_DIFF_SEED", 0);
    let havings = [
        serde_json::json!({"units": {"gte": 2}}),
        serde_json::json!({"orders": {"gte": 2}}),
        serde_json::json!({"spend": {"lt": 40}}),
        serde_json::json!({"orders": {"eq": 0}}),
        serde_json::json!({"avg_order_value": {"gte": 25}, "lines": {"lte": 3}}),
        serde_json::json!({"lines": {"gt": 1}}),
        // Thresholds past i128 cross products, and with 28 places (kept as
        // their JSON text, not as the float nearest it).
        serde_json::json!({"spend": {"lt": 1e37}}),
        serde_json::from_str(
            r#"{"avg_order_value": {"lt": 1e37}, "spend": {"gte": 0.0000000000000000000000000001}}"#,
        )
        .unwrap(),
    ];
    let mut walks = 0;
    for seed in start..start + cases {
        let dir = tempfile::tempdir().unwrap();
        let case = segdex_reference::cases::random_case(seed, dir.path());
        let mut found = Vec::new();
        purchases_in(&case.segments, &mut found);
        let mut wheres: Vec<serde_json::Value> = Vec::new();
        let mut windows = vec![serde_json::Value::Null];
        for p in &found {
            if let Some(w) = p.get("where")
                && !wheres.contains(w)
            {
                wheres.push(w.clone());
            }
            if let Some(w) = p.get("window")
                && !windows.contains(w)
            {
                windows.push(w.clone());
            }
        }
        wheres.truncate(10);
        windows.truncate(3);
        // Variants of each `where` in the value of one order key, with the
        // values seen for that key: families that vary in that key.
        let mut variants = Vec::new();
        for w in &wheres {
            let Some(obj) = w.as_object() else { continue };
            for key in obj.keys().filter(|k| segdex_query::lang::is_order_key(k)) {
                let seen: Vec<&serde_json::Value> = wheres
                    .iter()
                    .filter_map(|o| o.get(key))
                    .filter(|v| v.is_array())
                    .collect();
                for v in seen.into_iter().take(3) {
                    let mut x = w.clone();
                    x[key] = v.clone();
                    if !wheres.contains(&x) && !variants.contains(&x) {
                        variants.push(x);
                    }
                }
            }
        }
        variants.truncate(8);
        wheres.extend(variants);
        let mut segments = Vec::new();
        for (wi, window) in windows.iter().enumerate() {
            for (i, w) in wheres.iter().enumerate() {
                for k in 0..2 {
                    let mut p = serde_json::json!({"where": w, "having": havings[(i + k + wi) % havings.len()]});
                    if !window.is_null() {
                        p["window"] = window.clone();
                    }
                    let mut rule = serde_json::json!({"purchased": p});
                    if (i + k) % 5 == 4 {
                        rule = serde_json::json!({"not": rule});
                    }
                    segments
                        .push(serde_json::json!({"code": format!("f{wi}_{i}_{k}"), "rule": rule}));
                }
            }
        }
        let segments = serde_json::Value::Array(segments);
        let index = case_index(seed, &case, dir.path());
        let reference =
            segdex_reference::load(&case.data_dir, case.mapping.as_deref(), &case.timezone)
                .unwrap();
        let catalog = Catalog::from_json(&segments)
            .unwrap_or_else(|e| panic!("seed {seed}: segments rejected: {e:?}"));
        for (n, as_of) in case.as_ofs.iter().enumerate() {
            let expected = segdex_reference::evaluate(&reference, &segments, as_of).unwrap();
            let at = AsOf::parse(as_of, index.zone()).unwrap();
            // Every other as-of, every family walks (small data rarely has
            // candidates shared enough for the default to take the walk).
            let eval = Evaluator::new(&index, &catalog, at);
            let eval = if n % 2 == 0 {
                eval.with_family_min_share(0)
            } else {
                eval
            };
            for s in catalog.segments() {
                let ids = id_set(&index, &eval.evaluate(&s.code).unwrap());
                let rule = segments
                    .as_array()
                    .and_then(|a| a.iter().find(|x| x["code"] == s.code.as_str()))
                    .map(|x| x["rule"].to_string());
                assert_eq!(
                    ids, expected[&s.code],
                    "seed {seed} as of {as_of} segment {}: {rule:?}",
                    s.code
                );
            }
            walks += eval.sharing_stats().family_walks;
        }
    }
    assert!(walks > 0, "no family of purchase conditions was formed");
}
