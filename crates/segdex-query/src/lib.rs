//! The segment language and its evaluation.
//!
//! * [`lang`]: segment definitions parsed from JSON, errors with paths;
//! * [`window`]: the as-of instant, windows of days, anniversaries, ages;
//! * [`catalog`]: a set of segments with references resolved;
//! * [`eval`]: planning against an index and parallel bitmap evaluation.

pub mod catalog;
pub mod eval;
mod family;
pub mod lang;
mod line_sums;
mod verify;
pub mod window;

pub use catalog::Catalog;
pub use eval::{Evaluator, SharingStats};
pub use lang::{Segment, SegmentError};
pub use window::AsOf;

use std::path::PathBuf;

/// Errors of loading or evaluating segments.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// Invalid segment definitions (every one found).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Segments(Vec<SegmentError>),
    /// The index could not be read.
    #[error(transparent)]
    Index(#[from] segdex_index::IndexError),
    /// A segments file could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// A segment code that the catalog does not hold.
    #[error("no segment with code `{0}`")]
    UnknownSegment(String),
    /// An as-of that cannot be read.
    #[error("{0}")]
    AsOf(String),
}
