//! Opening an index directory and reading from it.

use crate::chunk::{ChunkView, ORDER_ATTRS};
use crate::dates::DateTable;
use crate::model::*;
use crate::time::Zone;
use crate::{IndexError, Result};
use rayon::prelude::*;
use segdex_bitmap::{Bitmap, SectionFile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// An external customer (or product) id as it appears in the input.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExternalId {
    /// An int64 id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl std::fmt::Display for ExternalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExternalId::Int(i) => write!(f, "{i}"),
            ExternalId::Str(s) => f.write_str(s),
        }
    }
}

/// Per product offsets into (month, bitmap section) entries.
type ProductMonths = (Vec<u32>, Vec<(i32, u32)>);

/// Whether the ids of dictionary `values` strictly ascend along the rows
/// (integers by value, strings by their bytes), as the build numbers them.
fn ids_ascend(ids: &IdsMeta, values: &[u8]) -> bool {
    let n = ids.count as usize;
    match ids.kind {
        IdKind::Int => (1..n)
            .into_par_iter()
            .all(|r| (le_u64_at(values, r - 1) as i64) < le_u64_at(values, r) as i64),
        IdKind::Str => {
            let text = &values[8 * (n + 1)..];
            let at = |r: usize| {
                text.get(le_u64_at(values, r) as usize..le_u64_at(values, r + 1) as usize)
            };
            (0..n).into_par_iter().all(|r| match at(r) {
                None => false,
                Some(b) => r == 0 || at(r - 1).is_some_and(|a| a < b),
            })
        }
    }
}

/// An opened, memory-mapped index.
pub struct Index {
    dir: PathBuf,
    file: SectionFile,
    meta: Meta,
    zone: Zone,
    bitmaps: Vec<OnceLock<Arc<Bitmap>>>,
    chunks_checked: Vec<OnceLock<bool>>,
    product_all_time: OnceLock<Vec<u32>>,
    product_months: OnceLock<ProductMonths>,
    /// Every customer row, made on first use.
    all_rows: OnceLock<Arc<Bitmap>>,
    /// Whether the customer ids ascend along the rows, checked on first use.
    ids_ascend: OnceLock<bool>,
    /// Date tables read so far, by section.
    date_tables: Mutex<HashMap<u32, Arc<DateTable>>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("dir", &self.dir)
            .field("customers", &self.meta.customers)
            .finish()
    }
}

fn le_u32s(bytes: &[u8]) -> Vec<u32> {
    bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
        .collect()
}

/// The `i`-th little-endian u64 of `bytes` (the id dictionary's values and
/// string offsets).
fn le_u64_at(bytes: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(bytes[8 * i..8 * i + 8].try_into().expect("8 bytes"))
}

