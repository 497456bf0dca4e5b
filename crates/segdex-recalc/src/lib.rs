//! Batch recalculation of segments (SPEC §4) and snapshot exports (§5).
//!
//! [`run_pass`] evaluates every active segment of a [`Definitions`] set as
//! of one instant — in dependency order, level by level in parallel, with
//! identical sub-conditions across segments computed once — and commits
//! the result to a *state directory* in one atomic step: the segments'
//! members, who entered and left each segment since the previous pass, and
//! one history row per segment. [`export_csv`] writes a segment's latest
//! members as the SPEC §5 snapshot CSV; [`history_table`] and
//! [`history_svg`] show the size history.
//!
//! # Segments in a pass
//! * `dynamic` segments are recomputed at every pass.
//! * `static` segments are formed on their first pass and frozen: later
//!   passes keep their members, and `{"segment": code}` references to them
//!   see the frozen members (SPEC §2.4). A static segment that is switched
//!   to `dynamic` is recomputed from then on; switched back, it is formed
//!   again on its next pass.
//! * Inactive segments are skipped (their files stay as they were); a
//!   reference to one evaluates its rule at the pass's as-of.
//! * Events are relative to the segment's members after the previous pass
//!   that recalculated it, whatever that pass's as-of (for a segment that
//!   was inactive or invalid in between, its last stored members).
//! * An invalid segment (bad JSON shape, unknown attribute, duplicate code,
//!   unknown reference, cycle, ...) is reported with its code and JSON path
//!   and skipped, as is every segment that references it; the others run.
//!   Its files stay as they were. A segment *file* that cannot be read or
//!   is not JSON fails [`Definitions::load`], before the state is touched.
//!
//! # State directory
//! ```text
//! DIR/
//!   current -> gen/000007             the commit point (a symlink)
//!   state.json -> current/state.json  these four links never change;
//!   members -> current/members        they resolve through `current`,
//!   events -> current/events          so all switch together
//!   history.parquet -> current/history.parquet
//!   gen/000007/                       the committed generation (pass 7)
//!     state.json                      format, index identity, passes, segments
//!     members/<code>.parquet          column customer_id (int64 or utf8)
//!     members/<code>.roaring          portable roaring bitmap of row ids
//!     events/pass-000001.parquet ...  one per pass: code, customer_id,
//!                                     change (entered|left), as_of
//!     history.parquet                 code, as_of, size, entered, left,
//!                                     seconds, pass
//!   gen/000006/                       the previous generation, kept until
//!                                     the next pass starts, for readers
//!                                     that opened it
//!   .lock                             flock held by the running pass
//! ```
//! `as_of` columns are timestamps in microseconds, UTC: the pass's clip
//! instant (for a `YYYY-MM-DD` as-of, the last microsecond of that local
//! day). Files that did not change are hard links to the previous
//! generation's (a copy where the file system has no hard links). Segments
//! whose rules are the same (equal canonical text: the same conditions up
//! to order and nesting of `all`/`any`) have the same members in a pass:
//! one of them writes the member files and the others link them (with
//! sharing on, [`PassOptions::sharing`]); each still has its own events
//! and history, relative to its own previous members. A library that
//! repeats templates across brands and stores has many such twins (the
//! scale run's 10,000 segments have 1,210 distinct rules).
//!
//! # Atomicity
//! A pass writes generation `gen/<n>` completely (members, events,
//! history, state.json; a segment's member files are written as soon as
//! it is evaluated, so the disk writes while the cores evaluate), makes it
//! durable (fsync of every new file and
//! directory, or one `syncfs` when there are many files), then commits by
//! creating the symlink `DIR/.current.tmp -> gen/<n>` and renaming it over
//! `DIR/current` — one `rename(2)`, atomic — and fsyncs `DIR`. Before that
//! rename, `current` names the previous, untouched generation, so a crash
//! at any earlier point leaves the previous state whole (the half-written
//! `gen/<n>` is invisible and is deleted by the next pass). After it, the
//! new generation is complete and durable. The documented paths are fixed
//! symlinks through `current`, so readers see either the old or the new
//! state, never a mix. Generations other than the current one and its
//! predecessor are deleted after the commit, and stale ones at the start
//! of the next pass; the predecessor is deleted while the next pass
//! evaluates (that pass reads only the current generation). A pass takes an exclusive `flock` on `DIR/.lock`, so
//! two passes cannot interleave. This needs a Unix file system (symlinks,
//! hard links, `flock`).
//!
//! # Index identity
//! Members are stored as row ids of the index, so a state directory is
//! tied to the index's customer id dictionary: `state.json` records
//! [`segdex_index::Index::customer_ids_fingerprint`], and a state made
//! from an index with another dictionary (other customers, or the same in
//! another order) is refused, as is a state of another format version.
//! Rebuilding the index from data with the same customers (new orders, for
//! instance) keeps the state usable.
//!
//! # Example
//! ```no_run
//! use segdex_recalc::{Definitions, PassOptions, State, export_csv, run_pass};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let index = segdex_index::Index::open("target/index".as_ref())?;
//! let defs = Definitions::load("data/segments".as_ref())?;
//! let as_of = segdex_query::AsOf::parse("2026-11-20", index.zone())?;
//! let state = std::path::Path::new("target/state");
//! let report = run_pass(&index, &defs, as_of, state, &PassOptions::default(), &|_| {})?;
//! for s in &report.segments {
//!     println!("{}: {} (+{} -{})", s.code, s.size, s.entered, s.left);
//! }
//! for problem in &report.problems {
//!     eprintln!("{problem}");
//! }
//! let members = State::open(state, &index)?.members("win_back")?;
//! export_csv(&index, state, "win_back", "win_back.csv".as_ref())?;
//! # let _ = members;
//! # Ok(()) }
//! ```
//!
//! # Crash testing
//! When the environment variable `SEGDEX_CRASH_AT` names one of
//! [`CRASH_POINTS`], the process kills itself with `SIGKILL` at that point
//! of a pass (the hook is compiled in, and inert unless the variable is
//! set). The crash tests use it to check every step of the commit.

