//! The library surface of an index: ids both ways, stored export columns,
//! lifetime spend.

mod common;
use arrow_array::ArrayRef;
use common::*;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use segdex::{Bitmap, ExternalId, Index};
use std::path::Path;

#[test]
fn ids_stored_columns_and_lifetime_spend() {
    let dir = tempfile::tempdir().unwrap();
    let index = small_index(dir.path());
    assert_eq!(index.customers(), 4);
    let rows: Bitmap = (0..4).collect();
    let ids: Vec<String> = index
        .external_ids(&rows)
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    assert_eq!(ids, ["10", "20", "30", "40"]);
    assert_eq!(index.row_of(&ExternalId::Int(30)).unwrap(), Some(2));
    assert_eq!(index.row_of(&ExternalId::Int(31)).unwrap(), None);
    let names = index.stored_texts("first_name", &rows).unwrap().unwrap();
    assert_eq!(names, ["Ann", "Bo", "Cy", "Di"]);
    // registered_at is a timestamp: its local (UTC) date.
    let reg = index.stored_texts("registered_at", &rows).unwrap().unwrap();
    assert_eq!(
        reg,
        ["2020-01-01", "2019-05-05", "2024-01-01", "2023-03-03"]
    );
    assert!(index.stored_texts("email", &rows).unwrap().is_none());
    // 10: 20.00 + 15.50 + 50.00; 20: null total; 30: 30.00 + 9.99; 40: none.
    assert_eq!(index.lifetime_cents(&rows).unwrap(), [8550, 0, 3999, 0]);
}

/// The sample of `small_dataset`, built under `dir` and opened.
fn small_index(dir: &Path) -> Index {
    Index::open(&built_sample(dir)).unwrap()
}

/// An index over `ids` (customers in that file order, `first_name` of each
/// "n" and its id) with no orders.
fn ids_only_index(dir: &Path, ids: ArrayRef, names: &[String]) -> Index {
    let data = dir.join("data");
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    write(
        &data.join("customers.parquet"),
        vec![("customer_id", ids), ("first_name", strs(&names))],
    );
    write(
        &data.join("products.parquet"),
        vec![("product_id", ints(&[1]))],
    );
    write(
        &data.join("orders.parquet"),
        vec![
            ("order_id", ints(&[])),
            ("customer_id", ints(&[])),
            ("store_id", ints(&[])),
            ("ordered_at", instants(&[])),
        ],
    );
    write(
        &data.join("order_lines.parquet"),
        vec![
            ("order_id", ints(&[])),
            ("product_id", ints(&[])),
            ("quantity", ints(&[])),
            ("line_total", money(&[])),
        ],
    );
    let out = dir.join("index");
    build(&data, &out).unwrap();
    Index::open(&out).unwrap()
}

/// Subsets of `0..n` of every size class (empty, a few rows, dense sets).
fn subsets(n: u32, rng: &mut ChaCha8Rng) -> Vec<Bitmap> {
    let mut out = vec![Bitmap::new(), (0..n).collect()];
    for density in [0.0005, 0.002, 0.05, 0.5, 0.97] {
        out.push((0..n).filter(|_| rng.random_bool(density)).collect());
    }
    out
}

/// The names `ids_only_index` gives customers with `ids`.
fn names_of<T: std::fmt::Display>(ids: &[T]) -> Vec<String> {
    ids.iter().map(|id| format!("n{id}")).collect()
}

