//! The `segdex` command: a thin shell over the segdex library.

/// The allocator: mimalloc (why: the workspace's Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use segdex::{AsOf, BuildOptions, Catalog, Evaluator, ExternalId, Index};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod demo;
mod recalc_cmd;

#[derive(Parser)]
#[command(
    name = "segdex",
    version,
    about = "Customer segmentation over roaring-bitmap indexes built from Parquet"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a realistic synthetic dataset (the four tables), deterministic for a seed.
    Generate {
        /// Number of customers.
        #[arg(long)]
        customers: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Random seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Last day with orders (YYYY-MM-DD).
        #[arg(long)]
        end_date: Option<String>,
        /// Years of order history.
        #[arg(long)]
        years: Option<u32>,
    },
    /// Build an index from Parquet tables and print a summary.
    Build {
        /// Directory holding the tables (customers, orders, order_lines, products).
        #[arg(long)]
        data: PathBuf,
        /// TOML mapping file renaming the tables' columns.
        #[arg(long)]
        mapping: Option<PathBuf>,
        /// Index directory to write (replaced atomically).
        #[arg(long)]
        out: PathBuf,
        /// IANA time zone for calendar days.
        #[arg(long, default_value = "UTC")]
        timezone: String,
        /// Make lines with unknown orders, customers or products an error.
        #[arg(long)]
        strict: bool,
    },
    /// Evaluate segments and print their sizes or members.
    Query {
        /// Index directory.
        #[arg(long)]
        index: PathBuf,
        /// A JSON file (one segment or an array) or a directory of them.
        #[arg(long)]
        segments: PathBuf,
        /// YYYY-MM-DD (the whole local day) or an RFC 3339 instant.
        #[arg(long)]
        as_of: String,
        /// Print only these segments (repeat or separate with commas).
        #[arg(long, value_delimiter = ',')]
        only: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Count)]
        format: Format,
    },
    /// Recalculate every active segment (dependency order, in parallel) and
    /// commit members, enter/leave events and history to a state directory.
    ///
    /// Exits with status 2 when the pass was committed without some invalid
    /// segments (each reported on stderr by code and JSON path).
    Recalc {
        /// Index directory.
        #[arg(long)]
        index: PathBuf,
        /// A JSON file (one segment or an array) or a directory of them.
        #[arg(long)]
        segments: PathBuf,
        /// YYYY-MM-DD (the whole local day) or an RFC 3339 instant.
        #[arg(long)]
        as_of: String,
        /// State directory (created when missing).
        #[arg(long)]
        state: PathBuf,
        /// Compute identical sub-conditions once per segment instead of once
        /// per pass (to measure what sharing saves).
        #[arg(long)]
        no_sharing: bool,
    },
    /// Print the size history of a state directory; optionally chart it as SVG.
    History {
        /// State directory.
        #[arg(long)]
        state: PathBuf,
        /// Only this segment.
        #[arg(long)]
        segment: Option<String>,
        /// Write an SVG line chart of the sizes to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
    },
    /// Write the snapshot CSV of a segment's latest members.
    Export {
        /// Index directory (the one the state was made from).
        #[arg(long)]
        index: PathBuf,
        /// State directory.
        #[arg(long)]
        state: PathBuf,
        /// Segment code.
        #[arg(long)]
        segment: String,
        /// CSV file to write (replaced atomically).
        #[arg(long)]
        csv: PathBuf,
    },
    /// Build the embedded sample data, evaluate the seed segments and print their sizes.
    Demo,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    /// `code<TAB>size` lines.
    Count,
    /// Matching external ids, one a line (`code<TAB>id` for several segments).
    Ids,
    /// One JSON object a segment: code, size, ids, seconds.
    Jsonl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

/// A spinner on a terminal; nothing when stdout is not one.
fn spinner() -> Option<ProgressBar> {
    std::io::stdout().is_terminal().then(|| {
        let pb = ProgressBar::new_spinner();
        pb.set_style(ProgressStyle::with_template("{spinner} {elapsed} {msg}").expect("template"));
        pb.enable_steady_tick(Duration::from_millis(120));
        pb
    })
}

fn run(command: Command) -> Result<(), AnyError> {
    match command {
        Command::Generate {
            customers,
            out,
            seed,
            end_date,
            years,
        } => generate(customers, &out, seed, end_date, years),
        Command::Build {
            data,
            mapping,
            out,
            timezone,
            strict,
        } => {
            let summary = build(
                &data,
                mapping.as_deref(),
                &out,
                &BuildOptions { timezone, strict },
            )?;
            print_summary(&out, &summary);
            Ok(())
        }
        Command::Query {
            index,
            segments,
            as_of,
            only,
            format,
        } => query(&index, &segments, &as_of, &only, format),
        Command::Recalc {
            index,
            segments,
            as_of,
            state,
            no_sharing,
        } => recalc_cmd::recalc(&index, &segments, &as_of, &state, no_sharing),
        Command::History {
            state,
            segment,
            svg,
        } => recalc_cmd::history(&state, segment.as_deref(), svg.as_deref()),
        Command::Export {
            index,
            state,
            segment,
            csv,
        } => recalc_cmd::export(&index, &state, &segment, &csv),
        Command::Demo => demo::run(),
    }
}

