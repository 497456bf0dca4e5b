//! The library surface of an index: ids both ways, stored export columns,
//! lifetime spend.

mod common;
use common::*;
use segdex::{Bitmap, ExternalId, Index};

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
