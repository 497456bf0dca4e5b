//! End-to-end comparison with DuckDB, one command:
//!
//! ```sh
//! cargo bench --bench compare -- --customers 1000000
//! ```
//!
//! Generates the dataset (once, under `target/bench/c<N>/`), builds the
//! index in a child process (time, peak RSS), evaluates the suite in
//! `benches/suite/` in a fresh child process (index open time, first query,
//! per-segment times, peak RSS), runs the same suite with DuckDB in a
//! virtual environment the harness sets up (`benches/duckdb/setup_venv.sh`),
//! over the Parquet files and after loading them into memory, checks every
//! answer is equal, and prints one table. The report is also written to
//! `target/bench/c<N>/report.md` for BENCHMARKS.md.

mod common;

use clap::Parser;
use segdex::{AsOf, BuildOptions, Catalog, Evaluator, ExternalId, Index};
use serde_json::{Value, json};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

#[derive(Parser, Debug)]
#[command(about = "segdex versus DuckDB on generated data")]
struct Args {
    /// Customers to generate.
    #[arg(long, default_value_t = 1_000_000)]
    customers: u64,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Timed runs per segment (the median is reported).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// Timed runs per segment for DuckDB in memory (default: --repeat).
    #[arg(long)]
    duckdb_repeat: Option<usize>,
    /// Timed runs per segment for DuckDB straight over the files.
    #[arg(long, default_value_t = 3)]
    files_repeat: usize,
    /// As-of of every query.
    #[arg(long, default_value = "2026-11-20")]
    as_of: String,
    /// Index time zone (the generator's stores are in California).
    #[arg(long, default_value = "America/Los_Angeles")]
    timezone: String,
    /// Segment suite directory.
    #[arg(long)]
    suite: Option<PathBuf>,
    /// Working directory for data, index and results.
    #[arg(long)]
    work: Option<PathBuf>,
    /// Skip DuckDB (segdex figures only).
    #[arg(long)]
    skip_duckdb: bool,
    /// Skip DuckDB over the files (only in memory).
    #[arg(long)]
    skip_files: bool,
    /// Internal: run one phase in this (child) process.
    #[arg(long, hide = true)]
    child: Option<String>,
    /// Passed by `cargo bench`.
    #[arg(long, hide = true)]
    bench: bool,
}

type AnyError = Box<dyn std::error::Error>;

fn main() -> Result<(), AnyError> {
    let args = Args::parse();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let work = common::work_dir(args.work.as_deref(), args.customers);
    let suite = args
        .suite
        .clone()
        .unwrap_or_else(|| root.join("benches").join("suite"));
    let data = work.join("data");
    let index = work.join("index");
    match args.child.as_deref() {
        Some("build") => return child_build(&data, &index, &args.timezone),
        Some("query") => return child_query(&index, &suite, &args.as_of, args.repeat),
        Some(other) => return Err(format!("unknown phase {other}").into()),
        None => {}
    }
    std::fs::create_dir_all(&work)?;
    common::ensure_data(&work, args.customers, args.seed)?;
    let parquet_bytes: u64 = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();

    eprintln!("building the index (child process)");
    let (build, build_rss) = run_child(&args, "build", &work)?;
    eprintln!("querying (child process)");
    let (query, query_rss) = run_child(&args, "query", &work)?;

    let mut duck_mem = Value::Null;
    let mut duck_files = Value::Null;
    if !args.skip_duckdb {
        let python = setup_venv(&root)?;
        duck_mem = run_duckdb(
            &python,
            &root,
            &data,
            &suite,
            &args,
            "memory",
            args.duckdb_repeat.unwrap_or(args.repeat),
            &work,
        )?;
        if !args.skip_files {
            duck_files = run_duckdb(
                &python,
                &root,
                &data,
                &suite,
                &args,
                "files",
                args.files_repeat,
                &work,
            )?;
        }
    }
    let report = report(
        &args,
        &build,
        build_rss,
        &query,
        query_rss,
        &duck_mem,
        &duck_files,
        parquet_bytes,
    );
    println!("{report}");
    std::fs::write(work.join("report.md"), &report)?;
    let all = json!({"build": build, "build_rss": build_rss, "query": query, "query_rss": query_rss,
        "duckdb_memory": duck_mem, "duckdb_files": duck_files, "parquet_bytes": parquet_bytes});
    std::fs::write(
        work.join("results.json"),
        serde_json::to_string_pretty(&all)?,
    )?;
    eprintln!("wrote {}", work.join("report.md").display());
    if report.contains("| DIFFERENT") || report.contains("| ERROR") {
        return Err("some answers differ between segdex and DuckDB (see the table)".into());
    }
    Ok(())
}

