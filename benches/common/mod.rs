//! What the end-to-end benches share: the generated dataset and its index
//! under `target/bench/c<N>/`, made once.

use segdex::{BuildOptions, Index};
use std::path::{Path, PathBuf};

/// The same allocator as the `segdex` command (why: the workspace's
/// Cargo.toml), so the benches time what the command runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The stores' time zone of generated data.
pub const TIMEZONE: &str = "America/Los_Angeles";

/// `target/bench/c<customers>` unless `work` is given.
pub fn work_dir(work: Option<&Path>, customers: u64) -> PathBuf {
    work.map(Path::to_path_buf).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("bench")
            .join(format!("c{customers}"))
    })
}

/// Generates `customers` customers into `work/data` unless it is there.
pub fn ensure_data(
    work: &Path,
    customers: u64,
    seed: u64,
) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let data = work.join("data");
    if !data.join("customers.parquet").exists() {
        eprintln!("generating {customers} customers into {}", data.display());
        let opts = segdex::datagen::GenerateOptions {
            customers,
            seed,
            ..Default::default()
        };
        segdex::datagen::generate(&opts, &data, &|_, _| {})?;
    }
    Ok(data)
}

/// Builds `work/index` from `data` unless a valid index is there.
#[allow(dead_code)] // used by recalc_scale, not by compare (which times its build)
pub fn ensure_index(work: &Path, data: &Path) -> Result<PathBuf, Box<dyn std::error::Error>> {
    let index = work.join("index");
    if Index::open(&index).is_err() {
        eprintln!("building the index");
        let opts = BuildOptions {
            timezone: TIMEZONE.into(),
            strict: false,
        };
        segdex::build_index(data, None, &index, &opts, &|_| {})?;
    }
    Ok(index)
}
