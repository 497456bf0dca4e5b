//! Prints what an index's bytes are spent on:
//! `cargo run --release -p segdex-index --example index_sizes -- INDEX_DIR`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: index_sizes INDEX_DIR")?;
    let index = segdex_index::Index::open(std::path::Path::new(&dir))?;
    let report = index.size_report()?;
    let total: u64 = report.iter().map(|r| r.2).sum();
    println!(
        "{:<52} {:>9} {:>14} {:>6}",
        "part", "sections", "bytes", "%"
    );
    for (part, sections, bytes) in report {
        println!(
            "{part:<52} {sections:>9} {bytes:>14} {:>6.1}",
            100.0 * bytes as f64 / total.max(1) as f64
        );
    }
    println!("{:<52} {:>9} {total:>14}", "total", "");
    Ok(())
}
