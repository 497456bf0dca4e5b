//! A checked container file: a sequence of byte sections, each 8-byte
//! aligned and protected by an xxh3-64 checksum, with a table of contents at
//! the end.
//!
//! ```text
//! "SGDXSEC1"                      8-byte magic
//! section 0 .. section n-1        each padded to a multiple of 8 bytes
//! table: n × (offset, len, xxh3)  little-endian u64s
//! footer: table offset, n, xxh3(table), "SGDXEND1"
//! ```
//!
//! Opening maps the file and checks the magic, the footer and the table's
//! own checksum, which costs microseconds whatever the file's size. A
//! section's checksum is verified the first time it is read, so a corrupt
//! byte is reported as an error naming the file and the section — never
//! returned as data.

use crate::Bitmap;
use memmap2::Mmap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use xxhash_rust::xxh3::xxh3_64;

const MAGIC: &[u8; 8] = b"SGDXSEC1";
const END_MAGIC: &[u8; 8] = b"SGDXEND1";
const FOOTER_LEN: usize = 32;

/// Why a section file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SectionError {
    /// An I/O failure on the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file's structure is not what segdex wrote.
    #[error(
        "{path}: not a valid segdex section file ({reason}); the index is truncated or corrupt, rebuild it"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: u64,
    len: u64,
    hash: u64,
}

/// Writes sections to a new file.
pub struct SectionWriter {
    path: PathBuf,
    out: BufWriter<File>,
    pos: u64,
    table: Vec<Entry>,
}

impl SectionWriter {
    /// Creates (truncates) `path`.
    pub fn create(path: &Path) -> Result<Self, SectionError> {
        let io = |source| SectionError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC).map_err(io)?;
        Ok(Self {
            path: path.to_path_buf(),
            out,
            pos: MAGIC.len() as u64,
            table: Vec::new(),
        })
    }

    fn io(&self, source: std::io::Error) -> SectionError {
        SectionError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Appends one section and returns its id.
    pub fn add(&mut self, bytes: &[u8]) -> Result<u32, SectionError> {
        let id = u32::try_from(self.table.len()).map_err(|_| SectionError::Corrupt {
            path: self.path.clone(),
            reason: "more than 2^32 sections".into(),
        })?;
        let pad = (8 - bytes.len() % 8) % 8;
        // The checksum covers the padding too, so no byte goes unchecked.
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        hasher.update(bytes);
        hasher.update(&[0u8; 8][..pad]);
        self.table.push(Entry {
            offset: self.pos,
            len: bytes.len() as u64,
            hash: hasher.digest(),
        });
        self.out.write_all(bytes).map_err(|e| self.io(e))?;
        self.out
            .write_all(&[0u8; 8][..pad])
            .map_err(|e| self.io(e))?;
        self.pos += (bytes.len() + pad) as u64;
        Ok(id)
    }

    /// Appends a bitmap in the portable roaring format.
    pub fn add_bitmap(&mut self, bitmap: &Bitmap) -> Result<u32, SectionError> {
        self.add(&crate::to_portable_bytes(bitmap))
    }

    /// Number of sections written so far.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no section was written yet.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Writes the table and footer, flushes and syncs; returns the file size.
    pub fn finish(mut self) -> Result<u64, SectionError> {
        let mut table = Vec::with_capacity(self.table.len() * 24);
        for e in &self.table {
            table.extend_from_slice(&e.offset.to_le_bytes());
            table.extend_from_slice(&e.len.to_le_bytes());
            table.extend_from_slice(&e.hash.to_le_bytes());
        }
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        footer.extend_from_slice(&self.pos.to_le_bytes());
        footer.extend_from_slice(&(self.table.len() as u64).to_le_bytes());
        footer.extend_from_slice(&xxh3_64(&table).to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.out.write_all(&table).map_err(|e| self.io(e))?;
        self.out.write_all(&footer).map_err(|e| self.io(e))?;
        self.out.flush().map_err(|e| self.io(e))?;
        let size = self.pos + table.len() as u64 + FOOTER_LEN as u64;
        let file = self.out.get_ref();
        file.sync_all().map_err(|e| SectionError::Io {
            path: self.path.clone(),
            source: e,
        })?;
        Ok(size)
    }
}

/// A memory-mapped section file opened for reading.
pub struct SectionFile {
    path: PathBuf,
    map: Mmap,
    table: Vec<Entry>,
    /// 0 = not checked yet, 1 = checksum verified, 2 = checksum failed.
    checked: Vec<AtomicU8>,
}

impl std::fmt::Debug for SectionFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SectionFile")
            .field("path", &self.path)
            .field("sections", &self.table.len())
            .finish()
    }
}