#[test]
fn rows_are_numbered_in_ascending_id_order_for_int_and_string_ids() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let n = 20_000u32;
    // Scattered ids in shuffled file order, negatives included.
    let mut values: Vec<i64> = (0..n as i64).map(|i| i * 7919 - 50_000_000).collect();
    values.shuffle(&mut rng);
    let dir = tempfile::tempdir().unwrap();
    let index = ids_only_index(dir.path(), ints(&values), &names_of(&values));
    let mut ascending = values.clone();
    ascending.sort_unstable();
    for rows in subsets(n, &mut rng) {
        let want: Vec<i64> = rows.iter().map(|r| ascending[r as usize]).collect();
        assert!(want.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            index.int_ids(&rows).unwrap().unwrap(),
            want,
            "{} rows",
            rows.len()
        );
        let got: Vec<i64> = (index.external_ids(&rows).unwrap())
            .into_iter()
            .map(|id| match id {
                ExternalId::Int(v) => v,
                ExternalId::Str(s) => panic!("string id {s} in an integer index"),
            })
            .collect();
        assert_eq!(got, want, "{} rows", rows.len());
        // A customer's columns move with it.
        let names = index.stored_texts("first_name", &rows).unwrap().unwrap();
        assert_eq!(names, names_of(&want), "{} rows", rows.len());
    }
    // Every id finds its row; ids between and beyond them find none.
    for (row, &v) in ascending.iter().enumerate() {
        assert_eq!(index.row_of(&ExternalId::Int(v)).unwrap(), Some(row as u32));
        assert_eq!(index.row_of(&ExternalId::Int(v + 1)).unwrap(), None);
    }
    assert_eq!(index.row_of(&ExternalId::Int(i64::MIN)).unwrap(), None);
    // Rows past the end are a corrupt reference, not a panic.
    let past: Bitmap = [n].into_iter().collect();
    assert!(index.int_ids(&past).is_err());
    assert!(index.external_ids(&past).is_err());

    // String ids ascend by their bytes ("C-10" < "C-9", "é" after ASCII).
    let texts: Vec<String> = (0..n)
        .map(|i| match i % 3 {
            0 => format!("C-{}", i * 31 % n),
            1 => format!("é{i}"),
            _ => format!("{:x}", i as u64 * 2_654_435_761 % 1_000_003),
        })
        .collect();
    let mut ascending = texts.clone();
    ascending.sort();
    ascending.dedup();
    let mut shuffled = ascending.clone();
    shuffled.shuffle(&mut rng);
    let n = shuffled.len() as u32;
    let dir = tempfile::tempdir().unwrap();
    let refs: Vec<&str> = shuffled.iter().map(String::as_str).collect();
    let index = ids_only_index(dir.path(), strs(&refs), &names_of(&shuffled));
    for rows in subsets(n, &mut rng) {
        let want: Vec<&str> = rows
            .iter()
            .map(|r| ascending[r as usize].as_str())
            .collect();
        assert!(index.int_ids(&rows).unwrap().is_none());
        let got: Vec<String> = (index.external_ids(&rows).unwrap())
            .iter()
            .map(|id| id.to_string())
            .collect();
        assert_eq!(got, want, "{} rows", rows.len());
        let names = index.stored_texts("first_name", &rows).unwrap().unwrap();
        assert_eq!(names, names_of(&want), "{} rows", rows.len());
    }
    for (row, id) in ascending.iter().enumerate().step_by(7) {
        let id = ExternalId::Str(id.to_string());
        assert_eq!(index.row_of(&id).unwrap(), Some(row as u32));
        let missing = ExternalId::Str(format!("{id}~"));
        assert_eq!(index.row_of(&missing).unwrap(), None);
    }
}

#[test]
fn each_month_bitmap_is_the_union_of_its_days() {
    use segdex_index::time::month_of;
    let dir = tempfile::tempdir().unwrap();
    let index = small_index(dir.path());
    let p = &index.meta().purchases;
    let (first, last) = p.order_days().unwrap();
    // The sample's orders span December 2023 to March 2024, none in
    // January.
    assert_eq!(p.any_month.len(), 4);
    let mut months = vec![Bitmap::new(); p.any_month.len()];
    for day in first..=last {
        let m = (month_of(day) - month_of(first)) as usize;
        months[m] |= &*index.bitmap(p.any_day[(day - first) as usize]).unwrap();
    }
    let sizes: Vec<u64> = months.iter().map(|m| m.len()).collect();
    assert_eq!(sizes, [1, 0, 1, 1]);
    for (m, want) in months.iter().enumerate() {
        assert_eq!(*index.bitmap(p.any_month[m]).unwrap(), *want, "month {m}");
    }
}
