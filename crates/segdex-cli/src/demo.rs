//! `segdex demo`: the main job on the sample data embedded in the binary.

use segdex::recalc::{Definitions, PassOptions, run_pass};
use segdex::{AsOf, BuildOptions, Index};

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
/// The sample's last day of orders: the demo's second pass is as of it.
pub const AS_OF: &str = "2026-11-20";
/// The demo's first pass: the night before.
pub const PREVIOUS_DAY: &str = "2026-11-19";

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
    let defs = Definitions::from_json(&serde_json::Value::Array(segments));
    if !defs.problems().is_empty() {
        return Err(segdex::QueryError::Segments(defs.problems().to_vec()).into());
    }
    // Two nightly passes: the day before, then the sample's last day, so
    // the table shows who entered and left overnight.
    let state = dir.path().join("state");
    let mut last = None;
    for day in [PREVIOUS_DAY, AS_OF] {
        let as_of = AsOf::parse(day, index.zone())?;
        last = Some(run_pass(
            &index,
            &defs,
            as_of,
            &state,
            &PassOptions::default(),
            &|_| {},
        )?);
    }
    let report = last.expect("two passes");
    println!("segments recalculated as of {PREVIOUS_DAY}, then {AS_OF}:\n");
    println!(
        "{:<28} {:<28} {:<8} {:>8} {:>8} {:>6} {:>8}",
        "code", "name", "mode", "members", "entered", "left", "ms"
    );
    for r in &report.segments {
        let seg = defs
            .catalog()
            .get(&r.code)
            .expect("reported segments exist");
        println!(
            "{:<28} {:<28} {:<8} {:>8} {:>8} {:>6} {:>8.2}",
            r.code,
            seg.name,
            format!("{:?}", seg.mode).to_lowercase(),
            r.size,
            r.entered,
            r.left,
            r.seconds * 1000.0
        );
    }
    println!(
        "\npass {} took {:.2}s ({:.2}s evaluating); shared sub-conditions: {} computed, {} reused",
        report.pass,
        report.seconds,
        report.evaluate_seconds,
        report.sharing.computed,
        report.sharing.hits
    );
    Ok(())
}
