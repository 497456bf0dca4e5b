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

/// Row ids per block of [`for_each_block`].
pub const BLOCK_ROWS: usize = 4096;

/// Calls `f` with the values of `bitmap`, ascending, in blocks of at most
/// [`BLOCK_ROWS`] (roaring's `next_many`: a container at a time, several
/// times faster than one `next` per value); stops at the first error.
pub fn for_each_block<E>(
    bitmap: &Bitmap,
    mut f: impl FnMut(&[u32]) -> Result<(), E>,
) -> Result<(), E> {
    let mut buf = [0u32; BLOCK_ROWS];
    let mut it = bitmap.iter();
    loop {
        let block = it.next_many(&mut buf);
        if block.is_empty() {
            return Ok(());
        }
        f(block)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_every_value_once_in_order() {
        // Array, bitmap and run containers, and a block boundary inside
        // each kind.
        let mut b: Bitmap = (0..50_000u32).map(|i| i * 3).collect();
        b.insert_range(200_000..270_000);
        b.extend((1u32 << 20..(1 << 20) + 100).map(|i| i * 7));
        b.optimize();
        for bitmap in [Bitmap::new(), all_rows(1), b] {
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            for_each_block(&bitmap, |block| {
                sizes.push(block.len());
                got.extend_from_slice(block);
                Ok::<_, ()>(())
            })
            .unwrap();
            assert_eq!(got, bitmap.iter().collect::<Vec<_>>());
            assert!(
                sizes.iter().all(|&n| (1..=BLOCK_ROWS).contains(&n)),
                "{sizes:?}"
            );
        }
    }

    #[test]
    fn blocks_stop_at_the_first_error() {
        let b = all_rows(3 * BLOCK_ROWS as u32);
        let mut calls = 0;
        let r = for_each_block(&b, |_| {
            calls += 1;
            if calls == 2 { Err("stop") } else { Ok(()) }
        });
        assert_eq!((r, calls), (Err("stop"), 2));
    }
}
