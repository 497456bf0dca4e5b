//! `segdex demo`: the main job on the sample data embedded in the binary.

use segdex::{AsOf, BuildOptions, Catalog, Evaluator, Index};
use std::time::Instant;

/// The sample tables (generated with `segdex generate --customers 20000 --seed 42`).
const TABLES: [(&str, &[u8]); 4] = [
    (
        "customers.parquet",
        include_bytes!("../../../data/sample/customers.parquet"),
    ),
    (
        "orders.parquet",
        include_bytes!("../../../data/sample/orders.parquet"),
    ),
    (
        "order_lines.parquet",
        include_bytes!("../../../data/sample/order_lines.parquet"),
    ),
    (
        "products.parquet",
        include_bytes!("../../../data/sample/products.parquet"),
    ),
];

/// The seed segments (SPEC appendix).
const SEGMENTS: [&str; 10] = [
    include_str!("../../../data/segments/munchie_lovers.json"),
    include_str!("../../../data/segments/phat_panda_preroll_lovers.json"),
    include_str!("../../../data/segments/vendor_day.json"),
    include_str!("../../../data/segments/local_21_30.json"),
    include_str!("../../../data/segments/win_back.json"),
    include_str!("../../../data/segments/big_spenders.json"),
    include_str!("../../../data/segments/upcoming_birthday.json"),
    include_str!("../../../data/segments/med_id_expiring.json"),
    include_str!("../../../data/segments/cash_spenders_last_month.json"),
    include_str!("../../../data/segments/new_never_ordered.json"),
];

/// The sample's time zone (its stores are in California).
pub const TIMEZONE: &str = "America/Los_Angeles";
/// The sample's last day of orders: the demo evaluates as of that day.
pub const AS_OF: &str = "2026-11-20";

pub fn run() -> Result<(), super::AnyError> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    std::fs::create_dir(&data)?;
    for (name, bytes) in TABLES {
        std::fs::write(data.join(name), bytes)?;
    }
    let index_dir = dir.path().join("index");
    let opts = BuildOptions {
        timezone: TIMEZONE.into(),
        strict: true,
    };
    let summary = super::build(&data, None, &index_dir, &opts)?;
    println!(
        "built the sample index: {} customers, {} order lines, {} bitmaps, {} bytes in {:.2}s (time zone {TIMEZONE})",
        summary.rows_read.get("customers").copied().unwrap_or(0),
        summary.rows_read.get("order_lines").copied().unwrap_or(0),
        summary.bitmaps,
        summary.bytes,
        summary.seconds
    );
    let index = Index::open(&index_dir)?;
    let segments: Vec<serde_json::Value> = SEGMENTS
        .iter()
        .map(|t| serde_json::from_str(t))
        .collect::<Result<_, _>>()?;
    let catalog = Catalog::from_json(&serde_json::Value::Array(segments))
        .map_err(segdex::QueryError::Segments)?;
    let as_of = AsOf::parse(AS_OF, index.zone())?;
    let eval = Evaluator::new(&index, &catalog, as_of);
    println!("segment sizes as of {AS_OF}:\n");
    println!(
        "{:<28} {:<34} {:>8} {:>10}",
        "code", "name", "members", "ms"
    );
    for s in catalog.segments() {
        let started = Instant::now();
        let members = eval.evaluate(&s.code)?;
        println!(
            "{:<28} {:<34} {:>8} {:>10.2}",
            s.code,
            s.name,
            members.len(),
            started.elapsed().as_secs_f64() * 1000.0
        );
    }
    Ok(())
}