fn generate(
    customers: u64,
    out: &Path,
    seed: u64,
    end_date: Option<String>,
    years: Option<u32>,
) -> Result<(), AnyError> {
    let mut opts = segdex::datagen::GenerateOptions {
        customers,
        seed,
        ..Default::default()
    };
    if let Some(d) = end_date {
        opts.end_date = chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .map_err(|_| format!("--end-date `{d}`: expected YYYY-MM-DD"))?;
    }
    if let Some(y) = years {
        opts.years = y;
    }
    let bar = std::io::stdout().is_terminal().then(|| {
        let pb = ProgressBar::new(customers);
        pb.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} customers {elapsed} (eta {eta})")
                .expect("template"),
        );
        pb
    });
    let started = Instant::now();
    let progress = |done: u64, _total: u64| {
        if let Some(b) = &bar {
            b.set_position(done);
        }
    };
    let s = segdex::datagen::generate(&opts, out, &progress)?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    println!(
        "wrote {}: {} customers, {} orders, {} order lines, {} products, {} bytes in {:.1}s",
        out.display(),
        s.customers,
        s.orders,
        s.order_lines,
        s.products,
        s.bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn build(
    data: &Path,
    mapping: Option<&Path>,
    out: &Path,
    opts: &BuildOptions,
) -> Result<segdex::BuildSummary, AnyError> {
    let pb = spinner();
    let progress = |stage: &str| {
        if let Some(pb) = &pb {
            pb.set_message(stage.to_string());
        }
    };
    let summary = segdex::build_index(data, mapping, out, opts, &progress)?;
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    Ok(summary)
}

fn print_summary(out: &Path, s: &segdex::BuildSummary) {
    println!("built {}", out.display());
    for (table, rows) in &s.rows_read {
        println!("  rows read      {table}: {rows}");
    }
    if s.lines_skipped.is_empty() {
        println!("  lines skipped  none");
    }
    for (reason, n) in &s.lines_skipped {
        println!("  lines skipped  {n} ({reason})");
    }
    if s.null_line_totals > 0 {
        println!(
            "  null line_total {} (counted as 0 spend)",
            s.null_line_totals
        );
    }
    if s.null_quantities > 0 {
        println!(
            "  null quantity  {} (counted as 0 units)",
            s.null_quantities
        );
    }
    if s.orders_without_lines > 0 {
        println!("  orders without lines {}", s.orders_without_lines);
    }
    println!("  fields         {}", s.fields);
    println!("  bitmaps        {}", s.bitmaps);
    println!("  bytes          {}", s.bytes);
    println!("  seconds        {:.2}", s.seconds);
}

fn query(
    index: &Path,
    segments: &Path,
    as_of: &str,
    only: &[String],
    format: Format,
) -> Result<(), AnyError> {
    let index = Index::open(index)?;
    let catalog = Catalog::load(segments)?;
    let as_of = AsOf::parse(as_of, index.zone())?;
    for code in only {
        if catalog.get(code).is_none() {
            return Err(format!("--only {code}: no such segment in {}", segments.display()).into());
        }
    }
    let eval = Evaluator::new(&index, &catalog, as_of);
    let problems = eval.check();
    if !problems.is_empty() {
        return Err(segdex::QueryError::Segments(problems).into());
    }
    let codes: Vec<&str> = if only.is_empty() {
        catalog.segments().iter().map(|s| s.code.as_str()).collect()
    } else {
        only.iter().map(String::as_str).collect()
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for code in &codes {
        let started = Instant::now();
        let members = eval.evaluate(code)?;
        let seconds = started.elapsed().as_secs_f64();
        match format {
            Format::Count => writeln!(out, "{code}\t{}", members.len())?,
            Format::Ids => {
                for id in index.external_ids(&members)? {
                    if codes.len() == 1 {
                        writeln!(out, "{id}")?;
                    } else {
                        writeln!(out, "{code}\t{id}")?;
                    }
                }
            }
            Format::Jsonl => {
                let ids: Vec<serde_json::Value> = index
                    .external_ids(&members)?
                    .into_iter()
                    .map(|id| match id {
                        ExternalId::Int(i) => serde_json::Value::from(i),
                        ExternalId::Str(s) => serde_json::Value::from(s),
                    })
                    .collect();
                let line = serde_json::json!({"code": code, "size": members.len(), "ids": ids, "seconds": seconds});
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}