/// Runs this executable as a child for one phase; returns its JSON output
/// and its peak RSS in bytes (from wait4).
fn run_child(args: &Args, phase: &str, work: &Path) -> Result<(Value, u64), AnyError> {
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--child")
        .arg(phase)
        .arg("--work")
        .arg(work)
        .arg("--customers")
        .arg(args.customers.to_string())
        .arg("--repeat")
        .arg(args.repeat.to_string())
        .arg("--as-of")
        .arg(&args.as_of)
        .arg("--timezone")
        .arg(&args.timezone);
    if let Some(s) = &args.suite {
        cmd.arg("--suite").arg(s);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let mut out = String::new();
    child
        .stdout
        .take()
        .ok_or("no child stdout")?
        .read_to_string(&mut out)?;
    let (status, rss) = wait_with_rss(child.id())?;
    if status != 0 {
        return Err(format!("{phase} child failed (status {status})").into());
    }
    Ok((serde_json::from_str(&out)?, rss))
}

/// Waits for `pid`; returns its exit status and peak RSS in bytes.
fn wait_with_rss(pid: u32) -> Result<(i32, u64), AnyError> {
    let mut status = 0i32;
    // SAFETY: rusage is plain data that wait4 fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting on our own child with valid out-pointers.
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if r < 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    Ok((code, usage.ru_maxrss as u64 * 1024))
}

fn self_rss() -> u64 {
    // SAFETY: as above.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid out-pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as u64 * 1024
}

fn child_build(data: &Path, index: &Path, timezone: &str) -> Result<(), AnyError> {
    let t = Instant::now();
    let opts = BuildOptions {
        timezone: timezone.into(),
        strict: false,
    };
    let s = segdex::build_index(data, None, index, &opts, &|_| {})?;
    let seconds = t.elapsed().as_secs_f64();
    let parts: Vec<Value> = Index::open(index)?
        .size_report()?
        .into_iter()
        .map(|(part, sections, bytes)| json!({"part": part, "sections": sections, "bytes": bytes}))
        .collect();
    println!(
        "{}",
        json!({"seconds": seconds, "bytes": s.bytes, "lines": s.rows_read.get("order_lines"),
               "bitmaps": s.bitmaps, "parts": parts})
    );
    Ok(())
}

/// count, sum and sum of squares of the members' external ids, as DuckDB's
/// side computes them.
fn fingerprint(index: &Index, members: &segdex::Bitmap) -> Result<(u64, String, String), AnyError> {
    let (mut sum, mut sumsq) = (0i128, 0i128);
    for id in index.external_ids(members)? {
        match id {
            ExternalId::Int(i) => {
                sum += i as i128;
                sumsq += (i as i128) * (i as i128);
            }
            ExternalId::Str(_) => return Err("the harness compares integer ids".into()),
        }
    }
    Ok((members.len(), sum.to_string(), sumsq.to_string()))
}

fn child_query(index_dir: &Path, suite: &Path, as_of: &str, repeat: usize) -> Result<(), AnyError> {
    let started = Instant::now();
    let index = Index::open(index_dir)?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let catalog = Catalog::load(suite)?;
    let as_of = AsOf::parse(as_of, index.zone())?;
    let codes: Vec<String> = catalog.segments().iter().map(|s| s.code.clone()).collect();
    // First query of a cold process: the first segment, once.
    let t = Instant::now();
    Evaluator::new(&index, &catalog, as_of).evaluate(&codes[0])?;
    let first_query_ms = t.elapsed().as_secs_f64() * 1e3 + open_ms;
    // Rounds over the whole suite, not a segment's runs back to back: a
    // burst of load from elsewhere on the machine then slows one run of
    // several segments, which the median drops, rather than every run of
    // one segment.
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(repeat); codes.len()];
    let mut prints = Vec::with_capacity(codes.len());
    for round in 0..repeat.max(1) {
        for (k, code) in codes.iter().enumerate() {
            // A fresh evaluator each run: nothing carried over but the
            // index's decoded bitmaps, as in a long-running service.
            let eval = Evaluator::new(&index, &catalog, as_of).without_sharing();
            let t = Instant::now();
            let m = eval.evaluate(code)?;
            times[k].push(t.elapsed().as_secs_f64());
            if round == 0 {
                prints.push(fingerprint(&index, &m)?);
            }
        }
    }
    let mut segments = serde_json::Map::new();
    for ((code, times), (count, sum, sumsq)) in codes.iter().zip(times).zip(prints) {
        segments.insert(
            code.clone(),
            json!({"seconds": times, "count": count, "sum": sum, "sumsq": sumsq}),
        );
    }
    // The whole suite as one batch with shared sub-conditions.
    let t = Instant::now();
    let eval = Evaluator::new(&index, &catalog, as_of);
    for code in &codes {
        eval.evaluate(code)?;
    }
    let batch_seconds = t.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"open_ms": open_ms, "first_query_ms": first_query_ms, "first_segment": codes[0],
               "segments": segments, "batch_seconds": batch_seconds, "peak_rss_bytes": self_rss()})
    );
    Ok(())
}

