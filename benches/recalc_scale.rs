//! The recalculation scale run: thousands of generated segments (templates
//! × retailers/brands, with the overlap real catalogs have) in one pass,
//! with sharing of identical sub-conditions on and then off:
//!
//! ```sh
//! cargo bench --bench recalc_scale -- --customers 1000000 --segments 10000
//! ```
//!
//! Uses (or makes) the dataset and index of `compare` under
//! `target/bench/c<N>/`, writes the segments to `target/bench/c<N>/recalc/`,
//! runs each pass in a fresh state directory and prints the figures
//! (evaluation seconds, whole pass seconds, shared conditions computed and
//! reused, families of purchase conditions measured in one walk).

mod common;

use clap::Parser;
use segdex::recalc::{Definitions, PassOptions, run_pass};
use segdex::{AsOf, Index};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser, Debug)]
struct Args {
    /// Customers of the dataset.
    #[arg(long, default_value_t = 1_000_000)]
    customers: u64,
    /// Segments to generate.
    #[arg(long, default_value_t = 10_000)]
    segments: usize,
    /// As-of of the pass.
    #[arg(long, default_value = "2026-11-20")]
    as_of: String,
    /// Working directory (as `compare`'s).
    #[arg(long)]
    work: Option<PathBuf>,
    /// Passes per state directory, on consecutive days ending at --as-of:
    /// the first forms every segment (everyone "entered"); later ones are
    /// the nightly steady state.
    #[arg(long, default_value_t = 1)]
    passes: u32,
    /// Also run the pass with sharing off.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    sharing_off: bool,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

const BRANDS: [&str; 12] = [
    "Phat Panda",
    "Cheeba Chews",
    "Green Farms",
    "Sky Farms",
    "High Farms",
    "Golden Farms",
    "Emerald Farms",
    "Coastal Farms",
    "Pacific Farms",
    "Wild Farms",
    "Sunset Farms",
    "Mountain Farms",
];
const TYPES: [&str; 9] = [
    "Flower",
    "Prerolls",
    "Edibles",
    "Vapes",
    "Concentrates",
    "Beverages",
    "Tinctures",
    "Topicals",
    "Accessories",
];
const CUSTOMER_TYPES: [&[&str]; 3] = [
    &["Recreational", "Medical", "Employee"],
    &["Medical"],
    &["Recreational"],
];

/// One rule per (template, variant, instance). Templates are the forms a
/// marketer's segment library repeats across retailers and brands; the
/// instance picks the brand, store, product type and thresholds.
fn rule(template: usize, instance: usize) -> Value {
    let brand = BRANDS[instance % BRANDS.len()];
    let ptype = TYPES[(instance / BRANDS.len()) % TYPES.len()];
    let store = (instance % 20) as i64 + 1;
    let ctype = CUSTOMER_TYPES[template % CUSTOMER_TYPES.len()];
    let who = json!({"attr": "customer_type", "in": ctype});
    let variant = template / 10; // 0..5: thresholds and windows
    let units = [5, 10, 15, 20, 30][variant];
    let days = [7, 14, 30, 60, 90][variant];
    let months = [1, 3, 6, 12, 24][variant];
    let spend = [50.0, 100.0, 250.0, 500.0, 1000.0][variant];
    match template % 10 {
        // Brand lovers: N+ units all time, one recently.
        0 => json!({"all": [who,
            {"purchased": {"where": {"brand": [brand]}, "having": {"units": {"gt": units}}}},
            {"purchased": {"where": {"brand": [brand]}, "window": {"last_days": days}}}]}),
        // Brand and type, same line, in the last months.
        1 => json!({"all": [who,
            {"purchased": {"where": {"brand": [brand], "product_type": [ptype]},
                           "window": {"last_months": months}}}]}),
        // Lapsed brand buyers.
        2 => json!({"all": [
            {"purchased": {"where": {"brand": [brand]}}},
            {"not": {"purchased": {"where": {"brand": [brand]}, "window": {"last_days": days * 2}}}}]}),
        // Store regulars.
        3 => json!({"all": [who,
            {"purchased": {"where": {"store": [store]}, "window": {"last_months": months},
                           "having": {"orders": {"gte": 3}}}}]}),
        // Big spenders at a store.
        4 => json!({"purchased": {"where": {"store": [store]}, "window": {"last_months": 12},
                                  "having": {"spend": {"gte": spend}}}}),
        // Cash spenders last month at a store.
        5 => json!({"all": [who,
            {"purchased": {"where": {"payment_method": ["cash"], "store": [store]},
                           "window": "previous_month", "having": {"spend": {"gte": spend / 5.0}}}}]}),
        // Local, an age band, bought a type recently.
        6 => json!({"all": [{"attr": "tags", "in": ["Local"]},
            {"attr": "age", "between": [21 + 5 * variant as i64, 30 + 5 * variant as i64]},
            {"purchased": {"where": {"product_type": [ptype]}, "window": {"last_days": days}}}]}),
        // Win-back with a type affinity.
        7 => json!({"all": [who,
            {"purchased": {"where": {"product_type": [ptype]}, "having": {"orders": {"gte": 2}}}},
            {"not": {"purchased": {"window": {"last_days": days}}}}]}),
        // Average order value band.
        8 => json!({"all": [who,
            {"purchased": {"window": {"last_months": 12},
                           "having": {"avg_order_value": {"gte": spend / 10.0}, "orders": {"gte": 3}}}},
            {"attr": "home_store_id", "in": [store]}]}),
        // Birthday next week, loyal to a brand.
        _ => json!({"all": [{"attr": "birth_date", "anniversary": {"next_days": 7}},
            {"purchased": {"where": {"brand": [brand]}, "window": {"last_months": months}}}]}),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let work = common::work_dir(args.work.as_deref(), args.customers);
    let data = common::ensure_data(&work, args.customers, 42)?;
    let index_dir = common::ensure_index(&work, &data)?;
    let index = Index::open(&index_dir)?;
    let templates = 50;
    let segments: Vec<Value> = (0..args.segments)
        .map(|i| {
            let (t, r) = (i % templates, i / templates);
            json!({"code": format!("t{t:02}_r{r:04}"), "name": format!("template {t}, retailer {r}"),
                   "mode": "dynamic", "active": true, "rule": rule(t, r)})
        })
        .collect();
    let dir = work.join("recalc");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("segments.json"),
        serde_json::to_string(&Value::Array(segments.clone()))?,
    )?;
    let defs = Definitions::from_json(&Value::Array(segments));
    if !defs.problems().is_empty() {
        return Err(format!(
            "generated segments are invalid: {:?}",
            &defs.problems()[..1]
        )
        .into());
    }
    let as_of_date = chrono::NaiveDate::parse_from_str(&args.as_of, "%Y-%m-%d")
        .map_err(|_| "--as-of: expected YYYY-MM-DD")?;
    println!(
        "## Recalculation pass: {} segments ({} templates), {} customers, as of {}\n",
        args.segments,
        templates,
        index.customers(),
        args.as_of
    );
    println!(
        "| sharing | pass (as of) | evaluate s | write s | sync s | clean-up s | whole pass s | shared conditions | computed | reused | family walks | entered / left |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    let mut modes = vec![true];
    if args.sharing_off {
        modes.push(false);
    }
    for sharing in modes {
        let state = dir.join(if sharing {
            "state-shared"
        } else {
            "state-unshared"
        });
        if state.exists() {
            std::fs::remove_dir_all(&state)?;
        }
        for k in (0..args.passes).rev() {
            let day = as_of_date - chrono::Days::new(k as u64);
            let as_of = AsOf::parse(&day.to_string(), index.zone())?;
            let t = Instant::now();
            let report = run_pass(
                &index,
                &defs,
                as_of,
                &state,
                &PassOptions { sharing },
                &|_| {},
            )?;
            let total = t.elapsed().as_secs_f64();
            let (entered, left): (u64, u64) = report
                .segments
                .iter()
                .fold((0, 0), |(e, l), s| (e + s.entered, l + s.left));
            println!(
                "| {} | {} ({day}) | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {entered} / {left} |",
                if sharing { "on" } else { "off" },
                report.pass,
                report.evaluate_seconds,
                report.write_seconds,
                report.sync_seconds,
                report.cleanup_seconds,
                total,
                report.sharing.shared_conditions,
                report.sharing.computed,
                report.sharing.hits,
                report.sharing.family_walks
            );
        }
    }
    Ok(())
}