impl SectionFile {
    /// Maps `path` and checks its structure (not yet the section checksums).
    pub fn open(path: &Path) -> Result<Self, SectionError> {
        let corrupt = |reason: String| SectionError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(|source| SectionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // SAFETY: the index directory is written once and renamed into place;
        // segdex never modifies a published file. Another process truncating
        // it underneath us is outside the contract (as for any mmap reader).
        let map = unsafe { Mmap::map(&file) }.map_err(|source| SectionError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let len = map.len();
        if len < MAGIC.len() + FOOTER_LEN || &map[..8] != MAGIC {
            return Err(corrupt(format!(
                "bad header or file too short ({len} bytes)"
            )));
        }
        let footer = &map[len - FOOTER_LEN..];
        if &footer[24..32] != END_MAGIC {
            return Err(corrupt("missing end marker (truncated?)".into()));
        }
        let u = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
        let table_offset = u(&footer[0..8]);
        let count = u(&footer[8..16]);
        let table_hash = u(&footer[16..24]);
        let table_len = count
            .checked_mul(24)
            .ok_or_else(|| corrupt("section count overflows".into()))?;
        if table_offset
            .checked_add(table_len)
            .is_none_or(|end| end != (len - FOOTER_LEN) as u64)
        {
            return Err(corrupt("table of contents out of place".into()));
        }
        let table_bytes = &map[table_offset as usize..len - FOOTER_LEN];
        if xxh3_64(table_bytes) != table_hash {
            return Err(corrupt("table of contents checksum mismatch".into()));
        }
        let mut table = Vec::with_capacity(count as usize);
        for chunk in table_bytes.chunks_exact(24) {
            let e = Entry {
                offset: u(&chunk[0..8]),
                len: u(&chunk[8..16]),
                hash: u(&chunk[16..24]),
            };
            if !e.offset.is_multiple_of(8)
                || e.offset < 8
                || e.offset
                    .checked_add(e.len.div_ceil(8) * 8)
                    .is_none_or(|end| end > table_offset)
            {
                return Err(corrupt(format!("section {} out of bounds", table.len())));
            }
            table.push(e);
        }
        let checked = (0..table.len()).map(|_| AtomicU8::new(0)).collect();
        Ok(Self {
            path: path.to_path_buf(),
            map,
            table,
            checked,
        })
    }

    /// The file this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of sections.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the file has no sections.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Length in bytes of section `id` (without padding), if it exists;
    /// reads only the table of contents.
    pub fn section_len(&self, id: u32) -> Option<u64> {
        self.table.get(id as usize).map(|e| e.len)
    }

    /// Size of the mapped file in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The bytes of section `id`, verified against its checksum on first use.
    pub fn bytes(&self, id: u32) -> Result<&[u8], SectionError> {
        let corrupt = |reason: String| SectionError::Corrupt {
            path: self.path.clone(),
            reason,
        };
        let e = self
            .table
            .get(id as usize)
            .ok_or_else(|| corrupt(format!("section {id} does not exist")))?;
        let start = e.offset as usize;
        let bytes = &self.map[start..start + e.len as usize];
        let padded = &self.map[start..start + (e.len.div_ceil(8) * 8) as usize];
        let state = &self.checked[id as usize];
        match state.load(Ordering::Acquire) {
            1 => Ok(bytes),
            2 => Err(corrupt(format!("section {id} checksum mismatch"))),
            _ => {
                if xxh3_64(padded) == e.hash {
                    state.store(1, Ordering::Release);
                    Ok(bytes)
                } else {
                    state.store(2, Ordering::Release);
                    Err(corrupt(format!("section {id} checksum mismatch")))
                }
            }
        }
    }

    /// Deserializes section `id` as a portable-format roaring bitmap.
    pub fn bitmap(&self, id: u32) -> Result<Bitmap, SectionError> {
        let bytes = self.bytes(id)?;
        crate::from_portable_bytes(bytes).map_err(|e| SectionError::Corrupt {
            path: self.path.clone(),
            reason: format!("section {id} is not a valid roaring bitmap: {e}"),
        })
    }

    /// Verifies every section's checksum (reads the whole file).
    pub fn verify_all(&self) -> Result<(), SectionError> {
        for id in 0..self.table.len() as u32 {
            self.bytes(id)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_sample(path: &Path) -> Bitmap {
        let bm: Bitmap = (0..1000u32).map(|x| x * 7).collect();
        let mut w = SectionWriter::create(path).unwrap();
        assert_eq!(w.add(b"hello").unwrap(), 0);
        assert_eq!(w.add_bitmap(&bm).unwrap(), 1);
        assert_eq!(w.add(&[]).unwrap(), 2);
        w.finish().unwrap();
        bm
    }

    #[test]
    fn round_trips_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        let bm = write_sample(&path);
        let f = SectionFile::open(&path).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.bytes(0).unwrap(), b"hello");
        assert_eq!(f.bitmap(1).unwrap(), bm);
        assert_eq!(f.bytes(2).unwrap(), b"");
        assert!(f.bytes(3).is_err());
        f.verify_all().unwrap();
    }

    #[test]
    fn every_truncation_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        write_sample(&path);
        let full = std::fs::read(&path).unwrap();
        for cut in 0..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            assert!(SectionFile::open(&path).is_err(), "cut at {cut} accepted");
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.seg");
        write_sample(&path);
        let full = std::fs::read(&path).unwrap();
        for i in 0..full.len() {
            let mut bad = full.clone();
            bad[i] ^= 0x40;
            std::fs::write(&path, &bad).unwrap();
            let ok = SectionFile::open(&path)
                .and_then(|f| f.verify_all().map(|_| f))
                .is_ok();
            assert!(!ok, "flipped byte {i} went unnoticed");
        }
    }
}
