//! Parquet and the mapping file in, canonical Arrow record batches out.
//!
//! * [`mapping`]: the TOML mapping file (SPEC §1) that renames a warehouse
//!   export's columns to the canonical ones.
//! * [`tables`]: finds each table's files, checks their schemas, applies the
//!   mapping (renames, `exclude`, naming clashes) and reads row groups in
//!   parallel, in large batches, one file handle per worker.
//! * [`columns`]: turns the many Arrow types a user's file may carry into the
//!   few the index needs (ids, strings, instants, days, exact cents), with
//!   errors that name the file, the column and the first offending value.

pub mod columns;
pub mod mapping;
pub mod money;
pub mod tables;

pub use mapping::Mapping;
pub use tables::{Column, Sources, Table, TableKind};

use std::path::PathBuf;

/// Everything that can go wrong reading the input, each naming where.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A file or directory could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The mapping file is malformed or names something that does not exist.
    #[error("mapping {path}: {message}")]
    Mapping {
        /// The mapping file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A required table is missing.
    #[error("table `{table}` not found: {message}")]
    MissingTable {
        /// Canonical table name.
        table: &'static str,
        /// Where it was looked for.
        message: String,
    },
    /// A required column is missing from a table.
    #[error("{path}: required column `{column}` is missing{hint}")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// Canonical column name.
        column: String,
        /// How to fix it (mapping hint).
        hint: String,
    },
    /// A column has a type the engine cannot use for its role.
    #[error("{path}: column `{column}` has type {found}, expected {expected}")]
    WrongType {
        /// The file.
        path: PathBuf,
        /// Source column name.
        column: String,
        /// The Arrow type found.
        found: String,
        /// What the role needs.
        expected: String,
    },
    /// A value is not acceptable (duplicate key, out of range, ...).
    #[error("{path}: column `{column}`, row {row}: {message} (value {value})")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// Source column name.
        column: String,
        /// Row number within the file (0-based).
        row: u64,
        /// The offending value as text.
        value: String,
        /// What is wrong with it.
        message: String,
    },
    /// Parquet could not decode a file.
    #[error("{path}: cannot read Parquet: {message}")]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The decoder's message.
        message: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
