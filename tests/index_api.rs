//! The library surface of an index: ids both ways, stored export columns,
//! lifetime spend.

mod common;
use common::*;
use segdex::{Bitmap, ExternalId, Index};

/// The external ids of `rows` as text, in row order.
fn id_strings(index: &Index, rows: &Bitmap) -> Vec<String> {
    let ids = index.external_ids(rows).unwrap();
    ids.iter().map(|i| i.to_string()).collect()
}

#[test]
fn ids_stored_columns_and_lifetime_spend() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    let out = dir.path().join("index");
    build(&data, &out).unwrap();
    let index = Index::open(&out).unwrap();
    assert_eq!(index.customers(), 4);
    let rows: Bitmap = (0..4).collect();
    let ids = id_strings(&index, &rows);
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

/// Rows are numbered in customer id order whatever the order of the
/// customers file, and every per-row part of the index follows: ids,
/// stored columns, attributes, purchases.
#[test]
fn rows_follow_id_order_not_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    small_dataset(&data);
    // The same customers, written in the order 30, 10, 40, 20.
    write(
        &data.join("customers.parquet"),
        vec![
            ("customer_id", ints(&[30, 10, 40, 20])),
            ("first_name", strs(&["Cy", "Ann", "Di", "Bo"])),
            (
                "customer_type",
                strs(&["Medical", "Recreational", "Employee", "Medical"]),
            ),
            (
                "birth_date",
                dates(&[
                    None,
                    Some("2000-02-29"),
                    Some("2004-11-30"),
                    Some("1990-06-15"),
                ]),
            ),
            (
                "tags",
                lists(&[None, Some(&["Local", "VIP"]), Some(&["Local"]), Some(&[])]),
            ),
            ("home_store_id", ints(&[1, 1, 3, 2])),
            (
                "registered_at",
                instants(&[
                    "2024-01-01T00:30:00Z",
                    "2020-01-01T08:00:00Z",
                    "2023-03-03T12:00:00Z",
                    "2019-05-05T08:00:00Z",
                ]),
            ),
        ],
    );
    let out = dir.path().join("index");
    build(&data, &out).unwrap();
    let index = Index::open(&out).unwrap();
    let rows: Bitmap = (0..4).collect();
    let ids = id_strings(&index, &rows);
    assert_eq!(ids, ["10", "20", "30", "40"]);
    assert_eq!(index.row_of(&ExternalId::Int(40)).unwrap(), Some(3));
    let names = index.stored_texts("first_name", &rows).unwrap().unwrap();
    assert_eq!(names, ["Ann", "Bo", "Cy", "Di"]);
    assert_eq!(index.lifetime_cents(&rows).unwrap(), [8550, 0, 3999, 0]);
    let cat = segdex::Catalog::from_json(&serde_json::json!([
        {"code": "medical", "rule": {"attr": "customer_type", "in": ["Medical"]}},
        {"code": "local", "rule": {"attr": "tags", "in": ["Local"]}},
        {"code": "born_2000s", "rule": {"attr": "birth_date", "gte": "2000-01-01"}},
        {"code": "store_1", "rule": {"attr": "home_store_id", "in": [1]}},
        {"code": "spent_30", "rule": {"purchased": {"having": {"spend": {"gte": 30}}}}}
    ]))
    .unwrap();
    let as_of = segdex::AsOf::parse("2024-12-31", index.zone()).unwrap();
    let got: Vec<(String, Vec<String>)> = segdex::evaluate_all(&index, &cat, as_of)
        .unwrap()
        .into_iter()
        .map(|(code, m)| {
            let ids = index
                .external_ids(&m)
                .unwrap()
                .iter()
                .map(|i| i.to_string())
                .collect();
            (code, ids)
        })
        .collect();
    let want = |code: &str, ids: &[&str]| {
        (
            code.to_string(),
            ids.iter().map(|s| s.to_string()).collect(),
        )
    };
    assert_eq!(
        got,
        vec![
            want("medical", &["20", "30"]),
            want("local", &["10", "40"]),
            want("born_2000s", &["10", "40"]),
            want("store_1", &["10", "30"]),
            want("spent_30", &["10", "30"]),
        ]
    );
}
