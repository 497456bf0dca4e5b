//! `segdex recalc`, `segdex history` and `segdex export`: thin shells over
//! `segdex::recalc`.

use crate::AnyError;
use indicatif::{ProgressBar, ProgressStyle};
use segdex::recalc::{self, Definitions, Outcome, PassOptions, Progress, Stage, State};
use segdex::{AsOf, Index};
use std::io::{IsTerminal, Write};
use std::path::Path;

/// Exit status of a pass that committed but skipped invalid segments.
pub const EXIT_SEGMENT_ERRORS: i32 = 2;

/// Runs one recalculation pass and prints a table of the segments.
pub fn recalc(
    index: &Path,
    segments: &Path,
    as_of: &str,
    state: &Path,
    no_sharing: bool,
) -> Result<(), AnyError> {
    let index = Index::open(index)?;
    // A file that is not JSON fails here, before the state is touched.
    let defs = Definitions::load(segments)?;
    let as_of = AsOf::parse(as_of, index.zone())?;
    let bar = std::io::stdout().is_terminal().then(|| {
        let pb = ProgressBar::new(0);
        pb.set_style(
            ProgressStyle::with_template("{msg:10} {bar:40} {pos}/{len} {elapsed}")
                .expect("template"),
        );
        pb
    });
    let progress = |p: Progress| {
        if let Some(b) = &bar {
            b.set_message(match p.stage {
                Stage::Evaluating => "evaluating",
                Stage::Writing => "writing",
                Stage::Committing => "committing",
            });
            b.set_length(p.total);
            b.set_position(p.done);
        }
    };
    let opts = PassOptions {
        sharing: !no_sharing,
    };
    let result = recalc::run_pass(&index, &defs, as_of, state, &opts, &progress);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let report = result?;

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let width = report
        .segments
        .iter()
        .map(|s| s.code.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:width$}  {:10}  {:>10}  {:>8}  {:>8}  {:>8}",
        "code", "outcome", "size", "entered", "left", "seconds"
    )?;
    for s in &report.segments {
        let outcome = match s.outcome {
            Outcome::Recomputed => "recomputed",
            Outcome::Formed => "formed",
            Outcome::Frozen => "frozen",
        };
        writeln!(
            out,
            "{:width$}  {outcome:10}  {:>10}  {:>8}  {:>8}  {:>8.3}",
            s.code, s.size, s.entered, s.left, s.seconds
        )?;
    }
    writeln!(
        out,
        "pass {} as of {}: {} segments ({} frozen), {} inactive skipped, {} invalid or skipped; {} shared sub-conditions reused {} times; {:.2}s (evaluate {:.2}, write {:.2}, sync and commit {:.2}, clean up {:.2}) -> {}",
        report.pass,
        report.as_of,
        report.segments.len(),
        report
            .segments
            .iter()
            .filter(|s| s.outcome == Outcome::Frozen)
            .count(),
        report.inactive.len(),
        report.problems.len(),
        report.sharing.shared_conditions,
        report.sharing.hits,
        report.seconds,
        report.evaluate_seconds,
        report.write_seconds,
        report.sync_seconds,
        report.cleanup_seconds,
        state.display()
    )?;
    out.flush()?;
    drop(out);
    if !report.problems.is_empty() {
        for p in &report.problems {
            eprintln!("error: {p}");
        }
        eprintln!(
            "error: pass {} was committed without the {} segment(s) above",
            report.pass,
            report.problems.len()
        );
        std::process::exit(EXIT_SEGMENT_ERRORS);
    }
    Ok(())
}

/// Prints the size history as a table; writes an SVG chart when asked.
pub fn history(state: &Path, segment: Option<&str>, svg: Option<&Path>) -> Result<(), AnyError> {
    let s = State::open_any(state)?;
    let mut rows = s.history()?;
    if let Some(code) = segment {
        rows.retain(|r| r.code == code);
        if rows.is_empty() {
            return Err(format!(
                "--segment {code}: no history for this segment in {}",
                state.display()
            )
            .into());
        }
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(recalc::history_table(&rows, s.passes()).as_bytes())?;
    out.flush()?;
    if let Some(path) = svg {
        let text = recalc::history_svg(&rows, &s.index_identity().timezone);
        let name = path.file_name().ok_or("--svg: not a file name")?;
        let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

/// Writes the snapshot CSV of a segment's latest members.
pub fn export(index: &Path, state: &Path, segment: &str, csv: &Path) -> Result<(), AnyError> {
    let index = Index::open(index)?;
    let pb = crate::spinner();
    if let Some(pb) = &pb {
        pb.set_message(format!("exporting {segment}"));
    }
    let result = recalc::export_csv(&index, state, segment, csv);
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let s = result?;
    println!(
        "wrote {}: {} members of {segment} (pass {})",
        s.path.display(),
        s.rows,
        s.pass
    );
    Ok(())
}