fn setup_venv(root: &Path) -> Result<PathBuf, AnyError> {
    let script = root.join("benches").join("duckdb").join("setup_venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        return Err(format!("{} failed", script.display()).into());
    }
    let python = String::from_utf8(out.stdout)?
        .lines()
        .last()
        .ok_or("setup_venv.sh printed no python path")?
        .trim()
        .to_string();
    Ok(PathBuf::from(python))
}

#[allow(clippy::too_many_arguments)]
fn run_duckdb(
    python: &Path,
    root: &Path,
    data: &Path,
    suite: &Path,
    args: &Args,
    mode: &str,
    repeat: usize,
    work: &Path,
) -> Result<Value, AnyError> {
    eprintln!("DuckDB ({mode})");
    let out = work.join(format!("duckdb-{mode}.json"));
    let status = Command::new(python)
        .arg(root.join("benches").join("duckdb").join("duckdb_suite.py"))
        .args(["--data".as_ref(), data.as_os_str()])
        .args(["--segments".as_ref(), suite.as_os_str()])
        .args([
            "--as-of",
            &args.as_of,
            "--timezone",
            &args.timezone,
            "--mode",
            mode,
        ])
        .args(["--repeat", &repeat.to_string(), "--threads", "2"])
        .args(["--out".as_ref(), out.as_os_str()])
        .status()?;
    if !status.success() {
        return Err(format!("duckdb_suite.py ({mode}) failed").into());
    }
    Ok(serde_json::from_str(&std::fs::read_to_string(&out)?)?)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn seconds(v: &Value) -> Vec<f64> {
    v["seconds"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default()
}

fn gib(b: u64) -> String {
    format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64)
}

#[allow(clippy::too_many_arguments)]
fn report(
    args: &Args,
    build: &Value,
    build_rss: u64,
    query: &Value,
    query_rss: u64,
    mem: &Value,
    files: &Value,
    parquet_bytes: u64,
) -> String {
    let mut r = String::new();
    let lines = build["lines"].as_u64().unwrap_or(0);
    r += &format!(
        "## {} customers, {} order lines (as of {}, {}, {} runs each)\n\n",
        args.customers, lines, args.as_of, args.timezone, args.repeat
    );
    r += "| segment | members | segdex ms | DuckDB mem ms | × | DuckDB files ms | × | answers |\n";
    r += "|---|---:|---:|---:|---:|---:|---:|---|\n";
    let segs = query["segments"].as_object().cloned().unwrap_or_default();
    let (mut ours, mut theirs_mem, mut theirs_files) = (Vec::new(), Vec::new(), Vec::new());
    let mut ratios_mem = Vec::new();
    let mut ratios_files = Vec::new();
    let mut slowest = (String::new(), 0.0f64);
    for (code, s) in &segs {
        let ms = median(&seconds(s)) * 1e3;
        ours.push(ms);
        if ms > slowest.1 {
            slowest = (code.clone(), ms);
        }
        let m = &mem["segments"][code];
        let f = &files["segments"][code];
        let mem_ms = median(&seconds(m)) * 1e3;
        let files_ms = median(&seconds(f)) * 1e3;
        let verdict = |d: &Value| -> &str {
            if d.is_null() {
                "-"
            } else if d.get("error").is_some_and(|e| !e.is_null()) {
                "ERROR"
            } else if d["count"].as_u64() == s["count"].as_u64()
                && d["sum"].as_str() == s["sum"].as_str()
                && d["sumsq"].as_str() == s["sumsq"].as_str()
            {
                "equal"
            } else {
                "DIFFERENT"
            }
        };
        let (vm, vf) = (verdict(m), verdict(f));
        let answers = match (vm, vf) {
            ("equal", "equal") | ("equal", "-") => "equal".to_string(),
            ("-", "-") => "-".to_string(),
            _ => format!("{vm} / {vf}"),
        };
        if mem_ms.is_finite() {
            theirs_mem.push(mem_ms);
            ratios_mem.push(mem_ms / ms);
        }
        if files_ms.is_finite() {
            theirs_files.push(files_ms);
            ratios_files.push(files_ms / ms);
        }
        let fmt = |x: f64| {
            if x.is_finite() {
                format!("{x:.1}")
            } else {
                "-".into()
            }
        };
        let ratio = |x: f64| {
            if x.is_finite() {
                format!("{:.0}", x / ms)
            } else {
                "-".into()
            }
        };
        r += &format!(
            "| {code} | {} | {ms:.2} | {} | {} | {} | {} | {answers} |\n",
            s["count"],
            fmt(mem_ms),
            ratio(mem_ms),
            fmt(files_ms),
            ratio(files_ms)
        );
    }
    let total = |v: &[f64]| v.iter().sum::<f64>();
    // "-" where a side did not run.
    let num = |x: f64, digits: usize| {
        if x.is_finite() && x != 0.0 {
            format!("**{x:.digits$}**")
        } else {
            "-".to_string()
        }
    };
    r += &format!(
        "| **total** | | {} | {} | {} | {} | {} | |\n",
        num(total(&ours), 1),
        num(total(&theirs_mem), 1),
        num(total(&theirs_mem) / total(&ours), 0),
        num(total(&theirs_files), 1),
        num(total(&theirs_files) / total(&ours), 0)
    );
    r += &format!(
        "| **median** | | {} | {} | {} (median ratio) | {} | {} | |\n\n",
        num(median(&ours), 2),
        num(median(&theirs_mem), 1),
        num(median(&ratios_mem), 0),
        num(median(&theirs_files), 1),
        num(median(&ratios_files), 0)
    );
    let load = mem["load_seconds"].as_f64().unwrap_or(f64::NAN);
    let build_s = build["seconds"].as_f64().unwrap_or(f64::NAN);
    let index_bytes = build["bytes"].as_u64().unwrap_or(0);
    r += "| measure | value |\n|---|---|\n";
    r += &format!("| segments | {} |\n", segs.len());
    r += &format!(
        "| slowest segment | {} ({:.1} ms) |\n",
        slowest.0, slowest.1
    );
    r += &format!(
        "| whole suite as one batch (shared sub-conditions) | {:.1} ms |\n",
        query["batch_seconds"].as_f64().unwrap_or(f64::NAN) * 1e3
    );
    r += &format!(
        "| index open | {:.1} ms |\n| first query after a cold process start (open + `{}`) | {:.1} ms |\n",
        query["open_ms"].as_f64().unwrap_or(f64::NAN),
        query["first_segment"].as_str().unwrap_or("?"),
        query["first_query_ms"].as_f64().unwrap_or(f64::NAN)
    );
    r += &format!(
        "| build | {build_s:.1} s (DuckDB load into memory {load:.1} s: {:.2}×) |\n",
        build_s / load
    );
    r += &format!(
        "| index bytes | {} ({:.2}× the Parquet input, {}) |\n",
        index_bytes,
        index_bytes as f64 / parquet_bytes.max(1) as f64,
        parquet_bytes
    );
    r += &format!(
        "| peak RSS | build {}, query {}, DuckDB in memory {} |\n",
        gib(build_rss),
        gib(query_rss),
        mem["peak_rss_bytes"]
            .as_u64()
            .map(gib)
            .unwrap_or_else(|| "-".into())
    );
    if let Some(v) = mem["duckdb_version"].as_str() {
        r += &format!("| DuckDB | {v}, {} threads |\n", mem["threads"]);
    }
    r += "\nIndex bytes by part:\n\n| part | sections | bytes |\n|---|---:|---:|\n";
    for p in build["parts"].as_array().into_iter().flatten() {
        r += &format!(
            "| {} | {} | {} |\n",
            p["part"].as_str().unwrap_or("?"),
            p["sections"],
            p["bytes"]
        );
    }
    r
}