impl Index {
    /// Opens the index in `dir`: checks the manifest, the format version,
    /// the data file's size and table of contents, and reads the meta.
    pub fn open(dir: &Path) -> Result<Self> {
        let fmt_err = |message: String| IndexError::Format {
            path: dir.to_path_buf(),
            message,
        };
        let mpath = dir.join("manifest.json");
        let text = std::fs::read(&mpath).map_err(|e| {
            fmt_err(format!(
                "not a segdex index: cannot read manifest.json ({e}); build one with `segdex build`"
            ))
        })?;
        let manifest: Manifest = serde_json::from_slice(&text)
            .map_err(|e| fmt_err(format!("manifest.json is corrupt ({e}); rebuild the index")))?;
        if manifest.format != FORMAT_NAME {
            return Err(fmt_err(format!(
                "manifest.json describes `{}`, not a segdex index",
                manifest.format
            )));
        }
        if manifest.format_version != FORMAT_VERSION {
            return Err(fmt_err(format!(
                "index format version {} is not the version this segdex reads ({FORMAT_VERSION}); rebuild the index with this version",
                manifest.format_version
            )));
        }
        if manifest.data_file.contains('/') || manifest.data_file.contains("..") {
            return Err(fmt_err("manifest.json names an invalid data file".into()));
        }
        let data = dir.join(&manifest.data_file);
        let file = SectionFile::open(&data)?;
        if file.file_len() != manifest.data_bytes {
            return Err(fmt_err(format!(
                "{} has {} bytes but the manifest says {}: the index is truncated or was modified; rebuild it",
                manifest.data_file,
                file.file_len(),
                manifest.data_bytes
            )));
        }
        let meta: Meta =
            serde_json::from_slice(file.bytes(manifest.meta_section)?).map_err(|e| {
                fmt_err(format!(
                    "index description is unreadable ({e}); rebuild the index"
                ))
            })?;
        let zone = Zone::new(&meta.timezone).map_err(fmt_err)?;
        let sections = file.len();
        let chunks = meta.purchases.chunks.len();
        // One month bitmap per calendar month with order days.
        let months = meta.purchases.order_days().map_or(0, |(first, last)| {
            (crate::time::month_of(last) - crate::time::month_of(first) + 1) as usize
        });
        if meta.purchases.order_attrs.len() != ORDER_ATTRS.len()
            || chunks != meta.customers.div_ceil(CHUNK_ROWS) as usize
            || meta.purchases.any_month.len() != months
        {
            return Err(fmt_err(
                "index description is inconsistent; rebuild the index".into(),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            meta,
            zone,
            bitmaps: (0..sections).map(|_| OnceLock::new()).collect(),
            chunks_checked: (0..chunks).map(|_| OnceLock::new()).collect(),
            product_all_time: OnceLock::new(),
            product_months: OnceLock::new(),
            date_tables: Mutex::new(HashMap::new()),
            all_rows: OnceLock::new(),
            ids_ascend: OnceLock::new(),
        })
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The index's description.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The index's time zone.
    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    /// Number of customers (row ids are `0..n`).
    pub fn customers(&self) -> u32 {
        self.meta.customers
    }

    fn corrupt(&self, what: &str) -> IndexError {
        IndexError::Format {
            path: self.dir.clone(),
            message: format!("{what} is corrupt; rebuild the index"),
        }
    }

    /// The bitmap stored in `section` (verified and deserialized once).
    pub fn bitmap(&self, section: u32) -> Result<Arc<Bitmap>> {
        let slot = self
            .bitmaps
            .get(section as usize)
            .ok_or_else(|| self.corrupt("a bitmap reference"))?;
        if let Some(b) = slot.get() {
            return Ok(b.clone());
        }
        let b = Arc::new(self.file.bitmap(section)?);
        if b.max()
            .is_some_and(|m| m >= self.meta.customers.max(self.meta.products))
        {
            return Err(self.corrupt(&format!("bitmap section {section}")));
        }
        Ok(slot.get_or_init(|| b).clone())
    }

    /// Every customer row (`0..customers`).
    pub fn all_rows(&self) -> Arc<Bitmap> {
        self.all_rows
            .get_or_init(|| Arc::new(segdex_bitmap::all_rows(self.meta.customers)))
            .clone()
    }

    /// The stored size of `section` in bytes (0 for no such section): a
    /// bitmap's size, known without reading it, estimates its cardinality.
    pub fn section_bytes(&self, section: u32) -> u64 {
        self.file.section_len(section).unwrap_or(0)
    }

    /// A customer attribute by name.
    pub fn customer_field(&self, name: &str) -> Option<&Field> {
        self.meta.customer_fields.iter().find(|f| f.name == name)
    }

    /// A product attribute by name.
    pub fn product_field(&self, name: &str) -> Option<&Field> {
        self.meta.product_fields.iter().find(|f| f.name == name)
    }

    /// An order attribute (`store`, `payment_method`, `offer_code`,
    /// `channel`) and its position in the line store.
    pub fn order_attr(&self, name: &str) -> Option<(usize, &Field)> {
        self.meta
            .purchases
            .order_attrs
            .iter()
            .enumerate()
            .find(|(_, f)| f.name == name)
    }

    /// The line store of chunk `k` (customers `k·2^16 ..`).
    pub fn chunk(&self, k: usize) -> Result<ChunkView<'_>> {
        let section = *self
            .meta
            .purchases
            .chunks
            .get(k)
            .ok_or_else(|| self.corrupt("the chunk list"))?;
        let bytes = self.file.bytes(section)?;
        let checked = self.chunks_checked[k].get().is_some();
        let view = ChunkView::parse_with(bytes, !checked)
            .filter(|v| {
                let expected = (self.meta.customers - k as u32 * CHUNK_ROWS).min(CHUNK_ROWS);
                v.customers() == expected as usize
            })
            .ok_or_else(|| self.corrupt(&format!("line store chunk {k}")))?;
        self.chunks_checked[k].get_or_init(|| true);
        Ok(view)
    }

    /// The year / month / day bucket table of a date field, read and
    /// checked on first use.
    pub fn date_table(&self, dates: &DateSections) -> Result<Arc<DateTable>> {
        if let Some(t) = self
            .date_tables
            .lock()
            .expect("date tables")
            .get(&dates.table)
        {
            return Ok(t.clone());
        }
        let t = DateTable::decode(self.file.bytes(dates.table)?, self.file.len())
            .ok_or_else(|| self.corrupt(&format!("date table section {}", dates.table)))?;
        let t = Arc::new(t);
        self.date_tables
            .lock()
            .expect("date tables")
            .insert(dates.table, t.clone());
        Ok(t)
    }

    fn product_all_time_table(&self) -> Result<&Vec<u32>> {
        if let Some(t) = self.product_all_time.get() {
            return Ok(t);
        }
        let t = le_u32s(self.file.bytes(self.meta.purchases.product_all_time)?);
        if t.len() != self.meta.products as usize {
            return Err(self.corrupt("the product table"));
        }
        Ok(self.product_all_time.get_or_init(|| t))
    }

    /// Customers who ever bought product `p` (a kept line).
    pub fn product_all_time(&self, p: u32) -> Result<Arc<Bitmap>> {
        let section = *self
            .product_all_time_table()?
            .get(p as usize)
            .ok_or_else(|| self.corrupt("a product reference"))?;
        self.bitmap(section)
    }

    /// Product `p`'s monthly customer bitmaps: (month index, section), by
    /// month (see [`crate::time::month_of`]).
    pub fn product_months(&self, p: u32) -> Result<&[(i32, u32)]> {
        let (offsets, entries) = self.product_months_table()?;
        let a = *offsets
            .get(p as usize)
            .ok_or_else(|| self.corrupt("a product reference"))? as usize;
        let b = offsets[p as usize + 1] as usize;
        Ok(&entries[a..b])
    }

    /// The product month table (offsets per product, then (month, section)
    /// entries), read and checked on first use.
    fn product_months_table(&self) -> Result<&ProductMonths> {
        if let Some(t) = self.product_months.get() {
            return Ok(t);
        }
        let bytes = self.file.bytes(self.meta.purchases.product_months)?;
        let n = self.meta.products as usize + 1;
        let words = le_u32s(bytes);
        if words.len() < n {
            return Err(self.corrupt("the product month table"));
        }
        let offsets = words[..n].to_vec();
        let entries: Vec<(i32, u32)> = words[n..]
            .chunks_exact(2)
            .map(|c| (c[0] as i32, c[1]))
            .collect();
        let ok = offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_some_and(|&l| l as usize == entries.len());
        if !ok {
            return Err(self.corrupt("the product month table"));
        }
        Ok(self.product_months.get_or_init(|| (offsets, entries)))
    }

    fn ids_bytes(&self, ids: &IdsMeta) -> Result<&[u8]> {
        let values = self.file.bytes(ids.values)?;
        let n = ids.count as usize;
        let ok = match ids.kind {
            IdKind::Int => values.len() == 8 * n,
            IdKind::Str => values.len() >= 8 * (n + 1),
        };
        if !ok {
            return Err(self.corrupt("the id dictionary"));
        }
        Ok(values)
    }

    /// The customer id dictionary and its values section, once checked to
    /// ascend along the rows (what ascending output and lookups rely on).
    fn ordered_customer_ids(&self) -> Result<(&IdsMeta, &[u8])> {
        let ids = &self.meta.customer_ids;
        let values = self.ids_bytes(ids)?;
        if !*self.ids_ascend.get_or_init(|| ids_ascend(ids, values)) {
            return Err(self.corrupt("the id dictionary (ids out of order)"));
        }
        Ok((ids, values))
    }

    fn id_at(&self, ids: &IdsMeta, values: &[u8], row: u32) -> Result<ExternalId> {
        let r = row as usize;
        if r >= ids.count as usize {
            return Err(self.corrupt("a row reference"));
        }
        let u = |i: usize| le_u64_at(values, i);
        Ok(match ids.kind {
            IdKind::Int => ExternalId::Int(u(r) as i64),
            IdKind::Str => {
                let base = 8 * (ids.count as usize + 1);
                let (a, b) = (u(r) as usize, u(r + 1) as usize);
                let s = values
                    .get(base + a..base + b)
                    .and_then(|s| std::str::from_utf8(s).ok())
                    .ok_or_else(|| self.corrupt("the id dictionary"))?;
                ExternalId::Str(s.to_string())
            }
        })
    }

    /// The external id of customer row `row`.
    pub fn external_id(&self, row: u32) -> Result<ExternalId> {
        let ids = &self.meta.customer_ids;
        let values = self.ids_bytes(ids)?;
        self.id_at(ids, values, row)
    }

    /// The integer external ids of the rows in `rows`, ascending (rows are
    /// numbered in id order); `None` when the ids are strings. Member and
    /// event files use [`Index::extend_int_ids`], a block at a time.
    pub fn int_ids(&self, rows: &Bitmap) -> Result<Option<Vec<i64>>> {
        let (ids, _) = self.ordered_customer_ids()?;
        if ids.kind != IdKind::Int {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(rows.len() as usize);
        segdex_bitmap::for_each_block(rows, |block| {
            self.extend_int_ids(block, &mut out).map(|_| ())
        })?;
        Ok(Some(out))
    }

    /// Appends the integer external ids of `rows` (row numbers, in any
    /// order) to `out`; `false` (and nothing appended) when the ids are
    /// strings. A block of rows at a time: a tight loop of independent
    /// dictionary loads.
    pub fn extend_int_ids(&self, rows: &[u32], out: &mut Vec<i64>) -> Result<bool> {
        let (ids, values) = self.ordered_customer_ids()?;
        if ids.kind != IdKind::Int {
            return Ok(false);
        }
        if rows.iter().max().is_some_and(|&m| m >= ids.count) {
            return Err(self.corrupt("a row reference"));
        }
        out.extend(rows.iter().map(|&r| le_u64_at(values, r as usize) as i64));
        Ok(true)
    }

    /// The external ids of the rows in `rows`, in row order, which is
    /// ascending id order (integers by value, strings by their bytes).
    pub fn external_ids(&self, rows: &Bitmap) -> Result<Vec<ExternalId>> {
        let mut out = Vec::with_capacity(rows.len() as usize);
        segdex_bitmap::for_each_block(rows, |block| {
            out.extend(self.external_ids_of(block)?);
            Ok::<_, IndexError>(())
        })?;
        Ok(out)
    }

    /// The external ids of `rows` (row numbers, in any order), in that
    /// order.
    pub fn external_ids_of(&self, rows: &[u32]) -> Result<Vec<ExternalId>> {
        let (ids, values) = self.ordered_customer_ids()?;
        rows.iter().map(|&r| self.id_at(ids, values, r)).collect()
    }

    /// A fingerprint of the customer id dictionary (xxh3-64 over the id
    /// type, the count and the ids in row order): equal exactly when row
    /// `r` is the same customer in both indexes, for every `r`. State kept
    /// as row ids (recalculation) is valid only under an equal fingerprint.
    pub fn customer_ids_fingerprint(&self) -> Result<u64> {
        let ids = &self.meta.customer_ids;
        let values = self.ids_bytes(ids)?;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&[ids.kind as u8]);
        h.update(&u64::from(ids.count).to_le_bytes());
        h.update(values);
        Ok(h.digest())
    }

    /// Bytes of the index by part (customer attributes, line store, product
    /// bitmaps, ...), from the table of contents only: what a size budget
    /// is spent on. Each entry is (part, sections, bytes); padding and the
    /// table itself are counted under "overhead".
    pub fn size_report(&self) -> Result<Vec<(&'static str, u64, u64)>> {
        let n = self.file.len();
        let mut part: Vec<&'static str> = vec!["other"; n];
        let mut mark = |s: u32, name: &'static str| {
            if let Some(p) = part.get_mut(s as usize) {
                *p = name;
            }
        };
        let field_sections = |f: &Field| -> Vec<u32> {
            let mut v = f.value_sections.clone();
            v.push(f.null_section);
            if let Some(b) = &f.bsi {
                v.extend(&b.slices);
                v.push(b.exists);
            }
            v.extend(&f.month_day_sections);
            v
        };
        let m = &self.meta;
        for f in &m.customer_fields {
            for s in field_sections(f) {
                mark(s, "customer attributes");
            }
            if let Some(d) = &f.dates {
                mark(d.table, "customer attributes");
                mark(d.exists, "customer attributes");
                let t = self.date_table(d)?;
                for &(_, s) in t.years.iter().chain(&t.months).chain(&t.days) {
                    mark(s, "customer attributes");
                }
            }
        }
        for f in &m.product_fields {
            for s in field_sections(f) {
                mark(s, "product attributes");
            }
        }
        for f in &m.purchases.order_attrs {
            for s in field_sections(f) {
                mark(s, "order attributes (all-time customers per value)");
            }
        }
        for c in &m.stored {
            mark(c.section, "stored export columns");
        }
        for ids in [&m.customer_ids, &m.product_ids] {
            mark(ids.values, "id dictionaries");
        }
        for &s in &m.purchases.chunks {
            mark(s, "line store (chunks)");
        }
        for &s in &m.purchases.any_day {
            mark(s, "customers per day and month");
        }
        for &s in &m.purchases.any_month {
            mark(s, "customers per day and month");
        }
        mark(m.purchases.any_all_time, "customers per day and month");
        mark(m.purchases.product_all_time, "product tables");
        mark(m.purchases.product_months, "product tables");
        for &s in self.product_all_time_table()? {
            mark(s, "customers per product");
        }
        let (_, months) = self.product_months_table()?;
        for &(_, s) in months {
            mark(s, "customers per product and month");
        }
        let mut totals: std::collections::BTreeMap<&'static str, (u64, u64)> = Default::default();
        let mut used = 0u64;
        for (id, name) in part.iter().enumerate() {
            let len = self.file.section_len(id as u32).unwrap_or(0);
            used += len;
            let t = totals.entry(name).or_default();
            t.0 += 1;
            t.1 += len;
        }
        let mut out: Vec<(&'static str, u64, u64)> =
            totals.into_iter().map(|(k, (n, b))| (k, n, b)).collect();
        out.push(("overhead", 0, self.file.file_len().saturating_sub(used)));
        out.sort_by_key(|p| std::cmp::Reverse(p.2));
        Ok(out)
    }

    /// The customer ids' type.
    pub fn customer_id_kind(&self) -> IdKind {
        self.meta.customer_ids.kind
    }

    /// The row of customer `id`, if it exists.
    pub fn row_of(&self, id: &ExternalId) -> Result<Option<u32>> {
        // Rows ascend by id: a binary search over the dictionary.
        let (ids, values) = self.ordered_customer_ids()?;
        let (mut lo, mut hi) = (0u32, ids.count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let here = match (ids.kind, id) {
                (IdKind::Int, ExternalId::Int(v)) => {
                    (le_u64_at(values, mid as usize) as i64).cmp(v)
                }
                _ => self.id_at(ids, values, mid)?.cmp(id),
            };
            match here {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid)),
            }
        }
        Ok(None)
    }

    /// The text of stored customer column `name` (one of
    /// [`STORED_COLUMNS`]) for each row of `rows`, in row order; `None` when
    /// the input had no such column.
    pub fn stored_texts(&self, name: &str, rows: &Bitmap) -> Result<Option<Vec<String>>> {
        let Some(col) = self.meta.stored.iter().find(|c| c.name == name) else {
            return Ok(None);
        };
        let bytes = self.file.bytes(col.section)?;
        crate::stored::read(bytes, self.meta.customers as usize, rows)
            .ok_or_else(|| self.corrupt(&format!("stored column {name}")))
            .map(Some)
    }

    /// Spend in cents over all kept lines of each row of `rows` (all time,
    /// no clip), in row order.
    pub fn lifetime_cents(&self, rows: &Bitmap) -> Result<Vec<i128>> {
        let mut out = Vec::with_capacity(rows.len() as usize);
        let mut current: Option<(usize, ChunkView<'_>)> = None;
        for r in rows.iter() {
            let k = (r / CHUNK_ROWS) as usize;
            if current.as_ref().is_none_or(|(c, _)| *c != k) {
                current = Some((k, self.chunk(k)?));
            }
            let (_, view) = current.as_ref().expect("set above");
            let local = (r - k as u32 * CHUNK_ROWS) as usize;
            if local >= view.customers() {
                return Err(self.corrupt("a row reference"));
            }
            let orders = view.order_range(local);
            out.push(view.run_totals(orders).cents as i128);
        }
        Ok(out)
    }

    /// Verifies every section's checksum and every chunk's structure
    /// (reads the whole index).
    pub fn verify_all(&self) -> Result<()> {
        self.file.verify_all()?;
        for k in 0..self.meta.purchases.chunks.len() {
            self.chunk(k)?;
        }
        Ok(())
    }
}
