//! Text columns kept for exports (names, e-mails, postal codes), compressed
//! with zstd in blocks of [`BLOCK_ROWS`] rows: exports read a few blocks,
//! rules never read them, so they should cost little space.
//!
//! Section layout: `rows: u64`, `blocks: u64`, `blocks + 1` u64 offsets
//! into the compressed area, then the compressed blocks. A block
//! decompresses to `k + 1` u32 offsets and the UTF-8 bytes of its `k` rows.

use rayon::prelude::*;
use segdex_bitmap::Bitmap;

/// Rows per compressed block.
pub const BLOCK_ROWS: usize = 4096;

/// Encodes the texts of every row (a null is an empty text).
pub fn encode(texts: &[String]) -> std::io::Result<Vec<u8>> {
    let blocks: Vec<Vec<u8>> = texts
        .par_chunks(BLOCK_ROWS)
        .map(|rows| {
            let mut raw = Vec::new();
            let mut end = 0u32;
            raw.extend_from_slice(&0u32.to_le_bytes());
            for t in rows {
                end += t.len() as u32;
                raw.extend_from_slice(&end.to_le_bytes());
            }
            for t in rows {
                raw.extend_from_slice(t.as_bytes());
            }
            zstd::bulk::compress(&raw, 3)
        })
        .collect::<std::io::Result<_>>()?;
    let mut out = Vec::new();
    out.extend_from_slice(&(texts.len() as u64).to_le_bytes());
    out.extend_from_slice(&(blocks.len() as u64).to_le_bytes());
    let mut at = 0u64;
    out.extend_from_slice(&at.to_le_bytes());
    for b in &blocks {
        at += b.len() as u64;
        out.extend_from_slice(&at.to_le_bytes());
    }
    for b in &blocks {
        out.extend_from_slice(b);
    }
    Ok(out)
}

/// The texts of `rows` (ascending) from a section of `customers` rows;
/// `None` if the section is inconsistent or a row is out of range.
pub fn read(bytes: &[u8], customers: usize, rows: &Bitmap) -> Option<Vec<String>> {
    let word = |i: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            bytes.get(8 * i..8 * i + 8)?.try_into().ok()?,
        ))
    };
    let n = usize::try_from(word(0)?).ok()?;
    let blocks = usize::try_from(word(1)?).ok()?;
    if n != customers || blocks != n.div_ceil(BLOCK_ROWS) {
        return None;
    }
    let data = 8 * (3 + blocks);
    let mut out = Vec::with_capacity(rows.len() as usize);
    let mut current: Option<(usize, Vec<u8>)> = None;
    for r in rows.iter() {
        let r = r as usize;
        if r >= n {
            return None;
        }
        let b = r / BLOCK_ROWS;
        if current.as_ref().is_none_or(|(k, _)| *k != b) {
            let lo = usize::try_from(word(2 + b)?).ok()?;
            let hi = usize::try_from(word(3 + b)?).ok()?;
            let block = bytes.get(data.checked_add(lo)?..data.checked_add(hi)?)?;
            current = Some((b, zstd::stream::decode_all(block).ok()?));
        }
        let (_, raw) = current.as_ref()?;
        let k = (n - b * BLOCK_ROWS).min(BLOCK_ROWS);
        let local = r - b * BLOCK_ROWS;
        let off = |i: usize| -> Option<usize> {
            Some(u32::from_le_bytes(raw.get(4 * i..4 * i + 4)?.try_into().ok()?) as usize)
        };
        let text_base = 4 * (k + 1);
        let s = raw.get(text_base + off(local)?..text_base + off(local + 1)?)?;
        out.push(std::str::from_utf8(s).ok()?.to_string());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_blocks_and_rejects_damage() {
        let texts: Vec<String> = (0..10_000)
            .map(|i| {
                if i % 7 == 0 {
                    String::new()
                } else {
                    format!("Zoë \"{i}\", Jr.")
                }
            })
            .collect();
        let bytes = encode(&texts).unwrap();
        let rows: Bitmap = [0u32, 1, 4095, 4096, 9_999].into_iter().collect();
        let got = read(&bytes, texts.len(), &rows).unwrap();
        let want: Vec<String> = rows.iter().map(|r| texts[r as usize].clone()).collect();
        assert_eq!(got, want);
        assert!(read(&bytes, texts.len() + 1, &rows).is_none());
        let out_of_range: Bitmap = [10_000u32].into_iter().collect();
        assert!(read(&bytes, texts.len(), &out_of_range).is_none());
        assert!(read(&bytes[..20], texts.len(), &rows).is_none());
    }
}
