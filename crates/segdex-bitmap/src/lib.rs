//! Bitmaps for segdex, with no knowledge of customers.
//!
//! * [`Bitmap`]: the roaring bitmap every set of row ids is held in.
//! * [`bsi`]: bit-sliced indexes (O'Neil & Quass) answering range predicates
//!   over integers in one pass over the slices.
//! * [`sections`]: the checked, memory-mapped container file the index is
//!   stored in; every section carries an xxh3 checksum that is verified
//!   before the section is first trusted.

pub mod bsi;
pub mod sections;

/// The set type used for row ids everywhere in segdex (roaring-rs).
pub type Bitmap = roaring::RoaringBitmap;

pub use bsi::{Bsi, BsiBuilder};
pub use sections::{SectionError, SectionFile, SectionWriter};

/// Unions any number of bitmaps (roaring's multi-way OR).
pub fn union_all<'a, I>(bitmaps: I) -> Bitmap
where
    I: IntoIterator<Item = &'a Bitmap>,
{
    use roaring::MultiOps;
    bitmaps.into_iter().union()
}

/// The bitmap of row ids `0..n`.
pub fn all_rows(n: u32) -> Bitmap {
    let mut b = Bitmap::new();
    b.insert_range(0..n);
    b
}

/// Serializes a bitmap in the portable roaring format (interoperable with
/// CRoaring, pyroaring and Java RoaringBitmap).
pub fn to_portable_bytes(bitmap: &Bitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(bitmap.serialized_size());
    bitmap
        .serialize_into(&mut out)
        .expect("writing to a Vec cannot fail");
    out
}

/// Reads a bitmap in the portable roaring format, validating it.
pub fn from_portable_bytes(bytes: &[u8]) -> std::io::Result<Bitmap> {
    Bitmap::deserialize_from(bytes)
}