#![warn(missing_docs)]

mod crash;
mod defs;
mod export;
mod files;
mod history;
mod pass;
mod state;

pub use crash::CRASH_POINTS;
pub use defs::Definitions;
pub use export::{EXPORT_COLUMNS, ExportSummary, export_csv};
pub use history::SVG_MAX_SERIES;
pub use history::{HistoryRow, history_svg, history_table};
pub use pass::{
    Outcome, PassOptions, PassReport, Progress, SegmentReport, Stage, as_of_micros, as_of_text,
    run_pass,
};
pub use state::{
    Change, Event, IndexIdentity, PassRecord, STATE_FORMAT, STATE_FORMAT_VERSION, SegmentMode,
    SegmentRecord, State, visible_files,
};

use std::path::PathBuf;

/// Errors of a recalculation, of reading its state, or of an export.
#[derive(Debug, thiserror::Error)]
pub enum RecalcError {
    /// A file system operation failed.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The state directory cannot be used (not a state directory, another
    /// index, another format version, corrupt, busy).
    #[error("state directory {dir}: {message}")]
    State {
        /// The state directory.
        dir: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// A segment definitions file could not be read or is not JSON.
    #[error("{path}: {message}")]
    Definitions {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A Parquet file could not be written or read.
    #[error("{path}: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] segdex_index::IndexError),
    /// Evaluation failed for a reason other than a segment's definition.
    #[error(transparent)]
    Query(#[from] segdex_query::QueryError),
    /// The state holds no members for this segment.
    #[error("state directory {dir}: no members of segment `{code}`: {reason}")]
    NoMembers {
        /// The state directory.
        dir: PathBuf,
        /// The segment code asked for.
        code: String,
        /// Why.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = RecalcError> = std::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path, e: impl std::fmt::Display) -> RecalcError {
    RecalcError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

pub(crate) fn pq_err(path: &std::path::Path, e: impl std::fmt::Display) -> RecalcError {
    RecalcError::Parquet {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}
