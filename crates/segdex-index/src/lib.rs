//! The segdex index: dense row ids, id dictionaries, attribute bitmaps,
//! bit-sliced indexes for numbers, time-bucketed bitmaps for dates and for
//! purchases, and a customer-sorted line store, built from Arrow batches
//! and opened through memmap2.
//!
//! Layout of an index directory:
//! * `manifest.json` — format name and version, data file size, meta section;
//! * `index.seg` — a [`segdex_bitmap::SectionFile`]: every bitmap, the id
//!   dictionaries, one line-store section per chunk of 2^16 customers, and
//!   the [`model::Meta`] JSON.
//!
//! Opening reads the manifest and the section table (milliseconds whatever
//! the size); each section's checksum is verified before its first use.

pub mod build;
pub mod chunk;
pub mod dates;
pub mod ids;
pub mod model;
pub mod open;
pub mod packed;
pub mod stored;
pub mod time;

pub use build::{BuildOptions, build_index};
pub use model::{CHUNK_ROWS, Field, FieldKind, IdKind, Meta, Value};
pub use open::{ExternalId, Index};

use std::path::PathBuf;

/// Errors building or opening an index.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// Reading the input failed.
    #[error(transparent)]
    Ingest(#[from] segdex_ingest::IngestError),
    /// The index file is unreadable or corrupt.
    #[error(transparent)]
    Section(#[from] segdex_bitmap::SectionError),
    /// A file system operation failed.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The directory is not a usable segdex index.
    #[error("{path}: {message}")]
    Format {
        /// The index directory or file.
        path: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },
    /// Bad input data or options (the message names where).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T, E = IndexError> = std::result::Result<T, E>;
