//! segdex: customer segmentation over roaring-bitmap indexes built from
//! Parquet.
//!
//! ```no_run
//! use segdex::{AsOf, Catalog, Evaluator, Index};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let index = Index::open("target/my-index".as_ref())?;
//! let catalog = Catalog::load("data/segments".as_ref())?;
//! let as_of = AsOf::parse("2026-11-20", index.zone())?;
//! let eval = Evaluator::new(&index, &catalog, as_of);
//! let members = eval.evaluate("munchie_lovers")?;
//! println!("{} members", members.len());
//! for id in index.external_ids(&members)? {
//!     println!("{id}");
//! }
//! # Ok(()) }
//! ```
//!
//! The crates behind it, in the direction data flows:
//! [`segdex_ingest`] (Parquet + mapping → Arrow), [`segdex_index`] (the
//! index, built and opened), [`segdex_query`] (the language and its
//! evaluation), with [`segdex_bitmap`] under them all and
//! [`segdex_datagen`] for synthetic data.

pub use segdex_bitmap::{self as bitmap, Bitmap};
pub use segdex_datagen as datagen;
pub use segdex_index::model::BuildSummary;
pub use segdex_index::{self as index, BuildOptions, ExternalId, Index, IndexError, build_index};
pub use segdex_ingest as ingest;
pub use segdex_query::{
    self as query, AsOf, Catalog, Evaluator, QueryError, Segment, SegmentError,
};
pub use segdex_recalc as recalc;

use std::sync::Arc;

/// Evaluates every segment of `catalog` (in dependency order, sharing the
/// results of referenced segments) and returns `(code, members)` in
/// definition order.
pub fn evaluate_all(
    index: &Index,
    catalog: &Catalog,
    as_of: AsOf,
) -> Result<Vec<(String, Arc<Bitmap>)>, QueryError> {
    let eval = Evaluator::new(index, catalog, as_of);
    let problems = eval.check();
    if !problems.is_empty() {
        return Err(QueryError::Segments(problems));
    }
    for code in catalog.dependency_order() {
        eval.evaluate(&code)?;
    }
    catalog
        .segments()
        .iter()
        .map(|s| Ok((s.code.clone(), eval.evaluate(&s.code)?)))
        .collect()
}
